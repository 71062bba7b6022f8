#!/usr/bin/env bash
# rhvae-issue16.sh [--commit-every MIN] [--from STEP]: all of issue 16's
# sweeps on the report's ResNets, in the issue's order of priority, each a
# resumable sweep at the lowest CPU priority whose folder is committed
# every MIN minutes (default 30) and when it ends (scripts/long-sweep.sh):
#   study      items 1-2: the report's setting and the mitigations, 10
#              seeds (scripts/rhvae-resnet-study.sh, seed by seed)
#   continue   item 3: the mitigations finite in >= 8 of 10 seeds on to
#              50 epochs (scripts/rhvae-resnet-continue.sh)
#   notebook   item 5: the tutorial as shipped, 5 seeds, and the two
#              mitigations chosen for it (configs/rhvae-tutorial-seeds.ini)
#   trigger    item 4: init seed x data-order seed 3 x 3, with and without
#              the last partial batch (configs/rhvae-resnet-trigger.ini)
#   map        item 6: lr x batch x 3 seeds (configs/map-rhvae-resnet.ini)
#   controls   beyond the issue: item 3 for the two controls, the VAE and
#              the HVAE, as a reference for overfitting
#              (rhvae-resnet-continue.sh --controls)
#   long       beyond the issue: the two mitigations still standing at 50
#              epochs, accumulation 4 x 16 and lr 1e-5 (whose gradient norm
#              climbs), on to 100 (rhvae-resnet-continue.sh --epochs 100)
# A step whose sweep has all its rows ends at once (its report rebuilt), so
# running this again after a stop, here or on a clone, goes on where the
# committed rows end; --from STEP skips the steps before STEP. The study's
# run folders (runs/, not committed) stay on the machine for the
# continuations; on a fresh clone those train from the start.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
every=30 from=study
steps=(study continue notebook trigger map controls long)
while [[ $# -gt 0 ]]; do
  case "$1" in
    --commit-every) every=${2:?--commit-every needs minutes}; shift 2
      [[ "$every" =~ ^[1-9][0-9]*$ ]] || { echo "rhvae-issue16.sh: --commit-every '$every': expected a positive number of minutes" >&2; exit 2; } ;;
    --from) from=${2:?--from needs a step}; shift 2 ;;
    *) echo "rhvae-issue16.sh: unknown option '$1' (expected --commit-every MIN or --from STEP)" >&2; exit 2 ;;
  esac
done
start=-1
for i in "${!steps[@]}"; do [[ "${steps[$i]}" == "$from" ]] && start=$i; done
((start >= 0)) || { echo "rhvae-issue16.sh: --from '$from': expected one of ${steps[*]}" >&2; exit 2; }
cd "$repo"
s="$repo/scripts"
for ((i = start; i < ${#steps[@]}; i++)); do
  step=${steps[$i]}
  echo "rhvae-issue16.sh: step $step ($(date -u +%FT%TZ))"
  case $step in
    study) "$s/rhvae-resnet-study.sh" --commit-every "$every" -- --order seeds-first ;;
    continue) "$s/rhvae-resnet-continue.sh" --commit-every "$every" ;;
    notebook) "$s/long-sweep.sh" configs/rhvae-tutorial-seeds.ini \
                results/rhvae-tutorial-seeds --commit-every "$every" ;;
    trigger) "$s/long-sweep.sh" configs/rhvae-resnet-trigger.ini \
               results/rhvae-resnet-trigger --commit-every "$every" ;;
    controls) "$s/rhvae-resnet-continue.sh" --commit-every "$every" --controls ;;
    map) "$s/long-sweep.sh" configs/map-rhvae-resnet.ini \
           results/map-rhvae-resnet --commit-every "$every" ;;
    long) "$s/rhvae-resnet-continue.sh" --commit-every "$every" \
            --epochs 100 --only accumulate-4x16,lr-1e-5 ;;
  esac
done
echo "rhvae-issue16.sh: every step done ($(date -u +%FT%TZ))"
