// The copy every op family may reuse (CPY's kernels): s and d have equal element counts.
#pragma once

#include "../common.cuh"

namespace gw {
void launch_copy(RunCtx& r, const Tensor& s, const Tensor& d);
}
