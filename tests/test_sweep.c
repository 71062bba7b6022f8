/* test_sweep: [sweep] grid expansion and its errors, stable cell ids, and
 * the scheduler end to end on synthetic data: --jobs 1 and 2 give the same
 * results.csv (wall-clock columns aside), shards merged equal the whole
 * sweep, a sweep killed with SIGKILL and started again ends with the same
 * rows, a restart runs only missing cells, and the report's files. */
#include <check.h>
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
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
	char id[SWEEP_ID_LEN], buf[CONFIG_VALUE_LEN];
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
	ck_assert_int_eq(c.model.recon, CONFIG_RECON_BCE);
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
	char id[SWEEP_ID_LEN], id2[SWEEP_ID_LEN];
	char ids[8][SWEEP_ID_LEN];
	struct vb_error err = {0};
	char expect[SWEEP_ID_LEN];
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
	sweep_cell_id(&d, id2);
	ck_assert_str_eq(id, id2);
	/* the defaults hash to FNV-1a's offset basis, one setting to the
	 * hash of its line */
	config_defaults(&d);
	sweep_cell_id(&d, id2);
	ck_assert_str_eq(id2, "cbf29ce484222325");
	ck_assert(config_set(&d, "optim.lr=0.5", &err) == VB_OK);
	sweep_cell_id(&d, id2);
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
	dirs[0] = s3; /* order must not matter */
	dirs[1] = s1;
	dirs[2] = s2;
	ck_assert_msg(table_merge(merged, dirs, 3, &err) == VB_OK, "%s",
		      err.msg);
	a = stable_results(whole);
	b = stable_results(merged);
	ck_assert_str_eq(a, b);
	free(b);
	/* merging twice (a shard given twice) doubles nothing */
	dirs[0] = merged;
	dirs[1] = s1;
	snprintf(merged2, sizeof merged2, "%s/merged2", tmp);
	ck_assert_msg(table_merge(merged2, dirs, 2, &err) == VB_OK, "%s",
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
	ck_assert_msg(table_report(out, "train.batch", "train.seed", &err) ==
			      VB_OK, "%s", err.msg);
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/%s", out, pngs[i]);
		ck_assert_msg(has_png_magic(path), "%s", path);
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

START_TEST(test_shard_parse)
{
	int k, n;
	ck_assert(sweep_parse_shard("2/5", &k, &n, NULL) == VB_OK);
	ck_assert_int_eq(k, 2);
	ck_assert_int_eq(n, 5);
	ck_assert(sweep_parse_shard("0/5", &k, &n, NULL) == VB_ERR_USAGE);
	ck_assert(sweep_parse_shard("6/5", &k, &n, NULL) == VB_ERR_USAGE);
	ck_assert(sweep_parse_shard("1-5", &k, &n, NULL) == VB_ERR_USAGE);
	ck_assert(sweep_parse_shard("1/", &k, &n, NULL) == VB_ERR_USAGE);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sweep");
	TCase *unit = tcase_create("unit");
	TCase *run = tcase_create("run");
	SRunner *sr;
	int failed;
	tcase_add_test(unit, test_grid_expansion);
	tcase_add_test(unit, test_cell_ids);
	tcase_add_test(unit, test_malformed_refused);
	tcase_add_test(unit, test_shard_parse);
	tcase_add_test(run, test_jobs_identical);
	tcase_add_test(run, test_shards_merge);
	tcase_add_test(run, test_sigkill_resume);
	tcase_add_test(run, test_report_files);
	tcase_set_timeout(run, 240);
	suite_add_tcase(s, unit);
	suite_add_tcase(s, run);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
