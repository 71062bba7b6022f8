/* dataset: owned datasets from IDX pairs, views on ranges, batches as
 * vb_real, and the synthetic pattern images the tests learn from. Reading
 * the files is idx.c's job; which files make MNIST is mnist.c's. */
#include "dataset.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idx.h"

/* Copies s into name (64 bytes), cutting what does not fit. */
static void set_name(char *name, size_t cap, const char *s)
{
	size_t len = s ? strlen(s) : 0;
	if (len >= cap)
		len = cap - 1;
	if (len)
		memcpy(name, s, len);
	name[len] = '\0';
}

enum vb_status dataset_from_idx(const char *images_path,
				const char *labels_path, const char *name,
				struct dataset *out, struct vb_error *err)
{
	memset(out, 0, sizeof *out);
	struct idx_array images, labels;
	enum vb_status st = idx_read(images_path, 3, &images, err);
	if (st != VB_OK)
		return st;
	st = idx_read(labels_path, 1, &labels, err);
	if (st != VB_OK) {
		idx_free(&images);
		return st;
	}
	if (images.n_items != labels.n_items) {
		st = vb_fail(err, VB_ERR_DATA,
			     "dataset: %s has %zu images but %s has %zu labels, expected equal counts",
			     images_path, images.n_items, labels_path,
			     labels.n_items);
		idx_free(&images);
		idx_free(&labels);
		return st;
	}
	set_name(out->name, sizeof out->name, name);
	out->n = images.n_items;
	out->rows = images.dims[1];
	out->cols = images.dims[2];
	out->d = images.item_size;
	out->pixels = images.data;
	out->labels = labels.data;
	out->owns = true;
	return VB_OK;
}

enum vb_status dataset_subset(const struct dataset *src, size_t begin,
			      size_t end, struct dataset *out,
			      struct vb_error *err)
{
	memset(out, 0, sizeof *out);
	if (!(begin < end && end <= src->n))
		return vb_fail(err, VB_ERR_CONFIG,
			       "dataset: %s: range [%zu, %zu) with n = %zu, expected begin < end <= n",
			       src->name, begin, end, src->n);
	char buf[sizeof out->name + 64];
	snprintf(buf, sizeof buf, "%s[%zu:%zu)", src->name, begin, end);
	set_name(out->name, sizeof out->name, buf);
	out->n = end - begin;
	out->rows = src->rows;
	out->cols = src->cols;
	out->d = src->d;
	out->pixels = src->pixels + begin * src->d;
	out->labels = src->labels + begin;
	out->owns = false;
	return VB_OK;
}

void dataset_free(struct dataset *ds)
{
	if (!ds)
		return;
	if (ds->owns) {
		free(ds->pixels);
		free(ds->labels);
	}
	memset(ds, 0, sizeof *ds);
}

void dataset_batch(const struct dataset *ds, const size_t *index,
		   size_t n_batch, vb_real scale, vb_real *out)
{
	assert(scale > 0);
	size_t d = ds->d;
	for (size_t b = 0; b < n_batch; b++) {
		size_t i = index ? index[b] : b;
		assert(i < ds->n);
		const uint8_t *src = ds->pixels + i * d;
		vb_real *dst = out + b * d;
		for (size_t j = 0; j < d; j++)
			dst[j] = (vb_real)src[j] / scale;
	}
}

/* ---- synthetic patterns ------------------------------------------------ */

/* splitmix64 (Steele, Lea, Flood 2014): a tiny private stream so the
 * datasets library needs no other module's generator. */
static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

enum syn_kind { SYN_SEGMENT, SYN_RING };

/* One primitive in fractions of the image: a segment (y0, x0)-(y1, x1)
 * (a point when both ends agree) or a ring centred at (y0, x0) of radius
 * y1 * min(rows, cols). width scales the stroke half-width. */
struct syn_prim {
	enum syn_kind kind;
	double y0, x0, y1, x1;
	double width;
};

#define SYN_MAX_PRIMS 2

struct syn_pattern {
	int n_prims;
	struct syn_prim prims[SYN_MAX_PRIMS];
};

static const struct syn_pattern syn_patterns[DATASET_SYNTHETIC_CLASSES] = {
	{1, {{SYN_SEGMENT, 0.25, 0.2, 0.25, 0.8, 1.0}}},   /* top bar */
	{1, {{SYN_SEGMENT, 0.75, 0.2, 0.75, 0.8, 1.0}}},   /* bottom bar */
	{1, {{SYN_SEGMENT, 0.2, 0.25, 0.8, 0.25, 1.0}}},   /* left bar */
	{1, {{SYN_SEGMENT, 0.2, 0.75, 0.8, 0.75, 1.0}}},   /* right bar */
	{1, {{SYN_SEGMENT, 0.2, 0.2, 0.8, 0.8, 1.0}}},     /* diagonal */
	{1, {{SYN_SEGMENT, 0.2, 0.8, 0.8, 0.2, 1.0}}},     /* anti-diagonal */
	{1, {{SYN_SEGMENT, 0.5, 0.5, 0.5, 0.5, 2.0}}},     /* centre blob */
	{2, {{SYN_SEGMENT, 0.3, 0.3, 0.3, 0.3, 1.5},       /* two blobs */
	     {SYN_SEGMENT, 0.7, 0.7, 0.7, 0.7, 1.5}}},
	{1, {{SYN_RING, 0.5, 0.5, 0.3, 0.0, 1.0}}},        /* ring */
	{2, {{SYN_SEGMENT, 0.5, 0.2, 0.5, 0.8, 1.0},       /* cross */
	     {SYN_SEGMENT, 0.2, 0.5, 0.8, 0.5, 1.0}}},
};

/* Squared distance from (y, x) to the segment a-b. */
static double seg_dist2(double y, double x, double ay, double ax, double by,
			double bx)
{
	double vy = by - ay, vx = bx - ax;
	double len2 = vy * vy + vx * vx;
	double t = 0.0;
	if (len2 > 0.0) {
		t = ((y - ay) * vy + (x - ax) * vx) / len2;
		t = t < 0.0 ? 0.0 : t > 1.0 ? 1.0 : t;
	}
	double dy = y - (ay + t * vy), dx = x - (ax + t * vx);
	return dy * dy + dx * dx;
}

/* Draws one image of pattern p shifted by (sy, sx) pixels at brightness
 * amp: each pixel is 255 * amp * max over primitives of the tent
 * 1 - dist^2 / halfwidth^2 (clipped at 0), a blurred stroke. */
static void syn_draw(uint8_t *img, size_t rows, size_t cols,
		     const struct syn_pattern *p, double sy, double sx,
		     double amp)
{
	double h = (double)(rows - 1), w = (double)(cols - 1);
	double side = (double)(rows < cols ? rows : cols);
	/* Half-width: 2 pixels at 28 x 28, never below 1. */
	double base = side / 14.0 < 1.0 ? 1.0 : side / 14.0;
	for (size_t r = 0; r < rows; r++) {
		for (size_t c = 0; c < cols; c++) {
			double y = (double)r, x = (double)c, best = 0.0;
			for (int k = 0; k < p->n_prims; k++) {
				const struct syn_prim *q = &p->prims[k];
				double hw = base * q->width, d2;
				if (q->kind == SYN_RING) {
					double cy = q->y0 * h + sy;
					double cx = q->x0 * w + sx;
					double rad = q->y1 * side;
					double dd = sqrt((y - cy) * (y - cy) +
							 (x - cx) * (x - cx)) - rad;
					d2 = dd * dd;
				} else {
					d2 = seg_dist2(y, x, q->y0 * h + sy,
						       q->x0 * w + sx,
						       q->y1 * h + sy,
						       q->x1 * w + sx);
				}
				double v = 1.0 - d2 / (hw * hw);
				if (v > best)
					best = v;
			}
			double px = 255.0 * amp * best + 0.5;
			img[r * cols + c] = (uint8_t)(px > 255.0 ? 255.0 : px);
		}
	}
}

enum vb_status dataset_synthetic(size_t n, size_t rows, size_t cols,
				 uint64_t seed, struct dataset *out,
				 struct vb_error *err)
{
	memset(out, 0, sizeof *out);
	if (n < 1 || rows < 4 || cols < 4 || rows >= IDX_MAX_DIM ||
	    cols >= IDX_MAX_DIM)
		return vb_fail(err, VB_ERR_CONFIG,
			       "dataset: synthetic n = %zu, rows = %zu, cols = %zu, expected n >= 1 and 4 <= rows, cols < %zu",
			       n, rows, cols, IDX_MAX_DIM);
	size_t d, total;
	if (!vb_mul_size(rows, cols, &d) || !vb_mul_size(n, d, &total))
		return vb_fail(err, VB_ERR_NOMEM,
			       "dataset: synthetic %zu x %zu x %zu bytes overflow size_t",
			       n, rows, cols);
	uint8_t *pixels = malloc(total);
	uint8_t *labels = malloc(n);
	if (!pixels || !labels) {
		free(pixels);
		free(labels);
		return vb_fail(err, VB_ERR_NOMEM,
			       "dataset: synthetic: cannot allocate %zu bytes",
			       total + n);
	}
	uint64_t state = seed;
	for (size_t i = 0; i < n; i++) {
		int cls = (int)(splitmix64(&state) % DATASET_SYNTHETIC_CLASSES);
		double sy = (double)(splitmix64(&state) % 3) - 1.0;
		double sx = (double)(splitmix64(&state) % 3) - 1.0;
		double amp = 0.7 + 0.01 * (double)(splitmix64(&state) % 31);
		labels[i] = (uint8_t)cls;
		syn_draw(pixels + i * d, rows, cols, &syn_patterns[cls], sy,
			 sx, amp);
	}
	char name[64];
	snprintf(name, sizeof name, "synthetic-%llx",
		 (unsigned long long)seed);
	set_name(out->name, sizeof out->name, name);
	out->n = n;
	out->rows = rows;
	out->cols = cols;
	out->d = d;
	out->pixels = pixels;
	out->labels = labels;
	out->owns = true;
	return VB_OK;
}
