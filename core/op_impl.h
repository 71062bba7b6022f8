/* op_impl: what every op implementation needs besides graph.h, written
 * once: shape strings for messages, the shape-mismatch failure, checked
 * arena scratch and the pass-through gradient (d a = G). Private to the
 * files that define ops (core/ops*.c, core/linalg.c, and models/ files
 * that define their own op); not part of any public header. */
#ifndef VB_CORE_OP_IMPL_H
#define VB_CORE_OP_IMPL_H

#include <stddef.h>

#include "graph.h"

/* n's value shape as "(2, 3)" in buf (cap bytes); returns buf. */
const char *op_impl_shp(const struct graph_node *n, char *buf, size_t cap);

/* Sets the graph's sticky error (VB_ERR_SHAPE) to "<module>: <op>
 * <name>: shapes <a> and <b> do not fit" (b NULL: "-", name NULL: "") and
 * returns NULL, so an op returns it directly. */
struct graph_node *op_impl_shape_fail(struct graph *g, const char *module,
				      const char *op, const char *name,
				      const struct graph_node *a,
				      const struct graph_node *b);

/* Arena scratch of rows x cols items of size bytes each (every product
 * checked), alive until the arena is released or reset. NULL with the
 * sticky error set ("<module>: scratch of ... overflows", or the arena's
 * own error when exhausted). */
void *op_impl_scratch(struct graph *g, const char *module, size_t rows,
		      size_t cols, size_t size);

/* C (m, nn) = op(A) op(B) of a product node n (matmul: first = 0; bmm,
 * per matrix: first = 1, the batch dimension before it): m, k and nn
 * from the inputs' shapes starting at dimension first and the transpose
 * flags n->i[0], n->i[1]. */
void op_impl_product_dims(const struct graph_node *n, int first, size_t *m,
			  size_t *k, size_t *nn);

/* The pass-through gradient of an op whose output is input 0 plus a
 * constant, or input 0's values in the same order (add_scalar,
 * add_identity, reshape): the backward kernel accumulates (+=) n's
 * gradient into input 0's; the vjp hands G on unchanged when input 0 is
 * active (reshape has its own vjp, which reshapes G). */
void op_impl_pass_backward(struct graph *g, struct graph_node *n);
void op_impl_pass_vjp(struct graph *g, struct graph_node *n,
		      struct graph_node *G, struct graph_node **gin);

#endif
