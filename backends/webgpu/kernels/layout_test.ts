import { GgmlOp, GgmlType, GpuCheck } from "./testing.ts";

const gc = await GpuCheck.open();
const ignore = gc === null;
const { F32, F16, BF16, I32 } = GgmlType;

Deno.test({ name: "webgpu CONCAT every dim and type, REPEAT", ignore }, async () => {
  const b = gc!.bed;
  for (const t of [F32, F16, BF16, I32, GgmlType.I16, GgmlType.I8, GgmlType.I64]) {
    for (let d = 0; d < 4; d++) {
      const ne = [3, 2, 2, 2];
      const ne1 = [...ne];
      ne1[d] = 3;
      const out = [...ne];
      out[d] += 3;
      const x = b.tensor(t, ne, { lo: -9, hi: 9 }), y = b.tensor(t, ne1, { lo: -9, hi: 9 });
      await gc!.check(b.node(GgmlOp.CONCAT, t, out, [x, y], [d]), 0);
    }
    if (t === GgmlType.I8 || t === GgmlType.I64) continue; // ggml's CPU has no i8 or i64 REPEAT
    const x = b.tensor(t, [3, 1, 2], { lo: -9, hi: 9, permute: [1, 0, 2, 3] });
    await gc!.check(b.node(GgmlOp.REPEAT, t, [3, 4, 4], [x]), 0);
  }
});

Deno.test({ name: "webgpu PAD (zeros and circular) and ROLL", ignore }, async () => {
  const b = gc!.bed;
  const x = b.tensor(F32, [4, 3, 2]);
  for (const circular of [0, 1]) {
    await gc!.check(b.node(GgmlOp.PAD, F32, [7, 5, 3], [x], [1, 2, 0, 2, 1, 0, 0, 0, circular]), 0);
  }
  const y = b.tensor(F32, [4, 3, 2, 3]);
  await gc!.check(b.node(GgmlOp.ROLL, F32, [4, 3, 2, 3], [y], [1, -2, 5, 1]), 0);
});
