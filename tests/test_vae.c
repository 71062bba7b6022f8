/* test_vae: the VAE loss (rhvae.md section 3) in double: its value against
 * a hand-written reference of the formula, and every parameter's gradient
 * against central differences, for both reconstruction losses, on a tiny
 * network (D 12, hidden 5, latent 3, batch 4). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "graph.h"
#include "model.h"
#include "ops.h"
#include "params.h"
#include "rng.h"

#define NB 4
#define NR 4
#define NC 3
#define ND (NR * NC)

static struct model *tiny(enum model_recon recon)
{
	struct model_config mc;
	struct model *m = NULL;
	struct vb_error err = {0};
	model_config_defaults(&mc);
	mc.recon = recon;
	mc.n_rows = NR;
	mc.n_cols = NC;
	mc.n_hidden = 5;
	mc.n_latent = 3;
	mc.init_seed = 11;
	ck_assert_msg(model_create(&mc, &m, &err) == VB_OK, "%s", err.msg);
	/* Larger weights than the default init so relus are not all alike
	 * and the sigmoid is away from 0.5. */
	for (size_t i = 0; i < m->params->n; i++)
		m->params->data[i] *= 2;
	return m;
}

static void batch(double *x)
{
	struct rng r;
	rng_seed(&r, 5, RNG_STREAM_INJECT);
	for (int i = 0; i < NB * ND; i++)
		x[i] = 0.05 + 0.9 * rng_uniform(&r); /* grey levels in (0,1) */
}

/* Loss with the noise stream reseeded: eps is the same every call. */
static double loss_of(struct model *m, struct graph *g, double *x,
		      bool backward)
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
				       &r, true, &mo, &err) == VB_OK,
		      "%s", err.msg);
	if (backward) {
		params_zero_grad(m->params);
		ck_assert(graph_backward(g, mo.loss, &err) == VB_OK);
	}
	return mo.loss->value.data[0];
}

/* Recomputes the loss from the formula with plain loops (independent of
 * the tape), using the same eps draws. */
static double reference_loss(struct model *m, const double *x,
			     enum model_recon recon)
{
	struct params *p = m->params;
	const double *W1 = params_value(p, 0).data, *b1 = params_value(p, 1).data;
	const double *Wm = params_value(p, 2).data, *bm = params_value(p, 3).data;
	const double *Wv = params_value(p, 4).data, *bv = params_value(p, 5).data;
	const double *V1 = params_value(p, 6).data, *c1 = params_value(p, 7).data;
	const double *V2 = params_value(p, 8).data, *c2 = params_value(p, 9).data;
	double eps[NB * 3], total = 0;
	struct rng r;
	rng_seed(&r, 3, RNG_STREAM_NOISE);
	rng_fill_normal(&r, eps, NB * 3, 0, 1);
	for (int b = 0; b < NB; b++) {
		double h[5], mu[3], lv[3], z[3], a[5], rec = 0, kl = 0;
		for (int j = 0; j < 5; j++) {
			double s = b1[j];
			for (int i = 0; i < ND; i++)
				s += W1[j * ND + i] * x[b * ND + i];
			h[j] = s > 0 ? s : 0;
		}
		for (int k = 0; k < 3; k++) {
			double s = bm[k], t = bv[k];
			for (int j = 0; j < 5; j++) {
				s += Wm[k * 5 + j] * h[j];
				t += Wv[k * 5 + j] * h[j];
			}
			mu[k] = s;
			lv[k] = t;
			z[k] = mu[k] + eps[b * 3 + k] * exp(0.5 * lv[k]);
			kl += -0.5 * (1 + lv[k] - mu[k] * mu[k] - exp(lv[k]));
		}
		for (int j = 0; j < 5; j++) {
			double s = c1[j];
			for (int k = 0; k < 3; k++)
				s += V1[j * 3 + k] * z[k];
			a[j] = s > 0 ? s : 0;
		}
		for (int i = 0; i < ND; i++) {
			double s = c2[i];
			for (int j = 0; j < 5; j++)
				s += V2[i * 5 + j] * a[j];
			double y = 1 / (1 + exp(-s)), t = x[b * ND + i];
			if (recon == MODEL_RECON_MSE)
				rec += 0.5 * (y - t) * (y - t);
			else
				rec += -(t * fmax(log(y), -100) +
					 (1 - t) * fmax(log1p(-y), -100));
		}
		total += rec + kl;
	}
	return total / NB;
}

static void check_recon(enum model_recon recon)
{
	struct model *m = tiny(recon);
	struct graph *g = NULL;
	struct vb_error err = {0};
	double x[NB * ND];
	size_t n = m->params->n;
	batch(x);
	ck_assert(graph_create(1 << 20, &g, &err) == VB_OK);

	double l = loss_of(m, g, x, true);
	double ref = reference_loss(m, x, recon);
	/* same formula, same draws, double: only summation order differs */
	ck_assert_msg(fabs(l - ref) <= 1e-12 * fmax(1, fabs(ref)),
		      "loss %.17g, reference %.17g", l, ref);

	double *an = malloc(n * sizeof *an);
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(isfinite(m->params->grad[i]), "grad %zu", i);
		an[i] = m->params->grad[i];
	}
	size_t checked = 0;
	for (size_t i = 0; i < n; i++) {
		long e = params_locate(m->params, i);
		if (e < 0)
			continue; /* alignment padding between tensors */
		double *w = &m->params->data[i], w0 = *w;
		double h = 1e-5 * fmax(1, fabs(w0));
		*w = w0 + h;
		double lp = loss_of(m, g, x, false);
		*w = w0 - h;
		double lm = loss_of(m, g, x, false);
		*w = w0;
		double num = (lp - lm) / (2 * h);
		/* rtol 1e-5: central differences in double have truncation
		 * error O(h^2 f''') ~ 1e-10 relative and rounding ~1e-11 / h;
		 * atol 1e-8 for gradients that are exactly 0 (dead relus). */
		double tol = 1e-8 + 1e-5 * fmax(fabs(an[i]), fabs(num));
		ck_assert_msg(fabs(an[i] - num) <= tol,
			      "%s: %s[%zu]: analytic %.12g numeric %.12g",
			      model_recon_name(recon),
			      m->params->entries[e].name,
			      i - m->params->entries[e].offset, an[i], num);
		checked++;
	}
	ck_assert_uint_eq(checked, 12 * 5 + 5 + 2 * (5 * 3 + 3) + 3 * 5 + 5 +
					   5 * 12 + 12);

	/* signed check along a random direction: a sign error must fail */
	struct rng r;
	rng_seed(&r, 99, RNG_STREAM_INJECT);
	double *dir = malloc(n * sizeof *dir), dot = 0, h = 1e-6;
	rng_fill_normal(&r, dir, n, 0, 1);
	for (size_t i = 0; i < n; i++)
		dot += an[i] * dir[i];
	double *w0 = malloc(n * sizeof *w0);
	for (size_t i = 0; i < n; i++)
		w0[i] = m->params->data[i];
	for (size_t i = 0; i < n; i++)
		m->params->data[i] = w0[i] + h * dir[i];
	double lp = loss_of(m, g, x, false);
	for (size_t i = 0; i < n; i++)
		m->params->data[i] = w0[i] - h * dir[i];
	double lm = loss_of(m, g, x, false);
	double num = (lp - lm) / (2 * h);
	ck_assert_msg(fabs(dot - num) <= 1e-6 * fmax(1, fabs(num)),
		      "directional: analytic %.12g numeric %.12g", dot, num);
	free(w0);
	free(dir);
	free(an);
	graph_free(g);
	model_free(m);
}

START_TEST(test_vae_mse_grad)
{
	check_recon(MODEL_RECON_MSE);
}
END_TEST

START_TEST(test_vae_bce_grad)
{
	check_recon(MODEL_RECON_BCE);
}
END_TEST

START_TEST(test_vae_param_names)
{
	struct model *m = tiny(MODEL_RECON_MSE);
	const char *names[] = {
		"encoder.layers.0.0.weight", "encoder.layers.0.0.bias",
		"encoder.embedding.weight",  "encoder.embedding.bias",
		"encoder.log_var.weight",    "encoder.log_var.bias",
		"decoder.layers.0.0.weight", "decoder.layers.0.0.bias",
		"decoder.layers.1.0.weight", "decoder.layers.1.0.bias"};
	ck_assert_uint_eq(m->params->n_entries, 10);
	for (int i = 0; i < 10; i++)
		ck_assert_str_eq(m->params->entries[i].name, names[i]);
	model_free(m);
	/* pythae's default networks at D 784, d 16: encoder 418,336 and
	 * decoder 410,896 parameters (rhvae.md 2.3). */
	struct model_config mc;
	struct vb_error err = {0};
	model_config_defaults(&mc);
	ck_assert(model_create(&mc, &m, &err) == VB_OK);
	size_t enc = 0, dec = 0;
	for (size_t i = 0; i < m->params->n_entries; i++) {
		if (m->params->entries[i].name[0] == 'e')
			enc += m->params->entries[i].n;
		else
			dec += m->params->entries[i].n;
	}
	ck_assert_uint_eq(enc, 418336);
	ck_assert_uint_eq(dec, 410896);
	/* PyTorch default init: |w| <= 1/sqrt(fan_in) */
	struct tensor w = params_value(m->params, 0);
	double bound = 1 / sqrt(784.0), mx = 0;
	for (size_t i = 0; i < w.n; i++)
		mx = fmax(mx, fabs(w.data[i]));
	ck_assert(mx <= bound && mx > 0.99 * bound);
	model_free(m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vae");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_vae_mse_grad);
	tcase_add_test(tc, test_vae_bce_grad);
	tcase_add_test(tc, test_vae_param_names);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
