/**
 * Registers every backend's provider with the registry. Import this once where devices are
 * discovered (the CLI, tests that want every device).
 * @module
 */

import "./cpu/mod.ts";
import "./cuda/mod.ts";
import "./rpc/mod.ts";
import "./webgpu/mod.ts";

export * from "./registry.ts";
