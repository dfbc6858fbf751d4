/** SUM, SUM_ROWS, MEAN, CUMSUM, ARGMAX, COUNT_EQUAL on WebGPU against the CPU reference. */
import { GgmlOp, GgmlType, GpuCheck } from "./testing.ts";

const gc = await GpuCheck.open();
const ignore = gc === null;
const { F32, F16, BF16, I32, I64 } = GgmlType;

Deno.test({ name: "webgpu SUM (f32, f16, bf16), SUM_ROWS and MEAN (permuted), CUMSUM", ignore }, async () => {
  const b = gc!.bed;
  for (const t of [F32, F16, BF16]) {
    const a = b.tensor(t, [37, 5, 3], { rowGap: 2 });
    await gc!.check(b.node(GgmlOp.SUM, t, [1], [a]), t === F32 ? 1e-10 : 1e-4);
  }
  for (const op of [GgmlOp.SUM_ROWS, GgmlOp.MEAN]) {
    const a = b.tensor(F32, [1037, 5, 3], { permute: [1, 0, 2, 3] });
    await gc!.check(b.node(op, F32, [1, 5, 3], [a]), 1e-10);
  }
  const c = b.tensor(F32, [1000, 3, 2], { rowGap: 1, offset: 4 });
  await gc!.check(b.node(GgmlOp.CUMSUM, F32, [1000, 3, 2], [c]), 1e-10);
});

Deno.test({ name: "webgpu ARGMAX, COUNT_EQUAL", ignore }, async () => {
  const b = gc!.bed;
  const a = b.tensor(F32, [1000, 7]);
  await gc!.check(b.node(GgmlOp.ARGMAX, I32, [7], [a]), 0);
  const x = b.tensor(I32, [100, 7], { lo: 0, hi: 3 }), y = b.tensor(I32, [100, 7], { lo: 0, hi: 3 });
  await gc!.check(b.node(GgmlOp.COUNT_EQUAL, I64, [1], [x, y]), 0);
});
