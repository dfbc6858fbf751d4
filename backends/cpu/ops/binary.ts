/**
 * Element-wise binary ops. ADD, SUB, MUL, DIV broadcast src1 over src0 (ggml_can_repeat: every
 * dimension of src0 a multiple of src1's) and compute in f32, each result rounded to f32 and then
 * to the destination type, for ggml's type combinations (all f32, all f16, all bf16, and f16/bf16
 * src0 with an f32 src1 into src0's type or f32). ADD1 adds a scalar; ADD_ID adds the row of src1
 * that src2 (i32 ids) names for each row.
 * @module
 */

import { canRepeat, nelements, sameShape } from "../../../protocol/graph/tensor.ts";
import { GgmlType } from "../../../protocol/graph/types.ts";
import { DeviceError } from "../../../protocol/errors.ts";
import { TensorData } from "../tensor_data.ts";
import { eachRow } from "./common.ts";
import { type CpuKernel, defineKernels } from "./registry.ts";

const { F32, F16, BF16 } = GgmlType;

/** [src0, src1, dst] type triples ggml's binary_op accepts. */
const BINARY_TYPES: ReadonlySet<string> = new Set([
  [F32, F32, F32],
  [F16, F16, F16],
  [BF16, BF16, BF16],
  [BF16, F32, BF16],
  [BF16, F32, F32],
  [F16, F32, F16],
  [F16, F32, F32],
].map((t) => t.join()));

/** Which binary op a kernel computes. */
const Bin = { Add: 0, Sub: 1, Mul: 2, Div: 3 } as const;

function binary(kind: number): CpuKernel {
  return {
    supports: (n) => {
      const a = n.src[0], b = n.src[1];
      return !!a && !!b && BINARY_TYPES.has([a.type, b.type, n.type].join()) && sameShape(a, n) &&
        canRepeat(b, a);
    },
    work: (n) => nelements(n),
    run: (n, ith, nth) => {
      const A = new TensorData(n.src[0]!), B = new TensorData(n.src[1]!), D = new TensorData(n);
      const ne0 = n.ne[0], be = B.ne;
      const x = new Float32Array(ne0), y = new Float32Array(be[0]), z = new Float32Array(ne0);
      const nb = be[0];
      eachRow(n, ith, nth, (i1, i2, i3) => {
        A.readRow(x, i1, i2, i3);
        B.readRow(y, i1 % be[1], i2 % be[2], i3 % be[3]);
        if (nb === ne0) {
          switch (kind) {
            case Bin.Add:
              for (let i = 0; i < ne0; i++) z[i] = x[i] + y[i];
              break;
            case Bin.Sub:
              for (let i = 0; i < ne0; i++) z[i] = x[i] - y[i];
              break;
            case Bin.Mul:
              for (let i = 0; i < ne0; i++) z[i] = x[i] * y[i];
              break;
            case Bin.Div:
              for (let i = 0; i < ne0; i++) z[i] = x[i] / y[i];
              break;
          }
        } else {
          for (let r = 0; r < ne0; r += nb) {
            switch (kind) {
              case Bin.Add:
                for (let i = 0; i < nb; i++) z[r + i] = x[r + i] + y[i];
                break;
              case Bin.Sub:
                for (let i = 0; i < nb; i++) z[r + i] = x[r + i] - y[i];
                break;
              case Bin.Mul:
                for (let i = 0; i < nb; i++) z[r + i] = x[r + i] * y[i];
                break;
              case Bin.Div:
                for (let i = 0; i < nb; i++) z[r + i] = x[r + i] / y[i];
                break;
            }
          }
        }
        D.writeRow(z, i1, i2, i3);
      });
    },
  };
}

/** ADD1 type pairs [src0, src1] (dst has src0's type): f32+f32, f16+{f16,f32}, bf16+{bf16,f32}. */
const ADD1_TYPES: ReadonlySet<string> = new Set([
  [F32, F32],
  [F16, F16],
  [F16, F32],
  [BF16, BF16],
  [BF16, F32],
].map((t) => t.join()));

const add1: CpuKernel = {
  supports: (n) => {
    const a = n.src[0], b = n.src[1];
    return !!a && !!b && ADD1_TYPES.has([a.type, b.type].join()) && n.type === a.type && sameShape(a, n) &&
      nelements(b) === 1;
  },
  work: (n) => nelements(n),
  run: (n, ith, nth) => {
    const A = new TensorData(n.src[0]!), D = new TensorData(n);
    const v = new TensorData(n.src[1]!).get(0, 0, 0, 0);
    const x = new Float32Array(n.ne[0]);
    eachRow(n, ith, nth, (i1, i2, i3) => {
      A.readRow(x, i1, i2, i3);
      for (let i = 0; i < x.length; i++) x[i] += v;
      D.writeRow(x, i1, i2, i3);
    });
  },
};

const addId: CpuKernel = {
  supports: (n) => {
    const a = n.src[0], b = n.src[1], ids = n.src[2];
    return !!a && !!b && !!ids && n.type === F32 && a.type === F32 && b.type === F32 &&
      ids.type === GgmlType.I32 &&
      sameShape(a, n) && a.ne[0] === b.ne[0] && ids.ne[0] >= a.ne[1] && ids.ne[1] >= a.ne[2];
  },
  work: (n) => nelements(n),
  run: (n, ith, nth) => {
    const A = new TensorData(n.src[0]!), B = new TensorData(n.src[1]!), I = new TensorData(n.src[2]!);
    const D = new TensorData(n);
    const nb1 = B.ne[1];
    const x = new Float32Array(n.ne[0]), y = new Float32Array(n.ne[0]);
    eachRow(n, ith, nth, (i1, i2, i3) => {
      const id = I.get(i1, i2, 0, 0);
      if (!(id >= 0 && id < nb1)) {
        throw new DeviceError(`ADD_ID: id ${id} outside [0, ${nb1}) in "${n.name}"`);
      }
      A.readRow(x, i1, i2, i3);
      B.readRow(y, id, 0, 0);
      for (let i = 0; i < x.length; i++) x[i] += y[i];
      D.writeRow(x, i1, i2, i3);
    });
  },
};

defineKernels({
  ADD: binary(Bin.Add),
  SUB: binary(Bin.Sub),
  MUL: binary(Bin.Mul),
  DIV: binary(Bin.Div),
  ADD1: add1,
  ADD_ID: addId,
});
