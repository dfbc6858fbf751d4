/**
 * End-to-end tests of the server over real loopback TCP, through graphwire's client.
 */

import { RpcConnection } from "../protocol/client.ts";
import { GgmlOp } from "../protocol/graph/ops.ts";
import { GgmlType } from "../protocol/graph/types.ts";
import { Cmd, HASH_THRESHOLD } from "../protocol/wire/constants.ts";
import { fnv1a64, hashHex } from "../protocol/wire/fnv.ts";
import { frameRequest } from "../protocol/wire/framing.ts";
import * as msg from "../protocol/wire/messages.ts";
import { connectTcp } from "../protocol/wire/transport.ts";
import { TensorCache } from "../protocol/cache/tensor_cache.ts";
import { assert, assertEquals } from "./asserts.ts";
import { bytesF32, f32Bytes, remoteBuffer, startServer, until, wireTensor } from "./helpers.ts";

Deno.test("HELLO, device facts and memory", async () => {
  const s = startServer();
  const c = await s.connect();
  try {
    assertEquals([c.version.major, c.version.minor, c.version.patch], [5, 1, 0]);
    assertEquals(c.version.caps, new Uint8Array(24));
    assertEquals(await c.deviceCount(), 1);
    assertEquals(await c.getAlignment(0), 32n);
    assert.ok((await c.getMaxSize(0)) > 0n);
    const m = await c.getDeviceMemory(0);
    assert.ok(m.total > 0n && m.free <= m.total);
  } finally {
    c.close();
    await s.stop();
  }
});

Deno.test("buffers: set, get, memset, clear, copy, free; handles are unguessable ids", async () => {
  const s = startServer();
  const c = await s.connect();
  try {
    const a = await remoteBuffer(c, 256);
    const b = await remoteBuffer(c, 256);
    assert.notEqual(a.handle, b.handle);
    assertEquals(a.base % 32n, 0n);
    const t = wireTensor(a, 32, GgmlType.F32, [8]);
    await c.setTensor(t, 0, f32Bytes([1, 2, 3, 4, 5, 6, 7, 8]));
    assertEquals(bytesF32(await c.getTensor(t, 4, 8)), [2, 3]);
    await c.memsetTensor(t, 8, 8, 0);
    assertEquals(bytesF32(await c.getTensor(t, 0, 32)), [1, 2, 0, 0, 5, 6, 7, 8]);
    const u = wireTensor(b, 64, GgmlType.F32, [8]);
    assertEquals(await c.copyTensor(t, u), true);
    assertEquals(bytesF32(await c.getTensor(u, 0, 32)), [1, 2, 0, 0, 5, 6, 7, 8]);
    await c.bufferClear(b.handle, 0);
    assertEquals(bytesF32(await c.getTensor(u, 0, 8)), [0, 0]);
    assertEquals(s.server.allocated(0), 512);
    await c.freeBuffer(a.handle);
    assertEquals(s.server.allocated(0), 256);
    assertEquals(await c.getAllocSize(0, u), 32n);
    await c.initTensor(u);
  } finally {
    c.close();
    await s.stop();
  }
});

Deno.test("large SET_TENSOR payloads are streamed to the device and checked before their data is read", async () => {
  const s = startServer();
  const c = await s.connect();
  try {
    const size = 9 << 20;
    const buf = await remoteBuffer(c, size + 64);
    const t = wireTensor(buf, 64, GgmlType.I8, [size]);
    const data = new Uint8Array(size).map((_, i) => (i * 131 + 17) & 0xff);
    await c.setTensor(t, 0, data);
    assertEquals(await c.getTensor(t, 0, size), data);
    // One byte too many: refused from the head alone, before the data is read.
    const probe = wireTensor(buf, 0, GgmlType.I8, [64]);
    await c.setTensor(probe, 0, new Uint8Array(64).fill(7));
    await c.setTensor(t, 1, new Uint8Array(size).fill(1)).catch(() => {});
    await assert.rejects(() => c.deviceCount());
    assert.ok(s.logs.some((l) => /SET_TENSOR: region .* outside its buffer/.test(l)), s.logs.join("\n"));
  } finally {
    c.close();
    await s.stop();
  }
});

for (
  const [label, reuseLimit] of [["", undefined], [", 1 MiB of reuse between them", 1 << 20], [
    ", no reuse",
    0,
  ]] as const
) {
  Deno.test(`SET_TENSOR and GET_TENSOR of changing sizes on two connections each carry their own bytes${label}`, async () => {
    // The server frames GET_TENSOR answers in one buffer per connection, reused from answer to
    // answer (up to 16 MiB; larger ones get their own): shrinking, growing and interleaving
    // connections must never show one answer's bytes in another. What connections keep is limited
    // for all of them together; past the limit, payloads get arrays of their own.
    const s = startServer({ reuseLimit });
    const a = await s.connect();
    const b = await s.connect();
    try {
      const size = 17 << 20;
      const fill = (n: number, seed: number) =>
        new Uint8Array(n).map((_, i) => (i * seed + (i >> 11)) & 0xff);
      const ba = await remoteBuffer(a, size);
      const bb = await remoteBuffer(b, size);
      const ta = wireTensor(ba, 0, GgmlType.I8, [size]);
      const tb = wireTensor(bb, 0, GgmlType.I8, [size]);
      const da = fill(size, 131);
      const db = fill(size, 197);
      // SET_TENSOR payloads are read into a scratch each connection reuses (grown as bytes arrive,
      // streamed uploads in 4 MiB chunks through it): pieces of changing sizes, interleaved
      const pieces = [[0, 5 << 20], [5 << 20, 7], [(5 << 20) + 7, 1 << 20], [(6 << 20) + 7, 3000]];
      pieces.push([pieces[3][0] + 3000, size - (pieces[3][0] + 3000)]);
      for (const [o, n] of pieces) {
        await Promise.all([
          a.setTensor(ta, o, da.subarray(o, o + n)),
          b.setTensor(tb, o, db.subarray(o, o + n)),
        ]);
      }
      for (const [offset, n] of [[0, 513024], [7, 9], [3, 1 << 20], [0, size], [101, 4096], [0, 513024]]) {
        const [ga, gb] = await Promise.all([a.getTensor(ta, offset, n), b.getTensor(tb, offset, n)]);
        assertEquals(ga, da.subarray(offset, offset + n), `connection a, ${n} bytes at ${offset}`);
        assertEquals(gb, db.subarray(offset, offset + n), `connection b, ${n} bytes at ${offset}`);
      }
      // the client can read an answer straight into a region of an array of the caller's
      const into = new Uint8Array(3 << 20).fill(0xee);
      await a.getTensorInto(ta, 12345, into.subarray(1 << 20, 2 << 20));
      assertEquals(into.subarray(1 << 20, 2 << 20), da.subarray(12345, 12345 + (1 << 20)));
      assert.ok(
        into.subarray(0, 1 << 20).every((x) => x === 0xee) && into.subarray(2 << 20).every((x) => x === 0xee),
      );
      assert.ok(
        s.server.reuseHeld <= (reuseLimit ?? 256 << 20),
        `${s.server.reuseHeld} bytes held for reuse`,
      );
      if (reuseLimit === undefined) assert.ok(s.server.reuseHeld >= 2 * (5 << 20)); // 1 MiB frames, 4 MiB scratch
    } finally {
      a.close();
      b.close();
      await s.stop();
    }
    // everything held for reuse goes back when the connections end
    assertEquals(s.server.reuseHeld, 0);
  });
}

Deno.test("GRAPH_COMPUTE runs a graph, GRAPH_RECOMPUTE reruns it with new inputs", async () => {
  const s = startServer();
  const c = await s.connect();
  try {
    const buf = await remoteBuffer(c, 1024);
    const x = wireTensor(buf, 0, GgmlType.F32, [4]);
    const y = wireTensor(buf, 32, GgmlType.F32, [4]);
    const z = wireTensor(buf, 64, GgmlType.F32, [4], { op: GgmlOp.ADD });
    z.src[0] = x.id;
    z.src[1] = y.id;
    await c.setTensor(x, 0, f32Bytes([1, 2, 3, 4]));
    await c.setTensor(y, 0, f32Bytes([10, 20, 30, 40]));
    await c.graphCompute({ device: 0, nodeIds: [z.id], tensors: [x, y, z] });
    assertEquals(bytesF32(await c.getTensor(z, 0, 16)), [11, 22, 33, 44]);
    await c.setTensor(x, 0, f32Bytes([0.5, 0.5, 0.5, 0.5]));
    await c.graphRecompute(0);
    assertEquals(bytesF32(await c.getTensor(z, 0, 16)), [10.5, 20.5, 30.5, 40.5]);
    // The same payload again reuses the stored plan.
    await c.graphCompute({ device: 0, nodeIds: [z.id], tensors: [x, y, z] });
    assertEquals(bytesF32(await c.getTensor(z, 0, 16)), [10.5, 20.5, 30.5, 40.5]);
    assertEquals([s.server.stats.graphsCreated, s.server.stats.graphsReused, s.server.stats.recomputes], [
      1,
      1,
      1,
    ]);
    // Same structure, another address: the plan is updated.
    const z2 = { ...z, data: z.data + 32n };
    await c.graphCompute({ device: 0, nodeIds: [z.id], tensors: [x, y, z2] });
    assertEquals(bytesF32(await c.getTensor(z2, 0, 16)), [10.5, 20.5, 30.5, 40.5]);
    assertEquals(s.server.stats.graphsUpdated, 1);
  } finally {
    c.close();
    await s.stop();
  }
});

Deno.test("each connection owns its buffers: others cannot use them, and closing frees them", async () => {
  const s = startServer();
  const a = await s.connect();
  const b = await s.connect();
  try {
    const buf = await remoteBuffer(a, 4096);
    const t = wireTensor(buf, 0, GgmlType.F32, [4]);
    await a.setTensor(t, 0, f32Bytes([1, 2, 3, 4]));
    await assert.rejects(() => b.getTensor(t, 0, 16));
    assert.ok(b.closed);
    assertEquals(bytesF32(await a.getTensor(t, 0, 16)), [1, 2, 3, 4]);
    assert.ok(s.logs.some((l) => /not one of this connection's/.test(l)));
    a.close();
    assert.ok(await until(() => s.server.allocated(0) === 0), "buffers of a closed connection are freed");
  } finally {
    a.close();
    b.close();
    await s.stop();
  }
});

Deno.test("-m: allocations beyond the limit answer remote_ptr 0, memory is reported within it", async () => {
  const s = startServer({ memLimit: 1 << 20 });
  const c = await s.connect();
  try {
    const ok = await c.allocBuffer(0, 600 << 10);
    assert.notEqual(ok.remotePtr, 0n);
    const over = await c.allocBuffer(0, 600 << 10);
    assertEquals(over, { remotePtr: 0n, remoteSize: 0n });
    const m = await c.getDeviceMemory(0);
    assertEquals(m.total, 1n << 20n);
    assertEquals(m.free, BigInt((1 << 20) - (600 << 10)));
    assertEquals(await c.getMaxSize(0), 1n << 20n);
    assertEquals(await c.deviceCount(), 1, "the connection survives a refused allocation");
  } finally {
    c.close();
    await s.stop();
  }
});

Deno.test("tensor cache: stored by hash, found by SET_TENSOR_HASH, corrupt or planted files removed", async () => {
  const dir = await Deno.makeTempDir();
  const s = startServer({ cache: new TensorCache(dir) });
  try {
    const size = HASH_THRESHOLD + 4096;
    const data = new Uint8Array(size).map((_, i) => (i * 31 + 7) & 0xff);
    const hash = fnv1a64(data);
    const c1 = await s.connect();
    const b1 = await remoteBuffer(c1, size);
    const t1 = wireTensor(b1, 0, GgmlType.I8, [size]);
    assertEquals(await c1.uploadTensor(t1, 0, data), false, "first upload is not cached yet");
    await c1.deviceCount(); // SET_TENSOR has no answer: a round trip after it means it was handled
    assert.ok((await Deno.stat(`${dir}/${hashHex(hash)}`)).isFile);
    c1.close();

    const c2 = await s.connect();
    const b2 = await remoteBuffer(c2, size);
    const t2 = wireTensor(b2, 0, GgmlType.I8, [size]);
    assertEquals(await c2.setTensorHash(t2, 0, hash), true);
    const back = await c2.getTensor(t2, size - 100, 100);
    assertEquals(back, data.slice(size - 100));

    // A corrupted file no longer hashes to its name: ignored and removed.
    const f = await Deno.open(`${dir}/${hashHex(hash)}`, { write: true });
    await f.write(Uint8Array.of(0xff, 0xfe));
    f.close();
    assertEquals(await c2.setTensorHash(t2, 0, hash), false);
    await assert.rejects(() => Deno.stat(`${dir}/${hashHex(hash)}`), Deno.errors.NotFound);
    // A planted file under someone else's hash: the same.
    await Deno.writeFile(`${dir}/${hashHex(0x1234n)}`, Uint8Array.of(1, 2, 3));
    assertEquals(await c2.setTensorHash(t2, 0, 0x1234n), false);
    await assert.rejects(() => Deno.stat(`${dir}/${hashHex(0x1234n)}`), Deno.errors.NotFound);
    assert.ok(s.logs.some((l) => /hashes to .* not its name; removed/.test(l)));
    c2.close();
  } finally {
    await s.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Sends raw frames on a fresh socket and says whether the server closed it. */
async function closedAfter(endpoint: string, frames: Uint8Array[]): Promise<boolean> {
  const [host, port] = endpoint.split(":");
  const conn = await connectTcp(host, Number(port));
  try {
    for (const f of frames) await conn.writeAll(f);
    const buf = new Uint8Array(1 << 16);
    for (;;) {
      const n = await Promise.race([
        conn.read(buf),
        new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 3000)),
      ]);
      if (n === "timeout") return false;
      if (n === null) return true;
    }
  } catch {
    return true;
  } finally {
    conn.close();
  }
}

const hello = frameRequest(Cmd.HELLO, msg.encodeHelloReq());

Deno.test("protocol violations end only their own connection", async () => {
  const s = startServer();
  const good = await s.connect();
  try {
    const cases: [string, Uint8Array[]][] = [
      ["first command not HELLO", [frameRequest(Cmd.DEVICE_COUNT, new Uint8Array(0))]],
      ["HELLO of the wrong size", [frameRequest(Cmd.HELLO, new Uint8Array(23))]],
      ["second HELLO", [hello, hello]],
      ["unknown command", [hello, frameRequest(18, new Uint8Array(0))]],
      ["wrong payload size", [hello, frameRequest(Cmd.GET_ALIGNMENT, new Uint8Array(5))]],
      ["device out of range", [hello, frameRequest(Cmd.GET_ALIGNMENT, msg.encodeDeviceReq(1))]],
      ["recompute with no graph", [hello, frameRequest(Cmd.GRAPH_RECOMPUTE, msg.encodeDeviceReq(0))]],
      ["free of an unknown buffer", [hello, frameRequest(Cmd.FREE_BUFFER, msg.encodeBufferReq(0x1234n))]],
    ];
    for (const [what, frames] of cases) assert.ok(await closedAfter(s.endpoint, frames), what);
    assertEquals(await good.deviceCount(), 1);
    assert.ok(s.server.stats.closedWithError >= cases.length);
  } finally {
    good.close();
    await s.stop();
  }
});

Deno.test("GET_TENSOR past its buffer (which aborts ggml's server) closes only that connection", async () => {
  const s = startServer();
  const other = await s.connect();
  const c = await s.connect();
  try {
    const buf = await remoteBuffer(c, 64);
    const t = wireTensor(buf, 0, GgmlType.F32, [16]);
    await assert.rejects(() => c.getTensor(t, 32, 64));
    assert.ok(s.logs.some((l) => /GET_TENSOR: region .* outside its buffer/.test(l)));
    const big = await remoteBuffer(other, 64);
    assertEquals((await other.getTensor(wireTensor(big, 0, GgmlType.F32, [16]), 0, 64)).length, 64);
  } finally {
    c.close();
    other.close();
    await s.stop();
  }
});

Deno.test("an unsupported op ends the connection with one line naming the op and types", async () => {
  const s = startServer();
  const c = await s.connect();
  try {
    const buf = await remoteBuffer(c, 1024);
    const x = wireTensor(buf, 0, GgmlType.F32, [4]);
    const y = wireTensor(buf, 64, GgmlType.F32, [4], { op: GgmlOp.OPT_STEP_SGD });
    y.src[0] = x.id;
    await c.graphCompute({ device: 0, nodeIds: [y.id], tensors: [x, y] });
    await assert.rejects(() => c.deviceCount());
    assert.ok(
      await until(() =>
        s.logs.some((l) => /cpu does not support OPT_STEP_SGD f32\[4,1,1,1\] <- f32/.test(l))
      ),
      s.logs.join("\n"),
    );
  } finally {
    c.close();
    await s.stop();
  }
});

Deno.test("a freed buffer is never used by a stored graph", async () => {
  const s = startServer();
  const c = await s.connect();
  try {
    const buf = await remoteBuffer(c, 1024);
    const x = wireTensor(buf, 0, GgmlType.F32, [4]);
    const y = wireTensor(buf, 64, GgmlType.F32, [4], { op: GgmlOp.CONT });
    y.src[0] = x.id;
    await c.graphCompute({ device: 0, nodeIds: [y.id], tensors: [x, y] });
    await c.freeBuffer(buf.handle);
    await c.graphRecompute(0);
    await assert.rejects(() => c.deviceCount());
    assert.ok(await until(() => s.logs.some((l) => /no graph stored/.test(l))));
  } finally {
    c.close();
    await s.stop();
  }
});

Deno.test("a client refuses a server of another major version", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    const conn = await l.accept();
    const b = new Uint8Array(33);
    let n = 0;
    while (n < 33) n += (await conn.read(b.subarray(n))) ?? 33;
    const rsp = msg.encodeHelloRsp({ major: 4, minor: 0, patch: 0, caps: new Uint8Array(24) });
    await conn.write(new Uint8Array([...new Uint8Array(new BigUint64Array([28n]).buffer), ...rsp]));
    conn.close();
  })();
  await assert.rejects(
    () => RpcConnection.connect(`127.0.0.1:${(l.addr as Deno.NetAddr).port}`),
    /speaks RPC 4.0.0/,
  );
  await served;
  l.close();
});
