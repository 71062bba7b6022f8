#!/usr/bin/env bash
# Regenerates the failure-mode studies of issue 7 (README, "Failure-mode
# studies"): results/study-batchnorm, results/study-batchnorm-convnet,
# results/study-init-activation, results/study-preprocess,
# results/study-eps-placement, one 'vaebench sweep' each: 3 seeds per
# cell, about 12 CPU-minutes in all (8 of them the ConvNet BatchNorm
# study), so about 6 minutes on 2 idle cores from a built tree.
# --fresh drops the old rows first. Extra arguments go to 'vaebench sweep'.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${VAEBENCH_BUILD:-$repo/build}"
fresh=0
if [[ "${1:-}" == "--fresh" ]]; then
  shift
  fresh=1
fi
"$repo/scripts/setup.sh"
cd "$repo"
VB_GIT_COMMIT="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
export VB_GIT_COMMIT
for study in batchnorm batchnorm-convnet init-activation preprocess eps-placement; do
  out="results/study-$study"
  if [[ $fresh == 1 ]]; then
    rm -rf "$out/rows" "$out/runs"
  fi
  "$build/vaebench" sweep "configs/study-$study.ini" --out "$out" \
    --jobs "$(nproc)" "$@"
done
