/* idx: the IDX reader, raw or gzip through zlib (the only file in the
 * project that uses zlib). Checks the header, every dimension, the exact
 * payload length and zlib's own error state, so a short, padded or corrupt
 * file is an error naming the file, never a silently shorter dataset. */
#include "idx.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

/* One gzread call moves at most this many bytes (gzread counts in int). */
#define IDX_READ_CHUNK ((size_t)1 << 26)
/* The payload buffer starts at most this big and doubles as data arrives,
 * so a corrupt header claiming terabytes costs no more than the data. */
#define IDX_FIRST_ALLOC ((size_t)1 << 24)
/* zlib's input buffer; MNIST's gzip files are a few MB. */
#define IDX_GZ_BUFFER (1u << 17)

struct idx_reader {
	const char *path;
	gzFile gz;
	bool is_gz;
	int zerr;         /* zlib error code after a failed read */
	const char *zmsg; /* zlib's message (path prefix removed) */
};

/* Reads up to n bytes, stopping early only at the end of the input.
 * Returns 0 with *got < n at a clean end, -1 on a read or zlib error
 * (r->zerr, r->zmsg set; *got holds what arrived before it). */
static int reader_read(struct idx_reader *r, uint8_t *buf, size_t n,
		       size_t *got)
{
	*got = 0;
	while (*got < n) {
		size_t want = n - *got;
		if (want > IDX_READ_CHUNK)
			want = IDX_READ_CHUNK;
		int k = gzread(r->gz, buf + *got, (unsigned)want);
		if (k > 0)
			*got += (size_t)k;
		if (k < 0 || (size_t)k < want) {
			/* gzread returns short only at the end of input or on
			 * an error; a gzip stream cut mid-way leaves
			 * Z_BUF_ERROR, corrupt data Z_DATA_ERROR. */
			const char *msg = gzerror(r->gz, &r->zerr);
			if (k >= 0 && r->zerr == Z_OK)
				return 0;
			if (r->zerr == Z_OK)
				r->zerr = Z_ERRNO;
			size_t plen = strlen(r->path);
			if (msg && strncmp(msg, r->path, plen) == 0 &&
			    msg[plen] == ':' && msg[plen + 1] == ' ')
				msg += plen + 2;
			r->zmsg = msg ? msg : "unknown error";
			return -1;
		}
	}
	return 0;
}

/* The error for a failed reader_read in the given part of the file. */
static enum vb_status fail_read(const struct idx_reader *r, const char *part,
				size_t got, size_t want, struct vb_error *err)
{
	if (r->zerr == Z_ERRNO)
		return vb_fail(err, VB_ERR_IO,
			       "idx: %s: read error in %s after %zu of %zu bytes: %s",
			       r->path, part, got, want, r->zmsg);
	if (r->zerr == Z_MEM_ERROR)
		return vb_fail(err, VB_ERR_NOMEM,
			       "idx: %s: zlib out of memory in %s", r->path,
			       part);
	if (r->zerr == Z_BUF_ERROR)
		return vb_fail(err, VB_ERR_DATA,
			       "idx: %s: gzip stream truncated: it ends mid-stream in %s after %zu of %zu bytes",
			       r->path, part, got, want);
	return vb_fail(err, VB_ERR_DATA,
		       "idx: %s: corrupt gzip data in %s after %zu of %zu bytes (zlib: %s)",
		       r->path, part, got, want, r->zmsg);
}

static const char *idx_type_name(unsigned type)
{
	switch (type) {
	case 0x08: return "ubyte";
	case 0x09: return "signed byte";
	case 0x0b: return "short";
	case 0x0c: return "int";
	case 0x0d: return "float";
	case 0x0e: return "double";
	}
	return "unknown type";
}

/* What the payload holds, for messages. */
static const char *payload_name(int ndim)
{
	return ndim == 3 ? "pixel data" : ndim == 1 ? "label data" : "data";
}

static uint32_t be32(const uint8_t *b)
{
	return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) |
	       ((uint32_t)b[2] << 8) | (uint32_t)b[3];
}

/* Opens path, telling gzip from raw by the first two bytes (1f 8b).
 * Returns VB_OK with r->gz open, or an error. An empty file is reported
 * here. */
static enum vb_status reader_open(struct idx_reader *r, const char *path,
				  struct vb_error *err)
{
	memset(r, 0, sizeof *r);
	r->path = path;
	FILE *f = fopen(path, "rb");
	if (!f)
		return vb_fail(err, VB_ERR_IO, "idx: %s: cannot open: %s",
			       path, strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(f);
		return vb_fail(err, VB_ERR_IO,
			       "idx: %s: is a folder, expected an IDX file",
			       path);
	}
	uint8_t magic[2];
	size_t got = fread(magic, 1, sizeof magic, f);
	if (got < sizeof magic && ferror(f)) {
		int e = errno;
		fclose(f);
		return vb_fail(err, VB_ERR_IO, "idx: %s: read error: %s",
			       path, strerror(e));
	}
	fclose(f);
	if (got == 0)
		return vb_fail(err, VB_ERR_DATA,
			       "idx: %s: empty file, expected an IDX header",
			       path);
	r->is_gz = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
	r->gz = gzopen(path, "rb");
	if (!r->gz)
		return vb_fail(err, errno == ENOMEM ? VB_ERR_NOMEM : VB_ERR_IO,
			       "idx: %s: cannot open: %s", path,
			       errno ? strerror(errno) : "zlib gzopen failed");
	if (r->is_gz)
		gzbuffer(r->gz, IDX_GZ_BUFFER);
	return VB_OK;
}

/* Reads and checks the magic and dimensions into out (data still NULL). */
static enum vb_status read_header(struct idx_reader *r, int expect_ndim,
				  struct idx_array *out, struct vb_error *err)
{
	const char *path = r->path;
	const char *form = r->is_gz ? " (after gzip decompression)" : "";
	uint8_t head[4 + 4 * 3];
	size_t got;
	if (reader_read(r, head, 4, &got) != 0)
		return fail_read(r, "the IDX magic", got, 4, err);
	if (got == 0)
		return vb_fail(err, VB_ERR_DATA,
			       "idx: %s: empty file%s, expected an IDX header",
			       path, form);
	if (got < 4)
		return vb_fail(err, VB_ERR_DATA,
			       "idx: %s: truncated header: expected 4 bytes of IDX magic, got %zu",
			       path, got);
	unsigned long magic = be32(head);
	unsigned long want = 0x0800ul | (unsigned long)expect_ndim;
	if (head[0] != 0 || head[1] != 0)
		return vb_fail(err, VB_ERR_DATA,
			       "idx: %s: magic 0x%08lx, expected 0x%08lx (ubyte, %d dims): not an IDX file",
			       path, magic, want, expect_ndim);
	if (head[2] != 0x08)
		return vb_fail(err, VB_ERR_DATA,
			       "idx: %s: magic 0x%08lx has data type 0x%02x (%s), expected 0x08 (ubyte)",
			       path, magic, head[2], idx_type_name(head[2]));
	if (head[3] != expect_ndim)
		return vb_fail(err, VB_ERR_DATA,
			       "idx: %s: magic 0x%08lx (%d dims), expected 0x%08lx (ubyte, %d dims)",
			       path, magic, head[3], want, expect_ndim);

	size_t n_dim_bytes = 4 * (size_t)expect_ndim;
	if (reader_read(r, head + 4, n_dim_bytes, &got) != 0)
		return fail_read(r, "the IDX dimensions", got, n_dim_bytes,
				 err);
	if (got < n_dim_bytes)
		return vb_fail(err, VB_ERR_DATA,
			       "idx: %s: truncated header: expected %zu bytes of dimensions, got %zu",
			       path, n_dim_bytes, got);
	out->ndim = expect_ndim;
	size_t item = 1;
	for (int i = 0; i < 3; i++)
		out->dims[i] = 1;
	for (int i = 0; i < expect_ndim; i++) {
		uint32_t v = be32(head + 4 + 4 * i);
		if (v == 0 || (size_t)v >= IDX_MAX_DIM)
			return vb_fail(err, VB_ERR_DATA,
				       "idx: %s: dimension %d of %d is %lu, expected 1..%zu",
				       path, i + 1, expect_ndim,
				       (unsigned long)v, IDX_MAX_DIM - 1);
		out->dims[i] = v;
		if (i > 0 && !vb_mul_size(item, v, &item))
			return vb_fail(err, VB_ERR_DATA,
				       "idx: %s: dimensions %zu x %zu x %zu overflow size_t",
				       path, out->dims[0], out->dims[1],
				       (size_t)v);
	}
	size_t total;
	if (!vb_mul_size(out->dims[0], item, &total))
		return vb_fail(err, VB_ERR_DATA,
			       "idx: %s: dimensions %zu x %zu x %zu overflow size_t",
			       path, out->dims[0], out->dims[1], out->dims[2]);
	out->n_items = out->dims[0];
	out->item_size = item;
	return VB_OK;
}

/* Reads exactly n_items * item_size payload bytes into a new out->data,
 * then checks that nothing follows. */
static enum vb_status read_payload(struct idx_reader *r,
				   struct idx_array *out, struct vb_error *err)
{
	const char *path = r->path;
	const char *what = payload_name(out->ndim);
	size_t total = out->n_items * out->item_size; /* checked in header */
	size_t cap = total < IDX_FIRST_ALLOC ? total : IDX_FIRST_ALLOC;
	size_t have = 0;
	uint8_t *buf = malloc(cap);
	if (!buf)
		return vb_fail(err, VB_ERR_NOMEM,
			       "idx: %s: cannot allocate %zu bytes of %s",
			       path, cap, what);
	for (;;) {
		size_t got;
		int rc = reader_read(r, buf + have, cap - have, &got);
		have += got;
		if (rc != 0) {
			free(buf);
			return fail_read(r, what, have, total, err);
		}
		if (have < cap) {
			free(buf);
			return vb_fail(err, VB_ERR_DATA,
				       "idx: %s: truncated: expected %zu bytes of %s, got %zu",
				       path, total, what, have);
		}
		if (have == total)
			break;
		size_t ncap = cap > total / 2 ? total : cap * 2;
		uint8_t *nb = realloc(buf, ncap);
		if (!nb) {
			free(buf);
			return vb_fail(err, VB_ERR_NOMEM,
				       "idx: %s: cannot allocate %zu bytes of %s",
				       path, ncap, what);
		}
		buf = nb;
		cap = ncap;
	}

	/* Anything after the payload means the header and the file disagree. */
	uint8_t extra[4096];
	size_t n_extra = 0;
	for (;;) {
		size_t got;
		int rc = reader_read(r, extra, sizeof extra, &got);
		n_extra += got;
		if (rc != 0) {
			free(buf);
			if (r->zerr == Z_BUF_ERROR)
				return vb_fail(err, VB_ERR_DATA,
					       "idx: %s: gzip stream truncated: all %zu bytes of %s arrived but the stream ends before its gzip trailer",
					       path, total, what);
			return fail_read(r, "the end of the stream", total + n_extra,
					 total, err);
		}
		if (got < sizeof extra)
			break;
	}
	if (n_extra > 0) {
		free(buf);
		return vb_fail(err, VB_ERR_DATA,
			       "idx: %s: %zu trailing bytes after the expected %zu bytes of %s",
			       path, n_extra, total, what);
	}
	out->data = buf;
	return VB_OK;
}

enum vb_status idx_read(const char *path, int expect_ndim,
			struct idx_array *out, struct vb_error *err)
{
	memset(out, 0, sizeof *out);
	if (expect_ndim < 1 || expect_ndim > 3)
		return vb_fail(err, VB_ERR_INTERNAL,
			       "idx: %s: expected ndim %d, supported 1..3",
			       path, expect_ndim);
	struct idx_reader r;
	enum vb_status st = reader_open(&r, path, err);
	if (st != VB_OK)
		return st;
	st = read_header(&r, expect_ndim, out, err);
	if (st == VB_OK)
		st = read_payload(&r, out, err);
	gzclose_r(r.gz);
	if (st != VB_OK)
		idx_free(out);
	return st;
}

void idx_free(struct idx_array *a)
{
	if (!a)
		return;
	free(a->data);
	memset(a, 0, sizeof *a);
}
