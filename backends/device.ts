/**
 * The one interface every backend implements — local (cpu, webgpu, cuda, hip) or remote (rpc).
 * The server maps wire commands onto it and nothing else; the scheduler and the bench see only
 * Devices, so a test written against this interface runs on every backend.
 *
 * Methods return {@linkcode Awaitable}: synchronous backends return values, remote ones promises;
 * callers always `await`.
 * @module
 */

import type { Graph } from "../protocol/graph/graph.ts";
import type { Tensor } from "../protocol/graph/tensor.ts";

/** A value or a promise of it. */
export type Awaitable<T> = T | Promise<T>;

/** The families of devices graphwire knows. */
export type DeviceKind = "cpu" | "webgpu" | "cuda" | "hip" | "rpc";

/** Device memory in bytes. */
export interface DeviceMemory {
  free: number;
  total: number;
}

/** A block of device memory. Offsets and sizes are bytes; callers have checked the ranges. */
export interface DeviceBuffer {
  readonly device: Device;
  readonly size: number;
  /** Writes `data` at `offset`. */
  set(offset: number, data: Uint8Array): Awaitable<void>;
  /** Reads `size` bytes at `offset` (waits for the device where it must). */
  get(offset: number, size: number): Awaitable<Uint8Array>;
  /**
   * Reads `dst.length` bytes at `offset` into `dst` (optional: the server's GET_TENSOR then copies
   * device memory straight into the response frame, without a buffer of its own in between).
   */
  getInto?(offset: number, dst: Uint8Array): Awaitable<void>;
  /** Sets `size` bytes at `offset` to `value`. */
  memset(offset: number, size: number, value: number): Awaitable<void>;
  /** Sets every byte to `value`. */
  clear(value: number): Awaitable<void>;
  /**
   * Copies `size` bytes from `src` at `srcOffset` to this buffer at `dstOffset`. Resolves false when
   * this device cannot copy from `src` directly (another device), as ggml's cpy_tensor does.
   */
  copyFrom(src: DeviceBuffer, srcOffset: number, dstOffset: number, size: number): Awaitable<boolean>;
  /** Releases the memory; the buffer must not be used afterwards. */
  free(): Awaitable<void>;
}

/**
 * Whatever makes the next run of a graph cheap on a backend: pipelines and bind groups (WebGPU), a
 * captured CUDA graph, or just the resolved node list (cpu). Opaque to callers.
 */
export interface Plan {
  /** The graph this plan currently runs. */
  readonly graph: Graph;
}

/** A compute device. */
export interface Device {
  /** Registry name: "cpu", "webgpu:0", "cuda:0", "rpc:HOST:PORT/0". */
  readonly name: string;
  /** What the hardware is, for banners ("NVIDIA H100 80GB HBM3", "CPU (2 threads)"). */
  readonly description: string;
  readonly kind: DeviceKind;
  /**
   * A GPU emulated on the CPU (llvmpipe, SwiftShader): served when named, but never chosen as the
   * best device over the CPU reference, which runs models several times faster than one.
   */
  readonly emulated?: boolean;
  /** Required alignment of tensor data in bytes (GET_ALIGNMENT); a power of two. */
  readonly alignment: number;
  /** Largest single buffer in bytes (GET_MAX_SIZE). */
  readonly maxBufferSize: number;
  /** Free and total memory, as honestly as the backend can tell. */
  memory(): Awaitable<DeviceMemory>;
  /** Allocates `size` bytes; null when the device cannot (out of memory, over maxBufferSize). */
  allocBuffer(size: number): Awaitable<DeviceBuffer | null>;
  /** Bytes to allocate for `tensor` (GET_ALLOC_SIZE); at least its nbytes. */
  allocSize(tensor: Tensor): Awaitable<number>;
  /** Whether this device runs `node` (op, sub-op, types, layout) — read from its kernel table. */
  supportsOp(node: Tensor): boolean;
  /** Prepares a graph for running; every node is supported (the caller checked). */
  planCreate(graph: Graph): Awaitable<Plan>;
  /**
   * Re-targets `plan` at `graph`, which has the same structure as the plan's graph (same nodes,
   * ops, types and topology; shapes, op_params and addresses may differ). May return a new plan.
   */
  planUpdate(plan: Plan, graph: Graph): Awaitable<Plan>;
  /** Runs a plan. Returns once the work is queued; reads of results wait where they must. */
  planCompute(plan: Plan): Awaitable<void>;
  /** Releases what the plan holds. */
  planFree(plan: Plan): Awaitable<void>;
  /** Create-and-run for callers that keep no plans. */
  compute(graph: Graph): Awaitable<void>;
  /** Waits until all queued work is done. */
  synchronize(): Awaitable<void>;
  /**
   * Abandons work in flight or queued: the computes waiting for it reject at once. Optional: for
   * devices whose computes are promises that can take long (the off-thread CPU device). The server
   * calls it when it closes, so that a long graph does not hold up Ctrl+C.
   */
  abort?(): void;
  /** Releases the device. */
  close(): Awaitable<void>;
}
