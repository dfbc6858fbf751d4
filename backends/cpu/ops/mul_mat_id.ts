/**
 * MUL_MAT_ID (mixture of experts): dst[:, s, t] = src0[:, :, ids[s, t]] · src1[:, s % ne11, t] for
 * each slot s < ids.ne[0] and token t, with i32 expert ids (src2); types and rounding as MUL_MAT.
 * Columns are grouped by expert so each expert's matrix is read once; an id outside [0, n_expert)
 * fails the graph.
 * @module
 */

import { DeviceError } from "../../../protocol/errors.ts";
import { GgmlType } from "../../../protocol/graph/types.ts";
import type { Tensor } from "../../../protocol/graph/tensor.ts";
import { partRange, TensorData } from "../tensor_data.ts";
import { PANEL, panelProduct, panelScratch, roundingFor, VEC_DOT_TYPE } from "./mul_mat.ts";
import { type CpuKernel, defineKernels } from "./registry.ts";

function supports(n: Tensor): boolean {
  const a = n.src[0], b = n.src[1], ids = n.src[2];
  if (!a || !b || !ids || n.type !== GgmlType.F32 || ids.type !== GgmlType.I32) return false;
  const vdt = VEC_DOT_TYPE.get(a.type);
  if (vdt === undefined || (b.type !== GgmlType.F32 && b.type !== vdt)) return false;
  return a.ne[0] === b.ne[0] && a.ne[3] === 1 && b.ne[3] === 1 && ids.ne[2] === 1 && ids.ne[3] === 1 &&
    ids.ne[1] === b.ne[2] && b.ne[1] > 0 && ids.ne[0] % b.ne[1] === 0 && n.ne[0] === a.ne[1] &&
    n.ne[1] === ids.ne[0] && n.ne[2] === b.ne[2] && n.ne[3] === 1;
}

/** For each expert, the (slot, token) pairs that use it. */
function groupByExpert(n: Tensor): { slot: number[]; token: number[] }[] {
  const ids = new TensorData(n.src[2]!);
  const experts = n.src[0]!.ne[2];
  const groups = Array.from({ length: experts }, () => ({ slot: [] as number[], token: [] as number[] }));
  for (let t = 0; t < ids.ne[1]; t++) {
    for (let s = 0; s < ids.ne[0]; s++) {
      const e = ids.get(s, t, 0, 0);
      if (!(e >= 0 && e < experts)) {
        throw new DeviceError(`MUL_MAT_ID: expert ${e} outside [0, ${experts}) in "${n.name}"`);
      }
      groups[e].slot.push(s);
      groups[e].token.push(t);
    }
  }
  return groups;
}

const mulMatId: CpuKernel = {
  supports,
  work: (n) => n.src[0]!.ne[0] * n.src[0]!.ne[1] * n.ne[1] * n.ne[2],
  run: (n, ith, nth) => {
    const a = n.src[0]!, b = n.src[1]!;
    const A = new TensorData(a), B = new TensorData(b), D = new TensorData(n);
    const K = a.ne[0], M = a.ne[1], ne11 = b.ne[1];
    const round = roundingFor(a.type, b.type);
    const groups = groupByExpert(n);
    const panels = Math.ceil(M / PANEL);
    const [t0, t1] = partRange(panels * groups.length, ith, nth);
    const scratch = panelScratch(K);
    let expert = -1;
    let Bd = new Float32Array(0), C = new Float32Array(0);
    for (let t = t0; t < t1; t++) {
      const e = Math.floor(t / panels), p = t - e * panels;
      const g = groups[e], cols = g.slot.length;
      if (cols === 0) continue;
      if (e !== expert) {
        if (Bd.length < cols * K) Bd = new Float32Array(cols * K);
        if (C.length < cols * PANEL) C = new Float32Array(cols * PANEL);
        for (let j = 0; j < cols; j++) B.readRow(Bd, g.slot[j] % ne11, g.token[j], 0, j * K);
        if (round) { for (let i = 0; i < cols * K; i++) Bd[i] = round(Bd[i]); }
        expert = e;
      }
      const m0 = p * PANEL, m1 = Math.min(M, m0 + PANEL), mp = m1 - m0;
      panelProduct(A, e, 0, m0, m1, Bd, cols, C, scratch);
      for (let j = 0; j < cols; j++) D.writeRow(C, g.slot[j], g.token[j], 0, j * mp, m0, mp);
    }
  },
};

defineKernels({ MUL_MAT_ID: mulMatId });
