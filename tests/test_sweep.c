/* test_sweep: [sweep] grid expansion and its errors, [mitigations] and its
 * errors, stable cell ids, and the scheduler end to end on synthetic data:
 * --jobs 1 and 2 give the same results.csv (wall-clock columns aside),
 * shards merged equal the whole sweep, a sweep killed with SIGKILL and
 * started again ends with the same rows, a restart runs only missing
 * cells, the report's files, the mitigation table, and f64 cells run by
 * vaebench-f64 from a sweep of the float binary. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "figures.h"
#include "plot.h"
#include "report.h"
#include "sweep.h"
#include "table.h"
#include "testutil.h"

/* A base small enough for milliseconds per cell; SGD at lr 1e3 reaches
 * NaN within a few steps, lr 1e-3 stays finite. */
static const char *BASE =
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

static const char *GRID =
	"[sweep]\n"
	"optim.lr = 1e-3, 1e3\n"
	"train.batch = 16, 32\n"
	"train.seed = 1..2\n";

static struct sweep_plan *parse_ok(const char *text)
{
	struct sweep_plan *p = NULL;
	struct vb_error err = {0};
	enum vb_status st = sweep_plan_parse("t.ini", text, &p, &err);
	ck_assert_msg(st == VB_OK, "%s", err.msg);
	ck_assert_ptr_nonnull(p);
	return p;
}

static char *cat(const char *a, const char *b)
{
	char *s = malloc(strlen(a) + strlen(b) + 1);
	ck_assert_ptr_nonnull(s);
	strcpy(s, a);
	strcat(s, b);
	return s;
}

static uint64_t fnv(const char *s, uint64_t h)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

START_TEST(test_grid_expansion)
{
	char *text = cat(BASE, "[sweep]\n"
			       "optim.lr = 1e-3, logspace(1e-2, 1, 3)\n"
			       "train.seed = 1..5:2 ; seeds 1, 3, 5\n"
			       "model.recon = mse, bce\n");
	struct sweep_plan *p = parse_ok(text);
	struct config c;
	char id[SWEEP_PLAN_ID_LEN], buf[CONFIG_VALUE_LEN];
	ck_assert_uint_eq(p->n_axes, 3);
	ck_assert_uint_eq(p->axes[0].n_values, 4);
	ck_assert_str_eq(p->axes[0].values[0], "0.001");
	ck_assert_str_eq(p->axes[0].values[1], "0.01");
	ck_assert_str_eq(p->axes[0].values[2], "0.1");
	ck_assert_str_eq(p->axes[0].values[3], "1");
	ck_assert_uint_eq(p->axes[1].n_values, 3);
	ck_assert_str_eq(p->axes[1].values[2], "5");
	ck_assert_uint_eq(p->n_cells, 4 * 3 * 2);
	/* the base sections are read: */
	ck_assert_int_eq(p->base.data.dataset, CONFIG_DATASET_SYNTHETIC);
	ck_assert_int_eq(p->base.model.hidden, 16);
	/* first axis outermost, last fastest: cell 7 = lr[1], seed[0],
	 * recon[1] (7 = 1*6 + 0*2 + 1) */
	ck_assert(sweep_plan_cell(p, 7, &c, id, NULL) == VB_OK);
	config_get(&c, "optim.lr", buf, sizeof buf, NULL);
	ck_assert_str_eq(buf, "0.01");
	ck_assert_uint_eq(c.train.seed, 1);
	ck_assert_int_eq(c.model.recon, MODEL_RECON_BCE);
	ck_assert(sweep_plan_cell(p, 24, &c, id, NULL) != VB_OK);
	sweep_plan_free(p);
	free(text);
}
END_TEST

START_TEST(test_cell_ids)
{
	char *text = cat(BASE, GRID);
	struct sweep_plan *p = parse_ok(text), *q = parse_ok(text);
	struct config c, d;
	char id[SWEEP_PLAN_ID_LEN], id2[SWEEP_PLAN_ID_LEN];
	char ids[8][SWEEP_PLAN_ID_LEN];
	struct vb_error err = {0};
	char expect[SWEEP_PLAN_ID_LEN];
	ck_assert_uint_eq(p->n_cells, 8);
	for (size_t i = 0; i < p->n_cells; i++) {
		ck_assert(sweep_plan_cell(p, i, &c, ids[i], NULL) == VB_OK);
		ck_assert(sweep_plan_cell(q, i, &d, id2, NULL) == VB_OK);
		ck_assert_str_eq(ids[i], id2); /* same grid, same ids */
		ck_assert_uint_eq(strlen(ids[i]), 16);
		for (size_t j = 0; j < i; j++)
			ck_assert_str_ne(ids[i], ids[j]);
	}
	/* the id is the settings', not the grid position's: build cell 5
	 * (lr 1e3, batch 16, seed 2) by hand */
	ck_assert(sweep_plan_cell(p, 5, &c, id, NULL) == VB_OK);
	d = p->base;
	ck_assert(config_set(&d, "optim.lr=1000", &err) == VB_OK);
	ck_assert(config_set(&d, "train.batch=16", &err) == VB_OK);
	ck_assert(config_set(&d, "train.seed=2", &err) == VB_OK);
	/* run.* keys do not enter the id */
	ck_assert(config_set(&d, "run.name=other", &err) == VB_OK);
	ck_assert(config_set(&d, "run.out_dir=/elsewhere", &err) == VB_OK);
	sweep_plan_cell_id(&d, id2);
	ck_assert_str_eq(id, id2);
	/* the defaults hash to FNV-1a's offset basis, one setting to the
	 * hash of its line */
	config_defaults(&d);
	sweep_plan_cell_id(&d, id2);
	ck_assert_str_eq(id2, "cbf29ce484222325");
	ck_assert(config_set(&d, "optim.lr=0.5", &err) == VB_OK);
	sweep_plan_cell_id(&d, id2);
	snprintf(expect, sizeof expect, "%016llx",
		 (unsigned long long)fnv("optim.lr=0.5\n",
					 0xcbf29ce484222325ull));
	ck_assert_str_eq(id2, expect);
	sweep_plan_free(p);
	sweep_plan_free(q);
	free(text);
}
END_TEST

static void refused(const char *sweep, const char *needle)
{
	char *text = cat(BASE, sweep);
	struct sweep_plan *p = NULL;
	struct vb_error err = {0};
	enum vb_status st = sweep_plan_parse("bad.ini", text, &p, &err);
	ck_assert_msg(st == VB_ERR_CONFIG, "accepted: %s", sweep);
	ck_assert_ptr_null(p);
	ck_assert_msg(strstr(err.msg, needle) != NULL,
		      "message '%s' lacks '%s'", err.msg, needle);
	ck_assert_msg(strchr(err.msg, '\n') == NULL, "not one line: %s",
		      err.msg);
	free(text);
}

START_TEST(test_malformed_refused)
{
	refused("[sweep]\noptim.learning_rate = 1e-3\n",
		"bad.ini:15: unknown key 'optim.learning_rate'");
	refused("[sweep]\noptim.lr = 1e-3, abc\n", "bad.ini:15");
	refused("[sweep]\ntrain.batch = 16, 2.5\n", "train.batch");
	refused("[sweep]\noptim.lr =\n", "empty axis");
	refused("[sweep]\noptim.lr = 1e-3,,1\n", "empty value");
	refused("[sweep]\noptim.lr = 1e-3\noptim.lr = 1\n", "given twice");
	refused("[sweep]\noptim.lr = 1e-3, 0.001\n", "appears twice");
	refused("[sweep]\ntrain.seed = 5..1\n", "integer range");
	refused("[sweep]\noptim.lr = logspace(0, 1, 3)\n", "logspace");
	refused("[sweep]\noptim.lr = logspace(1e-3, 1\n", "')'");
	refused("[sweep]\nrun.name = a, b\n", "cannot be swept");
	refused("[sweep]\noptim.kind = adam, lbfgs\n", "optim.kind");
	refused("[sweep]\noptim.lr = -1\n", "optim.lr");
	refused("[sweep]\njunk line\n", "bad.ini:15");
	/* base errors name the sweep file and its line */
	{
		struct sweep_plan *p = NULL;
		struct vb_error err = {0};
		ck_assert(sweep_plan_parse("b.ini", "[sweep]\ntrain.seed = 1\n"
					   "[train]\nepoch = 3\n",
					   &p, &err) == VB_ERR_CONFIG);
		ck_assert_msg(strstr(err.msg, "b.ini:4") != NULL, "%s",
			      err.msg);
	}
	/* a cell that fails the cross-field checks refuses the whole grid */
	refused("[sweep]\noptim.nesterov = false, true\n", "cell 1");
}
END_TEST

static const char *write_sweep(const char *dir, const char *grid)
{
	char *text = cat(BASE, grid);
	static char path[1200];
	snprintf(path, sizeof path, "%s/sweep-test.ini", dir);
	ck_assert_int_eq(tu_write_file(path, text, strlen(text)), 0);
	free(text);
	return path;
}

static void run_sweep(const char *ini, const char *out, int jobs, int k,
		      int n, struct sweep_stats *stats)
{
	struct sweep_plan *p = NULL;
	struct sweep_options o;
	struct vb_error err = {0};
	ck_assert_msg(sweep_plan_load(ini, &p, &err) == VB_OK, "%s", err.msg);
	memset(&o, 0, sizeof o);
	o.out_dir = out;
	o.jobs = jobs;
	o.shard_k = k;
	o.shard_n = n;
	o.progress = CONFIG_PROGRESS_OFF;
	ck_assert_msg(sweep_run(p, &o, stats, &err) == VB_OK, "%s", err.msg);
	sweep_plan_free(p);
}

/* results.csv of dir without the wall-clock columns, as CSV text. */
static char *stable_results(const char *dir)
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

static size_t count_status(const char *dir, const char *status)
{
	struct table t;
	char path[1200];
	size_t n = 0;
	table_init(&t);
	snprintf(path, sizeof path, "%s/results.csv", dir);
	ck_assert(table_read(path, &t, NULL) == VB_OK);
	for (size_t r = 0; r < t.n_rows; r++)
		n += !strcmp(table_get(&t, r, "status"), status);
	table_free(&t);
	return n;
}

START_TEST(test_jobs_identical)
{
	const char *tmp = tu_tmpdir("jobs");
	char d1[1100], d2[1100], *a, *b;
	const char *ini;
	struct sweep_stats s1, s2;
	snprintf(d1, sizeof d1, "%s/j1", tmp);
	snprintf(d2, sizeof d2, "%s/j2", tmp);
	ini = write_sweep(tmp, GRID);
	run_sweep(ini, d1, 1, 1, 1, &s1);
	run_sweep(ini, d2, 2, 1, 1, &s2);
	ck_assert_uint_eq(s1.n_run, 8);
	ck_assert_uint_eq(s2.n_run, 8);
	ck_assert_uint_eq(s1.n_lost + s2.n_lost, 0);
	a = stable_results(d1);
	b = stable_results(d2);
	ck_assert_str_eq(a, b);
	/* both kinds of cell are there: 4 finite, 4 NaN/Inf */
	ck_assert_uint_eq(count_status(d1, "ok"), 4);
	ck_assert_uint_eq(s1.n_nonfinite, 4);
	ck_assert_uint_eq(count_status(d1, "nan") + count_status(d1, "inf"),
			  4);
	/* a rerun finds everything done; removing one row reruns that one */
	run_sweep(ini, d1, 2, 1, 1, &s1);
	ck_assert_uint_eq(s1.n_done, 8);
	ck_assert_uint_eq(s1.n_run, 0);
	{
		char rows[1200];
		struct dirent *e;
		DIR *dd;
		snprintf(rows, sizeof rows, "%s/rows", d1);
		dd = opendir(rows);
		ck_assert_ptr_nonnull(dd);
		while ((e = readdir(dd)) != NULL)
			if (strstr(e->d_name, ".csv")) {
				char p[1600];
				snprintf(p, sizeof p, "%s/%s", rows, e->d_name);
				ck_assert_int_eq(remove(p), 0);
				break;
			}
		closedir(dd);
	}
	run_sweep(ini, d1, 2, 1, 1, &s1);
	ck_assert_uint_eq(s1.n_done, 7);
	ck_assert_uint_eq(s1.n_run, 1);
	free(a);
	a = stable_results(d1);
	ck_assert_str_eq(a, b);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_shards_merge)
{
	const char *tmp = tu_tmpdir("shards");
	char whole[1100], s1[1100], s2[1100], s3[1100], merged[1100];
	char merged2[1100];
	char *a, *b;
	const char *ini, *dirs[3];
	struct sweep_stats st;
	struct vb_error err = {0};
	size_t total = 0;
	snprintf(whole, sizeof whole, "%s/whole", tmp);
	snprintf(s1, sizeof s1, "%s/s1", tmp);
	snprintf(s2, sizeof s2, "%s/s2", tmp);
	snprintf(s3, sizeof s3, "%s/s3", tmp);
	snprintf(merged, sizeof merged, "%s/merged", tmp);
	ini = write_sweep(tmp, GRID);
	run_sweep(ini, whole, 2, 1, 1, &st);
	run_sweep(ini, s1, 1, 1, 3, &st);
	total += st.n_run;
	ck_assert_uint_eq(st.n_shard, 3); /* cells 0, 3, 6 */
	run_sweep(ini, s2, 1, 2, 3, &st);
	total += st.n_run;
	run_sweep(ini, s3, 1, 3, 3, &st);
	total += st.n_run;
	ck_assert_uint_eq(total, 8);
	/* a shard's summary says it is partial and names the missing cells;
	 * the whole sweep's does not */
	{
		char path[1200], *md;
		snprintf(path, sizeof path, "%s/summary.md", s1);
		md = tu_read_file(path, NULL);
		ck_assert_ptr_nonnull(md);
		ck_assert_msg(strstr(md, "**Partial: 3 of the 8 cells of "
					 "sweep.ini have rows.** Missing "
					 "cells: 1, 2, 4, 5, 7.") != NULL,
			      "%s", md);
		free(md);
		snprintf(path, sizeof path, "%s/summary.md", whole);
		md = tu_read_file(path, NULL);
		ck_assert_ptr_nonnull(md);
		ck_assert(strstr(md, "Partial") == NULL);
		free(md);
	}
	dirs[0] = s3; /* order must not matter */
	dirs[1] = s1;
	dirs[2] = s2;
	ck_assert_msg(report_merge(merged, dirs, 3, &err) == VB_OK, "%s",
		      err.msg);
	a = stable_results(whole);
	b = stable_results(merged);
	ck_assert_str_eq(a, b);
	free(b);
	/* merging twice (a shard given twice) doubles nothing */
	dirs[0] = merged;
	dirs[1] = s1;
	snprintf(merged2, sizeof merged2, "%s/merged2", tmp);
	ck_assert_msg(report_merge(merged2, dirs, 2, &err) == VB_OK, "%s",
		      err.msg);
	b = stable_results(merged2);
	ck_assert_str_eq(a, b);
	free(a);
	free(b);
}
END_TEST

static size_t count_rows(const char *dir)
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

/* Larger cells so that the kill lands in the middle of the sweep. */
static const char *SLOW_GRID =
	"[sweep]\n"
	"data.synthetic_n = 2048\n"
	"model.hidden = 128\n"
	"train.epochs = 3\n"
	"optim.lr = 1e-3, 1e-2, 1e3\n"
	"train.seed = 1..4\n";

START_TEST(test_sigkill_resume)
{
	const char *tmp = tu_tmpdir("kill");
	char ref[1100], killed[1100], *a, *b;
	const char *ini;
	struct sweep_stats st;
	pid_t pid;
	int ws;
	size_t at_kill = 0;
	snprintf(ref, sizeof ref, "%s/ref", tmp);
	snprintf(killed, sizeof killed, "%s/killed", tmp);
	ini = write_sweep(tmp, SLOW_GRID);
	run_sweep(ini, ref, 1, 1, 1, &st);
	ck_assert_uint_eq(st.n_run, 12);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct sweep_plan *p = NULL;
		struct sweep_options o;
		memset(&o, 0, sizeof o);
		o.out_dir = killed;
		o.jobs = 2;
		o.shard_k = o.shard_n = 1;
		if (sweep_plan_load(ini, &p, NULL) == VB_OK)
			sweep_run(p, &o, NULL, NULL);
		_exit(0);
	}
	for (int i = 0; i < 20000; i++) {
		struct timespec ts = {0, 1000000};
		at_kill = count_rows(killed);
		if (at_kill >= 3)
			break;
		nanosleep(&ts, NULL);
	}
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
	ck_assert(WIFSIGNALED(ws));
	at_kill = count_rows(killed);
	ck_assert_msg(at_kill >= 3 && at_kill < 12,
		      "kill landed outside the sweep (%zu rows)", at_kill);
	/* its workers die with it (no row appears later) */
	{
		struct timespec ts = {0, 300000000};
		nanosleep(&ts, NULL);
	}
	ck_assert_uint_eq(count_rows(killed), at_kill);
	run_sweep(ini, killed, 2, 1, 1, &st);
	ck_assert_uint_eq(st.n_done, at_kill);
	ck_assert_uint_eq(st.n_run, 12 - at_kill);
	a = stable_results(ref);
	b = stable_results(killed);
	ck_assert_str_eq(a, b);
	free(a);
	free(b);
}
END_TEST

static int has_png_magic(const char *path)
{
	size_t n = 0;
	char *d = tu_read_file(path, &n);
	int ok = d && n > 100 && !memcmp(d, "\x89PNG\r\n\x1a\n", 8);
	free(d);
	return ok;
}

/* PNG width and height from its IHDR chunk. */
static void png_size(const char *path, int *w, int *h)
{
	size_t n = 0;
	unsigned char *d = (unsigned char *)tu_read_file(path, &n);
	ck_assert_msg(d && n > 24, "%s", path);
	*w = d[16] << 24 | d[17] << 16 | d[18] << 8 | d[19];
	*h = d[20] << 24 | d[21] << 16 | d[22] << 8 | d[23];
	free(d);
}

/* A table with the given columns and rows (cells row-major). */
static void make_table(struct table *t, const char *const *cols, size_t nc,
		       const char *const *cells, size_t nr)
{
	struct vb_error err = {0};
	table_init(t);
	for (size_t c = 0; c < nc; c++)
		ck_assert(table_add_col(t, cols[c], &err) == VB_OK);
	for (size_t r = 0; r < nr; r++) {
		size_t row;
		ck_assert(table_add_row(t, &row, &err) == VB_OK);
		for (size_t c = 0; c < nc; c++)
			ck_assert(table_set_cell(t, row, c, cells[r * nc + c],
						 &err) == VB_OK);
	}
}

/* Issue 15 item 8 (b): a mitigation sweep is drawn per mitigation, never
 * as an lr x batch grid, even when mitigations set optim.lr and
 * train.batch; a [sweep] axis that varies within a mitigation goes
 * across. */
START_TEST(test_figures_mitigation_axes)
{
	static const char *const cols[] = {"id", "status", "mitigation",
					   "optim.lr", "train.batch",
					   "train.seed"};
	static const char *const cells[] = {
		"a", "ok", "baseline", "0.001", "64", "1",
		"b", "ok", "baseline", "0.001", "64", "2",
		"c", "ok", "low-lr", "1e-05", "64", "1",
		"d", "ok", "low-lr", "1e-05", "64", "2",
		"e", "ok", "batch-16", "0.001", "16", "1",
		"f", "ok", "batch-16", "0.001", "16", "2"};
	static const char *const axes[] = {"optim.lr", "train.batch",
					   "train.seed"};
	struct table t;
	const char *x, *y;
	make_table(&t, cols, 6, cells, 6);
	ck_assert(figures_is_mitigation_sweep(&t));
	figures_pick_axes(&t, axes, 3, NULL, NULL, &x, &y);
	ck_assert_ptr_null(x);
	ck_assert_str_eq(y, "mitigation");
	/* without mitigations: lr x batch as before */
	figures_pick_map(axes, 3, NULL, NULL, &x, &y);
	ck_assert_str_eq(x, "optim.lr");
	ck_assert_str_eq(y, "train.batch");
	table_free(&t);
	{
		/* a [sweep] axis inside each mitigation: across */
		static const char *const c2[] = {
			"a", "ok", "baseline", "0.001", "64", "1",
			"b", "ok", "baseline", "0.001", "32", "1",
			"c", "ok", "low-lr", "1e-05", "64", "1",
			"d", "ok", "low-lr", "1e-05", "32", "1"};
		make_table(&t, cols, 6, c2, 4);
		figures_pick_axes(&t, axes, 2, NULL, NULL, &x, &y);
		ck_assert_str_eq(x, "train.batch");
		ck_assert_str_eq(y, "mitigation");
		table_free(&t);
	}
}
END_TEST

/* Writes dir/curves/ID.csv with steps 1..3 and train_loss values v. */
static void write_curve(const char *dir, const char *id, const double v[3])
{
	char path[1300];
	FILE *f;
	snprintf(path, sizeof path, "%s/curves", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/curves/%s.csv", dir, id);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "epoch,steps,train_loss\n");
	for (int i = 0; i < 3; i++)
		fprintf(f, "%d,%d,%.17g\n", i + 1, 10 * (i + 1), v[i]);
	fclose(f);
}

/* Issue 15 item 8 (c): panels without runs are not drawn, the legend
 * wraps instead of being cut (the image keeps its width and grows in
 * height), signed data draw (a): plot_symlog is odd and log10(1+|y|). */
START_TEST(test_figures_legend_panels)
{
	const char *tmp = tu_tmpdir("figlegend");
	static const char *const cols[] = {"id", "status", "optim.lr",
					   "train.batch", "train.seed"};
	/* a 2 x 2 grid with the (1e-2, 32) corner missing */
	static const char *const cells[] = {
		"a", "ok", "0.001", "16", "1", "b", "ok", "0.01", "16", "1",
		"c", "ok", "0.001", "32", "1"};
	static const double neg[3] = {-5, -8, 3}, pos[3] = {100, 50, 20};
	struct table t;
	struct vb_error err = {0};
	char path[1300];
	int w3, h3, w4, h4;
	make_table(&t, cols, 5, cells, 3);
	write_curve(tmp, "a", neg);
	write_curve(tmp, "b", pos);
	write_curve(tmp, "c", pos);
	ck_assert_msg(figures_curves(&t, tmp, "optim.lr", "train.batch",
				     "train_loss", "three.png", "three",
				     "loss", &err) == VB_OK, "%s", err.msg);
	table_free(&t);
	{
		static const char *const full[] = {
			"a", "ok", "0.001", "16", "1",
			"b", "ok", "0.01", "16", "1",
			"c", "ok", "0.001", "32", "1",
			"d", "ok", "0.01", "32", "1"};
		make_table(&t, cols, 5, full, 4);
		write_curve(tmp, "d", pos);
		ck_assert_msg(figures_curves(&t, tmp, "optim.lr",
					     "train.batch", "train_loss",
					     "four.png", "four", "loss",
					     &err) == VB_OK, "%s", err.msg);
		table_free(&t);
	}
	snprintf(path, sizeof path, "%s/three.png", tmp);
	png_size(path, &w3, &h3);
	snprintf(path, sizeof path, "%s/four.png", tmp);
	png_size(path, &w4, &h4);
	/* three panels in one row (the empty one dropped), four in 2 x 2 */
	ck_assert_int_gt(w3, w4);
	ck_assert_int_lt(h3, h4);
	/* a legend of 16 seeds wraps within the image width */
	{
		struct plot_series se = {0};
		struct plot_panel pn = {.title = "p", .n_series = 1,
					.series = &se};
		const char *labels[16];
		uint32_t colors[16];
		char lab[16][16];
		double xs[2] = {0, 1}, ys[2] = {-1, 2};
		int w0, h0, w16, h16;
		se.n = 2;
		se.x = xs;
		se.y = ys;
		se.mark_x = NAN;
		for (int i = 0; i < 16; i++) {
			snprintf(lab[i], sizeof lab[i], "seed %d", i + 1);
			labels[i] = lab[i];
			colors[i] = plot_palette((size_t)i);
		}
		struct plot_lines pl = {.title = "t", .n_panels = 1,
					.n_cols = 1, .panels = &pn,
					.legend_labels = labels,
					.legend_colors = colors};
		snprintf(path, sizeof path, "%s/leg0.png", tmp);
		ck_assert(plot_lines_png(&pl, path, &err) == VB_OK);
		png_size(path, &w0, &h0);
		pl.legend_n = 16;
		snprintf(path, sizeof path, "%s/leg16.png", tmp);
		ck_assert(plot_lines_png(&pl, path, &err) == VB_OK);
		png_size(path, &w16, &h16);
		ck_assert_int_eq(w16, w0);
		/* 16 entries of ~130 px in a ~400 px image: several lines */
		ck_assert_int_ge(h16 - h0, 3 * plot_text_height(2));
	}
	ck_assert(plot_symlog(0) == 0);
	ck_assert(fabs(plot_symlog(99) - 2) < 1e-12);
	ck_assert(fabs(plot_symlog(-99) + 2) < 1e-12);
}
END_TEST

/* Issue 15 item 8 (e): a folder without curves/ draws its eval loss per
 * epoch from results.csv; a grad-norm figure that cannot be redrawn is
 * removed for a mitigation sweep. */
START_TEST(test_figures_without_curves)
{
	const char *tmp = tu_tmpdir("nocurves");
	static const char *const cols[] = {"id", "status", "mitigation",
					   "train.seed", "first_epoch",
					   "first_step", "eval_losses"};
	static const char *const cells[] = {
		"a", "ok", "baseline", "1", "", "", "-3;-5;-6",
		"b", "nan", "baseline", "2", "3", "30", "-3;-4;nan",
		"c", "ok", "clip", "1", "", "", "2;1;0.5",
		"d", "ok", "clip", "2", "", "", "2;;0.4"};
	struct table t;
	struct vb_error err = {0};
	char path[1300];
	FILE *f;
	int w, h;
	make_table(&t, cols, 7, cells, 4);
	snprintf(path, sizeof path, "%s/grad_norm.png", tmp);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("stale", f);
	fclose(f);
	ck_assert_msg(figures_curves(&t, tmp, NULL, "mitigation",
				     "grad_norm_max", "grad_norm.png", "g",
				     "g", &err) == VB_OK, "%s", err.msg);
	ck_assert_int_ne(access(path, F_OK), 0);
	ck_assert_msg(figures_curves(&t, tmp, NULL, "mitigation",
				     "train_loss", "loss_curves.png", "l",
				     "l", &err) == VB_OK, "%s", err.msg);
	snprintf(path, sizeof path, "%s/loss_curves.png", tmp);
	ck_assert(has_png_magic(path));
	/* two panels side by side, one per mitigation */
	png_size(path, &w, &h);
	ck_assert_int_gt(w, h);
	table_free(&t);
}
END_TEST

/* Issue 15 item 8 (d): report from results.csv alone fills the blanks
 * that rows older than a setting left with its default, so a column
 * "", exp is no axis. */
START_TEST(test_report_fake_axis)
{
	const char *tmp = tu_tmpdir("fakeaxis");
	char out[1100], path[1300], away[1300], *md, *csv, *p;
	const char *ini;
	struct sweep_stats st;
	struct vb_error err = {0};
	size_t n;
	FILE *f;
	snprintf(out, sizeof out, "%s/out", tmp);
	ini = write_sweep(tmp, "[sweep]\ntrain.seed = 1..2\n");
	run_sweep(ini, out, 1, 1, 1, &st);
	snprintf(path, sizeof path, "%s/rows", out);
	snprintf(away, sizeof away, "%s/rows.away", out);
	ck_assert_int_eq(rename(path, away), 0);
	/* the first row predates model.sigma: its cell is blank */
	snprintf(path, sizeof path, "%s/results.csv", out);
	csv = tu_read_file(path, &n);
	ck_assert_ptr_nonnull(csv);
	p = strchr(csv, '\n');
	ck_assert_ptr_nonnull(p);
	p = strstr(p, ",exp,");
	ck_assert_ptr_nonnull(p);
	memmove(p + 1, p + 4, strlen(p + 4) + 1);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(csv, f);
	fclose(f);
	free(csv);
	ck_assert_msg(report_rebuild(out, NULL, NULL, &err) == VB_OK, "%s",
		      err.msg);
	snprintf(path, sizeof path, "%s/summary.md", out);
	md = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(md);
	ck_assert_msg(strstr(md, "- `model.sigma`:") == NULL, "%s", md);
	ck_assert_msg(strstr(md, "model.sigma") == NULL, "%s", md);
	free(md);
}
END_TEST

START_TEST(test_report_files)
{
	const char *tmp = tu_tmpdir("report");
	char out[1100], path[1300], *md, *mj;
	const char *ini;
	struct sweep_stats st;
	struct vb_error err = {0};
	snprintf(out, sizeof out, "%s/out", tmp);
	ini = write_sweep(tmp, GRID);
	run_sweep(ini, out, 2, 1, 1, &st);
	snprintf(path, sizeof path, "%s/summary.md", out);
	md = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(md);
	/* lr 1e3 hits NaN in every seed and batch: 4 of 4 runs, 100 % */
	ck_assert_msg(strstr(md, "| 1000 | 4 | 4 | 100% |") != NULL, "%s", md);
	ck_assert_msg(strstr(md, "| 0.001 | 4 | 0 | 0% |") != NULL, "%s", md);
	free(md);
	snprintf(path, sizeof path, "%s/machine.json", out);
	mj = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(mj);
	ck_assert(strstr(mj, "\"blas_core\"") != NULL);
	free(mj);
	const char *pngs[] = {"stability_map.png", "loss_curves.png",
			      "grad_norm.png"};
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/%s", out, pngs[i]);
		ck_assert_msg(has_png_magic(path), "%s", path);
		ck_assert_int_eq(remove(path), 0);
	}
	/* report rebuilds them */
	ck_assert_msg(report_rebuild(out, "train.batch", "train.seed", &err) ==
			      VB_OK, "%s", err.msg);
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/%s", out, pngs[i]);
		ck_assert_msg(has_png_magic(path), "%s", path);
	}
	/* every run's per-epoch metrics are copied to curves/ID.csv and
	 * every NaN/Inf run's precursor ring to precursors/ID.csv, byte for
	 * byte; finite runs get no precursors */
	{
		struct table t;
		size_t n_copies = 0;
		table_init(&t);
		snprintf(path, sizeof path, "%s/results.csv", out);
		ck_assert(table_read(path, &t, &err) == VB_OK);
		for (size_t r = 0; r < t.n_rows; r++) {
			const char *id = table_get(&t, r, "id");
			bool bad = strcmp(table_get(&t, r, "status"), "ok");
			char src[1300], *a, *b;
			snprintf(src, sizeof src, "%s/runs/%s/metrics.csv", out,
				 id);
			snprintf(path, sizeof path, "%s/curves/%s.csv", out, id);
			a = tu_read_file(src, NULL);
			b = tu_read_file(path, NULL);
			ck_assert_ptr_nonnull(a);
			ck_assert_ptr_nonnull(b);
			ck_assert_str_eq(a, b);
			free(a);
			free(b);
			snprintf(path, sizeof path, "%s/precursors/%s.csv", out,
				 id);
			ck_assert_int_eq(access(path, F_OK) == 0, bad);
			if (!bad)
				continue;
			snprintf(src, sizeof src, "%s/runs/%s/precursors.csv",
				 out, id);
			a = tu_read_file(src, NULL);
			b = tu_read_file(path, NULL);
			ck_assert_ptr_nonnull(a);
			ck_assert_ptr_nonnull(b);
			ck_assert_str_eq(a, b);
			ck_assert(strstr(b, "grad_norm") != NULL);
			free(a);
			free(b);
			n_copies++;
		}
		ck_assert_uint_eq(n_copies, 4);
		table_free(&t);
	}
	/* a clone without runs/ (they are not committed) regenerates the same
	 * curve plots from curves/ and keeps its precursors */
	{
		static const char *const plots[2] = {"loss_curves.png",
						     "grad_norm.png"};
		char runs[1300], away[1300];
		size_t len[2];
		char *before[2];
		for (int i = 0; i < 2; i++) {
			snprintf(path, sizeof path, "%s/%s", out, plots[i]);
			before[i] = tu_read_file(path, &len[i]);
			ck_assert_ptr_nonnull(before[i]);
		}
		snprintf(runs, sizeof runs, "%s/runs", out);
		snprintf(away, sizeof away, "%s/runs.away", out);
		ck_assert_int_eq(rename(runs, away), 0);
		ck_assert_msg(report_rebuild(out, "train.batch", "train.seed",
					   &err) == VB_OK,
			      "%s", err.msg);
		for (int i = 0; i < 2; i++) {
			size_t n;
			char *after;
			snprintf(path, sizeof path, "%s/%s", out, plots[i]);
			after = tu_read_file(path, &n);
			ck_assert_ptr_nonnull(after);
			ck_assert_msg(n == len[i] &&
					      !memcmp(after, before[i], n),
				      "%s changed without runs/", plots[i]);
			free(after);
			free(before[i]);
		}
		ck_assert_int_eq(rename(away, runs), 0);
	}
	/* a different sweep into the same folder is refused */
	{
		struct sweep_plan *p = NULL;
		struct sweep_options o;
		const char *other = write_sweep(tmp, "[sweep]\ntrain.seed = 7\n");
		ck_assert(sweep_plan_load(other, &p, &err) == VB_OK);
		memset(&o, 0, sizeof o);
		o.out_dir = out;
		o.jobs = 1;
		o.shard_k = o.shard_n = 1;
		ck_assert(sweep_run(p, &o, NULL, &err) == VB_ERR_USAGE);
		ck_assert(strstr(err.msg, "different sweep") != NULL);
		sweep_plan_free(p);
	}
}
END_TEST

/* ---- mitigations ---- */

static const char *MITIG =
	"[mitigations]\n"
	"baseline =\n"
	"hot = optim.lr=1e3 ; diverges\n"
	"clip = optim.clip=norm   optim.clip_max=5\n"
	"[sweep]\n"
	"train.seed = 1..2\n";

START_TEST(test_mitigations_parse)
{
	char *text = cat(BASE, MITIG);
	char *plain = cat(BASE, "[sweep]\ntrain.seed = 1..2\n");
	struct sweep_plan *p = parse_ok(text), *q = parse_ok(plain);
	struct config c;
	char id[SWEEP_PLAN_ID_LEN], id2[SWEEP_PLAN_ID_LEN], buf[CONFIG_VALUE_LEN];
	ck_assert_uint_eq(p->n_mitigations, 3);
	ck_assert_uint_eq(p->n_axes, 1);
	ck_assert_uint_eq(p->n_cells, 6);
	ck_assert_str_eq(p->mitigations[0].name, "baseline");
	ck_assert_int_eq(p->mitigations[0].line, 15);
	ck_assert_uint_eq(p->mitigations[0].n_sets, 0);
	ck_assert_str_eq(p->mitigations[1].name, "hot");
	ck_assert_uint_eq(p->mitigations[1].n_sets, 1);
	ck_assert_str_eq(p->mitigations[1].values[0], "1000"); /* canonical */
	ck_assert_uint_eq(p->mitigations[2].n_sets, 2);
	/* the base sections are read, the mitigation lines are not base */
	ck_assert_int_eq(p->base.optim.kind, OPTIM_SGD);
	ck_assert_double_eq(p->base.optim.lr, 1e-3);
	/* mitigations outermost, then the axes: cell 3 = hot, seed 2 */
	ck_assert_str_eq(sweep_plan_mitigation(p, 0), "baseline");
	ck_assert_str_eq(sweep_plan_mitigation(p, 3), "hot");
	ck_assert_str_eq(sweep_plan_mitigation(p, 5), "clip");
	ck_assert_str_eq(sweep_plan_mitigation(p, 6), "");
	ck_assert_str_eq(sweep_plan_mitigation(q, 0), "");
	ck_assert(sweep_plan_cell(p, 3, &c, id, NULL) == VB_OK);
	ck_assert_double_eq(c.optim.lr, 1e3);
	ck_assert_uint_eq(c.train.seed, 2);
	ck_assert(sweep_plan_cell(p, 4, &c, id, NULL) == VB_OK);
	config_get(&c, "optim.clip", buf, sizeof buf, NULL);
	ck_assert_str_eq(buf, "norm");
	ck_assert_double_eq(c.optim.clip_max, 5);
	ck_assert_double_eq(c.optim.lr, 1e-3);
	ck_assert_uint_eq(c.train.seed, 1);
	/* baseline x seeds has the ids of the plain seeds sweep */
	for (size_t i = 0; i < 2; i++) {
		ck_assert(sweep_plan_cell(p, i, &c, id, NULL) == VB_OK);
		ck_assert(sweep_plan_cell(q, i, &c, id2, NULL) == VB_OK);
		ck_assert_str_eq(id, id2);
	}
	ck_assert(sweep_plan_cell(p, 2, &c, id, NULL) == VB_OK);
	ck_assert_str_ne(id, id2);
	sweep_plan_free(p);
	sweep_plan_free(q);
	free(text);
	free(plain);
	/* [mitigations] alone: one cell per mitigation */
	text = cat(BASE, "[mitigations]\nbaseline =\nslow = optim.lr=1e-5\n");
	p = parse_ok(text);
	ck_assert_uint_eq(p->n_cells, 2);
	ck_assert(sweep_plan_cell(p, 1, &c, id, NULL) == VB_OK);
	ck_assert_double_eq(c.optim.lr, 1e-5);
	sweep_plan_free(p);
	free(text);
}
END_TEST

/* --order seeds-first: the pending cells come axis point by axis point
 * (every mitigation at seed 1, then at seed 2); a cell with a row is
 * still left out, and grid order is the default. */
START_TEST(test_order_seeds_first)
{
	char *text = cat(BASE, MITIG);
	struct sweep_plan *p = parse_ok(text);
	struct sweep_options o;
	struct vb_error err = {0};
	const char *tmp = tu_tmpdir("order");
	size_t *cells = NULL, n = 0;
	const size_t want[] = {0, 2, 4, 1, 3, 5};
	char id[SWEEP_PLAN_ID_LEN], path[1200];
	struct config c;
	memset(&o, 0, sizeof o);
	o.out_dir = tmp;
	o.jobs = 1;
	o.shard_k = o.shard_n = 1;
	ck_assert_msg(sweep_pending(p, &o, &cells, &n, &err) == VB_OK, "%s",
		      err.msg);
	ck_assert_uint_eq(n, 6);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(cells[i], i);
	free(cells);
	o.axes_first = true;
	ck_assert(sweep_pending(p, &o, &cells, &n, &err) == VB_OK);
	ck_assert_uint_eq(n, 6);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(cells[i], want[i]);
	free(cells);
	/* the same order when cell 2 (hot, seed 1) already has a row */
	ck_assert(sweep_plan_cell(p, 2, &c, id, NULL) == VB_OK);
	snprintf(path, sizeof path, "%s/rows/%s.csv", tmp, id);
	ck_assert_int_eq(tu_write_file(path, "x\n", 2), 0);
	ck_assert(sweep_pending(p, &o, &cells, &n, &err) == VB_OK);
	ck_assert_uint_ge(n, 5);
	ck_assert_uint_eq(cells[0], 0);
	ck_assert_uint_eq(cells[n - 1], 5);
	for (size_t i = 1; i < n; i++)
		ck_assert(cells[i - 1] % 2 < cells[i] % 2 ||
			  (cells[i - 1] % 2 == cells[i] % 2 &&
			   cells[i - 1] < cells[i]));
	free(cells);
	sweep_plan_free(p);
	free(text);
}
END_TEST

/* Issue 15 item 7: an axis value or mitigation setting that cannot act
 * in its cell (config_key_effective) refuses the grid in one line naming
 * the axis, the value and the setting that disables it. */
START_TEST(test_inert_refused)
{
	struct sweep_plan *p;
	char *text;
	refused("[nets]\ninit = pytorch\n[sweep]\nnets.init_scale = 1, 2\n",
		"axis nets.init_scale = 1 has no effect in cell 0: it requires "
		"nets.init = scaled (here nets.init = pytorch)");
	text = cat(BASE, "[nets]\ninit = scaled\n[sweep]\n"
			 "nets.init_scale = 1, 2\n");
	p = parse_ok(text);
	ck_assert_uint_eq(p->n_cells, 2);
	sweep_plan_free(p);
	free(text);
	/* the enabling setting may come from another axis: then its other
	 * values make the cells inert */
	refused("[sweep]\nnets.init = scaled, pytorch\n"
		"nets.init_scale = 1, 2\n",
		"axis nets.init_scale = 1 has no effect in cell 2");
	refused("[sweep]\ndata.standardize_eps = 0, 1e-5\n",
		"data.standardize_eps = 0 has no effect in cell 0: it requires "
		"data.standardize = true (here data.standardize = false)");
	/* BASE is sgd: Adam's epsilon cannot act */
	refused("[sweep]\noptim.adam_eps = 1e-8, 1e-4\n",
		"optim.adam_eps = 1e-08 has no effect in cell 0: it requires "
		"optim.kind = adam,adamw (here optim.kind = sgd)");
	refused("[sweep]\nrhvae.eps_lf = 0.001, 0.01\n",
		"it requires model.kind = rhvae,hvae (here model.kind = vae)");
	/* an alternative: nonfinite acts with an injected input fault too */
	refused("[sweep]\ndata.nonfinite = pass, scrub\n",
		"data.standardize = true | inject.nan_step != -1 (here "
		"data.standardize = false, inject.nan_step = -1)");
	text = cat(BASE, "[inject]\nnan_step = 3\n[sweep]\n"
			 "data.nonfinite = pass, scrub\n");
	p = parse_ok(text);
	sweep_plan_free(p);
	free(text);
	/* mitigations: the same check, naming the mitigation and its line */
	refused("[mitigations]\nbaseline =\nclip = optim.clip_max=5\n",
		"bad.ini:16: mitigation clip sets optim.clip_max = 5, which has "
		"no effect in cell 1: it requires optim.clip = norm,value (here "
		"optim.clip = none)");
	text = cat(BASE, "[mitigations]\nbaseline =\n"
			 "clip = optim.clip=norm optim.clip_max=5\n");
	p = parse_ok(text);
	sweep_plan_free(p);
	free(text);
	/* a mitigation that enables an axis: only its cells are checked */
	refused("[mitigations]\nbaseline =\nscaled = nets.init=scaled\n"
		"[sweep]\nnets.init_scale = 1, 2\n",
		"of mitigation baseline: it requires nets.init = scaled");
}
END_TEST

START_TEST(test_mitigations_malformed)
{
	/* BASE has 13 lines: [mitigations] is line 14, the first entry 15 */
	refused("[mitigations]\nbaseline =\nx = optim.learning_rate=1\n",
		"bad.ini:16: mitigation x: unknown key 'optim.learning_rate'");
	refused("[mitigations]\na = optim.lr=abc\n",
		"bad.ini:15: mitigation a: optim.lr = \"abc\": expected");
	refused("[mitigations]\na = optim.lr=-1\n", "bad.ini:15: mitigation a");
	refused("[mitigations]\na = run.name=x\n",
		"bad.ini:15: mitigation a: run.name cannot be set");
	refused("[mitigations]\na = optim.lr=1\nb =\na = optim.lr=2\n",
		"bad.ini:17: mitigation a given twice (first on line 15)");
	refused("[mitigations]\nmy fix = optim.lr=1\n",
		"bad.ini:15: mitigation name 'my fix'");
	refused("[mitigations]\n= optim.lr=1\n", "bad.ini:15: mitigation name");
	refused("[mitigations]\nclip = optim.clip norm\n",
		"bad.ini:15: mitigation clip: 'optim.clip': expected "
		"section.key=value");
	refused("[mitigations]\nbaseline\n", "bad.ini:15: expected 'NAME = ");
	refused("[mitigations]\na = optim.lr=1 optim.lr=2\n",
		"bad.ini:15: mitigation a: optim.lr given twice");
	/* 1e-3 is the base's lr: the same cell as baseline */
	refused("[mitigations]\nbaseline =\nsame = optim.lr=0.001\n",
		"bad.ini:16: mitigation same resolves to the same settings as "
		"baseline (line 15)");
	/* a key that is also an axis, the axis after the mitigations */
	refused("[mitigations]\nbaseline =\nlow = optim.lr=1e-4\n[sweep]\n"
		"optim.lr = 1e-3, 1e-2\n",
		"bad.ini:16: mitigation low sets optim.lr, which is also a "
		"[sweep] axis");
	refused("[mitigations]\n; nothing yet\n",
		"bad.ini:14: [mitigations] has no mitigation");
	/* cross-field checks name the mitigation and its line */
	refused("[mitigations]\nbaseline =\nnest = optim.nesterov=true\n",
		"cell 1 (mitigation nest, line 16)");
}
END_TEST

/* Column name of results.csv row r of dir into a malloc'd string. */
static char *result_cell(const char *dir, const char *file, size_t r,
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

/* Asserts that cell (r, col) of dir/file reads want. */
static void expect_cell(const char *dir, const char *file, size_t r,
			const char *col, const char *want)
{
	char *v = result_cell(dir, file, r, col);
	ck_assert_msg(!strcmp(v, want), "%s/%s row %zu %s: '%s', expected "
		      "'%s'", dir, file, r, col, v, want);
	free(v);
}

/* mitigations.csv without its wall-clock columns (the last three). */
static char *stable_mitigations(const char *dir)
{
	char path[1200], *text, *out, *o;
	snprintf(path, sizeof path, "%s/mitigations.csv", dir);
	text = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(text);
	out = malloc(strlen(text) + 1);
	ck_assert_ptr_nonnull(out);
	o = out;
	for (char *line = text; *line;) {
		char *nl = strchr(line, '\n'), *cut;
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		int commas = 0;
		cut = line + len;
		for (char *q = line + len; q > line; q--)
			if (q[-1] == ',' && ++commas == 3) {
				cut = q - 1;
				break;
			}
		ck_assert_int_eq(commas, 3);
		memcpy(o, line, (size_t)(cut - line));
		o += cut - line;
		*o++ = '\n';
		line += len + (nl ? 1 : 0);
	}
	*o = '\0';
	free(text);
	return out;
}

START_TEST(test_mitigation_table)
{
	const char *tmp = tu_tmpdir("mitig");
	char d1[1100], d2[1100], path[1300], *md, *a, *b;
	const char *ini;
	struct sweep_stats st;
	struct table t;
	double mean = 0;
	snprintf(d1, sizeof d1, "%s/m1", tmp);
	snprintf(d2, sizeof d2, "%s/m2", tmp);
	ini = write_sweep(tmp, MITIG);
	run_sweep(ini, d1, 1, 1, 1, &st);
	ck_assert_uint_eq(st.n_run, 6);
	run_sweep(ini, d2, 2, 1, 1, &st);
	/* rows: the mitigation's name and one eval loss per epoch */
	table_init(&t);
	snprintf(path, sizeof path, "%s/results.csv", d1);
	ck_assert(table_read(path, &t, NULL) == VB_OK);
	ck_assert_uint_eq(t.n_rows, 6);
	ck_assert_str_eq(table_get(&t, 0, "mitigation"), "baseline");
	ck_assert_str_eq(table_get(&t, 2, "mitigation"), "hot");
	ck_assert_str_eq(table_get(&t, 5, "mitigation"), "clip");
	for (size_t r = 0; r < 2; r++) {
		/* baseline: 2 finite epochs, the last one the final loss */
		const char *el = table_get(&t, r, "eval_losses");
		const char *semi = strchr(el, ';');
		ck_assert_msg(semi && !strchr(semi + 1, ';'), "%s", el);
		ck_assert_str_eq(semi + 1, table_get(&t, r, "final_eval_loss"));
		mean += strtod(semi + 1, NULL) / 2;
	}
	for (size_t r = 2; r < 4; r++) /* hot: NaN in epoch 1 */
		ck_assert_msg(strstr(table_get(&t, r, "eval_losses"), "nan"),
			      "%s", table_get(&t, r, "eval_losses"));
	table_free(&t);
	/* mitigations.csv: E = 2 (every baseline run finished 2 epochs) */
	a = result_cell(d1, "mitigations.csv", 0, "mitigation");
	ck_assert_str_eq(a, "baseline");
	free(a);
	a = result_cell(d1, "mitigations.csv", 0, "compare_epoch");
	ck_assert_str_eq(a, "2");
	free(a);
	a = result_cell(d1, "mitigations.csv", 0, "eval_loss_at_epoch");
	ck_assert_msg(fabs(strtod(a, NULL) - mean) <= 1e-6 * fabs(mean),
		      "%s vs %.9g", a, mean); /* 9 printed digits */
	free(a);
	a = result_cell(d1, "mitigations.csv", 1, "nan_runs");
	ck_assert_str_eq(a, "2");
	free(a);
	a = result_cell(d1, "mitigations.csv", 1, "eval_runs_at_epoch");
	ck_assert_str_eq(a, "0");
	free(a);
	a = result_cell(d1, "mitigations.csv", 0, "time_vs_baseline");
	ck_assert_str_eq(a, "1");
	free(a);
	/* learned (stats.h): computable for every run; the runs that hit
	 * NaN in epoch 1 (no finite evaluated epoch) did not learn */
	a = result_cell(d1, "mitigations.csv", 0, "learned_known");
	ck_assert_str_eq(a, "2");
	free(a);
	a = result_cell(d1, "mitigations.csv", 1, "learned");
	ck_assert_str_eq(a, "0");
	free(a);
	a = result_cell(d1, "mitigations.csv", 1, "learned_known");
	ck_assert_str_eq(a, "2");
	free(a);
	a = result_cell(d1, "mitigations.csv", 0, "nll_runs");
	ck_assert_str_eq(a, "2");
	free(a);
	for (size_t r = 2; r < 4; r++) {
		a = result_cell(d1, "results.csv", r, "learned");
		ck_assert_str_eq(a, "false");
		free(a);
	}
	/* the same table from --jobs 1 and 2, wall clock aside */
	a = stable_mitigations(d1);
	b = stable_mitigations(d2);
	ck_assert_str_eq(a, b);
	free(a);
	free(b);
	snprintf(path, sizeof path, "%s/summary.md", d1);
	md = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(md);
	ck_assert_msg(strstr(md, "## Mitigations") != NULL, "%s", md);
	ck_assert_msg(strstr(md, "Comparison epoch E = 2") != NULL, "%s", md);
	ck_assert_msg(strstr(md, "eval loss at epoch 2 (runs)") != NULL, "%s",
		      md);
	ck_assert_msg(strstr(md, "| baseline | 2 | 0/2 | - |") != NULL, "%s",
		      md);
	ck_assert_msg(strstr(md, "| hot | 2 | 2/2 |") != NULL, "%s", md);
	ck_assert_msg(strstr(md, "\"Learned\": a run learned iff") != NULL,
		      "%s", md);
	ck_assert_msg(strstr(md, "the median best-epoch NLL of the "
				 "baseline's runs") != NULL, "%s", md);
	ck_assert_msg(strstr(md, "- `clip`: `optim.clip = norm`, "
				 "`optim.clip_max = 5`") != NULL, "%s", md);
	free(md);
	snprintf(path, sizeof path, "%s/mitigations.png", d1);
	ck_assert(has_png_magic(path));
	/* train.eval_every = 2 over 2 epochs: epoch 1 has no evaluation
	 * (an empty eval_losses entry) and E is the evaluated epoch 2 */
	{
		char d4[1100];
		double fin;
		snprintf(d4, sizeof d4, "%s/every", tmp);
		ini = write_sweep(tmp, "[mitigations]\nbaseline =\n"
				       "hot = optim.lr=1e3\n[sweep]\n"
				       "train.seed = 1\ntrain.eval_every = 2\n");
		run_sweep(ini, d4, 1, 1, 1, &st);
		a = result_cell(d4, "results.csv", 0, "eval_losses");
		ck_assert_msg(a[0] == ';' && !strchr(a + 1, ';'), "%s", a);
		fin = strtod(a + 1, NULL);
		free(a);
		a = result_cell(d4, "mitigations.csv", 0, "compare_epoch");
		ck_assert_str_eq(a, "2");
		free(a);
		a = result_cell(d4, "mitigations.csv", 0, "eval_loss_at_epoch");
		ck_assert_msg(fabs(strtod(a, NULL) - fin) <= 1e-6 * fabs(fin),
			      "%s vs %.9g", a, fin);
		free(a);
	}
	/* a plain sweep has an empty mitigation column and no table */
	{
		char d3[1100];
		snprintf(d3, sizeof d3, "%s/plain", tmp);
		ini = write_sweep(tmp, "[sweep]\ntrain.seed = 1\n");
		run_sweep(ini, d3, 1, 1, 1, &st);
		a = result_cell(d3, "results.csv", 0, "mitigation");
		ck_assert_str_eq(a, "");
		free(a);
		snprintf(path, sizeof path, "%s/mitigations.csv", d3);
		ck_assert_int_ne(access(path, F_OK), 0);
		snprintf(path, sizeof path, "%s/summary.md", d3);
		md = tu_read_file(path, NULL);
		ck_assert_ptr_nonnull(md);
		ck_assert(strstr(md, "## Mitigations") == NULL);
		free(md);
	}
}
END_TEST

/* Rows written before eval_losses, mitigation and a setting existed still
 * load: the table leaves the results blank and gives the setting its
 * default. */
/* issue 17 item 12: a record with an unterminated quote is bad data and
 * frees the fields read before it (the sanitizer build's leak check). */
START_TEST(test_table_unterminated_quote)
{
	const char *tmp = tu_tmpdir("quote");
	const char *texts[] = {"a,b\nx,\"", "a,b\nx,y,\"z", "\"a,b\n"};
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		char path[1300];
		struct table t;
		struct vb_error err = {0};
		snprintf(path, sizeof path, "%s/q%zu.csv", tmp, i);
		ck_assert_int_eq(tu_write_file(path, texts[i],
					       strlen(texts[i])), 0);
		table_init(&t);
		ck_assert_int_eq(table_read(path, &t, &err), VB_ERR_DATA);
		table_free(&t);
	}
}
END_TEST

START_TEST(test_old_rows_load)
{
	const char *tmp = tu_tmpdir("oldrows");
	char rows[1100], path[1300];
	struct vb_error err = {0};
	const char *old = "id,cell,train.seed,status,first_epoch,"
			  "final_eval_loss,seconds\n"
			  "00000000000000aa,0,1,ok,,90.5,1.0\n";
	const char *new_row = "id,cell,mitigation,train.seed,status,"
			      "first_epoch,final_eval_loss,seconds,epochs_done,"
			      "eval_losses,train.precision\n"
			      "00000000000000bb,1,baseline,2,ok,,91,2.0,2,"
			      "95;91,bf16\n";
	const char *old2 = "id,cell,train.seed,status,first_epoch,"
			   "final_eval_loss,seconds\n"
			   "00000000000000cc,2,3,ok,,92.5,1.0\n";
	snprintf(rows, sizeof rows, "%s/rows", tmp);
	ck_assert_int_eq(mkdir(rows, 0755), 0);
	snprintf(path, sizeof path, "%s/00000000000000aa.csv", rows);
	ck_assert_int_eq(tu_write_file(path, old, strlen(old)), 0);
	snprintf(path, sizeof path, "%s/00000000000000bb.csv", rows);
	ck_assert_int_eq(tu_write_file(path, new_row, strlen(new_row)), 0);
	/* an old row read after the new one (ids are read in order) */
	snprintf(path, sizeof path, "%s/00000000000000cc.csv", rows);
	ck_assert_int_eq(tu_write_file(path, old2, strlen(old2)), 0);
	ck_assert_msg(report_rebuild(tmp, NULL, NULL, &err) == VB_OK, "%s",
		      err.msg);
	expect_cell(tmp, "results.csv", 0, "eval_losses", "");
	expect_cell(tmp, "results.csv", 1, "eval_losses", "95;91");
	expect_cell(tmp, "results.csv", 2, "eval_losses", "");
	/* a setting an old row predates reads as its default, so it is not
	 * a spurious axis */
	expect_cell(tmp, "results.csv", 0, "train.precision", "native");
	expect_cell(tmp, "results.csv", 1, "train.precision", "bf16");
	expect_cell(tmp, "results.csv", 2, "train.precision", "native");
	expect_cell(tmp, "mitigations.csv", 0, "cells", "1");
	expect_cell(tmp, "mitigations.csv", 0, "compare_epoch", "2");
	expect_cell(tmp, "mitigations.csv", 0, "seconds_per_epoch", "1");
}
END_TEST

/* ---- precision: f64 cells through vaebench-f64 ---- */

/* The vaebench binary: $VB_BIN (ctest sets it), else next to this test's
 * folder (build/tests/test_sweep -> build/vaebench). */
static const char *vaebench_bin(void)
{
	static char path[4096];
	const char *env = getenv("VB_BIN");
	char self[4000];
	ssize_t n;
	if (env && *env)
		return env;
	n = readlink("/proc/self/exe", self, sizeof self - 1);
	ck_assert_int_gt(n, 0);
	self[n] = '\0';
	*strrchr(self, '/') = '\0';
	snprintf(path, sizeof path, "%s/../vaebench", self);
	return path;
}

/* Runs argv (argv[0] the program), stdout to /dev/null; exit status. */
static int run_prog(char *const argv[])
{
	int ws;
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (!freopen("/dev/null", "w", stdout))
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

START_TEST(test_precision_cells)
{
	const char *tmp = tu_tmpdir("precision");
	const char *bin = vaebench_bin();
	char out[1100], f64bin[4200], path[1300], *a, *b, *meta;
	const char *ini = write_sweep(tmp, "[sweep]\n"
					   "train.precision = native, f64, "
					   "bf16\n");
	char *argv[] = {(char *)bin, "sweep", (char *)ini, "--out", out,
			"--jobs", "2", "-q", NULL};
	snprintf(out, sizeof out, "%s/out", tmp);
	snprintf(f64bin, sizeof f64bin, "%s-f64", bin);
	ck_assert_msg(access(bin, X_OK) == 0, "no %s", bin);
	ck_assert_msg(access(f64bin, X_OK) == 0, "no %s", f64bin);
	ck_assert_int_eq(run_prog(argv), 0);
	a = result_cell(out, "results.csv", 0, "train.precision");
	ck_assert_str_eq(a, "native");
	free(a);
	a = result_cell(out, "results.csv", 1, "train.precision");
	ck_assert_str_eq(a, "f64"); /* recorded as set */
	free(a);
	/* a bf16 cell in the same grid: the f64 binary loads the whole
	 * plan to run its cell, so it must accept cells it hands back */
	a = result_cell(out, "results.csv", 2, "train.precision");
	ck_assert_str_eq(a, "bf16");
	free(a);
	a = result_cell(out, "results.csv", 2, "status");
	ck_assert_str_eq(a, "ok");
	free(a);
	a = result_cell(out, "results.csv", 0, "status");
	b = result_cell(out, "results.csv", 1, "status");
	ck_assert_str_eq(a, "ok");
	ck_assert_str_eq(b, "ok");
	free(a);
	free(b);
	/* float and double arithmetic: close, but not the same 9 digits */
	a = result_cell(out, "results.csv", 0, "final_eval_loss");
	b = result_cell(out, "results.csv", 1, "final_eval_loss");
	ck_assert_str_ne(a, b);
	/* rtol 1e-3: two epochs of float rounding stay far inside it */
	ck_assert_msg(fabs(strtod(a, NULL) - strtod(b, NULL)) <=
			      1e-3 * fabs(strtod(a, NULL)),
		      "%s vs %s", a, b);
	free(a);
	free(b);
	/* the double binary wrote the f64 cell's run folder */
	a = result_cell(out, "results.csv", 1, "id");
	snprintf(path, sizeof path, "%s/runs/%s/meta.json", out, a);
	free(a);
	meta = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(meta);
	ck_assert_msg(strstr(meta, "\"precision\": \"f64\"") != NULL, "%s",
		      meta);
	free(meta);
	/* the float one the float run's */
	a = result_cell(out, "results.csv", 0, "id");
	snprintf(path, sizeof path, "%s/runs/%s/meta.json", out, a);
	free(a);
	meta = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(meta);
	ck_assert(strstr(meta, "\"precision\": \"f32\"") != NULL);
	free(meta);
	/* vaebench train with f64 runs in vaebench-f64 as well */
	{
		char set_out[1200], base[1200];
		char *targv[] = {(char *)bin, "train", "--config",
				 base, "--set", "train.precision=f64",
				 "--set", set_out, "--name", "t64", "-q",
				 NULL};
		snprintf(set_out, sizeof set_out, "run.out_dir=%s", tmp);
		snprintf(base, sizeof base, "%s/base.ini", tmp);
		ck_assert_int_eq(tu_write_file(base, BASE, strlen(BASE)), 0);
		ck_assert_int_eq(run_prog(targv), 0);
		snprintf(path, sizeof path, "%s/t64/meta.json", tmp);
		meta = tu_read_file(path, NULL);
		ck_assert_ptr_nonnull(meta);
		ck_assert(strstr(meta, "\"precision\": \"f64\"") != NULL);
		free(meta);
	}
}
END_TEST

/* In-process, the test binary has no vaebench-f64 next to it: the sweep
 * is refused before any cell runs; --cell is parsed and bounded. */
START_TEST(test_precision_missing_sibling)
{
	const char *tmp = tu_tmpdir("nosibling");
	const char *ini = write_sweep(tmp, "[sweep]\n"
					   "train.precision = native, f64\n");
	char out[1100], *argv[8];
	struct sweep_plan *p = NULL;
	struct sweep_options o;
	struct vb_error err = {0};
	const char *config;
	snprintf(out, sizeof out, "%s/out", tmp);
	ck_assert(sweep_plan_load(ini, &p, &err) == VB_OK);
	memset(&o, 0, sizeof o);
	o.out_dir = out;
	o.jobs = 1;
	o.shard_k = o.shard_n = 1;
	ck_assert(sweep_run(p, &o, NULL, &err) == VB_ERR_CONFIG);
	ck_assert_msg(strstr(err.msg, "train.precision = f64 needs ") &&
			      strstr(err.msg, "/vaebench-f64"),
		      "%s", err.msg);
	ck_assert_uint_eq(count_rows(out), 0);
	/* --cell runs one cell, and in this (float) binary only a native one */
	o.one_cell = true;
	o.cell = 1;
	memset(&err, 0, sizeof err);
	ck_assert(sweep_run(p, &o, NULL, &err) == VB_ERR_CONFIG);
	ck_assert_msg(strstr(err.msg, "cell 1 has train.precision = f64"),
		      "%s", err.msg);
	o.cell = 2;
	memset(&err, 0, sizeof err);
	ck_assert(sweep_run(p, &o, NULL, &err) == VB_ERR_USAGE);
	ck_assert_msg(strstr(err.msg, "--cell 2: the grid has 2 cells"), "%s",
		      err.msg);
	o.cell = 0;
	memset(&err, 0, sizeof err);
	ck_assert_msg(sweep_run(p, &o, NULL, &err) == VB_OK, "%s", err.msg);
	ck_assert_uint_eq(count_rows(out), 1);
	sweep_plan_free(p);
	argv[0] = (char *)ini;
	argv[1] = "--out";
	argv[2] = out;
	argv[3] = "--cell";
	argv[4] = "7";
	ck_assert(cli_sweep_args(5, argv, NULL, &o, &config, &err) ==
		  VB_OK);
	ck_assert(o.one_cell);
	ck_assert_uint_eq(o.cell, 7);
	argv[4] = "-1";
	ck_assert(cli_sweep_args(5, argv, NULL, &o, &config, &err) ==
		  VB_ERR_USAGE);
	ck_assert(sweep_precision_here(CONFIG_PRECISION_NATIVE));
	ck_assert(sweep_precision_here(CONFIG_PRECISION_F32));
	ck_assert(!sweep_precision_here(CONFIG_PRECISION_F64));
}
END_TEST

START_TEST(test_shard_parse)
{
	int k, n;
	ck_assert(sweep_plan_parse_shard("2/5", &k, &n, NULL) == VB_OK);
	ck_assert_int_eq(k, 2);
	ck_assert_int_eq(n, 5);
	ck_assert(sweep_plan_parse_shard("0/5", &k, &n, NULL) == VB_ERR_USAGE);
	ck_assert(sweep_plan_parse_shard("6/5", &k, &n, NULL) == VB_ERR_USAGE);
	ck_assert(sweep_plan_parse_shard("1-5", &k, &n, NULL) == VB_ERR_USAGE);
	ck_assert(sweep_plan_parse_shard("1/", &k, &n, NULL) == VB_ERR_USAGE);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sweep");
	tu_tcase(s, "unit", 0, TU_TESTS(test_grid_expansion, test_cell_ids,
		test_malformed_refused, test_shard_parse,
		test_mitigations_parse, test_mitigations_malformed,
		test_inert_refused, test_old_rows_load,
		test_table_unterminated_quote, test_figures_mitigation_axes,
		test_figures_legend_panels, test_order_seeds_first,
		test_figures_without_curves));
	tu_tcase(s, "run", 240, TU_TESTS(test_jobs_identical, test_shards_merge,
		test_sigkill_resume, test_report_files, test_report_fake_axis,
		test_mitigation_table, test_precision_cells,
		test_precision_missing_sibling));
	return tu_run(s);
}
