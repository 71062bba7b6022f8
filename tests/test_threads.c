/* test_threads (float build): op_set_threads. Core's parallel loops
 * (par.h: elementwise forward and backward kernels, gradient zeroing, Adam)
 * give the same bytes at 1 and 2 threads; products through oneDNN's sgemm
 * (op_gemm at 2 threads) agree with OpenBLAS's within float rounding for
 * every transpose; a ResNet RHVAE step at 2 threads gives the same bytes
 * twice, and agrees with 1 thread within the backends' bound. The suite
 * runs with OMP_NUM_THREADS=1 in its environment; op_set_threads(2)
 * overrides it, which is what the trainer relies on. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_dnnl.h"
#include "dataset.h"
#include "gradcheck.h"
#include "graph.h"
#include "model.h"
#include "ops.h"
#include "optim.h"
#include "par.h"
#include "params.h"
#include "rng.h"
#include "rhvaestep.h"
#include "testutil.h"

#ifdef VB_DOUBLE
#error "test_threads checks the float build (vb_core)"
#endif

/* Above PAR_MIN_ELEMS and not a multiple of the SIMD width or of 2, so
 * the threads' blocks and the vector tail both split unevenly. */
#define N_BIG (PAR_MIN_ELEMS + 12345)

/* Every value and gradient of a graph of elementwise ops over n elements
 * at thread count t, concatenated into a malloc'd buffer (*len floats). */
static float *elementwise_run(int t, size_t n, size_t *len)
{
	struct graph *g = NULL;
	struct vb_error err = {0};
	float *xa = gc_floats(1, n, -3, 3), *ya = gc_floats(2, n, 0.5, 2);
	size_t shape[1] = {n};
	struct graph_node *x, *y, *h[20], *loss;
	int k = 0;
	float *out;
	op_set_threads(t);
	ck_assert_int_eq(op_threads(), t);
	ck_assert_int_eq(par_team(n), t); /* the loops do split */
	ck_assert_int_eq(conv_dnnl_threads(), t);
	ck_assert_int_eq(graph_create((size_t)64 << 20, &g, &err), VB_OK);
	x = graph_input(g, "x", tensor_view(xa, 1, shape), true);
	y = graph_input(g, "y", tensor_view(ya, 1, shape), true);
	h[k++] = op_relu(g, "relu", x);
	h[k++] = op_sigmoid(g, "sigmoid", x);
	h[k++] = op_softplus(g, "softplus", x);
	h[k++] = op_exp(g, "exp", op_scale(g, "half", x, 0.5));
	h[k++] = op_log(g, "log", y);
	h[k++] = op_square(g, "square", x);
	h[k++] = op_neg(g, "neg", y);
	h[k++] = op_add_scalar(g, "add_scalar", x, 0.25);
	h[k++] = op_clamp(g, "clamp", x, -1, 1.5);
	h[k++] = op_add(g, "add", x, y);
	h[k++] = op_sub(g, "sub", x, y);
	h[k++] = op_mul(g, "mul", x, y);
	h[k++] = op_div(g, "div", x, y);
	h[k++] = op_relu_mask(g, "mask", x);
	/* a chain, so every backward kernel runs on a big gradient */
	struct graph_node *acc = h[0];
	for (int i = 1; i < k; i++)
		acc = op_add(g, "acc", op_mul(g, "acc.m", acc, h[i]), h[i]);
	loss = op_sum(g, "loss", acc);
	ck_assert_msg(graph_backward(g, loss, &err) == VB_OK, "%s", err.msg);
	*len = (size_t)(k + 3) * n + 1;
	out = malloc(*len * sizeof *out);
	ck_assert_ptr_nonnull(out);
	for (int i = 0; i < k; i++)
		memcpy(out + (size_t)i * n, h[i]->value.data, n * sizeof *out);
	memcpy(out + (size_t)k * n, acc->value.data, n * sizeof *out);
	memcpy(out + (size_t)(k + 1) * n, x->grad.data, n * sizeof *out);
	memcpy(out + (size_t)(k + 2) * n, y->grad.data, n * sizeof *out);
	out[*len - 1] = loss->value.data[0];
	graph_free(g);
	free(xa);
	free(ya);
	op_set_threads(1);
	return out;
}

START_TEST(test_elementwise_same_bytes)
{
	size_t n1, n2;
	float *a = elementwise_run(1, N_BIG, &n1);
	float *b = elementwise_run(2, N_BIG, &n2);
	ck_assert_uint_eq(n1, n2);
	for (size_t i = 0; i < n1; i++)
		ck_assert_msg(memcmp(a + i, b + i, sizeof *a) == 0,
			      "element %zu (block %zu): 1 thread %.9g, 2 "
			      "threads %.9g", i, i / N_BIG, a[i], b[i]);
	free(a);
	free(b);
}
END_TEST

/* Adam over N_BIG parameters, 3 steps, at t threads: parameters and
 * moments, concatenated. */
static float *adam_run(int t)
{
	struct optim_settings s = {OPTIM_ADAM, 0.9, 0.999, 1e-8, 0.01, 0, 0,
				   false};
	struct optim *o = NULL;
	float *p = gc_floats(3, N_BIG, -1, 1), *gr = gc_floats(4, N_BIG,
								    -1, 1);
	float *out = malloc(3 * N_BIG * sizeof *out);
	ck_assert_ptr_nonnull(out);
	op_set_threads(t);
	ck_assert_int_eq(optim_create(&s, N_BIG, &o, NULL), VB_OK);
	for (int k = 0; k < 3; k++)
		optim_step(o, p, gr, 1e-3);
	memcpy(out, p, N_BIG * sizeof *out);
	memcpy(out + N_BIG, o->m, N_BIG * sizeof *out);
	memcpy(out + 2 * N_BIG, o->v, N_BIG * sizeof *out);
	optim_free(o);
	free(p);
	free(gr);
	op_set_threads(1);
	return out;
}

START_TEST(test_adam_same_bytes)
{
	float *a = adam_run(1), *b = adam_run(2);
	ck_assert(memcmp(a, b, 3 * N_BIG * sizeof *a) == 0);
	free(a);
	free(b);
}
END_TEST

/* op_gemm at 2 threads (oneDNN's sgemm) against 1 (OpenBLAS), every
 * transpose, leading dimensions wider than the matrices. Both are float
 * dot products of k terms in some order: within gamma_k sum |a b| each,
 * so the two within 2 (k + 2) u sum |a b| (Higham, eq. 3.5); with
 * entries in [-1, 1], sum |a b| <= k. */
START_TEST(test_gemm_threads)
{
	const size_t m = 67, n = 129, k = 300, pad = 3;
	for (int c = 0; c < 4; c++) {
		bool ta = c & 1, tb = c & 2;
		size_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad;
		size_t ldc = n + pad;
		float *a = gc_floats(5, (ta ? k : m) * lda, -1, 1);
		float *b = gc_floats(6, (tb ? n : k) * ldb, -1, 1);
		float *c1 = gc_floats(7, m * ldc, -1, 1);
		float *c2 = malloc(m * ldc * sizeof *c2);
		ck_assert_ptr_nonnull(c2);
		memcpy(c2, c1, m * ldc * sizeof *c2);
		op_set_threads(1);
		op_gemm(ta, tb, m, n, k, 0.5f, a, lda, b, ldb, 0.25f, c1, ldc);
		op_set_threads(2);
		op_gemm(ta, tb, m, n, k, 0.5f, a, lda, b, ldb, 0.25f, c2, ldc);
		op_set_threads(1);
		double bound = 2.0 * (double)(k + 2) * FLT_EPSILON / 2 *
			       (double)k;
		for (size_t i = 0; i < m; i++)
			for (size_t j = 0; j < ldc; j++) {
				float x = c1[i * ldc + j], y = c2[i * ldc + j];
				if (j >= n) /* padding: untouched */
					ck_assert(memcmp(&x, &y, sizeof x) == 0);
				else
					ck_assert_msg(fabs((double)x - y) <=
							      bound,
						      "ta %d tb %d (%zu,%zu): "
						      "%.9g vs %.9g", ta, tb,
						      i, j, x, y);
			}
		free(a);
		free(b);
		free(c1);
		free(c2);
	}
}
END_TEST

/* One ResNet RHVAE step (batch 8, as test_conv_dnnl) on backend be at
 * thread count t: loss and every parameter gradient, in a malloc'd
 * buffer of *len floats. */
#define STEP_BATCH 8
static float *rhvae_step(enum graph_conv_backend be, int t, size_t *len)
{
	struct model *m;
	double loss;
	float *out;
	op_set_threads(t);
	m = rs_rhvae_step(be, STEP_BATCH, &loss);
	*len = m->params->n + 1;
	out = malloc(*len * sizeof *out);
	ck_assert_ptr_nonnull(out);
	out[0] = (float)loss;
	memcpy(out + 1, m->params->grad, m->params->n * sizeof *out);
	model_free(m);
	op_set_threads(1);
	return out;
}

/* Same bytes twice at 2 threads, on both backends. */
START_TEST(test_rhvae_two_threads_deterministic)
{
	enum graph_conv_backend be[2] = {GRAPH_CONV_BACKEND_DNNL,
					 GRAPH_CONV_BACKEND_IM2COL};
	for (int i = 0; i < 2; i++) {
		size_t n1, n2;
		float *a = rhvae_step(be[i], 2, &n1);
		float *b = rhvae_step(be[i], 2, &n2);
		ck_assert_uint_eq(n1, n2);
		ck_assert(isfinite(a[0]));
		ck_assert_msg(memcmp(a, b, n1 * sizeof *a) == 0,
			      "%s: two runs at 2 threads differ",
			      graph_conv_backend_name(be[i]));
		free(a);
		free(b);
	}
}
END_TEST

/* 2 threads against 1, norm-wise over all gradients: 1e-4, the bound
 * test_conv_dnnl holds the two backends to (float products summed in
 * other orders, chained through about 40 convolutions and a second-order
 * backward). */
START_TEST(test_rhvae_two_threads_close)
{
	size_t n1, n2;
	float *a = rhvae_step(GRAPH_CONV_BACKEND_DNNL, 1, &n1);
	float *b = rhvae_step(GRAPH_CONV_BACKEND_DNNL, 2, &n2);
	double d = 0, r = 0;
	ck_assert_uint_eq(n1, n2);
	ck_assert_msg(fabs((double)a[0] - b[0]) <= 1e-4 * fabs((double)a[0]),
		      "loss 1 thread %.9g, 2 threads %.9g", a[0], b[0]);
	for (size_t i = 1; i < n1; i++) {
		d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
		r += (double)a[i] * a[i];
	}
	ck_assert_msg(r > 0 && sqrt(d / r) <= 1e-4, "gradient rel err %g",
		      sqrt(d / r));
	free(a);
	free(b);
}
END_TEST

TU_MAIN("threads", "core", 120, test_elementwise_same_bytes,
	test_adam_same_bytes, test_gemm_threads,
	test_rhvae_two_threads_deterministic, test_rhvae_two_threads_close)
