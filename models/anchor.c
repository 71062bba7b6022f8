/* anchor: VAE loss plus the anchor-line regulariser d1 + d2 - d12 with a
 * switchable epsilon placement (anchor.h). Anchors are picked from the
 * batch by constant selection matrices, so every distance is built from
 * differentiable ops and the forensics see the sqrt node itself. */
#include "anchor.h"

#include <stdlib.h>

#include "arch.h"
#include "ops.h"
#include "vae.h"

struct anchor {
	struct arch_encoder enc;
	struct arch_decoder dec;
};

/* (B, B) constant whose column k is ones: S mu repeats row k of mu. */
static struct graph_node *select_row(struct graph *g, const char *name,
				     size_t B, size_t k)
{
	size_t s[2] = {B, B};
	struct tensor t = graph_tensor_zero(g, 2, s);
	if (!t.data)
		return NULL;
	for (size_t b = 0; b < B; b++)
		t.data[b * B + (k < B ? k : B - 1)] = 1;
	return graph_const(g, name, t);
}

/* |a - b| per row, with the epsilon inside the root when asked. */
static struct graph_node *dist(struct graph *g, const char *name,
			       struct graph_node *a, struct graph_node *b,
			       const struct model_config *c)
{
	struct graph_node *ss;
	graph_push_scope(g, name);
	ss = op_sum_rows(g, "sumsq",
			 op_square(g, "sq", op_sub(g, "diff", a, b)));
	if (c->anchor_eps_placement == MODEL_EPS_SQRT)
		ss = op_add_scalar(g, "sumsq_eps", ss, c->anchor_eps);
	graph_pop_scope(g);
	return op_sqrt(g, name, ss);
}

static enum vb_status anchor_build_loss(struct model *m, struct graph *g,
					struct graph_node *x, struct rng *r,
					bool training, struct model_out *out,
					struct vb_error *err)
{
	struct anchor *v = m->impl;
	const struct model_config *c = &m->cfg;
	struct graph_node *mu, *a1, *a2, *reg;
	size_t B = tensor_rows(&x->value);
	(void)training;
	(void)err;

	vae_forward_terms(m, g, &v->enc, &v->dec, x, r, out);
	mu = out->mu;

	graph_push_scope(g, "anchor");
	a1 = op_matmul(g, "a1", select_row(g, "sel1", B, 0), mu, false,
		       false);
	a2 = op_matmul(g, "a2", select_row(g, "sel2", B, 1), mu, false,
		       false);
	reg = op_sub(g, "line",
		     op_add(g, "d1_d2", dist(g, "d1", mu, a1, c),
			    dist(g, "d2", mu, a2, c)),
		     dist(g, "d12", a1, a2, c));
	if (c->anchor_eps_placement == MODEL_EPS_LOSS)
		reg = op_add_scalar(g, "line_eps", reg, c->anchor_eps);
	reg = op_scale(g, "reg", reg, c->anchor_weight);
	graph_pop_scope(g);
	return vae_loss_finish(g, out, "kl_anchor", reg);
}

static const struct model_ops ANCHOR_OPS = {
	.name = "anchor",
	.build_loss = anchor_build_loss,
	.networks = vae_networks,
};

static enum vb_status anchor_setup(const struct model_config *cfg,
				   void *impl, struct arch_encoder **enc,
				   struct arch_decoder **dec,
				   struct vb_error *err)
{
	struct anchor *v = impl;
	size_t D = cfg->n_rows * cfg->n_cols;
	*enc = &v->enc;
	*dec = &v->dec;
	if (D == 0 || cfg->n_latent == 0 || cfg->n_hidden == 0)
		return vb_fail(err, VB_ERR_CONFIG,
			       "anchor: input %zu, latent %zu, hidden %zu: "
			       "all must be >= 1", D, cfg->n_latent,
			       cfg->n_hidden);
	if (!(cfg->anchor_eps >= 0))
		return vb_fail(err, VB_ERR_CONFIG,
			       "anchor: anchor_eps %g, expected >= 0",
			       cfg->anchor_eps);
	return vae_check_config(cfg, "anchor", err);
}

enum vb_status anchor_create(const struct model_config *cfg,
			     struct model **out, struct vb_error *err)
{
	return vae_family_create(&ANCHOR_OPS, cfg, sizeof(struct anchor),
				 anchor_setup, out, err);
}
