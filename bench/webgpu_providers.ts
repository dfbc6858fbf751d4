/**
 * `graphwire bench providers`: the WebGPU providers side by side (backends/webgpu/providers).
 *
 * Per provider, in a child process with a watchdog (a crash or hang is reported, not inherited):
 * - wait latency: an empty submit + onSubmittedWorkDone; one tiny dispatch + onSubmittedWorkDone;
 *   a 4-byte mapAsync round trip (copy, submit, map, read, unmap);
 * - CPU cost per dispatch: createBindGroup, a 64-byte writeBuffer, encoding one dependent
 *   dispatch (setBindGroup with a dynamic offset + dispatchWorkgroups) into a compute pass;
 * - GPU cost per dependent dispatch: timestamps around a pass of N dispatches that each read and
 *   write one buffer (when the adapter has timestamp-query), and the slope of the time from the
 *   end of submit to the end of the wait between passes of 1 and 20N+1 dispatches;
 * - stability: one submit whose kernel runs ~60–90 ms (a loop calibrated on the adapter),
 *   repeated, each followed by a wait and a check of its result.
 *
 * `--json` prints the records instead of the table.
 * @module
 */

import { loadProvider, PROVIDERS } from "../backends/webgpu/providers/mod.ts";
import { selfCommand } from "./spawn_server.ts";

const HELP = `graphwire bench providers [options]
  --providers a,b,c   providers to measure (default: ${PROVIDERS.map((p) => p.name).join(",")})
  --reps N            repetitions of each wait measurement (default 50)
  --dispatches N      dispatches per pass for the CPU/GPU per-dispatch figures (default 1000)
  --long-ms MS        target duration of the stability submit (default 75)
  --long-reps N       repetitions of the stability submit (default 8)
  --timeout S         watchdog per provider, seconds (default 120)
  --json              JSON records instead of the table`;

interface Opts {
  providers: string[];
  reps: number;
  dispatches: number;
  longMs: number;
  longReps: number;
  timeout: number;
  json: boolean;
}

function parse(argv: string[]): Opts | null {
  const o: Opts = {
    providers: PROVIDERS.map((p) => p.name),
    reps: 50,
    dispatches: 1000,
    longMs: 75,
    longReps: 8,
    timeout: 120,
    json: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], v = () => argv[++i];
    if (a === "--providers") o.providers = v().split(",").filter(Boolean);
    else if (a === "--reps") o.reps = Number(v());
    else if (a === "--dispatches") o.dispatches = Number(v());
    else if (a === "--long-ms") o.longMs = Number(v());
    else if (a === "--long-reps") o.longReps = Number(v());
    else if (a === "--timeout") o.timeout = Number(v());
    else if (a === "--json") o.json = true;
    else if (a === "-h" || a === "--help") return null;
    else throw new Error(`bench providers: unknown option ${a}\n${HELP}`);
  }
  return o;
}

/** One provider's figures (times in ms unless named _us). */
export interface ProviderRecord {
  provider: string;
  adapter?: string;
  /** "ok", or what went wrong ("crashed: ...", "hung: ...", "unavailable: ..."). */
  status: string;
  emptySubmitWaitMs?: number;
  tinyDispatchWaitMs?: number;
  map4BRoundTripMs?: number;
  waitP90Ms?: number;
  createBindGroupUs?: number;
  writeBuffer64BUs?: number;
  encodeDispatchUs?: number;
  submitUs?: number;
  gpuDispatchUsTimestamps?: number;
  /** Per dispatch: time from the end of submit to the end of the wait (slope over pass sizes). */
  gpuDispatchUsWall?: number;
  /** Per dispatch: time inside submit (slope over pass sizes). */
  submitDispatchUs?: number;
  longSubmitMs?: number[];
  longOk?: number;
  longTarget?: number;
  /** Optional features of note the adapter lists. */
  features?: string[];
  log?: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
}
function p90(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(s.length * 0.9))] : NaN;
}

const STEP = `
@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<uniform> p: vec4<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x < arrayLength(&y)) { y[g.x] = y[g.x] * p.x + p.y; }
}`;

const LOOP = `
@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<uniform> p: vec4<u32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  var v = f32(g.x & 1023u);
  for (var i = 0u; i < p.x; i++) { v = v * 0.9999 + 0.5; }
  if (g.x < arrayLength(&y)) { y[g.x] = v; }
}`;

/** Child side: measures one provider, printing one JSON line per finished section. */
async function child(name: string, o: Opts): Promise<void> {
  const emit = (r: Partial<ProviderRecord>) => console.log("GWPROV " + JSON.stringify(r));
  const p = await loadProvider(name);
  const adapter = await p.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new Error("no adapter");
  const info = adapter.info as GPUAdapterInfo & { backend?: string };
  const ts = adapter.features.has("timestamp-query");
  const dev = await adapter.requestDevice({ requiredFeatures: ts ? ["timestamp-query"] : [] });
  emit({
    adapter: [info.vendor, info.device, info.description, info.backend].filter((s) => s && s !== "0").join(
      " ",
    ),
    features: [...adapter.features].filter((f) => ["timestamp-query", "shader-f16", "subgroups"].includes(f)),
  });
  const U = GPUBufferUsage;
  const n = 64;
  const y = dev.createBuffer({ size: n * 4 * 16, usage: U.STORAGE | U.COPY_SRC | U.COPY_DST });
  const uni = dev.createBuffer({ size: 256 * 4, usage: U.UNIFORM | U.COPY_DST });
  dev.queue.writeBuffer(uni, 0, new Float32Array([0.5, 1, 0, 0]));
  const small = dev.createBuffer({ size: 4, usage: U.MAP_READ | U.COPY_DST });
  const bgl = dev.createBindGroupLayout({
    entries: [
      { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: "storage" } },
      { binding: 1, visibility: GPUShaderStage.COMPUTE, buffer: { type: "uniform", hasDynamicOffset: true } },
    ],
  });
  const layout = dev.createPipelineLayout({ bindGroupLayouts: [bgl] });
  const step = await dev.createComputePipelineAsync({
    layout,
    compute: { module: dev.createShaderModule({ code: STEP }), entryPoint: "main" },
  });
  const bgOf = (buf: GPUBuffer, size = n * 4) =>
    dev.createBindGroup({
      layout: bgl,
      entries: [{ binding: 0, resource: { buffer: buf, size } }, {
        binding: 1,
        resource: { buffer: uni, size: 16 },
      }],
    });
  const bg = bgOf(y);
  const offs = [0];
  const pass = (k: number, tsw?: GPUComputePassTimestampWrites) => {
    const enc = dev.createCommandEncoder();
    const ps = enc.beginComputePass(tsw ? { timestampWrites: tsw } : {});
    ps.setPipeline(step);
    for (let i = 0; i < k; i++) {
      ps.setBindGroup(0, bg, offs);
      ps.dispatchWorkgroups(1);
    }
    ps.end();
    return enc;
  };
  // warm up
  for (let i = 0; i < 3; i++) {
    dev.queue.submit([pass(1).finish()]);
    await dev.queue.onSubmittedWorkDone();
  }

  // --- wait latency
  const empty: number[] = [], tiny: number[] = [], map: number[] = [];
  for (let r = 0; r < o.reps; r++) {
    let t = performance.now();
    dev.queue.submit([dev.createCommandEncoder().finish()]);
    await dev.queue.onSubmittedWorkDone();
    empty.push(performance.now() - t);
    t = performance.now();
    dev.queue.submit([pass(1).finish()]);
    await dev.queue.onSubmittedWorkDone();
    tiny.push(performance.now() - t);
    t = performance.now();
    const enc = dev.createCommandEncoder();
    enc.copyBufferToBuffer(y, 0, small, 0, 4);
    dev.queue.submit([enc.finish()]);
    await small.mapAsync(GPUMapMode.READ);
    new Float32Array(small.getMappedRange())[0];
    small.unmap();
    map.push(performance.now() - t);
  }
  emit({
    emptySubmitWaitMs: median(empty),
    tinyDispatchWaitMs: median(tiny),
    map4BRoundTripMs: median(map),
    waitP90Ms: p90([...empty, ...tiny, ...map]),
  });

  // --- CPU cost per dispatch
  const N = o.dispatches;
  let t = performance.now();
  const groups: GPUBindGroup[] = [];
  for (let i = 0; i < N; i++) groups.push(bgOf(y, 64 + (i % 8) * 4));
  const createBindGroupUs = (performance.now() - t) * 1000 / N;
  const data = new Float32Array(16);
  t = performance.now();
  for (let i = 0; i < N; i++) dev.queue.writeBuffer(y, (i % 16) * 64, data);
  const writeBuffer64BUs = (performance.now() - t) * 1000 / N;
  await dev.queue.onSubmittedWorkDone();
  const encTimes: number[] = [], subTimes: number[] = [];
  for (let r = 0; r < 5; r++) {
    t = performance.now();
    const cb = pass(N).finish();
    encTimes.push((performance.now() - t) * 1000 / N);
    t = performance.now();
    dev.queue.submit([cb]);
    subTimes.push((performance.now() - t) * 1000);
    await dev.queue.onSubmittedWorkDone();
  }
  emit({
    createBindGroupUs,
    writeBuffer64BUs,
    encodeDispatchUs: median(encTimes),
    submitUs: median(subTimes),
  });

  // --- GPU cost per dependent dispatch
  const rec: Partial<ProviderRecord> = {};
  if (ts) {
    const qs = dev.createQuerySet({ type: "timestamp", count: 4 });
    const qb = dev.createBuffer({ size: 32, usage: U.QUERY_RESOLVE | U.COPY_SRC });
    const rb = dev.createBuffer({ size: 32, usage: U.MAP_READ | U.COPY_DST });
    const per: number[] = [];
    for (let r = 0; r < 5; r++) {
      const e1 = pass(1, { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 });
      const e2 = pass(N + 1, { querySet: qs, beginningOfPassWriteIndex: 2, endOfPassWriteIndex: 3 });
      // one resolve at offset 0: destination offsets must be multiples of 256
      e2.resolveQuerySet(qs, 0, 4, qb, 0);
      e2.copyBufferToBuffer(qb, 0, rb, 0, 32);
      dev.queue.submit([e1.finish(), e2.finish()]);
      await rb.mapAsync(GPUMapMode.READ);
      const q = new BigUint64Array(rb.getMappedRange().slice(0));
      rb.unmap();
      per.push((Number(q[3] - q[2]) - Number(q[1] - q[0])) / N / 1000);
    }
    // Some adapters (GL ones) accept timestamp queries but write zeros: no figure then.
    if (median(per) > 0) rec.gpuDispatchUsTimestamps = median(per);
    else rec.log = `timestamps gave no figure: ${per.map((x) => x.toFixed(3)).join(" ")} µs`;
  }
  const wall = async (k: number) => {
    const sub: number[] = [], wait: number[] = [];
    for (let r = 0; r < 5; r++) {
      const cb = pass(k).finish();
      const t0 = performance.now();
      dev.queue.submit([cb]);
      // Dawn records its Vulkan commands inside submit (wgpu at finish); a GL driver on the CPU
      // may run the work inside submit too: both halves are reported.
      const t1 = performance.now();
      await dev.queue.onSubmittedWorkDone();
      sub.push(t1 - t0);
      wait.push(performance.now() - t1);
    }
    return [median(sub), median(wait)];
  };
  const big = N * 20;
  const [s1, w1] = await wall(1), [sN, wN] = await wall(big + 1);
  rec.gpuDispatchUsWall = (wN - w1) * 1000 / big;
  rec.submitDispatchUs = (sN - s1) * 1000 / big;
  emit(rec);

  // --- stability: one long submit, repeated
  const loop = await dev.createComputePipelineAsync({
    layout: "auto",
    compute: { module: dev.createShaderModule({ code: LOOP }), entryPoint: "main" },
  });
  const lu = dev.createBuffer({ size: 16, usage: U.UNIFORM | U.COPY_DST });
  const ly = dev.createBuffer({ size: 4 * 64 * 1024, usage: U.STORAGE | U.COPY_SRC });
  const lrb = dev.createBuffer({ size: 16, usage: U.MAP_READ | U.COPY_DST });
  const lbg = dev.createBindGroup({
    layout: loop.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: ly } }, { binding: 1, resource: { buffer: lu } }],
  });
  const runLoop = async (iters: number, groups: number) => {
    dev.queue.writeBuffer(lu, 0, new Uint32Array([iters, 0, 0, 0]));
    const enc = dev.createCommandEncoder();
    const ps = enc.beginComputePass();
    ps.setPipeline(loop);
    ps.setBindGroup(0, lbg);
    ps.dispatchWorkgroups(groups);
    ps.end();
    enc.copyBufferToBuffer(ly, 4 * 12, lrb, 0, 16);
    const t0 = performance.now();
    dev.queue.submit([enc.finish()]);
    await lrb.mapAsync(GPUMapMode.READ);
    const v = [...new Float32Array(lrb.getMappedRange().slice(0))];
    lrb.unmap();
    return { ms: performance.now() - t0, v };
  };
  // calibrate: grow the loop until one submit takes >= 1/4 of the target, then scale
  const loopGroups = 1024;
  let iters = 64;
  let probe = await runLoop(iters, loopGroups);
  while (probe.ms < o.longMs / 4 && iters < 2 ** 28) {
    iters *= probe.ms < 2 ? 8 : 2;
    probe = await runLoop(iters, loopGroups);
  }
  // scale to the target, re-measuring until within 25% (the loop's time is not exactly linear)
  for (let k = 0; k < 4; k++) {
    iters = Math.max(1, Math.round(iters * o.longMs / probe.ms));
    probe = await runLoop(iters, loopGroups);
    if (Math.abs(probe.ms - o.longMs) < o.longMs / 4) break;
  }
  const times: number[] = [];
  let ok = 0, first: number[] | undefined;
  for (let r = 0; r < o.longReps; r++) {
    const { ms, v } = await runLoop(iters, loopGroups);
    times.push(Math.round(ms * 10) / 10);
    first ??= v;
    if (v.every((x, i) => x === first![i]) && v.every(Number.isFinite)) ok++;
    emit({ longSubmitMs: [...times], longOk: ok, longTarget: o.longMs });
  }
  dev.destroy();
  emit({ status: "ok" });
}

/** Parent side: one child per provider, with a watchdog. */
async function measure(name: string, o: Opts): Promise<ProviderRecord> {
  const rec: ProviderRecord = { provider: name, status: "running" };
  // graphwire itself (deno + cli/main.ts, the compiled executable, or the package's launcher)
  const self = selfCommand();
  const cmd = new Deno.Command(self.cmd, {
    args: [...self.args, "bench", "providers", "--child", name, ...childArgs(o)],
    stdout: "piped",
    stderr: "piped",
  });
  const proc = cmd.spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      proc.kill("SIGKILL");
    } catch { /* gone */ }
  }, o.timeout * 1000);
  const out = await proc.output();
  const status = out;
  clearTimeout(timer);
  const text = new TextDecoder().decode(out.stdout);
  for (const line of text.split("\n")) {
    if (line.startsWith("GWPROV ")) Object.assign(rec, JSON.parse(line.slice(7)));
  }
  const errText = new TextDecoder().decode(out.stderr).trim().split("\n").filter((l) => !/^\s+at /.test(l));
  if (rec.status !== "ok") {
    const stage = rec.longSubmitMs
      ? `during the long submits (${rec.longSubmitMs.length} done)`
      : rec.emptySubmitWaitMs !== undefined
      ? "after the wait measurements"
      : "before any measurement";
    rec.status = timedOut
      ? `hung ${stage}: killed after ${o.timeout} s`
      : status.signal
      ? `crashed ${stage} (signal ${status.signal})`
      : `failed ${stage} (exit ${status.code})`;
    rec.log = errText.slice(-6).join(" | ").slice(0, 600);
  }
  return rec;
}

function childArgs(o: Opts): string[] {
  return [
    "--reps",
    String(o.reps),
    "--dispatches",
    String(o.dispatches),
    "--long-ms",
    String(o.longMs),
    "--long-reps",
    String(o.longReps),
  ];
}

function fmt(x: number | undefined, d = 3): string {
  return x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(d);
}

/** The table of records (times in ms or µs as named), with ratios to the first provider. */
export function table(recs: ProviderRecord[]): string {
  const head = [
    "provider",
    "submit+wait ms",
    "dispatch+wait ms",
    "map 4B ms",
    "p90 ms",
    "bindGroup µs",
    "write64B µs",
    "encode µs/disp",
    "GPU µs/disp (ts)",
    "submit µs/disp",
    "wait µs/disp",
    "long submits",
    "status",
  ];
  const rows = recs.map((r) => [
    r.provider,
    fmt(r.emptySubmitWaitMs),
    fmt(r.tinyDispatchWaitMs),
    fmt(r.map4BRoundTripMs),
    fmt(r.waitP90Ms),
    fmt(r.createBindGroupUs, 2),
    fmt(r.writeBuffer64BUs, 2),
    fmt(r.encodeDispatchUs, 2),
    fmt(r.gpuDispatchUsTimestamps, 2),
    fmt(r.submitDispatchUs, 2),
    fmt(r.gpuDispatchUsWall, 2),
    r.longSubmitMs ? `${r.longOk}/${r.longSubmitMs.length} ok, ${fmt(median(r.longSubmitMs), 1)} ms` : "-",
    r.status,
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 || i >= 11 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ");
  const out = [line(head), ...rows.map(line)];
  const base = recs.find((r) => r.provider === "deno" && r.map4BRoundTripMs !== undefined);
  if (base) {
    for (const r of recs) {
      if (r === base || r.map4BRoundTripMs === undefined) continue;
      const q = (a?: number, b?: number) => (a && b ? (b / a).toFixed(1) + "×" : "-");
      out.push(
        `${r.provider} vs deno: waits ${q(r.emptySubmitWaitMs, base.emptySubmitWaitMs)} / ${
          q(r.tinyDispatchWaitMs, base.tinyDispatchWaitMs)
        } / ${q(r.map4BRoundTripMs, base.map4BRoundTripMs)} faster; createBindGroup ${
          q(r.createBindGroupUs, base.createBindGroupUs)
        }, writeBuffer ${q(r.writeBuffer64BUs, base.writeBuffer64BUs)}, encode ${
          q(r.encodeDispatchUs, base.encodeDispatchUs)
        } faster`,
      );
    }
  }
  for (const r of recs) {
    if (r.adapter) out.push(`${r.provider}: ${r.adapter} [${(r.features ?? []).join(", ")}]`);
    if (r.log) out.push(`${r.provider} log: ${r.log}`);
  }
  return out.join("\n");
}

/** Entry point of `graphwire bench providers`. */
export async function benchProvidersMain(argv: string[]): Promise<number> {
  const ci = argv.indexOf("--child");
  if (ci >= 0) {
    const name = argv[ci + 1];
    const o = parse([...argv.slice(0, ci), ...argv.slice(ci + 2)])!;
    await child(name, o);
    return 0;
  }
  const o = parse(argv);
  if (!o) {
    console.log(HELP);
    return 0;
  }
  const recs: ProviderRecord[] = [];
  for (const name of o.providers) {
    if (!o.json) console.error(`bench providers: measuring ${name} ...`);
    recs.push(await measure(name, o));
  }
  if (o.json) {
    console.log(JSON.stringify({ date: new Date().toISOString(), options: o, results: recs }, null, 1));
  } else console.log(table(recs));
  return 0;
}

if (import.meta.main) Deno.exit(await benchProvidersMain(Deno.args));
