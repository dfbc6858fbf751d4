/**
 * What the CPU device's threads say to each other (see pool.ts and graph_thread.ts): tensors as
 * plain messages, with their buffers named by a number that was sent once with the buffer's
 * SharedArrayBuffer; whole graphs as a few typed arrays (cheap to post: a graph of a thousand nodes
 * as tensor objects would cost more to clone than many of its nodes to compute); and the message
 * kinds of each channel.
 *
 * @example
 * ```ts
 * const m = tensorMessage(node, (t) => ids.get(bytesOf(t)) ?? -1);
 * // ... on the other thread, with the buffers it was sent:
 * const t = tensorFromMessage(m, buffers);
 * ```
 * @module
 */

import { DeviceError, ProtocolError, UnsupportedOpError, ValidationError } from "../../protocol/errors.ts";
import { newTensor, type Tensor } from "../../protocol/graph/tensor.ts";
import { MAX_OP_PARAMS, MAX_SRC } from "../../protocol/wire/constants.ts";
import type { HostStorage } from "./tensor_data.ts";

/** A tensor as a message carries it: no objects but its sources, its buffer by id (-1: none). */
export interface TensorMessage {
  type: number;
  ne: number[];
  nb: number[];
  op: number;
  opParams: Uint8Array;
  buffer: number;
  offset: number;
  name: string;
  src: (TensorMessage | null)[];
}

/** Messages to a helper thread, from the thread whose nodes it shares (pool.ts). */
export type PoolMessage =
  | { kind: "init"; ctl: SharedArrayBuffer }
  | { kind: "buffer"; id: number; memory: SharedArrayBuffer }
  | { kind: "forget"; id: number }
  | { kind: "run"; key: string; node: TensorMessage; ith: number; nth: number };

/**
 * Messages from the main thread to a worker that it did not start for a pool of its own: `attach`
 * makes a worker a helper that takes its {@linkcode PoolMessage}s from `port` (the graph thread
 * holds the other end); `start` makes it the graph thread.
 */
export type ThreadMessage =
  | { kind: "attach"; port: MessagePort }
  | { kind: "start"; threads: number; parallelWork: number; abort: SharedArrayBuffer };

/** Messages from the main thread to the graph thread, after `start`. */
export type GraphMessage =
  | { kind: "helpers"; ports: MessagePort[] }
  | { kind: "buffer"; id: number; memory: SharedArrayBuffer }
  | { kind: "forget"; id: number }
  /**
   * Runs a graph's nodes in order; `graph` is null when it is the graph of the previous `graph`
   * message, which had the same `plan` (nothing to send again).
   */
  | { kind: "graph"; job: number; plan: number; graph: GraphWire | null };

/** An error as it crosses threads. */
export interface ErrorMessage {
  name: string;
  message: string;
}

/** The graph thread's answer to a `graph` message: done, or failed with `error`. */
export interface GraphReply {
  kind: "done";
  job: number;
  error: ErrorMessage | null;
}

/**
 * The message for `t` (with its sources when `withSrc`, one level: kernels read no deeper);
 * `bufferId` names the buffer of a tensor, or -1 for a tensor without one.
 */
export function tensorMessage(t: Tensor, bufferId: (t: Tensor) => number, withSrc = true): TensorMessage {
  const src: (TensorMessage | null)[] = [];
  if (withSrc) { for (const s of t.src) src.push(s ? tensorMessage(s, bufferId, false) : null); }
  return {
    type: t.type,
    ne: [...t.ne],
    nb: [...t.nb],
    op: t.op,
    opParams: t.opParams.slice(),
    buffer: t.buffer ? bufferId(t) : -1,
    offset: t.offset,
    name: t.name,
    src,
  };
}

/**
 * The tensor a message describes, its buffer looked up in `buffers` (a buffer that was never sent
 * is an error; -1 is a tensor without data, which a kernel refuses as it would on any thread).
 */
export function tensorFromMessage(m: TensorMessage, buffers: ReadonlyMap<number, HostStorage>): Tensor {
  const t = newTensor({
    type: m.type,
    ne: m.ne,
    nb: m.nb,
    op: m.op,
    opParams: m.opParams,
    src: m.src.map((s) => s ? tensorFromMessage(s, buffers) : null),
    offset: m.offset,
    name: m.name,
  });
  if (m.buffer >= 0) {
    const buffer = buffers.get(m.buffer);
    if (!buffer) throw new Error(`buffer ${m.buffer} was not sent to this thread`);
    t.buffer = buffer as unknown as Tensor["buffer"];
  }
  return t;
}

/**
 * A graph as one message: every tensor the nodes reach, once, as numbers (sources by index, so a
 * tensor shared by many nodes stays one object), then the nodes by index.
 */
export interface GraphWire {
  /** {@linkcode GRAPH_FIELDS} numbers per tensor: type, ne, nb, op, buffer id, offset, sources. */
  numbers: Float64Array;
  /** MAX_OP_PARAMS bytes per tensor. */
  opParams: Uint8Array;
  names: string[];
  /** The tensor index of each node, in order. */
  nodes: Int32Array;
}

const F_TYPE = 0, F_NE = 1, F_NB = 5, F_OP = 9, F_BUFFER = 10, F_OFFSET = 11, F_SRC = 12;
/** Numbers per tensor in {@linkcode GraphWire.numbers}. */
export const GRAPH_FIELDS = F_SRC + MAX_SRC;

/** `nodes` and every tensor they reach as a {@linkcode GraphWire}; `bufferId` as for tensorMessage. */
export function encodeGraph(nodes: readonly Tensor[], bufferId: (t: Tensor) => number): GraphWire {
  const index = new Map<Tensor, number>();
  const order: Tensor[] = [];
  const add = (t: Tensor): number => {
    let i = index.get(t);
    if (i === undefined) {
      i = order.length;
      index.set(t, i);
      order.push(t);
    }
    return i;
  };
  const nodeIndex = Int32Array.from(nodes, add);
  // order grows while it is walked: every source is reached, without recursion
  for (let i = 0; i < order.length; i++) for (const s of order[i].src) if (s) add(s);
  const n = order.length;
  const numbers = new Float64Array(n * GRAPH_FIELDS);
  const opParams = new Uint8Array(n * MAX_OP_PARAMS);
  const names: string[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const t = order[i];
    const o = i * GRAPH_FIELDS;
    numbers[o + F_TYPE] = t.type;
    for (let d = 0; d < 4; d++) {
      numbers[o + F_NE + d] = t.ne[d];
      numbers[o + F_NB + d] = t.nb[d];
    }
    numbers[o + F_OP] = t.op;
    numbers[o + F_BUFFER] = t.buffer ? bufferId(t) : -1;
    numbers[o + F_OFFSET] = t.offset;
    for (let k = 0; k < MAX_SRC; k++) {
      const s = t.src[k];
      numbers[o + F_SRC + k] = s ? index.get(s)! : -1;
    }
    opParams.set(t.opParams.subarray(0, MAX_OP_PARAMS), i * MAX_OP_PARAMS);
    names[i] = t.name;
  }
  return { numbers, opParams, names, nodes: nodeIndex };
}

/**
 * A whole number read from a Float64Array, as a small integer where it is one: V8 keeps doubles in
 * arrays of doubles, and kernels whose shapes and strides are doubles run slower (a 512³ MUL_MAT
 * took 1.7 times as long).
 */
function int(x: number): number {
  return x === (x | 0) ? x | 0 : x;
}

/** The nodes a {@linkcode GraphWire} describes, their buffers looked up as by tensorFromMessage. */
export function decodeGraph(w: GraphWire, buffers: ReadonlyMap<number, HostStorage>): Tensor[] {
  const n = w.names.length;
  const tensors: Tensor[] = new Array(n);
  const num = w.numbers;
  for (let i = 0; i < n; i++) {
    const o = i * GRAPH_FIELDS;
    const at = (k: number) => int(num[o + k]);
    const t = newTensor({
      type: at(F_TYPE),
      ne: [at(F_NE), at(F_NE + 1), at(F_NE + 2), at(F_NE + 3)],
      nb: [at(F_NB), at(F_NB + 1), at(F_NB + 2), at(F_NB + 3)],
      op: at(F_OP),
      offset: at(F_OFFSET),
      name: w.names[i],
    });
    t.opParams = w.opParams.subarray(i * MAX_OP_PARAMS, (i + 1) * MAX_OP_PARAMS);
    const id = num[o + F_BUFFER];
    if (id >= 0) {
      const buffer = buffers.get(id);
      if (!buffer) throw new Error(`buffer ${id} was not sent to this thread`);
      t.buffer = buffer as unknown as Tensor["buffer"];
    }
    tensors[i] = t;
  }
  for (let i = 0; i < n; i++) {
    const o = i * GRAPH_FIELDS;
    for (let k = 0; k < MAX_SRC; k++) {
      const s = num[o + F_SRC + k];
      if (s >= 0) tensors[i].src[k] = tensors[s];
    }
  }
  return Array.from(w.nodes, (i) => tensors[i]);
}

/** An error as a message. */
export function errorMessage(e: unknown): ErrorMessage {
  if (e instanceof Error) return { name: e.name, message: e.message };
  return { name: "Error", message: String(e) };
}

const TYPED: Record<string, new (message: string) => Error> = {
  DeviceError,
  UnsupportedOpError,
  ValidationError,
  ProtocolError,
};

/**
 * The error a message describes: graphwire's typed errors come back as themselves (so the server
 * treats a kernel's DeviceError from another thread as it would one from its own); any other keeps
 * its name and message, so that a bug still reads as one.
 */
export function errorFromMessage(m: ErrorMessage): Error {
  const Typed = TYPED[m.name];
  if (Typed) return new Typed(m.message);
  const e = new Error(m.message);
  e.name = m.name;
  return e;
}
