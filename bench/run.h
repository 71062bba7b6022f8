/* run: the state of one training run shared by the files that carry it
 * out (internal to bench/, not part of the CLI's interface): train.c
 * (set-up, epochs, evaluation, the run folder), step.c (one optimiser
 * step as a pipeline of stages) and forensics.c (precursor ring, resume
 * checkpoints, dumps, replay). Nothing outside those files includes it. */
#ifndef VB_BENCH_RUN_H
#define VB_BENCH_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "anomaly.h"
#include "config.h"
#include "graph.h"
#include "guard.h"
#include "model.h"
#include "optim.h"
#include "preprocess.h"
#include "rng.h"

/* train.h's types, used here by pointer only: run.h does not include
 * train.h, which train.c (that includes run.h) owns. */
struct train_data;
struct train_options;
struct train_summary;

/* One step of the precursor ring (guard.precursors of them). */
struct precursor {
	long epoch, step;
	double lr, loss, recon, reg;
	double grad_norm, median;  /* median of the previous window */
	double max_param, max_logvar, max_z;
	bool spike;                /* grad_norm > lead_factor x median */
};

#define RUN_MAX_WATCH 8
/* The running median needs this many earlier steps before it flags. */
#define RUN_LEAD_MIN_STEPS 8

struct run {
	const struct config *c;
	const struct train_data *d;
	const struct train_options *o;
	struct model *model;
	struct optim *opt;
	struct optim_clip *clip; /* optim.clip (every mode; counts steps) */
	struct optim_schedule sched;
	struct graph *g;
	struct rng shuffle, noise, eval_noise;
	/* rhvae.grad_clip's counts (entries, clamped) of the training steps
	 * of the epochs done (a resumed run's from its checkpoint), and the
	 * model's counts when the current epoch began (h_in_epoch): the
	 * model also counts its evaluation passes, which these leave out */
	uint64_t h_train[2], h_epoch0[2];
	bool h_in_epoch;
	size_t *perm;       /* (n_train) */
	size_t *eval_perm;  /* (n_eval) */
	vb_real *x;         /* (max batch, D) */
	double *norms;      /* (steps per epoch) grad norms of this epoch */
	double *sorted;     /* scratch for the median */
	long step;          /* optimiser steps done */
	const size_t *ev_ids; /* (ev_n) the current step's images so far */
	size_t ev_n;          /* 0 outside a training step */
	struct train_summary *sum;
	FILE *log;
	bool tty;
	/* without a terminal (logs, Slurm): a progress line every
	 * run.progress_every seconds; the time of the last one */
	bool progress_lines;
	double progress_last;
	/* forensics */
	struct anomaly an;
	bool anomaly_on;
	long start_epoch;        /* resume: 1-based epoch to start in */
	size_t start_batch;      /* resume: batches of it already done */
	double prior_seconds;    /* resume: wall seconds of the epochs before
				    it (times.csv), added to the row's */
	struct precursor *ring;  /* (ring_cap) */
	double *ring_layers;     /* (ring_cap, n_entries) grad norm per tensor */
	double *ring_watch;      /* (ring_cap, n_watch) */
	double *win;             /* (ring_cap) median scratch */
	size_t ring_cap;
	size_t ring_n;           /* records written so far */
	char watch[RUN_MAX_WATCH][GRAPH_NAME_LEN];
	size_t n_watch;
	char dir[1100];          /* run folder */
	char last_ckpt[1200];    /* latest resume checkpoint ("" none) */
	long last_ckpt_step;
	bool ckpt_pending;       /* a resume checkpoint is due at epoch end */
	vb_real *p_before;       /* (n) dump: parameters before the update */
	struct preprocess prep;  /* standardisation, non-finite rule */
	/* train.loss_scale: the scale S (a float value, as PyTorch's
	 * GradScaler keeps it; 1 without scaling) and the good steps since
	 * the last growth or backoff */
	double scale;
	long scale_good;
	/* held-out measures (heldout.c): scratch tape, per-image buffers,
	 * parameter snapshots at the best and the last finite epoch */
	struct graph *gh;
	double *ho_sse, *ho_bce; /* (eval batch) */
	vb_real *ho_best, *ho_last; /* (n params); NULL when the NLL is off */
	bool ho_has_best, ho_has_last;
};

/* What one epoch of training gave (step.c fills it, train.c logs it). */
struct epoch_stats {
	double loss, recon, reg;   /* means over n_loss micro-batches */
	double sum_loss, sum_recon, sum_reg; /* their running sums */
	long batches;              /* optimiser steps applied */
	long n_loss;               /* micro-batches in the loss means */
	long images;               /* images through a training forward */
	double gmin, gmed, gmax;
	double worst_loss;         /* the highest micro-batch loss (NaN worst) */
	long worst_batch;          /* its index in the epoch, -1 none */
	bool worst_partial;        /* it had fewer than train.batch images */
	long n_batches;            /* micro-batches of the epoch */
	bool has_partial;          /* its last one is partial */
	uint64_t h_entries, h_clamped; /* rhvae.grad_clip: gradient-of-H
					  entries of this epoch's training
					  forwards, and those clamped */
	bool stop;
};

/* train.loss_scale is on. */
bool run_scaler_on(const struct run *r);

/* The learning rate of 0-based epoch epoch0 at the current step. */
double run_epoch_lr(const struct run *r, long epoch0);

/* Training batches per epoch: the last one partial when train.batch does
 * not divide the training images, unless data.drop_last leaves it out. */
size_t run_n_batches(const struct run *r);

/* Mean of a node's values (NAN for a NULL node). */
double run_mean_of(const struct graph_node *n);

/* Records the guard's event (the first one wins) and, in anomaly mode,
 * the origin the hook found. Returns true when this call recorded it. */
bool run_stop_event(struct run *r, long epoch, enum guard_phase phase,
		    const char *quantity, double value);

/* train.nan_check = pythae: PyTorch's argument validation in the
 * forward just built on r->g (model_validate_args: #131's ValueError at
 * the prior's log_prob, BCE's RuntimeError). When it raised, records the
 * event (phase, quantity "ValueError:NODE" / "RuntimeError:NODE", value
 * the loss), the exception's text as message, pythae_error, and returns
 * true: the run ends there (a training step before its backward). */
bool run_pythae_raised(struct run *r, long epoch, enum guard_phase phase,
		       double value);

/* The run ends at its first event unless train.skip_nonfinite skipped it
 * (status still ok). */
bool run_stopped(const struct train_summary *s);

/* v as a CSV number: %.9g, or nan / inf / -inf. */
void run_csv_double(FILE *f, double v);

/* One epoch of training (step.c): the shuffled batches as optimiser
 * steps, each the pipeline input -> forward -> backward -> mitigate ->
 * update -> record; resume checkpoints and progress between steps.
 * Errors are data or I/O failures; a NaN ends the epoch with es->stop. */
enum vb_status step_run_epoch(struct run *r, long epoch,
			      struct epoch_stats *es, struct vb_error *err);

/* The running summary values of the epochs before a resume point (prev,
 * from resume_prepare) into r->sum, as an uninterrupted run has them
 * there. */
void run_restore_summary(struct run *r, const struct train_summary *prev);

#endif
