/**
 * Ops that compute nothing: NONE (leaves), RESHAPE, VIEW, PERMUTE, TRANSPOSE. Their data already
 * points into their source's memory.
 * @module
 */

import { type CpuKernel, defineKernels } from "./registry.ts";

const noop: CpuKernel = { supports: () => true, run: () => {} };

defineKernels({ NONE: noop, RESHAPE: noop, VIEW: noop, PERMUTE: noop, TRANSPOSE: noop });
