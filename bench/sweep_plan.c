/* sweep_plan: [sweep] and [mitigations] parsing, grid expansion, stable
 * cell ids and shard strings (sweep_plan.h). One axis SPEC is expanded by
 * sweep_axis.c. */
#include "sweep_plan.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"
#include "sweep_axis.h"

/* ---- the plan ---- */

void sweep_plan_free(struct sweep_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_axes; i++)
		sweep_axis_free_values(p->axes[i].values, p->axes[i].n_values);
	free(p->axes);
	for (size_t i = 0; i < p->n_mitigations; i++) {
		free(p->mitigations[i].keys);
		sweep_axis_free_values(p->mitigations[i].values,
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
		int e = errno ? errno : ENOSPC; /* a short write: disk full */
		close(fd);
		unlink(tmp);
		return vb_fail(err, VB_ERR_IO, "sweep: cannot write %s: %s",
			       tmp, strerror(e));
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
/* One "section.key=value" assignment tok of mitigation m (line lineno):
 * checked, canonicalised through scratch and added to m. */
static enum vb_status add_assignment(struct sweep_plan_mitigation *m,
				     struct config *scratch, const char *file,
				     int lineno, char *tok,
				     struct vb_error *err)
{
	char *teq = strchr(tok, '='), buf[CONFIG_VALUE_LEN], *v;
	struct vb_error e = {0};
	int key, *nk;
	char **nv;
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
	if (config_set_key(scratch, tok, v, &e) != VB_OK) {
		const char *msg = e.msg;
		if (!strncmp(msg, "config: ", 8))
			msg += 8;
		return vb_fail(err, VB_ERR_CONFIG,
			       "sweep: %s:%d: mitigation %s: %s", file,
			       lineno, m->name, msg);
	}
	if (config_get(scratch, tok, buf, sizeof buf, err) != VB_OK)
		return VB_ERR_CONFIG;
	nk = realloc(m->keys, (m->n_sets + 1) * sizeof *nk);
	if (nk)
		m->keys = nk;
	nv = nk ? realloc(m->values, (m->n_sets + 1) * sizeof *nv) : NULL;
	if (nv)
		m->values = nv;
	if (!nk || !nv || !(nv[m->n_sets] = files_dup_str(buf)))
		return vb_fail(err, VB_ERR_NOMEM, "sweep: no memory");
	nk[m->n_sets] = key;
	m->n_sets++;
	return VB_OK;
}

/* A mitigation name: valid, short enough, not given before. */
static enum vb_status check_mitigation_name(const struct sweep_plan *p,
					    const char *file, int lineno,
					    const char *mname,
					    struct vb_error *err)
{
	if (!valid_name(mname))
		return vb_fail(err, VB_ERR_CONFIG,
			       "sweep: %s:%d: mitigation name '%.100s': expected "
			       "letters, digits, '.', '_' or '-'", file, lineno,
			       mname);
	if (strlen(mname) >= SWEEP_PLAN_NAME_LEN)
		return vb_fail(err, VB_ERR_CONFIG,
			       "sweep: %s:%d: mitigation name '%.100s' longer "
			       "than %d characters", file, lineno, mname,
			       SWEEP_PLAN_NAME_LEN - 1);
	for (size_t i = 0; i < p->n_mitigations; i++)
		if (!strcmp(p->mitigations[i].name, mname))
			return vb_fail(err, VB_ERR_CONFIG,
				       "sweep: %s:%d: mitigation %s given "
				       "twice (first on line %d)", file,
				       lineno, mname, p->mitigations[i].line);
	return VB_OK;
}

static enum vb_status parse_mitigation(struct sweep_plan *p, const char *file,
				       int lineno, char *s,
				       struct vb_error *err)
{
	char *eq = strchr(s, '='), *mname, *rhs, *tok, *save = NULL;
	struct sweep_plan_mitigation *m, *nm;
	struct config scratch;
	enum vb_status st;

	if (!eq)
		return vb_fail(err, VB_ERR_CONFIG,
			       "sweep: %s:%d: expected 'NAME = section.key=value "
			       "...' in [mitigations], got '%.200s'", file,
			       lineno, s);
	*eq = '\0';
	mname = sweep_axis_trim(s);
	rhs = eq + 1;
	st = check_mitigation_name(p, file, lineno, mname, err);
	if (st)
		return st;
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
		if (*tok == ';' || *tok == '#')
			break; /* a comment */
		st = add_assignment(m, &scratch, file, lineno, tok, err);
		if (st)
			return st;
	}
	return VB_OK;
}

/* Base plus mitigation m (its values are canonical and were checked). */
static enum vb_status apply_mitigation(const struct sweep_plan_mitigation *m,
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
		const struct sweep_plan_mitigation *m = &p->mitigations[i];
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

/* One [sweep] line "section.key = SPEC" (s, trimmed, line lineno): the
 * axis joins p and multiplies its cells. */
static enum vb_status parse_axis(struct sweep_plan *p, const char *name,
				 int lineno, char *s, struct vb_error *err)
{
	char *eq = strchr(s, '='), *key, *spec, *cm;
	struct sweep_plan_axis *na;
	struct vb_error e = {0};
	enum vb_status st;
	if (!eq)
		return vb_fail(err, VB_ERR_CONFIG, "sweep: %s:%d: expected "
			       "'section.key = values', got '%s'", name,
			       lineno, s);
	*eq = '\0';
	key = sweep_axis_trim(s);
	spec = eq + 1;
	cm = strstr(spec, " ;");
	if (cm)
		*cm = '\0';
	spec = sweep_axis_trim(spec);
	for (size_t i = 0; i < p->n_axes; i++)
		if (!strcmp(config_key_name((size_t)p->axes[i].key), key))
			return vb_fail(err, VB_ERR_CONFIG, "sweep: %s:%d: axis "
				       "%s given twice", name, lineno, key);
	na = realloc(p->axes, (p->n_axes + 1) * sizeof *na);
	if (!na)
		return vb_fail(err, VB_ERR_NOMEM, "sweep: no memory");
	p->axes = na;
	memset(&na[p->n_axes], 0, sizeof *na);
	/* Values are checked against the defaults here and against the base
	 * config below, once it is read. */
	config_defaults(&p->base);
	st = sweep_axis_expand(&p->base, key, spec, &na[p->n_axes].values,
				    &na[p->n_axes].n_values, &e);
	if (st) {
		const char *m = e.msg;
		if (!strncmp(m, "sweep: ", 7))
			m += 7;
		return vb_fail(err, st, "sweep: %s:%d: %s", name, lineno, m);
	}
	na[p->n_axes].key = config_key_index(key);
	if (p->n_cells > SWEEP_PLAN_MAX_CELLS / na[p->n_axes].n_values) {
		p->n_axes++;
		return vb_fail(err, VB_ERR_CONFIG, "sweep: %s:%d: the grid has "
			       "more than %d cells", name, lineno,
			       SWEEP_PLAN_MAX_CELLS);
	}
	p->n_cells *= na[p->n_axes].n_values;
	p->n_axes++;
	return VB_OK;
}

/* No axis value and no mitigation setting of cell index (resolved as c)
 * may be inert there (config_key_effective): such a cell only copies
 * another. One line naming the axis or mitigation, the value and the
 * requirement that fails. */
static enum vb_status check_inert(const struct sweep_plan *p, size_t index,
				  const struct config *c, const char *name,
				  struct vb_error *err)
{
	char why[768], v[CONFIG_VALUE_LEN];
	if (p->n_mitigations) {
		const struct sweep_plan_mitigation *m =
			&p->mitigations[index / (p->n_cells /
						 p->n_mitigations)];
		for (size_t k = 0; k < m->n_sets; k++)
			if (!config_key_effective(c, (size_t)m->keys[k], why,
						  sizeof why))
				return vb_fail(err, VB_ERR_CONFIG,
					       "sweep: %s:%d: mitigation %s "
					       "sets %s = %s, which has no "
					       "effect in cell %zu: it "
					       "requires %s", name, m->line,
					       m->name,
					       config_key_name(
						       (size_t)m->keys[k]),
					       m->values[k], index, why);
	}
	for (size_t a = 0; a < p->n_axes; a++) {
		size_t key = (size_t)p->axes[a].key;
		if (config_key_effective(c, key, why, sizeof why))
			continue;
		if (config_get_at(c, key, v, sizeof v, NULL) != VB_OK)
			v[0] = '\0';
		return vb_fail(err, VB_ERR_CONFIG, "sweep: %s: axis %s = %s "
			       "has no effect in cell %zu%s%s: it requires "
			       "%s; set it in the base config or drop the "
			       "axis", name, config_key_name(key), v, index,
			       p->n_mitigations ? " of mitigation " : "",
			       sweep_plan_mitigation(p, index), why);
	}
	return VB_OK;
}

/* Resolves and validates every cell of p; the first bad one is the error
 * (with its mitigation and line). */
static enum vb_status validate_cells(const struct sweep_plan *p,
				     const char *name, bool inert_ok,
				     struct vb_error *err)
{
	enum vb_status st = VB_OK;
	for (size_t i = 0; st == VB_OK && i < p->n_cells; i++) {
		struct config c;
		char id[SWEEP_PLAN_ID_LEN], where[SWEEP_PLAN_NAME_LEN + 48] = "";
		struct vb_error e = {0};
		st = sweep_plan_cell(p, i, &c, id, &e);
		if (st == VB_OK)
			st = config_validate(&c, &e);
		if (st == VB_OK && !inert_ok &&
		    (st = check_inert(p, i, &c, name, err)))
			return st; /* its own line */
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
	return st;
}

/* Walks text line by line: [sweep] lines become axes, [mitigations]
 * lines mitigations (*mitig_line: the section's line, 0 without), every
 * other line goes to base (those two sections blanked, so line numbers
 * stay the file's). */
static enum vb_status split_lines(struct sweep_plan *p, const char *name,
				  const char *text, char *base,
				  int *mitig_line, struct vb_error *err)
{
	char *bp;
	bool in_sweep = false, in_mitig = false;
	int lineno = 0;
	enum vb_status st = VB_OK;
	const char *cur = text;
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
		s = sweep_axis_trim(lbuf);
		if (*s == '[') {
			in_sweep = section_is(s, "sweep");
			in_mitig = section_is(s, "mitigations");
			if (in_mitig && !*mitig_line)
				*mitig_line = lineno;
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
			st = parse_axis(p, name, lineno, s, err);
			continue;
		}
		memcpy(bp, cur - ll - (nl ? 1 : 0), ll);
		bp += ll;
		*bp++ = '\n';
	}
	*bp = '\0';
	return st;
}

static enum vb_status parse_plan(const char *name, const char *text,
				 bool inert_ok, struct sweep_plan **out,
				 struct vb_error *err)
{
	struct sweep_plan *p = calloc(1, sizeof *p);
	size_t len = strlen(text);
	char *base = malloc(len + 2);
	int mitig_line = 0;
	enum vb_status st;

	*out = NULL;
	if (!p || !base) {
		free(p);
		free(base);
		return vb_fail(err, VB_ERR_NOMEM, "sweep: no memory");
	}
	p->n_cells = 1;
	p->text = files_dup_str(text);
	p->text_len = len;
	st = split_lines(p, name, text, base, &mitig_line, err);
	if (st == VB_OK && mitig_line && !p->n_mitigations)
		st = vb_fail(err, VB_ERR_CONFIG, "sweep: %s:%d: [mitigations] "
			     "has no mitigation (expected lines 'NAME = "
			     "section.key=value ...', 'baseline =' for the "
			     "base config)", name, mitig_line);
	if (st == VB_OK && p->n_mitigations &&
	    p->n_cells > SWEEP_PLAN_MAX_CELLS / p->n_mitigations)
		st = vb_fail(err, VB_ERR_CONFIG, "sweep: %s:%d: the grid has "
			     "more than %d cells", name, mitig_line,
			     SWEEP_PLAN_MAX_CELLS);
	if (st == VB_OK && p->n_mitigations)
		p->n_cells *= p->n_mitigations;
	if (st == VB_OK)
		st = load_base(name, base, &p->base, err);
	free(base);
	if (st == VB_OK)
		st = check_mitigations(p, name, err);
	/* Every cell resolved and validated now: nothing runs on a bad grid. */
	if (st == VB_OK)
		st = validate_cells(p, name, inert_ok, err);
	if (st) {
		sweep_plan_free(p);
		return st;
	}
	*out = p;
	return VB_OK;
}

enum vb_status sweep_plan_parse(const char *name, const char *text,
				struct sweep_plan **out, struct vb_error *err)
{
	return parse_plan(name, text, false, out, err);
}

static enum vb_status load_plan(const char *path, bool inert_ok,
				struct sweep_plan **out, struct vb_error *err)
{
	char *text = NULL;
	size_t len = 0;
	enum vb_status st;
	*out = NULL;
	st = files_read(path, &text, &len, err);
	if (st != VB_OK)
		return st;
	for (size_t i = 0; i < len; i++)
		if (text[i] == '\r')
			text[i] = '\n';
	if (memchr(text, '\0', len)) {
		free(text);
		return vb_fail(err, VB_ERR_CONFIG, "sweep: %s: not a text "
			       "file", path);
	}
	st = parse_plan(path, text, inert_ok, out, err);
	free(text);
	return st;
}

enum vb_status sweep_plan_load(const char *path, struct sweep_plan **out,
			       struct vb_error *err)
{
	return load_plan(path, false, out, err);
}

enum vb_status sweep_plan_load_existing(const char *path,
					struct sweep_plan **out,
					struct vb_error *err)
{
	return load_plan(path, true, out, err);
}

void sweep_plan_cell_id(const struct config *c, char id[SWEEP_PLAN_ID_LEN])
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
	snprintf(id, SWEEP_PLAN_ID_LEN, "%016llx", (unsigned long long)h);
}

enum vb_status sweep_plan_cell(const struct sweep_plan *p, size_t index,
			       struct config *c, char id[SWEEP_PLAN_ID_LEN],
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
		const struct sweep_plan_axis *ax = &p->axes[a];
		size_t k = rest % ax->n_values;
		enum vb_status st;
		struct vb_error e = {0};
		rest /= ax->n_values;
		st = config_set_key(c, config_key_name((size_t)ax->key),
				    ax->values[k], &e);
		if (st)
			return vb_fail(err, st, "sweep: %s", e.msg);
	}
	sweep_plan_cell_id(c, id);
	return VB_OK;
}

const char *sweep_plan_mitigation(const struct sweep_plan *p, size_t index)
{
	if (!p->n_mitigations || index >= p->n_cells)
		return "";
	return p->mitigations[index / (p->n_cells / p->n_mitigations)].name;
}

enum vb_status sweep_plan_parse_shard(const char *s, int *k, int *n,
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

/* The next meaningful line of text[*pos..len) (no comment, no blank
 * line, trailing blanks cut) as [*start, *start + *n); false at the end. */
static bool next_line(const char *t, size_t len, size_t *pos,
		      const char **start, size_t *n)
{
	while (*pos < len) {
		size_t b = *pos, e = b;
		while (e < len && t[e] != '\n')
			e++;
		*pos = e < len ? e + 1 : e;
		while (b < e && (t[b] == ' ' || t[b] == '\t'))
			b++;
		while (e > b && (t[e - 1] == ' ' || t[e - 1] == '\t' ||
				 t[e - 1] == '\r'))
			e--;
		if (b == e || t[b] == ';' || t[b] == '#')
			continue;
		*start = t + b;
		*n = e - b;
		return true;
	}
	return false;
}

bool sweep_plan_same_text(const char *a, size_t a_len, const char *b,
			  size_t b_len)
{
	size_t pa = 0, pb = 0;
	for (;;) {
		const char *sa, *sb;
		size_t na, nb;
		bool ha = next_line(a, a_len, &pa, &sa, &na);
		bool hb = next_line(b, b_len, &pb, &sb, &nb);
		if (!ha || !hb)
			return ha == hb;
		if (na != nb || memcmp(sa, sb, na) != 0)
			return false;
	}
}

/* Whether cell i's mitigation is one --only names (always without it). */
bool sweep_plan_in_only(const struct sweep_plan *p, const char *only,
			size_t i)
{
	return files_name_in_list(only, sweep_plan_mitigation(p, i));
}

/* The first name of list ("a,b") that is not one of p's mitigations
 * (its length in *len), NULL when every name is one. */
static const char *first_unknown(const struct sweep_plan *p,
				 const char *list, size_t *len)
{
	for (const char *s = list; s && *s;) {
		size_t k = strcspn(s, ","), m = 0;
		while (m < p->n_mitigations &&
		       (strlen(p->mitigations[m].name) != k ||
			strncmp(p->mitigations[m].name, s, k)))
			m++;
		if (m == p->n_mitigations) {
			*len = k;
			return s;
		}
		s += k + (s[k] == ',');
	}
	return NULL;
}

/* Every name --only gives is a mitigation of the plan. */
enum vb_status sweep_plan_check_only(const struct sweep_plan *p,
				     const char *only, struct vb_error *err)
{
	size_t k = 0;
	const char *bad = first_unknown(p, only, &k);
	if (bad)
		return vb_fail(err, VB_ERR_USAGE, "sweep: --only: '%.*s' is "
			       "not a mitigation of this sweep's [mitigations]",
			       (int)k, bad);
	return VB_OK;
}

enum vb_status sweep_plan_read_only(const struct sweep_plan *p,
				    const char *dir, char **only,
				    struct vb_error *err)
{
	char path[CONFIG_PATH_LEN + 16], *text = NULL;
	const char *bad = NULL;
	size_t n = 0, k = 0;
	enum vb_status st;
	*only = NULL;
	snprintf(path, sizeof path, "%s/" SWEEP_PLAN_ONLY_FILE, dir);
	if (!files_exists(path))
		return VB_OK;
	st = files_read(path, &text, &n, err);
	if (st)
		return st;
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
		text[--n] = '\0';
	if (n == 0 || strlen(text) != n) {
		free(text);
		return vb_fail(err, VB_ERR_DATA, "%s: expected one line of "
			       "mitigation names separated by commas", path);
	}
	bad = first_unknown(p, text, &k);
	if (bad) {
		st = vb_fail(err, VB_ERR_DATA, "%s: '%.*s' is not a mitigation "
			     "of the folder's sweep.ini", path, (int)k, bad);
		free(text);
		return st;
	}
	*only = text;
	return VB_OK;
}

enum vb_status sweep_plan_record_only(const struct sweep_plan *p,
				      const char *dir, const char *only,
				      struct vb_error *err)
{
	char path[CONFIG_PATH_LEN + 16], *old = NULL, *text;
	size_t len = 0, n = 0;
	enum vb_status st;
	snprintf(path, sizeof path, "%s/" SWEEP_PLAN_ONLY_FILE, dir);
	if (!only) {
		if (remove(path) != 0 && errno != ENOENT)
			return vb_fail(err, VB_ERR_IO, "sweep: cannot remove "
				       "%s: %s", path, strerror(errno));
		return VB_OK;
	}
	st = sweep_plan_read_only(p, dir, &old, err);
	if (st)
		return st;
	for (size_t m = 0; m < p->n_mitigations; m++)
		len += strlen(p->mitigations[m].name) + 1;
	text = calloc(len + 2, 1);
	if (!text) {
		free(old);
		return vb_fail(err, VB_ERR_NOMEM, "sweep: no memory");
	}
	for (size_t m = 0; m < p->n_mitigations; m++) {
		const char *name = p->mitigations[m].name;
		if (!files_name_in_list(only, name) &&
		    !(old && files_name_in_list(old, name)))
			continue;
		if (*text)
			strcat(text, ",");
		strcat(text, name);
		n++;
	}
	strcat(text, "\n");
	free(old);
	/* every mitigation selected: the whole grid, no selection */
	st = n == p->n_mitigations
		     ? sweep_plan_record_only(p, dir, NULL, err)
		     : files_write_text(path, text, err);
	free(text);
	return st;
}

size_t sweep_plan_count_only(const struct sweep_plan *p, const char *only)
{
	size_t n = 0;
	for (size_t i = 0; i < p->n_cells; i++)
		n += sweep_plan_in_only(p, only, i);
	return n;
}

/* Reorders pending (ascending grid indices) axis point by axis point: the
 * grid is mitigations outermost, so cell = m * per + rest; sort by (rest,
 * m). Insertion sort: a grid holds at most SWEEP_PLAN_MAX_CELLS cells. */
void sweep_plan_order_axes_first(const struct sweep_plan *p, size_t *pending,
				 size_t n)
{
	size_t per = p->n_mitigations ? p->n_cells / p->n_mitigations
				       : p->n_cells;
	for (size_t i = 1; i < n; i++) {
		size_t c = pending[i], j = i;
		while (j > 0 && (pending[j - 1] % per > c % per ||
				 (pending[j - 1] % per == c % per &&
				  pending[j - 1] > c))) {
			pending[j] = pending[j - 1];
			j--;
		}
		pending[j] = c;
	}
}
