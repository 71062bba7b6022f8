/* freeze: the record/replay store of graph constants shared by hvae.c and
 * rhvae.c. Which nodes are frozen, and when, is left to the models. */
#include "freeze.h"

#include <stdlib.h>
#include <string.h>

void freeze_reset(struct freeze_store *s, bool record)
{
	s->pos = 0;
	if (record)
		s->n = 0;
}

struct graph_node *freeze_apply(struct freeze_store *s, bool record,
				struct graph *g, struct graph_node *n,
				const char *module)
{
	size_t k;
	if (!n)
		return n;
	k = n->value.n;
	if (record) {
		if (s->n + k > s->cap) {
			size_t cap = (s->n + k) * 2;
			vb_real *nf = realloc(s->values, cap * sizeof *nf);
			if (!nf)
				return graph_failf(g, VB_ERR_NOMEM,
						   "%s: freeze store", module);
			s->values = nf;
			s->cap = cap;
		}
		memcpy(s->values + s->n, n->value.data, k * sizeof(vb_real));
		s->n += k;
		return n;
	}
	if (s->pos + k > s->n)
		return graph_failf(g, VB_ERR_INTERNAL,
				   "%s: replay of more constants than were "
				   "recorded",
				   module);
	memcpy(n->value.data, s->values + s->pos, k * sizeof(vb_real));
	s->pos += k;
	return n;
}

void freeze_free(struct freeze_store *s)
{
	free(s->values);
	s->values = NULL;
	s->n = s->cap = s->pos = 0;
}
