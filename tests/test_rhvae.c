/* test_rhvae: the RHVAE (rhvae.md section 4) in double: tempering factors
 * (4.4), the whole loss gradient against central differences with the
 * step-6.1 and 6.2 constants held fixed (4.8) for K = 1 and K = 2 and both
 * momentum sources, the effect of the second-order term, the ring buffers
 * and end-of-epoch metric (4.9), evaluation mode (4.6), and the
 * checkpoint state. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "checkpoint.h"
#include "graph.h"
#include "linalg.h"
#include "model.h"
#include "ops.h"
#include "params.h"
#include "rhvae.h"
#include "rng.h"
#include "testutil.h"

#define NB 4
#define NR 4
#define NC 3
#define ND (NR * NC)

static struct model_config tiny_config(size_t n_lf)
{
	struct model_config mc;
	model_config_defaults(&mc);
	mc.kind = MODEL_KIND_RHVAE;
	mc.n_rows = NR;
	mc.n_cols = NC;
	mc.n_hidden = 6;
	mc.n_latent = 3;
	mc.n_metric_hidden = 5;
	mc.n_batch_max = NB;
	mc.buffer_batches = 3;
	mc.n_lf = n_lf;
	/* a step large enough that the leapfrog moves z visibly */
	mc.eps_lf = 0.05;
	mc.regularization = 0.01;
	mc.init_seed = 21;
	return mc;
}

static struct model *make(const struct model_config *mc)
{
	struct model *m = NULL;
	struct vb_error err = {0};
	ck_assert_msg(model_create(mc, &m, &err) == VB_OK, "%s", err.msg);
	/* larger weights than the default init: M and the decoder's
	 * curvature are then not negligible next to lambda I and the prior */
	for (size_t i = 0; i < m->params->n; i++)
		m->params->data[i] *= 2;
	return m;
}

static void batch(double *x, uint64_t seed)
{
	struct rng r;
	rng_seed(&r, seed, RNG_STREAM_INJECT);
	for (int i = 0; i < NB * ND; i++)
		x[i] = 0.05 + 0.9 * rng_uniform(&r);
}

static double loss_of(struct model *m, struct graph *g, double *x,
		      bool training, bool backward)
{
	struct rng r;
	struct model_out mo;
	struct vb_error err = {0};
	size_t xs[2] = {NB, ND};
	rng_seed(&r, 3, RNG_STREAM_NOISE);
	graph_reset(g);
	ck_assert_msg(model_build_loss(m, g,
				       graph_input(g, "input",
						   tensor_view(x, 2, xs),
						   false),
				       &r, training, &mo, &err) == VB_OK,
		      "%s", err.msg);
	if (backward) {
		params_zero_grad(m->params);
		ck_assert_msg(graph_backward(g, mo.loss, &err) == VB_OK, "%s",
			      err.msg);
	}
	return mo.loss->value.data[0];
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

/* The whole loss gradient vs central differences with the 6.1/6.2
 * constants recorded at the base point and replayed when perturbed. */
static void check_grad(struct model_config mc)
{
	struct model *m = make(&mc);
	struct graph *g = NULL;
	struct vb_error err = {0};
	double x[NB * ND];
	size_t n = m->params->n, checked = 0;
	batch(x, 5);
	ck_assert(graph_create(1 << 20, &g, &err) == VB_OK);
	rhvae_set_freeze(m, RHVAE_FREEZE_RECORD);
	double l0 = loss_of(m, g, x, true, true);
	ck_assert(isfinite(l0));
	double *an = malloc(n * sizeof *an);
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(isfinite(m->params->grad[i]), "grad %zu", i);
		an[i] = m->params->grad[i];
	}
	rhvae_set_freeze(m, RHVAE_FREEZE_REPLAY);
	ck_assert_double_eq(loss_of(m, g, x, true, false), l0);
	for (size_t i = 0; i < n; i++) {
		long e = params_locate(m->params, i);
		if (e < 0)
			continue;
		double *w = &m->params->data[i], w0 = *w;
		double h = 1e-5 * fmax(1, fabs(w0));
		*w = w0 + h;
		rhvae_set_freeze(m, RHVAE_FREEZE_REPLAY);
		double lp = loss_of(m, g, x, true, false);
		*w = w0 - h;
		rhvae_set_freeze(m, RHVAE_FREEZE_REPLAY);
		double lm = loss_of(m, g, x, true, false);
		*w = w0;
		double num = (lp - lm) / (2 * h);
		/* rtol 1e-5 (STYLE.md 6); atol 1e-8 for exact zeros (dead
		 * relus); the loss is O(10), so double rounding in the
		 * difference quotient is ~1e-15 * 10 / 1e-5 = 1e-9 */
		double tol = 1e-8 + 1e-5 * fmax(fabs(an[i]), fabs(num));
		ck_assert_msg(fabs(an[i] - num) <= tol,
			      "K=%zu %s[%zu]: analytic %.12g numeric %.12g",
			      mc.n_lf, m->params->entries[e].name,
			      i - m->params->entries[e].offset, an[i], num);
		checked++;
	}
	ck_assert_uint_gt(checked, 200);
	free(an);
	graph_free(g);
	model_free(m);
}

START_TEST(test_grad_k1)
{
	check_grad(tiny_config(1));
}
END_TEST

START_TEST(test_grad_k2)
{
	check_grad(tiny_config(2));
}
END_TEST

START_TEST(test_grad_cholesky_momentum)
{
	struct model_config mc = tiny_config(1);
	mc.quirk_momentum_l = false;
	check_grad(mc);
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
	double x[NB * ND];
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
	double x[5][NB * ND];
	ck_assert(graph_create(1 << 20, &g, &err) == VB_OK);
	/* evaluation before any update: the placeholder metric */
	batch(x[0], 40);
	ck_assert_uint_eq(rhvae_n_centroids(m), 0);
	ck_assert(isfinite(loss_of(m, g, x[0], false, false)));
	ck_assert_uint_eq(rhvae_n_buffered(m), 0); /* eval appends nothing */
	double mu_last[3][NB * 3];
	for (int s = 0; s < 5; s++) {
		struct rng r;
		struct model_out mo;
		size_t xs[2] = {NB, ND};
		batch(x[s], 50 + (uint64_t)s);
		rng_seed(&r, 3, RNG_STREAM_NOISE);
		graph_reset(g);
		ck_assert(model_build_loss(m, g,
					   graph_input(g, "input",
						       tensor_view(x[s], 2, xs),
						       false),
					   &r, true, &mo, &err) == VB_OK);
		if (s >= 2)
			for (int i = 0; i < NB * 3; i++)
				mu_last[s - 2][i] = mo.mu->value.data[i];
	}
	/* 5 batches into a 3-batch ring: the last 3 remain */
	ck_assert_uint_eq(rhvae_n_buffered(m), 3);
	ck_assert(model_epoch_end(m, &err) == VB_OK);
	ck_assert_uint_eq(rhvae_n_buffered(m), 0);
	ck_assert_uint_eq(rhvae_n_centroids(m), 3 * NB);
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
		for (int i = 0; i < NB * 3; i++)
			ck_assert_double_eq(c[s * NB * 3 + i], mu_last[s][i]);
	/* evaluation with the metric is finite and differs from before */
	double le = loss_of(m, g, x[0], false, false);
	ck_assert(isfinite(le));
	/* a fresh model loading that state evaluates identically */
	struct model *m2 = make(&mc);
	for (size_t i = 0; i < m->params->n; i++)
		m2->params->data[i] = m->params->data[i];
	ck_assert(model_load_state(m2, ck, &err) == VB_OK);
	ck_assert_uint_eq(rhvae_n_centroids(m2), 3 * NB);
	ck_assert_double_eq(loss_of(m2, g, x[0], false, false), le);
	checkpoint_close(ck);
	model_free(m2);
	graph_free(g);
	model_free(m);
}
END_TEST

START_TEST(test_hvae_grad)
{
	/* The HVAE's potential gradients are constants (rhvae.md 9.1); with
	 * eps_lf 1e-7 their change under a perturbation moves the loss by
	 * ~1e-7 relative, below the 1e-5 tolerance, so plain central
	 * differences check the rest of the gradient. */
	struct model_config mc = tiny_config(2);
	mc.kind = MODEL_KIND_HVAE;
	mc.eps_lf = 1e-7;
	struct model *m = make(&mc);
	struct graph *g = NULL;
	struct vb_error err = {0};
	double x[NB * ND];
	batch(x, 8);
	ck_assert(graph_create(1 << 20, &g, &err) == VB_OK);
	ck_assert(isfinite(loss_of(m, g, x, true, true)));
	size_t n = m->params->n, checked = 0;
	double *an = malloc(n * sizeof *an);
	for (size_t i = 0; i < n; i++)
		an[i] = m->params->grad[i];
	for (size_t i = 0; i < n; i++) {
		long e = params_locate(m->params, i);
		if (e < 0)
			continue;
		double *w = &m->params->data[i], w0 = *w;
		double h = 1e-5 * fmax(1, fabs(w0));
		*w = w0 + h;
		double lp = loss_of(m, g, x, true, false);
		*w = w0 - h;
		double lm = loss_of(m, g, x, true, false);
		*w = w0;
		double num = (lp - lm) / (2 * h);
		double tol = 1e-8 + 1e-5 * fmax(fabs(an[i]), fabs(num));
		ck_assert_msg(fabs(an[i] - num) <= tol,
			      "hvae %s: analytic %.12g numeric %.12g",
			      m->params->entries[e].name, an[i], num);
		checked++;
	}
	ck_assert_uint_gt(checked, 100);
	/* the softplus quirk changes the forward */
	double l1 = loss_of(m, g, x, true, false);
	m->cfg.quirk_hvae_softplus = false;
	ck_assert(loss_of(m, g, x, true, false) != l1);
	free(an);
	graph_free(g);
	model_free(m);
}
END_TEST

START_TEST(test_param_names)
{
	struct model_config mc;
	struct model *m = NULL;
	struct vb_error err = {0};
	model_config_defaults(&mc);
	mc.kind = MODEL_KIND_RHVAE;
	ck_assert(model_create(&mc, &m, &err) == VB_OK);
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

int main(void)
{
	Suite *s = suite_create("rhvae");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_tempering);
	tcase_add_test(tc, test_param_names);
	tcase_add_test(tc, test_grad_k1);
	tcase_add_test(tc, test_grad_k2);
	tcase_add_test(tc, test_grad_cholesky_momentum);
	tcase_add_test(tc, test_second_order_matters);
	tcase_add_test(tc, test_buffers_and_eval);
	tcase_add_test(tc, test_hvae_grad);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
