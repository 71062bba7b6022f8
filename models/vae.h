/* vae: pythae's plain VAE (rhvae.md section 3) with the default MLP
 * encoder and decoder (rhvae.md 2.1, 2.2). Parameter names are pythae's
 * state_dict names (see README, "Checkpoints"). */
#ifndef VB_MODELS_VAE_H
#define VB_MODELS_VAE_H

#include "model.h"

enum vb_status vae_create(const struct model_config *cfg, struct model **out,
			  struct vb_error *err);

#endif
