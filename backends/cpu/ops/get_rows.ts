/**
 * GET_ROWS: dst[:, i10, i11, i12] = src0[:, ids[i10, i11, i12], i11, i12] with i32 ids. f32, f16 and
 * bf16 rows come out as f32, i32 rows as i32 (ggml's result types). An id outside src0's rows
 * fails the graph (ggml asserts).
 * @module
 */

import { DeviceError } from "../../../protocol/errors.ts";
import { nelements } from "../../../protocol/graph/tensor.ts";
import { GgmlType } from "../../../protocol/graph/types.ts";
import { copyRowRaw, TensorData } from "../tensor_data.ts";
import { eachRow } from "./common.ts";
import { type CpuKernel, defineKernels } from "./registry.ts";

const { F32, F16, BF16, I32 } = GgmlType;

/** src0 type → dst type. */
const RESULT: ReadonlyMap<number, number> = new Map([[F32, F32], [F16, F32], [BF16, F32], [I32, I32]]);

const getRows: CpuKernel = {
  supports: (n) => {
    const a = n.src[0], b = n.src[1];
    return !!a && !!b && b.type === I32 && RESULT.get(a.type) === n.type && n.ne[0] === a.ne[0] &&
      n.ne[1] === b.ne[0] && n.ne[2] === b.ne[1] && n.ne[3] === b.ne[2] && b.ne[3] === 1 &&
      a.ne[2] === b.ne[1] && a.ne[3] === b.ne[2];
  },
  work: (n) => nelements(n),
  run: (n, ith, nth) => {
    const a = n.src[0]!;
    const A = new TensorData(a), I = new TensorData(n.src[1]!), D = new TensorData(n);
    const raw = a.type === n.type;
    const row = raw ? null : new Float32Array(a.ne[0]);
    const rows = a.ne[1];
    eachRow(n, ith, nth, (i10, i11, i12) => {
      const r = I.get(i10, i11, i12, 0);
      if (!(r >= 0 && r < rows)) {
        throw new DeviceError(`GET_ROWS: row ${r} outside [0, ${rows}) in "${n.name}"`);
      }
      if (raw) copyRowRaw(D, i10, i11, i12, A, r, i11, i12);
      else {
        A.readRow(row!, r, i11, i12);
        D.writeRow(row!, i10, i11, i12);
      }
    });
  },
};

defineKernels({ GET_ROWS: getRows });
