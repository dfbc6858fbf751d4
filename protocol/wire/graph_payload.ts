/**
 * The GRAPH_COMPUTE payload:
 * `u32 device | u32 n_nodes | u64 node_ids[n_nodes] | u32 n_tensors | rpc_tensor tensors[n_tensors]`,
 * `12 + 8·n_nodes + 296·n_tensors` bytes.
 * @module
 */

import { ProtocolError } from "../errors.ts";
import { RPC_TENSOR_SIZE } from "./constants.ts";
import { decodeRpcTensor, encodeRpcTensor, type RpcTensor } from "./tensor.ts";

/** A decoded GRAPH_COMPUTE payload. */
export interface GraphPayload {
  device: number;
  /** Node ids in execution order (0 = an empty slot, which the reference skips). */
  nodeIds: bigint[];
  /** Every node and every tensor reachable from them, each once. */
  tensors: RpcTensor[];
}

/** Size in bytes of a payload with these counts. */
export function graphPayloadSize(nNodes: number, nTensors: number): number {
  return 12 + 8 * nNodes + RPC_TENSOR_SIZE * nTensors;
}

/** Encodes a GRAPH_COMPUTE payload. */
export function encodeGraphPayload(g: GraphPayload): Uint8Array {
  const out = new Uint8Array(graphPayloadSize(g.nodeIds.length, g.tensors.length));
  const v = new DataView(out.buffer);
  v.setUint32(0, g.device, true);
  v.setUint32(4, g.nodeIds.length, true);
  let o = 8;
  for (const id of g.nodeIds) {
    v.setBigUint64(o, id, true);
    o += 8;
  }
  v.setUint32(o, g.tensors.length, true);
  o += 4;
  for (const t of g.tensors) {
    encodeRpcTensor(t, out, o);
    o += RPC_TENSOR_SIZE;
  }
  return out;
}

/** The device index of a payload, read without decoding the rest (at least 4 bytes needed). */
export function graphPayloadDevice(p: Uint8Array): number {
  if (p.length < 4) throw new ProtocolError(`GRAPH_COMPUTE payload of ${p.length} bytes has no device`);
  return new DataView(p.buffer, p.byteOffset, p.byteLength).getUint32(0, true);
}

/**
 * Decodes a GRAPH_COMPUTE payload. The counts are checked against the payload's length before
 * anything is allocated for them, and the length must match the counts exactly.
 */
export function decodeGraphPayload(p: Uint8Array): GraphPayload {
  if (p.length < 12) throw new ProtocolError(`GRAPH_COMPUTE payload of ${p.length} bytes is shorter than 12`);
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const device = v.getUint32(0, true);
  const nNodes = v.getUint32(4, true);
  if (8 + 8 * nNodes + 4 > p.length) {
    throw new ProtocolError(`GRAPH_COMPUTE n_nodes ${nNodes} does not fit in ${p.length} bytes`);
  }
  const nodeIds = new Array<bigint>(nNodes);
  let o = 8;
  for (let i = 0; i < nNodes; i++, o += 8) nodeIds[i] = v.getBigUint64(o, true);
  const nTensors = v.getUint32(o, true);
  o += 4;
  const want = graphPayloadSize(nNodes, nTensors);
  if (want !== p.length) {
    throw new ProtocolError(
      `GRAPH_COMPUTE with ${nNodes} nodes and ${nTensors} tensors must be ${want} bytes, got ${p.length}`,
    );
  }
  const tensors = new Array<RpcTensor>(nTensors);
  for (let i = 0; i < nTensors; i++, o += RPC_TENSOR_SIZE) tensors[i] = decodeRpcTensor(p, o);
  return { device, nodeIds, tensors };
}
