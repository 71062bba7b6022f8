/* runlog: a run folder's per-epoch logs read back: for its result row, a
 * column of metrics.csv as a list and the mean CPU seconds per epoch of
 * times.csv; for a resumed run, the wall seconds of its earlier parts and
 * which columns a log it appends to has. */
#ifndef VB_BENCH_RUNLOG_H
#define VB_BENCH_RUNLOG_H

#include <stdbool.h>
#include <stddef.h>

/* Column col of run_dir/metrics.csv (the summary carries only the final
 * and best values) as a ';'-separated list into b (n bytes): "" where the
 * epoch was not evaluated, "nan" for a non-finite value. A row whose
 * entry would not fit is left out with the rest: table_row_write sizes b
 * for every epoch run. b is "" without the file or the column. */
void runlog_metric_list(const char *run_dir, const char *col, char *b,
			size_t n);

/* The mean CPU seconds per epoch of the run in run_dir (times.csv's
 * cpu_seconds over every epoch logged, the resumed parts of a run
 * included) into *mean; false when the run has none (an older
 * vaebench's, or no epoch). */
bool runlog_cpu_per_epoch(const char *run_dir, double *mean);

/* The wall seconds times.csv of run_dir logs for epochs 1..upto (the
 * parts of a resumed run before its resume point); 0 without the file. */
double runlog_seconds_upto(const char *run_dir, long upto);

/* Whether the CSV log at path (its header line) has column col. */
bool runlog_has_column(const char *path, const char *col);

#endif
