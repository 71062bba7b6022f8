/* test_validate: model_validate_args finds where pythae's PyTorch would
 * raise (issue 15 item 4): a NaN latent at the RHVAE's first prior log
 * density (ValueError, exact message), an infinite latent passing that
 * check and the first NaN one raising later, NaN reconstructions at the
 * VAE's BCE (RuntimeError), finite runs and mse VAEs/HVAEs never; the
 * scan changes nothing. */
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

#define NB 4
#define ND 9

static struct model *make(enum model_kind kind, enum model_recon recon)
{
	struct model_config mc = mu_config(kind, 3, 3, 5, 3, 3);
	mc.recon = recon;
	mc.n_metric_hidden = 4;
	mc.n_batch_max = NB;
	mc.buffer_batches = 2;
	mc.n_lf = 1;
	return mu_create(&mc, 1);
}

static vb_real *param(struct model *m, const char *name)
{
	long e = params_find(m->params, name);
	ck_assert_msg(e >= 0, "%s", name);
	return m->params->data + m->params->entries[e].offset;
}

static double forward(struct model *m, struct graph *g, struct model_out *mo)
{
	static vb_real x[NB * ND];
	size_t xs[2] = {NB, ND};
	struct rng r;
	struct vb_error err = {0};
	for (int i = 0; i < NB * ND; i++)
		x[i] = (vb_real)(0.1 + 0.08 * (i % 10));
	rng_seed(&r, 1, RNG_STREAM_NOISE);
	graph_reset(g);
	ck_assert_msg(model_build_loss(m, g, graph_input(g, "x",
						       tensor_view(x, 2, xs),
						       false),
				       &r, true, mo, &err) == VB_OK,
		      "%s", err.msg);
	return mo->loss->value.data[0];
}

/* model_validate_args raises ERROR at NODE with MESSAGE (NULL: not
 * compared). */
static void expect_raised(struct model *m, struct graph *g,
			  struct model_validate *v, const char *error,
			  const char *node, const char *message)
{
	ck_assert(model_validate_args(m, g, v));
	ck_assert_str_eq(v->error, error);
	if (node)
		ck_assert_str_eq(v->node, node);
	if (message)
		ck_assert_str_eq(v->message, message);
}

/* A model of KIND and RECON with parameter NAME[I] set to VALUE, its
 * loss built on a fresh tape *G (the caller frees both); *LOSS (may be
 * NULL) its value. */
static struct model *poisoned(enum model_kind kind, enum model_recon recon,
			      const char *name, size_t i, vb_real value,
			      struct graph **g, struct model_out *mo,
			      double *loss)
{
	struct model *m = make(kind, recon);
	*g = mu_tape();
	param(m, name)[i] = value;
	double l = forward(m, *g, mo);
	if (loss)
		*loss = l;
	return m;
}

START_TEST(test_finite_never_raises)
{
	static const enum model_kind kinds[3] = {
		MODEL_KIND_VAE, MODEL_KIND_RHVAE, MODEL_KIND_HVAE};
	struct graph *g = mu_tape();
	for (int k = 0; k < 3; k++)
		for (int rc = 0; rc < 2; rc++) {
			struct model *m = make(kinds[k], (enum model_recon)rc);
			struct model_out mo;
			struct model_validate v;
			forward(m, g, &mo);
			ck_assert(!model_validate_args(m, g, &v));
			ck_assert(!v.raised);
			model_free(m);
		}
	graph_free(g);
}
END_TEST

/* A NaN encoder bias makes z0 NaN for the whole batch: pythae's first
 * MultivariateNormal.log_prob is the prior inside the first Hamiltonian
 * of step 6.1 (#131's error, a tensor of shape (64, 16) there). */
START_TEST(test_rhvae_nan_latent)
{
	struct graph *g;
	struct model_out mo;
	struct model_validate v;
	double l;
	struct model *m = poisoned(MODEL_KIND_RHVAE, MODEL_RECON_MSE,
				   "encoder.embedding.bias", 0, NAN, &g, &mo,
				   &l);
	ck_assert(isnan(l));
	expect_raised(m, g, &v, "ValueError", "rhvae.lf1.H.z2",
		      "Expected value argument (Tensor of shape (4, 3)) to "
		      "be within the support (IndependentConstraint(Real(), "
		      "1)) of the distribution MultivariateNormal(loc: "
		      "torch.Size([3]), covariance_matrix: torch.Size([3, "
		      "3])), but found invalid values:");
	/* only coordinate 0 of mu is NaN, in every row */
	ck_assert_uint_eq(v.n_invalid, NB);
	ck_assert_uint_eq(v.n_values, NB * 3);
	/* reading changes nothing: the same forward gives the same tape */
	struct model_validate v2;
	ck_assert(model_validate_args(m, g, &v2));
	ck_assert_uint_eq(v2.node_id, v.node_id);
	graph_free(g);
	model_free(m);
}
END_TEST

/* Real() accepts +-inf: an infinite z0 passes the first prior and the
 * run raises where the first NaN reaches a prior. */
START_TEST(test_rhvae_inf_latent)
{
	struct graph *g;
	struct model_out mo;
	/* logvar 1e4 in float: exp(5e3) = inf, z0 = +-inf */
	struct model *m = poisoned(MODEL_KIND_RHVAE, MODEL_RECON_MSE,
				   "encoder.log_var.bias", 1, (vb_real)1e30,
				   &g, &mo, NULL);
	struct graph_node *z0 = mo.z0;
	ck_assert_ptr_nonnull(z0);
	bool inf = false;
	for (size_t i = 0; i < z0->value.n; i++) {
		ck_assert(!isnan(z0->value.data[i]));
		inf |= isinf(z0->value.data[i]);
	}
	ck_assert(inf);
	struct model_validate v;
	/* raised later than the first prior (the 6.4 Hamiltonian at
	 * z_1 = inf + NaN), on a NaN */
	expect_raised(m, g, &v, "ValueError", NULL, NULL);
	{
		ck_assert_str_ne(v.node, "");
		const struct graph_node *first = NULL;
		for (size_t i = 0; i < graph_node_count(g) && !first; i++) {
			struct graph_node *n = graph_node_at(g, i);
			size_t len = strlen(n->name);
			if (len > 5 && !strcmp(n->name + len - 5, ".H.z2"))
				first = n;
		}
		ck_assert_ptr_nonnull(first);
		ck_assert_uint_gt(v.node_id, first->id);
		fprintf(stderr, "inf z0: raised at %s (%zu of %zu NaN)\n",
			v.node, v.n_invalid, v.n_values);
	}
	graph_free(g);
	model_free(m);
}
END_TEST

START_TEST(test_vae_bce_nan)
{
	struct graph *g;
	struct model_out mo;
	struct model *m = poisoned(MODEL_KIND_VAE, MODEL_RECON_BCE,
				   "encoder.embedding.bias", 0, NAN, &g, &mo,
				   NULL);
	struct model_validate v;
	expect_raised(m, g, &v, "RuntimeError", "loss.recon",
		      "all elements of input should be between 0 and 1");
	ck_assert_uint_eq(v.n_invalid, NB * ND);
	/* mse: pythae's VAE calls no validated function */
	struct model *m2 = make(MODEL_KIND_VAE, MODEL_RECON_MSE);
	param(m2, "encoder.embedding.bias")[0] = NAN;
	forward(m2, g, &mo);
	ck_assert(!model_validate_args(m2, g, &v));
	model_free(m2);
	graph_free(g);
	model_free(m);
}
END_TEST

TU_MAIN("validate", "core", 0, test_finite_never_raises, test_rhvae_nan_latent,
	test_rhvae_inf_latent, test_vae_bce_nan)
