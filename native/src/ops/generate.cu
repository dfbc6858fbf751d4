// Generators and masks: ARANGE, TRI (keep one triangle of each matrix), DIAG (a vector to a
// diagonal matrix).
#include "launch.cuh"

namespace gw {
namespace {

struct Arange {
  Tensor d;
  float start, step;
  __device__ void operator()(int64_t i0, int64_t i1, int64_t i2, int64_t i3) const {
    store_f(d.ptr(i0, i1, i2, i3), d.type, start + step * (float)i0);
  }
};

bool check_arange(const Node& n, CheckCtx& c) {
  if (!is_float(n.dst.type)) return c.fail("dst must be float");
  if (n.dst.nelements() != n.dst.ne[0]) return c.fail("dst must be a vector");
  return true;
}

void run_arange(const Node& n, RunCtx& r) { map4(r, n.dst.ne, Arange{n.dst, n.pf(0), n.pf(2)}); }

enum { TRI_UPPER_DIAG = 0, TRI_UPPER = 1, TRI_LOWER_DIAG = 2, TRI_LOWER = 3 };

struct Tri {
  Tensor s, d;
  int32_t kind;
  __device__ void operator()(int64_t i0, int64_t i1, int64_t i2, int64_t i3) const {
    bool keep;
    switch (kind) {
      case TRI_LOWER: keep = i0 < i1; break;
      case TRI_LOWER_DIAG: keep = i0 <= i1; break;
      case TRI_UPPER: keep = i0 > i1; break;
      default: keep = i0 >= i1; break;
    }
    store_f(d.ptr(i0, i1, i2, i3), d.type, keep ? load_f(s.ptr(i0, i1, i2, i3), s.type) : 0.0f);
  }
};

bool check_tri(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 1)) return false;
  if (!is_float(n.src[0].type) || !is_float(n.dst.type)) return c.fail("unsupported types");
  if (!same_shape(n.src[0], n.dst)) return c.fail("dst shape differs from src[0]");
  const int32_t k = n.pi(0);
  if (k < TRI_UPPER_DIAG || k > TRI_LOWER) return c.fail("triangle kind %d", k);
  return true;
}

void run_tri(const Node& n, RunCtx& r) { map4(r, n.dst.ne, Tri{n.src[0], n.dst, n.pi(0)}); }

struct Diag {
  Tensor s, d;
  __device__ void operator()(int64_t i0, int64_t i1, int64_t i2, int64_t i3) const {
    store_f(d.ptr(i0, i1, i2, i3), d.type, i0 == i1 ? load_f(s.ptr(i0, 0, i2, i3), s.type) : 0.0f);
  }
};

bool check_diag(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 1)) return false;
  const Tensor &s = n.src[0], &d = n.dst;
  if (!is_float(s.type) || !is_float(d.type)) return c.fail("unsupported types");
  if (s.ne[1] != 1 || d.ne[0] != s.ne[0] || d.ne[1] != s.ne[0] || d.ne[2] != s.ne[2] || d.ne[3] != s.ne[3]) {
    return c.fail("dst is not the diagonal matrix of src[0]");
  }
  return true;
}

void run_diag(const Node& n, RunCtx& r) { map4(r, n.dst.ne, Diag{n.src[0], n.dst}); }

const OpDef kOps[] = {
    {OP_ARANGE, -1, "ARANGE", check_arange, run_arange},
    {OP_TRI, -1, "TRI", check_tri, run_tri},
    {OP_DIAG, -1, "DIAG", check_diag, run_diag},
};

} // namespace

void register_generate() { add_ops(kOps, (int)(sizeof kOps / sizeof kOps[0])); }

} // namespace gw
