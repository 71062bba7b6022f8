/* train: one training run from a resolved config: data, model, optimiser,
 * the epoch loop with the cheap guard or anomaly mode, evaluation, and the
 * run folder (config.ini, metrics.csv, times.csv, summary.csv, meta.json,
 * checkpoint.safetensors, checkpoints/step-*.safetensors to resume from,
 * precursors.csv when a run fails). Also resuming from a checkpoint for
 * replay (train_run_opts; the replay command is in replay.h, finding a
 * run's checkpoints in forensics.h). The step itself is step.c's
 * pipeline (run.h). */
#ifndef VB_BENCH_TRAIN_H
#define VB_BENCH_TRAIN_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"
#include "dataset.h"
#include "guard.h"
#include "vb.h"

/* The resume checkpoint at the end of the last finished epoch, relative to
 * the run folder (written with run.checkpoint_every > 0; train --resume
 * starts from it). */
#define TRAIN_EPOCH_CKPT "checkpoints/epoch-end.safetensors"

struct train_data {
	struct dataset train_full, eval_full; /* owners */
	struct dataset train, eval;           /* the configured ranges */
};

/* Loads the configured dataset and cuts the train and eval ranges. */
enum vb_status train_data_load(const struct config *c, struct train_data *d,
			       struct vb_error *err);
void train_data_free(struct train_data *d);

#define TRAIN_FIRST_BATCH_LEN 8192

struct train_summary {
	enum guard_status status;
	struct guard_event first;     /* the first non-finite event */
	char message[400];            /* e.g. pythae's "NaN detected in ..." */
	long epochs_done;
	long steps;
	double final_train_loss;
	double final_eval_loss;
	double best_eval_loss;
	long best_epoch;
	double seconds;
	char run_dir[1100];
	/* Forensics: the first step whose gradient norm exceeded
	 * guard.lead_factor x its running median (-1: none) and how many
	 * steps before the first event that was (-1: no event or no spike). */
	long lead_step;
	long lead_time;
	/* guard.replay: the cheap guard's event was replayed in anomaly mode
	 * from step replay_from; replay_match when the replay hit the same
	 * step, phase, quantity and value. */
	bool replayed;
	bool replay_match;
	long replay_from;
	size_t anomaly_checks; /* tensors anomaly mode checked */
	long skipped;          /* train.skip_nonfinite: batches skipped;
				  also the steps the dynamic loss scaler
				  skipped */
	long scaler_skipped;   /* train.loss_scale = dynamic: steps skipped
				  for a non-finite unscaled gradient (also
				  in skipped) */
	double loss_scale;     /* the loss scale at the end (1: none) */
	char pythae_error[16]; /* train.nan_check = pythae: nan_loss,
				  value_error, runtime_error ("" none) */
	/* the dataset indices of the first event's images (the training
	 * step's micro-batches so far), space-separated; "" for none or an
	 * evaluation event */
	char first_batch[TRAIN_FIRST_BATCH_LEN];
	/* held-out measures: the last epoch evaluated with a finite eval
	 * loss before any event (0: none); the mean per-image SSE and BCE
	 * (z = encoder mean) of the evaluation set at the best epoch and at
	 * that one, the largest eval SSE of any evaluated epoch (NaN when
	 * one was NaN); the IS-NLL (nats per image, eval.nll_*) of the
	 * model at those two epochs (NAN: off or none) and its seconds */
	long last_finite_epoch;
	double sse_best, bce_best, sse_last, bce_last, sse_max;
	double nll_best, nll_last, nll_seconds;
	bool nll_best_set, nll_last_set; /* computed (the value may be NaN) */
	/* rhvae.grad_clip: entries of the gradients of H in the training
	 * forwards (of this process: a resumed run counts from its resume
	 * point) and those the clamp changed */
	unsigned long long h_grad_entries, h_grad_clamped;
	/* epochs whose worst training batch (highest loss) was the epoch's
	 * last, partial one, and how many that would be by chance (the sum
	 * of 1 / batches over the epochs that had a partial batch) */
	long worst_partial_epochs;
	double worst_partial_expected;
	long trained_epochs;   /* epochs with a worst batch (a trained one):
				  what --resume re-adds the expected count
				  over */
	double clipped_share;  /* optim.clip: steps whose gradient the clip
				  changed / steps clipped (0 for none) */
	bool interrupted;      /* ended early by train_request_stop (SIGINT,
				  SIGTERM): status "interrupted" in
				  summary.csv, resumable with --resume */
};

/* What one optimiser step gave, for train_options.on_step (NAN where the
 * step did not get that far). */
struct train_step_info {
	long epoch, step;
	double loss;       /* the step's training loss (micro-batch mean) */
	double grad_norm;  /* before clipping */
	double max_abs_z;  /* max |z| of the step's last micro-batch */
	double max_abs_param; /* max |parameter| after the step (NaN when
				 one is NaN) */
};

/* Called after every optimiser step (also the one that stopped the run). */
typedef void (*train_step_fn)(void *ctx, const struct train_step_info *s);

/* Extras for resuming and replaying; a zeroed struct (or NULL) is a plain
 * run from the config. */
struct train_options {
	const char *resume;     /* checkpoint to resume from; NULL: fresh */
	bool reset_optimizer;   /* zero Adam moments and step after resuming */
	long stop_step;         /* stop after this optimiser step; 0: none */
	bool anomaly;           /* anomaly mode whatever guard.mode says */
	const char *dump;       /* safetensors dump of step dump_step */
	long dump_step;         /* 0: stop_step */
	bool replay;            /* writes nothing into the run folder (no
				   logs, checkpoints or nested replay) */
	const char *final_checkpoint; /* replay: write the end state here */
	/* counterfactual: the full resume state right after optimiser step
	 * snapshot_step (mid-epoch: a checkpoint to resume from; after an
	 * epoch's last step it is written before the epoch's end and
	 * evaluation, so only its parameters are meant to be read) */
	const char *snapshot;
	long snapshot_step;
	bool clip_fresh;        /* with resume: optim.clip's state starts
				   empty, not from the checkpoint (a
				   counterfactual variant clipping in another
				   mode than the checkpoint's run) */
	train_step_fn on_step;  /* per-step values (NULL: none) */
	void *on_step_ctx;
	bool continue_run;      /* with resume: continue the interrupted run
				   in its own folder (train --resume):
				   metrics.csv and times.csv are appended
				   to, config.ini and the step-0 checkpoint
				   stay as they are */
};

/* A run owns its folder. Makes dir ready for a new run: a missing or
 * empty folder is fine; a non-empty one is refused (VB_ERR_CONFIG naming
 * the folder and --force / --resume) unless force, which clears it first
 * (files_clear_dir: renamed aside, then deleted) so that no precursors,
 * replay/, dumps or checkpoints of an earlier run stay beside the new
 * one. */
enum vb_status train_claim_dir(const char *dir, bool force,
			       struct vb_error *err);

/* Asks the running train_run to end cleanly after its current step
 * (async-signal-safe: only sets a flag; for SIGINT / SIGTERM handlers).
 * The run then writes what it has and summary.csv with status
 * "interrupted". */
void train_request_stop(void);

/* True once train_request_stop was called. */
bool train_stop_requested(void);

/* Runs the training described by c on d, writing the run folder
 * c->run.out_dir/c->run.name. A NaN is a result (status nan/inf in the
 * summary, VB_OK returned); errors are data, config or I/O failures.
 * log receives progress (may be NULL).
 * train.precision: native and f32 run in this build's vb_real; f16 / bf16
 * (float build only) round every op output and every tape gradient
 * (graph_set_rounding), parameters, optimiser and master gradients stay
 * float; the other build's type is refused (VB_ERR_CONFIG: f64 needs
 * vaebench-f64, f16 / bf16 need vaebench).
 * train.accumulate = N: one optimiser step (one clip, one guard check of
 * the summed gradient) per N consecutive micro-batches of train.batch,
 * each backward seeded with S / N (the loss divided by N); the epoch's
 * last group may be shorter and still divides by N; steps count
 * optimiser steps; a skipped or failing micro-batch ends its step; the
 * epoch's losses are means over micro-batches.
 * train.loss_scale (as torch.cuda.amp.GradScaler): the seed carries the
 * scale S, the summed gradient is multiplied by 1/S before clipping and
 * the update; dynamic: a non-finite unscaled gradient skips the update
 * (counted in skipped and scaler_skipped, not an event), S *= backoff,
 * and S *= growth after scale_interval good steps. The scaler's state is
 * in the resume checkpoints of scaled runs. Losses are reported unscaled.
 * With accumulate = 1 and no scaling the run is the plain loop, bit for
 * bit. */
enum vb_status train_run(const struct config *c, const struct train_data *d,
			 struct train_summary *out, FILE *log,
			 struct vb_error *err);

/* As train_run with options o (may be NULL). With o->resume the run
 * starts from that checkpoint (parameters, optimiser moments and step,
 * RNG states, epoch and position in the epoch with its permutation) and
 * goes on exactly as the original run did. */
enum vb_status train_run_opts(const struct config *c,
			      const struct train_data *d,
			      const struct train_options *o,
			      struct train_summary *out, FILE *log,
			      struct vb_error *err);

/* As train_run_opts, starting from the summary values prev that
 * resume_prepare (resume.h) restored (NULL: none). */
enum vb_status train_run_continue(const struct config *c,
				  const struct train_data *d,
				  const struct train_options *o,
				  const struct train_summary *prev,
				  struct train_summary *out, FILE *log,
				  struct vb_error *err);

/* Header and one row of summary.csv for a finished run. */
void train_summary_header(FILE *f);
void train_summary_row(FILE *f, const struct config *c,
		       const struct train_summary *s);

#endif
