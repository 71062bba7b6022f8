/* anomaly: the guard's anomaly mode. A graph hook checks every node's
 * value as it is made and every gradient as a backward kernel accumulates
 * it (inner graph_grad passes and second-order passes included), and
 * records the ORIGIN: the first op whose inputs were all finite and whose
 * output was not, with its op, node name, phase, affected batch rows, input
 * statistics and cause (guard_classify_op). It only reads values, so a run
 * with anomaly mode is bit-identical to one without. Also describes
 * update-phase and cheap-guard events in the same record. Deciding when to
 * stop is the trainer's business. */
#ifndef VB_CORE_ANOMALY_H
#define VB_CORE_ANOMALY_H

#include <stdbool.h>
#include <stddef.h>

#include "graph.h"
#include "guard.h"
#include "optim.h"
#include "params.h"
#include "vb.h"

struct anomaly {
	struct guard_event ev;    /* the first origin since anomaly_reset */
	enum guard_phase stage;   /* FORWARD: building the loss (graph_grad
				     passes inside it are inner_grad);
				     BACKWARD: graph_backward; EVAL */
	long epoch, step;         /* stamped on the origin */
	size_t n_batch;           /* rows of per-sample tensors (B) */
	const size_t *sample_ids; /* (n_batch) dataset index per row, or
				     NULL; borrowed for the step */
	size_t n_checks;          /* tensors checked (for benchmarks) */
	bool nan_pending;         /* origin made only Inf: look for the
				     first op that turns Inf into NaN */
};

/* Clears the record and counters (start of a run). */
void anomaly_reset(struct anomaly *a);

/* Attaches a's hook to g (replacing any hook); a must outlive the
 * attachment. anomaly_detach removes it. */
void anomaly_attach(struct anomaly *a, struct graph *g);
void anomaly_detach(struct graph *g);

/* Sets what the next events belong to: stage (see above), when, and the
 * batch (n_batch rows; sample_ids may be NULL). */
void anomaly_begin(struct anomaly *a, enum guard_phase stage, long epoch,
		   long step, size_t n_batch, const size_t *sample_ids);

/* The graph hook itself (exposed for tests and for chaining). */
void anomaly_hook(void *ctx, struct graph *g, struct graph_node *n,
		  enum graph_event ev);

/* Describes parameters that are non-finite after an optimiser step:
 * bad = flat index of the first non-finite one (from guard_all_finite),
 * grad the gradient as applied. Fills ev's origin fields: phase "update",
 * op = the optimiser's name, node = the parameter tensor's name, cause by
 * guard_classify_update, n_bad over the whole buffer, in[0] = statistics
 * of the tensor's gradient, in[1] = of the tensor after the step. */
void anomaly_describe_update(struct guard_event *ev, const struct params *p,
			     const struct optim *o, const vb_real *grad,
			     size_t bad);

/* Describes a non-finite gradient buffer seen by the cheap guard after a
 * finite loss: node = the first parameter tensor with a non-finite
 * gradient, op "backward", cause nonfinite_grad_finite_loss. */
void anomaly_describe_grad(struct guard_event *ev, const struct params *p);

/* Describes a non-finite input batch x (n_batch rows of d values): op
 * "input", node "input", cause nonfinite_input, affected rows and their
 * dataset indices (sample_ids may be NULL). */
void anomaly_describe_input(struct guard_event *ev, const vb_real *x,
			    size_t n_batch, size_t d,
			    const size_t *sample_ids);

#endif
