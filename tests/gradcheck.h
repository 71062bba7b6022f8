/* gradcheck: the central-difference harness of the Check suites. A case
 * names an op, a builder that makes it from leaves, and the leaf values in
 * double; the harness checks the fused backward (graph_backward), the
 * differentiable backward (graph_grad with create_graph) and Hessian-vector
 * products against central differences (STYLE.md section 6). It prints each
 * failure and returns a count; asserting on that count is the suite's job
 * (gc_assert_all does it for the op suites). */
#ifndef VB_TESTS_GRADCHECK_H
#define VB_TESTS_GRADCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graph.h"
#include "tensor.h"

#define GRADCHECK_MAX_IN 8

/* Default tolerances (double build). rtol 1e-5: the central difference
 * with h = 1e-5 max(1, |x|) has truncation error h^2 |f'''| / 6 ~ 1e-10
 * relative, far inside 1e-5, while a wrong derivative term is off by O(1).
 * atol 1e-8: gradients that are exactly zero are compared against the
 * rounding noise of the difference quotient; the harness adds its own
 * estimate of that noise (see gradcheck.c) so that large losses do not need
 * a looser bare constant. */
#define GRADCHECK_RTOL 1e-5
#define GRADCHECK_ATOL 1e-8
/* Fused and differentiable backward compute the same expressions in
 * another order: in double they agree to ~1e-14; 1e-8 leaves room for the
 * one documented difference, softplus above its threshold (vjp uses
 * sigmoid(x), the fused kernel 1, which differ by exp(-20) ~ 2.1e-9). */
#define GRADCHECK_PATH_RTOL 1e-8

/* How a leaf enters the graph. */
enum gradcheck_kind {
	GRADCHECK_INPUT, /* graph_input, requires grad, gradient checked */
	GRADCHECK_PARAM, /* graph_param with a gradient slice, checked */
	GRADCHECK_CONST  /* graph_input without grad: data only */
};

struct gradcheck_leaf {
	const char *name;
	enum gradcheck_kind kind;
	int ndim;
	size_t shape[TENSOR_MAX_DIM];
	const double *data; /* tensor_shape_count(ndim, shape) values,
			       borrowed for the call */
	/* true: only the fused backward is checked for this leaf (its vjp is
	 * not implemented, e.g. op_bce with respect to the target); it is
	 * left out of graph_grad's wrt list and of the Hessian checks. */
	bool fused_only;
};

/* gc_: the short prefix (as testutil's tu_) of the helpers the op suites
 * call on nearly every case and leaf line. gc_leaf is a leaf of name, kind
 * and shape (ndim entries of shape) over data (borrowed), fused_only
 * false; GC_SHAPE(2, 3) is a shape literal for it (or for tensor_view). */
struct gradcheck_leaf gc_leaf(const char *name, enum gradcheck_kind kind,
			      const double *data, int ndim,
			      const size_t *shape);
#define GC_SHAPE(...) ((const size_t[]){__VA_ARGS__})

/* Makes the op(s) under test from the leaves (in the order of the case's
 * leaf array) and returns the output node (any shape), or NULL on error. */
typedef struct graph_node *(*gradcheck_build_fn)(struct graph *g,
						 struct graph_node **leaves,
						 void *ctx);

struct gradcheck_case {
	const char *op; /* printed on failure: "matmul(ta)" */
	gradcheck_build_fn build;
	void *ctx;
	int n_leaves;
	struct gradcheck_leaf leaf[GRADCHECK_MAX_IN];
	uint64_t seed; /* weights R and directions v */
	double rtol;   /* 0: GRADCHECK_RTOL */
	double atol;   /* 0: GRADCHECK_ATOL */
	bool no_vjp;   /* the op has no differentiable backward at all */
};

/* A case of op (printed name) made by fn from ctx, with seed; no leaves
 * yet, default tolerances. */
struct gradcheck_case gc_case(const char *op, gradcheck_build_fn fn,
			      void *ctx, uint64_t seed);

/* What a builder does to its output for the higher-order checks:
 * grad_of > 0 replaces it by d/d leaf[grad_of - 1] of sum(out * W)
 * (gc_grad_of, fixed weights W, with create_graph) so that the harness
 * checks one order higher (gc_assert_grad_of sets it); square_out
 * squares it, curvature for linear ops (gc_assert_all sets it). */
struct gc_order {
	int grad_of;
	bool square_out;
};

/* y as o says: gc_grad_of(g, y, leaves, o->grad_of - 1) when grad_of > 0,
 * then squared (node "y.sq") when square_out. NULL stays NULL. */
struct graph_node *gc_order_apply(struct graph *g, struct graph_node *y,
				  struct graph_node **leaves,
				  const struct gc_order *o);

/* The op suites' full check, asserting (Check) zero failures at each
 * stage: gradcheck_first; then, with second, gradcheck_second when
 * curved, and *square_out set (the builder squares its output:
 * curvature for linear ops) and first and second order again; *square_out
 * is false on return. */
void gc_assert_all(struct gradcheck_case *c, bool second, bool curved,
		   bool *square_out);

/* For builders checked one order higher: d/d leaves[k] of sum(y * W) with
 * fixed weights W (0.5 + 0.125 (i mod 9)), taken with create_graph, so
 * that the harness checks y's second and third derivatives. NULL on
 * error. */
struct graph_node *gc_grad_of(struct graph *g, struct graph_node *y,
			      struct graph_node **leaves, int k);

/* The documented limits of create_graph: graph_grad of l with respect to
 * x with create_graph fails (asserted, Check) with a message containing
 * needle; returns its status. */
enum vb_status gc_grad_fails(struct graph *g, struct graph_node *l,
			     struct graph_node *x, const char *needle);

/* Third order: with *grad_of = k + 1 (the case's builder then returns
 * gc_grad_of of its output for leaf k), asserts (Check) zero failures of
 * gradcheck_first and gradcheck_second, printed as "d/d<leaf> of <op>";
 * *grad_of is 0 again on return. */
void gc_assert_grad_of(struct gradcheck_case *c, int k, int *grad_of);

/* First order. With L = sum(out * R) for a fixed random R (each output
 * element its own weight in +-[0.5, 1.5]): checks that the gradient of L
 * with respect to every checked leaf from graph_backward (INPUT: leaf->grad;
 * PARAM: the growth of its slice, which starts non-zero to prove that
 * backward accumulates), from graph_grad without and with create_graph and
 * from graph_grad of out seeded with R is finite, matches central
 * differences element by element and along one random direction (signed),
 * and that the paths agree with each other; graph_grad must leave PARAM
 * slices untouched. Returns the number of failures (each printed to stderr
 * with op, leaf, index and both values). */
int gradcheck_first(const struct gradcheck_case *c);

/* Second order: for a random direction v over the leaves that are not
 * fused_only, H v = d/dx <grad_x L, v> from graph_grad(create_graph) of L
 * followed by graph_grad (and graph_backward) of S = sum(grad * v), against
 * (grad(x + h v) - grad(x - h v)) / 2h of the fused gradient. Returns the
 * number of failures. */
int gradcheck_second(const struct gradcheck_case *c);

/* Deterministic uniform values in [lo, hi) from an explicit splitmix64
 * state (no hidden global). */
void gradcheck_fill(double *x, size_t n, double lo, double hi,
		    uint64_t *state);
/* Same, with |x| in [lo, hi) and a random sign (keeps values off 0). */
void gradcheck_fill_signed(double *x, size_t n, double lo, double hi,
			   uint64_t *state);

/* n floats of gradcheck_fill(lo, hi) from state seed, rounded from
 * double, malloc'd (the caller frees; the test fails when out of
 * memory): the inputs of the float suites. */
float *gc_floats(uint64_t seed, size_t n, double lo, double hi);

/* x[0..n) = gradcheck_fill(lo, hi) continuing state, converted to
 * vb_real (the test fails when out of memory). */
void gc_fill_real(vb_real *x, size_t n, double lo, double hi,
		  uint64_t *state);

/* |a - n| <= atol + rtol * max(|a|, |n|), false when either is not
 * finite. */
bool gradcheck_close(double a, double n, double rtol, double atol);

/* The node of that full name on g's tape, or NULL. */
struct graph_node *gradcheck_node(const struct graph *g, const char *name);

/* PyTorch's softplus (beta 1, threshold 20) in double, the reference the
 * model tests compare softplus-activated nodes against. */
double gradcheck_softplus(double s);

#endif
