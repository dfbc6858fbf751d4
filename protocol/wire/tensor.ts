/**
 * The 296-byte `rpc_tensor`: a ggml tensor as it travels on the wire, packed, little-endian.
 *
 * | offset | field | type |
 * |---|---|---|
 * | 0 | id | u64 |
 * | 8 | type | u32 |
 * | 12 | buffer | u64 |
 * | 20 | ne[4] | u32 ×4 |
 * | 36 | nb[4] | u32 ×4 |
 * | 52 | op | u32 |
 * | 56 | op_params | 64 bytes |
 * | 120 | flags | i32 |
 * | 124 | src[10] | u64 ×10 |
 * | 204 | view_src | u64 |
 * | 212 | view_offs | u64 |
 * | 220 | data | u64 |
 * | 228 | name | char[64] |
 * | 292 | use_count | i32 |
 * @module
 */

import { MAX_NAME, MAX_OP_PARAMS, MAX_SRC, RPC_TENSOR_SIZE } from "./constants.ts";

/** Field offsets inside an rpc_tensor. */
export const TensorField = {
  id: 0,
  type: 8,
  buffer: 12,
  ne: 20,
  nb: 36,
  op: 52,
  opParams: 56,
  flags: 120,
  src: 124,
  viewSrc: 204,
  viewOffs: 212,
  data: 220,
  name: 228,
  useCount: 292,
} as const;

/** An rpc_tensor decoded field by field; u64 fields are bigints, exactly as sent. */
export interface RpcTensor {
  id: bigint;
  type: number;
  buffer: bigint;
  ne: [number, number, number, number];
  nb: [number, number, number, number];
  op: number;
  /** The 64 op_params bytes (read them as i32 or f32 by op). */
  opParams: Uint8Array;
  flags: number;
  src: bigint[];
  viewSrc: bigint;
  viewOffs: bigint;
  data: bigint;
  name: string;
  useCount: number;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** A zeroed rpc_tensor (all ids 0, type f32, ne 1×1×1×1 is NOT implied: ne are 0). */
export function emptyRpcTensor(): RpcTensor {
  return {
    id: 0n,
    type: 0,
    buffer: 0n,
    ne: [0, 0, 0, 0],
    nb: [0, 0, 0, 0],
    op: 0,
    opParams: new Uint8Array(MAX_OP_PARAMS),
    flags: 0,
    src: new Array<bigint>(MAX_SRC).fill(0n),
    viewSrc: 0n,
    viewOffs: 0n,
    data: 0n,
    name: "",
    useCount: 0,
  };
}

/** Decodes the rpc_tensor at `offset` of `bytes` (which must hold 296 bytes there). */
export function decodeRpcTensor(bytes: Uint8Array, offset = 0): RpcTensor {
  if (offset < 0 || offset + RPC_TENSOR_SIZE > bytes.length) {
    throw new RangeError(`rpc_tensor at ${offset} runs past ${bytes.length} bytes`);
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset + offset, RPC_TENSOR_SIZE);
  const src = new Array<bigint>(MAX_SRC);
  for (let i = 0; i < MAX_SRC; i++) src[i] = v.getBigUint64(TensorField.src + 8 * i, true);
  const nameBytes = bytes.subarray(offset + TensorField.name, offset + TensorField.name + MAX_NAME);
  const nul = nameBytes.indexOf(0);
  return {
    id: v.getBigUint64(TensorField.id, true),
    type: v.getUint32(TensorField.type, true),
    buffer: v.getBigUint64(TensorField.buffer, true),
    ne: [
      v.getUint32(TensorField.ne, true),
      v.getUint32(TensorField.ne + 4, true),
      v.getUint32(TensorField.ne + 8, true),
      v.getUint32(TensorField.ne + 12, true),
    ],
    nb: [
      v.getUint32(TensorField.nb, true),
      v.getUint32(TensorField.nb + 4, true),
      v.getUint32(TensorField.nb + 8, true),
      v.getUint32(TensorField.nb + 12, true),
    ],
    op: v.getUint32(TensorField.op, true),
    opParams: bytes.slice(offset + TensorField.opParams, offset + TensorField.opParams + MAX_OP_PARAMS),
    flags: v.getInt32(TensorField.flags, true),
    src,
    viewSrc: v.getBigUint64(TensorField.viewSrc, true),
    viewOffs: v.getBigUint64(TensorField.viewOffs, true),
    data: v.getBigUint64(TensorField.data, true),
    name: decoder.decode(nul < 0 ? nameBytes : nameBytes.subarray(0, nul)),
    useCount: v.getInt32(TensorField.useCount, true),
  };
}

/** Encodes `t` into 296 bytes at `offset` of `out`. The name is cut to 63 bytes plus NUL. */
export function encodeRpcTensor(t: RpcTensor, out: Uint8Array, offset = 0): void {
  if (offset < 0 || offset + RPC_TENSOR_SIZE > out.length) {
    throw new RangeError(`rpc_tensor at ${offset} runs past ${out.length} bytes`);
  }
  const v = new DataView(out.buffer, out.byteOffset + offset, RPC_TENSOR_SIZE);
  out.fill(0, offset, offset + RPC_TENSOR_SIZE);
  v.setBigUint64(TensorField.id, t.id, true);
  v.setUint32(TensorField.type, t.type, true);
  v.setBigUint64(TensorField.buffer, t.buffer, true);
  for (let i = 0; i < 4; i++) {
    v.setUint32(TensorField.ne + 4 * i, t.ne[i], true);
    v.setUint32(TensorField.nb + 4 * i, t.nb[i], true);
  }
  v.setUint32(TensorField.op, t.op, true);
  out.set(t.opParams.subarray(0, MAX_OP_PARAMS), offset + TensorField.opParams);
  v.setInt32(TensorField.flags, t.flags, true);
  for (let i = 0; i < MAX_SRC; i++) v.setBigUint64(TensorField.src + 8 * i, t.src[i] ?? 0n, true);
  v.setBigUint64(TensorField.viewSrc, t.viewSrc, true);
  v.setBigUint64(TensorField.viewOffs, t.viewOffs, true);
  v.setBigUint64(TensorField.data, t.data, true);
  const name = encoder.encode(t.name);
  out.set(name.subarray(0, MAX_NAME - 1), offset + TensorField.name);
  v.setInt32(TensorField.useCount, t.useCount, true);
}

/** `t` encoded into a new 296-byte array. */
export function rpcTensorBytes(t: RpcTensor): Uint8Array {
  const out = new Uint8Array(RPC_TENSOR_SIZE);
  encodeRpcTensor(t, out);
  return out;
}
