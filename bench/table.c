/* table: the result row (settings through config_get_at, results through
 * the column list below), CSV reading and writing, results.csv from the
 * rows folder, summary.md with its mitigation table (and mitigations.csv,
 * mitigations.png), machine.json, merge of sweep folders, and the report
 * that decides what the plots show (plot draws them). */
/* realpath (merge links run folders by absolute path) is XSI. */
#define _DEFAULT_SOURCE

#include "table.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <gnu/libc-version.h>
#endif

#include "files.h"
#include "guard.h"
#include "ops.h"
#include "plot.h"
#include "sweep.h"

#ifndef VB_GIT_COMMIT
#define VB_GIT_COMMIT "unknown"
#endif

/* ---- result columns ---- */

static void fmt_real(double v, char *buf, size_t cap)
{
	if (isnan(v))
		snprintf(buf, cap, "nan");
	else if (isinf(v))
		snprintf(buf, cap, v > 0 ? "inf" : "-inf");
	else
		snprintf(buf, cap, "%.9g", v);
}

static void get_status(const struct train_summary *s, char *b, size_t n)
{
	snprintf(b, n, "%s", guard_status_name(s->status));
}
static void get_first_epoch(const struct train_summary *s, char *b, size_t n)
{
	if (s->first.set)
		snprintf(b, n, "%ld", s->first.epoch);
	else
		b[0] = '\0';
}
static void get_first_step(const struct train_summary *s, char *b, size_t n)
{
	if (s->first.set)
		snprintf(b, n, "%ld", s->first.step);
	else
		b[0] = '\0';
}
static void get_first_phase(const struct train_summary *s, char *b, size_t n)
{
	snprintf(b, n, "%s",
		 s->first.set ? guard_phase_name(s->first.phase) : "");
}
static void get_first_quantity(const struct train_summary *s, char *b,
			       size_t n)
{
	snprintf(b, n, "%s", s->first.set ? s->first.quantity : "");
}
static void get_first_value(const struct train_summary *s, char *b, size_t n)
{
	if (s->first.set)
		fmt_real(s->first.value, b, n);
	else
		b[0] = '\0';
}
static void get_message(const struct train_summary *s, char *b, size_t n)
{
	snprintf(b, n, "%s", s->message);
}
static void get_epochs_done(const struct train_summary *s, char *b, size_t n)
{
	snprintf(b, n, "%ld", s->epochs_done);
}
static void get_steps(const struct train_summary *s, char *b, size_t n)
{
	snprintf(b, n, "%ld", s->steps);
}
static void get_final_train(const struct train_summary *s, char *b, size_t n)
{
	fmt_real(s->final_train_loss, b, n);
}
static void get_final_eval(const struct train_summary *s, char *b, size_t n)
{
	fmt_real(s->final_eval_loss, b, n);
}
static void get_best_eval(const struct train_summary *s, char *b, size_t n)
{
	if (s->best_epoch > 0)
		fmt_real(s->best_eval_loss, b, n);
	else
		b[0] = '\0';
}
static void get_best_epoch(const struct train_summary *s, char *b, size_t n)
{
	if (s->best_epoch > 0)
		snprintf(b, n, "%ld", s->best_epoch);
	else
		b[0] = '\0';
}
static void get_seconds(const struct train_summary *s, char *b, size_t n)
{
	snprintf(b, n, "%.3f", s->seconds);
}

static bool parse_num(const char *s, double *v);

/* The per-epoch eval losses from the run folder's metrics.csv (the
 * summary carries only the final and best ones). A row whose entry would
 * not fit is left out with the rest: table_row_write sizes b for every
 * epoch run. */
static void get_eval_losses(const struct train_summary *s, char *b, size_t n)
{
	char path[1200];
	struct table m;
	size_t used = 0;
	b[0] = '\0';
	if (s->status == GUARD_STATUS_ERROR || !s->run_dir[0])
		return;
	snprintf(path, sizeof path, "%s/metrics.csv", s->run_dir);
	table_init(&m);
	if (table_read(path, &m, NULL) == VB_OK) {
		for (size_t r = 0; r < m.n_rows; r++) {
			char one[48];
			double v;
			size_t len;
			const char *ev = table_get(&m, r, "eval_loss");
			if (!ev[0]) /* not evaluated (train.eval_every) */
				snprintf(one, sizeof one, "%s", r ? ";" : "");
			else if (parse_num(ev, &v) && isfinite(v))
				snprintf(one, sizeof one, "%s%.9g",
					 r ? ";" : "", v);
			else
				snprintf(one, sizeof one, "%snan",
					 r ? ";" : "");
			len = strlen(one);
			if (used + len >= n)
				break;
			memcpy(b + used, one, len + 1);
			used += len;
		}
	}
	table_free(&m);
}

/* Forensics (guard): known only when the guard classified a cause. */
static bool has_cause(const struct train_summary *s)
{
	return s->first.set && s->first.cause != GUARD_CAUSE_NONE;
}
static void get_cause(const struct train_summary *s, char *b, size_t n)
{
	snprintf(b, n, "%s", has_cause(s) ? guard_cause_name(s->first.cause)
					  : "");
}
static void get_origin_phase(const struct train_summary *s, char *b,
			     size_t n)
{
	snprintf(b, n, "%s", has_cause(s) ? s->first.origin_phase : "");
}
static void get_origin_op(const struct train_summary *s, char *b, size_t n)
{
	snprintf(b, n, "%s", has_cause(s) ? s->first.op : "");
}
static void get_origin_node(const struct train_summary *s, char *b, size_t n)
{
	snprintf(b, n, "%s", has_cause(s) ? s->first.node : "");
}
static void get_origin_step(const struct train_summary *s, char *b, size_t n)
{
	if (has_cause(s) && s->first.origin_step > 0)
		snprintf(b, n, "%ld", s->first.origin_step);
	else
		b[0] = '\0';
}
static void get_bad_samples(const struct train_summary *s, char *b, size_t n)
{
	if (has_cause(s) && s->first.n_bad_samples >= 0)
		snprintf(b, n, "%ld", s->first.n_bad_samples);
	else
		b[0] = '\0';
}
static void get_nan_op(const struct train_summary *s, char *b, size_t n)
{
	snprintf(b, n, "%s", has_cause(s) ? s->first.nan_op : "");
}
static void get_nan_node(const struct train_summary *s, char *b, size_t n)
{
	snprintf(b, n, "%s", has_cause(s) ? s->first.nan_node : "");
}
static void get_lead_step(const struct train_summary *s, char *b, size_t n)
{
	if (s->lead_step > 0)
		snprintf(b, n, "%ld", s->lead_step);
	else
		b[0] = '\0';
}
static void get_lead_time(const struct train_summary *s, char *b, size_t n)
{
	if (s->lead_time >= 0)
		snprintf(b, n, "%ld", s->lead_time);
	else
		b[0] = '\0';
}
static void get_skipped(const struct train_summary *s, char *b, size_t n)
{
	snprintf(b, n, "%ld", s->skipped);
}
static void get_replayed(const struct train_summary *s, char *b, size_t n)
{
	snprintf(b, n, "%s", !s->replayed      ? ""
			     : s->replay_match ? "same"
					       : "differ");
}

/* The result columns, in row order. To add one: a getter and a line. */
static const struct table_column RESULT_COLUMNS[] = {
	{"status", false, get_status},
	{"first_epoch", false, get_first_epoch},
	{"first_step", false, get_first_step},
	{"first_phase", false, get_first_phase},
	{"first_quantity", false, get_first_quantity},
	{"first_value", false, get_first_value},
	{"message", false, get_message},
	{"epochs_done", false, get_epochs_done},
	{"steps", false, get_steps},
	{"final_train_loss", false, get_final_train},
	{"final_eval_loss", false, get_final_eval},
	{"best_eval_loss", false, get_best_eval},
	{"best_epoch", false, get_best_epoch},
	{"cause", false, get_cause},
	{"origin_phase", false, get_origin_phase},
	{"origin_op", false, get_origin_op},
	{"origin_node", false, get_origin_node},
	{"origin_step", false, get_origin_step},
	{"bad_samples", false, get_bad_samples},
	{"nan_op", false, get_nan_op},
	{"nan_node", false, get_nan_node},
	{"lead_step", false, get_lead_step},
	{"lead_time", false, get_lead_time},
	{"replayed", false, get_replayed},
	{"skipped", false, get_skipped},
	{"seconds", true, get_seconds},
	{"eval_losses", false, get_eval_losses},
};

#define N_RESULT (sizeof RESULT_COLUMNS / sizeof RESULT_COLUMNS[0])

size_t table_result_count(void)
{
	return N_RESULT;
}

const struct table_column *table_result_column(size_t i)
{
	return i < N_RESULT ? &RESULT_COLUMNS[i] : NULL;
}

bool table_is_wallclock(const char *name)
{
	for (size_t i = 0; i < N_RESULT; i++)
		if (!strcmp(RESULT_COLUMNS[i].name, name))
			return RESULT_COLUMNS[i].wallclock;
	return false;
}

bool table_is_setting(const char *name)
{
	return config_key_index(name) >= 0;
}

/* Settings that describe where and how output goes stay out of rows: the
 * same cell in two sweep folders gives the same row. */
static bool row_setting(const char *name)
{
	return strcmp(name, "run.name") && strcmp(name, "run.out_dir") &&
	       strcmp(name, "run.progress");
}

static void csv_field(FILE *f, const char *s)
{
	if (!strpbrk(s, ",\"\n\r")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

enum vb_status table_row_write(FILE *f, const char *id, size_t cell,
			       const char *mitigation, const struct config *c,
			       const struct train_summary *s,
			       struct vb_error *err)
{
	/* room for every epoch's eval loss: %.9g and ';' fit in 32 */
	size_t cap = CONFIG_VALUE_LEN +
		     32 * (size_t)(s->epochs_done > 0 ? s->epochs_done : 0);
	char *buf = malloc(cap);
	if (!buf)
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	fputs("id,cell,mitigation", f);
	for (size_t i = 0; i < config_key_count(); i++)
		if (row_setting(config_key_name(i)))
			fprintf(f, ",%s", config_key_name(i));
	for (size_t i = 0; i < N_RESULT; i++)
		fprintf(f, ",%s", RESULT_COLUMNS[i].name);
	fprintf(f, "\n%s,%zu,", id, cell);
	csv_field(f, mitigation ? mitigation : "");
	for (size_t i = 0; i < config_key_count(); i++) {
		if (!row_setting(config_key_name(i)))
			continue;
		if (config_get_at(c, i, buf, cap, err)) {
			free(buf);
			return VB_ERR_CONFIG;
		}
		fputc(',', f);
		csv_field(f, buf);
	}
	for (size_t i = 0; i < N_RESULT; i++) {
		RESULT_COLUMNS[i].get(s, buf, cap);
		fputc(',', f);
		csv_field(f, buf);
	}
	free(buf);
	fputc('\n', f);
	if (ferror(f))
		return vb_fail(err, VB_ERR_IO, "table: write error");
	return VB_OK;
}

/* ---- in-memory tables ---- */

void table_init(struct table *t)
{
	memset(t, 0, sizeof *t);
}

void table_free(struct table *t)
{
	for (size_t i = 0; i < t->n_cols; i++)
		free(t->cols[i]);
	for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
		free(t->cells[i]);
	free(t->cols);
	free(t->cells);
	table_init(t);
}

static char *dup_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

int table_col(const struct table *t, const char *name)
{
	for (size_t i = 0; i < t->n_cols; i++)
		if (!strcmp(t->cols[i], name))
			return (int)i;
	return -1;
}

const char *table_get(const struct table *t, size_t row, const char *name)
{
	int c = table_col(t, name);
	if (c < 0 || row >= t->n_rows)
		return "";
	return t->cells[row * t->n_cols + (size_t)c];
}

static enum vb_status add_col(struct table *t, const char *name,
			      struct vb_error *err)
{
	size_t nc = t->n_cols + 1;
	char **cols = realloc(t->cols, nc * sizeof *cols);
	char **cells;
	if (!cols)
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	t->cols = cols;
	cols[t->n_cols] = dup_str(name);
	cells = calloc(t->cap_rows ? t->cap_rows * nc : 1, sizeof *cells);
	if (!cols[t->n_cols] || !cells) {
		free(cols[t->n_cols]);
		free(cells);
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	}
	for (size_t r = 0; r < t->n_rows; r++) {
		for (size_t c = 0; c < t->n_cols; c++)
			cells[r * nc + c] = t->cells[r * t->n_cols + c];
		cells[r * nc + t->n_cols] = dup_str("");
		if (!cells[r * nc + t->n_cols]) {
			/* keep the table consistent: nothing moved yet */
			for (size_t q = 0; q < r; q++)
				free(cells[q * nc + t->n_cols]);
			free(cells);
			free(cols[t->n_cols]);
			return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
		}
	}
	free(t->cells);
	t->cells = cells;
	t->n_cols = nc;
	return VB_OK;
}

/* Appends an empty row (all ""); returns its index through *row. */
static enum vb_status add_row(struct table *t, size_t *row,
			      struct vb_error *err)
{
	if (t->n_rows == t->cap_rows) {
		size_t cap = t->cap_rows ? 2 * t->cap_rows : 16;
		char **cells = realloc(t->cells, cap * (t->n_cols ? t->n_cols
								  : 1) *
							 sizeof *cells);
		if (!cells)
			return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
		t->cells = cells;
		t->cap_rows = cap;
	}
	for (size_t c = 0; c < t->n_cols; c++) {
		t->cells[t->n_rows * t->n_cols + c] = dup_str("");
		if (!t->cells[t->n_rows * t->n_cols + c]) {
			for (size_t q = 0; q < c; q++)
				free(t->cells[t->n_rows * t->n_cols + q]);
			return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
		}
	}
	*row = t->n_rows++;
	return VB_OK;
}

static enum vb_status set_cell(struct table *t, size_t row, size_t col,
			       const char *v, struct vb_error *err)
{
	char *d = dup_str(v);
	if (!d)
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	free(t->cells[row * t->n_cols + col]);
	t->cells[row * t->n_cols + col] = d;
	return VB_OK;
}

/* Reads one CSV record from *p into fields (each malloc'd); returns the
 * number of fields, 0 at the end, -1 on no memory or a bad quote. */
static long read_record(const char **p, char ***fields, size_t *cap)
{
	const char *s = *p;
	long n = 0;
	if (!*s)
		return 0;
	for (;;) {
		char *buf = malloc(strlen(s) + 1);
		size_t len = 0;
		if (!buf)
			return -1;
		if (*s == '"') {
			s++;
			for (;;) {
				if (!*s) {
					free(buf);
					return -1;
				}
				if (*s == '"' && s[1] == '"') {
					buf[len++] = '"';
					s += 2;
				} else if (*s == '"') {
					s++;
					break;
				} else {
					buf[len++] = *s++;
				}
			}
		}
		while (*s && *s != ',' && *s != '\n' && *s != '\r')
			buf[len++] = *s++;
		buf[len] = '\0';
		if ((size_t)n == *cap) {
			size_t nc = *cap ? 2 * *cap : 32;
			char **nf = realloc(*fields, nc * sizeof *nf);
			if (!nf) {
				free(buf);
				return -1;
			}
			*fields = nf;
			*cap = nc;
		}
		(*fields)[n++] = buf;
		if (*s == ',') {
			s++;
			continue;
		}
		if (*s == '\r')
			s++;
		if (*s == '\n')
			s++;
		break;
	}
	*p = s;
	return n;
}

static enum vb_status read_text(const char *path, char **out,
				struct vb_error *err)
{
	FILE *f = fopen(path, "rb");
	char *text = NULL;
	size_t len = 0, got;
	FILE *m;
	char buf[8192];
	*out = NULL;
	if (!f)
		return vb_fail(err, VB_ERR_IO, "table: cannot open %s: %s",
			       path, strerror(errno));
	m = open_memstream(&text, &len);
	if (!m) {
		fclose(f);
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	}
	while ((got = fread(buf, 1, sizeof buf, f)) > 0)
		fwrite(buf, 1, got, m);
	fclose(m);
	if (ferror(f)) {
		fclose(f);
		free(text);
		return vb_fail(err, VB_ERR_IO, "table: cannot read %s", path);
	}
	fclose(f);
	*out = text;
	return VB_OK;
}

enum vb_status table_read(const char *path, struct table *t,
			  struct vb_error *err)
{
	char *text, **fields = NULL;
	const char *p;
	size_t cap = 0;
	long n, line = 1;
	enum vb_status st = read_text(path, &text, err);
	if (st)
		return st;
	p = text;
	n = read_record(&p, &fields, &cap);
	if (n <= 0) {
		free(text);
		free(fields);
		return vb_fail(err, VB_ERR_DATA, "table: %s: no header line",
			       path);
	}
	for (long i = 0; i < n; i++) {
		if (st == VB_OK)
			st = add_col(t, fields[i], err);
		free(fields[i]);
	}
	while (st == VB_OK && (n = read_record(&p, &fields, &cap)) != 0) {
		size_t row;
		line++;
		if (n < 0) {
			st = vb_fail(err, VB_ERR_DATA, "table: %s:%ld: bad "
				     "quoting", path, line);
			break;
		}
		if ((size_t)n != t->n_cols) {
			st = vb_fail(err, VB_ERR_DATA, "table: %s:%ld: %ld "
				     "fields, expected %zu", path, line, n,
				     t->n_cols);
		} else {
			st = add_row(t, &row, err);
		}
		for (long i = 0; i < n; i++) {
			if (st == VB_OK)
				st = set_cell(t, row, (size_t)i, fields[i],
					      err);
			free(fields[i]);
		}
	}
	free(fields);
	free(text);
	return st;
}

/* The default of setting column name as config_get formats it into buf
 * (CONFIG_VALUE_LEN bytes); false for a column that is not a setting. */
static bool setting_default(const char *name, char *buf)
{
	static struct config d;
	static bool have;
	if (!table_is_setting(name))
		return false;
	if (!have) {
		config_defaults(&d);
		have = true;
	}
	return config_get(&d, name, buf, CONFIG_VALUE_LEN, NULL) == VB_OK;
}

enum vb_status table_append(struct table *dst, const struct table *src,
			    struct vb_error *err)
{
	enum vb_status st = VB_OK;
	size_t old_rows = dst->n_rows;
	char def[CONFIG_VALUE_LEN];
	for (size_t c = 0; st == VB_OK && c < src->n_cols; c++) {
		size_t col;
		if (table_col(dst, src->cols[c]) >= 0)
			continue;
		st = add_col(dst, src->cols[c], err);
		/* rows written before this setting existed ran with its
		 * default (settings are added off by default) */
		col = dst->n_cols - 1;
		if (st == VB_OK && old_rows &&
		    setting_default(src->cols[c], def))
			for (size_t r = 0; st == VB_OK && r < old_rows; r++)
				st = set_cell(dst, r, col, def, err);
	}
	for (size_t r = 0; st == VB_OK && r < src->n_rows; r++) {
		size_t row;
		st = add_row(dst, &row, err);
		for (size_t c = 0; st == VB_OK && c < dst->n_cols; c++) {
			int sc = table_col(src, dst->cols[c]);
			if (sc >= 0)
				st = set_cell(dst, row, c,
					      src->cells[r * src->n_cols +
							 (size_t)sc],
					      err);
			else if (setting_default(dst->cols[c], def))
				st = set_cell(dst, row, c, def, err);
		}
	}
	return st;
}

struct sort_key {
	const struct table *t;
	size_t row;
	unsigned long long cell;
	const char *id;
};

static int cmp_rows(const void *a, const void *b)
{
	const struct sort_key *x = a, *y = b;
	int c;
	if (x->cell != y->cell)
		return x->cell < y->cell ? -1 : 1;
	c = strcmp(x->id, y->id);
	if (c)
		return c;
	return (x->row > y->row) - (x->row < y->row);
}

void table_sort_rows(struct table *t)
{
	struct sort_key *k;
	char **cells;
	const char *last = NULL;
	size_t n = 0;
	if (t->n_rows < 1)
		return;
	k = malloc(t->n_rows * sizeof *k);
	cells = malloc(t->cap_rows * t->n_cols * sizeof *cells + 1);
	if (!k || !cells) {
		free(k);
		free(cells);
		return;
	}
	for (size_t r = 0; r < t->n_rows; r++) {
		const char *cs = table_get(t, r, "cell");
		k[r].t = t;
		k[r].row = r;
		k[r].cell = *cs ? strtoull(cs, NULL, 10) : ULLONG_MAX;
		k[r].id = table_get(t, r, "id");
	}
	qsort(k, t->n_rows, sizeof *k, cmp_rows);
	for (size_t i = 0; i < t->n_rows; i++) {
		char **src = t->cells + k[i].row * t->n_cols;
		/* compare with the last row kept: a dropped row is freed */
		if (last && *k[i].id && !strcmp(k[i].id, last)) {
			for (size_t c = 0; c < t->n_cols; c++)
				free(src[c]);
			continue;
		}
		memcpy(cells + n * t->n_cols, src, t->n_cols * sizeof *src);
		last = k[i].id;
		n++;
	}
	free(t->cells);
	t->cells = cells;
	t->n_rows = n;
	free(k);
}

static enum vb_status write_atomic_text(const char *path, const char *text,
					size_t len, struct vb_error *err)
{
	char tmp[1300];
	FILE *f;
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	f = fopen(tmp, "wb");
	if (!f)
		return vb_fail(err, VB_ERR_IO, "table: cannot write %s: %s",
			       tmp, strerror(errno));
	if (fwrite(text, 1, len, f) != len || fclose(f) != 0 ||
	    rename(tmp, path) != 0) {
		remove(tmp);
		return vb_fail(err, VB_ERR_IO, "table: cannot write %s", path);
	}
	return VB_OK;
}

enum vb_status table_write(const struct table *t, const char *path,
			   struct vb_error *err)
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	enum vb_status st;
	if (!m)
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	for (size_t c = 0; c < t->n_cols; c++) {
		if (c)
			fputc(',', m);
		csv_field(m, t->cols[c]);
	}
	fputc('\n', m);
	for (size_t r = 0; r < t->n_rows; r++) {
		for (size_t c = 0; c < t->n_cols; c++) {
			if (c)
				fputc(',', m);
			csv_field(m, t->cells[r * t->n_cols + c]);
		}
		fputc('\n', m);
	}
	fclose(m);
	st = write_atomic_text(path, text, len, err);
	free(text);
	return st;
}

static bool is_row_file(const char *name)
{
	size_t n = strlen(name);
	if (n != 16 + 4 || strcmp(name + 16, ".csv"))
		return false;
	for (size_t i = 0; i < 16; i++)
		if (!isxdigit((unsigned char)name[i]))
			return false;
	return true;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

enum vb_status table_collect_rows(const char *dir, struct table *t,
				  struct vb_error *err)
{
	char path[1200];
	DIR *d;
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;
	enum vb_status st = VB_OK;
	snprintf(path, sizeof path, "%s/rows", dir);
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? VB_OK
				       : vb_fail(err, VB_ERR_IO,
						 "table: cannot list %s: %s",
						 path, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		if (!is_row_file(e->d_name))
			continue;
		if (n == cap) {
			size_t nc = cap ? 2 * cap : 64;
			char **nn = realloc(names, nc * sizeof *nn);
			if (!nn) {
				st = vb_fail(err, VB_ERR_NOMEM,
					     "table: no memory");
				break;
			}
			names = nn;
			cap = nc;
		}
		names[n] = dup_str(e->d_name);
		if (!names[n]) {
			st = vb_fail(err, VB_ERR_NOMEM, "table: no memory");
			break;
		}
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof *names, cmp_str);
	for (size_t i = 0; i < n; i++) {
		struct table one;
		table_init(&one);
		snprintf(path, sizeof path, "%s/rows/%s", dir, names[i]);
		if (st == VB_OK)
			st = table_read(path, &one, err);
		if (st == VB_OK)
			st = table_append(t, &one, err);
		table_free(&one);
		free(names[i]);
	}
	free(names);
	if (st == VB_OK)
		table_sort_rows(t);
	return st;
}

/* ---- grouping ---- */

static bool is_hit(const char *status)
{
	return !strcmp(status, "nan") || !strcmp(status, "inf");
}

static bool parse_num(const char *s, double *v)
{
	char *end;
	if (!*s)
		return false;
	*v = strtod(s, &end);
	return *end == '\0';
}

/* Distinct values of column name in first-appearance order, sorted
 * numerically when all are numbers. Borrowed strings. */
struct values {
	const char **v;
	size_t n;
};

static int cmp_numstr(const void *a, const void *b)
{
	double x = strtod(*(const char *const *)a, NULL);
	double y = strtod(*(const char *const *)b, NULL);
	return (x > y) - (x < y);
}

static enum vb_status distinct(const struct table *t, const char *name,
			       struct values *out, struct vb_error *err)
{
	bool numeric = true;
	out->n = 0;
	out->v = malloc((t->n_rows + 1) * sizeof *out->v);
	if (!out->v)
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	for (size_t r = 0; r < t->n_rows; r++) {
		const char *v = table_get(t, r, name);
		size_t i;
		double d;
		for (i = 0; i < out->n; i++)
			if (!strcmp(out->v[i], v))
				break;
		if (i == out->n) {
			out->v[out->n++] = v;
			if (!parse_num(v, &d))
				numeric = false;
		}
	}
	if (numeric && out->n > 1)
		qsort(out->v, out->n, sizeof *out->v, cmp_numstr);
	return VB_OK;
}

static size_t value_index(const struct values *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->v[i], s))
			return i;
	return v->n;
}

/* The axes: setting columns whose values vary, in column order. */
static enum vb_status find_axes(const struct table *t, const char ***axes,
				size_t *n, struct vb_error *err)
{
	*n = 0;
	*axes = malloc((t->n_cols + 1) * sizeof **axes);
	if (!*axes)
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	for (size_t c = 0; c < t->n_cols; c++) {
		if (!table_is_setting(t->cols[c]))
			continue;
		for (size_t r = 1; r < t->n_rows; r++)
			if (strcmp(t->cells[r * t->n_cols + c],
				   t->cells[c])) {
				(*axes)[(*n)++] = t->cols[c];
				break;
			}
	}
	return VB_OK;
}

struct group {
	size_t first_row;
	size_t runs, hits, errors, n_loss;
	double loss_sum;
	double *epochs; /* first-NaN epochs of the hits */
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median_epoch(struct group *g)
{
	if (!g->hits)
		return NAN;
	qsort(g->epochs, g->hits, sizeof *g->epochs, cmp_double);
	return g->hits % 2 ? g->epochs[g->hits / 2]
			   : 0.5 * (g->epochs[g->hits / 2 - 1] +
				    g->epochs[g->hits / 2]);
}

static bool same_group(const struct table *t, size_t a, size_t b,
		       const char *const *keys, size_t nk)
{
	for (size_t k = 0; k < nk; k++)
		if (strcmp(table_get(t, a, keys[k]), table_get(t, b, keys[k])))
			return false;
	return true;
}

/* Groups the rows by the values of keys (first-appearance order). */
static enum vb_status group_rows(const struct table *t,
				 const char *const *keys, size_t nk,
				 struct group **out, size_t *n_out,
				 struct vb_error *err)
{
	struct group *g = calloc(t->n_rows + 1, sizeof *g);
	size_t n = 0;
	if (!g)
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	for (size_t r = 0; r < t->n_rows; r++) {
		size_t i;
		const char *st = table_get(t, r, "status");
		double v;
		for (i = 0; i < n; i++)
			if (same_group(t, g[i].first_row, r, keys, nk))
				break;
		if (i == n) {
			g[n].first_row = r;
			g[n].epochs = malloc(t->n_rows * sizeof(double));
			if (!g[n].epochs) {
				for (size_t q = 0; q < n; q++)
					free(g[q].epochs);
				free(g);
				return vb_fail(err, VB_ERR_NOMEM,
					       "table: no memory");
			}
			n++;
		}
		if (!strcmp(st, "error")) {
			g[i].errors++;
			continue;
		}
		g[i].runs++;
		if (is_hit(st)) {
			if (parse_num(table_get(t, r, "first_epoch"), &v))
				g[i].epochs[g[i].hits] = v;
			else
				g[i].epochs[g[i].hits] = NAN;
			g[i].hits++;
		} else if (parse_num(table_get(t, r, "final_eval_loss"), &v) &&
			   isfinite(v)) {
			g[i].loss_sum += v;
			g[i].n_loss++;
		}
	}
	*out = g;
	*n_out = n;
	return VB_OK;
}

static void free_groups(struct group *g, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(g[i].epochs);
	free(g);
}

static void fmt_g(double v, char *buf, size_t cap)
{
	if (isnan(v))
		snprintf(buf, cap, "-");
	else
		snprintf(buf, cap, "%.4g", v);
}

static enum vb_status summary_group_table(FILE *f, const struct table *t,
					  const char *const *keys, size_t nk,
					  struct vb_error *err)
{
	struct group *g = NULL;
	size_t n = 0;
	enum vb_status st = group_rows(t, keys, nk, &g, &n, err);
	if (st)
		return st;
	fputs("|", f);
	for (size_t k = 0; k < nk; k++)
		fprintf(f, " %s |", keys[k]);
	fputs(" runs | hit NaN/Inf | share | median first-NaN epoch | "
	      "mean final eval loss (finite runs) |\n|", f);
	for (size_t k = 0; k < nk + 5; k++)
		fputs(k < nk ? "---|" : "--:|", f);
	fputc('\n', f);
	for (size_t i = 0; i < n; i++) {
		char med[32], loss[32];
		fputs("|", f);
		for (size_t k = 0; k < nk; k++)
			fprintf(f, " %s |", table_get(t, g[i].first_row,
						      keys[k]));
		fmt_g(median_epoch(&g[i]), med, sizeof med);
		fmt_g(g[i].n_loss ? g[i].loss_sum / (double)g[i].n_loss : NAN,
		      loss, sizeof loss);
		fprintf(f, " %zu%s | %zu | %.0f%% | %s | %s |\n", g[i].runs,
			g[i].errors ? " (+errors)" : "", g[i].hits,
			g[i].runs ? 100.0 * (double)g[i].hits /
					    (double)g[i].runs
				  : 0.0,
			med, loss);
	}
	fputc('\n', f);
	free_groups(g, n);
	return VB_OK;
}

/* ---- mitigations ---- */

/* The last epoch (1-based) with a finite entry before the first
 * non-finite one in an eval_losses list ("1.5;2;nan"; empty entries are
 * epochs without an evaluation, train.eval_every); 0 if none. */
static long finite_epochs(const char *list)
{
	long last = 0;
	for (long e = 1; *list; e++) {
		char *end;
		double v;
		if (*list == ';') { /* empty entry */
			list++;
			continue;
		}
		v = strtod(list, &end);
		if (end == list || (*end && *end != ';') || !isfinite(v))
			break;
		last = e;
		list = *end ? end + 1 : end;
	}
	return last;
}

/* Entry epoch (1-based) of an eval_losses list into *v; false if absent
 * or empty. */
static bool eval_at(const char *list, long epoch, double *v)
{
	for (long e = 1; *list; e++) {
		char *end;
		double x;
		if (*list == ';') {
			if (e == epoch)
				return false;
			list++;
			continue;
		}
		x = strtod(list, &end);
		if (end == list || (*end && *end != ';'))
			return false;
		if (e == epoch) {
			*v = x;
			return true;
		}
		list = *end ? end + 1 : end;
	}
	return false;
}

struct mit {
	const char *name; /* borrowed from the table */
	size_t first_row;
	size_t cells, runs, hits, errors;
	double *epochs; /* (hits) first-NaN epochs, parsed ones only */
	size_t n_epochs;
	size_t n_final, n_best, n_at, n_sec;
	double final_sum, best_sum, at_sum, sec_sum;
	double ep_sec, ep_sum; /* seconds and epochs_done of rows with
				  epochs_done > 0 */
};

struct mit_table {
	struct mit *m;
	size_t n;
	size_t base;  /* index of the baseline */
	long epoch;   /* comparison epoch E; 0: none */
	size_t n_base_runs;
};

static void mit_free(struct mit_table *mt)
{
	for (size_t i = 0; i < mt->n; i++)
		free(mt->m[i].epochs);
	free(mt->m);
	memset(mt, 0, sizeof *mt);
}

static double mean_or_nan(double sum, size_t n)
{
	return n ? sum / (double)n : NAN;
}

/* Per-mitigation numbers of the rows naming one (mt->n = 0 if none). */
static enum vb_status mit_collect(const struct table *t, struct mit_table *mt,
				  struct vb_error *err)
{
	memset(mt, 0, sizeof *mt);
	if (table_col(t, "mitigation") < 0)
		return VB_OK;
	mt->m = calloc(t->n_rows + 1, sizeof *mt->m);
	if (!mt->m)
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	for (size_t r = 0; r < t->n_rows; r++) {
		const char *name = table_get(t, r, "mitigation");
		size_t i;
		if (!*name)
			continue;
		for (i = 0; i < mt->n; i++)
			if (!strcmp(mt->m[i].name, name))
				break;
		if (i == mt->n) {
			mt->m[i].name = name;
			mt->m[i].first_row = r;
			mt->m[i].epochs = malloc(t->n_rows * sizeof(double));
			if (!mt->m[i].epochs) {
				mit_free(mt);
				return vb_fail(err, VB_ERR_NOMEM,
					       "table: no memory");
			}
			mt->n++;
		}
		mt->m[i].cells++;
	}
	for (size_t i = 0; i < mt->n; i++)
		if (!strcmp(mt->m[i].name, "baseline"))
			mt->base = i;
	/* E: the shortest finite eval curve among the baseline's runs */
	mt->epoch = -1;
	for (size_t r = 0; mt->n && r < t->n_rows; r++) {
		long e;
		if (strcmp(table_get(t, r, "mitigation"),
			   mt->m[mt->base].name) ||
		    !strcmp(table_get(t, r, "status"), "error"))
			continue;
		e = finite_epochs(table_get(t, r, "eval_losses"));
		if (mt->epoch < 0 || e < mt->epoch)
			mt->epoch = e;
		mt->n_base_runs++;
	}
	if (mt->epoch < 0)
		mt->epoch = 0;
	for (size_t r = 0; r < t->n_rows; r++) {
		const char *name = table_get(t, r, "mitigation");
		const char *st = table_get(t, r, "status");
		struct mit *m = NULL;
		double v, ep;
		if (!*name)
			continue;
		for (size_t i = 0; i < mt->n && !m; i++)
			if (!strcmp(mt->m[i].name, name))
				m = &mt->m[i];
		if (!strcmp(st, "error")) {
			m->errors++;
			continue;
		}
		m->runs++;
		if (is_hit(st)) {
			m->hits++;
			if (parse_num(table_get(t, r, "first_epoch"), &v))
				m->epochs[m->n_epochs++] = v;
		} else if (parse_num(table_get(t, r, "final_eval_loss"), &v) &&
			   isfinite(v)) {
			m->final_sum += v;
			m->n_final++;
		}
		if (parse_num(table_get(t, r, "best_eval_loss"), &v) &&
		    isfinite(v)) {
			m->best_sum += v;
			m->n_best++;
		}
		if (mt->epoch > 0 &&
		    eval_at(table_get(t, r, "eval_losses"), mt->epoch, &v) &&
		    isfinite(v)) {
			m->at_sum += v;
			m->n_at++;
		}
		if (parse_num(table_get(t, r, "seconds"), &v) && isfinite(v)) {
			m->sec_sum += v;
			m->n_sec++;
			if (parse_num(table_get(t, r, "epochs_done"), &ep) &&
			    ep > 0) {
				m->ep_sec += v;
				m->ep_sum += ep;
			}
		}
	}
	for (size_t i = 0; i < mt->n; i++)
		if (mt->m[i].n_epochs > 1)
			qsort(mt->m[i].epochs, mt->m[i].n_epochs,
			      sizeof(double), cmp_double);
	return VB_OK;
}

static double mit_median(const struct mit *m)
{
	size_t n = m->n_epochs;
	if (!n)
		return NAN;
	return n % 2 ? m->epochs[n / 2]
		     : 0.5 * (m->epochs[n / 2 - 1] + m->epochs[n / 2]);
}

static double mit_sec_per_epoch(const struct mit *m)
{
	return m->ep_sum > 0 ? m->ep_sec / m->ep_sum : NAN;
}

static double mit_time_ratio(const struct mit_table *mt, const struct mit *m)
{
	double b = mit_sec_per_epoch(&mt->m[mt->base]);
	return b > 0 ? mit_sec_per_epoch(m) / b : NAN;
}

/* A value for the CSV: %.9g, "" when undefined. */
static void fmt_csv_num(FILE *f, double v)
{
	fputc(',', f);
	if (isfinite(v))
		fprintf(f, "%.9g", v);
}

enum vb_status table_write_mitigations(const struct table *t, const char *path,
				       bool *written, struct vb_error *err)
{
	struct mit_table mt;
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	enum vb_status st = mit_collect(t, &mt, err);
	*written = false;
	if (st || !mt.n) {
		mit_free(&mt);
		return st;
	}
	f = open_memstream(&text, &len);
	if (!f) {
		mit_free(&mt);
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	}
	fputs("mitigation,cells,runs,errors,nan_runs,first_nan_epoch_median,"
	      "first_nan_epoch_min,first_nan_epoch_max,final_eval_loss_mean,"
	      "final_eval_runs,best_eval_loss_mean,best_eval_runs,"
	      "compare_epoch,eval_loss_at_epoch,eval_runs_at_epoch,"
	      "baseline_eval_loss_at_epoch,seconds_mean,seconds_per_epoch,"
	      "time_vs_baseline\n", f);
	for (size_t i = 0; i < mt.n; i++) {
		const struct mit *m = &mt.m[i], *b = &mt.m[mt.base];
		csv_field(f, m->name);
		fprintf(f, ",%zu,%zu,%zu,%zu", m->cells, m->runs, m->errors,
			m->hits);
		fmt_csv_num(f, mit_median(m));
		fmt_csv_num(f, m->n_epochs ? m->epochs[0] : NAN);
		fmt_csv_num(f, m->n_epochs ? m->epochs[m->n_epochs - 1] : NAN);
		fmt_csv_num(f, mean_or_nan(m->final_sum, m->n_final));
		fprintf(f, ",%zu", m->n_final);
		fmt_csv_num(f, mean_or_nan(m->best_sum, m->n_best));
		fprintf(f, ",%zu", m->n_best);
		if (mt.epoch > 0)
			fprintf(f, ",%ld", mt.epoch);
		else
			fputc(',', f);
		fmt_csv_num(f, mean_or_nan(m->at_sum, m->n_at));
		fprintf(f, ",%zu", m->n_at);
		fmt_csv_num(f, mean_or_nan(b->at_sum, b->n_at));
		fmt_csv_num(f, mean_or_nan(m->sec_sum, m->n_sec));
		fmt_csv_num(f, mit_sec_per_epoch(m));
		fmt_csv_num(f, mit_time_ratio(&mt, m));
		fputc('\n', f);
	}
	fclose(f);
	st = write_atomic_text(path, text, len, err);
	free(text);
	mit_free(&mt);
	*written = st == VB_OK;
	return st;
}

/* Settings of mitigation m's rows that differ from the baseline's, when
 * both hold one value (the mitigation's own keys), as "k = v, ...". */
static void mit_settings(FILE *f, const struct table *t,
			 const struct mit_table *mt, const struct mit *m)
{
	const char *bname = mt->m[mt->base].name;
	bool any = false;
	for (size_t c = 0; c < t->n_cols; c++) {
		const char *mv = NULL, *bv = NULL;
		bool mixed = false;
		if (!table_is_setting(t->cols[c]))
			continue;
		for (size_t r = 0; r < t->n_rows && !mixed; r++) {
			const char *name = table_get(t, r, "mitigation");
			const char *v = t->cells[r * t->n_cols + c];
			const char **slot = !strcmp(name, m->name) ? &mv
					    : !strcmp(name, bname) ? &bv
								   : NULL;
			if (!slot)
				continue;
			if (*slot && strcmp(*slot, v))
				mixed = true;
			*slot = v;
		}
		if (mixed || !mv || !bv || !strcmp(mv, bv))
			continue;
		fprintf(f, "%s`%s = %s`", any ? ", " : "", t->cols[c], mv);
		any = true;
	}
	if (!any)
		fputs("the same settings as the baseline (rows missing?)", f);
}

static void md_num(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, " %.4g |", v);
	else
		fputs(" - |", f);
}

static void summary_mitigations(FILE *f, const struct table *t,
				const struct mit_table *mt)
{
	const struct mit *b = &mt->m[mt->base];
	char e[32];
	if (mt->epoch > 0)
		snprintf(e, sizeof e, "%ld", mt->epoch);
	else
		snprintf(e, sizeof e, "E");
	fprintf(f, "## Mitigations\n\n"
		"Baseline: `%s`. NaN/Inf: runs that hit a non-finite value / "
		"runs (error rows aside). First-NaN epoch: median (min–max) "
		"over those runs. Final eval loss: mean over the runs that "
		"stayed finite; best eval loss: mean over all runs (finite "
		"even for a run that later hit NaN). ", b->name);
	if (mt->epoch > 0)
		fprintf(f, "Comparison epoch E = %ld: the last evaluated "
			"epoch that every %s run completed with a finite "
			"eval loss; "
			"\"eval loss at epoch %ld\" is the mean over the runs "
			"that reached it with a finite eval loss (how many in "
			"brackets). ", mt->epoch, b->name, mt->epoch);
	else
		fprintf(f, "No comparison epoch: %s", mt->n_base_runs
			? "a baseline run has no finite eval loss (NaN in its "
			  "first epoch, or rows without eval_losses). "
			: "the baseline has no runs. ");
	fputs("The last three columns are wall clock (they vary between "
	      "identical sweeps): mean seconds per cell, seconds per epoch "
	      "run (the epoch a NaN stopped counts), and that relative to "
	      "the baseline.\n\n", f);
	fprintf(f, "| mitigation | cells | NaN/Inf | first-NaN epoch | "
		"final eval loss (finite runs) | best eval loss (all runs) | "
		"eval loss at epoch %s (runs) | %s at epoch %s | s/cell | "
		"s/epoch | time vs %s |\n|---|", e, b->name, e, b->name);
	for (int k = 0; k < 10; k++)
		fputs("--:|", f);
	fputc('\n', f);
	for (size_t i = 0; i < mt->n; i++) {
		const struct mit *m = &mt->m[i];
		double med = mit_median(m), ratio = mit_time_ratio(mt, m);
		fprintf(f, "| %s | %zu%s | %zu/%zu |", m->name, m->cells,
			m->errors ? " (+errors)" : "", m->hits, m->runs);
		if (m->n_epochs > 1 && m->epochs[0] != m->epochs[m->n_epochs - 1])
			fprintf(f, " %.4g (%.4g–%.4g) |", med, m->epochs[0],
				m->epochs[m->n_epochs - 1]);
		else
			md_num(f, med);
		md_num(f, mean_or_nan(m->final_sum, m->n_final));
		md_num(f, mean_or_nan(m->best_sum, m->n_best));
		if (m->n_at)
			fprintf(f, " %.4g (%zu) |",
				m->at_sum / (double)m->n_at, m->n_at);
		else
			fputs(" - (0) |", f);
		md_num(f, mean_or_nan(b->at_sum, b->n_at));
		md_num(f, mean_or_nan(m->sec_sum, m->n_sec));
		md_num(f, mit_sec_per_epoch(m));
		if (isfinite(ratio))
			fprintf(f, " %.2fx |\n", ratio);
		else
			fputs(" - |\n", f);
	}
	fputs("\nWhat each mitigation changes against the baseline:\n\n", f);
	for (size_t i = 0; i < mt->n; i++) {
		fprintf(f, "- `%s`: ", mt->m[i].name);
		if (i == mt->base)
			fputs("the reference", f);
		else
			mit_settings(f, t, mt, &mt->m[i]);
		fputc('\n', f);
	}
	fputc('\n', f);
}

enum vb_status table_write_summary(const struct table *t, const char *title,
				   const char *note, const char *path,
				   struct vb_error *err)
{
	char *text = NULL;
	size_t len = 0, n_axes, n_hits = 0, n_err = 0, n_grp = 0;
	const char **axes = NULL, **grp = NULL;
	FILE *f;
	struct config d;
	struct mit_table mt = {0};
	enum vb_status st = find_axes(t, &axes, &n_axes, err);
	if (st)
		return st;
	grp = malloc((n_axes + 1) * sizeof *grp);
	f = open_memstream(&text, &len);
	if (!grp || !f) {
		free(axes);
		free(grp);
		if (f)
			fclose(f);
		free(text);
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	}
	for (size_t r = 0; r < t->n_rows; r++) {
		const char *s = table_get(t, r, "status");
		n_hits += is_hit(s);
		n_err += !strcmp(s, "error");
	}
	fprintf(f, "# %s\n\n", title);
	fprintf(f, "%zu runs: %zu finite, %zu hit NaN/Inf, %zu error(s). "
		"Rows: results.csv (one per cell). A run \"hits NaN\" when "
		"its status is nan or inf; the first-NaN epoch is the epoch "
		"of the first non-finite value; final eval losses are "
		"averaged over the finite runs only.\n\n", t->n_rows,
		t->n_rows - n_hits - n_err, n_hits, n_err);
	if (note)
		fprintf(f, "%s\n\n", note);
	fputs("## Settings\n\nSwept:\n\n", f);
	for (size_t a = 0; a < n_axes; a++) {
		struct values v;
		st = distinct(t, axes[a], &v, err);
		if (st)
			break;
		fprintf(f, "- `%s`: ", axes[a]);
		for (size_t i = 0; i < v.n; i++)
			fprintf(f, "%s%s", i ? ", " : "", v.v[i]);
		fputc('\n', f);
		free(v.v);
		if (strcmp(axes[a], "train.seed"))
			grp[n_grp++] = axes[a];
	}
	if (!n_axes)
		fputs("- (nothing: one cell)\n", f);
	fputs("\nFixed, where not the default:\n\n", f);
	config_defaults(&d);
	for (size_t c = 0; st == VB_OK && c < t->n_cols && t->n_rows; c++) {
		char def[CONFIG_VALUE_LEN];
		bool axis = false;
		for (size_t a = 0; a < n_axes; a++)
			axis |= !strcmp(axes[a], t->cols[c]);
		if (axis || !table_is_setting(t->cols[c]) ||
		    config_get(&d, t->cols[c], def, sizeof def, NULL) ||
		    !strcmp(def, t->cells[c]))
			continue;
		fprintf(f, "- `%s = %s`\n", t->cols[c], t->cells[c]);
	}
	if (st == VB_OK && n_grp) {
		fprintf(f, "\n## By setting%s\n\n",
			n_grp < n_axes ? " (seeds pooled)" : "");
		st = summary_group_table(f, t, grp, n_grp, err);
	}
	for (size_t a = 0; st == VB_OK && n_grp > 1 && a < n_grp; a++) {
		fprintf(f, "## By %s\n\n", grp[a]);
		st = summary_group_table(f, t, &grp[a], 1, err);
	}
	if (st == VB_OK)
		st = mit_collect(t, &mt, err);
	if (st == VB_OK && mt.n)
		summary_mitigations(f, t, &mt);
	if (st == VB_OK && n_hits) {
		fputs("## Runs that hit NaN/Inf\n\n| id |", f);
		if (mt.n)
			fputs(" mitigation |", f);
		for (size_t a = 0; a < n_axes; a++)
			fprintf(f, " %s |", axes[a]);
		fputs(" status | epoch | step | phase | quantity | cause | "
		      "op | node | lead time |\n|---|", f);
		for (size_t a = 0; a < n_axes + 9 + (mt.n ? 1 : 0); a++)
			fputs("---|", f);
		fputc('\n', f);
		for (size_t r = 0; r < t->n_rows; r++) {
			if (!is_hit(table_get(t, r, "status")))
				continue;
			fprintf(f, "| %s |", table_get(t, r, "id"));
			if (mt.n)
				fprintf(f, " %s |",
					table_get(t, r, "mitigation"));
			for (size_t a = 0; a < n_axes; a++)
				fprintf(f, " %s |", table_get(t, r, axes[a]));
			fprintf(f, " %s | %s | %s | %s | %s | %s | %s | %s "
				"| %s |\n", table_get(t, r, "status"),
				table_get(t, r, "first_epoch"),
				table_get(t, r, "first_step"),
				table_get(t, r, "first_phase"),
				table_get(t, r, "first_quantity"),
				table_get(t, r, "cause"),
				table_get(t, r, "origin_op"),
				table_get(t, r, "origin_node"),
				table_get(t, r, "lead_time"));
		}
		fputc('\n', f);
	}
	fclose(f);
	mit_free(&mt);
	if (st == VB_OK)
		st = write_atomic_text(path, text, len, err);
	free(text);
	free(axes);
	free(grp);
	return st;
}

/* ---- machine.json ---- */

static void json_str(FILE *f, const char *key, const char *v, bool last)
{
	fprintf(f, "  \"%s\": \"", key);
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			fprintf(f, "\\%c", *v);
		else if ((unsigned char)*v < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*v);
		else
			fputc(*v, f);
	}
	fprintf(f, "\"%s\n", last ? "" : ",");
}

static void cpu_model(char *buf, size_t cap)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];
	snprintf(buf, cap, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		char *colon = strchr(line, ':');
		if (!strncmp(line, "model name", 10) && colon) {
			char *v = colon + 1, *e;
			while (*v == ' ')
				v++;
			e = v + strlen(v);
			while (e > v && (e[-1] == '\n' || e[-1] == ' '))
				*--e = '\0';
			snprintf(buf, cap, "%s", v);
			break;
		}
	}
	fclose(f);
}

enum vb_status table_write_machine(const char *dir, int jobs,
				   struct vb_error *err)
{
	char path[1200], cpu[256], host[256] = "unknown", when[64];
	const char *commit = getenv("VB_GIT_COMMIT");
	char *text = NULL;
	size_t len = 0;
	struct utsname u;
	time_t now = time(NULL);
	struct tm tm;
	FILE *f = open_memstream(&text, &len);
	enum vb_status st;
	if (!f)
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	cpu_model(cpu, sizeof cpu);
	gethostname(host, sizeof host - 1);
	host[sizeof host - 1] = '\0';
	gmtime_r(&now, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	fputs("{\n", f);
	json_str(f, "cpu", cpu, false);
	fprintf(f, "  \"cpus_online\": %ld,\n",
		sysconf(_SC_NPROCESSORS_ONLN));
	fprintf(f, "  \"jobs\": %d,\n", jobs);
	json_str(f, "blas", "OpenBLAS", false);
	json_str(f, "blas_core", op_blas_core(), false);
	fprintf(f, "  \"blas_threads_per_worker\": 1,\n");
	json_str(f, "precision", VB_REAL_NAME, false);
	json_str(f, "compiler", __VERSION__, false);
#ifdef __GLIBC__
	json_str(f, "libc", gnu_get_libc_version(), false);
#endif
	if (uname(&u) == 0) {
		char k[600];
		snprintf(k, sizeof k, "%s %s %s", u.sysname, u.release,
			 u.machine);
		json_str(f, "kernel", k, false);
	}
	json_str(f, "host", host, false);
	json_str(f, "git_commit", commit && *commit ? commit : VB_GIT_COMMIT,
		 false);
	json_str(f, "written", when, true);
	fputs("}\n", f);
	fclose(f);
	snprintf(path, sizeof path, "%s/machine.json", dir);
	st = write_atomic_text(path, text, len, err);
	free(text);
	return st;
}

/* ---- report: plots ---- */

static const char *short_key(const char *key)
{
	const char *dot = strchr(key, '.');
	return dot ? dot + 1 : key;
}

static bool has_axis(const char *const *axes, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(axes[i], name))
			return true;
	return false;
}

/* Picks the map axes: the requested ones, else optim.lr x train.batch
 * when both vary, else the first varying settings (seed last). NULL for
 * an axis means a single "all" column or row. */
static void pick_map(const char *const *axes, size_t n, const char *want_x,
		     const char *want_y, const char **x, const char **y)
{
	const char *cand[64];
	size_t nc = 0;
	*x = want_x;
	*y = want_y;
	if (*x && *y)
		return;
	if (has_axis(axes, n, "optim.lr") && has_axis(axes, n, "train.batch")) {
		*x = "optim.lr";
		*y = "train.batch";
		return;
	}
	for (size_t i = 0; i < n && nc < 64; i++)
		if (strcmp(axes[i], "train.seed"))
			cand[nc++] = axes[i];
	*x = nc > 0 ? cand[0] : NULL;
	*y = nc > 1 ? cand[1] : NULL;
}

static enum vb_status plot_map(const struct table *t, const char *dir,
			       const char *kx, const char *ky,
			       struct vb_error *err)
{
	struct values vx = {0}, vy = {0};
	const char *all = "all";
	double *val = NULL;
	char **annot = NULL, path[1200], sub[256], title[256];
	enum vb_status st = VB_OK;
	size_t nx, ny;

	if (kx)
		st = distinct(t, kx, &vx, err);
	if (st == VB_OK && ky)
		st = distinct(t, ky, &vy, err);
	if (st)
		goto out;
	if (!kx) {
		vx.v = &all;
		vx.n = 1;
	}
	if (!ky) {
		vy.v = &all;
		vy.n = 1;
	}
	nx = vx.n;
	ny = vy.n;
	val = malloc(nx * ny * sizeof *val);
	annot = calloc(nx * ny, sizeof *annot);
	if (!val || !annot) {
		st = vb_fail(err, VB_ERR_NOMEM, "table: no memory");
		goto out;
	}
	for (size_t yi = 0; yi < ny; yi++) {
		for (size_t xi = 0; xi < nx; xi++) {
			size_t runs = 0, hits = 0, k = yi * nx + xi;
			double ep[4096];
			for (size_t r = 0; r < t->n_rows; r++) {
				const char *s = table_get(t, r, "status");
				double e;
				if ((kx && strcmp(table_get(t, r, kx),
						  vx.v[xi])) ||
				    (ky && strcmp(table_get(t, r, ky),
						  vy.v[yi])) ||
				    !strcmp(s, "error"))
					continue;
				runs++;
				if (is_hit(s) && hits < 4096) {
					ep[hits++] = parse_num(
						table_get(t, r, "first_epoch"),
						&e) ? e : NAN;
				}
			}
			val[k] = runs ? (double)hits / (double)runs : NAN;
			annot[k] = malloc(64);
			if (!annot[k]) {
				st = vb_fail(err, VB_ERR_NOMEM, "no memory");
				goto out;
			}
			if (!runs) {
				snprintf(annot[k], 64, "no runs");
			} else if (hits) {
				double m;
				qsort(ep, hits, sizeof *ep, cmp_double);
				m = hits % 2 ? ep[hits / 2]
					     : 0.5 * (ep[hits / 2 - 1] +
						      ep[hits / 2]);
				snprintf(annot[k], 64, "%zu/%zu\nep %.3g",
					 hits, runs, m);
			} else {
				snprintf(annot[k], 64, "%zu/%zu", hits, runs);
			}
		}
	}
	snprintf(title, sizeof title, "Stability map: share of runs that hit "
		 "NaN/Inf (%zu runs)", t->n_rows);
	snprintf(sub, sizeof sub, "cell text: runs that hit NaN / runs, "
		 "'ep': median epoch of the first NaN");
	{
		struct plot_heatmap h = {
			.title = title, .subtitle = sub,
			.x_label = kx ? kx : "", .y_label = ky ? ky : "",
			.bar_label = "NaN share", .nx = nx, .ny = ny,
			.x_ticks = vx.v, .y_ticks = vy.v, .value = val,
			.annot = (const char *const *)annot};
		snprintf(path, sizeof path, "%s/stability_map.png", dir);
		st = plot_heatmap_png(&h, path, err);
	}
out:
	if (annot)
		for (size_t i = 0; i < vx.n * vy.n; i++)
			free(annot[i]);
	free(annot);
	free(val);
	if (kx)
		free(vx.v);
	if (ky)
		free(vy.v);
	return st;
}

/* One run's curve from its metrics.csv: x = steps, y = column. */
struct curve {
	double *x, *y;
	size_t n;
};

static void read_curve(const char *dir, const char *id, const char *col,
		       struct curve *c)
{
	char path[1300];
	struct table m;
	table_init(&m);
	c->n = 0;
	c->x = c->y = NULL;
	/* runs/ID/metrics.csv, else the copy the report keeps in curves/
	 * (a committed folder has no runs/). */
	snprintf(path, sizeof path, "%s/runs/%s/metrics.csv", dir, id);
	if (access(path, F_OK) != 0)
		snprintf(path, sizeof path, "%s/curves/%s.csv", dir, id);
	if (table_read(path, &m, NULL) == VB_OK && m.n_rows) {
		c->x = malloc(m.n_rows * sizeof *c->x);
		c->y = malloc(m.n_rows * sizeof *c->y);
		if (c->x && c->y) {
			for (size_t r = 0; r < m.n_rows; r++) {
				double x, y;
				if (!parse_num(table_get(&m, r, "steps"), &x))
					continue;
				if (!parse_num(table_get(&m, r, col), &y))
					y = NAN;
				c->x[c->n] = x;
				c->y[c->n] = y;
				c->n++;
			}
		}
	}
	table_free(&m);
}

static enum vb_status plot_curves(const struct table *t, const char *dir,
				  const char *kx, const char *ky,
				  const char *col, const char *file,
				  const char *title, const char *ylabel,
				  struct vb_error *err)
{
	struct values vx = {0}, vy = {0}, vs = {0};
	const char *all = "all";
	size_t np, nx, ny;
	struct plot_panel *panels = NULL;
	struct plot_series *series = NULL;
	struct curve *curves = NULL;
	char (*titles)[160] = NULL, (*labels)[64] = NULL, path[1200];
	const char **lab = NULL;
	uint32_t *colors = NULL;
	bool seeds;
	double lo = INFINITY, hi = -INFINITY;
	enum vb_status st = VB_OK;
	size_t used = 0;

	if (kx)
		st = distinct(t, kx, &vx, err);
	if (st == VB_OK && ky)
		st = distinct(t, ky, &vy, err);
	if (st == VB_OK)
		st = distinct(t, "train.seed", &vs, err);
	if (st)
		goto out;
	if (!kx) {
		vx.v = &all;
		vx.n = 1;
	}
	if (!ky) {
		vy.v = &all;
		vy.n = 1;
	}
	nx = vx.n;
	ny = vy.n;
	np = nx * ny;
	seeds = vs.n > 1;
	panels = calloc(np, sizeof *panels);
	series = calloc(t->n_rows + 1, sizeof *series);
	curves = calloc(t->n_rows + 1, sizeof *curves);
	titles = calloc(np, sizeof *titles);
	labels = calloc(vs.n + 1, sizeof *labels);
	lab = calloc(vs.n + 1, sizeof *lab);
	colors = calloc(vs.n + 1, sizeof *colors);
	if (!panels || !series || !curves || !titles || !labels || !lab ||
	    !colors) {
		st = vb_fail(err, VB_ERR_NOMEM, "table: no memory");
		goto out;
	}
	for (size_t yi = 0; yi < ny; yi++) {
		for (size_t xi = 0; xi < nx; xi++) {
			size_t p = yi * nx + xi, first = used, line = 0;
			if (kx && ky)
				snprintf(titles[p], sizeof titles[p],
					 "%s=%s, %s=%s", short_key(kx),
					 vx.v[xi], short_key(ky), vy.v[yi]);
			else if (kx)
				snprintf(titles[p], sizeof titles[p], "%s=%s",
					 short_key(kx), vx.v[xi]);
			else
				snprintf(titles[p], sizeof titles[p], "all");
			for (size_t r = 0; r < t->n_rows; r++) {
				struct plot_series *s = &series[used];
				double ms;
				if ((kx && strcmp(table_get(t, r, kx),
						  vx.v[xi])) ||
				    (ky && strcmp(table_get(t, r, ky),
						  vy.v[yi])))
					continue;
				read_curve(dir, table_get(t, r, "id"), col,
					   &curves[used]);
				s->n = curves[used].n;
				s->x = curves[used].x;
				s->y = curves[used].y;
				s->color = plot_palette(
					seeds ? value_index(
							&vs,
							table_get(t, r,
								  "train.seed"))
					      : line);
				s->mark_x = is_hit(table_get(t, r, "status")) &&
						    parse_num(table_get(
								t, r,
								"first_step"),
							&ms)
						    ? ms
						    : NAN;
				for (size_t i = 0; i < s->n; i++)
					if (isfinite(s->y[i]) && s->y[i] > 0) {
						lo = fmin(lo, s->y[i]);
						hi = fmax(hi, s->y[i]);
					}
				used++;
				line++;
			}
			panels[p].title = titles[p];
			panels[p].n_series = used - first;
			panels[p].series = &series[first];
		}
	}
	snprintf(path, sizeof path, "%s/%s", dir, file);
	{
		/* no run has a curve (a clone of a folder that predates
		 * curves/): keep the plot drawn when runs/ was there */
		size_t with_curve = 0;
		for (size_t i = 0; i < used; i++)
			with_curve += curves[i].n > 0;
		if (!with_curve && access(path, F_OK) == 0)
			goto out;
	}
	for (size_t i = 0; seeds && i < vs.n; i++) {
		snprintf(labels[i], sizeof labels[i], "seed %s", vs.v[i]);
		lab[i] = labels[i];
		colors[i] = plot_palette(i);
	}
	{
		struct plot_lines pl = {
			.title = title, .x_label = "optimizer step",
			.y_label = ylabel,
			.log_y = hi > 0 && lo > 0 && hi / lo > 30,
			.n_panels = np, .n_cols = nx, .panels = panels,
			.legend_n = seeds ? vs.n : 0, .legend_labels = lab,
			.legend_colors = colors};
		st = plot_lines_png(&pl, path, err);
	}
out:
	for (size_t i = 0; curves && i < used; i++) {
		free(curves[i].x);
		free(curves[i].y);
	}
	free(curves);
	free(series);
	free(panels);
	free(titles);
	free(labels);
	free(lab);
	free(colors);
	if (kx)
		free(vx.v);
	if (ky)
		free(vy.v);
	free(vs.v);
	return st;
}

#define TABLE_GALLERY_MAX 12 /* finished runs shown in the galleries */

/* reconstructions.png and samples.png of the sweep: the pictures of the
 * first finished (status ok) runs in results order, each under its
 * swept settings. */
static enum vb_status plot_galleries(const struct table *t, const char *dir,
				     const char **axes, size_t n_axes,
				     struct vb_error *err)
{
	static const char *const files[2] = {"reconstructions.png",
					     "samples.png"};
	static const char *const titles[2] = {
		"Reconstructions of finished runs (top: images, bottom: "
		"reconstructions)",
		"Samples of finished runs (decoder of z ~ N(0, I))"};
	char paths[TABLE_GALLERY_MAX][1300], labels[TABLE_GALLERY_MAX][512];
	const char *pp[TABLE_GALLERY_MAX], *lp[TABLE_GALLERY_MAX];
	enum vb_status st = VB_OK;
	for (int f = 0; f < 2 && st == VB_OK; f++) {
		size_t n = 0;
		for (size_t r = 0; r < t->n_rows && n < TABLE_GALLERY_MAX; r++) {
			const char *status = table_get(t, r, "status");
			const char *id = table_get(t, r, "id");
			size_t len = 0;
			if (!status || strcmp(status, "ok") != 0 || !id)
				continue;
			snprintf(paths[n], sizeof paths[n], "%s/runs/%s/%s", dir,
				 id, files[f]);
			labels[n][0] = '\0';
			for (size_t a = 0; a < n_axes && len < sizeof labels[n];
			     a++) {
				const char *v = table_get(t, r, axes[a]);
				len += (size_t)snprintf(labels[n] + len,
							sizeof labels[n] - len,
							"%s%s=%s", a ? "  " : "",
							axes[a], v ? v : "");
			}
			pp[n] = paths[n];
			lp[n] = labels[n];
			n++;
		}
		char out[1300];
		snprintf(out, sizeof out, "%s/%s", dir, files[f]);
		st = plot_stack_png(pp, lp, n, titles[f], out, err);
	}
	return st;
}

/* Length in pixels (of full) of a bar for v > 0 on [0, vmax], or on a
 * log axis from vmin / 3 to vmax. */
static int bar_len(double v, double vmin, double vmax, bool log_x, int full)
{
	double f;
	if (!(v > 0) || !(vmax > 0))
		return 0;
	if (log_x)
		f = (log10(v) - log10(vmin / 3)) /
		    (log10(vmax) - log10(vmin / 3));
	else
		f = v / vmax;
	return (int)(f * full + 0.5);
}

/* mitigations.png: per mitigation (file order, top to bottom) a bar of
 * its NaN/Inf share and one of its mean eval loss at the comparison epoch
 * with the baseline's value dashed. Drawn from plot's primitives. */
static enum vb_status plot_mitigations(const struct table *t, const char *dir,
				       struct vb_error *err)
{
	const int s = 2, th = plot_text_height(s), row = th + 16, pw = 360;
	const uint32_t ink = 0x222222, grey = 0x888888;
	struct mit_table mt;
	struct plot_image *img = NULL;
	char path[1200], buf[160];
	int lw = 0, top, x1, x2, w, h;
	double vmax = 0, vmin = INFINITY, base_v;
	bool log_x;
	enum vb_status st = mit_collect(t, &mt, err);
	if (st || !mt.n) {
		mit_free(&mt);
		return st;
	}
	for (size_t i = 0; i < mt.n; i++) {
		int tw = plot_text_width(mt.m[i].name, s);
		const struct mit *m = &mt.m[i];
		double v = m->n_at ? m->at_sum / (double)m->n_at : NAN;
		lw = tw > lw ? tw : lw;
		if (v > 0 && v > vmax)
			vmax = v;
		if (v > 0 && v < vmin)
			vmin = v;
	}
	/* a log axis when the losses span more than a factor 30, starting
	 * a factor 3 below the smallest so that it shows as a bar */
	log_x = vmax > 0 && vmax / vmin > 30;
	lw = lw > 320 ? 320 : lw;
	top = 20 + 2 * (th + 8) + th + 12;
	x1 = 20 + lw + 16;
	x2 = x1 + pw + 40 + plot_text_width("100% (99/99)", s);
	w = x2 + pw + 40 + plot_text_width("-1.234e+05 (99)", s);
	h = top + (int)mt.n * row + 20;
	st = plot_image_create(w, h, &img, err);
	if (st) {
		mit_free(&mt);
		return st;
	}
	plot_text(img, 20, 20, s, false, ink,
		  "Mitigations: share of runs that hit NaN/Inf, and eval loss");
	if (mt.epoch > 0)
		snprintf(buf, sizeof buf, "right: mean eval loss at epoch %ld "
			 "(runs that reached it); dashed: %s", mt.epoch,
			 mt.m[mt.base].name);
	else
		snprintf(buf, sizeof buf, "right: no comparison epoch (a %s "
			 "run has no finite eval loss)", mt.m[mt.base].name);
	plot_text(img, 20, 20 + th + 8, s, false, 0x555555, buf);
	plot_text(img, x1, top - th - 8, s, false, ink, "NaN/Inf share");
	if (mt.epoch > 0) {
		snprintf(buf, sizeof buf, "eval loss at epoch %ld%s", mt.epoch,
			 log_x ? " (log scale)" : "");
		plot_text(img, x2, top - th - 8, s, false, ink, buf);
		plot_line(img, x2, top, x2, top + (int)mt.n * row, 1, 0,
			  grey);
	}
	plot_line(img, x1, top, x1, top + (int)mt.n * row, 1, 0, grey);
	for (size_t i = 0; i < mt.n; i++) {
		const struct mit *m = &mt.m[i];
		int y = top + (int)i * row, bw;
		double share = m->runs ? (double)m->hits / (double)m->runs
				       : NAN;
		snprintf(buf, sizeof buf, "%s", m->name);
		while (plot_text_width(buf, s) > lw && strlen(buf) > 3) {
			size_t n = strlen(buf);
			memcpy(buf + n - 3, "..", 3);
		}
		plot_text(img, x1 - 16 - plot_text_width(buf, s), y + 8, s,
			  false, ink, buf);
		bw = isfinite(share) ? (int)(share * pw + 0.5) : 0;
		plot_fill_rect(img, x1 + 1, y + 4, bw > 0 ? bw : 1, row - 8,
			       plot_share_color(share));
		if (m->runs)
			snprintf(buf, sizeof buf, "%.0f%% (%zu/%zu)",
				 100.0 * share, m->hits, m->runs);
		else
			snprintf(buf, sizeof buf, "no runs");
		plot_text(img, x1 + bw + 8, y + 8, s, false, ink, buf);
		if (mt.epoch <= 0 || vmax <= 0)
			continue;
		if (m->n_at) {
			double v = m->at_sum / (double)m->n_at;
			bw = bar_len(v, vmin, vmax, log_x, pw);
			plot_fill_rect(img, x2 + 1, y + 4, bw > 0 ? bw : 1,
				       row - 8, plot_palette(0));
			snprintf(buf, sizeof buf, "%.4g (%zu)", v, m->n_at);
		} else {
			bw = 0;
			snprintf(buf, sizeof buf, "- (0)");
		}
		plot_text(img, x2 + bw + 8, y + 8, s, false, ink, buf);
	}
	base_v = mt.m[mt.base].n_at ? mt.m[mt.base].at_sum /
					      (double)mt.m[mt.base].n_at
				    : NAN;
	if (mt.epoch > 0 && vmax > 0 && isfinite(base_v) && base_v > 0) {
		int bx = x2 + 1 + bar_len(base_v, vmin, vmax, log_x, pw);
		plot_line(img, bx, top, bx, top + (int)mt.n * row, 2, 6,
			  0xd62728);
	}
	snprintf(path, sizeof path, "%s/mitigations.png", dir);
	st = plot_write_png(img, path, err);
	plot_image_free(img);
	mit_free(&mt);
	return st;
}

/* Copies src to dst through dst.tmp and a rename. A missing src is not
 * an error (nothing is copied): a folder cloned without its runs/ keeps
 * the copies it has. */
static enum vb_status copy_file(const char *src, const char *dst,
				struct vb_error *err)
{
	char tmp[1400], buf[65536];
	FILE *in = fopen(src, "rb"), *out;
	size_t n;
	bool ok = true;
	if (!in)
		return errno == ENOENT
			       ? VB_OK
			       : vb_fail(err, VB_ERR_IO, "report: cannot read "
					 "%s: %s", src, strerror(errno));
	snprintf(tmp, sizeof tmp, "%s.tmp", dst);
	out = fopen(tmp, "wb");
	if (!out) {
		fclose(in);
		return vb_fail(err, VB_ERR_IO, "report: cannot write %s: %s",
			       tmp, strerror(errno));
	}
	while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
		ok = fwrite(buf, 1, n, out) == n;
	ok = ok && !ferror(in);
	fclose(in);
	ok = (fclose(out) == 0) && ok;
	if (!ok || rename(tmp, dst) != 0) {
		remove(tmp);
		return vb_fail(err, VB_ERR_IO, "report: cannot copy %s to %s",
			       src, dst);
	}
	return VB_OK;
}

static enum vb_status ensure_dir(const char *path, struct vb_error *err)
{
	if (mkdir(path, 0777) != 0 && errno != EEXIST)
		return vb_fail(err, VB_ERR_IO, "report: cannot create %s: %s",
			       path, strerror(errno));
	return VB_OK;
}

/* DIR/curves/ID.csv (the run's per-epoch metrics.csv) for every run and
 * DIR/precursors/ID.csv (its precursor ring, the steps before the first
 * non-finite value) for every run that hit NaN/Inf, so that the curves
 * and traces travel with the committed tables while runs/ stays out of
 * the repository; the plots read curves/ when runs/ is absent. */
static enum vb_status copy_run_files(const struct table *t, const char *dir,
				     struct vb_error *err)
{
	char curves[1200], prec[1200], src[1400], dst[1400];
	enum vb_status st = VB_OK;
	snprintf(curves, sizeof curves, "%s/curves", dir);
	snprintf(prec, sizeof prec, "%s/precursors", dir);
	for (size_t r = 0; r < t->n_rows && st == VB_OK; r++) {
		const char *status = table_get(t, r, "status");
		const char *id = table_get(t, r, "id");
		if (!status || !id)
			continue;
		snprintf(src, sizeof src, "%s/runs/%s/metrics.csv", dir, id);
		if (access(src, F_OK) == 0) {
			st = ensure_dir(curves, err);
			snprintf(dst, sizeof dst, "%s/%s.csv", curves, id);
			if (st == VB_OK)
				st = copy_file(src, dst, err);
		}
		if (st != VB_OK || (strcmp(status, "nan") != 0 &&
				    strcmp(status, "inf") != 0))
			continue;
		snprintf(src, sizeof src, "%s/runs/%s/precursors.csv", dir, id);
		if (access(src, F_OK) != 0)
			continue;
		st = ensure_dir(prec, err);
		snprintf(dst, sizeof dst, "%s/%s.csv", prec, id);
		if (st == VB_OK)
			st = copy_file(src, dst, err);
	}
	return st;
}

#define TABLE_MISSING_LISTED 40 /* missing cells named in the note */

/* When DIR/sweep.ini (the grid the folder was swept from) has cells
 * without a row, *note says so in one markdown paragraph: how many cells
 * have rows, which are missing and the command that runs only those.
 * NULL when the grid is complete or the folder has no sweep.ini (a merge
 * of several sweeps). A sweep.ini that does not load is an error. */
static enum vb_status grid_note(const struct table *t, const char *dir,
				char **note, struct vb_error *err)
{
	char path[1200];
	struct sweep_plan *p = NULL;
	bool *have = NULL;
	size_t n_have = 0, listed = 0, len = 0;
	FILE *f;
	enum vb_status st;
	*note = NULL;
	snprintf(path, sizeof path, "%s/sweep.ini", dir);
	if (access(path, F_OK) != 0)
		return VB_OK;
	st = sweep_plan_load(path, &p, err);
	if (st)
		return st;
	have = calloc(p->n_cells ? p->n_cells : 1, sizeof *have);
	if (!have) {
		sweep_plan_free(p);
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	}
	for (size_t r = 0; r < t->n_rows; r++) {
		const char *c = table_get(t, r, "cell");
		char *end;
		unsigned long long i;
		if (!c || !*c)
			continue;
		i = strtoull(c, &end, 10);
		if (*end == '\0' && i < p->n_cells && !have[i]) {
			have[i] = true;
			n_have++;
		}
	}
	if (n_have < p->n_cells) {
		f = open_memstream(note, &len);
		if (!f) {
			st = vb_fail(err, VB_ERR_NOMEM, "table: no memory");
		} else {
			fprintf(f, "**Partial: %zu of the %zu cells of "
				"sweep.ini have rows.** Missing cells:",
				n_have, p->n_cells);
			for (size_t i = 0; i < p->n_cells; i++) {
				if (have[i])
					continue;
				if (listed++ == TABLE_MISSING_LISTED) {
					fputs(" ...", f);
					break;
				}
				fprintf(f, "%s %zu", listed > 1 ? "," : "",
					i);
			}
			fprintf(f, ". `vaebench sweep %s/sweep.ini --out %s` "
				"runs only those (`--cell INDEX` one of them).",
				dir, dir);
			if (fclose(f) != 0 || !*note)
				st = vb_fail(err, VB_ERR_NOMEM,
					     "table: no memory");
		}
	}
	free(have);
	sweep_plan_free(p);
	return st;
}

enum vb_status table_report(const char *dir, const char *map_x,
			    const char *map_y, struct vb_error *err)
{
	struct table t;
	char path[1200], rows[1200], title[1300], *note = NULL;
	struct stat sb;
	const char **axes = NULL, *kx, *ky;
	size_t n_axes;
	enum vb_status st;

	table_init(&t);
	snprintf(rows, sizeof rows, "%s/rows", dir);
	snprintf(path, sizeof path, "%s/results.csv", dir);
	if (stat(rows, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		st = table_collect_rows(dir, &t, err);
		if (st == VB_OK && t.n_cols == 0)
			st = vb_fail(err, VB_ERR_DATA, "report: %s holds no "
				     "rows yet", rows);
		if (st == VB_OK)
			st = table_write(&t, path, err);
	} else {
		st = table_read(path, &t, err);
		if (st == VB_ERR_IO)
			st = vb_fail(err, VB_ERR_USAGE, "report: %s has "
				     "neither rows/ nor results.csv", dir);
		if (st == VB_OK)
			table_sort_rows(&t);
	}
	if (st == VB_OK && (table_col(&t, "id") < 0 ||
			    table_col(&t, "status") < 0))
		st = vb_fail(err, VB_ERR_DATA, "report: %s: no id or status "
			     "column", path);
	if (st == VB_OK) {
		snprintf(title, sizeof title, "Sweep summary: %s", dir);
		st = grid_note(&t, dir, &note, err);
	}
	if (st == VB_OK) {
		snprintf(path, sizeof path, "%s/summary.md", dir);
		st = table_write_summary(&t, title, note, path, err);
	}
	if (st == VB_OK) {
		bool written;
		snprintf(path, sizeof path, "%s/mitigations.csv", dir);
		st = table_write_mitigations(&t, path, &written, err);
		if (st == VB_OK && written)
			st = plot_mitigations(&t, dir, err);
	}
	if (st == VB_OK)
		st = find_axes(&t, &axes, &n_axes, err);
	if (st == VB_OK) {
		pick_map(axes, n_axes, map_x, map_y, &kx, &ky);
		if (kx && table_col(&t, kx) < 0)
			st = vb_fail(err, VB_ERR_USAGE, "report: map axis %s "
				     "is not a column of the results", kx);
		else if (ky && table_col(&t, ky) < 0)
			st = vb_fail(err, VB_ERR_USAGE, "report: map axis %s "
				     "is not a column of the results", ky);
	}
	if (st == VB_OK)
		st = plot_map(&t, dir, kx, ky, err);
	if (st == VB_OK)
		st = plot_curves(&t, dir, kx, ky, "train_loss",
				 "loss_curves.png",
				 "Training loss (epoch means); red dashes: "
				 "step of the first NaN/Inf",
				 "train loss", err);
	if (st == VB_OK)
		st = plot_curves(&t, dir, kx, ky, "grad_norm_max",
				 "grad_norm.png",
				 "Largest gradient norm per epoch; red dashes: "
				 "step of the first NaN/Inf",
				 "max grad norm", err);
	if (st == VB_OK)
		st = plot_galleries(&t, dir, axes, n_axes, err);
	if (st == VB_OK)
		st = copy_run_files(&t, dir, err);
	free(axes);
	free(note);
	table_free(&t);
	return st;
}

/* ---- merge ---- */

enum vb_status table_merge(const char *out, const char *const *dirs,
			   size_t n_dirs, struct vb_error *err)
{
	struct table all;
	char path[1300], runs[1200];
	enum vb_status st = VB_OK;
	struct stat sb;

	table_init(&all);
	snprintf(runs, sizeof runs, "%s/runs", out);
	st = files_mkdirs(runs, err);
	snprintf(path, sizeof path, "%s/rows", out);
	if (st == VB_OK)
		st = files_mkdirs(path, err);
	for (size_t i = 0; st == VB_OK && i < n_dirs; i++) {
		struct table one;
		table_init(&one);
		snprintf(path, sizeof path, "%s/rows", dirs[i]);
		if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
			st = table_collect_rows(dirs[i], &one, err);
		} else {
			snprintf(path, sizeof path, "%s/results.csv", dirs[i]);
			st = table_read(path, &one, err);
			if (st == VB_ERR_IO)
				st = vb_fail(err, VB_ERR_USAGE,
					     "merge: %s has neither rows/ nor "
					     "results.csv", dirs[i]);
		}
		if (st == VB_OK && table_col(&one, "id") < 0)
			st = vb_fail(err, VB_ERR_DATA, "merge: %s: no id "
				     "column", dirs[i]);
		/* Link each run folder so that the report finds its
		 * metrics.csv; the first folder holding an id wins. */
		for (size_t r = 0; st == VB_OK && r < one.n_rows; r++) {
			char src[1300], dst[1300], real[PATH_MAX];
			const char *id = table_get(&one, r, "id");
			snprintf(src, sizeof src, "%s/runs/%s", dirs[i], id);
			snprintf(dst, sizeof dst, "%s/runs/%s", out, id);
			if (lstat(dst, &sb) == 0 || !realpath(src, real))
				continue;
			if (symlink(real, dst) != 0)
				st = vb_fail(err, VB_ERR_IO, "merge: cannot "
					     "link %s: %s", dst,
					     strerror(errno));
		}
		if (st == VB_OK)
			st = table_append(&all, &one, err);
		table_free(&one);
	}
	if (st == VB_OK)
		table_sort_rows(&all);
	for (size_t r = 0; st == VB_OK && r < all.n_rows; r++) {
		struct table one;
		size_t row;
		table_init(&one);
		for (size_t c = 0; st == VB_OK && c < all.n_cols; c++)
			st = add_col(&one, all.cols[c], err);
		if (st == VB_OK)
			st = add_row(&one, &row, err);
		for (size_t c = 0; st == VB_OK && c < all.n_cols; c++)
			st = set_cell(&one, row, c,
				      all.cells[r * all.n_cols + c], err);
		snprintf(path, sizeof path, "%s/rows/%s.csv", out,
			 table_get(&all, r, "id"));
		if (st == VB_OK)
			st = table_write(&one, path, err);
		table_free(&one);
	}
	table_free(&all);
	if (st == VB_OK)
		st = table_report(out, NULL, NULL, err);
	return st;
}

/* ---- commands ---- */

static enum vb_status parse_map(const char *v, char *x, char *y, size_t cap,
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

enum vb_status table_report_command(int argc, char **argv, FILE *log,
				    struct vb_error *err)
{
	const char *dir = NULL;
	char mx[128], my[128];
	bool map = false;
	enum vb_status st;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--map")) {
			if (i + 1 >= argc)
				return vb_fail(err, VB_ERR_USAGE,
					       "--map needs a value");
			st = parse_map(argv[++i], mx, my, sizeof mx, err);
			if (st)
				return st;
			map = true;
		} else if (argv[i][0] == '-') {
			return vb_fail(err, VB_ERR_USAGE,
				       "unknown option '%s'", argv[i]);
		} else if (!dir) {
			dir = argv[i];
		} else {
			return vb_fail(err, VB_ERR_USAGE,
				       "report takes one folder");
		}
	}
	if (!dir)
		return vb_fail(err, VB_ERR_USAGE, "report needs a sweep folder");
	st = table_report(dir, map ? mx : NULL, map ? my : NULL, err);
	if (st == VB_OK && log)
		fprintf(log, "report: wrote %s/results.csv, summary.md, "
			"stability_map.png, loss_curves.png, grad_norm.png\n",
			dir);
	return st;
}

enum vb_status table_merge_command(int argc, char **argv, FILE *log,
				   struct vb_error *err)
{
	enum vb_status st;
	for (int i = 0; i < argc; i++)
		if (argv[i][0] == '-')
			return vb_fail(err, VB_ERR_USAGE,
				       "unknown option '%s'", argv[i]);
	if (argc < 2)
		return vb_fail(err, VB_ERR_USAGE,
			       "merge needs OUT and at least one sweep folder");
	st = table_merge(argv[0], (const char *const *)(argv + 1),
			 (size_t)(argc - 1), err);
	if (st == VB_OK && log)
		fprintf(log, "merge: %d folder(s) into %s (results.csv, "
			"summary.md, plots)\n", argc - 1, argv[0]);
	return st;
}
