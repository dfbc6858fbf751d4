/*
 * graphwire native device library: the C ABI that backends/cuda binds with Deno.dlopen.
 *
 * One library per vendor is built from the same sources: libgraphwire_cuda (nvcc) and
 * libgraphwire_hip (hipcc). Every function returns a gw_status; on failure gw_last_error() holds a
 * message for the calling thread. Nothing throws across this boundary.
 *
 * A whole graph travels in one call as an array of gw_node descriptors (op, op_params, the
 * destination and up to GW_MAX_SRC sources with types, shapes, byte strides and device pointers), so
 * a token costs one FFI call, not one per node.
 *
 * Memory safety: every device pointer a descriptor names must lie, with its whole extent
 * (sum over dims of (ne[i]-1)*nb[i] plus one element), inside one allocation made by gw_alloc on that
 * device; gw_plan_create, gw_plan_update and gw_graph_compute check this and every shape relation
 * the kernels rely on, and kernels bounds-check data-dependent indices (GET_ROWS, SET_ROWS,
 * MUL_MAT_ID, ADD_ID).
 */
#ifndef GRAPHWIRE_H
#define GRAPHWIRE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define GW_API __declspec(dllexport)
#else
#define GW_API __attribute__((visibility("default")))
#endif

/** Version of this ABI; bumped on any incompatible change of a struct or a signature. */
#define GW_ABI_VERSION 1
/** Sources per node a descriptor carries (ggml has 10; no supported op uses more than 5). */
#define GW_MAX_SRC 6
/** op_params words per node (ggml's 64 bytes). */
#define GW_MAX_OP_PARAMS 16

typedef enum gw_status {
  GW_OK = 0,
  GW_ERR_INVALID = 1,     /* a bad argument: unknown device, a range outside an allocation, bad shapes */
  GW_ERR_UNSUPPORTED = 2, /* an op, type or layout this library does not run */
  GW_ERR_OUT_OF_MEMORY = 3,
  GW_ERR_DEVICE = 4,      /* the driver or runtime reported an error */
  GW_ERR_NO_DEVICE = 5,   /* no usable GPU or driver */
  GW_ERR_STRUCTURE = 6,   /* gw_plan_update: the new graph does not have the plan's structure */
  GW_ERR_INTERNAL = 7
} gw_status;

/** One tensor of a node. type < 0 marks an absent source. */
typedef struct gw_tensor {
  uint64_t data;  /* device pointer of element (0,0,0,0) */
  int64_t ne[4];  /* elements per dimension, dim 0 innermost */
  int64_t nb[4];  /* byte strides */
  int32_t type;   /* enum ggml_type: 0 f32, 1 f16, 26 i32, 27 i64, 30 bf16 */
  int32_t reserved;
} gw_tensor; /* 80 bytes */

/** One node: ggml op number, its op_params words, the destination and the sources. */
typedef struct gw_node {
  int32_t op;
  int32_t reserved;
  int32_t op_params[GW_MAX_OP_PARAMS];
  gw_tensor dst;
  gw_tensor src[GW_MAX_SRC];
} gw_node; /* 632 bytes */

typedef struct gw_device_info {
  char name[256];
  uint64_t total_memory;
  uint64_t free_memory;
  int32_t cc_major; /* compute capability (CUDA) or gfx major (HIP) */
  int32_t cc_minor;
  int32_t multiprocessors;
  int32_t vendor; /* 0 NVIDIA (CUDA), 1 AMD (HIP) */
  int64_t reserved[4];
} gw_device_info;

/** How a plan ran so far (for tests and benchmarks). */
typedef struct gw_plan_stats {
  int32_t mode;             /* 0 plain launches, 1 CUDA graph */
  int32_t updates_in_a_row; /* updates since the last replay of an unchanged graph */
  int64_t runs;             /* gw_plan_compute calls */
  int64_t plain_runs;       /* runs that launched kernels one by one */
  int64_t graph_launches;   /* runs that launched a captured graph */
  int64_t captures;         /* graphs captured */
  int64_t instantiations;   /* executable graphs created from scratch */
  int64_t exec_updates;     /* executable graphs updated in place */
  uint64_t scratch_bytes;   /* device scratch the plan holds */
  int32_t nodes;            /* nodes in the plan */
  int32_t launches;         /* kernels (and library calls) one run issues */
} gw_plan_stats;

/** Options (gw_set_option / gw_get_option). */
typedef enum gw_option {
  GW_OPT_CUDA_GRAPHS = 0,       /* 1 (default): plans may capture CUDA graphs; 0: always plain launches */
  GW_OPT_UPDATE_LIMIT = 1,      /* updates in a row after which a plan stops capturing (default 4) */
  GW_OPT_BLAS = 2,              /* 1 (default): use cuBLAS/hipBLAS when loaded; 0: own kernels only */
  GW_OPT_BLAS_LOADED = 3,       /* read-only: 1 when the BLAS library was found and loaded */
  GW_OPT_CAPTURE_FIRST_RUN = 4, /* 1: capture on a plan's first run; 0 (default): on its first replay */
  GW_OPT_MATVEC_MAX_COLS = 5,   /* largest column count (n) served by the mat-vec kernels (default 8) */
  GW_OPT_MATVEC_ROWS = 6,       /* rows per mat-vec block: 0 (default) by type and column count; 1, 2, 4, 8 */
  GW_OPT_FA_BLOCKS_PER_SM = 7,  /* FLASH_ATTN_EXT split-KV blocks aimed at per SM: 0 (default) = 4; 1..64 */
  GW_OPT_MATVEC_WARPS = 8,      /* warps per mat-vec block: 0 (default) by type and columns; 4, 8 */
  GW_OPT_COPY_BLOCKS_PER_SM = 9, /* transposing copy's grid cap in blocks per SM: 0 (default) one tile per block; 1..100000 */
  GW_OPT_COPY_ORDER = 10,       /* transposing copy's tile order: 0 (default) along dim 0; 1 along the swapped dim */
  GW_OPT_MATVEC_UNROLL = 11,    /* mat-vec loads in flight, 0 (default): SIMT n > 4 at 4 rows 2; n <= 2 at 1 row 2/4, 2 rows 2; tensor cores 2 or 8 */
  GW_OPT_MATVEC_MMA_COLS = 12,  /* fewest columns (2..9) of the tensor-core mat-vec for f16/bf16 weights, 0 (default) = 3; 9: never */
  GW_OPT_COPY_ROWS = 13,        /* transposing copy's tile height: 0 (default) = 64, 32 */
  GW_OPT_FA_KERNEL = 14,        /* FLASH_ATTN_EXT, head sizes 64/128/256: 0 (default) 8 lanes per key row; 1 the same,
                                   V loaded with K; 2 a lane per key row (the kernel of other head sizes) */
  GW_OPT_PDL = 15,              /* on sm_90+ a kernel may start while the previous one finishes (programmatic
                                   dependent launch, also inside CUDA graphs): 1 (default) the mat-vec kernels of
                                   n <= 2, where it was measured faster; 2 every kernel; 0 none */
  GW_OPT_FA_MERGE = 16,         /* FLASH_ATTN_EXT's merge of key slices: 0 (default) a plain launch; 1 a programmatic
                                   dependent of the split kernel (when GW_OPT_PDL is not 0); 2 no merge kernel: the
                                   last slice of each query to finish merges them */
  GW_OPT_FA_EXACT_WAVE = 17     /* FLASH_ATTN_EXT's key slices: 0 (default) whole 32-key tiles; 1 any length, so the
                                   slice count aimed at (blocks per SM x SMs) is kept exactly */
} gw_option;

typedef struct gw_plan gw_plan;

GW_API uint32_t gw_abi_version(void);
/** "cuda" or "hip". */
GW_API const char* gw_backend_name(void);
/** The calling thread's message for its last failed call ("" if none). */
GW_API const char* gw_last_error(void);
/** The BLAS library in use (its path), or why none is ("" before the first device use). */
GW_API const char* gw_blas_info(void);

GW_API gw_status gw_set_option(int32_t key, int64_t value);
GW_API gw_status gw_get_option(int32_t key, int64_t* value);

GW_API gw_status gw_device_count(int32_t* count);
GW_API gw_status gw_device_get_info(int32_t dev, gw_device_info* info);
GW_API gw_status gw_device_memory(int32_t dev, uint64_t* free_bytes, uint64_t* total_bytes);

/** Allocates `size` bytes (at least 256-byte aligned) on `dev`; size 0 allocates 1 byte. */
GW_API gw_status gw_alloc(int32_t dev, uint64_t size, uint64_t* ptr);
/** Frees an allocation by its base pointer; waits for work on `dev` first. */
GW_API gw_status gw_free(int32_t dev, uint64_t ptr);
/** Host to device; returns once `src` may be reused. */
GW_API gw_status gw_copy_to_device(int32_t dev, uint64_t dst, const void* src, uint64_t size);
/** Device to host; waits for queued work first. */
GW_API gw_status gw_copy_to_host(int32_t dev, void* dst, uint64_t src, uint64_t size);
/** Device to device, queued after earlier work. */
GW_API gw_status gw_copy_device(int32_t dev, uint64_t dst, uint64_t src, uint64_t size);
GW_API gw_status gw_memset(int32_t dev, uint64_t dst, int32_t value, uint64_t size);
GW_API gw_status gw_synchronize(int32_t dev);

/**
 * GW_OK when `node`'s op, types and shapes run on `dev`; otherwise GW_ERR_UNSUPPORTED or
 * GW_ERR_INVALID and a message. Data pointers are not looked at (the node may have no memory yet);
 * gw_plan_create and gw_graph_compute check them. dev = -1 asks without a GPU (a generic sm_80
 * device), so validation can be tested on machines that have none.
 */
GW_API gw_status gw_node_supported(int32_t dev, const gw_node* node);
/** Validates and runs a graph once with plain launches. */
GW_API gw_status gw_graph_compute(int32_t dev, const gw_node* nodes, int32_t n_nodes);

/** Validates a graph and prepares it (scratch, launch parameters) for repeated runs. */
GW_API gw_status gw_plan_create(int32_t dev, const gw_node* nodes, int32_t n_nodes, gw_plan** plan);
/**
 * Re-targets a plan at a graph of the same structure (same node count and ops; shapes, op_params and
 * pointers may differ). GW_ERR_STRUCTURE leaves the plan as it was.
 */
GW_API gw_status gw_plan_update(gw_plan* plan, const gw_node* nodes, int32_t n_nodes);
/** Queues one run of the plan (one graph launch when captured). */
GW_API gw_status gw_plan_compute(gw_plan* plan);
GW_API gw_status gw_plan_get_stats(const gw_plan* plan, gw_plan_stats* stats);
/** Times `iters` runs of the plan between two device events, after one warm-up run: ms per run. */
GW_API gw_status gw_plan_time(gw_plan* plan, int32_t iters, double* ms_per_run);
GW_API void gw_plan_free(gw_plan* plan);

#ifdef __cplusplus
}
#endif

#endif /* GRAPHWIRE_H */
