// graphwire's native sources on ROCm's HIP-CPU runtime (a developer's check without a GPU; see build.sh).
// Force-included before every source: the runtime API the library uses that HIP-CPU lacks (graphs through
// stream capture, function attributes), launches that stream capture can record, and a few device math
// functions. Nothing here is built into the real libraries.
#pragma once
#include <hip/hip_runtime.h>
// HIP-CPU marks device functions `simd` under GCC (a vector clone of each); plain functions build faster
#undef __device__
#define __device__
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <type_traits>
#include <vector>

#include "sync.h"

// CUDA graphs: a captured graph is the list of what was enqueued on the capturing stream, replayed in
// order on the stream it is launched on (which is how the library uses them: one stream per device).
struct gw_emu_graph {
  std::vector<std::function<void(hipStream_t)>> ops;
};
typedef gw_emu_graph* hipGraph_t;
typedef gw_emu_graph* hipGraphExec_t;
typedef void* hipGraphNode_t;
typedef int hipGraphExecUpdateResult;
typedef int hipStreamCaptureMode;
#define hipStreamCaptureModeRelaxed 2
#define hipStreamCaptureModeThreadLocal 1
#define hipFuncAttributeMaxDynamicSharedMemorySize 8

inline std::map<hipStream_t, gw_emu_graph*>& gw_emu_capturing() {
  static std::map<hipStream_t, gw_emu_graph*> m;
  return m;
}
inline gw_emu_graph* gw_emu_cap(hipStream_t s) {
  auto& m = gw_emu_capturing();
  auto it = m.find(s);
  return it == m.end() ? nullptr : it->second;
}
inline hipError_t hipStreamBeginCapture(hipStream_t s, int) {
  gw_emu_capturing()[s] = new gw_emu_graph();
  return hipSuccess;
}
inline hipError_t hipStreamEndCapture(hipStream_t s, hipGraph_t* g) {
  *g = gw_emu_cap(s);
  gw_emu_capturing().erase(s);
  return hipSuccess;
}
inline hipError_t hipGraphInstantiate(hipGraphExec_t* e, hipGraph_t g, void*, void*, size_t) {
  *e = new gw_emu_graph(*g);
  return hipSuccess;
}
/** In place when the graph has as many operations; else refused, as CUDA refuses a changed topology. */
inline hipError_t hipGraphExecUpdate(hipGraphExec_t e, hipGraph_t g, hipGraphNode_t*, hipGraphExecUpdateResult*) {
  if (e->ops.size() != g->ops.size()) return hipErrorInvalidValue;
  e->ops = g->ops;
  return hipSuccess;
}
inline hipError_t hipGraphLaunch(hipGraphExec_t e, hipStream_t s) {
  for (auto& f : e->ops) f(s);
  return hipSuccess;
}
inline hipError_t hipGraphDestroy(hipGraph_t g) {
  delete g;
  return hipSuccess;
}
inline hipError_t hipGraphExecDestroy(hipGraphExec_t e) {
  delete e;
  return hipSuccess;
}
inline hipError_t hipFuncSetAttribute(const void*, int, int) { return hipSuccess; }

/** GW_EMU_SMS=132 makes the library size its grids as on an H100/H200 (HIP-CPU reports the cores). */
inline hipError_t gw_emu_device_properties(hipDeviceProp_t* p, int device) {
  const hipError_t e = hipGetDeviceProperties(p, device);
  if (const char* sms = getenv("GW_EMU_SMS")) p->multiProcessorCount = atoi(sms);
  return e;
}
#define hipGetDeviceProperties gw_emu_device_properties

/** Runs `op` on stream `s` now, or records it for the graph when `s` is being captured. */
template <typename F>
hipError_t gw_emu_enqueue(hipStream_t s, F op) {
  if (auto* g = gw_emu_cap(s)) {
    g->ops.push_back([op](hipStream_t st) { (void)op(st); });
    return hipSuccess;
  }
  return op(s);
}
inline hipError_t gw_emu_memset_async(void* p, int v, size_t n, hipStream_t s) {
  return gw_emu_enqueue(s, [=](hipStream_t st) { return hipMemsetAsync(p, v, n, st); });
}
inline hipError_t gw_emu_memcpy_async(void* d, const void* src, size_t n, hipMemcpyKind k, hipStream_t s) {
  return gw_emu_enqueue(s, [=](hipStream_t st) { return hipMemcpyAsync(d, src, n, k, st); });
}
#define hipMemsetAsync gw_emu_memset_async
#define hipMemcpyAsync gw_emu_memcpy_async

/** kernel<<<grid, block, smem, stream>>>(args) (build.sh rewrites launches into this). */
template <typename K, typename... A>
void gw_emu_launch(K kernel, dim3 grid, dim3 block, size_t smem, hipStream_t s, A&&... a) {
  auto body = [kernel](auto&&... xs) {
    gw_emu::cur_kernel = (const void*)kernel;
    gw_emu::enter();
    kernel(xs...);
    gw_emu::leave();
  };
  (void)gw_emu_enqueue(s, [=](hipStream_t st) {
    hipLaunchKernelGGL(body, grid, block, smem, st, a...);
    return hipSuccess;
  });
}

template <typename A, typename B>
inline auto min(A a, B b) -> std::common_type_t<A, B> {
  return a < b ? a : b;
}
template <typename A, typename B>
inline auto max(A a, B b) -> std::common_type_t<A, B> {
  return a < b ? b : a;
}
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
