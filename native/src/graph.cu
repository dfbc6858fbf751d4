// Graphs and plans: validation of every node, plain launches, and CUDA-graph capture, replay and
// in-place update with ggml's heuristic (stop capturing after several updates in a row; start again
// once a graph is replayed unchanged).
#include "runtime.h"
#include "blas.h"

#include <cstring>
#include <vector>

namespace gw {

// ---------------------------------------------------------------------------------------------
// op table

static std::vector<OpDef> g_ops;

void add_ops(const OpDef* defs, int count) {
  for (int i = 0; i < count; i++) g_ops.push_back(defs[i]);
}

const OpDef* find_op(int32_t op, int32_t sub) {
  for (const OpDef& d : g_ops) {
    if (d.op == op && (d.sub < 0 || d.sub == sub)) return &d;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// validation helpers

bool same_shape(const Tensor& a, const Tensor& b) {
  return a.ne[0] == b.ne[0] && a.ne[1] == b.ne[1] && a.ne[2] == b.ne[2] && a.ne[3] == b.ne[3];
}

bool can_repeat(const Tensor& s, const Tensor& b) {
  for (int i = 0; i < 4; i++) {
    if (s.ne[i] <= 0 || b.ne[i] % s.ne[i] != 0) return false;
  }
  return true;
}

bool is_contiguous(const Tensor& t) {
  int64_t next = type_size(t.type);
  for (int i = 0; i < 4; i++) {
    if (t.ne[i] != 1 && t.nb[i] != next) return false;
    next *= t.ne[i];
  }
  return true;
}

bool is_contiguous_rows(const Tensor& t) { return t.ne[0] == 1 || t.nb[0] == type_size(t.type); }

bool rows_contiguous_1(const Tensor& t) {
  int64_t next = type_size(t.type);
  if (t.ne[0] != 1 && t.nb[0] != next) return false;
  next = t.ne[1] * t.nb[1];
  for (int i = 2; i < 4; i++) {
    if (t.ne[i] != 1 && t.nb[i] != next) return false;
    next *= t.ne[i];
  }
  return true;
}

bool types_in(int32_t t, std::initializer_list<int32_t> ts) {
  for (int32_t x : ts) if (x == t) return true;
  return false;
}

bool require_src(const Node& n, CheckCtx& c, int count) {
  for (int i = 0; i < count; i++) {
    if (!n.has[i]) return c.fail("src[%d] is missing", i);
  }
  return true;
}

static Tensor to_tensor(const gw_tensor& t) {
  Tensor r;
  r.data = (char*)(uintptr_t)t.data;
  for (int i = 0; i < 4; i++) {
    r.ne[i] = t.ne[i];
    r.nb[i] = t.nb[i];
  }
  r.type = t.type;
  return r;
}

// Every tensor a kernel may touch: sane sizes, and its whole extent inside one allocation.
static gw_status check_tensor(Device* d, const Tensor& t, const char* what, uint64_t* base, bool memory) {
  *base = 0;
  const int es = type_size(t.type);
  if (es == 0) return fail(GW_ERR_UNSUPPORTED, "%s has type %s (%d), which this device does not run", what, type_name(t.type), t.type);
  for (int i = 0; i < 4; i++) {
    if (t.ne[i] < 0 || t.ne[i] > 0xffffffffll) return fail(GW_ERR_INVALID, "%s: ne[%d] = %lld is out of range", what, i, (long long)t.ne[i]);
    if (t.nb[i] < 0 || t.nb[i] > (1ll << 48)) return fail(GW_ERR_INVALID, "%s: nb[%d] = %lld is out of range", what, i, (long long)t.nb[i]);
  }
  unsigned __int128 n = 1;
  for (int i = 0; i < 4; i++) n *= (unsigned __int128)t.ne[i];
  if (n == 0) return GW_OK;
  if (n > ((unsigned __int128)1 << 62)) return fail(GW_ERR_INVALID, "%s has too many elements", what);
  unsigned __int128 extent = (unsigned __int128)es;
  for (int i = 0; i < 4; i++) extent += (unsigned __int128)(t.ne[i] - 1) * (unsigned __int128)t.nb[i];
  if (extent > ((unsigned __int128)1 << 60)) return fail(GW_ERR_INVALID, "%s spans too many bytes", what);
  if (!memory) return GW_OK;
  const uint64_t p = (uint64_t)(uintptr_t)t.data;
  *base = find_allocation(d, p, (uint64_t)extent);
  if (!*base) {
    return fail(GW_ERR_INVALID, "%s: [0x%llx, +%llu) lies outside this device's allocations", what,
                (unsigned long long)p, (unsigned long long)extent);
  }
  return GW_OK;
}

static const char* src_name(int i) {
  static const char* names[GW_MAX_SRC] = {"src[0]", "src[1]", "src[2]", "src[3]", "src[4]", "src[5]"};
  return names[i];
}

gw_status make_node(Device* d, const gw_node& raw, Node& n, const OpDef** def, CheckCtx& c, bool memory) {
  *def = nullptr;
  n.op = raw.op;
  n.params = raw.op_params;
  n.dst = to_tensor(raw.dst);
  for (int i = 0; i < GW_MAX_SRC; i++) {
    n.has[i] = raw.src[i].type >= 0;
    n.src[i] = to_tensor(raw.src[i]);
  }
  if (raw.op < 0 || raw.op >= OP_COUNT) return fail(GW_ERR_INVALID, "op %d is not a ggml op", raw.op);
  if (is_view_op(raw.op)) return GW_OK; // no kernel, no memory access
  const int32_t sub = (raw.op == OP_UNARY || raw.op == OP_GLU) ? raw.op_params[0] : -1;
  const OpDef* od = find_op(raw.op, sub);
  if (!od) {
    if (sub >= 0) return fail(GW_ERR_UNSUPPORTED, "op %d sub-op %d is not supported", raw.op, sub);
    return fail(GW_ERR_UNSUPPORTED, "op %d is not supported", raw.op);
  }
  uint64_t base;
  gw_status st = check_tensor(d, n.dst, "dst", &base, memory);
  if (st != GW_OK) return st;
  const bool empty = n.dst.nelements() == 0;
  n.skip = empty;
  for (int i = 0; i < GW_MAX_SRC; i++) {
    if (!n.has[i]) continue;
    if ((st = check_tensor(d, n.src[i], src_name(i), &base, memory)) != GW_OK) return st;
    if (!empty && n.src[i].nelements() == 0) {
      // An empty source is fine only where it means "nothing to do": writing zero rows. Anywhere
      // else it is refused, which also keeps zero dimensions out of every check below.
      if (raw.op == OP_SET_ROWS) n.skip = true;
      else if (raw.op != OP_CONCAT) return fail(GW_ERR_UNSUPPORTED, "%s: %s is empty", od->name, src_name(i));
    }
  }
  if (!n.skip) {
    c.why.clear();
    if (!od->check(n, c)) return fail(GW_ERR_UNSUPPORTED, "%s: %s", od->name, c.why.c_str());
  }
  *def = od;
  return GW_OK;
}

void node_allocations(Device* d, const Node& n, std::vector<std::pair<uint64_t, uint64_t>>& out) {
  auto add = [&](const Tensor& t) {
    if (t.nelements() == 0) return;
    uint64_t b = find_allocation(d, (uint64_t)(uintptr_t)t.data, 0);
    if (!b) return;
    for (auto& u : out) if (u.first == b) return;
    out.push_back({b, d->allocs[b].generation});
  };
  add(n.dst);
  for (int i = 0; i < GW_MAX_SRC; i++) if (n.has[i]) add(n.src[i]);
}

void run_node(const Node& n, const OpDef* def, RunCtx& r) {
  if (!def || n.skip || n.dst.nelements() == 0) return;
  def->run(n, r);
}

} // namespace gw

using namespace gw;

// ---------------------------------------------------------------------------------------------
// plans

struct gw_plan {
  int32_t dev = 0;
  std::vector<gw_node> raw;
  std::vector<Node> nodes;
  std::vector<const OpDef*> defs;
  std::vector<std::pair<uint64_t, uint64_t>> allocs;
  char* scratch = nullptr;
  size_t scratch_size = 0;
  cudaGraphExec_t exec = nullptr;
  bool exec_stale = true;        // the executable graph does not match the current nodes
  bool updated_since_run = false;
  int updates_in_a_row = 0;
  uint64_t options_generation = 0; // g_options_generation when the nodes were last checked
  gw_plan_stats stats{};
};

namespace {

struct Prepared {
  std::vector<gw_node> raw;
  std::vector<Node> nodes;
  std::vector<const OpDef*> defs;
  std::vector<std::pair<uint64_t, uint64_t>> allocs;
  size_t scratch = 0;
};

gw_status prepare(Device* d, const gw_node* nodes, int32_t n_nodes, Prepared& p) {
  if (n_nodes < 0 || (n_nodes > 0 && !nodes)) return fail(GW_ERR_INVALID, "bad node array");
  p.raw.assign(nodes, nodes + n_nodes);
  p.nodes.resize(n_nodes);
  p.defs.resize(n_nodes);
  CheckCtx c;
  c.caps = &d->caps;
  c.blas = device_blas(d) != nullptr;
  for (int32_t i = 0; i < n_nodes; i++) {
    c.scratch = 0;
    gw_status st = make_node(d, p.raw[i], p.nodes[i], &p.defs[i], c, true);
    if (st != GW_OK) {
      std::string m = gw_last_error();
      return fail(st, "node %d: %s", i, m.c_str());
    }
    if (c.scratch > p.scratch) p.scratch = c.scratch;
    node_allocations(d, p.nodes[i], p.allocs);
  }
  // params point into raw: rebind after the copy above settled
  for (int32_t i = 0; i < n_nodes; i++) p.nodes[i].params = p.raw[i].op_params;
  return GW_OK;
}

gw_status launch_all(Device* d, gw_plan* p, int* launches) {
  RunCtx r;
  r.stream = d->stream;
  r.scratch = p->scratch;
  r.scratch_size = p->scratch_size;
  r.caps = &d->caps;
  r.blas = device_blas(d);
  r.device = d->id;
  r.launches = 0;
  r.pdl = GW_HAVE_PDL && d->caps.cc >= 90 ? g_options.pdl : 0;
  r.fa_counters = d->fa_counters;
  for (size_t i = 0; i < p->nodes.size(); i++) {
    run_node(p->nodes[i], p->defs[i], r);
    cudaError_t e = cudaPeekAtLastError();
    if (e != cudaSuccess) {
      const OpDef* def = p->defs[i];
      return cuda_fail(e, def ? def->name : "node");
    }
  }
  if (r.blas && blas_failed(r.blas)) return fail(GW_ERR_DEVICE, "%s call failed: %s", GW_BLAS_NAME, blas_error(r.blas));
  *launches = r.launches;
  return GW_OK;
}

gw_status ensure_scratch(gw_plan* p, size_t need) {
  if (need <= p->scratch_size) return GW_OK;
  if (p->scratch) {
    (void)cudaFree(p->scratch);
    p->scratch = nullptr;
    p->scratch_size = 0;
  }
  need = (need + 255) & ~(size_t)255;
  void* s = nullptr;
  GW_TRY_CUDA(cudaMalloc(&s, need));
  p->scratch = (char*)s;
  p->scratch_size = need;
  p->exec_stale = true;
  return GW_OK;
}

void drop_exec(gw_plan* p) {
  if (p->exec) (void)cudaGraphExecDestroy(p->exec);
  p->exec = nullptr;
  p->exec_stale = true;
}

gw_status capture(Device* d, gw_plan* p) {
  cudaGraph_t graph = nullptr;
  GW_TRY_CUDA(cudaStreamBeginCapture(d->stream, cudaStreamCaptureModeRelaxed));
  int launches = 0;
  gw_status st = launch_all(d, p, &launches);
  cudaError_t e = cudaStreamEndCapture(d->stream, &graph);
  if (st != GW_OK) {
    if (graph) (void)cudaGraphDestroy(graph);
    return st;
  }
  if (e != cudaSuccess) return cuda_fail(e, "cudaStreamEndCapture");
  p->stats.captures++;
  p->stats.launches = launches;
  bool updated = false;
  if (p->exec) {
#if defined(GW_HIP)
    hipGraphNode_t err_node = nullptr;
    hipGraphExecUpdateResult res;
    updated = hipGraphExecUpdate(p->exec, graph, &err_node, &res) == hipSuccess;
#else
    cudaGraphExecUpdateResultInfo info;
    updated = cudaGraphExecUpdate(p->exec, graph, &info) == cudaSuccess;
#endif
    if (updated) {
      p->stats.exec_updates++;
    } else {
      (void)cudaGetLastError();
      (void)cudaGraphExecDestroy(p->exec);
      p->exec = nullptr;
    }
  }
  if (!updated) {
    e = cudaGraphInstantiate(&p->exec, graph, 0);
    if (e != cudaSuccess) {
      (void)cudaGraphDestroy(graph);
      p->exec = nullptr;
      return cuda_fail(e, "cudaGraphInstantiate");
    }
    p->stats.instantiations++;
  }
  (void)cudaGraphDestroy(graph);
  p->exec_stale = false;
  return GW_OK;
}

bool same_structure(const gw_plan* p, const Prepared& q) {
  if (p->nodes.size() != q.nodes.size()) return false;
  for (size_t i = 0; i < q.nodes.size(); i++) {
    const gw_node& a = p->raw[i];
    const gw_node& b = q.raw[i];
    if (a.op != b.op) return false;
    if ((a.op == OP_UNARY || a.op == OP_GLU) && a.op_params[0] != b.op_params[0]) return false;
    for (int s = 0; s < GW_MAX_SRC; s++) {
      if ((a.src[s].type >= 0) != (b.src[s].type >= 0)) return false;
    }
  }
  return true;
}

} // namespace

extern "C" {

gw_status gw_node_supported(int32_t dev, const gw_node* node) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!node) return fail(GW_ERR_INVALID, "null node");
  Node n;
  const OpDef* def;
  CheckCtx c;
  if (dev < 0) {
    // no device: the op table's answer for a generic sm_80+ GPU (tests without a GPU use this)
    static Device generic;
    generic.caps.cc = 80;
    generic.caps.sms = 100;
    generic.caps.smem_optin = 160 * 1024;
    register_all_ops();
    c.caps = &generic.caps;
    c.blas = false;
    return make_node(&generic, *node, n, &def, c, false);
  }
  gw_status st;
  Device* d = get_device(dev, &st);
  if (!d) return st;
  c.caps = &d->caps;
  c.blas = device_blas(d) != nullptr;
  return make_node(d, *node, n, &def, c, false);
}

gw_status gw_plan_create(int32_t dev, const gw_node* nodes, int32_t n_nodes, gw_plan** out) {
  std::lock_guard<std::mutex> lock(g_mutex);
  *out = nullptr;
  gw_status st;
  Device* d = get_device(dev, &st);
  if (!d) return st;
  Prepared q;
  if ((st = prepare(d, nodes, n_nodes, q)) != GW_OK) return st;
  gw_plan* p = new gw_plan();
  p->dev = dev;
  p->raw = std::move(q.raw);
  p->nodes = std::move(q.nodes);
  p->defs = std::move(q.defs);
  p->allocs = std::move(q.allocs);
  for (size_t i = 0; i < p->nodes.size(); i++) p->nodes[i].params = p->raw[i].op_params;
  if ((st = ensure_scratch(p, q.scratch)) != GW_OK) {
    delete p;
    return st;
  }
  p->stats.nodes = (int32_t)p->nodes.size();
  p->options_generation = g_options_generation;
  *out = p;
  return GW_OK;
}

gw_status gw_plan_update(gw_plan* p, const gw_node* nodes, int32_t n_nodes) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!p) return fail(GW_ERR_INVALID, "null plan");
  gw_status st;
  Device* d = get_device(p->dev, &st);
  if (!d) return st;
  Prepared q;
  if ((st = prepare(d, nodes, n_nodes, q)) != GW_OK) return st;
  if (!same_structure(p, q)) return fail(GW_ERR_STRUCTURE, "the graph's structure differs from the plan's");
  if ((st = ensure_scratch(p, q.scratch)) != GW_OK) return st;
  p->raw = std::move(q.raw);
  p->nodes = std::move(q.nodes);
  p->defs = std::move(q.defs);
  p->allocs = std::move(q.allocs);
  for (size_t i = 0; i < p->nodes.size(); i++) p->nodes[i].params = p->raw[i].op_params;
  p->exec_stale = true;
  p->updated_since_run = true;
  p->options_generation = g_options_generation;
  p->updates_in_a_row++;
  if (p->updates_in_a_row >= g_options.update_limit && p->exec) drop_exec(p);
  return GW_OK;
}

gw_status gw_plan_compute(gw_plan* p) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!p) return fail(GW_ERR_INVALID, "null plan");
  gw_status st;
  Device* d = get_device(p->dev, &st);
  if (!d) return st;
  if (!allocations_alive(d, p->allocs)) return fail(GW_ERR_INVALID, "a buffer this plan uses has been freed");
  if (p->options_generation != g_options_generation) {
    // options changed since the nodes were checked: the kernels chosen, and the scratch they need, may
    // differ (FLASH_ATTN_EXT's slices, MUL_MAT's path), so check again and capture afresh
    Prepared q;
    if ((st = prepare(d, p->raw.data(), (int32_t)p->raw.size(), q)) != GW_OK) return st;
    if ((st = ensure_scratch(p, q.scratch)) != GW_OK) return st;
    p->exec_stale = true;
    p->options_generation = g_options_generation;
  }
  if (!p->updated_since_run && p->stats.runs > 0) p->updates_in_a_row = 0; // replayed unchanged
  const bool graphs = g_options.cuda_graphs && p->updates_in_a_row < g_options.update_limit &&
                      (p->stats.runs > 0 || g_options.capture_first_run) && !p->nodes.empty();
  if (graphs) {
    if (!p->exec || p->exec_stale) {
      if ((st = capture(d, p)) != GW_OK) return st;
    }
    GW_TRY_CUDA(cudaGraphLaunch(p->exec, d->stream));
    p->stats.graph_launches++;
    p->stats.mode = 1;
  } else {
    int launches = 0;
    if ((st = launch_all(d, p, &launches)) != GW_OK) return st;
    p->stats.launches = launches;
    p->stats.plain_runs++;
    p->stats.mode = 0;
  }
  p->updated_since_run = false;
  p->stats.runs++;
  return GW_OK;
}

gw_status gw_plan_time(gw_plan* p, int32_t iters, double* ms_per_run) {
  if (!p || iters <= 0) return fail(GW_ERR_INVALID, "bad plan or iteration count");
  gw_status st = gw_plan_compute(p); // warm-up (and capture, where it applies)
  if (st != GW_OK) return st;
  Device* d;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    d = get_device(p->dev, &st);
  }
  if (!d) return st;
  cudaEvent_t e0, e1;
  GW_TRY_CUDA(cudaEventCreate(&e0));
  GW_TRY_CUDA(cudaEventCreate(&e1));
  GW_TRY_CUDA(cudaEventRecord(e0, d->stream));
  for (int32_t i = 0; i < iters && st == GW_OK; i++) st = gw_plan_compute(p);
  (void)cudaEventRecord(e1, d->stream);
  (void)cudaEventSynchronize(e1);
  float ms = 0;
  (void)cudaEventElapsedTime(&ms, e0, e1);
  (void)cudaEventDestroy(e0);
  (void)cudaEventDestroy(e1);
  *ms_per_run = ms / iters;
  return st;
}

gw_status gw_plan_get_stats(const gw_plan* p, gw_plan_stats* out) {
  if (!p) return fail(GW_ERR_INVALID, "null plan");
  *out = p->stats;
  out->updates_in_a_row = p->updates_in_a_row;
  out->scratch_bytes = p->scratch_size;
  return GW_OK;
}

void gw_plan_free(gw_plan* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  gw_status st;
  Device* d = get_device(p->dev, &st);
  if (d) (void)cudaStreamSynchronize(d->stream);
  if (p->exec) (void)cudaGraphExecDestroy(p->exec);
  if (p->scratch) (void)cudaFree(p->scratch);
  delete p;
}

gw_status gw_graph_compute(int32_t dev, const gw_node* nodes, int32_t n_nodes) {
  gw_plan* p = nullptr;
  gw_status st = gw_plan_create(dev, nodes, n_nodes, &p);
  if (st != GW_OK) return st;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    Device* d = get_device(dev, &st);
    if (d) {
      int launches = 0;
      st = launch_all(d, p, &launches);
    }
  }
  gw_plan_free(p); // waits for the work, since the scratch goes with the plan
  return st;
}

} // extern "C"

static_assert(sizeof(gw_tensor) == 80, "gw_tensor layout is part of the ABI");
static_assert(sizeof(gw_node) == 72 + 80 * (1 + GW_MAX_SRC), "gw_node layout is part of the ABI");
static_assert(sizeof(gw_device_info) == 256 + 16 + 16 + 32, "gw_device_info layout is part of the ABI");
