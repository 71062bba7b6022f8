/* test_ops_f32 (float build): the float kernels against a double reference
 * computed here with plain loops on the same float inputs: sgemm-backed
 * matmul and linear (values and linear's fused backward), the elementwise
 * transcendental ops and the per-sample losses. Tolerances are error
 * bounds of float arithmetic (u = FLT_EPSILON / 2), each stated where used;
 * the gradients themselves are checked in double by test_ops. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "graph.h"
#include "ops.h"
#include "testutil.h"

#ifdef VB_DOUBLE
#error "test_ops_f32 checks the float build (vb_core)"
#endif

/* Unit roundoff of float. */
#define U_F32 ((double)FLT_EPSILON / 2)
/* Elementwise ops: expf / logf / log1pf are within 4 ulps (glibc's libmvec
 * SIMD versions, which the float build uses; scalar libm is within 1), i.e.
 * 8 u relative, and each op adds at most three roundings (sigmoid: 1 + e,
 * the division; bce: two products and a sum): 16 u ~ 9.5e-7 bounds them
 * (measured worst case over 2e5 inputs: 4.4 u). */
#define RTOL_ELEM (16 * U_F32)

#define PBCE_LOG_CLAMP (-100.0)
#define PBCE_DENOM_EPS 1e-12

static struct graph *new_graph(void)
{
	struct graph *g = NULL;
	ck_assert_int_eq(graph_create(1 << 20, &g, NULL), VB_OK);
	return g;
}

/* |got - ref| <= bound, with the message naming what and where. */
static void check_bound(const char *what, size_t i, double got, double ref,
			double bound)
{
	ck_assert_msg(isfinite(got) && fabs(got - ref) <= bound,
		      "%s[%zu]: float %.9g, double reference %.17g, |diff| "
		      "%.3g > bound %.3g", what, i, got, ref, fabs(got - ref),
		      bound);
}

/* Dot products of K terms in any order (blocked, FMA or not) are within
 * gamma_K sum |a_k b_k|, gamma_K = K u / (1 - K u) (Higham, Accuracy and
 * Stability of Numerical Algorithms, 2nd ed., eq. 3.5); (K + 2) u covers
 * gamma_K for K u << 1 plus the final rounding to float. */
static double dot_bound(size_t k, double sum_abs)
{
	return (double)(k + 2) * U_F32 * sum_abs + DBL_MIN;
}

static void check_matmul(size_t m, size_t k, size_t n, bool ta, bool tb,
			 uint64_t seed)
{
	struct graph *g = new_graph();
	float *a = gc_floats(seed, m * k, -1, 1);
	float *b = gc_floats(seed + 1, k * n, -1, 1);
	size_t sa[2] = {ta ? k : m, ta ? m : k};
	size_t sb[2] = {tb ? n : k, tb ? k : n};
	struct graph_node *na = graph_input(g, "a", tensor_view(a, 2, sa),
					    false);
	struct graph_node *nb = graph_input(g, "b", tensor_view(b, 2, sb),
					    false);
	struct graph_node *c = op_matmul(g, "c", na, nb, ta, tb);
	char what[64];
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->value.shape[0], m);
	ck_assert_uint_eq(c->value.shape[1], n);
	snprintf(what, sizeof what, "matmul ta=%d tb=%d", ta, tb);
	for (size_t i = 0; i < m; i++)
		for (size_t j = 0; j < n; j++) {
			double ref = 0, mag = 0;
			for (size_t p = 0; p < k; p++) {
				double av = ta ? a[p * m + i] : a[i * k + p];
				double bv = tb ? b[j * k + p] : b[p * n + j];
				ref += av * bv;
				mag += fabs(av * bv);
			}
			check_bound(what, i * n + j, c->value.data[i * n + j],
				    ref, dot_bound(k, mag));
		}
	free(a);
	free(b);
	graph_free(g);
}

START_TEST(test_matmul_vs_loops)
{
	for (int form = 0; form < 4; form++) {
		bool ta = form & 1, tb = form >> 1;
		/* small and non-square, then large enough for blocked
		 * kernels with ragged edges */
		check_matmul(3, 5, 2, ta, tb, 10 + (uint64_t)form);
		check_matmul(33, 70, 19, ta, tb, 20 + (uint64_t)form);
	}
}
END_TEST

/* The n terms a[k * sa] b[k * sb] in double: their sum added to *ref,
 * the sum of their magnitudes to *mag. */
static void dot_acc(const float *a, size_t sa, const float *b, size_t sb,
		    size_t n, double *ref, double *mag)
{
	for (size_t k = 0; k < n; k++) {
		*ref += (double)a[k * sa] * b[k * sb];
		*mag += fabs((double)a[k * sa] * b[k * sb]);
	}
}

/* y = x w^T + b and its fused backward (via L = sum(y * R), so the
 * incoming gradient is exactly R) against loops. */
static void check_linear(size_t nb, int x_ndim, const size_t *x_shape,
			 size_t nout, bool bias, uint64_t seed)
{
	struct graph *g = new_graph();
	struct tensor xt = tensor_view(NULL, x_ndim, x_shape);
	size_t nin = xt.n / nb;
	float *x = gc_floats(seed, nb * nin, -1, 1);
	float *w = gc_floats(seed + 1, nout * nin, -1, 1);
	float *b = gc_floats(seed + 2, nout, -1, 1);
	float *r = gc_floats(seed + 3, nb * nout, -1, 1);
	float *gw = calloc(nout * nin, sizeof *gw);
	float *gb = calloc(nout, sizeof *gb);
	struct vb_error err = {0};
	ck_assert_ptr_nonnull(gw);
	ck_assert_ptr_nonnull(gb);
	xt.data = x;
	struct graph_node *nx = graph_input(g, "x", xt, true);
	struct graph_node *nw = graph_param(g, "w", tensor_view2(w, nout, nin),
					    gw);
	struct graph_node *nbias = bias ? graph_param(g, "b",
						      tensor_view1(b, nout),
						      gb)
					: NULL;
	struct graph_node *y = op_linear(g, "y", nx, nw, nbias);
	struct graph_node *nr = graph_const(g, "r", tensor_view2(r, nb, nout));
	struct graph_node *l = op_sum(g, "l", op_mul(g, "yr", y, nr));
	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(graph_backward(g, l, &err), VB_OK);

	for (size_t i = 0; i < nb; i++)
		for (size_t o = 0; o < nout; o++) {
			double ref = bias ? b[o] : 0, mag = fabs(ref);
			dot_acc(&x[i * nin], 1, &w[o * nin], 1, nin, &ref,
				&mag);
			/* nin products plus the bias: nin + 1 terms */
			check_bound("linear y", i * nout + o,
				    y->value.data[i * nout + o], ref,
				    dot_bound(nin + 1, mag));
		}
	/* dx (B, in) = R w: nout terms */
	ck_assert_ptr_nonnull(nx->grad.data);
	for (size_t i = 0; i < nb; i++)
		for (size_t p = 0; p < nin; p++) {
			double ref = 0, mag = 0;
			dot_acc(&r[i * nout], 1, &w[p], nin, nout, &ref, &mag);
			check_bound("linear dx", i * nin + p,
				    nx->grad.data[i * nin + p], ref,
				    dot_bound(nout, mag));
		}
	/* dw (out, in) = R^T x: B terms */
	for (size_t o = 0; o < nout; o++)
		for (size_t p = 0; p < nin; p++) {
			double ref = 0, mag = 0;
			dot_acc(&r[o], nout, &x[p], nin, nb, &ref, &mag);
			check_bound("linear dw", o * nin + p,
				    gw[o * nin + p], ref, dot_bound(nb, mag));
		}
	/* db = column sums of R, accumulated in double: one final
	 * rounding */
	for (size_t o = 0; o < nout && bias; o++) {
		double ref = 0, mag = 0;
		for (size_t i = 0; i < nb; i++) {
			ref += r[i * nout + o];
			mag += fabs((double)r[i * nout + o]);
		}
		check_bound("linear db", o, gb[o], ref, dot_bound(0, mag));
	}
	free(x);
	free(w);
	free(b);
	free(r);
	free(gw);
	free(gb);
	graph_free(g);
}

START_TEST(test_linear_vs_loops)
{
	check_linear(4, 2, (size_t[]){4, 7}, 3, true, 40);
	check_linear(4, 2, (size_t[]){4, 7}, 3, false, 41);
	/* (B, C, H, W) input flattening to in = 2 * 5 * 6 = 60 */
	check_linear(9, 4, (size_t[]){9, 2, 5, 6}, 37, true, 42);
	check_linear(64, 2, (size_t[]){64, 100}, 50, true, 43);
}
END_TEST

/* ---- elementwise ---- */

typedef struct graph_node *(*unary_fn)(struct graph *, const char *,
					  struct graph_node *);

static void check_unary(const char *what, unary_fn fn,
			double (*ref_fn)(double), const float *x, size_t n)
{
	struct graph *g = new_graph();
	float *xc = malloc(n * sizeof *xc);
	ck_assert_ptr_nonnull(xc);
	memcpy(xc, x, n * sizeof *xc);
	struct graph_node *nx = graph_input(g, "x", tensor_view1(xc, n),
					    false);
	struct graph_node *y = fn(g, what, nx);
	ck_assert_ptr_nonnull(y);
	for (size_t i = 0; i < n; i++) {
		double ref = ref_fn((double)x[i]);
		/* relative bound; DBL_MIN only guards ref = 0 */
		check_bound(what, i, y->value.data[i], ref,
			    RTOL_ELEM * fabs(ref) + DBL_MIN);
	}
	free(xc);
	graph_free(g);
}

static double ref_sigmoid(double x)
{
	return 1 / (1 + exp(-x));
}

static double ref_softplus(double x)
{
	/* op_softplus's definition (PyTorch threshold 20) in double */
	return x > 20 ? x : log1p(exp(x));
}

START_TEST(test_elementwise_vs_double)
{
	enum { N = 64 };
	float *x = gc_floats(50, N, -12, 12);
	float *pos = gc_floats(51, N, 1e-3, 50);
	/* the threshold region and far tails too */
	float extra[8] = {19.5f, 20.0f, 20.5f, 30, -30, -80, 80, 0};
	memcpy(x, extra, sizeof extra);
	check_unary("sigmoid", op_sigmoid, ref_sigmoid, x, N);
	check_unary("softplus", op_softplus, ref_softplus, x, N);
	check_unary("exp", op_exp, exp, x, N);
	check_unary("log", op_log, log, pos, N);
	/* log near 1, where the result is small: logf stays accurate
	 * relative to the result */
	float near1[4] = {0.999f, 1.001f, 0.99999f, 1.00001f};
	check_unary("log near 1", op_log, log, near1, 4);
	free(x);
	free(pos);
}
END_TEST

/* ---- losses ---- */

START_TEST(test_losses_vs_double)
{
	enum { B = 4, P = 50 };
	struct graph *g = new_graph();
	float *y = gc_floats(60, B * P, -2, 2);
	float *x = gc_floats(61, B * P, -2, 2);
	float *p = gc_floats(62, B * P, 0.001, 0.999);
	float *t = gc_floats(63, B * P, 0, 1);
	float *l = gc_floats(64, B * P, -15, 15);
	struct graph_node *ny = graph_input(g, "y", tensor_view2(y, B, P),
					    false);
	struct graph_node *nx = graph_input(g, "x", tensor_view2(x, B, P),
					    false);
	struct graph_node *np = graph_input(g, "p", tensor_view2(p, B, P),
					    false);
	struct graph_node *nt = graph_input(g, "t", tensor_view2(t, B, P),
					    false);
	struct graph_node *nl = graph_input(g, "l", tensor_view2(l, B, P),
					    false);
	struct graph_node *mse = op_mse(g, "mse", ny, nx);
	struct graph_node *bce = op_bce(g, "bce", np, nt, PBCE_LOG_CLAMP,
					PBCE_DENOM_EPS);
	struct graph_node *bcel = op_bce_logits(g, "bcel", nl, nt);
	ck_assert_ptr_nonnull(mse);
	ck_assert_ptr_nonnull(bce);
	ck_assert_ptr_nonnull(bcel);
	for (size_t r = 0; r < B; r++) {
		double m = 0, b = 0, bl = 0, blmag = 0;
		for (size_t c = 0; c < P; c++) {
			size_t i = r * P + c;
			double d = (double)y[i] - x[i];
			double pi = p[i], ti = t[i], li = l[i];
			m += d * d;
			/* no clamp reached: p in [0.001, 0.999] */
			b += -(ti * log(pi) + (1 - ti) * log1p(-pi));
			bl += (li > 0 ? li : 0) - li * ti +
			      log1p(exp(-fabs(li)));
			blmag += fabs(li) + fabs(li * ti) +
				 log1p(exp(-fabs(li)));
		}
		m *= 0.5;
		/* non-negative terms, each within a few roundings: the sum
		 * keeps the elementwise relative bound */
		check_bound("mse", r, mse->value.data[r], m, RTOL_ELEM * m);
		check_bound("bce", r, bce->value.data[r], b, RTOL_ELEM * b);
		/* max(l, 0) - l t cancels (l = 3, t = 1 leaves only the
		 * log1p term): the error is relative to the magnitudes that
		 * enter, not to the result */
		check_bound("bce_logits", r, bcel->value.data[r], bl,
			    RTOL_ELEM * blmag);
	}
	free(y);
	free(x);
	free(p);
	free(t);
	free(l);
	graph_free(g);
}
END_TEST

TU_MAIN("ops_f32", "float_vs_double", 0, test_matmul_vs_loops,
	test_linear_vs_loops, test_elementwise_vs_double, test_losses_vs_double)
