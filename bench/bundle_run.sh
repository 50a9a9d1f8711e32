#!/bin/sh
# run.sh -- mdoctor's whole-model benchmark from this folder (made by
# `make bench-bundle`), on a machine without mdoctor's build dependencies.
#   ./run.sh [bench/run_models.lua's options: --threads "1 4 16" --models ... --steps N ...]
#   PYTHON=/path/to/python ./run.sh    a Python with torch (default: /usr/bin/python3, then python3)
#
# The mdoctor processes that are timed run with LD_LIBRARY_PATH=<here>/lib
# (the bundle's Lua, BLIS, libgomp, ...).  The driver runs through the
# system's dynamic loader with --library-path instead, so the shells and
# Python processes it starts keep the caller's environment: Python and torch
# never see the bundle's libraries.  Where the machine's C library is older
# than the one the bundle was built with, the bundle's own C library and
# loader run mdoctor (MD_BUNDLE_GLIBC=1 chooses them anyway).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
case $here in
  *[!A-Za-z0-9._/+-]*) echo "run.sh: move the folder to a path without spaces or special characters ($here)" >&2; exit 1 ;;
esac
export MDOCTOR_HOME="$here"
flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true) "
case $flags in
  *" avx512f "*) bin=$here/bin/mdoctor-avx512 ;;
  *" avx2 "*) bin=$here/bin/mdoctor-avx2 ;;
  *) echo "run.sh: this CPU has no AVX2; the bundle's builds need it" >&2; exit 1 ;;
esac
sysld=/lib64/ld-linux-x86-64.so.2
if [ -z "${MD_BUNDLE_GLIBC:-}" ] && env LD_LIBRARY_PATH="$here/lib" "$bin" -v >/dev/null 2>&1; then
  run="env LD_LIBRARY_PATH=$here/lib $bin"
  if [ -x "$sysld" ]; then driver="$sysld --library-path $here/lib $bin"; else driver=$run; fi
  how="system C library"
else
  run="$here/lib/glibc/ld-linux-x86-64.so.2 --library-path $here/lib/glibc:$here/lib $bin"
  if ! $run -v >/dev/null 2>&1; then
    echo "run.sh: mdoctor does not start on this machine:" >&2
    env LD_LIBRARY_PATH="$here/lib" "$bin" -v >&2 || true
    $run -v >&2 || true
    exit 1
  fi
  driver=$run
  how="the bundle's C library"
fi
py=${PYTHON:-}
if [ -z "$py" ]; then
  for c in /usr/bin/python3 python3; do
    if $c -c 'import torch' >/dev/null 2>&1; then py=$c; break; fi
  done
fi
echo "run.sh: $(basename "$bin") with $how; Python: ${py:-none (mdoctor only)}" >&2
exec $driver "$here/bench/run_models.lua" --mdoctor "$run" --python "${py:-none}" --out "$here/bench-models.md" "$@"
