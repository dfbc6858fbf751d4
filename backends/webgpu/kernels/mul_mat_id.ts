/**
 * MUL_MAT_ID (mixture of experts) on WebGPU: dst[:, s, t] = a[:, :, ids[s, t]] · b[:, s % ne11, t]
 * for each slot s < ids.ne[0] and token t, with i32 expert ids; types as MUL_MAT (f32, f16 or bf16
 * experts, f32 activations or the experts' type). Each (slot, token) pair is one mat-vec over its
 * expert's rows (MUL_MAT's mat-vec kernel with 16-byte loads where rows allow), so decoding reads
 * each chosen expert once per token. An id outside [0, n_expert) gives a zero column (the CPU fails
 * the graph; a GPU kernel cannot, and must not read outside the experts).
 * @module
 */

import { GgmlType, typeName } from "../../../protocol/graph/types.ts";
import type { Tensor } from "../../../protocol/graph/tensor.ts";
import { elementAddressable } from "./access.ts";
import {
  type BindInfo,
  declareTensor,
  type Dispatch,
  elemStrides,
  type Field,
  grid,
  isFloat,
  packFields,
} from "./kernel.ts";
import { matvecCode, rowsPerGroup } from "./mul_mat.ts";
import { defineKernels } from "./registry.ts";

const { F32, I32 } = GgmlType;

/** Whether MUL_MAT_ID node `n` is what this kernel computes. */
export function supportsMulMatId(n: Tensor): boolean {
  const a = n.src[0], b = n.src[1], ids = n.src[2];
  if (!a || !b || !ids || n.type !== F32 || ids.type !== I32 || !isFloat(a.type)) return false;
  if (b.type !== F32 && b.type !== a.type) return false;
  if (!elementAddressable(a, b, ids, n)) return false;
  if (a.ne[0] !== b.ne[0] || a.ne[3] !== 1 || b.ne[3] !== 1 || ids.ne[2] !== 1 || ids.ne[3] !== 1) {
    return false;
  }
  if (ids.ne[1] !== b.ne[2] || b.ne[1] <= 0 || ids.ne[0] % b.ne[1] !== 0 || n.ne[0] !== a.ne[1]) return false;
  if (n.ne[1] !== ids.ne[0] || n.ne[2] !== b.ne[2] || n.ne[3] !== 1) return false;
  return grid(Math.ceil(a.ne[1] / rowsPerGroup(1)) * ids.ne[0] * ids.ne[1]) !== null;
}

/** 16-byte loads when expert rows and activation rows are packed and aligned, else 1. */
function vecWidth(n: Tensor, info: BindInfo): number {
  const a = n.src[0]!, b = n.src[1]!;
  if (b.type !== F32) return 1;
  const w = a.type === F32 ? 4 : 8;
  const sa = elemStrides(a)!, sb = elemStrides(b)!;
  if (sa[0] !== 1 || sb[0] !== 1 || a.ne[0] % w !== 0) return 1;
  if (sa[1] % w !== 0 || sa[2] % w !== 0 || sb[1] % 4 !== 0 || sb[2] % 4 !== 0) return 1;
  if (info.elemOffset(a) % w !== 0 || info.elemOffset(b) % 4 !== 0) return 1;
  return w;
}

/** The dispatch computing MUL_MAT_ID node `n`. */
export function mulMatIdDispatch(n: Tensor, info: BindInfo): Dispatch {
  const a = n.src[0]!, b = n.src[1]!, ids = n.src[2]!;
  const vec = vecWidth(n, info);
  const va = vec, vb = vec === 8 ? 4 : vec;
  const sa = elemStrides(a)!, sb = elemStrides(b)!, sd = elemStrides(n)!, si = elemStrides(ids)!;
  const fields: Field[] = [
    ["a_off", "u32", info.elemOffset(a) / va],
    ["b_off", "u32", info.elemOffset(b) / vb],
    ["d_off", "u32", info.elemOffset(n)],
    ["K", "u32", a.ne[0]],
    ["M", "u32", a.ne[1]],
    ["sa0", "u32", sa[0]],
    ["sa1", "u32", sa[1] / va],
    ["sa2", "u32", sa[2] / va],
    ["sb0", "u32", sb[0]],
    ["sb1", "u32", sb[1] / vb],
    ["sb2", "u32", sb[2] / vb],
    ["sd0", "u32", sd[0]],
    ["sd1", "u32", sd[1]],
    ["sd2", "u32", sd[2]],
    ["i_off", "u32", info.elemOffset(ids)],
    ["si0", "u32", si[0]],
    ["si1", "u32", si[1]],
    ["n_used", "u32", ids.ne[0]],
    ["ne11", "u32", b.ne[1]],
    ["n_expert", "u32", a.ne[2]],
    ["batches", "u32", ids.ne[0] * ids.ne[1]],
  ];
  const batch = {
    // an invalid expert id: a zero column, read from expert 0 and scaled away
    prologue: `  let slot = bt % p.n_used;\n  let tok = bt / p.n_used;\n` +
      `  let e = ld_ids(p.i_off + slot * p.si0 + tok * p.si1);\n` +
      `  let ok = e >= 0 && u32(e) < p.n_expert;\n` +
      `  let ab = p.a_off + select(0u, u32(e), ok) * p.sa2;\n` +
      `  let bb = p.b_off + (slot % p.ne11) * p.sb1 + tok * p.sb2;\n` +
      `  let db = p.d_off + slot * p.sd1 + tok * p.sd2;\n`,
    decl: declareTensor("ids", I32, 3, false) + `@group(0) @binding(4) var<uniform> p: P;\n`,
    dstBinding: 2,
  };
  let code = matvecCode(a.type, b.type, 1, vec, fields, batch);
  // columns of an invalid id are zero
  code = code.replace(
    "d[db + (row0 + r) * p.sd0 + j * p.sd1] = red[t];",
    "d[db + (row0 + r) * p.sd0] = select(0.0, red[t], ok);",
  );
  return {
    key: `mul_mat_id:${typeName(a.type)}:${typeName(b.type)}:${vec}`,
    code,
    bindings: [
      { tensor: a, write: false },
      { tensor: b, write: false },
      { tensor: n, write: true },
      { tensor: ids, write: false },
    ],
    params: packFields(fields),
    groups: grid(Math.ceil(a.ne[1] / rowsPerGroup(1)) * ids.ne[0] * ids.ne[1])!,
  };
}

defineKernels({
  MUL_MAT_ID: { supports: (n) => supportsMulMatId(n), build: (n, ctx) => [mulMatIdDispatch(n, ctx)] },
});
