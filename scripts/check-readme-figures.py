#!/usr/bin/env python3
"""Check figures quoted in README.md against the committed result tables.

Each check below is one figure of README's sections "Failure-mode studies"
and "The RHVAE NaN report (issue 132)" (its section 6 too, the ResNet
study, as far as its rows go): the README phrase that quotes it,
the CSV it comes from, a row selector, a column (or a small computation over
the selected rows) and the value as README writes it. The check fails if the
phrase is not in README (the text changed: update the check with it) or if
the value computed from the CSV, rounded to the precision README writes,
differs from the quoted value. The quoted value must appear in the phrase,
so editing the number in README without editing this list fails too.

Standard library only, no build needed; reads a few small CSVs.
Usage: scripts/check-readme-figures.py [REPO_ROOT]   (exit 0 = all match)
"""
import csv
import math
import os
import statistics
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..")
R = "results/"
SEEDS = R + "rhvae-issue132/results.csv"
MLP = R + "rhvae-issue132-mlp/results.csv"
MIT = R + "rhvae-issue132-mitigations/results.csv"
MITS = R + "rhvae-issue132-mitigations/mitigations.csv"
RMIT = R + "rhvae-issue132-resnet-mitigations/results.csv"
MAP = R + "map-rhvae-mlp/results.csv"
IA = R + "study-init-activation/results.csv"
BN = R + "study-batchnorm/results.csv"
CN = R + "study-batchnorm-convnet/results.csv"
PP = R + "study-preprocess/results.csv"
EP = R + "study-eps-placement/results.csv"
ST = R + "rhvae-resnet-study/results.csv"
FIX = R + "rhvae-resnet-study/fixes.csv"

_cache = {}


def rows(path):
    if path not in _cache:
        with open(os.path.join(ROOT, path), newline="") as f:
            _cache[path] = list(csv.DictReader(f))
    return _cache[path]


def sel(path, **where):
    """Rows of path whose columns equal the given strings (dots as __)."""
    out = []
    for r in rows(path):
        if all(r[k.replace("__", ".")] == v for k, v in where.items()):
            out.append(r)
    return out


def one(path, col, **where):
    rs = sel(path, **where)
    if len(rs) != 1:
        raise ValueError("%s %s: %d rows match, want 1" % (path, where, len(rs)))
    return float(rs[0][col])


def txt(path, col, **where):
    """The one row's column as written (for text columns)."""
    rs = sel(path, **where)
    if len(rs) != 1:
        raise ValueError("%s %s: %d rows match, want 1" % (path, where, len(rs)))
    return rs[0][col]


def fl(x):
    try:
        return float(x)
    except ValueError:
        return float("nan")


def med(values):
    return statistics.median(fl(v) for v in values)


def wilson_low(k, n, z=1.959963984540054):
    """Lower end of the 95 % Wilson score interval of k events in n."""
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 0.0 if k == 0 else c - h


def lref(path, baseline):  # the "learned" reference: median best-epoch NLL of the baseline
    return med(r["nll_best"] for r in sel(path, mitigation=baseline))


def bn_gmax(train_end, f):
    """study-batchnorm, finite runs without running statistics, eps > 0:
    f of grad_norm_max over epochs 2.. of their curves."""
    v = []
    for r in sel(BN, data__train_end=train_end):
        if r["mitigation"] in ("no_running_stats", "no_running_stats_eps1e-2"):
            v += [fl(c["grad_norm_max"]) for c in
                  rows(R + "study-batchnorm/curves/%s.csv" % r["id"])[1:]]
    return f(v)


def healthy(r):  # the old rule: finite and final train loss under 1,000
    return r["status"] == "ok" and fl(r["final_train_loss"]) < 1000


def sec_per_epoch(path):
    return statistics.median(
        float(r["seconds"]) / float(r["epochs_done"]) for r in rows(path))


def eval_at(r, epoch):
    return float(r["eval_losses"].split(";")[epoch - 1])


# (README phrase, source for the message, value as quoted, how to compute it)
def seed_steps(phrase, mitigation, steps):
    """Checks of the first_step of one study mitigation's seeds, as README
    lists them in phrase: steps maps seed -> the step as README writes it."""
    return [(phrase, "%s %s seed %d first_step" % (ST, mitigation, seed), step,
             lambda seed=seed: one(ST, "first_step", mitigation=mitigation,
                                   train__seed=str(seed)))
            for seed, step in steps.items()]


CHECKS = [
    # section 1, the ResNets
    ("median 15, steps 1,454 to 2,585", SEEDS + " first_epoch median, pythae",
     "15", lambda: statistics.median(
         fl(r["first_epoch"]) for r in sel(SEEDS, train__nan_check="pythae")
         if r["status"] == "nan")),
    ("median 15, steps 1,454 to 2,585", SEEDS + " min first_step",
     "1454", lambda: min(fl(r["first_step"]) for r in sel(SEEDS) if r["status"] == "nan"
                       and r["train.nan_check"] == "pythae")),
    ("median 15, steps 1,454 to 2,585", SEEDS + " max first_step",
     "2585", lambda: max(fl(r["first_step"]) for r in sel(SEEDS) if r["status"] == "nan")),
    ("-17.0 at epoch 8", SEEDS + " seed 7 best_eval_loss",
     "-17.0", lambda: one(SEEDS, "best_eval_loss", train__seed="7")),
    ("it ends at -5.1", SEEDS + " seed 7 final_eval_loss",
     "-5.1", lambda: one(SEEDS, "final_eval_loss", train__seed="7")),
    ("(2,067, 1,453 and 1,866)", SEEDS + " strict seed 1 first_step",
     "2067", lambda: one(SEEDS, "first_step", train__seed="1", train__nan_check="strict")),
    ("(2,067, 1,453 and 1,866)", SEEDS + " strict seed 6 first_step",
     "1866", lambda: one(SEEDS, "first_step", train__seed="6", train__nan_check="strict")),
    ("ends at 27.7 after 4.3e15 in epoch 9", SEEDS + " seed 7 final_train_loss",
     "27.7", lambda: one(SEEDS, "final_train_loss", train__seed="7")),
    ("its mean train loss jumps to 4.3e15", R + "rhvae-issue132/curves/dc6206cbda251a72.csv epoch 9 train_loss",
     "4.3e15", lambda: one(R + "rhvae-issue132/curves/dc6206cbda251a72.csv", "train_loss", epoch="9")),
    ("largest gradient norm 3.0e9", R + "rhvae-issue132/curves/dc6206cbda251a72.csv epoch 9 grad_norm_max",
     "3.0e9", lambda: one(R + "rhvae-issue132/curves/dc6206cbda251a72.csv", "grad_norm_max", epoch="9")),
    # section 1, the proxy
    ("about 17x cheaper", "median seconds/epochs_done, seeds vs mlp",
     "17", lambda: sec_per_epoch(SEEDS) / sec_per_epoch(MLP)),
    ("median 7.7 s an epoch", MLP + " median seconds/epochs_done",
     "7.7", lambda: sec_per_epoch(MLP)),
    ("132 s, `seconds` / `epochs_done`", SEEDS + " median seconds/epochs_done",
     "132", lambda: sec_per_epoch(SEEDS)),
    ("same step (2,626) on the loss", MLP + " strict seed 5 first_step",
     "2626", lambda: one(MLP, "first_step", train__seed="5", train__nan_check="strict")),
    ("three (seeds 1, 6, 7: final train loss 713, 1.07 and 637)",
     MLP + " pythae rows passing the old rule", "3",
     lambda: sum(healthy(r) for r in sel(MLP, train__nan_check="pythae"))),
    ("(seeds 2 and 10: 5.9e5 and 2,506)", MLP + " seed 2 final_train_loss",
     "5.9e5", lambda: one(MLP, "final_train_loss", train__seed="2", train__nan_check="pythae")),
    ("(seeds 2 and 10: 5.9e5 and 2,506)", MLP + " seed 10 final_train_loss",
     "2506", lambda: one(MLP, "final_train_loss", train__seed="10", train__nan_check="pythae")),
    ("final -8.9 to 60.3", MLP + " finite rows min final_eval_loss",
     "-8.9", lambda: min(fl(r["final_eval_loss"]) for r in sel(MLP, status="ok"))),
    ("final -8.9 to 60.3", MLP + " finite rows max final_eval_loss",
     "60.3", lambda: max(fl(r["final_eval_loss"]) for r in sel(MLP, status="ok"))),
    # section 2
    ("in 24 of those 32", "seeds+mlp+map rows with origin second_order_backward",
     "24", lambda: sum(r["origin_phase"].startswith("second_order_backward")
                     for p in (SEEDS, MLP, MAP) for r in rows(p) if r["status"] != "ok")),
    ("`bad_samples` = 1 in 25 of the 32", "seeds+mlp+map bad_samples == 1",
     "25", lambda: sum(r["bad_samples"] == "1"
                     for p in (SEEDS, MLP, MAP) for r in rows(p) if r["status"] != "ok")),
    ("(median 818; `lead_time` of the 9 runs", SEEDS + " pythae lead_time median",
     "818", lambda: statistics.median(fl(r["lead_time"]) for r in sel(SEEDS, train__nan_check="pythae")
                                    if r["status"] == "nan")),
    ("loss -5.24 -> 1.13e5 -> 3.7e26", R + "rhvae-issue132-mlp/precursors/2cc9a6be1d17a79e.csv step 2995 loss",
     "-5.24", lambda: one(R + "rhvae-issue132-mlp/precursors/2cc9a6be1d17a79e.csv", "loss", step="2995")),
    ("loss -5.24 -> 1.13e5 -> 3.7e26", R + "rhvae-issue132-mlp/precursors/2cc9a6be1d17a79e.csv step 2996 loss",
     "1.13e5", lambda: one(R + "rhvae-issue132-mlp/precursors/2cc9a6be1d17a79e.csv", "loss", step="2996")),
    ("max |z| 3.2 -> 1,984 -> 1.7e14", R + "rhvae-issue132-mlp/precursors/2cc9a6be1d17a79e.csv step 2995 max_abs_z",
     "3.2", lambda: one(R + "rhvae-issue132-mlp/precursors/2cc9a6be1d17a79e.csv", "max_abs_z", step="2995")),
    ("the loss goes 28 -> 76 -> 7.9e20 -> NaN", R + "rhvae-issue132/precursors/dfd63c840a88466c.csv step 2067 loss",
     "7.9e20", lambda: one(R + "rhvae-issue132/precursors/dfd63c840a88466c.csv", "loss", step="2067")),
    ("climbs from 37 (epoch 1) to 94 (epoch 7)", R + "rhvae-issue132/curves/6faab9c6e395fe41.csv epoch 7 grad_norm_median",
     "94", lambda: one(R + "rhvae-issue132/curves/6faab9c6e395fe41.csv", "grad_norm_median", epoch="7")),
    ("epoch 13 already had a 9.8e5 loss spike", R + "rhvae-issue132/curves/6faab9c6e395fe41.csv epoch 13 train_loss",
     "9.8e5", lambda: one(R + "rhvae-issue132/curves/6faab9c6e395fe41.csv", "train_loss", epoch="13")),
    ("(6 of\n  its 9 cells at lr 0.1", R + "map-vae-mnist/results.csv lr 0.1 non-finite",
     "6", lambda: sum(r["status"] != "ok" for r in sel(R + "map-vae-mnist/results.csv", optim__lr="0.1"))),
    ("(7 of 9\n  cells fail at lr 0.1", R + "map-vae-fashion/results.csv lr 0.1 non-finite",
     "7", lambda: sum(r["status"] != "ok" for r in sel(R + "map-vae-fashion/results.csv", optim__lr="0.1"))),
    ("fails at the second step (`first_step` = 2) for batches 16 and 64", MAP + " lr 0.01 batch 16/64 first_step max",
     "2", lambda: max(fl(r["first_step"]) for r in sel(MAP, optim__lr="0.01") if r["train.batch"] != "256")),
    ("(seed 2: final eval loss\n  -22.1, final train loss 7.0", MAP + " lr 0.01 b256 seed 2 final_eval_loss",
     "-22.1", lambda: one(MAP, "final_eval_loss", optim__lr="0.01", train__batch="256", train__seed="2")),
    ("seed 1: 6.8 and 42.9", MAP + " lr 0.01 b256 seed 1 final_train_loss",
     "42.9", lambda: one(MAP, "final_train_loss", optim__lr="0.01", train__batch="256", train__seed="1")),
    # section 3, the proxy's mitigation table
    ("mean eval loss there 1.52", MITS + " baseline eval_loss_at_epoch",
     "1.52", lambda: one(MITS, "eval_loss_at_epoch", mitigation="baseline")),
    ("| **batch 16** | 0/5 | 4/5 | **-8.45** |", MITS + " batch-16 eval_loss_at_epoch",
     "-8.45", lambda: one(MITS, "eval_loss_at_epoch", mitigation="batch-16")),
    ("| **batch 16** | 0/5 | 4/5 | **-8.45** |", MIT + " batch-16 old-rule healthy",
     "4", lambda: sum(healthy(r) for r in sel(MIT, mitigation="batch-16"))),
    ("| accumulate 4 x 16 | 0/5 | 5/5 | -9.56 |", MITS + " accumulate-4x16 eval_loss_at_epoch",
     "-9.56", lambda: one(MITS, "eval_loss_at_epoch", mitigation="accumulate-4x16")),
    ("| 0/5 | **5/5** | -1.03 |", MITS + " h-grad-clip-100 eval_loss_at_epoch",
     "-1.03", lambda: one(MITS, "eval_loss_at_epoch", mitigation="h-grad-clip-100")),
    ("| diag softplus | 1/5 | 4/5 | -12.9 |", MITS + " diag-softplus eval_loss_at_epoch",
     "-12.9", lambda: one(MITS, "eval_loss_at_epoch", mitigation="diag-softplus")),
    ("| lambda 0.01 (pythae's default) | 2/5 | 3/5 | -9.68 |", MITS + " lambda-0.01 eval_loss_at_epoch",
     "-9.68", lambda: one(MITS, "eval_loss_at_epoch", mitigation="lambda-0.01")),
    ("| **lr 1e-6** | 0/5 | 5/5 | 59.6 (final 47.3) |", MITS + " lr-1e-6 eval_loss_at_epoch",
     "59.6", lambda: one(MITS, "eval_loss_at_epoch", mitigation="lr-1e-6")),
    ("| lr 1e-5 | 0/5 | 5/5 | 2.94 (final -0.56) |", MITS + " lr-1e-5 eval_loss_at_epoch",
     "2.94", lambda: one(MITS, "eval_loss_at_epoch", mitigation="lr-1e-5")),
    ("| float64 | 0/5 | 2/5 | 0.03 |", MIT + " f64 old-rule healthy",
     "2", lambda: sum(healthy(r) for r in sel(MIT, mitigation="f64"))),
    ("| cosine decay | 0/5 | 3/5 | -4.30 |", MIT + " cosine old-rule healthy",
     "3", lambda: sum(healthy(r) for r in sel(MIT, mitigation="cosine"))),
    ("survivors blow up (final train loss 1.0e3 to 2.2e6)", MIT + " clip-norm-* finite max final_train_loss",
     "2.2e6", lambda: max(fl(r["final_train_loss"]) for r in rows(MIT)
                        if r["mitigation"].startswith("clip-norm") and r["status"] == "ok")),
    ("as many deaths (epochs 15 to 20)", MIT + " clip-norm-* min first_epoch",
     "15", lambda: min(fl(r["first_epoch"]) for r in rows(MIT)
                     if r["mitigation"].startswith("clip-norm") and r["status"] == "nan")),
    ("1.9x the time per epoch", MITS + " batch-16 time_vs_baseline",
     "1.9", lambda: one(MITS, "time_vs_baseline", mitigation="batch-16")),
    ("far above the baseline at epoch 5 (-5.2 to -2.9)", MIT + " baseline eval at epoch 5, min",
     "-5.2", lambda: min(eval_at(r, 5) for r in sel(MIT, mitigation="baseline"))),
    ("far above the baseline at epoch 5 (-5.2 to -2.9)", MIT + " baseline eval at epoch 5, max",
     "-2.9", lambda: max(eval_at(r, 5) for r in sel(MIT, mitigation="baseline"))),
    # section 4
    ("its final train loss is 3.7e6", RMIT + " clip-norm-5 final_train_loss",
     "3.7e6", lambda: one(RMIT, "final_train_loss", mitigation="clip-norm-5")),
    ("from its best -16.5\n(epoch 8) to 58.2", RMIT + " clip-norm-5 best_eval_loss",
     "-16.5", lambda: one(RMIT, "best_eval_loss", mitigation="clip-norm-5")),
    ("at epoch 11 it is -6.2", RMIT + " clip-norm-5 eval at epoch 11",
     "-6.2", lambda: eval_at(sel(RMIT, mitigation="clip-norm-5")[0], 11)),
    # compute table
    ("| 32 and 26 core-min in all |", R + "map-vae-mnist/results.csv sum seconds / 60",
     "32", lambda: sum(float(r["seconds"]) for r in rows(R + "map-vae-mnist/results.csv")) / 60),
    ("| 32 and 26 core-min in all |", R + "map-vae-fashion/results.csv sum seconds / 60",
     "26", lambda: sum(float(r["seconds"]) for r in rows(R + "map-vae-fashion/results.csv")) / 60),
    ("| 18 / 18 | 42 min on ~1 core |", MAP + " sum seconds / 60",
     "42", lambda: sum(float(r["seconds"]) for r in rows(MAP)) / 60),
    ("| 20 to 59 core-min a cell", SEEDS + " max seconds / 60",
     "59", lambda: max(float(r["seconds"]) for r in rows(SEEDS)) / 60),
    ("| 0.4 to 7.7 core-min a cell (median 1.8) |", MIT + " median seconds / 60",
     "1.8", lambda: statistics.median(float(r["seconds"]) for r in rows(MIT)) / 60),
    ("x 124 s, the seconds per epoch", RMIT + " clip-norm-5 seconds/epochs_done",
     "124", lambda: one(RMIT, "seconds", mitigation="clip-norm-5") / 25),
    # the ResNet study (issue 16), README section 6
    ("**Item 1, the baseline, is complete: 10 of 10 seeds hit NaN**", ST + " baseline runs",
     "10", lambda: len(sel(ST, mitigation="baseline"))),
    ("**Item 1, the baseline, is complete: 10 of 10 seeds hit NaN**", ST + " baseline runs that hit NaN",
     "10", lambda: sum(r["status"] in ("nan", "inf") for r in sel(ST, mitigation="baseline"))),
    ("(95 % Wilson interval 0.72-1.00)", ST + " Wilson lower bound of 10/10",
     "0.72", lambda: wilson_low(sum(r["status"] in ("nan", "inf") for r in sel(ST, mitigation="baseline")),
                                len(sel(ST, mitigation="baseline")))),
    ("at epochs 11-18 (steps 1,689-2,814,", ST + " baseline min first_epoch",
     "11", lambda: min(fl(r["first_epoch"]) for r in sel(ST, mitigation="baseline"))),
    ("at epochs 11-18 (steps 1,689-2,814,", ST + " baseline max first_epoch",
     "18", lambda: max(fl(r["first_epoch"]) for r in sel(ST, mitigation="baseline"))),
    ("at epochs 11-18 (steps 1,689-2,814,", ST + " baseline min first_step",
     "1,689", lambda: min(fl(r["first_step"]) for r in sel(ST, mitigation="baseline"))),
    ("at epochs 11-18 (steps 1,689-2,814,", ST + " baseline max first_step",
     "2,814", lambda: max(fl(r["first_step"]) for r in sel(ST, mitigation="baseline"))),
    ("median epoch 16): 4 end with", ST + " baseline median first_epoch",
     "16", lambda: med(r["first_epoch"] for r in sel(ST, mitigation="baseline"))),
    ("median epoch 16): 4 end with", ST + " baseline runs ended by NaN in train loss",
     "4", lambda: sum(r["pythae_error"] == "nan_loss" for r in sel(ST, mitigation="baseline"))),
    ("10; origin `rhvae.lf1.H.rho_A_rho`) and 6 with", ST + " baseline runs ended by the ValueError",
     "6", lambda: sum(r["pythae_error"] == "value_error" for r in sel(ST, mitigation="baseline"))),
    ("IS-NLL at the last finite epoch 729.2-731.6 nats", ST + " baseline min nll_last",
     "729.2", lambda: min(fl(r["nll_last"]) for r in sel(ST, mitigation="baseline"))),
    ("IS-NLL at the last finite epoch 729.2-731.6 nats", ST + " baseline max nll_last",
     "731.6", lambda: max(fl(r["nll_last"]) for r in sel(ST, mitigation="baseline"))),
    ("(best epoch\n726.9-729.3)", ST + " baseline min nll_best",
     "726.9", lambda: min(fl(r["nll_best"]) for r in sel(ST, mitigation="baseline"))),
    ("(best epoch\n726.9-729.3)", ST + " baseline max nll_best",
     "729.3", lambda: max(fl(r["nll_best"]) for r in sel(ST, mitigation="baseline"))),
    ("worst in 67 of\ntheir epochs, 0.99 expected by chance", ST + " baseline sum worst_partial_epochs",
     "67", lambda: sum(fl(r["worst_partial_epochs"]) for r in sel(ST, mitigation="baseline"))),
    ("worst in 67 of\ntheir epochs, 0.99 expected by chance", ST + " baseline sum worst_partial_expected",
     "0.99", lambda: sum(fl(r["worst_partial_expected"]) for r in sel(ST, mitigation="baseline"))),
    # the strict guard over all ten seeds, against the baseline's steps
    ("the 4\nseeds whose baseline runs end with #132's", ST + " seeds whose strict run stops at the baseline's step, all #132",
     "4", lambda: sum(one(ST, "first_step", mitigation="strict-guard", train__seed=str(k))
                      == one(ST, "first_step", mitigation="baseline", train__seed=str(k))
                      and txt(ST, "pythae_error", mitigation="baseline", train__seed=str(k)) == "nan_loss"
                      and txt(ST, "first_quantity", mitigation="strict-guard", train__seed=str(k)) == "loss"
                      for k in (1, 3, 6, 10))),
    ("the 6\nwhose baseline runs end with the ValueError", ST + " seeds whose strict run stops one step before the baseline's ValueError",
     "6", lambda: sum(one(ST, "first_step", mitigation="strict-guard", train__seed=str(k))
                      == one(ST, "first_step", mitigation="baseline", train__seed=str(k)) - 1
                      and txt(ST, "pythae_error", mitigation="baseline", train__seed=str(k)) == "value_error"
                      and txt(ST, "first_quantity", mitigation="strict-guard", train__seed=str(k)) == "grad_norm"
                      for k in range(1, 11))),
    ("Item 1 is complete: 10 of 10 NaN with each check.", ST + " strict-guard NaN runs",
     "10", lambda: sum(r["status"] == "nan" for r in sel(ST, mitigation="strict-guard"))),
    # the counterfactual at the failure point, all ten baseline seeds
    ("H-gradient clip at 100 (10 of 10 clean", FIX + " h-grad-clip prevented",
     "10", lambda: one(FIX, "prevented", mitigation="h-grad-clip")),
    ("IS-NLL 734.6 on average, 5.7 nats better", FIX + " h-grad-clip eval_nll",
     "734.6", lambda: one(FIX, "eval_nll", mitigation="h-grad-clip")),
    ("IS-NLL 734.6 on average, 5.7 nats better", FIX + " h-grad-clip -d_eval_nll",
     "5.7", lambda: -one(FIX, "d_eval_nll", mitigation="h-grad-clip")),
    ("at most 36.4 to 59.1, max |z| 6.5 to 13.8, IS-NLL 733.4", FIX + " diag-softplus eval_nll",
     "733.4", lambda: one(FIX, "eval_nll", mitigation="diag-softplus")),
    ("avoid the NaN in 8\n    of 10", FIX + " clip-norm prevented",
     "8", lambda: one(FIX, "prevented", mitigation="clip-norm")),
    ("avoid the NaN in 8\n    of 10", FIX + " clip-value prevented",
     "8", lambda: one(FIX, "prevented", mitigation="clip-value")),
    ("and lr / 10 in 6 of 10", FIX + " lr-div10 prevented",
     "6", lambda: one(FIX, "prevented", mitigation="lr-div10")),
    ("held-out IS-NLL 3.0e5)", FIX + " f64 eval_nll",
     "3.0e5", lambda: one(FIX, "eval_nll", mitigation="f64")),
    ("scaling in 9 of 10", FIX + " loss-scale runs not prevented",
     "9", lambda: one(FIX, "runs", mitigation="loss-scale") - one(FIX, "prevented", mitigation="loss-scale")),
    # (the running count, "Done so far: N of 110", is not checked: the
    # study commits rows on its own, so it goes stale between README
    # updates)
    # failure-mode studies (issue 15, item 9: 3 seeds per cell)
    ("NLL 135.3 (uniform) and 136.7 (normal) nats against 144.1", IA + " kaiming_uniform median nll_last",
     "135.3", lambda: med(r["nll_last"] for r in sel(IA, mitigation="kaiming_uniform"))),
    ("NLL 135.3 (uniform) and 136.7 (normal) nats against 144.1", IA + " kaiming_normal median nll_last",
     "136.7", lambda: med(r["nll_last"] for r in sel(IA, mitigation="kaiming_normal"))),
    ("NLL 135.3 (uniform) and 136.7 (normal) nats against 144.1", IA + " pytorch median nll_last",
     "144.1", lambda: med(r["nll_last"] for r in sel(IA, mitigation="pytorch"))),
    ("trains (0 of 75 NaN)", IA + " non-finite runs of the five unscaled inits",
     "0", lambda: sum(r["status"] != "ok" for r in rows(IA) if not r["mitigation"].startswith("scaled"))),
    ("stay finite in 15 of 15 runs", IA + " scaled_10 finite runs",
     "15", lambda: sum(r["status"] == "ok" for r in sel(IA, mitigation="scaled_10"))),
    ("NLL 7,362 to 9,063 nats", IA + " scaled_10 relu/softplus/leaky_relu min nll_last",
     "7362", lambda: min(fl(r["nll_last"]) for r in sel(IA, mitigation="scaled_10")
                         if r["nets.activation"] in ("relu", "softplus", "leaky_relu"))),
    ("NLL 7,362 to 9,063 nats", IA + " scaled_10 relu/softplus/leaky_relu max nll_last",
     "9063", lambda: max(fl(r["nll_last"]) for r in sel(IA, mitigation="scaled_10")
                         if r["nets.activation"] in ("relu", "softplus", "leaky_relu"))),
    ("final eval loss up to 1.06e6", IA + " scaled_10 max final_eval_loss",
     "1.06e6", lambda: max(fl(r["final_eval_loss"]) for r in sel(IA, mitigation="scaled_10"))),
    ("18 of the 30 kaiming runs failed it", IA + " kaiming rows: NLL within the margin, SSE over 2x (the old rule)",
     "18", lambda: sum(fl(r["nll_last"]) <= lref(IA, "pytorch") + max(5, 0.1 * abs(lref(IA, "pytorch")))
                       and fl(r["sse_max"]) > 2 * fl(r["sse_best"])
                       for r in rows(IA) if r["mitigation"].startswith("kaiming"))),
    ("all 30 kaiming runs", IA + " kaiming learned (30 runs)",
     "30", lambda: sum(r["learned"] == "true" for r in rows(IA) if r["mitigation"].startswith("kaiming"))),
    ("count as learned, and so do all 15 pytorch runs", IA + " pytorch learned",
     "15", lambda: sum(r["learned"] == "true" for r in sel(IA, mitigation="pytorch"))),
    ("but 9 of 15 for each\nxavier init", IA + " xavier_uniform learned",
     "9", lambda: sum(r["learned"] == "true" for r in sel(IA, mitigation="xavier_uniform"))),
    ("but 9 of 15 for each\nxavier init", IA + " xavier_normal learned",
     "9", lambda: sum(r["learned"] == "true" for r in sel(IA, mitigation="xavier_normal"))),
    ("activation, 141.8 for leaky relu to 169.6 for sigmoid)", IA + " pytorch leaky_relu median nll_best",
     "141.8", lambda: med(r["nll_best"] for r in sel(IA, mitigation="pytorch", nets__activation="leaky_relu"))),
    ("activation, 141.8 for leaky relu to 169.6 for sigmoid)", IA + " pytorch sigmoid median nll_best",
     "169.6", lambda: med(r["nll_best"] for r in sel(IA, mitigation="pytorch", nets__activation="sigmoid"))),
    ("softplus cells (147.8-149.9, against 142.6)", IA + " pytorch softplus median nll_best",
     "142.6", lambda: med(r["nll_best"] for r in sel(IA, mitigation="pytorch", nets__activation="softplus"))),
    ("softplus cells (147.8-149.9, against 142.6)", IA + " xavier softplus min nll_last",
     "147.8", lambda: min(fl(r["nll_last"]) for r in rows(IA)
                          if r["mitigation"].startswith("xavier") and r["nets.activation"] == "softplus")),
    ("softplus cells (147.8-149.9, against 142.6)", IA + " xavier softplus max nll_last",
     "149.9", lambda: max(fl(r["nll_last"]) for r in rows(IA)
                          if r["mitigation"].startswith("xavier") and r["nets.activation"] == "softplus")),
    ("sigmoid cells (NLL 177.7-180.8", IA + " xavier sigmoid min nll_last",
     "177.7", lambda: min(fl(r["nll_last"]) for r in rows(IA)
                          if r["mitigation"].startswith("xavier") and r["nets.activation"] == "sigmoid")),
    ("sigmoid cells (NLL 177.7-180.8", IA + " xavier sigmoid max nll_last",
     "180.8", lambda: max(fl(r["nll_last"]) for r in rows(IA)
                          if r["mitigation"].startswith("xavier") and r["nets.activation"] == "sigmoid")),
    ("With one reference over all five activations (144.1)", IA + " overall reference",
     "144.1", lambda: lref(IA, "pytorch")),
    ("norm 89.7 to 112.7 against 22.0 to 25.3", BN + " curves: no running stats, epochs 2-5, 5,001 images min grad_norm_max",
     "89.7", lambda: bn_gmax("5001", min)),
    ("norm 89.7 to 112.7 against 22.0 to 25.3", BN + " curves: no running stats, epochs 2-5, 5,001 images max grad_norm_max",
     "112.7", lambda: bn_gmax("5001", max)),
    ("norm 89.7 to 112.7 against 22.0 to 25.3", BN + " curves: no running stats, epochs 2-5, 5,000 images min grad_norm_max",
     "22.0", lambda: bn_gmax("5000", min)),
    ("norm 89.7 to 112.7 against 22.0 to 25.3", BN + " curves: no running stats, epochs 2-5, 5,000 images max grad_norm_max",
     "25.3", lambda: bn_gmax("5000", max)),
    ("5,000 images: all 18 runs finite", BN + " 5,000 images finite rows",
     "18", lambda: sum(r["status"] == "ok" for r in sel(BN, data__train_end="5000"))),
    ("statistics against 124.8 to 126.0 with them", BN + " running statistics min nll_last",
     "124.8", lambda: min(fl(r["nll_last"]) for r in rows(BN)
                          if r["mitigation"].startswith("running_stats") and r["status"] == "ok")),
    ("statistics against 124.8 to 126.0 with them", BN + " running statistics max nll_last",
     "126.0", lambda: max(fl(r["nll_last"]) for r in rows(BN)
                          if r["mitigation"].startswith("running_stats") and r["status"] == "ok")),
    ("NLL 167.1 to 172.7 nats without running", BN + " no running statistics min nll_last",
     "167.1", lambda: min(fl(r["nll_last"]) for r in rows(BN)
                          if r["mitigation"].startswith("no_running") and r["nll_last"])),
    ("NLL 167.1 to 172.7 nats without running", BN + " no running statistics max nll_last",
     "172.7", lambda: max(fl(r["nll_last"]) for r in rows(BN)
                          if r["mitigation"].startswith("no_running") and r["nll_last"])),
    ("goes NaN at step 51 in 3 of 3 runs", CN + " tail runs that hit NaN at step 51",
     "3", lambda: sum(r["status"] == "nan" and r["first_step"] == "51" for r in sel(CN, mitigation="tail"))),
    ("NLL 154.1 to 158.9 nats on the", CN + " no_tail min nll_last",
     "154.1", lambda: min(fl(r["nll_last"]) for r in sel(CN, mitigation="no_tail"))),
    ("NLL 154.1 to 158.9 nats on the", CN + " no_tail max nll_last",
     "158.9", lambda: max(fl(r["nll_last"]) for r in sel(CN, mitigation="no_tail"))),
    ("SSE 34.2 to 37.0, NLL 176.1 to 181.7", CN + " tail_no_running_stats min sse_last",
     "34.2", lambda: min(fl(r["sse_last"]) for r in sel(CN, mitigation="tail_no_running_stats"))),
    ("SSE 34.2 to 37.0, NLL 176.1 to 181.7", CN + " tail_no_running_stats max nll_last",
     "181.7", lambda: max(fl(r["nll_last"]) for r in sel(CN, mitigation="tail_no_running_stats"))),
    ("final eval loss 2.6e6 to 3.9e33", PP + " raw_unscaled min final_eval_loss",
     "2.6e6", lambda: min(fl(r["final_eval_loss"]) for r in sel(PP, mitigation="raw_unscaled"))),
    ("final eval loss 2.6e6 to 3.9e33", PP + " raw_unscaled max final_eval_loss",
     "3.9e33", lambda: max(fl(r["final_eval_loss"]) for r in sel(PP, mitigation="raw_unscaled"))),
    ("standardisation learns (SSE 38.4 to 39.8)", PP + " raw max sse_last",
     "39.8", lambda: max(fl(r["sse_last"]) for r in sel(PP, mitigation="raw"))),
    ("(3 of 3: NLL 145.9 to 147.7 nats", EP + " sqrt min nll_last",
     "145.9", lambda: min(fl(r["nll_last"]) for r in sel(EP, anchor__eps_placement="sqrt"))),
    ("(3 of 3: NLL 145.9 to 147.7 nats", EP + " sqrt max nll_last",
     "147.7", lambda: max(fl(r["nll_last"]) for r in sel(EP, anchor__eps_placement="sqrt"))),
] + seed_steps("(2,418, 2,259, 2,732 and 2,523)", "baseline",
               {1: "2,418", 3: "2,259", 6: "2,732", 10: "2,523"}) \
  + seed_steps("2,814, 2,367, 2,492, 1,689, 2,193 and 2,052", "baseline",
               {2: "2,814", 4: "2,367", 5: "2,492", 7: "1,689", 8: "2,193", 9: "2,052"}) \
  + seed_steps("(2,813, 2,366, 2,491, 1,688, 2,192 and 2,051)", "strict-guard",
               {2: "2,813", 4: "2,366", 5: "2,491", 7: "1,688", 8: "2,192", 9: "2,051"})


def matches(quoted, actual):
    """quoted is README's text of the number ("-5.24", "1.13e5", "2,585"):
    actual must round to it, i.e. lie within half a unit of its last digit."""
    if not math.isfinite(actual):
        return False
    q = quoted.replace(",", "")
    mant, _, exp = q.lower().partition("e")
    decimals = len(mant.split(".")[1]) if "." in mant else 0
    unit = 10.0 ** ((int(exp) if exp else 0) - decimals)
    return abs(actual - float(q)) <= unit / 2 * (1 + 1e-9)


def main():
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    bad = 0
    for phrase, source, quoted, compute in CHECKS:
        if phrase not in readme:
            print("MISSING  README no longer says %r (update this check)" % phrase)
            bad += 1
            continue
        if quoted.replace(",", "") not in phrase.replace(",", "").replace("three", "3"):
            print("BADCHECK the phrase %r does not contain its figure %s" % (phrase, quoted))
            bad += 1
            continue
        try:
            actual = compute()
        except (ValueError, KeyError, OSError, IndexError) as e:
            print("ERROR    %r: %s" % (phrase, e))
            bad += 1
            continue
        if not matches(quoted, actual):
            print("MISMATCH %r: README %s, %s = %.6g" % (phrase, quoted, source, actual))
            bad += 1
    print("%d of %d README figures match their tables" % (len(CHECKS) - bad, len(CHECKS)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
