// MUL_MAT_ID (mixture of experts): dst[:, j, t] = as[:, :, ids[j, t]]ᵀ · b[:, j % b.ne1, t]. Each
// expert id comes from device memory the client wrote and is checked against the expert count; an
// out-of-range id gives a zero column. Blocks compute a few rows of one (slot, token) pair, reading
// each selected expert row with 16-byte loads where the layout allows.
#include "launch.cuh"

#include <algorithm>

namespace gw {
namespace {

struct MmidArgs {
  Tensor as, b, ids, d;
  int64_t pairs; // n_used * tokens
};

template <typename T, int R, bool VEC>
__global__ void __launch_bounds__(128) k_mmid(const MmidArgs a) {
  gw_pdl_start();
  __shared__ float red[4][R];
  const int64_t K = a.as.ne[0], M = a.as.ne[1], E = a.as.ne[2];
  const int64_t n_used = a.ids.ne[0];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int64_t pair = blockIdx.y; pair < a.pairs; pair += gridDim.y) {
    const int64_t j = pair % n_used, t = pair / n_used;
    const int64_t e = *(const int32_t*)a.ids.ptr(j, t, 0, 0);
    const bool valid = e >= 0 && e < E;
    const char* brow = a.b.ptr(0, j % a.b.ne[1], t, 0);
    for (int64_t row0 = (int64_t)blockIdx.x * R; row0 < M; row0 += (int64_t)gridDim.x * R) {
      float acc[R];
#pragma unroll
      for (int r = 0; r < R; r++) acc[r] = 0.0f;
      if (valid) {
        if (VEC) {
          constexpr int V = 16 / sizeof(T);
          const uint4* arow[R];
#pragma unroll
          for (int r = 0; r < R; r++) arow[r] = reinterpret_cast<const uint4*>(a.as.ptr(0, min(row0 + r, M - 1), e, 0));
          const float4* bp = reinterpret_cast<const float4*>(brow);
          for (int64_t v = threadIdx.x; v < K / V; v += blockDim.x) {
            float x[V];
#pragma unroll
            for (int q = 0; q < V / 4; q++) {
              const float4 f = __ldg(bp + v * (V / 4) + q);
              x[4 * q] = f.x;
              x[4 * q + 1] = f.y;
              x[4 * q + 2] = f.z;
              x[4 * q + 3] = f.w;
            }
#pragma unroll
            for (int r = 0; r < R; r++) {
              Vec16<T> w;
              w.u = __ldg(arow[r] + v);
#pragma unroll
              for (int q = 0; q < V; q++) acc[r] += to_f32(w.v[q]) * x[q];
            }
          }
        } else {
          for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
            const float x = load_f(brow + k * a.b.nb[0], a.b.type);
#pragma unroll
            for (int r = 0; r < R; r++) {
              const int64_t row = min(row0 + r, M - 1);
              acc[r] += load_f(a.as.ptr(k, row, e, 0), a.as.type) * x;
            }
          }
        }
      }
#pragma unroll
      for (int r = 0; r < R; r++) {
        const float s = warp_sum(acc[r]);
        if (lane == 0) red[warp][r] = s;
      }
      __syncthreads();
      if (threadIdx.x < R && row0 + threadIdx.x < M) {
        const float s = red[0][threadIdx.x] + red[1][threadIdx.x] + red[2][threadIdx.x] + red[3][threadIdx.x];
        store_f(a.d.ptr(row0 + threadIdx.x, j, t, 0), a.d.type, s);
      }
      __syncthreads();
    }
  }
}

bool vec_ok(const MmidArgs& a) {
  const Tensor &as = a.as, &b = a.b;
  const int es = type_size(as.type);
  return as.nb[0] == es && as.ne[0] % (16 / es) == 0 && aligned16(as.data) && as.nb[1] % 16 == 0 &&
         as.nb[2] % 16 == 0 && b.type == F32 && b.nb[0] == 4 && aligned16(b.data) && b.nb[1] % 16 == 0 &&
         b.nb[2] % 16 == 0;
}

bool check_mmid(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 3)) return false;
  const Tensor &as = n.src[0], &b = n.src[1], &ids = n.src[2], &d = n.dst;
  if (!is_float(as.type) || !is_float(b.type) || !is_float(d.type)) return c.fail("unsupported types");
  if (ids.type != I32) return c.fail("ids must be i32");
  if (as.ne[3] != 1 || b.ne[3] != 1 || ids.ne[2] != 1 || ids.ne[3] != 1) return c.fail("operands must be 3-d (ids 2-d)");
  if (as.ne[0] != b.ne[0]) return c.fail("inner dimensions differ");
  if (ids.ne[1] != b.ne[2]) return c.fail("ids need one row per token");
  if (ids.ne[0] % b.ne[1] != 0) return c.fail("ids cannot be broadcast over src1");
  if (d.ne[0] != as.ne[1] || d.ne[1] != ids.ne[0] || d.ne[2] != b.ne[2] || d.ne[3] != 1) {
    return c.fail("dst shape is not [rows, n_used, tokens]");
  }
  return true;
}

void run_mmid(const Node& n, RunCtx& r) {
  MmidArgs a{n.src[0], n.src[1], n.src[2], n.dst, n.src[2].ne[0] * n.src[2].ne[1]};
  constexpr int R = 2;
  const int64_t M = a.as.ne[1];
  const dim3 grid((unsigned)std::min<int64_t>((M + R - 1) / R, 1 << 30), (unsigned)std::min<int64_t>(a.pairs, 65535));
  const bool vec = vec_ok(a);
  switch (a.as.type) {
    case F16:
      if (vec) GW_LAUNCH(r, (k_mmid<gw_half, R, true>), grid, 128, 0, a);
      else GW_LAUNCH(r, (k_mmid<gw_half, R, false>), grid, 128, 0, a);
      break;
    case BF16:
      if (vec) GW_LAUNCH(r, (k_mmid<bf16_t, R, true>), grid, 128, 0, a);
      else GW_LAUNCH(r, (k_mmid<bf16_t, R, false>), grid, 128, 0, a);
      break;
    default:
      if (vec) GW_LAUNCH(r, (k_mmid<float, R, true>), grid, 128, 0, a);
      else GW_LAUNCH(r, (k_mmid<float, R, false>), grid, 128, 0, a);
      break;
  }
}

const OpDef kOps[] = {
    {OP_MUL_MAT_ID, -1, "MUL_MAT_ID", check_mmid, run_mmid},
};

} // namespace

void register_mul_mat_id() { add_ops(kOps, (int)(sizeof kOps / sizeof kOps[0])); }

} // namespace gw
