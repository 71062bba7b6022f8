/* test_optim: Adam / AdamW / SGD against textbook formulas in double and
 * against a float transcription of torch's operation order (bit for bit),
 * schedules against closed forms, validation and optim_reset, step ranges
 * of a loaded state. Gradient norms and clipping are test_clip's. Links
 * the float build (vb_real is float here). */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "ckutil.h"
#include "optim.h"
#include "testutil.h"

static struct optim *make(const struct optim_settings *s, size_t n)
{
	struct optim *o = NULL;
	struct vb_error err;
	vb_error_clear(&err);
	enum vb_status st = optim_create(s, n, &o, &err);
	ck_assert_msg(st == VB_OK, "optim_create: %s", err.msg);
	ck_assert_ptr_nonnull(o);
	return o;
}

static struct optim_settings adam_settings(enum optim_kind kind, double b1,
					   double b2, double eps, double wd)
{
	struct optim_settings s = {.kind = kind, .beta1 = b1, .beta2 = b2,
				   .adam_eps = eps, .weight_decay = wd};
	return s;
}

/* One Adam step in double, written from the paper (Kingma & Ba 2015,
 * Algorithm 1) with torch's placement of eps (added to sqrt(v_hat)), L2
 * decay added to the gradient (Adam) or decoupled shrinking of p by
 * (1 - lr wd) before the update (AdamW, Loshchilov & Hutter 2019). */
static void ref_adam(double *p, double *m, double *v, const double *g,
		     int n, int t, double lr, double b1, double b2,
		     double eps, double wd, bool decoupled)
{
	for (int i = 0; i < n; i++) {
		double gi = g[i];
		if (decoupled)
			p[i] *= 1.0 - lr * wd;
		else
			gi += wd * p[i];
		m[i] = b1 * m[i] + (1.0 - b1) * gi;
		v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
		double m_hat = m[i] / (1.0 - pow(b1, t));
		double v_hat = v[i] / (1.0 - pow(b2, t));
		p[i] -= lr * m_hat / (sqrt(v_hat) + eps);
	}
}

/* Float results vs the double reference. Parameters are O(1), updates
 * O(lr) = O(0.1); each step rounds ~10 float operations of relative 6e-8
 * on the update and one on the parameter, so 3 steps stay below ~3e-7
 * absolute; 1e-6 * max(1, |e|) leaves a 3x margin and is still 100x
 * smaller than any update, so a wrong bias correction or eps placement
 * fails. */
static void check_close_ref(const vb_real *got, const double *want, int n,
			    const char *what, int step)
{
	for (int i = 0; i < n; i++) {
		double tol = 1e-6 * fmax(1.0, fabs(want[i]));
		ck_assert_msg(fabs((double)got[i] - want[i]) <= tol,
			      "%s step %d [%d]: %.9g, expected %.9g", what,
			      step, i, (double)got[i], want[i]);
	}
}

static const double grads3[3][3] = {
	{0.5, -0.3, 0.01},
	{0.2, 0.4, -0.02},
	{-0.1, 0.05, 0.03},
};

static void run_adam_vs_ref(enum optim_kind kind, double wd)
{
	const double lr = 0.1, b1 = 0.8, b2 = 0.95, eps = 1e-3;
	struct optim_settings s = adam_settings(kind, b1, b2, eps, wd);
	struct optim *o = make(&s, 3);
	vb_real p[3] = {1.0f, -0.5f, 0.25f};
	double rp[3] = {1.0, -0.5, 0.25}, rm[3] = {0}, rv[3] = {0};
	for (int t = 1; t <= 3; t++) {
		vb_real g[3];
		for (int i = 0; i < 3; i++)
			g[i] = (vb_real)grads3[t - 1][i];
		vb_real g_copy[3];
		memcpy(g_copy, g, sizeof g);
		double gd[3];
		for (int i = 0; i < 3; i++)
			gd[i] = (double)g[i];
		optim_step(o, p, g, lr);
		ref_adam(rp, rm, rv, gd, 3, t, lr, b1, b2, eps, wd,
			 kind == OPTIM_ADAMW);
		ck_assert_int_eq(o->step, t);
		/* The gradient buffer is never written (L2 uses a temp). */
		ck_assert(memcmp(g, g_copy, sizeof g) == 0);
		check_close_ref(p, rp, 3, optim_kind_name(kind), t);
		check_close_ref(o->m, rm, 3, "exp_avg", t);
		/* exp_avg_sq relative: per step the float roundings of
		 * beta2, 1 - beta2 and four products and sums (6e-8 each)
		 * compound over 3 steps; observed below 3e-7, bound 1e-6. */
		for (int i = 0; i < 3; i++)
			ck_assert(fabs((double)o->v[i] - rv[i]) <=
				  1e-6 * rv[i]);
	}
	optim_free(o);
}

START_TEST(test_adam_three_steps)
{
	/* Hand check of step 1: with zero moments, m_hat = g and
	 * v_hat = g^2, so p1 = p0 - lr * g / (|g| + eps)
	 *                    = 1 - 0.1 * 0.5 / 0.501 = 0.9001996007984032. */
	struct optim_settings s = adam_settings(OPTIM_ADAM, 0.8, 0.95, 1e-3,
						0.0);
	struct optim *o = make(&s, 3);
	vb_real p[3] = {1.0f, -0.5f, 0.25f};
	vb_real g[3] = {0.5f, -0.3f, 0.01f};
	optim_step(o, p, g, 0.1);
	/* Float rounding of ~10 operations on an update of 0.1: 1e-6. */
	ck_assert_msg(fabs((double)p[0] - 0.9001996007984032) < 1e-6,
		      "p[0] %.9g", (double)p[0]);
	optim_free(o);

	run_adam_vs_ref(OPTIM_ADAM, 0.0);
}
END_TEST

START_TEST(test_adam_l2_decay)
{
	run_adam_vs_ref(OPTIM_ADAM, 0.1);
}
END_TEST

START_TEST(test_adamw_decay)
{
	run_adam_vs_ref(OPTIM_ADAMW, 0.1);

	/* With a zero gradient the Adam update is (-step * 0) / eps = -0, so
	 * AdamW leaves exactly p * (1 - lr wd) rounded to float. */
	struct optim_settings s = adam_settings(OPTIM_ADAMW, 0.9, 0.999, 1e-8,
						0.05);
	struct optim *o = make(&s, 4);
	vb_real p[4] = {1.0f, -2.0f, 0.3f, 0.0f};
	vb_real g[4] = {0};
	const double lr = 0.01;
	const vb_real f = (vb_real)(1.0 - lr * 0.05);
	vb_real want[4];
	for (int i = 0; i < 4; i++)
		want[i] = p[i] * f;
	optim_step(o, p, g, lr);
	ck_assert(memcmp(p, want, sizeof p) == 0);

	/* Adam with weight_decay differs from AdamW (coupled vs decoupled). */
	struct optim_settings sa = adam_settings(OPTIM_ADAM, 0.9, 0.999, 1e-8,
						 0.05);
	struct optim *oa = make(&sa, 4);
	vb_real q[4] = {1.0f, -2.0f, 0.3f, 0.0f};
	optim_step(oa, q, g, lr);
	ck_assert(fabs((double)q[0] - (double)want[0]) > 1e-3);
	optim_free(oa);
	optim_free(o);
}
END_TEST

START_TEST(test_adam_zero_eps_nan)
{
	/* eps = 0 with a zero gradient: denom = 0 and m = 0, so 0/0 = NaN
	 * reaches the parameter, as in torch. The optimiser must not hide
	 * it. */
	struct optim_settings s = adam_settings(OPTIM_ADAM, 0.9, 0.999, 0.0,
						0.0);
	struct optim *o = make(&s, 2);
	vb_real p[2] = {1.0f, 2.0f};
	vb_real g[2] = {0.0f, 1.0f};
	optim_step(o, p, g, 1e-3);
	ck_assert(isnan(p[0]));
	ck_assert(isfinite(p[1]));
	optim_free(o);
}
END_TEST

/* torch's _single_tensor_adam on a float tensor, written as the sequence
 * of tensor ops it performs, each a separate float rounding:
 *   param.mul_(1 - lr*wd)                      (AdamW)
 *   grad = grad.add(param, alpha=wd)           (Adam, self + alpha*other)
 *   exp_avg.lerp_(grad, 1 - beta1)             (Lerp.h two-branch formula)
 *   exp_avg_sq.mul_(beta2)
 *   exp_avg_sq.addcmul_(grad, grad, value=1 - beta2)  (self + v*t1*t2)
 *   denom = exp_avg_sq.sqrt(); denom /= bc2_sqrt; denom += eps
 *   param.addcdiv_(exp_avg, denom, value=-step_size)  (self + v*t1/t2)
 * Scalars: Python floats rounded to float once. */
static void emu_adam(vb_real *p, vb_real *m, vb_real *v, const vb_real *g,
		     size_t n, long t, double lr,
		     const struct optim_settings *s)
{
	double bc1 = 1.0 - pow(s->beta1, (double)t);
	double bc2 = 1.0 - pow(s->beta2, (double)t);
	double step_size = lr / bc1;
	double bc2_sqrt = pow(bc2, 0.5);
	if (s->kind == OPTIM_ADAMW && s->weight_decay != 0.0) {
		vb_real f = (vb_real)(1.0 - lr * s->weight_decay);
		for (size_t i = 0; i < n; i++)
			p[i] = p[i] * f;
	}
	vb_real w = (vb_real)(1.0 - s->beta1);
	for (size_t i = 0; i < n; i++) {
		vb_real gi = g[i];
		if (s->kind == OPTIM_ADAM && s->weight_decay != 0.0) {
			vb_real a = (vb_real)s->weight_decay * p[i];
			gi = gi + a;
		}
		vb_real diff = gi - m[i];
		if (fabsf((float)w) < 0.5f) {
			vb_real a = w * diff;
			m[i] = m[i] + a;
		} else {
			vb_real one_minus = (vb_real)1 - w;
			vb_real a = diff * one_minus;
			m[i] = gi - a;
		}
		v[i] = v[i] * (vb_real)s->beta2;
		vb_real c = (vb_real)(1.0 - s->beta2) * gi;
		c = c * gi;
		v[i] = v[i] + c;
		vb_real den = (vb_real)sqrt((double)v[i]); /* exact for float */
		den = den / (vb_real)bc2_sqrt;
		den = den + (vb_real)s->adam_eps;
		vb_real num = (vb_real)(-step_size) * m[i];
		vb_real upd = num / den;
		p[i] = p[i] + upd;
	}
}

START_TEST(test_adam_float_order)
{
	/* 1000 elements (not a multiple of the loops' blocks or vector
	 * widths), 4 steps, four settings covering both lerp branches
	 * (1 - beta1 < 0.5 and >= 0.5), L2 and decoupled decay. */
	enum { N = 1000 };
	const struct optim_settings cases[4] = {
		adam_settings(OPTIM_ADAM, 0.9, 0.999, 1e-8, 0.0),
		adam_settings(OPTIM_ADAM, 0.3, 0.99, 1e-6, 0.01),
		adam_settings(OPTIM_ADAMW, 0.85, 0.9, 1e-4, 0.05),
		adam_settings(OPTIM_ADAMW, 0.4, 0.999, 1e-8, 0.0),
	};
	static vb_real p[N], q[N], g[N], m[N], v[N];
	for (int c = 0; c < 4; c++) {
		struct optim *o = make(&cases[c], N);
		for (size_t i = 0; i < N; i++) {
			p[i] = q[i] = (vb_real)sin(0.7 * (double)i + 0.3);
			m[i] = v[i] = 0;
		}
		for (long t = 1; t <= 4; t++) {
			for (size_t i = 0; i < N; i++)
				g[i] = (vb_real)(cos(1.3 * (double)i +
						     (double)t) *
						 pow(10.0, (double)(i % 9) - 6.0));
			const double lr = 1e-3 * (double)t;
			optim_step(o, p, g, lr);
			emu_adam(q, m, v, g, N, t, lr, &cases[c]);
			for (size_t i = 0; i < N; i++) {
				ck_assert_msg(p[i] == q[i] && o->m[i] == m[i] &&
						      o->v[i] == v[i],
					      "case %d step %ld [%zu]: p %a vs %a, "
					      "m %a vs %a, v %a vs %a", c, t, i,
					      (double)p[i], (double)q[i],
					      (double)o->m[i], (double)m[i],
					      (double)o->v[i], (double)v[i]);
			}
		}
		optim_free(o);
	}
}
END_TEST

/* Hand values (lr 0.1, p0 1, gradients 1, 2, -1), torch.optim.SGD:
 *   momentum 0.9:  buf 1, 2.9, 1.61      -> p 0.9, 0.61, 0.449
 *   nesterov 0.9:  g' = g + 0.9 buf = 1.9, 4.61, 0.449
 *                                         -> p 0.81, 0.349, 0.3041
 *   momentum 0.9, dampening 0.5 (first step takes g undamped):
 *                  buf 1, 1.9, 1.21      -> p 0.9, 0.71, 0.589
 *   no momentum, weight_decay 0.1: g' = g + 0.1 p
 *                  g' 1.1, 2.089, -0.93189 -> p 0.89, 0.6811, 0.774289
 * Tolerance 1e-6: a handful of float roundings (6e-8 each) on O(1). */
START_TEST(test_sgd_hand_values)
{
	struct {
		double momentum, dampening, wd;
		bool nesterov;
		double want[3];
	} cases[4] = {
		{0.9, 0.0, 0.0, false, {0.9, 0.61, 0.449}},
		{0.9, 0.0, 0.0, true, {0.81, 0.349, 0.3041}},
		{0.9, 0.5, 0.0, false, {0.9, 0.71, 0.589}},
		{0.0, 0.0, 0.1, false, {0.89, 0.6811, 0.774289}},
	};
	const vb_real gs[3] = {1.0f, 2.0f, -1.0f};
	for (int c = 0; c < 4; c++) {
		struct optim_settings s;
		memset(&s, 0, sizeof s);
		s.kind = OPTIM_SGD;
		s.momentum = cases[c].momentum;
		s.dampening = cases[c].dampening;
		s.weight_decay = cases[c].wd;
		s.nesterov = cases[c].nesterov;
		struct optim *o = make(&s, 1);
		ck_assert_ptr_null(o->v);
		vb_real p = 1.0f;
		for (int t = 0; t < 3; t++) {
			vb_real g = gs[t];
			optim_step(o, &p, &g, 0.1);
			ck_assert(g == gs[t]);
			ck_assert_msg(fabs((double)p - cases[c].want[t]) < 1e-6,
				      "case %d step %d: %.9g, expected %.9g", c,
				      t + 1, (double)p, cases[c].want[t]);
		}
		if (cases[c].momentum == 0.0)
			ck_assert(o->m[0] == 0.0f); /* no buffer kept */
		optim_free(o);
	}
}
END_TEST

START_TEST(test_sgd_reset_clones)
{
	/* After reset the first step copies the gradient into the buffer
	 * again (torch's momentum_buffer None), bit for bit. */
	struct optim_settings s;
	memset(&s, 0, sizeof s);
	s.kind = OPTIM_SGD;
	s.momentum = 0.9;
	s.dampening = 0.3;
	struct optim *o = make(&s, 3);
	vb_real p[3] = {1, 2, 3}, g[3] = {0.25f, -0.5f, 0.125f};
	optim_step(o, p, g, 0.1);
	optim_step(o, p, g, 0.1);
	ck_assert(o->m[0] != g[0]);
	optim_reset(o);
	ck_assert_int_eq(o->step, 0);
	for (int i = 0; i < 3; i++)
		ck_assert(o->m[i] == 0.0f);
	vb_real g2[3] = {0.75f, 1.5f, -3.0f};
	optim_step(o, p, g2, 0.1);
	ck_assert(memcmp(o->m, g2, sizeof g2) == 0);
	optim_free(o);
}
END_TEST

START_TEST(test_adam_reset)
{
	struct optim_settings s = adam_settings(OPTIM_ADAM, 0.9, 0.999, 1e-8,
						0.0);
	struct optim *o = make(&s, 5);
	struct optim *fresh = make(&s, 5);
	vb_real p[5] = {1, 2, 3, 4, 5}, g[5] = {0.1f, -0.2f, 0.3f, -0.4f, 0.5f};
	for (int t = 0; t < 3; t++)
		optim_step(o, p, g, 0.01);
	ck_assert(o->m[0] != 0.0f && o->v[0] != 0.0f);
	optim_reset(o);
	ck_assert_int_eq(o->step, 0);
	for (int i = 0; i < 5; i++)
		ck_assert(o->m[i] == 0.0f && o->v[i] == 0.0f);
	vb_real q[5];
	memcpy(q, p, sizeof p);
	optim_step(o, p, g, 0.01);
	optim_step(fresh, q, g, 0.01);
	ck_assert(memcmp(p, q, sizeof p) == 0);
	ck_assert(memcmp(o->m, fresh->m, 5 * sizeof(vb_real)) == 0);
	ck_assert(memcmp(o->v, fresh->v, 5 * sizeof(vb_real)) == 0);
	ck_assert_int_eq(o->step, 1);
	optim_free(o);
	optim_free(fresh);
	optim_free(NULL);
}
END_TEST

START_TEST(test_settings_errors)
{
	struct vb_error err;
	struct optim *o = (struct optim *)&err; /* must be set to NULL */
	struct optim_settings s = adam_settings(OPTIM_ADAM, 1.0, 0.999, 1e-8,
						0.0);
	vb_error_clear(&err);
	ck_assert_int_eq(optim_create(&s, 4, &o, &err), VB_ERR_CONFIG);
	ck_assert_ptr_null(o);
	ck_assert_msg(strstr(err.msg, "beta1") != NULL, "%s", err.msg);

	s = adam_settings(OPTIM_ADAMW, 0.9, -0.1, 1e-8, 0.0);
	vb_error_clear(&err);
	ck_assert_int_eq(optim_settings_check(&s, &err), VB_ERR_CONFIG);
	ck_assert(strstr(err.msg, "beta2") != NULL);

	s = adam_settings(OPTIM_ADAM, 0.9, 0.999, NAN, 0.0);
	vb_error_clear(&err);
	ck_assert_int_eq(optim_settings_check(&s, &err), VB_ERR_CONFIG);
	ck_assert(strstr(err.msg, "adam_eps") != NULL);

	s = adam_settings(OPTIM_ADAM, 0.9, 0.999, 1e-8, -1.0);
	vb_error_clear(&err);
	ck_assert_int_eq(optim_settings_check(&s, &err), VB_ERR_CONFIG);
	ck_assert(strstr(err.msg, "weight_decay") != NULL);

	s = (struct optim_settings){.kind = OPTIM_SGD, .nesterov = true,
				    .momentum = 0.9, .dampening = 0.1};
	vb_error_clear(&err);
	ck_assert_int_eq(optim_settings_check(&s, &err), VB_ERR_CONFIG);
	ck_assert(strstr(err.msg, "nesterov") != NULL);
	s.dampening = 0.0;
	ck_assert_int_eq(optim_settings_check(&s, NULL), VB_OK);
	s.momentum = -0.5;
	s.nesterov = false;
	ck_assert_int_eq(optim_settings_check(&s, NULL), VB_ERR_CONFIG);

	s = adam_settings(OPTIM_ADAM, 0.9, 0.999, 0.0, 0.0); /* eps 0 is ok */
	ck_assert_int_eq(optim_settings_check(&s, NULL), VB_OK);
	vb_error_clear(&err);
	ck_assert_int_eq(optim_create(&s, 0, &o, &err), VB_ERR_SHAPE);
	ck_assert_ptr_null(o);
}
END_TEST

START_TEST(test_names)
{
	ck_assert_str_eq(optim_kind_name(OPTIM_SGD), "sgd");
	ck_assert_str_eq(optim_kind_name(OPTIM_ADAM), "adam");
	ck_assert_str_eq(optim_kind_name(OPTIM_ADAMW), "adamw");
	ck_assert_str_eq(optim_schedule_kind_name(OPTIM_SCHEDULE_CONSTANT),
			 "constant");
	ck_assert_str_eq(optim_schedule_kind_name(OPTIM_SCHEDULE_STEP),
			 "step");
	ck_assert_str_eq(optim_schedule_kind_name(OPTIM_SCHEDULE_WARMUP),
			 "warmup");
	ck_assert_str_eq(optim_schedule_kind_name(OPTIM_SCHEDULE_COSINE),
			 "cosine");
	enum optim_kind k = OPTIM_SGD;
	ck_assert(optim_kind_from_name("adamw", &k) && k == OPTIM_ADAMW);
	ck_assert(!optim_kind_from_name("Adam", &k) && k == OPTIM_ADAMW);
	enum optim_schedule_kind sk = OPTIM_SCHEDULE_CONSTANT;
	ck_assert(optim_schedule_kind_from_name("cosine", &sk) &&
		  sk == OPTIM_SCHEDULE_COSINE);
	ck_assert(!optim_schedule_kind_from_name("linear", &sk));
}
END_TEST

/* Closed forms below are exact or one or two double roundings away; 4 ulp
 * relative covers the few roundings of the implementation. */
static void check_lr(double got, double want, const char *what, long at)
{
	ck_assert_msg(fabs(got - want) <= 4.0 * DBL_EPSILON * fabs(want),
		      "%s at %ld: %.17g, expected %.17g", what, at, got, want);
}

START_TEST(test_schedules)
{
	const double base = 0.01;
	struct optim_schedule s;
	memset(&s, 0, sizeof s);

	s.kind = OPTIM_SCHEDULE_CONSTANT;
	for (long e = 0; e < 5; e++)
		check_lr(optim_schedule_lr(&s, base, e, 100 * e), base,
			 "constant", e);

	/* StepLR(step_size 3, gamma 0.5): epochs 0-2 base, 3-5 base/2,
	 * 6-8 base/4, 9 base/8. */
	s.kind = OPTIM_SCHEDULE_STEP;
	s.step_size = 3;
	s.gamma = 0.5;
	const double step_want[10] = {base, base, base, base / 2, base / 2,
				      base / 2, base / 4, base / 4, base / 4,
				      base / 8};
	for (long e = 0; e < 10; e++)
		check_lr(optim_schedule_lr(&s, base, e, 7), step_want[e],
			 "step", e);
	s.gamma = 0.1; /* not a power of two: 0.01 * 0.1^2 at epoch 6 */
	check_lr(optim_schedule_lr(&s, base, 6, 0), 1e-4, "step 0.1", 6);

	/* Linear warm-up over 4 optimiser steps, then constant; the epoch
	 * is ignored. */
	s.kind = OPTIM_SCHEDULE_WARMUP;
	s.warmup_steps = 4;
	const double warm_want[6] = {base / 4, base / 2, 3 * base / 4, base,
				     base, base};
	for (long t = 0; t < 6; t++) {
		check_lr(optim_schedule_lr(&s, base, 0, t), warm_want[t],
			 "warmup", t);
		check_lr(optim_schedule_lr(&s, base, 9, t), warm_want[t],
			 "warmup epoch 9", t);
	}
	check_lr(optim_schedule_lr(&s, base, 0, 100000), base, "warmup", 1e5);

	/* CosineAnnealingLR(T_max 10, eta_min 1e-4): epoch 0 base, 5 the
	 * midpoint, 10 eta_min, 3 with cos(0.3 pi) = 0.5877852522924731
	 * (by hand: sin(0.2 pi) = sqrt(10 - 2 sqrt 5) / 4), 7 with -that. */
	s.kind = OPTIM_SCHEDULE_COSINE;
	s.total_epochs = 10;
	s.min_lr = 1e-4;
	const double c3 = 0.5877852522924731;
	check_lr(optim_schedule_lr(&s, base, 0, 0), base, "cosine", 0);
	check_lr(optim_schedule_lr(&s, base, 5, 0), (base + 1e-4) / 2,
		 "cosine", 5);
	/* At T_max cos(pi) = -1 and the factor is 0: eta_min up to the
	 * rounding of 1 + cos(pi), which is exact. */
	check_lr(optim_schedule_lr(&s, base, 10, 0), 1e-4, "cosine", 10);
	check_lr(optim_schedule_lr(&s, base, 3, 0),
		 1e-4 + (base - 1e-4) * (1.0 + c3) / 2.0, "cosine", 3);
	check_lr(optim_schedule_lr(&s, base, 7, 0),
		 1e-4 + (base - 1e-4) * (1.0 - c3) / 2.0, "cosine", 7);
	ck_assert(fabs(sqrt(10.0 - 2.0 * sqrt(5.0)) / 4.0 - c3) < 1e-15);
}
END_TEST

START_TEST(test_schedule_check)
{
	struct optim_schedule s = {.kind = OPTIM_SCHEDULE_CONSTANT};
	struct vb_error err;
	ck_assert_int_eq(optim_schedule_check(&s, NULL), VB_OK);
	s.kind = OPTIM_SCHEDULE_STEP;
	s.step_size = 0;
	s.gamma = 0.5;
	vb_error_clear(&err);
	ck_assert_int_eq(optim_schedule_check(&s, &err), VB_ERR_CONFIG);
	ck_assert(strstr(err.msg, "step_size") != NULL);
	s.step_size = 2;
	s.gamma = 0.0;
	ck_assert_int_eq(optim_schedule_check(&s, NULL), VB_ERR_CONFIG);
	s.kind = OPTIM_SCHEDULE_WARMUP;
	s.warmup_steps = 0;
	vb_error_clear(&err);
	ck_assert_int_eq(optim_schedule_check(&s, &err), VB_ERR_CONFIG);
	ck_assert(strstr(err.msg, "warmup_steps") != NULL);
	s.kind = OPTIM_SCHEDULE_COSINE;
	s.total_epochs = 5;
	s.min_lr = -1.0;
	vb_error_clear(&err);
	ck_assert_int_eq(optim_schedule_check(&s, &err), VB_ERR_CONFIG);
	ck_assert(strstr(err.msg, "min_lr") != NULL);
	s.min_lr = 0.0;
	ck_assert_int_eq(optim_schedule_check(&s, NULL), VB_OK);
}
END_TEST

/* Issue 17 item 9: optimizer.step = INT64_MAX in a crafted checkpoint made
 * Adam's o->step += 1 overflow. optim_load_step accepts 0..OPTIM_STEP_MAX
 * and names tensor and value otherwise (o unchanged); a clip state whose
 * counts hold INT64_MAX is refused too (its n_steps++ overflowed). A step
 * at the limit still gives a finite Adam update. */
START_TEST(test_load_step_range)
{
	const char *path = tu_path(tu_tmpdir("ostep"), "crafted.safetensors");
	const int64_t huge[1] = {INT64_MAX}, neg[1] = {-1},
		      edge[1] = {OPTIM_STEP_MAX}, five[1] = {5};
	size_t s1[1] = {1};
	const struct cu_tensor t[] = {
		{"optimizer.step", CHECKPOINT_I64, 0, s1, huge},
		{"neg", CHECKPOINT_I64, 0, s1, neg},
		{"edge", CHECKPOINT_I64, 0, s1, edge},
		{"five", CHECKPOINT_I64, 0, s1, five}};
	struct checkpoint *ck = cu_craft(path, t, 4);
	struct vb_error err;

	struct optim_settings st = adam_settings(OPTIM_ADAM, 0.9, 0.999, 1e-8,
						 0);
	struct optim *o = make(&st, 2);
	o->step = 3;
	vb_error_clear(&err);
	ck_assert_int_eq(optim_load_step(o, ck, "optimizer.step", &err),
			 VB_ERR_DATA);
	cu_expect_msg(&err, path, "tensor 'optimizer.step' = 9223372036854775807, "
		      "expected 0..9007199254740992");
	vb_error_clear(&err);
	ck_assert_int_eq(optim_load_step(o, ck, "neg", &err), VB_ERR_DATA);
	ck_assert_msg(strstr(err.msg, "tensor 'neg' = -1, expected "
				      "0..9007199254740992"), "%s", err.msg);
	ck_assert_int_eq(o->step, 3);
	vb_error_clear(&err);
	ck_assert_int_eq(optim_load_step(o, ck, "five", &err), VB_OK);
	ck_assert_int_eq(o->step, 5);
	vb_error_clear(&err);
	ck_assert_int_eq(optim_load_step(o, ck, "edge", &err), VB_OK);
	ck_assert(o->step == (long)OPTIM_STEP_MAX);
	vb_real p[2] = {1, -1}, g[2] = {0.5f, 0.25f};
	optim_step(o, p, g, 1e-3);
	ck_assert(o->step == (long)OPTIM_STEP_MAX + 1);
	ck_assert(isfinite(p[0]) && isfinite(p[1]) && p[0] < 1 && p[1] < -1);
	optim_free(o);
	checkpoint_close(ck);
}
END_TEST

TU_MAIN_CASES("optim",
	TU_CASE("adam", 0, test_adam_three_steps, test_adam_l2_decay,
		test_adamw_decay, test_adam_zero_eps_nan, test_adam_float_order,
		test_adam_reset),
	TU_CASE("sgd", 0, test_sgd_hand_values, test_sgd_reset_clones),
	TU_CASE("misc", 0, test_schedules, test_schedule_check,
		test_settings_errors, test_names, test_load_step_range))
