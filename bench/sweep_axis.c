/* sweep_axis: one [sweep] axis SPEC expanded into canonical values
 * (lists, A..B ranges, logspace), each checked against the base config
 * (sweep_axis.h). The plan around it (cells, mitigations, ids) is
 * sweep_plan.c. */
#include "sweep_axis.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"

/* ---- small helpers ---- */

char *sweep_axis_trim(char *s)
{
	char *e;
	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

void sweep_axis_free_values(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- axis expansion ---- */

struct value_list {
	char **v;
	size_t n, cap;
};

/* Appends the canonical form of text for key; refuses duplicates. */
static enum vb_status add_value(struct value_list *l, const struct config *base,
				const char *key, const char *spec,
				const char *text, struct vb_error *err)
{
	struct config c = *base;
	struct vb_error e = {0};
	char buf[CONFIG_VALUE_LEN];
	const char *msg;
	if (config_set_key(&c, key, text, &e) != VB_OK) {
		msg = e.msg;
		if (!strncmp(msg, "config: ", 8))
			msg += 8;
		return vb_fail(err, VB_ERR_CONFIG, "sweep: %s", msg);
	}
	if (config_get(&c, key, buf, sizeof buf, err) != VB_OK)
		return VB_ERR_CONFIG;
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], buf))
			return vb_fail(err, VB_ERR_CONFIG,
				       "sweep: %s = \"%s\": value %s appears "
				       "twice", key, spec, buf);
	if (l->n >= SWEEP_AXIS_MAX_VALUES)
		return vb_fail(err, VB_ERR_CONFIG,
			       "sweep: %s = \"%s\": more than %d values", key,
			       spec, SWEEP_AXIS_MAX_VALUES);
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 8;
		char **nv = realloc(l->v, cap * sizeof *nv);
		if (!nv)
			return vb_fail(err, VB_ERR_NOMEM, "sweep: no memory");
		l->v = nv;
		l->cap = cap;
	}
	l->v[l->n] = files_dup_str(buf);
	if (!l->v[l->n])
		return vb_fail(err, VB_ERR_NOMEM, "sweep: no memory");
	l->n++;
	return VB_OK;
}

static bool parse_double(const char *s, double *out)
{
	char *end;
	errno = 0;
	*out = strtod(s, &end);
	return end != s && *sweep_axis_trim(end) == '\0' && errno == 0 &&
	       isfinite(*out);
}

static bool parse_ll(const char *s, long long *out)
{
	char *end;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return end != s && *end == '\0' && errno == 0;
}

/* logspace(A, B, N) / linspace(A, B, N): body is "A, B, N". */
static enum vb_status expand_space(struct value_list *l,
				   const struct config *base, const char *key,
				   const char *spec, char *body, bool logsp,
				   struct vb_error *err)
{
	char *parts[3], *save = NULL;
	double a, b, nd;
	long n;
	int k = 0;
	for (char *t = strtok_r(body, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		if (k == 3) {
			k = 4;
			break;
		}
		parts[k++] = sweep_axis_trim(t);
	}
	if (k != 3 || !parse_double(parts[0], &a) ||
	    !parse_double(parts[1], &b) || !parse_double(parts[2], &nd) ||
	    nd != floor(nd) || nd < 1 || nd > SWEEP_AXIS_MAX_VALUES ||
	    (logsp && (a <= 0 || b <= 0)))
		return vb_fail(err, VB_ERR_CONFIG,
			       "sweep: %s = \"%s\": expected %s(A, B, N) with "
			       "N a whole number 1..%d%s", key, spec,
			       logsp ? "logspace" : "linspace",
			       SWEEP_AXIS_MAX_VALUES, logsp ? " and A, B > 0" : "");
	n = (long)nd;
	for (long i = 0; i < n; i++) {
		double t = n == 1 ? 0.0 : (double)i / (double)(n - 1), v;
		char buf[64];
		enum vb_status st;
		if (logsp)
			v = pow(10.0, log10(a) + t * (log10(b) - log10(a)));
		else
			v = a + t * (b - a);
		if (i == n - 1)
			v = b;
		if (i == 0)
			v = a;
		snprintf(buf, sizeof buf, "%.6g", v);
		st = add_value(l, base, key, spec, buf, err);
		if (st)
			return st;
	}
	return VB_OK;
}

/* A..B or A..B:S with integers. */
static enum vb_status expand_range(struct value_list *l,
				   const struct config *base, const char *key,
				   const char *spec, char *item,
				   struct vb_error *err)
{
	char *dots = strstr(item, ".."), *colon;
	long long a, b, s = 1;
	*dots = '\0';
	colon = strchr(dots + 2, ':');
	if (colon)
		*colon = '\0';
	if (!parse_ll(sweep_axis_trim(item), &a) ||
	    !parse_ll(sweep_axis_trim(dots + 2), &b) ||
	    (colon && !parse_ll(sweep_axis_trim(colon + 1), &s)) || s < 1 ||
	    b < a ||
	    (b - a) / s >= SWEEP_AXIS_MAX_VALUES)
		return vb_fail(err, VB_ERR_CONFIG,
			       "sweep: %s = \"%s\": expected an integer range "
			       "A..B or A..B:S with A <= B, step S >= 1 and "
			       "at most %d values", key, spec,
			       SWEEP_AXIS_MAX_VALUES);
	for (long long v = a; v <= b; v += s) {
		char buf[32];
		enum vb_status st;
		snprintf(buf, sizeof buf, "%lld", v);
		st = add_value(l, base, key, spec, buf, err);
		if (st)
			return st;
		if (b - v < s)
			break;
	}
	return VB_OK;
}

static enum vb_status expand_item(struct value_list *l,
				  const struct config *base, const char *key,
				  const char *spec, char *item,
				  struct vb_error *err)
{
	size_t len = strlen(item);
	bool logsp = !strncmp(item, "logspace(", 9);
	if (len == 0)
		return vb_fail(err, VB_ERR_CONFIG,
			       "sweep: %s = \"%s\": empty value in the list",
			       key, spec);
	if (logsp || !strncmp(item, "linspace(", 9)) {
		if (item[len - 1] != ')')
			return vb_fail(err, VB_ERR_CONFIG,
				       "sweep: %s = \"%s\": missing ')'", key,
				       spec);
		item[len - 1] = '\0';
		return expand_space(l, base, key, spec, item + 9, logsp, err);
	}
	if (strstr(item, ".."))
		return expand_range(l, base, key, spec, item, err);
	return add_value(l, base, key, spec, item, err);
}

enum vb_status sweep_axis_expand(const struct config *base, const char *key,
				 const char *spec, char ***values, size_t *n,
				 struct vb_error *err)
{
	struct value_list l = {0};
	char *buf, *p, *start;
	int depth = 0;
	enum vb_status st = VB_OK;

	*values = NULL;
	*n = 0;
	if (config_key_index(key) < 0)
		return vb_fail(err, VB_ERR_CONFIG,
			       "sweep: unknown key '%s' (see 'vaebench config "
			       "--keys')", key);
	if (!strncmp(key, "run.", 4))
		return vb_fail(err, VB_ERR_CONFIG,
			       "sweep: %s cannot be swept: the sweep sets the "
			       "run.* keys of its cells", key);
	buf = files_dup_str(spec);
	if (!buf)
		return vb_fail(err, VB_ERR_NOMEM, "sweep: no memory");
	if (*sweep_axis_trim(buf) == '\0') {
		free(buf);
		return vb_fail(err, VB_ERR_CONFIG,
			       "sweep: %s: empty axis (expected a list of "
			       "values, A..B or logspace(A, B, N))", key);
	}
	start = buf;
	for (p = buf;; p++) {
		if (*p == '(')
			depth++;
		else if (*p == ')')
			depth--;
		if ((*p == ',' && depth == 0) || *p == '\0') {
			bool last = *p == '\0';
			*p = '\0';
			st = expand_item(&l, base, key, spec,
					 sweep_axis_trim(start), err);
			if (st || last)
				break;
			start = p + 1;
		}
	}
	free(buf);
	if (st) {
		sweep_axis_free_values(l.v, l.n);
		return st;
	}
	*values = l.v;
	*n = l.n;
	return VB_OK;
}
