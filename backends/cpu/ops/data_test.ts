/**
 * Data movement against index arithmetic: CPY/DUP/CONT across layouts and types, GET_ROWS,
 * SET_ROWS (i32 and i64 ids), SET, ACC, CONCAT, REPEAT, PAD, ROLL, ARGSORT, TOP_K and the
 * generators.
 */

import { assertEquals, assertNmse, assertOk, assertThrows } from "../../../tests/asserts.ts";
import { f32Param, GgmlOp, GgmlType, roundTo, TestBed } from "../testing.ts";

const { F32, F16, BF16, I32, I64, I16, I8 } = GgmlType;

Deno.test("CPY between layouts and types, matched in logical order", () => {
  const tb = new TestBed();
  const pairs = [[F32, F32], [F32, F16], [F32, BF16], [F16, F32], [BF16, F16], [F32, I32], [I32, F32], [
    I64,
    I64,
  ]];
  for (const [ts, td] of pairs) {
    const src = tb.tensor(ts, [6, 4, 3], { permute: [2, 0, 1, 3], lo: -50, hi: 50 });
    const dst = tb.tensor(td, [12, 3, 2], { rowGap: 5 }); // other shape, same count
    const node = tb.node(GgmlOp.CPY, td, [12, 3, 2], [src, dst]);
    node.buffer = dst.buffer;
    node.offset = dst.offset;
    node.nb = [...dst.nb];
    tb.run(node);
    const S = tb.read(src);
    const want = S.map((x) => (td === I32 ? Math.trunc(x) + 0 : ts === td ? x : roundTo(td, x)));
    assertEquals(tb.read(dst), want, `${ts} → ${td}`);
  }
  assertOk(!tb.device.supportsOp(tb.node(GgmlOp.CPY, I64, [4], [tb.tensor(F32, [4]), tb.tensor(I64, [4])])));
  const cont = tb.node(GgmlOp.CONT, F16, [4, 5], [tb.tensor(F16, [5, 4], { permute: [1, 0, 2, 3] })]);
  tb.run(cont);
  assertEquals(tb.read(cont), tb.read(cont.src[0]!));
  tb.close();
});

Deno.test("GET_ROWS (f32, f16 → f32, i32) and SET_ROWS (i32 and i64 ids), bad ids refused", () => {
  const tb = new TestBed();
  for (const [ta, td] of [[F32, F32], [F16, F32], [BF16, F32], [I32, I32]]) {
    const a = tb.tensor(ta, [5, 7, 2], { lo: -9, hi: 9 });
    const ids = tb.tensor(I32, [3, 2], { values: [6, 0, 6, 1, 2, 3] });
    const out = tb.node(GgmlOp.GET_ROWS, td, [5, 3, 2], [a, ids]);
    tb.run(out);
    const want: number[] = [];
    for (let j = 0; j < 2; j++) {
      for (let i = 0; i < 3; i++) {
        for (let c = 0; c < 5; c++) want.push(tb.at(a, c, tb.at(ids, i, j), j));
      }
    }
    assertEquals(tb.read(out), want);
  }
  const a = tb.tensor(F32, [4, 2]), bad = tb.tensor(I32, [1], { values: [2] });
  assertThrows(() => tb.run(tb.node(GgmlOp.GET_ROWS, F32, [4, 1], [a, bad])), /outside/);

  for (const [ts, td, ti] of [[F32, F16, I64], [F16, F16, I32], [F32, BF16, I32], [F16, F32, I64]]) {
    const base = tb.tensor(td, [6, 8, 2]);
    const before = tb.read(base);
    const src = tb.tensor(ts, [6, 3, 2]);
    const ids = tb.tensor(ti, [3, 1], { values: [7, 0, 2 ** 2] });
    const node = tb.node(GgmlOp.SET_ROWS, td, [6, 8, 2], [src, ids, base]);
    node.buffer = base.buffer;
    node.offset = base.offset;
    tb.run(node);
    const got = tb.read(base);
    for (let j = 0; j < 2; j++) {
      for (let r = 0; r < 8; r++) {
        const i = [7, 0, 4].indexOf(r);
        for (let c = 0; c < 6; c++) {
          const k = c + 6 * (r + 8 * j);
          assertEquals(got[k], i < 0 ? before[k] : roundTo(td, tb.at(src, c, i, j)));
        }
      }
    }
  }
  tb.close();
});

Deno.test("SET and ACC write/add src1 into a strided view of a copy of src0", () => {
  const tb = new TestBed();
  for (const [op, type] of [[GgmlOp.SET, F32], [GgmlOp.SET, I32], [GgmlOp.ACC, F32]]) {
    const a = tb.tensor(type, [6, 5, 4], { lo: -9, hi: 9 });
    const b = tb.tensor(type, [3, 2, 4], { lo: -9, hi: 9 });
    const [nb1, nb2, offset] = [24, 120, 4 * (1 + 6 * 2)]; // rows of a, matrices of a, at [1, 2]
    const out = tb.node(op, type, [6, 5, 4], [a, b], [nb1, nb2, 480, offset, 0]);
    tb.run(out);
    const want = tb.read(a);
    for (let k = 0; k < 4; k++) {
      for (let j = 0; j < 2; j++) {
        for (let i = 0; i < 3; i++) {
          const idx = (offset / 4) + i + 6 * j + 30 * k;
          want[idx] = op === GgmlOp.SET ? tb.at(b, i, j, k) : Math.fround(want[idx] + tb.at(b, i, j, k));
        }
      }
    }
    assertEquals(tb.read(out), want);
  }
  const a = tb.tensor(F32, [4, 4]), b = tb.tensor(F32, [4, 2]);
  assertThrows(() => tb.run(tb.node(GgmlOp.SET, F32, [4, 4], [a, b], [16, 32, 32, 48, 0])), /leaves dst/);
  tb.close();
});

Deno.test("CONCAT along each dimension, REPEAT, PAD (zeros and circular), ROLL", () => {
  const tb = new TestBed();
  for (let dim = 0; dim < 4; dim++) {
    const na = [3, 2, 2, 2], nb = [3, 2, 2, 2];
    nb[dim] = 1;
    const nd = na.map((x, i) => (i === dim ? x + nb[i] : x));
    const [type, range] = [[I64, 1e12], [I16, 3e4], [I8, 100]][dim % 3];
    const a = tb.tensor(type, na, { lo: -range, hi: range }),
      b = tb.tensor(type, nb, { lo: -range, hi: range });
    const out = tb.node(GgmlOp.CONCAT, type, nd, [a, b], [dim]);
    tb.run(out);
    let k = 0;
    const got = tb.read(out);
    for (let i3 = 0; i3 < nd[3]; i3++) {
      for (let i2 = 0; i2 < nd[2]; i2++) {
        for (let i1 = 0; i1 < nd[1]; i1++) {
          for (let i0 = 0; i0 < nd[0]; i0++, k++) {
            const i = [i0, i1, i2, i3];
            const fromA = i[dim] < na[dim];
            if (!fromA) i[dim] -= na[dim];
            assertEquals(got[k], tb.at(fromA ? a : b, i[0], i[1], i[2], i[3]));
          }
        }
      }
    }
  }
  const r = tb.tensor(F16, [2, 3]);
  const rep = tb.node(GgmlOp.REPEAT, F16, [4, 6, 2], [r]);
  tb.run(rep);
  assertEquals(tb.read(rep), Array.from({ length: 48 }, (_, k) => tb.at(r, k % 2, Math.floor(k / 4) % 3)));

  const p = tb.tensor(F32, [3, 2]);
  const pad = tb.node(GgmlOp.PAD, F32, [6, 3], [p], [1, 2, 0, 1, 0, 0, 0, 0, 0]);
  const circ = tb.node(GgmlOp.PAD, F32, [6, 3], [p], [1, 2, 0, 1, 0, 0, 0, 0, 1]);
  const roll = tb.node(GgmlOp.ROLL, F32, [3, 2], [p], [1, -1, 0, 0]);
  tb.run(pad, circ, roll);
  const P = (i: number, j: number) => tb.at(p, i, j);
  const wrap = (i: number, n: number) => ((i % n) + n) % n;
  const gp = tb.read(pad), gc = tb.read(circ), gr = tb.read(roll);
  for (let j = 0; j < 3; j++) {
    for (let i = 0; i < 6; i++) {
      assertEquals(gp[i + 6 * j], i >= 1 && i < 4 && j < 2 ? P(i - 1, j) : 0);
      assertEquals(gc[i + 6 * j], P(wrap(i - 1, 3), wrap(j, 2)));
    }
  }
  for (let j = 0; j < 2; j++) {
    for (let i = 0; i < 3; i++) assertEquals(gr[i + 3 * j], P(wrap(i - 1, 3), wrap(j + 1, 2)));
  }
  tb.close();
});

Deno.test("ARGSORT both orders, TOP_K (first two swapped, as ggml)", () => {
  const tb = new TestBed();
  const n = 37;
  const a = tb.tensor(F32, [n, 3]);
  const asc = tb.node(GgmlOp.ARGSORT, I32, [n, 3], [a], [0]);
  const desc = tb.node(GgmlOp.ARGSORT, I32, [n, 3], [a], [1]);
  const top = tb.node(GgmlOp.TOP_K, I32, [5, 3], [a]);
  tb.run(asc, desc, top);
  for (let r = 0; r < 3; r++) {
    const row = Array.from({ length: n }, (_, i) => tb.at(a, i, r));
    const order = row.map((_, i) => i).sort((x, y) => row[x] - row[y]);
    assertEquals(tb.read(asc).slice(r * n, r * n + n), order);
    assertEquals(tb.read(desc).slice(r * n, r * n + n), order.slice().reverse());
    const t = order.slice().reverse().slice(0, 5);
    [t[0], t[1]] = [t[1], t[0]];
    assertEquals(tb.read(top).slice(r * 5, r * 5 + 5), t);
  }
  tb.close();
});

Deno.test("ARANGE, FILL, TRI, DIAG, TIMESTEP_EMBEDDING", () => {
  const tb = new TestBed();
  const ar = tb.node(GgmlOp.ARANGE, F32, [10], [], [f32Param(-1), f32Param(4), f32Param(0.5)]);
  const src = tb.tensor(F16, [3, 2]);
  const fill = tb.node(GgmlOp.FILL, F16, [3, 2], [src], [f32Param(0.1)]);
  const sq = tb.tensor(F32, [4, 4, 2]);
  const tris = [0, 1, 2, 3].map((t) => tb.node(GgmlOp.TRI, F32, [4, 4, 2], [sq], [t]));
  const v = tb.tensor(F32, [4, 1, 2]);
  const diag = tb.node(GgmlOp.DIAG, F32, [4, 4, 2], [v]);
  const ts = tb.tensor(F32, [3], { values: [0, 1, 250] });
  const emb = tb.node(GgmlOp.TIMESTEP_EMBEDDING, F32, [7, 3], [ts], [7, 10000]);
  tb.run(ar, fill, ...tris, diag, emb);
  assertEquals(tb.read(ar), Array.from({ length: 10 }, (_, i) => -1 + 0.5 * i));
  assertEquals(tb.read(fill), new Array(6).fill(Math.f16round(0.1)));
  const keep = [
    (i: number, r: number) => i >= r,
    (i: number, r: number) => i > r,
    (i: number, r: number) => i <= r,
    (i: number, r: number) => i < r,
  ];
  tris.forEach((t, ty) => {
    const got = tb.read(t), S = tb.read(sq);
    got.forEach((x, k) => assertEquals(x, keep[ty](k % 4, Math.floor(k / 4) % 4) ? S[k] : 0));
  });
  tb.read(diag).forEach((x, k) => {
    const i = k % 4, j = Math.floor(k / 4) % 4, m = Math.floor(k / 16);
    assertEquals(x, i === j ? tb.at(v, i, 0, m) : 0);
  });
  const want: number[] = [];
  for (const t of [0, 1, 250]) {
    const f = Array.from({ length: 3 }, (_, j) => Math.exp(-Math.log(10000) * j / 3));
    want.push(...f.map((x) => Math.cos(t * x)), ...f.map((x) => Math.sin(t * x)), 0);
  }
  assertNmse(tb.read(emb), want, 1e-10);
  tb.close();
});
