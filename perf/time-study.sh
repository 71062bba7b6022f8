#!/usr/bin/env bash
# time-study.sh [--rounds R] [--epochs E] [--out DIR]: seconds per epoch of
# every setting of the ResNet study (configs/rhvae-resnet-study.ini: the
# report's setting, its mitigations and the two controls), each measured
# alone (issue 16 item 2): one run at a time, seed 1, E epochs (default
# 1) with everything a study epoch does (training, the evaluation loss,
# the epoch's checkpoint; the held-out IS-NLL, which a run computes once at
# its end, on 1 image x 1 sample and its nll_seconds taken off), R rounds
# (default 3), the
# settings' order rotated each round so that a drift of the machine's speed
# weighs on all alike. The study's own rows record CPU seconds per epoch
# too, but they ran two at a time and, across sessions, on machines of
# different speed; these are one machine's figures, in one run.
# Writes DIR/times.csv (a row per setting and round: wall and CPU seconds
# per epoch, read from the run's own times.csv, and the run's seconds
# outside its epochs: start-up, the end's pictures and checkpoint) and
# DIR/summary.csv (per setting: the medians over rounds and their ratios
# to the baseline's), and prints the summary. A study run uses one thread
# (train.blas_threads = 1), so wall and CPU seconds per epoch agree. DIR defaults to
# results/rhvae-resnet-study-time. Run it on a quiet machine (it prints
# the idle share before it starts): another process halves what it sees.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${VAEBENCH_BUILD:-$repo/build}"
rounds=3 epochs=1 out="$repo/results/rhvae-resnet-study-time"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds=${2:?--rounds needs a count}; shift 2 ;;
    --epochs) epochs=${2:?--epochs needs a count}; shift 2 ;;
    --out) out=${2:?--out needs a folder}; shift 2 ;;
    *) echo "time-study.sh: unknown option '$1' (expected --rounds R, --epochs E or --out DIR)" >&2; exit 2 ;;
  esac
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "time-study.sh: --rounds '$rounds': expected a positive integer" >&2; exit 2; }
[[ "$epochs" =~ ^[1-9][0-9]*$ ]] || { echo "time-study.sh: --epochs '$epochs': expected a positive integer" >&2; exit 2; }
[[ -x "$build/vaebench" ]] || { echo "time-study.sh: $build/vaebench is missing (scripts/setup.sh builds it)" >&2; exit 2; }
cd "$repo"
ini=configs/rhvae-resnet-study.ini
grep -q '^epochs = 25$' "$ini" && grep -q '^train.seed = 1\.\.10$' "$ini" ||
  { echo "time-study.sh: $ini has no 'epochs = 25' or 'train.seed = 1..10' line" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed -e "s/^epochs = 25$/epochs = $epochs/" -e 's/^train\.seed = 1\.\.10$/train.seed = 1/' \
  -e 's/^\[mitigations\]$/[eval]\nnll_images = 1\nnll_samples = 1\n\n[mitigations]/' \
  "$ini" > "$tmp/plan.ini"
grep -q '^nll_images = 1$' "$tmp/plan.ini" || { echo "time-study.sh: $ini has no [mitigations] line" >&2; exit 1; }
mapfile -t names < <(sed -n '/^\[mitigations\]/,/^\[/{/^[A-Za-z0-9._-]* *=/s/ *=.*//p}' "$ini")
n=${#names[@]}
read -r _ u1 n1 s1 i1 w1 _ < /proc/stat; sleep 3; read -r _ u2 n2 s2 i2 w2 _ < /proc/stat
echo "time-study.sh: $n settings x $rounds round(s), $epochs epoch(s) each, one at a time;" \
     "CPU $(( 100 * (i2 - i1) / (u2 + n2 + s2 + i2 + w2 - u1 - n1 - s1 - i1 - w1) ))% idle before the start"
echo "mitigation,round,epochs,wall_per_epoch,cpu_per_epoch,outside_epochs" > "$tmp/times.csv"
for ((r = 0; r < rounds; r++)); do
  for ((k = 0; k < n; k++)); do
    name=${names[$(( (k + r) % n ))]}
    dir="$tmp/r$r-$name"
    "$build/vaebench" sweep "$tmp/plan.ini" --out "$dir" --jobs 1 --only "$name" -q > /dev/null
    python3 - "$dir/results.csv" "$name" "$r" "$dir" >> "$tmp/times.csv" <<'PY'
import csv, sys
rows = [x for x in csv.DictReader(open(sys.argv[1])) if x["mitigation"] == sys.argv[2]]
if len(rows) != 1 or rows[0]["status"] != "ok":
    sys.exit("time-study.sh: %s: expected one finished run in %s" % (sys.argv[2], sys.argv[1]))
x = rows[0]
e = int(x["epochs_done"])
# The epoch's own wall and CPU seconds, from the run's times.csv; what the
# run spends outside its epochs (start, the end's pictures and checkpoint;
# the NLL is taken off) is its own column: it was 24 s of a 44 s RHVAE run,
# mostly the samples' pictures, and is paid once per run, not per epoch.
ep = [y for y in csv.DictReader(open("%s/runs/%s/times.csv" % (sys.argv[4], x["id"])))]
if len(ep) != e:
    sys.exit("time-study.sh: %s: %d epochs in times.csv, %d in results.csv" % (sys.argv[2], len(ep), e))
wall = sum(float(y["seconds"]) for y in ep)
cpu = sum(float(y["cpu_seconds"]) for y in ep)
print("%s,%s,%d,%.3f,%.3f,%.3f" % (sys.argv[2], int(sys.argv[3]) + 1, e, wall / e, cpu / e,
                                   float(x["seconds"]) - float(x["nll_seconds"]) - wall))
PY
    rm -rf "$dir"
  done
done
python3 - "$tmp/times.csv" "$tmp/summary.csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
names = list(dict.fromkeys(r["mitigation"] for r in rows))
med = {m: [statistics.median(float(r[k]) for r in rows if r["mitigation"] == m)
           for k in ("wall_per_epoch", "cpu_per_epoch", "outside_epochs")] for m in names}
base = med["baseline"]
with open(sys.argv[2], "w") as f:
    f.write("mitigation,rounds,wall_per_epoch,cpu_per_epoch,wall_vs_baseline,cpu_vs_baseline,"
            "outside_epochs\n")
    for m in names:
        w, c, o = med[m]
        f.write("%s,%d,%.2f,%.2f,%.3f,%.3f,%.2f\n" % (m, sum(r["mitigation"] == m for r in rows),
                                                     w, c, w / base[0], c / base[1], o))
PY
mkdir -p "$out"
cp "$tmp/times.csv" "$out/times.csv.tmp" && mv "$out/times.csv.tmp" "$out/times.csv"
cp "$tmp/summary.csv" "$out/summary.csv.tmp" && mv "$out/summary.csv.tmp" "$out/summary.csv"
column -s, -t "$out/summary.csv"
echo "time-study.sh: wrote $out/times.csv and $out/summary.csv"
