/* bench_ops: where a training step's time goes, op by op. The RHVAE
 * tutorial's step (rhvae.md 6.1; --arch resnet for the report's networks)
 * at --threads T, with a tape hook that charges the time between two
 * events (an op's forward done, an op's backward done) to the op of the
 * second event: forward time to "op", backward kernel time to "op bwd";
 * what happens between the tape's events (graph reset, gradient
 * zeroing, the optimiser) is "(outside ops)". Prints milliseconds per
 * step, the share of the step and the calls per step of the top ops.
 * Run it at 1 and at 2 threads to see which ops do not scale.
 * usage: bench_ops [--steps N] [--arch mlp|resnet] [--batch B]
 *                  [--threads T] [--top K] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "ops.h"
#include "perfutil.h"

#define MAX_KEYS 256

struct prof {
	const char *name[MAX_KEYS];
	bool bwd[MAX_KEYS];
	double s[MAX_KEYS];
	long calls[MAX_KEYS];
	int n;
	double last; /* time of the previous event */
	bool on;
};

static int key_of(struct prof *p, const char *name, bool bwd)
{
	for (int i = 0; i < p->n; i++)
		if (p->bwd[i] == bwd && !strcmp(p->name[i], name))
			return i;
	if (p->n == MAX_KEYS)
		return MAX_KEYS - 1;
	p->name[p->n] = name;
	p->bwd[p->n] = bwd;
	return p->n++;
}

static void charge(struct prof *p, const char *name, bool bwd)
{
	double now = perf_now();
	int k = key_of(p, name, bwd);
	if (p->on) {
		p->s[k] += now - p->last;
		p->calls[k]++;
	}
	p->last = now;
}

static void hook(void *ctx, struct graph *g, struct graph_node *n,
		 enum graph_event ev)
{
	(void)g;
	charge(ctx, n->op ? n->op->name : "(leaf)",
	       ev == GRAPH_EVENT_BACKWARD);
}

int main(int argc, char **argv)
{
	struct perf_args a = {10, 1, 64, MODEL_ARCH_MLP};
	struct model_config mc;
	struct perf_rig r;
	static struct prof p;
	int top = 25, order[MAX_KEYS];
	double total = 0;
	for (int i = 1; i < argc; i++) {
		if (perf_step_arg(argc, argv, &i, &a))
			continue;
		if (!strcmp(argv[i], "--top") && i + 1 < argc) {
			top = atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: bench_ops [--steps N] [--arch "
				"mlp|resnet] [--batch B] [--threads T] "
				"[--top K]\n");
			return 2;
		}
	}
	if (a.steps < 1 || a.B < 1 || a.threads < 1 || top < 1)
		return 2;
	op_set_threads(a.threads);
	perf_model_config(&mc, MODEL_KIND_RHVAE, a.arch, a.B);
	if (perf_rig_create(&r, &mc, a.B, 64u << 20, "bench_ops"))
		return 1;
	graph_set_hook(r.g, hook, &p);
	for (int s = -3; s < a.steps; s++) {
		double t0;
		p.on = s >= 0;
		t0 = p.last = perf_now();
		if (perf_step(&r, "bench_ops")) {
			perf_rig_free(&r);
			return 1;
		}
		/* the rest of the step after its last tape event */
		charge(&p, "(outside ops)", false);
		if (s >= 0)
			total += perf_now() - t0;
	}
	graph_set_hook(r.g, NULL, NULL);
	perf_rig_free(&r);
	for (int i = 0; i < p.n; i++)
		order[i] = i;
	for (int i = 1; i < p.n; i++) /* insertion sort, largest first */
		for (int j = i; j > 0 && p.s[order[j]] > p.s[order[j - 1]];
		     j--) {
			int t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	printf("bench_ops: RHVAE %s batch %zu, %d thread(s), %d steps: %.1f "
	       "ms per step\n", a.arch == MODEL_ARCH_RESNET ? "resnet" : "mlp",
	       a.B, a.threads, a.steps, total / a.steps * 1e3);
	printf("%-28s %10s %7s %8s\n", "op", "ms/step", "share", "calls");
	for (int i = 0; i < p.n && i < top; i++) {
		int k = order[i];
		char name[64];
		snprintf(name, sizeof name, "%s%s", p.name[k],
			 p.bwd[k] ? " bwd" : "");
		printf("%-28s %10.2f %6.1f%% %8.0f\n", name,
		       p.s[k] / a.steps * 1e3, 100 * p.s[k] / total,
		       (double)p.calls[k] / a.steps);
	}
	return 0;
}
