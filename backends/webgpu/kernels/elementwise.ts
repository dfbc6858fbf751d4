/**
 * Element-wise ops on WebGPU — ADD SUB MUL DIV (src1 broadcast), ADD1, ADD_ID, ACC, SCALE, SQR SQRT
 * LOG SIN COS, CLAMP, LEAKY_RELU — and {@linkcode mapKernel}, the one-output-element-per-index
 * template the other simple families (unary, glu, copy, rows, layout, generators) build on.
 *
 * The template: an invocation computes `val(i0, i1, i2, i3)` (a WGSL function the family writes,
 * reading its sources through `at_sK` / `bc_sK`) for output coordinates and stores it. f32 and i32
 * outputs take one element per invocation. A contiguous f16/bf16 output takes one u32 word per
 * invocation (two neighbouring elements, a half outside the tensor kept as it was), so no two
 * invocations write one word; a strided f16/bf16 output is stored through atomics.
 * What ops and types are claimed follows the CPU reference device's table (whatever ggml's CPU
 * runs) intersected with what these kernels compute.
 * @module
 */

import { DeviceError } from "../../../protocol/errors.ts";
import {
  type Dims,
  isContiguous,
  nbytes,
  nelements,
  opF32,
  opI32,
  sameShape,
  type Tensor,
} from "../../../protocol/graph/tensor.ts";
import { GgmlType } from "../../../protocol/graph/types.ts";
import { KERNELS as CPU_KERNELS } from "../../cpu/ops/mod.ts";
import { kernelKey } from "./registry.ts";
import {
  type BuildContext,
  type Caps,
  declareTensor,
  type Dispatch,
  elemSize,
  elemStrides,
  type Field,
  grid,
  HALF_HELPERS,
  halfBits,
  type Kernel,
  LINEAR_WG,
  packFields,
  paramStruct,
} from "./kernel.ts";
import { defineKernels } from "./registry.ts";

const { F32, F16, BF16, I32, I64, I16, I8 } = GgmlType;

/** Types the map template loads and stores (i16 and i8 only by copying their bits). */
const MAP_TYPES: ReadonlySet<number> = new Set([F32, F16, BF16, I32, I16, I8]);

/** Types narrower than a u32 word, bound as words. */
const SUBWORD: ReadonlySet<number> = new Set([F16, BF16, I16, I8]);

/** Invocations per workgroup of the template. */
const WG = 64;

/** What {@linkcode mapKernel} needs. */
export interface MapSpec {
  /** Variant name (profiles, errors). */
  key: string;
  /** The tensor written (binding 0), `d` in WGSL. */
  dst: Tensor;
  /** Sources bound as s0, s1, … (bindings 1, 2, …). */
  srcs: Tensor[];
  /** Output coordinates run over this shape (default: dst.ne). */
  ne?: Dims;
  /**
   * Where output element [i0..i3] is stored: extra element offset and element strides (default:
   * dst's own). Used by ACC/SET to write a view described by op_params.
   */
  view?: { off: number; strides: Dims };
  /** Extra parameters, read as `p.NAME`. */
  fields?: Field[];
  /** Extra WGSL (helper functions). */
  helpers?: string;
  /**
   * Body of `fn val(i0: u32, i1: u32, i2: u32, i3: u32) -> T` where T is f32 (i32 for an i32
   * output). Sources: `at_sK(i0, i1, i2, i3)` (element at coordinates), `bc_sK(...)` (coordinates
   * taken modulo sK's shape: broadcast), `ld_sK(i)` (element i of the binding; add `p.sK_off`),
   * `p.sK_ne0..3`, `p.sK_nb0..3` (element strides); the output shape `p.ne0..3`.
   */
  body: string;
  /**
   * Body of `fn dst_index(i0, i1, i2, i3) -> u32`, the element of `d` output [i0..i3] goes to
   * (default: `p.d_off` plus the coordinates times `p.sd0..3`), for scatters (SET_ROWS).
   */
  dstIndex?: string;
  /** With `dstIndex`: the caller guarantees every output row starts on a whole u32 word. */
  rowsEven?: boolean;
  /**
   * Same-type copy of f16/bf16: `val` returns the half's bits (u32) and `at_sK` of f16/bf16
   * sources returns bits, so values move unchanged (NaN payloads, subnormals).
   */
  raw?: boolean;
}

/** Whether `t` can be bound by the template (a type it knows, whole-element strides). */
export function mapBindable(t: Tensor | null): t is Tensor {
  return !!t && (MAP_TYPES.has(t.type) || t.type === I64) && elemStrides(t) !== null;
}

function contiguousOut(dst: Tensor, ne: Dims, view?: { strides: Dims }): boolean {
  const s = view ? view.strides : elemStrides(dst)!;
  let want = 1;
  for (let i = 0; i < 4; i++) {
    if (ne[i] !== 1 && s[i] !== want) return false;
    want *= ne[i];
  }
  return true;
}

/** Whether output rows of `ne` at element strides `s` and offset `off` start on whole words. */
function evenRows(ne: Dims, s: Dims, off: number): boolean {
  if (s[0] !== 1 || off % 2 !== 0) return false;
  for (let i = 1; i < 4; i++) if (ne[i] > 1 && s[i] % 2 !== 0) return false;
  return true;
}

/** Generated shaders by variant. */
const CODE = new Map<string, string>();
const HELPER_IDS = new Map<string, number>();
function helperId(h: string): number {
  let id = HELPER_IDS.get(h);
  if (id === undefined) HELPER_IDS.set(h, id = HELPER_IDS.size);
  return id;
}

/** The dispatch computing `spec` (see {@linkcode MapSpec}). */
export function mapKernel(spec: MapSpec, ctx: BuildContext): Dispatch[] {
  const { dst, srcs } = spec;
  const ne = spec.ne ?? dst.ne;
  const n = nelements({ ne });
  // outputs narrower than a word: f16, bf16, i16 (2 per word), i8 (4 per word)
  const sub = SUBWORD.has(dst.type);
  const L = dst.type === I8 ? 4 : 2;
  const sd = spec.view ? spec.view.strides : elemStrides(dst)!;
  const dOff = ctx.elemOffset(dst) + (spec.view?.off ?? 0);
  // how f16/bf16 outputs are written: whole words of a packed tensor, whole words of rows that
  // start on words, or halves through atomics
  const mode = !sub
    ? "elem"
    : !spec.dstIndex && contiguousOut(dst, ne, spec.view)
    ? "flat"
    : L === 2 && evenRows(ne, sd, dOff) && (!spec.dstIndex || spec.rowsEven)
    ? "rows"
    : "atomic";
  const atomic = mode === "atomic";
  const raw = !!spec.raw && sub;
  if ((dst.type === I8 || dst.type === I16) && !raw) {
    throw new DeviceError(
      `webgpu: ${spec.key} writes ${dst.type === I8 ? "i8" : "i16"} other than by copying`,
    );
  }
  const fields: Field[] = [
    ["n", "u32", n],
    ["d_off", "u32", dOff],
    ["ne0", "u32", ne[0]],
    ["ne1", "u32", ne[1]],
    ["ne2", "u32", ne[2]],
    ["ne3", "u32", ne[3]],
    ["sd0", "u32", sd[0]],
    ["sd1", "u32", sd[1]],
    ["sd2", "u32", sd[2]],
    ["sd3", "u32", sd[3]],
    ["base", "u32", 0],
    ["u_end", "u32", 0],
    ["d_word", "u32", 0],
  ];
  srcs.forEach((s, k) => {
    const st = elemStrides(s)!;
    fields.push([`s${k}_off`, "u32", ctx.elemOffset(s)]);
    for (let i = 0; i < 4; i++) fields.push([`s${k}_ne${i}`, "u32", s.ne[i]]);
    for (let i = 0; i < 4; i++) fields.push([`s${k}_nb${i}`, "u32", st[i]]);
  });
  fields.push(...(spec.fields ?? []));
  const units = mode === "flat"
    ? Math.ceil((n + (dOff % L)) / L)
    : mode === "rows"
    ? Math.ceil(ne[0] / 2) * ne[1] * ne[2] * ne[3]
    : n;
  // the shader depends on the variant, not on shapes or offsets: generated once per variant
  const variant = `${spec.key}|${mode}|${raw}|${L}|${dst.type}|${srcs.map((t) => t.type).join(",")}|` +
    `${(spec.fields ?? []).map((f) => f[0] + ":" + f[1]).join(",")}|${spec.body}|${spec.dstIndex ?? ""}|` +
    `${spec.helpers ? helperId(spec.helpers) : -1}`;
  let code = CODE.get(variant);
  if (code === undefined) {
    const T = dst.type === I32 ? "i32" : raw ? "u32" : "f32";
    code = HALF_HELPERS + declareTensor("d", dst.type, 0, true, atomic);
    if (raw) {
      code += atomic
        ? (L === 4
          ? `fn str_d(i: u32, v: u32) { let sh = (i & 3u) * 8u; atomicAnd(&d[i >> 2u], ~(0xffu << sh)); ` +
            `atomicOr(&d[i >> 2u], (v & 0xffu) << sh); }\n`
          : `fn str_d(i: u32, v: u32) { let sh = (i & 1u) * 16u; atomicAnd(&d[i >> 1u], ~(0xffffu << sh)); ` +
            `atomicOr(&d[i >> 1u], (v & 0xffffu) << sh); }\n`)
        : `fn stwr_d(w: u32, lo: u32, hi: u32, keepLo: bool, keepHi: bool) {
    let old = select(0u, d[w], keepLo || keepHi);
    d[w] = select(lo, old & 0xffffu, keepLo) | (select(hi, old >> 16u, keepHi) << 16u);
}\n`;
    }
    srcs.forEach((s, k) => {
      const name = `s${k}`;
      const sHalf = SUBWORD.has(s.type);
      const R = s.type === I32 || s.type === I64 ? "i32" : raw && sHalf ? "u32" : "f32";
      code += declareTensor(name, s.type, k + 1, false);
      const load = raw && sHalf ? `ldr_${name}` : `ld_${name}`;
      if (raw && sHalf) {
        code += s.type === I8
          ? `fn ldr_${name}(i: u32) -> u32 { return (${name}[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu; }\n`
          : `fn ldr_${name}(i: u32) -> u32 { return (${name}[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu; }\n`;
      }
      code += `fn at_${name}(i0: u32, i1: u32, i2: u32, i3: u32) -> ${R} { return ${load}(p.${name}_off + ` +
        `i0 * p.${name}_nb0 + i1 * p.${name}_nb1 + i2 * p.${name}_nb2 + i3 * p.${name}_nb3); }\n`;
      code +=
        `fn bc_${name}(i0: u32, i1: u32, i2: u32, i3: u32) -> ${R} { return at_${name}(i0 % p.${name}_ne0, ` +
        `i1 % p.${name}_ne1, i2 % p.${name}_ne2, i3 % p.${name}_ne3); }\n`;
    });
    code += paramStruct("Params", fields);
    code += `@group(0) @binding(${srcs.length + 1}) var<uniform> p: Params;\n`;
    code += spec.helpers ?? "";
    code += `fn val(i0: u32, i1: u32, i2: u32, i3: u32) -> ${T} {\n${spec.body}\n}\n`;
    code += `fn dst_index(i0: u32, i1: u32, i2: u32, i3: u32) -> u32 {\n${
      spec.dstIndex ?? "return p.d_off + i0 * p.sd0 + i1 * p.sd1 + i2 * p.sd2 + i3 * p.sd3;"
    }\n}\n`;
    code += `fn at_out(e: u32) -> ${T} {
    let i0 = e % p.ne0; let r1 = e / p.ne0; let i1 = r1 % p.ne1; let r2 = r1 / p.ne1;
    let i2 = r2 % p.ne2; let i3 = r2 / p.ne2;
    return val(i0, i1, i2, i3);
}
fn out_index(e: u32) -> u32 {
    let i0 = e % p.ne0; let r1 = e / p.ne0; let i1 = r1 % p.ne1; let r2 = r1 / p.ne1;
    let i2 = r2 % p.ne2; let i3 = r2 / p.ne2;
    return dst_index(i0, i1, i2, i3);
}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    ${LINEAR_WG}
    let k = lin * ${WG}u + li + p.base;
    if (k >= p.u_end) { return; }
`;
    const zero = raw ? "0u" : "0.0";
    const stw = raw ? "stwr_d" : "stw_d";
    if (mode === "flat") {
      // one word per invocation: its L elements e = L·k - r + j (r: lane of the first element);
      // lanes outside the tensor keep what the word held
      const bits = raw ? "at_out(u32(e))" : halfBits(dst.type, "at_out(u32(e))");
      const B = 32 / L, M = L === 4 ? "0xffu" : "0xffffu";
      code += `  let r = p.d_off % ${L}u;
  if (${L}u * k >= p.n + r) { return; }
  var w = 0u; var keep = 0u;
  for (var j = 0u; j < ${L}u; j++) {
    let e = i32(${L}u * k + j) - i32(r);
    if (e >= 0 && u32(e) < p.n) { w |= ((${bits}) & ${M}) << (j * ${B}u); } else { keep |= ${M} << (j * ${B}u); }
  }
  if (keep != 0u) { w |= d[p.d_word + k] & keep; }
  d[p.d_word + k] = w;
}
`;
    } else if (mode === "rows") {
      // rows start on whole words: invocation = (word slot of a row, row)
      code += `  let slots = (p.ne0 + 1u) / 2u;
    if (k >= slots * p.ne1 * p.ne2 * p.ne3) { return; }
    let i0 = 2u * (k % slots); let r1 = k / slots; let i1 = r1 % p.ne1; let r2 = r1 / p.ne1;
    let i2 = r2 % p.ne2; let i3 = r2 / p.ne2;
    let keepHi = i0 + 1u >= p.ne0;
    let lo = val(i0, i1, i2, i3);
    var hi = ${zero};
    if (!keepHi) { hi = val(i0 + 1u, i1, i2, i3); }
    ${stw}(dst_index(i0, i1, i2, i3) / 2u, lo, hi, false, keepHi);
}
`;
    } else {
      code += `  if (k >= p.n) { return; }
    ${raw ? "str_d" : "st_d"}(out_index(k), at_out(k));
}
`;
    }
    CODE.set(variant, code);
  }
  if (n === 0) return [];
  const bindings = (d: Tensor, ss: Tensor[]) => [
    { tensor: d, write: true, atomic },
    ...ss.map((t) => ({ tensor: t, write: false })),
  ];
  const r = dOff % L;
  const setParams = (u0: number, u1: number, d: Tensor, eA: number, ss: Tensor[]) => {
    const f = fields.map((x) => [...x] as [string, "u32" | "i32" | "f32", number]);
    const set = (name: string, v: number) => f.find((x) => x[0] === name)![2] = v;
    set("base", u0);
    set("u_end", u1);
    const off = d === dst ? dOff : ctx.elemOffset(d) - eA;
    set("d_off", off >>> 0);
    set("d_word", ((off - r) / L) >>> 0);
    ss.forEach((t, k) => {
      if (t !== srcs[k]) set(`s${k}_off`, (ctx.elemOffset(t) - eA) >>> 0);
    });
    return packFields(f);
  };
  const limit = mapBindLimit(ctx.caps);
  const big = [dst, ...srcs].some((t) => nbytes(t) > limit);
  if (!big) {
    const groups = grid(Math.ceil(units / WG));
    if (!groups) throw new DeviceError(`webgpu: ${spec.key} needs too many workgroups`);
    return [{
      key: spec.key,
      code,
      bindings: bindings(dst, srcs),
      params: setParams(0, units, dst, 0, srcs),
      groups,
    }];
  }
  // too large for one binding: run over slices of the (contiguous) output and of the sources that
  // have its shape, each slice bound on its own
  if (!splittable(spec, mode)) {
    throw new DeviceError(`webgpu: ${spec.key} has a tensor over the binding limit`);
  }
  const es = Math.max(elemSize(dst.type), ...srcs.map((t) => elemSize(t.type)));
  const perChunk = Math.floor(limit / es / (2 * WG)) * WG; // units (elements or words) per dispatch
  const out: Dispatch[] = [];
  const slice = (t: Tensor, eA: number, eB: number): Tensor => {
    const tes = elemSize(t.type);
    return {
      ...t,
      ne: [eB - eA, 1, 1, 1],
      nb: [tes, tes * (eB - eA), tes * (eB - eA), tes * (eB - eA)],
      offset: t.offset + eA * tes,
    };
  };
  for (let u0 = 0; u0 < units; u0 += perChunk) {
    const u1 = Math.min(units, u0 + perChunk);
    const eA = mode === "flat" ? Math.max(0, L * u0 - r) : u0;
    const eB = mode === "flat" ? Math.min(n, L * u1 - r) : u1;
    const d = slice(dst, eA, eB);
    const ss = srcs.map((t) => nbytes(t) > limit ? slice(t, eA, eB) : t);
    const groups = grid(Math.ceil((u1 - u0) / WG))!;
    out.push({
      key: spec.key,
      code,
      bindings: bindings(d, ss),
      params: setParams(u0, u1, d, eA, ss),
      groups,
    });
  }
  return out;
}

/** Bytes above which a tensor cannot be bound whole. */
export function mapBindLimit(caps: Caps): number {
  return caps.maxStorageBufferBindingSize - caps.minStorageBufferOffsetAlignment - 8;
}

/** Whether a map over `spec` can run in slices: packed output, big sources packed and of its shape. */
function splittable(spec: MapSpec, mode: string): boolean {
  const { dst } = spec;
  const ne = spec.ne ?? dst.ne;
  if (spec.view || spec.dstIndex || (mode !== "elem" && mode !== "flat")) return false;
  if (!contiguousOut(dst, ne)) return false;
  return true;
}

/**
 * Whether a map kernel over `node` (output of `node`'s shape, sources `srcs`) can run when some
 * tensor exceeds the binding limit: the output packed, every too-large source packed with the
 * output's shape.
 */
export function mapFitsLarge(node: Tensor, srcs: Tensor[], caps: Caps): boolean {
  const limit = mapBindLimit(caps);
  if (!isContiguous(node)) return false;
  return srcs.every((s) => nbytes(s) <= limit || (isContiguous(s) && sameShape(s, node)));
}

/** The CPU reference's `supports` for `node` (what ggml's CPU runs). */
export function cpuSupports(node: Tensor): boolean {
  const k = CPU_KERNELS.get(kernelKey(node));
  return !!k && k.supports(node);
}

/** Whether the node and its sources (up to `nsrc`) are bindable by the template. */
export function mapNode(node: Tensor, nsrc: number): boolean {
  if (!MAP_TYPES.has(node.type) || !elemStrides(node)) return false;
  for (let i = 0; i < nsrc; i++) if (!mapBindable(node.src[i])) return false;
  return true;
}

/**
 * A kernel of one map dispatch over dst with sources src[0..nsrc) (`nsrc` may depend on the node):
 * `body` as in {@linkcode MapSpec}; supported where the CPU reference is and the tensors bind.
 */
export function simpleMap(
  nsrc: number | ((n: Tensor) => number),
  body: (n: Tensor) => string,
  fields?: (n: Tensor) => Field[],
  extra?: (n: Tensor) => boolean,
  helpers?: string,
): Kernel {
  const count = typeof nsrc === "number" ? () => nsrc : nsrc;
  return {
    supports: (n) =>
      cpuSupports(n) && mapNode(n, count(n)) && (!extra || extra(n)) &&
      ![n, ...n.src.slice(0, count(n))].some((t) => t!.type === I16 || t!.type === I8),
    splitsLarge: (n, caps) => mapFitsLarge(n, n.src.slice(0, count(n)) as Tensor[], caps),
    build: (n, ctx) =>
      mapKernel({
        key: kernelKey(n),
        dst: n,
        srcs: n.src.slice(0, count(n)) as Tensor[],
        body: body(n),
        fields: fields?.(n),
        helpers,
      }, ctx),
  };
}

const binary = (op: string) =>
  simpleMap(2, () => `return at_s0(i0, i1, i2, i3) ${op} bc_s1(i0, i1, i2, i3);`);

/** Unary math of one f32 `x`, converted to and from the storage type. */
const unaryMath = (expr: string) => simpleMap(1, () => `let x = at_s0(i0, i1, i2, i3);\n  return ${expr};`);

/** ACC: dst = src0, then dst's op_params view += src1 (reading src0 through the same view). */
const acc: Kernel = {
  supports: (n) => cpuSupports(n) && mapNode(n, 2) && accView(n) !== null,
  build: (n, ctx) => {
    const a = n.src[0]!, b = n.src[1]!;
    const v = accView(n)!;
    const out: Dispatch[] = [];
    const inplace = opI32(n, 4) !== 0;
    if (!inplace) {
      out.push(
        ...mapKernel({ key: "ACC_copy", dst: n, srcs: [a], body: "return at_s0(i0, i1, i2, i3);" }, ctx),
      );
    }
    // src0 through the view: its own element offset plus the view's, with the view's strides
    out.push(...mapKernel({
      key: "ACC_add",
      dst: n,
      srcs: [a, b],
      ne: [...b.ne],
      view: v,
      fields: [["v_off", "u32", v.off], ["v1", "u32", v.strides[1]], ["v2", "u32", v.strides[2]], [
        "v3",
        "u32",
        v.strides[3],
      ]],
      body: "return ld_s0(p.s0_off + p.v_off + i0 + i1 * p.v1 + i2 * p.v2 + i3 * p.v3) + " +
        "at_s1(i0, i1, i2, i3);",
    }, ctx));
    return out;
  },
};

/** The element view ACC/SET write (op_params nb1, nb2, nb3, offset in bytes), or null if not whole. */
export function accView(n: Tensor): { off: number; strides: Dims } | null {
  const es = elemSize(n.type);
  const b = [opI32(n, 0), opI32(n, 1), opI32(n, 2), opI32(n, 3)];
  if (b.some((x) => x < 0 || x % es !== 0)) return null;
  return { off: b[3] / es, strides: [1, b[0] / es, b[1] / es, b[2] / es] };
}

defineKernels({
  ADD: binary("+"),
  SUB: binary("-"),
  MUL: binary("*"),
  DIV: binary("/"),
  ADD1: simpleMap(2, () => "return at_s0(i0, i1, i2, i3) + at_s1(0u, 0u, 0u, 0u);"),
  ADD_ID: simpleMap(
    3,
    () => "let id = u32(at_s2(i1, i2, 0u, 0u));\n  return at_s0(i0, i1, i2, i3) + at_s1(i0, id, 0u, 0u);",
  ),
  ACC: acc,
  SCALE: simpleMap(
    1,
    (n) =>
      opF32(n, 1) === 0
        ? "return at_s0(i0, i1, i2, i3) * p.s;"
        : "return fma(at_s0(i0, i1, i2, i3), p.s, p.b);",
    (n) => [["s", "f32", opF32(n, 0)], ["b", "f32", opF32(n, 1)]],
  ),
  SQR: unaryMath("x * x"),
  SQRT: unaryMath("sqrt(x)"),
  LOG: unaryMath("log(x)"),
  SIN: unaryMath("sin(x)"),
  COS: unaryMath("cos(x)"),
  CLAMP: simpleMap(
    1,
    () => "let x = at_s0(i0, i1, i2, i3);\n  return select(max(min(x, p.hi), p.lo), p.hi, x != x);",
    (n) => [["lo", "f32", opF32(n, 0)], ["hi", "f32", opF32(n, 1)]],
  ),
  LEAKY_RELU: simpleMap(
    1,
    () =>
      "let x = at_s0(i0, i1, i2, i3);\n  return select(0.0, x, x > 0.0) + p.ns * select(0.0, x, x < 0.0);",
    (n) => [["ns", "f32", opF32(n, 0)]],
  ),
});
