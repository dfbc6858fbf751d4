/**
 * Gated linear units (GLU sub-ops): dst = act(x) · g. Fused form: src0 holds [x | g] in each row
 * (or [g | x] when op_params[1] "swapped" is set) and dst has half its width; split form: x = src0,
 * g = src1 of the same shape and type. f32 and f16 (SWIGLU_OAI: f32 only), dst of src0's type;
 * computed in f32 as ggml does (GEGLU and GEGLU_QUICK through ggml's f16 GELU tables).
 * @module
 */

import { nelements, opF32, opI32, sameShape, type Tensor } from "../../../protocol/graph/tensor.ts";
import { GgmlType } from "../../../protocol/graph/types.ts";
import { TensorData } from "../tensor_data.ts";
import { eachRow, geluErfF32, geluQuickTableF16, geluTableF16, siluF32 } from "./common.ts";
import { type CpuKernel, defineKernels } from "./registry.ts";

const { F32, F16 } = GgmlType;
const f = Math.fround;

/** act(x)·g for one element pair, given the source type (ggml's f16 and f32 paths differ). */
type Gate = (x: number, g: number) => number;

const h16 = new Float16Array(1);
const u16 = new Uint16Array(h16.buffer);

function geglu(srcType: number): Gate {
  const t = geluTableF16();
  if (srcType === F16) {
    return (x, g) => {
      h16[0] = x;
      return t[u16[0]] * g;
    };
  }
  return (x, g) => {
    if (x <= -10) return 0;
    if (x >= 10) return x * g;
    h16[0] = x;
    return t[u16[0]] * g;
  };
}

function gegluQuick(): Gate {
  const t = geluQuickTableF16();
  return (x, g) => {
    h16[0] = x;
    return t[u16[0]] * g;
  };
}

function swigluOai(n: Tensor): Gate {
  const alpha = f(opF32(n, 2)), limit = f(opF32(n, 3));
  return (x, g) => {
    x = limit < x ? limit : x; // std::min(x, limit)
    g = g < -limit ? -limit : limit < g ? limit : g; // std::clamp(g, -limit, limit)
    const glu = f(x / f(1 + f(Math.exp(f(alpha * -x)))));
    return f(glu * f(g + 1));
  };
}

function gluKernel(types: ReadonlySet<number>, make: (n: Tensor) => Gate): CpuKernel {
  return {
    supports: (n) => {
      const a = n.src[0], b = n.src[1];
      if (!a || !types.has(a.type) || n.type !== a.type) return false;
      if (b) return b.type === a.type && sameShape(a, b) && sameShape(a, n);
      return n.ne[0] === Math.floor(a.ne[0] / 2) && n.ne[1] === a.ne[1] && n.ne[2] === a.ne[2] &&
        n.ne[3] === a.ne[3];
    },
    work: (n) => 4 * nelements(n),
    run: (n, ith, nth) => {
      const gate = make(n);
      const a = n.src[0]!, b = n.src[1];
      const A = new TensorData(a), B = b ? new TensorData(b) : null, D = new TensorData(n);
      const nc = n.ne[0];
      const swapped = opI32(n, 1) !== 0;
      const xs = new Float32Array(nc), gs = new Float32Array(nc);
      eachRow(n, ith, nth, (i1, i2, i3) => {
        if (B) {
          A.readRow(xs, i1, i2, i3);
          B.readRow(gs, i1, i2, i3);
        } else {
          A.readRow(xs, i1, i2, i3, 0, swapped ? nc : 0, nc);
          A.readRow(gs, i1, i2, i3, 0, swapped ? 0 : nc, nc);
        }
        for (let i = 0; i < nc; i++) xs[i] = gate(xs[i], gs[i]);
        D.writeRow(xs, i1, i2, i3);
      });
    },
  };
}

const BOTH: ReadonlySet<number> = new Set([F32, F16]);

defineKernels({
  REGLU: gluKernel(BOTH, () => (x, g) => x > 0 ? x * g : 0),
  GEGLU: gluKernel(BOTH, (n) => geglu(n.src[0]!.type)),
  SWIGLU: gluKernel(BOTH, () => (x, g) => siluF32(x) * g),
  SWIGLU_OAI: gluKernel(new Set([F32]), swigluOai),
  GEGLU_ERF: gluKernel(BOTH, () => (x, g) => geluErfF32(x) * g),
  GEGLU_QUICK: gluKernel(BOTH, gegluQuick),
});
