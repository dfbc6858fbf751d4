/**
 * `Tensor`: a ggml tensor as graphwire's server and backends see it, with its data resolved to a
 * device buffer and a byte offset, and its sources linked as objects.
 *
 * @example
 * ```ts
 * const t = newTensor({ type: GgmlType.F32, ne: [4, 3, 1, 1] });
 * nbytes(t); // 48
 * isContiguous(t); // true
 * ```
 * @module
 */

import type { DeviceBuffer } from "../../backends/device.ts";
import { MAX_OP_PARAMS, MAX_SRC } from "../wire/constants.ts";
import { GgmlOp, opDesc } from "./ops.ts";
import { type TypeInfo, typeInfo, typeName } from "./types.ts";

/** Four dimensions, as ggml keeps them (dim 0 innermost). */
export type Dims = [number, number, number, number];

/** A tensor node or leaf of a graph. */
export interface Tensor {
  /** The client's id (its pointer); unique within one graph. */
  id: bigint;
  type: number;
  /** Elements per dimension. */
  ne: Dims;
  /** Byte strides per dimension. */
  nb: Dims;
  op: number;
  /** The 64 op_params bytes; read with {@linkcode opI32} / {@linkcode opF32}. */
  opParams: Uint8Array;
  flags: number;
  /** Sources, up to 10; null where absent. */
  src: (Tensor | null)[];
  viewSrc: Tensor | null;
  viewOffs: number;
  /** The device buffer holding the data, or null when the tensor has none. */
  buffer: DeviceBuffer | null;
  /** Byte offset of the data inside `buffer`. */
  offset: number;
  name: string;
}

/** ggml tensor flags. */
export const TensorFlag = { INPUT: 1, OUTPUT: 2, PARAM: 4, LOSS: 8, COMPUTE: 16 } as const;

/** Fields for {@linkcode newTensor}; the rest default to a leaf with no data. */
export interface TensorInit {
  id?: bigint;
  type: number;
  ne: Dims | number[];
  nb?: Dims | number[];
  op?: number;
  opParams?: Uint8Array | Int32Array | number[];
  src?: (Tensor | null)[];
  viewSrc?: Tensor | null;
  viewOffs?: number;
  buffer?: DeviceBuffer | null;
  offset?: number;
  name?: string;
  flags?: number;
}

/** Contiguous strides for `type` and `ne`, as ggml_new_tensor sets them. */
export function contiguousStrides(type: number, ne: ArrayLike<number>): Dims {
  const info = requireType(type);
  const nb0 = info.typeSize;
  const nb1 = nb0 * (ne[0] / info.blockSize);
  const nb2 = nb1 * ne[1];
  const nb3 = nb2 * ne[2];
  return [nb0, nb1, nb2, nb3];
}

/** A new tensor (contiguous unless `nb` is given). */
export function newTensor(init: TensorInit): Tensor {
  const ne: Dims = [init.ne[0] ?? 1, init.ne[1] ?? 1, init.ne[2] ?? 1, init.ne[3] ?? 1];
  const opParams = new Uint8Array(MAX_OP_PARAMS);
  if (init.opParams instanceof Uint8Array) opParams.set(init.opParams.subarray(0, MAX_OP_PARAMS));
  else if (init.opParams) new Int32Array(opParams.buffer).set(Array.from(init.opParams).slice(0, 16));
  const src = new Array<Tensor | null>(MAX_SRC).fill(null);
  (init.src ?? []).forEach((s, i) => src[i] = s);
  return {
    id: init.id ?? 0n,
    type: init.type,
    ne,
    nb: init.nb ? [init.nb[0], init.nb[1], init.nb[2], init.nb[3]] : contiguousStrides(init.type, ne),
    op: init.op ?? GgmlOp.NONE,
    opParams,
    flags: init.flags ?? 0,
    src,
    viewSrc: init.viewSrc ?? null,
    viewOffs: init.viewOffs ?? 0,
    buffer: init.buffer ?? null,
    offset: init.offset ?? 0,
    name: init.name ?? "",
  };
}

function requireType(type: number): TypeInfo {
  const info = typeInfo(type);
  if (!info) throw new RangeError(`${typeName(type)} is not a valid ggml type`);
  return info;
}

/** op_params[i] as i32. */
export function opI32(t: Tensor, i: number): number {
  return new DataView(t.opParams.buffer, t.opParams.byteOffset, MAX_OP_PARAMS).getInt32(4 * i, true);
}

/** op_params[i] as f32. */
export function opF32(t: Tensor, i: number): number {
  return new DataView(t.opParams.buffer, t.opParams.byteOffset, MAX_OP_PARAMS).getFloat32(4 * i, true);
}

/** Sets op_params[i] as i32. */
export function setOpI32(t: Tensor, i: number, v: number): void {
  new DataView(t.opParams.buffer, t.opParams.byteOffset, MAX_OP_PARAMS).setInt32(4 * i, v, true);
}

/** Sets op_params[i] as f32. */
export function setOpF32(t: Tensor, i: number, v: number): void {
  new DataView(t.opParams.buffer, t.opParams.byteOffset, MAX_OP_PARAMS).setFloat32(4 * i, v, true);
}

/** Number of elements (`ggml_nelements`). */
export function nelements(t: { ne: ArrayLike<number> }): number {
  return t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3];
}

/** Number of rows (`ggml_nrows`). */
export function nrows(t: { ne: ArrayLike<number> }): number {
  return t.ne[1] * t.ne[2] * t.ne[3];
}

/**
 * Bytes spanned by the tensor's elements (`ggml_nbytes`): for block size 1,
 * type_size + Σ (ne[i]-1)·nb[i]; for blocked types ne[0]·nb[0]/block + Σ_{i≥1} (ne[i]-1)·nb[i].
 * 0 when any dimension is 0. Exact while the result stays below 2^53; callers that take sizes from
 * the network check that with {@linkcode nbytesChecked}.
 */
export function nbytes(t: { type: number; ne: ArrayLike<number>; nb: ArrayLike<number> }): number {
  for (let i = 0; i < 4; i++) if (t.ne[i] <= 0) return 0;
  const info = requireType(t.type);
  let n: number;
  if (info.blockSize === 1) {
    n = info.typeSize;
    for (let i = 0; i < 4; i++) n += (t.ne[i] - 1) * t.nb[i];
  } else {
    n = t.ne[0] * t.nb[0] / info.blockSize;
    for (let i = 1; i < 4; i++) n += (t.ne[i] - 1) * t.nb[i];
  }
  return n;
}

/** {@linkcode nbytes}, or -1 when it would not be an exact integer below 2^53. */
export function nbytesChecked(t: { type: number; ne: ArrayLike<number>; nb: ArrayLike<number> }): number {
  const n = nbytes(t);
  return Number.isSafeInteger(n) ? n : -1;
}

/** Bytes of one row of `ne0` elements (`ggml_row_size`). */
export function rowSize(type: number, ne0: number): number {
  const info = requireType(type);
  return info.typeSize * ne0 / info.blockSize;
}

/** `ggml_is_contiguous` (= `_0`): elements are packed with no gaps, in order. */
export function isContiguous(t: Tensor): boolean {
  return isContiguousMN(t, 0, 4);
}

/** `ggml_is_contiguous_1`: contiguous except possibly dim 1's stride. */
export function isContiguous1(t: Tensor): boolean {
  return isContiguousMN(t, 1, 4);
}

/** `ggml_is_contiguous_2`: contiguous except possibly dims 1 and 2's strides. */
export function isContiguous2(t: Tensor): boolean {
  return isContiguousMN(t, 2, 4);
}

/**
 * `ggml_is_contiguous_m_n`: dims 1..m may have any stride, dims m+1..n-1 must follow on densely.
 */
export function isContiguousMN(
  t: { type: number; ne: ArrayLike<number>; nb: ArrayLike<number> },
  m: number,
  n: number,
): boolean {
  const info = requireType(t.type);
  let nextNb = info.typeSize;
  if (t.ne[0] !== info.blockSize && t.nb[0] !== nextNb) return false;
  nextNb *= t.ne[0] / info.blockSize;
  for (let i = 1; i < n; i++) {
    if (i > m) {
      if (t.ne[i] !== 1 && t.nb[i] !== nextNb) return false;
      nextNb *= t.ne[i];
    } else {
      // this dimension does not need to be contiguous
      nextNb = t.ne[i] * t.nb[i];
    }
  }
  return true;
}

/** `ggml_is_contiguously_allocated`: nbytes equals the packed size. */
export function isContiguouslyAllocated(t: Tensor): boolean {
  const info = requireType(t.type);
  return nbytes(t) === nelements(t) * info.typeSize / info.blockSize;
}

/** `ggml_is_contiguous_rows`: each row is packed (nb[0] is the element size). */
export function isContiguousRows(t: Tensor): boolean {
  const info = requireType(t.type);
  return t.ne[0] === info.blockSize || t.nb[0] === info.typeSize;
}

/** `ggml_is_transposed`: nb[0] > nb[1]. */
export function isTransposed(t: Tensor): boolean {
  return t.nb[0] > t.nb[1];
}

/** `ggml_is_permuted`: strides not in increasing order. */
export function isPermuted(t: Tensor): boolean {
  return t.nb[0] > t.nb[1] || t.nb[1] > t.nb[2] || t.nb[2] > t.nb[3];
}

/** `ggml_are_same_shape`. */
export function sameShape(a: { ne: ArrayLike<number> }, b: { ne: ArrayLike<number> }): boolean {
  return a.ne[0] === b.ne[0] && a.ne[1] === b.ne[1] && a.ne[2] === b.ne[2] && a.ne[3] === b.ne[3];
}

/** `ggml_can_repeat`: `b` can be broadcast to `a`'s shape (every dim of `a` a multiple of b's). */
export function canRepeat(b: { ne: ArrayLike<number> }, a: { ne: ArrayLike<number> }): boolean {
  if (nelements(b) === 0) return nelements(a) === 0;
  return a.ne[0] % b.ne[0] === 0 && a.ne[1] % b.ne[1] === 0 && a.ne[2] % b.ne[2] === 0 &&
    a.ne[3] % b.ne[3] === 0;
}

/** The sub-op of UNARY / GLU nodes (op_params[0]), else -1. */
export function subOp(t: Tensor): number {
  return t.op === GgmlOp.UNARY || t.op === GgmlOp.GLU ? opI32(t, 0) : -1;
}

/** How logs and errors name a node: its op (or sub-op) and the types of it and its sources. */
export function describeNode(t: Tensor): string {
  const types = t.src.filter((s): s is Tensor => s !== null).map((s) => typeName(s.type));
  const shape = `[${t.ne.join(",")}]`;
  return `${opDesc(t.op, subOp(t))} ${typeName(t.type)}${shape}` +
    (types.length ? ` <- ${types.join(", ")}` : "") + (t.name ? ` "${t.name}"` : "");
}
