/**
 * WebGPU providers: who supplies the `GPU` object the WebGPU device runs on.
 *
 * The device (backends/webgpu/device.ts) is written against the standard WebGPU JavaScript API
 * only; a provider hands it a `GPU` (the thing `navigator.gpu` is). Providers:
 *
 * - `deno`: Deno's built-in WebGPU (`navigator.gpu`, needs `--unstable-webgpu`). Every wait
 *   (`onSubmittedWorkDone`, `mapAsync`) costs at least ~10 ms, its poll loop sleeps 10 ms.
 *
 * The provider is chosen by name (`--webgpu-provider NAME`, or the environment variable
 * `GRAPHWIRE_WEBGPU_PROVIDER` when no name is given); `auto` tries the preferred order and takes the
 * first that loads.
 * @module
 */

import { DeviceError } from "../../../protocol/errors.ts";

/** A loaded provider: the `GPU` object and what to know about its waits. */
export interface LoadedProvider {
  /** The provider's name ("deno", ...). */
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
  load(): Promise<LoadedProvider>;
}

async function loadDeno(): Promise<LoadedProvider> {
  const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
  if (!gpu) {
    throw new ProviderUnavailableError("deno", "navigator.gpu is missing (run deno with --unstable-webgpu)");
  }
  return await Promise.resolve({
    name: "deno",
    gpu,
    waitNote: "Deno built-in: each wait sleeps in 10 ms poll steps",
  });
}

/** Every provider, in the order `auto` tries them. */
export const PROVIDERS: readonly ProviderInfo[] = [
  {
    name: "deno",
    description: "Deno's built-in WebGPU (wgpu; navigator.gpu, needs --unstable-webgpu); waits cost >= 10 ms",
    load: loadDeno,
  },
];

/** Environment variable naming the provider when no name is given. */
export const PROVIDER_ENV = "GRAPHWIRE_WEBGPU_PROVIDER";

function envProvider(): string | undefined {
  try {
    return Deno.env.get(PROVIDER_ENV) || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Loads a provider by name (`undefined` → `$GRAPHWIRE_WEBGPU_PROVIDER`, else `auto`). `auto` tries
 * {@linkcode PROVIDERS} in order and returns the first that loads; throws
 * {@linkcode ProviderUnavailableError} when none (or the named one) can be loaded.
 */
export async function loadProvider(name?: string): Promise<LoadedProvider> {
  const want = name ?? envProvider() ?? "auto";
  if (want === "auto") {
    const reasons: string[] = [];
    for (const p of PROVIDERS) {
      try {
        return await p.load();
      } catch (e) {
        reasons.push(e instanceof ProviderUnavailableError ? `${p.name}: ${e.reason}` : `${p.name}: ${e}`);
      }
    }
    throw new ProviderUnavailableError("auto", reasons.join("; "));
  }
  const p = PROVIDERS.find((q) => q.name === want);
  if (!p) {
    throw new ProviderUnavailableError(
      want,
      `unknown provider (known: ${PROVIDERS.map((q) => q.name).join(", ")}, auto)`,
    );
  }
  try {
    return await p.load();
  } catch (e) {
    if (e instanceof ProviderUnavailableError) throw e;
    throw new ProviderUnavailableError(want, (e as Error).message ?? String(e));
  }
}
