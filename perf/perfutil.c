/* perfutil: the benchmark programs' shared FLOP count, median, clock and
 * step rig. */
#include "perfutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "files.h"
#include "machine.h"
#include "params.h"

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

double perf_tape_flops(const struct graph *g)
{
	double f = 0;
	for (size_t i = 0; i < graph_node_count(g); i++) {
		const struct graph_node *n = graph_node_at(g, i);
		double nf = node_flops(n);
		f += n->requires_grad ? 3 * nf : nf;
	}
	return f;
}

double perf_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, files_cmp_double);
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void perf_print_memory(enum model_kind kind, enum model_arch arch, size_t B,
		       const struct graph *g, const char *note)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("%s/%s batch %zu: arena %.0f MB, peak RSS of the process so "
	       "far %.0f MB%s\n", model_kind_name(kind),
	       model_arch_name(arch), B,
	       (double)graph_arena_reserved(g) / 1e6,
	       (double)ru.ru_maxrss / 1024, note);
}

void perf_pin(char **argv, const char *prog)
{
	char pin_msg[256];
	if (machine_pin_blas(argv, pin_msg, sizeof pin_msg))
		fprintf(stderr, "%s: warning: %s\n", prog, pin_msg);
}

bool perf_step_arg(int argc, char **argv, int *i, struct perf_args *a)
{
	const char *o = argv[*i];
	if (*i + 1 >= argc)
		return false;
	if (!strcmp(o, "--steps"))
		a->steps = atoi(argv[++*i]);
	else if (!strcmp(o, "--threads"))
		a->threads = atoi(argv[++*i]);
	else if (!strcmp(o, "--batch"))
		a->B = (size_t)atoi(argv[++*i]);
	else if (!strcmp(o, "--arch"))
		a->arch = !strcmp(argv[++*i], "mlp") ? MODEL_ARCH_MLP
						     : MODEL_ARCH_RESNET;
	else
		return false;
	return true;
}

int perf_backend_arg(const char *v, const char *prog,
		     enum graph_conv_backend *one, int *n_be)
{
	struct vb_error e = {0};
	if (!strcmp(v, "both")) {
		*n_be = 2;
		return 0;
	}
	if (graph_conv_backend_parse(v, one, &e)) {
		fprintf(stderr, "%s: %s\n", prog, e.msg);
		return 2;
	}
	*n_be = 1;
	return 0;
}

double perf_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void perf_model_config(struct model_config *mc, enum model_kind kind,
		       enum model_arch arch, size_t B)
{
	model_config_defaults(mc);
	mc->kind = kind;
	mc->arch = arch;
	mc->n_lf = 1;
	mc->regularization = 0.001;
	mc->n_batch_max = B;
}

int perf_rig_create(struct perf_rig *r, const struct model_config *mc,
		    size_t B, size_t arena, const char *prog)
{
	struct optim_settings os = {OPTIM_ADAM, 0.9, 0.999, 1e-8, 0, 0, 0,
				    false};
	struct vb_error err = {0};
	size_t D = 784;
	memset(r, 0, sizeof *r);
	r->xs[0] = B;
	r->xs[1] = D;
	r->x = malloc(B * D * sizeof *r->x);
	if (!r->x || model_create(mc, &r->m, &err) ||
	    optim_create(&os, r->m->params->n, &r->o, &err) ||
	    graph_create(arena, &r->g, &err) ||
	    dataset_synthetic(B, 28, 28, 1, &r->ds, &err)) {
		fprintf(stderr, "%s: %s\n", prog,
			err.msg[0] ? err.msg : "out of memory");
		perf_rig_free(r);
		return 1;
	}
	dataset_batch(&r->ds, NULL, B, 255, r->x);
	rng_seed(&r->noise, 1, RNG_STREAM_NOISE);
	return 0;
}

void perf_rig_free(struct perf_rig *r)
{
	graph_free(r->g);
	optim_free(r->o);
	model_free(r->m);
	dataset_free(&r->ds);
	free(r->x);
	memset(r, 0, sizeof *r);
}

int perf_step(struct perf_rig *r, const char *prog)
{
	struct model_out mo;
	struct vb_error err = {0};
	struct params *p = r->m->params;
	graph_reset(r->g);
	if (model_build_loss(r->m, r->g,
			     graph_input(r->g, "input",
					 tensor_view(r->x, 2, r->xs), false),
			     &r->noise, true, &mo, &err) ||
	    (params_zero_grad(p), graph_backward(r->g, mo.loss, &err))) {
		fprintf(stderr, "%s: %s\n", prog, err.msg);
		return -1;
	}
	optim_step(r->o, p->data, p->grad, 1e-4);
	if (!isfinite(mo.loss->value.data[0])) {
		fprintf(stderr, "%s: non-finite loss\n", prog);
		return -1;
	}
	return 0;
}
