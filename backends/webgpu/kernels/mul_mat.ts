/**
 * MUL_MAT on WebGPU: dst[i, j, i2, i3] = Σ_k a[k, i, i2/r2, i3/r3] · b[k, j, i2, i3] for f32, f16 or
 * bf16 weights `a` and f32 activations `b` (or `b` of `a`'s type, as ggml allows), batched over dims
 * 2 and 3 with `a` broadcast, any strides (permuted and non-contiguous operands), any element
 * offsets. dst is f32 with any strides. Sums are f32.
 *
 * Two kernels:
 * - mat-vec, for n ≤ 8 columns (token generation): bandwidth-bound, so each workgroup streams a few
 *   rows of `a` with 16-byte loads (8 halves or 4 floats per load) when rows are packed and aligned,
 *   keeps every column's partial sums in registers, and reduces across the workgroup in shared
 *   memory; element-wise strided loads otherwise.
 * - tiled, for more columns: 16×16 invocations each computing 8×8, 4×8 or 4×4 outputs (the largest
 *   tile that still gives a few workgroups per SM), k-slices of `a` and `b` staged in workgroup
 *   memory as f32, f32 sums.
 * @module
 */

import { GgmlType, typeName } from "../../../protocol/graph/types.ts";
import type { Tensor } from "../../../protocol/graph/tensor.ts";
import { elementAddressable } from "./access.ts";
import {
  type BindInfo,
  declareTensor,
  type Dispatch,
  elemStrides,
  type Field,
  grid,
  isFloat,
  LINEAR_WG,
  packFields,
  paramStruct,
} from "./kernel.ts";
import { defineKernels } from "./registry.ts";

const { F32, F16 } = GgmlType;

/** Columns up to which the mat-vec kernel runs. */
export const MATVEC_MAX_N = 8;
/** Invocations of a mat-vec workgroup. */
const MV_WG = 128;

/** Whether MUL_MAT of these operands is exactly what these kernels compute. */
export function supportsMulMat(n: Tensor): boolean {
  const a = n.src[0], b = n.src[1];
  if (!a || !b || n.type !== F32 || !isFloat(a.type) || !isFloat(b.type)) return false;
  if (b.type !== F32 && b.type !== a.type) return false;
  if (!elementAddressable(a) || !elementAddressable(b) || !elementAddressable(n)) return false;
  if (a.ne[0] !== b.ne[0] || n.ne[0] !== a.ne[1] || n.ne[1] !== b.ne[1] || n.ne[2] !== b.ne[2]) return false;
  if (n.ne[3] !== b.ne[3] || a.ne[2] <= 0 || a.ne[3] <= 0) return false;
  if (b.ne[2] % a.ne[2] !== 0 || b.ne[3] % a.ne[3] !== 0) return false;
  return plan(n) !== null;
}

/** Shared operand layout: offsets, sizes, element strides, broadcast. */
function layoutFields(n: Tensor, info: BindInfo, vec: number): Field[] {
  const a = n.src[0]!, b = n.src[1]!;
  const sa = elemStrides(a)!, sb = elemStrides(b)!, sd = elemStrides(n)!;
  // vec > 1: a and b indices are in vectors of `vec` elements along k (offsets and row strides)
  const va = vec, vb = vec === 8 ? 4 : vec;
  return [
    ["a_off", "u32", info.elemOffset(a) / va],
    ["b_off", "u32", info.elemOffset(b) / vb],
    ["d_off", "u32", info.elemOffset(n)],
    ["K", "u32", a.ne[0]],
    ["M", "u32", a.ne[1]],
    ["N", "u32", b.ne[1]],
    ["sa0", "u32", sa[0]],
    ["sa1", "u32", sa[1] / va],
    ["sa2", "u32", sa[2] / va],
    ["sa3", "u32", sa[3] / va],
    ["sb0", "u32", sb[0]],
    ["sb1", "u32", sb[1] / vb],
    ["sb2", "u32", sb[2] / vb],
    ["sb3", "u32", sb[3] / vb],
    ["sd0", "u32", sd[0]],
    ["sd1", "u32", sd[1]],
    ["sd2", "u32", sd[2]],
    ["sd3", "u32", sd[3]],
    ["ne2", "u32", n.ne[2]],
    ["r2", "u32", b.ne[2] / a.ne[2]],
    ["r3", "u32", b.ne[3] / a.ne[3]],
    ["batches", "u32", n.ne[2] * n.ne[3]],
  ];
}

/**
 * The vector width of the mat-vec kernel for `n`: 8 (f16/bf16 a) or 4 (f32 a) when rows of a and b
 * are packed, k is a multiple of it and every row start is 16-byte aligned within its binding, else 1.
 */
function vecWidth(n: Tensor, info: BindInfo | null): number {
  const a = n.src[0]!, b = n.src[1]!;
  if (b.type !== F32) return 1;
  const w = a.type === F32 ? 4 : 8;
  const sa = elemStrides(a)!, sb = elemStrides(b)!;
  if (sa[0] !== 1 || sb[0] !== 1 || a.ne[0] % w !== 0) return 1;
  if ([sa[1], sa[2], sa[3]].some((s) => s % w !== 0)) return 1;
  if ([sb[1], sb[2], sb[3]].some((s) => s % 4 !== 0)) return 1;
  if (info && (info.elemOffset(a) % w !== 0 || info.elemOffset(b) % 4 !== 0)) return 1;
  return w;
}

/** Rows per mat-vec workgroup for `cols` columns. */
export function rowsPerGroup(cols: number): number {
  return cols <= 4 ? 2 : 1;
}

/** Workgroup counts, or null when the grid cannot be dispatched. */
function plan(n: Tensor): { matvec: boolean; groups: [number, number, number] } | null {
  const M = n.ne[0], N = n.ne[1], batches = n.ne[2] * n.ne[3];
  if (N <= MATVEC_MAX_N) {
    const g = grid(Math.ceil(M / rowsPerGroup(N)) * batches);
    return g ? { matvec: true, groups: g } : null;
  }
  const tl = tilingFor(M, N, batches);
  const g = grid(Math.ceil(M / (16 * tl.tm)) * Math.ceil(N / (16 * tl.tn)) * batches);
  return g ? { matvec: false, groups: g } : null;
}

/** The WGSL that loads 16 bytes of `a` as two vec4<f32> (8 halves) or one (4 floats). */
function vecLoadA(type: number): string {
  if (type === F32) return "";
  const unpack = type === F16
    ? "vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y))"
    : "vec4<f32>(bitcast<f32>(w.x << 16u), bitcast<f32>(w.x & 0xffff0000u), " +
      "bitcast<f32>(w.y << 16u), bitcast<f32>(w.y & 0xffff0000u))";
  const unpackHi = unpack.replaceAll("w.x", "w.z").replaceAll("w.y", "w.w");
  return `fn lo8(w: vec4<u32>) -> vec4<f32> { return ${unpack}; }\n` +
    `fn hi8(w: vec4<u32>) -> vec4<f32> { return ${unpackHi}; }\n`;
}

/**
 * How a mat-vec workgroup finds its operands: WGSL that, from the batch index `bt`, defines `ab`
 * and `bb` (where this batch's a and b start, in the kernel's load units) and `db` (where its dst
 * matrix starts), plus extra declarations (bindings after a, b, dst).
 */
export interface MatvecBatch {
  prologue: string;
  decl: string;
  /** Binding index of dst (later ones follow it). */
  dstBinding: number;
}

/** MUL_MAT's batches: dims 2 and 3, with a broadcast. */
const MUL_MAT_BATCH: MatvecBatch = {
  prologue: `  let i2 = bt % p.ne2;\n  let i3 = bt / p.ne2;\n` +
    `  let ab = p.a_off + (i2 / p.r2) * p.sa2 + (i3 / p.r3) * p.sa3;\n` +
    `  let bb = p.b_off + i2 * p.sb2 + i3 * p.sb3;\n` +
    `  let db = p.d_off + i2 * p.sd2 + i3 * p.sd3;\n`,
  decl: `@group(0) @binding(3) var<uniform> p: P;\n`,
  dstBinding: 2,
};

/**
 * The mat-vec shader for `cols` columns with loads of `vec` elements (1: strided scalar loads),
 * batches located by `batch`.
 */
export function matvecCode(
  aType: number,
  bType: number,
  cols: number,
  vec: number,
  fields: Field[],
  batch: MatvecBatch = MUL_MAT_BATCH,
): string {
  const R = rowsPerGroup(cols), RN = R * cols;
  let decl: string;
  let body: string;
  if (vec > 1) {
    const aElem = aType === F32 ? "vec4<f32>" : "vec4<u32>";
    decl = `@group(0) @binding(0) var<storage, read> a: array<${aElem}>;\n` +
      `@group(0) @binding(1) var<storage, read> b: array<vec4<f32>>;\n` + vecLoadA(aType);
    const loadsB = Array.from(
      { length: cols },
      (_, j) =>
        vec === 8
          ? `    let b${j}l = b[bb + ${j}u * p.sb1 + c * 2u]; let b${j}h = b[bb + ${j}u * p.sb1 + c * 2u + 1u];\n`
          : `    let b${j}l = b[bb + ${j}u * p.sb1 + c];\n`,
    ).join("");
    const rows = Array.from({ length: R }, (_, r) => {
      const load = `    let w${r} = a[ab + min(row0 + ${r}u, p.M - 1u) * p.sa1 + c];\n` +
        (vec === 8 ? `    let x${r}l = lo8(w${r}); let x${r}h = hi8(w${r});\n` : `    let x${r}l = w${r};\n`);
      const fma = Array.from(
        { length: cols },
        (_, j) =>
          vec === 8
            ? `    acc[${r * cols + j}] += dot(x${r}l, b${j}l) + dot(x${r}h, b${j}h);\n`
            : `    acc[${r * cols + j}] += dot(x${r}l, b${j}l);\n`,
      ).join("");
      return load + fma;
    }).join("");
    body = `  let nc = p.K / ${vec}u;\n  for (var c = t; c < nc; c += WG) {\n${loadsB}${rows}  }\n`;
  } else {
    decl = declareTensor("a", aType, 0, false) + declareTensor("b", bType, 1, false);
    const loadsB = Array.from(
      { length: cols },
      (_, j) => `    let b${j} = ld_b(bb + ${j}u * p.sb1 + k * p.sb0);\n`,
    )
      .join("");
    const rows = Array.from(
      { length: R },
      (_, r) =>
        `    let x${r} = ld_a(ab + min(row0 + ${r}u, p.M - 1u) * p.sa1 + k * p.sa0);\n` +
        Array.from({ length: cols }, (_, j) => `    acc[${r * cols + j}] += x${r} * b${j};\n`).join(""),
    ).join("");
    body = `  for (var k = t; k < p.K; k += WG) {\n${loadsB}${rows}  }\n`;
  }
  return `${paramStruct("P", fields)}${decl}` +
    `@group(0) @binding(${batch.dstBinding}) var<storage, read_write> d: array<f32>;\n` + batch.decl +
    `const WG: u32 = ${MV_WG}u;\nconst R: u32 = ${R}u;\nconst RN: u32 = ${RN}u;\n` +
    `var<workgroup> red: array<f32, ${MV_WG * RN}>;\n` +
    `@compute @workgroup_size(${MV_WG})\n` +
    `fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,\n` +
    `        @builtin(local_invocation_index) t: u32) {\n` +
    `  ${LINEAR_WG}\n` +
    `  let groups = (p.M + R - 1u) / R;\n` +
    `  if (lin >= groups * p.batches) { return; }\n` +
    `  let bt = lin / groups;\n  let row0 = (lin - bt * groups) * R;\n` +
    batch.prologue +
    `  var acc: array<f32, RN>;\n` +
    body +
    `  for (var q = 0u; q < RN; q++) { red[t * RN + q] = acc[q]; }\n` +
    `  workgroupBarrier();\n` +
    `  for (var s = WG / 2u; s > 0u; s >>= 1u) {\n` +
    `    if (t < s) { for (var q = 0u; q < RN; q++) { red[t * RN + q] += red[(t + s) * RN + q]; } }\n` +
    `    workgroupBarrier();\n  }\n` +
    `  if (t < RN) {\n` +
    `    let r = t / ${cols}u;\n    let j = t % ${cols}u;\n` +
    `    if (row0 + r < p.M) { d[db + (row0 + r) * p.sd0 + j * p.sd1] = red[t]; }\n` +
    `  }\n}\n`;
}

/** A tiled kernel's shape: outputs per invocation (TM rows × TN columns) and k-slice depth. */
export interface Tiling {
  tm: number;
  tn: number;
  bk: number;
}

/** 16×16 invocations, each TM×TN outputs: the workgroup's tile is 16·TM × 16·TN. */
export const TILINGS: readonly Tiling[] = [{ tm: 8, tn: 8, bk: 8 }, { tm: 4, tn: 8, bk: 16 }, {
  tm: 4,
  tn: 4,
  bk: 16,
}];

/** Workgroups the tiled kernel wants at least (a few per SM of a large GPU). */
const MIN_TILES = 264;

/** Tuning: `force` pins one tiling (tests use it to cover every variant on small shapes). */
export const mulMatTuning: { force: Tiling | null } = { force: null };

/** The largest tiling that still gives MIN_TILES workgroups (the smallest when none does). */
function tilingFor(M: number, N: number, batches: number): Tiling {
  if (mulMatTuning.force) return mulMatTuning.force;
  for (const t of TILINGS) {
    if (Math.ceil(M / (16 * t.tm)) * Math.ceil(N / (16 * t.tn)) * batches >= MIN_TILES) return t;
  }
  return TILINGS[TILINGS.length - 1];
}

function tiledCode(aType: number, bType: number, fields: Field[], tl: Tiling): string {
  const { tm, tn, bk } = tl;
  const BM = 16 * tm, BN = 16 * tn, VM = tm / 4, VN = tn / 4;
  const la = (BM * bk) / 256, lb = (BN * bk) / 256;
  const fma = Array.from(
    { length: tn },
    (_, j) =>
      Array.from(
        { length: VM },
        (_, v) => `      acc[${j * VM + v}] += av${v} * bv${Math.floor(j / 4)}.${"xyzw"[j % 4]};\n`,
      )
        .join(""),
  ).join("");
  return `${paramStruct("P", fields)}` + declareTensor("a", aType, 0, false) +
    declareTensor("b", bType, 1, false) +
    `@group(0) @binding(2) var<storage, read_write> d: array<f32>;\n` +
    `@group(0) @binding(3) var<uniform> p: P;\n` +
    `const BM: u32 = ${BM}u;\nconst BN: u32 = ${BN}u;\nconst BK: u32 = ${bk}u;\n` +
    `var<workgroup> As: array<vec4<f32>, ${(bk * BM) / 4}>;\n` +
    `var<workgroup> Bs: array<vec4<f32>, ${(bk * BN) / 4}>;\n` +
    `@compute @workgroup_size(256)\n` +
    `fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,\n` +
    `        @builtin(local_invocation_index) t: u32) {\n` +
    `  ${LINEAR_WG}\n` +
    `  let tm = (p.M + BM - 1u) / BM;\n  let tn = (p.N + BN - 1u) / BN;\n` +
    `  if (lin >= tm * tn * p.batches) { return; }\n` +
    `  let bt = lin / (tm * tn);\n  let rem = lin - bt * tm * tn;\n` +
    `  let m0 = (rem % tm) * BM;\n  let n0 = (rem / tm) * BN;\n` +
    `  let i2 = bt % p.ne2;\n  let i3 = bt / p.ne2;\n` +
    `  let ab = p.a_off + (i2 / p.r2) * p.sa2 + (i3 / p.r3) * p.sa3;\n` +
    `  let bb = p.b_off + i2 * p.sb2 + i3 * p.sb3;\n` +
    `  let tx = t % 16u;\n  let ty = t / 16u;\n` +
    `  var acc: array<vec4<f32>, ${tn * VM}>;\n` +
    `  for (var k0 = 0u; k0 < p.K; k0 += BK) {\n` +
    `    for (var i = 0u; i < ${la}u; i++) {\n` +
    `      let idx = t + i * 256u;\n      let kk = idx % BK;\n      let mm = idx / BK;\n` +
    `      let gk = k0 + kk;\n      let gm = m0 + mm;\n      var va = 0.0;\n` +
    `      if (gk < p.K && gm < p.M) { va = ld_a(ab + gm * p.sa1 + gk * p.sa0); }\n` +
    `      As[kk * (BM / 4u) + mm / 4u][mm % 4u] = va;\n    }\n` +
    `    for (var i = 0u; i < ${lb}u; i++) {\n` +
    `      let idx = t + i * 256u;\n      let kk = idx % BK;\n      let nn = idx / BK;\n` +
    `      let gk = k0 + kk;\n      let gn = n0 + nn;\n      var vb = 0.0;\n` +
    `      if (gk < p.K && gn < p.N) { vb = ld_b(bb + gn * p.sb1 + gk * p.sb0); }\n` +
    `      Bs[kk * (BN / 4u) + nn / 4u][nn % 4u] = vb;\n    }\n` +
    `    workgroupBarrier();\n` +
    `    for (var kk = 0u; kk < BK; kk++) {\n` +
    Array.from({ length: VM }, (_, v) => `      let av${v} = As[kk * (BM / 4u) + tx * ${VM}u + ${v}u];\n`)
      .join("") +
    Array.from({ length: VN }, (_, u) => `      let bv${u} = Bs[kk * (BN / 4u) + ty * ${VN}u + ${u}u];\n`)
      .join("") +
    fma +
    `    }\n` +
    `    workgroupBarrier();\n` +
    `  }\n` +
    // stores unrolled: constant indices keep the accumulators in registers
    `  let gm0 = m0 + tx * ${tm}u;\n  let gn0 = n0 + ty * ${tn}u;\n` +
    `  let db = p.d_off + i2 * p.sd2 + i3 * p.sd3;\n` +
    Array.from({ length: tn }, (_, j) =>
      `  if (gn0 + ${j}u < p.N) {\n` +
      Array.from({ length: tm }, (_, i) =>
        `    if (gm0 + ${i}u < p.M) { d[db + (gm0 + ${i}u) * p.sd0 + (gn0 + ${j}u) * p.sd1] = ` +
        `acc[${j * VM + Math.floor(i / 4)}].${"xyzw"[i % 4]}; }\n`).join("") +
      `  }\n`).join("") +
    `}\n`;
}

/** The dispatch that computes MUL_MAT node `n` (supported by {@linkcode supportsMulMat}). */
export function mulMatDispatch(n: Tensor, info: BindInfo): Dispatch {
  const a = n.src[0]!, b = n.src[1]!;
  const pl = plan(n)!;
  const bindings = [{ tensor: a, write: false }, { tensor: b, write: false }, { tensor: n, write: true }];
  if (pl.matvec) {
    const vec = vecWidth(n, info);
    const fields = layoutFields(n, info, vec);
    const cols = n.ne[1];
    return {
      key: `mul_mat_vec:${typeName(a.type)}:${typeName(b.type)}:${cols}:${vec}`,
      code: matvecCode(a.type, b.type, cols, vec, fields),
      bindings,
      params: packFields(fields),
      groups: pl.groups,
    };
  }
  const fields = layoutFields(n, info, 1);
  const tl = tilingFor(n.ne[0], n.ne[1], n.ne[2] * n.ne[3]);
  return {
    key: `mul_mat_tiled:${typeName(a.type)}:${typeName(b.type)}:${tl.tm}x${tl.tn}`,
    code: tiledCode(a.type, b.type, fields, tl),
    bindings,
    params: packFields(fields),
    groups: pl.groups,
  };
}

defineKernels({
  MUL_MAT: { supports: (n) => supportsMulMat(n), build: (n, ctx) => [mulMatDispatch(n, ctx)] },
});
