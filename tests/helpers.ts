/**
 * Helpers for end-to-end tests: a server on a loopback ephemeral port, and rpc_tensors that point
 * into remote buffers.
 * @module
 */

import { CpuDevice } from "../backends/cpu/mod.ts";
import type { Device } from "../backends/device.ts";
import { RpcConnection } from "../protocol/client.ts";
import { contiguousStrides } from "../protocol/graph/tensor.ts";
import { RpcServer, type ServerOptions } from "../protocol/server.ts";
import { emptyRpcTensor, type RpcTensor } from "../protocol/wire/tensor.ts";
import { listenTcp } from "../protocol/wire/transport.ts";

/** A running server and what a test needs to talk to it and stop it. */
export interface TestServer {
  server: RpcServer;
  endpoint: string;
  logs: string[];
  connect(): Promise<RpcConnection>;
  stop(): Promise<void>;
}

/** Starts a server on 127.0.0.1:0 (CPU device unless given) and collects its log lines. */
export function startServer(opts: Partial<ServerOptions> = {}, devices?: Device[]): TestServer {
  const logs: string[] = [];
  const server = new RpcServer({
    devices: devices ?? [new CpuDevice({ threads: 1 })],
    log: (l) => logs.push(l),
    ...opts,
  });
  const listener = listenTcp("127.0.0.1", 0);
  const serving = server.serve(listener);
  return {
    server,
    endpoint: listener.addr,
    logs,
    connect: () => RpcConnection.connect(listener.addr),
    stop: async () => {
      server.close();
      await serving;
    },
  };
}

/** A remote buffer as a test holds it. */
export interface RemoteBuffer {
  handle: bigint;
  base: bigint;
  size: number;
}

/** Allocates a buffer and asks its base. */
export async function remoteBuffer(c: RpcConnection, size: number, device = 0): Promise<RemoteBuffer> {
  const r = await c.allocBuffer(device, size);
  if (r.remotePtr === 0n) throw new Error("allocation failed");
  return { handle: r.remotePtr, base: await c.bufferGetBase(r.remotePtr), size: Number(r.remoteSize) };
}

let nextId = 1n;

/** An rpc_tensor of `type` and shape `ne` (contiguous) at byte `offset` of `buf`. */
export function wireTensor(
  buf: RemoteBuffer | null,
  offset: number,
  type: number,
  ne: number[],
  init: Partial<RpcTensor> = {},
): RpcTensor {
  const t = emptyRpcTensor();
  t.id = nextId++;
  t.type = type;
  t.ne = [ne[0] ?? 1, ne[1] ?? 1, ne[2] ?? 1, ne[3] ?? 1];
  t.nb = contiguousStrides(type, t.ne);
  if (buf) {
    t.buffer = buf.handle;
    t.data = buf.base + BigInt(offset);
  }
  return Object.assign(t, init);
}

/** f32 values as bytes. */
export function f32Bytes(values: number[] | Float32Array): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

/** Bytes as f32 values. */
export function bytesF32(b: Uint8Array): number[] {
  return [...new Float32Array(b.slice().buffer)];
}

/** Waits until `cond()` holds or `ms` pass. */
export async function until(cond: () => boolean, ms = 2000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  return cond();
}

/** What a starting rpc-server's banner ends with: its device lines (the endpoint comes before them). */
export const BANNER_DONE = /Devices:[\s\S]*\n\s+\S+:.*free\)/;

/**
 * Reads a spawned server's stdout until `done` matches what it printed, the stream ends or
 * `timeoutMs` pass; returns the text. The reader is released, so the caller can cancel the stream.
 */
export async function readBanner(
  stdout: ReadableStream<Uint8Array>,
  done: RegExp = BANNER_DONE,
  timeoutMs = 60_000,
): Promise<string> {
  const reader = stdout.getReader();
  const dec = new TextDecoder();
  let banner = "";
  const deadline = Date.now() + timeoutMs;
  try {
    while (!done.test(banner) && Date.now() < deadline) {
      const { value, done: end } = await reader.read();
      if (end) break;
      banner += dec.decode(value);
    }
  } finally {
    reader.releaseLock();
  }
  return banner;
}
