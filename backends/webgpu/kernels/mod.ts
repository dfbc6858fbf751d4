/**
 * Loads every WebGPU kernel family into the registry: one import per family file. A new family
 * adds its line here.
 * @module
 */

import "./elementwise.ts";

export { kernelFor, kernelKey, KERNELS } from "./registry.ts";
