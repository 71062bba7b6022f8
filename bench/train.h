/* train: one training run from a resolved config: data, model, optimiser,
 * the epoch loop with the cheap guard, evaluation, and the run folder
 * (config.ini, metrics.csv, times.csv, summary.csv, meta.json,
 * checkpoint.safetensors). */
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
};

/* Runs the training described by c on d, writing the run folder
 * c->run.out_dir/c->run.name. A NaN is a result (status nan/inf in the
 * summary, VB_OK returned); errors are data, config or I/O failures.
 * log receives progress (may be NULL). */
enum vb_status train_run(const struct config *c, const struct train_data *d,
			 struct train_summary *out, FILE *log,
			 struct vb_error *err);

/* Header and one row of summary.csv for a finished run. */
void train_summary_header(FILE *f);
void train_summary_row(FILE *f, const struct config *c,
		       const struct train_summary *s);

/* Creates a folder and its parents (mkdir -p). */
enum vb_status train_mkdirs(const char *path, struct vb_error *err);

#endif
