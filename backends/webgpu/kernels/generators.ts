/**
 * ARANGE, FILL, TRI and DIAG on WebGPU, through the element-wise template: ARANGE writes start +
 * step·i (op_params f32 start, stop, step; i the element's index in logical order), FILL the
 * constant op_params[0] (f32, f16), TRI keeps the lower/upper triangle of each matrix of src0 (f32;
 * op_params[0] is ggml_tri_type: 0 upper with diagonal, 1 upper, 2 lower with diagonal, 3 lower)
 * and zeros the rest, DIAG spreads the row vector src0 over a diagonal matrix (f32).
 * @module
 */

import { opF32, opI32 } from "../../../protocol/graph/tensor.ts";
import { simpleMap } from "./elementwise.ts";
import { defineKernels } from "./registry.ts";

const TRI = ["i0 >= i1", "i0 > i1", "i0 <= i1", "i0 < i1"];

defineKernels({
  ARANGE: simpleMap(
    0,
    () => "let e = i0 + p.ne0 * (i1 + p.ne1 * (i2 + p.ne2 * i3));\n  return p.start + p.step * f32(e);",
    (n) => [["start", "f32", opF32(n, 0)], ["step", "f32", opF32(n, 2)]],
  ),
  FILL: simpleMap(0, () => "return p.c;", (n) => [["c", "f32", opF32(n, 0)]]),
  TRI: simpleMap(
    1,
    (n) => `if (${TRI[opI32(n, 0)] ?? "false"}) { return at_s0(i0, i1, i2, i3); }\n  return 0.0;`,
  ),
  DIAG: simpleMap(1, () => "if (i0 == i1) { return at_s0(i0, 0u, i2, i3); }\n  return 0.0;"),
});
