/**
 * The one table of WebGPU kernels, keyed by op (and sub-op for UNARY and GLU) as test-backend-ops
 * names them ("ADD", "SILU", "SWIGLU"). The device's `supportsOp` and the plan both read it, so what
 * the device claims is exactly what it runs. Each family file adds its entries with
 * {@linkcode defineKernels}; the families are loaded by the import list in ./mod.ts (one line
 * per family file).
 * @module
 */

import type { Tensor } from "../../../protocol/graph/tensor.ts";
import { subOp } from "../../../protocol/graph/tensor.ts";
import { opDesc } from "../../../protocol/graph/ops.ts";
import type { Caps, Kernel } from "./kernel.ts";

/** The key of a node in {@linkcode KERNELS}: "ADD", or "SILU" / "SWIGLU" for UNARY / GLU. */
export function kernelKey(node: Tensor): string {
  return opDesc(node.op, subOp(node));
}

/** All WebGPU kernels by key. */
export const KERNELS: Map<string, Kernel> = new Map();

/** Adds kernels under their keys; a key defined twice is a programming error. */
export function defineKernels(entries: Record<string, Kernel>): void {
  for (const [k, v] of Object.entries(entries)) {
    if (KERNELS.has(k)) throw new Error(`webgpu kernel ${k} defined twice`);
    KERNELS.set(k, v);
  }
}

/** The kernel that runs `node` on a device with `caps`, if one supports it. */
export function kernelFor(node: Tensor, caps: Caps): Kernel | undefined {
  const k = KERNELS.get(kernelKey(node));
  return k && k.supports(node, caps) ? k : undefined;
}
