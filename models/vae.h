/* vae: pythae's plain VAE (rhvae.md section 3) with the default MLP
 * encoder and decoder (rhvae.md 2.1, 2.2). Parameter names are pythae's
 * state_dict names (see README, "Checkpoints"). */
#ifndef VB_MODELS_VAE_H
#define VB_MODELS_VAE_H

#include "model.h"

struct arch_encoder;
struct arch_decoder;

/* The VAE's forward and per-sample terms (rhvae.md section 3) on the given
 * networks, for models that add to the VAE's loss: fills out->mu, logvar,
 * z, y, recon (B) and reg (the KL, B), and leaves out->loss NULL for the
 * caller. Nodes: encoder.*, vae.std/eps/z, decoder.*, loss.recon,
 * loss.kl. m->pnodes must hold this step's parameter nodes. */
void vae_forward_terms(const struct model *m, struct graph *g,
		       const struct arch_encoder *enc,
		       const struct arch_decoder *dec, struct graph_node *x,
		       struct rng *r, struct model_out *out);

enum vb_status vae_create(const struct model_config *cfg, struct model **out,
			  struct vb_error *err);

#endif
