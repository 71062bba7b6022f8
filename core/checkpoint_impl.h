/* checkpoint_impl: the internals shared by the checkpoint files (private
 * to core/, not installed): the in-memory layout of a writer and of an
 * opened file, the header parser's state and the helpers more than one of
 * checkpoint.c (common helpers, reader), checkpoint_write.c (writer) and
 * checkpoint_json.c (header JSON parser) uses. */
#ifndef VB_CORE_CHECKPOINT_IMPL_H
#define VB_CORE_CHECKPOINT_IMPL_H

#include <stddef.h>

#include "checkpoint.h"
#include "vb.h"

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

/* Schema-directed and non-recursive: the header is an object of tensor
 * entries and an optional "__metadata__" object of strings; nothing else is
 * accepted, so nesting depth is bounded by construction. */
struct ck_js {
	const unsigned char *s; /* header bytes (not NUL-terminated) */
	size_t n, pos;
	int nomem;
	char msg[VB_ERROR_LEN]; /* first failure */
};

/* 1 when the host stores integers little-endian. */
int checkpoint_impl_host_little_endian(void);

/* The dtype named s ("F32", ...) into *out; 0, or -1 for an unknown name. */
int checkpoint_impl_dtype_parse(const char *s, enum checkpoint_dtype *out);

/* Grows array p of *cap elements of elem bytes to hold need (doubling);
 * the new pointer, or NULL (p untouched) on overflow or no memory. */
void *checkpoint_impl_grow(void *p, size_t *cap, size_t need, size_t elem);

/* A malloc'ed copy of s, or NULL. */
char *checkpoint_impl_strdup(const char *s);

/* Frees the n metadata entries' keys and values, then m (NULL: no-op). */
void checkpoint_impl_meta_free(struct ck_meta *m, size_t n);

/* Length of the valid UTF-8 sequence starting s (n bytes left), 0 if none. */
size_t checkpoint_impl_utf8_seq(const unsigned char *s, size_t n);

/* 1 when the NUL-terminated str is valid UTF-8. */
int checkpoint_impl_utf8_valid(const char *str);

/* An untrusted string quoted safely for a message into buf (cap bytes,
 * at most CK_SHOW_LEN of s); returns buf. */
const char *checkpoint_impl_show(const char *s, char *buf, size_t cap);

/* The element count of shape[0..ndim) into *out; 0 on overflow. */
int checkpoint_impl_shape_count(int ndim, const size_t *shape, size_t *out);

/* Parses the whole header j->s[0..j->n) into c's tensors and metadata;
 * 0, or -1 with j->msg (or j->nomem) set. */
int checkpoint_impl_js_header(struct ck_js *j, struct checkpoint *c);

#endif
