/**
 * The CPU backend: always present.
 * @module
 */

import { registerProvider } from "../registry.ts";
import { CpuDevice } from "./device.ts";

export { CpuBuffer, CpuDevice, type CpuDeviceOptions } from "./device.ts";

registerProvider({
  kind: "cpu",
  priority: 0,
  discover: (opts) => Promise.resolve({ devices: [new CpuDevice({ threads: opts.threads })] }),
});
