/**
 * `graphwire bench ops`: op-level timings on any Device of the registry (cpu, webgpu, cuda:0, or a
 * remote rpc:HOST:PORT/0), with shapes given the way ggml's test-backend-ops perf names them, or
 * the preset list of issue 4's anchor shapes (with ggml-cuda's H100 figures beside them).
 *
 * Timing: one graph holds the op `--reps` times (every copy reads the same sources and writes the
 * same destination), so one plan run is one submit / one graph launch carrying many dispatches;
 * the plan is run in batches of k and 2k runs (three of each), each batch followed by one
 * synchronize, and the time per op is the difference of the median batches over k·reps. That removes the fixed cost of a wait (about 10 ms in Deno's own
 * WebGPU) and of a submit, leaving device time whenever the device is the bottleneck.
 *
 * `--graph` measures the per-node costs of a 1000-node graph of small dependent ops: device time per
 * node, CPU time of one planCompute (encoding and submitting it), and the round trip of
 * GRAPH_RECOMPUTE + one GET_TENSOR through an in-process graphwire server on loopback.
 *
 * @example
 * ```sh
 * deno task bench ops -d webgpu --op MUL_MAT --type f16 -m 4096 -k 14336 -n 1
 * deno task bench ops -d webgpu --preset --json
 * ```
 * @module
 */

import "../backends/all.ts";
import type { Device, DeviceBuffer, Plan } from "../backends/device.ts";
import { selectDevices } from "../backends/registry.ts";
import { openRpcServer } from "../backends/rpc/mod.ts";
import { bindMemory, planMemory } from "../backends/alloc.ts";
import { GraphBuilder, newTensorId } from "../protocol/graph/builder.ts";
import { type Graph, newGraph } from "../protocol/graph/graph.ts";
import { GgmlOp } from "../protocol/graph/ops.ts";
import { nbytes, type Tensor } from "../protocol/graph/tensor.ts";
import { GgmlType, typeName } from "../protocol/graph/types.ts";
import { table } from "../cli/format.ts";
import { startLocalServer } from "./local_server.ts";
import { parseArgs } from "node:util";

const { F32, F16, BF16 } = GgmlType;

/** One op case: how to build it, and what it moves and computes (for GB/s and TFLOPS). */
export interface OpCase {
  /** test-backend-ops style description. */
  name: string;
  op: string;
  /** Builds the node (sources are leaves that get random data). */
  build(b: GraphBuilder): Tensor;
  /** Floating-point operations of one run (0: not meaningful). */
  flops: number;
  /** ggml-cuda's H100 time in µs for this shape (issue 4), when it is an anchor. */
  cudaUs?: number;
}

/** One measured case. */
export interface OpResult {
  name: string;
  op: string;
  device: string;
  /** Microseconds per op. */
  us: number;
  gbps: number;
  tflops: number;
  reps: number;
  runs: number;
  cudaUs?: number;
  /** us / cudaUs. */
  vsCuda?: number;
}

function typeOf(s: string): number {
  const t = { f32: F32, f16: F16, bf16: BF16 }[s.toLowerCase()];
  if (t === undefined) throw new Error(`--type ${s}: f32, f16 or bf16`);
  return t;
}

/** MUL_MAT of an m×k matrix of `type` by k×n f32 columns (test-backend-ops' m, n, k). */
export function mulMatCase(type: number, m: number, k: number, n: number, cudaUs?: number): OpCase {
  return {
    name: `MUL_MAT(type_a=${typeName(type)},type_b=f32,m=${m},n=${n},k=${k})`,
    op: "MUL_MAT",
    build: (b) => b.mulMat(b.newTensor(type, [k, m], "a"), b.newTensor(F32, [k, n], "b")),
    flops: 2 * m * n * k,
    cudaUs,
  };
}

/** SOFT_MAX f32 of ne (with scale 1, no mask), as test_soft_max's perf cases. */
export function softMaxCase(ne: number[], cudaUs?: number): OpCase {
  return {
    name: `SOFT_MAX(type=f32,ne=[${ne.join(",")}])`,
    op: "SOFT_MAX",
    build: (b) => b.softMaxExt(b.newTensor(F32, ne, "a"), null, 1, 0),
    flops: 0,
    cudaUs,
  };
}

/** FLASH_ATTN_EXT with an f16 mask, as test_flash_attn_ext (nr = 1, one sequence). */
export function flashAttnCase(
  hs: number,
  nh: number,
  kv: number,
  nb: number,
  kvType: number,
  cudaUs?: number,
): OpCase {
  return {
    name: `FLASH_ATTN_EXT(hsk=${hs},hsv=${hs},nh=${nh},kv=${kv},nb=${nb},type_KV=${typeName(kvType)})`,
    op: "FLASH_ATTN_EXT",
    build: (b) => {
      const q = b.newTensor(F32, [hs, nb, nh, 1], "q");
      const k = b.newTensor(kvType, [hs, kv, nh, 1], "k");
      const v = b.newTensor(kvType, [hs, kv, nh, 1], "v");
      const mask = b.newTensor(F16, [kv, nb, 1, 1], "mask");
      return b.flashAttnExt(q, k, v, mask, 1 / Math.sqrt(hs));
    },
    flops: 2 * nb * nh * kv * (hs + hs),
    cudaUs,
  };
}

/** CPY of a transposed f32 view into a contiguous tensor (test_cpy with transpose_src). */
export function cpyTransposedCase(ne0: number, ne1: number): OpCase {
  return {
    name: `CPY(type=f32,ne=[${ne0},${ne1},1,1],transpose_src=1)`,
    op: "CPY",
    build: (b) => {
      const a = b.transpose(b.newTensor(F32, [ne0, ne1], "src"));
      return b.cpy(a, b.newTensor(F32, [...a.ne], "dst"));
    },
    flops: 0,
  };
}

/** SWIGLU of one f32 tensor holding both halves (test_glu with ne0 = 2·width). */
export function swigluCase(width: number, rows: number, cudaUs?: number): OpCase {
  return {
    name: `SWIGLU(type=f32,ne=[${2 * width},${rows},1,1])`,
    op: "GLU",
    build: (b) => b.swiglu(b.newTensor(F32, [2 * width, rows], "a")),
    flops: 0,
    cudaUs,
  };
}

/** Issue 4's anchor shapes, with ggml-cuda's H100 figures where the issue gives them. */
export function presetCases(): OpCase[] {
  return [
    mulMatCase(F16, 4096, 14336, 1, 40.7),
    mulMatCase(BF16, 4096, 14336, 1, 40.2),
    mulMatCase(F32, 4096, 14336, 1, 77),
    mulMatCase(F16, 4096, 14336, 8),
    mulMatCase(F16, 4096, 14336, 512, 140),
    mulMatCase(BF16, 4096, 14336, 512),
    softMaxCase([4096, 4096, 5, 1], 316),
    flashAttnCase(128, 8, 16384, 1, F16, 28.7),
    cpyTransposedCase(786432, 256),
    swigluCase(17408, 512, 44),
  ];
}

/** Random bytes of `t`'s type in [-1, 1) for floats (never zeros), small integers otherwise. */
function randomBytes(t: Tensor, n: number, seed: number): Uint8Array {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) / 4294967296) * 2 - 1;
  };
  const out = new Uint8Array(n);
  const dv = new DataView(out.buffer);
  if (t.type === F32) { for (let i = 0; i + 4 <= n; i += 4) dv.setFloat32(i, next(), true); }
  else if (t.type === F16) { for (let i = 0; i + 2 <= n; i += 2) dv.setFloat16(i, next(), true); }
  else if (t.type === BF16) {
    const f = new Float32Array(1), u = new Uint32Array(f.buffer);
    for (let i = 0; i + 2 <= n; i += 2) {
      f[0] = next();
      dv.setUint16(i, u[0] >>> 16, true);
    }
  } else for (let i = 0; i < n; i++) out[i] = Math.floor((next() + 1) * 4);
  return out;
}

/** Fills every leaf with data in chunks of at most 64 MiB (one set per chunk). */
async function fillLeaves(g: Graph): Promise<void> {
  let seed = 12345;
  for (const t of g.tensors) {
    if (t.op !== GgmlOp.NONE || t.viewSrc || !t.buffer) continue;
    const size = nbytes(t);
    const chunk = 64 << 20;
    for (let o = 0; o < size; o += chunk) {
      const n = Math.min(chunk, size - o);
      await t.buffer.set(t.offset + o, randomBytes(t, n, seed++));
    }
  }
}

/** A graph and the memory it lives in, on one device. */
interface Placed {
  graph: Graph;
  buffer: DeviceBuffer | null;
}

/** Builds `c` once, places it on `dev`, fills its sources and repeats the node `reps` times. */
async function place(dev: Device, c: OpCase, reps: number): Promise<Placed> {
  const b = new GraphBuilder();
  const node = c.build(b);
  const g0 = b.build(node);
  const mem = await planMemory(g0, dev);
  const buffer = mem.size > 0 ? await dev.allocBuffer(mem.size) : null;
  if (mem.size > 0 && !buffer) {
    throw new Error(`${dev.name}: cannot allocate ${mem.size} bytes for ${c.name}`);
  }
  bindMemory(g0, buffer, mem);
  for (const n of g0.nodes) {
    if (!dev.supportsOp(n)) throw new Error(`${dev.name} does not run ${c.name}`);
  }
  await fillLeaves(g0);
  const copies: Tensor[] = [];
  for (let r = 1; r < reps; r++) copies.push({ ...node, id: newTensorId() });
  return { graph: newGraph([...g0.nodes, ...copies]), buffer };
}

/** Seconds for `runs` plan runs followed by one synchronize. */
async function timeRuns(dev: Device, plan: Plan, runs: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) await dev.planCompute(plan);
  await dev.synchronize();
  return (performance.now() - t0) / 1000;
}

/**
 * Seconds per plan run: k runs and 2k runs, each closed by one wait, differenced (k grows until
 * the k-run batch takes at least `minSeconds`).
 */
export async function secondsPerRun(dev: Device, plan: Plan, minSeconds: number): Promise<[number, number]> {
  await timeRuns(dev, plan, 2); // warm up: pipelines, caches, clocks
  let k = 1;
  let t = await timeRuns(dev, plan, k);
  while (t < minSeconds && k < 1 << 16) {
    k = Math.min(1 << 16, Math.max(2 * k, Math.ceil(k * minSeconds / Math.max(t, 1e-4))));
    t = await timeRuns(dev, plan, k);
  }
  // three k-run and three 2k-run batches, alternated; medians differenced
  const t1s: number[] = [t], t2s: number[] = [];
  for (let i = 0; i < 3; i++) {
    t2s.push(await timeRuns(dev, plan, 2 * k));
    if (i < 2) t1s.push(await timeRuns(dev, plan, k));
  }
  const med = (x: number[]) => [...x].sort((a, b) => a - b)[1];
  const t2 = med(t2s);
  const per = (t2 - med(t1s)) / k;
  return [per > 0 ? per : t2 / (2 * k), 9 * k];
}

/** Times one case on `dev`. */
export async function benchCase(dev: Device, c: OpCase, reps: number, minSeconds: number): Promise<OpResult> {
  const p = await place(dev, c, reps);
  const plan = await dev.planCreate(p.graph);
  try {
    const [perRun, runs] = await secondsPerRun(dev, plan, minSeconds);
    const node = p.graph.nodes[p.graph.nodes.length - 1];
    const us = perRun / reps * 1e6;
    let bytes = nbytes(node);
    for (const s of node.src) if (s) bytes += nbytes(s);
    const r: OpResult = {
      name: c.name,
      op: c.op,
      device: dev.name,
      us,
      gbps: bytes / (us * 1e3),
      tflops: c.flops / (us * 1e6),
      reps,
      runs,
    };
    if (c.cudaUs) {
      r.cudaUs = c.cudaUs;
      r.vsCuda = us / c.cudaUs;
    }
    return r;
  } finally {
    await dev.planFree(plan);
    await p.buffer?.free();
  }
}

/** Costs of a graph of many small dependent nodes. */
export interface GraphCosts {
  device: string;
  nodes: number;
  /** Device time per node, µs (runs back to back, one wait per batch). */
  usPerNode: number;
  /** CPU time of one planCompute of the whole graph (encode + submit), µs. */
  encodeUs: number;
  /** Wall time of GRAPH_RECOMPUTE + one GET_TENSOR through a loopback graphwire server, µs. */
  roundTripUs: number;
}

/** A chain of `n` small dependent nodes (ADD, MUL, SCALE in turn) over [width] f32 vectors. */
export function chainCase(n: number, width: number): OpCase {
  return {
    name: `chain of ${n} ADD/MUL/SCALE over [${width}] f32`,
    op: "GRAPH",
    build: (b) => {
      const y = b.newTensor(F32, [width], "y");
      let x = b.newTensor(F32, [width], "x");
      for (let i = 0; i < n; i++) {
        x = i % 3 === 0 ? b.add(x, y) : i % 3 === 1 ? b.mul(x, y) : b.scale(x, 0.5);
      }
      return x;
    },
    flops: 0,
  };
}

/** Measures {@linkcode GraphCosts} on `dev` for a `n`-node chain. */
export async function benchGraph(dev: Device, n: number, minSeconds: number): Promise<GraphCosts> {
  const c = chainCase(n, 4096);
  const p = await place(dev, c, 1);
  const plan = await dev.planCreate(p.graph);
  let usPerNode: number, encodeUs: number;
  try {
    const [perRun] = await secondsPerRun(dev, plan, minSeconds);
    usPerNode = perRun / n * 1e6;
    // CPU side of a run: the planCompute call alone, a wait after each batch of 10
    let cpu = 0, count = 0;
    for (let batch = 0; batch < 5; batch++) {
      for (let i = 0; i < 10; i++) {
        const t0 = performance.now();
        await dev.planCompute(plan);
        cpu += performance.now() - t0;
        count++;
      }
      await dev.synchronize();
    }
    encodeUs = cpu / count * 1e3;
  } finally {
    await dev.planFree(plan);
    await p.buffer?.free();
  }
  // the same graph through a loopback server: GRAPH_RECOMPUTE + GET_TENSOR of the last node
  const server = startLocalServer([dev]);
  let roundTripUs = 0;
  try {
    const [remote] = await openRpcServer(server.endpoint);
    const q = await place(remote, c, 1);
    const rplan = await remote.planCreate(q.graph);
    const out = q.graph.nodes[q.graph.nodes.length - 1];
    const trip = async () => {
      await remote.planCompute(rplan);
      await out.buffer!.get(out.offset, nbytes(out));
    };
    for (let i = 0; i < 3; i++) await trip();
    const runs = 20;
    const t0 = performance.now();
    for (let i = 0; i < runs; i++) await trip();
    roundTripUs = (performance.now() - t0) / runs * 1e3;
    await remote.planFree(rplan);
    await q.buffer?.free();
    await remote.close();
  } finally {
    await server.close();
  }
  return { device: dev.name, nodes: n, usPerNode, encodeUs, roundTripUs };
}

const HELP = `graphwire bench ops [options]

  -d, --device NAME   device (cpu, webgpu, cuda:0, rpc:HOST:PORT/0); default: the best found
  --preset            issue 4's anchor shapes (the default when no --op is given)
  --op OP             MUL_MAT, SOFT_MAX, FLASH_ATTN_EXT, CPY, SWIGLU
  --type T            f32, f16, bf16 (MUL_MAT's a, FLASH_ATTN_EXT's K and V)
  -m, -n, -k N        MUL_MAT sizes as test-backend-ops names them (a: k×m, b: k×n)
  --ne A,B,C,D        SOFT_MAX / CPY / SWIGLU shape
  --hs N --nh N --kv N --nb N   FLASH_ATTN_EXT head size, heads, keys, queries
  --graph [N]         per-node costs of an N-node graph (default 1000) and the server round trip
  --reps N            copies of the op in one graph (default 50; 1 on cpu)
  --min-time S        seconds the timed batch lasts at least (default 0.3)
  --webgpu-provider P, --native-lib PATH, -t N   passed to device discovery
  --json              one JSON object per line instead of a table
`;

/** Entry point of `graphwire bench ops`. */
export async function benchOpsMain(argv: string[]): Promise<number> {
  // single-dash -m/-n/-k as test-backend-ops spells them
  const { values } = parseArgs({
    args: argv,
    options: {
      device: { type: "string", short: "d" },
      preset: { type: "boolean" },
      op: { type: "string" },
      type: { type: "string", default: "f32" },
      m: { type: "string", short: "m" },
      n: { type: "string", short: "n" },
      k: { type: "string", short: "k" },
      ne: { type: "string" },
      hs: { type: "string" },
      nh: { type: "string" },
      kv: { type: "string" },
      nb: { type: "string" },
      graph: { type: "string" },
      reps: { type: "string" },
      "min-time": { type: "string" },
      "webgpu-provider": { type: "string" },
      "native-lib": { type: "string" },
      threads: { type: "string", short: "t" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: false,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const int = (s: string | undefined, d: number) => {
    if (s === undefined) return d;
    const v = Number(s);
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`not a count: ${s}`);
    return v;
  };
  const [dev] = await selectDevices(values.device ? [values.device] : [], {
    webgpuProvider: values["webgpu-provider"],
    nativeLib: values["native-lib"],
    threads: values.threads ? int(values.threads, 1) : undefined,
  });
  const reps = int(values.reps, dev.kind === "cpu" ? 1 : 50);
  const minSeconds = values["min-time"] ? Number(values["min-time"]) : 0.3;
  if (!values.json) console.log(`device: ${dev.name} (${dev.description})`);

  try {
    if (values.graph !== undefined) {
      const g = await benchGraph(dev, int(values.graph || "1000", 1000), minSeconds);
      if (values.json) console.log(JSON.stringify(g));
      else {
        console.log(table(["graph", "device µs/node", "planCompute CPU µs", "RECOMPUTE+GET_TENSOR µs"], [[
          `${g.nodes} nodes`,
          g.usPerNode.toFixed(2),
          g.encodeUs.toFixed(0),
          g.roundTripUs.toFixed(0),
        ]]));
      }
      return 0;
    }
    const cases: OpCase[] = [];
    const ne = values.ne ? values.ne.split(",").map((s) => int(s, 1)) : [];
    const type = typeOf(values.type!);
    switch (values.op?.toUpperCase()) {
      case undefined:
        cases.push(...presetCases());
        break;
      case "MUL_MAT":
        cases.push(mulMatCase(type, int(values.m, 4096), int(values.k, 4096), int(values.n, 1)));
        break;
      case "SOFT_MAX":
        cases.push(softMaxCase(ne.length ? ne : [4096, 4096, 5, 1]));
        break;
      case "FLASH_ATTN_EXT":
        cases.push(
          flashAttnCase(
            int(values.hs, 128),
            int(values.nh, 8),
            int(values.kv, 16384),
            int(values.nb, 1),
            type,
          ),
        );
        break;
      case "CPY":
        cases.push(cpyTransposedCase(ne[0] ?? 786432, ne[1] ?? 256));
        break;
      case "SWIGLU":
        cases.push(swigluCase((ne[0] ?? 34816) / 2, ne[1] ?? 512));
        break;
      default:
        throw new Error(`--op ${values.op}: MUL_MAT, SOFT_MAX, FLASH_ATTN_EXT, CPY or SWIGLU`);
    }
    if (values.preset && values.op) cases.push(...presetCases());
    const rows: (string | number)[][] = [];
    for (const c of cases) {
      let r: OpResult;
      try {
        r = await benchCase(dev, c, reps, minSeconds);
      } catch (e) {
        if (values.json) {
          console.log(JSON.stringify({ name: c.name, device: dev.name, error: (e as Error).message }));
        } else rows.push([c.name, "-", "-", "-", "-", (e as Error).message]);
        continue;
      }
      if (values.json) console.log(JSON.stringify(r));
      else {
        rows.push([
          r.name,
          r.us.toFixed(1),
          r.gbps.toFixed(0),
          r.tflops ? r.tflops.toFixed(2) : "",
          r.cudaUs ? `${r.cudaUs} (${r.vsCuda!.toFixed(2)}×)` : "",
          `${r.reps}×${r.runs}`,
        ]);
      }
    }
    if (!values.json) {
      console.log(table(["case", "µs", "GB/s", "TFLOPS", "ggml-cuda H100 µs (ratio)", "ops×runs"], rows));
    }
    return 0;
  } finally {
    await dev.close();
  }
}
