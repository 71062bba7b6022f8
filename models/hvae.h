/* hvae: pythae 0.1.2's Hamiltonian VAE (rhvae.md 9.1): a flat metric,
 * leapfrog with constant potential gradients, b = sqrt(beta_zero),
 * sigma = softplus(logvar) and the position step z + eps rho (both
 * [quirk]s, switchable). Shares the MLP networks with the VAE. */
#ifndef VB_MODELS_HVAE_H
#define VB_MODELS_HVAE_H

#include "model.h"

enum vb_status hvae_create(const struct model_config *cfg, struct model **out,
			   struct vb_error *err);

#endif
