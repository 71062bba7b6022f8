/* perfutil: what the benchmark programs share: the tape's product FLOPs,
 * the median of a run of timings, the clock, and the rig of a step
 * benchmark (model, Adam, tape, one synthetic batch) with its step. */
#ifndef VB_PERF_PERFUTIL_H
#define VB_PERF_PERFUTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "dataset.h"
#include "graph.h"
#include "model.h"
#include "optim.h"
#include "rng.h"

/* FLOPs of one step on g: every linear, matmul, bmm and convolution
 * node's forward, three times for the nodes the backward pass visits. */
double perf_tape_flops(const struct graph *g);

/* Median of n > 0 values (sorts v). */
double perf_median(double *v, int n);

/* Prints "KIND/ARCH batch B: arena .. MB, peak RSS of the process so far
 * .. MB" and note. */
void perf_print_memory(enum model_kind kind, enum model_arch arch, size_t B,
		       const struct graph *g, const char *note);

/* Pins BLAS threads as vaebench does (machine_pin_blas), printing
 * "prog: warning: ..." to stderr when it could not. */
void perf_pin(char **argv, const char *prog);

/* The options every step benchmark takes. */
struct perf_args {
	int steps;             /* --steps N */
	int threads;           /* --threads T */
	size_t B;              /* --batch B */
	enum model_arch arch;  /* --arch mlp|resnet */
};

/* Reads argv[*i] into a when it is one of perf_args' options with its
 * value (*i then at the value): true; false otherwise (nothing read). */
bool perf_step_arg(int argc, char **argv, int *i, struct perf_args *a);

/* --backend v: "both" sets *n_be = 2, a backend name sets *one and
 * *n_be = 1 (0 returned); otherwise prints "prog: why" and returns 2. */
int perf_backend_arg(const char *v, const char *prog,
		     enum graph_conv_backend *one, int *n_be);

/* Monotonic clock, seconds. */
double perf_now(void);

/* What a step benchmark times: a model, its Adam optimiser (0.9, 0.999,
 * 1e-8), a tape, the synthetic 28 x 28 data set's first batch x and the
 * noise stream (seed 1). */
struct perf_rig {
	struct model *m;
	struct optim *o;
	struct graph *g;
	struct dataset ds;
	struct rng noise;
	vb_real *x;     /* (B, 784) */
	size_t xs[2];   /* {B, 784} */
};

/* mc as the RHVAE tutorial's step benchmarks set it (rhvae.md 6.1):
 * defaults with kind, arch, one leapfrog step, regularization 0.001 and
 * batches up to B. */
void perf_model_config(struct model_config *mc, enum model_kind kind,
		       enum model_arch arch, size_t B);

/* Builds r from mc for batch B on a tape of arena bytes. 0 on success;
 * otherwise prints "prog: why" to stderr, frees what was built and
 * returns 1 (r then zeroed: perf_rig_free on it is a no-op). */
int perf_rig_create(struct perf_rig *r, const struct model_config *mc,
		    size_t B, size_t arena, const char *prog);

/* Frees what perf_rig_create built. */
void perf_rig_free(struct perf_rig *r);

/* One training step on r (tape reset, loss, zeroed gradients, backward,
 * Adam at lr 1e-4). 0, or -1 after printing "prog: why" when building the
 * loss or the backward pass fails or the loss is not finite. */
int perf_step(struct perf_rig *r, const char *prog);

#endif
