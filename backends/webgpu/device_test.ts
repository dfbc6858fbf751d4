import { newGraph } from "../../protocol/graph/graph.ts";
import { nbytes, newTensor, type Tensor } from "../../protocol/graph/tensor.ts";
import { assert, assertEquals, assertNmse, rng } from "../../tests/asserts.ts";
import type { WebGpuBuffer } from "./buffer.ts";
import { GgmlOp, GgmlType, testDevice } from "./kernels/testing.ts";
import type { WebGpuDevice } from "./device.ts";

const d = await testDevice();
const ignore = typeof d === "string";
if (ignore) console.log(`webgpu device tests skipped: ${d}`);
const dev = d as WebGpuDevice;
const { F32 } = GgmlType;

function randomBytes(n: number, r: () => number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

Deno.test({ name: "webgpu device reports limits, alignment and memory", ignore }, async () => {
  assert.ok(dev.alignment >= 256 && (dev.alignment & (dev.alignment - 1)) === 0);
  assert.ok(dev.maxBufferSize >= 256 * 2 ** 20);
  assert.ok(dev.description.includes("WebGPU"));
  const m0 = await dev.memory();
  const b = dev.allocBuffer(1 << 20)!;
  const m1 = await dev.memory();
  assertEquals(m0.free - m1.free, 1 << 20);
  b.free();
  assertEquals((await dev.memory()).free, m0.free);
});

Deno.test(
  { name: "webgpu buffer set/get/memset/copyFrom at unaligned offsets and sizes", ignore },
  async () => {
    const r = rng(Date.now() >>> 0);
    const size = 1027;
    const a = dev.allocBuffer(size)!, b = dev.allocBuffer(size)!;
    const mirrorA = randomBytes(size, r), mirrorB = randomBytes(size, r);
    a.set(0, mirrorA);
    b.set(0, mirrorB);
    assertEquals(await a.get(0, size), mirrorA);
    for (let k = 0; k < 12; k++) {
      const off = Math.floor(r() * 600), n = 1 + Math.floor(r() * 300);
      const data = randomBytes(n, r);
      a.set(off, data);
      mirrorA.set(data, off);
      const moff = Math.floor(r() * 900), mn = Math.floor(r() * 100), v = Math.floor(r() * 256);
      a.memset(moff, mn, v);
      mirrorA.fill(v, moff, moff + mn);
      const so = Math.floor(r() * 500), dof = Math.floor(r() * 500), cn = Math.floor(r() * 400);
      assert.ok(b.copyFrom(a, so, dof, cn));
      mirrorB.set(mirrorA.subarray(so, so + cn), dof);
      // overlapping copy within one buffer
      const o1 = Math.floor(r() * 300), o2 = o1 + 1 + Math.floor(r() * 7), on = Math.floor(r() * 200);
      assert.ok(a.copyFrom(a, o1, o2, on));
      mirrorA.copyWithin(o2, o1, o1 + on);
      const go = Math.floor(r() * 1000);
      assertEquals(await a.get(go, size - go), mirrorA.subarray(go));
    }
    assertEquals(await b.get(0, size), mirrorB);
    a.clear(7);
    assertEquals(await a.get(0, size), new Uint8Array(size).fill(7));
    a.free();
    b.free();
  },
);

Deno.test(
  { name: "webgpu read-backs reuse staging buffers: concurrent, shrinking and growing reads", ignore },
  async () => {
    const r = rng(Date.now() >>> 0);
    const size = 3 << 20;
    const a = dev.allocBuffer(size)!;
    const mirror = randomBytes(size, r);
    a.set(0, mirror);
    // reads of every size in flight at once each get their own staging buffer; later ones reuse them
    for (let round = 0; round < 3; round++) {
      const spans = [[0, size], [5, 7], [1 << 20, 513024], [3, 1], [4096, 2 << 20], [size - 9, 9]];
      const got = await Promise.all(spans.map(([o, n]) => a.get(o, n)));
      spans.forEach(([o, n], i) => assertEquals(got[i], mirror.subarray(o, o + n), `${n} bytes at ${o}`));
      const dst = new Uint8Array(513024 + 10).fill(0xaa);
      await a.getInto(77, dst.subarray(5, 5 + 513024));
      assertEquals(dst.subarray(5, 5 + 513024), mirror.subarray(77, 77 + 513024));
      assert.ok(dst[4] === 0xaa && dst[5 + 513024] === 0xaa);
    }
    a.free();
  },
);

function gpuTensor(ne: number[], values: Float32Array, offset = 0, buf?: WebGpuBuffer): Tensor {
  const t = newTensor({ type: F32, ne });
  t.buffer = buf ?? dev.allocBuffer(offset + nbytes(t))!;
  t.offset = offset;
  t.buffer.set(offset, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  return t;
}

async function read(t: Tensor): Promise<Float32Array> {
  const b = await t.buffer!.get(t.offset, nbytes(t));
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

Deno.test(
  { name: "webgpu plan: update re-targets params and bindings, recompute reruns", ignore },
  async () => {
    const r = rng(Date.now() >>> 0);
    const rand = (n: number) => Float32Array.from({ length: n }, () => r() * 2 - 1);
    const xs = rand(40), ys = rand(40), zs = rand(40);
    // x, y share one buffer at an unaligned offset; the output lives in the same buffer (aliasing)
    const buf = dev.allocBuffer(4096)! as WebGpuBuffer;
    const x = gpuTensor([10, 4], xs, 4, buf);
    const y = gpuTensor([10, 4], ys, 1028, buf);
    const out = newTensor({ type: F32, ne: [10, 4], op: GgmlOp.ADD, src: [x, y] });
    out.buffer = buf;
    out.offset = 2052;
    const plan = await dev.planCreate(newGraph([out]));
    await dev.planCompute(plan);
    assertNmse(await read(out), xs.map((v, i) => v + ys[i]), 1e-12, "add");
    // same structure: another source tensor, in-place output over x
    const z = gpuTensor([10, 4], zs, 260, buf);
    const out2 = newTensor({ type: F32, ne: [10, 4], op: GgmlOp.ADD, src: [x, z] });
    out2.buffer = buf;
    out2.offset = 4;
    const p2 = await dev.planUpdate(plan, newGraph([out2]));
    await dev.planCompute(p2);
    const want = xs.map((v, i) => v + zs[i]);
    assertNmse(await read(out2), want, 1e-12, "in-place add after update");
    await dev.planCompute(p2); // x += z again
    assertNmse(await read(out2), want.map((v, i) => v + zs[i]), 1e-10, "recompute");
    await dev.planFree(p2);
    buf.free();
  },
);

Deno.test({ name: "webgpu: more than 65535 workgroups fold into y", ignore }, async () => {
  const n = 65536 * 64 + 100;
  const xs = Float32Array.from({ length: n }, (_, i) => (i % 1000) / 7);
  const x = gpuTensor([n], xs);
  const out = newTensor({ type: F32, ne: [n], op: GgmlOp.SCALE, src: [x] });
  new DataView(out.opParams.buffer).setFloat32(0, 2, true);
  out.buffer = dev.allocBuffer(nbytes(out))!;
  await dev.compute(newGraph([out]));
  const got = await read(out);
  assertEquals(got[n - 1], xs[n - 1] * 2);
  assertEquals(got[12345], xs[12345] * 2);
  x.buffer!.free();
  out.buffer!.free();
});

Deno.test({ name: "webgpu: views cost nothing and are supported", ignore }, () => {
  const x = newTensor({ type: F32, ne: [4, 4] });
  for (const op of [GgmlOp.RESHAPE, GgmlOp.VIEW, GgmlOp.PERMUTE, GgmlOp.TRANSPOSE, GgmlOp.NONE]) {
    assert.ok(dev.supportsOp(newTensor({ type: F32, ne: [4, 4], op, src: [x] })));
  }
});

Deno.test(
  { name: "webgpu plan: tensors closer than the alignment in a written buffer share bindings", ignore },
  async () => {
    const r = rng(Date.now() >>> 0);
    const rand = (n: number) => Float32Array.from({ length: n }, () => r() * 2 - 1);
    const xs = rand(40), ys = rand(40);
    const buf = dev.allocBuffer(4096)! as WebGpuBuffer;
    // disjoint bytes, but x, y and out all fall in overlapping alignment-rounded ranges
    const x = gpuTensor([10, 4], xs, 4, buf);
    const y = gpuTensor([10, 4], ys, 168, buf);
    const out = newTensor({ type: F32, ne: [10, 4], op: GgmlOp.ADD, src: [x, y] });
    out.buffer = buf;
    out.offset = 332;
    const plan = await dev.planCreate(newGraph([out]));
    await dev.planCompute(plan);
    assertNmse(await read(out), xs.map((v, i) => v + ys[i]), 1e-12, "neighbours");
    await dev.planFree(plan);
    // two reads overlapping each other (not the output) in the buffer written
    const y2 = newTensor({ type: F32, ne: [10, 4], op: GgmlOp.VIEW, src: [x], viewSrc: x, viewOffs: 40 });
    y2.buffer = buf;
    y2.offset = 44;
    const out2 = newTensor({ type: F32, ne: [10, 4], op: GgmlOp.MUL, src: [x, y2] });
    out2.buffer = buf;
    out2.offset = 2048;
    const p2 = await dev.planCreate(newGraph([out2]));
    await dev.planCompute(p2);
    const xy = new Float32Array((await buf.get(4, 200)).buffer);
    assertNmse(await read(out2), xs.map((v, i) => v * xy[i + 10]), 1e-12, "overlapping reads");
    await dev.planFree(p2);
    buf.free();
  },
);
