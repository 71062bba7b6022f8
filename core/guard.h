/* guard: finite checks, the first-non-finite record and its cause. The
 * cheap guard (always on) checks the input batch, the loss, the global
 * gradient norm and the parameters once per step; anomaly mode
 * (anomaly.h) checks every node of the tape and fills the origin fields of
 * the same record. Cause classification from op names and input
 * statistics lives here so that both modes share one documented list. */
#ifndef VB_CORE_GUARD_H
#define VB_CORE_GUARD_H

#include <stdbool.h>
#include <stddef.h>

#include "vb.h"

/* Where an event was seen. The same numbers are the phases a trainer or a
 * model stamps on tape nodes through graph_set_phase (packed with
 * GUARD_PHASE_CODE when a step index matters): graph_reset leaves 0
 * (GUARD_PHASE_NONE), which anomaly mode reads as "the stage's default"
 * (forward while training, eval while evaluating). Values never reach a
 * table as integers: guard_phase_name / guard_phase_format give strings. */
enum guard_phase {
	GUARD_PHASE_NONE,
	GUARD_PHASE_INPUT,     /* the batch itself */
	GUARD_PHASE_FORWARD,   /* loss of a training batch */
	GUARD_PHASE_BACKWARD,  /* gradients */
	GUARD_PHASE_UPDATE,    /* parameters after the optimiser step */
	GUARD_PHASE_EVAL,      /* evaluation loss */
	GUARD_PHASE_LEAPFROG,  /* RHVAE/HVAE integrator: index = leapfrog step
				  k (1-based), sub = sub-step (rhvae.md 6.1 ->
				  1, ..., 6.4 -> 4) */
	GUARD_PHASE_INNER_GRAD, /* a gradient taken inside the forward pass
				   (graph_grad), e.g. dH/dz of a leapfrog */
	GUARD_PHASE_BACKWARD2, /* backward through nodes built by a
				  create_graph gradient: second order */
	GUARD_PHASE_EPOCH_END, /* model epoch-end hook (RHVAE metric) */
	GUARD_PHASE_TEMPERING, /* HVAE/RHVAE tempering of the momentum */
	GUARD_PHASE_COUNT
};

/* A graph phase with a 1-based index (0..255) and sub-step (0..255):
 * GUARD_PHASE_CODE(GUARD_PHASE_LEAPFROG, 1, 2) is leapfrog step 1,
 * sub-step 2, formatted "leapfrog1.2". */
#define GUARD_PHASE_CODE(kind, index, sub) \
	((int)(kind) | ((int)(index) & 0xff) << 8 | ((int)(sub) & 0xff) << 16)
#define GUARD_PHASE_KIND(code) ((enum guard_phase)((code) & 0xff))

enum guard_status {
	GUARD_STATUS_OK,
	GUARD_STATUS_NAN,
	GUARD_STATUS_INF,
	GUARD_STATUS_ERROR
};

/* Why the first non-finite value appeared. The fixed list; the string of
 * guard_cause_name is what tables store. See guard_classify_op for the
 * rule that picks each one. */
enum guard_cause {
	GUARD_CAUSE_NONE,             /* "": no event */
	GUARD_CAUSE_UNKNOWN,          /* "unknown": cheap guard only; replay
					 in anomaly mode names it */
	GUARD_CAUSE_EXP_OVERFLOW,     /* exp of a finite input > log(max) */
	GUARD_CAUSE_LOG_DOMAIN,       /* log of zero or a negative */
	GUARD_CAUSE_DIV_ZERO,         /* division by zero (also 0/0, the
					 Adam update with adam_eps = 0) */
	GUARD_CAUSE_SQRT_ZERO_BACKWARD, /* d sqrt(x) at x = 0 */
	GUARD_CAUSE_SQRT_NEGATIVE,    /* sqrt of a negative */
	GUARD_CAUSE_INF_ARITH,        /* inf - inf or 0 * inf: Inf inputs
					 turned into NaN */
	GUARD_CAUSE_PRODUCT_OVERFLOW, /* matmul/linear/conv/mul/square/scale
					 (or their backward) of finite
					 inputs gave Inf (or NaN via Inf) */
	GUARD_CAUSE_SUM_OVERFLOW,     /* add/sub/sum/mean of finite inputs */
	GUARD_CAUSE_MATRIX,           /* linalg_*: indefinite or singular */
	GUARD_CAUSE_INPUT_DATA,       /* non-finite input data */
	GUARD_CAUSE_GRAD_FINITE_LOSS, /* non-finite gradient from a finite
					 loss (no finer rule applies) */
	GUARD_CAUSE_PARAM_OVERFLOW,   /* a finite update made a parameter
					 non-finite */
	GUARD_CAUSE_UPDATE_NONFINITE_GRAD, /* optimiser applied a non-finite
					      gradient */
	GUARD_CAUSE_NONFINITE_PARAM,  /* a parameter was non-finite before
					 the step (set from outside) */
	GUARD_CAUSE_NONFINITE_CONST,  /* a constant or random draw */
	GUARD_CAUSE_OTHER_OP,         /* an op with finite inputs, no rule */
	GUARD_CAUSE_COUNT
};

#define GUARD_QUANTITY_LEN 128
#define GUARD_OP_LEN 32
#define GUARD_NODE_LEN 96
#define GUARD_PHASE_LEN 48
#define GUARD_MAX_IN 4       /* input statistics kept (graph's max) */
#define GUARD_MAX_SAMPLES 8  /* affected batch rows listed */

/* Statistics of one tensor: counts over all elements, min / max / max |x|
 * over the finite ones (0 when there are none). */
struct guard_stats {
	size_t n, n_nan, n_inf, n_zero, n_neg;
	double min, max, absmax;
};

struct guard_event {
	bool set;
	long epoch;   /* 1-based epoch */
	long step;    /* 1-based optimiser step (global) */
	enum guard_phase phase;  /* where the guard that stopped the run saw
				    it */
	char quantity[GUARD_QUANTITY_LEN]; /* "loss", "grad_norm",
					      "param:encoder.log_var.weight" */
	double value; /* the non-finite value seen */

	/* Origin: the first op whose inputs were finite and whose output was
	 * not (anomaly mode), or what the cheap guard can tell. */
	enum guard_cause cause;
	bool origin;                     /* op/node below are known */
	long origin_step;                /* step the origin was seen at */
	long origin_epoch;
	char origin_phase[GUARD_PHASE_LEN]; /* "forward", "backward",
					       "leapfrog1.2", "update" */
	char op[GUARD_OP_LEN];           /* "exp", "linear", "adam", "input" */
	char node[GUARD_NODE_LEN];       /* "vae.std", a parameter name */
	long node_id;                    /* tape position, -1 if none */
	size_t n_bad;                    /* non-finite elements of the output */
	size_t first_bad;                /* flat index of the first one */
	double bad_value;                /* its value */
	long n_bad_samples;              /* batch rows hit; -1 unknown */
	int n_sample_rows;
	long sample_rows[GUARD_MAX_SAMPLES]; /* first rows (batch positions) */
	long sample_ids[GUARD_MAX_SAMPLES];  /* their dataset indices, -1 */
	int n_in;
	struct guard_stats in[GUARD_MAX_IN]; /* the op's inputs */
	bool has_grad_out;
	struct guard_stats grad_out;     /* backward: the incoming gradient */
	/* When the origin made Inf and a later op turned Inf into NaN. */
	char nan_op[GUARD_OP_LEN];
	char nan_node[GUARD_NODE_LEN];
};

const char *guard_phase_name(enum guard_phase phase);
const char *guard_status_name(enum guard_status status);
const char *guard_cause_name(enum guard_cause cause);
/* One-line explanation of a cause, for reports. */
const char *guard_cause_help(enum guard_cause cause);

/* Formats a graph phase code into buf (cap bytes): the kind's name, then
 * the index and ".sub" when set: "forward", "leapfrog1.2". Code 0 gives
 * dflt's name. */
void guard_phase_format(int code, enum guard_phase dflt, char *buf,
			size_t cap);

/* True when all n values are finite; else *first_bad (may be NULL) gets
 * the index of the first non-finite one. Integer bit test, vectorisable,
 * and immune to -ffast-math style assumptions. */
bool guard_all_finite(const vb_real *x, size_t n, size_t *first_bad);

/* max |x[i]| over n values in one integer pass; Inf when any is Inf, NaN
 * when any is NaN (NaN wins). 0 for n == 0. */
double guard_max_abs(const vb_real *x, size_t n);

/* sum of x[i]^2 in double, in 8 interleaved lanes (vectorises; the
 * order is fixed, so the result is deterministic). For per-tensor
 * gradient norms of the precursor record. */
double guard_sum_squares(const vb_real *x, size_t n);

/* Statistics of n values. */
void guard_stats_compute(const vb_real *x, size_t n, struct guard_stats *s);

/* NaN or Inf status of a non-finite value (OK when finite). */
enum guard_status guard_classify(double value);

/* Records the event unless one is already set (the first one wins); the
 * origin fields are cleared (cause unknown). Returns true when this call
 * recorded it. */
bool guard_record(struct guard_event *ev, long epoch, long step,
		  enum guard_phase phase, const char *quantity, double value);

/* Copies the origin fields (cause .. nan_node) of src into dst. */
void guard_copy_origin(struct guard_event *dst, const struct guard_event *src);

/* Cause of an op node whose inputs are finite and whose output (forward)
 * or an input's accumulated gradient (backward) is not, from the op name
 * and input statistics in[0..n_in):
 *   forward:  exp -> exp_overflow; log -> log_domain; sqrt -> sqrt_negative
 *     when an input is < 0; div -> division_by_zero when the divisor has a
 *     zero, else product_overflow; linalg_* / cholesky / logdet / inverse /
 *     solve -> indefinite_matrix; matmul, linear, conv*, deconv*, mul*,
 *     square, scale, mse, bce*, dot -> product_overflow; add*, sub, sum*,
 *     mean, neg, expand*, repeat* -> sum_overflow; otherwise other_op.
 *   backward: sqrt with a zero input -> sqrt_zero_backward; log or div
 *     with a zero (divisor) -> division_by_zero, log without a zero ->
 *     product_overflow (G / tiny x); linalg_* ->
 *     indefinite_matrix; the product ops above and exp -> product_overflow;
 *     the sum ops -> sum_overflow; otherwise grad_finite_loss.
 * An op whose inputs hold Inf but no NaN and whose output has NaN is
 * inf_arith (not an origin: the Inf came from earlier). */
enum guard_cause guard_classify_op(const char *op, bool backward,
				   const struct guard_stats *in, int n_in);

/* Cause of a parameter that is non-finite after an optimiser step, from
 * the element's gradient g (as applied, after clipping) and, for Adam,
 * its moments m, v after the step and the denominator epsilon:
 * non-finite g -> update_nonfinite_grad; Adam with m == 0, v == 0 and
 * eps == 0 -> division_by_zero (0/0); otherwise param_overflow. */
enum guard_cause guard_classify_update(double g, bool adam, double m,
				       double v, double adam_eps);

#endif
