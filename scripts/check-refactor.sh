#!/usr/bin/env bash
# check-refactor.sh: the behaviour baseline of issue 14. Runs a fixed set of
# commands with a reference vaebench (built from VB_REF_COMMIT, default
# 7fe3e44, the commit before the bench/ redesign) and with the binary under
# test, then compares what they wrote byte for byte: result rows and tables
# (CSV, with the wall-time columns dropped), metrics.csv, precursors, every
# checkpoint and dump (.safetensors), summary.md, the PNGs and the commands'
# output (numbers followed by "s" masked). Ignored: times.csv, meta.json,
# machine.json's "written" and "git_commit" lines, the wall-time cells of
# summary.md's Mitigations table.
#
# usage: scripts/check-refactor.sh [NEW_BIN]     (default build/vaebench)
# env:   VB_CHECK_DIR   work folder (default /tmp/vb-check); the reference
#                       outputs are kept in $VB_CHECK_DIR/ref and reused
#        VB_REF_COMMIT  commit of the reference build (default 7fe3e44)
#        VB_REF_BIN     a reference vaebench to use instead of building one
#        VB_CHECK_COMPARE_ONLY=1  only compare the outputs already there
# Needs ./data (MNIST) in the repository root. Exit 0 when all is equal.
# The commands (all run from the repository root, into the same absolute
# folder so that config text embedded in checkpoints is the same):
#  1. quick:  vaebench sweep configs/quick.ini --jobs 2  (42 VAE cells)
#  2. mitig:  a 2x2 grid x 3 mitigations on 1,000 images, run as two
#             shards, then `merge` and `report` (statistics, mitigation
#             aggregates, merge)
#  3. rhvae:  one RHVAE MLP-proxy cell (issue-132 setup, 2,000 images,
#             3 epochs, resume checkpoints every 20 steps)
#  4. nan:    the VAE at lr 10 (cheap guard, auto-replay in anomaly mode,
#             precursors), then `replay RUN` and
#             `replay RUN --anomaly --dump FILE`
#  5. anom:   the same NaN run in anomaly mode with skip_nonfinite off and
#             a strict grad-norm clip
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
new_bin=$(realpath "${1:-build/vaebench}")
dir=${VB_CHECK_DIR:-/tmp/vb-check}
ref_commit=${VB_REF_COMMIT:-7fe3e44}
work=$dir/work
export OPENBLAS_NUM_THREADS=1

[ -e data ] || { echo "check-refactor: ./data (MNIST) missing" >&2; exit 3; }

build_ref() {
	local src=$dir/ref-src bld=$dir/ref-build
	if [ ! -x "$bld/vaebench" ]; then
		rm -rf "$src" && mkdir -p "$src"
		git archive "$ref_commit" | tar -x -C "$src"
		cmake -S "$src" -B "$bld" -DCMAKE_BUILD_TYPE=Release \
			-DVB_TESTS=OFF >/dev/null
		cmake --build "$bld" -j2 --target vaebench \
			>/dev/null
	fi
	echo "$bld/vaebench"
}

# run_all BIN: every command above into $work (emptied first).
run_all() {
	local bin=$1 small
	rm -rf "$work" && mkdir -p "$work"
	small=(--set data.train_end=1000 --set data.eval_end=200)
	"$bin" sweep configs/quick.ini --out "$work/quick" --jobs 2 -q \
		>"$work/quick.out" 2>&1
	cat >"$work/mitig.ini" <<'EOF'
[data]
train_end = 1000
eval_end = 200
[model]
recon = bce
[train]
epochs = 2
eval_batch = 100
[sweep]
optim.lr = 1e-3, 1
train.seed = 1..2
[mitigations]
baseline =
clip = optim.clip=norm optim.clip_max=5
skip = train.skip_nonfinite=true
EOF
	"$bin" sweep "$work/mitig.ini" --out "$work/mitig1" --shard 1/2 \
		--jobs 2 -q >"$work/mitig1.out" 2>&1
	"$bin" sweep "$work/mitig.ini" --out "$work/mitig2" --shard 2/2 \
		--jobs 2 -q >"$work/mitig2.out" 2>&1
	"$bin" merge "$work/merged" "$work/mitig1" "$work/mitig2" \
		>"$work/merge.out" 2>&1
	"$bin" report "$work/merged" >"$work/report.out" 2>&1
	"$bin" train -q --out "$work/runs" --name rhvae \
		--set model.kind=rhvae --set model.recon=mse \
		--set rhvae.n_lf=1 --set rhvae.eps_lf=0.001 \
		--set rhvae.beta_zero=0.3 --set rhvae.temperature=1.5 \
		--set rhvae.regularization=0.001 --set data.train_end=2000 \
		--set data.eval_split=train --set data.eval_begin=10000 \
		--set data.eval_end=10500 --set train.epochs=3 \
		--set train.batch=64 --set train.eval_batch=64 \
		--set optim.lr=1e-4 --set run.checkpoint_every=20 \
		>"$work/rhvae.out" 2>&1
	"$bin" train --out "$work/runs" --name nan "${small[@]}" \
		--set model.recon=bce --set optim.lr=10 --set train.epochs=2 \
		--set run.checkpoint_every=5 --set run.progress=off \
		>"$work/nan.out" 2>&1
	"$bin" replay "$work/runs/nan" -q >"$work/replay.out" 2>&1
	"$bin" replay "$work/runs/nan" --anomaly -q \
		--dump "$work/nan-dump.safetensors" \
		>"$work/replay-anomaly.out" 2>&1
	"$bin" train -q --out "$work/runs" --name anom "${small[@]}" \
		--set model.recon=bce --set optim.lr=10 --set train.epochs=2 \
		--set guard.mode=anomaly --set optim.clip=norm \
		--set optim.clip_max=1 --set train.accumulate=2 \
		>"$work/anom.out" 2>&1
}

# compare REF NEW: prints every difference; returns 1 when there is one.
compare() {
	python3 - "$1" "$2" <<'EOF'
import csv, io, os, re, sys
ref, new = sys.argv[1], sys.argv[2]
TIME_COLS = {"seconds", "seconds_mean", "seconds_per_epoch",
             "time_vs_baseline", "images_per_second", "nll_seconds"}
SKIP = {"times.csv", "meta.json"}
def files(top):
    out = set()
    for d, _, fs in os.walk(top):
        for f in fs:
            out.add(os.path.relpath(os.path.join(d, f), top))
        for f in _:
            if os.path.islink(os.path.join(d, f)):
                out.add(os.path.relpath(os.path.join(d, f), top))
    return out
def norm_csv(data):
    rows = list(csv.reader(io.StringIO(data.decode())))
    if not rows:
        return rows
    keep = [i for i, h in enumerate(rows[0]) if h not in TIME_COLS]
    return [[r[i] if i < len(r) else None for i in keep] for r in rows]
def norm_text(data, name):
    t = data.decode(errors="replace")
    if name.endswith(".json"):
        t = "\n".join(l for l in t.splitlines()
                      if '"written"' not in l and '"git_commit"' not in l)
    if name.endswith(".md"):
        # the Mitigations table ends in seconds, seconds per epoch and
        # the time ratio to the baseline (wall time): dropped
        t = "\n".join("|".join(l.split("|")[:-4]) if
                      re.search(r"[0-9.]+x \|$", l) else l
                      for l in t.splitlines())
    if name.endswith(".out"):
        t = re.sub(r"[0-9.]+ ?s\b", "#s", t)
        t = re.sub(r",[0-9]+\.[0-9]{3},", ",#,", t)
        t = re.sub(r"[0-9.]+ img/s", "# img/s", t)
        t = t.replace(new, ref)
    return t
a, b = files(ref), files(new)
bad = 0
for f in sorted(a ^ b):
    print("only in", "ref" if f in a else "new", f); bad += 1
n = 0
for f in sorted(a & b):
    base = os.path.basename(f)
    if base in SKIP:
        continue
    if os.path.islink(os.path.join(ref, f)):
        n += 1
        if os.readlink(os.path.join(ref, f)) != \
           os.readlink(os.path.join(new, f)):
            print("differs (link):", f); bad += 1
        continue
    x = open(os.path.join(ref, f), "rb").read()
    y = open(os.path.join(new, f), "rb").read()
    n += 1
    if base.endswith(".csv"):
        same = norm_csv(x) == norm_csv(y)
    elif base.endswith((".json", ".out", ".md")):
        same = norm_text(x, base) == norm_text(y, base)
    else:
        same = x == y
    if not same:
        print("differs:", f); bad += 1
print(f"check-refactor: {n} files compared, {bad} differences")
sys.exit(1 if bad else 0)
EOF
}

if [ -n "${VB_CHECK_COMPARE_ONLY:-}" ]; then  # compare the last runs again
	compare "$dir/ref" "$dir/new"
	exit
fi
if [ ! -d "$dir/ref" ]; then
	ref_bin=${VB_REF_BIN:-$(build_ref)}
	echo "check-refactor: reference run with $ref_bin"
	run_all "$ref_bin"
	mv "$work" "$dir/ref"
fi
echo "check-refactor: run with $new_bin"
run_all "$new_bin"
rm -rf "$dir/new"
mv "$work" "$dir/new"
compare "$dir/ref" "$dir/new"
