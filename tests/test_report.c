/* test_report: a sweep folder's report: summary.md, machine.json, the
 * copies of curves and precursors, figures (which axes, panels, legends,
 * curves from results.csv alone), report rebuilt from rows and results,
 * rows older than a column or setting, and bad CSV records. */
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
#include "stats.h"
#include "sweep.h"
#include "table.h"
#include "sweeputil.h"
#include "testutil.h"

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
	ck_assert(su_has_png(path));
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
	ini = su_write_sweep(tmp, "[sweep]\ntrain.seed = 1..2\n");
	su_run_sweep(ini, out, 1, 1, 1, &st);
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
	ini = su_write_sweep(tmp, su_grid);
	su_run_sweep(ini, out, 2, 1, 1, &st);
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
		ck_assert_msg(su_has_png(path), "%s", path);
		ck_assert_int_eq(remove(path), 0);
	}
	/* report rebuilds them */
	ck_assert_msg(report_rebuild(out, "train.batch", "train.seed", &err) ==
			      VB_OK, "%s", err.msg);
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/%s", out, pngs[i]);
		ck_assert_msg(su_has_png(path), "%s", path);
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
		const char *other = su_write_sweep(tmp, "[sweep]\ntrain.seed = 7\n");
		ck_assert(sweep_plan_load(other, &p, &err) == VB_OK);
		su_options(&o, out, 1);
		ck_assert(sweep_run(p, &o, NULL, &err) == VB_ERR_USAGE);
		ck_assert(strstr(err.msg, "different sweep") != NULL);
		sweep_plan_free(p);
	}
}
END_TEST

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

/* Rows written before eval_losses, mitigation and a setting existed still
 * load: the table leaves the results blank and gives the setting its
 * default. */
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
	su_expect_cell(tmp, "results.csv", 0, "eval_losses", "");
	su_expect_cell(tmp, "results.csv", 1, "eval_losses", "95;91");
	su_expect_cell(tmp, "results.csv", 2, "eval_losses", "");
	/* a setting an old row predates reads as its default, so it is not
	 * a spurious axis */
	su_expect_cell(tmp, "results.csv", 0, "train.precision", "native");
	su_expect_cell(tmp, "results.csv", 1, "train.precision", "bf16");
	su_expect_cell(tmp, "results.csv", 2, "train.precision", "native");
	su_expect_cell(tmp, "mitigations.csv", 0, "cells", "1");
	su_expect_cell(tmp, "mitigations.csv", 0, "compare_epoch", "2");
	su_expect_cell(tmp, "mitigations.csv", 0, "seconds_per_epoch", "1");
}
END_TEST

/* The table of results.csv text csv (written to a scratch folder and
 * read back, as report reads it) with stats_fill_learned applied. */
static void learned_table(const char *tag, const char *csv, size_t len,
			  struct table *t)
{
	const char *tmp = tu_tmpdir(tag);
	char path[1200];
	struct vb_error err = {0};
	snprintf(path, sizeof path, "%s/results.csv", tmp);
	ck_assert_int_eq(tu_write_file(path, csv, len), 0);
	table_init(t);
	ck_assert(table_read(path, t, &err) == VB_OK);
	ck_assert_msg(stats_fill_learned(t, &err) == VB_OK, "%s", err.msg);
}

/* Issue 15 item 2, rule (b) of "learned" on the per-epoch SSE list: the
 * early epochs before a run first comes within 2x of its best SSE do not
 * count (the old rule, every epoch against the best, failed runs that
 * were learning fine); a rise after it learned, or a NaN epoch, does.
 * Rows without eval_sses keep the old rule. */
START_TEST(test_learned_sse_rule)
{
	static const struct {
		const char *sses, *sse_best, *sse_max, *want;
	} rows[] = {
		{"300;100;60;55", "55", "300", "true"},   /* early epochs */
		{"300;;60;;55", "55", "300", "true"},     /* eval_every 2 */
		{"300;60;55;200", "55", "300", "false"},  /* rise after */
		{"300;60;nan;55", "55", "300", "false"},  /* NaN after */
		{"nan;300;60;55", "55", "300", "true"},   /* NaN before */
		{"", "55", "300", "false"},               /* old rule */
		{"", "55", "100", "true"},                /* old rule */
	};
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	struct table t;
	fputs("id,status,last_finite_epoch,nll_best,nll_last,sse_best,"
	      "sse_max,eval_sses\n", f);
	for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
		fprintf(f, "r%zu,ok,4,100,101,%s,%s,%s\n", i, rows[i].sse_best,
			rows[i].sse_max, rows[i].sses);
	fclose(f);
	learned_table("learned", text, len, &t);
	free(text);
	for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
		ck_assert_msg(!strcmp(table_get(&t, i, "learned"), rows[i].want),
			      "row %zu (%s): learned %s, want %s", i,
			      rows[i].sses, table_get(&t, i, "learned"),
			      rows[i].want);
	table_free(&t);
}
END_TEST

/* Rule (a) of "learned" against a baseline: the NLL at the last finite
 * epoch within max(5 nats, 2 % of |ref|) of the baseline's median best
 * NLL (here 730: 14.6 nats). A run 30 nats worse (the proxy's lr 1e-6)
 * did not learn; 10 worse did; a run with no baseline in its table is
 * held to its own best. */
START_TEST(test_learned_nll_margin)
{
	static const struct {
		const char *mit, *best, *last, *want;
	} rows[] = {
		{"baseline", "729", "731", "true"},
		{"baseline", "731", "733", "true"},
		{"slow", "759", "760", "false"},  /* 30 above ref 730 */
		{"ok", "738", "740", "true"},     /* 10 above */
		{"edge", "744", "744.7", "false"}, /* 14.7 above */
	};
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	struct table t;
	fputs("id,mitigation,status,last_finite_epoch,nll_best,nll_last,"
	      "sse_best,sse_max,eval_sses\n", f);
	for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
		fprintf(f, "r%zu,%s,ok,4,%s,%s,50,60,60;55;50\n", i,
			rows[i].mit, rows[i].best, rows[i].last);
	fclose(f);
	learned_table("learned-nll", text, len, &t);
	free(text);
	for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
		ck_assert_msg(!strcmp(table_get(&t, i, "learned"), rows[i].want),
			      "row %zu (%s, nll_last %s): learned %s, want %s",
			      i, rows[i].mit, rows[i].last,
			      table_get(&t, i, "learned"), rows[i].want);
	table_free(&t);
}
END_TEST

/* The consistent NLL scale (stats_row_nll): an RHVAE row run with
 * pythae's get_nll gets -d log b (b = 0.3: 19.26 nats at d = 16; the
 * real square root of 0.3 without the quirk), a row run with the
 * consistent estimator and a VAE row stay, an HVAE row with pythae's
 * formula has no value. The learned rule compares on that scale, so a
 * VAE control 29 nats above the RHVAE's raw reference learned (10 above
 * on the consistent one) and the pythae-formula HVAE is not computable. */
START_TEST(test_nll_consistent_scale)
{
	static const struct {
		const char *mit, *kind, *est, *sq, *best, *last, *want;
	} rows[] = {
		{"baseline", "rhvae", "pythae", "true", "730", "731", "true"},
		{"baseline", "rhvae", "", "true", "732", "733", "true"},
		{"vae", "vae", "", "true", "760", "760", "true"},
		{"hvae-pythae", "hvae", "pythae", "true", "22.4", "22.5", ""},
		{"hvae", "hvae", "consistent", "true", "770", "770", "false"},
		{"real-sqrt", "rhvae", "pythae", "false", "730", "731", "true"},
		{"rhvae-c", "rhvae", "consistent", "true", "750", "751", "true"},
	};
	const double shift = -16 * log(0.3);
	const double want_last[] = {731 + shift, 733 + shift, 760, NAN, 770,
				    731 - 16 * log(sqrt(0.3)), 751};
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	struct table t;
	fputs("id,mitigation,model.kind,model.latent,rhvae.beta_zero,"
	      "rhvae.beta_zero_as_sqrt,eval.nll_estimator,status,"
	      "last_finite_epoch,nll_best,nll_last,sse_best,sse_max,"
	      "eval_sses\n", f);
	for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
		fprintf(f, "r%zu,%s,%s,16,0.3,%s,%s,ok,4,%s,%s,50,60,"
			"60;55;50\n", i, rows[i].mit, rows[i].kind, rows[i].sq,
			rows[i].est, rows[i].best, rows[i].last);
	fclose(f);
	learned_table("learned-scale", text, len, &t);
	free(text);
	for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
		double v;
		bool ok = stats_row_nll(&t, i, "nll_last", &v);
		ck_assert_msg(ok == !isnan(want_last[i]), "row %zu", i);
		if (ok)
			ck_assert_double_eq_tol(v, want_last[i], 1e-9);
		ck_assert_msg(!strcmp(table_get(&t, i, "learned"), rows[i].want),
			      "row %zu (%s): learned '%s', want '%s'", i,
			      rows[i].mit, table_get(&t, i, "learned"),
			      rows[i].want);
	}
	/* the reference is the baseline's median best on that scale */
	ck_assert_double_eq_tol(stats_learned_reference(&t), 731 + shift,
				1e-9);
	table_free(&t);
}
END_TEST

/* Rule (a)'s reference per condition: with a swept axis (here
 * nets.activation, two values) a run is held to the baseline's runs with
 * its own value of it, not to the median over all of them; seeds are
 * not conditions. */
START_TEST(test_learned_reference_per_axis)
{
	static const struct {
		const char *mit, *act, *seed, *best, *last, *want;
	} rows[] = {
		{"base", "relu", "1", "140", "141", "true"},
		{"base", "relu", "2", "142", "142", "true"},
		{"base", "sigmoid", "1", "170", "171", "true"},  /* 29 above 141 */
		{"base", "sigmoid", "2", "170", "170", "true"},
		{"other", "sigmoid", "1", "174", "174", "true"}, /* 4 above 170 */
		{"other", "relu", "1", "150", "150", "false"},   /* 9 above 141 */
	};
	char *text = NULL;
	const char *cond[4];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	struct table t;
	fputs("id,mitigation,nets.activation,train.seed,status,"
	      "last_finite_epoch,nll_best,nll_last,sse_best,sse_max,"
	      "eval_sses\n", f);
	for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
		fprintf(f, "r%zu,%s,%s,%s,ok,4,%s,%s,50,60,60;55;50\n", i,
			rows[i].mit, rows[i].act, rows[i].seed, rows[i].best,
			rows[i].last);
	fclose(f);
	learned_table("learned-axis", text, len, &t);
	free(text);
	ck_assert_uint_eq(stats_learned_conditions(&t, cond, 4), 1);
	ck_assert_str_eq(cond[0], "nets.activation");
	for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
		ck_assert_msg(!strcmp(table_get(&t, i, "learned"), rows[i].want),
			      "row %zu (%s %s, nll_last %s): learned %s, want "
			      "%s", i, rows[i].mit, rows[i].act, rows[i].last,
			      table_get(&t, i, "learned"), rows[i].want);
	/* the per-row reference the mitigation figure's NLL panel subtracts:
	 * the baseline's median under the row's activation, 141 for relu
	 * (140, 142), 170 for sigmoid; the overall median is 156 */
	ck_assert_double_eq_tol(stats_learned_reference(&t), 156, 1e-12);
	ck_assert_double_eq_tol(stats_learned_reference_row(&t, 4), 170, 1e-12);
	ck_assert_double_eq_tol(stats_learned_reference_row(&t, 5), 141, 1e-12);
	/* no `baseline` here: the rule names the mitigation that stands in */
	f = open_memstream(&text, &len);
	stats_learned_rule(f, &t);
	fclose(f);
	ck_assert_msg(strstr(text, "NLL of `base`'s runs (this table has no "
				   "`baseline`; its first mitigation stands "
				   "in) with the run's values of "
				   "`nets.activation`") != NULL, "%s", text);
	free(text);
	table_free(&t);
}
END_TEST

/* A continuation's table (sweep --continue-from, without a baseline of
 * its own) judged against its source's baseline (t->reference, which
 * report loads from continued_from.txt): the reference is the median of
 * the source's baseline rows, not the continuation's first mitigation's,
 * and the rule's text names the source. */
START_TEST(test_learned_reference_from_source)
{
	static const char *src_csv =
		"id,mitigation,train.seed,status,last_finite_epoch,nll_best,"
		"nll_last,sse_best,sse_max,eval_sses\n"
		"s1,baseline,1,nan,3,100,100,50,60,60;55;50\n"
		"s2,baseline,2,nan,3,110,110,50,60,60;55;50\n"
		"s3,baseline,3,ok,4,104,104,50,60,60;55;50\n"
		"s4,other,1,ok,4,90,90,50,60,60;55;50\n";
	static const char *cont_csv =
		"id,mitigation,train.seed,status,last_finite_epoch,nll_best,"
		"nll_last,sse_best,sse_max,eval_sses\n"
		"c1,other,1,ok,8,80,80,50,60,60;55;50\n"  /* its own best */
		"c2,other,2,ok,8,95,108,50,60,60;55;50\n" /* 4 above 104 */
		"c3,other,3,ok,8,95,110,50,60,60;55;50\n";/* 6 above */
	struct table src, t;
	struct vb_error err = {0};
	char *text = NULL, who[400];
	size_t len = 0;
	const char *cond[4];
	FILE *f;
	learned_table("learned-src", src_csv, strlen(src_csv), &src);
	learned_table("learned-cont", cont_csv, strlen(cont_csv), &t);
	/* without its source: the first mitigation's median best (95) */
	ck_assert_double_eq_tol(stats_learned_reference(&t), 95, 1e-12);
	ck_assert_str_eq(table_get(&t, 2, "learned"), "false"); /* 110 > 100 */
	t.reference = &src;
	t.reference_name = "../study";
	ck_assert(stats_fill_learned(&t, &err) == VB_OK);
	ck_assert_double_eq_tol(stats_learned_reference(&t), 104, 1e-12);
	ck_assert_double_eq_tol(stats_learned_reference_row(&t, 0), 104,
				1e-12);
	ck_assert_uint_eq(stats_learned_conditions(&t, cond, 4), 0);
	ck_assert_str_eq(table_get(&t, 0, "learned"), "true");
	ck_assert_str_eq(table_get(&t, 1, "learned"), "true");
	ck_assert_str_eq(table_get(&t, 2, "learned"), "false");
	stats_learned_who(&t, who, sizeof who);
	ck_assert_str_eq(who, "`baseline`'s runs in ../study (the sweep this "
			      "one continues)");
	f = open_memstream(&text, &len);
	stats_learned_rule(f, &t);
	fclose(f);
	ck_assert_msg(strstr(text, "NLL of `baseline`'s runs in ../study (the "
				   "sweep this one continues) (104 nats)") !=
			      NULL, "%s", text);
	free(text);
	table_free(&t);
	table_free(&src);
}
END_TEST

/* Issue 16 item 2: the NaN share's 95 % Wilson interval beside each
 * count, against the closed form evaluated independently (Python, double)
 * and its edges (no events, all events, no trials, k > n). */
START_TEST(test_wilson_interval)
{
	static const struct {
		size_t k, n;
		double lo, hi;
	} c[] = {
		{10, 10, 0.722467, 1.0}, {0, 10, 0.0, 0.277533},
		{9, 10, 0.595850, 0.982124}, {5, 10, 0.236593, 0.763407},
		{8, 8, 0.675592, 1.0}, {1, 2, 0.094531, 0.905469},
	};
	double lo, hi;
	for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
		stats_wilson(c[i].k, c[i].n, &lo, &hi);
		ck_assert_msg(fabs(lo - c[i].lo) < 1e-6 &&
				      fabs(hi - c[i].hi) < 1e-6,
			      "%zu/%zu: %.6f-%.6f, want %.6f-%.6f", c[i].k,
			      c[i].n, lo, hi, c[i].lo, c[i].hi);
	}
	stats_wilson(0, 0, &lo, &hi);
	ck_assert(isnan(lo) && isnan(hi));
	stats_wilson(3, 2, &lo, &hi);
	ck_assert(isnan(lo) && isnan(hi));
}
END_TEST

/* The mitigation table's time against the baseline: on CPU seconds per
 * epoch where both have them, on wall seconds where neither has, none
 * where only one has (a baseline from an older vaebench, without
 * cpu_per_epoch, against a mitigation run on a quieter machine gave
 * 0.02x on wall seconds). */
START_TEST(test_time_vs_baseline)
{
	static const char csv[] =
		"id,mitigation,status,epochs_done,seconds,cpu_per_epoch\n"
		"b1,baseline,ok,10,1000,30\n"
		"m1,slow,ok,10,200,60\n"   /* CPU 2x; wall 0.2x */
		"m2,nocpu,ok,10,3000,\n";   /* wall only */
	static const char old[] =
		"id,mitigation,status,epochs_done,seconds,cpu_per_epoch\n"
		"b1,baseline,ok,10,1000,\n"
		"m1,fast,ok,10,500,\n"
		"m2,hascpu,ok,10,50,33\n";
	const char *tmp = tu_tmpdir("timeratio");
	char path[1200];
	struct table t;
	struct stats_mit_table mt;
	struct vb_error err = {0};
	const char *text[2] = {csv, old};
	const double want[2][3] = {{1, 2, NAN}, {1, 0.5, NAN}};
	for (int k = 0; k < 2; k++) {
		snprintf(path, sizeof path, "%s/results%d.csv", tmp, k);
		ck_assert_int_eq(tu_write_file(path, text[k], strlen(text[k])),
				 0);
		table_init(&t);
		ck_assert(table_read(path, &t, &err) == VB_OK);
		ck_assert(stats_mit_collect(&t, &mt, &err) == VB_OK);
		ck_assert_uint_eq(mt.n, 3);
		for (size_t i = 0; i < 3; i++) {
			double r = stats_mit_time_ratio(&mt, &mt.m[i]);
			ck_assert_msg(isnan(want[k][i]) ? isnan(r)
						       : fabs(r - want[k][i]) < 1e-12,
				      "table %d, %s: %g, want %g", k,
				      mt.m[i].name, r, want[k][i]);
		}
		stats_mit_free(&mt);
		table_free(&t);
	}
}
END_TEST

/* A sweep folder tmp with n rows (rows[i] = {id, CSV text}) in rows/,
 * then report_rebuild on it. */
static void rebuild_from_rows(const char *tmp, const char *const (*rows)[2],
			      size_t n)
{
	char dir[1100], path[1300];
	struct vb_error err = {0};
	snprintf(dir, sizeof dir, "%s/rows", tmp);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof path, "%s/%s.csv", dir, rows[i][0]);
		ck_assert_int_eq(tu_write_file(path, rows[i][1],
					       strlen(rows[i][1])), 0);
	}
	ck_assert_msg(report_rebuild(tmp, NULL, NULL, &err) == VB_OK, "%s",
		      err.msg);
}

/* Issue 16 item 4: how often the last, partial batch was the epoch's
 * worst, per mitigation (mitigations.csv's worst_partial_epochs and
 * worst_partial_expected, summed over the runs) and in summary.md's
 * "Worst batch" line; "no partial batch" where the runs had none, "-"
 * where the rows predate the columns. */
START_TEST(test_worst_partial_by_mitigation)
{
	static const char *const rows_text[][2] = {
		{"00000000000000a1", "id,cell,mitigation,train.seed,status,"
		 "worst_partial_epochs,worst_partial_expected\n"
		 "00000000000000a1,0,baseline,1,ok,3,0.5\n"},
		{"00000000000000a2", "id,cell,mitigation,train.seed,status,"
		 "worst_partial_epochs,worst_partial_expected\n"
		 "00000000000000a2,1,baseline,2,nan,4,0.25\n"},
		{"00000000000000a3", "id,cell,mitigation,train.seed,status,"
		 "worst_partial_epochs,worst_partial_expected\n"
		 "00000000000000a3,2,small,1,ok,0,0\n"},
		{"00000000000000a4", "id,cell,mitigation,train.seed,status\n"
		 "00000000000000a4,3,old,1,ok\n"},
	};
	const char *tmp = tu_tmpdir("worstpartial");
	char path[1300], *md;
	rebuild_from_rows(tmp, rows_text, 4);
	su_expect_cell(tmp, "mitigations.csv", 0, "worst_partial_epochs", "7");
	su_expect_cell(tmp, "mitigations.csv", 0, "worst_partial_expected",
		       "0.75");
	su_expect_cell(tmp, "mitigations.csv", 1, "worst_partial_epochs", "0");
	su_expect_cell(tmp, "mitigations.csv", 1, "worst_partial_expected",
		       "0");
	su_expect_cell(tmp, "mitigations.csv", 2, "worst_partial_epochs", "");
	snprintf(path, sizeof path, "%s/summary.md", tmp);
	md = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(md);
	ck_assert_msg(strstr(md, "Worst batch: in 7 epochs over all runs") &&
			      strstr(md, "0.75 expected by chance"),
		      "%s", md);
	ck_assert_msg(strstr(md, "By mitigation (epochs with the partial "
				 "batch worst / expected): `baseline` 7 / "
				 "0.75; `small` no partial batch; `old` -."),
		      "%s", md);
	free(md);
}
END_TEST

/* Issue 16 item 4: summary.md lists each NaN run's failing batch and
 * groups runs that failed on the same set of images (in any order); a
 * run without first_batch and a finite run are left out. */
START_TEST(test_failing_batches)
{
	static const char *const rows_text[][2] = {
		{"00000000000000b1", "id,cell,model.init_seed,train.seed,status,"
		 "first_epoch,first_step,first_batch\n"
		 "00000000000000b1,0,1,1,nan,3,40,7 2 9 4\n"},
		{"00000000000000b2", "id,cell,model.init_seed,train.seed,status,"
		 "first_epoch,first_step,first_batch\n"
		 "00000000000000b2,1,2,1,nan,3,40,4 9 7 2\n"},
		{"00000000000000b3", "id,cell,model.init_seed,train.seed,status,"
		 "first_epoch,first_step,first_batch\n"
		 "00000000000000b3,2,1,2,inf,5,66,7 2 9 5\n"},
		{"00000000000000b4", "id,cell,model.init_seed,train.seed,status,"
		 "first_epoch,first_step,first_batch\n"
		 "00000000000000b4,3,2,2,ok,,,\n"},
		{"00000000000000b5", "id,cell,model.init_seed,train.seed,status,"
		 "first_epoch,first_step,first_batch\n"
		 "00000000000000b5,4,3,2,nan,1,2,\n"},
	};
	const char *tmp = tu_tmpdir("failbatch");
	char path[1300], *md;
	rebuild_from_rows(tmp, rows_text, 5);
	snprintf(path, sizeof path, "%s/summary.md", tmp);
	md = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(md);
	ck_assert_msg(strstr(md, "## The failing batches\n\n3 run(s) that "
				 "hit NaN/Inf name the images") &&
			      strstr(md, "); 2 distinct set(s) of images."),
		      "%s", md);
	ck_assert_msg(strstr(md, "| 00000000000000b1 | 1 | 1 | 3 | 40 | 4 | - "
				 "| 7 2 9 4 |\n"), "%s", md);
	ck_assert_msg(strstr(md, "| 00000000000000b2 | 2 | 1 | 3 | 40 | 4 | "
				 "00000000000000b1 | 4 9 7 2 |\n"), "%s", md);
	ck_assert_msg(strstr(md, "| 00000000000000b3 | 1 | 2 | 5 | 66 | 4 | - "
				 "| 7 2 9 5 |\n"), "%s", md);
	ck_assert_msg(!strstr(strstr(md, "## The failing batches"),
			      "00000000000000b5"), "%s", md);
	free(md);
}
END_TEST

TU_MAIN("report", "report", 240, test_figures_mitigation_axes,
	test_figures_legend_panels, test_figures_without_curves,
	test_report_fake_axis, test_report_files, test_table_unterminated_quote,
	test_old_rows_load, test_learned_sse_rule, test_learned_nll_margin,
	test_learned_reference_per_axis, test_learned_reference_from_source,
	test_nll_consistent_scale,
	test_wilson_interval,
	test_time_vs_baseline, test_worst_partial_by_mitigation,
	test_failing_batches)
