/**
 * Helpers the op families share: splitting rows over threads, C's comparison macros and libm
 * functions with their NaN behaviour, f32 constants, and an erf accurate to double precision.
 * @module
 */

import type { Tensor } from "../../../protocol/graph/tensor.ts";
import { nrows } from "../../../protocol/graph/tensor.ts";
import { forRows, partRange } from "../tensor_data.ts";

/** Calls `f(i1, i2, i3)` for thread `ith`'s share of the rows of `node` (ggml's row split). */
export function eachRow(
  node: Tensor,
  ith: number,
  nth: number,
  f: (i1: number, i2: number, i3: number) => void,
): void {
  const [r0, r1] = partRange(nrows(node), ith, nth);
  forRows(node.ne, r0, r1, f);
}

/** `fmaxf`: the larger, ignoring a NaN operand. */
export function fmaxf(a: number, b: number): number {
  if (a !== a) return b;
  if (b !== b) return a;
  return a > b ? a : b;
}

/** `fminf`: the smaller, ignoring a NaN operand. */
export function fminf(a: number, b: number): number {
  if (a !== a) return b;
  if (b !== b) return a;
  return a < b ? a : b;
}

/** ggml's `MAX(a, b)` macro: `a > b ? a : b` (NaN in a yields b). */
export function cmax(a: number, b: number): number {
  return a > b ? a : b;
}

/** ggml's `MIN(a, b)` macro: `a < b ? a : b`. */
export function cmin(a: number, b: number): number {
  return a < b ? a : b;
}

/** `roundf`: halves away from zero. */
export function roundf(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

const f = Math.fround;
const TWO_OVER_SQRT_PI = 1.1283791670955126;
const INV_SQRT_PI = 0.5641895835477563;

/** The error function, to about double precision (series for |x| < 3, continued fraction above). */
export function erf(x: number): number {
  if (x !== x) return x;
  const ax = Math.abs(x);
  if (ax < 3) {
    // erf(x) = 2/√π · e^(-x²) · Σ 2ⁿ x^(2n+1) / (1·3·…·(2n+1)): positive terms, no cancellation
    const x2 = ax * ax;
    let term = ax, sum = ax;
    for (let n = 1; n < 200; n++) {
      term *= 2 * x2 / (2 * n + 1);
      sum += term;
      if (term < sum * 1e-17) break;
    }
    const r = TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
    return x < 0 ? -r : r;
  }
  if (ax > 6) return x < 0 ? -1 : 1;
  // erfc(x) = e^(-x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …))))), modified Lentz
  const tiny = 1e-300;
  let fv = ax, c = ax, d = 0;
  for (let n = 1; n < 300; n++) {
    const a = n / 2;
    d = ax + a * d;
    d = d === 0 ? tiny : 1 / d;
    c = ax + a / c;
    if (c === 0) c = tiny;
    const delta = c * d;
    fv *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) * INV_SQRT_PI / fv;
  return x < 0 ? erfc - 1 : 1 - erfc;
}

/** ggml's f32 constants of the GELU family. */
export const GELU_COEF_A: number = f(0.044715);
export const GELU_QUICK_COEF: number = f(-1.702);
export const SQRT_2_OVER_PI: number = f(0.79788456080286535587989211986876);
export const SQRT_2_INV: number = f(0.70710678118654752440084436210484);

/** `ggml_gelu_f32`, step by step in f32. */
export function geluF32(x: number): number {
  const inner = f(f(SQRT_2_OVER_PI * x) * f(1 + f(f(GELU_COEF_A * x) * x)));
  return f(f(0.5 * x) * f(1 + f(Math.tanh(inner))));
}

/** `ggml_gelu_quick_f32` in f32. */
export function geluQuickF32(x: number): number {
  return f(x * f(1 / f(1 + f(Math.exp(f(GELU_QUICK_COEF * x))))));
}

/** GELU with erf, as ggml computes it in f32: 0.5·x·(1 + erf(x/√2)). */
export function geluErfF32(x: number): number {
  return f(f(0.5 * x) * f(1 + f(erf(f(x * SQRT_2_INV)))));
}

/** `ggml_silu_f32`: x / (1 + e^-x) in f32. */
export function siluF32(x: number): number {
  return f(x / f(1 + f(Math.exp(-x))));
}

let geluTable: Float32Array | null = null;
let geluQuickTable: Float32Array | null = null;

function f16Table(fn: (x: number) => number): Float32Array {
  const t = new Float32Array(65536);
  const h = new Float16Array(1);
  const u = new Uint16Array(h.buffer);
  const out = new Float16Array(1);
  for (let i = 0; i < 65536; i++) {
    u[0] = i;
    out[0] = fn(h[0]);
    t[i] = out[0];
  }
  return t;
}

/**
 * ggml's `ggml_table_gelu_f16`: GELU of every f16 value, rounded to f16 (as values). ggml's GELU
 * looks results up here, for f16 and (within ±10) f32 inputs alike.
 */
export function geluTableF16(): Float32Array {
  return geluTable ??= f16Table(geluF32);
}

/** ggml's `ggml_table_gelu_quick_f16`. */
export function geluQuickTableF16(): Float32Array {
  return geluQuickTable ??= f16Table(geluQuickF32);
}

/** `powf` in f32. */
export function powf(a: number, b: number): number {
  return f(Math.pow(a, b));
}

/** ALiBi slope of head `h` as ggml computes it (1 when max_bias is 0). */
export function alibiSlope(maxBias: number, nHead: number, h: number): number {
  if (!(maxBias > 0)) return 1;
  const nHeadLog2 = 2 ** Math.floor(Math.log2(nHead));
  const m0 = powf(2, f(-maxBias / nHeadLog2));
  const m1 = powf(2, f(f(-maxBias / 2) / nHeadLog2));
  return h < nHeadLog2 ? powf(m0, h + 1) : powf(m1, 2 * (h - nHeadLog2) + 1);
}
