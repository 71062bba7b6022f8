/* hvae: forward and loss of rhvae.md 9.1. The potential's gradient
 * dU(z) = d(-sum log p(x|z))/dz + z is a constant (no create_graph in
 * pythae 0.1.2), so z_K = z0 + constants and no second order is needed. */
#include "hvae.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "arch.h"
#include "guard.h"
#include "nets.h"
#include "ops.h"
#include "vae.h"

struct hvae {
	struct arch_encoder enc;
	struct arch_decoder dec;
	vb_real b; /* sqrt(beta_zero), a real square root here */
};

/* -log p(x | z) per sample: mse, or BCE treating the output as logits
 * (pythae's HVAE warns that "bce" expects logits). */
static struct graph_node *neg_logpx(struct model *m, struct graph *g,
				    struct graph_node *y,
				    struct graph_node *x)
{
	if (m->cfg.recon == MODEL_RECON_MSE)
		return op_mse(g, "recon", y, x);
	return op_bce_logits(g, "recon", y, x);
}

/* dU(z) = grad_z(sum -log p(x | y(z))) + z, as a constant. */
static struct graph_node *grad_u(struct model *m, struct graph *g,
				 struct graph_node *x, struct graph_node *z,
				 struct graph_node *y, struct vb_error *err)
{
	struct graph_node *U = op_sum(g, "U", neg_logpx(m, g, y, x));
	struct graph_node *gz = NULL;
	if (!U)
		return NULL;
	if (graph_grad(g, U, NULL, &z, 1, false, &gz, err) != VB_OK)
		return graph_failf(g, err->status, "%s", err->msg);
	struct graph_node *du = op_add(g, "dU", gz, z);
	if (m->cfg.h_grad_clip > 0)
		du = op_clamp(g, "h_grad_clip", du, -m->cfg.h_grad_clip,
			      m->cfg.h_grad_clip);
	return du ? graph_const(g, "dU", du->value) : NULL;
}

static enum vb_status hvae_build_loss(struct model *m, struct graph *g,
				      struct graph_node *x, struct rng *r,
				      bool training, struct model_out *out,
				      struct vb_error *err)
{
	struct hvae *hv = m->impl;
	const struct model_config *cfg = &m->cfg;
	size_t B = tensor_rows(&x->value), d = cfg->n_latent;
	size_t s2[2] = {B, d};
	struct graph_node *mu, *logvar, *sigma, *eps0, *z, *rho, *y;
	bool old = graph_set_grad_enabled(g, true);
	(void)training;

	graph_push_scope(g, "encoder");
	arch_encoder_forward(&hv->enc, g, m->pnodes, x, &mu, &logvar);
	graph_pop_scope(g);
	graph_push_scope(g, "hvae");
	/* model.sigma softplus overrides the quirk with its consistent form:
	 * std = softplus(s) and log q with logvar = 2 log std (vae_std);
	 * with exp the quirk decides, and log q keeps the raw s. */
	if (cfg->sigma == MODEL_SIGMA_SOFTPLUS)
		sigma = vae_std(cfg, g, &logvar);
	else
		sigma = cfg->quirk_hvae_softplus
				? op_softplus(g, "sigma", logvar)
				: op_exp(g, "sigma",
					 op_scale(g, "half_logvar", logvar,
						  0.5));
	struct tensor et = graph_tensor(g, 2, s2), gt = graph_tensor(g, 2, s2);
	if (et.data && gt.data) {
		rng_fill_normal(r, et.data, et.n, 0, 1);
		rng_fill_normal(r, gt.data, gt.n, 0, 1);
		for (size_t i = 0; i < gt.n; i++)
			gt.data[i] = gt.data[i] / hv->b;
	}
	eps0 = graph_const(g, "eps0", et);
	z = op_add(g, "z0", mu, op_mul(g, "eps_sigma", eps0, sigma));
	if (z && !z->requires_grad) /* evaluation with frozen weights */
		z = graph_input(g, "z0.leaf", z->value, true);
	rho = graph_const(g, "rho0", gt);
	graph_pop_scope(g);
	y = arch_decode(&hv->dec, g, m->pnodes, z);
	for (size_t k = 1; k <= cfg->n_lf; k++) {
		char scope[16];
		snprintf(scope, sizeof scope, "lf%zu", k);
		int phase0 = graph_phase(g);
		graph_set_phase(g, GUARD_PHASE_CODE(GUARD_PHASE_LEAPFROG, k, 1));
		graph_push_scope(g, "hvae");
		graph_push_scope(g, scope);
		struct graph_node *du = grad_u(m, g, x, z, y, err);
		struct graph_node *rho_half = op_sub(
			g, "rho_half", rho, op_scale(g, "half_eps_dU", du,
						     0.5 * cfg->eps_lf));
		/* [quirk] pythae 0.1.2 moves z with rho, not rho' */
		struct graph_node *v = cfg->quirk_hvae_position ? rho : rho_half;
		graph_set_phase(g, GUARD_PHASE_CODE(GUARD_PHASE_LEAPFROG, k, 2));
		z = op_add(g, "z", z, op_scale(g, "eps_rho", v, cfg->eps_lf));
		graph_pop_scope(g);
		graph_pop_scope(g);
		graph_set_phase(g, GUARD_PHASE_CODE(GUARD_PHASE_LEAPFROG, k, 3));
		y = arch_decode(&hv->dec, g, m->pnodes, z);
		graph_push_scope(g, "hvae");
		graph_push_scope(g, scope);
		graph_set_phase(g, GUARD_PHASE_CODE(GUARD_PHASE_LEAPFROG, k, 4));
		du = grad_u(m, g, x, z, y, err);
		/* the tempering factor is computed and then overwritten in
		 * pythae 0.1.2: rho = rho'' */
		rho = op_sub(g, "rho", rho_half,
			     op_scale(g, "half_eps_dU", du, 0.5 * cfg->eps_lf));
		graph_set_phase(g, phase0);
		graph_pop_scope(g);
		graph_pop_scope(g);
	}
	graph_push_scope(g, "loss");
	struct graph_node *rec = neg_logpx(m, g, y, x);
	struct graph_node *rest = op_scale(
		g, "prior", op_sum_rows(g, "z_sq", op_square(g, "z2", z)), 0.5);
	rest = op_add(g, "kinetic", rest,
		      op_scale(g, "rho_sq",
			       op_sum_rows(g, "rho_sq", op_square(g, "rho2", rho)),
			       0.5));
	rest = op_sub(g, "log_q_logvar", rest,
		      op_scale(g, "half_sum_logvar",
			       op_sum_rows(g, "sum_logvar", logvar), 0.5));
	out->loss = op_mean(g, "total", op_add(g, "per_sample", rec, rest));
	graph_pop_scope(g);
	out->recon = rec;
	out->reg = rest;
	out->y = y;
	out->z = z;
	out->mu = mu;
	out->logvar = logvar;
	graph_set_grad_enabled(g, old);
	return graph_status(g);
}

static void hvae_free_impl(struct model *m)
{
	free(m->impl);
}

static void hvae_networks(const struct model *m,
			 const struct arch_encoder **enc,
			 const struct arch_decoder **dec)
{
	const struct hvae *v = m->impl;
	*enc = &v->enc;
	*dec = &v->dec;
}

static const struct model_ops HVAE_OPS = {"hvae", hvae_build_loss, NULL,
					  hvae_free_impl, NULL, NULL, hvae_networks};

enum vb_status hvae_create(const struct model_config *cfg, struct model **out,
			   struct vb_error *err)
{
	struct model *m = calloc(1, sizeof *m);
	struct hvae *hv = calloc(1, sizeof *hv);
	size_t D = cfg->n_rows * cfg->n_cols, H = cfg->n_hidden;
	size_t d = cfg->n_latent;
	struct rng r;
	enum vb_status st = VB_OK;
	*out = NULL;
	if (!m || !hv) {
		free(m);
		free(hv);
		return vb_fail(err, VB_ERR_NOMEM, "hvae: cannot allocate");
	}
	m->ops = &HVAE_OPS;
	m->cfg = *cfg;
	m->impl = hv;
	hv->b = (vb_real)sqrt(cfg->beta_zero);
	if (D == 0 || d == 0 || H == 0 || !(cfg->beta_zero > 0))
		st = vb_fail(err, VB_ERR_CONFIG,
			     "hvae: input %zu, latent %zu, hidden %zu, "
			     "beta_zero %g: expected all > 0", D, d, H,
			     cfg->beta_zero);
	if (st == VB_OK)
		st = vae_check_config(cfg, "hvae", err);
	if (st == VB_OK && cfg->recon == MODEL_RECON_BCE && cfg->bce_eps > 0)
		st = vb_fail(err, VB_ERR_CONFIG,
			     "hvae: bce_eps %g, expected 0: the HVAE's bce "
			     "takes the decoder output as logits, there is "
			     "no probability to clamp", cfg->bce_eps);
	if (st == VB_OK)
		st = params_create(&m->params, err);
	if (st == VB_OK)
		st = arch_encoder_add(&hv->enc, m->params, cfg, err);
	if (st == VB_OK)
		st = arch_decoder_add(&hv->dec, m->params, cfg, err);
	if (st == VB_OK)
		st = params_finalize(m->params, err);
	if (st != VB_OK) {
		model_free(m);
		return st;
	}
	rng_seed(&r, cfg->init_seed, RNG_STREAM_INIT);
	arch_encoder_init(&hv->enc, m->params, &r);
	arch_decoder_init(&hv->dec, m->params, &r);
	*out = m;
	return VB_OK;
}
