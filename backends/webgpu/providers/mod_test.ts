/**
 * Providers: loading by name / env / auto, and one WebGPU API conformance run (the subset the
 * device uses) against every provider that loads here, so Dawn-over-FFI is held to what Deno's
 * built-in does. Providers that cannot load (no npm package in the cache, no adapter) skip with
 * the reason; `deno` is always tested.
 */
import { assert, assertEquals, assertRejects } from "../../../tests/asserts.ts";
import {
  type LoadedProvider,
  loadProvider,
  PROVIDER_ENV,
  PROVIDERS,
  ProviderUnavailableError,
  selfTest,
} from "./mod.ts";

/** Loads provider `name` without fetching anything; the reason it cannot, or its adapter. */
async function open(name: string): Promise<{ p: LoadedProvider; adapter: GPUAdapter } | string> {
  let p: LoadedProvider;
  try {
    p = await PROVIDERS.find((q) => q.name === name)!.load(false);
  } catch (e) {
    return (e as Error).message;
  }
  const adapter = await p.gpu.requestAdapter();
  if (!adapter) return `provider ${name}: no adapter on this host`;
  return { p, adapter };
}

const opened = new Map<string, Awaited<ReturnType<typeof open>>>();
for (const { name } of PROVIDERS) {
  const o = await open(name);
  opened.set(name, o);
  if (typeof o === "string") console.log(`providers: skipping ${name}: ${o}`);
}

Deno.test("providers: unknown names and the env variable give typed errors", async () => {
  await assertRejects(() => loadProvider("no-such-provider"), ProviderUnavailableError, "unknown provider");
  const before = Deno.env.get(PROVIDER_ENV);
  Deno.env.set(PROVIDER_ENV, "no-such-provider");
  try {
    await assertRejects(() => loadProvider(), ProviderUnavailableError, "no-such-provider");
  } finally {
    if (before === undefined) Deno.env.delete(PROVIDER_ENV);
    else Deno.env.set(PROVIDER_ENV, before);
  }
});

Deno.test("providers: deno loads by name and passes the self-test", async () => {
  const p = await loadProvider("deno");
  assertEquals(p.name, "deno");
  assertEquals(await selfTest(p.gpu), undefined);
});

Deno.test("providers: auto picks a provider that passes its self-test", async () => {
  const p = await loadProvider("auto");
  assert(PROVIDERS.some((q) => q.name === p.name));
  assertEquals(await selfTest(p.gpu), undefined);
});

const WGSL = `
struct P { k: f32, add: f32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: P;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x < arrayLength(&y)) { y[g.x] = x[g.x] * p.k + p.add; }
}`;

async function readBack(dev: GPUDevice, src: GPUBuffer, offset: number, size: number): Promise<Float32Array> {
  const rb = dev.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = dev.createCommandEncoder();
  enc.copyBufferToBuffer(src, offset, rb, 0, size);
  dev.queue.submit([enc.finish()]);
  await rb.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(rb.getMappedRange().slice(0));
  rb.unmap();
  rb.destroy();
  return out;
}

for (const { name } of PROVIDERS) {
  const o = opened.get(name)!;
  Deno.test({
    name: `providers: ${name}: buffers, dynamic offsets, layouts, maps, error scopes, timestamps`,
    ignore: typeof o === "string",
    fn: async () => {
      const { adapter } = o as Exclude<typeof o, string>;
      const ts = adapter.features.has("timestamp-query");
      const dev = await adapter.requestDevice({ requiredFeatures: ts ? ["timestamp-query"] : [] });
      try {
        const n = 100;
        const x = dev.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
        const y = dev.createBuffer({
          size: n * 4,
          usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
        });
        const u = dev.createBuffer({ size: 512, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
        const src = new Float32Array(n + 5).map((_, i) => i - 2);
        dev.queue.writeBuffer(x, 0, src, 2, n); // element offset and count: x[i] = i
        dev.queue.writeBuffer(u, 0, new Float32Array([10, 10]));
        dev.queue.writeBuffer(u, 256, new Float32Array([2, 0.5]));

        const module = dev.createShaderModule({ code: WGSL });
        const bgl = dev.createBindGroupLayout({
          entries: [
            { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: "read-only-storage" } },
            { binding: 1, visibility: GPUShaderStage.COMPUTE, buffer: { type: "storage" } },
            {
              binding: 2,
              visibility: GPUShaderStage.COMPUTE,
              buffer: { type: "uniform", hasDynamicOffset: true, minBindingSize: 8 },
            },
          ],
        });
        dev.pushErrorScope("validation");
        const pipe = await dev.createComputePipelineAsync({
          layout: dev.createPipelineLayout({ bindGroupLayouts: [bgl] }),
          compute: { module, entryPoint: "main" },
        });
        const bg = dev.createBindGroup({
          layout: bgl,
          entries: [
            { binding: 0, resource: { buffer: x } },
            { binding: 1, resource: { buffer: y, offset: 0, size: n * 4 } },
            { binding: 2, resource: { buffer: u, size: 8 } },
          ],
        });
        const enc = dev.createCommandEncoder();
        enc.clearBuffer(y);
        const pass = enc.beginComputePass();
        pass.setPipeline(pipe);
        pass.setBindGroup(0, bg, new Uint32Array([0, 256]), 1, 1);
        pass.dispatchWorkgroups(Math.ceil(n / 64));
        pass.end();
        dev.queue.submit([enc.finish()]);
        await dev.queue.onSubmittedWorkDone();
        assertEquals(await dev.popErrorScope(), null);
        const got = await readBack(dev, y, 8, (n - 2) * 4);
        for (let i = 0; i < n - 2; i++) assertEquals(got[i], (i + 2) * 2 + 0.5);

        // layout "auto", a non-dynamic uniform binding at an offset, a dynamic offset given as an array
        const auto = dev.createComputePipeline({ layout: "auto", compute: { module } });
        const bg2 = dev.createBindGroup({
          layout: auto.getBindGroupLayout(0),
          entries: [
            { binding: 0, resource: { buffer: x } },
            { binding: 1, resource: { buffer: y } },
            { binding: 2, resource: { buffer: u, offset: 0, size: 8 } },
          ],
        });
        const e2 = dev.createCommandEncoder();
        const p2 = e2.beginComputePass();
        p2.setPipeline(auto);
        p2.setBindGroup(0, bg2);
        p2.dispatchWorkgroups(Math.ceil(n / 64));
        p2.end();
        dev.queue.submit([e2.finish()]);
        const got2 = await readBack(dev, y, 0, n * 4);
        for (let i = 0; i < n; i++) assertEquals(got2[i], i * 10 + 10);

        // mappedAtCreation and MAP_WRITE, ranges detached at unmap
        const mc = dev.createBuffer({ size: 16, usage: GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
        const range = mc.getMappedRange();
        new Float32Array(range).set([1, 2, 3, 4]);
        mc.unmap();
        assertEquals(range.byteLength, 0);
        assertEquals([...await readBack(dev, mc, 4, 12)], [2, 3, 4]);
        const mw = dev.createBuffer({ size: 8, usage: GPUBufferUsage.MAP_WRITE | GPUBufferUsage.COPY_SRC });
        await mw.mapAsync(GPUMapMode.WRITE);
        assertEquals(mw.mapState, "mapped");
        new Float32Array(mw.getMappedRange()).set([7, 8]);
        mw.unmap();
        assertEquals(mw.mapState, "unmapped");
        assertEquals([...await readBack(dev, mw, 0, 8)], [7, 8]);

        // a broken shader: a validation error in the scope and an error in the compilation info
        dev.pushErrorScope("validation");
        const bad = dev.createShaderModule({ code: "fn broken( {" });
        const err = await dev.popErrorScope();
        assert(err !== null && err.message.length > 0, "broken WGSL gives a validation error");
        const info = await bad.getCompilationInfo();
        assert(info.messages.some((m) => m.type === "error"), "compilation info has an error");

        if (ts) {
          const qs = dev.createQuerySet({ type: "timestamp", count: 2 });
          const qb = dev.createBuffer({
            size: 16,
            usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
          });
          const e3 = dev.createCommandEncoder();
          const p3 = e3.beginComputePass({
            timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 },
          });
          p3.setPipeline(pipe);
          p3.setBindGroup(0, bg, [256]);
          p3.dispatchWorkgroups(2);
          p3.end();
          e3.resolveQuerySet(qs, 0, 2, qb, 0);
          dev.queue.submit([e3.finish()]);
          const t = await readBack(dev, qb, 0, 16);
          const ticks = new BigUint64Array(t.buffer);
          assert(ticks[1] >= ticks[0], `timestamps in order: ${ticks[0]} ${ticks[1]}`);
          qs.destroy();
        }
      } finally {
        dev.destroy();
      }
    },
  });
}
