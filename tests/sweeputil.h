/* sweeputil: the sweep boilerplate of test_sweep, test_sweep_run and
 * test_report (a base config, grids, writing and running a sweep, reading
 * result cells), apart from benchutil because only they need it; linked
 * with benchutil into the suites that link vb_bench. Prefix su_. */
#ifndef VB_TESTS_SWEEPUTIL_H
#define VB_TESTS_SWEEPUTIL_H

#include <stddef.h>

#include "sweep.h"

/* A base small enough for milliseconds per cell (13 lines, the sweep's
 * sections start on line 14); SGD at lr 1e3 reaches NaN within a few
 * steps, lr 1e-3 stays finite. */
extern const char su_base[];
/* lr 1e-3, 1e3 x batch 16, 32 x seeds 1..2: 8 cells, 4 NaN/Inf. */
extern const char su_grid[];
/* baseline, hot (lr 1e3), clip (norm 5) x seeds 1..2: 6 cells. */
extern const char su_mitig[];

/* a followed by b, malloc'd (the caller frees). */
char *su_cat(const char *a, const char *b);

/* Writes su_base + grid to dir/sweep-test.ini; returns the path (static
 * storage until the next call). */
const char *su_write_sweep(const char *dir, const char *grid);

/* Sweep options into out with jobs workers, the whole grid (shard 1/1),
 * no progress line, everything else zero. */
void su_options(struct sweep_options *o, const char *out, int jobs);

/* Loads ini and runs shard k/n of it into out with jobs workers; stats
 * may be NULL. Errors fail the test. */
void su_run_sweep(const char *ini, const char *out, int jobs, int k, int n,
		  struct sweep_stats *stats);

/* results.csv of dir without the wall-clock columns, as CSV text
 * (malloc'd). */
char *su_stable_results(const char *dir);

/* How many rows dir/rows holds (files ID.csv, 16 hex digits). */
size_t su_count_rows(const char *dir);

/* True when path is a PNG file of more than 100 bytes. */
int su_has_png(const char *path);

/* Cell (r, col) of the CSV table dir/file, malloc'd; the test fails when
 * the file, the row or the column is missing. */
char *su_result_cell(const char *dir, const char *file, size_t r,
		     const char *col);

/* Asserts that cell (r, col) of dir/file reads want. */
void su_expect_cell(const char *dir, const char *file, size_t r,
		    const char *col, const char *want);

/* One expected cell: row, column, text. */
struct su_cell {
	size_t r;
	const char *col, *want;
};

/* su_expect_cell for each of the n cells of dir/file. */
void su_expect_cells(const char *dir, const char *file,
		     const struct su_cell *cells, size_t n);
#define SU_EXPECT_CELLS(dir, file, cells)                                  \
	su_expect_cells(dir, file, cells, sizeof cells / sizeof cells[0])

/* Asserts that cell (r, col) of dir/file is a number within rtol of want
 * (relative to |want|). */
void su_expect_close(const char *dir, const char *file, size_t r,
		     const char *col, double want, double rtol);

#endif
