/**
 * ROPE on WebGPU (f32 or f16, any strides), as backends/cpu/ops/rope.ts computes it: normal
 * (adjacent pairs), neox (pairs half the rotated width apart), multi-section (MROPE, IMROPE: four
 * position ids per token, sections in op_params[11..14]) and vision modes, frequency factors (src2),
 * YaRN (ext_factor, beta_fast/slow, n_ctx_orig), attn_factor, and n_offs (op_params[15]).
 *
 * One invocation per element. The angle is built as ggml builds its cache — the position multiplied
 * by θ_scale once per pair index, in f32 — and reduced to [-π, π] in four exact steps before cos and
 * sin, so large positions keep their precision. θ_scale, the YaRN correction dims and magnitude
 * scale are per-node constants computed on the host exactly as the CPU computes them.
 * @module
 */

import { GgmlType, typeName } from "../../../protocol/graph/types.ts";
import { nbytes, opF32, opI32, type Tensor } from "../../../protocol/graph/tensor.ts";
import { ropeWellFormed, yarnCorrDims } from "../../cpu/ops/rope.ts";
import { at, elementAddressable, entry, tensorFields } from "./access.ts";
import {
  type BindInfo,
  declareTensor,
  type Dispatch,
  elemStrides,
  type Field,
  grid,
  HALF_HELPERS,
  packFields,
  paramStruct,
} from "./kernel.ts";
import { defineKernels } from "./registry.ts";

const { F32, F16, I32 } = GgmlType;
const NORMAL = 0, MROPE = 8, VISION = 24, IMROPE = 40; // GGML_ROPE_TYPE_* (neox: 2)
const WG = 256;
const f = Math.fround;

/** Whether ROPE node `n` is what this kernel computes. */
export function supportsRope(n: Tensor): boolean {
  if (!ropeWellFormed(n)) return false;
  const a = n.src[0]!, pos = n.src[1]!, ff = n.src[2];
  if (!elementAddressable(a) || !elementAddressable(n) || !elementAddressable(pos)) return false;
  if (ff && !elementAddressable(ff)) return false;
  return grid(Math.ceil(Math.ceil(a.ne[0] / 2) * a.ne[1] * a.ne[2] * a.ne[3] / WG)) !== null;
}

/** The dispatch computing ROPE node `n`. */
export function ropeDispatch(n: Tensor, info: BindInfo): Dispatch {
  const a = n.src[0]!, pos = n.src[1]!, ff = n.src[2];
  const nDims = opI32(n, 1), mode = opI32(n, 2);
  const freqBase = f(opF32(n, 5)), freqScale = f(opF32(n, 6)), extFactor = f(opF32(n, 7));
  const attnFactor = f(opF32(n, 8));
  const corr = yarnCorrDims(nDims, opI32(n, 4), freqBase, f(opF32(n, 9)), f(opF32(n, 10)));
  const mscaleExt = f(attnFactor * f(1 + f(0.1 * f(Math.log(f(1 / freqScale))))));
  const s = [opI32(n, 11), opI32(n, 12), opI32(n, 13), opI32(n, 14)];
  const slots = Math.ceil(n.ne[0] / 2);
  const fields: Field[] = [
    ...tensorFields("a", a, info),
    ...tensorFields("d", n, info),
    ["pos_off", "u32", info.elemOffset(pos)],
    ["pos_s0", "u32", elemStrides(pos)![0]],
    ["ff_off", "u32", ff ? info.elemOffset(ff) : 0],
    ["ff_s0", "u32", ff ? elemStrides(ff)![0] : 0],
    ["ff_n", "u32", ff ? ff.ne[0] : 0],
    ["ne0", "u32", n.ne[0]],
    ["ne1", "u32", n.ne[1]],
    ["ne2", "u32", n.ne[2]],
    ["slots", "u32", slots],
    ["total", "u32", slots * n.ne[1] * n.ne[2] * n.ne[3]],
    ["n_dims", "u32", nDims],
    ["n_offs", "u32", opI32(n, 15)],
    ["theta_scale", "f32", f(Math.pow(freqBase, f(-2 / nDims)))],
    ["freq_scale", "f32", freqScale],
    ["ext_factor", "f32", extFactor],
    ["attn_factor", "f32", attnFactor],
    ["mscale_ext", "f32", mscaleExt],
    ["corr0", "f32", corr[0]],
    ["corr1", "f32", corr[1]],
    ["s0", "u32", s[0]],
    ["s1", "u32", s[1]],
    ["s2", "u32", s[2]],
    ["s3", "u32", s[3]],
  ];
  const half = a.type === F16;
  // an in-place f16 rope reads its source through the output's atomic words: one binding (two
  // writable bindings of one range are refused by some WebGPU implementations)
  const shared = half && a.buffer !== null && a.buffer === n.buffer && a.offset < n.offset + nbytes(n) &&
    n.offset < a.offset + nbytes(a);
  const bindings: Dispatch["bindings"] = [];
  let decl = "";
  if (!shared) {
    decl += declareTensor("a", a.type, 0, false);
    bindings.push({ tensor: a, write: false });
  }
  decl += declareTensor("pos", I32, bindings.length, false);
  bindings.push({ tensor: pos, write: false });
  if (ff) {
    decl += declareTensor("ff", F32, bindings.length, false);
    bindings.push({ tensor: ff, write: false });
  }
  decl += half
    ? HALF_HELPERS + declareTensor("d", F16, bindings.length, true, true)
    : `@group(0) @binding(${bindings.length}) var<storage, read_write> d: array<f32>;\n`;
  bindings.push({ tensor: n, write: true, atomic: half });
  if (shared) decl += `fn ld_a(i: u32) -> f32 { return ld_d(i); }\n`;
  decl += `@group(0) @binding(${bindings.length}) var<uniform> p: P;\n`;

  // slot q of a row: a rotated pair (i0 rotated as x0, i1 as x1, cache index ci) for q < P, else up
  // to two elements outside the rotated range, copied
  let pair: string;
  if (mode === NORMAL) {
    pair = `  let P = p.n_dims / 2u;\n  let i0 = p.n_offs + 2u * q;\n  let i1 = i0 + 1u;\n`;
  } else if (mode === VISION) {
    pair = `  let P = p.n_dims;\n  let i0 = q;\n  let i1 = q + p.n_dims;\n`;
  } else {
    pair = `  let P = p.n_dims / 2u;\n  let i0 = p.n_offs + q;\n  let i1 = i0 + p.n_dims / 2u;\n`;
  }
  pair += `  let ci = 2u * q;\n`;
  const mrope = (mode & MROPE) !== 0;
  let thetaCode: string;
  if (!mrope) {
    thetaCode = `  var theta = f32(ld_pos(p.pos_off + i2 * p.pos_s0));\n` +
      `  for (var q = 0u; q < ci / 2u; q++) { theta = theta * p.theta_scale; }\n`;
  } else {
    const indep = mode === VISION;
    const select = mode === IMROPE
      ? `      if (sector % 3u == 1u && sector < 3u * p.s1) { theta = th; }\n` +
        `      else if (sector % 3u == 2u && sector < 3u * p.s2) { theta = tw; }\n` +
        `      else if (sector % 3u == 0u && sector < 3u * p.s0) { theta = tt; }\n` +
        `      else { theta = te; }\n`
      : `      if (sector >= p.s0 && sector < secw) { theta = th; }\n` +
        `      else if (sector >= secw && sector < secw + p.s2) { theta = tw; }\n` +
        `      else if (sector >= secw + p.s2) { theta = te; }\n`;
    thetaCode = `  let p0 = f32(ld_pos(p.pos_off + i2 * p.pos_s0));\n` +
      `  let p1 = f32(ld_pos(p.pos_off + (i2 + p.ne2) * p.pos_s0));\n` +
      `  let p2 = f32(ld_pos(p.pos_off + (i2 + 2u * p.ne2) * p.pos_s0));\n` +
      `  let p3 = f32(ld_pos(p.pos_off + (i2 + 3u * p.ne2) * p.pos_s0));\n` +
      `  let sect = p.s0 + p.s1 + p.s2 + p.s3;\n  let secw = p.s0 + p.s1;\n  let sece = secw + p.s2;\n` +
      `  var tt = p0;\n  var th = p1;\n  var tw = p2;\n  var te = p3;\n  var theta = p0;\n` +
      `  for (var q = 0u; q <= ci / 2u; q++) {\n` +
      `    let sector = q % sect;\n` +
      (indep
        ? `    if (sector == 0u) { tt = p0; } else if (sector == p.s0) { th = p1; }\n` +
          `    else if (sector == secw) { tw = p2; } else if (sector == sece) { te = p3; }\n`
        : "") +
      `    if (q == ci / 2u) {\n      theta = tt;\n${select}      break;\n    }\n` +
      `    tt = tt * p.theta_scale;\n    tw = tw * p.theta_scale;\n` +
      `    th = th * p.theta_scale;\n    te = te * p.theta_scale;\n  }\n`;
  }
  const store = (idx: string) => half ? `st_d(${idx}, y);` : `d[${idx}] = y;`;
  const code = paramStruct("P", fields) + decl +
    `fn reduce_angle(x: f32) -> f32 {\n` +
    `  let k = round(x * 0.15915494309189535);\n` +
    `  return (((x - k * 6.28125) - k * 0.00193023681640625) - k * 5.066394805908203e-06) - k * 3.968374517882012e-09;\n` +
    `}\n` + entry(WG) +
    `  let e = lin * ${WG}u + t;\n  if (e >= p.total) { return; }\n` +
    `  let q = e % p.slots;\n  let r = e / p.slots;\n  let i1r = r % p.ne1;\n  let i2 = (r / p.ne1) % p.ne2;\n` +
    `  let i3 = r / (p.ne1 * p.ne2);\n` +
    pair +
    `  if (q >= P) {\n` +
    `    for (var k = 0u; k < 2u; k++) {\n` +
    `      let el = 2u * (q - P) + k;\n      let ix = select(el + p.n_dims, el, el < p.n_offs);\n` +
    `      if (ix < p.ne0) {\n        let y = ld_a(${at("a", "ix", "i1r", "i2", "i3")});\n` +
    `        ${store(at("d", "ix", "i1r", "i2", "i3"))}\n      }\n    }\n    return;\n  }\n` +
    thetaCode +
    `  var factor = 1.0;\n  if (ci / 2u < p.ff_n) { factor = ${
      ff ? "ld_ff(p.ff_off + (ci / 2u) * p.ff_s0)" : "1.0"
    }; }\n` +
    `  let extrap = theta / factor;\n` +
    `  let interp = p.freq_scale * extrap;\n` +
    `  var ang = interp;\n  var msc = p.attn_factor;\n` +
    `  if (p.ext_factor != 0.0) {\n` +
    `    let yv = (f32(ci / 2u) - p.corr0) / max(0.001, p.corr1 - p.corr0);\n` +
    `    let mx = (1.0 - min(1.0, max(0.0, yv))) * p.ext_factor;\n` +
    `    ang = interp * (1.0 - mx) + extrap * mx;\n    msc = p.mscale_ext;\n  }\n` +
    `  let ra = reduce_angle(ang);\n` +
    `  let c = cos(ra) * msc;\n  let s = sin(ra) * msc;\n` +
    `  let x0 = ld_a(${at("a", "i0", "i1r", "i2", "i3")});\n` +
    `  let x1 = ld_a(${at("a", "i1", "i1r", "i2", "i3")});\n` +
    `  var y = x0 * c - x1 * s;\n  ${store(at("d", "i0", "i1r", "i2", "i3"))}\n` +
    `  y = x0 * s + x1 * c;\n  ${store(at("d", "i1", "i1r", "i2", "i3"))}\n}\n`;
  return {
    key: `rope:${typeName(a.type)}:${mode}:${ff ? "ff" : "-"}${shared ? ":in-place" : ""}`,
    code,
    bindings,
    params: packFields(fields),
    groups: grid(Math.ceil(Math.ceil(n.ne[0] / 2) * n.ne[1] * n.ne[2] * n.ne[3] / WG))!,
  };
}

defineKernels({ ROPE: { supports: (n) => supportsRope(n), build: (n, ctx) => [ropeDispatch(n, ctx)] } });
