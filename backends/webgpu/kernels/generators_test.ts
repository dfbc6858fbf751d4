import { f32Param, GgmlOp, GgmlType, GpuCheck } from "./testing.ts";

const gc = await GpuCheck.open();
const ignore = gc === null;
const { F32, F16 } = GgmlType;

Deno.test({ name: "webgpu ARANGE FILL TRI DIAG", ignore }, async () => {
  const b = gc!.bed;
  await gc!.check(b.node(GgmlOp.ARANGE, F32, [11], [], [f32Param(-2), f32Param(3.5), f32Param(0.5)]), 1e-12);
  for (const t of [F32, F16]) {
    const x = b.tensor(t, [5, 3]);
    await gc!.check(b.node(GgmlOp.FILL, t, [5, 3], [x], [f32Param(0.75)]), 0);
  }
  const m = b.tensor(F32, [5, 5, 2]);
  for (let k = 0; k < 4; k++) await gc!.check(b.node(GgmlOp.TRI, F32, [5, 5, 2], [m], [k]), 0);
  const v = b.tensor(F32, [5, 1, 2]);
  await gc!.check(b.node(GgmlOp.DIAG, F32, [5, 5, 2], [v]), 0);
});
