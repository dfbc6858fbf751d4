/**
 * Test assertions. JSR's @std/assert is out of reach on this project's machines, so tests use
 * Node's `node:assert/strict` through this one file; switching later changes only this file.
 * @module
 */

import assert from "node:assert/strict";

export { assert };

/** Asserts strict deep equality. */
export const assertEquals: <T>(actual: unknown, expected: T, message?: string) => asserts actual is T =
  assert.deepStrictEqual;

/** Asserts `value` is truthy. */
export const assertOk: (value: unknown, message?: string) => asserts value = assert.ok;

/** Asserts that `fn` throws an error matching `expected` (a class, RegExp or validation function). */
export const assertThrows: (
  fn: () => unknown,
  expected?: RegExp | (new (...a: never[]) => Error),
  message?: string,
) => void = (
  fn,
  expected,
  message,
) => assert.throws(fn, expected as RegExp, message);

/** Asserts that the promise rejects with an error matching `expected`. */
export const assertRejects: (
  fn: () => Promise<unknown>,
  expected?: RegExp | (new (...a: never[]) => Error),
  message?: string,
) => Promise<void> = (fn, expected, message) => assert.rejects(fn, expected as RegExp, message);

/**
 * Normalized mean squared error as ggml's test-backend-ops computes it:
 * Σ (a - b)² / Σ b², with b the reference. NaN where either is NaN at the same place is equal.
 */
export function nmse(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], b = expected[i];
    if (Number.isNaN(a) && Number.isNaN(b)) continue;
    if (a === b) {
      den += b * b;
      continue;
    }
    const d = a - b;
    num += d * d;
    den += b * b;
  }
  return den === 0 ? (num === 0 ? 0 : Infinity) : num / den;
}

/** Asserts NMSE(actual, expected) ≤ bound, naming the figure in the message. */
export function assertNmse(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  bound: number,
  what = "",
): void {
  assert.equal(actual.length, expected.length, `${what} length`);
  const e = nmse(actual, expected);
  assert.ok(e <= bound, `${what} NMSE ${e} exceeds ${bound}`);
}

/** A deterministic PRNG (mulberry32) for test inputs; seed with Date.now() for fresh data. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
