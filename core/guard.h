/* guard: finite checks and the first-non-finite record. The cheap guard
 * (always on) checks the input batch, the loss, the global gradient norm
 * and the parameters once per step; the first event is kept with when
 * (epoch, step), where (phase, quantity) and its value. Anomaly mode
 * (per-node checks and cause classification) builds on this record. */
#ifndef VB_CORE_GUARD_H
#define VB_CORE_GUARD_H

#include <stdbool.h>
#include <stddef.h>

#include "vb.h"

enum guard_phase {
	GUARD_PHASE_NONE,
	GUARD_PHASE_INPUT,    /* the batch itself */
	GUARD_PHASE_FORWARD,  /* loss of a training batch */
	GUARD_PHASE_BACKWARD, /* gradients */
	GUARD_PHASE_UPDATE,   /* parameters after the optimiser step */
	GUARD_PHASE_EVAL      /* evaluation loss */
};

enum guard_status {
	GUARD_STATUS_OK,
	GUARD_STATUS_NAN,
	GUARD_STATUS_INF,
	GUARD_STATUS_ERROR
};

#define GUARD_QUANTITY_LEN 128

struct guard_event {
	bool set;
	long epoch;   /* 1-based epoch */
	long step;    /* 1-based optimiser step (global) */
	enum guard_phase phase;
	char quantity[GUARD_QUANTITY_LEN]; /* "loss", "grad_norm",
					      "param:encoder.log_var.weight" */
	double value; /* the non-finite value seen */
};

const char *guard_phase_name(enum guard_phase phase);
const char *guard_status_name(enum guard_status status);

/* True when all n values are finite; else *first_bad (may be NULL) gets
 * the index of the first non-finite one. Integer bit test, vectorisable,
 * and immune to -ffast-math style assumptions. */
bool guard_all_finite(const vb_real *x, size_t n, size_t *first_bad);

/* NaN or Inf status of a non-finite value (OK when finite). */
enum guard_status guard_classify(double value);

/* Records the event unless one is already set (the first one wins).
 * Returns true when this call recorded it. */
bool guard_record(struct guard_event *ev, long epoch, long step,
		  enum guard_phase phase, const char *quantity, double value);

#endif
