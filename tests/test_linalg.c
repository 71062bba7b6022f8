/* test_linalg (double build): every op of linalg.h through the gradcheck
 * harness (fused backward and vjp against central differences, and
 * Hessian-vector products), third order through gradients taken with
 * create_graph, and reference values: tril order, bmm against a loop and
 * cblas, sqdist without cancellation, inverse times A, known determinants
 * and Cholesky factors, and the NaN / -inf / failure records of indefinite
 * and singular matrices. The kernel metric built on these ops is
 * test_metric's. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "graph.h"
#include "linalg.h"
#include "ops.h"
#include "testutil.h"

#ifndef VB_DOUBLE
#error "test_linalg checks gradients in the double build (vb_core_f64)"
#endif

/* Arena of the value tests: small shapes only. */
#define TEST_ARENA ((size_t)1 << 20)

/* ------------------------------------------------------------------ */
/* generic builder for the gradient checks */

enum lx_kind {
	LX_TRIL,
	LX_DIAG,
	LX_TRIL_LOW,
	LX_TRACE,
	LX_TRANSPOSE,
	LX_ADD_IDENTITY,
	LX_BMM,
	LX_SQDIST,
	LX_INVERSE,
	LX_LOGDET,
	LX_LOGDET_SPD, /* logdet(X X^T + spd_shift I) */
	LX_CHOLESKY_SPD, /* cholesky(X X^T + spd_shift I) */
	LX_SOLVE_TRIL
};

struct lx {
	enum lx_kind kind;
	bool ta, tb, trans;
	bool self_in;   /* bmm(a, a, ...) */
	enum linalg_logdet_mode mode;
	double lambda;  /* add_identity */
	double spd_shift;
	struct gc_order order; /* grad_of, square_out */
};

static struct graph_node *spd_of(struct graph *g, struct graph_node *x,
				 double shift)
{
	return linalg_add_identity(g, "spd",
				   linalg_bmm(g, "xxt", x, x, false, true),
				   shift);
}

static struct graph_node *build_lx(struct graph *g, struct graph_node **in,
				   void *ctx)
{
	const struct lx *o = ctx;
	struct graph_node *y = NULL;
	switch (o->kind) {
	case LX_TRIL:
		y = linalg_tril(g, "y", in[0], in[1]);
		break;
	case LX_DIAG:
		y = linalg_diag(g, "y", in[0]);
		break;
	case LX_TRIL_LOW:
		y = linalg_tril_low(g, "y", in[0]);
		break;
	case LX_TRACE:
		y = linalg_trace(g, "y", in[0]);
		break;
	case LX_TRANSPOSE:
		y = linalg_transpose(g, "y", in[0]);
		break;
	case LX_ADD_IDENTITY:
		y = linalg_add_identity(g, "y", in[0], o->lambda);
		break;
	case LX_BMM:
		y = linalg_bmm(g, "y", in[0], o->self_in ? in[0] : in[1],
			       o->ta, o->tb);
		break;
	case LX_SQDIST:
		y = linalg_sqdist(g, "y", in[0], in[1]);
		break;
	case LX_INVERSE:
		y = linalg_inverse(g, "y", in[0]);
		break;
	case LX_LOGDET:
		y = linalg_logdet(g, "y", in[0], o->mode);
		break;
	case LX_LOGDET_SPD:
		y = linalg_logdet(g, "y", spd_of(g, in[0], o->spd_shift),
				  o->mode);
		break;
	case LX_CHOLESKY_SPD:
		y = linalg_cholesky(g, "y", spd_of(g, in[0], o->spd_shift));
		break;
	case LX_SOLVE_TRIL:
		y = linalg_solve_tril(g, "y", in[0], in[1], o->trans);
		break;
	}
	return gc_order_apply(g, y, in, &o->order);
}

static struct gradcheck_case one_case(const char *name, struct lx *o,
				      uint64_t seed)
{
	return gc_case(name, build_lx, o, seed);
}
/* First order on both paths; second order (H v) plain when the op is
 * curved, and always with the output squared. */
static void check_all(struct gradcheck_case *c, bool curved)
{
	struct lx *o = c->ctx;
	gc_assert_all(c, true, curved, &o->order.square_out);
}

/* Third order: the gradient of sum(out * W) with respect to leaf k,
 * taken with create_graph, checked as an op (its fused backward is the
 * op's second derivative, its vjp the third). */
static void check_grad_of(struct gradcheck_case *c, int k)
{
	struct lx *o = c->ctx;
	gc_assert_grad_of(c, k, &o->order.grad_of);
}

/* Square matrices (B, d, d) well away from singular: uniform entries in
 * [-1, 1] plus shift on the diagonal. */
static void fill_dominant(double *a, size_t B, size_t d, double shift,
			  uint64_t *s)
{
	gradcheck_fill(a, B * d * d, -1, 1, s);
	for (size_t b = 0; b < B; b++)
		for (size_t i = 0; i < d; i++)
			a[(b * d + i) * d + i] += shift;
}

/* ------------------------------------------------------------------ */
/* structure ops */

START_TEST(test_tril_grad)
{
	double dg[8], lo[12];
	uint64_t s = 1;
	struct lx o = {.kind = LX_TRIL};
	struct gradcheck_case c = one_case("tril", &o, 10);
	gradcheck_fill(dg, 8, -2, 2, &s);
	gradcheck_fill(lo, 12, -2, 2, &s);
	c.n_leaves = 2;
	c.leaf[0] = gc_leaf("diag", GRADCHECK_INPUT, dg, 2, GC_SHAPE(2, 4));
	c.leaf[1] = gc_leaf("low", GRADCHECK_INPUT, lo, 2, GC_SHAPE(2, 6));
	check_all(&c, false);
	/* one of the two as a parameter, the other constant */
	c = one_case("tril (low param)", &o, 11);
	c.n_leaves = 2;
	c.leaf[0] = gc_leaf("diag", GRADCHECK_CONST, dg, 2, GC_SHAPE(2, 4));
	c.leaf[1] = gc_leaf("low", GRADCHECK_PARAM, lo, 2, GC_SHAPE(2, 6));
	check_all(&c, false);
}
END_TEST

START_TEST(test_diag_low_trace_transpose_grad)
{
	double a[18], r[24];
	uint64_t s = 2;
	struct lx o = {.kind = LX_DIAG};
	struct gradcheck_case c;
	gradcheck_fill(a, 18, -2, 2, &s);
	gradcheck_fill(r, 24, -2, 2, &s);
	c = one_case("diag", &o, 20);
	c.n_leaves = 1;
	c.leaf[0] = gc_leaf("a", GRADCHECK_INPUT, a, 3, GC_SHAPE(2, 3, 3));
	check_all(&c, false);
	o.kind = LX_TRIL_LOW;
	c.op = "tril_low";
	check_all(&c, false);
	o.kind = LX_TRACE;
	c.op = "trace";
	check_all(&c, false);
	o.kind = LX_ADD_IDENTITY;
	o.lambda = 0.37;
	c.op = "add_identity";
	check_all(&c, false);
	/* non-square: a swapped dimension fails */
	o.kind = LX_TRANSPOSE;
	c = one_case("transpose", &o, 21);
	c.n_leaves = 1;
	c.leaf[0] = gc_leaf("a", GRADCHECK_INPUT, r, 3, GC_SHAPE(2, 3, 4));
	check_all(&c, false);
}
END_TEST

START_TEST(test_tril_values)
{
	struct graph *g;
	vb_real dg[8] = {10, 20, 30, 40, -1, -2, -3, -4};
	vb_real lo[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
	/* torch.tril_indices(4, 4, -1): (1,0) (2,0) (2,1) (3,0) (3,1) (3,2) */
	static const double want[16] = {10, 0, 0, 0, 1, 20, 0, 0,
					2, 3, 30, 0, 4, 5, 6, 40};
	ck_assert_int_eq(graph_create(TEST_ARENA, &g, NULL), VB_OK);
	struct graph_node *d = graph_input(g, "d", tensor_view2(dg, 2, 4), false);
	struct graph_node *l = graph_input(g, "l", tensor_view2(lo, 2, 6), false);
	struct graph_node *L = linalg_tril(g, "L", d, l);
	struct graph_node *d2 = linalg_diag(g, "d2", L);
	struct graph_node *l2 = linalg_tril_low(g, "l2", L);
	struct graph_node *tr = linalg_trace(g, "tr", L);
	struct graph_node *Lt = linalg_transpose(g, "Lt", L);
	struct graph_node *Li = linalg_add_identity(g, "Li", L, 0.5);
	ck_assert_int_eq(graph_status(g), VB_OK);
	for (int i = 0; i < 16; i++) {
		ck_assert_double_eq(L->value.data[i], want[i]);
		ck_assert_double_eq(Lt->value.data[(i % 4) * 4 + i / 4],
				    want[i]);
		ck_assert_double_eq(Li->value.data[i],
				    want[i] + (i % 5 == 0 ? 0.5 : 0));
	}
	ck_assert_double_eq(L->value.data[16 + 3 * 4 + 2], 12);
	for (int i = 0; i < 8; i++)
		ck_assert_double_eq(d2->value.data[i], dg[i]);
	for (int i = 0; i < 12; i++)
		ck_assert_double_eq(l2->value.data[i], lo[i]);
	ck_assert_double_eq(tr->value.data[0], 100);
	ck_assert_double_eq(tr->value.data[1], -10);
	graph_free(g);
}
END_TEST

/* ------------------------------------------------------------------ */
/* bmm */

START_TEST(test_bmm_grad)
{
	/* B = 2, M = 3, K = 4, N = 2: non-square so a swapped dimension
	 * fails */
	double a[24], b[16];
	uint64_t s = 3;
	static const char *names[4] = {"bmm(a, b)", "bmm(a^T, b)",
				       "bmm(a, b^T)", "bmm(a^T, b^T)"};
	gradcheck_fill(a, 24, -1, 1, &s);
	gradcheck_fill(b, 16, -1, 1, &s);
	for (int form = 0; form < 4; form++) {
		struct lx o = {.kind = LX_BMM};
		struct gradcheck_case c;
		o.ta = form & 1;
		o.tb = (form >> 1) & 1;
		c = one_case(names[form], &o, 30 + (uint64_t)form);
		c.n_leaves = 2;
		c.leaf[0] = gc_leaf("a", GRADCHECK_INPUT, a, 3,
				 o.ta ? GC_SHAPE(2, 4, 3) : GC_SHAPE(2, 3, 4));
		c.leaf[1] = gc_leaf("b", GRADCHECK_PARAM, b, 3,
				 o.tb ? GC_SHAPE(2, 2, 4) : GC_SHAPE(2, 4, 2));
		check_all(&c, true);
	}
}
END_TEST

START_TEST(test_bmm_shared_and_matvec_grad)
{
	double a[24], v[8];
	uint64_t s = 4;
	struct lx o = {.kind = LX_BMM, .self_in = true, .tb = true};
	struct gradcheck_case c;
	gradcheck_fill(a, 24, -1, 1, &s);
	gradcheck_fill(v, 8, -1, 1, &s);
	/* L L^T: both gradients land on one leaf */
	c = one_case("bmm(a, a^T)", &o, 40);
	c.n_leaves = 1;
	c.leaf[0] = gc_leaf("a", GRADCHECK_INPUT, a, 3, GC_SHAPE(2, 3, 4));
	check_all(&c, true);
	/* a^T a */
	o.ta = true;
	o.tb = false;
	c.op = "bmm(a^T, a)";
	check_all(&c, true);
	/* mat-vec: (2, 3, 4) x (2, 4, 1) */
	o = (struct lx){.kind = LX_BMM};
	c = one_case("bmm mat-vec", &o, 41);
	c.n_leaves = 2;
	c.leaf[0] = gc_leaf("a", GRADCHECK_INPUT, a, 3, GC_SHAPE(2, 3, 4));
	c.leaf[1] = gc_leaf("v", GRADCHECK_INPUT, v, 3, GC_SHAPE(2, 4, 1));
	check_all(&c, true);
}
END_TEST

START_TEST(test_bmm_values)
{
	/* d = 16 against a double loop and against op_gemm per matrix */
	enum { B = 3, D = 16 };
	static vb_real a[B * D * D], b[B * D * D];
	double x[B * D * D];
	uint64_t s = 5;
	struct graph *g;
	ck_assert_int_eq(graph_create(TEST_ARENA, &g, NULL), VB_OK);
	gradcheck_fill(x, B * D * D, -1, 1, &s);
	for (int i = 0; i < B * D * D; i++)
		a[i] = (vb_real)x[i];
	gradcheck_fill(x, B * D * D, -1, 1, &s);
	for (int i = 0; i < B * D * D; i++)
		b[i] = (vb_real)x[i];
	struct graph_node *na = graph_input(g, "a", tensor_view(a, 3, GC_SHAPE(B, D, D)), false);
	struct graph_node *nb = graph_input(g, "b", tensor_view(b, 3, GC_SHAPE(B, D, D)), false);
	for (int form = 0; form < 4; form++) {
		bool ta = form & 1, tb = (form >> 1) & 1;
		struct graph_node *c = linalg_bmm(g, "c", na, nb, ta, tb);
		vb_real ref[D * D];
		ck_assert_ptr_nonnull(c);
		for (int q = 0; q < B; q++) {
			const vb_real *A = a + q * D * D, *Bm = b + q * D * D;
			op_gemm(ta, tb, D, D, D, 1, A, D, Bm, D, 0, ref, D);
			for (int i = 0; i < D; i++)
				for (int j = 0; j < D; j++) {
					double acc = 0, mag = 0;
					for (int k = 0; k < D; k++) {
						double p = (ta ? A[k * D + i] : A[i * D + k]) *
							   (tb ? Bm[j * D + k] : Bm[k * D + j]);
						acc += p;
						mag += fabs(p);
					}
					double got = c->value.data[(q * D + i) * D + j];
					/* sum of 16 products: error <= 16 eps sum|p| */
					ck_assert_msg(fabs(got - acc) <= 16 * 2.3e-16 * mag,
						      "bmm form %d [%d][%d][%d]: %.17g vs "
						      "%.17g", form, q, i, j, got, acc);
					ck_assert_double_eq(got, ref[i * D + j]);
				}
		}
	}
	/* L L^T is exactly symmetric */
	struct graph_node *m = linalg_bmm(g, "m", na, na, false, true);
	for (int q = 0; q < B; q++)
		for (int i = 0; i < D; i++)
			for (int j = 0; j < D; j++)
				ck_assert_double_eq(m->value.data[(q * D + i) * D + j],
						    m->value.data[(q * D + j) * D + i]);
	graph_free(g);
}
END_TEST

START_TEST(test_shape_errors)
{
	struct graph *g;
	vb_real buf[64] = {0};
	ck_assert_int_eq(graph_create(TEST_ARENA, &g, NULL), VB_OK);
	struct graph_node *a = graph_input(g, "a", tensor_view(buf, 3, GC_SHAPE(2, 3, 4)), false);
	struct graph_node *b = graph_input(g, "b", tensor_view(buf, 3, GC_SHAPE(2, 3, 2)), false);
	ck_assert_ptr_null(linalg_bmm(g, "bad", a, b, false, false));
	ck_assert_int_eq(graph_status(g), VB_ERR_SHAPE);
	ck_assert_msg(strstr(graph_error(g)->msg, "linalg: bmm bad") != NULL,
		      "message: %s", graph_error(g)->msg);
	/* sticky: later ops return NULL, NULL propagates */
	ck_assert_ptr_null(linalg_transpose(g, "t", a));
	graph_reset(g);
	a = graph_input(g, "a", tensor_view(buf, 3, GC_SHAPE(2, 3, 4)), false);
	ck_assert_ptr_null(linalg_inverse(g, "inv", a));
	ck_assert_int_eq(graph_status(g), VB_ERR_SHAPE);
	graph_reset(g);
	a = graph_input(g, "a", tensor_view(buf, 2, GC_SHAPE(2, 3)), false);
	b = graph_input(g, "b", tensor_view(buf, 2, GC_SHAPE(2, 4)), false);
	ck_assert_ptr_null(linalg_sqdist(g, "sq", a, b));
	ck_assert_int_eq(graph_status(g), VB_ERR_SHAPE);
	graph_reset(g);
	a = graph_input(g, "a", tensor_view(buf, 2, GC_SHAPE(2, 4)), false);
	b = graph_input(g, "b", tensor_view(buf, 2, GC_SHAPE(2, 5)), false);
	ck_assert_ptr_null(linalg_tril(g, "L", a, b)); /* low needs 6 */
	ck_assert_int_eq(graph_status(g), VB_ERR_SHAPE);
	graph_reset(g);
	ck_assert_ptr_null(linalg_bmm(g, "n", NULL, NULL, false, false));
	ck_assert_int_eq(graph_status(g), VB_OK);
	graph_free(g);
}
END_TEST

/* ------------------------------------------------------------------ */
/* sqdist */

START_TEST(test_sqdist_grad)
{
	double z[12], cc[20];
	uint64_t s = 6;
	struct lx o = {.kind = LX_SQDIST};
	struct gradcheck_case c = one_case("sqdist", &o, 60);
	gradcheck_fill(z, 12, -1, 1, &s);
	gradcheck_fill(cc, 20, -1, 1, &s);
	c.n_leaves = 2;
	c.leaf[0] = gc_leaf("z", GRADCHECK_INPUT, z, 2, GC_SHAPE(3, 4));
	c.leaf[1] = gc_leaf("c", GRADCHECK_PARAM, cc, 2, GC_SHAPE(5, 4));
	check_all(&c, true);
	/* third order through the dedicated gradient ops */
	c = one_case("sqdist", &o, 61);
	c.n_leaves = 2;
	c.leaf[0] = gc_leaf("z", GRADCHECK_INPUT, z, 2, GC_SHAPE(3, 4));
	c.leaf[1] = gc_leaf("c", GRADCHECK_INPUT, cc, 2, GC_SHAPE(5, 4));
	check_grad_of(&c, 0);
	check_grad_of(&c, 1);
}
END_TEST

START_TEST(test_sqdist_values)
{
	/* Points 1e-4 apart at 1e8 from the origin: |z|^2 - 2 z.c + |c|^2
	 * would cancel 32 digits (every bit of a double); direct differences
	 * are exact here (the differences are representable). */
	static vb_real z[4] = {1e8, -1e8, 3, 0.5};
	static vb_real c[6] = {1e8 + 1.4901161193847656e-8 * 8192,
			       -1e8, 1e8, -1e8 + 0.25, 3, 0.5};
	struct graph *g;
	ck_assert_int_eq(graph_create(TEST_ARENA, &g, NULL), VB_OK);
	struct graph_node *nz = graph_input(g, "z", tensor_view2(z, 2, 2), false);
	struct graph_node *nc = graph_input(g, "c", tensor_view2(c, 3, 2), false);
	struct graph_node *d = linalg_sqdist(g, "d", nz, nc);
	ck_assert_ptr_nonnull(d);
	for (int b = 0; b < 2; b++)
		for (int j = 0; j < 3; j++) {
			double acc = 0;
			for (int k = 0; k < 2; k++) {
				double t = (double)z[b * 2 + k] - (double)c[j * 2 + k];
				acc += t * t;
			}
			ck_assert_double_eq(d->value.data[b * 3 + j], acc);
		}
	/* the first pair differs by 2^-13 (8192 ulps of 1e8) in x, 0 in y */
	double u = (double)c[0] - 1e8;
	ck_assert(u > 0);
	ck_assert_double_eq(d->value.data[0], u * u);
	ck_assert_double_eq(d->value.data[1], 0.0625);
	graph_free(g);
}
END_TEST

/* ------------------------------------------------------------------ */
/* inverse, logdet, cholesky, solve */

START_TEST(test_inverse_grad)
{
	double a[18];
	uint64_t s = 10;
	struct lx o = {.kind = LX_INVERSE};
	struct gradcheck_case c = one_case("inverse", &o, 100);
	fill_dominant(a, 2, 3, 2.5, &s);
	c.n_leaves = 1;
	c.leaf[0] = gc_leaf("a", GRADCHECK_INPUT, a, 3, GC_SHAPE(2, 3, 3));
	check_all(&c, true);
	check_grad_of(&c, 0);
}
END_TEST

START_TEST(test_logdet_grad)
{
	double a[18], x[18];
	uint64_t s = 11;
	struct lx o = {.kind = LX_LOGDET, .mode = LINALG_LOGDET_LU};
	struct gradcheck_case c;
	/* LU: a general (non-symmetric) matrix of positive determinant */
	fill_dominant(a, 2, 3, 2.5, &s);
	c = one_case("logdet (lu)", &o, 110);
	c.n_leaves = 1;
	c.leaf[0] = gc_leaf("a", GRADCHECK_INPUT, a, 3, GC_SHAPE(2, 3, 3));
	check_all(&c, true);
	check_grad_of(&c, 0);
	/* one that needs row swaps and has negative pivots with det > 0:
	 * det [[0.1, 1, 0], [2, 0.3, 0], [0, 0, -1]] = -(0.03 - 2) = 1.97 */
	{
		double p[9] = {0.1, 1, 0, 2, 0.3, 0, 0, 0, -1};
		c = one_case("logdet (lu, pivoting)", &o, 111);
		c.n_leaves = 1;
		c.leaf[0] = gc_leaf("a", GRADCHECK_INPUT, p, 3, GC_SHAPE(1, 3, 3));
		check_all(&c, true);
	}
	/* Cholesky mode on a symmetric positive definite X X^T + I (the
	 * symmetric gradient is right there, as in PyTorch) */
	gradcheck_fill(x, 18, -1, 1, &s);
	o = (struct lx){.kind = LX_LOGDET_SPD, .mode = LINALG_LOGDET_CHOLESKY,
			.spd_shift = 1};
	c = one_case("logdet (cholesky) of X X^T + I", &o, 112);
	c.n_leaves = 1;
	c.leaf[0] = gc_leaf("x", GRADCHECK_INPUT, x, 3, GC_SHAPE(2, 3, 3));
	check_all(&c, true);
	check_grad_of(&c, 0);
	o.mode = LINALG_LOGDET_LU;
	c.op = "logdet (lu) of X X^T + I";
	check_all(&c, true);
}
END_TEST

START_TEST(test_cholesky_grad)
{
	double x[24];
	uint64_t s = 12;
	struct lx o = {.kind = LX_CHOLESKY_SPD, .spd_shift = 0.5};
	struct gradcheck_case c = one_case("cholesky of X X^T + 0.5 I", &o,
					   120);
	gradcheck_fill(x, 24, -1, 1, &s);
	c.n_leaves = 1;
	/* X (2, 3, 4): A = X X^T + 0.5 I is (2, 3, 3) */
	c.leaf[0] = gc_leaf("x", GRADCHECK_INPUT, x, 3, GC_SHAPE(2, 3, 4));
	check_all(&c, true);
	check_grad_of(&c, 0);
}
END_TEST

START_TEST(test_solve_tril_grad)
{
	double l[18], b[12];
	uint64_t s = 13;
	for (int t = 0; t < 2; t++) {
		struct lx o = {.kind = LX_SOLVE_TRIL, .trans = t};
		struct gradcheck_case c = one_case(t ? "solve_tril(trans)"
						     : "solve_tril", &o,
						   130 + (uint64_t)t);
		/* lower part in [-1, 1], diagonal in [1, 2] (away from 0);
		 * the upper part is set too: it must be ignored (its
		 * numeric gradient is 0) */
		gradcheck_fill(l, 18, -1, 1, &s);
		for (int q = 0; q < 2; q++)
			for (int i = 0; i < 3; i++)
				l[(q * 3 + i) * 3 + i] = 1.5 + 0.25 * i;
		gradcheck_fill(b, 12, -1, 1, &s);
		c.n_leaves = 2;
		c.leaf[0] = gc_leaf("l", GRADCHECK_INPUT, l, 3, GC_SHAPE(2, 3, 3));
		c.leaf[1] = gc_leaf("b", GRADCHECK_PARAM, b, 3, GC_SHAPE(2, 3, 2));
		check_all(&c, true);
	}
}
END_TEST

START_TEST(test_inverse_values)
{
	/* d = 16, three matrices: dominant, a permutation times dominant
	 * (needs pivoting: zero leading entries) and a Hilbert-like
	 * moderately conditioned one; A X = I to the conditioning */
	enum { B = 3, D = 16 };
	static vb_real a[B * D * D];
	double x[D * D];
	uint64_t s = 14;
	struct graph *g;
	ck_assert_int_eq(graph_create(TEST_ARENA, &g, NULL), VB_OK);
	fill_dominant(x, 1, D, 4, &s);
	for (int i = 0; i < D * D; i++)
		a[i] = x[i];
	/* rows of the same matrix reversed: a[0][0] is then small */
	for (int i = 0; i < D; i++)
		for (int j = 0; j < D; j++)
			a[D * D + i * D + j] = x[(D - 1 - i) * D + j];
	a[D * D] = 0;
	for (int i = 0; i < D; i++)
		for (int j = 0; j < D; j++)
			a[2 * D * D + i * D + j] = 1.0 / (i + j + 1) +
						   (i == j ? 0.1 : 0);
	struct graph_node *na = graph_input(g, "a", tensor_view(a, 3, GC_SHAPE(B, D, D)), false);
	struct graph_node *inv = linalg_inverse(g, "inv", na);
	ck_assert_ptr_nonnull(inv);
	ck_assert_int_eq(linalg_fail_count(inv), 0);
	ck_assert_int_eq(linalg_fail_first(inv), -1);
	for (int q = 0; q < B; q++)
		for (int i = 0; i < D; i++)
			for (int j = 0; j < D; j++) {
				double acc = 0;
				for (int k = 0; k < D; k++)
					acc += (double)a[(q * D + i) * D + k] *
					       inv->value.data[(q * D + k) * D + j];
				/* cond(A) <= ~1e2 here: 1e-12 leaves room */
				ck_assert_msg(fabs(acc - (i == j)) < 1e-12,
					      "(A A^-1)[%d][%d][%d] = %.17g", q,
					      i, j, acc);
			}
	graph_free(g);
}
END_TEST

START_TEST(test_inverse_singular)
{
	/* batch item 1 singular (rank 1): inf/NaN, no crash, recorded */
	vb_real a[12] = {2, 1, 1, 3, 1, 2, 2, 4, 0, 0, 0, 0};
	struct graph *g;
	ck_assert_int_eq(graph_create(TEST_ARENA, &g, NULL), VB_OK);
	struct graph_node *na = graph_input(g, "a", tensor_view(a, 3, GC_SHAPE(3, 2, 2)), false);
	struct graph_node *inv = linalg_inverse(g, "inv", na);
	ck_assert_ptr_nonnull(inv);
	ck_assert_int_eq(graph_status(g), VB_OK);
	ck_assert_int_eq(linalg_fail_count(inv), 2);
	ck_assert_int_eq(linalg_fail_first(inv), 1);
	/* [[2, 1], [1, 3]]^-1 = [[3, -1], [-1, 2]] / 5 */
	ck_assert(fabs(inv->value.data[0] - 0.6) < 1e-15);
	ck_assert(fabs(inv->value.data[1] + 0.2) < 1e-15);
	ck_assert(fabs(inv->value.data[3] - 0.4) < 1e-15);
	bool nonfinite = false;
	for (int i = 4; i < 8; i++)
		nonfinite = nonfinite || !isfinite(inv->value.data[i]);
	ck_assert(nonfinite);
	for (int i = 8; i < 12; i++)
		ck_assert(!isfinite(inv->value.data[i]));
	/* a node that records nothing */
	ck_assert_int_eq(linalg_fail_count(na), 0);
	ck_assert_int_eq(linalg_fail_first(na), -1);
	ck_assert_int_eq(linalg_fail_count(NULL), 0);
	graph_free(g);
}
END_TEST

START_TEST(test_logdet_values)
{
	/* [[4, 1, 0], [1, 3, 1], [0, 1, 2]]: det 18 (SPD);
	 * [[2, 1, 0], [5, 4, 0], [0, 0, 1]]: det 3 > 0, LU swaps rows and
	 * meets a negative pivot (5, -0.6 ...): signs cancel */
	vb_real a[18] = {4, 1, 0, 1, 3, 1, 0, 1, 2, 2, 1, 0, 5, 4, 0, 0, 0, 1};
	struct graph *g;
	ck_assert_int_eq(graph_create(TEST_ARENA, &g, NULL), VB_OK);
	struct graph_node *na = graph_input(g, "a", tensor_view(a, 3, GC_SHAPE(2, 3, 3)), false);
	struct graph_node *lu = linalg_logdet(g, "lu", na, LINALG_LOGDET_LU);
	struct graph_node *ch = linalg_logdet(g, "ch", na, LINALG_LOGDET_CHOLESKY);
	ck_assert_ptr_nonnull(lu);
	ck_assert_ptr_nonnull(ch);
	ck_assert(fabs(lu->value.data[0] - log(18.0)) < 4e-16 * log(18.0) * 4);
	ck_assert(fabs(ch->value.data[0] - log(18.0)) < 4e-16 * log(18.0) * 4);
	ck_assert(fabs(lu->value.data[1] - log(3.0)) < 4e-16 * 4);
	ck_assert_int_eq(linalg_fail_count(lu), 0);
	/* Cholesky reads only the lower triangle: [[2, ., .], [5, 4, .],
	 * [0, 0, 1]] symmetrised is [[2, 5], [5, 4]]: not positive
	 * definite */
	ck_assert(isnan(ch->value.data[1]));
	ck_assert_int_eq(linalg_fail_count(ch), 1);
	ck_assert_int_eq(linalg_fail_first(ch), 1);
	ck_assert_str_eq(linalg_logdet_mode_name(LINALG_LOGDET_LU), "lu");
	ck_assert_str_eq(linalg_logdet_mode_name(LINALG_LOGDET_CHOLESKY),
			 "cholesky");
	ck_assert_str_eq(linalg_logdet_mode_name((enum linalg_logdet_mode)7),
			 "unknown");
	graph_free(g);
}
END_TEST

START_TEST(test_logdet_nan_and_inf)
{
	/* item 0: I (fine); 1: diag(1, -1, 1, 1) (det < 0); 2: singular
	 * (row 3 = row 0 + row 1); 3: a NaN entry; 4: diag(-1, -1, 1, 1)
	 * (det > 0 but indefinite) */
	enum { B = 5, D = 4 };
	static vb_real a[B * D * D];
	struct graph *g;
	ck_assert_int_eq(graph_create(TEST_ARENA, &g, NULL), VB_OK);
	memset(a, 0, sizeof a);
	for (int q = 0; q < B; q++)
		for (int i = 0; i < D; i++)
			a[(q * D + i) * D + i] = 1;
	a[(1 * D + 1) * D + 1] = -1;
	for (int j = 0; j < D; j++)
		a[(2 * D + 3) * D + j] = a[(2 * D + 0) * D + j] +
					 a[(2 * D + 1) * D + j];
	a[(3 * D + 2) * D + 1] = NAN;
	a[(4 * D + 0) * D + 0] = -1;
	a[(4 * D + 1) * D + 1] = -1;
	struct graph_node *na = graph_input(g, "a", tensor_view(a, 3, GC_SHAPE(B, D, D)), false);
	struct graph_node *lu = linalg_logdet(g, "lu", na, LINALG_LOGDET_LU);
	struct graph_node *ch = linalg_logdet(g, "ch", na, LINALG_LOGDET_CHOLESKY);
	struct graph_node *cf = linalg_cholesky(g, "cf", na);
	ck_assert_int_eq(graph_status(g), VB_OK);
	/* LU as torch.logdet */
	ck_assert_double_eq(lu->value.data[0], 0);
	ck_assert(isnan(lu->value.data[1]));
	ck_assert(isinf(lu->value.data[2]) && lu->value.data[2] < 0);
	ck_assert(isnan(lu->value.data[3]));
	ck_assert_double_eq(lu->value.data[4], 0);
	ck_assert_int_eq(linalg_fail_count(lu), 2); /* NaN input not counted */
	ck_assert_int_eq(linalg_fail_first(lu), 1);
	/* Cholesky: NaN and a failure for everything not positive definite,
	 * NaN input included (LAPACK's potrf reports it) */
	ck_assert_double_eq(ch->value.data[0], 0);
	for (int q = 1; q < B; q++)
		ck_assert_msg(isnan(ch->value.data[q]), "cholesky logdet %d", q);
	ck_assert_int_eq(linalg_fail_count(ch), 4);
	ck_assert_int_eq(linalg_fail_first(ch), 1);
	ck_assert_int_eq(linalg_fail_count(cf), 4);
	ck_assert_int_eq(linalg_fail_first(cf), 1);
	for (int i = 0; i < D * D; i++) {
		ck_assert_double_eq(cf->value.data[i], a[i]); /* chol(I) = I */
		for (int q = 1; q < B; q++)
			ck_assert(isnan(cf->value.data[q * D * D + i]));
	}
	graph_free(g);
}
END_TEST

START_TEST(test_logdet_backward_nonfinite_no_crash)
{
	/* a failed factorization still backpropagates (NaN), never
	 * crashes: the guard then sees the NaN */
	vb_real a[8] = {1, 0, 0, -1, 1, 0, 0, 1};
	struct graph *g;
	struct vb_error err = {0};
	ck_assert_int_eq(graph_create(TEST_ARENA, &g, NULL), VB_OK);
	for (int mode = 0; mode < 2; mode++) {
		graph_reset(g);
		struct graph_node *na = graph_input(g, "a", tensor_view(a, 3, GC_SHAPE(2, 2, 2)), true);
		struct graph_node *ld = linalg_logdet(g, "ld", na, mode ? LINALG_LOGDET_CHOLESKY : LINALG_LOGDET_LU);
		struct graph_node *L = op_sum(g, "L", ld);
		ck_assert_int_eq(graph_backward(g, L, &err), VB_OK);
		ck_assert(!isfinite(L->value.data[0]));
		/* item 1 is I: gradient I, exactly */
		ck_assert_double_eq(na->grad.data[4], 1);
		ck_assert_double_eq(na->grad.data[5], 0);
		ck_assert_double_eq(na->grad.data[7], 1);
	}
	graph_free(g);
}
END_TEST

START_TEST(test_cholesky_values)
{
	/* the classic [[4, 12, -16], [12, 37, -43], [-16, -43, 98]] =
	 * L L^T with L = [[2, 0, 0], [6, 1, 0], [-8, 5, 3]] (exact) */
	vb_real a[9] = {4, 12, -16, 12, 37, -43, -16, -43, 98};
	static const double want[9] = {2, 0, 0, 6, 1, 0, -8, 5, 3};
	vb_real rhs[6] = {1, 2, 3, 4, 5, 6};
	struct graph *g;
	ck_assert_int_eq(graph_create(TEST_ARENA, &g, NULL), VB_OK);
	struct graph_node *na = graph_input(g, "a", tensor_view(a, 3, GC_SHAPE(1, 3, 3)), false);
	struct graph_node *nb = graph_input(g, "b", tensor_view(rhs, 3, GC_SHAPE(1, 3, 2)), false);
	struct graph_node *L = linalg_cholesky(g, "L", na);
	ck_assert_ptr_nonnull(L);
	ck_assert_int_eq(linalg_fail_count(L), 0);
	ck_assert_int_eq(linalg_fail_first(L), -1);
	for (int i = 0; i < 9; i++)
		ck_assert_double_eq(L->value.data[i], want[i]);
	/* logdet = 2 log(2 * 1 * 3) */
	struct graph_node *ld = linalg_logdet(g, "ld", na, LINALG_LOGDET_CHOLESKY);
	ck_assert(fabs(ld->value.data[0] - 2 * log(6.0)) < 1e-15);
	/* solves: L x = b and L^T y = b, checked by multiplying back */
	for (int t = 0; t < 2; t++) {
		struct graph_node *x = linalg_solve_tril(g, "x", L, nb, t);
		ck_assert_ptr_nonnull(x);
		for (int i = 0; i < 3; i++)
			for (int c = 0; c < 2; c++) {
				double acc = 0;
				for (int k = 0; k < 3; k++)
					acc += (t ? want[k * 3 + i] : want[i * 3 + k]) *
					       x->value.data[k * 2 + c];
				ck_assert_msg(fabs(acc - rhs[i * 2 + c]) < 1e-13,
					      "solve %d [%d][%d]: %.17g", t, i,
					      c, acc);
			}
	}
	/* the solve ignores the upper triangle: solve with A itself (its
	 * lower triangle is [[4], [12, 37], [-16, -43, 98]]) */
	struct graph_node *xa = linalg_solve_tril(g, "xa", na, nb, false);
	double x0 = 1.0 / 4, x1 = (3 - 12 * x0) / 37;
	ck_assert(fabs(xa->value.data[0] - x0) < 1e-16);
	ck_assert(fabs(xa->value.data[2] - x1) < 1e-16);
	graph_free(g);
}
END_TEST

START_TEST(test_inverse_cholesky_pipeline)
{
	/* the evaluation-mode momentum factor (rhvae.md 4.6 step 4):
	 * C = cholesky(inverse(A)); C C^T A = I */
	enum { D = 16 };
	static vb_real x[D * D];
	uint64_t s = 15;
	struct graph *g;
	ck_assert_int_eq(graph_create(TEST_ARENA, &g, NULL), VB_OK);
	gc_fill_real(x, D * D, -1, 1, &s);
	struct graph_node *nx = graph_input(g, "x", tensor_view(x, 3, GC_SHAPE(1, D, D)), false);
	struct graph_node *a = linalg_add_identity(g, "a", linalg_bmm(g, "xxt", nx, nx, false, true), 0.5);
	struct graph_node *c = linalg_cholesky(g, "c", linalg_inverse(g, "ai", a));
	struct graph_node *p = linalg_bmm(g, "p", linalg_bmm(g, "cct", c, c, false, true), a, false, false);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(linalg_fail_count(c), 0);
	for (int i = 0; i < D; i++)
		for (int j = 0; j < D; j++)
			ck_assert_msg(fabs(p->value.data[i * D + j] - (i == j)) < 1e-10,
				      "C C^T A [%d][%d] = %.17g", i, j,
				      p->value.data[i * D + j]);
	graph_free(g);
}
END_TEST

TU_MAIN_CASES("linalg",
	TU_CASE("gradcheck", 240, test_tril_grad,
		test_diag_low_trace_transpose_grad, test_bmm_grad,
		test_bmm_shared_and_matvec_grad, test_sqdist_grad,
		test_inverse_grad, test_logdet_grad, test_cholesky_grad,
		test_solve_tril_grad),
	TU_CASE("values", 0, test_tril_values, test_bmm_values,
		test_shape_errors, test_sqdist_values, test_inverse_values,
		test_inverse_singular, test_logdet_values,
		test_logdet_nan_and_inf,
		test_logdet_backward_nonfinite_no_crash, test_cholesky_values,
		test_inverse_cholesky_pipeline))
