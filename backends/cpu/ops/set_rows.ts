/**
 * SET_ROWS: dst[:, ids[i, i02 % ne11, i03 % ne12], i02, i03] = src0[:, i, i02, i03], with i64 or i32
 * ids (src1); the node is a view of src2, the tensor written into. src0 is f32 or f16; dst is f32,
 * f16 or bf16 (converted as ggml's from_float; f16 into f16 moves raw bytes). An id outside dst's
 * rows fails the graph (ggml asserts). Rows are written in order, so with repeated ids the last one
 * wins.
 * @module
 */

import { DeviceError } from "../../../protocol/errors.ts";
import { GgmlType } from "../../../protocol/graph/types.ts";
import { copyRowRaw, FLOAT_TYPES, TensorData } from "../tensor_data.ts";
import { type CpuKernel, defineKernels } from "./registry.ts";

const { F32, F16, I32, I64 } = GgmlType;

const setRows: CpuKernel = {
  supports: (n) => {
    const a = n.src[0], b = n.src[1];
    return !!a && !!b && (a.type === F32 || a.type === F16) && (b.type === I32 || b.type === I64) &&
      FLOAT_TYPES.has(n.type) && n.ne[0] === a.ne[0] && n.ne[2] === a.ne[2] && n.ne[3] === a.ne[3] &&
      b.ne[0] === a.ne[1] && b.ne[1] > 0 && b.ne[2] > 0 && a.ne[2] % b.ne[1] === 0 &&
      a.ne[3] % b.ne[2] === 0 && b.ne[3] === 1;
  },
  run: (n) => {
    const a = n.src[0]!, b = n.src[1]!;
    const A = new TensorData(a), I = new TensorData(b), D = new TensorData(n);
    const raw = a.type === n.type;
    const row = raw ? null : new Float32Array(a.ne[0]);
    const [, ne01, ne02, ne03] = a.ne;
    const rows = n.ne[1];
    for (let i03 = 0; i03 < ne03; i03++) {
      for (let i02 = 0; i02 < ne02; i02++) {
        for (let i = 0; i < ne01; i++) {
          const r = I.get(i, i02 % b.ne[1], i03 % b.ne[2], 0);
          if (!(r >= 0 && r < rows)) {
            throw new DeviceError(`SET_ROWS: row ${r} outside [0, ${rows}) in "${n.name}"`);
          }
          if (raw) copyRowRaw(D, r, i02, i03, A, i, i02, i03);
          else {
            A.readRow(row!, i, i02, i03);
            D.writeRow(row!, r, i02, i03);
          }
        }
      }
    }
  },
};

defineKernels({ SET_ROWS: setRows });
