// The library's host-side state: devices (stream, capabilities, allocations), thread-local errors,
// options, and the checks that keep every kernel inside memory this library allocated.
#pragma once

#include "common.cuh"

#include <map>
#include <mutex>
#include <vector>

namespace gw {

/** Sets the calling thread's error message and returns `s`. */
gw_status fail(gw_status s, const char* fmt, ...);
/** Maps a runtime error onto a status with a message naming `what`. */
gw_status cuda_fail(cudaError_t e, const char* what);

#define GW_TRY_CUDA(call)                                                                             \
  do {                                                                                                \
    cudaError_t gw_e_ = (call);                                                                       \
    if (gw_e_ != cudaSuccess) return ::gw::cuda_fail(gw_e_, #call);                                   \
  } while (0)

struct Allocation {
  uint64_t size;
  uint64_t generation; // unique per allocation, so a freed-and-reused address is told apart
};

struct Device {
  int id = 0;
  bool ready = false;
  cudaStream_t stream = nullptr;
  DeviceCaps caps{};
  std::string name;
  std::map<uint64_t, Allocation> allocs; // base -> allocation
  Blas* blas = nullptr;                   // loaded lazily, null when absent or disabled
  bool blas_tried = false;
  unsigned* fa_counters = nullptr;        // FA_COUNTERS zeroed counters (FLASH_ATTN_EXT's merge in the split kernel)
};

/** Options set through gw_set_option. */
struct Options {
  bool cuda_graphs = true;
  int update_limit = 4;
  bool blas = true;
  bool capture_first_run = false;
  int matvec_max_cols = 8;
  int matvec_rows = 0; // 0: by type and column count (experiments set 1, 2, 4 or 8)
  int fa_blocks_per_sm = 0; // 0: 4 (split-KV blocks aimed at per SM for few queries)
  int matvec_warps = 0;     // warps per mat-vec block: 0 by type and columns (8 or 4); 4, 8 to compare
  int matvec_mma_cols = 0;  // fewest columns on the tensor-core mat-vec: 0 = 3; 9: never
  int matvec_unroll = 0;    // loads in flight: SIMT n > 4 at 4 rows 0/1 one vector per row, 2 two; n <= 2 at 1 row 2 or 4 (else 8), at 2 rows 2 (else 4);
                            // tensor-core mat-vec 0 = 4 chunks per warp, 2 or 8
  int copy_rows = 0;        // transposing copy's tile height: 0 = 64, 32
  int copy_blocks_per_sm = 0; // transposing copy's grid cap: 0 one tile per block; 1..100000 per SM
  int copy_order = 0;       // transposing copy: 0 consecutive tiles along dim 0, 1 along the swapped dim
  int pdl = 1;              // programmatic dependent launch on sm_90+: 0 none, 1 where measured faster, 2 every kernel
  int fa_exact_wave = 0;    // FLASH_ATTN_EXT: 1 slices of any length (the wave filled exactly), 0 whole 32-key tiles
  int fa_merge = 0;         // FLASH_ATTN_EXT's merge of slices: 0 plain launch, 1 programmatic dependent (with PDL on),
                            // 2 in the split kernel, by the last slice of each query to finish
  int fa_kernel = 0;        // FLASH_ATTN_EXT: 0 8 lanes per key row, 1 the same with V loaded early, 2 a lane per row
};
extern Options g_options;
extern uint64_t g_options_generation; // counts option changes; plans re-check their nodes after one
extern std::mutex g_mutex; // guards devices and allocation maps

/** The device `id`, initialised on first use (sets the current device); null with an error set. */
Device* get_device(int32_t id, gw_status* st);

/**
 * The allocation holding [ptr, ptr + size): its base, or 0 with an error set. size 0 asks only that
 * ptr lie inside (or at the end of) an allocation.
 */
uint64_t find_allocation(Device* d, uint64_t ptr, uint64_t size);

/** The BLAS of `d` when it is loaded and enabled, else null. */
Blas* device_blas(Device* d);

/**
 * Converts and validates a descriptor into a Node: op, types and every shape relation its kernel
 * relies on; with `memory`, also that each tensor's whole extent lies inside one allocation.
 */
gw_status make_node(Device* d, const gw_node& raw, Node& out, const OpDef** def, CheckCtx& c, bool memory);

/** The allocations a node's tensors live in (base, generation), appended to `out`. */
void node_allocations(Device* d, const Node& n, std::vector<std::pair<uint64_t, uint64_t>>& out);

/** Allocations still present with the same generation? */
bool allocations_alive(Device* d, const std::vector<std::pair<uint64_t, uint64_t>>& used);

/** Launches one node. */
void run_node(const Node& n, const OpDef* def, RunCtx& r);

/** Ops that compute nothing (views). */
inline bool is_view_op(int32_t op) {
  return op == OP_NONE || op == OP_RESHAPE || op == OP_VIEW || op == OP_PERMUTE || op == OP_TRANSPOSE;
}

/** Registers every op family once. */
void register_all_ops();

} // namespace gw
