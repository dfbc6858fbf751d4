/**
 * Unary element-wise ops: the UNARY sub-ops (ABS … TRUNC, XIELU) and the ops ggml's CPU runs with
 * the same template (SQR, SQRT, LOG, SIN, COS). Each value is converted to f32, mapped as ggml maps
 * it (step by step in f32 where ggml's formula has several steps), and converted to the destination
 * type. Types: src/dst f32/f32, f16/f16, bf16/bf16, f16→f32, bf16→f32; GELU, GELU_QUICK, GELU_ERF
 * and SILU have their own kernels in ggml, for f32 and f16 only. GELU and GELU_QUICK look up ggml's
 * f16 tables, as ggml does (GELU only within ±10 for f32 inputs).
 * @module
 */

import { nelements, opF32, sameShape, type Tensor } from "../../../protocol/graph/tensor.ts";
import { GgmlType } from "../../../protocol/graph/types.ts";
import { TensorData } from "../tensor_data.ts";
import {
  eachRow,
  fmaxf,
  fminf,
  geluErfF32,
  geluQuickTableF16,
  geluTableF16,
  roundf,
  siluF32,
} from "./common.ts";
import { type CpuKernel, defineKernels } from "./registry.ts";

const { F32, F16, BF16 } = GgmlType;
const f = Math.fround;

/** [src, dst] pairs of ggml's unary_op template. */
const UNARY_TYPES: ReadonlySet<string> = new Set([
  [F32, F32],
  [F16, F16],
  [BF16, BF16],
  [BF16, F32],
  [F16, F32],
].map((t) => t.join()));

/** [src, dst] pairs of the ops with their own f32 and f16 kernels. */
const OWN_KERNEL_TYPES: ReadonlySet<string> = new Set([[F32, F32], [F16, F16]].map((t) => t.join()));

type Fn = (x: number) => number;

/** A kernel mapping each element through `make(node)` (made once per run, e.g. from op_params). */
function mapKernel(types: ReadonlySet<string>, make: (n: Tensor) => Fn): CpuKernel {
  return {
    supports: (n) => {
      const a = n.src[0];
      return !!a && types.has([a.type, n.type].join()) && sameShape(a, n);
    },
    work: (n) => 4 * nelements(n),
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

const unary = (fn: Fn) => mapKernel(UNARY_TYPES, () => fn);

const hardsigmoid: Fn = (x) => fminf(1, fmaxf(0, f(f(x + 3) / 6)));

/** XIELU with alpha_n, alpha_p, beta, eps from op_params[1..4]. */
function xielu(n: Tensor): Fn {
  const an = f(opF32(n, 1)), ap = f(opF32(n, 2)), beta = f(opF32(n, 3)), eps = f(opF32(n, 4));
  return (x) => {
    if (x > 0) return f(f(f(ap * x) * x) + f(beta * x));
    const m = fminf(x, eps);
    return f(f(f(f(Math.expm1(m)) - x) * an) + f(beta * x));
  };
}

const h16 = new Float16Array(1);
const u16 = new Uint16Array(h16.buffer);

/** GELU: ggml's f16 table; f32 inputs saturate outside ±10. */
function gelu(n: Tensor): Fn {
  const t = geluTableF16();
  if (n.src[0]!.type === F16) {
    return (x) => {
      h16[0] = x;
      return t[u16[0]];
    };
  }
  return (x) => {
    if (x <= -10) return 0;
    if (x >= 10) return x;
    h16[0] = x;
    return t[u16[0]];
  };
}

function geluQuick(): Fn {
  const t = geluQuickTableF16();
  return (x) => {
    h16[0] = x;
    return t[u16[0]];
  };
}

/** The unary element maps, by test-backend-ops name. */
export const UNARY_FNS: Readonly<Record<string, Fn>> = {
  ABS: Math.abs,
  SGN: (x) => x > 0 ? 1 : x < 0 ? -1 : 0,
  NEG: (x) => -x,
  STEP: (x) => x > 0 ? 1 : 0,
  TANH: Math.tanh,
  ELU: (x) => x > 0 ? x : Math.expm1(x),
  RELU: (x) => x > 0 ? x : 0,
  SIGMOID: (x) => f(1 / f(1 + f(Math.exp(-x)))),
  HARDSIGMOID: hardsigmoid,
  HARDSWISH: (x) => f(x * hardsigmoid(x)),
  EXP: Math.exp,
  EXPM1: (x) => f(f(Math.exp(x)) - 1),
  SOFTPLUS: (x) => x > 20 ? x : f(Math.log(f(1 + f(Math.exp(x))))),
  FLOOR: Math.floor,
  CEIL: Math.ceil,
  ROUND: roundf,
  TRUNC: Math.trunc,
  SQR: (x) => x * x,
  SQRT: Math.sqrt,
  LOG: Math.log,
  SIN: Math.sin,
  COS: Math.cos,
};

const kernels: Record<string, CpuKernel> = {};
for (const [name, fn] of Object.entries(UNARY_FNS)) kernels[name] = unary(fn);

defineKernels({
  ...kernels,
  XIELU: mapKernel(UNARY_TYPES, xielu),
  GELU: mapKernel(OWN_KERNEL_TYPES, gelu),
  GELU_QUICK: mapKernel(OWN_KERNEL_TYPES, geluQuick),
  GELU_ERF: mapKernel(OWN_KERNEL_TYPES, () => geluErfF32),
  SILU: mapKernel(OWN_KERNEL_TYPES, () => siluF32),
});
