/* cf_run: running the variants of a counterfactual (cf.h) from their
 * common start checkpoint. */
#ifndef VB_BENCH_CF_RUN_H
#define VB_BENCH_CF_RUN_H

#include <stdio.h>

#include "cf.h"
#include "vb.h"

/* Finds the start: the last resume checkpoint at or before
 * min(E - window, lead - 1) for the original's first event E; when the one
 * found is earlier, an unchanged bridge run from it writes the full state
 * at the start step. Sets cf->ckpt, ckpt_step, start, start_step,
 * end_step, bridged. log receives progress (may be NULL). VB_ERR_DATA when
 * the run has no usable checkpoint. */
enum vb_status cf_run_find_start(struct cf *cf, FILE *log,
				 struct vb_error *err);

/* Runs variant v (its config v->c) from cf->start to cf->end_step in
 * anomaly mode: records each step's loss, grad norm and max |z| and their
 * extremes in v, its summary, its final parameters (v->final) and the
 * snapshot after step cf->ref_step (v->snap), then its held-out measures
 * (q->eval_n images, q->nll_samples importance samples) and wall time.
 * VB_ERR_NOMEM; training and evaluation errors. */
enum vb_status cf_run_variant(struct cf *cf, struct cf_variant *v,
			      struct vb_error *err);

/* After the unchanged variant (cf->v[0]) ran: when its parameters are
 * not finite after cf->ref_step (E - 1), moves cf->ref_step back to its
 * last step with finite parameters (cf->start_step at the earliest; sets
 * cf->ref_moved) and reruns it from the start to there for its snapshot
 * (v->snap). The variants run after it snapshot at the new step. Then
 * the held-out measures of that state (its last finite one before the
 * event) into cf->ref_recon, cf->ref_nll.
 * Training errors; VB_ERR_NUMERIC when the rerun writes no snapshot. */
enum vb_status cf_run_reference(struct cf *cf, struct vb_error *err);

/* Each variant's v->dist = ||p - p0|| / ||p0|| over the flat parameters,
 * in double, of the snapshots after step cf->ref_step, p0 the unchanged
 * variant's (NAN when a snapshot is missing). */
enum vb_status cf_run_distances(struct cf *cf, struct vb_error *err);

/* The sibling binary's side of a variant whose train.precision the
 * other build computes (vaebench-f64 for f64 from the float build): runs
 * the variant the job file describes (written by cf_run_variant in the
 * parent: the run, the start checkpoint, steps, settings, output paths)
 * and writes its result file for the parent. Errors of the run. */
enum vb_status cf_run_job(const char *job, struct vb_error *err);

/* The sibling's result of variant v (ctx), as files_write_with writes it:
 * the summary's event, the held-out measures, the per-step record; and
 * read back into v (its slots allocated, v->cap of them). VB_ERR_DATA
 * when path is not such a result. Empty event names survive the trip
 * (a variant with no event). */
enum vb_status cf_result_write(FILE *f, void *ctx, struct vb_error *err);
enum vb_status cf_result_read(const char *path, struct cf_variant *v,
			      struct vb_error *err);

#endif
