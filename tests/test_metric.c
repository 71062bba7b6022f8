/* test_metric (double build): the RHVAE kernel metric A(z) of
 * models/metric.h (moved with it from test_linalg, asserting the same):
 * first and second order through the gradcheck harness, the metric part of
 * the Hamiltonian logdet(A) + 0.5 rho^T A rho up to third order through a
 * gradient taken with create_graph, and A against a direct double loop. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "graph.h"
#include "linalg.h"
#include "metric.h"
#include "ops.h"
#include "testutil.h"

#ifndef VB_DOUBLE
#error "test_metric checks gradients in the double build (vb_models_f64)"
#endif

/* Arena of the value tests: small shapes only. */
#define TEST_ARENA ((size_t)1 << 20)

/* ------------------------------------------------------------------ */
/* builder for the gradient checks */

enum lx_kind {
	LX_KERNEL_METRIC,
	LX_METRIC_H  /* logdet(A(z)) + 0.5 rho^T A(z) rho, M = Lm Lm^T */
};

struct lx {
	enum lx_kind kind;
	enum linalg_logdet_mode mode;
	double lambda;  /* kernel metric */
	double temperature;
	struct gc_order order; /* grad_of, square_out */
};

static struct graph_node *metric_h(struct graph *g, struct graph_node **in,
				   const struct lx *o)
{
	/* in: z (B, d), c (N, d), Lm (N, d, d), rho (B, d) */
	size_t B = in[0]->value.shape[0], d = in[0]->value.shape[1];
	struct graph_node *m = linalg_bmm(g, "M", in[2], in[2], false, true);
	struct graph_node *a = metric_kernel(g, "A", in[0], in[1], m,
					     o->temperature, o->lambda);
	struct graph_node *arho = op_reshape(
		g, "Arho",
		linalg_bmm(g, "Arho", a,
			   op_reshape(g, "rho", in[3], 3, GC_SHAPE(B, d, 1)),
			   false, false),
		2, GC_SHAPE(B, d));
	struct graph_node *quad = op_sum_rows(g, "quad",
					      op_mul(g, "quad", arho, in[3]));
	return op_add(g, "H", linalg_logdet(g, "logdet", a, o->mode),
		      op_scale(g, "half", quad, 0.5));
}

static struct graph_node *build_lx(struct graph *g, struct graph_node **in,
				   void *ctx)
{
	const struct lx *o = ctx;
	return gc_order_apply(g,
			      o->kind == LX_METRIC_H
				      ? metric_h(g, in, o)
				      : metric_kernel(g, "y", in[0], in[1], in[2],
						      o->temperature, o->lambda),
			      in, &o->order);
}

/* ------------------------------------------------------------------ */
/* the kernel metric */

START_TEST(test_kernel_metric_grad)
{
	/* B = 3, N = 4, d = 2, T = 1.5, lambda 1e-3; points within a few T
	 * so every weight matters */
	double z[6], cc[8], m[16];
	uint64_t s = 7;
	struct lx o = {.kind = LX_KERNEL_METRIC, .temperature = 1.5,
		       .lambda = 1e-3};
	struct gradcheck_case c = gc_case("kernel_metric", build_lx, &o, 70);
	gradcheck_fill(z, 6, -1.5, 1.5, &s);
	gradcheck_fill(cc, 8, -1.5, 1.5, &s);
	gradcheck_fill(m, 16, -1, 1, &s);
	c.n_leaves = 3;
	c.leaf[0] = gc_leaf("z", GRADCHECK_INPUT, z, 2, GC_SHAPE(3, 2));
	c.leaf[1] = gc_leaf("c", GRADCHECK_INPUT, cc, 2, GC_SHAPE(4, 2));
	c.leaf[2] = gc_leaf("M", GRADCHECK_PARAM, m, 3, GC_SHAPE(4, 2, 2));
	/* first order on both paths, H v plain and with the output squared */
	gc_assert_all(&c, true, true, &o.order.square_out);
}
END_TEST

START_TEST(test_metric_hamiltonian_grad)
{
	/* logdet(A(z)) + 0.5 rho^T A(z) rho with M_j = Lm_j Lm_j^T: the
	 * metric part of the RHVAE's H (rhvae.md 4.3); first and second
	 * order, then dH/dz taken with create_graph (the g3 of step 6.4)
	 * checked as an op: its derivatives are H's second and third. */
	double z[6], cc[8], lm[16], rho[6];
	uint64_t s = 8;
	for (int mode = 0; mode < 2; mode++) {
		struct lx o = {.kind = LX_METRIC_H, .temperature = 1.5,
			       .lambda = 1e-2,
			       .mode = mode ? LINALG_LOGDET_CHOLESKY
					    : LINALG_LOGDET_LU};
		struct gradcheck_case c;
		gradcheck_fill(z, 6, -1.5, 1.5, &s);
		gradcheck_fill(cc, 8, -1.5, 1.5, &s);
		gradcheck_fill(lm, 16, -1, 1, &s);
		gradcheck_fill(rho, 6, -1, 1, &s);
		c = gc_case(mode ? "metric H (cholesky)" : "metric H (lu)",
			    build_lx, &o, 80 + (uint64_t)mode);
		c.n_leaves = 4;
		c.leaf[0] = gc_leaf("z", GRADCHECK_INPUT, z, 2, GC_SHAPE(3, 2));
		c.leaf[1] = gc_leaf("c", GRADCHECK_INPUT, cc, 2, GC_SHAPE(4, 2));
		c.leaf[2] = gc_leaf("Lm", GRADCHECK_PARAM, lm, 3, GC_SHAPE(4, 2, 2));
		c.leaf[3] = gc_leaf("rho", GRADCHECK_INPUT, rho, 2, GC_SHAPE(3, 2));
		ck_assert_int_eq(gradcheck_first(&c), 0);
		ck_assert_int_eq(gradcheck_second(&c), 0);
		gc_assert_grad_of(&c, 0, &o.order.grad_of);
	}
}
END_TEST

START_TEST(test_kernel_metric_values)
{
	/* against a direct double loop: A_b = sum_j exp(-|z_b - c_j|^2 / T^2)
	 * M_j + lambda I */
	enum { B = 5, N = 7, D = 4 };
	static vb_real z[B * D], c[N * D], m[N * D * D];
	const double T = 1.5, lambda = 1e-3;
	uint64_t s = 9;
	struct graph *g;
	ck_assert_int_eq(graph_create(TEST_ARENA, &g, NULL), VB_OK);
	gc_fill_real(z, B * D, -2, 2, &s);
	gc_fill_real(c, N * D, -2, 2, &s);
	gc_fill_real(m, N * D * D, -3, 3, &s);
	struct graph_node *nz = graph_input(g, "z", tensor_view2(z, B, D), false);
	struct graph_node *nc = graph_input(g, "c", tensor_view2(c, N, D), false);
	struct graph_node *nm = graph_input(g, "m", tensor_view(m, 3, GC_SHAPE(N, D, D)), false);
	struct graph_node *a = metric_kernel(g, "A", nz, nc, nm, T, lambda);
	ck_assert_ptr_nonnull(a);
	ck_assert_str_eq(a->name, "A");
	ck_assert_int_eq((int)a->value.ndim, 3);
	for (int b = 0; b < B; b++)
		for (int i = 0; i < D; i++)
			for (int k = 0; k < D; k++) {
				double acc = i == k ? lambda : 0, mag = fabs(acc);
				for (int j = 0; j < N; j++) {
					double d2 = 0;
					for (int q = 0; q < D; q++) {
						double t = (double)z[b * D + q] -
							   c[j * D + q];
						d2 += t * t;
					}
					double w = exp(-d2 / (T * T));
					acc += w * m[(j * D + i) * D + k];
					mag += fabs(w * m[(j * D + i) * D + k]);
				}
				double got = a->value.data[(b * D + i) * D + k];
				/* N = 7 terms, each exp good to ~2 ulp: 32 eps
				 * of the sum of magnitudes is ample */
				ck_assert_msg(fabs(got - acc) <= 32 * 2.3e-16 * mag,
					      "A[%d][%d][%d] = %.17g, loop %.17g",
					      b, i, k, got, acc);
			}
	graph_free(g);
}
END_TEST

TU_MAIN_CASES("metric",
	TU_CASE("gradcheck", 240, test_kernel_metric_grad,
		test_metric_hamiltonian_grad),
	TU_CASE("values", 0, test_kernel_metric_values))
