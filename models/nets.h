/* nets: layers that models assemble into networks. A layer registers its
 * parameters under a state_dict prefix, initialises them as PyTorch does
 * (rhvae.md 2.5) and builds its forward on the tape from the step's PARAM
 * nodes (model->pnodes). */
#ifndef VB_MODELS_NETS_H
#define VB_MODELS_NETS_H

#include <stddef.h>

#include "graph.h"
#include "params.h"
#include "rng.h"
#include "vb.h"

struct nets_linear {
	size_t n_in, n_out;
	size_t w, b; /* params entry indices: weight (out, in), bias (out) */
};

/* Registers "<prefix>.weight" (out, in) and "<prefix>.bias" (out). */
enum vb_status nets_linear_add(struct nets_linear *l, struct params *p,
			       const char *prefix, size_t n_in, size_t n_out,
			       struct vb_error *err);

/* PyTorch nn.Linear default: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)),
 * weight drawn first. */
void nets_linear_init(const struct nets_linear *l, struct params *p,
		      struct rng *r);

/* y = x W^T + b as node "name" (scoped by the caller). */
struct graph_node *nets_linear_forward(const struct nets_linear *l,
				       struct graph *g,
				       struct graph_node **pnodes,
				       const char *name,
				       struct graph_node *x);

/* pythae's default MLP encoder (rhvae.md 2.1): h = relu(fc1 x),
 * mu = embedding h, logvar = log_var h; names encoder.layers.0.0,
 * encoder.embedding, encoder.log_var under the given prefix. */
struct nets_mlp_encoder {
	struct nets_linear fc1, mu, logvar;
};
enum vb_status nets_mlp_encoder_add(struct nets_mlp_encoder *e,
				    struct params *p, const char *prefix,
				    size_t n_input, size_t n_hidden,
				    size_t n_latent, struct vb_error *err);
void nets_mlp_encoder_init(const struct nets_mlp_encoder *e, struct params *p,
			   struct rng *r);
/* x (B, D) -> mu, logvar (B, d); nodes fc1, fc1.relu, mu, logvar. */
void nets_mlp_encoder_forward(const struct nets_mlp_encoder *e,
			      struct graph *g, struct graph_node **pnodes,
			      struct graph_node *x, struct graph_node **mu,
			      struct graph_node **logvar);

/* pythae's default MLP decoder (rhvae.md 2.2): y = sigmoid(out relu(fc1
 * z)); names decoder.layers.0.0 and decoder.layers.1.0. */
struct nets_mlp_decoder {
	struct nets_linear fc1, out;
};
enum vb_status nets_mlp_decoder_add(struct nets_mlp_decoder *d,
				    struct params *p, const char *prefix,
				    size_t n_latent, size_t n_hidden,
				    size_t n_output, struct vb_error *err);
void nets_mlp_decoder_init(const struct nets_mlp_decoder *d, struct params *p,
			   struct rng *r);
/* z (B, d) -> y (B, D) in (0, 1); nodes fc1, fc1.relu, out, out.sigmoid. */
struct graph_node *nets_mlp_decoder_forward(const struct nets_mlp_decoder *d,
					    struct graph *g,
					    struct graph_node **pnodes,
					    struct graph_node *z);

#endif
