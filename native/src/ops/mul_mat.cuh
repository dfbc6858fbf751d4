// MUL_MAT kernels shared with MUL_MAT_ID.
#pragma once

#include "../common.cuh"

namespace gw {

/** How a MUL_MAT node runs, decided once for validation (scratch) and launch alike. */
struct MmPlan {
  enum Path { MATVEC, MATVEC_GENERIC, BLAS, MMA, SIMT } path;
  bool convert_b = false; // src1 is first copied into scratch as a contiguous tensor of type b_type
  int32_t b_type = F32;
  size_t scratch_b = 0;    // bytes of the converted src1
  size_t scratch_ptrs = 0; // bytes of BLAS pointer arrays
};

MmPlan plan_mul_mat(const Node& n, const DeviceCaps& caps, bool blas);

} // namespace gw
