// CUDA's barrier semantics on HIP-CPU's fibers (see build.sh). HIP-CPU runs a block's threads as fibers
// and makes __syncthreads and every shuffle one "yield to the next fiber": right only while every thread
// of the block passes the same number of them. A warp-uniform branch around shuffles (if (warp == 0)
// { reduce }) or a thread that returns early desynchronises the block, and a fiber left mid-kernel
// poisons the next block run on that OS thread. Here __syncthreads waits for every live thread of the
// block; a shuffle or __syncwarp for every live lane of its 32-lane warp (CUDA's full-mask *_sync, which
// is all this library uses); and a thread that has finished keeps yielding until the whole block has,
// then the threads leave in fiber order, as HIP-CPU's scheduler expects. A wait that never ends aborts
// with the kernel's name.
#pragma once
#include <dlfcn.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace gw_emu {

struct BlockState {
  int n = 0, live = 0, arrived = 0, exit_turn = 0;
  unsigned gen = 0;
  std::vector<int> warp_live, warp_arrived;
  std::vector<unsigned> warp_gen;
  std::vector<uint32_t> slots[2]; // shuffle values, by parity of the warp's generation
};
// one block at a time runs on an OS thread, all its fibers on that thread
inline thread_local BlockState bs;
inline thread_local const void* cur_kernel = nullptr;

inline int lin() { return (int)(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)); }

inline const char* kernel_name() {
  Dl_info info{};
  if (cur_kernel && dladdr(cur_kernel, &info) && info.dli_sname) return info.dli_sname;
  return "?";
}

[[noreturn]] inline void die(const char* what) {
  fprintf(stderr, "gw_emu: %s (thread %d of %d, block %u,%u,%u), kernel %s\n", what, lin(), bs.n, blockIdx.x,
          blockIdx.y, blockIdx.z, kernel_name());
  abort();
}

/** HIP-CPU's yield to the next fiber of the block (the compiler may not keep state across it). */
inline void yield() {
  asm volatile("" ::: "memory");
  hip::detail::Tile::this_tile().barrier();
  asm volatile("" ::: "memory");
}

inline void spin(long& spins, const char* what) {
  if (++spins > 20000000L) die(what);
}

/** Thread 0 runs first: it resets the block's state. */
inline void enter() {
  if (lin() != 0) return;
  const int n = (int)(blockDim.x * blockDim.y * blockDim.z);
  const int nw = (n + 31) / 32;
  bs.n = n;
  bs.live = n;
  bs.arrived = 0;
  bs.exit_turn = 0;
  bs.gen = 0;
  bs.warp_live.assign(nw, 0);
  bs.warp_arrived.assign(nw, 0);
  bs.warp_gen.assign(nw, 0);
  for (int w = 0; w < nw; w++) bs.warp_live[w] = n - 32 * w < 32 ? n - 32 * w : 32;
  bs.slots[0].assign(nw * 32, 0);
  bs.slots[1].assign(nw * 32, 0);
}

inline void release_block() {
  if (bs.arrived > 0 && bs.arrived == bs.live) {
    bs.arrived = 0;
    bs.gen++;
  }
}

inline void release_warp(int w) {
  if (bs.warp_arrived[w] > 0 && bs.warp_arrived[w] == bs.warp_live[w]) {
    bs.warp_arrived[w] = 0;
    bs.warp_gen[w]++;
  }
}

/** HIP-CPU runs a block without fibers, thread after thread, until thread 0 meets a barrier. */
inline bool fibers() { return hip::detail::this_tile::has_barrier; }

inline void leave() {
  const int me = lin();
  bs.live--;
  if (!fibers()) return;
  bs.warp_live[me / 32]--;
  release_block();
  release_warp(me / 32);
  long spins = 0;
  while (!(bs.live == 0 && bs.exit_turn == me)) {
    yield();
    spin(spins, "block never finished");
  }
  bs.exit_turn++;
}

inline void syncthreads() {
  if (bs.n <= 1) return;
  if (!fibers() && lin() != 0) die("__syncthreads after thread 0 ended without one");
  const unsigned gen = bs.gen;
  bs.arrived++;
  release_block();
  long spins = 0;
  while (bs.gen == gen) {
    yield();
    spin(spins, "__syncthreads never reached by every thread");
  }
}

/** Every live lane of the warp gives `v`; returns the value lane `src` gave. */
inline uint32_t exchange(uint32_t v, int src) {
  if (!fibers() && lin() != 0) die("shuffle after thread 0 ended without a barrier");
  const int me = lin(), w = me / 32;
  const unsigned gen = bs.warp_gen[w];
  bs.slots[gen & 1][me] = v;
  bs.warp_arrived[w]++;
  release_warp(w);
  long spins = 0;
  while (bs.warp_gen[w] == gen) {
    yield();
    spin(spins, "shuffle never reached by every lane of the warp");
  }
  const int from = w * 32 + (src & 31);
  return from < bs.n ? bs.slots[gen & 1][from] : v;
}

inline float exchange(float v, int src) {
  uint32_t u;
  memcpy(&u, &v, 4);
  u = exchange(u, src);
  memcpy(&v, &u, 4);
  return v;
}

inline void syncwarp() { (void)exchange(0u, 0); }
inline float shfl_xor(float v, int m) { return exchange(v, (lin() % 32) ^ m); }
inline int shfl_xor(int v, int m) { return (int)exchange((uint32_t)v, (lin() % 32) ^ m); }
inline float shfl(float v, int l) { return exchange(v, l); }

} // namespace gw_emu

#define __syncthreads() gw_emu::syncthreads()
