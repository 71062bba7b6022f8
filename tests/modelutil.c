/* modelutil: tiny model configs, creation, batches and losses for the
 * model suites. */
#include "modelutil.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "gradcheck.h"
#include "params.h"
#include "rng.h"
#include "tensor.h"

struct model_config mu_config(enum model_kind kind, size_t n_rows,
			      size_t n_cols, size_t n_hidden,
			      size_t n_latent, uint64_t init_seed)
{
	struct model_config mc;
	model_config_defaults(&mc);
	mc.kind = kind;
	mc.n_rows = n_rows;
	mc.n_cols = n_cols;
	mc.n_hidden = n_hidden;
	mc.n_latent = n_latent;
	mc.init_seed = init_seed;
	return mc;
}

struct model *mu_create(const struct model_config *mc, double scale)
{
	struct model *m = NULL;
	struct vb_error err = {0};
	ck_assert_msg(model_create(mc, &m, &err) == VB_OK, "%s", err.msg);
	if (scale != 1)
		for (size_t i = 0; i < m->params->n; i++)
			m->params->data[i] *= scale;
	return m;
}

void mu_fill(vb_real *x, size_t n, uint64_t seed, double lo, double width)
{
	struct rng r;
	rng_seed(&r, seed, RNG_STREAM_INJECT);
	for (size_t i = 0; i < n; i++)
		x[i] = lo + width * rng_uniform(&r);
}

struct graph *mu_tape(void)
{
	struct graph *g = NULL;
	struct vb_error err = {0};
	ck_assert_msg(graph_create(1 << 20, &g, &err) == VB_OK, "%s",
		      err.msg);
	return g;
}

double mu_loss(struct model *m, struct graph *g, vb_real *x, size_t B,
	       bool training, bool backward, struct model_out *out)
{
	return mu_loss_seeded(m, g, x, B, training, backward, 3, out);
}

double mu_loss_seeded(struct model *m, struct graph *g, vb_real *x, size_t B,
		      bool training, bool backward, uint64_t noise_seed,
		      struct model_out *out)
{
	struct rng r;
	struct model_out mo;
	struct vb_error err = {0};
	size_t xs[2] = {B, m->cfg.n_rows * m->cfg.n_cols};
	rng_seed(&r, noise_seed, RNG_STREAM_NOISE);
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
	if (out)
		*out = mo;
	return mo.loss->value.data[0];
}

/* One central difference of the loss at parameter i (replaying the
 * constants when freeze is given). */
static double central_diff(struct model *m, struct graph *g, vb_real *x,
			   size_t B, mu_freeze_fn freeze, size_t i)
{
	vb_real *w = &m->params->data[i], w0 = *w;
	double h = 1e-5 * fmax(1, fabs(w0)), l[2];
	for (int s = 0; s < 2; s++) {
		*w = w0 + (s ? -h : h);
		if (freeze)
			freeze(m, false);
		l[s] = mu_loss(m, g, x, B, true, false, NULL);
	}
	*w = w0;
	return (l[0] - l[1]) / (2 * h);
}

struct mu_grad_result mu_grad_check(struct model *m, vb_real *x, size_t B,
				    mu_freeze_fn freeze, const char *tag)
{
	struct mu_grad_result r = {0, 0, 0};
	struct graph *g = NULL;
	struct vb_error err = {0};
	size_t n = m->params->n;
	double *an = malloc(n * sizeof *an), l0;
	ck_assert_ptr_nonnull(an);
	ck_assert_msg(graph_create(1 << 20, &g, &err) == VB_OK, "%s", err.msg);
	if (freeze)
		freeze(m, true);
	l0 = mu_loss(m, g, x, B, true, true, NULL);
	ck_assert(isfinite(l0));
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(isfinite(m->params->grad[i]), "grad %zu", i);
		an[i] = m->params->grad[i];
	}
	if (freeze) {
		freeze(m, false);
		ck_assert_double_eq(mu_loss(m, g, x, B, true, false, NULL),
				    l0);
	}
	for (size_t i = 0; i < n; i++) {
		long e = params_locate(m->params, i);
		if (e < 0)
			continue;
		double num = central_diff(m, g, x, B, freeze, i);
		double big = fmax(fabs(an[i]), fabs(num));
		double diff = fabs(an[i] - num);
		if (diff > 1e-8 && diff / fmax(1e-8, big) > r.worst)
			r.worst = diff / fmax(1e-8, big);
		if (diff > 1e-8 + 1e-5 * big && r.bad++ < 3)
			fprintf(stderr, "%s %s[%zu]: analytic %.12g "
				"numeric %.12g\n", tag,
				m->params->entries[e].name,
				i - m->params->entries[e].offset, an[i], num);
		r.checked++;
	}
	free(an);
	graph_free(g);
	return r;
}

struct graph_node *mu_check_softplus_std(struct graph *g, const char *name,
					 const struct model_out *out)
{
	char full[64];
	struct graph_node *s = gradcheck_node(g, "encoder.logvar"), *sd;
	snprintf(full, sizeof full, "%s.std", name);
	sd = gradcheck_node(g, full);
	ck_assert_msg(s && sd, "no encoder.logvar or %s", full);
	ck_assert_str_eq(sd->op->name, "softplus");
	snprintf(full, sizeof full, "%s.logvar", name);
	ck_assert_ptr_eq(out->logvar, gradcheck_node(g, full));
	snprintf(full, sizeof full, "%s.half_logvar", name);
	ck_assert_ptr_null(gradcheck_node(g, full));
	ck_assert_uint_eq(sd->value.n, s->value.n);
	for (size_t i = 0; i < sd->value.n; i++) {
		double e = gradcheck_softplus(s->value.data[i]);
		ck_assert_double_eq_tol(sd->value.data[i], e, 1e-15 * e);
	}
	return sd;
}

void mu_check_reparam(struct graph *g, const struct graph_node *z,
		      const struct graph_node *eps,
		      const struct model_out *out)
{
	struct graph_node *s = gradcheck_node(g, "encoder.logvar");
	ck_assert(s && z && eps && z->value.n == s->value.n);
	for (size_t i = 0; i < z->value.n; i++) {
		double e = gradcheck_softplus(s->value.data[i]);
		double mu = out->mu->value.data[i];
		ck_assert_double_eq_tol(z->value.data[i],
					mu + eps->value.data[i] * e,
					1e-14 * fmax(1, fabs(mu)));
	}
}
