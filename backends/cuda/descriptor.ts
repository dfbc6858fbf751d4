/**
 * gw_node descriptors: the byte layout of graphwire.h's gw_tensor (80 bytes) and gw_node (632
 * bytes), written from graph nodes so that a whole graph crosses the FFI boundary in one call.
 *
 * | offset | gw_node field | | offset | gw_tensor field |
 * | --- | --- | --- | --- | --- |
 * | 0 | op i32 | | 0 | data u64 (device pointer) |
 * | 4 | reserved | | 8 | ne[4] i64 |
 * | 8 | op_params[16] i32 | | 40 | nb[4] i64 |
 * | 72 | dst gw_tensor | | 72 | type i32 (-1: absent) |
 * | 152 + 80·i | src[i], i < 6 | | 76 | reserved |
 * @module
 */

import { VIEW_OPS } from "../../protocol/graph/ops.ts";
import type { Tensor } from "../../protocol/graph/tensor.ts";

/** Sources a descriptor carries (GW_MAX_SRC). */
export const MAX_SRC = 6;
/** sizeof(gw_tensor). */
export const TENSOR_SIZE = 80;
/** sizeof(gw_node). */
export const NODE_SIZE = 72 + TENSOR_SIZE * (1 + MAX_SRC);

/** Resolves a tensor's data to a device address (base of its buffer + offset), or null when it has none. */
export type AddressOf = (t: Tensor) => bigint | null;

function writeTensor(v: DataView, at: number, t: Tensor | null, addressOf: AddressOf): void {
  if (!t) {
    v.setInt32(at + 72, -1, true);
    return;
  }
  v.setBigUint64(at, addressOf(t) ?? 0n, true);
  for (let i = 0; i < 4; i++) {
    v.setBigInt64(at + 8 + 8 * i, BigInt(t.ne[i]), true);
    v.setBigInt64(at + 40 + 8 * i, BigInt(t.nb[i]), true);
  }
  v.setInt32(at + 72, t.type, true);
}

/** Whether the descriptor can hold `node` (no sources past MAX_SRC, except for views). */
export function fitsDescriptor(node: Tensor): boolean {
  if (VIEW_OPS.has(node.op)) return true;
  for (let i = MAX_SRC; i < node.src.length; i++) if (node.src[i]) return false;
  return true;
}

/** Writes `node` as a gw_node at byte `at` of `v`. */
export function writeNode(v: DataView, at: number, node: Tensor, addressOf: AddressOf): void {
  new Uint8Array(v.buffer, v.byteOffset + at, NODE_SIZE).fill(0);
  v.setInt32(at, node.op, true);
  const p = node.opParams;
  new Uint8Array(v.buffer, v.byteOffset + at + 8, 64).set(p.subarray(0, 64));
  writeTensor(v, at + 72, node, addressOf);
  for (let i = 0; i < MAX_SRC; i++) {
    writeTensor(v, at + 72 + TENSOR_SIZE * (1 + i), node.src[i] ?? null, addressOf);
  }
}

/** All of `nodes` as one array of gw_node. */
export function encodeNodes(nodes: readonly Tensor[], addressOf: AddressOf): Uint8Array {
  const bytes = new Uint8Array(NODE_SIZE * Math.max(1, nodes.length));
  const v = new DataView(bytes.buffer);
  for (let i = 0; i < nodes.length; i++) writeNode(v, NODE_SIZE * i, nodes[i], addressOf);
  return bytes;
}
