/**
 * CONCAT, REPEAT, PAD and ROLL on WebGPU, through the element-wise template. CONCAT (src1 after
 * src0 along op_params[0]) and REPEAT (src0 tiled) move values unchanged (f16/bf16 as bits; f32,
 * f16, bf16, i32). PAD (f32): lp/rp per dimension in op_params[0..7], zeros outside src0, or with
 * op_params[8] "circular" wrapping around it. ROLL (f32): dst[i] = src0[i - shift] per dimension,
 * wrapping (shifts in op_params[0..3]).
 * @module
 */

import { opI32, type Tensor } from "../../../protocol/graph/tensor.ts";
import { simpleMap } from "./elementwise.ts";
import type { Field, Kernel } from "./kernel.ts";
import { cpuSupports, mapFitsLarge, mapKernel, mapNode } from "./elementwise.ts";
import { asI32Pairs, i64Pairs, rawCopy } from "./copy.ts";
import { defineKernels } from "./registry.ts";

const I = ["i0", "i1", "i2", "i3"];

const concat: Kernel = {
  supports: (n) => cpuSupports(n) && i64Pairs(n, 2) && opI32(n, 0) >= 0 && opI32(n, 0) < 4,
  splitsLarge: (n, caps) => mapFitsLarge(n, [n.src[0]!, n.src[1]!], caps),
  build: (node, ctx) => {
    // i64 as i32 pairs: dim 0 (and its split point) twice as long
    const n = asI32Pairs(node)!;
    const a = asI32Pairs(node.src[0]!)!, b = asI32Pairs(node.src[1]!)!;
    const d = opI32(node, 0);
    const shifted = I.map((v, k) => k === d ? `${v} - p.s0_ne${d}` : v).join(", ");
    return mapKernel({
      key: `CONCAT_${d}`,
      dst: n,
      srcs: [a, b],
      raw: rawCopy(a.type, n.type),
      body: `if (i${d} < p.s0_ne${d}) { return at_s0(i0, i1, i2, i3); }\n  return at_s1(${shifted});`,
    }, ctx);
  },
};

const repeat: Kernel = {
  supports: (n) => cpuSupports(n) && mapNode(n, 1),
  splitsLarge: (n, caps) => mapFitsLarge(n, [n.src[0]!], caps),
  build: (n, ctx) =>
    mapKernel({
      key: "REPEAT",
      dst: n,
      srcs: [n.src[0]!],
      raw: rawCopy(n.src[0]!.type, n.type),
      body: "return bc_s0(i0, i1, i2, i3);",
    }, ctx),
};

// i mod m for a signed i, with unsigned remainders only (signed % of negatives misbehaved on llvmpipe)
const WRAP = "fn wrap(i: i32, m: u32) -> u32 {\n  if (i >= 0) { return u32(i) % m; }\n" +
  "  let r = u32(-i) % m;\n  return select(m - r, 0u, r == 0u);\n}\n";

const pad = simpleMap(
  1,
  () =>
    `let j = vec4<i32>(i32(i0) - p.lp0, i32(i1) - p.lp1, i32(i2) - p.lp2, i32(i3) - p.lp3);
  let ne = vec4<i32>(i32(p.s0_ne0), i32(p.s0_ne1), i32(p.s0_ne2), i32(p.s0_ne3));
  if (p.circular != 0u) {
    return at_s0(wrap(j.x, p.s0_ne0), wrap(j.y, p.s0_ne1), wrap(j.z, p.s0_ne2), wrap(j.w, p.s0_ne3));
  }
  if (any(j < vec4<i32>(0)) || any(j >= ne)) { return 0.0; }
  return at_s0(u32(j.x), u32(j.y), u32(j.z), u32(j.w));`,
  (n: Tensor): Field[] => [
    ["lp0", "i32", opI32(n, 0)],
    ["lp1", "i32", opI32(n, 2)],
    ["lp2", "i32", opI32(n, 4)],
    ["lp3", "i32", opI32(n, 6)],
    ["circular", "u32", opI32(n, 8) !== 0 ? 1 : 0],
  ],
  undefined,
  WRAP,
);

const roll = simpleMap(
  1,
  () =>
    "return at_s0(wrap(i32(i0) - p.k0, p.ne0), wrap(i32(i1) - p.k1, p.ne1), wrap(i32(i2) - p.k2, p.ne2), " +
    "wrap(i32(i3) - p.k3, p.ne3));",
  (n: Tensor): Field[] =>
    [0, 1, 2, 3].map((i) => [`k${i}`, "i32", opI32(n, i) % Math.max(1, n.ne[i])] as Field),
  undefined,
  WRAP,
);

defineKernels({ CONCAT: concat, REPEAT: repeat, PAD: pad, ROLL: roll });
