/**
 * The native GPU backends: "cuda" (libgraphwire_cuda) and "hip" (libgraphwire_hip). Each provider
 * opens its library (next to the executable, in native/build, or at --native-lib /
 * GRAPHWIRE_NATIVE_LIB) and lists its GPUs; without a library or a GPU it says why, and
 * `--list-devices` prints that.
 * @module
 */

import { type BackendProvider, type Discovery, registerProvider } from "../registry.ts";
import { CudaDevice, deviceInfo } from "./device.ts";
import { lastError, openNative, Status } from "./ffi.ts";

export { CudaBuffer, CudaDevice, type CudaPlan, type PlanStats } from "./device.ts";
export { blasInfo, getOption, NativeOption, openNative, setOption, whyRefused } from "./ffi.ts";

/** Devices of one library, made once per library path (a device holds its stream and allocations). */
const devicesByPath = new Map<string, CudaDevice[]>();

/** Discovers the devices of `backend`'s library. */
export function discoverNative(backend: "cuda" | "hip", nativeLib?: string): Discovery {
  const native = openNative(backend, nativeLib);
  if ("absent" in native) return { devices: [], absent: native.absent };
  const known = devicesByPath.get(native.path);
  if (known) return { devices: known };
  const count = new Int32Array(1);
  const st = native.lib.gw_device_count(count);
  if (st !== Status.OK) return { devices: [], absent: `${native.path}: ${lastError(native.lib)}` };
  if (count[0] === 0) return { devices: [], absent: `${native.path}: no ${backend} GPU on this host` };
  const devices: CudaDevice[] = [];
  for (let i = 0; i < count[0]; i++) {
    try {
      devices.push(new CudaDevice(native, i, deviceInfo(native, i)));
    } catch (e) {
      return { devices, absent: `${native.path}: device ${i}: ${(e as Error).message}` };
    }
  }
  devicesByPath.set(native.path, devices);
  return { devices };
}

function provider(backend: "cuda" | "hip"): BackendProvider {
  return {
    kind: backend,
    priority: 100,
    discover: (opts) => {
      try {
        return Promise.resolve(discoverNative(backend, opts.nativeLib));
      } catch (e) {
        return Promise.resolve({ devices: [], absent: (e as Error).message });
      }
    },
  };
}

registerProvider(provider("cuda"));
registerProvider(provider("hip"));
