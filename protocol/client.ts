/**
 * A connection to any ggml RPC 5.1 server (graphwire's or ggml's): HELLO and the version rule, one
 * method per command, and counters of bytes and round trips per command.
 *
 * Requests are serialised: a command that expects an answer waits for it before the next is sent,
 * as the reference client does.
 *
 * @example
 * ```ts
 * const c = await RpcConnection.connect("127.0.0.1:50052");
 * console.log(c.version, await c.deviceCount());
 * c.close();
 * ```
 * @module
 */

import { GraphReuse } from "./cache/graph_reuse.ts";
import { ProtocolError } from "./errors.ts";
import {
  Cmd,
  cmdName,
  CONN_CAPS_SIZE,
  HASH_THRESHOLD,
  RESPONSE_SIZE,
  RPC_PROTO_MAJOR,
  RPC_PROTO_MINOR,
} from "./wire/constants.ts";
import { fnv1a64 } from "./wire/fnv.ts";
import {
  FrameReader,
  frameRequest,
  frameRequestWith,
  readResponse,
  readResponseSize,
} from "./wire/framing.ts";
import { encodeGraphPayload, type GraphPayload, graphPayloadDevice } from "./wire/graph_payload.ts";
import * as msg from "./wire/messages.ts";
import type { RpcTensor } from "./wire/tensor.ts";
import { type Connection, connectTcp, parseEndpoint } from "./wire/transport.ts";

/** Per-command traffic counters. */
export interface CommandStats {
  count: number;
  bytesSent: number;
  bytesReceived: number;
  roundTrips: number;
}

/** The server's version as HELLO reported it. */
export interface ServerVersion {
  major: number;
  minor: number;
  patch: number;
  caps: Uint8Array;
}

/** Largest response the client accepts by default (GET_TENSOR answers are bounded by the request). */
const MAX_RESPONSE = 1n << 40n;
/** SET_TENSOR data from this size on is written from the caller's array, after the frame's head. */
export const SEND_IN_PLACE = 64 * 1024;

/** A client connection. */
export class RpcConnection {
  readonly endpoint: string;
  readonly version: ServerVersion;
  readonly stats: Map<number, CommandStats> = new Map();
  /** Which graph each server device last ran on this connection (GRAPH_RECOMPUTE decisions). */
  readonly reuse: GraphReuse = new GraphReuse();
  #conn: Connection;
  #reader: FrameReader;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** The last command sent that has no answer, until an answer proves the server took it. */
  #unanswered: number | null = null;

  private constructor(endpoint: string, conn: Connection, reader: FrameReader, version: ServerVersion) {
    this.endpoint = endpoint;
    this.#conn = conn;
    this.#reader = reader;
    this.version = version;
  }

  /**
   * Connects and says HELLO. Rejects a server whose major version differs or whose minor is newer
   * than ours (the reference client's rule).
   */
  static async connect(endpoint: string, caps?: Uint8Array): Promise<RpcConnection> {
    const { host, port } = parseEndpoint(endpoint);
    const conn = await connectTcp(host, port);
    try {
      const reader = new FrameReader(conn);
      const req = msg.encodeHelloReq(caps ?? new Uint8Array(CONN_CAPS_SIZE));
      await conn.writeAll(frameRequest(Cmd.HELLO, req));
      const rsp = msg.decodeHelloRsp(await readResponse(reader, 64n));
      if (rsp.major !== RPC_PROTO_MAJOR || rsp.minor > RPC_PROTO_MINOR) {
        throw new ProtocolError(
          `server ${endpoint} speaks RPC ${rsp.major}.${rsp.minor}.${rsp.patch}; this client speaks ${RPC_PROTO_MAJOR}.${RPC_PROTO_MINOR}.x`,
        );
      }
      const c = new RpcConnection(endpoint, conn, reader, rsp);
      c.#count(Cmd.HELLO, 9 + req.length, 8 + 4 + CONN_CAPS_SIZE, true);
      return c;
    } catch (e) {
      conn.close();
      throw e;
    }
  }

  /** Whether close() was called or the server closed the connection. */
  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    this.#closed = true;
    this.#conn.close();
  }

  #count(cmd: number, sent: number, received: number, roundTrip: boolean): void {
    let s = this.stats.get(cmd);
    if (!s) this.stats.set(cmd, s = { count: 0, bytesSent: 0, bytesReceived: 0, roundTrips: 0 });
    s.count++;
    s.bytesSent += sent;
    s.bytesReceived += received;
    if (roundTrip) s.roundTrips++;
  }

  /** Totals over every command. */
  totals(): CommandStats {
    const t = { count: 0, bytesSent: 0, bytesReceived: 0, roundTrips: 0 };
    for (const s of this.stats.values()) {
      t.count += s.count;
      t.bytesSent += s.bytesSent;
      t.bytesReceived += s.bytesReceived;
      t.roundTrips += s.roundTrips;
    }
    return t;
  }

  /** Resets the counters. */
  resetStats(): void {
    this.stats.clear();
  }

  /** Runs `f` after every earlier request has finished (one request in flight at a time). */
  #serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(f, f);
    this.#queue = run.catch(() => {});
    return run;
  }

  /**
   * Sends a frame (whole, or as parts written in order) and, when `expect` is not null, reads a
   * response of exactly that size: into `into` (of that length) when given, else into a new array.
   */
  #call(
    cmd: number,
    frame: Uint8Array | readonly Uint8Array[],
    expect: number | null,
    into?: Uint8Array,
  ): Promise<Uint8Array> {
    return this.#serial(async () => {
      if (this.#closed) throw new ProtocolError(`connection to ${this.endpoint} is closed`);
      try {
        let sent = 0;
        for (const part of frame instanceof Uint8Array ? [frame] : frame) {
          await this.#conn.writeAll(part);
          sent += part.length;
        }
        if (expect === null) {
          this.#count(cmd, sent, 0, false);
          this.#unanswered = cmd;
          return new Uint8Array(0);
        }
        let rsp: Uint8Array;
        if (into) {
          // the size is checked before a byte of the payload lands in the caller's array
          const size = await readResponseSize(this.#reader, MAX_RESPONSE);
          if (size !== expect) {
            throw new ProtocolError(`${cmdName(cmd)}: expected a ${expect}-byte response, got ${size}`);
          }
          if (!(await this.#reader.readInto(into))) {
            throw new ProtocolError("connection closed inside a response");
          }
          rsp = into;
        } else {
          rsp = await readResponse(this.#reader, MAX_RESPONSE);
        }
        this.#unanswered = null;
        if (rsp.length !== expect) {
          throw new ProtocolError(`${cmdName(cmd)}: expected a ${expect}-byte response, got ${rsp.length}`);
        }
        this.#count(cmd, sent, 8 + rsp.length, true);
        return rsp;
      } catch (e) {
        this.close();
        const before = this.#unanswered;
        if (before !== null && !(e instanceof ProtocolError && e.message.includes("expected a"))) {
          // A server refuses a command without an answer only by closing: name the likely culprit.
          throw new ProtocolError(
            `${cmdName(cmd)} to ${this.endpoint}: ${(e as Error).message} — probably refusing the ` +
              `${cmdName(before)} before it, which has no answer (the server's log says why)`,
            { cause: e },
          );
        }
        throw e;
      }
    });
  }

  #req(cmd: number, payload: Uint8Array): Promise<Uint8Array> {
    return this.#call(cmd, frameRequest(cmd, payload), RESPONSE_SIZE[cmd] ?? null);
  }

  /** DEVICE_COUNT. */
  async deviceCount(): Promise<number> {
    return msg.decodeDeviceCountRsp(await this.#req(Cmd.DEVICE_COUNT, new Uint8Array(0)));
  }

  /** ALLOC_BUFFER; remotePtr 0n means the server could not allocate. */
  async allocBuffer(device: number, size: number | bigint): Promise<msg.AllocBufferRsp> {
    return msg.decodeAllocBufferRsp(
      await this.#req(Cmd.ALLOC_BUFFER, msg.encodeAllocBufferReq({ device, size: BigInt(size) })),
    );
  }

  /** GET_ALIGNMENT. */
  async getAlignment(device: number): Promise<bigint> {
    return msg.decodeU64Rsp(
      Cmd.GET_ALIGNMENT,
      await this.#req(Cmd.GET_ALIGNMENT, msg.encodeDeviceReq(device)),
    );
  }

  /** GET_MAX_SIZE. */
  async getMaxSize(device: number): Promise<bigint> {
    return msg.decodeU64Rsp(Cmd.GET_MAX_SIZE, await this.#req(Cmd.GET_MAX_SIZE, msg.encodeDeviceReq(device)));
  }

  /** GET_DEVICE_MEMORY. */
  async getDeviceMemory(device: number): Promise<msg.DeviceMemoryRsp> {
    return msg.decodeDeviceMemoryRsp(await this.#req(Cmd.GET_DEVICE_MEMORY, msg.encodeDeviceReq(device)));
  }

  /** BUFFER_GET_BASE. */
  async bufferGetBase(remotePtr: bigint): Promise<bigint> {
    return msg.decodeU64Rsp(
      Cmd.BUFFER_GET_BASE,
      await this.#req(Cmd.BUFFER_GET_BASE, msg.encodeBufferReq(remotePtr)),
    );
  }

  /** FREE_BUFFER. The server may have dropped its stored graphs with it: reuse starts over. */
  async freeBuffer(remotePtr: bigint): Promise<void> {
    this.reuse.forget();
    await this.#req(Cmd.FREE_BUFFER, msg.encodeBufferReq(remotePtr));
  }

  /** BUFFER_CLEAR. */
  async bufferClear(remotePtr: bigint, value: number): Promise<void> {
    await this.#req(Cmd.BUFFER_CLEAR, msg.encodeBufferClearReq({ remotePtr, value }));
  }

  /**
   * SET_TENSOR (no answer). Small frames are assembled in one buffer and sent with one write; from
   * {@linkcode SEND_IN_PLACE} bytes on, the head goes first and `data` is written from where it lies
   * (no frame to allocate and fill: half the time of a 2 MiB upload), so `data` must not change
   * until the promise resolves.
   */
  async setTensor(tensor: RpcTensor, offset: number | bigint, data: Uint8Array): Promise<void> {
    const r = { tensor, offset: BigInt(offset), data };
    if (data.length >= SEND_IN_PLACE) {
      const head = frameRequestWith(
        Cmd.SET_TENSOR,
        msg.SET_TENSOR_HEAD + data.length,
        (p) => msg.writeSetTensorHead(r, p),
        msg.SET_TENSOR_HEAD,
      );
      await this.#call(Cmd.SET_TENSOR, [head, data], null);
      return;
    }
    const frame = frameRequestWith(
      Cmd.SET_TENSOR,
      msg.SET_TENSOR_HEAD + data.length,
      (p) => msg.writeSetTensorReq(r, p),
    );
    await this.#call(Cmd.SET_TENSOR, frame, null);
  }

  /** SET_TENSOR_HASH: true when the server had the data cached and wrote it. */
  async setTensorHash(tensor: RpcTensor, offset: number | bigint, hash: bigint): Promise<boolean> {
    const rsp = await this.#req(
      Cmd.SET_TENSOR_HASH,
      msg.encodeSetTensorHashReq({ tensor, offset: BigInt(offset), hash }),
    );
    return msg.decodeResultRsp(Cmd.SET_TENSOR_HASH, rsp) === 1;
  }

  /**
   * Uploads data as the reference client does: for more than 10 MiB, SET_TENSOR_HASH first, and
   * SET_TENSOR only when the server did not have it. Returns whether the cache answered.
   */
  async uploadTensor(tensor: RpcTensor, offset: number | bigint, data: Uint8Array): Promise<boolean> {
    if (data.length > HASH_THRESHOLD && await this.setTensorHash(tensor, offset, fnv1a64(data))) return true;
    await this.setTensor(tensor, offset, data);
    return false;
  }

  /** GET_TENSOR. */
  async getTensor(tensor: RpcTensor, offset: number | bigint, size: number | bigint): Promise<Uint8Array> {
    const frame = frameRequest(
      Cmd.GET_TENSOR,
      msg.encodeGetTensorReq({ tensor, offset: BigInt(offset), size: BigInt(size) }),
    );
    return await this.#call(Cmd.GET_TENSOR, frame, Number(size));
  }

  /** GET_TENSOR of `dst.length` bytes, read straight into `dst` (no array of its own, no copy). */
  async getTensorInto(tensor: RpcTensor, offset: number | bigint, dst: Uint8Array): Promise<void> {
    const frame = frameRequest(
      Cmd.GET_TENSOR,
      msg.encodeGetTensorReq({ tensor, offset: BigInt(offset), size: BigInt(dst.length) }),
    );
    await this.#call(Cmd.GET_TENSOR, frame, dst.length, dst);
  }

  /** COPY_TENSOR: true when the server copied. */
  async copyTensor(src: RpcTensor, dst: RpcTensor): Promise<boolean> {
    return msg.decodeResultRsp(
      Cmd.COPY_TENSOR,
      await this.#req(Cmd.COPY_TENSOR, msg.encodeCopyTensorReq({ src, dst })),
    ) === 1;
  }

  /** GRAPH_COMPUTE (no answer) with an encoded payload. */
  async graphComputeRaw(payload: Uint8Array): Promise<void> {
    this.reuse.sent(graphPayloadDevice(payload), 0n, payload);
    await this.#call(Cmd.GRAPH_COMPUTE, frameRequest(Cmd.GRAPH_COMPUTE, payload), null);
  }

  /**
   * Runs a graph on `device` the way ggml's client does: GRAPH_RECOMPUTE (4 bytes) when it is the
   * graph that device last ran on this connection — same non-zero `uid`, or for uid 0 the same
   * payload bytes — else GRAPH_COMPUTE with `payload()` (called only when needed unless uid is 0).
   * Resolves true when it recomputed. `reuse.enabled = false` always sends the graph.
   */
  async graphComputeReuse(device: number, uid: bigint, payload: () => Uint8Array): Promise<boolean> {
    const bytes = uid === 0n ? payload() : undefined;
    if (this.reuse.canRecompute(device, uid, bytes)) {
      await this.graphRecompute(device);
      return true;
    }
    const p = bytes ?? payload();
    if (graphPayloadDevice(p) !== device) {
      throw new ProtocolError(`graph payload is for device ${graphPayloadDevice(p)}, not ${device}`);
    }
    // Recorded before the send so that a graph queued right behind this one decides correctly.
    this.reuse.sent(device, uid, p);
    await this.#call(Cmd.GRAPH_COMPUTE, frameRequest(Cmd.GRAPH_COMPUTE, p), null);
    return false;
  }

  /** GRAPH_COMPUTE (no answer). */
  async graphCompute(g: GraphPayload): Promise<void> {
    await this.graphComputeRaw(encodeGraphPayload(g));
  }

  /** GRAPH_RECOMPUTE (no answer): re-runs the graph last computed on `device`. */
  async graphRecompute(device: number): Promise<void> {
    await this.#call(
      Cmd.GRAPH_RECOMPUTE,
      frameRequest(Cmd.GRAPH_RECOMPUTE, msg.encodeDeviceReq(device)),
      null,
    );
  }

  /** INIT_TENSOR. */
  async initTensor(tensor: RpcTensor): Promise<void> {
    await this.#req(Cmd.INIT_TENSOR, msg.encodeInitTensorReq(tensor));
  }

  /** GET_ALLOC_SIZE. */
  async getAllocSize(device: number, tensor: RpcTensor, srcs: RpcTensor[] = []): Promise<bigint> {
    return msg.decodeU64Rsp(
      Cmd.GET_ALLOC_SIZE,
      await this.#req(Cmd.GET_ALLOC_SIZE, msg.encodeGetAllocSizeReq({ device, tensor, srcs })),
    );
  }

  /** MEMSET_TENSOR. */
  async memsetTensor(
    tensor: RpcTensor,
    offset: number | bigint,
    size: number | bigint,
    value: number,
  ): Promise<void> {
    await this.#req(
      Cmd.MEMSET_TENSOR,
      msg.encodeMemsetTensorReq({ tensor, offset: BigInt(offset), size: BigInt(size), value }),
    );
  }

  /** Sends a raw frame and reads a raw response of `expect` bytes (null: none). For tools and tests. */
  rawCall(cmd: number, frame: Uint8Array, expect: number | null): Promise<Uint8Array> {
    return this.#call(cmd, frame, expect);
  }
}
