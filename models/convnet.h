/* convnet: pythae's ConvNet MNIST benchmark networks with BatchNorm
 * (pythae src/pythae/models/nn/benchmarks/mnist/convnets.py,
 * Encoder_Conv_VAE_MNIST and Decoder_Conv_AE_MNIST), registered under
 * pythae's state_dict names, initialised as PyTorch does (or by the
 * configured scheme) and built on the tape from ops; BatchNorm running
 * statistics live in the model's buffer store (models/model.h). */
#ifndef VB_MODELS_CONVNET_H
#define VB_MODELS_CONVNET_H

#include <stdbool.h>
#include <stddef.h>

#include "graph.h"
#include "nets.h"
#include "params.h"
#include "rng.h"
#include "vb.h"

#define CONVNET_IMAGE_SIDE 28

/* Encoder: layers.i = Sequential(Conv2d(k4, s2, p1), BatchNorm2d, ReLU)
 * for 1->128->256->512->1024 channels, 28 -> 14 -> 7 -> 3 -> 1 pixels;
 * then embedding and log_var: Linear(1024, d). */
struct convnet_encoder {
	size_t n_latent;
	struct nets_conv conv[4];
	struct nets_bn bn[4];
	struct nets_linear mu, logvar;
	struct nets_options opt;
};

/* Decoder: layers.0 = Linear(d, 1024 * 4 * 4) (no activation; reshaped
 * to (1024, 4, 4)), layers.1 = Sequential(ConvTranspose2d(1024, 512, k3,
 * s2, p1), BatchNorm2d, ReLU) 4 -> 7, layers.2 = Sequential(
 * ConvTranspose2d(512, 256, k3, s2, p1, op1), BatchNorm2d, ReLU) 7 -> 14,
 * layers.3 = Sequential(ConvTranspose2d(256, 1, k3, s2, p1, op1),
 * Sigmoid) 14 -> 28 (no BatchNorm on the output layer, as pythae). */
struct convnet_decoder {
	size_t n_latent;
	struct nets_linear fc;
	struct nets_conv up[3];
	struct nets_bn bn[2];
	struct nets_options opt;
};

/* Registers the encoder's tensors in state_dict order under prefix:
 * <prefix>.layers.{0..3}.0.{weight,bias} (conv), .1.{weight,bias} (BN;
 * buffers running_mean, running_var, num_batches_tracked in o->buffers
 * when tracked), embedding, log_var. VB_ERR_CONFIG for latent 0 or no
 * buffer store. */
enum vb_status convnet_encoder_add(struct convnet_encoder *e,
				   struct params *p, const char *prefix,
				   size_t n_latent,
				   const struct nets_options *o,
				   struct vb_error *err);
/* Weights and biases in registration order by o->init (pytorch by
 * default: fan_in = in k k for Conv2d, out k k for ConvTranspose2d);
 * BatchNorm weight 1, bias 0. */
void convnet_encoder_init(const struct convnet_encoder *e, struct params *p,
			  struct rng *r);
/* x (B, 784) or (B, 1, 28, 28) -> mu, logvar (B, d). Nodes: conv1..4,
 * conv1..4.bn, conv1..4.relu, flatten, mu, logvar. */
void convnet_encoder_forward(const struct convnet_encoder *e,
			     struct graph *g, struct graph_node **pnodes,
			     struct graph_node *x, struct graph_node **mu,
			     struct graph_node **logvar);

enum vb_status convnet_decoder_add(struct convnet_decoder *d,
				   struct params *p, const char *prefix,
				   size_t n_latent,
				   const struct nets_options *o,
				   struct vb_error *err);
void convnet_decoder_init(const struct convnet_decoder *d, struct params *p,
			  struct rng *r);
/* z (B, d) -> y (B, 784) in (0, 1). Nodes: fc, fc.reshape, deconv1..3,
 * deconv1..2.bn, deconv1..2.relu, out (sigmoid), out.flat. */
struct graph_node *convnet_decoder_forward(const struct convnet_decoder *d,
					   struct graph *g,
					   struct graph_node **pnodes,
					   struct graph_node *z);

#endif
