#!/usr/bin/env bash
# sweep_resume.sh VAEBENCH TMPDIR: a sweep killed while a cell runs goes
# on, when started again, from that cell's last resume checkpoint (issue
# 16: a sweep longer than a session loses at most an epoch per cell at
# each stop), and the cell's row is the row of an uninterrupted sweep but
# for wall-clock seconds. --fresh reruns it from the start instead; a run
# folder whose config.ini is not the cell's is never resumed.
set -euo pipefail
bin=$1 tmp=$2
. "$(dirname "$0")/testlib.sh"
vb_fresh "$tmp"
cat > s.ini <<'INI'
[data]
dataset = synthetic
synthetic_n = 3000
synthetic_eval_n = 64
[model]
kind = rhvae
hidden = 64
latent = 4
[train]
epochs = 8
batch = 32
[run]
checkpoint_every = 20
[eval]
nll_samples = 4
nll_images = 16
[sweep]
train.seed = 1
INI
"$bin" sweep s.ini --out A --jobs 1 -q
id=$(basename A/rows/*.csv .csv)
[[ -f A/rows/$id.csv ]] || fail "the uninterrupted sweep wrote no row"

# row FILE: the row without its wall-clock columns
row() {
  python3 - "$1" <<'PY'
import csv, sys
row = next(csv.DictReader(open(sys.argv[1])))
for k in ("seconds", "nll_seconds"):
    row.pop(k)
print(row)
PY
}

# kill_after OUT EPOCHS: starts the sweep into OUT and kills it (SIGKILL to
# its process group: the worker dies with it) once its cell has EPOCHS
# epochs logged, before it ends.
kill_after() {
  local out=$1 want=$2 m
  setsid "$bin" sweep s.ini --out "$out" --jobs 1 -q &
  local pid=$!
  m=$out/runs/$id/metrics.csv
  for _ in $(seq 1 1200); do
    [[ -f $m && $(wc -l < "$m") -gt $want ]] && break
    sleep 0.05
  done
  kill -KILL -- -"$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [[ ! -f $out/rows/$id.csv ]] || fail "$out: the cell finished before the kill (too fast a machine?)"
  local done_epochs=$(( $(wc -l < "$m") - 1 ))
  (( done_epochs >= want && done_epochs < 8 )) || fail "$out: killed after $done_epochs epochs, expected $want..7"
}

# resumed: from its last epoch checkpoint, the uninterrupted row
kill_after B 3
"$bin" sweep s.ini --out B --jobs 1 2> B.log
grep -q "cell $id: resumes its interrupted run after epoch [3-7]" B.log || { cat B.log >&2; fail "the killed cell was not resumed"; }
[[ "$(row A/rows/$id.csv)" == "$(row B/rows/$id.csv)" ]] || {
  diff <(row A/rows/$id.csv | tr ',' '\n') <(row B/rows/$id.csv | tr ',' '\n') >&2 || true
  fail "the resumed cell's row differs from the uninterrupted one"; }
cmp A/runs/$id/metrics.csv B/runs/$id/metrics.csv ||
  fail "the resumed run's metrics.csv differs from the uninterrupted one"
[[ $(wc -l < B/runs/$id/times.csv) -eq 9 ]] || fail "times.csv: expected 8 epochs after the resume"

# --fresh: from the start, the same row
kill_after C 2
"$bin" sweep s.ini --out C --jobs 1 --fresh 2> C.log
! grep -q "resumes" C.log || fail "--fresh resumed the cell"
[[ "$(row A/rows/$id.csv)" == "$(row C/rows/$id.csv)" ]] || fail "--fresh: row differs"

# another config in the folder: never resumed, run from the start
kill_after D 2
sed -i 's/^epochs = 8$/epochs = 9/' D/runs/$id/config.ini
"$bin" sweep s.ini --out D --jobs 1 2> D.log
grep -q "cell $id: its run folder holds another config; it runs from the start" D.log || { cat D.log >&2; fail "a foreign config.ini was not refused"; }
[[ "$(row A/rows/$id.csv)" == "$(row D/rows/$id.csv)" ]] || fail "rerun after a foreign config: row differs"
echo "sweep_resume: ok"
