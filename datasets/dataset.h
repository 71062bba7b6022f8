/* dataset: images (n, d) of uint8 pixels with one uint8 label each, built
 * from a pair of IDX files, as a view on a range of another dataset, or
 * synthetically for tests; and the conversion of a batch of rows to
 * vb_real. File names and folders (MNIST) are mnist.c's business. */
#ifndef VB_DATASETS_DATASET_H
#define VB_DATASETS_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vb.h"

/* Number of pattern classes dataset_synthetic draws labels from. */
#define DATASET_SYNTHETIC_CLASSES 10

/* n images of rows x cols = d pixels, row-major, image i at pixels + i * d.
 * owns: true when pixels and labels are this dataset's (dataset_free
 * releases them); false for a view (dataset_subset) whose memory belongs
 * to the source, which must outlive it. name is a display label (at most
 * 63 characters, longer names are cut). */
struct dataset {
	char name[64];
	size_t n;
	size_t rows, cols;
	size_t d;          /* rows * cols */
	uint8_t *pixels;   /* (n, d) */
	uint8_t *labels;   /* (n) */
	bool owns;
};

/* Reads images_path (IDX, 3 dims: n x rows x cols) and labels_path (IDX,
 * 1 dim: n), raw or gzip, into an owned dataset named name (NULL: ""). The
 * two counts must agree. Errors: those of idx_read (VB_ERR_IO, VB_ERR_DATA,
 * VB_ERR_NOMEM), VB_ERR_DATA naming both files and both counts when they
 * differ. On error *out is left empty. */
enum vb_status dataset_from_idx(const char *images_path,
				const char *labels_path, const char *name,
				struct dataset *out, struct vb_error *err);

/* A view of images begin .. end-1 of src (memory shared, owns false; valid
 * while src lives). Needs begin < end <= src->n, else VB_ERR_CONFIG naming
 * the range and n. The name is src's followed by "[begin:end)". */
enum vb_status dataset_subset(const struct dataset *src, size_t begin,
			      size_t end, struct dataset *out,
			      struct vb_error *err);

/* Releases an owned dataset's memory (a view's is left alone) and empties
 * *ds. ds may be NULL; freeing twice is safe. */
void dataset_free(struct dataset *ds);

/* Writes images index[0 .. n_batch-1] of ds into out (n_batch, d) as
 * pixel / scale (scale 255: [0, 1] as torchvision's ToTensor; scale 1: the
 * raw 0..255). index NULL means images 0 .. n_batch-1. Every index must be
 * < ds->n and scale > 0 (asserted: callers own these invariants). */
void dataset_batch(const struct dataset *ds, const size_t *index,
		   size_t n_batch, vb_real scale, vb_real *out);

/* n deterministic, learnable images of rows x cols for tests: each shows
 * one of DATASET_SYNTHETIC_CLASSES blurred stroke/blob patterns (label =
 * the pattern's class), shifted by up to one pixel and scaled in
 * brightness, all drawn from a splitmix64 stream seeded by seed. The same
 * arguments give the same bytes on every machine (no libm beyond sqrt).
 * Needs n >= 1 and 4 <= rows, cols < 2^24, else VB_ERR_CONFIG;
 * VB_ERR_NOMEM when the sizes overflow or allocation fails. */
enum vb_status dataset_synthetic(size_t n, size_t rows, size_t cols,
				 uint64_t seed, struct dataset *out,
				 struct vb_error *err);

#endif
