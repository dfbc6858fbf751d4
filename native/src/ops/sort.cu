// ARGSORT and TOP_K by bitonic sorting of (value, index) pairs, ties broken by index so results are
// deterministic. Rows that fit in shared memory are sorted by one block each; longer rows are sorted
// in scratch memory by one launch per bitonic step.
#include "launch.cuh"

#include <climits>

namespace gw {
namespace {

__device__ __forceinline__ bool before(float ka, int ia, float kb, int ib, bool desc) {
  if (ka == kb) return ia < ib;
  return desc ? ka > kb : ka < kb;
}

__device__ __forceinline__ float pad_key(bool desc) { return desc ? -INFINITY : INFINITY; }

__device__ __forceinline__ void row_index(const Tensor& t, int64_t row, int64_t& i1, int64_t& i2, int64_t& i3) {
  i1 = row % t.ne[1];
  i2 = (row / t.ne[1]) % t.ne[2];
  i3 = row / (t.ne[1] * t.ne[2]);
}

__global__ void k_sort_smem(const Tensor s, const Tensor d, int P, int64_t kout, bool desc) {
  gw_pdl_start();
  extern __shared__ float keys[];
  int* idx = (int*)(keys + P);
  for (int64_t row = blockIdx.x; row < s.nrows(); row += gridDim.x) {
    int64_t i1, i2, i3;
    row_index(s, row, i1, i2, i3);
    const char* sp = s.row(i1, i2, i3);
    for (int i = threadIdx.x; i < P; i += blockDim.x) {
      if (i < s.ne[0]) {
        keys[i] = load_f(sp + (int64_t)i * s.nb[0], s.type);
        idx[i] = i;
      } else {
        keys[i] = pad_key(desc);
        idx[i] = INT_MAX;
      }
    }
    __syncthreads();
    for (int k = 2; k <= P; k <<= 1) {
      for (int j = k >> 1; j > 0; j >>= 1) {
        for (int i = threadIdx.x; i < P; i += blockDim.x) {
          const int x = i ^ j;
          if (x > i) {
            const bool up = (i & k) == 0;
            const bool sw = up ? before(keys[x], idx[x], keys[i], idx[i], desc) : before(keys[i], idx[i], keys[x], idx[x], desc);
            if (sw) {
              const float tk = keys[i]; keys[i] = keys[x]; keys[x] = tk;
              const int ti = idx[i]; idx[i] = idx[x]; idx[x] = ti;
            }
          }
        }
        __syncthreads();
      }
    }
    char* dp = d.row(i1, i2, i3);
    for (int64_t i = threadIdx.x; i < kout; i += blockDim.x) *(int32_t*)(dp + i * d.nb[0]) = idx[i];
    __syncthreads();
  }
}

__global__ void k_sort_init(const Tensor s, float* keys, int* idx, int64_t P, bool desc) {
  gw_pdl_start();
  const int64_t n = s.nrows() * P;
  for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x) {
    const int64_t row = t / P, i = t % P;
    int64_t i1, i2, i3;
    row_index(s, row, i1, i2, i3);
    if (i < s.ne[0]) {
      keys[t] = load_f(s.row(i1, i2, i3) + i * s.nb[0], s.type);
      idx[t] = (int)i;
    } else {
      keys[t] = pad_key(desc);
      idx[t] = INT_MAX;
    }
  }
}

__global__ void k_sort_step(float* keys, int* idx, int64_t P, int64_t rows, int64_t k, int64_t j, bool desc) {
  gw_pdl_start();
  const int64_t n = rows * P;
  for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x) {
    const int64_t row = t / P, i = t % P, x = i ^ j;
    if (x <= i) continue;
    float* kr = keys + row * P;
    int* ir = idx + row * P;
    const bool up = (i & k) == 0;
    const bool sw = up ? before(kr[x], ir[x], kr[i], ir[i], desc) : before(kr[i], ir[i], kr[x], ir[x], desc);
    if (sw) {
      const float tk = kr[i]; kr[i] = kr[x]; kr[x] = tk;
      const int ti = ir[i]; ir[i] = ir[x]; ir[x] = ti;
    }
  }
}

__global__ void k_sort_write(const Tensor s, const int* idx, const Tensor d, int64_t P, int64_t kout) {
  gw_pdl_start();
  const int64_t n = s.nrows() * kout;
  for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x) {
    const int64_t row = t / kout, i = t % kout;
    int64_t i1, i2, i3;
    row_index(s, row, i1, i2, i3);
    *(int32_t*)(d.row(i1, i2, i3) + i * d.nb[0]) = idx[row * P + i];
  }
}

int64_t pow2_at_least(int64_t n) {
  int64_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

size_t smem_limit(const DeviceCaps* caps) { return caps->smem_optin > 2048 ? caps->smem_optin - 2048 : 48 * 1024; }

bool check_sort(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 1)) return false;
  const Tensor &s = n.src[0], &d = n.dst;
  if (!is_float(s.type) || d.type != I32) return c.fail("unsupported types");
  if (s.ne[0] > (1 << 24)) return c.fail("rows longer than 2^24 are not sorted here");
  if (d.ne[1] != s.ne[1] || d.ne[2] != s.ne[2] || d.ne[3] != s.ne[3]) return c.fail("dst rows differ");
  if (n.op == OP_ARGSORT) {
    if (d.ne[0] != s.ne[0]) return c.fail("dst row length differs");
    if (n.pi(0) != 0 && n.pi(0) != 1) return c.fail("sort order %d", n.pi(0));
  } else if (d.ne[0] > s.ne[0]) {
    return c.fail("k exceeds the row length");
  }
  const int64_t P = pow2_at_least(s.ne[0]);
  if ((size_t)P * 8 > smem_limit(c.caps)) {
    if (s.nrows() > (1ll << 36) / (P * 8)) return c.fail("too many long rows to sort");
    c.scratch = (size_t)(s.nrows() * P) * 8;
  }
  return true;
}

void run_sort(const Node& n, RunCtx& r) {
  const Tensor &s = n.src[0], &d = n.dst;
  const bool desc = n.op == OP_TOP_K || n.pi(0) == 1;
  const int64_t P = pow2_at_least(s.ne[0]);
  const int64_t kout = d.ne[0];
  const size_t smem = (size_t)P * 8;
  if (smem <= smem_limit(r.caps)) {
    if (smem > 48 * 1024) gw_set_max_smem(k_sort_smem, (int)smem_limit(r.caps));
    const int threads = (int)(P < 1024 ? (P < 32 ? 32 : P) : 1024);
    GW_LAUNCH(r, k_sort_smem, blocks_for(s.nrows(), 1, 1 << 20), threads, smem, s, d, (int)P, kout, desc);
    return;
  }
  float* keys = (float*)r.scratch;
  int* idx = (int*)(keys + s.nrows() * P);
  const int64_t total = s.nrows() * P;
  const unsigned blocks = blocks_for(total, 256, (int64_t)r.caps->sms * 16);
  GW_LAUNCH(r, k_sort_init, blocks, 256, 0, s, keys, idx, P, desc);
  for (int64_t k = 2; k <= P; k <<= 1) {
    for (int64_t j = k >> 1; j > 0; j >>= 1) GW_LAUNCH(r, k_sort_step, blocks, 256, 0, keys, idx, P, s.nrows(), k, j, desc);
  }
  GW_LAUNCH(r, k_sort_write, blocks_for(s.nrows() * kout, 256, (int64_t)r.caps->sms * 16), 256, 0, s, idx, d, P, kout);
}

const OpDef kOps[] = {
    {OP_ARGSORT, -1, "ARGSORT", check_sort, run_sort},
    {OP_TOP_K, -1, "TOP_K", check_sort, run_sort},
};

} // namespace

void register_sort() { add_ops(kOps, (int)(sizeof kOps / sizeof kOps[0])); }

} // namespace gw
