/* test_conv_grad (double build): conv2d, conv_transpose2d, their
 * weight-gradient op and the channel sum/broadcast through the gradcheck
 * harness (both backward paths, Hessian-vector products) for the
 * geometries of tests/convref, the two backward paths at the tutorial's
 * sizes, and the second-order path the RHVAE needs (a loss of dH/dz
 * through a decoder). */
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
#error "test_conv_grad checks gradients in the double build (vb_core_f64)"
#endif

#define ARENA_BYTES ((size_t)1 << 22)

struct cx {
	const struct cr_combo *c;
	bool square_out; /* curve a bilinear op so H v has every block */
};

static struct graph_node *build_combo(struct graph *g, struct graph_node **in,
				      void *ctx)
{
	const struct cx *x = ctx;
	const struct cr_combo *c = x->c;
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

static struct gradcheck_case combo_case(const struct cr_combo *c,
					struct combo_data *d, struct cx *x,
					uint64_t seed)
{
	struct gradcheck_case k;
	size_t ws[4], nx = c->B * c->Ci * c->H * c->W;
	uint64_t s = seed;
	cr_wshape(c, ws);
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
	const struct cr_combo *c = &cr_combos[_i];
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
		k = gc_case("conv2d_weight_grad", build_wgrad, &w, 1200 + t);
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
		k = gc_case("conv net", build_net, NULL, 1410 + (uint64_t)r);
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
	k = gc_case("dH/dz through a conv decoder", build_dec_grad, &d, 1501);
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

/* For each tutorial layer at full spatial size (few channels): the fused
 * gradient of sum(R y) against graph_grad with create_graph, elementwise.
 * Same products in another association: agreement to rounding. */
START_TEST(test_paths_agree_tutorial_sizes)
{
	static const size_t ch[] = {1, 4, 5, 4, 3, 4, 5, 3, 1};
	struct cr_combo L[CR_N_TUTORIAL];
	cr_tutorial_layers(L, ch, 7, 4);
	for (size_t l = 0; l < CR_N_TUTORIAL; l++) {
		const struct cr_combo *c = &L[l];
		size_t ws[4], nx = c->B * c->Ci * c->H * c->W, nw;
		struct graph *g = NULL;
		struct graph_node *x, *w, *b, *y, *loss, *wrt[3], *res[3];
		vb_real *xv, *wv, *bv, *rv, *wgrad, *bgrad;
		uint64_t s = 1600 + l;
		struct vb_error err = {0};
		double *tmp;
		cr_wshape(c, ws);
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

TU_MAIN_CASES("conv_grad",
	TU_CASE_LOOP("gradcheck", 120, test_gradcheck_combos, (int)cr_n_combos,
		test_gradcheck_weight_grad, test_gradcheck_channels,
		test_paths_agree_tutorial_sizes),
	TU_CASE("second_order", 120, test_net_hessian,
		test_decoder_gradient_second_order))
