/* tensor: dense row-major tensors of vb_real, up to 4-D, batch first
 * (B, C, H, W). A tensor either owns its data (tensor_create, freed by
 * tensor_free) or is a view on someone else's (tensor_view, graph arena,
 * parameter buffer); only owners free. Storage of per-step scratch lives in
 * the graph's arena, not here. */
#ifndef VB_CORE_TENSOR_H
#define VB_CORE_TENSOR_H

#include <stdbool.h>
#include <stddef.h>

#include "vb.h"

#define TENSOR_MAX_DIM 4

struct tensor {
	vb_real *data;
	size_t shape[TENSOR_MAX_DIM]; /* unused trailing entries are 1 */
	int ndim;                     /* 0 (scalar) .. TENSOR_MAX_DIM */
	size_t n;                     /* element count, product of shape */
	bool owns;                    /* true: tensor_free releases data */
};

/* Allocates a zeroed owned tensor of the given shape. On failure *t is
 * left empty (data NULL) and VB_ERR_NOMEM / VB_ERR_SHAPE is returned. */
enum vb_status tensor_create(struct tensor *t, int ndim, const size_t *shape,
			     struct vb_error *err);

/* Releases an owned tensor's data and empties it; views are only emptied.
 * t may be NULL. */
void tensor_free(struct tensor *t);

/* A view of data with the given shape (data is borrowed, not copied).
 * Returns an empty tensor if ndim is out of range. */
struct tensor tensor_view(vb_real *data, int ndim, const size_t *shape);

/* Shape helpers for the common cases. */
struct tensor tensor_view1(vb_real *data, size_t n0);
struct tensor tensor_view2(vb_real *data, size_t n0, size_t n1);

/* Element count of a shape; 0 and VB_ERR_SHAPE on overflow or bad ndim. */
size_t tensor_shape_count(int ndim, const size_t *shape);

/* True when a and b have the same ndim and shape. */
bool tensor_same_shape(const struct tensor *a, const struct tensor *b);

/* Fills every element with v. */
void tensor_fill(struct tensor *t, vb_real v);

/* Copies src into dst; both must hold the same element count. */
void tensor_copy(struct tensor *dst, const struct tensor *src);

/* Rows and columns of a tensor seen as a matrix: shape[0] and n/shape[0]
 * (a 0-D tensor is 1 x 1). */
size_t tensor_rows(const struct tensor *t);
size_t tensor_cols(const struct tensor *t);

/* Writes "(64, 784)" into buf (size cap); returns buf. */
char *tensor_shape_str(const struct tensor *t, char *buf, size_t cap);

#endif
