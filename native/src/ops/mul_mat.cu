// MUL_MAT: dst[m, n, b] = Σ_k src0[k, m, b'] · src1[k, n, b], src0 broadcast over dims 2 and 3.
// Few columns (n ≤ 8 by default): bandwidth-bound mat-vec kernels reading the weights once with
// 16-byte loads, several rows per block so each activation load serves them all; from 3 columns of
// f16/bf16 weights on sm_80+ the products run on tensor cores (activations rounded to the weights'
// type, as ggml-cuda's MUL_MAT_F does), which keeps 8 columns bandwidth-bound too. More columns:
// cuBLAS when loaded, else a tensor-core kernel of our own (f16/bf16, sm_80+), else a tiled SIMT
// kernel that takes any layout. src1 is converted first where a path needs a dense operand.
#include "launch.cuh"
#include "mma.cuh"
#include "mul_mat.cuh"
#include "copy.cuh"
#include "../blas.h"
#include "../runtime.h"

#include <algorithm>

namespace gw {

namespace {

bool fits_int(int64_t v) { return v >= 0 && v < (1ll << 31); }

// ---------------------------------------------------------------------------------------------
// mat-vec, vector loads: A rows contiguous and 16-byte aligned, B dense f32, D rows f32

struct MvArgs {
  const char* A;
  int64_t lda, sa2, sa3; // bytes
  const float* B;
  int64_t ldb, sb2, sb3; // elements
  float* D;
  int64_t ldd, sd2, sd3; // elements
  int K, M, ne12, r2, r3, batches;
};

// ---------------------------------------------------------------------------------------------
// few columns on tensor cores (f16/bf16 weights, sm_80+): a block of 8 warps takes 16 rows, each warp
// every 8th 32-wide chunk of K. A thread loads 16 bytes (8 weights) of rows g and g + 8 and the same
// 8 activations of column g (converted to the weights' type), and feeds them to two m16n8k16 mma as
// k positions {2t, 2t+1, 2t+8, 2t+9}: a permutation of k applied alike to both operands, so the sum
// is unchanged and every load is a whole 16 bytes. Warps' partial tiles meet in shared memory.
// H200, f16 4096x14336 n=8: 37.4 µs (4 chunks in flight per warp; 2: 43.9, 8: 37.6) against 46.2-47.9
// for the SIMT kernel.

constexpr int MVM_WARPS = 8;

__device__ __forceinline__ uint32_t pack2(float x, float y, bool bf16) {
  if (bf16) return (uint32_t)f32_to_bf16(x) | ((uint32_t)f32_to_bf16(y) << 16);
  const __half2 h = __floats2half2_rn(x, y);
  return *reinterpret_cast<const uint32_t*>(&h);
}

template <bool BF16, int U>
__global__ void __launch_bounds__(MVM_WARPS * 32) k_matvec_mma(const MvArgs a, int N) {
  gw_pdl_start();
#if defined(GW_MMA_AVAILABLE)
  __shared__ float red[MVM_WARPS][16][9];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int g = lane / 4, t = lane % 4;
  const int row0 = blockIdx.x * 16;
  const int nch = (a.K + 31) / 32;
  for (int batch = blockIdx.y; batch < a.batches; batch += gridDim.y) {
    const int i12 = batch % a.ne12, i13 = batch / a.ne12;
    const char* abase = a.A + (int64_t)(i12 / a.r2) * a.sa2 + (int64_t)(i13 / a.r3) * a.sa3;
    const uint4* ar0 = reinterpret_cast<const uint4*>(abase + (int64_t)min(row0 + g, a.M - 1) * a.lda);
    const uint4* ar1 = reinterpret_cast<const uint4*>(abase + (int64_t)min(row0 + g + 8, a.M - 1) * a.lda);
    const bool col_ok = g < N;
    const float4* bc = reinterpret_cast<const float4*>(a.B + i12 * a.sb2 + i13 * a.sb3 + (col_ok ? g : 0) * a.ldb);
    float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int ch0 = warp; ch0 < nch; ch0 += MVM_WARPS * U) {
      uint4 a0[U], a1[U];
      float4 b0[U], b1[U];
#pragma unroll
      for (int u = 0; u < U; u++) {
        const int ch = ch0 + u * MVM_WARPS;
        const int k = ch * 32 + 8 * t;
        const bool ok = ch < nch && k < a.K;
        a0[u] = ok ? gw_ldcs(ar0 + k / 8) : make_uint4(0, 0, 0, 0);
        a1[u] = ok ? gw_ldcs(ar1 + k / 8) : make_uint4(0, 0, 0, 0);
        b0[u] = ok && col_ok ? __ldg(bc + k / 4) : make_float4(0, 0, 0, 0);
        b1[u] = ok && col_ok ? __ldg(bc + k / 4 + 1) : make_float4(0, 0, 0, 0);
      }
#pragma unroll
      for (int u = 0; u < U; u++) {
        const uint32_t f0[4] = {a0[u].x, a1[u].x, a0[u].y, a1[u].y};
        const uint32_t f1[4] = {a0[u].z, a1[u].z, a0[u].w, a1[u].w};
        const uint32_t g0[2] = {pack2(b0[u].x, b0[u].y, BF16), pack2(b0[u].z, b0[u].w, BF16)};
        const uint32_t g1[2] = {pack2(b1[u].x, b1[u].y, BF16), pack2(b1[u].z, b1[u].w, BF16)};
        mma16816<BF16>(c, f0, g0);
        mma16816<BF16>(c, f1, g1);
      }
    }
    red[warp][g][2 * t] = c[0];
    red[warp][g][2 * t + 1] = c[1];
    red[warp][g + 8][2 * t] = c[2];
    red[warp][g + 8][2 * t + 1] = c[3];
    __syncthreads();
    if (threadIdx.x < 128) {
      const int r = threadIdx.x / 8, col = threadIdx.x % 8;
      if (row0 + r < a.M && col < N) {
        float sum = 0.0f;
#pragma unroll
        for (int w = 0; w < MVM_WARPS; w++) sum += red[w][r][col];
        a.D[i12 * a.sd2 + i13 * a.sd3 + (int64_t)col * a.ldd + row0 + r] = sum;
      }
    }
    __syncthreads();
  }
#else
  (void)a;
  (void)N;
#endif
}

template <bool BF16>
void launch_matvec_mma_t(RunCtx& r, const MvArgs& a, int N) {
  const dim3 grid((unsigned)((a.M + 15) / 16), (unsigned)min(a.batches, 65535));
  // 4 chunks of K in flight per warp (GW_OPT_MATVEC_UNROLL 2 or 8, to compare)
  switch (g_options.matvec_unroll) {
    case 2: GW_LAUNCH(r, (k_matvec_mma<BF16, 2>), grid, MVM_WARPS * 32, 0, a, N); break;
    case 8: GW_LAUNCH(r, (k_matvec_mma<BF16, 8>), grid, MVM_WARPS * 32, 0, a, N); break;
    default: GW_LAUNCH(r, (k_matvec_mma<BF16, 4>), grid, MVM_WARPS * 32, 0, a, N);
  }
}

[[maybe_unused]] void launch_matvec_mma(RunCtx& r, const MvArgs& a, bool bf16, int N) {
  if (bf16) launch_matvec_mma_t<true>(r, a, N);
  else launch_matvec_mma_t<false>(r, a, N);
}

template <typename T, int NC, int R, int U, int W>
__global__ void __launch_bounds__(W * 32) k_matvec(const MvArgs a) {
  gw_pdl_start();
  constexpr int V = 16 / sizeof(T);
  __shared__ float red[W][R * NC];
  const int nv = a.K / V;
  const int row0 = blockIdx.x * R;
  for (int batch = blockIdx.y; batch < a.batches; batch += gridDim.y) {
    const int i12 = batch % a.ne12, i13 = batch / a.ne12;
    const char* abase = a.A + (int64_t)(i12 / a.r2) * a.sa2 + (int64_t)(i13 / a.r3) * a.sa3;
    const float* b = a.B + i12 * a.sb2 + i13 * a.sb3;
    const uint4* arow[R];
#pragma unroll
    for (int r = 0; r < R; r++) {
      const int row = min(row0 + r, a.M - 1);
      arow[r] = reinterpret_cast<const uint4*>(abase + (int64_t)row * a.lda);
    }
    float acc[R][NC];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
      for (int c = 0; c < NC; c++) acc[r][c] = 0.0f;
    for (int v0 = threadIdx.x; v0 < nv; v0 += U * blockDim.x) {
      // U x R weight vectors in flight before the first is used; weights are read once (streaming)
      Vec16<T> w[U][R];
#pragma unroll
      for (int u = 0; u < U; u++) {
        const int v = v0 + u * blockDim.x;
#pragma unroll
        for (int r = 0; r < R; r++) {
          if (v < nv) w[u][r].u = gw_ldcs(arow[r] + v);
        }
      }
#pragma unroll
      for (int u = 0; u < U; u++) {
        const int v = v0 + u * blockDim.x;
        if (v >= nv) break;
#pragma unroll
        for (int c = 0; c < NC; c++) {
          float x[V];
          const float4* bp = reinterpret_cast<const float4*>(b + c * a.ldb + (int64_t)v * V);
#pragma unroll
          for (int q = 0; q < V / 4; q++) {
            const float4 f = __ldg(bp + q);
            x[4 * q + 0] = f.x;
            x[4 * q + 1] = f.y;
            x[4 * q + 2] = f.z;
            x[4 * q + 3] = f.w;
          }
#pragma unroll
          for (int r = 0; r < R; r++)
#pragma unroll
            for (int j = 0; j < V; j++) acc[r][c] += to_f32(w[u][r].v[j]) * x[j];
        }
      }
    }
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
      for (int c = 0; c < NC; c++) {
        const float s = warp_sum(acc[r][c]);
        if (lane == 0) red[warp][r * NC + c] = s;
      }
    __syncthreads();
    if (threadIdx.x < R * NC) {
      const int r = threadIdx.x / NC, c = threadIdx.x % NC;
      const int row = row0 + r;
      if (row < a.M) {
        float s = 0.0f;
#pragma unroll
        for (int w = 0; w < W; w++) s += red[w][threadIdx.x];
        a.D[i12 * a.sd2 + i13 * a.sd3 + (int64_t)c * a.ldd + row] = s;
      }
    }
    __syncthreads();
  }
}

template <typename T, int NC, int R, int U>
void launch_matvec_r(RunCtx& r, const MvArgs& a) {
  // one block per group of R rows (a persistent, balanced grid was measured slower at n = 8);
  // 8 warps per block for 2-byte weights and n <= 2, else 4 (GW_OPT_MATVEC_WARPS, to compare)
  const unsigned gx = (unsigned)((a.M + R - 1) / R);
  const unsigned gy = (unsigned)min(a.batches, 65535);
  const int warps = g_options.matvec_warps ? g_options.matvec_warps : (sizeof(T) == 2 && NC <= 2 ? 8 : 4);
  // programmatic dependent launch from GW_OPT_PDL 1 for n <= 2: many short blocks, the next kernel's
  // start overlaps the tail
  const int pdl_from = NC <= 2 ? 1 : 2;
  if (warps == 8) GW_LAUNCH_AT(pdl_from, r, (k_matvec<T, NC, R, U, 8>), dim3(gx, gy), 256, 0, a);
  else GW_LAUNCH_AT(pdl_from, r, (k_matvec<T, NC, R, U, 4>), dim3(gx, gy), 128, 0, a);
}

template <typename T, int NC>
void launch_matvec_nc(RunCtx& r, const MvArgs& a) {
  // rows per block grow with the column count, so each activation load serves more rows; loads in
  // flight per thread (U x R weight vectors) stay near 8. GW_OPT_MATVEC_ROWS overrides, to compare.
  // H100, 4096x14336: 2-byte weights are best at 4 rows x 2 vectors in flight, f32 at 2 x 4; on the
  // H200 2-byte weights at 4 x 2 with 8 warps (30.3-32.0 µs against 30.9-31.7 at 2 x 4, 4 warps)
  const int rows = g_options.matvec_rows ? g_options.matvec_rows : (sizeof(T) == 2 ? 4 : 2);
  if (NC <= 2) {
    // f32: 2 rows x 2 vectors in flight by default (H200: 53.2-53.9 µs against 54.2-54.6 at 2 x 4)
    const int u = g_options.matvec_unroll ? g_options.matvec_unroll : (sizeof(T) == 4 && !g_options.matvec_rows ? 2 : 0);
    if (rows == 4) launch_matvec_r<T, NC, 4, 2>(r, a);
    else if (rows == 1 && u == 2) launch_matvec_r<T, NC, 1, 2>(r, a);
    else if (rows == 1 && u == 4) launch_matvec_r<T, NC, 1, 4>(r, a);
    else if (rows == 1) launch_matvec_r<T, NC, 1, 8>(r, a);
    else if (u == 2) launch_matvec_r<T, NC, 2, 2>(r, a);
    else launch_matvec_r<T, NC, 2, 4>(r, a);
  } else if (NC <= 4) {
    launch_matvec_r<T, NC, 4, 2>(r, a);
  } else {
    // GW_OPT_MATVEC_UNROLL = 2 keeps two vectors of each of 4 rows in flight (to compare)
    if (rows == 2) launch_matvec_r<T, NC, 2, 4>(r, a);
    else if (rows == 4 && g_options.matvec_unroll == 2) launch_matvec_r<T, NC, 4, 2>(r, a);
    else if (rows == 4) launch_matvec_r<T, NC, 4, 1>(r, a);
    else launch_matvec_r<T, NC, 8, 1>(r, a);
  }
}

template <typename T>
void launch_matvec_t(RunCtx& r, const MvArgs& a, int nc) {
  switch (nc) {
    case 1: launch_matvec_nc<T, 1>(r, a); break;
    case 2: launch_matvec_nc<T, 2>(r, a); break;
    case 3: launch_matvec_nc<T, 3>(r, a); break;
    case 4: launch_matvec_nc<T, 4>(r, a); break;
    case 5: launch_matvec_nc<T, 5>(r, a); break;
    case 6: launch_matvec_nc<T, 6>(r, a); break;
    case 7: launch_matvec_nc<T, 7>(r, a); break;
    default: launch_matvec_nc<T, 8>(r, a); break;
  }
}

// ---------------------------------------------------------------------------------------------
// mat-vec, any layout and type (up to 8 columns)

__global__ void __launch_bounds__(128) k_matvec_generic(const Tensor a, const Tensor b, const Tensor d, int r2, int r3) {
  gw_pdl_start();
  __shared__ float red[32];
  const int64_t K = a.ne[0], M = a.ne[1], N = b.ne[1];
  const int64_t batches = b.ne[2] * b.ne[3];
  for (int64_t m = blockIdx.x; m < M; m += gridDim.x) {
    for (int64_t batch = blockIdx.y; batch < batches; batch += gridDim.y) {
      const int64_t i12 = batch % b.ne[2], i13 = batch / b.ne[2];
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
        const float av = load_f(a.ptr(k, m, i12 / r2, i13 / r3), a.type);
#pragma unroll
        for (int c = 0; c < 8; c++) if (c < N) acc[c] += av * load_f(b.ptr(k, c, i12, i13), b.type);
      }
      for (int c = 0; c < N; c++) {
        const float s = block_sum(acc[c], red);
        if (threadIdx.x == 0) store_f(d.ptr(m, c, i12, i13), d.type, s);
      }
      __syncthreads();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// tiled SIMT GEMM for any layout and type: 64x64 tiles, 4x4 outputs per thread

__global__ void __launch_bounds__(256) k_gemm_simt(const Tensor a, const Tensor b, const Tensor d, int r2, int r3) {
  gw_pdl_start();
  __shared__ float As[16][68];
  __shared__ float Bs[16][68];
  const int64_t K = a.ne[0], M = a.ne[1], N = b.ne[1];
  const int64_t batches = b.ne[2] * b.ne[3];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t m0 = (int64_t)blockIdx.x * 64, n0 = (int64_t)blockIdx.y * 64;
  for (int64_t batch = blockIdx.z; batch < batches; batch += gridDim.z) {
    const int64_t i12 = batch % b.ne[2], i13 = batch / b.ne[2];
    const int64_t i02 = i12 / r2, i03 = i13 / r3;
    float acc[4][4] = {};
    for (int64_t k0 = 0; k0 < K; k0 += 16) {
      for (int e = tid; e < 16 * 64; e += 256) {
        const int kk = e % 16, mm = e / 16;
        const int64_t k = k0 + kk, m = m0 + mm, n = n0 + mm;
        As[kk][mm] = (k < K && m < M) ? load_f(a.ptr(k, m, i02, i03), a.type) : 0.0f;
        Bs[kk][mm] = (k < K && n < N) ? load_f(b.ptr(k, n, i12, i13), b.type) : 0.0f;
      }
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < 16; kk++) {
        float av[4], bv[4];
#pragma unroll
        for (int i = 0; i < 4; i++) {
          av[i] = As[kk][tx * 4 + i];
          bv[i] = Bs[kk][ty * 4 + i];
        }
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
          for (int j = 0; j < 4; j++) acc[i][j] += av[i] * bv[j];
      }
      __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const int64_t m = m0 + tx * 4 + i, n = n0 + ty * 4 + j;
        if (m < M && n < N) store_f(d.ptr(m, n, i12, i13), d.type, acc[i][j]);
      }
  }
}

// ---------------------------------------------------------------------------------------------
// tensor-core GEMM: 128x128x32 tiles, 8 warps of 64x32, 3-stage cp.async pipeline

constexpr int MM_BM = 128, MM_BN = 128, MM_BK = 32, MM_LD = MM_BK + 8, MM_STAGES = 3;
constexpr size_t MM_SMEM = (size_t)MM_STAGES * (MM_BM + MM_BN) * MM_LD * 2;

struct MmaArgs {
  const uint16_t* A;
  int64_t lda, sa2, sa3; // elements
  const uint16_t* B;
  int64_t ldb, sb2, sb3;
  float* D;
  int64_t ldd, sd2, sd3;
  int M, N, K, ne12, r2, r3, batches;
};

template <bool BF16>
__global__ void __launch_bounds__(256) k_gemm_mma(const MmaArgs g) {
  gw_pdl_start();
#if defined(GW_MMA_AVAILABLE)
  extern __shared__ __align__(16) uint16_t smem[];
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int wm = warp % 2, wn = warp / 2;
  const int m0 = blockIdx.x * MM_BM, n0 = blockIdx.y * MM_BN;
  const int ktiles = (g.K + MM_BK - 1) / MM_BK;
  for (int batch = blockIdx.z; batch < g.batches; batch += gridDim.z) {
    const int i12 = batch % g.ne12, i13 = batch / g.ne12;
    const uint16_t* A = g.A + (int64_t)(i12 / g.r2) * g.sa2 + (int64_t)(i13 / g.r3) * g.sa3;
    const uint16_t* B = g.B + (int64_t)i12 * g.sb2 + (int64_t)i13 * g.sb3;
    float* D = g.D + (int64_t)i12 * g.sd2 + (int64_t)i13 * g.sd3;
    auto load_tile = [&](int stage, int kt) {
      const int k0 = kt * MM_BK;
      uint16_t* sA = smem + (size_t)stage * (MM_BM + MM_BN) * MM_LD;
      uint16_t* sB = sA + MM_BM * MM_LD;
      for (int i = tid; i < MM_BM * 4; i += 256) {
        const int r = i / 4, ch = i % 4;
        const int gm = m0 + r, gk = k0 + ch * 8;
        const bool ok = gm < g.M && gk < g.K;
        cp_async16(sA + r * MM_LD + ch * 8, ok ? A + (int64_t)gm * g.lda + gk : A, ok ? 16 : 0);
      }
      for (int i = tid; i < MM_BN * 4; i += 256) {
        const int r = i / 4, ch = i % 4;
        const int gn = n0 + r, gk = k0 + ch * 8;
        const bool ok = gn < g.N && gk < g.K;
        cp_async16(sB + r * MM_LD + ch * 8, ok ? B + (int64_t)gn * g.ldb + gk : B, ok ? 16 : 0);
      }
    };
    float acc[4][4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
      for (int j = 0; j < 4; j++)
#pragma unroll
        for (int q = 0; q < 4; q++) acc[i][j][q] = 0.0f;
#pragma unroll
    for (int s = 0; s < MM_STAGES - 1; s++) {
      if (s < ktiles) load_tile(s, s);
      cp_async_commit();
    }
    for (int kt = 0; kt < ktiles; kt++) {
      cp_async_wait<MM_STAGES - 2>();
      __syncthreads();
      const int nk = kt + MM_STAGES - 1;
      if (nk < ktiles) load_tile(nk % MM_STAGES, nk);
      cp_async_commit();
      const uint16_t* sA = smem + (size_t)(kt % MM_STAGES) * (MM_BM + MM_BN) * MM_LD;
      const uint16_t* sB = sA + MM_BM * MM_LD;
#pragma unroll
      for (int kk = 0; kk < MM_BK; kk += 16) {
        uint32_t af[4][4], bfr[4][2];
#pragma unroll
        for (int mi = 0; mi < 4; mi++) {
          const int row = wm * 64 + mi * 16 + (lane % 16);
          const int col = kk + (lane / 16) * 8;
          ldmatrix_x4(af[mi], sA + row * MM_LD + col);
        }
#pragma unroll
        for (int nj = 0; nj < 2; nj++) {
          const int nrow = wn * 32 + nj * 16 + (lane & 7) + ((lane >> 4) << 3);
          const int col = kk + ((lane >> 3) & 1) * 8;
          uint32_t t[4];
          ldmatrix_x4(t, sB + nrow * MM_LD + col);
          bfr[2 * nj][0] = t[0];
          bfr[2 * nj][1] = t[1];
          bfr[2 * nj + 1][0] = t[2];
          bfr[2 * nj + 1][1] = t[3];
        }
#pragma unroll
        for (int mi = 0; mi < 4; mi++)
#pragma unroll
          for (int ni = 0; ni < 4; ni++) mma16816<BF16>(acc[mi][ni], af[mi], bfr[ni]);
      }
    }
    cp_async_wait<0>();
    __syncthreads();
    const int gq = lane >> 2, t4 = lane & 3;
#pragma unroll
    for (int mi = 0; mi < 4; mi++)
#pragma unroll
      for (int ni = 0; ni < 4; ni++) {
        const int m = m0 + wm * 64 + mi * 16 + gq;
        const int n = n0 + wn * 32 + ni * 8 + t4 * 2;
        if (m < g.M && n < g.N) D[(int64_t)n * g.ldd + m] = acc[mi][ni][0];
        if (m < g.M && n + 1 < g.N) D[(int64_t)(n + 1) * g.ldd + m] = acc[mi][ni][1];
        if (m + 8 < g.M && n < g.N) D[(int64_t)n * g.ldd + m + 8] = acc[mi][ni][2];
        if (m + 8 < g.M && n + 1 < g.N) D[(int64_t)(n + 1) * g.ldd + m + 8] = acc[mi][ni][3];
      }
  }
#endif
}

// BLAS pointer arrays for broadcast batches
__global__ void k_blas_ptrs(const char* A, int64_t sa2, int64_t sa3, const char* B, int64_t sb2, int64_t sb3, char* D,
                            int64_t sd2, int64_t sd3, int ne12, int r2, int r3, int batches, const void** pa,
                            const void** pb, void** pd) {
  gw_pdl_start();
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < batches; i += gridDim.x * blockDim.x) {
    const int i12 = i % ne12, i13 = i / ne12;
    pa[i] = A + (int64_t)(i12 / r2) * sa2 + (int64_t)(i13 / r3) * sa3;
    pb[i] = B + (int64_t)i12 * sb2 + (int64_t)i13 * sb3;
    pd[i] = D + (int64_t)i12 * sd2 + (int64_t)i13 * sd3;
  }
}

bool a_rows_dense(const Tensor& a) {
  const int es = type_size(a.type);
  return a.nb[0] == es && a.nb[1] % es == 0 && a.nb[1] / es >= a.ne[0] && a.nb[2] % es == 0 && a.nb[3] % es == 0;
}

bool a_rows_vec16(const Tensor& a) {
  const int es = type_size(a.type);
  return a_rows_dense(a) && a.ne[0] % (16 / es) == 0 && aligned16(a.data) && a.nb[1] % 16 == 0 && a.nb[2] % 16 == 0 &&
         a.nb[3] % 16 == 0;
}

bool b_dense(const Tensor& b, int32_t type) {
  const int es = type_size(type);
  return b.type == type && is_contiguous(b) && aligned16(b.data) && (b.ne[0] * es) % 16 == 0;
}

bool d_cols_dense(const Tensor& d) { return d.type == F32 && d.nb[0] == 4 && d.nb[1] % 4 == 0 && d.nb[2] % 4 == 0 && d.nb[3] % 4 == 0; }

} // namespace

MmPlan plan_mul_mat(const Node& n, const DeviceCaps& caps, bool blas) {
  const Tensor &a = n.src[0], &b = n.src[1], &d = n.dst;
  MmPlan p;
  const int64_t K = a.ne[0], M = a.ne[1], N = b.ne[1], batches = b.ne[2] * b.ne[3];
  const bool dims_ok = fits_int(K) && fits_int(M) && fits_int(N) && fits_int(batches);
  auto convert_to = [&](int32_t t) {
    p.b_type = t;
    if (!b_dense(b, t)) {
      p.convert_b = true;
      p.scratch_b = (size_t)(K * N * batches) * type_size(t);
    }
  };
  if (N <= g_options.matvec_max_cols && N <= 8) {
    if (dims_ok && a_rows_vec16(a) && d_cols_dense(d) && M > 0) {
      p.path = MmPlan::MATVEC;
      convert_to(F32);
    } else {
      p.path = MmPlan::MATVEC_GENERIC;
    }
    return p;
  }
  const bool a16 = a.type == F16 || a.type == BF16;
  if (blas && dims_ok && a_rows_dense(a) && d_cols_dense(d) && fits_int(a.nb[1]) && fits_int(d.nb[1] / 4) &&
      d.nb[1] / 4 >= M) {
    p.path = MmPlan::BLAS;
    convert_to(a.type);
    if (batches > 1) p.scratch_ptrs = (size_t)batches * 3 * sizeof(void*);
    return p;
  }
#if !defined(GW_HIP)
  if (a16 && caps.cc >= 80 && dims_ok && a_rows_vec16(a) && d_cols_dense(d) && caps.smem_optin >= MM_SMEM) {
    p.path = MmPlan::MMA;
    convert_to(a.type);
    return p;
  }
#endif
  (void)a16;
  p.path = MmPlan::SIMT;
  return p;
}

namespace {

bool check_mul_mat(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 2)) return false;
  const Tensor &a = n.src[0], &b = n.src[1], &d = n.dst;
  if (!is_float(a.type) || !is_float(b.type) || !is_float(d.type)) {
    return c.fail("types %s x %s -> %s", type_name(a.type), type_name(b.type), type_name(d.type));
  }
  if (a.ne[0] != b.ne[0]) return c.fail("inner dimensions differ (%lld vs %lld)", (long long)a.ne[0], (long long)b.ne[0]);
  if (d.ne[0] != a.ne[1] || d.ne[1] != b.ne[1] || d.ne[2] != b.ne[2] || d.ne[3] != b.ne[3]) {
    return c.fail("dst shape is not [src0.ne1, src1.ne1, src1.ne2, src1.ne3]");
  }
  if (b.ne[2] % a.ne[2] != 0 || b.ne[3] % a.ne[3] != 0) return c.fail("src0 cannot be broadcast over src1");
  if (b.ne[1] > (1ll << 21) || a.ne[1] > (1ll << 30)) return c.fail("too many rows or columns");
  const MmPlan p = plan_mul_mat(n, *c.caps, c.blas);
  const size_t sb = (p.scratch_b + 255) & ~(size_t)255;
  c.scratch = sb + p.scratch_ptrs;
  if (c.scratch > (1ull << 36)) return c.fail("operands too large");
  return true;
}

void run_mul_mat(const Node& n, RunCtx& r) {
  const Tensor &a = n.src[0], &b = n.src[1], &d = n.dst;
  const MmPlan p = plan_mul_mat(n, *r.caps, r.blas != nullptr);
  const int64_t K = a.ne[0], M = a.ne[1], N = b.ne[1];
  const int r2 = (int)(b.ne[2] / a.ne[2]), r3 = (int)(b.ne[3] / a.ne[3]);
  const int64_t batches = b.ne[2] * b.ne[3];
  // the dense B operand
  Tensor B = b;
  if (p.convert_b) {
    B.data = r.scratch;
    B.type = p.b_type;
    const int es = type_size(p.b_type);
    B.nb[0] = es;
    B.nb[1] = es * B.ne[0];
    B.nb[2] = B.nb[1] * B.ne[1];
    B.nb[3] = B.nb[2] * B.ne[2];
    launch_copy(r, b, B);
  }
  const int bes = type_size(B.type);
  switch (p.path) {
    case MmPlan::MATVEC: {
      MvArgs m;
      m.A = a.data;
      m.lda = a.nb[1];
      m.sa2 = a.nb[2];
      m.sa3 = a.nb[3];
      m.B = (const float*)B.data;
      m.ldb = B.nb[1] / 4;
      m.sb2 = B.nb[2] / 4;
      m.sb3 = B.nb[3] / 4;
      m.D = (float*)d.data;
      m.ldd = d.nb[1] / 4;
      m.sd2 = d.nb[2] / 4;
      m.sd3 = d.nb[3] / 4;
      m.K = (int)K;
      m.M = (int)M;
      m.ne12 = (int)b.ne[2];
      m.r2 = r2;
      m.r3 = r3;
      m.batches = (int)batches;
      // 3..8 columns of f16/bf16 weights on tensor cores (GW_OPT_MATVEC_MMA_COLS, to compare)
      const int mma_cols = g_options.matvec_mma_cols ? g_options.matvec_mma_cols : 3;
#if !defined(GW_HIP)
      if ((a.type == F16 || a.type == BF16) && r.caps->cc >= 80 && N >= mma_cols) {
        launch_matvec_mma(r, m, a.type == BF16, (int)N);
        return;
      }
#endif
      switch (a.type) {
        case F16: launch_matvec_t<gw_half>(r, m, (int)N); break;
        case BF16: launch_matvec_t<bf16_t>(r, m, (int)N); break;
        default: launch_matvec_t<float>(r, m, (int)N); break;
      }
      return;
    }
    case MmPlan::MATVEC_GENERIC: {
      const dim3 grid((unsigned)std::min<int64_t>(M, 1 << 30), (unsigned)std::min<int64_t>(batches, 65535));
      GW_LAUNCH(r, k_matvec_generic, grid, 128, 0, a, b, d, r2, r3);
      return;
    }
    case MmPlan::BLAS: {
      const int aes = type_size(a.type);
      const BlasType bt = a.type == F16 ? BLAS_R_16F : a.type == BF16 ? BLAS_R_16BF : BLAS_R_32F;
      const int lda = (int)(a.nb[1] / aes), ldb = (int)(B.nb[1] / bes), ldc = (int)(d.nb[1] / 4);
      if (batches == 1) {
        blas_gemm_tn(r.blas, (int)M, (int)N, (int)K, a.data, lda, 0, B.data, ldb, 0, (float*)d.data, ldc, 0, 1, bt);
      } else if (r2 == 1 && r3 == 1 && b.ne[3] == 1) {
        blas_gemm_tn(r.blas, (int)M, (int)N, (int)K, a.data, lda, a.nb[2] / aes, B.data, ldb, B.nb[2] / bes,
                     (float*)d.data, ldc, d.nb[2] / 4, (int)batches, bt);
      } else {
        char* ptrs = r.scratch + ((p.scratch_b + 255) & ~(size_t)255);
        const void** pa = (const void**)ptrs;
        const void** pb = pa + batches;
        void** pd = (void**)(pb + batches);
        GW_LAUNCH(r, k_blas_ptrs, blocks_for(batches, 256, 1024), 256, 0, a.data, a.nb[2], a.nb[3], B.data, B.nb[2],
                  B.nb[3], d.data, d.nb[2], d.nb[3], (int)b.ne[2], r2, r3, (int)batches, pa, pb, pd);
        blas_gemm_tn_ptrs(r.blas, (int)M, (int)N, (int)K, pa, lda, pb, ldb, pd, ldc, (int)batches, bt);
      }
      r.launches++;
      return;
    }
    case MmPlan::MMA: {
      MmaArgs g;
      g.A = (const uint16_t*)a.data;
      g.lda = a.nb[1] / 2;
      g.sa2 = a.nb[2] / 2;
      g.sa3 = a.nb[3] / 2;
      g.B = (const uint16_t*)B.data;
      g.ldb = B.nb[1] / 2;
      g.sb2 = B.nb[2] / 2;
      g.sb3 = B.nb[3] / 2;
      g.D = (float*)d.data;
      g.ldd = d.nb[1] / 4;
      g.sd2 = d.nb[2] / 4;
      g.sd3 = d.nb[3] / 4;
      g.M = (int)M;
      g.N = (int)N;
      g.K = (int)K;
      g.ne12 = (int)b.ne[2];
      g.r2 = r2;
      g.r3 = r3;
      g.batches = (int)batches;
      const dim3 grid((unsigned)((M + MM_BM - 1) / MM_BM), (unsigned)((N + MM_BN - 1) / MM_BN),
                      (unsigned)std::min<int64_t>(batches, 65535));
      if (a.type == BF16) {
        gw_set_max_smem(k_gemm_mma<true>, (int)MM_SMEM);
        GW_LAUNCH(r, k_gemm_mma<true>, grid, 256, MM_SMEM, g);
      } else {
        gw_set_max_smem(k_gemm_mma<false>, (int)MM_SMEM);
        GW_LAUNCH(r, k_gemm_mma<false>, grid, 256, MM_SMEM, g);
      }
      return;
    }
    case MmPlan::SIMT: {
      const dim3 grid((unsigned)((M + 63) / 64), (unsigned)std::min<int64_t>((N + 63) / 64, 65535),
                      (unsigned)std::min<int64_t>(batches, 65535));
      GW_LAUNCH(r, k_gemm_simt, grid, 256, 0, a, B, d, r2, r3);
      return;
    }
  }
}

const OpDef kOps[] = {
    {OP_MUL_MAT, -1, "MUL_MAT", check_mul_mat, run_mul_mat},
};

} // namespace

void register_mul_mat() { add_ops(kOps, (int)(sizeof kOps / sizeof kOps[0])); }

} // namespace gw
