#!/usr/bin/env bash
# Regenerates every table and plot of the RHVAE NaN report (issue 132;
# README, "The RHVAE NaN report"), one 'vaebench sweep' each, resuming
# where a folder already has rows (kill it and run again at any time):
#   results/map-vae-mnist            VAE lr x batch x 3 seeds    ~12 core-min
#   results/map-vae-fashion          the same on Fashion-MNIST   ~12 core-min
#   results/rhvae-issue132-mlp       MLP proxy, 10 seeds x 2 checks  ~60 core-min
#   results/map-rhvae-mlp            RHVAE (MLP) lr x batch x 2 seeds ~20 core-min
#   results/rhvae-issue132-mitigations  24 mitigations x 10 seeds  ~8 core-hours
#   results/rhvae-issue132-resnet-mitigations  6 on the ResNets, seed 6
#                                    ~40 core-min a cell
#   results/rhvae-issue132           the report's ResNets, 10 seeds x 2 checks
#                                    ~40 core-min a cell: ~13 core-hours
#   results/map-rhvae-resnet         ResNet lr x batch x 3 seeds <= 4.5-9 core-hours
# Usage: scripts/issue132.sh [NAME ...] [-- sweep options]; NAME is one of
# the folder names above without results/ (default: all, cheapest first).
# On a cluster, split a sweep with --shard K/N and join with
# 'vaebench merge' (README, "Sweeps").
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${VAEBENCH_BUILD:-$repo/build}"
names=()
while [[ $# -gt 0 && "$1" != "--" ]]; do
  names+=("$1")
  shift
done
[[ "${1:-}" == "--" ]] && shift
if [[ ${#names[@]} -eq 0 ]]; then
  names=(map-vae-mnist map-vae-fashion rhvae-issue132-mlp map-rhvae-mlp
         rhvae-issue132-mitigations rhvae-issue132-resnet-mitigations
         rhvae-issue132 map-rhvae-resnet)
fi
config_of() {
  case "$1" in
    rhvae-issue132) echo configs/rhvae-issue132-seeds.ini ;;
    rhvae-issue132-mlp) echo configs/rhvae-issue132-mlp-seeds.ini ;;
    map-vae-mnist|map-vae-fashion|map-rhvae-mlp|map-rhvae-resnet|rhvae-issue132-mitigations|rhvae-issue132-resnet-mitigations)
      echo "configs/$1.ini" ;;
    *) echo "issue132.sh: unknown name '$1' (expected one of the results folders listed in the script's header)" >&2
       return 2 ;;
  esac
}
for n in "${names[@]}"; do config_of "$n" >/dev/null; done
"$repo/scripts/setup.sh"
cd "$repo"
VB_GIT_COMMIT="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
export VB_GIT_COMMIT
for n in "${names[@]}"; do
  "$build/vaebench" sweep "$(config_of "$n")" --out "results/$n" \
    --jobs "$(nproc)" "$@"
done
