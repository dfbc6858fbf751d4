/**
 * ARGSORT and TOP_K on WebGPU (f32 → i32 indices), with the CPU reference's order: ascending or
 * descending (ARGSORT op_params[0]), equal values by index, NaN last; TOP_K gives the indices of the
 * k = dst.ne[0] largest elements of each row, largest first, with the first two swapped as ggml does.
 *
 * Sorting is a bitonic network run on the index array in dst itself, one dispatch per network step
 * (every row at once), comparing the source values the indices point at. The network is the
 * "flip" form over the next power of two, whose missing elements act as +∞ and never move, so any
 * row length works. TOP_K first selects, one workgroup per row: a radix select over the values'
 * order-preserving bit patterns (four 8-bit passes with a shared histogram) finds the k-th largest
 * value T; every index with a larger value and the first indices equal to T (in index order, via a
 * workgroup scan) are gathered into dst; the k gathered indices are then sorted as above.
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
  type Kernel,
  packFields,
  paramStruct,
} from "./kernel.ts";
import { defineKernels } from "./registry.ts";

const { F32, I32 } = GgmlType;
const WG = 256;
/** Row lengths beyond this are refused (bitonic passes stay under ~800 dispatches). */
const MAX_LEN = 1 << 24;

function rowsOf(t: Tensor): number {
  return t.ne[1] * t.ne[2] * t.ne[3];
}

function commonOk(n: Tensor): boolean {
  const a = n.src[0];
  return !!a && a.type === F32 && n.type === I32 && elementAddressable(a) && elementAddressable(n) &&
    a.ne[0] <= MAX_LEN && nelements(a) < 2 ** 32;
}

/** Whether ARGSORT node `n` is what these kernels compute. */
export function supportsArgsort(n: Tensor): boolean {
  const order = opI32(n, 0);
  return commonOk(n) && sameShape(n.src[0]!, n) && (order === 0 || order === 1) &&
    grid(rowsOf(n) * Math.ceil(pow2(n.ne[0]) / 2 / WG)) !== null;
}

/** Whether TOP_K node `n` is what these kernels compute. */
export function supportsTopK(n: Tensor): boolean {
  const a = n.src[0];
  return commonOk(n) && n.ne[0] >= 1 && n.ne[0] <= a!.ne[0] && n.ne[1] === a!.ne[1] && n.ne[2] === a!.ne[2] &&
    n.ne[3] === a!.ne[3] && grid(rowsOf(n)) !== null &&
    grid(rowsOf(n) * Math.ceil(pow2(n.ne[0]) / 2 / WG)) !== null;
}

function pow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** Parameters every sort kernel reads. */
function baseFields(n: Tensor, info: BindInfo): Field[] {
  const a = n.src[0]!;
  return [
    ...tensorFields("a", a, info),
    ...tensorFields("d", n, info),
    ["ne0", "u32", a.ne[0]],
    ["ne1", "u32", a.ne[1]],
    ["ne2", "u32", a.ne[2]],
    ["rows", "u32", rowsOf(a)],
    ["len", "u32", n.ne[0]],
  ];
}

const ROW = `  let i1 = row % p.ne1;\n  let i2 = (row / p.ne1) % p.ne2;\n  let i3 = row / (p.ne1 * p.ne2);\n`;

/** WGSL: `before(i, j, base)`: whether source element i sorts before j (NaN last, ties by index). */
function comparator(desc: boolean): string {
  return `fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }\n` +
    `fn before(i: u32, j: u32, base: u32) -> bool {\n` +
    `  let x = ld_a(base + i * p.a_s0);\n  let y = ld_a(base + j * p.a_s0);\n` +
    `  let xn = is_nan(x);\n  let yn = is_nan(y);\n` +
    `  if (xn || yn) { if (xn && yn) { return i < j; } return yn; }\n` +
    `  if (x != y) { return ${desc ? "x > y" : "x < y"}; }\n` +
    `  return i < j;\n}\n`;
}

/** One bitonic step over the first `len` indices of each row of dst. */
function stepDispatch(n: Tensor, info: BindInfo, desc: boolean, d: number, flip: boolean): Dispatch {
  const half = pow2(n.ne[0]) / 2;
  const per = Math.ceil(half / WG);
  const fields: Field[] = [...baseFields(n, info), ["dist", "u32", d], ["flip", "u32", flip ? 1 : 0], [
    "per",
    "u32",
    per,
  ], ["half", "u32", half]];
  const code = paramStruct("P", fields) + declareTensor("a", F32, 0, false) +
    `@group(0) @binding(1) var<storage, read_write> d: array<i32>;\n` +
    `@group(0) @binding(2) var<uniform> p: P;\n` + comparator(desc) + entry(WG) +
    `  let row = lin / p.per;\n  if (row >= p.rows) { return; }\n` +
    `  let q = (lin % p.per) * ${WG}u + t;\n  if (q >= p.half) { return; }\n` + ROW +
    `  let blk = (q / p.dist) * 2u * p.dist;\n  let off = q % p.dist;\n` +
    `  let lo = blk + off;\n  let hi = select(lo + p.dist, blk + 2u * p.dist - 1u - off, p.flip == 1u);\n` +
    `  if (hi >= p.len) { return; }\n` +
    `  let base = ${at("a", "0u", "i1", "i2", "i3")};\n` +
    `  let li = ${at("d", "lo", "i1", "i2", "i3")};\n  let hi_i = ${at("d", "hi", "i1", "i2", "i3")};\n` +
    `  let x = u32(d[li]);\n  let y = u32(d[hi_i]);\n` +
    `  if (before(y, x, base)) { d[li] = i32(y); d[hi_i] = i32(x); }\n}\n`;
  return {
    key: `sort_step:${desc ? "desc" : "asc"}`,
    code,
    bindings: [{ tensor: n.src[0]!, write: false }, { tensor: n, write: true }],
    params: packFields(fields),
    groups: grid(n.ne[1] * n.ne[2] * n.ne[3] * per)!,
  };
}

/** Every bitonic step that sorts the first dst.ne[0] indices of each row. */
function sortSteps(n: Tensor, info: BindInfo, desc: boolean): Dispatch[] {
  const out: Dispatch[] = [];
  const N = pow2(n.ne[0]);
  for (let s = 2; s <= N; s *= 2) {
    out.push(stepDispatch(n, info, desc, s / 2, true));
    for (let d = s / 4; d >= 1; d /= 2) out.push(stepDispatch(n, info, desc, d, false));
  }
  return out;
}

/** dst[i] = i along every row. */
function iotaDispatch(n: Tensor, info: BindInfo): Dispatch {
  const fields = baseFields(n, info);
  const per = Math.ceil(n.ne[0] / WG);
  fields.push(["per", "u32", per]);
  const code = paramStruct("P", fields) +
    `@group(0) @binding(0) var<storage, read_write> d: array<i32>;\n` +
    `@group(0) @binding(1) var<uniform> p: P;\n` + entry(WG) +
    `  let row = lin / p.per;\n  if (row >= p.rows) { return; }\n` +
    `  let i = (lin % p.per) * ${WG}u + t;\n  if (i >= p.len) { return; }\n` + ROW +
    `  d[${at("d", "i", "i1", "i2", "i3")}] = i32(i);\n}\n`;
  return {
    key: "sort_iota",
    code,
    bindings: [{ tensor: n, write: true }],
    params: packFields(fields),
    groups: grid(rowsOf(n) * per)!,
  };
}

/** TOP_K's selection: the k largest (ties: lowest indices) of each row into dst, unordered. */
function selectDispatch(n: Tensor, info: BindInfo): Dispatch {
  const fields = baseFields(n, info);
  const code = paramStruct("P", fields) + declareTensor("a", F32, 0, false) +
    `@group(0) @binding(1) var<storage, read_write> d: array<i32>;\n` +
    `@group(0) @binding(2) var<uniform> p: P;\n` +
    `var<workgroup> hist: array<atomic<u32>, 256>;\n` +
    `var<workgroup> scan: array<u32, ${WG}>;\n` +
    `var<workgroup> pick: array<u32, 2>;\n` +
    `var<workgroup> gt: atomic<u32>;\n` +
    // order-preserving key; NaN lowest (it sorts last in a descending order)
    `fn key(x: f32) -> u32 {\n  let u = bitcast<u32>(x);\n  if ((u & 0x7fffffffu) > 0x7f800000u) { return 0u; }\n` +
    `  return select(u | 0x80000000u, ~u, (u & 0x80000000u) != 0u);\n}\n` +
    entry(WG) +
    `  let row = lin;\n  if (row >= p.rows) { return; }\n` + ROW +
    `  let base = ${at("a", "0u", "i1", "i2", "i3")};\n` +
    `  var prefix = 0u;\n  var need = p.len;\n` +
    `  for (var ps = 0u; ps < 4u; ps++) {\n` +
    `    let shift = 24u - ps * 8u;\n` +
    `    let hmask = select(~((1u << (shift + 8u)) - 1u), 0u, ps == 0u);\n` +
    `    atomicStore(&hist[t], 0u);\n    workgroupBarrier();\n` +
    `    for (var i = t; i < p.ne0; i += ${WG}u) {\n` +
    `      let k = key(ld_a(base + i * p.a_s0));\n` +
    `      if ((k & hmask) == prefix) { atomicAdd(&hist[(k >> shift) & 255u], 1u); }\n` +
    `    }\n    workgroupBarrier();\n` +
    `    if (t == 0u) {\n      var acc = 0u;\n      var dg = 255u;\n` +
    `      loop {\n        let c = atomicLoad(&hist[dg]);\n        if (acc + c >= need || dg == 0u) { break; }\n` +
    `        acc += c;\n        dg -= 1u;\n      }\n      pick[0] = dg;\n      pick[1] = need - acc;\n    }\n` +
    `    workgroupBarrier();\n` +
    `    prefix = prefix | (pick[0] << shift);\n    need = pick[1];\n    workgroupBarrier();\n  }\n` +
    // prefix is the k-th largest key; `need` of the elements equal to it are taken
    `  if (t == 0u) { atomicStore(&gt, 0u); }\n  workgroupBarrier();\n` +
    `  let ngt = p.len - need;\n` +
    `  var eqBase = 0u;\n` +
    `  let chunks = (p.ne0 + ${WG - 1}u) / ${WG}u;\n` +
    `  for (var c = 0u; c < chunks; c++) {\n` +
    `    let i = c * ${WG}u + t;\n    var k = 0u;\n    var valid = i < p.ne0;\n` +
    `    if (valid) { k = key(ld_a(base + i * p.a_s0)); }\n` +
    `    if (valid && k > prefix) {\n      let at_ = atomicAdd(&gt, 1u);\n` +
    `      if (at_ < ngt) { d[${at("d", "at_", "i1", "i2", "i3")}] = i32(i); }\n    }\n` +
    `    let eq = select(0u, 1u, valid && k == prefix);\n` +
    `    scan[t] = eq;\n    workgroupBarrier();\n` +
    `    for (var o = 1u; o < ${WG}u; o <<= 1u) {\n` +
    `      var v = 0u;\n      if (t >= o) { v = scan[t - o]; }\n      workgroupBarrier();\n` +
    `      scan[t] += v;\n      workgroupBarrier();\n    }\n` +
    `    let pos = eqBase + scan[t] - eq;\n` +
    `    if (eq == 1u && pos < need) { d[${at("d", "ngt + pos", "i1", "i2", "i3")}] = i32(i); }\n` +
    `    eqBase += scan[${WG - 1}u];\n    workgroupBarrier();\n  }\n}\n`;
  return {
    key: "top_k_select",
    code,
    bindings: [{ tensor: n.src[0]!, write: false }, { tensor: n, write: true }],
    params: packFields(fields),
    groups: grid(rowsOf(n))!,
  };
}

/** Swaps the first two indices of each row (what ggml's TOP_K does to stress their order). */
function swapDispatch(n: Tensor, info: BindInfo): Dispatch {
  const fields = baseFields(n, info);
  const per = Math.ceil(rowsOf(n) / WG);
  const code = paramStruct("P", fields) +
    `@group(0) @binding(0) var<storage, read_write> d: array<i32>;\n` +
    `@group(0) @binding(1) var<uniform> p: P;\n` + entry(WG) +
    `  let row = lin * ${WG}u + t;\n  if (row >= p.rows) { return; }\n` + ROW +
    `  let x = ${at("d", "0u", "i1", "i2", "i3")};\n  let y = ${at("d", "1u", "i1", "i2", "i3")};\n` +
    `  let v = d[x];\n  d[x] = d[y];\n  d[y] = v;\n}\n`;
  return {
    key: "top_k_swap",
    code,
    bindings: [{ tensor: n, write: true }],
    params: packFields(fields),
    groups: grid(per)!,
  };
}

const argsort: Kernel = {
  supports: (n) => supportsArgsort(n),
  build: (n, ctx) => [iotaDispatch(n, ctx), ...sortSteps(n, ctx, opI32(n, 0) === 1)],
};

const topK: Kernel = {
  supports: (n) => supportsTopK(n),
  build: (n, ctx) => [
    selectDispatch(n, ctx),
    ...sortSteps(n, ctx, true),
    ...(n.ne[0] > 1 ? [swapDispatch(n, ctx)] : []),
  ],
};

defineKernels({ ARGSORT: argsort, TOP_K: topK });
