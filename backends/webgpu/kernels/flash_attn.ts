/**
 * FLASH_ATTN_EXT on WebGPU: softmax(scale·Q·Kᵀ + slope·mask)·V per query row and head, written
 * permuted as [DV, heads, queries, batch] f32, with backends/cpu/ops/flash_attn.ts's semantics: Q f32;
 * K and V f32, f16 or bf16 (each on its own); Q rounded to K's type before the dot products; scale,
 * max_bias (ALiBi), logit_softcap; an f16 mask broadcast over heads and batch; f32 sinks; K/V heads
 * shared by groups of query heads (GQA). Masked (-inf) keys are skipped; a row with nothing left is 0.
 *
 * One workgroup of 128 invocations per (query, head, batch), streaming the keys in blocks of 32:
 * four invocations share each key's dot product, the block's scores update a running maximum and
 * sum (online softmax), and each invocation accumulates its output columns over the block's values.
 * @module
 */

import { GgmlType, typeName } from "../../../protocol/graph/types.ts";
import { opF32, type Tensor } from "../../../protocol/graph/tensor.ts";
import { ALIBI, alibiBases, elementAddressable, entry, tensorFields } from "./access.ts";
import {
  type BindInfo,
  declareTensor,
  type Dispatch,
  elemStrides,
  type Field,
  grid,
  isFloat,
  packFields,
  paramStruct,
} from "./kernel.ts";
import { defineKernels } from "./registry.ts";

const { F32, F16, BF16 } = GgmlType;
const WG = 128;
/** Keys per block. */
const BKV = 32;
/** Largest head sizes (Q/K and V) the kernel takes. */
const MAX_D = 1024;

/** Whether FLASH_ATTN_EXT node `n` is what this kernel computes. */
export function supportsFlashAttn(n: Tensor): boolean {
  const [q, k, v, mask, sinks] = n.src;
  if (!q || !k || !v || q.type !== F32 || !isFloat(k.type) || !isFloat(v.type) || n.type !== F32) {
    return false;
  }
  if (![q, k, v, n].every((t) => elementAddressable(t))) return false;
  const [DK, N, H, Bq] = q.ne;
  if (DK > MAX_D || v.ne[0] > MAX_D) return false;
  if (k.ne[0] !== DK || v.ne[1] !== k.ne[1] || k.ne[3] !== Bq || v.ne[3] !== Bq) return false;
  if (k.ne[2] === 0 || v.ne[2] === 0 || H % k.ne[2] !== 0 || H % v.ne[2] !== 0) return false;
  if (n.ne[0] !== v.ne[0] || n.ne[1] !== H || n.ne[2] !== N || n.ne[3] !== Bq) return false;
  if (mask) {
    if (mask.type !== F16 || !elementAddressable(mask)) return false;
    if (mask.ne[0] < k.ne[1] || mask.ne[1] < N || mask.ne[2] === 0 || mask.ne[3] === 0) return false;
    if (H % mask.ne[2] !== 0 || Bq % mask.ne[3] !== 0) return false;
  }
  if (sinks && (sinks.type !== F32 || sinks.ne[0] < H || !elementAddressable(sinks))) return false;
  return grid(N * H * Bq * kvSplits(N * H * Bq, k.ne[1])) !== null;
}

/**
 * Elements per 16-byte load of K rows (8 halves, 4 floats) when every row is packed, 16-byte aligned
 * and splits evenly over the four invocations sharing a key; 1 otherwise (element loads).
 */
function kVec(k: Tensor, info: BindInfo): number {
  const w = k.type === F32 ? 4 : 8;
  const sk = elemStrides(k)!;
  if (sk[0] !== 1 || k.ne[0] % (4 * w) !== 0 || info.elemOffset(k) % w !== 0) return 1;
  return [sk[1], sk[2], sk[3]].every((x) => x % w === 0) ? w : 1;
}

/** WGSL: `x` rounded to the storage precision of `type` (Q is rounded to K's type). */
function roundTo(type: number, x: string): string {
  if (type === F16) return `unpack2x16float(pack2x16float(vec2<f32>(${x}, 0.0))).x`;
  if (type === BF16) return `bitcast<f32>(bf16_bits(${x}) << 16u)`;
  return x;
}

/**
 * Key splits per (query, head, batch) row: enough workgroups to fill a large GPU when there are few
 * rows (decoding), each split at least one block of keys; 1 when rows alone fill it.
 */
export function kvSplits(rows: number, nkv: number): number {
  return Math.max(1, Math.min(Math.ceil(nkv / BKV), Math.floor(TARGET_GROUPS / rows), MAX_SPLITS));
}

/** Workgroups a split dispatch aims at (16 per SM on a 128-SM GPU). */
const TARGET_GROUPS = 2048;
/** Most splits of one row. */
const MAX_SPLITS = 512;

/**
 * The dispatches computing FLASH_ATTN_EXT node `n`: one, or with `ctx.scratch` and few rows, a
 * split-KV pass writing each split's running max, sum and unnormalized output to scratch, then a
 * pass combining the splits of each row.
 */
export function flashAttnDispatches(
  n: Tensor,
  ctx: BindInfo & { scratch?(bytes: number): Tensor },
): Dispatch[] {
  const [q, k, v] = n.src as Tensor[];
  const rows = q.ne[1] * q.ne[2] * q.ne[3];
  const S = ctx.scratch ? kvSplits(rows, k.ne[1]) : 1;
  if (S === 1) return [flashAttnDispatch(n, ctx, null, 1)];
  const sc = ctx.scratch!(rows * S * (v.ne[0] + 2) * 4);
  return [flashAttnDispatch(n, ctx, sc, S), combineDispatch(n, ctx, sc, S)];
}

/**
 * Whether V rows can be read 4 elements at a time by 32 invocations per key (packed rows, DV a
 * multiple of 128, 4-element aligned): the value pass then splits the block's keys over four
 * groups of 32 invocations, each holding DV/32 output columns, summed once at the end.
 */
function vVec(v: Tensor, info: BindInfo): boolean {
  const sv = elemStrides(v)!;
  // DV ≤ 512 keeps the four groups' sums (16·DV bytes) well inside 16 KiB of workgroup memory
  return sv[0] === 1 && v.ne[0] % 128 === 0 && v.ne[0] <= 512 && info.elemOffset(v) % 4 === 0 &&
    [sv[1], sv[2], sv[3]].every((x) => x % 4 === 0);
}

/** WGSL: lo8/hi8, the 8 halves (f16 or bf16) of a vec4<u32> as two vec4<f32>. */
function unpack8(type: number): string {
  const u = (a: string, b: string) =>
    type === F16
      ? `vec4<f32>(unpack2x16float(w.${a}), unpack2x16float(w.${b}))`
      : `vec4<f32>(bitcast<f32>(w.${a} << 16u), bitcast<f32>(w.${a} & 0xffff0000u), ` +
        `bitcast<f32>(w.${b} << 16u), bitcast<f32>(w.${b} & 0xffff0000u))`;
  return `fn lo8(w: vec4<u32>) -> vec4<f32> { return ${u("x", "y")}; }\n` +
    `fn hi8(w: vec4<u32>) -> vec4<f32> { return ${u("z", "w")}; }\n`;
}

/** The attention pass of node `n`: final (`sc` null) or per split into `sc`. */
export function flashAttnDispatch(n: Tensor, info: BindInfo, sc: Tensor | null, S: number): Dispatch {
  const [q, k, v, mask, sinks] = n.src as Tensor[];
  const [DK, N, H, Bq] = q.ne;
  const DV = v.ne[0];
  const maxBias = Math.fround(opF32(n, 1)), softcap = Math.fround(opF32(n, 2));
  let scale = Math.fround(opF32(n, 0));
  if (softcap !== 0) scale = Math.fround(scale / softcap);
  const [m0, m1, nhl2] = alibiBases(maxBias, H);
  const fields: Field[] = [
    ...tensorFields("q", q, info),
    ...tensorFields("k", k, info),
    ...tensorFields("v", v, info),
    ...tensorFields("d", n, info),
    ...(mask ? tensorFields("m", mask, info) : []),
    ["mne2", "u32", mask ? mask.ne[2] : 1],
    ["mne3", "u32", mask ? mask.ne[3] : 1],
    ["s_off", "u32", sinks ? info.elemOffset(sinks) : 0],
    ["s_s0", "u32", sinks ? elemStrides(sinks)![0] : 0],
    ["DK", "u32", DK],
    ["DV", "u32", DV],
    ["NKV", "u32", k.ne[1]],
    ["N", "u32", N],
    ["H", "u32", H],
    ["rk2", "u32", H / k.ne[2]],
    ["rv2", "u32", H / v.ne[2]],
    ["rows", "u32", N * H * Bq],
    ["S", "u32", S],
    ["chunk", "u32", Math.ceil(Math.ceil(k.ne[1] / S) / BKV) * BKV],
    ["scale", "f32", scale],
    ["softcap", "f32", softcap],
    ["max_bias", "f32", maxBias],
    ["m0", "f32", m0],
    ["m1", "f32", m1],
    ["nhl2", "u32", nhl2],
  ];
  const bindings: Dispatch["bindings"] = [
    { tensor: q, write: false },
    { tensor: k, write: false },
    { tensor: v, write: false },
  ];
  // V a view of K (MLA) in the buffer written: both scalar arrays of one type, one binding
  const shared = info.sharesBinding?.(k, v) === true && k.type === v.type;
  const kv = shared ? 1 : kVec(k, info);
  const kDecl = kv === 1
    ? declareTensor("k", k.type, 1, false)
    : `@group(0) @binding(1) var<storage, read> k: array<vec4<${k.type === F32 ? "f32" : "u32"}>>;\n` +
      (k.type === F32 ? "" : unpack8(k.type));
  const vv = !shared && vVec(v, info);
  const vDecl = vv
    ? `@group(0) @binding(2) var<storage, read> v: array<${v.type === F32 ? "vec4<f32>" : "vec2<u32>"}>;\n` +
      (v.type === F32
        ? `fn ldv4(i: u32) -> vec4<f32> { return v[i]; }\n`
        : `fn ldv4(i: u32) -> vec4<f32> { let w = v[i]; return ${
          v.type === F16
            ? "vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y))"
            : "vec4<f32>(bitcast<f32>(w.x << 16u), bitcast<f32>(w.x & 0xffff0000u), " +
              "bitcast<f32>(w.y << 16u), bitcast<f32>(w.y & 0xffff0000u))"
        }; }\n`)
    : declareTensor("v", v.type, 2, false);
  let decl = declareTensor("q", F32, 0, false) + kDecl + vDecl;
  if (mask) {
    decl += declareTensor("mk", F16, bindings.length, false);
    bindings.push({ tensor: mask, write: false });
  }
  if (sinks && !sc) {
    decl += declareTensor("sk", F32, bindings.length, false);
    bindings.push({ tensor: sinks, write: false });
  }
  decl += `@group(0) @binding(${bindings.length}) var<storage, read_write> d: array<f32>;\n`;
  bindings.push({ tensor: sc ?? n, write: true });
  decl += `@group(0) @binding(${bindings.length}) var<uniform> p: P;\n`;
  const DVT = Math.ceil(DV / WG); // output columns per invocation
  const bf = k.type === BF16
    ? `fn bf16_bits(v: f32) -> u32 { let u = bitcast<u32>(v); ` +
      `if ((u & 0x7fffffffu) > 0x7f800000u) { return ((u >> 16u) | 64u) & 0xffffu; } ` +
      `return ((u + (0x7fffu + ((u >> 16u) & 1u))) >> 16u) & 0xffffu; }\n`
    : "";
  const code = paramStruct("P", fields) + decl + bf + ALIBI +
    `const NEG: f32 = -3.402823e38;\n` +
    `var<workgroup> qs: array<vec4<f32>, ${Math.ceil(DK / 4)}>;\n` +
    `var<workgroup> part: array<f32, ${WG}>;\n` +
    `var<workgroup> ps: array<f32, ${BKV}>;\n` +
    (vv ? `var<workgroup> comb: array<f32, ${4 * DV}>;\n` : "") +
    entry(WG) +
    `  let row = lin / p.S;\n  let split = lin % p.S;\n` +
    `  if (row >= p.rows) { return; }\n` +
    `  let iq1 = row % p.N;\n  let iq2 = (row / p.N) % p.H;\n  let iq3 = row / (p.N * p.H);\n` +
    `  let jb = split * p.chunk;\n  let je = min(p.NKV, jb + p.chunk);\n` +
    `  let ik2 = iq2 / p.rk2;\n  let iv2 = iq2 / p.rv2;\n` +
    `  for (var c = t; c < p.DK; c += ${WG}u) {\n` +
    `    qs[c / 4u][c % 4u] = ${
      roundTo(k.type, "ld_q(p.q_off + c * p.q_s0 + iq1 * p.q_s1 + iq2 * p.q_s2 + iq3 * p.q_s3)")
    };\n` +
    `  }\n` +
    `  let slope = alibi(iq2);\n` +
    `  let kb = p.k_off + ik2 * p.k_s2 + iq3 * p.k_s3;\n` +
    `  let vb = p.v_off + iv2 * p.v_s2 + iq3 * p.v_s3;\n` +
    (mask ? `  let mb = p.m_off + iq1 * p.m_s1 + (iq2 % p.mne2) * p.m_s2 + (iq3 % p.mne3) * p.m_s3;\n` : "") +
    `  var M = NEG;\n  var L = 0.0;\n` +
    (vv
      ? `  var acc: array<vec4<f32>, ${DV / 128}>;\n  let g = t / 32u;\n  let lt = t % 32u;\n`
      : `  var acc: array<f32, ${DVT}>;\n`) +
    `  let lane = t % 4u;\n  let kj = t / 4u;\n` +
    `  workgroupBarrier();\n` +
    `  for (var j0 = jb; j0 < je; j0 += ${BKV}u) {\n` +
    `    let j = j0 + kj;\n` +
    `    var s = 0.0;\n` +
    `    var mv = 0.0;\n` +
    (mask ? `    if (j < je) { mv = slope * ld_mk(mb + j * p.m_s0); }\n` : "") +
    `    if (j < je && mv > NEG) {\n` +
    `      let kr = kb + j * p.k_s1;\n` +
    (kv === 1
      ? `      for (var c = lane; c < p.DK; c += 4u) { s += qs[c / 4u][c % 4u] * ld_k(kr + c * p.k_s0); }\n`
      : kv === 4
      ? `      let per = p.DK / 16u;\n      let kr4 = kr / 4u + lane * per;\n` +
        `      for (var c = 0u; c < per; c++) { s += dot(qs[lane * per + c], k[kr4 + c]); }\n`
      : `      let per = p.DK / 32u;\n      let kr8 = kr / 8u + lane * per;\n` +
        `      for (var c = 0u; c < per; c++) {\n        let w = k[kr8 + c];\n` +
        `        let qo = 2u * (lane * per + c);\n` +
        `        s += dot(qs[qo], lo8(w)) + dot(qs[qo + 1u], hi8(w));\n      }\n`) +
    `    }\n` +
    `    part[t] = s;\n` +
    `    workgroupBarrier();\n` +
    `    if (lane == 0u) {\n` +
    `      var sc = NEG;\n` +
    `      if (j < je && mv > NEG) {\n` +
    `        sc = (part[t] + part[t + 1u] + part[t + 2u] + part[t + 3u]) * p.scale;\n` +
    `        if (p.softcap != 0.0) { sc = p.softcap * tanh(sc); }\n` +
    `        sc = sc + mv;\n      }\n` +
    `      ps[kj] = sc;\n    }\n` +
    `    workgroupBarrier();\n` +
    `    var bm = M;\n` +
    `    for (var i = 0u; i < ${BKV}u; i++) { bm = max(bm, ps[i]); }\n` +
    `    let f = exp(M - bm);\n` +
    `    L = L * f;\n` +
    (vv
      ? `    for (var r = 0u; r < ${DV / 128}u; r++) { acc[r] = acc[r] * f; }\n` +
        `    for (var i = 0u; i < ${BKV}u; i++) { let sj = ps[i]; if (sj > NEG) { L += exp(sj - bm); } }\n` +
        `    for (var i = g; i < ${BKV}u; i += 4u) {\n` +
        `      let sj = ps[i];\n      if (sj <= NEG) { continue; }\n` +
        `      let w = exp(sj - bm);\n` +
        `      let vr = (vb + (j0 + i) * p.v_s1) / 4u + lt * ${DV / 128}u;\n` +
        Array.from({ length: DV / 128 }, (_, r) => `      acc[${r}] += w * ldv4(vr + ${r}u);\n`).join("") +
        `    }\n`
      : `    for (var r = 0u; r < ${DVT}u; r++) { acc[r] = acc[r] * f; }\n` +
        `    for (var i = 0u; i < ${BKV}u; i++) {\n` +
        `      let sj = ps[i];\n      if (sj <= NEG) { continue; }\n` +
        `      let w = exp(sj - bm);\n      L += w;\n` +
        `      let vr = vb + (j0 + i) * p.v_s1;\n` +
        `      for (var r = 0u; r < ${DVT}u; r++) {\n` +
        `        let c = t + r * ${WG}u;\n        if (c < p.DV) { acc[r] += w * ld_v(vr + c * p.v_s0); }\n` +
        `      }\n    }\n`) +
    `    M = bm;\n` +
    `    workgroupBarrier();\n` +
    `  }\n` +
    // the group sums (vector V) meet in workgroup memory; VAL(c) is output column c before scaling
    (vv
      ? `  for (var r = 0u; r < ${DV / 128}u; r++) {\n` +
        `    let c0 = g * ${DV}u + (lt * ${DV / 128}u + r) * 4u;\n` +
        `    comb[c0] = acc[r].x;\n    comb[c0 + 1u] = acc[r].y;\n    comb[c0 + 2u] = acc[r].z;\n    comb[c0 + 3u] = acc[r].w;\n  }\n` +
        `  workgroupBarrier();\n`
      : "") +
    (sc ? "" : (sinks
      ? `  let sink = ld_sk(p.s_off + iq2 * p.s_s0);\n  var fs = 1.0;\n` +
        `  if (sink > M) { fs = exp(M - sink); L = L * fs; M = sink; }\n` +
        `  L += exp(sink - M);\n`
      : `  let fs = 1.0;\n`) + `  let inv = select(0.0, 1.0 / L, L > 0.0) * fs;\n`) +
    (sc
      ? `  let ob = row * p.S + split;\n  if (t == 0u) { d[ob * (p.DV + 2u)] = M; d[ob * (p.DV + 2u) + 1u] = L; }\n`
      : "") +
    (vv
      ? `  for (var c = t; c < p.DV; c += ${WG}u) {\n` +
        `    let val = comb[c] + comb[${DV}u + c] + comb[${2 * DV}u + c] + comb[${3 * DV}u + c];\n`
      : `  for (var r = 0u; r < ${DVT}u; r++) {\n    let c = t + r * ${WG}u;\n    if (c >= p.DV) { break; }\n` +
        `    let val = acc[r];\n`) +
    (sc
      ? `    d[ob * (p.DV + 2u) + 2u + c] = val;\n  }\n}\n`
      : `    d[p.d_off + c * p.d_s0 + iq2 * p.d_s1 + iq1 * p.d_s2 + iq3 * p.d_s3] = val * inv;\n  }\n}\n`);
  return {
    key: `flash_attn${sc ? "_split" : ""}:k${kv}:v${vv ? 4 : 1}:${typeName(k.type)}:${
      typeName(v.type)
    }:${DK}:${DV}:${mask ? "m" : "-"}:${sinks ? "s" : "-"}`,
    code,
    bindings,
    params: packFields(fields),
    groups: grid(N * H * Bq * S)!,
  };
}

/** Combines the S splits of each row from `sc` (with the sinks) into dst. */
function combineDispatch(n: Tensor, info: BindInfo, sc: Tensor, S: number): Dispatch {
  const [q, , v, , sinks] = n.src as Tensor[];
  const [, N, H, Bq] = q.ne;
  const DV = v.ne[0];
  const fields: Field[] = [
    ...tensorFields("d", n, info),
    ["s_off", "u32", sinks ? info.elemOffset(sinks) : 0],
    ["s_s0", "u32", sinks ? elemStrides(sinks)![0] : 0],
    ["DV", "u32", DV],
    ["N", "u32", N],
    ["H", "u32", H],
    ["rows", "u32", N * H * Bq],
    ["S", "u32", S],
  ];
  const bindings: Dispatch["bindings"] = [{ tensor: sc, write: false }];
  let decl = `@group(0) @binding(0) var<storage, read> sc: array<f32>;\n`;
  if (sinks) {
    decl += declareTensor("sk", F32, 1, false);
    bindings.push({ tensor: sinks, write: false });
  }
  decl += `@group(0) @binding(${bindings.length}) var<storage, read_write> d: array<f32>;\n`;
  bindings.push({ tensor: n, write: true });
  decl += `@group(0) @binding(${bindings.length}) var<uniform> p: P;\n`;
  const code = paramStruct("P", fields) + decl + entry(WG) +
    `  let row = lin;\n  if (row >= p.rows) { return; }\n` +
    `  let iq1 = row % p.N;\n  let iq2 = (row / p.N) % p.H;\n  let iq3 = row / (p.N * p.H);\n` +
    `  let w = p.DV + 2u;\n  let b0 = row * p.S;\n` +
    `  var M = -3.402823e38;\n` +
    `  for (var s = 0u; s < p.S; s++) { M = max(M, sc[(b0 + s) * w]); }\n` +
    (sinks ? `  let sink = ld_sk(p.s_off + iq2 * p.s_s0);\n  M = max(M, sink);\n` : "") +
    `  var L = 0.0;\n` +
    `  for (var s = 0u; s < p.S; s++) { L += sc[(b0 + s) * w + 1u] * exp(sc[(b0 + s) * w] - M); }\n` +
    (sinks ? `  L += exp(sink - M);\n` : "") +
    `  let inv = select(0.0, 1.0 / L, L > 0.0);\n` +
    `  for (var c = t; c < p.DV; c += ${WG}u) {\n` +
    `    var o = 0.0;\n` +
    `    for (var s = 0u; s < p.S; s++) { o += sc[(b0 + s) * w + 2u + c] * exp(sc[(b0 + s) * w] - M); }\n` +
    `    d[p.d_off + c * p.d_s0 + iq2 * p.d_s1 + iq1 * p.d_s2 + iq3 * p.d_s3] = o * inv;\n  }\n}\n`;
  return {
    key: "flash_attn_combine",
    code,
    bindings,
    params: packFields(fields),
    groups: grid(N * H * Bq)!,
  };
}

defineKernels({
  FLASH_ATTN_EXT: { supports: (n) => supportsFlashAttn(n), build: (n, ctx) => flashAttnDispatches(n, ctx) },
});
