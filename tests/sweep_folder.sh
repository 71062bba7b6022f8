#!/usr/bin/env bash
# sweep_folder.sh VAEBENCH TMPDIR: issue 17 items 3, 4, 6 and 7.
# (4) a torn or empty row file is rerun, not trusted;
# (3) a cell failing for a transient reason (I/O) writes no `error` row,
#     the sweep exits non-zero, and the next run retries it;
# (6) temporary files of dead processes (*.tmp.PID) are removed on start;
# (7) two sweeps started together on one --out run every cell exactly
#     once (the second waits on the folder's lock).
set -euo pipefail
bin=$1 tmp=$2
. "$(dirname "$0")/testlib.sh"
vb_fresh "$tmp"
vb_sweep_ini s.ini 256 32 3 "1e-3, 1e-2" 1..3
rows() { ls "$1"/rows | grep -c '\.csv$' || true; }
to_run() { sed -n 's/.* already done, \([0-9]*\) to run.*/\1/p' "$1"; }

# -- item 7: two sweeps at once on one new folder --
"$bin" sweep s.ini --out two --jobs 1 > /dev/null 2> a.log &
pa=$!
"$bin" sweep s.ini --out two --jobs 1 > /dev/null 2> b.log &
pb=$!
wait "$pa" || fail "first concurrent sweep failed: $(cat a.log)"
wait "$pb" || fail "second concurrent sweep failed: $(cat b.log)"
total=$(( $(to_run a.log) + $(to_run b.log) ))
[ "$total" -eq 6 ] || fail "two sweeps ran $total trainings for 6 cells"
[ "$(rows two)" -eq 6 ] || fail "two sweeps left $(rows two) rows"
grep -q ',error,' two/results.csv && fail "an error row after two sweeps"

# -- item 4: torn and empty rows are rerun --
cp -r two torn
r1=$(ls torn/rows | sed -n 1p) r2=$(ls torn/rows | sed -n 2p)
head -c 100 "torn/rows/$r1" > x && mv x "torn/rows/$r1"
: > "torn/rows/$r2"
"$bin" sweep s.ini --out torn --jobs 1 > /dev/null 2> t.log ||
  fail "sweep over torn rows failed: $(cat t.log)"
[ "$(to_run t.log)" -eq 2 ] || fail "torn/empty rows trusted: $(cat t.log)"
[ "$(($(wc -l < torn/results.csv) - 1))" -eq 6 ] ||
  fail "results.csv lacks rows after the rerun"
cmp <(cut -d, -f1-3 two/results.csv) <(cut -d, -f1-3 torn/results.csv) ||
  fail "rerun rows differ"

# -- item 6: stale temporaries of a dead process are removed --
dead=$(sh -c 'echo $$')
touch "torn/rows/.$r1.tmp.$dead" "torn/.results.csv.tmp.$dead"
"$bin" sweep s.ini --out torn --jobs 1 > /dev/null 2>&1
[ -z "$(find torn -name "*.tmp.$dead")" ] ||
  fail "stale temporaries left: $(find torn -name "*.tmp.$dead")"

# -- item 3: a transient failure is retried, not recorded as error --
cp -r two tr
id=${r1%.csv}
rm -rf "tr/runs/$id" "tr/rows/$id.csv"
touch "tr/runs/$id" # the run folder cannot be made: an I/O error
if "$bin" sweep s.ini --out tr --jobs 1 > /dev/null 2> e.log; then
  fail "sweep with an undone cell exited 0"
fi
[ ! -e "tr/rows/$id.csv" ] || fail "a transient failure wrote a row: \
$(cat "tr/rows/$id.csv")"
grep -q "no row: transient error" e.log ||
  fail "the cell's progress line gives no reason: $(cat e.log)"
rm "tr/runs/$id"
"$bin" sweep s.ini --out tr --jobs 1 > /dev/null 2> e2.log ||
  fail "retry failed: $(cat e2.log)"
[ "$(to_run e2.log)" -eq 1 ] || fail "the failed cell was not retried"
grep -q ',error,' tr/results.csv && fail "error row after the retry"
echo "sweep_folder: ok"
