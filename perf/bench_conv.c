/* bench_conv: speed of the tutorial's ResNet encoder + decoder (rhvae.md
 * 2.4) on the tape: forward + backward of a VAE loss at batch 64 in the
 * float build, images/s, the convolutions' FLOP count and achieved GFLOP/s
 * beside op_gemm (cblas_sgemm) on the very products the convolutions issue,
 * measured in the same run; then the RHVAE's second-order pattern (dH/dz
 * through the decoder with create_graph, then backward of a function of
 * it). Both convolution backends (im2col + sgemm, oneDNN) run in the same
 * process, interleaved round by round, with their ratio and the share of
 * the single-core peak measured in process (--backend picks one); with
 * both, also oneDNN without its blocked copies (every input reordered at
 * every call) in the same rounds, and where the oneDNN path's time goes
 * (primitives, reorders, the rest) with the ratio it would reach with no
 * reorders at all. --blocked both adds oneDNN with plain activations
 * between convolutions (graph_set_blocked(g, false)) to the same rounds,
 * with the ratio of the blocked path to it.
 * usage: bench_conv [--steps N] [--batch B] [--threads T]
 *                   [--backend both|dnnl|im2col] [--blocked both]
 *                   [--winograd]
 * --winograd: the oneDNN path's 3x3 stride-1 convolutions through
 * oneDNN's Winograd algorithm where it has one (conv_dnnl_set_winograd),
 * to measure what it would save; not pythae's arithmetic, never used in
 * training. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "machine.h"
#include "perfutil.h"
#include "conv_dnnl.h"
#include "graph.h"
#include "graph_grad.h"
#include "ops.h"
#include "params.h"
#include "resnet.h"
#include "rng.h"

#define N_LATENT 16


/* One convolution of the networks: channels, kernel, input and output
 * side; transposed for the decoder's ConvTranspose2d. */
struct layer {
	const char *name;
	bool transposed;
	size_t c_in, c_out, k, side_in, side_out;
	bool first; /* input is data: no input gradient */
};

static const struct layer LAYERS[] = {
	{"enc conv1", false, 1, 64, 4, 28, 14, true},
	{"enc conv2", false, 64, 128, 4, 14, 7, false},
	{"enc conv3", false, 128, 128, 3, 7, 4, false},
	{"enc res1 3x3", false, 128, 32, 3, 4, 4, false},
	{"enc res1 1x1", false, 32, 128, 1, 4, 4, false},
	{"enc res2 3x3", false, 128, 32, 3, 4, 4, false},
	{"enc res2 1x1", false, 32, 128, 1, 4, 4, false},
	{"dec convT1", true, 128, 128, 3, 4, 7, false},
	{"dec res1 3x3", false, 128, 32, 3, 7, 7, false},
	{"dec res1 1x1", false, 32, 128, 1, 7, 7, false},
	{"dec res2 3x3", false, 128, 32, 3, 7, 7, false},
	{"dec res2 1x1", false, 32, 128, 1, 7, 7, false},
	{"dec convT2", true, 128, 64, 3, 7, 14, false},
	{"dec convT3", true, 64, 1, 3, 14, 28, false},
};
#define N_LAYERS (sizeof LAYERS / sizeof LAYERS[0])

struct gemm_shape {
	bool ta, tb;
	size_t m, n, k;
};

/* The products ops_conv.c issues for a layer (forward, weight gradient,
 * input gradient), in its (K rows, N columns) im2col layout. Returns the
 * count written to s (at most 3). */
static int layer_gemms(const struct layer *l, size_t B, struct gemm_shape *s)
{
	int n = 0;
	if (!l->transposed) {
		size_t K = l->c_in * l->k * l->k;
		size_t N = B * l->side_out * l->side_out;
		s[n++] = (struct gemm_shape){false, false, l->c_out, N, K};
		s[n++] = (struct gemm_shape){false, true, l->c_out, K, N};
		if (!l->first)
			s[n++] = (struct gemm_shape){true, false, K, N,
						     l->c_out};
	} else {
		size_t K = l->c_out * l->k * l->k;
		size_t N = B * l->side_in * l->side_in;
		s[n++] = (struct gemm_shape){true, false, K, N, l->c_in};
		s[n++] = (struct gemm_shape){false, true, l->c_in, K, N};
		if (!l->first)
			s[n++] = (struct gemm_shape){false, false, l->c_in, N,
						     K};
	}
	return n;
}

static double shape_flops(const struct gemm_shape *s)
{
	return 2.0 * (double)s->m * (double)s->n * (double)s->k;
}

/* op_gemm on the convolutions' own shapes and layouts, timed one pass over
 * all shapes at a time so that passes interleave with the training steps
 * (the machine's load then weighs on both alike). */
struct sgemm_ref {
	struct gemm_shape s[3 * N_LAYERS];
	size_t ns;
	double flops; /* of one pass */
	vb_real *a, *b, *c;
};

static int sgemm_ref_init(struct sgemm_ref *r, size_t B)
{
	size_t big = 0;
	memset(r, 0, sizeof *r);
	for (size_t i = 0; i < N_LAYERS; i++)
		r->ns += (size_t)layer_gemms(&LAYERS[i], B, r->s + r->ns);
	for (size_t i = 0; i < r->ns; i++) {
		size_t x = r->s[i].m * r->s[i].k, y = r->s[i].k * r->s[i].n,
		       z = r->s[i].m * r->s[i].n;
		big = x > big ? x : big;
		big = y > big ? y : big;
		big = z > big ? z : big;
		r->flops += shape_flops(&r->s[i]);
	}
	r->a = calloc(big, sizeof *r->a);
	r->b = calloc(big, sizeof *r->b);
	r->c = calloc(big, sizeof *r->c);
	if (!r->a || !r->b || !r->c)
		return -1;
	for (size_t i = 0; i < big; i++) {
		r->a[i] = (vb_real)(0.001 * (double)(i % 13));
		r->b[i] = (vb_real)(0.001 * (double)(i % 7));
	}
	return 0;
}

/* Seconds for one pass over every shape. */
static double sgemm_ref_pass(struct sgemm_ref *r)
{
	double t = perf_now();
	for (size_t i = 0; i < r->ns; i++) {
		const struct gemm_shape *s = &r->s[i];
		op_gemm(s->ta, s->tb, s->m, s->n, s->k, 1, r->a,
			s->ta ? s->m : s->k, r->b, s->tb ? s->k : s->n, 0, r->c,
			s->n);
	}
	return perf_now() - t;
}

static void sgemm_ref_free(struct sgemm_ref *r)
{
	free(r->a);
	free(r->b);
	free(r->c);
}

/* Products of one step: forward and weight gradient of every convolution,
 * input gradient of all but the first (the data needs none). */
static double conv_flops(size_t B)
{
	struct gemm_shape s[3];
	double f = 0;
	for (size_t i = 0; i < N_LAYERS; i++) {
		int n = layer_gemms(&LAYERS[i], B, s);
		for (int j = 0; j < n; j++)
			f += shape_flops(&s[j]);
	}
	return f;
}

/* The three linear layers (2048 -> d twice, d -> 2048): forward, weight
 * and input gradients (the decoder's fc needs dz for the encoder). */
static double linear_flops(size_t B)
{
	double f = 2.0 * (double)B * 2048 * N_LATENT;
	return 3 * (3 * f);
}

struct bench {
	size_t B;
	struct params *p;
	struct resnet_encoder enc;
	struct resnet_decoder dec;
	struct graph *g;
	vb_real *x;   /* (B, 784) */
	struct rng noise;
};

/* A fresh tape with the parameter nodes in *P; the input node (NULL on
 * failure). */
static struct graph_node *loss_begin(struct bench *b, struct graph_node ***P)
{
	struct graph *g = b->g;
	graph_reset(g);
	*P = graph_alloc(g, b->p->n_entries * sizeof **P);
	if (!*P || params_nodes(b->p, g, *P) != VB_OK)
		return NULL;
	return graph_input(g, "input", tensor_view2(b->x, b->B, 784), false);
}

/* A (B, N_LATENT) tape tensor of standard normal draws; false when the
 * tape has no room. */
static bool normal_latents(struct bench *b, struct tensor *t)
{
	*t = graph_tensor(b->g, 2, (size_t[2]){b->B, N_LATENT});
	if (!t->data)
		return false;
	rng_fill_normal(&b->noise, t->data, t->n, 0, 1);
	return true;
}

/* VAE loss: mean_b(0.5 |y - x|^2 + KL) with z = mu + exp(logvar/2) eps. */
static struct graph_node *vae_loss(struct bench *b)
{
	struct graph *g = b->g;
	struct graph_node **P, *x, *mu, *lv, *z, *y, *kl;
	struct tensor et;
	if (!(x = loss_begin(b, &P)))
		return NULL;
	graph_push_scope(g, "encoder");
	resnet_encoder_forward(&b->enc, g, P, x, &mu, &lv);
	graph_pop_scope(g);
	if (!normal_latents(b, &et))
		return NULL;
	z = op_add(g, "z", mu,
		   op_mul(g, "eps_std", graph_const(g, "eps", et),
			  op_exp(g, "std", op_scale(g, "half_lv", lv, 0.5))));
	graph_push_scope(g, "decoder");
	y = resnet_decoder_forward(&b->dec, g, P, z);
	graph_pop_scope(g);
	kl = op_scale(g, "kl",
		      op_sum_rows(g, "kl.sum",
				  op_sub(g, "kl.inner",
					 op_sub(g, "kl.mu2",
						op_add_scalar(g, "kl.one", lv, 1),
						op_square(g, "kl.musq", mu)),
					 op_exp(g, "kl.var", lv))),
		      -0.5);
	return op_mean(g, "loss", op_add(g, "per_sample",
					 op_mse(g, "recon", y, x), kl));
}

/* RHVAE pattern (rhvae.md 4.5 step 6.4): H = sum 0.5 |dec(z) - x|^2 +
 * 0.5 |z|^2, g3 = dH/dz with create_graph, loss = sum(g3^2); returns the
 * loss to backpropagate through the decoder twice. */
static struct graph_node *second_order_loss(struct bench *b)
{
	struct graph *g = b->g;
	struct graph_node **P, *x, *z, *y, *H, *g3 = NULL;
	struct tensor zt;
	if (!(x = loss_begin(b, &P)) || !normal_latents(b, &zt))
		return NULL;
	z = graph_input(g, "z", zt, true);
	graph_push_scope(g, "decoder");
	y = resnet_decoder_forward(&b->dec, g, P, z);
	graph_pop_scope(g);
	H = op_add(g, "H", op_sum(g, "H.rec", op_mse(g, "rec", y, x)),
		   op_scale(g, "H.prior",
			    op_sum(g, "z2", op_square(g, "zsq", z)), 0.5));
	if (graph_grad(g, H, NULL, &z, 1, true, &g3, NULL) != VB_OK)
		return NULL;
	return op_sum(g, "loss", op_square(g, "g3sq", g3));
}

/* The oneDNN primitives the graph cached, with the implementation each
 * chose (the float build only). */
static void print_dnnl_cache(struct graph *g)
{
#ifndef VB_DOUBLE
	struct conv_dnnl *c = graph_conv_dnnl(g);
	if (!c)
		return;
	printf("  oneDNN cache: %zu primitives, %.1f MB of shared buffers\n",
	       conv_dnnl_entries(c), (double)conv_dnnl_buffer_bytes(c) / 1e6);
	for (size_t i = 0; i < conv_dnnl_entries(c); i++)
		printf("    %-64s %s\n", conv_dnnl_entry_desc(c, i),
		       conv_dnnl_entry_impl(c, i));
#else
	(void)g;
#endif
}

/* The graph's oneDNN cache if the float build made one, else NULL. */
static struct conv_dnnl *graph_conv_dnnl_if(struct graph *g)
{
#ifndef VB_DOUBLE
	return graph_conv_dnnl(g);
#else
	(void)g;
	return NULL;
#endif
}

/* Where the oneDNN path's time goes per round (the counters of the timed
 * rounds): inside the convolution primitives, in the reorders between the
 * tape's plain arrays and the primitives' blocked layouts, and the rest
 * (the tape's other ops); with the im2col round's median t_old, the ratio
 * the oneDNN path would reach with no reorders at all (the primitives and
 * the other ops alone): the lower bound of this design. */
static void print_dnnl_stats(const struct conv_dnnl_stats *acc, int steps,
			     double t_old, double t_new)
{
#ifndef VB_DOUBLE
	struct conv_dnnl_stats st = *acc;
	double pr = st.prim_s / steps, ro = st.reorder_s / steps;
	if (!st.calls)
		return;
	printf("  oneDNN per round: %.0f primitive calls %.2f ms, %.0f "
	       "reorders %.2f ms, %.0f reorders saved by blocked copies "
	       "(pool %.1f MB); rest of the round %.2f ms\n",
	       (double)st.calls / steps, pr * 1e3,
	       (double)st.reorders / steps, ro * 1e3,
	       (double)st.hits / steps, (double)st.pool_high / 1e6,
	       (t_new - pr - ro) * 1e3);
	if (t_old > 0)
		printf("  lower bound with zero reorders: (all three - "
		       "reorders) / im2col = %.3f; primitives alone / im2col "
		       "= %.3f\n", (t_new - ro) / t_old, pr / t_old);
#else
	(void)acc, (void)steps, (void)t_old, (void)t_new;
#endif
}

/* Blocked copies on or off for the oneDNN rounds (float build). */
static void copies_set(struct graph *g, bool on)
{
#ifndef VB_DOUBLE
	conv_dnnl_set_copies(graph_conv_dnnl(g), on);
#else
	(void)g, (void)on;
#endif
}

/* acc += the counters of c since its last reset; acc NULL: reset them. */
static void stats_add(struct conv_dnnl_stats *acc, struct conv_dnnl *c)
{
#ifndef VB_DOUBLE
	struct conv_dnnl_stats s = conv_dnnl_stats(c);
	if (!acc) {
		conv_dnnl_stats_reset(c);
		return;
	}
	acc->calls += s.calls;
	acc->reorders += s.reorders;
	acc->hits += s.hits;
	acc->prim_s += s.prim_s;
	acc->reorder_s += s.reorder_s;
	acc->pool_high = s.pool_high;
#else
	(void)acc, (void)c;
#endif
}

/* Per backend, per round: forward, backward, second-order seconds. */
struct times {
	double *f, *b, *s, *t2, *tot;
};

static int times_alloc(struct times *t, int steps)
{
	t->f = calloc((size_t)steps, sizeof *t->f);
	t->b = calloc((size_t)steps, sizeof *t->b);
	t->s = calloc((size_t)steps, sizeof *t->s);
	t->t2 = calloc((size_t)steps, sizeof *t->t2);
	t->tot = calloc((size_t)steps, sizeof *t->tot);
	return t->f && t->b && t->s && t->t2 && t->tot ? 0 : -1;
}

static void times_free(struct times *t)
{
	free(t->f);
	free(t->b);
	free(t->s);
	free(t->t2);
	free(t->tot);
}

/* One round on the current backend: a VAE step and a second-order step;
 * returns 0 and stores the times in slot s (s < 0: warm-up). */
static int round_run(struct bench *b, struct times *t, int s,
		     size_t *arena1, size_t *arena2, size_t *nodes1)
{
	struct vb_error err = {0};
	double t0 = perf_now(), t1, t3, t5;
	struct graph_node *loss = vae_loss(b);
	t1 = perf_now();
	params_zero_grad(b->p);
	if (!loss || graph_backward(b->g, loss, &err) != VB_OK ||
	    !isfinite(loss->value.data[0])) {
		fprintf(stderr, "bench_conv: step failed: %s\n",
			err.msg[0] ? err.msg : graph_error(b->g)->msg);
		return -1;
	}
	t3 = perf_now();
	*arena1 = graph_arena_used(b->g);
	*nodes1 = graph_node_count(b->g);
	loss = second_order_loss(b);
	params_zero_grad(b->p);
	if (!loss || graph_backward(b->g, loss, &err) != VB_OK) {
		fprintf(stderr, "bench_conv: second-order step failed: %s\n",
			err.msg[0] ? err.msg : graph_error(b->g)->msg);
		return -1;
	}
	t5 = perf_now();
	*arena2 = graph_arena_used(b->g);
	if (s >= 0) {
		t->f[s] = t1 - t0;
		t->b[s] = t3 - t1;
		t->s[s] = t3 - t0;
		t->t2[s] = t5 - t3;
		t->tot[s] = t5 - t0;
	}
	return 0;
}

static const enum graph_conv_backend BACKENDS[2] = {
	GRAPH_CONV_BACKEND_IM2COL, GRAPH_CONV_BACKEND_DNNL};

static int run(size_t B, int steps, int n_backends,
	       const enum graph_conv_backend *backends, bool blocked_both)
{
	struct bench b;
	struct sgemm_ref ref;
	struct vb_error err = {0};
	struct rng r;
	struct times tm[4];
	double *tr = calloc((size_t)steps, sizeof *tr);
	double med_tot[4] = {0, 0, 0, 0};
	struct conv_dnnl_stats acc = {0};
	/* both backends: also oneDNN without blocked copies (variant 2) */
	int n_var = n_backends;
#ifndef VB_DOUBLE
	if (n_backends == 2)
		n_var = 3;
	/* and oneDNN with plain activations (variant 3) */
	if (n_backends == 2 && blocked_both)
		n_var = 4;
#else
	(void)blocked_both;
#endif
	size_t arena1 = 0, arena2 = 0, nodes1 = 0;
	int rc = 1;
	memset(&b, 0, sizeof b);
	memset(&ref, 0, sizeof ref);
	memset(tm, 0, sizeof tm);
	b.B = B;
	b.x = malloc(B * 784 * sizeof *b.x);
	if (!tr || !b.x || times_alloc(&tm[0], steps) ||
	    times_alloc(&tm[1], steps) || times_alloc(&tm[2], steps) ||
	    times_alloc(&tm[3], steps) ||
	    sgemm_ref_init(&ref, B) != 0 ||
	    params_create(&b.p, &err) ||
	    resnet_encoder_add(&b.enc, b.p, "encoder", N_LATENT, &err) ||
	    resnet_decoder_add(&b.dec, b.p, "decoder", N_LATENT, &err) ||
	    params_finalize(b.p, &err) ||
	    graph_create((size_t)256 << 20, &b.g, &err)) {
		fprintf(stderr, "bench_conv: %s\n",
			err.msg[0] ? err.msg : "out of memory");
		goto out;
	}
	rng_seed(&r, 8, RNG_STREAM_INIT);
	resnet_encoder_init(&b.enc, b.p, &r);
	resnet_decoder_init(&b.dec, b.p, &r);
	rng_seed(&b.noise, 1, RNG_STREAM_NOISE);
	rng_fill_uniform(&r, b.x, B * 784, 0, 1);
	double peak = op_gemm_peak_gflops(1536, 4);

	/* Each round: one VAE step and one second-order step per variant
	 * (the order rotating between rounds), then one pass of the
	 * reference products, so that a changing machine load weighs on all
	 * alike; the first two rounds warm up (and build oneDNN's
	 * primitives). */
	for (int s = -2; s < steps; s++) {
		for (int k = 0; k < n_var; k++) {
			int i = (k + s + 2) % n_var;
			if (graph_set_conv_backend(b.g, backends[i ? 1 : 0],
						   &err))
				goto out;
			if (backends[i ? 1 : 0] == GRAPH_CONV_BACKEND_DNNL)
				copies_set(b.g, i != 2);
			graph_set_blocked(b.g, i != 3);
			if (i == 1 && s >= 0)
				stats_add(NULL, graph_conv_dnnl_if(b.g));
			if (round_run(&b, &tm[i], s, &arena1, &arena2, &nodes1))
				goto out;
			if (i == 1 && s >= 0)
				stats_add(&acc, graph_conv_dnnl_if(b.g));
		}
		double pass = sgemm_ref_pass(&ref);
		if (s >= 0)
			tr[s] = pass;
	}
	peak = fmax(peak, op_gemm_peak_gflops(1536, 4));

	/* per-round ratios first (median sorts its array): the two
	 * backends of one round share the machine's load */
	double ratio[3] = {0, 0, 0}, ratio_off[2] = {0, 0};
	double ratio_plain[2] = {0, 0};
	if (n_var == 4) {
		double *tmp = malloc((size_t)steps * sizeof *tmp);
		if (!tmp)
			goto out;
		for (int s = 0; s < steps; s++)
			tmp[s] = tm[3].tot[s] / tm[0].tot[s];
		ratio_plain[0] = perf_median(tmp, steps);
		for (int s = 0; s < steps; s++)
			tmp[s] = tm[1].tot[s] / tm[3].tot[s];
		ratio_plain[1] = perf_median(tmp, steps);
		free(tmp);
	}
	if (n_var >= 3) {
		double *tmp = malloc((size_t)steps * sizeof *tmp);
		if (!tmp)
			goto out;
		for (int s = 0; s < steps; s++)
			tmp[s] = tm[2].tot[s] / tm[0].tot[s];
		ratio_off[0] = perf_median(tmp, steps);
		for (int s = 0; s < steps; s++)
			tmp[s] = tm[1].tot[s] / tm[2].tot[s];
		ratio_off[1] = perf_median(tmp, steps);
		free(tmp);
	}
	if (n_backends == 2) {
		double *sv[3][2] = {{tm[0].s, tm[1].s},
				    {tm[0].t2, tm[1].t2},
				    {tm[0].tot, tm[1].tot}};
		double *tmp = malloc((size_t)steps * sizeof *tmp);
		if (!tmp)
			goto out;
		for (int j = 0; j < 3; j++) {
			for (int s = 0; s < steps; s++)
				tmp[s] = sv[j][1][s] / sv[j][0][s];
			ratio[j] = perf_median(tmp, steps);
		}
		free(tmp);
	}
	double cf = conv_flops(B), lf = linear_flops(B);
	double mr = perf_median(tr, steps);
	printf("batch %zu, %d rounds, medians; single-core peak %.1f GFLOP/s "
	       "(best large sgemm 1536^3 in this process)\n", B, steps, peak);
	printf("  convolution products %.3f GFLOP per VAE step (+ linear "
	       "%.3f); op_gemm alone on the same %zu products: %.1f GFLOP/s "
	       "(%.0f %% of peak)\n", cf / 1e9, lf / 1e9, ref.ns,
	       ref.flops / mr / 1e9, 100 * ref.flops / mr / 1e9 / peak);
	for (int k = 0; k < n_backends; k++) {
		int i = k;
		struct times *t = &tm[i];
		double mf = perf_median(t->f, steps), mb = perf_median(t->b, steps);
		double ms = perf_median(t->s, steps), m2 = perf_median(t->t2, steps);
		double mt = perf_median(t->tot, steps);
		med_tot[i] = mt;
		printf("  %-6s: forward+backward %.2f ms (forward %.2f, "
		       "backward %.2f): %.0f images/s, %.1f GFLOP/s = %.0f %% "
		       "of peak; second order %.2f ms; all three %.2f ms\n",
		       graph_conv_backend_name(backends[i]), ms * 1e3,
		       mf * 1e3, mb * 1e3, (double)B / ms, cf / ms / 1e9,
		       100 * cf / ms / 1e9 / peak, m2 * 1e3, mt * 1e3);
		if (n_backends == 2 && i == 1)
			printf("  ratio %s / %s (median of per-round ratios): "
			       "forward+backward %.3f, second order %.3f, "
			       "all three %.3f (ratio of medians %.3f)\n",
			       graph_conv_backend_name(backends[1]),
			       graph_conv_backend_name(backends[0]), ratio[0],
			       ratio[1], ratio[2], med_tot[1] / med_tot[0]);
	}
	if (n_var >= 3) {
		struct times *t = &tm[2];
		med_tot[2] = perf_median(t->tot, steps);
		printf("  dnnl without blocked copies (every input reordered "
		       "at every call): forward+backward %.2f ms, second order "
		       "%.2f ms, all three %.2f ms; ratio to im2col %.3f (of "
		       "medians %.3f); with / without copies %.3f (of medians "
		       "%.3f)\n", perf_median(t->s, steps) * 1e3,
		       perf_median(t->t2, steps) * 1e3, med_tot[2] * 1e3,
		       ratio_off[0], med_tot[2] / med_tot[0], ratio_off[1],
		       med_tot[1] / med_tot[2]);
	}
	if (n_var == 4) {
		struct times *t = &tm[3];
		med_tot[3] = perf_median(t->tot, steps);
		printf("  dnnl with plain activations (graph_set_blocked off): "
		       "forward+backward %.2f ms, second order %.2f ms, all "
		       "three %.2f ms; ratio to im2col %.3f (of medians "
		       "%.3f); blocked / plain %.3f (of medians %.3f)\n",
		       perf_median(t->s, steps) * 1e3,
		       perf_median(t->t2, steps) * 1e3, med_tot[3] * 1e3,
		       ratio_plain[0], med_tot[3] / med_tot[0],
		       ratio_plain[1], med_tot[1] / med_tot[3]);
	}
	print_dnnl_stats(&acc, steps, n_backends == 2 ? med_tot[0] : 0,
			 med_tot[1]);
	printf("  tape: %zu nodes, arena %.1f MB used after the VAE step, "
	       "%.1f MB after the second-order step\n", nodes1,
	       (double)arena1 / 1e6, (double)arena2 / 1e6);
	for (int k = 0; k < n_backends; k++)
		if (backends[k] == GRAPH_CONV_BACKEND_DNNL)
			print_dnnl_cache(b.g);
	rc = 0;
out:
	graph_free(b.g);
	params_free(b.p);
	sgemm_ref_free(&ref);
	free(b.x);
	free(tr);
	times_free(&tm[0]);
	times_free(&tm[1]);
	times_free(&tm[2]);
	times_free(&tm[3]);
	return rc;
}

int main(int argc, char **argv)
{
	perf_pin(argv, "bench_conv"); /* as vaebench */
	int steps = 15, threads = 1, n_backends = 2;
	enum graph_conv_backend one = GRAPH_CONV_BACKEND_DNNL;
	char desc[96];
	size_t B = 64;
	bool blocked_both = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--steps") && i + 1 < argc)
			steps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
			B = (size_t)atol(argv[++i]);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			threads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--winograd"))
			conv_dnnl_set_winograd(true);
		else if (!strcmp(argv[i], "--blocked") && i + 1 < argc)
			blocked_both = !strcmp(argv[++i], "both");
		else if (!strcmp(argv[i], "--backend") && i + 1 < argc) {
			if (perf_backend_arg(argv[++i], "bench_conv", &one,
					     &n_backends))
				return 2;
		} else {
			fprintf(stderr, "usage: bench_conv [--steps N] "
				"[--batch B] [--threads T] "
				"[--backend both|dnnl|im2col] [--blocked both] "
				"[--winograd]\n");
			return 2;
		}
	}
	if (steps < 1)
		steps = 1;
	if (B < 1)
		B = 1;
	if (threads < 1)
		threads = 1;
#ifdef VB_DOUBLE
	if (n_backends == 2) /* no oneDNN in double: im2col alone */
		n_backends = 1, one = GRAPH_CONV_BACKEND_IM2COL;
#endif
	op_set_threads(threads); /* OpenBLAS, OpenMP, core's loops */
	printf("bench_conv: %s build, OpenBLAS kernel %s, %s, %d BLAS / %d "
	       "oneDNN thread(s), ResNet encoder + decoder (latent %d)\n",
	       VB_REAL_NAME, op_blas_core(),
	       conv_dnnl_describe(desc, sizeof desc), op_blas_threads(),
	       conv_dnnl_threads(), N_LATENT);
	return run(B, steps, n_backends, n_backends == 2 ? BACKENDS : &one,
		   blocked_both);
}
