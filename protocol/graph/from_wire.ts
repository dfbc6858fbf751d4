/**
 * Turning untrusted rpc_tensors into `Tensor`s and a GRAPH_COMPUTE payload into a `Graph`, with every
 * check the network calls for: type below 43 and present, sizes that are exact integers, buffer
 * handles owned by this connection, `[data, data + nbytes)` inside the buffer (overflow-safe, in
 * BigInt), op below 101, unique ids, resolvable sources, no cycles — and no recursion, so a deep
 * chain cannot exhaust the stack.
 * @module
 */

import type { DeviceBuffer } from "../../backends/device.ts";
import { ValidationError } from "../errors.ts";
import { MAX_SRC } from "../wire/constants.ts";
import type { GraphPayload } from "../wire/graph_payload.ts";
import type { RpcTensor } from "../wire/tensor.ts";
import type { Graph } from "./graph.ts";
import { GGML_OP_COUNT } from "./ops.ts";
import { nbytesChecked, type Tensor } from "./tensor.ts";
import { GGML_TYPE_COUNT, typeInfo } from "./types.ts";

/** A buffer as the server knows it: its device buffer and the virtual base address it announced. */
export interface BufferEntry {
  buffer: DeviceBuffer;
  base: bigint;
  size: bigint;
  /** Index of the server device that owns it. */
  device: number;
}

/** Looks a remote_ptr handle up among this connection's buffers. */
export type BufferLookup = (handle: bigint) => BufferEntry | undefined;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Checks and converts one rpc_tensor (sources unlinked). An unknown non-zero buffer handle, a data
 * address without a buffer, or a data range outside the buffer is an error.
 */
export function tensorFromWire(rt: RpcTensor, lookup: BufferLookup, what = "tensor"): Tensor {
  const where = () => `${what} id ${rt.id}${rt.name ? ` "${rt.name}"` : ""}`;
  if (rt.type >= GGML_TYPE_COUNT || !typeInfo(rt.type)) {
    throw new ValidationError(`${where()}: invalid type ${rt.type}`);
  }
  if (rt.op >= GGML_OP_COUNT) throw new ValidationError(`${where()}: invalid op ${rt.op}`);
  const n = rt.ne[0] * rt.ne[1] * rt.ne[2] * rt.ne[3];
  if (!Number.isSafeInteger(n)) throw new ValidationError(`${where()}: element count overflows`);
  const size = nbytesChecked(rt);
  if (size < 0) throw new ValidationError(`${where()}: byte size overflows`);
  if (rt.viewOffs > MAX_SAFE) throw new ValidationError(`${where()}: view_offs ${rt.viewOffs} is too large`);
  let buffer: DeviceBuffer | null = null;
  let offset = 0;
  if (rt.buffer !== 0n) {
    const entry = lookup(rt.buffer);
    if (!entry) {
      throw new ValidationError(
        `${where()}: buffer 0x${rt.buffer.toString(16)} is not one of this connection's`,
      );
    }
    const rel = rt.data - entry.base;
    if (rt.data < entry.base || rel + BigInt(size) > entry.size) {
      throw new ValidationError(
        `${where()}: data 0x${rt.data.toString(16)} + ${size} bytes lies outside its buffer ` +
          `[0x${entry.base.toString(16)}, +${entry.size})`,
      );
    }
    buffer = entry.buffer;
    offset = Number(rel);
  } else if (rt.data !== 0n) {
    throw new ValidationError(`${where()}: data address without a buffer`);
  }
  return {
    id: rt.id,
    type: rt.type,
    ne: [rt.ne[0], rt.ne[1], rt.ne[2], rt.ne[3]],
    nb: [rt.nb[0], rt.nb[1], rt.nb[2], rt.nb[3]],
    op: rt.op,
    opParams: rt.opParams,
    flags: rt.flags,
    src: new Array<Tensor | null>(MAX_SRC).fill(null),
    viewSrc: null,
    viewOffs: Number(rt.viewOffs),
    buffer,
    offset,
    name: rt.name,
  };
}

/**
 * Rebuilds the graph of a GRAPH_COMPUTE payload. Every tensor is checked with
 * {@linkcode tensorFromWire}; ids are unique and non-zero; every src / view_src id and node id
 * names a tensor of the payload; the dependency relation has no cycle. Tensors are returned in
 * dependency order (sources first).
 */
export function graphFromPayload(p: GraphPayload, lookup: BufferLookup): Graph {
  const index = new Map<bigint, number>();
  for (let i = 0; i < p.tensors.length; i++) {
    const id = p.tensors[i].id;
    if (id === 0n) throw new ValidationError(`graph tensor #${i} has id 0`);
    if (index.has(id)) throw new ValidationError(`graph tensor id ${id} appears twice`);
    index.set(id, i);
  }
  const tensors = p.tensors.map((rt) => {
    const t = tensorFromWire(rt, lookup, "graph tensor");
    // Zero or tiny strides let a few bytes claim billions of elements; kernels iterate elements, so
    // a graph tensor may not claim more elements than its bytes can hold (8 per byte covers every
    // ggml type, the densest quantised ones included).
    const n = t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3];
    if (n > 8 * nbytesChecked(t) + 8) {
      throw new ValidationError(
        `graph tensor id ${rt.id}: ${n} elements in ${nbytesChecked(t)} bytes (strides too small)`,
      );
    }
    return t;
  });
  // deps[i]: indices of tensor i's sources and view source.
  const deps: number[][] = p.tensors.map((rt) => {
    const d: number[] = [];
    for (let s = 0; s < MAX_SRC; s++) {
      const sid = rt.src[s];
      if (sid === 0n) continue;
      const j = index.get(sid);
      if (j === undefined) {
        throw new ValidationError(`graph tensor id ${rt.id}: src[${s}] id ${sid} is not in the graph`);
      }
      tensors[index.get(rt.id)!].src[s] = tensors[j];
      d.push(j);
    }
    if (rt.viewSrc !== 0n) {
      const j = index.get(rt.viewSrc);
      if (j === undefined) {
        throw new ValidationError(`graph tensor id ${rt.id}: view_src id ${rt.viewSrc} is not in the graph`);
      }
      tensors[index.get(rt.id)!].viewSrc = tensors[j];
      d.push(j);
    }
    return d;
  });
  const order = topoOrder(deps);
  const nodes = p.nodeIds.map((id, i) => {
    const j = index.get(id);
    if (j === undefined) throw new ValidationError(`graph node #${i} id ${id} is not in the graph`);
    return tensors[j];
  });
  return { device: p.device, nodes, tensors: order.map((i) => tensors[i]), uid: 0n };
}

/** Kahn-free iterative DFS: dependency order of all vertices; throws on a cycle. */
function topoOrder(deps: number[][]): number[] {
  const n = deps.length;
  const state = new Uint8Array(n); // 0 new, 1 on stack, 2 done
  const out: number[] = [];
  const stack: number[] = [];
  const next: number[] = new Array(n).fill(0);
  for (let r = 0; r < n; r++) {
    if (state[r]) continue;
    stack.push(r);
    state[r] = 1;
    while (stack.length) {
      const v = stack[stack.length - 1];
      const d = deps[v];
      if (next[v] < d.length) {
        const w = d[next[v]++];
        if (state[w] === 1) throw new ValidationError("graph has a cycle");
        if (state[w] === 0) {
          state[w] = 1;
          stack.push(w);
        }
      } else {
        stack.pop();
        state[v] = 2;
        out.push(v);
      }
    }
  }
  return out;
}
