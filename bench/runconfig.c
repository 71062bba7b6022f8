/* runconfig: config -> model, optimiser, schedule, preprocessing and
 * rounding settings (runconfig.h). The settings whose enum belongs to a
 * module hold that enum already (config.h); only the config-only enums
 * (rhvae.momentum, nets.bn_eval, ...) are mapped here. */
#include "runconfig.h"

#include <string.h>

#include "linalg.h"

void runconfig_model(const struct config *c, const struct dataset *ds,
		     struct model_config *mc)
{
	model_config_defaults(mc);
	mc->kind = (enum model_kind)c->model.kind;
	mc->arch = (enum model_arch)c->model.arch;
	mc->recon = (enum model_recon)c->model.recon;
	mc->n_rows = ds->rows;
	mc->n_cols = ds->cols;
	mc->n_latent = (size_t)c->model.latent;
	mc->n_hidden = (size_t)c->model.hidden;
	mc->init_seed = c->model.init_seed >= 0 ? (uint64_t)c->model.init_seed
						: c->train.seed;
	mc->n_batch_max = (size_t)c->train.batch;
	mc->n_lf = (size_t)c->rhvae.n_lf;
	mc->eps_lf = c->rhvae.eps_lf;
	mc->beta_zero = c->rhvae.beta_zero;
	mc->temperature = c->rhvae.temperature;
	mc->regularization = c->rhvae.regularization;
	mc->logdet_mode = (enum linalg_logdet_mode)c->rhvae.logdet;
	mc->buffer_batches = (size_t)c->rhvae.buffer_batches;
	mc->quirk_beta_sqrt = c->rhvae.beta_zero_as_sqrt;
	mc->quirk_momentum_l = c->rhvae.momentum == CONFIG_MOMENTUM_METRIC;
	mc->quirk_position = c->rhvae.position_step == CONFIG_POSITION_PYTHAE;
	mc->second_order = c->rhvae.second_order;
	mc->quirk_hvae_softplus = c->hvae.softplus_sigma;
	mc->quirk_hvae_position = c->hvae.position_uses_rho;
	mc->nll_consistent = c->eval.nll_estimator == CONFIG_NLL_CONSISTENT;
	mc->logvar_clamp = c->model.logvar_clamp;
	mc->logvar_min = c->model.logvar_min;
	mc->logvar_max = c->model.logvar_max;
	mc->metric_softplus = c->rhvae.diag_activation == CONFIG_DIAG_SOFTPLUS;
	mc->h_grad_clip = c->rhvae.grad_clip;
	mc->logdet_jitter = c->rhvae.logdet_jitter;
	mc->sigma = (enum model_sigma)c->model.sigma;
	mc->bce_eps = c->model.bce_eps;
	mc->activation = (enum model_activation)c->nets.activation;
	mc->leaky_slope = c->nets.leaky_slope;
	mc->init = (enum model_init)c->nets.init;
	mc->init_scale = c->nets.init_scale;
	mc->bias_fill = c->nets.bias_fill;
	mc->bias_value = c->nets.bias_value;
	mc->mlp_batchnorm = c->nets.batchnorm;
	mc->bn_eps = c->nets.bn_eps;
	mc->bn_momentum = c->nets.bn_momentum;
	mc->bn_track_running_stats = c->nets.bn_track_running_stats;
	mc->bn_eval_batch_stats = c->nets.bn_eval == CONFIG_BN_EVAL_BATCH;
	mc->anchor_eps_placement =
		(enum model_eps_placement)c->anchor.eps_placement;
	mc->anchor_eps = c->anchor.eps;
	mc->anchor_weight = c->anchor.weight;
}

void runconfig_optim(const struct config *c, struct optim_settings *os)
{
	memset(os, 0, sizeof *os);
	os->kind = (enum optim_kind)c->optim.kind;
	os->beta1 = c->optim.beta1;
	os->beta2 = c->optim.beta2;
	os->adam_eps = c->optim.adam_eps;
	os->weight_decay = c->optim.weight_decay;
	os->momentum = c->optim.momentum;
	os->dampening = c->optim.dampening;
	os->nesterov = c->optim.nesterov;
}

_Static_assert((int)CONFIG_CLIP_NONE == (int)OPTIM_CLIP_NONE &&
		       (int)CONFIG_CLIP_NORM == (int)OPTIM_CLIP_NORM &&
		       (int)CONFIG_CLIP_VALUE == (int)OPTIM_CLIP_VALUE &&
		       (int)CONFIG_CLIP_ADAPTIVE == (int)OPTIM_CLIP_ADAPTIVE,
	       "optim.clip names the optim_clip modes in their order");

void runconfig_clip(const struct config *c, struct optim_clip_settings *s)
{
	optim_clip_settings_defaults(s);
	s->mode = (enum optim_clip_mode)c->optim.clip;
	s->threshold = c->optim.clip_max;
	s->clip_eps = c->optim.clip_eps;
	s->k = c->optim.clip_k;
	s->window = (size_t)c->optim.clip_window;
	s->warmup = (size_t)c->optim.clip_warmup;
}

void runconfig_schedule(const struct config *c, struct optim_schedule *s)
{
	memset(s, 0, sizeof *s);
	s->kind = (enum optim_schedule_kind)c->optim.schedule;
	s->step_size = (long)c->optim.step_size;
	s->gamma = c->optim.gamma;
	s->warmup_steps = (long)c->optim.warmup_steps;
	s->total_epochs = (long)c->train.epochs;
	s->min_lr = c->optim.min_lr;
}

enum preprocess_nonfinite runconfig_nonfinite(const struct config *c)
{
	return c->data.nonfinite == CONFIG_NONFINITE_REFUSE ? PREPROCESS_REFUSE
	       : c->data.nonfinite == CONFIG_NONFINITE_SCRUB
		       ? PREPROCESS_SCRUB
		       : PREPROCESS_PASS;
}

enum graph_rounding runconfig_rounding(const struct config *c)
{
	if (c->train.precision == CONFIG_PRECISION_F16)
		return GRAPH_ROUNDING_F16;
	if (c->train.precision == CONFIG_PRECISION_BF16)
		return GRAPH_ROUNDING_BF16;
	return GRAPH_ROUNDING_NONE;
}

enum graph_conv_backend runconfig_conv_backend(const struct config *c)
{
	return c->train.kernels == CONFIG_KERNELS_PORTABLE
		       ? GRAPH_CONV_BACKEND_IM2COL
		       : graph_conv_backend_default();
}

enum vb_status runconfig_graph(const struct config *c, struct graph *g,
			       struct vb_error *err)
{
	graph_set_rounding(g, runconfig_rounding(c));
	return graph_set_conv_backend(g, runconfig_conv_backend(c), err);
}
