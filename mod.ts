/**
 * graphwire: a Deno toolkit that speaks ggml's RPC protocol — a worker (`RpcServer`) that runs the
 * compute graphs of llama.cpp and other ggml RPC clients on this host's devices, a client
 * (`RpcConnection`), and the wire codecs, graph tables and devices they are built from.
 *
 * Re-exports only.
 * @module
 */

export * from "./protocol/errors.ts";
export * from "./protocol/wire/constants.ts";
export * from "./protocol/wire/tensor.ts";
export * from "./protocol/wire/messages.ts";
export * from "./protocol/wire/graph_payload.ts";
export * from "./protocol/wire/framing.ts";
export * from "./protocol/wire/transport.ts";
export * from "./protocol/wire/fnv.ts";
export * from "./protocol/graph/types.ts";
export * from "./protocol/graph/ops.ts";
export * from "./protocol/graph/tensor.ts";
export * from "./protocol/graph/graph.ts";
export * from "./protocol/graph/from_wire.ts";
export * from "./protocol/cache/tensor_cache.ts";
export * from "./protocol/cache/graph_store.ts";
export * from "./protocol/server.ts";
export * from "./protocol/client.ts";
export type * from "./backends/device.ts";
export * from "./backends/all.ts";
export { CpuBuffer, CpuDevice } from "./backends/cpu/mod.ts";
