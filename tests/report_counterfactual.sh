#!/usr/bin/env bash
# report_counterfactual.sh VAEBENCH TMPDIR: issue 18 item 4 on a chosen
# part of a sweep: 'report DIR --counterfactual --only NAMES' replays the
# failed runs of those mitigations only, with the counterfactual options
# passed through (--try, --window, --horizon, --eval-n, --nll-samples,
# --no-lead), and fixes.md counts just them; a second call is resumable
# (nothing rerun, the same fixes.csv).
set -euo pipefail
bin=$1 tmp=$2
. "$(dirname "$0")/testlib.sh"
vb_fresh "$tmp"
cat > s.ini <<'INI'
[data]
dataset = synthetic
synthetic_n = 128
synthetic_eval_n = 32
[model]
latent = 2
hidden = 16
recon = bce
[train]
epochs = 2
batch = 16
[run]
checkpoint_every = 4
[mitigations]
baseline =
poison-a = inject.nan_step=9 inject.nan_phase=grad
poison-b = inject.nan_step=11 inject.nan_phase=grad
[sweep]
train.seed = 1..2
INI
"$bin" sweep s.ini --out sw --jobs 2 -q
nan_rows=$(python3 -c "import csv;print(sum(r['status']=='nan' for r in csv.DictReader(open('sw/results.csv'))))")
[ "$nan_rows" -eq 4 ] ||
  fail "expected 4 NaN rows (poison-a and poison-b, 2 seeds each)"
cf=(--try lr-div10 --try clip-norm --window 3 --horizon 2 --eval-n 8
    --nll-samples 2 --no-lead)
"$bin" report sw --counterfactual --only poison-a "${cf[@]}" 2> log.txt ||
  fail "report --counterfactual --only: $(tail -3 log.txt)"
n_a=0 n_b=0
for d in sw/runs/*; do
  [ -f "$d/counterfactual/verdict.csv" ] || continue
  m=$(python3 -c "import csv,sys;print(next(csv.DictReader(open(sys.argv[1])))['mitigation'])" "sw/rows/${d##*/}.csv")
  case "$m" in
    poison-a) n_a=$((n_a + 1)) ;;
    *) n_b=$((n_b + 1)) ;;
  esac
  # the options passed through: two variants besides the unchanged one
  [ "$(tail -n +2 "$d/counterfactual/verdict.csv" | wc -l)" -eq 3 ] ||
    fail "$d: verdict.csv does not have the unchanged + 2 variants"
  grep -q "window 3" "$d/counterfactual/verdict.md" ||
    fail "$d: --window 3 did not reach the counterfactual"
done
[ "$n_a" -eq 2 ] && [ "$n_b" -eq 0 ] ||
  fail "--only poison-a replayed $n_a poison-a and $n_b other runs"
grep -q "lr-div10" sw/fixes.md || fail "fixes.md lacks the lr-div10 row"
cp sw/fixes.csv fixes1.csv
"$bin" report sw --counterfactual --only poison-a "${cf[@]}" 2> log2.txt
grep -q "done already" log2.txt || fail "the second call did not skip the done runs"
cmp -s fixes1.csv sw/fixes.csv || fail "fixes.csv changed on the resumed call"
if "$bin" report sw --counterfactual --window 0 2> err.txt; then
  fail "--window 0 was accepted"
fi
grep -q -- "--window 0" err.txt || fail "--window 0: $(cat err.txt)"
echo "report_counterfactual: ok"
