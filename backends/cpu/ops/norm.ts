/**
 * Normalizations over rows (dim 0), f32: NORM (x - mean) / sqrt(var + eps), RMS_NORM
 * x / sqrt(mean(x²) + eps), L2_NORM x / max(‖x‖, eps) — eps in op_params[0] — and GROUP_NORM over
 * groups of channels (dim 2; op_params[0] groups, op_params[1] eps). Sums accumulate in double and
 * the scale is formed in f32, as ggml does.
 * @module
 */

import { nelements, opF32, opI32, sameShape, type Tensor } from "../../../protocol/graph/tensor.ts";
import { GgmlType } from "../../../protocol/graph/types.ts";
import { TensorData } from "../tensor_data.ts";
import { eachRow, fmaxf } from "./common.ts";
import { type CpuKernel, defineKernels } from "./registry.ts";

const f = Math.fround;

function supportsF32(n: Tensor): boolean {
  const a = n.src[0];
  return !!a && a.type === GgmlType.F32 && n.type === GgmlType.F32 && sameShape(a, n);
}

/** A per-row normalization: `fill` rewrites the row in place. */
function rowNorm(fill: (x: Float32Array, eps: number) => void): CpuKernel {
  return {
    supports: supportsF32,
    work: (n) => 3 * nelements(n),
    run: (n, ith, nth) => {
      const eps = f(opF32(n, 0));
      const A = new TensorData(n.src[0]!), D = new TensorData(n);
      const x = new Float32Array(n.ne[0]);
      eachRow(n, ith, nth, (i1, i2, i3) => {
        A.readRow(x, i1, i2, i3);
        fill(x, eps);
        D.writeRow(x, i1, i2, i3);
      });
    },
  };
}

function norm(x: Float32Array, eps: number): void {
  const n = x.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += x[i];
  const mean = f(f(sum) / n);
  let v = 0;
  for (let i = 0; i < n; i++) {
    const d = f(x[i] - mean);
    x[i] = d;
    v += f(d * d);
  }
  const variance = f(v / n);
  const scale = f(1 / f(Math.sqrt(f(variance + eps))));
  for (let i = 0; i < n; i++) x[i] *= scale;
}

function rmsNorm(x: Float32Array, eps: number): void {
  const n = x.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += f(x[i] * x[i]);
  const mean = f(sum / n);
  const scale = f(1 / f(Math.sqrt(f(mean + eps))));
  for (let i = 0; i < n; i++) x[i] *= scale;
}

function l2Norm(x: Float32Array, eps: number): void {
  const n = x.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += f(x[i] * x[i]);
  const scale = f(1 / fmaxf(f(Math.sqrt(sum)), eps));
  for (let i = 0; i < n; i++) x[i] *= scale;
}

const groupNorm: CpuKernel = {
  supports: (n) => supportsF32(n) && opI32(n, 0) > 0,
  run: (n) => {
    const A = new TensorData(n.src[0]!), D = new TensorData(n);
    const [ne0, ne1, ne2, ne3] = n.ne;
    const groups = opI32(n, 0), eps = f(opF32(n, 1));
    const perGroup = Math.ceil(ne2 / groups);
    const x = new Float32Array(ne0);
    for (let g = 0; g < groups; g++) {
      const start = g * perGroup, end = Math.min(start + perGroup, ne2);
      if (start >= end) continue;
      const count = ne0 * ne1 * (end - start);
      for (let i3 = 0; i3 < ne3; i3++) {
        let sum = 0;
        for (let i2 = start; i2 < end; i2++) {
          for (let i1 = 0; i1 < ne1; i1++) {
            A.readRow(x, i1, i2, i3);
            for (let i = 0; i < ne0; i++) sum += x[i];
          }
        }
        const mean = f(sum / count);
        let sum2 = 0;
        for (let i2 = start; i2 < end; i2++) {
          for (let i1 = 0; i1 < ne1; i1++) {
            A.readRow(x, i1, i2, i3);
            for (let i = 0; i < ne0; i++) {
              const d = f(x[i] - mean);
              x[i] = d;
              sum2 += f(d * d);
            }
            D.writeRow(x, i1, i2, i3);
          }
        }
        const scale = f(1 / f(Math.sqrt(f(f(sum2 / count) + eps))));
        for (let i2 = start; i2 < end; i2++) {
          for (let i1 = 0; i1 < ne1; i1++) {
            D.readRow(x, i1, i2, i3);
            for (let i = 0; i < ne0; i++) x[i] *= scale;
            D.writeRow(x, i1, i2, i3);
          }
        }
      }
    }
  },
};

defineKernels({
  NORM: rowNorm(norm),
  RMS_NORM: rowNorm(rmsNorm),
  L2_NORM: rowNorm(l2Norm),
  GROUP_NORM: groupNorm,
});
