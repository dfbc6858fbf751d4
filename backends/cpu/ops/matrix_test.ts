/**
 * MUL_MAT, MUL_MAT_ID, OUT_PROD and FLASH_ATTN_EXT against naive f64 loops on fresh random inputs
 * (src1 / Q rounded to the weights' dot type first, as ggml does), with broadcasting, permuted and
 * strided operands, and the same results bit for bit when split over worker threads.
 */

import { assertEquals, assertNmse, assertThrows } from "../../../tests/asserts.ts";
import type { Tensor } from "../../../protocol/graph/tensor.ts";
import { f32Param, GgmlOp, GgmlType, roundTo, TestBed } from "../testing.ts";

const { F32, F16, BF16, I32 } = GgmlType;

function mulMatRef(tb: TestBed, a: Tensor, b: Tensor): number[] {
  const [K, M, a2, a3] = a.ne, [, N, b2, b3] = b.ne;
  const out: number[] = [];
  for (let i3 = 0; i3 < b3; i3++) {
    for (let i2 = 0; i2 < b2; i2++) {
      for (let j = 0; j < N; j++) {
        for (let i = 0; i < M; i++) {
          let s = 0;
          for (let k = 0; k < K; k++) {
            const y = b.type === F32 ? roundTo(a.type, tb.at(b, k, j, i2, i3)) : tb.at(b, k, j, i2, i3);
            s += tb.at(a, k, i, Math.floor(i2 / (b2 / a2)), Math.floor(i3 / (b3 / a3))) * y;
          }
          out.push(s);
        }
      }
    }
  }
  return out;
}

Deno.test("MUL_MAT: f32/f16/bf16 weights, batches broadcast, permuted and strided operands", () => {
  const tb = new TestBed();
  const cases: [number, number, number[], number[], object, object][] = [
    [F32, F32, [37, 9, 2, 1], [37, 7, 4, 3], {}, {}],
    [F16, F32, [64, 13, 1, 2], [64, 5, 3, 2], { rowGap: 3 }, { permute: [0, 2, 1, 3] }],
    [BF16, F32, [16, 8], [16, 1], {}, {}],
    [F16, F16, [20, 6], [20, 9], {}, { rowGap: 1 }],
    [BF16, BF16, [24, 5, 2], [24, 4, 2], {}, {}],
    [F32, F32, [8, 12], [8, 10], { permute: [1, 0, 2, 3] }, {}],
  ];
  for (const [ta, tb_, na, nb, oa, ob] of cases) {
    const a = tb.tensor(ta, na, oa), b = tb.tensor(tb_, nb, ob);
    const out = tb.node(GgmlOp.MUL_MAT, F32, [a.ne[1], b.ne[1], b.ne[2], b.ne[3]], [a, b]);
    tb.run(out);
    assertNmse(tb.read(out), mulMatRef(tb, a, b), 1e-12, `${ta}×${tb_} ${na} ${nb} seed ${tb.seed}`);
  }
  tb.close();
});

Deno.test("MUL_MAT and FLASH_ATTN_EXT split over two threads give the single-thread bits", () => {
  const one = new TestBed(1), two = new TestBed(2);
  const a1 = one.tensor(F16, [96, 70, 2]), b1 = one.tensor(F32, [96, 9, 2]);
  const a2 = two.tensor(F16, [96, 70, 2], { values: one.read(a1) });
  const b2 = two.tensor(F32, [96, 9, 2], { values: one.read(b1) });
  const o1 = one.node(GgmlOp.MUL_MAT, F32, [70, 9, 2], [a1, b1]);
  const o2 = two.node(GgmlOp.MUL_MAT, F32, [70, 9, 2], [a2, b2]);
  one.run(o1);
  two.run(o2);
  assertEquals(two.read(o2), one.read(o1));
  const fa = (tb: TestBed, src?: TestBed, s?: Tensor[]) => {
    const q = tb.tensor(F32, [32, 7, 4], s ? { values: src!.read(s[0]) } : {});
    const k = tb.tensor(F16, [32, 40, 2], s ? { values: src!.read(s[1]) } : {});
    const v = tb.tensor(F16, [32, 40, 2], s ? { values: src!.read(s[2]) } : {});
    const o = tb.node(GgmlOp.FLASH_ATTN_EXT, F32, [32, 4, 7, 1], [q, k, v], [f32Param(0.2)]);
    tb.run(o);
    return [q, k, v, o];
  };
  const r1 = fa(one);
  const r2 = fa(two, one, r1);
  assertEquals(two.read(r2[3]), one.read(r1[3]));
  one.close();
  two.close();
});

Deno.test("MUL_MAT_ID groups columns by expert; bad ids refused", () => {
  const tb = new TestBed();
  const [K, M, E, used, tokens] = [24, 10, 4, 2, 5];
  for (const ne11 of [1, used]) {
    const a = tb.tensor(F16, [K, M, E]);
    const b = tb.tensor(F32, [K, ne11, tokens]);
    const ids = tb.tensor(I32, [used, tokens], { values: [3, 0, 1, 3, 2, 2, 0, 1, 3, 1] });
    const out = tb.node(GgmlOp.MUL_MAT_ID, F32, [M, used, tokens], [a, b, ids]);
    tb.run(out);
    const want: number[] = [];
    for (let t = 0; t < tokens; t++) {
      for (let s = 0; s < used; s++) {
        const e = tb.at(ids, s, t);
        for (let i = 0; i < M; i++) {
          let acc = 0;
          for (let k = 0; k < K; k++) acc += tb.at(a, k, i, e) * Math.f16round(tb.at(b, k, s % ne11, t));
          want.push(acc);
        }
      }
    }
    assertNmse(tb.read(out), want, 1e-12);
  }
  const a = tb.tensor(F32, [4, 2, 2]),
    b = tb.tensor(F32, [4, 1, 1]),
    ids = tb.tensor(I32, [1, 1], { values: [2] });
  assertThrows(() => tb.run(tb.node(GgmlOp.MUL_MAT_ID, F32, [2, 1, 1], [a, b, ids])), /outside/);
  tb.close();
});

Deno.test("OUT_PROD, f32 broadcast and f16", () => {
  const tb = new TestBed();
  for (const [ta, na] of [[F32, [7, 5, 1, 2]], [F16, [7, 5, 3, 2]]] as const) {
    const a = tb.tensor(ta, [...na]), b = tb.tensor(F32, [6, 5, 3, 2]);
    const out = tb.node(GgmlOp.OUT_PROD, F32, [7, 6, 3, 2], [a, b]);
    tb.run(out);
    const want: number[] = [];
    for (let i3 = 0; i3 < 2; i3++) {
      for (let i2 = 0; i2 < 3; i2++) {
        for (let i1 = 0; i1 < 6; i1++) {
          for (let i0 = 0; i0 < 7; i0++) {
            let s = 0;
            for (let k = 0; k < 5; k++) s += tb.at(a, i0, k, i2 % na[2], i3) * tb.at(b, i1, k, i2, i3);
            want.push(s);
          }
        }
      }
    }
    assertNmse(tb.read(out), want, 1e-12);
  }
  tb.close();
});

Deno.test("FLASH_ATTN_EXT: GQA, f16 mask with -inf, ALiBi, softcap, sinks, f16/bf16/f32 K and V", () => {
  const tb = new TestBed();
  const [DK, DV, N, H, HKV, NKV] = [16, 8, 5, 4, 2, 11];
  for (const [tk, tv] of [[F16, F16], [F32, BF16], [BF16, F32]]) {
    for (const [maxBias, softcap, withSinks] of [[0, 0, false], [4, 0, true], [0, 30, false]] as const) {
      const scale = 1 / Math.sqrt(DK);
      const q = tb.tensor(F32, [DK, N, H]);
      const k = tb.tensor(tk, [DK, NKV, HKV]);
      const v = tb.tensor(tv, [DV, NKV, HKV], { permute: [0, 1, 2, 3] });
      const maskVals = Array.from(
        { length: NKV * 8 },
        (_, i) => (i % 5 === 3 ? -Infinity : (i % 7) / 7 - 0.5),
      );
      const mask = tb.tensor(F16, [NKV, 8], { values: maskVals });
      const sinks = withSinks ? tb.tensor(F32, [H]) : null;
      const out = tb.node(GgmlOp.FLASH_ATTN_EXT, F32, [DV, H, N, 1], [q, k, v, mask, sinks], [
        f32Param(scale),
        f32Param(maxBias),
        f32Param(softcap),
      ]);
      tb.run(out);
      const want: number[] = [];
      for (let i = 0; i < N; i++) {
        for (let h = 0; h < H; h++) {
          const slope = maxBias > 0 ? 2 ** (-(maxBias / 4) * (h + 1)) : 1; // n_head_log2 = 4
          const kh = Math.floor(h / (H / HKV));
          const s: number[] = [];
          for (let j = 0; j < NKV; j++) {
            let d = 0;
            for (let c = 0; c < DK; c++) d += roundTo(tk, tb.at(q, c, i, h)) * tb.at(k, c, j, kh);
            d *= scale;
            if (softcap) d = softcap * Math.tanh(d / softcap);
            s.push(d + slope * Math.f16round(tb.at(mask, j, i)));
          }
          const sink = sinks ? tb.at(sinks, h) : -Infinity;
          const m = Math.max(...s, sink);
          const w = s.map((x) => Math.exp(x - m));
          const sum = w.reduce((p, x) => p + x, 0) + Math.exp(sink - m);
          for (let c = 0; c < DV; c++) {
            let o = 0;
            for (let j = 0; j < NKV; j++) o += w[j] * tb.at(v, c, j, kh);
            want.push(o / sum);
          }
        }
      }
      assertNmse(tb.read(out), want, 1e-10, `K ${tk} V ${tv} bias ${maxBias} cap ${softcap} seed ${tb.seed}`);
    }
  }
  tb.close();
});
