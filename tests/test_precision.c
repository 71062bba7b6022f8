/* test_precision: the training mitigations of issue 6 in the float build:
 * binary16 / bfloat16 rounding against hand values, the tape's rounding
 * mode (values, gradients, float master gradients, the anomaly hook seeing
 * rounded values), the scaled backward seed, and through the training
 * loop on synthetic data: an fp16 overflow classified at its op, dynamic
 * loss scaling backing off and growing, gradient accumulation against one
 * big batch, and accumulate = 1 / power-of-two static scales leaving the
 * run's bytes unchanged. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly.h"
#include "benchutil.h"
#include "checkpoint.h"
#include "config.h"
#include "graph.h"
#include "half.h"
#include "ops.h"
#include "replay.h"
#include "testutil.h"
#include "train.h"

/* A float and its bits (a union: type punning C11 defines). */
union fbits {
	float f;
	uint32_t u;
};

static float f_of(uint32_t u)
{
	return (union fbits){.u = u}.f;
}

static uint32_t bits(float x)
{
	return (union fbits){.f = x}.u;
}

/* Exact equality including the sign of zero. */
static void same(float got, float want, const char *what)
{
	ck_assert_msg(bits(got) == bits(want), "%s: got %a (%08x), want %a",
		      what, (double)got, (unsigned)bits(got), (double)want);
}

/* ---- rounding against hand values ---- */

START_TEST(test_f16_hand_values)
{
	float tie = 1.0f + ldexpf(1, -11); /* half way between 1, 1+2^-10 */
	same(half_round_f16(65504.0f), 65504.0f, "max stays");
	same(half_round_f16(65519.99f), 65504.0f, "below the overflow tie");
	same(half_round_f16(65520.0f), INFINITY, "65520 ties away to Inf");
	same(half_round_f16(-65520.0f), -INFINITY, "-65520");
	same(half_round_f16(1e6f), INFINITY, "1e6");
	same(half_round_f16(FLT_MAX), INFINITY, "FLT_MAX");
	same(half_round_f16(INFINITY), INFINITY, "Inf stays");
	same(half_round_f16(tie), 1.0f, "1+2^-11 ties to even (down)");
	same(half_round_f16(1.0f + 3 * ldexpf(1, -11)), 1.0f + ldexpf(1, -9),
	     "1+3*2^-11 ties to even (up)");
	same(half_round_f16(tie + ldexpf(1, -20)), 1.0f + ldexpf(1, -10),
	     "just above a tie rounds up");
	same(half_round_f16(-tie), -1.0f, "negative tie");
	same(half_round_f16(0.1f), 0.0999755859375f, "0.1 -> 0x2e66");
	same(half_round_f16(1.0f / 3), 0.333251953125f, "1/3 -> 0x3555");
	same(half_round_f16(2049.0f), 2048.0f, "integers above 2048 step by 2");
	same(half_round_f16(2051.0f), 2052.0f, "2051 ties to even");
	/* subnormals: multiples of 2^-24 below 2^-14 */
	same(half_round_f16(ldexpf(1, -14)), ldexpf(1, -14), "smallest normal");
	same(half_round_f16(ldexpf(1, -24)), ldexpf(1, -24),
	     "2^-24 smallest subnormal stays");
	same(half_round_f16(ldexpf(1, -25)), 0.0f, "2^-25 ties to 0");
	same(half_round_f16(-ldexpf(1, -25)), -0.0f, "-2^-25 to -0");
	same(half_round_f16(ldexpf(1, -25) + ldexpf(1, -40)), ldexpf(1, -24),
	     "above half the quantum");
	same(half_round_f16(3 * ldexpf(1, -25)), ldexpf(1, -23),
	     "1.5 quanta ties to 2");
	same(half_round_f16(5 * ldexpf(1, -25)), ldexpf(1, -23),
	     "2.5 quanta ties to 2");
	same(half_round_f16(1e-4f), 1678 * ldexpf(1, -24),
	     "1e-4 is normal: 1678 x 2^-24 (11 bits)");
	same(half_round_f16(5e-5f), 839 * ldexpf(1, -24),
	     "5e-5 is a subnormal: 839 x 2^-24");
	same(half_round_f16(ldexpf(1, -14) - ldexpf(1, -25)), ldexpf(1, -14),
	     "tie under the smallest normal rounds up to it (even)");
	same(half_round_f16(1e-30f), 0.0f, "tiny");
	same(half_round_f16(f_of(0x00000001u)), 0.0f, "float subnormal");
	same(half_round_f16(0.0f), 0.0f, "+0");
	same(half_round_f16(-0.0f), -0.0f, "-0");
	ck_assert(isnan(half_round_f16(NAN)));
	ck_assert(isnan(half_round_f16(-NAN)));
	ck_assert(isnan(half_round_f16(f_of(0x7f800001u)))); /* signalling */
}
END_TEST

START_TEST(test_bf16_hand_values)
{
	same(half_round_bf16(1.00390625f), 1.0f, "1+2^-8 ties to even (down)");
	same(half_round_bf16(1.01171875f), 1.015625f,
	     "1+3*2^-8 ties to even (up)");
	same(half_round_bf16(1.00390625f + ldexpf(1, -20)), 1.0078125f,
	     "above the tie");
	same(half_round_bf16(0.1f), 0.10009765625f, "0.1 -> 0x3dcd");
	same(half_round_bf16(65504.0f), 65536.0f, "65504 rounds up to 2^16");
	same(half_round_bf16(65520.0f), 65536.0f, "no overflow at 65520");
	same(half_round_bf16(3.3895313892515355e38f), 3.3895313892515355e38f,
	     "largest bfloat16 stays");
	same(half_round_bf16(FLT_MAX), INFINITY, "FLT_MAX overflows");
	same(half_round_bf16(-FLT_MAX), -INFINITY, "-FLT_MAX");
	same(half_round_bf16(ldexpf(1, -130)), ldexpf(1, -130),
	     "float subnormal kept");
	same(half_round_bf16(f_of(0x00008000u)), 0.0f, "subnormal tie to 0");
	same(half_round_bf16(f_of(0x00018000u)), f_of(0x00020000u),
	     "subnormal tie to even");
	same(half_round_bf16(-0.0f), -0.0f, "-0");
	same(half_round_bf16(-INFINITY), -INFINITY, "-Inf stays");
	ck_assert(isnan(half_round_bf16(NAN)));
	/* a NaN whose payload sits in the dropped bits stays NaN */
	ck_assert(isnan(half_round_bf16(f_of(0x7f800001u))));
	ck_assert(isnan(half_round_bf16(f_of(0xff80ffffu))));
}
END_TEST

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

START_TEST(test_round_arrays)
{
	enum { N = 1 << 16 };
	static vb_real a[N], b[N];
	uint64_t s = 7;
	for (size_t i = 0; i < N; i++)
		a[i] = b[i] = f_of((uint32_t)splitmix(&s));
	a[0] = b[0] = 65520.0f;
	a[1] = b[1] = ldexpf(1, -25);
	half_round_f16_array(a, N);
	half_round_bf16_array(b, N);
	s = 7;
	for (size_t i = 0; i < N; i++) {
		float x = f_of((uint32_t)splitmix(&s));
		if (i == 0)
			x = 65520.0f;
		if (i == 1)
			x = ldexpf(1, -25);
		float h = half_round_f16(x), bf = half_round_bf16(x);
		ck_assert_msg(bits(a[i]) == bits(h) ||
				      (isnan(h) && isnan(a[i])),
			      "f16 array %zu", i);
		ck_assert_msg(bits(b[i]) == bits(bf) ||
				      (isnan(bf) && isnan(b[i])),
			      "bf16 array %zu", i);
		/* idempotent: a rounded value is representable */
		if (!isnan(h))
			same(half_round_f16(h), h, "f16 twice");
		if (!isnan(bf))
			same(half_round_bf16(bf), bf, "bf16 twice");
	}
	ck_assert(isinf(a[0]) && a[1] == 0);
}
END_TEST

/* ---- the tape's rounding mode ---- */

START_TEST(test_graph_rounds_values)
{
	struct graph *g = NULL;
	float tie = 1.0f + ldexpf(1, -11);
	vb_real xv[2] = {tie, 1};
	size_t shape[1] = {2};
	struct graph_node *x, *y, *v;
	ck_assert(graph_create(1 << 16, &g, NULL) == VB_OK);
	ck_assert_int_eq(graph_rounding(g), GRAPH_ROUNDING_NONE);
	x = graph_input(g, "x", tensor_view(xv, 1, shape), false);
	y = op_scale(g, "y", x, 1.0);
	same(y->value.data[0], tie, "off: untouched");
	graph_set_rounding(g, GRAPH_ROUNDING_F16);
	graph_reset(g); /* the mode survives a reset */
	ck_assert_int_eq(graph_rounding(g), GRAPH_ROUNDING_F16);
	x = graph_input(g, "x", tensor_view(xv, 1, shape), false);
	v = op_reshape(g, "v", x, 1, shape);
	y = op_scale(g, "y", x, 1.0);
	same(y->value.data[0], 1.0f, "f16: op output rounded");
	/* leaves and views of leaves keep their data */
	same(xv[0], tie, "input leaf untouched");
	same(v->value.data[0], tie, "reshape view untouched");
	graph_set_rounding(g, GRAPH_ROUNDING_BF16);
	xv[0] = 1.00390625f;
	y = op_scale(g, "y2", x, 1.0);
	same(y->value.data[0], 1.0f, "bf16: op output rounded");
	y = op_scale(g, "y3", x, 65504.0);
	ck_assert(isfinite(y->value.data[0]));
	graph_free(g);
}
END_TEST

START_TEST(test_graph_rounds_grads)
{
	/* d sum(c x) / dx = c: rounded where the tape accumulates it; a
	 * parameter's rounded contribution is added in float to its slice
	 * (a float master gradient: 1 + 2^-12 survives, in binary16 the sum
	 * would be 1). */
	struct graph *g = NULL;
	float c = 1.0f + ldexpf(1, -11), c2 = ldexpf(1, -12) * c;
	vb_real xv[2] = {1, 2}, wv[2] = {3, 4}, wg[2] = {1, 1};
	size_t shape[1] = {2};
	struct graph_node *x, *w, *loss;
	ck_assert(graph_create(1 << 16, &g, NULL) == VB_OK);
	for (int mode = 0; mode < 2; mode++) {
		graph_reset(g);
		graph_set_rounding(g, mode ? GRAPH_ROUNDING_F16
					   : GRAPH_ROUNDING_NONE);
		wg[0] = wg[1] = 1;
		x = graph_input(g, "x", tensor_view(xv, 1, shape), true);
		w = graph_param(g, "w", tensor_view(wv, 1, shape), wg);
		loss = op_add(g, "l",
			      op_sum(g, "sx", op_scale(g, "cx", x, c)),
			      op_sum(g, "sw", op_scale(g, "cw", w, c2)));
		ck_assert(graph_backward(g, loss, NULL) == VB_OK);
		if (mode) {
			same(x->grad.data[0], 1.0f, "f16 input grad");
			same(wg[1], 1.0f + ldexpf(1, -12),
			     "f16 param grad: rounded term, float sum");
		} else {
			same(x->grad.data[0], c, "off: input grad");
			same(wg[1], 1.0f + c2, "off: param grad");
		}
	}
	graph_free(g);
}
END_TEST

START_TEST(test_graph_backward_scaled)
{
	struct graph *g = NULL;
	vb_real xv[3] = {1, -2, 0.5f}, g1[3], wv[3] = {0.25f, 2, -1};
	vb_real wg[3] = {0, 0, 0};
	size_t shape[1] = {3};
	struct graph_node *x, *w, *loss;
	ck_assert(graph_create(1 << 16, &g, NULL) == VB_OK);
	for (int pass = 0; pass < 3; pass++) {
		graph_reset(g);
		memset(wg, 0, sizeof wg);
		x = graph_input(g, "x", tensor_view(xv, 1, shape), true);
		w = graph_param(g, "w", tensor_view(wv, 1, shape), wg);
		loss = op_sum(g, "l", op_square(g, "sq", op_mul(g, "m", x, w)));
		ck_assert(pass == 0 ? graph_backward(g, loss, NULL) == VB_OK
				    : graph_backward_scaled(
					      g, loss, pass == 1 ? 1.0 : 1024.0,
					      NULL) == VB_OK);
		for (int i = 0; i < 3; i++) {
			double want = 2.0 * xv[i] * wv[i] * xv[i];
			if (pass == 0)
				g1[i] = wg[i];
			/* a power-of-two seed scales every product exactly */
			same(wg[i], pass == 2 ? 1024 * g1[i] : g1[i],
			     "scaled seed");
			ck_assert(fabs(wg[i] - (pass == 2 ? 1024 : 1) * want) <=
				  1e-6 * fabs((pass == 2 ? 1024 : 1) * want));
		}
	}
	graph_free(g);
}
END_TEST

START_TEST(test_anomaly_sees_rounded)
{
	/* 300 * 300 = 90000 is finite in float, Inf in binary16: with both
	 * on, the hook names the op that overflowed. The same on the
	 * gradient: d (1000 x) seeded with 100 is 1e5, Inf once rounded. */
	struct graph *g = NULL;
	struct anomaly a;
	vb_real xv[2] = {300, 1};
	size_t shape[2] = {2, 1};
	struct graph_node *x, *loss;
	ck_assert(graph_create(1 << 16, &g, NULL) == VB_OK);
	for (int mode = 0; mode < 2; mode++) {
		graph_reset(g);
		graph_set_rounding(g, mode ? GRAPH_ROUNDING_F16
					   : GRAPH_ROUNDING_NONE);
		anomaly_reset(&a);
		anomaly_attach(&a, g);
		anomaly_begin(&a, GUARD_PHASE_FORWARD, 1, 1, 2, NULL);
		x = graph_input(g, "x", tensor_view(xv, 2, shape), false);
		op_sum(g, "s", op_scale(g, "big", op_scale(g, "a", x, 1.0),
					300.0));
		ck_assert(mode ? a.ev.set : !a.ev.set);
		if (mode) {
			ck_assert_str_eq(a.ev.op, "scale");
			ck_assert_str_eq(a.ev.node, "big");
			ck_assert_int_eq(a.ev.cause,
					 GUARD_CAUSE_PRODUCT_OVERFLOW);
			ck_assert_int_eq(a.ev.sample_rows[0], 0);
			ck_assert(isinf(a.ev.bad_value));
			ck_assert(a.ev.in[0].max == 300);
		}
		/* backward */
		graph_reset(g);
		anomaly_reset(&a);
		anomaly_begin(&a, GUARD_PHASE_FORWARD, 1, 1, 2, NULL);
		xv[0] = 1;
		x = graph_input(g, "x", tensor_view(xv, 2, shape), true);
		loss = op_sum(g, "s", op_scale(g, "k", x, 1000.0));
		ck_assert(!a.ev.set);
		anomaly_begin(&a, GUARD_PHASE_BACKWARD, 1, 1, 2, NULL);
		ck_assert(graph_backward_scaled(g, loss, 100.0, NULL) == VB_OK);
		ck_assert(mode ? a.ev.set : !a.ev.set);
		if (mode) {
			ck_assert_str_eq(a.ev.op, "scale");
			ck_assert_str_eq(a.ev.node, "k");
			ck_assert_int_eq(a.ev.phase, GUARD_PHASE_BACKWARD);
			ck_assert_int_eq(a.ev.cause,
					 GUARD_CAUSE_PRODUCT_OVERFLOW);
			ck_assert(isinf(x->grad.data[0]));
		} else {
			ck_assert(x->grad.data[0] == 1e5);
		}
		anomaly_detach(g);
		xv[0] = 300;
	}
	graph_free(g);
}
END_TEST

/* ---- through the training loop ---- */

/* 256 synthetic images, MLP VAE, 8 steps of 32 per epoch. */
static void small_config(struct config *c, const char *dir, const char *name)
{
	bu_small_config(c, dir, name);
	BU_SET(c, "model.latent=4", "train.epochs=2");
}

static void run(const struct config *c, struct train_summary *s)
{
	bu_run(c, NULL, s);
}

/* small_config in a fresh temporary folder NAME, the NULL-terminated
 * settings KVS, one run that ends ok after STEPS steps. */
static void run_ok(const char *name, const char *const *kvs, long steps,
		   struct train_summary *s)
{
	struct config c;
	small_config(&c, tu_tmpdir(name), name);
	bu_set_all(&c, kvs);
	run(&c, s);
	ck_assert_int_eq(s->status, GUARD_STATUS_OK);
	ck_assert_int_eq(s->steps, steps);
}
#define RUN_OK(name, steps, s, ...)                                         \
	run_ok(name, (const char *const[]){__VA_ARGS__, NULL}, steps, s)

static char *read_run_file(const struct train_summary *s, const char *f)
{
	return bu_read_run_file(s, f);
}

START_TEST(test_f16_overflow_origin)
{
	/* Pixels in 0..255 (data.scale = 1): the encoder's log-variance
	 * passes 2 log(65504) = 22.2 on the first batch, so exp(logvar / 2)
	 * overflows binary16 (not float, which holds up to exp(88.7)). */
	const char *dir = tu_tmpdir("ovf");
	struct config c;
	struct train_summary s32, s16;
	small_config(&c, dir, "f32");
	BU_SET(&c, "data.scale=1", "guard.mode=anomaly");
	run(&c, &s32);
	ck_assert_int_eq(s32.status, GUARD_STATUS_OK);
	ck_assert(!s32.first.set);
	ck_assert(isfinite(s32.final_train_loss));
	ck_assert(isfinite(s32.final_eval_loss));
	ck_assert_int_eq(s32.steps, 16);

	small_config(&c, dir, "f16");
	BU_SET(&c, "data.scale=1", "guard.mode=anomaly", "train.precision=f16");
	run(&c, &s16);
	ck_assert(s16.status == GUARD_STATUS_NAN ||
		  s16.status == GUARD_STATUS_INF);
	ck_assert(s16.first.set && s16.first.origin);
	ck_assert_int_eq(s16.first.step, 1);
	ck_assert_str_eq(s16.first.origin_phase, "forward");
	ck_assert_str_eq(s16.first.op, "exp");
	ck_assert_str_eq(s16.first.node, "vae.std");
	ck_assert_int_eq(s16.first.cause, GUARD_CAUSE_EXP_OVERFLOW);
	ck_assert(isinf(s16.first.bad_value));
	/* the exp's input: beyond binary16's log(65504) = 11.09, far below
	 * float's 88.7: an overflow of the emulated precision only */
	ck_assert_msg(s16.first.in[0].max > 11.09 &&
			      s16.first.in[0].max < 88.7,
		      "exp input max %g", s16.first.in[0].max);
}
END_TEST

/* The value under column name in a two-line CSV text without quoted
 * commas before it (a static buffer). */
static const char *csv_field(const char *csv, const char *name)
{
	static char out[256];
	const char *row = strchr(csv, '\n'), *h = csv;
	size_t col = 0, len = strlen(name);
	out[0] = '\0';
	ck_assert_ptr_nonnull(row);
	row++;
	while (h < row && !(strncmp(h, name, len) == 0 &&
			    (h[len] == ',' || h[len] == '\n'))) {
		h = strpbrk(h, ",\n");
		if (!h || *h == '\n')
			ck_abort_msg("no column %s", name);
		h++;
		col++;
	}
	for (size_t i = 0; i < col; i++) {
		row = strchr(row, ',');
		ck_assert_ptr_nonnull(row);
		row++;
	}
	len = strcspn(row, ",\n");
	ck_assert_uint_lt(len, sizeof out);
	memcpy(out, row, len);
	out[len] = '\0';
	return out;
}

START_TEST(test_dynamic_scale_backs_off)
{
	/* scale_init 1e30: the seed overflows binary16 at once; every
	 * overflow skips the step and halves the scale until the gradients
	 * fit (about log2(1e30 / 65504) = 84 halvings), then training goes
	 * on: not an event for the strict guard. */
	const char *dir = tu_tmpdir("dyn");
	struct config c;
	struct train_summary s;
	small_config(&c, dir, "dyn");
	bu_set(&c, "train.batch=16"); /* 16 steps per epoch */
	BU_SET(&c, "train.epochs=7", "train.precision=f16",
		"train.loss_scale=dynamic", "train.scale_init=1e30",
		"train.nan_check=strict");
	run(&c, &s);
	ck_assert_int_eq(s.status, GUARD_STATUS_OK);
	ck_assert(!s.first.set);
	ck_assert_int_eq(s.steps, 7 * 16);
	ck_assert_msg(s.scaler_skipped >= 60 && s.scaler_skipped < 7 * 16,
		      "skipped %ld", s.scaler_skipped);
	ck_assert_int_eq(s.skipped, s.scaler_skipped);
	/* each skip halves the (float) scale; no growth within 2000 steps */
	ck_assert_double_eq(s.loss_scale,
			    (double)ldexpf((float)1e30,
					   -(int)s.scaler_skipped));
	ck_assert(s.loss_scale < 65504);
	ck_assert(isfinite(s.final_train_loss));
	ck_assert(isfinite(s.final_eval_loss));
	/* the skipped count reaches summary.csv's skipped column */
	char *sum = read_run_file(&s, "summary.csv");
	char want[32];
	snprintf(want, sizeof want, "%ld", s.skipped);
	ck_assert_str_eq(csv_field(sum, "skipped"), want);
	free(sum);
}
END_TEST

START_TEST(test_dynamic_scale_grows)
{
	/* float, no overflow: the scale doubles every scale_interval good
	 * steps: 16 steps / 4 = 4 doublings of 2 */
	struct train_summary s;
	RUN_OK("grow", 16, &s, "train.loss_scale=dynamic", "train.scale_init=2",
	       "train.scale_interval=4");
	ck_assert_int_eq(s.scaler_skipped, 0);
	ck_assert_double_eq(s.loss_scale, 32);
}
END_TEST

START_TEST(test_unchanged_bytes)
{
	/* accumulate = 1 is the plain loop; a static power-of-two scale in
	 * float is exact (every product scales by 2^k and back); loss
	 * scaling none by name: all the same metrics.csv bytes. */
	const char *dir = tu_tmpdir("same");
	static const char *const extra[] = {
		NULL, "train.accumulate=1", "train.loss_scale=static",
		"train.precision=f32"};
	struct config c;
	struct train_summary s;
	char *ref = NULL;
	for (int k = 0; k < 4; k++) {
		char name[16];
		snprintf(name, sizeof name, "r%d", k);
		small_config(&c, dir, name);
		if (extra[k])
			bu_set(&c, extra[k]);
		run(&c, &s);
		ck_assert_int_eq(s.status, GUARD_STATUS_OK);
		char *m = read_run_file(&s, "metrics.csv");
		if (!ref) {
			ref = m;
			continue;
		}
		ck_assert_msg(!strcmp(ref, m), "%s changes metrics.csv:\n%s\n"
			      "vs\n%s", extra[k], ref, m);
		free(m);
	}
	ck_assert_double_eq(s.loss_scale, 1); /* precision=f32, unscaled */
	free(ref);
}
END_TEST

/* Runs c to optimiser step `step` and dumps that step (its gradient as
 * applied) to dir/name.safetensors. */
static struct checkpoint *dump_step(struct config *c, const char *dir,
				    const char *name, long step,
				    struct train_summary *s)
{
	struct train_options o;
	struct checkpoint *ck = NULL;
	struct vb_error err = {0};
	char path[1200];
	snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
	memset(&o, 0, sizeof o);
	o.stop_step = step;
	o.dump = path;
	bu_run(c, &o, s);
	ck_assert_msg(checkpoint_open(path, &ck, &err) == VB_OK, "%s",
		      err.msg);
	return ck;
}

/* Every "grad:" tensor of a times fa against b times fb: within rtol of
 * the tensor's largest |b fb| (float sums in another order). Returns the
 * number of tensors compared. */
static int compare_grads(const struct checkpoint *a, double fa,
			 const struct checkpoint *b, double fb, double rtol)
{
	int n = 0;
	for (size_t i = 0; i < checkpoint_count(a); i++) {
		const char *name = checkpoint_name(a, i);
		size_t sa[CHECKPOINT_MAX_DIM], sb[CHECKPOINT_MAX_DIM], m = 1;
		int da, db;
		if (strncmp(name, "grad:", 5) != 0)
			continue;
		ck_assert(checkpoint_info(a, name, NULL, &da, sa, NULL) ==
			  VB_OK);
		ck_assert_msg(checkpoint_info(b, name, NULL, &db, sb, NULL) ==
				      VB_OK, "%s missing", name);
		ck_assert_int_eq(da, db);
		for (int k = 0; k < da; k++) {
			ck_assert_uint_eq(sa[k], sb[k]);
			m *= sa[k];
		}
		const float *ga = checkpoint_data(a, name);
		const float *gb = checkpoint_data(b, name);
		double big = 0;
		for (size_t j = 0; j < m; j++)
			big = fmax(big, fabs(fb * gb[j]));
		ck_assert_msg(big > 0, "%s: zero gradient", name);
		for (size_t j = 0; j < m; j++)
			ck_assert_msg(fabs(fa * ga[j] - fb * gb[j]) <=
					      rtol * big,
				      "%s[%zu]: %.9g vs %.9g (max %g)", name, j,
				      fa * ga[j], fb * gb[j], big);
		n++;
	}
	return n;
}

static void sgd_config(struct config *c, const char *dir, const char *name,
		       const char *batch, const char *acc)
{
	small_config(c, dir, name);
	bu_set(c, "optim.kind=sgd");
	bu_set(c, "train.sanity_check=false"); /* it draws a batch of noise */
	bu_set(c, batch);
	bu_set(c, acc);
}

START_TEST(test_accumulate_matches_big_batch)
{
	/* Two micro-batches of 16 (each loss / 2) take the same images
	 * (consecutive slices of the epoch's permutation) and the same
	 * noise draws as one batch of 32: mean losses, so the summed
	 * gradient is the big batch's gradient. 1e-4 of the largest
	 * element: float sums in another order differ near 1e-6. */
	const char *dir = tu_tmpdir("acc");
	struct config c;
	struct train_summary sa, sb, sh;
	struct checkpoint *a, *b, *h;
	sgd_config(&c, dir, "acc2", "train.batch=16", "train.accumulate=2");
	a = dump_step(&c, dir, "acc2", 1, &sa);
	sgd_config(&c, dir, "big", "train.batch=32", "train.accumulate=1");
	b = dump_step(&c, dir, "big", 1, &sb);
	sgd_config(&c, dir, "half", "train.batch=16", "train.accumulate=1");
	h = dump_step(&c, dir, "half", 1, &sh);
	ck_assert_int_eq(sa.steps, 1);
	ck_assert_int_eq(sb.steps, 1);
	ck_assert_int_ge(compare_grads(a, 1, b, 1, 1e-4), 4);
	/* the mean of the two micro-batch losses is the big batch's loss */
	ck_assert_msg(fabs(sa.final_train_loss - sb.final_train_loss) <=
			      1e-5 * fabs(sb.final_train_loss),
		      "%.9g vs %.9g", sa.final_train_loss,
		      sb.final_train_loss);
	/* negative control: one micro-batch alone is another gradient */
	{
		const char *w = "grad:encoder.layers.0.0.weight";
		const float *ga = checkpoint_data(h, w);
		const float *gb = checkpoint_data(b, w);
		double diff = 0, big = 0;
		size_t shape[CHECKPOINT_MAX_DIM], m;
		int nd;
		ck_assert(ga && gb);
		ck_assert(checkpoint_info(b, w, NULL, &nd, shape, NULL) ==
			  VB_OK);
		ck_assert_int_eq(nd, 2);
		m = shape[0] * shape[1];
		for (size_t j = 0; j < m; j++) {
			diff = fmax(diff, fabs(ga[j] - gb[j]));
			big = fmax(big, fabs(gb[j]));
		}
		ck_assert_msg(diff > 1e-2 * big, "diff %g max %g", diff, big);
	}
	checkpoint_close(a);
	checkpoint_close(b);
	checkpoint_close(h);
}
END_TEST

START_TEST(test_accumulate_last_group)
{
	/* 8 micro-batches of 32 with accumulate = 3: groups of 3, 3, 2 and
	 * the last one still divides by 3 (a plain PyTorch loop). With a
	 * negligible learning rate the weights stay put, so step 3 of this
	 * run (micro-batches 7, 8) against step 4 of accumulate = 2 (the
	 * same two, same noise draws) gives 3 g3 = 2 g2. */
	const char *dir = tu_tmpdir("last");
	struct config c;
	struct train_summary s3, s2, sf;
	struct checkpoint *a, *b;
	sgd_config(&c, dir, "acc3", "train.batch=32", "train.accumulate=3");
	bu_set(&c, "optim.lr=1e-30");
	a = dump_step(&c, dir, "acc3", 3, &s3);
	sgd_config(&c, dir, "acc2", "train.batch=32", "train.accumulate=2");
	bu_set(&c, "optim.lr=1e-30");
	b = dump_step(&c, dir, "acc2", 4, &s2);
	ck_assert_int_eq(s3.steps, 3);
	ck_assert_int_eq(s2.steps, 4);
	ck_assert_int_ge(compare_grads(a, 3, b, 2, 1e-4), 4);
	checkpoint_close(a);
	checkpoint_close(b);
	/* a whole run: ceil(8 / 3) = 3 optimiser steps per epoch */
	small_config(&c, dir, "full");
	bu_set(&c, "train.accumulate=3");
	run(&c, &sf);
	ck_assert_int_eq(sf.status, GUARD_STATUS_OK);
	ck_assert_int_eq(sf.steps, 2 * 3);
	char *m = read_run_file(&sf, "metrics.csv");
	ck_assert_msg(strstr(m, "\n1,3,") && strstr(m, "\n2,6,"), "%s", m);
	free(m);
}
END_TEST

START_TEST(test_rhvae_accumulate)
{
	/* the RHVAE buffers every micro-batch and trains as usual */
	struct train_summary s;
	RUN_OK("rhvae", 4, &s, "model.kind=rhvae", "train.accumulate=2",
	       "train.epochs=1");
	ck_assert(isfinite(s.final_train_loss));
	ck_assert(isfinite(s.final_eval_loss));
}
END_TEST

START_TEST(test_resume_scaled_accumulated)
{
	/* An f16 run with a dynamic scale that backs off and grows and two
	 * micro-batches per step, replayed from its last resume checkpoint
	 * (step 14, mid-epoch), ends in the same state bit for bit: the
	 * scaler's scale and good-step count travel in the checkpoint, the
	 * resume point is a micro-batch index at a step boundary. */
	const char *dir = tu_tmpdir("resume");
	struct config c;
	struct train_summary s;
	struct replay_request q;
	struct replay_report r;
	struct vb_error err = {0};
	small_config(&c, dir, "scaled");
	bu_set(&c, "train.batch=16");
	bu_set(&c, "train.accumulate=2"); /* 8 steps per epoch */
	BU_SET(&c, "train.precision=f16", "train.loss_scale=dynamic",
		"train.scale_init=1e7", "train.scale_interval=3",
		"run.checkpoint_every=7", "guard.replay=false");
	run(&c, &s);
	ck_assert_int_eq(s.status, GUARD_STATUS_OK);
	ck_assert_int_eq(s.steps, 16);
	ck_assert_int_gt(s.scaler_skipped, 0);
	memset(&q, 0, sizeof q);
	q.run_dir = s.run_dir;
	ck_assert_msg(replay_run(&q, &r, NULL, &err) == VB_OK, "%s", err.msg);
	ck_assert_int_eq(r.from_step, 14);
	ck_assert_int_eq(r.target_step, 16);
	ck_assert(r.state_compared && r.same_state);
	ck_assert_double_eq(r.rep.loss_scale, s.loss_scale);
}
END_TEST

START_TEST(test_f64_refused)
{
	struct config c;
	struct train_summary s;
	struct train_data d;
	struct vb_error err = {0};
	small_config(&c, tu_tmpdir("f64"), "f64");
	bu_set(&c, "train.precision=f64");
	ck_assert(config_validate(&c, &err) == VB_OK);
	ck_assert(train_data_load(&c, &d, &err) == VB_OK);
	ck_assert_int_eq(train_run(&c, &d, &s, NULL, &err), VB_ERR_CONFIG);
	ck_assert_msg(strstr(err.msg, "vaebench-f64") &&
			      !strchr(err.msg, '\n'),
		      "%s", err.msg);
	train_data_free(&d);
}
END_TEST

TU_MAIN_CASES("precision",
	TU_CASE("half", 0, test_f16_hand_values, test_bf16_hand_values,
		test_round_arrays),
	TU_CASE("graph", 0, test_graph_rounds_values, test_graph_rounds_grads,
		test_graph_backward_scaled, test_anomaly_sees_rounded),
	TU_CASE("train", 120, test_f16_overflow_origin,
		test_dynamic_scale_backs_off, test_dynamic_scale_grows,
		test_unchanged_bytes, test_accumulate_matches_big_batch,
		test_accumulate_last_group, test_rhvae_accumulate,
		test_resume_scaled_accumulated, test_f64_refused))
