/* arch: the encoder and decoder a model config's arch selects, so that
 * every model (vae, rhvae, hvae) runs on pythae's default MLPs or the
 * tutorial's ResNets with one code path. */
#ifndef VB_MODELS_ARCH_H
#define VB_MODELS_ARCH_H

#include "convnet.h"
#include "graph.h"
#include "model.h"
#include "nets.h"
#include "params.h"
#include "resnet.h"
#include "rng.h"

/* The encoder and decoder a model config's arch selects: pythae's MLPs
 * (with cfg's activation, init and optional BatchNorm1d), the tutorial's
 * ResNets (rhvae.md 2.1-2.4) or pythae's ConvNets with BatchNorm2d
 * (models/convnet.h; needs cfg->buffers, i.e. model_create), under the
 * state_dict prefixes "encoder" and "decoder". Forward scopes are the
 * caller's; training or evaluation mode comes from cfg->buffers. */
struct arch_encoder {
	enum model_arch arch;
	struct nets_mlp_encoder mlp;
	struct resnet_encoder res;
	struct convnet_encoder conv;
	bool logvar_clamp;             /* mitigation: clamp logvar to */
	double logvar_min, logvar_max; /* [logvar_min, logvar_max]; under
					  sigma softplus it clamps the head
					  s before the softplus (vae_std) */
};
struct arch_decoder {
	enum model_arch arch;
	struct nets_mlp_decoder mlp;
	struct resnet_decoder res;
	struct convnet_decoder conv;
};
enum vb_status arch_encoder_add(struct arch_encoder *e, struct params *p,
				const struct model_config *cfg,
				struct vb_error *err);
enum vb_status arch_decoder_add(struct arch_decoder *d, struct params *p,
				const struct model_config *cfg,
				struct vb_error *err);
void arch_encoder_init(const struct arch_encoder *e, struct params *p,
		       struct rng *r);
void arch_decoder_init(const struct arch_decoder *d, struct params *p,
		       struct rng *r);
/* x (B, D) -> mu, logvar (B, d) */
void arch_encoder_forward(const struct arch_encoder *e, struct graph *g,
			  struct graph_node **pnodes, struct graph_node *x,
			  struct graph_node **mu, struct graph_node **logvar);
/* z (B, d) -> y (B, D) */
struct graph_node *arch_decoder_forward(const struct arch_decoder *d,
					struct graph *g,
					struct graph_node **pnodes,
					struct graph_node *z);

/* The decoder under the scope "decoder" (node names decoder.*), as every
 * model calls it. */
struct graph_node *arch_decode(const struct arch_decoder *d, struct graph *g,
			       struct graph_node **pnodes,
			       struct graph_node *z);

#endif
