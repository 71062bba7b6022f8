/* config: the key table and everything driven by it: defaults, parsing
 * and range checks of text values, INI loading through inih (the only file
 * that includes ini.h), --set overrides, cross-field validation, canonical
 * formatting and atomic INI writing. What the settings mean is left to the
 * modules that read them. */
#include "config.h"

#include <ini.h>

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"

/* How a string key's value is checked. */
enum str_rule {
	STR_NAME,          /* [A-Za-z0-9._-]+, not "." or ".." */
	STR_PATH,          /* non-empty path */
	STR_PATH_OR_EMPTY  /* path or "" */
};

struct key_def {
	const char *section;
	const char *key;
	const char *name;              /* "section.key" */
	enum config_type type;
	size_t offset;                 /* into struct config */
	size_t size;                   /* of the field */
	const char *def;               /* default, as text */
	int64_t lo, hi;                /* CONFIG_TYPE_INT: inclusive range */
	double dlo, dhi;               /* CONFIG_TYPE_DOUBLE: bounds ... */
	bool lo_open, hi_open;         /* ... exclusive when set */
	const char *const *names;      /* CONFIG_TYPE_ENUM: a name list */
	int n_names;
	/* ... or the owning module's name function (NULL: names); its
	 * values run from 0 to the first one it calls "unknown" */
	const char *(*name_of)(int v);
	enum str_rule rule;            /* CONFIG_TYPE_STRING */
	const char *help;
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Name lists, indexed by the enum constants of config.h. */
static const char *const progress_names[] = {
	[CONFIG_PROGRESS_AUTO] = "auto", [CONFIG_PROGRESS_ON] = "on",
	[CONFIG_PROGRESS_OFF] = "off"
};
static const char *const dataset_names[] = {
	[CONFIG_DATASET_MNIST] = "mnist",
	[CONFIG_DATASET_FASHION_MNIST] = "fashion-mnist",
	[CONFIG_DATASET_SYNTHETIC] = "synthetic"
};
static const char *const split_names[] = {
	[CONFIG_SPLIT_TRAIN] = "train", [CONFIG_SPLIT_T10K] = "t10k"
};
static const char *const diag_names[] = {
	[CONFIG_DIAG_EXP] = "exp", [CONFIG_DIAG_SOFTPLUS] = "softplus"
};
static const char *const momentum_names[] = {
	[CONFIG_MOMENTUM_METRIC] = "metric",
	[CONFIG_MOMENTUM_CHOLESKY] = "cholesky"
};
static const char *const position_names[] = {
	[CONFIG_POSITION_PYTHAE] = "pythae",
	[CONFIG_POSITION_FIXED_POINT] = "fixed_point"
};
static const char *const bn_eval_names[] = {
	[CONFIG_BN_EVAL_RUNNING] = "running", [CONFIG_BN_EVAL_BATCH] = "batch"
};
static const char *const nonfinite_names[] = {
	[CONFIG_NONFINITE_PASS] = "pass", [CONFIG_NONFINITE_REFUSE] = "refuse",
	[CONFIG_NONFINITE_SCRUB] = "scrub"
};
_Static_assert(N_ELEMS(bn_eval_names) == CONFIG_BN_EVAL_COUNT, "bn_eval");
_Static_assert(N_ELEMS(nonfinite_names) == CONFIG_NONFINITE_COUNT,
	       "nonfinite");
static const char *const nan_check_names[] = {
	[CONFIG_NAN_CHECK_STRICT] = "strict",
	[CONFIG_NAN_CHECK_PYTHAE] = "pythae", [CONFIG_NAN_CHECK_OFF] = "off"
};
static const char *const clip_names[] = {
	[CONFIG_CLIP_NONE] = "none", [CONFIG_CLIP_NORM] = "norm",
	[CONFIG_CLIP_VALUE] = "value"
};
static const char *const nan_phase_names[] = {
	[CONFIG_NAN_PHASE_INPUT] = "input", [CONFIG_NAN_PHASE_PARAM] = "param",
	[CONFIG_NAN_PHASE_GRAD] = "grad",
	[CONFIG_NAN_PHASE_UNNORMALIZED] = "unnormalized"
};
static const char *const inject_value_names[] = {
	[CONFIG_INJECT_NAN] = "nan", [CONFIG_INJECT_INF] = "inf",
	[CONFIG_INJECT_SCALE] = "scale"
};
static const char *const precision_names[] = {
	[CONFIG_PRECISION_NATIVE] = "native", [CONFIG_PRECISION_F32] = "f32",
	[CONFIG_PRECISION_F64] = "f64", [CONFIG_PRECISION_F16] = "f16",
	[CONFIG_PRECISION_BF16] = "bf16"
};
static const char *const loss_scale_names[] = {
	[CONFIG_LOSS_SCALE_NONE] = "none",
	[CONFIG_LOSS_SCALE_STATIC] = "static",
	[CONFIG_LOSS_SCALE_DYNAMIC] = "dynamic"
};
static const char *const guard_mode_names[] = {
	[CONFIG_GUARD_CHEAP] = "cheap", [CONFIG_GUARD_ANOMALY] = "anomaly"
};

_Static_assert(N_ELEMS(progress_names) == CONFIG_PROGRESS_COUNT, "progress");
_Static_assert(N_ELEMS(dataset_names) == CONFIG_DATASET_COUNT, "dataset");
_Static_assert(N_ELEMS(split_names) == CONFIG_SPLIT_COUNT, "split");
_Static_assert(N_ELEMS(diag_names) == CONFIG_DIAG_COUNT, "diag");
_Static_assert(N_ELEMS(momentum_names) == CONFIG_MOMENTUM_COUNT, "momentum");
_Static_assert(N_ELEMS(position_names) == CONFIG_POSITION_COUNT, "position");
_Static_assert(N_ELEMS(nan_check_names) == CONFIG_NAN_CHECK_COUNT, "nan_check");
_Static_assert(N_ELEMS(clip_names) == CONFIG_CLIP_COUNT, "clip");
_Static_assert(N_ELEMS(nan_phase_names) == CONFIG_NAN_PHASE_COUNT, "nan_phase");
_Static_assert(N_ELEMS(inject_value_names) == CONFIG_INJECT_VALUE_COUNT,
	       "inject_value");
_Static_assert(N_ELEMS(precision_names) == CONFIG_PRECISION_COUNT,
	       "precision");
_Static_assert(N_ELEMS(loss_scale_names) == CONFIG_LOSS_SCALE_COUNT,
	       "loss_scale");
_Static_assert(N_ELEMS(guard_mode_names) == CONFIG_GUARD_MODE_COUNT,
	       "guard_mode");

/* The enums owned by a module (model.h, optim.h, linalg.h) are named by
 * that module's name function; these adapt it to an int field. */
static const char *model_kind_of(int v)
{
	return model_kind_name((enum model_kind)v);
}

static const char *arch_of(int v)
{
	return model_arch_name((enum model_arch)v);
}

static const char *activation_of(int v)
{
	return model_activation_name((enum model_activation)v);
}

static const char *init_of(int v)
{
	return model_init_name((enum model_init)v);
}

static const char *eps_placement_of(int v)
{
	return model_eps_placement_name((enum model_eps_placement)v);
}

static const char *recon_of(int v)
{
	return model_recon_name((enum model_recon)v);
}

static const char *sigma_of(int v)
{
	return model_sigma_name((enum model_sigma)v);
}

static const char *optim_kind_of(int v)
{
	return optim_kind_name((enum optim_kind)v);
}

static const char *schedule_of(int v)
{
	return optim_schedule_kind_name((enum optim_schedule_kind)v);
}

static const char *logdet_of(int v)
{
	return linalg_logdet_mode_name((enum linalg_logdet_mode)v);
}

/* Number of names of enum key d. */
static int enum_count(const struct key_def *d)
{
	int n = 0;
	if (!d->name_of)
		return d->n_names;
	while (strcmp(d->name_of(n), "unknown") != 0)
		n++;
	return n;
}

/* Name of value v (0 <= v < enum_count(d)) of enum key d. */
static const char *enum_at(const struct key_def *d, int v)
{
	return d->name_of ? d->name_of(v) : d->names[v];
}

#define FIELD(sec, k) \
	.section = #sec, .key = #k, .name = #sec "." #k, \
	.offset = offsetof(struct config, sec.k), \
	.size = sizeof(((struct config *)0)->sec.k)

#define K_STR(sec, k, rule_, def_, help_) \
	{ FIELD(sec, k), .type = CONFIG_TYPE_STRING, .rule = rule_, \
	  .def = def_, .help = help_ }
#define K_INT(sec, k, def_, lo_, hi_, help_) \
	{ FIELD(sec, k), .type = CONFIG_TYPE_INT, .lo = lo_, .hi = hi_, \
	  .def = def_, .help = help_ }
#define K_U64(sec, k, def_, help_) \
	{ FIELD(sec, k), .type = CONFIG_TYPE_U64, .def = def_, .help = help_ }
#define K_DBL(sec, k, def_, lo_, lo_open_, hi_, hi_open_, help_) \
	{ FIELD(sec, k), .type = CONFIG_TYPE_DOUBLE, .dlo = lo_, \
	  .lo_open = lo_open_, .dhi = hi_, .hi_open = hi_open_, \
	  .def = def_, .help = help_ }
#define K_BOOL(sec, k, def_, help_) \
	{ FIELD(sec, k), .type = CONFIG_TYPE_BOOL, .def = def_, .help = help_ }
#define K_ENUM(sec, k, names_, def_, help_) \
	{ FIELD(sec, k), .type = CONFIG_TYPE_ENUM, .names = names_, \
	  .n_names = (int)N_ELEMS(names_), .def = def_, .help = help_ }
#define K_ENUMF(sec, k, name_of_, def_, help_) \
	{ FIELD(sec, k), .type = CONFIG_TYPE_ENUM, .name_of = name_of_, \
	  .def = def_, .help = help_ }

#define IMAX INT64_MAX
#define OPEN true
#define CLOSED false

static const struct key_def keys[] = {
	K_STR(run, name, STR_NAME, "run",
	      "run name; the run folder is out_dir/name"),
	K_STR(run, out_dir, STR_PATH, "runs",
	      "folder holding the run folders"),
	K_ENUM(run, progress, progress_names, "auto",
	       "progress output: auto (when stderr is a terminal), on, off"),
	K_INT(run, checkpoint_every, "0", 0, IMAX,
	      "checkpoint every this many optimizer steps; 0 = only the final one"),

	K_ENUM(data, dataset, dataset_names, "mnist", "dataset"),
	K_STR(data, dir, STR_PATH_OR_EMPTY, "",
	      "dataset folder; empty = the dataset's default folder"),
	K_ENUM(data, train_split, split_names, "train",
	       "file split the training images come from"),
	K_INT(data, train_begin, "0", 0, IMAX,
	      "first training image (index into the split)"),
	K_INT(data, train_end, "-1", -1, IMAX,
	      "end of the training images, exclusive; -1 = to the end"),
	K_ENUM(data, eval_split, split_names, "t10k",
	       "file split the evaluation images come from"),
	K_INT(data, eval_begin, "0", 0, IMAX,
	      "first evaluation image (index into the split)"),
	K_INT(data, eval_end, "-1", -1, IMAX,
	      "end of the evaluation images, exclusive; -1 = to the end"),
	K_DBL(data, scale, "255", 0.0, OPEN, INFINITY, OPEN,
	      "pixels are divided by this"),
	K_INT(data, synthetic_n, "512", 1, IMAX,
	      "training images of the synthetic dataset"),
	K_BOOL(data, standardize, "false",
	       "per-pixel standardisation (x - mean) / sqrt(var + "
	       "standardize_eps), statistics of the training images"),
	K_DBL(data, standardize_eps, "1e-5", 0.0, CLOSED, INFINITY, OPEN,
	      "epsilon added to the per-pixel variance when standardising"),
	K_ENUM(data, nonfinite, nonfinite_names, "pass",
	       "non-finite pixels after preprocessing: pass (to the guard), "
	       "refuse (error), scrub (nan_to_num: NaN 0, Inf largest finite)"),
	K_INT(data, synthetic_eval_n, "128", 1, IMAX,
	      "evaluation images of the synthetic dataset"),

	K_ENUMF(model, kind, model_kind_of, "vae", "model: vae, rhvae, hvae or anchor (VAE + anchor-line regulariser)"),
	K_ENUMF(model, arch, arch_of, "mlp", "encoder and decoder: mlp (pythae's defaults), resnet (the tutorial's) or convnet (pythae's, BatchNorm2d)"),
	K_INT(model, latent, "16", 1, 4096, "latent dimension Z"),
	K_INT(model, hidden, "512", 1, 1000000, "hidden layer width H"),
	K_ENUMF(model, recon, recon_of, "mse", "reconstruction loss"),
	K_INT(model, init_seed, "-1", -1, IMAX,
	      "seed of the weight initialisation; -1 = use train.seed"),
	K_BOOL(model, logvar_clamp, "false",
	       "mitigation: clamp the encoder's logvar to [logvar_min, "
	       "logvar_max]"),
	K_DBL(model, logvar_min, "-30", -INFINITY, OPEN, INFINITY, OPEN,
	      "lower logvar clamp"),
	K_DBL(model, logvar_max, "20", -INFINITY, OPEN, INFINITY, OPEN,
	      "upper logvar clamp"),
	K_ENUMF(model, sigma, sigma_of, "exp",
	       "encoder scale: exp (std = exp(logvar / 2), pythae) or softplus "
	       "(mitigation: std = softplus(s), logvar = 2 log std)"),
	K_DBL(model, bce_eps, "0", 0.0, CLOSED, 0.5, OPEN,
	      "mitigation (bce): clamp the decoder output to [bce_eps, "
	      "1 - bce_eps] before the BCE; 0 = PyTorch's log clamp at -100 "
	      "only"),

	K_ENUMF(nets, activation, activation_of, "relu",
	       "MLP hidden activation"),
	K_DBL(nets, leaky_slope, "0.01", 0.0, CLOSED, INFINITY, OPEN,
	      "negative slope of leaky_relu"),
	K_ENUMF(nets, init, init_of, "pytorch",
	       "weight init: pytorch (layer default), xavier_uniform, "
	       "xavier_normal, kaiming_uniform, kaiming_normal, scaled "
	       "(pytorch times init_scale)"),
	K_DBL(nets, init_scale, "1", 0.0, OPEN, INFINITY, OPEN,
	      "factor on pytorch's weight init for nets.init = scaled"),
	K_BOOL(nets, bias_fill, "false",
	       "fill biases with bias_value instead of pytorch's init"),
	K_DBL(nets, bias_value, "0", -INFINITY, OPEN, INFINITY, OPEN,
	      "bias fill value when bias_fill"),
	K_BOOL(nets, batchnorm, "false",
	       "MLP: BatchNorm1d after each hidden linear layer"),
	K_DBL(nets, bn_eps, "1e-5", 0.0, CLOSED, INFINITY, OPEN,
	      "BatchNorm epsilon added to the variance"),
	K_DBL(nets, bn_momentum, "0.1", 0.0, CLOSED, 1.0, CLOSED,
	      "BatchNorm running-statistics momentum"),
	K_BOOL(nets, bn_track_running_stats, "true",
	       "BatchNorm keeps running statistics (false: batch statistics "
	       "in evaluation too)"),
	K_ENUM(nets, bn_eval, bn_eval_names, "running",
	       "BatchNorm in evaluation: running statistics or batch "
	       "statistics (evaluating in training mode)"),

	K_ENUMF(anchor, eps_placement, eps_placement_of, "sqrt",
	       "anchor model: epsilon nowhere, added to the loss, or inside "
	       "the square roots"),
	K_DBL(anchor, eps, "1e-8", 0.0, CLOSED, INFINITY, OPEN,
	      "anchor model epsilon"),
	K_DBL(anchor, weight, "1", 0.0, CLOSED, INFINITY, OPEN,
	      "anchor model: weight of d1 + d2 - d12"),

	K_INT(rhvae, n_lf, "3", 1, 1000, "RHVAE leapfrog steps K"),
	K_DBL(rhvae, eps_lf, "0.001", 0.0, OPEN, INFINITY, OPEN,
	      "RHVAE leapfrog step size"),
	K_DBL(rhvae, beta_zero, "0.3", 0.0, OPEN, 1.0, CLOSED,
	      "RHVAE initial tempering beta_0"),
	K_DBL(rhvae, temperature, "1.5", 0.0, OPEN, INFINITY, OPEN,
	      "RHVAE metric kernel temperature T"),
	K_DBL(rhvae, regularization, "0.01", 0.0, CLOSED, INFINITY, OPEN,
	      "RHVAE metric regularisation lambda (A = sum w M + lambda I)"),
	K_ENUMF(rhvae, logdet, logdet_of, "lu",
	       "log-determinant: lu (as torch.logdet: NaN when indefinite) or "
	       "cholesky (NaN and a reported failure)"),
	K_INT(rhvae, buffer_batches, "100", 1, 100000,
	      "training batches kept for the end-of-epoch metric"),
	K_BOOL(rhvae, beta_zero_as_sqrt, "true",
	       "quirk: beta_zero used where its square root belongs"),
	K_ENUM(rhvae, momentum, momentum_names, "metric",
	       "training momentum from the metric network's L(x) (quirk) or "
	       "the Cholesky factor of G(z0)"),
	K_ENUM(rhvae, position_step, position_names, "pythae",
	       "position step: pythae (z + eps A(z) rho', quirk) or "
	       "fixed_point (A re-evaluated)"),
	K_ENUM(rhvae, diag_activation, diag_names, "exp",
	       "activation on the diagonal of L: exp (pythae) or softplus "
	       "(mitigation)"),
	K_DBL(rhvae, grad_clip, "0", 0.0, CLOSED, INFINITY, OPEN,
	      "mitigation: clamp every gradient of H taken inside the "
	      "leapfrog to [-grad_clip, grad_clip]; 0 = off"),
	K_DBL(rhvae, logdet_jitter, "0", 0.0, CLOSED, INFINITY, OPEN,
	      "mitigation: log det(A + jitter I) instead of log det A"),
	K_BOOL(rhvae, second_order, "true",
	       "differentiate through the step-6.4 gradient (pythae); false "
	       "treats it as a constant"),

	K_BOOL(hvae, softplus_sigma, "true",
	       "HVAE quirk: sigma = softplus(logvar) instead of exp(logvar/2)"),
	K_BOOL(hvae, position_uses_rho, "true",
	       "HVAE quirk: position step z + eps rho instead of z + eps rho'"),

	K_INT(train, epochs, "10", 1, IMAX, "passes over the training images"),
	K_INT(train, batch, "64", 1, IMAX, "training batch size B"),
	K_INT(train, eval_batch, "64", 1, IMAX, "evaluation batch size"),
	K_INT(train, eval_every, "1", 1, IMAX,
	      "evaluate every this many epochs and after the last one (the "
	      "evaluation noise is its own stream; training is unchanged)"),
	K_U64(train, seed, "8", "seed of the shuffle and noise streams"),
	K_BOOL(train, shuffle, "true", "shuffle the training images every epoch"),
	K_INT(train, blas_threads, "1", 1, IMAX, "OpenBLAS threads"),
	K_ENUM(train, nan_check, nan_check_names, "strict",
	       "NaN checks: strict (every step), pythae (loss only, as pythae), off"),
	K_INT(train, max_steps, "0", 0, IMAX,
	      "stop after this many optimizer steps; 0 = no limit"),
	K_BOOL(train, skip_nonfinite, "false",
	       "mitigation: skip (no update) a batch whose loss or gradient "
	       "is non-finite, and go on; the first event is still recorded"),
	K_BOOL(train, flush_denormals, "false",
	       "treat subnormal floats as zero (x86 FTZ/DAZ): faster when Adam "
	       "moments of never-used weights decay into the subnormal range; "
	       "PyTorch keeps them (off)"),
	K_ENUM(train, precision, precision_names, "native",
	       "arithmetic: native (this binary), f32, f64 (run by "
	       "vaebench-f64), f16 or bf16 (emulated: every op output and "
	       "gradient rounded to half precision, overflow to Inf)"),
	K_INT(train, accumulate, "1", 1, IMAX,
	      "gradient accumulation: micro-batches of train.batch per "
	      "optimizer step (loss divided by it)"),
	K_ENUM(train, loss_scale, loss_scale_names, "none",
	       "loss scaling: none, static (scale_init), dynamic (PyTorch's "
	       "GradScaler: skip steps with non-finite gradients, back off, "
	       "grow after scale_interval good steps)"),
	K_DBL(train, scale_init, "65536", 0.0, OPEN, INFINITY, OPEN,
	      "initial (or static) loss scale"),
	K_DBL(train, scale_growth, "2", 1.0, OPEN, INFINITY, OPEN,
	      "dynamic loss scale: growth factor"),
	K_DBL(train, scale_backoff, "0.5", 0.0, OPEN, 1.0, OPEN,
	      "dynamic loss scale: backoff factor"),
	K_INT(train, scale_interval, "2000", 1, IMAX,
	      "dynamic loss scale: good steps between growths"),
	K_BOOL(train, sanity_check, "true",
	       "pythae's start-up forward on a first batch (draws a shuffle "
	       "and noise; the RHVAE buffers it)"),

	K_ENUMF(optim, kind, optim_kind_of, "adam", "optimizer"),
	K_DBL(optim, lr, "1e-3", 0.0, OPEN, INFINITY, OPEN, "learning rate"),
	K_DBL(optim, beta1, "0.9", 0.0, CLOSED, 1.0, OPEN,
	      "Adam first moment decay"),
	K_DBL(optim, beta2, "0.999", 0.0, CLOSED, 1.0, OPEN,
	      "Adam second moment decay"),
	K_DBL(optim, adam_eps, "1e-8", 0.0, CLOSED, INFINITY, OPEN,
	      "Adam denominator epsilon"),
	K_DBL(optim, weight_decay, "0", 0.0, CLOSED, INFINITY, OPEN,
	      "weight decay (L2 for sgd and adam, decoupled for adamw)"),
	K_DBL(optim, momentum, "0", 0.0, CLOSED, INFINITY, OPEN, "SGD momentum"),
	K_DBL(optim, dampening, "0", 0.0, CLOSED, INFINITY, OPEN,
	      "SGD momentum dampening"),
	K_BOOL(optim, nesterov, "false", "SGD Nesterov momentum"),
	K_ENUM(optim, clip, clip_names, "none",
	       "gradient clipping: none, norm (global L2 norm), value"),
	K_DBL(optim, clip_max, "1.0", 0.0, OPEN, INFINITY, OPEN,
	      "clipping threshold (norm or absolute value)"),
	K_DBL(optim, clip_eps, "1e-6", 0.0, CLOSED, INFINITY, OPEN,
	      "added to the norm when clipping by norm"),
	K_ENUMF(optim, schedule, schedule_of, "constant",
	       "learning rate schedule"),
	K_INT(optim, step_size, "1", 1, IMAX,
	      "step schedule: epochs between decays"),
	K_DBL(optim, gamma, "0.1", 0.0, OPEN, INFINITY, OPEN,
	      "step schedule: decay factor"),
	K_INT(optim, warmup_steps, "100", 1, IMAX,
	      "warmup schedule: optimizer steps of the linear warmup"),
	K_DBL(optim, min_lr, "0", 0.0, CLOSED, INFINITY, OPEN,
	      "cosine schedule: final learning rate"),

	K_INT(inject, nan_step, "-1", -1, IMAX,
	      "optimizer step at which a NaN is injected; -1 = off"),
	K_ENUM(inject, nan_phase, nan_phase_names, "input",
	       "where the fault is injected: input (a pixel of the batch), "
	       "param, grad, unnormalized (pixels 0..255 from that step on)"),
	K_ENUM(inject, value, inject_value_names, "nan",
	       "what is written: nan, inf, or scale (multiplied by "
	       "inject.scale)"),
	K_DBL(inject, scale, "1e20", -INFINITY, OPEN, INFINITY, OPEN,
	      "factor of inject.value = scale"),
	K_STR(inject, param, STR_PATH_OR_EMPTY, "",
	      "parameter tensor hit by nan_phase = param or grad; empty = "
	      "the flat buffer"),
	K_INT(inject, index, "0", -1, IMAX,
	      "element hit (pixel of the batch, element of the tensor); -1 = "
	      "every element"),

	K_ENUM(guard, mode, guard_mode_names, "cheap",
	       "cheap (loss, grad norm, params once a step) or anomaly (every "
	       "node, forward and backward: names the origin op)"),
	K_BOOL(guard, replay, "true",
	       "when the cheap guard fires, replay from the last checkpoint in "
	       "anomaly mode to name the origin op, node and cause"),
	K_INT(guard, precursors, "64", 0, 1000000,
	      "steps kept in the precursor ring (precursors.csv on failure); "
	      "also the running-median window"),
	K_DBL(guard, lead_factor, "10", 1.0, CLOSED, INFINITY, OPEN,
	      "lead time: first step whose grad norm exceeds this times its "
	      "running median"),
	K_STR(guard, watch, STR_PATH_OR_EMPTY, "",
	      "comma-separated node names whose max |value| the precursor "
	      "ring records (e.g. rhvae.L_diag)"),
};

#define N_KEYS N_ELEMS(keys)

/* ---- value parsing and checks ---- */

/* Longest accepted string value of d: fits its field and one INI line. */
static size_t str_max(const struct key_def *d)
{
	size_t line = CONFIG_LINE_MAX - strlen(d->key) - 3; /* "key = " */
	return d->size - 1 < line ? d->size - 1 : line;
}

static bool check_string(const struct key_def *d, const char *s)
{
	size_t n = strlen(s);
	if (n > str_max(d))
		return false;
	/* surrounding spaces would be trimmed on load; ';' may start an inih
	 * comment; control characters cannot be written on one line */
	if (n && (s[0] == ' ' || s[n - 1] == ' '))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f || ch == ';')
			return false;
	}
	switch (d->rule) {
	case STR_NAME:
		if (n == 0 || strspn(s, "abcdefghijklmnopqrstuvwxyz"
				     "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				     "0123456789._-") != n)
			return false;
		return strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
	case STR_PATH:
		return n > 0;
	case STR_PATH_OR_EMPTY:
		return true;
	}
	return false;
}

/* Finite decimal number, fully consumed (no hex, inf, nan). */
static bool parse_double(const char *s, double *out)
{
	char *end;
	if (!*s || s[strspn(s, "0123456789+-.eE")] != '\0')
		return false;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || !isfinite(v))
		return false;
	if (errno == ERANGE && v == 0.0)
		return false; /* a nonzero literal underflowed to zero */
	*out = v;
	return true;
}

/* Exponent form ("1e3", "2.5e3") of an exact integer of magnitude <= 2^53
 * (every such integer is exact in a double). */
static bool parse_exp_int(const char *s, double *out)
{
	double v;
	if (!strpbrk(s, "eE") || !parse_double(s, &v))
		return false;
	if (fabs(v) > 9007199254740992.0 || (double)(int64_t)v != v)
		return false;
	*out = v;
	return true;
}

static bool parse_i64(const char *s, int64_t *out)
{
	char *end;
	double v;
	if (!*s)
		return false;
	errno = 0;
	long long x = strtoll(s, &end, 10);
	if (end != s && *end == '\0') {
		if (errno == ERANGE)
			return false;
		*out = (int64_t)x;
		return true;
	}
	if (!parse_exp_int(s, &v))
		return false;
	*out = (int64_t)v;
	return true;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	double v;
	if (!*s || s[0] == '-')
		return false; /* strtoull would wrap "-1" */
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (end != s && *end == '\0') {
		if (errno == ERANGE)
			return false;
		*out = (uint64_t)x;
		return true;
	}
	if (!parse_exp_int(s, &v) || v < 0)
		return false;
	*out = (uint64_t)v;
	return true;
}

static bool parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	for (size_t i = 0; i < N_ELEMS(yes); i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

static bool double_in_range(const struct key_def *d, double v)
{
	if (d->lo_open ? !(v > d->dlo) : !(v >= d->dlo))
		return false;
	if (d->hi_open ? !(v < d->dhi) : !(v <= d->dhi))
		return false;
	return true;
}

/* Parses text s for key d and stores it in c; false (c untouched) when s
 * is not a valid value of d. */
static bool parse_value(const struct key_def *d, const char *s,
			struct config *c)
{
	void *p = (char *)c + d->offset;
	switch (d->type) {
	case CONFIG_TYPE_STRING:
		if (!check_string(d, s))
			return false;
		memcpy(p, s, strlen(s) + 1);
		return true;
	case CONFIG_TYPE_INT: {
		int64_t v;
		if (!parse_i64(s, &v) || v < d->lo || v > d->hi)
			return false;
		*(int64_t *)p = v;
		return true;
	}
	case CONFIG_TYPE_U64: {
		uint64_t v;
		if (!parse_u64(s, &v))
			return false;
		*(uint64_t *)p = v;
		return true;
	}
	case CONFIG_TYPE_DOUBLE: {
		double v;
		if (!parse_double(s, &v) || !double_in_range(d, v))
			return false;
		*(double *)p = v;
		return true;
	}
	case CONFIG_TYPE_BOOL: {
		bool v;
		if (!parse_bool(s, &v))
			return false;
		*(bool *)p = v;
		return true;
	}
	case CONFIG_TYPE_ENUM:
		for (int i = 0; i < enum_count(d); i++) {
			if (strcmp(s, enum_at(d, i)) == 0) {
				*(int *)p = i;
				return true;
			}
		}
		return false;
	}
	return false;
}

/* "what was expected" for key d, e.g. "an integer in 1..4096". */
static void expect_text(const struct key_def *d, char *buf, size_t cap)
{
	switch (d->type) {
	case CONFIG_TYPE_STRING:
		if (d->rule == STR_NAME)
			snprintf(buf, cap, "a name of 1 to %zu characters "
				 "A-Z a-z 0-9 . _ - (not . or ..)", str_max(d));
		else
			snprintf(buf, cap, "a %spath of at most %zu characters "
				 "without ';', control characters or "
				 "surrounding spaces",
				 d->rule == STR_PATH ? "non-empty " : "",
				 str_max(d));
		return;
	case CONFIG_TYPE_INT:
		if (d->hi == IMAX)
			snprintf(buf, cap, "an integer >= %" PRId64, d->lo);
		else
			snprintf(buf, cap, "an integer in %" PRId64 "..%" PRId64,
				 d->lo, d->hi);
		return;
	case CONFIG_TYPE_U64:
		snprintf(buf, cap, "an integer in 0..%" PRIu64, UINT64_MAX);
		return;
	case CONFIG_TYPE_DOUBLE:
		if (isinf(d->dhi))
			snprintf(buf, cap, "a number %s %g",
				 d->lo_open ? ">" : ">=", d->dlo);
		else
			snprintf(buf, cap, "a number in %c%g, %g%c",
				 d->lo_open ? '(' : '[', d->dlo, d->dhi,
				 d->hi_open ? ')' : ']');
		return;
	case CONFIG_TYPE_BOOL:
		snprintf(buf, cap, "true or false");
		return;
	case CONFIG_TYPE_ENUM: {
		size_t len = (size_t)snprintf(buf, cap, "one of ");
		for (int i = 0; i < enum_count(d) && len < cap; i++)
			len += (size_t)snprintf(buf + len, cap - len, "%s%s",
						i ? "|" : "", enum_at(d, i));
		return;
	}
	}
	snprintf(buf, cap, "a value");
}

/* s as quoted in messages: cut to fit cap with "..." (cap >= 8). */
static void clip_text(const char *s, char *buf, size_t cap)
{
	if (strlen(s) < cap)
		memcpy(buf, s, strlen(s) + 1);
	else
		snprintf(buf, cap, "%.*s...", (int)(cap - 4), s);
}

/* Shortest %.Ng, N in 6..17, that reads back as v. */
static void format_double(double v, char *buf, size_t cap)
{
	for (int prec = 6; prec <= 17; prec++) {
		snprintf(buf, cap, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

static enum vb_status format_value(const struct config *c,
				   const struct key_def *d, char *buf,
				   size_t cap, struct vb_error *err)
{
	const void *p = (const char *)c + d->offset;
	char tmp[64] = "";
	const char *s = tmp;
	switch (d->type) {
	case CONFIG_TYPE_STRING:
		if (!memchr(p, '\0', d->size))
			return vb_fail(err, VB_ERR_CONFIG,
				       "config: %s is not NUL-terminated",
				       d->name);
		s = p;
		break;
	case CONFIG_TYPE_INT:
		snprintf(tmp, sizeof tmp, "%" PRId64, *(const int64_t *)p);
		break;
	case CONFIG_TYPE_U64:
		snprintf(tmp, sizeof tmp, "%" PRIu64, *(const uint64_t *)p);
		break;
	case CONFIG_TYPE_DOUBLE:
		format_double(*(const double *)p, tmp, sizeof tmp);
		break;
	case CONFIG_TYPE_BOOL:
		s = *(const bool *)p ? "true" : "false";
		break;
	case CONFIG_TYPE_ENUM: {
		int v = *(const int *)p;
		if (v < 0 || v >= enum_count(d))
			return vb_fail(err, VB_ERR_CONFIG,
				       "config: %s holds %d, expected 0..%d",
				       d->name, v, enum_count(d) - 1);
		s = enum_at(d, v);
		break;
	}
	}
	size_t n = strlen(s);
	if (n + 1 > cap)
		return vb_fail(err, VB_ERR_INTERNAL,
			       "config: value of %s needs %zu bytes, buffer "
			       "holds %zu", d->name, n + 1, cap);
	memcpy(buf, s, n + 1);
	return VB_OK;
}

/* Formats key d of c and checks the text loads back (range, string rules). */
static enum vb_status check_key(const struct config *c,
				const struct key_def *d, struct vb_error *err)
{
	char buf[CONFIG_VALUE_LEN], shown[96], expect[160];
	struct config scratch;
	enum vb_status st = format_value(c, d, buf, sizeof buf, err);
	if (st != VB_OK)
		return st;
	if (parse_value(d, buf, &scratch))
		return VB_OK;
	clip_text(buf, shown, sizeof shown);
	expect_text(d, expect, sizeof expect);
	return vb_fail(err, VB_ERR_CONFIG, "config: %s = \"%s\": expected %s",
		       d->name, shown, expect);
}

static enum vb_status check_all(const struct config *c, struct vb_error *err)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		enum vb_status st = check_key(c, &keys[i], err);
		if (st != VB_OK)
			return st;
	}
	return VB_OK;
}

/* ---- key lookup ---- */

static int find_key(const char *section, const char *key)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (strcmp(keys[i].section, section) == 0 &&
		    strcmp(keys[i].key, key) == 0)
			return (int)i;
	return -1;
}

static bool known_section(const char *section)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (strcmp(keys[i].section, section) == 0)
			return true;
	return false;
}

/* "run|data|..." (section == NULL) or "kind|arch|..." of one section. */
static void list_names(const char *section, char *buf, size_t cap)
{
	size_t len = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < N_KEYS && len < cap; i++) {
		const char *s;
		if (section) {
			if (strcmp(keys[i].section, section) != 0)
				continue;
			s = keys[i].key;
		} else {
			if (i > 0 && strcmp(keys[i].section,
					    keys[i - 1].section) == 0)
				continue;
			s = keys[i].section;
		}
		len += (size_t)snprintf(buf + len, cap - len, "%s%s",
					len ? "|" : "", s);
	}
}

/* Message tail for an unknown section.key: what was expected. */
static void unknown_text(const char *section, const char *key, char *buf,
			 size_t cap)
{
	char list[320];
	if (!known_section(section)) {
		list_names(NULL, list, sizeof list);
		snprintf(buf, cap, "unknown section [%.64s] (key %.64s), "
			 "expected one of %s", section, key, list);
	} else {
		list_names(section, list, sizeof list);
		snprintf(buf, cap, "unknown key %.64s.%.64s, expected one of "
			 "%s", section, key, list);
	}
}

/* ---- public: table access ---- */

size_t config_key_count(void)
{
	return N_KEYS;
}

const char *config_key_name(size_t i)
{
	return i < N_KEYS ? keys[i].name : NULL;
}

const char *config_key_help(size_t i)
{
	return i < N_KEYS ? keys[i].help : NULL;
}

enum config_type config_key_type(size_t i)
{
	assert(i < N_KEYS);
	return keys[i].type;
}

int config_key_index(const char *name)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return (int)i;
	return -1;
}

static const struct key_def *enum_key(const char *key)
{
	int i = config_key_index(key);
	if (i < 0 || keys[i].type != CONFIG_TYPE_ENUM)
		return NULL;
	return &keys[i];
}

const char *config_enum_name(const char *key, int value)
{
	const struct key_def *d = enum_key(key);
	if (!d || value < 0 || value >= enum_count(d))
		return NULL;
	return enum_at(d, value);
}

int config_enum_count(const char *key)
{
	const struct key_def *d = enum_key(key);
	return d ? enum_count(d) : 0;
}

int config_enum_value(const char *key, const char *name)
{
	const struct key_def *d = enum_key(key);
	if (!d)
		return -1;
	for (int i = 0; i < enum_count(d); i++)
		if (strcmp(enum_at(d, i), name) == 0)
			return i;
	return -1;
}

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < N_KEYS; i++) {
		bool ok = parse_value(&keys[i], keys[i].def, c);
		assert(ok && "config: a default fails its own check");
		(void)ok;
	}
}

enum vb_status config_get_at(const struct config *c, size_t i, char *buf,
			     size_t cap, struct vb_error *err)
{
	if (i >= N_KEYS)
		return vb_fail(err, VB_ERR_CONFIG,
			       "config: key index %zu, expected < %zu", i,
			       (size_t)N_KEYS);
	return format_value(c, &keys[i], buf, cap, err);
}

enum vb_status config_get(const struct config *c, const char *name, char *buf,
			  size_t cap, struct vb_error *err)
{
	int i = config_key_index(name);
	if (i < 0)
		return vb_fail(err, VB_ERR_CONFIG,
			       "config: unknown key %.128s", name);
	return config_get_at(c, (size_t)i, buf, cap, err);
}

/* ---- public: setting values ---- */

enum vb_status config_set_key(struct config *c, const char *name,
			      const char *value, struct vb_error *err)
{
	char shown[96], expect[160];
	int i = config_key_index(name);
	if (i < 0)
		return vb_fail(err, VB_ERR_CONFIG,
			       "config: unknown key %.128s", name);
	if (parse_value(&keys[i], value, c))
		return VB_OK;
	clip_text(value, shown, sizeof shown);
	expect_text(&keys[i], expect, sizeof expect);
	return vb_fail(err, VB_ERR_CONFIG, "config: %s = \"%s\": expected %s",
		       keys[i].name, shown, expect);
}

/* [s, e) without surrounding whitespace. */
static void trim(const char **s, const char **e)
{
	while (*s < *e && (**s == ' ' || **s == '\t'))
		(*s)++;
	while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
		(*e)--;
}

enum vb_status config_set(struct config *c, const char *assignment,
			  struct vb_error *err)
{
	char shown[224], name[128], expect[320];
	const char *eq = strchr(assignment, '=');
	const char *ks = assignment, *ke = eq, *vs, *ve;
	clip_text(assignment, shown, sizeof shown);
	if (!eq)
		return vb_fail(err, VB_ERR_CONFIG, "config: --set %s: expected "
			       "section.key=value", shown);
	trim(&ks, &ke);
	vs = eq + 1;
	ve = vs + strlen(vs);
	trim(&vs, &ve);

	size_t klen = (size_t)(ke - ks);
	const char *dot = memchr(ks, '.', klen);
	if (klen >= sizeof name || !dot)
		return vb_fail(err, VB_ERR_CONFIG, "config: --set %s: expected "
			       "section.key=value", shown);
	memcpy(name, ks, klen);
	name[klen] = '\0';
	int i = config_key_index(name);
	if (i < 0) {
		name[dot - ks] = '\0';
		unknown_text(name, name + (dot - ks) + 1, expect, sizeof expect);
		return vb_fail(err, VB_ERR_CONFIG, "config: --set %s: %s",
			       shown, expect);
	}

	size_t vlen = (size_t)(ve - vs);
	char *value = malloc(vlen + 1);
	if (!value)
		return vb_fail(err, VB_ERR_NOMEM,
			       "config: --set %s: out of memory", shown);
	memcpy(value, vs, vlen);
	value[vlen] = '\0';
	bool ok = parse_value(&keys[i], value, c);
	free(value);
	if (ok)
		return VB_OK;
	expect_text(&keys[i], expect, sizeof expect);
	return vb_fail(err, VB_ERR_CONFIG, "config: --set %s: expected %s",
		       shown, expect);
}

/* ---- public: loading an INI file ---- */

/* State of one config_load_file: the reader counts lines and keeps the
 * raw text, the handler applies keys; the first problem sets failed and
 * makes the reader end the parse. */
struct load_ctx {
	FILE *f;
	const char *path;
	struct config work;        /* copied to the caller only on success */
	char *line;                /* getline buffer: the current raw line */
	size_t line_cap;
	int lineno;                /* of the current line, from 1 */
	int last_key;              /* key of the previous handler call, -1 */
	int first_line[N_KEYS];    /* line where each key was set, 0 = not */
	bool failed;
	enum vb_status status;
	int err_line;
	char msg[VB_ERROR_LEN];
};

static char *load_reader(char *str, int num, void *stream)
{
	struct load_ctx *x = stream;
	if (x->failed)
		return NULL;
	errno = 0;
	ssize_t n = getline(&x->line, &x->line_cap, x->f);
	if (n < 0) {
		if (ferror(x->f)) {
			x->failed = true;
			x->status = errno == ENOMEM ? VB_ERR_NOMEM : VB_ERR_IO;
			x->err_line = x->lineno + 1;
			snprintf(x->msg, sizeof x->msg,
				 "config: cannot read %s: %s", x->path,
				 strerror(errno ? errno : EIO));
		}
		return NULL;
	}
	x->lineno++;
	size_t len = (size_t)n;
	size_t max = CONFIG_LINE_MAX;
	if (num > 0 && (size_t)num - 1 < max)
		max = (size_t)num - 1;
	if (memchr(x->line, '\0', len)) {
		x->failed = true;
		x->status = VB_ERR_CONFIG;
		x->err_line = x->lineno;
		snprintf(x->msg, sizeof x->msg, "config: %s:%d: NUL byte, "
			 "expected text", x->path, x->lineno);
		return NULL;
	}
	while (len && (x->line[len - 1] == '\n' || x->line[len - 1] == '\r'))
		len--;
	if (len > max) {
		x->failed = true;
		x->status = VB_ERR_CONFIG;
		x->err_line = x->lineno;
		snprintf(x->msg, sizeof x->msg, "config: %s:%d: line of %zu "
			 "characters, expected at most %zu", x->path,
			 x->lineno, len, max);
		return NULL;
	}
	memcpy(str, x->line, len);
	str[len] = '\0';
	return str;
}

/* Records the first problem as "config: PATH:LINE: " + printf(fmt, ...);
 * returns 0 (inih's "error" from the handler). */
static int load_fail(struct load_ctx *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int load_fail(struct load_ctx *x, const char *fmt, ...)
{
	va_list ap;
	int n;
	x->failed = true;
	x->status = VB_ERR_CONFIG;
	x->err_line = x->lineno;
	n = snprintf(x->msg, sizeof x->msg, "config: %s:%d: ", x->path,
		     x->lineno);
	if (n < 0 || (size_t)n >= sizeof x->msg)
		return 0;
	va_start(ap, fmt);
	vsnprintf(x->msg + n, sizeof x->msg - (size_t)n, fmt, ap);
	va_end(ap);
	return 0;
}

static int load_handler(void *user, const char *section, const char *key,
			const char *value)
{
	struct load_ctx *x = user;
	char what[VB_ERROR_LEN], shown[96], expect[320];
	if (x->failed)
		return 0;
	if (!*section)
		return load_fail(x, "key %.64s outside any section, expected "
				 "a [section] line first", key);
	int k = find_key(section, key);
	if (k < 0) {
		unknown_text(section, key, what, sizeof what);
		return load_fail(x, "%s", what);
	}
	/* inih passes an indented line after a key as more of its value */
	if (k == x->last_key && (x->line[0] == ' ' || x->line[0] == '\t'))
		return load_fail(x, "indented line continues %s, expected "
				 "\"key = value\" (multi-line values are not "
				 "supported)", keys[k].name);
	if (x->first_line[k])
		return load_fail(x, "%s given twice (first at line %d), "
				 "expected each key once", keys[k].name,
				 x->first_line[k]);
	x->first_line[k] = x->lineno;
	x->last_key = k;
	if (parse_value(&keys[k], value, &x->work))
		return 1;
	clip_text(value, shown, sizeof shown);
	expect_text(&keys[k], expect, sizeof expect);
	return load_fail(x, "%s = \"%s\": expected %s", keys[k].name, shown,
			 expect);
}

enum vb_status config_load_file(struct config *c, const char *path,
				struct vb_error *err)
{
	struct load_ctx *x = calloc(1, sizeof *x);
	enum vb_status st = VB_OK;
	if (!x)
		return vb_fail(err, VB_ERR_NOMEM, "config: %s: out of memory",
			       path);
	x->f = fopen(path, "r");
	if (!x->f) {
		st = vb_fail(err, VB_ERR_IO, "config: cannot open %s: %s", path,
			     strerror(errno));
		free(x);
		return st;
	}
	x->path = path;
	x->work = *c;
	x->last_key = -1;
	int rc = ini_parse_stream(load_reader, x, load_handler, x);
	if (rc == -2) {
		st = vb_fail(err, VB_ERR_NOMEM, "config: %s: out of memory",
			     path);
	} else if (x->failed && x->status != VB_ERR_CONFIG) {
		st = vb_fail(err, x->status, "%s", x->msg);
	} else if (rc > 0 && (!x->failed || rc < x->err_line)) {
		/* inih found a line that is neither [section], key = value
		 * nor a comment (it does not call the handler for it) */
		st = vb_fail(err, VB_ERR_CONFIG, "config: %s:%d: expected "
			     "\"key = value\", \"[section]\" or a comment",
			     path, rc);
	} else if (x->failed) {
		st = vb_fail(err, x->status, "%s", x->msg);
	} else if (rc != 0) {
		st = vb_fail(err, VB_ERR_INTERNAL, "config: %s: inih returned "
			     "%d", path, rc);
	} else {
		*c = x->work;
	}
	free(x->line);
	fclose(x->f);
	free(x);
	return st;
}

/* ---- public: validation ---- */

/* begin < end (end != -1), and for the synthetic dataset within n. */
static enum vb_status check_range(const struct config *c, const char *what,
				  int64_t begin, int64_t end, const char *n_key,
				  int64_t n, struct vb_error *err)
{
	if (end != -1 && begin >= end)
		return vb_fail(err, VB_ERR_CONFIG, "config: data.%s_end = %"
			       PRId64 ": expected -1 or > data.%s_begin = %"
			       PRId64, what, end, what, begin);
	if (c->data.dataset != CONFIG_DATASET_SYNTHETIC)
		return VB_OK;
	if (end > n)
		return vb_fail(err, VB_ERR_CONFIG, "config: data.%s_end = %"
			       PRId64 ": expected -1 or <= data.%s = %" PRId64
			       " for the synthetic dataset", what, end, n_key,
			       n);
	if (begin >= n)
		return vb_fail(err, VB_ERR_CONFIG, "config: data.%s_begin = %"
			       PRId64 ": expected < data.%s = %" PRId64
			       " for the synthetic dataset", what, begin, n_key,
			       n);
	return VB_OK;
}

enum vb_status config_validate(const struct config *c, struct vb_error *err)
{
	enum vb_status st = check_all(c, err);
	if (st != VB_OK)
		return st;
	st = check_range(c, "train", c->data.train_begin, c->data.train_end,
			 "synthetic_n", c->data.synthetic_n, err);
	if (st != VB_OK)
		return st;
	st = check_range(c, "eval", c->data.eval_begin, c->data.eval_end,
			 "synthetic_eval_n", c->data.synthetic_eval_n, err);
	if (st != VB_OK)
		return st;
	const struct config_optim *o = &c->optim;
	if (o->kind == OPTIM_SGD && o->nesterov &&
	    (!(o->momentum > 0) || o->dampening != 0)) {
		char m[32], d[32];
		format_double(o->momentum, m, sizeof m);
		format_double(o->dampening, d, sizeof d);
		return vb_fail(err, VB_ERR_CONFIG, "config: optim.nesterov = "
			       "true: expected optim.momentum > 0 and "
			       "optim.dampening = 0 (have %s and %s)", m, d);
	}
	if (o->schedule == OPTIM_SCHEDULE_COSINE && o->min_lr > o->lr) {
		char m[32], l[32];
		format_double(o->min_lr, m, sizeof m);
		format_double(o->lr, l, sizeof l);
		return vb_fail(err, VB_ERR_CONFIG, "config: optim.min_lr = %s: "
			       "expected <= optim.lr = %s for the cosine "
			       "schedule", m, l);
	}
	return VB_OK;
}

/* ---- public: writing ---- */

static enum vb_status write_ini(const struct config *c, FILE *f,
				const char *label, struct vb_error *err)
{
	char buf[CONFIG_VALUE_LEN];
	enum vb_status st = check_all(c, err);
	if (st != VB_OK)
		return st;
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct key_def *d = &keys[i];
		st = format_value(c, d, buf, sizeof buf, err);
		if (st != VB_OK)
			return st;
		if (i == 0 || strcmp(d->section, keys[i - 1].section) != 0)
			fprintf(f, "%s[%s]\n", i ? "\n" : "", d->section);
		fprintf(f, "%s =%s%s\n", d->key, *buf ? " " : "", buf);
	}
	if (fflush(f) != 0 || ferror(f))
		return vb_fail(err, VB_ERR_IO, "config: cannot write %s: %s",
			       label, strerror(errno ? errno : EIO));
	return VB_OK;
}

enum vb_status config_write(const struct config *c, FILE *f,
			    struct vb_error *err)
{
	return write_ini(c, f, "config stream", err);
}

/* What config_write_file hands to its writer. */
struct ini_job {
	const struct config *c;
	const char *path;
};

static enum vb_status ini_writer(FILE *f, void *ctx, struct vb_error *err)
{
	const struct ini_job *j = ctx;
	return write_ini(j->c, f, j->path, err);
}

enum vb_status config_write_file(const struct config *c, const char *path,
				 struct vb_error *err)
{
	struct vb_error io = {0};
	struct ini_job j = {c, path};
	enum vb_status st = files_write_with(path, ini_writer, &j, true, &io);
	if (st == VB_ERR_IO)
		return vb_fail(err, VB_ERR_IO, "config: cannot create %s (%s)",
			       path, io.msg);
	if (st != VB_OK && err)
		*err = io;
	return st;
}
