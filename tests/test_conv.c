/* test_conv (double build): conv2d, conv_transpose2d, their weight-gradient
 * op against naive direct loops (tests/convref, forward values) for the
 * tutorial's kernel/stride/padding combos, awkward ones and the tutorial's
 * layers at full size, batches split into several chunks (values and both
 * backward paths), the shapes of rhvae.md 2.4 and shape errors. Gradients
 * through the harness are test_conv_grad's. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convref.h"
#include "gradcheck.h"
#include "graph.h"
#include "graph_grad.h"
#include "ops.h"
#include "testutil.h"

#ifndef VB_DOUBLE
#error "test_conv checks gradients in the double build (vb_core_f64)"
#endif

#define ARENA_BYTES ((size_t)1 << 22)

static void check_forward(const struct cr_combo *c, size_t B, size_t H,
			  size_t W, uint64_t seed)
{
	size_t ws[4], Ho = cr_out_size(c, H, c->kh), Wo = cr_out_size(c, W, c->kw);
	size_t nx = B * c->Ci * H * W, nw, ny = B * c->Co * Ho * Wo;
	double *x, *w, *b, *ref, *mag;
	vb_real *xr, *wr, *br;
	struct graph *g = NULL;
	struct graph_node *y, *bn;
	uint64_t s = seed;
	cr_wshape(c, ws);
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
		cr_conv_transpose2d(x, w, c->bias ? b : NULL, B, c->Ci, H, W,
				    c->Co, c->kh, c->kw, c->s, c->p, Ho, Wo,
				    ref, mag);
	} else {
		y = op_conv2d(g, "y",
			      graph_const(g, "x",
					  tensor_view(xr, 4,
						      GC_SHAPE(B, c->Ci, H, W))),
			      graph_const(g, "w", tensor_view(wr, 4, ws)), bn,
			      c->s, c->p);
		cr_conv2d(x, w, c->bias ? b : NULL, B, c->Ci, H, W, c->Co,
			  c->kh, c->kw, c->s, c->p, Ho, Wo, ref, mag);
	}
	ck_assert_msg(y != NULL, "%s: %s", c->name, graph_error(g)->msg);
	ck_assert_int_eq(y->value.ndim, 4);
	ck_assert_uint_eq(y->value.shape[0], B);
	ck_assert_uint_eq(y->value.shape[1], c->Co);
	ck_assert_uint_eq(y->value.shape[2], Ho);
	ck_assert_uint_eq(y->value.shape[3], Wo);
	cr_assert_matches(c->name, y->value.data, y->value.n, ref, mag,
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
	for (size_t i = 0; i < cr_n_combos; i++)
		check_forward(&cr_combos[i], cr_combos[i].B, cr_combos[i].H,
			      cr_combos[i].W, 100 + i);
	/* Larger images, as the networks see them (batch 3, 28 x 28 and a
	 * non-square 13 x 9). */
	for (size_t i = 0; i < cr_n_combos; i++) {
		check_forward(&cr_combos[i], 3, 28, 28, 200 + i);
		check_forward(&cr_combos[i], 3, 13, 9, 300 + i);
	}
}
END_TEST

/* The tutorial's layers at full size, channels included (rhvae.md 2.4). */
START_TEST(test_forward_reference_tutorial_layers)
{
	static const size_t ch[] = {1, 64, 128, 128, 32, 128, 128, 64, 1};
	struct cr_combo L[CR_N_TUTORIAL];
	cr_tutorial_layers(L, ch, 4, 7);
	for (size_t i = 0; i < CR_N_TUTORIAL; i++)
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
		cr_weight_grad(x, gy, T[t].B, T[t].Ci, T[t].H, T[t].W, T[t].Co,
			       T[t].k, T[t].k, T[t].s, T[t].p, Ho, Wo, ref,
			       mag);
		cr_assert_matches("conv2d_weight_grad", dw->value.data,
				  dw->value.n, ref, mag, T[t].B * Ho * Wo);
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
			cr_conv2d(big, w, bias, MC_B, MC_WIDE, MC_SIDE, MC_SIDE,
				  MC_NARROW, 3, 3, 1, 1, MC_SIDE, MC_SIDE, ref,
				  mag);
			cr_assert_matches("conv2d y", y->value.data, nout, ref,
					  mag, MC_WIDE * 9);
			/* dx = the transposed convolution of R */
			cr_conv_transpose2d(r, w, NULL, MC_B, MC_NARROW,
					    MC_SIDE, MC_SIDE, MC_WIDE, 3, 3, 1,
					    1, MC_SIDE, MC_SIDE, ref, mag);
			cr_assert_matches("conv2d dx", a->grad.data, na, ref,
					  mag, MC_NARROW * 9);
			cr_weight_grad(big, r, MC_B, MC_WIDE, MC_SIDE, MC_SIDE,
				       MC_NARROW, 3, 3, 1, 1, MC_SIDE, MC_SIDE,
				       ref, mag);
			cr_assert_matches("conv2d dw", wgrad, MC_NW, ref, mag,
					  MC_B * MC_SIDE * MC_SIDE);
		} else if (form == 1) {
			cr_conv_transpose2d(small, w, bias, MC_B, MC_NARROW,
					    MC_SIDE, MC_SIDE, MC_WIDE, 3, 3, 1,
					    1, MC_SIDE, MC_SIDE, ref, mag);
			cr_assert_matches("conv_transpose2d y", y->value.data,
					  nout, ref, mag, MC_NARROW * 9);
			/* dx = the convolution of R with the same w */
			cr_conv2d(r, w, NULL, MC_B, MC_WIDE, MC_SIDE, MC_SIDE,
				  MC_NARROW, 3, 3, 1, 1, MC_SIDE, MC_SIDE, ref,
				  mag);
			cr_assert_matches("conv_transpose2d dx", a->grad.data,
					  na, ref, mag, MC_WIDE * 9);
			/* dw = weight gradient with image R, output x */
			cr_weight_grad(r, small, MC_B, MC_WIDE, MC_SIDE,
				       MC_SIDE, MC_NARROW, 3, 3, 1, 1, MC_SIDE,
				       MC_SIDE, ref, mag);
			cr_assert_matches("conv_transpose2d dw", wgrad, MC_NW,
					  ref, mag, MC_B * MC_SIDE * MC_SIDE);
		} else {
			cr_weight_grad(big, small, MC_B, MC_WIDE, MC_SIDE,
				       MC_SIDE, MC_NARROW, 3, 3, 1, 1, MC_SIDE,
				       MC_SIDE, ref, mag);
			cr_assert_matches("weight_grad value", y->value.data,
					  nout, ref, mag,
					  MC_B * MC_SIDE * MC_SIDE);
			/* d/dx = conv_transpose2d(gy, R); d/dgy =
			 * conv2d(x, R) */
			cr_conv_transpose2d(small, r, NULL, MC_B, MC_NARROW,
					    MC_SIDE, MC_SIDE, MC_WIDE, 3, 3, 1,
					    1, MC_SIDE, MC_SIDE, ref, mag);
			cr_assert_matches("weight_grad dx", a->grad.data, na,
					  ref, mag, MC_NARROW * 9);
			cr_conv2d(big, r, NULL, MC_B, MC_WIDE, MC_SIDE, MC_SIDE,
				  MC_NARROW, 3, 3, 1, 1, MC_SIDE, MC_SIDE, ref,
				  mag);
			cr_assert_matches("weight_grad dgy", wn->grad.data,
					  MC_NY, ref, mag, MC_WIDE * 9);
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

TU_MAIN("conv", "reference", 120, test_forward_reference,
	test_forward_reference_tutorial_layers, test_weight_grad_reference,
	test_tutorial_shapes, test_shape_errors, test_multi_chunk)
