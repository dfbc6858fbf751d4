/**
 * CPY, DUP, CONT: copy a tensor into another layout and/or type. CPY(a, b) writes a into b's memory
 * (the node is a view of b); DUP and CONT write into the node. Same-type copies move raw bytes, so
 * NaN payloads and integers survive exactly; type changes convert as ggml does (f16 round to nearest
 * even, bf16 with ggml's rounding, float→int truncation).
 * @module
 */

import type { Tensor } from "../../../protocol/graph/tensor.ts";
import { nelements } from "../../../protocol/graph/tensor.ts";
import { GgmlType, typeInfo } from "../../../protocol/graph/types.ts";
import { loadF32, loadRaw, storeF32, storeRaw } from "../tensor_data.ts";
import { type CpuKernel, defineKernels } from "./registry.ts";

const COPY_TYPES: ReadonlySet<number> = new Set([GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.I32]);

function copyInto(dst: Tensor, src: Tensor): void {
  if (src.type === dst.type) {
    const size = typeInfo(src.type)!.typeSize;
    storeRaw(dst, loadRaw(src, size), size);
    return;
  }
  const wide = src.type === GgmlType.I32 || dst.type === GgmlType.I32;
  const values = loadF32(src, wide);
  if (dst.type === GgmlType.I32) {
    for (let i = 0; i < values.length; i++) {
      values[i] = Math.trunc(values[i]);
    }
  }
  storeF32(dst, values);
}

const copy: CpuKernel = {
  supports: (n) => {
    const s = n.src[0];
    return !!s && COPY_TYPES.has(s.type) && COPY_TYPES.has(n.type) && nelements(s) === nelements(n);
  },
  run: (n) => copyInto(n, n.src[0]!),
};

defineKernels({ CPY: copy, DUP: copy, CONT: copy });
