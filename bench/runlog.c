/* runlog: a run folder's per-epoch logs read back (runlog.h). */
#include "runlog.h"

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

bool runlog_cpu_per_epoch(const char *run_dir, double *mean)
{
	char path[1200];
	struct table m;
	double sum = 0, v;
	size_t k = 0;
	snprintf(path, sizeof path, "%s/times.csv", run_dir);
	table_init(&m);
	if (table_read(path, &m, NULL) == VB_OK &&
	    table_col(&m, "cpu_seconds") >= 0)
		for (size_t r = 0; r < m.n_rows; r++)
			if (table_parse_num(table_get(&m, r, "cpu_seconds"),
					    &v) && isfinite(v)) {
				sum += v;
				k++;
			}
	table_free(&m);
	if (k)
		*mean = sum / (double)k;
	return k > 0;
}

double runlog_seconds_upto(const char *run_dir, long upto)
{
	char path[1200];
	struct table m;
	double sum = 0, e, v;
	snprintf(path, sizeof path, "%s/times.csv", run_dir);
	table_init(&m);
	if (table_read(path, &m, NULL) == VB_OK)
		for (size_t r = 0; r < m.n_rows; r++)
			if (table_parse_num(table_get(&m, r, "epoch"), &e) &&
			    e >= 1 && e <= (double)upto &&
			    table_parse_num(table_get(&m, r, "seconds"), &v) &&
			    isfinite(v))
				sum += v;
	table_free(&m);
	return sum;
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
