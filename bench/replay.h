/* replay: `vaebench replay RUN_DIR`: resumes a finished run from its last
 * resume checkpoint before a step (the first event's step by default),
 * reruns to that step with the cheap guard or in anomaly mode, and checks
 * that the same first event appears at the same step and that the end
 * state (parameters, optimiser moments, step) equals the original run's
 * checkpoint.safetensors bit for bit. Optionally dumps the step. Printing
 * the report is left to main. */
#ifndef VB_BENCH_REPLAY_H
#define VB_BENCH_REPLAY_H

#include <stdbool.h>
#include <stdio.h>

#include "train.h"
#include "vb.h"

struct replay_request {
	const char *run_dir;
	long step;             /* replay up to this step; <= 0: the original
				  first event's step, or its last step */
	bool anomaly;          /* anomaly mode (names the origin) */
	const char *dump;      /* safetensors dump of that step, or NULL */
	bool reset_optimizer;  /* zero Adam moments and step after loading */
};

struct replay_report {
	/* the original run, from RUN_DIR/summary.csv */
	char orig_status[16];
	long orig_step;          /* first event's step; -1 none */
	char orig_phase[32];
	char orig_quantity[GUARD_QUANTITY_LEN];
	char orig_value[64];
	long orig_steps;         /* steps the original run made */
	long orig_lead_step;     /* its lead_step; -1 none */
	/* what was replayed */
	char checkpoint[1200];
	long from_step;
	long target_step;
	struct train_summary rep;
	char rep_value[64];
	bool same_event;         /* same step, phase, quantity and value */
	bool state_compared;     /* the original stopped at target_step */
	bool same_state;         /* every tensor of checkpoint.safetensors */
	long n_state_diff;       /* tensors that differ */
	char first_diff[160];    /* name of the first that differs */
};

/* Runs the replay; VB_ERR_IO / VB_ERR_DATA / VB_ERR_CONFIG when the run
 * folder, its config, summary or checkpoints are missing or bad. A replay
 * that does not reproduce is a result (same_event false), not an error. */
enum vb_status replay_run(const struct replay_request *q,
			  struct replay_report *out, FILE *log,
			  struct vb_error *err);

/* Fills the orig_* fields of o from RUN_DIR/summary.csv (dir);
 * VB_ERR_IO when it cannot be read, VB_ERR_DATA when it is not
 * vaebench's summary.csv. */
enum vb_status replay_read_summary(const char *dir, struct replay_report *o,
				   struct vb_error *err);

/* Prints the report as a few "key: value" lines. */
void replay_print(FILE *f, const struct replay_request *q,
		  const struct replay_report *r);

#endif
