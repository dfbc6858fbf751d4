/**
 * The CPU device's worker threads (`-t N`): N-1 helper threads plus the calling thread split one
 * node at a time, each computing its part of the node (`run(node, ith, nth)`), the way ggml's CPU
 * threadpool does. Buffers are SharedArrayBuffers, sent to each helper once; a task is a small
 * message naming the kernel, the node's shape and strides and its sources' (messages.ts). The
 * calling thread computes part 0 and then blocks on an Atomics counter until the helpers are done,
 * so kernels stay synchronous and a graph runs node after node exactly as with one thread.
 *
 * The calling thread is the main thread of a synchronous `CpuDevice` or the graph thread
 * of an off-thread one (graph_thread.ts). On the main thread the pool starts its helpers itself (Web
 * Workers running worker.ts) on the first node large enough to share, and stops them after a while
 * without work (or at {@linkcode WorkerPool.close}), so that a process using a CPU device can still
 * exit. A graph thread cannot do that (Deno leaves a worker's own workers running when it is
 * terminated), so there the main thread starts the helpers and hands the pool one MessagePort to
 * each ({@linkcode WorkerPool.adopt}); their owner stops them.
 * @module
 */

import { DeviceError } from "../../protocol/errors.ts";
import type { Tensor } from "../../protocol/graph/tensor.ts";
import { type PoolMessage, type TensorMessage, tensorMessage } from "./messages.ts";
import { bytesOf } from "./tensor_data.ts";

export type { PoolMessage, TensorMessage } from "./messages.ts";

/** Slots of the shared control array. */
export const CTL = {
  /** Parts still running on helpers; the caller waits for 0. */
  PENDING: 0,
  /** Helpers that finished loading. */
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

const START_TIMEOUT_MS = 30_000;
/** How often a wait for helpers looks at the stop flag. */
const STOP_POLL_MS = 100;
const IDLE_STOP_MS = 60_000;

/** Where a pool's messages to one helper go: a Worker it started, or a port to one it adopted. */
interface Helper {
  postMessage(m: PoolMessage): void;
}

/** N-1 helpers plus the caller. */
export class WorkerPool {
  /** Threads a node is split over (helpers + the caller). */
  readonly threads: number;
  #helpers: Helper[] = [];
  /** Workers this pool started (and stops); empty for adopted helpers. */
  #workers: Worker[] = [];
  /** Helpers come from {@linkcode adopt}, never from this pool. */
  #adopted: boolean;
  #stop: Int32Array | null;
  #initialized = false;
  #ctl = new SharedArrayBuffer(CTL_BYTES);
  #ctlI32 = new Int32Array(this.#ctl);
  #ids = new WeakMap<Uint8Array, number>();
  #sent = new Set<number>();
  #nextId = 1;
  #failed = false;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * `spawn: false` (a graph thread): the pool never starts workers itself, only uses helpers given
   * to {@linkcode adopt}; until then (or without) every node runs on the calling thread. `stop`:
   * a flag the owner of the helpers sets when it stops them; a wait for helpers then gives up (one
   * stopped before it took its part would be waited for forever).
   */
  constructor(threads: number, opts: { spawn?: boolean; stop?: Int32Array } = {}) {
    this.threads = Math.max(1, Math.floor(threads));
    this.#adopted = opts.spawn === false;
    this.#stop = opts.stop ?? null;
  }

  /** Whether nodes can be split (more than one thread, helpers started or startable). */
  get usable(): boolean {
    return this.threads > 1 && !this.#failed;
  }

  /**
   * Takes helpers another thread started (worker.ts, attached to the other ends of `ports`): one
   * port per helper, threads-1 of them. Only for a pool made with `spawn: false`.
   */
  adopt(ports: MessagePort[]): void {
    if (!this.#adopted || this.#helpers.length) throw new Error("this pool starts its own helpers");
    if (ports.length !== this.threads - 1) {
      throw new Error(
        `a pool of ${this.threads} threads needs ${this.threads - 1} helpers, got ${ports.length}`,
      );
    }
    this.#helpers = ports;
  }

  /**
   * Runs `run(node, ith, nth)` of kernel `key` for ith = 0 … nth-1: part 0 on this thread, the
   * others on helpers; returns when all are done. Every buffer the node touches must be a
   * SharedArrayBuffer (else the node runs on this thread alone).
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
      this.#helpers[ith - 1].postMessage({ kind: "run", key, node: msg, ith, nth });
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
      if (this.#stopped()) throw new DeviceError("cpu: graph abandoned");
      Atomics.wait(ctl, CTL.PENDING, left, this.#stop ? STOP_POLL_MS : Infinity);
    }
    this.#armIdle();
    if (localError) throw localError;
    if (Atomics.load(ctl, CTL.ERROR) !== 0) {
      const len = Math.min(ERROR_CAP, Atomics.load(ctl, CTL.ERROR_LEN));
      const text = new TextDecoder().decode(new Uint8Array(this.#ctl, ERROR_AT, len).slice());
      throw new DeviceError(`cpu worker: ${text}`);
    }
  }

  /** Tells the helpers to drop a buffer's memory (it was freed). */
  forget(bytes: Uint8Array): void {
    const id = this.#ids.get(bytes);
    if (id === undefined) return;
    this.#ids.delete(bytes);
    if (this.#sent.delete(id)) {
      for (const h of this.#helpers) h.postMessage({ kind: "forget", id });
    }
  }

  /** Stops the helpers this pool started; a later large node starts them again. */
  stop(): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    if (this.#adopted) return; // their owner stops them
    for (const w of this.#workers) w.terminate();
    this.#workers = [];
    this.#helpers = [];
    this.#initialized = false;
    this.#sent.clear();
  }

  /** Stops the helpers for good. */
  close(): void {
    this.stop();
    this.#failed = true;
  }

  #armIdle(): void {
    if (this.#adopted) return;
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    const timer = setTimeout(() => {
      this.#idleTimer = undefined;
      this.stop();
    }, IDLE_STOP_MS);
    Deno.unrefTimer(timer);
    this.#idleTimer = timer;
  }

  /** Makes sure the helpers are there and loaded; false: run on this thread alone. */
  #start(): boolean {
    if (this.#failed) return false;
    if (this.#initialized) return true;
    if (!this.#adopted) {
      try {
        for (let i = 1; i < this.threads; i++) {
          const w = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
          this.#workers.push(w);
        }
      } catch (e) {
        this.#giveUp(`cannot start worker threads (${e instanceof Error ? e.message : e})`);
        return false;
      }
      this.#helpers = this.#workers;
    } else if (this.#helpers.length === 0) {
      return false; // none adopted (yet): the owner found no node worth sharing
    }
    const ctl = this.#ctlI32;
    Atomics.store(ctl, CTL.READY, 0);
    for (const h of this.#helpers) h.postMessage({ kind: "init", ctl: this.#ctl });
    const deadline = performance.now() + START_TIMEOUT_MS;
    for (;;) {
      const ready = Atomics.load(ctl, CTL.READY);
      if (ready >= this.threads - 1) break;
      const left = deadline - performance.now();
      if (left <= 0) {
        this.#giveUp("worker threads did not start in time (is reading the module files allowed?)");
        return false;
      }
      if (this.#stopped()) throw new DeviceError("cpu: graph abandoned");
      Atomics.wait(ctl, CTL.READY, ready, this.#stop ? Math.min(left, STOP_POLL_MS) : left);
    }
    this.#initialized = true;
    return true;
  }

  #stopped(): boolean {
    return this.#stop !== null && Atomics.load(this.#stop, 0) !== 0;
  }

  #giveUp(why: string): void {
    console.error(`graphwire cpu: ${why}; running on one thread`);
    this.stop();
    this.#failed = true;
  }

  /** The buffer id of `t`, its memory sent to every helper once; null when it cannot be shared. */
  #bufferId(t: Tensor): number | null {
    if (!t.buffer) return null;
    const bytes = bytesOf(t);
    if (!(bytes.buffer instanceof SharedArrayBuffer) || bytes.byteOffset !== 0) return null;
    let id = this.#ids.get(bytes);
    if (id === undefined) {
      id = this.#nextId++;
      this.#ids.set(bytes, id);
    }
    if (!this.#sent.has(id)) {
      const memory = bytes.buffer as SharedArrayBuffer;
      for (const h of this.#helpers) h.postMessage({ kind: "buffer", id, memory });
      this.#sent.add(id);
    }
    return id;
  }

  /** The node as a task message; null when one of its tensors is not in shared memory. */
  #message(node: Tensor): TensorMessage | null {
    const ids = new Map<Tensor, number>();
    for (const t of [node, ...node.src]) {
      if (!t) continue;
      const id = this.#bufferId(t);
      if (id === null) return null;
      ids.set(t, id);
    }
    return tensorMessage(node, (t) => ids.get(t)!);
  }
}
