/**
 * REPEAT: src0 tiled to dst's shape (every dimension of dst a multiple of src0's); f32, f16, bf16,
 * i32 and i16 (ggml's CPU has no i64 or i8 REPEAT), copied as raw bytes.
 * @module
 */

import { canRepeat, nelements } from "../../../protocol/graph/tensor.ts";
import { GgmlType } from "../../../protocol/graph/types.ts";
import { copyRowRaw, TensorData } from "../tensor_data.ts";
import { eachRow } from "./common.ts";
import { type CpuKernel, defineKernels } from "./registry.ts";

const TYPES: ReadonlySet<number> = new Set([
  GgmlType.F32,
  GgmlType.F16,
  GgmlType.BF16,
  GgmlType.I32,
  GgmlType.I16,
]);

const repeat: CpuKernel = {
  supports: (n) => {
    const a = n.src[0];
    return !!a && TYPES.has(a.type) && n.type === a.type && nelements(a) > 0 && canRepeat(a, n);
  },
  work: (n) => nelements(n),
  run: (n, ith, nth) => {
    const a = n.src[0]!;
    const A = new TensorData(a), D = new TensorData(n);
    const [a0, a1, a2, a3] = a.ne;
    eachRow(n, ith, nth, (i1, i2, i3) => {
      for (let i0 = 0; i0 < n.ne[0]; i0 += a0) {
        copyRowRaw(D, i1, i2, i3, A, i1 % a1, i2 % a2, i3 % a3, a0, i0, 0);
      }
    });
  },
};

defineKernels({ REPEAT: repeat });
