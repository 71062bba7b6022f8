/* test_graph (double build): the tape itself. Node names and scopes,
 * sticky errors, arena reuse across resets, grad mode, where gradients go
 * (graph_backward into parameter slices, graph_grad into constants),
 * seeded vector-Jacobian products, create_graph against finite
 * differences of a second derivative, and the hook's event order. The ops'
 * own gradients are test_ops' business. */
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
#error "test_graph runs in the double build (vb_core_f64)"
#endif

static struct graph *new_graph(size_t bytes)
{
	struct graph *g = NULL;
	struct vb_error err = {0};
	ck_assert_int_eq(graph_create(bytes, &g, &err), VB_OK);
	ck_assert_ptr_nonnull(g);
	return g;
}

START_TEST(test_names_and_scopes)
{
	struct graph *g = new_graph(1 << 16);
	vb_real xv[4] = {1, 2, 3, 4}, wv[4] = {1, 0, 0, 1};
	struct graph_node *x = graph_input(g, "x", tensor_view2(xv, 2, 2),
					   false);
	graph_push_scope(g, "encoder");
	struct graph_node *w = graph_const(g, "w", tensor_view2(wv, 2, 2));
	struct graph_node *fc1 = op_linear(g, "fc1", x, w, NULL);
	graph_push_scope(g, "block");
	struct graph_node *act = op_relu(g, "act", fc1);
	graph_pop_scope(g);
	struct graph_node *fc2 = op_linear(g, "fc2", act, w, NULL);
	graph_pop_scope(g);
	struct graph_node *top = op_sum(g, "loss", fc2);
	ck_assert_ptr_nonnull(top);
	ck_assert_str_eq(x->name, "x");
	ck_assert_str_eq(w->name, "encoder.w");
	ck_assert_str_eq(fc1->name, "encoder.fc1");
	ck_assert_str_eq(act->name, "encoder.block.act");
	ck_assert_str_eq(fc2->name, "encoder.fc2");
	ck_assert_str_eq(top->name, "loss");
	/* ids are tape positions */
	ck_assert_uint_eq(graph_node_count(g), 6);
	for (size_t i = 0; i < graph_node_count(g); i++)
		ck_assert_uint_eq(graph_node_at(g, i)->id, i);
	ck_assert_ptr_eq(graph_node_at(g, 2), fc1);
	ck_assert_ptr_null(graph_node_at(g, 6));
	ck_assert_str_eq(fc1->op->name, "linear");
	/* a reset forgets the scopes */
	graph_push_scope(g, "dangling");
	graph_reset(g);
	x = graph_input(g, "x", tensor_view2(xv, 2, 2), false);
	ck_assert_str_eq(x->name, "x");
	graph_free(g);
}
END_TEST

START_TEST(test_sticky_error)
{
	struct graph *g = new_graph(1 << 16);
	vb_real av[6] = {1, 2, 3, 4, 5, 6}, bv[6] = {0};
	struct vb_error err = {0};
	struct graph_node *a = graph_input(g, "a", tensor_view2(av, 2, 3),
					   true);
	struct graph_node *b = graph_input(g, "b", tensor_view2(bv, 2, 3),
					   true);
	ck_assert_int_eq(graph_status(g), VB_OK);
	graph_push_scope(g, "dec");
	/* (2, 3) times (2, 3): inner dimensions 3 and 2 do not fit */
	struct graph_node *bad = op_matmul(g, "mm", a, b, false, false);
	graph_pop_scope(g);
	ck_assert_ptr_null(bad);
	ck_assert_int_eq(graph_status(g), VB_ERR_SHAPE);
	const char *msg = graph_error(g)->msg;
	ck_assert_ptr_nonnull(strstr(msg, "matmul"));
	ck_assert_ptr_nonnull(strstr(msg, "mm"));
	ck_assert_ptr_nonnull(strstr(msg, "(2, 3) and (2, 3)"));
	/* later ops return NULL: on the NULL and on good inputs alike */
	ck_assert_ptr_null(op_relu(g, "r", bad));
	ck_assert_ptr_null(op_add(g, "ok", a, b));
	ck_assert_ptr_null(graph_input(g, "late", tensor_view2(av, 2, 3),
				       false));
	/* a second, different failure does not replace the first message */
	ck_assert_ptr_null(op_mse(g, "mse", a,
				  graph_input(g, "c", tensor_view1(av, 5),
					      false)));
	ck_assert_str_eq(graph_error(g)->msg, msg);
	ck_assert_int_eq(graph_status(g), VB_ERR_SHAPE);
	/* backward of the NULL result reports the sticky error */
	ck_assert_int_ne(graph_backward(g, op_sum(g, "l", bad), &err), VB_OK);
	ck_assert_ptr_nonnull(strstr(err.msg, "matmul"));
	/* reset clears it */
	graph_reset(g);
	ck_assert_int_eq(graph_status(g), VB_OK);
	ck_assert_str_eq(graph_error(g)->msg, "");
	a = graph_input(g, "a", tensor_view2(av, 2, 3), true);
	ck_assert_ptr_nonnull(op_matmul(g, "mm", a, a, false, true));
	ck_assert_int_eq(graph_status(g), VB_OK);
	graph_free(g);
}
END_TEST

START_TEST(test_backward_needs_scalar)
{
	struct graph *g = new_graph(1 << 16);
	vb_real av[3] = {1, 2, 3};
	struct vb_error err = {0};
	struct graph_node *a = graph_input(g, "a", tensor_view1(av, 3), true);
	struct graph_node *y = op_exp(g, "y", a), *res[1];
	ck_assert_int_eq(graph_backward(g, y, &err), VB_ERR_SHAPE);
	ck_assert_ptr_nonnull(strstr(err.msg, "y"));
	vb_error_clear(&err);
	/* graph_grad of a non-scalar without a seed */
	ck_assert_int_eq(graph_grad(g, y, NULL, &a, 1, false, res, &err),
			 VB_ERR_SHAPE);
	ck_assert_ptr_null(res[0]);
	graph_free(g);
}
END_TEST

/* One "training step" on a tape: a 2-layer net on (B, D) data. */
#define STEP_B 32
#define STEP_D 64
#define STEP_H 48

struct step_data {
	vb_real x[STEP_B * STEP_D];
	vb_real w1[STEP_H * STEP_D], b1[STEP_H];
	vb_real w2[STEP_D * STEP_H];
	vb_real gw1[STEP_H * STEP_D], gb1[STEP_H], gw2[STEP_D * STEP_H];
};

static void step_data_init(struct step_data *d)
{
	double tmp[STEP_H * STEP_D];
	uint64_t s = 5;
	gradcheck_fill(tmp, STEP_B * STEP_D, 0, 1, &s);
	for (size_t i = 0; i < STEP_B * STEP_D; i++)
		d->x[i] = (vb_real)tmp[i];
	gradcheck_fill(tmp, STEP_H * STEP_D, -0.2, 0.2, &s);
	for (size_t i = 0; i < STEP_H * STEP_D; i++) {
		d->w1[i] = (vb_real)tmp[i];
		d->w2[i] = (vb_real)tmp[(i * 7) % (STEP_H * STEP_D)];
	}
	for (size_t i = 0; i < STEP_H; i++)
		d->b1[i] = (vb_real)(0.01 * (double)i);
	memset(d->gw1, 0, sizeof d->gw1);
	memset(d->gb1, 0, sizeof d->gb1);
	memset(d->gw2, 0, sizeof d->gw2);
}

static double run_step(struct graph *g, struct step_data *d)
{
	struct vb_error err = {0};
	struct graph_node *x, *w1, *b1, *w2, *h, *y, *loss;
	graph_reset(g);
	x = graph_input(g, "x", tensor_view2(d->x, STEP_B, STEP_D), false);
	w1 = graph_param(g, "w1", tensor_view2(d->w1, STEP_H, STEP_D),
			 d->gw1);
	b1 = graph_param(g, "b1", tensor_view1(d->b1, STEP_H), d->gb1);
	w2 = graph_param(g, "w2", tensor_view2(d->w2, STEP_D, STEP_H),
			 d->gw2);
	h = op_softplus(g, "h", op_linear(g, "fc1", x, w1, b1));
	y = op_linear(g, "fc2", h, w2, NULL);
	loss = op_mean(g, "loss", op_bce_logits(g, "rec", y, x));
	ck_assert_ptr_nonnull(loss);
	ck_assert_int_eq(graph_backward(g, loss, &err), VB_OK);
	return loss->value.data[0];
}

START_TEST(test_reset_reuses_arena)
{
	/* the first step needs more than the 64 KiB arena, so it grows;
	 * reset folds the chunks and later steps allocate nothing */
	struct graph *g = new_graph(1 << 16);
	struct step_data *d = malloc(sizeof *d);
	ck_assert_ptr_nonnull(d);
	step_data_init(d);
	size_t r0 = graph_arena_reserved(g);
	double l1 = run_step(g, d);
	size_t r1 = graph_arena_reserved(g), u1 = graph_arena_used(g);
	size_t n1 = graph_node_count(g);
	ck_assert_uint_gt(r1, r0);
	double l2 = run_step(g, d);
	size_t r2 = graph_arena_reserved(g), u2 = graph_arena_used(g);
	ck_assert_uint_eq(r2, r1);
	ck_assert_uint_eq(u2, u1);
	ck_assert_uint_eq(graph_node_count(g), n1);
	ck_assert_double_eq(l1, l2);
	run_step(g, d);
	ck_assert_uint_eq(graph_arena_reserved(g), r1);
	/* reset empties the tape */
	graph_reset(g);
	ck_assert_uint_eq(graph_node_count(g), 0);
	ck_assert_uint_eq(graph_arena_used(g), 0);
	free(d);
	graph_free(g);
}
END_TEST

START_TEST(test_grad_mode)
{
	struct graph *g = new_graph(1 << 16);
	vb_real av[2] = {1, 2}, pg[2] = {0, 0};
	struct graph_node *a = graph_input(g, "a", tensor_view1(av, 2), true);
	struct graph_node *p = graph_param(g, "p", tensor_view1(av, 2), pg);
	ck_assert(a->requires_grad);
	ck_assert(p->requires_grad);
	ck_assert(op_exp(g, "e", a)->requires_grad);
	ck_assert(graph_set_grad_enabled(g, false));
	struct graph_node *e = op_exp(g, "e_off", a);
	struct graph_node *m = op_mul(g, "m_off", a, p);
	struct graph_node *b = graph_input(g, "b", tensor_view1(av, 2), true);
	struct graph_node *q = graph_param(g, "q", tensor_view1(av, 2), pg);
	ck_assert(!e->requires_grad);
	ck_assert(!m->requires_grad);
	ck_assert(!b->requires_grad);
	ck_assert(!q->requires_grad);
	/* values are still computed */
	ck_assert_double_eq_tol(e->value.data[1], exp(2.0), 1e-15);
	ck_assert(!graph_set_grad_enabled(g, true));
	ck_assert(op_add(g, "on", a, e)->requires_grad);
	/* nodes of a constant never require grad, nor relu's mask */
	ck_assert(!op_exp(g, "c", graph_const(g, "k", tensor_view1(av, 2)))
			   ->requires_grad);
	ck_assert(!op_relu_mask(g, "mask", a)->requires_grad);
	graph_free(g);
}
END_TEST

START_TEST(test_param_slices)
{
	/* L = sum(w * x) with w a parameter: dL/dw = x. graph_grad gives it
	 * as a constant and leaves the slice alone; graph_backward adds it to
	 * the slice, twice gives twice. */
	struct graph *g = new_graph(1 << 16);
	vb_real wv[3] = {0.5, -1, 2}, xv[3] = {3, -4, 0.25}, gw[3] = {0};
	struct vb_error err = {0};
	struct graph_node *res[2];
	struct graph_node *w = graph_param(g, "w", tensor_view1(wv, 3), gw);
	struct graph_node *x = graph_input(g, "x", tensor_view1(xv, 3), true);
	struct graph_node *l = op_sum(g, "l", op_mul(g, "wx", w, x));
	struct graph_node *wrt[2] = {w, x};
	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(graph_grad(g, l, NULL, wrt, 2, false, res, &err),
			 VB_OK);
	for (int k = 0; k < 2; k++) {
		ck_assert_int_eq(res[k]->kind, GRAPH_NODE_CONST);
		ck_assert(!res[k]->requires_grad);
		ck_assert_uint_eq(res[k]->value.n, 3);
	}
	for (int i = 0; i < 3; i++) {
		ck_assert_double_eq(res[0]->value.data[i], xv[i]);
		ck_assert_double_eq(res[1]->value.data[i], wv[i]);
		ck_assert_double_eq(gw[i], 0);
	}
	/* with create_graph too, the slice stays untouched */
	ck_assert_int_eq(graph_grad(g, l, NULL, wrt, 2, true, res, &err),
			 VB_OK);
	for (int i = 0; i < 3; i++) {
		ck_assert_double_eq(res[0]->value.data[i], xv[i]);
		ck_assert_double_eq(gw[i], 0);
	}
	ck_assert_int_eq(graph_backward(g, l, &err), VB_OK);
	for (int i = 0; i < 3; i++) {
		ck_assert_double_eq(gw[i], xv[i]);
		/* INPUT leaves get theirs in ->grad */
		ck_assert_double_eq(x->grad.data[i], wv[i]);
	}
	ck_assert_int_eq(graph_backward(g, l, &err), VB_OK);
	for (int i = 0; i < 3; i++) {
		ck_assert_double_eq(gw[i], 2 * xv[i]);
		/* leaf grads are per pass, not accumulated */
		ck_assert_double_eq(x->grad.data[i], wv[i]);
	}
	/* graph_grad after backward: slice keeps its value */
	ck_assert_int_eq(graph_grad(g, l, NULL, wrt, 1, false, res, &err),
			 VB_OK);
	for (int i = 0; i < 3; i++)
		ck_assert_double_eq(gw[i], 2 * xv[i]);
	graph_free(g);
}
END_TEST

START_TEST(test_unreachable_gives_zeros)
{
	struct graph *g = new_graph(1 << 16);
	vb_real av[3] = {1, 2, 3}, bv[2] = {4, 5};
	struct vb_error err = {0};
	struct graph_node *res[2];
	struct graph_node *a = graph_input(g, "a", tensor_view1(av, 3), true);
	struct graph_node *b = graph_input(g, "b", tensor_view1(bv, 2), true);
	struct graph_node *l = op_sum(g, "l", op_square(g, "sq", a));
	/* made after l: cannot reach it either */
	struct graph_node *late = op_exp(g, "late", b);
	struct graph_node *wrt[2] = {b, late};
	for (int create = 0; create < 2; create++) {
		ck_assert_int_eq(graph_grad(g, l, NULL, wrt, 2, create, res,
					    &err),
				 VB_OK);
		ck_assert_uint_eq(res[0]->value.n, 2);
		ck_assert_uint_eq(res[1]->value.n, 2);
		for (int i = 0; i < 2; i++) {
			ck_assert_double_eq(res[0]->value.data[i], 0);
			ck_assert_double_eq(res[1]->value.data[i], 0);
		}
	}
	/* and a reachable one next to it is still right */
	struct graph_node *w2[2] = {b, a};
	ck_assert_int_eq(graph_grad(g, l, NULL, w2, 2, false, res, &err),
			 VB_OK);
	for (int i = 0; i < 3; i++)
		ck_assert_double_eq(res[1]->value.data[i], 2 * av[i]);
	graph_free(g);
}
END_TEST

START_TEST(test_grad_wrt_no_grad_refused)
{
	/* A gradient with respect to a node that does not require grad is
	 * refused (PyTorch does the same): through exp alone it would read
	 * as zero, through a product with a grad-requiring input as the true
	 * value; and relu's mask or op_full have no backward to call. */
	struct graph *g = new_graph(1 << 16);
	vb_real xv[2] = {1, 2}, wv[2] = {3, 4};
	struct vb_error err = {0};
	struct graph_node *res[2] = {NULL, NULL};
	struct graph_node *x = graph_input(g, "x", tensor_view1(xv, 2), false);
	struct graph_node *w = graph_input(g, "w", tensor_view1(wv, 2), true);
	struct graph_node *mask = op_relu_mask(g, "mask", w);
	struct graph_node *f = op_full(g, "f", 1, (size_t[]){2}, 3);
	struct graph_node *l = op_sum(
		g, "l", op_mul(g, "m", op_mul(g, "xw", op_exp(g, "e", x), w),
			       op_mul(g, "mf", mask, f)));
	struct graph_node *bad[3] = {x, mask, f};
	ck_assert_ptr_nonnull(l);
	for (int k = 0; k < 3; k++)
		for (int create = 0; create < 2; create++) {
			struct graph_node *wrt[2] = {w, bad[k]};
			vb_error_clear(&err);
			ck_assert_int_eq(graph_grad(g, l, NULL, wrt, 2, create,
						    res, &err),
					 VB_ERR_INTERNAL);
			ck_assert_ptr_nonnull(strstr(err.msg, bad[k]->name));
			ck_assert_ptr_null(res[0]);
			ck_assert_ptr_null(res[1]);
		}
	/* the tape is still usable: the sticky error is not set */
	ck_assert_int_eq(graph_status(g), VB_OK);
	ck_assert_int_eq(graph_grad(g, l, NULL, &w, 1, false, res, &err),
			 VB_OK);
	for (int i = 0; i < 2; i++)
		ck_assert_double_eq_tol(res[0]->value.data[i], 3 * exp(xv[i]),
					1e-12);
	graph_free(g);
}
END_TEST

/* y = 2 x with a fused backward but no vjp (like op_bce's bce_grad). */
static void twice_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	if (ga)
		for (size_t i = 0; i < n->value.n; i++)
			ga->data[i] += 2 * n->grad.data[i];
}

static const struct graph_op OP_TWICE = {"twice", twice_backward, NULL};

static struct graph_node *op_twice(struct graph *g, struct graph_node *a)
{
	struct graph_node *n = graph_op_node(g, &OP_TWICE, "twice", &a, 1,
					     a->value.ndim, a->value.shape);
	if (!n)
		return NULL;
	for (size_t i = 0; i < n->value.n; i++)
		n->value.data[i] = 2 * a->value.data[i];
	return graph_node_done(g, n);
}

START_TEST(test_grad_wrt_intermediate)
{
	/* L = sum(sigmoid(h)^2) with h = twice(x): dL/dh = 2 s^2 (1 - s).
	 * Asking for it with create_graph needs nothing below h, so the
	 * missing vjp of twice does not matter; asking for dL/dx does. */
	struct graph *g = new_graph(1 << 16);
	vb_real xv[3] = {-0.5, 0.25, 1};
	struct vb_error err = {0};
	struct graph_node *res[1];
	struct graph_node *x = graph_input(g, "x", tensor_view1(xv, 3), true);
	struct graph_node *h = op_twice(g, x);
	struct graph_node *s = op_sigmoid(g, "s", h);
	struct graph_node *l = op_sum(g, "l", op_square(g, "s2", s));
	ck_assert_ptr_nonnull(l);
	for (int create = 0; create < 2; create++) {
		ck_assert_msg(graph_grad(g, l, NULL, &h, 1, create, res,
					 &err) == VB_OK,
			      "create_graph %d: %s", create, err.msg);
		for (int i = 0; i < 3; i++) {
			double sv = 1 / (1 + exp(-2 * xv[i]));
			ck_assert(gradcheck_close(res[0]->value.data[i],
						  2 * sv * sv * (1 - sv),
						  1e-14, 0));
		}
	}
	/* without create_graph the fused kernel goes through twice */
	ck_assert_int_eq(graph_grad(g, l, NULL, &x, 1, false, res, &err),
			 VB_OK);
	for (int i = 0; i < 3; i++) {
		double sv = 1 / (1 + exp(-2 * xv[i]));
		ck_assert(gradcheck_close(res[0]->value.data[i],
					  4 * sv * sv * (1 - sv), 1e-14, 0));
	}
	/* with it, the missing vjp is reported, naming op and node */
	ck_assert_int_eq(gc_grad_fails(g, l, x, "twice"), VB_ERR_INTERNAL);
	graph_free(g);
}
END_TEST

START_TEST(test_seeded_vjp)
{
	/* y = sigmoid(a b) for a (B, K), b (K, N): graph_grad with a seed S
	 * (B, N) is the vector-Jacobian product S^T dy: with D = S y (1 - y),
	 * d/da = D b^T, d/db = a^T D, against plain loops. */
	enum { B = 3, K = 4, N = 2 };
	struct graph *g = new_graph(1 << 16);
	double ad[B * K], bd[K * N], sd[B * N];
	vb_real av[B * K], bv[K * N], sv[B * N];
	uint64_t s = 9;
	struct vb_error err = {0};
	struct graph_node *res[2];
	gradcheck_fill(ad, B * K, -1, 1, &s);
	gradcheck_fill(bd, K * N, -1, 1, &s);
	gradcheck_fill(sd, B * N, -1, 1, &s);
	for (int i = 0; i < B * K; i++)
		av[i] = (vb_real)ad[i];
	for (int i = 0; i < K * N; i++)
		bv[i] = (vb_real)bd[i];
	for (int i = 0; i < B * N; i++)
		sv[i] = (vb_real)sd[i];
	struct graph_node *a = graph_input(g, "a", tensor_view2(av, B, K),
					   true);
	struct graph_node *b = graph_input(g, "b", tensor_view2(bv, K, N),
					   true);
	struct graph_node *y = op_sigmoid(g, "y",
					  op_matmul(g, "ab", a, b, false,
						    false));
	struct graph_node *seed = graph_const(g, "seed",
					      tensor_view2(sv, B, N));
	struct graph_node *wrt[2] = {a, b};
	double dd[B * N];
	ck_assert_ptr_nonnull(y);
	for (int i = 0; i < B * N; i++)
		dd[i] = sd[i] * y->value.data[i] * (1 - y->value.data[i]);
	for (int create = 0; create < 2; create++) {
		ck_assert_int_eq(graph_grad(g, y, seed, wrt, 2, create, res,
					    &err),
				 VB_OK);
		for (int i = 0; i < B; i++)
			for (int k = 0; k < K; k++) {
				double want = 0;
				for (int j = 0; j < N; j++)
					want += dd[i * N + j] * bd[k * N + j];
				/* N products of O(1): a few ulps */
				ck_assert(gradcheck_close(
					res[0]->value.data[i * K + k], want,
					1e-13, 1e-15));
			}
		for (int k = 0; k < K; k++)
			for (int j = 0; j < N; j++) {
				double want = 0;
				for (int i = 0; i < B; i++)
					want += ad[i * K + k] * dd[i * N + j];
				ck_assert(gradcheck_close(
					res[1]->value.data[k * N + j], want,
					1e-13, 1e-15));
			}
	}
	/* a seed of the wrong size is refused */
	ck_assert_int_eq(graph_grad(g, y, a, wrt, 2, false, res, &err),
			 VB_ERR_SHAPE);
	graph_free(g);
}
END_TEST

/* ---- create_graph then backward: a second derivative ---- */

#define SD_B 2
#define SD_D 3
#define SD_H 4

/* L(W) = sum_bd (d/dx_bd sum(sigmoid(x W^T)))^2 in plain double:
 * d/dx_bd = sum_h s'(a_bh) W_hd with s' = y (1 - y), a = x W^T. */
static double sd_loss(const double *x, const double *w)
{
	double L = 0;
	for (int b = 0; b < SD_B; b++) {
		double sp[SD_H];
		for (int h = 0; h < SD_H; h++) {
			double a = 0, y;
			for (int d = 0; d < SD_D; d++)
				a += x[b * SD_D + d] * w[h * SD_D + d];
			y = 1 / (1 + exp(-a));
			sp[h] = y * (1 - y);
		}
		for (int d = 0; d < SD_D; d++) {
			double gx = 0;
			for (int h = 0; h < SD_H; h++)
				gx += sp[h] * w[h * SD_D + d];
			L += gx * gx;
		}
	}
	return L;
}

START_TEST(test_create_graph_second_derivative)
{
	struct graph *g = new_graph(1 << 16);
	double xd[SD_B * SD_D], wd[SD_H * SD_D];
	vb_real xv[SD_B * SD_D], wv[SD_H * SD_D], gw[SD_H * SD_D];
	uint64_t s = 31;
	struct vb_error err = {0};
	struct graph_node *gx, *res[1];
	gradcheck_fill(xd, SD_B * SD_D, -1.5, 1.5, &s);
	gradcheck_fill(wd, SD_H * SD_D, -1.5, 1.5, &s);
	for (int i = 0; i < SD_B * SD_D; i++)
		xv[i] = (vb_real)xd[i];
	for (int i = 0; i < SD_H * SD_D; i++) {
		wv[i] = (vb_real)wd[i];
		gw[i] = 0;
	}
	struct graph_node *x = graph_input(g, "x",
					   tensor_view2(xv, SD_B, SD_D), true);
	struct graph_node *w = graph_param(g, "w",
					   tensor_view2(wv, SD_H, SD_D), gw);
	struct graph_node *f = op_sum(g, "f", op_sigmoid(g, "y",
							 op_linear(g, "a", x,
								   w, NULL)));
	ck_assert_int_eq(graph_grad(g, f, NULL, &x, 1, true, &gx, &err),
			 VB_OK);
	ck_assert(gx->requires_grad);
	/* the gradient itself against the closed form */
	for (int b = 0; b < SD_B; b++)
		for (int d = 0; d < SD_D; d++) {
			double want = 0;
			for (int h = 0; h < SD_H; h++) {
				double a = 0, y;
				for (int e = 0; e < SD_D; e++)
					a += xd[b * SD_D + e] * wd[h * SD_D + e];
				y = 1 / (1 + exp(-a));
				want += y * (1 - y) * wd[h * SD_D + d];
			}
			ck_assert(gradcheck_close(gx->value.data[b * SD_D + d],
						  want, 1e-13, 1e-15));
		}
	struct graph_node *L = op_sum(g, "L", op_square(g, "gx2", gx));
	ck_assert_ptr_nonnull(L);
	ck_assert(gradcheck_close(L->value.data[0], sd_loss(xd, wd), 1e-13,
				  0));
	ck_assert_int_eq(graph_backward(g, L, &err), VB_OK);
	ck_assert_int_eq(graph_grad(g, L, NULL, &w, 1, false, res, &err),
			 VB_OK);
	for (int i = 0; i < SD_H * SD_D; i++) {
		double w0 = wd[i];
		double h = 1e-5 * (fabs(w0) > 1 ? fabs(w0) : 1);
		double lp, lm, num;
		wd[i] = w0 + h;
		lp = sd_loss(xd, wd);
		wd[i] = w0 - h;
		lm = sd_loss(xd, wd);
		wd[i] = w0;
		num = (lp - lm) / (2 * h);
		ck_assert(isfinite(gw[i]));
		/* STYLE.md 6: rtol 1e-5 (truncation h^2 ~ 1e-10), atol 1e-8
		 * (L ~ 1, rounding eps L / h ~ 1e-11) */
		ck_assert_msg(gradcheck_close(gw[i], num, 1e-5, 1e-8),
			      "dL/dw[%d]: backward %.17g, numeric %.17g", i,
			      gw[i], num);
		ck_assert_msg(gradcheck_close(res[0]->value.data[i], gw[i],
					      1e-12, 1e-15),
			      "dL/dw[%d]: graph_grad %.17g, backward %.17g",
			      i, res[0]->value.data[i], gw[i]);
	}
	graph_free(g);
}
END_TEST

START_TEST(test_nested_create_graph)
{
	/* Third derivative of sum(sigmoid(x)) by three nested graph_grad
	 * calls, the first two with create_graph: s' = s (1 - s),
	 * s'' = s' (1 - 2 s), s''' = s' (1 - 6 s + 6 s^2). */
	struct graph *g = new_graph(1 << 16);
	vb_real xv[4] = {-2, -0.3, 0.7, 1.9};
	struct vb_error err = {0};
	struct graph_node *g1, *g2, *g3;
	struct graph_node *x = graph_input(g, "x", tensor_view1(xv, 4), true);
	struct graph_node *f = op_sum(g, "f", op_sigmoid(g, "s", x));
	ck_assert_int_eq(graph_grad(g, f, NULL, &x, 1, true, &g1, &err),
			 VB_OK);
	ck_assert_int_eq(graph_grad(g, op_sum(g, "f1", g1), NULL, &x, 1, true,
				    &g2, &err),
			 VB_OK);
	ck_assert_int_eq(graph_grad(g, op_sum(g, "f2", g2), NULL, &x, 1, false,
				    &g3, &err),
			 VB_OK);
	for (int i = 0; i < 4; i++) {
		double sv = 1 / (1 + exp(-(double)xv[i])), d1 = sv * (1 - sv);
		/* a handful of roundings on values of order 0.1 */
		ck_assert(gradcheck_close(g1->value.data[i], d1, 1e-14, 1e-16));
		ck_assert(gradcheck_close(g2->value.data[i], d1 * (1 - 2 * sv),
					  1e-13, 1e-16));
		ck_assert(gradcheck_close(g3->value.data[i],
					  d1 * (1 - 6 * sv + 6 * sv * sv),
					  1e-12, 1e-16));
	}
	graph_free(g);
}
END_TEST

/* ---- hook ---- */

#define HOOK_MAX 64

struct hook_log {
	int n;
	size_t id[HOOK_MAX];
	enum graph_event ev[HOOK_MAX];
};

static void log_hook(void *ctx, struct graph *g, struct graph_node *n,
		     enum graph_event ev)
{
	struct hook_log *h = ctx;
	(void)g;
	if (h->n < HOOK_MAX) {
		h->id[h->n] = n->id;
		h->ev[h->n] = ev;
	}
	h->n++;
}

START_TEST(test_hook_events)
{
	struct graph *g = new_graph(1 << 16);
	struct hook_log log;
	vb_real xv[4] = {1, -2, 3, 0.5}, wv[4] = {0.5, 1, -1, 2};
	vb_real gw[4] = {0};
	struct vb_error err = {0};
	memset(&log, 0, sizeof log);
	graph_set_hook(g, log_hook, &log);
	struct graph_node *x = graph_input(g, "x", tensor_view2(xv, 2, 2),
					   false);
	struct graph_node *w = graph_param(g, "w", tensor_view2(wv, 2, 2),
					   gw);
	struct graph_node *y = op_linear(g, "y", x, w, NULL);
	struct graph_node *r = op_reshape(g, "r", op_exp(g, "e", y), 1,
					  (size_t[]){4});
	struct graph_node *c = op_exp(g, "unused", x); /* no grad */
	struct graph_node *l = op_sum(g, "l", r);
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(l);
	/* FORWARD for every node, in tape order, once each */
	ck_assert_int_eq(log.n, (int)graph_node_count(g));
	for (int i = 0; i < log.n; i++) {
		ck_assert_int_eq(log.ev[i], GRAPH_EVENT_FORWARD);
		ck_assert_uint_eq(log.id[i], (size_t)i);
	}
	int n_fwd = log.n;
	ck_assert_int_eq(graph_backward(g, l, &err), VB_OK);
	/* BACKWARD for the op nodes on the path, in reverse tape order:
	 * l (6), r (4), e (3), y (2); not the leaves, not "unused" (5) */
	static const size_t want[4] = {6, 4, 3, 2};
	ck_assert_int_eq(log.n - n_fwd, 4);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(log.ev[n_fwd + i], GRAPH_EVENT_BACKWARD);
		ck_assert_uint_eq(log.id[n_fwd + i], want[i]);
	}
	/* removed: no more events */
	graph_set_hook(g, NULL, NULL);
	ck_assert_ptr_nonnull(op_exp(g, "quiet", x));
	ck_assert_int_eq(log.n, n_fwd + 4);
	graph_free(g);
}
END_TEST

/* graph_grad walks only the nodes between out and wrt: a branch of out
 * that does not depend on wrt (an expensive one, in the RHVAE the
 * decoder next to the kinetic term) gets no backward call. */
START_TEST(test_grad_walks_only_the_path)
{
	struct graph *g = new_graph(1 << 16);
	struct hook_log log;
	vb_real av[3] = {1, 2, 3}, bv[3] = {0.5, -1, 2};
	struct vb_error err = {0};
	struct graph_node *res[1];
	struct graph_node *a = graph_input(g, "a", tensor_view1(av, 3), true);
	struct graph_node *b = graph_input(g, "b", tensor_view1(bv, 3), true);
	struct graph_node *ea = op_exp(g, "ea", op_square(g, "sa", a));
	struct graph_node *sb = op_square(g, "sb", b);
	struct graph_node *l = op_sum(g, "l", op_add(g, "sum", ea, sb));
	ck_assert_ptr_nonnull(l);
	memset(&log, 0, sizeof log);
	graph_set_hook(g, log_hook, &log);
	for (int create = 0; create < 2; create++) {
		int n0 = log.n;
		ck_assert_int_eq(graph_grad(g, l, NULL, &b, 1, create, res,
					    &err),
				 VB_OK);
		for (int i = 0; i < 3; i++)
			ck_assert_double_eq_tol(res[0]->value.data[i],
						2 * bv[i], 1e-15);
		if (create)
			continue; /* builds nodes: FORWARD events only */
		/* backward of l, sum, sb: never ea or sa (the result
		 * node's FORWARD event aside) */
		int n_bwd = 0;
		for (int i = n0; i < log.n; i++) {
			if (log.ev[i] != GRAPH_EVENT_BACKWARD)
				continue;
			n_bwd++;
			ck_assert(log.id[i] != ea->id &&
				  log.id[i] != ea->in[0]->id);
		}
		ck_assert_int_eq(n_bwd, 3);
	}
	graph_set_hook(g, NULL, NULL);
	graph_free(g);
}
END_TEST

/* graph_depends_on follows inputs transitively, optionally around one
 * node, and leaves no pass scratch behind (a pass right after it is
 * unaffected). */
START_TEST(test_depends_on)
{
	struct graph *g = new_graph(1 << 16);
	vb_real av[2] = {1, 2}, bv[2] = {3, 4};
	struct vb_error err = {0};
	struct graph_node *res[1];
	struct graph_node *a = graph_input(g, "a", tensor_view1(av, 2), true);
	struct graph_node *b = graph_input(g, "b", tensor_view1(bv, 2), true);
	struct graph_node *ea = op_exp(g, "ea", a);
	struct graph_node *eb = op_exp(g, "eb", b);
	struct graph_node *m = op_mul(g, "m", op_neg(g, "na", ea), eb);
	struct graph_node *l = op_sum(g, "l", m);
	struct graph_node *na = m->in[0];
	ck_assert(graph_depends_on(g, l, a, NULL));
	ck_assert(graph_depends_on(g, m, b, NULL));
	ck_assert(graph_depends_on(g, ea, ea, NULL));
	ck_assert(!graph_depends_on(g, ea, b, NULL));
	ck_assert(!graph_depends_on(g, eb, a, NULL));
	ck_assert(!graph_depends_on(g, a, l, NULL)); /* made before it */
	/* every path from a to l runs through na; not so from b */
	ck_assert(!graph_depends_on(g, l, a, na));
	ck_assert(!graph_depends_on(g, l, a, ea));
	ck_assert(graph_depends_on(g, l, b, na));
	ck_assert(!graph_depends_on(g, l, b, eb));
	ck_assert(!graph_depends_on(g, a, a, a));
	/* a second path around the avoided node */
	struct graph_node *l2 = op_add(g, "l2", l, op_sum(g, "sa", a));
	ck_assert(graph_depends_on(g, l2, a, na));
	ck_assert_int_eq(graph_grad(g, l, NULL, &b, 1, false, res, &err),
			 VB_OK);
	for (int i = 0; i < 2; i++)
		ck_assert_double_eq_tol(res[0]->value.data[i],
					-exp(av[i]) * exp(bv[i]),
					1e-12 * exp(av[i] + bv[i]));
	graph_free(g);
}
END_TEST

START_TEST(test_phase_stamp)
{
	struct graph *g = new_graph(1 << 16);
	vb_real xv[2] = {1, 2};
	struct graph_node *a = graph_input(g, "a", tensor_view1(xv, 2), true);
	graph_set_phase(g, 3);
	ck_assert_int_eq(graph_phase(g), 3);
	struct graph_node *b = op_exp(g, "b", a);
	ck_assert_int_eq(a->phase, 0);
	ck_assert_int_eq(b->phase, 3);
	graph_reset(g);
	ck_assert_int_eq(graph_phase(g), 0);
	graph_free(g);
}
END_TEST

TU_MAIN_CASES("graph",
	TU_CASE("tape", 0, test_names_and_scopes, test_sticky_error,
		test_backward_needs_scalar, test_reset_reuses_arena,
		test_grad_mode, test_phase_stamp, test_hook_events,
		test_grad_walks_only_the_path, test_depends_on),
	TU_CASE("grad", 0, test_param_slices, test_unreachable_gives_zeros,
		test_grad_wrt_no_grad_refused, test_grad_wrt_intermediate,
		test_seeded_vjp, test_create_graph_second_derivative,
		test_nested_create_graph))
