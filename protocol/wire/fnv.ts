/**
 * FNV-1a 64, the hash ggml's RPC tensor cache names files by (offset basis 0xcbf29ce484222325,
 * prime 0x100000001b3, byte-wise XOR then multiply).
 *
 * Computed on two 32-bit halves so that no BigInt is made per byte: the prime is 2^40 + 0x1b3, so
 * h·p = h·0x1b3 + (h << 40) mod 2^64, and every partial product stays a small integer.
 *
 * @example
 * ```ts
 * fnv1a64(new TextEncoder().encode("a")); // 0xaf63dc4c8601ec8cn
 * ```
 * @module
 */

/** The 64-bit FNV-1a hash of `data` (continuing from `seed` when given). */
export function fnv1a64(data: Uint8Array, seed = 0xcbf29ce484222325n): bigint {
  let lo = Number(seed & 0xffffffffn);
  let hi = Number(seed >> 32n);
  const n = data.length;
  for (let i = 0; i < n; i++) {
    lo = (lo ^ data[i]) >>> 0;
    // lo · 0x1b3 split over 16-bit halves keeps every product a small integer.
    const p0 = (lo & 0xffff) * 0x1b3;
    const p1 = (lo >>> 16) * 0x1b3;
    const mid = (p0 >>> 16) + p1;
    hi = (Math.imul(hi, 0x1b3) + (mid >>> 16) + (lo << 8)) >>> 0;
    lo = ((mid << 16) | (p0 & 0xffff)) >>> 0;
  }
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** The hash as ggml names cache files: 16 lowercase hex digits. */
export function hashHex(hash: bigint): string {
  return hash.toString(16).padStart(16, "0");
}
