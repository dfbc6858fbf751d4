/**
 * The rpc backend: devices of remote ggml RPC servers, named "rpc:HOST:PORT/N". They are never
 * discovered on their own — a remote server is only used when
 * named — so the best local device stays the default.
 *
 * One connection per endpoint is shared by every device of that server (server-side state such as
 * stored graphs and COPY_TENSOR between its devices is per connection); it closes when the last
 * of its devices does.
 * @module
 */

import { RpcConnection } from "../../protocol/client.ts";
import { registerProvider } from "../registry.ts";
import { RpcDevice } from "./device.ts";

export { RpcBuffer, RpcDevice } from "./device.ts";
export { encodeGraph, tensorToWire } from "./serialize.ts";

/** A parsed "rpc:HOST:PORT[/N]" spec. */
export interface RpcSpec {
  endpoint: string;
  index: number;
}

/** Parses "rpc:HOST:PORT/N"; null when `spec` is not one. */
export function parseRpcSpec(spec: string): RpcSpec | null {
  const m = /^rpc:(.+:\d+)\/(\d+)$/.exec(spec);
  if (!m) return null;
  return { endpoint: m[1], index: Number(m[2]) };
}

interface PoolEntry {
  conn: Promise<RpcConnection>;
  devices: Map<number, Promise<RpcDevice>>;
}

const pool = new Map<string, PoolEntry>();

function entry(endpoint: string): PoolEntry {
  let e = pool.get(endpoint);
  if (!e) {
    e = { conn: RpcConnection.connect(endpoint), devices: new Map() };
    pool.set(endpoint, e);
    e.conn.catch(() => pool.delete(endpoint));
  }
  return e;
}

/** The pooled connection to `endpoint` (connecting on first use). */
export function connectionTo(endpoint: string): Promise<RpcConnection> {
  return entry(endpoint).conn;
}

/**
 * Device `index` of the server at `endpoint`, opened once and shared while open. Closing the last
 * device of a server closes its connection.
 */
export function openRpcDevice(endpoint: string, index: number): Promise<RpcDevice> {
  const e = entry(endpoint);
  let d = e.devices.get(index);
  if (!d) {
    d = (async () => {
      const conn = await e.conn;
      const count = await conn.deviceCount();
      if (index >= count) {
        throw new Error(
          `${endpoint} serves ${count} device${count === 1 ? "" : "s"}; there is no device ${index}`,
        );
      }
      return await RpcDevice.open(conn, index, `rpc:${endpoint}/${index}`, () => {
        e.devices.delete(index);
        if (e.devices.size === 0) {
          pool.delete(endpoint);
          conn.close();
        }
      });
    })();
    e.devices.set(index, d);
    d.catch(() => e.devices.delete(index));
  }
  return d;
}

/** Every device of the server at `endpoint` (what `--rpc HOST:PORT` means). */
export async function openRpcServer(endpoint: string): Promise<RpcDevice[]> {
  const conn = await connectionTo(endpoint);
  const n = await conn.deviceCount();
  const out: RpcDevice[] = [];
  for (let i = 0; i < n; i++) out.push(await openRpcDevice(endpoint, i));
  return out;
}

registerProvider({
  kind: "rpc",
  // Below every local kind: a remote device is never "the best device found".
  priority: -100,
  async discover(opts) {
    const specs = (opts.specs ?? []).map((s) => [s, parseRpcSpec(s)] as const).filter(([, p]) => p);
    if (specs.length === 0) {
      return { devices: [], absent: "remote devices are used only when named: rpc:HOST:PORT/N" };
    }
    const devices = [];
    for (const [, p] of specs) devices.push(await openRpcDevice(p!.endpoint, p!.index));
    return { devices };
  },
});
