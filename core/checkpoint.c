/* checkpoint: safetensors writer and reader. Owns the file layout (length
 * prefix, JSON header, data buffer), JSON escaping, a strict schema-directed
 * JSON parser for the header and every bounds check on untrusted files.
 * Callers own the tensor buffers; this module only copies bytes. */
#include "checkpoint.h"

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

#define CK_METADATA_KEY "__metadata__"
#define CK_SHOW_LEN 64 /* bytes of an untrusted string quoted in a message */

struct ck_meta {
	char *key;
	char *value;
};

/* One tensor of a writer. */
struct ck_entry {
	char *name;
	enum checkpoint_dtype dtype;
	int ndim;
	size_t shape[CHECKPOINT_MAX_DIM];
	const void *data; /* borrowed */
	size_t nbytes;
	size_t seq; /* add order, tie-break of the data order */
};

struct checkpoint_writer {
	struct ck_entry *t;
	size_t n_t, cap_t;
	struct ck_meta *m;
	size_t n_m, cap_m;
};

/* One tensor of an opened file. */
struct ck_tensor {
	char *name;
	enum checkpoint_dtype dtype;
	int ndim;
	size_t shape[CHECKPOINT_MAX_DIM];
	size_t begin, end; /* data_offsets, relative to the data buffer */
	size_t seq;        /* position in the header */
	const unsigned char *data; /* aligned bytes: in file or copy */
	unsigned char *copy;       /* owned copy of a misaligned tensor */
};

struct checkpoint {
	char *path;
	unsigned char *file; /* the whole file */
	size_t file_len;
	struct ck_tensor *t; /* sorted by data offset after open */
	size_t n_t, cap_t;
	struct ck_tensor **by_name; /* sorted by name */
	struct ck_meta *m;          /* sorted by key after open */
	size_t n_m, cap_m;
	int seen_meta;
};

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

static int ck_dtype_parse(const char *s, enum checkpoint_dtype *out)
{
	for (size_t i = 0; i < CK_N_DTYPES; i++) {
		if (strcmp(s, ck_dtype_names[i]) == 0) {
			*out = (enum checkpoint_dtype)i;
			return 0;
		}
	}
	return -1;
}

static int ck_host_little_endian(void)
{
	const uint32_t one = 1;
	unsigned char b;
	memcpy(&b, &one, 1);
	return b == 1;
}

/* Grows an array p of cap elements of elem bytes to hold need; returns the
 * (possibly moved) array, NULL on failure (p is then untouched). */
static void *ck_grow(void *p, size_t *cap, size_t need, size_t elem)
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

static char *ck_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

/* Length of the valid UTF-8 sequence starting s[0] (n >= 1 bytes
 * available), 0 if invalid (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF). */
static size_t ck_utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xBF;
	size_t len;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0;
		if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;
		if (c == 0xF4)
			hi = 0x8F;
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	return len;
}

static int ck_utf8_valid(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str), i = 0;
	while (i < n) {
		size_t len = ck_utf8_seq(s + i, n - i);
		if (!len)
			return 0;
		i += len;
	}
	return 1;
}

/* A printable one-line, bounded form of an untrusted string for messages:
 * bytes outside printable ASCII become \xNN, long strings end in "...". */
static const char *ck_show(const char *s, char *buf, size_t cap)
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
static int ck_shape_count(int ndim, const size_t *shape, size_t *out)
{
	size_t n = 1;
	for (int d = 0; d < ndim; d++)
		if (!vb_mul_size(n, shape[d], &n))
			return 0;
	*out = n;
	return 1;
}

/* ---- writer ---------------------------------------------------------- */

enum vb_status checkpoint_writer_create(struct checkpoint_writer **out,
					struct vb_error *err)
{
	*out = calloc(1, sizeof **out);
	if (!*out)
		return vb_fail(err, VB_ERR_NOMEM,
			       "checkpoint: cannot allocate a writer");
	return VB_OK;
}

void checkpoint_writer_free(struct checkpoint_writer *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n_t; i++)
		free(w->t[i].name);
	for (size_t i = 0; i < w->n_m; i++) {
		free(w->m[i].key);
		free(w->m[i].value);
	}
	free(w->t);
	free(w->m);
	free(w);
}

enum vb_status checkpoint_add(struct checkpoint_writer *w, const char *name,
			      enum checkpoint_dtype dtype, int ndim,
			      const size_t *shape, const void *data,
			      struct vb_error *err)
{
	char nb[CK_SHOW_LEN];
	struct ck_entry *e, *q;
	size_t count, nbytes;
	if (!name || !*name || strcmp(name, CK_METADATA_KEY) == 0 ||
	    !ck_utf8_valid(name))
		return vb_fail(err, VB_ERR_INTERNAL,
			       "checkpoint: bad tensor name '%s', expected "
			       "non-empty UTF-8 other than " CK_METADATA_KEY,
			       name ? ck_show(name, nb, sizeof nb) : "(null)");
	ck_show(name, nb, sizeof nb);
	if ((unsigned)dtype >= CK_N_DTYPES)
		return vb_fail(err, VB_ERR_INTERNAL,
			       "checkpoint: tensor '%s': bad dtype %d", nb,
			       (int)dtype);
	if (ndim < 0 || ndim > CHECKPOINT_MAX_DIM || (ndim > 0 && !shape))
		return vb_fail(err, VB_ERR_SHAPE,
			       "checkpoint: tensor '%s': ndim %d, expected "
			       "0..%d",
			       nb, ndim, CHECKPOINT_MAX_DIM);
	if (!ck_shape_count(ndim, shape, &count) ||
	    !vb_mul_size(count, ck_dtype_sizes[dtype], &nbytes))
		return vb_fail(err, VB_ERR_NOMEM,
			       "checkpoint: tensor '%s': size overflows", nb);
	if (nbytes > 0 && !data)
		return vb_fail(err, VB_ERR_INTERNAL,
			       "checkpoint: tensor '%s': NULL data for %zu "
			       "bytes",
			       nb, nbytes);
	for (size_t i = 0; i < w->n_t; i++)
		if (strcmp(w->t[i].name, name) == 0)
			return vb_fail(err, VB_ERR_INTERNAL,
				       "checkpoint: duplicate tensor name '%s'",
				       nb);
	q = ck_grow(w->t, &w->cap_t, w->n_t + 1, sizeof *w->t);
	if (!q)
		return vb_fail(err, VB_ERR_NOMEM,
			       "checkpoint: cannot grow the tensor list");
	w->t = q;
	e = &w->t[w->n_t];
	memset(e, 0, sizeof *e);
	e->name = ck_strdup(name);
	if (!e->name)
		return vb_fail(err, VB_ERR_NOMEM,
			       "checkpoint: cannot copy tensor name '%s'", nb);
	e->dtype = dtype;
	e->ndim = ndim;
	for (int d = 0; d < ndim; d++)
		e->shape[d] = shape[d];
	e->data = data;
	e->nbytes = nbytes;
	e->seq = w->n_t;
	w->n_t++;
	return VB_OK;
}

enum vb_status checkpoint_add_meta(struct checkpoint_writer *w,
				   const char *key, const char *value,
				   struct vb_error *err)
{
	char kb[CK_SHOW_LEN];
	struct ck_meta *q;
	char *k, *v;
	if (!key || !*key || !ck_utf8_valid(key))
		return vb_fail(err, VB_ERR_INTERNAL,
			       "checkpoint: bad metadata key '%s', expected "
			       "non-empty UTF-8",
			       key ? ck_show(key, kb, sizeof kb) : "(null)");
	ck_show(key, kb, sizeof kb);
	if (!value || !ck_utf8_valid(value))
		return vb_fail(err, VB_ERR_INTERNAL,
			       "checkpoint: metadata '%s': value is not UTF-8",
			       kb);
	for (size_t i = 0; i < w->n_m; i++)
		if (strcmp(w->m[i].key, key) == 0)
			return vb_fail(err, VB_ERR_INTERNAL,
				       "checkpoint: duplicate metadata key '%s'",
				       kb);
	q = ck_grow(w->m, &w->cap_m, w->n_m + 1, sizeof *w->m);
	if (!q)
		return vb_fail(err, VB_ERR_NOMEM,
			       "checkpoint: cannot grow the metadata list");
	w->m = q;
	k = ck_strdup(key);
	v = ck_strdup(value);
	if (!k || !v) {
		free(k);
		free(v);
		return vb_fail(err, VB_ERR_NOMEM,
			       "checkpoint: cannot copy metadata '%s'", kb);
	}
	w->m[w->n_m].key = k;
	w->m[w->n_m].value = v;
	w->n_m++;
	return VB_OK;
}

/* Growing byte string; oom is sticky so appends need no checks. */
struct ck_sb {
	char *p;
	size_t len, cap;
	int oom;
};

static void ck_sb_putn(struct ck_sb *b, const char *s, size_t n)
{
	char *q;
	if (b->oom)
		return;
	if (n > SIZE_MAX - b->len - 1) {
		b->oom = 1;
		return;
	}
	q = ck_grow(b->p, &b->cap, b->len + n + 1, 1);
	if (!q) {
		b->oom = 1;
		return;
	}
	b->p = q;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void ck_sb_puts(struct ck_sb *b, const char *s)
{
	ck_sb_putn(b, s, strlen(s));
}

static void ck_sb_size(struct ck_sb *b, size_t v)
{
	char tmp[32];
	snprintf(tmp, sizeof tmp, "%zu", v);
	ck_sb_puts(b, tmp);
}

/* A JSON string literal for UTF-8 s (RFC 8259 section 7). */
static void ck_sb_json_str(struct ck_sb *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const char *run = s;
	ck_sb_putn(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[7];
		const char *e = NULL;
		if (c == '"')
			e = "\\\"";
		else if (c == '\\')
			e = "\\\\";
		else if (c == '\n')
			e = "\\n";
		else if (c == '\r')
			e = "\\r";
		else if (c == '\t')
			e = "\\t";
		else if (c == '\b')
			e = "\\b";
		else if (c == '\f')
			e = "\\f";
		else if (c < 0x20) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			esc[6] = '\0';
			e = esc;
		}
		if (e) {
			ck_sb_putn(b, run, (size_t)(s - run));
			ck_sb_puts(b, e);
			run = s + 1;
		}
	}
	ck_sb_putn(b, run, (size_t)(s - run));
	ck_sb_putn(b, "\"", 1);
}

/* Data order: larger elements first, then add order (keeps every tensor
 * aligned to its element size, as the reference writer does). */
static int ck_cmp_entry(const void *a, const void *b)
{
	const struct ck_entry *x = *(const struct ck_entry *const *)a;
	const struct ck_entry *y = *(const struct ck_entry *const *)b;
	size_t sx = ck_dtype_sizes[x->dtype], sy = ck_dtype_sizes[y->dtype];
	if (sx != sy)
		return sx > sy ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Builds the padded header for the entries in order. */
static enum vb_status ck_build_header(const struct checkpoint_writer *w,
				      struct ck_entry **order, struct ck_sb *b,
				      struct vb_error *err)
{
	size_t off = 0;
	int first = 1;
	ck_sb_putn(b, "{", 1);
	if (w->n_m) {
		ck_sb_json_str(b, CK_METADATA_KEY);
		ck_sb_putn(b, ":{", 2);
		for (size_t i = 0; i < w->n_m; i++) {
			if (i)
				ck_sb_putn(b, ",", 1);
			ck_sb_json_str(b, w->m[i].key);
			ck_sb_putn(b, ":", 1);
			ck_sb_json_str(b, w->m[i].value);
		}
		ck_sb_putn(b, "}", 1);
		first = 0;
	}
	for (size_t i = 0; i < w->n_t; i++) {
		const struct ck_entry *e = order[i];
		if (!first)
			ck_sb_putn(b, ",", 1);
		first = 0;
		ck_sb_json_str(b, e->name);
		ck_sb_puts(b, ":{\"dtype\":\"");
		ck_sb_puts(b, ck_dtype_names[e->dtype]);
		ck_sb_puts(b, "\",\"shape\":[");
		for (int d = 0; d < e->ndim; d++) {
			if (d)
				ck_sb_putn(b, ",", 1);
			ck_sb_size(b, e->shape[d]);
		}
		ck_sb_puts(b, "],\"data_offsets\":[");
		ck_sb_size(b, off);
		ck_sb_putn(b, ",", 1);
		if (e->nbytes > SIZE_MAX - off)
			return vb_fail(err, VB_ERR_NOMEM,
				       "checkpoint: total data size overflows");
		off += e->nbytes;
		ck_sb_size(b, off);
		ck_sb_puts(b, "]}");
	}
	ck_sb_putn(b, "}", 1);
	/* Pad so the data starts at a multiple of 8 (8-byte prefix). */
	while (!b->oom && b->len % 8 != 0)
		ck_sb_putn(b, " ", 1);
	if (b->oom)
		return vb_fail(err, VB_ERR_NOMEM,
			       "checkpoint: cannot build the header");
	if (b->len > CHECKPOINT_MAX_HEADER)
		return vb_fail(err, VB_ERR_INTERNAL,
			       "checkpoint: header of %zu bytes exceeds the "
			       "limit of %u",
			       b->len, CHECKPOINT_MAX_HEADER);
	return VB_OK;
}

/* Best effort: makes the rename durable. Some file systems refuse fsync on
 * a folder; the file itself is already synced, so that is not an error. */
static void ck_sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd;
	if (!slash) {
		dir = ck_strdup(".");
	} else {
		size_t n = slash == path ? 1 : (size_t)(slash - path);
		dir = malloc(n + 1);
		if (dir) {
			memcpy(dir, path, n);
			dir[n] = '\0';
		}
	}
	if (!dir)
		return;
	fd = open(dir, O_RDONLY);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	free(dir);
}

enum vb_status checkpoint_write(struct checkpoint_writer *w, const char *path,
				struct vb_error *err)
{
	struct ck_entry **order = NULL;
	struct ck_sb b = {0};
	char *tmp = NULL;
	unsigned char prefix[8];
	FILE *f = NULL;
	enum vb_status st;
	int e;
	if (!ck_host_little_endian())
		return vb_fail(err, VB_ERR_INTERNAL,
			       "checkpoint: %s: big-endian host not supported",
			       path);
	order = malloc((w->n_t ? w->n_t : 1) * sizeof *order);
	if (!order)
		return vb_fail(err, VB_ERR_NOMEM,
			       "checkpoint: %s: cannot allocate", path);
	for (size_t i = 0; i < w->n_t; i++)
		order[i] = &w->t[i];
	qsort(order, w->n_t, sizeof *order, ck_cmp_entry);
	st = ck_build_header(w, order, &b, err);
	if (st != VB_OK)
		goto done;
	for (int i = 0; i < 8; i++)
		prefix[i] = (unsigned char)(((uint64_t)b.len >> (8 * i)) & 0xff);
	tmp = malloc(strlen(path) + 32);
	if (!tmp) {
		st = vb_fail(err, VB_ERR_NOMEM,
			     "checkpoint: %s: cannot allocate", path);
		goto done;
	}
	sprintf(tmp, "%s.tmp.%ld", path, (long)getpid());
	f = fopen(tmp, "wb");
	if (!f) {
		st = vb_fail(err, VB_ERR_IO, "checkpoint: %s: cannot create %s: %s",
			     path, tmp, strerror(errno));
		goto done;
	}
	if (fwrite(prefix, 1, 8, f) != 8 ||
	    fwrite(b.p, 1, b.len, f) != b.len)
		goto io_error;
	for (size_t i = 0; i < w->n_t; i++)
		if (order[i]->nbytes &&
		    fwrite(order[i]->data, 1, order[i]->nbytes, f) !=
			    order[i]->nbytes)
			goto io_error;
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		goto io_error;
	e = fclose(f);
	f = NULL;
	if (e != 0)
		goto io_error;
	if (rename(tmp, path) != 0) {
		st = vb_fail(err, VB_ERR_IO,
			     "checkpoint: %s: cannot rename %s to it: %s", path,
			     tmp, strerror(errno));
		remove(tmp);
		goto done;
	}
	ck_sync_dir(path);
	st = VB_OK;
	goto done;
io_error:
	st = vb_fail(err, VB_ERR_IO, "checkpoint: %s: cannot write %s: %s",
		     path, tmp, strerror(errno));
	if (f)
		fclose(f);
	f = NULL;
	remove(tmp);
done:
	free(tmp);
	free(b.p);
	free(order);
	return st;
}

/* ---- header JSON parser ---------------------------------------------- */

/* Schema-directed and non-recursive: the header is an object of tensor
 * entries and an optional "__metadata__" object of strings; nothing else is
 * accepted, so nesting depth is bounded by construction. */
struct ck_js {
	const unsigned char *s; /* header bytes (not NUL-terminated) */
	size_t n, pos;
	int nomem;
	char msg[VB_ERROR_LEN]; /* first failure */
};

static int ck_js_fail(struct ck_js *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int ck_js_fail(struct ck_js *j, const char *fmt, ...)
{
	if (!j->msg[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(j->msg, sizeof j->msg, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int ck_js_syntax(struct ck_js *j, const char *what)
{
	return ck_js_fail(j, "invalid header JSON at byte %zu: %s", j->pos,
			  what);
}

static int ck_js_oom(struct ck_js *j)
{
	j->nomem = 1;
	return ck_js_fail(j, "out of memory while parsing the header");
}

static int ck_js_peek(const struct ck_js *j)
{
	return j->pos < j->n ? j->s[j->pos] : -1;
}

static void ck_js_ws(struct ck_js *j)
{
	while (j->pos < j->n && (j->s[j->pos] == ' ' || j->s[j->pos] == '\t' ||
				 j->s[j->pos] == '\n' || j->s[j->pos] == '\r'))
		j->pos++;
}

static int ck_js_lit(struct ck_js *j, int c, const char *what)
{
	if (ck_js_peek(j) != c)
		return ck_js_syntax(j, what);
	j->pos++;
	return 0;
}

/* Four hex digits s[i..i+4) before end into *v. */
static int ck_hex4(const unsigned char *s, size_t i, size_t end,
		   unsigned long *v)
{
	unsigned long x = 0;
	if (i > end || end - i < 4)
		return -1;
	for (size_t k = i; k < i + 4; k++) {
		unsigned char c = s[k];
		unsigned long d;
		if (c >= '0' && c <= '9')
			d = (unsigned long)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned long)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned long)(c - 'A' + 10);
		else
			return -1;
		x = x * 16 + d;
	}
	*v = x;
	return 0;
}

static size_t ck_utf8_put(char *o, unsigned long cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* A JSON string at pos into a fresh NUL-terminated UTF-8 copy *out. */
static int ck_js_string(struct ck_js *j, char **out)
{
	size_t start, end, i, o = 0;
	char *buf;
	*out = NULL;
	if (ck_js_peek(j) != '"')
		return ck_js_syntax(j, "expected a string");
	start = j->pos + 1;
	/* Find the closing quote; escapes are checked while decoding. */
	for (end = start;; end++) {
		if (end >= j->n) {
			j->pos = j->n;
			return ck_js_syntax(j, "unterminated string");
		}
		if (j->s[end] == '"')
			break;
		if (j->s[end] == '\\')
			end++;
	}
	/* Decoding never grows: escapes shrink, raw bytes copy. */
	buf = malloc(end - start + 1);
	if (!buf)
		return ck_js_oom(j);
	for (i = start; i < end;) {
		unsigned char c = j->s[i];
		j->pos = i;
		if (c < 0x20) {
			free(buf);
			return ck_js_syntax(j, "control character in string");
		}
		if (c == '\\') {
			unsigned char e = j->s[i + 1]; /* i + 1 < end */
			unsigned long cp, lo;
			const char *simple = strchr("\"\\/bfnrt", e);
			if (e && simple) {
				static const char val[] = "\"\\/\b\f\n\r\t";
				buf[o++] = val[simple - "\"\\/bfnrt"];
				i += 2;
				continue;
			}
			if (e != 'u' || ck_hex4(j->s, i + 2, end, &cp)) {
				free(buf);
				return ck_js_syntax(j, "invalid escape");
			}
			i += 6;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				if (i + 1 < end && j->s[i] == '\\' &&
				    j->s[i + 1] == 'u' &&
				    ck_hex4(j->s, i + 2, end, &lo) == 0 &&
				    lo >= 0xDC00 && lo <= 0xDFFF) {
					cp = 0x10000 + ((cp - 0xD800) << 10) +
					     (lo - 0xDC00);
					i += 6;
				} else {
					free(buf);
					return ck_js_syntax(
						j, "unpaired surrogate escape");
				}
			} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
				free(buf);
				return ck_js_syntax(j,
						    "unpaired surrogate escape");
			}
			if (cp == 0) {
				free(buf);
				return ck_js_syntax(
					j, "\\u0000 in a string is not supported");
			}
			o += ck_utf8_put(buf + o, cp);
		} else if (c < 0x80) {
			buf[o++] = (char)c;
			i++;
		} else {
			size_t len = ck_utf8_seq(j->s + i, end - i);
			if (!len) {
				free(buf);
				return ck_js_syntax(j, "invalid UTF-8 in string");
			}
			memcpy(buf + o, j->s + i, len);
			o += len;
			i += len;
		}
	}
	buf[o] = '\0';
	j->pos = end + 1;
	*out = buf;
	return 0;
}

/* A non-negative JSON integer (no fraction, no exponent) into *out. */
static int ck_js_size(struct ck_js *j, size_t *out)
{
	size_t v = 0;
	int c = ck_js_peek(j);
	if (c < '0' || c > '9')
		return ck_js_syntax(j, "expected a non-negative integer");
	if (c == '0') {
		j->pos++;
		c = ck_js_peek(j);
		if (c >= '0' && c <= '9')
			return ck_js_syntax(j, "leading zero in a number");
	} else {
		while (c >= '0' && c <= '9') {
			size_t d = (size_t)(c - '0');
			if (v > (SIZE_MAX - d) / 10)
				return ck_js_syntax(j, "integer too large");
			v = v * 10 + d;
			j->pos++;
			c = ck_js_peek(j);
		}
	}
	if (c == '.' || c == 'e' || c == 'E')
		return ck_js_syntax(j, "expected an integer, found a fraction "
				       "or exponent");
	*out = v;
	return 0;
}

/* "[a, b, ...]" of at most max non-negative integers into v, *count. */
static int ck_js_sizes(struct ck_js *j, size_t *v, size_t max, size_t *count,
		       const char *tname, const char *field)
{
	*count = 0;
	if (ck_js_peek(j) != '[')
		return ck_js_fail(j, "tensor '%s': %s is not an array", tname,
				  field);
	j->pos++;
	ck_js_ws(j);
	if (ck_js_peek(j) == ']') {
		j->pos++;
		return 0;
	}
	for (;;) {
		if (*count == max)
			return ck_js_fail(j,
					  "tensor '%s': %s has more than %zu "
					  "entries",
					  tname, field, max);
		ck_js_ws(j);
		if (ck_js_size(j, &v[*count]))
			return -1;
		(*count)++;
		ck_js_ws(j);
		if (ck_js_peek(j) == ',') {
			j->pos++;
			continue;
		}
		return ck_js_lit(j, ']', "expected ',' or ']'");
	}
}

/* Key, ':' and the whitespace after it. */
static int ck_js_key(struct ck_js *j, char **key)
{
	ck_js_ws(j);
	if (ck_js_string(j, key))
		return -1;
	ck_js_ws(j);
	if (ck_js_lit(j, ':', "expected ':' after a key")) {
		free(*key);
		*key = NULL;
		return -1;
	}
	ck_js_ws(j);
	return 0;
}

/* After a member: ',' (returns 1: another member follows) or '}' (0). */
static int ck_js_next(struct ck_js *j)
{
	ck_js_ws(j);
	if (ck_js_peek(j) == ',') {
		j->pos++;
		return 1;
	}
	return ck_js_lit(j, '}', "expected ',' or '}'");
}

/* {"dtype": "F32", "shape": [..], "data_offsets": [b, e]} into t. */
static int ck_js_tensor(struct ck_js *j, struct ck_tensor *t)
{
	char nb[CK_SHOW_LEN], fb[CK_SHOW_LEN];
	int have_dtype = 0, have_shape = 0, have_off = 0, more;
	ck_show(t->name, nb, sizeof nb);
	if (ck_js_peek(j) != '{')
		return ck_js_fail(j, "tensor '%s': entry is not an object", nb);
	j->pos++;
	ck_js_ws(j);
	more = ck_js_peek(j) != '}';
	if (!more)
		j->pos++;
	while (more) {
		char *field;
		int bad = 0;
		if (ck_js_key(j, &field))
			return -1;
		ck_show(field, fb, sizeof fb);
		if (strcmp(field, "dtype") == 0) {
			char *d;
			if (have_dtype++)
				bad = ck_js_fail(j, "tensor '%s': duplicate "
						    "field 'dtype'", nb);
			else if (ck_js_peek(j) != '"')
				bad = ck_js_fail(j, "tensor '%s': dtype is "
						    "not a string", nb);
			else if (ck_js_string(j, &d))
				bad = -1;
			else {
				if (ck_dtype_parse(d, &t->dtype)) {
					char db[CK_SHOW_LEN];
					bad = ck_js_fail(
						j,
						"tensor '%s': unknown dtype "
						"'%s', expected F32, F64, I64, "
						"I32, U64 or U8",
						nb, ck_show(d, db, sizeof db));
				}
				free(d);
			}
		} else if (strcmp(field, "shape") == 0) {
			size_t nd;
			if (have_shape++)
				bad = ck_js_fail(j, "tensor '%s': duplicate "
						    "field 'shape'", nb);
			else if (ck_js_sizes(j, t->shape, CHECKPOINT_MAX_DIM,
					     &nd, nb, "shape"))
				bad = -1;
			else
				t->ndim = (int)nd;
		} else if (strcmp(field, "data_offsets") == 0) {
			size_t off[2], no;
			if (have_off++)
				bad = ck_js_fail(j, "tensor '%s': duplicate "
						    "field 'data_offsets'", nb);
			else if (ck_js_sizes(j, off, 2, &no, nb,
					     "data_offsets"))
				bad = -1;
			else if (no != 2)
				bad = ck_js_fail(j, "tensor '%s': data_offsets "
						    "has %zu entries, expected "
						    "2", nb, no);
			else {
				t->begin = off[0];
				t->end = off[1];
			}
		} else {
			bad = ck_js_fail(j, "tensor '%s': unknown field '%s'",
					 nb, fb);
		}
		free(field);
		if (bad)
			return -1;
		more = ck_js_next(j);
		if (more < 0)
			return -1;
	}
	if (!have_dtype || !have_shape || !have_off)
		return ck_js_fail(j, "tensor '%s': missing field '%s'", nb,
				  !have_dtype ? "dtype"
				  : !have_shape ? "shape" : "data_offsets");
	return 0;
}

/* "__metadata__": {"key": "value", ...}. */
static int ck_js_meta(struct ck_js *j, struct checkpoint *c)
{
	int more;
	if (ck_js_peek(j) != '{')
		return ck_js_fail(j, CK_METADATA_KEY " is not an object");
	j->pos++;
	ck_js_ws(j);
	more = ck_js_peek(j) != '}';
	if (!more)
		j->pos++;
	while (more) {
		char *key, *value;
		struct ck_meta *q;
		if (ck_js_key(j, &key))
			return -1;
		if (ck_js_peek(j) != '"') {
			char kb[CK_SHOW_LEN];
			ck_js_fail(j, CK_METADATA_KEY " value of '%s' is not a "
				      "string", ck_show(key, kb, sizeof kb));
			free(key);
			return -1;
		}
		if (ck_js_string(j, &value)) {
			free(key);
			return -1;
		}
		q = ck_grow(c->m, &c->cap_m, c->n_m + 1, sizeof *c->m);
		if (!q) {
			free(key);
			free(value);
			return ck_js_oom(j);
		}
		c->m = q;
		c->m[c->n_m].key = key;
		c->m[c->n_m].value = value;
		c->n_m++;
		more = ck_js_next(j);
		if (more < 0)
			return -1;
	}
	return 0;
}

static int ck_js_header(struct ck_js *j, struct checkpoint *c)
{
	int more;
	ck_js_ws(j);
	if (ck_js_lit(j, '{', "expected '{'"))
		return -1;
	ck_js_ws(j);
	more = ck_js_peek(j) != '}';
	if (!more)
		j->pos++;
	while (more) {
		char *key;
		if (ck_js_key(j, &key))
			return -1;
		if (strcmp(key, CK_METADATA_KEY) == 0) {
			free(key);
			if (c->seen_meta++)
				return ck_js_fail(j, "duplicate key "
						     "'" CK_METADATA_KEY "'");
			if (ck_js_meta(j, c))
				return -1;
		} else {
			struct ck_tensor *q, *t;
			q = ck_grow(c->t, &c->cap_t, c->n_t + 1, sizeof *c->t);
			if (!q) {
				free(key);
				return ck_js_oom(j);
			}
			c->t = q;
			t = &c->t[c->n_t];
			memset(t, 0, sizeof *t);
			t->name = key;
			t->seq = c->n_t;
			c->n_t++;
			if (ck_js_tensor(j, t))
				return -1;
		}
		more = ck_js_next(j);
		if (more < 0)
			return -1;
	}
	ck_js_ws(j);
	if (j->pos != j->n)
		return ck_js_syntax(j, "unexpected characters after the "
				       "header object");
	return 0;
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
			unsigned char *q = ck_grow(p, &cap, cap + 1, 1);
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
				ck_show(c->by_name[i]->name, nb, sizeof nb));
	for (size_t i = 1; i < c->n_m; i++)
		if (strcmp(c->m[i - 1].key, c->m[i].key) == 0)
			return ck_open_fail(err, VB_ERR_DATA, c->path,
					    "duplicate metadata key '%s'",
					    ck_show(c->m[i].key, nb,
						    sizeof nb));
	for (size_t i = 0; i < c->n_t; i++) {
		const struct ck_tensor *t = &c->t[i];
		size_t count, nbytes;
		ck_show(t->name, nb, sizeof nb);
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
		if (!ck_shape_count(t->ndim, t->shape, &count) ||
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
		ck_show(t->name, nb, sizeof nb);
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
				ck_show(c->t[i - 1].name, pb, sizeof pb),
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
	if (!ck_host_little_endian())
		return ck_open_fail(err, VB_ERR_INTERNAL, path,
				    "big-endian host not supported");
	c = calloc(1, sizeof *c);
	if (!c)
		return ck_open_fail(err, VB_ERR_NOMEM, path,
				    "cannot allocate");
	c->path = ck_strdup(path);
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
	if (ck_js_header(&j, c)) {
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
	for (size_t i = 0; i < c->n_m; i++) {
		free(c->m[i].key);
		free(c->m[i].value);
	}
	free(c->t);
	free(c->by_name);
	free(c->m);
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
			    ck_show(name, nb, sizeof nb));
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
	ck_show(name, nb, sizeof nb);
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
	ck_show(name, nb, sizeof nb);
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
				    ck_show(name, nb, sizeof nb), (long long)v,
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
					    ck_show(name, nb, sizeof nb), i,
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
