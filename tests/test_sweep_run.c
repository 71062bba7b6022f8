/* test_sweep_run: the sweep scheduler end to end on synthetic data:
 * --jobs 1 and 2 give the same results.csv (wall-clock columns aside),
 * shards merged equal the whole sweep, a sweep killed with SIGKILL and
 * started again ends with the same rows, a restart runs only missing
 * cells, the mitigation table, and f64 cells run by vaebench-f64 from a
 * sweep of the float binary. */
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
#include "sweeputil.h"
#include "testutil.h"

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
	ini = su_write_sweep(tmp, su_grid);
	su_run_sweep(ini, d1, 1, 1, 1, &s1);
	su_run_sweep(ini, d2, 2, 1, 1, &s2);
	ck_assert_uint_eq(s1.n_run, 8);
	ck_assert_uint_eq(s2.n_run, 8);
	ck_assert_uint_eq(s1.n_lost + s2.n_lost, 0);
	a = su_stable_results(d1);
	b = su_stable_results(d2);
	ck_assert_str_eq(a, b);
	/* both kinds of cell are there: 4 finite, 4 NaN/Inf */
	ck_assert_uint_eq(count_status(d1, "ok"), 4);
	ck_assert_uint_eq(s1.n_nonfinite, 4);
	ck_assert_uint_eq(count_status(d1, "nan") + count_status(d1, "inf"),
			  4);
	/* a rerun finds everything done; removing one row reruns that one */
	su_run_sweep(ini, d1, 2, 1, 1, &s1);
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
	su_run_sweep(ini, d1, 2, 1, 1, &s1);
	ck_assert_uint_eq(s1.n_done, 7);
	ck_assert_uint_eq(s1.n_run, 1);
	free(a);
	a = su_stable_results(d1);
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
	ini = su_write_sweep(tmp, su_grid);
	su_run_sweep(ini, whole, 2, 1, 1, &st);
	su_run_sweep(ini, s1, 1, 1, 3, &st);
	total += st.n_run;
	ck_assert_uint_eq(st.n_shard, 3); /* cells 0, 3, 6 */
	su_run_sweep(ini, s2, 1, 2, 3, &st);
	total += st.n_run;
	su_run_sweep(ini, s3, 1, 3, 3, &st);
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
	a = su_stable_results(whole);
	b = su_stable_results(merged);
	ck_assert_str_eq(a, b);
	free(b);
	/* merging twice (a shard given twice) doubles nothing */
	dirs[0] = merged;
	dirs[1] = s1;
	snprintf(merged2, sizeof merged2, "%s/merged2", tmp);
	ck_assert_msg(report_merge(merged2, dirs, 2, &err) == VB_OK, "%s",
		      err.msg);
	b = su_stable_results(merged2);
	ck_assert_str_eq(a, b);
	free(a);
	free(b);
}
END_TEST

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
	ini = su_write_sweep(tmp, SLOW_GRID);
	snprintf(ref, sizeof ref, "%s/ref", tmp);
	su_run_sweep(ini, ref, 1, 1, 1, &st);
	snprintf(killed, sizeof killed, "%s/killed", tmp);
	ck_assert_uint_eq(st.n_run, 12);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct sweep_plan *p = NULL;
		struct sweep_options o;
		su_options(&o, killed, 2);
		if (sweep_plan_load(ini, &p, NULL) == VB_OK)
			sweep_run(p, &o, NULL, NULL);
		_exit(0);
	}
	for (int i = 0; i < 20000; i++) {
		struct timespec ts = {0, 1000000};
		at_kill = su_count_rows(killed);
		if (at_kill >= 3)
			break;
		nanosleep(&ts, NULL);
	}
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
	ck_assert(WIFSIGNALED(ws));
	at_kill = su_count_rows(killed);
	ck_assert_msg(at_kill >= 3 && at_kill < 12,
		      "kill landed outside the sweep (%zu rows)", at_kill);
	/* its workers die with it (no row appears later) */
	{
		struct timespec ts = {0, 300000000};
		nanosleep(&ts, NULL);
	}
	ck_assert_uint_eq(su_count_rows(killed), at_kill);
	su_run_sweep(ini, killed, 2, 1, 1, &st);
	ck_assert_uint_eq(st.n_done, at_kill);
	ck_assert_uint_eq(st.n_run, 12 - at_kill);
	a = su_stable_results(ref);
	b = su_stable_results(killed);
	ck_assert_str_eq(a, b);
	free(a);
	free(b);
}
END_TEST

/* mitigations.csv without its time columns (the last four). */
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
			if (q[-1] == ',' && ++commas == 4) {
				cut = q - 1;
				break;
			}
		ck_assert_int_eq(commas, 4);
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
	ini = su_write_sweep(tmp, su_mitig);
	su_run_sweep(ini, d1, 1, 1, 1, &st);
	ck_assert_uint_eq(st.n_run, 6);
	su_run_sweep(ini, d2, 2, 1, 1, &st);
	/* rows: the mitigation's name and one eval loss per epoch */
	table_init(&t);
	snprintf(path, sizeof path, "%s/results.csv", d1);
	ck_assert(table_read(path, &t, NULL) == VB_OK);
	ck_assert_uint_eq(t.n_rows, 6);
	ck_assert_str_eq(table_get(&t, 0, "mitigation"), "baseline");
	ck_assert_str_eq(table_get(&t, 2, "mitigation"), "hot");
	ck_assert_str_eq(table_get(&t, 5, "mitigation"), "clip");
	double nllb[2], sseb[2];
	for (size_t r = 0; r < 2; r++) {
		/* the baseline's best-epoch held-out values, for the table */
		nllb[r] = strtod(table_get(&t, r, "nll_best"), NULL);
		sseb[r] = strtod(table_get(&t, r, "sse_best"), NULL);
	}
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
	/* mitigations.csv: E = 2 (every baseline run finished 2 epochs);
	 * learned (stats.h): computable for every run; the runs that hit
	 * NaN in epoch 1 (no finite evaluated epoch) did not learn */
	static const struct su_cell mcells[] = {
		{0, "mitigation", "baseline"}, {0, "compare_epoch", "2"},
		{1, "nan_runs", "2"}, {1, "eval_runs_at_epoch", "0"},
		{0, "time_vs_baseline", "1"}, {0, "learned_known", "2"},
		{1, "learned", "0"}, {1, "learned_known", "2"},
		{0, "nll_runs", "2"}, {0, "nan_share_low", "0"},
		{1, "nan_share_high", "1"}};
	SU_EXPECT_CELLS(d1, "mitigations.csv", mcells);
	/* the 95 % Wilson interval of 0/2 and 2/2 (z = 1.96) */
	su_expect_close(d1, "mitigations.csv", 0, "nan_share_high",
			0.657620, 1e-6);
	su_expect_close(d1, "mitigations.csv", 1, "nan_share_low", 0.342380,
			1e-6);
	/* the best epoch's NLL and SSE: median (of two: their mean),
	 * min and max over the baseline's runs */
	ck_assert(isfinite(nllb[0]) && isfinite(nllb[1]) && nllb[0] != nllb[1]);
	su_expect_close(d1, "mitigations.csv", 0, "nll_best_median",
			(nllb[0] + nllb[1]) / 2, 1e-6);
	su_expect_close(d1, "mitigations.csv", 0, "nll_best_min",
			fmin(nllb[0], nllb[1]), 1e-6);
	su_expect_close(d1, "mitigations.csv", 0, "sse_best_max",
			fmax(sseb[0], sseb[1]), 1e-6);
	/* 9 printed digits */
	su_expect_close(d1, "mitigations.csv", 0, "eval_loss_at_epoch", mean,
			1e-6);
	for (size_t r = 2; r < 4; r++)
		su_expect_cell(d1, "results.csv", r, "learned", "false");
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
	ck_assert_msg(strstr(md, "| NLL best | NLL last | SSE best | SSE last |")
			      != NULL, "%s", md);
	ck_assert_msg(strstr(md, "| baseline | 2 | 0/2 (0.00–0.66) | - |") != NULL, "%s",
		      md);
	ck_assert_msg(strstr(md, "| hot | 2 | 2/2 (0.34–1.00) |") != NULL, "%s", md);
	ck_assert_msg(strstr(md, "\"Learned\": a run learned iff") != NULL,
		      "%s", md);
	ck_assert_msg(strstr(md, "the median best-epoch NLL of the "
				 "baseline's runs") != NULL, "%s", md);
	ck_assert_msg(strstr(md, "- `clip`: `optim.clip = norm`, "
				 "`optim.clip_max = 5`") != NULL, "%s", md);
	free(md);
	snprintf(path, sizeof path, "%s/mitigations.png", d1);
	ck_assert(su_has_png(path));
	/* train.eval_every = 2 over 2 epochs: epoch 1 has no evaluation
	 * (an empty eval_losses entry) and E is the evaluated epoch 2 */
	{
		char d4[1100];
		double fin;
		snprintf(d4, sizeof d4, "%s/every", tmp);
		ini = su_write_sweep(tmp, "[mitigations]\nbaseline =\n"
				       "hot = optim.lr=1e3\n[sweep]\n"
				       "train.seed = 1\ntrain.eval_every = 2\n");
		su_run_sweep(ini, d4, 1, 1, 1, &st);
		a = su_result_cell(d4, "results.csv", 0, "eval_losses");
		ck_assert_msg(a[0] == ';' && !strchr(a + 1, ';'), "%s", a);
		fin = strtod(a + 1, NULL);
		free(a);
		su_expect_cell(d4, "mitigations.csv", 0, "compare_epoch", "2");
		su_expect_close(d4, "mitigations.csv", 0, "eval_loss_at_epoch",
				fin, 1e-6);
	}
	/* a plain sweep has an empty mitigation column and no table */
	{
		char d3[1100];
		snprintf(d3, sizeof d3, "%s/plain", tmp);
		ini = su_write_sweep(tmp, "[sweep]\ntrain.seed = 1\n");
		su_run_sweep(ini, d3, 1, 1, 1, &st);
		su_expect_cell(d3, "results.csv", 0, "mitigation", "");
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

/* Asserts that meta.json of row r's run in sweep folder out holds
 * needle. */
static void run_meta_has(const char *out, size_t r, const char *needle)
{
	char path[1300], *id = su_result_cell(out, "results.csv", r, "id");
	snprintf(path, sizeof path, "%s/runs/%s/meta.json", out, id);
	free(id);
	char *meta = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(meta);
	ck_assert_msg(strstr(meta, needle) != NULL, "%s", meta);
	free(meta);
}

START_TEST(test_precision_cells)
{
	const char *tmp = tu_tmpdir("precision");
	const char *bin = vaebench_bin();
	char out[1100], f64bin[4200], path[1300], *a, *b, *meta;
	const char *ini = su_write_sweep(tmp, "[sweep]\n"
					   "train.precision = native, f64, "
					   "bf16\n");
	char *argv[] = {(char *)bin, "sweep", (char *)ini, "--out", out,
			"--jobs", "2", "-q", NULL};
	snprintf(out, sizeof out, "%s/out", tmp);
	snprintf(f64bin, sizeof f64bin, "%s-f64", bin);
	ck_assert_msg(access(bin, X_OK) == 0, "no %s", bin);
	ck_assert_msg(access(f64bin, X_OK) == 0, "no %s", f64bin);
	ck_assert_int_eq(run_prog(argv), 0);
	/* f64 recorded as set; a bf16 cell in the same grid: the f64 binary
	 * loads the whole plan to run its cell, so it must accept cells it
	 * hands back */
	static const struct su_cell pcells[] = {
		{0, "train.precision", "native"}, {1, "train.precision", "f64"},
		{2, "train.precision", "bf16"}, {0, "status", "ok"},
		{1, "status", "ok"}, {2, "status", "ok"}};
	SU_EXPECT_CELLS(out, "results.csv", pcells);
	/* float and double arithmetic: close, but not the same 9 digits */
	a = su_result_cell(out, "results.csv", 0, "final_eval_loss");
	b = su_result_cell(out, "results.csv", 1, "final_eval_loss");
	ck_assert_str_ne(a, b);
	/* rtol 1e-3: two epochs of float rounding stay far inside it */
	ck_assert_msg(fabs(strtod(a, NULL) - strtod(b, NULL)) <=
			      1e-3 * fabs(strtod(a, NULL)),
		      "%s vs %s", a, b);
	free(a);
	free(b);
	/* the double binary wrote the f64 cell's run folder, the float one
	 * the float run's */
	run_meta_has(out, 1, "\"precision\": \"f64\"");
	run_meta_has(out, 0, "\"precision\": \"f32\"");
	/* vaebench train with f64 runs in vaebench-f64 as well */
	{
		char set_out[1200], base[1200];
		char *targv[] = {(char *)bin, "train", "--config",
				 base, "--set", "train.precision=f64",
				 "--set", set_out, "--name", "t64", "-q",
				 NULL};
		snprintf(set_out, sizeof set_out, "run.out_dir=%s", tmp);
		snprintf(base, sizeof base, "%s/base.ini", tmp);
		ck_assert_int_eq(tu_write_file(base, su_base, strlen(su_base)), 0);
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
	const char *ini = su_write_sweep(tmp, "[sweep]\n"
					   "train.precision = native, f64\n");
	char out[1100], *argv[8];
	struct sweep_plan *p = NULL;
	struct sweep_options o;
	struct vb_error err = {0};
	const char *config;
	snprintf(out, sizeof out, "%s/out", tmp);
	ck_assert(sweep_plan_load(ini, &p, &err) == VB_OK);
	su_options(&o, out, 1);
	ck_assert(sweep_run(p, &o, NULL, &err) == VB_ERR_CONFIG);
	ck_assert_msg(strstr(err.msg, "train.precision = f64 needs ") &&
			      strstr(err.msg, "/vaebench-f64"),
		      "%s", err.msg);
	ck_assert_uint_eq(su_count_rows(out), 0);
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
	ck_assert_uint_eq(su_count_rows(out), 1);
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

TU_MAIN("sweep_run", "run", 240, test_jobs_identical, test_shards_merge,
	test_sigkill_resume, test_mitigation_table, test_precision_cells,
	test_precision_missing_sibling)
