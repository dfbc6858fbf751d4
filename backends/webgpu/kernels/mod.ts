/**
 * Loads every WebGPU kernel family into the registry: one import per family file. A new family
 * adds its line here.
 * @module
 */

import "./elementwise.ts";
import "./unary.ts";
import "./glu.ts";
import "./copy.ts";
import "./rows.ts";
import "./layout.ts";
import "./generators.ts";
import "./diag_mask.ts";
import "./flash_attn.ts";
import "./mul_mat.ts";
import "./mul_mat_id.ts";
import "./norm.ts";
import "./reduce.ts";
import "./rope.ts";
import "./softmax.ts";
import "./sort.ts";

export { kernelFor, kernelKey, KERNELS } from "./registry.ts";
