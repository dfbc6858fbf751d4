/**
 * The graph thread of an off-thread CPU device, as the main thread drives it: graphs are computed
 * on a Web Worker (worker.ts in its graph role) so that the main thread's event loop stays free
 * for other connections, timers and signals while a graph runs.
 *
 * - Each run posts the plan's graph (a few typed arrays, buffers by id: messages.ts) and resolves
 *   when the graph thread answers; a kernel's error comes back as the same typed error.
 *   A plan run again right after itself (GRAPH_RECOMPUTE) is sent as its number only.
 * - Buffers are SharedArrayBuffers, sent to the graph thread once each and forgotten there when
 *   freed (a graph running at that moment still holds the memory until it ends; nothing else can
 *   get it, so no other buffer is touched).
 * - Runs from several callers queue: the graph thread takes graphs in the order they were posted.
 * - With threads > 1 the main thread also starts threads-1 helpers (worker.ts) the first time a
 *   plan has a node to split, and hands the graph thread a MessagePort to each: workers started by a
 *   worker would outlive its termination.
 * - Everything starts on the first run and stops after {@linkcode GRAPH_IDLE_STOP_MS} without work
 *   (a Deno worker keeps its process alive, so threads are never left idle for long), at
 *   {@linkcode GraphThread.close}, or at {@linkcode GraphThread.abort}, which rejects the runs in
 *   flight at once. Deno stops a terminated worker only once its current task returns, so the
 *   graph thread also reads a shared stop flag before each node: an abandoned graph ends after the
 *   node it is in.
 * - Where no worker can be started at all, graphs run on the calling thread (`fallback`) after one
 *   log line, as the pool does.
 * @module
 */

import { DeviceError } from "../../protocol/errors.ts";
import { nbytes, nelements, type Tensor } from "../../protocol/graph/tensor.ts";
import {
  encodeGraph,
  errorFromMessage,
  type GraphMessage,
  type GraphReply,
  type GraphWire,
  type ThreadMessage,
} from "./messages.ts";
import type { CpuKernel } from "./ops/mod.ts";
import { splitOf } from "./run.ts";
import { bytesOf, type HostStorage } from "./tensor_data.ts";

/**
 * How long the graph thread and its helpers stay started without work, by default. Deno keeps a
 * process alive while it has a worker, so this is also how long a process that forgot to close its
 * device lingers after its last compute; starting them again costs some 40 ms.
 */
export const GRAPH_IDLE_STOP_MS = 5_000;

/** What the graph thread runs: a plan's nodes and their kernels, resolved. */
export interface GraphJob {
  readonly graph: { readonly nodes: readonly Tensor[] };
  readonly kernels: readonly CpuKernel[];
  /**
   * The graph's work (multiply-adds, roughly; {@linkcode graphWork}): below {@linkcode INLINE_WORK},
   * and with nothing queued, it runs on the calling thread instead.
   */
  readonly work?: number;
}

/**
 * Work under which a graph runs on the calling thread when the graph thread has nothing queued:
 * such a graph takes less time (tens of microseconds) than the two messages of a trip to the graph
 * thread (about 140 µs of CPU), and blocks the caller no longer than they would.
 */
export const INLINE_WORK = 1 << 15;

/** A graph's work: each node's kernel's estimate, or its element count for kernels without one. */
export function graphWork(nodes: readonly Tensor[], kernels: readonly CpuKernel[]): number {
  let w = 0;
  for (let i = 0; i < nodes.length; i++) w += kernels[i].work?.(nodes[i]) ?? nelements(nodes[i]);
  return w;
}

/** A plan as it was last sent. */
interface Encoded {
  plan: number;
  graph: GraphWire;
  /** Each buffer the graph touches, with the memory it had when this was made. */
  holders: [HostStorage, Uint8Array][];
  /** Whether a node is large enough to split over helpers. */
  split: boolean;
}

interface Pending {
  job: GraphJob;
  resolve: () => void;
  reject: (e: Error) => void;
  done: Promise<void>;
}

/** Options of {@linkcode GraphThread}. */
export interface GraphThreadOptions {
  /** Threads a large node is split over: the graph thread plus threads-1 helpers. */
  threads: number;
  /** Work from which a node is split (see run.ts). */
  parallelWork: number;
  /** Runs a job on the calling thread, for hosts where no worker starts. */
  fallback: (job: GraphJob) => void;
  /** Milliseconds without work after which the threads stop; default {@linkcode GRAPH_IDLE_STOP_MS}. */
  idleStopMs?: number;
  /** Work under which a job runs on the calling thread when nothing is queued; default {@linkcode INLINE_WORK}. */
  inlineWork?: number;
}

/** The main thread's handle on the graph thread. */
export class GraphThread {
  readonly threads: number;
  readonly parallelWork: number;
  readonly idleStopMs: number;
  readonly inlineWork: number;
  #fallback: (job: GraphJob) => void;
  #worker: Worker | null = null;
  #helpers: Worker[] = [];
  #stop: Int32Array | null = null;
  /** Whether the current worker answered once (an error before that: it could not start). */
  #answered = false;
  #jobs = new Map<number, Pending>();
  #nextJob = 1;
  #nextPlan = 1;
  #encoded = new WeakMap<GraphJob, Encoded>();
  #ids = new WeakMap<Uint8Array, number>();
  #nextId = 1;
  #sent = new Set<number>();
  /** The plan of the last graph posted to the current worker (0: none it still holds). */
  #lastPlan = 0;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #failed = false;
  /** Helpers could not be started: nodes run on the graph thread alone. */
  #noHelpers = false;
  #closed = false;

  constructor(opts: GraphThreadOptions) {
    this.threads = Math.max(1, Math.floor(opts.threads));
    this.parallelWork = Math.max(1, opts.parallelWork);
    this.idleStopMs = Math.max(0, opts.idleStopMs ?? GRAPH_IDLE_STOP_MS);
    this.inlineWork = Math.max(0, opts.inlineWork ?? INLINE_WORK);
    this.#fallback = opts.fallback;
  }

  /** Graphs small enough that they ran on the calling thread (see {@linkcode INLINE_WORK}). */
  inlined = 0;

  /** Runs in flight or queued. */
  get pending(): number {
    return this.#jobs.size;
  }

  /** Whether the graph thread is started. */
  get started(): boolean {
    return this.#worker !== null;
  }

  /** Runs `job` on the graph thread; resolves when it is done, rejects with the kernel's error. */
  run(job: GraphJob): Promise<void> {
    if (this.#closed) return Promise.reject(new DeviceError("cpu: the device is closed"));
    if (this.#failed) return this.#runHere(job);
    // in order all the same: nothing is queued ahead of it
    if (job.work !== undefined && job.work < this.inlineWork && this.#jobs.size === 0) {
      this.inlined++;
      return this.#runHere(job);
    }
    let enc: Encoded;
    try {
      enc = this.#encode(job);
      if (!this.#start()) return this.#runHere(job);
    } catch (e) {
      return Promise.reject(e);
    }
    const worker = this.#worker!;
    if (enc.split && this.#helpers.length === 0 && !this.#noHelpers) this.#startHelpers();
    for (const [, bytes] of enc.holders) {
      const id = this.#ids.get(bytes)!;
      if (this.#sent.has(id)) continue;
      this.#post(worker, { kind: "buffer", id, memory: bytes.buffer as SharedArrayBuffer });
      this.#sent.add(id);
    }
    const id = this.#nextJob++;
    let pending!: Pending;
    const done = new Promise<void>((resolve, reject) => pending = { job, resolve, reject, done: null! });
    pending.done = done.catch(() => {});
    this.#jobs.set(id, pending);
    this.#post(worker, {
      kind: "graph",
      job: id,
      plan: enc.plan,
      graph: this.#lastPlan === enc.plan ? null : enc.graph,
    });
    this.#lastPlan = enc.plan;
    return done;
  }

  /** Resolves when every run posted so far has ended. */
  async idle(): Promise<void> {
    await Promise.all([...this.#jobs.values()].map((j) => j.done));
  }

  /** Tells the graph thread to drop a buffer's memory (it was freed). */
  forget(bytes: Uint8Array): void {
    const id = this.#ids.get(bytes);
    if (id === undefined) return;
    this.#ids.delete(bytes);
    if (this.#sent.delete(id) && this.#worker) {
      this.#post(this.#worker, { kind: "forget", id });
      this.#lastPlan = 0; // the graph thread drops its decoded graph with it
    }
  }

  /**
   * Abandons every run in flight or queued: each rejects at once with a DeviceError saying `why`,
   * and the threads are stopped (a node already running finishes first, unseen). A later run
   * starts them again.
   */
  abort(why = "cpu: graph abandoned"): void {
    const jobs = [...this.#jobs.values()];
    this.#jobs.clear();
    this.#shutdown();
    for (const j of jobs) j.reject(new DeviceError(why));
  }

  /** Stops the threads for good; runs in flight reject. */
  close(): void {
    this.abort("cpu: the device was closed while a graph was running");
    this.#closed = true;
  }

  #runHere(job: GraphJob): Promise<void> {
    try {
      this.#fallback(job);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #post(to: Worker, m: GraphMessage | ThreadMessage, transfer: Transferable[] = []): void {
    to.postMessage(m, transfer);
  }

  /** The plan as messages, made again when one of its buffers changed (freed) since. */
  #encode(job: GraphJob): Encoded {
    const known = this.#encoded.get(job);
    if (known && known.holders.every(([h, b]) => h.bytes === b)) return known;
    const holders = new Map<HostStorage, Uint8Array>();
    const bufferId = (t: Tensor): number => {
      const bytes = bytesOf(t);
      if (!(bytes.buffer instanceof SharedArrayBuffer) || bytes.byteOffset !== 0) {
        throw new DeviceError(`cpu: tensor "${t.name}" is not in a buffer of an off-thread CPU device`);
      }
      holders.set(t.buffer as unknown as HostStorage, bytes);
      let id = this.#ids.get(bytes);
      if (id === undefined) {
        id = this.#nextId++;
        this.#ids.set(bytes, id);
      }
      return id;
    };
    const nodes = job.graph.nodes;
    const enc: Encoded = {
      plan: this.#nextPlan++,
      graph: encodeGraph(nodes, bufferId),
      holders: [...holders],
      split: nodes.some((n, i) =>
        nbytes(n) > 0 && splitOf(job.kernels[i], n, this.threads, this.parallelWork) > 1
      ),
    };
    this.#encoded.set(job, enc);
    return enc;
  }

  /** Starts the graph thread if it is not running; false when it cannot be started at all. */
  #start(): boolean {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    if (this.#worker) return true;
    let worker: Worker;
    try {
      worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
    } catch (e) {
      this.#giveUp(`cannot start the graph thread (${e instanceof Error ? e.message : e})`);
      return false;
    }
    const abort = new SharedArrayBuffer(4);
    this.#worker = worker;
    this.#stop = new Int32Array(abort);
    this.#answered = false;
    this.#sent.clear();
    this.#lastPlan = 0;
    worker.onmessage = (e: MessageEvent<GraphReply>) => {
      if (worker !== this.#worker) return;
      this.#answered = true;
      this.#settle(e.data);
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      if (worker !== this.#worker) return;
      this.#crashed(e.message);
    };
    worker.onmessageerror = () => {
      if (worker === this.#worker) this.#crashed("a message could not be read");
    };
    this.#post(worker, {
      kind: "start",
      threads: this.threads,
      parallelWork: this.parallelWork,
      abort,
    });
    return true;
  }

  /** Starts threads-1 helpers attached to the graph thread by ports (its pool adopts them). */
  #startHelpers(): void {
    if (this.threads <= 1 || !this.#worker) return;
    const ports: MessagePort[] = [];
    try {
      for (let i = 1; i < this.threads; i++) {
        const w = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
        this.#helpers.push(w);
        w.onerror = (e: ErrorEvent) => {
          e.preventDefault();
          if (!this.#helpers.includes(w)) return;
          // the graph thread would wait for it: start again without helpers
          this.#noHelpers = true;
          this.#crashed(`a helper thread failed: ${e.message}`);
        };
        const ch = new MessageChannel();
        this.#post(w, { kind: "attach", port: ch.port2 }, [ch.port2]);
        ports.push(ch.port1);
      }
    } catch (e) {
      console.error(
        `graphwire cpu: cannot start worker threads (${e instanceof Error ? e.message : e}); ` +
          `running on one thread`,
      );
      for (const w of this.#helpers) w.terminate();
      this.#helpers = [];
      for (const p of ports) p.close();
      this.#noHelpers = true;
      return;
    }
    this.#post(this.#worker, { kind: "helpers", ports }, ports);
  }

  #settle(r: GraphReply): void {
    const j = this.#jobs.get(r.job);
    if (!j) return;
    this.#jobs.delete(r.job);
    if (r.error) {
      this.#lastPlan = 0; // it may have failed before it held the graph: send the next one whole
      j.reject(errorFromMessage(r.error));
    } else {
      j.resolve();
    }
    if (this.#jobs.size === 0) this.#armIdle();
  }

  /** The graph thread died: it never started (run here from now on), or a bug (start afresh). */
  #crashed(why: string): void {
    const jobs = [...this.#jobs.values()];
    this.#jobs.clear();
    this.#shutdown();
    if (!this.#answered) {
      // Nothing ran there: every run goes to the calling thread, these first.
      this.#giveUp(`the compute threads did not start (${why})`);
      for (const j of jobs) this.#runHere(j.job).then(j.resolve, j.reject);
      return;
    }
    for (const j of jobs) j.reject(new DeviceError(`cpu: the compute threads failed (${why})`));
  }

  #giveUp(why: string): void {
    console.error(`graphwire cpu: ${why}; computing on the main thread`);
    this.#shutdown();
    this.#failed = true;
  }

  #armIdle(): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    const timer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#jobs.size === 0) this.#shutdown();
    }, this.idleStopMs);
    Deno.unrefTimer(timer);
    this.#idleTimer = timer;
  }

  /** Stops the graph thread and its helpers (runs in flight must have been settled or taken). */
  #shutdown(): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    if (this.#stop) Atomics.store(this.#stop, 0, 1);
    this.#stop = null;
    this.#worker?.terminate();
    this.#worker = null;
    for (const w of this.#helpers) w.terminate();
    this.#helpers = [];
    this.#sent.clear();
    this.#lastPlan = 0;
  }
}
