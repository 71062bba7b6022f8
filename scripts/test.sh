#!/usr/bin/env bash
# test.sh: set up (packages, MNIST, build) and run every Check suite with
# ctest. Extra arguments go to ctest (e.g. -L gradcheck).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${VAEBENCH_BUILD:-$repo/build}"
"$repo/scripts/setup.sh"
ctest --test-dir "$build" --output-on-failure -j2 "$@"
