/**
 * Reading and writing tensor elements in CPU buffers, in ggml's logical order (dim 0 fastest), for
 * f32, f16, bf16, i32, i64 (as numbers: exact up to 2^53), i16 and i8, honouring any strides and
 * any byte offset. {@linkcode TensorData} wraps one tensor: rows are read into and written from f32
 * scratch arrays (converting as ggml converts), single elements are read and written as numbers,
 * and same-type copies move raw bytes so that NaN payloads and integers survive exactly.
 *
 * Tensors whose offset and strides are multiples of their element size (every tensor ggml makes)
 * are addressed through typed-array views of the whole buffer; any other layout goes through a
 * DataView, slower but equally correct.
 *
 * @example
 * ```ts
 * const x = new TensorData(node.src[0]!);
 * const row = new Float32Array(x.ne[0]);
 * x.readRow(row, 0, 0, 0); // the first row as f32
 * ```
 * @module
 */

import { DeviceError } from "../../protocol/errors.ts";
import type { Dims, Tensor } from "../../protocol/graph/tensor.ts";
import { GgmlType, typeName } from "../../protocol/graph/types.ts";
import { BF16_TO_F32, f32ToBf16Bits, f32ToI32 } from "./numeric.ts";

/** What a CPU buffer exposes to kernels. */
export interface HostStorage {
  readonly bytes: Uint8Array;
}

/** Typed views over one buffer's memory, made once per buffer. */
export interface BufferViews {
  readonly u8: Uint8Array;
  readonly f32: Float32Array;
  readonly f16: Float16Array;
  readonly u16: Uint16Array;
  readonly i32: Int32Array;
  readonly i16: Int16Array;
  readonly i8: Int8Array;
  readonly dv: DataView;
}

const VIEWS = new WeakMap<Uint8Array, BufferViews>();

/** The typed views of a buffer's bytes (cached per Uint8Array). */
export function viewsOf(bytes: Uint8Array): BufferViews {
  let v = VIEWS.get(bytes);
  if (!v) {
    const { buffer, byteOffset: o, byteLength: n } = bytes;
    if (o % 8 !== 0) throw new DeviceError("cpu buffer memory is not 8-byte aligned");
    v = {
      u8: bytes,
      f32: new Float32Array(buffer, o, n >>> 2),
      f16: new Float16Array(buffer, o, n >>> 1),
      u16: new Uint16Array(buffer, o, n >>> 1),
      i32: new Int32Array(buffer, o, n >>> 2),
      i16: new Int16Array(buffer, o, n >>> 1),
      i8: new Int8Array(buffer, o, n),
      dv: new DataView(buffer, o, n),
    };
    VIEWS.set(bytes, v);
  }
  return v;
}

/** The bytes of the buffer `t` lives in. */
export function bytesOf(t: Tensor): Uint8Array {
  const b = t.buffer as unknown as HostStorage | null;
  if (!b || !(b.bytes instanceof Uint8Array)) {
    throw new DeviceError(`tensor "${t.name}" has no CPU buffer`);
  }
  return b.bytes;
}

/** Element types the CPU reference reads and writes. */
export const CPU_VALUE_TYPES: ReadonlySet<number> = new Set([
  GgmlType.F32,
  GgmlType.F16,
  GgmlType.BF16,
  GgmlType.I32,
  GgmlType.I64,
]);

/** Types that same-type copies (CPY, DUP, CONT, CONCAT) move as raw bytes: the above, i16, i8. */
export const RAW_TYPES: ReadonlySet<number> = new Set([...CPU_VALUE_TYPES, GgmlType.I16, GgmlType.I8]);

/** The float types ggml's CPU computes in: f32, f16, bf16. */
export const FLOAT_TYPES: ReadonlySet<number> = new Set([GgmlType.F32, GgmlType.F16, GgmlType.BF16]);

function elementSize(type: number): number {
  switch (type) {
    case GgmlType.F32:
    case GgmlType.I32:
      return 4;
    case GgmlType.F16:
    case GgmlType.BF16:
    case GgmlType.I16:
      return 2;
    case GgmlType.I64:
      return 8;
    case GgmlType.I8:
      return 1;
    default:
      throw new DeviceError(`cpu cannot address elements of type ${typeName(type)}`);
  }
}

const TWO32 = 4294967296;

/**
 * One tensor's elements: shape, strides, and the memory they live in. Cheap to make (one per
 * source per kernel run); all methods take logical indices (i0 fastest).
 */
export class TensorData {
  readonly type: number;
  readonly ne: Dims;
  readonly nb: Dims;
  /** Bytes per element. */
  readonly esize: number;
  readonly bytes: Uint8Array;
  readonly views: BufferViews;
  /** Byte offset of element [0,0,0,0] in `bytes`. */
  readonly off: number;
  /** Whether element-index addressing works (offset and strides are multiples of `esize`). */
  readonly aligned: boolean;
  /** Element-index strides and offset (valid when `aligned`). */
  readonly s0: number;
  readonly s1: number;
  readonly s2: number;
  readonly s3: number;
  readonly base: number;

  constructor(t: Tensor) {
    this.type = t.type;
    this.ne = t.ne;
    this.nb = t.nb;
    this.esize = elementSize(t.type);
    this.bytes = bytesOf(t);
    this.views = viewsOf(this.bytes);
    this.off = t.offset;
    const e = this.esize;
    this.aligned = t.offset % e === 0 && t.nb[0] % e === 0 && t.nb[1] % e === 0 && t.nb[2] % e === 0 &&
      t.nb[3] % e === 0;
    this.s0 = t.nb[0] / e;
    this.s1 = t.nb[1] / e;
    this.s2 = t.nb[2] / e;
    this.s3 = t.nb[3] / e;
    this.base = t.offset / e;
  }

  /** Byte offset of element [i0, i1, i2, i3]. */
  at(i0: number, i1: number, i2: number, i3: number): number {
    return this.off + i0 * this.nb[0] + i1 * this.nb[1] + i2 * this.nb[2] + i3 * this.nb[3];
  }

  /** Element index of [i0, i1, i2, i3] in the typed view of this type (only when `aligned`). */
  idx(i0: number, i1: number, i2: number, i3: number): number {
    return this.base + i0 * this.s0 + i1 * this.s1 + i2 * this.s2 + i3 * this.s3;
  }

  /** Element [i0, i1, i2, i3] as a number (floats as f32 values, integers exactly). */
  get(i0: number, i1: number, i2: number, i3: number): number {
    if (this.aligned) {
      const k = this.idx(i0, i1, i2, i3);
      switch (this.type) {
        case GgmlType.F32:
          return this.views.f32[k];
        case GgmlType.F16:
          return this.views.f16[k];
        case GgmlType.BF16:
          return BF16_TO_F32[this.views.u16[k]];
        case GgmlType.I32:
          return this.views.i32[k];
        case GgmlType.I16:
          return this.views.i16[k];
        case GgmlType.I8:
          return this.views.i8[k];
        default: // I64
          return this.views.i32[2 * k + 1] * TWO32 + (this.views.i32[2 * k] >>> 0);
      }
    }
    return this.#getUnaligned(this.at(i0, i1, i2, i3));
  }

  /** Sets element [i0, i1, i2, i3] to `x`, converting to the tensor's type as ggml does. */
  set(i0: number, i1: number, i2: number, i3: number, x: number): void {
    if (this.aligned) {
      const k = this.idx(i0, i1, i2, i3);
      switch (this.type) {
        case GgmlType.F32:
          this.views.f32[k] = x;
          return;
        case GgmlType.F16:
          this.views.f16[k] = x;
          return;
        case GgmlType.BF16:
          this.views.u16[k] = f32ToBf16Bits(x);
          return;
        case GgmlType.I32:
          this.views.i32[k] = f32ToI32(x);
          return;
        case GgmlType.I16:
          this.views.i16[k] = x;
          return;
        case GgmlType.I8:
          this.views.i8[k] = x;
          return;
        default: { // I64
          const hi = Math.floor(x / TWO32);
          this.views.i32[2 * k] = (x - hi * TWO32) | 0;
          this.views.i32[2 * k + 1] = hi | 0;
          return;
        }
      }
    }
    this.#setUnaligned(this.at(i0, i1, i2, i3), x);
  }

  #getUnaligned(o: number): number {
    const dv = this.views.dv;
    switch (this.type) {
      case GgmlType.F32:
        return dv.getFloat32(o, true);
      case GgmlType.F16:
        return dv.getFloat16(o, true);
      case GgmlType.BF16:
        return BF16_TO_F32[dv.getUint16(o, true)];
      case GgmlType.I32:
        return dv.getInt32(o, true);
      case GgmlType.I16:
        return dv.getInt16(o, true);
      case GgmlType.I8:
        return dv.getInt8(o);
      default:
        return dv.getInt32(o + 4, true) * TWO32 + dv.getUint32(o, true);
    }
  }

  #setUnaligned(o: number, x: number): void {
    const dv = this.views.dv;
    switch (this.type) {
      case GgmlType.F32:
        return dv.setFloat32(o, x, true);
      case GgmlType.F16:
        return dv.setFloat16(o, x, true);
      case GgmlType.BF16:
        return dv.setUint16(o, f32ToBf16Bits(x), true);
      case GgmlType.I32:
        return dv.setInt32(o, f32ToI32(x), true);
      case GgmlType.I16:
        return dv.setInt16(o, x, true);
      case GgmlType.I8:
        return dv.setInt8(o, x);
      default: {
        const hi = Math.floor(x / TWO32);
        dv.setInt32(o, (x - hi * TWO32) | 0, true);
        dv.setInt32(o + 4, hi | 0, true);
      }
    }
  }

  /**
   * Reads `n` elements of row [i1, i2, i3] starting at column `i0` into `out[o ..]` as f32 values
   * (integers converted as ggml's i32 → f32).
   */
  readRow(out: Float32Array, i1: number, i2: number, i3: number, o = 0, i0 = 0, n = this.ne[0]): void {
    if (!this.aligned) {
      let b = this.at(i0, i1, i2, i3);
      const nb0 = this.nb[0];
      for (let i = 0; i < n; i++, b += nb0) out[o + i] = this.#getUnaligned(b);
      return;
    }
    let k = this.idx(i0, i1, i2, i3);
    const s = this.s0;
    switch (this.type) {
      case GgmlType.F32: {
        const a = this.views.f32;
        if (s === 1) out.set(a.subarray(k, k + n), o);
        else for (let i = 0; i < n; i++, k += s) out[o + i] = a[k];
        return;
      }
      case GgmlType.F16: {
        const a = this.views.f16;
        for (let i = 0; i < n; i++, k += s) out[o + i] = a[k];
        return;
      }
      case GgmlType.BF16: {
        const a = this.views.u16;
        for (let i = 0; i < n; i++, k += s) out[o + i] = BF16_TO_F32[a[k]];
        return;
      }
      case GgmlType.I32: {
        const a = this.views.i32;
        for (let i = 0; i < n; i++, k += s) out[o + i] = a[k];
        return;
      }
      case GgmlType.I64: {
        const a = this.views.i32;
        for (let i = 0; i < n; i++, k += s) out[o + i] = a[2 * k + 1] * TWO32 + (a[2 * k] >>> 0);
        return;
      }
      default:
        for (let i = 0; i < n; i++) out[o + i] = this.get(i0 + i, i1, i2, i3);
    }
  }

  /**
   * Writes `n` values `src[o ..]` into row [i1, i2, i3] from column `i0`, converting to the tensor's
   * type (f16 round to nearest even, bf16 as ggml, i32 by truncation).
   */
  writeRow(src: Float32Array, i1: number, i2: number, i3: number, o = 0, i0 = 0, n = this.ne[0]): void {
    if (!this.aligned) {
      let b = this.at(i0, i1, i2, i3);
      const nb0 = this.nb[0];
      for (let i = 0; i < n; i++, b += nb0) this.#setUnaligned(b, src[o + i]);
      return;
    }
    let k = this.idx(i0, i1, i2, i3);
    const s = this.s0;
    switch (this.type) {
      case GgmlType.F32: {
        const a = this.views.f32;
        if (s === 1) a.set(src.subarray(o, o + n), k);
        else for (let i = 0; i < n; i++, k += s) a[k] = src[o + i];
        return;
      }
      case GgmlType.F16: {
        const a = this.views.f16;
        for (let i = 0; i < n; i++, k += s) a[k] = src[o + i];
        return;
      }
      case GgmlType.BF16: {
        const a = this.views.u16;
        for (let i = 0; i < n; i++, k += s) a[k] = f32ToBf16Bits(src[o + i]);
        return;
      }
      case GgmlType.I32: {
        const a = this.views.i32;
        for (let i = 0; i < n; i++, k += s) a[k] = f32ToI32(src[o + i]);
        return;
      }
      default:
        for (let i = 0; i < n; i++) this.set(i0 + i, i1, i2, i3, src[o + i]);
    }
  }

  /** Whether each row's elements are packed (nb[0] is the element size). */
  get rowsPacked(): boolean {
    return this.nb[0] === this.esize;
  }
}

/**
 * Copies `n` elements of the same type from `src` row [s1, s2, s3] (from column `si0`) to `dst` row
 * [d1, d2, d3] (from column `di0`), as raw bytes.
 */
export function copyRowRaw(
  dst: TensorData,
  d1: number,
  d2: number,
  d3: number,
  src: TensorData,
  s1: number,
  s2: number,
  s3: number,
  n = src.ne[0],
  di0 = 0,
  si0 = 0,
): void {
  const size = src.esize;
  let db = dst.at(di0, d1, d2, d3);
  let sb = src.at(si0, s1, s2, s3);
  const dnb = dst.nb[0], snb = src.nb[0];
  if (dnb === size && snb === size) {
    if (dst.bytes === src.bytes) dst.bytes.copyWithin(db, sb, sb + n * size);
    else dst.bytes.set(src.bytes.subarray(sb, sb + n * size), db);
    return;
  }
  const d = dst.bytes, s = src.bytes;
  for (let i = 0; i < n; i++, db += dnb, sb += snb) {
    for (let b = 0; b < size; b++) d[db + b] = s[sb + b];
  }
}

/** Calls `f(i1, i2, i3)` for the rows [r0, r1) of a tensor of shape `ne`, in ggml's row order. */
export function forRows(
  ne: Dims,
  r0: number,
  r1: number,
  f: (i1: number, i2: number, i3: number) => void,
): void {
  const n1 = ne[1], n12 = ne[1] * ne[2];
  for (let r = r0; r < r1; r++) {
    const i3 = Math.floor(r / n12);
    const rem = r - i3 * n12;
    const i2 = Math.floor(rem / n1);
    f(rem - i2 * n1, i2, i3);
  }
}

/** The part [r0, r1) of `n` rows that thread `ith` of `nth` computes (ggml's split). */
export function partRange(n: number, ith: number, nth: number): [number, number] {
  const dr = Math.ceil(n / nth);
  const r0 = Math.min(n, dr * ith);
  return [r0, Math.min(n, r0 + dr)];
}
