/* model: the one interface every model (vae, later rhvae, hvae) sits
 * behind: create from a model_config, build the loss of one batch on the
 * tape, an epoch-end hook, free. Parameters live in a struct params whose
 * entry names are pythae's state_dict names, so checkpoints map 1:1. */
#ifndef VB_MODELS_MODEL_H
#define VB_MODELS_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graph.h"
#include "params.h"
#include "rng.h"
#include "vb.h"

enum model_kind { MODEL_KIND_VAE };
enum model_arch { MODEL_ARCH_MLP };
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

#endif
