/**
 * The CPU device: buffers are ArrayBuffers in this process; kernels are the TypeScript reference
 * implementations of backends/cpu/ops. It is graphwire's executable definition of each op and the
 * device of hosts without a GPU.
 *
 * It computes in one of two ways. Synchronous (the default): `planCompute` runs the graph on the
 * calling thread and returns when it is done, large nodes split over worker threads (pool.ts).
 * Off-thread (`offThread: true`, what discovery and so the RPC server use): `planCompute` returns
 * a promise and the graph runs on a graph thread (graph_thread.ts), so the caller's event loop
 * keeps serving other connections and signals meanwhile; computes queue there in call order.
 *
 * @example
 * ```ts
 * const dev = new CpuDevice({ offThread: true });
 * await dev.compute(graph); // the event loop runs while the graph does
 * dev.close();
 * ```
 * @module
 */

import type { Graph } from "../../protocol/graph/graph.ts";
import { describeNode, nbytes, type Tensor } from "../../protocol/graph/tensor.ts";
import { UnsupportedOpError } from "../../protocol/errors.ts";
import type { Device, DeviceBuffer, DeviceMemory, Plan } from "../device.ts";
import { GraphThread, graphWork, INLINE_WORK } from "./graph_thread.ts";
import { type CpuKernel, kernelFor } from "./ops/mod.ts";
import { WorkerPool } from "./pool.ts";
import { PARALLEL_WORK, runNodes } from "./run.ts";

export { INLINE_WORK, PARALLEL_WORK };

/** ggml's CPU buffer alignment (TENSOR_ALIGNMENT). */
export const CPU_ALIGNMENT = 32;

/**
 * A CPU buffer: plain bytes in this process (in a SharedArrayBuffer when the device has worker
 * threads or computes off-thread, so that other threads can compute into it).
 */
export class CpuBuffer implements DeviceBuffer {
  readonly device: CpuDevice;
  readonly size: number;
  /** The buffer's memory; kernels read and write it directly. */
  bytes: Uint8Array;
  #freed = false;

  constructor(device: CpuDevice, size: number, shared = false) {
    this.device = device;
    this.size = size;
    this.bytes = new Uint8Array(shared ? new SharedArrayBuffer(size) : new ArrayBuffer(size));
  }

  set(offset: number, data: Uint8Array): void {
    this.bytes.set(data, offset);
  }

  get(offset: number, size: number): Uint8Array {
    return this.bytes.slice(offset, offset + size);
  }

  getInto(offset: number, dst: Uint8Array): void {
    dst.set(this.bytes.subarray(offset, offset + dst.length));
  }

  memset(offset: number, size: number, value: number): void {
    this.bytes.fill(value, offset, offset + size);
  }

  clear(value: number): void {
    this.bytes.fill(value);
  }

  copyFrom(src: DeviceBuffer, srcOffset: number, dstOffset: number, size: number): boolean {
    if (!(src instanceof CpuBuffer)) return false;
    this.bytes.set(src.bytes.subarray(srcOffset, srcOffset + size), dstOffset);
    return true;
  }

  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    this.device.released(this);
    this.bytes = new Uint8Array(0);
  }
}

/** A CPU plan: the kernel of every node, resolved once, and the graph's work. */
interface CpuPlan extends Plan {
  graph: Graph;
  kernels: CpuKernel[];
  work: number;
}

/** Options of the CPU device. */
export interface CpuDeviceOptions {
  /**
   * Threads a large node is split over (`-t`): the calling thread plus threads-1 Web Workers;
   * default: the number of cores.
   */
  threads?: number;
  /**
   * Work (multiply-adds, roughly) from which a node is split over the threads; default
   * {@linkcode PARALLEL_WORK}. Tests set 1 to send every splittable node through the workers.
   */
  parallelWork?: number;
  /**
   * Compute graphs on a graph thread: `planCompute` and `compute` return promises and leave the
   * calling thread free (buffers are then always SharedArrayBuffers). Default false: they run on
   * the calling thread and return when done, as synchronous callers (kernel tests) expect.
   */
  offThread?: boolean;
  /** Off-thread: how long the graph thread stays started without work (default 5 s). */
  idleStopMs?: number;
  /**
   * Off-thread: graphs with less work than this run on the calling thread when nothing is queued
   * (default {@linkcode INLINE_WORK}: cheaper than a trip to the graph thread). Tests of the graph
   * thread set 0.
   */
  inlineWork?: number;
}

/** The CPU device. */
export class CpuDevice implements Device {
  readonly name = "cpu";
  readonly kind = "cpu" as const;
  readonly alignment = CPU_ALIGNMENT;
  readonly maxBufferSize: number;
  readonly description: string;
  /** Threads a large node is split over. */
  readonly threads: number;
  /** Whether graphs compute on a graph thread (`planCompute` returns a promise). */
  readonly offThread: boolean;
  #pool: WorkerPool;
  #thread: GraphThread | null = null;
  #parallelWork: number;
  #allocated = 0;

  constructor(opts: CpuDeviceOptions = {}) {
    const threads = Math.max(1, Math.floor(opts.threads ?? navigator.hardwareConcurrency ?? 1));
    this.threads = threads;
    this.offThread = opts.offThread ?? false;
    // Off-thread, this pool only serves the fallback for hosts where no worker starts: one thread.
    this.#pool = new WorkerPool(this.offThread ? 1 : threads);
    this.#parallelWork = Math.max(1, opts.parallelWork ?? PARALLEL_WORK);
    if (this.offThread) {
      this.#thread = new GraphThread({
        threads,
        parallelWork: this.#parallelWork,
        fallback: (p) => runNodes(p.graph.nodes, p.kernels, this.#pool, this.#parallelWork),
        idleStopMs: opts.idleStopMs,
        inlineWork: opts.inlineWork,
      });
    }
    this.description = `CPU (TypeScript reference, ${threads} thread${threads === 1 ? "" : "s"})`;
    this.maxBufferSize = totalMemory();
  }

  /** Off-thread: graphs that were small enough to run on the calling thread. */
  get inlinedGraphs(): number {
    return this.#thread?.inlined ?? 0;
  }

  /** Whether the graph thread is running now (off-thread device; always false when synchronous). */
  get graphThreadStarted(): boolean {
    return this.#thread?.started ?? false;
  }

  memory(): DeviceMemory {
    const total = totalMemory();
    let free = Math.max(0, total - this.#allocated);
    try {
      free = Math.min(free, Deno.systemMemoryInfo().available);
    } catch {
      // without --allow-sys the estimate above stands
    }
    return { free, total };
  }

  allocBuffer(size: number): DeviceBuffer | null {
    if (!Number.isSafeInteger(size) || size < 0 || size > this.maxBufferSize) return null;
    try {
      const b = new CpuBuffer(this, size, this.threads > 1 || this.offThread);
      this.#allocated += size;
      return b;
    } catch {
      return null; // RangeError: out of memory
    }
  }

  /** Called by a buffer when it is freed. */
  released(b: CpuBuffer): void {
    this.#allocated -= b.size;
    this.#pool.forget(b.bytes);
    this.#thread?.forget(b.bytes);
  }

  allocSize(tensor: Tensor): number {
    return nbytes(tensor);
  }

  supportsOp(node: Tensor): boolean {
    return kernelFor(node) !== undefined;
  }

  planCreate(graph: Graph): Plan {
    const kernels = graph.nodes.map(resolveKernel);
    return { graph, kernels, work: graphWork(graph.nodes, kernels) } as CpuPlan;
  }

  planUpdate(_plan: Plan, graph: Graph): Plan {
    return this.planCreate(graph);
  }

  /**
   * Runs a plan: on the calling thread, returning when done (synchronous device), or on the graph
   * thread, resolving when done and rejecting with the kernel's error (off-thread device).
   */
  planCompute(plan: Plan): void | Promise<void> {
    const p = plan as CpuPlan;
    if (this.#thread) return this.#thread.run(p);
    runNodes(p.graph.nodes, p.kernels, this.#pool, this.#parallelWork);
  }

  planFree(_plan: Plan): void {}

  compute(graph: Graph): void | Promise<void> {
    if (!this.#thread) return this.planCompute(this.planCreate(graph));
    try {
      return this.planCompute(this.planCreate(graph));
    } catch (e) {
      return Promise.reject(e); // off-thread, every failure is a rejection
    }
  }

  /** Waits for the graphs queued on the graph thread (nothing to wait for when synchronous). */
  synchronize(): void | Promise<void> {
    return this.#thread?.idle();
  }

  /**
   * Abandons the graphs in flight or queued on the graph thread: their computes reject at once
   * with a DeviceError and the threads stop (a later compute starts them again; the node that was
   * running may still be writing its output for a moment). The server calls it when it closes, so
   * that Ctrl+C does not wait for a long graph. Nothing to do when synchronous: no compute can be
   * in flight while the caller runs.
   */
  abort(): void {
    this.#thread?.abort("cpu: graph abandoned (the device was aborted)");
  }

  /** Stops the worker threads (and the graph thread; computes in flight reject). */
  close(): void {
    this.#pool.close();
    this.#thread?.close();
  }
}

function resolveKernel(node: Tensor): CpuKernel {
  const k = kernelFor(node);
  if (!k) throw new UnsupportedOpError(`cpu does not support ${describeNode(node)}`);
  return k;
}

function totalMemory(): number {
  try {
    return Deno.systemMemoryInfo().total;
  } catch {
    return 4 * 2 ** 30;
  }
}
