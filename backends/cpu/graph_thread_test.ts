/**
 * The off-thread CPU device (graph_thread.ts): the same bits as the synchronous device with one
 * thread and with nodes split over helpers, the caller's event loop free while a graph runs,
 * kernel errors as rejections of the same type, computes queued, buffers freed mid-graph, abort,
 * and threads that stop when idle (a process that never closes its device still exits).
 */

import { DeviceError, UnsupportedOpError } from "../../protocol/errors.ts";
import { newGraph } from "../../protocol/graph/graph.ts";
import type { Tensor } from "../../protocol/graph/tensor.ts";
import { assert, assertEquals } from "../../tests/asserts.ts";
import type { CpuBuffer } from "./device.ts";
import { f32Param, GgmlOp, GgmlType, TestBed, UnaryOp } from "./testing.ts";

const { F32, F16, I32 } = GgmlType;

/** A few nodes of different kinds (split when the bed splits), on `tb`, inputs from `src` when given. */
function mixedGraph(
  tb: TestBed,
  src?: { bed: TestBed; inputs: Tensor[] },
): { inputs: Tensor[]; nodes: Tensor[] } {
  const v = (i: number) => src ? { values: src.bed.read(src.inputs[i]) } : {};
  const w = tb.tensor(F16, [64, 48, 2], v(0));
  const x = tb.tensor(F32, [64, 7, 2], v(1));
  const bias = tb.tensor(F32, [48], v(2));
  const ids = tb.tensor(I32, [5], src ? v(3) : { values: [3, 0, 6, 1, 6] });
  const mm = tb.node(GgmlOp.MUL_MAT, F32, [48, 7, 2], [w, x]);
  const add = tb.node(GgmlOp.ADD, F32, [48, 7, 2], [mm, bias]);
  const act = tb.node(GgmlOp.UNARY, F32, [48, 7, 2], [add], [UnaryOp.SILU]);
  const sm = tb.node(GgmlOp.SOFT_MAX, F32, [48, 7, 2], [act, null], [f32Param(0.5), f32Param(0)]);
  const rows = tb.node(GgmlOp.GET_ROWS, F32, [48, 5], [tb.tensor(F32, [48, 7], v(4)), ids]);
  const norm = tb.node(GgmlOp.RMS_NORM, F32, [48, 7, 2], [sm], [f32Param(1e-6)]);
  return { inputs: [w, x, bias, ids, rows.src[0]!], nodes: [mm, add, act, sm, rows, norm] };
}

/** MUL_MATs of n×n by n×n, `count` nodes in a row: a graph long enough to watch (a few ms per node). */
function longGraph(tb: TestBed, n: number, count: number): Tensor[] {
  const a = tb.tensor(F32, [n, n]), b = tb.tensor(F32, [n, n]);
  const out: Tensor[] = [];
  for (let i = 0; i < count; i++) out.push(tb.node(GgmlOp.MUL_MAT, F32, [n, n], [a, b]));
  return out;
}

Deno.test("off-thread cpu device: the synchronous device's bits, with one thread and split over two", async () => {
  const ref = new TestBed(1);
  const { inputs, nodes } = mixedGraph(ref);
  ref.run(...nodes);
  for (const threads of [1, 2]) {
    const tb = new TestBed(threads, { offThread: true });
    try {
      assert.ok(!tb.device.graphThreadStarted, "nothing starts before the first compute");
      const g = mixedGraph(tb, { bed: ref, inputs });
      const b = g.nodes[0].buffer as CpuBuffer;
      assert.ok(b.bytes.buffer instanceof SharedArrayBuffer, `shared memory with -t ${threads}`);
      const p = tb.device.compute(newGraph(g.nodes));
      assert.ok(p instanceof Promise, "compute returns a promise");
      await p;
      assert.ok(tb.device.graphThreadStarted);
      for (let i = 0; i < nodes.length; i++) {
        assertEquals(
          tb.read(g.nodes[i]),
          ref.read(nodes[i]),
          `node ${i} with -t ${threads} (seed ${ref.seed})`,
        );
      }
      // again through the same plan (sent as its number only), after new inputs
      const plan = tb.device.planCreate(newGraph(g.nodes));
      await tb.device.planCompute(plan);
      (g.inputs[2].buffer as CpuBuffer).clear(0);
      (inputs[2].buffer as CpuBuffer).clear(0);
      ref.run(...nodes);
      await tb.device.planCompute(plan);
      assertEquals(tb.read(g.nodes[5]), ref.read(nodes[5]), `recomputed with -t ${threads}`);
    } finally {
      tb.close();
    }
  }
  ref.close();
});

Deno.test("off-thread cpu device: the caller's event loop runs while a graph computes", async () => {
  const tb = new TestBed(1, { offThread: true });
  try {
    const nodes = longGraph(tb, 256, 40);
    await tb.compute(nodes[0]); // threads started
    let ticks = 0;
    const timer = setInterval(() => ticks++, 2);
    const t0 = performance.now();
    let timerAt = -1;
    setTimeout(() => timerAt = performance.now() - t0, 10);
    await tb.compute(...nodes);
    const ms = performance.now() - t0;
    clearInterval(timer);
    // a synchronous compute would have held both timers until it returned
    assert.ok(timerAt >= 0, `a 10 ms timer did not fire during the ${ms.toFixed(0)} ms graph`);
    assert.ok(ticks >= 3, `only ${ticks} interval ticks in ${ms.toFixed(0)} ms`);
  } finally {
    tb.close();
  }
});

Deno.test("off-thread cpu device: kernel errors reject with their type, from the graph thread or a helper", async () => {
  for (const threads of [1, 2]) {
    const tb = new TestBed(threads, { offThread: true });
    try {
      const src = tb.tensor(F32, [8, 4]);
      // four rows; with two threads the bad one is in the helper's half
      const ids = tb.tensor(I32, [4], { values: [0, 1, 2, 99] });
      const bad = tb.node(GgmlOp.GET_ROWS, F32, [8, 4], [src, ids]);
      const err = await tb.compute(bad).then(() => null, (e) => e);
      assert.ok(err instanceof DeviceError, `-t ${threads}: ${err}`);
      assert.match(
        err.message,
        threads === 1 ? /^GET_ROWS: row 99 outside/ : /^cpu worker: GET_ROWS: row 99/,
      );
      // a node without data fails on the graph thread as on the caller's
      const orphan = tb.node(GgmlOp.ADD, F32, [8, 4], [src, src]);
      orphan.buffer = null;
      await assert.rejects(() => tb.compute(orphan), DeviceError, "has no data");
      // an op no kernel runs is refused before anything is sent
      const unsupported = tb.node(GgmlOp.ADD, F32, [8, 4], [src, ids]);
      await assert.rejects(async () => await tb.device.compute(newGraph([unsupported])), UnsupportedOpError);
      // and the device computes on
      const ok = tb.node(GgmlOp.ADD, F32, [8, 4], [src, src]);
      await tb.compute(ok);
      assertEquals(tb.read(ok), tb.read(src).map((x) => x + x));
    } finally {
      tb.close();
    }
  }
});

Deno.test("off-thread cpu device: computes from several callers queue, each right", async () => {
  const tb = new TestBed(2, { offThread: true });
  const ref = new TestBed(1);
  try {
    const g1 = mixedGraph(ref), g2 = mixedGraph(ref);
    ref.run(...g1.nodes, ...g2.nodes);
    const o1 = mixedGraph(tb, { bed: ref, inputs: g1.inputs }),
      o2 = mixedGraph(tb, { bed: ref, inputs: g2.inputs });
    const long = longGraph(tb, 128, 10);
    const plan = tb.device.planCreate(newGraph(o1.nodes));
    await Promise.all([
      tb.compute(...long),
      tb.device.planCompute(plan),
      tb.compute(...o2.nodes),
      tb.device.planCompute(plan),
    ]);
    assertEquals(tb.read(o1.nodes[5]), ref.read(g1.nodes[5]));
    assertEquals(tb.read(o2.nodes[5]), ref.read(g2.nodes[5]));
    assertEquals(tb.read(o2.nodes[4]), ref.read(g2.nodes[4]));
    await tb.device.synchronize();
  } finally {
    tb.close();
    ref.close();
  }
});

Deno.test("off-thread cpu device: buffers freed while their graph runs touch nothing else", async () => {
  const tb = new TestBed(2, { offThread: true, parallelWork: 1 << 16 });
  const ref = new TestBed(1);
  try {
    const long = longGraph(tb, 192, 20);
    const g = mixedGraph(ref);
    ref.run(...g.nodes);
    const mine = mixedGraph(tb, { bed: ref, inputs: g.inputs });
    const running = tb.compute(...long);
    await new Promise((r) => setTimeout(r, 20));
    for (const t of [long[0].src[0]!, long[0].src[1]!, ...long]) (t.buffer as CpuBuffer).free();
    await running; // it had the memory and keeps it until it ends
    await tb.compute(...mine.nodes);
    for (let i = 0; i < g.nodes.length; i++) assertEquals(tb.read(mine.nodes[i]), ref.read(g.nodes[i]));
  } finally {
    tb.close();
    ref.close();
  }
});

Deno.test("off-thread cpu device: abort rejects computes in flight and queued at once, then computes again", async () => {
  const tb = new TestBed(2, { offThread: true, parallelWork: 1 << 16 });
  try {
    const long = longGraph(tb, 256, 40);
    await tb.compute(long[0]);
    const first = tb.compute(...long);
    const queued = tb.compute(...long);
    await new Promise((r) => setTimeout(r, 30));
    const t0 = performance.now();
    tb.device.abort();
    const [a, b] = await Promise.allSettled([first, queued]);
    const ms = performance.now() - t0;
    assert.ok(a.status === "rejected" && a.reason instanceof DeviceError, String(a.status));
    assert.ok(b.status === "rejected" && b.reason instanceof DeviceError, String(b.status));
    assert.match(a.reason.message, /abandoned/);
    assert.ok(ms < 50, `the computes were rejected after ${ms.toFixed(0)} ms`);
    assert.ok(!tb.device.graphThreadStarted);
    const x = tb.tensor(F32, [16]);
    const y = tb.node(GgmlOp.ADD, F32, [16], [x, x]);
    await tb.compute(y);
    assertEquals(tb.read(y), tb.read(x).map((v) => v + v));
    tb.close();
    await assert.rejects(() => tb.compute(y), DeviceError, "closed");
  } finally {
    tb.close();
  }
});

Deno.test("off-thread cpu device: the threads stop when idle and start again", async () => {
  const tb = new TestBed(2, { offThread: true, idleStopMs: 30 });
  try {
    const x = tb.tensor(F32, [64, 64]);
    const y = tb.node(GgmlOp.MUL_MAT, F32, [64, 64], [x, x]);
    await tb.compute(y);
    const first = tb.read(y);
    assert.ok(tb.device.graphThreadStarted);
    for (let i = 0; i < 100 && tb.device.graphThreadStarted; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(!tb.device.graphThreadStarted, "stopped after 30 ms without work");
    (y.buffer as CpuBuffer).clear(0);
    await tb.compute(y);
    assertEquals(tb.read(y), first);
  } finally {
    tb.close();
  }
});

Deno.test("off-thread cpu device: a process that never closes it exits once its threads are idle", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gw-offthread-" });
  try {
    const script = `${dir}/main.ts`;
    const testing = new URL("./testing.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { GgmlOp, GgmlType, TestBed } from ${JSON.stringify(testing)};
const tb = new TestBed(2, { offThread: true, idleStopMs: 200 });
const x = tb.tensor(GgmlType.F32, [64, 64]);
const y = tb.node(GgmlOp.MUL_MAT, GgmlType.F32, [64, 64], [x, x]);
await tb.compute(y);
console.log(tb.device.graphThreadStarted ? "computed" : "not started?");
`,
    );
    const t0 = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-sys", "--no-lock", script],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(30_000),
    }).output();
    const ms = performance.now() - t0;
    const said = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, said);
    assert.match(said, /^computed/);
    assert.ok(ms < 15_000, `the process took ${ms.toFixed(0)} ms to exit`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("off-thread cpu device: small graphs run on the caller's thread when nothing is queued, in order", async () => {
  // the product's threshold (INLINE_WORK), not the tests' 0
  const tb = new TestBed(1, { offThread: true, inlineWork: undefined });
  try {
    const x = tb.tensor(F32, [8, 4]);
    const small = tb.node(GgmlOp.ADD, F32, [8, 4], [x, x]);
    await tb.compute(small);
    assertEquals(tb.read(small), tb.read(x).map((v) => v + v));
    assertEquals(tb.device.inlinedGraphs, 1);
    assert.ok(!tb.device.graphThreadStarted, "a 32-element ADD started the graph thread");
    // an inline kernel error is a rejection of the same type, as from the graph thread
    const ids = tb.tensor(I32, [2], { values: [0, 99] });
    const bad = tb.node(GgmlOp.GET_ROWS, F32, [8, 2], [x, ids]);
    const p = tb.compute(bad);
    assert.ok(p instanceof Promise);
    await assert.rejects(() => p, DeviceError, "row 99 outside");
    // a graph with more work goes to the graph thread
    const long = longGraph(tb, 96, 8);
    const running = tb.compute(...long);
    assert.ok(tb.device.graphThreadStarted);
    // a small graph behind it waits its turn there, and reads what the long graph wrote
    const after = tb.node(GgmlOp.ADD, F32, [96, 96], [long[7], long[7]]);
    const inlined = tb.device.inlinedGraphs;
    await Promise.all([running, tb.compute(after)]);
    assertEquals(tb.device.inlinedGraphs, inlined);
    assertEquals(tb.read(after), tb.read(long[7]).map((v) => v + v));
    assert.ok(tb.read(long[7]).some((v) => v !== 0));
  } finally {
    tb.close();
  }
});
