/**
 * Codecs for the payloads of all 18 commands, requests and responses. Pure functions over
 * `Uint8Array`/`DataView`; decoders check the exact size first and throw {@linkcode ProtocolError}.
 *
 * @example
 * ```ts
 * const payload = encodeAllocBufferReq({ device: 0, size: 1024n });
 * decodeAllocBufferReq(payload); // { device: 0, size: 1024n }
 * ```
 * @module
 */

import { ProtocolError } from "../errors.ts";
import {
  Cmd,
  cmdName,
  CONN_CAPS_SIZE,
  MAX_SRC,
  REQUEST_SIZE,
  RESPONSE_SIZE,
  RPC_TENSOR_SIZE,
} from "./constants.ts";
import { decodeRpcTensor, emptyRpcTensor, encodeRpcTensor, type RpcTensor } from "./tensor.ts";

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** Throws unless `payload` has exactly the request size of `cmd`. */
export function expectRequestSize(cmd: number, payload: Uint8Array | number): void {
  const n = typeof payload === "number" ? payload : payload.length;
  const want = REQUEST_SIZE[cmd];
  if (want !== undefined && n !== want) {
    throw new ProtocolError(`${cmdName(cmd)} request must be ${want} bytes, got ${n}`);
  }
}

/** Throws unless `payload` has exactly the response size of `cmd`. */
export function expectResponseSize(cmd: number, payload: Uint8Array | number): void {
  const n = typeof payload === "number" ? payload : payload.length;
  const want = RESPONSE_SIZE[cmd];
  if (want !== undefined && n !== want) {
    throw new ProtocolError(`${cmdName(cmd)} response must be ${want} bytes, got ${n}`);
  }
}

// ---- requests that carry only a device index: GET_ALIGNMENT, GET_MAX_SIZE, GET_DEVICE_MEMORY, GRAPH_RECOMPUTE

/** Payload of a request that holds one u32 device index. */
export function encodeDeviceReq(device: number): Uint8Array {
  const b = new Uint8Array(4);
  view(b).setUint32(0, device, true);
  return b;
}

/** Decodes a one-u32 device request of command `cmd`. */
export function decodeDeviceReq(cmd: number, payload: Uint8Array): { device: number } {
  expectRequestSize(cmd, payload);
  return { device: view(payload).getUint32(0, true) };
}

// ---- requests that carry only a remote_ptr: BUFFER_GET_BASE, FREE_BUFFER

/** Payload of a request that holds one u64 remote_ptr. */
export function encodeBufferReq(remotePtr: bigint): Uint8Array {
  const b = new Uint8Array(8);
  view(b).setBigUint64(0, remotePtr, true);
  return b;
}

/** Decodes a one-u64 remote_ptr request of command `cmd`. */
export function decodeBufferReq(cmd: number, payload: Uint8Array): { remotePtr: bigint } {
  expectRequestSize(cmd, payload);
  return { remotePtr: view(payload).getBigUint64(0, true) };
}

// ---- ALLOC_BUFFER

/** ALLOC_BUFFER request: u32 device, u64 size. */
export interface AllocBufferReq {
  device: number;
  size: bigint;
}

/** Encodes an ALLOC_BUFFER request. */
export function encodeAllocBufferReq(r: AllocBufferReq): Uint8Array {
  const b = new Uint8Array(12);
  const v = view(b);
  v.setUint32(0, r.device, true);
  v.setBigUint64(4, r.size, true);
  return b;
}

/** Decodes an ALLOC_BUFFER request. */
export function decodeAllocBufferReq(p: Uint8Array): AllocBufferReq {
  expectRequestSize(Cmd.ALLOC_BUFFER, p);
  const v = view(p);
  return { device: v.getUint32(0, true), size: v.getBigUint64(4, true) };
}

/** ALLOC_BUFFER response: remote_ptr 0 means the allocation failed. */
export interface AllocBufferRsp {
  remotePtr: bigint;
  remoteSize: bigint;
}

/** Encodes an ALLOC_BUFFER response. */
export function encodeAllocBufferRsp(r: AllocBufferRsp): Uint8Array {
  const b = new Uint8Array(16);
  const v = view(b);
  v.setBigUint64(0, r.remotePtr, true);
  v.setBigUint64(8, r.remoteSize, true);
  return b;
}

/** Decodes an ALLOC_BUFFER response. */
export function decodeAllocBufferRsp(p: Uint8Array): AllocBufferRsp {
  expectResponseSize(Cmd.ALLOC_BUFFER, p);
  const v = view(p);
  return { remotePtr: v.getBigUint64(0, true), remoteSize: v.getBigUint64(8, true) };
}

// ---- one-u64 responses: GET_ALIGNMENT, GET_MAX_SIZE, BUFFER_GET_BASE, GET_ALLOC_SIZE

/** Encodes a response that is one u64. */
export function encodeU64Rsp(value: bigint): Uint8Array {
  const b = new Uint8Array(8);
  view(b).setBigUint64(0, value, true);
  return b;
}

/** Decodes a one-u64 response of command `cmd`. */
export function decodeU64Rsp(cmd: number, p: Uint8Array): bigint {
  expectResponseSize(cmd, p);
  return view(p).getBigUint64(0, true);
}

// ---- one-u8 responses: SET_TENSOR_HASH, COPY_TENSOR

/** Encodes a response that is one u8 result. */
export function encodeResultRsp(result: number): Uint8Array {
  return Uint8Array.of(result & 0xff);
}

/** Decodes a one-u8 response of command `cmd`. */
export function decodeResultRsp(cmd: number, p: Uint8Array): number {
  expectResponseSize(cmd, p);
  return p[0];
}

// ---- BUFFER_CLEAR

/** BUFFER_CLEAR request: u64 remote_ptr, u8 value. */
export interface BufferClearReq {
  remotePtr: bigint;
  value: number;
}

/** Encodes a BUFFER_CLEAR request. */
export function encodeBufferClearReq(r: BufferClearReq): Uint8Array {
  const b = new Uint8Array(9);
  view(b).setBigUint64(0, r.remotePtr, true);
  b[8] = r.value;
  return b;
}

/** Decodes a BUFFER_CLEAR request. */
export function decodeBufferClearReq(p: Uint8Array): BufferClearReq {
  expectRequestSize(Cmd.BUFFER_CLEAR, p);
  return { remotePtr: view(p).getBigUint64(0, true), value: p[8] };
}

// ---- SET_TENSOR (variable): rpc_tensor | u64 offset | data

/** Size of SET_TENSOR's fixed head: rpc_tensor and u64 offset. */
export const SET_TENSOR_HEAD = RPC_TENSOR_SIZE + 8;

/** SET_TENSOR request; `data` is a view into the payload, not a copy. */
export interface SetTensorReq {
  tensor: RpcTensor;
  offset: bigint;
  data: Uint8Array;
}

/** Writes SET_TENSOR's head (tensor and offset: SET_TENSOR_HEAD bytes) into `out`. */
export function writeSetTensorHead(r: SetTensorReq, out: Uint8Array): void {
  encodeRpcTensor(r.tensor, out, 0);
  view(out).setBigUint64(RPC_TENSOR_SIZE, r.offset, true);
}

/** Writes SET_TENSOR's payload into `out` (which must be SET_TENSOR_HEAD + data.length long). */
export function writeSetTensorReq(r: SetTensorReq, out: Uint8Array): void {
  writeSetTensorHead(r, out);
  out.set(r.data, SET_TENSOR_HEAD);
}

/** Encodes a SET_TENSOR request payload. */
export function encodeSetTensorReq(r: SetTensorReq): Uint8Array {
  const b = new Uint8Array(SET_TENSOR_HEAD + r.data.length);
  writeSetTensorReq(r, b);
  return b;
}

/** Decodes a SET_TENSOR request; the data stays a view into `p`. */
export function decodeSetTensorReq(p: Uint8Array): SetTensorReq {
  if (p.length < SET_TENSOR_HEAD) {
    throw new ProtocolError(`SET_TENSOR request must be at least ${SET_TENSOR_HEAD} bytes, got ${p.length}`);
  }
  return {
    tensor: decodeRpcTensor(p, 0),
    offset: view(p).getBigUint64(RPC_TENSOR_SIZE, true),
    data: p.subarray(SET_TENSOR_HEAD),
  };
}

// ---- SET_TENSOR_HASH: rpc_tensor | u64 offset | u64 hash

/** SET_TENSOR_HASH request. */
export interface SetTensorHashReq {
  tensor: RpcTensor;
  offset: bigint;
  hash: bigint;
}

/** Encodes a SET_TENSOR_HASH request. */
export function encodeSetTensorHashReq(r: SetTensorHashReq): Uint8Array {
  const b = new Uint8Array(RPC_TENSOR_SIZE + 16);
  encodeRpcTensor(r.tensor, b, 0);
  view(b).setBigUint64(RPC_TENSOR_SIZE, r.offset, true);
  view(b).setBigUint64(RPC_TENSOR_SIZE + 8, r.hash, true);
  return b;
}

/** Decodes a SET_TENSOR_HASH request. */
export function decodeSetTensorHashReq(p: Uint8Array): SetTensorHashReq {
  expectRequestSize(Cmd.SET_TENSOR_HASH, p);
  const v = view(p);
  return {
    tensor: decodeRpcTensor(p, 0),
    offset: v.getBigUint64(RPC_TENSOR_SIZE, true),
    hash: v.getBigUint64(RPC_TENSOR_SIZE + 8, true),
  };
}

// ---- GET_TENSOR: rpc_tensor | u64 offset | u64 size

/** GET_TENSOR request. */
export interface GetTensorReq {
  tensor: RpcTensor;
  offset: bigint;
  size: bigint;
}

/** Encodes a GET_TENSOR request. */
export function encodeGetTensorReq(r: GetTensorReq): Uint8Array {
  const b = new Uint8Array(RPC_TENSOR_SIZE + 16);
  encodeRpcTensor(r.tensor, b, 0);
  view(b).setBigUint64(RPC_TENSOR_SIZE, r.offset, true);
  view(b).setBigUint64(RPC_TENSOR_SIZE + 8, r.size, true);
  return b;
}

/** Decodes a GET_TENSOR request. */
export function decodeGetTensorReq(p: Uint8Array): GetTensorReq {
  expectRequestSize(Cmd.GET_TENSOR, p);
  const v = view(p);
  return {
    tensor: decodeRpcTensor(p, 0),
    offset: v.getBigUint64(RPC_TENSOR_SIZE, true),
    size: v.getBigUint64(RPC_TENSOR_SIZE + 8, true),
  };
}

// ---- COPY_TENSOR: rpc_tensor src | rpc_tensor dst

/** COPY_TENSOR request. */
export interface CopyTensorReq {
  src: RpcTensor;
  dst: RpcTensor;
}

/** Encodes a COPY_TENSOR request. */
export function encodeCopyTensorReq(r: CopyTensorReq): Uint8Array {
  const b = new Uint8Array(2 * RPC_TENSOR_SIZE);
  encodeRpcTensor(r.src, b, 0);
  encodeRpcTensor(r.dst, b, RPC_TENSOR_SIZE);
  return b;
}

/** Decodes a COPY_TENSOR request. */
export function decodeCopyTensorReq(p: Uint8Array): CopyTensorReq {
  expectRequestSize(Cmd.COPY_TENSOR, p);
  return { src: decodeRpcTensor(p, 0), dst: decodeRpcTensor(p, RPC_TENSOR_SIZE) };
}

// ---- GET_DEVICE_MEMORY response: u64 free | u64 total

/** GET_DEVICE_MEMORY response. */
export interface DeviceMemoryRsp {
  free: bigint;
  total: bigint;
}

/** Encodes a GET_DEVICE_MEMORY response. */
export function encodeDeviceMemoryRsp(r: DeviceMemoryRsp): Uint8Array {
  const b = new Uint8Array(16);
  view(b).setBigUint64(0, r.free, true);
  view(b).setBigUint64(8, r.total, true);
  return b;
}

/** Decodes a GET_DEVICE_MEMORY response. */
export function decodeDeviceMemoryRsp(p: Uint8Array): DeviceMemoryRsp {
  expectResponseSize(Cmd.GET_DEVICE_MEMORY, p);
  const v = view(p);
  return { free: v.getBigUint64(0, true), total: v.getBigUint64(8, true) };
}

// ---- INIT_TENSOR: rpc_tensor

/** Encodes an INIT_TENSOR request. */
export function encodeInitTensorReq(tensor: RpcTensor): Uint8Array {
  const b = new Uint8Array(RPC_TENSOR_SIZE);
  encodeRpcTensor(tensor, b, 0);
  return b;
}

/** Decodes an INIT_TENSOR request. */
export function decodeInitTensorReq(p: Uint8Array): { tensor: RpcTensor } {
  expectRequestSize(Cmd.INIT_TENSOR, p);
  return { tensor: decodeRpcTensor(p, 0) };
}

// ---- GET_ALLOC_SIZE: u32 device | rpc_tensor tensor | rpc_tensor srcs[10]

/** GET_ALLOC_SIZE request; a source with id 0 is absent. */
export interface GetAllocSizeReq {
  device: number;
  tensor: RpcTensor;
  srcs: RpcTensor[];
}

/** Encodes a GET_ALLOC_SIZE request; missing sources are sent zeroed. */
export function encodeGetAllocSizeReq(r: GetAllocSizeReq): Uint8Array {
  const b = new Uint8Array(REQUEST_SIZE[Cmd.GET_ALLOC_SIZE]);
  view(b).setUint32(0, r.device, true);
  encodeRpcTensor(r.tensor, b, 4);
  for (let i = 0; i < MAX_SRC; i++) {
    encodeRpcTensor(r.srcs[i] ?? emptyRpcTensor(), b, 4 + RPC_TENSOR_SIZE * (1 + i));
  }
  return b;
}

/** Decodes a GET_ALLOC_SIZE request. */
export function decodeGetAllocSizeReq(p: Uint8Array): GetAllocSizeReq {
  expectRequestSize(Cmd.GET_ALLOC_SIZE, p);
  const srcs: RpcTensor[] = [];
  for (let i = 0; i < MAX_SRC; i++) srcs.push(decodeRpcTensor(p, 4 + RPC_TENSOR_SIZE * (1 + i)));
  return { device: view(p).getUint32(0, true), tensor: decodeRpcTensor(p, 4), srcs };
}

// ---- HELLO

/** HELLO request: the client's 24 capability bytes. */
export function encodeHelloReq(caps: Uint8Array = new Uint8Array(CONN_CAPS_SIZE)): Uint8Array {
  const b = new Uint8Array(CONN_CAPS_SIZE);
  b.set(caps.subarray(0, CONN_CAPS_SIZE));
  return b;
}

/** Decodes a HELLO request. */
export function decodeHelloReq(p: Uint8Array): { caps: Uint8Array } {
  expectRequestSize(Cmd.HELLO, p);
  return { caps: p.slice() };
}

/** HELLO response: version and the server's capability bytes. */
export interface HelloRsp {
  major: number;
  minor: number;
  patch: number;
  caps: Uint8Array;
}

/** Encodes a HELLO response (u8 major, minor, patch, pad, caps[24]). */
export function encodeHelloRsp(r: HelloRsp): Uint8Array {
  const b = new Uint8Array(4 + CONN_CAPS_SIZE);
  b[0] = r.major;
  b[1] = r.minor;
  b[2] = r.patch;
  b.set(r.caps.subarray(0, CONN_CAPS_SIZE), 4);
  return b;
}

/** Decodes a HELLO response. */
export function decodeHelloRsp(p: Uint8Array): HelloRsp {
  expectResponseSize(Cmd.HELLO, p);
  return { major: p[0], minor: p[1], patch: p[2], caps: p.slice(4) };
}

// ---- DEVICE_COUNT response

/** Encodes a DEVICE_COUNT response. */
export function encodeDeviceCountRsp(count: number): Uint8Array {
  const b = new Uint8Array(4);
  view(b).setUint32(0, count, true);
  return b;
}

/** Decodes a DEVICE_COUNT response. */
export function decodeDeviceCountRsp(p: Uint8Array): number {
  expectResponseSize(Cmd.DEVICE_COUNT, p);
  return view(p).getUint32(0, true);
}

// ---- MEMSET_TENSOR: rpc_tensor | u64 offset | u64 size | u8 value

/** MEMSET_TENSOR request. */
export interface MemsetTensorReq {
  tensor: RpcTensor;
  offset: bigint;
  size: bigint;
  value: number;
}

/** Encodes a MEMSET_TENSOR request. */
export function encodeMemsetTensorReq(r: MemsetTensorReq): Uint8Array {
  const b = new Uint8Array(RPC_TENSOR_SIZE + 17);
  encodeRpcTensor(r.tensor, b, 0);
  view(b).setBigUint64(RPC_TENSOR_SIZE, r.offset, true);
  view(b).setBigUint64(RPC_TENSOR_SIZE + 8, r.size, true);
  b[RPC_TENSOR_SIZE + 16] = r.value;
  return b;
}

/** Decodes a MEMSET_TENSOR request. */
export function decodeMemsetTensorReq(p: Uint8Array): MemsetTensorReq {
  expectRequestSize(Cmd.MEMSET_TENSOR, p);
  const v = view(p);
  return {
    tensor: decodeRpcTensor(p, 0),
    offset: v.getBigUint64(RPC_TENSOR_SIZE, true),
    size: v.getBigUint64(RPC_TENSOR_SIZE + 8, true),
    value: p[RPC_TENSOR_SIZE + 16],
  };
}
