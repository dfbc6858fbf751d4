/**
 * OUT_PROD: dst[i0, i1, i2, i3] = Σ_k src0[i0, k, i2/r2, i3/r3] · src1[i1, k, i2, i3] (f32 result;
 * src1 f32; src0 f32 broadcast over dims 2 and 3, or f16 with matching dims 2 and 3, as ggml's CPU
 * supports it). Sums are kept in double.
 * @module
 */

import { GgmlType } from "../../../protocol/graph/types.ts";
import { nelements, type Tensor } from "../../../protocol/graph/tensor.ts";
import { TensorData } from "../tensor_data.ts";
import { axpy } from "../vec.ts";
import { eachRow } from "./common.ts";
import { readRows } from "./mul_mat.ts";
import { type CpuKernel, defineKernels } from "./registry.ts";

const { F32, F16 } = GgmlType;

function supports(n: Tensor): boolean {
  const a = n.src[0], b = n.src[1];
  if (!a || !b || b.type !== F32 || n.type !== F32) return false;
  if (a.type !== F32 && !(a.type === F16 && a.ne[2] === b.ne[2] && a.ne[3] === b.ne[3])) return false;
  return a.ne[1] === b.ne[1] && n.ne[0] === a.ne[0] && n.ne[1] === b.ne[0] && n.ne[2] === b.ne[2] &&
    n.ne[3] === b.ne[3] && a.ne[2] > 0 && a.ne[3] > 0 && n.ne[2] % a.ne[2] === 0 && n.ne[3] % a.ne[3] === 0;
}

const outProd: CpuKernel = {
  supports,
  work: (n) => nelements(n) * n.src[0]!.ne[1],
  run: (n, ith, nth) => {
    const a = n.src[0]!, b = n.src[1]!;
    const A = new TensorData(a), B = new TensorData(b), D = new TensorData(n);
    const ne0 = n.ne[0], K = a.ne[1];
    const r2 = n.ne[2] / a.ne[2], r3 = n.ne[3] / a.ne[3];
    const Ad = new Float32Array(K * ne0);
    const acc = new Float32Array(ne0);
    let batch = "";
    eachRow(n, ith, nth, (i1, i2, i3) => {
      const a2 = Math.floor(i2 / r2), a3 = Math.floor(i3 / r3);
      const key = `${a2},${a3}`;
      if (key !== batch) {
        readRows(A, a2, a3, 0, K, Ad);
        batch = key;
      }
      acc.fill(0);
      for (let k = 0; k < K; k++) axpy(acc, 0, B.get(i1, k, i2, i3), Ad, k * ne0, ne0);
      D.writeRow(acc, i1, i2, i3);
    });
  },
};

defineKernels({ OUT_PROD: outProd });
