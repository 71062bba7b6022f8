/* nets: linear layers, hidden activations, init schemes and BatchNorm
 * layers (running statistics in the model buffers), and pythae's MLPs. */
#include "nets.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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

void nets_options_from(struct nets_options *o, const struct model_config *c)
{
	o->activation = c->activation;
	o->leaky_slope = c->leaky_slope;
	o->init = c->init;
	o->init_scale = c->init_scale;
	o->bias_fill = c->bias_fill;
	o->bias_value = c->bias_value;
	o->batchnorm = c->mlp_batchnorm;
	o->bn_eps = c->bn_eps;
	o->bn_momentum = c->bn_momentum;
	o->bn_track = c->bn_track_running_stats;
	o->bn_eval_batch = c->bn_eval_batch_stats;
	o->buffers = c->buffers;
}

static void default_options(struct nets_options *o)
{
	struct model_config c;
	model_config_defaults(&c);
	nets_options_from(o, &c);
}

struct graph_node *nets_activation(struct graph *g, const char *name,
				   struct graph_node *x,
				   const struct nets_options *o)
{
	char nm[GRAPH_NAME_LEN];
	snprintf(nm, sizeof nm, "%s.%s", name,
		 model_activation_name(o->activation));
	switch (o->activation) {
	case MODEL_ACT_RELU:
		return op_relu(g, nm, x);
	case MODEL_ACT_SIGMOID:
		return op_sigmoid(g, nm, x);
	case MODEL_ACT_SOFTPLUS:
		return op_softplus(g, nm, x);
	case MODEL_ACT_TANH:
		/* tanh x = 2 sigmoid(2x) - 1 */
		graph_push_scope(g, nm);
		x = op_add_scalar(
			g, "out",
			op_scale(g, "twice",
				 op_sigmoid(g, "sig",
					    op_scale(g, "2x", x, 2)),
				 2),
			-1);
		graph_pop_scope(g);
		return x;
	case MODEL_ACT_LEAKY_RELU:
		graph_push_scope(g, nm);
		x = op_sub(g, "out", op_relu(g, "pos", x),
			   op_scale(g, "neg_slope",
				    op_relu(g, "neg", op_neg(g, "minus", x)),
				    o->leaky_slope));
		graph_pop_scope(g);
		return x;
	}
	return graph_failf(g, VB_ERR_CONFIG, "nets: activation %d unknown",
			   (int)o->activation);
}

void nets_init_layer(struct params *p, size_t w, size_t b, size_t fan_in,
		     size_t fan_out, const struct nets_options *o,
		     struct rng *r)
{
	double fi = (double)fan_in, fo = (double)fan_out;
	double bound = 1.0 / sqrt(fi);
	struct tensor wt = params_value(p, w);
	switch (o->init) {
	case MODEL_INIT_PYTORCH:
		params_init_uniform(p, w, bound, r);
		break;
	case MODEL_INIT_SCALED:
		params_init_uniform(p, w, bound * o->init_scale, r);
		break;
	case MODEL_INIT_XAVIER_UNIFORM:
		params_init_uniform(p, w, sqrt(6.0 / (fi + fo)), r);
		break;
	case MODEL_INIT_XAVIER_NORMAL:
		rng_fill_normal(r, wt.data, wt.n, 0, sqrt(2.0 / (fi + fo)));
		break;
	case MODEL_INIT_KAIMING_UNIFORM:
		params_init_uniform(p, w, sqrt(6.0 / fi), r);
		break;
	case MODEL_INIT_KAIMING_NORMAL:
		rng_fill_normal(r, wt.data, wt.n, 0, sqrt(2.0 / fi));
		break;
	}
	if (b == SIZE_MAX)
		return;
	if (o->bias_fill) {
		struct tensor bt = params_value(p, b);
		tensor_fill(&bt, (vb_real)o->bias_value);
	} else {
		params_init_uniform(p, b, bound, r);
	}
}

enum vb_status nets_bn_add(struct nets_bn *bn, struct params *p,
			   const char *prefix, size_t n_ch,
			   const struct nets_options *o, struct vb_error *err)
{
	char name[2 * PARAMS_NAME_LEN];
	size_t cs[1] = {n_ch};
	void *d;
	enum vb_status st;
	struct model_buffers *buf = o->buffers;
	memset(bn, 0, sizeof *bn);
	if (!buf)
		return vb_fail(err, VB_ERR_CONFIG,
			       "nets: %s: BatchNorm needs the model's buffer "
			       "store (create the model with model_create)",
			       prefix);
	bn->n_ch = n_ch;
	bn->buf = buf;
	bn->eps = o->bn_eps;
	bn->momentum = o->bn_momentum;
	bn->eval_batch = o->bn_eval_batch;
	if (join_name(name, sizeof name, prefix, ".weight", err))
		return VB_ERR_INTERNAL;
	st = params_add(p, name, 1, cs, &bn->w, err);
	if (st)
		return st;
	if (join_name(name, sizeof name, prefix, ".bias", err))
		return VB_ERR_INTERNAL;
	st = params_add(p, name, 1, cs, &bn->b, err);
	if (st || !o->bn_track)
		return st;
	if (join_name(name, sizeof name, prefix, ".running_mean", err))
		return VB_ERR_INTERNAL;
	st = model_buffers_add(buf, name, CHECKPOINT_REAL, n_ch, 0, &d, err);
	bn->rmean = d;
	if (st)
		return st;
	if (join_name(name, sizeof name, prefix, ".running_var", err))
		return VB_ERR_INTERNAL;
	st = model_buffers_add(buf, name, CHECKPOINT_REAL, n_ch, 1, &d, err);
	bn->rvar = d;
	if (st)
		return st;
	if (join_name(name, sizeof name, prefix, ".num_batches_tracked",
		      err))
		return VB_ERR_INTERNAL;
	st = model_buffers_add(buf, name, CHECKPOINT_I64, 1, 0, &d, err);
	bn->n_tracked = d;
	return st;
}

void nets_bn_init(const struct nets_bn *bn, struct params *p)
{
	struct tensor w = params_value(p, bn->w), b = params_value(p, bn->b);
	tensor_fill(&w, 1);
	tensor_fill(&b, 0);
}

struct graph_node *nets_bn_forward(const struct nets_bn *bn, struct graph *g,
				   struct graph_node **pnodes,
				   const char *name, struct graph_node *x)
{
	bool training = bn->buf->training, tracked = bn->rmean != NULL;
	struct op_bn_settings s;
	struct op_bn_running run = {bn->rmean, bn->rvar, bn->n_tracked};
	s.batch_stats = training || !tracked || bn->eval_batch;
	s.update_running = training && tracked;
	s.momentum = bn->momentum;
	s.eps = bn->eps;
	return op_batch_norm(g, name, x, pnodes[bn->w], pnodes[bn->b], &s,
			     tracked ? &run : NULL);
}

enum vb_status nets_conv_add(struct nets_conv *c, struct params *p,
			     const char *prefix, bool transposed, size_t n_in,
			     size_t n_out, size_t k, int stride, int pad,
			     int out_pad, struct vb_error *err)
{
	char name[2 * PARAMS_NAME_LEN];
	size_t ws[4], bs[1] = {n_out};
	enum vb_status st;
	*c = (struct nets_conv){n_in, n_out, k, stride, pad, out_pad,
				transposed, 0, 0};
	ws[0] = transposed ? n_in : n_out;
	ws[1] = transposed ? n_out : n_in;
	ws[2] = ws[3] = k;
	if (join_name(name, sizeof name, prefix, ".weight", err))
		return VB_ERR_INTERNAL;
	st = params_add(p, name, 4, ws, &c->w, err);
	if (st)
		return st;
	if (join_name(name, sizeof name, prefix, ".bias", err))
		return VB_ERR_INTERNAL;
	return params_add(p, name, 1, bs, &c->b, err);
}

struct graph_node *nets_conv_forward(const struct nets_conv *c,
				     struct graph *g,
				     struct graph_node **pnodes,
				     const char *name, struct graph_node *x)
{
	if (c->transposed)
		return op_conv_transpose2d(g, name, x, pnodes[c->w],
					   pnodes[c->b], c->stride, c->pad,
					   c->out_pad);
	return op_conv2d(g, name, x, pnodes[c->w], pnodes[c->b], c->stride,
			 c->pad);
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

/* After st: VB_ERR_INTERNAL when "<prefix><suffix>" does not fit a name;
 * else the linear layer l under that name when st is VB_OK, or st. */
static enum vb_status linear_then(enum vb_status st, struct nets_linear *l,
				  struct params *p, const char *prefix,
				  const char *suffix, size_t n_in,
				  size_t n_out, struct vb_error *err)
{
	char name[2 * PARAMS_NAME_LEN];
	if (join_name(name, sizeof name, prefix, suffix, err))
		return VB_ERR_INTERNAL;
	return st == VB_OK ? nets_linear_add(l, p, name, n_in, n_out, err)
			   : st;
}

/* The MLP's hidden layer "<prefix>.layers.0": Linear(n_in, n_hidden)
 * fc1, then BatchNorm1d bn1 when o->batchnorm. VB_ERR_INTERNAL only when
 * a name does not fit. */
static enum vb_status hidden_add(struct nets_linear *fc1, struct nets_bn *bn1,
				 struct params *p, const char *prefix,
				 size_t n_in, size_t n_hidden,
				 const struct nets_options *o,
				 struct vb_error *err)
{
	char name[2 * PARAMS_NAME_LEN];
	enum vb_status st;
	if (join_name(name, sizeof name, prefix, ".layers.0.0", err))
		return VB_ERR_INTERNAL;
	st = nets_linear_add(fc1, p, name, n_in, n_hidden, err);
	if (join_name(name, sizeof name, prefix, ".layers.0.1", err))
		return VB_ERR_INTERNAL;
	if (st == VB_OK && o->batchnorm)
		st = nets_bn_add(bn1, p, name, n_hidden, o, err);
	return st;
}

static void hidden_init(const struct nets_linear *fc1,
			const struct nets_bn *bn1, struct params *p,
			const struct nets_options *o, struct rng *r)
{
	nets_init_layer(p, fc1->w, fc1->b, fc1->n_in, fc1->n_out, o, r);
	if (o->batchnorm)
		nets_bn_init(bn1, p);
}

/* act(bn1(fc1(x))) (bn1 when o->batchnorm), nodes fc1, fc1.bn. */
static struct graph_node *hidden_forward(const struct nets_linear *fc1,
					 const struct nets_bn *bn1,
					 const struct nets_options *o,
					 struct graph *g,
					 struct graph_node **pnodes,
					 struct graph_node *x)
{
	struct graph_node *h = nets_linear_forward(fc1, g, pnodes, "fc1", x);
	if (o->batchnorm)
		h = nets_bn_forward(bn1, g, pnodes, "fc1.bn", h);
	return nets_activation(g, "fc1", h, o);
}

enum vb_status nets_mlp_encoder_add(struct nets_mlp_encoder *e,
				    struct params *p, const char *prefix,
				    size_t n_input, size_t n_hidden,
				    size_t n_latent, struct vb_error *err)
{
	struct nets_options o;
	default_options(&o);
	return nets_mlp_encoder_add_opt(e, p, prefix, n_input, n_hidden,
					n_latent, &o, err);
}

enum vb_status nets_mlp_encoder_add_opt(struct nets_mlp_encoder *e,
					struct params *p, const char *prefix,
					size_t n_input, size_t n_hidden,
					size_t n_latent,
					const struct nets_options *o,
					struct vb_error *err)
{
	enum vb_status st;
	e->opt = *o;
	st = hidden_add(&e->fc1, &e->bn1, p, prefix, n_input, n_hidden, o,
			err);
	st = linear_then(st, &e->mu, p, prefix, ".embedding", n_hidden,
			 n_latent, err);
	return linear_then(st, &e->logvar, p, prefix, ".log_var", n_hidden,
			   n_latent, err);
}

void nets_mlp_encoder_init(const struct nets_mlp_encoder *e, struct params *p,
			   struct rng *r)
{
	const struct nets_options *o = &e->opt;
	hidden_init(&e->fc1, &e->bn1, p, o, r);
	nets_init_layer(p, e->mu.w, e->mu.b, e->mu.n_in, e->mu.n_out, o, r);
	nets_init_layer(p, e->logvar.w, e->logvar.b, e->logvar.n_in,
			e->logvar.n_out, o, r);
}

void nets_mlp_encoder_forward(const struct nets_mlp_encoder *e,
			      struct graph *g, struct graph_node **pnodes,
			      struct graph_node *x, struct graph_node **mu,
			      struct graph_node **logvar)
{
	struct graph_node *h = hidden_forward(&e->fc1, &e->bn1, &e->opt, g,
					      pnodes, x);
	*mu = nets_linear_forward(&e->mu, g, pnodes, "mu", h);
	*logvar = nets_linear_forward(&e->logvar, g, pnodes, "logvar", h);
}

enum vb_status nets_mlp_decoder_add(struct nets_mlp_decoder *d,
				    struct params *p, const char *prefix,
				    size_t n_latent, size_t n_hidden,
				    size_t n_output, struct vb_error *err)
{
	struct nets_options o;
	default_options(&o);
	return nets_mlp_decoder_add_opt(d, p, prefix, n_latent, n_hidden,
					n_output, &o, err);
}

enum vb_status nets_mlp_decoder_add_opt(struct nets_mlp_decoder *d,
					struct params *p, const char *prefix,
					size_t n_latent, size_t n_hidden,
					size_t n_output,
					const struct nets_options *o,
					struct vb_error *err)
{
	enum vb_status st;
	d->opt = *o;
	st = hidden_add(&d->fc1, &d->bn1, p, prefix, n_latent, n_hidden, o,
			err);
	return linear_then(st, &d->out, p, prefix, ".layers.1.0", n_hidden,
			   n_output, err);
}

void nets_mlp_decoder_init(const struct nets_mlp_decoder *d, struct params *p,
			   struct rng *r)
{
	const struct nets_options *o = &d->opt;
	hidden_init(&d->fc1, &d->bn1, p, o, r);
	nets_init_layer(p, d->out.w, d->out.b, d->out.n_in, d->out.n_out, o,
			r);
}

struct graph_node *nets_mlp_decoder_forward(const struct nets_mlp_decoder *d,
					    struct graph *g,
					    struct graph_node **pnodes,
					    struct graph_node *z)
{
	struct graph_node *a = hidden_forward(&d->fc1, &d->bn1, &d->opt, g,
					      pnodes, z);
	return op_sigmoid(g, "out.sigmoid",
			  nets_linear_forward(&d->out, g, pnodes, "out", a));
}

