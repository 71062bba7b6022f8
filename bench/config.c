/* config: everything driven by the key table (config_keys.c): defaults,
 * parsing and range checks of text values, INI loading through inih (the
 * only file that includes ini.h), --set overrides, cross-field
 * validation, canonical formatting and atomic INI writing. What the
 * settings mean is left to the modules that read them. */
#include "config.h"

#include <ini.h>

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_keys.h"
#include "files.h"


/* ---- value parsing and checks ---- */

/* Longest accepted string value of d: fits its field and one INI line. */
static size_t str_max(const struct config_keys_def *d)
{
	size_t line = CONFIG_LINE_MAX - strlen(d->key) - 3; /* "key = " */
	return d->size - 1 < line ? d->size - 1 : line;
}

static bool check_string(const struct config_keys_def *d, const char *s)
{
	size_t n = strlen(s);
	if (n > str_max(d))
		return false;
	/* surrounding spaces would be trimmed on load; ';' may start an inih
	 * comment; control characters cannot be written on one line */
	if (n && (s[0] == ' ' || s[n - 1] == ' '))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f || ch == ';')
			return false;
	}
	switch (d->rule) {
	case CONFIG_KEYS_NAME:
		if (n == 0 || strspn(s, "abcdefghijklmnopqrstuvwxyz"
				     "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				     "0123456789._-") != n)
			return false;
		return strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
	case CONFIG_KEYS_PATH:
		return n > 0;
	case CONFIG_KEYS_PATH_OR_EMPTY:
		return true;
	}
	return false;
}

/* Finite decimal number, fully consumed (no hex, inf, nan). */
static bool parse_double(const char *s, double *out)
{
	char *end;
	if (!*s || s[strspn(s, "0123456789+-.eE")] != '\0')
		return false;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || !isfinite(v))
		return false;
	if (errno == ERANGE && v == 0.0)
		return false; /* a nonzero literal underflowed to zero */
	*out = v;
	return true;
}

/* Exponent form ("1e3", "2.5e3") of an exact integer of magnitude <= 2^53
 * (every such integer is exact in a double). */
static bool parse_exp_int(const char *s, double *out)
{
	double v;
	if (!strpbrk(s, "eE") || !parse_double(s, &v))
		return false;
	if (fabs(v) > 9007199254740992.0 || (double)(int64_t)v != v)
		return false;
	*out = v;
	return true;
}

static bool parse_i64(const char *s, int64_t *out)
{
	char *end;
	double v;
	if (!*s)
		return false;
	errno = 0;
	long long x = strtoll(s, &end, 10);
	if (end != s && *end == '\0') {
		if (errno == ERANGE)
			return false;
		*out = (int64_t)x;
		return true;
	}
	if (!parse_exp_int(s, &v))
		return false;
	*out = (int64_t)v;
	return true;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	double v;
	if (!*s || s[0] == '-')
		return false; /* strtoull would wrap "-1" */
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (end != s && *end == '\0') {
		if (errno == ERANGE)
			return false;
		*out = (uint64_t)x;
		return true;
	}
	if (!parse_exp_int(s, &v) || v < 0)
		return false;
	*out = (uint64_t)v;
	return true;
}

/* The strict booleans only (issue 17 item 10: "yes", "off", "1" were
 * accepted beside them): one spelling per value, as config_write gives. */
static bool parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true" };
	static const char *const no[] = { "false" };
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

static bool double_in_range(const struct config_keys_def *d, double v)
{
	if (d->lo_open ? !(v > d->dlo) : !(v >= d->dlo))
		return false;
	if (d->hi_open ? !(v < d->dhi) : !(v <= d->dhi))
		return false;
	return true;
}

/* The field size of each type parse_value stores from a parsed value
 * (config_type.h); a string is copied as it is. */
static const size_t VALUE_SIZE[] = {
	[CONFIG_TYPE_INT] = sizeof(int64_t),
	[CONFIG_TYPE_U64] = sizeof(uint64_t),
	[CONFIG_TYPE_DOUBLE] = sizeof(double),
	[CONFIG_TYPE_BOOL] = sizeof(bool),
	[CONFIG_TYPE_ENUM] = sizeof(int),
};

/* Parses text s for key d and stores it in c; false (c untouched) when s
 * is not a valid value of d. */
static bool parse_value(const struct config_keys_def *d, const char *s,
			struct config *c)
{
	void *p = (char *)c + d->offset;
	union {
		int64_t i;
		uint64_t u;
		double x;
		bool b;
		int e;
	} v;
	bool ok = false;
	switch (d->type) {
	case CONFIG_TYPE_STRING:
		if (!check_string(d, s))
			return false;
		memcpy(p, s, strlen(s) + 1);
		return true;
	case CONFIG_TYPE_INT:
		ok = parse_i64(s, &v.i) && v.i >= d->lo && v.i <= d->hi;
		break;
	case CONFIG_TYPE_U64:
		ok = parse_u64(s, &v.u);
		break;
	case CONFIG_TYPE_DOUBLE:
		ok = parse_double(s, &v.x) && double_in_range(d, v.x);
		break;
	case CONFIG_TYPE_BOOL:
		ok = parse_bool(s, &v.b);
		break;
	case CONFIG_TYPE_ENUM:
		for (int i = 0; !ok && i < config_keys_enum_count(d); i++) {
			v.e = i;
			ok = strcmp(s, config_keys_enum_at(d, i)) == 0;
		}
		break;
	}
	/* the parsed value's bytes into its field (every member of v
	 * starts at v) */
	if (ok)
		memcpy(p, &v, VALUE_SIZE[d->type]);
	return ok;
}

/* "what was expected" for key d, e.g. "an integer in 1..4096". */
static void expect_text(const struct config_keys_def *d, char *buf, size_t cap)
{
	switch (d->type) {
	case CONFIG_TYPE_STRING:
		if (d->rule == CONFIG_KEYS_NAME)
			snprintf(buf, cap, "a name of 1 to %zu characters "
				 "A-Z a-z 0-9 . _ - (not . or ..)", str_max(d));
		else
			snprintf(buf, cap, "a %spath of at most %zu characters "
				 "without ';', control characters or "
				 "surrounding spaces",
				 d->rule == CONFIG_KEYS_PATH ? "non-empty " : "",
				 str_max(d));
		return;
	case CONFIG_TYPE_INT:
		if (d->hi == CONFIG_KEYS_IMAX)
			snprintf(buf, cap, "an integer >= %" PRId64, d->lo);
		else
			snprintf(buf, cap, "an integer in %" PRId64 "..%" PRId64,
				 d->lo, d->hi);
		return;
	case CONFIG_TYPE_U64:
		snprintf(buf, cap, "an integer in 0..%" PRIu64, UINT64_MAX);
		return;
	case CONFIG_TYPE_DOUBLE:
		if (isinf(d->dhi))
			snprintf(buf, cap, "a number %s %g",
				 d->lo_open ? ">" : ">=", d->dlo);
		else
			snprintf(buf, cap, "a number in %c%g, %g%c",
				 d->lo_open ? '(' : '[', d->dlo, d->dhi,
				 d->hi_open ? ')' : ']');
		return;
	case CONFIG_TYPE_BOOL:
		snprintf(buf, cap, "true or false");
		return;
	case CONFIG_TYPE_ENUM: {
		size_t len = (size_t)snprintf(buf, cap, "one of ");
		for (int i = 0; i < config_keys_enum_count(d) && len < cap; i++)
			len += (size_t)snprintf(buf + len, cap - len, "%s%s",
						i ? "|" : "", config_keys_enum_at(d, i));
		return;
	}
	}
	snprintf(buf, cap, "a value");
}

/* s as quoted in messages: cut to fit cap with "..." (cap >= 8). */
static void clip_text(const char *s, char *buf, size_t cap)
{
	if (strlen(s) < cap)
		memcpy(buf, s, strlen(s) + 1);
	else
		snprintf(buf, cap, "%.*s...", (int)(cap - 4), s);
}

/* Shortest %.Ng, N in 6..17, that reads back as v. */
static void format_double(double v, char *buf, size_t cap)
{
	for (int prec = 6; prec <= 17; prec++) {
		snprintf(buf, cap, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

static enum vb_status format_value(const struct config *c,
				   const struct config_keys_def *d, char *buf,
				   size_t cap, struct vb_error *err)
{
	const void *p = (const char *)c + d->offset;
	char tmp[64] = "";
	const char *s = tmp;
	switch (d->type) {
	case CONFIG_TYPE_STRING:
		if (!memchr(p, '\0', d->size))
			return vb_fail(err, VB_ERR_CONFIG,
				       "config: %s is not NUL-terminated",
				       d->name);
		s = p;
		break;
	case CONFIG_TYPE_INT:
		snprintf(tmp, sizeof tmp, "%" PRId64, *(const int64_t *)p);
		break;
	case CONFIG_TYPE_U64:
		snprintf(tmp, sizeof tmp, "%" PRIu64, *(const uint64_t *)p);
		break;
	case CONFIG_TYPE_DOUBLE:
		format_double(*(const double *)p, tmp, sizeof tmp);
		break;
	case CONFIG_TYPE_BOOL:
		s = *(const bool *)p ? "true" : "false";
		break;
	case CONFIG_TYPE_ENUM: {
		int v = *(const int *)p;
		if (v < 0 || v >= config_keys_enum_count(d))
			return vb_fail(err, VB_ERR_CONFIG,
				       "config: %s holds %d, expected 0..%d",
				       d->name, v, config_keys_enum_count(d) - 1);
		s = config_keys_enum_at(d, v);
		break;
	}
	}
	size_t n = strlen(s);
	if (n + 1 > cap)
		return vb_fail(err, VB_ERR_INTERNAL,
			       "config: value of %s needs %zu bytes, buffer "
			       "holds %zu", d->name, n + 1, cap);
	memcpy(buf, s, n + 1);
	return VB_OK;
}

/* Formats key d of c and checks the text loads back (range, string rules). */
static enum vb_status check_key(const struct config *c,
				const struct config_keys_def *d, struct vb_error *err)
{
	char buf[CONFIG_VALUE_LEN], shown[96], expect[160];
	struct config scratch;
	enum vb_status st = format_value(c, d, buf, sizeof buf, err);
	if (st != VB_OK)
		return st;
	if (parse_value(d, buf, &scratch))
		return VB_OK;
	clip_text(buf, shown, sizeof shown);
	expect_text(d, expect, sizeof expect);
	return vb_fail(err, VB_ERR_CONFIG, "config: %s = \"%s\": expected %s",
		       d->name, shown, expect);
}

static enum vb_status check_all(const struct config *c, struct vb_error *err)
{
	for (size_t i = 0; i < config_keys_count; i++) {
		enum vb_status st = check_key(c, &config_keys_table[i], err);
		if (st != VB_OK)
			return st;
	}
	return VB_OK;
}

/* ---- key lookup ---- */

static int find_key(const char *section, const char *key)
{
	for (size_t i = 0; i < config_keys_count; i++)
		if (strcmp(config_keys_table[i].section, section) == 0 &&
		    strcmp(config_keys_table[i].key, key) == 0)
			return (int)i;
	return -1;
}

static bool known_section(const char *section)
{
	for (size_t i = 0; i < config_keys_count; i++)
		if (strcmp(config_keys_table[i].section, section) == 0)
			return true;
	return false;
}

/* "run|data|..." (section == NULL) or "kind|arch|..." of one section. */
static void list_names(const char *section, char *buf, size_t cap)
{
	size_t len = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < config_keys_count && len < cap; i++) {
		const char *s;
		if (section) {
			if (strcmp(config_keys_table[i].section, section) != 0)
				continue;
			s = config_keys_table[i].key;
		} else {
			if (i > 0 && strcmp(config_keys_table[i].section,
					    config_keys_table[i - 1].section) == 0)
				continue;
			s = config_keys_table[i].section;
		}
		len += (size_t)snprintf(buf + len, cap - len, "%s%s",
					len ? "|" : "", s);
	}
}

/* Message tail for an unknown section.key: what was expected. */
static void unknown_text(const char *section, const char *key, char *buf,
			 size_t cap)
{
	char list[320];
	if (!known_section(section)) {
		list_names(NULL, list, sizeof list);
		snprintf(buf, cap, "unknown section [%.64s] (key %.64s), "
			 "expected one of %s", section, key, list);
	} else {
		list_names(section, list, sizeof list);
		snprintf(buf, cap, "unknown key %.64s.%.64s, expected one of "
			 "%s", section, key, list);
	}
}

/* ---- public: table access ---- */

size_t config_key_count(void)
{
	return config_keys_count;
}

const char *config_key_name(size_t i)
{
	return i < config_keys_count ? config_keys_table[i].name : NULL;
}

const char *config_key_help(size_t i)
{
	return i < config_keys_count ? config_keys_table[i].help : NULL;
}

const char *config_key_value(size_t i, int v)
{
	if (i >= config_keys_count ||
	    config_keys_table[i].type != CONFIG_TYPE_ENUM || v < 0 ||
	    v >= config_keys_enum_count(&config_keys_table[i]))
		return NULL;
	return config_keys_enum_at(&config_keys_table[i], v);
}

enum config_type config_key_type(size_t i)
{
	assert(i < config_keys_count);
	return config_keys_table[i].type;
}

int config_key_index(const char *name)
{
	for (size_t i = 0; i < config_keys_count; i++)
		if (strcmp(config_keys_table[i].name, name) == 0)
			return (int)i;
	return -1;
}

static const struct config_keys_def *enum_key(const char *key)
{
	int i = config_key_index(key);
	if (i < 0 || config_keys_table[i].type != CONFIG_TYPE_ENUM)
		return NULL;
	return &config_keys_table[i];
}

const char *config_enum_name(const char *key, int value)
{
	const struct config_keys_def *d = enum_key(key);
	if (!d || value < 0 || value >= config_keys_enum_count(d))
		return NULL;
	return config_keys_enum_at(d, value);
}

int config_enum_count(const char *key)
{
	const struct config_keys_def *d = enum_key(key);
	return d ? config_keys_enum_count(d) : 0;
}

int config_enum_value(const char *key, const char *name)
{
	const struct config_keys_def *d = enum_key(key);
	if (!d)
		return -1;
	for (int i = 0; i < config_keys_enum_count(d); i++)
		if (strcmp(config_keys_enum_at(d, i), name) == 0)
			return i;
	return -1;
}

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < config_keys_count; i++) {
		bool ok = parse_value(&config_keys_table[i], config_keys_table[i].def, c);
		assert(ok && "config: a default fails its own check");
		(void)ok;
	}
}

enum vb_status config_get_at(const struct config *c, size_t i, char *buf,
			     size_t cap, struct vb_error *err)
{
	if (i >= config_keys_count)
		return vb_fail(err, VB_ERR_CONFIG,
			       "config: key index %zu, expected < %zu", i,
			       (size_t)config_keys_count);
	return format_value(c, &config_keys_table[i], buf, cap, err);
}

enum vb_status config_get(const struct config *c, const char *name, char *buf,
			  size_t cap, struct vb_error *err)
{
	int i = config_key_index(name);
	if (i < 0)
		return vb_fail(err, VB_ERR_CONFIG,
			       "config: unknown key %.128s", name);
	return config_get_at(c, (size_t)i, buf, cap, err);
}

/* ---- public: setting values ---- */

enum vb_status config_set_key(struct config *c, const char *name,
			      const char *value, struct vb_error *err)
{
	char shown[96], expect[160];
	int i = config_key_index(name);
	if (i < 0)
		return vb_fail(err, VB_ERR_CONFIG,
			       "config: unknown key %.128s", name);
	if (parse_value(&config_keys_table[i], value, c))
		return VB_OK;
	clip_text(value, shown, sizeof shown);
	expect_text(&config_keys_table[i], expect, sizeof expect);
	return vb_fail(err, VB_ERR_CONFIG, "config: %s = \"%s\": expected %s",
		       config_keys_table[i].name, shown, expect);
}

/* [s, e) without surrounding whitespace. */
static void trim(const char **s, const char **e)
{
	while (*s < *e && (**s == ' ' || **s == '\t'))
		(*s)++;
	while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
		(*e)--;
}

enum vb_status config_set(struct config *c, const char *assignment,
			  struct vb_error *err)
{
	char shown[224], name[128], expect[320];
	const char *eq = strchr(assignment, '=');
	const char *ks = assignment, *ke = eq, *vs, *ve;
	clip_text(assignment, shown, sizeof shown);
	if (!eq)
		return vb_fail(err, VB_ERR_CONFIG, "config: --set %s: expected "
			       "section.key=value", shown);
	trim(&ks, &ke);
	vs = eq + 1;
	ve = vs + strlen(vs);
	trim(&vs, &ve);

	size_t klen = (size_t)(ke - ks);
	const char *dot = memchr(ks, '.', klen);
	if (klen >= sizeof name || !dot)
		return vb_fail(err, VB_ERR_CONFIG, "config: --set %s: expected "
			       "section.key=value", shown);
	memcpy(name, ks, klen);
	name[klen] = '\0';
	int i = config_key_index(name);
	if (i < 0) {
		name[dot - ks] = '\0';
		unknown_text(name, name + (dot - ks) + 1, expect, sizeof expect);
		return vb_fail(err, VB_ERR_CONFIG, "config: --set %s: %s",
			       shown, expect);
	}

	size_t vlen = (size_t)(ve - vs);
	char *value = malloc(vlen + 1);
	if (!value)
		return vb_fail(err, VB_ERR_NOMEM,
			       "config: --set %s: out of memory", shown);
	memcpy(value, vs, vlen);
	value[vlen] = '\0';
	bool ok = parse_value(&config_keys_table[i], value, c);
	free(value);
	if (ok)
		return VB_OK;
	expect_text(&config_keys_table[i], expect, sizeof expect);
	return vb_fail(err, VB_ERR_CONFIG, "config: --set %s: expected %s",
		       shown, expect);
}

/* ---- public: loading an INI file ---- */

/* State of one config_load_file: the reader counts lines and keeps the
 * raw text, the handler applies keys; the first problem sets failed and
 * makes the reader end the parse. */
struct load_ctx {
	FILE *f;
	const char *path;
	struct config work;        /* copied to the caller only on success */
	char *line;                /* getline buffer: the current raw line */
	size_t line_cap;
	int lineno;                /* of the current line, from 1 */
	int last_key;              /* key of the previous handler call, -1 */
	int first_line[CONFIG_KEYS_MAX]; /* line where each key was set, 0 = not */
	bool failed;
	enum vb_status status;
	int err_line;
	char msg[VB_ERROR_LEN];
};

static char *load_reader(char *str, int num, void *stream)
{
	struct load_ctx *x = stream;
	if (x->failed)
		return NULL;
	errno = 0;
	ssize_t n = getline(&x->line, &x->line_cap, x->f);
	if (n < 0) {
		if (ferror(x->f)) {
			x->failed = true;
			x->status = errno == ENOMEM ? VB_ERR_NOMEM : VB_ERR_IO;
			x->err_line = x->lineno + 1;
			snprintf(x->msg, sizeof x->msg,
				 "config: cannot read %s: %s", x->path,
				 strerror(errno ? errno : EIO));
		}
		return NULL;
	}
	x->lineno++;
	size_t len = (size_t)n;
	size_t max = CONFIG_LINE_MAX;
	if (num > 0 && (size_t)num - 1 < max)
		max = (size_t)num - 1;
	if (memchr(x->line, '\0', len)) {
		x->failed = true;
		x->status = VB_ERR_CONFIG;
		x->err_line = x->lineno;
		snprintf(x->msg, sizeof x->msg, "config: %s:%d: NUL byte, "
			 "expected text", x->path, x->lineno);
		return NULL;
	}
	while (len && (x->line[len - 1] == '\n' || x->line[len - 1] == '\r'))
		len--;
	if (len > max) {
		x->failed = true;
		x->status = VB_ERR_CONFIG;
		x->err_line = x->lineno;
		snprintf(x->msg, sizeof x->msg, "config: %s:%d: line of %zu "
			 "characters, expected at most %zu", x->path,
			 x->lineno, len, max);
		return NULL;
	}
	memcpy(str, x->line, len);
	str[len] = '\0';
	return str;
}

/* Records the first problem as "config: PATH:LINE: " + printf(fmt, ...);
 * returns 0 (inih's "error" from the handler). */
static int load_fail(struct load_ctx *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int load_fail(struct load_ctx *x, const char *fmt, ...)
{
	va_list ap;
	int n;
	x->failed = true;
	x->status = VB_ERR_CONFIG;
	x->err_line = x->lineno;
	n = snprintf(x->msg, sizeof x->msg, "config: %s:%d: ", x->path,
		     x->lineno);
	if (n < 0 || (size_t)n >= sizeof x->msg)
		return 0;
	va_start(ap, fmt);
	vsnprintf(x->msg + n, sizeof x->msg - (size_t)n, fmt, ap);
	va_end(ap);
	return 0;
}

static int load_handler(void *user, const char *section, const char *key,
			const char *value)
{
	struct load_ctx *x = user;
	char what[VB_ERROR_LEN], shown[96], expect[320];
	if (x->failed)
		return 0;
	if (!*section)
		return load_fail(x, "key %.64s outside any section, expected "
				 "a [section] line first", key);
	int k = find_key(section, key);
	if (k < 0) {
		unknown_text(section, key, what, sizeof what);
		return load_fail(x, "%s", what);
	}
	/* inih passes an indented line after a key as more of its value */
	if (k == x->last_key && (x->line[0] == ' ' || x->line[0] == '\t'))
		return load_fail(x, "indented line continues %s, expected "
				 "\"key = value\" (multi-line values are not "
				 "supported)", config_keys_table[k].name);
	if (x->first_line[k])
		return load_fail(x, "%s given twice (first at line %d), "
				 "expected each key once", config_keys_table[k].name,
				 x->first_line[k]);
	x->first_line[k] = x->lineno;
	x->last_key = k;
	if (parse_value(&config_keys_table[k], value, &x->work))
		return 1;
	clip_text(value, shown, sizeof shown);
	expect_text(&config_keys_table[k], expect, sizeof expect);
	return load_fail(x, "%s = \"%s\": expected %s", config_keys_table[k].name, shown,
			 expect);
}

enum vb_status config_load_file(struct config *c, const char *path,
				struct vb_error *err)
{
	struct load_ctx *x = calloc(1, sizeof *x);
	enum vb_status st = VB_OK;
	if (!x)
		return vb_fail(err, VB_ERR_NOMEM, "config: %s: out of memory",
			       path);
	x->f = fopen(path, "r");
	if (!x->f) {
		st = vb_fail(err, VB_ERR_IO, "config: cannot open %s: %s", path,
			     strerror(errno));
		free(x);
		return st;
	}
	x->path = path;
	x->work = *c;
	x->last_key = -1;
	int rc = ini_parse_stream(load_reader, x, load_handler, x);
	if (rc == -2) {
		st = vb_fail(err, VB_ERR_NOMEM, "config: %s: out of memory",
			     path);
	} else if (x->failed && x->status != VB_ERR_CONFIG) {
		st = vb_fail(err, x->status, "%s", x->msg);
	} else if (rc > 0 && (!x->failed || rc < x->err_line)) {
		/* inih found a line that is neither [section], key = value
		 * nor a comment (it does not call the handler for it) */
		st = vb_fail(err, VB_ERR_CONFIG, "config: %s:%d: expected "
			     "\"key = value\", \"[section]\" or a comment",
			     path, rc);
	} else if (x->failed) {
		st = vb_fail(err, x->status, "%s", x->msg);
	} else if (rc != 0) {
		st = vb_fail(err, VB_ERR_INTERNAL, "config: %s: inih returned "
			     "%d", path, rc);
	} else {
		*c = x->work;
	}
	free(x->line);
	fclose(x->f);
	free(x);
	return st;
}

/* ---- public: validation ---- */

/* begin < end (end != -1), and for the synthetic dataset within n. */
/* vb_fail VB_ERR_CONFIG with fmt, whose two %s take the texts of a and b
 * (format_double). */
__attribute__((format(printf, 2, 0)))
static enum vb_status fail_doubles(struct vb_error *err, const char *fmt,
				   double a, double b)
{
	char ta[32], tb[32];
	format_double(a, ta, sizeof ta);
	format_double(b, tb, sizeof tb);
	return vb_fail(err, VB_ERR_CONFIG, fmt, ta, tb);
}

static enum vb_status check_range(const struct config *c, const char *what,
				  int64_t begin, int64_t end, const char *n_key,
				  int64_t n, struct vb_error *err)
{
	if (end != -1 && begin >= end)
		return vb_fail(err, VB_ERR_CONFIG, "config: data.%s_end = %"
			       PRId64 ": expected -1 or > data.%s_begin = %"
			       PRId64, what, end, what, begin);
	if (c->data.dataset != CONFIG_DATASET_SYNTHETIC)
		return VB_OK;
	if (end > n)
		return vb_fail(err, VB_ERR_CONFIG, "config: data.%s_end = %"
			       PRId64 ": expected -1 or <= data.%s = %" PRId64
			       " for the synthetic dataset", what, end, n_key,
			       n);
	if (begin >= n)
		return vb_fail(err, VB_ERR_CONFIG, "config: data.%s_begin = %"
			       PRId64 ": expected < data.%s = %" PRId64
			       " for the synthetic dataset", what, begin, n_key,
			       n);
	return VB_OK;
}

enum vb_status config_validate(const struct config *c, struct vb_error *err)
{
	enum vb_status st = check_all(c, err);
	if (st != VB_OK)
		return st;
	st = check_range(c, "train", c->data.train_begin, c->data.train_end,
			 "synthetic_n", c->data.synthetic_n, err);
	if (st != VB_OK)
		return st;
	st = check_range(c, "eval", c->data.eval_begin, c->data.eval_end,
			 "synthetic_eval_n", c->data.synthetic_eval_n, err);
	if (st != VB_OK)
		return st;
	const struct config_optim *o = &c->optim;
	if (o->kind == OPTIM_SGD && o->nesterov &&
	    (!(o->momentum > 0) || o->dampening != 0))
		return fail_doubles(err, "config: optim.nesterov = true: "
				    "expected optim.momentum > 0 and "
				    "optim.dampening = 0 (have %s and %s)",
				    o->momentum, o->dampening);
	if (o->schedule == OPTIM_SCHEDULE_COSINE && o->min_lr > o->lr)
		return fail_doubles(err, "config: optim.min_lr = %s: expected "
				    "<= optim.lr = %s for the cosine schedule",
				    o->min_lr, o->lr);
	if (o->clip == CONFIG_CLIP_ADAPTIVE && o->clip_warmup > o->clip_window)
		return vb_fail(err, VB_ERR_CONFIG, "config: optim.clip_warmup "
			       "= %lld: expected <= optim.clip_window = %lld "
			       "for adaptive clipping",
			       (long long)o->clip_warmup,
			       (long long)o->clip_window);
	return VB_OK;
}

/* ---- public: writing ---- */

static enum vb_status write_ini(const struct config *c, FILE *f,
				const char *label, struct vb_error *err)
{
	char buf[CONFIG_VALUE_LEN];
	enum vb_status st = check_all(c, err);
	if (st != VB_OK)
		return st;
	for (size_t i = 0; i < config_keys_count; i++) {
		const struct config_keys_def *d = &config_keys_table[i];
		st = format_value(c, d, buf, sizeof buf, err);
		if (st != VB_OK)
			return st;
		if (i == 0 || strcmp(d->section, config_keys_table[i - 1].section) != 0)
			fprintf(f, "%s[%s]\n", i ? "\n" : "", d->section);
		fprintf(f, "%s =%s%s\n", d->key, *buf ? " " : "", buf);
	}
	if (fflush(f) != 0 || ferror(f))
		return vb_fail(err, VB_ERR_IO, "config: cannot write %s: %s",
			       label, strerror(errno ? errno : EIO));
	return VB_OK;
}

enum vb_status config_write(const struct config *c, FILE *f,
			    struct vb_error *err)
{
	return write_ini(c, f, "config stream", err);
}

/* What config_write_file hands to its writer. */
struct ini_job {
	const struct config *c;
	const char *path;
};

static enum vb_status ini_writer(FILE *f, void *ctx, struct vb_error *err)
{
	const struct ini_job *j = ctx;
	return write_ini(j->c, f, j->path, err);
}

enum vb_status config_write_file(const struct config *c, const char *path,
				 struct vb_error *err)
{
	struct vb_error io = {0};
	struct ini_job j = {c, path};
	enum vb_status st = files_write_with(path, ini_writer, &j, true, &io);
	if (st == VB_ERR_IO)
		return vb_fail(err, VB_ERR_IO, "config: cannot create %s (%s)",
			       path, io.msg);
	if (st != VB_OK && err)
		*err = io;
	return st;
}
