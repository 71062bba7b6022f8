/* bench_rhvae_step: speed and memory of one RHVAE training step with the
 * tutorial's settings (rhvae.md 6.1: d 16, K 1, batch 64, ResNet encoder
 * and decoder, MLP metric; --arch mlp for pythae's default networks), and
 * of the plain VAE on the same networks. Prints images/s, the step's
 * product FLOPs (counted from the tape: every linear, matmul and
 * convolution node, forward, plus twice that for the nodes the backward
 * pass visits), the share of the single-core peak measured in the same run
 * (a large sgemm), and the peak resident memory. The paths are the
 * convolution backends (im2col + sgemm, oneDNN) crossed with the RHVAE's
 * leapfrog forms (full: the whole H differentiated at each step-6.1
 * iteration, as before issue 13; reuse: its rho-independent part once per
 * leapfrog step); all step interleaved in one process (the order rotating
 * each round, so the machine's load weighs on all alike) and each path's
 * time is printed with its ratio to the first, im2col/full, the old path.
 * --backend and --leapfrog pick one of each (for one path's peak RSS).
 * usage: bench_rhvae_step [--steps N] [--arch mlp|resnet] [--batch B]
 *                         [--threads T] [--backend both|dnnl|im2col]
 *                         [--leapfrog both|reuse|full] [--copies both]
 *                         [--blocked both]
 * (--copies both: also the oneDNN path without blocked copies, in the
 * last leapfrog form, for their effect in one process; --blocked both:
 * also the oneDNN path with plain activations between convolutions,
 * graph_set_blocked(g, false), printed with the ratio of the blocked
 * path to it) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "machine.h"
#include "perfutil.h"
#include "conv_dnnl.h"
#include "dataset.h"
#include "graph.h"
#include "model.h"
#include "ops.h"
#include "optim.h"
#include "params.h"
#include "rhvae.h"
#include "rng.h"

/* One path: a convolution backend and a leapfrog form. */
struct path {
	enum graph_conv_backend be;
	bool reuse;
	bool no_copies; /* oneDNN without blocked copies (--copies both) */
	bool no_blocked; /* plain activations (--blocked both) */
};

#define MAX_PATHS 5

/* Where one path's oneDNN time goes, summed over its timed steps: the
 * primitives, the reorders between plain and blocked layouts (and per
 * step, for the lower bound), the reorders the blocked copies saved. */
struct path_stats {
	struct conv_dnnl_stats sum;
	double *reorder; /* (steps) seconds of reorders per step */
	int n;
};

static void step_stats_begin(struct graph *g, const struct path *p)
{
#ifndef VB_DOUBLE
	if (p->be == GRAPH_CONV_BACKEND_DNNL) {
		conv_dnnl_set_copies(graph_conv_dnnl(g), !p->no_copies);
		graph_set_blocked(g, !p->no_blocked);
		conv_dnnl_stats_reset(graph_conv_dnnl(g));
	}
#else
	(void)g, (void)p;
#endif
}

static void step_stats_add(struct graph *g, enum graph_conv_backend be,
			   struct path_stats *ps)
{
#ifndef VB_DOUBLE
	struct conv_dnnl_stats s;
	if (be != GRAPH_CONV_BACKEND_DNNL)
		return;
	s = conv_dnnl_stats(graph_conv_dnnl(g));
	ps->sum.calls += s.calls;
	ps->sum.reorders += s.reorders;
	ps->sum.hits += s.hits;
	ps->sum.prim_s += s.prim_s;
	ps->sum.reorder_s += s.reorder_s;
	ps->sum.pool_high = s.pool_high;
	ps->reorder[ps->n++] = s.reorder_s;
#else
	(void)g, (void)be, (void)ps;
#endif
}

/* Per step: primitive and reorder time, and the lower bound of the
 * ratio to the old path t0 with zero reorders (median over rounds of
 * (t - reorders) / t0); q is scratch of steps entries. */
static void step_stats_print(const struct path_stats *ps, int steps,
			     double med, const double *t0, const double *t,
			     double *q)
{
	double n = ps->n;
	if (!ps->n || ps->n != steps)
		return;
	for (int s = 0; s < steps; s++)
		q[s] = (t[s] - ps->reorder[s]) / t0[s];
	printf("  oneDNN per step: %.0f primitive calls %.1f ms, %.0f "
	       "reorders %.1f ms, %.0f reorders saved by blocked copies "
	       "(pool %.0f MB), rest %.1f ms; ratio with zero reorders "
	       "%.3f\n", (double)ps->sum.calls / n, ps->sum.prim_s / n * 1e3,
	       (double)ps->sum.reorders / n, ps->sum.reorder_s / n * 1e3,
	       (double)ps->sum.hits / n, (double)ps->sum.pool_high / 1e6,
	       (med - (ps->sum.prim_s + ps->sum.reorder_s) / n) * 1e3,
	       perf_median(q, steps));
}

/* Steps of one model, each path in turn per round (the order rotating
 * each round), 3 warm-up rounds. The VAE has no leapfrog: its paths
 * differ by backend only (the leapfrog form is ignored). */
static int run(enum model_kind kind, enum model_arch arch, size_t B,
	       int steps, int n_p, const struct path *p, double peak)
{
	struct model_config mc;
	struct perf_rig r;
	struct vb_error err = {0};
	double *t[MAX_PATHS] = {NULL}, flops = 0;
	struct path_stats st[MAX_PATHS];
	int rc = 1;
	bool ok = true;
	memset(st, 0, sizeof st);
	for (int k = 0; k < n_p; k++)
		ok = (t[k] = calloc((size_t)steps, sizeof *t[k])) && ok;
	for (int k = 0; k < n_p; k++)
		ok = (st[k].reorder = calloc((size_t)steps,
					     sizeof *st[k].reorder)) && ok;

	perf_model_config(&mc, kind, arch, B);
	if (perf_rig_create(&r, &mc, B, 64u << 20, "bench_rhvae_step") ||
	    !ok) {
		if (!ok)
			fprintf(stderr, "bench_rhvae_step: out of memory\n");
		goto out;
	}
	for (int s = -3; s < steps; s++)
		for (int k = 0; k < n_p; k++) {
			int i = (k + (s + 3)) % n_p;
			double t0;
			if (kind == MODEL_KIND_RHVAE)
				rhvae_set_leapfrog_reuse(r.m, p[i].reuse);
			if (graph_set_conv_backend(r.g, p[i].be, &err)) {
				fprintf(stderr, "bench_rhvae_step: %s\n",
					err.msg);
				goto out;
			}
			step_stats_begin(r.g, &p[i]);
			t0 = perf_now();
			if (perf_step(&r, "bench_rhvae_step"))
				goto out;
			if (s >= 0) {
				t[i][s] = perf_now() - t0;
				step_stats_add(r.g, p[i].be, &st[i]);
			}
			if (s == 0 && i == n_p - 1)
				/* the last path's */
				flops = perf_tape_flops(r.g);
		}
	double *q = malloc((size_t)steps * sizeof *q), med0 = 0;
	if (!q)
		goto out;
	for (int k = 0; k < n_p; k++) {
		double med;
		for (int s = 0; s < steps; s++)
			q[s] = t[k][s] / t[0][s];
		double ratio = perf_median(q, steps);
		med = perf_median(t[k], steps);
		if (k == 0)
			med0 = med;
		printf("%s/%s batch %zu, %-6s %-5s%s: %7.2f ms/step (median of "
		       "%d)  %4.0f images/s  %.1f GFLOP/s = %3.0f %% of peak",
		       model_kind_name(kind), model_arch_name(arch), B,
		       graph_conv_backend_name(p[k].be),
		       kind == MODEL_KIND_RHVAE ? (p[k].reuse ? "reuse"
							      : "full")
						: "",
		       p[k].no_copies	 ? " no copies"
		       : p[k].no_blocked ? " plain"
					 : "",
		       med * 1e3, steps, (double)B / med, flops / med / 1e9,
		       100 * flops / med / 1e9 / peak);
		if (k > 0)
			printf("  ratio to the first %.3f (median of "
			       "per-round ratios; of medians %.3f)",
			       ratio, med / med0);
		putchar('\n');
		step_stats_print(&st[k], steps, med, t[0], t[k], q);
		if (p[k].no_blocked && k > 0) { /* the path before: blocked */
			for (int s = 0; s < steps; s++)
				q[s] = t[k - 1][s] / t[k][s];
			printf("  blocked / plain activations: %.3f (median of "
			       "per-round ratios; of medians %.3f)\n",
			       perf_median(q, steps),
			       perf_median(t[k - 1], steps) / med);
		}
	}
	free(q);
	printf("%s/%s batch %zu: %.2f GFLOP per step (the tape's products of "
	       "the last path)\n", model_kind_name(kind),
	       model_arch_name(arch), B, flops / 1e9);
	perf_print_memory(kind, arch, B, r.g,
			  n_p > 1 ? " (every path's caches; --backend and "
				    "--leapfrog for one)"
				  : "");
	rc = 0;
out:
	perf_rig_free(&r);
	for (int k = 0; k < n_p; k++)
		free(t[k]), free(st[k].reorder);
	return rc;
}

int main(int argc, char **argv)
{
	perf_pin(argv, "bench_rhvae_step"); /* as vaebench */
	struct perf_args a = {20, 1, 64, MODEL_ARCH_MLP};
	int n_be = 2, n_lf = 2;
	bool copies_both = false, blocked_both = false;
	enum graph_conv_backend be[2] = {GRAPH_CONV_BACKEND_IM2COL,
					 GRAPH_CONV_BACKEND_DNNL};
	bool lf[2] = {false, true};
	struct path p[MAX_PATHS];
	int n_p = 0;
	char desc[96];
	for (int i = 1; i < argc; i++) {
		if (perf_step_arg(argc, argv, &i, &a))
			continue;
		if (!strcmp(argv[i], "--backend") && i + 1 < argc) {
			if (perf_backend_arg(argv[++i], "bench_rhvae_step",
					     &be[0], &n_be))
				return 2;
		} else if (!strcmp(argv[i], "--copies") && i + 1 < argc) {
			copies_both = !strcmp(argv[++i], "both");
		} else if (!strcmp(argv[i], "--blocked") && i + 1 < argc) {
			blocked_both = !strcmp(argv[++i], "both");
		} else if (!strcmp(argv[i], "--leapfrog") && i + 1 < argc) {
			const char *v = argv[++i];
			if (!strcmp(v, "both"))
				n_lf = 2;
			else if (!strcmp(v, "reuse") || !strcmp(v, "full"))
				n_lf = 1, lf[0] = !strcmp(v, "reuse");
			else {
				fprintf(stderr, "bench_rhvae_step: --leapfrog "
					"%s: expected both, reuse or full\n",
					v);
				return 2;
			}
		} else {
			fprintf(stderr, "usage: bench_rhvae_step [--steps N] "
				"[--arch mlp|resnet] [--batch B] [--threads T] "
				"[--backend both|dnnl|im2col] "
				"[--leapfrog both|reuse|full] [--copies both] "
				"[--blocked both]\n");
			return 2;
		}
	}
	if (a.steps < 1 || a.B < 1 || a.threads < 1)
		return 2;
#ifdef VB_DOUBLE
	if (n_be == 2) /* no oneDNN in double: im2col alone */
		n_be = 1, be[0] = GRAPH_CONV_BACKEND_IM2COL;
#endif
	for (int b = 0; b < n_be; b++)
		for (int l = 0; l < n_lf; l++)
			p[n_p++] = (struct path){be[b], lf[l], false, false};
	/* the oneDNN path without blocked copies, in the last leapfrog form */
	if (copies_both && n_p < MAX_PATHS &&
	    p[n_p - 1].be == GRAPH_CONV_BACKEND_DNNL)
		p[n_p] = p[n_p - 1], p[n_p++].no_copies = true;
	/* and the oneDNN path with plain activations, right after the
	 * blocked one it is compared with */
	if (blocked_both && !copies_both && n_p < MAX_PATHS &&
	    p[n_p - 1].be == GRAPH_CONV_BACKEND_DNNL)
		p[n_p] = p[n_p - 1], p[n_p++].no_blocked = true;
	op_set_threads(a.threads); /* OpenBLAS, OpenMP, core's loops */
	double peak = op_gemm_peak_gflops(1536, 4);
	printf("bench_rhvae_step: %s build, OpenBLAS kernel %s, %s, %d BLAS / "
	       "%d oneDNN thread(s); peak %.1f GFLOP/s (best 1536^3 sgemm in "
	       "this process)\n", VB_REAL_NAME, op_blas_core(),
	       conv_dnnl_describe(desc, sizeof desc), op_blas_threads(),
	       conv_dnnl_threads(), peak);
	if (run(MODEL_KIND_RHVAE, a.arch, a.B, a.steps, n_p, p, peak))
		return 1;
	/* the VAE has no leapfrog: one path per backend */
	for (int b = 0; b < n_be; b++)
		p[b] = (struct path){be[b], true, false, false};
	n_p = n_be;
	if (blocked_both && p[n_p - 1].be == GRAPH_CONV_BACKEND_DNNL)
		p[n_p] = p[n_p - 1], p[n_p++].no_blocked = true;
	return run(MODEL_KIND_VAE, a.arch, a.B, a.steps, n_p, p, peak);
}
