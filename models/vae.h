/* vae: pythae's plain VAE (rhvae.md section 3) with the default MLP
 * encoder and decoder (rhvae.md 2.1, 2.2). Parameter names are pythae's
 * state_dict names (see README, "Checkpoints"). */
#ifndef VB_MODELS_VAE_H
#define VB_MODELS_VAE_H

#include "model.h"

struct arch_encoder;
struct arch_decoder;

/* The loss of the VAE family on g: mean over the batch of recon + reg
 * (both (B)), nodes "per_sample" and "total" in the current scope. */
struct graph_node *vae_loss_total(struct graph *g, struct graph_node *recon,
				  struct graph_node *reg);

/* The end of a build_loss whose terms are in out (vae_forward_terms): in
 * scope "loss", out->reg += extra (node reg_name) when extra is not NULL,
 * then out->loss = vae_loss_total of out->recon and out->reg; returns
 * graph_status(g). */
enum vb_status vae_loss_finish(struct graph *g, struct model_out *out,
			       const char *reg_name, struct graph_node *extra);

/* Sets out's per-sample terms recon and reg (B) and the nodes y, z, mu,
 * logvar; the other fields are left as they are. */
void vae_out_terms(struct model_out *out, struct graph_node *recon,
		   struct graph_node *reg, struct graph_node *y,
		   struct graph_node *z, struct graph_node *mu,
		   struct graph_node *logvar);

/* The VAE's forward and per-sample terms (rhvae.md section 3) on the given
 * networks, for models that add to the VAE's loss: fills out->mu, logvar
 * (2 log std under m->cfg.sigma softplus), z, y, recon (B) and reg (the
 * KL, B), and leaves out->loss NULL for the caller. Nodes: encoder.*,
 * vae.std/eps/z (vae_std's), decoder.*, loss.recon (vae_recon's), loss.kl.
 * m->pnodes must hold this step's parameter nodes. */
void vae_forward_terms(const struct model *m, struct graph *g,
		       const struct arch_encoder *enc,
		       const struct arch_decoder *dec, struct graph_node *x,
		       struct rng *r, struct model_out *out);

/* The standard deviation (B, d) from the encoder's second head s (B, d),
 * which *logvar holds on entry (after the logvar clamp, if on: with
 * softplus the clamp bounds s, and so std to [softplus(logvar_min),
 * softplus(logvar_max)]), under cfg->sigma, in the caller's scope:
 *   exp:      std = exp(0.5 s), nodes half_logvar, std; *logvar stays s
 *             (pythae's graph, op for op);
 *   softplus: std = softplus(s), node std; *logvar becomes 2 log(std)
 *             (nodes log_std, logvar), the logvar every later term (KL,
 *             log q) uses. softplus(s) underflows to 0 for s below about
 *             -745 (double) or -104 (float); logvar is then -inf.
 * Every model's reparameterisation goes through it. */
struct graph_node *vae_std(const struct model_config *cfg, struct graph *g,
			   struct graph_node **logvar);

/* -log p(x | y) per sample (B) from the decoder output y and the batch x
 * (B, D), in the caller's scope: mse (op_mse), or PyTorch's BCE (op_bce
 * with cfg's bce_log_clamp, bce_denom_eps), node recon. With bce and
 * cfg->bce_eps > 0, y is first clamped to [bce_eps, 1 - bce_eps] (node
 * bce_clamp; no gradient flows where the clamp is active). */
struct graph_node *vae_recon(const struct model_config *cfg, struct graph *g,
			     struct graph_node *y, struct graph_node *x);

/* Checks the settings vae_std and vae_recon read: sigma a known value,
 * 0 <= bce_eps < 0.5. VB_ERR_CONFIG otherwise, message prefixed who. */
enum vb_status vae_check_config(const struct model_config *cfg,
				const char *who, struct vb_error *err);

/* The create steps the VAE family shares. vae_networks_add creates
 * m->params and registers enc's then dec's parameters (pythae's state_dict
 * order); the caller may register more, then calls params_finalize.
 * vae_networks_init seeds r from m->cfg.init_seed (RNG_STREAM_INIT) and
 * initialises enc then dec from it; the caller initialises any further
 * networks from r, in registration order. */
enum vb_status vae_networks_add(struct model *m, struct arch_encoder *enc,
				struct arch_decoder *dec,
				struct vb_error *err);
void vae_networks_init(struct model *m, const struct arch_encoder *enc,
		       const struct arch_decoder *dec, struct rng *r);
/* The tail of a create whose parameters are the encoder and decoder
 * only: when st is VB_OK, vae_networks_add, params_finalize and
 * vae_networks_init, then *out = m; on any error (st included) m is freed
 * (model_free) and the status returned. */
enum vb_status vae_networks_finish(struct model *m, enum vb_status st,
				   struct arch_encoder *enc,
				   struct arch_decoder *dec,
				   struct model **out, struct vb_error *err);
/* The create of a model whose parameters are the encoder and decoder
 * only (vae, hvae, anchor): model_alloc(ops, cfg, impl_size), then setup
 * (the model's own checks of cfg, which may fill impl; it sets *enc and
 * *dec to impl's networks whatever it returns), then vae_networks_finish.
 * *out is NULL until it succeeds; on failure everything is freed. */
typedef enum vb_status (*vae_setup_fn)(const struct model_config *cfg,
				       void *impl, struct arch_encoder **enc,
				       struct arch_decoder **dec,
				       struct vb_error *err);
enum vb_status vae_family_create(const struct model_ops *ops,
				 const struct model_config *cfg,
				 size_t impl_size, vae_setup_fn setup,
				 struct model **out, struct vb_error *err);
/* The model_ops networks hook of every model that registered its
 * networks with vae_networks_add: *enc = m->enc, *dec = m->dec. */
void vae_networks(const struct model *m, const struct arch_encoder **enc,
		  const struct arch_decoder **dec);

enum vb_status vae_create(const struct model_config *cfg, struct model **out,
			  struct vb_error *err);

#endif
