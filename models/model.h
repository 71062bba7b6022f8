/* model: the one interface every model (vae, later rhvae, hvae) sits
 * behind: create from a model_config, build the loss of one batch on the
 * tape, an epoch-end hook, free. Parameters live in a struct params whose
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

enum model_kind { MODEL_KIND_VAE, MODEL_KIND_RHVAE, MODEL_KIND_HVAE };
enum model_arch { MODEL_ARCH_MLP, MODEL_ARCH_RESNET };
enum model_recon { MODEL_RECON_MSE, MODEL_RECON_BCE };

const char *model_kind_name(enum model_kind kind);
const char *model_arch_name(enum model_arch arch);
const char *model_recon_name(enum model_recon recon);

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
};

struct model;

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
	void (*free_impl)(struct model *m);
	/* Tensors beyond the parameters that a checkpoint must hold (the
	 * RHVAE's evaluation metric); may be NULL. */
	enum vb_status (*save_state)(const struct model *m,
				     struct checkpoint_writer *w,
				     struct vb_error *err);
	enum vb_status (*load_state)(struct model *m,
				     const struct checkpoint *c,
				     struct vb_error *err);
};

struct model {
	const struct model_ops *ops;
	struct model_config cfg;
	struct params *params;
	struct graph_node **pnodes; /* this step's PARAM nodes (arena) */
	void *impl;
};

/* Creates and initialises (PyTorch default init from cfg->init_seed) the
 * model cfg->kind names. */
enum vb_status model_create(const struct model_config *cfg,
			    struct model **out, struct vb_error *err);
void model_free(struct model *m);

/* Builds the loss; a thin wrapper that appends the parameter nodes first
 * and checks the tape for a sticky error afterwards. */
enum vb_status model_build_loss(struct model *m, struct graph *g,
				struct graph_node *x, struct rng *r,
				bool training, struct model_out *out,
				struct vb_error *err);

enum vb_status model_epoch_end(struct model *m, struct vb_error *err);

/* Adds / restores the model's extra state (no-op for models without). */
enum vb_status model_save_state(const struct model *m,
				struct checkpoint_writer *w,
				struct vb_error *err);
enum vb_status model_load_state(struct model *m, const struct checkpoint *c,
				struct vb_error *err);

#endif
