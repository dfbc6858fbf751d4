/**
 * The CPU backend: always present. The device discovery finds (the one `rpc-server` and `bench`
 * serve) computes off-thread, so a long graph never blocks the server's event loop; code that
 * makes a {@linkcode CpuDevice} itself chooses (synchronous by default).
 * @module
 */

import { registerProvider } from "../registry.ts";
import { CpuDevice } from "./device.ts";

export { CpuBuffer, CpuDevice, type CpuDeviceOptions } from "./device.ts";

registerProvider({
  kind: "cpu",
  priority: 0,
  discover: (opts) =>
    Promise.resolve({ devices: [new CpuDevice({ threads: opts.threads, offThread: true })] }),
});
