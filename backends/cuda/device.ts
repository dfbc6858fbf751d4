/**
 * The CUDA/HIP device: buffers are device allocations of the native library, a graph goes to it as
 * one array of node descriptors, and a plan is a native plan — captured as a CUDA graph on its first
 * replay, replayed with one launch, updated in place when only shapes, parameters or pointers
 * change, and launched plainly after several updates in a row (ggml's heuristic).
 * @module
 */

import { DeviceError, UnsupportedOpError } from "../../protocol/errors.ts";
import type { Graph } from "../../protocol/graph/graph.ts";
import { describeNode, nbytes, type Tensor } from "../../protocol/graph/tensor.ts";
import type { Device, DeviceBuffer, DeviceMemory, Plan } from "../device.ts";
import { encodeNodes, fitsDescriptor, NODE_SIZE, writeNode } from "./descriptor.ts";
import { check, lastError, type Native, type NativeLib, Status } from "./ffi.ts";

/** Tensor data alignment of this device (ggml-cuda's is 128). */
export const CUDA_ALIGNMENT = 128;

/** A device allocation. */
export class CudaBuffer implements DeviceBuffer {
  readonly device: CudaDevice;
  readonly size: number;
  /** Device address of byte 0. */
  readonly base: bigint;
  #freed = false;

  constructor(device: CudaDevice, base: bigint, size: number) {
    this.device = device;
    this.base = base;
    this.size = size;
  }

  /** Whether free() ran. */
  get freed(): boolean {
    return this.#freed;
  }

  #live(what: string): NativeLib {
    if (this.#freed) throw new DeviceError(`${what}: buffer was freed`);
    return this.device.lib;
  }

  set(offset: number, data: Uint8Array): void {
    const lib = this.#live("set");
    check(
      lib,
      lib.gw_copy_to_device(this.device.index, this.base + BigInt(offset), data, BigInt(data.length)),
      "set",
    );
  }

  get(offset: number, size: number): Uint8Array {
    const out = new Uint8Array(size);
    this.getInto(offset, out);
    return out;
  }

  getInto(offset: number, dst: Uint8Array): void {
    const lib = this.#live("get");
    check(
      lib,
      lib.gw_copy_to_host(this.device.index, dst, this.base + BigInt(offset), BigInt(dst.length)),
      "get",
    );
  }

  memset(offset: number, size: number, value: number): void {
    const lib = this.#live("memset");
    check(lib, lib.gw_memset(this.device.index, this.base + BigInt(offset), value, BigInt(size)), "memset");
  }

  clear(value: number): void {
    this.memset(0, this.size, value);
  }

  copyFrom(src: DeviceBuffer, srcOffset: number, dstOffset: number, size: number): boolean {
    if (!(src instanceof CudaBuffer) || src.device !== this.device || src.freed) return false;
    const lib = this.#live("copy");
    check(
      lib,
      lib.gw_copy_device(
        this.device.index,
        this.base + BigInt(dstOffset),
        src.base + BigInt(srcOffset),
        BigInt(size),
      ),
      "copy",
    );
    return true;
  }

  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    check(this.device.lib, this.device.lib.gw_free(this.device.index, this.base), "free");
  }
}

/** How a native plan ran (gw_plan_stats). */
export interface PlanStats {
  /** 0 plain launches, 1 CUDA graph (last run). */
  mode: number;
  updatesInARow: number;
  runs: number;
  plainRuns: number;
  graphLaunches: number;
  captures: number;
  instantiations: number;
  execUpdates: number;
  scratchBytes: number;
  nodes: number;
  launches: number;
}

/** A native plan and the descriptors it was made from. */
export interface CudaPlan extends Plan {
  graph: Graph;
  /** gw_plan*, null once freed. */
  handle: Deno.PointerValue;
}

/** What the device reports of itself. */
export interface CudaDeviceInfo {
  name: string;
  totalMemory: number;
  ccMajor: number;
  ccMinor: number;
  multiprocessors: number;
}

/** One GPU of the native library. */
export class CudaDevice implements Device {
  readonly name: string;
  readonly description: string;
  readonly kind: "cuda" | "hip";
  readonly alignment = CUDA_ALIGNMENT;
  readonly maxBufferSize: number;
  readonly info: CudaDeviceInfo;
  /** The library this device runs on. */
  readonly native: Native;
  /** Index of the device in the library. */
  readonly index: number;
  #nodeScratch = new Uint8Array(NODE_SIZE);

  constructor(native: Native, index: number, info: CudaDeviceInfo) {
    this.native = native;
    this.index = index;
    this.info = info;
    this.kind = native.backend;
    this.name = `${native.backend}:${index}`;
    const arch = native.backend === "cuda"
      ? `sm_${info.ccMajor}${info.ccMinor}`
      : `gfx ${info.ccMajor}.${info.ccMinor}`;
    this.description = `${info.name} (${arch}, ${info.multiprocessors} ${
      native.backend === "cuda" ? "SMs" : "CUs"
    }, native ${native.backend})`;
    this.maxBufferSize = info.totalMemory;
  }

  /** The library's symbols. */
  get lib(): NativeLib {
    return this.native.lib;
  }

  memory(): DeviceMemory {
    const free = new BigUint64Array(1), total = new BigUint64Array(1);
    check(this.lib, this.lib.gw_device_memory(this.index, free, total), "memory");
    return { free: Number(free[0]), total: Number(total[0]) };
  }

  allocBuffer(size: number): DeviceBuffer | null {
    if (!Number.isSafeInteger(size) || size < 0 || size > this.maxBufferSize) return null;
    const out = new BigUint64Array(1);
    const st = this.lib.gw_alloc(this.index, BigInt(size), out);
    if (st === Status.OUT_OF_MEMORY) return null;
    check(this.lib, st, `alloc ${size}`);
    return new CudaBuffer(this, out[0], size);
  }

  allocSize(tensor: Tensor): number {
    return nbytes(tensor);
  }

  /** Device address of a tensor's data; null when it has none; throws for another device's buffer. */
  addressOf = (t: Tensor): bigint | null => {
    const b = t.buffer;
    if (!b) return null;
    if (!(b instanceof CudaBuffer) || b.device !== this) {
      throw new DeviceError(`tensor "${t.name}" lives in a buffer of another device`);
    }
    if (b.freed) throw new DeviceError(`tensor "${t.name}" lives in a freed buffer`);
    return b.base + BigInt(t.offset);
  };

  /**
   * Why the library refuses `node` (op, types, shapes), or null when it runs it. Memory is not looked
   * at here — the node may have none yet; plans check every tensor's extent against its buffer.
   */
  whyUnsupported(node: Tensor): string | null {
    if (!fitsDescriptor(node)) return "more sources than a descriptor carries";
    writeNode(new DataView(this.#nodeScratch.buffer), 0, node, () => 0n);
    const st = this.lib.gw_node_supported(this.index, this.#nodeScratch);
    return st === Status.OK ? null : lastError(this.lib);
  }

  supportsOp(node: Tensor): boolean {
    return this.whyUnsupported(node) === null;
  }

  #encode(graph: Graph): Uint8Array {
    for (const n of graph.nodes) {
      if (!fitsDescriptor(n)) {
        throw new UnsupportedOpError(`${this.name} does not support ${describeNode(n)}`);
      }
    }
    return encodeNodes(graph.nodes, this.addressOf);
  }

  planCreate(graph: Graph): CudaPlan {
    const nodes = this.#encode(graph);
    const out = new BigUint64Array(1);
    check(this.lib, this.lib.gw_plan_create(this.index, nodes, graph.nodes.length, out), "plan");
    return { graph, handle: Deno.UnsafePointer.create(out[0]) };
  }

  planUpdate(plan: Plan, graph: Graph): CudaPlan {
    const p = plan as CudaPlan;
    if (!p.handle) return this.planCreate(graph);
    const nodes = this.#encode(graph);
    const st = this.lib.gw_plan_update(p.handle, nodes, graph.nodes.length);
    if (st === Status.STRUCTURE) {
      this.planFree(p);
      return this.planCreate(graph);
    }
    check(this.lib, st, "plan update");
    p.graph = graph;
    return p;
  }

  planCompute(plan: Plan): void {
    const p = plan as CudaPlan;
    if (!p.handle) throw new DeviceError("plan was freed");
    check(this.lib, this.lib.gw_plan_compute(p.handle), "compute");
  }

  planFree(plan: Plan): void {
    const p = plan as CudaPlan;
    if (!p.handle) return;
    this.lib.gw_plan_free(p.handle);
    p.handle = null;
  }

  /** Counters of a plan: how it ran (plain or as a CUDA graph), captures, updates. */
  planStats(plan: Plan): PlanStats {
    const p = plan as CudaPlan;
    const b = new Uint8Array(80);
    check(this.lib, this.lib.gw_plan_get_stats(p.handle, b), "plan stats");
    const v = new DataView(b.buffer);
    const i64 = (o: number) => Number(v.getBigInt64(o, true));
    return {
      mode: v.getInt32(0, true),
      updatesInARow: v.getInt32(4, true),
      runs: i64(8),
      plainRuns: i64(16),
      graphLaunches: i64(24),
      captures: i64(32),
      instantiations: i64(40),
      execUpdates: i64(48),
      scratchBytes: i64(56),
      nodes: v.getInt32(64, true),
      launches: v.getInt32(68, true),
    };
  }

  /** Device time of one run of `plan`: `iters` runs between two device events, after a warm-up run. */
  planTime(plan: Plan, iters: number): number {
    const p = plan as CudaPlan;
    const out = new Float64Array(1);
    check(this.lib, this.lib.gw_plan_time(p.handle, iters, out), "plan time");
    return out[0];
  }

  compute(graph: Graph): void {
    const nodes = this.#encode(graph);
    check(this.lib, this.lib.gw_graph_compute(this.index, nodes, graph.nodes.length), "compute");
  }

  synchronize(): void {
    check(this.lib, this.lib.gw_synchronize(this.index), "synchronize");
  }

  close(): void {
    this.synchronize();
  }
}

/** Reads gw_device_info of device `index`. */
export function deviceInfo(native: Native, index: number): CudaDeviceInfo {
  const b = new Uint8Array(320);
  check(native.lib, native.lib.gw_device_get_info(index, b), `device ${index}`);
  const v = new DataView(b.buffer);
  const nameBytes = b.subarray(0, 256);
  const end = nameBytes.indexOf(0);
  return {
    name: new TextDecoder().decode(nameBytes.subarray(0, end < 0 ? 256 : end)),
    totalMemory: Number(v.getBigUint64(256, true)),
    ccMajor: v.getInt32(272, true),
    ccMinor: v.getInt32(276, true),
    multiprocessors: v.getInt32(280, true),
  };
}
