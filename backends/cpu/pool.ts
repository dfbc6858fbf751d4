/**
 * The CPU device's worker threads (`-t N`): N-1 Web Workers plus the calling thread split one node
 * at a time, each computing its part of the node (`run(node, ith, nth)`), the way ggml's CPU
 * threadpool does. Buffers are SharedArrayBuffers, sent to each worker once; a task is a small
 * message naming the kernel, the node's shape and strides and its sources'. The calling thread
 * computes part 0 and then blocks on an Atomics counter until the workers are done, so kernels stay
 * synchronous and a graph runs node after node exactly as with one thread.
 *
 * Workers start on the first node large enough to share, and stop after a while without work (or
 * at {@linkcode WorkerPool.close}), so that a process using a CPU device can still exit.
 * @module
 */

import { DeviceError } from "../../protocol/errors.ts";
import type { Tensor } from "../../protocol/graph/tensor.ts";
import { bytesOf } from "./tensor_data.ts";

/** Slots of the shared control array. */
export const CTL = {
  /** Parts still running on workers; the caller waits for 0. */
  PENDING: 0,
  /** Workers that finished loading. */
  READY: 1,
  /** Non-zero when a part failed; the message is in the bytes after ERROR_AT. */
  ERROR: 2,
  /** Length of the error message in bytes. */
  ERROR_LEN: 3,
} as const;

/** Byte offset of the error message inside the control buffer, and its capacity. */
export const ERROR_AT = 64;
export const ERROR_CAP = 960;
const CTL_BYTES = ERROR_AT + ERROR_CAP;

/** A tensor as a task message carries it: no objects but its sources, buffers by id. */
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

/** Messages from the pool to a worker. */
export type PoolMessage =
  | { kind: "init"; ctl: SharedArrayBuffer }
  | { kind: "buffer"; id: number; memory: SharedArrayBuffer }
  | { kind: "forget"; id: number }
  | { kind: "run"; key: string; node: TensorMessage; ith: number; nth: number };

const START_TIMEOUT_MS = 30_000;
const IDLE_STOP_MS = 60_000;

/** N-1 workers plus the caller. */
export class WorkerPool {
  /** Threads a node is split over (workers + the caller). */
  readonly threads: number;
  #workers: Worker[] = [];
  #ctl = new SharedArrayBuffer(CTL_BYTES);
  #ctlI32 = new Int32Array(this.#ctl);
  #ids = new WeakMap<Uint8Array, number>();
  #sent = new Set<number>();
  #nextId = 1;
  #failed = false;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(threads: number) {
    this.threads = Math.max(1, Math.floor(threads));
  }

  /** Whether nodes can be split (more than one thread, workers started or startable). */
  get usable(): boolean {
    return this.threads > 1 && !this.#failed;
  }

  /**
   * Runs `run(node, ith, nth)` of kernel `key` for ith = 0 … nth-1: part 0 on this thread, the
   * others on workers; returns when all are done. Every buffer the node touches must be a
   * SharedArrayBuffer.
   */
  run(key: string, node: Tensor, nth: number, local: (ith: number, nth: number) => void): void {
    nth = Math.min(nth, this.threads);
    if (nth <= 1 || !this.#start()) {
      local(0, 1);
      return;
    }
    const msg = this.#message(node);
    if (!msg) {
      local(0, 1);
      return;
    }
    const ctl = this.#ctlI32;
    Atomics.store(ctl, CTL.ERROR, 0);
    Atomics.store(ctl, CTL.PENDING, nth - 1);
    for (let ith = 1; ith < nth; ith++) {
      this.#workers[ith - 1].postMessage({ kind: "run", key, node: msg, ith, nth } satisfies PoolMessage);
    }
    let localError: unknown = null;
    try {
      local(0, nth);
    } catch (e) {
      localError = e;
    }
    for (;;) {
      const left = Atomics.load(ctl, CTL.PENDING);
      if (left === 0) break;
      Atomics.wait(ctl, CTL.PENDING, left);
    }
    this.#armIdle();
    if (localError) throw localError;
    if (Atomics.load(ctl, CTL.ERROR) !== 0) {
      const len = Math.min(ERROR_CAP, Atomics.load(ctl, CTL.ERROR_LEN));
      const text = new TextDecoder().decode(new Uint8Array(this.#ctl, ERROR_AT, len).slice());
      throw new DeviceError(`cpu worker: ${text}`);
    }
  }

  /** Tells the workers to drop a buffer's memory (it was freed). */
  forget(bytes: Uint8Array): void {
    const id = this.#ids.get(bytes);
    if (id === undefined) return;
    this.#ids.delete(bytes);
    if (this.#sent.delete(id)) {
      for (const w of this.#workers) w.postMessage({ kind: "forget", id } satisfies PoolMessage);
    }
  }

  /** Stops the workers; a later large node starts them again. */
  stop(): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    for (const w of this.#workers) w.terminate();
    this.#workers = [];
    this.#sent.clear();
  }

  /** Stops the workers for good. */
  close(): void {
    this.stop();
    this.#failed = true;
  }

  #armIdle(): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    const timer = setTimeout(() => {
      this.#idleTimer = undefined;
      this.stop();
    }, IDLE_STOP_MS);
    Deno.unrefTimer(timer);
    this.#idleTimer = timer;
  }

  #start(): boolean {
    if (this.#failed) return false;
    if (this.#workers.length === this.threads - 1) return true;
    const ctl = this.#ctlI32;
    Atomics.store(ctl, CTL.READY, 0);
    try {
      for (let i = 1; i < this.threads; i++) {
        const w = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
        w.postMessage({ kind: "init", ctl: this.#ctl } satisfies PoolMessage);
        this.#workers.push(w);
      }
    } catch (e) {
      this.#giveUp(`cannot start worker threads (${e instanceof Error ? e.message : e})`);
      return false;
    }
    const deadline = performance.now() + START_TIMEOUT_MS;
    for (;;) {
      const ready = Atomics.load(ctl, CTL.READY);
      if (ready >= this.threads - 1) return true;
      const left = deadline - performance.now();
      if (left <= 0 || Atomics.wait(ctl, CTL.READY, ready, left) === "timed-out") {
        this.#giveUp("worker threads did not start in time (is reading the module files allowed?)");
        return false;
      }
    }
  }

  #giveUp(why: string): void {
    console.error(`graphwire cpu: ${why}; running on one thread`);
    this.stop();
    this.#failed = true;
  }

  #bufferId(t: Tensor): number | null {
    const bytes = bytesOf(t);
    if (!(bytes.buffer instanceof SharedArrayBuffer) || bytes.byteOffset !== 0) return null;
    let id = this.#ids.get(bytes);
    if (id === undefined) {
      id = this.#nextId++;
      this.#ids.set(bytes, id);
    }
    if (!this.#sent.has(id)) {
      for (const w of this.#workers) {
        w.postMessage(
          { kind: "buffer", id, memory: bytes.buffer as SharedArrayBuffer } satisfies PoolMessage,
        );
      }
      this.#sent.add(id);
    }
    return id;
  }

  #message(node: Tensor): TensorMessage | null {
    const one = (t: Tensor, withSrc: boolean): TensorMessage | null => {
      const buffer = this.#bufferId(t);
      if (buffer === null) return null;
      const src: (TensorMessage | null)[] = [];
      if (withSrc) {
        for (const s of t.src) {
          if (!s) {
            src.push(null);
            continue;
          }
          const m = one(s, false);
          if (!m) return null;
          src.push(m);
        }
      }
      return {
        type: t.type,
        ne: [...t.ne],
        nb: [...t.nb],
        op: t.op,
        opParams: t.opParams.slice(),
        buffer,
        offset: t.offset,
        name: t.name,
        src,
      };
    };
    return one(node, true);
  }
}
