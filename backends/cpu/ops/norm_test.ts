/**
 * Row-wise kernels against f64 formulas: NORM, RMS_NORM, L2_NORM, GROUP_NORM, SOFT_MAX (mask f32 and
 * f16, scale, ALiBi, sinks), DIAG_MASK_INF, ROPE (normal, neox, multi-section, vision; frequency
 * factors; YaRN off), and the reductions.
 */

import { assertEquals, assertNmse } from "../../../tests/asserts.ts";
import { f32Param, GgmlOp, GgmlType, TestBed } from "../testing.ts";

const { F32, F16, I32, I64 } = GgmlType;

function rowsOf(v: number[], n: number): number[][] {
  const r: number[][] = [];
  for (let i = 0; i < v.length; i += n) r.push(v.slice(i, i + n));
  return r;
}

Deno.test("NORM, RMS_NORM, L2_NORM over strided rows", () => {
  const tb = new TestBed();
  const eps = 1e-5;
  const a = tb.tensor(F32, [37, 4, 3], { rowGap: 3 });
  const norm = tb.node(GgmlOp.NORM, F32, [37, 4, 3], [a], [f32Param(eps)]);
  const rms = tb.node(GgmlOp.RMS_NORM, F32, [37, 4, 3], [a], [f32Param(eps)]);
  const l2 = tb.node(GgmlOp.L2_NORM, F32, [37, 4, 3], [a], [f32Param(eps)]);
  tb.run(norm, rms, l2);
  const rows = rowsOf(tb.read(a), 37);
  const want = (fn: (r: number[]) => number[]) => rows.flatMap(fn);
  assertNmse(
    tb.read(norm),
    want((r) => {
      const m = r.reduce((s, x) => s + x, 0) / r.length;
      const v = r.reduce((s, x) => s + (x - m) ** 2, 0) / r.length;
      return r.map((x) => (x - m) / Math.sqrt(v + eps));
    }),
    1e-12,
  );
  assertNmse(
    tb.read(rms),
    want((r) => {
      const ms = r.reduce((s, x) => s + x * x, 0) / r.length;
      return r.map((x) => x / Math.sqrt(ms + eps));
    }),
    1e-12,
  );
  assertNmse(
    tb.read(l2),
    want((r) => {
      const n = Math.sqrt(r.reduce((s, x) => s + x * x, 0));
      return r.map((x) => x / Math.max(n, eps));
    }),
    1e-12,
  );
  tb.close();
});

Deno.test("GROUP_NORM over groups of channels (uneven last group)", () => {
  const tb = new TestBed();
  const [ne0, ne1, ne2, groups, eps] = [5, 3, 7, 3, 1e-6]; // 3 channels per group: 3, 3, 1
  const a = tb.tensor(F32, [ne0, ne1, ne2]);
  const out = tb.node(GgmlOp.GROUP_NORM, F32, [ne0, ne1, ne2], [a], [groups, f32Param(eps)]);
  tb.run(out);
  const A = tb.read(a), want = new Array<number>(A.length);
  const per = ne0 * ne1;
  for (let g = 0; g < groups; g++) {
    const c0 = g * 3, c1 = Math.min(ne2, c0 + 3);
    const xs = A.slice(c0 * per, c1 * per);
    const m = xs.reduce((s, x) => s + x, 0) / xs.length;
    const v = xs.reduce((s, x) => s + (x - m) ** 2, 0) / xs.length;
    xs.forEach((x, i) => want[c0 * per + i] = (x - m) / Math.sqrt(v + eps));
  }
  assertNmse(tb.read(out), want, 1e-12);
  tb.close();
});

Deno.test("SOFT_MAX with mask (f32, f16), scale, ALiBi slopes and sinks", () => {
  const tb = new TestBed();
  const [n0, n1, heads] = [10, 3, 4];
  for (const maskType of [F32, F16]) {
    const scale = 0.7, maxBias = 8;
    const a = tb.tensor(F32, [n0, n1, heads]);
    const mask = tb.tensor(maskType, [n0, n1 + 2], { lo: -2, hi: 2 });
    const sinks = tb.tensor(F32, [heads]);
    const out = tb.node(GgmlOp.SOFT_MAX, F32, [n0, n1, heads], [a, mask, sinks], [
      f32Param(scale),
      f32Param(maxBias),
    ]);
    tb.run(out);
    const want: number[] = [];
    for (let h = 0; h < heads; h++) {
      const slope = h < 4 ? 2 ** (-(maxBias / 4) * (h + 1)) : 0; // n_head_log2 = 4
      for (let r = 0; r < n1; r++) {
        const z = Array.from({ length: n0 }, (_, i) => tb.at(a, i, r, h) * scale + slope * tb.at(mask, i, r));
        const m = Math.max(...z, tb.at(sinks, h));
        const e = z.map((x) => Math.exp(x - m));
        const s = e.reduce((p, x) => p + x, 0) + Math.exp(tb.at(sinks, h) - m);
        want.push(...e.map((x) => x / s));
      }
    }
    assertNmse(tb.read(out), want, 1e-12, `mask type ${maskType}`);
  }
  // plain softmax, and a fully masked row is NaN as in ggml (exp(-inf - -inf))
  const a = tb.tensor(F32, [4, 2]);
  const mask = tb.tensor(F32, [4, 2], {
    values: [0, 0, -Infinity, 0, -Infinity, -Infinity, -Infinity, -Infinity],
  });
  const out = tb.node(GgmlOp.SOFT_MAX, F32, [4, 2], [a, mask], [f32Param(1), f32Param(0)]);
  tb.run(out);
  const r = tb.read(out);
  assertEquals(r[2], 0);
  assertEquals(r.slice(4).every(Number.isNaN), true);
  tb.close();
});

Deno.test("DIAG_MASK_INF", () => {
  const tb = new TestBed();
  const a = tb.tensor(F32, [6, 4, 2]);
  const out = tb.node(GgmlOp.DIAG_MASK_INF, F32, [6, 4, 2], [a], [1]);
  tb.run(out);
  const A = tb.read(a), got = tb.read(out);
  got.forEach((v, k) => {
    const i = k % 6, j = Math.floor(k / 6) % 4;
    assertEquals(v, i > 1 + j ? -Infinity : A[k]);
  });
  tb.close();
});

/**
 * Rotary embedding with θ_i = p·base^(-2i/n_dims) / ff_i, rotating pairs (a, b). `ggmlAngles`:
 * θ as ggml's CPU computes it, in f32 (θ_scale = base^(-2/n_dims) rounded, θ multiplied by it pair
 * after pair, each step rounded), the rotation in f64; else the ideal angles in f64. At p = 4096 the
 * f32 chain moves θ by up to a few ulps of 4096 (≈1e-4 rad), so only the f32 angles can be held to
 * output rounding.
 */
function ropeRef(
  x: number[],
  pos: number,
  nDims: number,
  mode: "normal" | "neox",
  base: number,
  ff: number[] | null,
  ggmlAngles = true,
): number[] {
  const f = Math.fround;
  const y = x.slice();
  const scale = f(base ** f(-2 / nDims));
  let chain = f(pos);
  for (let i = 0; i < nDims / 2; i++) {
    const theta = ggmlAngles
      ? f(chain / (ff ? ff[i] : 1))
      : pos * base ** (-2 * i / nDims) / (ff ? ff[i] : 1);
    chain = f(chain * scale);
    const [a, b] = mode === "normal" ? [2 * i, 2 * i + 1] : [i, i + nDims / 2];
    y[a] = x[a] * Math.cos(theta) - x[b] * Math.sin(theta);
    y[b] = x[a] * Math.sin(theta) + x[b] * Math.cos(theta);
  }
  return y;
}

Deno.test("ROPE normal and neox, partial rotation, frequency factors, f32 and f16", () => {
  const tb = new TestBed(2);
  const [d, heads, tokens, nDims, base] = [16, 3, 5, 12, 10000];
  for (const type of [F32, F16]) {
    for (const [mode, name] of [[0, "normal"], [2, "neox"]] as const) {
      for (const withFf of [false, true]) {
        const a = tb.tensor(type, [d, heads, tokens]);
        const pos = tb.tensor(I32, [tokens], { values: [0, 3, 17, 250, 4096] });
        const ff = withFf ? tb.tensor(F32, [nDims / 2], { lo: 1, hi: 4 }) : null;
        const p = [
          0,
          nDims,
          mode,
          0,
          4096,
          f32Param(base),
          f32Param(1),
          f32Param(0),
          f32Param(1),
          f32Param(32),
          f32Param(1),
        ];
        const out = tb.node(GgmlOp.ROPE, type, [d, heads, tokens], [a, pos, ff], p);
        tb.run(out);
        const want: number[] = [], ideal: number[] = [];
        const F = ff ? tb.read(ff) : null;
        for (let t = 0; t < tokens; t++) {
          for (let h = 0; h < heads; h++) {
            const x = Array.from({ length: d }, (_, i) => tb.at(a, i, h, t));
            want.push(...ropeRef(x, tb.at(pos, t), nDims, name, base, F));
            ideal.push(...ropeRef(x, tb.at(pos, t), nDims, name, base, F, false));
          }
        }
        const what = `${name} ff=${withFf} type ${type}`;
        assertNmse(tb.read(out), want, type === F32 ? 1e-10 : 1e-5, what);
        // the f32 angle chain stays near the ideal rotation (a wrong formula would be far off)
        assertNmse(tb.read(out), ideal, 1e-5, `${what} (ideal angles)`);
      }
    }
  }
  tb.close();
});

Deno.test("ROPE multi-section and vision: each section rotates by its own position", () => {
  const tb = new TestBed();
  const [d, tokens, base] = [16, 3, 10000];
  const sections = [2, 2, 2, 2]; // 8 pairs: t, t, h, h, w, w, e, e
  const posv = [1, 2, 3, 10, 20, 30, 100, 200, 300, 7, 8, 9]; // t of each token, then h, w, e
  const pos = tb.tensor(I32, [4 * tokens], { values: posv });
  // MROPE (8): neox pairs over n_dims = d
  const a = tb.tensor(F32, [d, 2, tokens]);
  const mk = (mode: number, nDims: number) =>
    tb.node(GgmlOp.ROPE, F32, [d, 2, tokens], [a, pos, null], [
      0,
      nDims,
      mode,
      0,
      4096,
      f32Param(base),
      f32Param(1),
      f32Param(0),
      f32Param(1),
      f32Param(32),
      f32Param(1),
      ...sections,
    ]);
  const mrope = mk(8, d), vision = mk(24, d / 2);
  tb.run(mrope, vision);
  const gotM = tb.read(mrope), gotV = tb.read(vision);
  const wantM: number[] = [], wantV: number[] = [];
  for (let t = 0; t < tokens; t++) {
    for (let h = 0; h < 2; h++) {
      const x = Array.from({ length: d }, (_, i) => tb.at(a, i, h, t));
      // MROPE: pair i (i < d/2) rotates (i, i + d/2) by pos[section of i]·θ_scale^i
      const y = x.slice(), z = x.slice();
      for (let i = 0; i < d / 2; i++) {
        const p = posv[t + tokens * Math.floor(i / 2)];
        const theta = p * base ** (-2 * i / d);
        y[i] = x[i] * Math.cos(theta) - x[i + d / 2] * Math.sin(theta);
        y[i + d / 2] = x[i] * Math.sin(theta) + x[i + d / 2] * Math.cos(theta);
      }
      wantM.push(...y);
      // vision: n_dims = d/2, pairs (i, i + d/2) for i < d/2, θ restarts in each section
      for (let i = 0; i < d / 2; i++) {
        const sec = Math.floor(i / 2), k = i % 2;
        const p = posv[t + tokens * sec];
        const theta = p * base ** (-2 * k / (d / 2));
        z[i] = x[i] * Math.cos(theta) - x[i + d / 2] * Math.sin(theta);
        z[i + d / 2] = x[i] * Math.sin(theta) + x[i + d / 2] * Math.cos(theta);
      }
      wantV.push(...z);
    }
  }
  assertNmse(gotM, wantM, 1e-10, "mrope");
  assertNmse(gotV, wantV, 1e-10, "vision");
  tb.close();
});

Deno.test("SUM, SUM_ROWS, MEAN, CUMSUM, ARGMAX, COUNT_EQUAL", () => {
  const tb = new TestBed();
  const a = tb.tensor(F32, [9, 4, 3], { lo: 0, hi: 1 });
  const A = tb.read(a);
  const sum = tb.node(GgmlOp.SUM, F32, [1], [a]);
  const rows = tb.node(GgmlOp.SUM_ROWS, F32, [1, 4, 3], [a]);
  const mean = tb.node(GgmlOp.MEAN, F32, [1, 4, 3], [a]);
  const cum = tb.node(GgmlOp.CUMSUM, F32, [9, 4, 3], [a]);
  tb.run(sum, rows, mean, cum);
  assertNmse(tb.read(sum), [A.reduce((s, x) => s + x, 0)], 1e-14);
  const R = rowsOf(A, 9);
  assertNmse(tb.read(rows), R.map((r) => r.reduce((s, x) => s + x, 0)), 1e-14);
  assertNmse(tb.read(mean), R.map((r) => r.reduce((s, x) => s + x, 0) / 9), 1e-14);
  assertNmse(
    tb.read(cum),
    R.flatMap((r) => r.map((_, i) => r.slice(0, i + 1).reduce((s, x) => s + x, 0))),
    1e-13,
  );

  const m = tb.tensor(F32, [5, 3], { values: [1, 3, 3, 2, 0, NaN, -1, -2, -1, -5, 4, 4, 9, 9, 1] });
  const am = tb.node(GgmlOp.ARGMAX, I32, [3], [m]);
  const x = tb.tensor(I32, [50, 2], { lo: 0, hi: 3 }), y = tb.tensor(I32, [50, 2], { lo: 0, hi: 3 });
  const ce = tb.node(GgmlOp.COUNT_EQUAL, I64, [1], [x, y]);
  tb.run(am, ce);
  assertEquals(tb.read(am), [2, 3, 3]); // ties: the last index of the max; NaN resets the running max
  const X = tb.read(x), Y = tb.read(y);
  assertEquals(tb.read(ce), [X.filter((v, i) => v === Y[i]).length]);
  tb.close();
});
