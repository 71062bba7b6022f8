/* metric: the RHVAE's kernel metric A(z) on the tape (rhvae.md 4.2), model
 * math built from core ops (linalg.h, ops.h); moved out of core/linalg so
 * that core holds no model. Shape failures are the graph's sticky error. */
#ifndef VB_MODELS_METRIC_H
#define VB_MODELS_METRIC_H

#include "graph.h"

/* A(z) = sum_j exp(-||z - c_j||^2 / T^2) M_j + lambda I (rhvae.md 4.2),
 * z (B, d), c (N, d), M (N, d, d) -> (B, d, d), composed from the ops
 * of linalg.h and ops.h (sqdist, neg, div by T^2 as pythae rounds it, exp,
 * matmul of the (B, N) weights with M seen as (N, d d), reshape,
 * add_identity), so its gradients and second order come from theirs; no
 * (B, N, d, d) tensor is formed. The weighted sum is a gemm in vb_real.
 * Intermediate nodes are named "<name>.sqdist", "<name>.w", ...; the
 * result is named name. */
struct graph_node *metric_kernel(struct graph *g, const char *name,
				 struct graph_node *z, struct graph_node *c,
				 struct graph_node *m, double temperature,
				 double lambda);

#endif
