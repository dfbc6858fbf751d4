/**
 * Loads every CPU op family into the kernel table. Add a family by importing its file here.
 * @module
 */

import "./view.ts";
import "./copy.ts";
import "./set.ts";
import "./binary.ts";
import "./elementwise.ts";
import "./unary.ts";
import "./glu.ts";
import "./norm.ts";
import "./mul_mat.ts";
import "./mul_mat_id.ts";
import "./out_prod.ts";
import "./get_rows.ts";
import "./set_rows.ts";
import "./concat.ts";
import "./repeat.ts";
import "./pad.ts";
import "./roll.ts";
import "./softmax.ts";
import "./rope.ts";
import "./flash_attn.ts";
import "./reduce.ts";
import "./argsort.ts";
import "./generators.ts";

export { type CpuKernel, kernelFor, kernelKey, KERNELS } from "./registry.ts";
