/* hvae: forward and loss of rhvae.md 9.1, and the forward pythae's
 * HVAE.get_nll runs (models/nll.h). The potential's gradient is
 * dU(z) = g + z where only g = d(-sum log p(x|z))/dz is a constant (no
 * create_graph in pythae 0.1.2's _dU_dz); the "+ z" stays on the graph, so
 * the loss reaches the encoder through it too. No second order. */
#include "hvae.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "graph_grad.h"
#include "freeze.h"
#include "guard.h"
#include "nets.h"
#include "ops.h"
#include "vae.h"

struct hvae {
	struct arch_encoder enc;
	struct arch_decoder dec;
	vb_real b; /* sqrt(beta_zero), a real square root here */
	/* pythae's HVAE state_dict entries beside the networks: eps_lf and
	 * beta_zero_sqrt, one-element tensors (not trained unless
	 * learn_eps_lf / learn_beta_zero, which vaebench does not offer) */
	vb_real state_eps_lf, state_beta_zero_sqrt;
	enum hvae_freeze freeze;
	struct freeze_store frozen; /* recorded g constants */
	bool detach_du;  /* test hook: the whole dU a constant */
};

/* Which forward: training/evaluation (HVAE.forward) or get_nll's. */
struct hvae_pass {
	bool softplus_sigma; /* std = softplus(logvar), the forward's quirk */
	bool position_rho;   /* z' = z + eps rho (forward's quirk) or rho' */
	bool temper;         /* apply the tempering factor (get_nll does) */
};

void hvae_set_freeze(struct model *m, enum hvae_freeze mode)
{
	struct hvae *hv = m->impl;
	hv->freeze = mode;
	freeze_reset(&hv->frozen, mode == HVAE_FREEZE_RECORD);
}

/* The constant g of one dU: recorded or replaced (hvae_set_freeze). */
static struct graph_node *frozen(struct hvae *hv, struct graph *g,
				 struct graph_node *n)
{
	if (!n || hv->freeze == HVAE_FREEZE_OFF)
		return n;
	return freeze_apply(&hv->frozen, hv->freeze == HVAE_FREEZE_RECORD, g,
			    n, "hvae");
}

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

/* pythae's _dU_dz: dU(z) = g + z, g = grad_z(sum -log p(x | y(z))) taken
 * without create_graph (a constant, node "g"), "+ z" differentiable
 * (node "dU"). With h_grad_clip the sum is clamped (node h_grad_clip;
 * no gradient where the clamp is active). With cfg->hvae_detach_du the
 * whole sum is a constant: the pre-issue-15 algorithm, kept only so a test
 * can show the difference. */
static struct graph_node *grad_u(struct model *m, struct graph *g,
				 struct graph_node *x, struct graph_node *z,
				 struct graph_node *y, struct vb_error *err)
{
	struct hvae *hv = m->impl;
	struct graph_node *U = op_sum(g, "U", neg_logpx(m, g, y, x));
	struct graph_node *gz = NULL, *du;
	if (!U)
		return NULL;
	if (graph_grad(g, U, NULL, &z, 1, false, &gz, err) != VB_OK)
		return graph_failf(g, err->status, "%s", err->msg);
	gz = gz ? frozen(hv, g, graph_const(g, "g", gz->value)) : NULL;
	du = op_add(g, "dU", gz, z);
	if (m->cfg.h_grad_clip > 0)
		model_count_h_grad(m, du, m->cfg.h_grad_clip);
	if (m->cfg.h_grad_clip > 0)
		du = op_clamp(g, "h_grad_clip", du, -m->cfg.h_grad_clip,
			      m->cfg.h_grad_clip);
	if (du && hv->detach_du)
		du = graph_const(g, "dU.detached", du->value);
	return du;
}

/* pythae's _tempering(k, K) with b = beta_zero_sqrt: s_k = 1 / ((1 - 1/b)
 * (k/K)^2 + 1/b); the factor applied after step k is s_{k-1} / s_k. */
static vb_real temper_factor(vb_real b, size_t k, size_t K)
{
	vb_real inv_b = 1 / b;
	double f1 = (double)(k - 1) / (double)K, f2 = (double)k / (double)K;
	vb_real old = k == 1 ? b
			     : 1 / ((1 - inv_b) * (vb_real)(f1 * f1) + inv_b);
	vb_real s_k = 1 / ((1 - inv_b) * (vb_real)(f2 * f2) + inv_b);
	return old / s_k;
}

/* The forward of pass p on batch x (B, D): fills out (loss, recon, reg,
 * y, z, mu, logvar, z0, rho0_noise (gamma / b), rho); the loss is the
 * training loss of rhvae.md 9.1 whatever the pass. */
static enum vb_status hvae_forward(struct model *m, struct graph *g,
				   struct graph_node *x, struct rng *r,
				   const struct hvae_pass *p,
				   struct model_out *out, struct vb_error *err)
{
	struct hvae *hv = m->impl;
	const struct model_config *cfg = &m->cfg;
	size_t B = tensor_rows(&x->value), d = cfg->n_latent;
	size_t s2[2] = {B, d};
	struct graph_node *mu, *logvar, *sigma, *eps0, *z, *z0, *rho, *y, *u;
	bool old = graph_set_grad_enabled(g, true);

	graph_push_scope(g, "encoder");
	arch_encoder_forward(&hv->enc, g, m->pnodes, x, &mu, &logvar);
	graph_pop_scope(g);
	graph_push_scope(g, "hvae");
	/* model.sigma softplus overrides the quirk with its consistent form:
	 * std = softplus(s) and log q with logvar = 2 log std (vae_std);
	 * with exp the pass decides, and log q keeps the raw s. */
	if (cfg->sigma == MODEL_SIGMA_SOFTPLUS)
		sigma = vae_std(cfg, g, &logvar);
	else
		sigma = p->softplus_sigma
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
	z0 = z;
	rho = u = graph_const(g, "rho0", gt);
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
		/* [quirk] pythae 0.1.2's forward moves z with rho, not rho';
		 * its get_nll uses rho' */
		struct graph_node *v = p->position_rho ? rho : rho_half;
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
		rho = op_sub(g, "rho", rho_half,
			     op_scale(g, "half_eps_dU", du, 0.5 * cfg->eps_lf));
		/* the forward computes the tempering factor and then
		 * overwrites rho = rho''; get_nll applies it */
		if (p->temper) {
			graph_set_phase(g, GUARD_PHASE_CODE(
						   GUARD_PHASE_TEMPERING, k, 0));
			rho = op_scale(g, "rho.tempered", rho,
				       (double)temper_factor(hv->b, k,
							     cfg->n_lf));
		}
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
	out->loss = vae_loss_total(g, rec, rest);
	graph_pop_scope(g);
	vae_out_terms(out, rec, rest, y, z, mu, logvar);
	out->z0 = z0;
	out->rho0_noise = u;
	out->rho = rho;
	graph_set_grad_enabled(g, old);
	return graph_status(g);
}

static enum vb_status hvae_build_loss(struct model *m, struct graph *g,
				      struct graph_node *x, struct rng *r,
				      bool training, struct model_out *out,
				      struct vb_error *err)
{
	struct hvae_pass p = {m->cfg.quirk_hvae_softplus,
			      m->cfg.quirk_hvae_position, false};
	(void)training;
	return hvae_forward(m, g, x, r, &p, out, err);
}

enum vb_status hvae_build_nll_forward(struct model *m, struct graph *g,
				      struct graph_node *x, struct rng *r,
				      struct model_out *out,
				      struct vb_error *err)
{
	/* pythae 0.1.2 HVAE.get_nll: std = exp(0.5 log_var), z moved with
	 * rho', tempering applied */
	struct hvae_pass p = {false, false, true};
	return hvae_forward(m, g, x, r, &p, out, err);
}

vb_real hvae_beta_zero_sqrt(const struct model *m)
{
	const struct hvae *hv = m->impl;
	return hv->b;
}

void hvae_set_detach_du(struct model *m, bool detach)
{
	struct hvae *hv = m->impl;
	hv->detach_du = detach;
}

/* pythae's HVAE state_dict beside the networks: eps_lf (1), beta_zero_sqrt
 * (1). Loading checks them against the configuration (they are settings,
 * not trained); a checkpoint without them (written before issue 15) is
 * accepted. */
static enum vb_status hvae_save_state(const struct model *m,
				      struct checkpoint_writer *w,
				      struct vb_error *err)
{
	const struct hvae *hv = m->impl;
	size_t one[1] = {1};
	enum vb_status st = checkpoint_add(w, "eps_lf", CHECKPOINT_REAL, 1, one,
					   &hv->state_eps_lf, err);
	if (st == VB_OK)
		st = checkpoint_add(w, "beta_zero_sqrt", CHECKPOINT_REAL, 1,
				    one, &hv->state_beta_zero_sqrt, err);
	return st;
}

static enum vb_status hvae_load_state(struct model *m,
				      const struct checkpoint *c,
				      struct vb_error *err)
{
	const struct hvae *hv = m->impl;
	const char *names[2] = {"eps_lf", "beta_zero_sqrt"};
	vb_real want[2] = {hv->state_eps_lf, hv->state_beta_zero_sqrt};
	size_t one[1] = {1};
	for (int i = 0; i < 2; i++) {
		vb_real v;
		enum vb_status st;
		if (!checkpoint_data(c, names[i]))
			continue;
		st = checkpoint_read_real(c, names[i], 1, one, &v, err);
		if (st)
			return st;
		if (v != want[i])
			return vb_fail(err, VB_ERR_DATA,
				       "hvae: checkpoint %s %.9g, the "
				       "configuration gives %.9g",
				       names[i], (double)v, (double)want[i]);
	}
	return VB_OK;
}

static void hvae_free_impl(struct model *m)
{
	struct hvae *hv = m->impl;
	if (hv)
		freeze_free(&hv->frozen);
	free(hv);
}

static const struct model_ops HVAE_OPS = {
	.name = "hvae",
	.build_loss = hvae_build_loss,
	.free_impl = hvae_free_impl,
	.save_state = hvae_save_state,
	.load_state = hvae_load_state,
	.networks = vae_networks,
};

static enum vb_status hvae_setup(const struct model_config *cfg, void *impl,
				 struct arch_encoder **enc,
				 struct arch_decoder **dec, struct vb_error *err)
{
	struct hvae *hv = impl;
	hv->b = (vb_real)sqrt(cfg->beta_zero);
	hv->state_beta_zero_sqrt = hv->b;
	hv->state_eps_lf = (vb_real)cfg->eps_lf;
	*enc = &hv->enc;
	*dec = &hv->dec;
	size_t D = cfg->n_rows * cfg->n_cols, H = cfg->n_hidden;
	size_t d = cfg->n_latent;
	if (D == 0 || d == 0 || H == 0 || !(cfg->beta_zero > 0))
		return vb_fail(err, VB_ERR_CONFIG,
			       "hvae: input %zu, latent %zu, hidden %zu, "
			       "beta_zero %g: expected all > 0", D, d, H,
			       cfg->beta_zero);
	enum vb_status st = vae_check_config(cfg, "hvae", err);
	if (st == VB_OK && cfg->recon == MODEL_RECON_BCE && cfg->bce_eps > 0)
		st = vb_fail(err, VB_ERR_CONFIG,
			     "hvae: bce_eps %g, expected 0: the HVAE's bce "
			     "takes the decoder output as logits, there is "
			     "no probability to clamp", cfg->bce_eps);
	return st;
}

enum vb_status hvae_create(const struct model_config *cfg, struct model **out,
			   struct vb_error *err)
{
	return vae_family_create(&HVAE_OPS, cfg, sizeof(struct hvae),
				 hvae_setup, out, err);
}
