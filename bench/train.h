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

struct train_data {
	struct dataset train_full, eval_full; /* owners */
	struct dataset train, eval;           /* the configured ranges */
};

/* Loads the configured dataset and cuts the train and eval ranges. */
enum vb_status train_data_load(const struct config *c, struct train_data *d,
			       struct vb_error *err);
void train_data_free(struct train_data *d);

struct train_summary {
	enum guard_status status;
	struct guard_event first;     /* the first non-finite event */
	char message[256];            /* e.g. pythae's "NaN detected in ..." */
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
};

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
};

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

/* Header and one row of summary.csv for a finished run. */
void train_summary_header(FILE *f);
void train_summary_row(FILE *f, const struct config *c,
		       const struct train_summary *s);

#endif
