/**
 * Reductions: SUM (everything → one value of the source's type: f32 accumulates in double, f16 and
 * bf16 in f32; like ggml's CPU, SUM reads each row as ne[0] packed elements from the row's start
 * whatever nb[0] says, so a transposed source sums what ggml sums), SUM_ROWS and MEAN (each row → one f32), CUMSUM (running sum along rows, f32),
 * ARGMAX (index of each row's maximum as i32, ggml's tie and NaN rules) and COUNT_EQUAL (how many
 * i32 elements agree, as one i64).
 * @module
 */

import { nelements, sameShape, type Tensor } from "../../../protocol/graph/tensor.ts";
import { GgmlType, typeInfo } from "../../../protocol/graph/types.ts";
import { FLOAT_TYPES, TensorData } from "../tensor_data.ts";
import { eachRow } from "./common.ts";
import { type CpuKernel, defineKernels } from "./registry.ts";

const { F32, I32, I64 } = GgmlType;
const f = Math.fround;

/** Calls `fn(row, i1, i2, i3)` for every row of `t` read as f32 (as packed rows with `packed`). */
function eachSourceRow(
  t: Tensor,
  fn: (x: Float32Array, i1: number, i2: number, i3: number) => void,
  packed = false,
): void {
  const T = new TensorData(
    packed ? { ...t, nb: [typeInfo(t.type)!.typeSize, t.nb[1], t.nb[2], t.nb[3]] } : t,
  );
  const x = new Float32Array(t.ne[0]);
  for (let i3 = 0; i3 < t.ne[3]; i3++) {
    for (let i2 = 0; i2 < t.ne[2]; i2++) {
      for (let i1 = 0; i1 < t.ne[1]; i1++) {
        T.readRow(x, i1, i2, i3);
        fn(x, i1, i2, i3);
      }
    }
  }
}

const sum: CpuKernel = {
  supports: (n) => {
    const a = n.src[0];
    return !!a && FLOAT_TYPES.has(a.type) && n.type === a.type && nelements(n) === 1;
  },
  run: (n) => {
    const a = n.src[0]!;
    let s = 0;
    if (a.type === F32) {
      eachSourceRow(a, (x) => {
        let r = 0;
        for (let i = 0; i < x.length; i++) r += x[i];
        s += r;
      }, true);
    } else {
      eachSourceRow(a, (x) => {
        let r = 0;
        for (let i = 0; i < x.length; i++) r = f(r + x[i]);
        s = f(s + r);
      }, true);
    }
    new TensorData(n).set(0, 0, 0, 0, f(s));
  },
};

function rowReduce(mean: boolean): CpuKernel {
  return {
    supports: (n) => {
      const a = n.src[0];
      return !!a && a.type === F32 && n.type === F32 && n.ne[0] === 1 && n.ne[1] === a.ne[1] &&
        n.ne[2] === a.ne[2] && n.ne[3] === a.ne[3];
    },
    work: (n) => nelements(n.src[0]!),
    run: (n, ith, nth) => {
      const A = new TensorData(n.src[0]!), D = new TensorData(n);
      const ne0 = A.ne[0];
      const x = new Float32Array(ne0);
      eachRow(n, ith, nth, (i1, i2, i3) => {
        A.readRow(x, i1, i2, i3);
        let s = 0;
        for (let i = 0; i < ne0; i++) s += x[i];
        D.set(0, i1, i2, i3, mean ? f(f(s) / ne0) : s);
      });
    },
  };
}

const cumsum: CpuKernel = {
  supports: (n) => {
    const a = n.src[0];
    return !!a && a.type === F32 && n.type === F32 && sameShape(a, n);
  },
  work: (n) => nelements(n),
  run: (n, ith, nth) => {
    const A = new TensorData(n.src[0]!), D = new TensorData(n);
    const x = new Float32Array(n.ne[0]);
    eachRow(n, ith, nth, (i1, i2, i3) => {
      A.readRow(x, i1, i2, i3);
      for (let i = 1; i < x.length; i++) x[i] += x[i - 1];
      D.writeRow(x, i1, i2, i3);
    });
  },
};

const argmax: CpuKernel = {
  supports: (n) => {
    const a = n.src[0];
    return !!a && a.type === F32 && n.type === I32 && a.ne[2] === 1 && a.ne[3] === 1 && n.ne[0] === a.ne[1] &&
      n.ne[1] === 1 && n.ne[2] === 1 && n.ne[3] === 1;
  },
  run: (n) => {
    const D = new TensorData(n);
    eachSourceRow(n.src[0]!, (x, i1) => {
      // ggml_vec_argmax_f32: max = MAX(max, x[i]); the last index equal to the running max wins
      let max = -Infinity, idx = 0;
      for (let i = 0; i < x.length; i++) {
        max = max > x[i] ? max : x[i];
        if (max === x[i]) idx = i;
      }
      D.set(i1, 0, 0, 0, idx);
    });
  },
};

const countEqual: CpuKernel = {
  supports: (n) => {
    const a = n.src[0], b = n.src[1];
    return !!a && !!b && a.type === I32 && b.type === I32 && n.type === I64 && sameShape(a, b) &&
      nelements(n) === 1;
  },
  run: (n) => {
    const A = new TensorData(n.src[0]!), B = new TensorData(n.src[1]!);
    const [ne0, ne1, ne2, ne3] = A.ne;
    let count = 0;
    for (let i3 = 0; i3 < ne3; i3++) {
      for (let i2 = 0; i2 < ne2; i2++) {
        for (let i1 = 0; i1 < ne1; i1++) {
          for (let i0 = 0; i0 < ne0; i0++) {
            if (A.get(i0, i1, i2, i3) === B.get(i0, i1, i2, i3)) count++;
          }
        }
      }
    }
    new TensorData(n).set(0, 0, 0, 0, count);
  },
};

defineKernels({
  SUM: sum,
  SUM_ROWS: rowReduce(false),
  MEAN: rowReduce(true),
  CUMSUM: cumsum,
  ARGMAX: argmax,
  COUNT_EQUAL: countEqual,
});
