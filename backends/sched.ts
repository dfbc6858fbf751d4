/**
 * Running one graph over several devices, as ggml's backend scheduler does for llama.cpp's layer
 * split:
 *
 * - **weights** are placed on devices by split ratios ({@linkcode splitLayers}, llama.cpp's `-ts`)
 *   and get buffers there ({@linkcode Scheduler.place});
 * - **nodes** go where the caller says (a placement function, e.g. by layer) or, failing that,
 *   where their weights are, else where their first source was computed;
 * - the graph is **split** where the device changes; each split is a graph of its own with its own
 *   uid and its own plan, so an unchanged split on a remote device costs one GRAPH_RECOMPUTE;
 * - **activations** a split reads from another device are copied in before it runs: COPY_TENSOR
 *   when both devices are on one server (the buffer's `copyFrom`), else a read and a write;
 *   **inputs** get one copy per device, all written by {@linkcode ScheduledGraph.setInput}.
 *
 * @example
 * ```ts
 * const sched = new Scheduler([devA, devB]);
 * await sched.place(weightsOfA, 0);
 * await sched.place(weightsOfB, 1);
 * const run = await sched.schedule(graph, { placement: (n) => layerOf.get(n) });
 * await run.setInput(tokens, bytes);
 * await run.compute();
 * const logits = await run.read(out);
 * ```
 * @module
 */

import { DeviceError, UnsupportedOpError } from "../protocol/errors.ts";
import { newTensorId } from "../protocol/graph/builder.ts";
import { type Graph, newGraph } from "../protocol/graph/graph.ts";
import { GgmlOp } from "../protocol/graph/ops.ts";
import { describeNode, nbytes, newTensor, type Tensor, TensorFlag } from "../protocol/graph/tensor.ts";
import { bindMemory, planMemory } from "./alloc.ts";
import type { Device, DeviceBuffer, Plan } from "./device.ts";

/**
 * The device of each of `nLayer` layers and of the output (index nLayer), for devices weighted by
 * `ratios` — llama.cpp's rule: cumulative shares, layer il goes to the first device whose share
 * exceeds il / (nLayer + 1).
 */
export function splitLayers(nLayer: number, ratios: number[]): number[] {
  if (ratios.length === 0 || ratios.some((r) => !(r >= 0)) || ratios.every((r) => r === 0)) {
    throw new RangeError(`split ratios must be non-negative with a positive sum, got ${ratios.join(",")}`);
  }
  const sum = ratios.reduce((a, b) => a + b, 0);
  const cum: number[] = [];
  let acc = 0;
  for (const r of ratios) cum.push((acc += r) / sum);
  const out: number[] = [];
  for (let il = 0; il <= nLayer; il++) {
    const x = il / (nLayer + 1);
    let d = cum.findIndex((c) => c > x);
    if (d < 0) d = ratios.length - 1;
    out.push(d);
  }
  return out;
}

/** One contiguous run of nodes on one device. */
export interface Split {
  /** Index of the device in the scheduler's list. */
  deviceIndex: number;
  device: Device;
  /** The split's own graph (own uid). */
  graph: Graph;
  plan: Plan;
  /** Copies made before the split runs: `from` (on another device) into the leaf `to`. */
  transfers: { from: Tensor; to: Tensor }[];
  /** The split's memory for activations and inputs, if it needs any. */
  buffer: DeviceBuffer | null;
}

/** Counters of the copies between devices. */
export interface TransferStats {
  /** Copies done by the destination server itself (COPY_TENSOR). */
  copies: number;
  /** Copies done by reading from one device and writing to another. */
  getSets: number;
  bytes: number;
}

/** Options of {@linkcode Scheduler.schedule}. */
export interface ScheduleOptions {
  /** Device index of a node, where the caller knows it (e.g. from the layer it was built in). */
  placement?: (node: Tensor) => number | undefined;
}

/** A graph prepared for its devices: splits, buffers, plans. Run it as often as needed. */
export class ScheduledGraph {
  readonly splits: Split[];
  readonly stats: TransferStats = { copies: 0, getSets: 0, bytes: 0 };
  #inputs: Map<Tensor, Tensor[]>;

  constructor(splits: Split[], inputs: Map<Tensor, Tensor[]>) {
    this.splits = splits;
    this.#inputs = inputs;
  }

  /** The input tensors (as built) that this graph reads. */
  get inputs(): Tensor[] {
    return [...this.#inputs.keys()];
  }

  /** Writes an input's data into every device copy of it. */
  async setInput(t: Tensor, data: Uint8Array): Promise<void> {
    const copies = this.#inputs.get(t);
    if (!copies) throw new DeviceError(`"${t.name}" is not an input of this graph`);
    if (data.length !== nbytes(t)) {
      throw new DeviceError(`input "${t.name}" takes ${nbytes(t)} bytes, got ${data.length}`);
    }
    await Promise.all(copies.map((c) => c.buffer!.set(c.offset, data)));
  }

  /** Runs every split in order, copying what each reads from other devices first. */
  async compute(): Promise<void> {
    for (const s of this.splits) {
      for (const { from, to } of s.transfers) {
        const n = nbytes(from);
        this.stats.bytes += n;
        if (await to.buffer!.copyFrom(from.buffer!, from.offset, to.offset, n)) {
          this.stats.copies++;
        } else {
          this.stats.getSets++;
          await to.buffer!.set(to.offset, await from.buffer!.get(from.offset, n));
        }
      }
      await s.device.planCompute(s.plan);
    }
  }

  /** The bytes of `t` (a node or input of the graph) after a run. */
  async read(t: Tensor): Promise<Uint8Array> {
    if (!t.buffer) throw new DeviceError(`"${t.name}" has no data`);
    return await t.buffer.get(t.offset, nbytes(t));
  }

  /**
   * Reads `t` into `dst` (exactly its bytes), straight from the device where the buffer can (a
   * remote server's answer lands in `dst` without an array in between).
   */
  async readInto(t: Tensor, dst: Uint8Array): Promise<void> {
    if (!t.buffer) throw new DeviceError(`"${t.name}" has no data`);
    if (dst.length !== nbytes(t)) {
      throw new DeviceError(`"${t.name}" has ${nbytes(t)} bytes, not ${dst.length}`);
    }
    if (t.buffer.getInto) await t.buffer.getInto(t.offset, dst);
    else dst.set(await t.buffer.get(t.offset, dst.length));
  }

  /** Frees plans and buffers. */
  async free(): Promise<void> {
    for (const s of this.splits) {
      await s.device.planFree(s.plan);
      await s.buffer?.free();
      s.buffer = null;
    }
  }
}

/** Places tensors on devices and schedules graphs over them. */
export class Scheduler {
  readonly devices: Device[];

  constructor(devices: Device[]) {
    if (devices.length === 0) throw new RangeError("a scheduler needs at least one device");
    this.devices = devices;
  }

  /** The index of `d` in the list, or -1. */
  indexOf(d: Device): number {
    return this.devices.indexOf(d);
  }

  /**
   * Gives `tensors` (leaves without data, e.g. weights or a KV cache) memory on device `index`:
   * as few buffers as its largest-buffer limit allows, offsets aligned. Returns the buffers.
   */
  async place(tensors: Tensor[], index: number): Promise<DeviceBuffer[]> {
    const dev = this.devices[index];
    if (!dev) throw new RangeError(`no device ${index}`);
    const groups: { tensors: Tensor[]; offsets: number[]; size: number }[] = [];
    let cur = { tensors: [] as Tensor[], offsets: [] as number[], size: 0 };
    for (const t of tensors) {
      if (t.buffer || t.viewSrc) throw new DeviceError(`"${t.name}" already has data or is a view`);
      const size = Math.max(nbytes(t), await dev.allocSize(t));
      if (size > dev.maxBufferSize) {
        throw new DeviceError(`"${t.name}" (${size} bytes) exceeds ${dev.name}'s largest buffer`);
      }
      const at = Math.ceil(cur.size / dev.alignment) * dev.alignment;
      if (at + size > dev.maxBufferSize && cur.tensors.length) {
        groups.push(cur);
        cur = { tensors: [], offsets: [], size: 0 };
      }
      const off = Math.ceil(cur.size / dev.alignment) * dev.alignment;
      cur.tensors.push(t);
      cur.offsets.push(off);
      cur.size = off + size;
    }
    if (cur.tensors.length) groups.push(cur);
    const buffers: DeviceBuffer[] = [];
    try {
      for (const g of groups) {
        const buf = await dev.allocBuffer(g.size);
        if (!buf) throw new DeviceError(`${dev.name} could not allocate ${g.size} bytes`);
        buffers.push(buf);
        g.tensors.forEach((t, i) => {
          t.buffer = buf;
          t.offset = g.offsets[i];
        });
      }
    } catch (e) {
      for (const b of buffers) await b.free();
      for (const t of tensors) t.buffer = null;
      throw e;
    }
    return buffers;
  }

  /**
   * Splits `graph` over the devices, gives each split its memory and a plan. The graph's nodes are
   * re-pointed at device-local copies of what they read from elsewhere, so the graph belongs to the
   * result from now on.
   */
  async schedule(graph: Graph, opts: ScheduleOptions = {}): Promise<ScheduledGraph> {
    const devOf = new Map<Tensor, number>();
    const pinned = (t: Tensor): number | undefined => {
      const b = (t.viewSrc ?? t).buffer;
      if (!b) return undefined;
      const i = this.devices.indexOf(b.device);
      if (i < 0) throw new DeviceError(`"${t.name}" lives on ${b.device.name}, which is not scheduled`);
      return i;
    };
    // 1. a device for every node
    let prev = 0;
    for (const n of graph.nodes) {
      let d = opts.placement?.(n);
      if (d === undefined && n.viewSrc) d = pinned(n.viewSrc) ?? devOf.get(n.viewSrc);
      if (d === undefined) {
        for (const s of n.src) if (s && d === undefined) d = pinned(s);
      }
      if (d === undefined) {
        for (const s of n.src) if (s && d === undefined) d = devOf.get(s);
      }
      d ??= prev;
      if (!this.devices[d]) throw new RangeError(`placement of ${describeNode(n)} names device ${d}`);
      if (!this.devices[d].supportsOp(n)) {
        throw new UnsupportedOpError(`${this.devices[d].name} does not support ${describeNode(n)}`);
      }
      devOf.set(n, d);
      prev = d;
    }
    // 2. runs of one device
    const runs: { device: number; nodes: Tensor[] }[] = [];
    for (const n of graph.nodes) {
      const d = devOf.get(n)!;
      if (!runs.length || runs[runs.length - 1].device !== d) runs.push({ device: d, nodes: [] });
      runs[runs.length - 1].nodes.push(n);
    }
    // 3. re-point reads from other devices at local copies; inputs get a copy per device
    const splitOf = new Map<Tensor, number>();
    runs.forEach((r, i) => r.nodes.forEach((n) => splitOf.set(n, i)));
    const inputs = new Map<Tensor, Tensor[]>();
    const inputCopy = new Map<string, Tensor>(); // `${id}/${device}`
    const transferCopy = new Map<string, Tensor>(); // `${id}/${split}`
    const transfers: { from: Tensor; to: Tensor }[][] = runs.map(() => []);
    const keep = runs.map(() => new Set<Tensor>());
    const localCopy = (s: Tensor, device: number, split: number): Tensor => {
      if (s.op === GgmlOp.NONE && !s.buffer && !s.viewSrc) {
        // an input: the client writes it, one copy per device
        const key = `${s.id}/${device}`;
        let c = inputCopy.get(key);
        if (!c) {
          const list = inputs.get(s) ?? [];
          c = list.length === 0 ? s : cloneLeaf(s, `${this.devices[device].name}#${s.name}`);
          c.flags |= TensorFlag.INPUT;
          list.push(c);
          inputs.set(s, list);
          inputCopy.set(key, c);
        }
        return c;
      }
      const where = splitOf.has(s) ? runs[splitOf.get(s)!].device : pinned(s);
      if (where === undefined) {
        // a view of an input, or a leaf with no data: it follows its base
        return s;
      }
      if (where === device) {
        const from = splitOf.get(s.viewSrc ?? s);
        if (from !== undefined && from !== split) keep[from].add(s.viewSrc ?? s);
        return s;
      }
      const key = `${s.id}/${split}`;
      let c = transferCopy.get(key);
      if (!c) {
        c = cloneLeaf(s, `${this.devices[device].name}#${s.name}`);
        c.flags |= TensorFlag.INPUT;
        transferCopy.set(key, c);
        transfers[split].push({ from: s, to: c });
        const from = splitOf.get(s.viewSrc ?? s);
        if (from !== undefined) keep[from].add(s.viewSrc ?? s);
      }
      return c;
    };
    runs.forEach((r, split) => {
      for (const n of r.nodes) {
        for (let k = 0; k < n.src.length; k++) {
          const s = n.src[k];
          if (s && s !== n) n.src[k] = localCopy(s, r.device, split);
        }
        if (n.viewSrc) {
          const v = localCopy(n.viewSrc, r.device, split);
          if (v !== n.viewSrc) n.viewSrc = v;
        }
      }
    });
    // 4. memory and plans, split by split (inputs shared by splits of one device are placed once)
    const splits: Split[] = [];
    try {
      for (let i = 0; i < runs.length; i++) {
        const r = runs[i];
        const device = this.devices[r.device];
        const g = newGraph(r.nodes);
        const mem = await planMemory(g, device, { keep: keep[i] });
        let buffer: DeviceBuffer | null = null;
        if (mem.size > 0) {
          buffer = await device.allocBuffer(mem.size);
          if (!buffer) {
            throw new DeviceError(`${device.name} could not allocate ${mem.size} bytes of activations`);
          }
        }
        bindMemory(g, buffer, mem);
        for (const t of g.tensors) {
          if (nbytes(t) > 0 && !t.buffer) throw new DeviceError(`${describeNode(t)} got no memory`);
        }
        const plan = await device.planCreate(g);
        splits.push({ deviceIndex: r.device, device, graph: g, plan, transfers: transfers[i], buffer });
      }
    } catch (e) {
      for (const s of splits) await s.buffer?.free();
      throw e;
    }
    return new ScheduledGraph(splits, inputs);
  }
}

/** A new leaf with `t`'s type, shape and strides (its data is a copy of t's bytes). */
function cloneLeaf(t: Tensor, name: string): Tensor {
  return newTensor({
    id: newTensorId(),
    type: t.type,
    ne: [...t.ne],
    nb: [...t.nb],
    name: name.slice(0, 63),
  });
}
