/* hvae: pythae 0.1.2's Hamiltonian VAE (rhvae.md 9.1): a flat metric,
 * leapfrog with constant potential gradients, b = sqrt(beta_zero),
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

#endif
