/* checkpoint_json: the strict, schema-directed JSON parser of a safetensors
 * header for the checkpoint reader (checkpoint.c): tensor entries and the
 * "__metadata__" object, strings with escapes and UTF-8 checks, sizes;
 * bounds checks on the data offsets are left to the reader. */
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

/* ---- header JSON parser ---------------------------------------------- */


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
			size_t len = checkpoint_impl_utf8_seq(j->s + i, end - i);
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

/* After an object's '{': 1 when a member follows, 0 when the object is
 * empty (its '}' consumed). */
static int ck_js_first(struct ck_js *j)
{
	ck_js_ws(j);
	if (ck_js_peek(j) != '}')
		return 1;
	j->pos++;
	return 0;
}

/* {"dtype": "F32", "shape": [..], "data_offsets": [b, e]} into t. */
static int ck_js_tensor(struct ck_js *j, struct ck_tensor *t)
{
	char nb[CK_SHOW_LEN], fb[CK_SHOW_LEN];
	int have_dtype = 0, have_shape = 0, have_off = 0, more;
	checkpoint_impl_show(t->name, nb, sizeof nb);
	if (ck_js_peek(j) != '{')
		return ck_js_fail(j, "tensor '%s': entry is not an object", nb);
	j->pos++;
	more = ck_js_first(j);
	while (more) {
		char *field;
		int bad = 0;
		if (ck_js_key(j, &field))
			return -1;
		checkpoint_impl_show(field, fb, sizeof fb);
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
				if (checkpoint_impl_dtype_parse(d, &t->dtype)) {
					char db[CK_SHOW_LEN];
					bad = ck_js_fail(
						j,
						"tensor '%s': unknown dtype "
						"'%s', expected F32, F64, I64, "
						"I32, U64 or U8",
						nb,
						checkpoint_impl_show(d, db,
								     sizeof db));
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
	more = ck_js_first(j);
	while (more) {
		char *key, *value;
		struct ck_meta *q;
		if (ck_js_key(j, &key))
			return -1;
		if (ck_js_peek(j) != '"') {
			char kb[CK_SHOW_LEN];
			ck_js_fail(j, CK_METADATA_KEY " value of '%s' is not a "
				      "string",
				      checkpoint_impl_show(key, kb, sizeof kb));
			free(key);
			return -1;
		}
		if (ck_js_string(j, &value)) {
			free(key);
			return -1;
		}
		q = checkpoint_impl_grow(c->m, &c->cap_m, c->n_m + 1,
					 sizeof *c->m);
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

int checkpoint_impl_js_header(struct ck_js *j, struct checkpoint *c)
{
	int more;
	ck_js_ws(j);
	if (ck_js_lit(j, '{', "expected '{'"))
		return -1;
	more = ck_js_first(j);
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
			q = checkpoint_impl_grow(c->t, &c->cap_t, c->n_t + 1,
						 sizeof *c->t);
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

