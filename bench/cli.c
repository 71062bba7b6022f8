/* cli: command-line parsing of sweep, report and merge (cli.h). */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "counterfactual.h"
#include "files.h"
#include "report.h"
#include "sweep.h"

/* The summary's "Partial: ..." note of dir on the log (report and merge
 * say when a grid is not complete, not only in summary.md). */
static void log_partial(const char *what, const char *dir, FILE *log)
{
	char path[1200], *text = NULL, *p, *end;
	if (!log)
		return;
	snprintf(path, sizeof path, "%s/summary.md", dir);
	if (files_read(path, &text, NULL, NULL) != VB_OK)
		return;
	p = strstr(text, "**Partial: ");
	if (p) {
		p += 2;
		end = strstr(p, "**");
		if (end)
			fprintf(log, "%s: warning: %.*s (see %s)\n", what,
				(int)(end - p), p, path);
	}
	free(text);
}

enum vb_status cli_parse_map(const char *v, char *x, char *y, size_t cap,
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

enum vb_status cli_report_command(int argc, char **argv, FILE *log,
				    struct vb_error *err)
{
	const char *dir = NULL;
	char mx[128], my[128];
	bool map = false, cf = false, used = false;
	int jobs = 1;
	struct counterfactual_request q;
	enum vb_status st;
	counterfactual_defaults(&q);
	for (int i = 0; i < argc; i++) {
		st = counterfactual_option(argc, argv, &i, &q, &used, err);
		if (st)
			return st;
		if (used)
			continue; /* the counterfactual's own options */
		if (!strcmp(argv[i], "--counterfactual")) {
			cf = true;
		} else if (!strcmp(argv[i], "--only")) {
			if (i + 1 >= argc)
				return vb_fail(err, VB_ERR_USAGE,
					       "--only needs mitigation names");
			q.only = argv[++i];
		} else if (!strcmp(argv[i], "--jobs")) {
			char *end;
			long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10)
					      : 0;
			if (i + 1 >= argc || *end || v < 1 || v > 1024)
				return vb_fail(err, VB_ERR_USAGE, "--jobs "
					       "needs a count 1..1024");
			jobs = (int)v;
			i++;
		} else if (!strcmp(argv[i], "--map")) {
			if (i + 1 >= argc)
				return vb_fail(err, VB_ERR_USAGE,
					       "--map needs a value");
			st = cli_parse_map(argv[++i], mx, my, sizeof mx, err);
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
	st = report_rebuild(dir, map ? mx : NULL, map ? my : NULL, err);
	if (st == VB_OK && log)
		fprintf(log, "report: wrote %s/results.csv, summary.md, "
			"stability_map.png, loss_curves.png, grad_norm.png\n",
			dir);
	if (st == VB_OK)
		log_partial("report", dir, log);
	if (st == VB_OK && cf) {
		/* every NaN cell, one after the other (resumable), then the
		 * "fixes at the failure point" section of summary.md */
		size_t n_failed = 0;
		st = counterfactual_sweep(dir, &q, jobs, &n_failed, log,
					  err);
		if (st == VB_OK)
			st = report_rebuild(dir, map ? mx : NULL,
					    map ? my : NULL, err);
		if (st == VB_OK && log)
			fprintf(log, "report: wrote %s/fixes.md, fixes.csv "
				"(%zu run(s) could not be replayed)\n", dir,
				n_failed);
	}
	return st;
}

enum vb_status cli_merge_command(int argc, char **argv, FILE *log,
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
	st = report_merge(argv[0], (const char *const *)(argv + 1),
			 (size_t)(argc - 1), err);
	if (st == VB_OK && log)
		fprintf(log, "merge: %d folder(s) into %s (results.csv, "
			"summary.md, plots)\n", argc - 1, argv[0]);
	if (st == VB_OK)
		log_partial("merge", argv[0], log);
	return st;
}
/* ---- command line ---- */

/* The value v of sweep option a (one that takes a value) into o. */
static enum vb_status sweep_value_option(const char *a, const char *v,
					 struct sweep_options *o,
					 struct vb_error *err)
{
	char *end;
	if (!strcmp(a, "--out")) {
		o->out_dir = v;
	} else if (!strcmp(a, "--shard")) {
		return sweep_plan_parse_shard(v, &o->shard_k, &o->shard_n,
					      err);
	} else if (!strcmp(a, "--continue-from")) {
		o->continue_from = v;
	} else if (!strcmp(a, "--only")) {
		o->only = v;
	} else if (!strcmp(a, "--order")) {
		if (strcmp(v, "seeds-first") && strcmp(v, "grid"))
			return vb_fail(err, VB_ERR_USAGE, "--order '%s': "
				       "expected grid or seeds-first", v);
		o->axes_first = !strcmp(v, "seeds-first");
	} else if (!strcmp(a, "--map")) {
		return cli_parse_map(v, o->map_x, o->map_y, sizeof o->map_x,
				     err);
	} else if (!strcmp(a, "--cell")) {
		unsigned long long c;
		errno = 0;
		c = strtoull(v, &end, 10);
		if (end == v || *end || errno || v[0] == '-' ||
		    c >= SWEEP_PLAN_MAX_CELLS)
			return vb_fail(err, VB_ERR_USAGE, "--cell '%s': "
				       "expected a cell index 0..%d", v,
				       SWEEP_PLAN_MAX_CELLS - 1);
		o->one_cell = true;
		o->cell = (size_t)c;
	} else {
		long j = strtol(v, &end, 10);
		if (end == v || *end || j < 1 || j > 1024)
			return vb_fail(err, VB_ERR_USAGE, "--jobs '%s': "
				       "expected 1..1024", v);
		o->jobs = (int)j;
	}
	return VB_OK;
}

enum vb_status cli_sweep_args(int argc, char **argv, FILE *log,
				struct sweep_options *o, const char **config,
				struct vb_error *err)
{
	static const char *const valued[] = {
		"--out", "--jobs", "-j", "--shard", "--map", "--cell",
		"--order", "--continue-from", "--only"};
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	memset(o, 0, sizeof *o);
	*config = NULL;
	o->jobs = ncpu > 0 ? (int)ncpu : 1;
	o->shard_k = o->shard_n = 1;
	o->log = log;
	o->progress = CONFIG_PROGRESS_AUTO;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		bool takes = false;
		for (size_t k = 0; k < sizeof valued / sizeof *valued; k++)
			takes = takes || !strcmp(a, valued[k]);
		if (takes) {
			enum vb_status st;
			if (i + 1 >= argc)
				return vb_fail(err, VB_ERR_USAGE,
					       "%s needs a value", a);
			st = sweep_value_option(a, argv[++i], o, err);
			if (st)
				return st;
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			o->log = NULL;
		} else if (!strcmp(a, "--fresh")) {
			o->fresh = true;
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

enum vb_status cli_sweep_load(int argc, char **argv, FILE *log,
			      struct sweep_options *o, struct sweep_plan **p,
			      struct vb_error *err)
{
	const char *config = NULL;
	enum vb_status st = cli_sweep_args(argc, argv, log, o, &config, err);
	*p = NULL;
	if (st)
		return st;
	st = sweep_plan_load(config, p, err);
	if (st == VB_ERR_IO && err)
		err->status = st = VB_ERR_USAGE;
	return st;
}

enum vb_status cli_sweep_command(int argc, char **argv, FILE *log,
				 struct vb_error *err)
{
	struct sweep_options o;
	struct sweep_plan *p = NULL;
	struct sweep_stats stats;
	enum vb_status st = cli_sweep_load(argc, argv, log, &o, &p, err);
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
