#!/usr/bin/env bash
# rhvae-resnet-continue.sh [--commit-every MIN] [--min-finite K] [--controls]
#                          [--epochs N --only LIST]: issue 16
# item 3, fixes told apart from delays. Every mitigation of the ResNet
# study (results/rhvae-resnet-study) whose 10 seeds have rows and that
# stayed finite for 25 epochs in at least K of them (default 8) goes on to
# 50 epochs: configs/rhvae-resnet-study.ini with train.epochs = 50, only
# those mitigations (sweep --only), each cell continuing the study's run
# of the same seed (sweep --continue-from: the run folder copied and
# trained on from its final checkpoint; the rows are those of fresh
# 50-epoch runs; a seed that died dies again from its last epoch
# checkpoint). The controls (control-*: the VAE and the HVAE, no
# mitigations) go on to 50 epochs only with --controls, after the
# mitigations: they tell overfitting (every model's held-out NLL rising
# after its best epoch) from a mitigation's own decline.
# Lowest priority, resumable, committed like the study
# (scripts/long-sweep.sh). Cells run seed by seed, those whose 25-epoch
# run is in the study's runs/ first (sweep orders them so: runs/ is not
# committed, so a fresh clone has only the runs it made itself; a cell
# without one trains its 50 epochs from the start, the same row at twice
# the cost).
# --epochs N --only LIST (N > 50): the next step for the mitigations that
# are still candidates at 50 epochs (LIST, e.g. accumulate-4x16,lr-1e-5):
# results/rhvae-resnet-study-50's runs continued to N epochs into
# results/rhvae-resnet-study-N, the same way.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${VAEBENCH_BUILD:-$repo/build}"
src=results/rhvae-resnet-study
out=results/rhvae-resnet-study-50
every=0 min=8 controls=0 epochs=50 list=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --commit-every) every=${2:?--commit-every needs minutes}; shift 2 ;;
    --min-finite) min=${2:?--min-finite needs a count}; shift 2 ;;
    --controls) controls=1; shift ;;
    --epochs) epochs=${2:?--epochs needs a count}; shift 2
      [[ "$epochs" =~ ^[1-9][0-9]*$ ]] && ((epochs >= 50)) || { echo "rhvae-resnet-continue.sh: --epochs '$epochs': expected 50 or more" >&2; exit 2; } ;;
    --only) list=${2:?--only needs mitigations}; shift 2 ;;
    *) echo "rhvae-resnet-continue.sh: unknown option '$1' (expected --commit-every MIN, --min-finite K, --controls, --epochs N or --only LIST)" >&2; exit 2 ;;
  esac
done
if ((epochs > 50)); then
  [[ -n "$list" ]] || { echo "rhvae-resnet-continue.sh: --epochs $epochs needs --only LIST (the mitigations to continue past 50)" >&2; exit 2; }
  src=results/rhvae-resnet-study-50 out=results/rhvae-resnet-study-$epochs
elif [[ -n "$list" ]]; then
  echo "rhvae-resnet-continue.sh: --only goes with --epochs N > 50 (to 50 the selection is by the rule above)" >&2; exit 2
fi
cd "$repo"
[[ -f "$src/sweep.ini" ]] || { echo "rhvae-resnet-continue.sh: $src/sweep.ini is missing: expected the study's folder (scripts/rhvae-resnet-study.sh)" >&2; exit 2; }
[[ -d "$src/runs" ]] || echo "rhvae-resnet-continue.sh: $src/runs is missing (a fresh clone): every cell trains its $epochs epochs from the start"
"$build/vaebench" report "$src" > /dev/null
only=$list
[[ -n "$only" ]] || only=$(python3 - "$src/mitigations.csv" "$min" "$controls" <<'PY'
import csv, sys
keep = []
for r in csv.DictReader(open(sys.argv[1])):
    runs, nan = int(r["runs"] or 0), int(r["nan_runs"] or 0)
    if r["mitigation"].startswith("control-") != (sys.argv[3] == "1"):
        continue
    if int(r["cells"]) == 10 and runs == 10 and runs - nan >= int(sys.argv[2]):
        keep.append(r["mitigation"])
print(",".join(keep))
PY
)
if [[ -z "$only" ]]; then
  what=mitigation; ((controls)) && what=control
  echo "rhvae-resnet-continue.sh: no $what has 10 seeds with at least $min finite at 25 epochs in $src/mitigations.csv yet"
  exit 0
fi
mkdir -p "$out"
sed "s/^epochs = 25\$/epochs = $epochs/" configs/rhvae-resnet-study.ini > "$out/plan.ini"
grep -q "^epochs = $epochs\$" "$out/plan.ini" || { echo "rhvae-resnet-continue.sh: configs/rhvae-resnet-study.ini has no 'epochs = 25' line" >&2; exit 1; }
echo "rhvae-resnet-continue.sh: continuing $src to $epochs epochs: $only"
args=(); ((every > 0)) && args=(--commit-every "$every")
exec "$repo/scripts/long-sweep.sh" "$out/plan.ini" "$out" "${args[@]}" -- \
  --only "$only" --continue-from "$src" --order seeds-first
