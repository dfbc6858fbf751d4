/**
 * ROPE (f32, f16): rotary position embedding as ggml_rope_ext / ggml_rope_multi compute it, for the
 * normal (adjacent pairs), neox (pairs half the rotated width apart), multi-section (MROPE, IMROPE:
 * four position ids per token, sections in op_params[11..14]) and vision modes, with frequency
 * factors (src2), YaRN extrapolation (ext_factor, beta_fast/slow, n_ctx_orig), attn_factor and
 * n_offs (op_params[15]: the first rotated channel). Angles are built in f32 exactly as ggml builds
 * its per-position cache (θ multiplied by θ_scale step by step), so they match to the last bit.
 * @module
 */

import { nelements, opF32, opI32, sameShape, type Tensor } from "../../../protocol/graph/tensor.ts";
import { GgmlType } from "../../../protocol/graph/types.ts";
import { TensorData } from "../tensor_data.ts";
import { cmax, cmin, eachRow } from "./common.ts";
import { type CpuKernel, defineKernels } from "./registry.ts";

const { F32, F16, I32 } = GgmlType;
const f = Math.fround;

/** `GGML_ROPE_TYPE_*`. */
const NORMAL = 0, NEOX = 2, MROPE = 8, VISION = 24, IMROPE = 40;
const MODES: ReadonlySet<number> = new Set([NORMAL, NEOX, MROPE, VISION, IMROPE]);
const PI = f(Math.PI);

/** ggml_rope_yarn_corr_dims. */
export function yarnCorrDims(
  nDims: number,
  nCtxOrig: number,
  base: number,
  fast: number,
  slow: number,
): [number, number] {
  const dim = (nRot: number) =>
    f(f(nDims * f(Math.log(f(nCtxOrig / f(f(nRot * 2) * PI))))) / f(2 * f(Math.log(base))));
  const start = Math.floor(dim(fast)), end = Math.ceil(dim(slow));
  return [cmax(0, start), cmin(nDims - 1, end)];
}

/** The parameters of one ROPE node. */
interface Rope {
  nDims: number;
  mode: number;
  nOffs: number;
  freqScale: number;
  extFactor: number;
  attnFactor: number;
  thetaScale: number;
  corr: [number, number];
  sections: number[];
}

function params(n: Tensor): Rope {
  const nDims = opI32(n, 1);
  const freqBase = f(opF32(n, 5));
  return {
    nDims,
    mode: opI32(n, 2),
    nOffs: opI32(n, 15),
    freqScale: f(opF32(n, 6)),
    extFactor: f(opF32(n, 7)),
    attnFactor: f(opF32(n, 8)),
    thetaScale: f(Math.pow(freqBase, f(-2 / nDims))),
    corr: yarnCorrDims(nDims, opI32(n, 4), freqBase, f(opF32(n, 9)), f(opF32(n, 10))),
    sections: [opI32(n, 11), opI32(n, 12), opI32(n, 13), opI32(n, 14)],
  };
}

/** rope_yarn: cos and sin of one angle, with YaRN ramp and magnitude scaling, into cache[i0..]. */
function yarn(p: Rope, thetaExtrap: number, i0: number, cache: Float32Array): void {
  const thetaInterp = f(p.freqScale * thetaExtrap);
  let theta = thetaInterp;
  let mscale = p.attnFactor;
  if (p.extFactor !== 0) {
    const y = f(f(Math.floor(i0 / 2) - p.corr[0]) / cmax(f(0.001), f(p.corr[1] - p.corr[0])));
    const ramp = f(1 - cmin(1, cmax(0, y)));
    const mix = f(ramp * p.extFactor);
    theta = f(f(thetaInterp * f(1 - mix)) + f(thetaExtrap * mix));
    mscale = f(mscale * f(1 + f(0.1 * f(Math.log(f(1 / p.freqScale))))));
  }
  cache[i0] = f(Math.cos(theta)) * mscale;
  cache[i0 + 1] = f(Math.sin(theta)) * mscale;
}

/** ggml_rope_cache_init / ggml_mrope_cache_init for the position(s) of one token. */
function fillCache(
  p: Rope,
  pos: number[],
  ff: Float32Array | null,
  width: number,
  cache: Float32Array,
): void {
  const factor = (i0: number) => (ff && i0 / 2 < ff.length ? ff[i0 / 2] : 1);
  if (!(p.mode & MROPE)) {
    let theta = f(pos[0]);
    for (let i0 = 0; i0 < width; i0 += 2) {
      yarn(p, f(theta / factor(i0)), i0, cache);
      theta = f(theta * p.thetaScale);
    }
    return;
  }
  const [s0, s1, s2, s3] = p.sections;
  const sectDims = s0 + s1 + s2 + s3, secW = s0 + s1, secE = secW + s2;
  const isImrope = p.mode === IMROPE, indep = p.mode === VISION;
  let tt = f(pos[0]), th = f(pos[1]), tw = f(pos[2]), te = f(pos[3]);
  for (let i0 = 0; i0 < width; i0 += 2) {
    const sector = (i0 / 2) % sectDims;
    if (indep) {
      if (sector === 0) tt = f(pos[0]);
      else if (sector === s0) th = f(pos[1]);
      else if (sector === secW) tw = f(pos[2]);
      else if (sector === secE) te = f(pos[3]);
    }
    let theta = tt;
    if (isImrope) {
      if (sector % 3 === 1 && sector < 3 * s1) theta = th;
      else if (sector % 3 === 2 && sector < 3 * s2) theta = tw;
      else if (sector % 3 === 0 && sector < 3 * s0) theta = tt;
      else theta = te;
    } else if (sector >= s0 && sector < secW) theta = th;
    else if (sector >= secW && sector < secW + s2) theta = tw;
    else if (sector >= secW + s2) theta = te;
    yarn(p, f(theta / factor(i0)), i0, cache);
    tt = f(tt * p.thetaScale);
    tw = f(tw * p.thetaScale);
    th = f(th * p.thetaScale);
    te = f(te * p.thetaScale);
  }
}

/**
 * Whether ROPE node `n` is well formed as ggml defines it: f32/f16 in and out of one shape, a known
 * mode, an even rotated width (op_params[1]) from n_offs (op_params[15]) inside the row, i32
 * positions (four per token for the multi-section modes, non-negative sections), f32 frequency
 * factors covering half the rotated width. Every device's ROPE support starts from this.
 */
export function ropeWellFormed(n: Tensor): boolean {
  const a = n.src[0], pos = n.src[1], ff = n.src[2];
  if (!a || !pos || (a.type !== F32 && a.type !== F16) || n.type !== a.type || !sameShape(a, n)) {
    return false;
  }
  const nDims = opI32(n, 1), mode = opI32(n, 2), nOffs = opI32(n, 15);
  if (!MODES.has(mode) || nDims <= 0 || nDims % 2 !== 0 || nDims > a.ne[0]) return false;
  if (nOffs < 0 || nOffs % 2 !== 0 || nOffs + nDims > a.ne[0]) return false;
  const mrope = (mode & MROPE) !== 0;
  if (pos.type !== I32 || pos.ne[0] < a.ne[2] * (mrope ? 4 : 1)) return false;
  if (mrope) {
    const s = [opI32(n, 11), opI32(n, 12), opI32(n, 13), opI32(n, 14)];
    if (s.some((x) => x < 0) || s[0] + s[1] + s[2] + s[3] <= 0) return false;
  }
  if (mode === VISION && (nDims * 2 !== a.ne[0] || nOffs !== 0)) return false;
  return !ff || (ff.type === F32 && ff.ne[0] >= nDims / 2);
}

const rope: CpuKernel = {
  supports: ropeWellFormed,
  work: (n) => 8 * nelements(n),
  run: (n, ith, nth) => {
    const p = params(n);
    const A = new TensorData(n.src[0]!), P = new TensorData(n.src[1]!), D = new TensorData(n);
    const ffT = n.src[2];
    let ff: Float32Array | null = null;
    if (ffT) {
      ff = new Float32Array(ffT.ne[0]);
      new TensorData(ffT).readRow(ff, 0, 0, 0);
    }
    const ne0 = n.ne[0], ne2 = n.ne[2];
    const { nDims, mode, nOffs } = p;
    const vision = mode === VISION;
    const width = vision ? ne0 : nDims;
    const cache = new Float32Array(width + 2);
    const x = new Float32Array(ne0), y = new Float32Array(ne0);
    const mrope = (mode & MROPE) !== 0;
    let lastI2 = -1;
    eachRow(n, ith, nth, (i1, i2, i3) => {
      if (i2 !== lastI2) {
        const pos = mrope ? [0, 1, 2, 3].map((k) => P.get(i2 + k * ne2, 0, 0, 0)) : [P.get(i2, 0, 0, 0)];
        fillCache(p, pos, ff, width, cache);
        lastI2 = i2;
      }
      A.readRow(x, i1, i2, i3);
      y.set(x);
      if (mode === NORMAL) {
        for (let i0 = 0; i0 < nDims; i0 += 2) rotate(x, y, nOffs + i0, nOffs + i0 + 1, cache, i0);
      } else if (vision) {
        for (let i0 = 0; i0 < ne0; i0 += 2) rotate(x, y, i0 / 2, i0 / 2 + nDims, cache, i0);
      } else {
        const half = nDims / 2;
        for (let i0 = 0; i0 < nDims; i0 += 2) rotate(x, y, nOffs + i0 / 2, nOffs + i0 / 2 + half, cache, i0);
      }
      D.writeRow(y, i1, i2, i3);
    });
  },
};

function rotate(
  x: Float32Array,
  y: Float32Array,
  a: number,
  b: number,
  cache: Float32Array,
  i0: number,
): void {
  const c = cache[i0], s = cache[i0 + 1];
  const x0 = x[a], x1 = x[b];
  y[a] = x0 * c - x1 * s;
  y[b] = x0 * s + x1 * c;
}

defineKernels({ ROPE: rope });
