#!/usr/bin/env bash
# sweep_resume.sh VAEBENCH TMPDIR: a sweep killed while a cell runs goes
# on, when started again, from that cell's last resume checkpoint (issue
# 16: a sweep longer than a session loses at most an epoch per cell at
# each stop), and the cell's row is the row of an uninterrupted sweep but
# for wall-clock seconds. --fresh reruns it from the start instead; a run
# folder whose config.ini is not the cell's is never resumed.
# A continuation cell (--continue-from) resumes the same way.
set -euo pipefail
bin=$1 tmp=$2
. "$(dirname "$0")/testlib.sh"
vb_fresh "$tmp"
# rhvae_ini FILE N EPOCHS CKPT_EVERY NLL_SAMPLES NLL_IMAGES: one seed of a
# small synthetic RHVAE run with resume checkpoints and the IS-NLL
rhvae_ini() {
  cat > "$1" <<INI
[data]
dataset = synthetic
synthetic_n = $2
synthetic_eval_n = 64
[model]
kind = rhvae
hidden = 64
latent = 4
[train]
epochs = $3
batch = 32
[run]
checkpoint_every = $4
[eval]
nll_samples = $5
nll_images = $6
[sweep]
train.seed = 1
INI
}
rhvae_ini s.ini 3000 8 20 4 16
"$bin" sweep s.ini --out A --jobs 1 -q
id=$(basename A/rows/*.csv .csv)
[[ -f A/rows/$id.csv ]] || fail "the uninterrupted sweep wrote no row"
# cpu_per_epoch: the mean of times.csv's cpu_seconds, and positive
python3 - A/rows/$id.csv A/runs/$id/times.csv <<'PY' || fail "cpu_per_epoch is not times.csv's mean CPU seconds"
import csv, sys
row = next(csv.DictReader(open(sys.argv[1])))
cpu = [float(r["cpu_seconds"]) for r in csv.DictReader(open(sys.argv[2]))]
assert len(cpu) == 8 and min(cpu) > 0, cpu
assert abs(float(row["cpu_per_epoch"]) - sum(cpu) / len(cpu)) < 1e-3, (row["cpu_per_epoch"], cpu)
PY

# row FILE: the row without its wall-clock columns
row() {
  python3 - "$1" <<'PY'
import csv, sys
row = next(csv.DictReader(open(sys.argv[1])))
for k in ("seconds", "nll_seconds", "cpu_per_epoch"):
    row.pop(k)
print(row)
PY
}

# kill_after OUT EPOCHS [ARG...]: starts the sweep (with ARGs) into OUT and
# kills it (SIGKILL to its process group: the worker dies with it) once its
# cell has EPOCHS epochs logged, before it ends.
kill_after() {
  local out=$1 want=$2 m
  shift 2
  setsid "$bin" sweep s.ini --out "$out" --jobs 1 -q "$@" &
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
# the first part's epoch 1 made to look slow (1,000 s in times.csv): the
# resumed row's seconds cover every part of the run, so at least that
sed -i '2s/^1,[0-9.]*,/1,1000.000,/' B/runs/$id/times.csv
grep -q '^1,1000.000,' B/runs/$id/times.csv || fail "could not edit times.csv's epoch 1"
# the run folder's config.ini as an older vaebench wrote it, without a
# key added since (eval.nll_estimator, at its default): still this cell's
grep -q '^nll_estimator = pythae$' B/runs/$id/config.ini || fail "config.ini has no nll_estimator line to remove"
sed -i '/^nll_estimator = /d' B/runs/$id/config.ini
"$bin" sweep s.ini --out B --jobs 1 2> B.log
# (killed with 3 or more epochs logged: a run logs an epoch's metrics
# before it writes that epoch's checkpoint, so a kill between the two
# resumes after the epoch before; seen under load)
grep -q "cell $id: resumes its interrupted run after epoch [2-7]" B.log || { cat B.log >&2; fail "the killed cell was not resumed"; }
[[ "$(row A/rows/$id.csv)" == "$(row B/rows/$id.csv)" ]] || {
  diff <(row A/rows/$id.csv | tr ',' '\n') <(row B/rows/$id.csv | tr ',' '\n') >&2 || true
  fail "the resumed cell's row differs from the uninterrupted one"; }
cmp A/runs/$id/metrics.csv B/runs/$id/metrics.csv ||
  fail "the resumed run's metrics.csv differs from the uninterrupted one"
[[ $(wc -l < B/runs/$id/times.csv) -eq 9 ]] || fail "times.csv: expected 8 epochs after the resume"
python3 - B/rows/$id.csv B/runs/$id/times.csv <<'PY' || fail "the resumed row's cpu_per_epoch is not over both parts"
import csv, sys
row = next(csv.DictReader(open(sys.argv[1])))
cpu = [float(r["cpu_seconds"]) for r in csv.DictReader(open(sys.argv[2]))]
assert len(cpu) == 8 and abs(float(row["cpu_per_epoch"]) - sum(cpu) / 8) < 1e-3
PY
python3 - B/rows/$id.csv B/runs/$id/times.csv <<'PY' || fail "the resumed row's seconds do not cover both parts"
import csv, sys
row = next(csv.DictReader(open(sys.argv[1])))
wall = [float(r["seconds"]) for r in csv.DictReader(open(sys.argv[2]))]
assert wall[0] == 1000 and float(row["seconds"]) >= sum(wall), (row["seconds"], wall)
PY

# a continuation cell (sweep --continue-from, issue 16 item 3) killed
# after its source's epochs: resumed from its own last epoch checkpoint,
# not copied from the source and trained again; the uninterrupted row
sed 's/^epochs = 8$/epochs = 4/' s.ini > s4.ini
"$bin" sweep s4.ini --out S4 --jobs 1 -q
kill_after E 6 --continue-from S4
"$bin" sweep s.ini --out E --jobs 1 --continue-from S4 2> E.log
grep -q "cell $id: resumes its interrupted run after epoch [5-7]" E.log || { cat E.log >&2; fail "the killed continuation cell was not resumed"; }
[[ "$(row A/rows/$id.csv)" == "$(row E/rows/$id.csv)" ]] || fail "the resumed continuation cell's row differs from the uninterrupted sweep's"
cmp A/runs/$id/metrics.csv E/runs/$id/metrics.csv ||
  fail "the resumed continuation's metrics.csv differs from the uninterrupted one"

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
# killed after its last epoch, in the end-of-run IS-NLL: resumed with no
# epoch left, the NLL at its best and last epochs comes from the held-out
# snapshots the killed run left (their parameters are in the files)
rhvae_ini n.ini 600 3 5 400 64
"$bin" sweep n.ini --out NA --jobs 1 -q
nid=$(basename NA/rows/*.csv .csv)
# kill_in_nll OUT: n.ini's sweep into OUT killed half a second after its
# third (last) epoch is logged, in its end-of-run IS-NLL
kill_in_nll() {
  local out=$1 pid
  setsid "$bin" sweep n.ini --out "$out" --jobs 1 -q &
  pid=$!
  for _ in $(seq 1 1200); do
    [[ -f $out/runs/$nid/metrics.csv && $(wc -l < "$out/runs/$nid/metrics.csv") -ge 4 ]] && break
    sleep 0.05
  done
  sleep 0.5
  kill -KILL -- -"$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [[ ! -f $out/rows/$nid.csv ]] || fail "$out: the cell finished before the kill"
}
kill_in_nll NB
[[ -f NB/runs/$nid/.heldout-best.safetensors ]] || fail "NB: no held-out snapshot left by the killed run"
"$bin" sweep n.ini --out NB --jobs 1 2> NB.log
grep -q "cell $nid: resumes its interrupted run after epoch 3" NB.log || { cat NB.log >&2; fail "the cell killed in its IS-NLL was not resumed after epoch 3"; }
python3 - NA/rows/$nid.csv NB/rows/$nid.csv <<'PY' || fail "NLL after the resume differs"
import csv, sys
a, b = (next(csv.DictReader(open(p))) for p in sys.argv[1:])
for k in ("nll_best", "nll_last", "best_epoch", "last_finite_epoch"):
    assert a[k] and a[k] == b[k], (k, a[k], b[k])
PY
[[ "$(row NA/rows/$nid.csv)" == "$(row NB/rows/$nid.csv)" ]] || fail "the row resumed in its IS-NLL differs"
# the same kill with the best epoch's snapshot gone: train --resume
# refuses in one line (no row without its IS-NLL), the sweep reruns the
# cell from the start
kill_in_nll NC
rm -f NC/runs/$nid/.heldout-best.safetensors
if "$bin" train --resume NC/runs/$nid -q > /dev/null 2> NC.train; then fail "train --resume without the best snapshot succeeded"; fi
grep -q "held-out snapshot of its best epoch (3, .heldout-best.safetensors) is missing" NC.train || { cat NC.train >&2; fail "train --resume: no clear error for the missing snapshot"; }
[[ $(wc -l < NC.train) -eq 1 ]] || { cat NC.train >&2; fail "train --resume: expected one line"; }
"$bin" sweep n.ini --out NC --jobs 1 2> NC.log
grep -q "cell $nid: its held-out snapshots are missing or from an older vaebench; it runs from the start" NC.log || { cat NC.log >&2; fail "a cell without its snapshots was resumed"; }
[[ "$(row NA/rows/$nid.csv)" == "$(row NC/rows/$nid.csv)" ]] || fail "the rerun cell's row differs"
echo "sweep_resume: ok"
