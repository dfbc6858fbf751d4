/**
 * Number formats as ggml's CPU backend converts them: f16 with round-to-nearest-even (IEEE, as F16C
 * does), bf16 with ggml's own rounding (`ggml_compute_fp32_to_bf16`: NaN forced quiet, otherwise
 * round to nearest even on the upper 16 bits), f32 → i32 as x86's truncating conversion.
 * @module
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const f16 = new Float16Array(1);
const u16 = new Uint16Array(f16.buffer);

/** f16 bits → f32 value, for all 65536 bit patterns (a lookup is faster than decoding). */
export const F16_TO_F32: Float32Array = (() => {
  const t = new Float32Array(65536);
  const h = new Float16Array(new Uint16Array(65536).map((_, i) => i).buffer);
  for (let i = 0; i < 65536; i++) t[i] = h[i];
  return t;
})();

/** bf16 bits → f32 value, for all 65536 bit patterns. */
export const BF16_TO_F32: Float32Array = (() => {
  const t = new Float32Array(65536);
  const u = new Uint32Array(t.buffer);
  for (let i = 0; i < 65536; i++) u[i] = i << 16;
  return t;
})();

/** f32 value → f16 bits, rounded to nearest even. */
export function f32ToF16Bits(x: number): number {
  f16[0] = x;
  return u16[0];
}

/** f16 bits → value. */
export function f16BitsToF32(bits: number): number {
  return F16_TO_F32[bits & 0xffff];
}

/** f32 value → bf16 bits, exactly as ggml_compute_fp32_to_bf16. */
export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  const i = u32[0];
  if ((i & 0x7fffffff) > 0x7f800000) return ((i >>> 16) | 64) & 0xffff;
  return ((i + (0x7fff + ((i >>> 16) & 1))) >>> 16) & 0xffff;
}

/** bf16 bits → value. */
export function bf16BitsToF32(bits: number): number {
  return BF16_TO_F32[bits & 0xffff];
}

/** Rounds a value to f16 precision and back (ggml's fp16 round trip). */
export function roundF16(x: number): number {
  return Math.f16round(x);
}

/** Rounds a value to bf16 precision and back. */
export function roundBf16(x: number): number {
  return BF16_TO_F32[f32ToBf16Bits(x)];
}

/**
 * f32 → i32 as C's `(int32_t) x` compiles on x86 (cvttss2si): truncation toward zero, and the
 * "integer indefinite" value INT32_MIN for NaN and anything out of range.
 */
export function f32ToI32(x: number): number {
  const t = Math.trunc(x);
  return t >= -2147483648 && t <= 2147483647 ? t : -2147483648;
}
