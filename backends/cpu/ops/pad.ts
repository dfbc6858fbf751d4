/**
 * PAD (f32): src0 placed inside dst after lp0…lp3 leading elements per dimension (op_params
 * [lp0, rp0, lp1, rp1, lp2, rp2, lp3, rp3]), zeros around it; with op_params[8] "circular" set, the
 * border wraps around src0 instead (a torus).
 * @module
 */

import { nelements, opI32 } from "../../../protocol/graph/tensor.ts";
import { GgmlType } from "../../../protocol/graph/types.ts";
import { TensorData } from "../tensor_data.ts";
import { eachRow } from "./common.ts";
import { type CpuKernel, defineKernels } from "./registry.ts";

const pad: CpuKernel = {
  supports: (n) => {
    const a = n.src[0];
    if (!a || a.type !== GgmlType.F32 || n.type !== GgmlType.F32) return false;
    for (let d = 0; d < 4; d++) {
      const lp = opI32(n, 2 * d), rp = opI32(n, 2 * d + 1);
      if (lp < 0 || rp < 0 || n.ne[d] !== a.ne[d] + lp + rp || a.ne[d] === 0) return false;
    }
    return true;
  },
  work: (n) => nelements(n),
  run: (n, ith, nth) => {
    const a = n.src[0]!;
    const A = new TensorData(a), D = new TensorData(n);
    const lp = [opI32(n, 0), opI32(n, 2), opI32(n, 4), opI32(n, 6)];
    const circular = opI32(n, 8) !== 0;
    const [a0, a1, a2, a3] = a.ne;
    const ne0 = n.ne[0];
    const src = new Float32Array(a0), out = new Float32Array(ne0);
    const wrap = (i: number, m: number) => ((i % m) + m) % m;
    eachRow(n, ith, nth, (i1, i2, i3) => {
      let s1 = i1 - lp[1], s2 = i2 - lp[2], s3 = i3 - lp[3];
      if (circular) {
        s1 = wrap(s1, a1);
        s2 = wrap(s2, a2);
        s3 = wrap(s3, a3);
      } else if (s1 < 0 || s1 >= a1 || s2 < 0 || s2 >= a2 || s3 < 0 || s3 >= a3) {
        out.fill(0);
        D.writeRow(out, i1, i2, i3);
        return;
      }
      A.readRow(src, s1, s2, s3);
      for (let i0 = 0; i0 < ne0; i0++) {
        const s0 = i0 - lp[0];
        out[i0] = circular ? src[wrap(s0, a0)] : s0 >= 0 && s0 < a0 ? src[s0] : 0;
      }
      D.writeRow(out, i1, i2, i3);
    });
  },
};

defineKernels({ PAD: pad });
