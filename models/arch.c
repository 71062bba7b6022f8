/* arch: dispatch of encoder and decoder by architecture. */
#include "arch.h"

#include "ops.h"

/* The ConvNet and ResNet networks are built for 28 x 28 images:
 * VB_ERR_CONFIG "arch: the ResNet encoder takes 28 x 28 images, not ..."
 * (what: "encoder takes") for other sizes; VB_OK for them and the MLP. */
static enum vb_status side_28(const struct model_config *cfg,
			      const char *what, struct vb_error *err)
{
	if ((cfg->arch != MODEL_ARCH_CONVNET &&
	     cfg->arch != MODEL_ARCH_RESNET) ||
	    (cfg->n_rows == 28 && cfg->n_cols == 28))
		return VB_OK;
	return vb_fail(err, VB_ERR_CONFIG, "arch: the %s %s 28 x 28 images, "
		       "not %zu x %zu",
		       cfg->arch == MODEL_ARCH_CONVNET ? "ConvNet" : "ResNet",
		       what, cfg->n_rows, cfg->n_cols);
}

enum vb_status arch_encoder_add(struct arch_encoder *e, struct params *p,
				const struct model_config *cfg,
				struct vb_error *err)
{
	size_t D = cfg->n_rows * cfg->n_cols;
	struct nets_options o;
	nets_options_from(&o, cfg);
	e->logvar_clamp = cfg->logvar_clamp;
	e->logvar_min = cfg->logvar_min;
	e->logvar_max = cfg->logvar_max;
	e->arch = cfg->arch;
	if (side_28(cfg, "encoder takes", err))
		return VB_ERR_CONFIG;
	if (cfg->arch == MODEL_ARCH_CONVNET)
		return convnet_encoder_add(&e->conv, p, "encoder",
					   cfg->n_latent, &o, err);
	if (cfg->arch == MODEL_ARCH_RESNET)
		return resnet_encoder_add(&e->res, p, "encoder", cfg->n_latent,
					  err);
	return nets_mlp_encoder_add_opt(&e->mlp, p, "encoder", D,
					cfg->n_hidden, cfg->n_latent, &o, err);
}

enum vb_status arch_decoder_add(struct arch_decoder *d, struct params *p,
				const struct model_config *cfg,
				struct vb_error *err)
{
	size_t D = cfg->n_rows * cfg->n_cols;
	struct nets_options o;
	nets_options_from(&o, cfg);
	d->arch = cfg->arch;
	if (side_28(cfg, "decoder makes", err))
		return VB_ERR_CONFIG;
	if (cfg->arch == MODEL_ARCH_CONVNET)
		return convnet_decoder_add(&d->conv, p, "decoder",
					   cfg->n_latent, &o, err);
	if (cfg->arch == MODEL_ARCH_RESNET)
		return resnet_decoder_add(&d->res, p, "decoder", cfg->n_latent,
					  err);
	return nets_mlp_decoder_add_opt(&d->mlp, p, "decoder", cfg->n_latent,
					cfg->n_hidden, D, &o, err);
}

void arch_encoder_init(const struct arch_encoder *e, struct params *p,
		       struct rng *r)
{
	if (e->arch == MODEL_ARCH_CONVNET)
		convnet_encoder_init(&e->conv, p, r);
	else if (e->arch == MODEL_ARCH_RESNET)
		resnet_encoder_init(&e->res, p, r);
	else
		nets_mlp_encoder_init(&e->mlp, p, r);
}

void arch_decoder_init(const struct arch_decoder *d, struct params *p,
		       struct rng *r)
{
	if (d->arch == MODEL_ARCH_CONVNET)
		convnet_decoder_init(&d->conv, p, r);
	else if (d->arch == MODEL_ARCH_RESNET)
		resnet_decoder_init(&d->res, p, r);
	else
		nets_mlp_decoder_init(&d->mlp, p, r);
}

void arch_encoder_forward(const struct arch_encoder *e, struct graph *g,
			  struct graph_node **pnodes, struct graph_node *x,
			  struct graph_node **mu, struct graph_node **logvar)
{
	if (e->arch == MODEL_ARCH_CONVNET)
		convnet_encoder_forward(&e->conv, g, pnodes, x, mu, logvar);
	else if (e->arch == MODEL_ARCH_RESNET)
		resnet_encoder_forward(&e->res, g, pnodes, x, mu, logvar);
	else
		nets_mlp_encoder_forward(&e->mlp, g, pnodes, x, mu, logvar);
	if (e->logvar_clamp)
		*logvar = op_clamp(g, "logvar.clamp", *logvar, e->logvar_min,
				   e->logvar_max);
}

struct graph_node *arch_decoder_forward(const struct arch_decoder *d,
					struct graph *g,
					struct graph_node **pnodes,
					struct graph_node *z)
{
	if (d->arch == MODEL_ARCH_CONVNET)
		return convnet_decoder_forward(&d->conv, g, pnodes, z);
	if (d->arch == MODEL_ARCH_RESNET)
		return resnet_decoder_forward(&d->res, g, pnodes, z);
	return nets_mlp_decoder_forward(&d->mlp, g, pnodes, z);
}

struct graph_node *arch_decode(const struct arch_decoder *d, struct graph *g,
			       struct graph_node **pnodes,
			       struct graph_node *z)
{
	struct graph_node *y;
	graph_push_scope(g, "decoder");
	y = arch_decoder_forward(d, g, pnodes, z);
	graph_pop_scope(g);
	return y;
}
