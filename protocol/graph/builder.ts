/**
 * A ggml-like graph builder: tensors and ops with the shapes, strides, sources and op_params that
 * ggml.c (ggml-org/ggml d99724f2) gives them, so that any ggml RPC server — graphwire's or ggml's —
 * decodes them with ggml's own layouts. Each op checks what ggml asserts, because a ggml server
 * aborts on a graph that breaks those rules.
 *
 * Tensors are created without data; a scheduler or allocator gives them a buffer and an offset
 * before the graph runs. Every tensor gets a process-unique id (what ggml's client sends as the
 * tensor's pointer). {@linkcode GraphBuilder.build} returns a {@linkcode Graph} with a fresh uid.
 *
 * @example
 * ```ts
 * const b = new GraphBuilder();
 * const w = b.newTensor2d(GgmlType.F32, 4, 3, "w");
 * const x = b.setInput(b.newTensor1d(GgmlType.F32, 4, "x"));
 * const y = b.scale(b.mulMat(w, x), 0.5);
 * const g = b.build(y); // g.nodes: [MUL_MAT, SCALE], g.uid: fresh
 * ```
 * @module
 */

import { ValidationError } from "../errors.ts";
import { MAX_NAME } from "../wire/constants.ts";
import { type Graph, newGraph, newGraphUid } from "./graph.ts";
import { GgmlOp, GluOp, UnaryOp } from "./ops.ts";
import {
  canRepeat,
  type Dims,
  isContiguous,
  isContiguous1,
  isContiguousRows,
  isTransposed,
  nbytes,
  nelements,
  newTensor,
  rowSize,
  sameShape,
  setOpF32,
  setOpI32,
  type Tensor,
  TensorFlag,
} from "./tensor.ts";
import { GgmlType, typeInfo } from "./types.ts";

/** `enum ggml_prec`: the precision hint MUL_MAT and FLASH_ATTN_EXT carry. */
export const GgmlPrec = { DEFAULT: 0, F32: 10 } as const;

/** `GGML_ROPE_TYPE_*`: rope modes. */
export const RopeType = { NORMAL: 0, NEOX: 2, MROPE: 8, VISION: 24, IMROPE: 40 } as const;

/** The YaRN and frequency parameters of `ggml_rope_ext`, with ggml_rope's defaults. */
export interface RopeParams {
  nCtxOrig?: number;
  freqBase?: number;
  freqScale?: number;
  extFactor?: number;
  attnFactor?: number;
  betaFast?: number;
  betaSlow?: number;
  /** Frequency factors (src[2]), f32, at least n_dims/2 elements. */
  freqFactors?: Tensor | null;
}

let lastTensorId = 0n;

/** A fresh, process-unique tensor id (never 0): what ggml's client sends as a tensor's pointer. */
export function newTensorId(): bigint {
  lastTensorId += 1n;
  return lastTensorId;
}

/** Gives `g` a new uid: call after changing a graph in place so that no one re-runs the old one. */
export function touchGraph(g: Graph): Graph {
  g.uid = newGraphUid();
  return g;
}

function check(cond: boolean, what: string): asserts cond {
  if (!cond) throw new ValidationError(`graph builder: ${what}`);
}

function cutName(name: string): string {
  // ggml keeps GGML_MAX_NAME - 1 bytes; names here are ASCII in practice, cut by bytes anyway.
  const bytes = new TextEncoder().encode(name);
  if (bytes.length < MAX_NAME) return name;
  return new TextDecoder().decode(bytes.subarray(0, MAX_NAME - 1)).replace(/\uFFFD+$/, "");
}

/** `ggml_is_vector`. */
export function isVector(t: Tensor): boolean {
  return t.ne[1] === 1 && t.ne[2] === 1 && t.ne[3] === 1;
}

/** `ggml_is_matrix`. */
export function isMatrix(t: Tensor): boolean {
  return t.ne[2] === 1 && t.ne[3] === 1;
}

/** `ggml_is_padded_1d`. */
export function isPadded1d(t: Tensor): boolean {
  return t.nb[0] === typeInfo(t.type)!.typeSize && t.nb[2] === t.nb[1] * t.ne[1] &&
    t.nb[3] === t.nb[2] * t.ne[2];
}

/** The tensors of a graph under construction, ggml's context and cgraph in one. */
export class GraphBuilder {
  /** Nodes expanded so far, in execution order (ggml_build_forward_expand order). */
  readonly nodes: Tensor[] = [];
  /**
   * A placement hint for the tensors created from now on (e.g. the layer being built); a scheduler
   * can read it back with {@linkcode hintOf}. undefined: no hint.
   */
  hint: number | undefined = undefined;
  #hints = new Map<Tensor, number>();
  #visited = new Set<Tensor>();

  /** The hint that was set when `t` was created, if any. */
  hintOf(t: Tensor): number | undefined {
    return this.#hints.get(t);
  }

  // ---- tensors -------------------------------------------------------------------------------

  /**
   * `ggml_new_tensor_impl`: a tensor of `type` and `ne` (1 to 4 dims), contiguous, or a view of
   * `viewSrc` at `viewOffs` (chains of views collapse onto the base tensor, as in ggml).
   */
  #tensor(type: number, ne: number[], viewSrc: Tensor | null = null, viewOffs = 0): Tensor {
    check(typeInfo(type) !== undefined, `invalid type ${type}`);
    check(ne.length >= 1 && ne.length <= 4, `${ne.length} dims`);
    for (const n of ne) check(Number.isSafeInteger(n) && n >= 0, `bad dimension ${n}`);
    if (viewSrc && viewSrc.viewSrc) {
      viewOffs += viewSrc.viewOffs;
      viewSrc = viewSrc.viewSrc;
    }
    let dataSize = rowSize(type, ne[0]);
    for (let i = 1; i < ne.length; i++) dataSize *= ne[i];
    check(
      !viewSrc || dataSize === 0 || dataSize + viewOffs <= nbytes(viewSrc),
      `view of ${dataSize} bytes at ${viewOffs} runs past its source's ${viewSrc ? nbytes(viewSrc) : 0}`,
    );
    const t = newTensor({ id: newTensorId(), type, ne, viewSrc, viewOffs });
    if (this.hint !== undefined) this.#hints.set(t, this.hint);
    return t;
  }

  /** `ggml_new_tensor`: a leaf of `type` with `ne` elements per dim. */
  newTensor(type: number, ne: number[], name = ""): Tensor {
    const t = this.#tensor(type, ne);
    t.name = cutName(name);
    return t;
  }

  /** `ggml_new_tensor_1d`. */
  newTensor1d(type: number, ne0: number, name = ""): Tensor {
    return this.newTensor(type, [ne0], name);
  }

  /** `ggml_new_tensor_2d`. */
  newTensor2d(type: number, ne0: number, ne1: number, name = ""): Tensor {
    return this.newTensor(type, [ne0, ne1], name);
  }

  /** `ggml_new_tensor_3d`. */
  newTensor3d(type: number, ne0: number, ne1: number, ne2: number, name = ""): Tensor {
    return this.newTensor(type, [ne0, ne1, ne2], name);
  }

  /** `ggml_new_tensor_4d`. */
  newTensor4d(type: number, ne0: number, ne1: number, ne2: number, ne3: number, name = ""): Tensor {
    return this.newTensor(type, [ne0, ne1, ne2, ne3], name);
  }

  /** `ggml_dup_tensor`: a new tensor of `a`'s type and shape (contiguous). */
  dupTensor(a: Tensor): Tensor {
    return this.#tensor(a.type, [...a.ne]);
  }

  /** `ggml_view_tensor`: a view of all of `a` with its strides. */
  viewTensor(a: Tensor): Tensor {
    const t = this.#tensor(a.type, [...a.ne], a, 0);
    t.name = cutName(`${a.name} (view)`);
    t.nb = [...a.nb] as Dims;
    return t;
  }

  /** `ggml_set_name`. */
  setName(t: Tensor, name: string): Tensor {
    t.name = cutName(name);
    return t;
  }

  /** `ggml_set_input`: the client writes this tensor's data before each run. */
  setInput(t: Tensor): Tensor {
    t.flags |= TensorFlag.INPUT;
    return t;
  }

  /** `ggml_set_output`: the client reads this tensor after a run; its memory is not reused. */
  setOutput(t: Tensor): Tensor {
    t.flags |= TensorFlag.OUTPUT;
    return t;
  }

  // ---- views ---------------------------------------------------------------------------------

  #view(a: Tensor, ne: number[], offset: number): Tensor {
    const t = this.#tensor(a.type, ne, a, offset);
    t.name = cutName(`${a.name} (view)`);
    // op_params hold the offset as a size_t.
    new DataView(t.opParams.buffer).setBigUint64(0, BigInt(offset), true);
    t.op = GgmlOp.VIEW;
    t.src[0] = a;
    return t;
  }

  /** `ggml_view_1d`. */
  view1d(a: Tensor, ne0: number, offset: number): Tensor {
    return this.#view(a, [ne0], offset);
  }

  /** `ggml_view_2d`. */
  view2d(a: Tensor, ne0: number, ne1: number, nb1: number, offset: number): Tensor {
    const t = this.#view(a, [ne0, ne1], offset);
    t.nb[1] = nb1;
    t.nb[2] = nb1 * ne1;
    t.nb[3] = t.nb[2];
    return t;
  }

  /** `ggml_view_3d`. */
  view3d(a: Tensor, ne0: number, ne1: number, ne2: number, nb1: number, nb2: number, offset: number): Tensor {
    const t = this.#view(a, [ne0, ne1, ne2], offset);
    t.nb[1] = nb1;
    t.nb[2] = nb2;
    t.nb[3] = nb2 * ne2;
    return t;
  }

  /** `ggml_view_4d`. */
  view4d(
    a: Tensor,
    ne0: number,
    ne1: number,
    ne2: number,
    ne3: number,
    nb1: number,
    nb2: number,
    nb3: number,
    offset: number,
  ): Tensor {
    const t = this.#view(a, [ne0, ne1, ne2, ne3], offset);
    t.nb[1] = nb1;
    t.nb[2] = nb2;
    t.nb[3] = nb3;
    return t;
  }

  #reshape(a: Tensor, ne: number[]): Tensor {
    check(isContiguous(a), `reshape of non-contiguous "${a.name}"`);
    check(nelements(a) === ne.reduce((x, y) => x * y, 1), `reshape changes the element count`);
    const t = this.#tensor(a.type, ne, a, 0);
    t.name = cutName(`${a.name} (reshaped)`);
    t.op = GgmlOp.RESHAPE;
    t.src[0] = a;
    return t;
  }

  /** `ggml_reshape`: `a` with `b`'s shape. */
  reshape(a: Tensor, b: Tensor): Tensor {
    check(isContiguous(a), `reshape of non-contiguous "${a.name}"`);
    check(nelements(a) === nelements(b), `reshape changes the element count`);
    const t = this.#tensor(a.type, [...b.ne], a, 0);
    t.name = cutName(`${a.name} (reshaped)`);
    t.op = GgmlOp.RESHAPE;
    t.src[0] = a;
    return t;
  }

  /** `ggml_reshape_1d`. */
  reshape1d(a: Tensor, ne0: number): Tensor {
    return this.#reshape(a, [ne0]);
  }

  /** `ggml_reshape_2d`. */
  reshape2d(a: Tensor, ne0: number, ne1: number): Tensor {
    return this.#reshape(a, [ne0, ne1]);
  }

  /** `ggml_reshape_3d`. */
  reshape3d(a: Tensor, ne0: number, ne1: number, ne2: number): Tensor {
    return this.#reshape(a, [ne0, ne1, ne2]);
  }

  /** `ggml_reshape_4d`. */
  reshape4d(a: Tensor, ne0: number, ne1: number, ne2: number, ne3: number): Tensor {
    return this.#reshape(a, [ne0, ne1, ne2, ne3]);
  }

  /** `ggml_permute`: dim i of `a` becomes dim axis_i of the result. */
  permute(a: Tensor, axis0: number, axis1: number, axis2: number, axis3: number): Tensor {
    const axes = [axis0, axis1, axis2, axis3];
    for (const x of axes) check(Number.isInteger(x) && x >= 0 && x < 4, `permute axis ${x}`);
    check(new Set(axes).size === 4, `permute axes ${axes} repeat`);
    const t = this.viewTensor(a);
    t.name = cutName(`${a.name} (permuted)`);
    for (let i = 0; i < 4; i++) {
      t.ne[axes[i]] = a.ne[i];
      t.nb[axes[i]] = a.nb[i];
    }
    t.op = GgmlOp.PERMUTE;
    t.src[0] = a;
    for (let i = 0; i < 4; i++) setOpI32(t, i, axes[i]);
    return t;
  }

  /** `ggml_transpose`: swaps dims 0 and 1. */
  transpose(a: Tensor): Tensor {
    const t = this.viewTensor(a);
    t.name = cutName(`${a.name} (transposed)`);
    t.ne[0] = a.ne[1];
    t.ne[1] = a.ne[0];
    t.nb[0] = a.nb[1];
    t.nb[1] = a.nb[0];
    t.op = GgmlOp.TRANSPOSE;
    t.src[0] = a;
    return t;
  }

  // ---- copies --------------------------------------------------------------------------------

  /** `ggml_dup`: a contiguous copy. */
  dup(a: Tensor): Tensor {
    const t = this.dupTensor(a);
    t.op = GgmlOp.DUP;
    t.src[0] = a;
    return t;
  }

  /** `ggml_cont`: a contiguous copy of `a`. */
  cont(a: Tensor): Tensor {
    const t = this.dupTensor(a);
    t.name = cutName(`${a.name} (cont)`);
    t.op = GgmlOp.CONT;
    t.src[0] = a;
    return t;
  }

  /** `ggml_cont_4d` (and `_1d`.. `_3d` with trailing 1s): a contiguous copy with a new shape. */
  cont4d(a: Tensor, ne0: number, ne1 = 1, ne2 = 1, ne3 = 1): Tensor {
    check(nelements(a) === ne0 * ne1 * ne2 * ne3, `cont_4d changes the element count`);
    const t = this.#tensor(a.type, [ne0, ne1, ne2, ne3]);
    t.name = cutName(`${a.name} (cont)`);
    t.op = GgmlOp.CONT;
    t.src[0] = a;
    return t;
  }

  /** `ggml_cpy`: writes `a` (converted to b's type) into `b`; the result is a view of `b`. */
  cpy(a: Tensor, b: Tensor): Tensor {
    check(nelements(a) === nelements(b), `cpy between ${nelements(a)} and ${nelements(b)} elements`);
    const t = this.viewTensor(b);
    t.name = cutName(b.name ? `${b.name} (copy of ${a.name})` : `${a.name} (copy)`);
    t.op = GgmlOp.CPY;
    t.src[0] = a;
    t.src[1] = b;
    return t;
  }

  /** `ggml_cast`: a copy of `a` in `type`. */
  cast(a: Tensor, type: number): Tensor {
    const t = this.#tensor(type, [...a.ne]);
    t.name = cutName(`${a.name} (copy)`);
    t.op = GgmlOp.CPY;
    t.src[0] = a;
    t.src[1] = t;
    return t;
  }

  // ---- element-wise --------------------------------------------------------------------------

  #binary(op: number, a: Tensor, b: Tensor): Tensor {
    check(canRepeat(b, a), `${b.ne} cannot broadcast to ${a.ne}`);
    const t = this.dupTensor(a);
    t.op = op;
    t.src[0] = a;
    t.src[1] = b;
    return t;
  }

  /** `ggml_add`: a + b, b broadcast. */
  add(a: Tensor, b: Tensor): Tensor {
    return this.#binary(GgmlOp.ADD, a, b);
  }

  /** `ggml_sub`. */
  sub(a: Tensor, b: Tensor): Tensor {
    return this.#binary(GgmlOp.SUB, a, b);
  }

  /** `ggml_mul`. */
  mul(a: Tensor, b: Tensor): Tensor {
    return this.#binary(GgmlOp.MUL, a, b);
  }

  /** `ggml_div`. */
  div(a: Tensor, b: Tensor): Tensor {
    return this.#binary(GgmlOp.DIV, a, b);
  }

  /** `ggml_scale_bias`: a·s + b (ggml_scale with b = 0). */
  scale(a: Tensor, s: number, b = 0): Tensor {
    check(isPadded1d(a), `scale of a tensor that is not padded 1d`);
    const t = this.dupTensor(a);
    setOpF32(t, 0, s);
    setOpF32(t, 1, b);
    t.op = GgmlOp.SCALE;
    t.src[0] = a;
    return t;
  }

  /** `ggml_unary`: a unary op (`UnaryOp`) applied element-wise. */
  unary(a: Tensor, op: number): Tensor {
    check(isContiguousRows(a), `unary op on a tensor whose rows are not contiguous`);
    const t = this.dupTensor(a);
    setOpI32(t, 0, op);
    t.op = GgmlOp.UNARY;
    t.src[0] = a;
    return t;
  }

  /** `ggml_silu`. */
  silu(a: Tensor): Tensor {
    return this.unary(a, UnaryOp.SILU);
  }

  /** `ggml_gelu`. */
  gelu(a: Tensor): Tensor {
    return this.unary(a, UnaryOp.GELU);
  }

  /**
   * `ggml_glu_impl`: a gated linear unit (`GluOp`). With `b` null, `a` holds both halves along dim 0
   * (`swapped` picks which half is gated); with `b`, `a` is gated by `b` (the `_split` variants).
   */
  glu(a: Tensor, b: Tensor | null, op: number, swapped = false): Tensor {
    check(isContiguous1(a), `glu of a tensor that is not contiguous_1`);
    if (b) {
      check(isContiguous1(b), `glu of a tensor that is not contiguous_1`);
      check(sameShape(a, b), `glu halves of different shapes`);
      check(a.type === b.type, `glu halves of different types`);
    }
    const ne = b ? [...a.ne] : [Math.trunc(a.ne[0] / 2), a.ne[1], a.ne[2], a.ne[3]];
    const t = this.#tensor(a.type, ne);
    setOpI32(t, 0, op);
    setOpI32(t, 1, swapped ? 1 : 0);
    t.op = GgmlOp.GLU;
    t.src[0] = a;
    t.src[1] = b;
    return t;
  }

  /** `ggml_swiglu` (one tensor holding both halves). */
  swiglu(a: Tensor): Tensor {
    return this.glu(a, null, GluOp.SWIGLU);
  }

  /** `ggml_swiglu_split`: silu(a) · b. */
  swigluSplit(a: Tensor, b: Tensor): Tensor {
    return this.glu(a, b, GluOp.SWIGLU);
  }

  /** `ggml_geglu` (one tensor holding both halves). */
  geglu(a: Tensor): Tensor {
    return this.glu(a, null, GluOp.GEGLU);
  }

  /** `ggml_geglu_split`: gelu(a) · b. */
  gegluSplit(a: Tensor, b: Tensor): Tensor {
    return this.glu(a, b, GluOp.GEGLU);
  }

  // ---- normalisation, matmul, attention ------------------------------------------------------

  /** `ggml_norm`: (x - mean) / sqrt(var + eps) per row. */
  norm(a: Tensor, eps: number): Tensor {
    const t = this.dupTensor(a);
    setOpF32(t, 0, eps);
    t.op = GgmlOp.NORM;
    t.src[0] = a;
    return t;
  }

  /** `ggml_rms_norm`: x / sqrt(mean(x²) + eps) per row. */
  rmsNorm(a: Tensor, eps: number): Tensor {
    const t = this.dupTensor(a);
    setOpF32(t, 0, eps);
    t.op = GgmlOp.RMS_NORM;
    t.src[0] = a;
    return t;
  }

  /** `ggml_mul_mat`: result[i, j] = Σ_k a[k, i] · b[k, j], f32, a broadcast over dims 2 and 3. */
  mulMat(a: Tensor, b: Tensor): Tensor {
    check(
      a.ne[0] === b.ne[0] && b.ne[2] % a.ne[2] === 0 && b.ne[3] % a.ne[3] === 0,
      `mul_mat of [${a.ne}] and [${b.ne}]`,
    );
    check(!isTransposed(a), `mul_mat with a transposed first operand`);
    const t = this.#tensor(GgmlType.F32, [a.ne[1], b.ne[1], b.ne[2], b.ne[3]]);
    t.op = GgmlOp.MUL_MAT;
    t.src[0] = a;
    t.src[1] = b;
    return t;
  }

  /** `ggml_mul_mat_set_prec`. */
  mulMatSetPrec(t: Tensor, prec: number): Tensor {
    check(t.op === GgmlOp.MUL_MAT, `mulMatSetPrec on a ${t.op} node`);
    setOpI32(t, 0, prec);
    return t;
  }

  /**
   * `ggml_rope_ext`: rotary position embedding of `a` [head_dim, n_head, n_tokens, 1] by the i32
   * positions `pos` [n_tokens].
   */
  ropeExt(a: Tensor, pos: Tensor, nDims: number, mode: number, p: RopeParams = {}): Tensor {
    check((mode & 1) === 0, `rope mode & 1 is no longer supported`);
    check(isVector(pos) && pos.type === GgmlType.I32, `rope positions must be an i32 vector`);
    const mrope = (mode & RopeType.MROPE) !== 0;
    check(mrope ? a.ne[2] * 4 === pos.ne[0] : a.ne[2] === pos.ne[0], `rope needs one position per row`);
    check(!mrope, `multi-section rope needs ropeMulti (not built here)`);
    const c = p.freqFactors ?? null;
    if (c) check(c.type === GgmlType.F32 && c.ne[0] >= nDims / 2, `rope frequency factors`);
    const t = this.dupTensor(a);
    setOpI32(t, 0, 0); // n_past
    setOpI32(t, 1, nDims);
    setOpI32(t, 2, mode);
    setOpI32(t, 3, 0); // n_ctx
    setOpI32(t, 4, p.nCtxOrig ?? 0);
    setOpF32(t, 5, p.freqBase ?? 10000);
    setOpF32(t, 6, p.freqScale ?? 1);
    setOpF32(t, 7, p.extFactor ?? 0);
    setOpF32(t, 8, p.attnFactor ?? 1);
    setOpF32(t, 9, p.betaFast ?? 0);
    setOpF32(t, 10, p.betaSlow ?? 0);
    // 11..14: mrope sections (0), 15: n_offs (0)
    t.op = GgmlOp.ROPE;
    t.src[0] = a;
    t.src[1] = pos;
    t.src[2] = c;
    return t;
  }

  /** `ggml_rope`: {@linkcode ropeExt} with ggml_rope's defaults. */
  rope(a: Tensor, pos: Tensor, nDims: number, mode: number): Tensor {
    return this.ropeExt(a, pos, nDims, mode);
  }

  /** `ggml_soft_max_ext`: softmax(a·scale + mask (+ ALiBi slope with max_bias)) per row. */
  softMaxExt(a: Tensor, mask: Tensor | null, scale: number, maxBias: number): Tensor {
    check(isContiguous(a), `soft_max of a non-contiguous tensor`);
    if (mask) {
      check(mask.type === GgmlType.F16 || mask.type === GgmlType.F32, `soft_max mask must be f16 or f32`);
      check(isContiguous(mask), `soft_max mask must be contiguous`);
      check(
        mask.ne[0] === a.ne[0] && mask.ne[1] >= a.ne[1],
        `soft_max mask shape [${mask.ne}] for [${a.ne}]`,
      );
      check(a.ne[2] % mask.ne[2] === 0 && a.ne[3] % mask.ne[3] === 0, `soft_max mask broadcast`);
    }
    if (maxBias > 0) check(mask !== null, `soft_max max_bias needs a mask`);
    const t = this.dupTensor(a);
    setOpF32(t, 0, scale);
    setOpF32(t, 1, maxBias);
    t.op = GgmlOp.SOFT_MAX;
    t.src[0] = a;
    t.src[1] = mask;
    return t;
  }

  /** `ggml_soft_max`. */
  softMax(a: Tensor): Tensor {
    return this.softMaxExt(a, null, 1, 0);
  }

  /**
   * `ggml_flash_attn_ext`: q [d, n_q, n_head, n_seq], k [d, n_kv, n_head_kv, n_seq],
   * v [d_v, n_kv, n_head_kv, n_seq], mask f16 [n_kv, ≥ n_q]; result [d_v, n_head, n_q, n_seq] f32.
   */
  flashAttnExt(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | null,
    scale: number,
    maxBias = 0,
    logitSoftcap = 0,
  ): Tensor {
    check(
      k.ne[0] === q.ne[0] && q.ne[2] % k.ne[2] === 0 && q.ne[3] % k.ne[3] === 0,
      `flash_attn_ext of q [${q.ne}] and k [${k.ne}]`,
    );
    check(q.ne[3] === k.ne[3] && q.ne[3] === v.ne[3], `flash_attn_ext dim 3 differs`);
    if (mask) {
      check(mask.type === GgmlType.F16, `flash_attn_ext mask must be f16`);
      check(isContiguous(mask), `flash_attn_ext mask must be contiguous`);
      check(q.ne[2] % mask.ne[2] === 0 && q.ne[3] % mask.ne[3] === 0, `flash_attn_ext mask broadcast`);
    }
    if (maxBias > 0) check(mask !== null, `flash_attn_ext max_bias needs a mask`);
    const t = this.#tensor(GgmlType.F32, [v.ne[0], q.ne[2], q.ne[1], q.ne[3]]);
    setOpF32(t, 0, scale);
    setOpF32(t, 1, maxBias);
    setOpF32(t, 2, logitSoftcap);
    t.op = GgmlOp.FLASH_ATTN_EXT;
    t.src[0] = q;
    t.src[1] = k;
    t.src[2] = v;
    t.src[3] = mask;
    return t;
  }

  /** `ggml_flash_attn_ext_set_prec`. */
  flashAttnExtSetPrec(t: Tensor, prec: number): Tensor {
    check(t.op === GgmlOp.FLASH_ATTN_EXT, `flashAttnExtSetPrec on a ${t.op} node`);
    setOpI32(t, 3, prec);
    return t;
  }

  /** `ggml_get_rows`: rows of `a` picked by the i32 indices `b`; f32 (i32 for i32 `a`). */
  getRows(a: Tensor, b: Tensor): Tensor {
    check(a.ne[2] === b.ne[1] && a.ne[3] === b.ne[2] && b.ne[3] === 1, `get_rows of [${a.ne}] by [${b.ne}]`);
    check(b.type === GgmlType.I32, `get_rows indices must be i32`);
    const type = a.type === GgmlType.I32 ? GgmlType.I32 : GgmlType.F32;
    const t = this.#tensor(type, [a.ne[0], b.ne[0], b.ne[1], b.ne[2]]);
    t.op = GgmlOp.GET_ROWS;
    t.src[0] = a;
    t.src[1] = b;
    return t;
  }

  /**
   * `ggml_set_rows`: writes the rows of `b` into `a` at the i64/i32 indices `c`; the result is a
   * view of `a` (src order b, c, a as in ggml).
   */
  setRows(a: Tensor, b: Tensor, c: Tensor): Tensor {
    check(
      a.ne[0] === b.ne[0] && a.ne[2] === b.ne[2] && a.ne[3] === b.ne[3],
      `set_rows of [${b.ne}] into [${a.ne}]`,
    );
    check(
      b.ne[1] === c.ne[0] && b.ne[2] % c.ne[1] === 0 && b.ne[3] % c.ne[2] === 0 && c.ne[3] === 1,
      `set_rows indices [${c.ne}]`,
    );
    check(b.type === GgmlType.F32 || b.type === GgmlType.F16, `set_rows source must be f32 or f16`);
    check(c.type === GgmlType.I64 || c.type === GgmlType.I32, `set_rows indices must be i64 or i32`);
    check(isContiguousRows(a) && isContiguousRows(b), `set_rows rows must be contiguous`);
    const t = this.viewTensor(a);
    t.op = GgmlOp.SET_ROWS;
    t.src[0] = b;
    t.src[1] = c;
    t.src[2] = a;
    return t;
  }

  // ---- graphs --------------------------------------------------------------------------------

  /**
   * `ggml_build_forward_expand`: appends `t` and every node it depends on that is not yet in the
   * graph, sources first (in src order), and marks them COMPUTE as ggml does (ggml's CPU backend
   * skips nodes without that flag).
   */
  expand(t: Tensor): Tensor {
    const stack: { t: Tensor; next: number }[] = [{ t, next: 0 }];
    if (this.#visited.has(t)) return t;
    this.#visited.add(t);
    while (stack.length) {
      const top = stack[stack.length - 1];
      if (top.next < top.t.src.length) {
        const s = top.t.src[top.next++];
        if (s && !this.#visited.has(s)) {
          this.#visited.add(s);
          stack.push({ t: s, next: 0 });
        }
        continue;
      }
      stack.pop();
      if (top.t.op !== GgmlOp.NONE) {
        top.t.flags |= TensorFlag.COMPUTE;
        this.nodes.push(top.t);
      }
    }
    return t;
  }

  /**
   * The graph of everything expanded so far plus `outputs` (expanded in order, marked OUTPUT), with
   * a fresh uid. The builder can go on: a later build() is another graph with another uid.
   */
  build(...outputs: Tensor[]): Graph {
    for (const o of outputs) this.setOutput(this.expand(o));
    return newGraph([...this.nodes]);
  }
}

/** Per tensor, how many node sources point at it (ggml's cgraph use_counts). */
export function useCounts(g: Graph): Map<Tensor, number> {
  const m = new Map<Tensor, number>();
  for (const n of g.nodes) {
    for (const s of n.src) if (s) m.set(s, (m.get(s) ?? 0) + 1);
  }
  return m;
}
