/**
 * `graphwire rpc-client`: talk to any ggml RPC server.
 *   info HOST:PORT [--json]     version, capabilities and every device
 *   ping HOST:PORT [-n N] [--json]  latency percentiles of a DEVICE_COUNT round trip
 * @module
 */

import { RpcConnection } from "../protocol/client.ts";
import { intOption, parseArgs, UsageError } from "./args.ts";
import { formatBytes, table } from "./format.ts";

/** Help text of rpc-client. */
export const RPC_CLIENT_HELP = `Usage: graphwire rpc-client <info|ping> HOST:PORT [options]

  info HOST:PORT         protocol version, capabilities and every device (memory, alignment, max buffer)
  ping HOST:PORT         latency of DEVICE_COUNT round trips

Options:
  -n, --count N          round trips for ping (default 100)
      --json             machine-readable output
  -h, --help             show this help
`;

/** Device facts as info reports them. */
export interface DeviceInfo {
  index: number;
  free: number;
  total: number;
  alignment: number;
  maxSize: number;
}

/** Everything `info` learns about a server. */
export interface ServerInfo {
  endpoint: string;
  version: string;
  caps: string;
  devices: DeviceInfo[];
}

/** Queries a server's version and devices. */
export async function serverInfo(endpoint: string): Promise<ServerInfo> {
  const c = await RpcConnection.connect(endpoint);
  try {
    const n = await c.deviceCount();
    const devices: DeviceInfo[] = [];
    for (let i = 0; i < n; i++) {
      const mem = await c.getDeviceMemory(i);
      devices.push({
        index: i,
        free: Number(mem.free),
        total: Number(mem.total),
        alignment: Number(await c.getAlignment(i)),
        maxSize: Number(await c.getMaxSize(i)),
      });
    }
    const v = c.version;
    return {
      endpoint,
      version: `${v.major}.${v.minor}.${v.patch}`,
      caps: [...v.caps].map((b) => b.toString(16).padStart(2, "0")).join(""),
      devices,
    };
  } finally {
    c.close();
  }
}

/** Latency statistics in milliseconds. */
export interface PingStats {
  endpoint: string;
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Percentile `q` (0..1) of sorted values, nearest rank. */
export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** Times `n` DEVICE_COUNT round trips. */
export async function ping(endpoint: string, n: number): Promise<PingStats> {
  const c = await RpcConnection.connect(endpoint);
  try {
    await c.deviceCount(); // warm-up
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await c.deviceCount();
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return {
      endpoint,
      count: n,
      min: times[0],
      mean: times.reduce((a, b) => a + b, 0) / n,
      p50: percentile(times, 0.5),
      p90: percentile(times, 0.9),
      p99: percentile(times, 0.99),
      max: times[n - 1],
    };
  } finally {
    c.close();
  }
}

/** Runs rpc-client with `argv`. */
export async function rpcClientMain(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs(argv, {
    count: { type: "string", short: "n" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(RPC_CLIENT_HELP);
    return 0;
  }
  const [sub, endpoint] = positionals;
  if (!sub || !endpoint || positionals.length > 2) throw new UsageError("expected <info|ping> HOST:PORT");
  if (sub === "info") {
    const info = await serverInfo(endpoint);
    if (values.json) {
      console.log(JSON.stringify(info, null, 2));
      return 0;
    }
    console.log(`server  : ${info.endpoint}`);
    console.log(`version : ${info.version}`);
    console.log(`caps    : ${info.caps}`);
    console.log(`devices : ${info.devices.length}\n`);
    console.log(table(
      ["device", "total", "free", "alignment", "max buffer"],
      info.devices.map((d) => [
        String(d.index),
        formatBytes(d.total),
        formatBytes(d.free),
        String(d.alignment),
        formatBytes(d.maxSize),
      ]),
      ["right", "right", "right", "right", "right"],
    ));
    return 0;
  }
  if (sub === "ping") {
    const n = intOption(values.count, "count", 100, 1, 10_000_000);
    const s = await ping(endpoint, n);
    if (values.json) {
      console.log(JSON.stringify(s, null, 2));
      return 0;
    }
    const f = (x: number) => `${(x * 1000).toFixed(1)} µs`;
    console.log(`${n} DEVICE_COUNT round trips to ${endpoint}`);
    console.log(table(
      ["min", "mean", "p50", "p90", "p99", "max"],
      [[f(s.min), f(s.mean), f(s.p50), f(s.p90), f(s.p99), f(s.max)]],
      ["right", "right", "right", "right", "right", "right"],
    ));
    return 0;
  }
  throw new UsageError(`unknown rpc-client command "${sub}"`);
}
