/**
 * `graphwire bench`: llama-bench for ggml RPC. Benches the llama-family bench model on local
 * devices (`-d`), on servers (`--rpc`, graphwire's or ggml's), or on servers it starts itself
 * (`--serve N`; with no arguments at all, one server on the best device and a small model), and
 * reports tokens per second plus what crossed the wire per token. `bench ops ...` is the op-level
 * bench (bench/ops.ts).
 * @module
 */

import { selectDevices } from "../backends/all.ts";
import type { Device } from "../backends/device.ts";
import { openRpcServer } from "../backends/rpc/mod.ts";
import { KV_PAD, ModelBench, padTo, type TestResult } from "../bench/model_bench.ts";
import { type LlamaSpec, modelBytes, modelLabel, paramCount, parseModelSpec } from "../bench/models/spec.ts";
import { type SpawnedServer, spawnServer } from "../bench/spawn_server.ts";
import { intOption, listOption, parseArgs, UsageError } from "./args.ts";
import { formatBytes, markdownTable } from "./format.ts";

/** Help text of bench. */
export const BENCH_HELP = `Usage: graphwire bench [options]
       graphwire bench ops [options]     op-level benchmarks (see "bench ops --help")
       graphwire bench mul-mat SERVERS   one MUL_MAT on ggml RPC servers side by side
       graphwire bench providers         WebGPU providers: wait latency, per-dispatch cost, stability

Benches a llama-family model (deterministic random weights) the way llama-bench does, on local
devices or ggml RPC servers, and reports what crossed the wire per token. With no options it
starts a graphwire server on this host's best device and benches a small model against it.

Options:
  -m, --model SPEC       model preset or spec, repeatable (default: tiny on a cpu, small elsewhere)
                         presets: tiny, small, llama-1b, llama-8b; overrides: llama-1b,type=f32
                         keys: n_layer n_embd n_head n_head_kv n_ff n_vocab type rope_theta eps
                         tied rope_freqs seed
  -d, --device LIST      local devices, e.g. webgpu, cuda:0, cpu (default: the best one)
      --rpc LIST         servers HOST:PORT,... — every device of each (graphwire's or ggml's)
      --serve [N]        start N graphwire servers (default 1) on the -d devices and bench them
  -p, --n-prompt LIST    prompt sizes, ppN tests (default 512)
  -n, --n-gen LIST       generated tokens, tgN tests (default 128)
      -pg P,N            a prompt of P then N generated tokens (repeatable)
  -r, --repetitions N    timed repetitions of each test (default 5)
  -ts, --tensor-split R  split ratios per device, e.g. 3,1 or 3/1 (default: equal)
  -fa, --flash-attn 0|1  FLASH_ATTN_EXT (1) or MUL_MAT + SOFT_MAX (0); default: 1 where every
                         device runs it (servers cannot be asked and count as able)
  -ub, --ubatch-size N   tokens per ubatch (default 512)
      --no-reuse         send every graph in full (no GRAPH_RECOMPUTE), for comparison
      --upload-chunk MB  MiB per weight SET_TENSOR (default 8; above 10, SET_TENSOR_HASH goes
                         first so a server with a tensor cache (-c) skips what it has)
  -o, --output FMT       md (default), json or csv
  -t, --threads N        CPU threads of local cpu devices
      --native-lib PATH  the native CUDA/HIP library (also GRAPHWIRE_NATIVE_LIB)
      --webgpu-provider NAME  WebGPU implementation: auto (default), dawn, dawn-node, deno
                         (also GRAPHWIRE_WEBGPU_PROVIDER)
  -v, --verbose          server log lines of --serve servers
  -h, --help             show this help
`;

/** One printed row: a test of one model on one set of devices. */
export interface BenchRow extends TestResult {
  model: string;
  modelSpec: LlamaSpec;
  sizeBytes: number;
  params: number;
  devices: string[];
  flashAttn: boolean;
  reuse: boolean;
}

/** The JSON object of a row (snake_case, as llama-bench's JSON). */
export function rowJson(r: BenchRow): Record<string, unknown> {
  return {
    model: r.model,
    model_spec: r.modelSpec,
    size_bytes: r.sizeBytes,
    params: r.params,
    devices: r.devices,
    flash_attn: r.flashAttn,
    reuse: r.reuse,
    test: r.test,
    n_prompt: r.nPrompt,
    n_gen: r.nGen,
    reps: r.reps,
    tokens_per_s: r.tokensPerS,
    stddev: r.stddev,
    samples_ts: r.samples,
    bytes_sent_per_token: r.bytesSentPerToken,
    bytes_received_per_token: r.bytesReceivedPerToken,
    commands_per_token: r.commandsPerToken,
    round_trips_per_token: r.roundTripsPerToken,
    graph_reuse_hits: r.graphReuseHits,
    graphs_sent: r.graphsSent,
    commands: r.perCommand,
  };
}

const CSV_FIELDS = [
  "model",
  "size_bytes",
  "params",
  "devices",
  "flash_attn",
  "reuse",
  "test",
  "n_prompt",
  "n_gen",
  "reps",
  "tokens_per_s",
  "stddev",
  "bytes_sent_per_token",
  "bytes_received_per_token",
  "commands_per_token",
  "round_trips_per_token",
  "graph_reuse_hits",
  "graphs_sent",
];

function csvCell(v: unknown): string {
  const s = Array.isArray(v) ? v.join(";") : String(v);
  return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** Rows as CSV with a header line. */
export function formatCsv(rows: BenchRow[]): string {
  const lines = [CSV_FIELDS.join(",")];
  for (const r of rows) {
    const o = rowJson(r);
    lines.push(CSV_FIELDS.map((f) => csvCell(o[f])).join(","));
  }
  return lines.join("\n");
}

function params(n: number): string {
  return n >= 1e9
    ? `${(n / 1e9).toFixed(2)} B`
    : n >= 1e6
    ? `${(n / 1e6).toFixed(2)} M`
    : `${(n / 1e3).toFixed(2)} K`;
}

function perToken(n: number): string {
  return n >= 1024 ? formatBytes(Math.round(n)) : `${n.toFixed(n >= 100 ? 0 : 1)} B`;
}

/** The llama-bench table, then the wire statistics per token. */
export function formatMarkdown(rows: BenchRow[]): string {
  const main = markdownTable(
    ["model", "size", "params", "devices", "fa", "test", "t/s"],
    rows.map((r) => [
      r.model,
      formatBytes(r.sizeBytes),
      params(r.params),
      r.devices.join(","),
      r.flashAttn ? "1" : "0",
      r.test,
      `${r.tokensPerS.toFixed(2)} ± ${r.stddev.toFixed(2)}`,
    ]),
    ["left", "right", "right", "left", "right", "right", "right"],
  );
  const remote = rows.filter((r) => r.commandsPerToken > 0);
  if (!remote.length) return main + "\n\n(local devices only: nothing crossed a wire)";
  const wire = markdownTable(
    [
      "model",
      "test",
      "reuse",
      "sent/token",
      "received/token",
      "commands/token",
      "round trips/token",
      "graph reuse hits",
    ],
    remote.map((r) => [
      r.model,
      r.test,
      r.reuse ? "on" : "off",
      perToken(r.bytesSentPerToken),
      perToken(r.bytesReceivedPerToken),
      r.commandsPerToken.toFixed(2),
      r.roundTripsPerToken.toFixed(2),
      `${r.graphReuseHits} of ${r.graphReuseHits + r.graphsSent}`,
    ]),
    ["left", "right", "left", "right", "right", "right", "right", "right"],
  );
  return `${main}\n\nWire statistics per token (timed repetitions):\n\n${wire}`;
}

/** A progress bar on stderr: redrawn in place on a terminal, a few lines otherwise. */
export function progressBar(label: string): (done: number, total: number) => void {
  const tty = Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  const t0 = performance.now();
  let lastDraw = 0, lastQuarter = -1;
  return (done, total) => {
    const now = performance.now();
    const frac = total ? done / total : 1;
    const finished = done >= total;
    const rate = done / Math.max(1e-3, (now - t0) / 1000);
    const text =
      `${label} ${(frac * 100).toFixed(0).padStart(3)}% ${formatBytes(done)} / ${formatBytes(total)}` +
      `  ${formatBytes(rate)}/s`;
    if (tty) {
      if (!finished && now - lastDraw < 100) return;
      lastDraw = now;
      const width = 30, fill = Math.round(frac * width);
      const bar = `[${"#".repeat(fill)}${" ".repeat(width - fill)}]`;
      Deno.stderr.writeSync(enc.encode(`\r${bar} ${text}${finished ? "\n" : ""}`));
    } else {
      const q = Math.floor(frac * 4);
      if (q === lastQuarter) return;
      lastQuarter = q;
      Deno.stderr.writeSync(enc.encode(`${text}\n`));
    }
  };
}

function parseRatios(v: unknown): number[] | undefined {
  if (v === undefined) return undefined;
  const parts = String(v).split(/[,/]/).map((s) => s.trim()).filter(Boolean);
  const r = parts.map(Number);
  if (!r.length || r.some((x) => !(x >= 0)) || r.every((x) => x === 0)) {
    throw new UsageError(`-ts takes non-negative ratios with a positive sum, e.g. 3,1 — got "${v}"`);
  }
  return r;
}

function intList(v: unknown, name: string, fallback: number[]): number[] {
  const items = listOption(v);
  if (!items.length) return fallback;
  return items.map((s) => intOption(s, name, 0, 0, 1 << 20));
}

/** llama-bench's short flags spelled with one dash and two letters, mapped to long ones. */
const TWO_LETTER: Record<string, string> = {
  "-pg": "--pg",
  "-ts": "--tensor-split",
  "-fa": "--flash-attn",
  "-ub": "--ubatch-size",
};

/** Runs bench with `argv`. */
export async function benchMain(argv: string[]): Promise<number> {
  if (argv[0] === "ops") {
    // Loaded only when asked for, so the model bench runs whether or not the op bench is there.
    let mod: { benchOpsMain: (a: string[]) => Promise<number> };
    try {
      mod = await import("../bench/ops.ts");
    } catch (e) {
      throw new Error(`the op bench (bench/ops.ts) could not be loaded: ${(e as Error).message}`);
    }
    return await mod.benchOpsMain(argv.slice(1));
  }
  if (argv[0] === "providers") {
    // WebGPU providers side by side (bench/webgpu_providers.ts), loaded only when asked for.
    const { benchProvidersMain } = await import("../bench/webgpu_providers.ts");
    return await benchProvidersMain(argv.slice(1));
  }
  if (argv[0] === "mul-mat") {
    const { benchMulMatMain } = await import("../bench/mul_mat_rpc.ts");
    return await benchMulMatMain(argv.slice(1));
  }
  const args = argv.map((a) => TWO_LETTER[a] ?? a);
  const { values, positionals } = parseArgs(args, {
    model: { type: "string", short: "m", multiple: true },
    device: { type: "string", short: "d", multiple: true },
    rpc: { type: "string", multiple: true },
    serve: { type: "string", optionalValue: "1" },
    "n-prompt": { type: "string", short: "p", multiple: true },
    "n-gen": { type: "string", short: "n", multiple: true },
    pg: { type: "string", multiple: true },
    repetitions: { type: "string", short: "r" },
    "tensor-split": { type: "string" },
    "flash-attn": { type: "string" },
    "ubatch-size": { type: "string" },
    "no-reuse": { type: "boolean" },
    "upload-chunk": { type: "string" },
    output: { type: "string", short: "o", default: "md" },
    threads: { type: "string", short: "t" },
    "native-lib": { type: "string" },
    "webgpu-provider": { type: "string" },
    verbose: { type: "boolean", short: "v" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(BENCH_HELP);
    return 0;
  }
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const output = String(values.output);
  if (!["md", "json", "csv"].includes(output)) {
    throw new UsageError(`-o takes md, json or csv, got "${output}"`);
  }
  const noArgs = argv.length === 0;
  const localSpecs = listOption(values.device);
  const rpcEndpoints = listOption(values.rpc);
  const serve = values.serve === undefined ? (noArgs ? 1 : 0) : intOption(values.serve, "serve", 1, 1, 64);
  if (serve && rpcEndpoints.length) throw new UsageError("--serve starts its own servers; drop --rpc");
  const reps = intOption(values.repetitions, "repetitions", 5, 1, 1000);
  const ubatch = intOption(values["ubatch-size"], "ubatch-size", 512, 1, 1 << 16);
  const fa = values["flash-attn"] === undefined
    ? true
    : intOption(values["flash-attn"], "flash-attn", 1, 0, 1) === 1;
  const ratios = parseRatios(values["tensor-split"]);
  const reuse = !values["no-reuse"];
  const uploadChunk = intOption(values["upload-chunk"], "upload-chunk", 8, 1, 1024) * 1048576;
  const discover = {
    threads: values.threads === undefined ? undefined : intOption(values.threads, "threads", 1, 1, 1024),
    nativeLib: (values["native-lib"] as string | undefined) ?? Deno.env.get("GRAPHWIRE_NATIVE_LIB"),
    webgpuProvider: values["webgpu-provider"] as string | undefined,
  };
  const say = (line: string) => console.error(line);

  // Devices: servers we start, servers we are given, local devices — in llama.cpp's order (RPC first).
  const servers: SpawnedServer[] = [];
  const devices: Device[] = [];
  const localKinds: string[] = [];
  try {
    if (serve) {
      const serverArgs = [
        ...(localSpecs.length ? ["-d", localSpecs.join(",")] : []),
        ...(discover.threads ? ["-t", String(discover.threads)] : []),
        ...(discover.nativeLib ? ["--native-lib", discover.nativeLib] : []),
        ...(discover.webgpuProvider ? ["--webgpu-provider", discover.webgpuProvider] : []),
      ];
      for (let i = 0; i < serve; i++) {
        const s = await spawnServer(serverArgs, { log: values.verbose ? say : undefined });
        servers.push(s);
        say(s.banner.split("\n").filter((l) => /endpoint|^\s+\S+:/.test(l)).join("\n"));
        rpcEndpoints.push(s.endpoint);
      }
    }
    for (const ep of rpcEndpoints) devices.push(...await openRpcServer(ep));
    if (!serve && (localSpecs.length || !rpcEndpoints.length)) {
      let local: Device[];
      try {
        local = await selectDevices(localSpecs, discover);
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      devices.push(...local);
      localKinds.push(...local.map((d) => d.kind));
    }
    if (ratios && ratios.length !== devices.length) {
      throw new UsageError(`-ts gives ${ratios.length} ratios for ${devices.length} devices`);
    }
    const bestIsCpu = serve
      ? !localSpecs.length || localSpecs.every((s) => s === "cpu")
      : localKinds[0] === "cpu";
    const modelTexts = (values.model as string[] | undefined) ?? [];
    const specs = (modelTexts.length ? modelTexts : [bestIsCpu ? "tiny" : "small"]).map((m) => {
      try {
        return parseModelSpec(m);
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
    });
    const prompts = intList(values["n-prompt"], "n-prompt", [512]);
    const gens = intList(values["n-gen"], "n-gen", [128]);
    const tests: [number, number][] = [
      ...prompts.filter((p) => p > 0).map((p): [number, number] => [p, 0]),
      ...gens.filter((n) => n > 0).map((n): [number, number] => [0, n]),
    ];
    for (const pg of (values.pg as string[] | undefined) ?? []) {
      const [p, n] = listOption(pg).map((s) => intOption(s, "pg", 0, 0, 1 << 20));
      if (p === undefined || n === undefined) throw new UsageError(`-pg takes P,N, got "${pg}"`);
      tests.push([p, n]);
    }
    if (!tests.length) throw new UsageError("no tests: give -p and/or -n sizes above 0");
    const kvSize = padTo(Math.max(...tests.map(([p, n]) => p + n)), KV_PAD);
    say(`devices: ${devices.map((d) => `${d.name} (${d.description})`).join(", ")}`);

    const rows: BenchRow[] = [];
    const runModels = async () => {
      for (const spec of specs) {
        say(
          `model: ${modelLabel(spec)}, ${params(paramCount(spec))} params, ${formatBytes(modelBytes(spec))}`,
        );
        const mb = await ModelBench.load({
          spec,
          devices,
          ratios,
          flashAttn: fa,
          ubatch,
          kvSize,
          reuse,
          uploadChunk,
          onUpload: progressBar("uploading weights"),
        });
        try {
          for (const [p, n] of tests) {
            const r = await mb.test(p, n, reps);
            say(`${r.test}: ${r.tokensPerS.toFixed(2)} ± ${r.stddev.toFixed(2)} t/s`);
            rows.push({
              ...r,
              model: modelLabel(spec),
              modelSpec: spec,
              sizeBytes: modelBytes(spec),
              params: paramCount(spec),
              devices: devices.map((d) => d.name),
              flashAttn: mb.flashAttn,
              reuse,
            });
          }
        } finally {
          await mb.close();
        }
      }
    };
    try {
      await runModels();
    } catch (e) {
      const log = servers.flatMap((s) => s.recentLog().map((l) => `  [${s.endpoint}] ${l}`));
      if (log.length) say(`server log:\n${log.join("\n")}`);
      if (devices.some((d) => d.kind === "rpc")) {
        say(
          "(a server closes the connection when it cannot run a graph; its log says why — " +
            "e.g. an op it lacks: -fa 0 avoids FLASH_ATTN_EXT)",
        );
      }
      throw e;
    }
    if (output === "json") console.log(JSON.stringify(rows.map(rowJson), null, 2));
    else if (output === "csv") console.log(formatCsv(rows));
    else console.log(formatMarkdown(rows));
    return 0;
  } finally {
    for (const d of devices) await d.close();
    for (const s of servers) await s.close();
  }
}
