/**
 * The RPC server on an off-thread CPU device (what `rpc-server -d cpu` serves), end to end over
 * loopback TCP: a long graph on one connection holds up no other connection, its results are the
 * synchronous device's; a kernel error ends only its connection; two connections computing at once
 * are both right; a connection that leaves mid-graph harms nothing; closing the server (Ctrl+C)
 * does not wait for the graph, in process and as the CLI.
 */

import { CpuDevice } from "../backends/cpu/mod.ts";
import { TestBed } from "../backends/cpu/testing.ts";
import { RpcConnection } from "../protocol/client.ts";
import { GgmlOp } from "../protocol/graph/ops.ts";
import { GgmlType } from "../protocol/graph/types.ts";
import type { RpcTensor } from "../protocol/wire/tensor.ts";
import { assert, assertEquals } from "./asserts.ts";
import {
  bytesF32,
  f32Bytes,
  readBanner,
  remoteBuffer,
  startServer,
  type TestServer,
  until,
  wireTensor,
} from "./helpers.ts";

const { F32, I32 } = GgmlType;

/** Inputs of n×n MUL_MATs: small integers, so that every order of summing gives the same f32. */
function matrix(n: number, salt: number): Float32Array {
  return Float32Array.from({ length: n * n }, (_, i) => ((i * 7 + salt) % 5) - 2);
}

/** `count` MUL_MATs of x (n×n) by y (n×n) into outputs of their own, on connection `c`. */
async function mulMats(c: RpcConnection, n: number, count: number, salt = 1) {
  const bytes = n * n * 4;
  const buf = await remoteBuffer(c, (2 + count) * bytes);
  const x = wireTensor(buf, 0, F32, [n, n]);
  const y = wireTensor(buf, bytes, F32, [n, n]);
  await c.setTensor(x, 0, f32Bytes(matrix(n, salt)));
  await c.setTensor(y, 0, f32Bytes(matrix(n, salt + 3)));
  const outs: RpcTensor[] = [];
  for (let i = 0; i < count; i++) {
    const z = wireTensor(buf, (2 + i) * bytes, F32, [n, n], { op: GgmlOp.MUL_MAT });
    z.src[0] = x.id;
    z.src[1] = y.id;
    outs.push(z);
  }
  return { graph: { device: 0, nodeIds: outs.map((z) => z.id), tensors: [x, y, ...outs] }, outs, bytes };
}

/** The same MUL_MAT on a synchronous CPU device: the reference. */
function reference(n: number, salt = 1): number[] {
  const tb = new TestBed(1);
  try {
    const x = tb.tensor(F32, [n, n], { values: matrix(n, salt) });
    const y = tb.tensor(F32, [n, n], { values: matrix(n, salt + 3) });
    const z = tb.node(GgmlOp.MUL_MAT, F32, [n, n], [x, y]);
    tb.run(z);
    return tb.read(z);
  } finally {
    tb.close();
  }
}

function offThreadServer(threads = 2): { s: TestServer; dev: CpuDevice } {
  const dev = new CpuDevice({ threads, offThread: true });
  return { s: startServer({}, [dev]), dev };
}

Deno.test("off-thread cpu: while one connection computes a long graph, others are answered at once", async () => {
  const { s, dev } = offThreadServer();
  const a = await s.connect();
  try {
    const n = 384;
    const { graph, outs, bytes } = await mulMats(a, n, 90); // over a second on 2 cores
    await a.graphCompute({ ...graph, nodeIds: [outs[0].id] }); // threads started
    await a.getTensor(outs[0], 0, 4);

    const t0 = performance.now();
    await a.graphCompute(graph);
    let aDone = 0;
    const results = a.getTensor(outs[89], 0, bytes).then((r) => {
      aDone = performance.now() - t0;
      return r;
    });
    await new Promise((r) => setTimeout(r, 20));
    const tb = performance.now();
    const b = await s.connect(); // HELLO
    const mem = await b.getDeviceMemory(0);
    assertEquals(await b.deviceCount(), 1);
    const bMs = performance.now() - tb;
    const bAt = performance.now() - t0;
    b.close();
    assert.ok(mem.total > 0n);
    assertEquals(aDone, 0, `B's HELLO, GET_DEVICE_MEMORY and DEVICE_COUNT came after A's graph (${bMs} ms)`);
    const last = bytesF32(await results);
    assert.ok(
      bMs * 4 < aDone,
      `B waited ${bMs.toFixed(0)} ms (answered ${bAt.toFixed(0)} ms in) of A's ${aDone.toFixed(0)} ms graph`,
    );
    console.log(`B answered in ${bMs.toFixed(1)} ms while A's graph ran ${aDone.toFixed(0)} ms`);
    const want = reference(n);
    assertEquals(last, want, "A's last result is the synchronous device's");
    assertEquals(bytesF32(await a.getTensor(outs[7], 0, bytes)), want, "and so is another");
  } finally {
    a.close();
    await s.stop();
    dev.close();
  }
});

Deno.test("off-thread cpu: a kernel error ends only its connection; the server serves on", async () => {
  const { s, dev } = offThreadServer();
  const bad = await s.connect();
  const good = await s.connect();
  try {
    const buf = await remoteBuffer(bad, 4096);
    const src = wireTensor(buf, 0, F32, [8, 4]);
    const ids = wireTensor(buf, 256, I32, [4]);
    const rows = wireTensor(buf, 512, F32, [8, 4], { op: GgmlOp.GET_ROWS });
    rows.src[0] = src.id;
    rows.src[1] = ids.id;
    await bad.setTensor(ids, 0, new Uint8Array(Int32Array.from([0, 1, 2, 99]).buffer));
    await bad.graphCompute({ device: 0, nodeIds: [rows.id], tensors: [src, ids, rows] });
    await assert.rejects(() => bad.deviceCount());
    assert.ok(
      await until(() =>
        s.logs.some((l) => /closing connection: DeviceError: .*GET_ROWS: row 99 outside/.test(l))
      ),
      s.logs.join("\n"),
    );
    const { graph, outs, bytes } = await mulMats(good, 32, 2);
    await good.graphCompute(graph);
    assertEquals(bytesF32(await good.getTensor(outs[1], 0, bytes)), reference(32));
    assert.ok(await until(() => s.server.stats.active === 1), `${s.server.stats.active} connections open`);
    assertEquals(s.server.allocated(0), (2 + 2) * bytes, "the failed connection's memory was freed");
  } finally {
    bad.close();
    good.close();
    await s.stop();
    dev.close();
  }
});

Deno.test("off-thread cpu: two connections computing at once are both right", async () => {
  const { s, dev } = offThreadServer();
  const a = await s.connect();
  const b = await s.connect();
  try {
    const n = 96;
    const ga = await mulMats(a, n, 6, 1);
    const gb = await mulMats(b, n, 6, 2);
    const run = async (c: RpcConnection, g: typeof ga) => {
      const out: number[][] = [];
      for (let i = 0; i < 3; i++) {
        await c.graphCompute(g.graph);
        out.push(bytesF32(await c.getTensor(g.outs[5], 0, g.bytes)));
        await c.graphRecompute(0);
        out.push(bytesF32(await c.getTensor(g.outs[2], 0, g.bytes)));
      }
      return out;
    };
    const [ra, rb] = await Promise.all([run(a, ga), run(b, gb)]);
    const wa = reference(n, 1), wb = reference(n, 2);
    for (const r of ra) assertEquals(r, wa);
    for (const r of rb) assertEquals(r, wb);
  } finally {
    a.close();
    b.close();
    await s.stop();
    dev.close();
  }
});

Deno.test("off-thread cpu: a connection that leaves mid-graph harms no other", async () => {
  const { s, dev } = offThreadServer();
  const a = await s.connect();
  const b = await s.connect();
  try {
    const gb = await mulMats(b, 64, 2, 5);
    const ga = await mulMats(a, 256, 16);
    await a.graphCompute(ga.graph);
    await new Promise((r) => setTimeout(r, 30));
    a.close(); // its buffers are freed while the graph thread still computes into them
    await b.graphCompute(gb.graph);
    assertEquals(bytesF32(await b.getTensor(gb.outs[1], 0, gb.bytes)), reference(64, 5));
    assert.ok(await until(() => s.server.stats.active === 1, 10_000), `${s.server.stats.active} open`);
    assertEquals(s.server.allocated(0), 4 * gb.bytes, "A's memory was freed, B's kept");
    await b.graphRecompute(0);
    assertEquals(bytesF32(await b.getTensor(gb.outs[0], 0, gb.bytes)), reference(64, 5));
  } finally {
    a.close();
    b.close();
    await s.stop();
    dev.close();
  }
});

Deno.test("off-thread cpu: closing the server mid-graph does not wait for the graph", async () => {
  const { s, dev } = offThreadServer();
  const a = await s.connect();
  try {
    const { graph, outs } = await mulMats(a, 384, 60);
    await a.graphCompute({ ...graph, nodeIds: [outs[0].id] });
    await a.getTensor(outs[0], 0, 4);
    const t0 = performance.now();
    await a.graphCompute(graph);
    await new Promise((r) => setTimeout(r, 40));
    const t1 = performance.now();
    await s.stop();
    const ms = performance.now() - t1;
    assert.ok(
      ms < 500,
      `the server took ${ms.toFixed(0)} ms to stop, ${(t1 - t0).toFixed(0)} ms into the graph`,
    );
    assert.ok(
      s.logs.some((l) => /closing connection: DeviceError: cpu: graph abandoned/.test(l)),
      s.logs.join("\n"),
    );
  } finally {
    a.close();
    dev.close();
  }
});

Deno.test("rpc-server -d cpu exits at once on SIGINT while a graph computes", async () => {
  const main = new URL("../cli/main.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-env",
      "--allow-sys",
      main,
      "rpc-server",
      "-d",
      "cpu",
      "-p",
      "0",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const banner = await readBanner(child.stdout);
  const stderr = new Response(child.stderr).text();
  let c: RpcConnection | null = null;
  try {
    const endpoint = /endpoint\s*:\s*(\S+)/.exec(banner)?.[1];
    assert.ok(endpoint, banner);
    c = await RpcConnection.connect(endpoint);
    // some 10 s of graph on this machine (2 cores)
    const { graph, outs } = await mulMats(c, 512, 100);
    await c.graphCompute({ ...graph, nodeIds: [outs[0].id] });
    await c.getTensor(outs[0], 0, 4);
    await c.graphCompute(graph);
    await new Promise((r) => setTimeout(r, 200));
    const t0 = performance.now();
    child.kill("SIGINT");
    const status = await child.status;
    const ms = performance.now() - t0;
    assertEquals(status.code, 0, await stderr);
    assert.ok(ms < 2000, `rpc-server took ${ms.toFixed(0)} ms to exit after SIGINT`);
  } finally {
    c?.close();
    try {
      child.kill("SIGKILL");
    } catch {
      // exited
    }
    await child.status;
    await child.stdout.cancel().catch(() => {});
    await stderr;
  }
});
