/* nets: linear layer registration, PyTorch init and forward. */
#include "nets.h"

#include <math.h>
#include <stdio.h>

#include "ops.h"

/* prefix + suffix into buf, refusing names that do not fit. */
static enum vb_status join_name(char *buf, size_t cap, const char *prefix,
				const char *suffix, struct vb_error *err)
{
	int n = snprintf(buf, cap, "%s%s", prefix, suffix);
	if (n < 0 || (size_t)n >= cap)
		return vb_fail(err, VB_ERR_INTERNAL,
			       "nets: parameter name %s%s too long", prefix,
			       suffix);
	return VB_OK;
}

enum vb_status nets_linear_add(struct nets_linear *l, struct params *p,
			       const char *prefix, size_t n_in, size_t n_out,
			       struct vb_error *err)
{
	char name[2 * PARAMS_NAME_LEN];
	size_t ws[2] = {n_out, n_in}, bs[1] = {n_out};
	enum vb_status st;
	l->n_in = n_in;
	l->n_out = n_out;
	if (join_name(name, sizeof name, prefix, ".weight", err))
		return VB_ERR_INTERNAL;
	st = params_add(p, name, 2, ws, &l->w, err);
	if (st)
		return st;
	if (join_name(name, sizeof name, prefix, ".bias", err))
		return VB_ERR_INTERNAL;
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

enum vb_status nets_mlp_encoder_add(struct nets_mlp_encoder *e,
				    struct params *p, const char *prefix,
				    size_t n_input, size_t n_hidden,
				    size_t n_latent, struct vb_error *err)
{
	char name[2 * PARAMS_NAME_LEN];
	enum vb_status st;
	if (join_name(name, sizeof name, prefix, ".layers.0.0", err))
		return VB_ERR_INTERNAL;
	st = nets_linear_add(&e->fc1, p, name, n_input, n_hidden, err);
	if (join_name(name, sizeof name, prefix, ".embedding", err))
		return VB_ERR_INTERNAL;
	if (st == VB_OK)
		st = nets_linear_add(&e->mu, p, name, n_hidden, n_latent, err);
	if (join_name(name, sizeof name, prefix, ".log_var", err))
		return VB_ERR_INTERNAL;
	if (st == VB_OK)
		st = nets_linear_add(&e->logvar, p, name, n_hidden, n_latent,
				     err);
	return st;
}

void nets_mlp_encoder_init(const struct nets_mlp_encoder *e, struct params *p,
			   struct rng *r)
{
	nets_linear_init(&e->fc1, p, r);
	nets_linear_init(&e->mu, p, r);
	nets_linear_init(&e->logvar, p, r);
}

void nets_mlp_encoder_forward(const struct nets_mlp_encoder *e,
			      struct graph *g, struct graph_node **pnodes,
			      struct graph_node *x, struct graph_node **mu,
			      struct graph_node **logvar)
{
	struct graph_node *h = op_relu(
		g, "fc1.relu", nets_linear_forward(&e->fc1, g, pnodes, "fc1", x));
	*mu = nets_linear_forward(&e->mu, g, pnodes, "mu", h);
	*logvar = nets_linear_forward(&e->logvar, g, pnodes, "logvar", h);
}

enum vb_status nets_mlp_decoder_add(struct nets_mlp_decoder *d,
				    struct params *p, const char *prefix,
				    size_t n_latent, size_t n_hidden,
				    size_t n_output, struct vb_error *err)
{
	char name[2 * PARAMS_NAME_LEN];
	enum vb_status st;
	if (join_name(name, sizeof name, prefix, ".layers.0.0", err))
		return VB_ERR_INTERNAL;
	st = nets_linear_add(&d->fc1, p, name, n_latent, n_hidden, err);
	if (join_name(name, sizeof name, prefix, ".layers.1.0", err))
		return VB_ERR_INTERNAL;
	if (st == VB_OK)
		st = nets_linear_add(&d->out, p, name, n_hidden, n_output, err);
	return st;
}

void nets_mlp_decoder_init(const struct nets_mlp_decoder *d, struct params *p,
			   struct rng *r)
{
	nets_linear_init(&d->fc1, p, r);
	nets_linear_init(&d->out, p, r);
}

struct graph_node *nets_mlp_decoder_forward(const struct nets_mlp_decoder *d,
					    struct graph *g,
					    struct graph_node **pnodes,
					    struct graph_node *z)
{
	struct graph_node *a = op_relu(
		g, "fc1.relu", nets_linear_forward(&d->fc1, g, pnodes, "fc1", z));
	return op_sigmoid(g, "out.sigmoid",
			  nets_linear_forward(&d->out, g, pnodes, "out", a));
}

