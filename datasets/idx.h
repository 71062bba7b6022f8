/* idx: reads IDX files of unsigned bytes (MNIST's format), raw or
 * gzip-compressed (told apart by the gzip magic bytes, not the name), and
 * validates header, dimensions and exact payload length. Turning the bytes
 * into a dataset is left to dataset.c; this is the only zlib user. */
#ifndef VB_DATASETS_IDX_H
#define VB_DATASETS_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "vb.h"

/* Largest value a single IDX dimension may take (exclusive): 2^24. */
#define IDX_MAX_DIM ((size_t)1 << 24)

/* An IDX array of bytes. data holds n_items * item_size bytes, row-major:
 * (dims[0], dims[1], dims[2]) for ndim 3, (dims[0]) for ndim 1. Unused
 * trailing dims are 1. n_items = dims[0]; item_size is the product of the
 * dims after the first (1 for a 1-D array). data is owned (idx_free). */
struct idx_array {
	uint8_t *data;
	int ndim;
	size_t dims[3];
	size_t n_items;
	size_t item_size;
};

/* Reads the IDX file at path, raw or gzip, into *out. The header must be
 * 0x00 0x00 0x08 ndim with ndim == expect_ndim (1..3; 3 for images, 1 for
 * labels), every dimension in 1..IDX_MAX_DIM-1 with a product that fits
 * size_t, and the payload exactly that product long (no trailing bytes).
 * Errors (one line naming path and the problem; *out left empty):
 * VB_ERR_IO when the file cannot be opened or read, VB_ERR_DATA for
 * malformed content (empty, bad magic / type / ndim, zero or huge
 * dimension, truncated or trailing payload, corrupt or truncated gzip),
 * VB_ERR_NOMEM when allocation fails, VB_ERR_INTERNAL when expect_ndim is
 * out of range. */
enum vb_status idx_read(const char *path, int expect_ndim,
			struct idx_array *out, struct vb_error *err);

/* Frees a's data and empties it. a may be NULL; freeing twice is safe. */
void idx_free(struct idx_array *a);

#endif
