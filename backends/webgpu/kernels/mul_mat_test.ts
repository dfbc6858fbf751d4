/** MUL_MAT on WebGPU against the CPU reference: mat-vec (vector and strided paths) and tiled. */
import { GgmlOp, GgmlType, GpuCheck } from "./testing.ts";
import { mulMatTuning, TILINGS } from "./mul_mat.ts";

const gc = await GpuCheck.open();
const ignore = gc === null;
const { F32, F16, BF16 } = GgmlType;

/** a: k×m of `ta` (batch bs, b broadcast by nr), b: k×n; opts for layouts. */
async function mm(
  ta: number,
  tb: number,
  m: number,
  n: number,
  k: number,
  bs: [number, number],
  nr: [number, number],
  opt: { permute?: [number, number, number, number]; offA?: number; offB?: number } = {},
): Promise<void> {
  const b = gc!.bed;
  const a = b.tensor(ta, [k, m, bs[0], bs[1]], { permute: opt.permute, offset: opt.offA });
  const x = b.tensor(tb, [k, n, bs[0] * nr[0], bs[1] * nr[1]], { permute: opt.permute, offset: opt.offB });
  const out = b.node(GgmlOp.MUL_MAT, F32, [m, n, bs[0] * nr[0], bs[1] * nr[1]], [a, x]);
  // f16/bf16: the CPU rounds b to a's type first, the GPU keeps f32 (ggml's bound is 5e-4)
  await gc!.check(out, ta === F32 && tb === F32 ? 1e-10 : 1e-4);
}

Deno.test({ name: "webgpu MUL_MAT mat-vec: 16-byte loads, batches, broadcast", ignore }, async () => {
  await mm(F16, F32, 33, 1, 256, [1, 1], [1, 1]);
  await mm(F16, F32, 19, 3, 512, [2, 3], [2, 1]);
  await mm(BF16, F32, 20, 8, 128, [1, 1], [1, 1]);
  await mm(F32, F32, 17, 5, 68, [2, 1], [1, 2]);
});

Deno.test({ name: "webgpu MUL_MAT mat-vec: odd k, odd offsets, permuted, f16×f16", ignore }, async () => {
  await mm(F16, F32, 20, 2, 37, [1, 1], [1, 1], { offA: 6, offB: 12 });
  await mm(F32, F32, 16, 1, 64, [3, 1], [1, 1], { permute: [0, 2, 1, 3] });
  await mm(F32, F32, 16, 4, 64, [1, 1], [1, 1], { permute: [1, 0, 2, 3] });
  await mm(F16, F16, 9, 2, 100, [1, 1], [1, 1], { offA: 2 });
});

Deno.test({ name: "webgpu MUL_MAT tiled: edges, broadcast, permuted, bf16", ignore }, async () => {
  await mm(F32, F32, 70, 70, 33, [2, 1], [1, 2], { offA: 4 });
  await mm(F16, F32, 65, 33, 100, [1, 1], [1, 1]);
  await mm(BF16, F32, 16, 16, 64, [3, 1], [1, 1], { permute: [0, 2, 1, 3] });
  await mm(F16, F16, 24, 12, 40, [1, 1], [1, 1], { offB: 2 });
});

Deno.test({ name: "webgpu MUL_MAT tiled: every register tiling on ragged edges", ignore }, async () => {
  try {
    for (const t of TILINGS) {
      mulMatTuning.force = t;
      await mm(F16, F32, 70, 37, 45, [1, 1], [1, 1]);
      await mm(F32, F32, 33, 20, 17, [1, 1], [1, 1], { offB: 4 });
    }
  } finally {
    mulMatTuning.force = null;
  }
});
