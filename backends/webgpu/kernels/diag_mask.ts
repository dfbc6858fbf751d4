/**
 * DIAG_MASK_INF on WebGPU (f32): element i0 of row i1 becomes -inf where i0 > n_past + i1
 * (op_params[0] n_past ≥ 0), everything else is copied. Any strides; one invocation per element.
 * @module
 */

import { GgmlType } from "../../../protocol/graph/types.ts";
import { nelements, opI32, sameShape, type Tensor } from "../../../protocol/graph/tensor.ts";
import { at, elementAddressable, entry, tensorFields } from "./access.ts";
import {
  type BindInfo,
  declareTensor,
  type Dispatch,
  type Field,
  grid,
  packFields,
  paramStruct,
} from "./kernel.ts";
import { defineKernels } from "./registry.ts";

const { F32 } = GgmlType;
const WG = 256;

/** Whether DIAG_MASK_INF node `n` is what this kernel computes. */
export function supportsDiagMaskInf(n: Tensor): boolean {
  const a = n.src[0];
  return !!a && a.type === F32 && n.type === F32 && sameShape(a, n) && opI32(n, 0) >= 0 &&
    elementAddressable(a) && elementAddressable(n) && grid(Math.ceil(nelements(n) / WG)) !== null;
}

/** The dispatch computing DIAG_MASK_INF node `n`. */
export function diagMaskInfDispatch(n: Tensor, info: BindInfo): Dispatch {
  const a = n.src[0]!;
  const fields: Field[] = [
    ...tensorFields("a", a, info),
    ...tensorFields("d", n, info),
    ["ne0", "u32", n.ne[0]],
    ["ne1", "u32", n.ne[1]],
    ["ne2", "u32", n.ne[2]],
    ["total", "u32", nelements(n)],
    ["n_past", "u32", opI32(n, 0)],
    ["ninf", "u32", 0xff800000],
  ];
  const code = paramStruct("P", fields) + declareTensor("a", F32, 0, false) +
    `@group(0) @binding(1) var<storage, read_write> d: array<f32>;\n` +
    `@group(0) @binding(2) var<uniform> p: P;\n` + entry(WG) +
    `  let e = lin * ${WG}u + t;\n  if (e >= p.total) { return; }\n` +
    `  let i0 = e % p.ne0;\n  let r = e / p.ne0;\n  let i1 = r % p.ne1;\n  let i2 = (r / p.ne1) % p.ne2;\n` +
    `  let i3 = r / (p.ne1 * p.ne2);\n` +
    `  var v = ld_a(${at("a", "i0", "i1", "i2", "i3")});\n` +
    `  if (i0 > p.n_past + i1) { v = bitcast<f32>(p.ninf); }\n` +
    `  d[${at("d", "i0", "i1", "i2", "i3")}] = v;\n}\n`;
  return {
    key: "diag_mask_inf",
    code,
    bindings: [{ tensor: a, write: false }, { tensor: n, write: true }],
    params: packFields(fields),
    groups: grid(Math.ceil(nelements(n) / WG))!,
  };
}

defineKernels({
  DIAG_MASK_INF: {
    supports: (n) => supportsDiagMaskInf(n),
    build: (n, ctx) => [diagMaskInfDispatch(n, ctx)],
  },
});
