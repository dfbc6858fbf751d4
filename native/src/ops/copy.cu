// CPY DUP CONT (any layouts with equal element counts, converting between f32, f16, bf16 and i32),
// SET and ACC (write or add src1 into a strided view of a copy of src0). Contiguous same-type copies
// are one device memcpy; a copy that swaps dim 0 with another dim goes through shared-memory tiles
// so both sides stay coalesced.
#include "launch.cuh"
#include "../runtime.h"
#include "copy.cuh"

namespace gw {

namespace {

// Same element count, independent shapes: element k in logical order of each side.
struct CopyFlat {
  Tensor s, d;
  __device__ void operator()(int64_t k, int64_t, int64_t, int64_t) const {
    int64_t t = k;
    const int64_t s0 = t % s.ne[0]; t /= s.ne[0];
    const int64_t s1 = t % s.ne[1]; t /= s.ne[1];
    const int64_t s2 = t % s.ne[2]; const int64_t s3 = t / s.ne[2];
    t = k;
    const int64_t d0 = t % d.ne[0]; t /= d.ne[0];
    const int64_t d1 = t % d.ne[1]; t /= d.ne[1];
    const int64_t d2 = t % d.ne[2]; const int64_t d3 = t / d.ne[2];
    const char* sp = s.ptr(s0, s1, s2, s3);
    char* dp = d.ptr(d0, d1, d2, d3);
    if (s.type == d.type) {
      switch (type_size(s.type)) {
        case 1: *dp = *sp; break;
        case 2: *(uint16_t*)dp = *(const uint16_t*)sp; break;
        case 4: *(uint32_t*)dp = *(const uint32_t*)sp; break;
        default: *(uint64_t*)dp = *(const uint64_t*)sp; break;
      }
    } else {
      store_f(dp, d.type, load_f(sp, s.type));
    }
  }
};

// Same shape: element (i0..i3) to (i0..i3).
struct CopySame {
  Tensor s, d;
  __device__ void operator()(int64_t i0, int64_t i1, int64_t i2, int64_t i3) const {
    const char* sp = s.ptr(i0, i1, i2, i3);
    char* dp = d.ptr(i0, i1, i2, i3);
    if (s.type == d.type) {
      switch (type_size(s.type)) {
        case 1: *dp = *sp; break;
        case 2: *(uint16_t*)dp = *(const uint16_t*)sp; break;
        case 4: *(uint32_t*)dp = *(const uint32_t*)sp; break;
        default: *(uint64_t*)dp = *(const uint64_t*)sp; break;
      }
    } else {
      store_f(dp, d.type, load_f(sp, s.type));
    }
  }
};

// Contiguous on both sides, converting.
template <typename S, typename D>
__global__ void k_convert(const S* __restrict__ s, D* __restrict__ d, int64_t n) {
  gw_pdl_start();
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) d[i] = from_f32<D>(to_f32(s[i]));
}

// Tiled swap of dim 0 with another dim (the source's contiguous one), same type. Tiles of 64 (or
// 32) rows of dim 0 by 32 of the other, block 32x8. Strides come in resolved on the host, so no
// array is indexed at run time.
struct TransposeArgs {
  const char* s;
  char* d;
  int64_t ne0, ned, ne1o, ne2o;     // sizes: dim 0, the swapped dim, the two other dims
  int64_t s0, sd, s1o, s2o;         // source strides of those dims
  int64_t d0, dd, d1o, d2o;         // destination strides
  int64_t tiles0, tilesd;
  int order;                        // 0: consecutive tiles along dim 0; 1: along the swapped dim
};

template <typename E, int TR>
__global__ void __launch_bounds__(256) k_transpose(const TransposeArgs a) {
  gw_pdl_start();
  // TR rows of dim 0 by 32 of the swapped dim per tile, TR / 8 elements per thread
  constexpr int J = TR / 8;
  __shared__ E tile[TR][33];
  const int64_t ntiles = a.tiles0 * a.tilesd * a.ne1o * a.ne2o;
  for (int64_t t = blockIdx.x; t < ntiles; t += gridDim.x) {
    // consecutive blocks take neighbouring tiles along dim 0 (order 1: along the swapped dim)
    const int64_t tt = t % (a.tiles0 * a.tilesd);
    const int64_t td = a.order ? tt % a.tilesd : tt / a.tiles0;
    const int64_t t0 = a.order ? tt / a.tilesd : tt % a.tiles0;
    const int64_t to = t / (a.tiles0 * a.tilesd);
    const int64_t o1 = to % a.ne1o, o2 = to / a.ne1o;
    const char* sb = a.s + o1 * a.s1o + o2 * a.s2o;
    char* db = a.d + o1 * a.d1o + o2 * a.d2o;
    // read: consecutive threads walk the source's contiguous dim; J loads issued, then stored
    E v[J];
    const int64_t id_r = td * 32 + threadIdx.x;
#pragma unroll
    for (int j = 0; j < J; j++) {
      const int64_t i0 = t0 * TR + threadIdx.y + 8 * j;
      if (i0 < a.ne0 && id_r < a.ned) v[j] = *(const E*)(sb + i0 * a.s0 + id_r * a.sd);
    }
#pragma unroll
    for (int j = 0; j < J; j++) tile[threadIdx.y + 8 * j][threadIdx.x] = v[j];
    __syncthreads();
    // write: consecutive threads walk dim 0 (contiguous in the destination)
#pragma unroll
    for (int h = 0; h < TR / 32; h++) {
      const int64_t i0_w = t0 * TR + 32 * h + threadIdx.x;
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const int64_t id = td * 32 + threadIdx.y + 8 * j;
        if (i0_w < a.ne0 && id < a.ned) {
          *(E*)(db + i0_w * a.d0 + id * a.dd) = tile[32 * h + threadIdx.x][threadIdx.y + 8 * j];
        }
      }
    }
    __syncthreads();
  }
}

/** Launches k_transpose with tiles of TR rows for elements of `es` bytes; false when none has that size. */
template <int TR>
bool launch_transpose(RunCtx& r, unsigned blocks, const TransposeArgs& a, int es) {
  const dim3 block(32, 8);
  switch (es) {
    case 2: GW_LAUNCH(r, (k_transpose<uint16_t, TR>), blocks, block, 0, a); return true;
    case 4: GW_LAUNCH(r, (k_transpose<uint32_t, TR>), blocks, block, 0, a); return true;
    case 8: GW_LAUNCH(r, (k_transpose<uint64_t, TR>), blocks, block, 0, a); return true;
  }
  return false;
}

bool copy_types_ok(int32_t s, int32_t d) {
  if (s == d) return type_size(s) > 0;
  const bool sf = is_float(s) || s == I32, df = is_float(d) || d == I32;
  return sf && df;
}

} // namespace

void launch_copy(RunCtx& r, const Tensor& s, const Tensor& d) {
  const int64_t n = d.nelements();
  if (n == 0) return;
  const int es = type_size(d.type);
  if (s.type == d.type && is_contiguous(s) && is_contiguous(d)) {
    if (s.data != d.data) (void)cudaMemcpyAsync(d.data, s.data, (size_t)n * es, cudaMemcpyDeviceToDevice, r.stream);
    r.launches++;
    return;
  }
  const int threads = 256;
  const unsigned blocks = blocks_for(n, threads, (int64_t)r.caps->sms * 16);
  if (is_contiguous(s) && is_contiguous(d) && is_float(s.type) && is_float(d.type)) {
#define GW_CONVERT(ST, DT)                                                                              \
  GW_LAUNCH(r, (k_convert<ST, DT>), blocks, threads, 0, (const ST*)s.data, (DT*)d.data, n);             \
  return
    if (s.type == F32 && d.type == F16) { GW_CONVERT(float, gw_half); }
    if (s.type == F32 && d.type == BF16) { GW_CONVERT(float, bf16_t); }
    if (s.type == F16 && d.type == F32) { GW_CONVERT(gw_half, float); }
    if (s.type == BF16 && d.type == F32) { GW_CONVERT(bf16_t, float); }
#undef GW_CONVERT
  }
  if (same_shape(s, d)) {
    // dim 0 contiguous in the destination, another dim contiguous in the source: tile
    if (s.type == d.type && d.nb[0] == es && s.nb[0] != es && n >= 1024) {
      for (int dd = 1; dd < 4; dd++) {
        if (s.nb[dd] == es && s.ne[dd] > 1) {
          const int o1 = dd == 1 ? 2 : 1, o2 = dd == 3 ? 2 : 3;
          TransposeArgs a;
          a.s = s.data;
          a.d = d.data;
          a.ne0 = d.ne[0];
          a.ned = d.ne[dd];
          a.ne1o = d.ne[o1];
          a.ne2o = d.ne[o2];
          a.s0 = s.nb[0];
          a.sd = s.nb[dd];
          a.s1o = s.nb[o1];
          a.s2o = s.nb[o2];
          a.d0 = d.nb[0];
          a.dd = d.nb[dd];
          a.d1o = d.nb[o1];
          a.d2o = d.nb[o2];
          const int tr = g_options.copy_rows == 32 ? 32 : 64; // tile height (GW_OPT_COPY_ROWS, to compare)
          a.tiles0 = (a.ne0 + tr - 1) / tr;
          a.tilesd = (a.ned + 31) / 32;
          a.order = g_options.copy_order;
          // one tile per block, neighbouring blocks along dim 0 (GW_OPT_COPY_BLOCKS_PER_SM caps the
          // grid, GW_OPT_COPY_ORDER turns the order, to compare; H200, f32 786432x256: 64-row tiles
          // 522 µs one per block, 538 at 32 blocks per SM, 514 along dim 0; 32-row tiles 691 / 665)
          const int bps = g_options.copy_blocks_per_sm ? g_options.copy_blocks_per_sm : 1 << 20;
          const unsigned tb = blocks_for(a.tiles0 * a.tilesd * a.ne1o * a.ne2o, 1, (int64_t)r.caps->sms * bps);
          if (tr == 64 ? launch_transpose<64>(r, tb, a, es) : launch_transpose<32>(r, tb, a, es)) return;
        }
      }
    }
    map4(r, d.ne, CopySame{s, d});
    return;
  }
  const int64_t flat[4] = {n, 1, 1, 1};
  map4(r, flat, CopyFlat{s, d});
}

namespace {

bool check_cpy(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 1)) return false;
  const Tensor &s = n.src[0], &d = n.dst;
  if (!copy_types_ok(s.type, d.type)) return c.fail("cannot copy %s to %s", type_name(s.type), type_name(d.type));
  if (s.nelements() != d.nelements()) return c.fail("element counts differ");
  return true;
}

void run_cpy(const Node& n, RunCtx& r) { launch_copy(r, n.src[0], n.dst); }

// SET / ACC: dst = src0; view(dst, nb1, nb2, nb3, offset) (=|+=) src1
struct SetView {
  Tensor v, b; // v: the view into dst (data, strides, shape of b)
  bool add;
  __device__ void operator()(int64_t i0, int64_t i1, int64_t i2, int64_t i3) const {
    char* dp = v.ptr(i0, i1, i2, i3);
    float x = load_f(b.ptr(i0, i1, i2, i3), b.type);
    if (add) x += load_f(dp, v.type);
    store_f(dp, v.type, x);
  }
};

bool view_of(const Node& n, Tensor& v, CheckCtx* c) {
  const Tensor &d = n.dst, &b = n.src[1];
  const int64_t nb1 = n.pi(0), nb2 = n.pi(1), nb3 = n.pi(2), off = n.pi(3);
  if (nb1 < 0 || nb2 < 0 || nb3 < 0 || off < 0) return c ? c->fail("negative view strides or offset") : false;
  const int es = type_size(d.type);
  if (off % es != 0 || nb1 % es != 0 || nb2 % es != 0 || nb3 % es != 0) return c ? c->fail("misaligned view") : false;
  const __int128 extent = (__int128)off + es + (__int128)(b.ne[0] - 1) * es + (__int128)(b.ne[1] - 1) * nb1 +
                          (__int128)(b.ne[2] - 1) * nb2 + (__int128)(b.ne[3] - 1) * nb3;
  if (extent > (__int128)d.nelements() * es) return c ? c->fail("the view at offset %lld lies outside dst", (long long)off) : false;
  v = d;
  v.data = d.data + off;
  for (int i = 0; i < 4; i++) v.ne[i] = b.ne[i];
  v.nb[0] = es;
  v.nb[1] = nb1;
  v.nb[2] = nb2;
  v.nb[3] = nb3;
  return true;
}

bool check_set(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 2)) return false;
  const Tensor &a = n.src[0], &b = n.src[1], &d = n.dst;
  if (n.op == OP_ACC) {
    if (a.type != F32 || b.type != F32 || d.type != F32) return c.fail("ACC is f32 only");
  } else if (!(is_float(d.type) || d.type == I32) || a.type != d.type || b.type != d.type) {
    return c.fail("SET needs one float or i32 type");
  }
  if (!same_shape(a, d) || !is_contiguous(d)) return c.fail("dst must be a contiguous tensor of src[0]'s shape");
  Tensor v;
  return view_of(n, v, &c);
}

void run_set(const Node& n, RunCtx& r) {
  const Tensor &a = n.src[0], &b = n.src[1], &d = n.dst;
  if (a.data != d.data) launch_copy(r, a, d);
  Tensor v;
  if (!view_of(n, v, nullptr)) return;
  map4(r, b.ne, SetView{v, b, n.op == OP_ACC});
}

const OpDef kOps[] = {
    {OP_CPY, -1, "CPY", check_cpy, run_cpy},
    {OP_DUP, -1, "DUP", check_cpy, run_cpy},
    {OP_CONT, -1, "CONT", check_cpy, run_cpy},
    {OP_SET, -1, "SET", check_set, run_set},
    {OP_ACC, -1, "ACC", check_set, run_set},
};

} // namespace

void register_copy() { add_ops(kOps, (int)(sizeof kOps / sizeof kOps[0])); }

} // namespace gw
