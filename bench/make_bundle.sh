#!/bin/sh
# bench/make_bundle.sh OUT BIN_AVX512 BIN_AVX2 -- the whole-model benchmark
# in one folder, for a machine that has PyTorch but not mdoctor's build
# dependencies (`make bench-bundle` calls this):
#   OUT/bin/mdoctor-avx512, mdoctor-avx2   the shell, built for x86-64-v4 and -v3
#   OUT/lib/                the shared libraries ldd names (Lua, BLIS, libgomp,
#                           readline, ...), except the C library's own
#   OUT/lib/glibc/          the C library's (libc, libm, ld-linux), used only
#                           where the machine's C library is older than this one's
#   OUT/lua/, recipes/arch/ the Lua library and the architectures
#   OUT/bench/              models.lua, torch_models.py, run_models.lua
#   OUT/run.sh              runs bench/run_models.lua (bench/bundle_run.sh)
set -eu
out=$1; v4=$2; v3=$3
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib/glibc" "$out/bench" "$out/recipes/arch"
# debug sections off: the bundle travels (the symbols stay, for perf)
strip --strip-debug -o "$out/bin/mdoctor-avx512" "$v4"
strip --strip-debug -o "$out/bin/mdoctor-avx2" "$v3"
ldd "$v4" "$v3" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 } $1 ~ /^\/.*ld-linux/ { print "ld", $1 }' | sort -u |
while read -r name path; do
  case $name in
    ld) cp -L "$path" "$out/lib/glibc/$(basename "$path")" ;;
    libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*) cp -L "$path" "$out/lib/glibc/$name" ;;
    *) cp -L "$path" "$out/lib/$name" ;;
  esac
done
[ -e "$out/lib/glibc/ld-linux-x86-64.so.2" ] || { echo "make_bundle: no ld-linux-x86-64.so.2 among ldd's lines" >&2; exit 1; }
# every Lua file of the library, paths kept (lua/mdoctor/*.lua, ...)
find lua -name '*.lua' | while read -r f; do mkdir -p "$out/$(dirname "$f")"; cp "$f" "$out/$f"; done
cp recipes/arch/*.lua "$out/recipes/arch/"
cp bench/models.lua bench/run_models.lua bench/torch_models.py "$out/bench/"
cp bench/bundle_run.sh "$out/run.sh"
chmod +x "$out/run.sh" "$out/bench/torch_models.py"
cat > "$out/README.txt" <<TXT
mdoctor's whole-model benchmark (bench/run_models.lua), from commit
$(git rev-parse --short HEAD 2>/dev/null || echo '?'), built $(date -u +%Y-%m-%d) on $(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-?}"), glibc $(ldd --version | head -1 | awk '{print $NF}').

  ./run.sh                         1, 2 and all cores; PyTorch too if python3 has torch
  ./run.sh --threads "1 4 16" --models "resnet18" --steps 5 --rounds 3
  PYTHON=/opt/venv/bin/python ./run.sh      a Python with torch elsewhere
  ./run.sh --help                  every option

The report is printed and written to bench-models.md here.  The folder runs
from anywhere (x86-64 Linux, AVX2 or AVX-512); by hand:
  MDOCTOR_HOME=\$PWD LD_LIBRARY_PATH=\$PWD/lib bin/mdoctor-avx512 bench/models.lua --model resnet18 --step train --threads 4
TXT
echo "bench bundle: $out ($(du -sh "$out" | cut -f1))"
