/**
 * Measurements of the native device on a GPU host
 * (`deno run -A backends/cuda/bench.ts [--json F] [--only REGEX] [--no-variants]
 * [--set NAME=V[,NAME=V]] [--vs-ggml TEST_BACKEND_OPS [--rounds N] [--variant NAME=V[,NAME=V]]...]`):
 *
 * - the issue's anchor shapes (MUL_MAT 4096×14336 at n = 1, 8, 512; SOFT_MAX; FLASH_ATTN_EXT decode;
 *   a transposing CPY; fused SWIGLU), device time per node from device events around replays of a
 *   plan that repeats the node 16 times (as test-backend-ops perf repeats an op in one graph), and
 *   per replay of the node alone;
 * - a 1000-node graph: plain launches against one CUDA-graph replay, and the CPU cost of building
 *   and updating its plan;
 * - GRAPH_RECOMPUTE plus one GET_TENSOR through graphwire's server on loopback.
 *
 * Inputs are random (never zeros). ggml-cuda's figures for the same shapes come from its own
 * test-backend-ops perf, run beside this in the same session (native/scripts/h100.sh). With
 * `--vs-ggml`, each anchor is timed in alternating rounds, ggml-cuda's test-backend-ops (a separate
 * process on the same GPU) then graphwire, so that a drift of clocks or temperature over the call
 * falls on both, and the verdict is the median of the per-round ratios; each `--variant` (native
 * options by their NativeOption name, `REGEX:` first to time it on matching anchors only) is timed in
 * the same rounds. `--set` changes options for the
 * whole run.
 * @module
 */

import { bindMemory, planMemory } from "../alloc.ts";
import { GraphBuilder } from "../../protocol/graph/builder.ts";
import { GgmlOp, GluOp } from "../../protocol/graph/ops.ts";
import { nbytes, nelements, type Tensor } from "../../protocol/graph/tensor.ts";
import type { Graph } from "../../protocol/graph/graph.ts";
import { GgmlType } from "../../protocol/graph/types.ts";
import type { DeviceBuffer } from "../device.ts";
import { type CudaDevice, discoverNative, NativeOption, setOption } from "./mod.ts";
import { blasInfo, getOption } from "./ffi.ts";
import { encodeValues, opNode } from "./check.ts";
import { rng } from "../../tests/asserts.ts";

const { F32, F16, BF16 } = GgmlType;

interface Anchor {
  name: string;
  /** ggml-cuda's figure on the H100 at d99724f2 (the issue's anchor), µs. */
  anchorUs: number;
  /** The test-backend-ops case string this matches (for pairing with ggml's perf output). */
  ggml: string;
  build(b: GraphBuilder): Tensor;
  /** Bytes a run must move at least (for the bandwidth column). */
  bytes: number;
  flops?: number;
}

function anchors(): Anchor[] {
  const mm = (t: number, n: number, us: number): Anchor => ({
    name: `MUL_MAT ${t === F16 ? "f16" : t === BF16 ? "bf16" : "f32"} 4096x14336 n=${n}`,
    anchorUs: us,
    ggml: `MUL_MAT(type_a=${
      t === F16 ? "f16" : t === BF16 ? "bf16" : "f32"
    },type_b=f32,m=4096,n=${n},k=14336,`,
    build: (b) => b.mulMat(b.newTensor(t, [14336, 4096]), b.newTensor(F32, [14336, n])),
    bytes: 4096 * 14336 * (t === F32 ? 4 : 2) + 14336 * n * 4 + 4096 * n * 4,
    flops: 2 * 4096 * 14336 * n,
  });
  return [
    mm(F16, 1, 40.7),
    mm(BF16, 1, 40.2),
    mm(F32, 1, 77),
    mm(F16, 8, 47.4),
    mm(F16, 512, 140),
    mm(BF16, 512, 123),
    {
      name: "SOFT_MAX f32 4096x4096x5",
      anchorUs: 316,
      ggml:
        "SOFT_MAX(type=f32,ne=[4096,4096,5,1],mask=0,sinks=0,m_prec=f32,nr23=[1,1],scale=1.000000,max_bias=0.000000,inplace=0)",
      build: (b) => b.softMax(b.newTensor(F32, [4096, 4096, 5, 1])),
      bytes: 2 * 4096 * 4096 * 5 * 4,
    },
    {
      name: "FLASH_ATTN_EXT hs=128 nh=8 kv=16384 n=1 f16",
      anchorUs: 28.7,
      ggml:
        "FLASH_ATTN_EXT(hsk=128,hsv=128,nh=8,nr23=[1,1],kv=16384,nb=1,mask=1,sinks=0,max_bias=0.000000,logit_softcap=0.000000,prec=f32,type_K=f16,type_V=f16",
      build: (b) => {
        const q = b.newTensor(F32, [128, 1, 8, 1]);
        const k = b.newTensor(F16, [128, 16384, 8, 1]);
        const v = b.newTensor(F16, [128, 16384, 8, 1]);
        const m = b.newTensor(F16, [16384, 1, 1, 1]);
        return b.flashAttnExtSetPrec(b.flashAttnExt(q, k, v, m, 1 / Math.sqrt(128)), 10);
      },
      bytes: 2 * 128 * 16384 * 8 * 2,
    },
    {
      name: "CPY f32 786432x256 transposed",
      anchorUs: 687,
      ggml:
        "CPY(type_src=f32,type_dst=f32,ne_src=[786432,256,1,1],permute_src=[1,0,2,3],permute_dst=[0,0,0,0],_src_transpose=0)",
      build: (b) => b.cont(b.permute(b.newTensor(F32, [786432, 256]), 1, 0, 2, 3)),
      bytes: 2 * 786432 * 256 * 4,
    },
    {
      name: "SWIGLU f32 34816x512 fused",
      anchorUs: 44,
      ggml: "SWIGLU(type=f32,ne_a=[34816,512,1,1],v=0,swapped=0)",
      build: (b) => b.glu(b.newTensor(F32, [34816, 512]), null, GluOp.SWIGLU),
      bytes: 34816 * 512 * 4 * 1.5,
    },
  ];
}

const block = (() => {
  const r = rng(Date.now() >>> 0);
  return Array.from({ length: 1 << 18 }, () => r() * 2 - 1);
})();

/** Fills a tensor with random values of its type (a random 256K-element block, repeated). */
function fillRandom(buf: DeviceBuffer, t: Tensor): void {
  const n = nelements(t);
  const pattern = encodeValues(t.type, block);
  const per = block.length;
  const es = pattern.length / per;
  for (let i = 0; i < n; i += per) {
    const k = Math.min(per, n - i);
    buf.set(t.offset + i * es, pattern.subarray(0, k * es)) as void;
  }
}

async function placeRandom(dev: CudaDevice, g: Graph): Promise<DeviceBuffer> {
  const plan = await planMemory(g, dev);
  const buf = dev.allocBuffer(Math.max(1, plan.size));
  if (!buf) throw new Error(`cannot allocate ${plan.size} bytes`);
  bindMemory(g, buf, plan);
  for (const t of g.tensors) {
    if (t.op === GgmlOp.NONE && !t.viewSrc && t.buffer && nbytes(t) > 0) fillRandom(buf, t);
  }
  return buf;
}

function timePlan(dev: CudaDevice, g: Graph, targetMs = 300): number {
  const plan = dev.planCreate(g);
  try {
    const once = dev.planTime(plan, 3);
    const iters = Math.max(5, Math.min(2000, Math.round(targetMs / Math.max(once, 1e-3))));
    // median of three measurements
    const t = [dev.planTime(plan, iters), dev.planTime(plan, iters), dev.planTime(plan, iters)].sort((a, b) =>
      a - b
    );
    return t[1];
  } finally {
    dev.planFree(plan);
  }
}

/**
 * Runs `f` on an anchor's graph, placed on the device with random inputs: alone (`g`) and repeated
 * as test-backend-ops perf repeats an op (`rep`); frees its memory afterwards.
 */
async function onAnchor(
  dev: CudaDevice,
  a: Anchor,
  f: (g: Graph, rep: Graph) => void | Promise<void>,
): Promise<void> {
  const b = new GraphBuilder();
  const g = b.build(a.build(b));
  const buf = await placeRandom(dev, g);
  try {
    await f(g, repeated(g, REPEAT));
  } finally {
    buf.free();
  }
}

/** Runs `f` with native options set, then puts back what they were. */
function withOptions<T>(dev: CudaDevice, options: [number, number][], f: () => T): T {
  const saved = options.map(([k]) => [k, getOption(dev.native, k)] as [number, number]);
  for (const [k, v] of options) setOption(dev.native, k, v);
  try {
    return f();
  } finally {
    for (const [k, v] of saved) setOption(dev.native, k, v);
  }
}

/**
 * The graph with its nodes repeated `r` times, as ggml's test-backend-ops perf repeats an op in one
 * graph: back-to-back kernels without a graph launch between them.
 */
function repeated(g: Graph, r: number): Graph {
  return { ...g, nodes: Array.from({ length: r }, () => g.nodes).flat(), uid: 0n };
}

/** Nodes per repeated graph. */
const REPEAT = 16;

/** A chain of `n` small dependent element-wise nodes on a [4096] f32 tensor. */
function chain(b: GraphBuilder, n: number): Tensor {
  let y = b.newTensor(F32, [4096]);
  const c = b.newTensor(F32, [4096]);
  for (let i = 0; i < n; i++) y = i % 2 ? b.scale(y, 0.999) : opNode(b, GgmlOp.ADD, F32, [4096], [y, c]);
  return y;
}

export interface BenchReport {
  device: string;
  blas: string;
  /** us: per node of a graph repeating it (as ggml's perf mode); singleUs: per replay of the one node. */
  anchors: {
    name: string;
    us: number;
    singleUs: number;
    anchorUs: number;
    gbps: number;
    tflops?: number;
    ggml: string;
  }[];
  graph1000: {
    plainUs: number;
    replayUs: number;
    planCreateMs: number;
    planUpdateMs: number;
    recomputeGetUs: number;
    recomputeGetP90Us: number;
  };
}

/**
 * Runs the measurements; `only` restricts them to the anchors whose name matches; `variants: false`
 * measures the defaults alone (a profiler then sees the default kernel first).
 */
export async function runBench(
  dev: CudaDevice,
  log: (s: string) => void,
  only?: RegExp,
  variants = true,
): Promise<BenchReport> {
  setOption(dev.native, NativeOption.CUDA_GRAPHS, 1);
  const report: BenchReport = {
    device: dev.description,
    blas: `${blasInfo(dev.native)} (loaded: ${getOption(dev.native, NativeOption.BLAS_LOADED)})`,
    anchors: [],
    graph1000: {
      plainUs: 0,
      replayUs: 0,
      planCreateMs: 0,
      planUpdateMs: 0,
      recomputeGetUs: 0,
      recomputeGetP90Us: 0,
    },
  };
  // alternatives measured beside the default, each with the options that select it
  const O = NativeOption;
  const variant = (anchor: RegExp, label: string, ...options: [number, number][]) => ({
    anchor,
    label,
    options,
  });
  const alternatives = !variants ? [] : [
    variant(/ n=1$/, "2 rows/block, 4 warps", [O.MATVEC_ROWS, 2], [O.MATVEC_WARPS, 4]),
    variant(/ n=1$/, "4 rows/block, 4 warps", [O.MATVEC_ROWS, 4], [O.MATVEC_WARPS, 4]),
    variant(/ n=1$/, "4 rows/block, 8 warps", [O.MATVEC_ROWS, 4], [O.MATVEC_WARPS, 8]),
    variant(/ n=1$/, "1 row/block, 8 warps", [O.MATVEC_ROWS, 1], [O.MATVEC_WARPS, 8]),
    variant(/ n=8$/, "SIMT, 4 rows x 1", [O.MATVEC_MMA_COLS, 9]),
    variant(/ n=8$/, "SIMT, 8 rows x 1", [O.MATVEC_MMA_COLS, 9], [O.MATVEC_ROWS, 8]),
    variant(/ n=8$/, "tensor cores, 2 chunks/warp", [O.MATVEC_UNROLL, 2]),
    variant(/ n=8$/, "tensor cores, 8 chunks/warp", [O.MATVEC_UNROLL, 8]),
    variant(/ f32 .* n=1$/, "1 row x 4, 8 warps", [O.MATVEC_ROWS, 1], [O.MATVEC_UNROLL, 4], [
      O.MATVEC_WARPS,
      8,
    ]),
    variant(/ f32 .* n=1$/, "1 row x 8, 4 warps", [O.MATVEC_ROWS, 1], [O.MATVEC_WARPS, 4]),
    variant(/ f32 .* n=1$/, "1 row x 4, 4 warps", [O.MATVEC_ROWS, 1], [O.MATVEC_UNROLL, 4], [
      O.MATVEC_WARPS,
      4,
    ]),
    variant(/ f32 .* n=1$/, "1 row x 2, 8 warps", [O.MATVEC_ROWS, 1], [O.MATVEC_UNROLL, 2], [
      O.MATVEC_WARPS,
      8,
    ]),
    variant(/ f32 .* n=1$/, "2 rows x 2, 8 warps", [O.MATVEC_ROWS, 2], [O.MATVEC_UNROLL, 2], [
      O.MATVEC_WARPS,
      8,
    ]),
    variant(/ f32 .* n=1$/, "2 rows x 2, 4 warps", [O.MATVEC_ROWS, 2], [O.MATVEC_UNROLL, 2], [
      O.MATVEC_WARPS,
      4,
    ]),
    variant(/^FLASH/, "2 blocks/SM", [O.FA_BLOCKS_PER_SM, 2]),
    variant(/^FLASH/, "3 blocks/SM", [O.FA_BLOCKS_PER_SM, 3]),
    variant(/^FLASH/, "6 blocks/SM", [O.FA_BLOCKS_PER_SM, 6]),
    variant(/^FLASH/, "8 blocks/SM", [O.FA_BLOCKS_PER_SM, 8]),
    variant(/^FLASH/, "V loaded early, 2 blocks/SM", [O.FA_KERNEL, 1], [O.FA_BLOCKS_PER_SM, 2]),
    variant(/^FLASH/, "V loaded early, 4 blocks/SM", [O.FA_KERNEL, 1], [O.FA_BLOCKS_PER_SM, 4]),
    variant(/^FLASH/, "a lane per key row, 4 blocks/SM", [O.FA_KERNEL, 2]),
    variant(/^FLASH/, "merge as a programmatic dependent", [O.FA_MERGE, 1]),
    variant(/^FLASH/, "slices fill the wave exactly", [O.FA_EXACT_WAVE, 1]),
    variant(/^FLASH/, "exact wave, merge as a programmatic dependent", [O.FA_EXACT_WAVE, 1], [O.FA_MERGE, 1]),
    variant(/^FLASH/, "slices merged by the last to finish", [O.FA_MERGE, 2]),
    variant(/^FLASH/, "merged by the last to finish, exact wave", [O.FA_MERGE, 2], [O.FA_EXACT_WAVE, 1]),
    variant(/^CPY/, "tiles along the swapped dim", [O.COPY_ORDER, 1]),
    variant(/^CPY/, "32 blocks/SM", [O.COPY_BLOCKS_PER_SM, 32]),
    variant(/^CPY/, "32-row tiles", [O.COPY_ROWS, 32]),
    variant(/^CPY/, "32-row tiles, 32 blocks/SM", [O.COPY_ROWS, 32], [O.COPY_BLOCKS_PER_SM, 32]),
    variant(/ n=512$/, "own tensor-core GEMM (no cuBLAS)", [O.BLAS, 0]),
    variant(/ n=[18]$|^(FLASH|SOFT|CPY|SWIGLU)/, "plain launches (no PDL)", [O.PDL, 0]),
    variant(/ n=[18]$|^(FLASH|SOFT|CPY|SWIGLU)/, "PDL for every kernel", [O.PDL, 2]),
  ];
  for (const a of anchors()) {
    if (only && !only.test(a.name)) continue;
    await onAnchor(dev, a, (g, rep) => {
      for (const v of alternatives) {
        if (!v.anchor.test(a.name)) continue;
        const us = withOptions(dev, v.options, () => timePlan(dev, rep) * 1000 / REPEAT);
        log(`  variant ${a.name} ${v.label}: ${us.toFixed(1)} µs`);
      }
      const singleUs = timePlan(dev, g) * 1000;
      const ms = timePlan(dev, rep) / REPEAT;
      const us = ms * 1000;
      const gbps = a.bytes / (ms / 1000) / 1e9;
      const tflops = a.flops ? a.flops / (ms / 1000) / 1e12 : undefined;
      report.anchors.push({ name: a.name, us, singleUs, anchorUs: a.anchorUs, gbps, tflops, ggml: a.ggml });
      log(
        `${a.name.padEnd(46)} ${us.toFixed(1).padStart(8)} µs (alone ${singleUs.toFixed(1).padStart(7)})  ${
          gbps.toFixed(0).padStart(5)
        } GB/s${tflops ? `  ${tflops.toFixed(1)} TFLOP/s` : ""}  (anchor ${a.anchorUs} µs, ${
          (a.anchorUs / us).toFixed(2)
        }x)`,
      );
    });
  }
  if (only) return report;
  // 1000-node graph: plain launches vs replay
  {
    const b = new GraphBuilder();
    const g = b.build(chain(b, 1000));
    const buf = await placeRandom(dev, g);
    setOption(dev.native, NativeOption.CUDA_GRAPHS, 0);
    const plain = timePlan(dev, g, 500);
    setOption(dev.native, NativeOption.CUDA_GRAPHS, 1);
    const replay = timePlan(dev, g, 500);
    let t0 = performance.now();
    const reps = 20;
    const plans = [];
    for (let i = 0; i < reps; i++) plans.push(dev.planCreate(g));
    const createMs = (performance.now() - t0) / reps;
    t0 = performance.now();
    for (const p of plans) dev.planUpdate(p, g);
    const updateMs = (performance.now() - t0) / reps;
    for (const p of plans) dev.planFree(p);
    buf.free();
    report.graph1000.plainUs = plain * 1000;
    report.graph1000.replayUs = replay * 1000;
    report.graph1000.planCreateMs = createMs;
    report.graph1000.planUpdateMs = updateMs;
    log(
      `1000-node graph: plain launches ${(plain * 1000).toFixed(0)} µs/run, CUDA-graph replay ${
        (replay * 1000).toFixed(0)
      } µs/run (${(plain / replay).toFixed(2)}x); plan create ${createMs.toFixed(2)} ms, update ${
        updateMs.toFixed(2)
      } ms`,
    );
  }
  // GRAPH_RECOMPUTE + GET_TENSOR through the server
  {
    const { startLocalServer } = await import("../../bench/local_server.ts");
    const { openRpcServer } = await import("../rpc/mod.ts");
    const server = startLocalServer([dev]);
    try {
      const [remote] = await openRpcServer(server.endpoint);
      const b = new GraphBuilder();
      const out = chain(b, 1000);
      const g = b.build(out);
      const plan = await planMemory(g, remote);
      const rbuf = (await remote.allocBuffer(plan.size))!;
      bindMemory(g, rbuf, plan);
      for (const t of g.tensors) {
        if (t.op === GgmlOp.NONE && t.buffer) {
          await rbuf.set(t.offset, encodeValues(F32, block.slice(0, 4096)));
        }
      }
      const rp = remote.planCreate(g);
      await remote.planCompute(rp); // GRAPH_COMPUTE
      await rbuf.get(out.offset, 16384);
      const times: number[] = [];
      for (let i = 0; i < 300; i++) {
        const t0 = performance.now();
        await remote.planCompute(rp); // GRAPH_RECOMPUTE
        await rbuf.get(out.offset, 16384);
        times.push((performance.now() - t0) * 1000);
      }
      times.sort((a, b) => a - b);
      report.graph1000.recomputeGetUs = times[Math.floor(times.length / 2)];
      report.graph1000.recomputeGetP90Us = times[Math.floor(times.length * 0.9)];
      log(
        `GRAPH_RECOMPUTE + GET_TENSOR (1000 nodes, 16 KiB back) over loopback: p50 ${
          report.graph1000.recomputeGetUs.toFixed(0)
        } µs, p90 ${report.graph1000.recomputeGetP90Us.toFixed(0)} µs`,
      );
      await rbuf.free();
      await remote.close();
    } finally {
      await server.close();
    }
  }
  return report;
}

/** One anchor timed in alternating rounds against ggml-cuda's test-backend-ops perf. */
export interface VersusResult {
  name: string;
  /** graphwire's configuration: "default" or a variant's options. */
  config: string;
  /** Per round: ggml-cuda's µs per run, then graphwire's µs per node. */
  rounds: { ggmlUs: number; us: number }[];
  /** Median over the rounds of ggml µs / graphwire µs (above 1: graphwire faster). */
  medianRatio: number;
  minRatio: number;
  maxRatio: number;
}

/** Native options by name, as `--set` and `--variant` take them: "FA_MERGE=2,PDL=0". */
export function parseOptions(text: string): [number, number][] {
  return text.split(",").map((kv) => {
    const m = kv.trim().match(/^([A-Z0-9_]+)=(-?\d+)$/);
    const key = m ? (NativeOption as Record<string, number>)[m[1]] : undefined;
    if (!m || key === undefined) {
      throw new Error(
        `not an option setting: ${kv} (NAME=INTEGER, NAME one of ${Object.keys(NativeOption).join(" ")})`,
      );
    }
    return [key, Number(m[2])];
  });
}

/** What `--vs-ggml` times: the defaults, then each variant ("REGEX:NAME=V,..." on matching anchors). */
export function versusConfigs(
  variants: string[],
): { label: string; options: [number, number][]; anchors: RegExp }[] {
  return [
    { label: "default", options: [], anchors: /./ },
    ...variants.map((v) => {
      const at = v.lastIndexOf(":");
      return {
        label: v,
        options: parseOptions(at < 0 ? v : v.slice(at + 1)),
        anchors: at < 0 ? /./ : new RegExp(v.slice(0, at)),
      };
    }),
  ];
}

/** test-backend-ops' `-o` and `-p` (a regex over the case's parameters) for an anchor's case string. */
export function ggmlFilter(ggml: string): { op: string; params: string } {
  const i = ggml.indexOf("(");
  const op = ggml.slice(0, i);
  const params = ggml.slice(i + 1).replace(/\)$/, "");
  return { op, params: "^" + params.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") };
}

/** The µs per run test-backend-ops perf printed for the case `ggml` (undefined when absent). */
export function parseGgmlPerf(output: string, ggml: string): number | undefined {
  for (const line of output.split("\n")) {
    if (!line.trimStart().startsWith(ggml)) continue;
    const m = line.match(/([0-9.]+) us\/run/);
    if (m) return Number(m[1]);
  }
  return undefined;
}

async function ggmlPerfUs(tbo: string, a: Anchor): Promise<number> {
  const { op, params } = ggmlFilter(a.ggml);
  const out = await new Deno.Command(tbo, {
    args: ["perf", "-b", "CUDA0", "-o", op, "-p", params],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const us = parseGgmlPerf(text, a.ggml);
  if (us === undefined) {
    throw new Error(
      `test-backend-ops printed no time for ${a.ggml} (exit ${out.code}): ${
        (text + new TextDecoder().decode(out.stderr)).slice(-400)
      }`,
    );
  }
  return us;
}

/**
 * Times the anchors matching `only` in `rounds` alternating rounds: ggml-cuda's test-backend-ops
 * perf (path `tbo`), then graphwire's default path on the same shape.
 */
export async function runVersus(
  dev: CudaDevice,
  tbo: string,
  rounds: number,
  log: (s: string) => void,
  only?: RegExp,
  variants: string[] = [],
): Promise<VersusResult[]> {
  setOption(dev.native, NativeOption.CUDA_GRAPHS, 1);
  const configs = versusConfigs(variants);
  const results: VersusResult[] = [];
  const median = (x: number[]) => {
    const s = [...x].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  for (const a of anchors()) {
    if (only && !only.test(a.name)) continue;
    const mine = configs.filter((c) => c.anchors.test(a.name));
    const rs: VersusResult[] = mine.map((c) => ({
      name: a.name,
      config: c.label,
      rounds: [],
      medianRatio: 0,
      minRatio: 0,
      maxRatio: 0,
    }));
    await onAnchor(dev, a, async (_g, rep) => {
      for (let i = 0; i < rounds; i++) {
        const ggmlUs = await ggmlPerfUs(tbo, a);
        const line = [`ggml-cuda ${ggmlUs.toFixed(2)} µs`];
        mine.forEach((c, j) => {
          const us = withOptions(dev, c.options, () => timePlan(dev, rep) * 1000 / REPEAT);
          rs[j].rounds.push({ ggmlUs, us });
          line.push(`${c.label} ${us.toFixed(2)} µs (${(ggmlUs / us).toFixed(3)}x)`);
        });
        log(`  ${a.name} round ${i + 1}: ${line.join(", ")}`);
      }
    });
    for (const r of rs) {
      const ratios = r.rounds.map((x) => x.ggmlUs / x.us);
      r.medianRatio = median(ratios);
      r.minRatio = Math.min(...ratios);
      r.maxRatio = Math.max(...ratios);
      results.push(r);
    }
  }
  log("");
  const cw = Math.max(9, ...configs.map((c) => c.label.length));
  const head = [
    "anchor".padEnd(46),
    "graphwire".padEnd(cw),
    "ggml-cuda".padStart(10),
    "graphwire".padStart(10),
  ];
  log(`${head.join(" ")}  ratio (median, min..max)`);
  for (const r of results) {
    const cols = [
      r.name.padEnd(46),
      r.config.padEnd(cw),
      median(r.rounds.map((x) => x.ggmlUs)).toFixed(2).padStart(10),
      median(r.rounds.map((x) => x.us)).toFixed(2).padStart(10),
    ];
    log(
      `${cols.join(" ")}  ${r.medianRatio.toFixed(3)}x (${r.minRatio.toFixed(3)}..${r.maxRatio.toFixed(3)})`,
    );
  }
  return results;
}

if (import.meta.main) {
  const args = [...Deno.args];
  const ji = args.indexOf("--json");
  const jsonPath = ji >= 0 ? args.splice(ji, 2)[1] : undefined;
  const oi = args.indexOf("--only");
  const only = oi >= 0 ? new RegExp(args.splice(oi, 2)[1]) : undefined;
  const vi = args.indexOf("--no-variants");
  if (vi >= 0) args.splice(vi, 1);
  const found = discoverNative("cuda");
  const dev = found.devices[0] as CudaDevice | undefined;
  if (!dev) {
    console.log(`no cuda device: ${found.absent}`);
    Deno.exit(2);
  }
  console.log(dev.description);
  for (let si = args.indexOf("--set"); si >= 0; si = args.indexOf("--set")) {
    for (const [k, v] of parseOptions(args.splice(si, 2)[1])) setOption(dev.native, k, v);
  }
  const variants: string[] = [];
  for (let i = args.indexOf("--variant"); i >= 0; i = args.indexOf("--variant")) {
    variants.push(args.splice(i, 2)[1]);
  }
  const gi = args.indexOf("--vs-ggml");
  if (gi >= 0) {
    const tbo = args.splice(gi, 2)[1];
    const ri = args.indexOf("--rounds");
    const rounds = ri >= 0 ? Number(args.splice(ri, 2)[1]) : 5;
    if (!Number.isInteger(rounds) || rounds < 1) throw new Error("--rounds takes a positive integer");
    const v = await runVersus(dev, tbo, rounds, (s) => console.log(s), only, variants);
    if (jsonPath) await Deno.writeTextFile(jsonPath, JSON.stringify(v, null, 2));
    Deno.exit(0);
  }
  const r = await runBench(dev, (s) => console.log(s), only, vi < 0);
  r.blas = `${blasInfo(dev.native)} (loaded: ${getOption(dev.native, NativeOption.BLAS_LOADED)})`;
  console.log(r.blas);
  if (jsonPath) await Deno.writeTextFile(jsonPath, JSON.stringify(r, null, 2));
}
