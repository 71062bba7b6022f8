/* checkpoint_write: the safetensors writer of the checkpoint module (same
 * prefix, API in checkpoint.h): tensors and metadata added, the JSON header
 * built with its escaping, the file written under a temporary name, synced
 * and renamed. Reading is checkpoint.c. */
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

/* ---- writer ---------------------------------------------------------- */

/* Room for one more element in list p (n used of *cap, elem bytes
 * each): the list, or NULL with VB_ERR_NOMEM "checkpoint: cannot grow the
 * <what> list" in err. */
static void *grow(void *p, size_t *cap, size_t n, size_t elem,
		  const char *what, struct vb_error *err)
{
	void *q = checkpoint_impl_grow(p, cap, n + 1, elem);
	if (!q)
		vb_fail(err, VB_ERR_NOMEM, "checkpoint: cannot grow the %s list",
			what);
	return q;
}

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
	checkpoint_impl_meta_free(w->m, w->n_m);
	free(w->t);
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
	    !checkpoint_impl_utf8_valid(name))
		return vb_fail(err, VB_ERR_INTERNAL,
			       "checkpoint: bad tensor name '%s', expected "
			       "non-empty UTF-8 other than " CK_METADATA_KEY,
			       name ? checkpoint_impl_show(name, nb, sizeof nb)
				    : "(null)");
	checkpoint_impl_show(name, nb, sizeof nb);
	if (checkpoint_dtype_size(dtype) == 0)
		return vb_fail(err, VB_ERR_INTERNAL,
			       "checkpoint: tensor '%s': bad dtype %d", nb,
			       (int)dtype);
	if (ndim < 0 || ndim > CHECKPOINT_MAX_DIM || (ndim > 0 && !shape))
		return vb_fail(err, VB_ERR_SHAPE,
			       "checkpoint: tensor '%s': ndim %d, expected "
			       "0..%d",
			       nb, ndim, CHECKPOINT_MAX_DIM);
	if (!checkpoint_impl_shape_count(ndim, shape, &count) ||
	    !vb_mul_size(count, checkpoint_dtype_size(dtype), &nbytes))
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
	q = grow(w->t, &w->cap_t, w->n_t, sizeof *w->t, "tensor", err);
	if (!q)
		return VB_ERR_NOMEM;
	w->t = q;
	e = &w->t[w->n_t];
	memset(e, 0, sizeof *e);
	e->name = checkpoint_impl_strdup(name);
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
	if (!key || !*key || !checkpoint_impl_utf8_valid(key))
		return vb_fail(err, VB_ERR_INTERNAL,
			       "checkpoint: bad metadata key '%s', expected "
			       "non-empty UTF-8",
			       key ? checkpoint_impl_show(key, kb, sizeof kb)
				   : "(null)");
	checkpoint_impl_show(key, kb, sizeof kb);
	if (!value || !checkpoint_impl_utf8_valid(value))
		return vb_fail(err, VB_ERR_INTERNAL,
			       "checkpoint: metadata '%s': value is not UTF-8",
			       kb);
	for (size_t i = 0; i < w->n_m; i++)
		if (strcmp(w->m[i].key, key) == 0)
			return vb_fail(err, VB_ERR_INTERNAL,
				       "checkpoint: duplicate metadata key '%s'",
				       kb);
	q = grow(w->m, &w->cap_m, w->n_m, sizeof *w->m, "metadata", err);
	if (!q)
		return VB_ERR_NOMEM;
	w->m = q;
	k = checkpoint_impl_strdup(key);
	v = checkpoint_impl_strdup(value);
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
	q = checkpoint_impl_grow(b->p, &b->cap, b->len + n + 1, 1);
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
	size_t sx = checkpoint_dtype_size(x->dtype);
	size_t sy = checkpoint_dtype_size(y->dtype);
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
		ck_sb_puts(b, checkpoint_dtype_name(e->dtype));
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
		dir = checkpoint_impl_strdup(".");
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
	if (!checkpoint_impl_host_little_endian())
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

