/* model: the one interface every model (vae, rhvae, hvae, anchor) sits
 * behind: create from a model_config (by kind in registry.c, the only file
 * that knows every model), build the loss of one batch on the tape, an
 * epoch-end hook, free. Parameters live in a struct params whose
 * entry names are pythae's state_dict names, so checkpoints map 1:1. */
#ifndef VB_MODELS_MODEL_H
#define VB_MODELS_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "graph.h"
#include "params.h"
#include "rng.h"
#include "vb.h"

enum model_kind {
	MODEL_KIND_VAE, MODEL_KIND_RHVAE, MODEL_KIND_HVAE, MODEL_KIND_ANCHOR
};
enum model_arch { MODEL_ARCH_MLP, MODEL_ARCH_RESNET, MODEL_ARCH_CONVNET };
enum model_recon { MODEL_RECON_MSE, MODEL_RECON_BCE };
/* Hidden activation of the MLP networks (pythae: relu). */
enum model_activation {
	MODEL_ACT_RELU, MODEL_ACT_SIGMOID, MODEL_ACT_TANH, MODEL_ACT_SOFTPLUS,
	MODEL_ACT_LEAKY_RELU
};
/* Weight initialisation of linear and conv layers. pytorch: the layers'
 * reset_parameters (U(+-1/sqrt(fan_in)), the reference); xavier_*: gain 1
 * over fan_in + fan_out; kaiming_*: torch.nn.init defaults (fan_in, gain
 * sqrt(2)); scaled: pytorch times init_scale (provokes explosions). */
enum model_init {
	MODEL_INIT_PYTORCH, MODEL_INIT_XAVIER_UNIFORM, MODEL_INIT_XAVIER_NORMAL,
	MODEL_INIT_KAIMING_UNIFORM, MODEL_INIT_KAIMING_NORMAL,
	MODEL_INIT_SCALED
};
/* Where the anchor model's epsilon goes (models/anchor.h). */
enum model_eps_placement {
	MODEL_EPS_NONE, MODEL_EPS_LOSS, MODEL_EPS_SQRT
};
/* How the encoder's second head s becomes a standard deviation (issue 6):
 * exp (pythae): s is logvar, std = exp(s / 2); softplus (a mitigation):
 * std = softplus(s) (PyTorch, beta 1, threshold 20) and every use of
 * logvar takes logvar = 2 log(std) (vae.h, vae_std). */
enum model_sigma { MODEL_SIGMA_EXP, MODEL_SIGMA_SOFTPLUS };

const char *model_kind_name(enum model_kind kind);
const char *model_arch_name(enum model_arch arch);
const char *model_recon_name(enum model_recon recon);
const char *model_activation_name(enum model_activation a);
const char *model_init_name(enum model_init i);
const char *model_eps_placement_name(enum model_eps_placement e);
const char *model_sigma_name(enum model_sigma s);

/* Tensors a model keeps beside its parameters and saves in checkpoints
 * (BatchNorm's running_mean, running_var, num_batches_tracked under
 * PyTorch's names). Not trained, not seen by the optimizer. training is
 * set by model_build_loss before every forward, so that layers choose
 * training- or evaluation-mode behaviour. Owned by the model. */
struct model_buffer {
	char name[PARAMS_NAME_LEN];
	enum checkpoint_dtype dtype; /* CHECKPOINT_REAL or CHECKPOINT_I64 */
	size_t n;
	void *data;
};
struct model_buffers {
	bool training;
	struct model_buffer *items;
	size_t n_items, cap;
};

/* Registers buffer name of n elements, filled with fill (vb_real) or 0
 * (I64); *data receives its storage, stable until the model is freed.
 * Duplicate names are VB_ERR_INTERNAL, allocation failure VB_ERR_NOMEM. */
enum vb_status model_buffers_add(struct model_buffers *b, const char *name,
				 enum checkpoint_dtype dtype, size_t n,
				 double fill, void **data,
				 struct vb_error *err);
/* Frees every buffer and b itself; NULL is a no-op. */
void model_buffers_free(struct model_buffers *b);

struct model_config {
	enum model_kind kind;
	enum model_arch arch;
	enum model_recon recon;
	size_t n_rows, n_cols; /* image shape; D = n_rows * n_cols */
	size_t n_latent;       /* d */
	size_t n_hidden;       /* MLP width (pythae: 512) */
	double bce_log_clamp;  /* PyTorch BCE clamps log at -100 */
	double bce_denom_eps;  /* PyTorch BCE gradient max(y(1-y), 1e-12) */
	uint64_t init_seed;    /* seeds the init stream only */
	size_t n_batch_max;    /* largest batch the model will see */

	/* RHVAE (rhvae.md 4.1); defaults are pythae's RHVAEConfig. */
	size_t n_lf;           /* K leapfrog steps */
	double eps_lf;         /* leapfrog step size */
	double beta_zero;      /* b (tempering) */
	double temperature;    /* T of the kernel exp(-|z - c|^2 / T^2) */
	double regularization; /* lambda in A = sum w M + lambda I */
	int logdet_mode;       /* enum linalg_logdet_mode: lu (pythae) or
				  cholesky (reports failure) */
	size_t buffer_batches; /* batches kept for the end-of-epoch metric */
	size_t n_metric_hidden; /* metric MLP width (pythae: 400) */
	/* Quirks, each reproduced by default and switchable off: */
	bool quirk_beta_sqrt;   /* true: b used where sqrt(b) belongs */
	bool quirk_momentum_l;  /* true: training momentum from the metric
				   network's L(x); false: from Cholesky of
				   G(z0) as in evaluation */
	bool quirk_position;    /* true: position step z + eps A(z) rho'
				   (old y and A); false: 3 fixed-point
				   iterations with A re-evaluated */
	bool second_order;      /* true: g3 keeps its graph (pythae);
				   false: treated as a constant */
	/* HVAE quirks (rhvae.md 9.1), on by default: */
	bool quirk_hvae_softplus; /* sigma = softplus(logvar) */
	bool quirk_hvae_position; /* z' = z + eps rho (not rho') */
	/* model_nll: false = pythae 0.1.2's get_nll per model, true = a
	 * consistent estimate for every model (see model_nll) */
	bool nll_consistent;

	/* Mitigations (off by default; issue 6): */
	bool logvar_clamp;         /* clamp the encoder's logvar */
	double logvar_min, logvar_max;
	bool metric_softplus;      /* RHVAE: softplus, not exp, on L's
				      diagonal */
	double h_grad_clip;        /* RHVAE/HVAE: clamp every gradient of H
				      taken inside the leapfrog to
				      [-c, c]; 0 = off */
	double logdet_jitter;      /* RHVAE: log det(A + jitter I) */
	enum model_sigma sigma;    /* VAE, RHVAE, anchor, HVAE: std from the
				      encoder's second head (exp) */
	double bce_eps;            /* bce: the decoder output is clamped to
				      [bce_eps, 1 - bce_eps] before the
				      BCE, in [0, 0.5); 0 = off (PyTorch's
				      log clamp only). Not for the HVAE,
				      whose bce takes logits */

	/* MLP networks: hidden activation, initialisation, optional
	 * BatchNorm1d after each hidden linear layer. Defaults: pythae's. */
	enum model_activation activation;
	double leaky_slope;     /* leaky relu negative slope (0.01) */
	enum model_init init;
	double init_scale;      /* scaled init: factor on pytorch's weights */
	bool bias_fill;         /* false: pytorch's bias init */
	double bias_value;      /* biases filled with this when bias_fill */
	bool mlp_batchnorm;
	/* BatchNorm (MLP with mlp_batchnorm, convnet always), PyTorch's
	 * settings: */
	double bn_eps;          /* 1e-5 */
	double bn_momentum;     /* 0.1 */
	bool bn_track_running_stats; /* true */
	bool bn_eval_batch_stats;    /* evaluate with batch statistics
					(the "evaluate in training mode"
					mitigation); false */
	/* anchor model (models/anchor.h) */
	enum model_eps_placement anchor_eps_placement;
	double anchor_eps;      /* 1e-8 */
	double anchor_weight;   /* weight of the line regulariser (1) */

	/* Set by model_create; NULL for models created directly (which then
	 * refuse architectures with BatchNorm). */
	struct model_buffers *buffers;
};

/* Sets pythae's defaults (mse, d 16, hidden 512, clamps -100 / 1e-12). */
void model_config_defaults(struct model_config *c);

/* What build_loss leaves on the tape. recon and reg are per sample (B);
 * loss = mean(recon + reg) is the scalar to backpropagate. */
struct model_out {
	struct graph_node *loss;   /* scalar */
	struct graph_node *recon;  /* (B) reconstruction term */
	struct graph_node *reg;    /* (B) KL (VAE) or the model's rest */
	struct graph_node *y;      /* (B, D) reconstruction */
	struct graph_node *z;      /* (B, d) final latent */
	struct graph_node *mu;     /* (B, d) */
	struct graph_node *logvar; /* (B, d) */
	/* Filled by the models whose held-out likelihood needs them
	 * (models/nll.h); NULL otherwise. */
	struct graph_node *z0;          /* (B, d) latent before the leapfrog */
	struct graph_node *rho0_noise;  /* (B, d) or (B, d, 1): gamma / b */
	struct graph_node *rho0_factor; /* (B, d, d) lower-triangular F with
					   rho0 = F gamma / b (RHVAE) */
	struct graph_node *rho;         /* (B, d) final momentum rho_K */
	struct graph_node *metric;      /* (B, d, d) A(z_K) = G^-1(z_K)
					   (RHVAE) */
	struct graph_node *logdet_metric; /* (B) log det A(z_K) (RHVAE) */
};

struct model;
struct arch_encoder;
struct arch_decoder;

struct model_ops {
	const char *name;
	/* Builds the loss of batch x (a node of shape (B, D)) on g, drawing
	 * its noise from r. training selects the training-mode forward. */
	enum vb_status (*build_loss)(struct model *m, struct graph *g,
				     struct graph_node *x, struct rng *r,
				     bool training, struct model_out *out,
				     struct vb_error *err);
	/* Called after the last training batch of an epoch; may be NULL. */
	enum vb_status (*epoch_end)(struct model *m, struct vb_error *err);
	/* Frees impl and what it owns; NULL: impl is one block, free()d. */
	void (*free_impl)(struct model *m);
	/* Tensors beyond the parameters that a checkpoint must hold (the
	 * RHVAE's evaluation metric); may be NULL. */
	enum vb_status (*save_state)(const struct model *m,
				     struct checkpoint_writer *w,
				     struct vb_error *err);
	enum vb_status (*load_state)(struct model *m,
				     const struct checkpoint *c,
				     struct vb_error *err);
	/* The model's encoder and decoder (for reconstructions and samples);
	 * may be NULL. */
	void (*networks)(const struct model *m,
			 const struct arch_encoder **enc,
			 const struct arch_decoder **dec);
};

struct model {
	const struct model_ops *ops;
	struct model_config cfg;
	struct params *params;
	struct graph_node **pnodes; /* this step's PARAM nodes (arena) */
	void *impl;
	struct model_buffers *buffers; /* owned; same as cfg.buffers */
	/* h_grad_clip (rhvae, hvae): entries of the gradients of H that the
	 * clamp saw and those it changed (|g| > h_grad_clip), summed over
	 * every forward since create; a trainer reads differences. */
	uint64_t h_grad_entries, h_grad_clamped;
	/* The encoder and decoder inside impl (borrowed; set by
	 * vae_networks_add), read by vae_networks; NULL until then. */
	const struct arch_encoder *enc;
	const struct arch_decoder *dec;
};

/* Counts gz's entries into m->h_grad_entries / h_grad_clamped against
 * clip (> 0) before the models clamp them (gz may be NULL). */
void model_count_h_grad(struct model *m, const struct graph_node *gz,
			double clip);

/* Creates and initialises (PyTorch default init from cfg->init_seed) the
 * model cfg->kind names (models/registry.c: the factory, apart from this
 * interface, so that no model includes a file that includes it back). */
enum vb_status model_create(const struct model_config *cfg,
			    struct model **out, struct vb_error *err);
/* Frees m, its impl (ops->free_impl, else free), parameters and buffers;
 * NULL is a no-op. */
void model_free(struct model *m);

/* The create prologue every model shares: a zeroed struct model with ops,
 * a copy of *cfg and a zeroed impl of impl_size bytes (m->impl), in *out.
 * VB_ERR_NOMEM "<ops->name>: cannot allocate" (and *out NULL) on failure.
 * Once it succeeded, the caller frees with model_free, also on a later
 * error of its own. */
enum vb_status model_alloc(const struct model_ops *ops,
			   const struct model_config *cfg, size_t impl_size,
			   struct model **out, struct vb_error *err);

/* Builds the loss; a thin wrapper that appends the parameter nodes first
 * and checks the tape for a sticky error afterwards. */
enum vb_status model_build_loss(struct model *m, struct graph *g,
				struct graph_node *x, struct rng *r,
				bool training, struct model_out *out,
				struct vb_error *err);

enum vb_status model_epoch_end(struct model *m, struct vb_error *err);

/* Pictures of a trained model, built on g: the decoder applied to the
 * encoder means of x (B, D) -> (B, D), and the decoder applied to z
 * (B, d) -> (B, D). *out is NULL (and VB_ERR_CONFIG returned) for a model
 * without networks. */
enum vb_status model_reconstruct(struct model *m, struct graph *g,
				 struct graph_node *x, struct graph_node **out,
				 struct vb_error *err);
enum vb_status model_decode(struct model *m, struct graph *g,
			    struct graph_node *z, struct graph_node **out,
			    struct vb_error *err);

/* Adds / restores the model's extra state (no-op for models without)
 * and its buffers (struct model_buffers; load requires every buffer). */
enum vb_status model_save_state(const struct model *m,
				struct checkpoint_writer *w,
				struct vb_error *err);
enum vb_status model_load_state(struct model *m, const struct checkpoint *c,
				struct vb_error *err);

/* ---- held-out measures (models/nll.c; issue 15 item 1) ----
 * Both take a batch x of n_batch images as n_batch * D values (row-major,
 * D = n_rows * n_cols), run the model in evaluation mode (BatchNorm with
 * running statistics, the RHVAE with its evaluation metric) on g, a
 * scratch tape that they reset (its content on return is unspecified), and
 * write one double per image. They touch no parameter gradient. */

/* Reconstruction error with z = the encoder mean, y = decoder(z), whatever
 * the training loss, in double per image b:
 *   sse[b] = sum_p (y_bp - x_bp)^2
 *   bce[b] = -sum_p (x max(log y, c) + (1 - x) max(log(1 - y), c)),
 *            c = cfg.bce_log_clamp (-100, PyTorch's clamped BCE)
 * A y outside [0, 1] (or NaN) makes bce[b] NaN (PyTorch refuses it).
 * Either output may be NULL. VB_ERR_CONFIG for a model without networks. */
enum vb_status model_recon_error(struct model *m, struct graph *g,
				 const vb_real *x, size_t n_batch,
				 double *sse, double *bce,
				 struct vb_error *err);

/* Importance-sampled negative log-likelihood as pythae 0.1.2's get_nll
 * computes its per-image term, with exactly n_samples importance samples
 * per image (drawn from r: per chunk, the model's forward order), evaluated
 * in chunks of at most n_chunk samples (memory is that of one batch of
 * n_chunk), log-sum-exp in double:
 *   nll[b] = -(logsumexp_s log w_s - log n_samples).
 * log w per model (all terms in double from the forward's values):
 *   vae, anchor: log p(x|z) + log p(z) - log q(z|x), log q =
 *     -0.5 sum(logvar + (z - mu)^2 / exp(logvar)), log p(z) = -0.5 |z|^2,
 *     log p(x|z) = -0.5 |y - x|^2 - (D/2) log 2 pi (mse) or -BCE (bce);
 *   rhvae (evaluation forward, rhvae.md 4.6): + log p(rho_K) - log p(rho_0)
 *     with z = z_K, log p(rho_K) = -0.5 rho_K^T A(z_K) rho_K
 *     + 0.5 log det A(z_K) - (d/2) log 2 pi, log p(rho_0) = log N(gamma;
 *     0, I) - log det(F / b), F = Cholesky of G(z0); no tempering
 *     Jacobian (pythae omits d log b: with b = 0.3, d = 16 its log p is
 *     19.26 nats above the consistent estimate);
 *   hvae (pythae's HVAE.get_nll forward, hvae.h): log p(x|z_K) (mse
 *     without the 2 pi term, bce from logits) - 0.5 |z_K|^2
 *     - 0.5 |rho_K|^2 + 0.5 b |rho_K|^2 - log q(z0|x) [pythae's formula;
 *     not a consistent estimator].
 * With cfg.nll_consistent (eval.nll_estimator = consistent) every log w
 * is that of one importance sampler of log p(x) (volume-preserving
 * leapfrog, tempering from b to 1 scaling rho by b: Jacobian b^d, and
 * rho_0 = gamma / b with density N(gamma; 0, I) b^d):
 *   vae, anchor: as above;
 *   rhvae: pythae's log w + d log b (the tempering Jacobian);
 *   hvae: log p(x|z_K) (mse with its -(D/2) log 2 pi, bce from logits)
 *     - 0.5 |z_K|^2 - 0.5 |rho_K|^2 + 0.5 |gamma|^2 - log q(z0|x)
 *     (the b^d of the tempering and of rho_0's density cancel).
 * pythae's get_nll(n_samples, batch_size) itself draws
 * model_nll_pythae_samples(n_samples, batch_size) samples and returns the
 * mean over images of -nll[b] (a log-likelihood). Errors: VB_ERR_CONFIG for
 * n_samples or n_chunk 0 or a model without networks; graph errors. A
 * non-finite log w is a result (nll NaN or +-inf), not an error. */
enum vb_status model_nll(struct model *m, struct graph *g, const vb_real *x,
			 size_t n_batch, size_t n_samples, size_t n_chunk,
			 struct rng *r, double *nll, struct vb_error *err);

/* The number of importance samples pythae's get_nll(n_samples,
 * batch_size) draws per image: batch_size * max(1, n_samples /
 * batch_size) (integer division; n_samples <= batch_size gives
 * batch_size). */
size_t model_nll_pythae_samples(size_t n_samples, size_t batch_size);

/* ---- pythae's argument validation (models/validate.c; issue 15 item 4)
 * pythae 0.1.2 stops a run in two ways: "NaN detected in train loss" and
 * an exception raised inside a forward when PyTorch validates an argument:
 *   rhvae: the standard-normal prior's MultivariateNormal.log_prob(z)
 *     (every Hamiltonian evaluation and the loss; support
 *     IndependentConstraint(Real(), 1), which rejects NaN, accepts +-inf):
 *     ValueError "Expected value argument (Tensor of shape (B, d)) to be
 *     within the support (IndependentConstraint(Real(), 1)) of the
 *     distribution MultivariateNormal(loc: torch.Size([d]),
 *     covariance_matrix: torch.Size([d, d])), but found invalid values:"
 *     (issue #131; rhvae.md 5.3);
 *   every model with bce whose decoder output feeds F.binary_cross_entropy
 *     (vae, anchor, rhvae): RuntimeError "all elements of input should be
 *     between 0 and 1" for a value outside [0, 1] or NaN.
 * (pythae's vae and hvae with mse call no distribution; the hvae's bce is a
 * Bernoulli on logits, not checked here.) */
struct model_validate {
	bool raised;
	char node[GRAPH_NAME_LEN]; /* the tape node whose argument failed
				      ("rhvae.lf1.H.z2", "loss.z2",
				      "loss.recon") */
	size_t node_id;            /* its position on the tape */
	int phase;                 /* its graph phase (guard.h codes) */
	const char *error;         /* "ValueError" or "RuntimeError" */
	char message[320];         /* PyTorch's message, as above */
	size_t n_invalid, n_values; /* values that fail / checked */
};

/* Scans the tape g of one forward (after model_build_loss, before
 * graph_reset) in creation order, which is pythae's execution order, for
 * the first argument PyTorch's validation would reject; fills *out
 * (raised false if none) and returns out->raised. Reads only: calling it
 * or not changes no value, so it is the whole of the "enabled" switch. */
bool model_validate_args(const struct model *m, const struct graph *g,
			 struct model_validate *out);

#endif
