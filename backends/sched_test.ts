import { startLocalServer } from "../bench/local_server.ts";
import { GraphBuilder } from "../protocol/graph/builder.ts";
import type { Tensor } from "../protocol/graph/tensor.ts";
import { GgmlType } from "../protocol/graph/types.ts";
import { Cmd } from "../protocol/wire/constants.ts";
import { assert, assertEquals, rng } from "../tests/asserts.ts";
import { planMemory } from "./alloc.ts";
import { CpuDevice } from "./cpu/device.ts";
import type { Device } from "./device.ts";
import { openRpcDevice, type RpcDevice } from "./rpc/mod.ts";
import { Scheduler, splitLayers } from "./sched.ts";

const N = 16, LAYERS = 4, TOKENS = 3;

function f32(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

interface Weights {
  w: Float32Array[];
  b: Float32Array[];
  x: Float32Array;
}

function randomWeights(seed: number): Weights {
  const r = rng(seed);
  const rand = (n: number) => Float32Array.from({ length: n }, () => (r() * 2 - 1) / 2);
  return {
    w: Array.from({ length: LAYERS }, () => rand(N * N)),
    b: Array.from({ length: LAYERS }, () => rand(N)),
    x: rand(N * TOKENS),
  };
}

/**
 * A layered graph: h ← 0.5·(W_l h + b_l) + h for each layer, with layer l's weights and nodes on
 * device `layerDev[l]`; returns the output after `runs` runs and the scheduled graph's splits.
 */
async function runLayers(devices: Device[], layerDev: number[], wts: Weights, runs = 1) {
  const g = new GraphBuilder();
  const x = g.setInput(g.newTensor2d(GgmlType.F32, N, TOKENS, "x"));
  const layerOf = new Map<Tensor, number>();
  const weights: Tensor[][] = devices.map(() => []);
  let h = x;
  const W: Tensor[] = [], B: Tensor[] = [];
  for (let l = 0; l < LAYERS; l++) {
    W.push(g.newTensor2d(GgmlType.F32, N, N, `w${l}`));
    B.push(g.newTensor1d(GgmlType.F32, N, `b${l}`));
    weights[layerDev[l]].push(W[l], B[l]);
    const before = g.nodes.length;
    const y = g.scale(g.add(g.mulMat(W[l], h), B[l]), 0.5);
    h = g.expand(g.add(y, h));
    for (const n of g.nodes.slice(before)) layerOf.set(n, layerDev[l]);
  }
  const graph = g.build(h);
  const sched = new Scheduler(devices);
  const bufs = [];
  for (let d = 0; d < devices.length; d++) bufs.push(...await sched.place(weights[d], d));
  for (let l = 0; l < LAYERS; l++) {
    await W[l].buffer!.set(W[l].offset, f32(wts.w[l]));
    await B[l].buffer!.set(B[l].offset, f32(wts.b[l]));
  }
  const run = await sched.schedule(graph, { placement: (n) => layerOf.get(n) });
  await run.setInput(x, f32(wts.x));
  let out = new Float32Array(0);
  for (let i = 0; i < runs; i++) {
    await run.compute();
    out = new Float32Array((await run.read(h)).slice().buffer);
  }
  // readInto lands the same bytes in an array of the caller's (from a server: without one between)
  const into = new Float32Array(out.length);
  await run.readInto(h, new Uint8Array(into.buffer));
  assertEquals(into, out);
  await assert.rejects(() => run.readInto(h, new Uint8Array(4 * out.length + 4)), /bytes, not/);
  const info = {
    splits: run.splits.map((s) => s.device.name),
    uids: run.splits.map((s) => s.graph.uid),
    stats: run.stats,
  };
  await run.free();
  for (const b of bufs) await b.free();
  return { out, ...info };
}

Deno.test("splitLayers follows llama.cpp's tensor-split rule", () => {
  assert.deepEqual(splitLayers(3, [1]), [0, 0, 0, 0]);
  assert.deepEqual(splitLayers(16, [1, 1]), [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual(splitLayers(4, [3, 1]), [0, 0, 0, 0, 1]);
  assert.deepEqual(splitLayers(4, [0, 1]), [1, 1, 1, 1, 1]);
});

Deno.test("sched: a graph split over two servers computes what one device computes", async () => {
  const wts = randomWeights(Date.now());
  const want = (await runLayers([new CpuDevice({ threads: 1 })], [0, 0, 0, 0], wts)).out;
  const a = startLocalServer([new CpuDevice({ threads: 1 })]);
  const b = startLocalServer([new CpuDevice({ threads: 1 })]);
  try {
    const da = await openRpcDevice(a.endpoint, 0);
    const db = await openRpcDevice(b.endpoint, 0);
    const r = await runLayers([da, db], [0, 1, 1, 0], wts, 3);
    assert.deepEqual(r.out, want);
    assert.deepEqual(r.splits, [da.name, db.name, da.name]);
    assert.equal(new Set(r.uids).size, 3, "every split has its own uid");
    assert.equal(r.stats.copies, 0);
    assert.equal(r.stats.getSets, 3 * 2, "activations cross servers by get + set");
    // split 1 and 3 alternate on server a, so only server b's split can be recomputed
    assert.equal(da.connection.stats.get(Cmd.GRAPH_RECOMPUTE), undefined);
    assert.equal(db.connection.stats.get(Cmd.GRAPH_RECOMPUTE)?.count, 2);
    da.close();
    db.close();
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("sched: two devices of one server copy with COPY_TENSOR; local cpu and a server mix", async () => {
  const wts = randomWeights(Date.now() + 1);
  const want = (await runLayers([new CpuDevice({ threads: 1 })], [0, 0, 0, 0], wts)).out;
  const s = startLocalServer([new CpuDevice({ threads: 1 }), new CpuDevice({ threads: 1 })]);
  try {
    const d0 = await openRpcDevice(s.endpoint, 0);
    const d1 = await openRpcDevice(s.endpoint, 1);
    const r = await runLayers([d0, d1], [0, 0, 1, 1], wts, 2);
    assert.deepEqual(r.out, want);
    assert.equal(r.stats.copies, 2);
    assert.equal(r.stats.getSets, 0);
    assert.equal(d0.connection.stats.get(Cmd.COPY_TENSOR)?.count, 2);
    assert.equal(
      d0.connection.stats.get(Cmd.GRAPH_RECOMPUTE)?.count,
      2,
      "one split per device: both recompute",
    );

    const mixed = await runLayers([new CpuDevice({ threads: 1 }), d1 as RpcDevice], [0, 1, 0, 1], wts);
    assert.deepEqual(mixed.out, want);
    d0.close();
    d1.close();
  } finally {
    await s.close();
  }
});

Deno.test("alloc: a node's memory is reused after its last reader", async () => {
  const g = new GraphBuilder();
  const x = g.setInput(g.newTensor1d(GgmlType.F32, 1024, "x"));
  let h = x;
  for (let i = 0; i < 10; i++) h = g.scale(h, 1.5);
  const graph = g.build(h);
  const dev = new CpuDevice({ threads: 1 });
  const plan = await planMemory(graph, dev);
  // input + two live activations at a time (the node being written and its source)
  assert.equal(plan.size, 3 * 4096);
  const r = new Scheduler([dev]);
  const run = await r.schedule(graph);
  const data = Float32Array.from({ length: 1024 }, (_, i) => i);
  await run.setInput(x, f32(data));
  await run.compute();
  const out = new Float32Array((await run.read(h)).slice().buffer);
  assert.equal(out[3], 3 * 1.5 ** 10);
});
