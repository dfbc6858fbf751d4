/**
 * Client-side tensors and graphs on the wire: a {@linkcode Tensor} whose data lives in an
 * {@linkcode RpcBuffer} becomes an rpc_tensor with that buffer's handle and the absolute address
 * base + offset; a graph becomes a GRAPH_COMPUTE payload serialised as ggml's client does it
 * (every tensor reachable from the nodes, sources first, with use counts).
 * @module
 */

import { DeviceError } from "../../protocol/errors.ts";
import type { Graph } from "../../protocol/graph/graph.ts";
import { describeNode, nbytes, type Tensor } from "../../protocol/graph/tensor.ts";
import { RPC_TENSOR_SIZE } from "../../protocol/wire/constants.ts";
import { graphPayloadSize } from "../../protocol/wire/graph_payload.ts";
import { encodeRpcTensor, type RpcTensor } from "../../protocol/wire/tensor.ts";
import type { RpcConnection } from "../../protocol/client.ts";

/** What a tensor's buffer must offer to be addressed on the wire. */
export interface WireAddressable {
  readonly remotePtr: bigint;
  readonly base: bigint;
  readonly connection: RpcConnection;
}

function isWireAddressable(b: unknown): b is WireAddressable {
  return !!b && typeof (b as WireAddressable).remotePtr === "bigint" &&
    typeof (b as WireAddressable).base === "bigint";
}

/**
 * `t` as an rpc_tensor. A tensor without an RPC buffer goes with buffer 0 and data 0, as ggml's
 * serialize_tensor does.
 */
export function tensorToWire(t: Tensor, useCount = 0): RpcTensor {
  const b = t.buffer;
  const rpc = isWireAddressable(b);
  return {
    id: t.id,
    type: t.type,
    buffer: rpc ? b.remotePtr : 0n,
    ne: [...t.ne],
    nb: [...t.nb],
    op: t.op,
    opParams: t.opParams,
    flags: t.flags,
    src: t.src.map((s) => s?.id ?? 0n),
    viewSrc: t.viewSrc?.id ?? 0n,
    viewOffs: BigInt(t.viewOffs),
    data: rpc ? b.base + BigInt(t.offset) : 0n,
    name: t.name,
    useCount,
  };
}

/**
 * The GRAPH_COMPUTE payload of `g` for server device `device`. Every tensor with data must live in
 * a buffer of `conn` (the server cannot reach any other memory).
 */
export function encodeGraph(g: Graph, device: number, conn: RpcConnection): Uint8Array {
  const uses = new Map<Tensor, number>();
  for (const n of g.nodes) for (const s of n.src) if (s) uses.set(s, (uses.get(s) ?? 0) + 1);
  const out = new Uint8Array(graphPayloadSize(g.nodes.length, g.tensors.length));
  const v = new DataView(out.buffer);
  v.setUint32(0, device, true);
  v.setUint32(4, g.nodes.length, true);
  let o = 8;
  for (const n of g.nodes) {
    v.setBigUint64(o, n.id, true);
    o += 8;
  }
  v.setUint32(o, g.tensors.length, true);
  o += 4;
  for (const t of g.tensors) {
    const b = t.buffer;
    if (nbytes(t) > 0 && (!isWireAddressable(b) || b.connection !== conn)) {
      throw new DeviceError(
        `${describeNode(t)}: its data is ${
          b ? `on ${b.device.name}` : "not allocated"
        }, not on ${conn.endpoint}`,
      );
    }
    encodeRpcTensor(tensorToWire(t, uses.get(t) ?? 0), out, o);
    o += RPC_TENSOR_SIZE;
  }
  return out;
}
