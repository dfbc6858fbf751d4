// Portability between CUDA (nvcc) and HIP (hipcc): the sources are written against the CUDA runtime
// API; under HIP the few names used are mapped onto their hip* equivalents here, and warp-level
// primitives go through gw_* wrappers that work for 32-lane groups on both (a 64-lane AMD wave runs
// them as two independent 32-lane halves, so every reduction in this library uses width 32).
#pragma once

#if defined(GW_HIP) || defined(__HIP_PLATFORM_AMD__)
#ifndef GW_HIP
#define GW_HIP 1
#endif
#include <hip/hip_runtime.h>
#include <hip/hip_fp16.h>

#define cudaError_t hipError_t
#define cudaSuccess hipSuccess
#define cudaErrorMemoryAllocation hipErrorOutOfMemory
#define cudaErrorNoDevice hipErrorNoDevice
#define cudaErrorInsufficientDriver hipErrorInsufficientDriver
#define cudaStream_t hipStream_t
#define cudaGraph_t hipGraph_t
#define cudaGraphExec_t hipGraphExec_t
#define cudaDeviceProp hipDeviceProp_t
#define cudaGetErrorString hipGetErrorString
#define cudaGetErrorName hipGetErrorName
#define cudaGetLastError hipGetLastError
#define cudaPeekAtLastError hipPeekAtLastError
#define cudaGetDeviceCount hipGetDeviceCount
#define cudaGetDeviceProperties hipGetDeviceProperties
#define cudaSetDevice hipSetDevice
#define cudaGetDevice hipGetDevice
#define cudaMemGetInfo hipMemGetInfo
#define cudaMalloc hipMalloc
#define cudaFree hipFree
#define cudaMemcpyAsync hipMemcpyAsync
#define cudaMemsetAsync hipMemsetAsync
#define cudaMemcpyHostToDevice hipMemcpyHostToDevice
#define cudaMemcpyDeviceToHost hipMemcpyDeviceToHost
#define cudaMemcpyDeviceToDevice hipMemcpyDeviceToDevice
#define cudaStreamCreateWithFlags hipStreamCreateWithFlags
#define cudaStreamNonBlocking hipStreamNonBlocking
#define cudaStreamSynchronize hipStreamSynchronize
#define cudaStreamBeginCapture hipStreamBeginCapture
#define cudaStreamEndCapture hipStreamEndCapture
#define cudaStreamCaptureModeRelaxed hipStreamCaptureModeRelaxed
#define cudaStreamCaptureModeThreadLocal hipStreamCaptureModeThreadLocal
#define cudaGraphInstantiate(exec, graph, flags) hipGraphInstantiate(exec, graph, nullptr, nullptr, 0)
#define cudaGraphLaunch hipGraphLaunch
#define cudaGraphDestroy hipGraphDestroy
#define cudaGraphExecDestroy hipGraphExecDestroy
#define cudaGraphExecUpdateResult hipGraphExecUpdateResult
#define cudaFuncSetAttribute hipFuncSetAttribute
#define cudaFuncAttributeMaxDynamicSharedMemorySize hipFuncAttributeMaxDynamicSharedMemorySize
#define cudaDeviceSynchronize hipDeviceSynchronize
#define cudaEvent_t hipEvent_t
#define cudaEventCreate hipEventCreate
#define cudaEventRecord hipEventRecord
#define cudaEventSynchronize hipEventSynchronize
#define cudaEventElapsedTime hipEventElapsedTime
#define cudaEventDestroy hipEventDestroy
typedef __half gw_half;
#define GW_VENDOR 1
#define GW_BACKEND_NAME "hip"
#define GW_BLAS_NAME "hipBLAS"
__device__ __forceinline__ float gw_shfl_xor(float v, int m) { return __shfl_xor(v, m, 32); }
__device__ __forceinline__ int gw_shfl_xor(int v, int m) { return __shfl_xor(v, m, 32); }
__device__ __forceinline__ float gw_shfl(float v, int l) { return __shfl(v, l, 32); }
__device__ __forceinline__ void gw_syncwarp() {}
template <typename T>
__device__ __forceinline__ T gw_ldcs(const T* p) { return *p; }
/** A load through the coherent cache level (data another block wrote in this kernel). */
template <typename T>
__device__ __forceinline__ T gw_ldcg(const T* p) { return *(const volatile T*)p; }
__device__ __forceinline__ void gw_pdl_start() {}
#define GW_HAVE_PDL 0
#else
#include <cuda_runtime.h>
#include <cuda_fp16.h>
typedef __half gw_half;
#define GW_VENDOR 0
#define GW_BACKEND_NAME "cuda"
#define GW_BLAS_NAME "cuBLAS"
__device__ __forceinline__ float gw_shfl_xor(float v, int m) { return __shfl_xor_sync(0xffffffffu, v, m, 32); }
__device__ __forceinline__ int gw_shfl_xor(int v, int m) { return __shfl_xor_sync(0xffffffffu, v, m, 32); }
__device__ __forceinline__ float gw_shfl(float v, int l) { return __shfl_sync(0xffffffffu, v, l, 32); }
__device__ __forceinline__ void gw_syncwarp() { __syncwarp(); }
/** A load of data read once (streaming, evict first). */
template <typename T>
__device__ __forceinline__ T gw_ldcs(const T* p) { return __ldcs(p); }
/** A load through L2, not L1 (data another block wrote in this kernel). */
template <typename T>
__device__ __forceinline__ T gw_ldcg(const T* p) { return __ldcg(p); }
/**
 * First statement of every kernel: with programmatic dependent launch (sm_90+, GW_OPT_PDL) a kernel
 * may be started while the one before it in the stream still runs, so it lets the next kernel start
 * likewise and then waits until the previous one has finished and its writes are visible, before it
 * reads or writes anything. Without that launch attribute both instructions do nothing.
 */
__device__ __forceinline__ void gw_pdl_start() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
#define GW_HAVE_PDL 1
#endif

/** Raises a kernel's dynamic shared memory limit (the cast keeps HIP's signature happy). */
template <typename K>
inline void gw_set_max_smem(K kernel, int bytes) {
  (void)cudaFuncSetAttribute((const void*)kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
}

// Tensor-core kernels (mma.sync) exist for NVIDIA sm_80+ only; elsewhere the SIMT paths run.
#if !defined(GW_HIP) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define GW_MMA_AVAILABLE 1
#endif
