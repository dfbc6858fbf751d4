/**
 * The one table of CPU kernels, keyed by op (and sub-op for UNARY and GLU) as test-backend-ops
 * names them. Dispatch and `supportsOp` both read it, so what the device claims is exactly what
 * it runs.
 * @module
 */

import type { Tensor } from "../../../protocol/graph/tensor.ts";
import { subOp } from "../../../protocol/graph/tensor.ts";
import { opDesc } from "../../../protocol/graph/ops.ts";

/** One op's implementation. */
export interface CpuKernel {
  /** Whether this kernel runs `node` with its types, shapes and layout (what ggml's CPU runs). */
  supports(node: Tensor): boolean;
  /**
   * Computes part `ith` of `nth` of `node` into the node's data (`nth` = 1: all of it). Parts are
   * disjoint, so they may run on different threads at once; a kernel without {@linkcode work}
   * is only ever called with nth = 1.
   */
  run(node: Tensor, ith: number, nth: number): void;
  /**
   * Roughly how many multiply-adds `node` costs; the device spreads nodes above a threshold over
   * its worker threads. Absent: the kernel's parts are not independent, run it on one thread.
   */
  work?(node: Tensor): number;
}

/** The key of a node in {@linkcode KERNELS}: "ADD", or "SILU" / "SWIGLU" for UNARY / GLU. */
export function kernelKey(node: Tensor): string {
  return opDesc(node.op, subOp(node));
}

/** All CPU kernels; each op family's file adds its entries through {@linkcode defineKernels}. */
export const KERNELS: Map<string, CpuKernel> = new Map();

/** Adds kernels under their keys (op names as test-backend-ops spells them). */
export function defineKernels(entries: Record<string, CpuKernel>): void {
  for (const [k, v] of Object.entries(entries)) {
    if (KERNELS.has(k)) throw new Error(`cpu kernel ${k} defined twice`);
    KERNELS.set(k, v);
  }
}

/** The kernel that runs `node`, if one supports it. */
export function kernelFor(node: Tensor): CpuKernel | undefined {
  const k = KERNELS.get(kernelKey(node));
  return k && k.supports(node) ? k : undefined;
}
