// FLASH_ATTN_EXT: softmax(scale · Q·Kᵀ (logit softcap) + slope · mask) · V with attention sinks,
// K/V heads broadcast over Q heads (GQA) and batches. K and V are f16 (also f32 or bf16), Q f32;
// head sizes up to 576. Each block takes one query and a slice of the keys, its warps 32 keys at a
// time with an online softmax; slices are merged by a second kernel (split-KV), so a single decoded
// token still spreads over the whole GPU. Head sizes 64, 128 and 256 with aligned rows: 8 lanes per
// key row and per V row (k_fa_vec); others: a lane per key row, lanes across V's columns (k_fa_split).
#include "../runtime.h"
#include "launch.cuh"

#include <algorithm>
#include <cmath>

namespace gw {
namespace {

constexpr int FA_WARPS = 4;
constexpr int FA_MAXD = 576; // DeepSeek's MLA head (576/512); sizes above 256 take the generic loop

struct FaArgs {
  Tensor q, k, v, mask, sinks, d;
  bool has_mask, has_sinks;
  float scale, softcap, max_bias, m0, m1;
  uint32_t n_head_log2;
  int64_t n_q, n_kv, H, B, Dk, Dv;
  int64_t chunk;    // keys per split
  float* partials;  // [split][query][2 + Dv] when splits > 1
  unsigned* counters; // per query, the slices finished (all 0 between launches); null: k_fa_combine merges
  // 32-bit divisors for a query's indices (64-bit division costs a long instruction sequence each)
  uint32_t nq32, H32, rk2, rk3, rv2, rv3, mask2, mask3;
};

// Query qi's row, head and batch; its K and V head and batch (broadcast); its mask plane.
struct FaIdx {
  uint32_t iq, h, b, hk, bk, hv, bv, mh, mb;
};
__device__ __forceinline__ FaIdx fa_index(const FaArgs& a, uint32_t qi) {
  FaIdx x;
  x.iq = qi % a.nq32;
  const uint32_t hb = qi / a.nq32;
  x.h = hb % a.H32;
  x.b = hb / a.H32;
  x.hk = x.h / a.rk2;
  x.bk = x.b / a.rk3;
  x.hv = x.h / a.rv2;
  x.bv = x.b / a.rv3;
  x.mh = x.h % a.mask2;
  x.mb = x.b % a.mask3;
  return x;
}

__device__ __forceinline__ float fa_slope(const FaArgs& a, int64_t h) {
  if (a.max_bias <= 0.0f) return 1.0f;
  return h < a.n_head_log2 ? powf(a.m0, (float)(h + 1)) : powf(a.m1, (float)(2 * (h - a.n_head_log2) + 1));
}

template <typename KT, bool VEC, int D>
__device__ __forceinline__ float fa_dot(const char* krow, const float* qs, int64_t Drt) {
  float s = 0.0f;
  if constexpr (VEC && D > 0) {
    // every load of the row issued before the first use
    constexpr int V = 16 / sizeof(KT);
    constexpr int NV = D / V;
    constexpr int CH = NV <= 16 ? NV : (NV % 16 == 0 ? 16 : NV / 2); // loads in flight per chunk; divides NV
    const uint4* kp = reinterpret_cast<const uint4*>(krow);
#pragma unroll
    for (int c0 = 0; c0 < NV; c0 += CH) {
      Vec16<KT> x[CH];
#pragma unroll
      for (int c = 0; c < CH; c++) x[c].u = __ldg(kp + c0 + c);
#pragma unroll
      for (int c = 0; c < CH; c++)
#pragma unroll
        for (int j = 0; j < V; j++) s += to_f32(x[c].v[j]) * qs[(c0 + c) * V + j];
    }
  } else if constexpr (VEC) {
    constexpr int V = 16 / sizeof(KT);
    const uint4* kp = reinterpret_cast<const uint4*>(krow);
    for (int64_t c = 0; c < Drt / V; c++) {
      Vec16<KT> x;
      x.u = __ldg(kp + c);
#pragma unroll
      for (int j = 0; j < V; j++) s += to_f32(x.v[j]) * qs[c * V + j];
    }
  } else {
    const KT* kp = reinterpret_cast<const KT*>(krow);
    for (int64_t c = 0; c < Drt; c++) s += to_f32(kp[c]) * qs[c];
  }
  return s;
}

// A score finished: logit softcap, then the mask (a masked key stays -inf whatever its score).
__device__ __forceinline__ float fa_score(float d, float mv, float softcap) {
  if (softcap != 0.0f) d = softcap * tanhf(d);
  return mv == -INFINITY ? -INFINITY : d + mv;
}

// One tile of a warp's online softmax, s this lane's score (-inf: none): the running maximum m and
// sum l move on; p is this lane's weight and corr the factor for the accumulators. False while every
// score so far is -inf (nothing to accumulate).
__device__ __forceinline__ bool fa_online_step(float s, float& m, float& l, float& p, float& corr) {
  const float mnew = fmaxf(m, warp_max(s));
  if (mnew == -INFINITY) return false;
  p = s == -INFINITY ? 0.0f : expf(s - mnew);
  corr = m == -INFINITY ? 0.0f : expf(m - mnew);
  l = l * corr + warp_sum(p);
  m = mnew;
  return true;
}

// A pair of V elements as raw bits (2-byte types: one register) and its conversion, so that a whole
// tile of V rows can be in flight in few registers.
template <typename VT> struct Pair { typedef uint32_t raw; };
template <> struct Pair<float> { typedef float2 raw; };

template <typename VT>
__device__ __forceinline__ typename Pair<VT>::raw ld_pair(const VT* p) {
  return *reinterpret_cast<const typename Pair<VT>::raw*>(p);
}
__device__ __forceinline__ float2 pair_f32(uint32_t u, gw_half*) {
  return __half22float2(*reinterpret_cast<const __half2*>(&u));
}
__device__ __forceinline__ float2 pair_f32(uint32_t u, bf16_t*) {
  return make_float2(bf16_to_f32((uint16_t)(u & 0xffff)), bf16_to_f32((uint16_t)(u >> 16)));
}
__device__ __forceinline__ float2 pair_f32(float2 v, float*) { return v; }

constexpr int FA_MAX_SPLITS = 1024;

// The slices' weights for one query's partials (`base`, one slice every `step` floats): fs[s] = exp(M_s - M)
// with M the largest running maximum (and the sink's logit), in shared memory for the whole block;
// returns 1 / (sum of L_s fs[s] + the sink's term), 0 when nothing was attended to. CG: loads through L2
// (partials written by other blocks of the same kernel).
template <bool CG>
__device__ float fa_slice_weights(const FaArgs& a, const float* base, int64_t step, int splits, int64_t h, float* fs,
                                  float* red) {
  auto ld = [](const float* p) {
    if constexpr (CG) return gw_ldcg(p);
    else return *p;
  };
  float mx = -INFINITY;
  for (int s = threadIdx.x; s < splits; s += blockDim.x) mx = fmaxf(mx, ld(base + (int64_t)s * step));
  mx = block_max(mx, red);
  float sk = -INFINITY;
  if (a.has_sinks) {
    sk = load_f(a.sinks.ptr(h, 0, 0, 0), a.sinks.type);
    mx = fmaxf(mx, sk);
  }
  float l = 0.0f;
  for (int s = threadIdx.x; s < splits; s += blockDim.x) {
    const float* part = base + (int64_t)s * step;
    const float ms = ld(part);
    const float f = ms == -INFINITY ? 0.0f : expf(ms - mx);
    fs[s] = f;
    l += ld(part + 1) * f;
  }
  l = block_sum(l, red);
  if (a.has_sinks) l += expf(sk - mx);
  __syncthreads();
  return l == 0.0f ? 0.0f : 1.0f / l;
}

// Merges query qi's `splits` partials ([split][query][2 + Dv]: running maximum, sum, accumulators) into
// its output row, with the sink when there is one; any block size that is a multiple of 32; `splits`
// floats of dynamic shared memory (fa_merge_smem). Partials are read through L2 (`ld.cg`): the block
// merging them is not the one that wrote most of them.
__device__ void fa_merge_slices(const FaArgs& a, int splits, uint32_t qi, int64_t iq, int64_t h, int64_t b) {
  extern __shared__ float fs[];
  __shared__ float red[32];
  const int64_t nq = gridDim.x;
  const int64_t stride = 2 + a.Dv;
  const float* base = a.partials + qi * stride;
  const float inv = fa_slice_weights<true>(a, base, nq * stride, splits, h, fs, red);
  for (int64_t e = threadIdx.x; e < a.Dv; e += blockDim.x) {
    const float* pe = base + 2 + e;
    float o = 0.0f;
#pragma unroll 16
    for (int s = 0; s < splits; s++) o += gw_ldcg(pe + (int64_t)s * nq * stride) * fs[s];
    *(float*)a.d.ptr(e, h, iq, b) = o * inv;
  }
}

// Dynamic shared memory of a split kernel launch: the merge's factors when the kernel merges.
inline size_t fa_merge_smem(const FaArgs& a, dim3 grid) { return a.counters ? grid.y * sizeof(float) : 0; }

// After the warps have left their running maxima, sums and accumulators (rows `stride` floats apart) in
// shared memory: the output row when one block holds every key, else this slice's partial, merged by
// k_fa_combine or (a.counters set) by whichever block of the query finishes last.
__device__ void fa_block_out(const FaArgs& a, const float* wm, const float* wl, const float* wacc, int stride,
                             int64_t qi, int64_t iq, int64_t h, int64_t b) {
  float M = -INFINITY;
  for (int w = 0; w < FA_WARPS; w++) M = fmaxf(M, wm[w]);
  float L = 0.0f;
  float f[FA_WARPS];
  for (int w = 0; w < FA_WARPS; w++) {
    f[w] = wm[w] == -INFINITY ? 0.0f : expf(wm[w] - M);
    L += wl[w] * f[w];
  }
  if (gridDim.y == 1) {
    // one slice: finish here (sinks, normalisation)
    if (a.has_sinks) {
      const float sk = load_f(a.sinks.ptr(h, 0, 0, 0), a.sinks.type);
      const float M2 = fmaxf(M, sk);
      const float c = M == -INFINITY ? 0.0f : expf(M - M2);
      for (int w = 0; w < FA_WARPS; w++) f[w] *= c;
      L = L * c + expf(sk - M2);
    }
    const float inv = L == 0.0f ? 0.0f : 1.0f / L;
    for (int64_t e = threadIdx.x; e < a.Dv; e += blockDim.x) {
      float o = 0.0f;
      for (int w = 0; w < FA_WARPS; w++) o += wacc[w * stride + e] * f[w];
      *(float*)a.d.ptr(e, h, iq, b) = o * inv;
    }
  } else {
    float* part = a.partials + ((int64_t)blockIdx.y * gridDim.x + qi) * (2 + a.Dv);
    if (threadIdx.x == 0) {
      part[0] = M;
      part[1] = L;
    }
    for (int64_t e = threadIdx.x; e < a.Dv; e += blockDim.x) {
      float o = 0.0f;
      for (int w = 0; w < FA_WARPS; w++) o += wacc[w * stride + e] * f[w];
      part[2 + e] = o;
    }
    if (!a.counters) return;
    // the last of the query's slices to finish merges them: this partial is made visible to the
    // whole GPU before the count says it is there (the CUDA threadFenceReduction pattern)
    __shared__ bool last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(a.counters + qi, 1u) == gridDim.y - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    fa_merge_slices(a, (int)gridDim.y, (uint32_t)qi, iq, h, b);
    if (threadIdx.x == 0) a.counters[qi] = 0; // ready for the next launch
  }
}

// grid.x: queries (iq, h, b); grid.y: key slices. 128 threads.
// Each lane accumulates V in pairs of elements: slot j holds elements 2·(lane + 32·j) and the next.
template <typename KT, typename VT, bool VEC, int D>
__global__ void __launch_bounds__(FA_WARPS * 32) k_fa_split(const FaArgs a) {
  gw_pdl_start();
  __shared__ float qs[FA_MAXD];
  __shared__ float wm[FA_WARPS], wl[FA_WARPS];
  __shared__ float wacc[FA_WARPS][FA_MAXD];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const uint32_t qi = blockIdx.x;
  const FaIdx x = fa_index(a, qi);
  const int64_t iq = x.iq, h = x.h, b = x.b, hk = x.hk, bk = x.bk, hv = x.hv, bv = x.bv;
  const float slope = fa_slope(a, h);
  for (int64_t i = threadIdx.x; i < a.Dk; i += blockDim.x) qs[i] = load_f(a.q.ptr(i, iq, h, b), a.q.type) * a.scale;
  __syncthreads();
  const char* mrow = a.has_mask ? a.mask.row(iq, x.mh, x.mb) : nullptr;
  const int64_t k_begin = blockIdx.y * a.chunk;
  const int64_t k_end = min(a.n_kv, k_begin + a.chunk);
  constexpr int JP = D > 0 ? (D + 63) / 64 : FA_MAXD / 64; // pairs per lane
  const int64_t Dv = D > 0 ? D : a.Dv;
  float acc[2 * JP];
#pragma unroll
  for (int j = 0; j < 2 * JP; j++) acc[j] = 0.0f;
  float m = -INFINITY, l = 0.0f;
  for (int64_t t0 = k_begin + warp * 32; t0 < k_end; t0 += FA_WARPS * 32) {
    const int64_t row = t0 + lane;
    float s = -INFINITY;
    if (row < k_end) {
      // the mask and the key row are loaded together; a masked key is dropped afterwards
      const float mv = mrow ? slope * load_f(mrow + row * a.mask.nb[0], a.mask.type) : 0.0f;
      s = fa_score(fa_dot<KT, VEC, D>(a.k.ptr(0, row, hk, bk), qs, a.Dk), mv, a.softcap);
    }
    float p, corr;
    if (!fa_online_step(s, m, l, p, corr)) continue; // every key so far is masked
#pragma unroll
    for (int j = 0; j < 2 * JP; j++) acc[j] *= corr;
    const int nrows = (int)min((int64_t)32, k_end - t0);
    // V rows in batches (all 32 rows for 2-byte types), every load of a batch issued first
    constexpr int RB = (sizeof(VT) == 2 && D > 0 && D <= 128) ? 32 : (D > 0 && D <= 256) ? 16 : 8;
#pragma unroll
    for (int r0 = 0; r0 < 32; r0 += RB) {
      if (r0 >= nrows) break;
      typename Pair<VT>::raw x[RB][JP];
#pragma unroll
      for (int u = 0; u < RB; u++) {
        const int r = r0 + u;
        const VT* vrow = reinterpret_cast<const VT*>(a.v.ptr(0, t0 + min(r, nrows - 1), hv, bv));
#pragma unroll
        for (int j = 0; j < JP; j++) {
          const int64_t e = 2 * (lane + 32 * j);
          if constexpr (VEC) {
            // past the row's end (head sizes not a multiple of 64) the first pair is re-read and unused
            x[u][j] = ld_pair<VT>(vrow + (((D > 0 && D % 64 == 0) || e < Dv) ? e : 0));
          } else {
            x[u][j] = typename Pair<VT>::raw{};
          }
        }
      }
#pragma unroll
      for (int u = 0; u < RB; u++) {
        const int r = r0 + u;
        const float pr = r < nrows ? gw_shfl(p, r) : 0.0f;
        const VT* vrow = reinterpret_cast<const VT*>(a.v.ptr(0, t0 + min(r, nrows - 1), hv, bv));
#pragma unroll
        for (int j = 0; j < JP; j++) {
          const int64_t e = 2 * (lane + 32 * j);
          if ((D > 0 && D % 64 == 0) || e < Dv) {
            float2 v;
            if constexpr (VEC) {
              v = pair_f32(x[u][j], (VT*)nullptr);
            } else {
              v.x = to_f32(vrow[e]);
              v.y = e + 1 < Dv ? to_f32(vrow[e + 1]) : 0.0f;
            }
            acc[2 * j] += pr * v.x;
            acc[2 * j + 1] += pr * v.y;
          }
        }
      }
    }
  }
  // merge the warps
  if (lane == 0) {
    wm[warp] = m;
    wl[warp] = l;
  }
#pragma unroll
  for (int j = 0; j < JP; j++) {
    const int64_t e = 2 * (lane + 32 * j);
    if (e < Dv) wacc[warp][e] = acc[2 * j];
    if (e + 1 < Dv) wacc[warp][e + 1] = acc[2 * j + 1];
  }
  __syncthreads();
  fa_block_out(a, wm, wl, &wacc[0][0], FA_MAXD, qi, iq, h, b);
}

// Head sizes that are a multiple of 64 with K and V of one type, 16-byte aligned rows: every key row
// is read by 8 lanes, 16 bytes each, so one load instruction of a warp covers four keys' contiguous
// 128-byte segments (the kernel above gives each lane a whole row: 32 rows touched per instruction).
// A lane keeps its eighth of Q in registers; the 8 lanes' dot products meet by shuffles, leaving
// key t0 + lane's score in lane `lane`. V the same way: 8 lanes per row, 4 rows per instruction,
// each lane accumulating D/8 output elements; the 4 row groups are summed at the end.
// EARLY_V: a tile's V loads are issued with its K loads, before the scores are known (more bytes in
// flight per warp, more registers; rows of up to 256 bytes).
// Blocks per SM the register budget is set for: 4 (128 registers) unless rows are longer than 256 bytes
// or V is loaded early.
template <typename T, int D>
constexpr int fa_vec_loads() { return D / (8 * (16 / (int)sizeof(T))); }
template <typename T, int D, bool EARLY_V>
constexpr int fa_vec_min_blocks() { return fa_vec_loads<T, D>() > 2 || EARLY_V ? 2 : 4; }

// One lane's NL 16-byte loads of a K or V row (lane `sub` of 8 reads bytes 16·sub + 128·j).
template <typename T, int NL>
__device__ __forceinline__ void fa_load_row(Vec16<T> (&x)[NL], const char* row) {
#pragma unroll
  for (int j = 0; j < NL; j++) x[j].u = __ldg(reinterpret_cast<const uint4*>(row + j * 128));
}

// acc += p · (this lane's elements of a V row)
template <typename T, int NL>
__device__ __forceinline__ void fa_accumulate(float* acc, float p, const Vec16<T> (&x)[NL]) {
  constexpr int E = Vec16<T>::N;
#pragma unroll
  for (int j = 0; j < NL; j++)
#pragma unroll
    for (int e = 0; e < E; e++) acc[j * E + e] += p * to_f32(x[j].v[e]);
}

template <typename T, int D, bool EARLY_V>
__global__ void __launch_bounds__(FA_WARPS * 32, (fa_vec_min_blocks<T, D, EARLY_V>())) k_fa_vec(const FaArgs a) {
  gw_pdl_start();
  constexpr int E = 16 / (int)sizeof(T);  // elements per 16-byte load
  constexpr int NL = fa_vec_loads<T, D>(); // loads per lane per row
  static_assert(NL >= 1 && D % (8 * E) == 0, "head size must be a multiple of 8 loads");
  constexpr int QN = NL * E;             // elements of a row per lane (D / 8)
  constexpr int KB = NL <= 2 ? 8 : 8 / NL; // key rows per batch of loads (16 loads in flight per lane, 8 for long rows)
  constexpr bool EARLY = EARLY_V && NL <= 2; // longer rows would spill
  __shared__ float wm[FA_WARPS], wl[FA_WARPS];
  __shared__ float wacc[FA_WARPS][D];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int sub = lane % 8, grp = lane / 8;
  const uint32_t qi = blockIdx.x;
  const FaIdx x = fa_index(a, qi);
  const int64_t iq = x.iq, h = x.h, b = x.b, hk = x.hk, bk = x.bk, hv = x.hv, bv = x.bv;
  const float slope = fa_slope(a, h);
  // Q through shared memory: every thread's loads in flight at once, then this lane's elements of a
  // row, (j·8 + sub)·E + e, into registers
  __shared__ float qs[D];
  const char* qrow = a.q.ptr(0, iq, h, b);
  for (int i = threadIdx.x; i < D; i += FA_WARPS * 32) qs[i] = load_f(qrow + i * a.q.nb[0], a.q.type) * a.scale;
  __syncthreads();
  float qr[QN];
#pragma unroll
  for (int j = 0; j < NL; j++)
#pragma unroll
    for (int e = 0; e < E; e++) qr[j * E + e] = qs[(j * 8 + sub) * E + e];
  const char* kbase = a.k.ptr(0, 0, hk, bk) + sub * 16;
  const char* vbase = a.v.ptr(0, 0, hv, bv) + sub * 16;
  const int64_t kstride = a.k.nb[1], vstride = a.v.nb[1];
  const char* mrow = a.has_mask ? a.mask.row(iq, x.mh, x.mb) : nullptr;
  const int64_t k_begin = blockIdx.y * a.chunk;
  const int64_t k_end = min(a.n_kv, k_begin + a.chunk);
  float acc[QN];
#pragma unroll
  for (int i = 0; i < QN; i++) acc[i] = 0.0f;
  float m = -INFINITY, l = 0.0f;
  for (int64_t t0 = k_begin + warp * 32; t0 < k_end; t0 += FA_WARPS * 32) {
    const int nrows = (int)min((int64_t)32, k_end - t0);
    // the mask of key t0 + lane, loaded with the keys (not after the scores)
    const float mv = mrow ? slope * load_f(mrow + (t0 + min(lane, nrows - 1)) * a.mask.nb[0], a.mask.type) : 0.0f;
    Vec16<T> vx[EARLY ? 8 : 1][NL];
    if constexpr (EARLY) {
#pragma unroll
      for (int r = 0; r < 8; r++) fa_load_row(vx[r], vbase + (t0 + min(4 * r + grp, nrows - 1)) * vstride);
    }
    // scores: at step i the lanes of group g take key 8g + i; lane 8g + i keeps it
    float s = 0.0f;
#pragma unroll
    for (int i0 = 0; i0 < 8; i0 += KB) {
      Vec16<T> kx[KB][NL];
#pragma unroll
      for (int i = 0; i < KB; i++) fa_load_row(kx[i], kbase + (t0 + min(8 * grp + i0 + i, nrows - 1)) * kstride);
#pragma unroll
      for (int i = 0; i < KB; i++) {
        float d = 0.0f;
#pragma unroll
        for (int j = 0; j < NL; j++)
#pragma unroll
          for (int e = 0; e < E; e++) d += to_f32(kx[i][j].v[e]) * qr[j * E + e];
        d += gw_shfl_xor(d, 4);
        d += gw_shfl_xor(d, 2);
        d += gw_shfl_xor(d, 1);
        if (sub == i0 + i) s = d;
      }
    }
    s = lane < nrows ? fa_score(s, mv, a.softcap) : -INFINITY;
    float p, corr;
    if (!fa_online_step(s, m, l, p, corr)) continue; // every key so far is masked
#pragma unroll
    for (int i = 0; i < QN; i++) acc[i] *= corr;
    // V: at step r the lanes of group g take row 4r + g (a row past the tile's end is re-read with p 0)
    if constexpr (EARLY) {
#pragma unroll
      for (int r = 0; r < 8; r++) fa_accumulate(acc, gw_shfl(p, 4 * r + grp), vx[r]);
    } else {
#pragma unroll
      for (int r0 = 0; r0 < 8; r0 += KB) {
        Vec16<T> vy[KB][NL];
#pragma unroll
        for (int r = 0; r < KB; r++) fa_load_row(vy[r], vbase + (t0 + min(4 * (r0 + r) + grp, nrows - 1)) * vstride);
#pragma unroll
        for (int r = 0; r < KB; r++) fa_accumulate(acc, gw_shfl(p, 4 * (r0 + r) + grp), vy[r]);
      }
    }
  }
  // the 4 row groups' sums, then the warps
#pragma unroll
  for (int i = 0; i < QN; i++) {
    acc[i] += gw_shfl_xor(acc[i], 8);
    acc[i] += gw_shfl_xor(acc[i], 16);
  }
  if (lane == 0) {
    wm[warp] = m;
    wl[warp] = l;
  }
  if (grp == 0) {
#pragma unroll
    for (int j = 0; j < NL; j++)
#pragma unroll
      for (int e = 0; e < E; e++) wacc[warp][(j * 8 + sub) * E + e] = acc[j * E + e];
  }
  __syncthreads();
  fa_block_out(a, wm, wl, &wacc[0][0], D, qi, iq, h, b);
}

// Merges the slices of one query: the running maxima first (in parallel over slices), then output
// elements a warp-wide chunk per block (grid.y), each summed over slices by 8 groups of 32 lanes, so
// a thread has only splits / 8 partials to load and they are all in flight at once.
constexpr int FA_COMBINE_GROUPS = 8;

__global__ void __launch_bounds__(FA_COMBINE_GROUPS * 32) k_fa_combine(const FaArgs a, int splits) {
  gw_pdl_start();
  __shared__ float fs[FA_MAX_SPLITS];
  __shared__ float red[32];
  __shared__ float part_sum[FA_COMBINE_GROUPS][33];
  const uint32_t qi = blockIdx.x;
  const FaIdx x = fa_index(a, qi);
  const int64_t iq = x.iq, h = x.h, b = x.b;
  const int64_t nq = gridDim.x;
  const int64_t stride = (2 + a.Dv);
  const float* base = a.partials + qi * stride;
  const float inv = fa_slice_weights<false>(a, base, nq * stride, splits, h, fs, red);
  const int lane = threadIdx.x % 32, g = threadIdx.x / 32;
  const int64_t e = (int64_t)blockIdx.y * 32 + lane;
  float o = 0.0f;
  if (e < a.Dv) {
#pragma unroll 8
    for (int s = g; s < splits; s += FA_COMBINE_GROUPS) o += base[(int64_t)s * nq * stride + 2 + e] * fs[s];
  }
  part_sum[g][lane] = o;
  __syncthreads();
  if (g == 0 && e < a.Dv) {
    float t = 0.0f;
#pragma unroll
    for (int k = 0; k < FA_COMBINE_GROUPS; k++) t += part_sum[k][lane];
    *(float*)a.d.ptr(e, h, iq, b) = t * inv;
  }
}

int fa_splits(const Node& n, const DeviceCaps& caps, int64_t& chunk) {
  const int64_t n_kv = n.src[1].ne[1];
  const int64_t queries = n.src[0].ne[1] * n.src[0].ne[2] * n.src[0].ne[3];
  // one wave: the split kernel keeps about 4 blocks on each SM (GW_OPT_FA_BLOCKS_PER_SM, to compare)
  const int64_t target = (int64_t)caps.sms * (g_options.fa_blocks_per_sm ? g_options.fa_blocks_per_sm : 4);
  int64_t splits = 1;
  if (queries < target) splits = std::min<int64_t>((n_kv + 127) / 128, (target + queries - 1) / queries);
  splits = std::max<int64_t>(1, std::min<int64_t>(splits, FA_MAX_SPLITS));
  chunk = (n_kv + splits - 1) / splits;
  // whole 32-key tiles per slice; GW_OPT_FA_EXACT_WAVE 1 keeps the slice count (each slice ends in a
  // partial tile, and the grid fills the wave exactly: 528 blocks where rounding leaves 512)
  if (!g_options.fa_exact_wave) chunk = ((chunk + 31) / 32) * 32;
  splits = (n_kv + chunk - 1) / chunk;
  return (int)std::max<int64_t>(1, splits);
}

bool kv_type(int32_t t) { return t == F16 || t == F32 || t == BF16; }

bool check_fa(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 3)) return false;
  const Tensor &q = n.src[0], &k = n.src[1], &v = n.src[2], &d = n.dst;
  if (!is_float(q.type) || !kv_type(k.type) || !kv_type(v.type) || d.type != F32) {
    return c.fail("types q %s, k %s, v %s -> %s", type_name(q.type), type_name(k.type), type_name(v.type), type_name(d.type));
  }
  const int64_t Dk = q.ne[0], Dv = v.ne[0];
  if (k.ne[0] != Dk) return c.fail("K head size %lld differs from Q's %lld", (long long)k.ne[0], (long long)Dk);
  if (Dk > FA_MAXD || Dv > FA_MAXD) return c.fail("head sizes above %d are not supported", FA_MAXD);
  if (v.ne[1] != k.ne[1]) return c.fail("K and V have different key counts");
  if (q.ne[2] % k.ne[2] != 0 || q.ne[2] % v.ne[2] != 0) return c.fail("K/V heads do not divide Q heads");
  if (q.ne[3] % k.ne[3] != 0 || q.ne[3] % v.ne[3] != 0) return c.fail("K/V batches do not divide Q batches");
  if (d.ne[0] != Dv || d.ne[1] != q.ne[2] || d.ne[2] != q.ne[1] || d.ne[3] != q.ne[3]) {
    return c.fail("dst shape is not [Dv, heads, queries, batch]");
  }
  if (!is_contiguous_rows(k) || !is_contiguous_rows(v)) return c.fail("K and V rows must be contiguous");
  if (n.has[3]) {
    const Tensor& m = n.src[3];
    if (m.type != F16 && m.type != F32) return c.fail("mask must be f16 or f32");
    if (m.ne[0] < k.ne[1] || m.ne[1] < q.ne[1]) return c.fail("mask does not cover keys x queries");
    if (q.ne[2] % m.ne[2] != 0 || q.ne[3] % m.ne[3] != 0) return c.fail("mask cannot be broadcast");
  }
  if (n.has[4]) {
    const Tensor& s = n.src[4];
    if (!is_float(s.type) || s.ne[0] < q.ne[2]) return c.fail("sinks must hold one float per head");
  }
  if (n.pf(1) > 0.0f && !n.has[3]) return c.fail("ALiBi needs a mask");
  int64_t chunk;
  const int splits = fa_splits(n, *c.caps, chunk);
  const int64_t queries = q.ne[1] * q.ne[2] * q.ne[3];
  if (queries > (1ll << 31) - 1) return c.fail("too many queries");
  if (splits > 1) c.scratch = (size_t)splits * queries * (2 + Dv) * sizeof(float);
  return true;
}

template <typename KT, int D>
void launch_fa_d(RunCtx& r, const FaArgs& a, dim3 grid, bool vec) {
  const size_t smem = fa_merge_smem(a, grid);
  if (vec) GW_LAUNCH(r, (k_fa_split<KT, KT, true, D>), grid, FA_WARPS * 32, smem, a);
  else GW_LAUNCH(r, (k_fa_split<KT, KT, false, 0>), grid, FA_WARPS * 32, smem, a);
}

template <typename T, int D>
void launch_fa_vec(RunCtx& r, const FaArgs& a, dim3 grid) {
  const size_t smem = fa_merge_smem(a, grid);
  if (g_options.fa_kernel == 1) GW_LAUNCH(r, (k_fa_vec<T, D, true>), grid, FA_WARPS * 32, smem, a);
  else GW_LAUNCH(r, (k_fa_vec<T, D, false>), grid, FA_WARPS * 32, smem, a);
}

template <typename KT>
void launch_fa(RunCtx& r, const FaArgs& a, dim3 grid, bool vec, bool vec8) {
  // 8 lanes per key row where the head size and alignment allow (GW_OPT_FA_KERNEL 2: a lane per row)
  if (vec8 && g_options.fa_kernel != 2) {
    switch (a.Dk) {
      case 64: launch_fa_vec<KT, 64>(r, a, grid); return;
      case 128: launch_fa_vec<KT, 128>(r, a, grid); return;
      case 256: launch_fa_vec<KT, 256>(r, a, grid); return;
    }
  }
  // head sizes with their own instantiation (loads unrolled); others take the generic loop
  if (a.Dk == a.Dv) {
    switch (a.Dk) {
      case 64: launch_fa_d<KT, 64>(r, a, grid, vec); return;
      case 80: launch_fa_d<KT, 80>(r, a, grid, vec); return;
      case 96: launch_fa_d<KT, 96>(r, a, grid, vec); return;
      case 112: launch_fa_d<KT, 112>(r, a, grid, vec); return;
      case 128: launch_fa_d<KT, 128>(r, a, grid, vec); return;
      case 256: launch_fa_d<KT, 256>(r, a, grid, vec); return;
    }
  }
  launch_fa_d<KT, 0>(r, a, grid, vec);
}

// K and V of different types: the generic kernel
template <typename KT>
void launch_fa_mixed(RunCtx& r, const FaArgs& a, dim3 grid) {
  const size_t smem = fa_merge_smem(a, grid);
  switch (a.v.type) {
    case F16: GW_LAUNCH(r, (k_fa_split<KT, gw_half, false, 0>), grid, FA_WARPS * 32, smem, a); break;
    case BF16: GW_LAUNCH(r, (k_fa_split<KT, bf16_t, false, 0>), grid, FA_WARPS * 32, smem, a); break;
    default: GW_LAUNCH(r, (k_fa_split<KT, float, false, 0>), grid, FA_WARPS * 32, smem, a); break;
  }
}

void run_fa(const Node& n, RunCtx& r) {
  FaArgs a;
  a.q = n.src[0];
  a.k = n.src[1];
  a.v = n.src[2];
  a.has_mask = n.has[3];
  a.mask = n.src[3];
  a.has_sinks = n.has[4];
  a.sinks = n.src[4];
  a.d = n.dst;
  a.scale = n.pf(0);
  a.max_bias = n.pf(1);
  a.softcap = n.pf(2);
  if (a.softcap != 0.0f) a.scale /= a.softcap;
  a.n_q = a.q.ne[1];
  a.H = a.q.ne[2];
  a.B = a.q.ne[3];
  a.n_kv = a.k.ne[1];
  a.Dk = a.q.ne[0];
  a.Dv = a.v.ne[0];
  a.n_head_log2 = 1u << (uint32_t)floor(log2((double)a.H));
  a.m0 = powf(2.0f, -(a.max_bias) / a.n_head_log2);
  a.m1 = powf(2.0f, -(a.max_bias / 2.0f) / a.n_head_log2);
  a.nq32 = (uint32_t)a.n_q;
  a.H32 = (uint32_t)a.H;
  a.rk2 = (uint32_t)(a.H / a.k.ne[2]);
  a.rk3 = (uint32_t)(a.B / a.k.ne[3]);
  a.rv2 = (uint32_t)(a.H / a.v.ne[2]);
  a.rv3 = (uint32_t)(a.B / a.v.ne[3]);
  a.mask2 = a.has_mask ? (uint32_t)a.mask.ne[2] : 1;
  a.mask3 = a.has_mask ? (uint32_t)a.mask.ne[3] : 1;
  const int splits = fa_splits(n, *r.caps, a.chunk);
  a.partials = (float*)r.scratch;
  const int64_t queries = a.n_q * a.H * a.B;
  // GW_OPT_FA_MERGE 2: no merge kernel; the last slice of each query to finish merges them
  a.counters = splits > 1 && g_options.fa_merge == 2 && queries <= FA_COUNTERS ? r.fa_counters : nullptr;
  const dim3 grid((unsigned)queries, (unsigned)splits);
  const int es = type_size(a.k.type);
  const bool vec = (a.Dk * es) % 16 == 0 && aligned16(a.k.data) && a.k.nb[1] % 16 == 0 && a.k.nb[2] % 16 == 0 &&
                   a.k.nb[3] % 16 == 0 && a.Dv % 2 == 0 && ((uintptr_t)a.v.data % 8) == 0 && a.v.nb[1] % 8 == 0 &&
                   a.v.nb[2] % 8 == 0 && a.v.nb[3] % 8 == 0;
  const bool vec8 = vec && a.Dk == a.Dv && (a.Dk == 64 || a.Dk == 128 || a.Dk == 256) && aligned16(a.v.data) &&
                    a.v.nb[1] % 16 == 0 && a.v.nb[2] % 16 == 0 && a.v.nb[3] % 16 == 0;
  if (a.k.type != a.v.type) {
    switch (a.k.type) {
      case F16: launch_fa_mixed<gw_half>(r, a, grid); break;
      case BF16: launch_fa_mixed<bf16_t>(r, a, grid); break;
      default: launch_fa_mixed<float>(r, a, grid); break;
    }
  } else {
    switch (a.k.type) {
      case F16: launch_fa<gw_half>(r, a, grid, vec, vec8); break;
      case BF16: launch_fa<bf16_t>(r, a, grid, vec, vec8); break;
      default: launch_fa<float>(r, a, grid, vec, vec8); break;
    }
  }
  if (splits > 1 && !a.counters) {
    const dim3 cgrid((unsigned)queries, (unsigned)((a.Dv + 31) / 32));
    // GW_OPT_FA_MERGE 1: the merge may be placed on the SMs while the split kernel finishes (to compare)
    if (g_options.fa_merge == 1) GW_LAUNCH_PDL(r, k_fa_combine, cgrid, FA_COMBINE_GROUPS * 32, 0, a, splits);
    else GW_LAUNCH(r, k_fa_combine, cgrid, FA_COMBINE_GROUPS * 32, 0, a, splits);
  }
}

const OpDef kOps[] = {
    {OP_FLASH_ATTN_EXT, -1, "FLASH_ATTN_EXT", check_fa, run_fa},
};

} // namespace

void register_flash_attn() { add_ops(kOps, (int)(sizeof kOps / sizeof kOps[0])); }

} // namespace gw
