// SOFT_MAX (scale, f32/f16 mask broadcast over dims 2 and 3, ALiBi slopes, attention sinks) and
// DIAG_MASK_INF. A row that fits in shared memory is read once and written once; longer rows take
// an online pass (running max and sum) and a writing pass.
#include "launch.cuh"

namespace gw {
namespace {

struct SoftMaxArgs {
  Tensor s, m, k, d; // src, mask, sinks, dst
  bool has_mask, has_sinks;
  float scale, max_bias, m0, m1;
  uint32_t n_head_log2;
};

__device__ __forceinline__ float alibi_slope(const SoftMaxArgs& a, int64_t h) {
  if (a.max_bias <= 0.0f) return 1.0f;
  return h < a.n_head_log2 ? powf(a.m0, (float)(h + 1)) : powf(a.m1, (float)(2 * (h - a.n_head_log2) + 1));
}

__device__ __forceinline__ void row_of(const Tensor& t, int64_t row, int64_t& i1, int64_t& i2, int64_t& i3) {
  i1 = row % t.ne[1];
  i2 = (row / t.ne[1]) % t.ne[2];
  i3 = row / (t.ne[1] * t.ne[2]);
}

// value of element i of the row, scaled and masked
__device__ __forceinline__ float sm_in(const SoftMaxArgs& a, const char* sp, const char* mp, float slope, int64_t i) {
  float v = load_f(sp + i * a.s.nb[0], a.s.type) * a.scale;
  if (mp) v += slope * load_f(mp + i * a.m.nb[0], a.m.type);
  return v;
}

__global__ void k_softmax_smem(const SoftMaxArgs a) {
  gw_pdl_start();
  extern __shared__ float buf[];
  __shared__ float red[32];
  const int64_t ne0 = a.s.ne[0];
  for (int64_t row = blockIdx.x; row < a.s.nrows(); row += gridDim.x) {
    int64_t i1, i2, i3;
    row_of(a.s, row, i1, i2, i3);
    const char* sp = a.s.row(i1, i2, i3);
    const char* mp = a.has_mask ? a.m.row(i1, i2 % a.m.ne[2], i3 % a.m.ne[3]) : nullptr;
    const float slope = alibi_slope(a, i2);
    float mx = -INFINITY;
    for (int64_t i = threadIdx.x; i < ne0; i += blockDim.x) {
      const float v = sm_in(a, sp, mp, slope, i);
      buf[i] = v;
      mx = fmaxf(mx, v);
    }
    mx = block_max(mx, red);
    float sink = 0.0f;
    if (a.has_sinks) {
      sink = load_f(a.k.ptr(i2, 0, 0, 0), a.k.type);
      mx = fmaxf(mx, sink);
    }
    float sum = 0.0f;
    for (int64_t i = threadIdx.x; i < ne0; i += blockDim.x) {
      const float e = expf(buf[i] - mx);
      buf[i] = e;
      sum += e;
    }
    sum = block_sum(sum, red);
    if (a.has_sinks) sum += expf(sink - mx);
    const float inv = 1.0f / sum;
    char* dp = a.d.row(i1, i2, i3);
    for (int64_t i = threadIdx.x; i < ne0; i += blockDim.x) store_f(dp + i * a.d.nb[0], a.d.type, buf[i] * inv);
    __syncthreads();
  }
}

__global__ void k_softmax_online(const SoftMaxArgs a) {
  gw_pdl_start();
  __shared__ float red_m[32], red_s[32];
  const int64_t ne0 = a.s.ne[0];
  for (int64_t row = blockIdx.x; row < a.s.nrows(); row += gridDim.x) {
    int64_t i1, i2, i3;
    row_of(a.s, row, i1, i2, i3);
    const char* sp = a.s.row(i1, i2, i3);
    const char* mp = a.has_mask ? a.m.row(i1, i2 % a.m.ne[2], i3 % a.m.ne[3]) : nullptr;
    const float slope = alibi_slope(a, i2);
    float mx = -INFINITY, sum = 0.0f;
    for (int64_t i = threadIdx.x; i < ne0; i += blockDim.x) {
      const float v = sm_in(a, sp, mp, slope, i);
      if (v > mx) {
        sum = sum * expf(mx - v) + 1.0f;
        mx = v;
      } else {
        sum += expf(v - mx);
      }
    }
    // combine (max, sum) pairs across the block
    float gm = block_max(mx, red_m);
    if (a.has_sinks) gm = fmaxf(gm, load_f(a.k.ptr(i2, 0, 0, 0), a.k.type));
    float part = mx == -INFINITY ? 0.0f : sum * expf(mx - gm);
    float total = block_sum(part, red_s);
    if (a.has_sinks) total += expf(load_f(a.k.ptr(i2, 0, 0, 0), a.k.type) - gm);
    const float inv = 1.0f / total;
    char* dp = a.d.row(i1, i2, i3);
    for (int64_t i = threadIdx.x; i < ne0; i += blockDim.x) {
      store_f(dp + i * a.d.nb[0], a.d.type, expf(sm_in(a, sp, mp, slope, i) - gm) * inv);
    }
    __syncthreads();
  }
}

// f32 rows, 16-byte aligned, row length a multiple of 4: each thread keeps NV float4 of the row in
// registers, so the row is read once and written once with 16-byte accesses.
template <int NV>
__global__ void k_softmax_vec(const SoftMaxArgs a) {
  gw_pdl_start();
  __shared__ float red[32];
  const int64_t nvec = a.s.ne[0] / 4;
  for (int64_t row = blockIdx.x; row < a.s.nrows(); row += gridDim.x) {
    int64_t i1, i2, i3;
    row_of(a.s, row, i1, i2, i3);
    const float4* sp = reinterpret_cast<const float4*>(a.s.row(i1, i2, i3));
    const char* mp = a.has_mask ? a.m.row(i1, i2 % a.m.ne[2], i3 % a.m.ne[3]) : nullptr;
    const float slope = alibi_slope(a, i2);
    float4 v[NV];
    float mx = -INFINITY;
#pragma unroll
    for (int j = 0; j < NV; j++) {
      const int64_t c = threadIdx.x + (int64_t)j * blockDim.x;
      if (c < nvec) {
        float4 x = __ldg(sp + c);
        x.x *= a.scale; x.y *= a.scale; x.z *= a.scale; x.w *= a.scale;
        if (mp) {
          x.x += slope * load_f(mp + (4 * c + 0) * a.m.nb[0], a.m.type);
          x.y += slope * load_f(mp + (4 * c + 1) * a.m.nb[0], a.m.type);
          x.z += slope * load_f(mp + (4 * c + 2) * a.m.nb[0], a.m.type);
          x.w += slope * load_f(mp + (4 * c + 3) * a.m.nb[0], a.m.type);
        }
        v[j] = x;
        mx = fmaxf(mx, fmaxf(fmaxf(x.x, x.y), fmaxf(x.z, x.w)));
      }
    }
    mx = block_max(mx, red);
    float sink = 0.0f;
    if (a.has_sinks) {
      sink = load_f(a.k.ptr(i2, 0, 0, 0), a.k.type);
      mx = fmaxf(mx, sink);
    }
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < NV; j++) {
      const int64_t c = threadIdx.x + (int64_t)j * blockDim.x;
      if (c < nvec) {
        v[j].x = expf(v[j].x - mx); v[j].y = expf(v[j].y - mx); v[j].z = expf(v[j].z - mx); v[j].w = expf(v[j].w - mx);
        sum += (v[j].x + v[j].y) + (v[j].z + v[j].w);
      }
    }
    sum = block_sum(sum, red);
    if (a.has_sinks) sum += expf(sink - mx);
    const float inv = 1.0f / sum;
    float4* dp = reinterpret_cast<float4*>(a.d.row(i1, i2, i3));
#pragma unroll
    for (int j = 0; j < NV; j++) {
      const int64_t c = threadIdx.x + (int64_t)j * blockDim.x;
      if (c < nvec) dp[c] = make_float4(v[j].x * inv, v[j].y * inv, v[j].z * inv, v[j].w * inv);
    }
    __syncthreads();
  }
}

bool vec_rows(const Tensor& t) {
  return t.type == F32 && t.nb[0] == 4 && t.ne[0] % 4 == 0 && aligned16(t.data) && t.nb[1] % 16 == 0 &&
         t.nb[2] % 16 == 0 && t.nb[3] % 16 == 0;
}

bool check_softmax(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 1)) return false;
  const Tensor &s = n.src[0], &d = n.dst;
  if (!is_float(s.type) || !is_float(d.type)) return c.fail("unsupported types");
  if (!same_shape(s, d)) return c.fail("dst shape differs from src[0]");
  if (n.has[1]) {
    const Tensor& m = n.src[1];
    if (m.type != F32 && m.type != F16) return c.fail("mask must be f32 or f16");
    if (m.ne[0] != s.ne[0] || m.ne[1] < s.ne[1]) return c.fail("mask rows do not cover src[0]");
    if (s.ne[2] % m.ne[2] != 0 || s.ne[3] % m.ne[3] != 0) return c.fail("mask cannot be broadcast over dims 2, 3");
  }
  if (n.has[2]) {
    const Tensor& k = n.src[2];
    if (!is_float(k.type)) return c.fail("sinks must be float");
    if (k.ne[0] < s.ne[2]) return c.fail("sinks has fewer entries than heads");
  }
  return true;
}

void run_softmax(const Node& n, RunCtx& r) {
  SoftMaxArgs a;
  a.s = n.src[0];
  a.d = n.dst;
  a.has_mask = n.has[1];
  a.has_sinks = n.has[2];
  a.m = n.src[1];
  a.k = n.src[2];
  a.scale = n.pf(0);
  a.max_bias = n.pf(1);
  const uint32_t n_head = (uint32_t)a.s.ne[2];
  a.n_head_log2 = 1u << (uint32_t)floor(log2((double)n_head));
  a.m0 = powf(2.0f, -(a.max_bias) / a.n_head_log2);
  a.m1 = powf(2.0f, -(a.max_bias / 2.0f) / a.n_head_log2);
  const int64_t ne0 = a.s.ne[0];
  const unsigned blocks = blocks_for(a.s.nrows(), 1, 1 << 20);
  if (vec_rows(a.s) && vec_rows(a.d) && ne0 <= 4 * 1024 * 8) {
    const int64_t nvec = ne0 / 4;
    for (int nv = 1; nv <= 8; nv *= 2) {
      const int64_t t = ((nvec + nv - 1) / nv + 31) / 32 * 32;
      if (t > (nv == 8 ? 1024 : 256)) continue;
      const int threads = (int)t;
      switch (nv) {
        case 1: GW_LAUNCH(r, k_softmax_vec<1>, blocks, threads, 0, a); return;
        case 2: GW_LAUNCH(r, k_softmax_vec<2>, blocks, threads, 0, a); return;
        case 4: GW_LAUNCH(r, k_softmax_vec<4>, blocks, threads, 0, a); return;
        default: GW_LAUNCH(r, k_softmax_vec<8>, blocks, threads, 0, a); return;
      }
    }
  }
  const int threads = ne0 <= 64 ? 32 : ne0 <= 512 ? 128 : ne0 <= 8192 ? 256 : 1024;
  const size_t smem = (size_t)ne0 * sizeof(float);
  if (smem <= r.caps->smem_optin - 1024) {
    if (smem > 48 * 1024) {
      gw_set_max_smem(k_softmax_smem, (int)(r.caps->smem_optin - 1024));
    }
    GW_LAUNCH(r, k_softmax_smem, blocks, threads, smem, a);
  } else {
    GW_LAUNCH(r, k_softmax_online, blocks, threads, 0, a);
  }
}

struct DiagMaskInf {
  Tensor s, d;
  int32_t n_past;
  __device__ void operator()(int64_t i0, int64_t i1, int64_t i2, int64_t i3) const {
    const float v = i0 > n_past + i1 ? -INFINITY : load_f(s.ptr(i0, i1, i2, i3), s.type);
    store_f(d.ptr(i0, i1, i2, i3), d.type, v);
  }
};

bool check_diag_mask(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 1)) return false;
  if (!is_float(n.src[0].type) || !is_float(n.dst.type)) return c.fail("unsupported types");
  if (!same_shape(n.src[0], n.dst)) return c.fail("dst shape differs from src[0]");
  return true;
}

void run_diag_mask(const Node& n, RunCtx& r) { map4(r, n.dst.ne, DiagMaskInf{n.src[0], n.dst, n.pi(0)}); }

const OpDef kOps[] = {
    {OP_SOFT_MAX, -1, "SOFT_MAX", check_softmax, run_softmax},
    {OP_DIAG_MASK_INF, -1, "DIAG_MASK_INF", check_diag_mask, run_diag_mask},
};

} // namespace

void register_softmax() { add_ops(kOps, (int)(sizeof kOps / sizeof kOps[0])); }

} // namespace gw
