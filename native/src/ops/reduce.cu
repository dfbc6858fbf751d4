// Reductions: SUM (two stages through scratch, deterministic), SUM_ROWS, MEAN, ARGMAX (first
// maximum wins), COUNT_EQUAL (i64 count) and CUMSUM along rows.
#include "launch.cuh"

namespace gw {
namespace {

__device__ __forceinline__ void row_index(const Tensor& t, int64_t row, int64_t& i1, int64_t& i2, int64_t& i3) {
  i1 = row % t.ne[1];
  i2 = (row / t.ne[1]) % t.ne[2];
  i3 = row / (t.ne[1] * t.ne[2]);
}

// SUM_ROWS / MEAN: one block per row
__global__ void k_sum_rows(const Tensor s, const Tensor d, float mul) {
  gw_pdl_start();
  __shared__ float red[32];
  for (int64_t row = blockIdx.x; row < s.nrows(); row += gridDim.x) {
    int64_t i1, i2, i3;
    row_index(s, row, i1, i2, i3);
    const char* sp = s.row(i1, i2, i3);
    float acc = 0.0f;
    for (int64_t i = threadIdx.x; i < s.ne[0]; i += blockDim.x) acc += load_f(sp + i * s.nb[0], s.type);
    acc = block_sum(acc, red);
    if (threadIdx.x == 0) store_f(d.ptr(0, i1, i2, i3), d.type, acc * mul);
    __syncthreads();
  }
}

bool check_sum_rows(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 1)) return false;
  const Tensor &s = n.src[0], &d = n.dst;
  if (!is_float(s.type) || !is_float(d.type)) return c.fail("unsupported types");
  // ggml sums rows as packed runs of ne0 elements; with other strides its CPU backend computes
  // something else, so (like ggml-cuda) such a source is refused rather than answered differently
  if (!is_contiguous_rows(s)) return c.fail("rows must be contiguous");
  if (d.ne[0] != 1 || d.ne[1] != s.ne[1] || d.ne[2] != s.ne[2] || d.ne[3] != s.ne[3]) return c.fail("dst must be [1, rows]");
  return true;
}

void run_sum_rows(const Node& n, RunCtx& r) {
  const Tensor& s = n.src[0];
  const int threads = s.ne[0] <= 256 ? 32 : s.ne[0] <= 4096 ? 128 : 512;
  const float mul = n.op == OP_MEAN ? 1.0f / (float)s.ne[0] : 1.0f;
  GW_LAUNCH(r, k_sum_rows, blocks_for(s.nrows(), 1, 1 << 20), threads, 0, s, n.dst, mul);
}

// SUM: partial sums per block into scratch, then one block adds them. Like ggml's CPU backend (and
// graphwire's CPU reference), each row is read as ne[0] packed elements from the row's start whatever
// nb[0] says, so a transposed source sums what ggml sums; check_sum keeps nb[0] >= the element size,
// so the packed run ends before the strided row would and stays inside the tensor's bytes.
constexpr int kSumBlocks = 1024;

__global__ void k_sum_partial(const Tensor s, float* partial) {
  gw_pdl_start();
  __shared__ float red[32];
  const int64_t n = s.nelements();
  const int es = type_size(s.type);
  float acc = 0.0f;
  for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += (int64_t)gridDim.x * blockDim.x) {
    int64_t t = k;
    const int64_t i0 = t % s.ne[0]; t /= s.ne[0];
    const int64_t i1 = t % s.ne[1]; t /= s.ne[1];
    const int64_t i2 = t % s.ne[2]; const int64_t i3 = t / s.ne[2];
    acc += load_f(s.row(i1, i2, i3) + i0 * es, s.type);
  }
  acc = block_sum(acc, red);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

__global__ void k_sum_final(const float* partial, int count, const Tensor d) {
  gw_pdl_start();
  __shared__ float red[32];
  float acc = 0.0f;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
  acc = block_sum(acc, red);
  if (threadIdx.x == 0) store_f(d.data, d.type, acc);
}

bool check_sum(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 1)) return false;
  if (!is_float(n.src[0].type) || !is_float(n.dst.type)) return c.fail("unsupported types");
  if (n.src[0].nb[0] < type_size(n.src[0].type)) return c.fail("nb[0] below the element size");
  if (n.dst.nelements() != 1) return c.fail("dst must be a scalar");
  c.scratch = kSumBlocks * sizeof(float);
  return true;
}

void run_sum(const Node& n, RunCtx& r) {
  const unsigned blocks = blocks_for(n.src[0].nelements(), 256, kSumBlocks);
  GW_LAUNCH(r, k_sum_partial, blocks, 256, 0, n.src[0], (float*)r.scratch);
  GW_LAUNCH(r, k_sum_final, 1, 1024, 0, (const float*)r.scratch, (int)blocks, n.dst);
}

// ARGMAX over rows of a matrix: dst i32 [ne1]
__global__ void k_argmax(const Tensor s, const Tensor d) {
  gw_pdl_start();
  __shared__ float sv[32];
  __shared__ int si[32];
  for (int64_t row = blockIdx.x; row < s.ne[1]; row += gridDim.x) {
    const char* sp = s.row(row, 0, 0);
    float best = -INFINITY;
    int bi = -1;
    for (int64_t i = threadIdx.x; i < s.ne[0]; i += blockDim.x) {
      const float v = load_f(sp + i * s.nb[0], s.type);
      if (v > best) {
        best = v;
        bi = (int)i;
      }
    }
    // reduce (best, bi): larger value wins, equal values: smaller index
#pragma unroll
    for (int m = 16; m > 0; m >>= 1) {
      const float ov = gw_shfl_xor(best, m);
      const int oi = gw_shfl_xor(bi, m);
      if (oi >= 0 && (bi < 0 || ov > best || (ov == best && oi < bi))) {
        best = ov;
        bi = oi;
      }
    }
    const int w = threadIdx.x / 32, l = threadIdx.x % 32, nw = blockDim.x / 32;
    if (l == 0) {
      sv[w] = best;
      si[w] = bi;
    }
    __syncthreads();
    if (w == 0) {
      best = l < nw ? sv[l] : -INFINITY;
      bi = l < nw ? si[l] : -1;
#pragma unroll
      for (int m = 16; m > 0; m >>= 1) {
        const float ov = gw_shfl_xor(best, m);
        const int oi = gw_shfl_xor(bi, m);
        if (oi >= 0 && (bi < 0 || ov > best || (ov == best && oi < bi))) {
          best = ov;
          bi = oi;
        }
      }
      if (l == 0) *(int32_t*)d.ptr(row, 0, 0, 0) = bi < 0 ? 0 : bi;
    }
    __syncthreads();
  }
}

bool check_argmax(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 1)) return false;
  const Tensor &s = n.src[0], &d = n.dst;
  if (!is_float(s.type) || d.type != I32) return c.fail("unsupported types");
  if (s.ne[2] != 1 || s.ne[3] != 1) return c.fail("src[0] must be a matrix");
  if (s.ne[0] > 0x7fffffff) return c.fail("rows too long");
  if (d.nelements() != s.ne[1] || d.ne[0] != s.ne[1]) return c.fail("dst must hold one index per row");
  return true;
}

void run_argmax(const Node& n, RunCtx& r) {
  GW_LAUNCH(r, k_argmax, blocks_for(n.src[0].ne[1], 1, 1 << 20), 256, 0, n.src[0], n.dst);
}

// COUNT_EQUAL: number of equal elements, as i64
__global__ void k_count_equal(const Tensor a, const Tensor b, unsigned long long* out) {
  gw_pdl_start();
  __shared__ float red[32];
  const int64_t n = a.nelements();
  float cnt = 0.0f; // exact below 2^24 per thread
  for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += (int64_t)gridDim.x * blockDim.x) {
    int64_t t = k;
    const int64_t i0 = t % a.ne[0]; t /= a.ne[0];
    const int64_t i1 = t % a.ne[1]; t /= a.ne[1];
    const int64_t i2 = t % a.ne[2]; const int64_t i3 = t / a.ne[2];
    const char* pa = a.ptr(i0, i1, i2, i3);
    const char* pb = b.ptr(i0, i1, i2, i3);
    bool eq;
    if (a.type == I32) eq = *(const int32_t*)pa == *(const int32_t*)pb;
    else if (a.type == I64) eq = *(const int64_t*)pa == *(const int64_t*)pb;
    else eq = load_f(pa, a.type) == load_f(pb, b.type);
    cnt += eq ? 1.0f : 0.0f;
  }
  cnt = block_sum(cnt, red);
  if (threadIdx.x == 0 && cnt > 0.0f) atomicAdd(out, (unsigned long long)cnt);
}

bool check_count_equal(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 2)) return false;
  const Tensor &a = n.src[0], &b = n.src[1], &d = n.dst;
  if (a.type != b.type || !(a.type == I32 || a.type == I64 || is_float(a.type))) return c.fail("unsupported types");
  if (!same_shape(a, b)) return c.fail("sources differ in shape");
  if (d.type != I64 || d.nelements() != 1) return c.fail("dst must be one i64");
  return true;
}

void run_count_equal(const Node& n, RunCtx& r) {
  (void)cudaMemsetAsync(n.dst.data, 0, 8, r.stream); // errors surface through cudaPeekAtLastError
  const unsigned blocks = blocks_for(n.src[0].nelements(), 256, (int64_t)r.caps->sms * 8);
  GW_LAUNCH(r, k_count_equal, blocks, 256, 0, n.src[0], n.src[1], (unsigned long long*)n.dst.data);
}

// CUMSUM along dim 0: each thread scans a contiguous segment, then segment totals are scanned
__global__ void k_cumsum(const Tensor s, const Tensor d) {
  gw_pdl_start();
  __shared__ float tot[1024];
  const int64_t ne0 = s.ne[0];
  const int64_t seg = (ne0 + blockDim.x - 1) / blockDim.x;
  for (int64_t row = blockIdx.x; row < s.nrows(); row += gridDim.x) {
    int64_t i1, i2, i3;
    row_index(s, row, i1, i2, i3);
    const char* sp = s.row(i1, i2, i3);
    char* dp = d.row(i1, i2, i3);
    const int64_t b = threadIdx.x * seg, e = min(b + seg, ne0);
    float acc = 0.0f;
    for (int64_t i = b; i < e; i++) acc += load_f(sp + i * s.nb[0], s.type);
    tot[threadIdx.x] = acc;
    __syncthreads();
    // inclusive scan of the block's totals (Hillis-Steele)
    for (int off = 1; off < (int)blockDim.x; off <<= 1) {
      const float v = threadIdx.x >= (unsigned)off ? tot[threadIdx.x - off] : 0.0f;
      __syncthreads();
      tot[threadIdx.x] += v;
      __syncthreads();
    }
    float run = threadIdx.x > 0 ? tot[threadIdx.x - 1] : 0.0f;
    for (int64_t i = b; i < e; i++) {
      run += load_f(sp + i * s.nb[0], s.type);
      store_f(dp + i * d.nb[0], d.type, run);
    }
    __syncthreads();
  }
}

bool check_cumsum(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 1)) return false;
  if (!is_float(n.src[0].type) || !is_float(n.dst.type)) return c.fail("unsupported types");
  if (!same_shape(n.src[0], n.dst)) return c.fail("dst shape differs from src[0]");
  return true;
}

void run_cumsum(const Node& n, RunCtx& r) {
  const int64_t ne0 = n.src[0].ne[0];
  const int threads = ne0 <= 1024 ? 32 : ne0 <= 16384 ? 256 : 1024;
  GW_LAUNCH(r, k_cumsum, blocks_for(n.src[0].nrows(), 1, 1 << 20), threads, 0, n.src[0], n.dst);
}

const OpDef kOps[] = {
    {OP_SUM, -1, "SUM", check_sum, run_sum},
    {OP_SUM_ROWS, -1, "SUM_ROWS", check_sum_rows, run_sum_rows},
    {OP_MEAN, -1, "MEAN", check_sum_rows, run_sum_rows},
    {OP_ARGMAX, -1, "ARGMAX", check_argmax, run_argmax},
    {OP_COUNT_EQUAL, -1, "COUNT_EQUAL", check_count_equal, run_count_equal},
    {OP_CUMSUM, -1, "CUMSUM", check_cumsum, run_cumsum},
};

} // namespace

void register_reduce() { add_ops(kOps, (int)(sizeof kOps / sizeof kOps[0])); }

} // namespace gw
