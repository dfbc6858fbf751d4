/**
 * ROLL (f32): dst[i] = src0[i - shift] in each dimension, wrapping around (shifts in op_params[0..3]).
 * @module
 */

import { nelements, opI32, sameShape } from "../../../protocol/graph/tensor.ts";
import { GgmlType } from "../../../protocol/graph/types.ts";
import { TensorData } from "../tensor_data.ts";
import { eachRow } from "./common.ts";
import { type CpuKernel, defineKernels } from "./registry.ts";

const roll: CpuKernel = {
  supports: (n) => {
    const a = n.src[0];
    return !!a && a.type === GgmlType.F32 && n.type === GgmlType.F32 && sameShape(a, n) && nelements(a) > 0;
  },
  work: (n) => nelements(n),
  run: (n, ith, nth) => {
    const A = new TensorData(n.src[0]!), D = new TensorData(n);
    const [ne0, ne1, ne2, ne3] = n.ne;
    const wrap = (i: number, m: number) => ((i % m) + m) % m;
    const s = [opI32(n, 0), opI32(n, 1), opI32(n, 2), opI32(n, 3)];
    const src = new Float32Array(ne0), out = new Float32Array(ne0);
    const k = wrap(-s[0], ne0);
    eachRow(n, ith, nth, (i1, i2, i3) => {
      A.readRow(src, wrap(i1 - s[1], ne1), wrap(i2 - s[2], ne2), wrap(i3 - s[3], ne3));
      for (let i0 = 0; i0 < ne0; i0++) out[i0] = src[(i0 + k) % ne0];
      D.writeRow(out, i1, i2, i3);
    });
  },
};

defineKernels({ ROLL: roll });
