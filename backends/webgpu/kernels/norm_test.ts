/** NORM, RMS_NORM, L2_NORM on WebGPU against the CPU reference. */
import { f32Param, GgmlOp, GgmlType, GpuCheck } from "./testing.ts";

const gc = await GpuCheck.open();
const ignore = gc === null;
const { F32 } = GgmlType;

Deno.test({ name: "webgpu NORM RMS_NORM L2_NORM over strided rows", ignore }, async () => {
  const b = gc!.bed;
  for (const op of [GgmlOp.NORM, GgmlOp.RMS_NORM, GgmlOp.L2_NORM]) {
    const a = b.tensor(F32, [537, 4, 3], { rowGap: 3, offset: 4 });
    await gc!.check(b.node(op, F32, [537, 4, 3], [a], [f32Param(1e-5)]), 1e-10);
    const p = b.tensor(F32, [7, 5, 2], { permute: [1, 0, 2, 3] });
    await gc!.check(b.node(op, F32, [7, 5, 2], [p], [f32Param(1e-6)]), 1e-10);
  }
});
