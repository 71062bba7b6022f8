#!/usr/bin/env bash
# rhvae-resnet-study.sh [--commit-every MIN] [-- sweep options]: runs (or
# resumes) the RHVAE NaN report's study on the report's own networks,
# configs/rhvae-resnet-study.ini, into results/rhvae-resnet-study, one
# cell per core at the lowest CPU priority (scripts/long-sweep.sh). The
# study is longer than a working day (about 110 cells of up to 25 ResNet
# epochs; README, "The RHVAE NaN report"): kill it at any time and run it
# again, on this machine or on a clone, and it runs only the cells that
# have no row yet, a cell it stopped part way from that cell's last epoch
# (the study writes a resume checkpoint every epoch). rows/ is committed with the tables (small CSV files),
# so a clone resumes where the last commit stopped.
# --commit-every MIN: every MIN minutes (and at the end) rebuild the
# report and commit the folder (rows, results.csv, summary.md, curves/,
# precursors/, figures) with a commit of that folder alone, so finished
# cells never exist only on one machine. Shard the grid across machines
# with '-- --shard K/N' and join the folders with 'vaebench merge'.
# Cells run in grid order (issue 16's priority: the report's setting over
# 10 seeds with both checks, then the mitigations). Once the baseline and
# strict-guard cells have rows, pass '-- --order seeds-first' so the
# mitigations run seed by seed (every mitigation at seed 1, then at seed
# 2, ...) and a study stopped part way compares them on the same seeds.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "$repo/scripts/long-sweep.sh" configs/rhvae-resnet-study.ini \
  results/rhvae-resnet-study "$@"
