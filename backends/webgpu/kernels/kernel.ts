/**
 * The contract between the WebGPU plan (backends/webgpu/plan.ts) and every kernel family
 * (backends/webgpu/kernels/*.ts), plus the WGSL building blocks the families share.
 *
 * ## A kernel
 * A family registers {@linkcode Kernel}s in the registry (registry.ts) under the op's name, or the
 * sub-op's for UNARY and GLU ("ADD", "SILU", "SWIGLU"), as test-backend-ops spells them. The device's
 * `supportsOp` asks {@linkcode Kernel.supports}; the plan asks {@linkcode Kernel.build} for the
 * node's dispatches (usually one; ACC, for example, copies then adds) and runs them in order.
 *
 * ## Bindings
 * A {@linkcode Dispatch} lists the tensors it binds, in binding order: binding k of group 0 is
 * `bindings[k]`. A tensor is bound at its byte offset rounded down to the adapter's
 * minStorageBufferOffsetAlignment, over its byte range rounded up to whole u32 words, so a
 * binding holds only the tensor (bindings stay under maxStorageBufferBindingSize; the device refuses
 * nodes whose tensors would not fit). The remainder reaches the shader through the parameters:
 * {@linkcode BuildContext.elemOffset} (or `byteOffset`) gives where the tensor's first element lies
 * inside its binding, and the kernel adds it to every index. f16 and bf16 tensors are bound as
 * `array<u32>` (two halves per word, element i in word i/2, low half first), so an odd element
 * offset is normal.
 *
 * Declare read-only tensors exactly as `@group(0) @binding(k) var<storage, read> NAME: array<T>;`
 * and written ones as `read_write` (or `array<atomic<u32>>` with `atomic: true`). The plan rewrites
 * declarations where WebGPU requires it: a source whose bytes overlap the node's output (in-place
 * ops) is bound with the output over one range — BindInfo offsets are then relative to that shared
 * range — and when its element type matches the written binding's, its declaration is dropped and
 * NAME (not preceded by `.`) is renamed to the written array, so one binding serves both (Dawn
 * refuses overlapping writable bindings). Other read bindings of a buffer the dispatch writes are
 * rewritten to `var<storage, read_write>` (a buffer may not be both read-only and writable in one
 * dispatch). Kernels need not care beyond spelling declarations this way and not naming a
 * parameter field or function exactly like a tensor array.
 *
 * ## Parameters
 * Every dispatch of a plan reads its parameters from ONE uniform buffer through a dynamic offset:
 * the kernel declares `@group(0) @binding(N) var<uniform> p: Params;` with N = bindings.length and
 * returns the packed words in {@linkcode Dispatch.params} (use {@linkcode paramStruct} and
 * {@linkcode packFields}: every field is a 4-byte u32, i32 or f32, in order). At most
 * {@linkcode MAX_PARAM_BYTES} bytes.
 *
 * ## Workgroups
 * `groups` is the workgroup count per dimension, each ≤ 65535 (maxComputeWorkgroupsPerDimension):
 * fold a long linear count with {@linkcode grid} and recover it in WGSL with {@linkcode LINEAR_WG}.
 * A dispatch with a zero count is skipped.
 *
 * ## Writes of f16 and bf16
 * Two invocations must never write the two halves of one u32 word with plain stores (the second
 * would undo the first). Either one invocation owns whole words (the element-wise kernels write
 * pairs of elements that share a word, and read-modify-write a word whose other half lies outside
 * the tensor: no other invocation of the dispatch touches it), or bind the output with
 * `atomic: true` and store halves with atomicAnd/atomicOr ({@linkcode declareTensor} does that).
 *
 * ## Features
 * {@linkcode Caps.f16}: the device has shader-f16 (kernels may `enable f16;` and use f16 math; the
 * storage layout stays u32 words either way). {@linkcode Caps.subgroups}: subgroup builtins are
 * available; prefix the shader with {@linkcode Caps.subgroupsEnable} (Deno's wgpu accepts the
 * feature without listing it and then rejects `enable subgroups;`, so it may be "").
 * @module
 */

import type { Tensor } from "../../../protocol/graph/tensor.ts";
import { GgmlType } from "../../../protocol/graph/types.ts";

const { F32, F16, BF16, I32, I64 } = GgmlType;

/** What the device offers kernels. */
export interface Caps {
  /** shader-f16 is enabled. */
  f16: boolean;
  /** Subgroup builtins may be used. */
  subgroups: boolean;
  /** Text to put first in a shader that uses subgroups ("enable subgroups;" or ""). */
  subgroupsEnable: string;
  /** Smallest and largest subgroup size the adapter reports (0 when unknown). */
  subgroupMinSize: number;
  subgroupMaxSize: number;
  /** The device's limits (as granted). */
  maxStorageBufferBindingSize: number;
  minStorageBufferOffsetAlignment: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxStorageBuffersPerShaderStage: number;
}

/** Where the plan bound each tensor: known when the kernel builds its dispatch. */
export interface BindInfo {
  /** Byte offset of the tensor's data from the start of its binding. */
  byteOffset(t: Tensor): number;
  /** {@linkcode byteOffset} in elements of the tensor's type (i64: 8-byte elements). */
  elemOffset(t: Tensor): number;
  /**
   * Whether `a` and `b` are bound over one range (they overlap in the buffer the node writes):
   * declare them with one element type then, so that one binding serves both (see above).
   */
  sharesBinding?(a: Tensor, b: Tensor): boolean;
}

/** What {@linkcode Kernel.build} receives besides the node. */
export interface BuildContext extends BindInfo {
  caps: Caps;
  /**
   * A plan-owned f32 scratch tensor of at least `bytes` bytes (offset 0), for a node whose
   * dispatches pass partial results to each other (split-KV attention). One buffer is shared by
   * every node of the plan: its contents do not outlive the node. Absent where no plan backs it.
   */
  scratch?(bytes: number): Tensor;
}

/** A tensor bound to a dispatch. */
export interface Binding {
  tensor: Tensor;
  /** The kernel writes it (declared `read_write`). */
  write: boolean;
  /** Declared as `array<atomic<u32>>`. */
  atomic?: boolean;
}

/** One compute dispatch. */
export interface Dispatch {
  /** Short name of the shader variant, for profiles and errors (pipelines are cached by code). */
  key: string;
  /** WGSL: tensors are bindings 0 … n-1, the parameter struct binding n (`var<uniform> p`). */
  code: string;
  bindings: Binding[];
  /** Packed parameters (see {@linkcode packFields}); at most {@linkcode MAX_PARAM_BYTES} bytes. */
  params: Uint32Array;
  /** Workgroup counts, each ≤ 65535. */
  groups: [number, number, number];
}

/** An op's implementation on WebGPU. */
export interface Kernel {
  /** Whether `build` computes `node` exactly (types, shapes, layout) on a device with `caps`. */
  supports(node: Tensor, caps: Caps): boolean;
  /** The node's dispatches in order (none for an empty result). */
  build(node: Tensor, ctx: BuildContext): Dispatch[];
  /**
   * Whether `build` handles `node` although one of its tensors is larger than
   * maxStorageBufferBindingSize (by binding slices over several dispatches). Absent or false: the
   * device refuses such nodes.
   */
  splitsLarge?(node: Tensor, caps: Caps): boolean;
}

/** Largest parameter block of one dispatch. */
export const MAX_PARAM_BYTES = 256;

/** Largest workgroup count per dispatch dimension WebGPU guarantees. */
export const MAX_GROUPS = 65535;

/**
 * Workgroups for `total` linear groups: [x, y, 1] with x ≤ 65535, or null when more than 65535²
 * would be needed. Kernels recover the linear id with {@linkcode LINEAR_WG} and return past `total`.
 */
export function grid(total: number): [number, number, number] | null {
  if (total <= 0) return [0, 1, 1];
  const x = Math.min(total, MAX_GROUPS);
  const y = Math.ceil(total / x);
  return y > MAX_GROUPS ? null : [x, y, 1];
}

/** WGSL: `lin`, the linear workgroup id of a folded grid (needs builtins named `wg` and `nwg`). */
export const LINEAR_WG = "let lin = wg.x + wg.y * nwg.x;";

/** One field of a parameter struct: name, WGSL scalar type, value. */
export type Field = readonly [name: string, kind: "u32" | "i32" | "f32", value: number];

/** The WGSL struct `name` with `fields` in order (each 4 bytes). */
export function paramStruct(name: string, fields: readonly Field[]): string {
  return `struct ${name} {\n${fields.map(([n, k]) => `  ${n}: ${k},\n`).join("")}  _pad: u32,\n}\n`;
}

/** `fields` packed as {@linkcode paramStruct} declares them, padded to 16 bytes. */
export function packFields(fields: readonly Field[]): Uint32Array {
  const words = new Uint32Array(Math.ceil((fields.length + 1) / 4) * 4);
  const dv = new DataView(words.buffer);
  fields.forEach(([, kind, v], i) => {
    if (kind === "f32") dv.setFloat32(4 * i, v, true);
    else if (kind === "i32") dv.setInt32(4 * i, v, true);
    else dv.setUint32(4 * i, v >>> 0, true);
  });
  return words;
}

/** Bytes per element of the types these kernels bind. */
export function elemSize(type: number): number {
  if (type === F16 || type === BF16 || type === GgmlType.I16) return 2;
  if (type === GgmlType.I8) return 1;
  if (type === I64) return 8;
  return 4;
}

/** Whether `type` is f32, f16 or bf16. */
export function isFloat(type: number): boolean {
  return type === F32 || type === F16 || type === BF16;
}

/** Element strides of `t` (byte strides over the element size), or null when not whole. */
export function elemStrides(t: Tensor): [number, number, number, number] | null {
  const es = elemSize(t.type);
  const s = t.nb.map((b) => b / es);
  return s.every((x) => Number.isInteger(x)) ? s as [number, number, number, number] : null;
}

/** WGSL helpers for f16/bf16 words: `bf16_bits(f32) -> u32` (round to nearest even, NaN kept). */
export const HALF_HELPERS = `fn bf16_bits(v: f32) -> u32 {
  let u = bitcast<u32>(v);
  if ((u & 0x7fffffffu) > 0x7f800000u) { return ((u >> 16u) | 64u) & 0xffffu; }
  return ((u + (0x7fffu + ((u >> 16u) & 1u))) >> 16u) & 0xffffu;
}
fn f16_bits(v: f32) -> u32 { return pack2x16float(vec2<f32>(v, 0.0)) & 0xffffu; }
`;

/** WGSL: bits of `v` as a half of type `type` (f16 or bf16), in the low 16 bits. */
export function halfBits(type: number, v: string): string {
  return type === F16 ? `f16_bits(${v})` : `bf16_bits(${v})`;
}

/** WGSL: the f32 value of the half `h` (low 16 bits of a u32) of type `type`. */
export function halfValue(type: number, h: string): string {
  return type === F16 ? `unpack2x16float(${h}).x` : `bitcast<f32>((${h}) << 16u)`;
}

/** The WGSL array element type a tensor of `type` is bound as. */
export function storageElem(type: number): string {
  if (type === F32) return "f32";
  if (type === I32) return "i32";
  return "u32"; // f16, bf16 (two per word), i64 (two words per element)
}

/**
 * Declaration of binding `binding` named `name` for a tensor of `type`, with a loader
 * `ld_NAME(i: u32) -> f32` (float types; i32: `-> i32`; i64: `-> i32`, the low word, which the
 * row kernels use for indices) reading element `i` of the binding. Written tensors (`write`) get
 * `st_NAME(i: u32, v)` for f32 and i32; for f16/bf16 with `atomic` a half store through atomics, and
 * without it `stw_NAME(w: u32, lo: f32, hi: f32, keepLo: bool, keepHi: bool)` writing a whole word
 * (keeping a half that is not the invocation's). Include {@linkcode HALF_HELPERS} once in a shader
 * that writes halves.
 */
export function declareTensor(
  name: string,
  type: number,
  binding: number,
  write: boolean,
  atomic = false,
): string {
  const access = write ? "read_write" : "read";
  const elem = atomic ? "atomic<u32>" : storageElem(type);
  let s = `@group(0) @binding(${binding}) var<storage, ${access}> ${name}: array<${elem}>;\n`;
  const word = (i: string) => atomic ? `atomicLoad(&${name}[${i}])` : `${name}[${i}]`;
  if (type === F32) {
    s += `fn ld_${name}(i: u32) -> f32 { return ${name}[i]; }\n`;
    if (write) s += `fn st_${name}(i: u32, v: f32) { ${name}[i] = v; }\n`;
  } else if (type === I32) {
    s += `fn ld_${name}(i: u32) -> i32 { return ${name}[i]; }\n`;
    if (write) s += `fn st_${name}(i: u32, v: i32) { ${name}[i] = v; }\n`;
  } else if (type === I64) {
    s += `fn ld_${name}(i: u32) -> i32 { return bitcast<i32>(${name}[2u * i]); }\n`;
  } else if (type === F16 || type === BF16) {
    s += `fn ld_${name}(i: u32) -> f32 { let w = ${word("i >> 1u")}; ` +
      `return ${halfValue(type, "(w >> ((i & 1u) * 16u)) & 0xffffu")}; }\n`;
    if (write && atomic) {
      s += `fn st_${name}(i: u32, v: f32) { let sh = (i & 1u) * 16u; ` +
        `atomicAnd(&${name}[i >> 1u], ~(0xffffu << sh)); ` +
        `atomicOr(&${name}[i >> 1u], ${halfBits(type, "v")} << sh); }\n`;
    } else if (write) {
      s += `fn stw_${name}(w: u32, lo: f32, hi: f32, keepLo: bool, keepHi: bool) {\n` +
        `  let old = select(0u, ${name}[w], keepLo || keepHi);\n` +
        `  let l = select(${halfBits(type, "lo")}, old & 0xffffu, keepLo);\n` +
        `  let h = select(${halfBits(type, "hi")}, old >> 16u, keepHi);\n` +
        `  ${name}[w] = l | (h << 16u);\n}\n`;
    }
  }
  return s;
}
