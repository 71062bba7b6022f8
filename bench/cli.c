/* cli: command-line parsing of sweep, report and merge (cli.h). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "report.h"

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
	bool map = false;
	enum vb_status st;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--map")) {
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
	return st;
}
