// Launch helpers shared by the op families: a grid-stride loop over the elements of a 4-d shape
// with 32-bit index arithmetic where the shape allows, and 16-byte vectors.
#pragma once

#include "../common.cuh"

namespace gw {

/** Calls f(i0, i1, i2, i3) for every element of shape ne. */
template <typename F, typename I>
__global__ void k_map4(F f, I ne0, I ne1, I ne2, I n) {
  gw_pdl_start();
  const I stride = (I)gridDim.x * blockDim.x;
  for (I idx = (I)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += stride) {
    I t = idx;
    const I i0 = t % ne0;
    t /= ne0;
    const I i1 = t % ne1;
    t /= ne1;
    const I i2 = t % ne2;
    const I i3 = t / ne2;
    f((int64_t)i0, (int64_t)i1, (int64_t)i2, (int64_t)i3);
  }
}

template <typename F>
void map4(RunCtx& r, const int64_t ne[4], const F& f) {
  const int64_t n = ne[0] * ne[1] * ne[2] * ne[3];
  if (n <= 0) return;
  const int threads = 256;
  const unsigned blocks = blocks_for(n, threads, (int64_t)r.caps->sms * 16);
  if (n < (int64_t)0xffffffff) {
    GW_LAUNCH(r, (k_map4<F, uint32_t>), blocks, threads, 0, f, (uint32_t)ne[0], (uint32_t)ne[1], (uint32_t)ne[2],
              (uint32_t)n);
  } else {
    GW_LAUNCH(r, (k_map4<F, uint64_t>), blocks, threads, 0, f, (uint64_t)ne[0], (uint64_t)ne[1], (uint64_t)ne[2],
              (uint64_t)n);
  }
}

/** 16 bytes of elements of type T. */
template <typename T>
struct Vec16 {
  static constexpr int N = 16 / sizeof(T);
  union {
    uint4 u;
    T v[N];
  };
};

inline bool aligned16(const void* p) { return ((uintptr_t)p & 15) == 0; }

} // namespace gw
