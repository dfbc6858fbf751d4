/**
 * WGSL building blocks the compute-heavy kernel families (matrix, row, attention, sort) share on
 * top of ./kernel.ts: a workgroup reduction for one-workgroup-per-row kernels, the entry point with
 * a folded linear workgroup id, ALiBi slopes, and per-tensor offset/stride parameter fields with the
 * matching WGSL index expression.
 * @module
 */

import type { Tensor } from "../../../protocol/graph/tensor.ts";
import { type BindInfo, elemSize, elemStrides, type Field, LINEAR_WG } from "./kernel.ts";

/** Invocations of the one-workgroup-per-row kernels. */
export const ROW_WG = 256;

/**
 * WGSL: `wg_sum(v, t)` and `wg_max(v, t)` over the ROW_WG invocations of a workgroup (t: local
 * index), through workgroup memory; call from uniform control flow. Each starts with a barrier:
 * without it a second reduction in one shader (NORM's mean, then its variance) read a wrong sum on
 * Dawn's OpenGL ES backend over llvmpipe, though one barrier already ends the previous reduction.
 */
export const WG_REDUCE = `var<workgroup> red_sh: array<f32, ${ROW_WG}>;
fn wg_sum(v: f32, t: u32) -> f32 {
  workgroupBarrier();
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
  workgroupBarrier();
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

/**
 * Whether the kernels can address every tensor of `ts` in whole elements: strides that are
 * multiples of the element size and data at an element-aligned byte offset (absent tensors pass).
 */
export function elementAddressable(...ts: (Tensor | null | undefined)[]): boolean {
  return ts.every((t) => !t || (elemStrides(t) !== null && t.offset % elemSize(t.type) === 0));
}
