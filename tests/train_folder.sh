#!/usr/bin/env bash
# train_folder.sh VAEBENCH TMPDIR: issue 17 items 1 and 2.
# (1) a run owns its folder: train refuses a non-empty run folder, --force
#     clears it (no stale file of the earlier run stays), --resume of a
#     finished run is refused;
# (2) an interrupted run (SIGINT: summary.csv says "interrupted"; SIGKILL:
#     no summary) keeps its finished epochs in metrics.csv, and
#     train --resume continues it to the same metrics.csv, checkpoint and
#     checkpoints/ as the uninterrupted run, byte for byte.
set -euo pipefail
bin=$1 tmp=$2
. "$(dirname "$0")/testlib.sh"
vb_fresh "$tmp"
set_args=(--set data.dataset=synthetic --set data.synthetic_n=512
          --set data.synthetic_eval_n=64 --set train.epochs=40
          --set train.batch=32 --set run.checkpoint_every=5
          --set model.hidden=64 --out o --name r -q)

# interrupt SIG ARGS...: train ARGS into o/r, sent SIG once metrics.csv
# holds three epochs.
interrupt() {
  local sig=$1 pid
  shift
  "$bin" train "$@" > /dev/null &
  pid=$!
  for _ in $(seq 600); do
    [ "$(cat o/r/metrics.csv 2> /dev/null | wc -l)" -ge 4 ] && break
    sleep 0.05
  done
  kill -"$sig" "$pid"
  wait "$pid" || true
}

# -- item 1 --
"$bin" train "${set_args[@]}" > /dev/null
touch o/r/precursors.csv o/r/checkpoints/step-000000007.safetensors
mkdir -p o/r/replay
if "$bin" train "${set_args[@]}" > /dev/null 2> err.txt; then
  fail "train into a non-empty run folder was accepted"
fi
grep -q -- "--force" err.txt || fail "refusal does not name --force"
[ -e o/r/precursors.csv ] || fail "the refused train touched the folder"
if "$bin" train --resume o/r -q > /dev/null 2> err.txt; then
  fail "--resume of a finished run was accepted"
fi
"$bin" train "${set_args[@]}" --force > /dev/null
for stale in precursors.csv replay checkpoints/step-000000007.safetensors; do
  [ ! -e "o/r/$stale" ] || fail "--force left the old run's $stale"
done
ls -a o | grep -q '\.old\.' && fail "--force left the renamed-aside folder"
mv o/r ref

# -- item 2 --
for sig in INT KILL; do
  rm -rf o/r
  interrupt "$sig" "${set_args[@]}"
  n=$(wc -l < o/r/metrics.csv)
  [ "$n" -ge 4 ] || fail "SIG$sig: metrics.csv lost finished epochs ($n lines)"
  [ "$n" -lt 41 ] || fail "SIG$sig: the run ended before the signal"
  if [ "$sig" = INT ]; then
    grep -q ',interrupted,' o/r/summary.csv ||
      fail "SIGINT: summary.csv does not say interrupted"
  fi
  "$bin" train --resume o/r -q > /dev/null
  for f in metrics.csv checkpoint.safetensors; do
    cmp "o/r/$f" "ref/$f" || fail "SIG$sig: resumed $f differs"
  done
  [ "$(ls o/r/checkpoints)" = "$(ls ref/checkpoints)" ] ||
    fail "SIG$sig: checkpoints/ differs: $(ls o/r/checkpoints)"
  grep -q ',ok,' o/r/summary.csv || fail "SIG$sig: resumed run not ok"
done

# run.checkpoint_every = 0 (guard.replay's epoch-end step checkpoints)
args0=("${set_args[@]/run.checkpoint_every=5/run.checkpoint_every=0}")
rm -rf o/r ref0
"$bin" train "${args0[@]}" > /dev/null
mv o/r ref0
interrupt INT "${args0[@]}"
"$bin" train --resume o/r -q > /dev/null
for f in metrics.csv checkpoint.safetensors; do
  cmp "o/r/$f" "ref0/$f" || fail "checkpoint_every=0: resumed $f differs"
done
echo "train_folder: ok"
