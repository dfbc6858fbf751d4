import { newTensor } from "../../../protocol/graph/tensor.ts";
import { GgmlOp, GgmlType, GpuCheck } from "./testing.ts";

const gc = await GpuCheck.open();
const ignore = gc === null;
const { F32, F16, BF16, I32 } = GgmlType;

Deno.test(
  { name: "webgpu CPY/DUP/CONT: every type pair, permuted sources, reshaped, odd offsets", ignore },
  async () => {
    const b = gc!.bed;
    const floats = [F32, F16, BF16];
    for (const from of floats) {
      for (const to of floats) {
        const x = b.tensor(from, [5, 3, 2], { permute: [0, 2, 1, 3], offset: from === F32 ? 4 : 2 });
        await gc!.check(b.node(GgmlOp.CONT, to, [5, 3, 2], [x]), 1e-5);
        const y = b.tensor(from, [7, 3]);
        await gc!.check(b.node(GgmlOp.DUP, to, [3, 7], [y]), 1e-5);
      }
    }
    const f = b.tensor(F32, [9, 2], { lo: -100, hi: 100 });
    await gc!.check(b.node(GgmlOp.DUP, I32, [9, 2], [f]), 0);
    const i = b.tensor(I32, [9, 2], { lo: -100, hi: 100 });
    await gc!.check(b.node(GgmlOp.DUP, F32, [9, 2], [i]), 0);
    await gc!.check(b.node(GgmlOp.CONT, I32, [2, 9], [i]), 0);
  },
);

Deno.test({ name: "webgpu CPY into a strided f16 view (atomic half stores)", ignore }, async () => {
  const b = gc!.bed;
  const src = b.tensor(F32, [5, 3]);
  // destination: every other element of a larger f16 tensor
  const big = b.tensor(F16, [10, 3]);
  const view = newTensor({ type: F16, ne: [5, 3], nb: [4, 20, 60, 60] });
  view.buffer = big.buffer;
  view.offset = big.offset + 2;
  const out = newTensor({ type: F16, ne: [5, 3], nb: view.nb, op: GgmlOp.CPY, src: [src, view] });
  out.buffer = big.buffer;
  out.offset = view.offset;
  await gc!.check(out, 1e-6);
});

Deno.test({ name: "webgpu SET and ACC", ignore }, async () => {
  const b = gc!.bed;
  for (const t of [F32, I32]) {
    const a = b.tensor(t, [6, 4, 2], { lo: -50, hi: 50 });
    const v = b.tensor(t, [3, 2, 2], { lo: -50, hi: 50 });
    // view strides nb1 = 24 bytes, nb2 = 96, nb3 = 192, offset 8 bytes
    await gc!.check(b.node(GgmlOp.SET, t, [6, 4, 2], [a, v], [24, 96, 192, 8, 0]), 0);
  }
  const a = b.tensor(F32, [6, 4, 2]);
  const v = b.tensor(F32, [3, 2, 2]);
  await gc!.check(b.node(GgmlOp.ACC, F32, [6, 4, 2], [a, v], [24, 96, 192, 4, 0]), 1e-12);
});
