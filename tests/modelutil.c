/* modelutil: tiny model configs, creation, batches and losses for the
 * model suites. */
#include "modelutil.h"

#include <check.h>

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

double mu_loss(struct model *m, struct graph *g, vb_real *x, size_t B,
	       bool training, bool backward, struct model_out *out)
{
	struct rng r;
	struct model_out mo;
	struct vb_error err = {0};
	size_t xs[2] = {B, m->cfg.n_rows * m->cfg.n_cols};
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
	if (out)
		*out = mo;
	return mo.loss->value.data[0];
}
