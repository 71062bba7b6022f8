#!/usr/bin/env bash
# curves.sh VAEBENCH TMPDIR: 'vaebench curves' draws the per-epoch curves
# of runs from sweep folders and writes the points it drew (--csv): on
# --x lr-epochs a run at lr a's epoch e sits at e x a / (the largest lr);
# bad arguments are refused in one line with nothing written.
set -euo pipefail
bin=$1 tmp=$2
. "$(dirname "$0")/testlib.sh"
vb_fresh "$tmp"
vb_sweep_ini s.ini 64 8 4 "0.01, 0.001" "1, 2"
cat >> s.ini <<'INI'
[mitigations]
baseline =
clipped = optim.clip=norm optim.clip_max=1
INI
"$bin" sweep s.ini --out sw --jobs 2 -q
[ "$(ls sw/curves/*.csv | wc -l)" -eq 8 ] || fail "the sweep did not leave 8 curves"
"$bin" curves c.png --col eval_sse,grad_norm_median --x lr-epochs --csv c.csv \
  sw:baseline sw:clipped 2> log.txt || fail "curves: $(cat log.txt)"
grep -q "curves: wrote c.png" log.txt || fail "no line on the log: $(cat log.txt)"
[ "$(head -c 8 c.png | od -An -tx1 | tr -d ' \n')" == 89504e470d0a1a0a ] || fail "c.png is not a PNG"
# 2 columns x 8 runs x 4 epochs, plus the header
[ "$(wc -l < c.csv)" -eq 65 ] || fail "c.csv: $(wc -l < c.csv) lines, expected 65"
python3 - <<'PY' || fail "the points of c.csv are not the curves on epoch x lr / 0.01"
import csv, glob, math, sys
pts = list(csv.DictReader(open("c.csv")))
assert {p["series"] for p in pts} == {"baseline", "clipped"}, pts[0]
for p in pts:
    want = int(p["epoch"]) * float(p["optim.lr"]) / 0.01
    assert math.isclose(float(p["x"]), want, rel_tol=1e-9), p
    curve = {r["epoch"]: r for r in csv.DictReader(open("sw/curves/%s.csv" % p["id"]))}
    assert math.isclose(float(p["value"]), float(curve[p["epoch"]][p["column"]]), rel_tol=1e-8), p
# the lr 1e-3 runs span a tenth of the lr 1e-2 runs' axis
xs = {lr: sorted({float(p["x"]) for p in pts if p["optim.lr"] == lr}) for lr in ("0.01", "0.001")}
assert xs["0.01"] == [1, 2, 3, 4] and [round(x, 9) for x in xs["0.001"]] == [0.1, 0.2, 0.3, 0.4], xs
PY
# --x epoch: x is the epoch; a folder with every run (no mitigation given)
"$bin" curves e.png --col train_loss --csv e.csv sw 2> /dev/null
python3 -c "
import csv
pts = list(csv.DictReader(open('e.csv')))
assert len(pts) == 32 and all(p['x'] == p['epoch'] for p in pts), pts[:2]
" || fail "--x epoch: x is not the epoch"
cmp -s c.png e.png && fail "two different figures came out the same"
# --x steps: x is the optimizer steps at the epoch's end (the curve's
# steps column), the same for both mitigations of a seed and rate
"$bin" curves s.png --col eval_sse --x steps --csv s.csv sw 2> /dev/null
python3 -c "
import csv, math
pts = list(csv.DictReader(open('s.csv')))
assert len(pts) == 32, len(pts)
for p in pts:
    curve = {r['epoch']: r for r in csv.DictReader(open('sw/curves/%s.csv' % p['id']))}
    assert math.isclose(float(p['x']), float(curve[p['epoch']]['steps']), rel_tol=1e-9), p
    assert float(p['x']) > int(p['epoch']), p  # more than a step an epoch
" || fail "--x steps: x is not the curve's steps"
cmp -s s.png e.png && fail "--x steps drew the epoch figure"
# refusals: one line, exit 2 (usage) or 3 (data), no file written
refused() { # WANT ARGS...
  local want=$1; shift
  rm -f bad.png bad.csv
  if "$bin" curves "$@" > /dev/null 2> err.txt; then fail "accepted: $*"; fi
  [ "$(wc -l < err.txt)" -eq 1 ] || fail "not one line: $(cat err.txt)"
  grep -q -- "$want" err.txt || fail "'$*': message lacks '$want': $(cat err.txt)"
  [ ! -e bad.png ] && [ ! -e bad.csv ] || fail "'$*' wrote a file"
}
refused "has no results.csv" bad.png --col eval_sse --csv bad.csv nowhere
refused "has no run of mitigation bogus" bad.png --col eval_sse sw:bogus
refused "has no column 'bogus'" bad.png --col eval_sse,bogus --csv bad.csv sw
refused "expected epoch, lr-epochs or steps" bad.png --col eval_sse --x step sw
refused "expected a .png file name" bad.txt --col eval_sse sw
refused "needs OUT.png, --col COL" bad.png sw
refused "unknown option '--bogus'" bad.png --col eval_sse --bogus sw
refused "expected DIR or DIR:MITIGATION" bad.png --col eval_sse sw:
# a folder before its report (runs/ only) draws the same figure from
# runs/ID/metrics.csv; a run with neither file is refused
mv sw/curves sw/curves.kept
"$bin" curves r.png --col eval_sse,grad_norm_median --x lr-epochs --csv r.csv \
  sw:baseline sw:clipped 2> /dev/null || fail "curves from runs/ only"
cmp -s r.csv c.csv || fail "the points from runs/ differ from those from curves/"
id=$(ls sw/runs | head -1)
rm sw/runs/"$id"/metrics.csv
refused "sw/curves/$id.csv is missing (run 'vaebench report sw')" bad.png --col eval_sse sw
echo "curves: ok"
