/**
 * GET_ROWS and SET_ROWS on WebGPU. GET_ROWS: dst[:, i10, i11, i12] = src0[:, ids[i10, i11, i12],
 * i11, i12] with i32 ids (f32/f16/bf16 rows come out f32, i32 rows i32). SET_ROWS: dst[:, ids[i,
 * i02 % ne11, i03 % ne12], i02, i03] = src0[:, i, i02, i03] with i32 or i64 ids (the low word of an
 * i64 id is used); f16 into f16 moves bits. Ids outside the rows read or write nothing useful but
 * stay inside the bindings (WebGPU's robust access); ggml's CPU would abort. With repeated ids the
 * row written last is not defined (ggml's CPU: the last).
 * @module
 */

import { GgmlType } from "../../../protocol/graph/types.ts";
import { cpuSupports, mapFitsLarge, mapKernel, mapNode } from "./elementwise.ts";
import { elemStrides, type Kernel } from "./kernel.ts";
import { convert, rawCopy } from "./copy.ts";
import { defineKernels } from "./registry.ts";

const { I64 } = GgmlType;

const getRows: Kernel = {
  supports: (n) => cpuSupports(n) && mapNode(n, 2),
  // a large output is written in slices; the rows and ids must fit one binding each
  splitsLarge: (n, caps) => mapFitsLarge(n, [n.src[0]!, n.src[1]!], caps),
  build: (n, ctx) =>
    mapKernel({
      key: "GET_ROWS",
      dst: n,
      srcs: [n.src[0]!, n.src[1]!],
      body: "let r = u32(at_s1(i1, i2, i3, 0u));\n  return at_s0(i0, r, i2, i3);",
    }, ctx),
};

const setRows: Kernel = {
  supports: (n) => cpuSupports(n) && mapNode(n, 2) && (n.src[1]!.type !== I64 || n.src[1]!.offset % 8 === 0),
  build: (n, ctx) => {
    const a = n.src[0]!, ids = n.src[1]!;
    const sd = elemStrides(n)!;
    const dOff = ctx.elemOffset(n);
    const rowsEven = sd[0] === 1 && dOff % 2 === 0 && sd[1] % 2 === 0 && sd[2] % 2 === 0 && sd[3] % 2 === 0;
    return mapKernel({
      key: "SET_ROWS",
      dst: n,
      srcs: [a, ids],
      ne: [...a.ne],
      raw: rawCopy(a.type, n.type),
      rowsEven,
      dstIndex: "let r = u32(at_s1(i1, i2 % p.s1_ne1, i3 % p.s1_ne2, 0u));\n" +
        "  return p.d_off + i0 * p.sd0 + r * p.sd1 + i2 * p.sd2 + i3 * p.sd3;",
      body: `return ${convert("at_s0(i0, i1, i2, i3)", a.type, n.type)};`,
    }, ctx);
  },
};

defineKernels({ GET_ROWS: getRows, SET_ROWS: setRows });
