#!/usr/bin/env bash
# train_continue.sh VAEBENCH TMPDIR: issue 16 item 3, a run that ended ok
# continued to more epochs (train --resume RUN_DIR --epochs N) gives the
# rows of a fresh N-epoch run: metrics.csv and summary.csv the same but
# for wall-clock seconds, the final checkpoint the same tensor for tensor
# (its metadata names the run), with the summary values that span the
# whole run (best epoch and its IS-NLL, SSE max, worst partial batches,
# the H-gradient clamp share, the adaptive clip share) carried over from
# the first part. Runs whose rows depend on their length are refused in
# one line, and nothing of theirs is touched.
set -euo pipefail
bin=$1 tmp=$2
. "$(dirname "$0")/testlib.sh"
vb_fresh "$tmp"
cat > base.ini <<'INI'
[data]
dataset = synthetic
synthetic_n = 200
synthetic_eval_n = 40
[model]
kind = rhvae
latent = 2
hidden = 16
recon = bce
[rhvae]
grad_clip = 5
[train]
batch = 32
[optim]
clip = adaptive
[run]
checkpoint_every = 7
[eval]
nll_samples = 8
nll_images = 10
INI
# without the wall-clock columns (times.csv is all wall clock)
metrics() { cut -d, -f1-9,11- "$1/metrics.csv"; }
summary() {
  python3 - "$1/summary.csv" <<'PY'
import csv, sys
row = next(csv.DictReader(open(sys.argv[1])))
for k in ("seconds", "nll_seconds", "cpu_per_epoch", "name"):
    row.pop(k, None)
print(row)
PY
}
tensors() {
  python3 - "$1/checkpoint.safetensors" <<'PY'
import hashlib, json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
for k in sorted(h):
    if k != "__metadata__":
        a, e = h[k]["data_offsets"]
        print(k, h[k]["dtype"], h[k]["shape"],
              hashlib.sha256(b[8 + n + a:8 + n + e]).hexdigest())
PY
}
same_as_fresh() { # NAME FIRST TOTAL [--set ...]
  local name=$1 first=$2 total=$3; shift 3
  "$bin" train base.ini --out o --name "$name" --set train.epochs="$first" \
    "$@" -q > /dev/null
  "$bin" train base.ini --out o --name "$name-fresh" \
    --set train.epochs="$total" "$@" -q > /dev/null
  "$bin" train --resume "o/$name" --epochs "$total" -q > /dev/null ||
    fail "$name: --resume --epochs $total failed"
  grep -qx "epochs = $total" "o/$name/config.ini" ||
    fail "$name: config.ini does not say epochs = $total"
  [ "$(metrics "o/$name")" == "$(metrics "o/$name-fresh")" ] ||
    fail "$name: metrics.csv differs from the fresh $total-epoch run"
  [ "$(summary "o/$name")" == "$(summary "o/$name-fresh")" ] ||
    fail "$name: summary.csv differs from the fresh run: $(summary "o/$name") vs $(summary "o/$name-fresh")"
  [ "$(tensors "o/$name")" == "$(tensors "o/$name-fresh")" ] ||
    fail "$name: the final checkpoint differs from the fresh run's"
  [ "$(wc -l < "o/$name/times.csv")" -eq $((total + 1)) ] ||
    fail "$name: times.csv does not have $total epochs"
}
# the best epoch moves into the continuation (the loss still falls)
same_as_fresh falling 3 5
# the best epoch (4) stays in the first part: its IS-NLL is carried over
same_as_fresh peaked 4 6 --set optim.lr=0.1 --set optim.clip=none
best=$(python3 -c "import csv;print(next(csv.DictReader(open('o/peaked/summary.csv')))['best_epoch'])")
[ "$best" -le 4 ] || fail "peaked: best epoch $best, the test wants one in the first part"
# a second continuation of a continued run
"$bin" train --resume o/falling --epochs 7 -q > /dev/null || fail "second continuation"
[ "$(wc -l < o/falling/metrics.csv)" -eq 8 ] || fail "second continuation: not 7 epochs"

# -- refusals: one line, exit code, nothing touched --
refused() { # WANT-IN-MESSAGE ARGS...
  local want=$1; shift
  local before
  before=$(cat o/*/summary.csv o/*/config.ini 2>/dev/null | sha256sum)
  if "$bin" "$@" > /dev/null 2> err.txt; then fail "accepted: $*"; fi
  [ "$(wc -l < err.txt)" -eq 1 ] || fail "not one line: $(cat err.txt)"
  grep -q -- "$want" err.txt || fail "'$*': message lacks '$want': $(cat err.txt)"
  [ "$before" == "$(cat o/*/summary.csv o/*/config.ini 2>/dev/null | sha256sum)" ] ||
    fail "'$*' changed a run folder"
}
refused "already has 7 epochs" train --resume o/falling --epochs 7 -q
refused "already has 7 epochs" train --resume o/falling --epochs 3 -q
refused "goes with --resume" train base.ini --epochs 9 -q
refused "expected 1..1000000" train --resume o/falling --epochs x -q
"$bin" train base.ini --out o --name cos --set train.epochs=2 \
  --set optim.schedule=cosine -q > /dev/null
refused "cosine" train --resume o/cos --epochs 4 -q
"$bin" train base.ini --out o --name ev --set train.epochs=3 \
  --set train.eval_every=2 -q > /dev/null
refused "eval_every" train --resume o/ev --epochs 4 -q
# a run that died meets its event again from its last epoch checkpoint:
# the rows of a fresh longer run (which dies the same way)
dead=(--set inject.nan_step=31 --set inject.nan_phase=param)
"$bin" train base.ini --out o --name dead --set train.epochs=6 "${dead[@]}" \
  -q > /dev/null || true
"$bin" train base.ini --out o --name dead-fresh --set train.epochs=9 \
  "${dead[@]}" -q > /dev/null || true
status=$(python3 -c "import csv;print(next(csv.DictReader(open('o/dead/summary.csv')))['status'])")
dead_ep=$(python3 -c "import csv;print(next(csv.DictReader(open('o/dead/summary.csv')))['first_epoch'])")
[ "$status" != ok ] && [ "$dead_ep" -ge 2 ] ||
  fail "the injected NaN should stop the run after its first epoch (status $status, epoch $dead_ep)"
"$bin" train --resume o/dead --epochs 9 -q > /dev/null || true
[ "$(metrics o/dead)" == "$(metrics o/dead-fresh)" ] ||
  fail "dead: metrics.csv differs from the fresh 9-epoch run"
[ "$(summary o/dead)" == "$(summary o/dead-fresh)" ] ||
  fail "dead: summary.csv differs from the fresh run: $(summary o/dead) vs $(summary o/dead-fresh)"

# -- sweep --continue-from: cells continue a shorter sweep's runs --
grid() { # EPOCHS
  cat base.ini
  echo "[mitigations]"
  echo "baseline ="
  echo "poisoned = inject.nan_step=31 inject.nan_phase=param"
  echo "[sweep]"
  echo "train.seed = 1..2"
} 
{ grid; } | sed "s/^\[train\]/[train]\nepochs = 3/" > s3.ini
{ grid; } | sed "s/^\[train\]/[train]\nepochs = 6/" > s6.ini
"$bin" sweep s3.ini --out sw3 --jobs 2 -q
"$bin" sweep s6.ini --out sw6 --jobs 2 --continue-from sw3 -q
"$bin" sweep s6.ini --out fresh6 --jobs 2 -q
rows() { # DIR: every row without its wall-clock columns, sorted by id
  python3 - "$1" <<'PY'
import csv, glob, os, sys
for f in sorted(glob.glob(os.path.join(sys.argv[1], "rows", "*.csv"))):
    row = next(csv.DictReader(open(f)))
    for k in ("seconds", "nll_seconds", "cpu_per_epoch"):
        row.pop(k, None)
    print(os.path.basename(f), row)
PY
}
[ "$(rows sw6 | wc -l)" -eq 4 ] || fail "sweep --continue-from: not 4 rows"
[ "$(rows sw6)" == "$(rows fresh6)" ] ||
  fail "sweep --continue-from: rows differ from a fresh 6-epoch sweep"
for d in sw6/runs/*; do
  [ "$(metrics "$d")" == "$(metrics "fresh6/runs/${d##*/}")" ] ||
    fail "sweep --continue-from: $d/metrics.csv differs from the fresh run's"
done
# a continuation of a continuation (rhvae-resnet-continue.sh --epochs 100
# continues study-50's runs), with --only: the rows of a fresh 9-epoch run
{ grid; } | sed "s/^\[train\]/[train]\nepochs = 9/" > s9.ini
"$bin" sweep s9.ini --out sw9 --jobs 2 --only baseline --continue-from sw6 -q
"$bin" sweep s9.ini --out fresh9 --jobs 2 --only baseline -q
[ "$(rows sw9 | wc -l)" -eq 2 ] || fail "continuation of a continuation: not 2 rows"
[ "$(rows sw9)" == "$(rows fresh9)" ] ||
  fail "continuation of a continuation: rows differ from a fresh 9-epoch sweep"
if "$bin" sweep s3.ini --out sw3b --continue-from sw6 -q 2> err.txt; then
  fail "a continuation to fewer epochs was accepted"
fi
grep -q "expected more" err.txt || fail "fewer epochs: $(cat err.txt)"
if "$bin" sweep s6.ini --out sw6b --continue-from nowhere -q 2> err.txt; then
  fail "--continue-from a missing folder was accepted"
fi
grep -q "not a sweep folder" err.txt || fail "missing source: $(cat err.txt)"
# --only: the cells of the named mitigations (the table lists the rest as
# missing); a name that is not a mitigation is refused
"$bin" sweep s6.ini --out only6 --jobs 2 --only poisoned \
  --continue-from sw3 -q
[ "$(ls only6/rows | wc -l)" -eq 2 ] || fail "--only poisoned: not 2 rows"
for f in only6/rows/*.csv; do
  [ -e "fresh6/rows/${f##*/}" ] || fail "--only: $f is not a cell of the grid"
  python3 -c "import csv,sys;r=next(csv.DictReader(open(sys.argv[1])));sys.exit(r['mitigation']!='poisoned')" "$f" ||
    fail "--only poisoned ran another mitigation's cell ($f)"
done
# the folder records its selection (only.txt): report counts its cells as
# the plan, says which were not run, and lists only selected cells missing
[ "$(cat only6/only.txt)" == poisoned ] || fail "--only: only.txt is '$(cat only6/only.txt 2>&1)'"
grep -qF '**Selected: the 2 cells of `--only poisoned` (only.txt), all with rows; sweep.ini'"'"'s other 2 cells were not run.**' only6/summary.md ||
  fail "--only: summary does not name the selection: $(grep -i 'selected\|partial' only6/summary.md)"
cp -r only6 part6
rm "$(ls part6/rows/*.csv | head -1)"
"$bin" report part6 > /dev/null
grep -qF '**Partial: 1 of the 2 cells selected with `--only poisoned` (only.txt; sweep.ini has 4) have rows.**' part6/summary.md ||
  fail "--only, a row missing: $(grep -i 'partial' part6/summary.md)"
echo bogus > part6/only.txt
if "$bin" report part6 > /dev/null 2> err.txt; then fail "report accepted only.txt naming no mitigation"; fi
grep -q "part6/only.txt: 'bogus' is not a mitigation of the folder's sweep.ini" err.txt && [ "$(wc -l < err.txt)" -eq 1 ] ||
  fail "bad only.txt: $(cat err.txt)"
# the continuation names its source (relative, so the pair moves with a
# clone), and report judges "learned" against the source's baseline, not
# against the continuation's first mitigation
[ "$(cat only6/continued_from.txt)" == ../sw3 ] ||
  fail "continued_from.txt is '$(cat only6/continued_from.txt 2>&1)', expected ../sw3"
want='NLL of `baseline`'"'"'s runs in ../sw3 (the sweep this one continues)'
grep -qF "$want" only6/summary.md ||
  fail "the learned rule does not name the source: $(grep -i 'learned' only6/summary.md | head -2)"
mkdir moved && cp -r only6 sw3 moved/ && rm moved/only6/summary.md
"$bin" report moved/only6 > /dev/null || fail "report of a moved continuation"
grep -qF "$want" moved/only6/summary.md || fail "moved: the rule lost its source"
echo ../nowhere > moved/only6/continued_from.txt
if "$bin" report moved/only6 > /dev/null 2> err.txt; then fail "report accepted a missing source"; fi
[ "$(wc -l < err.txt)" -eq 1 ] && grep -q "names ../nowhere, which has no results.csv" err.txt ||
  fail "missing source: $(cat err.txt)"
printf '\n' > moved/only6/continued_from.txt
if "$bin" report moved/only6 > /dev/null 2> err.txt; then fail "report accepted an empty continued_from.txt"; fi
grep -q "expected one line" err.txt || fail "empty continued_from.txt: $(cat err.txt)"
# shards of one --only sweep merge into one selection; a later sweep of the
# folder with the other mitigation selects the whole grid (no only.txt)
"$bin" sweep s3.ini --out sh1 --shard 1/2 --only poisoned -q
"$bin" sweep s3.ini --out sh2 --shard 2/2 --only poisoned -q
"$bin" merge m3 sh1 sh2 > /dev/null
[ "$(cat m3/only.txt)" == poisoned ] || fail "merge: only.txt is '$(cat m3/only.txt 2>&1)'"
grep -qF '**Selected: the 2 cells of `--only poisoned`' m3/summary.md || fail "merge: no selection note"
# a sweep of a shard without --only selects the whole grid again
"$bin" sweep s3.ini --out sh1 --shard 1/2 -q
[ ! -e sh1/only.txt ] || fail "a sweep without --only left only.txt"
"$bin" sweep s6.ini --out only6 --jobs 2 --only baseline --continue-from sw3 -q
[ ! -e only6/only.txt ] || fail "--only baseline after --only poisoned: only.txt is '$(cat only6/only.txt)', expected none"
! grep -q "Selected\|Partial" only6/summary.md || fail "the whole grid selected, yet: $(grep 'Selected\|Partial' only6/summary.md)"
if "$bin" sweep s6.ini --out only6b --only baseline,bogus -q 2> err.txt; then
  fail "--only bogus was accepted"
fi
grep -q "'bogus' is not a mitigation" err.txt || fail "--only bogus: $(cat err.txt)"
echo "train_continue: ok"
