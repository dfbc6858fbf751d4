// Element-wise ops of two sources: ADD SUB MUL DIV (src1 broadcast to src0's shape by repetition),
// ADD1 (src1 a scalar) and ADD_ID (src1's rows chosen per row by an index tensor, bounds-checked).
#include "launch.cuh"

namespace gw {
namespace {

enum Bin : int32_t { B_ADD, B_SUB, B_MUL, B_DIV };

__device__ __forceinline__ float bin_apply(int32_t op, float a, float b) {
  switch (op) {
    case B_SUB: return a - b;
    case B_MUL: return a * b;
    case B_DIV: return a / b;
    default: return a + b;
  }
}

int32_t bin_of(int32_t op) {
  switch (op) {
    case OP_SUB: return B_SUB;
    case OP_MUL: return B_MUL;
    case OP_DIV: return B_DIV;
    default: return B_ADD;
  }
}

// Contiguous dst, src0 and src1 rows (src1 rows repeat): 16-byte vectors along each row.
template <typename T>
__global__ void k_bin_rows(const T* __restrict__ a, const Tensor b, T* __restrict__ d, uint32_t ne0, uint32_t ne1,
                           uint32_t ne2, uint64_t nvec, int32_t op) {
  gw_pdl_start();
  constexpr int V = Vec16<T>::N;
  const uint32_t vpr = ne0 / V; // vectors per row
  const uint64_t stride = (uint64_t)gridDim.x * blockDim.x;
  for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < nvec; i += stride) {
    const uint64_t row = i / vpr;
    const uint32_t c = (uint32_t)(i - row * vpr) * V;
    const uint32_t i1 = (uint32_t)(row % ne1);
    const uint64_t r2 = row / ne1;
    const uint32_t i2 = (uint32_t)(r2 % ne2);
    const uint32_t i3 = (uint32_t)(r2 / ne2);
    const T* brow = (const T*)b.row(i1 % b.ne[1], i2 % b.ne[2], i3 % b.ne[3]);
    Vec16<T> x, y;
    x.u = reinterpret_cast<const uint4*>(a)[i];
    y.u = *reinterpret_cast<const uint4*>(brow + c);
#pragma unroll
    for (int j = 0; j < V; j++) x.v[j] = from_f32<T>(bin_apply(op, to_f32(x.v[j]), to_f32(y.v[j])));
    reinterpret_cast<uint4*>(d)[i] = x.u;
  }
}

struct BinGeneric {
  Tensor a, b, d;
  int32_t op;
  __device__ void operator()(int64_t i0, int64_t i1, int64_t i2, int64_t i3) const {
    const float x = load_f(a.ptr(i0, i1, i2, i3), a.type);
    const float y = load_f(b.ptr(i0 % b.ne[0], i1 % b.ne[1], i2 % b.ne[2], i3 % b.ne[3]), b.type);
    store_f(d.ptr(i0, i1, i2, i3), d.type, bin_apply(op, x, y));
  }
};

bool check_bin(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 2)) return false;
  const Tensor &a = n.src[0], &b = n.src[1], &d = n.dst;
  if (!is_float(a.type) || !is_float(b.type) || !is_float(d.type)) {
    return c.fail("types %s, %s -> %s", type_name(a.type), type_name(b.type), type_name(d.type));
  }
  if (!same_shape(a, d)) return c.fail("dst shape differs from src[0]");
  if (n.op == OP_ADD1) {
    if (b.nelements() != 1) return c.fail("src[1] is not a scalar");
  } else if (!can_repeat(b, a)) {
    return c.fail("src[1] [%lld,%lld,%lld,%lld] cannot be repeated to src[0] [%lld,%lld,%lld,%lld]", (long long)b.ne[0],
                  (long long)b.ne[1], (long long)b.ne[2], (long long)b.ne[3], (long long)a.ne[0], (long long)a.ne[1],
                  (long long)a.ne[2], (long long)a.ne[3]);
  }
  return true;
}

void run_bin(const Node& n, RunCtx& r) {
  const Tensor &a = n.src[0], &b = n.src[1], &d = n.dst;
  const int32_t op = bin_of(n.op);
  const int es = type_size(d.type);
  const int V = 16 / es;
  const bool fast = a.type == d.type && b.type == d.type && is_contiguous(a) && is_contiguous(d) &&
                    is_contiguous_rows(b) && b.ne[0] == d.ne[0] && d.ne[0] % V == 0 && aligned16(a.data) &&
                    aligned16(d.data) && aligned16(b.data) && b.nb[1] % 16 == 0 && b.nb[2] % 16 == 0 &&
                    b.nb[3] % 16 == 0 && d.ne[0] < (1ll << 31) && d.ne[1] < (1ll << 31) && d.ne[2] < (1ll << 31);
  if (fast) {
    const uint64_t nvec = (uint64_t)d.nelements() / V;
    const int threads = 256;
    const unsigned blocks = blocks_for((int64_t)nvec, threads, (int64_t)r.caps->sms * 16);
    const uint32_t ne0 = (uint32_t)d.ne[0], ne1 = (uint32_t)d.ne[1], ne2 = (uint32_t)d.ne[2];
    switch (d.type) {
      case F32: GW_LAUNCH(r, k_bin_rows<float>, blocks, threads, 0, (const float*)a.data, b, (float*)d.data, ne0, ne1, ne2, nvec, op); return;
      case F16: GW_LAUNCH(r, k_bin_rows<gw_half>, blocks, threads, 0, (const gw_half*)a.data, b, (gw_half*)d.data, ne0, ne1, ne2, nvec, op); return;
      case BF16: GW_LAUNCH(r, k_bin_rows<bf16_t>, blocks, threads, 0, (const bf16_t*)a.data, b, (bf16_t*)d.data, ne0, ne1, ne2, nvec, op); return;
    }
  }
  map4(r, d.ne, BinGeneric{a, b, d, op});
}

// ADD_ID: dst[i0, i1, i2] = src0[i0, i1, i2] + src1[i0, ids[i1, i2]]
struct AddId {
  Tensor a, b, ids, d;
  __device__ void operator()(int64_t i0, int64_t i1, int64_t i2, int64_t i3) const {
    const int64_t e = load_index(ids.ptr(i1, i2, 0, 0), ids.type);
    float y = 0.0f;
    if (e >= 0 && e < b.ne[1]) y = load_f(b.ptr(i0, e, 0, 0), b.type);
    store_f(d.ptr(i0, i1, i2, i3), d.type, load_f(a.ptr(i0, i1, i2, i3), a.type) + y);
  }
};

bool check_add_id(const Node& n, CheckCtx& c) {
  if (!require_src(n, c, 3)) return false;
  const Tensor &a = n.src[0], &b = n.src[1], &ids = n.src[2], &d = n.dst;
  if (!is_float(a.type) || !is_float(b.type) || !is_float(d.type)) return c.fail("unsupported types");
  if (ids.type != I32) return c.fail("ids must be i32");
  if (!same_shape(a, d)) return c.fail("dst shape differs from src[0]");
  if (a.ne[3] != 1) return c.fail("src[0] must be 3-d");
  if (b.ne[0] != a.ne[0]) return c.fail("src[1] row length differs");
  if (ids.ne[0] != a.ne[1] || ids.ne[1] != a.ne[2]) return c.fail("ids shape does not match src[0]");
  return true;
}

void run_add_id(const Node& n, RunCtx& r) { map4(r, n.dst.ne, AddId{n.src[0], n.src[1], n.src[2], n.dst}); }

const OpDef kOps[] = {
    {OP_ADD, -1, "ADD", check_bin, run_bin},
    {OP_SUB, -1, "SUB", check_bin, run_bin},
    {OP_MUL, -1, "MUL", check_bin, run_bin},
    {OP_DIV, -1, "DIV", check_bin, run_bin},
    {OP_ADD1, -1, "ADD1", check_bin, run_bin},
    {OP_ADD_ID, -1, "ADD_ID", check_add_id, run_add_id},
};

} // namespace

void register_binary() { add_ops(kOps, (int)(sizeof kOps / sizeof kOps[0])); }

} // namespace gw
