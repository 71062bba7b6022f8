/* config: the resolved settings of one run. One static table of keys
 * (section, key, type, field, default, range or enum names, help) drives
 * defaults, INI loading (inih), --set overrides, validation, canonical
 * formatting and INI writing; sweeps and result rows iterate the same keys.
 * Running anything with the settings is left to train, sweep and main. */
#ifndef VB_BENCH_CONFIG_H
#define VB_BENCH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config_type.h"
#include "linalg.h"
#include "model.h"
#include "optim.h"
#include "vb.h"

/* Enum keys: each field holds the index into the key's name list, which is
 * the order of these constants; *_COUNT is the number of names. To add a
 * value, add a constant before *_COUNT and its name in config.c (a static
 * assert there checks the two lists agree in length). Settings whose enum
 * belongs to a module (model.kind, model.arch, model.recon, model.sigma,
 * nets.activation, nets.init, anchor.eps_placement, optim.kind,
 * optim.schedule, rhvae.logdet) hold that module's enum (model.h, optim.h,
 * linalg.h) and take their names from its name function: one source. */
enum config_progress {                 /* run.progress */
	CONFIG_PROGRESS_AUTO, CONFIG_PROGRESS_ON, CONFIG_PROGRESS_OFF,
	CONFIG_PROGRESS_COUNT
};
enum config_dataset {                  /* data.dataset */
	CONFIG_DATASET_MNIST, CONFIG_DATASET_FASHION_MNIST,
	CONFIG_DATASET_SYNTHETIC,
	CONFIG_DATASET_COUNT
};
enum config_split {                    /* data.train_split, data.eval_split */
	CONFIG_SPLIT_TRAIN, CONFIG_SPLIT_T10K,
	CONFIG_SPLIT_COUNT
};
enum config_bn_eval {                  /* nets.bn_eval */
	CONFIG_BN_EVAL_RUNNING, CONFIG_BN_EVAL_BATCH,
	CONFIG_BN_EVAL_COUNT
};
enum config_nonfinite {                /* data.nonfinite */
	CONFIG_NONFINITE_PASS, CONFIG_NONFINITE_REFUSE,
	CONFIG_NONFINITE_SCRUB,
	CONFIG_NONFINITE_COUNT
};
enum config_nan_check {                /* train.nan_check */
	CONFIG_NAN_CHECK_STRICT, CONFIG_NAN_CHECK_PYTHAE, CONFIG_NAN_CHECK_OFF,
	CONFIG_NAN_CHECK_COUNT
};
enum config_kernels {                  /* train.kernels */
	CONFIG_KERNELS_FAST, CONFIG_KERNELS_PORTABLE,
	CONFIG_KERNELS_COUNT
};
enum config_clip {                     /* optim.clip */
	CONFIG_CLIP_NONE, CONFIG_CLIP_NORM, CONFIG_CLIP_VALUE,
	CONFIG_CLIP_ADAPTIVE,
	CONFIG_CLIP_COUNT
};
enum config_nan_phase {                /* inject.nan_phase */
	CONFIG_NAN_PHASE_INPUT, CONFIG_NAN_PHASE_PARAM, CONFIG_NAN_PHASE_GRAD,
	CONFIG_NAN_PHASE_UNNORMALIZED,
	CONFIG_NAN_PHASE_COUNT
};
enum config_inject_value {             /* inject.value */
	CONFIG_INJECT_NAN, CONFIG_INJECT_INF, CONFIG_INJECT_SCALE,
	CONFIG_INJECT_VALUE_COUNT
};
enum config_precision {                /* train.precision */
	CONFIG_PRECISION_NATIVE, CONFIG_PRECISION_F32, CONFIG_PRECISION_F64,
	CONFIG_PRECISION_F16, CONFIG_PRECISION_BF16,
	CONFIG_PRECISION_COUNT
};
enum config_loss_scale {               /* train.loss_scale */
	CONFIG_LOSS_SCALE_NONE, CONFIG_LOSS_SCALE_STATIC,
	CONFIG_LOSS_SCALE_DYNAMIC,
	CONFIG_LOSS_SCALE_COUNT
};
enum config_guard_mode {               /* guard.mode */
	CONFIG_GUARD_CHEAP, CONFIG_GUARD_ANOMALY,
	CONFIG_GUARD_MODE_COUNT
};

/* Field sizes of the string keys (including the NUL). The accepted length
 * is smaller: a value must fit on one "key = value" INI line of at most
 * CONFIG_LINE_MAX characters so that config_write output loads back. */
#define CONFIG_NAME_LEN 256
#define CONFIG_PATH_LEN 1024
#define CONFIG_LINE_MAX 197

/* A buffer of this many bytes holds any value config_get formats. */
#define CONFIG_VALUE_LEN 1024

/* One sub-struct per INI section, one field per key, named exactly as the
 * key: INI "model.latent" is c->model.latent. Enum fields are int holding
 * the constants above. */
struct config_run {
	char name[CONFIG_NAME_LEN];   /* [A-Za-z0-9._-]+; run folder out_dir/name */
	char out_dir[CONFIG_PATH_LEN];
	int progress;                 /* enum config_progress */
	double progress_every;        /* seconds between two progress lines
					 when stderr is not a terminal */
	int64_t checkpoint_every;     /* optimizer steps; 0 = final only */
};

struct config_data {
	int dataset;                  /* enum config_dataset */
	char dir[CONFIG_PATH_LEN];    /* "" = the dataset's default folder */
	int train_split;              /* enum config_split */
	int64_t train_begin;
	int64_t train_end;            /* exclusive; -1 = to the end */
	int eval_split;               /* enum config_split */
	int64_t eval_begin;
	int64_t eval_end;             /* exclusive; -1 = to the end */
	double scale;                 /* pixels are divided by it */
	int64_t synthetic_n;
	int64_t synthetic_eval_n;
	bool standardize;             /* per-pixel (x - mean) / sqrt(var + eps) */
	double standardize_eps;
	int nonfinite;                /* enum config_nonfinite */
	bool drop_last;               /* leave out the last partial batch */
};

struct config_model {
	int kind;                     /* enum model_kind (model.h) */
	int arch;                     /* enum model_arch (model.h) */
	int64_t latent;               /* Z */
	int64_t hidden;               /* H */
	int recon;                    /* enum model_recon (model.h) */
	int64_t init_seed;            /* -1 = use train.seed */
	bool logvar_clamp;            /* mitigation: clamp logvar */
	double logvar_min;
	double logvar_max;
	int sigma;                    /* enum model_sigma (model.h) */
	double bce_eps;               /* clamp x_hat to [eps, 1 - eps]; 0 off */
};

/* Layers of the networks (models/nets.h): MLP hidden activation, weight
 * initialisation, BatchNorm (MLP: optional BatchNorm1d; convnet: always
 * BatchNorm2d). Defaults are pythae's and PyTorch's. */
struct config_nets {
	int activation;               /* enum model_activation (model.h) */
	double leaky_slope;
	int init;                     /* enum model_init (model.h) */
	double init_scale;
	bool bias_fill;
	double bias_value;
	bool batchnorm;               /* MLP: BatchNorm1d after hidden layers */
	double bn_eps;
	double bn_momentum;
	bool bn_track_running_stats;
	int bn_eval;                  /* enum config_bn_eval */
};

/* The anchor model's line regulariser (models/anchor.h). */
struct config_anchor {
	int eps_placement;            /* enum model_eps_placement (model.h) */
	double eps;
	double weight;
};

enum config_diag_activation {         /* rhvae.diag_activation */
	CONFIG_DIAG_EXP, CONFIG_DIAG_SOFTPLUS,
	CONFIG_DIAG_COUNT
};
enum config_momentum {                 /* rhvae.momentum */
	CONFIG_MOMENTUM_METRIC, CONFIG_MOMENTUM_CHOLESKY,
	CONFIG_MOMENTUM_COUNT
};
enum config_position {                 /* rhvae.position_step */
	CONFIG_POSITION_PYTHAE, CONFIG_POSITION_FIXED_POINT,
	CONFIG_POSITION_COUNT
};

/* eval.nll_estimator: pythae 0.1.2's get_nll per model, or one consistent
 * importance-sampling estimate of log p(x) for every model (model.h). */
enum config_nll_estimator {
	CONFIG_NLL_PYTHAE, CONFIG_NLL_CONSISTENT, CONFIG_NLL_COUNT
};

/* RHVAE settings (rhvae.md 4.1); defaults are pythae's RHVAEConfig and
 * every [quirk] of the reference is on by default. */
struct config_rhvae {
	int64_t n_lf;                 /* K */
	double eps_lf;
	double beta_zero;
	double temperature;
	double regularization;        /* lambda */
	int logdet;                   /* enum linalg_logdet_mode (linalg.h) */
	int64_t buffer_batches;
	bool beta_zero_as_sqrt;       /* quirk: b used where sqrt(b) belongs */
	int momentum;                 /* enum config_momentum */
	int position_step;            /* enum config_position */
	bool second_order;            /* g3 keeps its graph */
	int diag_activation;          /* enum config_diag_activation */
	double grad_clip;             /* clamp gradients of H in the leapfrog */
	double logdet_jitter;         /* log det(A + jitter I) */
};

/* HVAE quirks (rhvae.md 9.1); n_lf, eps_lf and beta_zero come from the
 * [rhvae] section. */
struct config_hvae {
	bool softplus_sigma;          /* quirk: sigma = softplus(logvar) */
	bool position_uses_rho;       /* quirk: z' = z + eps rho, not rho' */
};

struct config_train {
	int64_t epochs;
	int64_t batch;                /* B */
	int64_t eval_batch;
	int64_t eval_every;           /* evaluate every this many epochs */
	uint64_t seed;
	bool shuffle;
	int64_t blas_threads;
	int kernels;                  /* enum config_kernels */
	int nan_check;                /* enum config_nan_check */
	int64_t max_steps;            /* 0 = no limit */
	bool sanity_check;            /* pythae's start-up forward */
	bool skip_nonfinite;          /* mitigation: skip a batch whose loss
					 or gradient is non-finite */
	bool flush_denormals;         /* FTZ/DAZ: subnormals become 0 */
	int precision;                /* enum config_precision */
	int64_t accumulate;           /* micro-batches per optimizer step */
	int loss_scale;               /* enum config_loss_scale */
	double scale_init;            /* initial (or static) loss scale */
	double scale_growth;          /* dynamic: growth factor */
	double scale_backoff;         /* dynamic: backoff factor */
	int64_t scale_interval;       /* dynamic: good steps before growth */
};

struct config_optim {
	int kind;                     /* enum optim_kind (optim.h) */
	double lr;
	double beta1;
	double beta2;
	double adam_eps;
	double weight_decay;
	double momentum;
	double dampening;
	bool nesterov;
	int clip;                     /* enum config_clip */
	double clip_max;
	double clip_eps;
	double clip_k;                /* adaptive: factor on the median */
	int64_t clip_window;          /* adaptive: norms in the median */
	int64_t clip_warmup;          /* adaptive: norms before the first clip */
	int schedule;                 /* enum optim_schedule_kind (optim.h) */
	int64_t step_size;
	double gamma;
	int64_t warmup_steps;
	double min_lr;
};

struct config_inject {
	int64_t nan_step;             /* -1 = off */
	int nan_phase;                /* enum config_nan_phase */
	int value;                    /* enum config_inject_value */
	double scale;                 /* factor of value = scale */
	char param[CONFIG_NAME_LEN];  /* parameter tensor; "" = flat buffer */
	int64_t index;                /* element (pixel of the batch, of the
				         tensor); -1 = every element */
};

struct config_guard {
	int mode;                     /* enum config_guard_mode */
	bool replay;                  /* cheap guard fired: replay the failing
				         stretch in anomaly mode */
	int64_t precursors;           /* steps in the precursor ring */
	double lead_factor;           /* grad norm spike: > factor x median */
	char watch[CONFIG_NAME_LEN];  /* node names whose max |value| the
				         precursors record, comma-separated */
};

/* Held-out measures beyond the eval loss (bench/heldout.c): the
 * importance-sampled NLL at the best and the last finite epoch. */
struct config_eval {
	int64_t nll_samples;          /* importance samples per image; 0 off */
	int64_t nll_images;           /* the first this many eval images */
	int64_t nll_chunk;            /* samples per forward */
	int nll_estimator;            /* enum config_nll_estimator */
};

struct config {
	struct config_run run;
	struct config_data data;
	struct config_model model;
	struct config_nets nets;
	struct config_anchor anchor;
	struct config_rhvae rhvae;
	struct config_hvae hvae;
	struct config_train train;
	struct config_optim optim;
	struct config_inject inject;
	struct config_guard guard;
	struct config_eval eval;
};

/* Sets every key to its default. */
void config_defaults(struct config *c);

/* Applies every key = value of the INI file at path over c, in file order.
 * Sections and keys are case-sensitive; string values are taken as inih
 * returns them (whitespace trimmed; " ;" starts a comment). Integers are
 * decimal; the exponent form (1e3) is accepted when the value is an exact
 * integer of magnitude <= 2^53. Doubles are decimal, finite (no hex, inf or
 * nan). Bools are true|false (also yes|no, on|off, 1|0). Enum values are
 * names from the key's list. Stops at the first problem: an unknown section
 * or key, a bad or out-of-range value, a key given twice, a syntax error,
 * an indented (multi-line) continuation or a line longer than
 * CONFIG_LINE_MAX give VB_ERR_CONFIG with one line
 * "config: FILE:LINE: section.key = "value": expected ..."; an unopenable or
 * unreadable file gives VB_ERR_IO. On error c is left unchanged. Does not
 * run config_validate (--set overrides usually follow). */
enum vb_status config_load_file(struct config *c, const char *path,
				struct vb_error *err);

/* Applies one command-line override "section.key=value" (whitespace around
 * key and value trimmed; string values otherwise verbatim) with the same
 * checks as config_load_file; errors are VB_ERR_CONFIG
 * "config: --set ASSIGNMENT: expected ...". On error c is unchanged. */
enum vb_status config_set(struct config *c, const char *assignment,
			  struct vb_error *err);

/* Sets key name ("model.latent") from the text value, with the same checks
 * (for sweeps). VB_ERR_CONFIG "config: model.latent = "abc": expected ..."
 * on error, c unchanged. */
enum vb_status config_set_key(struct config *c, const char *name,
			      const char *value, struct vb_error *err);

/* Checks c as a whole: every key's value is in its range (also fields set
 * directly in the struct), then cross-field rules: begin < end for the
 * train and eval ranges when end != -1; for the synthetic dataset the
 * ranges lie within synthetic_n / synthetic_eval_n; sgd nesterov needs
 * momentum > 0 and dampening = 0; cosine needs min_lr <= lr.
 * VB_ERR_CONFIG naming the keys and values on failure. */
enum vb_status config_validate(const struct config *c, struct vb_error *err);

/* Number of keys; keys are numbered 0..count-1 in table order (sections
 * run, data, model, train, optim, inject). */
size_t config_key_count(void);

/* Name "section.key" of key i (static storage), NULL if i is out of range. */
const char *config_key_name(size_t i);

/* One-line help of key i (static storage), NULL if i is out of range. */
const char *config_key_help(size_t i);

/* Name of value v (0-based) of enum key i (static storage); NULL when i
 * is not an enum key or v is past its last value ('config --keys' lists
 * them). */
const char *config_key_value(size_t i, int v);

/* Type of key i; i must be < config_key_count(). */
enum config_type config_key_type(size_t i);

/* Index of key name ("model.latent"), -1 if unknown. */
int config_key_index(const char *name);

/* Formats the value of key name into buf (cap bytes; CONFIG_VALUE_LEN is
 * always enough) canonically: integers in decimal, doubles as the shortest
 * of %.6g..%.17g that parses back to the same double (1e-3 -> "0.001"),
 * bools true/false, enums by name, strings verbatim. VB_ERR_CONFIG for an
 * unknown key or an enum field outside its names, VB_ERR_INTERNAL when
 * buf is too small. */
enum vb_status config_get(const struct config *c, const char *name, char *buf,
			  size_t cap, struct vb_error *err);

/* As config_get for key index i. */
enum vb_status config_get_at(const struct config *c, size_t i, char *buf,
			     size_t cap, struct vb_error *err);

/* Stable name of value of enum key ("model.recon", MODEL_RECON_BCE ->
 * "bce"), static storage; NULL if key is not an enum key or value is out of
 * range. */
const char *config_enum_name(const char *key, int value);

/* Number of names of enum key, 0 if key is not an enum key. */
int config_enum_count(const char *key);

/* Index of name in enum key's list, -1 if not there. */
int config_enum_value(const char *key, const char *name);

/* Writes c as INI to f: every key, sections in table order, "key = value"
 * lines in canonical format. Each value is checked first (VB_ERR_CONFIG if
 * one would not load back, e.g. a field set out of range directly);
 * VB_ERR_IO on a write error. The output loads back to an identical
 * config. */
enum vb_status config_write(const struct config *c, FILE *f,
			    struct vb_error *err);

/* As config_write into path, atomically: writes path.tmp, then renames it
 * over path. VB_ERR_IO naming the file on failure (the .tmp is removed). */
enum vb_status config_write_file(const struct config *c, const char *path,
				 struct vb_error *err);

/* Whether key i can take effect in c given c's other settings (the
 * dependency list of config_keys.c: e.g. nets.init_scale requires
 * nets.init = scaled). true when it can or has no requirement; false when
 * not, with why (cap bytes, may be NULL) set to the unmet requirement and
 * the value c has, e.g. "nets.init = scaled (here pytorch)". */
bool config_key_effective(const struct config *c, size_t i, char *why,
			  size_t cap);

/* Checks the dependency list itself: every key and every value it names
 * exists and is valid. VB_ERR_INTERNAL naming the bad rule otherwise. */
enum vb_status config_key_requires_check(struct vb_error *err);

#endif
