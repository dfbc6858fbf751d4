/**
 * The WebGPU backend: one device ("webgpu:0") on the adapter a WebGPU provider offers. Preferred
 * over the CPU (unless the adapter is emulated, e.g. llvmpipe), below the native CUDA/HIP devices.
 * @module
 */

import { registerProvider } from "../registry.ts";
import { type OpenResult, openWebGpuDevice } from "./device.ts";

export { WebGpuBuffer } from "./buffer.ts";
export { openWebGpuDevice, WebGpuDevice, type WebGpuOptions } from "./device.ts";
export { WebGpuPlan } from "./plan.ts";

/** Priority among backends: cuda 100, cpu 0. */
export const WEBGPU_PRIORITY = 50;

const opened = new Map<string, Promise<OpenResult>>();

registerProvider({
  kind: "webgpu",
  priority: WEBGPU_PRIORITY,
  discover: async (opts) => {
    const key = opts.webgpuProvider ?? "";
    let p = opened.get(key);
    if (!p) {
      p = openWebGpuDevice({ provider: opts.webgpuProvider });
      opened.set(key, p);
    }
    const r = await p;
    return "device" in r ? { devices: [r.device] } : { devices: [], absent: r.absent };
  },
});
