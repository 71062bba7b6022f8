#!/usr/bin/env bash
# fuzz.sh [SECONDS] [NAME ...]: coverage-guided fuzzing of the readers with
# libFuzzer, ASan and UBSan (fuzz/fuzz_<NAME>.c; NAME is idx, checkpoint,
# config, sweep or csv; default all), SECONDS each (default 60).
#  1. Debian packages clang-14 and libclang-rt-14-dev (libFuzzer's runtime):
#     installed when missing and run as root, else the apt-get line.
#  2. Build in build-fuzz/ with CC=clang-14 -DVB_FUZZ=ON (no test suites).
#  3. Each fuzzer starts from a copy of fuzz/corpus/NAME/ in
#     build-fuzz/corpus/NAME/ (the committed seeds stay small; copy a new
#     interesting input back by hand) and writes crashes to
#     build-fuzz/crash/NAME/. Replay one with the default build:
#     build/fuzz/fuzz_NAME FILE.
# Exit 1 when any fuzzer found a crash, leak, UB or timeout.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${VAEBENCH_FUZZ_BUILD:-$repo/build-fuzz}"
secs=60
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then
  secs="$1"
  shift
fi
names=("$@")
((${#names[@]})) || names=(idx checkpoint config sweep csv)

pkgs=(clang-14 libclang-rt-14-dev)
# shellcheck source=scripts/debs.sh
. "$repo/scripts/debs.sh"
mapfile -t missing < <(debs_missing "${pkgs[@]}")
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "fuzz: installing ${missing[*]} (clang and libFuzzer's runtime)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "fuzz: missing Debian packages; run as root:" >&2
    echo "  apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

echo "fuzz: building libFuzzer harnesses in $build (clang-14, ASan, UBSan)"
CC=clang-14 cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DVB_FUZZ=ON -DVB_TESTS=OFF >/dev/null
targets=()
for n in "${names[@]}"; do targets+=("fuzz_$n"); done
cmake --build "$build" -j2 --target "${targets[@]}" 2>&1 \
  | grep -vE '^\[ *[0-9]+%\]' || true

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export OPENBLAS_NUM_THREADS=1
# every input goes through a scratch file: keep it in memory when we can
[[ -z "${TMPDIR:-}" && -d /dev/shm && -w /dev/shm ]] && export TMPDIR=/dev/shm
status=0
for n in "${names[@]}"; do
  exe="$build/fuzz/fuzz_$n"
  [[ -x "$exe" ]] || { echo "fuzz: $exe was not built" >&2; exit 1; }
  corpus="$build/corpus/$n"
  crash="$build/crash/$n"
  mkdir -p "$corpus" "$crash"
  cp -n "$repo/fuzz/corpus/$n/"* "$corpus/"
  log="$build/fuzz_$n.log"
  echo "fuzz: $n for ${secs}s (log $log)"
  if "$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
       -max_len=4096 -print_final_stats=1 -artifact_prefix="$crash/" \
       "$corpus" >"$log" 2>&1; then
    runs="$(awk '/stat::number_of_executed_units/ {print $2; exit}' "$log")"
    cov="$(awk '$2 == "DONE" {print $3, $4}' "$log" | tail -n 1)"
    echo "fuzz: $n ok: ${runs:-?} executions, ${cov:-cov ?}, corpus $(ls "$corpus" | wc -l) files"
  else
    status=1
    echo "fuzz: $n FOUND A PROBLEM: $(ls "$crash" | head -3 | tr '\n' ' ')" >&2
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | head -5 >&2 || true
  fi
done
exit "$status"
