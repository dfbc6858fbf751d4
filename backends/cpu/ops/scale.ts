/**
 * SCALE: dst = src·s + b, with s = op_params[0] and b = op_params[1] as f32 (ggml_scale_bias).
 * @module
 */

import { opF32, sameShape } from "../../../protocol/graph/tensor.ts";
import { GgmlType } from "../../../protocol/graph/types.ts";
import { loadF32, storeF32 } from "../tensor_data.ts";
import { defineKernels } from "./registry.ts";

defineKernels({
  SCALE: {
    supports: (n) =>
      !!n.src[0] && n.type === GgmlType.F32 && n.src[0].type === GgmlType.F32 && sameShape(n, n.src[0]),
    run: (n) => {
      const s = Math.fround(opF32(n, 0)), b = Math.fround(opF32(n, 1));
      const x = loadF32(n.src[0]!);
      for (let i = 0; i < x.length; i++) x[i] = Math.fround(x[i] * s) + b;
      storeF32(n, x);
    },
  },
});
