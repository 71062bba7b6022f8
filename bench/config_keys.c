/* config_keys: the settings table (config_keys.h): every key with its
 * field, default, range, names and help, and the enum name lists of the
 * config-only enums. The enums a module owns are named by its name
 * function. */
#include "config_keys.h"

#include <math.h>
#include <string.h>

#include "config.h"

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
static const char *const nll_estimator_names[] = {
	[CONFIG_NLL_PYTHAE] = "pythae", [CONFIG_NLL_CONSISTENT] = "consistent"
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
static const char *const kernels_names[] = {
	[CONFIG_KERNELS_FAST] = "fast", [CONFIG_KERNELS_PORTABLE] = "portable"
};
static const char *const nan_check_names[] = {
	[CONFIG_NAN_CHECK_STRICT] = "strict",
	[CONFIG_NAN_CHECK_PYTHAE] = "pythae", [CONFIG_NAN_CHECK_OFF] = "off"
};
static const char *const clip_names[] = {
	[CONFIG_CLIP_NONE] = "none", [CONFIG_CLIP_NORM] = "norm",
	[CONFIG_CLIP_VALUE] = "value", [CONFIG_CLIP_ADAPTIVE] = "adaptive"
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
_Static_assert(N_ELEMS(nll_estimator_names) == CONFIG_NLL_COUNT, "nll");
_Static_assert(N_ELEMS(nan_check_names) == CONFIG_NAN_CHECK_COUNT, "nan_check");
_Static_assert(N_ELEMS(kernels_names) == CONFIG_KERNELS_COUNT, "kernels");
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
int config_keys_enum_count(const struct config_keys_def *d)
{
	int n = 0;
	if (!d->name_of)
		return d->n_names;
	while (strcmp(d->name_of(n), "unknown") != 0)
		n++;
	return n;
}

/* Name of value v (0 <= v < config_keys_enum_count(d)) of enum key d. */
const char *config_keys_enum_at(const struct config_keys_def *d, int v)
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

#define IMAX CONFIG_KEYS_IMAX
#define OPEN true
#define CLOSED false

const struct config_keys_def config_keys_table[] = {
	K_STR(run, name, CONFIG_KEYS_NAME, "run",
	      "run name; the run folder is out_dir/name"),
	K_STR(run, out_dir, CONFIG_KEYS_PATH, "runs",
	      "folder holding the run folders"),
	K_ENUM(run, progress, progress_names, "auto",
	       "progress output: auto (a bar when stderr is a terminal, else "
	       "a line every run.progress_every seconds), on, off"),
	K_DBL(run, progress_every, "30", 0, OPEN, 1e9, CLOSED,
	      "seconds between two progress lines (step, images/s, ETA; "
	      "evaluation batches) when stderr is not a terminal"),
	K_INT(run, checkpoint_every, "0", 0, IMAX,
	      "checkpoint every this many optimizer steps; 0 = only the final one"),

	K_ENUM(data, dataset, dataset_names, "mnist", "dataset"),
	K_STR(data, dir, CONFIG_KEYS_PATH_OR_EMPTY, "",
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
	K_BOOL(data, drop_last, "false",
	       "leave out each epoch's last partial training batch (as "
	       "PyTorch's DataLoader drop_last)"),

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
	K_INT(train, blas_threads, "1", 1, IMAX,
	      "threads of one run (op_set_threads): 1 = OpenBLAS and serial "
	      "loops; N > 1 = one OpenMP pool of N for oneDNN, the products "
	      "and the elementwise loops (OpenBLAS stays at 1); results "
	      "differ from 1 thread in the last bits"),
	K_ENUM(train, kernels, kernels_names, "fast",
	       "compute kernels: fast (convolutions through oneDNN in the "
	       "float build) or portable (im2col + the OpenBLAS kernel pinned "
	       "by ISA class: bit-identical on any CPU of one ISA class); "
	       "vaebench-f64 runs the portable kernels either way"),
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
	       "gradient clipping: none, norm (global L2 norm), value, "
	       "adaptive (global norm at clip_k x the running median of the "
	       "last clip_window norms: spikes only)"),
	K_DBL(optim, clip_max, "1.0", 0.0, OPEN, INFINITY, OPEN,
	      "clipping threshold (norm or absolute value)"),
	K_DBL(optim, clip_eps, "1e-6", 0.0, CLOSED, INFINITY, OPEN,
	      "added to the norm when clipping by norm"),
	K_DBL(optim, clip_k, "10", 0.0, OPEN, INFINITY, OPEN,
	      "adaptive clipping: threshold = clip_k x the median of the "
	      "recent gradient norms (before this step's)"),
	K_INT(optim, clip_window, "50", 1, 1000000,
	      "adaptive clipping: gradient norms kept for the median"),
	K_INT(optim, clip_warmup, "10", 1, 1000000,
	      "adaptive clipping: norms held before the first clip "
	      "(<= clip_window)"),
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
	K_STR(inject, param, CONFIG_KEYS_PATH_OR_EMPTY, "",
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
	K_STR(guard, watch, CONFIG_KEYS_PATH_OR_EMPTY, "",
	      "comma-separated node names whose max |value| the precursor "
	      "ring records (e.g. rhvae.L_diag)"),

	K_INT(eval, nll_samples, "100", 0, IMAX,
	      "importance samples per image of the held-out NLL (pythae's "
	      "get_nll estimate) at the best and the last finite epoch; 0 = "
	      "off (ResNet RHVAE, 50 images x 100 samples: about 1/3 of an "
	      "epoch's time per evaluation)"),
	K_INT(eval, nll_images, "50", 1, IMAX,
	      "held-out NLL on the first this many evaluation images (fewer "
	      "when the evaluation set is smaller)"),
	K_INT(eval, nll_chunk, "100", 1, IMAX,
	      "held-out NLL: importance samples per forward (memory)"),
	K_ENUM(eval, nll_estimator, nll_estimator_names, "pythae",
	       "held-out NLL: pythae (pythae 0.1.2's get_nll per model: the "
	       "RHVAE's omits the tempering Jacobian, d log b nats; the "
	       "HVAE's is not a likelihood) or consistent (one importance-"
	       "sampling estimate of -log p(x) for every model; equal to "
	       "pythae's for the VAE)"),
};

const size_t config_keys_count = N_ELEMS(config_keys_table);
_Static_assert(N_ELEMS(config_keys_table) <= CONFIG_KEYS_MAX,
	       "CONFIG_KEYS_MAX too small");

/* The dependency list: a key takes effect only when its requirement holds
 * (read from the code that uses each key: runconfig.c, models/, step.c,
 * inject.c, datasets/preprocess.c). A requirement is one or more
 * alternatives separated by " | ", each "section.key = v1,v2" (the other
 * key has one of these canonical values) or "section.key != v1,v2" (none
 * of them); several rules for one key must all hold. Sweeps refuse an
 * axis value or a mitigation setting whose requirement fails in its cell
 * (sweep_plan.c): it would only copy another cell. */
struct config_keys_require {
	const char *key;
	const char *when;
};

static const struct config_keys_require requires_table[] = {
	{ "data.standardize_eps", "data.standardize = true" },
	/* non-finite pixels arise from standardising or an injected input
	 * fault (the raw MNIST bytes are finite) */
	{ "data.nonfinite", "data.standardize = true | inject.nan_step != -1" },
	{ "data.synthetic_n", "data.dataset = synthetic" },
	{ "data.synthetic_eval_n", "data.dataset = synthetic" },
	/* the ResNet and ConvNet encoder/decoder have fixed widths and
	 * activations; the RHVAE's metric network is fixed too */
	{ "model.hidden", "model.arch = mlp" },
	{ "nets.activation", "model.arch = mlp" },
	{ "nets.leaky_slope", "model.arch = mlp" },
	{ "nets.batchnorm", "model.arch = mlp" },
	{ "model.logvar_min", "model.logvar_clamp = true" },
	{ "model.logvar_max", "model.logvar_clamp = true" },
	{ "model.bce_eps", "model.recon = bce" },
	{ "nets.leaky_slope", "nets.activation = leaky_relu" },
	{ "nets.init_scale", "nets.init = scaled" },
	{ "nets.bias_value", "nets.bias_fill = true" },
	{ "nets.bn_eps", "nets.batchnorm = true | model.arch = convnet" },
	{ "nets.bn_momentum", "nets.batchnorm = true | model.arch = convnet" },
	{ "nets.bn_momentum", "nets.bn_track_running_stats = true" },
	{ "nets.bn_track_running_stats",
	  "nets.batchnorm = true | model.arch = convnet" },
	{ "nets.bn_eval", "nets.batchnorm = true | model.arch = convnet" },
	{ "nets.bn_eval", "nets.bn_track_running_stats = true" },
	{ "anchor.eps_placement", "model.kind = anchor" },
	{ "anchor.eps", "model.kind = anchor" },
	{ "anchor.weight", "model.kind = anchor" },
	/* the HVAE shares the leapfrog settings (models/hvae.c) */
	{ "rhvae.n_lf", "model.kind = rhvae,hvae" },
	{ "rhvae.eps_lf", "model.kind = rhvae,hvae" },
	{ "rhvae.beta_zero", "model.kind = rhvae,hvae" },
	{ "rhvae.temperature", "model.kind = rhvae" },
	{ "rhvae.regularization", "model.kind = rhvae" },
	{ "rhvae.logdet", "model.kind = rhvae" },
	{ "rhvae.buffer_batches", "model.kind = rhvae" },
	{ "rhvae.beta_zero_as_sqrt", "model.kind = rhvae" },
	{ "rhvae.momentum", "model.kind = rhvae" },
	{ "rhvae.position_step", "model.kind = rhvae" },
	{ "rhvae.diag_activation", "model.kind = rhvae" },
	{ "rhvae.grad_clip", "model.kind = rhvae" },
	{ "rhvae.logdet_jitter", "model.kind = rhvae" },
	{ "rhvae.second_order", "model.kind = rhvae" },
	{ "hvae.softplus_sigma", "model.kind = hvae" },
	{ "hvae.position_uses_rho", "model.kind = hvae" },
	{ "train.scale_init", "train.loss_scale = static,dynamic" },
	{ "train.scale_growth", "train.loss_scale = dynamic" },
	{ "train.scale_backoff", "train.loss_scale = dynamic" },
	{ "train.scale_interval", "train.loss_scale = dynamic" },
	{ "optim.beta1", "optim.kind = adam,adamw" },
	{ "optim.beta2", "optim.kind = adam,adamw" },
	{ "optim.adam_eps", "optim.kind = adam,adamw" },
	{ "optim.momentum", "optim.kind = sgd" },
	{ "optim.nesterov", "optim.kind = sgd" },
	{ "optim.dampening", "optim.kind = sgd" },
	{ "optim.dampening", "optim.momentum != 0" },
	{ "optim.clip_max", "optim.clip = norm,value" },
	{ "optim.clip_eps", "optim.clip = norm" },
	{ "optim.step_size", "optim.schedule = step" },
	{ "optim.gamma", "optim.schedule = step" },
	{ "optim.warmup_steps", "optim.schedule = warmup" },
	{ "optim.min_lr", "optim.schedule = cosine" },
	{ "inject.nan_phase", "inject.nan_step != -1" },
	{ "inject.value", "inject.nan_step != -1" },
	{ "inject.value", "inject.nan_phase = input,param,grad" },
	{ "inject.scale", "inject.nan_step != -1" },
	{ "inject.scale", "inject.value = scale | inject.nan_phase = unnormalized" },
	{ "inject.param", "inject.nan_step != -1" },
	{ "inject.param", "inject.nan_phase = param,grad" },
	{ "inject.index", "inject.nan_step != -1" },
	{ "inject.index", "inject.nan_phase = input,param,grad" },
	{ "guard.replay", "guard.mode = cheap" },
};

/* One alternative "k = a,b" / "k != a,b" of a requirement, text[0..len):
 * its key index, negation and value list (into vals, cap bytes). false
 * when it does not parse or names an unknown key. */
static bool parse_alt(const char *text, size_t len, int *key, bool *neg,
		      char *vals, size_t cap)
{
	char buf[256], *eq, *k, *v;
	size_t n;
	if (len >= sizeof buf)
		return false;
	memcpy(buf, text, len);
	buf[len] = '\0';
	eq = strchr(buf, '=');
	if (!eq || eq == buf)
		return false;
	*neg = eq[-1] == '!';
	eq[*neg ? -1 : 0] = '\0';
	k = buf;
	while (*k == ' ')
		k++;
	n = strlen(k);
	while (n && k[n - 1] == ' ')
		k[--n] = '\0';
	v = eq + 1;
	while (*v == ' ')
		v++;
	n = strlen(v);
	while (n && v[n - 1] == ' ')
		v[--n] = '\0';
	*key = config_key_index(k);
	if (*key < 0 || !*v || n >= cap)
		return false;
	memcpy(vals, v, n + 1);
	return true;
}

/* Whether value (canonical) is one of the comma-separated vals. */
static bool in_list(const char *vals, const char *value)
{
	size_t n = strlen(value);
	for (const char *p = vals; *p;) {
		const char *q = strchr(p, ',');
		size_t l = q ? (size_t)(q - p) : strlen(p);
		if (l == n && !strncmp(p, value, n))
			return true;
		p += l + (q ? 1 : 0);
	}
	return false;
}

/* Whether rule r holds in c; on failure why gets "WHEN (here k = v)". */
static bool rule_holds(const struct config_keys_require *r,
		       const struct config *c, char *why, size_t cap)
{
	const char *p = r->when;
	char here[512] = "";
	size_t hl = 0;
	while (*p) {
		const char *bar = strstr(p, " | ");
		size_t len = bar ? (size_t)(bar - p) : strlen(p);
		char vals[192], cur[CONFIG_VALUE_LEN];
		int key;
		bool neg;
		if (parse_alt(p, len, &key, &neg, vals, sizeof vals) &&
		    config_get_at(c, (size_t)key, cur, sizeof cur, NULL) ==
			    VB_OK) {
			if (in_list(vals, cur) != neg)
				return true;
			hl += (size_t)snprintf(here + hl, sizeof here - hl,
					       "%s%s = %s", hl ? ", " : "",
					       config_key_name((size_t)key),
					       cur);
			if (hl >= sizeof here)
				hl = sizeof here - 1;
		}
		p += len + (bar ? 3 : 0);
	}
	if (why && cap)
		snprintf(why, cap, "%s (here %s)", r->when, here);
	return false;
}

bool config_key_effective(const struct config *c, size_t i, char *why,
			  size_t cap)
{
	const char *name = config_key_name(i);
	if (why && cap)
		why[0] = '\0';
	if (!name)
		return true;
	for (size_t k = 0; k < N_ELEMS(requires_table); k++)
		if (!strcmp(requires_table[k].key, name) &&
		    !rule_holds(&requires_table[k], c, why, cap))
			return false;
	return true;
}

enum vb_status config_key_requires_check(struct vb_error *err)
{
	struct config c;
	config_defaults(&c);
	for (size_t k = 0; k < N_ELEMS(requires_table); k++) {
		const struct config_keys_require *r = &requires_table[k];
		const char *p = r->when;
		if (config_key_index(r->key) < 0)
			return vb_fail(err, VB_ERR_INTERNAL, "config: requires "
				       "rule %zu: unknown key %s", k, r->key);
		while (*p) {
			const char *bar = strstr(p, " | ");
			size_t len = bar ? (size_t)(bar - p) : strlen(p);
			char vals[192];
			int key;
			bool neg;
			if (!parse_alt(p, len, &key, &neg, vals, sizeof vals))
				return vb_fail(err, VB_ERR_INTERNAL,
					       "config: requires rule %s: "
					       "cannot parse '%s'", r->key,
					       r->when);
			for (const char *v = vals; *v;) {
				const char *q = strchr(v, ',');
				size_t l = q ? (size_t)(q - v) : strlen(v);
				char one[CONFIG_VALUE_LEN];
				struct config t = c;
				snprintf(one, sizeof one, "%.*s", (int)l, v);
				if (config_set_key(&t, config_key_name(
							   (size_t)key),
						   one, NULL) != VB_OK)
					return vb_fail(err, VB_ERR_INTERNAL,
						       "config: requires rule "
						       "%s: %s = %s is not a "
						       "valid value", r->key,
						       config_key_name(
							       (size_t)key),
						       one);
				v += l + (q ? 1 : 0);
			}
			p += len + (bar ? 3 : 0);
		}
	}
	return VB_OK;
}
