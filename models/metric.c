/* metric: the RHVAE's kernel metric as a composition of core ops (see
 * metric.h); its gradients and second order are those of the ops. */
#include "metric.h"

#include <stddef.h>
#include <stdio.h>

#include "linalg.h"
#include "op_impl.h"
#include "ops.h"
#include "tensor.h"

struct graph_node *metric_kernel(struct graph *g, const char *name,
				 struct graph_node *z, struct graph_node *c,
				 struct graph_node *m, double temperature,
				 double lambda)
{
	char nm[GRAPH_NAME_LEN];
	const char *base = name ? name : "";
	struct graph_node *dist, *w, *a;
	size_t B, N, d;
	vb_real t = (vb_real)temperature, t2 = t * t;
	if (!z || !c || !m)
		return NULL;
	if (z->value.ndim != 2 || c->value.ndim != 2 || m->value.ndim != 3 ||
	    z->value.shape[1] != c->value.shape[1] ||
	    m->value.shape[0] != c->value.shape[0] ||
	    m->value.shape[1] != z->value.shape[1] ||
	    m->value.shape[2] != z->value.shape[1])
		return op_impl_shape_fail(g, "metric", "kernel", name, z, m);
	B = z->value.shape[0];
	N = c->value.shape[0];
	d = z->value.shape[1];
	snprintf(nm, sizeof nm, "%s.sqdist", base);
	dist = linalg_sqdist(g, nm, z, c);
	/* pythae: exp(-(||z - c||^2) / T^2) with T^2 rounded in the working
	 * precision: negate, then divide (not a multiply by 1/T^2, which
	 * rounds differently). */
	snprintf(nm, sizeof nm, "%s.negdist", base);
	w = op_neg(g, nm, dist);
	snprintf(nm, sizeof nm, "%s.t2", base);
	w = op_div(g, nm, w,
		   op_full(g, nm, 2, (const size_t[2]){B, N}, (double)t2));
	snprintf(nm, sizeof nm, "%s.w", base);
	w = op_exp(g, nm, w);
	snprintf(nm, sizeof nm, "%s.mflat", base);
	a = op_reshape(g, nm, m, 2, (const size_t[2]){N, d * d});
	snprintf(nm, sizeof nm, "%s.wsum", base);
	a = op_matmul(g, nm, w, a, false, false);
	snprintf(nm, sizeof nm, "%s.wsum3", base);
	a = op_reshape(g, nm, a, 3, (const size_t[3]){B, d, d});
	return linalg_add_identity(g, name, a, lambda);
}
