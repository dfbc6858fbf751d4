/**
 * A CPU worker thread, in one of two roles set by its first message:
 *
 * - a helper (`init` from a pool that started it, or `attach` with a port from the main thread of
 *   an off-thread device): holds the shared buffers it was sent and computes the parts of nodes it
 *   is given with the same kernels as the calling thread (see pool.ts for the protocol);
 * - the graph thread of an off-thread device (`start`, see graph_thread.ts): holds the shared
 *   buffers, runs each graph it is sent node after node (splitting large nodes over the helpers the
 *   main thread attached to it) and answers `done`, with the error when a kernel failed. Graphs run
 *   in the order they arrive, so computes from several connections queue here.
 *
 * One module for both roles keeps one worker file to include in `deno compile` and to bundle in
 * the worker package, and no worker ever starts another.
 * @module
 */

/// <reference lib="deno.worker" />

import { UnsupportedOpError } from "../../protocol/errors.ts";
import { describeNode, type Tensor } from "../../protocol/graph/tensor.ts";
import {
  decodeGraph,
  errorMessage,
  type GraphMessage,
  type GraphReply,
  type PoolMessage,
  tensorFromMessage,
  type ThreadMessage,
} from "./messages.ts";
import { type CpuKernel, kernelFor, KERNELS } from "./ops/mod.ts";
import { CTL, ERROR_AT, ERROR_CAP, WorkerPool } from "./pool.ts";
import { runNodes } from "./run.ts";
import type { HostStorage } from "./tensor_data.ts";

const buffers = new Map<number, HostStorage>();
let ctl: Int32Array | null = null;
let ctlBytes: Uint8Array | null = null;

function fail(e: unknown): void {
  const text = new TextEncoder().encode(e instanceof Error ? e.message : String(e)).subarray(0, ERROR_CAP);
  ctlBytes!.set(text, ERROR_AT);
  Atomics.store(ctl!, CTL.ERROR_LEN, text.length);
  Atomics.store(ctl!, CTL.ERROR, 1);
}

/** A helper's handling of one pool message. */
function help(m: PoolMessage): void {
  switch (m.kind) {
    case "init":
      ctl = new Int32Array(m.ctl);
      ctlBytes = new Uint8Array(m.ctl);
      Atomics.add(ctl, CTL.READY, 1);
      Atomics.notify(ctl, CTL.READY);
      return;
    case "buffer":
      buffers.set(m.id, { bytes: new Uint8Array(m.memory) });
      return;
    case "forget":
      buffers.delete(m.id);
      return;
    case "run":
      try {
        const kernel = KERNELS.get(m.key);
        if (!kernel) throw new Error(`no kernel ${m.key}`);
        kernel.run(tensorFromMessage(m.node, buffers), m.ith, m.nth);
      } catch (err) {
        fail(err);
      } finally {
        if (Atomics.sub(ctl!, CTL.PENDING, 1) === 1) Atomics.notify(ctl!, CTL.PENDING);
      }
  }
}

/** The graph thread: from `start` on, every message is a {@linkcode GraphMessage}. */
function serveGraphs(start: Extract<ThreadMessage, { kind: "start" }>): void {
  const stop = new Int32Array(start.abort);
  const pool = new WorkerPool(start.threads, { spawn: false, stop });
  // The graph of the last `graph` message, decoded: GRAPH_RECOMPUTE sends only its plan number.
  let last: { plan: number; nodes: Tensor[]; kernels: CpuKernel[] } | null = null;
  const reply = (r: GraphReply) => self.postMessage(r);
  self.onmessage = (e: MessageEvent<GraphMessage>) => {
    const m = e.data;
    switch (m.kind) {
      case "helpers":
        pool.adopt(m.ports);
        return;
      case "buffer":
        buffers.set(m.id, { bytes: new Uint8Array(m.memory) });
        return;
      case "forget": {
        const b = buffers.get(m.id);
        if (b) pool.forget(b.bytes);
        buffers.delete(m.id);
        last = null; // the main thread sends the next graph whole (graph_thread.ts)
        return;
      }
      case "graph":
        try {
          if (m.graph) {
            last = null;
            const nodes = decodeGraph(m.graph, buffers);
            last = { plan: m.plan, nodes, kernels: nodes.map(kernelOf) };
          } else if (last?.plan !== m.plan) {
            throw new Error(`graph thread: plan ${m.plan} was never sent`);
          }
          runNodes(last!.nodes, last!.kernels, pool, start.parallelWork, stop);
          reply({ kind: "done", job: m.job, error: null });
        } catch (err) {
          reply({ kind: "done", job: m.job, error: errorMessage(err) });
        }
    }
  };
}

function kernelOf(node: Tensor): CpuKernel {
  const k = kernelFor(node);
  if (!k) throw new UnsupportedOpError(`cpu does not support ${describeNode(node)}`);
  return k;
}

self.onmessage = (e: MessageEvent<PoolMessage | ThreadMessage>) => {
  const m = e.data;
  if (m.kind === "attach") {
    m.port.onmessage = (p: MessageEvent<PoolMessage>) => help(p.data);
    self.onmessage = null;
  } else if (m.kind === "start") {
    serveGraphs(m);
  } else {
    help(m);
  }
};
