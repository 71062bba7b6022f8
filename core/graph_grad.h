/* graph_grad: the gradient of one tape node with respect to others, as
 * values or, with create_graph, as new nodes on the tape built from ops
 * that have their own backward, so that a gradient can itself be
 * differentiated (PyTorch's create_graph=True). Apart from graph.c because
 * the second-order pass sums gradients with ops: graph_grad -> ops -> graph,
 * and graph.c does not include ops.h. */
#ifndef VB_CORE_GRAPH_GRAD_H
#define VB_CORE_GRAPH_GRAD_H

#include <stdbool.h>
#include <stddef.h>

#include "graph.h"
#include "vb.h"

/* d out / d wrt[k] for k < n_wrt, with seed (same shape as out; NULL
 * means ones, out then must be 1 element). Every wrt[k] must require grad
 * (VB_ERR_INTERNAL otherwise, as PyTorch). Parameter gradient slices are
 * not touched. Without create_graph, result[k] is a CONST node holding the
 * value (zeros when wrt[k] does not reach out). With create_graph, result[k]
 * is a node built on the tape from differentiable ops (requires grad when
 * anything it depends on does), so a loss built from it differentiates
 * through it. Either way result[k]'s value is plain (row-major) on
 * return. */
enum vb_status graph_grad(struct graph *g, struct graph_node *out,
			  struct graph_node *seed, struct graph_node **wrt,
			  size_t n_wrt, bool create_graph,
			  struct graph_node **result, struct vb_error *err);

#endif
