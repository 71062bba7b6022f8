#!/usr/bin/env bash
# test-sanitize.sh [ctest args...]: the whole test suite under ASan and
# UBSan. Builds in build-asan/ (-DVB_SANITIZE=ON, RelWithDebInfo so reports
# carry lines), then ctest there. Every UBSan report fails its test
# (halt_on_error); leaks inside third-party libraries (OpenMPI, OpenBLAS)
# are suppressed by scripts/sanitize.supp, leaks in our code are not.
# About 10 minutes on 2 cores from scratch (build ~4, tests ~6).
# Needs the packages of scripts/setup.sh (run that first on a fresh machine).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${VAEBENCH_ASAN_BUILD:-$repo/build-asan}"
jobs="${VB_JOBS:-2}"
werror=OFF
[[ -n "${CI:-}" ]] && werror=ON
echo "test-sanitize: configuring $build (ASan + UBSan)"
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DVB_SANITIZE=ON -DVB_WERROR="$werror" >/dev/null
echo "test-sanitize: building (-j$jobs)"
cmake --build "$build" -j"$jobs" 2>&1 | grep -vE '^\[ *[0-9]+%\]' || true
test -x "$build/vaebench" || { echo "test-sanitize: build failed" >&2; exit 1; }
supp="$repo/scripts/sanitize.supp"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$supp:print_suppressions=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
echo "test-sanitize: running ctest in $build"
ctest --test-dir "$build" --output-on-failure -j"$jobs" "$@"
