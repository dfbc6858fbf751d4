/**
 * Element-wise binary ops with broadcasting of src1 over src0 (ggml_can_repeat): ADD, SUB, MUL, DIV.
 * Computed in f32 (each result rounded to f32, then to the destination type), as ggml's CPU does.
 * @module
 */

import type { Tensor } from "../../../protocol/graph/tensor.ts";
import { canRepeat, sameShape } from "../../../protocol/graph/tensor.ts";
import { GgmlType } from "../../../protocol/graph/types.ts";
import { loadF32, storeF32 } from "../tensor_data.ts";
import { type CpuKernel, defineKernels } from "./registry.ts";

const FLOAT: ReadonlySet<number> = new Set([GgmlType.F32, GgmlType.F16, GgmlType.BF16]);

function binary(f: (a: number, b: number) => number): CpuKernel {
  return {
    supports: (n) => {
      const a = n.src[0], b = n.src[1];
      return !!a && !!b && FLOAT.has(n.type) && FLOAT.has(a.type) && FLOAT.has(b.type) &&
        sameShape(a, n) && canRepeat(b, a);
    },
    run: (n) => {
      const a = n.src[0]!, b = n.src[1]!;
      const x = loadF32(a), y = loadF32(b);
      const out = new Float32Array(x.length);
      broadcast(n, b, (i, j) => out[i] = f(x[i], y[j]));
      storeF32(n, out);
    },
  };
}

/** Calls `f(i, j)` for every dense index i of `dst` and the broadcast dense index j of `b`. */
export function broadcast(dst: Tensor, b: Tensor, f: (i: number, j: number) => void): void {
  const [ne0, ne1, ne2, ne3] = dst.ne;
  const [be0, be1, be2, be3] = b.ne;
  let i = 0;
  for (let i3 = 0; i3 < ne3; i3++) {
    const j3 = (i3 % be3) * be2;
    for (let i2 = 0; i2 < ne2; i2++) {
      const j2 = (j3 + i2 % be2) * be1;
      for (let i1 = 0; i1 < ne1; i1++) {
        const row = (j2 + i1 % be1) * be0;
        if (be0 === ne0) { for (let i0 = 0; i0 < ne0; i0++) f(i++, row + i0); }
        else for (let i0 = 0; i0 < ne0; i0++) f(i++, row + i0 % be0);
      }
    }
  }
}

defineKernels({
  ADD: binary((a, b) => a + b),
  SUB: binary((a, b) => a - b),
  MUL: binary((a, b) => a * b),
  DIV: binary((a, b) => a / b),
});
