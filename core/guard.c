/* guard: finite checks by bit pattern, tensor statistics, names of phases
 * and causes, the first-event record and the cause rules shared by the
 * cheap guard and anomaly mode. */
#include "guard.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const char *const PHASE_NAMES[GUARD_PHASE_COUNT] = {
	[GUARD_PHASE_NONE] = "",
	[GUARD_PHASE_INPUT] = "input",
	[GUARD_PHASE_FORWARD] = "forward",
	[GUARD_PHASE_BACKWARD] = "backward",
	[GUARD_PHASE_UPDATE] = "update",
	[GUARD_PHASE_EVAL] = "eval",
	[GUARD_PHASE_LEAPFROG] = "leapfrog",
	[GUARD_PHASE_INNER_GRAD] = "inner_grad",
	[GUARD_PHASE_BACKWARD2] = "second_order_backward",
	[GUARD_PHASE_EPOCH_END] = "epoch_end",
	[GUARD_PHASE_TEMPERING] = "tempering",
};

const char *guard_phase_name(enum guard_phase phase)
{
	if ((int)phase < 0 || phase >= GUARD_PHASE_COUNT)
		return "unknown";
	return PHASE_NAMES[phase];
}

const char *guard_status_name(enum guard_status status)
{
	switch (status) {
	case GUARD_STATUS_OK: return "ok";
	case GUARD_STATUS_NAN: return "nan";
	case GUARD_STATUS_INF: return "inf";
	case GUARD_STATUS_ERROR: return "error";
	}
	return "unknown";
}

struct cause_def {
	const char *name;
	const char *help;
};

static const struct cause_def CAUSES[GUARD_CAUSE_COUNT] = {
	[GUARD_CAUSE_NONE] = {"", "no event"},
	[GUARD_CAUSE_UNKNOWN] = {"unknown",
		"seen by the cheap guard only; replay with --anomaly names "
		"the origin"},
	[GUARD_CAUSE_EXP_OVERFLOW] = {"exp_overflow",
		"exp of a finite input above log(max real)"},
	[GUARD_CAUSE_LOG_DOMAIN] = {"log_domain", "log of zero or a negative"},
	[GUARD_CAUSE_DIV_ZERO] = {"division_by_zero",
		"division by zero or 0/0 (Adam with adam_eps = 0)"},
	[GUARD_CAUSE_SQRT_ZERO_BACKWARD] = {"sqrt_zero_backward",
		"derivative of sqrt at zero"},
	[GUARD_CAUSE_SQRT_NEGATIVE] = {"sqrt_negative", "sqrt of a negative"},
	[GUARD_CAUSE_INF_ARITH] = {"inf_arith",
		"inf - inf or 0 * inf turned Inf into NaN"},
	[GUARD_CAUSE_PRODUCT_OVERFLOW] = {"product_overflow",
		"a product or quotient (matmul, linear, conv, mul, square, "
		"div, or such an op's backward) of finite values overflowed"},
	[GUARD_CAUSE_SUM_OVERFLOW] = {"sum_overflow",
		"a sum of finite values overflowed"},
	[GUARD_CAUSE_MATRIX] = {"indefinite_matrix",
		"indefinite or singular matrix (Cholesky, log-det, inverse)"},
	[GUARD_CAUSE_INPUT_DATA] = {"nonfinite_input",
		"non-finite input data"},
	[GUARD_CAUSE_GRAD_FINITE_LOSS] = {"nonfinite_grad_finite_loss",
		"non-finite gradient from a finite loss"},
	[GUARD_CAUSE_PARAM_OVERFLOW] = {"param_overflow",
		"a finite update made a parameter non-finite"},
	[GUARD_CAUSE_UPDATE_NONFINITE_GRAD] = {"update_of_nonfinite_grad",
		"the optimiser applied a non-finite gradient"},
	[GUARD_CAUSE_NONFINITE_PARAM] = {"nonfinite_param",
		"a parameter was non-finite before the step (set from "
		"outside the optimiser)"},
	[GUARD_CAUSE_NONFINITE_CONST] = {"nonfinite_constant",
		"a constant or random draw was non-finite"},
	[GUARD_CAUSE_OTHER_OP] = {"other_op",
		"an op with finite inputs made a non-finite output (no rule)"},
};

const char *guard_cause_name(enum guard_cause cause)
{
	if ((int)cause < 0 || cause >= GUARD_CAUSE_COUNT)
		return "unknown";
	return CAUSES[cause].name;
}

const char *guard_cause_help(enum guard_cause cause)
{
	if ((int)cause < 0 || cause >= GUARD_CAUSE_COUNT)
		return "unknown";
	return CAUSES[cause].help;
}

void guard_phase_format(int code, enum guard_phase dflt, char *buf,
			size_t cap)
{
	enum guard_phase kind = GUARD_PHASE_KIND(code);
	int index = (code >> 8) & 0xff, sub = (code >> 16) & 0xff;
	if (kind == GUARD_PHASE_NONE)
		kind = dflt;
	if (index && sub)
		snprintf(buf, cap, "%s%d.%d", guard_phase_name(kind), index,
			 sub);
	else if (index)
		snprintf(buf, cap, "%s%d", guard_phase_name(kind), index);
	else if (sub)
		snprintf(buf, cap, "%s.%d", guard_phase_name(kind), sub);
	else
		snprintf(buf, cap, "%s", guard_phase_name(kind));
}

#ifdef VB_DOUBLE
#define GUARD_BITS uint64_t
#define GUARD_EXP 0x7ff0000000000000ull
#define GUARD_ABS 0x7fffffffffffffffull
#else
#define GUARD_BITS uint32_t
#define GUARD_EXP 0x7f800000u
#define GUARD_ABS 0x7fffffffu
#endif

bool guard_all_finite(const vb_real *x, size_t n, size_t *first_bad)
{
	const size_t block = 4096;
	for (size_t s = 0; s < n; s += block) {
		size_t e = s + block < n ? s + block : n;
		GUARD_BITS bad = 0;
		for (size_t i = s; i < e; i++) {
			GUARD_BITS b;
			memcpy(&b, &x[i], sizeof b);
			bad |= (GUARD_BITS)((b & GUARD_EXP) == GUARD_EXP);
		}
		if (bad) {
			for (size_t i = s; i < e; i++)
				if (!isfinite(x[i])) {
					if (first_bad)
						*first_bad = i;
					return false;
				}
		}
	}
	return true;
}

double guard_max_abs(const vb_real *x, size_t n)
{
	/* The magnitude bits of an IEEE value order like its magnitude, Inf
	 * above every finite value and NaN above Inf: one integer max. */
	GUARD_BITS m = 0;
	vb_real r;
	for (size_t i = 0; i < n; i++) {
		GUARD_BITS b;
		memcpy(&b, &x[i], sizeof b);
		b &= GUARD_ABS;
		m = b > m ? b : m;
	}
	memcpy(&r, &m, sizeof r);
	return (double)r;
}

double guard_sum_squares(const vb_real *x, size_t n)
{
	double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0}, acc = 0;
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		for (int k = 0; k < 8; k++)
			lane[k] += (double)x[i + k] * (double)x[i + k];
	for (; i < n; i++)
		acc += (double)x[i] * (double)x[i];
	for (int k = 0; k < 8; k++)
		acc += lane[k];
	return acc;
}

void guard_stats_compute(const vb_real *x, size_t n, struct guard_stats *s)
{
	bool any = false;
	memset(s, 0, sizeof *s);
	s->n = n;
	for (size_t i = 0; i < n; i++) {
		double v = (double)x[i];
		if (isnan(v)) {
			s->n_nan++;
			continue;
		}
		if (isinf(v)) {
			s->n_inf++;
			if (v < 0)
				s->n_neg++;
			continue;
		}
		if (v == 0)
			s->n_zero++;
		if (v < 0)
			s->n_neg++;
		if (!any) {
			s->min = s->max = v;
			any = true;
		}
		s->min = v < s->min ? v : s->min;
		s->max = v > s->max ? v : s->max;
		s->absmax = fabs(v) > s->absmax ? fabs(v) : s->absmax;
	}
}

enum guard_status guard_classify(double value)
{
	if (isnan(value))
		return GUARD_STATUS_NAN;
	if (isinf(value))
		return GUARD_STATUS_INF;
	return GUARD_STATUS_OK;
}

bool guard_record(struct guard_event *ev, long epoch, long step,
		  enum guard_phase phase, const char *quantity, double value)
{
	if (ev->set)
		return false;
	memset(ev, 0, sizeof *ev);
	ev->set = true;
	ev->epoch = epoch;
	ev->step = step;
	ev->phase = phase;
	snprintf(ev->quantity, sizeof ev->quantity, "%s", quantity);
	ev->value = value;
	ev->cause = GUARD_CAUSE_UNKNOWN;
	ev->node_id = -1;
	ev->n_bad_samples = -1;
	return true;
}

void guard_copy_origin(struct guard_event *dst, const struct guard_event *src)
{
	size_t off = offsetof(struct guard_event, cause);
	memcpy((char *)dst + off, (const char *)src + off, sizeof *dst - off);
}

static bool prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

static bool is_linalg(const char *op)
{
	return prefix(op, "linalg") || prefix(op, "cholesky") ||
	       prefix(op, "logdet") || prefix(op, "inverse") ||
	       prefix(op, "solve");
}

static bool is_product(const char *op)
{
	return prefix(op, "matmul") || prefix(op, "linear") ||
	       prefix(op, "conv") || prefix(op, "deconv") ||
	       prefix(op, "mul") || prefix(op, "square") ||
	       prefix(op, "scale") || prefix(op, "mse") ||
	       prefix(op, "bce") || prefix(op, "dot") ||
	       prefix(op, "bmm") || prefix(op, "outer");
}

static bool is_sum(const char *op)
{
	return prefix(op, "add") || prefix(op, "sub") || prefix(op, "sum") ||
	       prefix(op, "mean") || prefix(op, "neg") ||
	       prefix(op, "expand") || prefix(op, "repeat");
}

static bool any_zero(const struct guard_stats *in, int n_in, int from)
{
	for (int i = from; i < n_in; i++)
		if (in[i].n_zero)
			return true;
	return false;
}

enum guard_cause guard_classify_op(const char *op, bool backward,
				   const struct guard_stats *in, int n_in)
{
	if (!op)
		return GUARD_CAUSE_OTHER_OP;
	if (is_linalg(op))
		return GUARD_CAUSE_MATRIX;
	if (!strcmp(op, "exp"))
		return backward ? GUARD_CAUSE_PRODUCT_OVERFLOW
				: GUARD_CAUSE_EXP_OVERFLOW;
	if (!strcmp(op, "log")) {
		/* backward is G / x: a zero divides by zero, a tiny x makes
		 * the quotient overflow */
		if (!backward)
			return GUARD_CAUSE_LOG_DOMAIN;
		return any_zero(in, n_in, 0) ? GUARD_CAUSE_DIV_ZERO
					     : GUARD_CAUSE_PRODUCT_OVERFLOW;
	}
	if (prefix(op, "sqrt")) {
		if (backward)
			return any_zero(in, n_in, 0)
				       ? GUARD_CAUSE_SQRT_ZERO_BACKWARD
				       : GUARD_CAUSE_GRAD_FINITE_LOSS;
		return n_in > 0 && in[0].n_neg ? GUARD_CAUSE_SQRT_NEGATIVE
					       : GUARD_CAUSE_OTHER_OP;
	}
	if (!strcmp(op, "batch_norm") && !backward)
		/* finite inputs, non-finite output: the variance + eps of a
		 * channel is zero (sums run in double, so nothing else
		 * overflows) */
		return GUARD_CAUSE_DIV_ZERO;
	if (prefix(op, "div") || prefix(op, "recip")) {
		/* the divisor is the last input (recip: the only one) */
		if (n_in > 0 && in[n_in - 1].n_zero)
			return GUARD_CAUSE_DIV_ZERO;
		return GUARD_CAUSE_PRODUCT_OVERFLOW;
	}
	if (is_product(op))
		return GUARD_CAUSE_PRODUCT_OVERFLOW;
	if (is_sum(op))
		return GUARD_CAUSE_SUM_OVERFLOW;
	return backward ? GUARD_CAUSE_GRAD_FINITE_LOSS : GUARD_CAUSE_OTHER_OP;
}

enum guard_cause guard_classify_update(double g, bool adam, double m,
				       double v, double adam_eps)
{
	if (!isfinite(g))
		return GUARD_CAUSE_UPDATE_NONFINITE_GRAD;
	if (adam && m == 0 && v == 0 && adam_eps == 0)
		return GUARD_CAUSE_DIV_ZERO;
	return GUARD_CAUSE_PARAM_OVERFLOW;
}
