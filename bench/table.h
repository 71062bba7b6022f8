/* table: result rows and the tables made from them. A row is every setting
 * (config keys, through config_get_at) followed by the result columns of
 * one static column list (name and getter each), so new settings and new
 * result fields appear without touching the writers. Owns the row format,
 * CSV reading and writing and results.csv; statistics are stats.h's,
 * summary.md, machine.json, report and merge report.h's, figure
 * selection figures.h's. */
#ifndef VB_BENCH_TABLE_H
#define VB_BENCH_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "train.h"
#include "vb.h"

/* One result column: its CSV name and how to format it from a summary.
 * wallclock columns vary between identical runs (seconds) and are left out
 * of reproducibility comparisons. */
struct table_column {
	const char *name;
	bool wallclock;
	void (*get)(const struct train_summary *s, char *buf, size_t cap);
};

size_t table_result_count(void);
/* Column i (< table_result_count()), static storage. */
const struct table_column *table_result_column(size_t i);

/* True when column name is a wall-clock column. */
bool table_is_wallclock(const char *name);

/* True when column name is a setting (a config key). */
bool table_is_setting(const char *name);

/* Writes the CSV header and the row of one cell to f: "id", "cell" (the
 * grid index), "mitigation" (its name, "" or NULL for none), every config
 * key but run.name, run.out_dir and run.progress, then the result
 * columns. The column eval_losses (the per-epoch evaluation losses joined
 * by ';', %.9g, "nan" for a non-finite one) is read from the run folder's
 * metrics.csv (s->run_dir), which train_run has written by then; it is
 * empty for status error or without that file. VB_ERR_IO on a write
 * error. */
enum vb_status table_row_write(FILE *f, const char *id, size_t cell,
			       const char *mitigation, const struct config *c,
			       const struct train_summary *s,
			       struct vb_error *err);

/* An in-memory CSV table of strings. */
struct table {
	size_t n_cols, n_rows;
	char **cols;  /* (n_cols) names, owned */
	char **cells; /* (n_rows * n_cols) row-major, owned, "" when empty */
	size_t cap_rows;
	/* The table whose `baseline` rows judge "learned" (stats.h) when t
	 * has none of its own, e.g. the source of a --continue-from sweep;
	 * NULL: t itself. Not owned; reference_name names it in texts. */
	const struct table *reference;
	const char *reference_name;
};

void table_init(struct table *t);
void table_free(struct table *t);

/* Reads a CSV file (RFC 4180 quoting) with a header line into t (which
 * must be initialised and empty). VB_ERR_IO if it cannot be read,
 * VB_ERR_DATA "table: FILE:LINE: ..." on a row of the wrong width. */
enum vb_status table_read(const char *path, struct table *t,
			  struct vb_error *err);

/* Appends every row of src to dst; columns of src missing in dst are
 * added (empty in dst's earlier rows). */
enum vb_status table_append(struct table *dst, const struct table *src,
			    struct vb_error *err);

/* Index of column name, -1 if absent. */
int table_col(const struct table *t, const char *name);

/* Cell (row, column name); "" when the column is absent. Borrowed. */
const char *table_get(const struct table *t, size_t row, const char *name);

/* Sorts rows by the numeric "cell" column, then by "id"; drops later rows
 * whose id repeats an earlier one. Deterministic. */
void table_sort_rows(struct table *t);

/* Writes t as CSV to path atomically (files_write_atomic). */
enum vb_status table_write(const struct table *t, const char *path,
			   struct vb_error *err);

/* Reads every DIR/rows/<id>.csv into t (sorted, see table_sort_rows). A
 * missing rows folder gives an empty table. */
enum vb_status table_collect_rows(const char *dir, struct table *t,
				  struct vb_error *err);

/* v as the result tables print it into buf: %.9g, or nan / inf / -inf. */
void table_fmt_real(double v, char *buf, size_t cap);

/* A CSV number: true with *v when s is a whole number (strtod). */
bool table_parse_num(const char *s, double *v);

/* Writes s as one CSV field (quoted when it holds , " or a line break). */
void table_csv_field(FILE *f, const char *s);

/* Appends column name (every row gets ""); VB_ERR_NOMEM. */
enum vb_status table_add_col(struct table *t, const char *name,
			     struct vb_error *err);

/* Appends a row of empty cells, its index in *row; VB_ERR_NOMEM. */
enum vb_status table_add_row(struct table *t, size_t *row,
			     struct vb_error *err);

/* Sets cell (row, col) to a copy of v; VB_ERR_NOMEM. */
enum vb_status table_set_cell(struct table *t, size_t row, size_t col,
			      const char *v, struct vb_error *err);

/* Column col of table m (a run's metrics.csv) as a per-epoch ';'-list
 * appended to b (n bytes, *used of them used): "" for an empty cell, the
 * value with %.9g, "nan" for a non-finite one; stops before overflowing. */
void table_list_of(const struct table *m, const char *col, char *b,
		   size_t n, size_t *used);

/* The per-epoch curve of sweep folder dir's run id into path (n bytes):
 * runs/ID/metrics.csv, written as the run goes, else curves/ID.csv, the
 * copy report keeps (a committed folder has no runs/). false when
 * neither exists (path then names curves/ID.csv). */
bool table_curve_path(const char *dir, const char *id, char *path, size_t n);

/* The rows of t without eval_sses (written before the column existed)
 * get it from the run's curve kept in dir (table_curve_path); the column
 * is added when missing. */
enum vb_status table_fill_sse_lists(const char *dir, struct table *t,
				    struct vb_error *err);

#endif
