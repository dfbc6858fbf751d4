import { GgmlOp, GgmlType, GpuCheck } from "./testing.ts";

const gc = await GpuCheck.open();
const ignore = gc === null;
const { F32, F16, BF16, I32, I64 } = GgmlType;

function shuffled(n: number, random: () => number): number[] {
  const a = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

Deno.test({ name: "webgpu GET_ROWS f32/f16/bf16/i32", ignore }, async () => {
  const b = gc!.bed;
  for (const t of [F32, F16, BF16, I32]) {
    const a = b.tensor(t, [7, 5, 2], { lo: -9, hi: 9 });
    const ids = b.tensor(I32, [4, 2], { values: [4, 0, 2, 2, 1, 3, 0, 4] });
    await gc!.check(b.node(GgmlOp.GET_ROWS, t === I32 ? I32 : F32, [7, 4, 2], [a, ids]), 0);
  }
});

Deno.test(
  { name: "webgpu SET_ROWS f32/f16 into f32/f16/bf16, i32 and i64 ids, odd rows", ignore },
  async () => {
    const b = gc!.bed;
    for (const from of [F32, F16]) {
      for (const to of [F32, F16, BF16]) {
        // rows of 7 halves share words (atomic stores); rows of 8 start on words (word stores)
        for (const [it, w] of [[I32, 7], [I64, 7], [I32, 8]]) {
          const dst = b.tensor(to, [w, 6, 2]);
          const src = b.tensor(from, [w, 3, 2]);
          const ids = b.tensor(it, [3, 2], {
            values: [...shuffled(6, b.random).slice(0, 3), ...shuffled(6, b.random).slice(0, 3)],
          });
          const out = b.node(GgmlOp.SET_ROWS, to, [w, 6, 2], [src, ids, dst]);
          out.buffer = dst.buffer;
          out.offset = dst.offset;
          out.nb = [...dst.nb];
          await gc!.check(out, 1e-6);
        }
      }
    }
  },
);
