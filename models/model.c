/* model: the model interface: names, defaults, buffers, the shared create
 * prologue (model_alloc), the build_loss wrapper and the checkpoint state.
 * Creation by kind (the one place that knows every model) is registry.c. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


const char *model_kind_name(enum model_kind kind)
{
	switch (kind) {
	case MODEL_KIND_VAE: return "vae";
	case MODEL_KIND_RHVAE: return "rhvae";
	case MODEL_KIND_HVAE: return "hvae";
	case MODEL_KIND_ANCHOR: return "anchor";
	}
	return "unknown";
}

const char *model_arch_name(enum model_arch arch)
{
	switch (arch) {
	case MODEL_ARCH_MLP: return "mlp";
	case MODEL_ARCH_RESNET: return "resnet";
	case MODEL_ARCH_CONVNET: return "convnet";
	}
	return "unknown";
}

const char *model_activation_name(enum model_activation a)
{
	switch (a) {
	case MODEL_ACT_RELU: return "relu";
	case MODEL_ACT_SIGMOID: return "sigmoid";
	case MODEL_ACT_TANH: return "tanh";
	case MODEL_ACT_SOFTPLUS: return "softplus";
	case MODEL_ACT_LEAKY_RELU: return "leaky_relu";
	}
	return "unknown";
}

const char *model_init_name(enum model_init i)
{
	switch (i) {
	case MODEL_INIT_PYTORCH: return "pytorch";
	case MODEL_INIT_XAVIER_UNIFORM: return "xavier_uniform";
	case MODEL_INIT_XAVIER_NORMAL: return "xavier_normal";
	case MODEL_INIT_KAIMING_UNIFORM: return "kaiming_uniform";
	case MODEL_INIT_KAIMING_NORMAL: return "kaiming_normal";
	case MODEL_INIT_SCALED: return "scaled";
	}
	return "unknown";
}

const char *model_eps_placement_name(enum model_eps_placement e)
{
	switch (e) {
	case MODEL_EPS_NONE: return "none";
	case MODEL_EPS_LOSS: return "loss";
	case MODEL_EPS_SQRT: return "sqrt";
	}
	return "unknown";
}

const char *model_sigma_name(enum model_sigma s)
{
	switch (s) {
	case MODEL_SIGMA_EXP: return "exp";
	case MODEL_SIGMA_SOFTPLUS: return "softplus";
	}
	return "unknown";
}

enum vb_status model_buffers_add(struct model_buffers *b, const char *name,
				 enum checkpoint_dtype dtype, size_t n,
				 double fill, void **data,
				 struct vb_error *err)
{
	struct model_buffer *it;
	size_t es = checkpoint_dtype_size(dtype), bytes;
	*data = NULL;
	if (dtype != CHECKPOINT_REAL && dtype != CHECKPOINT_I64)
		return vb_fail(err, VB_ERR_INTERNAL,
			       "model: buffer %s: dtype %s, expected %s or I64",
			       name, checkpoint_dtype_name(dtype),
			       checkpoint_dtype_name(CHECKPOINT_REAL));
	if (strlen(name) >= PARAMS_NAME_LEN)
		return vb_fail(err, VB_ERR_INTERNAL,
			       "model: buffer name %s too long", name);
	for (size_t i = 0; i < b->n_items; i++)
		if (!strcmp(b->items[i].name, name))
			return vb_fail(err, VB_ERR_INTERNAL,
				       "model: buffer %s registered twice",
				       name);
	if (b->n_items == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 16;
		it = realloc(b->items, cap * sizeof *it);
		if (!it)
			return vb_fail(err, VB_ERR_NOMEM,
				       "model: cannot grow the buffer list");
		b->items = it;
		b->cap = cap;
	}
	if (!vb_mul_size(n ? n : 1, es, &bytes))
		return vb_fail(err, VB_ERR_NOMEM, "model: buffer %s: %zu "
			       "elements overflow", name, n);
	it = &b->items[b->n_items];
	it->data = malloc(bytes);
	if (!it->data)
		return vb_fail(err, VB_ERR_NOMEM, "model: buffer %s: cannot "
			       "allocate %zu bytes", name, bytes);
	snprintf(it->name, sizeof it->name, "%s", name);
	it->dtype = dtype;
	it->n = n;
	if (dtype == CHECKPOINT_I64)
		memset(it->data, 0, bytes);
	else
		for (size_t i = 0; i < n; i++)
			((vb_real *)it->data)[i] = (vb_real)fill;
	b->n_items++;
	*data = it->data;
	return VB_OK;
}

void model_buffers_free(struct model_buffers *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n_items; i++)
		free(b->items[i].data);
	free(b->items);
	free(b);
}

const char *model_recon_name(enum model_recon recon)
{
	switch (recon) {
	case MODEL_RECON_MSE: return "mse";
	case MODEL_RECON_BCE: return "bce";
	}
	return "unknown";
}

void model_config_defaults(struct model_config *c)
{
	memset(c, 0, sizeof *c); /* padding too: the struct is compared whole */
	c->kind = MODEL_KIND_VAE;
	c->arch = MODEL_ARCH_MLP;
	c->recon = MODEL_RECON_MSE;
	c->n_rows = 28;
	c->n_cols = 28;
	c->n_latent = 16;
	c->n_hidden = 512;
	c->bce_log_clamp = -100;
	c->bce_denom_eps = 1e-12;
	c->init_seed = 8;
	c->n_batch_max = 64;
	c->n_lf = 3;
	c->eps_lf = 0.001;
	c->beta_zero = 0.3;
	c->temperature = 1.5;
	c->regularization = 0.01;
	c->logdet_mode = 0;
	c->buffer_batches = 100;
	c->n_metric_hidden = 400;
	c->quirk_beta_sqrt = true;
	c->quirk_momentum_l = true;
	c->quirk_position = true;
	c->second_order = true;
	c->quirk_hvae_softplus = true;
	c->quirk_hvae_position = true;
	c->nll_consistent = false;
	c->logvar_clamp = false;
	c->logvar_min = -30;
	c->logvar_max = 20;
	c->metric_softplus = false;
	c->h_grad_clip = 0;
	c->logdet_jitter = 0;
	c->sigma = MODEL_SIGMA_EXP;
	c->bce_eps = 0;
	c->activation = MODEL_ACT_RELU;
	c->leaky_slope = 0.01;
	c->init = MODEL_INIT_PYTORCH;
	c->init_scale = 1;
	c->bias_fill = false;
	c->bias_value = 0;
	c->mlp_batchnorm = false;
	c->bn_eps = 1e-5;
	c->bn_momentum = 0.1;
	c->bn_track_running_stats = true;
	c->bn_eval_batch_stats = false;
	c->anchor_eps_placement = MODEL_EPS_SQRT;
	c->anchor_eps = 1e-8;
	c->anchor_weight = 1;
	c->buffers = NULL;
}

enum vb_status model_alloc(const struct model_ops *ops,
			   const struct model_config *cfg, size_t impl_size,
			   struct model **out, struct vb_error *err)
{
	struct model *m = calloc(1, sizeof *m);
	void *impl = calloc(1, impl_size);
	*out = NULL;
	if (!m || !impl) {
		free(m);
		free(impl);
		return vb_fail(err, VB_ERR_NOMEM, "%s: cannot allocate",
			       ops->name);
	}
	m->ops = ops;
	m->cfg = *cfg;
	m->impl = impl;
	*out = m;
	return VB_OK;
}

void model_free(struct model *m)
{
	if (!m)
		return;
	if (m->ops && m->ops->free_impl)
		m->ops->free_impl(m);
	else
		free(m->impl);
	params_free(m->params);
	model_buffers_free(m->buffers);
	free(m);
}

enum vb_status model_build_loss(struct model *m, struct graph *g,
				struct graph_node *x, struct rng *r,
				bool training, struct model_out *out,
				struct vb_error *err)
{
	enum vb_status st;
	memset(out, 0, sizeof *out);
	if (m->buffers)
		m->buffers->training = training;
	m->pnodes = graph_alloc(g, m->params->n_entries * sizeof *m->pnodes);
	if (!m->pnodes)
		return vb_fail(err, graph_status(g), "%s", graph_error(g)->msg);
	st = params_nodes(m->params, g, m->pnodes);
	if (st == VB_OK)
		st = m->ops->build_loss(m, g, x, r, training, out, err);
	if (st == VB_OK && graph_status(g) != VB_OK)
		st = vb_fail(err, graph_status(g), "%s", graph_error(g)->msg);
	if (st == VB_OK && !out->loss)
		st = vb_fail(err, VB_ERR_INTERNAL, "model: %s built no loss",
			     m->ops->name);
	return st;
}

enum vb_status model_epoch_end(struct model *m, struct vb_error *err)
{
	return m->ops->epoch_end ? m->ops->epoch_end(m, err) : VB_OK;
}

enum vb_status model_save_state(const struct model *m,
				struct checkpoint_writer *w,
				struct vb_error *err)
{
	enum vb_status st = m->ops->save_state ? m->ops->save_state(m, w, err)
					       : VB_OK;
	for (size_t i = 0; st == VB_OK && m->buffers &&
			   i < m->buffers->n_items; i++) {
		const struct model_buffer *b = &m->buffers->items[i];
		size_t shape[1] = {b->n};
		/* num_batches_tracked is a 0-d tensor in PyTorch */
		int nd = b->dtype == CHECKPOINT_I64 ? 0 : 1;
		st = checkpoint_add(w, b->name, b->dtype, nd, shape, b->data,
				    err);
	}
	return st;
}

enum vb_status model_load_state(struct model *m, const struct checkpoint *c,
				struct vb_error *err)
{
	enum vb_status st = m->ops->load_state ? m->ops->load_state(m, c, err)
					       : VB_OK;
	for (size_t i = 0; st == VB_OK && m->buffers &&
			   i < m->buffers->n_items; i++) {
		struct model_buffer *b = &m->buffers->items[i];
		if (b->dtype == CHECKPOINT_I64) {
			/* counters (num_batches_tracked) that keep counting */
			st = checkpoint_read_raw(c, b->name, CHECKPOINT_I64,
						 b->n, b->data, err);
			if (st == VB_OK)
				st = checkpoint_check_i64(
					c, b->name, b->data, b->n, 0,
					CHECKPOINT_COUNT_MAX, err);
		}
		else
			st = checkpoint_read_real(c, b->name, 1, &b->n,
						  b->data, err);
	}
	return st;
}

void model_count_h_grad(struct model *m, const struct graph_node *gz,
			double clip)
{
	if (!gz)
		return;
	for (size_t i = 0; i < gz->value.n; i++)
		if (fabs((double)gz->value.data[i]) > clip)
			m->h_grad_clamped++;
	m->h_grad_entries += gz->value.n;
}
