/* graph: the tape. Ops run eagerly and append named nodes (define by run);
 * graph_backward walks the tape in reverse with each op's fused backward
 * kernel; graph_grad (graph_grad.h) gives the gradient of one node with
 * respect to others, either as constants or, with create_graph, as new
 * nodes on the tape built from ops that have their own backward, so that a
 * gradient can itself be differentiated (PyTorch's create_graph=True).
 * Per-step storage (node values, gradients) lives in an arena that
 * graph_reset recycles; the ops themselves are in ops.c. */
#ifndef VB_CORE_GRAPH_H
#define VB_CORE_GRAPH_H

#include <stdbool.h>
#include <stddef.h>

#include "tensor.h"
#include "vb.h"

#define GRAPH_MAX_IN 4
#define GRAPH_NAME_LEN 64
#define GRAPH_SCOPE_DEPTH 8

struct graph;
struct graph_node;
struct conv_dnnl;

/* Fused first-order backward: reads n->grad and accumulates (+=) into the
 * gradient of each input, obtained through graph_input_grad (NULL for an
 * input that needs none in this pass). */
typedef void (*graph_backward_fn)(struct graph *g, struct graph_node *n);

/* Differentiable backward: given gout (a node holding d seed / d n, same
 * shape as n), builds on the tape one node per input holding d seed / d in
 * (gin[i]; left NULL where graph_input_active says the input needs none).
 * Built only from ops that have their own backward. */
typedef void (*graph_vjp_fn)(struct graph *g, struct graph_node *n,
			     struct graph_node *gout,
			     struct graph_node **gin);

/* What an op does with blocked (TENSOR_LAYOUT_BLK16) inputs, applied by
 * graph_op_node_layout before the op computes (graph_op_node and
 * graph_op_view: PLAIN). */
enum graph_layout_rule {
	GRAPH_LAYOUT_PLAIN,  /* every blocked input is made plain in place;
				the output is plain */
	GRAPH_LAYOUT_ELEM,   /* elementwise: output blocked when every input
				is blocked with the output's shape; otherwise
				the blocked inputs are made plain */
	GRAPH_LAYOUT_OWN     /* inputs left as they are; the op's kernels
				read and write both layouts (conv ops,
				sum_channels) and set the output's */
};

struct graph_op {
	const char *name;           /* stable lowercase op name: "matmul" */
	graph_backward_fn backward; /* NULL: op has no gradient (constants) */
	graph_vjp_fn vjp;           /* NULL: no second-order backward */
};

enum graph_node_kind {
	GRAPH_NODE_OP,    /* made by an op from other nodes */
	GRAPH_NODE_INPUT, /* data or a leaf variable (may require grad) */
	GRAPH_NODE_PARAM, /* a view of a model parameter and its gradient */
	GRAPH_NODE_CONST  /* a constant: never requires grad */
};

/* Events passed to the hook (the guard's anomaly mode listens here). */
enum graph_event {
	GRAPH_EVENT_FORWARD,  /* n->value was just computed */
	GRAPH_EVENT_BACKWARD  /* n's op just accumulated into its inputs */
};

typedef void (*graph_hook_fn)(void *ctx, struct graph *g,
			      struct graph_node *n, enum graph_event ev);

struct graph_node {
	const struct graph_op *op; /* NULL for leaves */
	enum graph_node_kind kind;
	char name[GRAPH_NAME_LEN]; /* "encoder.fc1": scope + "." + local */
	size_t id;                 /* position on the tape */
	int n_in;
	struct graph_node *in[GRAPH_MAX_IN];
	struct tensor value;       /* arena or borrowed view */
	struct tensor grad;        /* during a backward pass; data NULL until
				      first touched */
	struct graph_node *grad_node; /* during graph_grad(create_graph) */
	vb_real *param_grad;       /* PARAM: slice of the gradient buffer */
	bool requires_grad;
	bool view;                 /* value is a view of another node's data
				      (graph_op_view): never rounded */
	bool active;               /* scratch of the current backward pass */
	int phase;                 /* graph phase when the node was made */
	double f[4];               /* op attributes (scales, flags) */
	long i[4];
	void *aux;                 /* op scratch in the arena */
};

/* Creates an empty tape whose arena starts at arena_bytes (it grows by
 * chunks if a step needs more; graph_reset folds them into one, so steady
 * state allocates nothing). */
enum vb_status graph_create(size_t arena_bytes, struct graph **out,
			    struct vb_error *err);
void graph_free(struct graph *g);

/* Drops every node and recycles the arena; clears a sticky error. */
void graph_reset(struct graph *g);

/* Sticky error: the first failure inside an op (shape mismatch, arena
 * exhausted, a missing vjp) is kept here, the op returns NULL and every op
 * given a NULL input returns NULL too. Check once after building. */
enum vb_status graph_status(const struct graph *g);
const struct vb_error *graph_error(const struct graph *g);
/* Records a failure (first one wins); returns NULL for convenience. */
struct graph_node *graph_failf(struct graph *g, enum vb_status st,
			       const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Arena allocation, 64-byte aligned, valid until graph_reset. NULL (and a
 * sticky error) on failure. */
void *graph_alloc(struct graph *g, size_t bytes);
/* Arena tensor of a shape, uninitialised / zeroed. */
struct tensor graph_tensor(struct graph *g, int ndim, const size_t *shape);
struct tensor graph_tensor_zero(struct graph *g, int ndim,
				const size_t *shape);

/* Stack discipline inside the arena, for scratch that dies before the op
 * (or pass) returns: everything allocated after graph_mark is given back
 * by graph_release, provided no node was appended in between (then the
 * release is skipped) and the arena did not grow a new chunk meanwhile. */
struct graph_mark {
	const void *chunk;
	size_t used, used_total, n_nodes;
};
struct graph_mark graph_mark(const struct graph *g);
void graph_release(struct graph *g, struct graph_mark m);

/* Bytes of arena in use / reserved (for memory figures). */
size_t graph_arena_used(const struct graph *g);
size_t graph_arena_reserved(const struct graph *g);
size_t graph_node_count(const struct graph *g);
struct graph_node *graph_node_at(const struct graph *g, size_t i);

/* Name scopes: nodes made between push("encoder") and pop are named
 * "encoder.<local>". Nested scopes join with dots. */
void graph_push_scope(struct graph *g, const char *scope);
void graph_pop_scope(struct graph *g);

/* Grad mode (PyTorch's no_grad when false): nodes made while disabled never
 * require grad. Returns the previous mode. */
bool graph_set_grad_enabled(struct graph *g, bool enabled);

/* The phase index stamped on nodes made from now on (the model and the
 * trainer name phases; graph only stores the number). */
void graph_set_phase(struct graph *g, int phase);
int graph_phase(const struct graph *g);

/* Hook called for every node event (NULL to remove). */
void graph_set_hook(struct graph *g, graph_hook_fn fn, void *ctx);

/* Half-precision emulation (train.precision f16 / bf16): with a mode other
 * than NONE, every op node's value is rounded (half.h) in graph_node_done,
 * before the hook sees it, and every gradient buffer a backward kernel
 * accumulated into is rounded right after that kernel, before the hook
 * sees it (graph_backward and graph_grad alike; second-order gradients
 * are op nodes, rounded as such). Leaves (inputs, parameters, constants)
 * and view nodes (reshape) keep their values. In graph_backward a
 * parameter's gradient is accumulated in a rounded tape buffer per
 * parameter node and added (unrounded, in vb_real) to its gradient slice
 * at the end of the pass: half-precision gradients into float master
 * gradients. The mode survives graph_reset; NONE (the default) costs one
 * branch per node. */
enum graph_rounding {
	GRAPH_ROUNDING_NONE,
	GRAPH_ROUNDING_F16,  /* IEEE binary16: half_round_f16 */
	GRAPH_ROUNDING_BF16  /* bfloat16: half_round_bf16 */
};
void graph_set_rounding(struct graph *g, enum graph_rounding mode);
enum graph_rounding graph_rounding(const struct graph *g);

/* Convolution kernels (ops_conv.c), chosen per graph. DNNL: oneDNN
 * primitives (conv_dnnl.c), the float build's default; IM2COL: im2col /
 * col2im around op_gemm (OpenBLAS), the double build's only path and the
 * reference the float DNNL path is tested against. Both compute the same
 * ops with the same tape semantics (vjps built from conv ops); they differ
 * only in float rounding. The setting survives graph_reset; the oneDNN
 * primitives are cached per graph (made on first use of each shape, freed
 * by graph_free). */
enum graph_conv_backend {
	GRAPH_CONV_BACKEND_DNNL,
	GRAPH_CONV_BACKEND_IM2COL
};
/* Stable lowercase name: "dnnl", "im2col". */
const char *graph_conv_backend_name(enum graph_conv_backend b);
/* Parses a name; VB_ERR_CONFIG names the string and the choices. */
enum vb_status graph_conv_backend_parse(const char *s,
					enum graph_conv_backend *out,
					struct vb_error *err);
/* DNNL in the float build, IM2COL in the double build. */
enum graph_conv_backend graph_conv_backend_default(void);
/* VB_ERR_CONFIG for DNNL in the double build (no silent fallback). */
enum vb_status graph_set_conv_backend(struct graph *g,
				      enum graph_conv_backend b,
				      struct vb_error *err);
enum graph_conv_backend graph_conv_backend(const struct graph *g);
/* For ops_conv.c: the graph's oneDNN cache, created on first call; NULL
 * with the sticky error set on failure. Borrowed until graph_free. */
struct conv_dnnl *graph_conv_dnnl(struct graph *g);

/* Blocked activations (float build, DNNL backend): when on (the default),
 * convolutions write their activation outputs and input gradients in
 * oneDNN's blocked layout where the primitive uses it, and the ops
 * between convolutions keep it (graph_layout_rule), so no reorder is
 * needed around them; off, every node value and gradient is plain. Values
 * are bit-identical either way (only where elements sit changes). The
 * setting survives graph_reset; graph_blocked is true when it is on and
 * the backend is DNNL. */
void graph_set_blocked(struct graph *g, bool on);
bool graph_blocked(const struct graph *g);
/* For kernels: t (an arena node value or gradient) made plain in place
 * (no-op when it is plain). Uses arena scratch, given back. */
void graph_to_plain(struct graph *g, struct tensor *t);
/* For kernels: t's data in layout want: t->data when t has it, else a
 * converted copy in arena scratch (bracket with graph_mark / release).
 * NULL with the sticky error set on failure. */
const vb_real *graph_in_layout(struct graph *g, const struct tensor *t,
			       enum tensor_layout want);

/* Leaves. The value is borrowed (not copied): it must outlive the step. */
struct graph_node *graph_input(struct graph *g, const char *name,
			       struct tensor value, bool requires_grad);
struct graph_node *graph_const(struct graph *g, const char *name,
			       struct tensor value);
/* A parameter: value and its gradient slice (same element count). */
struct graph_node *graph_param(struct graph *g, const char *name,
			       struct tensor value, vb_real *grad);

/* For op implementers: appends an op node with the given inputs and an
 * arena value of the given shape (uninitialised). requires_grad is set
 * when grad mode is on and any input requires grad. NULL if an input is
 * NULL or on failure. */
struct graph_node *graph_op_node(struct graph *g, const struct graph_op *op,
				 const char *name, struct graph_node **in,
				 int n_in, int ndim, const size_t *shape);
/* Same, with the layout rule for blocked inputs (graph_op_node is
 * GRAPH_LAYOUT_PLAIN): the few ops whose kernels read both layouts. */
struct graph_node *graph_op_node_layout(struct graph *g,
					const struct graph_op *op,
					enum graph_layout_rule rule,
					const char *name,
					struct graph_node **in, int n_in,
					int ndim, const size_t *shape);
/* Same, but the value is a view of existing data (reshape). */
struct graph_node *graph_op_view(struct graph *g, const struct graph_op *op,
				 const char *name, struct graph_node **in,
				 int n_in, struct tensor value);
/* Call after the op has written n->value: fires the forward hook. Returns
 * n (NULL passes through). */
struct graph_node *graph_node_done(struct graph *g, struct graph_node *n);

/* For backward kernels: the gradient buffer of input i of n for the
 * current pass, in the layout input i's value has when it is made
 * (kernels must read grad.layout), zeroed on first touch (for a PARAM
 * in graph_backward it is the parameter's gradient slice), or NULL when
 * that input needs none. */
struct tensor *graph_input_grad(struct graph *g, struct graph_node *n, int i);
/* For vjp builders: whether input i of n needs a gradient in this pass. */
bool graph_input_active(const struct graph_node *n, int i);

/* Backpropagates the scalar loss (1 element) into every parameter's
 * gradient slice (accumulating: zero them first) and every INPUT leaf that
 * requires grad (readable through leaf->grad until the next pass). */
enum vb_status graph_backward(struct graph *g, struct graph_node *loss,
			      struct vb_error *err);

/* As graph_backward with the seed d loss / d loss = scale instead of 1, so
 * that the gradients accumulated are those of scale * loss (loss scaling,
 * and 1/N for gradient accumulation over N micro-batches). The seed is
 * (vb_real)scale and is not rounded by the rounding mode. scale = 1 is
 * graph_backward exactly. */
enum vb_status graph_backward_scaled(struct graph *g,
				     struct graph_node *loss, double scale,
				     struct vb_error *err);

/* Whether n depends on a through a path that does not pass through the
 * node avoid (NULL: any path): a is n, or an input of n, or of one of
 * those, and so on (a forward sweep over the tape between them, O(n->id -
 * a->id)). Callable between passes (not from inside a backward kernel or
 * hook, whose pass scratch it would overwrite). */
bool graph_depends_on(struct graph *g, const struct graph_node *n,
		      const struct graph_node *a,
		      const struct graph_node *avoid);

#endif
