// Gated linear units: REGLU GEGLU SWIGLU SWIGLU_OAI GEGLU_ERF GEGLU_QUICK, with the gate and the
// value either halves of one row of src0 (fused; op_params[1] swaps them) or two sources (split).
#include "launch.cuh"

namespace gw {
namespace {

struct GluParams {
  int32_t op;
  float alpha, limit;
};

__device__ __forceinline__ float glu_apply(const GluParams& p, float x, float g) {
  switch (p.op) {
    case G_REGLU: return (x > 0.f ? x : 0.f) * g;
    case G_GEGLU: {
      const float c = 0.79788456080286535587989211986876f;
      return 0.5f * x * (1.0f + tanhf(c * x * (1.0f + 0.044715f * x * x))) * g;
    }
    case G_SWIGLU: return x / (1.0f + expf(-x)) * g;
    case G_SWIGLU_OAI: {
      const float xc = fminf(x, p.limit);
      const float gc = fminf(fmaxf(g, -p.limit), p.limit);
      return xc / (1.f + expf(p.alpha * (-xc))) * (gc + 1.f);
    }
    case G_GEGLU_ERF: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f)) * g;
    case G_GEGLU_QUICK: return x * (1.0f / (1.0f + expf(-1.702f * x))) * g;
    default: return 0.f;
  }
}

// Contiguous rows, same type, nc a multiple of the vector width: dst row i gets
// op(x[i][c]) * g[i][c] where x and g are row pointers with row strides sx, sg (elements).
template <typename T>
__global__ void k_glu_rows(const T* __restrict__ x, const T* __restrict__ g, T* __restrict__ d, int64_t sx, int64_t sg,
                           int64_t sd, uint32_t nc, uint64_t nvec, GluParams p) {
  gw_pdl_start();
  constexpr int V = Vec16<T>::N;
  const uint32_t vpr = nc / V;
  const uint64_t stride = (uint64_t)gridDim.x * blockDim.x;
  for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < nvec; i += stride) {
    const uint64_t row = i / vpr;
    const uint32_t c = (uint32_t)(i - row * vpr) * V;
    Vec16<T> a, b;
    a.u = *reinterpret_cast<const uint4*>(x + row * sx + c);
    b.u = *reinterpret_cast<const uint4*>(g + row * sg + c);
#pragma unroll
    for (int j = 0; j < V; j++) a.v[j] = from_f32<T>(glu_apply(p, to_f32(a.v[j]), to_f32(b.v[j])));
    *reinterpret_cast<uint4*>(d + row * sd + c) = a.u;
  }
}

struct GluGeneric {
  Tensor x, g, d;
  int64_t xoff, goff; // element offsets of x and g inside their rows (fused form)
  GluParams p;
  __device__ void operator()(int64_t i0, int64_t i1, int64_t i2, int64_t i3) const {
    const float a = load_f(x.ptr(i0 + xoff, i1, i2, i3), x.type);
    const float b = load_f(g.ptr(i0 + goff, i1, i2, i3), g.type);
    store_f(d.ptr(i0, i1, i2, i3), d.type, glu_apply(p, a, b));
  }
};

bool check_glu(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 1)) return false;
  const Tensor &a = n.src[0], &d = n.dst;
  if (!is_float(a.type) || !is_float(d.type)) return c.fail("unsupported types");
  if (n.has[1]) {
    const Tensor& b = n.src[1];
    if (!is_float(b.type)) return c.fail("unsupported src[1] type");
    if (!same_shape(a, b) || !same_shape(a, d)) return c.fail("split operands and dst must have one shape");
  } else {
    // an odd row leaves its last element unused, as in ggml
    if (d.ne[0] != a.ne[0] / 2 || d.ne[1] != a.ne[1] || d.ne[2] != a.ne[2] || d.ne[3] != a.ne[3]) {
      return c.fail("dst shape does not match the fused operand");
    }
  }
  return true;
}

void run_glu(const Node& n, RunCtx& r) {
  const Tensor& d = n.dst;
  GluParams p{n.pi(0), n.pf(2), n.pf(3)};
  const bool split = n.has[1];
  const bool swapped = n.pi(1) != 0;
  const int64_t nc = d.ne[0];
  Tensor x = n.src[0], g = split ? n.src[1] : n.src[0];
  int64_t xoff = 0, goff = 0;
  if (!split) {
    xoff = swapped ? nc : 0;
    goff = swapped ? 0 : nc;
  }
  const int es = type_size(d.type);
  const int V = 16 / es;
  auto rows_ok = [&](const Tensor& t) {
    return t.type == d.type && rows_contiguous_1(t) && t.nb[1] % 16 == 0 && aligned16(t.data) &&
           t.nb[2] == t.nb[1] * t.ne[1] && t.nb[3] == t.nb[2] * t.ne[2];
  };
  if (rows_ok(x) && rows_ok(g) && rows_ok(d) && nc % V == 0 && nc < (1ll << 31)) {
    const uint64_t nvec = (uint64_t)d.nrows() * (nc / V);
    const int threads = 256;
    const unsigned blocks = blocks_for((int64_t)nvec, threads, (int64_t)r.caps->sms * 16);
    const int64_t sx = x.nb[1] / es, sg = g.nb[1] / es, sd = d.nb[1] / es;
    switch (d.type) {
      case F32: GW_LAUNCH(r, k_glu_rows<float>, blocks, threads, 0, (const float*)x.data + xoff, (const float*)g.data + goff, (float*)d.data, sx, sg, sd, (uint32_t)nc, nvec, p); return;
      case F16: GW_LAUNCH(r, k_glu_rows<gw_half>, blocks, threads, 0, (const gw_half*)x.data + xoff, (const gw_half*)g.data + goff, (gw_half*)d.data, sx, sg, sd, (uint32_t)nc, nvec, p); return;
      case BF16: GW_LAUNCH(r, k_glu_rows<bf16_t>, blocks, threads, 0, (const bf16_t*)x.data + xoff, (const bf16_t*)g.data + goff, (bf16_t*)d.data, sx, sg, sd, (uint32_t)nc, nvec, p); return;
    }
  }
  map4(r, d.ne, GluGeneric{x, g, d, xoff, goff, p});
}

const OpDef kOps[] = {
    {OP_GLU, G_REGLU, "REGLU", check_glu, run_glu},
    {OP_GLU, G_GEGLU, "GEGLU", check_glu, run_glu},
    {OP_GLU, G_SWIGLU, "SWIGLU", check_glu, run_glu},
    {OP_GLU, G_SWIGLU_OAI, "SWIGLU_OAI", check_glu, run_glu},
    {OP_GLU, G_GEGLU_ERF, "GEGLU_ERF", check_glu, run_glu},
    {OP_GLU, G_GEGLU_QUICK, "GEGLU_QUICK", check_glu, run_glu},
};

} // namespace

void register_glu() { add_ops(kOps, (int)(sizeof kOps / sizeof kOps[0])); }

} // namespace gw
