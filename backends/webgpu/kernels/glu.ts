/**
 * GLU sub-ops on WebGPU: dst = act(x)·g, fused (src0 rows hold [x | g], or [g | x] when
 * op_params[1] "swapped" is set; dst half as wide) or split (x = src0, g = src1), computed in f32
 * through the element-wise template. SWIGLU_OAI clamps x to ≤ limit and g to ±limit (op_params[3])
 * with alpha = op_params[2]. Types are ggml CPU's (f32, f16; SWIGLU_OAI f32).
 * @module
 */

import { opF32, opI32, type Tensor } from "../../../protocol/graph/tensor.ts";
import { simpleMap } from "./elementwise.ts";
import type { Field, Kernel } from "./kernel.ts";
import { defineKernels } from "./registry.ts";
import { ACT_HELPERS } from "./unary.ts";

const SWIGLU_OAI = `fn act_swiglu_oai(x0: f32, g0: f32) -> f32 {
  let x = min(x0, p.limit);
  let g = clamp(g0, -p.limit, p.limit);
  return x / (1.0 + exp(p.alpha * -x)) * (g + 1.0);
}
`;

function glu(expr: string, fields?: (n: Tensor) => Field[], helpers = ""): Kernel {
  return simpleMap(
    (n) => n.src[1] ? 2 : 1,
    (n) => {
      const load = n.src[1]
        ? "let x = at_s0(i0, i1, i2, i3);\n  let g = at_s1(i0, i1, i2, i3);"
        : "let sx = select(0u, p.ne0, p.swapped != 0u);\n  let sg = select(p.ne0, 0u, p.swapped != 0u);\n" +
          "  let x = at_s0(i0 + sx, i1, i2, i3);\n  let g = at_s0(i0 + sg, i1, i2, i3);";
      return `${load}\n  return ${expr};`;
    },
    (n) => [["swapped", "u32", opI32(n, 1) !== 0 ? 1 : 0], ...(fields?.(n) ?? [])],
    undefined,
    ACT_HELPERS + helpers,
  );
}

defineKernels({
  REGLU: glu("select(0.0, x * g, x > 0.0)"),
  GEGLU: glu("act_gelu(x) * g"),
  SWIGLU: glu("act_silu(x) * g"),
  SWIGLU_OAI: glu(
    "act_swiglu_oai(x, g)",
    (n) => [["alpha", "f32", opF32(n, 2)], ["limit", "f32", opF32(n, 3)]],
    SWIGLU_OAI,
  ),
  GEGLU_ERF: glu("act_gelu_erf(x) * g"),
  GEGLU_QUICK: glu("act_gelu_quick(x) * g"),
});
