/* perfutil: the benchmark programs' shared FLOP count and median. */
#include "perfutil.h"

#include <stdlib.h>
#include <string.h>

#include "files.h"

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
