/**
 * SOFT_MAX on WebGPU (f32): softmax(x·scale + slope·mask) per row, as ggml_soft_max_ext defines it —
 * an optional f32 or f16 mask broadcast over dims 2 and 3 (row i1 of the mask for row i1 of x),
 * ALiBi slopes when max_bias > 0, and optional attention sinks (one f32 logit per head that joins
 * the normalisation but not the output). Any strides.
 *
 * One workgroup per row: one pass keeps a running maximum and a rescaled running sum per
 * invocation (online softmax), the workgroup combines them, and a second pass writes
 * exp(v - max) / sum. A fully masked row gives NaN, as ggml's CPU does.
 * @module
 */

import { GgmlType, typeName } from "../../../protocol/graph/types.ts";
import { opF32, sameShape, type Tensor } from "../../../protocol/graph/tensor.ts";
import {
  ALIBI,
  alibiBases,
  at,
  elementAddressable,
  entry,
  ROW_WG,
  tensorFields,
  WG_REDUCE,
} from "./access.ts";
import {
  type BindInfo,
  declareTensor,
  type Dispatch,
  elemStrides,
  type Field,
  grid,
  packFields,
  paramStruct,
} from "./kernel.ts";
import { defineKernels } from "./registry.ts";

const { F32, F16 } = GgmlType;

/** Whether SOFT_MAX node `n` is what this kernel computes. */
export function supportsSoftMax(n: Tensor): boolean {
  const a = n.src[0], mask = n.src[1], sinks = n.src[2];
  if (
    !a || a.type !== F32 || n.type !== F32 || !sameShape(a, n) || !elementAddressable(a) ||
    !elementAddressable(n)
  ) {
    return false;
  }
  if (mask) {
    if ((mask.type !== F32 && mask.type !== F16) || !elementAddressable(mask)) return false;
    if (mask.ne[0] !== a.ne[0] || mask.ne[1] < a.ne[1] || mask.ne[2] === 0 || mask.ne[3] === 0) return false;
    if (a.ne[2] % mask.ne[2] !== 0 || a.ne[3] % mask.ne[3] !== 0) return false;
  }
  if (sinks && (sinks.type !== F32 || sinks.ne[0] < a.ne[2] || !elementAddressable(sinks))) return false;
  return grid(a.ne[1] * a.ne[2] * a.ne[3]) !== null;
}

/** The dispatch computing SOFT_MAX node `n`. */
export function softMaxDispatch(n: Tensor, info: BindInfo): Dispatch {
  const a = n.src[0]!, mask = n.src[1], sinks = n.src[2];
  const maxBias = Math.fround(opF32(n, 1));
  const [m0, m1, nhl2] = alibiBases(maxBias, a.ne[2]);
  const fields: Field[] = [
    ...tensorFields("a", a, info),
    ...tensorFields("d", n, info),
    ...(mask ? tensorFields("m", mask, info) : []),
    ["mne2", "u32", mask ? mask.ne[2] : 1],
    ["mne3", "u32", mask ? mask.ne[3] : 1],
    ["s_off", "u32", sinks ? info.elemOffset(sinks) : 0],
    ["s_s0", "u32", sinks ? elemStrides(sinks)![0] : 0],
    ["ne0", "u32", a.ne[0]],
    ["ne1", "u32", a.ne[1]],
    ["ne2", "u32", a.ne[2]],
    ["rows", "u32", a.ne[1] * a.ne[2] * a.ne[3]],
    ["scale", "f32", opF32(n, 0)],
    ["max_bias", "f32", maxBias],
    ["m0", "f32", m0],
    ["m1", "f32", m1],
    ["nhl2", "u32", nhl2],
  ];
  const bindings: Dispatch["bindings"] = [{ tensor: a, write: false }];
  let decl = declareTensor("a", F32, 0, false);
  if (mask) {
    decl += declareTensor("mk", mask.type, bindings.length, false);
    bindings.push({ tensor: mask, write: false });
  }
  if (sinks) {
    decl += declareTensor("sk", F32, bindings.length, false);
    bindings.push({ tensor: sinks, write: false });
  }
  decl += `@group(0) @binding(${bindings.length}) var<storage, read_write> d: array<f32>;\n`;
  bindings.push({ tensor: n, write: true });
  decl += `@group(0) @binding(${bindings.length}) var<uniform> p: P;\n`;
  const val = `ld_a(${at("a", "i", "i1", "i2", "i3")}) * p.scale` +
    (mask ? ` + slope * ld_mk(${at("m", "i", "i1", "i2 % p.mne2", "i3 % p.mne3")})` : "");
  const code = paramStruct("P", fields) + decl + WG_REDUCE + ALIBI + entry(ROW_WG) +
    `  if (lin >= p.rows) { return; }\n` +
    `  let i1 = lin % p.ne1;\n  let i2 = (lin / p.ne1) % p.ne2;\n  let i3 = lin / (p.ne1 * p.ne2);\n` +
    `  let slope = alibi(i2);\n` +
    `  var m = -3.402823e38;\n  var s = 0.0;\n` +
    `  for (var i = t; i < p.ne0; i += ${ROW_WG}u) {\n` +
    `    let v = ${val};\n` +
    `    if (v > m) { s = s * exp(m - v) + 1.0; m = v; } else { s += exp(v - m); }\n` +
    `  }\n` +
    `  var gm = wg_max(m, t);\n` +
    (sinks ? `  let sink = ld_sk(p.s_off + i2 * p.s_s0);\n  gm = max(gm, sink);\n` : "") +
    `  var gs = wg_sum(s * exp(m - gm), t);\n` +
    (sinks ? `  gs += exp(sink - gm);\n` : "") +
    `  let inv = 1.0 / gs;\n` +
    `  for (var i = t; i < p.ne0; i += ${ROW_WG}u) {\n` +
    `    let v = ${val};\n` +
    `    d[${at("d", "i", "i1", "i2", "i3")}] = exp(v - gm) * inv;\n` +
    `  }\n}\n`;
  return {
    key: `soft_max:${mask ? typeName(mask.type) : "-"}:${sinks ? "sinks" : "-"}`,
    code,
    bindings,
    params: packFields(fields),
    groups: grid(a.ne[1] * a.ne[2] * a.ne[3])!,
  };
}

defineKernels({
  SOFT_MAX: { supports: (n) => supportsSoftMax(n), build: (n, ctx) => [softMaxDispatch(n, ctx)] },
});
