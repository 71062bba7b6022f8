/* graph_impl: the pass internals of the tape that graph_grad.c builds on
 * (private to core/, not installed). graph.c owns the tape and the
 * first-order pass; graph_grad.c owns graph_grad and its second-order
 * (create_graph) pass, which builds gradient nodes with ops, so that
 * graph.c never includes ops.h (dependencies: graph_grad -> ops -> graph). */
#ifndef VB_CORE_GRAPH_IMPL_H
#define VB_CORE_GRAPH_IMPL_H

#include <stddef.h>

#include "graph.h"

/* Starts a graph_grad pass: marks the nodes up to out that descend from
 * wrt[0..n_wrt) and require grad active, and clears their grad buffers
 * and grad_node. */
void graph_pass_begin(struct graph *g, struct graph_node *out,
		      struct graph_node **wrt, size_t n_wrt);

/* The first-order graph_grad pass (create_graph false), after
 * graph_pass_begin: runs the fused backward kernels from out (seed, or
 * ones when NULL), stages the gradients of wrt[k], gives the pass's arena
 * back and sets result[k] to a CONST node holding each (zeros when wrt[k]
 * does not reach out). Returns the graph's sticky status. */
enum vb_status graph_pass_values(struct graph *g, struct graph_node *out,
				 struct graph_node *seed,
				 struct graph_node **wrt, size_t n_wrt,
				 struct graph_node **result);

/* Ends a pass started by graph_pass_begin: clears the pass scratch of
 * nodes 0..top (grad buffers, grad_node, active). */
void graph_pass_end(struct graph *g, size_t top);

#endif
