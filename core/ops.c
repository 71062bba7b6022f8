/* ops: forward kernels, fused backward kernels (+=) and vjp builders of
 * every tape op. cblas lives here (and in linalg). Backward kernels read
 * the node's own value where that is the cheaper form (sigmoid, exp). */
#include "ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "conv_dnnl.h"
#include "op_impl.h"
#include "par.h"

#ifdef VB_DOUBLE
#define GEMM cblas_dgemm
#define R_EXP exp
#define R_LOG log
#define R_LOG1P log1p
#else
#define GEMM cblas_sgemm
#define R_EXP expf
#define R_LOG logf
#define R_LOG1P log1pf
#endif

/* Elementwise exp, log and log1p over arrays. The float build uses glibc's
 * libmvec SIMD functions (within 4 ulp of scalar libm, 5-12x faster on the
 * (B, 784) arrays of the decoder and BCE); every element goes through the
 * same vector function (the tail is padded), so a value never depends on
 * its position. The double build and other platforms use scalar libm. */
#if defined(VB_HAVE_MVEC) && !defined(VB_DOUBLE)
#include <immintrin.h>
#ifdef __AVX2__
#define VW 8
typedef __m256 vreal;
#define VLOAD _mm256_loadu_ps
#define VSTORE _mm256_storeu_ps
vreal _ZGVdN8v_expf(vreal);
vreal _ZGVdN8v_logf(vreal);
vreal _ZGVdN8v_log1pf(vreal);
#define VEXP _ZGVdN8v_expf
#define VLOG _ZGVdN8v_logf
#define VLOG1P _ZGVdN8v_log1pf
#else
#define VW 4
typedef __m128 vreal;
#define VLOAD _mm_loadu_ps
#define VSTORE _mm_storeu_ps
vreal _ZGVbN4v_expf(vreal);
vreal _ZGVbN4v_logf(vreal);
vreal _ZGVbN4v_log1pf(vreal);
#define VEXP _ZGVbN4v_expf
#define VLOG _ZGVbN4v_logf
#define VLOG1P _ZGVbN4v_log1pf
#endif
#define VMAP(name, vfn)                                                      \
	static void name(const vb_real *x, vb_real *y, size_t n)             \
	{                                                                    \
		size_t i = n / VW * VW;                                      \
		PAR_FOR(n)                                                   \
		for (size_t j = 0; j < n / VW; j++)                          \
			VSTORE(y + j * VW, vfn(VLOAD(x + j * VW)));          \
		if (i < n) {                                                 \
			float tmp[VW] = {0};                                 \
			memcpy(tmp, x + i, (n - i) * sizeof *tmp);           \
			VSTORE(tmp, vfn(VLOAD(tmp)));                        \
			memcpy(y + i, tmp, (n - i) * sizeof *tmp);           \
		}                                                            \
	}
VMAP(map_exp, VEXP)
VMAP(map_log, VLOG)
VMAP(map_log1p, VLOG1P)
#else
#define SMAP(name, fn)                                                       \
	static void name(const vb_real *x, vb_real *y, size_t n)             \
	{                                                                    \
		PAR_FOR(n)                                                   \
		for (size_t i = 0; i < n; i++)                               \
			y[i] = fn(x[i]);                                     \
	}
SMAP(map_exp, R_EXP)
SMAP(map_log, R_LOG)
SMAP(map_log1p, R_LOG1P)
#endif

void op_gemm(bool ta, bool tb, size_t m, size_t n, size_t k, vb_real alpha,
	     const vb_real *a, size_t lda, const vb_real *b, size_t ldb,
	     vb_real beta, vb_real *c, size_t ldc)
{
	if (m == 0 || n == 0)
		return;
	if (k == 0) {
		for (size_t i = 0; i < m; i++)
			for (size_t j = 0; j < n; j++)
				c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j];
		return;
	}
#ifndef VB_DOUBLE
	/* one thread pool: with OpenMP threads, products run on them too; a
	 * failure here can only be a leading dimension no caller passes, and
	 * then OpenBLAS computes the same product */
	if (par_threads() > 1 &&
	    conv_dnnl_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c,
			    ldc, NULL) == VB_OK)
		return;
#endif
	GEMM(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
	     tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, alpha, a,
	     (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

static double seconds(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

double op_gemm_peak_gflops(size_t n, int reps)
{
	vb_real *a = calloc(n * n, sizeof *a), *b = calloc(n * n, sizeof *b);
	vb_real *c = calloc(n * n, sizeof *c);
	double best = 0;
	if (a && b && c) {
		for (size_t i = 0; i < n * n; i++) {
			a[i] = (vb_real)(0.001 * (double)(i % 13));
			b[i] = (vb_real)(0.001 * (double)(i % 7));
		}
		for (int r = 0; r < reps; r++) {
			double t = seconds(), gf;
			op_gemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n);
			t = seconds() - t;
			gf = 2.0 * (double)n * (double)n * (double)n / t / 1e9;
			best = gf > best ? gf : best;
		}
	}
	free(a);
	free(b);
	free(c);
	return best;
}

static bool any_null2(struct graph_node *a, struct graph_node *b)
{
	return !a || !b;
}

/* ------------------------------------------------------------------ */
/* matmul */

static void matmul_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	struct tensor *gb = graph_input_grad(g, n, 1);
	const vb_real *A = n->in[0]->value.data, *B = n->in[1]->value.data;
	const vb_real *G = n->grad.data;
	bool ta = n->i[0], tb = n->i[1];
	size_t m, k, nn;
	op_impl_product_dims(n, 0, &m, &k, &nn);
	size_t lda = n->in[0]->value.shape[1], ldb = n->in[1]->value.shape[1];
	/* C = op(A) op(B); dop(A) = G op(B)^T, dop(B) = op(A)^T G. */
	if (ga) {
		if (!ta) /* dA (m,k) = G (m,n) op(B)^T */
			op_gemm(false, !tb, m, k, nn, 1, G, nn, B, ldb, 1,
				ga->data, lda);
		else /* dA (k,m) = op(B) (k,n) G^T */
			op_gemm(tb, true, k, m, nn, 1, B, ldb, G, nn, 1,
				ga->data, lda);
	}
	if (gb) {
		if (!tb) /* dB (k,n) = op(A)^T (k,m) G (m,n) */
			op_gemm(!ta, false, k, nn, m, 1, A, lda, G, nn, 1,
				gb->data, ldb);
		else /* dB (n,k) = G^T (n,m) op(A) (m,k) */
			op_gemm(true, ta, nn, k, m, 1, G, nn, A, lda, 1,
				gb->data, ldb);
	}
}

static void matmul_vjp(struct graph *g, struct graph_node *n,
		       struct graph_node *G, struct graph_node **gin)
{
	struct graph_node *A = n->in[0], *B = n->in[1];
	bool ta = n->i[0], tb = n->i[1];
	if (graph_input_active(n, 0)) {
		if (!ta)
			gin[0] = op_matmul(g, "grad.matmul", G, B, false, !tb);
		else
			gin[0] = op_matmul(g, "grad.matmul", B, G, tb, true);
	}
	if (graph_input_active(n, 1)) {
		if (!tb)
			gin[1] = op_matmul(g, "grad.matmul", A, G, !ta, false);
		else
			gin[1] = op_matmul(g, "grad.matmul", G, A, true, ta);
	}
}

static const struct graph_op OP_MATMUL = {"matmul", matmul_backward,
					  matmul_vjp};

struct graph_node *op_matmul(struct graph *g, const char *name,
			     struct graph_node *a, struct graph_node *b,
			     bool ta, bool tb)
{
	struct graph_node *in[2] = {a, b}, *n;
	size_t m, k, k2, nn, shape[2];
	if (any_null2(a, b))
		return NULL;
	if (a->value.ndim != 2 || b->value.ndim != 2)
		return op_impl_shape_fail(g, "ops", "matmul", name, a, b);
	m = ta ? a->value.shape[1] : a->value.shape[0];
	k = ta ? a->value.shape[0] : a->value.shape[1];
	k2 = tb ? b->value.shape[1] : b->value.shape[0];
	nn = tb ? b->value.shape[0] : b->value.shape[1];
	if (k != k2)
		return op_impl_shape_fail(g, "ops", "matmul", name, a, b);
	shape[0] = m;
	shape[1] = nn;
	n = graph_op_node(g, &OP_MATMUL, name, in, 2, 2, shape);
	if (!n)
		return NULL;
	n->i[0] = ta;
	n->i[1] = tb;
	op_gemm(ta, tb, m, nn, k, 1, a->value.data, a->value.shape[1],
		b->value.data, b->value.shape[1], 0, n->value.data, nn);
	return graph_node_done(g, n);
}

/* ------------------------------------------------------------------ */
/* linear: y = x w^T + b */

static void linear_backward(struct graph *g, struct graph_node *n)
{
	const struct tensor *x = &n->in[0]->value, *w = &n->in[1]->value;
	size_t B = tensor_rows(x), in = w->shape[1], out = w->shape[0];
	const vb_real *G = n->grad.data;
	struct tensor *gx = graph_input_grad(g, n, 0);
	struct tensor *gw = graph_input_grad(g, n, 1);
	struct tensor *gb = n->n_in > 2 ? graph_input_grad(g, n, 2) : NULL;
	if (gx) /* dx (B,in) += G (B,out) w (out,in) */
		op_gemm(false, false, B, in, out, 1, G, out, w->data, in, 1,
			gx->data, in);
	if (gw) /* dw (out,in) += G^T (out,B) x (B,in) */
		op_gemm(true, false, out, in, B, 1, G, out, x->data, in, 1,
			gw->data, in);
	if (gb) {
		for (size_t j = 0; j < out; j++) {
			double s = 0;
			for (size_t b = 0; b < B; b++)
				s += G[b * out + j];
			gb->data[j] += (vb_real)s;
		}
	}
}

static void linear_vjp(struct graph *g, struct graph_node *n,
		       struct graph_node *G, struct graph_node **gin)
{
	struct graph_node *x = n->in[0], *w = n->in[1];
	if (graph_input_active(n, 0)) {
		struct graph_node *gx = op_matmul(g, "grad.linear.x", G, w,
						  false, false);
		gin[0] = x->value.ndim == 2
			? gx
			: op_reshape(g, "grad.linear.x", gx, x->value.ndim,
				     x->value.shape);
	}
	if (graph_input_active(n, 1)) {
		struct graph_node *x2 = x->value.ndim == 2
			? x
			: op_reshape(g, "grad.linear.flat", x, 2,
				     (size_t[2]){tensor_rows(&x->value),
						 tensor_cols(&x->value)});
		gin[1] = op_matmul(g, "grad.linear.w", G, x2, true, false);
	}
	if (n->n_in > 2 && graph_input_active(n, 2))
		gin[2] = op_sum_cols(g, "grad.linear.b", G);
}

static const struct graph_op OP_LINEAR = {"linear", linear_backward,
					  linear_vjp};

struct graph_node *op_linear(struct graph *g, const char *name,
			     struct graph_node *x, struct graph_node *w,
			     struct graph_node *b)
{
	struct graph_node *in[3] = {x, w, b}, *n;
	size_t B, nin, nout, shape[2];
	if (any_null2(x, w))
		return NULL;
	B = tensor_rows(&x->value);
	nin = tensor_cols(&x->value);
	if (w->value.ndim != 2 || w->value.shape[1] != nin)
		return op_impl_shape_fail(g, "ops", "linear", name, x, w);
	nout = w->value.shape[0];
	if (b && (b->value.n != nout))
		return op_impl_shape_fail(g, "ops", "linear", name, w, b);
	shape[0] = B;
	shape[1] = nout;
	n = graph_op_node(g, &OP_LINEAR, name, in, b ? 3 : 2, 2, shape);
	if (!n)
		return NULL;
	vb_real *y = n->value.data;
	if (b) {
		for (size_t r = 0; r < B; r++)
			memcpy(y + r * nout, b->value.data,
			       nout * sizeof(vb_real));
	}
	op_gemm(false, true, B, nout, nin, 1, x->value.data, nin,
		w->value.data, nin, b ? 1 : 0, y, nout);
	return graph_node_done(g, n);
}

/* ------------------------------------------------------------------ */
/* elementwise unary */

/* rule: GRAPH_LAYOUT_ELEM for the ops that may sit between two oneDNN
 * convolutions (relu, relu_mask, add, mul: their forward loops are
 * elementwise, their backward kernels read the gradient's layout), PLAIN
 * for the rest. */
static struct graph_node *unary_node_layout(struct graph *g,
					    const struct graph_op *op,
					    enum graph_layout_rule rule,
					    const char *name,
					    struct graph_node *a)
{
	struct graph_node *in[1] = {a};
	if (!a)
		return NULL;
	return graph_op_node_layout(g, op, rule, name, in, 1, a->value.ndim,
				    a->value.shape);
}

static struct graph_node *unary_node(struct graph *g,
				     const struct graph_op *op,
				     const char *name, struct graph_node *a)
{
	return unary_node_layout(g, op, GRAPH_LAYOUT_PLAIN, name, a);
}

/* relu */
/* Elementwise backward kernels of GRAPH_LAYOUT_ELEM ops read their
 * operands in the layout of the gradient they accumulate into (a value
 * made plain after the op ran leaves the two differing): converted
 * copies in arena scratch, given back, when they differ. */
static void relu_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	struct graph_mark mk;
	const vb_real *x, *G;
	if (!ga)
		return;
	mk = graph_mark(g);
	x = graph_in_layout(g, &n->in[0]->value, ga->layout);
	G = x ? graph_in_layout(g, &n->grad, ga->layout) : NULL;
	if (G) {
		PAR_FOR(n->value.n)
		for (size_t i = 0; i < n->value.n; i++)
			ga->data[i] += x[i] > 0 ? G[i] : 0;
	}
	graph_release(g, mk);
}

static void relu_vjp(struct graph *g, struct graph_node *n,
		     struct graph_node *G, struct graph_node **gin)
{
	if (graph_input_active(n, 0))
		gin[0] = op_mul(g, "grad.relu", G,
				op_relu_mask(g, "grad.relu.mask", n->in[0]));
}

static const struct graph_op OP_RELU = {"relu", relu_backward, relu_vjp};

struct graph_node *op_relu(struct graph *g, const char *name,
			   struct graph_node *a)
{
	struct graph_node *n = unary_node_layout(g, &OP_RELU,
						 GRAPH_LAYOUT_ELEM, name, a);
	if (!n)
		return NULL;
	const vb_real *x = a->value.data;
	vb_real *y = n->value.data;
	/* PyTorch's relu keeps NaN (clamp_min semantics): x > 0 ? x : 0
	 * would turn NaN into 0 and hide it from the guard. */
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++)
		y[i] = x[i] > 0 ? x[i] : (x[i] != x[i] ? x[i] : 0);
	return graph_node_done(g, n);
}

/* clamp: f[0] = lo, f[1] = hi */
static bool clamp_inside(vb_real x, double lo, double hi)
{
	return (double)x >= lo && (double)x <= hi;
}

static const struct graph_op OP_CLAMP_MASK = {"clamp_mask", NULL, NULL};

static void clamp_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	const vb_real *x = n->in[0]->value.data, *G = n->grad.data;
	if (!ga)
		return;
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++)
		if (clamp_inside(x[i], n->f[0], n->f[1]))
			ga->data[i] += G[i];
}

static void clamp_vjp(struct graph *g, struct graph_node *n,
		      struct graph_node *G, struct graph_node **gin)
{
	struct graph_node *in[1] = {n->in[0]}, *mask;
	if (!graph_input_active(n, 0))
		return;
	mask = graph_op_node(g, &OP_CLAMP_MASK, "grad.clamp.mask", in, 1,
			     n->value.ndim, n->value.shape);
	if (!mask)
		return;
	PAR_FOR(mask->value.n)
	for (size_t i = 0; i < mask->value.n; i++)
		mask->value.data[i] =
			clamp_inside(in[0]->value.data[i], n->f[0], n->f[1]);
	gin[0] = op_mul(g, "grad.clamp", G, graph_node_done(g, mask));
}

static const struct graph_op OP_CLAMP = {"clamp", clamp_backward, clamp_vjp};

struct graph_node *op_clamp(struct graph *g, const char *name,
			    struct graph_node *a, double lo, double hi)
{
	struct graph_node *n = unary_node(g, &OP_CLAMP, name, a);
	if (!n)
		return NULL;
	n->f[0] = lo;
	n->f[1] = hi;
	vb_real l = (vb_real)lo, h = (vb_real)hi;
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++) {
		vb_real x = a->value.data[i];
		n->value.data[i] = x < l ? l : (x > h ? h : x);
	}
	return graph_node_done(g, n);
}

static const struct graph_op OP_RELU_MASK = {"relu_mask", NULL, NULL};

struct graph_node *op_relu_mask(struct graph *g, const char *name,
				struct graph_node *a)
{
	struct graph_node *n = unary_node_layout(g, &OP_RELU_MASK,
						 GRAPH_LAYOUT_ELEM, name, a);
	if (!n)
		return NULL;
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++)
		n->value.data[i] = a->value.data[i] > 0 ? 1 : 0;
	return graph_node_done(g, n);
}

/* sigmoid: y = 1 / (1 + exp(-x)), dy/dx = y (1 - y) */
static void sigmoid_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	const vb_real *y = n->value.data, *G = n->grad.data;
	if (!ga)
		return;
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++)
		ga->data[i] += G[i] * ((1 - y[i]) * y[i]);
}

static void sigmoid_vjp(struct graph *g, struct graph_node *n,
			struct graph_node *G, struct graph_node **gin)
{
	if (!graph_input_active(n, 0))
		return;
	struct graph_node *one_minus = op_add_scalar(
		g, "grad.sigmoid.1my", op_neg(g, "grad.sigmoid.neg", n), 1);
	gin[0] = op_mul(g, "grad.sigmoid", G,
			op_mul(g, "grad.sigmoid.dy", one_minus, n));
}

static const struct graph_op OP_SIGMOID = {"sigmoid", sigmoid_backward,
					   sigmoid_vjp};

struct graph_node *op_sigmoid(struct graph *g, const char *name,
			      struct graph_node *a)
{
	struct graph_node *n = unary_node(g, &OP_SIGMOID, name, a);
	if (!n)
		return NULL;
	const vb_real *x = a->value.data;
	vb_real *y = n->value.data;
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++)
		y[i] = -x[i];
	map_exp(y, y, n->value.n);
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++)
		y[i] = 1 / (1 + y[i]);
	return graph_node_done(g, n);
}

/* softplus, PyTorch beta 1 threshold 20 */
#define SOFTPLUS_THRESHOLD 20

static void softplus_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	const vb_real *x = n->in[0]->value.data, *G = n->grad.data;
	if (!ga)
		return;
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++) {
		vb_real z = R_EXP(x[i]);
		ga->data[i] += x[i] > SOFTPLUS_THRESHOLD ? G[i]
							 : G[i] * z / (z + 1);
	}
}

static void softplus_vjp(struct graph *g, struct graph_node *n,
			 struct graph_node *G, struct graph_node **gin)
{
	/* d softplus = sigmoid(x); above the threshold PyTorch uses 1, which
	 * sigmoid equals to within 2e-9 (exactly, in float). */
	if (graph_input_active(n, 0))
		gin[0] = op_mul(g, "grad.softplus", G,
				op_sigmoid(g, "grad.softplus.sig", n->in[0]));
}

static const struct graph_op OP_SOFTPLUS = {"softplus", softplus_backward,
					    softplus_vjp};

struct graph_node *op_softplus(struct graph *g, const char *name,
			       struct graph_node *a)
{
	struct graph_node *n = unary_node(g, &OP_SOFTPLUS, name, a);
	if (!n)
		return NULL;
	const vb_real *x = a->value.data;
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++)
		n->value.data[i] = x[i] > SOFTPLUS_THRESHOLD
					   ? x[i]
					   : R_LOG1P(R_EXP(x[i]));
	return graph_node_done(g, n);
}

/* exp */
static void exp_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	const vb_real *y = n->value.data, *G = n->grad.data;
	if (!ga)
		return;
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++)
		ga->data[i] += G[i] * y[i];
}

static void exp_vjp(struct graph *g, struct graph_node *n,
		    struct graph_node *G, struct graph_node **gin)
{
	if (graph_input_active(n, 0))
		gin[0] = op_mul(g, "grad.exp", G, n);
}

static const struct graph_op OP_EXP = {"exp", exp_backward, exp_vjp};

struct graph_node *op_exp(struct graph *g, const char *name,
			  struct graph_node *a)
{
	struct graph_node *n = unary_node(g, &OP_EXP, name, a);
	if (!n)
		return NULL;
	map_exp(a->value.data, n->value.data, n->value.n);
	return graph_node_done(g, n);
}

/* log */
static void log_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	const vb_real *x = n->in[0]->value.data, *G = n->grad.data;
	if (!ga)
		return;
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++)
		ga->data[i] += G[i] / x[i];
}

static void log_vjp(struct graph *g, struct graph_node *n,
		    struct graph_node *G, struct graph_node **gin)
{
	if (graph_input_active(n, 0))
		gin[0] = op_div(g, "grad.log", G, n->in[0]);
}

static const struct graph_op OP_LOG = {"log", log_backward, log_vjp};

struct graph_node *op_log(struct graph *g, const char *name,
			  struct graph_node *a)
{
	struct graph_node *n = unary_node(g, &OP_LOG, name, a);
	if (!n)
		return NULL;
	map_log(a->value.data, n->value.data, n->value.n);
	return graph_node_done(g, n);
}

/* square */
static void square_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	const vb_real *x = n->in[0]->value.data, *G = n->grad.data;
	if (!ga)
		return;
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++)
		ga->data[i] += G[i] * (2 * x[i]);
}

static void square_vjp(struct graph *g, struct graph_node *n,
		       struct graph_node *G, struct graph_node **gin)
{
	if (graph_input_active(n, 0))
		gin[0] = op_mul(g, "grad.square", G,
				op_scale(g, "grad.square.2x", n->in[0], 2));
}

static const struct graph_op OP_SQUARE = {"square", square_backward,
					  square_vjp};

struct graph_node *op_square(struct graph *g, const char *name,
			     struct graph_node *a)
{
	struct graph_node *n = unary_node(g, &OP_SQUARE, name, a);
	if (!n)
		return NULL;
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++)
		n->value.data[i] = a->value.data[i] * a->value.data[i];
	return graph_node_done(g, n);
}

/* neg */
static void neg_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	if (!ga)
		return;
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++)
		ga->data[i] -= n->grad.data[i];
}

static void neg_vjp(struct graph *g, struct graph_node *n,
		    struct graph_node *G, struct graph_node **gin)
{
	if (graph_input_active(n, 0))
		gin[0] = op_neg(g, "grad.neg", G);
}

static const struct graph_op OP_NEG = {"neg", neg_backward, neg_vjp};

struct graph_node *op_neg(struct graph *g, const char *name,
			  struct graph_node *a)
{
	struct graph_node *n = unary_node(g, &OP_NEG, name, a);
	if (!n)
		return NULL;
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++)
		n->value.data[i] = -a->value.data[i];
	return graph_node_done(g, n);
}

/* scale: a * s (s in f[0]) */
static void scale_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	vb_real s = (vb_real)n->f[0];
	if (!ga)
		return;
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++)
		ga->data[i] += n->grad.data[i] * s;
}

static void scale_vjp(struct graph *g, struct graph_node *n,
		      struct graph_node *G, struct graph_node **gin)
{
	if (graph_input_active(n, 0))
		gin[0] = op_scale(g, "grad.scale", G, n->f[0]);
}

static const struct graph_op OP_SCALE = {"scale", scale_backward, scale_vjp};

struct graph_node *op_scale(struct graph *g, const char *name,
			    struct graph_node *a, double s)
{
	struct graph_node *n = unary_node(g, &OP_SCALE, name, a);
	if (!n)
		return NULL;
	n->f[0] = s;
	vb_real sr = (vb_real)s;
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++)
		n->value.data[i] = a->value.data[i] * sr;
	return graph_node_done(g, n);
}

/* add_scalar: a + s */
static const struct graph_op OP_ADD_SCALAR = {
	"add_scalar", op_impl_pass_backward, op_impl_pass_vjp};

struct graph_node *op_add_scalar(struct graph *g, const char *name,
				 struct graph_node *a, double s)
{
	struct graph_node *n = unary_node(g, &OP_ADD_SCALAR, name, a);
	if (!n)
		return NULL;
	n->f[0] = s;
	vb_real sr = (vb_real)s;
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++)
		n->value.data[i] = a->value.data[i] + sr;
	return graph_node_done(g, n);
}

/* ------------------------------------------------------------------ */
/* elementwise binary, same shape */

static struct graph_node *binary_node_layout(struct graph *g,
					     const struct graph_op *op,
					     enum graph_layout_rule rule,
					     const char *name,
					     struct graph_node *a,
					     struct graph_node *b)
{
	struct graph_node *in[2] = {a, b};
	if (any_null2(a, b))
		return NULL;
	if (a->value.n != b->value.n)
		return op_impl_shape_fail(g, "ops", op->name, name, a, b);
	return graph_op_node_layout(g, op, rule, name, in, 2, a->value.ndim,
				    a->value.shape);
}

static struct graph_node *binary_node(struct graph *g,
				      const struct graph_op *op,
				      const char *name, struct graph_node *a,
				      struct graph_node *b)
{
	return binary_node_layout(g, op, GRAPH_LAYOUT_PLAIN, name, a, b);
}

static void add_backward(struct graph *g, struct graph_node *n)
{
	for (int k = 0; k < 2; k++) {
		struct tensor *gk = graph_input_grad(g, n, k);
		struct graph_mark mk;
		const vb_real *G;
		if (!gk)
			continue;
		mk = graph_mark(g);
		G = graph_in_layout(g, &n->grad, gk->layout);
		if (G) {
			PAR_FOR(n->value.n)
			for (size_t i = 0; i < n->value.n; i++)
				gk->data[i] += G[i];
		}
		graph_release(g, mk);
	}
}

static void add_vjp(struct graph *g, struct graph_node *n,
		    struct graph_node *G, struct graph_node **gin)
{
	(void)g;
	if (graph_input_active(n, 0))
		gin[0] = G;
	if (graph_input_active(n, 1))
		gin[1] = G;
}

static const struct graph_op OP_ADD = {"add", add_backward, add_vjp};

struct graph_node *op_add(struct graph *g, const char *name,
			  struct graph_node *a, struct graph_node *b)
{
	struct graph_node *n = binary_node_layout(g, &OP_ADD,
						  GRAPH_LAYOUT_ELEM, name, a, b);
	if (!n)
		return NULL;
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++)
		n->value.data[i] = a->value.data[i] + b->value.data[i];
	return graph_node_done(g, n);
}

static void sub_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	struct tensor *gb = graph_input_grad(g, n, 1);
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++) {
		if (ga)
			ga->data[i] += n->grad.data[i];
		if (gb)
			gb->data[i] -= n->grad.data[i];
	}
}

static void sub_vjp(struct graph *g, struct graph_node *n,
		    struct graph_node *G, struct graph_node **gin)
{
	if (graph_input_active(n, 0))
		gin[0] = G;
	if (graph_input_active(n, 1))
		gin[1] = op_neg(g, "grad.sub", G);
}

static const struct graph_op OP_SUB = {"sub", sub_backward, sub_vjp};

struct graph_node *op_sub(struct graph *g, const char *name,
			  struct graph_node *a, struct graph_node *b)
{
	struct graph_node *n = binary_node(g, &OP_SUB, name, a, b);
	if (!n)
		return NULL;
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++)
		n->value.data[i] = a->value.data[i] - b->value.data[i];
	return graph_node_done(g, n);
}

static void mul_backward(struct graph *g, struct graph_node *n)
{
	/* d in_k += G * in_(1-k), in the layout of in_k's gradient */
	for (int k = 0; k < 2; k++) {
		struct tensor *gk = graph_input_grad(g, n, k);
		struct graph_mark mk;
		const vb_real *o, *G;
		if (!gk)
			continue;
		mk = graph_mark(g);
		o = graph_in_layout(g, &n->in[1 - k]->value, gk->layout);
		G = o ? graph_in_layout(g, &n->grad, gk->layout) : NULL;
		if (G) {
			PAR_FOR(n->value.n)
			for (size_t i = 0; i < n->value.n; i++)
				gk->data[i] += G[i] * o[i];
		}
		graph_release(g, mk);
	}
}

static void mul_vjp(struct graph *g, struct graph_node *n,
		    struct graph_node *G, struct graph_node **gin)
{
	if (graph_input_active(n, 0))
		gin[0] = op_mul(g, "grad.mul", G, n->in[1]);
	if (graph_input_active(n, 1))
		gin[1] = op_mul(g, "grad.mul", G, n->in[0]);
}

static const struct graph_op OP_MUL = {"mul", mul_backward, mul_vjp};

struct graph_node *op_mul(struct graph *g, const char *name,
			  struct graph_node *a, struct graph_node *b)
{
	struct graph_node *n = binary_node_layout(g, &OP_MUL,
						  GRAPH_LAYOUT_ELEM, name, a, b);
	if (!n)
		return NULL;
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++)
		n->value.data[i] = a->value.data[i] * b->value.data[i];
	return graph_node_done(g, n);
}

static void div_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	struct tensor *gb = graph_input_grad(g, n, 1);
	const vb_real *b = n->in[1]->value.data, *y = n->value.data;
	const vb_real *G = n->grad.data;
	if (ga)
		PAR_FOR(n->value.n)
		for (size_t i = 0; i < n->value.n; i++)
			ga->data[i] += G[i] / b[i];
	if (gb) /* d(a/b)/db = -a/b^2 = -y/b */
		PAR_FOR(n->value.n)
		for (size_t i = 0; i < n->value.n; i++)
			gb->data[i] -= G[i] * y[i] / b[i];
}

static void div_vjp(struct graph *g, struct graph_node *n,
		    struct graph_node *G, struct graph_node **gin)
{
	if (graph_input_active(n, 0))
		gin[0] = op_div(g, "grad.div.a", G, n->in[1]);
	if (graph_input_active(n, 1))
		gin[1] = op_neg(g, "grad.div.b",
				op_div(g, "grad.div.b", op_mul(g, "grad.div.b",
							      G, n),
				       n->in[1]));
}

static const struct graph_op OP_DIV = {"div", div_backward, div_vjp};

struct graph_node *op_div(struct graph *g, const char *name,
			  struct graph_node *a, struct graph_node *b)
{
	struct graph_node *n = binary_node(g, &OP_DIV, name, a, b);
	if (!n)
		return NULL;
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++)
		n->value.data[i] = a->value.data[i] / b->value.data[i];
	return graph_node_done(g, n);
}

/* ------------------------------------------------------------------ */
/* broadcasts */

static void mul_rows_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	struct tensor *gs = graph_input_grad(g, n, 1);
	const vb_real *a = n->in[0]->value.data, *s = n->in[1]->value.data;
	const vb_real *G = n->grad.data;
	size_t B = tensor_rows(&n->value), C = tensor_cols(&n->value);
	for (size_t r = 0; r < B; r++) {
		const vb_real *Gr = G + r * C, *ar = a + r * C;
		if (ga)
			for (size_t c = 0; c < C; c++)
				ga->data[r * C + c] += Gr[c] * s[r];
		if (gs) {
			double acc = 0;
			for (size_t c = 0; c < C; c++)
				acc += (double)Gr[c] * ar[c];
			gs->data[r] += (vb_real)acc;
		}
	}
}

static void mul_rows_vjp(struct graph *g, struct graph_node *n,
			 struct graph_node *G, struct graph_node **gin)
{
	if (graph_input_active(n, 0))
		gin[0] = op_mul_rows(g, "grad.mul_rows.a", G, n->in[1]);
	if (graph_input_active(n, 1))
		gin[1] = op_sum_rows(g, "grad.mul_rows.s",
				     op_mul(g, "grad.mul_rows.s", G,
					    n->in[0]));
}

static const struct graph_op OP_MUL_ROWS = {"mul_rows", mul_rows_backward,
					    mul_rows_vjp};

struct graph_node *op_mul_rows(struct graph *g, const char *name,
			       struct graph_node *a, struct graph_node *s)
{
	struct graph_node *in[2] = {a, s}, *n;
	if (any_null2(a, s))
		return NULL;
	if (s->value.n != tensor_rows(&a->value))
		return op_impl_shape_fail(g, "ops", "mul_rows", name, a, s);
	n = graph_op_node(g, &OP_MUL_ROWS, name, in, 2, a->value.ndim,
			  a->value.shape);
	if (!n)
		return NULL;
	size_t B = tensor_rows(&a->value), C = tensor_cols(&a->value);
	for (size_t r = 0; r < B; r++)
		for (size_t c = 0; c < C; c++)
			n->value.data[r * C + c] =
				a->value.data[r * C + c] * s->value.data[r];
	return graph_node_done(g, n);
}

static void add_bias_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	struct tensor *gb = graph_input_grad(g, n, 1);
	size_t B = tensor_rows(&n->value), C = tensor_cols(&n->value);
	const vb_real *G = n->grad.data;
	if (ga)
		PAR_FOR(n->value.n)
		for (size_t i = 0; i < n->value.n; i++)
			ga->data[i] += G[i];
	if (gb)
		for (size_t c = 0; c < C; c++) {
			double acc = 0;
			for (size_t r = 0; r < B; r++)
				acc += G[r * C + c];
			gb->data[c] += (vb_real)acc;
		}
}

static void add_bias_vjp(struct graph *g, struct graph_node *n,
			 struct graph_node *G, struct graph_node **gin)
{
	if (graph_input_active(n, 0))
		gin[0] = G;
	if (graph_input_active(n, 1))
		gin[1] = op_sum_cols(g, "grad.add_bias", G);
}

static const struct graph_op OP_ADD_BIAS = {"add_bias", add_bias_backward,
					    add_bias_vjp};

struct graph_node *op_add_bias(struct graph *g, const char *name,
			       struct graph_node *a, struct graph_node *b)
{
	struct graph_node *in[2] = {a, b}, *n;
	if (any_null2(a, b))
		return NULL;
	size_t B = tensor_rows(&a->value), C = tensor_cols(&a->value);
	if (b->value.n != C)
		return op_impl_shape_fail(g, "ops", "add_bias", name, a, b);
	n = graph_op_node(g, &OP_ADD_BIAS, name, in, 2, a->value.ndim,
			  a->value.shape);
	if (!n)
		return NULL;
	for (size_t r = 0; r < B; r++)
		for (size_t c = 0; c < C; c++)
			n->value.data[r * C + c] =
				a->value.data[r * C + c] + b->value.data[c];
	return graph_node_done(g, n);
}

static void expand_rows_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *gs = graph_input_grad(g, n, 0);
	size_t B = tensor_rows(&n->value), C = tensor_cols(&n->value);
	if (!gs)
		return;
	for (size_t r = 0; r < B; r++) {
		double acc = 0;
		for (size_t c = 0; c < C; c++)
			acc += n->grad.data[r * C + c];
		gs->data[r] += (vb_real)acc;
	}
}

static void expand_rows_vjp(struct graph *g, struct graph_node *n,
			    struct graph_node *G, struct graph_node **gin)
{
	if (graph_input_active(n, 0))
		gin[0] = op_reshape(g, "grad.expand_rows",
				    op_sum_rows(g, "grad.expand_rows", G),
				    n->in[0]->value.ndim,
				    n->in[0]->value.shape);
}

static const struct graph_op OP_EXPAND_ROWS = {
	"expand_rows", expand_rows_backward, expand_rows_vjp};

struct graph_node *op_expand_rows(struct graph *g, const char *name,
				  struct graph_node *s, size_t n_cols)
{
	struct graph_node *in[1] = {s}, *n;
	size_t shape[2];
	if (!s)
		return NULL;
	shape[0] = s->value.n;
	shape[1] = n_cols;
	n = graph_op_node(g, &OP_EXPAND_ROWS, name, in, 1, 2, shape);
	if (!n)
		return NULL;
	for (size_t r = 0; r < shape[0]; r++)
		for (size_t c = 0; c < n_cols; c++)
			n->value.data[r * n_cols + c] = s->value.data[r];
	return graph_node_done(g, n);
}

static void repeat_rows_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *gv = graph_input_grad(g, n, 0);
	size_t B = tensor_rows(&n->value), C = tensor_cols(&n->value);
	if (!gv)
		return;
	for (size_t c = 0; c < C; c++) {
		double acc = 0;
		for (size_t r = 0; r < B; r++)
			acc += n->grad.data[r * C + c];
		gv->data[c] += (vb_real)acc;
	}
}

static void repeat_rows_vjp(struct graph *g, struct graph_node *n,
			    struct graph_node *G, struct graph_node **gin)
{
	if (graph_input_active(n, 0))
		gin[0] = op_reshape(g, "grad.repeat_rows",
				    op_sum_cols(g, "grad.repeat_rows", G),
				    n->in[0]->value.ndim,
				    n->in[0]->value.shape);
}

static const struct graph_op OP_REPEAT_ROWS = {
	"repeat_rows", repeat_rows_backward, repeat_rows_vjp};

struct graph_node *op_repeat_rows(struct graph *g, const char *name,
				  struct graph_node *v, size_t n_rows)
{
	struct graph_node *in[1] = {v}, *n;
	size_t shape[2];
	if (!v)
		return NULL;
	shape[0] = n_rows;
	shape[1] = v->value.n;
	n = graph_op_node(g, &OP_REPEAT_ROWS, name, in, 1, 2, shape);
	if (!n)
		return NULL;
	for (size_t r = 0; r < n_rows; r++)
		memcpy(n->value.data + r * shape[1], v->value.data,
		       shape[1] * sizeof(vb_real));
	return graph_node_done(g, n);
}

static void expand_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *gs = graph_input_grad(g, n, 0);
	double acc = 0;
	if (!gs)
		return;
	for (size_t i = 0; i < n->value.n; i++)
		acc += n->grad.data[i];
	gs->data[0] += (vb_real)acc;
}

static void expand_vjp(struct graph *g, struct graph_node *n,
		       struct graph_node *G, struct graph_node **gin)
{
	if (graph_input_active(n, 0))
		gin[0] = op_reshape(g, "grad.expand", op_sum(g, "grad.expand", G),
				    n->in[0]->value.ndim,
				    n->in[0]->value.shape);
}

static const struct graph_op OP_EXPAND = {"expand", expand_backward,
					  expand_vjp};

struct graph_node *op_expand(struct graph *g, const char *name,
			     struct graph_node *s, int ndim,
			     const size_t *shape)
{
	struct graph_node *in[1] = {s}, *n;
	if (!s)
		return NULL;
	if (s->value.n != 1)
		return op_impl_shape_fail(g, "ops", "expand", name, s, NULL);
	n = graph_op_node(g, &OP_EXPAND, name, in, 1, ndim, shape);
	if (!n)
		return NULL;
	tensor_fill(&n->value, s->value.data[0]);
	return graph_node_done(g, n);
}

static void reshape_vjp(struct graph *g, struct graph_node *n,
			struct graph_node *G, struct graph_node **gin)
{
	if (graph_input_active(n, 0))
		gin[0] = op_reshape(g, "grad.reshape", G, n->in[0]->value.ndim,
				    n->in[0]->value.shape);
}

/* reshape: the values in the same order, so the gradient passes through */
static const struct graph_op OP_RESHAPE = {"reshape", op_impl_pass_backward,
					   reshape_vjp};

struct graph_node *op_reshape(struct graph *g, const char *name,
			      struct graph_node *a, int ndim,
			      const size_t *shape)
{
	struct graph_node *in[1] = {a};
	struct tensor v;
	if (!a)
		return NULL;
	v = tensor_view(a->value.data, ndim, shape);
	if (v.n != a->value.n || ndim < 0 || ndim > TENSOR_MAX_DIM)
		return op_impl_shape_fail(g, "ops", "reshape", name, a, NULL);
	return graph_node_done(g, graph_op_view(g, &OP_RESHAPE, name, in, 1,
						v));
}

/* ------------------------------------------------------------------ */
/* reductions */

static void sum_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	vb_real G = n->grad.data[0] * (vb_real)n->f[0];
	if (!ga)
		return;
	PAR_FOR(ga->n)
	for (size_t i = 0; i < ga->n; i++)
		ga->data[i] += G;
}

static void sum_vjp(struct graph *g, struct graph_node *n,
		    struct graph_node *G, struct graph_node **gin)
{
	struct graph_node *a = n->in[0], *e;
	if (!graph_input_active(n, 0))
		return;
	e = op_expand(g, "grad.sum", G, a->value.ndim, a->value.shape);
	gin[0] = n->f[0] == 1 ? e : op_scale(g, "grad.mean", e, n->f[0]);
}

static const struct graph_op OP_SUM = {"sum", sum_backward, sum_vjp};
static const struct graph_op OP_MEAN = {"mean", sum_backward, sum_vjp};

static struct graph_node *reduce_all(struct graph *g,
				     const struct graph_op *op,
				     const char *name, struct graph_node *a,
				     bool mean)
{
	struct graph_node *in[1] = {a}, *n;
	double acc = 0;
	if (!a)
		return NULL;
	n = graph_op_node(g, op, name, in, 1, 0, NULL);
	if (!n)
		return NULL;
	for (size_t i = 0; i < a->value.n; i++)
		acc += a->value.data[i];
	n->f[0] = mean ? 1.0 / (double)a->value.n : 1.0;
	n->value.data[0] = (vb_real)(mean ? acc / (double)a->value.n : acc);
	return graph_node_done(g, n);
}

struct graph_node *op_sum(struct graph *g, const char *name,
			  struct graph_node *a)
{
	return reduce_all(g, &OP_SUM, name, a, false);
}

struct graph_node *op_mean(struct graph *g, const char *name,
			   struct graph_node *a)
{
	return reduce_all(g, &OP_MEAN, name, a, true);
}

static void sum_rows_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	size_t B, C;
	if (!ga)
		return;
	B = tensor_rows(ga);
	C = tensor_cols(ga);
	for (size_t r = 0; r < B; r++)
		for (size_t c = 0; c < C; c++)
			ga->data[r * C + c] += n->grad.data[r];
}

static void sum_rows_vjp(struct graph *g, struct graph_node *n,
			 struct graph_node *G, struct graph_node **gin)
{
	struct graph_node *a = n->in[0];
	if (!graph_input_active(n, 0))
		return;
	gin[0] = op_reshape(g, "grad.sum_rows",
			    op_expand_rows(g, "grad.sum_rows", G,
					   tensor_cols(&a->value)),
			    a->value.ndim, a->value.shape);
}

static const struct graph_op OP_SUM_ROWS = {"sum_rows", sum_rows_backward,
					    sum_rows_vjp};

struct graph_node *op_sum_rows(struct graph *g, const char *name,
			       struct graph_node *a)
{
	struct graph_node *in[1] = {a}, *n;
	size_t shape[1];
	if (!a)
		return NULL;
	shape[0] = tensor_rows(&a->value);
	n = graph_op_node(g, &OP_SUM_ROWS, name, in, 1, 1, shape);
	if (!n)
		return NULL;
	size_t C = tensor_cols(&a->value);
	for (size_t r = 0; r < shape[0]; r++) {
		double acc = 0;
		for (size_t c = 0; c < C; c++)
			acc += a->value.data[r * C + c];
		n->value.data[r] = (vb_real)acc;
	}
	return graph_node_done(g, n);
}

static void sum_cols_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	size_t B, C;
	if (!ga)
		return;
	B = tensor_rows(ga);
	C = tensor_cols(ga);
	for (size_t r = 0; r < B; r++)
		for (size_t c = 0; c < C; c++)
			ga->data[r * C + c] += n->grad.data[c];
}

static void sum_cols_vjp(struct graph *g, struct graph_node *n,
			 struct graph_node *G, struct graph_node **gin)
{
	struct graph_node *a = n->in[0];
	if (!graph_input_active(n, 0))
		return;
	gin[0] = op_reshape(g, "grad.sum_cols",
			    op_repeat_rows(g, "grad.sum_cols", G,
					   tensor_rows(&a->value)),
			    a->value.ndim, a->value.shape);
}

static const struct graph_op OP_SUM_COLS = {"sum_cols", sum_cols_backward,
					    sum_cols_vjp};

struct graph_node *op_sum_cols(struct graph *g, const char *name,
			       struct graph_node *a)
{
	struct graph_node *in[1] = {a}, *n;
	size_t shape[1];
	if (!a)
		return NULL;
	size_t B = tensor_rows(&a->value);
	shape[0] = tensor_cols(&a->value);
	n = graph_op_node(g, &OP_SUM_COLS, name, in, 1, 1, shape);
	if (!n)
		return NULL;
	for (size_t c = 0; c < shape[0]; c++) {
		double acc = 0;
		for (size_t r = 0; r < B; r++)
			acc += a->value.data[r * shape[0] + c];
		n->value.data[c] = (vb_real)acc;
	}
	return graph_node_done(g, n);
}

/* ------------------------------------------------------------------ */
/* per-sample losses */

static struct graph_node *loss_node(struct graph *g,
				    const struct graph_op *op,
				    const char *name, struct graph_node *y,
				    struct graph_node *t)
{
	struct graph_node *in[2] = {y, t};
	size_t shape[1];
	if (any_null2(y, t))
		return NULL;
	if (y->value.n != t->value.n ||
	    tensor_rows(&y->value) != tensor_rows(&t->value))
		return op_impl_shape_fail(g, "ops", op->name, name, y, t);
	shape[0] = tensor_rows(&y->value);
	return graph_op_node(g, op, name, in, 2, 1, shape);
}

/* mse: r_b = 0.5 sum_p (y - x)^2 */
static void mse_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *gy = graph_input_grad(g, n, 0);
	struct tensor *gx = graph_input_grad(g, n, 1);
	const vb_real *y = n->in[0]->value.data, *x = n->in[1]->value.data;
	size_t B = n->value.n, C = tensor_cols(&n->in[0]->value);
	for (size_t r = 0; r < B; r++) {
		vb_real G = n->grad.data[r];
		for (size_t c = 0; c < C; c++) {
			size_t i = r * C + c;
			vb_real d = (y[i] - x[i]) * G;
			if (gy)
				gy->data[i] += d;
			if (gx)
				gx->data[i] -= d;
		}
	}
}

static void mse_vjp(struct graph *g, struct graph_node *n,
		    struct graph_node *G, struct graph_node **gin)
{
	struct graph_node *d = op_mul_rows(
		g, "grad.mse", op_sub(g, "grad.mse.diff", n->in[0], n->in[1]),
		G);
	if (graph_input_active(n, 0))
		gin[0] = d;
	if (graph_input_active(n, 1))
		gin[1] = op_neg(g, "grad.mse.x", d);
}

static const struct graph_op OP_MSE = {"mse", mse_backward, mse_vjp};

struct graph_node *op_mse(struct graph *g, const char *name,
			  struct graph_node *y, struct graph_node *x)
{
	struct graph_node *n = loss_node(g, &OP_MSE, name, y, x);
	if (!n)
		return NULL;
	size_t B = n->value.n, C = tensor_cols(&y->value);
	for (size_t r = 0; r < B; r++) {
		double acc = 0;
		for (size_t c = 0; c < C; c++) {
			vb_real d = y->value.data[r * C + c] -
				    x->value.data[r * C + c];
			acc += (double)(d * d);
		}
		n->value.data[r] = (vb_real)(0.5 * acc);
	}
	return graph_node_done(g, n);
}

/* bce (pythae / PyTorch binary_cross_entropy): per element
 * (t - 1) max(log1p(-y), c) - t max(log y, c); gradient wrt y
 * (y - t) / max((1 - y) y, eps). f[0] = c, f[1] = eps. */
static vb_real bce_dy(vb_real y, vb_real t, vb_real eps)
{
	vb_real den = (1 - y) * y;
	return (y - t) / (den > eps ? den : eps);
}

static void bce_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *gy = graph_input_grad(g, n, 0);
	struct tensor *gt = graph_input_grad(g, n, 1);
	const vb_real *y = n->in[0]->value.data, *t = n->in[1]->value.data;
	size_t B = n->value.n, C = tensor_cols(&n->in[0]->value);
	vb_real c0 = (vb_real)n->f[0], eps = (vb_real)n->f[1];
	for (size_t r = 0; r < B; r++) {
		vb_real G = n->grad.data[r];
		for (size_t c = 0; c < C; c++) {
			size_t i = r * C + c;
			if (gy)
				gy->data[i] += G * bce_dy(y[i], t[i], eps);
			if (gt) { /* d/dt = max(log1p(-y),c) - max(log y,c) */
				vb_real l1 = R_LOG1P(-y[i]), l0 = R_LOG(y[i]);
				l1 = l1 > c0 ? l1 : c0;
				l0 = l0 > c0 ? l0 : c0;
				gt->data[i] += G * (l1 - l0);
			}
		}
	}
}

/* bce_grad: the elementwise gradient (y - t) / max((1 - y) y, eps) as its
 * own node, so that the BCE's gradient can be used inside a graph. Its
 * own backward (d/dy of the clamped quotient) is first order only. */
static void bce_grad_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *gy = graph_input_grad(g, n, 0);
	struct tensor *gt = graph_input_grad(g, n, 1);
	const vb_real *y = n->in[0]->value.data, *t = n->in[1]->value.data;
	vb_real eps = (vb_real)n->f[1];
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++) {
		vb_real den = (1 - y[i]) * y[i];
		vb_real G = n->grad.data[i];
		if (den > eps) {
			if (gy) /* d/dy (y-t)/den = 1/den - (y-t)(1-2y)/den^2 */
				gy->data[i] += G * (1 / den - (y[i] - t[i]) *
								      (1 - 2 * y[i]) /
								      (den * den));
			if (gt)
				gt->data[i] -= G / den;
		} else {
			if (gy)
				gy->data[i] += G / eps;
			if (gt)
				gt->data[i] -= G / eps;
		}
	}
}

static const struct graph_op OP_BCE_GRAD = {"bce_grad", bce_grad_backward,
					    NULL};

static struct graph_node *bce_grad_node(struct graph *g, struct graph_node *y,
					struct graph_node *t, double eps)
{
	struct graph_node *in[2] = {y, t}, *n;
	n = graph_op_node(g, &OP_BCE_GRAD, "grad.bce", in, 2, y->value.ndim,
			  y->value.shape);
	if (!n)
		return NULL;
	n->f[1] = eps;
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++)
		n->value.data[i] = bce_dy(y->value.data[i], t->value.data[i],
					  (vb_real)eps);
	return graph_node_done(g, n);
}

static void bce_vjp(struct graph *g, struct graph_node *n,
		    struct graph_node *G, struct graph_node **gin)
{
	if (graph_input_active(n, 0))
		gin[0] = op_mul_rows(g, "grad.bce",
				     bce_grad_node(g, n->in[0], n->in[1],
						   n->f[1]),
				     G);
	if (graph_input_active(n, 1))
		graph_failf(g, VB_ERR_INTERNAL, "ops: bce %s: second-order "
			    "gradient with respect to the target is not "
			    "implemented", n->name);
}

static const struct graph_op OP_BCE = {"bce", bce_backward, bce_vjp};

struct graph_node *op_bce(struct graph *g, const char *name,
			  struct graph_node *y, struct graph_node *t,
			  double log_clamp, double denom_eps)
{
	struct graph_node *n = loss_node(g, &OP_BCE, name, y, t);
	vb_real *l0, *l1;
	if (!n)
		return NULL;
	n->f[0] = log_clamp;
	n->f[1] = denom_eps;
	size_t B = n->value.n, C = tensor_cols(&y->value);
	vb_real c0 = (vb_real)log_clamp;
	l0 = graph_alloc(g, 2 * C * sizeof *l0);
	if (!l0)
		return NULL;
	l1 = l0 + C;
	for (size_t r = 0; r < B; r++) {
		const vb_real *yr = y->value.data + r * C;
		const vb_real *tr = t->value.data + r * C;
		double acc = 0;
		for (size_t c = 0; c < C; c++)
			l1[c] = -yr[c];
		map_log1p(l1, l1, C);
		map_log(yr, l0, C);
		for (size_t c = 0; c < C; c++) {
			vb_real a1 = l1[c] > c0 ? l1[c] : c0;
			vb_real a0 = l0[c] > c0 ? l0[c] : c0;
			/* a NaN y fails both comparisons above: keep NaN */
			if (yr[c] != yr[c])
				a1 = a0 = yr[c];
			acc += (double)((tr[c] - 1) * a1 - tr[c] * a0);
		}
		n->value.data[r] = (vb_real)acc;
	}
	return graph_node_done(g, n);
}

/* bce from logits: max(l, 0) - l t + log1p(exp(-|l|)) */
static void bce_logits_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *gl = graph_input_grad(g, n, 0);
	struct tensor *gt = graph_input_grad(g, n, 1);
	const vb_real *l = n->in[0]->value.data, *t = n->in[1]->value.data;
	size_t B = n->value.n, C = tensor_cols(&n->in[0]->value);
	for (size_t r = 0; r < B; r++) {
		vb_real G = n->grad.data[r];
		for (size_t c = 0; c < C; c++) {
			size_t i = r * C + c;
			if (gl)
				gl->data[i] += G * (1 / (1 + R_EXP(-l[i])) - t[i]);
			if (gt)
				gt->data[i] -= G * l[i];
		}
	}
}

static void bce_logits_vjp(struct graph *g, struct graph_node *n,
			   struct graph_node *G, struct graph_node **gin)
{
	struct graph_node *l = n->in[0], *t = n->in[1];
	if (graph_input_active(n, 0))
		gin[0] = op_mul_rows(g, "grad.bce_logits",
				     op_sub(g, "grad.bce_logits",
					    op_sigmoid(g, "grad.bce_logits", l),
					    t),
				     G);
	if (graph_input_active(n, 1))
		gin[1] = op_neg(g, "grad.bce_logits.t",
				op_mul_rows(g, "grad.bce_logits.t", l, G));
}

static const struct graph_op OP_BCE_LOGITS = {"bce_logits",
					      bce_logits_backward,
					      bce_logits_vjp};

struct graph_node *op_bce_logits(struct graph *g, const char *name,
				 struct graph_node *l, struct graph_node *t)
{
	struct graph_node *n = loss_node(g, &OP_BCE_LOGITS, name, l, t);
	if (!n)
		return NULL;
	size_t B = n->value.n, C = tensor_cols(&l->value);
	for (size_t r = 0; r < B; r++) {
		double acc = 0;
		for (size_t c = 0; c < C; c++) {
			vb_real x = l->value.data[r * C + c];
			vb_real tt = t->value.data[r * C + c];
			vb_real ax = x < 0 ? -x : x;
			acc += (double)((x > 0 ? x : 0) - x * tt +
					R_LOG1P(R_EXP(-ax)));
		}
		n->value.data[r] = (vb_real)acc;
	}
	return graph_node_done(g, n);
}

/* ------------------------------------------------------------------ */

static const struct graph_op OP_FULL = {"full", NULL, NULL};

struct graph_node *op_full(struct graph *g, const char *name, int ndim,
			   const size_t *shape, double v)
{
	struct graph_node *n = graph_op_node(g, &OP_FULL, name, NULL, 0, ndim,
					     shape);
	if (!n)
		return NULL;
	n->kind = GRAPH_NODE_CONST;
	tensor_fill(&n->value, (vb_real)v);
	return graph_node_done(g, n);
}

/* Declared by OpenBLAS's cblas.h; repeated here so that a cblas.h from
 * another BLAS fails loudly at link time, not silently at compile time. */
char *openblas_get_corename(void);
int openblas_get_num_threads(void);
void openblas_set_num_threads(int n);

const char *op_blas_core(void)
{
	return openblas_get_corename();
}

int op_blas_threads(void)
{
	return openblas_get_num_threads();
}

void op_blas_set_threads(int n)
{
	openblas_set_num_threads(n);
}

void op_set_threads(int n)
{
	if (n < 1)
		n = 1;
#ifdef VB_DOUBLE
	openblas_set_num_threads(n);
	par_set_threads(1);
#else
	openblas_set_num_threads(1);
	conv_dnnl_set_threads(n);
	par_set_threads(n);
#endif
}

int op_threads(void)
{
#ifdef VB_DOUBLE
	return openblas_get_num_threads();
#else
	return par_threads();
#endif
}
