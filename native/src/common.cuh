// Shared by every translation unit: ggml's type and op numbers, the Tensor view kernels receive,
// element conversions (f16 and bf16 rounded to nearest even, as ggml rounds), reductions, and the
// helpers host code uses to validate nodes.
#pragma once

#include "port.h"
#include "../include/graphwire.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <initializer_list>
#include <string>
#include <utility>

namespace gw {

// enum ggml_type (the subset this library reads or writes)
enum Type : int32_t { F32 = 0, F16 = 1, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, BF16 = 30 };

// enum ggml_op (ggml d99724f2)
enum Op : int32_t {
  OP_NONE = 0, OP_DUP = 1, OP_ADD = 2, OP_ADD_ID = 3, OP_ADD1 = 4, OP_ACC = 5, OP_SUB = 6, OP_MUL = 7,
  OP_DIV = 8, OP_SQR = 9, OP_SQRT = 10, OP_LOG = 11, OP_SIN = 12, OP_COS = 13, OP_SUM = 14,
  OP_SUM_ROWS = 15, OP_CUMSUM = 16, OP_MEAN = 17, OP_ARGMAX = 18, OP_COUNT_EQUAL = 19, OP_REPEAT = 20,
  OP_CONCAT = 22, OP_NORM = 24, OP_RMS_NORM = 25, OP_L2_NORM = 28, OP_MUL_MAT = 29,
  OP_MUL_MAT_ID = 30, OP_SCALE = 32, OP_SET = 33, OP_CPY = 34, OP_CONT = 35, OP_RESHAPE = 36,
  OP_VIEW = 37, OP_PERMUTE = 38, OP_TRANSPOSE = 39, OP_GET_ROWS = 40, OP_SET_ROWS = 42, OP_DIAG = 43,
  OP_DIAG_MASK_INF = 44, OP_SOFT_MAX = 46, OP_ROPE = 48, OP_CLAMP = 50, OP_PAD = 64, OP_ROLL = 66,
  OP_ARANGE = 67, OP_ARGSORT = 69, OP_TOP_K = 70, OP_LEAKY_RELU = 71, OP_TRI = 72, OP_FILL = 73,
  OP_FLASH_ATTN_EXT = 74, OP_UNARY = 91, OP_GLU = 100, OP_COUNT = 101
};

// enum ggml_unary_op
enum Unary : int32_t {
  U_ABS = 0, U_SGN, U_NEG, U_STEP, U_TANH, U_ELU, U_RELU, U_SIGMOID, U_GELU, U_GELU_QUICK, U_SILU,
  U_HARDSWISH, U_HARDSIGMOID, U_EXP, U_EXPM1, U_SOFTPLUS, U_GELU_ERF, U_XIELU, U_FLOOR, U_CEIL, U_ROUND,
  U_TRUNC, U_COUNT
};

// enum ggml_glu_op
enum Glu : int32_t { G_REGLU = 0, G_GEGLU, G_SWIGLU, G_SWIGLU_OAI, G_GEGLU_ERF, G_GEGLU_QUICK, G_COUNT };

/** Bytes of one element of a non-blocked type; 0 for types this library does not handle. */
__host__ __device__ inline int type_size(int32_t t) {
  switch (t) {
    case F32: case I32: return 4;
    case F16: case BF16: case I16: return 2;
    case I64: case F64: return 8;
    case I8: return 1;
    default: return 0;
  }
}
__host__ __device__ inline bool is_float(int32_t t) { return t == F32 || t == F16 || t == BF16; }
const char* type_name(int32_t t);

/** What kernels see of a tensor: its data and layout. */
struct Tensor {
  char* data;
  int64_t ne[4];
  int64_t nb[4];
  int32_t type;

  __host__ __device__ int64_t nelements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  __host__ __device__ int64_t nrows() const { return ne[1] * ne[2] * ne[3]; }
  __host__ __device__ char* ptr(int64_t i0, int64_t i1, int64_t i2, int64_t i3) const {
    return data + i0 * nb[0] + i1 * nb[1] + i2 * nb[2] + i3 * nb[3];
  }
  __host__ __device__ char* row(int64_t i1, int64_t i2, int64_t i3) const {
    return data + i1 * nb[1] + i2 * nb[2] + i3 * nb[3];
  }
};

// ---------------------------------------------------------------------------------------------
// element conversions

struct bf16_t {
  uint16_t x;
};

__host__ __device__ __forceinline__ float bf16_to_f32(uint16_t b) {
  union { uint32_t u; float f; } v;
  v.u = (uint32_t)b << 16;
  return v.f;
}
// Round to nearest even; NaN stays a quiet NaN (ggml_compute_fp32_to_bf16).
__host__ __device__ __forceinline__ uint16_t f32_to_bf16(float f) {
  union { uint32_t u; float f; } v;
  v.f = f;
  if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 64);
  return (uint16_t)((v.u + (0x7fffu + ((v.u >> 16) & 1u))) >> 16);
}

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(gw_half x) { return __half2float(x); }
__device__ __forceinline__ float to_f32(bf16_t x) { return bf16_to_f32(x.x); }
__device__ __forceinline__ float to_f32(int32_t x) { return (float)x; }

template <typename T> __device__ __forceinline__ T from_f32(float v);
template <> __device__ __forceinline__ float from_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ gw_half from_f32<gw_half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ bf16_t from_f32<bf16_t>(float v) { return bf16_t{f32_to_bf16(v)}; }
template <> __device__ __forceinline__ int32_t from_f32<int32_t>(float v) { return (int32_t)v; }

/** Reads one element of runtime type `t` as f32 (f32, f16, bf16, i32). */
__device__ __forceinline__ float load_f(const char* p, int32_t t) {
  switch (t) {
    case F16: return __half2float(*(const gw_half*)p);
    case BF16: return bf16_to_f32(*(const uint16_t*)p);
    case I32: return (float)*(const int32_t*)p;
    default: return *(const float*)p;
  }
}
/** Writes one element of runtime type `t` from f32. */
__device__ __forceinline__ void store_f(char* p, int32_t t, float v) {
  switch (t) {
    case F16: *(gw_half*)p = __float2half_rn(v); break;
    case BF16: *(uint16_t*)p = f32_to_bf16(v); break;
    case I32: *(int32_t*)p = (int32_t)v; break;
    default: *(float*)p = v; break;
  }
}
/** Reads an index element (i32 or i64). */
__device__ __forceinline__ int64_t load_index(const char* p, int32_t t) {
  return t == I64 ? *(const int64_t*)p : (int64_t)*(const int32_t*)p;
}

// ---------------------------------------------------------------------------------------------
// reductions over 32-lane groups and blocks

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) v += gw_shfl_xor(v, m);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) v = fmaxf(v, gw_shfl_xor(v, m));
  return v;
}

/** Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result. */
__device__ __forceinline__ float block_sum(float v, float* shared32) {
  v = warp_sum(v);
  const int nw = blockDim.x / 32;
  if (nw == 1) return v;
  const int w = threadIdx.x / 32, l = threadIdx.x % 32;
  __syncthreads();
  if (l == 0) shared32[w] = v;
  __syncthreads();
  v = l < nw ? shared32[l] : 0.0f;
  return warp_sum(v);
}
__device__ __forceinline__ float block_max(float v, float* shared32) {
  v = warp_max(v);
  const int nw = blockDim.x / 32;
  if (nw == 1) return v;
  const int w = threadIdx.x / 32, l = threadIdx.x % 32;
  __syncthreads();
  if (l == 0) shared32[w] = v;
  __syncthreads();
  v = l < nw ? shared32[l] : -INFINITY;
  return warp_max(v);
}

// ---------------------------------------------------------------------------------------------
// host side: nodes, validation, launching

/** A node as the op implementations see it. */
struct Node {
  int32_t op;
  const int32_t* params;
  Tensor dst;
  Tensor src[GW_MAX_SRC];
  bool has[GW_MAX_SRC];
  bool skip = false; // nothing to compute (e.g. SET_ROWS of zero rows)

  int32_t pi(int i) const { return params[i]; }
  float pf(int i) const {
    float f;
    memcpy(&f, &params[i], 4);
    return f;
  }
};

/** Device facts kernels choose by. */
struct DeviceCaps {
  int cc; // compute capability * 10 (CUDA) or gfx major * 10 (HIP)
  int sms;
  size_t smem_optin; // largest dynamic shared memory a block may opt into
};

struct Blas;

/** What a launch needs besides its node. */
struct RunCtx {
  cudaStream_t stream;
  char* scratch;
  size_t scratch_size;
  const DeviceCaps* caps;
  Blas* blas;       // null when no BLAS library is in use
  int32_t device;
  int launches;     // counts kernel launches (statistics)
  int pdl = 0;      // programmatic dependent launch: 0 none, 1 for GW_LAUNCH_PDL sites, 2 for every launch
  unsigned* fa_counters = nullptr; // the device's FA_COUNTERS counters, 0 between kernels (FLASH_ATTN_EXT)
};

/** Queries of a FLASH_ATTN_EXT node whose key slices can be merged by the last slice to finish. */
constexpr int FA_COUNTERS = 16384;

/** Context of validation: collects the scratch a node needs and the reason it is refused. */
struct CheckCtx {
  const DeviceCaps* caps;
  bool blas;        // a BLAS library will be used
  size_t scratch = 0;
  std::string why;
  /** Records a reason and returns false: `return c.fail("...")`. */
  bool fail(const char* fmt, ...);
};

/** One entry of the op table: validation and launch read the same entry. */
struct OpDef {
  int32_t op;
  int32_t sub; // sub-op for UNARY / GLU, else -1
  const char* name;
  bool (*check)(const Node& n, CheckCtx& c);
  void (*run)(const Node& n, RunCtx& r);
};

/** Registers op implementations (each op family's file has one such function). */
void add_ops(const OpDef* defs, int count);
const OpDef* find_op(int32_t op, int32_t sub);

// validation helpers
bool same_shape(const Tensor& a, const Tensor& b);
bool can_repeat(const Tensor& small, const Tensor& big); // every dim of big a multiple of small's
bool is_contiguous(const Tensor& t);
bool is_contiguous_rows(const Tensor& t); // nb[0] == element size
bool rows_contiguous_1(const Tensor& t);  // ggml_is_contiguous_1
bool types_in(int32_t t, std::initializer_list<int32_t> ts);
bool require_src(const Node& n, CheckCtx& c, int count);

/** Grid helpers. */
inline unsigned blocks_for(int64_t n, int threads, int64_t cap = 1 << 30) {
  int64_t b = (n + threads - 1) / threads;
  if (b > cap) b = cap;
  if (b < 1) b = 1;
  return (unsigned)b;
}

} // namespace gw

namespace gw {
/**
 * A launch that lets the kernel start before the previous kernel in the stream has finished
 * (programmatic dependent launch, sm_90+): the kernel's gw_pdl_start waits for it. Inside a
 * stream capture the dependency becomes a programmatic edge of the CUDA graph.
 */
template <typename... KArgs, typename... Args>
cudaError_t launch_pdl(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                       Args&&... args) {
#if GW_HAVE_PDL
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  return cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
#else
  kernel<<<grid, block, smem, stream>>>(std::forward<Args>(args)...);
  return cudaPeekAtLastError();
#endif
}
} // namespace gw

/**
 * Kernel launch wrapper that counts launches; every kernel begins with gw_pdl_start(), so any of them
 * may be launched as a programmatic dependent. GW_LAUNCH does so only when GW_OPT_PDL is 2;
 * GW_LAUNCH_PDL (the sites where it was measured faster: many short blocks, several waves) from 1.
 * H200, 16 nodes in a row: mat-vec n=1 0.4-0.7 µs faster per node; FLASH_ATTN_EXT decode 1.1 µs,
 * the tensor-core mat-vec 1.4 µs and the transposing copy 7 µs slower (kernels of one full wave).
 */
#define GW_LAUNCH_AT(min_pdl, r, kernel, grid, block, smem, ...)                                      \
  do {                                                                                                \
    if ((r).pdl >= (min_pdl)) {                                                                       \
      (void)::gw::launch_pdl(kernel, dim3(grid), dim3(block), (size_t)(smem), (r).stream, __VA_ARGS__); \
    } else {                                                                                          \
      kernel<<<(grid), (block), (smem), (r).stream>>>(__VA_ARGS__);                                   \
    }                                                                                                 \
    (r).launches++;                                                                                   \
  } while (0)
#define GW_LAUNCH(r, kernel, grid, block, smem, ...) GW_LAUNCH_AT(2, r, kernel, grid, block, smem, __VA_ARGS__)
#define GW_LAUNCH_PDL(r, kernel, grid, block, smem, ...) GW_LAUNCH_AT(1, r, kernel, grid, block, smem, __VA_ARGS__)
