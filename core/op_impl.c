/* op_impl: shared pieces of the op implementations (see op_impl.h). */
#include "op_impl.h"

#include "par.h"
#include "tensor.h"
#include "vb.h"

const char *op_impl_shp(const struct graph_node *n, char *buf, size_t cap)
{
	return tensor_shape_str(&n->value, buf, cap);
}

struct graph_node *op_impl_shape_fail(struct graph *g, const char *module,
				      const char *op, const char *name,
				      const struct graph_node *a,
				      const struct graph_node *b)
{
	char sa[64], sb[64];
	return graph_failf(g, VB_ERR_SHAPE, "%s: %s %s: shapes %s and %s do "
			   "not fit", module, op, name ? name : "",
			   op_impl_shp(a, sa, sizeof sa),
			   b ? op_impl_shp(b, sb, sizeof sb) : "-");
}

void *op_impl_scratch(struct graph *g, const char *module, size_t rows,
		      size_t cols, size_t size)
{
	size_t n, bytes;
	if (!vb_mul_size(rows, cols, &n) || !vb_mul_size(n, size, &bytes)) {
		graph_failf(g, VB_ERR_NOMEM, "%s: scratch of %zu x %zu x %zu "
			    "bytes overflows", module, rows, cols, size);
		return NULL;
	}
	return graph_alloc(g, bytes);
}

void op_impl_pass_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	if (!ga)
		return;
	PAR_FOR(n->value.n)
	for (size_t i = 0; i < n->value.n; i++)
		ga->data[i] += n->grad.data[i];
}

void op_impl_pass_vjp(struct graph *g, struct graph_node *n,
		      struct graph_node *G, struct graph_node **gin)
{
	(void)g;
	if (graph_input_active(n, 0))
		gin[0] = G;
}

void op_impl_product_dims(const struct graph_node *n, int first, size_t *m,
			  size_t *k, size_t *nn)
{
	const struct tensor *a = &n->in[0]->value, *b = &n->in[1]->value;
	bool ta = n->i[0], tb = n->i[1];
	*m = ta ? a->shape[first + 1] : a->shape[first];
	*k = ta ? a->shape[first] : a->shape[first + 1];
	*nn = tb ? b->shape[first] : b->shape[first + 1];
}
