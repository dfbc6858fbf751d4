// cuBLAS through dlopen: looked for by soname on the loader's path, at GRAPHWIRE_CUBLAS, and in the
// nvidia/cublas/lib folder of Python packages (where PyTorch hosts carry it).
#include "blas.h"
#include "runtime.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <glob.h>
#include <string>

namespace gw {

#if defined(GW_HIP)

Blas* blas_open(cudaStream_t) { return nullptr; }
const char* blas_info() { return "hipBLAS is not used: the library's own kernels run every matrix product"; }
bool blas_failed(Blas*) { return false; }
const char* blas_error(Blas*) { return ""; }
bool blas_gemm_tn(Blas*, int, int, int, const void*, int, long long, const void*, int, long long, float*, int,
                  long long, int, BlasType) {
  return false;
}
bool blas_gemm_tn_ptrs(Blas*, int, int, int, const void* const*, int, const void* const*, int, void* const*, int,
                       int, BlasType) {
  return false;
}

#else

// The cuBLAS ABI pieces used (public values of cublas_api.h).
typedef int cublasStatus_t;        // CUBLAS_STATUS_SUCCESS = 0
typedef void* cublasHandle_t;
enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };
enum { CUBLAS_COMPUTE_32F = 68 };
enum { CUBLAS_GEMM_DEFAULT = -1 };
enum { CUBLAS_DEFAULT_MATH = 0 };

typedef cublasStatus_t (*fn_create)(cublasHandle_t*);
typedef cublasStatus_t (*fn_set_stream)(cublasHandle_t, cudaStream_t);
typedef cublasStatus_t (*fn_set_workspace)(cublasHandle_t, void*, size_t);
typedef cublasStatus_t (*fn_set_math_mode)(cublasHandle_t, int);
typedef const char* (*fn_status_string)(cublasStatus_t);
typedef cublasStatus_t (*fn_gemm_ex)(cublasHandle_t, int, int, int, int, int, const void*, const void*, int, int,
                                     const void*, int, int, const void*, void*, int, int, int, int);
typedef cublasStatus_t (*fn_gemm_strided)(cublasHandle_t, int, int, int, int, int, const void*, const void*, int,
                                          int, long long, const void*, int, int, long long, const void*, void*, int,
                                          int, long long, int, int, int);
typedef cublasStatus_t (*fn_gemm_batched)(cublasHandle_t, int, int, int, int, int, const void*, const void* const*,
                                          int, int, const void* const*, int, int, const void*, void* const*, int, int,
                                          int, int, int);

struct Blas {
  void* lib = nullptr;
  cublasHandle_t handle = nullptr;
  fn_gemm_ex gemm_ex = nullptr;
  fn_gemm_strided gemm_strided = nullptr;
  fn_gemm_batched gemm_batched = nullptr;
  fn_status_string status_string = nullptr;
  void* workspace = nullptr;
  bool failed = false;
  std::string error;
};

static std::string g_info = "";

static void* try_open(const std::string& path) {
  // cuBLAS needs cuBLASLt from its own folder; load that first where the path is absolute.
  size_t slash = path.rfind('/');
  if (slash != std::string::npos) {
    std::string dir = path.substr(0, slash);
    const char* lts[] = {"/libcublasLt.so.13", "/libcublasLt.so.12", "/libcublasLt.so"};
    for (const char* lt : lts) {
      if (dlopen((dir + lt).c_str(), RTLD_NOW | RTLD_GLOBAL)) break;
    }
  }
  return dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
}

static void* find_library(std::string& found) {
  if (const char* env = getenv("GRAPHWIRE_CUBLAS")) {
    if (void* h = try_open(env)) {
      found = env;
      return h;
    }
  }
  const char* sonames[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so"};
  for (const char* s : sonames) {
    if (void* h = dlopen(s, RTLD_NOW | RTLD_LOCAL)) {
      found = s;
      return h;
    }
  }
  const char* patterns[] = {
      "/opt/*/.venv/lib/python3*/site-packages/nvidia/cublas/lib/libcublas.so.*",
      "/opt/*/lib/python3*/site-packages/nvidia/cublas/lib/libcublas.so.*",
      "/usr/local/lib/python3*/dist-packages/nvidia/cublas/lib/libcublas.so.*",
      "/usr/local/lib/python3*/site-packages/nvidia/cublas/lib/libcublas.so.*",
      "/usr/lib/python3*/dist-packages/nvidia/cublas/lib/libcublas.so.*",
      "/usr/lib/python3/dist-packages/nvidia/cublas/lib/libcublas.so.*",
      "/root/.local/lib/python3*/site-packages/nvidia/cublas/lib/libcublas.so.*",
      "/usr/local/cuda/lib64/libcublas.so.*",
  };
  for (const char* pat : patterns) {
    glob_t g;
    if (glob(pat, 0, nullptr, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; i++) {
        if (void* h = try_open(g.gl_pathv[i])) {
          found = g.gl_pathv[i];
          globfree(&g);
          return h;
        }
      }
    }
    globfree(&g);
  }
  return nullptr;
}

Blas* blas_open(cudaStream_t stream) {
  std::string path;
  void* lib = find_library(path);
  if (!lib) {
    g_info = "cuBLAS not found (set GRAPHWIRE_CUBLAS to libcublas.so.N); own kernels run every matrix product";
    return nullptr;
  }
  Blas* b = new Blas();
  b->lib = lib;
  auto create = (fn_create)dlsym(lib, "cublasCreate_v2");
  auto set_stream = (fn_set_stream)dlsym(lib, "cublasSetStream_v2");
  auto set_ws = (fn_set_workspace)dlsym(lib, "cublasSetWorkspace_v2");
  auto set_math = (fn_set_math_mode)dlsym(lib, "cublasSetMathMode");
  b->status_string = (fn_status_string)dlsym(lib, "cublasGetStatusString");
  b->gemm_ex = (fn_gemm_ex)dlsym(lib, "cublasGemmEx");
  b->gemm_strided = (fn_gemm_strided)dlsym(lib, "cublasGemmStridedBatchedEx");
  b->gemm_batched = (fn_gemm_batched)dlsym(lib, "cublasGemmBatchedEx");
  if (!create || !set_stream || !set_ws || !b->gemm_ex || !b->gemm_strided || !b->gemm_batched) {
    g_info = "cuBLAS at " + path + " lacks an entry point; own kernels run every matrix product";
    delete b;
    return nullptr;
  }
  if (create(&b->handle) != 0 || set_stream(b->handle, stream) != 0) {
    g_info = "cuBLAS at " + path + " failed to initialise; own kernels run every matrix product";
    delete b;
    return nullptr;
  }
  if (set_math) set_math(b->handle, CUBLAS_DEFAULT_MATH);
  // A fixed workspace keeps cuBLAS from allocating while a CUDA graph is being captured.
  const size_t ws = 32u << 20;
  if (cudaMalloc(&b->workspace, ws) == cudaSuccess) set_ws(b->handle, b->workspace, ws);
  else (void)cudaGetLastError();
  g_info = "cuBLAS: " + path;
  return b;
}

const char* blas_info() { return g_info.c_str(); }

bool blas_failed(Blas* b) {
  bool f = b->failed;
  b->failed = false;
  return f;
}
const char* blas_error(Blas* b) { return b->error.c_str(); }

static bool check(Blas* b, cublasStatus_t s, const char* what) {
  if (s == 0) return true;
  b->failed = true;
  b->error = std::string(what) + ": " + (b->status_string ? b->status_string(s) : std::to_string(s));
  return false;
}

bool blas_gemm_tn(Blas* b, int m, int n, int k, const void* A, int lda, long long sA, const void* B, int ldb,
                  long long sB, float* C, int ldc, long long sC, int batch, BlasType ab) {
  const float one = 1.0f, zero = 0.0f;
  if (batch == 1) {
    return check(b, b->gemm_ex(b->handle, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, A, ab, lda, B, ab, ldb, &zero, C,
                               BLAS_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 "cublasGemmEx");
  }
  return check(b, b->gemm_strided(b->handle, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, A, ab, lda, sA, B, ab, ldb, sB,
                                  &zero, C, BLAS_R_32F, ldc, sC, batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               "cublasGemmStridedBatchedEx");
}

bool blas_gemm_tn_ptrs(Blas* b, int m, int n, int k, const void* const* A, int lda, const void* const* B, int ldb,
                       void* const* C, int ldc, int batch, BlasType ab) {
  const float one = 1.0f, zero = 0.0f;
  return check(b, b->gemm_batched(b->handle, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, A, ab, lda, B, ab, ldb, &zero,
                                  C, BLAS_R_32F, ldc, batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               "cublasGemmBatchedEx");
}

#endif

} // namespace gw
