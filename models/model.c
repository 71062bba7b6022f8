/* model: names, defaults, creation by kind, the build_loss wrapper. */
#include "model.h"

#include <stdlib.h>

#include "vae.h"

const char *model_kind_name(enum model_kind kind)
{
	switch (kind) {
	case MODEL_KIND_VAE: return "vae";
	}
	return "unknown";
}

const char *model_arch_name(enum model_arch arch)
{
	switch (arch) {
	case MODEL_ARCH_MLP: return "mlp";
	}
	return "unknown";
}

const char *model_recon_name(enum model_recon recon)
{
	switch (recon) {
	case MODEL_RECON_MSE: return "mse";
	case MODEL_RECON_BCE: return "bce";
	}
	return "unknown";
}

void model_config_defaults(struct model_config *c)
{
	c->kind = MODEL_KIND_VAE;
	c->arch = MODEL_ARCH_MLP;
	c->recon = MODEL_RECON_MSE;
	c->n_rows = 28;
	c->n_cols = 28;
	c->n_latent = 16;
	c->n_hidden = 512;
	c->bce_log_clamp = -100;
	c->bce_denom_eps = 1e-12;
	c->init_seed = 8;
}

enum vb_status model_create(const struct model_config *cfg,
			    struct model **out, struct vb_error *err)
{
	*out = NULL;
	switch (cfg->kind) {
	case MODEL_KIND_VAE:
		return vae_create(cfg, out, err);
	}
	return vb_fail(err, VB_ERR_CONFIG, "model: unknown kind %d",
		       (int)cfg->kind);
}

void model_free(struct model *m)
{
	if (!m)
		return;
	if (m->ops && m->ops->free_impl)
		m->ops->free_impl(m);
	params_free(m->params);
	free(m);
}

enum vb_status model_build_loss(struct model *m, struct graph *g,
				struct graph_node *x, struct rng *r,
				bool training, struct model_out *out,
				struct vb_error *err)
{
	enum vb_status st;
	out->loss = out->recon = out->reg = NULL;
	out->y = out->z = out->mu = out->logvar = NULL;
	m->pnodes = graph_alloc(g, m->params->n_entries * sizeof *m->pnodes);
	if (!m->pnodes)
		return vb_fail(err, graph_status(g), "%s", graph_error(g)->msg);
	st = params_nodes(m->params, g, m->pnodes);
	if (st == VB_OK)
		st = m->ops->build_loss(m, g, x, r, training, out, err);
	if (st == VB_OK && graph_status(g) != VB_OK)
		st = vb_fail(err, graph_status(g), "%s", graph_error(g)->msg);
	if (st == VB_OK && !out->loss)
		st = vb_fail(err, VB_ERR_INTERNAL, "model: %s built no loss",
			     m->ops->name);
	return st;
}

enum vb_status model_epoch_end(struct model *m, struct vb_error *err)
{
	return m->ops->epoch_end ? m->ops->epoch_end(m, err) : VB_OK;
}
