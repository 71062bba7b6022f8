/* bench_threads: thread scaling of one training step with the RHVAE
 * tutorial's settings (rhvae.md 6.1: d 16, K 1, batch 64; --arch resnet
 * for the ResNet encoder and decoder, the case issue 13 item 3 is about):
 * 1 and T threads (op_set_threads) interleaved step by step in one
 * process, on one convolution backend (--backend, default dnnl), with
 * each configuration's median step time, CPU per step (calling thread,
 * process) and the speed-up (median of per-round ratios, then each
 * round's). --processes P runs the same command in P fresh processes one
 * after the other (fork/exec of itself) and prints each one's speed-up
 * with the load average before it: a slow mode can be a property of one
 * process (thread placement, the pool's start-up). --old-threads: threads
 * as before op_set_threads (OpenBLAS pthreads for products, OpenMP for
 * oneDNN, serial loops), for comparison. perf/scale_when_idle.sh waits for
 * an idle machine first.
 * usage: bench_threads [--steps N] [--arch mlp|resnet] [--batch B]
 *                      [--scale T] [--backend dnnl|im2col]
 *                      [--processes P] [--settle N] [--old-threads]
 *                      [--plain]
 * (--threads T --backend both: both backends at T threads, as
 * bench_rhvae_step. --plain: oneDNN with plain activations between
 * convolutions, graph_set_blocked(g, false), as before they stayed
 * blocked.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conv_dnnl.h"
#include "machine.h"
#include "perfutil.h"
#include "dataset.h"
#include "graph.h"
#include "model.h"
#include "ops.h"
#include "optim.h"
#include "params.h"
#include "rng.h"

static double clock_s(clockid_t id)
{
	struct timespec t;
	clock_gettime(id, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* CPU seconds of the last step (step() sets them): the calling thread's
 * and the whole process's. On a loaded machine wall time measures the
 * other processes too; with OMP_WAIT_POLICY=passive (no spinning) the
 * calling thread's CPU time is the step's critical path less the time
 * it waited for the others, which the load does not inflate. */
static double cpu_main, cpu_proc;

/* --old-threads: threads as before op_set_threads, for comparison:
 * OpenBLAS's pthreads for the products and OpenMP's for oneDNN, both at
 * n, core's loops serial. */
static bool old_threads;

/* --plain: graph_set_blocked(g, false) */
static bool plain;

/* --settle N: N untimed steps before each timed one, at the timed step's
 * thread count and backend, so that the timed step runs as in training,
 * where the count never changes (0: the count switches between every two
 * timed steps, as before the option). */
static int settle;

static void set_threads(int n)
{
	static int current; /* 0: not set yet (OpenMP's own default) */
	if (n == current)
		return;
	current = n;
	if (!old_threads) {
		op_set_threads(n);
		return;
	}
	op_set_threads(1);
	op_blas_set_threads(n);
	conv_dnnl_set_threads(n);
}

/* One training step on r (perf_step) with its CPU seconds in cpu_main and
 * cpu_proc; wall seconds, or -1. */
static double step(struct perf_rig *r)
{
	double t0 = perf_now(), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
	double p0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	if (perf_step(r, "bench_threads"))
		return -1;
	cpu_main = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
	cpu_proc = clock_s(CLOCK_PROCESS_CPUTIME_ID) - p0;
	return perf_now() - t0;
}

/* Steps of one model, each backend in turn per round (order alternating,
 * so that the machine's load weighs on both alike), 3 warm-up rounds. */
static int run(enum model_kind kind, enum model_arch arch, size_t B,
	       int steps, int n_be, const enum graph_conv_backend *be,
	       const int *th, double peak)
{
	struct model_config mc;
	struct perf_rig r;
	struct vb_error err = {0};
	double *t[2], *cm[2], *cp[2], flops = 0;
	int rc = 1;
	t[0] = calloc((size_t)steps, sizeof *t[0]);
	t[1] = calloc((size_t)steps, sizeof *t[1]);
	for (int k = 0; k < 2; k++) {
		cm[k] = calloc((size_t)steps, sizeof *cm[k]);
		cp[k] = calloc((size_t)steps, sizeof *cp[k]);
	}

	perf_model_config(&mc, kind, arch, B);
	if (perf_rig_create(&r, &mc, B, 64u << 20, "bench_threads"))
		goto out;
	if (!t[0] || !t[1] || !cm[0] || !cm[1] || !cp[0] || !cp[1]) {
		fprintf(stderr, "bench_threads: out of memory\n");
		goto out;
	}
	for (int s = -3; s < steps; s++)
		for (int k = 0; k < n_be; k++) {
			int i = (s & 1) && n_be == 2 ? 1 - k : k;
			double dt;
			set_threads(th[i]);
			if (graph_set_conv_backend(r.g, be[i], &err)) {
				fprintf(stderr, "bench_threads: %s\n",
					err.msg);
				goto out;
			}
			graph_set_blocked(r.g, !plain);
			for (int u = 0; u < settle; u++)
				if (step(&r) < 0)
					goto out;
			dt = step(&r);
			if (dt < 0)
				goto out;
			if (s >= 0)
				t[i][s] = dt, cm[i][s] = cpu_main,
				cp[i][s] = cpu_proc;
			if (s == 0 && k == 0)
				flops = perf_tape_flops(r.g);
		}
	double ratio = 0, med[2] = {0, 0};
	double *q = malloc((size_t)steps * sizeof *q); /* per-round ratios */
	double *qr = malloc((size_t)steps * sizeof *qr); /* in round order */
	if (!q || !qr) {
		free(q);
		free(qr);
		goto out;
	}
	if (n_be == 2) {
		for (int s = 0; s < steps; s++)
			q[s] = qr[s] = t[1][s] / t[0][s];
		ratio = perf_median(q, steps); /* sorts q; perf_median() sorts t below */
	}
	for (int k = 0; k < n_be; k++) {
		med[k] = perf_median(t[k], steps);
		printf("%s/%s batch %zu, %-6s x%d: %.2f ms/step (median of "
		       "%d)  %.0f images/s  %.2f GFLOP per step, %.1f GFLOP/s "
		       "= %.0f %% of peak\n", model_kind_name(kind),
		       model_arch_name(arch), B,
		       graph_conv_backend_name(be[k]), th[k], med[k] * 1e3, steps,
		       (double)B / med[k], flops / 1e9, flops / med[k] / 1e9,
		       100 * flops / med[k] / 1e9 / peak);
		printf("%s/%s batch %zu, %-6s x%d: CPU per step (medians) "
		       "calling thread %.2f ms, process %.2f ms\n",
		       model_kind_name(kind), model_arch_name(arch), B,
		       graph_conv_backend_name(be[k]), th[k],
		       perf_median(cm[k], steps) * 1e3, perf_median(cp[k], steps) * 1e3);
	}
	if (n_be == 2 && th[0] == th[1])
		printf("%s/%s batch %zu: ratio %s / %s %.3f (median of "
		       "per-round ratios; ratio of medians %.3f)\n",
		       model_kind_name(kind), model_arch_name(arch), B,
		       graph_conv_backend_name(be[1]),
		       graph_conv_backend_name(be[0]), ratio, med[1] / med[0]);
	if (n_be == 2 && th[0] != th[1]) {
		/* the line --processes reads, then each round's figure, to
		 * tell a slow mode from a slow moment */
		printf("%s/%s batch %zu: speed-up x%d / x%d %.3f (median of "
		       "per-round ratios; ratio of medians %.3f)\n",
		       model_kind_name(kind), model_arch_name(arch), B, th[1],
		       th[0], 1 / ratio, med[0] / med[1]);
		printf("%s/%s batch %zu: per-round speed-up:",
		       model_kind_name(kind), model_arch_name(arch), B);
		for (int s = 0; s < steps; s++)
			printf(" %.2f", 1 / qr[s]);
		putchar('\n');
	}
	free(q);
	free(qr);
	perf_print_memory(kind, arch, B, r.g,
			  n_be == 2 && be[0] != be[1]
				  ? " (both backends' caches; --backend X for "
				    "one)"
				  : "");
	rc = 0;
out:
	perf_rig_free(&r);
	free(t[0]);
	free(t[1]);
	for (int k = 0; k < 2; k++) {
		free(cm[k]);
		free(cp[k]);
	}
	return rc;
}

/* The 1-minute load average, or -1. */
static double load1(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = -1;
		fclose(f);
	}
	return l;
}

/* --processes: runs argv (without --processes P) n_proc times, each a
 * fresh process, echoing its output and collecting the speed-up line. */
static int run_processes(int n_proc, char **argv)
{
	double *sp = calloc((size_t)n_proc, sizeof *sp);
	double *ld = calloc((size_t)n_proc, sizeof *ld);
	int rc = 0;
	if (!sp || !ld)
		return 1;
	for (int p = 0; p < n_proc && !rc; p++) {
		int fd[2];
		pid_t pid;
		FILE *f;
		char line[512];
		int status;
		ld[p] = load1();
		if (pipe(fd))
			return 1;
		pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			dup2(fd[1], STDOUT_FILENO);
			close(fd[0]);
			close(fd[1]);
			execv("/proc/self/exe", argv);
			_exit(127);
		}
		close(fd[1]);
		f = fdopen(fd[0], "r");
		sp[p] = -1;
		while (f && fgets(line, sizeof line, f)) {
			const char *q = strstr(line, "speed-up x");
			printf("[process %d] %s", p + 1, line);
			if (q)
				sscanf(q, "speed-up x%*d / x%*d %lf", &sp[p]);
		}
		if (f)
			fclose(f);
		fflush(stdout);
		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status))
			rc = 1;
	}
	if (!rc) {
		double lo = 1e300;
		printf("per-process speed-up:");
		for (int p = 0; p < n_proc; p++) {
			printf(" %.3f", sp[p]);
			lo = sp[p] < lo ? sp[p] : lo;
		}
		printf("\nload average (1 min) before each:");
		for (int p = 0; p < n_proc; p++)
			printf(" %.2f", ld[p]);
		printf("\nslowest process: %.3f\n", lo);
	}
	free(sp);
	free(ld);
	return rc;
}

int main(int argc, char **argv)
{
	perf_pin(argv, "bench_threads"); /* as vaebench */
	struct perf_args a = {20, 1, 64, MODEL_ARCH_MLP};
	int n_be = 2, scale = 0, n_proc = 0;
	enum graph_conv_backend one = GRAPH_CONV_BACKEND_DNNL;
	bool backend_set = false;
	static const enum graph_conv_backend both[2] = {
		GRAPH_CONV_BACKEND_IM2COL, GRAPH_CONV_BACKEND_DNNL};
	enum graph_conv_backend pair[2];
	int th[2];
	char desc[96];
	for (int i = 1; i < argc; i++) {
		if (perf_step_arg(argc, argv, &i, &a))
			continue;
		if (!strcmp(argv[i], "--scale") && i + 1 < argc)
			scale = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--plain"))
			plain = true;
		else if (!strcmp(argv[i], "--settle") && i + 1 < argc)
			settle = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--old-threads"))
			old_threads = true;
		else if (!strcmp(argv[i], "--processes") && i + 1 < argc)
			n_proc = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--backend") && i + 1 < argc) {
			if (perf_backend_arg(argv[++i], "bench_threads", &one,
					     &n_be))
				return 2;
			backend_set = backend_set || n_be == 1;
		} else {
			fprintf(stderr, "usage: bench_threads [--steps N] "
				"[--arch mlp|resnet] [--batch B] [--threads T] "
				"[--backend both|dnnl|im2col] [--scale T] "
				"[--processes P] [--settle N] [--old-threads] "
				"[--plain]\n");
			return 2;
		}
	}
	if (a.steps < 1 || a.B < 1 || a.threads < 1 || scale < 0 ||
	    n_proc < 0 || settle < 0)
		return 2;
	if (n_proc > 0) { /* the same arguments without --processes P */
		char **av = calloc((size_t)argc + 1, sizeof *av);
		int k = 0, rc;
		if (!av)
			return 1;
		for (int i = 0; i < argc; i++)
			if (!strcmp(argv[i], "--processes"))
				i++;
			else
				av[k++] = argv[i];
		rc = run_processes(n_proc, av);
		free(av);
		return rc;
	}
#ifdef VB_DOUBLE
	if (n_be == 2) /* no oneDNN in double: im2col alone */
		n_be = 1, one = GRAPH_CONV_BACKEND_IM2COL;
#endif
	set_threads(scale ? 1 : a.threads);
	double peak = op_gemm_peak_gflops(1536, 4);
	printf("bench_threads: %s build, OpenBLAS kernel %s, %s, %d BLAS / "
	       "%d oneDNN thread(s); peak %.1f GFLOP/s (best 1536^3 sgemm in "
	       "this process, %d thread(s))\n", VB_REAL_NAME, op_blas_core(),
	       conv_dnnl_describe(desc, sizeof desc), op_blas_threads(),
	       conv_dnnl_threads(), peak, op_threads());
	if (scale) {
		pair[0] = pair[1] = backend_set ? one
						: GRAPH_CONV_BACKEND_DNNL;
		th[0] = 1;
		th[1] = scale;
		return run(MODEL_KIND_RHVAE, a.arch, a.B, a.steps, 2, pair, th,
			   peak);
	}
	th[0] = th[1] = a.threads;
	const enum graph_conv_backend *be = n_be == 2 ? both : &one;
	return run(MODEL_KIND_RHVAE, a.arch, a.B, a.steps, n_be, be, th,
		   peak) ||
	       run(MODEL_KIND_VAE, a.arch, a.B, a.steps, n_be, be, th, peak);
}
