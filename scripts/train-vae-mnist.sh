#!/usr/bin/env bash
# train-vae-mnist.sh: set up, then the default training run
# (configs/vae-mnist.ini: full MNIST, latent 16, BCE, Adam 1e-3, batch 64,
# 10 epochs) into runs/vae-mnist. Extra arguments go to 'vaebench train'.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${VAEBENCH_BUILD:-$repo/build}"
"$repo/scripts/setup.sh"
cd "$repo"
"$build/vaebench" train --config configs/vae-mnist.ini "$@"
