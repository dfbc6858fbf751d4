/**
 * WebGPU providers: who supplies the `GPU` object the WebGPU device runs on.
 *
 * The device (backends/webgpu/device.ts) is written against the standard WebGPU JavaScript API
 * only; a provider hands it a `GPU` (what `navigator.gpu` is in a browser). Providers:
 *
 * - `deno`: Deno's built-in WebGPU (wgpu; `navigator.gpu`, needs `--unstable-webgpu`). Every
 *   wait (`onSubmittedWorkDone`, `mapAsync`) costs at least ~10 ms: its poll loop sleeps 10 ms.
 * - `dawn`: Dawn's C API (webgpu.h) from npm `bun-webgpu-linux-x64` (`libwebgpu_wrapper.so`; the
 *   `bun-webgpu-darwin-*` builds on macOS),
 *   loaded with `Deno.dlopen` (needs `--allow-ffi`); graphwire implements the WebGPU JS API over
 *   it (dawn.ts) and waits with `wgpuInstanceWaitAny`, blocking in the driver until the GPU
 *   signals instead of sleeping. Library: `$GRAPHWIRE_DAWN_LIB`, else one beside the running
 *   executable (the worker package ships it there), else the npm package.
 * - `dawn-node`: Dawn's Node.js binding (npm `webgpu`, dawn.node) loaded through Deno's Node
 *   compatibility (needs `--allow-ffi`).
 *
 * Choice: `--webgpu-provider NAME`, else `$GRAPHWIRE_WEBGPU_PROVIDER`, else `auto`. `auto` tries
 * {@linkcode AUTO_ORDER} and takes the first provider that loads and passes a self-test (a core
 * adapter that is not Dawn's null backend, a device, one write → copy → map-read round trip, within
 * a few seconds); on Linux the Dawn providers are passed over at once when no Vulkan loader exists
 * (Dawn's core adapters there are Vulkan ones; its OpenGL ES adapter is compatibility-level only). `auto` never downloads: an npm-based provider takes part only when its package
 * is already in Deno's cache (`deno cache npm:…`, or run it once by name), so a host without npm
 * access or a GPU still starts at once on `deno`.
 * @module
 */

import { DeviceError } from "../../../protocol/errors.ts";
import { findPackageFile, packageFile } from "./npm.ts";
import { DAWN_NPM_VERSION, dawnPackage, openDawn } from "./dawn_ffi.ts";

/** A loaded provider: the `GPU` object and what to know about its waits. */
export interface LoadedProvider {
  /** The provider's name ("deno", "dawn", "dawn-node"). */
  name: string;
  /** The `GPU` object (what `navigator.gpu` is in a browser). */
  gpu: GPU;
  /** A note on how this provider waits for the GPU (for banners and benchmarks). */
  waitNote?: string;
}

/** A provider that could not be loaded: `reason` says why (missing flag, package, library). */
export class ProviderUnavailableError extends DeviceError {
  override name = "ProviderUnavailableError";
  constructor(readonly provider: string, readonly reason: string) {
    super(`webgpu provider "${provider}" unavailable: ${reason}`);
  }
}

/** Description of one provider. */
export interface ProviderInfo {
  name: string;
  description: string;
  /** Loads it (may fetch an npm package when `fetch` is true). */
  load(fetch: boolean): Promise<LoadedProvider>;
}

/** npm package of the `dawn-node` provider. */
export const DAWN_NODE_NPM = "webgpu@0.6.2";

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

/** Dawn finds llvmpipe/Mesa only through EGL's surfaceless platform when no display exists. */
function headlessEgl(): void {
  try {
    if (!env("EGL_PLATFORM") && !env("DISPLAY") && !env("WAYLAND_DISPLAY")) {
      Deno.env.set("EGL_PLATFORM", "surfaceless");
    }
  } catch { /* no env permission: leave it */ }
}

/** The standard WebGPU flag constants, when the runtime has none (Deno without --unstable-webgpu). */
function ensureWebGpuGlobals(): void {
  const g = globalThis as Record<string, unknown>;
  g.GPUBufferUsage ??= {
    MAP_READ: 1,
    MAP_WRITE: 2,
    COPY_SRC: 4,
    COPY_DST: 8,
    INDEX: 16,
    VERTEX: 32,
    UNIFORM: 64,
    STORAGE: 128,
    INDIRECT: 256,
    QUERY_RESOLVE: 512,
  };
  g.GPUMapMode ??= { READ: 1, WRITE: 2 };
  g.GPUShaderStage ??= { VERTEX: 1, FRAGMENT: 2, COMPUTE: 4 };
}

async function loadDeno(): Promise<LoadedProvider> {
  const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
  if (!gpu) {
    throw new ProviderUnavailableError("deno", "navigator.gpu is missing (run deno with --unstable-webgpu)");
  }
  return await Promise.resolve({
    name: "deno",
    gpu,
    waitNote: "Deno built-in (wgpu): each wait sleeps in 10 ms poll steps",
  });
}

/**
 * Dawn's library beside the running executable (the worker package ships it next to its `deno`, a
 * compiled graphwire looks next to itself), when it is there.
 */
export function besideRuntime(): string | undefined {
  const pkg = dawnPackage();
  if ("reason" in pkg) return undefined;
  try {
    const exe = Deno.execPath();
    const p = `${exe.slice(0, Math.max(exe.lastIndexOf("/"), exe.lastIndexOf("\\")) + 1)}${pkg.file}`;
    return Deno.statSync(p).isFile ? p : undefined;
  } catch {
    return undefined;
  }
}

let dawnGpu: GPU | undefined;
async function loadDawn(fetch: boolean): Promise<LoadedProvider> {
  if (!dawnGpu) {
    let path = env("GRAPHWIRE_DAWN_LIB") ?? besideRuntime();
    if (!path) {
      const pkg = dawnPackage();
      if ("reason" in pkg) throw new ProviderUnavailableError("dawn", pkg.reason);
      if (fetch) {
        const r = await packageFile(pkg.name, DAWN_NPM_VERSION, pkg.file);
        if (!r.path) throw new ProviderUnavailableError("dawn", r.reason!);
        path = r.path;
      } else {
        path = findPackageFile(pkg.name, DAWN_NPM_VERSION, pkg.file);
        if (!path) {
          throw new ProviderUnavailableError(
            "dawn",
            `npm:${pkg.name}@${DAWN_NPM_VERSION} is not in Deno's cache (auto does not fetch it; naming the provider once does)`,
          );
        }
      }
    }
    let lib;
    try {
      headlessEgl();
      lib = openDawn(path);
    } catch (e) {
      throw new ProviderUnavailableError("dawn", `cannot open ${path}: ${(e as Error).message}`);
    }
    const { DawnGPU } = await import("./dawn.ts");
    try {
      dawnGpu = new DawnGPU(lib.symbols) as unknown as GPU;
    } catch (e) {
      throw new ProviderUnavailableError("dawn", `cannot create a Dawn instance: ${(e as Error).message}`);
    }
  }
  ensureWebGpuGlobals();
  return {
    name: "dawn",
    gpu: dawnGpu,
    waitNote: "Dawn C API via Deno.dlopen: waits block in wgpuInstanceWaitAny (1 ms slices)",
  };
}

/** `GPU` of dawn.node that, when no core adapter exists, asks for an OpenGL ES compatibility one. */
class DawnNodeGpu {
  constructor(private readonly gpu: GPU, private readonly gles: () => GPU) {}
  get wgslLanguageFeatures(): unknown {
    return (this.gpu as unknown as { wgslLanguageFeatures: unknown }).wgslLanguageFeatures;
  }
  getPreferredCanvasFormat(): GPUTextureFormat {
    return this.gpu.getPreferredCanvasFormat();
  }
  async requestAdapter(options?: GPURequestAdapterOptions): Promise<GPUAdapter | null> {
    const a = await this.gpu.requestAdapter(options);
    if (a || (options as { featureLevel?: string } | undefined)?.featureLevel) return a;
    return await this.gles().requestAdapter(
      { ...options, featureLevel: "compatibility" } as GPURequestAdapterOptions,
    );
  }
}

let dawnNodeGpu: GPU | undefined;
async function loadDawnNode(fetch: boolean): Promise<LoadedProvider> {
  if (!dawnNodeGpu) {
    const [name, version] = DAWN_NODE_NPM.split("@");
    if (!fetch && !findPackageFile(name, version, "package.json")) {
      throw new ProviderUnavailableError(
        "dawn-node",
        `npm:${DAWN_NODE_NPM} is not in Deno's cache (auto does not fetch it; naming the provider once does)`,
      );
    }
    let mod: { create(flags: string[]): GPU; globals: Record<string, unknown> };
    try {
      headlessEgl();
      const spec = `npm:${DAWN_NODE_NPM}`;
      mod = await import(spec);
    } catch (e) {
      throw new ProviderUnavailableError(
        "dawn-node",
        `cannot load npm:${DAWN_NODE_NPM}: ${(e as Error).message}`,
      );
    }
    let gles: GPU | undefined;
    dawnNodeGpu = new DawnNodeGpu(
      mod.create([]),
      () => (gles ??= mod.create(["backend=opengles"])),
    ) as unknown as GPU;
    const g = globalThis as Record<string, unknown>;
    for (const k of ["GPUBufferUsage", "GPUMapMode", "GPUShaderStage"]) g[k] ??= mod.globals[k];
  }
  ensureWebGpuGlobals();
  return {
    name: "dawn-node",
    gpu: dawnNodeGpu,
    waitNote: "Dawn's Node binding (dawn.node): waits polled by the binding",
  };
}

/** Every provider. */
export const PROVIDERS: readonly ProviderInfo[] = [
  {
    name: "deno",
    description: "Deno's built-in WebGPU (wgpu; navigator.gpu, needs --unstable-webgpu); waits cost >= 10 ms",
    load: loadDeno,
  },
  {
    name: "dawn",
    description:
      `Dawn's C API from npm:bun-webgpu-<os>-<arch>@${DAWN_NPM_VERSION} (or $GRAPHWIRE_DAWN_LIB) via Deno.dlopen; waits block in wgpuInstanceWaitAny`,
    load: loadDawn,
  },
  {
    name: "dawn-node",
    description: `Dawn's Node binding from npm:${DAWN_NODE_NPM} (dawn.node) via Deno's Node compatibility`,
    load: loadDawnNode,
  },
];

/**
 * The order `auto` tries providers in (see the module doc for the rule). From the H100 (Deno
 * 2.9.6, 2026-11-22; bench/RESULTS.md "WebGPU device → Providers"): `dawn` passes the whole WebGPU
 * test suite and waits in 0.02–0.04 ms; `deno` waits >= 11 ms; `dawn-node` passes the suite and
 * waits as fast as `dawn`, but stalls for up to 2 s after some 70 ms submits, so it comes last.
 */
export const AUTO_ORDER: readonly string[] = ["dawn", "deno", "dawn-node"];

/** Environment variable naming the provider when no name is given. */
export const PROVIDER_ENV = "GRAPHWIRE_WEBGPU_PROVIDER";

/** How long `auto`'s self-test may take per provider (ms). */
export const SELF_TEST_MS = 10_000;

/**
 * The quick check `auto` runs: a core adapter (not Dawn's null backend), a device, and 16 bytes
 * written, copied, and read back through mapAsync. Returns undefined when it passes, else why not.
 */
export async function selfTest(gpu: GPU, timeoutMs = SELF_TEST_MS): Promise<string | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<string>((r) => {
    timer = setTimeout(() => r(`self-test did not finish in ${timeoutMs} ms`), timeoutMs);
  });
  const run = async (): Promise<string | undefined> => {
    const adapter = await gpu.requestAdapter({ featureLevel: "core" } as GPURequestAdapterOptions);
    if (!adapter) return "no core adapter";
    const info = adapter.info as GPUAdapterInfo & { backend?: string };
    if (info?.backend === "null") return "only Dawn's null backend";
    const dev = await adapter.requestDevice();
    try {
      const src = dev.createBuffer({ size: 16, usage: 4 | 8 }); // COPY_SRC | COPY_DST
      const dst = dev.createBuffer({ size: 16, usage: 1 | 8 }); // MAP_READ | COPY_DST
      const want = new Uint32Array([0x01234567, 0x89abcdef, 7, 0xfffffffe]);
      dev.queue.writeBuffer(src, 0, want);
      const enc = dev.createCommandEncoder();
      enc.copyBufferToBuffer(src, 0, dst, 0, 16);
      dev.queue.submit([enc.finish()]);
      await dst.mapAsync(1);
      const got = new Uint32Array(dst.getMappedRange().slice(0));
      dst.unmap();
      if (got.some((v, i) => v !== want[i])) return `read back ${[...got]} instead of ${[...want]}`;
      return undefined;
    } finally {
      dev.destroy();
    }
  };
  try {
    return await Promise.race([
      run().catch((e) => `self-test failed: ${(e as Error).message ?? e}`),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Loads a provider by name (`undefined` → `$GRAPHWIRE_WEBGPU_PROVIDER`, else `auto`). A named
 * provider is loaded as asked (fetching its npm package if needed); `auto` follows the rule in
 * the module doc. Throws {@linkcode ProviderUnavailableError} when none (or the named one) loads.
 */
export async function loadProvider(name?: string): Promise<LoadedProvider> {
  const want = name || env(PROVIDER_ENV) || "auto";
  if (want === "auto") return await loadAuto();
  const p = PROVIDERS.find((q) => q.name === want);
  if (!p) {
    throw new ProviderUnavailableError(
      want,
      `unknown provider (known: ${PROVIDERS.map((q) => q.name).join(", ")}, auto)`,
    );
  }
  try {
    return await p.load(true);
  } catch (e) {
    if (e instanceof ProviderUnavailableError) throw e;
    throw new ProviderUnavailableError(want, (e as Error).message ?? String(e));
  }
}

let autoChoice: Promise<LoadedProvider> | undefined;
/** Why `auto` passed over each provider it did not take (for --list-devices and benches). */
export const autoSkipped: string[] = [];

/** On Linux a core Dawn adapter needs Vulkan: whether its loader can be opened (else why not). */
function vulkanLoader(): string | undefined {
  if (Deno.build.os !== "linux") return undefined;
  try {
    Deno.dlopen("libvulkan.so.1", {}).close();
    return undefined;
  } catch {
    return "no Vulkan loader (libvulkan.so.1 cannot be opened)";
  }
}

function loadAuto(): Promise<LoadedProvider> {
  autoChoice ??= (async () => {
    for (const n of AUTO_ORDER) {
      const p = PROVIDERS.find((q) => q.name === n)!;
      if (n.startsWith("dawn")) {
        const why = vulkanLoader();
        if (why) {
          autoSkipped.push(`${n}: ${why}`);
          continue;
        }
      }
      let loaded: LoadedProvider;
      try {
        loaded = await p.load(false);
      } catch (e) {
        autoSkipped.push(e instanceof ProviderUnavailableError ? `${n}: ${e.reason}` : `${n}: ${e}`);
        continue;
      }
      // The last resort is taken as it is: its own adapter search says what is missing.
      if (n === AUTO_ORDER[AUTO_ORDER.length - 1]) return loaded;
      const why = await selfTest(loaded.gpu);
      if (why === undefined) return loaded;
      autoSkipped.push(`${n}: ${why}`);
    }
    throw new ProviderUnavailableError("auto", autoSkipped.join("; "));
  })();
  return autoChoice;
}
