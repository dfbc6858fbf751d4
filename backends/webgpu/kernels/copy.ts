/**
 * CPY, DUP, CONT and SET on WebGPU. CPY/DUP/CONT copy src0's elements in logical order (dim 0
 * fastest) into the node's layout and type — the shapes may differ when the counts agree. Same-type
 * copies move f16/bf16 bits unchanged; conversions between f32, f16 and bf16 go through f32, f32 →
 * i32 truncates and i32 → f32 converts, as ggml's CPU does. SET copies src0 (unless op_params[4]
 * "inplace") then writes src1 into the op_params view (f32 or i32). The no-op views (NONE, RESHAPE,
 * VIEW, PERMUTE, TRANSPOSE) have no kernel: the device skips them.
 * @module
 */

import { opI32, sameShape, type Tensor } from "../../../protocol/graph/tensor.ts";
import { GgmlType } from "../../../protocol/graph/types.ts";
import { accView, cpuSupports, mapFitsLarge, mapKernel, mapNode } from "./elementwise.ts";
import type { Dispatch, Kernel } from "./kernel.ts";
import { kernelKey } from "./registry.ts";
import { defineKernels } from "./registry.ts";

const { I32, I64, F16, BF16 } = GgmlType;

/** WGSL converting `v` (src type `from`) to the value `val` returns for dst type `to`. */
export function convert(v: string, from: number, to: number): string {
  if (from === to) return v;
  if (to === I32) return `i32(${v})`;
  if (from === I32) return `f32(${v})`;
  return v;
}

/** Whether a same-type half copy moves bits. */
export function rawCopy(from: number, to: number): boolean {
  return from === to && (from === F16 || from === BF16 || from === GgmlType.I16 || from === GgmlType.I8);
}

/**
 * An i64 tensor whose elements are packed within rows, seen as i32 pairs (dim 0 twice as long):
 * same-type i64 copies move words. Null when dim 0 is strided.
 */
export function asI32Pairs(t: Tensor): Tensor | null {
  if (t.type !== I64) return t;
  if (t.ne[0] > 1 && t.nb[0] !== 8) return null;
  return {
    ...t,
    type: I32,
    ne: [2 * t.ne[0], t.ne[1], t.ne[2], t.ne[3]],
    nb: [4, t.nb[1], t.nb[2], t.nb[3]],
  };
}

/** Whether an i64 node and its sources can all be seen as i32 pairs (or none is i64). */
export function i64Pairs(n: Tensor, nsrc: number): boolean {
  const ts = [n, ...n.src.slice(0, nsrc)];
  if (!ts.some((t) => t?.type === I64)) return mapNode(n, nsrc);
  return ts.every((t) => t && t.type === I64 && asI32Pairs(t) !== null);
}

const copy: Kernel = {
  supports: (n) => cpuSupports(n) && i64Pairs(n, 1),
  splitsLarge: (n, caps) => mapFitsLarge(n, [n.src[0]!], caps),
  build: (node, ctx) => {
    const n = asI32Pairs(node)!;
    const s = asI32Pairs(node.src[0]!)!;
    const load = sameShape(s, n) ? "at_s0(i0, i1, i2, i3)" : `at_s0(c.x, c.y, c.z, c.w)`;
    const pre = sameShape(s, n) ? "" : `let e = i0 + p.ne0 * (i1 + p.ne1 * (i2 + p.ne2 * i3));
  let c = vec4<u32>(e % p.s0_ne0, (e / p.s0_ne0) % p.s0_ne1, (e / (p.s0_ne0 * p.s0_ne1)) % p.s0_ne2,
    e / (p.s0_ne0 * p.s0_ne1 * p.s0_ne2));\n  `;
    return mapKernel({
      key: kernelKey(n),
      dst: n,
      srcs: [s],
      raw: rawCopy(s.type, n.type),
      body: `${pre}return ${convert(load, s.type, n.type)};`,
    }, ctx);
  },
};

const set: Kernel = {
  supports: (n) => cpuSupports(n) && mapNode(n, 2) && accView(n) !== null,
  build: (n, ctx) => {
    const a = n.src[0]!, b = n.src[1]!;
    const out: Dispatch[] = [];
    if (opI32(n, 4) === 0) {
      out.push(
        ...mapKernel({ key: "SET_copy", dst: n, srcs: [a], body: "return at_s0(i0, i1, i2, i3);" }, ctx),
      );
    }
    out.push(...mapKernel({
      key: "SET_view",
      dst: n,
      srcs: [b],
      ne: [...b.ne],
      view: accView(n)!,
      body: "return at_s0(i0, i1, i2, i3);",
    }, ctx));
    return out;
  },
};

defineKernels({ CPY: copy, DUP: copy, CONT: copy, SET: set });

/** Used by tests: the node's kernel name. */
export function copyKey(n: Tensor): string {
  return kernelKey(n);
}
