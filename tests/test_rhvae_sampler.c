/* test_rhvae_sampler: pythae's RHVAE prior sampler (rhvae.md 4.10) in
 * double: on a metric whose density sqrt(det A) is exactly N(0, I) the
 * samples have N(0, I) moments; on a tiny RHVAE's own metric after one
 * epoch end the samples are finite and the same bits for the same seed;
 * bad inputs are refused. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "model.h"
#include "rhvae.h"
#include "rhvae_sampler.h"
#include "rng.h"
#include "modelutil.h"
#include "testutil.h"

/* One centroid at 0, M = I, Z = 2, T^2 = 2, lambda ~ 0: A(z) = exp(-|z|^2
 * / 2) I, so sqrt(det A) = exp(-|z|^2 / 2), the N(0, I) density up to a
 * constant (the 1e-10 and lambda floors matter only beyond |z| ~ 5). The
 * accept step makes the chain exact although pythae's force (-z / 2 here)
 * is not the gradient (-z) of that log density. */
START_TEST(test_identity_metric_is_normal)
{
	enum { N = 4000, Z = 2 };
	static const vb_real c[Z] = {0, 0}, M[Z * Z] = {1, 0, 0, 1};
	struct rhvae_sampler_metric mt = {.n_centroids = 1, .n_latent = Z,
					  .centroids = c, .M = M,
					  .temperature = sqrt(2.0),
					  .lambda = 1e-12};
	struct rhvae_sampler_config s;
	struct rng r;
	struct vb_error err = {0};
	vb_real *z = malloc(N * Z * sizeof *z);
	double mean[Z] = {0}, var[Z] = {0}, cov = 0;
	ck_assert_ptr_nonnull(z);
	rhvae_sampler_defaults(&s);
	s.mcmc_steps = 30;
	s.n_lf = 10;
	s.eps_lf = 0.3;
	rng_seed(&r, 5, RNG_STREAM_NOISE);
	ck_assert_msg(rhvae_sampler_run(&mt, &s, &r, N, z, &err) == VB_OK,
		      "%s", err.msg);
	for (int i = 0; i < N; i++)
		for (int a = 0; a < Z; a++)
			mean[a] += z[i * Z + a] / (double)N;
	for (int i = 0; i < N; i++) {
		for (int a = 0; a < Z; a++)
			var[a] += (z[i * Z + a] - mean[a]) *
				  (z[i * Z + a] - mean[a]) / (double)(N - 1);
		cov += (z[i * Z] - mean[0]) * (z[i * Z + 1] - mean[1]) /
		       (double)(N - 1);
	}
	/* independent chains: the standard error of a mean is 1/sqrt(N) =
	 * 0.016 and of a variance sqrt(2/N) = 0.022; 5 of them allowed */
	for (int a = 0; a < Z; a++) {
		ck_assert_msg(fabs(mean[a]) < 0.08, "mean[%d] %g", a, mean[a]);
		ck_assert_msg(fabs(var[a] - 1) < 0.11, "var[%d] %g", a, var[a]);
	}
	ck_assert_msg(fabs(cov) < 0.08, "cov %g", cov);
	free(z);
}
END_TEST

/* A tiny RHVAE (Z = 3) with its metric made by one epoch end. */
static struct model *tiny_rhvae(void)
{
	enum { NB = 4, NR = 4, NC = 3, ND = NR * NC };
	struct model_config mc;
	struct model *m = NULL;
	struct graph *g = NULL;
	struct vb_error err = {0};
	double x[NB * ND];
	size_t xs[2] = {NB, ND};
	mc = mu_config(MODEL_KIND_RHVAE, NR, NC, 6, 3, 21);
	mc.n_metric_hidden = 5;
	mc.n_batch_max = NB;
	mc.buffer_batches = 2;
	m = mu_create(&mc, 1);
	ck_assert(graph_create(1 << 20, &g, &err) == VB_OK);
	for (int s = 0; s < 2; s++) {
		struct rng r, rx;
		struct model_out mo;
		rng_seed(&rx, 40 + (uint64_t)s, RNG_STREAM_INJECT);
		for (int i = 0; i < NB * ND; i++)
			x[i] = 0.05 + 0.9 * rng_uniform(&rx);
		rng_seed(&r, 3, RNG_STREAM_NOISE);
		graph_reset(g);
		ck_assert_msg(model_build_loss(m, g,
					       graph_input(g, "input",
							   tensor_view(x, 2,
								       xs),
							   false),
					       &r, true, &mo, &err) == VB_OK,
			      "%s", err.msg);
	}
	ck_assert(model_epoch_end(m, &err) == VB_OK);
	graph_free(g);
	return m;
}

START_TEST(test_tiny_model_finite_deterministic)
{
	enum { N = 16 };
	struct model *m = tiny_rhvae();
	struct rhvae_sampler_metric mt;
	struct rhvae_sampler_config s;
	struct vb_error err = {0};
	vb_real a[N * 3], b[N * 3];
	struct rng r;
	bool moved = false;
	ck_assert_msg(rhvae_sampler_metric_of(m, &mt, &err) == VB_OK, "%s",
		      err.msg);
	ck_assert_uint_eq(mt.n_centroids, 8);
	ck_assert_uint_eq(mt.n_latent, 3);
	rhvae_sampler_defaults(&s);
	s.mcmc_steps = 20;
	rng_seed(&r, 9, RNG_STREAM_NOISE);
	ck_assert(rhvae_sampler_run(&mt, &s, &r, N, a, &err) == VB_OK);
	rng_seed(&r, 9, RNG_STREAM_NOISE);
	ck_assert(rhvae_sampler_run(&mt, &s, &r, N, b, &err) == VB_OK);
	ck_assert(!memcmp(a, b, sizeof a));
	for (int i = 0; i < N * 3; i++)
		ck_assert_msg(isfinite(a[i]), "z[%d] = %g", i, a[i]);
	/* the chains left their starting centroids */
	for (int i = 0; i < N && !moved; i++) {
		bool at = false;
		for (size_t j = 0; j < mt.n_centroids && !at; j++)
			at = !memcmp(&a[i * 3], &mt.centroids[j * 3],
				     3 * sizeof *a);
		moved = !at;
	}
	ck_assert(moved);
	model_free(m);
}
END_TEST

START_TEST(test_refused)
{
	vb_real z[4];
	struct rhvae_sampler_config s;
	rhvae_sampler_defaults(&s);
	struct rhvae_sampler_metric mt = {0};
	struct vb_error err = {0};
	struct rng r;
	rng_seed(&r, 1, RNG_STREAM_NOISE);
	ck_assert(rhvae_sampler_run(&mt, &s, &r, 1, z, &err) == VB_ERR_USAGE);
	/* a VAE, and an RHVAE before its first epoch end, have no metric */
	struct model_config mc = mu_config(MODEL_KIND_VAE, 2, 2, 3, 2, 8);
	struct model *m = NULL;
	mc.n_batch_max = 2;
	ck_assert(model_create(&mc, &m, &err) == VB_OK);
	ck_assert(rhvae_sampler_metric_of(m, &mt, &err) == VB_ERR_USAGE);
	model_free(m);
	mc.kind = MODEL_KIND_RHVAE;
	mc.n_metric_hidden = 3;
	ck_assert(model_create(&mc, &m, &err) == VB_OK);
	memset(&err, 0, sizeof err);
	ck_assert(rhvae_sampler_metric_of(m, &mt, &err) == VB_ERR_USAGE);
	ck_assert_msg(strstr(err.msg, "first epoch end") != NULL, "%s",
		      err.msg);
	model_free(m);
}
END_TEST

TU_MAIN("rhvae_sampler", "sampler", 120, test_identity_metric_is_normal,
	test_tiny_model_finite_deterministic, test_refused)
