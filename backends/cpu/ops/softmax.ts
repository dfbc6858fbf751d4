/**
 * SOFT_MAX over rows (f32), ggml_soft_max_ext: softmax(x·scale + slope·mask) with an optional mask
 * (src1, f32 or f16, broadcast over dims 2 and 3, row i of the mask for row i of x), ALiBi slopes
 * when op_params[1] max_bias > 0, and optional attention sinks (src2, one f32 logit per head that
 * joins the normalisation but not the output). DIAG_MASK_INF: -inf above the diagonal shifted by
 * op_params[0] n_past.
 * @module
 */

import { nelements, opF32, opI32, sameShape } from "../../../protocol/graph/tensor.ts";
import { GgmlType } from "../../../protocol/graph/types.ts";
import { TensorData } from "../tensor_data.ts";
import { alibiSlope, cmax, eachRow } from "./common.ts";
import { type CpuKernel, defineKernels } from "./registry.ts";

const { F32, F16 } = GgmlType;
const f = Math.fround;

const softMax: CpuKernel = {
  supports: (n) => {
    const a = n.src[0], mask = n.src[1], sinks = n.src[2];
    if (!a || a.type !== F32 || n.type !== F32 || !sameShape(a, n)) return false;
    if (mask) {
      if (mask.type !== F32 && mask.type !== F16) return false;
      if (mask.ne[0] !== a.ne[0] || mask.ne[1] < a.ne[1] || mask.ne[2] === 0 || mask.ne[3] === 0) {
        return false;
      }
      if (a.ne[2] % mask.ne[2] !== 0 || a.ne[3] % mask.ne[3] !== 0) return false;
    }
    if (sinks && (sinks.type !== F32 || sinks.ne[0] < a.ne[2])) return false;
    return true;
  },
  work: (n) => 8 * nelements(n),
  run: (n, ith, nth) => {
    const a = n.src[0]!, mask = n.src[1], sinks = n.src[2];
    const A = new TensorData(a), D = new TensorData(n);
    const M = mask ? new TensorData(mask) : null;
    const S = sinks ? new TensorData(sinks) : null;
    const scale = f(opF32(n, 0)), maxBias = f(opF32(n, 1));
    const nHead = a.ne[2];
    const ne0 = a.ne[0];
    const w = new Float32Array(ne0), m = new Float32Array(ne0);
    eachRow(n, ith, nth, (i1, i2, i3) => {
      const slope = alibiSlope(maxBias, nHead, i2);
      A.readRow(w, i1, i2, i3);
      for (let i = 0; i < ne0; i++) w[i] *= scale;
      if (M) {
        M.readRow(m, i1, i2 % M.ne[2], i3 % M.ne[3]);
        for (let i = 0; i < ne0; i++) w[i] += f(slope * m[i]);
      }
      let max = -Infinity;
      for (let i = 0; i < ne0; i++) max = cmax(max, w[i]);
      const sink = S ? S.get(i2, 0, 0, 0) : 0;
      if (S) max = cmax(max, sink);
      let sum = 0;
      for (let i = 0; i < ne0; i++) {
        w[i] = Math.exp(w[i] - max);
        sum += w[i];
      }
      if (S) sum += f(Math.exp(f(sink - max)));
      const inv = f(1 / sum);
      for (let i = 0; i < ne0; i++) w[i] *= inv;
      D.writeRow(w, i1, i2, i3);
    });
  },
};

const diagMaskInf: CpuKernel = {
  supports: (n) => {
    const a = n.src[0];
    return !!a && a.type === F32 && n.type === F32 && sameShape(a, n) && opI32(n, 0) >= 0;
  },
  run: (n) => {
    const A = new TensorData(n.src[0]!), D = new TensorData(n);
    const nPast = opI32(n, 0);
    const x = new Float32Array(n.ne[0]);
    eachRow(n, 0, 1, (i1, i2, i3) => {
      A.readRow(x, i1, i2, i3);
      for (let i = Math.max(nPast, nPast + i1 + 1); i < x.length; i++) x[i] = -Infinity;
      D.writeRow(x, i1, i2, i3);
    });
  },
};

defineKernels({ SOFT_MAX: softMax, DIAG_MASK_INF: diagMaskInf });
