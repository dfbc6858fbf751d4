/**
 * Memory for a graph's tensors, as ggml-alloc plans it: every tensor without data gets an offset in
 * one buffer; a node's memory is handed back after its last use, so later nodes reuse it; inputs
 * (leaves) and outputs live for the whole graph. Views then take their data from their base tensor.
 *
 * @example
 * ```ts
 * const plan = await planMemory(graph, device);
 * const buf = await device.allocBuffer(plan.size);
 * bindMemory(graph, buf!, plan);
 * ```
 * @module
 */

import { DeviceError } from "../protocol/errors.ts";
import type { Graph } from "../protocol/graph/graph.ts";
import { GgmlOp } from "../protocol/graph/ops.ts";
import { nbytes, type Tensor, TensorFlag } from "../protocol/graph/tensor.ts";
import type { Device, DeviceBuffer } from "./device.ts";

/** Where each tensor goes in one buffer of `size` bytes. */
export interface MemoryPlan {
  size: number;
  offsets: Map<Tensor, number>;
}

/** Options of {@linkcode planMemory}. */
export interface PlanMemoryOptions {
  /** Tensors whose memory must survive the graph (read afterwards, or by another device). */
  keep?: ReadonlySet<Tensor>;
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** A best-fit allocator over one growing address range. */
class FreeList {
  #free: { offset: number; size: number }[] = [];
  top = 0;

  constructor(readonly alignment: number) {}

  alloc(size: number): number {
    size = alignUp(Math.max(size, 1), this.alignment);
    let best = -1;
    for (let i = 0; i < this.#free.length; i++) {
      const b = this.#free[i];
      if (b.size >= size && (best < 0 || b.size < this.#free[best].size)) best = i;
    }
    if (best >= 0) {
      const b = this.#free[best];
      const at = b.offset;
      b.offset += size;
      b.size -= size;
      if (b.size === 0) this.#free.splice(best, 1);
      return at;
    }
    // Grow: extend a free block that ends at the top, else start at the top.
    const last = this.#free[this.#free.length - 1];
    if (last && last.offset + last.size === this.top) {
      this.#free.pop();
      this.top = last.offset + size;
      return last.offset;
    }
    const at = this.top;
    this.top += size;
    return at;
  }

  release(offset: number, size: number): void {
    size = alignUp(Math.max(size, 1), this.alignment);
    let i = 0;
    while (i < this.#free.length && this.#free[i].offset < offset) i++;
    this.#free.splice(i, 0, { offset, size });
    // merge with the next, then with the previous
    const cur = this.#free[i];
    const next = this.#free[i + 1];
    if (next && cur.offset + cur.size === next.offset) {
      cur.size += next.size;
      this.#free.splice(i + 1, 1);
    }
    const prev = this.#free[i - 1];
    if (prev && prev.offset + prev.size === cur.offset) {
      prev.size += cur.size;
      this.#free.splice(i, 1);
    }
  }
}

/** Whether `t` needs memory of its own: no data yet, not a view, not empty. */
function needsMemory(t: Tensor): boolean {
  return t.buffer === null && t.viewSrc === null && nbytes(t) > 0;
}

/**
 * Plans one buffer for every tensor of `graph` that has no data: leaves (inputs) first and for the
 * whole run, then nodes in order, each freed after the last node that reads it (directly or through
 * a view) unless it is an output or in `keep`.
 */
export async function planMemory(
  graph: Graph,
  device: Device,
  opts: PlanMemoryOptions = {},
): Promise<MemoryPlan> {
  const keep = opts.keep ?? new Set<Tensor>();
  const root = (t: Tensor) => t.viewSrc ?? t;
  const lastUse = new Map<Tensor, number>();
  graph.nodes.forEach((n, i) => {
    for (const s of n.src) if (s) lastUse.set(root(s), i);
    if (n.viewSrc) lastUse.set(n.viewSrc, i);
  });
  const list = new FreeList(device.alignment);
  const offsets = new Map<Tensor, number>();
  const sizes = new Map<Tensor, number>();
  const place = async (t: Tensor) => {
    if (offsets.has(t) || !needsMemory(t)) return;
    const size = Math.max(nbytes(t), await device.allocSize(t));
    sizes.set(t, size);
    offsets.set(t, list.alloc(size));
  };
  for (const t of graph.tensors) if (t.op === GgmlOp.NONE) await place(t);
  const nodeSet = new Set(graph.nodes);
  for (let i = 0; i < graph.nodes.length; i++) {
    const n = graph.nodes[i];
    // Sources that are not nodes of this graph and have no data (leaves reached only through
    // another tensor) were placed above; anything else missing is placed on first sight.
    for (const s of n.src) if (s && !nodeSet.has(root(s))) await place(root(s));
    await place(n);
    const dying = new Set<Tensor>();
    for (const s of n.src) if (s) dying.add(root(s));
    if (n.viewSrc) dying.add(n.viewSrc);
    dying.add(n);
    for (const t of dying) {
      if (lastUse.get(t) !== undefined && lastUse.get(t)! > i) continue;
      if (!nodeSet.has(t) || !offsets.has(t)) continue; // leaves live throughout
      if (keep.has(t) || (t.flags & TensorFlag.OUTPUT) !== 0) continue;
      if (lastUse.get(t) === undefined && t === n) continue; // never read here: an output by nature
      list.release(offsets.get(t)!, sizes.get(t)!);
    }
  }
  return { size: list.top, offsets };
}

/**
 * Gives the planned tensors `buffer` and their offsets, then every view its base's buffer and
 * offset + view_offs.
 */
export function bindMemory(graph: Graph, buffer: DeviceBuffer | null, plan: MemoryPlan): void {
  for (const [t, offset] of plan.offsets) {
    if (!buffer) throw new DeviceError(`no buffer for ${plan.offsets.size} planned tensors`);
    t.buffer = buffer;
    t.offset = offset;
  }
  bindViews(graph.tensors);
}

/** Views take their base's buffer and offset + view_offs (tensors in dependency order). */
export function bindViews(tensors: readonly Tensor[]): void {
  for (const t of tensors) {
    const base = t.viewSrc;
    if (!base) continue;
    t.buffer = base.buffer;
    t.offset = base.offset + t.viewOffs;
  }
}
