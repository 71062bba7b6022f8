/* sweeputil: sweep files, sweep runs and result cells for the sweep and
 * report suites. */
#include "sweeputil.h"

#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"
#include "testutil.h"

const char su_base[] =
	"; test sweep\n"
	"[data]\n"
	"dataset = synthetic\n"
	"synthetic_n = 128\n"
	"synthetic_eval_n = 32\n"
	"[model]\n"
	"latent = 2\n"
	"hidden = 16\n"
	"recon = bce\n"
	"[train]\n"
	"epochs = 2\n"
	"[optim]\n"
	"kind = sgd\n";

const char su_grid[] =
	"[sweep]\n"
	"optim.lr = 1e-3, 1e3\n"
	"train.batch = 16, 32\n"
	"train.seed = 1..2\n";

const char su_mitig[] =
	"[mitigations]\n"
	"baseline =\n"
	"hot = optim.lr=1e3 ; diverges\n"
	"clip = optim.clip=norm   optim.clip_max=5\n"
	"[sweep]\n"
	"train.seed = 1..2\n";

char *su_cat(const char *a, const char *b)
{
	char *s = malloc(strlen(a) + strlen(b) + 1);
	ck_assert_ptr_nonnull(s);
	strcpy(s, a);
	strcat(s, b);
	return s;
}

const char *su_write_sweep(const char *dir, const char *grid)
{
	char *text = su_cat(su_base, grid);
	static char path[1200];
	snprintf(path, sizeof path, "%s/sweep-test.ini", dir);
	ck_assert_int_eq(tu_write_file(path, text, strlen(text)), 0);
	free(text);
	return path;
}

void su_options(struct sweep_options *o, const char *out, int jobs)
{
	memset(o, 0, sizeof *o);
	o->out_dir = out;
	o->jobs = jobs;
	o->shard_k = o->shard_n = 1;
	o->progress = CONFIG_PROGRESS_OFF;
}

void su_run_sweep(const char *ini, const char *out, int jobs, int k, int n,
		  struct sweep_stats *stats)
{
	struct sweep_plan *p = NULL;
	struct sweep_options o;
	struct vb_error err = {0};
	ck_assert_msg(sweep_plan_load(ini, &p, &err) == VB_OK, "%s", err.msg);
	su_options(&o, out, jobs);
	o.shard_k = k;
	o.shard_n = n;
	ck_assert_msg(sweep_run(p, &o, stats, &err) == VB_OK, "%s", err.msg);
	sweep_plan_free(p);
}

char *su_stable_results(const char *dir)
{
	struct table t;
	struct vb_error err = {0};
	char path[1200], *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	table_init(&t);
	snprintf(path, sizeof path, "%s/results.csv", dir);
	ck_assert_msg(table_read(path, &t, &err) == VB_OK, "%s", err.msg);
	for (size_t r = 0; r <= t.n_rows; r++) {
		for (size_t c = 0; c < t.n_cols; c++) {
			if (table_is_wallclock(t.cols[c]))
				continue;
			fprintf(f, "%s,", r == 0 ? t.cols[c]
						 : t.cells[(r - 1) * t.n_cols +
							   c]);
		}
		fputc('\n', f);
	}
	fclose(f);
	table_free(&t);
	return text;
}

size_t su_count_rows(const char *dir)
{
	char rows[1200];
	struct dirent *e;
	size_t n = 0;
	DIR *d;
	snprintf(rows, sizeof rows, "%s/rows", dir);
	d = opendir(rows);
	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL)
		n += strlen(e->d_name) == 20 &&
		     !strcmp(e->d_name + 16, ".csv");
	closedir(d);
	return n;
}

int su_has_png(const char *path)
{
	size_t n = 0;
	char *d = tu_read_file(path, &n);
	int ok = d && n > 100 && !memcmp(d, "\x89PNG\r\n\x1a\n", 8);
	free(d);
	return ok;
}

char *su_result_cell(const char *dir, const char *file, size_t r,
		     const char *col)
{
	struct table t;
	char path[1200], *v;
	struct vb_error err = {0};
	table_init(&t);
	snprintf(path, sizeof path, "%s/%s", dir, file);
	ck_assert_msg(table_read(path, &t, &err) == VB_OK, "%s", err.msg);
	ck_assert_msg(r < t.n_rows, "%s: row %zu of %zu", path, r, t.n_rows);
	ck_assert_msg(table_col(&t, col) >= 0, "%s: no column %s", path, col);
	v = strdup(table_get(&t, r, col));
	table_free(&t);
	return v;
}

void su_expect_cell(const char *dir, const char *file, size_t r,
		    const char *col, const char *want)
{
	char *v = su_result_cell(dir, file, r, col);
	ck_assert_msg(!strcmp(v, want), "%s/%s row %zu %s: '%s', expected "
		      "'%s'", dir, file, r, col, v, want);
	free(v);
}

void su_expect_cells(const char *dir, const char *file,
		     const struct su_cell *cells, size_t n)
{
	for (size_t i = 0; i < n; i++)
		su_expect_cell(dir, file, cells[i].r, cells[i].col,
			       cells[i].want);
}

void su_expect_close(const char *dir, const char *file, size_t r,
		     const char *col, double want, double rtol)
{
	char *v = su_result_cell(dir, file, r, col);
	ck_assert_msg(fabs(strtod(v, NULL) - want) <= rtol * fabs(want),
		      "%s/%s row %zu %s: %s vs %.9g", dir, file, r, col, v,
		      want);
	free(v);
}
