/**
 * Ops that make values from parameters: ARANGE (start + step·i, f32), FILL (a constant, f32/f16),
 * TRI (keep the lower/upper triangle of each matrix, f32; op_params[0] is ggml_tri_type), DIAG
 * (a row vector spread over a diagonal matrix, f32) and TIMESTEP_EMBEDDING (sinusoidal embeddings
 * of f32 timesteps; op_params dim and max_period).
 * @module
 */

import { nelements, opF32, opI32, sameShape } from "../../../protocol/graph/tensor.ts";
import { GgmlType } from "../../../protocol/graph/types.ts";
import { TensorData } from "../tensor_data.ts";
import { eachRow } from "./common.ts";
import { type CpuKernel, defineKernels } from "./registry.ts";

const { F32, F16 } = GgmlType;
const f = Math.fround;

const arange: CpuKernel = {
  supports: (n) => n.type === F32,
  run: (n) => {
    const start = f(opF32(n, 0)), step = f(opF32(n, 2));
    const D = new TensorData(n);
    const [ne0, ne1, ne2, ne3] = n.ne;
    let i = 0;
    for (let i3 = 0; i3 < ne3; i3++) {
      for (let i2 = 0; i2 < ne2; i2++) {
        for (let i1 = 0; i1 < ne1; i1++) {
          for (let i0 = 0; i0 < ne0; i0++, i++) D.set(i0, i1, i2, i3, f(start + f(step * f(i))));
        }
      }
    }
  },
};

const fill: CpuKernel = {
  supports: (n) => {
    const a = n.src[0];
    return !!a && (a.type === F32 || a.type === F16) && n.type === a.type && sameShape(a, n);
  },
  work: (n) => nelements(n),
  run: (n, ith, nth) => {
    const D = new TensorData(n);
    const row = new Float32Array(n.ne[0]).fill(opF32(n, 0));
    eachRow(n, ith, nth, (i1, i2, i3) => D.writeRow(row, i1, i2, i3));
  },
};

/** ggml_tri_type → keep (i0, i1)? */
const TRI: Record<number, (i0: number, i1: number) => boolean> = {
  0: (i, r) => i >= r, // UPPER_DIAG
  1: (i, r) => i > r, // UPPER
  2: (i, r) => i <= r, // LOWER_DIAG
  3: (i, r) => i < r, // LOWER
};

const tri: CpuKernel = {
  supports: (n) => {
    const a = n.src[0];
    return !!a && a.type === F32 && n.type === F32 && sameShape(a, n) && opI32(n, 0) in TRI;
  },
  work: (n) => nelements(n),
  run: (n, ith, nth) => {
    const keep = TRI[opI32(n, 0)];
    const A = new TensorData(n.src[0]!), D = new TensorData(n);
    const x = new Float32Array(n.ne[0]);
    eachRow(n, ith, nth, (i1, i2, i3) => {
      A.readRow(x, i1, i2, i3);
      for (let i0 = 0; i0 < x.length; i0++) if (!keep(i0, i1)) x[i0] = 0;
      D.writeRow(x, i1, i2, i3);
    });
  },
};

const diag: CpuKernel = {
  supports: (n) => {
    const a = n.src[0];
    return !!a && a.type === F32 && n.type === F32 && a.ne[1] === 1 && n.ne[0] === a.ne[0] &&
      n.ne[1] === a.ne[0] && n.ne[2] === a.ne[2] && n.ne[3] === a.ne[3];
  },
  work: (n) => nelements(n),
  run: (n, ith, nth) => {
    const A = new TensorData(n.src[0]!), D = new TensorData(n);
    const x = new Float32Array(n.ne[0]);
    eachRow(n, ith, nth, (i1, i2, i3) => {
      x.fill(0);
      x[i1] = A.get(i1, 0, i2, i3);
      D.writeRow(x, i1, i2, i3);
    });
  },
};

const timestepEmbedding: CpuKernel = {
  supports: (n) => {
    const a = n.src[0], dim = opI32(n, 0);
    return !!a && a.type === F32 && n.type === F32 && dim > 0 && n.ne[0] >= dim && n.ne[1] === a.ne[0];
  },
  work: (n) => 8 * nelements(n),
  run: (n, ith, nth) => {
    const A = new TensorData(n.src[0]!), D = new TensorData(n);
    const dim = opI32(n, 0), maxPeriod = opI32(n, 1);
    const half = Math.floor(dim / 2);
    const logMax = f(Math.log(maxPeriod));
    const freq = new Float32Array(half);
    for (let j = 0; j < half; j++) freq[j] = Math.exp(f(f(-logMax * j) / half));
    const row = new Float32Array(n.ne[0]);
    eachRow(n, ith, nth, (i1, i2, i3) => {
      D.readRow(row, i1, i2, i3);
      const t = A.get(i1, 0, 0, 0);
      for (let j = 0; j < half; j++) {
        const arg = f(t * freq[j]);
        row[j] = Math.cos(arg);
        row[j + half] = Math.sin(arg);
      }
      if (dim % 2 !== 0) row[2 * half] = 0;
      D.writeRow(row, i1, i2, i3);
    });
  },
};

defineKernels({
  ARANGE: arange,
  FILL: fill,
  TRI: tri,
  DIAG: diag,
  TIMESTEP_EMBEDDING: timestepEmbedding,
});
