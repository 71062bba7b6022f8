/* params: registration, the two contiguous buffers, lookup and init. */
#include "params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum vb_status params_create(struct params **out, struct vb_error *err)
{
	*out = calloc(1, sizeof **out);
	return *out ? VB_OK
		    : vb_fail(err, VB_ERR_NOMEM, "params: cannot allocate");
}

void params_free(struct params *p)
{
	if (!p)
		return;
	free(p->data);
	free(p->grad);
	free(p->entries);
	free(p);
}

enum vb_status params_add(struct params *p, const char *name, int ndim,
			  const size_t *shape, size_t *index,
			  struct vb_error *err)
{
	struct params_entry *e;
	size_t n;
	if (p->finalized)
		return vb_fail(err, VB_ERR_INTERNAL,
			       "params: %s added after finalize", name);
	if (params_find(p, name) >= 0)
		return vb_fail(err, VB_ERR_INTERNAL,
			       "params: duplicate name %s", name);
	if (strlen(name) >= PARAMS_NAME_LEN)
		return vb_fail(err, VB_ERR_INTERNAL,
			       "params: name %s too long", name);
	n = tensor_shape_count(ndim, shape);
	if (ndim < 0 || ndim > TENSOR_MAX_DIM || n == 0)
		return vb_fail(err, VB_ERR_SHAPE,
			       "params: %s has a bad shape", name);
	if (p->n_entries == p->cap_entries) {
		size_t cap = p->cap_entries ? p->cap_entries * 2 : 16;
		struct params_entry *ne =
			realloc(p->entries, cap * sizeof *ne);
		if (!ne)
			return vb_fail(err, VB_ERR_NOMEM,
				       "params: cannot grow");
		p->entries = ne;
		p->cap_entries = cap;
	}
	e = &p->entries[p->n_entries];
	memset(e, 0, sizeof *e);
	snprintf(e->name, sizeof e->name, "%s", name);
	e->ndim = ndim;
	for (int i = 0; i < TENSOR_MAX_DIM; i++)
		e->shape[i] = i < ndim ? shape[i] : 1;
	e->n = n;
	/* keep every tensor 16-element aligned inside the buffer */
	e->offset = (p->n + 15) & ~(size_t)15;
	p->n = e->offset + n;
	if (index)
		*index = p->n_entries;
	p->n_entries++;
	return VB_OK;
}

enum vb_status params_finalize(struct params *p, struct vb_error *err)
{
	size_t bytes;
	if (!vb_mul_size((p->n + 15) & ~(size_t)15, sizeof(vb_real), &bytes))
		return vb_fail(err, VB_ERR_NOMEM, "params: too many");
	p->data = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
	p->grad = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
	if (!p->data || !p->grad)
		return vb_fail(err, VB_ERR_NOMEM,
			       "params: cannot allocate %zu bytes", bytes);
	memset(p->data, 0, bytes);
	memset(p->grad, 0, bytes);
	p->finalized = true;
	return VB_OK;
}

struct tensor params_value(const struct params *p, size_t i)
{
	const struct params_entry *e = &p->entries[i];
	return tensor_view(p->data + e->offset, e->ndim, e->shape);
}

vb_real *params_grad(const struct params *p, size_t i)
{
	return p->grad + p->entries[i].offset;
}

long params_find(const struct params *p, const char *name)
{
	for (size_t i = 0; i < p->n_entries; i++)
		if (strcmp(p->entries[i].name, name) == 0)
			return (long)i;
	return -1;
}

long params_locate(const struct params *p, size_t k)
{
	for (size_t i = 0; i < p->n_entries; i++)
		if (k >= p->entries[i].offset &&
		    k < p->entries[i].offset + p->entries[i].n)
			return (long)i;
	return -1;
}

void params_zero_grad(struct params *p)
{
	memset(p->grad, 0, p->n * sizeof(vb_real));
}

void params_init_uniform(struct params *p, size_t i, double bound,
			 struct rng *r)
{
	struct tensor t = params_value(p, i);
	rng_fill_uniform(r, t.data, t.n, -bound, bound);
}

enum vb_status params_nodes(const struct params *p, struct graph *g,
			    struct graph_node **nodes)
{
	for (size_t i = 0; i < p->n_entries; i++) {
		nodes[i] = graph_param(g, p->entries[i].name,
				       params_value(p, i), params_grad(p, i));
		if (!nodes[i])
			return graph_status(g);
	}
	return VB_OK;
}
