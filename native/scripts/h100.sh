#!/usr/bin/env bash
# What one call on the GPU host runs (device tool, repository root as working directory):
#   bash native/scripts/h100.sh STAGE...
# Stages: info, test (cuda_test.ts), check (every kernel case, one line each), bench (anchors, the
# 1000-node graph, GRAPH_RECOMPUTE round trip), ggmlprep (unpacks .gpu/ggml-cuda.tar.xz into
# /tmp/ggml-cuda, which outlives the call while the machine stays warm), ggmlperf (ggml-cuda's
# test-backend-ops perf on the same shapes), versus (each anchor in VS_ROUNDS alternating rounds,
# ggml-cuda's test-backend-ops then graphwire, median ratio; VS_ONLY narrows the anchors, VS_VARIANTS
# "FLASH:FA_MERGE=2;FLASH:FA_MERGE=2,FA_EXACT_WAVE=1" times option sets in the same rounds, on the
# anchors REGEX: matches), vsserver (llama-1b
# through ggml-cuda's own RPC server and through graphwire's on the same GPU, alternating), replay
# (../shared/traces from .gpu/traces.tar.xz against -d cuda:0 only), conformance (ggml's test-backend-ops against `rpc-server -d cuda:0`), models
# (issue 6: llama-1b pp512/tg128 locally, through one server and split over two; MODEL_REPS reps).
# WebGPU stages (issue 4/6; provider $WG_PROVIDER, default dawn): wgtest (backends/webgpu tests
# against the CPU reference), wgreplay (the 352 recordings on webgpu:0), wgconf (test-backend-ops
# against `rpc-server -d webgpu`), wgmodels (llama-1b pp512/tg128 locally, one server, two servers).
# unpack: extracts .gpu/*.tar.xz (native library, ggml CPU build, Dawn's npm package as a DENO_DIR)
# into .gpu/ first; compressed they fit one carry with Deno.
# Carried: .gpu (Deno, the library built here into .gpu/native, ggml binaries). A whole ggml-cuda
# build (38 MB compressed) and Deno (31 MB) do not fit one 64 MiB carry; linked without the quantized
# mmq instances (none runs in the perf shapes) it is 23 MB and the whole set fits (58 MB): one call
# runs `unpack ggmlprep ggmlperf test bench`. The recordings (traces.tar.xz, 13 MB) do not fit beside
# ggml-cuda's build: a replay/conformance call carries .gpu with traces.tar.xz in place of
# ggml-cuda.tar.xz (`unpack replay conformance`). Outputs go to $OUT.
set -u
for a in .gpu/*.tar.xz; do
  case "$*" in *unpack*) [ -f "$a" ] && [ "$a" != .gpu/ggml-cuda.tar.xz ] && [ "$a" != .gpu/traces.tar.xz ] && tar xJf "$a" -C .gpu ;; esac
done
source .gpu/enter.sh
export GRAPHWIRE_WEBGPU_PROVIDER=${WG_PROVIDER:-dawn}
export GRAPHWIRE_NATIVE_LIB=$PWD/.gpu/native/libgraphwire_cuda.so
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
PORT=51510

# ggml-cuda's test-backend-ops (ggmlprep unpacks it) with its libraries and cuBLAS on the library path
ggml_cuda_tbo() {
  GC=/tmp/ggml-cuda
  [ -x $GC/test-backend-ops ] || GC=.gpu/ggml-cuda
  [ -x $GC/test-backend-ops ] || return 1
  CUBLAS_DIR=$(dirname "$(find / -xdev -name 'libcublas.so.1*' 2>/dev/null | head -1)" 2>/dev/null)
  export LD_LIBRARY_PATH=$(cd $GC && pwd):$CUBLAS_DIR:${LD_LIBRARY_PATH:-}
  T=$(cd $GC && pwd)/test-backend-ops
}

for stage in "$@"; do
  echo "=== $stage $(date +%T)"
  case $stage in
    info)
      nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$OUT/info.txt"
      find / -xdev -name 'libcublas*.so*' 2>/dev/null | head -4 | tee -a "$OUT/info.txt"
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
      for spec in "k_fa_vec:FLASH" "k_fa_combine:FLASH" "k_matvec:f32 4096x14336 n=1"; do
        k=${spec%%:*}; only=${spec#*:}
        echo "--- $k ($only)"
        $NCU --target-processes all -k regex:$k -c 1 --section SpeedOfLight --section MemoryWorkloadAnalysis \
          --section Occupancy --section WarpStateStats --section LaunchStats \
          deno run -A --no-check backends/cuda/bench.ts --no-variants --only "$only" > "$OUT/ncu_${k}_${only//[^a-z0-9]/_}.txt" 2>&1
        grep -E "Duration|Memory Throughput|DRAM Throughput|Achieved Occupancy|Registers Per|Stall|Compute \(SM\)|Grid Size|Block Size" \
          "$OUT/ncu_${k}_${only//[^a-z0-9]/_}.txt" | head -16
      done
      # ggml-cuda's kernels on the same shape, when its build is unpacked (ggmlprep)
      if [ -x /tmp/ggml-cuda/test-backend-ops ]; then
        CUBLAS_DIR=$(dirname "$(find / -xdev -name 'libcublas.so.1*' 2>/dev/null | head -1)" 2>/dev/null)
        for k in flash_attn_ext_vec flash_attn_combine_results; do
          echo "--- ggml $k"
          LD_LIBRARY_PATH=/tmp/ggml-cuda:$CUBLAS_DIR:${LD_LIBRARY_PATH:-} $NCU -k regex:$k -c 1 --section SpeedOfLight \
            --section MemoryWorkloadAnalysis --section Occupancy --section WarpStateStats --section LaunchStats \
            /tmp/ggml-cuda/test-backend-ops perf -b CUDA0 -o FLASH_ATTN_EXT \
            -p "hsk=128,hsv=128,nh=8,nr23=\[1,1\],kv=16384,nb=1,.*type_K=f16,type_V=f16" > "$OUT/ncu_ggml_$k.txt" 2>&1
          grep -E "Duration|Memory Throughput|DRAM Throughput|Achieved Occupancy|Registers Per|Stall|Compute \(SM\)|Grid Size|Block Size" \
            "$OUT/ncu_ggml_$k.txt" | head -16
        done
      fi
      ;;
    ggmlprep)
      mkdir -p /tmp/ggml-cuda && tar xJf .gpu/ggml-cuda.tar.xz -C /tmp/ggml-cuda && ls /tmp/ggml-cuda
      ;;
    ggmlperf)
      if ggml_cuda_tbo; then
        {
          $T perf -b CUDA0 -o MUL_MAT -p "type_a=(f16|bf16|f32),type_b=f32,m=4096,n=(1|8|512),k=14336,bs=\[1,1\]"
          $T perf -b CUDA0 -o SOFT_MAX -p "ne=\[4096,4096,5,1\]"
          $T perf -b CUDA0 -o FLASH_ATTN_EXT -p "hsk=128,hsv=128,nh=8,nr23=\[1,1\],kv=16384,nb=1,.*type_K=f16,type_V=f16"
          $T perf -b CUDA0 -o CPY -p "type_src=f32,type_dst=f32,ne_src=\[786432,256,1,1\],permute_src=\[1,0,2,3\]"
          $T perf -b CUDA0 -o SWIGLU -p "type=f32,ne_a=\[34816,512,1,1\]"
        } 2>&1 | tee "$OUT/ggml_perf.log" | grep -E "us/run|Backend|error" | head -40
      else
        echo "no ggml-cuda build carried"
      fi
      ;;
    versus)
      if ggml_cuda_tbo; then
        VARIANTS=()
        IFS=';' read -ra VS <<< "${VS_VARIANTS:-}"
        for v in "${VS[@]}"; do VARIANTS+=(--variant "$v"); done
        deno run -A --no-check backends/cuda/bench.ts --vs-ggml "$T" --rounds ${VS_ROUNDS:-3} --only "${VS_ONLY:-.}" \
          "${VARIANTS[@]}" --json "$OUT/versus.json" 2>&1 | tee "$OUT/versus.log" | grep -v "round"
      else
        echo "no ggml-cuda build carried"
      fi
      ;;
    replay)
      mkdir -p ../shared/traces && tar xJf .gpu/traces.tar.xz -C ../shared/traces
      deno run -A --no-check backends/cuda/replay.ts -d cuda:0 --json "$OUT/replay.json" 2>&1 | tee "$OUT/replay.log" | tail -20
      ;;
    conformance)
      deno run -A --no-check cli/main.ts rpc-server -d cuda:0 -p $PORT > "$OUT/server.log" 2>&1 &
      SRV=$!
      sleep 5
      # ggml's CPU-only build (its CPU backend is the reference test-backend-ops compares with)
      TBO=.gpu/ggml/test-backend-ops
      export LD_LIBRARY_PATH=$PWD/.gpu/ggml:${LD_LIBRARY_PATH:-}
      deno run -A --no-check backends/cuda/conformance.ts --tbo $TBO --server 127.0.0.1:$PORT \
        --json "$OUT/conformance.json" --jobs 6 ${CONF_CHUNK_JOBS:+--chunk-jobs $CONF_CHUNK_JOBS} ${CONF_OPS:+--ops $CONF_OPS} ${CONF_FILTER:+--filter "$CONF_FILTER"} \
        2>&1 | tee "$OUT/conformance.log" | tail -80
      kill $SRV
      ;;
    unpack)
      ls .gpu
      ;;
    wgtest)
      deno test -A --no-check --unstable-webgpu backends/webgpu/ 2>&1 | tee "$OUT/wgtest.log" |
        grep -E "FAILED|failed|ok \||passed|skipped|rror" | tail -40
      ;;
    wgreplay)
      mkdir -p ../shared/traces && tar xJf .gpu/traces.tar.xz -C ../shared/traces
      deno run -A --no-check --unstable-webgpu backends/cuda/replay.ts -d webgpu:0 --json "$OUT/wgreplay.json" 2>&1 |
        tee "$OUT/wgreplay.log" | tail -20
      ;;
    wgconf)
      deno run -A --no-check --unstable-webgpu cli/main.ts rpc-server -d webgpu -p $PORT > "$OUT/wgserver.log" 2>&1 &
      SRV=$!
      sleep 5
      head -12 "$OUT/wgserver.log"
      export LD_LIBRARY_PATH=$PWD/.gpu/ggml:${LD_LIBRARY_PATH:-}
      deno run -A --no-check backends/cuda/conformance.ts --tbo .gpu/ggml/test-backend-ops --server 127.0.0.1:$PORT \
        --json "$OUT/wgconf.json" --jobs ${CONF_JOBS:-8} ${CONF_CHUNK_JOBS:+--chunk-jobs $CONF_CHUNK_JOBS} ${CONF_OPS:+--ops $CONF_OPS} \
        2>&1 | tee "$OUT/wgconf.log" | tail -40
      kill $SRV
      ;;
    wgmodels)
      for serve in "" "--serve" "--serve 2"; do
        echo "--- llama-1b -d webgpu ($GRAPHWIRE_WEBGPU_PROVIDER) $serve"
        deno run -A --no-check --unstable-webgpu cli/main.ts bench -m llama-1b -d webgpu -r ${MODEL_REPS:-2} $serve 2>&1 |
          tee -a "$OUT/wgmodels.log" | grep -E "^\||rror"
      done
      ;;
    vsserver)
      # graphwire's rpc-server against ggml's own (ggml-cuda d99724f2's RPC server on CUDA0, a scratch
      # main in the ggml-cuda build), same GPU, same client: llama-1b through each in alternating rounds
      if ggml_cuda_tbo; then
        "$(dirname "$T")/gw-ref-rpc-server" -d ${VS_GGML_DEVICE:-CUDA0} -p $((PORT + 1)) > "$OUT/ggml_server.log" 2>&1 &
        GSRV=$!
        deno run -A --no-check cli/main.ts rpc-server -d ${VS_DEVICE:-cuda:0} -p $((PORT + 2)) > "$OUT/gw_server.log" 2>&1 &
        WSRV=$!
        sleep 8
        head -3 "$OUT/ggml_server.log" "$OUT/gw_server.log"
        for which in "ggml $((PORT + 1))" "graphwire $((PORT + 2))" "ggml $((PORT + 1))" "graphwire $((PORT + 2))"; do
          echo "--- token round trip (8 KiB of inputs, recompute, 501 KiB of logits) through ${which% *}'s rpc-server" |
            tee -a "$OUT/vsserver.log"
          deno run -A --no-check cli/main.ts rpc-client ping 127.0.0.1:${which#* } -n 3000 --token 513024 --inputs 8192 2>&1 |
            tee -a "$OUT/vsserver.log" | tail -1
          echo "--- bare round trip (recompute, 64 B back) through ${which% *}'s rpc-server" | tee -a "$OUT/vsserver.log"
          deno run -A --no-check cli/main.ts rpc-client ping 127.0.0.1:${which#* } -n 3000 --token 64 2>&1 |
            tee -a "$OUT/vsserver.log" | tail -1
        done
        for round in $(seq ${VS_ROUNDS:-2}); do
          for which in "ggml $((PORT + 1))" "graphwire $((PORT + 2))"; do
            echo "--- round $round: ${VS_MODEL:-llama-1b} through ${which% *}'s rpc-server" | tee -a "$OUT/vsserver.log"
            deno run -A --no-check cli/main.ts bench -m ${VS_MODEL:-llama-1b} --rpc 127.0.0.1:${which#* } -r ${MODEL_REPS:-2} ${VS_BENCH_ARGS:-} 2>&1 |
              tee -a "$OUT/vsserver.log" | grep -E "^\||rror"
          done
        done
        kill $GSRV $WSRV
      else
        echo "no ggml-cuda build carried"
      fi
      ;;
    models)
      for serve in "" "--serve" "--serve 2"; do
        echo "--- llama-1b -d cuda:0 $serve"
        deno run -A --no-check cli/main.ts bench -m llama-1b -d cuda:0 -r ${MODEL_REPS:-2} $serve 2>&1 |
          tee -a "$OUT/models.log" | grep -E "^\||error|Error"
      done
      ;;
  esac
done
echo "=== done $(date +%T)"
