#!/usr/bin/env bash
# counterfactual-proxy.sh: regenerates results/counterfactual-proxy-seed8,
# the counterfactual replay (vaebench counterfactual, README "Which fix
# would have saved this run?") of the MLP proxy's seed 8 of the RHVAE NaN
# report (configs/rhvae-issue132-mlp-seeds.ini, pythae's complete check),
# which dies at step 2,998: it trains the run (about 2 core-minutes, a
# resume checkpoint every epoch), then replays every built-in mitigation
# from 10 steps before the failure to one epoch after it (about 30 s),
# and copies the run's summary and the verdict tables and figure.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${VAEBENCH_BUILD:-$repo/build}"
out="$repo/results/counterfactual-proxy-seed8"
"$repo/scripts/setup.sh"
cd "$repo"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
grep -vE '^\[sweep\]|^train\.(nan_check|seed) *=' configs/rhvae-issue132-mlp-seeds.ini > "$tmp/proxy.ini"
"$build/vaebench" train --config "$tmp/proxy.ini" --set train.seed=8 \
  --set train.nan_check=pythae --set run.checkpoint_every=157 \
  --set run.out_dir="$tmp" --set run.name=seed8 -q
"$build/vaebench" counterfactual "$tmp/seed8" --try all --no-lead --window 10
mkdir -p "$out"
cp "$tmp/seed8/summary.csv" "$tmp/seed8/config.ini" "$tmp/seed8/counterfactual/verdict.csv" \
   "$tmp/seed8/counterfactual/verdict.md" "$tmp/seed8/counterfactual/curves.csv" \
   "$tmp/seed8/counterfactual/counterfactual.png" "$out/"
[[ -f "$tmp/seed8/precursors.csv" ]] && cp "$tmp/seed8/precursors.csv" "$out/"
echo "counterfactual-proxy: wrote $out"
