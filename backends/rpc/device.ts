/**
 * A device of a remote ggml RPC server (graphwire's or ggml's) as a local {@linkcode Device}:
 * buffers are remote buffers, plans are encoded GRAPH_COMPUTE payloads, and running a plan whose
 * graph the device already holds sends GRAPH_RECOMPUTE (the connection's `reuse` decides).
 *
 * @example
 * ```ts
 * const conn = await RpcConnection.connect("127.0.0.1:50052");
 * const dev = await RpcDevice.open(conn, 0);
 * const buf = await dev.allocBuffer(1024);
 * ```
 * @module
 */

import type { RpcConnection } from "../../protocol/client.ts";
import type { Graph } from "../../protocol/graph/graph.ts";
import { GgmlOp } from "../../protocol/graph/ops.ts";
import { nbytes, type Tensor } from "../../protocol/graph/tensor.ts";
import { GgmlType, typeInfo } from "../../protocol/graph/types.ts";
import { emptyRpcTensor, type RpcTensor } from "../../protocol/wire/tensor.ts";
import type { Device, DeviceBuffer, DeviceMemory, Plan } from "../device.ts";
import { encodeGraph, tensorToWire } from "./serialize.ts";

/** Largest byte run one SET/GET/MEMSET/COPY names (its rpc_tensor's ne[0] is a u32). */
const MAX_REGION = 1 << 30;

/** A buffer on a remote server. */
export class RpcBuffer implements DeviceBuffer {
  readonly device: RpcDevice;
  readonly size: number;
  /** The handle ALLOC_BUFFER returned. */
  readonly remotePtr: bigint;
  /** BUFFER_GET_BASE: the address of byte 0 as the server counts. */
  readonly base: bigint;
  #freed = false;

  constructor(device: RpcDevice, size: number, remotePtr: bigint, base: bigint) {
    this.device = device;
    this.size = size;
    this.remotePtr = remotePtr;
    this.base = base;
  }

  /** The connection the buffer lives on. */
  get connection(): RpcConnection {
    return this.device.connection;
  }

  /** A 1-d i8 tensor spanning `size` bytes at `offset`: how raw byte ranges are named on the wire. */
  region(offset: number, size: number): RpcTensor {
    const t = emptyRpcTensor();
    t.type = GgmlType.I8;
    t.buffer = this.remotePtr;
    t.ne = [size, 1, 1, 1];
    t.nb = [1, size, size, size];
    t.data = this.base + BigInt(offset);
    return t;
  }

  async set(offset: number, data: Uint8Array): Promise<void> {
    for (let at = 0; at < data.length; at += MAX_REGION) {
      const part = data.subarray(at, Math.min(data.length, at + MAX_REGION));
      await this.connection.uploadTensor(this.region(offset + at, part.length), 0, part);
    }
  }

  async get(offset: number, size: number): Promise<Uint8Array> {
    const out = new Uint8Array(size);
    await this.getInto(offset, out);
    return out;
  }

  /** The answers are read from the socket straight into `dst`. */
  async getInto(offset: number, dst: Uint8Array): Promise<void> {
    for (let at = 0; at < dst.length; at += MAX_REGION) {
      const n = Math.min(MAX_REGION, dst.length - at);
      await this.connection.getTensorInto(this.region(offset + at, n), 0, dst.subarray(at, at + n));
    }
  }

  async memset(offset: number, size: number, value: number): Promise<void> {
    for (let at = 0; at < size; at += MAX_REGION) {
      const n = Math.min(MAX_REGION, size - at);
      await this.connection.memsetTensor(this.region(offset + at, n), 0, n, value);
    }
  }

  async clear(value: number): Promise<void> {
    await this.connection.bufferClear(this.remotePtr, value);
  }

  /** COPY_TENSOR when `src` is on the same server (any device of it); false otherwise. */
  async copyFrom(src: DeviceBuffer, srcOffset: number, dstOffset: number, size: number): Promise<boolean> {
    if (!(src instanceof RpcBuffer) || src.connection !== this.connection) return false;
    for (let at = 0; at < size; at += MAX_REGION) {
      const n = Math.min(MAX_REGION, size - at);
      const ok = await this.connection.copyTensor(
        src.region(srcOffset + at, n),
        this.region(dstOffset + at, n),
      );
      if (!ok) return false;
    }
    return true;
  }

  async free(): Promise<void> {
    if (this.#freed) return;
    this.#freed = true;
    if (!this.connection.closed) await this.connection.freeBuffer(this.remotePtr);
  }
}

/** A plan: the graph and its payload, encoded once per uid (uid-less graphs every run). */
interface RpcPlan extends Plan {
  graph: Graph;
  payload: Uint8Array | null;
  payloadUid: bigint;
}

/** One device of a remote server. */
export class RpcDevice implements Device {
  readonly kind = "rpc" as const;
  readonly name: string;
  readonly description: string;
  readonly alignment: number;
  readonly maxBufferSize: number;
  /** The server's device index. */
  readonly index: number;
  readonly connection: RpcConnection;
  #onClose: (() => void) | null;

  private constructor(
    conn: RpcConnection,
    index: number,
    name: string,
    alignment: number,
    maxBufferSize: number,
    onClose: (() => void) | null,
  ) {
    this.connection = conn;
    this.index = index;
    this.name = name;
    const v = conn.version;
    this.description = `device ${index} of ${conn.endpoint} (ggml RPC ${v.major}.${v.minor}.${v.patch})`;
    this.alignment = alignment;
    this.maxBufferSize = maxBufferSize;
    this.#onClose = onClose;
  }

  /**
   * Device `index` of the server behind `conn`, with its alignment and largest buffer asked once.
   * `onClose` runs when the device is closed (the connection pool's release).
   */
  static async open(
    conn: RpcConnection,
    index: number,
    name = `rpc:${conn.endpoint}/${index}`,
    onClose: (() => void) | null = null,
  ): Promise<RpcDevice> {
    const alignment = Number(await conn.getAlignment(index));
    const maxSize = Number(await conn.getMaxSize(index));
    return new RpcDevice(conn, index, name, alignment, maxSize, onClose);
  }

  async memory(): Promise<DeviceMemory> {
    const m = await this.connection.getDeviceMemory(this.index);
    return { free: Number(m.free), total: Number(m.total) };
  }

  async allocBuffer(size: number): Promise<DeviceBuffer | null> {
    if (!Number.isSafeInteger(size) || size < 0 || size > this.maxBufferSize) return null;
    const r = await this.connection.allocBuffer(this.index, size);
    if (r.remotePtr === 0n) return null;
    const base = await this.connection.bufferGetBase(r.remotePtr);
    return new RpcBuffer(this, Number(r.remoteSize), r.remotePtr, base);
  }

  /**
   * nbytes, except where ggml's client asks the server (GET_ALLOC_SIZE): quantized tensors whose
   * rows are not a multiple of 512 and that are not views, FLASH_ATTN_EXT and MUL_MAT_ID nodes —
   * backends may pad those or keep scratch space behind them.
   */
  async allocSize(t: Tensor): Promise<number> {
    const info = typeInfo(t.type);
    const ask = (!!info?.quantized && t.ne[0] % 512 !== 0 && !t.viewSrc) ||
      t.op === GgmlOp.FLASH_ATTN_EXT || t.op === GgmlOp.MUL_MAT_ID;
    if (!ask) return nbytes(t);
    const srcs = t.src.map((s) => (s ? tensorToWire(s) : emptyRpcTensor()));
    return Number(await this.connection.getAllocSize(this.index, tensorToWire(t), srcs));
  }

  /** The protocol cannot ask (ggml's RPC backend answers the same): a server rejects what it lacks. */
  supportsOp(_node: Tensor): boolean {
    return true;
  }

  planCreate(graph: Graph): Plan {
    return { graph, payload: null, payloadUid: 0n } as RpcPlan;
  }

  planUpdate(_plan: Plan, graph: Graph): Plan {
    return this.planCreate(graph);
  }

  /** GRAPH_RECOMPUTE when this device last ran the plan's graph, else GRAPH_COMPUTE. */
  async planCompute(plan: Plan): Promise<void> {
    const p = plan as RpcPlan;
    const uid = p.graph.uid;
    await this.connection.graphComputeReuse(this.index, uid, () => {
      if (uid !== 0n && p.payload && p.payloadUid === uid) return p.payload;
      const bytes = encodeGraph(p.graph, this.index, this.connection);
      if (uid !== 0n) [p.payload, p.payloadUid] = [bytes, uid];
      return bytes;
    });
  }

  planFree(_plan: Plan): void {}

  async compute(graph: Graph): Promise<void> {
    await this.planCompute(this.planCreate(graph));
  }

  /** Nothing to wait for here: every later read (GET_TENSOR) is answered after the work before it. */
  synchronize(): void {}

  close(): void {
    const f = this.#onClose;
    this.#onClose = null;
    f?.();
  }
}
