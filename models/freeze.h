/* freeze: the store of graph constants that a record pass keeps and a
 * replay pass puts back in the same order (hvae_set_freeze,
 * rhvae_set_freeze). The models keep their own mode enums and decide which
 * nodes are constants; this module only records and replays values. */
#ifndef VB_MODELS_FREEZE_H
#define VB_MODELS_FREEZE_H

#include <stdbool.h>
#include <stddef.h>

#include "graph.h"
#include "vb.h"

/* Recorded values in the order made; zero-initialised is empty. */
struct freeze_store {
	vb_real *values; /* (cap), owned */
	size_t n, cap, pos;
};

/* Starts a pass: replay from the first value; record also empties. */
void freeze_reset(struct freeze_store *s, bool record);

/* Records n's values (record) or overwrites them with the next recorded
 * ones (replay) and returns n; NULL n is returned as is. On failure sets
 * the graph's status with a message prefixed by module ("<module>: freeze
 * store" for no memory, VB_ERR_NOMEM; a replay past the recorded values,
 * VB_ERR_INTERNAL) and returns what graph_failf returns. */
struct graph_node *freeze_apply(struct freeze_store *s, bool record,
				struct graph *g, struct graph_node *n,
				const char *module);

/* Frees the values; the store is empty after. */
void freeze_free(struct freeze_store *s);

#endif
