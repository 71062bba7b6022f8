/* report: the products of a sweep folder for people and tools:
 * summary.md (groups, mitigations, first events), machine.json, the copies
 * of run curves and precursors, the rebuild of all tables and figures
 * (report) and the merge of shard folders (merge). Uses table.h, stats.h,
 * figures.h and the sweep plan (plan.h) for the partial-grid note. */
#ifndef VB_BENCH_REPORT_H
#define VB_BENCH_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "table.h"
#include "vb.h"

/* Writes summary.md for t to path: the axes (setting columns whose values
 * vary), one table grouping the runs by every axis but train.seed (runs,
 * share that hit NaN/Inf, median first-NaN epoch, mean final eval loss of
 * the finite runs), one such table per axis, the mitigation table (see
 * stats_write_mitigations) when rows name mitigations, and the list of
 * runs that hit a non-finite value; note (markdown, may be NULL) goes
 * under the opening counts. Deterministic for the same rows but
 * for the wall-clock columns of the mitigation table (its last three). */
enum vb_status report_write_summary(const struct table *t, const char *title,
				   const char *note, const char *path,
				   struct vb_error *err);

/* Writes DIR/machine.json: CPU, cores, BLAS core and threads, precision,
 * compiler, C library, jobs, git commit (the VB_GIT_COMMIT environment
 * variable, else the build's, else "unknown"). */
enum vb_status report_write_machine(const char *dir, int jobs,
				   struct vb_error *err);

/* Rebuilds DIR/results.csv from DIR/rows (when that folder exists), then
 * DIR/summary.md, DIR/mitigations.csv and mitigations.png (when rows name
 * mitigations) and the plots: stability_map.png (map_x x map_y, NULL for
 * the defaults: optim.lr x train.batch when both vary, else the first
 * varying settings), loss_curves.png and grad_norm.png from the run
 * folders' metrics.csv. */
enum vb_status report_rebuild(const char *dir, const char *map_x,
			    const char *map_y, struct vb_error *err);

/* Joins sweep folders into out: every row of each dir (its rows/ folder,
 * else its results.csv), one per id, copied to out/rows/; each run folder
 * linked as out/runs/<id>; then report_rebuild(out). */
enum vb_status report_merge(const char *out, const char *const *dirs,
			   size_t n_dirs, struct vb_error *err);

#endif
