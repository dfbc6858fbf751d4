// Re-arrangements: CONCAT (along any dim), REPEAT (tiling), PAD (zeros or circular), ROLL
// (cyclic shifts). Each reads a source element for every destination element; every source
// coordinate is reduced into the source's shape before it is used.
#include "launch.cuh"

namespace gw {
namespace {

__device__ __forceinline__ void copy_elem(char* dp, int32_t dt, const char* sp, int32_t st) {
  if (dt == st) {
    switch (type_size(dt)) {
      case 1: *dp = *sp; return;
      case 2: *(uint16_t*)dp = *(const uint16_t*)sp; return;
      case 4: *(uint32_t*)dp = *(const uint32_t*)sp; return;
      default: *(uint64_t*)dp = *(const uint64_t*)sp; return;
    }
  }
  store_f(dp, dt, load_f(sp, st));
}

struct Concat {
  Tensor a, b, d;
  int dim;
  __device__ void operator()(int64_t i0, int64_t i1, int64_t i2, int64_t i3) const {
    int64_t i[4] = {i0, i1, i2, i3};
    const char* sp;
    int32_t st;
    if (i[dim] < a.ne[dim]) {
      sp = a.ptr(i[0], i[1], i[2], i[3]);
      st = a.type;
    } else {
      i[dim] -= a.ne[dim];
      sp = b.ptr(i[0], i[1], i[2], i[3]);
      st = b.type;
    }
    copy_elem(d.ptr(i0, i1, i2, i3), d.type, sp, st);
  }
};

bool check_concat(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 2)) return false;
  const Tensor &a = n.src[0], &b = n.src[1], &d = n.dst;
  if (a.type != d.type || b.type != d.type) return c.fail("types differ");
  const int dim = n.pi(0);
  if (dim < 0 || dim > 3) return c.fail("dim %d out of range", dim);
  for (int i = 0; i < 4; i++) {
    const int64_t want = i == dim ? a.ne[i] + b.ne[i] : a.ne[i];
    if (d.ne[i] != want || (i != dim && b.ne[i] != a.ne[i])) return c.fail("shapes do not concatenate");
  }
  return true;
}

void run_concat(const Node& n, RunCtx& r) { map4(r, n.dst.ne, Concat{n.src[0], n.src[1], n.dst, n.pi(0)}); }

struct Repeat {
  Tensor s, d;
  __device__ void operator()(int64_t i0, int64_t i1, int64_t i2, int64_t i3) const {
    copy_elem(d.ptr(i0, i1, i2, i3), d.type, s.ptr(i0 % s.ne[0], i1 % s.ne[1], i2 % s.ne[2], i3 % s.ne[3]), s.type);
  }
};

bool check_repeat(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 1)) return false;
  if (n.src[0].type != n.dst.type) return c.fail("types differ");
  if (!can_repeat(n.src[0], n.dst)) return c.fail("src[0] does not tile dst");
  return true;
}

void run_repeat(const Node& n, RunCtx& r) { map4(r, n.dst.ne, Repeat{n.src[0], n.dst}); }

struct Pad {
  Tensor s, d;
  int32_t lp[4];
  bool circular;
  __device__ void operator()(int64_t i0, int64_t i1, int64_t i2, int64_t i3) const {
    int64_t j[4] = {i0 - lp[0], i1 - lp[1], i2 - lp[2], i3 - lp[3]};
    bool inside = true;
    for (int k = 0; k < 4; k++) {
      if (circular) j[k] = ((j[k] % s.ne[k]) + s.ne[k]) % s.ne[k];
      else if (j[k] < 0 || j[k] >= s.ne[k]) inside = false;
    }
    char* dp = d.ptr(i0, i1, i2, i3);
    if (inside) copy_elem(dp, d.type, s.ptr(j[0], j[1], j[2], j[3]), s.type);
    else store_f(dp, d.type, 0.0f);
  }
};

bool check_pad(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 1)) return false;
  const Tensor &s = n.src[0], &d = n.dst;
  if (s.type != d.type || !is_float(d.type)) return c.fail("unsupported types");
  for (int k = 0; k < 4; k++) {
    const int64_t lp = n.pi(2 * k), rp = n.pi(2 * k + 1);
    if (lp < 0 || rp < 0) return c.fail("negative padding");
    if (d.ne[k] != s.ne[k] + lp + rp) return c.fail("dst shape does not match the padding");
  }
  return true;
}

void run_pad(const Node& n, RunCtx& r) {
  Pad p{n.src[0], n.dst, {n.pi(0), n.pi(2), n.pi(4), n.pi(6)}, n.pi(8) != 0};
  map4(r, n.dst.ne, p);
}

struct Roll {
  Tensor s, d;
  int32_t sh[4];
  __device__ void operator()(int64_t i0, int64_t i1, int64_t i2, int64_t i3) const {
    const int64_t i[4] = {i0, i1, i2, i3};
    int64_t j[4];
    for (int k = 0; k < 4; k++) j[k] = (((i[k] - sh[k]) % s.ne[k]) + s.ne[k]) % s.ne[k];
    copy_elem(d.ptr(i0, i1, i2, i3), d.type, s.ptr(j[0], j[1], j[2], j[3]), s.type);
  }
};

bool check_roll(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 1)) return false;
  if (n.src[0].type != n.dst.type) return c.fail("types differ");
  if (!same_shape(n.src[0], n.dst)) return c.fail("dst shape differs from src[0]");
  return true;
}

void run_roll(const Node& n, RunCtx& r) {
  map4(r, n.dst.ne, Roll{n.src[0], n.dst, {n.pi(0), n.pi(1), n.pi(2), n.pi(3)}});
}

const OpDef kOps[] = {
    {OP_CONCAT, -1, "CONCAT", check_concat, run_concat},
    {OP_REPEAT, -1, "REPEAT", check_repeat, run_repeat},
    {OP_PAD, -1, "PAD", check_pad, run_pad},
    {OP_ROLL, -1, "ROLL", check_roll, run_roll},
};

} // namespace

void register_layout() { add_ops(kOps, (int)(sizeof kOps / sizeof kOps[0])); }

} // namespace gw
