#!/usr/bin/env bash
# counterfactual-resnet.sh: issue 18 on the report's own networks. For
# every baseline run of the ResNet study (results/rhvae-resnet-study) that
# hit NaN, replays every built-in mitigation (vaebench counterfactual
# --try all, f64 in vaebench-f64) from 10 steps before its first event to
# 60 steps after it, held-out measures on 64 images x 8 IS samples, and
# writes the study's fixes.md / fixes.csv ("Fixes at the failure point",
# also in its summary.md); each run's verdict.md, verdict.csv, curves.csv
# and counterfactual.png are copied to results/rhvae-resnet-study/
# counterfactual/ID/ (the runs/ folders are not committed). Resumable: a
# run whose counterfactual/verdict.csv exists is not replayed again. The
# study's runs/ must be on this machine (scripts/rhvae-resnet-study.sh).
# About 3-5 core-minutes a run.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${VAEBENCH_BUILD:-$repo/build}"
dir=results/rhvae-resnet-study
cd "$repo"
[[ -d "$dir/runs" ]] || { echo "counterfactual-resnet.sh: $dir/runs is missing (run the study on this machine first)" >&2; exit 2; }
"$build/vaebench" report "$dir" --counterfactual --only baseline --jobs 1 \
  --try all --no-lead --window 10 --horizon 60 --eval-n 64 --nll-samples 8
for v in "$dir"/runs/*/counterfactual/verdict.csv; do
  run=$(dirname "$(dirname "$v")") id=$(basename "$run")
  mkdir -p "$dir/counterfactual/$id"
  for f in verdict.csv verdict.md curves.csv counterfactual.png; do
    [[ -f "$run/counterfactual/$f" ]] && cp "$run/counterfactual/$f" "$dir/counterfactual/$id/"
  done
done
echo "counterfactual-resnet: wrote $dir/fixes.md and $dir/counterfactual/"
