/**
 * Kernel checks: op cases built with the graph builder, run on a device under test and on the CPU
 * reference device with the same fresh random inputs, compared by NMSE (index results exactly, or
 * as sets where ggml leaves the order open). Used by cuda_test.ts and by the GPU host script
 * (`deno run -A backends/cuda/check.ts`), which prints one line per case.
 * @module
 */

import { bindMemory, planMemory } from "../alloc.ts";
import type { Device } from "../device.ts";
import { GraphBuilder, RopeType } from "../../protocol/graph/builder.ts";
import { GgmlOp, GluOp, UnaryOp } from "../../protocol/graph/ops.ts";
import {
  nbytes,
  nelements,
  newTensor,
  setOpF32,
  setOpI32,
  type Tensor,
} from "../../protocol/graph/tensor.ts";
import { GgmlType } from "../../protocol/graph/types.ts";
import { nmse, rng } from "../../tests/asserts.ts";

const { F32, F16, BF16, I32, I64 } = GgmlType;

/** One kernel check. */
export interface OpCase {
  /** What is checked, e.g. "MUL_MAT f16 m=64 n=3 k=256". */
  name: string;
  /** Builds the graph; returns the tensor compared. */
  build(b: GraphBuilder): Tensor;
  /** NMSE bound against the reference (default 1e-6; 5e-4 where f16/bf16 or matrix products are involved). */
  maxNmse?: number;
  /** Values for input `t` (the i-th leaf); default uniform in [-1, 1). */
  fill?(t: Tensor, i: number, rand: () => number): number[] | null;
  /** How results compare: "nmse" (default), "exact", "set" (each row's values as a multiset). */
  compare?: "nmse" | "exact" | "set";
}

/** A node of `op` with `srcs`, shape `ne`, `type`, op_params words (i32 or {f: float}). */
export function opNode(
  b: GraphBuilder,
  op: number,
  type: number,
  ne: number[],
  srcs: (Tensor | null)[],
  params: (number | { f: number })[] = [],
): Tensor {
  const t = b.newTensor(type, ne);
  t.op = op;
  srcs.forEach((s, i) => t.src[i] = s);
  params.forEach((p, i) => typeof p === "number" ? setOpI32(t, i, p) : setOpF32(t, i, p.f));
  return t;
}

function f32ToBf16Bits(x: number): number {
  const v = new DataView(new ArrayBuffer(4));
  v.setFloat32(0, x, true);
  const u = v.getUint32(0, true);
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 64) & 0xffff;
  return ((u + (0x7fff + ((u >>> 16) & 1))) >>> 16) & 0xffff;
}

/** Dense element bytes of `t`'s type for `values` in logical order (the tensor must be contiguous). */
export function encodeValues(type: number, values: ArrayLike<number>): Uint8Array {
  const n = values.length;
  const size = type === I64 ? 8 : type === F16 || type === BF16 ? 2 : 4;
  const out = new Uint8Array(n * size);
  const v = new DataView(out.buffer);
  for (let i = 0; i < n; i++) {
    const x = values[i];
    switch (type) {
      case F32:
        v.setFloat32(i * 4, x, true);
        break;
      case F16:
        v.setFloat16(i * 2, x, true);
        break;
      case BF16:
        v.setUint16(i * 2, f32ToBf16Bits(x), true);
        break;
      case I32:
        v.setInt32(i * 4, x, true);
        break;
      case I64:
        v.setBigInt64(i * 8, BigInt(x), true);
        break;
      default:
        throw new Error(`cannot encode type ${type}`);
    }
  }
  return out;
}

/** Elements of `t` (any strides) from the raw bytes of its buffer region starting at t.offset. */
export function decodeTensor(t: Tensor, bytes: Uint8Array): number[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: number[] = [];
  for (let i3 = 0; i3 < t.ne[3]; i3++) {
    for (let i2 = 0; i2 < t.ne[2]; i2++) {
      for (let i1 = 0; i1 < t.ne[1]; i1++) {
        for (let i0 = 0; i0 < t.ne[0]; i0++) {
          const o = i0 * t.nb[0] + i1 * t.nb[1] + i2 * t.nb[2] + i3 * t.nb[3];
          switch (t.type) {
            case F32:
              out.push(v.getFloat32(o, true));
              break;
            case F16:
              out.push(v.getFloat16(o, true));
              break;
            case BF16: {
              const f = new DataView(new ArrayBuffer(4));
              f.setUint32(0, v.getUint16(o, true) << 16, true);
              out.push(f.getFloat32(0, true));
              break;
            }
            case I32:
              out.push(v.getInt32(o, true));
              break;
            case I64:
              out.push(Number(v.getBigInt64(o, true)));
              break;
            default:
              throw new Error(`cannot decode type ${t.type}`);
          }
        }
      }
    }
  }
  return out;
}

/** What one device produced for a case. */
export type CaseRun = { values: number[]; ms: number } | { unsupported: string };

/** Builds `c`, fills its inputs from `seed`, computes it on `dev` and reads the result back. */
export async function runCase(dev: Device, c: OpCase, seed: number): Promise<CaseRun> {
  const b = new GraphBuilder();
  const out = c.build(b);
  const g = b.build(out);
  for (const n of g.nodes) {
    // supportsOp needs data pointers on some devices: decide after binding
    void n;
  }
  const plan = await planMemory(g, dev);
  const buf = await dev.allocBuffer(Math.max(plan.size, 1));
  if (!buf) return { unsupported: `cannot allocate ${plan.size} bytes` };
  try {
    bindMemory(g, buf, plan);
    const leaves = g.tensors.filter((t) => t.op === GgmlOp.NONE && !t.viewSrc && t.buffer);
    const rand = rng(seed);
    for (let i = 0; i < leaves.length; i++) {
      const t = leaves[i];
      const n = nelements(t);
      const vals = c.fill?.(t, i, rand) ?? Array.from({ length: n }, () => rand() * 2 - 1);
      await buf.set(t.offset, encodeValues(t.type, vals));
    }
    // poison the rest, so that unwritten outputs show
    for (const t of g.nodes) {
      if (t.buffer && !t.viewSrc && nbytes(t) > 0) await buf.memset(t.offset, nbytes(t), 0x7f);
    }
    for (const n of g.nodes) {
      if (!dev.supportsOp(n)) return { unsupported: `${dev.name} does not run node op ${n.op}` };
    }
    const t0 = performance.now();
    await dev.compute(g);
    await dev.synchronize();
    const ms = performance.now() - t0;
    const span = nbytes(out);
    const bytes = await buf.get(out.offset, span);
    return { values: decodeTensor(out, bytes), ms };
  } finally {
    await buf.free();
  }
}

/** Result of one case on the device under test against the reference. */
export interface CaseResult {
  name: string;
  status: "ok" | "fail" | "skip";
  error?: number;
  detail: string;
}

function rowsAsSets(v: number[], rowLen: number): string {
  const rows: string[] = [];
  for (let i = 0; i < v.length; i += rowLen) {
    rows.push(v.slice(i, i + rowLen).sort((a, b) => a - b).join(","));
  }
  return rows.join(";");
}

/** Runs `c` on `dev` and on `ref` with the same inputs and compares. */
export async function checkCase(dev: Device, ref: Device, c: OpCase, seed: number): Promise<CaseResult> {
  const r = await runCase(ref, c, seed);
  if ("unsupported" in r) return { name: c.name, status: "skip", detail: `reference: ${r.unsupported}` };
  let d: CaseRun;
  try {
    d = await runCase(dev, c, seed);
  } catch (e) {
    return { name: c.name, status: "fail", detail: (e as Error).message };
  }
  if ("unsupported" in d) return { name: c.name, status: "fail", detail: d.unsupported };
  const mode = c.compare ?? "nmse";
  if (mode === "exact") {
    const bad = d.values.findIndex((x, i) => x !== r.values[i]);
    return bad < 0
      ? { name: c.name, status: "ok", detail: "exact" }
      : { name: c.name, status: "fail", detail: `element ${bad}: ${d.values[bad]} vs ${r.values[bad]}` };
  }
  if (mode === "set") {
    const b = new GraphBuilder();
    const rowLen = c.build(b).ne[0];
    const same = rowsAsSets(d.values, rowLen) === rowsAsSets(r.values, rowLen);
    return { name: c.name, status: same ? "ok" : "fail", detail: same ? "same sets" : "index sets differ" };
  }
  const e = nmse(d.values, r.values);
  const bound = c.maxNmse ?? 1e-6;
  const finite = d.values.every((x, i) =>
    Number.isFinite(x) || Object.is(x, r.values[i]) || (isNaN(x) && isNaN(r.values[i]))
  );
  return {
    name: c.name,
    status: e <= bound && finite ? "ok" : "fail",
    error: e,
    detail: `nmse ${e.toExponential(2)} (bound ${bound})${finite ? "" : ", non-finite values"}`,
  };
}

// ---------------------------------------------------------------------------------------------
// the cases

const FLOATS = [F32, F16, BF16];
const TN: Record<number, string> = { [F32]: "f32", [F16]: "f16", [BF16]: "bf16", [I32]: "i32", [I64]: "i64" };

function ints(n: number, lo: number, hi: number, rand: () => number): number[] {
  return Array.from({ length: n }, () => lo + Math.floor(rand() * (hi - lo)));
}

/** Every kernel check, small shapes (each well under a second on the CPU reference). */
export function opCases(): OpCase[] {
  const cases: OpCase[] = [];
  const tol = (t: number) => (t === F32 ? 1e-6 : t === F16 ? 1e-5 : 1e-4);
  // element-wise, two sources, with broadcasting
  for (const t of FLOATS) {
    for (
      const [op, name] of [[GgmlOp.ADD, "ADD"], [GgmlOp.SUB, "SUB"], [GgmlOp.MUL, "MUL"], [
        GgmlOp.DIV,
        "DIV",
      ]] as const
    ) {
      for (const bne of [[64, 5, 3, 2], [64, 1, 1, 1], [1, 5, 3, 1]]) {
        cases.push({
          name: `${name} ${TN[t]} [64,5,3,2] by [${bne}]`,
          maxNmse: tol(t),
          build: (b) => {
            const a = b.newTensor(t, [64, 5, 3, 2]), c = b.newTensor(t, bne);
            return opNode(b, op, t, [64, 5, 3, 2], [a, c]);
          },
          fill: op === GgmlOp.DIV
            ? (x, i, r) => i === 1 ? Array.from({ length: nelements(x) }, () => 0.5 + r()) : null
            : undefined,
        });
      }
    }
    cases.push({
      name: `ADD ${TN[t]} permuted src0`,
      maxNmse: tol(t),
      build: (b) => {
        const a = b.permute(b.newTensor(t, [8, 6, 4, 1]), 1, 0, 2, 3), c = b.newTensor(t, [6, 8, 4, 1]);
        return opNode(b, GgmlOp.ADD, t, [6, 8, 4, 1], [a, c]);
      },
    });
  }
  cases.push({
    name: "ADD1 f32",
    build: (b) => opNode(b, GgmlOp.ADD1, F32, [33, 4], [b.newTensor(F32, [33, 4]), b.newTensor(F32, [1])]),
  });
  cases.push({
    name: "ADD_ID f32",
    build: (b) => {
      const a = b.newTensor(F32, [32, 4, 3]),
        bias = b.newTensor(F32, [32, 6]),
        ids = b.newTensor(I32, [4, 3]);
      return opNode(b, GgmlOp.ADD_ID, F32, [32, 4, 3], [a, bias, ids]);
    },
    fill: (t, _i, r) => t.type === I32 ? ints(nelements(t), 0, 6, r) : null,
  });
  // unary
  const unary: [number, string, number[] | null][] = [
    [UnaryOp.ABS, "ABS", null],
    [UnaryOp.SGN, "SGN", null],
    [UnaryOp.NEG, "NEG", null],
    [UnaryOp.STEP, "STEP", null],
    [UnaryOp.TANH, "TANH", null],
    [UnaryOp.ELU, "ELU", null],
    [UnaryOp.RELU, "RELU", null],
    [UnaryOp.SIGMOID, "SIGMOID", null],
    [UnaryOp.GELU, "GELU", null],
    [UnaryOp.GELU_QUICK, "GELU_QUICK", null],
    [UnaryOp.SILU, "SILU", null],
    [UnaryOp.HARDSWISH, "HARDSWISH", null],
    [UnaryOp.HARDSIGMOID, "HARDSIGMOID", null],
    [UnaryOp.EXP, "EXP", null],
    [UnaryOp.EXPM1, "EXPM1", null],
    [UnaryOp.SOFTPLUS, "SOFTPLUS", null],
    [UnaryOp.GELU_ERF, "GELU_ERF", null],
    [UnaryOp.FLOOR, "FLOOR", null],
    [UnaryOp.CEIL, "CEIL", null],
    [UnaryOp.ROUND, "ROUND", null],
    [UnaryOp.TRUNC, "TRUNC", null],
  ];
  for (const t of FLOATS) {
    for (const [u, name] of unary) {
      cases.push({
        name: `${name} ${TN[t]}`,
        maxNmse: u === UnaryOp.GELU ? 1e-4 : tol(t) * 10,
        build: (b) => b.unary(b.newTensor(t, [67, 3, 2]), u),
        fill: (x, _i, r) => Array.from({ length: nelements(x) }, () => (r() * 2 - 1) * 4),
      });
    }
  }
  for (const t of FLOATS) {
    const one: [number, string, (number | { f: number })[]][] = [
      [GgmlOp.SQR, "SQR", []],
      [GgmlOp.SQRT, "SQRT", []],
      [GgmlOp.LOG, "LOG", []],
      [GgmlOp.SIN, "SIN", []],
      [GgmlOp.COS, "COS", []],
      [GgmlOp.CLAMP, "CLAMP", [{ f: -0.5 }, { f: 0.25 }]],
      [GgmlOp.LEAKY_RELU, "LEAKY_RELU", [{ f: 0.1 }]],
      [GgmlOp.SCALE, "SCALE", [{ f: 1.5 }, { f: -0.25 }]],
    ];
    for (const [op, name, params] of one) {
      cases.push({
        name: `${name} ${TN[t]}`,
        maxNmse: tol(t) * 10,
        build: (b) => opNode(b, op, t, [129, 7], [b.newTensor(t, [129, 7])], params),
        fill: op === GgmlOp.SQRT || op === GgmlOp.LOG
          ? (x, _i, r) => Array.from({ length: nelements(x) }, () => 0.1 + r())
          : undefined,
      });
    }
  }
  cases.push({
    name: "SILU f32 permuted rows",
    build: (b) => b.unary(b.permute(b.newTensor(F32, [16, 6, 5, 1]), 0, 2, 1, 3), UnaryOp.SILU),
  });
  // gated
  for (const t of FLOATS) {
    for (
      const [g, name] of [
        [GluOp.REGLU, "REGLU"],
        [GluOp.GEGLU, "GEGLU"],
        [GluOp.SWIGLU, "SWIGLU"],
        [GluOp.SWIGLU_OAI, "SWIGLU_OAI"],
        [GluOp.GEGLU_ERF, "GEGLU_ERF"],
        [GluOp.GEGLU_QUICK, "GEGLU_QUICK"],
      ] as const
    ) {
      for (const swapped of [false, true]) {
        cases.push({
          name: `${name} ${TN[t]} fused${swapped ? " swapped" : ""}`,
          maxNmse: tol(t) * 10,
          build: (b) => {
            const n = b.glu(b.newTensor(t, [128, 5, 2]), null, g, swapped);
            if (g === GluOp.SWIGLU_OAI) {
              setOpF32(n, 2, 1.702);
              setOpF32(n, 3, 7.0);
            }
            return n;
          },
        });
      }
      cases.push({
        name: `${name} ${TN[t]} split`,
        maxNmse: tol(t) * 10,
        build: (b) => {
          const n = b.glu(b.newTensor(t, [40, 5]), b.newTensor(t, [40, 5]), g);
          if (g === GluOp.SWIGLU_OAI) {
            setOpF32(n, 2, 1.702);
            setOpF32(n, 3, 7.0);
          }
          return n;
        },
      });
    }
  }
  // norms
  for (const t of [F32, F16]) {
    for (
      const [op, name] of [[GgmlOp.NORM, "NORM"], [GgmlOp.RMS_NORM, "RMS_NORM"], [
        GgmlOp.L2_NORM,
        "L2_NORM",
      ]] as const
    ) {
      for (const ne0 of [64, 4096]) {
        cases.push({
          name: `${name} ${TN[t]} ne0=${ne0}`,
          maxNmse: tol(t),
          build: (b) => opNode(b, op, t, [ne0, 5, 3], [b.newTensor(t, [ne0, 5, 3])], [{ f: 1e-5 }]),
        });
      }
    }
  }
  // softmax
  for (
    const [ne0, mask, scale, bias, sinks] of [
      [32, null, 1, 0, false],
      [1000, F32, 0.125, 0, false],
      [256, F16, 1, 8, false],
      [77, F32, 0.5, 0, true],
      [70000, null, 1, 0, false],
    ] as [number, number | null, number, number, boolean][]
  ) {
    cases.push({
      name: `SOFT_MAX f32 ne0=${ne0} mask=${mask === null ? "-" : TN[mask]} scale=${scale} max_bias=${bias}${
        sinks ? " sinks" : ""
      }`,
      build: (b) => {
        const rows = ne0 > 10000 ? 2 : 6;
        const a = b.newTensor(F32, [ne0, rows, 4, 1]);
        const m = mask === null ? null : b.newTensor(mask, [ne0, rows + 2, 2, 1]);
        const n = b.softMaxExt(a, m, scale, bias);
        if (sinks) n.src[2] = b.newTensor(F32, [4]);
        return n;
      },
    });
  }
  cases.push({
    name: "DIAG_MASK_INF f32",
    build: (b) => opNode(b, GgmlOp.DIAG_MASK_INF, F32, [10, 10, 3], [b.newTensor(F32, [10, 10, 3])], [2]),
  });
  // rope
  for (const t of [F32, F16]) {
    for (const [mode, mname] of [[RopeType.NORMAL, "normal"], [RopeType.NEOX, "neox"]] as const) {
      for (const ff of [false, true]) {
        for (const ext of [0, 1]) {
          cases.push({
            name: `ROPE ${TN[t]} ${mname}${ff ? " freq_factors" : ""}${ext ? " yarn" : ""}`,
            maxNmse: tol(t),
            build: (b) => {
              const x = b.newTensor(t, [128, 4, 6]);
              const pos = b.newTensor(I32, [6]);
              return b.ropeExt(x, pos, 96, mode, {
                nCtxOrig: 4096,
                freqBase: 10000,
                freqScale: ext ? 0.25 : 1,
                extFactor: ext,
                attnFactor: 1,
                betaFast: 32,
                betaSlow: 1,
                freqFactors: ff ? b.newTensor(F32, [64]) : null,
              });
            },
            fill: (x, _i, r) => {
              if (x.type === I32) return ints(nelements(x), 0, 1000, r);
              if (x.ne[0] === 64 && x.ne[1] === 1) return Array.from({ length: 64 }, () => 0.5 + r());
              return null;
            },
          });
        }
      }
    }
    for (
      const [mode, mname] of [[RopeType.MROPE, "mrope"], [RopeType.IMROPE, "imrope"], [
        RopeType.VISION,
        "vision",
      ]] as const
    ) {
      cases.push({
        name: `ROPE ${TN[t]} ${mname}`,
        maxNmse: tol(t),
        build: (b) => {
          const x = b.newTensor(t, [64, 4, 5]);
          const pos = b.newTensor(I32, [20]);
          const nd = mode === RopeType.VISION ? 32 : 48;
          const sections = mode === RopeType.VISION ? [8, 8, 0, 0] : [8, 8, 8, 0];
          return opNode(b, GgmlOp.ROPE, t, [64, 4, 5], [x, pos], [
            0,
            nd,
            mode,
            0,
            4096,
            { f: 10000 },
            { f: 1 },
            { f: 0 },
            { f: 1 },
            { f: 32 },
            { f: 1 },
            ...sections,
            0,
          ]);
        },
        fill: (x, _i, r) => x.type === I32 ? ints(nelements(x), 0, 500, r) : null,
      });
    }
  }
  // copies
  for (const s of [F32, F16, BF16]) {
    for (const d of [F32, F16, BF16]) {
      cases.push({
        name: `CPY ${TN[s]} -> ${TN[d]}`,
        maxNmse: s === d ? 0 : 1e-4,
        compare: s === d ? "exact" : "nmse",
        build: (b) => b.cpy(b.newTensor(s, [40, 3, 2]), b.newTensor(d, [40, 3, 2])),
      });
    }
    cases.push({
      name: `CPY ${TN[s]} transposed`,
      compare: "exact",
      build: (b) => b.cont(b.transpose(b.newTensor(s, [300, 70]))),
    });
    cases.push({
      name: `CONT ${TN[s]} permute 2,1,0,3`,
      compare: "exact",
      build: (b) => b.cont(b.permute(b.newTensor(s, [40, 20, 50, 1]), 2, 1, 0, 3)),
    });
  }
  cases.push({
    name: "CPY f32 reshape [40,6] -> [24,10]",
    compare: "exact",
    build: (b) => b.cpy(b.transpose(b.newTensor(F32, [6, 40])), b.newTensor(F32, [24, 10])),
  });
  cases.push({
    name: "DUP i32",
    compare: "exact",
    build: (b) => b.dup(b.newTensor(I32, [17, 3])),
    fill: (t, _i, r) => ints(nelements(t), -1000, 1000, r),
  });
  for (const op of [GgmlOp.SET, GgmlOp.ACC]) {
    cases.push({
      name: `${op === GgmlOp.SET ? "SET" : "ACC"} f32`,
      build: (b) => {
        const a = b.newTensor(F32, [10, 8, 2]), c = b.newTensor(F32, [4, 3, 2]);
        return opNode(b, op, F32, [10, 8, 2], [a, c], [
          10 * 4,
          10 * 8 * 4,
          10 * 8 * 2 * 4,
          (2 * 10 + 3) * 4,
          0,
        ]);
      },
    });
  }
  // rows
  for (const t of [F32, F16, BF16]) {
    cases.push({
      name: `GET_ROWS ${TN[t]}`,
      compare: "exact",
      build: (b) => b.getRows(b.newTensor(t, [24, 10, 3]), b.newTensor(I32, [7, 3])),
      fill: (x, _i, r) => x.type === I32 ? ints(nelements(x), 0, 10, r) : null,
    });
  }
  for (const [t, it] of [[F32, I64], [F16, I32], [BF16, I64]]) {
    cases.push({
      name: `SET_ROWS f32 -> ${TN[t]} by ${TN[it]}`,
      maxNmse: tol(t),
      build: (b) =>
        b.setRows(b.newTensor(t, [32, 20, 2]), b.newTensor(F32, [32, 5, 2]), b.newTensor(it, [5, 2])),
      fill: (x, i, r) => {
        if (x.type === I32 || x.type === I64) {
          // distinct rows per column so that the order of writes does not matter
          const out: number[] = [];
          for (let c = 0; c < x.ne[1]; c++) {
            const rows = [...Array(20).keys()].sort(() => r() - 0.5).slice(0, x.ne[0]);
            out.push(...rows);
          }
          return out;
        }
        return i === 0 ? Array.from({ length: nelements(x) }, () => r() * 2 - 1) : null;
      },
    });
  }
  // layout
  for (const dim of [0, 1, 2, 3]) {
    cases.push({
      name: `CONCAT f32 dim=${dim}`,
      compare: "exact",
      build: (b) => {
        const ne = [6, 5, 4, 3];
        const ne2 = ne.map((x, i) => (i === dim ? 2 : x));
        const out = ne.map((x, i) => (i === dim ? x + 2 : x));
        return opNode(b, GgmlOp.CONCAT, F32, out, [b.newTensor(F32, ne), b.newTensor(F32, ne2)], [dim]);
      },
    });
  }
  cases.push({
    name: "REPEAT f32",
    compare: "exact",
    build: (b) => opNode(b, GgmlOp.REPEAT, F32, [12, 6, 4, 2], [b.newTensor(F32, [4, 3, 2, 1])]),
  });
  cases.push({
    name: "PAD f32",
    compare: "exact",
    build: (b) =>
      opNode(b, GgmlOp.PAD, F32, [15, 9, 3, 2], [b.newTensor(F32, [10, 6, 2, 2])], [
        2,
        3,
        1,
        2,
        0,
        1,
        0,
        0,
        0,
      ]),
  });
  cases.push({
    name: "ROLL f32",
    compare: "exact",
    build: (b) => opNode(b, GgmlOp.ROLL, F32, [10, 6, 3], [b.newTensor(F32, [10, 6, 3])], [3, -2, 1, 0]),
  });
  // generators
  cases.push({
    name: "ARANGE f32",
    build: (b) => opNode(b, GgmlOp.ARANGE, F32, [50], [], [{ f: -3 }, { f: 22 }, { f: 0.5 }]),
  });
  cases.push({
    name: "FILL f32",
    compare: "exact",
    build: (b) => opNode(b, GgmlOp.FILL, F32, [30, 4], [b.newTensor(F32, [30, 4])], [{ f: 2.5 }]),
  });
  for (const k of [0, 1, 2, 3]) {
    cases.push({
      name: `TRI f32 type=${k}`,
      compare: "exact",
      build: (b) => opNode(b, GgmlOp.TRI, F32, [9, 9, 2], [b.newTensor(F32, [9, 9, 2])], [k]),
    });
  }
  cases.push({
    name: "DIAG f32",
    compare: "exact",
    build: (b) => opNode(b, GgmlOp.DIAG, F32, [7, 7, 2], [b.newTensor(F32, [7, 1, 2])]),
  });
  // reductions
  cases.push({
    name: "SUM f32",
    maxNmse: 1e-8,
    build: (b) => opNode(b, GgmlOp.SUM, F32, [1], [b.newTensor(F32, [300, 50, 3])]),
  });
  cases.push({
    name: "SUM f32 transposed (rows read packed, as ggml's CPU reads them)",
    maxNmse: 1e-8,
    build: (b) => opNode(b, GgmlOp.SUM, F32, [1], [b.transpose(b.newTensor(F32, [33, 256]))]),
  });
  cases.push({
    name: "SUM_ROWS f32",
    build: (b) => opNode(b, GgmlOp.SUM_ROWS, F32, [1, 50, 3], [b.newTensor(F32, [300, 50, 3])]),
  });
  cases.push({
    name: "MEAN f32",
    build: (b) => opNode(b, GgmlOp.MEAN, F32, [1, 50, 3], [b.newTensor(F32, [300, 50, 3])]),
  });
  cases.push({
    name: "ARGMAX f32",
    compare: "exact",
    build: (b) => opNode(b, GgmlOp.ARGMAX, I32, [40], [b.newTensor(F32, [1000, 40])]),
  });
  cases.push({
    name: "COUNT_EQUAL i32",
    compare: "exact",
    build: (b) =>
      opNode(b, GgmlOp.COUNT_EQUAL, I64, [1], [b.newTensor(I32, [500, 4]), b.newTensor(I32, [500, 4])]),
    fill: (t, _i, r) => ints(nelements(t), 0, 3, r),
  });
  cases.push({
    name: "CUMSUM f32",
    maxNmse: 1e-8,
    build: (b) => opNode(b, GgmlOp.CUMSUM, F32, [2000, 3, 2], [b.newTensor(F32, [2000, 3, 2])]),
  });
  for (const order of [0, 1]) {
    for (const ne0 of [17, 1024, 20000]) {
      cases.push({
        name: `ARGSORT f32 ne0=${ne0} ${order ? "desc" : "asc"}`,
        compare: "exact",
        build: (b) => opNode(b, GgmlOp.ARGSORT, I32, [ne0, 3], [b.newTensor(F32, [ne0, 3])], [order]),
      });
    }
  }
  for (const [ne0, k] of [[16, 3], [1025, 15], [40000, 100]]) {
    cases.push({
      name: `TOP_K f32 ne0=${ne0} k=${k}`,
      compare: "set",
      build: (b) => opNode(b, GgmlOp.TOP_K, I32, [k, 2], [b.newTensor(F32, [ne0, 2])]),
    });
  }
  // matrix products
  for (const ta of FLOATS) {
    for (
      const [m, n, k] of [
        [64, 1, 256],
        [64, 3, 256],
        [64, 8, 256],
        [70, 5, 72],
        [100, 4, 40],
        [70, 9, 96],
        [130, 67, 264],
        [33, 17, 30],
      ]
    ) {
      cases.push({
        name: `MUL_MAT ${TN[ta]} x f32 m=${m} n=${n} k=${k}`,
        maxNmse: 5e-4,
        build: (b) => b.mulMat(b.newTensor(ta, [k, m]), b.newTensor(F32, [k, n])),
      });
    }
    cases.push({
      name: `MUL_MAT ${TN[ta]} broadcast batches [3,2] over [6,4]`,
      maxNmse: 5e-4,
      build: (b) => b.mulMat(b.newTensor(ta, [64, 20, 3, 2]), b.newTensor(F32, [64, 12, 6, 4])),
    });
    cases.push({
      name: `MUL_MAT ${TN[ta]} permuted operands`,
      maxNmse: 5e-4,
      build: (b) =>
        b.mulMat(
          b.permute(b.newTensor(ta, [32, 4, 40, 1]), 0, 2, 1, 3),
          b.permute(b.newTensor(F32, [32, 4, 3, 1]), 0, 2, 1, 3),
        ),
    });
  }
  cases.push({
    name: "MUL_MAT f16 x f16 n=20",
    maxNmse: 5e-4,
    build: (b) => b.mulMat(b.newTensor(F16, [128, 48]), b.newTensor(F16, [128, 20])),
  });
  for (const ta of [F32, F16]) {
    for (const tokens of [1, 5]) {
      cases.push({
        name: `MUL_MAT_ID ${TN[ta]} tokens=${tokens}`,
        maxNmse: 5e-4,
        build: (b) => {
          const as = b.newTensor(ta, [64, 24, 6]),
            x = b.newTensor(F32, [64, 1, tokens]),
            ids = b.newTensor(I32, [3, tokens]);
          return opNode(b, GgmlOp.MUL_MAT_ID, F32, [24, 3, tokens, 1], [as, x, ids]);
        },
        fill: (t, _i, r) => t.type === I32 ? ints(nelements(t), 0, 6, r) : null,
      });
    }
  }
  // attention
  for (
    const [d, dv, nq, nkv, h, hkv, kv, mask, softcap, sinks] of [
      [64, 64, 1, 256, 4, 4, F16, true, 0, false],
      [128, 128, 3, 512, 8, 2, F16, true, 0, false],
      [80, 80, 1, 300, 2, 2, F16, true, 0, true],
      [96, 96, 5, 128, 2, 1, F16, false, 0, false],
      [112, 112, 1, 200, 2, 2, F16, true, 30, false],
      [256, 256, 2, 96, 2, 2, F16, true, 0, false],
      [64, 64, 4, 160, 4, 4, F32, true, 0, false],
      [64, 64, 2, 64, 2, 2, BF16, true, 0, false],
      [128, 128, 1, 20000, 2, 2, F16, true, 0, false],
      [128, 128, 1, 1000, 4, 4, BF16, true, 0, true],
      [128, 128, 2, 77, 2, 2, F32, false, 30, false],
      [256, 256, 1, 333, 2, 1, F32, true, 0, false],
      [256, 256, 1, 700, 2, 2, BF16, true, 0, false],
    ] as [number, number, number, number, number, number, number, boolean, number, boolean][]
  ) {
    cases.push({
      name: `FLASH_ATTN_EXT d=${d} q=${nq} kv=${nkv} heads=${h}/${hkv} ${TN[kv]}${mask ? " mask" : ""}${
        softcap ? " softcap" : ""
      }${sinks ? " sinks" : ""}`,
      maxNmse: 5e-4,
      build: (b) => {
        const q = b.newTensor(F32, [d, nq, h, 1]);
        const k = b.newTensor(kv, [d, nkv, hkv, 1]);
        const v = b.newTensor(kv, [dv, nkv, hkv, 1]);
        const m = mask ? b.newTensor(F16, [nkv, nq + 3, 1, 1]) : null;
        const n = b.flashAttnExt(q, k, v, m, 1 / Math.sqrt(d), 0, softcap);
        if (sinks) n.src[4] = b.newTensor(F32, [h]);
        return n;
      },
      fill: (t, i, r) => {
        if (i === 3 && t.type === F16 && t.ne[0] === nkv) {
          // a causal-looking mask: some -inf, the rest small
          return Array.from(
            { length: nelements(t) },
            (_x, j) => (j % t.ne[0]) > t.ne[0] - 4 && r() < 0.5 ? -Infinity : r() - 0.5,
          );
        }
        return null;
      },
    });
  }
  return cases;
}

/** A tensor filled from `values`, for ad-hoc checks. */
export function constant(type: number, ne: number[]): Tensor {
  return newTensor({ type, ne });
}

if (import.meta.main) {
  // GPU host: deno run -A backends/cuda/check.ts [--native-lib PATH] [FILTER]
  const { discoverAll } = await import("../all.ts");
  const args = [...Deno.args];
  const li = args.indexOf("--native-lib");
  const nativeLib = li >= 0 ? args.splice(li, 2)[1] : Deno.env.get("GRAPHWIRE_NATIVE_LIB");
  const filter = args[0] ? new RegExp(args[0]) : null;
  const report = await discoverAll({ nativeLib }, ["cuda", "hip", "cpu"]);
  const dev = report.devices.find((d) => d.kind === "cuda" || d.kind === "hip");
  const cpu = report.devices.find((d) => d.kind === "cpu");
  if (!dev || !cpu) {
    console.log(`no GPU device: ${report.absent.get("cuda") ?? ""} ${report.absent.get("hip") ?? ""}`);
    Deno.exit(2);
  }
  console.log(`checking ${dev.description} against ${cpu.description}`);
  const seed = Date.now() >>> 0;
  let ok = 0, fail = 0, skip = 0;
  for (const c of opCases()) {
    if (filter && !filter.test(c.name)) continue;
    const r = await checkCase(dev, cpu, c, seed);
    if (r.status === "ok") ok++;
    else if (r.status === "fail") fail++;
    else skip++;
    console.log(`${r.status.padEnd(4)} ${r.name}: ${r.detail}`);
  }
  console.log(`seed ${seed}: ${ok} ok, ${fail} failed, ${skip} skipped (reference lacks the op)`);
  Deno.exit(fail ? 1 : 0);
}
