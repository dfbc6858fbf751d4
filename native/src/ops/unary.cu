// Element-wise ops of one source: UNARY's sub-ops (except XIELU), SQR SQRT LOG SIN COS, CLAMP,
// LEAKY_RELU, SCALE and FILL. One kernel per storage type for contiguous tensors (16-byte vectors),
// one for any layout; the op is a run-time switch that every thread of a launch takes the same way.
#include "launch.cuh"

namespace gw {
namespace {

enum Ew : int32_t {
  // 0 ... U_COUNT-1: enum ggml_unary_op
  E_SQR = 32, E_SQRT, E_LOG, E_SIN, E_COS, E_CLAMP, E_LEAKY, E_SCALE, E_FILL
};

struct EwParams {
  int32_t op;
  float p0, p1;
};

__device__ __forceinline__ float gelu_tanh(float x) {
  const float c = 0.79788456080286535587989211986876f;
  return 0.5f * x * (1.0f + tanhf(c * x * (1.0f + 0.044715f * x * x)));
}

__device__ __forceinline__ float ew_apply(const EwParams& p, float x) {
  switch (p.op) {
    case U_ABS: return fabsf(x);
    case U_SGN: return x > 0.f ? 1.f : (x < 0.f ? -1.f : 0.f);
    case U_NEG: return -x;
    case U_STEP: return x > 0.f ? 1.f : 0.f;
    case U_TANH: return tanhf(x);
    case U_ELU: return x > 0.f ? x : expm1f(x);
    case U_RELU: return x > 0.f ? x : 0.f;
    case U_SIGMOID: return 1.f / (1.f + expf(-x));
    case U_GELU: return gelu_tanh(x);
    case U_GELU_QUICK: return x * (1.0f / (1.0f + expf(-1.702f * x)));
    case U_SILU: return x / (1.0f + expf(-x));
    case U_HARDSWISH: return x * fminf(1.0f, fmaxf(0.0f, (x + 3.0f) / 6.0f));
    case U_HARDSIGMOID: return fminf(1.0f, fmaxf(0.0f, (x + 3.0f) / 6.0f));
    case U_EXP: return expf(x);
    case U_EXPM1: return expf(x) - 1.0f;
    case U_SOFTPLUS: return x > 20.0f ? x : logf(1.0f + expf(x));
    case U_GELU_ERF: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f));
    case U_FLOOR: return floorf(x);
    case U_CEIL: return ceilf(x);
    case U_ROUND: return roundf(x);
    case U_TRUNC: return truncf(x);
    case E_SQR: return x * x;
    case E_SQRT: return sqrtf(x);
    case E_LOG: return logf(x);
    case E_SIN: return sinf(x);
    case E_COS: return cosf(x);
    case E_CLAMP: return fminf(fmaxf(x, p.p0), p.p1);
    case E_LEAKY: return (x > 0.f ? x : 0.f) + p.p0 * (x < 0.f ? x : 0.f);
    case E_SCALE: return x * p.p0 + p.p1;
    case E_FILL: return p.p0;
    default: return x;
  }
}

template <typename T>
__global__ void k_ew_contig(const T* __restrict__ x, T* __restrict__ y, int64_t n, EwParams p) {
  gw_pdl_start();
  constexpr int V = Vec16<T>::N;
  const int64_t nv = n / V;
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < nv; i += stride) {
    Vec16<T> a;
    a.u = reinterpret_cast<const uint4*>(x)[i];
#pragma unroll
    for (int j = 0; j < V; j++) a.v[j] = from_f32<T>(ew_apply(p, to_f32(a.v[j])));
    reinterpret_cast<uint4*>(y)[i] = a.u;
  }
  const int64_t tail = nv * V + (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (tail < n) y[tail] = from_f32<T>(ew_apply(p, to_f32(x[tail])));
}

struct EwGeneric {
  Tensor s, d;
  EwParams p;
  __device__ void operator()(int64_t i0, int64_t i1, int64_t i2, int64_t i3) const {
    store_f(d.ptr(i0, i1, i2, i3), d.type, ew_apply(p, load_f(s.ptr(i0, i1, i2, i3), s.type)));
  }
};

EwParams params_of(const Node& n) {
  EwParams p{0, 0.f, 0.f};
  switch (n.op) {
    case OP_UNARY: p.op = n.pi(0); break;
    case OP_SQR: p.op = E_SQR; break;
    case OP_SQRT: p.op = E_SQRT; break;
    case OP_LOG: p.op = E_LOG; break;
    case OP_SIN: p.op = E_SIN; break;
    case OP_COS: p.op = E_COS; break;
    case OP_CLAMP: p.op = E_CLAMP; p.p0 = n.pf(0); p.p1 = n.pf(1); break;
    case OP_LEAKY_RELU: p.op = E_LEAKY; p.p0 = n.pf(0); break;
    case OP_SCALE: p.op = E_SCALE; p.p0 = n.pf(0); p.p1 = n.pf(1); break;
    case OP_FILL: p.op = E_FILL; p.p0 = n.pf(0); break;
  }
  return p;
}

bool check_ew(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 1)) return false;
  const Tensor &s = n.src[0], &d = n.dst;
  if (!is_float(s.type) || !is_float(d.type)) return c.fail("types %s -> %s", type_name(s.type), type_name(d.type));
  if (!same_shape(s, d)) return c.fail("dst shape differs from src[0]");
  return true;
}

void run_ew(const Node& n, RunCtx& r) {
  const Tensor &s = n.src[0], &d = n.dst;
  const EwParams p = params_of(n);
  const int64_t ne = d.nelements();
  if (s.type == d.type && is_contiguous(s) && is_contiguous(d) && aligned16(s.data) && aligned16(d.data)) {
    const int threads = 256;
    const int V = 16 / type_size(d.type);
    const unsigned blocks = blocks_for(ne / V + 1, threads, (int64_t)r.caps->sms * 16);
    switch (d.type) {
      case F32: GW_LAUNCH(r, k_ew_contig<float>, blocks, threads, 0, (const float*)s.data, (float*)d.data, ne, p); return;
      case F16: GW_LAUNCH(r, k_ew_contig<gw_half>, blocks, threads, 0, (const gw_half*)s.data, (gw_half*)d.data, ne, p); return;
      case BF16: GW_LAUNCH(r, k_ew_contig<bf16_t>, blocks, threads, 0, (const bf16_t*)s.data, (bf16_t*)d.data, ne, p); return;
    }
  }
  map4(r, d.ne, EwGeneric{s, d, p});
}

const OpDef kOps[] = {
    {OP_UNARY, U_ABS, "ABS", check_ew, run_ew},
    {OP_UNARY, U_SGN, "SGN", check_ew, run_ew},
    {OP_UNARY, U_NEG, "NEG", check_ew, run_ew},
    {OP_UNARY, U_STEP, "STEP", check_ew, run_ew},
    {OP_UNARY, U_TANH, "TANH", check_ew, run_ew},
    {OP_UNARY, U_ELU, "ELU", check_ew, run_ew},
    {OP_UNARY, U_RELU, "RELU", check_ew, run_ew},
    {OP_UNARY, U_SIGMOID, "SIGMOID", check_ew, run_ew},
    {OP_UNARY, U_GELU, "GELU", check_ew, run_ew},
    {OP_UNARY, U_GELU_QUICK, "GELU_QUICK", check_ew, run_ew},
    {OP_UNARY, U_SILU, "SILU", check_ew, run_ew},
    {OP_UNARY, U_HARDSWISH, "HARDSWISH", check_ew, run_ew},
    {OP_UNARY, U_HARDSIGMOID, "HARDSIGMOID", check_ew, run_ew},
    {OP_UNARY, U_EXP, "EXP", check_ew, run_ew},
    {OP_UNARY, U_EXPM1, "EXPM1", check_ew, run_ew},
    {OP_UNARY, U_SOFTPLUS, "SOFTPLUS", check_ew, run_ew},
    {OP_UNARY, U_GELU_ERF, "GELU_ERF", check_ew, run_ew},
    {OP_UNARY, U_FLOOR, "FLOOR", check_ew, run_ew},
    {OP_UNARY, U_CEIL, "CEIL", check_ew, run_ew},
    {OP_UNARY, U_ROUND, "ROUND", check_ew, run_ew},
    {OP_UNARY, U_TRUNC, "TRUNC", check_ew, run_ew},
    {OP_SQR, -1, "SQR", check_ew, run_ew},
    {OP_SQRT, -1, "SQRT", check_ew, run_ew},
    {OP_LOG, -1, "LOG", check_ew, run_ew},
    {OP_SIN, -1, "SIN", check_ew, run_ew},
    {OP_COS, -1, "COS", check_ew, run_ew},
    {OP_CLAMP, -1, "CLAMP", check_ew, run_ew},
    {OP_LEAKY_RELU, -1, "LEAKY_RELU", check_ew, run_ew},
    {OP_SCALE, -1, "SCALE", check_ew, run_ew},
    {OP_FILL, -1, "FILL", check_ew, run_ew},
};

} // namespace

void register_unary() { add_ops(kOps, (int)(sizeof kOps / sizeof kOps[0])); }

} // namespace gw
