// ROPE: normal, neox, multi-section (mrope, imrope) and vision modes, frequency factors, YaRN
// extrapolation mixing, a rotated slice at an offset (op_params[15]); the rest of a row is copied.
#include "launch.cuh"

#include <cmath>

namespace gw {
namespace {

enum { ROPE_NORMAL = 0, ROPE_NEOX = 2, ROPE_MROPE = 8, ROPE_VISION = 24, ROPE_IMROPE = 40 };

struct RopeArgs {
  Tensor s, pos, ff, d;
  bool has_ff;
  int32_t mode, n_dims, n_offs;
  int32_t sect[4];
  float freq_scale, ext_factor, attn_factor, theta_scale;
  float corr0, corr1;
};

__device__ __forceinline__ void rope_yarn(const RopeArgs& a, float theta_extrap, int64_t i0, float& c, float& s) {
  const float theta_interp = a.freq_scale * theta_extrap;
  float theta = theta_interp;
  float mscale = a.attn_factor;
  if (a.ext_factor != 0.0f) {
    const float y = ((float)(i0 / 2) - a.corr0) / fmaxf(0.001f, a.corr1 - a.corr0);
    const float ramp_mix = (1.0f - fminf(1.0f, fmaxf(0.0f, y))) * a.ext_factor;
    theta = theta_interp * (1 - ramp_mix) + theta_extrap * ramp_mix;
    mscale *= 1.0f + 0.1f * logf(1.0f / a.freq_scale);
  }
  c = cosf(theta) * mscale;
  s = sinf(theta) * mscale;
}

__device__ __forceinline__ float pos_at(const RopeArgs& a, int64_t i) { return (float)*(const int32_t*)a.pos.ptr(i, 0, 0, 0); }

// theta before frequency factors for pair p of row position index i2
__device__ float rope_theta(const RopeArgs& a, int64_t p, int64_t i2) {
  const int64_t ne2 = a.s.ne[2];
  if (!(a.mode & ROPE_MROPE)) return pos_at(a, i2) * powf(a.theta_scale, (float)p);
  const int s0 = a.sect[0], s1 = a.sect[1], s2 = a.sect[2], s3 = a.sect[3];
  const int sect_dims = s0 + s1 + s2 + s3;
  const int sec_w = s0 + s1, sec_e = sec_w + s2;
  const int sector = (int)(p % sect_dims);
  int which; // 0 t, 1 h, 2 w, 3 e
  if (a.mode == ROPE_IMROPE) {
    if (sector % 3 == 1 && sector < 3 * s1) which = 1;
    else if (sector % 3 == 2 && sector < 3 * s2) which = 2;
    else if (sector % 3 == 0 && sector < 3 * s0) which = 0;
    else which = 3;
  } else {
    if (sector >= s0 && sector < sec_w) which = 1;
    else if (sector >= sec_w && sector < sec_w + s2) which = 2;
    else if (sector >= sec_w + s2) which = 3;
    else which = 0;
  }
  const float base = pos_at(a, i2 + ne2 * which);
  if (a.mode == ROPE_VISION) {
    // theta restarts at the beginning of each section
    const int start = which == 0 ? 0 : which == 1 ? s0 : which == 2 ? sec_w : sec_e;
    return base * powf(a.theta_scale, (float)(sector - start));
  }
  return base * powf(a.theta_scale, (float)p);
}

struct RopeKernel {
  RopeArgs a;
  __device__ void operator()(int64_t q, int64_t i1, int64_t i2, int64_t i3) const {
    const int64_t ne0 = a.s.ne[0];
    const bool vision = a.mode == ROPE_VISION;
    const int64_t rot_pairs = vision ? ne0 / 2 : a.n_dims / 2;
    int64_t e0, e1;
    if (q < rot_pairs) {
      if (vision) {
        e0 = q;
        e1 = q + a.n_dims;
      } else if (a.mode == ROPE_NORMAL) {
        e0 = a.n_offs + 2 * q;
        e1 = e0 + 1;
      } else {
        e0 = a.n_offs + q;
        e1 = e0 + a.n_dims / 2;
      }
      float theta = rope_theta(a, q, i2);
      if (a.has_ff) theta /= load_f(a.ff.ptr(q, 0, 0, 0), a.ff.type);
      float c, s;
      rope_yarn(a, theta, 2 * q, c, s);
      const float x0 = load_f(a.s.ptr(e0, i1, i2, i3), a.s.type);
      const float x1 = load_f(a.s.ptr(e1, i1, i2, i3), a.s.type);
      store_f(a.d.ptr(e0, i1, i2, i3), a.d.type, x0 * c - x1 * s);
      store_f(a.d.ptr(e1, i1, i2, i3), a.d.type, x0 * s + x1 * c);
    } else {
      int64_t e = 2 * (q - rot_pairs);
      if (e >= a.n_offs) e += a.n_dims;
      store_f(a.d.ptr(e, i1, i2, i3), a.d.type, load_f(a.s.ptr(e, i1, i2, i3), a.s.type));
      store_f(a.d.ptr(e + 1, i1, i2, i3), a.d.type, load_f(a.s.ptr(e + 1, i1, i2, i3), a.s.type));
    }
  }
};

float corr_dim(int n_dims, int n_ctx_orig, float n_rot, float base) {
  return n_dims * logf(n_ctx_orig / (n_rot * 2 * (float)M_PI)) / (2 * logf(base));
}

bool check_rope(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 2)) return false;
  const Tensor &s = n.src[0], &pos = n.src[1], &d = n.dst;
  if (!is_float(s.type) || !is_float(d.type)) return c.fail("unsupported types");
  if (!same_shape(s, d)) return c.fail("dst shape differs from src[0]");
  if (pos.type != I32) return c.fail("positions must be i32");
  const int32_t n_dims = n.pi(1), mode = n.pi(2), n_offs = n.pi(15);
  if (mode != ROPE_NORMAL && mode != ROPE_NEOX && mode != ROPE_MROPE && mode != ROPE_VISION && mode != ROPE_IMROPE) {
    return c.fail("mode %d is not supported", mode);
  }
  const int64_t ne0 = s.ne[0];
  if (ne0 % 2 != 0) return c.fail("row length must be even");
  if (n_dims <= 0 || n_dims % 2 != 0) return c.fail("n_dims %d must be positive and even", n_dims);
  if (n_offs < 0 || n_offs % 2 != 0 || (int64_t)n_offs + n_dims > ne0) return c.fail("n_dims + offset exceed the row");
  const bool mrope = (mode & ROPE_MROPE) != 0;
  if (mode == ROPE_VISION && (2 * (int64_t)n_dims != ne0 || n_offs != 0)) return c.fail("vision mode needs n_dims = ne0/2");
  if (pos.nelements() != pos.ne[0]) return c.fail("positions must be a vector");
  if (pos.ne[0] < s.ne[2] * (mrope ? 4 : 1)) return c.fail("too few positions");
  if (mrope) {
    int64_t sd = 0;
    for (int i = 0; i < 4; i++) {
      if (n.pi(11 + i) < 0) return c.fail("negative section");
      sd += n.pi(11 + i);
    }
    if (sd <= 0) return c.fail("mrope sections are empty");
  }
  if (n.has[2]) {
    const Tensor& ff = n.src[2];
    if (!is_float(ff.type)) return c.fail("frequency factors must be float");
    const int64_t pairs = mode == ROPE_VISION ? ne0 / 2 : n_dims / 2;
    if (ff.ne[0] < pairs) return c.fail("too few frequency factors");
  }
  return true;
}

void run_rope(const Node& n, RunCtx& r) {
  RopeArgs a;
  a.s = n.src[0];
  a.pos = n.src[1];
  a.has_ff = n.has[2];
  a.ff = n.src[2];
  a.d = n.dst;
  a.n_dims = n.pi(1);
  a.mode = n.pi(2);
  a.n_offs = n.pi(15);
  for (int i = 0; i < 4; i++) a.sect[i] = n.pi(11 + i);
  const int n_ctx_orig = n.pi(4);
  const float freq_base = n.pf(5);
  a.freq_scale = n.pf(6);
  a.ext_factor = n.pf(7);
  a.attn_factor = n.pf(8);
  const float beta_fast = n.pf(9), beta_slow = n.pf(10);
  a.theta_scale = powf(freq_base, -2.0f / a.n_dims);
  const float start = floorf(corr_dim(a.n_dims, n_ctx_orig, beta_fast, freq_base));
  const float end = ceilf(corr_dim(a.n_dims, n_ctx_orig, beta_slow, freq_base));
  a.corr0 = fmaxf(0.0f, start);
  a.corr1 = fminf((float)(a.n_dims - 1), end);
  const int64_t shape[4] = {a.s.ne[0] / 2, a.s.ne[1], a.s.ne[2], a.s.ne[3]};
  map4(r, shape, RopeKernel{a});
}

const OpDef kOps[] = {
    {OP_ROPE, -1, "ROPE", check_rope, run_rope},
};

} // namespace

void register_rope() { add_ops(kOps, (int)(sizeof kOps / sizeof kOps[0])); }

} // namespace gw
