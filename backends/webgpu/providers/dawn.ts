/**
 * The `dawn` provider: the subset of the WebGPU JavaScript API that graphwire's WebGPU device uses,
 * implemented over Dawn's C API (webgpu.h) through `Deno.dlopen` (see dawn_ffi.ts for the library
 * and its struct layouts).
 *
 * Waits (`mapAsync`, `onSubmittedWorkDone`, `requestAdapter`, `popErrorScope`) are futures waited
 * with `wgpuInstanceWaitAny` in short timed slices (the thread blocks in the driver until the GPU
 * signals, at most {@linkcode WAIT_SLICE_NS} at a time, then yields to the event loop), so a wait
 * costs about what the GPU takes, not a 10 ms poll period. When the instance cannot be created
 * with timed waits, it polls with a zero timeout between event-loop turns instead.
 *
 * Objects without an explicit destroy (bind groups, pipelines, layouts) are released when the
 * JavaScript wrapper is garbage collected.
 *
 * Covered: requestAdapter (core, falling back to compatibility when no core adapter exists),
 * adapter info/features/limits, requestDevice with features and limits, buffers (create, write,
 * map for reading and writing, mapped at creation, destroy), shader modules (with compilation
 * info), bind group layouts, pipeline layouts, bind groups (dynamic offsets), compute pipelines
 * (layout "auto" or explicit, sync and async), command encoders (compute passes with timestamp
 * writes, copyBufferToBuffer, clearBuffer, resolveQuerySet), query sets, queue submit /
 * writeBuffer / onSubmittedWorkDone, error scopes, uncaptured errors as events. Not covered:
 * textures, samplers, render pipelines (graphwire computes only).
 * @module
 */

import { setImmediate } from "node:timers";
import {
  CallbackMode,
  type DawnLib,
  FEATURES,
  HEAP_DEVICE_LOCAL,
  LIMITS,
  LIMITS_SIZE,
  SIZE,
  STYPE_DAWN_TOGGLES_DESCRIPTOR,
  STYPE_MEMORY_HEAPS,
  STYPE_SHADER_SOURCE_WGSL,
  U32_UNDEFINED,
  U64_MAX,
  WaitStatus,
} from "./dawn_ffi.ts";

/** Longest a wait blocks the thread before yielding to the event loop (ns). */
export const WAIT_SLICE_NS = 1_000_000;

type Ptr = Deno.PointerValue;

const FEATURE_NAMES = new Map(Object.entries(FEATURES).map(([k, v]) => [v, k]));
const BACKENDS = ["undefined", "null", "webgpu", "d3d11", "d3d12", "metal", "vulkan", "opengl", "opengles"];
const ERROR_FILTERS: Record<string, number> = { validation: 1, "out-of-memory": 2, internal: 3 };
const BUFFER_BINDING: Record<string, number> = { uniform: 2, storage: 3, "read-only-storage": 4 };

function pv(p: Ptr): bigint {
  return p === null ? 0n : BigInt(Deno.UnsafePointer.value(p));
}
function ptrOf(a: ArrayBufferView | null): bigint {
  return a === null ? 0n : pv(Deno.UnsafePointer.of(a as Uint8Array<ArrayBuffer>));
}

/** Reads a `WGPUStringView` (pointer, length) into a string. */
function readView(p: Ptr, len: number | bigint): string {
  if (p === null) return "";
  const view = new Deno.UnsafePointerView(p);
  if (BigInt(len) === U64_MAX) return view.getCString();
  const n = Number(len);
  if (n === 0) return "";
  const bytes = new Uint8Array(n);
  view.copyInto(bytes, 0);
  return new TextDecoder().decode(bytes);
}

/** A struct being packed: bytes plus a little-endian DataView. */
class Struct {
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly dv: DataView;
  /** Arrays the struct points into (kept alive until the call returns). */
  readonly keep: unknown[] = [];
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.dv = new DataView(this.bytes.buffer);
  }
  u32(off: number, v: number): this {
    this.dv.setUint32(off, v >>> 0, true);
    return this;
  }
  u64(off: number, v: number | bigint): this {
    this.dv.setBigUint64(off, BigInt(v), true);
    return this;
  }
  f64(off: number, v: number): this {
    this.dv.setFloat64(off, v, true);
    return this;
  }
  ptr(off: number, p: Ptr): this {
    return this.u64(off, pv(p));
  }
  arr(off: number, a: ArrayBufferView | null): this {
    if (a) this.keep.push(a);
    return this.u64(off, ptrOf(a));
  }
  /** A string view; `undefined` packs the null view (pointer 0, WGPU_STRLEN). */
  str(off: number, s: string | undefined): this {
    if (s === undefined) return this.u64(off, 0n).u64(off + 8, U64_MAX);
    const b = new TextEncoder().encode(s);
    return this.arr(off, b.length ? b : null).u64(off + 8, b.length);
  }
  get p(): Ptr {
    return Deno.UnsafePointer.of(this.bytes);
  }
}

/** An error from a WebGPU operation (validation, out of memory, internal), as GPUError is. */
export class DawnGPUError extends Error {
  constructor(readonly type: "validation" | "out-of-memory" | "internal" | "unknown", message: string) {
    super(message);
    this.name = type === "validation"
      ? "GPUValidationError"
      : type === "out-of-memory"
      ? "GPUOutOfMemoryError"
      : "GPUInternalError";
  }
}

function errorType(t: number): DawnGPUError["type"] {
  return t === 2 ? "validation" : t === 3 ? "out-of-memory" : t === 4 ? "internal" : "unknown";
}

/** The instance, its callbacks and the wait loop shared by every object of one provider. */
class Runtime {
  readonly instance: NonNullable<Ptr>;
  readonly timed: boolean;
  private nextId = 1;
  private readonly pending = new Map<number, (...a: unknown[]) => void>();
  private readonly waitInfo = new BigUint64Array(2);
  private readonly cbScratch = new Struct(SIZE.callbackInfo);
  private readonly callbacks: Record<string, { readonly pointer: Deno.PointerObject }>;
  /** Uncaptured-error sinks by device id. */
  readonly errorSinks = new Map<number, (type: number, message: string) => void>();
  /** Releases native objects whose wrappers were collected. */
  readonly finalizer: FinalizationRegistry<{ release: (p: Ptr) => void; handle: Ptr }>;

  constructor(readonly lib: DawnLib) {
    // Timed waits (WaitAny with a timeout) must be asked for when the instance is made.
    const desc = new Struct(SIZE.instanceDescriptor).u32(16, 1).u64(24, 1);
    let inst = lib.zwgpuCreateInstance(desc.p);
    this.timed = inst !== null;
    if (inst === null) inst = lib.zwgpuCreateInstance(null);
    if (inst === null) throw new Error("wgpuCreateInstance returned null");
    this.instance = inst;
    const fire = (ud: Ptr, ...args: unknown[]) => {
      const id = Number(Deno.UnsafePointer.value(ud));
      const f = this.pending.get(id);
      if (f) {
        this.pending.delete(id);
        f(...args);
      }
    };
    this.callbacks = {
      // (status, adapter|device, message.data, message.length, userdata1, userdata2)
      request: new Deno.UnsafeCallback(
        { parameters: ["u32", "pointer", "pointer", "u64", "pointer", "pointer"], result: "void" } as const,
        (status, obj, msg, len, ud1) => fire(ud1, status, obj, readView(msg, len)),
      ),
      // (status, message.data, message.length, userdata1, userdata2)
      map: new Deno.UnsafeCallback(
        { parameters: ["u32", "pointer", "u64", "pointer", "pointer"], result: "void" } as const,
        (status, msg, len, ud1) => fire(ud1, status, readView(msg, len)),
      ),
      // (status, message.data, message.length, userdata1, userdata2): this build's work-done
      // callback carries a message, as mapAsync's does.
      workDone: new Deno.UnsafeCallback(
        { parameters: ["u32", "pointer", "u64", "pointer", "pointer"], result: "void" } as const,
        (status, msg, len, ud1) => fire(ud1, status, readView(msg, len)),
      ),
      // (status, errorType, message.data, message.length, userdata1, userdata2)
      popScope: new Deno.UnsafeCallback(
        { parameters: ["u32", "u32", "pointer", "u64", "pointer", "pointer"], result: "void" } as const,
        (status, type, msg, len, ud1) => fire(ud1, status, type, readView(msg, len)),
      ),
      // (status, const WGPUCompilationInfo*, userdata1, userdata2)
      compilation: new Deno.UnsafeCallback(
        { parameters: ["u32", "pointer", "pointer", "pointer"], result: "void" } as const,
        (status, info, ud1) => fire(ud1, status, readCompilationInfo(info)),
      ),
      // (const WGPUDevice*, errorType, message.data, message.length, userdata1, userdata2)
      uncaptured: new Deno.UnsafeCallback(
        { parameters: ["pointer", "u32", "pointer", "u64", "pointer", "pointer"], result: "void" } as const,
        (_dev, type, msg, len, ud1) => {
          const sink = this.errorSinks.get(Number(Deno.UnsafePointer.value(ud1)));
          const m = readView(msg, len);
          if (sink) sink(type, m);
          else console.error(`webgpu (dawn): uncaptured ${errorType(type)} error: ${m}`);
        },
      ),
    };
    this.finalizer = new FinalizationRegistry(({ release, handle }) => {
      try {
        release(handle);
      } catch { /* library gone at exit */ }
    });
  }

  /** The callback pointer of a kind. */
  cb(kind: string): Ptr {
    return this.callbacks[kind].pointer;
  }

  /** A fresh id routed to `f` when its callback fires. */
  register(f: (...a: unknown[]) => void): number {
    const id = this.nextId++;
    this.pending.set(id, f);
    return id;
  }

  /** Packs a WGPU*CallbackInfo (mode AllowProcessEvents) for callback `kind` and request `id`. */
  callbackInfo(kind: string, id: number): Uint8Array<ArrayBuffer> {
    const s = this.cbScratch;
    s.u64(0, 0n).u32(8, CallbackMode.AllowProcessEvents).u32(12, 0).ptr(16, this.cb(kind))
      .u64(24, BigInt(id)).u64(32, 0n);
    return s.bytes;
  }

  /** Waits for future `future` until `done()`; blocks at most one slice at a time. */
  async wait(future: number | bigint, done: () => boolean): Promise<void> {
    const info = this.waitInfo;
    const timeout = this.timed ? BigInt(WAIT_SLICE_NS) : 0n;
    while (!done()) {
      info[0] = BigInt(future);
      info[1] = 0n;
      const st = this.lib.zwgpuInstanceWaitAny(this.instance, 1n, info, timeout);
      if (done()) return;
      if (st !== WaitStatus.Success && st !== WaitStatus.TimedOut) {
        // Not waitable this way (e.g. timed waits refused): let ProcessEvents deliver it.
        this.lib.zwgpuInstanceProcessEvents(this.instance);
        if (done()) return;
      }
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  /** Calls `start(callbackInfo)` (which returns the future) and waits for its callback's args. */
  async request(kind: string, start: (info: Uint8Array<ArrayBuffer>) => number | bigint): Promise<unknown[]> {
    let result: unknown[] | undefined;
    const id = this.register((...a) => (result = a));
    const future = start(this.callbackInfo(kind, id));
    await this.wait(future, () => result !== undefined);
    return result!;
  }

  track(obj: object, release: (p: Ptr) => void, handle: Ptr): void {
    this.finalizer.register(obj, { release, handle }, obj);
  }
  untrack(obj: object): void {
    this.finalizer.unregister(obj);
  }
}

function readCompilationInfo(
  info: Ptr,
): { type: string; message: string; lineNum: number; linePos: number; offset: number; length: number }[] {
  if (info === null) return [];
  const v = new Deno.UnsafePointerView(info);
  const count = Number(v.getBigUint64(8));
  const arr = v.getPointer(16);
  const out = [];
  if (arr === null) return [];
  const m = new Deno.UnsafePointerView(arr);
  for (let i = 0; i < count; i++) {
    const o = i * 64;
    const t = m.getUint32(o + 24);
    out.push({
      message: readView(m.getPointer(o + 8), m.getBigUint64(o + 16)),
      type: t === 1 ? "error" : t === 2 ? "warning" : "info",
      lineNum: Number(m.getBigUint64(o + 32)),
      linePos: Number(m.getBigUint64(o + 40)),
      offset: Number(m.getBigUint64(o + 48)),
      length: Number(m.getBigUint64(o + 56)),
    });
  }
  return out;
}

function readLimits(bytes: Uint8Array<ArrayBuffer>): Record<string, number> {
  const dv = new DataView(bytes.buffer);
  const out: Record<string, number> = {};
  for (const [k, [off, n]] of Object.entries(LIMITS)) {
    out[k] = n === 4 ? dv.getUint32(off, true) : Number(dv.getBigUint64(off, true));
  }
  return out;
}

function readFeatures(get: (buf: Uint8Array<ArrayBuffer>) => void): Set<string> {
  const names = new Uint32Array(512);
  const s = new Struct(SIZE.supportedFeatures).u64(0, names.length).arr(8, names);
  get(s.bytes);
  const n = Number(s.dv.getBigUint64(0, true));
  const out = new Set<string>();
  for (let i = 0; i < Math.min(n, names.length); i++) {
    const name = FEATURE_NAMES.get(names[i]);
    if (name) out.add(name);
  }
  return out;
}

/** Environment variable of Dawn device toggles: `name` enables, `-name` disables, comma-separated
 * (e.g. `skip_validation`; for experiments — graphwire's defaults use none). */
export const DAWN_TOGGLES_ENV = "GRAPHWIRE_DAWN_TOGGLES";

/** A `DawnTogglesDescriptor` for the device descriptor's chain, from {@linkcode DAWN_TOGGLES_ENV}. */
function togglesChain(): Struct | undefined {
  let spec: string | undefined;
  try {
    spec = Deno.env.get(DAWN_TOGGLES_ENV);
  } catch {
    return undefined;
  }
  const names = (spec ?? "").split(",").map((t) => t.trim()).filter(Boolean);
  if (!names.length) return undefined;
  const on = names.filter((t) => !t.startsWith("-")),
    off = names.filter((t) => t.startsWith("-")).map((t) => t.slice(1));
  const s = new Struct(SIZE.togglesDescriptor).u32(8, STYPE_DAWN_TOGGLES_DESCRIPTOR);
  const list = (off: number, xs: string[]) => {
    const ptrs = new BigUint64Array(Math.max(1, xs.length));
    xs.forEach((x, i) => {
      const c = new TextEncoder().encode(x + "\0");
      s.keep.push(c);
      ptrs[i] = ptrOf(c);
    });
    s.u64(off, xs.length).arr(off + 8, ptrs);
  };
  list(16, on);
  list(32, off);
  return s;
}

/** `GPU` over Dawn. */
export class DawnGPU {
  readonly wgslLanguageFeatures = new Set<string>();
  /** @internal */
  readonly rt: Runtime;
  constructor(lib: DawnLib) {
    this.rt = new Runtime(lib);
  }
  /** Whether waits block in the driver (timed WaitAny) rather than poll. */
  get timedWaits(): boolean {
    return this.rt.timed;
  }
  getPreferredCanvasFormat(): string {
    return "bgra8unorm";
  }

  /** Asks for a core adapter; with no `featureLevel` given and no core adapter, a compatibility one. */
  async requestAdapter(options: GPURequestAdapterOptions = {}): Promise<DawnAdapter | null> {
    const fl = (options as { featureLevel?: string }).featureLevel;
    // Dawn enumerates its OpenGL ES backend only when asked for by name (compatibility level).
    const tries: [string, number][] = fl
      ? [[fl, 0]]
      : [["core", 0], ["compatibility", 0], ["compatibility", BACKENDS.indexOf("opengles")]];
    for (const [level, backend] of tries) {
      const o = new Struct(SIZE.requestAdapterOptions)
        .u32(8, level === "compatibility" ? 1 : 2)
        .u32(20, backend)
        .u32(
          12,
          options.powerPreference === "low-power"
            ? 1
            : options.powerPreference === "high-performance"
            ? 2
            : 0,
        )
        .u32(16, options.forceFallbackAdapter ? 1 : 0);
      const [status, adapter, message] = await this.rt.request(
        "request",
        (info) => this.rt.lib.zwgpuInstanceRequestAdapter(this.rt.instance, o.p, Deno.UnsafePointer.of(info)),
      );
      if (status === 1 && adapter) {
        const ad = new DawnAdapter(this.rt, adapter as Ptr, level);
        // Dawn offers its Null backend (no GPU at all) when nothing else exists: not an adapter.
        if (ad.info.backend !== "null") return ad;
        continue;
      }
      if (status !== 3 /* Unavailable */ && status !== 1) {
        throw new Error(`requestAdapter failed (status ${status}): ${message}`);
      }
    }
    return null;
  }
}

/** `GPUAdapterInfo` plus the backend name. */
export interface DawnAdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  subgroupMinSize: number;
  subgroupMaxSize: number;
  isFallbackAdapter: boolean;
  /** Dawn's backend ("vulkan", "opengles", ...): not in the standard API. */
  backend: string;
  /**
   * The adapter's memory heaps (Dawn's AdapterPropertiesMemoryHeaps, where the backend reports
   * them: Vulkan, D3D12, Metal), bytes and whether device-local; not in the standard API.
   */
  memoryHeaps?: { size: number; deviceLocal: boolean }[];
}

/**
 * The adapter's memory heaps through a chained AdapterPropertiesMemoryHeaps, or undefined when the
 * adapter does not report them. The heap array Dawn allocates is left allocated (one small array
 * per adapter opened; freeing it takes the struct by value).
 */
function memoryHeaps(
  rt: Runtime,
  adapter: Ptr,
  backend: string,
): { size: number; deviceLocal: boolean }[] | undefined {
  // the backends Dawn reports heaps for (asking others logs an error)
  if (!["vulkan", "d3d12", "metal"].includes(backend)) return undefined;
  // chain {next, sType}, heapCount (size_t), heapInfo*
  const heaps = new Uint8Array(32);
  const hv = new DataView(heaps.buffer);
  hv.setUint32(8, STYPE_MEMORY_HEAPS, true);
  const b = new Uint8Array(SIZE.adapterInfo);
  new DataView(b.buffer).setBigUint64(0, pv(Deno.UnsafePointer.of(heaps)), true);
  if (rt.lib.zwgpuAdapterGetInfo(adapter, b) !== 1 /* WGPUStatus_Success */) return undefined;
  const count = hv.getBigUint64(16, true), at = hv.getBigUint64(24, true);
  if (count < 1n || count > 64n || at === 0n) return undefined;
  const v = new Deno.UnsafePointerView(Deno.UnsafePointer.create(at)!);
  const out: { size: number; deviceLocal: boolean }[] = [];
  for (let i = 0; i < Number(count); i++) {
    const props = v.getBigUint64(16 * i), size = v.getBigUint64(16 * i + 8);
    if (props > 0x1fn || size === 0n || size > 1n << 50n) return undefined; // not heaps after all
    out.push({ size: Number(size), deviceLocal: (props & HEAP_DEVICE_LOCAL) !== 0n });
  }
  return out;
}

function adapterInfo(rt: Runtime, adapter: Ptr): DawnAdapterInfo {
  const b = new Uint8Array(SIZE.adapterInfo);
  rt.lib.zwgpuAdapterGetInfo(adapter, b);
  const v = new Deno.UnsafePointerView(Deno.UnsafePointer.of(b)!);
  const sv = (o: number) => readView(v.getPointer(o), v.getBigUint64(o + 8));
  const backend = BACKENDS[v.getUint32(72)] ?? String(v.getUint32(72));
  return {
    vendor: sv(8),
    architecture: sv(24),
    device: sv(40),
    description: sv(56),
    backend,
    isFallbackAdapter: v.getUint32(76) === 3, // WGPUAdapterType_CPU
    subgroupMinSize: v.getUint32(88),
    subgroupMaxSize: v.getUint32(92),
    memoryHeaps: memoryHeaps(rt, adapter, backend),
  };
}

/** `GPUAdapter` over Dawn. */
export class DawnAdapter {
  readonly info: DawnAdapterInfo;
  readonly features: Set<string>;
  readonly limits: Record<string, number>;
  readonly isFallbackAdapter: boolean;
  constructor(private readonly rt: Runtime, private readonly handle: Ptr, readonly featureLevel: string) {
    this.info = adapterInfo(rt, handle);
    this.isFallbackAdapter = this.info.isFallbackAdapter;
    this.features = readFeatures((b) => rt.lib.zwgpuAdapterGetFeatures(handle, b));
    const lb = new Uint8Array(LIMITS_SIZE);
    rt.lib.zwgpuAdapterGetLimits(handle, lb);
    this.limits = readLimits(lb);
    rt.track(this, (p) => rt.lib.zwgpuAdapterRelease(p), handle);
  }

  async requestDevice(desc: GPUDeviceDescriptor = {}): Promise<DawnDevice> {
    const rt = this.rt;
    const feats = [...(desc.requiredFeatures ?? [])].map((f) => {
      if (!this.features.has(f)) {
        throw new TypeError(`requestDevice: feature "${f}" is not supported by the adapter`);
      }
      return FEATURES[f];
    });
    const limits = new Struct(LIMITS_SIZE);
    for (const [, [off, n]] of Object.entries(LIMITS)) {
      if (n === 4) limits.u32(off, U32_UNDEFINED);
      else limits.u64(off, U64_MAX);
    }
    for (const [k, v] of Object.entries(desc.requiredLimits ?? {})) {
      if (v === undefined) continue;
      const l = LIMITS[k];
      if (!l) throw new DOMException(`requestDevice: unknown limit "${k}"`, "OperationError");
      if (l[1] === 4) limits.u32(l[0], v);
      else limits.u64(l[0], BigInt(v));
    }
    const devId = rt.register(() => {});
    const d = new Struct(SIZE.deviceDescriptor)
      .u64(24, feats.length).arr(32, feats.length ? new Uint32Array(feats) : null)
      .arr(40, limits.bytes)
      .u32(80, CallbackMode.AllowProcessEvents) // device lost: no callback
      .ptr(120, rt.cb("uncaptured")).u64(128, BigInt(devId));
    const toggles = togglesChain();
    if (toggles) d.arr(0, toggles.bytes).keep.push(toggles);
    const [status, device, message] = await rt.request(
      "request",
      (info) => rt.lib.zwgpuAdapterRequestDevice(this.handle, d.p, Deno.UnsafePointer.of(info)),
    );
    if (status !== 1 || !device) {
      throw new DOMException(`requestDevice failed (status ${status}): ${message}`, "OperationError");
    }
    return new DawnDevice(rt, device as Ptr, devId, this.info);
  }
}

/** `GPUDevice` over Dawn. */
export class DawnDevice extends EventTarget {
  readonly queue: DawnQueue;
  readonly features: Set<string>;
  readonly limits: Record<string, number>;
  readonly lost: Promise<{ reason: string; message: string }>;
  label = "";
  onuncapturederror: ((ev: Event & { error: DawnGPUError }) => void) | null = null;
  private resolveLost!: (v: { reason: string; message: string }) => void;
  private destroyed = false;

  /** @internal */
  constructor(readonly rt: Runtime, readonly handle: Ptr, id: number, readonly adapterInfo: DawnAdapterInfo) {
    super();
    this.lost = new Promise((r) => (this.resolveLost = r));
    rt.errorSinks.set(id, (type, message) => {
      const error = new DawnGPUError(errorType(type), message);
      const ev = Object.assign(new Event("uncapturederror", { cancelable: true }), { error });
      const listened = this.onuncapturederror !== null;
      this.onuncapturederror?.(ev);
      const notCancelled = this.dispatchEvent(ev);
      if (!listened && notCancelled) {
        console.error(`webgpu (dawn): uncaptured ${error.type} error: ${message}`);
      }
    });
    this.features = readFeatures((b) => rt.lib.zwgpuDeviceGetFeatures(handle, b));
    const lb = new Uint8Array(LIMITS_SIZE);
    rt.lib.zwgpuDeviceGetLimits(handle, lb);
    this.limits = readLimits(lb);
    this.queue = new DawnQueue(rt, rt.lib.zwgpuDeviceGetQueue(handle));
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.rt.lib.zwgpuDeviceDestroy(this.handle);
    this.rt.lib.zwgpuInstanceProcessEvents(this.rt.instance);
    this.resolveLost({ reason: "destroyed", message: "device destroyed" });
  }

  createBuffer(desc: GPUBufferDescriptor): DawnBuffer {
    const s = new Struct(SIZE.bufferDescriptor).u64(24, desc.usage).u64(32, desc.size)
      .u32(40, desc.mappedAtCreation ? 1 : 0);
    const h = this.rt.lib.zwgpuDeviceCreateBuffer(this.handle, s.bytes);
    return new DawnBuffer(this.rt, h, desc);
  }

  createShaderModule(desc: GPUShaderModuleDescriptor): DawnShaderModule {
    const src = new Struct(SIZE.shaderSourceWGSL).u32(8, STYPE_SHADER_SOURCE_WGSL).str(16, desc.code);
    const s = new Struct(SIZE.shaderModuleDescriptor).arr(0, src.bytes);
    const h = this.rt.lib.zwgpuDeviceCreateShaderModule(this.handle, s.bytes);
    return new DawnShaderModule(this.rt, h);
  }

  createBindGroupLayout(desc: GPUBindGroupLayoutDescriptor): DawnHandle {
    const entries = [...desc.entries];
    const E = SIZE.bindGroupLayoutEntry;
    const e = new Struct(Math.max(1, entries.length) * E);
    entries.forEach((en, i) => {
      const o = i * E;
      e.u32(o + 8, en.binding).u64(o + 16, en.visibility);
      if (!en.buffer) {
        throw new TypeError("createBindGroupLayout: only buffer bindings are supported by the dawn provider");
      }
      e.u32(o + 40, BUFFER_BINDING[en.buffer.type ?? "uniform"]).u32(
        o + 44,
        en.buffer.hasDynamicOffset ? 1 : 0,
      )
        .u64(o + 48, en.buffer.minBindingSize ?? 0);
    });
    const s = new Struct(SIZE.bindGroupLayoutDescriptor).u64(24, entries.length).arr(32, e.bytes);
    const h = this.rt.lib.zwgpuDeviceCreateBindGroupLayout(this.handle, s.bytes);
    return new DawnHandle(this.rt, h, (p) => this.rt.lib.zwgpuBindGroupLayoutRelease(p));
  }

  createPipelineLayout(desc: GPUPipelineLayoutDescriptor): DawnHandle {
    const layouts = [...desc.bindGroupLayouts];
    const arr = new BigUint64Array(Math.max(1, layouts.length));
    layouts.forEach((l, i) => (arr[i] = pv((l as unknown as DawnHandle).handle)));
    const s = new Struct(SIZE.pipelineLayoutDescriptor).u64(24, layouts.length).arr(32, arr);
    const h = this.rt.lib.zwgpuDeviceCreatePipelineLayout(this.handle, s.bytes);
    return new DawnHandle(this.rt, h, (p) => this.rt.lib.zwgpuPipelineLayoutRelease(p));
  }

  createBindGroup(desc: GPUBindGroupDescriptor): DawnHandle {
    const entries = [...desc.entries];
    const E = SIZE.bindGroupEntry;
    const e = new Struct(Math.max(1, entries.length) * E);
    entries.forEach((en, i) => {
      const o = i * E;
      const r = en.resource as unknown as DawnBuffer | { buffer: DawnBuffer; offset?: number; size?: number };
      const b = r instanceof DawnBuffer ? { buffer: r } : r;
      if (!(b.buffer instanceof DawnBuffer)) {
        throw new TypeError("createBindGroup: only buffer resources are supported by the dawn provider");
      }
      e.u32(o + 8, en.binding).ptr(o + 16, b.buffer.handle).u64(o + 24, b.offset ?? 0)
        .u64(o + 32, b.size === undefined ? U64_MAX : BigInt(b.size));
    });
    const s = new Struct(SIZE.bindGroupDescriptor).ptr(24, (desc.layout as unknown as DawnHandle).handle)
      .u64(32, entries.length).arr(40, e.bytes);
    const h = this.rt.lib.zwgpuDeviceCreateBindGroup(this.handle, s.bytes);
    return new DawnHandle(this.rt, h, (p) => this.rt.lib.zwgpuBindGroupRelease(p));
  }

  createComputePipeline(desc: GPUComputePipelineDescriptor): DawnComputePipeline {
    const consts = Object.entries(desc.compute.constants ?? {});
    const C = SIZE.constantEntry;
    const c = new Struct(Math.max(1, consts.length) * C);
    consts.forEach(([k, v], i) => c.str(i * C + 8, k).f64(i * C + 24, v));
    const s = new Struct(SIZE.computePipelineDescriptor)
      .ptr(24, desc.layout === "auto" ? null : (desc.layout as unknown as DawnHandle).handle)
      .ptr(40, (desc.compute.module as unknown as DawnShaderModule).handle)
      .str(48, desc.compute.entryPoint ?? undefined)
      .u64(64, consts.length).arr(72, consts.length ? c.bytes : null);
    s.keep.push(c);
    const h = this.rt.lib.zwgpuDeviceCreateComputePipeline(this.handle, s.bytes);
    return new DawnComputePipeline(this.rt, h);
  }

  /** Creates the pipeline and reports its validation error, if any, as a rejection. */
  async createComputePipelineAsync(desc: GPUComputePipelineDescriptor): Promise<DawnComputePipeline> {
    this.pushErrorScope("validation");
    const p = this.createComputePipeline(desc);
    const err = await this.popErrorScope();
    if (err) throw new DOMException(err.message, "GPUPipelineError");
    return p;
  }

  createCommandEncoder(_desc?: GPUCommandEncoderDescriptor): DawnCommandEncoder {
    return new DawnCommandEncoder(this.rt, this.rt.lib.zwgpuDeviceCreateCommandEncoder(this.handle, null));
  }

  createQuerySet(desc: GPUQuerySetDescriptor): DawnQuerySet {
    const s = new Struct(SIZE.querySetDescriptor).u32(24, desc.type === "timestamp" ? 2 : 1).u32(
      28,
      desc.count,
    );
    return new DawnQuerySet(this.rt, this.rt.lib.zwgpuDeviceCreateQuerySet(this.handle, s.bytes), desc);
  }

  pushErrorScope(filter: GPUErrorFilter): void {
    this.rt.lib.zwgpuDevicePushErrorScope(this.handle, ERROR_FILTERS[filter]);
  }

  async popErrorScope(): Promise<DawnGPUError | null> {
    const [status, type, message] = await this.rt.request(
      "popScope",
      (info) => this.rt.lib.zwgpuDevicePopErrorScope(this.handle, info),
    );
    if (status !== 1) {
      throw new DOMException(`popErrorScope failed (status ${status}): ${message}`, "OperationError");
    }
    return type === 1 ? null : new DawnGPUError(errorType(type as number), message as string);
  }
}

/** An object whose only operation is being released. */
export class DawnHandle {
  label = "";
  constructor(rt: Runtime, readonly handle: Ptr, release: (p: Ptr) => void) {
    rt.track(this, release, handle);
  }
}

/** `GPUShaderModule` over Dawn. */
export class DawnShaderModule extends DawnHandle {
  constructor(private readonly rt: Runtime, handle: Ptr) {
    super(rt, handle, (p) => rt.lib.zwgpuShaderModuleRelease(p));
  }
  async getCompilationInfo(): Promise<{ messages: ReturnType<typeof readCompilationInfo> }> {
    const [, messages] = await this.rt.request(
      "compilation",
      (info) => this.rt.lib.zwgpuShaderModuleGetCompilationInfo(this.handle, info),
    );
    return { messages: messages as ReturnType<typeof readCompilationInfo> };
  }
}

/** `GPUComputePipeline` over Dawn. */
export class DawnComputePipeline extends DawnHandle {
  constructor(private readonly rt: Runtime, handle: Ptr) {
    super(rt, handle, (p) => rt.lib.zwgpuComputePipelineRelease(p));
  }
  getBindGroupLayout(index: number): DawnHandle {
    const h = this.rt.lib.zwgpuComputePipelineGetBindGroupLayout(this.handle, index);
    return new DawnHandle(this.rt, h, (p) => this.rt.lib.zwgpuBindGroupLayoutRelease(p));
  }
}

/** `GPUQuerySet` over Dawn. */
export class DawnQuerySet extends DawnHandle {
  readonly type: GPUQueryType;
  readonly count: number;
  constructor(private readonly rt: Runtime, handle: Ptr, desc: GPUQuerySetDescriptor) {
    super(rt, handle, (p) => rt.lib.zwgpuQuerySetRelease(p));
    this.type = desc.type;
    this.count = desc.count;
  }
  destroy(): void {
    this.rt.lib.zwgpuQuerySetDestroy(this.handle);
  }
}

interface MappedView {
  ab: ArrayBuffer;
  ptr: Ptr;
  size: number;
  write: boolean;
}

/** `GPUBuffer` over Dawn. Mapped ranges are JavaScript copies: read ones filled at getMappedRange,
 * written ones copied back at unmap; every one is detached at unmap, as the standard says. */
export class DawnBuffer {
  readonly size: number;
  readonly usage: number;
  label = "";
  mapState: GPUBufferMapState;
  private mapMode = 0;
  private views: MappedView[] = [];
  private destroyed = false;

  constructor(private readonly rt: Runtime, readonly handle: Ptr, desc: GPUBufferDescriptor) {
    this.size = desc.size;
    this.usage = desc.usage;
    this.mapState = desc.mappedAtCreation ? "mapped" : "unmapped";
    if (desc.mappedAtCreation) this.mapMode = 2;
    rt.track(this, (p) => rt.lib.zwgpuBufferRelease(p), handle);
  }

  async mapAsync(mode: number, offset = 0, size?: number): Promise<void> {
    if (this.mapState !== "unmapped") {
      throw new DOMException(`mapAsync: buffer is ${this.mapState}`, "OperationError");
    }
    const n = size ?? this.size - offset;
    this.mapState = "pending";
    const [status, message] = await this.rt.request(
      "map",
      (info) => this.rt.lib.zwgpuBufferMapAsync(this.handle, BigInt(mode), BigInt(offset), BigInt(n), info),
    );
    if (status !== 1) {
      this.mapState = "unmapped";
      throw new DOMException(`mapAsync failed (status ${status}): ${message}`, "OperationError");
    }
    this.mapState = "mapped";
    this.mapMode = mode;
  }

  getMappedRange(offset = 0, size?: number): ArrayBuffer {
    if (this.mapState !== "mapped") {
      throw new DOMException("getMappedRange: buffer is not mapped", "OperationError");
    }
    const n = size ?? this.size - offset;
    const write = (this.mapMode & 2) !== 0;
    const p = write
      ? this.rt.lib.zwgpuBufferGetMappedRange(this.handle, BigInt(offset), BigInt(n))
      : this.rt.lib.zwgpuBufferGetConstMappedRange(this.handle, BigInt(offset), BigInt(n));
    if (p === null) throw new DOMException("getMappedRange: range not mapped", "OperationError");
    const ab = new ArrayBuffer(n);
    if (n > 0) new Deno.UnsafePointerView(p).copyInto(new Uint8Array(ab), 0);
    this.views.push({ ab, ptr: p, size: n, write });
    return ab;
  }

  unmap(): void {
    for (const v of this.views) {
      if (v.write && v.size > 0 && !v.ab.detached) {
        new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(v.ptr!, v.size)).set(new Uint8Array(v.ab));
      }
      if (!v.ab.detached) v.ab.transfer(0);
    }
    this.views = [];
    this.rt.lib.zwgpuBufferUnmap(this.handle);
    this.mapState = "unmapped";
    this.mapMode = 0;
  }

  destroy(): void {
    if (this.destroyed) return;
    for (const v of this.views) if (!v.ab.detached) v.ab.transfer(0);
    this.views = [];
    this.destroyed = true;
    this.mapState = "unmapped";
    this.rt.lib.zwgpuBufferDestroy(this.handle);
  }
}

/** `GPUQueue` over Dawn. */
export class DawnQueue {
  label = "";
  private cmds = new BigUint64Array(8);
  constructor(private readonly rt: Runtime, readonly handle: Ptr) {}

  submit(buffers: Iterable<DawnCommandBuffer>): void {
    const list = [...buffers];
    if (list.length > this.cmds.length) this.cmds = new BigUint64Array(list.length * 2);
    list.forEach((b, i) => (this.cmds[i] = pv(b.take())));
    this.rt.lib.zwgpuQueueSubmit(this.handle, BigInt(list.length), this.cmds);
    for (let i = 0; i < list.length; i++) {
      this.rt.lib.zwgpuCommandBufferRelease(Deno.UnsafePointer.create(this.cmds[i]));
    }
  }

  writeBuffer(
    buffer: DawnBuffer,
    bufferOffset: number,
    data: BufferSource,
    dataOffset = 0,
    size?: number,
  ): void {
    let u8: Uint8Array;
    if (ArrayBuffer.isView(data)) {
      const esz = (data as unknown as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1;
      const off = data.byteOffset + dataOffset * esz;
      const len = size !== undefined ? size * esz : data.byteLength - dataOffset * esz;
      u8 = data instanceof Uint8Array && dataOffset === 0 && size === undefined
        ? data
        : new Uint8Array(data.buffer, off, len);
    } else {
      u8 = new Uint8Array(
        data as ArrayBuffer,
        dataOffset,
        size ?? (data as ArrayBuffer).byteLength - dataOffset,
      );
    }
    this.rt.lib.zwgpuQueueWriteBuffer(
      this.handle,
      buffer.handle,
      BigInt(bufferOffset),
      u8 as Uint8Array<ArrayBuffer>,
      BigInt(u8.byteLength),
    );
  }

  async onSubmittedWorkDone(): Promise<void> {
    const [status] = await this.rt.request(
      "workDone",
      (info) => this.rt.lib.zwgpuQueueOnSubmittedWorkDone(this.handle, info),
    );
    if (status !== 1) {
      throw new DOMException(`onSubmittedWorkDone failed (status ${status})`, "OperationError");
    }
  }
}

/** `GPUCommandBuffer` over Dawn (consumed by submit). */
export class DawnCommandBuffer {
  label = "";
  constructor(private handle: Ptr) {}
  /** @internal */
  take(): Ptr {
    const h = this.handle;
    if (h === null) throw new DOMException("command buffer already submitted", "OperationError");
    this.handle = null;
    return h;
  }
}

/** `GPUCommandEncoder` over Dawn. */
export class DawnCommandEncoder {
  label = "";
  constructor(private readonly rt: Runtime, private handle: Ptr) {}

  beginComputePass(desc: GPUComputePassDescriptor = {}): DawnComputePass {
    const s = new Struct(SIZE.computePassDescriptor);
    if (desc.timestampWrites) {
      const tw = desc.timestampWrites;
      const t = new Struct(SIZE.passTimestampWrites).ptr(8, (tw.querySet as unknown as DawnQuerySet).handle)
        .u32(16, tw.beginningOfPassWriteIndex ?? U32_UNDEFINED).u32(
          20,
          tw.endOfPassWriteIndex ?? U32_UNDEFINED,
        );
      s.arr(24, t.bytes);
    }
    return new DawnComputePass(
      this.rt,
      this.rt.lib.zwgpuCommandEncoderBeginComputePass(this.handle, s.bytes),
    );
  }

  copyBufferToBuffer(
    src: DawnBuffer,
    a: number | DawnBuffer,
    b?: number | DawnBuffer,
    c?: number,
    d?: number,
  ): void {
    // (src, srcOffset, dst, dstOffset, size) or (src, dst, size?)
    if (a instanceof DawnBuffer) {
      const size = (b as number | undefined) ?? Math.min(src.size, a.size);
      this.rt.lib.zwgpuCommandEncoderCopyBufferToBuffer(
        this.handle,
        src.handle,
        0n,
        a.handle,
        0n,
        BigInt(size),
      );
    } else {
      const dst = b as DawnBuffer;
      const size = d ?? src.size - a;
      this.rt.lib.zwgpuCommandEncoderCopyBufferToBuffer(
        this.handle,
        src.handle,
        BigInt(a),
        dst.handle,
        BigInt(c ?? 0),
        BigInt(size),
      );
    }
  }

  clearBuffer(buffer: DawnBuffer, offset = 0, size?: number): void {
    this.rt.lib.zwgpuCommandEncoderClearBuffer(
      this.handle,
      buffer.handle,
      BigInt(offset),
      size === undefined ? U64_MAX : BigInt(size),
    );
  }

  resolveQuerySet(qs: DawnQuerySet, first: number, count: number, dst: DawnBuffer, dstOffset: number): void {
    this.rt.lib.zwgpuCommandEncoderResolveQuerySet(
      this.handle,
      qs.handle,
      first,
      count,
      dst.handle,
      BigInt(dstOffset),
    );
  }

  finish(_desc?: GPUCommandBufferDescriptor): DawnCommandBuffer {
    const cb = this.rt.lib.zwgpuCommandEncoderFinish(this.handle, null);
    this.rt.lib.zwgpuCommandEncoderRelease(this.handle);
    this.handle = null;
    return new DawnCommandBuffer(cb);
  }
}

/** `GPUComputePassEncoder` over Dawn. */
export class DawnComputePass {
  label = "";
  private scratch = new Uint32Array(16);
  constructor(private readonly rt: Runtime, private readonly handle: Ptr) {}

  setPipeline(p: DawnComputePipeline): void {
    this.rt.lib.zwgpuComputePassEncoderSetPipeline(this.handle, p.handle);
  }

  setBindGroup(
    index: number,
    group: DawnHandle | null,
    offsets?: Iterable<number> | Uint32Array,
    start?: number,
    length?: number,
  ): void {
    const g = group ? group.handle : null;
    if (!offsets) {
      this.rt.lib.zwgpuComputePassEncoderSetBindGroup(this.handle, index, g, 0n, null);
      return;
    }
    let arr: Uint32Array;
    if (offsets instanceof Uint32Array) {
      arr = start !== undefined
        ? offsets.subarray(start, start + (length ?? offsets.length - start))
        : offsets;
    } else {
      const list = offsets as number[];
      if (list.length > this.scratch.length) this.scratch = new Uint32Array(list.length * 2);
      for (let i = 0; i < list.length; i++) this.scratch[i] = list[i];
      arr = this.scratch.subarray(0, list.length);
    }
    this.rt.lib.zwgpuComputePassEncoderSetBindGroup(
      this.handle,
      index,
      g,
      BigInt(arr.length),
      arr as Uint32Array<ArrayBuffer>,
    );
  }

  dispatchWorkgroups(x: number, y = 1, z = 1): void {
    this.rt.lib.zwgpuComputePassEncoderDispatchWorkgroups(this.handle, x, y, z);
  }

  end(): void {
    this.rt.lib.zwgpuComputePassEncoderEnd(this.handle);
    this.rt.lib.zwgpuComputePassEncoderRelease(this.handle);
  }
}
