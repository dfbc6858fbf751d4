/**
 * SET and ACC: dst is src0 (copied unless op_params[4] "inplace"), then src1 is written into (SET)
 * or added onto (ACC) the view of dst with strides nb1, nb2, nb3 and byte offset from op_params[0..3]
 * (elements packed within a row). SET: f32 or i32 (all three tensors one type); ACC: f32. The view
 * must lie inside dst: a graph asking for anything else is refused.
 * @module
 */

import { DeviceError } from "../../../protocol/errors.ts";
import { nbytes, nelements, opI32, sameShape, type Tensor } from "../../../protocol/graph/tensor.ts";
import { GgmlType } from "../../../protocol/graph/types.ts";
import { copyRowRaw, TensorData } from "../tensor_data.ts";
import { copyElements } from "./copy.ts";
import { type CpuKernel, defineKernels } from "./registry.ts";

/** The view of `base`'s memory that op_params describe, with src1's shape. */
function paramView(n: Tensor, base: Tensor, shape: Tensor): Tensor {
  const nb1 = opI32(n, 0), nb2 = opI32(n, 1), nb3 = opI32(n, 2), offset = opI32(n, 3);
  const esize = n.type === GgmlType.F32 || n.type === GgmlType.I32 ? 4 : 0;
  const v: Tensor = { ...base, ne: [...shape.ne], nb: [esize, nb1, nb2, nb3], offset: base.offset + offset };
  const [ne0, ne1, ne2, ne3] = shape.ne;
  const last = offset + (ne0 - 1) * esize + (ne1 - 1) * nb1 + (ne2 - 1) * nb2 + (ne3 - 1) * nb3 + esize;
  if (nb1 < 0 || nb2 < 0 || nb3 < 0 || offset < 0 || last > nbytes(base)) {
    throw new DeviceError(`${n.name}: the view [offset ${offset}, strides ${nb1},${nb2},${nb3}] leaves dst`);
  }
  return v;
}

function sameMemory(a: Tensor, b: Tensor): boolean {
  return a.buffer === b.buffer && a.offset === b.offset && a.nb.every((x, i) => x === b.nb[i]);
}

function setOrAcc(types: ReadonlySet<number>, acc: boolean): CpuKernel {
  return {
    supports: (n) => {
      const a = n.src[0], b = n.src[1];
      return !!a && !!b && types.has(n.type) && a.type === n.type && b.type === n.type && sameShape(a, n) &&
        nelements(b) <= nelements(a);
    },
    run: (n) => {
      const a = n.src[0]!, b = n.src[1]!;
      const inplace = opI32(n, 4) !== 0;
      const view = paramView(n, n, b);
      if (!inplace && !sameMemory(n, a)) copyElements(new TensorData(n), new TensorData(a));
      const V = new TensorData(view), B = new TensorData(b);
      const [, ne1, ne2, ne3] = b.ne;
      if (!acc) {
        for (let i3 = 0; i3 < ne3; i3++) {
          for (let i2 = 0; i2 < ne2; i2++) {
            for (let i1 = 0; i1 < ne1; i1++) copyRowRaw(V, i1, i2, i3, B, i1, i2, i3);
          }
        }
        return;
      }
      // ACC reads src0 through the same view (ggml adds src0's values, not dst's)
      const A = new TensorData(paramView(n, a, b));
      const x = new Float32Array(b.ne[0]), y = new Float32Array(b.ne[0]);
      for (let i3 = 0; i3 < ne3; i3++) {
        for (let i2 = 0; i2 < ne2; i2++) {
          for (let i1 = 0; i1 < ne1; i1++) {
            A.readRow(x, i1, i2, i3);
            B.readRow(y, i1, i2, i3);
            for (let i = 0; i < x.length; i++) x[i] += y[i];
            V.writeRow(x, i1, i2, i3);
          }
        }
      }
    },
  };
}

defineKernels({
  SET: setOrAcc(new Set([GgmlType.F32, GgmlType.I32]), false),
  ACC: setOrAcc(new Set([GgmlType.F32]), true),
});
