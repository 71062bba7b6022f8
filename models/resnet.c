/* resnet: registration, PyTorch init and tape forward of the tutorial's
 * ResNet encoder and decoder (rhvae.md 2.4, 2.5). Layer sizes are pythae's
 * constants; only the latent dimension varies. */
#include "resnet.h"

#include <math.h>
#include <stdio.h>

#include "ops.h"

/* pythae's widths: 64 and 128 feature channels, ResBlock(128 -> 32),
 * a 128 x 4 x 4 bottleneck. */
#define RN_C1 64
#define RN_C2 128
#define RN_CRES 32
#define RN_SIDE_MIN 4
#define RN_FLAT (RN_C2 * RN_SIDE_MIN * RN_SIDE_MIN)

/* out = "<prefix>.<suffix>", refused when longer than a params name. */
static enum vb_status join(char *out, const char *prefix, const char *suffix,
			   struct vb_error *err)
{
	int k = snprintf(out, PARAMS_NAME_LEN, "%s.%s", prefix, suffix);
	if (k < 0 || k >= PARAMS_NAME_LEN)
		return vb_fail(err, VB_ERR_CONFIG, "resnet: parameter name "
			       "%s.%s longer than %d characters", prefix,
			       suffix, PARAMS_NAME_LEN - 1);
	return VB_OK;
}

/* U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight then bias; fan_in reads
 * dimension 1 of the weight, which is out for ConvTranspose2d. */
static void conv_init(const struct nets_conv *c, struct params *p,
		      struct rng *r)
{
	size_t fan_in = (c->transposed ? c->n_out : c->n_in) * c->k * c->k;
	double bound = 1.0 / sqrt((double)fan_in);
	params_init_uniform(p, c->w, bound, r);
	params_init_uniform(p, c->b, bound, r);
}

/* The convolution c at "<prefix>.<at>" (nets_conv_add's shape). */
static enum vb_status conv_at(struct nets_conv *c, struct params *p,
			      const char *prefix, const char *at,
			      bool transposed, size_t n_in, size_t n_out,
			      size_t k, int stride, int pad, int out_pad,
			      struct vb_error *err)
{
	char name[PARAMS_NAME_LEN];
	enum vb_status st = join(name, prefix, at, err);
	if (st == VB_OK)
		st = nets_conv_add(c, p, name, transposed, n_in, n_out, k,
				   stride, pad, out_pad, err);
	return st;
}

/* The linear layer l at "<prefix>.<at>". */
static enum vb_status linear_at(struct nets_linear *l, struct params *p,
				const char *prefix, const char *at,
				size_t n_in, size_t n_out,
				struct vb_error *err)
{
	char name[PARAMS_NAME_LEN];
	enum vb_status st = join(name, prefix, at, err);
	if (st == VB_OK)
		st = nets_linear_add(l, p, name, n_in, n_out, err);
	return st;
}

/* The ResBlock at "<prefix>.<at>": "conv_block.1" and ".3", as pythae's
 * nn.Sequential indices (0 and 2 are the ReLUs). */
static enum vb_status block_at(struct resnet_block *b, struct params *p,
			       const char *prefix, const char *at,
			       struct vb_error *err)
{
	char name[PARAMS_NAME_LEN];
	enum vb_status st = join(name, prefix, at, err);
	if (st == VB_OK)
		st = conv_at(&b->conv3x3, p, name, "conv_block.1", false,
			     RN_C2, RN_CRES, 3, 1, 1, 0, err);
	if (st == VB_OK)
		st = conv_at(&b->conv1x1, p, name, "conv_block.3", false,
			     RN_CRES, RN_C2, 1, 1, 0, 0, err);
	return st;
}

static void block_init(const struct resnet_block *b, struct params *p,
		       struct rng *r)
{
	conv_init(&b->conv3x3, p, r);
	conv_init(&b->conv1x1, p, r);
}

/* x + conv1x1(relu(conv3x3(relu(x)))): no relu after the sum. */
static struct graph_node *block_forward(const struct resnet_block *b,
					struct graph *g,
					struct graph_node **pnodes,
					const char *scope,
					struct graph_node *x)
{
	struct graph_node *h;
	graph_push_scope(g, scope);
	h = op_relu(g, "relu_in", x);
	h = nets_conv_forward(&b->conv3x3, g, pnodes, "conv3x3", h);
	h = op_relu(g, "conv3x3.relu", h);
	h = nets_conv_forward(&b->conv1x1, g, pnodes, "conv1x1", h);
	h = op_add(g, "add", x, h);
	graph_pop_scope(g);
	return h;
}

/* ------------------------------------------------------------------ */

/* The encoder's convolutions layers.0.0 .. layers.2.0: stride 2, pad 1. */
static const struct {
	const char *at;
	size_t n_in, n_out, k;
} ENC_CONV[3] = {{"layers.0.0", 1, RN_C1, 4},
		 {"layers.1.0", RN_C1, RN_C2, 4},
		 {"layers.2.0", RN_C2, RN_C2, 3}};

enum vb_status resnet_encoder_add(struct resnet_encoder *e, struct params *p,
				  const char *prefix, size_t n_latent,
				  struct vb_error *err)
{
	enum vb_status st = VB_OK;
	if (n_latent == 0)
		return vb_fail(err, VB_ERR_CONFIG, "resnet: encoder %s: "
			       "latent dimension 0, expected >= 1", prefix);
	e->n_latent = n_latent;
	for (int i = 0; st == VB_OK && i < 3; i++)
		st = conv_at(&e->conv[i], p, prefix, ENC_CONV[i].at, false,
			     ENC_CONV[i].n_in, ENC_CONV[i].n_out, ENC_CONV[i].k,
			     2, 1, 0, err);
	for (int i = 0; st == VB_OK && i < 2; i++)
		st = block_at(&e->res[i], p, prefix,
			      i ? "layers.3.1" : "layers.3.0", err);
	if (st == VB_OK)
		st = linear_at(&e->mu, p, prefix, "embedding", RN_FLAT,
			       n_latent, err);
	if (st == VB_OK)
		st = linear_at(&e->logvar, p, prefix, "log_var", RN_FLAT,
			       n_latent, err);
	return st;
}

void resnet_encoder_init(const struct resnet_encoder *e, struct params *p,
			 struct rng *r)
{
	for (int i = 0; i < 3; i++)
		conv_init(&e->conv[i], p, r);
	for (int i = 0; i < 2; i++)
		block_init(&e->res[i], p, r);
	nets_linear_init(&e->mu, p, r);
	nets_linear_init(&e->logvar, p, r);
}

void resnet_encoder_forward(const struct resnet_encoder *e, struct graph *g,
			    struct graph_node **pnodes, struct graph_node *x,
			    struct graph_node **mu,
			    struct graph_node **logvar)
{
	struct graph_node *h;
	size_t B;
	*mu = NULL;
	*logvar = NULL;
	if (!x)
		return;
	B = tensor_rows(&x->value);
	if (x->value.ndim < 2 || tensor_cols(&x->value) != RESNET_IMAGE_SIZE ||
	    (x->value.ndim == 4 && x->value.shape[1] != 1)) {
		char s[64];
		graph_failf(g, VB_ERR_SHAPE, "resnet: encoder input %s, "
			    "expected (B, %d) or (B, 1, %d, %d)",
			    tensor_shape_str(&x->value, s, sizeof s),
			    RESNET_IMAGE_SIZE, RESNET_IMAGE_SIDE,
			    RESNET_IMAGE_SIDE);
		return;
	}
	h = x->value.ndim == 4
		    ? x
		    : op_reshape(g, "image", x, 4,
				 (size_t[4]){B, 1, RESNET_IMAGE_SIDE,
					     RESNET_IMAGE_SIDE});
	h = nets_conv_forward(&e->conv[0], g, pnodes, "conv1", h);
	h = nets_conv_forward(&e->conv[1], g, pnodes, "conv2", h);
	h = nets_conv_forward(&e->conv[2], g, pnodes, "conv3", h);
	h = block_forward(&e->res[0], g, pnodes, "res1", h);
	h = block_forward(&e->res[1], g, pnodes, "res2", h);
	h = op_reshape(g, "flatten", h, 2, (size_t[2]){B, RN_FLAT});
	*mu = nets_linear_forward(&e->mu, g, pnodes, "mu", h);
	*logvar = nets_linear_forward(&e->logvar, g, pnodes, "logvar", h);
}

/* ------------------------------------------------------------------ */

enum vb_status resnet_decoder_add(struct resnet_decoder *d, struct params *p,
				  const char *prefix, size_t n_latent,
				  struct vb_error *err)
{
	enum vb_status st;
	if (n_latent == 0)
		return vb_fail(err, VB_ERR_CONFIG, "resnet: decoder %s: "
			       "latent dimension 0, expected >= 1", prefix);
	d->n_latent = n_latent;
	st = linear_at(&d->fc, p, prefix, "layers.0", n_latent, RN_FLAT, err);
	if (st == VB_OK)
		st = conv_at(&d->up[0], p, prefix, "layers.1", true, RN_C2,
			     RN_C2, 3, 2, 1, 0, err);
	for (int i = 0; st == VB_OK && i < 2; i++)
		st = block_at(&d->res[i], p, prefix,
			      i ? "layers.2.1" : "layers.2.0", err);
	if (st == VB_OK)
		st = conv_at(&d->up[1], p, prefix, "layers.3.0", true, RN_C2,
			     RN_C1, 3, 2, 1, 1, err);
	if (st == VB_OK)
		st = conv_at(&d->up[2], p, prefix, "layers.4.0", true, RN_C1, 1,
			     3, 2, 1, 1, err);
	return st;
}

void resnet_decoder_init(const struct resnet_decoder *d, struct params *p,
			 struct rng *r)
{
	nets_linear_init(&d->fc, p, r);
	conv_init(&d->up[0], p, r);
	for (int i = 0; i < 2; i++)
		block_init(&d->res[i], p, r);
	conv_init(&d->up[1], p, r);
	conv_init(&d->up[2], p, r);
}

struct graph_node *resnet_decoder_forward(const struct resnet_decoder *d,
					  struct graph *g,
					  struct graph_node **pnodes,
					  struct graph_node *z)
{
	struct graph_node *h;
	size_t B;
	if (!z)
		return NULL;
	B = tensor_rows(&z->value);
	if (z->value.ndim != 2 || z->value.shape[1] != d->n_latent) {
		char s[64];
		return graph_failf(g, VB_ERR_SHAPE, "resnet: decoder input %s, "
				   "expected (B, %zu)",
				   tensor_shape_str(&z->value, s, sizeof s),
				   d->n_latent);
	}
	h = nets_linear_forward(&d->fc, g, pnodes, "fc", z);
	h = op_reshape(g, "fc.reshape", h, 4,
		       (size_t[4]){B, RN_C2, RN_SIDE_MIN, RN_SIDE_MIN});
	h = nets_conv_forward(&d->up[0], g, pnodes, "deconv1", h);
	h = block_forward(&d->res[0], g, pnodes, "res1", h);
	h = block_forward(&d->res[1], g, pnodes, "res2", h);
	h = op_relu(g, "res.relu", h);
	h = op_relu(g, "deconv2.relu",
		    nets_conv_forward(&d->up[1], g, pnodes, "deconv2", h));
	h = op_sigmoid(g, "out",
		       nets_conv_forward(&d->up[2], g, pnodes, "deconv3", h));
	return op_reshape(g, "out.flat", h, 2,
			  (size_t[2]){B, RESNET_IMAGE_SIZE});
}
