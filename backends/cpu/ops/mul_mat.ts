/**
 * MUL_MAT: dst[i, j, i2, i3] = Σ_k src0[k, i, i2/r2, i3/r3] · src1[k, j, i2, i3] — batched over dims
 * 2 and 3 with src0 broadcast (src1.ne[2] = r2·src0.ne[2], likewise dim 3), any strides. dst is
 * f32. As in ggml's CPU backend, src1 is first rounded to src0's dot type (f16 for f16 weights, bf16
 * for bf16 weights; src1 may also come in that type already); sums are kept in double.
 *
 * The work is cut into panels of rows of src0 per batch; threads take consecutive panels. Panels
 * run a 4×4 register-blocked kernel over 4 columns of src1 at a time (see vec.ts), or plain dot
 * products when src1 has fewer than 4 columns (the token-generation case, bound by reading src0).
 * @module
 */

import { GgmlType } from "../../../protocol/graph/types.ts";
import type { Tensor } from "../../../protocol/graph/tensor.ts";
import { roundBf16 } from "../numeric.ts";
import { partRange, TensorData } from "../tensor_data.ts";
import { dot, dot2, dot2F16, dot4x4 } from "../vec.ts";
import { defineKernels } from "./registry.ts";

const { F32, F16, BF16 } = GgmlType;

/** src0 type → the type ggml converts src1 to before the dot products. */
export const VEC_DOT_TYPE: ReadonlyMap<number, number> = new Map([[F32, F32], [F16, F16], [BF16, BF16]]);

/** Rows of src0 per unit of work. */
export const PANEL = 64;

/** How src1 values are rounded to src0's dot type. */
export function roundingFor(src0Type: number, src1Type: number): ((x: number) => number) | null {
  if (src1Type !== F32) return null; // already in the dot type
  if (src0Type === F16) return Math.f16round;
  if (src0Type === BF16) return roundBf16;
  return null;
}

/** Reads rows [r0, r1) of matrix (i2, i3) of `T` densely into out (one row of ne0 after another). */
export function readRows(
  T: TensorData,
  i2: number,
  i3: number,
  r0: number,
  r1: number,
  out: Float32Array,
  round: ((x: number) => number) | null = null,
): void {
  const k = T.ne[0];
  for (let r = r0; r < r1; r++) T.readRow(out, r, i2, i3, (r - r0) * k);
  if (round) { for (let i = 0, n = (r1 - r0) * k; i < n; i++) out[i] = round(out[i]); }
}

/**
 * Where row `r` of matrix (i2, i3) of `T` can be read in place as dense floats: [array, offset], or
 * null when it must be converted first (bf16, strided or misaligned rows).
 */
export function directRow(
  T: TensorData,
  r: number,
  i2: number,
  i3: number,
): [Float32Array | Float16Array, number] | null {
  if (!T.aligned || T.s0 !== 1) return null;
  if (T.type === F32) return [T.views.f32, T.idx(0, r, i2, i3)];
  if (T.type === F16) return [T.views.f16, T.idx(0, r, i2, i3)];
  return null;
}

function supports(n: Tensor): boolean {
  const a = n.src[0], b = n.src[1];
  if (!a || !b || n.type !== F32) return false;
  const vdt = VEC_DOT_TYPE.get(a.type);
  if (vdt === undefined || (b.type !== F32 && b.type !== vdt)) return false;
  return a.ne[0] === b.ne[0] && n.ne[0] === a.ne[1] && n.ne[1] === b.ne[1] && n.ne[2] === b.ne[2] &&
    n.ne[3] === b.ne[3] && a.ne[2] > 0 && a.ne[3] > 0 && b.ne[2] % a.ne[2] === 0 && b.ne[3] % a.ne[3] === 0;
}

/** Scratch arrays of {@linkcode panelProduct} for K-long rows. */
export interface PanelScratch {
  ap: Float32Array;
  acc: Float64Array;
}

/** Scratch for rows of length `k`. */
export function panelScratch(k: number): PanelScratch {
  return { ap: new Float32Array(4 * k), acc: new Float64Array(16) };
}

/**
 * C[j·(m1-m0) + i-m0] = Σ_k A[k, i, a2, a3] · Bd[j·K + k] for rows i in [m0, m1) of matrix (a2, a3)
 * of A and the `cols` dense columns of Bd.
 */
export function panelProduct(
  A: TensorData,
  a2: number,
  a3: number,
  m0: number,
  m1: number,
  Bd: Float32Array,
  cols: number,
  C: Float32Array,
  s: PanelScratch,
): void {
  const K = A.ne[0], mp = m1 - m0, acc = s.acc;
  let i = m0;
  if (cols >= 4) {
    for (; i + 4 <= m1; i += 4) {
      let arr: Float32Array = s.ap, o0 = 0, o1 = K, o2 = 2 * K, o3 = 3 * K;
      const d0 = A.type === F32 ? directRow(A, i, a2, a3) : null;
      if (d0) {
        arr = d0[0] as Float32Array;
        o0 = d0[1];
        o1 = A.idx(0, i + 1, a2, a3);
        o2 = A.idx(0, i + 2, a2, a3);
        o3 = A.idx(0, i + 3, a2, a3);
      } else readRows(A, a2, a3, i, i + 4, s.ap);
      const c = i - m0;
      let j = 0;
      for (; j + 4 <= cols; j += 4) {
        dot4x4(arr, o0, o1, o2, o3, Bd, j * K, (j + 1) * K, (j + 2) * K, (j + 3) * K, K, acc);
        for (let r = 0; r < 4; r++) {
          for (let q = 0; q < 4; q++) C[(j + q) * mp + c + r] = acc[4 * r + q];
        }
      }
      for (; j < cols; j++) {
        C[j * mp + c] = dot(arr, o0, Bd, j * K, K);
        C[j * mp + c + 1] = dot(arr, o1, Bd, j * K, K);
        C[j * mp + c + 2] = dot(arr, o2, Bd, j * K, K);
        C[j * mp + c + 3] = dot(arr, o3, Bd, j * K, K);
      }
    }
  }
  // fewer than 4 columns (or the last rows): two rows at a time against each column
  const a2o = s.acc;
  for (; i < m1; i += 2) {
    const two = i + 1 < m1;
    const d0 = directRow(A, i, a2, a3), d1 = two ? directRow(A, i + 1, a2, a3) : null;
    for (let j = 0; j < cols; j++) {
      if (d0 && d0[0] instanceof Float16Array) {
        dot2F16(d0[0], d0[1], d1 ? d1[1] : d0[1], Bd, j * K, K, a2o);
      } else if (d0) {
        dot2(d0[0] as Float32Array, d0[1], d1 ? d1[1] : d0[1], Bd, j * K, K, a2o);
      } else {
        if (j === 0) readRows(A, a2, a3, i, two ? i + 2 : i + 1, s.ap);
        dot2(s.ap, 0, two ? K : 0, Bd, j * K, K, a2o);
      }
      C[j * mp + i - m0] = a2o[0];
      if (two) C[j * mp + i + 1 - m0] = a2o[1];
    }
  }
}

function run(n: Tensor, ith: number, nth: number): void {
  const a = n.src[0]!, b = n.src[1]!;
  const A = new TensorData(a), B = new TensorData(b), D = new TensorData(n);
  const K = a.ne[0], M = a.ne[1], N = b.ne[1];
  const [, , ne2, ne3] = n.ne;
  const r2 = b.ne[2] / a.ne[2], r3 = b.ne[3] / a.ne[3];
  const round = roundingFor(a.type, b.type);
  const panels = Math.ceil(M / PANEL);
  const [t0, t1] = partRange(panels * ne2 * ne3, ith, nth);
  if (t0 >= t1) return;

  const Bd = new Float32Array(N * K);
  const C = new Float32Array(N * PANEL);
  const scratch = panelScratch(K);
  let batch = -1;
  for (let t = t0; t < t1; t++) {
    const bt = Math.floor(t / panels), p = t - bt * panels;
    const i3 = Math.floor(bt / ne2), i2 = bt - i3 * ne2;
    if (bt !== batch) {
      readRows(B, i2, i3, 0, N, Bd, round);
      batch = bt;
    }
    const m0 = p * PANEL, m1 = Math.min(M, m0 + PANEL), mp = m1 - m0;
    panelProduct(A, Math.floor(i2 / r2), Math.floor(i3 / r3), m0, m1, Bd, N, C, scratch);
    for (let j = 0; j < N; j++) D.writeRow(C, j, i2, i3, j * mp, m0, mp);
  }
}

defineKernels({
  MUL_MAT: {
    supports,
    run,
    work: (n) => n.src[0]!.ne[0] * n.src[0]!.ne[1] * n.src[1]!.ne[1] * n.ne[2] * n.ne[3],
  },
});
