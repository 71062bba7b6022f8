/* tensor: creation, views, fill and copy. */
#include "tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t tensor_shape_count(int ndim, const size_t *shape)
{
	size_t n = 1;
	if (ndim < 0 || ndim > TENSOR_MAX_DIM)
		return 0;
	for (int i = 0; i < ndim; i++)
		if (!vb_mul_size(n, shape[i], &n))
			return 0;
	return n;
}

struct tensor tensor_view(vb_real *data, int ndim, const size_t *shape)
{
	struct tensor t;
	memset(&t, 0, sizeof t);
	if (ndim < 0 || ndim > TENSOR_MAX_DIM)
		return t;
	t.data = data;
	t.ndim = ndim;
	for (int i = 0; i < TENSOR_MAX_DIM; i++)
		t.shape[i] = i < ndim ? shape[i] : 1;
	t.n = tensor_shape_count(ndim, shape);
	t.owns = false;
	return t;
}

struct tensor tensor_view1(vb_real *data, size_t n0)
{
	size_t s[1] = {n0};
	return tensor_view(data, 1, s);
}

struct tensor tensor_view2(vb_real *data, size_t n0, size_t n1)
{
	size_t s[2] = {n0, n1};
	return tensor_view(data, 2, s);
}

enum vb_status tensor_create(struct tensor *t, int ndim, const size_t *shape,
			     struct vb_error *err)
{
	size_t n, bytes;
	memset(t, 0, sizeof *t);
	if (ndim < 0 || ndim > TENSOR_MAX_DIM)
		return vb_fail(err, VB_ERR_SHAPE,
			       "tensor: ndim %d, expected 0..%d", ndim,
			       TENSOR_MAX_DIM);
	n = tensor_shape_count(ndim, shape);
	if (ndim > 0 && n == 0) {
		for (int i = 0; i < ndim; i++)
			if (shape[i] == 0)
				goto empty_ok;
		return vb_fail(err, VB_ERR_NOMEM, "tensor: shape too large");
	}
empty_ok:
	if (!vb_mul_size(n ? n : 1, sizeof(vb_real), &bytes))
		return vb_fail(err, VB_ERR_NOMEM, "tensor: shape too large");
	*t = tensor_view(NULL, ndim, shape);
	t->data = calloc(1, bytes);
	if (!t->data) {
		memset(t, 0, sizeof *t);
		return vb_fail(err, VB_ERR_NOMEM,
			       "tensor: cannot allocate %zu bytes", bytes);
	}
	t->owns = true;
	return VB_OK;
}

void tensor_free(struct tensor *t)
{
	if (!t)
		return;
	if (t->owns)
		free(t->data);
	memset(t, 0, sizeof *t);
}

bool tensor_same_shape(const struct tensor *a, const struct tensor *b)
{
	if (a->ndim != b->ndim)
		return false;
	for (int i = 0; i < a->ndim; i++)
		if (a->shape[i] != b->shape[i])
			return false;
	return true;
}

void tensor_fill(struct tensor *t, vb_real v)
{
	for (size_t i = 0; i < t->n; i++)
		t->data[i] = v;
}

void tensor_copy(struct tensor *dst, const struct tensor *src)
{
	if (dst->data != src->data && src->n)
		memcpy(dst->data, src->data, src->n * sizeof(vb_real));
}

size_t tensor_rows(const struct tensor *t)
{
	return t->ndim == 0 ? 1 : t->shape[0];
}

size_t tensor_cols(const struct tensor *t)
{
	size_t r = tensor_rows(t);
	return r ? t->n / r : 0;
}

char *tensor_shape_str(const struct tensor *t, char *buf, size_t cap)
{
	size_t len = 0;
	if (cap == 0)
		return buf;
	buf[0] = '\0';
	len += (size_t)snprintf(buf + len, cap - len, "(");
	for (int i = 0; i < t->ndim && len < cap; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%s%zu",
					i ? ", " : "", t->shape[i]);
	if (len < cap)
		snprintf(buf + len, cap - len, ")");
	return buf;
}
