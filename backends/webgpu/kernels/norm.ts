/**
 * Row normalizations on WebGPU (f32, any strides), eps in op_params[0]: NORM (x - mean) /
 * sqrt(var + eps), RMS_NORM x / sqrt(mean(x²) + eps), L2_NORM x / max(‖x‖, eps). One workgroup per
 * row; sums through workgroup memory. (GROUP_NORM is not offered on this device.)
 * @module
 */

import { GgmlType } from "../../../protocol/graph/types.ts";
import { opF32, sameShape, type Tensor } from "../../../protocol/graph/tensor.ts";
import { at, elementAddressable, entry, ROW_WG, tensorFields, WG_REDUCE } from "./access.ts";
import {
  type BindInfo,
  declareTensor,
  type Dispatch,
  type Field,
  grid,
  type Kernel,
  packFields,
  paramStruct,
} from "./kernel.ts";
import { defineKernels } from "./registry.ts";

const { F32 } = GgmlType;

/** The normalizations this file computes, by op name. */
export type NormKind = "NORM" | "RMS_NORM" | "L2_NORM";

/** Whether a row normalization node `n` is what these kernels compute. */
export function supportsNorm(n: Tensor): boolean {
  const a = n.src[0];
  return !!a && a.type === F32 && n.type === F32 && sameShape(a, n) && elementAddressable(a) &&
    elementAddressable(n) && grid(a.ne[1] * a.ne[2] * a.ne[3]) !== null;
}

/** The scale of a row from its sums, per kind (x already centred for NORM). */
const BODY: Record<NormKind, string> = {
  NORM: `  var s = 0.0;
  for (var i = t; i < p.ne0; i += ${ROW_WG}u) { s += X(i); }
  let mean = wg_sum(s, t) / f32(p.ne0);
  var v = 0.0;
  for (var i = t; i < p.ne0; i += ${ROW_WG}u) { let c = X(i) - mean; v += c * c; }
  let variance = wg_sum(v, t) / f32(p.ne0);
  let scale = 1.0 / sqrt(variance + p.eps);
  for (var i = t; i < p.ne0; i += ${ROW_WG}u) { D(i, (X(i) - mean) * scale); }
`,
  RMS_NORM: `  var s = 0.0;
  for (var i = t; i < p.ne0; i += ${ROW_WG}u) { let x = X(i); s += x * x; }
  let mean = wg_sum(s, t) / f32(p.ne0);
  let scale = 1.0 / sqrt(mean + p.eps);
  for (var i = t; i < p.ne0; i += ${ROW_WG}u) { D(i, X(i) * scale); }
`,
  L2_NORM: `  var s = 0.0;
  for (var i = t; i < p.ne0; i += ${ROW_WG}u) { let x = X(i); s += x * x; }
  let scale = 1.0 / max(sqrt(wg_sum(s, t)), p.eps);
  for (var i = t; i < p.ne0; i += ${ROW_WG}u) { D(i, X(i) * scale); }
`,
};

/** The dispatch computing normalization `kind` of node `n`. */
export function normDispatch(kind: NormKind, n: Tensor, info: BindInfo): Dispatch {
  const a = n.src[0]!;
  const rows = a.ne[1] * a.ne[2] * a.ne[3];
  const fields: Field[] = [
    ...tensorFields("a", a, info),
    ...tensorFields("d", n, info),
    ["ne0", "u32", a.ne[0]],
    ["ne1", "u32", a.ne[1]],
    ["ne2", "u32", a.ne[2]],
    ["rows", "u32", rows],
    ["eps", "f32", opF32(n, 0)],
  ];
  const code = paramStruct("P", fields) + declareTensor("a", F32, 0, false) +
    `@group(0) @binding(1) var<storage, read_write> d: array<f32>;\n` +
    `@group(0) @binding(2) var<uniform> p: P;\n` + WG_REDUCE +
    `var<private> i1: u32;\nvar<private> i2: u32;\nvar<private> i3: u32;\n` +
    `fn X(i: u32) -> f32 { return ld_a(${at("a", "i", "i1", "i2", "i3")}); }\n` +
    `fn D(i: u32, v: f32) { d[${at("d", "i", "i1", "i2", "i3")}] = v; }\n` +
    entry(ROW_WG) +
    `  if (lin >= p.rows) { return; }\n` +
    `  i1 = lin % p.ne1;\n  i2 = (lin / p.ne1) % p.ne2;\n  i3 = lin / (p.ne1 * p.ne2);\n` +
    BODY[kind] + `}\n`;
  return {
    key: `norm:${kind}`,
    code,
    bindings: [{ tensor: a, write: false }, { tensor: n, write: true }],
    params: packFields(fields),
    groups: grid(rows)!,
  };
}

const normKernel = (kind: NormKind): Kernel => ({
  supports: (n) => supportsNorm(n),
  build: (n, ctx) => [normDispatch(kind, n, ctx)],
});

defineKernels({ NORM: normKernel("NORM"), RMS_NORM: normKernel("RMS_NORM"), L2_NORM: normKernel("L2_NORM") });
