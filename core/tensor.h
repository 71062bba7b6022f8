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

/* How a tensor's elements are ordered in memory. PLAIN is row-major (the
 * default, what every reader outside the convolution path expects).
 * BLK16 is oneDNN's aBcd16b (nChw16c) for a 4-D (B, C, H, W) with
 * C % 16 == 0: per sample, channels in blocks of 16, each block H x W x 16
 * with the 16 channels innermost. Same element count and bytes as PLAIN,
 * batch index outermost (each sample's C H W elements stay contiguous).
 * Only the float build's oneDNN convolution path makes BLK16 tensors
 * (graph.h, graph_set_blocked). */
enum tensor_layout {
	TENSOR_LAYOUT_PLAIN,
	TENSOR_LAYOUT_BLK16
};
#define TENSOR_BLK 16

struct tensor {
	vb_real *data;
	size_t shape[TENSOR_MAX_DIM]; /* unused trailing entries are 1 */
	int ndim;                     /* 0 (scalar) .. TENSOR_MAX_DIM */
	size_t n;                     /* element count, product of shape */
	bool owns;                    /* true: tensor_free releases data */
	enum tensor_layout layout;    /* PLAIN unless set by the conv path */
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

/* Whether t is 4-D with shape[1] % TENSOR_BLK == 0 (BLK16 possible). */
bool tensor_blockable(const struct tensor *t);

/* Storage offset in t->data of the element at row-major index i (i for
 * PLAIN). */
size_t tensor_offset(const struct tensor *t, size_t i);

/* dst (plain) = src (BLK16) reordered, or the reverse, for a (B, C, H, W)
 * shape with C % TENSOR_BLK == 0; hw = H W. src and dst must not overlap.
 * Pure permutations: every value is copied bit for bit. */
void tensor_blk16_to_plain(const vb_real *src, vb_real *dst, size_t B,
			   size_t C, size_t hw);
void tensor_plain_to_blk16(const vb_real *src, vb_real *dst, size_t B,
			   size_t C, size_t hw);

/* dst = src's values in dst->layout (src->layout may differ); the same
 * element count (the blocked one's shape is used), not overlapping. */
void tensor_copy_layout(struct tensor *dst, const struct tensor *src);

/* Rows and columns of a tensor seen as a matrix: shape[0] and n/shape[0]
 * (a 0-D tensor is 1 x 1). */
size_t tensor_rows(const struct tensor *t);
size_t tensor_cols(const struct tensor *t);

/* Writes "(64, 784)" into buf (size cap); returns buf. */
char *tensor_shape_str(const struct tensor *t, char *buf, size_t cap);

#endif
