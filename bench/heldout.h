/* heldout: the evaluation pass of an epoch (the eval loss on the eval
 * noise stream) and the held-out measures of one run beyond the eval loss
 * (issue 15 item 1): reconstruction error with z = the encoder mean per
 * evaluation batch, snapshots of the model (parameters in memory, model
 * state as a small file in the run folder) at the best and at the last
 * finite epoch, and the importance-sampled NLL (model_nll, pythae's
 * get_nll estimate) on them when the run ends. Internal to the training
 * run (run.h): train.c calls it; it uses its own scratch tape and its own
 * RNG stream, so training is unchanged. */
#ifndef VB_BENCH_HELDOUT_H
#define VB_BENCH_HELDOUT_H

#include <stdbool.h>
#include <stddef.h>

#include "vb.h"

struct run;

/* The NLL's RNG: rng_seed(train.seed ^ HELDOUT_NLL_SEED_SALT,
 * RNG_STREAM_NOISE), re-seeded for each snapshot; no training stream
 * moves. */
#define HELDOUT_NLL_SEED_SALT 0x6e6c6c7374726d31ull

/* Scratch tape and per-image buffers (every run), snapshot buffers when
 * eval.nll_samples > 0 and the run writes its folder. */
enum vb_status heldout_setup(struct run *r, struct vb_error *err);
/* Frees what heldout_setup allocated and removes the snapshot files. */
void heldout_teardown(struct run *r);

/* Adds the sums over the nb images in r->x (preprocessed) of the
 * per-image SSE and BCE with z = encoder mean (model_recon_error). */
enum vb_status heldout_recon(struct run *r, size_t nb, double *sse,
			     double *bce, struct vb_error *err);

/* After a finite, evaluated epoch: the model as the last finite state,
 * and as the best one when best. No-op when the NLL is off. */
enum vb_status heldout_snapshot(struct run *r, bool best,
				struct vb_error *err);

/* The parameters' tensor in a snapshot file. */
#define HELDOUT_PARAMS "heldout.params"

/* A run resumed from an interrupted one (train --resume, a resumed sweep
 * cell): the snapshots of its best and last finite epochs before the
 * resume point (r->sum restored), when their IS-NLL is not known from a
 * summary, are read back from the files the interrupted run left (an
 * older vaebench's files have no parameters: then only a snapshot of the
 * resume point's epoch serves, with the checkpoint's), so the NLL at the
 * run's end is the uninterrupted run's. VB_ERR_DATA naming the file when
 * a needed one cannot serve. No-op when the NLL is off. */
enum vb_status heldout_resume(struct run *r, struct vb_error *err);
/* Whether run_dir's snapshot files can serve heldout_resume of a run
 * resumed after epoch `at`: the snapshots needed (best_epoch, last_epoch
 * >= 1; 0: not needed) exist and hold the parameters, or are of epoch
 * `at` (whose parameters are the resume checkpoint's). */
bool heldout_resumable(const char *run_dir, long best_epoch,
		       long last_epoch, long at);

/* At the run's end (after its outputs are written: it overwrites the
 * parameters): the mean NLL per image (nats) of the first
 * eval.nll_images evaluation images at the best and at the last
 * snapshot into r->sum->nll_best / nll_last (NAN: no snapshot or off),
 * and the seconds it took into r->sum->nll_seconds. Both snapshots use
 * the same draws (the stream is re-seeded from train.seed), so when the
 * best epoch is the last finite one the estimate is computed once. */
enum vb_status heldout_nll(struct run *r, struct vb_error *err);

/* The evaluation pass of epoch: the model's loss on every batch of
 * r->d->eval (batches of train.eval_batch in an order drawn from the eval
 * noise stream, no gradients) and, per batch, heldout_recon. Writes the
 * means per batch of the loss (*loss), its reconstruction and regulariser
 * parts (*recon, *reg) and the means per image of the squared error and
 * BCE (*sse, *bce). Shows progress on r->log. A non-finite loss ends the
 * run's guard as train.nan_check says (an event, not an error; pythae mode
 * leaves *loss NaN). Errors: preprocessing or model failures. */
enum vb_status heldout_eval_epoch(struct run *r, long epoch, double *loss,
				  double *recon, double *reg, double *sse,
				  double *bce, struct vb_error *err);

#endif
