/* counterfactual: `vaebench counterfactual RUN_DIR` (issue 18): from a
 * failed run's state shortly before its first event, rerun the same
 * batches and random draws once unchanged (which must reproduce the event
 * bit for bit) and once per mitigation that can be switched mid-run, and
 * write a verdict table (CSV, Markdown) and a figure to
 * RUN_DIR/counterfactual/. The training itself is train.c's (resumed from
 * a checkpoint, train_options), the run's summary is read by replay.c. */
#ifndef VB_BENCH_COUNTERFACTUAL_H
#define VB_BENCH_COUNTERFACTUAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "vb.h"

#define COUNTERFACTUAL_MAX_TRIES 64
#define COUNTERFACTUAL_NAME_LEN 64

/* Defaults of the options. */
#define COUNTERFACTUAL_WINDOW 16      /* steps before the first event */
#define COUNTERFACTUAL_EVAL_N 256     /* held-out images evaluated */
#define COUNTERFACTUAL_NLL_SAMPLES 16 /* importance samples per image */

struct counterfactual_request {
	const char *run_dir;
	/* --try values: a built-in name, "all", a [mitigations] name,
	 * "mitigations" (every one of the bundle), or an inline list
	 * "k=v[,k=v ...]"; none: the bundle when there is one, else all */
	const char *tries[COUNTERFACTUAL_MAX_TRIES];
	size_t n_tries;
	const char *mitigations; /* a sweep file with [mitigations], or NULL:
				    RUN_DIR/../../sweep.ini when present */
	long window;             /* W >= 1 */
	bool no_lead;            /* ignore the run's lead step (start at
				    event - W only) */
	long horizon;            /* H >= 0 steps after the event; -1: one
				    epoch */
	long eval_n;             /* >= 1 */
	long nll_samples;        /* >= 1 */
	/* report --counterfactual --only NAME,...: the failed runs of these
	 * mitigations only (the mitigation column); NULL: every failed run */
	const char *only;
};

/* Parses the counterfactual option at argv[*i] (--try, --set,
 * --mitigations, --window, --horizon, --eval-n, --nll-samples,
 * --no-lead) into q, advancing *i past its value: VB_OK with *used true;
 * *used false for another argument; VB_ERR_USAGE for a bad value. */
enum vb_status counterfactual_option(int argc, char **argv, int *i,
				     struct counterfactual_request *q,
				     bool *used, struct vb_error *err);

/* The request's defaults (run_dir NULL, no tries). */
void counterfactual_defaults(struct counterfactual_request *q);

/* Why key (a "section.key" name) cannot be switched mid-run: one line
 * into why (cap bytes) and false; true when it can. */
bool counterfactual_key_switchable(const char *key, char *why, size_t cap);

/* Runs the experiment and writes RUN_DIR/counterfactual/{verdict.csv,
 * verdict.md, times.csv, curves.csv, counterfactual.png}; prints the
 * reproduction line and the Markdown table to out (may be NULL), progress
 * to log (may be NULL). Errors: VB_ERR_USAGE for a run without a first
 * event or a bad --try, VB_ERR_CONFIG for a setting that cannot change
 * mid-run (one line why), VB_ERR_NUMERIC when the unchanged variant does
 * not reproduce the original event (the message shows both), data and
 * I/O errors. */
enum vb_status counterfactual_run(const struct counterfactual_request *q,
				  FILE *out, FILE *log,
				  struct vb_error *err);

/* True when RUN_DIR/counterfactual/ holds a complete result. */
bool counterfactual_done(const char *run_dir);

/* report DIR --counterfactual: runs counterfactual_run (options of q but
 * run_dir; tries empty: the sweep's bundle, else all) for every run of
 * DIR/results.csv whose status is nan or inf, one after the other or
 * (jobs > 1) in up to jobs forked workers, skipping runs whose
 * counterfactual/ is complete; a run that fails (not reproduced, say) is
 * logged and listed, the others go on. Then writes
 * DIR/fixes.md ("Fixes at the failure point": per mitigation, in how many
 * failing runs it prevents the event within the horizon, and the
 * held-out cost) and DIR/fixes.csv, and appends fixes.md to summary.md.
 * *n_failed gets the runs that could not be done. */
enum vb_status counterfactual_sweep(const char *dir,
				    const struct counterfactual_request *q,
				    int jobs, size_t *n_failed, FILE *log,
				    struct vb_error *err);

/* Appends DIR/fixes.md (when present) to DIR/summary.md (atomically);
 * report_rebuild calls it so that a rebuilt summary keeps the section. */
enum vb_status counterfactual_append_summary(const char *dir,
					     struct vb_error *err);

/* The command line after "counterfactual" (argc, argv without it). */
enum vb_status counterfactual_command(int argc, char **argv, FILE *log,
				      struct vb_error *err);

#endif
