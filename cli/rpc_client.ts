/**
 * `graphwire rpc-client`: talk to any ggml RPC server.
 *   info HOST:PORT [--json]     version, capabilities and every device
 *   ping HOST:PORT [-n N] [--token BYTES [--inputs BYTES]] [--json]  latency percentiles of a
 *     DEVICE_COUNT round trip, or of a token's round trip (SET_TENSOR of its inputs, GRAPH_RECOMPUTE of
 *     a one-node graph, GET_TENSOR of BYTES)
 * @module
 */

import { bindMemory, planMemory } from "../backends/alloc.ts";
import { openRpcServer } from "../backends/rpc/mod.ts";
import { RpcConnection } from "../protocol/client.ts";
import { GraphBuilder } from "../protocol/graph/builder.ts";
import { GgmlType } from "../protocol/graph/types.ts";
import { intOption, parseArgs, UsageError } from "./args.ts";
import { formatBytes, table } from "./format.ts";

/** Help text of rpc-client. */
export const RPC_CLIENT_HELP = `Usage: graphwire rpc-client <info|ping> HOST:PORT [options]

  info HOST:PORT         protocol version, capabilities and every device (memory, alignment, max buffer)
  ping HOST:PORT         latency of DEVICE_COUNT round trips

Options:
  -n, --count N          round trips for ping (default 100)
      --token BYTES      ping the way a generated token goes: GRAPH_RECOMPUTE of a one-node graph, then
                         GET_TENSOR of BYTES (llama-1b's f32 logits: 513024), on device 0
      --inputs BYTES     with --token, first a SET_TENSOR of BYTES, as a step's inputs are sent (a token
                         at 4096 context: ~8 KiB of ids, positions and f16 mask; a 512-token prompt's
                         mask at 4096: 4194304)
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

/** Statistics of round-trip times in milliseconds. */
function pingStats(endpoint: string, times: number[]): PingStats {
  const n = times.length;
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
    return pingStats(endpoint, times);
  } finally {
    c.close();
  }
}

/**
 * Times `n` token-shaped round trips on device 0: SET_TENSOR of `inputs` bytes (when not 0),
 * GRAPH_RECOMPUTE of a one-node graph (SCALE of 16 floats), then GET_TENSOR of `bytes` — what a
 * generated token costs a server beyond its compute.
 */
export async function tokenPing(endpoint: string, n: number, bytes: number, inputs = 0): Promise<PingStats> {
  const [dev] = await openRpcServer(endpoint);
  if (!dev) throw new Error(`${endpoint} has no devices`);
  try {
    const b = new GraphBuilder();
    const out = b.scale(b.newTensor(GgmlType.F32, [16]), 2);
    const g = b.build(out);
    const plan = await planMemory(g, dev);
    const logitsAt = Math.ceil(plan.size / 64) * 64;
    const inputsAt = logitsAt + Math.ceil(bytes / 64) * 64;
    const size = inputsAt + Math.max(inputs, 1);
    const buf = await dev.allocBuffer(size);
    if (!buf) throw new Error(`${endpoint} could not allocate ${size} bytes`);
    bindMemory(g, buf, plan);
    await buf.set(0, new Uint8Array(plan.size).fill(1));
    // what is read back (the logits) and sent (the inputs) is checked once, after the first compute
    const checked = async (at: number, sent: Uint8Array, what: string) => {
      const got = await buf.get(at, sent.length);
      if (got.some((x, i) => x !== sent[i])) {
        throw new Error(`${endpoint} returned other ${what} than it was sent`);
      }
    };
    const data = new Uint8Array(bytes).map((_, i) => i * 7);
    await buf.set(logitsAt, data);
    const step = new Uint8Array(inputs).map((_, i) => i * 13 + 5);
    if (inputs > 0) await buf.set(inputsAt, step);
    const p = dev.planCreate(g);
    await dev.planCompute(p); // GRAPH_COMPUTE, then GRAPH_RECOMPUTE from here on
    await checked(logitsAt, data, "bytes");
    await checked(inputsAt, step, "inputs");
    // the logits land in one array, as a client that keeps its output buffer does
    const back = new Uint8Array(bytes);
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      if (inputs > 0) await buf.set(inputsAt, step);
      await dev.planCompute(p);
      await buf.getInto!(logitsAt, back);
      times.push(performance.now() - t0);
    }
    await buf.free();
    return pingStats(endpoint, times);
  } finally {
    dev.close();
  }
}

/** Runs rpc-client with `argv`. */
export async function rpcClientMain(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs(argv, {
    count: { type: "string", short: "n" },
    token: { type: "string" },
    inputs: { type: "string" },
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
    const token = values.token === undefined ? undefined : intOption(values.token, "token", 0, 0, 1 << 30);
    const inputs = intOption(values.inputs, "inputs", 0, 0, 1 << 30);
    if (inputs > 0 && token === undefined) throw new UsageError("--inputs goes with --token");
    const s = token === undefined ? await ping(endpoint, n) : await tokenPing(endpoint, n, token, inputs);
    if (values.json) {
      console.log(JSON.stringify(s, null, 2));
      return 0;
    }
    const f = (x: number) => `${(x * 1000).toFixed(1)} µs`;
    console.log(
      token === undefined
        ? `${n} DEVICE_COUNT round trips to ${endpoint}`
        : `${n} token round trips to ${endpoint} (${
          inputs > 0 ? `SET_TENSOR of ${formatBytes(inputs)} + ` : ""
        }GRAPH_RECOMPUTE + GET_TENSOR of ${formatBytes(token)})`,
    );
    console.log(table(
      ["min", "mean", "p50", "p90", "p99", "max"],
      [[f(s.min), f(s.mean), f(s.p50), f(s.p90), f(s.p99), f(s.max)]],
      ["right", "right", "right", "right", "right", "right"],
    ));
    return 0;
  }
  throw new UsageError(`unknown rpc-client command "${sub}"`);
}
