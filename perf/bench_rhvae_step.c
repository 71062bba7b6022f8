/* bench_rhvae_step: speed and memory of one RHVAE training step with the
 * tutorial's settings (rhvae.md 6.1: d 16, K 1, batch 64, ResNet encoder
 * and decoder, MLP metric; --arch mlp for pythae's default networks), and
 * of the plain VAE on the same networks. Prints images/s, the step's
 * product FLOPs (counted from the tape: every linear, matmul and
 * convolution node, forward, plus twice that for the nodes the backward
 * pass visits), the share of the sgemm rate measured in the same run, and
 * the peak resident memory.
 * usage: bench_rhvae_step [--steps N] [--arch mlp|resnet] [--batch B]
 *                         [--threads T] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "dataset.h"
#include "graph.h"
#include "model.h"
#include "ops.h"
#include "optim.h"
#include "params.h"
#include "rng.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Forward FLOPs of one product node, from its shapes. */
static double node_flops(const struct graph_node *n)
{
	const char *op = n->op ? n->op->name : "";
	if (!strcmp(op, "linear")) {
		const struct tensor *w = &n->in[1]->value;
		return 2.0 * (double)tensor_rows(&n->value) *
		       (double)w->shape[0] * (double)w->shape[1];
	}
	if (!strcmp(op, "matmul")) {
		size_t k = n->i[0] ? n->in[0]->value.shape[0]
				   : n->in[0]->value.shape[1];
		return 2.0 * (double)n->value.n * (double)k;
	}
	if (!strcmp(op, "conv2d") || !strcmp(op, "conv_transpose2d")) {
		/* every output (or input, transposed) element is a dot
		 * product over Cin*kh*kw (resp. Cout*kh*kw) terms */
		const struct tensor *w = &n->in[1]->value;
		double per = (double)w->shape[1] * (double)w->shape[2] *
			     (double)w->shape[3];
		double outs = !strcmp(op, "conv2d") ? (double)n->value.n
						    : (double)n->in[0]->value.n;
		return 2.0 * outs * per;
	}
	if (!strcmp(op, "bmm")) {
		size_t k = n->i[0] ? n->in[0]->value.shape[1]
				   : n->in[0]->value.shape[2];
		return 2.0 * (double)n->value.n * (double)k;
	}
	return 0;
}

static double tape_flops(const struct graph *g)
{
	double f = 0;
	for (size_t i = 0; i < graph_node_count(g); i++) {
		const struct graph_node *n = graph_node_at(g, i);
		double nf = node_flops(n);
		f += n->requires_grad ? 3 * nf : nf;
	}
	return f;
}

static double sgemm_rate(void)
{
	/* a product of the step's typical size: (64, 2048) x (2048, 1024) */
	size_t m = 64, k = 2048, n = 1024;
	vb_real *a = calloc(m * k, sizeof *a), *b = calloc(k * n, sizeof *b);
	vb_real *c = calloc(m * n, sizeof *c);
	for (size_t i = 0; i < m * k; i++)
		a[i] = (vb_real)(0.001 * (double)(i % 13));
	for (size_t i = 0; i < k * n; i++)
		b[i] = (vb_real)(0.001 * (double)(i % 7));
	op_gemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n);
	double t = now();
	int reps = 50;
	for (int r = 0; r < reps; r++)
		op_gemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n);
	t = now() - t;
	free(a);
	free(b);
	free(c);
	return 2.0 * (double)(m * n * k) * reps / t / 1e9;
}

static int run(enum model_kind kind, enum model_arch arch, size_t B,
	       int steps)
{
	struct model_config mc;
	struct model *m = NULL;
	struct optim *o = NULL;
	struct optim_settings os = {OPTIM_ADAM, 0.9, 0.999, 1e-8, 0, 0, 0,
				    false};
	struct graph *g = NULL;
	struct dataset ds;
	struct rng noise;
	struct vb_error err = {0};
	size_t D = 784, xs[2] = {B, D};
	vb_real *x = malloc(B * D * sizeof *x);
	double flops = 0, t = 0;

	model_config_defaults(&mc);
	mc.kind = kind;
	mc.arch = arch;
	mc.n_lf = 1;
	mc.regularization = 0.001;
	mc.n_batch_max = B;
	if (model_create(&mc, &m, &err) ||
	    optim_create(&os, m->params->n, &o, &err) ||
	    graph_create(64u << 20, &g, &err) ||
	    dataset_synthetic(B, 28, 28, 1, &ds, &err)) {
		fprintf(stderr, "bench_rhvae_step: %s\n", err.msg);
		return 1;
	}
	dataset_batch(&ds, NULL, B, 255, x);
	rng_seed(&noise, 1, RNG_STREAM_NOISE);
	for (int s = -3; s < steps; s++) {
		struct model_out mo;
		double t0 = now();
		graph_reset(g);
		if (model_build_loss(m, g,
				     graph_input(g, "input",
						 tensor_view(x, 2, xs), false),
				     &noise, true, &mo, &err) ||
		    (params_zero_grad(m->params),
		     graph_backward(g, mo.loss, &err))) {
			fprintf(stderr, "bench_rhvae_step: %s\n", err.msg);
			return 1;
		}
		optim_step(o, m->params->data, m->params->grad, 1e-4);
		if (!isfinite(mo.loss->value.data[0])) {
			fprintf(stderr, "bench_rhvae_step: non-finite loss\n");
			return 1;
		}
		if (s >= 0) {
			t += now() - t0;
			if (s == 0)
				flops = tape_flops(g);
		}
	}
	double per = t / steps, sg = sgemm_rate();
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("%s/%s batch %zu: %.2f ms/step  %.0f images/s  %.2f GFLOP "
	       "per step, %.1f GFLOP/s = %.0f %% of sgemm (%.1f GFLOP/s); "
	       "arena %.0f MB, peak RSS so far %.0f MB\n",
	       model_kind_name(kind), model_arch_name(arch), B, per * 1e3,
	       (double)B / per, flops / 1e9, flops / per / 1e9,
	       100 * flops / per / 1e9 / sg, sg,
	       (double)graph_arena_reserved(g) / 1e6,
	       (double)ru.ru_maxrss / 1024);
	graph_free(g);
	optim_free(o);
	model_free(m);
	dataset_free(&ds);
	free(x);
	return 0;
}

int main(int argc, char **argv)
{
	int steps = 20, threads = 1;
	size_t B = 64;
	enum model_arch arch = MODEL_ARCH_MLP;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--steps") && i + 1 < argc)
			steps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			threads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
			B = (size_t)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--arch") && i + 1 < argc)
			arch = !strcmp(argv[++i], "mlp") ? MODEL_ARCH_MLP
							 : MODEL_ARCH_RESNET;
		else {
			fprintf(stderr, "usage: bench_rhvae_step [--steps N] "
				"[--arch mlp|resnet] [--batch B] [--threads T]\n");
			return 2;
		}
	}
	if (steps < 1 || B < 1 || threads < 1)
		return 2;
	op_blas_set_threads(threads);
	printf("bench_rhvae_step: %s build, OpenBLAS kernel %s, %d thread(s)\n",
	       VB_REAL_NAME, op_blas_core(), op_blas_threads());
	return run(MODEL_KIND_RHVAE, arch, B, steps) ||
	       run(MODEL_KIND_VAE, arch, B, steps);
}
