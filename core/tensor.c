/* tensor: creation, views, fill and copy. */
#include "tensor.h"

#include "par.h"

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

bool tensor_blockable(const struct tensor *t)
{
	return t->ndim == 4 && t->shape[1] % TENSOR_BLK == 0 &&
	       t->shape[1] > 0;
}

size_t tensor_offset(const struct tensor *t, size_t i)
{
	size_t hw, chw, b, c, p, r;
	if (t->layout != TENSOR_LAYOUT_BLK16)
		return i;
	hw = t->shape[2] * t->shape[3];
	chw = t->shape[1] * hw;
	b = i / chw;
	r = i % chw;
	c = r / hw;
	p = r % hw;
	return b * chw + (c / TENSOR_BLK) * hw * TENSOR_BLK + p * TENSOR_BLK +
	       c % TENSOR_BLK;
}

void tensor_blk16_to_plain(const vb_real *src, vb_real *dst, size_t B,
			   size_t C, size_t hw)
{
	size_t nblk = B * (C / TENSOR_BLK);
	PAR_FOR(nblk * hw * TENSOR_BLK)
	for (size_t k = 0; k < nblk; k++) {
		const vb_real *s = src + k * hw * TENSOR_BLK;
		vb_real *d = dst + k * hw * TENSOR_BLK;
		for (size_t p = 0; p < hw; p++)
			for (size_t j = 0; j < TENSOR_BLK; j++)
				d[j * hw + p] = s[p * TENSOR_BLK + j];
	}
}

void tensor_plain_to_blk16(const vb_real *src, vb_real *dst, size_t B,
			   size_t C, size_t hw)
{
	size_t nblk = B * (C / TENSOR_BLK);
	PAR_FOR(nblk * hw * TENSOR_BLK)
	for (size_t k = 0; k < nblk; k++) {
		const vb_real *s = src + k * hw * TENSOR_BLK;
		vb_real *d = dst + k * hw * TENSOR_BLK;
		for (size_t j = 0; j < TENSOR_BLK; j++)
			for (size_t p = 0; p < hw; p++)
				d[p * TENSOR_BLK + j] = s[j * hw + p];
	}
}

void tensor_copy_layout(struct tensor *dst, const struct tensor *src)
{
	size_t hw;
	if (dst->layout == src->layout) {
		tensor_copy(dst, src);
		return;
	}
	if (src->layout == TENSOR_LAYOUT_BLK16) {
		hw = src->shape[2] * src->shape[3];
		tensor_blk16_to_plain(src->data, dst->data, src->shape[0],
				      src->shape[1], hw);
		return;
	}
	hw = dst->shape[2] * dst->shape[3];
	if (dst->layout == TENSOR_LAYOUT_BLK16)
		tensor_plain_to_blk16(src->data, dst->data, dst->shape[0],
				      dst->shape[1], hw);
}
