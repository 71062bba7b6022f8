/* graph_grad: gradients of one node with respect to others, as values or,
 * with create_graph, as new differentiable nodes on the tape (see
 * graph_grad.h). The second-order pass builds its gradient sums with op_add,
 * so it lives here rather than in graph.c: graph_grad -> ops -> graph. */
#include "graph_grad.h"

#include <stdbool.h>
#include <stddef.h>

#include "graph_impl.h"
#include "ops.h"
#include "tensor.h"

static struct graph_node *zero_like(struct graph *g, struct graph_node *n)
{
	struct tensor t = graph_tensor_zero(g, n->value.ndim, n->value.shape);
	if (!t.data && t.n)
		return NULL;
	return graph_const(g, "grad.zero", t);
}

/* A wrt node of graph_grad that is an op node may have no active input
 * (its inputs need no gradient in this pass): nothing flows below it, so
 * its vjp (which may not exist) is not needed. */
static bool any_input_active(const struct graph_node *n)
{
	for (int i = 0; i < n->n_in; i++)
		if (n->in[i]->active)
			return true;
	return false;
}

/* The create_graph pass, after graph_pass_begin: every active node's vjp
 * builds the gradients of its inputs as nodes (summed with op_add when an
 * input has several consumers), from out (seed, or ones when NULL) down;
 * result[k] is wrt[k]'s gradient node (a zero constant when wrt[k] does not
 * reach out). Returns the graph's sticky status. */
static enum vb_status second_order_pass(struct graph *g,
					struct graph_node *out,
					struct graph_node *seed,
					struct graph_node **wrt, size_t n_wrt,
					struct graph_node **result)
{
	size_t top = out->id;
	if (seed) {
		out->grad_node = seed;
	} else {
		struct tensor t = graph_tensor(g, out->value.ndim,
					       out->value.shape);
		if (!t.data)
			return graph_status(g);
		tensor_fill(&t, 1);
		out->grad_node = graph_const(g, "grad.seed", t);
	}
	for (size_t k = top + 1; k-- > 0;) {
		struct graph_node *n = graph_node_at(g, k);
		struct graph_node *gin[GRAPH_MAX_IN] = {0};
		if (!n->active || !n->grad_node || !n->op ||
		    !any_input_active(n))
			continue;
		if (!n->op->vjp) {
			graph_failf(g, VB_ERR_INTERNAL,
				    "graph: op %s (node %s) has no second-order "
				    "backward", n->op->name, n->name);
			return graph_status(g);
		}
		n->op->vjp(g, n, n->grad_node, gin);
		if (graph_status(g) != VB_OK)
			return graph_status(g);
		for (int i = 0; i < n->n_in; i++) {
			struct graph_node *in = n->in[i];
			if (!in->active || !gin[i])
				continue;
			in->grad_node = in->grad_node
				? op_add(g, "grad.acc", in->grad_node, gin[i])
				: gin[i];
		}
		if (graph_status(g) != VB_OK)
			return graph_status(g);
	}
	for (size_t k = 0; k < n_wrt; k++) {
		struct graph_node *w = wrt[k];
		result[k] = (w->id <= top && w->grad_node) ? w->grad_node
							   : zero_like(g, w);
	}
	return graph_status(g);
}

enum vb_status graph_grad(struct graph *g, struct graph_node *out,
			  struct graph_node *seed, struct graph_node **wrt,
			  size_t n_wrt, bool create_graph,
			  struct graph_node **result, struct vb_error *err)
{
	enum vb_status st;
	size_t top;
	for (size_t k = 0; k < n_wrt; k++)
		result[k] = NULL;
	if (!out || graph_status(g) != VB_OK)
		return vb_fail(err, graph_status(g) ? graph_status(g)
						    : VB_ERR_INTERNAL,
			       "%s", graph_status(g) ? graph_error(g)->msg
					: "graph: grad of a NULL node");
	if (!seed && out->value.n != 1)
		return vb_fail(err, VB_ERR_SHAPE,
			       "graph: grad of %s with %zu elements needs a "
			       "seed", out->name, out->value.n);
	/* As PyTorch: a gradient with respect to a node that does not
	 * require grad would be zero through some paths and right through
	 * others (its consumers are active only when another input requires
	 * grad), and ops without backward (relu_mask, full) would be called
	 * with none; refuse it. */
	for (size_t k = 0; k < n_wrt; k++)
		if (!wrt[k] || !wrt[k]->requires_grad)
			return vb_fail(err, VB_ERR_INTERNAL,
				       "graph: grad with respect to %s, which "
				       "does not require grad",
				       wrt[k] ? wrt[k]->name : "a NULL node");
	if (seed && seed->value.n != out->value.n)
		return vb_fail(err, VB_ERR_SHAPE,
			       "graph: seed of %zu elements for %s of %zu",
			       seed->value.n, out->name, out->value.n);
	top = out->id;
	graph_pass_begin(g, out, wrt, n_wrt);
	st = create_graph
		? second_order_pass(g, out, seed, wrt, n_wrt, result)
		: graph_pass_values(g, out, seed, wrt, n_wrt, result);
	graph_pass_end(g, top);
	/* callers read the results: row-major, whatever the ops made */
	for (size_t k = 0; st == VB_OK && k < n_wrt; k++)
		if (result[k])
			graph_to_plain(g, &result[k]->value);
	if (st != VB_OK)
		return vb_fail(err, st, "%s", graph_error(g)->msg);
	return VB_OK;
}
