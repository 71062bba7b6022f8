#!/usr/bin/env bash
# readme_snapshot.sh SRC TMP: scripts/check-readme-figures.py against a copy
# of the repository's README.md and results/ (SRC) in TMP, where a long
# sweep's commit adds rows README does not quote yet: the check still
# passes and counts them; a quoted row that disappears fails it; --snapshot
# takes the new rows in, and the README's figures then no longer match.
set -euo pipefail
src=$1 tmp=$2
. "$(dirname "$0")/testlib.sh"
vb_fresh "$tmp"
mkdir scripts
cp "$src/README.md" .
cp "$src/scripts/check-readme-figures.py" scripts/
tar -C "$src" --exclude=runs --exclude=rows -cf - results | tar -xf -
check() { python3 scripts/check-readme-figures.py "$tmp"; }
out=$(check) || fail "the committed README and tables do not pass: $out"
csv=results/rhvae-resnet-study-50/results.csv
# rows a running sweep committed after README's snapshot (normal)
before=$(sed -n 's/^note: results\/rhvae-resnet-study-50\/results.csv has \([0-9]*\) row(s).*/\1/p' <<<"$out")
before=${before:-0}
# A sweep's commit: one more row (a copy of the last with a new id and seed).
python3 - "$csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
new = dict(rows[-1], id="ffffffffffffffff", **{"train.seed": "3"})
with open(sys.argv[1], "a", newline="") as f:
    csv.DictWriter(f, fieldnames=list(rows[0])).writerow(new)
PY
out=$(check) || fail "a row README does not quote yet broke the check: $out"
grep -q "has $((before + 1)) row(s) README does not cover yet" <<<"$out" || fail "the new row is not counted ($before before): $out"
# --snapshot takes it in: the generated table and counts now differ.
cp results/readme-rows.txt snap.txt
python3 scripts/check-readme-figures.py --snapshot "$tmp" >/dev/null
grep -q ffffffffffffffff results/readme-rows.txt || fail "--snapshot did not record the new row"
if out=$(check); then fail "README's figures pass with a row they do not count: $out"; fi
grep -q "MISMATCH" <<<"$out" || fail "no mismatch named: $out"
# A quoted row that is gone fails, naming it.
cp snap.txt results/readme-rows.txt
first=$(awk -F, 'NR == 2 {print $1}' "$csv")
grep -v "^$first," "$csv" > t.csv && mv t.csv "$csv"
if out=$(check); then fail "a quoted row removed from $csv passed: $out"; fi
grep -q "STALE .*$first" <<<"$out" || fail "the missing row $first is not named: $out"
# A malformed snapshot line is refused in one line.
echo "results/nowhere.csv 123" >> results/readme-rows.txt
if out=$(check 2>&1); then fail "a bad snapshot line passed"; fi
grep -q "readme-rows.txt line .*expected 'PATH ID'" <<<"$out" || fail "bad line not named: $out"
# The trigger grid's diagonal (init seed = data seed, partial batch kept)
# must repeat the study's baseline row of that seed: a copy passes that
# check (its table cells still differ from README's "not run"), a copy
# with another failure step is named.
cp snap.txt results/readme-rows.txt
mkdir -p results/rhvae-resnet-trigger
diag() { # FIRST_STEP_DELTA
  python3 - "$1" <<'PY'
import csv, sys
src = "results/rhvae-resnet-study/results.csv"
rows = list(csv.DictReader(open(src, newline="")))
r = dict(next(x for x in rows if x["mitigation"] == "baseline" and x["train.seed"] == "2"),
         id="dddddddddddddddd", **{"model.init_seed": "2"})
r["first_step"] = str(int(r["first_step"]) + int(sys.argv[1]))
with open("results/rhvae-resnet-trigger/results.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerow(r)
PY
}
echo "results/rhvae-resnet-trigger/results.csv dddddddddddddddd" >> results/readme-rows.txt
diag 0
out=$(check) || true
! grep -q DIAGONAL <<<"$out" || fail "a diagonal cell equal to the study's row was refused: $out"
grep -q "MISMATCH.*trigger\|trigger.*MISMATCH\|init seed 2" <<<"$out" || fail "the trigger row did not reach the table: $out"
diag 3
if out=$(check); then fail "a diagonal cell that fails at another step passed"; fi
grep -q "DIAGONAL trigger cell init = data seed = 2 differs from the study's baseline seed 2 in first_step" <<<"$out" ||
  fail "the diagonal mismatch is not named: $out"
echo "readme_snapshot: ok"
