/* test_ops_composite (double build): closed-form values of the ops
 * (BCE clamps, BCE from logits, softplus at large inputs, relu and NaN)
 * and a small MLP and a fan-out whose gradient and Hessian-vector
 * products the RHVAE will rely on, through the gradcheck harness. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "graph.h"
#include "graph_grad.h"
#include "ops.h"
#include "testutil.h"

#ifndef VB_DOUBLE
#error "test_ops_composite checks gradients in the double build (vb_core_f64)"
#endif

/* PyTorch's binary_cross_entropy constants (see op_bce). */
#define BCE_LOG_CLAMP (-100.0)
#define BCE_DENOM_EPS 1e-12

/* A tape holding one (1, n) input from values. */
struct tiny {
	struct graph *g;
	vb_real a[8], b[8];
	struct graph_node *x, *t;
};

static void tiny_init(struct tiny *k, const double *a, const double *b,
		      size_t n, bool x_grad)
{
	ck_assert_uint_le(n, 8);
	ck_assert_int_eq(graph_create(1 << 16, &k->g, NULL), VB_OK);
	for (size_t i = 0; i < n; i++) {
		k->a[i] = (vb_real)a[i];
		k->b[i] = b ? (vb_real)b[i] : 0;
	}
	k->x = graph_input(k->g, "x", tensor_view2(k->a, 1, n), x_grad);
	k->t = graph_input(k->g, "t", tensor_view2(k->b, 1, n), false);
	ck_assert_ptr_nonnull(k->x);
	ck_assert_ptr_nonnull(k->t);
}

START_TEST(test_bce_clamp_values)
{
	/* Pixels at y = 0 and y = 1 exactly: the log clamp gives 100 per
	 * wrong pixel and 0 per right one (PyTorch), never inf or NaN. */
	double y[4] = {0, 1, 0, 1}, t[4] = {1, 0, 0, 1};
	struct tiny k;
	tiny_init(&k, y, t, 4, true);
	struct graph_node *b = op_bce(k.g, "bce", k.x, k.t, BCE_LOG_CLAMP,
				      BCE_DENOM_EPS);
	ck_assert_ptr_nonnull(b);
	ck_assert(isfinite(b->value.data[0]));
	/* exact: 1 * 100 + 1 * 100 + 0 + 0 in double */
	ck_assert_double_eq(b->value.data[0], 200.0);
	graph_free(k.g);

	/* per pixel */
	for (int i = 0; i < 2; i++) {
		tiny_init(&k, &y[i], &t[i], 1, false);
		b = op_bce(k.g, "bce", k.x, k.t, BCE_LOG_CLAMP, BCE_DENOM_EPS);
		ck_assert_ptr_nonnull(b);
		ck_assert_double_eq(b->value.data[0], 100.0);
		graph_free(k.g);
	}
}
END_TEST

START_TEST(test_bce_denominator_clamp)
{
	/* At y = 0 the gradient's denominator y (1 - y) = 0 is clamped to
	 * denom_eps: d/dy = (y - t) / 1e-12, finite. Same at y = 1. */
	double y[3] = {0, 1, 0.25}, t[3] = {0.3, 0.2, 0.75};
	struct tiny k;
	struct vb_error err = {0};
	tiny_init(&k, y, t, 3, true);
	struct graph_node *l = op_sum(k.g, "l", op_bce(k.g, "bce", k.x, k.t,
						       BCE_LOG_CLAMP,
						       BCE_DENOM_EPS));
	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(graph_backward(k.g, l, &err), VB_OK);
	ck_assert_ptr_nonnull(k.x->grad.data);
	for (int i = 0; i < 3; i++) {
		double den = y[i] * (1 - y[i]);
		double want = (y[i] - t[i]) / (den > BCE_DENOM_EPS
						       ? den
						       : BCE_DENOM_EPS);
		ck_assert(isfinite(k.x->grad.data[i]));
		/* one division and a product in double: a few ulps */
		ck_assert_msg(gradcheck_close(k.x->grad.data[i], want, 1e-14,
					      0),
			      "bce grad %d: %.17g, expected %.17g", i,
			      k.x->grad.data[i], want);
	}
	ck_assert_double_eq_tol(k.x->grad.data[0], -0.3e12, 1e-2);
	ck_assert_double_eq_tol(k.x->grad.data[1], 0.8e12, 1e-2);
	graph_free(k.g);
}
END_TEST

START_TEST(test_bce_logits_matches_bce)
{
	/* bce_logits(l, t) = bce(sigmoid(l), t) for moderate l, where
	 * sigmoid's rounding (relative 1e-16, amplified by at most
	 * 1 / (1 - sigmoid(6)) ~ 400 in log1p(-y)) stays below 1e-12. */
	double l[6] = {-6, -2.5, -0.3, 0.4, 2, 6};
	double t[6] = {0, 0.3, 1, 0.5, 0.9, 1};
	struct tiny k;
	tiny_init(&k, l, t, 6, false);
	struct graph_node *a = op_bce_logits(k.g, "a", k.x, k.t);
	struct graph_node *b = op_bce(k.g, "b", op_sigmoid(k.g, "s", k.x),
				      k.t, BCE_LOG_CLAMP, BCE_DENOM_EPS);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_msg(gradcheck_close(a->value.data[0], b->value.data[0],
				      1e-12, 0),
		      "bce_logits %.17g, bce(sigmoid) %.17g",
		      a->value.data[0], b->value.data[0]);
	graph_free(k.g);

	/* |l| = 1000: finite value and gradient (sigmoid(l) - t) */
	double lb[2] = {1000, -1000}, tb[2] = {0.3, 0.3};
	struct vb_error err = {0};
	tiny_init(&k, lb, tb, 2, true);
	a = op_bce_logits(k.g, "a", k.x, k.t);
	ck_assert_ptr_nonnull(a);
	/* exact: (1000 - 300 + 0) + (0 + 300 + 0) */
	ck_assert_double_eq_tol(a->value.data[0], 1000.0, 1e-10);
	ck_assert_int_eq(graph_backward(k.g, op_sum(k.g, "l", a), &err),
			 VB_OK);
	ck_assert_double_eq_tol(k.x->grad.data[0], 0.7, 1e-15);
	ck_assert_double_eq_tol(k.x->grad.data[1], -0.3, 1e-15);
	graph_free(k.g);
}
END_TEST

START_TEST(test_softplus_large)
{
	/* Above the threshold softplus is x itself; below it log1p(exp(x)),
	 * which equals x + log1p(exp(-x)) (closed form for x > 0). */
	double x[6] = {15, 20.5, 25, 1000, -1000, -30};
	struct tiny k;
	tiny_init(&k, x, NULL, 6, false);
	struct graph_node *y = op_softplus(k.g, "y", k.x);
	ck_assert_ptr_nonnull(y);
	for (int i = 0; i < 6; i++)
		ck_assert(isfinite(y->value.data[i]));
	ck_assert_msg(gradcheck_close(y->value.data[0],
				      15 + log1p(exp(-15.0)), 1e-15, 0),
		      "softplus(15) = %.17g", y->value.data[0]);
	ck_assert_double_eq(y->value.data[1], 20.5);
	ck_assert_double_eq(y->value.data[2], 25);
	ck_assert_double_eq(y->value.data[3], 1000);
	ck_assert_double_eq(y->value.data[4], 0);
	/* log1p(e) = e - e^2 / 2 + O(e^3) for e = exp(-30) = 9.4e-14: the
	 * series to second order is exact in double, and log1p keeps the
	 * full relative precision that log(1 + e) would lose */
	double e30 = exp(-30.0);
	ck_assert_msg(gradcheck_close(y->value.data[5], e30 - e30 * e30 / 2,
				      1e-15, 0),
		      "softplus(-30) = %.17g", y->value.data[5]);
	graph_free(k.g);
}
END_TEST

START_TEST(test_relu_nan)
{
	double x[4] = {NAN, -1, 2, 0};
	struct tiny k;
	tiny_init(&k, x, NULL, 4, false);
	struct graph_node *y = op_relu(k.g, "y", k.x);
	ck_assert_ptr_nonnull(y);
	ck_assert(isnan(y->value.data[0]));
	ck_assert_double_eq(y->value.data[1], 0);
	ck_assert_double_eq(y->value.data[2], 2);
	ck_assert_double_eq(y->value.data[3], 0);
	graph_free(k.g);
}
END_TEST

#define MLP_B 3
#define MLP_D 4
#define MLP_H 5

struct mlp {
	double target[MLP_B * MLP_D];
	vb_real tbuf[MLP_B * MLP_D];
};

/* leaves: x (B, D), w1 (H, D), b1 (H), w2 (D, H), b2 (D) */
static struct graph_node *build_mlp(struct graph *g, struct graph_node **in,
				    void *ctx)
{
	struct mlp *m = ctx;
	struct graph_node *h, *y, *t;
	for (size_t i = 0; i < MLP_B * MLP_D; i++)
		m->tbuf[i] = (vb_real)m->target[i];
	t = graph_const(g, "target",
			tensor_view2(m->tbuf, MLP_B, MLP_D));
	graph_push_scope(g, "enc");
	h = op_relu(g, "act", op_linear(g, "fc1", in[0], in[1], in[2]));
	graph_pop_scope(g);
	graph_push_scope(g, "dec");
	y = op_sigmoid(g, "out", op_linear(g, "fc2", h, in[3], in[4]));
	graph_pop_scope(g);
	return op_mse(g, "rec", y, t);
}

struct mlp_data {
	double x[MLP_B * MLP_D], w1[MLP_H * MLP_D], b1[MLP_H];
	double w2[MLP_D * MLP_H], b2[MLP_D];
	struct mlp m;
};

static void mlp_data_init(struct mlp_data *d)
{
	uint64_t s = 77;
	double min_pre = INFINITY;
	gradcheck_fill(d->x, MLP_B * MLP_D, -1, 1, &s);
	gradcheck_fill(d->w1, MLP_H * MLP_D, -1, 1, &s);
	gradcheck_fill(d->b1, MLP_H, -0.5, 0.5, &s);
	gradcheck_fill(d->w2, MLP_D * MLP_H, -1, 1, &s);
	gradcheck_fill(d->b2, MLP_D, -0.5, 0.5, &s);
	gradcheck_fill(d->m.target, MLP_B * MLP_D, 0, 1, &s);
	/* Off the relu kink: every pre-activation is far from 0 compared
	 * with what a step of 1e-5 in any input can move it (|w| <= 1, so
	 * D steps move it at most 4e-5 even along a direction). */
	for (int b = 0; b < MLP_B; b++)
		for (int j = 0; j < MLP_H; j++) {
			double p = d->b1[j];
			for (int i = 0; i < MLP_D; i++)
				p += d->x[b * MLP_D + i] * d->w1[j * MLP_D + i];
			min_pre = fabs(p) < min_pre ? fabs(p) : min_pre;
		}
	ck_assert_msg(min_pre > 1e-2, "mlp fixture too close to the relu "
		      "kink: min |pre-activation| %g", min_pre);
}

static struct gradcheck_case mlp_case(struct mlp_data *d, const char *name,
				      enum gradcheck_kind kx,
				      enum gradcheck_kind kw,
				      enum gradcheck_kind kw1)
{
	struct gradcheck_case c;
	c = gc_case(name, build_mlp, &d->m, 900);
	c.n_leaves = 5;
	c.leaf[0] = gc_leaf("x", kx, d->x, 2, GC_SHAPE(MLP_B, MLP_D));
	c.leaf[1] = gc_leaf("enc.fc1.w", kw1, d->w1, 2, GC_SHAPE(MLP_H, MLP_D));
	c.leaf[2] = gc_leaf("enc.fc1.b", kw, d->b1, 1, GC_SHAPE(MLP_H));
	c.leaf[3] = gc_leaf("dec.fc2.w", kw, d->w2, 2, GC_SHAPE(MLP_D, MLP_H));
	c.leaf[4] = gc_leaf("dec.fc2.b", kw, d->b2, 1, GC_SHAPE(MLP_D));
	return c;
}

START_TEST(test_mlp_first_order)
{
	struct mlp_data d;
	mlp_data_init(&d);
	struct gradcheck_case c = mlp_case(&d, "mlp", GRADCHECK_INPUT,
					   GRADCHECK_PARAM, GRADCHECK_PARAM);
	ck_assert_int_eq(gradcheck_first(&c), 0);
}
END_TEST

START_TEST(test_mlp_second_order)
{
	/* H v with respect to the input alone, to one weight alone (a
	 * parameter), jointly over everything (cross terms input x
	 * weights); the same data throughout */
	static const struct {
		const char *name;
		enum gradcheck_kind kx, kw, kw1;
	} cases[] = {
		{"mlp hvp(x)", GRADCHECK_INPUT, GRADCHECK_CONST, GRADCHECK_CONST},
		{"mlp hvp(w1)", GRADCHECK_CONST, GRADCHECK_CONST, GRADCHECK_PARAM},
		{"mlp hvp(all)", GRADCHECK_INPUT, GRADCHECK_PARAM,
		 GRADCHECK_PARAM},
	};
	struct mlp_data d;
	mlp_data_init(&d);
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct gradcheck_case c = mlp_case(&d, cases[i].name,
						   cases[i].kx, cases[i].kw,
						   cases[i].kw1);
		ck_assert_int_eq(gradcheck_second(&c), 0);
	}
}
END_TEST

/* Fan-out: h = sigmoid(a) feeds three consumers, out = h exp(h) + h / b,
 * so gradients (and their vjp nodes) accumulate at h. */
static struct graph_node *build_fanout(struct graph *g, struct graph_node **in,
				       void *ctx)
{
	struct graph_node *h = op_sigmoid(g, "h", in[0]);
	(void)ctx;
	return op_add(g, "out", op_mul(g, "hexp", h, op_exp(g, "eh", h)),
		      op_div(g, "hb", h, in[1]));
}

START_TEST(test_fanout)
{
	double a[12], b[12];
	uint64_t s = 81;
	struct gradcheck_case c;
	gradcheck_fill(a, 12, -2, 2, &s);
	gradcheck_fill_signed(b, 12, 0.5, 2, &s);
	c = gc_case("fanout", build_fanout, NULL, 950);
	c.n_leaves = 2;
	c.leaf[0] = gc_leaf("a", GRADCHECK_INPUT, a, 2, GC_SHAPE(3, 4));
	c.leaf[1] = gc_leaf("b", GRADCHECK_PARAM, b, 2, GC_SHAPE(3, 4));
	ck_assert_int_eq(gradcheck_first(&c), 0);
	ck_assert_int_eq(gradcheck_second(&c), 0);
}
END_TEST

TU_MAIN_CASES("ops_composite",
	TU_CASE("closed_form", 0, test_bce_clamp_values,
		test_bce_denominator_clamp, test_bce_logits_matches_bce,
		test_softplus_large, test_relu_nan),
	TU_CASE("composite", 60, test_mlp_first_order, test_mlp_second_order,
		test_fanout))
