/**
 * The inner loops of the matrix kernels (MUL_MAT, MUL_MAT_ID, OUT_PROD, FLASH_ATTN_EXT): dot
 * products and a 4×4 register-blocked micro-kernel over f32 arrays with offsets (and f16 weights
 * read in place), summed in double. Each function sees one array type only, so V8 keeps its loads
 * monomorphic. Kept apart from the op files so that a WebAssembly SIMD version can replace them
 * one by one without touching the ops.
 * @module
 */

/** Σ a[ao+k]·b[bo+k] for k < n. */
export function dot(a: Float32Array, ao: number, b: Float32Array, bo: number, n: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let k = 0;
  for (; k + 3 < n; k += 4) {
    s0 += a[ao + k] * b[bo + k];
    s1 += a[ao + k + 1] * b[bo + k + 1];
    s2 += a[ao + k + 2] * b[bo + k + 2];
    s3 += a[ao + k + 3] * b[bo + k + 3];
  }
  for (; k < n; k++) s0 += a[ao + k] * b[bo + k];
  return (s0 + s1) + (s2 + s3);
}

/**
 * Two dot products sharing b: out[0] = Σ a[a0+k]·b[bo+k], out[1] = Σ a[a1+k]·b[bo+k] (the rows
 * of f32 weights against one column: reads b once for two rows).
 */
export function dot2(
  a: Float32Array,
  a0: number,
  a1: number,
  b: Float32Array,
  bo: number,
  n: number,
  out: Float64Array,
): void {
  let s0 = 0, s1 = 0, t0 = 0, t1 = 0;
  let k = 0;
  for (; k + 1 < n; k += 2) {
    const y0 = b[bo + k], y1 = b[bo + k + 1];
    s0 += a[a0 + k] * y0;
    s1 += a[a0 + k + 1] * y1;
    t0 += a[a1 + k] * y0;
    t1 += a[a1 + k + 1] * y1;
  }
  for (; k < n; k++) {
    s0 += a[a0 + k] * b[bo + k];
    t0 += a[a1 + k] * b[bo + k];
  }
  out[0] = s0 + s1;
  out[1] = t0 + t1;
}

/** {@linkcode dot2} for f16 weights read in place. */
export function dot2F16(
  a: Float16Array,
  a0: number,
  a1: number,
  b: Float32Array,
  bo: number,
  n: number,
  out: Float64Array,
): void {
  let s0 = 0, s1 = 0, t0 = 0, t1 = 0;
  let k = 0;
  for (; k + 1 < n; k += 2) {
    const y0 = b[bo + k], y1 = b[bo + k + 1];
    s0 += a[a0 + k] * y0;
    s1 += a[a0 + k + 1] * y1;
    t0 += a[a1 + k] * y0;
    t1 += a[a1 + k + 1] * y1;
  }
  for (; k < n; k++) {
    s0 += a[a0 + k] * b[bo + k];
    t0 += a[a1 + k] * b[bo + k];
  }
  out[0] = s0 + s1;
  out[1] = t0 + t1;
}

/**
 * The 4×4 block c[r][c] = Σ_k a[ar+k]·b[bc+k] for the four rows ar = a0…a3 of `a` and the four
 * columns bc = b0…b3 of `b`, written to out[4r + c].
 */
export function dot4x4(
  a: Float32Array,
  a0: number,
  a1: number,
  a2: number,
  a3: number,
  b: Float32Array,
  b0: number,
  b1: number,
  b2: number,
  b3: number,
  n: number,
  out: Float64Array,
): void {
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
  for (let k = 0; k < n; k++) {
    const y0 = b[b0 + k], y1 = b[b1 + k], y2 = b[b2 + k], y3 = b[b3 + k];
    let x = a[a0 + k];
    c00 += x * y0;
    c01 += x * y1;
    c02 += x * y2;
    c03 += x * y3;
    x = a[a1 + k];
    c10 += x * y0;
    c11 += x * y1;
    c12 += x * y2;
    c13 += x * y3;
    x = a[a2 + k];
    c20 += x * y0;
    c21 += x * y1;
    c22 += x * y2;
    c23 += x * y3;
    x = a[a3 + k];
    c30 += x * y0;
    c31 += x * y1;
    c32 += x * y2;
    c33 += x * y3;
  }
  out[0] = c00, out[1] = c01, out[2] = c02, out[3] = c03;
  out[4] = c10, out[5] = c11, out[6] = c12, out[7] = c13;
  out[8] = c20, out[9] = c21, out[10] = c22, out[11] = c23;
  out[12] = c30, out[13] = c31, out[14] = c32, out[15] = c33;
}

/** y[yo+k] += a·x[xo+k] for k < n. */
export function axpy(y: Float32Array, yo: number, a: number, x: Float32Array, xo: number, n: number): void {
  for (let k = 0; k < n; k++) y[yo + k] += a * x[xo + k];
}
