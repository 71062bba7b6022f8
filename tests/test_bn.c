/* test_bn: op_batch_norm (training mode with batch statistics, evaluation
 * mode with running statistics, the momentum update, track_running_stats
 * off) and op_sqrt, in double: first- and second-order gradient checks
 * through the harness, values against naive loops, and the two NaN
 * sources the batch-norm study relies on. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "graph.h"
#include "ops.h"
#include "testutil.h"

struct bn_ctx {
	bool batch_stats;
	bool square_out; /* square the output: curvature for H v in beta */
	double eps;
	vb_real rm[4], rv[4];
};

static struct graph_node *build_bn(struct graph *g, struct graph_node **in,
				   void *ctx)
{
	struct bn_ctx *c = ctx;
	struct op_bn_settings s = {c->batch_stats, false, 0.1, c->eps};
	struct op_bn_running run = {c->rm, c->rv, NULL};
	struct graph_node *y = op_batch_norm(g, "bn", in[0], in[1], in[2], &s,
					     c->batch_stats ? NULL : &run);
	return c->square_out ? op_square(g, "sq", y) : y;
}

/* gradcheck of both modes, 1-D (4, 3) and 2-D (2, 3, 2, 3), first and
 * second order, with and without a squared output. */
START_TEST(test_gradcheck_bn)
{
	double x[36], gam[3], bet[3];
	uint64_t s = 700 + (uint64_t)_i;
	struct bn_ctx c;
	struct gradcheck_case k;
	bool two_d = _i & 1;
	memset(&c, 0, sizeof c);
	c.batch_stats = !(_i & 2);
	c.square_out = _i & 4;
	c.eps = 1e-3;
	for (int i = 0; i < 3; i++) {
		c.rm[i] = (vb_real)(0.1 * i - 0.1);
		c.rv[i] = (vb_real)(0.5 + 0.3 * i);
	}
	gradcheck_fill(x, 36, -2, 2, &s);
	gradcheck_fill_signed(gam, 3, 0.5, 1.5, &s);
	gradcheck_fill(bet, 3, -1, 1, &s);
	k = gc_case(c.batch_stats ? "batch_norm" : "batch_norm(eval)", build_bn,
		    &c, 710 + (uint64_t)_i);
	k.n_leaves = 3;
	k.leaf[0] = two_d ? gc_leaf("x", GRADCHECK_INPUT, x, 4, GC_SHAPE(2, 3, 2, 3))
			  : gc_leaf("x", GRADCHECK_INPUT, x, 2, GC_SHAPE(4, 3));
	k.leaf[1] = gc_leaf("weight", GRADCHECK_PARAM, gam, 1, GC_SHAPE(3));
	k.leaf[2] = gc_leaf("bias", GRADCHECK_PARAM, bet, 1, GC_SHAPE(3));
	ck_assert_int_eq(gradcheck_first(&k), 0);
	ck_assert_int_eq(gradcheck_second(&k), 0);
}
END_TEST

static struct graph_node *build_sqrt(struct graph *g, struct graph_node **in,
				     void *ctx)
{
	(void)ctx;
	return op_sqrt(g, "sqrt", in[0]);
}

START_TEST(test_gradcheck_sqrt)
{
	double x[6];
	uint64_t s = 800;
	struct gradcheck_case k;
	gradcheck_fill(x, 6, 0.2, 3, &s); /* off the kink at 0 */
	k = gc_case("sqrt", build_sqrt, NULL, 801);
	k.n_leaves = 1;
	k.leaf[0] = gc_leaf("x", GRADCHECK_INPUT, x, 2, GC_SHAPE(2, 3));
	ck_assert_int_eq(gradcheck_first(&k), 0);
	ck_assert_int_eq(gradcheck_second(&k), 0);
}
END_TEST

/* d sqrt(x) at x = 0 is infinite, as PyTorch's (the epsilon study). */
START_TEST(test_sqrt_zero_backward)
{
	struct graph *g;
	vb_real xv[2] = {0, 4};
	struct graph_node *x, *y;
	ck_assert_int_eq(graph_create(1 << 16, &g, NULL), VB_OK);
	x = graph_input(g, "x", tensor_view1(xv, 2), true);
	y = op_sum(g, "s", op_sqrt(g, "sqrt", x));
	ck_assert_double_eq(y->value.data[0], 2);
	ck_assert_int_eq(graph_backward(g, y, NULL), VB_OK);
	ck_assert(isinf(x->grad.data[0]) && x->grad.data[0] > 0);
	ck_assert_double_eq_tol(x->grad.data[1], 0.25, 1e-15);
	graph_free(g);
}
END_TEST

/* Channel c of y (B, C, P) is (x - mean) / sqrt(var + 1e-5) gamma + beta
 * (eps 1e-5 as the settings below): the same formula in another order,
 * 1e-13. */
static void check_channel(const struct graph_node *y, const vb_real *xv,
			  int c, double mean, double var, double gamma,
			  double beta, int B, int C, int P)
{
	for (int b = 0; b < B; b++)
		for (int i = 0; i < P; i++) {
			size_t o = (size_t)((b * C + c) * P + i);
			double e = (xv[o] - mean) / sqrt(var + 1e-5) * gamma +
				   beta;
			ck_assert_double_eq_tol(y->value.data[o], e, 1e-13);
		}
}

/* Values: training output against a naive loop; running update with
 * momentum (unbiased variance), num_batches_tracked; evaluation mode with
 * the updated buffers; track_running_stats off leaves nothing to update
 * and evaluates with batch statistics. */
START_TEST(test_values_and_running_update)
{
	enum { B = 3, C = 2, P = 4 };
	vb_real xv[B * C * P], gv[C] = {1.5, -0.5}, bv[C] = {0.25, 2};
	vb_real rm[C] = {0, 0}, rv[C] = {1, 1};
	int64_t nt = 0;
	struct op_bn_running run = {rm, rv, &nt};
	struct op_bn_settings s = {true, true, 0.1, 1e-5};
	struct graph *g;
	struct graph_node *x, *ga, *be, *y, *ye;
	double mean[C], var[C];
	uint64_t st = 900;
	double tmp[B * C * P];
	gradcheck_fill(tmp, B * C * P, -3, 3, &st);
	for (size_t i = 0; i < B * C * P; i++)
		xv[i] = (vb_real)tmp[i];
	ck_assert_int_eq(graph_create(1 << 16, &g, NULL), VB_OK);
	x = graph_input(g, "x", tensor_view(xv, 4, GC_SHAPE(B, C, 2, 2)), false);
	ga = graph_input(g, "w", tensor_view1(gv, C), false);
	be = graph_input(g, "b", tensor_view1(bv, C), false);
	y = op_batch_norm(g, "bn", x, ga, be, &s, &run);
	ck_assert_ptr_nonnull(y);
	ck_assert_str_eq(y->op->name, "batch_norm");
	for (int c = 0; c < C; c++) {
		double sum = 0, ss = 0;
		for (int b = 0; b < B; b++)
			for (int i = 0; i < P; i++)
				sum += xv[(b * C + c) * P + i];
		mean[c] = sum / (B * P);
		for (int b = 0; b < B; b++)
			for (int i = 0; i < P; i++) {
				double d = xv[(b * C + c) * P + i] - mean[c];
				ss += d * d;
			}
		var[c] = ss / (B * P);
		check_channel(y, xv, c, mean[c], var[c], gv[c], bv[c], B, C, P);
		ck_assert_double_eq_tol(rm[c], 0.1 * mean[c], 1e-15);
		ck_assert_double_eq_tol(
			rv[c], 0.9 + 0.1 * var[c] * (B * P) / (B * P - 1),
			1e-15);
	}
	ck_assert_int_eq(nt, 1);

	/* evaluation with the buffers just updated */
	s.batch_stats = false;
	ye = op_batch_norm(g, "bn_eval", x, ga, be, &s, &run);
	ck_assert_ptr_nonnull(ye);
	for (int c = 0; c < C; c++)
		check_channel(ye, xv, c, rm[c], rv[c], gv[c], bv[c], B, C, P);
	ck_assert_int_eq(nt, 1); /* evaluation never counts */

	/* track_running_stats off: batch statistics in either mode, no
	 * buffers; running-statistics mode without buffers is refused */
	s.batch_stats = true;
	ye = op_batch_norm(g, "bn_off", x, ga, be, &s, NULL);
	for (size_t i = 0; i < B * C * P; i++)
		ck_assert_double_eq(ye->value.data[i], y->value.data[i]);
	s.batch_stats = false;
	ck_assert_ptr_null(op_batch_norm(g, "bn_bad", x, ga, be, &s, NULL));
	ck_assert_int_eq(graph_status(g), VB_ERR_SHAPE);
	graph_free(g);
}
END_TEST

/* The NaN sources of the batch-norm study: a batch of one sample per
 * channel gives a finite training output (beta) but a NaN running
 * variance (0 / 0 unbiased), so evaluation goes NaN; eps 0 with a
 * constant channel gives NaN in training itself. */
START_TEST(test_nan_sources)
{
	vb_real xv[3] = {0.5, -1, 2}, gv[3] = {1, 1, 1}, bv[3] = {0.1, 0.2, 0.3};
	vb_real rm[3] = {0, 0, 0}, rv[3] = {1, 1, 1};
	int64_t nt = 0;
	struct op_bn_running run = {rm, rv, &nt};
	struct op_bn_settings s = {true, true, 0.1, 1e-5};
	struct graph *g;
	struct graph_node *x, *ga, *be, *y;
	ck_assert_int_eq(graph_create(1 << 16, &g, NULL), VB_OK);
	x = graph_input(g, "x", tensor_view2(xv, 1, 3), false);
	ga = graph_input(g, "w", tensor_view1(gv, 3), false);
	be = graph_input(g, "b", tensor_view1(bv, 3), false);
	y = op_batch_norm(g, "bn", x, ga, be, &s, &run);
	for (int c = 0; c < 3; c++) {
		ck_assert_double_eq(y->value.data[c], bv[c]);
		ck_assert(isnan(rv[c]));
		ck_assert_double_eq_tol(rm[c], 0.1 * xv[c], 1e-7);
	}
	s.batch_stats = false;
	y = op_batch_norm(g, "bn_eval", x, ga, be, &s, &run);
	for (int c = 0; c < 3; c++)
		ck_assert(isnan(y->value.data[c]));
	/* eps 0, one sample: var 0, 0 * inf */
	s.batch_stats = true;
	s.eps = 0;
	y = op_batch_norm(g, "bn_eps0", x, ga, be, &s, NULL);
	for (int c = 0; c < 3; c++)
		ck_assert(isnan(y->value.data[c]));
	graph_free(g);
}
END_TEST

TU_MAIN_CASES("bn",
	TU_CASE_LOOP("gradcheck", 120, test_gradcheck_bn, 8,
		test_gradcheck_sqrt, test_sqrt_zero_backward),
	TU_CASE("values", 0, test_values_and_running_update, test_nan_sources))
