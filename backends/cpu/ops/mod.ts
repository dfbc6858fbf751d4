/**
 * Loads every CPU op family into the kernel table. Add a family by importing its file here.
 * @module
 */

import "./view.ts";
import "./copy.ts";
import "./binary.ts";
import "./scale.ts";
import "./mul_mat.ts";

export { type CpuContext, type CpuKernel, kernelFor, kernelKey, KERNELS } from "./registry.ts";
