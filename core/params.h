/* params: every model parameter in one contiguous buffer, gradients in a
 * second buffer of the same layout; named tensors are views. Zeroing,
 * norms, clipping, finite checks and optimiser updates are then one loop,
 * and a bad flat index maps back to a name (params_locate). Registration
 * happens before params_finalize, which allocates both buffers. */
#ifndef VB_CORE_PARAMS_H
#define VB_CORE_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

#include "graph.h"
#include "rng.h"
#include "tensor.h"
#include "vb.h"

#define PARAMS_NAME_LEN 96

struct params_entry {
	char name[PARAMS_NAME_LEN]; /* PyTorch state_dict name */
	int ndim;
	size_t shape[TENSOR_MAX_DIM];
	size_t offset; /* into data / grad */
	size_t n;
};

struct params {
	vb_real *data; /* (n) all parameters */
	vb_real *grad; /* (n) same layout */
	size_t n;
	struct params_entry *entries;
	size_t n_entries;
	size_t cap_entries;
	bool finalized;
};

enum vb_status params_create(struct params **out, struct vb_error *err);
void params_free(struct params *p);

/* Registers a tensor (before finalize); *index receives its entry index.
 * Duplicate names are refused. */
enum vb_status params_add(struct params *p, const char *name, int ndim,
			  const size_t *shape, size_t *index,
			  struct vb_error *err);

/* Allocates the zeroed value and gradient buffers (64-byte aligned). */
enum vb_status params_finalize(struct params *p, struct vb_error *err);

/* View of entry i's value (borrowed; valid while p lives). */
struct tensor params_value(const struct params *p, size_t i);
/* Entry i's slice of the gradient buffer. */
vb_real *params_grad(const struct params *p, size_t i);

/* Index of the entry named name, or -1. */
long params_find(const struct params *p, const char *name);

/* Entry index holding flat element k (k < n); -1 if out of range. */
long params_locate(const struct params *p, size_t k);

void params_zero_grad(struct params *p);

/* Uniform(-bound, bound) fill of entry i from r (PyTorch default init for
 * Linear/Conv weights and biases is bound = 1/sqrt(fan_in)). */
void params_init_uniform(struct params *p, size_t i, double bound,
			 struct rng *r);

/* Appends one PARAM node per entry to the tape (nodes[i] for entry i,
 * named by the entry); nodes must hold n_entries pointers. */
enum vb_status params_nodes(const struct params *p, struct graph *g,
			    struct graph_node **nodes);

#endif
