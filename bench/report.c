/* report: summary.md, machine.json, report and merge (report.h). */
/* realpath (merge links run folders by absolute path) is XSI. */
#define _DEFAULT_SOURCE

#include "report.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <gnu/libc-version.h>
#endif

#include "counterfactual.h"
#include "extend.h"
#include "figures.h"
#include "files.h"
#include "machine.h"
#include "ops.h"
#include "stats.h"
#include "sweep_plan.h"

#ifndef VB_GIT_COMMIT
#define VB_GIT_COMMIT "unknown"
#endif

/* ---- machine.json ---- */

enum vb_status report_write_machine(const char *dir, int jobs,
				   struct vb_error *err)
{
	char path[1200], host[256] = "unknown", when[64];
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
	gethostname(host, sizeof host - 1);
	host[sizeof host - 1] = '\0';
	gmtime_r(&now, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	fputs("{\n", f);
	machine_json_kernels(f);
	fprintf(f, "  \"cpus_online\": %ld,\n",
		sysconf(_SC_NPROCESSORS_ONLN));
	fprintf(f, "  \"jobs\": %d,\n", jobs);
	fprintf(f, "  \"blas_threads_per_worker\": 1,\n");
	machine_json_str(f, "precision", VB_REAL_NAME, false);
	machine_json_str(f, "compiler", __VERSION__, false);
#ifdef __GLIBC__
	machine_json_str(f, "libc", gnu_get_libc_version(), false);
#endif
	if (uname(&u) == 0) {
		char k[600];
		snprintf(k, sizeof k, "%s %s %s", u.sysname, u.release,
			 u.machine);
		machine_json_str(f, "kernel", k, false);
	}
	machine_json_str(f, "host", host, false);
	machine_json_str(f, "git_commit", commit && *commit ? commit : VB_GIT_COMMIT,
		 false);
	machine_json_str(f, "written", when, true);
	fputs("}\n", f);
	fclose(f);
	snprintf(path, sizeof path, "%s/machine.json", dir);
	st = files_write_atomic(path, text, len, false, err);
	free(text);
	return st;
}

/* DIR/curves/ID.csv (the run's per-epoch metrics.csv) and
 * DIR/precursors/ID.csv (its precursor ring, the steps before the first
 * non-finite value) for every run of every status that has them (a run
 * that skipped a non-finite batch ends "ok" with a ring), so that the curves
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
			st = files_mkdirs(curves, err);
			snprintf(dst, sizeof dst, "%s/%s.csv", curves, id);
			if (st == VB_OK)
				st = files_copy(src, dst, err);
		}
		if (st != VB_OK)
			continue;
		snprintf(src, sizeof src, "%s/runs/%s/precursors.csv", dir, id);
		if (access(src, F_OK) != 0)
			continue;
		st = files_mkdirs(prec, err);
		snprintf(dst, sizeof dst, "%s/%s.csv", prec, id);
		if (st == VB_OK)
			st = files_copy(src, dst, err);
	}
	return st;
}

#define REPORT_MISSING_LISTED 40 /* missing cells named in the note */

/* Which of p's cells in the selection only (NULL: all) have a row in t
 * (its "cell" column), *n_have how many; NULL when out of memory. */
static bool *cells_with_rows(const struct table *t,
			     const struct sweep_plan *p, const char *only,
			     size_t *n_have)
{
	bool *have = calloc(p->n_cells ? p->n_cells : 1, sizeof *have);
	*n_have = 0;
	for (size_t r = 0; have && r < t->n_rows; r++) {
		const char *c = table_get(t, r, "cell");
		char *end;
		unsigned long long i;
		if (!c || !*c)
			continue;
		i = strtoull(c, &end, 10);
		if (*end == '\0' && i < p->n_cells && !have[i] &&
		    sweep_plan_in_only(p, only, i)) {
			have[i] = true;
			(*n_have)++;
		}
	}
	return have;
}

/* When DIR/sweep.ini (the grid the folder was swept from; only the
 * cells of its selection, sweep_plan_read_only, when it has one) has cells
 * without a row, *note says so in one markdown paragraph: how many cells
 * have rows, which are missing and the command that runs only those; a
 * complete selection gets a note that names it. NULL when the grid is
 * complete or the folder has no sweep.ini (a merge of several sweeps). A
 * sweep.ini or selection that does not load is an error. */
static enum vb_status grid_note(const struct table *t, const char *dir,
				char **note, struct vb_error *err)
{
	char path[1200];
	struct sweep_plan *p = NULL;
	bool *have = NULL;
	size_t n_have = 0, listed = 0, len = 0, n_planned;
	char *only = NULL;
	FILE *f;
	enum vb_status st;
	*note = NULL;
	snprintf(path, sizeof path, "%s/sweep.ini", dir);
	if (access(path, F_OK) != 0)
		return VB_OK;
	st = sweep_plan_load_existing(path, &p, err);
	if (st)
		return st;
	st = sweep_plan_read_only(p, dir, &only, err);
	if (st) {
		sweep_plan_free(p);
		return st;
	}
	n_planned = sweep_plan_count_only(p, only);
	have = cells_with_rows(t, p, only, &n_have);
	if (!have) {
		sweep_plan_free(p);
		free(only);
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	}
	if (n_have == n_planned && !only)
		goto done;
	f = open_memstream(note, &len);
	if (!f) {
		st = vb_fail(err, VB_ERR_NOMEM, "table: no memory");
		goto done;
	}
	if (n_have == n_planned) {
		fprintf(f, "**Selected: the %zu cells of `--only %s` (%s), all "
			"with rows; sweep.ini's other %zu cells were not "
			"run.**", n_planned, only, SWEEP_PLAN_ONLY_FILE,
			p->n_cells - n_planned);
	} else {
		if (only)
			fprintf(f, "**Partial: %zu of the %zu cells selected "
				"with `--only %s` (%s; sweep.ini has %zu) have "
				"rows.** Missing cells:", n_have, n_planned,
				only, SWEEP_PLAN_ONLY_FILE, p->n_cells);
		else
			fprintf(f, "**Partial: %zu of the %zu cells of "
				"sweep.ini have rows.** Missing cells:",
				n_have, p->n_cells);
		for (size_t i = 0; i < p->n_cells; i++) {
			if (have[i] || !sweep_plan_in_only(p, only, i))
				continue;
			if (listed++ == REPORT_MISSING_LISTED) {
				fputs(" ...", f);
				break;
			}
			fprintf(f, "%s %zu", listed > 1 ? "," : "", i);
		}
		fprintf(f, ". `vaebench sweep %s/sweep.ini --out %s%s%s` runs "
			"only those (`--cell INDEX` one of them).", dir, dir,
			only ? " --only " : "", only ? only : "");
	}
	if (fclose(f) != 0 || !*note)
		st = vb_fail(err, VB_ERR_NOMEM, "table: no memory");
done:
	free(have);
	free(only);
	sweep_plan_free(p);
	return st;
}

/* A setting column blank in some rows holds rows written before the
 * setting existed: they ran with its default, so the blanks get the
 * default (canonical text). Otherwise a column with one real value and
 * blanks ("", exp) would pass for an axis. Columns that are not settings
 * keep their blanks. */
static enum vb_status fill_setting_blanks(struct table *t,
					  struct vb_error *err)
{
	struct config def;
	config_defaults(&def);
	for (size_t c = 0; c < t->n_cols; c++) {
		char v[CONFIG_VALUE_LEN];
		int k = config_key_index(t->cols[c]);
		if (k < 0 || !table_is_setting(t->cols[c]) ||
		    config_get_at(&def, (size_t)k, v, sizeof v, NULL) != VB_OK)
			continue;
		for (size_t r = 0; r < t->n_rows; r++) {
			enum vb_status st;
			if (t->cells[r * t->n_cols + c][0])
				continue;
			st = table_set_cell(t, r, c, v, err);
			if (st)
				return st;
		}
	}
	return VB_OK;
}

/* The results of dir into t: from rows/ (rewriting results.csv) when
 * that folder exists, else from results.csv; blank settings of older
 * rows read as their defaults (fill_setting_blanks), so that they make no
 * fake axis. */
static enum vb_status load_results(const char *dir, struct table *t,
				   const struct table *src,
				   const char *src_name, struct vb_error *err)
{
	char path[1200], rows[1200];
	struct stat sb;
	enum vb_status st;
	t->reference = src; /* "learned" against src's baseline, when set */
	t->reference_name = src_name;
	snprintf(rows, sizeof rows, "%s/rows", dir);
	snprintf(path, sizeof path, "%s/results.csv", dir);
	if (stat(rows, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		st = table_collect_rows(dir, t, err);
		if (st == VB_OK && t->n_cols == 0)
			st = vb_fail(err, VB_ERR_DATA, "report: %s holds no "
				     "rows yet", rows);
		if (st == VB_OK)
			st = table_fill_sse_lists(dir, t, err);
		if (st == VB_OK)
			st = stats_fill_learned(t, err);
		if (st == VB_OK)
			st = table_write(t, path, err);
	} else if (!files_exists(path)) {
		return vb_fail(err, VB_ERR_USAGE, "report: %s is not a sweep "
			       "folder (neither rows/ nor results.csv)", dir);
	} else {
		st = table_read(path, t, err);
		if (st == VB_OK)
			table_sort_rows(t);
		if (st == VB_OK && table_col(t, "nll_last") >= 0)
			st = table_fill_sse_lists(dir, t, err);
		if (st == VB_OK)
			st = stats_fill_learned(t, err);
		/* results.csv carries the verdicts the tables use (it kept
		 * those of the rule when the sweep ran) */
		if (st == VB_OK && table_col(t, "learned") >= 0)
			st = table_write(t, path, err);
	}
	if (st == VB_OK && (table_col(t, "id") < 0 ||
			    table_col(t, "status") < 0))
		st = vb_fail(err, VB_ERR_DATA, "report: %s: no id or status "
			     "column", path);
	if (st == VB_OK)
		st = fill_setting_blanks(t, err);
	return st;
}

/* The curve figures: result column, file, title, y label. */
static const struct {
	const char *column, *file, *title, *y_label;
} CURVES[2] = {
	{"train_loss", "loss_curves.png",
	 "Training loss (epoch means); red dashes: step of the first NaN/Inf",
	 "train loss"},
	{"grad_norm_max", "grad_norm.png",
	 "Largest gradient norm per epoch; red dashes: step of the first "
	 "NaN/Inf",
	 "max grad norm"},
};

/* The stability map, loss and gradient-norm curves and galleries over
 * the map axes (map_x x map_y, NULL: figures_pick_map's choice). */
static enum vb_status report_figures(const struct table *t, const char *dir,
				     const char *map_x, const char *map_y,
				     struct vb_error *err)
{
	const char **axes = NULL, *kx = NULL, *ky = NULL;
	size_t n_axes;
	enum vb_status st = stats_find_axes(t, &axes, &n_axes, err);
	if (st == VB_OK) {
		figures_pick_axes(t, axes, n_axes, map_x, map_y, &kx, &ky);
		if (kx && table_col(t, kx) < 0)
			st = vb_fail(err, VB_ERR_USAGE, "report: map axis %s "
				     "is not a column of the results", kx);
		else if (ky && table_col(t, ky) < 0)
			st = vb_fail(err, VB_ERR_USAGE, "report: map axis %s "
				     "is not a column of the results", ky);
	}
	if (st == VB_OK)
		st = figures_map(t, dir, kx, ky, err);
	for (size_t i = 0; st == VB_OK && i < 2; i++)
		st = figures_curves(t, dir, kx, ky, CURVES[i].column,
				    CURVES[i].file, CURVES[i].title,
				    CURVES[i].y_label, err);
	if (st == VB_OK)
		st = figures_galleries(t, dir, axes, n_axes, err);
	free(axes);
	return st;
}

enum vb_status report_rebuild(const char *dir, const char *map_x,
			      const char *map_y, struct vb_error *err)
{
	struct table t, src;
	char path[1200], title[1300], *note = NULL, src_name[CONFIG_PATH_LEN];
	bool have_src = false;
	enum vb_status st;

	table_init(&t);
	table_init(&src);
	/* a --continue-from sweep: "learned" against its source's baseline */
	st = extend_load_source(dir, &src, src_name, sizeof src_name,
				&have_src, err);
	if (st == VB_OK)
		st = load_results(dir, &t, have_src ? &src : NULL,
				  have_src ? src_name : NULL, err);
	if (st == VB_OK) {
		snprintf(title, sizeof title, "Sweep summary: %s", dir);
		st = grid_note(&t, dir, &note, err);
	}
	if (st == VB_OK) {
		snprintf(path, sizeof path, "%s/summary.md", dir);
		st = report_write_summary(&t, title, note, path, err);
	}
	if (st == VB_OK) /* report --counterfactual's section, when made */
		st = counterfactual_append_summary(dir, err);
	if (st == VB_OK) {
		bool written;
		snprintf(path, sizeof path, "%s/mitigations.csv", dir);
		st = stats_write_mitigations(&t, path, &written, err);
		if (st == VB_OK && written)
			st = figures_mitigations(&t, dir, err);
	}
	if (st == VB_OK)
		st = report_figures(&t, dir, map_x, map_y, err);
	if (st == VB_OK)
		st = copy_run_files(&t, dir, err);
	free(note);
	table_free(&t);
	table_free(&src);
	return st;
}

/* ---- merge ---- */

/* Same file (device and inode) as an existing path. */
static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Before anything is written: every input is a sweep folder (rows/ or
 * results.csv), none is the output, and all that carry a sweep.ini (and
 * the output, when it has one) carry the same one: its text into
 * *ini (malloc'd; NULL when no input has one). */
static enum vb_status merge_check(const char *out, const char *const *dirs,
				  size_t n_dirs, char **ini,
				  struct vb_error *err)
{
	char path[1300], *text = NULL, *first = NULL;
	const char *from = NULL;
	struct stat sb;
	enum vb_status st = VB_OK;
	*ini = NULL;
	for (size_t i = 0; st == VB_OK && i < n_dirs; i++) {
		snprintf(path, sizeof path, "%s/rows", dirs[i]);
		if (same_file(out, dirs[i]))
			st = vb_fail(err, VB_ERR_USAGE, "merge: the output %s "
				     "is also input %s; merge into a new "
				     "folder", out, dirs[i]);
		else if (!(stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) &&
			 (snprintf(path, sizeof path, "%s/results.csv",
				   dirs[i]),
			  !files_exists(path)))
			st = vb_fail(err, VB_ERR_USAGE, "merge: %s has neither "
				     "rows/ nor results.csv", dirs[i]);
		snprintf(path, sizeof path, "%s/sweep.ini", dirs[i]);
		if (st != VB_OK || !files_exists(path))
			continue;
		st = files_read(path, &text, NULL, err);
		if (st == VB_OK && !first) {
			first = text;
			from = dirs[i];
			text = NULL;
		} else if (st == VB_OK &&
			   !sweep_plan_same_text(first, strlen(first), text,
						 strlen(text))) {
			st = vb_fail(err, VB_ERR_USAGE, "merge: %s and %s are "
				     "different sweeps (their sweep.ini "
				     "differ); merge shards of one sweep",
				     from, dirs[i]);
		}
		free(text);
		text = NULL;
	}
	snprintf(path, sizeof path, "%s/sweep.ini", out);
	if (st == VB_OK && first && files_exists(path)) {
		st = files_read(path, &text, NULL, err);
		if (st == VB_OK && !sweep_plan_same_text(first, strlen(first),
							 text, strlen(text)))
			st = vb_fail(err, VB_ERR_USAGE, "merge: the output %s "
				     "holds another sweep (%s)", out, path);
		free(text);
	}
	if (st == VB_OK)
		*ini = first;
	else
		free(first);
	return st;
}

/* Links each run folder of table one (from sweep folder dir) into
 * out/runs so that the report finds its metrics.csv; the first folder
 * holding an id wins. VB_ERR_IO when a link cannot be made. */
static enum vb_status merge_link_runs(const struct table *one,
				      const char *dir, const char *out,
				      struct vb_error *err)
{
	struct stat sb;
	enum vb_status st = VB_OK;
	for (size_t r = 0; st == VB_OK && r < one->n_rows; r++) {
		char src[1300], dst[1300], real[PATH_MAX];
		const char *id = table_get(one, r, "id");
		snprintf(src, sizeof src, "%s/runs/%s", dir, id);
		snprintf(dst, sizeof dst, "%s/runs/%s", out, id);
		if (lstat(dst, &sb) == 0 || !realpath(src, real))
			continue;
		if (symlink(real, dst) != 0)
			st = vb_fail(err, VB_ERR_IO, "merge: cannot link %s: "
				     "%s", dst, strerror(errno));
	}
	return st;
}

/* out's selection (sweep_plan_read_only), its sweep.ini written: the
 * union of the inputs' selections when every input with a sweep.ini has
 * one (each was swept with --only), none otherwise. */
static enum vb_status merge_selection(const char *out,
				      const char *const *dirs, size_t n_dirs,
				      struct vb_error *err)
{
	char path[1300];
	struct sweep_plan *p = NULL;
	bool all = true;
	enum vb_status st;
	snprintf(path, sizeof path, "%s/sweep.ini", out);
	st = sweep_plan_load_existing(path, &p, err);
	if (st == VB_OK)
		st = sweep_plan_record_only(p, out, NULL, err);
	for (size_t i = 0; i < n_dirs; i++) {
		char sel[1300];
		snprintf(path, sizeof path, "%s/sweep.ini", dirs[i]);
		snprintf(sel, sizeof sel, "%s/" SWEEP_PLAN_ONLY_FILE, dirs[i]);
		if (files_exists(path) && !files_exists(sel))
			all = false;
	}
	for (size_t i = 0; st == VB_OK && all && i < n_dirs; i++) {
		char *only = NULL;
		st = sweep_plan_read_only(p, dirs[i], &only, err);
		if (st == VB_OK && only)
			st = sweep_plan_record_only(p, out, only, err);
		free(only);
	}
	sweep_plan_free(p);
	return st;
}

enum vb_status report_merge(const char *out, const char *const *dirs,
			   size_t n_dirs, struct vb_error *err)
{
	struct table all;
	char path[1300], runs[1200], *ini = NULL;
	enum vb_status st = VB_OK;
	struct stat sb;

	table_init(&all);
	st = merge_check(out, dirs, n_dirs, &ini, err);
	if (st)
		return st;
	snprintf(runs, sizeof runs, "%s/runs", out);
	st = files_mkdirs(runs, err);
	snprintf(path, sizeof path, "%s/rows", out);
	if (st == VB_OK)
		st = files_mkdirs(path, err);
	snprintf(path, sizeof path, "%s/sweep.ini", out);
	if (st == VB_OK && ini) /* the grid: report's coverage note */
		st = files_write_text(path, ini, err);
	if (st == VB_OK && ini)
		st = merge_selection(out, dirs, n_dirs, err);
	free(ini);
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
		if (st == VB_OK && one.n_rows == 0) { /* an empty shard */
			table_free(&one);
			continue;
		}
		if (st == VB_OK && table_col(&one, "id") < 0)
			st = vb_fail(err, VB_ERR_DATA, "merge: %s: no id "
				     "column", dirs[i]);
		if (st == VB_OK)
			st = merge_link_runs(&one, dirs[i], out, err);
		if (st == VB_OK)
			st = table_append(&all, &one, err);
		table_free(&one);
	}
	if (st == VB_OK)
		table_sort_rows(&all);
	for (size_t r = 0; st == VB_OK && r < all.n_rows; r++) {
		struct table one;
		size_t row = 0;
		table_init(&one);
		for (size_t c = 0; st == VB_OK && c < all.n_cols; c++)
			st = table_add_col(&one, all.cols[c], err);
		if (st == VB_OK)
			st = table_add_row(&one, &row, err);
		for (size_t c = 0; st == VB_OK && c < all.n_cols; c++)
			st = table_set_cell(&one, row, c,
				      all.cells[r * all.n_cols + c], err);
		snprintf(path, sizeof path, "%s/rows/%s.csv", out,
			 table_get(&all, r, "id"));
		if (st == VB_OK)
			st = table_write(&one, path, err);
		table_free(&one);
	}
	table_free(&all);
	if (st == VB_OK)
		st = report_rebuild(out, NULL, NULL, err);
	return st;
}
