/**
 * Reading and writing tensor elements in CPU buffers, in ggml's logical order (dim 0 fastest), for
 * f32, f16, bf16, i32 and i64 (i64 as numbers: exact up to 2^53), honouring any strides and any
 * byte offset. Dense f32 copies (`loadF32`) keep the op kernels simple; contiguous tensors of the
 * right alignment take typed-array fast paths.
 * @module
 */

import { DeviceError } from "../../protocol/errors.ts";
import type { Tensor } from "../../protocol/graph/tensor.ts";
import { isContiguous, nelements } from "../../protocol/graph/tensor.ts";
import { GgmlType, typeName } from "../../protocol/graph/types.ts";
import { bf16BitsToF32, F16_TO_F32, f32ToBf16Bits } from "./numeric.ts";

/** What a CPU buffer exposes to kernels. */
export interface HostStorage {
  readonly bytes: Uint8Array;
}

/** The bytes of the buffer `t` lives in, and the byte offset of its data there. */
export function storage(t: Tensor): { bytes: Uint8Array; view: DataView; offset: number } {
  const b = t.buffer as unknown as HostStorage | null;
  if (!b || !(b.bytes instanceof Uint8Array)) {
    throw new DeviceError(`tensor "${t.name}" has no CPU buffer`);
  }
  const bytes = b.bytes;
  return { bytes, view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset: t.offset };
}

/** Element types the CPU reference reads and writes. */
export const CPU_VALUE_TYPES: ReadonlySet<number> = new Set([
  GgmlType.F32,
  GgmlType.F16,
  GgmlType.BF16,
  GgmlType.I32,
  GgmlType.I64,
]);

type Reader = (v: DataView, o: number) => number;
type Writer = (v: DataView, o: number, x: number) => void;

/** Reads one element of `type` at byte offset `o`. */
export function readerFor(type: number): Reader {
  switch (type) {
    case GgmlType.F32:
      return (v, o) => v.getFloat32(o, true);
    case GgmlType.F16:
      return (v, o) => F16_TO_F32[v.getUint16(o, true)];
    case GgmlType.BF16:
      return (v, o) => bf16BitsToF32(v.getUint16(o, true));
    case GgmlType.I32:
      return (v, o) => v.getInt32(o, true);
    case GgmlType.I64:
      return (v, o) => Number(v.getBigInt64(o, true));
    default:
      throw new DeviceError(`cpu cannot read elements of type ${typeName(type)}`);
  }
}

/** Writes one element of `type` at byte offset `o`, converting as ggml does. */
export function writerFor(type: number): Writer {
  switch (type) {
    case GgmlType.F32:
      return (v, o, x) => v.setFloat32(o, x, true);
    case GgmlType.F16:
      return (v, o, x) => v.setFloat16(o, x, true);
    case GgmlType.BF16:
      return (v, o, x) => v.setUint16(o, f32ToBf16Bits(x), true);
    case GgmlType.I32:
      return (v, o, x) => v.setInt32(o, x, true);
    case GgmlType.I64:
      return (v, o, x) => v.setBigInt64(o, BigInt(Math.trunc(x)), true);
    default:
      throw new DeviceError(`cpu cannot write elements of type ${typeName(type)}`);
  }
}

/**
 * A dense copy of `t`'s elements in logical order, as f32 (or f64 with `wide`, for exact integers
 * and accumulations).
 */
export function loadF32(t: Tensor, wide = false): Float32Array | Float64Array {
  const n = nelements(t);
  const out = wide ? new Float64Array(n) : new Float32Array(n);
  const { bytes, view, offset } = storage(t);
  if (isContiguous(t)) {
    if (t.type === GgmlType.F32 && !wide && (bytes.byteOffset + offset) % 4 === 0) {
      out.set(new Float32Array(bytes.buffer, bytes.byteOffset + offset, n));
      return out;
    }
    if (t.type === GgmlType.F16 && (bytes.byteOffset + offset) % 2 === 0) {
      const h = new Uint16Array(bytes.buffer, bytes.byteOffset + offset, n);
      for (let i = 0; i < n; i++) out[i] = F16_TO_F32[h[i]];
      return out;
    }
  }
  const read = readerFor(t.type);
  const [ne0, ne1, ne2, ne3] = t.ne;
  const [nb0, nb1, nb2, nb3] = t.nb;
  let k = 0;
  for (let i3 = 0; i3 < ne3; i3++) {
    for (let i2 = 0; i2 < ne2; i2++) {
      for (let i1 = 0; i1 < ne1; i1++) {
        let o = offset + i1 * nb1 + i2 * nb2 + i3 * nb3;
        for (let i0 = 0; i0 < ne0; i0++, o += nb0) out[k++] = read(view, o);
      }
    }
  }
  return out;
}

/** Stores dense logical-order `values` into `t`, converting to its type. */
export function storeF32(t: Tensor, values: ArrayLike<number>): void {
  const n = nelements(t);
  const { bytes, view, offset } = storage(t);
  if (isContiguous(t) && t.type === GgmlType.F32 && (bytes.byteOffset + offset) % 4 === 0) {
    const dst = new Float32Array(bytes.buffer, bytes.byteOffset + offset, n);
    if (values instanceof Float32Array || values instanceof Float64Array) dst.set(values.subarray(0, n));
    else for (let i = 0; i < n; i++) dst[i] = values[i];
    return;
  }
  const write = writerFor(t.type);
  const [ne0, ne1, ne2, ne3] = t.ne;
  const [nb0, nb1, nb2, nb3] = t.nb;
  let k = 0;
  for (let i3 = 0; i3 < ne3; i3++) {
    for (let i2 = 0; i2 < ne2; i2++) {
      for (let i1 = 0; i1 < ne1; i1++) {
        let o = offset + i1 * nb1 + i2 * nb2 + i3 * nb3;
        for (let i0 = 0; i0 < ne0; i0++, o += nb0) write(view, o, values[k++]);
      }
    }
  }
}

/** Copies `t`'s raw bytes element by element in logical order into a dense array (same type). */
export function loadRaw(t: Tensor, elemSize: number): Uint8Array {
  const n = nelements(t);
  const out = new Uint8Array(n * elemSize);
  const { bytes, offset } = storage(t);
  const [ne0, ne1, ne2, ne3] = t.ne;
  const [nb0, nb1, nb2, nb3] = t.nb;
  let k = 0;
  for (let i3 = 0; i3 < ne3; i3++) {
    for (let i2 = 0; i2 < ne2; i2++) {
      for (let i1 = 0; i1 < ne1; i1++) {
        let o = offset + i1 * nb1 + i2 * nb2 + i3 * nb3;
        for (let i0 = 0; i0 < ne0; i0++, o += nb0, k += elemSize) {
          for (let b = 0; b < elemSize; b++) out[k + b] = bytes[o + b];
        }
      }
    }
  }
  return out;
}

/** Writes dense raw elements (same type) into `t` in logical order. */
export function storeRaw(t: Tensor, src: Uint8Array, elemSize: number): void {
  const { bytes, offset } = storage(t);
  const [ne0, ne1, ne2, ne3] = t.ne;
  const [nb0, nb1, nb2, nb3] = t.nb;
  let k = 0;
  for (let i3 = 0; i3 < ne3; i3++) {
    for (let i2 = 0; i2 < ne2; i2++) {
      for (let i1 = 0; i1 < ne1; i1++) {
        let o = offset + i1 * nb1 + i2 * nb2 + i3 * nb3;
        for (let i0 = 0; i0 < ne0; i0++, o += nb0, k += elemSize) {
          for (let b = 0; b < elemSize; b++) bytes[o + b] = src[k + b];
        }
      }
    }
  }
}
