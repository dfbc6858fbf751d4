#!/usr/bin/env bash
# What one call on the GPU host runs (device tool, repository root as working directory):
#   bash native/scripts/h100.sh STAGE...
# Stages: info, test (cuda_test.ts), check (every kernel case, one line each), bench (anchors, the
# 1000-node graph, GRAPH_RECOMPUTE round trip), ggmlperf (ggml-cuda's test-backend-ops perf on the
# same shapes, from .gpu/ggml-cuda), replay (../shared/traces from .gpu/traces.tar.xz against
# -d cuda:0), conformance (ggml's test-backend-ops against `rpc-server -d cuda:0`).
# Carried: .gpu (Deno, the library built here into .gpu/native, ggml binaries). Outputs go to $OUT.
set -u
source .gpu/enter.sh
export GRAPHWIRE_NATIVE_LIB=$PWD/.gpu/native/libgraphwire_cuda.so
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
PORT=51210

for stage in "$@"; do
  echo "=== $stage $(date +%T)"
  case $stage in
    info)
      nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$OUT/info.txt"
      ls -d /opt/*/.venv/lib/python3*/site-packages/nvidia/cublas/lib 2>/dev/null | tee -a "$OUT/info.txt"
      deno --version | head -1 | tee -a "$OUT/info.txt"
      ;;
    test)
      deno test -A --no-check backends/cuda/cuda_test.ts 2>&1 | tee "$OUT/cuda_test.log" | grep -E "FAILED|failed|ok \||passed|error|Error" | tail -40
      ;;
    check)
      deno run -A --no-check backends/cuda/check.ts 2>&1 | tee "$OUT/check.log" | grep -v "^ok " | tail -60
      ;;
    bench)
      deno run -A --no-check backends/cuda/bench.ts --json "$OUT/bench.json" 2>&1 | tee "$OUT/bench.log"
      ;;
    ncu)
      # one profile per kernel of interest: throughput, memory, occupancy, stall reasons
      NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
      for spec in "k_fa_split:FLASH" "k_transpose:CPY" "k_matvec:f16 4096x14336 n=8" "k_matvec:f16 4096x14336 n=1"; do
        k=${spec%%:*}; only=${spec#*:}
        echo "--- $k ($only)"
        $NCU --target-processes all -k regex:$k -c 1 --section SpeedOfLight --section MemoryWorkloadAnalysis \
          --section Occupancy --section WarpStateStats --section LaunchStats \
          deno run -A --no-check backends/cuda/bench.ts --only "$only" > "$OUT/ncu_${k}_${only//[^a-z0-9]/_}.txt" 2>&1
        grep -E "Duration|Memory Throughput|DRAM Throughput|Achieved Occupancy|Registers Per|Stall|Compute \(SM\)" \
          "$OUT/ncu_${k}_${only//[^a-z0-9]/_}.txt" | head -14
      done
      ;;
    ggmlperf)
      if [ -x .gpu/ggml-cuda/test-backend-ops ]; then
        CUBLAS_DIR=$(ls -d /opt/*/.venv/lib/python3*/site-packages/nvidia/cublas/lib 2>/dev/null | head -1)
        export LD_LIBRARY_PATH=$PWD/.gpu/ggml-cuda:$CUBLAS_DIR:${LD_LIBRARY_PATH:-}
        T=.gpu/ggml-cuda/test-backend-ops
        {
          $T perf -b CUDA0 -o MUL_MAT -p "type_a=(f16|bf16|f32),type_b=f32,m=4096,n=(1|8|512),k=14336,bs=\[1,1\]"
          $T perf -b CUDA0 -o SOFT_MAX -p "ne=\[4096,4096,5,1\]"
          $T perf -b CUDA0 -o FLASH_ATTN_EXT -p "hsk=128,hsv=128,nh=8,nr23=\[1,1\],kv=16384,nb=1,.*type_KV=f16"
          $T perf -b CUDA0 -o CPY -p "type_src=f32,type_dst=f32,ne=\[786432,256,1,1\],permute_src=\[1,0,2,3\]"
          $T perf -b CUDA0 -o SWIGLU -p "type=f32,ne_a=\[34816,512,1,1\]"
        } 2>&1 | tee "$OUT/ggml_perf.log" | grep -E "us/run|Backend|error" | head -40
      else
        echo "no ggml-cuda build carried"
      fi
      ;;
    replay)
      mkdir -p ../shared/traces && tar xJf .gpu/traces.tar.xz -C ../shared/traces
      deno test -A --no-check tests/replay_test.ts 2>&1 | tee "$OUT/replay.log" | grep -E "cuda|recordings|passed|failed" | tail -20
      ;;
    conformance)
      deno run -A --no-check cli/main.ts rpc-server -d cuda:0 -p $PORT > "$OUT/server.log" 2>&1 &
      SRV=$!
      sleep 5
      # ggml's CPU-only build (its CPU backend is the reference test-backend-ops compares with)
      TBO=.gpu/ggml/test-backend-ops
      export LD_LIBRARY_PATH=$PWD/.gpu/ggml:${LD_LIBRARY_PATH:-}
      deno run -A --no-check backends/cuda/conformance.ts --tbo $TBO --server 127.0.0.1:$PORT \
        --json "$OUT/conformance.json" --jobs 6 ${CONF_OPS:+--ops $CONF_OPS} ${CONF_FILTER:+--filter "$CONF_FILTER"} \
        2>&1 | tee "$OUT/conformance.log" | tail -80
      kill $SRV
      ;;
  esac
done
echo "=== done $(date +%T)"
