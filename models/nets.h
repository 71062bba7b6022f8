/* nets: layers that models assemble into networks. A layer registers its
 * parameters under a state_dict prefix, initialises them as PyTorch does
 * (rhvae.md 2.5) and builds its forward on the tape from the step's PARAM
 * nodes (model->pnodes). */
#ifndef VB_MODELS_NETS_H
#define VB_MODELS_NETS_H

#include <stddef.h>

#include "graph.h"
#include "params.h"
#include "rng.h"
#include "vb.h"

struct nets_linear {
	size_t n_in, n_out;
	size_t w, b; /* params entry indices: weight (out, in), bias (out) */
};

/* Registers "<prefix>.weight" (out, in) and "<prefix>.bias" (out). */
enum vb_status nets_linear_add(struct nets_linear *l, struct params *p,
			       const char *prefix, size_t n_in, size_t n_out,
			       struct vb_error *err);

/* PyTorch nn.Linear default: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)),
 * weight drawn first. */
void nets_linear_init(const struct nets_linear *l, struct params *p,
		      struct rng *r);

/* y = x W^T + b as node "name" (scoped by the caller). */
struct graph_node *nets_linear_forward(const struct nets_linear *l,
				       struct graph *g,
				       struct graph_node **pnodes,
				       const char *name,
				       struct graph_node *x);

#endif
