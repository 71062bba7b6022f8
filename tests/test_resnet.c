/* test_resnet (float build, the training precision): the tutorial's ResNet
 * encoder and decoder (rhvae.md 2.4): pythae's state_dict names, shapes
 * and counts, PyTorch init bounds (ConvTranspose fan_in included),
 * deterministic init, output and intermediate shapes, a finite forward and
 * backward that reaches every parameter, input-shape errors, the float
 * convolution kernels against a double direct-loop reference, and the
 * RHVAE's reusing leapfrog against its full-H form on these networks. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convref.h"
#include "graph.h"
#include "model.h"
#include "ops.h"
#include "params.h"
#include "resnet.h"
#include "rhvae.h"
#include "rng.h"
#include "testutil.h"

#define D_LATENT 16
#define ARENA_BYTES ((size_t)64 << 20)

struct expect {
	const char *name;
	int ndim;
	size_t shape[4];
	size_t fan_in; /* PyTorch's init bound is 1/sqrt(fan_in) */
};

/* pythae's state_dict of Encoder_ResNet_VAE_MNIST / Decoder_ResNet_AE_MNIST
 * (latent 16), in order; fan_in = in k k for
 * Conv2d, out k k for ConvTranspose2d, in_features for Linear. */
static const struct expect ENC[] = {
	{"encoder.layers.0.0.weight", 4, {64, 1, 4, 4}, 16},
	{"encoder.layers.0.0.bias", 1, {64}, 16},
	{"encoder.layers.1.0.weight", 4, {128, 64, 4, 4}, 1024},
	{"encoder.layers.1.0.bias", 1, {128}, 1024},
	{"encoder.layers.2.0.weight", 4, {128, 128, 3, 3}, 1152},
	{"encoder.layers.2.0.bias", 1, {128}, 1152},
	{"encoder.layers.3.0.conv_block.1.weight", 4, {32, 128, 3, 3}, 1152},
	{"encoder.layers.3.0.conv_block.1.bias", 1, {32}, 1152},
	{"encoder.layers.3.0.conv_block.3.weight", 4, {128, 32, 1, 1}, 32},
	{"encoder.layers.3.0.conv_block.3.bias", 1, {128}, 32},
	{"encoder.layers.3.1.conv_block.1.weight", 4, {32, 128, 3, 3}, 1152},
	{"encoder.layers.3.1.conv_block.1.bias", 1, {32}, 1152},
	{"encoder.layers.3.1.conv_block.3.weight", 4, {128, 32, 1, 1}, 32},
	{"encoder.layers.3.1.conv_block.3.bias", 1, {128}, 32},
	{"encoder.embedding.weight", 2, {16, 2048}, 2048},
	{"encoder.embedding.bias", 1, {16}, 2048},
	{"encoder.log_var.weight", 2, {16, 2048}, 2048},
	{"encoder.log_var.bias", 1, {16}, 2048},
};
static const struct expect DEC[] = {
	{"decoder.layers.0.weight", 2, {2048, 16}, 16},
	{"decoder.layers.0.bias", 1, {2048}, 16},
	{"decoder.layers.1.weight", 4, {128, 128, 3, 3}, 1152},
	{"decoder.layers.1.bias", 1, {128}, 1152},
	{"decoder.layers.2.0.conv_block.1.weight", 4, {32, 128, 3, 3}, 1152},
	{"decoder.layers.2.0.conv_block.1.bias", 1, {32}, 1152},
	{"decoder.layers.2.0.conv_block.3.weight", 4, {128, 32, 1, 1}, 32},
	{"decoder.layers.2.0.conv_block.3.bias", 1, {128}, 32},
	{"decoder.layers.2.1.conv_block.1.weight", 4, {32, 128, 3, 3}, 1152},
	{"decoder.layers.2.1.conv_block.1.bias", 1, {32}, 1152},
	{"decoder.layers.2.1.conv_block.3.weight", 4, {128, 32, 1, 1}, 32},
	{"decoder.layers.2.1.conv_block.3.bias", 1, {128}, 32},
	/* ConvTranspose2d(128, 64): weight (in, out, k, k), fan_in 64*9 */
	{"decoder.layers.3.0.weight", 4, {128, 64, 3, 3}, 576},
	{"decoder.layers.3.0.bias", 1, {64}, 576},
	/* ConvTranspose2d(64, 1): fan_in 1*9 */
	{"decoder.layers.4.0.weight", 4, {64, 1, 3, 3}, 9},
	{"decoder.layers.4.0.bias", 1, {1}, 9},
};
#define N_ENC (sizeof ENC / sizeof ENC[0])
#define N_DEC (sizeof DEC / sizeof DEC[0])

struct nets {
	struct params *p;
	struct resnet_encoder enc;
	struct resnet_decoder dec;
};

static void nets_make(struct nets *n, uint64_t seed)
{
	struct vb_error err = {0};
	struct rng r;
	ck_assert_int_eq(params_create(&n->p, &err), VB_OK);
	ck_assert_msg(resnet_encoder_add(&n->enc, n->p, "encoder", D_LATENT,
					 &err) == VB_OK, "%s", err.msg);
	ck_assert_msg(resnet_decoder_add(&n->dec, n->p, "decoder", D_LATENT,
					 &err) == VB_OK, "%s", err.msg);
	ck_assert_int_eq(params_finalize(n->p, &err), VB_OK);
	rng_seed(&r, seed, RNG_STREAM_INIT);
	resnet_encoder_init(&n->enc, n->p, &r);
	resnet_decoder_init(&n->dec, n->p, &r);
}

/* Elements of entries [from, to) (the buffer pads entries to 16). */
static size_t entries_sum(const struct params *p, size_t from, size_t to)
{
	size_t n = 0;
	ck_assert_uint_ge(p->n_entries, to);
	for (size_t i = from; i < to; i++)
		n += p->entries[i].n;
	return n;
}

START_TEST(test_names_shapes_counts)
{
	struct nets n;
	size_t enc_n = 0, dec_n = 0;
	nets_make(&n, 1);
	ck_assert_uint_eq(n.p->n_entries, N_ENC + N_DEC);
	for (size_t i = 0; i < N_ENC + N_DEC; i++) {
		const struct expect *e = i < N_ENC ? &ENC[i] : &DEC[i - N_ENC];
		const struct params_entry *pe = &n.p->entries[i];
		ck_assert_str_eq(pe->name, e->name);
		ck_assert_int_eq(pe->ndim, e->ndim);
		for (int k = 0; k < e->ndim; k++)
			ck_assert_msg(pe->shape[k] == e->shape[k],
				      "%s dim %d: %zu, expected %zu", e->name,
				      k, pe->shape[k], e->shape[k]);
		if (i < N_ENC)
			enc_n += pe->n;
		else
			dec_n += pe->n;
	}
	/* rhvae.md 2.4: d = 16 gives 427,680 and 339,009 */
	ck_assert_uint_eq(enc_n, 427680);
	ck_assert_uint_eq(dec_n, 339009);
	ck_assert_uint_eq(RESNET_ENCODER_PARAMS(16), 427680);
	ck_assert_uint_eq(RESNET_DECODER_PARAMS(16), 339009);
	params_free(n.p);

	/* the count formulas at another latent size */
	{
		struct params *p = NULL;
		struct resnet_encoder e;
		struct resnet_decoder d;
		struct vb_error err = {0};
		ck_assert_int_eq(params_create(&p, &err), VB_OK);
		ck_assert_int_eq(resnet_encoder_add(&e, p, "e", 3, &err), VB_OK);
		ck_assert_uint_eq(entries_sum(p, 0, N_ENC),
				  RESNET_ENCODER_PARAMS(3));
		ck_assert_int_eq(resnet_decoder_add(&d, p, "d", 3, &err), VB_OK);
		ck_assert_uint_eq(entries_sum(p, N_ENC, N_ENC + N_DEC),
				  RESNET_DECODER_PARAMS(3));
		params_free(p);
	}
}
END_TEST

START_TEST(test_bad_config)
{
	struct params *p = NULL;
	struct resnet_encoder e;
	struct resnet_decoder d;
	struct vb_error err = {0};
	ck_assert_int_eq(params_create(&p, &err), VB_OK);
	ck_assert_int_eq(resnet_encoder_add(&e, p, "encoder", 0, &err),
			 VB_ERR_CONFIG);
	ck_assert(strstr(err.msg, "resnet") != NULL);
	vb_error_clear(&err);
	ck_assert_int_eq(resnet_decoder_add(&d, p, "decoder", 0, &err),
			 VB_ERR_CONFIG);
	/* registering twice under one prefix: duplicate names refused */
	ck_assert_int_eq(resnet_encoder_add(&e, p, "encoder", 4, &err), VB_OK);
	ck_assert_int_ne(resnet_encoder_add(&e, p, "encoder", 4, &err), VB_OK);
	params_free(p);
}
END_TEST

START_TEST(test_init_bounds)
{
	struct nets n, m;
	nets_make(&n, 8);
	for (size_t i = 0; i < N_ENC + N_DEC; i++) {
		const struct expect *e = i < N_ENC ? &ENC[i] : &DEC[i - N_ENC];
		struct tensor t = params_value(n.p, i);
		double mx = 0, mean = 0, bound = 1 / sqrt((double)e->fan_in);
		for (size_t k = 0; k < t.n; k++) {
			double v = t.data[k];
			ck_assert_msg(fabs(v) <= bound * (1 + FLT_EPSILON),
				      "%s[%zu] = %g outside +-%g", e->name, k,
				      v, bound);
			mx = fabs(v) > mx ? fabs(v) : mx;
			mean += v;
		}
		mean /= (double)t.n;
		/* With n >= 64 uniform draws the largest |v| is above 0.9
		 * bound with probability 1 - 0.9^64 > 0.998 (the seed is
		 * fixed, so this is deterministic); a fan_in from the wrong
		 * weight dimension gives a bound off by >= 1.4x. */
		if (t.n >= 64) {
			ck_assert_msg(mx > 0.9 * bound, "%s: max |v| %g, "
				      "bound %g", e->name, mx, bound);
			/* mean of U(-b, b) has sd b / sqrt(3 n): 6 sd */
			ck_assert_msg(fabs(mean) < 6 * bound /
							   sqrt(3.0 * (double)t.n),
				      "%s: mean %g", e->name, mean);
		}
	}
	/* same seed, same weights; another seed, others */
	nets_make(&m, 8);
	ck_assert_uint_eq(m.p->n, n.p->n);
	ck_assert(memcmp(m.p->data, n.p->data, n.p->n * sizeof(vb_real)) == 0);
	params_free(m.p);
	nets_make(&m, 9);
	ck_assert(memcmp(m.p->data, n.p->data, n.p->n * sizeof(vb_real)) != 0);
	params_free(m.p);
	params_free(n.p);
}
END_TEST

static struct graph_node *find(struct graph *g, const char *name)
{
	for (size_t i = 0; i < graph_node_count(g); i++) {
		struct graph_node *n = graph_node_at(g, i);
		if (strcmp(n->name, name) == 0)
			return n;
	}
	return NULL;
}

static void expect_node(struct graph *g, const char *name, size_t b,
			size_t c, size_t h, size_t w)
{
	struct graph_node *n = find(g, name);
	ck_assert_msg(n != NULL, "no node %s", name);
	ck_assert_int_eq(n->value.ndim, 4);
	ck_assert_msg(n->value.shape[0] == b && n->value.shape[1] == c &&
			      n->value.shape[2] == h && n->value.shape[3] == w,
		      "%s: (%zu, %zu, %zu, %zu)", name, n->value.shape[0],
		      n->value.shape[1], n->value.shape[2], n->value.shape[3]);
}

/* Fixed input: a smooth blob in [0, 1] per image. */
static void fill_images(vb_real *x, size_t B)
{
	for (size_t b = 0; b < B; b++)
		for (size_t i = 0; i < 28; i++)
			for (size_t j = 0; j < 28; j++) {
				double di = (double)i - 10 - (double)b;
				double dj = (double)j - 14 + (double)b;
				x[(b * 28 + i) * 28 + j] =
					(vb_real)exp(-(di * di + dj * dj) / 40);
			}
}

START_TEST(test_forward_backward)
{
	enum { B = 3 };
	struct nets n;
	struct graph *g = NULL;
	struct graph_node **P, *x, *mu, *logvar, *y, *loss;
	struct vb_error err = {0};
	static vb_real xb[B * 784];
	nets_make(&n, 8);
	fill_images(xb, B);
	ck_assert_int_eq(graph_create(ARENA_BYTES, &g, &err), VB_OK);
	P = graph_alloc(g, n.p->n_entries * sizeof *P);
	ck_assert(P != NULL);
	ck_assert_int_eq(params_nodes(n.p, g, P), VB_OK);
	x = graph_input(g, "input", tensor_view2(xb, B, 784), false);

	graph_push_scope(g, "encoder");
	resnet_encoder_forward(&n.enc, g, P, x, &mu, &logvar);
	graph_pop_scope(g);
	ck_assert_msg(mu && logvar, "%s", graph_error(g)->msg);
	ck_assert(mu->value.ndim == 2 && mu->value.shape[0] == B &&
		  mu->value.shape[1] == D_LATENT);
	ck_assert(logvar->value.ndim == 2 && logvar->value.shape[1] == D_LATENT);
	ck_assert_str_eq(mu->name, "encoder.mu");
	expect_node(g, "encoder.conv1", B, 64, 14, 14);
	expect_node(g, "encoder.conv2", B, 128, 7, 7);
	expect_node(g, "encoder.conv3", B, 128, 4, 4);
	expect_node(g, "encoder.res1.conv3x3", B, 32, 4, 4);
	expect_node(g, "encoder.res2.add", B, 128, 4, 4);

	graph_push_scope(g, "decoder");
	y = resnet_decoder_forward(&n.dec, g, P, mu);
	graph_pop_scope(g);
	ck_assert_msg(y != NULL, "%s", graph_error(g)->msg);
	ck_assert(y->value.ndim == 2 && y->value.shape[0] == B &&
		  y->value.shape[1] == 784);
	expect_node(g, "decoder.fc.reshape", B, 128, 4, 4);
	expect_node(g, "decoder.deconv1", B, 128, 7, 7);
	expect_node(g, "decoder.res1.conv1x1", B, 128, 7, 7);
	expect_node(g, "decoder.deconv2", B, 64, 14, 14);
	expect_node(g, "decoder.deconv3", B, 1, 28, 28);
	for (size_t i = 0; i < mu->value.n; i++)
		ck_assert(isfinite(mu->value.data[i]) &&
			  isfinite(logvar->value.data[i]));
	for (size_t i = 0; i < y->value.n; i++)
		ck_assert(y->value.data[i] > 0 && y->value.data[i] < 1);
	/* different images give different codes */
	ck_assert(mu->value.data[0] != mu->value.data[D_LATENT]);

	/* backward of a VAE-like loss reaches every tensor */
	loss = op_add(g, "loss",
		      op_sum(g, "rec", op_mse(g, "mse", y, x)),
		      op_sum(g, "lv", op_square(g, "lv2", logvar)));
	params_zero_grad(n.p);
	ck_assert_msg(graph_backward(g, loss, &err) == VB_OK, "%s", err.msg);
	for (size_t i = 0; i < n.p->n_entries; i++) {
		const vb_real *gr = params_grad(n.p, i);
		double s = 0;
		for (size_t k = 0; k < n.p->entries[i].n; k++) {
			ck_assert(isfinite(gr[k]));
			s += fabs(gr[k]);
		}
		ck_assert_msg(s > 0, "no gradient reached %s",
			      n.p->entries[i].name);
	}

	/* the (B, 1, 28, 28) input form gives the same codes */
	{
		struct graph_node *x4, *mu4, *lv4;
		x4 = graph_input(g, "input4",
				 tensor_view(xb, 4,
					     (size_t[4]){B, 1, 28, 28}),
				 false);
		resnet_encoder_forward(&n.enc, g, P, x4, &mu4, &lv4);
		ck_assert(mu4 != NULL);
		ck_assert(memcmp(mu4->value.data, mu->value.data,
				 mu->value.n * sizeof(vb_real)) == 0);
	}
	graph_free(g);
	params_free(n.p);
}
END_TEST

START_TEST(test_input_shape_errors)
{
	struct nets n;
	struct graph *g = NULL;
	struct graph_node **P, *mu, *lv;
	static vb_real buf[2 * 800];
	nets_make(&n, 8);
	ck_assert_int_eq(graph_create(ARENA_BYTES, &g, NULL), VB_OK);
	P = graph_alloc(g, n.p->n_entries * sizeof *P);
	ck_assert_int_eq(params_nodes(n.p, g, P), VB_OK);
	resnet_encoder_forward(&n.enc, g, P,
			       graph_input(g, "x", tensor_view2(buf, 2, 800),
					   false),
			       &mu, &lv);
	ck_assert(mu == NULL && lv == NULL);
	ck_assert_int_eq(graph_status(g), VB_ERR_SHAPE);
	ck_assert(strstr(graph_error(g)->msg, "(2, 800)") != NULL);

	graph_reset(g);
	P = graph_alloc(g, n.p->n_entries * sizeof *P);
	ck_assert_int_eq(params_nodes(n.p, g, P), VB_OK);
	ck_assert(resnet_decoder_forward(&n.dec, g, P,
					 graph_input(g, "z",
						     tensor_view2(buf, 2, 15),
						     false)) == NULL);
	ck_assert_int_eq(graph_status(g), VB_ERR_SHAPE);
	ck_assert(strstr(graph_error(g)->msg, "decoder") != NULL);
	graph_free(g);
	params_free(n.p);
}
END_TEST

/* ---- the float kernels against a double reference ---- */

START_TEST(test_float_conv_vs_double)
{
	/* the encoder's second layer, 64 -> 128, k4 s2 p1 on 14 x 14 */
	enum { B = 2, CI = 64, CO = 128, H = 14, K = 4, HO = 7 };
	static vb_real x[B * CI * H * H], w[CO * CI * K * K], b[CO];
	static double ref[B * CO * HO * HO], mag[B * CO * HO * HO];
	static double xd[B * CI * H * H], wd[CO * CI * K * K], bd[CO];
	struct rng r;
	struct graph *g = NULL;
	struct graph_node *y;
	rng_seed(&r, 3, RNG_STREAM_INIT);
	rng_fill_uniform(&r, x, sizeof x / sizeof x[0], 0, 1);
	rng_fill_uniform(&r, w, sizeof w / sizeof w[0], -0.03, 0.03);
	rng_fill_uniform(&r, b, CO, -0.03, 0.03);
	ck_assert_int_eq(graph_create(ARENA_BYTES, &g, NULL), VB_OK);
	y = op_conv2d(g, "y",
		      graph_const(g, "x",
				  tensor_view(x, 4, (size_t[4]){B, CI, H, H})),
		      graph_const(g, "w",
				  tensor_view(w, 4, (size_t[4]){CO, CI, K, K})),
		      graph_const(g, "b", tensor_view1(b, CO)), 2, 1);
	ck_assert(y != NULL);
	graph_to_plain(g, &y->value); /* oneDNN may leave it blocked */
	/* the reference in double from the same float inputs */
	for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
		xd[i] = x[i];
	for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
		wd[i] = w[i];
	for (size_t i = 0; i < CO; i++)
		bd[i] = b[i];
	cr_conv2d(xd, wd, bd, B, CI, H, H, CO, K, K, 2, 1, HO, HO, ref, mag);
	for (size_t i = 0; i < y->value.n; i++) {
		/* float sums of CI K K = 1024 products: worst-case error
		 * 1024 FLT_EPSILON sum |terms|; an index error is O(term). */
		double tol = (double)(CI * K * K + 1) * FLT_EPSILON * mag[i];
		ck_assert_msg(fabs((double)y->value.data[i] - ref[i]) <= tol,
			      "y[%zu] = %.9g, reference %.9g", i,
			      (double)y->value.data[i], ref[i]);
	}
	graph_free(g);
}
END_TEST

/* One RHVAE training step on the ResNets with the leapfrog form given
 * (rhvae_set_leapfrog_reuse): the loss, and the parameter gradient into
 * grad (params->n). */
static vb_real rhvae_step(struct model *m, struct graph *g, vb_real *x,
			  size_t B, bool reuse, vb_real *grad)
{
	struct rng r;
	struct model_out mo;
	struct vb_error err = {0};
	rng_seed(&r, 1, RNG_STREAM_NOISE);
	rhvae_set_leapfrog_reuse(m, reuse);
	graph_reset(g);
	ck_assert_msg(model_build_loss(m, g,
				       graph_input(g, "input",
						   tensor_view2(x, B, 784),
						   false),
				       &r, true, &mo, &err) == VB_OK,
		      "%s", err.msg);
	params_zero_grad(m->params);
	ck_assert_msg(graph_backward(g, mo.loss, &err) == VB_OK, "%s",
		      err.msg);
	memcpy(grad, m->params->grad, m->params->n * sizeof *grad);
	return mo.loss->value.data[0];
}

/* issue 13 item 2, float: the reusing leapfrog against the full H on the
 * tutorial's networks, one training step, K = 1 and 2, momentum from L
 * (pythae's, every committed RHVAE result) and from the Cholesky factor
 * of G(z0) (rho depends on z0): the same bits, because every gradient
 * buffer the split touches is summed in the full H's association (z's:
 * (prior + decoder) + metric; A's: (kinetic + rho path) + log-det), and
 * later leapfrog steps keep the whole H. If this fails, committed results
 * no longer rerun bit for bit. */
START_TEST(test_rhvae_leapfrog_reuse_f32)
{
	enum { B = 8 };
	static vb_real xb[B * 784];
	struct vb_error err = {0};
	struct graph *g = NULL;
	fill_images(xb, B);
	ck_assert_int_eq(graph_create(ARENA_BYTES, &g, &err), VB_OK);
	for (int v = 0; v < 3; v++) {
		/* v 0: K 1, v 1: K 2, v 2: K 1 with Cholesky momentum */
		struct model_config mc;
		struct model *m = NULL;
		model_config_defaults(&mc);
		mc.kind = MODEL_KIND_RHVAE;
		mc.arch = MODEL_ARCH_RESNET;
		mc.n_latent = D_LATENT;
		mc.n_lf = v == 1 ? 2 : 1;
		mc.quirk_momentum_l = v < 2;
		mc.regularization = 0.001;
		mc.n_batch_max = B;
		ck_assert_msg(model_create(&mc, &m, &err) == VB_OK, "%s",
			      err.msg);
		size_t n = m->params->n;
		vb_real *ga = malloc(n * sizeof *ga);
		vb_real *gb = malloc(n * sizeof *gb);
		ck_assert(ga && gb);
		vb_real la = rhvae_step(m, g, xb, B, true, ga);
		vb_real lb = rhvae_step(m, g, xb, B, false, gb);
		ck_assert(isfinite(la));
		for (size_t e = 0; e < m->params->n_entries; e++) {
			const struct params_entry *pe = &m->params->entries[e];
			double big = 0, diff = 0;
			for (size_t i = pe->offset; i < pe->offset + pe->n;
			     i++) {
				ck_assert(isfinite(ga[i]));
				big = fmax(big, fabs(gb[i]));
				diff = fmax(diff, fabs((double)ga[i] - gb[i]));
			}
			ck_assert_msg(diff == 0, "case %d %s: %g of %g", v,
				      pe->name, diff, big);
		}
		ck_assert(la == lb);
		free(ga);
		free(gb);
		model_free(m);
	}
	graph_free(g);
}
END_TEST

TU_MAIN("resnet", "resnet", 60, test_names_shapes_counts, test_bad_config,
	test_init_bounds, test_forward_backward, test_input_shape_errors,
	test_float_conv_vs_double, test_rhvae_leapfrog_reuse_f32)
