// Row normalisations: NORM (mean and variance), RMS_NORM, L2_NORM. One block per row, f32
// accumulation; the row is read again for each pass (from cache).
#include "launch.cuh"

namespace gw {
namespace {

template <int KIND> // 0 NORM, 1 RMS_NORM, 2 L2_NORM
__global__ void k_norm(const Tensor s, const Tensor d, float eps) {
  gw_pdl_start();
  __shared__ float red[32];
  const int64_t ne0 = s.ne[0];
  for (int64_t row = blockIdx.x; row < s.nrows(); row += gridDim.x) {
    const int64_t i1 = row % s.ne[1], i2 = (row / s.ne[1]) % s.ne[2], i3 = row / (s.ne[1] * s.ne[2]);
    const char* sp = s.row(i1, i2, i3);
    char* dp = d.row(i1, i2, i3);
    float mean = 0.0f;
    if (KIND == 0) {
      float sum = 0.0f;
      for (int64_t i = threadIdx.x; i < ne0; i += blockDim.x) sum += load_f(sp + i * s.nb[0], s.type);
      mean = block_sum(sum, red) / (float)ne0;
    }
    float sq = 0.0f;
    for (int64_t i = threadIdx.x; i < ne0; i += blockDim.x) {
      const float v = load_f(sp + i * s.nb[0], s.type) - mean;
      sq += v * v;
    }
    sq = block_sum(sq, red);
    float scale;
    if (KIND == 2) scale = 1.0f / fmaxf(sqrtf(sq), eps);
    else scale = rsqrtf(sq / (float)ne0 + eps);
    for (int64_t i = threadIdx.x; i < ne0; i += blockDim.x) {
      store_f(dp + i * d.nb[0], d.type, (load_f(sp + i * s.nb[0], s.type) - mean) * scale);
    }
    __syncthreads(); // red is reused by the next row
  }
}

bool check_norm(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 1)) return false;
  const Tensor &s = n.src[0], &d = n.dst;
  if (!is_float(s.type) || !is_float(d.type)) return c.fail("unsupported types");
  if (!same_shape(s, d)) return c.fail("dst shape differs from src[0]");
  if (!(n.pf(0) >= 0.0f)) return c.fail("eps must be >= 0");
  return true;
}

void run_norm(const Node& n, RunCtx& r) {
  const Tensor &s = n.src[0], &d = n.dst;
  const int64_t ne0 = s.ne[0];
  const int threads = ne0 <= 256 ? 32 : ne0 <= 2048 ? 128 : ne0 <= 8192 ? 256 : 512;
  const unsigned blocks = blocks_for(s.nrows(), 1, 1 << 20);
  const float eps = n.pf(0);
  switch (n.op) {
    case OP_NORM: GW_LAUNCH(r, k_norm<0>, blocks, threads, 0, s, d, eps); break;
    case OP_RMS_NORM: GW_LAUNCH(r, k_norm<1>, blocks, threads, 0, s, d, eps); break;
    default: GW_LAUNCH(r, k_norm<2>, blocks, threads, 0, s, d, eps); break;
  }
}

const OpDef kOps[] = {
    {OP_NORM, -1, "NORM", check_norm, run_norm},
    {OP_RMS_NORM, -1, "RMS_NORM", check_norm, run_norm},
    {OP_L2_NORM, -1, "L2_NORM", check_norm, run_norm},
};

} // namespace

void register_norm() { add_ops(kOps, (int)(sizeof kOps / sizeof kOps[0])); }

} // namespace gw
