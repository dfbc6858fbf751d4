/**
 * Server-side graph reuse: per connection and device, the last graph and its plan.
 *
 * - the same payload bytes as last time → the stored plan runs as is;
 * - the same structure (nodes, ops, types, topology) → `planUpdate` re-targets the plan;
 * - otherwise → `planCreate`.
 *
 * GRAPH_RECOMPUTE runs the stored plan directly.
 * @module
 */

import type { Device, DeviceBuffer, Plan } from "../../backends/device.ts";
import { type Graph, graphBuffers } from "../graph/graph.ts";
import { subOp, type Tensor } from "../graph/tensor.ts";

/** What is kept for one device of one connection. */
export interface StoredGraph {
  payload: Uint8Array;
  graph: Graph;
  plan: Plan;
  structure: string;
  buffers: Set<DeviceBuffer>;
}

/** How a graph was prepared, for statistics and logs. */
export type PlanOutcome = "reused" | "updated" | "created";

/**
 * A structural key of a graph: everything a plan's shape depends on except shapes, strides,
 * op_params and addresses.
 */
export function structureKey(g: Graph): string {
  const idx = new Map<Tensor, number>();
  g.tensors.forEach((t, i) => idx.set(t, i));
  const parts: string[] = [];
  for (const t of g.tensors) {
    const srcs = t.src.map((s) => (s ? idx.get(s) : "")).join(",");
    parts.push(`${t.op}.${subOp(t)}.${t.type}.${t.viewSrc ? idx.get(t.viewSrc) : ""}:${srcs}`);
  }
  parts.push("|" + g.nodes.map((n) => idx.get(n)).join(","));
  return parts.join(";");
}

/** Equal bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  // Compare 8 bytes at a time where both are aligned.
  if (a.byteOffset % 8 === 0 && b.byteOffset % 8 === 0) {
    const n8 = a.length >>> 3;
    const x = new BigUint64Array(a.buffer, a.byteOffset, n8);
    const y = new BigUint64Array(b.buffer, b.byteOffset, n8);
    for (let i = 0; i < n8; i++) if (x[i] !== y[i]) return false;
    for (let i = n8 << 3; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The last graph of each device of one connection. */
export class GraphStore {
  #byDevice = new Map<number, StoredGraph>();

  /** The stored graph of `device`, if any. */
  get(device: number): StoredGraph | undefined {
    return this.#byDevice.get(device);
  }

  /** Whether `payload` is byte-identical to what `device` last ran. */
  isSame(device: number, payload: Uint8Array): boolean {
    const s = this.#byDevice.get(device);
    return !!s && sameBytes(s.payload, payload);
  }

  /** Prepares a plan for `graph` on `dev`, reusing or updating the stored one when possible. */
  async prepare(
    dev: Device,
    graph: Graph,
    payload: Uint8Array,
  ): Promise<{ stored: StoredGraph; outcome: PlanOutcome }> {
    const prev = this.#byDevice.get(graph.device);
    const structure = structureKey(graph);
    let plan: Plan;
    let outcome: PlanOutcome;
    if (prev && prev.structure === structure) {
      plan = await dev.planUpdate(prev.plan, graph);
      if (plan !== prev.plan) await dev.planFree(prev.plan);
      outcome = "updated";
    } else {
      if (prev) await dev.planFree(prev.plan);
      this.#byDevice.delete(graph.device);
      plan = await dev.planCreate(graph);
      outcome = "created";
    }
    const stored: StoredGraph = { payload, graph, plan, structure, buffers: graphBuffers(graph) };
    this.#byDevice.set(graph.device, stored);
    return { stored, outcome };
  }

  /** Forgets every stored graph that uses `buffer` (it is being freed), freeing its plan. */
  async dropUsing(buffer: DeviceBuffer, devices: readonly Device[]): Promise<void> {
    for (const [d, s] of this.#byDevice) {
      if (s.buffers.has(buffer)) {
        this.#byDevice.delete(d);
        await devices[d].planFree(s.plan);
      }
    }
  }

  /** Forgets the stored graph of `device`. */
  async drop(device: number, dev: Device): Promise<void> {
    const s = this.#byDevice.get(device);
    if (s) {
      this.#byDevice.delete(device);
      await dev.planFree(s.plan);
    }
  }

  /** Frees every plan. */
  async clear(devices: readonly Device[]): Promise<void> {
    for (const [d, s] of this.#byDevice) {
      try {
        await devices[d].planFree(s.plan);
      } catch {
        // a device that fails to free a plan while the connection closes has nothing left to tell
      }
    }
    this.#byDevice.clear();
  }
}
