/* test_idx: the IDX reader (raw and gzip, every malformed-file error),
 * datasets from IDX pairs, subsets, batches, synthetic data, and the MNIST
 * file lookup. Every fixture is a tiny file written here (5 images of
 * 3 x 4), raw or through zlib's gzwrite; no real MNIST, no network. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "dataset.h"
#include "idx.h"
#include "mnist.h"
#include "testutil.h"

#define N_IMG 5
#define ROWS 3
#define COLS 4
#define D (ROWS * COLS)

/* ---- fixture writers ---------------------------------------------------- */

/* An IDX byte image: magic bytes m0..m3, ndim big-endian dims, then n
 * payload bytes. Returns a malloc'd buffer of *len bytes. */
static uint8_t *idx_bytes(const uint8_t magic[4], int ndim,
			  const uint32_t *dims, const uint8_t *payload,
			  size_t n, size_t *len)
{
	size_t head = 4 + 4 * (size_t)ndim;
	uint8_t *b = malloc(head + n + 1);
	ck_assert_ptr_nonnull(b);
	memcpy(b, magic, 4);
	for (int i = 0; i < ndim; i++) {
		b[4 + 4 * i] = (uint8_t)(dims[i] >> 24);
		b[5 + 4 * i] = (uint8_t)(dims[i] >> 16);
		b[6 + 4 * i] = (uint8_t)(dims[i] >> 8);
		b[7 + 4 * i] = (uint8_t)dims[i];
	}
	if (n)
		memcpy(b + head, payload, n);
	*len = head + n;
	return b;
}

static void write_raw(const char *path, const uint8_t *b, size_t n)
{
	ck_assert_int_eq(tu_write_file(path, b, n), 0);
}

static void write_gz(const char *path, const uint8_t *b, size_t n)
{
	gzFile gz = gzopen(path, "wb9");
	ck_assert_ptr_nonnull(gz);
	if (n)
		ck_assert_int_eq(gzwrite(gz, b, (unsigned)n), (int)n);
	ck_assert_int_eq(gzclose(gz), Z_OK);
}

/* The expected pixels (image i, pixel j) and labels of the fixture. */
static uint8_t fixture_pixel(size_t i, size_t j)
{
	return (uint8_t)((i * 37 + j * 11 + 3) % 256);
}

static void fixture_payloads(uint8_t *pixels, uint8_t *labels)
{
	for (size_t i = 0; i < N_IMG; i++) {
		for (size_t j = 0; j < D; j++)
			pixels[i * D + j] = fixture_pixel(i, j);
		labels[i] = (uint8_t)((i * 3) % 10);
	}
}

static const uint8_t magic_images[4] = {0, 0, 8, 3};
static const uint8_t magic_labels[4] = {0, 0, 8, 1};

/* Writes an image file of n images (n_payload bytes of the fixture's
 * payload, plus extra trailing bytes), raw or gzip. */
static void write_images(const char *path, uint32_t n, size_t n_payload,
			 size_t extra, int gz)
{
	uint8_t pixels[N_IMG * D + 16], labels[N_IMG];
	fixture_payloads(pixels, labels);
	memset(pixels + N_IMG * D, 0xab, 16);
	uint32_t dims[3] = {n, ROWS, COLS};
	size_t len;
	uint8_t *b = idx_bytes(magic_images, 3, dims, pixels,
			       n_payload + extra, &len);
	if (gz)
		write_gz(path, b, len);
	else
		write_raw(path, b, len);
	free(b);
}

static void write_labels(const char *path, uint32_t n, int gz)
{
	uint8_t pixels[N_IMG * D], labels[N_IMG + 8];
	fixture_payloads(pixels, labels);
	memset(labels + N_IMG, 0, 8);
	uint32_t dims[1] = {n};
	size_t len;
	uint8_t *b = idx_bytes(magic_labels, 1, dims, labels, n, &len);
	if (gz)
		write_gz(path, b, len);
	else
		write_raw(path, b, len);
	free(b);
}

/* A fresh folder; the returned copy is the caller's to free. */
static char *fresh_dir(const char *tag)
{
	char *d = strdup(tu_tmpdir(tag));
	ck_assert_ptr_nonnull(d);
	return d;
}

static char *path_in(const char *dir, const char *name)
{
	char *p = strdup(tu_path(dir, name));
	ck_assert_ptr_nonnull(p);
	return p;
}

/* Asserts a failed call: status, one line, naming path and saying what. */
static void expect_error(enum vb_status st, const struct vb_error *err,
			 enum vb_status want, const char *path,
			 const char *what)
{
	ck_assert_msg(st == want, "status %s, expected %s (msg: %s)",
		      vb_status_name(st), vb_status_name(want), err->msg);
	ck_assert_int_eq(err->status, want);
	ck_assert_msg(strchr(err->msg, '\n') == NULL, "not one line: %s",
		      err->msg);
	if (path)
		ck_assert_msg(strstr(err->msg, path) != NULL,
			      "message does not name %s: %s", path, err->msg);
	ck_assert_msg(strstr(err->msg, what) != NULL,
		      "message lacks \"%s\": %s", what, err->msg);
}

/* Reads path as images and expects the given failure; out must be empty. */
static void expect_idx_error(const char *path, int ndim, enum vb_status want,
			     const char *what)
{
	struct idx_array a;
	struct vb_error err;
	vb_error_clear(&err);
	enum vb_status st = idx_read(path, ndim, &a, &err);
	expect_error(st, &err, want, path, what);
	ck_assert_ptr_null(a.data);
	ck_assert_uint_eq(a.n_items, 0);
}

/* ---- good files ---------------------------------------------------------- */

static void check_fixture_images(const struct idx_array *a)
{
	ck_assert_int_eq(a->ndim, 3);
	ck_assert_uint_eq(a->dims[0], N_IMG);
	ck_assert_uint_eq(a->dims[1], ROWS);
	ck_assert_uint_eq(a->dims[2], COLS);
	ck_assert_uint_eq(a->n_items, N_IMG);
	ck_assert_uint_eq(a->item_size, D);
	for (size_t i = 0; i < N_IMG; i++)
		for (size_t j = 0; j < D; j++)
			ck_assert_uint_eq(a->data[i * D + j],
					  fixture_pixel(i, j));
}

START_TEST(test_read_raw_and_gz)
{
	char *dir = fresh_dir("idx_good");
	char *raw = path_in(dir, "img-raw");
	char *gz = path_in(dir, "img-gz");  /* no .gz: detected by magic */
	write_images(raw, N_IMG, N_IMG * D, 0, 0);
	write_images(gz, N_IMG, N_IMG * D, 0, 1);

	struct idx_array a, b;
	struct vb_error err;
	vb_error_clear(&err);
	ck_assert_int_eq(idx_read(raw, 3, &a, &err), VB_OK);
	ck_assert_int_eq(idx_read(gz, 3, &b, &err), VB_OK);
	ck_assert_int_eq(err.status, VB_OK);
	check_fixture_images(&a);
	check_fixture_images(&b);
	ck_assert_mem_eq(a.data, b.data, N_IMG * D);
	idx_free(&a);
	idx_free(&b);
	ck_assert_ptr_null(a.data);
	idx_free(&a); /* twice is safe */
	idx_free(NULL);
	free(raw);
	free(gz);
	free(dir);
}
END_TEST

START_TEST(test_read_labels)
{
	char *dir = fresh_dir("idx_labels");
	char *raw = path_in(dir, "lab");
	char *gz = path_in(dir, "lab.gz");
	write_labels(raw, N_IMG, 0);
	write_labels(gz, N_IMG, 1);
	uint8_t pixels[N_IMG * D], labels[N_IMG];
	fixture_payloads(pixels, labels);
	const char *paths[2] = {raw, gz};
	for (int k = 0; k < 2; k++) {
		struct idx_array a;
		struct vb_error err;
		vb_error_clear(&err);
		ck_assert_int_eq(idx_read(paths[k], 1, &a, &err), VB_OK);
		ck_assert_int_eq(a.ndim, 1);
		ck_assert_uint_eq(a.dims[0], N_IMG);
		ck_assert_uint_eq(a.n_items, N_IMG);
		ck_assert_uint_eq(a.item_size, 1);
		ck_assert_mem_eq(a.data, labels, N_IMG);
		idx_free(&a);
	}
	free(raw);
	free(gz);
	free(dir);
}
END_TEST

/* ---- malformed files ------------------------------------------------------ */

START_TEST(test_truncated_payload)
{
	char *dir = fresh_dir("idx_trunc");
	char *raw = path_in(dir, "img");
	char *gz = path_in(dir, "img.gz");
	write_images(raw, N_IMG, N_IMG * D - 3, 0, 0);
	write_images(gz, N_IMG, N_IMG * D - 3, 0, 1);
	expect_idx_error(raw, 3, VB_ERR_DATA,
			 "truncated: expected 60 bytes of pixel data, got 57");
	expect_idx_error(gz, 3, VB_ERR_DATA,
			 "truncated: expected 60 bytes of pixel data, got 57");
	/* A header cut inside the dimensions. */
	uint8_t head[9] = {0, 0, 8, 3, 0, 0, 0, 5, 0};
	write_raw(raw, head, sizeof head);
	expect_idx_error(raw, 3, VB_ERR_DATA,
			 "truncated header: expected 12 bytes of dimensions, got 5");
	free(raw);
	free(gz);
	free(dir);
}
END_TEST

START_TEST(test_wrong_magic)
{
	char *dir = fresh_dir("idx_magic");
	char *p = path_in(dir, "img");
	uint8_t magic[4] = {0x01, 0x00, 0x08, 0x03};
	uint32_t dims[3] = {N_IMG, ROWS, COLS};
	uint8_t payload[N_IMG * D] = {0};
	size_t len;
	uint8_t *b = idx_bytes(magic, 3, dims, payload, sizeof payload, &len);
	write_raw(p, b, len);
	free(b);
	expect_idx_error(p, 3, VB_ERR_DATA,
			 "magic 0x01000803, expected 0x00000803 (ubyte, 3 dims)");
	free(p);
	free(dir);
}
END_TEST

START_TEST(test_wrong_type_byte)
{
	char *dir = fresh_dir("idx_type");
	char *p = path_in(dir, "img");
	uint8_t magic[4] = {0x00, 0x00, 0x0d, 0x03}; /* float */
	uint32_t dims[3] = {N_IMG, ROWS, COLS};
	uint8_t payload[N_IMG * D] = {0};
	size_t len;
	uint8_t *b = idx_bytes(magic, 3, dims, payload, sizeof payload, &len);
	write_raw(p, b, len);
	free(b);
	expect_idx_error(p, 3, VB_ERR_DATA, "data type 0x0d");
	expect_idx_error(p, 3, VB_ERR_DATA, "expected 0x08 (ubyte)");
	free(p);
	free(dir);
}
END_TEST

START_TEST(test_wrong_ndim)
{
	char *dir = fresh_dir("idx_ndim");
	char *lab = path_in(dir, "t10k-labels-idx1-ubyte");
	char *img = path_in(dir, "t10k-images-idx3-ubyte");
	write_labels(lab, N_IMG, 0);
	write_images(img, N_IMG, N_IMG * D, 0, 0);
	/* a labels file passed as images, and the other way round */
	expect_idx_error(lab, 3, VB_ERR_DATA,
			 "magic 0x00000801 (1 dims), expected 0x00000803 (ubyte, 3 dims)");
	expect_idx_error(img, 1, VB_ERR_DATA,
			 "magic 0x00000803 (3 dims), expected 0x00000801 (ubyte, 1 dims)");
	expect_idx_error(img, 4, VB_ERR_INTERNAL, "expected ndim 4");
	free(lab);
	free(img);
	free(dir);
}
END_TEST

START_TEST(test_bad_dimension)
{
	char *dir = fresh_dir("idx_dim");
	char *p = path_in(dir, "img");
	uint8_t payload[N_IMG * D] = {0};
	size_t len;
	uint32_t zero[3] = {N_IMG, 0, COLS};
	uint8_t *b = idx_bytes(magic_images, 3, zero, payload, 0, &len);
	write_raw(p, b, len);
	free(b);
	expect_idx_error(p, 3, VB_ERR_DATA,
			 "dimension 2 of 3 is 0, expected 1..16777215");

	uint32_t huge[3] = {1u << 24, ROWS, COLS};
	b = idx_bytes(magic_images, 3, huge, payload, sizeof payload, &len);
	write_raw(p, b, len);
	free(b);
	expect_idx_error(p, 3, VB_ERR_DATA,
			 "dimension 1 of 3 is 16777216, expected 1..16777215");

	/* Sane dimensions claiming far more than the file holds: an error
	 * after reading what is there, not a huge allocation. */
	uint32_t big[3] = {(1u << 24) - 1, 1000, 1000};
	b = idx_bytes(magic_images, 3, big, payload, sizeof payload, &len);
	write_raw(p, b, len);
	free(b);
	expect_idx_error(p, 3, VB_ERR_DATA, "got 60");
	free(p);
	free(dir);
}
END_TEST

START_TEST(test_trailing_bytes)
{
	char *dir = fresh_dir("idx_trail");
	char *raw = path_in(dir, "img");
	char *gz = path_in(dir, "img.gz");
	write_images(raw, N_IMG, N_IMG * D, 2, 0);
	write_images(gz, N_IMG, N_IMG * D, 7, 1);
	expect_idx_error(raw, 3, VB_ERR_DATA,
			 "2 trailing bytes after the expected 60 bytes of pixel data");
	expect_idx_error(gz, 3, VB_ERR_DATA,
			 "7 trailing bytes after the expected 60 bytes of pixel data");
	/* fewer images in the header than in the file is the same error */
	write_images(raw, N_IMG - 1, N_IMG * D, 0, 0);
	expect_idx_error(raw, 3, VB_ERR_DATA, "12 trailing bytes");
	free(raw);
	free(gz);
	free(dir);
}
END_TEST

START_TEST(test_corrupt_gzip)
{
	char *dir = fresh_dir("idx_gz");
	char *p = path_in(dir, "img.gz");
	char *good = path_in(dir, "good.gz");

	/* A valid gzip header, then bytes that are no deflate stream (0xff
	 * starts a block of the reserved type 3). */
	uint8_t bad[40] = {0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0x03};
	memset(bad + 10, 0xff, sizeof bad - 10);
	write_raw(p, bad, sizeof bad);
	expect_idx_error(p, 3, VB_ERR_DATA, "corrupt gzip data");

	/* A good gzip file cut in the middle of its deflate data. */
	write_images(good, N_IMG, N_IMG * D, 0, 1);
	size_t n;
	char *g = tu_read_file(good, &n);
	ck_assert_ptr_nonnull(g);
	ck_assert_uint_gt(n, 30);
	write_raw(p, (const uint8_t *)g, 10 + (n - 18) / 2);
	expect_idx_error(p, 3, VB_ERR_DATA, "gzip stream truncated");

	/* Only the 8-byte trailer (CRC, length) missing. */
	write_raw(p, (const uint8_t *)g, n - 8);
	expect_idx_error(p, 3, VB_ERR_DATA, "gzip stream truncated");

	/* A flipped CRC byte. */
	g[n - 8] ^= 0x5a;
	write_raw(p, (const uint8_t *)g, n);
	expect_idx_error(p, 3, VB_ERR_DATA, "corrupt gzip data");

	/* A gzip of nothing: an empty IDX. */
	write_gz(p, NULL, 0);
	expect_idx_error(p, 3, VB_ERR_DATA, "empty file");
	free(g);
	free(good);
	free(p);
	free(dir);
}
END_TEST

START_TEST(test_empty_and_missing)
{
	char *dir = fresh_dir("idx_empty");
	char *p = path_in(dir, "img");
	char *missing = path_in(dir, "no-such-file");
	write_raw(p, NULL, 0);
	expect_idx_error(p, 3, VB_ERR_DATA, "empty file");
	uint8_t three[3] = {0, 0, 8};
	write_raw(p, three, sizeof three);
	expect_idx_error(p, 3, VB_ERR_DATA, "truncated header");
	expect_idx_error(missing, 3, VB_ERR_IO, "cannot open");
	expect_idx_error(dir, 3, VB_ERR_IO, "is a folder");
	free(missing);
	free(p);
	free(dir);
}
END_TEST

/* ---- datasets -------------------------------------------------------------- */

START_TEST(test_dataset_from_idx)
{
	char *dir = fresh_dir("ds_idx");
	char *img = path_in(dir, "img");
	char *lab = path_in(dir, "lab.gz");
	char *lab4 = path_in(dir, "lab4");
	write_images(img, N_IMG, N_IMG * D, 0, 0);
	write_labels(lab, N_IMG, 1);
	write_labels(lab4, N_IMG - 1, 0);

	struct dataset ds;
	struct vb_error err;
	vb_error_clear(&err);
	ck_assert_int_eq(dataset_from_idx(img, lab, "fix", &ds, &err), VB_OK);
	ck_assert_str_eq(ds.name, "fix");
	ck_assert_uint_eq(ds.n, N_IMG);
	ck_assert_uint_eq(ds.rows, ROWS);
	ck_assert_uint_eq(ds.cols, COLS);
	ck_assert_uint_eq(ds.d, D);
	ck_assert(ds.owns);
	uint8_t pixels[N_IMG * D], labels[N_IMG];
	fixture_payloads(pixels, labels);
	ck_assert_mem_eq(ds.pixels, pixels, sizeof pixels);
	ck_assert_mem_eq(ds.labels, labels, sizeof labels);
	dataset_free(&ds);
	ck_assert_ptr_null(ds.pixels);
	dataset_free(&ds);
	dataset_free(NULL);

	enum vb_status st = dataset_from_idx(img, lab4, "fix", &ds, &err);
	expect_error(st, &err, VB_ERR_DATA, img, "5 images");
	expect_error(st, &err, VB_ERR_DATA, lab4, "4 labels");
	ck_assert_ptr_null(ds.pixels);

	/* errors of either file pass through */
	vb_error_clear(&err);
	st = dataset_from_idx(img, img, "fix", &ds, &err);
	expect_error(st, &err, VB_ERR_DATA, img, "expected 0x00000801");
	free(img);
	free(lab);
	free(lab4);
	free(dir);
}
END_TEST

/* A small owned dataset of the fixture, built in memory. */
static void fixture_dataset(struct dataset *ds)
{
	memset(ds, 0, sizeof *ds);
	strcpy(ds->name, "fix");
	ds->n = N_IMG;
	ds->rows = ROWS;
	ds->cols = COLS;
	ds->d = D;
	ds->pixels = malloc(N_IMG * D);
	ds->labels = malloc(N_IMG);
	ck_assert_ptr_nonnull(ds->pixels);
	ck_assert_ptr_nonnull(ds->labels);
	fixture_payloads(ds->pixels, ds->labels);
	ds->pixels[0] = 255; /* the scale-255 test wants an exact 1 */
	ds->pixels[1] = 0;
	ds->owns = true;
}

START_TEST(test_dataset_subset)
{
	struct dataset ds, sub;
	struct vb_error err;
	fixture_dataset(&ds);
	vb_error_clear(&err);
	ck_assert_int_eq(dataset_subset(&ds, 1, 4, &sub, &err), VB_OK);
	ck_assert_uint_eq(sub.n, 3);
	ck_assert_uint_eq(sub.d, D);
	ck_assert_uint_eq(sub.rows, ROWS);
	ck_assert_uint_eq(sub.cols, COLS);
	ck_assert(!sub.owns);
	ck_assert_ptr_eq(sub.pixels, ds.pixels + D);
	ck_assert_ptr_eq(sub.labels, ds.labels + 1);
	ck_assert_str_eq(sub.name, "fix[1:4)");

	/* a view of a view, the whole range */
	struct dataset sub2;
	ck_assert_int_eq(dataset_subset(&sub, 0, 3, &sub2, &err), VB_OK);
	ck_assert_ptr_eq(sub2.pixels, ds.pixels + D);
	ck_assert_uint_eq(sub2.n, 3);
	dataset_free(&sub2); /* a view: frees nothing (valgrind checks) */
	dataset_free(&sub);

	enum vb_status st = dataset_subset(&ds, 2, 6, &sub, &err);
	expect_error(st, &err, VB_ERR_CONFIG, NULL, "[2, 6) with n = 5");
	ck_assert_ptr_null(sub.pixels);
	vb_error_clear(&err);
	st = dataset_subset(&ds, 3, 3, &sub, &err);
	expect_error(st, &err, VB_ERR_CONFIG, NULL, "[3, 3) with n = 5");
	vb_error_clear(&err);
	st = dataset_subset(&ds, 4, 2, &sub, &err);
	expect_error(st, &err, VB_ERR_CONFIG, NULL, "expected begin < end <= n");
	ck_assert_int_eq(dataset_subset(&ds, 0, 5, &sub, NULL), VB_OK);
	ck_assert_int_eq(dataset_subset(&ds, 0, 6, &sub, NULL), VB_ERR_CONFIG);
	dataset_free(&ds);
}
END_TEST

START_TEST(test_dataset_batch)
{
	struct dataset ds;
	fixture_dataset(&ds);
	size_t index[2] = {3, 0};
	vb_real out[2 * D];
	dataset_batch(&ds, index, 2, (vb_real)255, out);
	for (size_t b = 0; b < 2; b++) {
		for (size_t j = 0; j < D; j++) {
			uint8_t p = ds.pixels[index[b] * D + j];
			ck_assert(out[b * D + j] >= 0 && out[b * D + j] <= 1);
			/* one correctly rounded division, as ToTensor */
			ck_assert(out[b * D + j] == (vb_real)p / (vb_real)255);
		}
	}
	ck_assert(out[D + 0] == 1);  /* image 0, pixel 0 is 255 */
	ck_assert(out[D + 1] == 0);
	ck_assert(out[0] == (vb_real)fixture_pixel(3, 0) / (vb_real)255);

	dataset_batch(&ds, index, 2, (vb_real)1, out);
	for (size_t b = 0; b < 2; b++)
		for (size_t j = 0; j < D; j++)
			ck_assert(out[b * D + j] ==
				  (vb_real)ds.pixels[index[b] * D + j]);
	ck_assert(out[D] == 255);

	/* index NULL: the first n_batch images in order */
	vb_real all[N_IMG * D];
	dataset_batch(&ds, NULL, N_IMG, (vb_real)1, all);
	for (size_t k = 0; k < N_IMG * D; k++)
		ck_assert(all[k] == (vb_real)ds.pixels[k]);
	dataset_free(&ds);
}
END_TEST

START_TEST(test_dataset_synthetic)
{
	struct dataset a, b, c;
	struct vb_error err;
	vb_error_clear(&err);
	const size_t n = 400, rows = 28, cols = 28;
	ck_assert_int_eq(dataset_synthetic(n, rows, cols, 42, &a, &err), VB_OK);
	ck_assert_int_eq(dataset_synthetic(n, rows, cols, 42, &b, &err), VB_OK);
	ck_assert_int_eq(dataset_synthetic(n, rows, cols, 43, &c, &err), VB_OK);
	ck_assert_uint_eq(a.n, n);
	ck_assert_uint_eq(a.d, rows * cols);
	ck_assert(a.owns);
	ck_assert_mem_eq(a.pixels, b.pixels, n * rows * cols);
	ck_assert_mem_eq(a.labels, b.labels, n);
	ck_assert_msg(memcmp(a.pixels, c.pixels, n * rows * cols) != 0,
		      "different seeds gave the same pixels");
	ck_assert_msg(memcmp(a.labels, c.labels, n) != 0,
		      "different seeds gave the same labels");

	/* Every class appears, every image has ink and background. */
	size_t count[DATASET_SYNTHETIC_CLASSES] = {0};
	for (size_t i = 0; i < n; i++) {
		ck_assert_uint_lt(a.labels[i], DATASET_SYNTHETIC_CLASSES);
		count[a.labels[i]]++;
		unsigned mx = 0, n_zero = 0;
		for (size_t j = 0; j < a.d; j++) {
			uint8_t p = a.pixels[i * a.d + j];
			mx = p > mx ? p : mx;
			n_zero += p == 0;
		}
		ck_assert_uint_ge(mx, 150);
		ck_assert_uint_ge(n_zero, a.d / 2);
	}
	for (int k = 0; k < DATASET_SYNTHETIC_CLASSES; k++)
		ck_assert_uint_gt(count[k], 10);

	/* Learnable: nearest class mean (from the first half) labels the
	 * second half correctly; the patterns differ far more than the
	 * one-pixel shifts blur them. */
	static double mean[DATASET_SYNTHETIC_CLASSES][28 * 28];
	size_t cnt[DATASET_SYNTHETIC_CLASSES] = {0};
	memset(mean, 0, sizeof mean);
	for (size_t i = 0; i < n / 2; i++) {
		cnt[a.labels[i]]++;
		for (size_t j = 0; j < a.d; j++)
			mean[a.labels[i]][j] += a.pixels[i * a.d + j];
	}
	for (int k = 0; k < DATASET_SYNTHETIC_CLASSES; k++) {
		ck_assert_uint_gt(cnt[k], 0);
		for (size_t j = 0; j < a.d; j++)
			mean[k][j] /= (double)cnt[k];
	}
	size_t right = 0;
	for (size_t i = n / 2; i < n; i++) {
		int best = -1;
		double best_d = 0;
		for (int k = 0; k < DATASET_SYNTHETIC_CLASSES; k++) {
			double dist = 0;
			for (size_t j = 0; j < a.d; j++) {
				double e = a.pixels[i * a.d + j] - mean[k][j];
				dist += e * e;
			}
			if (best < 0 || dist < best_d) {
				best = k;
				best_d = dist;
			}
		}
		right += best == a.labels[i];
	}
	ck_assert_msg(right >= (n / 2) * 95 / 100,
		      "nearest mean got %zu of %zu", right, n / 2);

	/* Odd sizes work; bad sizes are config errors. */
	struct dataset s;
	ck_assert_int_eq(dataset_synthetic(3, 5, 9, 1, &s, &err), VB_OK);
	ck_assert_uint_eq(s.d, 45);
	dataset_free(&s);
	enum vb_status st = dataset_synthetic(0, 28, 28, 1, &s, &err);
	expect_error(st, &err, VB_ERR_CONFIG, NULL, "n = 0");
	vb_error_clear(&err);
	st = dataset_synthetic(1, 2, 28, 1, &s, &err);
	expect_error(st, &err, VB_ERR_CONFIG, NULL, "rows = 2");
	ck_assert_ptr_null(s.pixels);

	dataset_free(&a);
	dataset_free(&b);
	dataset_free(&c);
}
END_TEST

/* ---- MNIST file lookup ---------------------------------------------------- */

START_TEST(test_mnist_load)
{
	char *dir = fresh_dir("mnist_load");
	char *img = path_in(dir, "train-images-idx3-ubyte");
	char *img_gz = path_in(dir, "train-images-idx3-ubyte.gz");
	char *lab_gz = path_in(dir, "train-labels-idx1-ubyte.gz");
	char *t_img_gz = path_in(dir, "t10k-images-idx3-ubyte.gz");
	char *t_lab = path_in(dir, "t10k-labels-idx1-ubyte");
	write_images(img, N_IMG, N_IMG * D, 0, 0);
	/* a .gz next to the raw file with another count: raw must win */
	write_images(img_gz, N_IMG - 1, (N_IMG - 1) * D, 0, 1);
	write_labels(lab_gz, N_IMG, 1);

	struct dataset ds;
	struct vb_error err;
	vb_error_clear(&err);
	ck_assert_int_eq(mnist_load(dir, "train", &ds, &err), VB_OK);
	ck_assert_uint_eq(ds.n, N_IMG);
	ck_assert_uint_eq(ds.rows, ROWS);
	ck_assert_uint_eq(ds.cols, COLS);
	uint8_t pixels[N_IMG * D], labels[N_IMG];
	fixture_payloads(pixels, labels);
	ck_assert_mem_eq(ds.pixels, pixels, sizeof pixels);
	ck_assert_mem_eq(ds.labels, labels, sizeof labels);
	ck_assert_msg(strstr(ds.name, "/train") != NULL, "name %s", ds.name);
	dataset_free(&ds);

	/* t10k missing entirely: one line naming the folder, the names and
	 * the fetch script. */
	enum vb_status st = mnist_load(dir, "t10k", &ds, &err);
	expect_error(st, &err, VB_ERR_IO, dir, "t10k-images-idx3-ubyte.gz");
	expect_error(st, &err, VB_ERR_IO, dir, "t10k-labels-idx1-ubyte");
	expect_error(st, &err, VB_ERR_IO, dir, "scripts/fetch-mnist.sh");

	/* t10k as .gz images and raw labels. */
	write_images(t_img_gz, N_IMG, N_IMG * D, 0, 1);
	vb_error_clear(&err);
	st = mnist_load(dir, "t10k", &ds, &err);
	expect_error(st, &err, VB_ERR_IO, dir, "t10k-labels-idx1-ubyte.gz");
	write_labels(t_lab, N_IMG, 0);
	vb_error_clear(&err);
	ck_assert_int_eq(mnist_load(dir, "t10k", &ds, &err), VB_OK);
	ck_assert_mem_eq(ds.pixels, pixels, sizeof pixels);
	dataset_free(&ds);

	/* a label outside 0..9 */
	uint8_t bad_labels[N_IMG] = {0, 1, 2, 10, 4};
	uint32_t dims[1] = {N_IMG};
	size_t len;
	uint8_t *b = idx_bytes(magic_labels, 1, dims, bad_labels, N_IMG, &len);
	write_raw(t_lab, b, len);
	free(b);
	vb_error_clear(&err);
	st = mnist_load(dir, "t10k", &ds, &err);
	expect_error(st, &err, VB_ERR_DATA, t_lab, "label 10 at index 3");
	ck_assert_ptr_null(ds.pixels);

	vb_error_clear(&err);
	st = mnist_load(dir, "test", &ds, &err);
	expect_error(st, &err, VB_ERR_CONFIG, NULL, "split 'test'");

	vb_error_clear(&err);
	char *nodir = path_in(dir, "nowhere");
	st = mnist_load(nodir, "train", &ds, &err);
	expect_error(st, &err, VB_ERR_IO, nodir, "does not exist");
	free(nodir);
	free(img);
	free(img_gz);
	free(lab_gz);
	free(t_img_gz);
	free(t_lab);
	free(dir);
}
END_TEST

START_TEST(test_mnist_default_dir)
{
	ck_assert_int_eq(unsetenv("VAEBENCH_DATA"), 0);
	ck_assert_int_eq(unsetenv("VAEBENCH_FASHION_DATA"), 0);
	ck_assert_str_eq(mnist_default_dir("mnist"), "data");
	ck_assert_str_eq(mnist_default_dir("fashion-mnist"),
			 "/usr/share/datasets/fashion-mnist");
	ck_assert_int_eq(setenv("VAEBENCH_DATA", "", 1), 0);
	ck_assert_str_eq(mnist_default_dir("mnist"), "data");
	ck_assert_int_eq(setenv("VAEBENCH_DATA", "/x/mnist", 1), 0);
	ck_assert_int_eq(setenv("VAEBENCH_FASHION_DATA", "/y/fm", 1), 0);
	ck_assert_str_eq(mnist_default_dir("mnist"), "/x/mnist");
	ck_assert_str_eq(mnist_default_dir("fashion-mnist"), "/y/fm");
	ck_assert_ptr_null(mnist_default_dir("cifar"));
	ck_assert_ptr_null(mnist_default_dir(NULL));
	unsetenv("VAEBENCH_DATA");
	unsetenv("VAEBENCH_FASHION_DATA");
}
END_TEST

TU_MAIN_CASES("idx",
	TU_CASE("idx", 0, test_read_raw_and_gz, test_read_labels,
		test_truncated_payload, test_wrong_magic, test_wrong_type_byte,
		test_wrong_ndim, test_bad_dimension, test_trailing_bytes,
		test_corrupt_gzip, test_empty_and_missing),
	TU_CASE("dataset", 0, test_dataset_from_idx, test_dataset_subset,
		test_dataset_batch, test_dataset_synthetic),
	TU_CASE("mnist", 0, test_mnist_load, test_mnist_default_dir))
