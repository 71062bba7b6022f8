/* rhvae: the RHVAE forward in training and evaluation mode (rhvae.md 4.5,
 * 4.6), its Hamiltonian (4.3), tempering (4.4), loss (4.7) and centre
 * bookkeeping (4.9). Gradients of H inside the forward come from the tape
 * (graph_grad): steps 6.1 and 6.2 take them as constants, step 6.4 keeps
 * the graph, so the loss is differentiated through it (4.8). Because the
 * z of step k's 6.1 is the same node as the z of step k-1's 6.4, the K >= 2
 * extra term of 4.5 (a Hessian-vector product) comes out of the tape by
 * itself, as it does in PyTorch; likewise the evaluation-mode term of 4.6
 * through the Cholesky factor of G(z0). */
#include "rhvae.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_grad.h"
#include "guard.h"
#include "linalg.h"
#include "metric.h"
#include "arch.h"
#include "nets.h"
#include "ops.h"
#include "rhvae_impl.h"
#include "vae.h"

void rhvae_set_freeze(struct model *m, enum rhvae_freeze mode)
{
	struct rhvae *rv = m->impl;
	rv->freeze = mode;
	freeze_reset(&rv->frozen, mode == RHVAE_FREEZE_RECORD);
}

void rhvae_set_leapfrog_reuse(struct model *m, bool reuse)
{
	struct rhvae *rv = m->impl;
	rv->lf_full = !reuse;
}

const vb_real *rhvae_frozen_values(const struct model *m, size_t *n)
{
	const struct rhvae *rv = m->impl;
	*n = rv->frozen.n;
	return rv->frozen.values;
}

/* A constant of step 6.1 or 6.2: recorded or replaced (rhvae_set_freeze). */
static struct graph_node *frozen(struct rhvae *rv, struct graph *g,
				 struct graph_node *n)
{
	if (!n || rv->freeze == RHVAE_FREEZE_OFF)
		return n;
	return freeze_apply(&rv->frozen, rv->freeze == RHVAE_FREEZE_RECORD,
			    g, n, "rhvae");
}

/* The position step z + eps/2 (grho0 + grho) (node name), its increment
 * a constant (const_name, frozen when the store records or replays). */
static struct graph_node *z_step(struct rhvae *rv, struct graph *g,
				 const char *name, const char *const_name,
				 struct graph_node *z, struct graph_node *grho0,
				 struct graph_node *grho, double eps_lf)
{
	struct graph_node *inc = op_scale(
		g, "dz", op_add(g, "grho_sum", grho0, grho), 0.5 * eps_lf);
	if (!inc)
		return op_add(g, name, z, NULL);
	return op_add(g, name, z,
		      frozen(rv, g, graph_const(g, const_name, inc->value)));
}

void rhvae_tempering_factors(const struct model_config *cfg,
			     vb_real *factors)
{
	/* pythae: beta_k = (1 - 1/b) (k/K)^2 + 1/b on a float32 tensor b,
	 * s_k = 1/beta_k, s_0 = b itself; rho *= s_{k-1} / s_k. */
	vb_real b = (vb_real)(cfg->quirk_beta_sqrt ? cfg->beta_zero
						   : sqrt(cfg->beta_zero));
	vb_real old = b;
	for (size_t k = 1; k <= cfg->n_lf; k++) {
		double frac = (double)k / (double)cfg->n_lf;
		vb_real inv_b = 1 / b;
		vb_real beta_k = (1 - inv_b) * (vb_real)(frac * frac) + inv_b;
		vb_real s_k = 1 / beta_k;
		factors[k - 1] = old / s_k;
		old = s_k;
	}
}

size_t rhvae_n_centroids(const struct model *m)
{
	const struct rhvae *rv = m->impl;
	return rv->has_metric ? rv->n_cent : 0;
}

bool rhvae_metric(const struct model *m, const vb_real **centroids,
		  const vb_real **M, size_t *n)
{
	const struct rhvae *rv = m->impl;
	if (!rv->has_metric || !rv->n_cent)
		return false;
	*centroids = rv->cent;
	*M = rv->M_tens;
	*n = rv->n_cent;
	return true;
}

size_t rhvae_n_buffered(const struct model *m)
{
	const struct rhvae *rv = m->impl;
	return rv->count;
}

/* ---- pieces of the forward ---- */

/* A constant of N(0, 1) draws from r divided by div, filled before it
 * joins the graph: anomaly mode checks a node's values as it is added. */
static struct graph_node *normal_const(struct graph *g, const char *name,
				       int ndim, const size_t *shape,
				       struct rng *r, vb_real div)
{
	struct tensor t = graph_tensor(g, ndim, shape);
	if (!t.data)
		return NULL;
	rng_fill_normal(r, t.data, t.n, 0, 1);
	if (div != 1)
		for (size_t i = 0; i < t.n; i++)
			t.data[i] = t.data[i] / div;
	return graph_const(g, name, t);
}

/* rho^T A rho per sample: rho (B, d), A (B, d, d) -> (B). */
static struct graph_node *quad_form(struct graph *g, const char *name,
				    struct graph_node *rho,
				    struct graph_node *A)
{
	size_t B, d;
	if (!rho || !A)
		return NULL;
	B = rho->value.shape[0];
	d = rho->value.shape[1];
	size_t s3[3] = {B, d, 1}, s2[2] = {B, d};
	struct graph_node *Ar = op_reshape(
		g, "A_rho",
		linalg_bmm(g, "A_rho", A, op_reshape(g, "rho_col", rho, 3, s3),
			   false, false),
		2, s2);
	return op_sum_rows(g, name, op_mul(g, "rho_A_rho", rho, Ar));
}

/* A(z) from the centres c (N, d) and matrices M (N, d, d); before the first
 * end-of-epoch update in evaluation mode, pythae's placeholder
 * (exp(-|z|^2) + lambda) I (rhvae.md 4.2). */
static struct graph_node *metric_A(struct model *m, struct graph *g,
				   const char *name, struct graph_node *z,
				   struct graph_node *c, struct graph_node *M)
{
	const struct model_config *cfg = &m->cfg;
	if (c)
		return metric_kernel(g, name, z, c, M, cfg->temperature,
				     cfg->regularization);
	if (!z)
		return NULL;
	size_t B = z->value.shape[0], d = z->value.shape[1];
	size_t s3[3] = {B, d, d};
	struct tensor eye = graph_tensor_zero(g, 3, s3);
	if (!eye.data)
		return NULL;
	for (size_t b = 0; b < B; b++)
		for (size_t i = 0; i < d; i++)
			eye.data[(b * d + i) * d + i] = 1;
	struct graph_node *w = op_exp(
		g, "w0", op_neg(g, "w0.neg",
				op_sum_rows(g, "w0.sq", op_square(g, "z_sq", z))));
	return linalg_add_identity(
		g, name,
		op_mul_rows(g, "w0.eye", graph_const(g, "eye", eye), w),
		cfg->regularization);
}

/* log det A, optionally of A + jitter I (a mitigation). */
static struct graph_node *logdet_of(struct graph *g, const char *name,
				    struct graph_node *A,
				    const struct model_config *cfg)
{
	if (cfg->logdet_jitter > 0)
		A = linalg_add_identity(g, "logdet_jitter", A,
					cfg->logdet_jitter);
	return linalg_logdet(g, name, A,
			     (enum linalg_logdet_mode)cfg->logdet_mode);
}

/* A gradient of H taken inside the leapfrog, clamped when the
 * rhvae.h_grad_clip mitigation is on. */
static struct graph_node *clip_h_grad(struct model *m, struct graph *g,
				      const struct model_config *cfg,
				      struct graph_node *gz)
{
	if (cfg->h_grad_clip > 0) {
		model_count_h_grad(m, gz, cfg->h_grad_clip);
		return op_clamp(g, "h_grad_clip", gz, -cfg->h_grad_clip,
				cfg->h_grad_clip);
	}
	return gz;
}

/* H = sum_i [ -log p(x_i | z_i) + 0.5 |z_i|^2 + 0.5 rho_i^T A_i rho_i
 *             - 0.5 logdet A_i ]  (rhvae.md 4.3, constants dropped). */
static struct graph_node *hamiltonian(struct model *m, struct graph *g,
				      struct graph_node *x,
				      struct graph_node *z,
				      struct graph_node *y,
				      struct graph_node *rho,
				      struct graph_node *A,
				      struct graph_node *logdet_A)
{
	struct graph_node *per;
	graph_push_scope(g, "H");
	per = op_add(g, "recon_prior", vae_recon(&m->cfg, g, y, x),
		     op_scale(g, "prior",
			      op_sum_rows(g, "z_sq", op_square(g, "z2", z)),
			      0.5));
	per = op_add(g, "kinetic",
		     per, op_scale(g, "kinetic.half",
				   quad_form(g, "rho_A_rho", rho, A), 0.5));
	per = op_sub(g, "logdet", per, op_scale(g, "logdet.half", logdet_A,
						0.5));
	struct graph_node *H = op_sum(g, "sum", per);
	graph_pop_scope(g);
	return H;
}

/* The parts of H for the reusing leapfrog (rhvae_set_leapfrog_reuse), in
 * scope "H" with hamiltonian()'s node names. The rho-independent part
 * sum_i [-log p(x_i | z_i) + 0.5 |z_i|^2] (decoder and prior): */
static struct graph_node *h_recon_prior(struct model *m, struct graph *g,
					struct graph_node *x,
					struct graph_node *z,
					struct graph_node *y)
{
	struct graph_node *H;
	graph_push_scope(g, "H");
	H = op_sum(g, "sum",
		   op_add(g, "recon_prior", vae_recon(&m->cfg, g, y, x),
			  op_scale(g, "prior",
				   op_sum_rows(g, "z_sq",
					       op_square(g, "z2", z)),
				   0.5)));
	graph_pop_scope(g);
	return H;
}

/* -0.5 sum_i logdet A_i, whose gradient in A is the log-determinant's
 * contribution to dH/dA (rho-independent). */
static struct graph_node *h_logdet(struct graph *g,
				   struct graph_node *logdet_A)
{
	struct graph_node *H;
	graph_push_scope(g, "H");
	H = op_sum(g, "logdet.sum",
		   op_scale(g, "logdet.half", logdet_A, -0.5));
	graph_pop_scope(g);
	return H;
}

/* 0.5 rho_i^T A_i rho_i per sample (B). */
static struct graph_node *h_kinetic(struct graph *g, struct graph_node *rho,
				    struct graph_node *A)
{
	struct graph_node *k;
	graph_push_scope(g, "H");
	k = op_scale(g, "kinetic.half", quad_form(g, "rho_A_rho", rho, A),
		     0.5);
	graph_pop_scope(g);
	return k;
}

/* a + b for two constant nodes of one shape, as a constant. */
static struct graph_node *const_sum(struct graph *g, const char *name,
				    struct graph_node *a,
				    struct graph_node *b)
{
	struct tensor t;
	if (!a || !b)
		return NULL;
	t = graph_tensor(g, a->value.ndim, a->value.shape);
	if (!t.data && t.n)
		return NULL;
	for (size_t i = 0; i < t.n; i++)
		t.data[i] = a->value.data[i] + b->value.data[i];
	return graph_const(g, name, t);
}

/* seed^T d out / d wrt as a node (constant unless keep_graph); seed
 * NULL means ones for a scalar out. */
static struct graph_node *vjp_of(struct graph *g, struct graph_node *out,
				 struct graph_node *seed,
				 struct graph_node *wrt, bool keep_graph,
				 struct vb_error *err)
{
	struct graph_node *r = NULL;
	if (!out || !wrt)
		return NULL;
	if (graph_grad(g, out, seed, &wrt, 1, keep_graph, &r, err) != VB_OK)
		return graph_failf(g, err && err->status ? err->status
							  : VB_ERR_INTERNAL,
				   "%s", err ? err->msg : "rhvae: grad failed");
	return r;
}

/* d out / d wrt as a node (constant unless keep_graph); out must be a
 * scalar. */
static struct graph_node *grad_of(struct graph *g, struct graph_node *out,
				  struct graph_node *wrt, bool keep_graph,
				  struct vb_error *err)
{
	return vjp_of(g, out, NULL, wrt, keep_graph, err);
}

static void buffer_append(struct rhvae *rv, const struct graph_node *M,
			  const struct graph_node *mu)
{
	size_t nb = mu->value.shape[0], d = rv->d;
	size_t slot = rv->head;
	memcpy(rv->buf_M + slot * rv->bmax * d * d, M->value.data,
	       nb * d * d * sizeof(vb_real));
	memcpy(rv->buf_mu + slot * rv->bmax * d, mu->value.data,
	       nb * d * sizeof(vb_real));
	rv->rows[slot] = nb;
	rv->head = (rv->head + 1) % rv->cap;
	if (rv->count < rv->cap)
		rv->count++;
}

static enum vb_status rhvae_build_loss(struct model *m, struct graph *g,
				       struct graph_node *x, struct rng *r,
				       bool training, struct model_out *out,
				       struct vb_error *err)
{
	struct rhvae *rv = m->impl;
	const struct model_config *cfg = &m->cfg;
	struct graph_node **P = m->pnodes;
	size_t B = tensor_rows(&x->value), d = rv->d;
	size_t s2[2] = {B, d}, s3[3] = {B, d, 1};
	struct graph_node *mu, *logvar, *std, *eps0, *z0, *L = NULL, *M = NULL;
	struct graph_node *c = NULL, *Mc = NULL, *A, *logdet_A, *u, *rho, *y;
	struct graph_node *z;
	bool old_grad = graph_set_grad_enabled(g, true);

	if (training && B > rv->bmax)
		return vb_fail(err, VB_ERR_CONFIG,
			       "rhvae: batch of %zu exceeds the %zu the "
			       "buffers were sized for", B, rv->bmax);

	graph_push_scope(g, "encoder");
	arch_encoder_forward(&rv->enc, g, P, x, &mu, &logvar);
	graph_pop_scope(g);

	graph_push_scope(g, "rhvae");
	/* 1. reparameterisation; eps0 is drawn first, gamma second. Under
	 * sigma softplus logvar becomes 2 log std, also in log q below. */
	std = vae_std(cfg, g, &logvar);
	eps0 = normal_const(g, "eps0", 2, s2, r, 1);
	z0 = op_add(g, "z0", mu, op_mul(g, "eps_std", eps0, std));
	if (!training && z0) {
		/* pythae evaluates with gradients on; the gradient of H with
		 * respect to z must exist even if the weights are frozen */
		z0 = graph_input(g, "z0.leaf", z0->value, true);
	}

	if (training) {
		/* 2. metric network, M = L L^T, buffers */
		graph_push_scope(g, "metric");
		struct graph_node *h = op_relu(
			g, "fc1.relu",
			nets_linear_forward(&rv->met_fc1, g, P, "fc1", x));
		struct graph_node *pre =
			nets_linear_forward(&rv->met_diag, g, P, "diag", h);
		struct graph_node *diag =
			cfg->metric_softplus ? op_softplus(g, "diag_softplus", pre)
					     : op_exp(g, "diag_exp", pre);
		struct graph_node *low =
			nets_linear_forward(&rv->met_low, g, P, "lower", h);
		L = linalg_tril(g, "L", diag, low);
		M = linalg_bmm(g, "M", L, L, false, true);
		graph_pop_scope(g);
		if (M && mu)
			buffer_append(rv, M, mu);
		c = mu;
		Mc = M;
	} else if (rv->has_metric) {
		size_t cs[2] = {rv->n_cent, d}, ms[3] = {rv->n_cent, d, d};
		c = graph_const(g, "centroids", tensor_view(rv->cent, 2, cs));
		Mc = graph_const(g, "M_tens", tensor_view(rv->M_tens, 3, ms));
	}

	/* 3. A(z0), log det */
	A = metric_A(m, g, "A0", z0, c, Mc);
	logdet_A = logdet_of(g, "logdet_A0", A, cfg);

	/* 4. momentum rho = L u or C u, u = gamma / b */
	u = normal_const(g, "gamma_over_b", 3, s3, r, rv->b);
	struct graph_node *F = L;
	if (!training || !cfg->quirk_momentum_l)
		F = linalg_cholesky(g, "C0",
				    linalg_inverse(g, "G0", A));
	rho = op_reshape(g, "rho0", linalg_bmm(g, "rho0", F, u, false, false),
			 2, s2);

	/* 5. */
	graph_pop_scope(g);
	y = arch_decode(&rv->dec, g, m->pnodes, z0);
	graph_push_scope(g, "rhvae");
	z = z0;

	/* 6. leapfrog */
	for (size_t k = 1; k <= cfg->n_lf; k++) {
		char scope[16];
		snprintf(scope, sizeof scope, "lf%zu", k);
		graph_push_scope(g, scope);
		int phase0 = graph_phase(g);
		graph_set_phase(g, GUARD_PHASE_CODE(GUARD_PHASE_LEAPFROG, k, 1));
		/* 6.1 implicit half step: 3 fixed-point iterations, constant
		 * gradients */
		struct graph_node *rho_half = rho;
		/* The split needs every z-dependence of rho' to run through
		 * A. From step 2 on (g3 keeping its graph) rho depends on z
		 * through the previous g3, whose graph runs through this
		 * decoder output (4.5's Hessian term): every kinetic gradient
		 * then walks the decoder anyway, and the whole H walks it no
		 * more often. */
		if (rv->lf_full || graph_depends_on(g, rho, y, NULL) ||
		    graph_depends_on(g, rho, z, A)) {
			for (int it = 0; it < 3; it++) {
				struct graph_node *H = hamiltonian(
					m, g, x, z, y, rho_half, A, logdet_A);
				struct graph_node *gz = clip_h_grad(
					m, g, cfg,
					frozen(rv, g,
					       grad_of(g, H, z, false, err)));
				rho_half = op_sub(g, "rho_half", rho,
						  op_scale(g, "half_eps_g", gz,
							   0.5 * cfg->eps_lf));
			}
		} else {
			/* z, y, A and logdet A do not change in the three
			 * iterations: once, the decoder + prior gradient in
			 * z (gs) and the log-det's gradient in A (S); per
			 * iteration, the kinetic term's gradient in A (with
			 * the rho' path of 4.6 through C(z0) when rho depends
			 * on z), plus S, carried to z through the kernel
			 * metric (one backward, as in the full H). The full
			 * gradient gs + gk is what is frozen and clipped.
			 * Each sum is the full H's in the same association:
			 * A's gradient ((kinetic + rho' path) + log-det, the
			 * tape order of its consumers) and z's ((prior +
			 * decoder) + metric), so these are the same bits. As
			 * in the full H, recon, prior and the first kinetic
			 * term are made in that order before any backward
			 * pass, so anomaly mode meets a non-finite value in
			 * the same order. */
			struct graph_node *Hs = h_recon_prior(m, g, x, z, y);
			struct graph_node *kin = h_kinetic(g, rho_half, A);
			struct graph_node *gs = grad_of(g, Hs, z, false, err);
			struct graph_node *S = grad_of(g, h_logdet(g, logdet_A),
						       A, false, err);
			for (int it = 0; it < 3; it++) {
				if (it > 0)
					kin = h_kinetic(g, rho_half, A);
				struct graph_node *gA = const_sum(
					g, "grad_A",
					grad_of(g, op_sum(g, "H.sum", kin), A,
						false, err),
					S);
				struct graph_node *gk =
					gA ? vjp_of(g, A, gA, z, false, err)
					   : NULL;
				struct graph_node *gz = clip_h_grad(
					m, g, cfg,
					frozen(rv, g,
					       const_sum(g, "grad", gs, gk)));
				rho_half = op_sub(g, "rho_half", rho,
						  op_scale(g, "half_eps_g", gz,
							   0.5 * cfg->eps_lf));
			}
		}
		/* 6.2 position step, a constant increment; only the kinetic
		 * term of H depends on rho', so (unless lf_full) only it is
		 * built: the same gradient, bit for bit */
		graph_set_phase(g, GUARD_PHASE_CODE(GUARD_PHASE_LEAPFROG, k, 2));
		struct graph_node *H0 =
			rv->lf_full
				? hamiltonian(m, g, x, z, y, rho_half, A,
					      logdet_A)
				: op_sum(g, "H.sum",
					 h_kinetic(g, rho_half, A));
		struct graph_node *grho0 = grad_of(g, H0, rho_half, false, err);
		struct graph_node *grho = grho0;
		if (!cfg->quirk_position) {
			/* a true fixed point: A re-evaluated at each z_ */
			struct graph_node *zi = z;
			for (int it = 0; it < 3; it++) {
				bool og = graph_set_grad_enabled(g, false);
				struct graph_node *Ai = metric_A(m, g, "A_fp",
								 zi, c, Mc);
				graph_set_grad_enabled(g, og);
				struct graph_node *Ar = op_reshape(
					g, "A_rho_fp",
					linalg_bmm(g, "A_rho_fp", Ai,
						   op_reshape(g, "rho_col",
							      rho_half, 3, s3),
						   false, false),
					2, s2);
				grho = Ar ? graph_const(g, "grho_fp",
							Ar->value)
					  : NULL;
				zi = z_step(rv, g, "z_fp", "dz", z, grho0,
					    grho, cfg->eps_lf);
			}
			z = zi;
		} else {
			/* pythae: the H it differentiates uses the old y and
			 * A, so grho = grho0 and z_new = z + eps A rho' */
			z = z_step(rv, g, "z", "dz.const", z, grho0, grho,
				   cfg->eps_lf);
		}
		graph_pop_scope(g);
		graph_pop_scope(g);
		/* 6.3 */
		graph_set_phase(g, GUARD_PHASE_CODE(GUARD_PHASE_LEAPFROG, k, 3));
		y = arch_decode(&rv->dec, g, m->pnodes, z);
		graph_push_scope(g, "rhvae");
		graph_push_scope(g, scope);
		A = metric_A(m, g, "A", z, c, Mc);
		logdet_A = logdet_of(g, "logdet_A", A, cfg);
		/* 6.4 explicit half step; g3 keeps its graph */
		graph_set_phase(g, GUARD_PHASE_CODE(GUARD_PHASE_LEAPFROG, k, 4));
		struct graph_node *H3 = hamiltonian(m, g, x, z, y, rho_half, A,
						    logdet_A);
		struct graph_node *g3 = clip_h_grad(
			m, g, cfg, grad_of(g, H3, z, cfg->second_order, err));
		struct graph_node *rho2 = op_sub(
			g, "rho2", rho_half,
			op_scale(g, "half_eps_g3", g3, 0.5 * cfg->eps_lf));
		/* 6.5 tempering */
		graph_set_phase(g, GUARD_PHASE_CODE(GUARD_PHASE_TEMPERING, k, 0));
		rho = op_scale(g, "rho", rho2, (double)rv->temper[k - 1]);
		graph_set_phase(g, phase0);
		graph_pop_scope(g);
	}

	/* 7. loss (rhvae.md 4.7) */
	graph_pop_scope(g);
	graph_push_scope(g, "loss");
	struct graph_node *rec = vae_recon(&m->cfg, g, y, x);
	struct graph_node *rest = op_scale(
		g, "prior", op_sum_rows(g, "z_sq", op_square(g, "z2", z)), 0.5);
	rest = op_add(g, "kinetic", rest,
		      op_scale(g, "kinetic.half",
			       quad_form(g, "rho_A_rho", rho, A), 0.5));
	rest = op_sub(g, "logdet", rest,
		      op_scale(g, "logdet.half", logdet_A, 0.5));
	/* log q: -0.5 |eps0|^2 (no gradient) - 0.5 sum logvar */
	struct graph_node *eps_sq = NULL;
	if (eps0) {
		size_t s1[1] = {B};
		struct tensor t = graph_tensor(g, 1, s1);
		for (size_t i = 0; t.data && i < B; i++) {
			double acc = 0;
			for (size_t j = 0; j < d; j++) {
				vb_real e = eps0->value.data[i * d + j];
				acc += (double)(e * e);
			}
			t.data[i] = (vb_real)(0.5 * acc);
		}
		eps_sq = t.data ? graph_const(g, "eps0_sq", t) : NULL;
	}
	rest = op_sub(g, "log_q_eps", rest, eps_sq);
	rest = op_sub(g, "log_q_logvar", rest,
		      op_scale(g, "half_sum_logvar",
			       op_sum_rows(g, "sum_logvar", logvar), 0.5));
	out->loss = vae_loss_total(g, rec, rest);
	graph_pop_scope(g);

	vae_out_terms(out, rec, rest, y, z, mu, logvar);
	/* for the held-out likelihood (models/nll.c) */
	out->z0 = z0;
	out->rho0_noise = u;
	out->rho0_factor = F;
	out->rho = rho;
	out->metric = A;
	out->logdet_metric = logdet_A;
	graph_set_grad_enabled(g, old_grad);
	return graph_status(g);
}

static enum vb_status rhvae_epoch_end(struct model *m, struct vb_error *err)
{
	struct rhvae *rv = m->impl;
	size_t d = rv->d, n = 0;
	size_t start = (rv->head + rv->cap - rv->count) % rv->cap;
	(void)err;
	if (rv->count == 0)
		return VB_OK;
	for (size_t i = 0; i < rv->count; i++) {
		size_t s = (start + i) % rv->cap, nb = rv->rows[s];
		memcpy(rv->M_tens + n * d * d, rv->buf_M + s * rv->bmax * d * d,
		       nb * d * d * sizeof(vb_real));
		memcpy(rv->cent + n * d, rv->buf_mu + s * rv->bmax * d,
		       nb * d * sizeof(vb_real));
		n += nb;
	}
	rv->n_cent = n;
	rv->has_metric = true;
	rv->count = 0;
	rv->head = 0;
	return VB_OK;
}

static void rhvae_free_impl(struct model *m)
{
	struct rhvae *rv = m->impl;
	if (!rv)
		return;
	free(rv->buf_M);
	free(rv->buf_mu);
	free(rv->rows);
	free(rv->ck_rows);
	free(rv->M_tens);
	free(rv->cent);
	free(rv->temper);
	freeze_free(&rv->frozen);
	free(rv);
}

static const struct model_ops RHVAE_OPS = {
	.name = "rhvae",
	.build_loss = rhvae_build_loss,
	.epoch_end = rhvae_epoch_end,
	.free_impl = rhvae_free_impl,
	.save_state = rhvae_impl_save_state,
	.load_state = rhvae_impl_load_state,
	.networks = vae_networks,
};

enum vb_status rhvae_create(const struct model_config *cfg,
			    struct model **out, struct vb_error *err)
{
	struct model *m;
	struct rhvae *rv;
	size_t D = cfg->n_rows * cfg->n_cols, H = cfg->n_hidden;
	size_t d = cfg->n_latent, rows;
	struct rng r;
	enum vb_status st = model_alloc(&RHVAE_OPS, cfg, sizeof *rv, &m, err);
	*out = NULL;
	if (st != VB_OK)
		return st;
	rv = m->impl;
	rv->d = d;
	rv->D = D;
	rv->cap = cfg->buffer_batches;
	rv->bmax = cfg->n_batch_max;
	if (D == 0 || d < 2 || H == 0 || cfg->n_lf < 1 || rv->cap < 1 ||
	    rv->bmax < 1)
		st = vb_fail(err, VB_ERR_CONFIG,
			     "rhvae: input %zu, latent %zu, hidden %zu, n_lf "
			     "%zu, buffer %zu, batch %zu: latent must be >= 2, "
			     "the others >= 1", D,
			     d, H, cfg->n_lf, rv->cap, rv->bmax);
	if (st == VB_OK && !(cfg->beta_zero > 0))
		st = vb_fail(err, VB_ERR_CONFIG,
			     "rhvae: beta_zero %g, expected > 0", cfg->beta_zero);
	if (st == VB_OK && !(cfg->temperature > 0))
		st = vb_fail(err, VB_ERR_CONFIG,
			     "rhvae: temperature %g, expected > 0",
			     cfg->temperature);
	if (st == VB_OK)
		st = vae_check_config(cfg, "rhvae", err);
	if (st == VB_OK) {
		/* zeroed: a mid-epoch checkpoint writes the whole ring,
		 * slots not yet filled included, and its bytes must not
		 * depend on what the heap held before */
		rows = rv->cap * rv->bmax;
		rv->buf_M = calloc(rows * d * d, sizeof(vb_real));
		rv->buf_mu = calloc(rows * d, sizeof(vb_real));
		rv->M_tens = calloc(rows * d * d, sizeof(vb_real));
		rv->cent = calloc(rows * d, sizeof(vb_real));
		rv->rows = calloc(rv->cap, sizeof *rv->rows);
		rv->ck_rows = calloc(rv->cap, sizeof *rv->ck_rows);
		rv->temper = malloc(cfg->n_lf * sizeof *rv->temper);
		if (!rv->buf_M || !rv->buf_mu || !rv->M_tens || !rv->cent ||
		    !rv->rows || !rv->ck_rows || !rv->temper)
			st = vb_fail(err, VB_ERR_NOMEM,
				     "rhvae: cannot allocate the buffers");
	}
	if (st == VB_OK) {
		rv->b = (vb_real)(cfg->quirk_beta_sqrt ? cfg->beta_zero
						       : sqrt(cfg->beta_zero));
		/* pythae's non-trained nn.Parameters (rhvae.md 4.1), kept
		 * here for the checkpoint writer, which holds the pointers
		 * until it writes */
		rv->state_consts[0] = (vb_real)cfg->temperature;
		rv->state_consts[1] = (vb_real)cfg->regularization;
		rv->state_consts[2] = rv->b;
		rhvae_tempering_factors(cfg, rv->temper);
		/* Registration order = pythae's state_dict order. */
		st = vae_networks_add(m, &rv->enc, &rv->dec, err);
	}
	if (st == VB_OK)
		st = nets_linear_add(&rv->met_fc1, m->params, "metric.layers.0",
				     D, cfg->n_metric_hidden, err);
	if (st == VB_OK)
		st = nets_linear_add(&rv->met_diag, m->params, "metric.diag",
				     cfg->n_metric_hidden, d, err);
	if (st == VB_OK)
		st = nets_linear_add(&rv->met_low, m->params, "metric.lower",
				     cfg->n_metric_hidden,
				     d * (d - 1) / 2, err);
	if (st == VB_OK)
		st = params_finalize(m->params, err);
	if (st != VB_OK) {
		model_free(m);
		return st;
	}
	vae_networks_init(m, &rv->enc, &rv->dec, &r);
	nets_linear_init(&rv->met_fc1, m->params, &r);
	nets_linear_init(&rv->met_diag, m->params, &r);
	nets_linear_init(&rv->met_low, m->params, &r);
	*out = m;
	return VB_OK;
}
