/* graph: tape of named nodes, arena storage, the fused reverse passes
 * (graph_grad and its differentiable pass are graph_grad.c), and the
 * half-precision rounding mode applied to node values and tape gradients
 * (the rounding itself is half.c). Op kernels live in ops.c; this file only
 * orders them. */
#include "graph.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_dnnl.h"
#include "half.h"
#include "graph_impl.h"
#include "par.h"

#define GRAPH_ALIGN 64

struct graph_chunk {
	struct graph_chunk *next;
	size_t size;
	size_t used;
	unsigned char *base; /* GRAPH_ALIGN-aligned start */
	unsigned char *raw;
};

/* Which pass is running decides where leaf gradients go. */
enum graph_pass {
	GRAPH_PASS_NONE,
	GRAPH_PASS_PARAMS, /* graph_backward: PARAM grads into their slices */
	GRAPH_PASS_GRAD    /* graph_grad: everything in the arena */
};

struct graph {
	struct graph_chunk *chunks; /* head is the current chunk */
	size_t reserved;
	size_t used_total;
	struct graph_node **nodes;
	size_t n_nodes;
	size_t cap_nodes;
	char scope[GRAPH_SCOPE_DEPTH][GRAPH_NAME_LEN];
	int n_scope;
	bool grad_enabled;
	int phase;
	enum graph_pass pass;
	graph_hook_fn hook;
	void *hook_ctx;
	enum graph_rounding rounding;
	struct vb_error err;
	vb_real *stage;    /* graph_grad results between release and copy */
	size_t stage_cap;
	enum graph_conv_backend conv_backend;
	struct conv_dnnl *conv_dnnl; /* oneDNN primitives, made on first use */
	bool no_blocked; /* graph_set_blocked(g, false) */
};

static struct graph_chunk *chunk_new(size_t size)
{
	struct graph_chunk *c = malloc(sizeof *c);
	if (!c)
		return NULL;
	c->raw = malloc(size + GRAPH_ALIGN);
	if (!c->raw) {
		free(c);
		return NULL;
	}
	c->base = (unsigned char *)(((uintptr_t)c->raw + GRAPH_ALIGN - 1) &
				    ~(uintptr_t)(GRAPH_ALIGN - 1));
	c->size = size;
	c->used = 0;
	c->next = NULL;
	return c;
}

static void chunks_free(struct graph_chunk *c)
{
	while (c) {
		struct graph_chunk *next = c->next;
		free(c->raw);
		free(c);
		c = next;
	}
}

enum vb_status graph_create(size_t arena_bytes, struct graph **out,
			    struct vb_error *err)
{
	struct graph *g = calloc(1, sizeof *g);
	*out = NULL;
	if (!g)
		return vb_fail(err, VB_ERR_NOMEM, "graph: cannot allocate");
	if (arena_bytes < (1u << 16))
		arena_bytes = 1u << 16;
	g->chunks = chunk_new(arena_bytes);
	if (!g->chunks) {
		free(g);
		return vb_fail(err, VB_ERR_NOMEM,
			       "graph: cannot allocate an arena of %zu bytes",
			       arena_bytes);
	}
	g->reserved = arena_bytes;
	g->grad_enabled = true;
	g->conv_backend = graph_conv_backend_default();
	*out = g;
	return VB_OK;
}

void graph_free(struct graph *g)
{
	if (!g)
		return;
	chunks_free(g->chunks);
	free(g->nodes);
	free(g->stage);
	conv_dnnl_free(g->conv_dnnl);
	free(g);
}

void graph_reset(struct graph *g)
{
	/* Several chunks mean the last step outgrew the arena: fold them into
	 * one of the total size so the next step fits without allocating. */
	if (g->chunks && g->chunks->next) {
		size_t total = 0;
		for (struct graph_chunk *c = g->chunks; c; c = c->next)
			total += c->size;
		struct graph_chunk *one = chunk_new(total);
		if (one) {
			chunks_free(g->chunks);
			g->chunks = one;
			g->reserved = total;
		}
	}
	for (struct graph_chunk *c = g->chunks; c; c = c->next)
		c->used = 0;
	g->used_total = 0;
	g->n_nodes = 0;
	g->n_scope = 0;
	g->phase = 0;
	g->pass = GRAPH_PASS_NONE;
	vb_error_clear(&g->err);
	conv_dnnl_forget(g->conv_dnnl); /* inputs and weights may change */
}

static const char *const CONV_BACKEND_NAMES[] = {"dnnl", "im2col"};

const char *graph_conv_backend_name(enum graph_conv_backend b)
{
	return (unsigned)b < 2 ? CONV_BACKEND_NAMES[b] : "unknown";
}

enum vb_status graph_conv_backend_parse(const char *s,
					enum graph_conv_backend *out,
					struct vb_error *err)
{
	for (unsigned i = 0; i < 2; i++)
		if (!strcmp(s, CONV_BACKEND_NAMES[i])) {
			*out = (enum graph_conv_backend)i;
			return VB_OK;
		}
	return vb_fail(err, VB_ERR_CONFIG, "graph: conv backend '%s', "
		       "expected dnnl or im2col", s);
}

enum graph_conv_backend graph_conv_backend_default(void)
{
#ifdef VB_DOUBLE
	return GRAPH_CONV_BACKEND_IM2COL;
#else
	return GRAPH_CONV_BACKEND_DNNL;
#endif
}

enum vb_status graph_set_conv_backend(struct graph *g,
				      enum graph_conv_backend b,
				      struct vb_error *err)
{
	if ((unsigned)b >= 2)
		return vb_fail(err, VB_ERR_CONFIG, "graph: conv backend %d "
			       "out of range", (int)b);
#ifdef VB_DOUBLE
	if (b == GRAPH_CONV_BACKEND_DNNL)
		return vb_fail(err, VB_ERR_CONFIG, "graph: conv backend dnnl "
			       "needs the float build (double keeps im2col)");
#endif
	g->conv_backend = b;
	return VB_OK;
}

enum graph_conv_backend graph_conv_backend(const struct graph *g)
{
	return g->conv_backend;
}

struct conv_dnnl *graph_conv_dnnl(struct graph *g)
{
	struct vb_error e = {0};
	if (!g->conv_dnnl && conv_dnnl_create(&g->conv_dnnl, &e) != VB_OK)
		graph_failf(g, e.status, "%s", e.msg);
	return g->conv_dnnl;
}

enum vb_status graph_status(const struct graph *g)
{
	return g->err.status;
}

const struct vb_error *graph_error(const struct graph *g)
{
	return &g->err;
}

struct graph_node *graph_failf(struct graph *g, enum vb_status st,
			       const char *fmt, ...)
{
	if (g->err.status == VB_OK) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(g->err.msg, sizeof g->err.msg, fmt, ap);
		va_end(ap);
		g->err.status = st;
	}
	return NULL;
}

void *graph_alloc(struct graph *g, size_t bytes)
{
	struct graph_chunk *c = g->chunks;
	size_t need = (bytes + GRAPH_ALIGN - 1) & ~(size_t)(GRAPH_ALIGN - 1);
	if (need < bytes)
		return graph_failf(g, VB_ERR_NOMEM, "graph: allocation of "
				   "%zu bytes overflows", bytes);
	if (need == 0)
		need = GRAPH_ALIGN;
	if (c->size - c->used < need) {
		size_t size = c->size * 2 > need ? c->size * 2 : need;
		struct graph_chunk *nc = chunk_new(size);
		if (!nc)
			return graph_failf(g, VB_ERR_NOMEM,
					   "graph: arena cannot grow by %zu "
					   "bytes", size);
		nc->next = c;
		g->chunks = nc;
		g->reserved += size;
		c = nc;
	}
	void *p = c->base + c->used;
	c->used += need;
	g->used_total += need;
	return p;
}

struct tensor graph_tensor(struct graph *g, int ndim, const size_t *shape)
{
	struct tensor t = tensor_view(NULL, ndim, shape);
	size_t bytes;
	if (ndim < 0 || ndim > TENSOR_MAX_DIM ||
	    !vb_mul_size(t.n, sizeof(vb_real), &bytes)) {
		graph_failf(g, VB_ERR_SHAPE, "graph: bad tensor shape");
		t.data = NULL;
		return t;
	}
	t.data = graph_alloc(g, bytes);
	return t;
}

struct tensor graph_tensor_zero(struct graph *g, int ndim,
				const size_t *shape)
{
	struct tensor t = graph_tensor(g, ndim, shape);
	if (t.data) {
		PAR_FOR(t.n)
		for (size_t i = 0; i < t.n; i++)
			t.data[i] = 0;
	}
	return t;
}

struct graph_mark graph_mark(const struct graph *g)
{
	struct graph_mark m;
	m.chunk = g->chunks;
	m.used = g->chunks->used;
	m.used_total = g->used_total;
	m.n_nodes = g->n_nodes;
	return m;
}

void graph_release(struct graph *g, struct graph_mark m)
{
	if (m.chunk != g->chunks || m.n_nodes != g->n_nodes ||
	    g->chunks->used < m.used)
		return;
	if (g->chunks->used > m.used) /* the arena reuses this memory */
		conv_dnnl_forget_range(g->conv_dnnl,
				       g->chunks->base + m.used,
				       g->chunks->base + g->chunks->used);
	g->chunks->used = m.used;
	g->used_total = m.used_total;
}

size_t graph_arena_used(const struct graph *g)
{
	return g->used_total;
}

size_t graph_arena_reserved(const struct graph *g)
{
	return g->reserved;
}

size_t graph_node_count(const struct graph *g)
{
	return g->n_nodes;
}

struct graph_node *graph_node_at(const struct graph *g, size_t i)
{
	return i < g->n_nodes ? g->nodes[i] : NULL;
}

void graph_push_scope(struct graph *g, const char *scope)
{
	if (g->n_scope < GRAPH_SCOPE_DEPTH) {
		snprintf(g->scope[g->n_scope], GRAPH_NAME_LEN, "%s", scope);
	}
	g->n_scope++;
}

void graph_pop_scope(struct graph *g)
{
	if (g->n_scope > 0)
		g->n_scope--;
}

bool graph_set_grad_enabled(struct graph *g, bool enabled)
{
	bool old = g->grad_enabled;
	g->grad_enabled = enabled;
	return old;
}

void graph_set_phase(struct graph *g, int phase)
{
	g->phase = phase;
}

int graph_phase(const struct graph *g)
{
	return g->phase;
}

void graph_set_hook(struct graph *g, graph_hook_fn fn, void *ctx)
{
	g->hook = fn;
	g->hook_ctx = ctx;
}

void graph_set_rounding(struct graph *g, enum graph_rounding mode)
{
	g->rounding = mode;
}

enum graph_rounding graph_rounding(const struct graph *g)
{
	return g->rounding;
}

static void round_tensor(const struct graph *g, struct tensor *t)
{
	if (!t->data)
		return;
	if (g->rounding == GRAPH_ROUNDING_F16)
		half_round_f16_array(t->data, t->n);
	else if (g->rounding == GRAPH_ROUNDING_BF16)
		half_round_bf16_array(t->data, t->n);
}

/* After n's backward kernel: every gradient it may have accumulated into
 * is rounded as a whole (its earlier contributions are already rounded,
 * so this rounds the new sum, as a half-precision += would). */
static void round_input_grads(struct graph *g, struct graph_node *n)
{
	for (int i = 0; i < n->n_in; i++) {
		struct graph_node *in = n->in[i];
		if (in->active && in->grad.data)
			round_tensor(g, &in->grad);
	}
}

static void node_set_name(struct graph *g, struct graph_node *n,
			  const char *local)
{
	size_t len = 0;
	int depth = g->n_scope < GRAPH_SCOPE_DEPTH ? g->n_scope
						   : GRAPH_SCOPE_DEPTH;
	n->name[0] = '\0';
	for (int i = 0; i < depth && len < GRAPH_NAME_LEN; i++)
		len += (size_t)snprintf(n->name + len, GRAPH_NAME_LEN - len,
					"%s.", g->scope[i]);
	if (len < GRAPH_NAME_LEN)
		snprintf(n->name + len, GRAPH_NAME_LEN - len, "%s",
			 local ? local : "");
}

static struct graph_node *node_push(struct graph *g, const char *name)
{
	struct graph_node *n;
	if (g->err.status != VB_OK)
		return NULL;
	if (g->n_nodes == g->cap_nodes) {
		size_t cap = g->cap_nodes ? g->cap_nodes * 2 : 256;
		struct graph_node **nn = realloc(g->nodes, cap * sizeof *nn);
		if (!nn)
			return graph_failf(g, VB_ERR_NOMEM,
					   "graph: cannot grow the tape");
		g->nodes = nn;
		g->cap_nodes = cap;
	}
	n = graph_alloc(g, sizeof *n);
	if (!n)
		return NULL;
	memset(n, 0, sizeof *n);
	n->id = g->n_nodes;
	n->phase = g->phase;
	node_set_name(g, n, name);
	g->nodes[g->n_nodes++] = n;
	return n;
}

static struct graph_node *leaf(struct graph *g, const char *name,
			       enum graph_node_kind kind, struct tensor value,
			       bool requires_grad)
{
	struct graph_node *n = node_push(g, name);
	if (!n)
		return NULL;
	n->kind = kind;
	n->value = value;
	n->value.owns = false;
	n->requires_grad = requires_grad && g->grad_enabled;
	return graph_node_done(g, n);
}

struct graph_node *graph_input(struct graph *g, const char *name,
			       struct tensor value, bool requires_grad)
{
	return leaf(g, name, GRAPH_NODE_INPUT, value, requires_grad);
}

struct graph_node *graph_const(struct graph *g, const char *name,
			       struct tensor value)
{
	return leaf(g, name, GRAPH_NODE_CONST, value, false);
}

struct graph_node *graph_param(struct graph *g, const char *name,
			       struct tensor value, vb_real *grad)
{
	struct graph_node *n = leaf(g, name, GRAPH_NODE_PARAM, value, true);
	if (n)
		n->param_grad = grad;
	return n;
}

void graph_set_blocked(struct graph *g, bool on)
{
	g->no_blocked = !on;
}

bool graph_blocked(const struct graph *g)
{
	return !g->no_blocked && g->conv_backend == GRAPH_CONV_BACKEND_DNNL;
}

void graph_to_plain(struct graph *g, struct tensor *t)
{
	struct graph_mark mk;
	vb_real *tmp;
	if (t->layout == TENSOR_LAYOUT_PLAIN || !t->data)
		return;
	mk = graph_mark(g);
	tmp = graph_alloc(g, t->n * sizeof *tmp);
	if (!tmp)
		return;
	tensor_blk16_to_plain(t->data, tmp, t->shape[0], t->shape[1],
			      t->shape[2] * t->shape[3]);
	memcpy(t->data, tmp, t->n * sizeof *tmp);
	t->layout = TENSOR_LAYOUT_PLAIN;
	graph_release(g, mk);
	/* the array's contents changed: no blocked copy of it stays */
	conv_dnnl_forget_range(g->conv_dnnl, (const char *)t->data,
			       (const char *)(t->data + t->n));
}

const vb_real *graph_in_layout(struct graph *g, const struct tensor *t,
			       enum tensor_layout want)
{
	struct tensor c;
	if (t->layout == want)
		return t->data;
	c = *t;
	c.layout = want;
	c.data = graph_alloc(g, t->n * sizeof *c.data);
	if (!c.data)
		return NULL;
	tensor_copy_layout(&c, t);
	return c.data;
}

/* Applies op's layout rule to its inputs; returns the output's layout. */
static enum tensor_layout layout_inputs(struct graph *g,
					enum graph_layout_rule rule,
					struct graph_node **in, int n_in,
					int ndim, const size_t *shape)
{
	bool all = n_in > 0;
	if (rule == GRAPH_LAYOUT_OWN)
		return TENSOR_LAYOUT_PLAIN;
	for (int i = 0; i < n_in; i++) {
		const struct tensor *t = &in[i]->value;
		all = all && t->layout == TENSOR_LAYOUT_BLK16 &&
		      t->ndim == ndim &&
		      !memcmp(t->shape, shape, (size_t)ndim * sizeof *shape);
	}
	if (rule == GRAPH_LAYOUT_ELEM && all)
		return TENSOR_LAYOUT_BLK16;
	for (int i = 0; i < n_in; i++)
		graph_to_plain(g, &in[i]->value);
	return TENSOR_LAYOUT_PLAIN;
}

static struct graph_node *op_node_common(struct graph *g,
					 const struct graph_op *op,
					 const char *name,
					 struct graph_node **in, int n_in)
{
	struct graph_node *n;
	bool rg = false;
	if (n_in > GRAPH_MAX_IN)
		return graph_failf(g, VB_ERR_INTERNAL,
				   "graph: op %s has %d inputs, at most %d",
				   op->name, n_in, GRAPH_MAX_IN);
	for (int i = 0; i < n_in; i++) {
		if (!in[i])
			return NULL;
		rg = rg || in[i]->requires_grad;
	}
	n = node_push(g, name);
	if (!n)
		return NULL;
	n->op = op;
	n->kind = GRAPH_NODE_OP;
	n->n_in = n_in;
	for (int i = 0; i < n_in; i++)
		n->in[i] = in[i];
	n->requires_grad = rg && g->grad_enabled && op->backward != NULL;
	return n;
}

struct graph_node *graph_op_node(struct graph *g, const struct graph_op *op,
				 const char *name, struct graph_node **in,
				 int n_in, int ndim, const size_t *shape)
{
	return graph_op_node_layout(g, op, GRAPH_LAYOUT_PLAIN, name, in, n_in,
				    ndim, shape);
}

struct graph_node *graph_op_node_layout(struct graph *g,
					const struct graph_op *op,
					enum graph_layout_rule rule,
					const char *name,
					struct graph_node **in, int n_in,
					int ndim, const size_t *shape)
{
	struct graph_node *n;
	enum tensor_layout lay = TENSOR_LAYOUT_PLAIN;
	for (int i = 0; i < n_in && i < GRAPH_MAX_IN; i++)
		if (!in[i])
			return NULL;
	if (n_in <= GRAPH_MAX_IN)
		lay = layout_inputs(g, rule, in, n_in, ndim, shape);
	n = op_node_common(g, op, name, in, n_in);
	if (!n)
		return NULL;
	n->value = graph_tensor(g, ndim, shape);
	n->value.layout = lay;
	return n->value.data || n->value.n == 0 ? n : NULL;
}

struct graph_node *graph_op_view(struct graph *g, const struct graph_op *op,
				 const char *name, struct graph_node **in,
				 int n_in, struct tensor value)
{
	struct graph_node *n;
	for (int i = 0; i < n_in && i < GRAPH_MAX_IN; i++) {
		if (!in[i])
			return NULL;
		graph_to_plain(g, &in[i]->value); /* a view reads plain */
	}
	n = op_node_common(g, op, name, in, n_in);
	if (!n)
		return NULL;
	n->value = value;
	n->value.owns = false;
	n->value.layout = TENSOR_LAYOUT_PLAIN;
	n->view = true;
	return n;
}

struct graph_node *graph_node_done(struct graph *g, struct graph_node *n)
{
	if (g->rounding != GRAPH_ROUNDING_NONE && n &&
	    n->kind == GRAPH_NODE_OP && !n->view)
		round_tensor(g, &n->value);
	if (n && g->hook)
		g->hook(g->hook_ctx, g, n, GRAPH_EVENT_FORWARD);
	return n;
}

bool graph_input_active(const struct graph_node *n, int i)
{
	return i < n->n_in && n->in[i]->active;
}

struct tensor *graph_input_grad(struct graph *g, struct graph_node *n, int i)
{
	struct graph_node *in;
	if (i >= n->n_in)
		return NULL;
	in = n->in[i];
	if (!in->active)
		return NULL;
	if (!in->grad.data) {
		if (in->kind == GRAPH_NODE_PARAM &&
		    g->pass == GRAPH_PASS_PARAMS &&
		    g->rounding == GRAPH_ROUNDING_NONE) {
			in->grad = in->value;
			in->grad.data = in->param_grad;
		} else {
			in->grad = graph_tensor_zero(g, in->value.ndim,
						     in->value.shape);
			if (!in->grad.data)
				return NULL;
			in->grad.layout = in->value.layout;
		}
	}
	return &in->grad;
}

/* Marks the nodes a pass must visit: those that require grad, restricted
 * (for graph_grad) to descendants of the wrt nodes, up to out. */
static void mark_active(struct graph *g, struct graph_node *out,
			struct graph_node **wrt, size_t n_wrt)
{
	for (size_t k = 0; k <= out->id; k++) {
		struct graph_node *n = g->nodes[k];
		n->grad.data = NULL;
		n->grad_node = NULL;
		n->active = false;
		if (!wrt) {
			n->active = n->requires_grad;
			continue;
		}
		for (size_t j = 0; j < n_wrt; j++)
			if (wrt[j] == n)
				n->active = true;
		if (!n->active && n->requires_grad)
			for (int i = 0; i < n->n_in; i++)
				if (n->in[i]->active) {
					n->active = true;
					break;
				}
	}
}

static void clear_pass(struct graph *g, size_t upto)
{
	for (size_t k = 0; k <= upto && k < g->n_nodes; k++) {
		struct graph_node *n = g->nodes[k];
		if (g->pass == GRAPH_PASS_GRAD || n->kind != GRAPH_NODE_INPUT)
			n->grad.data = NULL;
		n->grad_node = NULL;
		n->active = false;
	}
	g->pass = GRAPH_PASS_NONE;
}

/* seed: the gradient of out, or NULL for every element = fill. */
static enum vb_status fused_pass(struct graph *g, struct graph_node *out,
				 const struct tensor *seed, vb_real fill)
{
	out->grad = graph_tensor(g, out->value.ndim, out->value.shape);
	if (!out->grad.data)
		return g->err.status;
	out->grad.layout = out->value.layout;
	if (seed)
		tensor_copy_layout(&out->grad, seed);
	else
		tensor_fill(&out->grad, fill);
	for (size_t k = out->id + 1; k-- > 0;) {
		struct graph_node *n = g->nodes[k];
		if (!n->active || !n->grad.data || !n->op)
			continue;
		n->op->backward(g, n);
		if (g->err.status != VB_OK)
			return g->err.status;
		if (g->rounding != GRAPH_ROUNDING_NONE)
			round_input_grads(g, n);
		if (g->hook)
			g->hook(g->hook_ctx, g, n, GRAPH_EVENT_BACKWARD);
	}
	return g->err.status;
}

/* Rounding mode: parameter gradients were accumulated in tape buffers;
 * add them into the parameters' gradient slices. */
static void flush_param_grads(struct graph *g, size_t upto)
{
	for (size_t k = 0; k <= upto; k++) {
		struct graph_node *n = g->nodes[k];
		if (n->kind != GRAPH_NODE_PARAM || !n->grad.data ||
		    !n->param_grad)
			continue;
		PAR_FOR(n->grad.n)
		for (size_t i = 0; i < n->grad.n; i++)
			n->param_grad[i] += n->grad.data[i];
	}
}

enum vb_status graph_backward(struct graph *g, struct graph_node *loss,
			      struct vb_error *err)
{
	return graph_backward_scaled(g, loss, 1.0, err);
}

enum vb_status graph_backward_scaled(struct graph *g,
				     struct graph_node *loss, double scale,
				     struct vb_error *err)
{
	enum vb_status st;
	if (!loss)
		return vb_fail(err, g->err.status ? g->err.status
						  : VB_ERR_INTERNAL,
			       "%s", g->err.status ? g->err.msg
					: "graph: backward of a NULL node");
	if (loss->value.n != 1)
		return vb_fail(err, VB_ERR_SHAPE,
			       "graph: backward of %s with %zu elements, "
			       "expected a scalar", loss->name, loss->value.n);
	g->pass = GRAPH_PASS_PARAMS;
	mark_active(g, loss, NULL, 0);
	st = fused_pass(g, loss, NULL, (vb_real)scale);
	if (st == VB_OK && g->rounding != GRAPH_ROUNDING_NONE)
		flush_param_grads(g, loss->id);
	/* PARAM grads now live in their slices; INPUT grads stay readable. */
	for (size_t k = 0; k <= loss->id; k++) {
		struct graph_node *n = g->nodes[k];
		if (n->kind != GRAPH_NODE_INPUT)
			n->grad.data = NULL;
		n->active = false;
	}
	g->pass = GRAPH_PASS_NONE;
	if (st != VB_OK)
		return vb_fail(err, st, "%s", g->err.msg);
	return VB_OK;
}

bool graph_depends_on(struct graph *g, const struct graph_node *n,
		      const struct graph_node *a,
		      const struct graph_node *avoid)
{
	bool found;
	if (!n || !a || a->id > n->id || g->nodes[a->id] != a ||
	    g->nodes[n->id] != n || a == avoid)
		return false;
	if (a == n)
		return true;
	/* active is pass scratch, false outside a pass: mark what reaches
	 * back to a (never avoid), in tape order, then clear it again */
	g->nodes[a->id]->active = true;
	for (size_t k = a->id + 1; k <= n->id; k++) {
		struct graph_node *m = g->nodes[k];
		if (m == avoid)
			continue;
		for (int i = 0; i < m->n_in && !m->active; i++)
			m->active = m->in[i]->active;
	}
	found = n->active;
	for (size_t k = a->id; k <= n->id; k++)
		g->nodes[k]->active = false;
	return found;
}

void graph_pass_begin(struct graph *g, struct graph_node *out,
		      struct graph_node **wrt, size_t n_wrt)
{
	g->pass = GRAPH_PASS_GRAD;
	mark_active(g, out, wrt, n_wrt);
}

enum vb_status graph_pass_values(struct graph *g, struct graph_node *out,
				 struct graph_node *seed,
				 struct graph_node **wrt, size_t n_wrt,
				 struct graph_node **result)
{
	size_t top = out->id;
	/* The pass's gradient buffers die with it: stage the results,
	 * give the arena back, then make the result nodes. */
	struct graph_mark mk = graph_mark(g);
	size_t total = 0, off = 0;
	if (fused_pass(g, out, seed ? &seed->value : NULL, 1) !=
	    VB_OK)
		return g->err.status;
	for (size_t k = 0; k < n_wrt; k++)
		total += wrt[k]->value.n;
	if (total > g->stage_cap) {
		vb_real *ns = realloc(g->stage, total * sizeof *ns);
		if (!ns) {
			graph_failf(g, VB_ERR_NOMEM,
				    "graph: cannot stage gradients");
			return g->err.status;
		}
		g->stage = ns;
		g->stage_cap = total;
	}
	for (size_t k = 0; k < n_wrt; k++) {
		struct graph_node *w = wrt[k];
		if (w->id <= top && w->grad.data &&
		    w->grad.layout == TENSOR_LAYOUT_BLK16)
			tensor_blk16_to_plain(w->grad.data, g->stage + off,
					      w->grad.shape[0],
					      w->grad.shape[1],
					      w->grad.shape[2] *
						      w->grad.shape[3]);
		else if (w->id <= top && w->grad.data)
			memcpy(g->stage + off, w->grad.data,
			       w->value.n * sizeof(vb_real));
		else
			memset(g->stage + off, 0,
			       w->value.n * sizeof(vb_real));
		off += w->value.n;
	}
	for (size_t k = 0; k <= top; k++)
		g->nodes[k]->grad.data = NULL;
	graph_release(g, mk);
	off = 0;
	for (size_t k = 0; k < n_wrt; k++) {
		struct graph_node *w = wrt[k];
		struct tensor t = graph_tensor(g, w->value.ndim,
					       w->value.shape);
		if (!t.data && t.n)
			return g->err.status;
		if (t.n)
			memcpy(t.data, g->stage + off,
			       t.n * sizeof(vb_real));
		off += t.n;
		result[k] = graph_const(g, "grad", t);
	}
	return g->err.status;
}

void graph_pass_end(struct graph *g, size_t top)
{
	clear_pass(g, top);
}
