#!/usr/bin/env bash
# quick.sh [--fresh] [sweep options...]: the main job. Sets up
# (scripts/setup.sh: Debian packages, MNIST, build), then runs the quick
# sweep configs/quick.ini (VAE on 2,000 MNIST images, 7 learning rates x
# 2 batch sizes x 3 seeds) into results/quick/ on every core:
# results.csv, summary.md, machine.json, stability_map.png,
# loss_curves.png, grad_norm.png. Cells already done (results/quick/rows)
# are skipped; --fresh removes rows/ and runs/ first. About 1-2 minutes
# on 2 cores from a built tree. Extra arguments go to 'vaebench sweep'.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${VAEBENCH_BUILD:-$repo/build}"
out="$repo/results/quick"
if [[ "${1:-}" == "--fresh" ]]; then
  shift
  rm -rf "$out/rows" "$out/runs"
fi
"$repo/scripts/setup.sh"
cd "$repo"
VB_GIT_COMMIT="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
export VB_GIT_COMMIT
"$build/vaebench" sweep configs/quick.ini --out results/quick \
  --jobs "$(nproc)" "$@"
