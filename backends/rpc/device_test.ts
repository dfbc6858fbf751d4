import { startLocalServer } from "../../bench/local_server.ts";
import { GraphBuilder } from "../../protocol/graph/builder.ts";
import type { Tensor } from "../../protocol/graph/tensor.ts";
import { GgmlType } from "../../protocol/graph/types.ts";
import { Cmd } from "../../protocol/wire/constants.ts";
import { assert, assertRejects, rng } from "../../tests/asserts.ts";
import { CpuDevice } from "../cpu/device.ts";
import type { Device } from "../device.ts";
import { Scheduler } from "../sched.ts";
import { openRpcDevice, openRpcServer, parseRpcSpec, type RpcBuffer, RpcDevice } from "./mod.ts";
import { selectDevices } from "../all.ts";

function f32(values: number[] | Float32Array): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

/** y = 0.5 · (W x + b), W [8 → 5], x 3 columns. */
async function runSmallGraph(dev: Device, w: Float32Array, b: Float32Array, x: Float32Array, runs = 1) {
  const g = new GraphBuilder();
  const W = g.newTensor2d(GgmlType.F32, 8, 5, "W");
  const B = g.newTensor2d(GgmlType.F32, 5, 1, "b");
  const X = g.setInput(g.newTensor2d(GgmlType.F32, 8, 3, "x"));
  const out = g.scale(g.add(g.mulMat(W, X), B), 0.5);
  const graph = g.build(out);
  const sched = new Scheduler([dev]);
  const bufs = await sched.place([W, B], 0);
  await W.buffer!.set(W.offset, f32(w));
  await B.buffer!.set(B.offset, f32(b));
  const run = await sched.schedule(graph);
  await run.setInput(X, f32(x));
  const outs: Float32Array[] = [];
  for (let i = 0; i < runs; i++) {
    await run.compute();
    outs.push(new Float32Array((await run.read(out as Tensor)).slice().buffer));
  }
  await run.free();
  for (const buf of bufs) await buf.free();
  return outs;
}

function randoms(n: number, r: () => number): Float32Array {
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

Deno.test("rpc device: buffers set, get, memset, clear and copy on a remote server", async () => {
  const s = startLocalServer([new CpuDevice({ threads: 1 })]);
  try {
    const dev = await openRpcDevice(s.endpoint, 0);
    assert.equal(dev.name, `rpc:${s.endpoint}/0`);
    assert.equal(dev.alignment, 32);
    const a = (await dev.allocBuffer(256)) as RpcBuffer;
    const b = (await dev.allocBuffer(256)) as RpcBuffer;
    assert.ok(a && b);
    const data = Uint8Array.from({ length: 100 }, (_, i) => i + 1);
    await a.set(10, data);
    assert.deepEqual(await a.get(10, 100), data);
    await a.memset(20, 5, 0xee);
    assert.deepEqual([...await a.get(18, 8)], [9, 10, 0xee, 0xee, 0xee, 0xee, 0xee, 16]);
    assert.equal(await b.copyFrom(a, 10, 0, 100), true);
    assert.deepEqual(await b.get(0, 100), await a.get(10, 100));
    await b.clear(7);
    assert.deepEqual(await b.get(250, 6), new Uint8Array(6).fill(7));
    const local = new CpuDevice().allocBuffer(16)!;
    assert.equal(await b.copyFrom(local, 0, 0, 16), false, "copies from another device are refused");
    await a.free();
    await b.free();
    dev.close();
    assert.ok(dev.connection.closed, "closing the last device closes the connection");
  } finally {
    await s.close();
  }
});

Deno.test("rpc device: a graph computes as on the local cpu, and a rerun sends GRAPH_RECOMPUTE", async () => {
  const r = rng(Date.now());
  const w = randoms(40, r), b = randoms(5, r), x = randoms(24, r);
  const [want] = await runSmallGraph(new CpuDevice({ threads: 1 }), w, b, x);
  const s = startLocalServer([new CpuDevice({ threads: 1 })]);
  try {
    const dev = await openRpcDevice(s.endpoint, 0);
    const outs = await runSmallGraph(dev, w, b, x, 3);
    for (const o of outs) assert.deepEqual(o, want);
    const st = dev.connection.stats;
    assert.equal(st.get(Cmd.GRAPH_COMPUTE)?.count, 1);
    assert.equal(st.get(Cmd.GRAPH_RECOMPUTE)?.count, 2);
    assert.equal(st.get(Cmd.GRAPH_RECOMPUTE)?.bytesSent, 2 * (9 + 4));
    assert.equal(s.server.stats.recomputes, 2);

    dev.connection.resetStats();
    dev.connection.reuse.enabled = false;
    const again = await runSmallGraph(dev, w, b, x, 2);
    for (const o of again) assert.deepEqual(o, want);
    assert.equal(
      dev.connection.stats.get(Cmd.GRAPH_COMPUTE)?.count,
      2,
      "--no-reuse sends the graph each time",
    );
    assert.equal(dev.connection.stats.get(Cmd.GRAPH_RECOMPUTE), undefined);
    dev.close();
  } finally {
    await s.close();
  }
});

Deno.test("rpc device: uid-less graphs are compared by bytes", async () => {
  const r = rng(Date.now());
  const s = startLocalServer([new CpuDevice({ threads: 1 })]);
  try {
    const dev = await openRpcDevice(s.endpoint, 0);
    const g = new GraphBuilder();
    const a = g.newTensor1d(GgmlType.F32, 16, "a");
    const out = g.scale(a, 2);
    const graph = g.build(out);
    graph.uid = 0n;
    const sched = new Scheduler([dev]);
    const bufs = await sched.place([a], 0);
    await a.buffer!.set(a.offset, f32(randoms(16, r)));
    const run = await sched.schedule(graph);
    run.splits[0].graph.uid = 0n;
    await run.compute();
    await run.compute();
    assert.equal(dev.connection.stats.get(Cmd.GRAPH_RECOMPUTE)?.count, 1);
    await run.free();
    for (const b of bufs) await b.free();
    dev.close();
  } finally {
    await s.close();
  }
});

Deno.test("rpc provider: only named devices, never the best one", async () => {
  assert.deepEqual(parseRpcSpec("rpc:127.0.0.1:5/2"), { endpoint: "127.0.0.1:5", index: 2 });
  assert.equal(parseRpcSpec("rpc:127.0.0.1:5"), null);
  assert.equal(parseRpcSpec("cuda:0"), null);
  const [best] = await selectDevices([]);
  assert.notEqual(best.kind, "rpc");
  const s = startLocalServer([new CpuDevice({ threads: 1 }), new CpuDevice({ threads: 1 })]);
  try {
    const [d] = await selectDevices([`rpc:${s.endpoint}/1`]);
    assert.ok(d instanceof RpcDevice);
    assert.equal(d.index, 1);
    const all = await openRpcServer(s.endpoint);
    assert.equal(all.length, 2);
    assert.equal(all[1], d, "devices of one server are shared");
    for (const x of all) x.close();
  } finally {
    await s.close();
  }
});

Deno.test("rpc device: a graph the server refuses is named when the next answer fails", async () => {
  const s = startLocalServer([new CpuDevice({ threads: 1 })]);
  try {
    const dev = await openRpcDevice(s.endpoint, 0);
    const g = new GraphBuilder();
    const a = g.setInput(g.newTensor1d(GgmlType.F32, 16, "a"));
    const x = g.scale(a, 2);
    x.op = 56; // CONV_2D with a scale's sources: no device runs that
    const run = await new Scheduler([dev]).schedule(g.build(x));
    await run.setInput(a, new Uint8Array(64));
    await run.compute(); // GRAPH_COMPUTE has no answer: nothing fails yet
    await assertRejects(() => run.read(x), /probably refusing the GRAPH_COMPUTE before it/);
    assert.ok(dev.connection.closed);
    dev.close();
  } finally {
    await s.close();
  }
});
