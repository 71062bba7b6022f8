/* convnet: registration, initialisation and forward of pythae's ConvNet
 * MNIST encoder and decoder (BatchNorm2d after every hidden convolution). */
#include "convnet.h"

#include <stdio.h>

#include "ops.h"

static void conv_init(const struct nets_conv *c, struct params *p,
		      const struct nets_options *o, struct rng *r)
{
	/* torch.nn.init's fans read weight dims 1 (fan_in) and 0 */
	size_t kk = c->k * c->k;
	size_t fin = (c->transposed ? c->n_out : c->n_in) * kk;
	size_t fout = (c->transposed ? c->n_in : c->n_out) * kk;
	nets_init_layer(p, c->w, c->b, fin, fout, o, r);
}

enum vb_status convnet_encoder_add(struct convnet_encoder *e,
				   struct params *p, const char *prefix,
				   size_t n_latent,
				   const struct nets_options *o,
				   struct vb_error *err)
{
	static const size_t ch[5] = {1, 128, 256, 512, 1024};
	char name[2 * PARAMS_NAME_LEN];
	enum vb_status st = VB_OK;
	if (n_latent == 0)
		return vb_fail(err, VB_ERR_CONFIG,
			       "convnet: latent 0, expected >= 1");
	e->n_latent = n_latent;
	e->opt = *o;
	for (int i = 0; st == VB_OK && i < 4; i++) {
		snprintf(name, sizeof name, "%s.layers.%d.0", prefix, i);
		st = nets_conv_add(&e->conv[i], p, name, false, ch[i],
				   ch[i + 1], 4, 2, 1, 0, err);
		snprintf(name, sizeof name, "%s.layers.%d.1", prefix, i);
		if (st == VB_OK)
			st = nets_bn_add(&e->bn[i], p, name, ch[i + 1], o,
					 err);
	}
	snprintf(name, sizeof name, "%s.embedding", prefix);
	if (st == VB_OK)
		st = nets_linear_add(&e->mu, p, name, 1024, n_latent, err);
	snprintf(name, sizeof name, "%s.log_var", prefix);
	if (st == VB_OK)
		st = nets_linear_add(&e->logvar, p, name, 1024, n_latent,
				     err);
	return st;
}

void convnet_encoder_init(const struct convnet_encoder *e, struct params *p,
			  struct rng *r)
{
	for (int i = 0; i < 4; i++) {
		conv_init(&e->conv[i], p, &e->opt, r);
		nets_bn_init(&e->bn[i], p);
	}
	nets_init_layer(p, e->mu.w, e->mu.b, e->mu.n_in, e->mu.n_out, &e->opt,
			r);
	nets_init_layer(p, e->logvar.w, e->logvar.b, e->logvar.n_in,
			e->logvar.n_out, &e->opt, r);
}

void convnet_encoder_forward(const struct convnet_encoder *e,
			     struct graph *g, struct graph_node **pnodes,
			     struct graph_node *x, struct graph_node **mu,
			     struct graph_node **logvar)
{
	size_t B = x ? x->value.shape[0] : 0;
	size_t xs[4] = {B, 1, CONVNET_IMAGE_SIDE, CONVNET_IMAGE_SIDE};
	size_t fs[2] = {B, 1024};
	char nm[32];
	struct graph_node *h;
	*mu = *logvar = NULL;
	if (!x)
		return;
	if (x->value.n != B * CONVNET_IMAGE_SIDE * CONVNET_IMAGE_SIDE) {
		graph_failf(g, VB_ERR_SHAPE, "convnet: encoder input of %zu "
			    "elements for batch %zu, expected %d each",
			    x->value.n, B,
			    CONVNET_IMAGE_SIDE * CONVNET_IMAGE_SIDE);
		return;
	}
	h = op_reshape(g, "image", x, 4, xs);
	for (int i = 0; i < 4; i++) {
		snprintf(nm, sizeof nm, "conv%d", i + 1);
		h = nets_conv_forward(&e->conv[i], g, pnodes, nm, h);
		snprintf(nm, sizeof nm, "conv%d.bn", i + 1);
		h = nets_bn_forward(&e->bn[i], g, pnodes, nm, h);
		snprintf(nm, sizeof nm, "conv%d.relu", i + 1);
		h = op_relu(g, nm, h);
	}
	h = op_reshape(g, "flatten", h, 2, fs);
	*mu = nets_linear_forward(&e->mu, g, pnodes, "mu", h);
	*logvar = nets_linear_forward(&e->logvar, g, pnodes, "logvar", h);
}

enum vb_status convnet_decoder_add(struct convnet_decoder *d,
				   struct params *p, const char *prefix,
				   size_t n_latent,
				   const struct nets_options *o,
				   struct vb_error *err)
{
	static const size_t ch[4] = {1024, 512, 256, 1};
	char name[2 * PARAMS_NAME_LEN];
	enum vb_status st;
	if (n_latent == 0)
		return vb_fail(err, VB_ERR_CONFIG,
			       "convnet: latent 0, expected >= 1");
	d->n_latent = n_latent;
	d->opt = *o;
	snprintf(name, sizeof name, "%s.layers.0", prefix);
	st = nets_linear_add(&d->fc, p, name, n_latent, 1024 * 4 * 4, err);
	for (int i = 0; st == VB_OK && i < 3; i++) {
		snprintf(name, sizeof name, "%s.layers.%d.0", prefix, i + 1);
		st = nets_conv_add(&d->up[i], p, name, true, ch[i], ch[i + 1],
				   3, 2, 1, i > 0, err);
		snprintf(name, sizeof name, "%s.layers.%d.1", prefix, i + 1);
		if (st == VB_OK && i < 2)
			st = nets_bn_add(&d->bn[i], p, name, ch[i + 1], o,
					 err);
	}
	return st;
}

void convnet_decoder_init(const struct convnet_decoder *d, struct params *p,
			  struct rng *r)
{
	nets_init_layer(p, d->fc.w, d->fc.b, d->fc.n_in, d->fc.n_out, &d->opt,
			r);
	conv_init(&d->up[0], p, &d->opt, r);
	nets_bn_init(&d->bn[0], p);
	conv_init(&d->up[1], p, &d->opt, r);
	nets_bn_init(&d->bn[1], p);
	conv_init(&d->up[2], p, &d->opt, r);
}

struct graph_node *convnet_decoder_forward(const struct convnet_decoder *d,
					   struct graph *g,
					   struct graph_node **pnodes,
					   struct graph_node *z)
{
	size_t B = z ? z->value.shape[0] : 0;
	size_t hs[4] = {B, 1024, 4, 4};
	size_t ys[2] = {B, CONVNET_IMAGE_SIDE * CONVNET_IMAGE_SIDE};
	struct graph_node *h;
	if (!z)
		return NULL;
	if (z->value.ndim != 2 || z->value.shape[1] != d->n_latent)
		return graph_failf(g, VB_ERR_SHAPE, "convnet: decoder input "
				   "must be (B, %zu)", d->n_latent);
	h = nets_linear_forward(&d->fc, g, pnodes, "fc", z);
	h = op_reshape(g, "fc.reshape", h, 4, hs);
	h = nets_conv_forward(&d->up[0], g, pnodes, "deconv1", h);
	h = op_relu(g, "deconv1.relu",
		    nets_bn_forward(&d->bn[0], g, pnodes, "deconv1.bn", h));
	h = nets_conv_forward(&d->up[1], g, pnodes, "deconv2", h);
	h = op_relu(g, "deconv2.relu",
		    nets_bn_forward(&d->bn[1], g, pnodes, "deconv2.bn", h));
	h = nets_conv_forward(&d->up[2], g, pnodes, "deconv3", h);
	h = op_sigmoid(g, "out", h);
	return op_reshape(g, "out.flat", h, 2, ys);
}
