#!/usr/bin/env bash
# cli_quirks.sh VAEBENCH BUILD_DIR SOURCE_DIR TMPDIR: issue 17 item 14.
# config --config on a sweep file, train CONFIG positional, the missing
# data message naming data.dir and VAEBENCH_DATA, config --keys listing
# every enum's values, cmake --install putting vaebench in PREFIX/bin,
# and the README / configs/quick.ini statements the issue found wrong.
set -euo pipefail
bin=$1 build=$2 src=$3 tmp=$4
rm -rf "$tmp"; mkdir -p "$tmp"; cd "$tmp"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$bin" config --config "$src/configs/quick.ini" > q.ini 2> q.err ||
  fail "config --config on a sweep file: $(cat q.err)"
grep -q "^train_end = 2000" q.ini || fail "sweep file's base config not printed"
grep -q "skipped" q.err || fail "no note on the skipped [sweep] section"

cat > run.ini <<'INI'
[data]
dataset = synthetic
synthetic_n = 64
synthetic_eval_n = 32
[model]
hidden = 16
[train]
epochs = 1
batch = 32
[run]
out_dir = out
name = pos
INI
"$bin" train run.ini -q > /dev/null 2> t.err || fail "train CONFIG: $(cat t.err)"
[ -f out/pos/summary.csv ] || fail "train CONFIG wrote no run"

if VAEBENCH_DATA= "$bin" train --set data.dir=nowhere -q > /dev/null 2> d.err
then fail "missing data accepted"; fi
grep -q "data.dir" d.err && grep -q "VAEBENCH_DATA" d.err ||
  fail "missing-data message names neither data.dir nor VAEBENCH_DATA: $(cat d.err)"

"$bin" config --keys > keys.txt
for k in data.dataset model.recon optim.kind optim.schedule nets.activation; do
  grep -q "^$k .*values: " keys.txt || fail "config --keys: no values for $k"
done
grep -q "^optim.kind .*values: sgd|adam|adamw" keys.txt ||
  fail "optim.kind values: $(grep '^optim.kind' keys.txt)"

cmake --install "$build" --prefix "$tmp/prefix" > /dev/null
"$tmp/prefix/bin/vaebench" version > /dev/null ||
  fail "cmake --install did not install a working vaebench"

for w in reconstructions.png samples.png checkpoints/ --allow-run-as-root \
         --oversubscribe "cmake --install"; do
  grep -q -- "$w" "$src/README.md" || fail "README does not mention $w"
done
grep -q "mpirun -np 9" "$src/README.md" && fail "README keeps mpirun -np 9"
grep -q "from 1 every seed" "$src/configs/quick.ini" &&
  fail "configs/quick.ini keeps its false comment"
echo "cli_quirks: ok"
