/* test_ops (double build): every op of ops.h through the gradcheck
 * harness, first order on both backward paths and second order wherever a
 * vjp exists, and the harness catching a wrong gradient. Closed-form
 * values and composites are test_ops_composite's. */
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
#error "test_ops checks gradients in the double build (vb_core_f64)"
#endif

/* PyTorch's binary_cross_entropy constants (see op_bce). */
#define BCE_LOG_CLAMP (-100.0)
#define BCE_DENOM_EPS 1e-12

enum opx_kind {
	OPX_MATMUL,
	OPX_LINEAR,
	OPX_RELU,
	OPX_SIGMOID,
	OPX_SOFTPLUS, OPX_CLAMP,
	OPX_EXP,
	OPX_LOG,
	OPX_SQUARE,
	OPX_NEG,
	OPX_SCALE,
	OPX_ADD_SCALAR,
	OPX_ADD,
	OPX_SUB,
	OPX_MUL,
	OPX_DIV,
	OPX_MUL_ROWS,
	OPX_ADD_BIAS,
	OPX_EXPAND_ROWS,
	OPX_REPEAT_ROWS,
	OPX_EXPAND,
	OPX_RESHAPE,
	OPX_SUM,
	OPX_MEAN,
	OPX_SUM_ROWS,
	OPX_SUM_COLS,
	OPX_MSE,
	OPX_BCE,
	OPX_BCE_LOGITS
};

/* What the generic builder makes: one op from the leaves, optionally
 * squared so that ops linear in their inputs get a non-zero Hessian (the
 * second-order check then runs their vjp inside a curved function). */
struct opx {
	enum opx_kind kind;
	bool ta, tb;     /* matmul */
	bool bias;       /* linear */
	double s;        /* scale, add_scalar */
	size_t count;    /* expand_rows columns, repeat_rows rows */
	int ndim;        /* expand, reshape target */
	size_t shape[TENSOR_MAX_DIM];
	bool square_out;
	bool self_in;    /* binary ops and matmul on (a, a) */
};

static struct graph_node *build_op(struct graph *g, struct graph_node **in,
				   void *ctx)
{
	const struct opx *o = ctx;
	struct graph_node *y = NULL, *in1 = o->self_in ? in[0] : in[1];
	switch (o->kind) {
	case OPX_MATMUL:
		y = op_matmul(g, "y", in[0], in1, o->ta, o->tb);
		break;
	case OPX_LINEAR:
		y = op_linear(g, "y", in[0], in[1], o->bias ? in[2] : NULL);
		break;
	case OPX_RELU:
		y = op_relu(g, "y", in[0]);
		break;
	case OPX_SIGMOID:
		y = op_sigmoid(g, "y", in[0]);
		break;
	case OPX_SOFTPLUS:
		y = op_softplus(g, "y", in[0]);
		break;
	case OPX_CLAMP:
		y = op_clamp(g, "y", in[0], -1, 1.5);
		break;
	case OPX_EXP:
		y = op_exp(g, "y", in[0]);
		break;
	case OPX_LOG:
		y = op_log(g, "y", in[0]);
		break;
	case OPX_SQUARE:
		y = op_square(g, "y", in[0]);
		break;
	case OPX_NEG:
		y = op_neg(g, "y", in[0]);
		break;
	case OPX_SCALE:
		y = op_scale(g, "y", in[0], o->s);
		break;
	case OPX_ADD_SCALAR:
		y = op_add_scalar(g, "y", in[0], o->s);
		break;
	case OPX_ADD:
		y = op_add(g, "y", in[0], in1);
		break;
	case OPX_SUB:
		y = op_sub(g, "y", in[0], in1);
		break;
	case OPX_MUL:
		y = op_mul(g, "y", in[0], in1);
		break;
	case OPX_DIV:
		y = op_div(g, "y", in[0], in1);
		break;
	case OPX_MUL_ROWS:
		y = op_mul_rows(g, "y", in[0], in[1]);
		break;
	case OPX_ADD_BIAS:
		y = op_add_bias(g, "y", in[0], in[1]);
		break;
	case OPX_EXPAND_ROWS:
		y = op_expand_rows(g, "y", in[0], o->count);
		break;
	case OPX_REPEAT_ROWS:
		y = op_repeat_rows(g, "y", in[0], o->count);
		break;
	case OPX_EXPAND:
		y = op_expand(g, "y", in[0], o->ndim, o->shape);
		break;
	case OPX_RESHAPE:
		y = op_reshape(g, "y", in[0], o->ndim, o->shape);
		break;
	case OPX_SUM:
		y = op_sum(g, "y", in[0]);
		break;
	case OPX_MEAN:
		y = op_mean(g, "y", in[0]);
		break;
	case OPX_SUM_ROWS:
		y = op_sum_rows(g, "y", in[0]);
		break;
	case OPX_SUM_COLS:
		y = op_sum_cols(g, "y", in[0]);
		break;
	case OPX_MSE:
		y = op_mse(g, "y", in[0], in[1]);
		break;
	case OPX_BCE:
		y = op_bce(g, "y", in[0], in[1], BCE_LOG_CLAMP, BCE_DENOM_EPS);
		break;
	case OPX_BCE_LOGITS:
		y = op_bce_logits(g, "y", in[0], in[1]);
		break;
	}
	if (o->square_out)
		y = op_square(g, "y.sq", y);
	return y;
}

static struct gradcheck_case one_case(const char *name, struct opx *o,
				      uint64_t seed)
{
	return gc_case(name, build_op, o, seed);
}
/* First order on both paths; second order plain (when curved) and with
 * the output squared. */
static void check_all(struct gradcheck_case *c, bool second, bool curved)
{
	struct opx *o = c->ctx;
	gc_assert_all(c, second, curved, &o->square_out);
}

START_TEST(test_matmul)
{
	/* M = 3, K = 4, N = 2: non-square so a swapped dimension fails. */
	double a[12], b[8];
	uint64_t s = 11;
	static const char *names[4] = {"matmul(a, b)", "matmul(a^T, b)",
				       "matmul(a, b^T)", "matmul(a^T, b^T)"};
	gradcheck_fill(a, 12, -1, 1, &s);
	gradcheck_fill(b, 8, -1, 1, &s);
	for (int form = 0; form < 4; form++) {
		struct opx o = {.kind = OPX_MATMUL};
		struct gradcheck_case c;
		o.ta = form & 1;
		o.tb = (form >> 1) & 1;
		c = one_case(names[form], &o, 100 + (uint64_t)form);
		c.n_leaves = 2;
		c.leaf[0] = gc_leaf("a", GRADCHECK_INPUT, a, 2,
				 o.ta ? GC_SHAPE(4, 3) : GC_SHAPE(3, 4));
		c.leaf[1] = gc_leaf("b", GRADCHECK_INPUT, b, 2,
				 o.tb ? GC_SHAPE(2, 4) : GC_SHAPE(4, 2));
		check_all(&c, true, true);
	}
}
END_TEST

START_TEST(test_linear)
{
	double x[12], w[8], bb[2], x4[12], w4[18], b4[3];
	uint64_t s = 12;
	struct opx o = {.kind = OPX_LINEAR};
	struct gradcheck_case c;
	gradcheck_fill(x, 12, -1, 1, &s);
	gradcheck_fill(w, 8, -1, 1, &s);
	gradcheck_fill(bb, 2, -1, 1, &s);
	gradcheck_fill(x4, 12, -1, 1, &s);
	gradcheck_fill(w4, 18, -1, 1, &s);
	gradcheck_fill(b4, 3, -1, 1, &s);

	c = one_case("linear", &o, 200);
	c.n_leaves = 2;
	c.leaf[0] = gc_leaf("x", GRADCHECK_INPUT, x, 2, GC_SHAPE(3, 4));
	c.leaf[1] = gc_leaf("w", GRADCHECK_INPUT, w, 2, GC_SHAPE(2, 4));
	check_all(&c, true, true);

	/* with bias; w and b as parameters (slices accumulate in backward,
	 * stay untouched in graph_grad) */
	o.bias = true;
	c = one_case("linear+bias", &o, 201);
	c.n_leaves = 3;
	c.leaf[0] = gc_leaf("x", GRADCHECK_INPUT, x, 2, GC_SHAPE(3, 4));
	c.leaf[1] = gc_leaf("w", GRADCHECK_PARAM, w, 2, GC_SHAPE(2, 4));
	c.leaf[2] = gc_leaf("b", GRADCHECK_PARAM, bb, 1, GC_SHAPE(2));
	check_all(&c, true, true);

	/* 4-D input (B, C, H, W) = (2, 2, 1, 3) flattening to in = 6 */
	c = one_case("linear 4-D", &o, 202);
	c.n_leaves = 3;
	c.leaf[0] = gc_leaf("x", GRADCHECK_INPUT, x4, 4, GC_SHAPE(2, 2, 1, 3));
	c.leaf[1] = gc_leaf("w", GRADCHECK_INPUT, w4, 2, GC_SHAPE(3, 6));
	c.leaf[2] = gc_leaf("b", GRADCHECK_INPUT, b4, 1, GC_SHAPE(3));
	check_all(&c, true, true);
}
END_TEST

static void unary_case(enum opx_kind kind, const char *name,
		       const double *x, int ndim, const size_t *shape,
		       bool curved, uint64_t seed)
{
	struct opx o = {.kind = kind, .s = 0};
	struct gradcheck_case c = one_case(name, &o, seed);
	if (kind == OPX_SCALE)
		o.s = -1.7;
	if (kind == OPX_ADD_SCALAR)
		o.s = 0.3;
	c.n_leaves = 1;
	c.leaf[0] = gc_leaf("a", GRADCHECK_INPUT, x, ndim, shape);
	check_all(&c, true, curved);
}

START_TEST(test_relu)
{
	/* |x| >= 0.1: the steps (1e-5) never cross the kink at 0 */
	double x[12];
	uint64_t s = 21;
	gradcheck_fill_signed(x, 12, 0.1, 2, &s);
	unary_case(OPX_RELU, "relu", x, 2, GC_SHAPE(3, 4), false, 300);
}
END_TEST

START_TEST(test_sigmoid)
{
	double x[12];
	uint64_t s = 22;
	gradcheck_fill(x, 12, -4, 4, &s);
	unary_case(OPX_SIGMOID, "sigmoid", x, 2, GC_SHAPE(3, 4), true, 301);
}
END_TEST

START_TEST(test_softplus)
{
	/* Around and above the threshold 20, each at least 0.5 away from it
	 * (steps are 2e-4 there) so no difference straddles the switch.
	 * Above it the vjp's derivative is sigmoid(x) = 1 - O(2e-9) where the
	 * fused kernel has 1: inside GRADCHECK_PATH_RTOL; its second
	 * derivative sigmoid'(x) <= 2.1e-9 stands for the true 0, which
	 * times |R v| <= 1.5 stays inside atol 1e-8. */
	double x[12] = {-6, -1.5, -0.2, 0.3, 1.1, 4.5,
			12, 19.5, 20.5, 21.75, 25, 35};
	unary_case(OPX_SOFTPLUS, "softplus", x, 2, GC_SHAPE(3, 4), true, 302);
}
END_TEST

START_TEST(test_clamp)
{
	/* inside and outside [-1, 1.5], every value at least 0.1 from an
	 * edge so no difference straddles one; outside, the gradient is 0 */
	double x[12] = {-3, -1.2, -0.9, -0.2, 0, 0.4,
			1.1, 1.4, 1.6, 2, 5, -8};
	unary_case(OPX_CLAMP, "clamp", x, 2, GC_SHAPE(3, 4), true, 330);
}
END_TEST

START_TEST(test_exp)
{
	double x[12];
	uint64_t s = 23;
	gradcheck_fill(x, 12, -2, 2, &s);
	unary_case(OPX_EXP, "exp", x, 2, GC_SHAPE(3, 4), true, 303);
}
END_TEST

START_TEST(test_log)
{
	double x[12];
	uint64_t s = 24;
	gradcheck_fill(x, 12, 0.2, 3, &s);
	unary_case(OPX_LOG, "log", x, 2, GC_SHAPE(3, 4), true, 304);
}
END_TEST

START_TEST(test_square_neg_scale_add_scalar)
{
	double x[12];
	uint64_t s = 25;
	gradcheck_fill_signed(x, 12, 0.1, 2, &s);
	unary_case(OPX_SQUARE, "square", x, 2, GC_SHAPE(3, 4), true, 305);
	unary_case(OPX_NEG, "neg", x, 2, GC_SHAPE(3, 4), false, 306);
	unary_case(OPX_SCALE, "scale", x, 2, GC_SHAPE(3, 4), false, 307);
	unary_case(OPX_ADD_SCALAR, "add_scalar", x, 1, GC_SHAPE(12), false, 308);
}
END_TEST

static void binary_case(enum opx_kind kind, const char *name,
			const double *a, const double *b, bool curved,
			uint64_t seed)
{
	struct opx o = {.kind = kind};
	struct gradcheck_case c = one_case(name, &o, seed);
	c.n_leaves = 2;
	c.leaf[0] = gc_leaf("a", GRADCHECK_INPUT, a, 2, GC_SHAPE(3, 4));
	c.leaf[1] = gc_leaf("b", GRADCHECK_INPUT, b, 2, GC_SHAPE(3, 4));
	check_all(&c, true, curved);
}

START_TEST(test_binary)
{
	/* b with |b| in [0.5, 2]: div stays away from its pole */
	double a[12], b[12];
	uint64_t s = 31;
	gradcheck_fill(a, 12, -2, 2, &s);
	gradcheck_fill_signed(b, 12, 0.5, 2, &s);
	binary_case(OPX_ADD, "add", a, b, false, 400);
	binary_case(OPX_SUB, "sub", a, b, false, 401);
	binary_case(OPX_MUL, "mul", a, b, true, 402);
	binary_case(OPX_DIV, "div", a, b, true, 403);
}
END_TEST

START_TEST(test_shared_input)
{
	/* One leaf feeding both inputs: both gradients land in the same
	 * buffer (fused) or are summed by graph_grad (vjp). */
	double a[12];
	uint64_t s = 32;
	struct opx o = {.kind = OPX_MUL, .self_in = true};
	struct gradcheck_case c;
	gradcheck_fill_signed(a, 12, 0.2, 2, &s);
	c = one_case("mul(a, a)", &o, 410);
	c.n_leaves = 1;
	c.leaf[0] = gc_leaf("a", GRADCHECK_INPUT, a, 2, GC_SHAPE(3, 4));
	check_all(&c, true, true);
	o.kind = OPX_ADD;
	c = one_case("add(a, a)", &o, 411);
	c.n_leaves = 1;
	c.leaf[0] = gc_leaf("a", GRADCHECK_PARAM, a, 2, GC_SHAPE(3, 4));
	check_all(&c, true, false);
	o.kind = OPX_MATMUL;
	o.tb = true;
	c = one_case("matmul(a, a^T)", &o, 412);
	c.n_leaves = 1;
	c.leaf[0] = gc_leaf("a", GRADCHECK_INPUT, a, 2, GC_SHAPE(3, 4));
	check_all(&c, true, true);
}
END_TEST

START_TEST(test_mul_rows)
{
	double a[12], sv[3];
	uint64_t s = 41;
	struct opx o = {.kind = OPX_MUL_ROWS};
	struct gradcheck_case c = one_case("mul_rows", &o, 500);
	gradcheck_fill(a, 12, -2, 2, &s);
	gradcheck_fill(sv, 3, -2, 2, &s);
	c.n_leaves = 2;
	c.leaf[0] = gc_leaf("a", GRADCHECK_INPUT, a, 3, GC_SHAPE(3, 2, 2));
	c.leaf[1] = gc_leaf("s", GRADCHECK_INPUT, sv, 1, GC_SHAPE(3));
	check_all(&c, true, true);
}
END_TEST

START_TEST(test_add_bias)
{
	double a[12], b[4];
	uint64_t s = 42;
	struct opx o = {.kind = OPX_ADD_BIAS};
	struct gradcheck_case c = one_case("add_bias", &o, 501);
	gradcheck_fill(a, 12, -2, 2, &s);
	gradcheck_fill(b, 4, -2, 2, &s);
	c.n_leaves = 2;
	c.leaf[0] = gc_leaf("a", GRADCHECK_INPUT, a, 2, GC_SHAPE(3, 4));
	c.leaf[1] = gc_leaf("b", GRADCHECK_PARAM, b, 1, GC_SHAPE(4));
	check_all(&c, true, false);
}
END_TEST

START_TEST(test_expand_rows_repeat_rows)
{
	double sv[3], v[4];
	uint64_t s = 43;
	struct opx o = {.kind = OPX_EXPAND_ROWS, .count = 4};
	struct gradcheck_case c = one_case("expand_rows", &o, 502);
	gradcheck_fill(sv, 3, -2, 2, &s);
	gradcheck_fill(v, 4, -2, 2, &s);
	c.n_leaves = 1;
	c.leaf[0] = gc_leaf("s", GRADCHECK_INPUT, sv, 1, GC_SHAPE(3));
	check_all(&c, true, false);

	o.kind = OPX_REPEAT_ROWS;
	o.count = 3;
	c = one_case("repeat_rows", &o, 503);
	c.n_leaves = 1;
	c.leaf[0] = gc_leaf("v", GRADCHECK_INPUT, v, 1, GC_SHAPE(4));
	check_all(&c, true, false);
}
END_TEST

START_TEST(test_expand)
{
	double sv[1] = {0.7};
	struct opx o = {.kind = OPX_EXPAND, .ndim = 2, .shape = {2, 3}};
	struct gradcheck_case c = one_case("expand", &o, 504);
	c.n_leaves = 1;
	c.leaf[0] = gc_leaf("s", GRADCHECK_INPUT, sv, 0, NULL);
	check_all(&c, true, false);
	/* a 1-element vector expands too */
	c = one_case("expand (1)", &o, 505);
	c.n_leaves = 1;
	c.leaf[0] = gc_leaf("s", GRADCHECK_INPUT, sv, 1, GC_SHAPE(1));
	check_all(&c, true, false);
}
END_TEST

START_TEST(test_reshape)
{
	double a[12];
	uint64_t s = 44;
	struct opx o = {.kind = OPX_RESHAPE, .ndim = 3, .shape = {3, 2, 2}};
	struct gradcheck_case c = one_case("reshape", &o, 506);
	gradcheck_fill(a, 12, -2, 2, &s);
	c.n_leaves = 1;
	c.leaf[0] = gc_leaf("a", GRADCHECK_INPUT, a, 2, GC_SHAPE(2, 6));
	check_all(&c, true, false);
}
END_TEST

START_TEST(test_reductions)
{
	double a[12];
	uint64_t s = 51;
	gradcheck_fill(a, 12, -2, 2, &s);
	unary_case(OPX_SUM, "sum", a, 2, GC_SHAPE(3, 4), false, 600);
	unary_case(OPX_MEAN, "mean", a, 2, GC_SHAPE(3, 4), false, 601);
	unary_case(OPX_SUM_ROWS, "sum_rows", a, 3, GC_SHAPE(3, 2, 2), false, 602);
	unary_case(OPX_SUM_COLS, "sum_cols", a, 2, GC_SHAPE(3, 4), false, 603);
}
END_TEST

START_TEST(test_mse)
{
	double y[12], x[12];
	uint64_t s = 61;
	gradcheck_fill(y, 12, -2, 2, &s);
	gradcheck_fill(x, 12, -2, 2, &s);
	struct opx o = {.kind = OPX_MSE};
	struct gradcheck_case c = one_case("mse", &o, 700);
	c.n_leaves = 2;
	c.leaf[0] = gc_leaf("y", GRADCHECK_INPUT, y, 2, GC_SHAPE(3, 4));
	c.leaf[1] = gc_leaf("x", GRADCHECK_INPUT, x, 3, GC_SHAPE(3, 2, 2));
	check_all(&c, true, true);
}
END_TEST

START_TEST(test_bce)
{
	/* y in (0.05, 0.95): y (1 - y) >= 0.0475, far above the 1e-12 clamp,
	 * and both logs far above -100. The target's gradient has only the
	 * fused backward (op_bce's vjp fails for it by design). */
	double y[12], t[12];
	uint64_t s = 62;
	gradcheck_fill(y, 12, 0.05, 0.95, &s);
	gradcheck_fill(t, 12, 0, 1, &s);
	struct opx o = {.kind = OPX_BCE};
	struct gradcheck_case c = one_case("bce", &o, 701);
	c.n_leaves = 2;
	c.leaf[0] = gc_leaf("y", GRADCHECK_INPUT, y, 2, GC_SHAPE(3, 4));
	c.leaf[1] = gc_leaf("t", GRADCHECK_INPUT, t, 2, GC_SHAPE(3, 4));
	c.leaf[1].fused_only = true;
	/* Not squared: the squared form needs bce_grad's own vjp (third
	 * order), which does not exist. */
	ck_assert_int_eq(gradcheck_first(&c), 0);
	ck_assert_int_eq(gradcheck_second(&c), 0);
	/* target as plain data: the vjp path alone */
	c.leaf[1].kind = GRADCHECK_CONST;
	ck_assert_int_eq(gradcheck_first(&c), 0);
	ck_assert_int_eq(gradcheck_second(&c), 0);
}
END_TEST

START_TEST(test_bce_vjp_target_fails)
{
	/* The documented limit: op_bce's second-order gradient with respect
	 * to the target reports an error instead of a wrong value. */
	struct graph *g;
	double yv[2] = {0.3, 0.6}, tv[2] = {0.2, 0.9};
	vb_real yb[2], tb[2];
	for (int i = 0; i < 2; i++) {
		yb[i] = (vb_real)yv[i];
		tb[i] = (vb_real)tv[i];
	}
	ck_assert_int_eq(graph_create(1 << 16, &g, NULL), VB_OK);
	struct graph_node *y = graph_input(g, "y", tensor_view2(yb, 1, 2),
					   true);
	struct graph_node *t = graph_input(g, "t", tensor_view2(tb, 1, 2),
					   true);
	struct graph_node *l = op_sum(g, "l", op_bce(g, "bce", y, t,
						      BCE_LOG_CLAMP,
						      BCE_DENOM_EPS));
	ck_assert_ptr_nonnull(l);
	gc_grad_fails(g, l, t, "target");
	graph_free(g);
}
END_TEST

START_TEST(test_bce_logits)
{
	double l[12], t[12];
	uint64_t s = 63;
	gradcheck_fill(l, 12, -4, 4, &s);
	gradcheck_fill(t, 12, 0, 1, &s);
	struct opx o = {.kind = OPX_BCE_LOGITS};
	struct gradcheck_case c = one_case("bce_logits", &o, 702);
	c.n_leaves = 2;
	c.leaf[0] = gc_leaf("l", GRADCHECK_INPUT, l, 2, GC_SHAPE(3, 4));
	c.leaf[1] = gc_leaf("t", GRADCHECK_INPUT, t, 2, GC_SHAPE(3, 4));
	check_all(&c, true, true);
}
END_TEST

static void wrong_backward(struct graph *g, struct graph_node *n)
{
	/* d(2x)/dx written with the wrong sign */
	struct tensor *ga = graph_input_grad(g, n, 0);
	if (ga)
		for (size_t i = 0; i < n->value.n; i++)
			ga->data[i] -= 2 * n->grad.data[i];
}

static const struct graph_op OP_WRONG = {"wrong", wrong_backward, NULL};

static struct graph_node *build_wrong(struct graph *g, struct graph_node **in,
				      void *ctx)
{
	struct graph_node *n;
	(void)ctx;
	n = graph_op_node(g, &OP_WRONG, "wrong", in, 1, in[0]->value.ndim,
			  in[0]->value.shape);
	if (!n)
		return NULL;
	for (size_t i = 0; i < n->value.n; i++)
		n->value.data[i] = 2 * in[0]->value.data[i];
	return graph_node_done(g, n);
}

START_TEST(test_harness_catches_sign_error)
{
	double x[4] = {0.5, -1, 2, 0.25};
	struct gradcheck_case c;
	c = gc_case("wrong (expected to fail)", build_wrong, NULL, 1);
	c.no_vjp = true;
	c.n_leaves = 1;
	c.leaf[0] = gc_leaf("x", GRADCHECK_INPUT, x, 1, GC_SHAPE(4));
	fprintf(stderr, "(the next gradcheck failures are expected)\n");
	ck_assert_int_gt(gradcheck_first(&c), 0);
}
END_TEST

TU_MAIN("ops", "gradcheck", 60, test_matmul, test_linear, test_relu,
	test_sigmoid, test_softplus, test_clamp, test_exp, test_log,
	test_square_neg_scale_add_scalar, test_binary, test_shared_input,
	test_mul_rows, test_add_bias, test_expand_rows_repeat_rows, test_expand,
	test_reshape, test_reductions, test_mse, test_bce,
	test_bce_vjp_target_fails, test_bce_logits,
	test_harness_catches_sign_error)
