/**
 * The WebGPU device: any adapter a WebGPU provider offers (Vulkan, Metal, D3D12, or llvmpipe in
 * software), on the standard WebGPU JavaScript API only.
 *
 * - Limits: the device is requested with the adapter's own limits (a default device would get
 *   128 MiB bindings and 256 MiB buffers). GET_MAX_SIZE reports maxBufferSize; a tensor is bound over
 *   its own byte range, so tensors up to maxStorageBufferBindingSize (minus the offset alignment)
 *   are computed and larger ones are refused by `supportsOp`.
 * - Alignment (GET_ALIGNMENT): 256 bytes, or minStorageBufferOffsetAlignment if larger. ggml's
 *   allocator then places every tensor at a bindable offset, so only views carry a remainder.
 * - Memory: WebGPU does not tell free memory. The device counts what it allocated against a total:
 *   `GRAPHWIRE_WEBGPU_MEMORY_MB` when set, else the largest device-local memory heap where the
 *   provider reports heaps (Dawn: Vulkan, D3D12, Metal), else host RAM for a CPU or integrated
 *   adapter (they share it), else 8 GiB for a discrete one; the description says which.
 * - Features used when present: shader-f16, timestamp-query, subgroups (requested even when the
 *   adapter does not list it, as Deno's wgpu accepts it; shaders then omit `enable subgroups;`).
 * @module
 */

import { DeviceError, UnsupportedOpError } from "../../protocol/errors.ts";
import type { Graph } from "../../protocol/graph/graph.ts";
import { VIEW_OPS } from "../../protocol/graph/ops.ts";
import { describeNode, nbytes, type Tensor } from "../../protocol/graph/tensor.ts";
import type { Device, DeviceKind, DeviceMemory, Plan } from "../device.ts";
import { BYTES_WGSL, WebGpuBuffer } from "./buffer.ts";
import { type Caps, elemSize } from "./kernels/kernel.ts";
import { kernelFor } from "./kernels/mod.ts";
import { WebGpuPlan } from "./plan.ts";
import { loadProvider } from "./providers/mod.ts";

/** Read-back staging buffers kept per device, in bytes. */
const STAGING_KEEP = 32 << 20;

/** GET_ALIGNMENT floor. */
const MIN_ALIGNMENT = 256;

/** Options of {@linkcode openWebGpuDevice}. */
export interface WebGpuOptions {
  /** Provider name (`--webgpu-provider`); default: the provider module's choice. */
  provider?: string;
  /** Registry index (name "webgpu:INDEX"). */
  index?: number;
}

/** Why no device could be opened, or the device. */
export type OpenResult = { device: WebGpuDevice } | { absent: string };

/** Opens the first adapter of the provider as a device, or says why not. */
export async function openWebGpuDevice(opts: WebGpuOptions = {}): Promise<OpenResult> {
  let gpu: GPU, provider: string;
  try {
    const p = await loadProvider(opts.provider);
    gpu = p.gpu;
    provider = p.name;
  } catch (e) {
    return { absent: (e as Error).message };
  }
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) return { absent: `provider "${provider}" found no WebGPU adapter` };
  const want: string[] = [];
  for (const f of ["shader-f16", "timestamp-query"] as GPUFeatureName[]) {
    if (adapter.features.has(f)) want.push(f);
  }
  const limits: Record<string, number> = {};
  for (
    const k of [
      "maxBufferSize",
      "maxStorageBufferBindingSize",
      "maxComputeWorkgroupStorageSize",
      "maxComputeInvocationsPerWorkgroup",
      "maxComputeWorkgroupSizeX",
      "maxComputeWorkgroupSizeY",
      "maxComputeWorkgroupSizeZ",
      "maxComputeWorkgroupsPerDimension",
      "maxStorageBuffersPerShaderStage",
      "maxUniformBufferBindingSize",
      "maxBindGroups",
      "maxDynamicUniformBuffersPerPipelineLayout",
      "minStorageBufferOffsetAlignment",
      "minUniformBufferOffsetAlignment",
    ]
  ) {
    const v = (adapter.limits as unknown as Record<string, number>)[k];
    if (typeof v === "number") limits[k] = v;
  }
  let device: GPUDevice | null = null;
  let subgroups = false, subgroupsListed = adapter.features.has("subgroups");
  for (const extra of [["subgroups"], []]) {
    try {
      device = await adapter.requestDevice({
        requiredFeatures: [...want, ...extra] as GPUFeatureName[],
        requiredLimits: limits,
      });
      subgroups = extra.length > 0;
      break;
    } catch {
      subgroupsListed = false;
    }
  }
  if (!device) return { absent: `adapter refused a device with its own limits` };
  return { device: new WebGpuDevice(adapter, device, provider, subgroups, subgroupsListed, opts.index ?? 0) };
}

function hostMemory(): number {
  try {
    return Deno.systemMemoryInfo().total;
  } catch {
    return 8 * 2 ** 30;
  }
}

/** A WebGPU adapter as a graphwire Device. */
export class WebGpuDevice implements Device {
  readonly name: string;
  readonly description: string;
  readonly kind: DeviceKind = "webgpu";
  readonly alignment: number;
  readonly maxBufferSize: number;
  /** The GPUDevice. */
  readonly gpu: GPUDevice;
  readonly adapterInfo: GPUAdapterInfo;
  /** What kernels may use. */
  readonly caps: Caps;
  /** minStorageBufferOffsetAlignment: where bindings may start. */
  readonly storageAlign: number;
  /** minUniformBufferOffsetAlignment. */
  readonly uniformAlign: number;
  /** Features granted. */
  readonly features: ReadonlySet<string>;
  readonly provider: string;
  /** An emulated adapter (llvmpipe, SwiftShader): never the best device over the CPU. */
  readonly emulated: boolean;
  #total: number;
  #allocated = 0;
  #nextId = 1;
  /** Unmapped MAP_READ buffers kept for the next read-back (a token's logits each step). */
  #staging: GPUBuffer[] = [];
  #stagingBytes = 0;
  /** Pipelines by layout key, then by shader (cached string hashes make repeated lookups cheap). */
  #pipelines = new Map<string, Map<string, GPUComputePipeline>>();
  #layouts = new Map<string, { group: GPUBindGroupLayout; pipeline: GPUPipelineLayout }>();
  #bytes: GPUComputePipeline | null = null;
  #dummy: GPUBuffer | null = null;
  #errors: string[] = [];

  constructor(
    adapter: GPUAdapter,
    device: GPUDevice,
    provider: string,
    subgroups: boolean,
    subgroupsListed: boolean,
    index: number,
  ) {
    this.gpu = device;
    this.provider = provider;
    this.name = `webgpu:${index}`;
    const info = adapter.info;
    this.adapterInfo = info;
    const l = device.limits;
    this.storageAlign = l.minStorageBufferOffsetAlignment;
    this.uniformAlign = l.minUniformBufferOffsetAlignment;
    this.alignment = Math.max(MIN_ALIGNMENT, this.storageAlign);
    this.maxBufferSize = l.maxBufferSize;
    this.features = new Set([...device.features].map(String));
    if (subgroups) (this.features as Set<string>).add("subgroups");
    const env = (() => {
      try {
        return Number(Deno.env.get("GRAPHWIRE_WEBGPU_MEMORY_MB") ?? "");
      } catch {
        return 0;
      }
    })();
    const software = (info as { isFallbackAdapter?: boolean }).isFallbackAdapter === true ||
      /llvmpipe|lavapipe|swiftshader|software/i.test(`${info.description ?? ""} ${info.device ?? ""}`);
    this.emulated = software;
    const heaps = (info as { memoryHeaps?: { size: number; deviceLocal: boolean }[] }).memoryHeaps;
    const deviceLocal = Math.max(0, ...(heaps ?? []).filter((h) => h.deviceLocal).map((h) => h.size));
    let memNote: string;
    if (env > 0) {
      this.#total = env * 2 ** 20;
      memNote = "memory total from GRAPHWIRE_WEBGPU_MEMORY_MB";
    } else if (deviceLocal > 0 && !software) {
      this.#total = deviceLocal;
      memNote = "memory total = the adapter's largest device-local heap";
    } else if (software || /integrated/i.test(info.description ?? "")) {
      this.#total = hostMemory();
      memNote = "memory total = host RAM (shared)";
    } else {
      this.#total = 8 * 2 ** 30;
      memNote = "memory total assumed 8 GiB (WebGPU does not report it; set GRAPHWIRE_WEBGPU_MEMORY_MB)";
    }
    const sub = info as { subgroupMinSize?: number; subgroupMaxSize?: number };
    this.caps = {
      f16: device.features.has("shader-f16"),
      subgroups,
      subgroupsEnable: subgroups && subgroupsListed ? "enable subgroups;\n" : "",
      subgroupMinSize: sub.subgroupMinSize ?? 0,
      subgroupMaxSize: sub.subgroupMaxSize ?? 0,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      minStorageBufferOffsetAlignment: l.minStorageBufferOffsetAlignment,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    };
    const hex = (x: string) => /^\d+$/.test(x) ? `0x${Number(x).toString(16)}` : x;
    const ids = [
      info.vendor && `vendor ${hex(info.vendor)}`,
      info.architecture,
      info.device && info.device !== "0" && `device ${hex(info.device)}`,
    ].filter(Boolean).join(", ");
    const what = `${info.description || "adapter"}${ids ? ` [${ids}]` : ""}`;
    const feats = [...this.features].filter((f) =>
      ["shader-f16", "timestamp-query", "subgroups"].includes(f)
    );
    this.description = `WebGPU ${what} (${provider}; bindings ≤ ${
      (l.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)
    } MiB, buffers ≤ ${(l.maxBufferSize / 2 ** 20).toFixed(0)} MiB; ${
      feats.join(", ") || "no optional features"
    }; ${memNote})`;
    device.addEventListener("uncapturederror", (ev) => {
      const msg = (ev as GPUUncapturedErrorEvent).error.message;
      if (this.#errors.length < 16) this.#errors.push(msg);
    });
  }

  memory(): DeviceMemory {
    return { total: this.#total, free: Math.max(0, this.#total - this.#allocated) };
  }

  allocBuffer(size: number): WebGpuBuffer | null {
    if (!Number.isSafeInteger(size) || size < 0 || size > this.maxBufferSize) return null;
    if (this.#allocated + size > this.#total) return null;
    const real = Math.max(4, Math.ceil(size / 4) * 4);
    if (real > this.maxBufferSize) return null;
    let gpu: GPUBuffer;
    try {
      gpu = this.gpu.createBuffer({
        size: real,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      });
    } catch {
      return null;
    }
    this.#allocated += size;
    return new WebGpuBuffer(this, size, gpu, this.#nextId++);
  }

  /** Called by a buffer when freed. */
  release(b: WebGpuBuffer): void {
    this.#allocated -= b.size;
  }

  allocSize(tensor: Tensor): number {
    return nbytes(tensor);
  }

  supportsOp(node: Tensor): boolean {
    if (VIEW_OPS.has(node.op)) return true;
    const k = kernelFor(node, this.caps);
    if (!k) return false;
    const limit = this.caps.maxStorageBufferBindingSize - this.storageAlign - 8;
    const large = nbytes(node) > limit || node.src.some((s) => s && nbytes(s) > limit);
    if (large && !k.splitsLarge?.(node, this.caps)) return false;
    // kernels index whole elements: data must start on one
    for (const t of [node, ...node.src]) {
      if (t && t.buffer && t.offset % Math.min(4, elemSize(t.type)) !== 0) return false;
    }
    return true;
  }

  planCreate(graph: Graph): Promise<Plan> {
    return WebGpuPlan.create(this, graph);
  }

  async planUpdate(plan: Plan, graph: Graph): Promise<Plan> {
    return await (plan as WebGpuPlan).update(graph);
  }

  planCompute(plan: Plan): void {
    (plan as WebGpuPlan).run();
    this.#throwErrors();
  }

  planFree(plan: Plan): void {
    (plan as WebGpuPlan).free();
  }

  async compute(graph: Graph): Promise<void> {
    const p = await WebGpuPlan.create(this, graph);
    p.run();
    p.free();
    this.#throwErrors();
  }

  async synchronize(): Promise<void> {
    await this.gpu.queue.onSubmittedWorkDone();
    this.#throwErrors();
  }

  close(): void {
    this.gpu.destroy();
  }

  /**
   * A MAP_READ | COPY_DST buffer of at least `size` bytes: a kept one when one is large enough
   * (the smallest such), else a new one. Give it back with {@linkcode giveStaging} once unmapped.
   */
  takeStaging(size: number): GPUBuffer {
    let best = -1;
    for (let i = 0; i < this.#staging.length; i++) {
      const b = this.#staging[i];
      if (b.size >= size && (best < 0 || b.size < this.#staging[best].size)) best = i;
    }
    if (best >= 0) {
      const [b] = this.#staging.splice(best, 1);
      this.#stagingBytes -= b.size;
      return b;
    }
    return this.gpu.createBuffer({
      size: Math.ceil(size / 4) * 4,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
  }

  /** Keeps an unmapped staging buffer for later reads (up to STAGING_KEEP bytes), or destroys it. */
  giveStaging(b: GPUBuffer): void {
    if (b.size <= STAGING_KEEP && this.#stagingBytes + b.size <= STAGING_KEEP) {
      this.#staging.push(b);
      this.#stagingBytes += b.size;
      return;
    }
    b.destroy();
  }

  /** Validation errors WebGPU reported since the last call (they arrive asynchronously). */
  #throwErrors(): void {
    if (!this.#errors.length) return;
    const e = this.#errors.splice(0);
    throw new DeviceError(`webgpu: ${e.join("; ")}`);
  }

  /** The pipeline for `code` with bindings of `layoutKey` ("r", "w" per storage binding). */
  async pipeline(code: string, layoutKey: string, label: string): Promise<GPUComputePipeline> {
    let byCode = this.#pipelines.get(layoutKey);
    if (!byCode) this.#pipelines.set(layoutKey, byCode = new Map());
    const have = byCode.get(code);
    if (have) return have;
    const layout = this.layout(layoutKey);
    const module = this.gpu.createShaderModule({ code, label });
    let pipe: GPUComputePipeline;
    try {
      pipe = await this.gpu.createComputePipelineAsync({
        layout: layout.pipeline,
        compute: { module, entryPoint: "main" },
        label,
      });
    } catch (e) {
      const info = await module.getCompilationInfo();
      const msgs = info.messages.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join("; ");
      throw new UnsupportedOpError(
        `webgpu: kernel ${label} failed to build: ${(e as Error).message} ${msgs}`,
      );
    }
    byCode.set(code, pipe);
    return pipe;
  }

  /** Bind group and pipeline layouts for storage bindings `key` ("r"/"w" each) plus a dynamic uniform. */
  layout(key: string): { group: GPUBindGroupLayout; pipeline: GPUPipelineLayout } {
    const have = this.#layouts.get(key);
    if (have) return have;
    const entries: GPUBindGroupLayoutEntry[] = [];
    [...key].forEach((c, i) => {
      if (c === "-") return; // folded into another binding
      entries.push({
        binding: i,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: c === "w" ? "storage" : "read-only-storage" },
      });
    });
    entries.push({
      binding: key.length,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: "uniform", hasDynamicOffset: true },
    });
    const group = this.gpu.createBindGroupLayout({ entries });
    const out = { group, pipeline: this.gpu.createPipelineLayout({ bindGroupLayouts: [group] }) };
    this.#layouts.set(key, out);
    return out;
  }

  /** The byte kernel of buffer transfers. */
  bytesPipeline(): GPUComputePipeline {
    if (!this.#bytes) {
      this.#bytes = this.gpu.createComputePipeline({
        layout: "auto",
        compute: { module: this.gpu.createShaderModule({ code: BYTES_WGSL }), entryPoint: "main" },
      });
    }
    return this.#bytes;
  }

  /** A 4-byte buffer bound where the byte kernel has no source. */
  dummy(): GPUBuffer {
    if (!this.#dummy) {
      this.#dummy = this.gpu.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
    }
    return this.#dummy;
  }

  /** Throws when `node` has no kernel here (plans call it). */
  requireKernel(node: Tensor) {
    const k = kernelFor(node, this.caps);
    if (!k) throw new UnsupportedOpError(`${this.name} does not support ${describeNode(node)}`);
    return k;
  }
}
