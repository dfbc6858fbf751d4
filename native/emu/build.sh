#!/usr/bin/env bash
# Builds libgraphwire_hip.so from native/src for ROCm's HIP-CPU runtime, which runs HIP kernels on the
# host's cores: with it the kernels, plans and the whole server path can be checked where no GPU is
# lent. A developer's check only: nothing here goes into the real libraries, and CI cannot fetch
# HIP-CPU. Semantics: CUDA's (32-lane warps with full-mask shuffles, block barriers), as shim.h and
# sync.h give them; not covered: the tensor-core and PDL paths (CUDA only), cuBLAS/hipBLAS, timing,
# and anything a real GPU's memory model or a 64-lane AMD wave would add.
#
#   native/emu/build.sh HIP_CPU_DIR [OUT_DIR]        # OUT_DIR defaults to native/build/emu
#   GRAPHWIRE_NATIVE_LIB=OUT_DIR/libgraphwire_hip.so deno test -A backends/cuda/cuda_test.ts
#   GRAPHWIRE_NATIVE_LIB=... deno run -A backends/cuda/check.ts            # every kernel case
#   GRAPHWIRE_NATIVE_LIB=... deno run -A backends/cuda/replay.ts -d hip:0  # the recordings
#   GRAPHWIRE_NATIVE_LIB=... deno task rpc-server -d hip:0                 # for test-backend-ops
# GW_EMU_SMS=132 in the environment makes the library size its grids (FLASH_ATTN_EXT's slices, the
# transposing copy's blocks) as on an H100/H200 instead of by the host's cores.
#
# HIP_CPU_DIR: a checkout of github.com/ROCm/HIP-CPU (header-only; used at e112c93). It is copied
# into OUT_DIR and two things are changed there: fibers get 256 KiB stacks instead of 7 KiB (kernels
# with register arrays overflowed them into the heap), and a block's threads are numbered x fastest,
# as CUDA and HIP number them (HIP-CPU numbered z fastest, so warps of 2-d blocks were wrong).
# Needs g++ (C++17) and libtbb-dev. Sources are rewritten on the way: kernel<<<...>>>(args) becomes
# gw_emu_launch(kernel, ..., args), extern __shared__ arrays HIP_DYNAMIC_SHARED, the warp primitives
# of port.h the emulated ones, and Vec16 gains a constructor (g++ refuses its union otherwise).
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,24p "$0"; exit 2; }
hipcpu=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
native=$(dirname "$here")
out=${2:-$native/build/emu}
mkdir -p "$out"
out=$(cd "$out" && pwd)
[ -f "$hipcpu/include/hip/hip_runtime.h" ] || { echo "no HIP-CPU at $hipcpu" >&2; exit 1; }

# HIP-CPU, patched
rm -rf "$out/hipcpu.new" && mkdir -p "$out/hipcpu.new"
cp -r "$hipcpu/include" "$hipcpu/src" "$hipcpu/external" "$out/hipcpu.new/"
fiber=$out/hipcpu.new/src/include/hip/detail/fiber.hpp
types=$out/hipcpu.new/src/include/hip/detail/types.hpp
sed -i 's/(7168 + sizeof(void\*) - 1)/(262144 + sizeof(void*) - 1)/' "$fiber"
python3 - "$types" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
old = """                const auto a{flat_index / (x.y * x.z)};
                const auto b{(flat_index - a * x.y * x.z) / x.z};
                const auto c{flat_index - a * x.y * x.z - b * x.z};

                return {a, b, c};"""
new = "                return {flat_index % x.x, (flat_index / x.x) % x.y, flat_index / (x.x * x.y)};"
if old not in s: sys.exit(f"{p}: thread numbering not as expected (HIP-CPU changed?)")
open(p, "w").write(s.replace(old, new))
PY
grep -q '262144' "$fiber" || { echo "$fiber: stack size not as expected (HIP-CPU changed?)" >&2; exit 1; }
# keep the old copy (and the objects built against it) when nothing changed
if [ -d "$out/hipcpu" ] && diff -rq "$out/hipcpu" "$out/hipcpu.new" >/dev/null; then rm -rf "$out/hipcpu.new"
else rm -rf "$out/hipcpu" && mv "$out/hipcpu.new" "$out/hipcpu"; fi

# native sources, rewritten into a stage; only changed files replace the built ones
stage=$out/stage
rm -rf "$stage" && mkdir -p "$stage"
cp -r "$native/src" "$native/include" "$stage/"
cp "$here/shim.h" "$here/sync.h" "$stage/"
find "$stage/src" -name '*.cu' -o -name '*.cuh' | xargs sed -i -E \
  -e 's/([A-Za-z_]+)<<<(.*)>>>\((.*)\);/gw_emu_launch(\1, \2, \3);/' \
  -e 's/extern __shared__ (__align__\([0-9]+\) )?([a-z0-9_]+) ([a-z_]+)\[\];/HIP_DYNAMIC_SHARED(\2, \3)/'
sed -i -E -e 's/return __shfl_xor\(v, m, 32\);/return gw_emu::shfl_xor(v, m);/' \
  -e 's/return __shfl\(v, l, 32\);/return gw_emu::shfl(v, l);/' \
  -e 's/void gw_syncwarp\(\) \{\}/void gw_syncwarp() { gw_emu::syncwarp(); }/' "$stage/src/port.h"
[ "$(grep -c gw_emu "$stage/src/port.h")" = 4 ] || { echo "port.h's warp primitives not as expected" >&2; exit 1; }
python3 - "$stage/src/ops/launch.cuh" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
old = "    T v[N];\n  };\n"
if old not in s: sys.exit(f"{p}: Vec16 not as expected")
open(p, "w").write(s.replace(old, old + "  Vec16() {}\n", 1))
PY
if grep -rn '<<<' "$stage/src"; then echo "launches left unrewritten (above)" >&2; exit 1; fi
mkdir -p "$out/src" "$out/obj"
(cd "$stage" && find . -type f) | while read -r f; do
  cmp -s "$stage/$f" "$out/src/$f" || { mkdir -p "$(dirname "$out/src/$f")"; cp "$stage/$f" "$out/src/$f"; }
done
rm -rf "$stage"

# compile: an object is rebuilt when its source or any header is newer
cd "$out/src"
newest=$(ls -t src/*.h src/*.cuh src/ops/*.cuh include/*.h shim.h sync.h "$out/hipcpu/src/include/hip/detail/"*.hpp | sed -n 1p)
jobs=$(nproc)
n=0
for f in src/*.cu src/ops/*.cu; do
  o=$out/obj/$(basename "$f" .cu).o
  if [ ! -f "$o" ] || [ "$f" -nt "$o" ] || [ "$newest" -nt "$o" ]; then
    echo "g++ $f"
    g++ -std=c++17 -O1 -fPIC -w -DNDEBUG -DGW_HIP=1 -I"$out/hipcpu/include" -Iinclude -Isrc -include shim.h \
      -x c++ -c "$f" -o "$o" &
    n=$((n + 1))
    if [ $n -ge "$jobs" ]; then wait -n; n=$((n - 1)); fi
  fi
done
while [ $n -gt 0 ]; do wait -n; n=$((n - 1)); done
g++ -shared -o "$out/libgraphwire_hip.so" "$out"/obj/*.o -ltbb -lpthread -ldl
echo "$out/libgraphwire_hip.so"
