// Devices, memory, copies, errors and options: the parts of the C ABI that are not graphs.
#include "runtime.h"
#include "blas.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace gw {

Options g_options;
uint64_t g_options_generation = 0;
std::mutex g_mutex;

static thread_local std::string t_error;
static std::vector<Device*> g_devices;
static bool g_enumerated = false;
static int g_count = 0;
static uint64_t g_generation = 0;

gw_status fail(gw_status s, const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  t_error = buf;
  return s;
}

gw_status cuda_fail(cudaError_t e, const char* what) {
  (void)cudaGetLastError(); // clear a sticky launch error where the runtime allows
  gw_status s = e == cudaErrorMemoryAllocation ? GW_ERR_OUT_OF_MEMORY
                : (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver) ? GW_ERR_NO_DEVICE
                                                                                 : GW_ERR_DEVICE;
  return fail(s, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

bool CheckCtx::fail(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  why = buf;
  return false;
}

static gw_status enumerate() {
  if (g_enumerated) return GW_OK;
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return fail(GW_ERR_NO_DEVICE, "no " GW_BACKEND_NAME " device: %s", cudaGetErrorString(e));
  }
  g_count = n;
  g_devices.assign(n, nullptr);
  g_enumerated = true;
  register_all_ops();
  return GW_OK;
}

Device* get_device(int32_t id, gw_status* st) {
  *st = enumerate();
  if (*st != GW_OK) return nullptr;
  if (id < 0 || id >= g_count) {
    *st = fail(GW_ERR_INVALID, "device %d does not exist (%d present)", id, g_count);
    return nullptr;
  }
  Device* d = g_devices[id];
  if (d && d->ready) {
    (void)cudaSetDevice(id);
    return d;
  }
  if (!d) d = g_devices[id] = new Device();
  d->id = id;
  cudaError_t e = cudaSetDevice(id);
  if (e == cudaSuccess) {
    cudaDeviceProp p;
    e = cudaGetDeviceProperties(&p, id);
    if (e == cudaSuccess) {
      d->name = p.name;
      d->caps.cc = p.major * 10 + p.minor;
      d->caps.sms = p.multiProcessorCount;
#if defined(GW_HIP)
      d->caps.smem_optin = p.sharedMemPerBlock; // no opt-in beyond the default on AMD
#else
      d->caps.smem_optin = p.sharedMemPerBlockOptin ? p.sharedMemPerBlockOptin : p.sharedMemPerBlock;
#endif
      e = cudaStreamCreateWithFlags(&d->stream, cudaStreamNonBlocking);
    }
    // counters that kernels leave at 0 when they finish; every launch on the device's one stream
    // runs after the previous one, so one set serves them all
    if (e == cudaSuccess && !d->fa_counters) {
      void* c = nullptr;
      e = cudaMalloc(&c, FA_COUNTERS * sizeof(unsigned));
      if (e == cudaSuccess) e = cudaMemsetAsync(c, 0, FA_COUNTERS * sizeof(unsigned), d->stream);
      if (e == cudaSuccess) e = cudaStreamSynchronize(d->stream);
      if (e == cudaSuccess) d->fa_counters = (unsigned*)c;
      else if (c) (void)cudaFree(c);
    }
  }
  if (e != cudaSuccess) {
    *st = cuda_fail(e, "initialising the device");
    return nullptr;
  }
  d->ready = true;
  return d;
}

uint64_t find_allocation(Device* d, uint64_t ptr, uint64_t size) {
  auto it = d->allocs.upper_bound(ptr);
  if (it == d->allocs.begin()) return 0;
  --it;
  const uint64_t base = it->first, len = it->second.size;
  if (ptr < base || ptr - base > len || size > len - (ptr - base)) return 0;
  return base;
}

bool allocations_alive(Device* d, const std::vector<std::pair<uint64_t, uint64_t>>& used) {
  for (const auto& u : used) {
    auto it = d->allocs.find(u.first);
    if (it == d->allocs.end() || it->second.generation != u.second) return false;
  }
  return true;
}

Blas* device_blas(Device* d) {
  if (!g_options.blas) return nullptr;
  if (!d->blas_tried) {
    d->blas_tried = true;
    d->blas = blas_open(d->stream);
  }
  return d->blas;
}

const char* type_name(int32_t t) {
  switch (t) {
    case F32: return "f32";
    case F16: return "f16";
    case BF16: return "bf16";
    case I32: return "i32";
    case I64: return "i64";
    case I16: return "i16";
    case I8: return "i8";
    case F64: return "f64";
    default: return "quantized/other";
  }
}

/** Stores an integer option that passed its check; the error names the option and what it takes. */
static gw_status set_int(int& field, int64_t value, bool ok, const char* what, const char* takes) {
  if (!ok) return fail(GW_ERR_INVALID, "%s %lld: %s", what, (long long)value, takes);
  field = (int)value;
  return GW_OK;
}

} // namespace gw

using namespace gw;

extern "C" {

uint32_t gw_abi_version(void) { return GW_ABI_VERSION; }
const char* gw_backend_name(void) { return GW_BACKEND_NAME; }
const char* gw_last_error(void) { return t_error.c_str(); }
const char* gw_blas_info(void) { return blas_info(); }

static gw_status set_option(int32_t key, int64_t value);

gw_status gw_set_option(int32_t key, int64_t value) {
  std::lock_guard<std::mutex> lock(g_mutex);
  const gw_status st = set_option(key, value);
  if (st == GW_OK) g_options_generation++;
  return st;
}

static gw_status set_option(int32_t key, int64_t value) {
  Options& o = g_options;
  switch (key) {
    case GW_OPT_CUDA_GRAPHS: o.cuda_graphs = value != 0; return GW_OK;
    case GW_OPT_UPDATE_LIMIT:
      return set_int(o.update_limit, value, value >= 0 && value <= 1000000, "update limit", "0..1000000");
    case GW_OPT_BLAS: o.blas = value != 0; return GW_OK;
    case GW_OPT_CAPTURE_FIRST_RUN: o.capture_first_run = value != 0; return GW_OK;
    case GW_OPT_MATVEC_MAX_COLS:
      return set_int(o.matvec_max_cols, value, value >= 0 && value <= 64, "mat-vec column limit", "0..64");
    case GW_OPT_MATVEC_ROWS:
      return set_int(o.matvec_rows, value, value == 0 || value == 1 || value == 2 || value == 4 || value == 8,
                     "mat-vec rows", "0, 1, 2, 4 or 8");
    case GW_OPT_FA_BLOCKS_PER_SM:
      return set_int(o.fa_blocks_per_sm, value, value >= 0 && value <= 64, "FA blocks per SM", "0..64");
    case GW_OPT_MATVEC_WARPS:
      return set_int(o.matvec_warps, value, value == 0 || value == 4 || value == 8, "mat-vec warps", "0, 4 or 8");
    case GW_OPT_COPY_BLOCKS_PER_SM:
      return set_int(o.copy_blocks_per_sm, value, value >= 0 && value <= 100000, "copy blocks per SM", "0..100000");
    case GW_OPT_COPY_ORDER: return set_int(o.copy_order, value, value == 0 || value == 1, "copy order", "0 or 1");
    case GW_OPT_MATVEC_UNROLL: return set_int(o.matvec_unroll, value, value >= 0 && value <= 8, "mat-vec unroll", "0..8");
    case GW_OPT_MATVEC_MMA_COLS:
      return set_int(o.matvec_mma_cols, value, value == 0 || (value >= 2 && value <= 9), "mat-vec mma columns",
                     "0 or 2..9");
    case GW_OPT_COPY_ROWS:
      return set_int(o.copy_rows, value, value == 0 || value == 32 || value == 64, "copy rows", "0, 32 or 64");
    case GW_OPT_FA_KERNEL: return set_int(o.fa_kernel, value, value >= 0 && value <= 2, "FA kernel", "0, 1 or 2");
    case GW_OPT_PDL: return set_int(o.pdl, value, value >= 0 && value <= 2, "PDL", "0, 1 or 2");
    case GW_OPT_FA_MERGE: return set_int(o.fa_merge, value, value >= 0 && value <= 2, "FA merge", "0, 1 or 2");
    case GW_OPT_FA_EXACT_WAVE:
      return set_int(o.fa_exact_wave, value, value == 0 || value == 1, "FA exact wave", "0 or 1");
    default: return fail(GW_ERR_INVALID, "unknown option %d", key);
  }
}

gw_status gw_get_option(int32_t key, int64_t* value) {
  std::lock_guard<std::mutex> lock(g_mutex);
  switch (key) {
    case GW_OPT_CUDA_GRAPHS: *value = g_options.cuda_graphs; return GW_OK;
    case GW_OPT_UPDATE_LIMIT: *value = g_options.update_limit; return GW_OK;
    case GW_OPT_BLAS: *value = g_options.blas; return GW_OK;
    case GW_OPT_BLAS_LOADED: {
      *value = 0;
      for (Device* d : g_devices) if (d && d->blas) *value = 1;
      return GW_OK;
    }
    case GW_OPT_CAPTURE_FIRST_RUN: *value = g_options.capture_first_run; return GW_OK;
    case GW_OPT_MATVEC_MAX_COLS: *value = g_options.matvec_max_cols; return GW_OK;
    case GW_OPT_MATVEC_ROWS: *value = g_options.matvec_rows; return GW_OK;
    case GW_OPT_FA_BLOCKS_PER_SM: *value = g_options.fa_blocks_per_sm; return GW_OK;
    case GW_OPT_MATVEC_WARPS: *value = g_options.matvec_warps; return GW_OK;
    case GW_OPT_COPY_BLOCKS_PER_SM: *value = g_options.copy_blocks_per_sm; return GW_OK;
    case GW_OPT_COPY_ORDER: *value = g_options.copy_order; return GW_OK;
    case GW_OPT_MATVEC_UNROLL: *value = g_options.matvec_unroll; return GW_OK;
    case GW_OPT_MATVEC_MMA_COLS: *value = g_options.matvec_mma_cols; return GW_OK;
    case GW_OPT_COPY_ROWS: *value = g_options.copy_rows; return GW_OK;
    case GW_OPT_FA_KERNEL: *value = g_options.fa_kernel; return GW_OK;
    case GW_OPT_PDL: *value = g_options.pdl; return GW_OK;
    case GW_OPT_FA_MERGE: *value = g_options.fa_merge; return GW_OK;
    case GW_OPT_FA_EXACT_WAVE: *value = g_options.fa_exact_wave; return GW_OK;
    default: return fail(GW_ERR_INVALID, "unknown option %d", key);
  }
}

gw_status gw_device_count(int32_t* count) {
  std::lock_guard<std::mutex> lock(g_mutex);
  *count = 0;
  gw_status st = enumerate();
  if (st != GW_OK) return st;
  *count = g_count;
  return GW_OK;
}

gw_status gw_device_get_info(int32_t dev, gw_device_info* info) {
  std::lock_guard<std::mutex> lock(g_mutex);
  gw_status st;
  Device* d = get_device(dev, &st);
  if (!d) return st;
  memset(info, 0, sizeof *info);
  snprintf(info->name, sizeof info->name, "%s", d->name.c_str());
  size_t free_b = 0, total_b = 0;
  GW_TRY_CUDA(cudaMemGetInfo(&free_b, &total_b));
  info->free_memory = free_b;
  info->total_memory = total_b;
  info->cc_major = d->caps.cc / 10;
  info->cc_minor = d->caps.cc % 10;
  info->multiprocessors = d->caps.sms;
  info->vendor = GW_VENDOR;
  return GW_OK;
}

gw_status gw_device_memory(int32_t dev, uint64_t* free_bytes, uint64_t* total_bytes) {
  std::lock_guard<std::mutex> lock(g_mutex);
  gw_status st;
  Device* d = get_device(dev, &st);
  if (!d) return st;
  size_t f = 0, t = 0;
  GW_TRY_CUDA(cudaMemGetInfo(&f, &t));
  *free_bytes = f;
  *total_bytes = t;
  return GW_OK;
}

gw_status gw_alloc(int32_t dev, uint64_t size, uint64_t* ptr) {
  std::lock_guard<std::mutex> lock(g_mutex);
  *ptr = 0;
  gw_status st;
  Device* d = get_device(dev, &st);
  if (!d) return st;
  if (size > (1ull << 50)) return fail(GW_ERR_OUT_OF_MEMORY, "allocation of %llu bytes is too large", (unsigned long long)size);
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, size ? size : 1);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return fail(e == cudaErrorMemoryAllocation ? GW_ERR_OUT_OF_MEMORY : GW_ERR_DEVICE,
                "cudaMalloc(%llu): %s", (unsigned long long)size, cudaGetErrorString(e));
  }
  *ptr = (uint64_t)(uintptr_t)p;
  d->allocs[*ptr] = Allocation{size, ++g_generation};
  return GW_OK;
}

gw_status gw_free(int32_t dev, uint64_t ptr) {
  std::lock_guard<std::mutex> lock(g_mutex);
  gw_status st;
  Device* d = get_device(dev, &st);
  if (!d) return st;
  auto it = d->allocs.find(ptr);
  if (it == d->allocs.end()) return fail(GW_ERR_INVALID, "0x%llx is not an allocation of device %d", (unsigned long long)ptr, dev);
  d->allocs.erase(it);
  GW_TRY_CUDA(cudaStreamSynchronize(d->stream));
  GW_TRY_CUDA(cudaFree((void*)(uintptr_t)ptr));
  return GW_OK;
}

static gw_status check_range(Device* d, uint64_t ptr, uint64_t size, const char* what) {
  if (size == 0) return GW_OK;
  if (!find_allocation(d, ptr, size)) {
    return fail(GW_ERR_INVALID, "%s: [0x%llx, +%llu) is not inside one allocation of device %d", what,
                (unsigned long long)ptr, (unsigned long long)size, d->id);
  }
  return GW_OK;
}

gw_status gw_copy_to_device(int32_t dev, uint64_t dst, const void* src, uint64_t size) {
  std::lock_guard<std::mutex> lock(g_mutex);
  gw_status st;
  Device* d = get_device(dev, &st);
  if (!d) return st;
  if ((st = check_range(d, dst, size, "copy to device")) != GW_OK) return st;
  if (size == 0) return GW_OK;
  GW_TRY_CUDA(cudaMemcpyAsync((void*)(uintptr_t)dst, src, size, cudaMemcpyHostToDevice, d->stream));
  // The source is the caller's memory, which may move or be reused once we return.
  GW_TRY_CUDA(cudaStreamSynchronize(d->stream));
  return GW_OK;
}

gw_status gw_copy_to_host(int32_t dev, void* dst, uint64_t src, uint64_t size) {
  std::lock_guard<std::mutex> lock(g_mutex);
  gw_status st;
  Device* d = get_device(dev, &st);
  if (!d) return st;
  if ((st = check_range(d, src, size, "copy to host")) != GW_OK) return st;
  if (size == 0) return GW_OK;
  GW_TRY_CUDA(cudaMemcpyAsync(dst, (const void*)(uintptr_t)src, size, cudaMemcpyDeviceToHost, d->stream));
  GW_TRY_CUDA(cudaStreamSynchronize(d->stream));
  return GW_OK;
}

gw_status gw_copy_device(int32_t dev, uint64_t dst, uint64_t src, uint64_t size) {
  std::lock_guard<std::mutex> lock(g_mutex);
  gw_status st;
  Device* d = get_device(dev, &st);
  if (!d) return st;
  if ((st = check_range(d, src, size, "copy source")) != GW_OK) return st;
  if ((st = check_range(d, dst, size, "copy destination")) != GW_OK) return st;
  if (size == 0) return GW_OK;
  GW_TRY_CUDA(cudaMemcpyAsync((void*)(uintptr_t)dst, (const void*)(uintptr_t)src, size, cudaMemcpyDeviceToDevice, d->stream));
  return GW_OK;
}

gw_status gw_memset(int32_t dev, uint64_t dst, int32_t value, uint64_t size) {
  std::lock_guard<std::mutex> lock(g_mutex);
  gw_status st;
  Device* d = get_device(dev, &st);
  if (!d) return st;
  if ((st = check_range(d, dst, size, "memset")) != GW_OK) return st;
  if (size == 0) return GW_OK;
  GW_TRY_CUDA(cudaMemsetAsync((void*)(uintptr_t)dst, value & 0xff, size, d->stream));
  return GW_OK;
}

gw_status gw_synchronize(int32_t dev) {
  std::lock_guard<std::mutex> lock(g_mutex);
  gw_status st;
  Device* d = get_device(dev, &st);
  if (!d) return st;
  GW_TRY_CUDA(cudaStreamSynchronize(d->stream));
  return GW_OK;
}

} // extern "C"
