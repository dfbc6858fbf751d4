/**
 * Model-level benchmarking, as llama-bench does it, over any devices (local or remote): the bench
 * model's weights placed by split ratios and uploaded once, then tests — `ppN` (a prompt of N
 * tokens in ubatches), `tgN` (N tokens generated one at a time), `ppN+tgM` — each run once to warm
 * up and then `reps` times, timed to the logits read back. Besides tokens per second it counts
 * what only a protocol tool sees: bytes and commands on the wire per token, and how many graphs
 * were re-run with GRAPH_RECOMPUTE.
 *
 * @example
 * ```ts
 * const mb = await ModelBench.load({ spec: parseModelSpec("tiny"), devices: [dev], kvSize: 256 });
 * const r = await mb.test(64, 0, 3); // pp64
 * await mb.close();
 * ```
 * @module
 */

import type { Device } from "../backends/device.ts";
import { RpcDevice } from "../backends/rpc/device.ts";
import { type ScheduledGraph, Scheduler, splitLayers } from "../backends/sched.ts";
import type { CommandStats, RpcConnection } from "../protocol/client.ts";
import { nbytes } from "../protocol/graph/tensor.ts";
import { GgmlType } from "../protocol/graph/types.ts";
import { Cmd } from "../protocol/wire/constants.ts";
import { LlamaModel, type Ubatch } from "./models/llama.ts";
import { kvWidth, type LlamaSpec } from "./models/spec.ts";
import { weightChunks } from "./models/weights.ts";
import type { DeviceBuffer } from "../backends/device.ts";

/** KV cells are used in steps of this many (llama.cpp's n_pad): n_kv = pad(used, 256). */
export const KV_PAD = 256;

/** Options of {@linkcode ModelBench.load}. */
export interface ModelBenchOptions {
  spec: LlamaSpec;
  /** Devices in split order. */
  devices: Device[];
  /** Split ratios per device (`-ts`); default equal. */
  ratios?: number[];
  /**
   * Flash attention; default: on when every device runs FLASH_ATTN_EXT for this model (remote
   * devices cannot be asked and count as able), as llama.cpp's `-fa auto`.
   */
  flashAttn?: boolean;
  /** Tokens per ubatch (default 512). */
  ubatch?: number;
  /** KV cache cells (default 512). */
  kvSize?: number;
  /** GRAPH_RECOMPUTE for unchanged graphs (default true). */
  reuse?: boolean;
  /**
   * Bytes per weight upload (SET_TENSOR); default 8 MiB — below ggml's 10 MiB hash threshold, so no
   * SET_TENSOR_HASH round trip and no FNV pass (about 200 MB/s in JS: 80 s for llama-8b). Above it,
   * every chunk is offered to the server's tensor cache first, as ggml's client does.
   */
  uploadChunk?: number;
  /** Called as weights upload: bytes done, bytes in all. */
  onUpload?: (done: number, total: number) => void;
}

/** Per-token wire figures of a test (zero for local devices). */
export interface WireStats {
  bytesSentPerToken: number;
  bytesReceivedPerToken: number;
  commandsPerToken: number;
  roundTripsPerToken: number;
  /** GRAPH_RECOMPUTE sent during the timed repetitions. */
  graphReuseHits: number;
  /** GRAPH_COMPUTE sent during the timed repetitions. */
  graphsSent: number;
  /** Per command name: count and bytes sent per token. */
  perCommand: Record<string, { countPerToken: number; bytesSentPerToken: number }>;
}

/** One test's result. */
export interface TestResult extends WireStats {
  /** "pp512", "tg128", "pp512+tg128". */
  test: string;
  nPrompt: number;
  nGen: number;
  reps: number;
  /** Mean of the per-repetition rates, and their sample standard deviation. */
  tokensPerS: number;
  stddev: number;
  /** Tokens per second of each repetition. */
  samples: number[];
}

/** The name llama-bench gives a test. */
export function testName(nPrompt: number, nGen: number): string {
  if (nPrompt && nGen) return `pp${nPrompt}+tg${nGen}`;
  return nPrompt ? `pp${nPrompt}` : `tg${nGen}`;
}

/** Smallest multiple of `m` at or above `n`. */
export function padTo(n: number, m: number): number {
  return Math.ceil(n / m) * m;
}

/** Mean and sample standard deviation. */
export function meanStd(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  if (xs.length < 2) return { mean, std: 0 };
  const v = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1);
  return { mean, std: Math.sqrt(v) };
}

const F16_NEG_INF = 0xfc00;

/**
 * Whether every device runs each node of the model's flash-attention graphs (`-fa auto`), probed
 * at one token and at a full ubatch.
 */
export function canFlashAttn(spec: LlamaSpec, devices: Device[], kvSize: number, ubatch = 512): boolean {
  const probe = new LlamaModel({ ...spec, nLayer: 1 }, { kvSize, flashAttn: true });
  const nodes = [1, Math.min(ubatch, kvSize)].flatMap((n) =>
    probe.buildUbatch(n, Math.min(kvSize, padTo(n, KV_PAD)), true).graph.nodes
  );
  return devices.every((d) => nodes.every((n) => d.supportsOp(n)));
}

/** The bench model loaded on its devices, ready to run tests. */
export class ModelBench {
  readonly spec: LlamaSpec;
  readonly model: LlamaModel;
  readonly sched: Scheduler;
  readonly devices: Device[];
  readonly ubatch: number;
  readonly kvSize: number;
  /** Whether attention runs as FLASH_ATTN_EXT. */
  readonly flashAttn: boolean;
  /** Connections to the servers of remote devices, once each. */
  readonly connections: RpcConnection[];
  #buffers: DeviceBuffer[];
  #graphs = new Map<string, { ub: Ubatch; run: ScheduledGraph }>();
  #tokenSeed = 1;

  private constructor(
    spec: LlamaSpec,
    model: LlamaModel,
    sched: Scheduler,
    buffers: DeviceBuffer[],
    ubatch: number,
  ) {
    this.spec = spec;
    this.model = model;
    this.sched = sched;
    this.devices = sched.devices;
    this.ubatch = ubatch;
    this.kvSize = model.opts.kvSize;
    this.flashAttn = model.opts.flashAttn;
    this.#buffers = buffers;
    this.connections = [
      ...new Set(
        sched.devices.filter((d): d is RpcDevice => d instanceof RpcDevice).map((d) => d.connection),
      ),
    ];
  }

  /** Places the model's weights and KV cache on the devices and uploads the weights. */
  static async load(opts: ModelBenchOptions): Promise<ModelBench> {
    const devices = opts.devices;
    const spec = opts.spec;
    const kvSize = opts.kvSize ?? 512;
    const layerDevices = devices.length > 1
      ? splitLayers(spec.nLayer, opts.ratios ?? devices.map(() => 1))
      : new Array(spec.nLayer + 1).fill(0);
    const flashAttn = opts.flashAttn ?? canFlashAttn(spec, devices, kvSize, opts.ubatch ?? 512);
    const model = new LlamaModel(spec, { kvSize, flashAttn, layerDevices });
    const sched = new Scheduler(devices);
    for (const c of devices) {
      if (c instanceof RpcDevice) c.connection.reuse.enabled = opts.reuse ?? true;
    }
    const { weights, caches } = model.tensorsByDevice(devices.length);
    const buffers: DeviceBuffer[] = [];
    try {
      for (let d = 0; d < devices.length; d++) {
        if (weights[d].length) buffers.push(...await sched.place(weights[d], d));
        if (caches[d].length) {
          const cb = await sched.place(caches[d], d);
          // Cells never written must hold finite values: the mask zeroes them, NaN would not vanish.
          for (const b of cb) await b.clear(0);
          buffers.push(...cb);
        }
      }
      const total = model.weights.reduce((a, w) => a + nbytes(w.tensor), 0);
      let done = 0;
      opts.onUpload?.(0, total);
      for (let i = 0; i < model.weights.length; i++) {
        const w = model.weights[i];
        const srcIndex = w.copyOf ? model.weights.findIndex((x) => x.tensor === w.copyOf) : i;
        const init = { ...model.weights[srcIndex], tensor: w.tensor };
        let at = 0;
        for (const chunk of weightChunks(init, spec.seed, srcIndex, opts.uploadChunk ?? 8 << 20)) {
          await w.tensor.buffer!.set(w.tensor.offset + at, chunk);
          at += chunk.length;
          done += chunk.length;
          opts.onUpload?.(done, total);
        }
      }
      // A round trip so that every upload has landed before anything is timed.
      for (const d of devices) await d.memory();
    } catch (e) {
      for (const b of buffers) await b.free();
      throw e;
    }
    return new ModelBench(spec, model, sched, buffers, opts.ubatch ?? 512);
  }

  /** The scheduled graph of one ubatch shape, built and placed once. */
  async #graph(
    nTokens: number,
    nKv: number,
    withOutput: boolean,
  ): Promise<{ ub: Ubatch; run: ScheduledGraph }> {
    const key = `${nTokens}/${nKv}/${withOutput}`;
    let g = this.#graphs.get(key);
    if (!g) {
      const ub = this.model.buildUbatch(nTokens, nKv, withOutput);
      const run = await this.sched.schedule(ub.graph, { placement: this.model.placement(ub) });
      g = { ub, run };
      this.#graphs.set(key, g);
    }
    return g;
  }

  /** Frees every prepared graph (their activation buffers). */
  async clearGraphs(): Promise<void> {
    for (const g of this.#graphs.values()) await g.run.free();
    this.#graphs.clear();
  }

  /**
   * Runs `tokens` at positions pos0.. in ubatches, each token attending to every earlier cell.
   * Returns the last token's logits when `wantLogits` (reading them waits for the work).
   */
  async decode(tokens: ArrayLike<number>, pos0: number, wantLogits: boolean): Promise<Float32Array | null> {
    const n = tokens.length;
    if (pos0 + n > this.kvSize) {
      throw new RangeError(`${pos0 + n} tokens exceed the KV cache of ${this.kvSize}`);
    }
    let logits: Float32Array | null = null;
    for (let i = 0; i < n; i += this.ubatch) {
      const nt = Math.min(this.ubatch, n - i);
      const p0 = pos0 + i;
      const nKv = Math.min(this.kvSize, padTo(p0 + nt, KV_PAD));
      const last = i + nt === n;
      const { ub, run } = await this.#graph(nt, nKv, last && wantLogits);
      const inp = ub.inputs;
      const tok = new Int32Array(nt), pos = new Int32Array(nt), kIdx = new BigInt64Array(nt);
      for (let t = 0; t < nt; t++) {
        tok[t] = tokens[i + t];
        pos[t] = p0 + t;
        kIdx[t] = BigInt(p0 + t);
      }
      const writes = [
        run.setInput(inp.tokens, new Uint8Array(tok.buffer)),
        run.setInput(inp.pos, new Uint8Array(pos.buffer)),
        run.setInput(inp.kIdx, new Uint8Array(kIdx.buffer)),
        run.setInput(inp.mask, this.#mask(nt, nKv, p0, inp.mask.type === GgmlType.F32)),
      ];
      if (inp.vIdx) {
        const kv = kvWidth(this.spec);
        const v = new BigInt64Array(kv * nt);
        for (let t = 0; t < nt; t++) {
          for (let j = 0; j < kv; j++) v[t * kv + j] = BigInt(j * this.kvSize + p0 + t);
        }
        writes.push(run.setInput(inp.vIdx, new Uint8Array(v.buffer)));
      }
      await Promise.all(writes);
      await run.compute();
      if (ub.logits) {
        logits = new Float32Array(nbytes(ub.logits) / 4);
        await run.readInto(ub.logits, new Uint8Array(logits.buffer));
      }
    }
    return logits;
  }

  /** The causal mask of a ubatch: 0 where cell ≤ the token's position, else -inf. */
  #mask(nTokens: number, nKv: number, p0: number, f32: boolean): Uint8Array {
    if (f32) {
      const m = new Float32Array(nKv * nTokens);
      for (let t = 0; t < nTokens; t++) m.fill(-Infinity, t * nKv + p0 + t + 1, (t + 1) * nKv);
      return new Uint8Array(m.buffer);
    }
    const m = new Uint16Array(nKv * nTokens);
    for (let t = 0; t < nTokens; t++) m.fill(F16_NEG_INF, t * nKv + p0 + t + 1, (t + 1) * nKv);
    return new Uint8Array(m.buffer);
  }

  /** The logits of the last of `tokens`, run as a prompt from an empty context. */
  async logits(tokens: ArrayLike<number>): Promise<Float32Array> {
    return (await this.decode(tokens, 0, true))!;
  }

  /** `n` deterministic pseudo-random token ids (llama-bench feeds random tokens too). */
  randomTokens(n: number): Int32Array {
    const out = new Int32Array(n);
    let s = this.#tokenSeed = (Math.imul(this.#tokenSeed, 1103515245) + 12345) >>> 0;
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      out[i] = s % this.spec.nVocab;
    }
    return out;
  }

  /** One pass of a test: the prompt in ubatches, then `nGen` tokens one by one. */
  async #pass(prompt: Int32Array, gen: Int32Array): Promise<void> {
    if (prompt.length) await this.decode(prompt, 0, true);
    for (let i = 0; i < gen.length; i++) await this.decode(gen.subarray(i, i + 1), prompt.length + i, true);
  }

  /**
   * Runs test ppN / tgM / ppN+tgM: a warm-up pass, then `reps` timed passes. Wire figures cover the
   * timed passes only.
   */
  async test(nPrompt: number, nGen: number, reps: number): Promise<TestResult> {
    if (nPrompt + nGen === 0) throw new RangeError("a test needs prompt or generated tokens");
    if (nPrompt + nGen > this.kvSize) {
      throw new RangeError(
        `${testName(nPrompt, nGen)} needs ${nPrompt + nGen} KV cells; the cache has ${this.kvSize}`,
      );
    }
    const prompt = this.randomTokens(nPrompt), gen = this.randomTokens(nGen);
    // llama-bench warms up with the prompt, or a single token for generation tests.
    if (nPrompt) await this.decode(prompt, 0, true);
    else await this.decode(gen.subarray(0, 1), 0, true);
    for (const c of this.connections) c.resetStats();
    const samples: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      await this.#pass(prompt, gen);
      const s = (performance.now() - t0) / 1000;
      samples.push((nPrompt + nGen) / s);
    }
    const { mean, std } = meanStd(samples);
    const wire = this.#wire((nPrompt + nGen) * reps);
    await this.clearGraphs();
    return {
      test: testName(nPrompt, nGen),
      nPrompt,
      nGen,
      reps,
      tokensPerS: mean,
      stddev: std,
      samples,
      ...wire,
    };
  }

  #wire(tokens: number): WireStats {
    const per = new Map<number, CommandStats>();
    const total = { count: 0, bytesSent: 0, bytesReceived: 0, roundTrips: 0 };
    for (const c of this.connections) {
      for (const [cmd, s] of c.stats) {
        const p = per.get(cmd) ?? { count: 0, bytesSent: 0, bytesReceived: 0, roundTrips: 0 };
        p.count += s.count;
        p.bytesSent += s.bytesSent;
        p.bytesReceived += s.bytesReceived;
        p.roundTrips += s.roundTrips;
        per.set(cmd, p);
        total.count += s.count;
        total.bytesSent += s.bytesSent;
        total.bytesReceived += s.bytesReceived;
        total.roundTrips += s.roundTrips;
      }
    }
    const perCommand: WireStats["perCommand"] = {};
    for (const [cmd, s] of [...per].sort((a, b) => a[0] - b[0])) {
      const name = Object.entries(Cmd).find(([, v]) => v === cmd)?.[0] ?? `cmd#${cmd}`;
      perCommand[name] = { countPerToken: s.count / tokens, bytesSentPerToken: s.bytesSent / tokens };
    }
    return {
      bytesSentPerToken: total.bytesSent / tokens,
      bytesReceivedPerToken: total.bytesReceived / tokens,
      commandsPerToken: total.count / tokens,
      roundTripsPerToken: total.roundTrips / tokens,
      graphReuseHits: per.get(Cmd.GRAPH_RECOMPUTE)?.count ?? 0,
      graphsSent: per.get(Cmd.GRAPH_COMPUTE)?.count ?? 0,
      perCommand,
    };
  }

  /** Frees graphs, weights and caches (the devices stay open). */
  async close(): Promise<void> {
    await this.clearGraphs();
    for (const b of this.#buffers) await b.free();
    this.#buffers = [];
  }
}
