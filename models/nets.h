/* nets: layers that models assemble into networks. A layer registers its
 * parameters under a state_dict prefix, initialises them as PyTorch does
 * (rhvae.md 2.5) and builds its forward on the tape from the step's PARAM
 * nodes (model->pnodes). */
#ifndef VB_MODELS_NETS_H
#define VB_MODELS_NETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graph.h"
#include "model.h"
#include "ops.h"
#include "params.h"
#include "rng.h"
#include "vb.h"

/* Layer options from a model_config: hidden activation, initialisation,
 * BatchNorm settings and the model's buffer store. */
struct nets_options {
	enum model_activation activation;
	double leaky_slope;
	enum model_init init;
	double init_scale;
	bool bias_fill;
	double bias_value;
	bool batchnorm;              /* MLP: BatchNorm1d after hidden layers */
	double bn_eps, bn_momentum;
	bool bn_track, bn_eval_batch;
	struct model_buffers *buffers; /* NULL: no BatchNorm possible */
};

/* Options of c (pythae's when c holds model_config_defaults). */
void nets_options_from(struct nets_options *o, const struct model_config *c);

/* The hidden activation o->activation of x as node "<name>.<act>":
 * relu, sigmoid, softplus are single ops; tanh = 2 sigmoid(2x) - 1 and
 * leaky_relu = relu(x) - slope relu(-x) are built from ops. */
struct graph_node *nets_activation(struct graph *g, const char *name,
				   struct graph_node *x,
				   const struct nets_options *o);

/* Initialises weight entry w (fan_in, fan_out as torch.nn.init computes
 * them) and bias entry b (SIZE_MAX: none) by o->init, weight drawn first:
 * pytorch U(+-1/sqrt(fan_in)) for both; xavier_uniform U(+-sqrt(6/(in +
 * out))); xavier_normal N(0, 2/(in + out)); kaiming_uniform
 * U(+-sqrt(6/in)); kaiming_normal N(0, 2/in); scaled: pytorch's weight
 * times init_scale. Biases keep pytorch's U(+-1/sqrt(fan_in)) unless
 * o->bias_fill, then bias_value (no draw). */
void nets_init_layer(struct params *p, size_t w, size_t b, size_t fan_in,
		     size_t fan_out, const struct nets_options *o,
		     struct rng *r);

/* BatchNorm1d/2d: parameters "<prefix>.weight", "<prefix>.bias" (C) and,
 * with track_running_stats, buffers "<prefix>.running_mean" (zeros),
 * "<prefix>.running_var" (ones), "<prefix>.num_batches_tracked". */
struct nets_bn {
	size_t n_ch;
	size_t w, b;
	vb_real *rmean, *rvar;  /* (C) buffers; NULL when not tracked */
	int64_t *n_tracked;
	const struct model_buffers *buf; /* for the training flag */
	double eps, momentum;
	bool eval_batch;
};
/* VB_ERR_CONFIG when o->buffers is NULL (model not made by
 * model_create). */
enum vb_status nets_bn_add(struct nets_bn *bn, struct params *p,
			   const char *prefix, size_t n_ch,
			   const struct nets_options *o, struct vb_error *err);
/* weight 1, bias 0 (PyTorch); draws nothing. */
void nets_bn_init(const struct nets_bn *bn, struct params *p);
/* Training forward (buf->training): batch statistics, running update when
 * tracked. Evaluation: running statistics when tracked and not
 * eval_batch, batch statistics otherwise (no update). */
struct graph_node *nets_bn_forward(const struct nets_bn *bn, struct graph *g,
				   struct graph_node **pnodes,
				   const char *name, struct graph_node *x);

/* One convolution with bias: Conv2d, weight (out, in, k, k), or
 * ConvTranspose2d, weight (in, out, k, k); bias (out). */
struct nets_conv {
	size_t n_in, n_out, k;
	int stride, pad, out_pad;
	bool transposed;
	size_t w, b; /* params entry indices */
};

/* Sets c's shape and registers "<prefix>.weight" and "<prefix>.bias". */
enum vb_status nets_conv_add(struct nets_conv *c, struct params *p,
			     const char *prefix, bool transposed, size_t n_in,
			     size_t n_out, size_t k, int stride, int pad,
			     int out_pad, struct vb_error *err);

/* c on x (B, n_in, H, W) with its bias, node name: op_conv2d, or
 * op_conv_transpose2d when transposed. */
struct graph_node *nets_conv_forward(const struct nets_conv *c,
				     struct graph *g,
				     struct graph_node **pnodes,
				     const char *name, struct graph_node *x);

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
	struct nets_options opt;
	struct nets_bn bn1; /* "layers.0.1" when opt.batchnorm */
};
enum vb_status nets_mlp_encoder_add(struct nets_mlp_encoder *e,
				    struct params *p, const char *prefix,
				    size_t n_input, size_t n_hidden,
				    size_t n_latent, struct vb_error *err);
/* As nets_mlp_encoder_add with o's activation, init and BatchNorm1d
 * after fc1 (as nn.Sequential(Linear, BatchNorm1d, act): layers.0.1). */
enum vb_status nets_mlp_encoder_add_opt(struct nets_mlp_encoder *e,
					struct params *p, const char *prefix,
					size_t n_input, size_t n_hidden,
					size_t n_latent,
					const struct nets_options *o,
					struct vb_error *err);
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
	struct nets_options opt;
	struct nets_bn bn1; /* "layers.0.1" when opt.batchnorm */
};
enum vb_status nets_mlp_decoder_add(struct nets_mlp_decoder *d,
				    struct params *p, const char *prefix,
				    size_t n_latent, size_t n_hidden,
				    size_t n_output, struct vb_error *err);
enum vb_status nets_mlp_decoder_add_opt(struct nets_mlp_decoder *d,
					struct params *p, const char *prefix,
					size_t n_latent, size_t n_hidden,
					size_t n_output,
					const struct nets_options *o,
					struct vb_error *err);
void nets_mlp_decoder_init(const struct nets_mlp_decoder *d, struct params *p,
			   struct rng *r);
/* z (B, d) -> y (B, D) in (0, 1); nodes fc1, fc1.relu, out, out.sigmoid. */
struct graph_node *nets_mlp_decoder_forward(const struct nets_mlp_decoder *d,
					    struct graph *g,
					    struct graph_node **pnodes,
					    struct graph_node *z);

#endif
