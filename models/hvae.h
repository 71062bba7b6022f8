/* hvae: pythae 0.1.2's Hamiltonian VAE (rhvae.md 9.1): a flat metric,
 * leapfrog with potential gradient dU = g + z (g a constant, "+ z" on the
 * graph), b = sqrt(beta_zero),
 * sigma = softplus(logvar) and the position step z + eps rho (both
 * [quirk]s, switchable). Shares the MLP networks with the VAE. */
#ifndef VB_MODELS_HVAE_H
#define VB_MODELS_HVAE_H

#include "model.h"

/* cfg->sigma softplus replaces the softplus quirk by its consistent form:
 * std = softplus(s) and log q with logvar = 2 log std (vae_std; nodes
 * hvae.std, hvae.logvar); with exp, quirk_hvae_softplus decides as before.
 * bce_eps > 0 with bce is refused (VB_ERR_CONFIG): that bce takes the
 * decoder output as logits. */
enum vb_status hvae_create(const struct model_config *cfg, struct model **out,
			   struct vb_error *err);

/* The forward pythae 0.1.2's HVAE.get_nll runs on x (B, D), drawing eps0
 * then gamma from r: std = exp(0.5 logvar) (or vae_std's softplus under
 * cfg->sigma softplus), leapfrog z' = z + eps rho' (not rho), tempering
 * factor applied after every step. Fills out as build_loss does plus
 * z0 (B, d), rho0_noise = gamma / b (B, d) and rho = rho_K (B, d); out->loss
 * is the training-loss formula on these values (not used by get_nll).
 * m->pnodes must hold this step's parameter nodes (models/nll.c). */
enum vb_status hvae_build_nll_forward(struct model *m, struct graph *g,
				      struct graph_node *x, struct rng *r,
				      struct model_out *out,
				      struct vb_error *err);

/* b = sqrt(beta_zero) as the model holds it (pythae's beta_zero_sqrt). */
vb_real hvae_beta_zero_sqrt(const struct model *m);

/* For gradient checks of the whole loss with the constants g of every
 * dU held fixed: RECORD stores each g as the next forward computes it,
 * REPLAY makes later forwards use the stored values, OFF is normal. */
enum hvae_freeze { HVAE_FREEZE_OFF, HVAE_FREEZE_RECORD, HVAE_FREEZE_REPLAY };
void hvae_set_freeze(struct model *m, enum hvae_freeze mode);

/* Test hook: true makes the whole dU = g + z a constant, the algorithm
 * vaebench ran before issue 15 (encoder gradients ~3e-3 relative off
 * pythae's, rhvae.md 9.1). Never set by the bench. */
void hvae_set_detach_du(struct model *m, bool detach);

#endif
