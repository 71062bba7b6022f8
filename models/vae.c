/* vae: encoder x -> (mu, logvar), z = mu + eps exp(logvar / 2),
 * decoder z -> y = sigmoid(...), loss = mean_b(recon_b + KL_b) exactly as
 * rhvae.md section 3 (pythae's VAE.forward / loss_function). Also the
 * std and reconstruction terms every model shares, with the sigma and
 * bce_eps mitigations (issue 6). */
#include "vae.h"

#include <stdlib.h>

#include "arch.h"
#include "nets.h"
#include "ops.h"

struct vae {
	struct arch_encoder enc;
	struct arch_decoder dec;
};

struct graph_node *vae_std(const struct model_config *cfg, struct graph *g,
			   struct graph_node **logvar)
{
	struct graph_node *std;
	if (cfg->sigma != MODEL_SIGMA_SOFTPLUS)
		return op_exp(g, "std",
			      op_scale(g, "half_logvar", *logvar, 0.5));
	std = op_softplus(g, "std", *logvar);
	*logvar = op_scale(g, "logvar", op_log(g, "log_std", std), 2);
	return std;
}

struct graph_node *vae_recon(const struct model_config *cfg, struct graph *g,
			     struct graph_node *y, struct graph_node *x)
{
	if (cfg->recon == MODEL_RECON_MSE)
		return op_mse(g, "recon", y, x);
	if (cfg->bce_eps > 0)
		y = op_clamp(g, "bce_clamp", y, cfg->bce_eps,
			     1 - cfg->bce_eps);
	return op_bce(g, "recon", y, x, cfg->bce_log_clamp,
		      cfg->bce_denom_eps);
}

enum vb_status vae_check_config(const struct model_config *cfg,
				const char *who, struct vb_error *err)
{
	if (cfg->sigma != MODEL_SIGMA_EXP && cfg->sigma != MODEL_SIGMA_SOFTPLUS)
		return vb_fail(err, VB_ERR_CONFIG,
			       "%s: sigma %d, expected exp or softplus", who,
			       (int)cfg->sigma);
	if (!(cfg->bce_eps >= 0 && cfg->bce_eps < 0.5))
		return vb_fail(err, VB_ERR_CONFIG,
			       "%s: bce_eps %g, expected in [0, 0.5)", who,
			       cfg->bce_eps);
	return VB_OK;
}

struct graph_node *vae_loss_total(struct graph *g, struct graph_node *recon,
				  struct graph_node *reg)
{
	return op_mean(g, "total", op_add(g, "per_sample", recon, reg));
}

enum vb_status vae_loss_finish(struct graph *g, struct model_out *out,
			       const char *reg_name, struct graph_node *extra)
{
	graph_push_scope(g, "loss");
	if (extra)
		out->reg = op_add(g, reg_name, out->reg, extra);
	out->loss = vae_loss_total(g, out->recon, out->reg);
	graph_pop_scope(g);
	return graph_status(g);
}

void vae_out_terms(struct model_out *out, struct graph_node *recon,
		   struct graph_node *reg, struct graph_node *y,
		   struct graph_node *z, struct graph_node *mu,
		   struct graph_node *logvar)
{
	out->recon = recon;
	out->reg = reg;
	out->y = y;
	out->z = z;
	out->mu = mu;
	out->logvar = logvar;
}

void vae_forward_terms(const struct model *m, struct graph *g,
		       const struct arch_encoder *enc,
		       const struct arch_decoder *dec, struct graph_node *x,
		       struct rng *r, struct model_out *out)
{
	struct graph_node **P = m->pnodes;
	struct graph_node *mu, *logvar, *std, *eps, *z, *y, *rec, *kl;
	size_t B = tensor_rows(&x->value), d = m->cfg.n_latent;
	size_t es[2] = {B, d};
	struct tensor et;

	graph_push_scope(g, "encoder");
	arch_encoder_forward(enc, g, P, x, &mu, &logvar);
	graph_pop_scope(g);

	graph_push_scope(g, "vae");
	std = vae_std(&m->cfg, g, &logvar);
	et = graph_tensor(g, 2, es);
	if (et.data)
		rng_fill_normal(r, et.data, et.n, 0, 1);
	eps = graph_const(g, "eps", et);
	z = op_add(g, "z", mu, op_mul(g, "eps_std", eps, std));
	graph_pop_scope(g);

	y = arch_decode(dec, g, P, z);

	graph_push_scope(g, "loss");
	rec = vae_recon(&m->cfg, g, y, x);
	/* KL_b = -0.5 sum_k (1 + logvar - mu^2 - exp(logvar)), in PyTorch's
	 * order of operations. */
	kl = op_scale(g, "kl",
		      op_sum_rows(g, "kl.sum",
				  op_sub(g, "kl.inner",
					 op_sub(g, "kl.mu2",
						op_add_scalar(g, "kl.one",
							      logvar, 1),
						op_square(g, "kl.mu_sq", mu)),
					 op_exp(g, "kl.var", logvar))),
		      -0.5);
	graph_pop_scope(g);

	out->loss = NULL;
	vae_out_terms(out, rec, kl, y, z, mu, logvar);
}

static enum vb_status vae_build_loss(struct model *m, struct graph *g,
				     struct graph_node *x, struct rng *r,
				     bool training, struct model_out *out,
				     struct vb_error *err)
{
	struct vae *v = m->impl;
	(void)training; /* the VAE's forward is the same in both modes */
	(void)err;
	vae_forward_terms(m, g, &v->enc, &v->dec, x, r, out);
	return vae_loss_finish(g, out, NULL, NULL);
}

static const struct model_ops VAE_OPS = {
	.name = "vae",
	.build_loss = vae_build_loss,
	.networks = vae_networks,
};

enum vb_status vae_networks_add(struct model *m, struct arch_encoder *enc,
				struct arch_decoder *dec,
				struct vb_error *err)
{
	enum vb_status st = params_create(&m->params, err);
	m->enc = enc;
	m->dec = dec;
	if (st == VB_OK)
		st = arch_encoder_add(enc, m->params, &m->cfg, err);
	if (st == VB_OK)
		st = arch_decoder_add(dec, m->params, &m->cfg, err);
	return st;
}

enum vb_status vae_networks_finish(struct model *m, enum vb_status st,
				   struct arch_encoder *enc,
				   struct arch_decoder *dec,
				   struct model **out, struct vb_error *err)
{
	struct rng r;
	if (st == VB_OK)
		st = vae_networks_add(m, enc, dec, err);
	if (st == VB_OK)
		st = params_finalize(m->params, err);
	if (st != VB_OK) {
		model_free(m);
		return st;
	}
	vae_networks_init(m, enc, dec, &r);
	*out = m;
	return VB_OK;
}

enum vb_status vae_family_create(const struct model_ops *ops,
				 const struct model_config *cfg,
				 size_t impl_size, vae_setup_fn setup,
				 struct model **out, struct vb_error *err)
{
	struct model *m;
	struct arch_encoder *enc;
	struct arch_decoder *dec;
	enum vb_status st = model_alloc(ops, cfg, impl_size, &m, err);
	*out = NULL;
	if (st != VB_OK)
		return st;
	st = setup(cfg, m->impl, &enc, &dec, err);
	return vae_networks_finish(m, st, enc, dec, out, err);
}

void vae_networks(const struct model *m, const struct arch_encoder **enc,
		  const struct arch_decoder **dec)
{
	*enc = m->enc;
	*dec = m->dec;
}

void vae_networks_init(struct model *m, const struct arch_encoder *enc,
		       const struct arch_decoder *dec, struct rng *r)
{
	rng_seed(r, m->cfg.init_seed, RNG_STREAM_INIT);
	arch_encoder_init(enc, m->params, r);
	arch_decoder_init(dec, m->params, r);
}

static enum vb_status vae_setup(const struct model_config *cfg, void *impl,
				struct arch_encoder **enc,
				struct arch_decoder **dec, struct vb_error *err)
{
	struct vae *v = impl;
	size_t D = cfg->n_rows * cfg->n_cols, H = cfg->n_hidden;
	size_t d = cfg->n_latent;
	*enc = &v->enc;
	*dec = &v->dec;
	if (D == 0 || d == 0 || H == 0)
		return vb_fail(err, VB_ERR_CONFIG,
			       "vae: input %zu, latent %zu, hidden %zu: all "
			       "must be >= 1", D, d, H);
	return vae_check_config(cfg, "vae", err);
}

enum vb_status vae_create(const struct model_config *cfg, struct model **out,
			  struct vb_error *err)
{
	return vae_family_create(&VAE_OPS, cfg, sizeof(struct vae), vae_setup,
				 out, err);
}
