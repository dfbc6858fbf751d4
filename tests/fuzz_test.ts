/**
 * A bounded fuzz test of the server: at least 20,000 random and mutated frames, derived from ggml's
 * recorded connections, sent over many connections while a well-behaved client keeps working on
 * its own connection. Afterwards the server must still answer a new client, the bystander must
 * never have been dropped, and every fuzzing connection's memory must be freed.
 *
 * The seed is printed; set FUZZ_SEED to replay a run, FUZZ_FRAMES to send more.
 */

import { CpuDevice } from "../backends/cpu/mod.ts";
import { GgmlOp } from "../protocol/graph/ops.ts";
import { GgmlType } from "../protocol/graph/types.ts";
import { Cmd, NO_RESPONSE, RPC_TENSOR_SIZE } from "../protocol/wire/constants.ts";
import { FrameReader, frameRequest, readResponse } from "../protocol/wire/framing.ts";
import { encodeHelloReq } from "../protocol/wire/messages.ts";
import { TensorField } from "../protocol/wire/tensor.ts";
import { type Connection, connectTcp } from "../protocol/wire/transport.ts";
import { assert, assertEquals, rng } from "./asserts.ts";
import { bytesF32, f32Bytes, remoteBuffer, startServer, until, wireTensor } from "./helpers.ts";
import { listTraces, parseTrace, type TraceRecord } from "./replay.ts";

const TRACE_ROOT = new URL("../../shared/traces/public", import.meta.url).pathname;
const FRAMES = Number(Deno.env.get("FUZZ_FRAMES") ?? 20_000);
const SEED = Number(Deno.env.get("FUZZ_SEED") ?? Date.now() % 2 ** 31);
const TIME_LIMIT_MS = 120_000;

/** Requests of a sample of recordings: the material mutations start from. */
function corpus(): TraceRecord[] {
  const files = listTraces(TRACE_ROOT);
  const pick = files.filter((_, i) => i % 7 === 0).slice(0, 60);
  const out: TraceRecord[] = [];
  for (const f of pick) {
    for (const r of parseTrace(Deno.readFileSync(f))) {
      if (r.dir === 0 && r.cmd !== Cmd.HELLO && r.payload.length < 256 * 1024) out.push(r);
    }
  }
  return out;
}

const INTERESTING_U64 = [
  0n,
  1n,
  0xffffffffn,
  0x100000000n,
  1n << 62n,
  (1n << 63n) - 1n,
  1n << 63n,
  (1n << 64n) - 1n,
];
const INTERESTING_U32 = [0, 1, 2, 0x7fffffff, 0x80000000, 0xffffffff, 42, 100, 101];

class Fuzzer {
  rand: () => number;
  frames = 0;
  sessions = 0;
  closedByServer = 0;
  constructor(seed: number, readonly corpus: TraceRecord[], readonly endpoint: string) {
    this.rand = rng(seed);
  }

  int(n: number): number {
    return Math.floor(this.rand() * n);
  }

  /** Points every rpc_tensor of a recorded request into our buffer, so mutations reach deep checks. */
  retarget(r: TraceRecord, handle: bigint, base: bigint, size: number): Uint8Array {
    const p = r.payload.slice();
    const v = new DataView(p.buffer);
    const fix = (o: number) => {
      if (o + RPC_TENSOR_SIZE > p.length) return;
      if (v.getBigUint64(o + TensorField.buffer, true) === 0n) return;
      v.setBigUint64(o + TensorField.buffer, handle, true);
      const data = v.getBigUint64(o + TensorField.data, true);
      v.setBigUint64(o + TensorField.data, base + (data % BigInt(Math.max(1, size))) / 32n * 32n, true);
    };
    switch (r.cmd) {
      case Cmd.SET_TENSOR:
      case Cmd.SET_TENSOR_HASH:
      case Cmd.GET_TENSOR:
      case Cmd.INIT_TENSOR:
      case Cmd.MEMSET_TENSOR:
        fix(0);
        break;
      case Cmd.COPY_TENSOR:
        fix(0);
        fix(RPC_TENSOR_SIZE);
        break;
      case Cmd.GET_ALLOC_SIZE:
        for (let k = 0; k < 11; k++) fix(4 + k * RPC_TENSOR_SIZE);
        break;
      case Cmd.FREE_BUFFER:
      case Cmd.BUFFER_CLEAR:
      case Cmd.BUFFER_GET_BASE:
        if (p.length >= 8 && this.rand() < 0.8) v.setBigUint64(0, handle, true);
        break;
      case Cmd.GRAPH_COMPUTE: {
        if (p.length < 12) break;
        const n = v.getUint32(4, true);
        const at = 8 + 8 * n + 4;
        for (let o = at; o + RPC_TENSOR_SIZE <= p.length; o += RPC_TENSOR_SIZE) fix(o);
        break;
      }
    }
    return p;
  }

  /** One mutation of a payload (or none). */
  mutate(p: Uint8Array): Uint8Array {
    // Half of the frames stay as recorded (retargeted), so that sessions live long enough for
    // later frames to reach deep states (graphs stored, buffers freed, caches).
    if (this.rand() < 0.5 || p.length === 0) return p;
    const k = 1 + this.int(7);
    const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
    switch (k) {
      case 1:
      case 2: {
        const flips = 1 + this.int(8);
        for (let i = 0; i < flips; i++) p[this.int(p.length)] ^= 1 << this.int(8);
        return p;
      }
      case 3:
        if (p.length >= 8) {
          v.setBigUint64(this.int(p.length - 7), INTERESTING_U64[this.int(INTERESTING_U64.length)], true);
        }
        return p;
      case 4:
        if (p.length >= 4) {
          v.setUint32(this.int(p.length - 3), INTERESTING_U32[this.int(INTERESTING_U32.length)], true);
        }
        return p;
      case 5:
        return p.subarray(0, this.int(p.length));
      case 6: {
        const q = new Uint8Array(p.length + 1 + this.int(64));
        q.set(p);
        for (let i = p.length; i < q.length; i++) q[i] = this.int(256);
        return q;
      }
      default: {
        // A field of a tensor, most often the ones validation relies on.
        const fields = [
          TensorField.type,
          TensorField.ne,
          TensorField.nb,
          TensorField.op,
          TensorField.src,
          TensorField.viewSrc,
          TensorField.data,
        ];
        const base = p.length > 12
          ? this.int(Math.max(1, Math.floor(p.length / RPC_TENSOR_SIZE))) * RPC_TENSOR_SIZE
          : 0;
        const o = base + fields[this.int(fields.length)] + 4 * this.int(4);
        if (o + 4 <= p.length) v.setUint32(o, INTERESTING_U32[this.int(INTERESTING_U32.length)], true);
        return p;
      }
    }
  }

  /** One fuzzing connection; resolves when it is done or the server closed it. */
  async session(): Promise<void> {
    this.sessions++;
    const [host, port] = this.endpoint.split(":");
    const conn = await connectTcp(host, Number(port));
    const reader = new FrameReader(conn);
    const call = async (cmd: number, payload: Uint8Array, expect: boolean): Promise<Uint8Array | null> => {
      this.frames++;
      await conn.writeAll(frameRequest(cmd, payload));
      if (!expect) return new Uint8Array(0);
      return await withTimeout(readResponse(reader, 1n << 32n), `response to command ${cmd}`);
    };
    try {
      if (this.rand() < 0.03) {
        // Garbage before HELLO.
        const g = new Uint8Array(1 + this.int(64)).map(() => this.int(256));
        if (g[0] === Cmd.HELLO) g[0] = 0;
        this.frames++;
        await conn.writeAll(g);
        await expectClosed(conn);
        this.closedByServer++;
        return;
      }
      await call(Cmd.HELLO, encodeHelloReq(), true);
      const size = 1024 * (1 + this.int(1024));
      const alloc = new Uint8Array(12);
      new DataView(alloc.buffer).setBigUint64(4, BigInt(size), true);
      const a = await call(Cmd.ALLOC_BUFFER, alloc, true);
      const handle = new DataView(a!.buffer).getBigUint64(0, true);
      const b = await call(Cmd.BUFFER_GET_BASE, a!.subarray(0, 8), true);
      const base = new DataView(b!.buffer).getBigUint64(0, true);
      const n = 1 + this.int(40);
      for (let i = 0; i < n; i++) {
        const r = this.corpus[this.int(this.corpus.length)];
        let cmd = r.cmd;
        let payload = this.mutate(this.retarget(r, handle, base, size));
        if (this.rand() < 0.02) cmd = this.int(256);
        if (this.rand() < 0.02) payload = new Uint8Array(this.int(400)).map(() => this.int(256));
        if (this.rand() < 0.01) {
          // A header that promises more bytes than follow; then hang up.
          const f = frameRequest(cmd, payload);
          new DataView(f.buffer).setBigUint64(1, BigInt(payload.length + 1 + this.int(1 << 20)), true);
          this.frames++;
          await conn.writeAll(f);
          return;
        }
        const expect = !NO_RESPONSE.has(cmd) && cmd < 18;
        try {
          await call(cmd, payload, expect);
        } catch (e) {
          if (e instanceof TimeoutError) throw e;
          this.closedByServer++;
          return; // the server ended this connection, as it must for bad input
        }
      }
    } catch (e) {
      if (e instanceof TimeoutError) throw e;
      this.closedByServer++;
    } finally {
      conn.close();
    }
  }
}

class TimeoutError extends Error {}

async function withTimeout<T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<T>((_, rej) =>
        timer = setTimeout(() => rej(new TimeoutError(`server hung: no ${what} in ${ms} ms`)), ms)
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function expectClosed(conn: Connection): Promise<void> {
  const buf = new Uint8Array(1024);
  try {
    while ((await withTimeout(conn.read(buf), "close")) !== null) { /* drain */ }
  } catch (e) {
    if (e instanceof TimeoutError) throw e;
  }
}

// The synchronous CPU device of in-process servers, and the off-thread one rpc-server runs (graphs on
// a graph thread, kernel errors coming back as rejections). The fuzzed graphs are small, which
// rpc-server's device would run on the calling thread, as the synchronous one does: here every one
// goes to the graph thread (inlineWork 0).
for (const offThread of [false, true]) {
  Deno.test(
    `fuzz: ${FRAMES} mutated frames end only their own connections, ${
      offThread ? "off-thread" : "synchronous"
    } cpu (seed ${SEED})`,
    () => fuzzServer(new CpuDevice({ threads: 1, offThread, inlineWork: 0 })),
  );
}

async function fuzzServer(device: CpuDevice): Promise<void> {
  const s = startServer({ memLimit: 512 << 20, maxFrame: 64n << 20n }, [device]);
  const bystander = await s.connect();
  const started = Date.now();
  try {
    const buf = await remoteBuffer(bystander, 4096);
    const x = wireTensor(buf, 0, GgmlType.F32, [4]);
    const y = wireTensor(buf, 64, GgmlType.F32, [4]);
    const z = wireTensor(buf, 128, GgmlType.F32, [4], { op: GgmlOp.MUL });
    z.src[0] = x.id;
    z.src[1] = y.id;
    await bystander.setTensor(y, 0, f32Bytes([2, 2, 2, 2]));
    let round = 0;
    const work = async () => {
      round++;
      await bystander.setTensor(x, 0, f32Bytes([round, 1, 2, 3]));
      await bystander.graphCompute({ device: 0, nodeIds: [z.id], tensors: [x, y, z] });
      assertEquals(bytesF32(await bystander.getTensor(z, 0, 16)), [2 * round, 2, 4, 6], "bystander's result");
    };

    const fz = new Fuzzer(SEED, corpus(), s.endpoint);
    let lastWork = 0;
    while (fz.frames < FRAMES) {
      assert.ok(Date.now() - started < TIME_LIMIT_MS, `fuzzing took over ${TIME_LIMIT_MS} ms (seed ${SEED})`);
      await fz.session();
      if (fz.frames - lastWork > 500) {
        lastWork = fz.frames;
        await work();
      }
    }
    await work();
    // A new, well-behaved client is served.
    const fresh = await s.connect();
    assertEquals(await fresh.deviceCount(), 1);
    fresh.close();
    assert.ok(!bystander.closed, "the bystander was never dropped");
    assert.ok(
      await until(() => s.server.stats.active === 1, 5000),
      `connections left open: ${s.server.stats.active}`,
    );
    assertEquals(s.server.allocated(0), 4096, "every fuzzing connection's memory was freed");
    const kinds = new Map<string, number>();
    for (const l of s.logs) {
      const m = /closing connection: (\w+)/.exec(l);
      if (m) kinds.set(m[1], (kinds.get(m[1]) ?? 0) + 1);
    }
    // Only typed errors may end a connection: anything else is a bug the fuzzer found.
    const untyped = s.logs.filter((l) =>
      /closing connection: (TypeError|RangeError|Error|ReferenceError)/.test(l)
    );
    assertEquals(untyped.slice(0, 5), [], `untyped failures (seed ${SEED})`);
    console.log(`errors by kind: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(", ")}`);
    console.log(
      `seed ${SEED}: ${fz.frames} frames over ${fz.sessions} connections, ${fz.closedByServer} ended by the server, ` +
        `${s.server.stats.closedWithError} server-side errors logged, ${
          ((Date.now() - started) / 1000).toFixed(1)
        } s`,
    );
  } finally {
    bystander.close();
    await s.stop();
    device.close();
  }
}
