/**
 * Framing. Request: `u8 cmd | u64 size | payload`; response: `u64 size | payload`. Every frame is
 * assembled into one buffer so that it reaches the socket in one write.
 * @module
 */

import { ProtocolError } from "../errors.ts";
import { REQUEST_HEADER_SIZE, RESPONSE_HEADER_SIZE } from "./constants.ts";

/** A whole request frame: header and payload in one buffer. */
export function frameRequest(cmd: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(REQUEST_HEADER_SIZE + payload.length);
  out[0] = cmd;
  new DataView(out.buffer).setBigUint64(1, BigInt(payload.length), true);
  out.set(payload, REQUEST_HEADER_SIZE);
  return out;
}

/**
 * A request frame whose payload is written in place by `write` (avoids a second copy of large
 * SET_TENSOR payloads). `write` receives the payload region of the frame. With `have` < `size`,
 * only the header and the first `have` payload bytes are built (the frame's head, announcing
 * `size`); the caller sends the rest of the payload after it.
 */
export function frameRequestWith(
  cmd: number,
  size: number,
  write: (payload: Uint8Array) => void,
  have = size,
): Uint8Array {
  const out = new Uint8Array(REQUEST_HEADER_SIZE + have);
  out[0] = cmd;
  new DataView(out.buffer).setBigUint64(1, BigInt(size), true);
  write(out.subarray(REQUEST_HEADER_SIZE));
  return out;
}

/** A whole response frame. */
export function frameResponse(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(RESPONSE_HEADER_SIZE + payload.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(payload.length), true);
  out.set(payload, RESPONSE_HEADER_SIZE);
  return out;
}

/** Something bytes can be read from; `read` resolves null at end of stream (as Deno.Conn does). */
export interface ByteSource {
  read(p: Uint8Array): Promise<number | null>;
}

/**
 * Reads exact byte counts from a stream through an internal buffer, so that many small frames cost
 * few reads. Large payloads are read straight into their destination.
 */
export class FrameReader {
  #src: ByteSource;
  #buf: Uint8Array;
  #start = 0;
  #end = 0;
  /** Bytes read from the source so far. */
  bytesRead = 0;

  constructor(src: ByteSource, bufferSize = 64 * 1024) {
    this.#src = src;
    this.#buf = new Uint8Array(bufferSize);
  }

  /** Bytes buffered but not consumed. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  async #fill(): Promise<boolean> {
    if (this.#start === this.#end) this.#start = this.#end = 0;
    else if (this.#end === this.#buf.length) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    const n = await this.#src.read(this.#buf.subarray(this.#end));
    if (n === null || n === 0) return false;
    this.bytesRead += n;
    this.#end += n;
    return true;
  }

  /** Fills `out` completely; resolves false when the stream ends first (nothing or part read). */
  async readInto(out: Uint8Array): Promise<boolean> {
    let o = 0;
    const have = Math.min(this.buffered, out.length);
    if (have > 0) {
      out.set(this.#buf.subarray(this.#start, this.#start + have));
      this.#start += have;
      o = have;
    }
    while (o < out.length) {
      const rest = out.length - o;
      if (rest >= this.#buf.length / 2) {
        // Large remainders go straight to their destination.
        const n = await this.#src.read(out.subarray(o));
        if (n === null || n === 0) return false;
        this.bytesRead += n;
        o += n;
      } else {
        if (!(await this.#fill())) return false;
        const k = Math.min(this.buffered, rest);
        out.set(this.#buf.subarray(this.#start, this.#start + k), o);
        this.#start += k;
        o += k;
      }
    }
    return true;
  }

  /** Reads one byte, or null at end of stream. */
  async readU8(): Promise<number | null> {
    if (this.buffered === 0 && !(await this.#fill())) return null;
    return this.#buf[this.#start++];
  }

  /** Reads a little-endian u64, or null at end of stream. */
  async readU64(): Promise<bigint | null> {
    while (this.buffered < 8) {
      if (!(await this.#fill())) return null;
    }
    const v = new DataView(this.#buf.buffer, this.#start, 8).getBigUint64(0, true);
    this.#start += 8;
    return v;
  }
}

/** A request as read from the stream. */
export interface RequestFrame {
  cmd: number;
  payload: Uint8Array;
}

/** The head of a request: its command and payload size, read before the payload. */
export interface RequestHead {
  cmd: number;
  size: bigint;
}

/**
 * Reads a request's command byte and size. Resolves null on a clean end of stream before a command
 * byte; throws {@linkcode ProtocolError} when the stream ends inside the header or the size exceeds
 * `maxFrame`. `check(cmd)` runs as soon as the command byte is known, so that a bad command is
 * refused before anything else is waited for.
 */
export async function readRequestHead(
  r: FrameReader,
  maxFrame: bigint,
  check?: (cmd: number) => void,
): Promise<RequestHead | null> {
  const cmd = await r.readU8();
  if (cmd === null) return null;
  check?.(cmd);
  const size = await r.readU64();
  if (size === null) throw new ProtocolError(`connection ended inside the header of command ${cmd}`);
  if (size > maxFrame) throw new ProtocolError(`frame of ${size} bytes exceeds the limit of ${maxFrame}`);
  return { cmd, size };
}

/**
 * Reads one request frame (head and payload). Resolves null on a clean end of stream before a
 * command byte. `check` is as for {@linkcode readRequestHead}; `checkSize(cmd, size)` runs before
 * the payload is read or allocated.
 */
export async function readRequest(
  r: FrameReader,
  maxFrame: bigint,
  check?: (cmd: number) => void,
  checkSize?: (cmd: number, size: bigint) => void,
): Promise<RequestFrame | null> {
  const head = await readRequestHead(r, maxFrame, check);
  if (head === null) return null;
  checkSize?.(head.cmd, head.size);
  const payload = await readPayload(r, Number(head.size));
  if (payload === null) {
    throw new ProtocolError(`connection ended inside a ${head.size}-byte payload of command ${head.cmd}`);
  }
  return { cmd: head.cmd, payload };
}

/** Payloads up to this size are allocated at once; larger ones grow as their bytes arrive. */
const EAGER_PAYLOAD = 1 << 20;
const GROW_STEP = 64 << 20;

/**
 * Reads `size` bytes. A peer that announces a huge frame and sends nothing gets no memory: larger
 * payloads live in a resizable ArrayBuffer that grows only as fast as bytes arrive.
 */
export async function readPayload(r: FrameReader, size: number): Promise<Uint8Array | null> {
  if (size <= EAGER_PAYLOAD) {
    const payload = new Uint8Array(size);
    return (await r.readInto(payload)) ? payload : null;
  }
  return await readPayloadInto(r, size, new ArrayBuffer(0, { maxByteLength: size }));
}

/**
 * Reads `size` bytes into `scratch`, a resizable ArrayBuffer that a connection reuses for payloads
 * it consumes at once. It grows only as fast as bytes arrive (as {@linkcode readPayload} does), and
 * once grown, a payload costs no allocation, zeroing or page faults. The view returned is valid until
 * the next read into the same scratch.
 */
export async function readPayloadInto(
  r: FrameReader,
  size: number,
  scratch: ArrayBuffer,
): Promise<Uint8Array | null> {
  if (size > scratch.maxByteLength) {
    throw new RangeError(`a ${size}-byte payload does not fit a scratch of ${scratch.maxByteLength}`);
  }
  let have = 0;
  while (have < size) {
    const next = scratch.byteLength >= size ? size : Math.min(
      size,
      Math.max(scratch.byteLength, have + Math.max(EAGER_PAYLOAD, Math.min(GROW_STEP, have))),
    );
    if (scratch.byteLength < next) scratch.resize(next);
    if (!(await r.readInto(new Uint8Array(scratch, have, next - have)))) return null;
    have = next;
  }
  return new Uint8Array(scratch, 0, size);
}

/** Reads a response's size header (at most `maxFrame`); throws at end of stream. */
export async function readResponseSize(r: FrameReader, maxFrame: bigint): Promise<number> {
  const size = await r.readU64();
  if (size === null) throw new ProtocolError("connection closed by the server");
  if (size > maxFrame) throw new ProtocolError(`response of ${size} bytes exceeds the limit of ${maxFrame}`);
  return Number(size);
}

/** Reads one response frame of at most `maxFrame` bytes; throws at end of stream. */
export async function readResponse(r: FrameReader, maxFrame: bigint): Promise<Uint8Array> {
  const size = await readResponseSize(r, maxFrame);
  const payload = await readPayload(r, size);
  if (payload === null) throw new ProtocolError("connection closed inside a response");
  return payload;
}
