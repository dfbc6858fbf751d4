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
import { cpuSupports, mapBindLimit, mapKernel, mapNode } from "./elementwise.ts";
import { isContiguous, nbytes, type Tensor } from "../../../protocol/graph/tensor.ts";
import { type Dispatch, elemStrides, type Kernel } from "./kernel.ts";
import { convert, rawCopy } from "./copy.ts";
import { defineKernels } from "./registry.ts";

const { I64 } = GgmlType;

const GET_ROWS_BODY = "let r = u32(at_s1(i1, i2, i3, 0u));\n  return at_s0(i0, r, i2, i3);";

/** Matrix [.., .., i2, i3] of `t` as a tensor of its own (for binding slices). */
function matrix(t: Tensor, i2: number, i3: number): Tensor {
  return { ...t, ne: [t.ne[0], t.ne[1], 1, 1], offset: t.offset + i2 * t.nb[2] + i3 * t.nb[3] };
}

/** Ids [.., i2, i3] (row i2, plane i3 of the ids) as a tensor of its own. */
function idsRow(t: Tensor, i2: number, i3: number): Tensor {
  return { ...t, ne: [t.ne[0], 1, 1, 1], offset: t.offset + i2 * t.nb[1] + i3 * t.nb[2] };
}

const getRows: Kernel = {
  supports: (n) => cpuSupports(n) && mapNode(n, 2),
  // tensors over the binding limit: one dispatch group per matrix (i2, i3), each binding that
  // matrix of the rows and the output (the output's matrix itself in slices when packed)
  splitsLarge: (n, caps) => {
    const limit = mapBindLimit(caps);
    const a = matrix(n.src[0]!, 0, 0), d = matrix(n, 0, 0);
    return nbytes(a) <= limit && nbytes(idsRow(n.src[1]!, 0, 0)) <= limit &&
      (nbytes(d) <= limit || isContiguous(d));
  },
  build: (n, ctx) => {
    const a = n.src[0]!, ids = n.src[1]!;
    const limit = mapBindLimit(ctx.caps);
    if (nbytes(a) <= limit && nbytes(n) <= limit && nbytes(ids) <= limit) {
      return mapKernel({ key: "GET_ROWS", dst: n, srcs: [a, ids], body: GET_ROWS_BODY }, ctx);
    }
    const out: Dispatch[] = [];
    for (let i3 = 0; i3 < n.ne[3]; i3++) {
      for (let i2 = 0; i2 < n.ne[2]; i2++) {
        out.push(...mapKernel({
          key: "GET_ROWS",
          dst: matrix(n, i2, i3),
          srcs: [matrix(a, i2, i3), idsRow(ids, i2, i3)],
          body: GET_ROWS_BODY,
        }, ctx));
      }
    }
    return out;
  },
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
