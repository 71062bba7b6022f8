/* test_rhvae: the RHVAE (rhvae.md section 4) in double: tempering factors
 * (4.4), the whole loss gradient against central differences with the
 * step-6.1 and 6.2 constants held fixed (4.8) for K = 1 and K = 2, both
 * momentum sources, softplus sigma and the BCE clamp (issue 6), the
 * second-order term, ring buffers and end-of-epoch metric (4.9),
 * evaluation mode (4.6), checkpoint state; the HVAE's gradient; the
 * reusing leapfrog against the full-H gradients (issue 13). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "gradcheck.h"
#include "graph.h"
#include "guard.h"
#include "linalg.h"
#include "model.h"
#include "ops.h"
#include "params.h"
#include "rhvae.h"
#include "rng.h"
#include "modelutil.h"
#include "testutil.h"

static struct model_config tiny_config(size_t n_lf)
{
	struct model_config mc = mu_config(MODEL_KIND_RHVAE, MU_NR, MU_NC, 6,
					    3, 21);
	mc.n_metric_hidden = 5;
	mc.n_batch_max = MU_NB;
	mc.buffer_batches = 3;
	mc.n_lf = n_lf;
	/* a step large enough that the leapfrog moves z visibly */
	mc.eps_lf = 0.05;
	mc.regularization = 0.01;
	return mc;
}

static struct model *make(const struct model_config *mc)
{
	/* larger weights than the default init: M and the decoder's
	 * curvature are then not negligible next to lambda I and the prior */
	return mu_create(mc, 2);
}

static void batch(double *x, uint64_t seed)
{
	mu_fill(x, MU_NB * MU_ND, seed, 0.05, 0.9);
}

/* The tape's nodes stay readable in *out (may be NULL) until the next
 * call. */
static double loss_out(struct model *m, struct graph *g, double *x,
		       bool training, bool backward, struct model_out *out)
{
	return mu_loss(m, g, x, MU_NB, training, backward, out);
}

static double loss_of(struct model *m, struct graph *g, double *x,
		      bool training, bool backward)
{
	return loss_out(m, g, x, training, backward, NULL);
}

/* Number of values that enter a BCE output clamp (node *.bce_clamp)
 * outside it; fails the test if any lies within 1e-3 of an edge, where the
 * central differences (which move them by ~1e-5) would cross the kink. */
static size_t count_clamped(struct graph *g, double eps)
{
	size_t n = 0, n_nodes = 0;
	for (size_t i = 0; i < graph_node_count(g); i++) {
		struct graph_node *c = graph_node_at(g, i);
		size_t len = strlen(c->name);
		if (len < 9 || strcmp(c->name + len - 9, "bce_clamp") != 0)
			continue;
		n_nodes++;
		for (size_t j = 0; j < c->value.n; j++) {
			double y = c->in[0]->value.data[j];
			ck_assert_msg(fabs(y - eps) > 1e-3 &&
					      fabs(y - (1 - eps)) > 1e-3,
				      "%s[%zu] = %.6g too close to the clamp",
				      c->name, j, y);
			n += y < eps || y > 1 - eps;
		}
	}
	ck_assert_uint_gt(n_nodes, 0);
	return n;
}

START_TEST(test_tempering)
{
	struct model_config mc = tiny_config(3);
	double f[3];
	rhvae_tempering_factors(&mc, f);
	/* rhvae.md 4.4 (float32 there; double here, so 1e-7 relative) */
	ck_assert_double_eq_tol(f[0], 0.92222226, 1e-7);
	ck_assert_double_eq_tol(f[1], 0.74698788, 1e-7);
	ck_assert_double_eq_tol(f[2], 0.43548390, 1e-7);
	ck_assert_double_eq_tol(f[0] * f[1] * f[2], 0.3, 1e-12);
	mc.n_lf = 1;
	rhvae_tempering_factors(&mc, f);
	ck_assert_double_eq_tol(f[0], 0.3, 1e-15);
	/* without the quirk the product is sqrt(beta_zero) */
	mc.n_lf = 3;
	mc.quirk_beta_sqrt = false;
	rhvae_tempering_factors(&mc, f);
	ck_assert_double_eq_tol(f[0] * f[1] * f[2], sqrt(0.3), 1e-12);
}
END_TEST

static void freeze(struct model *m, bool record)
{
	rhvae_set_freeze(m, record ? RHVAE_FREEZE_RECORD : RHVAE_FREEZE_REPLAY);
}

/* The whole loss gradient vs central differences with the 6.1/6.2
 * constants recorded at the base point and replayed when perturbed; with
 * bce_eps, some values at the base point lie outside the clamp. */
static void check_grad(struct model_config mc)
{
	struct model *m = make(&mc);
	struct graph *g = NULL;
	struct vb_error err = {0};
	double x[MU_NB * MU_ND];
	batch(x, 5);
	if (mc.bce_eps > 0) {
		ck_assert(graph_create(1 << 20, &g, &err) == VB_OK);
		ck_assert(isfinite(loss_of(m, g, x, true, false)));
		ck_assert_uint_gt(count_clamped(g, mc.bce_eps), 0);
		graph_free(g);
	}
	struct mu_grad_result r = mu_grad_check(m, x, MU_NB, freeze, "rhvae");
	ck_assert_msg(r.bad == 0, "K=%zu: %zu of %zu gradients off (worst "
		      "rel %.3g)", mc.n_lf, r.bad, r.checked, r.worst);
	ck_assert_uint_gt(r.checked, 200);
	model_free(m);
}

/* The whole gradient of each configuration (loop index): K = 1 and K = 2
 * (both momentum sources), then at K = 1:
 * - sigma softplus, mse only: with bce and no clamp this tiny model's
 *   leapfrog (gradients (y - t) / (y (1 - y))) drives y to within 1e-8 of
 *   1, where 1 - y keeps ~8 digits and the loss is too rough for central
 *   differences (with sigma exp as well); bce is checked with its clamp:
 * - bce with bce_eps 0.1, sigma exp and softplus: the clamp sits in every
 *   reconstruction term, the Hamiltonian's included, so its mask also
 *   enters the second-order gradient of step 6.4. */
#define N_GRAD_CASES 6
START_TEST(test_grad)
{
	struct model_config mc = tiny_config(_i == 1 ? 2 : 1);
	mc.quirk_momentum_l = _i != 2;
	if (_i == 3 || _i == 5)
		mc.sigma = MODEL_SIGMA_SOFTPLUS;
	if (_i >= 4) {
		mc.recon = MODEL_RECON_BCE;
		mc.bce_eps = 0.1;
	}
	check_grad(mc);
}
END_TEST

/* sigma softplus: std = softplus(s) drives z0, and log q's -0.5 sum logvar
 * uses logvar = 2 log std (hand formula per sample). */
START_TEST(test_softplus_log_q)
{
	struct model_config mc = tiny_config(1);
	mc.sigma = MODEL_SIGMA_SOFTPLUS;
	struct model *m = make(&mc);
	struct graph *g = NULL;
	struct vb_error err = {0};
	struct model_out mo;
	double x[MU_NB * MU_ND];
	batch(x, 5);
	ck_assert(graph_create(1 << 20, &g, &err) == VB_OK);
	ck_assert(isfinite(loss_out(m, g, x, true, false, &mo)));
	mu_check_softplus_std(g, "rhvae", &mo);
	struct graph_node *s = gradcheck_node(g, "encoder.logvar");
	struct graph_node *eps = gradcheck_node(g, "rhvae.eps0");
	struct graph_node *z0 = gradcheck_node(g, "rhvae.z0");
	struct graph_node *hs = gradcheck_node(g, "loss.half_sum_logvar");
	ck_assert(eps && z0 && hs && mo.logvar);
	mu_check_reparam(g, z0, eps, &mo);
	for (int b = 0; b < MU_NB; b++) {
		double half = 0;
		for (int k = 0; k < 3; k++) {
			double e = gradcheck_softplus(s->value.data[b * 3 + k]);
			half += 0.5 * 2 * log(e);
		}
		ck_assert_double_eq_tol(hs->value.data[b], half,
					1e-14 * fmax(1, fabs(half)));
	}
	/* the same weights with exp give another loss */
	double l1 = mo.loss->value.data[0];
	m->cfg.sigma = MODEL_SIGMA_EXP;
	ck_assert(loss_of(m, g, x, true, false) != l1);
	graph_free(g);
	model_free(m);
}
END_TEST

/* sigma exp and bce_eps 0 (the defaults) give the loss of the code before
 * issue 6: values printed by this suite's K = 1 model at commit a031ee7,
 * same machine. */
START_TEST(test_exp_unchanged)
{
	const double gold[2] = {19.959207432870603, 32.60974865494682};
	for (int rc = 0; rc < 2; rc++) {
		struct model_config mc = tiny_config(1);
		mc.recon = rc ? MODEL_RECON_BCE : MODEL_RECON_MSE;
		struct model *m = make(&mc);
		struct graph *g = NULL;
		struct vb_error err = {0};
		double x[MU_NB * MU_ND];
		batch(x, 5);
		ck_assert(graph_create(1 << 20, &g, &err) == VB_OK);
		double l = loss_of(m, g, x, true, false);
		/* bit for bit on the machine that printed gold; 1e-14
		 * relative leaves another BLAS kernel's summation order */
		ck_assert_msg(fabs(l - gold[rc]) <= 1e-14 * gold[rc],
			      "%s: loss %.17g, before issue 6 %.17g",
			      model_recon_name(mc.recon), l, gold[rc]);
		ck_assert_ptr_nonnull(gradcheck_node(g, "rhvae.half_logvar"));
		ck_assert_ptr_null(gradcheck_node(g, "rhvae.logvar"));
		ck_assert_ptr_null(gradcheck_node(g, "loss.bce_clamp"));
		graph_free(g);
		model_free(m);
	}
}
END_TEST

/* One forward (and in training a backward) with the leapfrog form given
 * (rhvae_set_leapfrog_reuse), recording the step-6.1/6.2 constants into a
 * malloc'd copy (*n values); *loss and, in training, grads (params->n)
 * are filled. */
static double *lf_record(struct model *m, struct graph *g, double *x,
			 bool training, bool reuse, size_t *n, double *loss,
			 double *grads)
{
	size_t k;
	rhvae_set_leapfrog_reuse(m, reuse);
	rhvae_set_freeze(m, RHVAE_FREEZE_RECORD);
	*loss = loss_of(m, g, x, training, training);
	rhvae_set_freeze(m, RHVAE_FREEZE_OFF);
	rhvae_set_leapfrog_reuse(m, true);
	const double *v = rhvae_frozen_values(m, &k);
	double *c = malloc(k * sizeof *c);
	ck_assert_ptr_nonnull(c);
	memcpy(c, v, k * sizeof *c);
	*n = k;
	if (training)
		memcpy(grads, m->params->grad, m->params->n * sizeof *grads);
	return c;
}

/* a against b: the same bits when exact; otherwise |a_i - b_i| <= 1e-12
 * (|b_i| + max_j |b_j|) for every i: then the two forms differ only in
 * summation order (a few ulps of the largest summand, and the loss
 * gradient ~1e3 ulps after the second-order pass), so 1e-12 (~4500
 * double ulps) of the vector's scale holds them, while a wrong split (a
 * term missing or counted twice, the rho path of 4.5/4.6 lost, the parts
 * clipped instead of their sum) moves the 6.1 constants by ~1e-2 of it. */
static void lf_compare(const char *what, const double *a, const double *b,
		       size_t n, bool exact)
{
	double scale = 0;
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(isfinite(a[i]) && isfinite(b[i]), "%s[%zu]", what,
			      i);
		scale = fmax(scale, fabs(b[i]));
	}
	ck_assert(scale > 0);
	for (size_t i = 0; i < n; i++) {
		double d = fabs(a[i] - b[i]);
		ck_assert_msg(exact ? d == 0 : d <= 1e-12 * (fabs(b[i]) + scale),
			      "%s[%zu]: reuse %.17g full %.17g", what, i, a[i],
			      b[i]);
	}
}

/* The reusing leapfrog against the full-H gradients on one model and
 * batch: every recorded 6.1 gradient and 6.2 increment, the loss and (in
 * training) every parameter gradient. With clip > 0 the rhvae.grad_clip
 * mitigation is on at clip times the largest |6.1 gradient| of the first
 * iteration (unclipped), so it cuts some elements and not others: the sum
 * must be clipped, not its parts. */
static void lf_check(struct model *m, struct graph *g, double *x,
		     bool training, double clip, bool exact)
{
	size_t na, nb, np = m->params->n, B = MU_NB, d = m->cfg.n_latent;
	double la, lb;
	double *ga = malloc(np * sizeof *ga), *gb = malloc(np * sizeof *gb);
	m->cfg.h_grad_clip = 0;
	if (clip > 0) {
		double *c0 = lf_record(m, g, x, training, false, &na, &la, ga);
		double big = 0;
		for (size_t i = 0; i < B * d; i++)
			big = fmax(big, fabs(c0[i]));
		free(c0);
		m->cfg.h_grad_clip = clip * big;
	}
	double *a = lf_record(m, g, x, training, true, &na, &la, ga);
	double *b = lf_record(m, g, x, training, false, &nb, &lb, gb);
	/* 3 gradients of (B, d) per leapfrog step, then the increments */
	ck_assert_uint_eq(na, nb);
	ck_assert_uint_ge(na, m->cfg.n_lf * 4 * B * d);
	if (clip > 0) {
		size_t over = 0;
		for (size_t i = 0; i < na; i++)
			over += fabs(b[i]) > m->cfg.h_grad_clip;
		ck_assert_uint_gt(over, 0);
		ck_assert_uint_lt(over, na / 2);
	}
	lf_compare("6.1/6.2 constants", a, b, na, exact);
	lf_compare("loss", &la, &lb, 1, exact);
	if (training)
		lf_compare("parameter gradient", ga, gb, np, exact);
	m->cfg.h_grad_clip = 0;
	free(a);
	free(b);
	free(ga);
	free(gb);
}

/* issue 13 item 2: the split of dH/dz (rho-independent part once per
 * leapfrog step) against the straightforward gradient of the whole H, for
 * K = 1 and 2, training (momentum from L, and from the Cholesky factor of
 * G(z0), where rho depends on z0) and evaluation (placeholder metric, and
 * the end-of-epoch metric, where rho depends on z0 through C(z0)), with
 * rhvae.grad_clip off and on, and with the non-quirk position step: the
 * same bits (each gradient is summed in the full H's association). With
 * g3 a constant (rhvae.second_order = false) and K = 2, step 2 also
 * splits, but its z feeds the decoder before A (z's gradient is then
 * summed in another order): within 1e-12 of scale. */
START_TEST(test_leapfrog_reuse_matches_full)
{
	for (size_t K = 1; K <= 2; K++)
		for (int v = 0; v < 4; v++) {
			/* v 1: Cholesky momentum; v 2: the true fixed-point
			 * position step (6.2 differentiates the kinetic term
			 * three times more); v 3: g3 a constant */
			struct model_config mc = tiny_config(K);
			mc.quirk_momentum_l = v != 1;
			mc.quirk_position = v != 2;
			mc.second_order = v != 3;
			bool exact = v != 3 || K == 1;
			struct model *m = make(&mc);
			struct graph *g = NULL;
			struct vb_error err = {0};
			double x[MU_NB * MU_ND];
			ck_assert(graph_create(1 << 20, &g, &err) == VB_OK);
			batch(x, 7);
			for (int clip = 0; clip < 2; clip++) {
				/* placeholder metric first (fresh model) */
				lf_check(m, g, x, false, clip ? 0.5 : 0, exact);
				lf_check(m, g, x, true, clip ? 0.5 : 0, exact);
			}
			ck_assert(model_epoch_end(m, &err) == VB_OK);
			ck_assert_uint_gt(rhvae_n_centroids(m), 0);
			for (int clip = 0; clip < 2; clip++)
				lf_check(m, g, x, false, clip ? 0.5 : 0, exact);
			graph_free(g);
			model_free(m);
		}
}
END_TEST

/* Backward events on decoder nodes, by leapfrog sub-step, for K <= 2
 * (the fused passes fire them; step 6.4's graph-keeping pass builds nodes
 * instead and is not counted). */
struct lf_count {
	size_t dec[3][5]; /* [k][sub]: decoder nodes backpropagated */
};

static void lf_count_hook(void *ctx, struct graph *g, struct graph_node *n,
			  enum graph_event ev)
{
	struct lf_count *c = ctx;
	if (ev != GRAPH_EVENT_BACKWARD || strncmp(n->name, "decoder.", 8))
		return;
	for (int k = 1; k <= 2; k++)
		for (int sub = 1; sub <= 4; sub++)
			if (graph_phase(g) ==
			    GUARD_PHASE_CODE(GUARD_PHASE_LEAPFROG, k, sub))
				c->dec[k][sub]++;
}

/* What the leapfrog's gradient passes walk: step 6.1 backpropagates
 * through the decoder once per leapfrog step with reuse and three times
 * without (from step 2 on, when g3 keeps its graph, three times either
 * way); step 6.2 (the gradient in rho, whose only term is rho^T A rho)
 * never reaches the decoder, in training and evaluation, K = 1 and 2:
 * graph_grad visits only nodes between out and wrt. */
START_TEST(test_leapfrog_decoder_passes)
{
	for (size_t K = 1; K <= 2; K++)
		for (int v = 0; v < 3; v++) {
			/* v 0 evaluation, 1 training, 2 training with g3 a
			 * constant (then rho never depends on z) */
			bool training = v > 0;
			struct model_config mc = tiny_config(K);
			mc.second_order = v != 2;
			struct model *m = make(&mc);
			struct graph *g = NULL;
			struct vb_error err = {0};
			struct lf_count full = {0}, reuse = {0};
			double x[MU_NB * MU_ND];
			batch(x, 8);
			ck_assert(graph_create(1 << 20, &g, &err) == VB_OK);
			rhvae_set_leapfrog_reuse(m, false);
			graph_set_hook(g, lf_count_hook, &full);
			loss_of(m, g, x, training, false);
			rhvae_set_leapfrog_reuse(m, true);
			graph_set_hook(g, lf_count_hook, &reuse);
			loss_of(m, g, x, training, false);
			graph_set_hook(g, NULL, NULL);
			for (size_t k = 1; k <= K; k++) {
				ck_assert_uint_gt(reuse.dec[k][1], 0);
				/* from step 2 on rho depends on the decoder
				 * output (through g3): the whole H, once per
				 * iteration, is already the least walking */
				ck_assert_uint_eq(full.dec[k][1],
						  (k == 1 || v == 2 ? 3 : 1) *
							  reuse.dec[k][1]);
				ck_assert_uint_eq(full.dec[k][2], 0);
				ck_assert_uint_eq(reuse.dec[k][2], 0);
			}
			graph_free(g);
			model_free(m);
		}
}
END_TEST

START_TEST(test_second_order_matters)
{
	/* Treating g3 as a constant keeps the loss and changes the
	 * gradient (rhvae.md 4.8: a different algorithm). */
	struct model_config mc = tiny_config(1);
	struct model *a = make(&mc), *b;
	struct graph *g = NULL;
	struct vb_error err = {0};
	double x[MU_NB * MU_ND];
	batch(x, 6);
	mc.second_order = false;
	b = make(&mc);
	ck_assert(graph_create(1 << 20, &g, &err) == VB_OK);
	double la = loss_of(a, g, x, true, true);
	double lb = loss_of(b, g, x, true, true);
	ck_assert_double_eq(la, lb);
	double diff = 0, norm = 0;
	for (size_t i = 0; i < a->params->n; i++) {
		double d = a->params->grad[i] - b->params->grad[i];
		diff += d * d;
		norm += a->params->grad[i] * a->params->grad[i];
	}
	ck_assert_msg(sqrt(diff) > 1e-6 * sqrt(norm),
		      "second-order term changed the gradient by %g of %g",
		      sqrt(diff), sqrt(norm));
	graph_free(g);
	model_free(a);
	model_free(b);
}
END_TEST

START_TEST(test_buffers_and_eval)
{
	struct model_config mc = tiny_config(1);
	struct model *m = make(&mc);
	struct graph *g = NULL;
	struct vb_error err = {0};
	double x[5][MU_NB * MU_ND];
	ck_assert(graph_create(1 << 20, &g, &err) == VB_OK);
	/* evaluation before any update: the placeholder metric */
	batch(x[0], 40);
	ck_assert_uint_eq(rhvae_n_centroids(m), 0);
	ck_assert(isfinite(loss_of(m, g, x[0], false, false)));
	ck_assert_uint_eq(rhvae_n_buffered(m), 0); /* eval appends nothing */
	double mu_last[3][MU_NB * 3];
	for (int s = 0; s < 5; s++) {
		struct rng r;
		struct model_out mo;
		size_t xs[2] = {MU_NB, MU_ND};
		batch(x[s], 50 + (uint64_t)s);
		rng_seed(&r, 3, RNG_STREAM_NOISE);
		graph_reset(g);
		ck_assert(model_build_loss(m, g,
					   graph_input(g, "input",
						       tensor_view(x[s], 2, xs),
						       false),
					   &r, true, &mo, &err) == VB_OK);
		if (s >= 2)
			for (int i = 0; i < MU_NB * 3; i++)
				mu_last[s - 2][i] = mo.mu->value.data[i];
	}
	/* 5 batches into a 3-batch ring: the last 3 remain */
	ck_assert_uint_eq(rhvae_n_buffered(m), 3);
	ck_assert(model_epoch_end(m, &err) == VB_OK);
	ck_assert_uint_eq(rhvae_n_buffered(m), 0);
	ck_assert_uint_eq(rhvae_n_centroids(m), 3 * MU_NB);
	/* the centroids are those batches' mu, oldest first */
	struct checkpoint_writer *w = NULL;
	ck_assert(checkpoint_writer_create(&w, &err) == VB_OK);
	ck_assert(model_save_state(m, w, &err) == VB_OK);
	const char *dir = tu_tmpdir("rhvae");
	ck_assert(checkpoint_write(w, tu_path(dir, "s.safetensors"), &err) ==
		  VB_OK);
	checkpoint_writer_free(w);
	struct checkpoint *ck = NULL;
	ck_assert(checkpoint_open(tu_path(dir, "s.safetensors"), &ck, &err) ==
		  VB_OK);
	const double *c = checkpoint_data(ck, "centroids");
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(checkpoint_data(ck, "M"));
	ck_assert_ptr_nonnull(checkpoint_data(ck, "beta_zero_sqrt"));
	for (int s = 0; s < 3; s++)
		for (int i = 0; i < MU_NB * 3; i++)
			ck_assert_double_eq(c[s * MU_NB * 3 + i],
					    mu_last[s][i]);
	/* evaluation with the metric is finite and differs from before */
	double le = loss_of(m, g, x[0], false, false);
	ck_assert(isfinite(le));
	/* a fresh model loading that state evaluates identically */
	struct model *m2 = make(&mc);
	for (size_t i = 0; i < m->params->n; i++)
		m2->params->data[i] = m->params->data[i];
	ck_assert(model_load_state(m2, ck, &err) == VB_OK);
	ck_assert_uint_eq(rhvae_n_centroids(m2), 3 * MU_NB);
	ck_assert_double_eq(loss_of(m2, g, x[0], false, false), le);
	checkpoint_close(ck);
	model_free(m2);
	graph_free(g);
	model_free(m);
}
END_TEST

/* The state a checkpoint saves one step into an epoch, the ring of
 * metric buffers mostly unfilled, in a file named name in dir; the heap is
 * first filled with `fill` bytes (blocks of many sizes, freed below a
 * sentinel so they are not returned to the system). */
static void state_after_one_step(int fill, const char *dir, const char *name)
{
	enum { N_BLOCKS = 256 };
	void *blocks[N_BLOCKS], *sentinel;
	for (int i = 0; i < N_BLOCKS; i++) {
		size_t n = 16 * (size_t)(i + 1) * (size_t)(i % 7 + 1);
		blocks[i] = malloc(n);
		ck_assert_ptr_nonnull(blocks[i]);
		memset(blocks[i], fill, n);
	}
	sentinel = malloc(64);
	ck_assert_ptr_nonnull(sentinel);
	for (int i = 0; i < N_BLOCKS; i++)
		free(blocks[i]);
	struct model_config mc = tiny_config(1);
	struct model *m = make(&mc);
	struct graph *g = NULL;
	struct vb_error err = {0};
	struct checkpoint_writer *w = NULL;
	double x[MU_NB * MU_ND];
	ck_assert(graph_create(1 << 20, &g, &err) == VB_OK);
	batch(x, 60);
	ck_assert(isfinite(loss_of(m, g, x, true, false)));
	ck_assert_uint_eq(rhvae_n_buffered(m), 1); /* 1 of the 3 slots */
	ck_assert(checkpoint_writer_create(&w, &err) == VB_OK);
	ck_assert(model_save_state(m, w, &err) == VB_OK);
	ck_assert(checkpoint_write(w, tu_path(dir, name), &err) == VB_OK);
	checkpoint_writer_free(w);
	graph_free(g);
	model_free(m);
	free(sentinel);
}

/* A mid-epoch checkpoint writes the whole ring, filled slots or not: its
 * bytes must not depend on what the heap held before (they did while the
 * ring was malloc'd; found by valgrind). */
START_TEST(test_state_independent_of_heap)
{
	const char *dir = tu_tmpdir("rhvae_heap");
	size_t n0 = 0, n1 = 0;
	state_after_one_step(0x00, dir, "zero.safetensors");
	state_after_one_step(0xa5, dir, "dirty.safetensors");
	char *a = tu_read_file(tu_path(dir, "zero.safetensors"), &n0);
	char *b = tu_read_file(tu_path(dir, "dirty.safetensors"), &n1);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(n0, n1);
	ck_assert_msg(!memcmp(a, b, n0), "the saved state differs with the "
		      "heap's earlier content");
	free(a);
	free(b);
}
END_TEST

static void check_hvae_grad(enum model_sigma sigma)
{
	/* The constants g of the HVAE's dU = g + z (rhvae.md 9.1); with
	 * eps_lf 1e-7 their change under a perturbation moves the loss by
	 * ~1e-7 relative, below the 1e-5 tolerance, so plain central
	 * differences check the rest of the gradient. This check is blind
	 * to the "+ z" path for the same reason; tests/test_hvae.c checks
	 * the whole gradient at eps_lf 0.05 with g recorded and replayed. */
	struct model_config mc = tiny_config(2);
	mc.kind = MODEL_KIND_HVAE;
	mc.eps_lf = 1e-7;
	mc.sigma = sigma;
	struct model *m = make(&mc);
	struct graph *g = NULL;
	struct vb_error err = {0};
	double x[MU_NB * MU_ND];
	batch(x, 8);
	struct mu_grad_result r = mu_grad_check(m, x, MU_NB, NULL, "hvae");
	ck_assert_msg(r.bad == 0, "hvae: %zu of %zu gradients off (worst rel "
		      "%.3g)", r.bad, r.checked, r.worst);
	ck_assert_uint_gt(r.checked, 100);
	ck_assert(graph_create(1 << 20, &g, &err) == VB_OK);
	double l1 = loss_of(m, g, x, true, false);
	if (sigma == MODEL_SIGMA_EXP) {
		/* the softplus quirk changes the forward */
		m->cfg.quirk_hvae_softplus = false;
		ck_assert(loss_of(m, g, x, true, false) != l1);
	} else {
		/* sigma softplus replaces the quirk: std is the same
		 * softplus(s), log q takes 2 log std instead of s */
		struct model_out mo;
		loss_out(m, g, x, true, false, &mo);
		struct graph_node *s = gradcheck_node(g, "encoder.logvar");
		struct graph_node *sd = gradcheck_node(g, "hvae.std");
		ck_assert(s && sd);
		ck_assert_str_eq(sd->op->name, "softplus");
		ck_assert_ptr_eq(mo.logvar, gradcheck_node(g, "hvae.logvar"));
		ck_assert_ptr_null(gradcheck_node(g, "hvae.sigma"));
		for (size_t i = 0; i < sd->value.n; i++) {
			double sp = gradcheck_softplus(s->value.data[i]);
			double lv = 2 * log(sp);
			/* libm against the ops: a few ulps */
			ck_assert_double_eq_tol(mo.logvar->value.data[i], lv,
						1e-14 * fmax(1, fabs(lv)));
		}
		m->cfg.sigma = MODEL_SIGMA_EXP;
		ck_assert(loss_of(m, g, x, true, false) != l1);
	}
	graph_free(g);
	model_free(m);
}

START_TEST(test_hvae_grad)
{
	check_hvae_grad(MODEL_SIGMA_EXP);
}
END_TEST

START_TEST(test_hvae_softplus_grad)
{
	check_hvae_grad(MODEL_SIGMA_SOFTPLUS);
}
END_TEST

/* The HVAE's bce takes logits: bce_eps has nothing to clamp, refused. */
START_TEST(test_hvae_bce_eps_refused)
{
	struct model_config mc = tiny_config(1);
	struct model *m = NULL;
	struct vb_error err = {0};
	mc.kind = MODEL_KIND_HVAE;
	mc.recon = MODEL_RECON_BCE;
	mc.bce_eps = 0.1;
	ck_assert_int_eq(model_create(&mc, &m, &err), VB_ERR_CONFIG);
	ck_assert_ptr_null(m);
	ck_assert_msg(strstr(err.msg, "hvae: bce_eps"), "%s", err.msg);
	mc.bce_eps = 0;
	ck_assert_int_eq(model_create(&mc, &m, &err), VB_OK);
	model_free(m);
}
END_TEST

START_TEST(test_param_names)
{
	struct model_config mc;
	model_config_defaults(&mc);
	mc.kind = MODEL_KIND_RHVAE;
	struct model *m = mu_create(&mc, 1);
	size_t enc = 0, dec = 0, met = 0;
	for (size_t i = 0; i < m->params->n_entries; i++) {
		char c0 = m->params->entries[i].name[0];
		size_t k = m->params->entries[i].n;
		if (c0 == 'e')
			enc += k;
		else if (c0 == 'd')
			dec += k;
		else
			met += k;
	}
	/* rhvae.md 2.3: metric 368,536 with d = 16, D = 784 */
	ck_assert_uint_eq(met, 368536);
	ck_assert_uint_eq(enc, 418336);
	ck_assert_uint_eq(dec, 410896);
	ck_assert(params_find(m->params, "metric.layers.0.weight") >= 0);
	ck_assert(params_find(m->params, "metric.diag.bias") >= 0);
	ck_assert(params_find(m->params, "metric.lower.weight") >= 0);
	model_free(m);
}
END_TEST

TU_MAIN_LOOP("rhvae", "core", 300, test_grad, N_GRAD_CASES, test_tempering,
	     test_param_names, test_second_order_matters,
	     test_leapfrog_reuse_matches_full, test_leapfrog_decoder_passes,
	     test_buffers_and_eval, test_state_independent_of_heap,
	     test_hvae_grad, test_softplus_log_q,
	     test_exp_unchanged, test_hvae_softplus_grad,
	     test_hvae_bce_eps_refused)
