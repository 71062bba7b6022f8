/* rhvaestep: one RHVAE training step on the ResNets, the workload that
 * test_conv_dnnl (backends) and test_threads (thread counts) compare;
 * tests/CMakeLists.txt links it where a suite names it (EXTRA). Prefix
 * rs_. */
#ifndef VB_TESTS_RHVAESTEP_H
#define VB_TESTS_RHVAESTEP_H

#include <stdbool.h>
#include <stddef.h>

#include "graph.h"
#include "model.h"

/* The default RHVAE on the ResNets (batch B) on conv backend be: the loss
 * of B synthetic 28 x 28 images in training mode (noise stream of seed 1)
 * and its backward. Returns the model (the caller frees it; params->grad
 * holds the gradient) and the loss in *loss. Errors fail the test. */
struct model *rs_rhvae_step(enum graph_conv_backend be, size_t B,
			    double *loss);
/* Same, with blocked activations on or off (graph_set_blocked). */
struct model *rs_rhvae_step_blocked(enum graph_conv_backend be, bool blocked,
				    size_t B, double *loss);

#endif
