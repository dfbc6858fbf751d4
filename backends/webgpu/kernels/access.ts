/**
 * WGSL building blocks the compute-heavy kernel families share: declarations of tensors bound as
 * storage arrays with typed loads and stores (f32 directly; f16 and bf16 as u32 words — f16 through
 * unpack2x16float, bf16 by shifts — so one shader serves adapters with and without shader-f16),
 * parameter structs packed from named fields, and dispatch grids folded under the 65535 limit.
 *
 * Element indices are relative to the binding's start: a tensor's element offset (its byte offset
 * within the binding divided by its element size) is passed as a parameter and added by the kernel.
 * @module
 */

import { GgmlType, typeInfo } from "../../../protocol/graph/types.ts";
import type { Tensor } from "../../../protocol/graph/tensor.ts";

const { F32, F16, BF16, I32 } = GgmlType;

/** Largest workgroup count per dispatch dimension WebGPU guarantees. */
export const MAX_GROUPS = 65535;

/** Bytes per element of the types these kernels read and write. */
export function elemSize(type: number): number {
  return typeInfo(type)?.typeSize ?? 1;
}

/** Whether `type` is a float storage type the kernels read (f32, f16, bf16). */
export function isFloat(type: number): boolean {
  return type === F32 || type === F16 || type === BF16;
}

/** The WGSL array element a tensor of `type` is bound as. */
export function storageElem(type: number): string {
  if (type === F32) return "f32";
  if (type === I32) return "i32";
  return "u32"; // f16, bf16 (two per word), i64 (two words)
}

/**
 * Declaration of binding `binding` named `name` for a tensor of `type`, plus `ld_NAME(i) -> f32`
 * (f32, f16, bf16) or `ld_NAME(i) -> i32` (i32) reading element `i` of the binding.
 */
export function declare(
  name: string,
  type: number,
  binding: number,
  access: "read" | "read_write",
  atomicWords = false,
): string {
  const elem = atomicWords ? "atomic<u32>" : storageElem(type);
  let s = `@group(0) @binding(${binding}) var<storage, ${access}> ${name}: array<${elem}>;\n`;
  if (atomicWords) return s + halfStore(name, type);
  if (type === F32) s += `fn ld_${name}(i: u32) -> f32 { return ${name}[i]; }\n`;
  else if (type === I32) s += `fn ld_${name}(i: u32) -> i32 { return ${name}[i]; }\n`;
  else if (type === F16) {
    s += `fn ld_${name}(i: u32) -> f32 { return unpack2x16float(${name}[i >> 1u])[i & 1u]; }\n`;
  } else if (type === BF16) {
    s += `fn ld_${name}(i: u32) -> f32 { let w = ${name}[i >> 1u]; ` +
      `return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u)); }\n`;
  }
  return s;
}

/**
 * `st_NAME(i, v)` for an f16 or bf16 tensor bound as atomic words: clears then sets element i's half
 * of its word with two atomics, so neighbours written by other invocations are never lost.
 */
function halfStore(name: string, type: number): string {
  const bits = type === F16 ? "pack2x16float(vec2<f32>(v, 0.0)) & 0xffffu" : "bf16_bits(v)";
  const bf = type === BF16
    ? `fn bf16_bits(v: f32) -> u32 { let u = bitcast<u32>(v); ` +
      `if ((u & 0x7fffffffu) > 0x7f800000u) { return (u >> 16u) | 64u; } ` +
      `return (u + (0x7fffu + ((u >> 16u) & 1u))) >> 16u; }\n`
    : "";
  const ld = type === F16
    ? `fn ld_${name}(i: u32) -> f32 { return unpack2x16float(atomicLoad(&${name}[i >> 1u]))[i & 1u]; }\n`
    : `fn ld_${name}(i: u32) -> f32 { let w = atomicLoad(&${name}[i >> 1u]); ` +
      `return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u)); }\n`;
  return bf + ld +
    `fn st_${name}(i: u32, v: f32) { let sh = (i & 1u) * 16u; let b = (${bits}) << sh; ` +
    `atomicAnd(&${name}[i >> 1u], ~(0xffffu << sh)); atomicOr(&${name}[i >> 1u], b); }\n`;
}

/** One field of a parameter struct. */
export type Field = readonly [name: string, kind: "u32" | "i32" | "f32", value: number];

/** The WGSL struct `name` with `fields` in order (each 4 bytes). */
export function paramStruct(name: string, fields: readonly Field[]): string {
  return `struct ${name} {\n${fields.map(([n, k]) => `  ${n}: ${k},\n`).join("")}}\n`;
}

/** `fields` packed as the struct {@linkcode paramStruct} declares them, padded to 16 bytes. */
export function packFields(fields: readonly Field[]): Uint32Array {
  const words = new Uint32Array(Math.ceil(fields.length / 4) * 4 || 4);
  const dv = new DataView(words.buffer);
  fields.forEach(([, kind, v], i) => {
    if (kind === "f32") dv.setFloat32(4 * i, v, true);
    else if (kind === "i32") dv.setInt32(4 * i, v, true);
    else dv.setUint32(4 * i, v >>> 0, true);
  });
  return words;
}

/** Element strides of `t` (byte strides divided by the element size), or null if not whole. */
export function elemStrides(t: Tensor): [number, number, number, number] | null {
  const es = elemSize(t.type);
  const s = t.nb.map((b) => b / es);
  return s.every((x) => Number.isInteger(x)) ? s as [number, number, number, number] : null;
}

/**
 * Workgroups for `total` linear groups: [x, y, 1] with x ≤ 65535, or null when more than
 * 65535² would be needed. Kernels recover the linear id as `wg.x + wg.y * num.x` and return past
 * `total`.
 */
export function grid(total: number): [number, number, number] | null {
  if (total <= 0) return [0, 1, 1];
  const x = Math.min(total, MAX_GROUPS);
  const y = Math.ceil(total / x);
  return y > MAX_GROUPS ? null : [x, y, 1];
}

/** WGSL: the linear workgroup id from a folded grid (needs `wg` and `nwg` builtins). */
export const LINEAR_WG = "let lin = wg.x + wg.y * nwg.x;";

/** What the plan knows of a tensor's binding when a kernel is built. */
export interface BindInfo {
  /** Element offset of the tensor's data from the start of its binding. */
  elemOffset(t: Tensor): number;
}

/** One dispatch of a kernel: its shader, the tensors it binds in order, parameters and groups. */
export interface Dispatch {
  /** Pipeline cache key: equal keys mean equal `code`. */
  key: string;
  /** WGSL; tensors are bindings 0 … n-1 and the parameter struct binding n (`var<uniform> p`). */
  code: string;
  /** Tensors in binding order and whether the kernel writes them. */
  bindings: { tensor: Tensor; write: boolean; atomic?: boolean }[];
  params: Uint32Array;
  groups: [number, number, number];
}

/** Invocations of the one-workgroup-per-row kernels. */
export const ROW_WG = 256;

/**
 * WGSL: `wg_sum(v, t)` and `wg_max(v, t)` over the ROW_WG invocations of a workgroup (t: local
 * index), through workgroup memory; call from uniform control flow.
 */
export const WG_REDUCE = `var<workgroup> red_sh: array<f32, ${ROW_WG}>;
fn wg_sum(v: f32, t: u32) -> f32 {
  red_sh[t] = v;
  workgroupBarrier();
  for (var s = ${ROW_WG / 2}u; s > 0u; s >>= 1u) {
    if (t < s) { red_sh[t] += red_sh[t + s]; }
    workgroupBarrier();
  }
  let r = red_sh[0];
  workgroupBarrier();
  return r;
}
fn wg_max(v: f32, t: u32) -> f32 {
  red_sh[t] = v;
  workgroupBarrier();
  for (var s = ${ROW_WG / 2}u; s > 0u; s >>= 1u) {
    if (t < s) { red_sh[t] = max(red_sh[t], red_sh[t + s]); }
    workgroupBarrier();
  }
  let r = red_sh[0];
  workgroupBarrier();
  return r;
}
`;

/** The entry point header of a kernel with a folded linear workgroup id `lin` and local index `t`. */
export function entry(wgSize: number): string {
  return `@compute @workgroup_size(${wgSize})\n` +
    `fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,\n` +
    `        @builtin(local_invocation_index) t: u32) {\n  ${LINEAR_WG}\n`;
}

/** ggml's ALiBi base slopes for `maxBias` and `nHead`: [m0, m1, n_head_log2]. */
export function alibiBases(maxBias: number, nHead: number): [number, number, number] {
  const f = Math.fround;
  const nl2 = 2 ** Math.floor(Math.log2(Math.max(1, nHead)));
  return [f(2 ** f(-maxBias / nl2)), f(2 ** f(f(-maxBias / 2) / nl2)), nl2];
}

/** WGSL: `alibi(h)`, the slope of head h from params max_bias, m0, m1, nhl2 of struct `p`. */
export const ALIBI = `fn alibi(h: u32) -> f32 {
  if (p.max_bias <= 0.0) { return 1.0; }
  if (h < p.nhl2) { return pow(p.m0, f32(h + 1u)); }
  return pow(p.m1, f32(2u * (h - p.nhl2) + 1u));
}
`;

/** Parameter fields of a tensor's element offset and strides, named PREFIX_off, PREFIX_s0…s3. */
export function tensorFields(prefix: string, t: Tensor, info: BindInfo): Field[] {
  const s = elemStrides(t)!;
  return [
    [`${prefix}_off`, "u32", info.elemOffset(t)],
    [`${prefix}_s0`, "u32", s[0]],
    [`${prefix}_s1`, "u32", s[1]],
    [`${prefix}_s2`, "u32", s[2]],
    [`${prefix}_s3`, "u32", s[3]],
  ];
}

/** WGSL: element index of (i0, i1, i2, i3) in tensor PREFIX (fields from {@linkcode tensorFields}). */
export function at(prefix: string, i0: string, i1: string, i2: string, i3: string): string {
  return `(p.${prefix}_off + (${i0}) * p.${prefix}_s0 + (${i1}) * p.${prefix}_s1 + (${i2}) * p.${prefix}_s2 + ` +
    `(${i3}) * p.${prefix}_s3)`;
}
