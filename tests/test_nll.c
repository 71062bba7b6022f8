/* test_nll: the held-out measures of model.h (models/nll.c) in double:
 * importance-sampled NLL against the exact log-likelihood by quadrature
 * on a 1-D and a 2-D latent (convergence as the sample count grows, and
 * the bound direction with few samples), the RHVAE's estimate with b = 1
 * (consistent) and b = 0.3 (pythae's missing tempering Jacobian, d log b),
 * the HVAE's, chunking, and the reconstruction errors against hand
 * formulas. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "model.h"
#include "params.h"
#include "rng.h"
#include "modelutil.h"
#include "testutil.h"

#define NR 3
#define NC 3
#define ND (NR * NC)

static struct model_config tiny(enum model_kind kind, size_t d)
{
	struct model_config mc = mu_config(kind, NR, NC, 5, d, 17);
	mc.n_metric_hidden = 4;
	mc.n_batch_max = 8;
	mc.buffer_batches = 2;
	mc.recon = MODEL_RECON_BCE;
	return mc;
}

/* Weights scaled so that p(x | z) depends strongly on z and q(z | x) is
 * visibly not the posterior (else every estimator is exact). */
static struct model *make(const struct model_config *mc, double scale)
{
	return mu_create(mc, scale);
}

static void image(double *x, uint64_t seed)
{
	mu_fill(x, ND, seed, 0.1, 0.8);
}

/* One pixel's log p(x_p | z) from the decoder output yv: the clamped
 * BCE (get_nll's), a unit Gaussian without its 2 pi term (mse), or for
 * the HVAE's bce a Bernoulli with logits yv (rhvae.md 9.1). */
static double log_px_pixel(const struct model *m, double yv, double xp)
{
	if (m->cfg.recon == MODEL_RECON_MSE)
		return -0.5 * (yv - xp) * (yv - xp);
	if (m->cfg.kind == MODEL_KIND_HVAE)
		return -(fmax(yv, 0) - yv * xp + log1p(exp(-fabs(yv))));
	return xp * fmax(log(yv), -100) + (1 - xp) * fmax(log1p(-yv), -100);
}

/* Exact log p(x) = log int p(x|z) N(z; 0, I) dz by the trapezoid rule on
 * [-L, L]^d with n points per axis (d = 1 or 2); log p(x|z) as the
 * consistent estimator's (log_px_pixel). */
static double quadrature(struct model *m, const double *x, double L, size_t n)
{
	size_t d = m->cfg.n_latent, total = d == 1 ? n : n * n, chunk = 4096;
	struct graph *g = NULL;
	struct vb_error err = {0};
	double h = 2 * L / (double)(n - 1), mx = -INFINITY, acc = 0;
	double *lt = malloc(total * sizeof *lt);
	ck_assert(lt && graph_create(1 << 22, &g, &err) == VB_OK);
	for (size_t s = 0; s < total; s += chunk) {
		size_t k = total - s < chunk ? total - s : chunk;
		size_t zs[2] = {k, d};
		graph_reset(g);
		struct tensor zt = graph_tensor(g, 2, zs);
		ck_assert_ptr_nonnull(zt.data);
		for (size_t j = 0; j < k; j++) {
			size_t idx = s + j;
			zt.data[j * d] = -L + h * (double)(idx % n);
			if (d == 2)
				zt.data[j * d + 1] = -L + h * (double)(idx / n);
		}
		struct graph_node *y = NULL;
		ck_assert(model_decode(m, g, graph_input(g, "z", zt, false), &y,
				       &err) == VB_OK);
		for (size_t j = 0; j < k; j++) {
			double lp = 0, z2 = 0, wt = 1;
			for (size_t p = 0; p < ND; p++) {
				double yv = y->value.data[j * ND + p];
				lp += log_px_pixel(m, yv, x[p]);
			}
			if (m->cfg.recon == MODEL_RECON_MSE)
				lp -= 0.5 * ND * 1.8378770664093454836;
			for (size_t c = 0; c < d; c++) {
				double zc = zt.data[j * d + c];
				z2 += zc * zc;
				size_t i = c == 0 ? (s + j) % n : (s + j) / n;
				if (i == 0 || i == n - 1)
					wt *= 0.5;
			}
			lt[s + j] = lp - 0.5 * z2 -
				    0.5 * (double)d * 1.8378770664093454836 + log(wt);
			if (lt[s + j] > mx)
				mx = lt[s + j];
		}
	}
	for (size_t i = 0; i < total; i++)
		acc += exp(lt[i] - mx);
	free(lt);
	graph_free(g);
	return mx + log(acc) + (double)d * log(h);
}

/* Mean and standard error over reps of the NLL estimate with S samples. */
static void estimate(struct model *m, const double *x, size_t S,
		     size_t chunk, int reps, uint64_t seed, double *mean,
		     double *se)
{
	struct graph *g = mu_tape();
	struct vb_error err = {0};
	struct rng r;
	double s1 = 0, s2 = 0;
	rng_seed(&r, seed, RNG_STREAM_NOISE);
	for (int i = 0; i < reps; i++) {
		double nll;
		ck_assert_msg(model_nll(m, g, x, 1, S, chunk, &r, &nll, &err) ==
				      VB_OK,
			      "%s", err.msg);
		ck_assert(isfinite(nll));
		s1 += nll;
		s2 += nll * nll;
	}
	*mean = s1 / reps;
	double var = s2 / reps - *mean * *mean;
	*se = sqrt(fmax(var, 0) / (reps - 1));
	graph_free(g);
}

/* The IS estimate against quadrature, for S = 1, 10, 100, 1000:
 * - few samples: the NLL estimate is a bound from above on average,
 *   E[-log p_S] >= -log p (Jensen); with S = 1 the gap (the KL from q
 *   to the posterior) must show beyond 4 standard errors;
 * - the mean estimate decreases with S (Burda et al. 2016, thm 1) up to
 *   4 standard errors of the difference;
 * - at S = 1000 it is within max(4 SE, 0.01) of the truth: SE is the
 *   standard error of the mean over the repetitions (the weights are
 *   heavy-tailed, so it shrinks slowly: 0.017 at S = 1000 on the 1-D
 *   case); 0.01 absolute is 0.15 % of an NLL of ~7, below every S = 100
 *   gap seen and above the bias var(w) / (2 S p^2) at S = 1000.
 * shift: a known constant the estimator converges to instead (pythae's
 * RHVAE: d log b). The model is made from MC (scale 3), the image is
 * image(x, IMG). */
static void check_convergence(const struct model_config *mc, uint64_t img,
			      double shift, const char *what)
{
	static const size_t S[4] = {1, 10, 100, 1000};
	static const int reps[4] = {400, 400, 100, 40};
	struct model *m = make(mc, 3);
	double x[ND];
	image(x, img);
	size_t d = m->cfg.n_latent;
	double truth = -quadrature(m, x, 10, d == 1 ? 20001 : 801);
	double mean[4], se[4];
	for (int i = 0; i < 4; i++) {
		estimate(m, x, S[i], 64, reps[i], 100 + i, &mean[i], &se[i]);
		mean[i] -= shift;
		fprintf(stderr, "%s d=%zu: quadrature nll %.6f, IS S=%zu: "
			"%.6f +- %.6f (gap %.3g)\n", what, d, truth, S[i],
			mean[i], se[i], mean[i] - truth);
	}
	ck_assert_msg(mean[0] - truth > 4 * se[0],
		      "S=1 gap %.4g not above 4 SE %.3g", mean[0] - truth,
		      se[0]);
	for (int i = 0; i < 4; i++)
		ck_assert_msg(mean[i] - truth > -4 * se[i] - 1e-3,
			      "S=%zu below the truth: %.6f vs %.6f", S[i],
			      mean[i], truth);
	for (int i = 1; i < 4; i++)
		ck_assert_msg(mean[i] <= mean[i - 1] +
						 4 * hypot(se[i], se[i - 1]),
			      "S=%zu mean %.6f above S=%zu's %.6f", S[i],
			      mean[i], S[i - 1], mean[i - 1]);
	ck_assert_msg(fabs(mean[3] - truth) <= fmax(4 * se[3], 0.01),
		      "S=1000: %.6f vs quadrature %.6f", mean[3], truth);
	model_free(m);
}

START_TEST(test_vae_1d)
{
	struct model_config mc = tiny(MODEL_KIND_VAE, 1);
	check_convergence(&mc, 4, 0, "vae");
}
END_TEST

START_TEST(test_vae_2d)
{
	struct model_config mc = tiny(MODEL_KIND_VAE, 2);
	check_convergence(&mc, 6, 0, "vae");
}
END_TEST

/* RHVAE with beta_zero 1 (no tempering) and a small step: the leapfrog
 * is nearly volume-preserving and the momentum terms cancel in
 * expectation, so pythae's estimate is consistent. */
START_TEST(test_rhvae_b1)
{
	struct model_config mc = tiny(MODEL_KIND_RHVAE, 2);
	mc.beta_zero = 1;
	mc.n_lf = 1;
	mc.eps_lf = 1e-3;
	check_convergence(&mc, 6, 0, "rhvae b=1");
}
END_TEST

/* beta_zero 0.3: the tempering scales rho_K by b (Jacobian b^d), which
 * pythae's get_nll leaves out, so its NLL converges to the truth plus
 * d log b (lower by 1.204 d). */
START_TEST(test_rhvae_tempering_jacobian)
{
	struct model_config mc = tiny(MODEL_KIND_RHVAE, 2);
	mc.n_lf = 3;
	mc.eps_lf = 1e-3;
	check_convergence(&mc, 6, 2 * log((double)(vb_real)0.3), "rhvae b=0.3");
}
END_TEST

/* eval.nll_estimator = consistent: the same RHVAE at b = 0.3 converges
 * to the truth itself (the tempering Jacobian added). */
START_TEST(test_rhvae_consistent)
{
	struct model_config mc = tiny(MODEL_KIND_RHVAE, 2);
	mc.n_lf = 3;
	mc.eps_lf = 1e-3;
	mc.nll_consistent = true;
	check_convergence(&mc, 6, 0, "rhvae consistent b=0.3");
}
END_TEST

/* The consistent HVAE estimate (tempering on, b = sqrt(0.3)) converges to
 * the truth, with Bernoulli logits (bce) and with a unit Gaussian (mse,
 * its 2 pi term included). */
START_TEST(test_hvae_consistent)
{
	for (int recon = 0; recon < 2; recon++) {
		struct model_config mc = tiny(MODEL_KIND_HVAE, 2);
		mc.recon = recon ? MODEL_RECON_MSE : MODEL_RECON_BCE;
		mc.n_lf = 3;
		mc.eps_lf = 1e-3;
		mc.nll_consistent = true;
		check_convergence(&mc, 6, 0,
				  recon ? "hvae consistent mse"
					: "hvae consistent bce");
	}
}
END_TEST

/* Same draws, both estimators: the RHVAE's differ by exactly d log b
 * (b = beta_zero = 0.3, pythae's quirk) on every image; the VAE's are
 * equal; the HVAE's (mse) differ by the 2 pi constant and by momentum
 * terms that depend on the draws, so (difference - (D/2) log 2 pi) is not
 * the same on two images. */
START_TEST(test_estimator_difference)
{
	static const enum model_kind kinds[3] = {
		MODEL_KIND_VAE, MODEL_KIND_RHVAE, MODEL_KIND_HVAE};
	double x[3 * ND];
	for (int i = 0; i < 3; i++)
		image(x + i * ND, 6 + (uint64_t)i);
	for (int k = 0; k < 3; k++) {
		struct model_config mc = tiny(kinds[k], 2);
		mc.n_lf = 3;
		mc.eps_lf = 1e-3;
		if (kinds[k] == MODEL_KIND_HVAE)
			mc.recon = MODEL_RECON_MSE;
		struct model *m = make(&mc, 3);
		struct graph *g = mu_tape();
		struct vb_error err = {0};
		double a[3], c[3];
		struct rng r;
		rng_seed(&r, 9, RNG_STREAM_NOISE);
		ck_assert(model_nll(m, g, x, 3, 50, 25, &r, a, &err) == VB_OK);
		m->cfg.nll_consistent = true;
		rng_seed(&r, 9, RNG_STREAM_NOISE);
		ck_assert(model_nll(m, g, x, 3, 50, 25, &r, c, &err) == VB_OK);
		for (int i = 0; i < 3; i++) {
			ck_assert(isfinite(a[i]) && isfinite(c[i]));
			if (kinds[k] == MODEL_KIND_VAE)
				ck_assert_double_eq(a[i], c[i]);
			else if (kinds[k] == MODEL_KIND_RHVAE)
				ck_assert_double_eq_tol(
					c[i] - a[i],
					-2 * log((double)(vb_real)0.3), 1e-9);
		}
		if (kinds[k] == MODEL_KIND_HVAE) {
			double k0 = 0.5 * ND * 1.8378770664093454836;
			ck_assert(fabs((c[0] - a[0] - k0) - (c[1] - a[1] - k0)) >
				  1e-6);
		}
		graph_free(g);
		model_free(m);
	}
}
END_TEST

/* Chunking does not change the estimate's law: the same draws in chunks
 * of 1, 7 and 1000 give the same value (the forward is row-wise). */
START_TEST(test_chunks)
{
	struct model_config mc = tiny(MODEL_KIND_VAE, 2);
	struct model *m = make(&mc, 3);
	struct graph *g = mu_tape();
	struct vb_error err = {0};
	double x[2 * ND], a[2], b[2], c[2];
	image(x, 6);
	image(x + ND, 7);
	struct rng r;
	rng_seed(&r, 1, RNG_STREAM_NOISE);
	ck_assert(model_nll(m, g, x, 2, 21, 1000, &r, a, &err) == VB_OK);
	rng_seed(&r, 1, RNG_STREAM_NOISE);
	ck_assert(model_nll(m, g, x, 2, 21, 7, &r, b, &err) == VB_OK);
	rng_seed(&r, 1, RNG_STREAM_NOISE);
	ck_assert(model_nll(m, g, x, 2, 21, 1, &r, c, &err) == VB_OK);
	for (int i = 0; i < 2; i++) {
		ck_assert(isfinite(a[i]));
		/* the VAE draws eps per chunk in row order: the same numbers
		 * whatever the chunking; sums in another order, 1e-12 */
		ck_assert_double_eq_tol(a[i], b[i], 1e-12 * fabs(a[i]));
		ck_assert_double_eq_tol(a[i], c[i], 1e-12 * fabs(a[i]));
	}
	ck_assert_int_eq(model_nll(m, g, x, 2, 0, 7, &r, a, &err),
			 VB_ERR_CONFIG);
	ck_assert_uint_eq(model_nll_pythae_samples(1, 100), 100);
	ck_assert_uint_eq(model_nll_pythae_samples(250, 100), 200);
	ck_assert_uint_eq(model_nll_pythae_samples(1000, 100), 1000);
	graph_free(g);
	model_free(m);
}
END_TEST

/* The HVAE's get_nll (pythae's formula) with eps_lf -> 0 and K = 1:
 * z_K = z0, rho_K = b gamma / b = gamma, so log w = log p(x|z0) (mse, no
 * 2 pi) - 0.5 |z0|^2 - 0.5 |gamma|^2 (1 - b) - log q; with one sample, the
 * draws replayed from the same stream give that value by hand. */
START_TEST(test_hvae_formula)
{
	struct model_config mc = tiny(MODEL_KIND_HVAE, 2);
	mc.recon = MODEL_RECON_MSE;
	mc.n_lf = 1;
	mc.eps_lf = 1e-12;
	struct model *m = make(&mc, 1);
	struct graph *g = mu_tape();
	struct vb_error err = {0};
	double x[ND], nll;
	image(x, 6);
	struct rng r;
	rng_seed(&r, 5, RNG_STREAM_NOISE);
	ck_assert(model_nll(m, g, x, 1, 1, 1, &r, &nll, &err) == VB_OK);
	/* by hand: encoder mean/logvar via the tape, draws replayed */
	double eps[2], gam[2];
	rng_seed(&r, 5, RNG_STREAM_NOISE);
	rng_fill_normal(&r, eps, 2, 0, 1);
	rng_fill_normal(&r, gam, 2, 0, 1);
	graph_reset(g);
	size_t xs[2] = {1, ND}, zs[2] = {1, 2};
	struct model_out mo;
	struct rng r2;
	rng_seed(&r2, 5, RNG_STREAM_NOISE);
	ck_assert(model_build_loss(m, g, graph_input(g, "x",
						     tensor_view(x, 2, xs),
						     false),
				   &r2, false, &mo, &err) == VB_OK);
	double mu[2], lv[2], z[2];
	for (int k = 0; k < 2; k++) {
		mu[k] = mo.mu->value.data[k];
		lv[k] = mo.logvar->value.data[k];
		z[k] = mu[k] + eps[k] * exp(0.5 * lv[k]);
	}
	graph_reset(g);
	struct tensor zt = graph_tensor(g, 2, zs);
	zt.data[0] = z[0];
	zt.data[1] = z[1];
	struct graph_node *y = NULL;
	ck_assert(model_decode(m, g, graph_input(g, "z", zt, false), &y,
			       &err) == VB_OK);
	double b = sqrt(0.3), lw = 0;
	for (int p = 0; p < ND; p++)
		lw -= 0.5 * (y->value.data[p] - x[p]) * (y->value.data[p] - x[p]);
	for (int k = 0; k < 2; k++) {
		lw -= 0.5 * z[k] * z[k];
		lw -= 0.5 * gam[k] * gam[k] * (1 - b);
		lw += 0.5 * (lv[k] + eps[k] * eps[k]);
	}
	/* eps_lf 1e-12 moves z and rho by ~1e-12: 1e-9 absolute */
	ck_assert_double_eq_tol(nll, -lw, 1e-9);
	graph_free(g);
	model_free(m);
}
END_TEST

/* Reconstruction errors by hand: decoder weights 0 and output bias c make
 * y = sigmoid(c) for every pixel, whatever z. */
START_TEST(test_recon_error)
{
	struct model_config mc = tiny(MODEL_KIND_VAE, 2);
	struct model *m = make(&mc, 1);
	long last = -1;
	for (size_t e = 0; e < m->params->n_entries; e++) {
		if (strncmp(m->params->entries[e].name, "decoder", 7))
			continue;
		memset(m->params->data + m->params->entries[e].offset, 0,
		       m->params->entries[e].n * sizeof(vb_real));
		last = (long)e;
	}
	ck_assert(last >= 0 && m->params->entries[last].n == ND);
	double x[2 * ND], sse[2], bce[2];
	image(x, 1);
	image(x + ND, 2);
	struct graph *g = mu_tape();
	struct vb_error err = {0};
	ck_assert(model_recon_error(m, g, x, 2, sse, bce, &err) == VB_OK);
	for (int b = 0; b < 2; b++) {
		double s = 0;
		for (int p = 0; p < ND; p++)
			s += (0.5 - x[b * ND + p]) * (0.5 - x[b * ND + p]);
		ck_assert_double_eq_tol(sse[b], s, 1e-14);
		ck_assert_double_eq_tol(bce[b], ND * log(2.0), 1e-13);
	}
	/* output bias 800: y = 1 exactly, log(1 - y) clamped at -100 */
	for (size_t i = 0; i < ND; i++)
		m->params->data[m->params->entries[last].offset + i] = 800;
	ck_assert(model_recon_error(m, g, x, 2, sse, NULL, &err) == VB_OK);
	ck_assert(model_recon_error(m, g, x, 2, NULL, bce, &err) == VB_OK);
	for (int b = 0; b < 2; b++) {
		double s = 0, c = 0;
		for (int p = 0; p < ND; p++) {
			s += (1 - x[b * ND + p]) * (1 - x[b * ND + p]);
			c += 100 * (1 - x[b * ND + p]);
		}
		ck_assert_double_eq_tol(sse[b], s, 1e-14);
		ck_assert_double_eq_tol(bce[b], c, 1e-11);
	}
	graph_free(g);
	model_free(m);
}
END_TEST

/* Seeds as knobs (issue 15 item 6, model level): weights come from
 * model.init_seed's init stream alone, so the same init_seed gives the
 * same weights whatever the batch size, loss or mitigation settings, and
 * another init_seed other weights; train.seed never reaches model_create. */
START_TEST(test_init_stream_only)
{
	static const enum model_kind kinds[4] = {
		MODEL_KIND_VAE, MODEL_KIND_RHVAE, MODEL_KIND_HVAE,
		MODEL_KIND_ANCHOR};
	for (int k = 0; k < 4; k++) {
		struct model_config a = tiny(kinds[k], 2), b = a, c = a;
		b.n_batch_max = 64;
		b.recon = MODEL_RECON_MSE;
		b.n_lf = 3;
		b.eps_lf = 0.5;
		c.init_seed = a.init_seed + 1;
		struct model *ma = make(&a, 1), *mb = make(&b, 1),
			     *mc = make(&c, 1);
		ck_assert_uint_eq(ma->params->n, mb->params->n);
		ck_assert(!memcmp(ma->params->data, mb->params->data,
				  ma->params->n * sizeof(vb_real)));
		ck_assert(memcmp(ma->params->data, mc->params->data,
				 ma->params->n * sizeof(vb_real)));
		model_free(ma);
		model_free(mb);
		model_free(mc);
	}
}
END_TEST

TU_MAIN("nll", "core", 300, test_recon_error, test_init_stream_only,
	test_chunks, test_hvae_formula, test_vae_1d, test_vae_2d, test_rhvae_b1,
	test_rhvae_tempering_jacobian, test_rhvae_consistent,
	test_hvae_consistent, test_estimator_difference)
