/**
 * `graphwire bench mul-mat`: times one MUL_MAT (weights m×k of f32 or f16, activations k×n f32) on
 * device 0 of one or more ggml RPC servers, graphwire's or ggml's own, through graphwire's client —
 * the same client and wire for every server, so the figures compare the servers' devices. Each
 * timing is GRAPH_COMPUTE plus a 4-byte GET_TENSOR of the result (which waits for the compute).
 * The servers' repetitions are interleaved, so load from elsewhere on the host falls on all of them
 * alike; the table gives best and median per server and each server's best relative to the first's.
 *
 *     deno task bench mul-mat 127.0.0.1:50052,127.0.0.1:50053 [-m 4096] [-k 14336] [-n 1,64]
 *         [--type f32,f16] [-r 5] [--json]
 * @module
 */

import { RpcConnection } from "../protocol/client.ts";
import { GraphBuilder } from "../protocol/graph/builder.ts";
import type { Graph } from "../protocol/graph/graph.ts";
import { nbytes, type Tensor } from "../protocol/graph/tensor.ts";
import { GgmlType } from "../protocol/graph/types.ts";
import { RpcDevice } from "../backends/rpc/device.ts";
import type { DeviceBuffer } from "../backends/device.ts";
import { intOption, listOption, parseArgs, UsageError } from "../cli/args.ts";
import { markdownTable } from "../cli/format.ts";

/** Help text of `bench mul-mat`. */
export const MUL_MAT_HELP = `Usage: graphwire bench mul-mat HOST:PORT[,HOST:PORT...] [options]

Times MUL_MAT on device 0 of each server (graphwire's or ggml's), interleaving their repetitions.

Options:
  -m M            weight rows (default 4096)
  -k K            shared dimension (default 14336)
  -n LIST         activation columns (default 1,64)
      --type LIST weight types: f32, f16 (default f32,f16)
  -r N            timed repetitions per server (default 5; one untimed warm-up first)
      --json      one JSON object per configuration and server
  -h, --help      this text`;

/** One measured configuration on one server. */
export interface MulMatTiming {
  server: string;
  type: string;
  m: number;
  n: number;
  k: number;
  /** Milliseconds per MUL_MAT: best and median of the repetitions. */
  bestMs: number;
  medianMs: number;
  /** 2·m·n·k / best time, in GFLOP/s. */
  gflops: number;
  /** The first server's best time over this one's (above 1: this one is faster). */
  speedupVsFirst: number;
}

/** One server with the MUL_MAT graph placed on it. */
interface Placed {
  server: string;
  conn: RpcConnection;
  dev: RpcDevice;
  graph: Graph;
  out: DeviceBuffer;
  bufs: DeviceBuffer[];
  times: number[];
}

async function place(dev: RpcDevice, t: Tensor, fill: boolean, label: string): Promise<DeviceBuffer> {
  const size = nbytes(t);
  const buf = await dev.allocBuffer(size);
  if (!buf) throw new Error(`${label}: the server cannot allocate ${size} bytes`);
  t.buffer = buf;
  t.offset = 0;
  if (!fill) return buf;
  const chunk = 1 << 23;
  const bytes = new Uint8Array(Math.min(size, chunk));
  const f = new Float32Array(bytes.buffer, 0, bytes.length >>> 2);
  const h = new Float16Array(bytes.buffer, 0, bytes.length >>> 1);
  for (let off = 0; off < size; off += chunk) {
    const n = Math.min(chunk, size - off);
    if (t.type === GgmlType.F16) { for (let i = 0; i < n >>> 1; i++) h[i] = Math.random() - 0.5; }
    else for (let i = 0; i < n >>> 2; i++) f[i] = Math.random() - 0.5;
    await buf.set(off, bytes.subarray(0, n));
    if (size > chunk) {
      const pct = Math.round(100 * (off + n) / size);
      await Deno.stderr.write(new TextEncoder().encode(`\r  uploading ${label}: ${pct}%`));
    }
  }
  if (size > chunk) await Deno.stderr.write(new TextEncoder().encode("\n"));
  return buf;
}

async function open(server: string, type: number, m: number, n: number, k: number): Promise<Placed> {
  const conn = await RpcConnection.connect(server);
  const dev = await RpcDevice.open(conn, 0);
  const b = new GraphBuilder();
  const w = b.newTensor(type, [k, m], "w");
  const x = b.newTensor(GgmlType.F32, [k, n], "x");
  const y = b.mulMat(w, x);
  const bufs = [
    await place(dev, w, true, `${server} weights`),
    await place(dev, x, true, `${server} activations`),
    await place(dev, y, false, `${server} result`),
  ];
  return { server, conn, dev, graph: b.build(y), out: bufs[2], bufs, times: [] };
}

async function runOnce(p: Placed): Promise<number> {
  const t0 = performance.now();
  await p.dev.compute(p.graph);
  await p.out.get(0, 4);
  return performance.now() - t0;
}

/** Times MUL_MAT on device 0 of every server in `servers`, repetitions interleaved. */
export async function benchMulMat(
  servers: string[],
  type: number,
  m: number,
  n: number,
  k: number,
  reps: number,
): Promise<MulMatTiming[]> {
  const placed: Placed[] = [];
  try {
    for (const s of servers) placed.push(await open(s, type, m, n, k));
    for (const p of placed) await runOnce(p); // warm-up
    for (let r = 0; r < reps; r++) for (const p of placed) p.times.push(await runOnce(p));
  } finally {
    for (const p of placed) {
      for (const buf of p.bufs) await Promise.resolve(buf.free()).catch(() => {});
      await Promise.resolve(p.dev.close()).catch(() => {});
      p.conn.close();
    }
  }
  const stats = placed.map((p) => {
    const t = [...p.times].sort((a, b) => a - b);
    return { server: p.server, best: t[0], median: t[Math.floor(t.length / 2)] };
  });
  return stats.map((s) => ({
    server: s.server,
    type: type === GgmlType.F16 ? "f16" : "f32",
    m,
    n,
    k,
    bestMs: s.best,
    medianMs: s.median,
    gflops: 2 * m * n * k / s.best / 1e6,
    speedupVsFirst: stats[0].best / s.best,
  }));
}

/** Runs `bench mul-mat` with `argv`; returns the exit code. */
export async function benchMulMatMain(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs(argv, {
    m: { type: "string", short: "m" },
    k: { type: "string", short: "k" },
    n: { type: "string", short: "n" },
    type: { type: "string" },
    r: { type: "string", short: "r" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(MUL_MAT_HELP);
    return 0;
  }
  const servers = positionals.flatMap((p) => p.split(",")).filter((s) => s !== "");
  if (servers.length === 0) throw new UsageError("bench mul-mat: give at least one server HOST:PORT");
  const m = intOption(values.m, "m", 4096, 1, 1 << 20);
  const k = intOption(values.k, "k", 14336, 1, 1 << 20);
  const ns = listOption(values.n ?? "1,64").map((s) => intOption(s, "n", 1, 1, 1 << 16));
  const reps = intOption(values.r, "r", 5, 1, 1000);
  const types = listOption(values.type ?? "f32,f16").map((t) => {
    if (t !== "f32" && t !== "f16") throw new UsageError(`bench mul-mat: --type ${t}: f32 or f16`);
    return t;
  });
  const all: MulMatTiming[] = [];
  for (const t of types) {
    for (const n of ns) {
      console.error(`MUL_MAT ${t} m=${m} n=${n} k=${k} on ${servers.join(", ")} ...`);
      all.push(...await benchMulMat(servers, t === "f16" ? GgmlType.F16 : GgmlType.F32, m, n, k, reps));
    }
  }
  if (values.json) {
    console.log(JSON.stringify(all, null, 2));
    return 0;
  }
  console.log(markdownTable(
    ["server", "type", "m", "n", "k", "best ms", "median ms", "GFLOP/s", "vs first"],
    all.map((r) => [
      r.server,
      r.type,
      r.m,
      r.n,
      r.k,
      r.bestMs.toFixed(1),
      r.medianMs.toFixed(1),
      r.gflops.toFixed(2),
      `${r.speedupVsFirst.toFixed(2)}×`,
    ]),
    ["left", "left", "right", "right", "right", "right", "right", "right", "right"],
  ));
  return 0;
}
