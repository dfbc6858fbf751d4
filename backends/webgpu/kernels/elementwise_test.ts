import { f32Param, GgmlOp, GgmlType, GpuCheck } from "./testing.ts";

const gc = await GpuCheck.open();
const ignore = gc === null;
const { F32, F16, BF16 } = GgmlType;

Deno.test({ name: "webgpu ADD f32 broadcast", ignore }, async () => {
  const b = gc!.bed;
  const x = b.tensor(F32, [7, 3, 2]);
  const y = b.tensor(F32, [7, 1, 2]);
  await gc!.check(b.node(GgmlOp.ADD, F32, [7, 3, 2], [x, y]), 1e-12);
});

Deno.test(
  { name: "webgpu binary ops: f16/bf16 odd sizes, permuted and offset sources", ignore },
  async () => {
    const b = gc!.bed;
    for (const op of [GgmlOp.ADD, GgmlOp.SUB, GgmlOp.MUL, GgmlOp.DIV]) {
      for (const t of [F16, BF16]) {
        const x = b.tensor(t, [5, 3, 3], { permute: [1, 0, 2, 3], offset: 6 });
        const y = b.tensor(F32, [5, 1, 3], { lo: 0.5, hi: 2 });
        await gc!.check(b.node(op, t, [5, 3, 3], [x, y]), 1e-5);
      }
      const x = b.tensor(F32, [9, 4], { rowGap: 3, offset: 12 });
      const y = b.tensor(F32, [9, 4], { lo: 0.5, hi: 2 });
      await gc!.check(b.node(op, F32, [9, 4], [x, y]), 1e-12);
    }
  },
);

Deno.test({ name: "webgpu SCALE CLAMP LEAKY_RELU SQR SQRT LOG SIN COS", ignore }, async () => {
  const b = gc!.bed;
  const x = b.tensor(F32, [11, 3]);
  await gc!.check(b.node(GgmlOp.SCALE, F32, [11, 3], [x], [f32Param(1.5), f32Param(0.25)]), 1e-12);
  await gc!.check(b.node(GgmlOp.CLAMP, F32, [11, 3], [x], [f32Param(-0.5), f32Param(0.5)]), 1e-12);
  const h = b.tensor(F16, [11, 3]);
  await gc!.check(b.node(GgmlOp.LEAKY_RELU, F16, [11, 3], [h], [f32Param(0.1)]), 1e-6);
  const pos = b.tensor(F32, [11, 3], { lo: 0.1, hi: 3 });
  for (const op of [GgmlOp.SQR, GgmlOp.SQRT, GgmlOp.LOG, GgmlOp.SIN, GgmlOp.COS]) {
    await gc!.check(b.node(op, F32, [11, 3], [pos]), 1e-6);
  }
});

Deno.test({ name: "webgpu: tensors over the binding limit run in slices", ignore }, async () => {
  const caps = gc!.gpu.caps as { maxStorageBufferBindingSize: number };
  const saved = caps.maxStorageBufferBindingSize;
  caps.maxStorageBufferBindingSize = 8192; // slices of under 8 KB
  try {
    const b = gc!.bed;
    const x = b.tensor(F32, [1000, 5], { offset: 4 });
    const y = b.tensor(F32, [1000, 1]);
    await gc!.check(b.node(GgmlOp.ADD, F32, [1000, 5], [x, y]), 1e-12);
    const h = b.tensor(F16, [1001, 9], { offset: 2 });
    await gc!.check(b.node(GgmlOp.CONT, BF16, [1001, 9], [h]), 1e-5);
    const rows = b.tensor(F32, [600, 3]);
    const ids = b.tensor(GgmlType.I32, [9], { values: [2, 0, 1, 1, 2, 0, 0, 2, 1] });
    await gc!.check(b.node(GgmlOp.GET_ROWS, F32, [600, 9], [rows, ids]), 0);
    // rows larger than a binding: one matrix at a time, the output matrix itself in slices
    const rows2 = b.tensor(F32, [300, 5, 2]);
    const ids2 = b.tensor(GgmlType.I32, [7, 2], { values: [4, 0, 1, 3, 2, 2, 0, 1, 1, 4, 3, 0, 2, 4] });
    await gc!.check(b.node(GgmlOp.GET_ROWS, F32, [300, 7, 2], [rows2, ids2]), 0);
    // a permuted large source cannot be sliced: refused
    const p = b.tensor(F32, [80, 30], { permute: [1, 0, 2, 3] });
    const pn = b.node(GgmlOp.CONT, F32, [80, 30], [p]);
    if (gc!.gpu.supportsOp(pn)) throw new Error("a permuted source over the limit must be refused");
  } finally {
    caps.maxStorageBufferBindingSize = saved;
  }
});
