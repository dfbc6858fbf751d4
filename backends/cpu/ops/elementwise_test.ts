/**
 * Element-wise kernels against straightforward f64 formulas on fresh random inputs: binary ops with
 * broadcasting, permuted and strided operands, mixed types and in place; ADD1, ADD_ID; SCALE,
 * CLAMP, LEAKY_RELU (with ggml's NaN rules); every unary op; the gated units.
 */

import { assertEquals, assertNmse, assertOk } from "../../../tests/asserts.ts";
import { f32Param, GgmlOp, GgmlType, GluOp, roundTo, TestBed, UnaryOp } from "../testing.ts";

const { F32, F16, BF16, I32 } = GgmlType;

Deno.test("ADD/SUB/MUL/DIV broadcast src1 over src0, any layout and ggml's type pairs", () => {
  const tb = new TestBed();
  const ops: [number, (a: number, b: number) => number][] = [
    [GgmlOp.ADD, (a, b) => a + b],
    [GgmlOp.SUB, (a, b) => a - b],
    [GgmlOp.MUL, (a, b) => a * b],
    [GgmlOp.DIV, (a, b) => a / b],
  ];
  const types = [[F32, F32, F32], [F16, F16, F16], [BF16, BF16, BF16], [F16, F32, F32], [BF16, F32, BF16]];
  for (const [op, fn] of ops) {
    for (const [ta, tb_, td] of types) {
      const a = tb.tensor(ta, [6, 5, 4, 3], { rowGap: 2 });
      const b = tb.tensor(tb_, [3, 5, 1, 3], { lo: 0.5, hi: 2 });
      const out = tb.node(op, td, [6, 5, 4, 3], [a, b]);
      tb.run(out);
      const A = tb.read(a), got = tb.read(out);
      const want: number[] = [];
      let k = 0;
      for (let i3 = 0; i3 < 3; i3++) {
        for (let i2 = 0; i2 < 4; i2++) {
          for (let i1 = 0; i1 < 5; i1++) {
            for (let i0 = 0; i0 < 6; i0++, k++) {
              want.push(roundTo(td, fn(A[k], tb.at(b, i0 % 3, i1, 0, i3))));
            }
          }
        }
      }
      assertEquals(got, want, `op ${op} types ${ta},${tb_},${td} seed ${tb.seed}`);
    }
  }
  // unsupported pairs are refused
  const a = tb.tensor(F32, [4]), h = tb.tensor(F16, [4]);
  assertOk(!tb.device.supportsOp(tb.node(GgmlOp.ADD, F32, [4], [a, h])));
  assertOk(!tb.device.supportsOp(tb.node(GgmlOp.ADD, I32, [4], [tb.tensor(I32, [4]), tb.tensor(I32, [4])])));
  tb.close();
});

Deno.test("binary ops: permuted src1, in place on src0, and split over worker threads", () => {
  const tb = new TestBed(2);
  const a = tb.tensor(F32, [8, 6, 3, 2]);
  const b = tb.tensor(F32, [8, 6, 3, 2], { permute: [1, 0, 3, 2] });
  const before = tb.read(a), B = tb.read(b);
  const out = tb.node(GgmlOp.MUL, F32, [8, 6, 3, 2], [a, b]);
  out.buffer = a.buffer; // in place: the node's data is src0's
  out.offset = a.offset;
  tb.run(out);
  assertEquals(tb.read(a), before.map((x, i) => Math.fround(x * B[i])));
  tb.close();
});

Deno.test("ADD1, ADD_ID", () => {
  const tb = new TestBed();
  const a = tb.tensor(F16, [7, 3]), s = tb.tensor(F32, [1]);
  const o = tb.node(GgmlOp.ADD1, F16, [7, 3], [a, s]);
  tb.run(o);
  assertEquals(tb.read(o), tb.read(a).map((x) => Math.f16round(Math.fround(x + tb.at(s, 0)))));

  const x = tb.tensor(F32, [5, 4, 3]), rows = tb.tensor(F32, [5, 6]);
  const ids = tb.tensor(I32, [4, 3], { values: Array.from({ length: 12 }, (_, i) => (i * 7) % 6) });
  const y = tb.node(GgmlOp.ADD_ID, F32, [5, 4, 3], [x, rows, ids]);
  tb.run(y);
  const X = tb.read(x), Y = tb.read(y);
  for (let i2 = 0; i2 < 3; i2++) {
    for (let i1 = 0; i1 < 4; i1++) {
      const r = tb.at(ids, i1, i2);
      for (let i0 = 0; i0 < 5; i0++) {
        const k = i0 + 5 * (i1 + 4 * i2);
        assertEquals(Y[k], Math.fround(X[k] + tb.at(rows, i0, r)));
      }
    }
  }
  tb.close();
});

Deno.test("SCALE, CLAMP, LEAKY_RELU (NaN: CLAMP gives max, LEAKY_RELU gives 0)", () => {
  const tb = new TestBed();
  const vals = [-3, -0.5, 0, 0.25, 2, NaN, Infinity, -Infinity];
  const a = tb.tensor(F32, [8], { values: vals });
  const sc = tb.node(GgmlOp.SCALE, F32, [8], [a], [f32Param(1.5), f32Param(0.25)]);
  const cl = tb.node(GgmlOp.CLAMP, F32, [8], [a], [f32Param(-1), f32Param(1)]);
  const lr = tb.node(GgmlOp.LEAKY_RELU, F32, [8], [a], [f32Param(0.1)]);
  tb.run(sc, cl, lr);
  assertEquals(tb.read(sc), vals.map((x) => Math.fround(x * 1.5 + 0.25)));
  assertEquals(tb.read(cl), [-1, -0.5, 0, 0.25, 1, 1, 1, -1]);
  assertEquals(tb.read(lr), [-0.3, -0.05, 0, 0.25, 2, 0, Infinity, -Infinity].map(Math.fround));
  tb.close();
});

const erf = (x: number) => {
  // Abramowitz-Stegun 7.1.26 is too coarse; integrate exp(-t²) with Simpson's rule instead
  const n = 2000, h = x / n;
  let s = 1 + Math.exp(-x * x);
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * Math.exp(-((i * h) ** 2));
  return (2 / Math.sqrt(Math.PI)) * s * h / 3;
};

/** Reference formulas, in f64, of every unary op and the ops sharing its template. */
const UNARY_REF: Record<string, (x: number) => number> = {
  ABS: Math.abs,
  SGN: Math.sign,
  NEG: (x) => -x,
  STEP: (x) => (x > 0 ? 1 : 0),
  TANH: Math.tanh,
  ELU: (x) => (x > 0 ? x : Math.exp(x) - 1),
  RELU: (x) => Math.max(x, 0),
  SIGMOID: (x) => 1 / (1 + Math.exp(-x)),
  GELU: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
  GELU_QUICK: (x) => x / (1 + Math.exp(-1.702 * x)),
  GELU_ERF: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  SILU: (x) => x / (1 + Math.exp(-x)),
  HARDSWISH: (x) => x * Math.min(1, Math.max(0, (x + 3) / 6)),
  HARDSIGMOID: (x) => Math.min(1, Math.max(0, (x + 3) / 6)),
  EXP: Math.exp,
  EXPM1: Math.expm1,
  SOFTPLUS: (x) => Math.log1p(Math.exp(x)),
  FLOOR: Math.floor,
  CEIL: Math.ceil,
  ROUND: (x) => Math.sign(x) * Math.round(Math.abs(x)),
  TRUNC: Math.trunc,
};

Deno.test("every unary op against its formula, f32 / f16 / bf16", () => {
  const tb = new TestBed();
  for (const [name, ref] of Object.entries(UNARY_REF)) {
    const sub = UnaryOp[name as keyof typeof UnaryOp];
    const ownKernel = ["GELU", "GELU_QUICK", "GELU_ERF", "SILU"].includes(name);
    for (const type of ownKernel ? [F32, F16] : [F32, F16, BF16]) {
      const a = tb.tensor(type, [33, 4], { lo: -4, hi: 4 });
      const out = tb.node(GgmlOp.UNARY, type, [33, 4], [a], [sub]);
      tb.run(out);
      // GELU and GELU_QUICK go through ggml's f16 table; f16/bf16 results are rounded
      const bound = type === F32 && !["GELU", "GELU_QUICK"].includes(name) ? 1e-12 : 1e-5;
      assertNmse(tb.read(out), tb.read(a).map(ref), bound, `${name} type ${type} seed ${tb.seed}`);
    }
  }
  const ops: [number, (x: number) => number][] = [
    [GgmlOp.SQR, (x) => x * x],
    [GgmlOp.SQRT, Math.sqrt],
    [GgmlOp.LOG, Math.log],
    [GgmlOp.SIN, Math.sin],
    [GgmlOp.COS, Math.cos],
  ];
  for (const [op, ref] of ops) {
    const a = tb.tensor(F32, [17, 3], { lo: 0.1, hi: 5 });
    const out = tb.node(op, F32, [17, 3], [a]);
    tb.run(out);
    assertNmse(tb.read(out), tb.read(a).map(ref), 1e-12, `op ${op}`);
  }
  // f16 → f32 is one of ggml's pairs; f32 → f16 is not
  const h = tb.tensor(F16, [4]);
  assertOk(tb.device.supportsOp(tb.node(GgmlOp.UNARY, F32, [4], [h], [UnaryOp.ABS])));
  assertOk(!tb.device.supportsOp(tb.node(GgmlOp.UNARY, F16, [4], [tb.tensor(F32, [4])], [UnaryOp.ABS])));
  tb.close();
});

Deno.test("XIELU with its four parameters", () => {
  const tb = new TestBed();
  const [an, ap, beta, eps] = [0.8, 0.6, 0.5, -1e-6];
  const a = tb.tensor(F32, [40], { lo: -3, hi: 3 });
  const out = tb.node(GgmlOp.UNARY, F32, [40], [a], [
    UnaryOp.XIELU,
    f32Param(an),
    f32Param(ap),
    f32Param(beta),
    f32Param(eps),
  ]);
  tb.run(out);
  const ref = (x: number) =>
    x > 0 ? ap * x * x + beta * x : (Math.expm1(Math.min(x, eps)) - x) * an + beta * x;
  assertNmse(tb.read(out), tb.read(a).map(ref), 1e-12);
  tb.close();
});

Deno.test("GLU: fused (swapped or not, odd width) and split forms", () => {
  const tb = new TestBed();
  const act: Record<string, (x: number) => number> = {
    REGLU: (x) => Math.max(x, 0),
    GEGLU: UNARY_REF.GELU,
    SWIGLU: UNARY_REF.SILU,
    GEGLU_ERF: UNARY_REF.GELU_ERF,
    GEGLU_QUICK: UNARY_REF.GELU_QUICK,
  };
  for (const [name, fn] of Object.entries(act)) {
    const sub = GluOp[name as keyof typeof GluOp];
    for (const type of [F32, F16]) {
      for (const swapped of [0, 1]) {
        const a = tb.tensor(type, [9, 3, 2], { lo: -3, hi: 3 }); // width 9 → 4 outputs
        const out = tb.node(GgmlOp.GLU, type, [4, 3, 2], [a], [sub, swapped]);
        tb.run(out);
        const want: number[] = [];
        for (let r = 0; r < 6; r++) {
          for (let i = 0; i < 4; i++) {
            const x = tb.at(a, swapped ? 4 + i : i, r % 3, Math.floor(r / 3));
            const g = tb.at(a, swapped ? i : 4 + i, r % 3, Math.floor(r / 3));
            want.push(fn(x) * g);
          }
        }
        assertNmse(tb.read(out), want, type === F32 && !name.startsWith("GEGLU") ? 1e-12 : 1e-5, `${name}`);
      }
      const x = tb.tensor(type, [6, 2], { lo: -3, hi: 3 }), g = tb.tensor(type, [6, 2], { lo: -3, hi: 3 });
      const split = tb.node(GgmlOp.GLU, type, [6, 2], [x, g], [sub, 0]);
      tb.run(split);
      const X = tb.read(x), G = tb.read(g);
      assertNmse(
        tb.read(split),
        X.map((v, i) => fn(v) * G[i]),
        type === F32 && !name.startsWith("GEGLU") ? 1e-12 : 1e-5,
      );
    }
  }
  // SWIGLU_OAI: x clamped above by limit, g clamped to ±limit
  const [alpha, limit] = [1.702, 7];
  const a = tb.tensor(F32, [10, 3], { lo: -10, hi: 10 });
  const out = tb.node(GgmlOp.GLU, F32, [5, 3], [a], [GluOp.SWIGLU_OAI, 0, f32Param(alpha), f32Param(limit)]);
  tb.run(out);
  const want: number[] = [];
  for (let r = 0; r < 3; r++) {
    for (let i = 0; i < 5; i++) {
      const x = Math.min(tb.at(a, i, r), limit), g = Math.max(-limit, Math.min(limit, tb.at(a, 5 + i, r)));
      want.push(x / (1 + Math.exp(-alpha * x)) * (g + 1));
    }
  }
  assertNmse(tb.read(out), want, 1e-12);
  tb.close();
});
