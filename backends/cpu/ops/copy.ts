/**
 * CPY, DUP, CONT: copy a tensor's elements, in logical order, into another layout and/or type. CPY(a,
 * b) writes a into b's memory (the node is a view of b); DUP and CONT write into the node. The shapes
 * may differ when the element counts agree (elements are matched in logical order, dim 0 fastest).
 * Same-type copies move raw bytes, so NaN payloads and integers survive exactly (any of f32, f16,
 * bf16, i32, i64, i16, i8); type changes convert as ggml does (f16 round to nearest even, bf16 with ggml's
 * rounding, f32 → i32 by truncation, i32 → f32), between f32/f16/bf16 and f32 ↔ i32.
 * @module
 */

import { nelements, nrows, sameShape, type Tensor } from "../../../protocol/graph/tensor.ts";
import { GgmlType } from "../../../protocol/graph/types.ts";
import { copyRowRaw, FLOAT_TYPES, partRange, RAW_TYPES, TensorData } from "../tensor_data.ts";
import { type CpuKernel, defineKernels } from "./registry.ts";

/** Whether ggml's CPU converts `src` to `dst` (dup_flt / dup_bytes). */
export function canConvert(src: number, dst: number): boolean {
  if (src === dst) return RAW_TYPES.has(src);
  if (FLOAT_TYPES.has(src) && FLOAT_TYPES.has(dst)) return true;
  return (src === GgmlType.F32 && dst === GgmlType.I32) || (src === GgmlType.I32 && dst === GgmlType.F32);
}

/**
 * Copies all of `S` into `D` (same element count) in logical order, converting types; rows
 * [r0, r1) of the source when the shapes agree (the parallel case), else everything.
 */
export function copyElements(D: TensorData, S: TensorData, r0?: number, r1?: number): void {
  const raw = D.type === S.type;
  const [se0, se1, se2, se3] = S.ne;
  const row = raw ? null : new Float32Array(se0);
  if (sameShape(D, S)) {
    const n12 = se1 * se2;
    const a = r0 ?? 0, b = r1 ?? se1 * se2 * se3;
    for (let r = a; r < b; r++) {
      const i3 = Math.floor(r / n12), rem = r - i3 * n12, i2 = Math.floor(rem / se1), i1 = rem - i2 * se1;
      if (raw) copyRowRaw(D, i1, i2, i3, S, i1, i2, i3);
      else {
        S.readRow(row!, i1, i2, i3);
        D.writeRow(row!, i1, i2, i3);
      }
    }
    return;
  }
  const [de0, de1, de2] = D.ne;
  let d0 = 0, d1 = 0, d2 = 0, d3 = 0;
  for (let i3 = 0; i3 < se3; i3++) {
    for (let i2 = 0; i2 < se2; i2++) {
      for (let i1 = 0; i1 < se1; i1++) {
        if (row) S.readRow(row, i1, i2, i3);
        let s0 = 0;
        while (s0 < se0) {
          const m = Math.min(se0 - s0, de0 - d0);
          if (raw) copyRowRaw(D, d1, d2, d3, S, i1, i2, i3, m, d0, s0);
          else D.writeRow(row!, d1, d2, d3, s0, d0, m);
          s0 += m;
          d0 += m;
          if (d0 === de0) {
            d0 = 0;
            if (++d1 === de1) {
              d1 = 0;
              if (++d2 === de2) {
                d2 = 0;
                d3++;
              }
            }
          }
        }
      }
    }
  }
}

const copy: CpuKernel = {
  supports: (n) => {
    const s = n.src[0];
    return !!s && canConvert(s.type, n.type) && nelements(s) === nelements(n);
  },
  work: (n) => (sameShape(n, n.src[0]!) ? nelements(n) : 0),
  run: (n: Tensor, ith, nth) => {
    const D = new TensorData(n), S = new TensorData(n.src[0]!);
    if (nth === 1) return copyElements(D, S);
    const [r0, r1] = partRange(nrows(n), ith, nth);
    copyElements(D, S, r0, r1);
  },
};

defineKernels({ CPY: copy, DUP: copy, CONT: copy });
