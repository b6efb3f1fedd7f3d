#!/usr/bin/env bash
# Build the compiled core with AddressSanitizer and UndefinedBehaviorSanitizer into a scratch
# copy of the tree (never into src/: the in-place build there is the normal, optimised one).
#
#   fuzz/build_sanitized.sh [OUT]        # default OUT: /tmp/tradebook-asan
#
# then run anything against it (the sanitizer runtimes must be loaded before Python):
#
#   eval "$(fuzz/build_sanitized.sh --env [OUT])"
#   python fuzz/fuzz_core.py -max_total_time=600 /tmp/tradebook-asan/corpus fuzz/corpus
#
# gcc's runtimes are used (this machine has no clang); atheris' libFuzzer picks up their
# death callback and stack printing, so a memory error is reported as a crash with a stack.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
env_only=""
if [[ ${1:-} == --env ]]; then
  env_only=1
  shift
fi
out=${1:-/tmp/tradebook-asan}
cc=${CC:-gcc}
asan=$("$cc" -print-file-name=libasan.so)
ubsan=$("$cc" -print-file-name=libubsan.so)
env_lines() {
  echo "export PYTHONPATH=$out/src"
  echo "export LD_PRELOAD=$asan:$ubsan"
  # CPython's own allocations are not instrumented and it keeps memory until exit: no leak report
  echo "export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:abort_on_error=1:symbolize=1"
  echo "export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"
  echo "export PYTHONMALLOC=malloc"
}
if [[ -n $env_only ]]; then
  env_lines
  exit 0
fi
python=${PYTHON:-}
if [[ -z $python ]]; then
  if [[ -x .venv/bin/python ]]; then python=$PWD/.venv/bin/python; else python=python; fi
fi
rm -rf "$out"
mkdir -p "$out/corpus"
cp -a setup.py pyproject.toml "$out/"
mkdir -p "$out/src"
cp -a src/tradebook "$out/src/"
rm -f "$out"/src/tradebook/*.so "$out"/src/tradebook/*.c
cd "$out"
# nonnull-attribute is off: Cython's own cpython/array.pxd clone() calls memset(NULL, 0, 0) for an
# empty array (execute_batch of an empty batch), formally UB and harmless; it would stop every run
flags="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize=nonnull-attribute"
flags+=" -fno-sanitize-recover=undefined"
# setup.py appends -O3 after CFLAGS; the sanitizers work at -O3 too, the stacks are just shorter
CFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" TRADEBOOK_REQUIRE_EXTENSIONS=1 \
  "$python" setup.py -q build_ext --inplace >"$out/build.log" 2>&1 || {
  tail -30 "$out/build.log" >&2
  exit 1
}
ls "$out"/src/tradebook/*.so >&2
echo "built with: $flags; now: eval \"\$(fuzz/build_sanitized.sh --env $out)\"" >&2
