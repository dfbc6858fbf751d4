/**
 * Running a graph's nodes on the calling thread, in order, each node large enough split over the
 * pool's helpers: the one loop of the CPU device, whether it runs on the main thread (synchronous
 * device) or on its graph thread (off-thread device, graph_thread.ts).
 * @module
 */

import { DeviceError } from "../../protocol/errors.ts";
import { describeNode, nbytes, type Tensor } from "../../protocol/graph/tensor.ts";
import { type CpuKernel, kernelKey } from "./ops/mod.ts";
import type { WorkerPool } from "./pool.ts";

/**
 * Work (multiply-adds, roughly) above which a node is split over the worker threads: a round trip
 * to the workers costs a few hundred microseconds.
 */
export const PARALLEL_WORK = 1 << 20;

/**
 * Threads `node` is split over: 1 when there is one thread, its kernel's parts are not
 * independent, or its work is below `parallelWork`.
 */
export function splitOf(kernel: CpuKernel, node: Tensor, threads: number, parallelWork: number): number {
  if (threads <= 1 || !kernel.work) return 1;
  const work = kernel.work(node);
  return work >= parallelWork ? Math.min(threads, Math.ceil(work / parallelWork)) : 1;
}

/**
 * Runs `nodes[i]` with `kernels[i]`, in order. `stop`, when given, is read before each node: a
 * non-zero value abandons the graph (the device gave up waiting for it) with a DeviceError.
 */
export function runNodes(
  nodes: readonly Tensor[],
  kernels: readonly CpuKernel[],
  pool: WorkerPool,
  parallelWork: number,
  stop?: Int32Array,
): void {
  const threads = pool.usable ? pool.threads : 1;
  for (let i = 0; i < nodes.length; i++) {
    if (stop && Atomics.load(stop, 0) !== 0) throw new DeviceError("cpu: graph abandoned");
    const node = nodes[i];
    if (nbytes(node) === 0) continue;
    if (!node.buffer) throw new DeviceError(`node ${describeNode(node)} has no data`);
    const k = kernels[i];
    const nth = splitOf(k, node, threads, parallelWork);
    if (nth > 1) pool.run(kernelKey(node), node, nth, (ith, n) => k.run(node, ith, n));
    else k.run(node, 0, 1);
  }
}
