/* test_vae: the VAE loss (rhvae.md section 3) in double: its value against
 * a hand-written reference of the formula, and every parameter's gradient
 * against central differences, for both reconstruction losses, the
 * softplus sigma and the BCE output clamp (issue 6), on a tiny network
 * (D 12, hidden 5, latent 3, batch 4); the default tape pinned. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "graph.h"
#include "graph_grad.h"
#include "model.h"
#include "ops.h"
#include "params.h"
#include "rng.h"
#include "modelutil.h"
#include "testutil.h"

static struct model *tiny_with(enum model_recon recon, enum model_sigma sigma,
			       double bce_eps)
{
	struct model_config mc = mu_config(MODEL_KIND_VAE, MU_NR, MU_NC, 5,
					    3, 11);
	mc.recon = recon;
	mc.sigma = sigma;
	mc.bce_eps = bce_eps;
	/* Larger weights than the default init so relus are not all alike
	 * and the sigmoid is away from 0.5. */
	return mu_create(&mc, 2);
}

static struct model *tiny(enum model_recon recon)
{
	return tiny_with(recon, MODEL_SIGMA_EXP, 0);
}

static void batch(double *x)
{
	mu_fill(x, MU_NB * MU_ND, 5, 0.05, 0.9); /* grey levels in (0,1) */
}

/* Loss with the noise stream reseeded: eps is the same every call. The
 * tape's nodes stay readable in *out (may be NULL) until the next call. */
static double loss_out(struct model *m, struct graph *g, double *x,
		       bool backward, struct model_out *out)
{
	return mu_loss(m, g, x, MU_NB, true, backward, out);
}

static double loss_of(struct model *m, struct graph *g, double *x,
		      bool backward)
{
	return loss_out(m, g, x, backward, NULL);
}

/* Recomputes the loss from the formula with plain loops (independent of
 * the tape), using the same eps draws, under m's recon, sigma (exp:
 * std = exp(s / 2), logvar = s; softplus: std = softplus(s),
 * logvar = 2 log std) and bce_eps (y clamped to [eps, 1 - eps]). */
static double reference_loss(struct model *m, const double *x)
{
	enum model_recon recon = m->cfg.recon;
	bool sp = m->cfg.sigma == MODEL_SIGMA_SOFTPLUS;
	double ce = m->cfg.bce_eps;
	struct params *p = m->params;
	const double *W1 = params_value(p, 0).data, *b1 = params_value(p, 1).data;
	const double *Wm = params_value(p, 2).data, *bm = params_value(p, 3).data;
	const double *Wv = params_value(p, 4).data, *bv = params_value(p, 5).data;
	const double *V1 = params_value(p, 6).data, *c1 = params_value(p, 7).data;
	const double *V2 = params_value(p, 8).data, *c2 = params_value(p, 9).data;
	double eps[MU_NB * 3], total = 0;
	struct rng r;
	rng_seed(&r, 3, RNG_STREAM_NOISE);
	rng_fill_normal(&r, eps, MU_NB * 3, 0, 1);
	for (int b = 0; b < MU_NB; b++) {
		double h[5], mu[3], lv[3], z[3], a[5], rec = 0, kl = 0;
		for (int j = 0; j < 5; j++) {
			double s = b1[j];
			for (int i = 0; i < MU_ND; i++)
				s += W1[j * MU_ND + i] * x[b * MU_ND + i];
			h[j] = s > 0 ? s : 0;
		}
		for (int k = 0; k < 3; k++) {
			double s = bm[k], t = bv[k];
			for (int j = 0; j < 5; j++) {
				s += Wm[k * 5 + j] * h[j];
				t += Wv[k * 5 + j] * h[j];
			}
			mu[k] = s;
			if (sp) {
				double sd = gradcheck_softplus(t);
				lv[k] = 2 * log(sd);
				z[k] = mu[k] + eps[b * 3 + k] * sd;
			} else {
				lv[k] = t;
				z[k] = mu[k] +
				       eps[b * 3 + k] * exp(0.5 * lv[k]);
			}
			kl += -0.5 * (1 + lv[k] - mu[k] * mu[k] - exp(lv[k]));
		}
		for (int j = 0; j < 5; j++) {
			double s = c1[j];
			for (int k = 0; k < 3; k++)
				s += V1[j * 3 + k] * z[k];
			a[j] = s > 0 ? s : 0;
		}
		for (int i = 0; i < MU_ND; i++) {
			double s = c2[i];
			for (int j = 0; j < 5; j++)
				s += V2[i * 5 + j] * a[j];
			double y = 1 / (1 + exp(-s)), t = x[b * MU_ND + i];
			if (recon == MODEL_RECON_BCE && ce > 0)
				y = fmin(fmax(y, ce), 1 - ce);
			if (recon == MODEL_RECON_MSE)
				rec += 0.5 * (y - t) * (y - t);
			else
				rec += -(t * fmax(log(y), -100) +
					 (1 - t) * fmax(log1p(-y), -100));
		}
		total += rec + kl;
	}
	return total / MU_NB;
}

static void check_loss(enum model_recon recon, enum model_sigma sigma,
		       double bce_eps)
{
	struct model *m = tiny_with(recon, sigma, bce_eps);
	struct graph *g = NULL;
	struct vb_error err = {0};
	double x[MU_NB * MU_ND];
	size_t n = m->params->n;
	batch(x);
	ck_assert(graph_create(1 << 20, &g, &err) == VB_OK);

	double l = loss_of(m, g, x, true);
	double ref = reference_loss(m, x);
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
			      "%s %s %g: %s[%zu]: analytic %.12g numeric %.12g",
			      model_recon_name(recon), model_sigma_name(sigma),
			      bce_eps,
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

/* BCE_EPS clamps some outputs of the tiny model at both ends and leaves
 * the rest inside with a margin (test_vae_bce_eps_clamp asserts that). */
#define BCE_EPS 0.1

/* The whole loss gradient of each (recon, sigma, bce_eps) (loop index):
 * mse and bce with sigma exp and softplus, then bce clamped at BCE_EPS. */
static const struct {
	enum model_recon recon;
	enum model_sigma sigma;
	double bce_eps;
} GRAD_CASES[] = {
	{MODEL_RECON_MSE, MODEL_SIGMA_EXP, 0},
	{MODEL_RECON_BCE, MODEL_SIGMA_EXP, 0},
	{MODEL_RECON_MSE, MODEL_SIGMA_SOFTPLUS, 0},
	{MODEL_RECON_BCE, MODEL_SIGMA_SOFTPLUS, 0},
	{MODEL_RECON_BCE, MODEL_SIGMA_EXP, BCE_EPS},
	{MODEL_RECON_BCE, MODEL_SIGMA_SOFTPLUS, BCE_EPS},
};
#define N_GRAD_CASES ((int)(sizeof GRAD_CASES / sizeof GRAD_CASES[0]))

START_TEST(test_vae_grad)
{
	check_loss(GRAD_CASES[_i].recon, GRAD_CASES[_i].sigma,
		   GRAD_CASES[_i].bce_eps);
}
END_TEST

/* sigma softplus: std = softplus(s) of the encoder's head, the logvar the
 * KL uses is 2 log std, z = mu + eps std, per-sample KL by hand. */
START_TEST(test_vae_softplus_nodes)
{
	struct model *m = tiny_with(MODEL_RECON_MSE, MODEL_SIGMA_SOFTPLUS, 0);
	struct graph *g = NULL;
	struct vb_error err = {0};
	struct model_out mo;
	double x[MU_NB * MU_ND];
	batch(x);
	ck_assert(graph_create(1 << 20, &g, &err) == VB_OK);
	ck_assert(isfinite(loss_out(m, g, x, false, &mo)));
	struct graph_node *sd = mu_check_softplus_std(g, "vae", &mo);
	struct graph_node *s = gradcheck_node(g, "encoder.logvar");
	struct graph_node *lv = mo.logvar;
	struct graph_node *eps = gradcheck_node(g, "vae.eps");
	ck_assert(eps);
	ck_assert_ptr_eq(sd->in[0], s);
	mu_check_reparam(g, mo.z, eps, &mo);
	for (int b = 0; b < MU_NB; b++) {
		double kl = 0;
		for (int k = 0; k < 3; k++) {
			size_t i = (size_t)b * 3 + k;
			double e = gradcheck_softplus(s->value.data[i]);
			double mu = mo.mu->value.data[i];
			ck_assert_double_eq_tol(lv->value.data[i], 2 * log(e),
						1e-14 * fmax(1, fabs(log(e))));
			kl += -0.5 * (1 + 2 * log(e) - mu * mu - e * e);
		}
		/* exp(2 log std) against std^2: rounding of a few ulps */
		ck_assert_double_eq_tol(mo.reg->value.data[b], kl,
					1e-13 * fmax(1, fabs(kl)));
	}
	graph_free(g);
	model_free(m);
}
END_TEST

/* The logvar clamp bounds the head s before the softplus: std is at most
 * softplus(logvar_max), reached where s was clamped. */
START_TEST(test_vae_softplus_logvar_clamp)
{
	struct model_config mc;
	struct model *m = NULL;
	struct graph *g = NULL;
	struct vb_error err = {0};
	struct model_out mo;
	double x[MU_NB * MU_ND];
	size_t n_at = 0;
	mc = mu_config(MODEL_KIND_VAE, MU_NR, MU_NC, 5, 3, 11);
	mc.sigma = MODEL_SIGMA_SOFTPLUS;
	mc.logvar_clamp = true;
	mc.logvar_max = -0.05;
	ck_assert_msg(model_create(&mc, &m, &err) == VB_OK, "%s", err.msg);
	batch(x);
	ck_assert(graph_create(1 << 20, &g, &err) == VB_OK);
	ck_assert(isfinite(loss_out(m, g, x, false, &mo)));
	struct graph_node *sd = gradcheck_node(g, "vae.std");
	struct graph_node *c = gradcheck_node(g, "encoder.logvar.clamp");
	ck_assert(sd && c);
	ck_assert_ptr_eq(sd->in[0], c);
	for (size_t i = 0; i < sd->value.n; i++) {
		double top = gradcheck_softplus(mc.logvar_max);
		ck_assert(sd->value.data[i] <= top);
		n_at += sd->value.data[i] == top;
	}
	ck_assert_uint_gt(n_at, 0);
	ck_assert_uint_lt(n_at, sd->value.n);
	graph_free(g);
	model_free(m);
}
END_TEST

/* bce_eps: x_hat clamped to [eps, 1 - eps] between the decoder and the
 * BCE; the recon term by hand; d loss / d x_hat is exactly 0 where the
 * clamp is active and (y - t) / (y (1 - y)) / B elsewhere. */
START_TEST(test_vae_bce_eps_clamp)
{
	struct model *m = tiny_with(MODEL_RECON_BCE, MODEL_SIGMA_EXP, BCE_EPS);
	struct graph *g = NULL;
	struct vb_error err = {0};
	struct model_out mo;
	struct graph_node *gy = NULL;
	double x[MU_NB * MU_ND], rec[MU_NB] = {0};
	size_t n_lo = 0, n_hi = 0, n_in = 0;
	batch(x);
	ck_assert(graph_create(1 << 20, &g, &err) == VB_OK);
	double l = loss_out(m, g, x, false, &mo);
	struct graph_node *c = gradcheck_node(g, "loss.bce_clamp");
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->op->name, "clamp");
	ck_assert_ptr_eq(c->in[0], mo.y);
	ck_assert_ptr_eq(gradcheck_node(g, "loss.recon")->in[0], c);
	ck_assert_msg(graph_grad(g, mo.loss, NULL, &mo.y, 1, false, &gy,
				 &err) == VB_OK, "%s", err.msg);
	for (size_t i = 0; i < (size_t)MU_NB * MU_ND; i++) {
		double y = mo.y->value.data[i], t = x[i], yc = y;
		double gi = gy->value.data[i];
		/* every output 1e-3 away from the clamp's edges, so the
		 * central differences of test_vae_bce_eps_grad (which move y
		 * by ~1e-5) stay on one side of the kink */
		ck_assert_msg(fabs(y - BCE_EPS) > 1e-3 &&
				      fabs(y - (1 - BCE_EPS)) > 1e-3,
			      "y[%zu] = %.6g too close to the clamp", i, y);
		if (y < BCE_EPS || y > 1 - BCE_EPS) {
			yc = y < BCE_EPS ? BCE_EPS : 1 - BCE_EPS;
			n_lo += y < BCE_EPS;
			n_hi += y > 1 - BCE_EPS;
			ck_assert_msg(gi == 0, "clamped y[%zu]: grad %g", i,
				      gi);
		} else {
			double want = (y - t) / (y * (1 - y)) / MU_NB;
			n_in++;
			/* the same three operations in another order */
			ck_assert_msg(fabs(gi - want) <= 1e-13 * fabs(want),
				      "y[%zu]: grad %.17g, want %.17g", i, gi,
				      want);
		}
		ck_assert_double_eq(c->value.data[i], yc);
		rec[i / MU_ND] += -(t * log(yc) + (1 - t) * log1p(-yc));
	}
	ck_assert_uint_gt(n_lo, 0);
	ck_assert_uint_gt(n_hi, 0);
	ck_assert_uint_gt(n_in, 0);
	for (int b = 0; b < MU_NB; b++)
		/* sums of 12 logs in another order */
		ck_assert_double_eq_tol(mo.recon->value.data[b], rec[b],
					1e-13 * rec[b]);
	/* without the clamp: no clamp node and another loss */
	m->cfg.bce_eps = 0;
	ck_assert(loss_out(m, g, x, false, &mo) != l);
	ck_assert_ptr_null(gradcheck_node(g, "loss.bce_clamp"));
	ck_assert_ptr_eq(gradcheck_node(g, "loss.recon")->in[0], mo.y);
	graph_free(g);
	model_free(m);
}
END_TEST

/* sigma exp and bce_eps 0 (the defaults) build pythae's tape op for op
 * and give the loss of the code before issue 6. The tape list and the
 * values were printed by the tiny model of this suite at commit a031ee7
 * (before the sigma and bce_eps settings existed), same machine. */
START_TEST(test_vae_exp_unchanged)
{
	static const char *const tape[] = {
		"input -", "encoder.layers.0.0.weight -",
		"encoder.layers.0.0.bias -", "encoder.embedding.weight -",
		"encoder.embedding.bias -", "encoder.log_var.weight -",
		"encoder.log_var.bias -", "decoder.layers.0.0.weight -",
		"decoder.layers.0.0.bias -", "decoder.layers.1.0.weight -",
		"decoder.layers.1.0.bias -", "encoder.fc1 linear",
		"encoder.fc1.relu relu", "encoder.mu linear",
		"encoder.logvar linear", "vae.half_logvar scale",
		"vae.std exp", "vae.eps -", "vae.eps_std mul", "vae.z add",
		"decoder.fc1 linear", "decoder.fc1.relu relu",
		"decoder.out linear", "decoder.out.sigmoid sigmoid",
		"loss.recon bce", "loss.kl.var exp", "loss.kl.mu_sq square",
		"loss.kl.one add_scalar", "loss.kl.mu2 sub",
		"loss.kl.inner sub", "loss.kl.sum sum_rows", "loss.kl scale",
		"loss.per_sample add", "loss.total mean"};
	const double gold[2] = {4.6129549338738709, 14.271917428068619};
	struct model_config mc;
	model_config_defaults(&mc);
	ck_assert_int_eq(mc.sigma, MODEL_SIGMA_EXP);
	ck_assert(mc.bce_eps == 0);
	for (int rc = 0; rc < 2; rc++) {
		enum model_recon recon = rc ? MODEL_RECON_BCE : MODEL_RECON_MSE;
		struct model *m = tiny(recon);
		struct graph *g = NULL;
		struct vb_error err = {0};
		double x[MU_NB * MU_ND];
		char buf[96];
		batch(x);
		ck_assert(graph_create(1 << 20, &g, &err) == VB_OK);
		double l = loss_of(m, g, x, false);
		/* bit for bit on the machine that printed gold; 1e-14
		 * relative leaves another BLAS kernel's summation order */
		ck_assert_msg(fabs(l - gold[rc]) <= 1e-14 * gold[rc],
			      "%s: loss %.17g, before issue 6 %.17g",
			      model_recon_name(recon), l, gold[rc]);
		ck_assert_uint_eq(graph_node_count(g),
				  sizeof tape / sizeof *tape);
		for (size_t i = 0; i < graph_node_count(g); i++) {
			struct graph_node *n = graph_node_at(g, i);
			snprintf(buf, sizeof buf, "%s %s", n->name,
				 n->op ? n->op->name : "-");
			if (rc == 0 && strcmp(tape[i], "loss.recon bce") == 0)
				ck_assert_str_eq(buf, "loss.recon mse");
			else
				ck_assert_str_eq(buf, tape[i]);
		}
		graph_free(g);
		model_free(m);
	}
}
END_TEST

/* Settings out of range are refused at create, by every model that reads
 * them. */
START_TEST(test_vae_config_checks)
{
	const enum model_kind kinds[3] = {MODEL_KIND_VAE, MODEL_KIND_ANCHOR,
					  MODEL_KIND_RHVAE};
	const double bad_eps[3] = {0.5, -1e-3, NAN};
	for (int k = 0; k < 3; k++) {
		for (int e = 0; e < 4; e++) {
			struct model_config mc;
			struct model *m = NULL;
			struct vb_error err = {0};
			/* the default init_seed (8) */
			mc = mu_config(kinds[k], MU_NR, MU_NC, 5, 3, 8);
			mc.n_metric_hidden = 5;
			mc.recon = MODEL_RECON_BCE;
			if (e < 3)
				mc.bce_eps = bad_eps[e];
			else
				mc.sigma = (enum model_sigma)7;
			ck_assert_int_eq(model_create(&mc, &m, &err),
					 VB_ERR_CONFIG);
			ck_assert_ptr_null(m);
			ck_assert_msg(strstr(err.msg, e < 3 ? "bce_eps"
							   : "sigma"),
				      "%s", err.msg);
		}
	}
	/* the largest allowed value is accepted */
	struct model *m = tiny_with(MODEL_RECON_BCE, MODEL_SIGMA_SOFTPLUS,
				    0.4999);
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(model_sigma_name(MODEL_SIGMA_SOFTPLUS), "softplus");
	ck_assert_str_eq(model_sigma_name(MODEL_SIGMA_EXP), "exp");
	model_free(m);
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

TU_MAIN_LOOP("vae", "core", 120, test_vae_grad, N_GRAD_CASES,
	     test_vae_softplus_nodes, test_vae_softplus_logvar_clamp,
	     test_vae_bce_eps_clamp, test_vae_exp_unchanged,
	     test_vae_config_checks, test_vae_param_names)
