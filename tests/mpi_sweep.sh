#!/usr/bin/env bash
# mpi_sweep.sh VAEBENCH_MPI VAEBENCH MPIRUN TMPDIR: a small synthetic sweep
# run under mpirun with 3 ranks (rank 0 hands cells out, ranks 1-2 run
# them) must give the same results.csv as the local sweep, wall-clock
# column excluded, and every cell exactly once.
set -euo pipefail
mpi_bin=$1 bin=$2 mpirun=$3 tmp=$4
. "$(dirname "$0")/testlib.sh"
rm -rf "$tmp"; mkdir -p "$tmp"
vb_sweep_ini "$tmp/s.ini" 128 16 1 "1e-3, 10" 1..3
"$mpirun" --allow-run-as-root --oversubscribe -np 3 \
  "$mpi_bin" sweep "$tmp/s.ini" --out "$tmp/mpi" --jobs 1 -q
"$bin" sweep "$tmp/s.ini" --out "$tmp/local" --jobs 1 -q
strip() { # drop the wall-clock columns (seconds, nll_seconds, cpu_per_epoch)
  local cols
  cols=$(head -1 "$1" | tr ',' '\n' | grep -n -E '^((nll_)?seconds|cpu_per_epoch)$' |
         cut -d: -f1 | paste -sd,)
  cut -d, -f"$cols" --complement "$1"
}
if ! diff <(strip "$tmp/mpi/results.csv") <(strip "$tmp/local/results.csv"); then
  echo "mpi_sweep: results differ"; echo "0 passed, 1 failed"; exit 1
fi
rows=$(($(wc -l < "$tmp/mpi/results.csv") - 1))
if [[ $rows -ne 6 ]]; then
  echo "mpi_sweep: $rows rows, expected 6"; echo "0 passed, 1 failed"; exit 1
fi
echo "1 passed, 0 failed"
