#!/usr/bin/env bash
# merge.sh VAEBENCH TMPDIR: issue 17 item 8. merge keeps sweep.ini and
# warns of partial coverage, refuses inputs of different sweeps, refuses
# to write into one of its inputs, builds nothing when an input is
# missing; an empty shard (--shard 5/8 of 4 cells) exits 0 with a note
# and merges as nothing. Item 11: a PNG write error fails report with
# its cause (strerror).
set -euo pipefail
bin=$1 tmp=$2
. "$(dirname "$0")/testlib.sh"
vb_fresh "$tmp"
vb_sweep_ini s.ini 128 16 1 "1e-3, 1e-2" 1..2
sed 's/1e-2/1e-1/' s.ini > t.ini
"$bin" sweep s.ini --out e --shard 5/8 -q 2> e.log ||
  fail "empty shard exited non-zero: $(cat e.log)"
"$bin" sweep s.ini --out e --shard 5/8 > /dev/null 2> e.log
grep -q "holds no cell" e.log || fail "empty shard without a note"
"$bin" sweep s.ini --out a --shard 1/2 -q
"$bin" sweep s.ini --out b --shard 2/2 -q
"$bin" sweep t.ini --out c --shard 1/2 -q

"$bin" merge m a e > /dev/null 2> m.log || fail "merge: $(cat m.log)"
cmp s.ini m/sweep.ini || fail "merge dropped sweep.ini"
grep -q "Partial: 2 of the 4 cells" m.log || fail "no partial warning"
"$bin" merge full a b e > /dev/null 2> f.log || fail "merge: $(cat f.log)"
[ "$(($(wc -l < full/results.csv) - 1))" -eq 4 ] || fail "merge lost rows"
grep -q "Partial" full/summary.md && fail "complete merge noted partial"
grep -q Partial f.log && fail "a complete merge warned of partial coverage"

if "$bin" merge x a c 2> x.log; then fail "two sweeps merged"; fi
grep -q "different sweeps" x.log || fail "no identity message: $(cat x.log)"
before=$(ls -R a | md5sum)
if "$bin" merge a a b 2> y.log; then fail "merged into an input"; fi
[ "$before" = "$(ls -R a | md5sum)" ] || fail "merge modified its input"
if "$bin" merge z a nothere 2> z.log; then fail "missing input accepted"; fi
grep -q "nothere has neither rows/ nor results.csv" z.log ||
  fail "missing input message: $(cat z.log)"
[ ! -e z ] || fail "half-built output left for a missing input"

# -- item 11: a PNG that cannot be written fails the report, with its cause
cp -r full png
rm -f png/stability_map.png && mkdir png/stability_map.png
if "$bin" report png > p.out 2> p.log; then fail "report ignored a PNG error"; fi
grep -q "stability_map.png.*Is a directory" p.log ||
  fail "PNG error without its cause: $(cat p.log)"
grep -q "wrote" p.out p.log && fail "report claimed to have written files"
echo "merge: ok"
