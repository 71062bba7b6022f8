/* checkpoint: safetensors reader and the helpers the module shares (dtypes,
 * UTF-8, bounded messages). Owns the file layout on read (length prefix,
 * JSON header, data buffer) and every bounds check on untrusted files; the
 * writer is checkpoint_write.c, the header parser checkpoint_json.c.
 * Callers own the tensor buffers; this module only copies bytes. */
#include "checkpoint.h"
#include "checkpoint_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The data bytes are written and read as the host stores them; that is the
 * safetensors byte order only for little-endian hosts with IEEE-754 floats
 * (checked at run time and here). */
_Static_assert(sizeof(float) == 4 && FLT_MANT_DIG == 24, "IEEE-754 float");
_Static_assert(sizeof(double) == 8 && DBL_MANT_DIG == 53, "IEEE-754 double");
_Static_assert(sizeof(size_t) >= 8, "offsets need a 64-bit size_t");

static const char *const ck_dtype_names[] = {"F32", "F64", "I64",
					     "I32", "U64", "U8"};
static const size_t ck_dtype_sizes[] = {4, 8, 8, 4, 8, 1};
#define CK_N_DTYPES (sizeof ck_dtype_sizes / sizeof ck_dtype_sizes[0])

const char *checkpoint_dtype_name(enum checkpoint_dtype dtype)
{
	if ((unsigned)dtype >= CK_N_DTYPES)
		return "?";
	return ck_dtype_names[dtype];
}

size_t checkpoint_dtype_size(enum checkpoint_dtype dtype)
{
	if ((unsigned)dtype >= CK_N_DTYPES)
		return 0;
	return ck_dtype_sizes[dtype];
}

int checkpoint_impl_dtype_parse(const char *s, enum checkpoint_dtype *out)
{
	for (size_t i = 0; i < CK_N_DTYPES; i++) {
		if (strcmp(s, ck_dtype_names[i]) == 0) {
			*out = (enum checkpoint_dtype)i;
			return 0;
		}
	}
	return -1;
}

int checkpoint_impl_host_little_endian(void)
{
	const uint32_t one = 1;
	unsigned char b;
	memcpy(&b, &one, 1);
	return b == 1;
}

/* Grows an array p of cap elements of elem bytes to hold need; returns the
 * (possibly moved) array, NULL on failure (p is then untouched). */
void *checkpoint_impl_grow(void *p, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap ? *cap : 8, bytes;
	void *q;
	if (need <= *cap)
		return p;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return NULL;
		ncap *= 2;
	}
	if (!vb_mul_size(ncap, elem, &bytes))
		return NULL;
	q = realloc(p, bytes);
	if (!q)
		return NULL;
	*cap = ncap;
	return q;
}

char *checkpoint_impl_strdup(const char *s)
{
	return strdup(s); /* POSIX */
}

void checkpoint_impl_meta_free(struct ck_meta *m, size_t n)
{
	for (size_t i = 0; m && i < n; i++) {
		free(m[i].key);
		free(m[i].value);
	}
	free(m);
}

/* Length of the valid UTF-8 sequence starting s[0] (n >= 1 bytes
 * available), 0 if invalid (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF). */
size_t checkpoint_impl_utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo, hi;
	size_t len;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4;
	else
		return 0;
	/* the second byte's range: no overlongs (E0, F0), no surrogates
	 * (ED), nothing past U+10FFFF (F4) */
	lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
	hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	return len;
}

int checkpoint_impl_utf8_valid(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str), i = 0;
	while (i < n) {
		size_t len = checkpoint_impl_utf8_seq(s + i, n - i);
		if (!len)
			return 0;
		i += len;
	}
	return 1;
}

/* A printable one-line, bounded form of an untrusted string for messages:
 * bytes outside printable ASCII become \xNN, long strings end in "...". */
const char *checkpoint_impl_show(const char *s, char *buf, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		size_t need = (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : 4;
		if (o + need + 4 > cap) {
			memcpy(buf + o, "...", 4);
			return buf;
		}
		if (need == 1) {
			buf[o++] = (char)c;
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	buf[o] = '\0';
	return buf;
}

/* "(2, 3)"; "()" for 0-d. */
static const char *ck_shape_str(int ndim, const size_t *shape, char *buf,
				size_t cap)
{
	size_t o = 0;
	buf[0] = '\0';
	o += (size_t)snprintf(buf, cap, "(");
	for (int d = 0; d < ndim && o < cap; d++)
		o += (size_t)snprintf(buf + o, cap - o, d ? ", %zu" : "%zu",
				      shape[d]);
	if (o < cap)
		snprintf(buf + o, cap - o, ")");
	return buf;
}

/* Element count of a shape; 0 and failure on overflow. */
int checkpoint_impl_shape_count(int ndim, const size_t *shape, size_t *out)
{
	size_t n = 1;
	for (int d = 0; d < ndim; d++)
		if (!vb_mul_size(n, shape[d], &n))
			return 0;
	*out = n;
	return 1;
}

/* ---- reader ---------------------------------------------------------- */

static enum vb_status ck_open_fail(struct vb_error *err, enum vb_status st,
				   const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static enum vb_status ck_open_fail(struct vb_error *err, enum vb_status st,
				   const char *path, const char *fmt, ...)
{
	char what[VB_ERROR_LEN];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return vb_fail(err, st, "checkpoint: %s: %s", path, what);
}

/* The whole file into a fresh buffer *buf of *len bytes. */
static enum vb_status ck_read_file(const char *path, unsigned char **buf,
				   size_t *len, struct vb_error *err)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	size_t cap = 4096, n = 0;
	unsigned char *p;
	*buf = NULL;
	*len = 0;
	if (!f)
		return ck_open_fail(err, VB_ERR_IO, path, "cannot open: %s",
				    strerror(errno));
	/* Size hint only: the loop below reads to end of file either way. */
	if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_size > 0 && (uintmax_t)st.st_size < SIZE_MAX / 2)
		cap = (size_t)st.st_size + 1;
	p = malloc(cap);
	if (!p) {
		fclose(f);
		return ck_open_fail(err, VB_ERR_NOMEM, path,
				    "cannot allocate %zu bytes", cap);
	}
	for (;;) {
		size_t want, got;
		if (n == cap) {
			unsigned char *q =
				checkpoint_impl_grow(p, &cap, cap + 1, 1);
			if (!q) {
				free(p);
				fclose(f);
				return ck_open_fail(err, VB_ERR_NOMEM, path,
						    "file too large to load");
			}
			p = q;
		}
		want = cap - n;
		got = fread(p + n, 1, want, f);
		n += got;
		if (got < want) {
			if (ferror(f)) {
				int e = errno;
				free(p);
				fclose(f);
				return ck_open_fail(err, VB_ERR_IO, path,
						    "read failed: %s",
						    strerror(e));
			}
			break;
		}
	}
	fclose(f);
	*buf = p;
	*len = n;
	return VB_OK;
}

static int ck_cmp_offset(const void *a, const void *b)
{
	const struct ck_tensor *x = a, *y = b;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int ck_cmp_name(const void *a, const void *b)
{
	const struct ck_tensor *x = *(const struct ck_tensor *const *)a;
	const struct ck_tensor *y = *(const struct ck_tensor *const *)b;
	return strcmp(x->name, y->name);
}

static int ck_cmp_meta(const void *a, const void *b)
{
	const struct ck_meta *x = a, *y = b;
	return strcmp(x->key, y->key);
}

/* Checks names, sizes and offsets against a data buffer of data_len bytes
 * and sorts the tensors by offset and the metadata by key. */
static enum vb_status ck_validate(struct checkpoint *c, size_t data_len,
				  struct vb_error *err)
{
	char nb[CK_SHOW_LEN], pb[CK_SHOW_LEN], sb[192];
	size_t covered = 0;
	if (c->n_t)
		qsort(c->t, c->n_t, sizeof *c->t, ck_cmp_offset);
	if (c->n_m)
		qsort(c->m, c->n_m, sizeof *c->m, ck_cmp_meta);
	c->by_name = malloc((c->n_t ? c->n_t : 1) * sizeof *c->by_name);
	if (!c->by_name)
		return ck_open_fail(err, VB_ERR_NOMEM, c->path,
				    "cannot allocate the name index");
	for (size_t i = 0; i < c->n_t; i++)
		c->by_name[i] = &c->t[i];
	if (c->n_t)
		qsort(c->by_name, c->n_t, sizeof *c->by_name, ck_cmp_name);
	for (size_t i = 1; i < c->n_t; i++)
		if (strcmp(c->by_name[i - 1]->name, c->by_name[i]->name) == 0)
			return ck_open_fail(
				err, VB_ERR_DATA, c->path,
				"duplicate tensor name '%s'",
				checkpoint_impl_show(c->by_name[i]->name, nb,
						     sizeof nb));
	for (size_t i = 1; i < c->n_m; i++)
		if (strcmp(c->m[i - 1].key, c->m[i].key) == 0)
			return ck_open_fail(err, VB_ERR_DATA, c->path,
					    "duplicate metadata key '%s'",
					    checkpoint_impl_show(c->m[i].key, nb,
						    sizeof nb));
	for (size_t i = 0; i < c->n_t; i++) {
		const struct ck_tensor *t = &c->t[i];
		size_t count, nbytes;
		checkpoint_impl_show(t->name, nb, sizeof nb);
		if (t->end < t->begin)
			return ck_open_fail(err, VB_ERR_DATA, c->path,
					    "tensor '%s': data_offsets [%zu, "
					    "%zu] are decreasing",
					    nb, t->begin, t->end);
		if (t->end > data_len)
			return ck_open_fail(err, VB_ERR_DATA, c->path,
					    "tensor '%s': data_offsets [%zu, "
					    "%zu] outside the data buffer of "
					    "%zu bytes",
					    nb, t->begin, t->end, data_len);
		ck_shape_str(t->ndim, t->shape, sb, sizeof sb);
		if (!checkpoint_impl_shape_count(t->ndim, t->shape, &count) ||
		    !vb_mul_size(count, ck_dtype_sizes[t->dtype], &nbytes))
			return ck_open_fail(err, VB_ERR_DATA, c->path,
					    "tensor '%s': shape %s overflows",
					    nb, sb);
		if (nbytes != t->end - t->begin)
			return ck_open_fail(err, VB_ERR_DATA, c->path,
					    "tensor '%s': shape %s of %s "
					    "needs %zu bytes, data_offsets "
					    "[%zu, %zu] hold %zu",
					    nb, sb, ck_dtype_names[t->dtype],
					    nbytes, t->begin, t->end,
					    t->end - t->begin);
	}
	for (size_t i = 0; i < c->n_t; i++) {
		const struct ck_tensor *t = &c->t[i];
		checkpoint_impl_show(t->name, nb, sizeof nb);
		if (t->begin > covered)
			return ck_open_fail(err, VB_ERR_DATA, c->path,
					    "gap in the data buffer: bytes "
					    "[%zu, %zu) belong to no tensor "
					    "(next is '%s')",
					    covered, t->begin, nb);
		if (t->begin < covered)
			return ck_open_fail(
				err, VB_ERR_DATA, c->path,
				"tensor '%s': data_offsets [%zu, %zu] overlap "
				"tensor '%s' ending at %zu",
				nb, t->begin, t->end,
				checkpoint_impl_show(c->t[i - 1].name, pb,
						     sizeof pb),
				covered);
		covered = t->end;
	}
	if (covered != data_len)
		return ck_open_fail(err, VB_ERR_DATA, c->path,
				    "data buffer has %zu bytes, the tensors "
				    "cover %zu",
				    data_len, covered);
	return VB_OK;
}

enum vb_status checkpoint_open(const char *path, struct checkpoint **out,
			       struct vb_error *err)
{
	struct checkpoint *c;
	struct ck_js j;
	enum vb_status st;
	uint64_t hlen = 0;
	const unsigned char *data;
	size_t data_len;
	*out = NULL;
	if (!checkpoint_impl_host_little_endian())
		return ck_open_fail(err, VB_ERR_INTERNAL, path,
				    "big-endian host not supported");
	c = calloc(1, sizeof *c);
	if (!c)
		return ck_open_fail(err, VB_ERR_NOMEM, path,
				    "cannot allocate");
	c->path = checkpoint_impl_strdup(path);
	if (!c->path) {
		free(c);
		return ck_open_fail(err, VB_ERR_NOMEM, path,
				    "cannot allocate");
	}
	st = ck_read_file(path, &c->file, &c->file_len, err);
	if (st != VB_OK)
		goto fail;
	if (c->file_len == 0) {
		st = ck_open_fail(err, VB_ERR_DATA, path, "empty file");
		goto fail;
	}
	if (c->file_len < 8) {
		st = ck_open_fail(err, VB_ERR_DATA, path,
				  "truncated: %zu bytes, shorter than the "
				  "8-byte header length",
				  c->file_len);
		goto fail;
	}
	for (int i = 7; i >= 0; i--)
		hlen = (hlen << 8) | c->file[i];
	if (hlen > CHECKPOINT_MAX_HEADER) {
		st = ck_open_fail(err, VB_ERR_DATA, path,
				  "header length %llu exceeds the limit of "
				  "%u bytes",
				  (unsigned long long)hlen,
				  CHECKPOINT_MAX_HEADER);
		goto fail;
	}
	if (hlen > c->file_len - 8) {
		st = ck_open_fail(err, VB_ERR_DATA, path,
				  "header length %llu exceeds the %zu bytes "
				  "after the length (truncated file?)",
				  (unsigned long long)hlen, c->file_len - 8);
		goto fail;
	}
	memset(&j, 0, sizeof j);
	j.s = c->file + 8;
	j.n = (size_t)hlen;
	if (checkpoint_impl_js_header(&j, c)) {
		st = ck_open_fail(err, j.nomem ? VB_ERR_NOMEM : VB_ERR_DATA,
				  path, "%s", j.msg);
		goto fail;
	}
	data = c->file + 8 + j.n;
	data_len = c->file_len - 8 - j.n;
	st = ck_validate(c, data_len, err);
	if (st != VB_OK)
		goto fail;
	for (size_t i = 0; i < c->n_t; i++) {
		struct ck_tensor *t = &c->t[i];
		size_t nbytes = t->end - t->begin;
		const unsigned char *p = data + t->begin;
		if (nbytes == 0) {
			t->data = c->file; /* malloc'd: aligned for all */
		} else if ((uintptr_t)p % ck_dtype_sizes[t->dtype] == 0) {
			t->data = p;
		} else {
			t->copy = malloc(nbytes);
			if (!t->copy) {
				st = ck_open_fail(err, VB_ERR_NOMEM, path,
						  "cannot allocate %zu bytes",
						  nbytes);
				goto fail;
			}
			memcpy(t->copy, p, nbytes);
			t->data = t->copy;
		}
	}
	*out = c;
	return VB_OK;
fail:
	checkpoint_close(c);
	return st;
}

void checkpoint_close(struct checkpoint *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_t; i++) {
		free(c->t[i].name);
		free(c->t[i].copy);
	}
	checkpoint_impl_meta_free(c->m, c->n_m);
	free(c->t);
	free(c->by_name);
	free(c->file);
	free(c->path);
	free(c);
}

size_t checkpoint_count(const struct checkpoint *c)
{
	return c->n_t;
}

const char *checkpoint_name(const struct checkpoint *c, size_t i)
{
	return i < c->n_t ? c->t[i].name : NULL;
}

static const struct ck_tensor *ck_find(const struct checkpoint *c,
				       const char *name)
{
	size_t lo = 0, hi = c->n_t;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(name, c->by_name[mid]->name);
		if (r == 0)
			return c->by_name[mid];
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static enum vb_status ck_missing(const struct checkpoint *c, const char *name,
				 struct vb_error *err)
{
	char nb[CK_SHOW_LEN];
	return ck_open_fail(err, VB_ERR_DATA, c->path, "no tensor '%s'",
			    checkpoint_impl_show(name, nb, sizeof nb));
}

enum vb_status checkpoint_info(const struct checkpoint *c, const char *name,
			       enum checkpoint_dtype *dtype, int *ndim,
			       size_t shape[CHECKPOINT_MAX_DIM],
			       struct vb_error *err)
{
	const struct ck_tensor *t = ck_find(c, name);
	if (!t)
		return ck_missing(c, name, err);
	if (dtype)
		*dtype = t->dtype;
	if (ndim)
		*ndim = t->ndim;
	if (shape)
		for (int d = 0; d < CHECKPOINT_MAX_DIM; d++)
			shape[d] = d < t->ndim ? t->shape[d] : 1;
	return VB_OK;
}

const void *checkpoint_data(const struct checkpoint *c, const char *name)
{
	const struct ck_tensor *t = ck_find(c, name);
	return t ? t->data : NULL;
}

enum vb_status checkpoint_read_real(const struct checkpoint *c,
				    const char *name, int ndim,
				    const size_t *shape, vb_real *dst,
				    struct vb_error *err)
{
	const struct ck_tensor *t = ck_find(c, name);
	char nb[CK_SHOW_LEN], fb[192], eb[192];
	int same;
	size_t count;
	if (!t)
		return ck_missing(c, name, err);
	checkpoint_impl_show(name, nb, sizeof nb);
	if (t->dtype != CHECKPOINT_F32 && t->dtype != CHECKPOINT_F64)
		return ck_open_fail(err, VB_ERR_DATA, c->path,
				    "tensor '%s': dtype %s, expected F32 or "
				    "F64",
				    nb, ck_dtype_names[t->dtype]);
	same = ndim == t->ndim;
	for (int d = 0; same && d < ndim; d++)
		same = shape[d] == t->shape[d];
	if (!same) {
		int en = ndim < 0 ? 0
			 : ndim > CHECKPOINT_MAX_DIM ? CHECKPOINT_MAX_DIM
						     : ndim;
		return ck_open_fail(err, VB_ERR_DATA, c->path,
				    "tensor '%s': shape %s, expected %s", nb,
				    ck_shape_str(t->ndim, t->shape, fb,
						 sizeof fb),
				    ck_shape_str(en, shape, eb, sizeof eb));
	}
	count = (t->end - t->begin) / ck_dtype_sizes[t->dtype];
	if (t->dtype == CHECKPOINT_F32) {
		const float *src = (const float *)(const void *)t->data;
		for (size_t i = 0; i < count; i++)
			dst[i] = (vb_real)src[i];
	} else {
		const double *src = (const double *)(const void *)t->data;
		for (size_t i = 0; i < count; i++)
			dst[i] = (vb_real)src[i];
	}
	return VB_OK;
}

enum vb_status checkpoint_read_raw(const struct checkpoint *c,
				   const char *name,
				   enum checkpoint_dtype dtype, size_t n_elems,
				   void *dst, struct vb_error *err)
{
	const struct ck_tensor *t = ck_find(c, name);
	char nb[CK_SHOW_LEN];
	size_t count;
	if (!t)
		return ck_missing(c, name, err);
	checkpoint_impl_show(name, nb, sizeof nb);
	if (t->dtype != dtype)
		return ck_open_fail(err, VB_ERR_DATA, c->path,
				    "tensor '%s': dtype %s, expected %s", nb,
				    ck_dtype_names[t->dtype],
				    checkpoint_dtype_name(dtype));
	count = (t->end - t->begin) / ck_dtype_sizes[t->dtype];
	if (count != n_elems)
		return ck_open_fail(err, VB_ERR_DATA, c->path,
				    "tensor '%s': %zu elements, expected %zu",
				    nb, count, n_elems);
	if (count)
		memcpy(dst, t->data, t->end - t->begin);
	return VB_OK;
}

enum vb_status checkpoint_read_i64(const struct checkpoint *c,
				   const char *name, int64_t lo, int64_t hi,
				   int64_t *out, struct vb_error *err)
{
	int64_t v;
	char nb[CK_SHOW_LEN];
	enum vb_status st = checkpoint_read_raw(c, name, CHECKPOINT_I64, 1,
						&v, err);
	if (st != VB_OK)
		return st;
	if (v < lo || v > hi)
		return ck_open_fail(err, VB_ERR_DATA, c->path,
				    "tensor '%s' = %lld, expected %lld..%lld",
				    checkpoint_impl_show(name, nb, sizeof nb),
				    (long long)v,
				    (long long)lo, (long long)hi);
	*out = v;
	return VB_OK;
}

enum vb_status checkpoint_check_i64(const struct checkpoint *c,
				    const char *name, const int64_t *v,
				    size_t n, int64_t lo, int64_t hi,
				    struct vb_error *err)
{
	char nb[CK_SHOW_LEN];
	for (size_t i = 0; i < n; i++)
		if (v[i] < lo || v[i] > hi)
			return ck_open_fail(err, VB_ERR_DATA, c->path,
					    "tensor '%s'[%zu] = %lld, expected "
					    "%lld..%lld",
					    checkpoint_impl_show(name, nb,
								 sizeof nb),
					    i,
					    (long long)v[i], (long long)lo,
					    (long long)hi);
	return VB_OK;
}

const char *checkpoint_meta(const struct checkpoint *c, const char *key)
{
	size_t lo = 0, hi = c->n_m;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(key, c->m[mid].key);
		if (r == 0)
			return c->m[mid].value;
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}
