/**
 * The RPC server: accepts connections, says HELLO, and maps each command onto the Device
 * interface. Every connection has its own buffers (freed when it closes) and its own stored graphs;
 * connections are served concurrently. Any bad byte ends only the connection it came on, with one
 * log line; the process and every other connection carry on.
 *
 * @example
 * ```ts
 * const server = new RpcServer({ devices: [new CpuDevice()] });
 * const listener = listenTcp("127.0.0.1", 50052);
 * await server.serve(listener);
 * ```
 * @module
 */

import type { Device, DeviceBuffer } from "../backends/device.ts";
import { DeviceError, ProtocolError, UnsupportedOpError, ValidationError } from "./errors.ts";
import { GraphStore } from "./cache/graph_store.ts";
import { TensorCache } from "./cache/tensor_cache.ts";
import { type BufferEntry, graphFromPayload, tensorFromWire } from "./graph/from_wire.ts";
import { describeNode, nbytes, type Tensor } from "./graph/tensor.ts";
import {
  Cmd,
  CMD_COUNT,
  cmdName,
  CONN_CAPS_SIZE,
  RESPONSE_HEADER_SIZE,
  RPC_PROTO_MAJOR,
  RPC_PROTO_MINOR,
  RPC_PROTO_PATCH,
  RPC_TENSOR_SIZE,
} from "./wire/constants.ts";
import { hashHex } from "./wire/fnv.ts";
import { FrameReader, frameResponse, readPayload, readPayloadInto, readRequestHead } from "./wire/framing.ts";
import { decodeGraphPayload, graphPayloadDevice } from "./wire/graph_payload.ts";
import * as msg from "./wire/messages.ts";
import type { Connection, Listener } from "./wire/transport.ts";
import { decodeRpcTensor, type RpcTensor } from "./wire/tensor.ts";

/** Default cap on one frame's payload: 4 GiB. */
export const DEFAULT_MAX_FRAME = 4n * 1024n * 1024n * 1024n;

/** Server settings. */
export interface ServerOptions {
  /** The devices served, in the order clients index them. */
  devices: Device[];
  /** Tensor cache (`-c`), or null for none. */
  cache?: TensorCache | null;
  /** Most bytes handed out per device across all connections (`-m`); 0 or absent = no limit. */
  memLimit?: number;
  /** Largest payload accepted in one frame (`--max-frame`). */
  maxFrame?: bigint;
  /** One log line per command with its sizes (`-v`, `GGML_RPC_DEBUG=1`). */
  debug?: boolean;
  /** Where log lines go (default: stderr). */
  log?: (line: string) => void;
  /**
   * Host memory all connections together may keep between commands to reuse (answer frames,
   * upload scratch); beyond it, payloads get arrays of their own. Default 256 MiB.
   */
  reuseLimit?: number;
}

/** Default of {@linkcode ServerOptions.reuseLimit}. */
export const DEFAULT_REUSE_LIMIT = 256 << 20;

/** Counters a test or a status line can read. */
export interface ServerStats {
  accepted: number;
  active: number;
  closedClean: number;
  closedWithError: number;
  commands: number;
  graphsCreated: number;
  graphsUpdated: number;
  graphsReused: number;
  recomputes: number;
}

const VIRTUAL_SLOT = 1n << 40n;
/** SET_TENSOR payloads above this size are streamed to the device instead of read whole. */
const STREAM_MIN = 4 << 20;
/** Chunk size of streamed uploads. */
const STREAM_CHUNK = 4 << 20;

/** A response already framed (size header included), written as it is. */
class Framed {
  constructor(readonly bytes: Uint8Array) {}
}

/**
 * GET_TENSOR responses up to this size are framed in a buffer each connection keeps. A fresh
 * buffer per token's logits cost more than the copy itself: zeroing, page faults, unmapping and
 * the collections that external memory brings on.
 */
const RESPONSE_REUSE_MAX = 16 << 20;

/**
 * The bytes connections keep for reuse, counted against one limit: a peer that opens many
 * connections and reads or writes a large tensor on each must not make the server hold that much
 * memory after the fact (unlike device buffers, these are not covered by `-m`).
 */
class ReuseBudget {
  used = 0;
  constructor(readonly limit: number) {}

  /** Reserves `n` bytes; false (nothing reserved) when that would pass the limit. */
  take(n: number): boolean {
    if (this.used + n > this.limit) return false;
    this.used += n;
    return true;
  }
}

/** Per-connection state. */
class Session {
  readonly buffers = new Map<bigint, BufferEntry>();
  readonly graphs = new GraphStore();
  #nextBase = VIRTUAL_SLOT;
  #frame: Uint8Array | null = null;
  /**
   * SET_TENSOR payloads (a token's inputs, a prompt's mask) and streamed upload chunks are read into
   * this, reused: every device copies the data before `set` resolves, and the loop awaits it.
   */
  #scratch = new ArrayBuffer(0, { maxByteLength: Math.max(STREAM_MIN, STREAM_CHUNK) });
  /** Bytes of `budget` this connection holds (its frame, and what its scratch may grow to). */
  #held = 0;
  #scratchHeld = 0;
  helloDone = false;

  constructor(readonly conn: Connection, readonly budget: ReuseBudget) {}

  /**
   * `size` bytes to frame a response in. Up to {@linkcode RESPONSE_REUSE_MAX}, and while the
   * budget allows, they are this connection's own buffer, reused by the next response: responses
   * are written one at a time.
   */
  responseFrame(size: number): Uint8Array {
    if (this.#frame && size <= this.#frame.length) return this.#frame.subarray(0, size);
    const have = this.#frame?.length ?? 0;
    if (size > RESPONSE_REUSE_MAX || !this.budget.take(size - have)) return new Uint8Array(size);
    this.#held += size - have;
    this.#frame = new Uint8Array(size);
    return this.#frame.subarray(0, size);
  }

  /**
   * The scratch to read a `size`-byte payload into (it grows as the bytes arrive), or null when
   * the payload should get an array of its own (too large, or the budget is spent).
   */
  #scratchFor(size: number): ArrayBuffer | null {
    if (size <= this.#scratchHeld) return this.#scratch;
    if (size > this.#scratch.maxByteLength || !this.budget.take(size - this.#scratchHeld)) return null;
    this.#held += size - this.#scratchHeld;
    this.#scratchHeld = size;
    return this.#scratch;
  }

  /**
   * Reads a `size`-byte payload that is consumed before the next read (SET_TENSOR's data, an upload
   * chunk): into the scratch when it may hold it, else into an array of its own.
   */
  async readConsumed(reader: FrameReader, size: number): Promise<Uint8Array | null> {
    const scratch = this.#scratchFor(size);
    return scratch ? await readPayloadInto(reader, size, scratch) : await readPayload(reader, size);
  }

  /** Gives back what this connection held of the budget (at its end). */
  releaseReuse(): void {
    this.budget.used -= this.#held;
    this.#held = this.#scratchHeld = 0;
    this.#frame = null;
  }

  /** A fresh handle no one can guess, never 0 and never reused on this connection. */
  newHandle(): bigint {
    const r = new BigUint64Array(1);
    for (;;) {
      crypto.getRandomValues(r);
      const h = r[0];
      if (h !== 0n && !this.buffers.has(h)) return h;
    }
  }

  /** A virtual base address for a buffer of `size` bytes, aligned to 2^40. */
  newBase(size: number): bigint {
    const base = this.#nextBase;
    const span = (BigInt(size) + VIRTUAL_SLOT) / VIRTUAL_SLOT * VIRTUAL_SLOT;
    this.#nextBase += span;
    return base;
  }

  lookup = (handle: bigint): BufferEntry | undefined => this.buffers.get(handle);
}

/** The ggml RPC server. */
export class RpcServer {
  readonly devices: Device[];
  readonly stats: ServerStats = {
    accepted: 0,
    active: 0,
    closedClean: 0,
    closedWithError: 0,
    commands: 0,
    graphsCreated: 0,
    graphsUpdated: 0,
    graphsReused: 0,
    recomputes: 0,
  };
  #cache: TensorCache | null;
  #memLimit: number;
  #maxFrame: bigint;
  #debug: boolean;
  #log: (line: string) => void;
  #allocated: number[];
  #sessions = new Set<Session>();
  #listeners = new Set<Listener>();
  #reuse: ReuseBudget;

  constructor(opts: ServerOptions) {
    if (opts.devices.length === 0) throw new Error("a server needs at least one device");
    this.devices = opts.devices;
    this.#cache = opts.cache ?? null;
    this.#memLimit = opts.memLimit ?? 0;
    this.#maxFrame = opts.maxFrame ?? DEFAULT_MAX_FRAME;
    this.#debug = opts.debug ?? false;
    this.#log = opts.log ?? ((l) => console.error(l));
    // The cache's notes (rejected and removed files) belong in the server's log.
    if (this.#cache) this.#cache.log = this.#log;
    this.#allocated = opts.devices.map(() => 0);
    this.#reuse = new ReuseBudget(opts.reuseLimit ?? DEFAULT_REUSE_LIMIT);
  }

  /** Host bytes connections hold for reuse now (at most `reuseLimit`). */
  get reuseHeld(): number {
    return this.#reuse.used;
  }

  /** Bytes handed out on device `i` across all connections. */
  allocated(i: number): number {
    return this.#allocated[i];
  }

  /** Accepts connections from `listener` until it is closed; each is served concurrently. */
  async serve(listener: Listener): Promise<void> {
    this.#listeners.add(listener);
    const running = new Set<Promise<void>>();
    try {
      for await (const conn of listener) {
        const p = this.handle(conn).finally(() => running.delete(p));
        running.add(p);
      }
    } finally {
      this.#listeners.delete(listener);
      await Promise.allSettled([...running]);
    }
  }

  /**
   * Closes every listener and connection, and abandons the devices' computes in flight
   * (`Device.abort`) so that connections waiting for one end now rather than when it finishes.
   */
  close(): void {
    for (const l of this.#listeners) l.close();
    for (const s of this.#sessions) s.conn.close();
    for (const d of this.devices) d.abort?.();
  }

  /** Serves one connection to its end. Never throws. */
  async handle(conn: Connection): Promise<void> {
    const s = new Session(conn, this.#reuse);
    this.#sessions.add(s);
    this.stats.accepted++;
    this.stats.active++;
    let failure: unknown = null;
    try {
      await this.#loop(s);
    } catch (e) {
      failure = e;
    } finally {
      this.stats.active--;
      this.#sessions.delete(s);
      conn.close();
      s.releaseReuse();
      await this.#release(s);
    }
    if (failure) {
      this.stats.closedWithError++;
      this.#log(`[${conn.peer}] closing connection: ${describeError(failure)}`);
    } else {
      this.stats.closedClean++;
      if (this.#debug) this.#log(`[${conn.peer}] connection closed`);
    }
  }

  async #release(s: Session): Promise<void> {
    await s.graphs.clear(this.devices);
    for (const e of s.buffers.values()) {
      this.#allocated[e.device] -= e.buffer.size;
      try {
        await e.buffer.free();
      } catch (err) {
        this.#log(`[${s.conn.peer}] freeing a buffer failed: ${(err as Error).message}`);
      }
    }
    s.buffers.clear();
  }

  async #loop(s: Session): Promise<void> {
    const reader = new FrameReader(s.conn);
    // Like the reference, a wrong first command, an unknown command or a wrong size for a
    // fixed-size command is refused as soon as it is seen, before any payload is waited for.
    const check = (cmd: number) => {
      if (!s.helloDone) {
        if (cmd !== Cmd.HELLO) throw new ProtocolError(`first command must be HELLO, got ${cmdName(cmd)}`);
      } else if (cmd === Cmd.HELLO) {
        throw new ProtocolError("second HELLO on one connection");
      }
      if (cmd >= CMD_COUNT) throw new ProtocolError(`unknown command ${cmd}`);
    };
    for (;;) {
      let head;
      try {
        head = await readRequestHead(reader, this.#maxFrame, check);
      } catch (e) {
        // A reset by the peer between frames is a normal way for clients to leave.
        if (e instanceof Deno.errors.ConnectionReset && reader.buffered === 0) return;
        throw e;
      }
      if (head === null) return;
      this.stats.commands++;
      const { cmd, size } = head;
      msg.expectRequestSize(cmd, Number(size));
      if (
        cmd === Cmd.SET_TENSOR && size > BigInt(STREAM_MIN) &&
        !(this.#cache && TensorCache.wants(Number(size)))
      ) {
        await this.#setTensorStreaming(s, reader, Number(size));
        continue;
      }
      // SET_TENSOR's data is consumed before dispatch resolves; other payloads may be kept (graphs)
      const payload = cmd === Cmd.SET_TENSOR && size <= BigInt(STREAM_MIN)
        ? await s.readConsumed(reader, Number(size))
        : await readPayload(reader, Number(size));
      if (payload === null) {
        throw new ProtocolError(`connection ended inside a ${size}-byte payload of ${cmdName(cmd)}`);
      }
      const rsp = await this.#dispatch(s, cmd, payload);
      if (rsp !== null) await s.conn.writeAll(rsp instanceof Framed ? rsp.bytes : frameResponse(rsp));
    }
  }

  /**
   * SET_TENSOR without holding the whole payload: the head is read and checked first, then the data
   * goes to the device in chunks as it arrives. Large uploads (model weights) thus need no payload
   * allocation of their size and no second full copy.
   */
  async #setTensorStreaming(s: Session, reader: FrameReader, size: number): Promise<void> {
    const head = new Uint8Array(msg.SET_TENSOR_HEAD);
    if (!(await reader.readInto(head))) throw new ProtocolError("connection ended inside a SET_TENSOR head");
    const rt = decodeRpcTensor(head, 0);
    const offset = new DataView(head.buffer).getBigUint64(RPC_TENSOR_SIZE, true);
    const n = size - msg.SET_TENSOR_HEAD;
    const t = this.#bufferedTensor(s, rt, Cmd.SET_TENSOR);
    const at = this.#range(s, rt, offset, BigInt(n), Cmd.SET_TENSOR);
    this.#dbg(
      s,
      () =>
        `[set_tensor] buffer: ${rt.buffer.toString(16)}, data: ${
          rt.data.toString(16)
        }, offset: ${offset}, size: ${n}`,
    );
    for (let done = 0; done < n;) {
      const k = Math.min(STREAM_CHUNK, n - done);
      const part = await s.readConsumed(reader, k);
      if (part === null) {
        throw new ProtocolError(`connection ended inside a ${size}-byte SET_TENSOR`);
      }
      await t.buffer.set(at + done, part);
      done += k;
    }
  }

  /** Logs a command line in debug mode; `line` is only built when it will be printed. */
  #dbg(s: Session, line: () => string): void {
    if (this.#debug) this.#log(`[${s.conn.peer}] ${line()}`);
  }

  #device(index: number, cmd: number): Device {
    const d = this.devices[index];
    if (!d) {
      throw new ValidationError(
        `${cmdName(cmd)}: device ${index} does not exist (${this.devices.length} served)`,
      );
    }
    return d;
  }

  /** The tensor with a buffer this connection owns (SET/GET/MEMSET/COPY need one). */
  #bufferedTensor(s: Session, rt: RpcTensor, cmd: number): Tensor & { buffer: DeviceBuffer } {
    const t = tensorFromWire(rt, s.lookup, `${cmdName(cmd)} tensor`);
    if (!t.buffer) throw new ValidationError(`${cmdName(cmd)}: tensor id ${rt.id} has no buffer`);
    return t as Tensor & { buffer: DeviceBuffer };
  }

  /** Checks data + offset + size against the buffer as the reference does, in BigInt. */
  #range(s: Session, rt: RpcTensor, offset: bigint, size: bigint, cmd: number): number {
    const e = s.buffers.get(rt.buffer)!;
    const start = rt.data + offset;
    const end = e.base + e.size;
    if (start < e.base || start >= end || size > end - start) {
      throw new ValidationError(
        `${cmdName(cmd)}: region data=0x${rt.data.toString(16)} offset=${offset} size=${size} ` +
          `is outside its buffer [0x${e.base.toString(16)}, 0x${end.toString(16)})`,
      );
    }
    return Number(start - e.base);
  }

  async #dispatch(s: Session, cmd: number, p: Uint8Array): Promise<Uint8Array | Framed | null> {
    switch (cmd) {
      case Cmd.HELLO: {
        msg.decodeHelloReq(p);
        s.helloDone = true;
        this.#dbg(s, () => `[hello] version: ${RPC_PROTO_MAJOR}.${RPC_PROTO_MINOR}.${RPC_PROTO_PATCH}`);
        // Capabilities stay zero: qpn 0 means "no RDMA", so both sides remain on TCP.
        return msg.encodeHelloRsp({
          major: RPC_PROTO_MAJOR,
          minor: RPC_PROTO_MINOR,
          patch: RPC_PROTO_PATCH,
          caps: new Uint8Array(CONN_CAPS_SIZE),
        });
      }
      case Cmd.DEVICE_COUNT: {
        msg.expectRequestSize(cmd, p);
        return msg.encodeDeviceCountRsp(this.devices.length);
      }
      case Cmd.ALLOC_BUFFER: {
        const r = msg.decodeAllocBufferReq(p);
        const dev = this.#device(r.device, cmd);
        const buf = await this.#alloc(r.device, dev, r.size);
        if (!buf) {
          this.#dbg(s, () => `[alloc_buffer] device: ${r.device}, size: ${r.size} -> failed`);
          return msg.encodeAllocBufferRsp({ remotePtr: 0n, remoteSize: 0n });
        }
        const handle = s.newHandle();
        s.buffers.set(handle, {
          buffer: buf,
          base: s.newBase(buf.size),
          size: BigInt(buf.size),
          device: r.device,
        });
        this.#dbg(
          s,
          () =>
            `[alloc_buffer] device: ${r.device}, size: ${r.size} -> remote_ptr: ${
              handle.toString(16)
            }, remote_size: ${buf.size}`,
        );
        return msg.encodeAllocBufferRsp({ remotePtr: handle, remoteSize: BigInt(buf.size) });
      }
      case Cmd.GET_ALIGNMENT: {
        const { device } = msg.decodeDeviceReq(cmd, p);
        const a = this.#device(device, cmd).alignment;
        this.#dbg(s, () => `[get_alignment] device: ${device}, alignment: ${a}`);
        return msg.encodeU64Rsp(BigInt(a));
      }
      case Cmd.GET_MAX_SIZE: {
        const { device } = msg.decodeDeviceReq(cmd, p);
        let m = this.#device(device, cmd).maxBufferSize;
        if (this.#memLimit > 0) m = Math.min(m, this.#memLimit);
        this.#dbg(s, () => `[get_max_size] device: ${device}, max_size: ${m}`);
        return msg.encodeU64Rsp(BigInt(m));
      }
      case Cmd.GET_DEVICE_MEMORY: {
        const { device } = msg.decodeDeviceReq(cmd, p);
        const mem = await this.memory(device);
        this.#dbg(
          s,
          () => `[get_device_memory] device: ${device}, free_mem: ${mem.free}, total_mem: ${mem.total}`,
        );
        return msg.encodeDeviceMemoryRsp({ free: BigInt(mem.free), total: BigInt(mem.total) });
      }
      case Cmd.BUFFER_GET_BASE: {
        const { remotePtr } = msg.decodeBufferReq(cmd, p);
        const e = this.#entry(s, remotePtr, cmd);
        this.#dbg(s, () => `[buffer_get_base] remote_ptr: ${remotePtr.toString(16)}`);
        return msg.encodeU64Rsp(e.base);
      }
      case Cmd.FREE_BUFFER: {
        const { remotePtr } = msg.decodeBufferReq(cmd, p);
        const e = this.#entry(s, remotePtr, cmd);
        this.#dbg(s, () => `[free_buffer] remote_ptr: ${remotePtr.toString(16)}`);
        await s.graphs.dropUsing(e.buffer, this.devices);
        s.buffers.delete(remotePtr);
        this.#allocated[e.device] -= e.buffer.size;
        await e.buffer.free();
        return new Uint8Array(0);
      }
      case Cmd.BUFFER_CLEAR: {
        const r = msg.decodeBufferClearReq(p);
        const e = this.#entry(s, r.remotePtr, cmd);
        this.#dbg(s, () => `[buffer_clear] remote_ptr: ${r.remotePtr.toString(16)}, value: ${r.value}`);
        await e.buffer.clear(r.value);
        return new Uint8Array(0);
      }
      case Cmd.SET_TENSOR: {
        const r = msg.decodeSetTensorReq(p);
        const t = this.#bufferedTensor(s, r.tensor, cmd);
        const at = this.#range(s, r.tensor, r.offset, BigInt(r.data.length), cmd);
        this.#dbg(
          s,
          () =>
            `[set_tensor] buffer: ${r.tensor.buffer.toString(16)}, data: ${
              r.tensor.data.toString(16)
            }, offset: ${r.offset}, size: ${r.data.length}`,
        );
        if (this.#cache && TensorCache.wants(r.data.length)) {
          const path = await this.#cache.store(r.data);
          this.#dbg(s, () => `[set_tensor] saved to '${path}'`);
        }
        await t.buffer.set(at, r.data);
        return null;
      }
      case Cmd.SET_TENSOR_HASH: {
        const r = msg.decodeSetTensorHashReq(p);
        const data = this.#cache ? await this.#cache.load(r.hash) : null;
        if (!data) {
          this.#dbg(s, () => `[set_tensor_hash] hash: ${hashHex(r.hash)} -> not cached`);
          return msg.encodeResultRsp(0);
        }
        const t = this.#bufferedTensor(s, r.tensor, cmd);
        const at = this.#range(s, r.tensor, r.offset, BigInt(data.length), cmd);
        this.#dbg(
          s,
          () =>
            `[set_tensor_hash] buffer: ${r.tensor.buffer.toString(16)}, data: ${
              r.tensor.data.toString(16)
            }, offset: ${r.offset}, size: ${data.length}, hash: ${hashHex(r.hash)}`,
        );
        await t.buffer.set(at, data);
        return msg.encodeResultRsp(1);
      }
      case Cmd.GET_TENSOR: {
        const r = msg.decodeGetTensorReq(p);
        const t = this.#bufferedTensor(s, r.tensor, cmd);
        const at = this.#range(s, r.tensor, r.offset, r.size, cmd);
        this.#dbg(
          s,
          () =>
            `[get_tensor] buffer: ${r.tensor.buffer.toString(16)}, data: ${
              r.tensor.data.toString(16)
            }, offset: ${r.offset}, size: ${r.size}`,
        );
        if (!t.buffer.getInto) return await t.buffer.get(at, Number(r.size));
        // the device copies straight into the response frame (a token's logits: one copy fewer)
        const out = s.responseFrame(RESPONSE_HEADER_SIZE + Number(r.size));
        new DataView(out.buffer, out.byteOffset, RESPONSE_HEADER_SIZE).setBigUint64(0, r.size, true);
        await t.buffer.getInto(at, out.subarray(RESPONSE_HEADER_SIZE));
        return new Framed(out);
      }
      case Cmd.COPY_TENSOR: {
        const r = msg.decodeCopyTensorReq(p);
        const src = this.#bufferedTensor(s, r.src, cmd);
        const dst = this.#bufferedTensor(s, r.dst, cmd);
        const n = nbytes(src);
        if (dst.offset + n > dst.buffer.size) {
          throw new ValidationError(
            `COPY_TENSOR: ${n} bytes at offset ${dst.offset} overrun the destination buffer of ${dst.buffer.size}`,
          );
        }
        this.#dbg(
          s,
          () =>
            `[copy_tensor] src->buffer: ${r.src.buffer.toString(16)}, dst->buffer: ${
              r.dst.buffer.toString(16)
            }`,
        );
        const ok = await dst.buffer.copyFrom(src.buffer, src.offset, dst.offset, n);
        return msg.encodeResultRsp(ok ? 1 : 0);
      }
      case Cmd.GRAPH_COMPUTE: {
        await this.#graphCompute(s, p);
        return null;
      }
      case Cmd.GRAPH_RECOMPUTE: {
        const { device } = msg.decodeDeviceReq(cmd, p);
        const dev = this.#device(device, cmd);
        const stored = s.graphs.get(device);
        if (!stored) throw new ValidationError(`GRAPH_RECOMPUTE: no graph stored for device ${device}`);
        this.#dbg(s, () => `[graph_recompute] device: ${device}`);
        this.stats.recomputes++;
        await dev.planCompute(stored.plan);
        return null;
      }
      case Cmd.INIT_TENSOR: {
        const { tensor } = msg.decodeInitTensorReq(p);
        tensorFromWire(tensor, s.lookup, "INIT_TENSOR tensor");
        this.#dbg(
          s,
          () => `[init_tensor] buffer: ${tensor.buffer.toString(16)}, data: ${tensor.data.toString(16)}`,
        );
        return new Uint8Array(0);
      }
      case Cmd.GET_ALLOC_SIZE: {
        const r = msg.decodeGetAllocSizeReq(p);
        const dev = this.#device(r.device, cmd);
        const t = tensorFromWire(r.tensor, s.lookup, "GET_ALLOC_SIZE tensor");
        r.srcs.forEach((rt, i) => {
          if (rt.id !== 0n) t.src[i] = tensorFromWire(rt, s.lookup, `GET_ALLOC_SIZE src[${i}]`);
        });
        const size = await (t.buffer?.device ?? dev).allocSize(t);
        this.#dbg(
          s,
          () =>
            `[get_alloc_size] device: ${r.device}, buffer: ${r.tensor.buffer.toString(16)}, data: ${
              r.tensor.data.toString(16)
            } -> ${size}`,
        );
        return msg.encodeU64Rsp(BigInt(size));
      }
      case Cmd.MEMSET_TENSOR: {
        const r = msg.decodeMemsetTensorReq(p);
        const t = this.#bufferedTensor(s, r.tensor, cmd);
        const n = BigInt(nbytes(t));
        if (r.offset > n || r.size > n - r.offset) {
          throw new ValidationError(
            `MEMSET_TENSOR: region offset=${r.offset} size=${r.size} is outside the tensor's ${n} bytes`,
          );
        }
        const at = t.offset + Number(r.offset);
        this.#dbg(
          s,
          () =>
            `[memset_tensor] buffer: ${r.tensor.buffer.toString(16)}, data: ${
              r.tensor.data.toString(16)
            }, offset: ${r.offset}, size: ${r.size}, value: ${r.value}`,
        );
        await t.buffer.memset(at, Number(r.size), r.value);
        return new Uint8Array(0);
      }
      default:
        throw new ProtocolError(`unknown command ${cmd}`);
    }
  }

  #entry(s: Session, handle: bigint, cmd: number): BufferEntry {
    const e = s.buffers.get(handle);
    if (!e) {
      throw new ValidationError(
        `${cmdName(cmd)}: buffer 0x${handle.toString(16)} is not one of this connection's`,
      );
    }
    return e;
  }

  async #alloc(index: number, dev: Device, size: bigint): Promise<DeviceBuffer | null> {
    if (size > BigInt(dev.maxBufferSize)) return null;
    const n = Number(size);
    if (this.#memLimit > 0 && this.#allocated[index] + n > this.#memLimit) return null;
    const buf = await dev.allocBuffer(n);
    if (buf) this.#allocated[index] += buf.size;
    return buf;
  }

  /** Memory of device `i` as clients are told: within `-m` when one is set. */
  async memory(i: number): Promise<{ free: number; total: number }> {
    const dev = this.#device(i, Cmd.GET_DEVICE_MEMORY);
    const m = await dev.memory();
    if (this.#memLimit <= 0) return m;
    return {
      total: Math.min(m.total, this.#memLimit),
      free: Math.max(0, Math.min(m.free, this.#memLimit - this.#allocated[i])),
    };
  }

  async #graphCompute(s: Session, p: Uint8Array): Promise<void> {
    const device = graphPayloadDevice(p);
    const dev = this.#device(device, Cmd.GRAPH_COMPUTE);
    if (s.graphs.isSame(device, p)) {
      this.#dbg(s, () => `[graph_compute] device: ${device}, same graph as before (${p.length} bytes)`);
      this.stats.graphsReused++;
      await dev.planCompute(s.graphs.get(device)!.plan);
      return;
    }
    const payload = decodeGraphPayload(p);
    this.#dbg(
      s,
      () =>
        `[graph_compute] device: ${device}, n_nodes: ${payload.nodeIds.length}, n_tensors: ${payload.tensors.length}`,
    );
    const graph = graphFromPayload(payload, s.lookup);
    for (const t of graph.tensors) {
      if (t.buffer && t.buffer.device !== dev) {
        throw new ValidationError(
          `graph for device ${device} uses tensor "${t.name}" of another device's buffer`,
        );
      }
    }
    const unsupported: string[] = [];
    for (const node of graph.nodes) {
      if (!dev.supportsOp(node)) unsupported.push(describeNode(node));
      else if (!node.buffer && nbytes(node) > 0) {
        throw new ValidationError(`graph node ${describeNode(node)} has no data`);
      }
    }
    if (unsupported.length) {
      const uniq = [...new Set(unsupported)];
      throw new UnsupportedOpError(
        `${dev.name} does not support ${uniq.slice(0, 8).join("; ")}${
          uniq.length > 8 ? ` and ${uniq.length - 8} more` : ""
        }`,
      );
    }
    const { stored, outcome } = await s.graphs.prepare(dev, graph, p);
    if (outcome === "created") this.stats.graphsCreated++;
    else this.stats.graphsUpdated++;
    await dev.planCompute(stored.plan);
  }
}

function describeError(e: unknown): string {
  if (e instanceof ProtocolError || e instanceof ValidationError || e instanceof DeviceError) {
    return `${e.name}: ${e.message}`;
  }
  if (e instanceof Deno.errors.ConnectionReset || e instanceof Deno.errors.BrokenPipe) {
    return `peer reset the connection (${(e as Error).message})`;
  }
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}
