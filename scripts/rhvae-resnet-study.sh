#!/usr/bin/env bash
# rhvae-resnet-study.sh [--commit-every MIN] [-- sweep options]: runs (or
# resumes) the RHVAE NaN report's study on the report's own networks,
# configs/rhvae-resnet-study.ini, into results/rhvae-resnet-study, two
# cells at a time (one per core), at the lowest CPU priority. The study is
# longer than a working day (about 110 cells of up to 25 ResNet epochs;
# README, "The RHVAE NaN report"): kill it at any time and run it again,
# on this machine or on a clone, and it runs only the cells that have no
# row yet. rows/ is committed with the tables (small CSV files), so a clone
# resumes where the last commit stopped.
# --commit-every MIN: every MIN minutes (and at the end) rebuild the
# report and commit the folder (rows, results.csv, summary.md, curves/,
# precursors/, figures) with a commit of that folder alone, so finished
# cells never exist only on one machine. Shard the grid across machines
# with '-- --shard K/N' and join the folders with 'vaebench merge'.
# Cells run in grid order (issue 16's priority: the report's setting over
# 10 seeds with both checks, then the mitigations). Once the baseline and
# strict-guard cells have rows, pass '-- --order seeds-first' so the
# mitigations run seed by seed (every mitigation at seed 1, then at seed
# 2, ...) and a study stopped part way compares them on the same seeds.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${VAEBENCH_BUILD:-$repo/build}"
out=results/rhvae-resnet-study
every=0
while [[ $# -gt 0 && "$1" != "--" ]]; do
  case "$1" in
    --commit-every) every=${2:?--commit-every needs minutes}; shift 2 ;;
    *) echo "rhvae-resnet-study.sh: unknown option '$1' (expected --commit-every MIN or -- followed by sweep options)" >&2; exit 2 ;;
  esac
done
[[ "${1:-}" == "--" ]] && shift
"$repo/scripts/setup.sh"
cd "$repo"
VB_GIT_COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
export VB_GIT_COMMIT
commit_folder() {
  "$build/vaebench" report "$out" >/dev/null 2>&1 || true
  git add -A -- "$out" 2>/dev/null || return 0
  git commit -q -m "rhvae-resnet-study: $(ls "$out/rows" 2>/dev/null | wc -l) cells with rows (partial, resumable)" -- "$out" 2>/dev/null || true
}
low() { # lowest priority: its own autogroup at nice 19
  setsid sh -c 'echo 19 > /proc/self/autogroup 2>/dev/null; exec nice -n 19 "$@"' sh "$@"
}
low "$build/vaebench" sweep configs/rhvae-resnet-study.ini --out "$out" \
  --jobs "$(nproc)" "$@" &
pid=$!
if ((every > 0)); then
  while kill -0 "$pid" 2>/dev/null; do
    sleep $((every * 60)) & wait $! || true
    kill -0 "$pid" 2>/dev/null && commit_folder
  done
fi
rc=0
wait "$pid" || rc=$?
((every > 0)) && commit_folder
exit $rc
