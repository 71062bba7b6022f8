/* test_failure_modes: the settings of issue 7 below the training loop:
 * pythae's ConvNet shapes, names and BatchNorm modes; BatchNorm buffers
 * through a checkpoint; init schemes, bias fill and hidden activations;
 * the anchor model's epsilon placement (NaN gradient or not, and which
 * node); preprocessing (standardisation epsilon, refuse, scrub). Double
 * build. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "checkpoint.h"
#include "model.h"
#include "nets.h"
#include "ops.h"
#include "preprocess.h"
#include "modelutil.h"
#include "testutil.h"
#include "vae.h"

static struct model_config small_cfg(enum model_kind kind,
				     enum model_arch arch)
{
	struct model_config c = mu_config(kind, 28, 28, 8, 4, 3);
	c.arch = arch;
	return c;
}

/* A batch of B images with values in (0, 1) drawn from a seeded rng. */
static void fill_images(vb_real *x, size_t n, uint64_t seed)
{
	struct rng r;
	rng_seed(&r, seed, RNG_STREAM_NOISE);
	rng_fill_uniform(&r, x, n, 0.05, 0.95);
}

/* The loss of the n_img 28 x 28 images x on g (not reset here), noise of
 * RNG_STREAM_NOISE seed 1; training or evaluation mode. */
static void build(struct model *m, struct graph *g, vb_real *x, size_t n_img,
		  bool training, struct model_out *o)
{
	struct rng r;
	struct vb_error err = {0};
	rng_seed(&r, 1, RNG_STREAM_NOISE);
	ck_assert_msg(model_build_loss(m, g,
				       graph_input(g, "x",
						   tensor_view2(x, n_img, 784),
						   false),
				       &r, training, o, &err) == VB_OK,
		      "%s", err.msg);
}

static double buffer_value(const struct model *m, const char *name, size_t k)
{
	for (size_t i = 0; i < m->buffers->n_items; i++)
		if (!strcmp(m->buffers->items[i].name, name))
			return m->buffers->items[i].dtype == CHECKPOINT_I64
				       ? (double)((int64_t *)m->buffers->items[i]
							  .data)[k]
				       : ((vb_real *)m->buffers->items[i]
						  .data)[k];
	ck_abort_msg("no buffer %s", name);
	return NAN;
}

/* ConvNet: 28 x 28 comes back, pythae's names, BatchNorm buffers update in
 * training and not in evaluation, and the two modes differ. */
START_TEST(test_convnet_shapes_and_modes)
{
	struct model_config c = small_cfg(MODEL_KIND_VAE, MODEL_ARCH_CONVNET);
	struct model *m;
	struct graph *g;
	struct model_out o;
	enum { B = 2 };
	vb_real x[B * 784];
	struct vb_error err;
	double y_train, y_eval, rm;
	const char *names[] = {"encoder.layers.0.0.weight",
			       "encoder.layers.3.1.bias",
			       "encoder.embedding.weight",
			       "encoder.log_var.bias", "decoder.layers.0.weight",
			       "decoder.layers.1.0.weight",
			       "decoder.layers.2.1.weight",
			       "decoder.layers.3.0.bias"};
	ck_assert_int_eq(model_create(&c, &m, &err), VB_OK);
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		ck_assert_msg(params_find(m->params, names[i]) >= 0, "%s",
			      names[i]);
	/* ConvTranspose2d weight layout (in, out, k, k) */
	{
		long i = params_find(m->params, "decoder.layers.1.0.weight");
		ck_assert_uint_eq(m->params->entries[i].shape[0], 1024);
		ck_assert_uint_eq(m->params->entries[i].shape[1], 512);
		ck_assert_uint_eq(m->params->entries[i].shape[2], 3);
	}
	/* 4 encoder + 2 decoder BatchNorms, 3 buffers each */
	ck_assert_uint_eq(m->buffers->n_items, 18);
	ck_assert_double_eq(
		buffer_value(m, "encoder.layers.2.1.running_var", 5), 1);
	fill_images(x, B * 784, 11);
	ck_assert_int_eq(graph_create(1 << 24, &g, &err), VB_OK);
	build(m, g, x, B, true, &o);
	ck_assert_uint_eq(o.y->value.shape[0], B);
	ck_assert_uint_eq(o.y->value.shape[1], 784);
	ck_assert_uint_eq(o.mu->value.shape[1], 4);
	ck_assert(isfinite(o.loss->value.data[0]));
	y_train = o.y->value.data[300];
	ck_assert_double_eq(
		buffer_value(m, "encoder.layers.0.1.num_batches_tracked", 0),
		1);
	rm = buffer_value(m, "encoder.layers.0.1.running_mean", 0);
	ck_assert(rm != 0);
	/* evaluation: running statistics, no update */
	graph_reset(g);
	build(m, g, x, B, false, &o);
	y_eval = o.y->value.data[300];
	ck_assert(isfinite(y_eval) && y_eval != y_train);
	ck_assert_double_eq(
		buffer_value(m, "encoder.layers.0.1.num_batches_tracked", 0),
		1);
	ck_assert_double_eq(
		buffer_value(m, "encoder.layers.0.1.running_mean", 0), rm);
	graph_free(g);
	model_free(m);
}
END_TEST

/* BatchNorm needs model_create's buffer store: refused otherwise. */
START_TEST(test_convnet_needs_buffers)
{
	struct model_config c = small_cfg(MODEL_KIND_VAE, MODEL_ARCH_CONVNET);
	struct model *m = NULL;
	struct vb_error err;
	vb_error_clear(&err);
	ck_assert_int_eq(vae_create(&c, &m, &err), VB_ERR_CONFIG);
	ck_assert_ptr_null(m);
	ck_assert_ptr_nonnull(strstr(err.msg, "model_create"));
}
END_TEST

/* Buffers go through a checkpoint under PyTorch's names and come back. */
START_TEST(test_buffers_checkpoint)
{
	struct model_config c = small_cfg(MODEL_KIND_VAE, MODEL_ARCH_MLP);
	struct model *a, *b;
	struct checkpoint_writer *w;
	struct checkpoint *ck;
	const char *path = tu_path(tu_tmpdir("fm"), "bn.safetensors");
	struct vb_error err;
	enum checkpoint_dtype dt;
	int nd;
	size_t shape[CHECKPOINT_MAX_DIM];
	c.mlp_batchnorm = true;
	ck_assert_int_eq(model_create(&c, &a, &err), VB_OK);
	ck_assert_int_eq(model_create(&c, &b, &err), VB_OK);
	ck_assert_uint_eq(a->buffers->n_items, 6);
	((vb_real *)a->buffers->items[0].data)[3] = 0.625;
	((vb_real *)a->buffers->items[1].data)[2] = 3.5;
	((int64_t *)a->buffers->items[2].data)[0] = 7;
	ck_assert_int_eq(checkpoint_writer_create(&w, &err), VB_OK);
	ck_assert_int_eq(model_save_state(a, w, &err), VB_OK);
	ck_assert_int_eq(checkpoint_write(w, path, &err), VB_OK);
	checkpoint_writer_free(w);
	ck_assert_int_eq(checkpoint_open(path, &ck, &err), VB_OK);
	ck_assert_int_eq(checkpoint_info(ck,
					 "encoder.layers.0.1.num_batches_tracked",
					 &dt, &nd, shape, &err),
			 VB_OK);
	ck_assert_int_eq(dt, CHECKPOINT_I64);
	ck_assert_int_eq(nd, 0);
	ck_assert_ptr_nonnull(
		checkpoint_data(ck, "decoder.layers.0.1.running_var"));
	ck_assert_int_eq(model_load_state(b, ck, &err), VB_OK);
	checkpoint_close(ck);
	ck_assert_double_eq(
		buffer_value(b, "encoder.layers.0.1.running_mean", 3), 0.625);
	ck_assert_double_eq(
		buffer_value(b, "encoder.layers.0.1.running_var", 2), 3.5);
	ck_assert_double_eq(
		buffer_value(b, "encoder.layers.0.1.num_batches_tracked", 0),
		7);
	model_free(a);
	model_free(b);
}
END_TEST

/* Issue 17 item 9: a crafted num_batches_tracked of INT64_MAX (BatchNorm
 * adds 1 to it every training step) is refused on load with one line
 * naming the tensor and the value; -1 too; a real count loads. */
START_TEST(test_buffers_count_range)
{
	struct model_config c = small_cfg(MODEL_KIND_VAE, MODEL_ARCH_MLP);
	struct model *a, *b;
	const char *path = tu_path(tu_tmpdir("fm"), "bn-crafted.safetensors");
	const int64_t bad[2] = {INT64_MAX, -1};
	struct vb_error err;
	c.mlp_batchnorm = true;
	ck_assert_int_eq(model_create(&c, &a, &err), VB_OK);
	ck_assert_int_eq(model_create(&c, &b, &err), VB_OK);
	ck_assert_int_eq(a->buffers->items[2].dtype, CHECKPOINT_I64);
	for (int k = 0; k < 2; k++) {
		struct checkpoint_writer *w;
		struct checkpoint *ck;
		((int64_t *)a->buffers->items[2].data)[0] = bad[k];
		vb_error_clear(&err);
		ck_assert_int_eq(checkpoint_writer_create(&w, &err), VB_OK);
		ck_assert_int_eq(model_save_state(a, w, &err), VB_OK);
		ck_assert_int_eq(checkpoint_write(w, path, &err), VB_OK);
		checkpoint_writer_free(w);
		ck_assert_int_eq(checkpoint_open(path, &ck, &err), VB_OK);
		ck_assert_int_eq(model_load_state(b, ck, &err), VB_ERR_DATA);
		checkpoint_close(ck);
		char want[512];
		snprintf(want, sizeof want, "tensor '%s'[0] = %lld, expected "
			 "0..9007199254740992", a->buffers->items[2].name,
			 (long long)bad[k]);
		ck_assert_msg(strstr(err.msg, want) && !strchr(err.msg, '\n'),
			      "%s", err.msg);
	}
	model_free(a);
	model_free(b);
}
END_TEST

/* Init schemes: bounds and spreads of a 64 x 32 weight; bias fill; the
 * default keeps pythae's (the same draws as nets_linear_init). */
START_TEST(test_init_schemes)
{
	struct params *p;
	size_t ws[2] = {64, 32}, bs[1] = {64}, w, b;
	struct nets_options o;
	struct model_config c;
	struct rng r;
	double mx = 0, ss = 0;
	struct tensor wt, bt;
	model_config_defaults(&c);
	nets_options_from(&o, &c);
	ck_assert_int_eq(params_create(&p, NULL), VB_OK);
	ck_assert_int_eq(params_add(p, "w", 2, ws, &w, NULL), VB_OK);
	ck_assert_int_eq(params_add(p, "b", 1, bs, &b, NULL), VB_OK);
	ck_assert_int_eq(params_finalize(p, NULL), VB_OK);
	wt = params_value(p, w);
	bt = params_value(p, b);

	o.init = MODEL_INIT_XAVIER_UNIFORM;
	rng_seed(&r, 5, RNG_STREAM_INIT);
	nets_init_layer(p, w, b, 32, 64, &o, &r);
	for (size_t i = 0; i < wt.n; i++)
		mx = fmax(mx, fabs(wt.data[i]));
	/* bound sqrt(6 / 96) = 0.25; 2048 draws reach 0.24 */
	ck_assert(mx <= 0.25 && mx > 0.24);
	for (size_t i = 0; i < bt.n; i++) /* pytorch bias 1/sqrt(32) */
		ck_assert(fabs(bt.data[i]) <= 1 / sqrt(32.0));

	o.init = MODEL_INIT_KAIMING_NORMAL;
	o.bias_fill = true;
	o.bias_value = 0.125;
	nets_init_layer(p, w, b, 32, 64, &o, &r);
	for (size_t i = 0; i < wt.n; i++)
		ss += wt.data[i] * wt.data[i];
	/* std sqrt(2/32) = 0.25: the sample std of 2048 normals is within
	 * 5% (about 3 standard errors of 1.6%) */
	ck_assert_double_eq_tol(sqrt(ss / (double)wt.n), 0.25, 0.0125);
	for (size_t i = 0; i < bt.n; i++)
		ck_assert_double_eq(bt.data[i], 0.125);

	o.init = MODEL_INIT_SCALED;
	o.init_scale = 100;
	o.bias_fill = false;
	nets_init_layer(p, w, b, 32, 64, &o, &r);
	mx = 0;
	for (size_t i = 0; i < wt.n; i++)
		mx = fmax(mx, fabs(wt.data[i]));
	ck_assert(mx > 16 && mx <= 100 / sqrt(32.0));
	params_free(p);
}
END_TEST

/* Hidden activations against libm, off the kinks. */
START_TEST(test_activations)
{
	static const enum model_activation acts[] = {
		MODEL_ACT_RELU, MODEL_ACT_SIGMOID, MODEL_ACT_TANH,
		MODEL_ACT_SOFTPLUS, MODEL_ACT_LEAKY_RELU};
	vb_real xv[4] = {-2.5, -0.3, 0.4, 3};
	struct nets_options o;
	struct model_config c;
	struct graph *g;
	model_config_defaults(&c);
	nets_options_from(&o, &c);
	o.leaky_slope = 0.2;
	ck_assert_int_eq(graph_create(1 << 16, &g, NULL), VB_OK);
	for (size_t k = 0; k < 5; k++) {
		struct graph_node *x =
			graph_input(g, "x", tensor_view2(xv, 1, 4), false);
		struct graph_node *y;
		o.activation = acts[k];
		y = nets_activation(g, "h", x, &o);
		ck_assert_ptr_nonnull(y);
		for (int i = 0; i < 4; i++) {
			double v = xv[i], e;
			switch (acts[k]) {
			case MODEL_ACT_RELU: e = v > 0 ? v : 0; break;
			case MODEL_ACT_SIGMOID: e = 1 / (1 + exp(-v)); break;
			case MODEL_ACT_TANH: e = tanh(v); break;
			case MODEL_ACT_SOFTPLUS: e = log1p(exp(v)); break;
			default: e = v > 0 ? v : 0.2 * v; break;
			}
			/* tanh as 2 sigmoid(2x) - 1 loses a few ulp */
			ck_assert_double_eq_tol(y->value.data[i], e, 1e-14);
		}
	}
	graph_free(g);
}
END_TEST

/* Anchor model: with the epsilon nowhere or in the loss the gradient is
 * NaN (sqrt backward at 0, node anchor.d1); inside the root it is finite.
 * The forward loss is finite in all three. */
START_TEST(test_anchor_eps_placement)
{
	static const enum model_eps_placement pl[] = {
		MODEL_EPS_NONE, MODEL_EPS_LOSS, MODEL_EPS_SQRT};
	enum { B = 4 };
	vb_real x[B * 784];
	fill_images(x, B * 784, 12);
	for (int k = 0; k < 3; k++) {
		struct model_config c =
			small_cfg(MODEL_KIND_ANCHOR, MODEL_ARCH_MLP);
		struct model *m;
		struct graph *g;
		struct model_out o;
		struct rng r;
		struct graph_node *d1 = NULL;
		bool finite = true;
		c.anchor_eps_placement = pl[k];
		ck_assert_int_eq(model_create(&c, &m, NULL), VB_OK);
		ck_assert_int_eq(graph_create(1 << 22, &g, NULL), VB_OK);
		rng_seed(&r, 2, RNG_STREAM_NOISE);
		ck_assert_int_eq(
			model_build_loss(m, g,
					 graph_input(g, "x",
						     tensor_view2(x, B, 784),
						     false),
					 &r, true, &o, NULL),
			VB_OK);
		ck_assert(isfinite(o.loss->value.data[0]));
		for (size_t i = 0; i < graph_node_count(g); i++) {
			struct graph_node *n = graph_node_at(g, i);
			if (!strcmp(n->name, "anchor.d1"))
				d1 = n;
		}
		ck_assert_ptr_nonnull(d1);
		ck_assert_str_eq(d1->op->name, "sqrt");
		/* the anchor's own row: zero distance, or sqrt(eps) */
		ck_assert_double_eq_tol(d1->value.data[0],
					pl[k] == MODEL_EPS_SQRT ? 1e-4 : 0,
					1e-12);
		params_zero_grad(m->params);
		ck_assert_int_eq(graph_backward(g, o.loss, NULL), VB_OK);
		for (size_t i = 0; i < m->params->n; i++)
			finite = finite && isfinite(m->params->grad[i]);
		ck_assert_msg(finite == (pl[k] == MODEL_EPS_SQRT),
			      "placement %s: gradient finite %d",
			      model_eps_placement_name(pl[k]), finite);
		graph_free(g);
		model_free(m);
	}
}
END_TEST

/* Preprocessing: a pixel constant over the training split standardises
 * to NaN with eps 0 (0 * inf) and to 0 with eps > 0; refuse names the
 * pixel; scrub gives nan_to_num's 0 and +-largest finite. */
START_TEST(test_preprocess)
{
	uint8_t pix[3 * 4] = {0, 10, 20, 255, 0, 30, 20, 0, 0, 50, 20, 128};
	struct dataset ds;
	struct preprocess p;
	vb_real x[4];
	struct vb_error err;
	size_t bad;
	memset(&ds, 0, sizeof ds);
	ds.n = 3;
	ds.rows = 2;
	ds.cols = 2;
	ds.d = 4;
	ds.pixels = pix;
	/* pixel 0 is 0 everywhere, pixel 2 is 20 everywhere */
	ck_assert_int_eq(preprocess_fit(&p, &ds, 255, true, 0,
					PREPROCESS_PASS, &err),
			 VB_OK);
	dataset_batch(&ds, NULL, 1, 255, x);
	ck_assert_int_eq(preprocess_apply(&p, x, 1, &bad, &err), VB_OK);
	ck_assert_uint_eq(bad, 2);
	ck_assert(isnan(x[0]) && isnan(x[2]));
	/* pixel 1 is 10, 30, 50: mean 30/255, std sqrt(800/3)/255 */
	ck_assert_double_eq_tol(x[1], -20 / sqrt(800.0 / 3), 1e-12);
	preprocess_free(&p);

	ck_assert_int_eq(preprocess_fit(&p, &ds, 255, true, 0,
					PREPROCESS_REFUSE, &err),
			 VB_OK);
	dataset_batch(&ds, NULL, 1, 255, x);
	vb_error_clear(&err);
	ck_assert_int_eq(preprocess_apply(&p, x, 1, NULL, &err),
			 VB_ERR_DATA);
	ck_assert_ptr_nonnull(strstr(err.msg, "sample 0, pixel 0"));
	preprocess_free(&p);

	ck_assert_int_eq(preprocess_fit(&p, &ds, 255, true, 0,
					PREPROCESS_SCRUB, &err),
			 VB_OK);
	x[0] = (vb_real)(5 / 255.0); /* differs from the constant 0: +inf */
	x[1] = (vb_real)(30 / 255.0);
	x[2] = (vb_real)(20 / 255.0); /* equals its constant: NaN */
	x[3] = 0;
	ck_assert_int_eq(preprocess_apply(&p, x, 1, &bad, &err), VB_OK);
	ck_assert_uint_eq(bad, 2);
	ck_assert_double_eq(x[0], DBL_MAX);
	ck_assert_double_eq(x[2], 0);
	ck_assert_double_eq_tol(x[1], 0, 1e-12);
	preprocess_free(&p);

	ck_assert_int_eq(preprocess_fit(&p, &ds, 255, true, 1e-4,
					PREPROCESS_REFUSE, &err),
			 VB_OK);
	{
		vb_real y[12];
		dataset_batch(&ds, NULL, 3, 255, y);
		ck_assert_int_eq(preprocess_apply(&p, y, 3, &bad, &err),
				 VB_OK);
		ck_assert_uint_eq(bad, 0);
		ck_assert_double_eq(y[0], 0);
	}
	preprocess_free(&p);
	ck_assert_int_eq(preprocess_fit(&p, &ds, 255, true, -1,
					PREPROCESS_PASS, &err),
			 VB_ERR_CONFIG);
}
END_TEST

TU_MAIN("failure_modes", "models", 120, test_convnet_shapes_and_modes,
	test_convnet_needs_buffers, test_buffers_checkpoint,
	test_buffers_count_range, test_init_schemes, test_activations,
	test_anchor_eps_placement, test_preprocess)
