// cuBLAS, loaded at run time with dlopen when the host has it (the library is never linked, so the
// same binary runs where it is absent). Only the few entry points used are declared here.
#pragma once

#include "common.cuh"

namespace gw {

/** BLAS element types (cudaDataType values). */
enum BlasType : int { BLAS_R_32F = 0, BLAS_R_16F = 2, BLAS_R_16BF = 14 };

/** Opens the BLAS library for `stream`; null when absent (the reason is kept for gw_blas_info). */
Blas* blas_open(cudaStream_t stream);
const char* blas_info();
/** Whether a call since the last check failed (and why). Clears the flag. */
bool blas_failed(Blas* b);
const char* blas_error(Blas* b);

/**
 * Column-major C[m×n] (ldc) = op(A)[m×k] · B[k×n] with A transposed (A stored k×m, lda), f32
 * accumulation, f32 output; A and B of type `ab`. Batched by strides when batch > 1.
 */
bool blas_gemm_tn(Blas* b, int m, int n, int k, const void* A, int lda, long long strideA, const void* B,
                  int ldb, long long strideB, float* C, int ldc, long long strideC, int batch, BlasType ab);
/** Same with arrays of pointers (device memory) for irregular batches. */
bool blas_gemm_tn_ptrs(Blas* b, int m, int n, int k, const void* const* A, int lda, const void* const* B,
                       int ldb, void* const* C, int ldc, int batch, BlasType ab);

} // namespace gw
