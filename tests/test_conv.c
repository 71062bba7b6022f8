/* test_conv (double build): conv2d, conv_transpose2d, their weight-gradient
 * op and the channel sum/broadcast against naive direct loops written here
 * (forward values), through the gradcheck harness (both backward paths,
 * Hessian-vector products) for the tutorial's kernel/stride/padding combos
 * and awkward ones, the shapes of rhvae.md 2.4, shape errors, and the
 * second-order path the RHVAE needs (a loss of dH/dz through a decoder). */
#include <check.h>
#include <float.h>
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
#error "test_conv checks gradients in the double build (vb_core_f64)"
#endif

#define ARENA_BYTES ((size_t)1 << 22)

/* ---- naive references (direct loops, PyTorch's definitions) ---- */

/* y[b][o][h][w] = bias[o] + sum_{c,i,j} x[b][c][h s - p + i][w s - p + j]
 * w[o][c][i][j]; mag gets sum of |terms| per output (for tolerances). */
static void ref_conv2d(const double *x, const double *w, const double *bias,
		       size_t B, size_t Ci, size_t H, size_t W, size_t Co,
		       size_t kh, size_t kw, long s, long p, size_t Ho,
		       size_t Wo, double *y, double *mag)
{
	for (size_t b = 0; b < B; b++)
		for (size_t o = 0; o < Co; o++)
			for (size_t oh = 0; oh < Ho; oh++)
				for (size_t ow = 0; ow < Wo; ow++) {
					double acc = bias ? bias[o] : 0;
					double m = fabs(acc);
					for (size_t c = 0; c < Ci; c++)
						for (size_t i = 0; i < kh; i++)
							for (size_t j = 0; j < kw; j++) {
								long ih = (long)oh * s - p + (long)i;
								long iw = (long)ow * s - p + (long)j;
								double t;
								if (ih < 0 || iw < 0 || ih >= (long)H ||
								    iw >= (long)W)
									continue;
								t = x[((b * Ci + c) * H + (size_t)ih) * W +
								      (size_t)iw] *
								    w[((o * Ci + c) * kh + i) * kw + j];
								acc += t;
								m += fabs(t);
							}
					size_t k = ((b * Co + o) * Ho + oh) * Wo + ow;
					y[k] = acc;
					mag[k] = m;
				}
}

/* Scatter form of the transposed convolution (PyTorch's definition):
 * every input pixel x[b][c][h][w] adds x w[c][o][i][j] to
 * y[b][o][h s - p + i][w s - p + j]. */
static void ref_conv_transpose2d(const double *x, const double *w,
				 const double *bias, size_t B, size_t Ci,
				 size_t H, size_t W, size_t Co, size_t kh,
				 size_t kw, long s, long p, size_t Ho,
				 size_t Wo, double *y, double *mag)
{
	for (size_t b = 0; b < B; b++)
		for (size_t o = 0; o < Co; o++)
			for (size_t k = 0; k < Ho * Wo; k++) {
				y[(b * Co + o) * Ho * Wo + k] = bias ? bias[o] : 0;
				mag[(b * Co + o) * Ho * Wo + k] =
					bias ? fabs(bias[o]) : 0;
			}
	for (size_t b = 0; b < B; b++)
		for (size_t c = 0; c < Ci; c++)
			for (size_t h = 0; h < H; h++)
				for (size_t ww = 0; ww < W; ww++) {
					double xv = x[((b * Ci + c) * H + h) * W + ww];
					for (size_t o = 0; o < Co; o++)
						for (size_t i = 0; i < kh; i++)
							for (size_t j = 0; j < kw; j++) {
								long oh = (long)h * s - p + (long)i;
								long ow = (long)ww * s - p + (long)j;
								size_t k;
								double t;
								if (oh < 0 || ow < 0 || oh >= (long)Ho ||
								    ow >= (long)Wo)
									continue;
								k = ((b * Co + o) * Ho + (size_t)oh) * Wo +
								    (size_t)ow;
								t = xv * w[((c * Co + o) * kh + i) * kw + j];
								y[k] += t;
								mag[k] += fabs(t);
							}
				}
}

/* dw[o][c][i][j] = sum_{b,h,w} gy[b][o][h][w] x[b][c][h s - p + i][...] */
static void ref_weight_grad(const double *x, const double *gy, size_t B,
			    size_t Ci, size_t H, size_t W, size_t Co,
			    size_t kh, size_t kw, long s, long p, size_t Ho,
			    size_t Wo, double *dw, double *mag)
{
	for (size_t o = 0; o < Co; o++)
		for (size_t c = 0; c < Ci; c++)
			for (size_t i = 0; i < kh; i++)
				for (size_t j = 0; j < kw; j++) {
					double acc = 0, m = 0;
					for (size_t b = 0; b < B; b++)
						for (size_t oh = 0; oh < Ho; oh++)
							for (size_t ow = 0; ow < Wo; ow++) {
								long ih = (long)oh * s - p + (long)i;
								long iw = (long)ow * s - p + (long)j;
								double t;
								if (ih < 0 || iw < 0 || ih >= (long)H ||
								    iw >= (long)W)
									continue;
								t = gy[((b * Co + o) * Ho + oh) * Wo + ow] *
								    x[((b * Ci + c) * H + (size_t)ih) * W +
								      (size_t)iw];
								acc += t;
								m += fabs(t);
							}
					size_t k = ((o * Ci + c) * kh + i) * kw + j;
					dw[k] = acc;
					mag[k] = m;
				}
}

/* The op's value against the reference: a sum of n_terms products in
 * double differs from the same sum in another order by at most
 * n_terms * DBL_EPSILON * sum |terms| (standard dot-product bound); a wrong
 * index is off by O(|term|). */
static void assert_matches(const char *what, const struct tensor *got,
			   const double *ref, const double *mag,
			   size_t n_terms)
{
	for (size_t k = 0; k < got->n; k++) {
		double tol = (double)(n_terms + 1) * DBL_EPSILON * mag[k];
		ck_assert_msg(fabs((double)got->data[k] - ref[k]) <= tol,
			      "%s: element %zu: op %.17g, reference %.17g",
			      what, k, (double)got->data[k], ref[k]);
	}
}

/* ---- the combos ---- */

struct combo {
	const char *name;
	bool transpose;
	size_t B, Ci, Co, H, W, kh, kw;
	int s, p, op; /* stride, pad, output padding (transpose only) */
	bool bias;
};

/* The tutorial's (rhvae.md 2.4) and awkward ones: non-square images and
 * kernels, Cin != Cout, stride larger than the kernel, padding as large as
 * the kernel, a remainder (H + 2p - k) % s that differs between H and W
 * (so conv2d's vjp needs different output paddings per axis). */
static const struct combo COMBOS[] = {
	{"conv k4 s2 p1", false, 2, 2, 3, 6, 7, 4, 4, 2, 1, 0, true},
	{"conv k3 s2 p1", false, 2, 3, 2, 5, 6, 3, 3, 2, 1, 0, true},
	{"conv k3 s2 p1 nobias", false, 2, 3, 2, 5, 6, 3, 3, 2, 1, 0, false},
	{"conv k3 s1 p1", false, 2, 3, 2, 4, 5, 3, 3, 1, 1, 0, true},
	{"conv k1 s1 p0", false, 2, 3, 4, 3, 4, 1, 1, 1, 0, 0, true},
	{"conv k2x3 s2 p0", false, 1, 2, 3, 5, 7, 2, 3, 2, 0, 0, true},
	{"conv k2 s3 p1", false, 2, 2, 2, 7, 8, 2, 2, 3, 1, 0, false},
	{"conv k3 s1 p2", false, 1, 2, 3, 3, 4, 3, 3, 1, 2, 0, true},
	{"convT k3 s2 p1 op0", true, 2, 3, 2, 3, 4, 3, 3, 2, 1, 0, true},
	{"convT k3 s2 p1 op1", true, 2, 2, 3, 3, 2, 3, 3, 2, 1, 1, true},
	{"convT k3 s2 p1 op1 nobias", true, 2, 2, 3, 3, 2, 3, 3, 2, 1, 1,
	 false},
	{"convT k4 s2 p1", true, 2, 3, 2, 3, 3, 4, 4, 2, 1, 0, true},
	{"convT k1 s1 p0", true, 2, 3, 4, 3, 4, 1, 1, 1, 0, 0, true},
	{"convT k3 s1 p1", true, 1, 2, 3, 3, 4, 3, 3, 1, 1, 0, true},
	{"convT k2x3 s3 p1 op2", true, 2, 2, 3, 3, 2, 2, 3, 3, 1, 2, false},
};
#define N_COMBOS (sizeof COMBOS / sizeof COMBOS[0])

static size_t out_size(const struct combo *c, size_t n, size_t k)
{
	if (c->transpose)
		return (n - 1) * (size_t)c->s + k + (size_t)c->op -
		       2 * (size_t)c->p;
	return (n + 2 * (size_t)c->p - k) / (size_t)c->s + 1;
}

static void wshape(const struct combo *c, size_t *ws)
{
	ws[0] = c->transpose ? c->Ci : c->Co;
	ws[1] = c->transpose ? c->Co : c->Ci;
	ws[2] = c->kh;
	ws[3] = c->kw;
}

struct cx {
	const struct combo *c;
	bool square_out; /* curve a bilinear op so H v has every block */
};

static struct graph_node *build_combo(struct graph *g, struct graph_node **in,
				      void *ctx)
{
	const struct cx *x = ctx;
	const struct combo *c = x->c;
	struct graph_node *b = c->bias ? in[2] : NULL, *y;
	if (c->transpose)
		y = op_conv_transpose2d(g, "y", in[0], in[1], b, c->s, c->p,
					c->op);
	else
		y = op_conv2d(g, "y", in[0], in[1], b, c->s, c->p);
	if (x->square_out)
		y = op_square(g, "y.sq", y);
	return y;
}

struct combo_data {
	double x[512], w[512], b[16];
};

static struct gradcheck_case combo_case(const struct combo *c,
					struct combo_data *d, struct cx *x,
					uint64_t seed)
{
	struct gradcheck_case k;
	size_t ws[4], nx = c->B * c->Ci * c->H * c->W;
	uint64_t s = seed;
	wshape(c, ws);
	ck_assert(nx <= 512 && ws[0] * ws[1] * ws[2] * ws[3] <= 512);
	gradcheck_fill(d->x, nx, -1, 1, &s);
	gradcheck_fill(d->w, ws[0] * ws[1] * ws[2] * ws[3], -1, 1, &s);
	gradcheck_fill(d->b, c->Co, -0.5, 0.5, &s);
	memset(&k, 0, sizeof k);
	x->c = c;
	k.op = c->name;
	k.build = build_combo;
	k.ctx = x;
	k.seed = seed;
	k.n_leaves = c->bias ? 3 : 2;
	k.leaf[0] = gc_leaf("x", GRADCHECK_INPUT, d->x, 4,
			 GC_SHAPE(c->B, c->Ci, c->H, c->W));
	k.leaf[1] = gc_leaf("w", GRADCHECK_PARAM, d->w, 4, ws);
	k.leaf[2] = gc_leaf("b", GRADCHECK_PARAM, d->b, 1, GC_SHAPE(c->Co));
	return k;
}

/* ---- forward values against the naive loops ---- */

static void check_forward(const struct combo *c, size_t B, size_t H,
			  size_t W, uint64_t seed)
{
	size_t ws[4], Ho = out_size(c, H, c->kh), Wo = out_size(c, W, c->kw);
	size_t nx = B * c->Ci * H * W, nw, ny = B * c->Co * Ho * Wo;
	double *x, *w, *b, *ref, *mag;
	vb_real *xr, *wr, *br;
	struct graph *g = NULL;
	struct graph_node *y, *bn;
	uint64_t s = seed;
	wshape(c, ws);
	nw = ws[0] * ws[1] * ws[2] * ws[3];
	x = malloc(nx * sizeof *x);
	w = malloc(nw * sizeof *w);
	b = malloc(c->Co * sizeof *b);
	ref = malloc(ny * sizeof *ref);
	mag = malloc(ny * sizeof *mag);
	xr = malloc(nx * sizeof *xr);
	wr = malloc(nw * sizeof *wr);
	br = malloc(c->Co * sizeof *br);
	ck_assert(x && w && b && ref && mag && xr && wr && br);
	gradcheck_fill(x, nx, -1, 1, &s);
	gradcheck_fill(w, nw, -1, 1, &s);
	gradcheck_fill(b, c->Co, -1, 1, &s);
	for (size_t i = 0; i < nx; i++)
		xr[i] = x[i];
	for (size_t i = 0; i < nw; i++)
		wr[i] = w[i];
	for (size_t i = 0; i < c->Co; i++)
		br[i] = b[i];
	ck_assert_int_eq(graph_create(ARENA_BYTES, &g, NULL), VB_OK);
	bn = c->bias ? graph_const(g, "b", tensor_view1(br, c->Co)) : NULL;
	if (c->transpose) {
		y = op_conv_transpose2d(
			g, "y",
			graph_const(g, "x", tensor_view(xr, 4,
							GC_SHAPE(B, c->Ci, H, W))),
			graph_const(g, "w", tensor_view(wr, 4, ws)), bn, c->s,
			c->p, c->op);
		ref_conv_transpose2d(x, w, c->bias ? b : NULL, B, c->Ci, H, W,
				     c->Co, c->kh, c->kw, c->s, c->p, Ho, Wo,
				     ref, mag);
	} else {
		y = op_conv2d(g, "y",
			      graph_const(g, "x",
					  tensor_view(xr, 4,
						      GC_SHAPE(B, c->Ci, H, W))),
			      graph_const(g, "w", tensor_view(wr, 4, ws)), bn,
			      c->s, c->p);
		ref_conv2d(x, w, c->bias ? b : NULL, B, c->Ci, H, W, c->Co,
			   c->kh, c->kw, c->s, c->p, Ho, Wo, ref, mag);
	}
	ck_assert_msg(y != NULL, "%s: %s", c->name, graph_error(g)->msg);
	ck_assert_int_eq(y->value.ndim, 4);
	ck_assert_uint_eq(y->value.shape[0], B);
	ck_assert_uint_eq(y->value.shape[1], c->Co);
	ck_assert_uint_eq(y->value.shape[2], Ho);
	ck_assert_uint_eq(y->value.shape[3], Wo);
	assert_matches(c->name, &y->value, ref, mag,
		       c->Ci * c->kh * c->kw);
	graph_free(g);
	free(x);
	free(w);
	free(b);
	free(ref);
	free(mag);
	free(xr);
	free(wr);
	free(br);
}

START_TEST(test_forward_reference)
{
	for (size_t i = 0; i < N_COMBOS; i++)
		check_forward(&COMBOS[i], COMBOS[i].B, COMBOS[i].H,
			      COMBOS[i].W, 100 + i);
	/* Larger images, as the networks see them (batch 3, 28 x 28 and a
	 * non-square 13 x 9). */
	for (size_t i = 0; i < N_COMBOS; i++) {
		check_forward(&COMBOS[i], 3, 28, 28, 200 + i);
		check_forward(&COMBOS[i], 3, 13, 9, 300 + i);
	}
}
END_TEST

/* The tutorial's layers at full size, channels included (rhvae.md 2.4). */
START_TEST(test_forward_reference_tutorial_layers)
{
	static const struct combo L[] = {
		{"enc conv1", false, 2, 1, 64, 28, 28, 4, 4, 2, 1, 0, true},
		{"enc conv2", false, 2, 64, 128, 14, 14, 4, 4, 2, 1, 0, true},
		{"enc conv3", false, 2, 128, 128, 7, 7, 3, 3, 2, 1, 0, true},
		{"res conv3x3", false, 2, 128, 32, 4, 4, 3, 3, 1, 1, 0, true},
		{"res conv1x1", false, 2, 32, 128, 7, 7, 1, 1, 1, 0, 0, true},
		{"dec convT1", true, 2, 128, 128, 4, 4, 3, 3, 2, 1, 0, true},
		{"dec convT2", true, 2, 128, 64, 7, 7, 3, 3, 2, 1, 1, true},
		{"dec convT3", true, 2, 64, 1, 14, 14, 3, 3, 2, 1, 1, true},
	};
	for (size_t i = 0; i < sizeof L / sizeof L[0]; i++)
		check_forward(&L[i], L[i].B, L[i].H, L[i].W, 400 + i);
}
END_TEST

START_TEST(test_weight_grad_reference)
{
	/* conv k3 s2 p1 on a non-square 7 x 6 image and the k4 s2 p1 layer */
	static const struct {
		size_t B, Ci, Co, H, W, k;
		int s, p;
	} T[] = {{2, 3, 2, 7, 6, 3, 2, 1}, {2, 2, 3, 28, 28, 4, 2, 1},
		 {3, 4, 2, 5, 5, 1, 1, 0}};
	for (size_t t = 0; t < sizeof T / sizeof T[0]; t++) {
		size_t Ho = (T[t].H + 2 * (size_t)T[t].p - T[t].k) /
				    (size_t)T[t].s + 1;
		size_t Wo = (T[t].W + 2 * (size_t)T[t].p - T[t].k) /
				    (size_t)T[t].s + 1;
		size_t nx = T[t].B * T[t].Ci * T[t].H * T[t].W;
		size_t ng = T[t].B * T[t].Co * Ho * Wo;
		size_t nw = T[t].Co * T[t].Ci * T[t].k * T[t].k;
		double *x = malloc(nx * sizeof *x), *gy = malloc(ng * sizeof *gy);
		double *ref = malloc(nw * sizeof *ref);
		double *mag = malloc(nw * sizeof *mag);
		vb_real *xr = malloc(nx * sizeof *xr);
		vb_real *gr = malloc(ng * sizeof *gr);
		struct graph *g = NULL;
		struct graph_node *dw;
		uint64_t s = 500 + t;
		ck_assert(x && gy && ref && mag && xr && gr);
		gradcheck_fill(x, nx, -1, 1, &s);
		gradcheck_fill(gy, ng, -1, 1, &s);
		for (size_t i = 0; i < nx; i++)
			xr[i] = x[i];
		for (size_t i = 0; i < ng; i++)
			gr[i] = gy[i];
		ck_assert_int_eq(graph_create(ARENA_BYTES, &g, NULL), VB_OK);
		dw = op_conv2d_weight_grad(
			g, "dw",
			graph_const(g, "x", tensor_view(xr, 4,
							GC_SHAPE(T[t].B, T[t].Ci,
							      T[t].H, T[t].W))),
			graph_const(g, "gy",
				    tensor_view(gr, 4,
						GC_SHAPE(T[t].B, T[t].Co, Ho, Wo))),
			(int)T[t].k, (int)T[t].k, T[t].s, T[t].p);
		ck_assert_msg(dw != NULL, "%s", graph_error(g)->msg);
		ck_assert_uint_eq(dw->value.shape[0], T[t].Co);
		ck_assert_uint_eq(dw->value.shape[1], T[t].Ci);
		ck_assert_uint_eq(dw->value.shape[2], T[t].k);
		ck_assert_uint_eq(dw->value.shape[3], T[t].k);
		ref_weight_grad(x, gy, T[t].B, T[t].Ci, T[t].H, T[t].W,
				T[t].Co, T[t].k, T[t].k, T[t].s, T[t].p, Ho,
				Wo, ref, mag);
		assert_matches("conv2d_weight_grad", &dw->value, ref, mag,
			       T[t].B * Ho * Wo);
		graph_free(g);
		free(x);
		free(gy);
		free(ref);
		free(mag);
		free(xr);
		free(gr);
	}
}
END_TEST

/* ---- shapes of rhvae.md 2.4 and shape errors ---- */

START_TEST(test_tutorial_shapes)
{
	struct graph *g = NULL;
	vb_real *buf = calloc(2 * 128 * 28 * 28, sizeof *buf);
	vb_real *wb = calloc(128 * 128 * 16, sizeof *wb);
	struct graph_node *x, *h;
	ck_assert(buf && wb);
	ck_assert_int_eq(graph_create(ARENA_BYTES, &g, NULL), VB_OK);
	x = graph_const(g, "x", tensor_view(buf, 4, GC_SHAPE(2, 1, 28, 28)));
	/* encoder 28 -> 14 -> 7 -> 4 */
	h = op_conv2d(g, "c1", x,
		      graph_const(g, "w1",
				  tensor_view(wb, 4, GC_SHAPE(64, 1, 4, 4))),
		      NULL, 2, 1);
	ck_assert(h && h->value.shape[1] == 64 && h->value.shape[2] == 14 &&
		  h->value.shape[3] == 14);
	h = op_conv2d(g, "c2", h,
		      graph_const(g, "w2",
				  tensor_view(wb, 4, GC_SHAPE(128, 64, 4, 4))),
		      NULL, 2, 1);
	ck_assert(h && h->value.shape[1] == 128 && h->value.shape[2] == 7 &&
		  h->value.shape[3] == 7);
	h = op_conv2d(g, "c3", h,
		      graph_const(g, "w3",
				  tensor_view(wb, 4, GC_SHAPE(128, 128, 3, 3))),
		      NULL, 2, 1);
	ck_assert(h && h->value.shape[2] == 4 && h->value.shape[3] == 4);
	/* res block convolutions keep 4 x 4 */
	h = op_conv2d(g, "r3", h,
		      graph_const(g, "wr3",
				  tensor_view(wb, 4, GC_SHAPE(32, 128, 3, 3))),
		      NULL, 1, 1);
	ck_assert(h && h->value.shape[1] == 32 && h->value.shape[2] == 4);
	h = op_conv2d(g, "r1", h,
		      graph_const(g, "wr1",
				  tensor_view(wb, 4, GC_SHAPE(128, 32, 1, 1))),
		      NULL, 1, 0);
	ck_assert(h && h->value.shape[1] == 128 && h->value.shape[3] == 4);
	/* decoder 4 -> 7 -> 14 -> 28 */
	h = op_conv_transpose2d(g, "t1", h,
				graph_const(g, "wt1",
					    tensor_view(wb, 4,
							GC_SHAPE(128, 128, 3, 3))),
				NULL, 2, 1, 0);
	ck_assert(h && h->value.shape[1] == 128 && h->value.shape[2] == 7 &&
		  h->value.shape[3] == 7);
	h = op_conv_transpose2d(g, "t2", h,
				graph_const(g, "wt2",
					    tensor_view(wb, 4,
							GC_SHAPE(128, 64, 3, 3))),
				NULL, 2, 1, 1);
	ck_assert(h && h->value.shape[1] == 64 && h->value.shape[2] == 14 &&
		  h->value.shape[3] == 14);
	h = op_conv_transpose2d(g, "t3", h,
				graph_const(g, "wt3",
					    tensor_view(wb, 4,
							GC_SHAPE(64, 1, 3, 3))),
				NULL, 2, 1, 1);
	ck_assert(h && h->value.shape[0] == 2 && h->value.shape[1] == 1 &&
		  h->value.shape[2] == 28 && h->value.shape[3] == 28);
	ck_assert_int_eq(graph_status(g), VB_OK);
	graph_free(g);
	free(buf);
	free(wb);
}
END_TEST

/* Each call must fail with VB_ERR_SHAPE and a message naming the op. */
static void expect_shape_error(struct graph *g, struct graph_node *n,
			       const char *op)
{
	ck_assert(n == NULL);
	ck_assert_int_eq(graph_status(g), VB_ERR_SHAPE);
	ck_assert_msg(strstr(graph_error(g)->msg, op) != NULL, "%s",
		      graph_error(g)->msg);
	graph_reset(g);
}

START_TEST(test_shape_errors)
{
	struct graph *g = NULL;
	vb_real buf[2 * 3 * 5 * 5] = {0}, wb[4 * 3 * 3 * 3] = {0};
	ck_assert_int_eq(graph_create(ARENA_BYTES, &g, NULL), VB_OK);
#define X4(...) graph_const(g, "x", tensor_view(buf, 4, GC_SHAPE(__VA_ARGS__)))
#define W4(...) graph_const(g, "w", tensor_view(wb, 4, GC_SHAPE(__VA_ARGS__)))
	/* input channels 3, weight expects 2 */
	expect_shape_error(g, op_conv2d(g, "y", X4(2, 3, 5, 5),
					W4(4, 2, 3, 3), NULL, 1, 1),
			   "conv2d");
	/* kernel 3 on a 1 x 1 image without padding */
	expect_shape_error(g, op_conv2d(g, "y", X4(2, 3, 1, 1),
					W4(4, 3, 3, 3), NULL, 1, 0),
			   "conv2d");
	/* stride 0, negative pad */
	expect_shape_error(g, op_conv2d(g, "y", X4(2, 3, 5, 5),
					W4(4, 3, 3, 3), NULL, 0, 1),
			   "conv2d");
	expect_shape_error(g, op_conv2d(g, "y", X4(2, 3, 5, 5),
					W4(4, 3, 3, 3), NULL, 1, -1),
			   "conv2d");
	/* bias of the wrong length */
	expect_shape_error(g, op_conv2d(g, "y", X4(2, 3, 5, 5),
					W4(4, 3, 3, 3),
					graph_const(g, "b",
						    tensor_view1(buf, 3)),
					1, 1),
			   "conv2d");
	/* 2-D input */
	expect_shape_error(g, op_conv2d(g, "y",
					graph_const(g, "x",
						    tensor_view2(buf, 2, 75)),
					W4(4, 3, 3, 3), NULL, 1, 1),
			   "conv2d");
	/* output padding must be below the stride */
	expect_shape_error(g, op_conv_transpose2d(g, "y", X4(2, 3, 5, 5),
						  W4(3, 4, 3, 3), NULL, 2, 1,
						  2),
			   "conv_transpose2d");
	/* weight (Cin, Cout, ...) with Cin 4 for a 3-channel input */
	expect_shape_error(g, op_conv_transpose2d(g, "y", X4(2, 3, 5, 5),
						  W4(4, 3, 3, 3), NULL, 2, 1,
						  0),
			   "conv_transpose2d");
	/* padding eats the whole output: (1 - 1) 1 - 2 2 + 1 + 0 <= 0 */
	expect_shape_error(g, op_conv_transpose2d(g, "y", X4(2, 3, 1, 1),
						  W4(3, 4, 1, 1), NULL, 1, 2,
						  0),
			   "conv_transpose2d");
	/* gy not the output shape of the convolution */
	expect_shape_error(g, op_conv2d_weight_grad(g, "dw", X4(1, 3, 5, 5),
						    X4(1, 2, 2, 2), 3, 3, 2,
						    1),
			   "conv2d_weight_grad");
	/* channel broadcast target whose axis 1 is not the vector length */
	expect_shape_error(g, op_expand_channels(g, "e",
						 graph_const(g, "v",
							     tensor_view1(buf,
									  3)),
						 4, GC_SHAPE(2, 4, 2, 2)),
			   "expand_channels");
	/* a NULL input passes through without a new error */
	ck_assert(op_conv2d(g, "y", NULL, W4(4, 3, 3, 3), NULL, 1, 1) == NULL);
	ck_assert_int_eq(graph_status(g), VB_OK);
#undef X4
#undef W4
	graph_free(g);
}
END_TEST

/* ---- gradients through the harness ---- */

static void run_harness(struct gradcheck_case *k, struct cx *x)
{
	int f;
	x->square_out = false;
	f = gradcheck_first(k);
	ck_assert_msg(f == 0, "%s: %d first-order failures", k->op, f);
	/* bilinear: H v is the x-w cross block */
	f = gradcheck_second(k);
	ck_assert_msg(f == 0, "%s: %d second-order failures", k->op, f);
	/* squared output: every block of the Hessian is non-zero */
	x->square_out = true;
	f = gradcheck_first(k);
	ck_assert_msg(f == 0, "%s squared: %d first-order failures", k->op, f);
	f = gradcheck_second(k);
	ck_assert_msg(f == 0, "%s squared: %d second-order failures", k->op,
		      f);
}

START_TEST(test_gradcheck_combos)
{
	const struct combo *c = &COMBOS[_i];
	struct combo_data d;
	struct cx x = {0};
	struct gradcheck_case k = combo_case(c, &d, &x, 1000 + (uint64_t)_i);
	run_harness(&k, &x);
	/* Hessian-vector products with respect to x alone and w alone */
	x.square_out = true;
	k.leaf[1].kind = GRADCHECK_CONST;
	if (c->bias)
		k.leaf[2].kind = GRADCHECK_CONST;
	ck_assert_int_eq(gradcheck_second(&k), 0);
	k.leaf[0].kind = GRADCHECK_CONST;
	k.leaf[1].kind = GRADCHECK_PARAM;
	ck_assert_int_eq(gradcheck_second(&k), 0);
}
END_TEST

/* conv2d_weight_grad as an op: both inputs checked, in the conv role
 * (x, gy) and in the conv_transpose role (gy, x). */
struct wgx {
	int kh, kw, s, p;
	bool square_out;
};

static struct graph_node *build_wgrad(struct graph *g, struct graph_node **in,
				      void *ctx)
{
	const struct wgx *w = ctx;
	struct graph_node *y = op_conv2d_weight_grad(g, "dw", in[0], in[1],
						     w->kh, w->kw, w->s, w->p);
	return w->square_out ? op_square(g, "dw.sq", y) : y;
}

START_TEST(test_gradcheck_weight_grad)
{
	/* k3 s2 p1 on 5 x 6 -> 3 x 3; k2x3 s1 p0 on 3 x 4 -> 2 x 2 */
	static const struct {
		size_t B, Ci, Co, H, W, Ho, Wo;
		struct wgx w;
	} T[] = {{2, 2, 3, 5, 6, 3, 3, {3, 3, 2, 1, false}},
		 {2, 3, 2, 3, 4, 2, 2, {2, 3, 1, 0, false}}};
	for (size_t t = 0; t < sizeof T / sizeof T[0]; t++) {
		double x[256], gy[256];
		uint64_t s = 1100 + t;
		struct wgx w = T[t].w;
		struct gradcheck_case k;
		int f;
		gradcheck_fill(x, T[t].B * T[t].Ci * T[t].H * T[t].W, -1, 1, &s);
		gradcheck_fill(gy, T[t].B * T[t].Co * T[t].Ho * T[t].Wo, -1, 1,
			       &s);
		memset(&k, 0, sizeof k);
		k.op = "conv2d_weight_grad";
		k.build = build_wgrad;
		k.ctx = &w;
		k.seed = 1200 + t;
		k.n_leaves = 2;
		k.leaf[0] = gc_leaf("x", GRADCHECK_INPUT, x, 4,
				 GC_SHAPE(T[t].B, T[t].Ci, T[t].H, T[t].W));
		k.leaf[1] = gc_leaf("gy", GRADCHECK_PARAM, gy, 4,
				 GC_SHAPE(T[t].B, T[t].Co, T[t].Ho, T[t].Wo));
		for (int sq = 0; sq < 2; sq++) {
			w.square_out = sq;
			f = gradcheck_first(&k);
			ck_assert_msg(f == 0, "wgrad %zu sq %d: %d failures", t,
				      sq, f);
			f = gradcheck_second(&k);
			ck_assert_msg(f == 0, "wgrad %zu sq %d: %d second-order "
				      "failures", t, sq, f);
		}
	}
}
END_TEST

/* sum_channels and expand_channels, squared so that the vjp nodes of
 * each (the other op) carry a non-zero second derivative. */
struct chx {
	bool expand, square_out;
};

static struct graph_node *build_channels(struct graph *g,
					 struct graph_node **in, void *ctx)
{
	const struct chx *c = ctx;
	struct graph_node *y =
		c->expand ? op_expand_channels(g, "e", in[0], 4,
					       GC_SHAPE(2, 3, 2, 3))
			  : op_sum_channels(g, "s", in[0]);
	return c->square_out ? op_square(g, "sq", y) : y;
}

START_TEST(test_gradcheck_channels)
{
	double a[36], v[3];
	uint64_t s = 1300;
	struct chx c = {false, false};
	struct gradcheck_case k;
	gradcheck_fill(a, 36, -1, 1, &s);
	gradcheck_fill_signed(v, 3, 0.2, 1, &s);
	memset(&k, 0, sizeof k);
	k.build = build_channels;
	k.ctx = &c;
	k.seed = 1301;
	k.n_leaves = 1;
	for (int e = 0; e < 2; e++) {
		c.expand = e;
		k.op = e ? "expand_channels" : "sum_channels";
		k.leaf[0] = e ? gc_leaf("v", GRADCHECK_PARAM, v, 1, GC_SHAPE(3))
			      : gc_leaf("a", GRADCHECK_INPUT, a, 4,
				     GC_SHAPE(2, 3, 2, 3));
		for (int sq = 0; sq < 2; sq++) {
			c.square_out = sq;
			ck_assert_int_eq(gradcheck_first(&k), 0);
			if (sq)
				ck_assert_int_eq(gradcheck_second(&k), 0);
		}
	}
}
END_TEST

/* ---- a small conv net: Hessian-vector products wrt x and w ---- */

/* y = sigmoid(convT(sigmoid(conv2d(x, w1, b1; k3 s2 p1)), w2, b2;
 * k3 s2 p1 op1)): smooth, so H v is well defined everywhere. */
static struct graph_node *build_net(struct graph *g, struct graph_node **in,
				    void *ctx)
{
	struct graph_node *h;
	(void)ctx;
	h = op_sigmoid(g, "h", op_conv2d(g, "c1", in[0], in[1], in[2], 2, 1));
	return op_sigmoid(g, "y", op_conv_transpose2d(g, "t1", h, in[3], in[4],
						       2, 1, 1));
}

START_TEST(test_net_hessian)
{
	/* x (2, 2, 5, 6) -> (2, 3, 3, 3) -> (2, 2, 6, 6) */
	double x[120], w1[54], b1[3], w2[54], b2[2];
	uint64_t s = 1400;
	struct gradcheck_case k;
	static const enum gradcheck_kind K[4][3] = {
		/* x, w1, w2 */
		{GRADCHECK_INPUT, GRADCHECK_CONST, GRADCHECK_CONST},
		{GRADCHECK_CONST, GRADCHECK_PARAM, GRADCHECK_CONST},
		{GRADCHECK_CONST, GRADCHECK_CONST, GRADCHECK_PARAM},
		{GRADCHECK_INPUT, GRADCHECK_PARAM, GRADCHECK_PARAM}};
	gradcheck_fill(x, 120, -1, 1, &s);
	gradcheck_fill(w1, 54, -1, 1, &s);
	gradcheck_fill(b1, 3, -0.5, 0.5, &s);
	gradcheck_fill(w2, 54, -1, 1, &s);
	gradcheck_fill(b2, 2, -0.5, 0.5, &s);
	for (int r = 0; r < 4; r++) {
		memset(&k, 0, sizeof k);
		k.op = "conv net";
		k.build = build_net;
		k.seed = 1410 + (uint64_t)r;
		k.n_leaves = 5;
		k.leaf[0] = gc_leaf("x", K[r][0], x, 4, GC_SHAPE(2, 2, 5, 6));
		k.leaf[1] = gc_leaf("c1.w", K[r][1], w1, 4, GC_SHAPE(3, 2, 3, 3));
		k.leaf[2] = gc_leaf("c1.b", K[r][1], b1, 1, GC_SHAPE(3));
		k.leaf[3] = gc_leaf("t1.w", K[r][2], w2, 4, GC_SHAPE(3, 2, 3, 3));
		k.leaf[4] = gc_leaf("t1.b", K[r][2], b2, 1, GC_SHAPE(2));
		if (r == 3)
			ck_assert_int_eq(gradcheck_first(&k), 0);
		ck_assert_msg(gradcheck_second(&k) == 0, "hvp case %d", r);
	}
}
END_TEST

/* ---- the RHVAE's second-order path ---- */

/* A decoder as in rhvae.md 2.4, scaled down: z (2, 3) -> linear (no bias,
 * the harness takes 8 leaves) ->
 * (2, 2, 2, 2) -> convT k3 s2 p1 op1 -> relu -> conv k3 s1 p1 -> relu ->
 * convT k3 s2 p1 op1 -> sigmoid -> y (2, 1, 8, 8);
 * H = sum_b 0.5 |y - t|^2 + 0.5 |z|^2 and the output is g = dH/dz taken
 * with create_graph (step 6.4 of rhvae.md 4.5). The harness then
 * differentiates sum(R g) with respect to z and every weight: the fused
 * pass runs the backward kernels of the vjp nodes, the create_graph pass
 * their vjps. */
struct dec {
	double t[128];
	vb_real tbuf[128];
	double min_pre; /* smallest |pre-activation| of either relu */
};

static double min_abs(const struct graph_node *n, double m)
{
	for (size_t i = 0; i < n->value.n; i++)
		if (fabs((double)n->value.data[i]) < m)
			m = fabs((double)n->value.data[i]);
	return m;
}

static struct graph_node *build_dec_grad(struct graph *g,
					 struct graph_node **in, void *ctx)
{
	struct dec *d = ctx;
	struct graph_node *h, *p1, *p2, *y, *t, *H, *dz = NULL;
	struct vb_error err = {0};
	for (size_t i = 0; i < 128; i++)
		d->tbuf[i] = (vb_real)d->t[i];
	t = graph_const(g, "t", tensor_view2(d->tbuf, 2, 64));
	graph_push_scope(g, "decoder");
	h = op_reshape(g, "fc.r", op_linear(g, "fc", in[0], in[1], NULL), 4,
		       GC_SHAPE(2, 2, 2, 2));
	p1 = op_conv_transpose2d(g, "t1", h, in[2], in[3], 2, 1, 1);
	p2 = op_conv2d(g, "c1", op_relu(g, "t1.relu", p1), in[4], in[5], 1,
		       1);
	y = op_sigmoid(g, "out",
		       op_conv_transpose2d(g, "t2", op_relu(g, "c1.relu", p2),
					   in[6], in[7], 2, 1, 1));
	graph_pop_scope(g);
	if (!y)
		return NULL;
	d->min_pre = min_abs(p2, min_abs(p1, INFINITY));
	H = op_add(g, "H",
		   op_sum(g, "H.rec",
			  op_mse(g, "rec",
				 op_reshape(g, "y.flat", y, 2, GC_SHAPE(2, 64)),
				 t)),
		   op_scale(g, "H.prior", op_sum(g, "z2", op_square(g, "zsq",
								 in[0])),
			    0.5));
	if (graph_grad(g, H, NULL, &in[0], 1, true, &dz, &err) != VB_OK)
		return NULL;
	return dz;
}

START_TEST(test_decoder_gradient_second_order)
{
	double z[6], fw[24], t1w[54], t1b[3], c1w[54], c1b[2], t2w[18],
		t2b[1];
	struct dec d;
	struct gradcheck_case k;
	struct graph *g = NULL;
	struct graph_node *in[8];
	uint64_t s = 1500;
	gradcheck_fill(z, 6, -1, 1, &s);
	gradcheck_fill(fw, 24, -1, 1, &s);
	gradcheck_fill(t1w, 54, -1, 1, &s);
	gradcheck_fill(t1b, 3, -0.5, 0.5, &s);
	gradcheck_fill(c1w, 54, -1, 1, &s);
	gradcheck_fill(c1b, 2, -0.5, 0.5, &s);
	gradcheck_fill(t2w, 18, -1, 1, &s);
	gradcheck_fill(t2b, 1, -0.5, 0.5, &s);
	gradcheck_fill(d.t, 128, 0, 1, &s);
	memset(&k, 0, sizeof k);
	k.op = "dH/dz through a conv decoder";
	k.build = build_dec_grad;
	k.ctx = &d;
	k.seed = 1501;
	k.n_leaves = 8;
	k.leaf[0] = gc_leaf("z", GRADCHECK_INPUT, z, 2, GC_SHAPE(2, 3));
	k.leaf[1] = gc_leaf("fc.w", GRADCHECK_PARAM, fw, 2, GC_SHAPE(8, 3));
	k.leaf[2] = gc_leaf("t1.w", GRADCHECK_PARAM, t1w, 4, GC_SHAPE(2, 3, 3, 3));
	k.leaf[3] = gc_leaf("t1.b", GRADCHECK_PARAM, t1b, 1, GC_SHAPE(3));
	k.leaf[4] = gc_leaf("c1.w", GRADCHECK_PARAM, c1w, 4, GC_SHAPE(2, 3, 3, 3));
	k.leaf[5] = gc_leaf("c1.b", GRADCHECK_PARAM, c1b, 1, GC_SHAPE(2));
	k.leaf[6] = gc_leaf("t2.w", GRADCHECK_PARAM, t2w, 4, GC_SHAPE(2, 1, 3, 3));
	k.leaf[7] = gc_leaf("t2.b", GRADCHECK_PARAM, t2b, 1, GC_SHAPE(1));

	/* Off the relu kinks: a step of h = 1e-5 in one input moves a
	 * pre-activation by far less than 1e-3 (weights and inputs <= 1,
	 * a few dozen terms). */
	ck_assert_int_eq(graph_create(ARENA_BYTES, &g, NULL), VB_OK);
	{
		vb_real *v[8];
		const double *src[8] = {z, fw, t1w, t1b, c1w, c1b, t2w, t2b};
		for (int j = 0; j < 8; j++) {
			size_t n = tensor_shape_count(k.leaf[j].ndim,
						      k.leaf[j].shape);
			v[j] = malloc(n * sizeof *v[j]);
			ck_assert(v[j] != NULL);
			for (size_t i = 0; i < n; i++)
				v[j][i] = src[j][i];
			in[j] = graph_input(g, k.leaf[j].name,
					    tensor_view(v[j], k.leaf[j].ndim,
							k.leaf[j].shape),
					    true);
		}
		ck_assert(build_dec_grad(g, in, &d) != NULL);
		for (int j = 0; j < 8; j++)
			free(v[j]);
	}
	graph_free(g);
	ck_assert_msg(d.min_pre > 1e-3, "fixture too close to a relu kink: "
		      "min |pre-activation| %g", d.min_pre);
	ck_assert_int_eq(gradcheck_first(&k), 0);
}
END_TEST

/* ---- both backward paths agree at the tutorial's sizes ---- */

/* For each tutorial layer at full spatial size (few channels): the fused
 * gradient of sum(R y) against graph_grad with create_graph, elementwise.
 * Same products in another association: agreement to rounding. */
START_TEST(test_paths_agree_tutorial_sizes)
{
	static const struct combo L[] = {
		{"enc conv1", false, 2, 1, 4, 28, 28, 4, 4, 2, 1, 0, true},
		{"enc conv2", false, 2, 4, 5, 14, 14, 4, 4, 2, 1, 0, true},
		{"enc conv3", false, 2, 5, 4, 7, 7, 3, 3, 2, 1, 0, true},
		{"res conv3x3", false, 2, 4, 3, 7, 7, 3, 3, 1, 1, 0, true},
		{"res conv1x1", false, 2, 3, 4, 4, 4, 1, 1, 1, 0, 0, true},
		{"dec convT1", true, 2, 4, 5, 4, 4, 3, 3, 2, 1, 0, true},
		{"dec convT2", true, 2, 5, 3, 7, 7, 3, 3, 2, 1, 1, true},
		{"dec convT3", true, 2, 3, 1, 14, 14, 3, 3, 2, 1, 1, true},
	};
	for (size_t l = 0; l < sizeof L / sizeof L[0]; l++) {
		const struct combo *c = &L[l];
		size_t ws[4], nx = c->B * c->Ci * c->H * c->W, nw;
		struct graph *g = NULL;
		struct graph_node *x, *w, *b, *y, *loss, *wrt[3], *res[3];
		vb_real *xv, *wv, *bv, *rv, *wgrad, *bgrad;
		uint64_t s = 1600 + l;
		struct vb_error err = {0};
		double *tmp;
		wshape(c, ws);
		nw = ws[0] * ws[1] * ws[2] * ws[3];
		xv = malloc(nx * sizeof *xv);
		wv = malloc(nw * sizeof *wv);
		bv = malloc(c->Co * sizeof *bv);
		wgrad = calloc(nw, sizeof *wgrad);
		bgrad = calloc(c->Co, sizeof *bgrad);
		tmp = malloc((nx > nw ? nx : nw) * sizeof *tmp);
		ck_assert(xv && wv && bv && wgrad && bgrad && tmp);
		gradcheck_fill(tmp, nx, -1, 1, &s);
		for (size_t i = 0; i < nx; i++)
			xv[i] = tmp[i];
		gradcheck_fill(tmp, nw, -1, 1, &s);
		for (size_t i = 0; i < nw; i++)
			wv[i] = tmp[i];
		gradcheck_fill(tmp, c->Co, -1, 1, &s);
		for (size_t i = 0; i < c->Co; i++)
			bv[i] = tmp[i];
		ck_assert_int_eq(graph_create(ARENA_BYTES, &g, NULL), VB_OK);
		x = graph_input(g, "x",
				tensor_view(xv, 4, GC_SHAPE(c->B, c->Ci, c->H, c->W)),
				true);
		w = graph_param(g, "w", tensor_view(wv, 4, ws), wgrad);
		b = graph_param(g, "b", tensor_view1(bv, c->Co), bgrad);
		y = c->transpose
			    ? op_conv_transpose2d(g, "y", x, w, b, c->s, c->p,
						  c->op)
			    : op_conv2d(g, "y", x, w, b, c->s, c->p);
		ck_assert(y != NULL);
		{
			struct tensor r = graph_tensor(g, 4, y->value.shape);
			ck_assert(r.data != NULL);
			rv = r.data;
			for (size_t i = 0; i < r.n; i++) {
				double u;
				gradcheck_fill(&u, 1, -1, 1, &s);
				rv[i] = u;
			}
			loss = op_sum(g, "loss",
				      op_mul(g, "ry", y, graph_const(g, "r", r)));
		}
		wrt[0] = x;
		wrt[1] = w;
		wrt[2] = b;
		ck_assert_int_eq(graph_grad(g, loss, NULL, wrt, 3, true, res,
					    &err),
				 VB_OK);
		ck_assert_int_eq(graph_backward(g, loss, &err), VB_OK);
		for (size_t i = 0; i < nx; i++)
			ck_assert_msg(gradcheck_close(res[0]->value.data[i],
						      x->grad.data[i],
						      GRADCHECK_PATH_RTOL,
						      GRADCHECK_ATOL),
				      "%s dx %zu: vjp %.17g fused %.17g",
				      c->name, i, res[0]->value.data[i],
				      x->grad.data[i]);
		for (size_t i = 0; i < nw; i++)
			ck_assert_msg(gradcheck_close(res[1]->value.data[i],
						      wgrad[i],
						      GRADCHECK_PATH_RTOL,
						      GRADCHECK_ATOL),
				      "%s dw %zu: vjp %.17g fused %.17g",
				      c->name, i, res[1]->value.data[i],
				      wgrad[i]);
		for (size_t i = 0; i < c->Co; i++)
			ck_assert_msg(gradcheck_close(res[2]->value.data[i],
						      bgrad[i],
						      GRADCHECK_PATH_RTOL,
						      GRADCHECK_ATOL),
				      "%s db %zu", c->name, i);
		/* and the vjp nodes are the documented ops */
		ck_assert_str_eq(res[0]->op->name,
				 c->transpose ? "conv2d" : "conv_transpose2d");
		ck_assert_str_eq(res[1]->op->name, "conv2d_weight_grad");
		ck_assert_str_eq(res[2]->op->name, "sum_channels");
		graph_free(g);
		free(xv);
		free(wv);
		free(bv);
		free(wgrad);
		free(bgrad);
		free(tmp);
	}
}
END_TEST

/* ---- batches split into several chunks ---- */

/* The kernels process the batch in chunks of whole samples (about 2^19
 * column elements each). With K P = 288 x 784 per sample, two samples fit
 * in a chunk, so a batch of 3 runs as chunks of 2 and 1: every kernel's
 * chunk loop, including a ragged last chunk, against direct loops. */
#define MC_B 3
#define MC_WIDE 32 /* channels on the im2col side */
#define MC_NARROW 2
#define MC_SIDE 28
#define MC_NX (MC_B * MC_WIDE * MC_SIDE * MC_SIDE)
#define MC_NY (MC_B * MC_NARROW * MC_SIDE * MC_SIDE)
#define MC_NW (MC_WIDE * MC_NARROW * 9)

static vb_real *mc_values(struct graph *g, const double *src, size_t n)
{
	vb_real *v = graph_alloc(g, n * sizeof *v);
	ck_assert(v != NULL);
	for (size_t i = 0; i < n; i++)
		v[i] = src[i];
	return v;
}

/* a (the op's) against ref within n_terms eps sum |terms| (as
 * assert_matches) and b (another path) against a to rounding. */
static void mc_compare(const char *what, const vb_real *a, const double *ref,
		       const double *mag, size_t n, size_t n_terms)
{
	for (size_t i = 0; i < n; i++) {
		double tol = (double)(n_terms + 1) * DBL_EPSILON * mag[i];
		ck_assert_msg(fabs((double)a[i] - ref[i]) <= tol,
			      "%s[%zu]: op %.17g, reference %.17g", what, i,
			      (double)a[i], ref[i]);
	}
}

static void mc_paths(const char *what, const struct graph_node *vjp,
		     const vb_real *fused, size_t n)
{
	ck_assert(vjp != NULL && vjp->value.n == n);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(gradcheck_close(vjp->value.data[i], fused[i],
					      GRADCHECK_PATH_RTOL,
					      GRADCHECK_ATOL),
			      "%s[%zu]: vjp %.17g, fused %.17g", what, i,
			      (double)vjp->value.data[i], (double)fused[i]);
}

START_TEST(test_multi_chunk)
{
	/* form 0: conv2d x (3, 32, 28, 28) -> (3, 2, 28, 28), k3 s1 p1;
	 * form 1: conv_transpose2d x (3, 2, 28, 28) -> (3, 32, 28, 28);
	 * form 2: conv2d_weight_grad(x (3, 32, ...), gy (3, 2, ...)). */
	static double big[MC_NX], small[MC_NY], w[MC_NW], bias[MC_WIDE],
		r[MC_NX], ref[MC_NX], mag[MC_NX];
	uint64_t s = 1700;
	gradcheck_fill(big, MC_NX, -1, 1, &s);
	gradcheck_fill(small, MC_NY, -1, 1, &s);
	gradcheck_fill(w, MC_NW, -1, 1, &s);
	gradcheck_fill(bias, MC_WIDE, -1, 1, &s);
	gradcheck_fill(r, MC_NX, -1, 1, &s);
	for (int form = 0; form < 3; form++) {
		struct graph *g = NULL;
		struct graph_node *a, *wn, *bn = NULL, *y, *loss, *wrt[3],
			*res[3];
		vb_real *wgrad, *bgrad;
		struct vb_error err = {0};
		size_t na = form == 1 ? MC_NY : MC_NX, nout, n_wrt;
		const double *asrc = form == 1 ? small : big;
		ck_assert_int_eq(graph_create(ARENA_BYTES, &g, NULL), VB_OK);
		wgrad = graph_tensor_zero(g, 1, GC_SHAPE(MC_NX)).data;
		bgrad = graph_tensor_zero(g, 1, GC_SHAPE(MC_WIDE)).data;
		a = graph_input(g, "a",
				tensor_view(mc_values(g, asrc, na), 4,
					    form == 1
						    ? GC_SHAPE(MC_B, MC_NARROW,
							    MC_SIDE, MC_SIDE)
						    : GC_SHAPE(MC_B, MC_WIDE,
							    MC_SIDE, MC_SIDE)),
				true);
		if (form == 2) {
			/* second input gy (3, 2, 28, 28) */
			wn = graph_input(g, "gy",
					 tensor_view(mc_values(g, small, MC_NY),
						     4,
						     GC_SHAPE(MC_B, MC_NARROW,
							   MC_SIDE, MC_SIDE)),
					 true);
			y = op_conv2d_weight_grad(g, "dw", a, wn, 3, 3, 1, 1);
		} else {
			/* conv2d w (2, 32, 3, 3); conv_transpose2d w
			 * (Cin 2, Cout 32, 3, 3): the same buffer */
			wn = graph_param(g, "w",
					 tensor_view(mc_values(g, w, MC_NW), 4,
						     GC_SHAPE(MC_NARROW, MC_WIDE,
							   3, 3)),
					 wgrad);
			bn = graph_param(g, "b",
					 tensor_view1(mc_values(g, bias,
								form == 0
									? MC_NARROW
									: MC_WIDE),
						      form == 0 ? MC_NARROW
								: MC_WIDE),
					 bgrad);
			y = form == 0 ? op_conv2d(g, "y", a, wn, bn, 1, 1)
				      : op_conv_transpose2d(g, "y", a, wn, bn, 1,
							    1, 0);
		}
		ck_assert_msg(y != NULL, "%s", graph_error(g)->msg);
		nout = y->value.n;
		loss = op_sum(g, "loss",
			      op_mul(g, "ry", y,
				     graph_const(g, "r",
						 tensor_view(mc_values(g, r,
								       nout),
							     y->value.ndim,
							     y->value.shape))));
		n_wrt = form == 2 ? 2 : 3;
		wrt[0] = a;
		wrt[1] = wn;
		wrt[2] = bn;
		ck_assert_int_eq(graph_grad(g, loss, NULL, wrt, n_wrt, true,
					    res, &err),
				 VB_OK);
		ck_assert_int_eq(graph_backward(g, loss, &err), VB_OK);

		if (form == 0) {
			ref_conv2d(big, w, bias, MC_B, MC_WIDE, MC_SIDE,
				   MC_SIDE, MC_NARROW, 3, 3, 1, 1, MC_SIDE,
				   MC_SIDE, ref, mag);
			mc_compare("conv2d y", y->value.data, ref, mag, nout,
				   MC_WIDE * 9);
			/* dx = the transposed convolution of R */
			ref_conv_transpose2d(r, w, NULL, MC_B, MC_NARROW,
					     MC_SIDE, MC_SIDE, MC_WIDE, 3, 3, 1,
					     1, MC_SIDE, MC_SIDE, ref, mag);
			mc_compare("conv2d dx", a->grad.data, ref, mag, na,
				   MC_NARROW * 9);
			ref_weight_grad(big, r, MC_B, MC_WIDE, MC_SIDE,
					MC_SIDE, MC_NARROW, 3, 3, 1, 1, MC_SIDE,
					MC_SIDE, ref, mag);
			mc_compare("conv2d dw", wgrad, ref, mag, MC_NW,
				   MC_B * MC_SIDE * MC_SIDE);
		} else if (form == 1) {
			ref_conv_transpose2d(small, w, bias, MC_B, MC_NARROW,
					     MC_SIDE, MC_SIDE, MC_WIDE, 3, 3, 1,
					     1, MC_SIDE, MC_SIDE, ref, mag);
			mc_compare("conv_transpose2d y", y->value.data, ref,
				   mag, nout, MC_NARROW * 9);
			/* dx = the convolution of R with the same w */
			ref_conv2d(r, w, NULL, MC_B, MC_WIDE, MC_SIDE, MC_SIDE,
				   MC_NARROW, 3, 3, 1, 1, MC_SIDE, MC_SIDE, ref,
				   mag);
			mc_compare("conv_transpose2d dx", a->grad.data, ref,
				   mag, na, MC_WIDE * 9);
			/* dw = weight gradient with image R, output x */
			ref_weight_grad(r, small, MC_B, MC_WIDE, MC_SIDE,
					MC_SIDE, MC_NARROW, 3, 3, 1, 1, MC_SIDE,
					MC_SIDE, ref, mag);
			mc_compare("conv_transpose2d dw", wgrad, ref, mag,
				   MC_NW, MC_B * MC_SIDE * MC_SIDE);
		} else {
			ref_weight_grad(big, small, MC_B, MC_WIDE, MC_SIDE,
					MC_SIDE, MC_NARROW, 3, 3, 1, 1, MC_SIDE,
					MC_SIDE, ref, mag);
			mc_compare("weight_grad value", y->value.data, ref, mag,
				   nout, MC_B * MC_SIDE * MC_SIDE);
			/* d/dx = conv_transpose2d(gy, R); d/dgy =
			 * conv2d(x, R) */
			ref_conv_transpose2d(small, r, NULL, MC_B, MC_NARROW,
					     MC_SIDE, MC_SIDE, MC_WIDE, 3, 3, 1,
					     1, MC_SIDE, MC_SIDE, ref, mag);
			mc_compare("weight_grad dx", a->grad.data, ref, mag, na,
				   MC_NARROW * 9);
			ref_conv2d(big, r, NULL, MC_B, MC_WIDE, MC_SIDE,
				   MC_SIDE, MC_NARROW, 3, 3, 1, 1, MC_SIDE,
				   MC_SIDE, ref, mag);
			mc_compare("weight_grad dgy", wn->grad.data, ref, mag,
				   MC_NY, MC_WIDE * 9);
		}
		/* the create_graph path agrees with the fused one */
		mc_paths("vjp dx", res[0], a->grad.data, na);
		if (form == 2) {
			mc_paths("vjp dgy", res[1], wn->grad.data, MC_NY);
		} else {
			mc_paths("vjp dw", res[1], wgrad, MC_NW);
			mc_paths("vjp db", res[2], bgrad, bn->value.n);
			for (size_t c = 0; c < bn->value.n; c++) {
				/* db = channel sums of R */
				double acc = 0, m = 0;
				size_t P = MC_SIDE * MC_SIDE;
				for (size_t b = 0; b < MC_B; b++)
					for (size_t i = 0; i < P; i++) {
						double v = r[(b * bn->value.n +
							      c) * P + i];
						acc += v;
						m += fabs(v);
					}
				ck_assert(fabs((double)bgrad[c] - acc) <=
					  (double)(MC_B * P) * DBL_EPSILON * m);
			}
		}
		graph_free(g);
	}
}
END_TEST

int main(void)
{
	TCase *tc;
	Suite *s = suite_create("conv");
	tu_tcase(s, "reference", 120, TU_TESTS(test_forward_reference,
		test_forward_reference_tutorial_layers,
		test_weight_grad_reference, test_tutorial_shapes,
		test_shape_errors));
	tc = tu_tcase(s, "gradcheck", 120, TU_TESTS(test_gradcheck_weight_grad,
		test_gradcheck_channels, test_paths_agree_tutorial_sizes,
		test_multi_chunk));
	tcase_add_loop_test(tc, test_gradcheck_combos, 0, (int)N_COMBOS);
	tu_tcase(s, "second_order", 120, TU_TESTS(test_net_hessian,
		test_decoder_gradient_second_order));
	return tu_run(s);
}
