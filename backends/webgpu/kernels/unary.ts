/**
 * UNARY sub-ops on WebGPU (ABS … TRUNC; XIELU is not offered): each element converted to f32,
 * mapped, and converted to the output type, through the element-wise template. Types are ggml
 * CPU's (see elementwise.ts). GELU, GELU_QUICK and GELU_ERF are computed in f32 from their formulas
 * (ggml's CPU reads f16 tables; the difference is far below test-backend-ops' bound).
 * @module
 */

import { simpleMap } from "./elementwise.ts";
import type { Kernel } from "./kernel.ts";
import { defineKernels } from "./registry.ts";

/** WGSL helpers the activations share. */
export const ACT_HELPERS = `fn act_sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
fn act_tanh(x: f32) -> f32 { return tanh(clamp(x, -15.0, 15.0)); }
fn act_gelu(x: f32) -> f32 {
  if (x <= -10.0) { return 0.0; }
  if (x >= 10.0) { return x; }
  return 0.5 * x * (1.0 + act_tanh(0.7978845608028654 * x * (1.0 + 0.044715 * x * x)));
}
fn act_gelu_quick(x: f32) -> f32 { return x * act_sigmoid(1.702 * x); }
fn act_silu(x: f32) -> f32 { return x / (1.0 + exp(-x)); }
fn act_erf(v: f32) -> f32 {
  // Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7)
  let x = abs(v);
  let t = 1.0 / (1.0 + 0.3275911 * x);
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t +
    0.254829592) * t * exp(-x * x);
  return select(-y, y, v >= 0.0);
}
fn act_gelu_erf(x: f32) -> f32 { return 0.5 * x * (1.0 + act_erf(x * 0.7071067811865476)); }
fn act_hardsigmoid(x: f32) -> f32 { return min(1.0, max(0.0, (x + 3.0) / 6.0)); }
`;

/** WGSL expressions of `x` per sub-op. */
const EXPR: Record<string, string> = {
  ABS: "abs(x)",
  SGN: "select(select(0.0, -1.0, x < 0.0), 1.0, x > 0.0)",
  NEG: "-x",
  STEP: "select(0.0, 1.0, x > 0.0)",
  TANH: "act_tanh(x)",
  ELU: "select(exp(x) - 1.0, x, x > 0.0)",
  RELU: "select(0.0, x, x > 0.0)",
  SIGMOID: "act_sigmoid(x)",
  GELU: "act_gelu(x)",
  GELU_QUICK: "act_gelu_quick(x)",
  SILU: "act_silu(x)",
  HARDSWISH: "x * act_hardsigmoid(x)",
  HARDSIGMOID: "act_hardsigmoid(x)",
  EXP: "exp(x)",
  EXPM1: "exp(x) - 1.0",
  SOFTPLUS: "select(log(1.0 + exp(x)), x, x > 20.0)",
  GELU_ERF: "act_gelu_erf(x)",
  FLOOR: "floor(x)",
  CEIL: "ceil(x)",
  ROUND: "select(-floor(-x + 0.5), floor(x + 0.5), x >= 0.0)",
  TRUNC: "trunc(x)",
};

const kernels: Record<string, Kernel> = {};
for (const [name, expr] of Object.entries(EXPR)) {
  kernels[name] = simpleMap(
    1,
    () => `let x = at_s0(i0, i1, i2, i3);\n  return ${expr};`,
    undefined,
    undefined,
    ACT_HELPERS,
  );
}
defineKernels(kernels);
