/* table: the result row (settings through config_get_at, results through
 * the column list below), CSV reading and writing, and results.csv from
 * the rows folder. Statistics are stats.c's, summary.md / machine.json /
 * report / merge report.c's, figure selection figures.c's. */
#include "table.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "guard.h"
#include "runlog.h"

void table_fmt_real(double v, char *buf, size_t cap)
{
	if (isnan(v))
		snprintf(buf, cap, "nan");
	else if (isinf(v))
		snprintf(buf, cap, v > 0 ? "inf" : "-inf");
	else
		snprintf(buf, cap, "%.9g", v);
}

/* v as %ld into b (n bytes) when have, else "". */
static void long_or_blank(bool have, long v, char *b, size_t n)
{
	if (have)
		snprintf(b, n, "%ld", v);
	else
		b[0] = '\0';
}

/* v as table_fmt_real prints it into b (n bytes) when have, else "". */
static void real_or_blank(bool have, double v, char *b, size_t n)
{
	if (have)
		table_fmt_real(v, b, n);
	else
		b[0] = '\0';
}

static void get_status(const struct train_summary *s, char *b, size_t n)
{
	snprintf(b, n, "%s", guard_status_name(s->status));
}
static void get_first_epoch(const struct train_summary *s, char *b, size_t n)
{
	long_or_blank(s->first.set, s->first.epoch, b, n);
}
static void get_first_step(const struct train_summary *s, char *b, size_t n)
{
	long_or_blank(s->first.set, s->first.step, b, n);
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
	real_or_blank(s->first.set, s->first.value, b, n);
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
	table_fmt_real(s->final_train_loss, b, n);
}
static void get_final_eval(const struct train_summary *s, char *b, size_t n)
{
	table_fmt_real(s->final_eval_loss, b, n);
}
static void get_best_eval(const struct train_summary *s, char *b, size_t n)
{
	real_or_blank(s->best_epoch > 0, s->best_eval_loss, b, n);
}
static void get_best_epoch(const struct train_summary *s, char *b, size_t n)
{
	long_or_blank(s->best_epoch > 0, s->best_epoch, b, n);
}
static void get_seconds(const struct train_summary *s, char *b, size_t n)
{
	snprintf(b, n, "%.3f", s->seconds);
}

bool table_parse_num(const char *s, double *v)
{
	char *end;
	if (!*s)
		return false;
	*v = strtod(s, &end);
	return *end == '\0';
}

/* A per-epoch column of the run folder's metrics.csv as a list
 * (runlog_metric_list); nothing for a run that ended in an error. */
static void metric_list(const struct train_summary *s, const char *col,
			char *b, size_t n)
{
	b[0] = '\0';
	if (s->status != GUARD_STATUS_ERROR && s->run_dir[0])
		runlog_metric_list(s->run_dir, col, b, n);
}

static void get_cpu_per_epoch(const struct train_summary *s, char *b,
			      size_t n)
{
	double v;
	b[0] = '\0';
	if (s->run_dir[0] && runlog_cpu_per_epoch(s->run_dir, &v))
		snprintf(b, n, "%.3f", v);
}

static void get_eval_losses(const struct train_summary *s, char *b, size_t n)
{
	metric_list(s, "eval_loss", b, n);
}

static void get_eval_sses(const struct train_summary *s, char *b, size_t n)
{
	metric_list(s, "eval_sse", b, n);
}

void table_list_of(const struct table *m, const char *col, char *b,
		   size_t n, size_t *used)
{
	for (size_t r = 0; r < m->n_rows; r++) {
		char one[48];
		double v;
		size_t len;
		const char *ev = table_get(m, r, col);
		if (!ev[0]) /* not evaluated (train.eval_every) */
			snprintf(one, sizeof one, "%s", r ? ";" : "");
		else if (table_parse_num(ev, &v) && isfinite(v))
			snprintf(one, sizeof one, "%s%.9g", r ? ";" : "", v);
		else
			snprintf(one, sizeof one, "%snan", r ? ";" : "");
		len = strlen(one);
		if (*used + len >= n)
			break;
		memcpy(b + *used, one, len + 1);
		*used += len;
	}
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
	long_or_blank(has_cause(s) && s->first.origin_step > 0,
		      s->first.origin_step, b, n);
}
static void get_bad_samples(const struct train_summary *s, char *b, size_t n)
{
	long_or_blank(has_cause(s) && s->first.n_bad_samples >= 0,
		      s->first.n_bad_samples, b, n);
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
	long_or_blank(s->lead_step > 0, s->lead_step, b, n);
}
static void get_lead_time(const struct train_summary *s, char *b, size_t n)
{
	long_or_blank(s->lead_time >= 0, s->lead_time, b, n);
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

static void get_clipped_share(const struct train_summary *s, char *b,
			      size_t n)
{
	table_fmt_real(s->clipped_share, b, n);
}
static void get_pythae_error(const struct train_summary *s, char *b,
			     size_t n)
{
	snprintf(b, n, "%s", s->pythae_error);
}
static void get_first_batch(const struct train_summary *s, char *b, size_t n)
{
	snprintf(b, n, "%s", s->first.set ? s->first_batch : "");
}

static void get_last_finite_epoch(const struct train_summary *s, char *b,
				  size_t n)
{
	long_or_blank(s->last_finite_epoch > 0, s->last_finite_epoch, b, n);
}
/* A held-out value: blank when its epoch does not exist. */
static void fmt_at(bool have, double v, char *b, size_t n)
{
	real_or_blank(have, v, b, n);
}
static void get_sse_best(const struct train_summary *s, char *b, size_t n)
{
	fmt_at(s->best_epoch > 0, s->sse_best, b, n);
}
static void get_sse_last(const struct train_summary *s, char *b, size_t n)
{
	fmt_at(s->last_finite_epoch > 0, s->sse_last, b, n);
}
static void get_sse_max(const struct train_summary *s, char *b, size_t n)
{
	fmt_at(!(s->sse_max == -INFINITY), s->sse_max, b, n);
}
static void get_bce_best(const struct train_summary *s, char *b, size_t n)
{
	fmt_at(s->best_epoch > 0, s->bce_best, b, n);
}
static void get_bce_last(const struct train_summary *s, char *b, size_t n)
{
	fmt_at(s->last_finite_epoch > 0, s->bce_last, b, n);
}
static void get_nll_best(const struct train_summary *s, char *b, size_t n)
{
	fmt_at(s->nll_best_set, s->nll_best, b, n);
}
static void get_nll_last(const struct train_summary *s, char *b, size_t n)
{
	fmt_at(s->nll_last_set, s->nll_last, b, n);
}
static void get_nll_seconds(const struct train_summary *s, char *b, size_t n)
{
	snprintf(b, n, "%.3f", s->nll_seconds);
}

static void get_h_clamped_share(const struct train_summary *s, char *b,
				size_t n)
{
	fmt_at(s->h_grad_entries > 0,
	       (double)s->h_grad_clamped / (double)s->h_grad_entries, b, n);
}

static void get_worst_partial_epochs(const struct train_summary *s,
				     char *b, size_t n)
{
	snprintf(b, n, "%ld", s->worst_partial_epochs);
}
static void get_worst_partial_expected(const struct train_summary *s,
				       char *b, size_t n)
{
	table_fmt_real(s->worst_partial_expected, b, n);
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
	{"last_finite_epoch", false, get_last_finite_epoch},
	{"nll_best", false, get_nll_best},
	{"nll_last", false, get_nll_last},
	{"sse_best", false, get_sse_best},
	{"sse_last", false, get_sse_last},
	{"sse_max", false, get_sse_max},
	{"bce_best", false, get_bce_best},
	{"bce_last", false, get_bce_last},
	{"nll_seconds", true, get_nll_seconds},
	{"worst_partial_epochs", false, get_worst_partial_epochs},
	{"worst_partial_expected", false, get_worst_partial_expected},
	{"clipped_share", false, get_clipped_share},
	{"h_clamped_share", false, get_h_clamped_share},
	{"pythae_error", false, get_pythae_error},
	{"first_batch", false, get_first_batch},
	{"seconds", true, get_seconds},
	{"cpu_per_epoch", true, get_cpu_per_epoch},
	{"eval_losses", false, get_eval_losses},
	{"eval_sses", false, get_eval_sses},
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

void table_csv_field(FILE *f, const char *s)
{
	files_csv_field(f, s);
}

enum vb_status table_row_write(FILE *f, const char *id, size_t cell,
			       const char *mitigation, const struct config *c,
			       const struct train_summary *s,
			       struct vb_error *err)
{
	/* room for every epoch's eval loss: %.9g and ';' fit in 32 */
	size_t cap = CONFIG_VALUE_LEN + sizeof s->first_batch +
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
	table_csv_field(f, mitigation ? mitigation : "");
	for (size_t i = 0; i < config_key_count(); i++) {
		if (!row_setting(config_key_name(i)))
			continue;
		if (config_get_at(c, i, buf, cap, err)) {
			free(buf);
			return VB_ERR_CONFIG;
		}
		fputc(',', f);
		table_csv_field(f, buf);
	}
	for (size_t i = 0; i < N_RESULT; i++) {
		RESULT_COLUMNS[i].get(s, buf, cap);
		fputc(',', f);
		table_csv_field(f, buf);
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

enum vb_status table_add_col(struct table *t, const char *name,
			      struct vb_error *err)
{
	size_t nc = t->n_cols + 1;
	char **cols = realloc(t->cols, nc * sizeof *cols);
	char **cells;
	if (!cols)
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	t->cols = cols;
	cols[t->n_cols] = files_dup_str(name);
	cells = calloc(t->cap_rows ? t->cap_rows * nc : 1, sizeof *cells);
	if (!cols[t->n_cols] || !cells) {
		free(cols[t->n_cols]);
		free(cells);
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	}
	for (size_t r = 0; r < t->n_rows; r++) {
		for (size_t c = 0; c < t->n_cols; c++)
			cells[r * nc + c] = t->cells[r * t->n_cols + c];
		cells[r * nc + t->n_cols] = files_dup_str("");
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
enum vb_status table_add_row(struct table *t, size_t *row,
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
		t->cells[t->n_rows * t->n_cols + c] = files_dup_str("");
		if (!t->cells[t->n_rows * t->n_cols + c]) {
			for (size_t q = 0; q < c; q++)
				free(t->cells[t->n_rows * t->n_cols + q]);
			return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
		}
	}
	*row = t->n_rows++;
	return VB_OK;
}

enum vb_status table_set_cell(struct table *t, size_t row, size_t col,
			       const char *v, struct vb_error *err)
{
	char *d = files_dup_str(v);
	if (!d)
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	free(t->cells[row * t->n_cols + col]);
	t->cells[row * t->n_cols + col] = d;
	return VB_OK;
}

/* Reads one CSV record from *p into fields (each malloc'd); returns the
 * number of fields, 0 at the end, -1 on no memory or a bad quote. */
/* The n fields read so far (on a bad record: its caller gets -1 and
 * nothing to free). */
static long drop_fields(char **fields, long n)
{
	while (n > 0)
		free(fields[--n]);
	return -1;
}

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
			return drop_fields(*fields, n);
		if (*s == '"') {
			s++;
			for (;;) {
				if (!*s) { /* an unterminated quote */
					free(buf);
					return drop_fields(*fields, n);
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
				return drop_fields(*fields, n);
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

enum vb_status table_read(const char *path, struct table *t,
			  struct vb_error *err)
{
	char *text, **fields = NULL;
	const char *p;
	size_t cap = 0;
	long n, line = 1;
	enum vb_status st = files_read(path, &text, NULL, err);
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
			st = table_add_col(t, fields[i], err);
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
			st = table_add_row(t, &row, err);
		}
		for (long i = 0; i < n; i++) {
			if (st == VB_OK)
				st = table_set_cell(t, row, (size_t)i, fields[i],
					      err);
			free(fields[i]);
		}
	}
	free(fields);
	free(text);
	return st;
}

/* The default of setting column name (defaults d) as config_get formats
 * it into buf (CONFIG_VALUE_LEN bytes); false for a column that is not a
 * setting. */
static bool setting_default(const struct config *d, const char *name,
			    char *buf)
{
	if (!table_is_setting(name))
		return false;
	return config_get(d, name, buf, CONFIG_VALUE_LEN, NULL) == VB_OK;
}

enum vb_status table_append(struct table *dst, const struct table *src,
			    struct vb_error *err)
{
	enum vb_status st = VB_OK;
	size_t old_rows = dst->n_rows;
	char def[CONFIG_VALUE_LEN];
	struct config d;
	config_defaults(&d);
	for (size_t c = 0; st == VB_OK && c < src->n_cols; c++) {
		size_t col;
		if (table_col(dst, src->cols[c]) >= 0)
			continue;
		st = table_add_col(dst, src->cols[c], err);
		/* rows written before this setting existed ran with its
		 * default (settings are added off by default) */
		col = dst->n_cols - 1;
		if (st == VB_OK && old_rows &&
		    setting_default(&d, src->cols[c], def))
			for (size_t r = 0; st == VB_OK && r < old_rows; r++)
				st = table_set_cell(dst, r, col, def, err);
	}
	for (size_t r = 0; st == VB_OK && r < src->n_rows; r++) {
		size_t row;
		st = table_add_row(dst, &row, err);
		for (size_t c = 0; st == VB_OK && c < dst->n_cols; c++) {
			int sc = table_col(src, dst->cols[c]);
			if (sc >= 0)
				st = table_set_cell(dst, row, c,
					      src->cells[r * src->n_cols +
							 (size_t)sc],
					      err);
			else if (setting_default(&d, dst->cols[c], def))
				st = table_set_cell(dst, row, c, def, err);
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
		table_csv_field(m, t->cols[c]);
	}
	fputc('\n', m);
	for (size_t r = 0; r < t->n_rows; r++) {
		for (size_t c = 0; c < t->n_cols; c++) {
			if (c)
				fputc(',', m);
			table_csv_field(m, t->cells[r * t->n_cols + c]);
		}
		fputc('\n', m);
	}
	fclose(m);
	st = files_write_atomic(path, text, len, false, err);
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
		names[n] = files_dup_str(e->d_name);
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

bool table_curve_path(const char *dir, const char *id, char *path, size_t n)
{
	snprintf(path, n, "%s/runs/%s/metrics.csv", dir, id);
	if (!files_exists(path))
		snprintf(path, n, "%s/curves/%s.csv", dir, id);
	return files_exists(path);
}

/* table.h; the "learned" rule reads the per-epoch SSE. */
enum vb_status table_fill_sse_lists(const char *dir, struct table *t,
				    struct vb_error *err)
{
	enum vb_status st = VB_OK;
	int c = table_col(t, "eval_sses");
	if (c < 0) {
		st = table_add_col(t, "eval_sses", err);
		c = table_col(t, "eval_sses");
	}
	for (size_t r = 0; st == VB_OK && r < t->n_rows; r++) {
		char path[1300], list[8192];
		size_t used = 0;
		struct table m;
		const char *id = table_get(t, r, "id");
		if (table_get(t, r, "eval_sses")[0] || !id[0])
			continue;
		table_init(&m);
		list[0] = '\0';
		if (table_curve_path(dir, id, path, sizeof path) &&
		    table_read(path, &m, NULL) == VB_OK &&
		    table_col(&m, "eval_sse") >= 0)
			table_list_of(&m, "eval_sse", list, sizeof list, &used);
		table_free(&m);
		st = table_set_cell(t, r, (size_t)c, list, err);
	}
	return st;
}
