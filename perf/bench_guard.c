/* bench_guard: what the guard costs per training step of the VAE
 * (784-512-16 MLP, Adam) at batch 64 and 256: no checks at all, the cheap
 * guard (input batch, loss, grad norm, max |param| in one integer pass),
 * the cheap guard plus the precursor record (per-tensor grad norms, max
 * logvar, max |z|), and anomaly mode (every node and gradient checked by
 * the graph hook, plus the cheap guard). Modes run interleaved step by
 * step and the median step time of each is compared with no checks.
 * Targets: cheap < 3 % of a step, anomaly < 3x.
 * usage: bench_guard [--steps N] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "machine.h"
#include "perfutil.h"
#include "anomaly.h"
#include "dataset.h"
#include "graph.h"
#include "guard.h"
#include "model.h"
#include "ops.h"
#include "optim.h"
#include "params.h"
#include "rng.h"

enum mode { MODE_NONE, MODE_CHEAP, MODE_PRECURSORS, MODE_ANOMALY, N_MODES };
static const char *const MODE_NAMES[N_MODES] = {
	"no checks", "cheap guard", "cheap + precursors", "anomaly mode"};

static volatile double sink;

static int run(size_t B, int steps)
{
	struct model_config mc;
	struct perf_rig r;
	struct anomaly an;
	size_t D = 784;
	double *t[N_MODES], med[N_MODES], cheap_cost, prec_cost;

	model_config_defaults(&mc);
	if (perf_rig_create(&r, &mc, B, B * D * sizeof(vb_real) * 40,
			    "bench_guard"))
		return 1;
	struct model *m = r.m;
	struct graph *g = r.g;
	vb_real *x = r.x;
	struct vb_error err = {0};
	for (int k = 0; k < N_MODES; k++)
		t[k] = malloc((size_t)steps * sizeof *t[k]);
	anomaly_reset(&an);
	for (int s = -3; s < steps; s++) {
		for (int k = 0; k < N_MODES; k++) {
			struct params *p = m->params;
			struct model_out mo;
			double t0 = perf_now(), gn, acc = 0;
			bool ok = true;
			if (k == MODE_ANOMALY) {
				anomaly_attach(&an, g);
				anomaly_begin(&an, GUARD_PHASE_FORWARD, 1, s, B,
					      NULL);
			}
			if (k != MODE_NONE)
				ok = guard_all_finite(x, B * D, NULL);
			graph_reset(g);
			struct graph_node *in = graph_input(
				g, "input", tensor_view(x, 2, r.xs), false);
			model_build_loss(m, g, in, &r.noise, true, &mo, &err);
			ok = ok && (k == MODE_NONE ||
				    isfinite(mo.loss->value.data[0]));
			params_zero_grad(p);
			if (k == MODE_ANOMALY)
				anomaly_begin(&an, GUARD_PHASE_BACKWARD, 1, s,
					      B, NULL);
			graph_backward(g, mo.loss, &err);
			gn = optim_grad_norm(p->grad, p->n);
			ok = ok && (k == MODE_NONE || isfinite(gn));
			optim_step(r.o, p->data, p->grad, 1e-4);
			if (k != MODE_NONE)
				ok = ok && isfinite(guard_max_abs(p->data, p->n));
			if (k >= MODE_PRECURSORS) {
				for (size_t e = 0; e < p->n_entries; e++)
					acc += sqrt(guard_sum_squares(
						p->grad + p->entries[e].offset,
						p->entries[e].n));
				acc += guard_max_abs(mo.z->value.data,
						     mo.z->value.n);
				acc += guard_max_abs(mo.logvar->value.data,
						     mo.logvar->value.n);
			}
			if (k == MODE_ANOMALY)
				anomaly_detach(g);
			if (s >= 0)
				t[k][s] = perf_now() - t0;
			sink = acc;
			if (!ok || an.ev.set) {
				fprintf(stderr, "bench_guard: non-finite\n");
				return 1;
			}
		}
	}
	for (int k = 0; k < N_MODES; k++)
		med[k] = perf_median(t[k], steps);
	/* The guard's own work timed alone (less noisy than differences of
	 * whole steps on a busy machine): the cheap checks, the precursor
	 * record. */
	{
		struct params *p = m->params;
		double c0, c1, c2, acc = 0;
		int reps = 200;
		c0 = perf_now();
		for (int i = 0; i < reps; i++) {
			acc += guard_all_finite(x, B * D, NULL);
			acc += guard_max_abs(p->data, p->n);
		}
		c1 = perf_now();
		for (int i = 0; i < reps; i++)
			for (size_t e = 0; e < p->n_entries; e++)
				acc += guard_sum_squares(
					p->grad + p->entries[e].offset,
					p->entries[e].n);
		c2 = perf_now();
		sink = acc;
		cheap_cost = (c1 - c0) / reps;
		prec_cost = (c2 - c1) / reps;
	}
	printf("batch %zu, %d steps per mode (median step time):\n", B, steps);
	for (int k = 0; k < N_MODES; k++)
		printf("  %-20s %8.3f ms  %+6.2f %%  (x%.3f)\n", MODE_NAMES[k],
		       med[k] * 1e3, 100 * (med[k] / med[0] - 1),
		       med[k] / med[0]);
	printf("  guard work timed alone: cheap %.3f ms (%.2f %% of a step), "
	       "precursors %.3f ms (%.2f %%)\n", cheap_cost * 1e3,
	       100 * cheap_cost / med[0], prec_cost * 1e3,
	       100 * prec_cost / med[0]);
	printf("  anomaly checks per step: %zu tensors\n",
	       an.n_checks / (size_t)(steps + 3));
	for (int k = 0; k < N_MODES; k++)
		free(t[k]);
	perf_rig_free(&r);
	return 0;
}

int main(int argc, char **argv)
{
	perf_pin(argv, "bench_guard"); /* as vaebench */
	int steps = 60;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--steps") && i + 1 < argc) {
			steps = atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: bench_guard [--steps N]\n");
			return 2;
		}
	}
	if (steps < 1)
		steps = 1;
	op_blas_set_threads(1);
	printf("bench_guard: %s build, BLAS %s x%d\n", VB_REAL_NAME,
	       op_blas_core(), op_blas_threads());
	if (run(64, steps) || run(256, steps))
		return 1;
	return 0;
}
