/**
 * Element-wise ops with parameters: SCALE (dst = x·s + b, f32), CLAMP (f32, f16) and LEAKY_RELU
 * (f32, f16), with ggml's op_params layouts and NaN behaviour (CLAMP's MAX(MIN(x, max), min) maps
 * NaN to max; LEAKY_RELU maps NaN to 0).
 * @module
 */

import { nelements, opF32, sameShape, type Tensor } from "../../../protocol/graph/tensor.ts";
import { GgmlType } from "../../../protocol/graph/types.ts";
import { TensorData } from "../tensor_data.ts";
import { cmax, cmin, eachRow } from "./common.ts";
import { type CpuKernel, defineKernels } from "./registry.ts";

const { F32, F16 } = GgmlType;
const f = Math.fround;

function mapRows(types: ReadonlySet<number>, make: (n: Tensor) => (x: number) => number): CpuKernel {
  return {
    supports: (n) => {
      const a = n.src[0];
      return !!a && types.has(a.type) && n.type === a.type && sameShape(a, n);
    },
    work: (n) => nelements(n),
    run: (n, ith, nth) => {
      const fn = make(n);
      const A = new TensorData(n.src[0]!), D = new TensorData(n);
      const x = new Float32Array(n.ne[0]);
      eachRow(n, ith, nth, (i1, i2, i3) => {
        A.readRow(x, i1, i2, i3);
        for (let i = 0; i < x.length; i++) x[i] = fn(x[i]);
        D.writeRow(x, i1, i2, i3);
      });
    },
  };
}

/** SCALE: x·s when b = 0, else fma(x, s, b) (ggml_vec_mad1_f32). */
function scale(n: Tensor): (x: number) => number {
  const s = f(opF32(n, 0)), b = f(opF32(n, 1));
  return b === 0 ? (x) => x * s : (x) => x * s + b;
}

function clamp(n: Tensor): (x: number) => number {
  const lo = f(opF32(n, 0)), hi = f(opF32(n, 1));
  return (x) => cmax(cmin(x, hi), lo);
}

function leakyRelu(n: Tensor): (x: number) => number {
  const ns = f(opF32(n, 0));
  return (x) => (x > 0 ? x : 0) + f(ns * (x < 0 ? x : 0));
}

defineKernels({
  SCALE: mapRows(new Set([F32]), scale),
  CLAMP: mapRows(new Set([F32, F16]), clamp),
  LEAKY_RELU: mapRows(new Set([F32, F16]), leakyRelu),
});
