/**
 * FLASH_ATTN_EXT: softmax(scale·Q·Kᵀ + slope·mask)·V per query row and head, the result permuted to
 * [DV, heads, queries, batch] (f32). Q is f32; K and V f32, f16 or bf16 (each on its own); Q is
 * rounded to K's type before the dot products, as ggml's CPU does. Options as op_params: scale,
 * max_bias (ALiBi slopes per head), logit_softcap (s → softcap·tanh(s/softcap)); an f16 mask (src3)
 * broadcast over heads and batch; f32 sinks (src4, one logit per head that joins the normalisation).
 * K and V heads are shared by groups of query heads (GQA: heads a multiple of K's and V's).
 * Masked (-inf) positions are skipped; a row with nothing left is 0.
 *
 * Rows are computed 4 queries at a time against 4 keys at a time (the vec.ts micro-kernel), with
 * K and V converted to dense f32 once per head; sums are kept in double.
 * @module
 */

import { GgmlType } from "../../../protocol/graph/types.ts";
import { opF32, type Tensor } from "../../../protocol/graph/tensor.ts";
import { roundBf16 } from "../numeric.ts";
import { partRange, TensorData } from "../tensor_data.ts";
import { dot, dot4x4 } from "../vec.ts";
import { alibiSlope } from "./common.ts";
import { readRows } from "./mul_mat.ts";
import { defineKernels } from "./registry.ts";

const { F32, F16, BF16 } = GgmlType;
const KV_TYPES: ReadonlySet<number> = new Set([F32, F16, BF16]);
const f = Math.fround;

function supports(n: Tensor): boolean {
  const [q, k, v, mask, sinks] = n.src;
  if (!q || !k || !v || q.type !== F32 || !KV_TYPES.has(k.type) || !KV_TYPES.has(v.type)) return false;
  if (n.type !== F32) return false;
  const [DK, N, H, Bq] = q.ne;
  if (k.ne[0] !== DK || v.ne[1] !== k.ne[1] || k.ne[3] !== Bq || v.ne[3] !== Bq) return false;
  if (k.ne[2] === 0 || v.ne[2] === 0 || H % k.ne[2] !== 0 || H % v.ne[2] !== 0) return false;
  if (n.ne[0] !== v.ne[0] || n.ne[1] !== H || n.ne[2] !== N || n.ne[3] !== Bq) return false;
  if (mask) {
    if (mask.type !== F16 || mask.ne[0] < k.ne[1] || mask.ne[1] < N || mask.ne[2] === 0 || mask.ne[3] === 0) {
      return false;
    }
    if (H % mask.ne[2] !== 0 || Bq % mask.ne[3] !== 0) return false;
  }
  if (sinks && (sinks.type !== F32 || sinks.ne[0] < H)) return false;
  return true;
}

/** Queries handled together (they share the K rows read for the 4×4 micro-kernel). */
const QB = 4;

function run(n: Tensor, ith: number, nth: number): void {
  const [q, k, v, mask, sinks] = n.src as Tensor[];
  const Q = new TensorData(q), Kt = new TensorData(k), V = new TensorData(v), D = new TensorData(n);
  const Mk = mask ? new TensorData(mask) : null;
  const Sk = sinks ? new TensorData(sinks) : null;
  const [DK, N, H, Bq] = q.ne;
  const DV = v.ne[0], NKV = k.ne[1];
  const rk2 = H / k.ne[2], rv2 = H / v.ne[2];
  let scale = f(opF32(n, 0));
  const maxBias = f(opF32(n, 1)), softcap = f(opF32(n, 2));
  if (softcap !== 0) scale = f(scale / softcap);
  const roundQ = k.type === F16 ? Math.f16round : k.type === BF16 ? roundBf16 : null;

  // work items: blocks of up to QB queries of one head and batch
  const qBlocks = Math.ceil(N / QB);
  const [t0, t1] = partRange(qBlocks * H * Bq, ith, nth);
  if (t0 >= t1) return;

  const Kd = new Float32Array(NKV * DK), Vd = new Float32Array(NKV * DV);
  const Qd = new Float32Array(QB * DK);
  const scores = new Float32Array(QB * NKV);
  const maskRow = new Float32Array(NKV);
  const acc = new Float64Array(16);
  const outD = new Float64Array(DV);
  const out = new Float32Array(DV);
  let kHead = "", vHead = "";

  for (let t = t0; t < t1; t++) {
    const iq3 = Math.floor(t / (qBlocks * H));
    const rem = t - iq3 * qBlocks * H;
    const iq2 = Math.floor(rem / qBlocks);
    const qb = rem - iq2 * qBlocks;
    const q0 = qb * QB, q1 = Math.min(N, q0 + QB), nq = q1 - q0;
    const ik2 = Math.floor(iq2 / rk2), iv2 = Math.floor(iq2 / rv2);
    if (`${ik2},${iq3}` !== kHead) {
      readRows(Kt, ik2, iq3, 0, NKV, Kd);
      kHead = `${ik2},${iq3}`;
    }
    if (`${iv2},${iq3}` !== vHead) {
      readRows(V, iv2, iq3, 0, NKV, Vd);
      vHead = `${iv2},${iq3}`;
    }
    readRows(Q, iq2, iq3, q0, q1, Qd, roundQ);

    // scores[r·NKV + ic] = q_r · k_ic
    let ic = 0;
    if (nq === QB) {
      for (; ic + 4 <= NKV; ic += 4) {
        dot4x4(Qd, 0, DK, 2 * DK, 3 * DK, Kd, ic * DK, (ic + 1) * DK, (ic + 2) * DK, (ic + 3) * DK, DK, acc);
        for (let r = 0; r < 4; r++) {
          for (let c = 0; c < 4; c++) scores[r * NKV + ic + c] = acc[4 * r + c];
        }
      }
    }
    for (; ic < NKV; ic++) {
      for (let r = 0; r < nq; r++) scores[r * NKV + ic] = dot(Qd, r * DK, Kd, ic * DK, DK);
    }

    const slope = alibiSlope(maxBias, H, iq2);
    const sink = Sk ? Sk.get(iq2, 0, 0, 0) : 0;
    for (let r = 0; r < nq; r++) {
      const iq1 = q0 + r;
      if (Mk) Mk.readRow(maskRow, iq1, iq2 % Mk.ne[2], iq3 % Mk.ne[3], 0, 0, NKV);
      const srow = r * NKV;
      let max = -Infinity;
      for (let j = 0; j < NKV; j++) {
        const mv = Mk ? f(slope * maskRow[j]) : 0;
        if (mv === -Infinity) {
          scores[srow + j] = -Infinity;
          continue;
        }
        let s = f(scores[srow + j] * scale);
        if (softcap !== 0) s = f(softcap * f(Math.tanh(s)));
        s = f(s + mv);
        scores[srow + j] = s;
        if (s > max) max = s;
      }
      if (Sk && sink > max) max = sink;
      let sum = 0;
      outD.fill(0);
      for (let j = 0; j < NKV; j++) {
        const s = scores[srow + j];
        if (s === -Infinity) continue;
        const w = Math.exp(s - max);
        sum += w;
        const vo = j * DV;
        for (let d = 0; d < DV; d++) outD[d] += w * Vd[vo + d];
      }
      if (Sk) sum += Math.exp(sink - max);
      const inv = sum === 0 ? 0 : 1 / sum;
      for (let d = 0; d < DV; d++) out[d] = outD[d] * inv;
      D.writeRow(out, iq2, iq1, iq3);
    }
  }
}

defineKernels({
  FLASH_ATTN_EXT: {
    supports,
    run,
    work: (n) => {
      const [q, k, v] = n.src as Tensor[];
      return q.ne[1] * q.ne[2] * q.ne[3] * k.ne[1] * (k.ne[0] + v.ne[0]);
    },
  },
});
