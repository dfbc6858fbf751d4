/**
 * The native CUDA/HIP device. Without a GPU (CI, the development machine) only the parts that need
 * none run: descriptor layout, library discovery and its messages. With a GPU: every kernel against
 * the CPU reference on fresh random inputs, plans as CUDA graphs (capture, replay, in-place update,
 * the fallback after several updates), and the checks that keep hostile graphs inside their buffers.
 */

import { CpuDevice } from "../cpu/mod.ts";
import { GraphBuilder } from "../../protocol/graph/builder.ts";
import { GgmlOp } from "../../protocol/graph/ops.ts";
import { nbytes, nelements, newTensor, setOpF32, type Tensor } from "../../protocol/graph/tensor.ts";
import { GgmlType } from "../../protocol/graph/types.ts";
import { assert, assertEquals, assertNmse, assertOk, rng } from "../../tests/asserts.ts";
import { bindMemory, planMemory } from "../alloc.ts";
import { checkCase, decodeTensor, encodeValues, opCases, opNode } from "./check.ts";
import { MAX_SRC, NODE_SIZE, TENSOR_SIZE, writeNode } from "./descriptor.ts";
import {
  type CudaDevice,
  discoverNative,
  getOption,
  NativeOption,
  openNative,
  setOption,
  whyRefused,
} from "./mod.ts";

const { F32, F16, I32, I64 } = GgmlType;

/**
 * The library under test: GRAPHWIRE_TEST_BACKEND ("cuda" or "hip") where set, else the first of
 * libgraphwire_cuda and libgraphwire_hip that finds a GPU, else the first that loads (the tests that
 * need no GPU), so an AMD host runs every test below against the HIP library.
 */
function backendUnderTest(): "cuda" | "hip" {
  const env = Deno.env.get("GRAPHWIRE_TEST_BACKEND");
  if (env === "cuda" || env === "hip") return env;
  const order = ["cuda", "hip"] as const;
  return order.find((b) => discoverNative(b).devices.length > 0) ??
    order.find((b) => !("absent" in openNative(b))) ?? "cuda";
}
const backend = backendUnderTest();
const found = discoverNative(backend);
const gpu = found.devices[0] as CudaDevice | undefined;
if (!gpu) console.log(`${backend} tests that need a GPU are skipped: ${found.absent}`);
const haveGpu = gpu !== undefined;

Deno.test("gw_node descriptor layout matches graphwire.h", () => {
  assertEquals(TENSOR_SIZE, 80);
  assertEquals(NODE_SIZE, 632);
  const a = newTensor({ type: F16, ne: [4, 3] });
  const n = newTensor({ type: F32, ne: [3, 1], op: GgmlOp.MUL_MAT, src: [a, null], opParams: [7, 9] });
  const bytes = new Uint8Array(NODE_SIZE);
  const v = new DataView(bytes.buffer);
  writeNode(v, 0, n, (t) => (t === a ? 0x1000n : 0x2000n));
  assertEquals(v.getInt32(0, true), GgmlOp.MUL_MAT);
  assertEquals(v.getInt32(8, true), 7);
  assertEquals(v.getInt32(12, true), 9);
  // dst at 72
  assertEquals(v.getBigUint64(72, true), 0x2000n);
  assertEquals(v.getBigInt64(72 + 8, true), 3n);
  assertEquals(v.getBigInt64(72 + 40, true), 4n); // nb[0] of f32
  assertEquals(v.getInt32(72 + 72, true), F32);
  // src[0] at 152
  assertEquals(v.getBigUint64(152, true), 0x1000n);
  assertEquals(v.getBigInt64(152 + 40 + 8, true), 8n); // nb[1] of f16 [4, 3]
  assertEquals(v.getInt32(152 + 72, true), F16);
  // absent sources have type -1
  for (let i = 1; i < MAX_SRC; i++) assertEquals(v.getInt32(152 + TENSOR_SIZE * i + 72, true), -1);
});

Deno.test("a missing native library is reported, not thrown", () => {
  const r = openNative("cuda", "/nonexistent/libgraphwire_cuda.so");
  assertOk("absent" in r);
  assert.match(r.absent, /does not exist/);
  const d = discoverNative("hip", "/nonexistent/libgraphwire_hip.so");
  assertEquals(d.devices.length, 0);
  assert.match(d.absent ?? "", /does not exist/);
});

const lib = openNative(backend);
const haveLib = !("absent" in lib);
if (!haveLib) console.log(`validation tests skipped: ${(lib as { absent: string }).absent}`);

/** The library's verdict on `node` without a GPU (null: runs). */
function verdict(node: Tensor): string | null {
  if ("absent" in lib) throw new Error(lib.absent);
  const bytes = new Uint8Array(NODE_SIZE);
  writeNode(new DataView(bytes.buffer), 0, node, () => 0n);
  return whyRefused(lib, bytes, -1);
}

Deno.test({
  name: "options read back what was set; out-of-range values and unknown keys are refused (no GPU needed)",
  ignore: !haveLib,
  fn: () => {
    if ("absent" in lib) return;
    const O = NativeOption;
    // [key, accepted values, a refused value]
    const cases: [number, number[], number][] = [
      [O.UPDATE_LIMIT, [0, 4, 1000000], -1],
      [O.MATVEC_MAX_COLS, [0, 8, 64], 65],
      [O.MATVEC_ROWS, [0, 1, 2, 4, 8], 3],
      [O.FA_BLOCKS_PER_SM, [0, 3, 64], 65],
      [O.MATVEC_WARPS, [0, 4, 8], 6],
      [O.MATVEC_UNROLL, [0, 2, 4, 8], 9],
      [O.MATVEC_MMA_COLS, [0, 2, 9], 1],
      [O.COPY_ROWS, [0, 32, 64], 16],
      [O.COPY_ORDER, [0, 1], 2],
      [O.FA_KERNEL, [0, 1, 2], 3],
      [O.PDL, [0, 1, 2], 3],
      [O.FA_MERGE, [0, 1, 2], 3],
      [O.FA_EXACT_WAVE, [0, 1], 2],
    ];
    for (const [key, good, bad] of cases) {
      const saved = getOption(lib, key);
      try {
        for (const v of good) {
          setOption(lib, key, v);
          assertEquals(getOption(lib, key), v, `option ${key} = ${v}`);
        }
        assert.throws(
          () => setOption(lib, key, bad),
          new RegExp(` ${bad}: `),
          `option ${key} = ${bad} is refused`,
        );
        assertEquals(
          getOption(lib, key),
          good[good.length - 1],
          `a refused value leaves option ${key} as it was`,
        );
      } finally {
        setOption(lib, key, saved);
      }
    }
    assert.throws(() => setOption(lib, 999, 1), /unknown option/);
    assert.throws(() => getOption(lib, 999), /unknown option/);
  },
});

Deno.test({
  name: "validation refuses every shape a kernel could be misled by (no GPU needed)",
  ignore: !haveLib,
  fn: () => {
    const b = new GraphBuilder();
    // MUL_MAT: inner dimensions, dst shape, broadcast
    const mm = b.mulMat(b.newTensor(F16, [64, 8]), b.newTensor(F32, [64, 3]));
    assertEquals(verdict(mm), null);
    mm.src[1]!.ne[0] = 65;
    assert.match(verdict(mm) ?? "", /inner dimensions/);
    mm.src[1]!.ne[0] = 64;
    mm.ne[1] = 4;
    assert.match(verdict(mm) ?? "", /dst shape/);
    // GET_ROWS: dst must be [ne0, indices]
    const gr = b.getRows(b.newTensor(F32, [16, 10]), b.newTensor(I32, [4]));
    assertEquals(verdict(gr), null);
    gr.ne[0] = 32;
    assert.match(verdict(gr) ?? "", /dst shape/);
    // FLASH_ATTN_EXT: head sizes above 576, K/V key counts
    const fa = b.flashAttnExt(
      b.newTensor(F32, [640, 1, 2, 1]),
      b.newTensor(F16, [640, 32, 2, 1]),
      b.newTensor(F16, [640, 32, 2, 1]),
      null,
      0.1,
    );
    assert.match(verdict(fa) ?? "", /head sizes/);
    const fa2 = b.flashAttnExt(
      b.newTensor(F32, [64, 1, 2, 1]),
      b.newTensor(F16, [64, 32, 2, 1]),
      b.newTensor(F16, [64, 31, 2, 1]),
      null,
      0.1,
    );
    assert.match(verdict(fa2) ?? "", /key counts/);
    // CPY: element counts
    const cp = b.cpy(b.newTensor(F32, [10, 3]), b.newTensor(F16, [10, 3]));
    assertEquals(verdict(cp), null);
    cp.ne[1] = 4;
    assert.match(verdict(cp) ?? "", /element counts/);
    // SET: a view outside dst, negative offsets
    const set = opNode(b, GgmlOp.SET, F32, [10, 8], [b.newTensor(F32, [10, 8]), b.newTensor(F32, [4, 3])], [
      40,
      320,
      320,
      60 * 4,
      0,
    ]);
    assert.match(verdict(set) ?? "", /outside dst/);
    setOpF32(set, 3, 0);
    new DataView(set.opParams.buffer).setInt32(12, -4, true);
    assert.match(verdict(set) ?? "", /negative/);
    // ROPE: rotated slice past the row, too few positions
    const rope = b.rope(b.newTensor(F32, [64, 2, 5]), b.newTensor(I32, [5]), 64, 0);
    assertEquals(verdict(rope), null);
    new DataView(rope.opParams.buffer).setInt32(4, 80, true);
    assert.match(verdict(rope) ?? "", /exceed the row/);
    new DataView(rope.opParams.buffer).setInt32(4, 64, true);
    rope.src[1]!.ne[0] = 4;
    assert.match(verdict(rope) ?? "", /too few positions/);
    // SOFT_MAX: a mask with fewer rows than the input
    const sm = b.softMaxExt(b.newTensor(F32, [32, 6]), b.newTensor(F16, [32, 6]), 1, 0);
    assertEquals(verdict(sm), null);
    sm.src[1]!.ne[1] = 5;
    assert.match(verdict(sm) ?? "", /mask/);
    // quantized types and unknown ops
    const q = b.cpy(b.newTensor(GgmlType.Q4_0, [64, 2]), b.newTensor(F32, [64, 2]));
    assertOk(verdict(q) !== null);
    const bad = opNode(b, 200, F32, [4], [b.newTensor(F32, [4])]);
    assert.match(verdict(bad) ?? "", /not a ggml op/);
    // SUM of strided rows reads each row packed, as ggml's CPU does (the run ends inside the tensor),
    // which needs nb[0] of at least one element
    const sum = opNode(b, GgmlOp.SUM, F32, [1], [b.transpose(b.newTensor(F32, [33, 16]))]);
    assertEquals(verdict(sum), null);
    sum.src[0]!.nb[0] = 0;
    assert.match(verdict(sum) ?? "", /element size/);
    // a zero-sized source is refused where it would reach a kernel
    const z = opNode(b, GgmlOp.ADD, F32, [4, 2], [b.newTensor(F32, [4, 2]), b.newTensor(F32, [4, 0])]);
    assert.match(verdict(z) ?? "", /empty/);
  },
});

Deno.test("without a GPU the provider says why", { ignore: haveGpu }, () => {
  assertEquals(found.devices.length, 0);
  assertOk(found.absent && found.absent.length > 10, `absent reason: ${found.absent}`);
});

// ---------------------------------------------------------------------------------------------
// GPU

Deno.test({
  name: "cuda kernels match the CPU reference on fresh random inputs",
  ignore: !haveGpu,
  fn: async (t) => {
    const cpu = new CpuDevice({ threads: 2 });
    const seed = Date.now() >>> 0;
    let skipped = 0;
    for (const c of opCases()) {
      await t.step(c.name, async () => {
        const r = await checkCase(gpu!, cpu, c, seed);
        if (r.status === "skip") skipped++;
        assert.notEqual(r.status, "fail", `${c.name} (seed ${seed}): ${r.detail}`);
      });
    }
    console.log(`seed ${seed}; ${skipped} cases skipped where the CPU reference lacks the op`);
  },
});

/** Allocates and binds a graph on `dev`, writes `inputs` (leaf → values). */
async function placed(dev: CudaDevice, g: ReturnType<GraphBuilder["build"]>) {
  const plan = await planMemory(g, dev);
  const buf = dev.allocBuffer(Math.max(1, plan.size))!;
  bindMemory(g, buf, plan);
  return buf;
}

function readF32(t: Tensor): number[] {
  return decodeTensor(t, t.buffer!.get(t.offset, nbytes(t)) as Uint8Array);
}

Deno.test({
  name: "plans: first run plain, replays as one CUDA graph, in-place updates, plain after 4 updates in a row",
  ignore: !haveGpu,
  fn: async () => {
    const dev = gpu!;
    setOption(dev.native, NativeOption.CUDA_GRAPHS, 1);
    const b = new GraphBuilder();
    const x = b.newTensor(F32, [256, 4]);
    let y = x;
    for (let i = 0; i < 20; i++) y = b.scale(b.unary(y, 10 /* SILU */), 1.01);
    const g = b.build(y);
    const buf = await placed(dev, g);
    const xs = Array.from({ length: 1024 }, (_, i) => Math.sin(i));
    buf.set(x.offset, encodeValues(F32, xs));
    const plan = dev.planCreate(g);
    dev.planCompute(plan);
    let s = dev.planStats(plan);
    assertEquals([s.plainRuns, s.graphLaunches, s.captures], [1, 0, 0]);
    const first = readF32(y);
    dev.planCompute(plan);
    dev.planCompute(plan);
    s = dev.planStats(plan);
    assertEquals([s.graphLaunches, s.captures, s.instantiations], [2, 1, 1]);
    assertNmse(readF32(y), first, 1e-12, "replay");
    // update: same structure, a new scale factor on the last node -> exec graph updated in place
    setOpF32(y, 0, 2.02);
    dev.planUpdate(plan, g);
    dev.planCompute(plan);
    s = dev.planStats(plan);
    assertEquals([s.captures, s.instantiations, s.execUpdates], [2, 1, 1]);
    assertNmse(readF32(y), first.map((v) => v * 2), 1e-10, "updated");
    for (let i = 0; i < 3; i++) {
      dev.planUpdate(plan, g);
      dev.planCompute(plan);
    }
    s = dev.planStats(plan);
    assertEquals(s.updatesInARow, 4);
    assertEquals(s.mode, 0, "after 4 updates in a row the plan launches plainly");
    dev.planCompute(plan); // replayed unchanged: capture again
    s = dev.planStats(plan);
    assertEquals([s.mode, s.updatesInARow], [1, 0]);
    assertNmse(readF32(y), first.map((v) => v * 2), 1e-10, "after reset");
    dev.planFree(plan);
    buf.free();
  },
});

Deno.test({
  name:
    "a plan whose options changed is checked again: more FLASH_ATTN_EXT slices get more scratch, same result",
  ignore: !haveGpu,
  fn: async () => {
    const dev = gpu!;
    setOption(dev.native, NativeOption.CUDA_GRAPHS, 1);
    const saved = getOption(dev.native, NativeOption.FA_BLOCKS_PER_SM);
    const b = new GraphBuilder();
    const q = b.newTensor(F32, [128, 1, 8, 1]);
    const k = b.newTensor(F16, [128, 4096, 8, 1]);
    const v = b.newTensor(F16, [128, 4096, 8, 1]);
    const out = b.flashAttnExt(q, k, v, null, 1 / Math.sqrt(128));
    const g = b.build(out);
    const buf = await placed(dev, g);
    const rand = rng(7);
    for (const t of [q, k, v]) {
      buf.set(t.offset, encodeValues(t.type, Array.from({ length: nelements(t) }, () => rand() * 2 - 1)));
    }
    try {
      setOption(dev.native, NativeOption.FA_BLOCKS_PER_SM, 1);
      const plan = dev.planCreate(g);
      dev.planCompute(plan);
      dev.planCompute(plan); // captured
      const before = dev.planStats(plan);
      const first = readF32(out);
      setOption(dev.native, NativeOption.FA_BLOCKS_PER_SM, 32);
      dev.planCompute(plan);
      const after = dev.planStats(plan);
      assertOk(
        after.scratchBytes > before.scratchBytes,
        `scratch ${before.scratchBytes} -> ${after.scratchBytes}`,
      );
      assertEquals(after.captures, before.captures + 1, "captured again with the new kernels");
      assertNmse(readF32(out), first, 1e-10, "more slices, same attention");
      dev.planFree(plan);
    } finally {
      setOption(dev.native, NativeOption.FA_BLOCKS_PER_SM, saved);
      buf.free();
    }
  },
});

Deno.test({
  name:
    "FLASH_ATTN_EXT merged by the last slice to finish: two nodes in one graph, replayed, match the merge kernel",
  ignore: !haveGpu,
  fn: async () => {
    // the merge counters are shared by every launch on the device and must be back at 0 after each:
    // two nodes of different query counts and slice counts, run plainly, captured and replayed
    const dev = gpu!;
    setOption(dev.native, NativeOption.CUDA_GRAPHS, 1);
    const saved = getOption(dev.native, NativeOption.FA_MERGE);
    const b = new GraphBuilder();
    const q1 = b.newTensor(F32, [128, 1, 8, 1]);
    const k1 = b.newTensor(F16, [128, 8192, 8, 1]);
    const v1 = b.newTensor(F16, [128, 8192, 8, 1]);
    const m1 = b.newTensor(F16, [8192, 1, 1, 1]);
    const o1 = b.flashAttnExt(q1, k1, v1, m1, 1 / Math.sqrt(128));
    const q2 = b.newTensor(F32, [64, 3, 2, 1]);
    const k2 = b.newTensor(F16, [64, 3000, 2, 1]);
    const v2 = b.newTensor(F16, [64, 3000, 2, 1]);
    const o2 = b.flashAttnExt(q2, k2, v2, null, 1 / 8);
    o2.src[4] = b.newTensor(F32, [2]); // sinks
    const g = b.build(o1, o2);
    const buf = await placed(dev, g);
    const rand = rng(11);
    for (const t of [q1, k1, v1, m1, q2, k2, v2, o2.src[4]!]) {
      buf.set(t.offset, encodeValues(t.type, Array.from({ length: nelements(t) }, () => rand() * 2 - 1)));
    }
    try {
      setOption(dev.native, NativeOption.FA_MERGE, 0);
      const ref = dev.planCreate(g);
      dev.planCompute(ref);
      const want1 = readF32(o1), want2 = readF32(o2);
      dev.planFree(ref);
      setOption(dev.native, NativeOption.FA_MERGE, 2);
      const plan = dev.planCreate(g);
      for (let i = 0; i < 5; i++) {
        dev.planCompute(plan); // plain, then captured and replayed
        assertNmse(readF32(o1), want1, 1e-10, `node 1, run ${i + 1}`);
        assertNmse(readF32(o2), want2, 1e-10, `node 2 (sinks), run ${i + 1}`);
      }
      assertOk(dev.planStats(plan).graphLaunches >= 3, "replayed as a CUDA graph");
      dev.planFree(plan);
    } finally {
      setOption(dev.native, NativeOption.FA_MERGE, saved);
      buf.free();
    }
  },
});

Deno.test({
  name: "hostile graphs: inconsistent shapes are refused, data-dependent indices stay in bounds",
  ignore: !haveGpu,
  fn: async () => {
    const dev = gpu!;
    // MUL_MAT with mismatched inner dimensions
    {
      const b = new GraphBuilder();
      const a = b.newTensor(F32, [64, 8]), x = b.newTensor(F32, [64, 2]);
      const mm = b.mulMat(a, x);
      const g = b.build(mm);
      const buf = await placed(dev, g);
      assertOk(dev.supportsOp(mm));
      a.ne[0] = 128; // claims more than it has
      assert.equal(dev.supportsOp(mm), false);
      assert.match(dev.whyUnsupported(mm) ?? "", /inner dimensions/);
      a.ne[0] = 64;
      mm.ne[0] = 4096; // dst does not match the product's shape
      assert.equal(dev.supportsOp(mm), false);
      a.ne[1] = 4096; // consistent shapes, but src0 and dst now claim more than their memory
      assertOk(dev.supportsOp(mm));
      assert.throws(() => dev.planCreate(g), /outside/);
      buf.free();
    }
    // a tensor that claims bytes past the end of its buffer
    {
      const b = new GraphBuilder();
      const a = b.newTensor(F32, [1000]);
      const n = b.scale(a, 2);
      const g = b.build(n);
      const buf = await placed(dev, g);
      a.offset = buf.size - 16;
      assertOk(dev.supportsOp(n), "supportsOp looks at op, types and shapes only");
      assert.throws(() => dev.planCreate(g), /outside/);
      assert.throws(() => dev.compute(g), /outside/);
      buf.free();
    }
    // GET_ROWS with indices out of range: zeros, no fault
    {
      const b = new GraphBuilder();
      const src = b.newTensor(F32, [16, 4]), idx = b.newTensor(I32, [5]);
      const rows = b.getRows(src, idx);
      const g = b.build(rows);
      const buf = await placed(dev, g);
      buf.set(src.offset, encodeValues(F32, Array.from({ length: 64 }, (_, i) => i + 1)));
      buf.set(idx.offset, encodeValues(I32, [1, -1, 4, 1 << 30, 3]));
      dev.compute(g);
      const out = readF32(rows);
      assertEquals(out.slice(0, 16), Array.from({ length: 16 }, (_, i) => 17 + i));
      assertEquals(out.slice(16, 32), new Array(16).fill(0));
      assertEquals(out.slice(32, 48), new Array(16).fill(0));
      assertEquals(out.slice(64, 80), Array.from({ length: 16 }, (_, i) => 49 + i));
      buf.free();
    }
    // SET_ROWS with indices out of range: those rows are not written, nothing else changes
    {
      const b = new GraphBuilder();
      const dst = b.newTensor(F32, [8, 4]), rows = b.newTensor(F32, [8, 3]), idx = b.newTensor(I64, [3]);
      const n = b.setRows(dst, rows, idx);
      const g = b.build(n);
      const buf = await placed(dev, g);
      buf.set(dst.offset, encodeValues(F32, new Array(32).fill(-1)));
      buf.set(rows.offset, encodeValues(F32, Array.from({ length: 24 }, (_, i) => i)));
      buf.set(idx.offset, encodeValues(I64, [2, 4, -7]));
      dev.compute(g);
      const out = readF32(dst);
      assertEquals(out.slice(16, 24), [0, 1, 2, 3, 4, 5, 6, 7]);
      assertEquals(out.filter((v) => v === -1).length, 24);
      buf.free();
    }
    // MUL_MAT_ID with an expert id out of range: a zero column
    {
      const b = new GraphBuilder();
      const as = b.newTensor(F32, [32, 8, 2]),
        x = b.newTensor(F32, [32, 1, 1]),
        ids = b.newTensor(I32, [2, 1]);
      const n = opNode(b, GgmlOp.MUL_MAT_ID, F32, [8, 2, 1, 1], [as, x, ids]);
      const g = b.build(n);
      const buf = await placed(dev, g);
      buf.set(as.offset, encodeValues(F32, new Array(512).fill(1)));
      buf.set(x.offset, encodeValues(F32, new Array(32).fill(1)));
      buf.set(ids.offset, encodeValues(I32, [1, 99]));
      dev.compute(g);
      assertEquals(readF32(n), [...new Array(8).fill(32), ...new Array(8).fill(0)]);
      buf.free();
    }
    // a plan whose buffer was freed refuses to run
    {
      const b = new GraphBuilder();
      const a = b.newTensor(F32, [64]);
      const g = b.build(b.scale(a, 3));
      const buf = await placed(dev, g);
      const plan = dev.planCreate(g);
      buf.free();
      assert.throws(() => dev.planCompute(plan), /freed/);
      dev.planFree(plan);
    }
  },
});

Deno.test({
  name: "buffers: set, get, memset, copy between buffers",
  ignore: !haveGpu,
  fn: () => {
    const dev = gpu!;
    const a = dev.allocBuffer(1000)!, b = dev.allocBuffer(1000)!;
    const data = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 255);
    a.set(0, data);
    assertEquals(a.get(0, 1000), data);
    a.memset(10, 20, 0xab);
    assertEquals(a.get(10, 20), new Uint8Array(20).fill(0xab));
    assertOk(b.copyFrom(a, 100, 200, 300));
    assertEquals(b.get(200, 300), a.get(100, 300));
    assert.throws(() => a.get(900, 200), /outside|not inside/);
    a.free();
    b.free();
    const m = dev.memory();
    assertOk(m.total > 0 && m.free <= m.total);
  },
});

Deno.test({
  name:
    "every kernel path agrees with the reference (MUL_MAT: cuBLAS or own GEMM, mat-vec shapes; FLASH_ATTN_EXT splits; transposing copies)",
  ignore: !haveGpu,
  fn: async () => {
    const dev = gpu!;
    const cpu = new CpuDevice({ threads: 2 });
    console.log(`BLAS loaded: ${getOption(dev.native, NativeOption.BLAS_LOADED)}`);
    const O = NativeOption;
    const paths: [string, [number, number][], RegExp][] = [
      ["own GEMM", [[O.BLAS, 0]], /MUL_MAT (f16|bf16|f32) x f32 m=130 n=67|broadcast|permuted|n=20/],
      ["mat-vec, 1 row", [[O.MATVEC_ROWS, 1]], /MUL_MAT (f16|bf16|f32) x f32 m=64 n=1/],
      ["mat-vec, 2 rows", [[O.MATVEC_ROWS, 2]], /MUL_MAT (f16|bf16|f32) x f32 m=64 n=1/],
      ["mat-vec, 4 rows", [[O.MATVEC_ROWS, 4]], /MUL_MAT (f16|bf16|f32) x f32 m=64 n=[18]/],
      ["mat-vec, 8 warps", [[O.MATVEC_WARPS, 8]], /MUL_MAT (f16|bf16|f32) x f32 m=64 n=[18]/],
      ["mat-vec, 4 warps", [[O.MATVEC_WARPS, 4]], /MUL_MAT (f16|bf16|f32) x f32 m=64 n=[18]/],
      [
        "mat-vec, 4 rows x 2 / tensor cores x 2",
        [[O.MATVEC_UNROLL, 2]],
        /MUL_MAT (f16|bf16|f32) x f32 m=64 n=8/,
      ],
      [
        "mat-vec, 1 row x 4",
        [[O.MATVEC_ROWS, 1], [O.MATVEC_UNROLL, 4]],
        /MUL_MAT (f16|bf16|f32) x f32 m=64 n=1/,
      ],
      [
        "mat-vec, 1 row x 2",
        [[O.MATVEC_ROWS, 1], [O.MATVEC_UNROLL, 2]],
        /MUL_MAT (f16|bf16|f32) x f32 m=64 n=1/,
      ],
      [
        "mat-vec, 2 rows x 2",
        [[O.MATVEC_ROWS, 2], [O.MATVEC_UNROLL, 2]],
        /MUL_MAT (f16|bf16|f32) x f32 m=64 n=1/,
      ],
      ["mat-vec, tensor cores x 8", [[O.MATVEC_UNROLL, 8]], /MUL_MAT (f16|bf16|f32) x f32 m=64 n=8/],
      ["mat-vec, SIMT only", [[O.MATVEC_MMA_COLS, 9]], /MUL_MAT (f16|bf16|f32) x f32 m=64 n=8/],
      ["FA, 1 block per SM", [[O.FA_BLOCKS_PER_SM, 1]], /FLASH_ATTN_EXT/],
      ["FA, V loaded early", [[O.FA_KERNEL, 1]], /FLASH_ATTN_EXT/],
      ["FA, V loaded early, 2 blocks per SM", [[O.FA_KERNEL, 1], [O.FA_BLOCKS_PER_SM, 2]], /FLASH_ATTN_EXT/],
      ["FA, a lane per key row", [[O.FA_KERNEL, 2]], /FLASH_ATTN_EXT/],
      ["FA, merge as a programmatic dependent", [[O.FA_MERGE, 1]], /FLASH_ATTN_EXT/],
      ["FA, slices merged by the last to finish", [[O.FA_MERGE, 2]], /FLASH_ATTN_EXT/],
      [
        "FA, slices merged by the last to finish, any length, PDL for every kernel",
        [[O.FA_MERGE, 2], [O.FA_EXACT_WAVE, 1], [O.PDL, 2]],
        /FLASH_ATTN_EXT/,
      ],
      ["FA, slices of any length", [[O.FA_EXACT_WAVE, 1]], /FLASH_ATTN_EXT/],
      [
        "plain launches (no PDL)",
        [[O.PDL, 0]],
        /FLASH_ATTN_EXT|MUL_MAT (f16|f32)|SOFT_MAX|CPY .* transposed/,
      ],
      ["PDL for every kernel", [[O.PDL, 2]], /./],
      ["copy, 32-row tiles", [[O.COPY_ROWS, 32]], /CPY .* transposed|CONT .* permute/],
      ["copy, tiles along the swapped dim", [[O.COPY_ORDER, 1]], /CPY .* transposed|CONT .* permute/],
      ["copy, 32 blocks per SM", [[O.COPY_BLOCKS_PER_SM, 32]], /CPY .* transposed|CONT .* permute/],
    ];
    for (const [what, options, filter] of paths) {
      const saved = options.map(([k]) => [k, getOption(dev.native, k)] as [number, number]);
      for (const [k, v] of options) setOption(dev.native, k, v);
      try {
        for (const k of opCases().filter((c) => filter.test(c.name))) {
          const r = await checkCase(dev, cpu, k, 99);
          assert.notEqual(r.status, "fail", `${what}: ${k.name}: ${r.detail}`);
        }
      } finally {
        for (const [k, v] of saved) setOption(dev.native, k, v);
      }
    }
  },
});
