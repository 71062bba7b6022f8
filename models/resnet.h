/* resnet: the ResNet encoder and decoder of pythae's MNIST benchmarks that
 * the RHVAE and VAE tutorials pass in (rhvae.md 2.4; pythae
 * Encoder_ResNet_VAE_MNIST, Decoder_ResNet_AE_MNIST, ResBlock). Parameters
 * are registered under pythae's state_dict names, initialised as PyTorch
 * does (rhvae.md 2.5), and the forward is built on the tape from ops. The
 * model (loss, reparameterisation) is the caller's. */
#ifndef VB_MODELS_RESNET_H
#define VB_MODELS_RESNET_H

#include <stdbool.h>
#include <stddef.h>

#include "graph.h"
#include "nets.h"
#include "params.h"
#include "rng.h"
#include "vb.h"

/* Image the networks are built for: 1 x 28 x 28, D = 784. */
#define RESNET_IMAGE_SIDE 28
#define RESNET_IMAGE_SIZE (RESNET_IMAGE_SIDE * RESNET_IMAGE_SIDE)
/* Parameter counts for latent dimension d (rhvae.md 2.4: d = 16 gives
 * 427,680 and 339,009). */
#define RESNET_ENCODER_PARAMS(d) (362112 + 4098 * (size_t)(d))
#define RESNET_DECODER_PARAMS(d) (306241 + 2048 * (size_t)(d))

/* ResBlock(128 -> 32): x + conv1x1(relu(conv3x3(relu(x)))). */
struct resnet_block {
	struct nets_conv conv3x3; /* 128 -> 32, k3 s1 p1 */
	struct nets_conv conv1x1; /* 32 -> 128, k1 s1 p0 */
};

struct resnet_encoder {
	size_t n_latent;
	struct nets_conv conv[3];  /* 1->64 k4s2p1, 64->128 k4s2p1,
					128->128 k3s2p1 */
	struct resnet_block res[2];
	struct nets_linear mu;       /* "embedding": 2048 -> d */
	struct nets_linear logvar;   /* "log_var": 2048 -> d */
};

struct resnet_decoder {
	size_t n_latent;
	struct nets_linear fc;       /* d -> 2048 */
	struct nets_conv up[3];    /* ConvTranspose 128->128 k3s2p1,
					128->64 k3s2p1op1, 64->1 k3s2p1op1 */
	struct resnet_block res[2];
};

/* Registers the encoder's 18 tensors in state_dict order under prefix
 * ("encoder"): <prefix>.layers.0.0.{weight,bias} (conv1),
 * layers.1.0 (conv2), layers.2.0 (conv3),
 * layers.3.{0,1}.conv_block.{1,3} (the blocks' 3x3 and 1x1 convolutions),
 * embedding, log_var. VB_ERR_CONFIG for n_latent 0; params_add errors
 * otherwise. */
enum vb_status resnet_encoder_add(struct resnet_encoder *e, struct params *p,
				  const char *prefix, size_t n_latent,
				  struct vb_error *err);

/* PyTorch default init in registration order, weight then bias of each
 * layer: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in * k * k (conv)
 * or in_features (linear). p must be finalized. */
void resnet_encoder_init(const struct resnet_encoder *e, struct params *p,
			 struct rng *r);

/* mu, logvar (B, d) of x (B, 784) or (B, 1, 28, 28), built on g from this
 * step's PARAM nodes (pnodes[i] for params entry i). Nodes are named under
 * the caller's scope: "conv1".."conv3", "res1.relu_in", "res1.conv3x3",
 * "res1.conv3x3.relu", "res1.conv1x1", "res1.add", "res2.*", "flatten",
 * "mu", "logvar". A wrong input shape sets the graph's sticky error
 * (VB_ERR_SHAPE) and leaves *mu and *logvar NULL. */
void resnet_encoder_forward(const struct resnet_encoder *e, struct graph *g,
			    struct graph_node **pnodes, struct graph_node *x,
			    struct graph_node **mu,
			    struct graph_node **logvar);

/* Registers the decoder's 16 tensors in state_dict order under prefix
 * ("decoder"): <prefix>.layers.0.{weight,bias} (Linear d -> 2048),
 * layers.1 (ConvTranspose 128->128), layers.2.{0,1}.conv_block.{1,3},
 * layers.3.0 (ConvTranspose 128->64), layers.4.0 (ConvTranspose 64->1). */
enum vb_status resnet_decoder_add(struct resnet_decoder *d, struct params *p,
				  const char *prefix, size_t n_latent,
				  struct vb_error *err);

/* As resnet_encoder_init; for ConvTranspose2d fan_in = out * k * k
 * (PyTorch reads dimension 1 of the (in, out, k, k) weight). */
void resnet_decoder_init(const struct resnet_decoder *d, struct params *p,
			 struct rng *r);

/* y (B, 784) = the sigmoid output of the decoder for z (B, d), flattened
 * in (row, column) order so that losses see (B, D). Node names: "fc",
 * "fc.reshape", "deconv1", "res1.*", "res2.*", "res.relu", "deconv2",
 * "deconv2.relu", "deconv3", "out" (sigmoid), "out.flat". NULL (sticky
 * error VB_ERR_SHAPE) when z is not (B, d). */
struct graph_node *resnet_decoder_forward(const struct resnet_decoder *d,
					  struct graph *g,
					  struct graph_node **pnodes,
					  struct graph_node *z);

#endif
