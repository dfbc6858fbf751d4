/**
 * WebGPU plans: for a graph, once, every node's dispatches with their pipelines (cached on the
 * device per shader variant), bind groups, workgroup counts, and every dispatch's parameters packed
 * into ONE uniform buffer that dispatches read through dynamic offsets. A run encodes one compute
 * pass in one command encoder and submits it — it never waits. An update with a graph of the same
 * structure rebuilds the dispatch descriptions (cheap, CPU only), rewrites only the parameter bytes
 * that changed (one writeBuffer over the changed span) and recreates only the bind groups whose
 * bound ranges changed; running it again (GRAPH_RECOMPUTE) allocates nothing per node beyond what
 * the encoder records.
 *
 * Bindings: a tensor is bound at its offset rounded down to minStorageBufferOffsetAlignment over its
 * byte range rounded up to whole words (kernels get the remainder through BindInfo). Tensors in the
 * buffer a node writes whose binding ranges overlap (in-place ops, views, neighbours closer than the
 * alignment) are bound over one range, and a read binding of that range folds into the written
 * binding (its declaration is dropped and its name refers to the written array), since
 * implementations may refuse overlapping writable bindings (Dawn does).
 * Any other read binding in a buffer the dispatch writes is declared read_write, since WebGPU
 * forbids read-only and writable uses of one buffer in one dispatch.
 * @module
 */

import { DeviceError } from "../../protocol/errors.ts";
import type { Graph } from "../../protocol/graph/graph.ts";
import { VIEW_OPS } from "../../protocol/graph/ops.ts";
import { describeNode, nbytes, newTensor, type Tensor } from "../../protocol/graph/tensor.ts";
import { GgmlType } from "../../protocol/graph/types.ts";
import type { Plan } from "../device.ts";
import type { WebGpuBuffer } from "./buffer.ts";
import type { WebGpuDevice } from "./device.ts";
import { type BuildContext, type Dispatch, elemSize, MAX_PARAM_BYTES } from "./kernels/kernel.ts";

interface Step {
  node: Tensor;
  label: string;
  code: string;
  layoutKey: string;
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  sig: string;
  groups: [number, number, number];
}

interface Range {
  buffer: WebGpuBuffer;
  start: number;
  size: number;
}

const roundUp4 = (x: number) => Math.ceil(x / 4) * 4;

/** A graph prepared for the WebGPU device. */
export class WebGpuPlan implements Plan {
  graph: Graph;
  readonly device: WebGpuDevice;
  #steps: Step[] = [];
  #slot: number;
  #params: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  #paramBuf: GPUBuffer | null = null;
  #ctx: BuildContext;
  /** While a node builds: its tensors that overlap its output, bound as one range. */
  #merged: Map<Tensor, Range> | null = null;
  /** Scratch for nodes that ask for it (BuildContext.scratch): grown to the largest request. */
  #scratch: WebGpuBuffer | null = null;
  #scratchWant = 0;
  #scratchTensors: Tensor[] = [];

  private constructor(device: WebGpuDevice, graph: Graph) {
    this.device = device;
    this.graph = graph;
    this.#slot = Math.max(
      MAX_PARAM_BYTES,
      Math.ceil(MAX_PARAM_BYTES / device.uniformAlign) * device.uniformAlign,
    );
    const align = device.storageAlign;
    this.#ctx = {
      caps: device.caps,
      byteOffset: (t) => t.offset - (this.#merged?.get(t)?.start ?? Math.floor(t.offset / align) * align),
      elemOffset: (t) =>
        Math.floor(
          (t.offset - (this.#merged?.get(t)?.start ?? Math.floor(t.offset / align) * align)) /
            elemSize(t.type),
        ),
      sharesBinding: (a, b) => {
        const r = this.#merged?.get(a);
        return r !== undefined && r === this.#merged?.get(b);
      },
      scratch: (bytes) => {
        const n = Math.max(1, Math.ceil(bytes / 4));
        const t = newTensor({ type: GgmlType.F32, ne: [n], name: "scratch" });
        this.#scratchWant = Math.max(this.#scratchWant, 4 * n);
        this.#scratchTensors.push(t);
        return t;
      },
    };
  }

  /** Builds the plan of `graph` (every node supported). */
  static async create(device: WebGpuDevice, graph: Graph): Promise<WebGpuPlan> {
    const p = new WebGpuPlan(device, graph);
    await p.#build(graph, null);
    return p;
  }

  /** Re-targets the plan at a graph of the same structure. */
  async update(graph: Graph): Promise<WebGpuPlan> {
    await this.#build(graph, this.#steps);
    this.graph = graph;
    return this;
  }

  /** Encodes every dispatch in one compute pass and submits; does not wait. */
  run(): void {
    if (!this.#steps.length) return;
    const enc = this.device.gpu.createCommandEncoder();
    const pass = enc.beginComputePass();
    const off = [0];
    const steps = this.#steps;
    let last: GPUComputePipeline | null = null;
    for (let i = 0; i < steps.length; i++) {
      const s = steps[i];
      if (s.pipeline !== last) pass.setPipeline(last = s.pipeline);
      off[0] = i * this.#slot;
      pass.setBindGroup(0, s.bindGroup, off);
      pass.dispatchWorkgroups(s.groups[0], s.groups[1], s.groups[2]);
    }
    pass.end();
    this.device.gpu.queue.submit([enc.finish()]);
  }

  /** Releases the parameter buffer. */
  free(): void {
    this.#paramBuf?.destroy();
    this.#paramBuf = null;
    this.#scratch?.free();
    this.#scratch = null;
    this.#steps = [];
  }

  #range(t: Tensor): Range {
    const buffer = t.buffer as WebGpuBuffer | null;
    if (!buffer || buffer.device !== this.device) {
      throw new DeviceError(`webgpu: tensor "${t.name}" has no buffer on ${this.device.name}`);
    }
    const align = this.device.storageAlign;
    const start = Math.floor(t.offset / align) * align;
    const end = Math.min(roundUp4(t.offset + Math.max(nbytes(t), elemSize(t.type))), buffer.gpu.size);
    return { buffer, start, size: Math.max(4, end - start) };
  }

  /**
   * The tensors of `node` in the buffer it writes whose BINDING ranges overlap (a range starts at
   * the offset rounded down to the storage alignment, so tensors with disjoint bytes may still
   * overlap there), grouped transitively: each group is bound as one range covering it, so that
   * the dispatch has no two aliasing bindings in a written buffer (Dawn refuses them; wgpu does
   * not check). Null when nothing overlaps; a group whose union would not fit a binding is left
   * as it is.
   */
  #overlapping(node: Tensor): Map<Tensor, Range> | null {
    const buffer = node.buffer as WebGpuBuffer | null;
    if (!buffer) return null;
    const members: Tensor[] = [node];
    for (const s of node.src) if (s && s.buffer === buffer && !members.includes(s)) members.push(s);
    if (members.length === 1) return null;
    const spans = members.map((t) => {
      const r = this.#range(t);
      return [r.start, r.start + r.size];
    });
    // union-find over pairwise overlaps
    const root = members.map((_, i) => i);
    const find = (i: number): number => root[i] === i ? i : (root[i] = find(root[i]));
    for (let i = 0; i < members.length; i++) {
      for (let j = i + 1; j < members.length; j++) {
        if (spans[i][0] < spans[j][1] && spans[j][0] < spans[i][1]) root[find(i)] = find(j);
      }
    }
    const groups = new Map<number, number[]>();
    members.forEach((_, i) => {
      const r = find(i);
      groups.set(r, [...groups.get(r) ?? [], i]);
    });
    let out: Map<Tensor, Range> | null = null;
    for (const g of groups.values()) {
      if (g.length === 1) continue;
      const start = Math.min(...g.map((i) => spans[i][0]));
      const end = Math.max(...g.map((i) => spans[i][1]));
      if (end - start > this.device.caps.maxStorageBufferBindingSize) continue;
      const r: Range = { buffer, start, size: Math.max(4, end - start) };
      out ??= new Map();
      for (const i of g) out.set(members[i], r);
    }
    return out;
  }

  async #build(graph: Graph, old: Step[] | null): Promise<void> {
    const dispatches: { node: Tensor; d: Dispatch; merged: Map<Tensor, Range> | null }[] = [];
    for (const node of graph.nodes) {
      if (VIEW_OPS.has(node.op) || nbytes(node) === 0) continue;
      const k = this.device.requireKernel(node);
      const merged = this.#merged = this.#overlapping(node);
      let built: Dispatch[];
      try {
        built = k.build(node, this.#ctx);
      } finally {
        this.#merged = null;
      }
      for (const d of built) {
        if (d.groups[0] === 0 || d.groups[1] === 0 || d.groups[2] === 0) continue;
        if (d.params.byteLength > MAX_PARAM_BYTES) {
          throw new DeviceError(`webgpu: kernel ${d.key} has ${d.params.byteLength} bytes of parameters`);
        }
        dispatches.push({ node, d, merged });
      }
    }
    // scratch tensors asked for while building: one buffer of the largest size backs them all
    if (this.#scratchTensors.length) {
      if (!this.#scratch || this.#scratch.size < this.#scratchWant) {
        this.#scratch?.free();
        this.#scratch = this.device.allocBuffer(this.#scratchWant);
        if (!this.#scratch) {
          throw new DeviceError(`webgpu: cannot allocate ${this.#scratchWant} bytes of scratch`);
        }
      }
      for (const t of this.#scratchTensors) t.buffer = this.#scratch;
      this.#scratchTensors = [];
    }
    if (old && old.length !== dispatches.length) old = null;
    const size = Math.max(1, dispatches.length) * this.#slot;
    const fresh = !this.#paramBuf || this.#paramBuf.size < size;
    if (fresh) {
      this.#paramBuf?.destroy();
      this.#paramBuf = this.device.gpu.createBuffer({
        size,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      });
      this.#params = new Uint8Array(size);
    }
    let lo = fresh ? 0 : Infinity, hi = fresh ? size : 0;
    const steps: Step[] = [];
    for (let i = 0; i < dispatches.length; i++) {
      const { node, d, merged } = dispatches[i];
      const ranges = d.bindings.map((b) => merged?.get(b.tensor) ?? this.#range(b.tensor));
      const { code, layoutKey } = shareBindings(d, ranges);
      const sig = ranges.map((r) => `${r.buffer.id}:${r.start}:${r.size}`).join(",") + "|" + layoutKey;
      const prev = old?.[i];
      const pipeline = prev && prev.code === code && prev.layoutKey === layoutKey
        ? prev.pipeline
        : await this.device.pipeline(code, layoutKey, d.key);
      let bindGroup: GPUBindGroup;
      if (prev && prev.sig === sig && prev.layoutKey === layoutKey && !fresh) bindGroup = prev.bindGroup;
      else {
        const entries: GPUBindGroupEntry[] = [];
        ranges.forEach((r, k) => {
          if (layoutKey[k] === "-") return;
          entries.push({ binding: k, resource: { buffer: r.buffer.gpu, offset: r.start, size: r.size } });
        });
        entries.push({
          binding: ranges.length,
          resource: { buffer: this.#paramBuf!, offset: 0, size: MAX_PARAM_BYTES },
        });
        bindGroup = this.device.gpu.createBindGroup({
          layout: this.device.layout(layoutKey).group,
          entries,
          label: `${d.key} ${describeNode(node)}`,
        });
      }
      // parameters: compare and copy into the slot
      const at = i * this.#slot;
      const src = new Uint8Array(d.params.buffer, d.params.byteOffset, d.params.byteLength);
      let same = !fresh;
      for (let j = 0; j < src.length && same; j++) if (this.#params[at + j] !== src[j]) same = false;
      if (!same) {
        this.#params.set(src, at);
        lo = Math.min(lo, at);
        hi = Math.max(hi, at + src.length);
      }
      steps.push({ node, label: d.key, code, layoutKey, pipeline, bindGroup, sig, groups: d.groups });
    }
    if (hi > lo) {
      const a = Math.floor(lo / 4) * 4, b = roundUp4(hi);
      this.device.gpu.queue.writeBuffer(this.#paramBuf!, a, this.#params, a, b - a);
    }
    this.#steps = steps;
  }
}

/**
 * The shader and binding layout of `d` given where its tensors are bound ("w" writable, "r"
 * read-only, "-" no binding). A read binding over exactly the range of a written binding of the
 * same element type is folded into it: its declaration is dropped and its name refers to the
 * written array (WebGPU implementations may refuse overlapping writable bindings); reads over one
 * range of a written buffer fold into the first of them likewise. Any other read binding in a
 * written buffer is declared read_write (a buffer may not be both read-only and writable in one
 * dispatch).
 */
function shareBindings(d: Dispatch, ranges: Range[]): { code: string; layoutKey: string } {
  // the binding pattern: w written, a written atomically, r read, u read in a written buffer,
  // fJ read over exactly written binding J's range, gM read over exactly earlier read M's range
  let pattern = "";
  let anyShared = false;
  d.bindings.forEach((b, k) => {
    let tag = b.write ? (b.atomic ? "a" : "w") : "r";
    for (let j = 0; j < d.bindings.length && !b.write; j++) {
      const w = d.bindings[j];
      if (!w.write || ranges[j].buffer !== ranges[k].buffer) continue;
      tag = "u";
      anyShared = true;
      if (ranges[j] === ranges[k] && !w.atomic) {
        tag = `f${j}`;
        break;
      }
    }
    if (tag === "u") {
      // reads grouped over one range with an earlier read of that buffer share its binding
      const m = d.bindings.findIndex((r, mm) => mm < k && !r.write && ranges[mm] === ranges[k]);
      if (m >= 0) tag = `g${m}`;
    }
    pattern += tag + ",";
  });
  if (!anyShared) return { code: d.code, layoutKey: d.bindings.map((b) => b.write ? "w" : "r").join("") };
  let byPattern = SHARED.get(d.code);
  if (!byPattern) SHARED.set(d.code, byPattern = new Map());
  let out = byPattern.get(pattern);
  if (!out) byPattern.set(pattern, out = rewrite(d));
  return out;

  function rewrite(d: Dispatch): { code: string; layoutKey: string } {
    let code = d.code;
    const key: string[] = d.bindings.map((b) => b.write ? "w" : "r");
    const written = new Set<WebGpuBuffer>();
    d.bindings.forEach((b, k) => b.write && written.add(ranges[k].buffer));
    const decl = (k: number, access: string) =>
      new RegExp(`@group\\(0\\) @binding\\(${k}\\) var<storage, ${access}> (\\w+): array<([\\w<>]+)>;\\n?`);
    d.bindings.forEach((b, k) => {
      if (b.write || !written.has(ranges[k].buffer)) return;
      let j = d.bindings.findIndex((w, jj) => w.write && ranges[jj] === ranges[k]);
      if (j < 0) j = d.bindings.findIndex((_r, m) => m < k && key[m] === "w" && ranges[m] === ranges[k]);
      if (j >= 0 && !d.bindings[j].atomic) {
        const mine = code.match(decl(k, "read")), theirs = code.match(decl(j, "read_write"));
        if (mine && theirs && mine[2] === theirs[2]) {
          code = code.replace(mine[0], "").replace(new RegExp(`(?<![.\\w])${mine[1]}\\b`, "g"), theirs[1]);
          key[k] = "-";
          return;
        }
      }
      key[k] = "w";
      code = code.replace(
        `@group(0) @binding(${k}) var<storage, read>`,
        `@group(0) @binding(${k}) var<storage, read_write>`,
      );
    });
    return { code, layoutKey: key.join("") };
  }
}

/** shareBindings results by shader and binding pattern. */
const SHARED = new Map<string, Map<string, { code: string; layoutKey: string }>>();
