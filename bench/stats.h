/* stats: the statistics of a results table: the sweep's axes and their
 * distinct values, groups of rows that differ only by seed (NaN share,
 * first-NaN epoch), and the per-mitigation aggregates (mitigations.csv).
 * Reads tables (table.h), writes only mitigations.csv; report.c and
 * figures.c present what it computes. */
#ifndef VB_BENCH_STATS_H
#define VB_BENCH_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "table.h"
#include "vb.h"

/* Distinct values of column name in first-appearance order, sorted
 * numerically when all are numbers. Borrowed strings. */
struct stats_values {
	const char **v;
	size_t n;
};

struct stats_group {
	size_t first_row;
	size_t runs, hits, errors, n_loss;
	double loss_sum;
	double *epochs; /* first-NaN epochs of the hits */
};

/* "learned" (issue 15 item 2), one definition for rows and tables: a
 * run learned iff
 *   (a) its NLL at the last finite epoch (nll_last) is at most
 *       ref + max(STATS_LEARNED_NATS, STATS_LEARNED_REL x |ref|), where
 *       ref is the median of the baseline's runs' best-epoch NLL
 *       (nll_best; the baseline as in the mitigation table, of
 *       t->reference when set, e.g. a continuation's source) under the
 *       run's values of the swept axes (stats_learned_conditions) when
 *       the table has one with a finite value, else the run's own
 *       nll_best;
 *   (b) from its first evaluated epoch whose eval SSE is within
 *       STATS_LEARNED_SSE_FACTOR x its best eval SSE on, no evaluated
 *       epoch's SSE exceeds factor x the best or is NaN (the per-epoch
 *       list eval_sses; the early epochs before the run first learned do
 *       not count). Rows without eval_sses (older sweeps whose folder
 *       keeps no curves) fall back to every epoch: sse_max <= factor x
 *       sse_best.
 * "true" / "false"; "false" for a run that hit NaN/Inf with no finite
 * evaluated epoch; "" when not computable (NLL off, no evaluation). */
/* The relative part was 10 %: at the RHVAE's NLL of about 730 nats that
 * let a run 73 nats worse than the baseline "learn" (the proxy's lr 1e-6,
 * 29-31 nats worse, at an eval loss 60 above the baseline's). 2 % is
 * 14.6 nats there and 5 nats (the absolute floor) for the studies' NLLs
 * of 130-180. */
#define STATS_LEARNED_NATS 5.0
#define STATS_LEARNED_REL 0.02
#define STATS_LEARNED_SSE_FACTOR 2.0

/* Rule (a)'s margin in nats over reference ref. */
double stats_learned_margin(double ref);
/* The learned reference of t (NAN when there is no baseline value). */
double stats_learned_reference(const struct table *t);
/* Row r's reference: the baseline's under r's values of the condition
 * columns where the baseline ran them, else stats_learned_reference
 * (NAN when there is none: the rule then uses the run's own best). */
double stats_learned_reference_row(const struct table *t, size_t r);
/* The condition columns (names) of the learned reference into cond (at
 * most cap): the settings other than seeds that take more than one value
 * among the baseline's rows (the sweep's axes, e.g. nets.activation). A row's
 * reference is then the median best NLL of the baseline's rows with the
 * row's values in them (the overall median where the baseline has no
 * such row), so a mitigation is held to the baseline under the same
 * conditions. Returns the count (0: one reference for every row). */
size_t stats_learned_conditions(const struct table *t, const char **cond,
				size_t cap);
/* Whose runs give the reference, for texts ("the baseline's runs", or
 * the stand-in mitigation, or the reference table's baseline, named). */
void stats_learned_who(const struct table *t, char *buf, size_t n);

/* Row r's held-out NLL col ("nll_best" or "nll_last") on the consistent
 * scale (eval.nll_estimator = consistent, models/model.h): the value as
 * run, plus for an RHVAE row run with pythae's get_nll the tempering
 * Jacobian pythae omits, -d log b (b = rhvae.beta_zero, its square root
 * when rhvae.beta_zero_as_sqrt = false; 19.26 nats at d = 16, b = 0.3).
 * A row without eval.nll_estimator ran with pythae's; a row of another
 * kind, or without model.kind (a hand-made table), is taken as it is.
 * false when the value is missing or cannot be put on that scale (an
 * HVAE row with pythae's formula, which is not a likelihood). */
bool stats_row_nll(const struct table *t, size_t r, const char *col,
		   double *v);

/* Sets (adding it if missing) column "learned" of every row of t, from
 * the NLLs on the consistent scale (stats_row_nll). */
enum vb_status stats_fill_learned(struct table *t, struct vb_error *err);

/* The rule's text for summary.md (one paragraph). */
void stats_learned_rule(FILE *f, const struct table *t);

/* The held-out columns the mitigation table summarises (median, min,
 * max over a mitigation's runs), indices into stats_mit.ho: the NLLs as
 * run (pythae's get_nll unless eval.nll_estimator = consistent), the
 * SSEs, and the NLLs on the consistent scale (stats_row_nll; names
 * "nll_best_consistent", "nll_last_consistent": not results.csv
 * columns). */
enum stats_ho { STATS_HO_NLL_BEST, STATS_HO_NLL_LAST, STATS_HO_SSE_BEST,
		STATS_HO_SSE_LAST, STATS_HO_NLLC_BEST, STATS_HO_NLLC_LAST,
		STATS_N_HO };
_Static_assert(STATS_HO_NLLC_LAST - STATS_HO_NLLC_BEST ==
		       STATS_HO_NLL_LAST - STATS_HO_NLL_BEST &&
	       STATS_HO_NLL_BEST == 0,
	       "NLLC_* index NLL_*'s columns by k - STATS_HO_NLLC_BEST");
extern const char *const STATS_HO_COLUMNS[STATS_N_HO];

struct stats_mit {
	const char *name; /* borrowed from the table */
	size_t first_row;
	size_t cells, runs, hits, errors;
	double *epochs; /* (hits) first-NaN epochs, parsed ones only */
	size_t n_epochs;
	size_t n_final, n_best, n_at, n_sec;
	double final_sum, best_sum, at_sum, sec_sum;
	double ep_sec, ep_sum; /* seconds and epochs_done of rows with
				  epochs_done > 0 */
	/* (runs) the finite values of each held-out column
	 * (STATS_HO_COLUMNS), sorted */
	double *ho[STATS_N_HO];
	size_t n_ho[STATS_N_HO];
	size_t n_learned, n_learned_known; /* "true" / "true" or "false" */
	size_t n_value_error, n_runtime_error, n_nan_loss; /* pythae_error */
	double clip_sum;       /* clipped_share over n_clip runs */
	size_t n_clip;
	double cpu_sum;        /* cpu_per_epoch over n_cpu runs */
	size_t n_cpu;
	/* worst_partial_epochs and worst_partial_expected summed over the
	 * n_wp runs that have them: how often the epoch's last, partial
	 * batch was its worst, against chance (issue 16 item 4) */
	double wp_hits, wp_expected;
	size_t n_wp;
};

/* Median of the sorted v (n), NAN when n is 0. */
double stats_median_sorted(const double *v, size_t n);

struct stats_mit_table {
	struct stats_mit *m;
	size_t n;
	size_t base;  /* index of the baseline */
	long epoch;   /* comparison epoch E; 0: none */
	size_t n_base_runs;
};

bool stats_is_hit(const char *status);

enum vb_status stats_distinct(const struct table *t, const char *name,
			       struct stats_values *out, struct vb_error *err);

size_t stats_value_index(const struct stats_values *v, const char *s);

/* The axes: setting columns whose values vary, in column order. */
enum vb_status stats_find_axes(const struct table *t, const char ***axes,
				size_t *n, struct vb_error *err);

double stats_median_epoch(struct stats_group *g);

/* Groups the rows by the values of keys (first-appearance order). */
enum vb_status stats_group_rows(const struct table *t,
				 const char *const *keys, size_t nk,
				 struct stats_group **out, size_t *n_out,
				 struct vb_error *err);

void stats_free_groups(struct stats_group *g, size_t n);

void stats_mit_free(struct stats_mit_table *mt);

double stats_mean_or_nan(double sum, size_t n);

/* The 95 % Wilson score interval (z = 1.96) of a share of k events in n
 * trials into *lo, *hi (both in [0, 1]; NaN when n = 0): the interval the
 * tables give beside "k/n" (k = n = 10 gives 0.72-1). */
#define STATS_WILSON_Z 1.959963984540054
void stats_wilson(size_t k, size_t n, double *lo, double *hi);

/* Per-mitigation numbers of the rows naming one (mt->n = 0 if none). */
enum vb_status stats_mit_collect(const struct table *t, struct stats_mit_table *mt,
				  struct vb_error *err);

double stats_mit_median(const struct stats_mit *m);

double stats_mit_sec_per_epoch(const struct stats_mit *m);

/* m's time per epoch relative to the baseline's: on CPU seconds per
 * epoch when both have them (independent of what else ran), on wall
 * seconds per epoch when neither has, NAN when only one has (rows of an
 * older vaebench have no cpu_per_epoch; CPU against wall would mislead). */
double stats_mit_time_ratio(const struct stats_mit_table *mt, const struct stats_mit *m);

/* CPU seconds per epoch of mitigation m: the mean of its runs'
 * cpu_per_epoch (NaN when none has one). */
double stats_mit_cpu_per_epoch(const struct stats_mit *m);

/* The cost columns of mitigation m, in the order of mitigations.csv and
 * summary.md: mean clipped share, mean seconds, seconds per epoch, CPU
 * seconds per epoch (NaN where undefined). */
#define STATS_N_COSTS 4
void stats_mit_costs(const struct stats_mit *m, double *v);

/* The mitigation table of the rows whose "mitigation" column is not
 * empty, one line per mitigation in order of first appearance (file order
 * for a sweep's rows, which are sorted by cell): cells, runs that hit
 * NaN/Inf out of the runs (error rows aside), first-NaN epoch (median,
 * min, max), mean final eval loss of the finite runs, mean best eval loss
 * of all runs, mean eval loss at the comparison epoch E over the runs
 * that reached E with a finite eval loss (and how many) next to the
 * baseline's, and the wall clock: mean seconds per cell, seconds per
 * epoch run (sum of seconds / sum of epochs_done, so that runs stopped
 * early by a NaN compare) and that relative to the baseline. The baseline
 * is the mitigation named "baseline", else the first; E is the largest
 * epoch that every baseline run completed with a finite eval loss (the
 * shortest run of finite leading eval_losses entries; 0: no comparison).
 * report_write_summary includes it as the section "Mitigations";
 * stats_write_mitigations writes it as CSV to path (columns mitigation,
 * cells, runs, errors, nan_runs, first_nan_epoch_median, _min, _max,
 * final_eval_loss_mean, final_eval_runs, best_eval_loss_mean,
 * best_eval_runs, compare_epoch, eval_loss_at_epoch, eval_runs_at_epoch,
 * baseline_eval_loss_at_epoch, nll_last_median, nll_last_min,
 * nll_last_max, nll_runs, sse_last_median, sse_last_min, sse_last_max,
 * nll_best_median, nll_best_min, nll_best_max, sse_best_median,
 * sse_best_min, sse_best_max,
 * learned, learned_known, value_error, runtime_error, nan_loss,
 * clipped_share_mean, seconds_mean, seconds_per_epoch,
 * time_vs_baseline; the last three are wall clock). *written is false
 * (and nothing is written) when no row names a mitigation. */
enum vb_status stats_write_mitigations(const struct table *t, const char *path,
				       bool *written, struct vb_error *err);

#endif
