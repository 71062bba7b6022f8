/* sweep: [sweep] and [mitigations] parsing and grid expansion, stable cell
 * ids, and the scheduler: forked workers (one per cell, BLAS threads from
 * the cell's config), the dataset loaded in the parent before forking so
 * workers share it copy-on-write, cells of the other train.precision run
 * by the sibling binary (--cell), atomic rows, resume and shards. Tables,
 * summary and plots come from table once the cells are done. */

/* wait4 (per-worker peak RSS) is a BSD/GNU call outside POSIX 2008. */
#define _DEFAULT_SOURCE

#include "sweep.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "files.h"
#include "ops.h"
#include "report.h"
#include "table.h"
#include "train.h"

/* ---- small helpers ---- */

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *trim(char *s)
{
	char *e;
	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static char *dup_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

static void free_values(char **v, size_t n)
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
	if (l->n >= SWEEP_MAX_VALUES)
		return vb_fail(err, VB_ERR_CONFIG,
			       "sweep: %s = \"%s\": more than %d values", key,
			       spec, SWEEP_MAX_VALUES);
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 8;
		char **nv = realloc(l->v, cap * sizeof *nv);
		if (!nv)
			return vb_fail(err, VB_ERR_NOMEM, "sweep: no memory");
		l->v = nv;
		l->cap = cap;
	}
	l->v[l->n] = dup_str(buf);
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
	return end != s && *trim(end) == '\0' && errno == 0 && isfinite(*out);
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
		parts[k++] = trim(t);
	}
	if (k != 3 || !parse_double(parts[0], &a) ||
	    !parse_double(parts[1], &b) || !parse_double(parts[2], &nd) ||
	    nd != floor(nd) || nd < 1 || nd > SWEEP_MAX_VALUES ||
	    (logsp && (a <= 0 || b <= 0)))
		return vb_fail(err, VB_ERR_CONFIG,
			       "sweep: %s = \"%s\": expected %s(A, B, N) with "
			       "N a whole number 1..%d%s", key, spec,
			       logsp ? "logspace" : "linspace",
			       SWEEP_MAX_VALUES, logsp ? " and A, B > 0" : "");
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
	if (!parse_ll(trim(item), &a) || !parse_ll(trim(dots + 2), &b) ||
	    (colon && !parse_ll(trim(colon + 1), &s)) || s < 1 || b < a ||
	    (b - a) / s >= SWEEP_MAX_VALUES)
		return vb_fail(err, VB_ERR_CONFIG,
			       "sweep: %s = \"%s\": expected an integer range "
			       "A..B or A..B:S with A <= B, step S >= 1 and "
			       "at most %d values", key, spec,
			       SWEEP_MAX_VALUES);
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
	buf = dup_str(spec);
	if (!buf)
		return vb_fail(err, VB_ERR_NOMEM, "sweep: no memory");
	if (*trim(buf) == '\0') {
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
			st = expand_item(&l, base, key, spec, trim(start), err);
			if (st || last)
				break;
			start = p + 1;
		}
	}
	free(buf);
	if (st) {
		free_values(l.v, l.n);
		return st;
	}
	*values = l.v;
	*n = l.n;
	return VB_OK;
}

/* ---- the plan ---- */

void sweep_plan_free(struct sweep_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_axes; i++)
		free_values(p->axes[i].values, p->axes[i].n_values);
	free(p->axes);
	for (size_t i = 0; i < p->n_mitigations; i++) {
		free(p->mitigations[i].keys);
		free_values(p->mitigations[i].values,
			    p->mitigations[i].n_sets);
	}
	free(p->mitigations);
	free(p->text);
	free(p);
}

/* Replaces the first occurrence of from in msg by to (error messages of
 * config_load_file name the temporary file). */
static void replace_in(char *msg, size_t cap, const char *from, const char *to)
{
	char out[VB_ERROR_LEN];
	char *at = strstr(msg, from);
	if (!at || !*from)
		return;
	snprintf(out, sizeof out, "%.*s%s%s", (int)(at - msg), msg, to,
		 at + strlen(from));
	snprintf(msg, cap, "%s", out);
}

/* Loads the base config from text with the [sweep] lines blanked (line
 * numbers stay those of the file) through a temporary file. */
static enum vb_status load_base(const char *name, const char *base_text,
				struct config *c, struct vb_error *err)
{
	char tmp[] = "/tmp/vaebench-sweep-XXXXXX";
	int fd = mkstemp(tmp);
	size_t len = strlen(base_text);
	enum vb_status st;
	if (fd < 0)
		return vb_fail(err, VB_ERR_IO, "sweep: cannot create a "
			       "temporary file: %s", strerror(errno));
	if (write(fd, base_text, len) != (ssize_t)len) {
		close(fd);
		unlink(tmp);
		return vb_fail(err, VB_ERR_IO, "sweep: cannot write %s", tmp);
	}
	close(fd);
	config_defaults(c);
	st = config_load_file(c, tmp, err);
	unlink(tmp);
	if (st && err)
		replace_in(err->msg, sizeof err->msg, tmp, name);
	if (st == VB_ERR_IO)
		st = VB_ERR_CONFIG;
	return st;
}

/* ---- mitigations ---- */

/* True when line s (trimmed, starting with '[') opens section want. */
static bool section_is(const char *s, const char *want)
{
	const char *e = strchr(s, ']');
	const char *b = s + 1;
	size_t n;
	if (!e)
		return false;
	while (b < e && isspace((unsigned char)*b))
		b++;
	while (e > b && isspace((unsigned char)e[-1]))
		e--;
	n = strlen(want);
	return (size_t)(e - b) == n && !strncmp(b, want, n);
}

static bool valid_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' &&
		    *s != '-')
			return false;
	return true;
}

/* Config key index of an axis, to refuse mitigations that set one. */
static bool is_axis(const struct sweep_plan *p, int key)
{
	for (size_t i = 0; i < p->n_axes; i++)
		if (p->axes[i].key == key)
			return true;
	return false;
}

/* One [mitigations] line "NAME = k=v k=v ..." (s: trimmed, writable). */
static enum vb_status parse_mitigation(struct sweep_plan *p, const char *file,
				       int lineno, char *s,
				       struct vb_error *err)
{
	char *eq = strchr(s, '='), *mname, *rhs, *tok, *save = NULL;
	struct sweep_mitigation *m, *nm;
	struct config scratch;

	if (!eq)
		return vb_fail(err, VB_ERR_CONFIG,
			       "sweep: %s:%d: expected 'NAME = section.key=value "
			       "...' in [mitigations], got '%.200s'", file,
			       lineno, s);
	*eq = '\0';
	mname = trim(s);
	rhs = eq + 1;
	if (!valid_name(mname))
		return vb_fail(err, VB_ERR_CONFIG,
			       "sweep: %s:%d: mitigation name '%.100s': expected "
			       "letters, digits, '.', '_' or '-'", file, lineno,
			       mname);
	if (strlen(mname) >= SWEEP_NAME_LEN)
		return vb_fail(err, VB_ERR_CONFIG,
			       "sweep: %s:%d: mitigation name '%.100s' longer "
			       "than %d characters", file, lineno, mname,
			       SWEEP_NAME_LEN - 1);
	for (size_t i = 0; i < p->n_mitigations; i++)
		if (!strcmp(p->mitigations[i].name, mname))
			return vb_fail(err, VB_ERR_CONFIG,
				       "sweep: %s:%d: mitigation %s given "
				       "twice (first on line %d)", file,
				       lineno, mname, p->mitigations[i].line);
	nm = realloc(p->mitigations, (p->n_mitigations + 1) * sizeof *nm);
	if (!nm)
		return vb_fail(err, VB_ERR_NOMEM, "sweep: no memory");
	p->mitigations = nm;
	m = &nm[p->n_mitigations++];
	memset(m, 0, sizeof *m);
	snprintf(m->name, sizeof m->name, "%s", mname);
	m->line = lineno;
	config_defaults(&scratch);
	for (tok = strtok_r(rhs, " \t", &save); tok;
	     tok = strtok_r(NULL, " \t", &save)) {
		char *teq = strchr(tok, '='), buf[CONFIG_VALUE_LEN], *v;
		struct vb_error e = {0};
		const char *msg;
		int key;
		int *nk;
		char **nv;
		if (*tok == ';' || *tok == '#')
			break; /* a comment */
		if (!teq || teq == tok)
			return vb_fail(err, VB_ERR_CONFIG,
				       "sweep: %s:%d: mitigation %s: "
				       "'%.200s': expected section.key=value",
				       file, lineno, m->name, tok);
		*teq = '\0';
		v = teq + 1;
		key = config_key_index(tok);
		if (key < 0)
			return vb_fail(err, VB_ERR_CONFIG,
				       "sweep: %s:%d: mitigation %s: unknown "
				       "key '%.128s' (see 'vaebench config "
				       "--keys')", file, lineno, m->name, tok);
		if (!strncmp(tok, "run.", 4))
			return vb_fail(err, VB_ERR_CONFIG,
				       "sweep: %s:%d: mitigation %s: %s cannot "
				       "be set by a mitigation: the sweep sets "
				       "the run.* keys of its cells", file,
				       lineno, m->name, tok);
		for (size_t i = 0; i < m->n_sets; i++)
			if (m->keys[i] == key)
				return vb_fail(err, VB_ERR_CONFIG,
					       "sweep: %s:%d: mitigation %s: "
					       "%s given twice", file, lineno,
					       m->name, tok);
		if (config_set_key(&scratch, tok, v, &e) != VB_OK) {
			msg = e.msg;
			if (!strncmp(msg, "config: ", 8))
				msg += 8;
			return vb_fail(err, VB_ERR_CONFIG,
				       "sweep: %s:%d: mitigation %s: %s", file,
				       lineno, m->name, msg);
		}
		if (config_get(&scratch, tok, buf, sizeof buf, err) != VB_OK)
			return VB_ERR_CONFIG;
		nk = realloc(m->keys, (m->n_sets + 1) * sizeof *nk);
		if (nk)
			m->keys = nk;
		nv = nk ? realloc(m->values, (m->n_sets + 1) * sizeof *nv)
			: NULL;
		if (nv)
			m->values = nv;
		if (!nk || !nv || !(nv[m->n_sets] = dup_str(buf)))
			return vb_fail(err, VB_ERR_NOMEM, "sweep: no memory");
		nk[m->n_sets] = key;
		m->n_sets++;
	}
	return VB_OK;
}

/* Base plus mitigation m (its values are canonical and were checked). */
static enum vb_status apply_mitigation(const struct sweep_mitigation *m,
				       struct config *c, struct vb_error *err)
{
	for (size_t i = 0; i < m->n_sets; i++) {
		struct vb_error e = {0};
		if (config_set_key(c, config_key_name((size_t)m->keys[i]),
				   m->values[i], &e) != VB_OK)
			return vb_fail(err, VB_ERR_CONFIG, "sweep: %s", e.msg);
	}
	return VB_OK;
}

/* Once the base and the axes are known: no mitigation sets an axis, and
 * no two resolve to the same settings (run.* keys aside). */
static enum vb_status check_mitigations(const struct sweep_plan *p,
					const char *file,
					struct vb_error *err)
{
	struct config *res;
	enum vb_status st = VB_OK;
	if (!p->n_mitigations)
		return VB_OK;
	res = malloc(p->n_mitigations * sizeof *res);
	if (!res)
		return vb_fail(err, VB_ERR_NOMEM, "sweep: no memory");
	for (size_t i = 0; st == VB_OK && i < p->n_mitigations; i++) {
		const struct sweep_mitigation *m = &p->mitigations[i];
		for (size_t k = 0; st == VB_OK && k < m->n_sets; k++)
			if (is_axis(p, m->keys[k]))
				st = vb_fail(err, VB_ERR_CONFIG,
					     "sweep: %s:%d: mitigation %s sets "
					     "%s, which is also a [sweep] axis",
					     file, m->line, m->name,
					     config_key_name((size_t)
								     m->keys[k]));
		res[i] = p->base;
		if (st == VB_OK)
			st = apply_mitigation(m, &res[i], err);
		for (size_t j = 0; st == VB_OK && j < i; j++) {
			bool same = true;
			for (size_t k = 0; same && k < config_key_count(); k++) {
				char a[CONFIG_VALUE_LEN], b[CONFIG_VALUE_LEN];
				if (!strncmp(config_key_name(k), "run.", 4))
					continue;
				if (config_get_at(&res[i], k, a, sizeof a,
						  NULL) ||
				    config_get_at(&res[j], k, b, sizeof b,
						  NULL) ||
				    strcmp(a, b))
					same = false;
			}
			if (same)
				st = vb_fail(err, VB_ERR_CONFIG,
					     "sweep: %s:%d: mitigation %s "
					     "resolves to the same settings as "
					     "%s (line %d)", file, m->line,
					     m->name, p->mitigations[j].name,
					     p->mitigations[j].line);
		}
	}
	free(res);
	return st;
}

enum vb_status sweep_plan_parse(const char *name, const char *text,
				struct sweep_plan **out, struct vb_error *err)
{
	struct sweep_plan *p = calloc(1, sizeof *p);
	size_t len = strlen(text);
	char *base = malloc(len + 2);
	char *bp;
	bool in_sweep = false, in_mitig = false;
	int lineno = 0, mitig_line = 0;
	enum vb_status st = VB_OK;
	const char *cur = text;

	*out = NULL;
	if (!p || !base) {
		free(p);
		free(base);
		return vb_fail(err, VB_ERR_NOMEM, "sweep: no memory");
	}
	p->n_cells = 1;
	p->text = dup_str(text);
	p->text_len = len;
	bp = base;
	/* Walk the lines by hand (strtok would merge empty lines). */
	while (st == VB_OK && *cur) {
		const char *nl = strchr(cur, '\n');
		size_t ll = nl ? (size_t)(nl - cur) : strlen(cur);
		char lbuf[4096], *s;
		lineno++;
		if (ll >= sizeof lbuf) {
			st = vb_fail(err, VB_ERR_CONFIG, "sweep: %s:%d: line "
				     "longer than %zu characters", name,
				     lineno, sizeof lbuf - 1);
			break;
		}
		memcpy(lbuf, cur, ll);
		lbuf[ll] = '\0';
		cur += ll + (nl ? 1 : 0);
		s = trim(lbuf);
		if (*s == '[') {
			in_sweep = section_is(s, "sweep");
			in_mitig = section_is(s, "mitigations");
			if (in_mitig && !mitig_line)
				mitig_line = lineno;
		}
		if (in_mitig) {
			*bp++ = '\n';
			if (*s == '[' || *s == '\0' || *s == ';' || *s == '#')
				continue;
			st = parse_mitigation(p, name, lineno, s, err);
			continue;
		}
		if (in_sweep) {
			*bp++ = '\n';
			if (*s == '[' || *s == '\0' || *s == ';' || *s == '#')
				continue;
			char *eq = strchr(s, '='), *key, *spec, *cm;
			struct sweep_axis *na;
			struct vb_error e = {0};
			if (!eq) {
				st = vb_fail(err, VB_ERR_CONFIG,
					     "sweep: %s:%d: expected "
					     "'section.key = values', got "
					     "'%s'", name, lineno, s);
				break;
			}
			*eq = '\0';
			key = trim(s);
			spec = eq + 1;
			cm = strstr(spec, " ;");
			if (cm)
				*cm = '\0';
			spec = trim(spec);
			for (size_t i = 0; i < p->n_axes; i++)
				if (!strcmp(config_key_name((size_t)p->axes[i].key),
					    key)) {
					st = vb_fail(err, VB_ERR_CONFIG,
						     "sweep: %s:%d: axis %s "
						     "given twice", name,
						     lineno, key);
					break;
				}
			if (st)
				break;
			na = realloc(p->axes, (p->n_axes + 1) * sizeof *na);
			if (!na) {
				st = vb_fail(err, VB_ERR_NOMEM,
					     "sweep: no memory");
				break;
			}
			p->axes = na;
			memset(&na[p->n_axes], 0, sizeof *na);
			/* Values are checked against the defaults here and
			 * against the base config below, once it is read. */
			config_defaults(&p->base);
			st = sweep_axis_expand(&p->base, key, spec,
					       &na[p->n_axes].values,
					       &na[p->n_axes].n_values, &e);
			if (st) {
				const char *m = e.msg;
				if (!strncmp(m, "sweep: ", 7))
					m += 7;
				vb_fail(err, st, "sweep: %s:%d: %s", name,
					lineno, m);
				break;
			}
			na[p->n_axes].key = config_key_index(key);
			if (p->n_cells > SWEEP_MAX_CELLS /
						 na[p->n_axes].n_values) {
				p->n_axes++;
				st = vb_fail(err, VB_ERR_CONFIG,
					     "sweep: %s:%d: the grid has more "
					     "than %d cells", name, lineno,
					     SWEEP_MAX_CELLS);
				break;
			}
			p->n_cells *= na[p->n_axes].n_values;
			p->n_axes++;
			continue;
		}
		memcpy(bp, cur - ll - (nl ? 1 : 0), ll);
		bp += ll;
		*bp++ = '\n';
	}
	*bp = '\0';
	if (st == VB_OK && mitig_line && !p->n_mitigations)
		st = vb_fail(err, VB_ERR_CONFIG, "sweep: %s:%d: [mitigations] "
			     "has no mitigation (expected lines 'NAME = "
			     "section.key=value ...', 'baseline =' for the "
			     "base config)", name, mitig_line);
	if (st == VB_OK && p->n_mitigations &&
	    p->n_cells > SWEEP_MAX_CELLS / p->n_mitigations)
		st = vb_fail(err, VB_ERR_CONFIG, "sweep: %s:%d: the grid has "
			     "more than %d cells", name, mitig_line,
			     SWEEP_MAX_CELLS);
	if (st == VB_OK && p->n_mitigations)
		p->n_cells *= p->n_mitigations;
	if (st == VB_OK)
		st = load_base(name, base, &p->base, err);
	free(base);
	if (st == VB_OK)
		st = check_mitigations(p, name, err);
	/* Every cell resolved and validated now: nothing runs on a bad grid. */
	for (size_t i = 0; st == VB_OK && i < p->n_cells; i++) {
		struct config c;
		char id[SWEEP_ID_LEN], where[SWEEP_NAME_LEN + 48] = "";
		struct vb_error e = {0};
		st = sweep_plan_cell(p, i, &c, id, &e);
		if (st == VB_OK)
			st = config_validate(&c, &e);
		if (st) {
			const char *m = e.msg;
			if (!strncmp(m, "config: ", 8))
				m += 8;
			if (p->n_mitigations)
				snprintf(where, sizeof where,
					 " (mitigation %s, line %d)",
					 sweep_plan_mitigation(p, i),
					 p->mitigations[i / (p->n_cells /
							     p->n_mitigations)]
						 .line);
			vb_fail(err, st, "sweep: %s: cell %zu%s: %s", name, i,
				where, m);
		}
	}
	if (st) {
		sweep_plan_free(p);
		return st;
	}
	*out = p;
	return VB_OK;
}

enum vb_status sweep_plan_load(const char *path, struct sweep_plan **out,
			       struct vb_error *err)
{
	FILE *f = fopen(path, "rb");
	char *text = NULL;
	size_t len = 0;
	FILE *m;
	enum vb_status st;
	int ch;
	*out = NULL;
	if (!f)
		return vb_fail(err, VB_ERR_IO, "sweep: cannot open %s: %s",
			       path, strerror(errno));
	m = open_memstream(&text, &len);
	if (!m) {
		fclose(f);
		return vb_fail(err, VB_ERR_NOMEM, "sweep: no memory");
	}
	while ((ch = fgetc(f)) != EOF)
		fputc(ch == '\r' ? '\n' : ch, m);
	fclose(m);
	if (ferror(f)) {
		fclose(f);
		free(text);
		return vb_fail(err, VB_ERR_IO, "sweep: cannot read %s", path);
	}
	fclose(f);
	if (memchr(text, '\0', len)) {
		free(text);
		return vb_fail(err, VB_ERR_CONFIG, "sweep: %s: not a text "
			       "file", path);
	}
	st = sweep_plan_parse(path, text, out, err);
	free(text);
	return st;
}

void sweep_cell_id(const struct config *c, char id[SWEEP_ID_LEN])
{
	struct config d;
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 offset basis */
	config_defaults(&d);
	for (size_t i = 0; i < config_key_count(); i++) {
		char a[CONFIG_VALUE_LEN], b[CONFIG_VALUE_LEN];
		const char *name = config_key_name(i);
		if (!strncmp(name, "run.", 4))
			continue;
		if (config_get_at(c, i, a, sizeof a, NULL) ||
		    config_get_at(&d, i, b, sizeof b, NULL) || !strcmp(a, b))
			continue;
		for (const char *s = name; *s; s++)
			h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
		h = (h ^ '=') * 0x100000001b3ull;
		for (const char *s = a; *s; s++)
			h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
		h = (h ^ '\n') * 0x100000001b3ull;
	}
	snprintf(id, SWEEP_ID_LEN, "%016llx", (unsigned long long)h);
}

enum vb_status sweep_plan_cell(const struct sweep_plan *p, size_t index,
			       struct config *c, char id[SWEEP_ID_LEN],
			       struct vb_error *err)
{
	size_t rest = index;
	if (index >= p->n_cells)
		return vb_fail(err, VB_ERR_INTERNAL, "sweep: cell %zu of %zu",
			       index, p->n_cells);
	*c = p->base;
	if (p->n_mitigations) {
		size_t per = p->n_cells / p->n_mitigations;
		enum vb_status st = apply_mitigation(
			&p->mitigations[index / per], c, err);
		if (st)
			return st;
		rest = index % per;
	}
	for (size_t a = p->n_axes; a-- > 0;) {
		const struct sweep_axis *ax = &p->axes[a];
		size_t k = rest % ax->n_values;
		enum vb_status st;
		struct vb_error e = {0};
		rest /= ax->n_values;
		st = config_set_key(c, config_key_name((size_t)ax->key),
				    ax->values[k], &e);
		if (st)
			return vb_fail(err, st, "sweep: %s", e.msg);
	}
	sweep_cell_id(c, id);
	return VB_OK;
}

const char *sweep_plan_mitigation(const struct sweep_plan *p, size_t index)
{
	if (!p->n_mitigations || index >= p->n_cells)
		return "";
	return p->mitigations[index / (p->n_cells / p->n_mitigations)].name;
}

enum vb_status sweep_parse_shard(const char *s, int *k, int *n,
				 struct vb_error *err)
{
	long a, b;
	char *end;
	errno = 0;
	a = strtol(s, &end, 10);
	if (end != s && *end == '/') {
		const char *t = end + 1;
		b = strtol(t, &end, 10);
		if (end != t && *end == '\0' && errno == 0 && b >= 1 &&
		    a >= 1 && a <= b && b <= 1000000) {
			*k = (int)a;
			*n = (int)b;
			return VB_OK;
		}
	}
	return vb_fail(err, VB_ERR_USAGE, "sweep: --shard '%s': expected K/N "
		       "with 1 <= K <= N", s);
}

/* ---- running ---- */

struct job {
	pid_t pid;
	size_t cell;
	char id[SWEEP_ID_LEN];
};

struct sched {
	const struct sweep_plan *p;
	const struct sweep_options *o;
	char runs_dir[CONFIG_PATH_LEN], rows_dir[CONFIG_PATH_LEN];
	struct train_data data;
	bool have_data;
	char data_key[8192];
	struct job *jobs;
	int n_running;
	size_t total, done, nonfinite, errors, lost;
	double t0;
	bool live;
	long max_rss;
	double sum_rss;
	size_t n_rss;
	char first_lost[160];
	char sibling[PATH_MAX]; /* "" until a cell needs it */
};

/* The settings that decide what train_data_load loads: data.* and, for
 * the synthetic set, the seed. */
static void data_key(const struct config *c, char *buf, size_t cap)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < config_key_count(); i++) {
		const char *name = config_key_name(i);
		char v[CONFIG_VALUE_LEN];
		bool seed = !strcmp(name, "train.seed") &&
			    c->data.dataset == CONFIG_DATASET_SYNTHETIC;
		if (strncmp(name, "data.", 5) && !seed)
			continue;
		config_get_at(c, i, v, sizeof v, NULL);
		used += (size_t)snprintf(buf + used, used < cap ? cap - used : 0,
					 "%s=%s\n", name, v);
	}
}

static bool file_exists(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0;
}

static void row_path(const struct sched *s, const char *id, char *buf,
		     size_t cap)
{
	snprintf(buf, cap, "%s/%s.csv", s->rows_dir, id);
}

/* Writes the row of a finished cell atomically (worker side). */
static enum vb_status write_row(const struct sched *s, const char *id,
				size_t cell, const struct config *c,
				const struct train_summary *sum)
{
	char path[1200], tmp[1300];
	FILE *f;
	enum vb_status st;
	row_path(s, id, path, sizeof path);
	snprintf(tmp, sizeof tmp, "%s/.%s.csv.tmp.%ld", s->rows_dir, id,
		 (long)getpid());
	f = fopen(tmp, "w");
	if (!f)
		return VB_ERR_IO;
	st = table_row_write(f, id, cell, sweep_plan_mitigation(s->p, cell),
			     c, sum, NULL);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		st = VB_ERR_IO;
	if (fclose(f) != 0)
		st = VB_ERR_IO;
	if (st == VB_OK && rename(tmp, path) != 0)
		st = VB_ERR_IO;
	if (st)
		remove(tmp);
	return st;
}

static void worker_main(const struct sched *s, size_t cell, const char *id,
			pid_t parent)
{
	struct config c;
	struct train_summary sum;
	struct vb_error e = {0};
	enum vb_status st;
	/* A killed sweep takes its workers with it: no orphan keeps writing
	 * into a run folder that the restarted sweep runs again. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(3);
	if (sweep_plan_cell(s->p, cell, &c, (char[SWEEP_ID_LEN]){0}, &e))
		_exit(2);
	snprintf(c.run.out_dir, sizeof c.run.out_dir, "%s", s->runs_dir);
	snprintf(c.run.name, sizeof c.run.name, "%s", id);
	c.run.progress = CONFIG_PROGRESS_OFF;
	op_blas_set_threads((int)c.train.blas_threads);
	st = train_run(&c, &s->data, &sum, NULL, &e);
	if (st != VB_OK) {
		sum.status = GUARD_STATUS_ERROR;
		snprintf(sum.message, sizeof sum.message, "%.200s", e.msg);
	}
	_exit(write_row(s, id, cell, &c, &sum) == VB_OK ? 0 : 1);
}

/* A cell of the other precision: the sibling binary runs it into the same
 * folder ("sweep DIR/sweep.ini --out DIR --cell INDEX"), as this worker
 * process (its rusage and exit are the cell's). */
static void sibling_worker_main(const struct sched *s, size_t cell,
				pid_t parent)
{
	char ini[CONFIG_PATH_LEN + 16], idx[32];
	char *argv[11];
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(3);
	snprintf(ini, sizeof ini, "%s/sweep.ini", s->o->out_dir);
	snprintf(idx, sizeof idx, "%zu", cell);
	argv[0] = (char *)s->sibling;
	argv[1] = (char *)"sweep";
	argv[2] = ini;
	argv[3] = (char *)"--out";
	argv[4] = (char *)s->o->out_dir;
	argv[5] = (char *)"--cell";
	argv[6] = idx;
	argv[7] = (char *)"--jobs";
	argv[8] = (char *)"1";
	argv[9] = (char *)"-q";
	argv[10] = NULL;
	execv(s->sibling, argv);
	_exit(127);
}

bool sweep_precision_here(int precision)
{
	switch (precision) {
	case CONFIG_PRECISION_NATIVE:
		return true;
#ifdef VB_DOUBLE
	case CONFIG_PRECISION_F64:
		return true;
	default:
		return false;
#else
	case CONFIG_PRECISION_F64:
		return false;
	default:
		return true;
#endif
	}
}

enum vb_status sweep_sibling_binary(int precision, char *path, size_t cap,
				    struct vb_error *err)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	const char *want = precision == CONFIG_PRECISION_F64 ? "vaebench-f64"
							     : "vaebench";
	const char *pname = config_enum_name("train.precision", precision);
	char *slash;
	if (n <= 0)
		return vb_fail(err, VB_ERR_CONFIG, "sweep: train.precision = "
			       "%s needs %s next to this binary, but "
			       "/proc/self/exe cannot be read: %s",
			       pname ? pname : "?", want, strerror(errno));
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash)
		slash[1] = '\0';
	else
		self[0] = '\0';
	if ((size_t)snprintf(path, cap, "%s%s", self, want) >= cap)
		return vb_fail(err, VB_ERR_CONFIG, "sweep: path of %s too "
			       "long", want);
	if (access(path, X_OK) != 0)
		return vb_fail(err, VB_ERR_CONFIG, "sweep: train.precision = "
			       "%s needs %s, which is missing or not "
			       "executable (build the target %s)",
			       pname ? pname : "?", path, want);
	return VB_OK;
}

/* Checks that a cell of precision can run: here, or through the sibling
 * binary (found once). */
static enum vb_status check_precision(struct sched *s, size_t cell,
				      int precision, struct vb_error *err)
{
	if (sweep_precision_here(precision))
		return VB_OK;
	if (s->o->one_cell)
		return vb_fail(err, VB_ERR_CONFIG, "sweep: cell %zu has "
			       "train.precision = %s, which this binary (%s) "
			       "does not compute", cell,
			       config_enum_name("train.precision", precision),
			       VB_REAL_NAME);
	if (s->sibling[0])
		return VB_OK;
	return sweep_sibling_binary(precision, s->sibling, sizeof s->sibling,
				    err);
}

static enum vb_status ensure_data(struct sched *s, const struct config *c,
				  struct vb_error *err)
{
	char key[sizeof s->data_key];
	enum vb_status st;
	data_key(c, key, sizeof key);
	if (s->have_data && !strcmp(key, s->data_key))
		return VB_OK;
	if (s->have_data)
		train_data_free(&s->data);
	s->have_data = false;
	st = train_data_load(c, &s->data, err);
	if (st == VB_ERR_IO && err)
		err->status = st = VB_ERR_DATA;
	if (st)
		return st;
	s->have_data = true;
	snprintf(s->data_key, sizeof s->data_key, "%s", key);
	return VB_OK;
}

static void fmt_duration(double sec, char *buf, size_t cap)
{
	long t = (long)(sec + 0.5);
	if (t >= 3600)
		snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60,
			 t % 60);
	else
		snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
}

/* Status of a finished cell from its row; "" if there is none. */
static void row_status(const struct sched *s, const char *id, char *status,
		       size_t cap, char *where, size_t wcap)
{
	char path[1200];
	struct table t;
	table_init(&t);
	status[0] = where[0] = '\0';
	row_path(s, id, path, sizeof path);
	if (table_read(path, &t, NULL) == VB_OK && t.n_rows == 1) {
		snprintf(status, cap, "%s", table_get(&t, 0, "status"));
		if (table_get(&t, 0, "first_epoch")[0])
			snprintf(where, wcap, " at epoch %s, step %s (%s %s)",
				 table_get(&t, 0, "first_epoch"),
				 table_get(&t, 0, "first_step"),
				 table_get(&t, 0, "first_phase"),
				 table_get(&t, 0, "first_quantity"));
		else if (!strcmp(status, "error"))
			snprintf(where, wcap, ": %s",
				 table_get(&t, 0, "message"));
	}
	table_free(&t);
}

static void cell_label(const struct sweep_plan *p, size_t cell, char *buf,
		       size_t cap)
{
	size_t used = 0, rest = cell;
	char parts[16][256];
	size_t na = p->n_axes < 16 ? p->n_axes : 16;
	buf[0] = '\0';
	if (p->n_mitigations) {
		used = (size_t)snprintf(buf, cap, "%s%s",
					sweep_plan_mitigation(p, cell),
					p->n_axes ? " " : "");
		rest = cell % (p->n_cells / p->n_mitigations);
	}
	for (size_t a = p->n_axes; a-- > 0;) {
		size_t k = rest % p->axes[a].n_values;
		rest /= p->axes[a].n_values;
		if (a < na)
			snprintf(parts[a], sizeof parts[a], "%s=%s",
				 config_key_name((size_t)p->axes[a].key),
				 p->axes[a].values[k]);
	}
	for (size_t a = 0; a < na; a++)
		used += (size_t)snprintf(buf + used,
					 used < cap ? cap - used : 0, "%s%s",
					 a ? " " : "", parts[a]);
}

static void show_progress(struct sched *s, const struct job *j)
{
	FILE *log = s->o->log;
	double el = now_seconds() - s->t0;
	double eta = s->done ? el / (double)s->done *
				       (double)(s->total - s->done)
			     : 0;
	char st[32], where[400], label[1024], eta_s[32], el_s[32];
	if (!log)
		return;
	row_status(s, j->id, st, sizeof st, where, sizeof where);
	fmt_duration(eta, eta_s, sizeof eta_s);
	fmt_duration(el, el_s, sizeof el_s);
	if (s->live) {
		fprintf(log, "\rsweep: %zu/%zu cells, %zu NaN/Inf, %zu "
			"error(s), %s elapsed, ETA %s   ", s->done, s->total,
			s->nonfinite, s->errors + s->lost, el_s, eta_s);
	} else {
		cell_label(s->p, j->cell, label, sizeof label);
		fprintf(log, "sweep: [%zu/%zu] %s %s: %s%s (ETA %s)\n",
			s->done, s->total, j->id, label,
			st[0] ? st : "no row", where, eta_s);
	}
	fflush(log);
}

static void collect(struct sched *s, pid_t pid, int wstatus,
		    const struct rusage *ru)
{
	int i;
	char st[32], where[400];
	for (i = 0; i < s->o->jobs; i++)
		if (s->jobs[i].pid == pid)
			break;
	if (i == s->o->jobs)
		return;
	s->jobs[i].pid = 0;
	s->n_running--;
	s->done++;
	if (ru->ru_maxrss > s->max_rss)
		s->max_rss = ru->ru_maxrss;
	s->sum_rss += (double)ru->ru_maxrss;
	s->n_rss++;
	row_status(s, s->jobs[i].id, st, sizeof st, where, sizeof where);
	if (!st[0]) {
		if (!s->lost)
			snprintf(s->first_lost, sizeof s->first_lost,
				 "cell %s, worker %s %d", s->jobs[i].id,
				 WIFSIGNALED(wstatus) ? "killed by signal"
						      : "exit status",
				 WIFSIGNALED(wstatus) ? WTERMSIG(wstatus)
						      : WEXITSTATUS(wstatus));
		s->lost++;
	} else if (!strcmp(st, "nan") || !strcmp(st, "inf")) {
		s->nonfinite++;
	} else if (!strcmp(st, "error")) {
		s->errors++;
	}
	show_progress(s, &s->jobs[i]);
}

static enum vb_status check_sweep_file(const char *dir,
				       const struct sweep_plan *p,
				       struct vb_error *err)
{
	char path[1200], tmp[1300];
	FILE *f;
	snprintf(path, sizeof path, "%s/sweep.ini", dir);
	f = fopen(path, "rb");
	if (f) {
		char *old = malloc(p->text_len + 2);
		size_t n = old ? fread(old, 1, p->text_len + 1, f) : 0;
		bool same = old && n == p->text_len &&
			    !memcmp(old, p->text, n);
		free(old);
		fclose(f);
		if (!same)
			return vb_fail(err, VB_ERR_USAGE,
				       "sweep: %s holds a different sweep "
				       "(%s); use another --out folder or "
				       "remove it", dir, path);
		return VB_OK;
	}
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	f = fopen(tmp, "wb");
	if (!f || fwrite(p->text, 1, p->text_len, f) != p->text_len ||
	    fclose(f) != 0 || rename(tmp, path) != 0) {
		remove(tmp);
		return vb_fail(err, VB_ERR_IO, "sweep: cannot write %s",
			       path);
	}
	return VB_OK;
}

enum vb_status sweep_report(const struct sweep_options *o,
			    struct vb_error *err)
{
	enum vb_status st = report_write_machine(o->out_dir, o->jobs, err);
	if (st == VB_OK)
		st = report_rebuild(o->out_dir, o->map_x, o->map_y, err);
	return st;
}

enum vb_status sweep_pending(const struct sweep_plan *p,
			     const struct sweep_options *o, size_t **cells,
			     size_t *n, struct vb_error *err)
{
	char runs[CONFIG_PATH_LEN], rows[CONFIG_PATH_LEN], sibling[PATH_MAX];
	enum vb_status st;
	sibling[0] = '\0';
	*cells = NULL;
	*n = 0;
	if (strlen(o->out_dir) + 6 >= sizeof runs)
		return vb_fail(err, VB_ERR_USAGE, "sweep: --out folder name "
			       "too long");
	snprintf(runs, sizeof runs, "%s/runs", o->out_dir);
	snprintf(rows, sizeof rows, "%s/rows", o->out_dir);
	st = files_mkdirs(runs, err);
	if (st == VB_OK)
		st = files_mkdirs(rows, err);
	if (st == VB_OK)
		st = check_sweep_file(o->out_dir, p, err);
	if (st)
		return st;
	*cells = malloc((p->n_cells + 1) * sizeof **cells);
	if (!*cells)
		return vb_fail(err, VB_ERR_NOMEM, "sweep: no memory");
	for (size_t i = 0; i < p->n_cells; i++) {
		struct config c;
		char id[SWEEP_ID_LEN], path[CONFIG_PATH_LEN + SWEEP_ID_LEN + 8];
		if (i % (size_t)o->shard_n != (size_t)(o->shard_k - 1))
			continue;
		st = sweep_plan_cell(p, i, &c, id, err);
		if (st)
			break;
		snprintf(path, sizeof path, "%s/%s.csv", rows, id);
		if (file_exists(path))
			continue;
		(*cells)[(*n)++] = i;
		if (!sweep_precision_here(c.train.precision) && !sibling[0])
			st = sweep_sibling_binary(c.train.precision, sibling,
						  sizeof sibling, err);
		if (st)
			break;
	}
	if (st) {
		free(*cells);
		*cells = NULL;
		*n = 0;
	}
	return st;
}

enum vb_status sweep_run(const struct sweep_plan *p,
			 const struct sweep_options *o,
			 struct sweep_stats *stats, struct vb_error *err)
{
	struct sched s;
	size_t *pending = NULL, n_pending = 0, next = 0;
	enum vb_status st = VB_OK;
	pid_t self = getpid();
	struct sweep_stats dummy;

	if (!stats)
		stats = &dummy;
	memset(stats, 0, sizeof *stats);
	memset(&s, 0, sizeof s);
	if (o->jobs < 1 || o->shard_n < 1 || o->shard_k < 1 ||
	    o->shard_k > o->shard_n)
		return vb_fail(err, VB_ERR_USAGE, "sweep: bad jobs or shard");
	s.p = p;
	s.o = o;
	if (strlen(o->out_dir) + 6 >= sizeof s.runs_dir)
		return vb_fail(err, VB_ERR_USAGE, "sweep: --out folder name "
			       "longer than %zu characters",
			       sizeof s.runs_dir - 7);
	snprintf(s.runs_dir, sizeof s.runs_dir, "%s/runs", o->out_dir);
	snprintf(s.rows_dir, sizeof s.rows_dir, "%s/rows", o->out_dir);
	st = files_mkdirs(s.runs_dir, err);
	if (st == VB_OK)
		st = files_mkdirs(s.rows_dir, err);
	if (st == VB_OK)
		st = check_sweep_file(o->out_dir, p, err);
	if (st)
		return st;
	pending = malloc((p->n_cells + 1) * sizeof *pending);
	s.jobs = calloc((size_t)o->jobs, sizeof *s.jobs);
	if (!pending || !s.jobs) {
		free(pending);
		free(s.jobs);
		return vb_fail(err, VB_ERR_NOMEM, "sweep: no memory");
	}
	stats->n_cells = p->n_cells;
	if (o->one_cell && o->cell >= p->n_cells)
		st = vb_fail(err, VB_ERR_USAGE, "sweep: --cell %zu: the grid "
			     "has %zu cells", o->cell, p->n_cells);
	for (size_t i = 0; st == VB_OK && !o->next_cell && i < p->n_cells;
	     i++) {
		struct config c;
		char id[SWEEP_ID_LEN], path[1200];
		if (o->one_cell ? i != o->cell
				: i % (size_t)o->shard_n !=
					  (size_t)(o->shard_k - 1))
			continue;
		stats->n_shard++;
		st = sweep_plan_cell(p, i, &c, id, err);
		if (st)
			break;
		row_path(&s, id, path, sizeof path);
		if (file_exists(path)) {
			stats->n_done++;
		} else {
			pending[n_pending++] = i;
			/* a missing sibling binary stops the sweep here,
			 * before any cell runs */
			st = check_precision(&s, i, c.train.precision, err);
		}
	}
	s.total = n_pending;
	s.live = o->log && (o->progress == CONFIG_PROGRESS_ON ||
			    (o->progress == CONFIG_PROGRESS_AUTO &&
			     isatty(fileno(o->log))));
	if (st == VB_OK && o->log)
		fprintf(o->log, "sweep: %zu cells in the grid, %zu in shard "
			"%d/%d, %zu already done, %zu to run on %d worker(s)"
			"\n", p->n_cells, stats->n_shard, o->shard_k,
			o->shard_n, stats->n_done, n_pending, o->jobs);
	s.t0 = now_seconds();
	bool more = o->next_cell != NULL;
	while (st == VB_OK &&
	       (next < n_pending || more || s.n_running > 0)) {
		while (st == VB_OK && s.n_running < o->jobs &&
		       (next < n_pending || more)) {
			struct config c;
			char id[SWEEP_ID_LEN];
			int slot = 0;
			pid_t pid;
			size_t cell;
			if (o->next_cell) {
				more = o->next_cell(o->next_ctx, &cell);
				if (!more)
					break;
				s.total++;
			} else {
				cell = pending[next++];
			}
			st = sweep_plan_cell(p, cell, &c, id, err);
			if (st == VB_OK)
				st = check_precision(&s, cell,
						     c.train.precision, err);
			if (st == VB_OK &&
			    sweep_precision_here(c.train.precision))
				st = ensure_data(&s, &c, err);
			if (st)
				break;
			while (s.jobs[slot].pid)
				slot++;
			if (o->log)
				fflush(o->log);
			pid = fork();
			if (pid < 0) {
				st = vb_fail(err, VB_ERR_INTERNAL,
					     "sweep: fork failed: %s",
					     strerror(errno));
				break;
			}
			if (pid == 0 &&
			    !sweep_precision_here(c.train.precision))
				sibling_worker_main(&s, cell, self);
			if (pid == 0)
				worker_main(&s, cell, id, self);
			s.jobs[slot].pid = pid;
			s.jobs[slot].cell = cell;
			memcpy(s.jobs[slot].id, id, SWEEP_ID_LEN);
			s.n_running++;
		}
		if (s.n_running > 0) {
			int ws;
			struct rusage ru;
			pid_t pid = wait4(-1, &ws, 0, &ru);
			if (pid < 0) {
				if (errno == EINTR)
					continue;
				break;
			}
			collect(&s, pid, ws, &ru);
		}
	}
	/* On an error above, let the running workers finish their rows. */
	while (s.n_running > 0) {
		int ws;
		struct rusage ru;
		pid_t pid = wait4(-1, &ws, 0, &ru);
		if (pid < 0 && errno != EINTR)
			break;
		if (pid > 0)
			collect(&s, pid, ws, &ru);
	}
	if (s.live)
		fputc('\n', o->log);
	stats->seconds = now_seconds() - s.t0;
	stats->n_run = s.done - s.lost;
	stats->n_lost = s.lost;
	stats->max_rss_kb = s.max_rss;
	stats->mean_rss_kb = s.n_rss ? s.sum_rss / (double)s.n_rss : 0;
	if (s.have_data)
		train_data_free(&s.data);
	/* Status counts over the whole shard, earlier rows included. */
	for (size_t i = 0; st == VB_OK && !o->no_report && !o->one_cell &&
			   i < p->n_cells;
	     i++) {
		struct config c;
		char id[SWEEP_ID_LEN], rs[32], where[400];
		if (i % (size_t)o->shard_n != (size_t)(o->shard_k - 1))
			continue;
		sweep_plan_cell(p, i, &c, id, NULL);
		row_status(&s, id, rs, sizeof rs, where, sizeof where);
		if (!strcmp(rs, "nan") || !strcmp(rs, "inf"))
			stats->n_nonfinite++;
		else if (!strcmp(rs, "error"))
			stats->n_error++;
	}
	free(pending);
	free(s.jobs);
	if (st == VB_OK && !o->no_report && !o->one_cell)
		st = sweep_report(o, err);
	if (st == VB_OK && s.lost)
		st = vb_fail(err, VB_ERR_INTERNAL,
			     "sweep: %zu cell(s) ended without a row (first: "
			     "%s); run the sweep again to retry them", s.lost,
			     s.first_lost);
	return st;
}

/* ---- command line ---- */

static enum vb_status split_map(const char *v, char *x, char *y, size_t cap,
				struct vb_error *err)
{
	const char *comma = strchr(v, ',');
	if (!comma || comma == v || !comma[1] ||
	    (size_t)(comma - v) >= cap || strlen(comma + 1) >= cap)
		return vb_fail(err, VB_ERR_USAGE, "--map '%s': expected "
			       "KEY_X,KEY_Y (e.g. optim.lr,train.batch)", v);
	snprintf(x, cap, "%.*s", (int)(comma - v), v);
	snprintf(y, cap, "%s", comma + 1);
	return VB_OK;
}

enum vb_status sweep_parse_args(int argc, char **argv, FILE *log,
				struct sweep_options *o, const char **config,
				struct vb_error *err)
{
	static char mx[128], my[128];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	enum vb_status st;

	memset(o, 0, sizeof *o);
	*config = NULL;
	o->jobs = ncpu > 0 ? (int)ncpu : 1;
	o->shard_k = o->shard_n = 1;
	o->log = log;
	o->progress = CONFIG_PROGRESS_AUTO;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		bool has = i + 1 < argc;
		if (!strcmp(a, "--out") || !strcmp(a, "--jobs") ||
		    !strcmp(a, "-j") || !strcmp(a, "--shard") ||
		    !strcmp(a, "--map") || !strcmp(a, "--cell")) {
			const char *v;
			if (!has)
				return vb_fail(err, VB_ERR_USAGE,
					       "%s needs a value", a);
			v = argv[++i];
			if (!strcmp(a, "--out")) {
				o->out_dir = v;
			} else if (!strcmp(a, "--shard")) {
				st = sweep_parse_shard(v, &o->shard_k,
						       &o->shard_n, err);
				if (st)
					return st;
			} else if (!strcmp(a, "--map")) {
				st = split_map(v, mx, my, sizeof mx, err);
				if (st)
					return st;
				o->map_x = mx;
				o->map_y = my;
			} else if (!strcmp(a, "--cell")) {
				char *end;
				unsigned long long c;
				errno = 0;
				c = strtoull(v, &end, 10);
				if (end == v || *end || errno || v[0] == '-' ||
				    c >= SWEEP_MAX_CELLS)
					return vb_fail(err, VB_ERR_USAGE,
						       "--cell '%s': expected a "
						       "cell index 0..%d", v,
						       SWEEP_MAX_CELLS - 1);
				o->one_cell = true;
				o->cell = (size_t)c;
			} else {
				char *end;
				long j = strtol(v, &end, 10);
				if (end == v || *end || j < 1 || j > 1024)
					return vb_fail(err, VB_ERR_USAGE,
						       "--jobs '%s': expected "
						       "1..1024", v);
				o->jobs = (int)j;
			}
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			o->log = NULL;
		} else if (a[0] == '-' && a[1]) {
			return vb_fail(err, VB_ERR_USAGE,
				       "unknown option '%s'", a);
		} else if (!*config) {
			*config = a;
		} else {
			return vb_fail(err, VB_ERR_USAGE,
				       "sweep takes one config file, got "
				       "'%s' and '%s'", *config, a);
		}
	}
	if (!*config || !o->out_dir)
		return vb_fail(err, VB_ERR_USAGE,
			       "sweep needs a config file and --out DIR");
	return VB_OK;
}

enum vb_status sweep_command(int argc, char **argv, FILE *log,
			     struct vb_error *err)
{
	struct sweep_options o;
	struct sweep_plan *p = NULL;
	struct sweep_stats stats;
	const char *config = NULL;
	enum vb_status st;

	st = sweep_parse_args(argc, argv, log, &o, &config, err);
	if (st)
		return st;
	st = sweep_plan_load(config, &p, err);
	if (st == VB_ERR_IO && err)
		err->status = st = VB_ERR_USAGE;
	if (st)
		return st;
	st = sweep_run(p, &o, &stats, err);
	sweep_plan_free(p);
	if (o.log && (st == VB_OK || stats.n_run)) {
		double mins = stats.seconds / 60.0;
		fprintf(o.log, "sweep: %zu cell(s) run in %.1f s (%.1f "
			"cells/min), %zu of %zu in the shard hit NaN/Inf, "
			"%zu error(s); worker peak RSS mean %.0f MB, max "
			"%.0f MB; tables in %s\n", stats.n_run, stats.seconds,
			mins > 0 ? (double)stats.n_run / mins : 0.0,
			stats.n_nonfinite, stats.n_shard, stats.n_error,
			stats.mean_rss_kb / 1024.0,
			(double)stats.max_rss_kb / 1024.0, o.out_dir);
	}
	return st;
}
