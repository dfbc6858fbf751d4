/**
 * CONCAT: src1 appended to src0 along dimension op_params[0]; any of f32, f16, bf16, i32, i64, i16,
 * i8 (both sources and dst one type), copied as raw bytes.
 * @module
 */

import { nelements, opI32 } from "../../../protocol/graph/tensor.ts";
import { copyRowRaw, RAW_TYPES, TensorData } from "../tensor_data.ts";
import { eachRow } from "./common.ts";
import { type CpuKernel, defineKernels } from "./registry.ts";

const concat: CpuKernel = {
  supports: (n) => {
    const a = n.src[0], b = n.src[1], dim = opI32(n, 0);
    if (!a || !b || !RAW_TYPES.has(n.type) || a.type !== n.type || b.type !== n.type) return false;
    if (!(dim >= 0 && dim < 4)) return false;
    for (let d = 0; d < 4; d++) {
      if (d === dim ? n.ne[d] !== a.ne[d] + b.ne[d] : n.ne[d] !== a.ne[d] || n.ne[d] !== b.ne[d]) {
        return false;
      }
    }
    return true;
  },
  work: (n) => nelements(n),
  run: (n, ith, nth) => {
    const a = n.src[0]!;
    const A = new TensorData(a), B = new TensorData(n.src[1]!), D = new TensorData(n);
    const dim = opI32(n, 0);
    const [a0, a1, a2, a3] = a.ne;
    eachRow(n, ith, nth, (i1, i2, i3) => {
      if (dim === 0) {
        copyRowRaw(D, i1, i2, i3, A, i1, i2, i3);
        copyRowRaw(D, i1, i2, i3, B, i1, i2, i3, B.ne[0], a0, 0);
      } else if (i1 < a1 && i2 < a2 && i3 < a3) {
        copyRowRaw(D, i1, i2, i3, A, i1, i2, i3);
      } else {
        copyRowRaw(
          D,
          i1,
          i2,
          i3,
          B,
          dim === 1 ? i1 - a1 : i1,
          dim === 2 ? i2 - a2 : i2,
          dim === 3 ? i3 - a3 : i3,
        );
      }
    });
  },
};

defineKernels({ CONCAT: concat });
