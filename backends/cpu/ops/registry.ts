/**
 * The one table of CPU kernels, keyed by op (and sub-op for UNARY and GLU). Dispatch and
 * `supportsOp` both read it, so what the device claims is exactly what it runs.
 * @module
 */

import type { Tensor } from "../../../protocol/graph/tensor.ts";
import { subOp } from "../../../protocol/graph/tensor.ts";
import { opDesc } from "../../../protocol/graph/ops.ts";

/** Per-run context a kernel may use (thread pool, scratch space). */
export interface CpuContext {
  /** Worker threads available to large ops (1 = run inline). */
  readonly threads: number;
}

/** One op's implementation. */
export interface CpuKernel {
  /** Whether this kernel runs `node` with its types and layout. */
  supports(node: Tensor): boolean;
  /** Computes `node` into its own data. */
  run(node: Tensor, ctx: CpuContext): void;
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

/** The kernel that runs `node`, if any supports it. */
export function kernelFor(node: Tensor): CpuKernel | undefined {
  const k = KERNELS.get(kernelKey(node));
  return k && k.supports(node) ? k : undefined;
}
