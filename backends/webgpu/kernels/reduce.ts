/**
 * Reductions on WebGPU, with ggml's CPU semantics (backends/cpu/ops/reduce.ts):
 * - SUM: every element → one value of the source's type (f32, f16, bf16); like ggml's CPU it reads
 *   each row as ne[0] packed elements from the row's start whatever nb[0] says;
 * - SUM_ROWS, MEAN: each row → one f32;
 * - CUMSUM: running sum along rows (f32), a workgroup scan per row;
 * - ARGMAX: index of each row's maximum as i32 (the last of equal maxima, as ggml's CPU);
 * - COUNT_EQUAL: how many i32 elements of two tensors agree, as one i64.
 * Sums are f32, through workgroup memory.
 * @module
 */

import { GgmlType, typeName } from "../../../protocol/graph/types.ts";
import { nelements, sameShape, type Tensor } from "../../../protocol/graph/tensor.ts";
import { at, elementAddressable, entry, ROW_WG, tensorFields, WG_REDUCE } from "./access.ts";
import {
  type BindInfo,
  declareTensor,
  type Dispatch,
  type Field,
  grid,
  HALF_HELPERS,
  isFloat,
  type Kernel,
  packFields,
  paramStruct,
} from "./kernel.ts";
import { defineKernels } from "./registry.ts";

const { F32, I32, I64 } = GgmlType;
const U32_MAX = 0xffffffff;

/** Reduction ops of this file, by op name. */
export type ReduceKind = "SUM" | "SUM_ROWS" | "MEAN" | "CUMSUM" | "ARGMAX" | "COUNT_EQUAL";

function strided(...ts: Tensor[]): boolean {
  return ts.every((t) => elementAddressable(t));
}

/** Whether reduction `kind` of node `n` is what these kernels compute. */
export function supportsReduce(kind: ReduceKind, n: Tensor): boolean {
  const a = n.src[0], b = n.src[1];
  if (!a || !strided(a, n) || nelements(a) > U32_MAX) return false;
  switch (kind) {
    case "SUM":
      return isFloat(a.type) && n.type === a.type && nelements(n) === 1;
    case "SUM_ROWS":
    case "MEAN":
      return a.type === F32 && n.type === F32 && n.ne[0] === 1 && n.ne[1] === a.ne[1] &&
        n.ne[2] === a.ne[2] &&
        n.ne[3] === a.ne[3] && grid(a.ne[1] * a.ne[2] * a.ne[3]) !== null;
    case "CUMSUM":
      return a.type === F32 && n.type === F32 && sameShape(a, n) &&
        grid(a.ne[1] * a.ne[2] * a.ne[3]) !== null;
    case "ARGMAX":
      return a.type === F32 && n.type === I32 && a.ne[2] === 1 && a.ne[3] === 1 && n.ne[0] === a.ne[1] &&
        n.ne[1] === 1 && n.ne[2] === 1 && n.ne[3] === 1 && grid(a.ne[1]) !== null;
    case "COUNT_EQUAL":
      return !!b && a.type === I32 && b.type === I32 && n.type === I64 && sameShape(a, b) &&
        nelements(n) === 1 &&
        strided(b);
  }
}

const ROW_INDEX =
  `  let i1 = lin % p.ne1;\n  let i2 = (lin / p.ne1) % p.ne2;\n  let i3 = lin / (p.ne1 * p.ne2);\n`;

/** The dispatch computing reduction `kind` of node `n`. */
export function reduceDispatch(kind: ReduceKind, n: Tensor, info: BindInfo): Dispatch {
  const a = n.src[0]!;
  const rows = a.ne[1] * a.ne[2] * a.ne[3];
  const fields: Field[] = [
    ...tensorFields("a", a, info),
    ...tensorFields("d", n, info),
    ["ne0", "u32", a.ne[0]],
    ["ne1", "u32", a.ne[1]],
    ["ne2", "u32", a.ne[2]],
    ["rows", "u32", rows],
    ["total", "u32", nelements(a)],
  ];
  const bindings: Dispatch["bindings"] = [{ tensor: a, write: false }];
  let decl = declareTensor("a", a.type, 0, false);
  let body: string;
  let groups: [number, number, number] = [1, 1, 1];
  switch (kind) {
    case "SUM": {
      // one workgroup walks every packed row; a half-precision result is one half of a word
      const half = a.type !== F32;
      decl += half
        ? HALF_HELPERS + declareTensor("d", n.type, 1, true, true)
        : `@group(0) @binding(1) var<storage, read_write> d: array<f32>;\n`;
      bindings.push({ tensor: n, write: true, atomic: half });
      body = `  var s = 0.0;\n` +
        `  for (var e = t; e < p.total; e += ${ROW_WG}u) {\n` +
        `    let i0 = e % p.ne0;\n    let lin = e / p.ne0;\n${ROW_INDEX.replaceAll("  let", "    let")}` +
        `    s += ld_a(p.a_off + i0 + i1 * p.a_s1 + i2 * p.a_s2 + i3 * p.a_s3);\n  }\n` +
        `  let r = wg_sum(s, t);\n` +
        `  if (t == 0u) { ${half ? "st_d(p.d_off, r);" : "d[p.d_off] = r;"} }\n`;
      break;
    }
    case "SUM_ROWS":
    case "MEAN":
      decl += `@group(0) @binding(1) var<storage, read_write> d: array<f32>;\n`;
      bindings.push({ tensor: n, write: true });
      groups = grid(rows)!;
      body = `  if (lin >= p.rows) { return; }\n${ROW_INDEX}` +
        `  var s = 0.0;\n` +
        `  for (var i = t; i < p.ne0; i += ${ROW_WG}u) { s += ld_a(${at("a", "i", "i1", "i2", "i3")}); }\n` +
        `  let r = wg_sum(s, t);\n` +
        `  if (t == 0u) { d[${at("d", "0u", "i1", "i2", "i3")}] = r${
          kind === "MEAN" ? " / f32(p.ne0)" : ""
        }; }\n`;
      break;
    case "CUMSUM":
      decl += `@group(0) @binding(1) var<storage, read_write> d: array<f32>;\n` +
        `var<workgroup> scan: array<f32, ${ROW_WG}>;\n`;
      bindings.push({ tensor: n, write: true });
      groups = grid(rows)!;
      // each invocation owns a contiguous chunk: local sum, a workgroup scan of the sums, then the
      // chunk's running sums from its exclusive prefix
      body = `  if (lin >= p.rows) { return; }\n${ROW_INDEX}` +
        `  let chunk = (p.ne0 + ${ROW_WG - 1}u) / ${ROW_WG}u;\n` +
        `  let c0 = min(t * chunk, p.ne0);\n  let c1 = min(c0 + chunk, p.ne0);\n` +
        `  var s = 0.0;\n` +
        `  for (var i = c0; i < c1; i++) { s += ld_a(${at("a", "i", "i1", "i2", "i3")}); }\n` +
        `  scan[t] = s;\n  workgroupBarrier();\n` +
        `  for (var o = 1u; o < ${ROW_WG}u; o <<= 1u) {\n` +
        `    var v = 0.0;\n    if (t >= o) { v = scan[t - o]; }\n    workgroupBarrier();\n` +
        `    scan[t] += v;\n    workgroupBarrier();\n  }\n` +
        `  var run = scan[t] - s;\n` +
        `  for (var i = c0; i < c1; i++) {\n` +
        `    run += ld_a(${at("a", "i", "i1", "i2", "i3")});\n    d[${
          at("d", "i", "i1", "i2", "i3")
        }] = run;\n  }\n`;
      break;
    case "ARGMAX":
      decl += `@group(0) @binding(1) var<storage, read_write> d: array<i32>;\n` +
        `var<workgroup> bv: array<f32, ${ROW_WG}>;\nvar<workgroup> bi: array<u32, ${ROW_WG}>;\n`;
      bindings.push({ tensor: n, write: true });
      groups = grid(a.ne[1])!;
      // ties: the larger index wins (ggml's CPU keeps the last index equal to the running maximum)
      body = `  if (lin >= p.ne1) { return; }\n  let i1 = lin;\n` +
        `  var m = -3.402823e38;\n  var mi = 0u;\n  var seen = false;\n` +
        `  for (var i = t; i < p.ne0; i += ${ROW_WG}u) {\n` +
        `    let v = ld_a(${at("a", "i", "i1", "0u", "0u")});\n` +
        `    if (!seen || v >= m) { m = v; mi = i; seen = true; }\n  }\n` +
        `  bv[t] = select(-3.402823e38, m, seen);\n  bi[t] = select(0u, mi, seen);\n  workgroupBarrier();\n` +
        `  for (var s = ${ROW_WG / 2}u; s > 0u; s >>= 1u) {\n` +
        `    if (t < s) {\n` +
        `      let v = bv[t + s];\n      let j = bi[t + s];\n` +
        `      if (v > bv[t] || (v == bv[t] && j > bi[t])) { bv[t] = v; bi[t] = j; }\n    }\n` +
        `    workgroupBarrier();\n  }\n` +
        `  if (t == 0u) { d[p.d_off + i1 * p.d_s0] = i32(bi[0]); }\n`;
      break;
    case "COUNT_EQUAL": {
      const b = n.src[1]!;
      fields.push(...tensorFields("b", b, info));
      decl += declareTensor("b", I32, 1, false) +
        `@group(0) @binding(2) var<storage, read_write> d: array<u32>;\n` +
        `var<workgroup> cnt: array<u32, ${ROW_WG}>;\n`;
      bindings.push({ tensor: b, write: false }, { tensor: n, write: true });
      body = `  var c = 0u;\n` +
        `  for (var e = t; e < p.total; e += ${ROW_WG}u) {\n` +
        `    let i0 = e % p.ne0;\n    let lin = e / p.ne0;\n${ROW_INDEX.replaceAll("  let", "    let")}` +
        `    if (ld_a(${at("a", "i0", "i1", "i2", "i3")}) == ld_b(${
          at("b", "i0", "i1", "i2", "i3")
        })) { c++; }\n` +
        `  }\n` +
        `  cnt[t] = c;\n  workgroupBarrier();\n` +
        `  for (var s = ${ROW_WG / 2}u; s > 0u; s >>= 1u) {\n` +
        `    if (t < s) { cnt[t] += cnt[t + s]; }\n    workgroupBarrier();\n  }\n` +
        `  if (t == 0u) { d[2u * p.d_off] = cnt[0]; d[2u * p.d_off + 1u] = 0u; }\n`;
      break;
    }
  }
  decl += `@group(0) @binding(${bindings.length}) var<uniform> p: P;\n`;
  const code = paramStruct("P", fields) + decl + WG_REDUCE + entry(ROW_WG) + body + `}\n`;
  return {
    key: `reduce:${kind}:${typeName(a.type)}`,
    code,
    bindings,
    params: packFields(fields),
    groups,
  };
}

const reduceKernel = (kind: ReduceKind): Kernel => ({
  supports: (n) => supportsReduce(kind, n),
  build: (n, ctx) => [reduceDispatch(kind, n, ctx)],
});

defineKernels({
  SUM: reduceKernel("SUM"),
  SUM_ROWS: reduceKernel("SUM_ROWS"),
  MEAN: reduceKernel("MEAN"),
  CUMSUM: reduceKernel("CUMSUM"),
  ARGMAX: reduceKernel("ARGMAX"),
  COUNT_EQUAL: reduceKernel("COUNT_EQUAL"),
});
