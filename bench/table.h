/* table: result rows and the tables made from them. A row is every setting
 * (config keys, through config_get_at) followed by the result columns of
 * one static column list (name and getter each), so new settings and new
 * result fields appear without touching the writers. Owns results.csv,
 * summary.md, machine.json, merge and report; the pictures are drawn by
 * plot. */
#ifndef VB_BENCH_TABLE_H
#define VB_BENCH_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "train.h"
#include "vb.h"

/* One result column: its CSV name and how to format it from a summary.
 * wallclock columns vary between identical runs (seconds) and are left out
 * of reproducibility comparisons. */
struct table_column {
	const char *name;
	bool wallclock;
	void (*get)(const struct train_summary *s, char *buf, size_t cap);
};

size_t table_result_count(void);
/* Column i (< table_result_count()), static storage. */
const struct table_column *table_result_column(size_t i);

/* True when column name is a wall-clock column. */
bool table_is_wallclock(const char *name);

/* True when column name is a setting (a config key). */
bool table_is_setting(const char *name);

/* Writes the CSV header and the row of one cell to f: "id", "cell" (the
 * grid index), "mitigation" (its name, "" or NULL for none), every config
 * key but run.name, run.out_dir and run.progress, then the result
 * columns. The column eval_losses (the per-epoch evaluation losses joined
 * by ';', %.9g, "nan" for a non-finite one) is read from the run folder's
 * metrics.csv (s->run_dir), which train_run has written by then; it is
 * empty for status error or without that file. VB_ERR_IO on a write
 * error. */
enum vb_status table_row_write(FILE *f, const char *id, size_t cell,
			       const char *mitigation, const struct config *c,
			       const struct train_summary *s,
			       struct vb_error *err);

/* An in-memory CSV table of strings. */
struct table {
	size_t n_cols, n_rows;
	char **cols;  /* (n_cols) names, owned */
	char **cells; /* (n_rows * n_cols) row-major, owned, "" when empty */
	size_t cap_rows;
};

void table_init(struct table *t);
void table_free(struct table *t);

/* Reads a CSV file (RFC 4180 quoting) with a header line into t (which
 * must be initialised and empty). VB_ERR_IO if it cannot be read,
 * VB_ERR_DATA "table: FILE:LINE: ..." on a row of the wrong width. */
enum vb_status table_read(const char *path, struct table *t,
			  struct vb_error *err);

/* Appends every row of src to dst; columns of src missing in dst are
 * added (empty in dst's earlier rows). */
enum vb_status table_append(struct table *dst, const struct table *src,
			    struct vb_error *err);

/* Index of column name, -1 if absent. */
int table_col(const struct table *t, const char *name);

/* Cell (row, column name); "" when the column is absent. Borrowed. */
const char *table_get(const struct table *t, size_t row, const char *name);

/* Sorts rows by the numeric "cell" column, then by "id"; drops later rows
 * whose id repeats an earlier one. Deterministic. */
void table_sort_rows(struct table *t);

/* Writes t as CSV to path atomically (path.tmp, rename). */
enum vb_status table_write(const struct table *t, const char *path,
			   struct vb_error *err);

/* Reads every DIR/rows/<id>.csv into t (sorted, see table_sort_rows). A
 * missing rows folder gives an empty table. */
enum vb_status table_collect_rows(const char *dir, struct table *t,
				  struct vb_error *err);

/* Writes summary.md for t to path: the axes (setting columns whose values
 * vary), one table grouping the runs by every axis but train.seed (runs,
 * share that hit NaN/Inf, median first-NaN epoch, mean final eval loss of
 * the finite runs), one such table per axis, the mitigation table (see
 * table_write_mitigations) when rows name mitigations, and the list of
 * runs that hit a non-finite value; note (markdown, may be NULL) goes
 * under the opening counts. Deterministic for the same rows but
 * for the wall-clock columns of the mitigation table (its last three). */
enum vb_status table_write_summary(const struct table *t, const char *title,
				   const char *note, const char *path,
				   struct vb_error *err);

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
 * table_write_summary includes it as the section "Mitigations";
 * table_write_mitigations writes it as CSV to path (columns mitigation,
 * cells, runs, errors, nan_runs, first_nan_epoch_median, _min, _max,
 * final_eval_loss_mean, final_eval_runs, best_eval_loss_mean,
 * best_eval_runs, compare_epoch, eval_loss_at_epoch, eval_runs_at_epoch,
 * baseline_eval_loss_at_epoch, seconds_mean, seconds_per_epoch,
 * time_vs_baseline; the last three are wall clock). *written is false
 * (and nothing is written) when no row names a mitigation. */
enum vb_status table_write_mitigations(const struct table *t, const char *path,
				       bool *written, struct vb_error *err);

/* Writes DIR/machine.json: CPU, cores, BLAS core and threads, precision,
 * compiler, C library, jobs, git commit (the VB_GIT_COMMIT environment
 * variable, else the build's, else "unknown"). */
enum vb_status table_write_machine(const char *dir, int jobs,
				   struct vb_error *err);

/* Rebuilds DIR/results.csv from DIR/rows (when that folder exists), then
 * DIR/summary.md, DIR/mitigations.csv and mitigations.png (when rows name
 * mitigations) and the plots: stability_map.png (map_x x map_y, NULL for
 * the defaults: optim.lr x train.batch when both vary, else the first
 * varying settings), loss_curves.png and grad_norm.png from the run
 * folders' metrics.csv. */
enum vb_status table_report(const char *dir, const char *map_x,
			    const char *map_y, struct vb_error *err);

/* Joins sweep folders into out: every row of each dir (its rows/ folder,
 * else its results.csv), one per id, copied to out/rows/; each run folder
 * linked as out/runs/<id>; then table_report(out). */
enum vb_status table_merge(const char *out, const char *const *dirs,
			   size_t n_dirs, struct vb_error *err);

/* "vaebench report DIR [--map X,Y]" and "vaebench merge OUT DIR...":
 * parse argv (without the command word) and run. VB_ERR_USAGE for bad
 * options. log gets one line naming what was written (may be NULL). */
enum vb_status table_report_command(int argc, char **argv, FILE *log,
				    struct vb_error *err);
enum vb_status table_merge_command(int argc, char **argv, FILE *log,
				   struct vb_error *err);

#endif
