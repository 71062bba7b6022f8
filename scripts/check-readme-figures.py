#!/usr/bin/env python3
"""Check figures quoted in README.md against the committed result tables.

Each check below is one figure of README's sections "Failure-mode studies"
and "The RHVAE NaN report (issue 132)" (its section 2 too, the ResNet
study, as far as its rows go): the README phrase that quotes it,
the CSV it comes from, a row selector, a column (or a small computation over
the selected rows) and the value as README writes it. The check fails if the
phrase is not in README (the text changed: update the check with it) or if
the value computed from the CSV, rounded to the precision README writes,
differs from the quoted value. The quoted value must appear in the phrase,
so editing the number in README without editing this list fails too.

Standard library only, no build needed; reads a few small CSVs.
Usage: scripts/check-readme-figures.py [REPO_ROOT]   (exit 0 = all match)
       scripts/check-readme-figures.py --print-table NAME [REPO_ROOT]
       (NAME one of TABLES below: proxy or study, section 4's or section
       2's table of mitigations; study-paired, section 2's runs against
       the baseline's of the same seed; study-50, the 50-epoch
       continuations; verdict, section 1's summary of both; trigger,
       notebook and map, items 4, 5 and 6; generated cells filled in,
       "what it says" empty)
       scripts/check-readme-figures.py --sync-table NAME [REPO_ROOT]
       (rewrites that table in README.md in place: generated cells from the
       tables, each row's "what it says" kept from README, empty for a new
       mitigation; run it after a sweep commits rows, then edit the texts)
       scripts/check-readme-figures.py --snapshot [REPO_ROOT]
       (records in results/readme-rows.txt which rows of the growing
       folders README covers: every row their results.csv has now)

Growing folders: a long sweep (scripts/long-sweep.sh) commits the rows of
results/rhvae-resnet-study-50, rhvae-resnet-trigger, rhvae-tutorial-seeds
and map-rhvae-resnet as its cells finish, before anyone has written about
them. README quotes the rows listed in results/readme-rows.txt (by `id`), and
every figure and generated table cell is computed from those rows only, so a
sweep's commit never breaks this check; the check says how many newer rows
README does not cover yet, and fails if a listed row is gone. To take new
rows in: --snapshot, --sync-table NAME, edit the texts and checks, run it.
"""
import csv
import math
import os
import statistics
import sys

_ARGS = sys.argv[1:]
_TABLE = None  # --print-table NAME or --sync-table NAME
_SYNC = False
_SNAP = "--snapshot" in _ARGS
if _SNAP:
    _ARGS.remove("--snapshot")
for _flag in ("--print-table", "--sync-table"):
    if _flag in _ARGS:
        _i = _ARGS.index(_flag)
        _TABLE = _ARGS[_i + 1] if _i + 1 < len(_ARGS) else ""
        _SYNC = _flag == "--sync-table"
        del _ARGS[_i:_i + 2]
ROOT = _ARGS[0] if _ARGS else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..")
R = "results/"
SEEDS = R + "rhvae-issue132/results.csv"
MLP = R + "rhvae-issue132-mlp/results.csv"
MIT = R + "rhvae-issue132-mitigations/results.csv"
RMIT = R + "rhvae-issue132-resnet-mitigations/results.csv"
MAP = R + "map-rhvae-mlp/results.csv"
IA = R + "study-init-activation/results.csv"
BN = R + "study-batchnorm/results.csv"
CN = R + "study-batchnorm-convnet/results.csv"
PP = R + "study-preprocess/results.csv"
EP = R + "study-eps-placement/results.csv"
ST = R + "rhvae-resnet-study/results.csv"
ST50 = R + "rhvae-resnet-study-50/results.csv"
TRIG = R + "rhvae-resnet-trigger/results.csv"
FIX = R + "rhvae-resnet-study/fixes.csv"
TRIG_STRICT = R + "rhvae-resnet-trigger-strict/summary.csv"
NOTEBOOK = R + "rhvae-tutorial-seeds/results.csv"
RMAP = R + "map-rhvae-resnet/results.csv"
GROWING = (ST50, TRIG, NOTEBOOK, RMAP)
SNAPSHOT = R + "readme-rows.txt"

_cache = {}


def nll_consistent(r, col):
    """r[col] (nll_best or nll_last) on the consistent scale, computed here
    independently of bench/stats.c: an RHVAE row run with pythae's get_nll
    gets the tempering Jacobian pythae omits, -latent log b; an HVAE row
    with pythae's formula has no value (nan); other rows stay."""
    v = fl(r[col])
    est, kind = r.get("eval.nll_estimator", ""), r.get("model.kind", "")
    if est == "consistent" or kind not in ("rhvae", "hvae"):
        return v
    if kind == "hvae":
        return float("nan")
    b = float(r["rhvae.beta_zero"])
    if r.get("rhvae.beta_zero_as_sqrt") == "false":
        b = math.sqrt(b)
    return v - float(r["model.latent"]) * math.log(b)


def snapshot():
    """{growing results.csv: [ids README covers]} from SNAPSHOT ("PATH ID"
    lines); a folder without lines has none."""
    if "snapshot" not in _cache:
        out = {p: [] for p in GROWING}
        spath = os.path.join(ROOT, SNAPSHOT)
        if os.path.exists(spath):
            for n, line in enumerate(open(spath), 1):
                parts = line.split()
                if not parts or line.startswith("#"):
                    continue
                if len(parts) != 2 or parts[0] not in out:
                    sys.exit("check-readme-figures.py: %s line %d: %r: expected 'PATH ID' with PATH one of %s"
                             % (SNAPSHOT, n, line.strip(), ", ".join(GROWING)))
                out[parts[0]].append(parts[1])
        _cache["snapshot"] = out
    return _cache["snapshot"]


def all_rows(path):
    """Every row of path's CSV (the growing folders' too), [] when a
    growing folder has no results.csv yet."""
    key = "all:" + path
    if key not in _cache:
        full = os.path.join(ROOT, path)
        if path in GROWING and not os.path.exists(full):
            _cache[key] = []
        else:
            with open(full, newline="") as f:
                _cache[key] = list(csv.DictReader(f))
    return _cache[key]


def rows(path):
    """path's rows; for a growing folder only those README covers
    (SNAPSHOT), in the CSV's order."""
    if path not in _cache:
        _cache[path] = all_rows(path)
        if path in GROWING:
            want = set(snapshot()[path])
            _cache[path] = [r for r in _cache[path] if r["id"] in want]
        for r in _cache[path]:
            for col in ("nll_best", "nll_last"):
                if col in r:
                    r[col + "_c"] = nll_consistent(r, col)
    return _cache[path]


def sel(path, **where):
    """Rows of path whose columns equal the given strings (dots as __)."""
    out = []
    for r in rows(path):
        if all(r[k.replace("__", ".")] == v for k, v in where.items()):
            out.append(r)
    return out


def one_row(path, **where):
    """The one row of path with the given columns (dots as __)."""
    rs = sel(path, **where)
    if len(rs) != 1:
        raise ValueError("%s %s: %d rows match, want 1" % (path, where, len(rs)))
    return rs[0]


def one(path, col, **where):
    return float(one_row(path, **where)[col])


def txt(path, col, **where):
    """The one row's column as written (for text columns)."""
    return one_row(path, **where)[col]


def fl(x):
    try:
        return float(x)
    except ValueError:
        return float("nan")


def med(values):
    return statistics.median(fl(v) for v in values)


def wilson(k, n, z=1.959963984540054):
    """The 95 % Wilson score interval (low, high) of k events in n, as
    bench/stats.c computes nan_share_low and nan_share_high."""
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (0.0 if k == 0 else c - h, 1.0 if k == n else c + h)


def nan_cell(k, n, sep="/"):
    """ "k/n (low to high)": a NaN count with its 95 % Wilson interval."""
    lo, hi = wilson(k, n) if n else (float("nan"), float("nan"))
    return "%d%s%d (%.2f to %.2f)" % (k, sep, n, lo, hi)


def mit_nan_cell(m):
    """nan_cell of a mitigations.csv row m, with the interval bench/stats.c
    wrote."""
    return "%s/%s (%.2f to %.2f)" % (m["nan_runs"], m["runs"], float(m["nan_share_low"]),
                                     float(m["nan_share_high"]))


def lref(path, baseline):  # the "learned" reference: median best-epoch NLL of the baseline
    return med(r["nll_best_c"] for r in sel(path, mitigation=baseline))


def bn_gnorms(train_end):
    """study-batchnorm, finite runs without running statistics, eps > 0:
    grad_norm_max over epochs 2.. of their curves."""
    v = []
    for r in sel(BN, data__train_end=train_end):
        if r["mitigation"] in ("no_running_stats", "no_running_stats_eps1e-2"):
            v += [fl(c["grad_norm_max"]) for c in curve(BN, r)[1:]]
    return v


def healthy(r):  # the old rule: finite and final train loss under 1,000
    return r["status"] == "ok" and fl(r["final_train_loss"]) < 1000


def curves_max(path, mitigation, col):
    """Largest col over the per-epoch curves of a mitigation's runs."""
    return max(fl(c[col]) for r in sel(path, mitigation=mitigation) for c in curve(path, r))


def sec_per_epoch(path):
    return statistics.median(
        float(r["seconds"]) / float(r["epochs_done"]) for r in rows(path))


def eval_at(r, epoch):
    return float(r["eval_losses"].split(";")[epoch - 1])


# Tables of mitigations (section 4, the proxy; section 2, the ResNet study):
# every cell but the last ("what it says") is generated from the folder's
# mitigations.csv and results.csv by mitigation_cells; the README row must
# carry exactly these strings (compared cell by cell, bold aside;
# `--print-table NAME` prints the rows to paste).
def sci(x):
    """1.96e18 as README writes it: 2 significant digits, e without +/0s."""
    if abs(x) < 1000:
        return "%.3g" % x
    m, e = ("%.1e" % x).split("e")
    return "%se%d" % (m, int(e))


def med_range(m, key, digits=1):
    if m[key + "_median"] == "":
        return "-"

    def f(x):  # README's precision below 1e5, 2 significant digits above
        return ("%%.%df" % digits) % x if abs(x) < 1e5 else sci(x)
    lo, hi, md = (float(m[key + s]) for s in ("_min", "_max", "_median"))
    return f(md) + (" (" + f(lo) + " to " + f(hi) + ")" if lo != hi else "")


def mitigation_cells(m, rs, pythae, cpu_ref):
    """The generated cells of one mitigation's row (m: its mitigations.csv
    row, rs: its results.csv rows; pythae: add the column of pythae's two
    errors; cpu_ref: the mitigation whose CPU seconds per epoch the last
    cell divides by, "alone" for perf/time-study.sh's seconds per epoch
    and ratio, or None for mitigations.csv's time_vs_baseline)."""
    nan = mit_nan_cell(m)
    if m["first_nan_epoch_median"] == "":
        first = "-"
    else:
        lo, hi = int(float(m["first_nan_epoch_min"])), int(float(m["first_nan_epoch_max"]))
        first = "%g" % float(m["first_nan_epoch_median"]) + (
            " (%d to %d)" % (lo, hi) if lo != hi else "")
    cells = [nan, first]
    if pythae:
        cells.append("%s / %s" % (m["value_error"], m["nan_loss"]))
    learned = "%s/%s" % (m["learned"], m["learned_known"])
    sse = "-" if m["sse_last_median"] == "" else "%.1f" % float(m["sse_last_median"])
    sse_b = "-" if m["sse_best_median"] == "" else "%.1f" % float(m["sse_best_median"])
    finite = [fl(r["final_train_loss"]) for r in rs if r["status"] == "ok"]
    big = sci(max(finite)) if finite else "-"
    if cpu_ref is None:
        t = m["time_vs_baseline"]
        t = "-" if t == "" else "%.2fx" % float(t)
    elif cpu_ref == "alone":
        # perf/time-study.sh's seconds per epoch, each setting run alone
        t = "%.1f (%.2fx)" % (one(TIME, "wall_per_epoch", mitigation=m["mitigation"]),
                              one(TIME, "wall_vs_baseline", mitigation=m["mitigation"]))
    else:
        ref = float(one(PROXY_OR_STUDY[cpu_ref[0]] + "mitigations.csv", "cpu_seconds_per_epoch",
                        mitigation=cpu_ref[1]))
        t = "-" if m["cpu_seconds_per_epoch"] == "" else "%.1f (%.2fx)" % (
            float(m["cpu_seconds_per_epoch"]), float(m["cpu_seconds_per_epoch"]) / ref)
    return cells + [learned, med_range(m, "nll_consistent_best"), med_range(m, "nll_consistent_last"), sse_b, sse, big, t]


PROXY_OR_STUDY = {"proxy": R + "rhvae-issue132-mitigations/", "study": R + "rhvae-resnet-study/"}
PROXY = PROXY_OR_STUDY["proxy"]
TIME = R + "rhvae-resnet-study-time/summary.csv"
TIMES = R + "rhvae-resnet-study-time/times.csv"
TABLES = {
    "proxy": ("| mitigation (MLP proxy) | NaN of 10 (95 % CI) | first NaN, epoch "
              "| learned | NLL best | NLL last | SSE best | SSE last "
              "| largest final train loss, finite runs | CPU time vs baseline | what it says |",
              False, None),
    "study": ("| mitigation (ResNets) | NaN (95 % CI) | first NaN, epoch "
              "| pythae's error: ValueError / NaN loss | learned | NLL best | NLL last | SSE best | SSE last "
              "| largest final train loss, finite runs | s per epoch alone (vs baseline) | what it says |",
              True, "alone"),
    "study-paired": ("| mitigation (ResNets), against the baseline on the same seed | best epoch | NLL best, minus the baseline's "
                     "| lower on | NLL last, minus the baseline's | lower on | what it says |", None, None),
    "study-50": ("| mitigation (ResNets), continued to 50 epochs | seeds run | NaN by epoch 50 | first NaN, epoch "
                 "| best epoch | NLL best | NLL last | NLL last minus the same run's at 25 | higher on | what it says |",
                 None, None),
    "verdict": ("| mitigation (ResNets) | NaN by epoch 25 (95 % CI) | NaN by epoch 50 (95 % CI) "
                "| NLL last at 25 (10 seeds) | NLL last at 50 (seeds run) | NLL at 50 minus the same run's at 25 "
                "| s per epoch vs baseline | verdict |", None, None),
    "notebook": ("| pythae's RHVAE tutorial as shipped (ResNets) | seeds run | NaN (95 % CI) | first NaN, epoch "
                 "| pythae's error: ValueError / NaN loss | NLL best | NLL last | SSE best | SSE last "
                 "| CPU s per epoch | what it says |", None, None),
    "trigger": ("| the report's setting, by init seed (model.init_seed) | data seed 1 | data seed 2 | data seed 3 "
                "| data seed 1, last partial batch dropped | data seed 2, dropped | data seed 3, dropped | what it says |",
                None, None),
}
TRIG_SEEDS = ("1", "2", "3")
TRIG_MITIGATIONS = ("baseline", "drop-last")
TABLES["map"] = ("| learning rate (ResNets, 25 epochs, strict guard) | batch 16 | batch 64 | batch 256 | what it says |",
                 None, None)
MAP_LRS = ("1e-05", "0.0001", "0.001", "0.01")
MAP_BATCHES = ("16", "64", "256")
MAP_SEEDS = 3


def steps_txt(values):
    """ "a-b" (or "a") of integer steps with thousands separators."""
    v = sorted(int(x) for x in values)
    return "{:,}".format(v[0]) + ("-{:,}".format(v[-1]) if v[-1] != v[0] else "")


def map_cell(rs):
    """One cell of the ResNet map (item 6): NaN count of the seeds run with
    its 95 % Wilson interval, the first NaN's epochs and steps, the median
    IS-NLL at the last finite epoch of the finite runs (consistent scale);
    "not run" without rows, "(n of 3 seeds run)" while the sweep goes on."""
    if not rs:
        return "not run"
    k = sum(r["status"] != "ok" for r in rs)
    out = nan_cell(k, len(rs))
    dead = [r for r in rs if r["status"] != "ok"]
    if dead:
        out += "; epoch %s (step %s)" % (steps_txt(fl(r["first_epoch"]) for r in dead).replace(",", ""),
                                           steps_txt(fl(r["first_step"]) for r in dead))
    nl = [r["nll_last_c"] for r in rs if r["status"] == "ok" and math.isfinite(r["nll_last_c"])]
    if nl:
        out += "; NLL %.1f" % statistics.median(nl)
    if len(rs) < MAP_SEEDS:
        out += " (%d of %d seeds run)" % (len(rs), MAP_SEEDS)
    return out


def map_rows():
    """The ResNet map's rows: one per learning rate, a cell per batch size."""
    lr_name = {"1e-05": "1e-5", "0.0001": "1e-4", "0.001": "1e-3", "0.01": "1e-2"}
    out = []
    for lr in MAP_LRS:
        cells = [map_cell(map_rows_where(fl(lr), b)) for b in MAP_BATCHES]
        out.append(("lr %s" % lr_name[lr], cells))
    return out


def trigger_cell(rs):
    """One cell of the trigger grid: the first NaN's epoch, step and
    pythae's error, "finite", or "not run" (no row yet)."""
    if not rs:
        return "not run"
    if len(rs) > 1:
        raise ValueError("%s: %d rows for one cell" % (TRIG, len(rs)))
    r = rs[0]
    if r["status"] == "ok":
        return "finite"
    if r["status"] != "nan":
        return r["status"]
    err = {"nan_loss": "NaN loss", "value_error": "ValueError"}.get(r["pythae_error"], r["pythae_error"] or "?")
    return "%s (step %s, %s)" % (r["first_epoch"], "{:,}".format(int(r["first_step"])), err)


def trigger_rows():
    """The trigger table's rows (issue 16 item 4): for each init seed, the
    cell of each data seed (train.seed), the baseline's then drop-last's;
    every cell "not run" while the sweep has no results.csv."""
    out = []
    for init in TRIG_SEEDS:
        cells = [trigger_cell(sel(TRIG, mitigation=m, model__init_seed=init, train__seed=data))
                 for m in TRIG_MITIGATIONS for data in TRIG_SEEDS]
        out.append(("init seed %s" % init, cells))
    return out


def row_key(label):
    """A table row's key: its first cell without backticks and bold."""
    return label.replace("**", "").replace("`", "").strip()


def signed(x):
    """x signed, one decimal, never "-0.0"."""
    return "%+.1f" % (round(x, 1) + 0.0)


def rng(values, f, fmed=None):
    """ "median (min to max)" of values, each written by f (the median by
    fmed when given: "%g" for epochs, whose median can be a half), "-"
    when there are none, the median alone when all are equal."""
    if not values:
        return "-"
    v = sorted(values)
    md = (fmed or f)(statistics.median(v))
    return md + (" (%s to %s)" % (f(v[0]), f(v[-1])) if v[0] != v[-1] else "")


def epochs(values):
    return rng(values, lambda x: "%d" % x, lambda x: "%g" % x)


def one_decimal(values):
    return rng(values, lambda x: "%.1f" % x)


def continued_diffs(mitigation):
    """(seed, NLL at the last finite epoch of the 50-epoch run minus the
    study run's of the same seed) for mitigation's continued runs, where
    both are finite."""
    at25 = {r["train.seed"]: r["nll_last_c"] for r in sel(ST, mitigation=mitigation)}
    return [(r["train.seed"], r["nll_last_c"] - at25[r["train.seed"]]) for r in sel(ST50, mitigation=mitigation)
            if r["train.seed"] in at25 and math.isfinite(r["nll_last_c"]) and math.isfinite(at25[r["train.seed"]])]


def cont_curve(mitigation, seed, col, agg):
    """agg over the per-epoch col of the 50-epoch run of mitigation and seed."""
    r = one_row(ST50, mitigation=mitigation, train__seed=seed)
    return agg([fl(c[col]) for c in curve(ST50, r)])


def first_over(values, level, after=0):
    """The first epoch (1-based) after epoch `after` whose value in the
    per-epoch values exceeds level (NaN when none does)."""
    return next((e + 1 for e, x in enumerate(values) if e >= after and x > level), float("nan"))


def b16_first_over(seed, level):
    """The first epoch after 25 whose largest gradient norm exceeds level,
    in batch 16's 50-epoch run of seed."""
    return first_over(cont_curve("batch-16", seed, "grad_norm_max", list), level, after=25)


def continued_cells(mitigation):
    """The 50-epoch table's cells of one mitigation (results/rhvae-resnet-study-50,
    each row the study's run of the same seed continued): seeds with a row
    (of the study's), NaN count with its 95 % Wilson interval, the first NaN's epochs, the best epoch and
    the IS-NLL at the best and last finite epoch (consistent scale), median
    (range); the last finite epoch's NLL minus the study row's last (epoch
    25 for a run that stayed finite) of the same seed, median (range), and
    on how many seeds it rose by 0.05 nats or more (what one decimal shows)."""
    rs = sel(ST50, mitigation=mitigation)
    n10 = len(sel(ST, mitigation=mitigation))
    nan = [r for r in rs if r["status"] == "nan"]
    first = [int(r["first_epoch"]) for r in nan if r["first_epoch"]]
    best = [int(r["best_epoch"]) for r in rs if r["best_epoch"]]
    nb = [r["nll_best_c"] for r in rs if math.isfinite(r["nll_best_c"])]
    nl = [r["nll_last_c"] for r in rs if math.isfinite(r["nll_last_c"])]
    d = [x for _, x in continued_diffs(mitigation)]
    return ["%d of %d" % (len(rs), n10), nan_cell(len(nan), len(rs), " of "), epochs(first),
            epochs(best), one_decimal(nb), one_decimal(nl), rng(d, signed),
            "-" if not d else "%d of %d" % (sum(round(x, 1) > 0 for x in d), len(d))]


def paired_diffs(mitigation, col):
    """col (nll_best_c or nll_last_c) of the study's runs of mitigation minus
    the baseline's run of the same seed, where both are finite."""
    base = {r["train.seed"]: r[col] for r in sel(ST, mitigation="baseline")}
    return [r[col] - base[r["train.seed"]] for r in sel(ST, mitigation=mitigation)
            if r["train.seed"] in base and math.isfinite(r[col]) and math.isfinite(base[r["train.seed"]])]


def paired_cells(mitigation):
    """The paired table's cells of one study mitigation: the epoch of its
    runs' best held-out NLL, median (range); for the NLL at the best and at
    the last finite epoch (consistent scale), paired_diffs' median (range)
    and on how many seeds it is below 0 (dashes for the baseline itself)."""
    cells = [epochs([int(r["best_epoch"]) for r in sel(ST, mitigation=mitigation) if r["best_epoch"]])]
    if mitigation == "baseline":
        return cells + ["-"] * 4
    for col in ("nll_best_c", "nll_last_c"):
        d = paired_diffs(mitigation, col)
        cells += [rng(d, signed), "-" if not d else "%d of %d" % (sum(x < 0 for x in d), len(d))]
    return cells


NOTEBOOK_MITIGATIONS = ("baseline", "batch-16", "accumulate-4x16")


def notebook_cells(mitigation):
    """Item 5's table, one mitigation, from the rows README covers
    (results/rhvae-tutorial-seeds): seeds with a row (of the config's 5),
    the NaN count with its 95 % Wilson interval, the first NaN's epochs,
    pythae's two errors, the IS-NLL (consistent scale) at the best and the
    last finite epoch, median (range), the eval SSE at both, medians, and
    the CPU seconds per epoch, median; "not run" while it has no row."""
    rs = sel(NOTEBOOK, mitigation=mitigation)
    if not rs:
        return ["0 of 5"] + ["not run"] + ["-"] * 7
    nan = [r for r in rs if r["status"] == "nan"]

    def finite(col):
        return [fl(r[col]) for r in rs if math.isfinite(fl(r[col]))]

    def medtxt(v, f="%.1f"):
        return f % statistics.median(v) if v else "-"
    return ["%d of 5" % len(rs), nan_cell(len(nan), len(rs)),
            epochs([int(r["first_epoch"]) for r in nan if r["first_epoch"]]),
            "%d / %d" % (sum(r["pythae_error"] == "value_error" for r in rs),
                         sum(r["pythae_error"] == "nan_loss" for r in rs)),
            one_decimal([r["nll_best_c"] for r in rs if math.isfinite(r["nll_best_c"])]),
            one_decimal([r["nll_last_c"] for r in rs if math.isfinite(r["nll_last_c"])]),
            medtxt(finite("sse_best")), medtxt(finite("sse_last")), medtxt(finite("cpu_per_epoch"))]


def verdict_cells(m):
    """Section 1's verdict table, one study mitigation (m: its row of the
    study's mitigations.csv): the NaN count by 25 epochs (the study) and by
    50 (the continuation) with 95 % Wilson intervals, the median NLL at the
    last finite epoch of each, the paired change from 25 to 50, median
    (range), and the seconds per epoch against the baseline's, each setting
    alone (perf/time-study.sh)."""
    name = m["mitigation"]
    nan25 = mit_nan_cell(m)
    rs = sel(ST50, mitigation=name)
    if rs:
        nan50 = nan_cell(sum(r["status"] == "nan" for r in rs), len(rs))
        nl = [r["nll_last_c"] for r in rs if math.isfinite(r["nll_last_c"])]
        nll50 = "%.1f" % statistics.median(nl) if nl else "-"
    else:
        finite = int(m["runs"]) - int(m["nan_runs"])
        nan50 = "not continued" if finite < 8 else "not run yet"
        nll50 = "-"
    nll25 = "-" if m["nll_consistent_last_median"] == "" else "%.1f" % float(m["nll_consistent_last_median"])
    d = [x for _, x in continued_diffs(name)]
    t = "%.2fx" % one(TIME, "wall_vs_baseline", mitigation=name)
    return [nan25, nan50, nll25, nll50, rng(d, signed), t]


def table_rows(name):
    """(first cell, generated cells) for every row of a table: a row per
    mitigation of its mitigations.csv (first cell `name`), or per init seed
    (trigger)."""
    if name == "trigger":
        return trigger_rows()
    if name == "map":
        return map_rows()
    if name == "notebook":
        return [("`%s`" % m, notebook_cells(m)) for m in NOTEBOOK_MITIGATIONS]
    return [("`%s`" % m, cells) for m, cells in mitigation_rows(name)]


def mitigation_rows(name):
    """(mitigation, generated cells) for every row of a table's mitigations.csv."""
    if name == "study-50":  # the mitigations README covers rows of, in mitigations.csv's order
        covered = {r["mitigation"] for r in rows(ST50)}
        return [(m["mitigation"], continued_cells(m["mitigation"]))
                for m in rows(os.path.dirname(ST50) + "/mitigations.csv") if m["mitigation"] in covered]
    if name == "verdict":
        return [(m["mitigation"], verdict_cells(m))
                for m in rows(PROXY_OR_STUDY["study"] + "mitigations.csv") if m["mitigation"] != "strict-guard"]
    if name == "study-paired":
        return [(m["mitigation"], paired_cells(m["mitigation"]))
                for m in rows(PROXY_OR_STUDY["study"] + "mitigations.csv") if m["mitigation"] != "strict-guard"]
    folder = PROXY_OR_STUDY[name]
    _, pythae, cpu_ref = TABLES[name]
    out = []
    for m in rows(folder + "mitigations.csv"):
        rs = sel(folder + "results.csv", mitigation=m["mitigation"])
        out.append((m["mitigation"], mitigation_cells(m, rs, pythae, cpu_ref)))
    return out


def table_checks(readme, name):
    """Mismatches between README's table `name` and table_rows(name): a list
    of messages, empty when every generated cell matches."""
    head = TABLES[name][0]
    folder = PROXY_OR_STUDY.get(name.split("-")[0], {"trigger": TRIG, "notebook": NOTEBOOK, "map": RMAP}.get(name))
    if head not in readme:
        return ["MISSING  README no longer has the %s table header %r" % (name, head)]
    lines = readme.split(head, 1)[1].split("\n")[2:]
    seen, bad = {}, []
    for line in lines:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not row_key(cells[0]):
            bad.append("BADROW   %s table row without a name: %r" % (name, line))
            continue
        seen[row_key(cells[0])] = cells[1:]
    for label, cells in table_rows(name):
        mit = row_key(label)
        if mit not in seen:
            bad.append("MISSING  %s table has no row for %s" % (name, label))
            continue
        got = seen.pop(mit)
        for i, want in enumerate(cells):
            have = got[i].replace("**", "") if i < len(got) else "(none)"
            if have != want:
                bad.append("MISMATCH %s table `%s` column %d: README %r, tables %r"
                           % (name, mit, i + 2, have, want))
    bad += ["EXTRA    %s table row %r is not one of %s's" % (name, k, folder)
            for k in seen]
    return bad


# (README phrase, source for the message, value as quoted, how to compute it)
def seed_steps(phrase, mitigation, steps):
    """Checks of the first_step of one study mitigation's seeds, as README
    lists them in phrase: steps maps seed -> the step as README writes it."""
    return [(phrase, "%s %s seed %d first_step" % (ST, mitigation, seed), step,
             lambda seed=seed: one(ST, "first_step", mitigation=mitigation,
                                   train__seed=str(seed)))
            for seed, step in steps.items()]


def span(phrase, source, lo, hi, values):
    """The two checks of a range README quotes as lo-hi: the min and the
    max of values() (a function, called when the check runs)."""
    return [(phrase, source + ", min", lo, lambda: min(values())),
            (phrase, source + ", max", hi, lambda: max(values()))]


def st_partial_runs():
    """The study's RHVAE rows that had a partial batch (error rows aside)."""
    return [r for r in rows(ST) if r["model.kind"] == "rhvae" and r["status"] != "error"
            and r["worst_partial_expected"] and fl(r["worst_partial_expected"]) > 0]


def st_pythae_deaths():
    """The study's runs that died under pythae's check."""
    return [r for r in rows(ST) if r["status"] == "nan" and r["train.nan_check"] == "pythae"]


def batches_per_epoch(r):
    """The number of training batches in an epoch of r's run (the last
    one partial when the batch does not divide the training images)."""
    n = int(r["data.train_end"]) - int(r["data.train_begin"] or 0)
    if r.get("data.drop_last") == "true":  # the partial batch left out
        return n // int(r["train.batch"])
    return math.ceil(n / int(r["train.batch"]))


def has_partial(r):
    """Whether r's epochs end with a partial batch (the batch does not
    divide the training images)."""
    n = int(r["data.train_end"]) - int(r["data.train_begin"] or 0)
    return n % int(r["train.batch"]) != 0 and r.get("data.drop_last") != "true"


def batch_position(r):
    """The 1-based position in its epoch of the batch at r's first_step."""
    return (int(r["first_step"]) - 1) % batches_per_epoch(r) + 1


def st_base():
    """The study's 10 baseline rows (pythae's check)."""
    return sel(ST, mitigation="baseline")


def clip_vs_base():
    """(spike-only clip row, baseline row) of each study seed."""
    base = {r["train.seed"]: r for r in st_base()}
    return [(r, base[r["train.seed"]]) for r in sel(ST, mitigation="clip-adaptive")]


def curve(path, r):
    """The per-epoch rows of row r of path (its folder's curves/ID.csv)."""
    return rows(os.path.dirname(path) + "/curves/" + r["id"] + ".csv")


def curve_at(path, r, epoch, col):
    """col of row r's curve (a row of path) at epoch."""
    c = [x for x in curve(path, r) if x["epoch"] == str(epoch)]
    if len(c) != 1:
        raise ValueError("%s curve %s: %d rows for epoch %s" % (path, r["id"], len(c), epoch))
    return fl(c[0][col])


def curve_last_eval(path, r, col):
    """col of row r's curve (a row of path) at its last epoch with a finite
    eval loss."""
    return fl([x for x in curve(path, r) if math.isfinite(fl(x["eval_loss"]))][-1][col])


B16_PATTERN = ("3", "4", "5", "7", "9", "10")  # batch 16's seeds in the pre-failure pattern at 50


def at_tenth(col):
    """(lr 1e-6's col at epoch 50, lr 1e-5's at epoch 5) per seed of lr
    1e-6's continued runs: the two on the steps x rate axis (Adam's step
    scales with the rate)."""
    out = []
    for r in sel(ST50, mitigation="lr-1e-6"):
        fast = one_row(ST, mitigation="lr-1e-5", train__seed=r["train.seed"])
        out.append((curve_at(ST50, r, 50, col), curve_at(ST, fast, 5, col)))
    return out


def base_first_over(col, level):
    """Per baseline seed of the study: the first epoch whose col exceeds level."""
    return [first_over([fl(x[col]) for x in curve(ST, r)], level) for r in st_base()]


def st_best_last(col):
    """(col at the best epoch, col at the last finite evaluated epoch) of
    every study baseline run."""
    return [(curve_at(ST, r, r["best_epoch"], col), curve_last_eval(ST, r, col)) for r in st_base()]


def cf(variant):
    """The study's counterfactual verdict rows of one variant, one per
    baseline run (results/rhvae-resnet-study/counterfactual/ID/verdict.csv),
    each with the unchanged run's event step as "ref_event"."""
    folder = os.path.join(os.path.dirname(ST), "counterfactual")
    out = []
    for run in sorted(os.listdir(os.path.join(ROOT, folder))):
        vs = rows(folder + "/" + run + "/verdict.csv")
        ref = [v for v in vs if v["variant"] == "unchanged"][0]["event_step"]
        out += [dict(v, ref_event=ref) for v in vs if v["variant"] == variant]
    return out


def cf_clean(variant, col):
    return [fl(v[col]) for v in cf(variant) if v["outcome"] == "clean"]


def row_checks(path, label, where, items):
    """Checks of columns of the one row of path whose columns equal where
    ({column: value}): items are (README phrase, column, value as quoted)."""
    def col_of(col):
        rs = [r for r in rows(path) if all(r[k] == v for k, v in where.items())]
        if len(rs) != 1:
            raise ValueError("%s %s: %d rows match, want 1" % (path, label, len(rs)))
        return fl(rs[0][col])
    return [(phrase, "%s %s %s" % (path, label, col), quoted, lambda col=col: col_of(col))
            for phrase, col, quoted in items]


def csv_cells(path, label, items):
    """Checks of single cells of one CSV: items are (README phrase, row,
    column, value as quoted); row n >= 1 is the n-th data row (an epoch of
    a curves file), n <= 0 counts from the end (0 the last row)."""
    def cell(n, col):
        return fl(rows(path)[n - 1][col])
    return [(phrase, "%s %s %d %s" % (path, label, n, col), quoted, lambda n=n, col=col: cell(n, col))
            for phrase, n, col, quoted in items]


def rhvae_times(path):
    """wall_per_epoch or wall_vs_baseline rows of perf/time-study.sh's
    output without the controls."""
    return [r for r in rows(path) if not r["mitigation"].startswith("control-")]


def nb_curve(r, col):
    """col over the epochs of the notebook run r (NaN where not finite)."""
    return [fl(x[col]) for x in curve(NOTEBOOK, r)]


def nb_finite(r, col):
    return [x for x in nb_curve(r, col) if math.isfinite(x)]


def nb_pos(r):
    """(position of r's failing batch in its epoch, batches per epoch)."""
    return batch_position(r), batches_per_epoch(r)


def trig_steps(**where):
    """first_step of the trigger grid's baseline cells (partial batch kept)
    with the given columns (dots as __)."""
    return [fl(r["first_step"]) for r in sel(TRIG, mitigation="baseline", **where)]


def trig_one(init, data):
    return one_row(TRIG, mitigation="baseline", model__init_seed=init, train__seed=data)


def dl_steps(**where):
    """first_step of the trigger grid's drop-last cells with the given columns."""
    return [fl(r["first_step"]) for r in sel(TRIG, mitigation="drop-last", **where)]


def dl_one(init, data):
    return one_row(TRIG, mitigation="drop-last", model__init_seed=init, train__seed=data)


def dl_diffs():
    """Each drop-last cell's first_step minus its kept twin's (same seeds)."""
    return [fl(dl_one(i, d)["first_step"]) - fl(trig_one(i, d)["first_step"]) for i in TRIG_SEEDS for d in TRIG_SEEDS]


def worst_partial(path, mitigation):
    """(epochs in which the partial batch was the worst, epochs that had
    one, the count expected by chance) over mitigation's runs of path."""
    rs = sel(path, mitigation=mitigation)
    return (sum(fl(r["worst_partial_epochs"]) for r in rs),
            sum(fl(r["worst_partial_expected"]) * batches_per_epoch(r) for r in rs),
            sum(fl(r["worst_partial_expected"]) for r in rs))


def onset_epoch(path, r, level=300):
    """The first epoch whose largest gradient norm exceeds level in row r's
    curve (a row of path)."""
    return first_over([fl(c["grad_norm_max"]) for c in curve(path, r)], level)


def onset_steps():
    """Each trigger cell's step at the end of its onset epoch."""
    return [onset_epoch(TRIG, r) * batches_per_epoch(r) for r in rows(TRIG)]


def onset_stays(path, r, level=300):
    """1 when row r's largest gradient norm stays above level from its onset
    epoch to its last finite epoch, else 0."""
    g = [fl(c["grad_norm_max"]) for c in curve(path, r)]
    e = onset_epoch(path, r, level)
    return int(all(x > level for x in g[e - 1:] if math.isfinite(x)))


def map_rows_where(lr=None, batch=None, status=None):
    """The ResNet map's rows at a learning rate (a float) and batch (a string)."""
    return [r for r in rows(RMAP) if (lr is None or fl(r["optim.lr"]) == lr)
            and (batch is None or r["train.batch"] == batch) and (status is None or r["status"] == status)]


def map_one(lr, batch, seed):
    rs = [r for r in map_rows_where(lr, batch) if r["train.seed"] == seed]
    if len(rs) != 1:
        raise ValueError("%s lr %g batch %s seed %s: %d rows" % (RMAP, lr, batch, seed, len(rs)))
    return rs[0]


def map_nll_medians():
    """{(lr, batch): median nll_last_c of the finite runs} of the ResNet map."""
    out = {}
    for r in map_rows_where(status="ok"):
        out.setdefault((fl(r["optim.lr"]), r["train.batch"]), []).append(r["nll_last_c"])
    return {k: statistics.median(v) for k, v in out.items()}


def map_repeats_study(seed):
    """first_step of the map's report cell (lr 1e-4, batch 64) of seed when
    its step and origin node are the study's strict-guard row's, else NaN."""
    m, st = map_one(1e-4, "64", seed), one_row(ST, mitigation="strict-guard", train__seed=seed)
    same = all(m[c] == st[c] for c in ("first_step", "origin_node"))
    return fl(m["first_step"]) if same else float("nan")


def map_dead_steps(lr):
    """first_step of every map run at lr; [nan] when one of them did not die."""
    rs = map_rows_where(lr)
    return [fl(r["first_step"]) for r in rs] if rs and all(r["status"] == "nan" for r in rs) else [float("nan")]


MAP_CHECKS = [
    ("repeats the study's strict-guard rows of seeds 1-3 to the step (2,418,", RMAP + " lr 1e-4 batch 64 seed 1 first_step (= study strict-guard's)",
     "2,418", lambda: map_repeats_study("1")),
    ("2,813 and 2,259, the same origins). **Batch 16 is the only batch size", RMAP + " lr 1e-4 batch 64 seed 2 first_step (= study strict-guard's)",
     "2,813", lambda: map_repeats_study("2")),
    ("2,813 and 2,259, the same origins). **Batch 16 is the only batch size", RMAP + " lr 1e-4 batch 64 seed 3 first_step (= study strict-guard's)",
     "2,259", lambda: map_repeats_study("3")),
    ("finite at every rate up to 1e-3**: 9 of 9 runs over lr 1e-5 to 1e-3,", RMAP + " batch 16 finite runs at lr <= 1e-3",
     "9", lambda: sum(r["status"] == "ok" for r in map_rows_where(batch="16") if fl(r["optim.lr"]) <= 1e-3)),
    ("and at lr 1e-3 with the map's lowest NLL (743.0 nats, median), where", RMAP + " lowest cell median NLL (lr 1e-3 batch 16's)",
     "743.0", lambda: (lambda m: m[(1e-3, "16")] if m[(1e-3, "16")] == min(m.values()) else float("nan"))(map_nll_medians())),
    *span("at steps 477-647 and batch 64 at 642-1,019, and at lr 1e-4 batch 256 is", RMAP + " lr 1e-3 batch 256 first_step",
          "477", "647", lambda: [fl(r["first_step"]) for r in map_rows_where(1e-3, "256")]),
    *span("at steps 477-647 and batch 64 at 642-1,019, and at lr 1e-4 batch 256 is", RMAP + " lr 1e-3 batch 64 first_step",
          "642", "1,019", lambda: [fl(r["first_step"]) for r in map_rows_where(1e-3, "64")]),
    ("finite at its 1,000 updates but its epoch's largest gradient norm first", RMAP + " lr 1e-4 batch 256 steps",
     "1,000", lambda: statistics.median(fl(r["steps"]) for r in map_rows_where(1e-4, "256", "ok"))),
    *span("passes 300 in epochs 19-21 (by steps 760-840, before batch 64's onset", RMAP + " lr 1e-4 batch 256 onset epoch",
          "19", "21", lambda: [onset_epoch(RMAP, r) for r in map_rows_where(1e-4, "256")]),
    *span("passes 300 in epochs 19-21 (by steps 760-840, before batch 64's onset", RMAP + " lr 1e-4 batch 256 onset step",
          "760", "840", lambda: [onset_epoch(RMAP, r) * batches_per_epoch(r) for r in map_rows_where(1e-4, "256")]),
    *span("at 1,092-1,256 in item 4) and ends at 611 to 3,491: the pre-failure", RMAP + " lr 1e-4 batch 256 last grad_norm_max",
          "611", "3,491", lambda: [fl(curve(RMAP, r)[-1]["grad_norm_max"]) for r in map_rows_where(1e-4, "256")]),
    *span("at 1,092-1,256 in item 4) and ends at 611 to 3,491: the pre-failure", TRIG + " onset step",
          "1,092", "1,256", onset_steps),
    *span("batch learns less than batch 16 at lr 1e-4 or 1e-3 (NLL 747.1 to 755.0,", RMAP + " lr 1e-5 cell median NLL",
          "747.1", "755.0", lambda: [v for (lr, b), v in map_nll_medians().items() if lr == 1e-5]),
    *span("worse the larger the batch); at lr 1e-2 every run dies at step 2 or 3,", RMAP + " lr 1e-2 first_step",
          "2", "3", lambda: map_dead_steps(1e-2)),
    ("at batch 256 in the metric's kernel distances (`rhvae.A0.sqdist`) and", RMAP + " lr 1e-2 batch 256 (every origin one of the two named)",
     "256", lambda: 256 if map_rows_where(1e-2, "256") and all(
         r["origin_node"] in ("rhvae.A0.sqdist", "rhvae.std") for r in map_rows_where(1e-2, "256")) else float("nan")),
    ("  9), with the map's lowest NLL at lr 1e-3; at batch 64 and 256 lr 1e-3", RMAP + " batch 16 finite runs at lr <= 1e-3",
     "9", lambda: sum(r["status"] == "ok" for r in map_rows_where(batch="16") if fl(r["optim.lr"]) <= 1e-3)),
    *span("  at step 2 or 3; lr 1e-5 is safe at every batch and learns least.", RMAP + " lr 1e-2 first_step",
          "2", "3", lambda: map_dead_steps(1e-2)),
]


TRIGGER_CHECKS = [
    # item 4, the 3 x 3 grid with the partial batch kept (results/rhvae-resnet-trigger)
    ("**What the 3 x 3 grid says** (the partial batch kept; 9 cells). The", TRIG + " baseline cells that died",
     "9", lambda: sum(r["status"] == "nan" for r in sel(TRIG, mitigation="baseline"))),
    # diagonal_checks compares the diagonal cells that exist; this makes sure all 3 do
    ("diagonal repeats the study's baseline rows of seeds 1-3 exactly (step,", TRIG + " diagonal cells",
     "3", lambda: sum(r["model.init_seed"] == r["train.seed"] for r in sel(TRIG, mitigation="baseline"))),
    *span("cell dies, at steps 1,824-3,003, and neither seed fixes the step: with", TRIG + " baseline first_step",
          "1,824", "3,003", trig_steps),
    ("the same initialisation the three data orders die up to 1,178 steps", TRIG + " largest spread over data orders at one init seed",
     "1,178", lambda: max(max(trig_steps(model__init_seed=i)) - min(trig_steps(model__init_seed=i)) for i in TRIG_SEEDS)),
    *span("apart (init seed 1: steps 1,825 to 3,003), with the same data order the", TRIG + " init seed 1 first_step",
          "1,825", "3,003", lambda: trig_steps(model__init_seed="1")),
    ("three initialisations up to 886 apart (data seed 2: steps 2,117 to", TRIG + " largest spread over init seeds at one data order",
     "886", lambda: max(max(trig_steps(train__seed=d)) - min(trig_steps(train__seed=d)) for d in TRIG_SEEDS)),
    ("three initialisations up to 886 apart (data seed 2: steps 2,117 to", TRIG + " data seed 2 first_step, min",
     "2,117", lambda: min(trig_steps(train__seed="2"))),
    ("3,003). One coincidence stands out. Data order 3 breaks init seeds 1", TRIG + " data seed 2 first_step, max",
     "3,003", lambda: max(trig_steps(train__seed="2"))),
    ("and 2 on the same batch: init seed 2 has a NaN loss at step 1,824, and", TRIG + " init 2 data 3 first_step (NaN loss)",
     "1,824", lambda: one(TRIG, "first_step", mitigation="baseline", model__init_seed="2", train__seed="3", pythae_error="nan_loss")),
    ("init seed 1 pythae's ValueError at step 1,825,", TRIG + " init 1 data 3 first_step (ValueError)",
     "1,825", lambda: one(TRIG, "first_step", mitigation="baseline", model__init_seed="1", train__seed="3", pythae_error="value_error")),
    ("(`results/rhvae-resnet-trigger-strict`), it stops at step 1,824 on the", TRIG_STRICT + " first_step",
     "1,824", lambda: one(TRIG_STRICT, "first_step", first_quantity="grad_norm", origin_node="rhvae.lf1.grad.exp",
                          first_batch=trig_one("2", "3")["first_batch"])),
    ("same 64 images, in the same second-order backward", TRIG_STRICT + " first_batch images",
     "64", lambda: len(one_row(TRIG_STRICT, first_batch=trig_one("2", "3")["first_batch"])["first_batch"].split())),
    ("batch is step 1,824 of data order 3 (epoch 12, its 97th batch of 157;", TRIG + " init 2 data 3 first_epoch",
     "12", lambda: fl(trig_one("2", "3")["first_epoch"])),
    ("batch is step 1,824 of data order 3 (epoch 12, its 97th batch of 157;", TRIG + " init 2 data 3 failing batch position",
     "97", lambda: batch_position(trig_one("2", "3"))),
    ("dataset indices in init seed 2's `first_batch`, which begins 8781 916", TRIG + " init 2 data 3 first_batch[0]",
     "8781", lambda: fl(trig_one("2", "3")["first_batch"].split()[0])),
    ("981). Init seed 3, on the same data order, takes that batch without", TRIG + " init 2 data 3 first_batch[2]",
     "981", lambda: fl(trig_one("2", "3")["first_batch"].split()[2])),
    ("harm and dies at step 2,259. So a batch can be the trigger, but only", TRIG + " init 3 data 3 first_step",
     "2,259", lambda: fl(trig_one("3", "3")["first_step"])),
    # the table's texts
    ("dies in all 6 cells; 1,178 steps between its earliest and latest death with the partial batch", TRIG + " init 1 spread",
     "1,178", lambda: max(trig_steps(model__init_seed="1")) - min(trig_steps(model__init_seed="1"))),
    ("death with the partial batch, 95 without it (2,252-2,347) |", TRIG + " init 1 drop-last spread",
     "95", lambda: max(dl_steps(model__init_seed="1")) - min(dl_steps(model__init_seed="1"))),
    *span("death with the partial batch, 95 without it (2,252-2,347) |", TRIG + " init 1 drop-last first_step",
          "2,252", "2,347", lambda: dl_steps(model__init_seed="1")),
    ("without the partial batch that cell dies at 2,035 |", TRIG + " init 2 data 3 drop-last first_step",
     "2,035", lambda: fl(dl_one("2", "3")["first_step"])),
    ("dies in all 6 cells, within 192 steps with the partial batch; passes data order 3's step 1,824", TRIG + " init 3 spread",
     "192", lambda: max(trig_steps(model__init_seed="3")) - min(trig_steps(model__init_seed="3"))),
    ("dies in all 6 cells, within 192 steps with the partial batch; passes data order 3's step 1,824", TRIG + " init 3 first_step, min",
     "1,824", lambda: (lambda step: step if min(trig_steps(model__init_seed="3")) > step else float("nan"))(
         fl(trig_one("2", "3")["first_step"]))),
    *[(phrase, TRIG + " init %s cells that died (of 6)" % i, "6",
       lambda i=i: sum(r["status"] == "nan" for r in sel(TRIG, model__init_seed=i)))
      for i, phrase in (("1", "| dies in all 6 cells; 1,178 steps"), ("2", "| dies in all 6 cells; with data order 3"),
                        ("3", "| dies in all 6 cells, within 192"))],
    # the drop-last half
    ("0.70 to 1.00), as with the partial batch kept (9 of 9), so dropping it", TRIG + " drop-last cells that died",
     "9", lambda: sum(r["status"] == "nan" for r in sel(TRIG, mitigation="drop-last"))),
    ("twins part at step 157). Every cell still dies: 9 of 9 (95 % interval", TRIG + " drop-last cells",
     "9", lambda: len(sel(TRIG, mitigation="drop-last", data__drop_last="true"))),
    ("twins part at step 157). Every cell still dies: 9 of 9 (95 % interval", TRIG + " drop-last steps per epoch + 1",
     "157", lambda: batches_per_epoch(dl_one("1", "1")) + 1),
    ("0.70 to 1.00), as with the partial batch kept (9 of 9), so dropping it", TRIG + " drop-last Wilson low",
     "0.70", lambda: wilson(sum(r["status"] == "nan" for r in sel(TRIG, mitigation="drop-last")),
                            len(sel(TRIG, mitigation="drop-last")))[0]),
    ("same order, less each epoch's last 16 images (156 steps an epoch, so the", TRIG + " drop-last batches per epoch",
     "156", lambda: batches_per_epoch(dl_one("1", "1"))),
    ("against its kept twin each cell dies between 1,169 steps earlier and 522", TRIG + " drop-last minus kept, min (negated)",
     "1,169", lambda: -min(dl_diffs())),
    ("against its kept twin each cell dies between 1,169 steps earlier and 522", TRIG + " drop-last minus kept, max",
     "522", lambda: max(dl_diffs())),
    ("later (5 of 9 earlier, median -153), at steps 1,645-2,347 (epochs 11-16)", TRIG + " drop-last cells earlier than their twin",
     "5", lambda: sum(d < 0 for d in dl_diffs())),
    ("later (5 of 9 earlier, median -153), at steps 1,645-2,347 (epochs 11-16)", TRIG + " drop-last minus kept, median",
     "-153", lambda: statistics.median(dl_diffs())),
    *span("later (5 of 9 earlier, median -153), at steps 1,645-2,347 (epochs 11-16)", TRIG + " drop-last first_step",
          "1,645", "2,347", dl_steps),
    *span("later (5 of 9 earlier, median -153), at steps 1,645-2,347 (epochs 11-16)", TRIG + " drop-last first_epoch",
          "11", "16", lambda: [fl(r["first_epoch"]) for r in sel(TRIG, mitigation="drop-last")]),
    *span("against 1,824-3,003. Pythae's ValueError ends 7 of the 9 and the NaN", TRIG + " kept first_step",
          "1,824", "3,003", trig_steps),
    ("against 1,824-3,003. Pythae's ValueError ends 7 of the 9 and the NaN", TRIG + " drop-last value_error",
     "7", lambda: len(sel(TRIG, mitigation="drop-last", pythae_error="value_error"))),
    ("loss 2 (5 and 4 with the partial batch), from the same two origins as", TRIG + " drop-last nan_loss",
     "2", lambda: len(sel(TRIG, mitigation="drop-last", pythae_error="nan_loss"))),
    ("loss 2 (5 and 4 with the partial batch), from the same two origins as", TRIG + " kept value_error",
     "5", lambda: len(sel(TRIG, mitigation="baseline", pythae_error="value_error"))),
    ("loss 2 (5 and 4 with the partial batch), from the same two origins as", TRIG + " kept nan_loss",
     "4", lambda: len(sel(TRIG, mitigation="baseline", pythae_error="nan_loss"))),
    ("loss 2 (5 and 4 with the partial batch), from the same two origins as", TRIG + " origin nodes with the two named (2: no other)",
     "2", lambda: len({r["origin_node"] for r in rows(TRIG)} | {"rhvae.lf1.grad.exp", "rhvae.lf1.H.rho_A_rho"})),
    ("2,347 and 2,035. The lead itself reproduces: with the partial batch", TRIG + " init 1 data 3 drop-last first_step",
     "2,347", lambda: fl(dl_one("1", "3")["first_step"])),
    ("2,347 and 2,035. The lead itself reproduces: with the partial batch", TRIG + " init 2 data 3 drop-last first_step",
     "2,035", lambda: fl(dl_one("2", "3")["first_step"])),
    ("kept, it was the epoch's worst batch in 59 of the grid's 140 epochs", TRIG + " kept worst_partial_epochs",
     "59", lambda: worst_partial(TRIG, "baseline")[0]),
    ("kept, it was the epoch's worst batch in 59 of the grid's 140 epochs", TRIG + " kept epochs with a partial batch",
     "140", lambda: worst_partial(TRIG, "baseline")[1]),
    ("against 0.9 expected by chance (`worst_partial_epochs`, as in the study),", TRIG + " kept worst_partial_expected",
     "0.9", lambda: worst_partial(TRIG, "baseline")[2]),
    ("yet none of the 18 cells died on it (every `first_batch` has 64 images).", TRIG + " cells",
     "18", lambda: len(rows(TRIG))),
    ("yet none of the 18 cells died on it (every `first_batch` has 64 images).", TRIG + " failing batch size, min",
     "64", lambda: min(len(r["first_batch"].split()) for r in rows(TRIG))),
    *span("it: every one of the 18 runs dies at steps 1,645-3,003 at lr 1e-4.", TRIG + " first_step",
          "1,645", "3,003", lambda: [fl(r["first_step"]) for r in rows(TRIG)]),
    ("it: every one of the 18 runs dies at steps 1,645-3,003 at lr 1e-4.", TRIG + " cells that died",
     "18", lambda: sum(r["status"] == "nan" for r in rows(TRIG))),
    # the onset
    *span("gradient norm (`grad_norm_max`) first passes 300 in epoch 7 or 8, by", TRIG + " onset epoch",
          "7", "8", lambda: [onset_epoch(TRIG, r) for r in rows(TRIG)]),
    *span("steps 1,092-1,256, and never falls below 300 again before the run dies,", TRIG + " onset step",
          "1,092", "1,256", onset_steps),
    ("**What does not move: the onset.** In all 18 cells the epoch's largest", TRIG + " cells whose norm stays above 300 from its onset",
     "18", lambda: sum(onset_stays(TRIG, r) for r in rows(TRIG))),
    *span("as on the study's 10 baseline seeds (epoch 7 or 8 on every seed). The", ST + " baseline onset epoch",
          "7", "8", lambda: [onset_epoch(ST, r) for r in sel(ST, mitigation="baseline")]),
    ("as on the study's 10 baseline seeds (epoch 7 or 8 on every seed). The", ST + " baseline seeds",
     "10", lambda: len(sel(ST, mitigation="baseline"))),
    *span("deaths come 553-1,904 steps after that epoch's end. The seeds and the", TRIG + " first_step minus onset step",
          "553", "1,904", lambda: [fl(r["first_step"]) - s for r, s in zip(rows(TRIG), onset_steps())]),
    ("partial batch move the death over 1,358 steps but the onset over 164:", TRIG + " first_step spread",
     "1,358", lambda: max(fl(r["first_step"]) for r in rows(TRIG)) - min(fl(r["first_step"]) for r in rows(TRIG))),
    ("partial batch move the death over 1,358 steps but the onset over 164:", TRIG + " onset step spread",
     "164", lambda: max(onset_steps()) - min(onset_steps())),
    *span("gradient norm first passes 300 in epoch 7 or 8 (by steps", TRIG + " onset epoch",
          "7", "8", lambda: [onset_epoch(TRIG, r) for r in rows(TRIG)]),
    *span("  1,092-1,256), as on the study's 10 seeds. Training reaches a state", TRIG + " onset step",
          "1,092", "1,256", onset_steps),
    # section 1's bullet
    ("- **No single batch is the trigger (item 4, complete: 18 cells).** Over", TRIG + " cells",
     "18", lambda: len(rows(TRIG))),
    *span("partial batch, all 18 runs die, at steps 1,645-3,003. Neither seed", TRIG + " first_step",
          "1,645", "3,003", lambda: [fl(r["first_step"]) for r in rows(TRIG)]),
    ("fixes the step (1,178 steps apart at one init seed, 886 at one data", TRIG + " largest spread over data orders at one init seed",
     "1,178", lambda: max(max(trig_steps(model__init_seed=i)) - min(trig_steps(model__init_seed=i)) for i in TRIG_SEEDS)),
    ("fixes the step (1,178 steps apart at one init seed, 886 at one data", TRIG + " largest spread over init seeds at one data order",
     "886", lambda: max(max(trig_steps(train__seed=d)) - min(trig_steps(train__seed=d)) for d in TRIG_SEEDS)),
    *span("-1,169 to +522 steps without preventing one (9 of 9 die either way,", TRIG + " drop-last minus kept",
          "-1,169", "+522", dl_diffs),
    ("0.70 to 1.00). The partial batch is the epoch's worst far more often", TRIG + " drop-last Wilson low",
     "0.70", lambda: wilson(sum(r["status"] == "nan" for r in sel(TRIG, mitigation="drop-last")),
                            len(sel(TRIG, mitigation="drop-last")))[0]),
    ("than chance (59 of 140 epochs against 0.9 expected), as the lead from", TRIG + " kept worst_partial_epochs",
     "59", lambda: worst_partial(TRIG, "baseline")[0]),
    ("than chance (59 of 140 epochs against 0.9 expected), as the lead from", TRIG + " kept worst_partial_expected",
     "0.9", lambda: worst_partial(TRIG, "baseline")[2]),
]


def nb_b16_finite():
    """The notebook's batch-16 runs that stayed finite."""
    return sel(NOTEBOOK, mitigation="batch-16", status="ok")


def nb_acc1():
    """The notebook's accumulate-4x16 run of seed 1."""
    return one_row(NOTEBOOK, mitigation="accumulate-4x16", train__seed="1")
NOTEBOOK_CHECKS = [
    # item 5, the unmodified notebook (results/rhvae-tutorial-seeds)
    ("report says: 5 of 5 (95 % interval 0.57 to 1.00), in epoch 3 or 4,", NOTEBOOK + " baseline nan runs",
     "5", lambda: sum(r["status"] == "nan" for r in sel(NOTEBOOK, mitigation="baseline"))),
    *span("report says: 5 of 5 (95 % interval 0.57 to 1.00), in epoch 3 or 4,", NOTEBOOK + " baseline first_epoch",
          "3", "4", lambda: [fl(r["first_epoch"]) for r in sel(NOTEBOOK, mitigation="baseline")]),
    ("report says: 5 of 5 (95 % interval 0.57 to 1.00), in epoch 3 or 4,", NOTEBOOK + " baseline value_error runs",
     "5", lambda: sum(r["pythae_error"] == "value_error" and r["nan_node"] == "rhvae.lf1.A.w"
                      for r in sel(NOTEBOOK, mitigation="baseline"))),
    ("the study. The epoch's largest gradient norm passes 300 in epoch 2 on", NOTEBOOK + " baseline first epoch over 300, max",
     "2", lambda: max(first_over(nb_curve(r, "grad_norm_max"), 300) for r in sel(NOTEBOOK, mitigation="baseline"))),
    *span("all 5 (its highest in a finite epoch 2,109 to 6,125).", NOTEBOOK + " baseline largest finite grad_norm_max",
          "2,109", "6,125", lambda: [max(nb_finite(r, "grad_norm_max")) for r in sel(NOTEBOOK, mitigation="baseline")]),
    *span("deaths come at steps 1,788-3,019; the report's setting died at steps", NOTEBOOK + " baseline first_step",
          "1,788", "3,019", lambda: [fl(r["first_step"]) for r in sel(NOTEBOOK, mitigation="baseline")]),
    *span("1,689-2,814 (epochs 11-18 of 157 steps; item 1). With five times the", ST + " baseline first_step",
          "1,689", "2,814", lambda: [fl(r["first_step"]) for r in st_base()]),
    ("Batch 16 does not fix the notebook.** Its 10 epochs are 31,250", NOTEBOOK + " batch-16 steps of a finite run",
     "31,250", lambda: max(fl(r["steps"]) for r in nb_b16_finite())),
    *span("22,500-30,625 on 9 of 10 seeds, deaths at 28,725 and 30,546). Here the", ST50 + " batch-16 steps at the first epoch over 300 after 25",
          "22,500", "30,625", lambda: [curve_at(ST50, r, b16_first_over(r["train.seed"], 300), "steps")
                                       for r in sel(ST50, mitigation="batch-16")
                                       if math.isfinite(b16_first_over(r["train.seed"], 300))]),
    ("22,500-30,625 on 9 of 10 seeds, deaths at 28,725 and 30,546). Here the", ST50 + " batch-16 seeds over 300 after 25",
     "9", lambda: sum(math.isfinite(b16_first_over(r["train.seed"], 300)) for r in sel(ST50, mitigation="batch-16"))),
    *span("300 in epoch 8, 9 or 10 (steps 21,876 to 31,250) on all 5 seeds; seed", NOTEBOOK + " batch-16 first epoch over 300",
          "8", "10", lambda: [first_over(nb_curve(r, "grad_norm_max"), 300) for r in sel(NOTEBOOK, mitigation="batch-16")]),
    ("1 dies in epoch 9 (step 26,905) with the baseline's error and origin,", NOTEBOOK + " batch-16 seed 1 first_step",
     "26,905", lambda: one(NOTEBOOK, "first_step", mitigation="batch-16", train__seed="1", nan_node="rhvae.lf1.A.w",
                           pythae_error="value_error")),
    ("and the four finite runs end with a largest gradient norm of 1.4e3 to", NOTEBOOK + " batch-16 finite runs",
     "4", lambda: len(nb_b16_finite())),
    # the epoch of the first gradient norm over 300 spans these steps: the first step of the earliest such epoch, the last of the latest
    ("300 in epoch 8, 9 or 10 (steps 21,876 to 31,250) on all 5 seeds; seed", NOTEBOOK + " batch-16 first step of the first epoch over 300",
     "21,876", lambda: min(fl(curve(NOTEBOOK, r)[first_over(nb_curve(r, "grad_norm_max"), 300) - 2]["steps"]) + 1
                           for r in sel(NOTEBOOK, mitigation="batch-16"))),
    ("300 in epoch 8, 9 or 10 (steps 21,876 to 31,250) on all 5 seeds; seed", NOTEBOOK + " batch-16 last step of the first epoch over 300",
     "31,250", lambda: max(fl(curve(NOTEBOOK, r)[first_over(nb_curve(r, "grad_norm_max"), 300) - 1]["steps"])
                           for r in sel(NOTEBOOK, mitigation="batch-16"))),
    ("and the four finite runs end with a largest gradient norm of 1.4e3 to", NOTEBOOK + " batch-16 finite grad_norm_max at 10, min",
     "1.4e3", lambda: min(nb_curve(r, "grad_norm_max")[-1] for r in nb_b16_finite())),
    ("2.2e4 and an eval SSE of 24.8 to 31.3, against their lowest, 20.0 to", NOTEBOOK + " batch-16 finite grad_norm_max at 10, max",
     "2.2e4", lambda: max(nb_curve(r, "grad_norm_max")[-1] for r in nb_b16_finite())),
    *span("2.2e4 and an eval SSE of 24.8 to 31.3, against their lowest, 20.0 to", NOTEBOOK + " batch-16 finite eval_sse at 10",
          "24.8", "31.3", lambda: [nb_curve(r, "eval_sse")[-1] for r in nb_b16_finite()]),
    ("2.2e4 and an eval SSE of 24.8 to 31.3, against their lowest, 20.0 to", NOTEBOOK + " batch-16 finite lowest eval_sse, min",
     "20.0", lambda: min(min(nb_finite(r, "eval_sse")) for r in nb_b16_finite())),
    ("21.4 (epochs 6-9). The claim", NOTEBOOK + " batch-16 finite lowest eval_sse, max",
     "21.4", lambda: max(min(nb_finite(r, "eval_sse")) for r in nb_b16_finite())),
    *span("21.4 (epochs 6-9). The claim \"batch 16 fixed it\" holds for the", NOTEBOOK + " batch-16 finite epoch of the lowest eval_sse",
          "6", "9", lambda: [nb_curve(r, "eval_sse").index(min(nb_finite(r, "eval_sse"))) + 1 for r in nb_b16_finite()]),
    *span("their held-out SSE 23 to 54 % above its lowest |", NOTEBOOK + " batch-16 finite last / lowest eval_sse - 1, %",
          "23", "54", lambda: [100 * (nb_curve(r, "eval_sse")[-1] / min(nb_finite(r, "eval_sse")) - 1) for r in nb_b16_finite()]),
    ("report's 25 epochs of 10,000 images (15,625 updates), not for the", ST + " batch-16 steps",
     "15,625", lambda: max(fl(r["steps"]) for r in sel(ST, mitigation="batch-16"))),
    *span("epoch is 8, 9 or 10, in the pattern, with an eval SSE of 24.8 to 31.0.", NOTEBOOK + " batch-16 best_epoch",
          "8", "10", lambda: [fl(r["best_epoch"]) for r in sel(NOTEBOOK, mitigation="batch-16")]),
    ("loss plunges as the blow-up starts, so on all 5 seeds the", NOTEBOOK + " batch-16 runs whose best epoch is in the pattern",
     "5", lambda: sum(int(r["best_epoch"]) >= first_over(nb_curve(r, "grad_norm_max"), 300)
                      for r in sel(NOTEBOOK, mitigation="batch-16"))),
    *span("epoch is 8, 9 or 10, in the pattern, with an eval SSE of 24.8 to 31.0.", NOTEBOOK + " batch-16 sse_best",
          "24.8", "31.0", lambda: [fl(r["sse_best"]) for r in sel(NOTEBOOK, mitigation="batch-16")]),
    ("The IS-NLL barely sees it (745.0 at that epoch, median).", NOTEBOOK + " batch-16 median nll_best_c",
     "745.0", lambda: statistics.median(r["nll_best_c"] for r in sel(NOTEBOOK, mitigation="batch-16"))),
    *span("epoch's largest gradient norm from epoch 2 on peaks at 75 to 115 per", NOTEBOOK + " accumulate-4x16 largest grad_norm_max from epoch 2",
          "75", "115", lambda: [max(nb_curve(r, "grad_norm_max")[1:]) for r in sel(NOTEBOOK, mitigation="accumulate-4x16")]),
    *span("seed, inside study-50's 81 to 126 over its 50 epochs. It takes the", ST50 + " accumulate-4x16 largest grad_norm_max from epoch 2",
          "81", "126", lambda: [max(fl(c["grad_norm_max"]) for c in curve(ST50, r)[1:]) for r in sel(ST50, mitigation="accumulate-4x16")]),
    ("baseline's 7,820 updates, about study-50's 50 epochs (7,850), where it", NOTEBOOK + " accumulate-4x16 steps",
     "7,820", lambda: max(fl(r["steps"]) for r in sel(NOTEBOOK, mitigation="accumulate-4x16"))),
    ("baseline's 7,820 updates, about study-50's 50 epochs (7,850), where it", ST50 + " accumulate-4x16 steps",
     "7,850", lambda: max(fl(r["steps"]) for r in sel(ST50, mitigation="accumulate-4x16"))),
    # its last epoch has its largest gradient norm from epoch 2 on: the max and the value at 10 are both 115
    ("largest gradient norm (115) and an SSE up from 22.8 to 24.8: too little", NOTEBOOK + " accumulate-4x16 seed 1 largest grad_norm_max from 2",
     "115", lambda: max(nb_curve(nb_acc1(), "grad_norm_max")[1:])),
    ("largest gradient norm (115) and an SSE up from 22.8 to 24.8: too little", NOTEBOOK + " accumulate-4x16 seed 1 grad_norm_max at 10",
     "115", lambda: nb_curve(nb_acc1(), "grad_norm_max")[9]),
    ("largest gradient norm (115) and an SSE up from 22.8 to 24.8: too little", NOTEBOOK + " accumulate-4x16 seed 1 eval_sse at 9",
     "22.8", lambda: nb_curve(nb_acc1(), "eval_sse")[8]),
    ("largest gradient norm (115) and an SSE up from 22.8 to 24.8: too little", NOTEBOOK + " accumulate-4x16 seed 1 eval_sse at 10",
     "24.8", lambda: nb_curve(nb_acc1(), "eval_sse")[9]),
    ("images: 50,000 = 781 x 64 + 16) was the epoch's worst in 1 of the", NOTEBOOK + " baseline worst_partial_epochs",
     "1", lambda: worst_partial(NOTEBOOK, "baseline")[0]),
    ("baseline's 16 epochs against 0.02 expected by chance; none of the 6", NOTEBOOK + " baseline epochs with the partial batch",
     "16", lambda: worst_partial(NOTEBOOK, "baseline")[1]),
    ("baseline's 16 epochs against 0.02 expected by chance; none of the 6", NOTEBOOK + " baseline worst_partial_expected",
     "0.02", lambda: worst_partial(NOTEBOOK, "baseline")[2]),
    ("baseline's 16 epochs against 0.02 expected by chance; none of the 6", NOTEBOOK + " deaths not on a partial batch",
     "6", lambda: sum(r["status"] == "nan" and not (has_partial(r) and nb_pos(r)[0] == nb_pos(r)[1])
                      for r in rows(NOTEBOOK))),
    *span("deaths came on it (the baseline's at positions 224 to 698 of 782,", NOTEBOOK + " baseline failing batch position",
          "224", "698", lambda: [nb_pos(r)[0] for r in sel(NOTEBOOK, mitigation="baseline")]),
    ("batch 16's at 1,905 of 3,125).", NOTEBOOK + " batch-16 seed 1 failing batch position",
     "1,905", lambda: nb_pos(one_row(NOTEBOOK, mitigation="batch-16", train__seed="1"))[0]),
]


CHECKS = [
    # section 5, the first code's ResNets
    ("median 15, steps 1,454 to 2,585", SEEDS + " first_epoch median, pythae",
     "15", lambda: statistics.median(
         fl(r["first_epoch"]) for r in sel(SEEDS, train__nan_check="pythae")
         if r["status"] == "nan")),
    *span("median 15, steps 1,454 to 2,585", SEEDS + " first_step, pythae", "1454", "2585",
           lambda: [fl(r["first_step"]) for r in sel(SEEDS, train__nan_check="pythae")
                    if r["status"] == "nan"]),
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
    # section 5, the proxy's seeds
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
    *span("final -8.9 to 60.3", MLP + " finite rows final_eval_loss", "-8.9", "60.3",
           lambda: [fl(r["final_eval_loss"]) for r in sel(MLP, status="ok")]),
    # section 2, the study's design
    *span("17.9-34.7 CPU seconds per RHVAE epoch, median 29.8", ST + " RHVAE cpu_per_epoch", "17.9", "34.7",
          lambda: [fl(r["cpu_per_epoch"]) for r in rows(ST) if r["model.kind"] == "rhvae" and r["cpu_per_epoch"]]),
    ("17.9-34.7 CPU seconds per RHVAE epoch, median 29.8", ST + " RHVAE median cpu_per_epoch", "29.8",
     lambda: med(r["cpu_per_epoch"] for r in rows(ST) if r["model.kind"] == "rhvae" and r["cpu_per_epoch"])),
    ("110 cells, at most about 27 core-hours", ST + " cells x 25 epochs x max cpu_per_epoch / 3600", "27",
     lambda: len(rows(ST)) * 25 * max(fl(r["cpu_per_epoch"]) for r in rows(ST) if r["cpu_per_epoch"]) / 3600),
    # section 1, the verdict table's texts (its other cells: table_checks)
    *span("gradient norm stays flat (32-37 at epoch 15, 30-38 at 50)", ST50 + " accumulate-4x16 grad_norm_median at 15",
          "32", "37", lambda: [curve_at(ST50, r, 15, "grad_norm_median") for r in sel(ST50, mitigation="accumulate-4x16")]),
    *span("gradient norm stays flat (32-37 at epoch 15, 30-38 at 50)", ST50 + " accumulate-4x16 grad_norm_median at 50",
          "30", "38", lambda: [curve_at(ST50, r, 50, "grad_norm_median") for r in sel(ST50, mitigation="accumulate-4x16")]),
    ("1e-5's climbs on all 10 seeds (30-32 at epoch 15, 48-56 at 50)", ST50 + " lr-1e-5 seeds whose grad_norm_median rose 15 to 50",
     "10", lambda: sum(curve_at(ST50, r, 50, "grad_norm_median") > curve_at(ST50, r, 15, "grad_norm_median")
                       for r in sel(ST50, mitigation="lr-1e-5"))),
    *span("1e-5's climbs on all 10 seeds (30-32 at epoch 15, 48-56 at 50)", ST50 + " lr-1e-5 grad_norm_median at 15",
          "30", "32", lambda: [curve_at(ST50, r, 15, "grad_norm_median") for r in sel(ST50, mitigation="lr-1e-5")]),
    *span("1e-5's climbs on all 10 seeds (30-32 at epoch 15, 48-56 at 50)", ST50 + " lr-1e-5 grad_norm_median at 50",
          "48", "56", lambda: [curve_at(ST50, r, 50, "grad_norm_median") for r in sel(ST50, mitigation="lr-1e-5")]),
    # section 2, item 3: the lower rates on the steps x rate axis (lr_axis.png)
    *span("lr 1e-6's eval SSE (57.3 to 62.9) is lr", ST50 + " lr-1e-6 eval_sse at 50", "57.3", "62.9",
          lambda: [a for a, _ in at_tenth("eval_sse")]),
    *span("1e-5's at epoch 5 (57.5 to 61.9), and their epoch-median gradient norms", ST + " lr-1e-5 eval_sse at 5 (lr 1e-6's seeds)",
          "57.5", "61.9", lambda: [b for _, b in at_tenth("eval_sse")]),
    ("differ by at most 1.3 on each of the 10 seeds", ST50 + " max |lr-1e-6 at 50 - lr-1e-5 at 5| grad_norm_median", "1.3",
     lambda: max(abs(a - b) for a, b in at_tenth("grad_norm_median"))),
    ("differ by at most 1.3 on each of the 10 seeds", ST50 + " lr-1e-6 seeds", "10", lambda: len(at_tenth("eval_sse"))),
    *span("baseline it holds for the held-out reconstruction (eval SSE 38.5 to 45.0", ST50 + " lr-1e-5 eval_sse at 50",
          "38.5", "45.0", lambda: [curve_at(ST50, r, 50, "eval_sse") for r in sel(ST50, mitigation="lr-1e-5")]),
    *span("at epoch 50, the baseline's 40.3 to 46.5 at epoch 5)", ST + " baseline eval_sse at 5", "40.3", "46.5",
          lambda: [curve_at(ST, r, 5, "eval_sse") for r in st_base()]),
    *span("gradient norm runs ahead: 48 to 56 at epoch 50", ST50 + " lr-1e-5 grad_norm_median at 50", "48", "56",
          lambda: [curve_at(ST50, r, 50, "grad_norm_median") for r in sel(ST50, mitigation="lr-1e-5")]),
    *[c for e, lo, hi, phrase in ((5, "31", "39", "31 to 39 at epoch 5, 35 to 44 at 6 and 42 to 93 at 7"),
                                  (6, "35", "44", "31 to 39 at epoch 5, 35 to 44 at 6 and 42 to 93 at 7"),
                                  (7, "42", "93", "31 to 39 at epoch 5, 35 to 44 at 6 and 42 to 93 at 7"))
      for c in span(phrase, ST + " baseline grad_norm_median at %d" % e, lo, hi,
                    lambda e=e: [curve_at(ST, r, e, "grad_norm_median") for r in st_base()])],
    *span("passed 100 at epoch 8 or 9 on every seed", ST + " baseline first epoch with grad_norm_median > 100",
          "8", "9", lambda: base_first_over("grad_norm_median", 100)),
    *span("epochs 11 to 18. On this axis", ST + " baseline first_epoch", "11", "18",
          lambda: [fl(r["first_epoch"]) for r in st_base()]),
    ("**It reproduces on every seed.** All 10 die (95 % interval 0.72 to", ST + " baseline NaN runs", "10",
     lambda: sum(r["status"] == "nan" for r in st_base())),
    ("**It reproduces on every seed.** All 10 die (95 % interval 0.72 to", ST + " baseline Wilson low", "0.72",
     lambda: wilson(sum(r["status"] == "nan" for r in st_base()), len(st_base()))[0]),
    ("1.00) at epochs 11-18: 4 with #132's", ST + " baseline Wilson high", "1.00",
     lambda: wilson(sum(r["status"] == "nan" for r in st_base()), len(st_base()))[1]),
    ("1.00) at epochs 11-18: 4 with #132's", ST + " baseline nan_loss", "4",
     lambda: sum(r["pythae_error"] == "nan_loss" for r in st_base())),
    ("and 6\n  with #131's ValueError", ST + " baseline value_error", "6",
     lambda: sum(r["pythae_error"] == "value_error" for r in st_base())),
    ("| dies: every seed, by epoch 18 |", ST + " baseline max first_epoch", "18",
     lambda: max(fl(r["first_epoch"]) for r in st_base()) if all(r["status"] == "nan" for r in st_base()) else float("nan")),
    *span("a delay: every continued run dies, at epochs 25-43 |", ST50 + " diag-softplus first_epoch", "25", "43",
          lambda: [fl(r["first_epoch"]) for r in sel(ST50, mitigation="diag-softplus")]
          if all(r["status"] == "nan" for r in sel(ST50, mitigation="diag-softplus")) else [float("nan")]),
    # section 2, item 4: spike-only clipping against the baseline, seed by seed
    *span("clips (0.2-0.6 % of them, `clipped_share`), yet on all 10 seeds it dies", ST + " clip-adaptive clipped_share, %",
          "0.2", "0.6", lambda: [100 * fl(r["clipped_share"]) for r in sel(ST, mitigation="clip-adaptive")]),
    ("clips (0.2-0.6 % of them, `clipped_share`), yet on all 10 seeds it dies", ST + " clip-adaptive seeds dying at another step",
     "10", lambda: sum(r["status"] == "nan" and r["first_step"] != b["first_step"] for r, b in clip_vs_base())),
    ("at a different step, from 533 steps before the baseline's to 1,136", ST + " clip-adaptive first_step: most steps before the baseline's",
     "533", lambda: -min(fl(r["first_step"]) - fl(b["first_step"]) for r, b in clip_vs_base())),
    ("at a different step, from 533 steps before the baseline's to 1,136", ST + " clip-adaptive first_step: most steps after the baseline's",
     "1,136", lambda: max(fl(r["first_step"]) - fl(b["first_step"]) for r, b in clip_vs_base())),
    ("after, on a batch that shares at most 1 of its 64 images with the", ST + " clip-adaptive max shared images with baseline's batch",
     "1", lambda: max(len(set(r["first_batch"].split()) & set(b["first_batch"].split())) for r, b in clip_vs_base())),
    # section 3, the mechanism on the ResNets (the study's baseline)
    ("(`replayed = same` in 10 of 10): a", ST + " baseline replayed = same", "10",
     lambda: sum(r["replayed"] == "same" for r in st_base())),
    ("product in 8 runs and a sum in 2 (`cause`)", ST + " baseline product_overflow", "8",
     lambda: sum(r["cause"] == "product_overflow" for r in st_base())),
    ("product in 8 runs and a sum in 2 (`cause`)", ST + " baseline sum_overflow", "2",
     lambda: sum(r["cause"] == "sum_overflow" for r in st_base())),
    *[("the batch (`bad_samples`: 1 in 5 runs, 2 in 4, 4 in 1)", ST + " baseline bad_samples = %s" % k, n,
       lambda k=k: sum(r["bad_samples"] == k for r in st_base())) for k, n in (("1", "5"), ("2", "4"), ("4", "1"))],
    ("In the 6 runs\n  that end with pythae's ValueError", ST + " baseline ValueError at rhvae.lf1.grad.exp", "6",
     lambda: sum(r["pythae_error"] == "value_error" and r["origin_node"] == "rhvae.lf1.grad.exp" for r in st_base())),
    ("(`rhvae.lf1.grad.exp`); in the 4 that end", ST + " baseline NaN loss at rhvae.lf1.H.rho_A_rho", "4",
     lambda: sum(r["pythae_error"] == "nan_loss" and r["origin_node"] == "rhvae.lf1.H.rho_A_rho" for r in st_base())),
    *span("the epoch-median gradient norm is 30-35 at", ST + " baseline grad_norm_median at 4", "30", "35",
          lambda: [curve_at(ST, r, 4, "grad_norm_median") for r in st_base()]),
    *span("epoch 4 in every seed and 212-298 at epoch 10", ST + " baseline grad_norm_median at 10", "212", "298",
          lambda: [curve_at(ST, r, 10, "grad_norm_median") for r in st_base()]),
    *span("48-64 at epoch 4, 795-2,559 at epoch 10", ST + " baseline grad_norm_max at 4", "48", "64",
          lambda: [curve_at(ST, r, 4, "grad_norm_max") for r in st_base()]),
    *span("48-64 at epoch 4, 795-2,559 at epoch 10", ST + " baseline grad_norm_max at 10", "795", "2,559",
          lambda: [curve_at(ST, r, 10, "grad_norm_max") for r in st_base()]),
    *span("gradient norm exceeds 10x its running median comes 4 to 1,735 steps", ST + " baseline lead_time", "4", "1,735",
          lambda: [fl(r["lead_time"]) for r in st_base()]),
    ("before the NaN (median 1,032, `lead_time`)", ST + " baseline median lead_time", "1,032",
     lambda: med(r["lead_time"] for r in st_base())),
    *span("(8-10, by eval loss)", ST + " baseline best_epoch", "8", "10",
          lambda: [fl(r["best_epoch"]) for r in st_base()]),
    ("the encoder mean keeps improving on all 10 seeds", ST + " baseline runs whose eval_sse fell from best to last", "10",
     lambda: 10 if len(st_base()) == 10 and all(b > l for b, l in st_best_last("eval_sse")) else float("nan")),
    *span("36.7-42.9 at the best epoch, 31.5-41.2 at the last", ST + " baseline eval_sse at the best epoch", "36.7", "42.9",
          lambda: [b for b, _ in st_best_last("eval_sse")]),
    *span("36.7-42.9 at the best epoch, 31.5-41.2 at the last", ST + " baseline eval_sse at the last finite epoch", "31.5", "41.2",
          lambda: [l for _, l in st_best_last("eval_sse")]),
    ("worsens on all 10 (20.0-22.3, then 23.7-28.2)", ST + " baseline runs whose eval_recon rose", "10",
     lambda: 10 if len(st_base()) == 10 and all(b < l for b, l in st_best_last("eval_recon")) else float("nan")),
    *span("worsens on all 10 (20.0-22.3, then 23.7-28.2)", ST + " baseline eval_recon at the best epoch", "20.0", "22.3",
          lambda: [b for b, _ in st_best_last("eval_recon")]),
    *span("worsens on all 10 (20.0-22.3, then 23.7-28.2)", ST + " baseline eval_recon at the last finite epoch", "23.7", "28.2",
          lambda: [l for _, l in st_best_last("eval_recon")]),
    ("held-out NLL, higher at the last finite epoch than at the best on all\n  10", ST + " baseline nll_last > nll_best", "10",
     lambda: sum(r["nll_last_c"] > r["nll_best_c"] for r in st_base())),
    ("pattern (its 10 runs at 50 epochs", ST50 + " diag-softplus runs dead at rhvae.lf1.grad.exp", "10",
     lambda: sum(r["status"] == "nan" and r["origin_node"] == "rhvae.lf1.grad.exp" for r in sel(ST50, mitigation="diag-softplus"))),
    ("one the reconstruction term rises in 10 and the SSE falls in 9", ST50 + " diag-softplus eval_recon rose from epoch 20", "10",
     lambda: sum(curve_at(ST50, r, 20, "eval_recon") < curve_last_eval(ST50, r, "eval_recon") for r in sel(ST50, mitigation="diag-softplus"))),
    ("one the reconstruction term rises in 10 and the SSE falls in 9", ST50 + " diag-softplus eval_sse fell from epoch 20", "9",
     lambda: sum(curve_at(ST50, r, 20, "eval_sse") > curve_last_eval(ST50, r, "eval_sse") for r in sel(ST50, mitigation="diag-softplus"))),
    *span("softplus's die later, at epochs 25-43", ST50 + " diag-softplus first_epoch", "25", "43",
          lambda: [fl(r["first_epoch"]) for r in sel(ST50, mitigation="diag-softplus")]),
    # section 3, the earlier folders
    *csv_cells(R + "rhvae-issue132/curves/6faab9c6e395fe41.csv", "first code seed 2, epoch", [
        ("the epoch-median gradient norm climbs from 37 (epoch 1) to 94 (epoch 7),", 1, "grad_norm_median", "37"),
        ("the epoch-median gradient norm climbs from 37 (epoch 1) to 94 (epoch 7),", 7, "grad_norm_median", "94"),
        ("269 (10) and 420 (15); the loss falls mostly through its regularisation", 10, "grad_norm_median", "269"),
        ("269 (10) and 420 (15); the loss falls mostly through its regularisation", 15, "grad_norm_median", "420"),
        ("part (+8.5 in epoch 1, -16 by epoch 12) while the reconstruction part", 1, "train_kl", "+8.5"),
        ("part (+8.5 in epoch 1, -16 by epoch 12) while the reconstruction part", 12, "train_kl", "-16"),
        ("stalls near 18, and epoch 13 already had a 9.8e5 loss spike that", 12, "train_recon", "18"),
        ("stalls near 18, and epoch 13 already had a 9.8e5 loss spike that", 13, "train_loss", "9.8e5")]),
    *csv_cells(R + "rhvae-issue132/precursors/dfd63c840a88466c.csv", "first code seed 1 precursor, row", [
        ("(seed 1, `precursors/dfd63c840a88466c.csv`) the loss goes 28 -> 76 -> 7.9e20 -> NaN while", -3, "loss", "28"),
        ("(seed 1, `precursors/dfd63c840a88466c.csv`) the loss goes 28 -> 76 -> 7.9e20 -> NaN while", -2, "loss", "76"),
        ("(seed 1, `precursors/dfd63c840a88466c.csv`) the loss goes 28 -> 76 -> 7.9e20 -> NaN while", -1, "loss", "7.9e20"),
        ("max |z| jumps from 2.8 to 2.8e11: one sample's latent", -2, "max_abs_z", "2.8"),
        ("max |z| jumps from 2.8 to 2.8e11: one sample's latent", -1, "max_abs_z", "2.8e11")]),
    *span("running median) is 30 to 1,176 steps before the NaN on the ResNets", SEEDS + " pythae-check NaN lead_time", "30", "1,176",
          lambda: [fl(r["lead_time"]) for r in rows(SEEDS) if r["train.nan_check"] == "pythae" and r["status"] == "nan"]),
    ("(median 818; `lead_time` of the 9 runs with pythae's check)", SEEDS + " median lead_time", "818",
     lambda: med(r["lead_time"] for r in rows(SEEDS) if r["train.nan_check"] == "pythae" and r["status"] == "nan")),
    ("(median 818; `lead_time` of the 9 runs with pythae's check)", SEEDS + " pythae-check NaN runs", "9",
     lambda: sum(r["train.nan_check"] == "pythae" and r["status"] == "nan" for r in rows(SEEDS))),
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
    # section 4, the proxy's mitigation table (the table itself: table_checks)
    ("the baseline's\nmedian best NLL is 753.5 nats", MIT + " baseline median nll_best",
     "753.5", lambda: lref(MIT, "baseline")),
    ("so the margin is 15.1 nats", MIT + " learned margin",
     "15.1", lambda: max(5.0, 0.02 * abs(lref(MIT, "baseline")))),
    ("non-finite value is at step 2,997 under 11 of the 24 settings", MIT + " seed 8 first_step",
     "2997", lambda: one(MIT, "first_step", mitigation="baseline", train__seed="8")),
    ("non-finite value is at step 2,997 under 11 of the 24 settings", MIT + " mitigations whose seed 8 dies at 2,997",
     "11", lambda: sum(r["first_step"] == "2997" for r in sel(MIT, train__seed="8"))),
    ("non-finite value is at step 2,997 under 11 of the 24 settings", MIT + " mitigations",
     "24", lambda: len({r["mitigation"] for r in rows(MIT)})),
    *span("(clipped share 0.9997 to\n  1.0 at 5)", MIT + " clip-norm-5 clipped_share", "0.9997", "1.0",
           lambda: [fl(r["clipped_share"]) for r in sel(MIT, mitigation="clip-norm-5")]),
    *span("clipping 0.07 % to 0.31 % of steps", MIT + " clip-adaptive clipped_share %", "0.07", "0.31",
           lambda: [100 * fl(r["clipped_share"]) for r in sel(MIT, mitigation="clip-adaptive")]),
    ("(up to 1,250 skipped)", MIT + " skip-nonfinite max skipped",
     "1250", lambda: max(fl(r["skipped"]) for r in sel(MIT, mitigation="skip-nonfinite"))),
    ("two\n  runs ending above a train loss of 1,000 (8.6e3 and 1.6e5)", MIT + " cosine runs with final train loss > 1e3",
     "2", lambda: sum(fl(r["final_train_loss"]) > 1000 for r in sel(MIT, mitigation="cosine"))),
    ("runs ending above a train loss of 1,000 (8.6e3 and 1.6e5)", MIT + " cosine second largest final_train_loss",
     "8.6e3", lambda: sorted(fl(r["final_train_loss"]) for r in sel(MIT, mitigation="cosine"))[-2]),
    *span("it clamps 2 % to 3 % of the H-gradient's entries", MIT + " h-grad-clip-100 h_clamped_share %", "2", "3",
           lambda: [100 * fl(r["h_clamped_share"]) for r in sel(MIT, mitigation="h-grad-clip-100")]),
    ("NLL about 30 nats above the baseline's best, SSE 3.5x", MIT + " lr-1e-6 median nll_last minus reference",
     "30", lambda: med(r["nll_last_c"] for r in sel(MIT, mitigation="lr-1e-6")) - lref(MIT, "baseline")),
    ("NLL about 30 nats above the baseline's best, SSE 3.5x", MIT + " lr-1e-6 / baseline median sse_last",
     "3.5", lambda: med(r["sse_last"] for r in sel(MIT, mitigation="lr-1e-6"))
     / med(r["sse_last"] for r in sel(MIT, mitigation="baseline"))),
    ("both on seed 6, whose baseline finishes", MIT + " batch-16 + accumulate NaN seeds",
     "6", lambda: 6 if {r["train.seed"] for m in ("batch-16", "accumulate-4x16")
                        for r in sel(MIT, mitigation=m) if r["status"] != "ok"} == {"6"}
     and txt(MIT, "status", mitigation="baseline", train__seed="6") == "ok" else float("nan")),
    ("all 10 learned by their last finite epoch (NLL 752.1 to 766.6", MIT + " baseline learned",
     "10", lambda: sum(r["learned"] == "true" for r in sel(MIT, mitigation="baseline"))),
    *span("all 10 learned by their last finite epoch (NLL 752.1 to 766.6", MIT + " baseline nll_last",
           "752.1", "766.6", lambda: [fl(r["nll_last_c"]) for r in sel(MIT, mitigation="baseline")]),
    ("leave 5, 5 and 3 of 10 runs dying", MIT + " logdet-jitter NaN",
     "3", lambda: sum(r["status"] != "ok" for r in sel(MIT, mitigation="logdet-jitter-1e-3"))),
    ("leave 5, 5 and 3 of 10 runs dying", MIT + " adam-eps NaN",
     "5", lambda: sum(r["status"] != "ok" for r in sel(MIT, mitigation="adam-eps-1e-4"))),
    ("16 costs 1.76x the CPU time per epoch there", MIT.replace("results.csv", "mitigations.csv") + " batch-16 time_vs_baseline",
     "1.76", lambda: one(MIT.replace("results.csv", "mitigations.csv"), "time_vs_baseline", mitigation="batch-16")),
    ("epoch-mean train losses up to 2.3e16 on the way", MIT + " cosine curves max train_loss",
     "2.3e16", lambda: curves_max(MIT, "cosine", "train_loss")),
    ("where the H-gradient clip's never exceed 66.5", MIT + " h-grad-clip-100 curves max train_loss",
     "66.5", lambda: curves_max(MIT, "h-grad-clip-100", "train_loss")),
    ("have the best NLL (750.6 and 751.9 at their best epochs against the baseline's 753.5)",
     MIT + " batch-16 median nll_best", "750.6",
     lambda: med(r["nll_best_c"] for r in sel(MIT, mitigation="batch-16"))),
    ("have the best NLL (750.6 and 751.9 at their best epochs against the baseline's 753.5)",
     MIT + " accumulate-4x16 median nll_best", "751.9",
     lambda: med(r["nll_best_c"] for r in sel(MIT, mitigation="accumulate-4x16"))),
    ("have the best NLL (750.6 and 751.9 at their best epochs against the baseline's 753.5)",
     MIT + " baseline median nll_best", "753.5", lambda: lref(MIT, "baseline")),
    ("where the VAE on the same networks reads 739.6", ST + " control-vae median nll_best",
     "739.6", lambda: med(r["nll_best_c"] for r in sel(ST, mitigation="control-vae"))),
    # section 2, item 2 (the narrative beside the generated table)
    ("here the margin\nis 14.9 nats over the baseline's median best of 747.3", ST + " learned margin",
     "14.9", lambda: max(5.0, 0.02 * abs(lref(ST, "baseline")))),
    ("here the margin\nis 14.9 nats over the baseline's median best of 747.3", ST + " baseline median nll_best",
     "747.3", lambda: lref(ST, "baseline")),
    ("reads d log(1/b) = 16 log(1/0.3) = 19.26 nats too low", ST + " baseline nll_best_c - nll_best",
     "19.26", lambda: sel(ST, mitigation="baseline")[0]["nll_best_c"]
     - fl(sel(ST, mitigation="baseline")[0]["nll_best"])),
    ("an NLL 7.7 nats below the RHVAE baseline's best", ST + " baseline minus control-vae median nll_best",
     "7.7", lambda: lref(ST, "baseline") - med(r["nll_best_c"] for r in sel(ST, mitigation="control-vae"))),
    ("two epochs later than the baseline's seed 1", ST + " clip-adaptive minus baseline seed 1 first_epoch",
     "2", lambda: one(ST, "first_epoch", mitigation="clip-adaptive", train__seed="1")
     - one(ST, "first_epoch", mitigation="baseline", train__seed="1")),
    ("consistent scale) 746.2 at its best epoch (9)", ST + " baseline seed 1 nll_best_c",
     "746.2", lambda: sel(ST, mitigation="baseline", train__seed="1")[0]["nll_best_c"]),
    ("746.2 at its best epoch (9) and 750.3", ST + " baseline seed 1 nll_last_c",
     "750.3", lambda: sel(ST, mitigation="baseline", train__seed="1")[0]["nll_last_c"]),
    ("pythae's get_nll read 726.9 and 731.0", ST + " baseline seed 1 nll_best",
     "726.9", lambda: one(ST, "nll_best", mitigation="baseline", train__seed="1")),
    ("pythae's get_nll read 726.9 and 731.0", ST + " baseline seed 1 nll_last",
     "731.0", lambda: one(ST, "nll_last", mitigation="baseline", train__seed="1")),
    # section 5, the first code's seed 6
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
    *span("| 20 to 59 core-min a cell", SEEDS + " seconds / 60", "20", "59",
           lambda: [float(r["seconds"]) / 60 for r in rows(SEEDS)]),
    ("| 0.2 to 2.2 core-min a cell (median 1.1; CPU seconds) |", MIT + " median CPU minutes a cell",
     "1.1", lambda: statistics.median(fl(r["cpu_per_epoch"]) * fl(r["epochs_done"])
                                      for r in rows(MIT) if r["cpu_per_epoch"]) / 60),
    *span("| 0.2 to 2.2 core-min a cell (median 1.1; CPU seconds) |", MIT + " CPU minutes a cell",
           "0.2", "2.2", lambda: [fl(r["cpu_per_epoch"]) * fl(r["epochs_done"]) / 60
                                  for r in rows(MIT) if r["cpu_per_epoch"]]),
    # section 2, item 4 from the study's rows
    ("over the 70 RHVAE runs with a partial batch (1,494\nepochs)", ST + " RHVAE rows with a partial batch",
     "70", lambda: len(st_partial_runs())),
    ("over the 70 RHVAE runs with a partial batch (1,494\nepochs)", ST + " their epochs_done",
     "1,494", lambda: sum(fl(r["epochs_done"]) for r in st_partial_runs())),
    ("it was the worst batch in 721 epochs against 9.5 expected", ST + " their worst_partial_epochs",
     "721", lambda: sum(fl(r["worst_partial_epochs"]) for r in st_partial_runs())),
    ("it was the worst batch in 721 epochs against 9.5 expected", ST + " their worst_partial_expected",
     "9.5", lambda: sum(fl(r["worst_partial_expected"]) for r in st_partial_runs())),
    ("(16\nand 12 epochs against 1.6 expected each)", ST + " control-vae worst_partial_epochs",
     "16", lambda: sum(fl(r["worst_partial_epochs"]) for r in sel(ST, mitigation="control-vae"))),
    ("(16\nand 12 epochs against 1.6 expected each)", ST + " control-hvae worst_partial_epochs",
     "12", lambda: sum(fl(r["worst_partial_epochs"]) for r in sel(ST, mitigation="control-hvae"))),
    ("(16\nand 12 epochs against 1.6 expected each)", ST + " control-vae worst_partial_expected",
     "1.6", lambda: sum(fl(r["worst_partial_expected"]) for r in sel(ST, mitigation="control-vae"))),
    ("(16\nand 12 epochs against 1.6 expected each)", ST + " control-hvae worst_partial_expected",
     "1.6", lambda: sum(fl(r["worst_partial_expected"]) for r in sel(ST, mitigation="control-hvae"))),
    ("each of the 21 runs that died under pythae's check", ST + " runs that died under pythae's check",
     "21", lambda: len(st_pythae_deaths())),
    ("(10 baseline, 10 spike-only clip, 1 softplus)", ST + " of them baseline",
     "10", lambda: sum(r["mitigation"] == "baseline" for r in st_pythae_deaths())),
    ("(10 baseline, 10 spike-only clip, 1 softplus)", ST + " of them clip-adaptive",
     "10", lambda: sum(r["mitigation"] == "clip-adaptive" for r in st_pythae_deaths())),
    ("(10 baseline, 10 spike-only clip, 1 softplus)", ST + " of them diag-softplus",
     "1", lambda: sum(r["mitigation"] == "diag-softplus" for r in st_pythae_deaths())),
    ("died on a full batch of 64\nimages", ST + " smallest failing batch (first_batch indices)",
     "64", lambda: min(len(r["first_batch"].split()) for r in st_pythae_deaths())),
    *span("at positions 11 to 152\nof the epoch's 157", ST + " failing batch's position in its epoch", "11", "152",
           lambda: [batch_position(r) for r in st_pythae_deaths()]),
    ("at positions 11 to 152\nof the epoch's 157", ST + " batches per epoch (10,000 / 64, rounded up)",
     "157", lambda: max(batches_per_epoch(r) for r in st_pythae_deaths())),
    # section 1, the ResNet study in plain words
    *span("epochs 8-10, epochs before it died", ST + " baseline best_epoch", "8", "10",
           lambda: [fl(r["best_epoch"]) for r in sel(ST, mitigation="baseline")]),
    *span("at epochs 11-18: 4 with #132's", ST + " baseline first_epoch", "11", "18",
           lambda: [fl(r["first_epoch"]) for r in sel(ST, mitigation="baseline")]),
    ("at epochs 11-18: 4 with #132's", ST + " baseline pythae_error = nan_loss", "4",
     lambda: len(sel(ST, mitigation="baseline", pythae_error="nan_loss"))),
    *span("9-11 nats below the RHVAE baseline on every seed",
           ST + " controls' NLL last minus the baseline's, same seed: minus", "9", "11",
           lambda: [-d for m in ("control-vae", "control-hvae") for d in paired_diffs(m, "nll_last_c")]),
    *span("one NaN, at epoch 25; the others had their best NLL late (epochs 18-25)",
           ST + " diag-softplus best_epoch of the finite runs", "18", "25",
           lambda: [fl(r["best_epoch"]) for r in sel(ST, mitigation="diag-softplus") if r["status"] == "ok"]),
    *span("clamping 2.1 % to 3.4 % of the H-gradient's entries", ST + " h-grad-clip-100 h_clamped_share (%)", "2.1", "3.4",
           lambda: [100 * fl(r["h_clamped_share"]) for r in sel(ST, mitigation="h-grad-clip-100")]),
    # perf/time-study.sh: every study setting's seconds per epoch, measured alone
    ("VAE, 0.51x) and three quarters (the HVAE, 0.76x)", TIME + " control-vae wall_vs_baseline", "0.51",
     lambda: one(TIME, "wall_vs_baseline", mitigation="control-vae")),
    ("VAE, 0.51x) and three quarters (the HVAE, 0.76x)", TIME + " control-hvae wall_vs_baseline", "0.76",
     lambda: one(TIME, "wall_vs_baseline", mitigation="control-hvae")),
    *span("every RHVAE setting ran at 1.00-1.09x the", TIME + " wall_vs_baseline, RHVAE settings", "1.00", "1.09",
           lambda: [fl(r["wall_vs_baseline"]) for r in rhvae_times(TIME)]),
    ("baseline's 19.5 s an epoch", TIME + " baseline wall_per_epoch", "19.5",
     lambda: one(TIME, "wall_per_epoch", mitigation="baseline")),
    ("setting's 19.5 s an epoch on one core", TIME + " baseline wall_per_epoch (the plan's estimates)", "19.5",
     lambda: one(TIME, "wall_per_epoch", mitigation="baseline")),
    *span("repeated rounds (19.2-23.0 s)", TIMES + " wall_per_epoch, RHVAE settings' rounds", "19.2", "23.0",
           lambda: [fl(r["wall_per_epoch"]) for r in rhvae_times(TIMES)]),
    ("each a quarter the size, take 21.1 s", TIME + " batch-16 wall_per_epoch", "21.1",
     lambda: one(TIME, "wall_per_epoch", mitigation="batch-16")),
    ("26 s at batch 64 and", TIME + " baseline outside_epochs", "26",
     lambda: one(TIME, "outside_epochs", mitigation="baseline")),
    ("7 s at batch 16, most of it", TIME + " batch-16 outside_epochs", "7",
     lambda: one(TIME, "outside_epochs", mitigation="batch-16")),
    # item 3, the 50-epoch continuations (partial)
    ("(item 3, complete: all 60 cells, the 10 seeds of", ST50 + " rows", "60", lambda: len(rows(ST50))),
    ("(50-epoch continuations) has all 60 of its cells", ST50 + " rows", "60", lambda: len(rows(ST50))),
    ("| 60 of 60: complete (seeds 8-10 and one of 7", ST50 + " rows", "60", lambda: len(rows(ST50))),
    ("section 2).** Softplus on the metric's diagonal is a delay: all 10", ST50 + " diag-softplus NaN runs", "10",
     lambda: sum(r["status"] == "nan" for r in sel(ST50, mitigation="diag-softplus"))),
    *span("runs die, at epochs 25-43.", ST50 + " diag-softplus first_epoch", "25", "43",
          lambda: [fl(r["first_epoch"]) for r in sel(ST50, mitigation="diag-softplus")]),
    *[c for seed, ep, step in (("1", "46", "28,725"), ("6", "49", "30,546"))
      for c in (("at epoch 46 (step 28,725) and seed 6 at epoch 49 (step 30,546), both",
                 ST50 + " batch-16 seed %s first_epoch" % seed, ep,
                 lambda seed=seed: one(ST50, "first_epoch", mitigation="batch-16", train__seed=seed)),
                ("at epoch 46 (step 28,725) and seed 6 at epoch 49 (step 30,546), both",
                 ST50 + " batch-16 seed %s first_step, ValueError at rhvae.lf1.grad.exp" % seed, step,
                 lambda seed=seed: one(ST50, "first_step", mitigation="batch-16", train__seed=seed)
                 if txt(ST50, "origin_node", mitigation="batch-16", train__seed=seed) == "rhvae.lf1.grad.exp"
                 and txt(ST50, "pythae_error", mitigation="batch-16", train__seed=seed) == "value_error"
                 else float("nan")))],
    ("epoch's largest gradient norm about 90 until epoch 33, then 1,018 at", ST50 + " batch-16 seed 1 max grad_norm_max, epochs 26-33",
     "90", lambda: round(cont_curve("batch-16", "1", "grad_norm_max", lambda v: max(v[25:33])), -1)),
    ("epoch's largest gradient norm about 90 until epoch 33, then 1,018 at", ST50 + " batch-16 seed 1 grad_norm_max at 36",
     "1,018", lambda: cont_curve("batch-16", "1", "grad_norm_max", lambda v: v[35])),
    ("epoch 36 and 2.5e4 at 44; the eval SSE from 20.5 at epoch 25 to 31.5", ST50 + " batch-16 seed 1 grad_norm_max at 44",
     "2.5e4", lambda: cont_curve("batch-16", "1", "grad_norm_max", lambda v: v[43])),
    ("epoch 36 and 2.5e4 at 44; the eval SSE from 20.5 at epoch 25 to 31.5", ST50 + " batch-16 seed 1 eval_sse at 25",
     "20.5", lambda: cont_curve("batch-16", "1", "eval_sse", lambda v: v[24])),
    ("epoch 36 and 2.5e4 at 44; the eval SSE from 20.5 at epoch 25 to 31.5", ST50 + " batch-16 seed 1 eval_sse at 45",
     "31.5", lambda: cont_curve("batch-16", "1", "eval_sse", lambda v: v[44])),
    ("at 45); seed 2 blows up at epoch 44 (gradient norm 6.8e9) and ends", ST50 + " batch-16 seed 2 grad_norm_max at 44",
     "6.8e9", lambda: cont_curve("batch-16", "2", "grad_norm_max", lambda v: v[43])),
    ("at 45); seed 2 blows up at epoch 44 (gradient norm 6.8e9) and ends", ST50 + " batch-16 seed 2 epoch of its max grad_norm_max",
     "44", lambda: cont_curve("batch-16", "2", "grad_norm_max", lambda v: 1 + v.index(max(v)))),
    ("finite but 198.5 nats worse than at 25; seeds 3, 4, 5, 7, 9 and 10", ST50 + " batch-16 seed 2 NLL 50 minus 25", "198.5",
     lambda: dict(continued_diffs("batch-16"))["2"]),
    *span("enter the same pattern from epoch 40 to 49 on", ST50 + " batch-16 first epoch after 25 with grad_norm_max > 300, seeds 3 4 5 7 9 10",
          "40", "49", lambda: [b16_first_over(k, 300) for k in B16_PATTERN]),
    *span("then up to 1.1e3\n  to 7.1e7", ST50 + " batch-16 max grad_norm_max, seeds 3 4 5 7 9 10", "1.1e3", "7.1e7",
          lambda: [cont_curve("batch-16", k, "grad_norm_max", max) for k in B16_PATTERN]),
    *span("the eval SSE rising from 21.0-21.7 at epoch 25 to", ST50 + " batch-16 eval_sse at 25, seeds 3 4 5 7 9 10", "21.0", "21.7",
          lambda: [cont_curve("batch-16", k, "eval_sse", lambda v: v[24]) for k in B16_PATTERN]),
    *span("26.9-39.0 at 50), still finite at 50; only seed 8 is not in it yet", ST50 + " batch-16 eval_sse at 50, seeds 3 4 5 7 9 10",
          "26.9", "39.0", lambda: [cont_curve("batch-16", k, "eval_sse", lambda v: v[49]) for k in B16_PATTERN]),
    ("26.9-39.0 at 50), still finite at 50; only seed 8 is not in it yet", ST50 + " batch-16 seeds 3 4 5 7 9 10 epochs_done, finite",
     "50", lambda: min(fl(r["epochs_done"]) if r["status"] == "ok" else float("nan")
                       for r in sel(ST50, mitigation="batch-16") if r["train.seed"] in B16_PATTERN)),
    ("only seed 8 is not in it yet", ST50 + " batch-16: the one finite seed whose grad_norm_max stays under 300 after 25",
     "8", lambda: (lambda q: float(q[0]) if len(q) == 1 else float("nan"))(
         [r["train.seed"] for r in sel(ST50, mitigation="batch-16")
          if r["status"] == "ok" and math.isnan(b16_first_over(r["train.seed"], 300))])),
    ("finite but 198.5 nats worse than at 25; seeds 3, 4, 5, 7, 9 and 10", ST50 + " batch-16: the finite seeds over 300 after 25 "
     "but seed 2 (blown up) are B16_PATTERN (the last of them)", "10",
     lambda: float(B16_PATTERN[-1]) if tuple(r["train.seed"] for r in sel(ST50, mitigation="batch-16")
                                             if r["status"] == "ok" and r["train.seed"] != "2"
                                             and not math.isnan(b16_first_over(r["train.seed"], 300))) == B16_PATTERN
     else float("nan")),
    ("(largest gradient norm 208 at epoch 50)", ST50 + " batch-16 seed 8 max grad_norm_max", "208",
     lambda: cont_curve("batch-16", "8", "grad_norm_max", max)),
    ("(largest gradient norm 208 at epoch 50)", ST50 + " batch-16 seed 8 epoch of its max grad_norm_max", "50",
     lambda: cont_curve("batch-16", "8", "grad_norm_max", lambda v: 1 + v.index(max(v)))),
    ("blow-up: all 10 stay finite, but their held-out NLL at epoch 50 is", ST50 + " h-grad-clip-100 finite runs", "10",
     lambda: sum(r["status"] == "ok" for r in sel(ST50, mitigation="h-grad-clip-100"))),
    *span("12.9-113.1 nats worse than at 25. Accumulating", ST50 + " h-grad-clip-100 NLL 50 minus 25",
          "12.9", "113.1", lambda: [x for _, x in continued_diffs("h-grad-clip-100")]),
    *span("Accumulating 4 x 16 (-0.9 to -0.4)", ST50 + " accumulate-4x16 NLL 50 minus 25", "-0.9", "-0.4",
          lambda: [x for _, x in continued_diffs("accumulate-4x16")]),
    *span("and lr 1e-5 (-2.6 to -1.7) stay finite", ST50 + " lr-1e-5 NLL 50 minus 25", "-2.6", "-1.7",
          lambda: [x for _, x in continued_diffs("lr-1e-5")]),
    ("10 seeds, but they are not alike", ST50 + " accumulate-4x16 and lr-1e-5 finite rows each", "10",
     lambda: min(sum(r["status"] == "ok" for r in sel(ST50, mitigation=m)) for m in ("accumulate-4x16", "lr-1e-5"))),
    *span("learning (7.8-14.6 nats better than at 25)", ST50 + " lr-1e-6 NLL 25 minus 50", "7.8", "14.6",
           lambda: [-x for _, x in continued_diffs("lr-1e-6")]),
    # the ResNet map's estimate: the study's RHVAE rows' CPU seconds per epoch, by machine
    ("| 36 / 36 | 3.0 core-hours (`seconds` summed; 18 cells die early;", RMAP + " seconds summed, hours",
     "3.0", lambda: sum(fl(r["seconds"]) for r in rows(RMAP)) / 3600),
    ("| 36 / 36 | 3.0 core-hours (`seconds` summed; 18 cells die early;", RMAP + " cells that died",
     "18", lambda: len(map_rows_where(status="nan"))),
    ("| 36 / 36 | 3.0 core-hours (`seconds` summed; 18 cells die early;", RMAP + " cells",
     "36", lambda: len(rows(RMAP))),
    # the ResNet study (issue 16), README section 2
    ("**Item 1, the baseline, is complete: 10 of 10 seeds hit NaN**", ST + " baseline runs",
     "10", lambda: len(sel(ST, mitigation="baseline"))),
    ("**Item 1, the baseline, is complete: 10 of 10 seeds hit NaN**", ST + " baseline runs that hit NaN",
     "10", lambda: sum(r["status"] in ("nan", "inf") for r in sel(ST, mitigation="baseline"))),
    ("(95 % Wilson interval 0.72-1.00)", ST + " Wilson lower bound of 10/10",
     "0.72", lambda: wilson(sum(r["status"] in ("nan", "inf") for r in sel(ST, mitigation="baseline")),
                                len(sel(ST, mitigation="baseline")))[0]),
    *span("at epochs 11-18 (steps 1,689-2,814,", ST + " baseline first_epoch", "11", "18",
           lambda: [fl(r["first_epoch"]) for r in sel(ST, mitigation="baseline")]),
    *span("at epochs 11-18 (steps 1,689-2,814,", ST + " baseline first_step", "1,689", "2,814",
           lambda: [fl(r["first_step"]) for r in sel(ST, mitigation="baseline")]),
    ("median epoch 16): 4 end with", ST + " baseline median first_epoch",
     "16", lambda: med(r["first_epoch"] for r in sel(ST, mitigation="baseline"))),
    ("median epoch 16): 4 end with", ST + " baseline runs ended by NaN in train loss",
     "4", lambda: sum(r["pythae_error"] == "nan_loss" for r in sel(ST, mitigation="baseline"))),
    ("10; origin `rhvae.lf1.H.rho_A_rho`) and 6 with", ST + " baseline runs ended by the ValueError",
     "6", lambda: sum(r["pythae_error"] == "value_error" for r in sel(ST, mitigation="baseline"))),
    *span("IS-NLL at the last finite epoch 748.5-750.9 nats", ST + " baseline nll_last", "748.5", "750.9",
           lambda: [fl(r["nll_last_c"]) for r in sel(ST, mitigation="baseline")]),
    *span("(best epoch\n746.2-748.6", ST + " baseline nll_best", "746.2", "748.6",
           lambda: [fl(r["nll_best_c"]) for r in sel(ST, mitigation="baseline")]),
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
    *[(phrase, "%s baseline seed %s train_loss at epoch %d" % (ST, seed, epoch), quoted,
       lambda seed=seed, epoch=epoch: curve_at(ST, sel(ST, mitigation="baseline", train__seed=seed)[0], epoch, "train_loss"))
      for phrase, seed, epoch, quoted in (
          ("epoch-mean train loss went 9.4, 256, then 2.8e19 in the epoch it died in;", "7", 9, "9.4"), ("epoch-mean train loss went 9.4, 256, then 2.8e19 in the epoch it died in;", "7", 10, "256"), ("epoch-mean train loss went 9.4, 256, then 2.8e19 in the epoch it died in;", "7", 11, "2.8e19"),
          ("seed 8's 3.8, 1.4e5, then 1.9e18.", "8", 12, "3.8"), ("seed 8's 3.8, 1.4e5, then 1.9e18.", "8", 13, "1.4e5"), ("seed 8's 3.8, 1.4e5, then 1.9e18.", "8", 14, "1.9e18"),
          ("Its epoch-mean train loss spiked to about 2e5 in epoch 13", "1", 13, "2e5"))],
    *row_checks(ST, "baseline seed 1", {"mitigation": "baseline", "train.seed": "1"}, [
        ("156 x 64 + 16) was the epoch's worst batch in 8 of its 16 epochs", "worst_partial_epochs", "8"),
        ("156 x 64 + 16) was the epoch's worst batch in 8 of its 16 epochs", "epochs_done", "16"),
        ("against 0.10 expected by chance: the lead", "worst_partial_expected", "0.10"),
        ("100 samples, consistent scale) 746.2 at its best epoch (9) and 750.3", "nll_best_c", "746.2"),
        ("100 samples, consistent scale) 746.2 at its best epoch (9) and 750.3", "best_epoch", "9"),
        ("100 samples, consistent scale) 746.2 at its best epoch (9) and 750.3", "nll_last_c", "750.3"),
        ("at its last finite one (15); pythae's get_nll read 726.9 and 731.0", "last_finite_epoch", "15"),
        ("at its last finite one (15); pythae's get_nll read 726.9 and 731.0", "nll_best", "726.9"),
        ("at its last finite one (15); pythae's get_nll read 726.9 and 731.0", "nll_last", "731.0")]),
    ("was batch 63 of epoch 16, not the partial one", ST + " baseline seed 1 failing batch's position", "63",
     lambda: batch_position(sel(ST, mitigation="baseline", train__seed="1")[0])),
    # the counterfactual at the failure point, all ten baseline seeds
    ("H-gradient clip at 100 (10 of 10 clean", FIX + " h-grad-clip prevented",
     "10", lambda: one(FIX, "prevented", mitigation="h-grad-clip")),
    ("734.6 on average, 5.7 nats better", FIX + " h-grad-clip eval_nll",
     "734.6", lambda: one(FIX, "eval_nll", mitigation="h-grad-clip")),
    ("734.6 on average, 5.7 nats better", FIX + " h-grad-clip -d_eval_nll",
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
    *span("most 36.3 to 439 over the horizon, max |z| 10.3 to 158", "counterfactual h-grad-clip loss_max", "36.3", "439",
          lambda: cf_clean("h-grad-clip", "loss_max")),
    *span("most 36.3 to 439 over the horizon, max |z| 10.3 to 158", "counterfactual h-grad-clip max_abs_z", "10.3", "158",
          lambda: cf_clean("h-grad-clip", "max_abs_z")),
    *span("at most 36.4 to 59.1, max |z| 6.5 to 13.8, IS-NLL 733.4", "counterfactual diag-softplus loss_max", "36.4", "59.1",
          lambda: cf_clean("diag-softplus", "loss_max")),
    *span("at most 36.4 to 59.1, max |z| 6.5 to 13.8, IS-NLL 733.4", "counterfactual diag-softplus max_abs_z", "6.5", "13.8",
          lambda: cf_clean("diag-softplus", "max_abs_z")),
    ("softplus metric diagonal (10 of 10, loss", "counterfactual diag-softplus clean", "10",
     lambda: len(cf_clean("diag-softplus", "loss_max"))),
    *span("norm clip's clean runs the loss reaches 1.65e7 to 3.0e17", "counterfactual clip-norm loss_max", "1.65e7", "3.0e17",
          lambda: cf_clean("clip-norm", "loss_max")),
    ("3.9e9); float64 stays finite in 10 of 10", "counterfactual clip-norm max max_abs_z", "3.9e9",
     lambda: max(cf_clean("clip-norm", "max_abs_z"))),
    ("3.9e9); float64 stays finite in 10 of 10", "counterfactual f64 clean", "10",
     lambda: len(cf_clean("f64", "loss_max"))),
    *span("3.2e37 to 7.0e99, held-out IS-NLL 3.0e5", "counterfactual f64 loss_max", "3.2e37", "7.0e99",
          lambda: cf_clean("f64", "loss_max")),
    *[("and the logvar clamp die at the same step in 10 of 10", "counterfactual %s fails at the unchanged run's step" % v, "10",
       lambda v=v: sum(x["outcome"] == "fails" and x["event_step"] == x["ref_event"] for x in cf(v)))
      for v in ("clip-adaptive", "adam-eps", "logvar-clamp")],
    *span("scaling in 9 of 10; skipping non-finite batches skips 1 to 55 of the", "counterfactual skip-nonfinite skipped", "1", "55",
          lambda: [fl(v["skipped"]) for v in cf("skip-nonfinite")]),
    ("70 steps and goes on, to a loss of 4.5e30 in the worst run", "counterfactual skip-nonfinite max loss_last", "4.5e30",
     lambda: max(fl(v["loss_last"]) for v in cf("skip-nonfinite"))),
    # (the running count, "Done so far: N of 110", is not checked: the
    # study commits rows on its own, so it goes stale between README
    # updates)
    # failure-mode studies (issue 15, item 9: 3 seeds per cell)
    ("NLL 135.3 (uniform) and 136.7 (normal) nats against 144.1", IA + " kaiming_uniform median nll_last",
     "135.3", lambda: med(r["nll_last_c"] for r in sel(IA, mitigation="kaiming_uniform"))),
    ("NLL 135.3 (uniform) and 136.7 (normal) nats against 144.1", IA + " kaiming_normal median nll_last",
     "136.7", lambda: med(r["nll_last_c"] for r in sel(IA, mitigation="kaiming_normal"))),
    ("NLL 135.3 (uniform) and 136.7 (normal) nats against 144.1", IA + " pytorch median nll_last",
     "144.1", lambda: med(r["nll_last_c"] for r in sel(IA, mitigation="pytorch"))),
    ("trains (0 of 75 NaN)", IA + " non-finite runs of the five unscaled inits",
     "0", lambda: sum(r["status"] != "ok" for r in rows(IA) if not r["mitigation"].startswith("scaled"))),
    ("stay finite in 15 of 15 runs", IA + " scaled_10 finite runs",
     "15", lambda: sum(r["status"] == "ok" for r in sel(IA, mitigation="scaled_10"))),
    *span("NLL 7,362 to 9,063 nats", IA + " scaled_10 relu/softplus/leaky_relu nll_last", "7362", "9063",
           lambda: [fl(r["nll_last_c"]) for r in sel(IA, mitigation="scaled_10")
                    if r["nets.activation"] in ("relu", "softplus", "leaky_relu")]),
    ("final eval loss up to 1.06e6", IA + " scaled_10 max final_eval_loss",
     "1.06e6", lambda: max(fl(r["final_eval_loss"]) for r in sel(IA, mitigation="scaled_10"))),
    ("18 of the 30 kaiming runs failed it", IA + " kaiming rows: NLL within the margin, SSE over 2x (the old rule)",
     "18", lambda: sum(fl(r["nll_last_c"]) <= lref(IA, "pytorch") + max(5, 0.1 * abs(lref(IA, "pytorch")))
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
     "141.8", lambda: med(r["nll_best_c"] for r in sel(IA, mitigation="pytorch", nets__activation="leaky_relu"))),
    ("activation, 141.8 for leaky relu to 169.6 for sigmoid)", IA + " pytorch sigmoid median nll_best",
     "169.6", lambda: med(r["nll_best_c"] for r in sel(IA, mitigation="pytorch", nets__activation="sigmoid"))),
    ("softplus cells (147.8-149.9, against 142.6)", IA + " pytorch softplus median nll_best",
     "142.6", lambda: med(r["nll_best_c"] for r in sel(IA, mitigation="pytorch", nets__activation="softplus"))),
    *span("softplus cells (147.8-149.9, against 142.6)", IA + " xavier softplus nll_last", "147.8", "149.9",
           lambda: [fl(r["nll_last_c"]) for r in rows(IA)
                    if r["mitigation"].startswith("xavier") and r["nets.activation"] == "softplus"]),
    *span("sigmoid cells (NLL 177.7-180.8", IA + " xavier sigmoid nll_last", "177.7", "180.8",
           lambda: [fl(r["nll_last_c"]) for r in rows(IA)
                    if r["mitigation"].startswith("xavier") and r["nets.activation"] == "sigmoid"]),
    ("With one reference over all five activations (144.1)", IA + " overall reference",
     "144.1", lambda: lref(IA, "pytorch")),
    *span("norm 89.7 to 112.7 against 22.0 to 25.3", BN + " curves: no running stats, epochs 2-5, 5,001 images grad_norm_max",
           "89.7", "112.7", lambda: bn_gnorms("5001")),
    *span("norm 89.7 to 112.7 against 22.0 to 25.3", BN + " curves: no running stats, epochs 2-5, 5,000 images grad_norm_max",
           "22.0", "25.3", lambda: bn_gnorms("5000")),
    ("5,000 images: all 18 runs finite", BN + " 5,000 images finite rows",
     "18", lambda: sum(r["status"] == "ok" for r in sel(BN, data__train_end="5000"))),
    *span("statistics against 124.8 to 126.0 with them", BN + " running statistics nll_last", "124.8", "126.0",
           lambda: [fl(r["nll_last_c"]) for r in rows(BN)
                    if r["mitigation"].startswith("running_stats") and r["status"] == "ok"]),
    *span("NLL 167.1 to 172.7 nats without running", BN + " no running statistics nll_last", "167.1", "172.7",
           lambda: [fl(r["nll_last_c"]) for r in rows(BN)
                    if r["mitigation"].startswith("no_running") and r["nll_last_c"]]),
    ("goes NaN at step 51 in 3 of 3 runs", CN + " tail runs that hit NaN at step 51",
     "3", lambda: sum(r["status"] == "nan" and r["first_step"] == "51" for r in sel(CN, mitigation="tail"))),
    *span("NLL 154.1 to 158.9 nats on the", CN + " no_tail nll_last", "154.1", "158.9",
           lambda: [fl(r["nll_last_c"]) for r in sel(CN, mitigation="no_tail")]),
    *span("SSE 34.2 to 37.0, NLL 176.1 to 181.7", CN + " tail_no_running_stats sse_last", "34.2", "37.0",
           lambda: [fl(r["sse_last"]) for r in sel(CN, mitigation="tail_no_running_stats")]),
    *span("SSE 34.2 to 37.0, NLL 176.1 to 181.7", CN + " tail_no_running_stats nll_last", "176.1", "181.7",
           lambda: [fl(r["nll_last_c"]) for r in sel(CN, mitigation="tail_no_running_stats")]),
    *span("final eval loss 2.6e6 to 3.9e33", PP + " raw_unscaled final_eval_loss", "2.6e6", "3.9e33",
           lambda: [fl(r["final_eval_loss"]) for r in sel(PP, mitigation="raw_unscaled")]),
    *span("standardisation learns (SSE 38.4 to 39.8)", PP + " raw sse_last", "38.4", "39.8",
           lambda: [fl(r["sse_last"]) for r in sel(PP, mitigation="raw")]),
    *span("(3 of 3: NLL 145.9 to 147.7 nats", EP + " sqrt nll_last", "145.9", "147.7",
           lambda: [fl(r["nll_last_c"]) for r in sel(EP, anchor__eps_placement="sqrt")]),
] + NOTEBOOK_CHECKS + TRIGGER_CHECKS + MAP_CHECKS + seed_steps("(2,418, 2,259, 2,732 and 2,523)", "baseline",
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


def snapshot_checks():
    """(failures, notes) of SNAPSHOT against the growing folders' CSVs: a
    covered row that is gone fails; rows README does not cover yet are a
    note."""
    bad, notes = [], []
    for path in GROWING:
        have = {r["id"] for r in all_rows(path)}
        want = snapshot()[path]
        gone = [i for i in want if i not in have]
        if gone:
            bad.append("STALE    %s lists %d row(s) of %s that it no longer has (first: %s); "
                       "rerun the sweep or --snapshot and re-sync README" % (SNAPSHOT, len(gone), path, gone[0]))
        newer = len(have - set(want))
        if newer:
            notes.append("note: %s has %d row(s) README does not cover yet (%d covered): "
                         "--snapshot, --sync-table, then the texts" % (path, newer, len(want)))
    return bad, notes


DIAGONAL_FIELDS = ("status", "first_epoch", "first_step", "pythae_error", "first_batch",
                   "last_finite_epoch", "nll_best", "nll_last", "sse_best")


def diagonal_checks():
    """Failures of the trigger grid's reproduction check (issue 16 item 4):
    a cell with init seed = data seed = k and the partial batch kept is the
    study's baseline seed k with the init seed set explicitly, so its row
    must repeat the study's in every field of DIAGONAL_FIELDS (README
    covers only the rows in SNAPSHOT)."""
    bad = []
    for r in rows(TRIG):
        if r["mitigation"] != "baseline" or r["model.init_seed"] != r["train.seed"]:
            continue
        base = sel(ST, mitigation="baseline", train__seed=r["train.seed"])
        if len(base) != 1:
            bad.append("DIAGONAL %s: %d study baseline rows of seed %s" % (ST, len(base), r["train.seed"]))
            continue
        for k in DIAGONAL_FIELDS:
            if r.get(k) != base[0].get(k):
                bad.append("DIAGONAL trigger cell init = data seed = %s differs from the study's baseline "
                           "seed %s in %s: %r against %r" % (r["train.seed"], r["train.seed"], k,
                                                             (r.get(k) or "")[:40], (base[0].get(k) or "")[:40]))
    return bad


def write_snapshot():
    """SNAPSHOT rewritten (temporary file, then renamed) with every row the
    growing folders' CSVs have now."""
    lines = ["# rows of the growing result folders that README.md quotes (scripts/check-readme-figures.py --snapshot)"]
    counts = []
    for path in GROWING:
        ids = [r["id"] for r in all_rows(path)]
        lines += ["%s %s" % (path, i) for i in ids]
        counts.append("%s %d" % (os.path.basename(os.path.dirname(path)), len(ids)))
    full = os.path.join(ROOT, SNAPSHOT)
    with open(full + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(full + ".tmp", full)
    print("%s: %s rows" % (SNAPSHOT, ", ".join(counts)))


def main():
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    stale, notes = snapshot_checks()
    stale += diagonal_checks()
    for msg in stale + notes:
        print(msg)
    bad = len(stale)
    for phrase, source, quoted, compute in CHECKS:
        if phrase not in readme:
            print("MISSING  README no longer says %r (update this check)" % phrase)
            bad += 1
            continue
        words = phrase.replace(",", "")
        for n, w in enumerate(("two", "three", "four", "five"), 2):
            words = words.replace(w, str(n))
        if quoted.replace(",", "") not in words:
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
    table = []
    ncells = 0
    for name in TABLES:
        table += table_checks(readme, name)
        ncells += sum(len(c) for _, c in table_rows(name))
    for msg in table:
        print(msg)
    print("%d of %d README figures match their tables; tables of mitigations: %d generated cells, %d mismatches"
          % (len(CHECKS) - bad, len(CHECKS), ncells, len(table)))
    return 1 if bad or table else 0


def table_text(name, says):
    """README's table `name` as lines: generated cells, and the "what it
    says" text of says[mitigation] ("" where there is none)."""
    rs = table_rows(name)
    out = [TABLES[name][0], "|---" + "|--:" * len(rs[0][1]) + "|---|"]
    for label, cells in rs:
        out.append("| %s | %s | %s |" % (label, " | ".join(cells), says.get(row_key(label), "")))
    return out


def sync_table(name):
    """Rewrites README's table `name` in place (written whole to a
    temporary file, then renamed): every row regenerated, its last cell
    kept. Returns the number of rows whose generated cells changed."""
    path = os.path.join(ROOT, "README.md")
    lines = open(path).read().split("\n")
    head = TABLES[name][0]
    if head not in lines:
        sys.exit("check-readme-figures.py: --sync-table %s: README.md has no line %r "
                 "(the table's header)" % (name, head))
    start = lines.index(head)
    end = start + 2
    says, old = {}, {}
    while end < len(lines) and lines[end].startswith("|"):
        cells = [c.strip() for c in lines[end].strip().strip("|").split("|")]
        if row_key(cells[0]):
            says[row_key(cells[0])] = cells[-1]
            old[row_key(cells[0])] = lines[end]
        end += 1
    new = table_text(name, says)
    changed = sum(1 for l in new[2:] if l not in old.values())
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines[:start] + new + lines[end:]))
    os.replace(tmp, path)
    return changed


if __name__ == "__main__":
    if _SNAP:
        write_snapshot()
        sys.exit(0)
    if _TABLE is not None:
        name = _TABLE
        if name not in TABLES:
            sys.exit("check-readme-figures.py: %s %r: expected one of %s"
                     % ("--sync-table" if _SYNC else "--print-table", name,
                        ", ".join(TABLES)))
        if _SYNC:
            n = sync_table(name)
            print("README.md: %s table re-synced, %d row(s) changed; check each "
                  "row's \"what it says\" text" % (name, n))
        else:
            for line in table_text(name, {}):
                print(line)
        sys.exit(0)
    sys.exit(main())
