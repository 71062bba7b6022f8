/* model: names, defaults, creation by kind, the build_loss wrapper. */
#include "model.h"

#include <stdlib.h>

#include "hvae.h"
#include "rhvae.h"
#include "vae.h"

const char *model_kind_name(enum model_kind kind)
{
	switch (kind) {
	case MODEL_KIND_VAE: return "vae";
	case MODEL_KIND_RHVAE: return "rhvae";
	case MODEL_KIND_HVAE: return "hvae";
	}
	return "unknown";
}

const char *model_arch_name(enum model_arch arch)
{
	switch (arch) {
	case MODEL_ARCH_MLP: return "mlp";
	case MODEL_ARCH_RESNET: return "resnet";
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
	c->n_batch_max = 64;
	c->n_lf = 3;
	c->eps_lf = 0.001;
	c->beta_zero = 0.3;
	c->temperature = 1.5;
	c->regularization = 0.01;
	c->logdet_mode = 0;
	c->buffer_batches = 100;
	c->n_metric_hidden = 400;
	c->quirk_beta_sqrt = true;
	c->quirk_momentum_l = true;
	c->quirk_position = true;
	c->second_order = true;
	c->quirk_hvae_softplus = true;
	c->quirk_hvae_position = true;
}

enum vb_status model_create(const struct model_config *cfg,
			    struct model **out, struct vb_error *err)
{
	*out = NULL;
	switch (cfg->kind) {
	case MODEL_KIND_VAE:
		return vae_create(cfg, out, err);
	case MODEL_KIND_RHVAE:
		return rhvae_create(cfg, out, err);
	case MODEL_KIND_HVAE:
		return hvae_create(cfg, out, err);
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

enum vb_status model_save_state(const struct model *m,
				struct checkpoint_writer *w,
				struct vb_error *err)
{
	return m->ops->save_state ? m->ops->save_state(m, w, err) : VB_OK;
}

enum vb_status model_load_state(struct model *m, const struct checkpoint *c,
				struct vb_error *err)
{
	return m->ops->load_state ? m->ops->load_state(m, c, err) : VB_OK;
}
