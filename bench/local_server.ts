/**
 * A graphwire RPC server in this process, on a loopback port (0 = any free one): what `graphwire
 * bench` with no arguments benches against, and what tests use as "a remote server".
 *
 * @example
 * ```ts
 * const s = startLocalServer([new CpuDevice()]);
 * const devs = await openRpcServer(s.endpoint);
 * // ...
 * await s.close();
 * ```
 * @module
 */

import type { Device } from "../backends/device.ts";
import { RpcServer } from "../protocol/server.ts";
import { listenTcp } from "../protocol/wire/transport.ts";

/** A running in-process server. */
export interface LocalServer {
  /** "127.0.0.1:PORT". */
  readonly endpoint: string;
  readonly server: RpcServer;
  /** Stops accepting, closes every connection and waits for them to end. */
  close(): Promise<void>;
}

/** Serves `devices` on 127.0.0.1:`port`; log lines go to `log` (default: dropped). */
export function startLocalServer(
  devices: Device[],
  opts: { port?: number; log?: (line: string) => void } = {},
): LocalServer {
  const server = new RpcServer({ devices, log: opts.log ?? (() => {}) });
  const listener = listenTcp("127.0.0.1", opts.port ?? 0);
  const serving = server.serve(listener);
  return {
    endpoint: listener.addr,
    server,
    async close() {
      server.close();
      await serving;
    },
  };
}
