/* nets: linear layer registration, PyTorch init and forward. */
#include "nets.h"

#include <math.h>
#include <stdio.h>

#include "ops.h"

enum vb_status nets_linear_add(struct nets_linear *l, struct params *p,
			       const char *prefix, size_t n_in, size_t n_out,
			       struct vb_error *err)
{
	char name[PARAMS_NAME_LEN];
	size_t ws[2] = {n_out, n_in}, bs[1] = {n_out};
	enum vb_status st;
	l->n_in = n_in;
	l->n_out = n_out;
	snprintf(name, sizeof name, "%s.weight", prefix);
	st = params_add(p, name, 2, ws, &l->w, err);
	if (st)
		return st;
	snprintf(name, sizeof name, "%s.bias", prefix);
	return params_add(p, name, 1, bs, &l->b, err);
}

void nets_linear_init(const struct nets_linear *l, struct params *p,
		      struct rng *r)
{
	double bound = 1.0 / sqrt((double)l->n_in);
	params_init_uniform(p, l->w, bound, r);
	params_init_uniform(p, l->b, bound, r);
}

struct graph_node *nets_linear_forward(const struct nets_linear *l,
				       struct graph *g,
				       struct graph_node **pnodes,
				       const char *name,
				       struct graph_node *x)
{
	return op_linear(g, name, x, pnodes[l->w], pnodes[l->b]);
}
