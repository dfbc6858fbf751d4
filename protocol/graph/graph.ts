/**
 * `Graph`: nodes in execution order with their tensors resolved, and a uid. Building or mutating a
 * graph gives it a new uid, so that a client can send GRAPH_RECOMPUTE for a graph it sent before.
 * @module
 */

import type { DeviceBuffer } from "../../backends/device.ts";
import type { Tensor } from "./tensor.ts";

/** A compute graph. */
export interface Graph {
  /** Device index on the server this graph is for (GRAPH_COMPUTE's device field). */
  device: number;
  /** Nodes in execution order. */
  nodes: Tensor[];
  /** Every tensor of the graph: nodes, their sources and view sources, each once. */
  tensors: Tensor[];
  /** Identity of this exact graph; 0n when it has none. */
  uid: bigint;
}

let lastUid = 0n;

/** A fresh, process-unique uid (never 0). */
export function newGraphUid(): bigint {
  lastUid += 1n;
  return lastUid;
}

/** A graph over `nodes`, collecting every tensor reachable from them (without recursion). */
export function newGraph(nodes: Tensor[], device = 0): Graph {
  return { device, nodes, tensors: collectTensors(nodes), uid: newGraphUid() };
}

/** Every tensor reachable from `nodes` through src and view_src, sources before users. */
export function collectTensors(nodes: Tensor[]): Tensor[] {
  const seen = new Set<Tensor>();
  const out: Tensor[] = [];
  const stack: { t: Tensor; expanded: boolean }[] = [];
  for (const root of nodes) {
    if (seen.has(root)) continue;
    stack.push({ t: root, expanded: false });
    while (stack.length) {
      const top = stack[stack.length - 1];
      if (top.expanded) {
        stack.pop();
        if (!seen.has(top.t)) {
          seen.add(top.t);
          out.push(top.t);
        }
        continue;
      }
      top.expanded = true;
      if (seen.has(top.t)) {
        stack.pop();
        continue;
      }
      const deps = [...top.t.src, top.t.viewSrc];
      for (let i = deps.length - 1; i >= 0; i--) {
        const d = deps[i];
        if (d && !seen.has(d)) stack.push({ t: d, expanded: false });
      }
    }
  }
  return out;
}

/** The distinct buffers a graph's tensors live in. */
export function graphBuffers(g: Graph): Set<DeviceBuffer> {
  const s = new Set<DeviceBuffer>();
  for (const t of g.tensors) if (t.buffer) s.add(t.buffer);
  return s;
}
