/**
 * ARGSORT (f32 → i32 indices of each row in ascending or descending order, op_params[0]) and TOP_K
 * (the indices of the k = dst.ne[0] largest elements of each row, largest first, then the first two
 * swapped as ggml does to stress that their order is unspecified). Equal values keep index order
 * (ggml's std::sort leaves ties unspecified); NaNs sort last.
 * @module
 */

import { nelements, opI32, sameShape } from "../../../protocol/graph/tensor.ts";
import { GgmlType } from "../../../protocol/graph/types.ts";
import { TensorData } from "../tensor_data.ts";
import { eachRow } from "./common.ts";
import { type CpuKernel, defineKernels } from "./registry.ts";

const { F32, I32 } = GgmlType;

/** Sorts `idx` (0 … n-1) by `x`, descending when `desc`, ties by index, NaN last. */
function sortIndices(idx: Int32Array, x: Float32Array, desc: boolean): void {
  for (let i = 0; i < idx.length; i++) idx[i] = i;
  idx.sort((a, b) => {
    const va = x[a], vb = x[b];
    if (va !== va || vb !== vb) return va !== va ? (vb !== vb ? a - b : 1) : -1;
    if (va !== vb) return desc ? (vb > va ? 1 : -1) : (va > vb ? 1 : -1);
    return a - b;
  });
}

const argsort: CpuKernel = {
  supports: (n) => {
    const a = n.src[0], order = opI32(n, 0);
    return !!a && a.type === F32 && n.type === I32 && sameShape(a, n) && (order === 0 || order === 1);
  },
  work: (n) => 16 * nelements(n),
  run: (n, ith, nth) => {
    const A = new TensorData(n.src[0]!), D = new TensorData(n);
    const desc = opI32(n, 0) === 1;
    const x = new Float32Array(n.ne[0]), idx = new Int32Array(n.ne[0]);
    eachRow(n, ith, nth, (i1, i2, i3) => {
      A.readRow(x, i1, i2, i3);
      sortIndices(idx, x, desc);
      for (let i = 0; i < idx.length; i++) D.set(i, i1, i2, i3, idx[i]);
    });
  },
};

const topK: CpuKernel = {
  supports: (n) => {
    const a = n.src[0];
    return !!a && a.type === F32 && n.type === I32 && n.ne[0] <= a.ne[0] && n.ne[1] === a.ne[1] &&
      n.ne[2] === a.ne[2] && n.ne[3] === a.ne[3];
  },
  work: (n) => 16 * nelements(n.src[0]!),
  run: (n, ith, nth) => {
    const A = new TensorData(n.src[0]!), D = new TensorData(n);
    const k = n.ne[0];
    const x = new Float32Array(A.ne[0]), idx = new Int32Array(A.ne[0]);
    eachRow(n, ith, nth, (i1, i2, i3) => {
      A.readRow(x, i1, i2, i3);
      sortIndices(idx, x, true);
      if (k > 1) [idx[0], idx[1]] = [idx[1], idx[0]];
      for (let i = 0; i < k; i++) D.set(i, i1, i2, i3, idx[i]);
    });
  },
};

defineKernels({ ARGSORT: argsort, TOP_K: topK });
