// GET_ROWS and SET_ROWS: rows picked by an index tensor (i32 or i64). Every index is read from
// device memory the client wrote, so each is checked against the row count before it is used: an
// out-of-range GET_ROWS index yields a row of zeros, an out-of-range SET_ROWS index writes nothing.
#include "launch.cuh"

namespace gw {
namespace {

// dst[i0, i10, i11, i12] = src0[i0, idx[i10, i11, i12], i11, i12]
struct GetRows {
  Tensor s, idx, d;
  __device__ void operator()(int64_t i0, int64_t i10, int64_t i11, int64_t i12) const {
    const int64_t row = load_index(idx.ptr(i10, i11, i12, 0), idx.type);
    char* dp = d.ptr(i0, i10, i11, i12);
    if (row < 0 || row >= s.ne[1]) {
      store_f(dp, d.type, 0.0f);
      return;
    }
    const char* sp = s.ptr(i0, row, i11 % s.ne[2], i12 % s.ne[3]);
    if (s.type == d.type) {
      switch (type_size(s.type)) {
        case 2: *(uint16_t*)dp = *(const uint16_t*)sp; break;
        default: *(uint32_t*)dp = *(const uint32_t*)sp; break;
      }
    } else {
      store_f(dp, d.type, load_f(sp, s.type));
    }
  }
};

bool check_get_rows(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 2)) return false;
  const Tensor &s = n.src[0], &idx = n.src[1], &d = n.dst;
  if (!(is_float(s.type) || s.type == I32) || !(is_float(d.type) || d.type == I32)) return c.fail("unsupported types");
  if ((s.type == I32) != (d.type == I32)) return c.fail("i32 rows copy to i32 only");
  if (idx.type != I32 && idx.type != I64) return c.fail("indices must be i32 or i64");
  if (idx.ne[3] != 1) return c.fail("indices must be 3-d");
  if (d.ne[0] != s.ne[0] || d.ne[1] != idx.ne[0] || d.ne[2] != idx.ne[1] || d.ne[3] != idx.ne[2]) {
    return c.fail("dst shape does not match [src0.ne0, indices]");
  }
  if (idx.ne[1] % s.ne[2] != 0 || idx.ne[2] % s.ne[3] != 0) return c.fail("indices do not match src0's dims 2, 3");
  return true;
}

void run_get_rows(const Node& n, RunCtx& r) { map4(r, n.dst.ne, GetRows{n.src[0], n.src[1], n.dst}); }

// dst[i0, idx[i, i02 % ne11, i03 % ne12], i02, i03] = src0[i0, i, i02, i03]
struct SetRows {
  Tensor s, idx, d;
  __device__ void operator()(int64_t i0, int64_t i, int64_t i02, int64_t i03) const {
    const int64_t row = load_index(idx.ptr(i, i02 % idx.ne[1], i03 % idx.ne[2], 0), idx.type);
    if (row < 0 || row >= d.ne[1]) return;
    store_f(d.ptr(i0, row, i02, i03), d.type, load_f(s.ptr(i0, i, i02, i03), s.type));
  }
};

bool check_set_rows(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 2)) return false;
  const Tensor &s = n.src[0], &idx = n.src[1], &d = n.dst;
  if (!is_float(s.type) || !is_float(d.type)) return c.fail("unsupported types %s -> %s", type_name(s.type), type_name(d.type));
  if (idx.type != I32 && idx.type != I64) return c.fail("indices must be i32 or i64");
  if (s.ne[0] != d.ne[0] || s.ne[2] != d.ne[2] || s.ne[3] != d.ne[3]) return c.fail("rows do not match dst");
  if (idx.ne[0] != s.ne[1] || idx.ne[3] != 1) return c.fail("index count does not match the rows");
  if (s.ne[2] % idx.ne[1] != 0 || s.ne[3] % idx.ne[2] != 0) return c.fail("indices cannot be broadcast");
  return true;
}

void run_set_rows(const Node& n, RunCtx& r) { map4(r, n.src[0].ne, SetRows{n.src[0], n.src[1], n.dst}); }

const OpDef kOps[] = {
    {OP_GET_ROWS, -1, "GET_ROWS", check_get_rows, run_get_rows},
    {OP_SET_ROWS, -1, "SET_ROWS", check_set_rows, run_set_rows},
};

} // namespace

void register_rows() { add_ops(kOps, (int)(sizeof kOps / sizeof kOps[0])); }

} // namespace gw
