/**
 * Device discovery and selection. Names: "cpu", "webgpu:0", "cuda:0", "hip:0", "rpc:HOST:PORT/0";
 * a bare kind ("webgpu", "cuda") means its first device.
 *
 * Each backend contributes a {@linkcode BackendProvider}; discovery asks every provider, and a
 * provider that finds nothing says why (no library, no adapter), which `--list-devices` prints.
 * @module
 */

import type { Device, DeviceKind } from "./device.ts";

/** Options passed to every provider's discovery. */
export interface DiscoverOptions {
  /** CPU worker threads (`-t`). */
  threads?: number;
  /** Path of the native CUDA/HIP library (`--native-lib`). */
  nativeLib?: string;
  /** WebGPU provider name (`--webgpu-provider`). */
  webgpuProvider?: string;
  /** Print progress and reasons. */
  verbose?: boolean;
  /** The specs asked for by name ("rpc:HOST:PORT/0"): providers of devices that are never
   * discovered on their own (remote servers) open exactly these. */
  specs?: string[];
}

/** What one provider found. */
export interface Discovery {
  devices: Device[];
  /** Why this provider has no devices (or only some), when it can tell. */
  absent?: string;
}

/** A family of devices that can be discovered on this host. */
export interface BackendProvider {
  readonly kind: DeviceKind;
  /** Higher is preferred when choosing the best device. */
  readonly priority: number;
  discover(opts: DiscoverOptions): Promise<Discovery>;
}

const providers: BackendProvider[] = [];

/** Adds a provider (each backend's mod.ts registers itself; see backends/all.ts). */
export function registerProvider(p: BackendProvider): void {
  if (!providers.some((q) => q.kind === p.kind)) providers.push(p);
}

/** Every provider registered, most preferred first. */
export function listProviders(): BackendProvider[] {
  return [...providers].sort((a, b) => b.priority - a.priority);
}

/** Result of discovering every provider. */
export interface DiscoveryReport {
  /** All devices found, most preferred first (by kind; an emulated GPU after the CPU). */
  devices: Device[];
  /** Per kind: why it found nothing (or only partly). */
  absent: Map<DeviceKind, string>;
}

/** Asks every registered provider for its devices; a provider that throws is reported absent. */
export async function discoverAll(
  opts: DiscoverOptions = {},
  kinds?: DeviceKind[],
): Promise<DiscoveryReport> {
  const ranked: { device: Device; rank: number }[] = [];
  const absent = new Map<DeviceKind, string>();
  for (const p of listProviders()) {
    if (kinds && !kinds.includes(p.kind)) continue;
    try {
      const d = await p.discover(opts);
      // an emulated GPU ranks just below the CPU reference (priority 0): on this machine llvmpipe
      // ran the tiny model 8.5× slower (pp512) and 45× slower (tg128) than the CPU device
      for (const device of d.devices) ranked.push({ device, rank: device.emulated ? -1 : p.priority });
      if (d.absent) absent.set(p.kind, d.absent);
    } catch (e) {
      absent.set(p.kind, (e as Error).message);
    }
  }
  return { devices: rankDevices(ranked), absent };
}

/** Devices most preferred first: by rank (provider priority; -1 for an emulated GPU), stably. */
export function rankDevices(found: { device: Device; rank: number }[]): Device[] {
  return [...found].sort((a, b) => b.rank - a.rank).map((r) => r.device);
}

/** Kinds a device spec names: "cuda:0" → "cuda"; "rpc:host:port/0" → "rpc". */
export function specKind(spec: string): string {
  const i = spec.indexOf(":");
  return i < 0 ? spec : spec.slice(0, i);
}

/**
 * Picks devices by a comma list of specs ("cuda:0,cpu"); an empty list means the single best
 * device found. Throws with the list of what exists when a spec matches nothing.
 */
export async function selectDevices(specs: string[], opts: DiscoverOptions = {}): Promise<Device[]> {
  const kinds = specs.length ? [...new Set(specs.map(specKind))] as DeviceKind[] : undefined;
  const report = await discoverAll({ ...opts, specs }, kinds);
  if (specs.length === 0) {
    if (report.devices.length === 0) throw new Error("no device found");
    return [report.devices[0]];
  }
  const out: Device[] = [];
  for (const spec of specs) {
    const name = spec.includes(":") ? spec : report.devices.find((d) => d.kind === spec)?.name;
    const dev = report.devices.find((d) => d.name === name);
    if (!dev) {
      const why = report.absent.get(specKind(spec) as DeviceKind);
      const have = report.devices.map((d) => d.name).join(", ") || "none";
      throw new Error(`device "${spec}" not found${why ? ` (${why})` : ""}; available: ${have}`);
    }
    if (out.includes(dev)) throw new Error(`device "${spec}" is listed twice`);
    out.push(dev);
  }
  return out;
}
