/* bench_sweep: sweep throughput. Runs one sweep (default configs/quick.ini,
 * from the repository root) into fresh temporary folders with --jobs 1 and
 * --jobs 2 and prints cells per minute, the speed-up and each worker's
 * peak resident memory; the machine's load average is printed first, since
 * other work on the machine skews the figures.
 * usage: bench_sweep [CONFIG [JOBS...]] */
#define _XOPEN_SOURCE 700 /* nftw (XSI) */

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "machine.h"
#include "perfutil.h"
#include "ops.h"
#include "sweep.h"
#include "table.h"

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(int argc, char **argv)
{
	perf_pin(argv, "bench_sweep"); /* as vaebench */
	const char *config = argc > 1 ? argv[1] : "configs/quick.ini";
	int jobs_list[8] = {1, 2}, n_jobs = 2;
	double base_rate = 0;
	struct sweep_plan *p = NULL;
	struct vb_error err = {0};
	struct rusage self;
	FILE *la;
	char load[128] = "?";

	if (argc > 2) {
		n_jobs = 0;
		for (int i = 2; i < argc && n_jobs < 8; i++)
			jobs_list[n_jobs++] = atoi(argv[i]);
	}
	op_blas_set_threads(1);
	if (sweep_plan_load(config, &p, &err) != VB_OK) {
		fprintf(stderr, "bench_sweep: %s\n", err.msg);
		return 2;
	}
	la = fopen("/proc/loadavg", "r");
	if (la) {
		if (!fgets(load, sizeof load, la))
			snprintf(load, sizeof load, "?\n");
		fclose(la);
	}
	printf("bench_sweep: %s, %zu cells, BLAS %s, %ld CPUs online, load "
	       "average before: %s", config, p->n_cells, op_blas_core(),
	       sysconf(_SC_NPROCESSORS_ONLN), load);
	printf("%6s %10s %12s %9s %12s %16s %16s\n", "jobs", "seconds",
	       "cells/min", "speed-up", "concurrency", "worker RSS mean",
	       "worker RSS max");
	for (int j = 0; j < n_jobs; j++) {
		char dir[] = "/tmp/vaebench-bench-sweep-XXXXXX";
		struct sweep_options o;
		struct sweep_stats st;
		double rate, busy;
		if (jobs_list[j] < 1 || !mkdtemp(dir)) {
			fprintf(stderr, "bench_sweep: bad jobs or no temp dir\n");
			sweep_plan_free(p);
			return 1;
		}
		memset(&o, 0, sizeof o);
		o.out_dir = dir;
		o.jobs = jobs_list[j];
		o.shard_k = o.shard_n = 1;
		o.progress = CONFIG_PROGRESS_OFF;
		if (sweep_run(p, &o, &st, &err) != VB_OK) {
			fprintf(stderr, "bench_sweep: %s\n", err.msg);
			nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
			sweep_plan_free(p);
			return 1;
		}
		/* cell seconds summed over wall time: how many workers ran at
		 * once on average (below jobs when CPUs are shared) */
		{
			struct table t;
			char path[128];
			table_init(&t);
			snprintf(path, sizeof path, "%s/results.csv", dir);
			busy = 0;
			if (table_read(path, &t, NULL) == VB_OK)
				for (size_t r = 0; r < t.n_rows; r++)
					busy += atof(table_get(&t, r,
							       "seconds"));
			table_free(&t);
		}
		rate = st.seconds > 0 ? 60.0 * (double)st.n_run / st.seconds
				      : 0;
		if (j == 0)
			base_rate = rate;
		printf("%6d %10.1f %12.1f %8.2fx %12.2f %13.1f MB %13.1f MB\n",
		       o.jobs, st.seconds, rate,
		       base_rate > 0 ? rate / base_rate : 0,
		       st.seconds > 0 ? busy / st.seconds : 0,
		       st.mean_rss_kb / 1024.0, (double)st.max_rss_kb / 1024.0);
		fflush(stdout);
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	}
	getrusage(RUSAGE_SELF, &self);
	printf("parent (dataset loaded once, shared copy-on-write) peak RSS: "
	       "%.1f MB\n", (double)self.ru_maxrss / 1024.0);
	sweep_plan_free(p);
	return 0;
}
