/**
 * Loads every WebGPU kernel family into the registry: one import per family file. A new family
 * adds its line here.
 * @module
 */

import "./elementwise.ts";
import "./diag_mask.ts";
import "./mul_mat.ts";
import "./norm.ts";
import "./reduce.ts";
import "./rope.ts";
import "./softmax.ts";
import "./sort.ts";

export { kernelFor, kernelKey, KERNELS } from "./registry.ts";
