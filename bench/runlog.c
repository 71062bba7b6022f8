/* runlog: a run folder's per-epoch logs read back (runlog.h). */
#include "runlog.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>

#include "table.h"

void runlog_metric_list(const char *run_dir, const char *col, char *b,
			size_t n)
{
	char path[1200];
	struct table m;
	size_t used = 0;
	b[0] = '\0';
	snprintf(path, sizeof path, "%s/metrics.csv", run_dir);
	table_init(&m);
	if (table_read(path, &m, NULL) == VB_OK && table_col(&m, col) >= 0)
		table_list_of(&m, col, b, n, &used);
	table_free(&m);
}

/* The sum of times.csv's column col of run_dir over epochs 1..upto, its
 * finite entries counted in *k (0 without the file or the column). */
static double times_sum(const char *run_dir, const char *col, long upto,
			size_t *k)
{
	char path[1200];
	struct table m;
	double sum = 0, e, v;
	*k = 0;
	snprintf(path, sizeof path, "%s/times.csv", run_dir);
	table_init(&m);
	if (table_read(path, &m, NULL) == VB_OK && table_col(&m, col) >= 0)
		for (size_t r = 0; r < m.n_rows; r++)
			if (table_parse_num(table_get(&m, r, "epoch"), &e) &&
			    e >= 1 && e <= (double)upto &&
			    table_parse_num(table_get(&m, r, col), &v) &&
			    isfinite(v)) {
				sum += v;
				(*k)++;
			}
	table_free(&m);
	return sum;
}

bool runlog_cpu_per_epoch(const char *run_dir, double *mean)
{
	size_t k;
	double sum = times_sum(run_dir, "cpu_seconds", LONG_MAX, &k);
	if (k)
		*mean = sum / (double)k;
	return k > 0;
}

double runlog_seconds_upto(const char *run_dir, long upto)
{
	size_t k;
	return times_sum(run_dir, "seconds", upto, &k);
}

bool runlog_has_column(const char *path, const char *col)
{
	struct table m;
	bool has;
	table_init(&m);
	has = table_read(path, &m, NULL) == VB_OK && table_col(&m, col) >= 0;
	table_free(&m);
	return has;
}
