/**
 * The CPU device: buffers are ArrayBuffers in this process; kernels are the TypeScript reference
 * implementations of backends/cpu/ops. It is graphwire's executable definition of each op and the
 * device of hosts without a GPU.
 * @module
 */

import { DeviceError, UnsupportedOpError } from "../../protocol/errors.ts";
import type { Graph } from "../../protocol/graph/graph.ts";
import { describeNode, nbytes, type Tensor } from "../../protocol/graph/tensor.ts";
import type { Device, DeviceBuffer, DeviceMemory, Plan } from "../device.ts";
import { type CpuKernel, kernelFor, kernelKey } from "./ops/mod.ts";
import { WorkerPool } from "./pool.ts";

/** ggml's CPU buffer alignment (TENSOR_ALIGNMENT). */
export const CPU_ALIGNMENT = 32;

/**
 * Work (multiply-adds, roughly) above which a node is split over the worker threads: a round trip
 * to the workers costs a few hundred microseconds.
 */
export const PARALLEL_WORK = 1 << 20;

/**
 * A CPU buffer: plain bytes in this process (in a SharedArrayBuffer when the device has worker
 * threads, so that they can compute into it).
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

/** A CPU plan: the kernel of every node, resolved once. */
interface CpuPlan extends Plan {
  graph: Graph;
  kernels: CpuKernel[];
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
  #pool: WorkerPool;
  #parallelWork: number;
  #allocated = 0;

  constructor(opts: CpuDeviceOptions = {}) {
    const threads = Math.max(1, Math.floor(opts.threads ?? navigator.hardwareConcurrency ?? 1));
    this.threads = threads;
    this.#pool = new WorkerPool(threads);
    this.#parallelWork = Math.max(1, opts.parallelWork ?? PARALLEL_WORK);
    this.description = `CPU (TypeScript reference, ${threads} thread${threads === 1 ? "" : "s"})`;
    this.maxBufferSize = totalMemory();
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
      const b = new CpuBuffer(this, size, this.threads > 1);
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
  }

  allocSize(tensor: Tensor): number {
    return nbytes(tensor);
  }

  supportsOp(node: Tensor): boolean {
    return kernelFor(node) !== undefined;
  }

  planCreate(graph: Graph): Plan {
    return { graph, kernels: graph.nodes.map(resolveKernel) } as CpuPlan;
  }

  planUpdate(_plan: Plan, graph: Graph): Plan {
    return this.planCreate(graph);
  }

  planCompute(plan: Plan): void {
    const p = plan as CpuPlan;
    const nodes = p.graph.nodes;
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i];
      if (nbytes(node) === 0) continue;
      if (!node.buffer) throw new DeviceError(`node ${describeNode(node)} has no data`);
      const k = p.kernels[i];
      const work = k.work && this.#pool.usable ? k.work(node) : 0;
      if (work >= this.#parallelWork) {
        const nth = Math.min(this.threads, Math.ceil(work / this.#parallelWork));
        this.#pool.run(kernelKey(node), node, nth, (ith, n) => k.run(node, ith, n));
      } else {
        k.run(node, 0, 1);
      }
    }
  }

  planFree(_plan: Plan): void {}

  compute(graph: Graph): void {
    this.planCompute(this.planCreate(graph));
  }

  synchronize(): void {}

  /** Stops the worker threads. */
  close(): void {
    this.#pool.close();
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
