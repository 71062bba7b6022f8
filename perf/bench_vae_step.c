/* bench_vae_step: speed of one VAE training step (forward, backward,
 * Adam, cheap guard) on the 784-512-16 MLP at batch 64 and 256, beside
 * cblas_sgemm on the same shapes measured in the same run. Prints
 * images/s, achieved GFLOP/s (products only), the share of the sgemm rate,
 * a per-phase split and the projected time of a 60,000-image epoch.
 * With --precision f16|bf16 every op output and tape gradient is rounded
 * to half precision (train.precision's emulation), which measures what the
 * emulation costs beside the native float step.
 * usage: bench_vae_step [--steps N] [--recon mse|bce]
 *                       [--precision native|f16|bf16] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "machine.h"
#include "perfutil.h"
#include "dataset.h"
#include "graph.h"
#include "guard.h"
#include "model.h"
#include "ops.h"
#include "optim.h"
#include "params.h"
#include "rng.h"

/* Products of one step: forward (4 layers + the 2 heads), the weight
 * gradients of every layer, the input gradients of every layer but the
 * first (the data needs none). */
static double step_flops(double B, double D, double H, double d)
{
	double fwd = 2 * B * (D * H + 2 * H * d + d * H + H * D);
	double dw = fwd;
	double dx = 2 * B * (2 * H * d + d * H + H * D);
	return fwd + dw + dx;
}

struct gemm_shape {
	bool ta, tb;
	size_t m, n, k;
};

/* Time the step's products alone with the same shapes and layouts. */
static double sgemm_rate(size_t B, size_t D, size_t H, size_t d, int reps)
{
	struct gemm_shape s[] = {
		{false, true, B, H, D},  {false, true, B, d, H},
		{false, true, B, d, H},  {false, true, B, H, d},
		{false, true, B, D, H},  /* forward */
		{true, false, D, H, B},  {false, false, B, H, D},
		{true, false, H, d, B},  {false, false, B, d, H},
		{true, false, d, H, B},  {false, false, B, H, d},
		{true, false, d, H, B},  {true, false, d, H, B},
		{true, false, H, D, B},  /* backward */
	};
	size_t big = (B > D ? B : D) * (H > D ? H : D) * 2;
	vb_real *a = calloc(big, sizeof *a), *b = calloc(big, sizeof *b);
	vb_real *c = calloc(big, sizeof *c);
	double flops = 0, t;
	for (size_t i = 0; i < big; i++) {
		a[i] = (vb_real)(0.001 * (double)(i % 13));
		b[i] = (vb_real)(0.001 * (double)(i % 7));
	}
	for (int r = 0; r < 3; r++) /* warm-up */
		for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
			op_gemm(s[i].ta, s[i].tb, s[i].m, s[i].n, s[i].k, 1, a,
				s[i].ta ? s[i].m : s[i].k, b,
				s[i].tb ? s[i].k : s[i].n, 1, c, s[i].n);
	t = perf_now();
	for (int r = 0; r < reps; r++)
		for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
			op_gemm(s[i].ta, s[i].tb, s[i].m, s[i].n, s[i].k, 1, a,
				s[i].ta ? s[i].m : s[i].k, b,
				s[i].tb ? s[i].k : s[i].n, 1, c, s[i].n);
			flops += 2.0 * (double)(s[i].m * s[i].n * s[i].k);
		}
	t = perf_now() - t;
	free(a);
	free(b);
	free(c);
	return flops / t / 1e9;
}

static const char *rounding_name(enum graph_rounding r)
{
	if (r == GRAPH_ROUNDING_F16)
		return "f16 emulation";
	if (r == GRAPH_ROUNDING_BF16)
		return "bf16 emulation";
	return "native";
}

static int run(size_t B, int steps, enum model_recon recon,
	       enum graph_rounding rounding)
{
	struct model_config mc;
	struct perf_rig r;
	struct vb_error err = {0};
	double tf = 0, tb = 0, to = 0, tg = 0;
	size_t D = 784, H = 512, d = 16;

	model_config_defaults(&mc);
	mc.recon = recon;
	if (perf_rig_create(&r, &mc, B, B * D * sizeof(vb_real) * 40,
			    "bench_vae_step"))
		return 1;
	struct model *m = r.m;
	struct graph *g = r.g;
	graph_set_rounding(g, rounding);
	for (int s = -5; s < steps; s++) {
		struct model_out mo;
		double t0 = perf_now(), t1, t2, t3, t4;
		graph_reset(g);
		struct graph_node *in = graph_input(
			g, "input", tensor_view(r.x, 2, r.xs), false);
		model_build_loss(m, g, in, &r.noise, true, &mo, &err);
		t1 = perf_now();
		params_zero_grad(m->params);
		graph_backward(g, mo.loss, &err);
		t2 = perf_now();
		double gn = optim_grad_norm(m->params->grad, m->params->n);
		bool ok = isfinite(mo.loss->value.data[0]) && isfinite(gn);
		t3 = perf_now();
		optim_step(r.o, m->params->data, m->params->grad, 1e-4);
		t4 = perf_now();
		ok = ok && guard_all_finite(m->params->data, m->params->n,
					    NULL);
		double t5 = perf_now();
		if (!ok) {
			fprintf(stderr, "bench_vae_step: non-finite values\n");
			return 1;
		}
		if (s >= 0) {
			tf += t1 - t0;
			tb += t2 - t1;
			tg += (t3 - t2) + (t5 - t4);
			to += t4 - t3;
		}
	}
	double total = tf + tb + tg + to, per = total / steps;
	double fl = step_flops((double)B, (double)D, (double)H, (double)d);
	double rate = fl / per / 1e9;
	double sg = sgemm_rate(B, D, H, d, 50);
	double epoch = 60000.0 / (double)B * per;
	printf("batch %zu (%s, %s): %.3f ms/step  %.0f images/s  %.1f GFLOP/s "
	       "(sgemm on the same shapes %.1f GFLOP/s: %.0f %%)\n",
	       B, model_recon_name(recon), rounding_name(rounding), per * 1e3,
	       (double)B / per, rate, sg, 100 * rate / sg);
	printf("  split: forward %.0f %%, backward %.0f %%, Adam %.0f %%, "
	       "guard %.0f %%; projected 60,000-image epoch %.2f s\n",
	       100 * tf / total, 100 * tb / total, 100 * to / total,
	       100 * tg / total, epoch);
	printf("  arena %.1f MB, parameters %zu\n",
	       (double)graph_arena_reserved(g) / 1e6, m->params->n);
	perf_rig_free(&r);
	return 0;
}

int main(int argc, char **argv)
{
	perf_pin(argv, "bench_vae_step"); /* as vaebench */
	int steps = 200;
	enum model_recon recon = MODEL_RECON_BCE;
	enum graph_rounding rounding = GRAPH_ROUNDING_NONE;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--steps") && i + 1 < argc)
			steps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--recon") && i + 1 < argc)
			recon = !strcmp(argv[++i], "mse") ? MODEL_RECON_MSE
							  : MODEL_RECON_BCE;
		else if (!strcmp(argv[i], "--precision") && i + 1 < argc) {
			const char *v = argv[++i];
			if (!strcmp(v, "native"))
				rounding = GRAPH_ROUNDING_NONE;
			else if (!strcmp(v, "f16"))
				rounding = GRAPH_ROUNDING_F16;
			else if (!strcmp(v, "bf16"))
				rounding = GRAPH_ROUNDING_BF16;
			else {
				fprintf(stderr, "bench_vae_step: --precision "
					"'%s': expected native, f16 or bf16\n",
					v);
				return 2;
			}
		} else {
			fprintf(stderr, "usage: bench_vae_step [--steps N] "
				"[--recon mse|bce] "
				"[--precision native|f16|bf16]\n");
			return 2;
		}
	}
	if (steps < 1)
		steps = 1;
	op_blas_set_threads(1);
	printf("bench_vae_step: %s build, OpenBLAS kernel %s, 1 thread\n",
	       VB_REAL_NAME, op_blas_core());
	return run(64, steps, recon, rounding) ||
	       run(256, steps / 2 + 1, recon, rounding);
}
