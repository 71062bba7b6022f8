#!/usr/bin/env bash
# test-valgrind.sh [suite...]: the Check suites under valgrind's memcheck,
# for what ASan and UBSan (scripts/test-sanitize.sh) do not see: reads of
# uninitialised memory, e.g. a config field no defaults function sets
# (model_config.nll_consistent was one: garbage-true on one machine, false
# on another, and test_nll failed only there).
# Builds in build-valgrind/ without -march=native (valgrind does not
# decode AVX-512), pins OpenBLAS to its Haswell kernel and oneDNN to AVX2
# for the same reason, runs each suite in one process (CK_FORK=no) and
# reports every suite with a memcheck error or a failed check. Leaks are
# ASan's job. The environment is ctest's for the suites
# (tests/CMakeLists.txt vb_add_suite) without the fork and the timeouts;
# the vaebench processes that some suites start (VB_BIN) run natively.
# With no arguments every suite in tests/ runs, one after another: 29 of
# the 35 took 98 minutes beside a sweep (test_sweep_run 39 of them); name
# suites to run a few. Known false failure: test_sweep_run's
# test_sigkill_resume kills its sweep on a timer, and under valgrind the
# kill lands before the first row ("kill landed outside the sweep").
# Known false errors: test_threads (its 2-thread RHVAE steps on oneDNN)
# reports uninitialised values and reads past oneDNN's own blocks, some
# of them in vaebench frames (core/conv_dnnl.c lookup); with
# --track-origins=yes every one of their ~25,600 origins is inside oneDNN:
# its JIT kernels' stack frames (no symbol), libdnnl's own stack, or a
# block libdnnl allocated (dnnl_primitive_attr_create). Probably memcheck
# loses track of the caller's registers the JIT code saves and restores, so
# they look undefined after a primitive returns (not verified); the suite's bit-identity
# checks pass under memcheck (2026-12-04).
# Needs the packages of scripts/setup.sh and valgrind.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${VAEBENCH_VALGRIND_BUILD:-$repo/build-valgrind}"
jobs="${VB_JOBS:-2}"
command -v valgrind >/dev/null ||
  { echo "test-valgrind: valgrind not found (apt-get install valgrind)" >&2; exit 1; }
echo "test-valgrind: configuring $build (no -march=native)"
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DVB_NATIVE=OFF >/dev/null
echo "test-valgrind: building (-j$jobs)"
cmake --build "$build" -j"$jobs" 2>&1 | grep -vE '^\[ *[0-9]+%\]' || true
suites=("$@")
if [[ ${#suites[@]} -eq 0 ]]; then
  for f in "$build"/tests/test_*; do
    [[ -x $f && -f $f ]] && suites+=("$(basename "$f")")
  done
fi
export OPENBLAS_CORETYPE=Haswell OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export ONEDNN_MAX_CPU_ISA=AVX2 CK_FORK=no VB_BIN="$build/vaebench"
logs="$build/valgrind-logs"
mkdir -p "$logs"
failed=()
for s in "${suites[@]}"; do
  exe="$build/tests/$s"
  [[ -x $exe ]] || { echo "test-valgrind: no suite $exe" >&2; exit 1; }
  start=$SECONDS
  export VB_TEST_TMP="$build/tests/tmp_valgrind_$s"
  if (cd "$build/tests" && valgrind -q --error-exitcode=99 \
        --leak-check=no "./$s") >"$logs/$s.txt" 2>&1; then
    echo "test-valgrind: $s clean ($((SECONDS - start)) s)"
  else
    echo "test-valgrind: $s FAILED ($((SECONDS - start)) s), see $logs/$s.txt"
    failed+=("$s")
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "test-valgrind: ${#failed[@]} of ${#suites[@]} suites failed: ${failed[*]}" >&2
  exit 1
fi
echo "test-valgrind: ${#suites[@]} of ${#suites[@]} suites clean"
