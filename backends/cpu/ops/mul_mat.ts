/**
 * MUL_MAT: dst[i1, j] = Σ_k src0[k, i1] · src1[k, j], batched over dims 2 and 3 with src0 broadcast
 * (src1.ne[2] a multiple of src0.ne[2], likewise dim 3). dst is f32. As in ggml's CPU backend, src1
 * is first rounded to src0's dot type (f16 for f16 weights, bf16 for bf16 weights).
 * @module
 */

import { GgmlType } from "../../../protocol/graph/types.ts";
import { roundBf16 } from "../numeric.ts";
import { loadF32, storeF32 } from "../tensor_data.ts";
import { defineKernels } from "./registry.ts";

const WEIGHTS: ReadonlySet<number> = new Set([GgmlType.F32, GgmlType.F16, GgmlType.BF16]);

defineKernels({
  MUL_MAT: {
    supports: (n) => {
      const a = n.src[0], b = n.src[1];
      return !!a && !!b && WEIGHTS.has(a.type) && b.type === GgmlType.F32 && n.type === GgmlType.F32 &&
        a.ne[0] === b.ne[0] && n.ne[0] === a.ne[1] && n.ne[1] === b.ne[1] && n.ne[2] === b.ne[2] &&
        n.ne[3] === b.ne[3] && b.ne[2] % a.ne[2] === 0 && b.ne[3] % a.ne[3] === 0;
    },
    run: (n) => {
      const a = n.src[0]!, b = n.src[1]!;
      const A = loadF32(a), B = loadF32(b);
      if (a.type === GgmlType.F16) { for (let i = 0; i < B.length; i++) B[i] = Math.f16round(B[i]); }
      else if (a.type === GgmlType.BF16) { for (let i = 0; i < B.length; i++) B[i] = roundBf16(B[i]); }
      const K = a.ne[0], M = a.ne[1], N = b.ne[1];
      const r2 = b.ne[2] / a.ne[2], r3 = b.ne[3] / a.ne[3];
      const out = new Float32Array(M * N * n.ne[2] * n.ne[3]);
      for (let i3 = 0; i3 < n.ne[3]; i3++) {
        for (let i2 = 0; i2 < n.ne[2]; i2++) {
          const aBase = (Math.floor(i3 / r3) * a.ne[2] + Math.floor(i2 / r2)) * M * K;
          const bBase = (i3 * b.ne[2] + i2) * N * K;
          const oBase = (i3 * n.ne[2] + i2) * N * M;
          for (let j = 0; j < N; j++) {
            const bo = bBase + j * K;
            for (let i = 0; i < M; i++) {
              const ao = aBase + i * K;
              let s = 0;
              for (let k = 0; k < K; k++) s += A[ao + k] * B[bo + k];
              out[oBase + j * M + i] = s;
            }
          }
        }
      }
      storeF32(n, out);
    },
  },
});
