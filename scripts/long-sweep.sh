#!/usr/bin/env bash
# long-sweep.sh CONFIG OUT [--commit-every MIN] [--jobs N] [-- sweep
# options]: runs (or resumes) a sweep longer than a working session,
# CONFIG into OUT, one cell per core (or N cells at once, to leave cores
# to another long sweep) at the lowest CPU priority (its own autogroup at nice
# 19), committing OUT (rows/ included: un-ignore it in .gitignore) every
# MIN minutes and at the end, so finished cells never exist only on one
# machine. Kill it at any time; run it again (here or on a clone) and it
# runs only the cells without a row, a cell it stopped part way from
# that cell's last epoch (resume checkpoints: run.checkpoint_every > 0).
# Used for the RHVAE NaN report's long runs (README, "The RHVAE NaN
# report"): configs/rhvae-resnet-trigger.ini into
# results/rhvae-resnet-trigger, configs/rhvae-tutorial-seeds.ini into
# results/rhvae-tutorial-seeds; the study itself has its own script,
# scripts/rhvae-resnet-study.sh.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${VAEBENCH_BUILD:-$repo/build}"
[[ $# -ge 2 ]] || { echo "usage: long-sweep.sh CONFIG OUT [--commit-every MIN] [--jobs N] [-- sweep options]" >&2; exit 2; }
config=$1 out=$2; shift 2
every=0
jobs="$(nproc)"
while [[ $# -gt 0 && "$1" != "--" ]]; do
  case "$1" in
    --commit-every) every=${2:?--commit-every needs minutes}; shift 2 ;;
    --jobs) jobs=${2:?--jobs needs a count}; shift 2
      [[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "long-sweep.sh: --jobs '$jobs': expected a positive integer" >&2; exit 2; } ;;
    *) echo "long-sweep.sh: unknown option '$1' (expected --commit-every MIN, --jobs N or -- followed by sweep options)" >&2; exit 2 ;;
  esac
done
[[ "${1:-}" == "--" ]] && shift
[[ -f "$repo/$config" || -f "$config" ]] || { echo "long-sweep.sh: $config: no such config file" >&2; exit 2; }
"$repo/scripts/setup.sh"
cd "$repo"
VB_GIT_COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
export VB_GIT_COMMIT
commit_folder() {  # $1: what the commit message says of the sweep
  "$build/vaebench" report "$out" >/dev/null 2>&1 || true
  git add -A -- "$out" 2>/dev/null || return 0
  git commit -q -m "$(basename "$out"): $(ls "$out/rows" 2>/dev/null | wc -l) cells with rows ($1)" -- "$out" 2>/dev/null || true
}
setsid sh -c 'echo 19 > /proc/self/autogroup 2>/dev/null; exec nice -n 19 "$@"' sh \
  "$build/vaebench" sweep "$config" --out "$out" --jobs "$jobs" "$@" &
pid=$!
if ((every > 0)); then
  # wakes every 10 s, so the final commit follows the sweep's end within
  # seconds (a single sleep of MIN minutes held it back up to MIN minutes)
  last=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    sleep 10 & wait $! || true
    if ((SECONDS - last >= every * 60)) && kill -0 "$pid" 2>/dev/null; then
      commit_folder "partial, resumable"
      last=$SECONDS
    fi
  done
fi
rc=0
wait "$pid" || rc=$?
if ((every > 0)); then
  if ((rc == 0)); then commit_folder "sweep complete"; else commit_folder "partial, resumable: the sweep stopped with status $rc"; fi
fi
exit $rc
