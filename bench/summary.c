/* summary: a sweep folder's summary.md (report.h report_write_summary):
 * the counts, the learned rule, the worst-batch line, the settings, the
 * tables by setting, the mitigation table, the runs that hit NaN/Inf and
 * the images of their failing steps. */
#define _DEFAULT_SOURCE

#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "stats.h"

static void fmt_g(double v, char *buf, size_t cap)
{
	if (isnan(v))
		snprintf(buf, cap, "-");
	else
		snprintf(buf, cap, "%.4g", v);
}

static enum vb_status summary_group_table(FILE *f, const struct table *t,
					  const char *const *keys, size_t nk,
					  struct vb_error *err)
{
	struct stats_group *g = NULL;
	size_t n = 0;
	enum vb_status st = stats_group_rows(t, keys, nk, &g, &n, err);
	if (st)
		return st;
	fputs("|", f);
	for (size_t k = 0; k < nk; k++)
		fprintf(f, " %s |", keys[k]);
	fputs(" runs | hit NaN/Inf | share | median first-NaN epoch | "
	      "mean final eval loss (finite runs) |\n|", f);
	for (size_t k = 0; k < nk + 5; k++)
		fputs(k < nk ? "---|" : "--:|", f);
	fputc('\n', f);
	for (size_t i = 0; i < n; i++) {
		char med[32], loss[32];
		fputs("|", f);
		for (size_t k = 0; k < nk; k++)
			fprintf(f, " %s |", table_get(t, g[i].first_row,
						      keys[k]));
		fmt_g(stats_median_epoch(&g[i]), med, sizeof med);
		fmt_g(g[i].n_loss ? g[i].loss_sum / (double)g[i].n_loss : NAN,
		      loss, sizeof loss);
		fprintf(f, " %zu%s | %zu | %.0f%% | %s | %s |\n", g[i].runs,
			g[i].errors ? " (+errors)" : "", g[i].hits,
			g[i].runs ? 100.0 * (double)g[i].hits /
					    (double)g[i].runs
				  : 0.0,
			med, loss);
	}
	fputc('\n', f);
	stats_free_groups(g, n);
	return VB_OK;
}

/* Settings of mitigation m's rows that differ from the baseline's, when
 * both hold one value (the mitigation's own keys), as "k = v, ...". */
static void mit_settings(FILE *f, const struct table *t,
			 const struct stats_mit_table *mt, const struct stats_mit *m)
{
	const char *bname = mt->m[mt->base].name;
	bool any = false;
	for (size_t c = 0; c < t->n_cols; c++) {
		const char *mv = NULL, *bv = NULL;
		bool mixed = false;
		if (!table_is_setting(t->cols[c]))
			continue;
		for (size_t r = 0; r < t->n_rows && !mixed; r++) {
			const char *name = table_get(t, r, "mitigation");
			const char *v = t->cells[r * t->n_cols + c];
			const char **slot = !strcmp(name, m->name) ? &mv
					    : !strcmp(name, bname) ? &bv
								   : NULL;
			if (!slot)
				continue;
			if (*slot && strcmp(*slot, v))
				mixed = true;
			*slot = v;
		}
		if (mixed || !mv || !bv || !strcmp(mv, bv))
			continue;
		fprintf(f, "%s`%s = %s`", any ? ", " : "", t->cols[c], mv);
		any = true;
	}
	if (!any)
		fputs("the same settings as the baseline (rows missing?)", f);
}

static void md_num(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, " %.4g |", v);
	else
		fputs(" - |", f);
}

/* Median (min–max) of the sorted v (n) as a table cell. */
static void md_range(FILE *f, const double *v, size_t n)
{
	if (n > 1 && v[0] != v[n - 1])
		fprintf(f, " %.4g (%.4g–%.4g) |", stats_median_sorted(v, n),
			v[0], v[n - 1]);
	else
		md_num(f, stats_median_sorted(v, n));
}

/* One row of the Mitigations table: mitigation m of mt. */
static void summary_mitigation_row(FILE *f, const struct stats_mit_table *mt,
				   const struct stats_mit *m)
{
	const struct stats_mit *b = &mt->m[mt->base];
	double med = stats_mit_median(m), ratio = stats_mit_time_ratio(mt, m);
	double costs[STATS_N_COSTS];
	stats_mit_costs(m, costs);
	double w_lo, w_hi;
	stats_wilson(m->hits, m->runs, &w_lo, &w_hi);
	fprintf(f, "| %s | %zu%s | %zu/%zu", m->name, m->cells,
		m->errors ? " (+errors)" : "", m->hits, m->runs);
	if (m->runs)
		fprintf(f, " (%.2f–%.2f) |", w_lo, w_hi);
	else
		fputs(" |", f);
	if (m->n_epochs > 1 && m->epochs[0] != m->epochs[m->n_epochs - 1])
		fprintf(f, " %.4g (%.4g–%.4g) |", med, m->epochs[0],
			m->epochs[m->n_epochs - 1]);
	else
		md_num(f, med);
	md_num(f, stats_mean_or_nan(m->final_sum, m->n_final));
	md_num(f, stats_mean_or_nan(m->best_sum, m->n_best));
	if (m->n_at)
		fprintf(f, " %.4g (%zu) |",
			m->at_sum / (double)m->n_at, m->n_at);
	else
		fputs(" - (0) |", f);
	md_num(f, stats_mean_or_nan(b->at_sum, b->n_at));
	static const enum stats_ho shown[4] = {
		STATS_HO_NLLC_BEST, STATS_HO_NLLC_LAST, STATS_HO_SSE_BEST,
		STATS_HO_SSE_LAST};
	for (int k = 0; k < 4; k++) /* NLL, SSE: best, last */
		md_range(f, m->ho[shown[k]], m->n_ho[shown[k]]);
	fprintf(f, " %zu/%zu | %zu/%zu/%zu |", m->n_learned,
		m->n_learned_known, m->n_value_error,
		m->n_runtime_error, m->n_nan_loss);
	for (size_t k = 0; k < STATS_N_COSTS; k++)
		md_num(f, costs[k]);
	if (isfinite(ratio))
		fprintf(f, " %.2fx |\n", ratio);
	else
		fputs(" - |\n", f);
}

static void summary_mitigations(FILE *f, const struct table *t,
				const struct stats_mit_table *mt)
{
	const struct stats_mit *b = &mt->m[mt->base];
	char e[32];
	if (mt->epoch > 0)
		snprintf(e, sizeof e, "%ld", mt->epoch);
	else
		snprintf(e, sizeof e, "E");
	fprintf(f, "## Mitigations\n\n"
		"Baseline: `%s`. NaN/Inf: runs that hit a non-finite value / "
		"runs (error rows aside), with the 95 %% Wilson interval of "
		"that share in brackets. First-NaN epoch: median (min–max) "
		"over those runs. Final eval loss: mean over the runs that "
		"stayed finite; best eval loss: mean over all runs (finite "
		"even for a run that later hit NaN). ", b->name);
	if (mt->epoch > 0)
		fprintf(f, "Comparison epoch E = %ld: the last evaluated "
			"epoch that every %s run completed with a finite "
			"eval loss; "
			"\"eval loss at epoch %ld\" is the mean over the runs "
			"that reached it with a finite eval loss (how many in "
			"brackets). ", mt->epoch, b->name, mt->epoch);
	else
		fprintf(f, "No comparison epoch: %s", mt->n_base_runs
			? "a baseline run has no finite eval loss (NaN in its "
			  "first epoch, or rows without eval_losses). "
			: "the baseline has no runs. ");
	fputs("NLL and SSE: the importance-sampled NLL (nats per image) "
	      "and the mean eval SSE per image at each run's best epoch "
	      "(lowest eval loss; \"best\") and at its last finite "
	      "evaluated epoch (\"last\"), median (min–max) over the runs "
	      "that have one. The NLL is on the consistent scale "
	      "(eval.nll_estimator = consistent; the same for every model): "
	      "an RHVAE run's get_nll as pythae computes it omits the "
	      "tempering Jacobian, so its value gets -d log b added "
	      "(mitigations.csv has both: nll_* as run, nll_consistent_*); "
	      "an HVAE run with pythae's formula has none. Learned: runs that pass the rule above / "
	      "runs where it is computable. pythae's errors: runs ended by "
	      "#131's ValueError / BCE's RuntimeError / \"NaN detected in "
	      "... loss\" (train.nan_check = pythae). Clipped: mean share "
	      "of steps whose gradient optim.clip changed. ", f);
	fputs("Time: mean wall seconds per cell and per epoch run (the "
	      "epoch a NaN stopped counts; both grow with whatever else ran "
	      "on the machine), CPU seconds per epoch (the process's CPU "
	      "time per epoch from times.csv, mean over the runs' epochs: "
	      "about the epoch's time on an idle core for a one-thread run, "
	      "whatever else ran), and the time per epoch relative to the "
	      "baseline (on CPU seconds where both have them, on wall "
	      "seconds where neither has, \"-\" where only one has: rows "
	      "of an older vaebench have no CPU seconds).\n\n", f);
	fprintf(f, "| mitigation | cells | NaN/Inf | first-NaN epoch | "
		"final eval loss (finite runs) | best eval loss (all runs) | "
		"eval loss at epoch %s (runs) | %s at epoch %s | NLL best | "
		"NLL last | SSE best | SSE last | learned | pythae's errors (value/runtime/nan) | "
		"clipped | s/cell | s/epoch | CPU s/epoch | time vs %s |\n"
		"|---|", e, b->name, e, b->name);
	for (int k = 0; k < 18; k++)
		fputs("--:|", f);
	fputc('\n', f);
	for (size_t i = 0; i < mt->n; i++)
		summary_mitigation_row(f, mt, &mt->m[i]);
	fputs("\nWhat each mitigation changes against the baseline:\n\n", f);
	for (size_t i = 0; i < mt->n; i++) {
		fprintf(f, "- `%s`: ", mt->m[i].name);
		if (i == mt->base)
			fputs("the reference", f);
		else
			mit_settings(f, t, mt, &mt->m[i]);
		fputc('\n', f);
	}
	fputc('\n', f);
}

/* "## Settings": the swept axes with their values (the axes but
 * train.seed into grp, *n_grp of them) and the fixed settings that differ
 * from the defaults. */
static enum vb_status summary_settings(FILE *f, const struct table *t,
				       const char **axes, size_t n_axes,
				       const char **grp, size_t *n_grp,
				       struct vb_error *err)
{
	struct config d;
	enum vb_status st = VB_OK;
	fputs("## Settings\n\nSwept:\n\n", f);
	for (size_t a = 0; a < n_axes; a++) {
		struct stats_values v;
		st = stats_distinct(t, axes[a], &v, err);
		if (st)
			break;
		fprintf(f, "- `%s`: ", axes[a]);
		for (size_t i = 0; i < v.n; i++)
			fprintf(f, "%s%s", i ? ", " : "", v.v[i]);
		fputc('\n', f);
		free(v.v);
		if (strcmp(axes[a], "train.seed"))
			grp[(*n_grp)++] = axes[a];
	}
	if (!n_axes)
		fputs("- (nothing: one cell)\n", f);
	fputs("\nFixed, where not the default:\n\n", f);
	config_defaults(&d);
	for (size_t c = 0; st == VB_OK && c < t->n_cols && t->n_rows; c++) {
		char def[CONFIG_VALUE_LEN];
		bool axis = false;
		for (size_t a = 0; a < n_axes; a++)
			axis |= !strcmp(axes[a], t->cols[c]);
		if (axis || !table_is_setting(t->cols[c]) ||
		    config_get(&d, t->cols[c], def, sizeof def, NULL) ||
		    !strcmp(def, t->cells[c]))
			continue;
		fprintf(f, "- `%s = %s`\n", t->cols[c], t->cells[c]);
	}
	return st;
}

/* "## Runs that hit NaN/Inf": one line per such run. */
static void summary_hits(FILE *f, const struct table *t, const char **axes,
			 size_t n_axes, bool mitigations)
{
	fputs("## Runs that hit NaN/Inf\n\n| id |", f);
	if (mitigations)
		fputs(" mitigation |", f);
	for (size_t a = 0; a < n_axes; a++)
		fprintf(f, " %s |", axes[a]);
	fputs(" status | epoch | step | phase | quantity | cause | "
	      "op | node | lead time |\n|---|", f);
	for (size_t a = 0; a < n_axes + 9 + (mitigations ? 1 : 0); a++)
		fputs("---|", f);
	fputc('\n', f);
	for (size_t r = 0; r < t->n_rows; r++) {
		if (!stats_is_hit(table_get(t, r, "status")))
			continue;
		fprintf(f, "| %s |", table_get(t, r, "id"));
		if (mitigations)
			fprintf(f, " %s |", table_get(t, r, "mitigation"));
		for (size_t a = 0; a < n_axes; a++)
			fprintf(f, " %s |", table_get(t, r, axes[a]));
		fprintf(f, " %s | %s | %s | %s | %s | %s | %s | %s "
			"| %s |\n", table_get(t, r, "status"),
			table_get(t, r, "first_epoch"),
			table_get(t, r, "first_step"),
			table_get(t, r, "first_phase"),
			table_get(t, r, "first_quantity"),
			table_get(t, r, "cause"),
			table_get(t, r, "origin_op"),
			table_get(t, r, "origin_node"),
			table_get(t, r, "lead_time"));
	}
	fputc('\n', f);
}

/* One failing batch: a run's first_batch as sorted indices. */
struct fail_batch {
	size_t row, n;
	long *ix;
};

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return (x > y) - (x < y);
}

/* The sorted indices of row r's first_batch into fb (fb->n = 0 when the
 * row has none or it does not parse). */
static enum vb_status batch_parse(const struct table *t, size_t r,
				  struct fail_batch *fb, struct vb_error *err)
{
	const char *s = table_get(t, r, "first_batch");
	fb->row = r;
	fb->n = 0;
	/* space-separated: at most one number per two characters */
	fb->ix = malloc((strlen(s) / 2 + 1) * sizeof *fb->ix);
	if (!fb->ix)
		return vb_fail(err, VB_ERR_NOMEM, "summary: out of memory");
	for (char *end;; s = end) {
		long v = strtol(s, &end, 10);
		if (end == s)
			break;
		fb->ix[fb->n++] = v;
	}
	if (fb->n)
		qsort(fb->ix, fb->n, sizeof *fb->ix, cmp_long);
	return VB_OK;
}

/* The first earlier batch (index into fb) with the same set of images as
 * fb[i], or i when none has. */
static size_t batch_same(const struct fail_batch *fb, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (fb[j].n == fb[i].n &&
		    !memcmp(fb[j].ix, fb[i].ix, fb[i].n * sizeof *fb[i].ix))
			return j;
	return i;
}

/* "## The failing batches" (issue 16 item 4): for every run that hit
 * NaN/Inf with a recorded batch, its step and the dataset indices of the
 * images of that step (first_batch, as the run lists them), and the
 * earlier run that failed on the same set of images, if any: runs of one
 * data order failing on one batch whatever else differs point to the
 * batch; different batches, to the run's own state. */
static enum vb_status summary_batches(FILE *f, const struct table *t,
				      const char **axes, size_t n_axes,
				      bool mitigations, struct vb_error *err)
{
	struct fail_batch *fb = calloc(t->n_rows + 1, sizeof *fb);
	size_t n = 0, distinct = 0;
	enum vb_status st = fb ? VB_OK : vb_fail(err, VB_ERR_NOMEM,
						 "summary: out of memory");
	for (size_t r = 0; st == VB_OK && r < t->n_rows; r++) {
		if (!stats_is_hit(table_get(t, r, "status")))
			continue;
		st = batch_parse(t, r, &fb[n], err);
		if (st == VB_OK && fb[n].n)
			n++;
		else
			free(fb[n].ix);
	}
	for (size_t i = 0; st == VB_OK && i < n; i++)
		distinct += batch_same(fb, i) == i;
	if (st == VB_OK && n) {
		fprintf(f, "## The failing batches\n\n%zu run(s) that hit "
			"NaN/Inf name the images of that step (`first_batch`: "
			"their indices in the dataset, in batch order); %zu "
			"distinct set(s) of images. \"Same batch as\" names the "
			"first run above that failed on the same set.\n\n| id |",
			n, distinct);
		if (mitigations)
			fputs(" mitigation |", f);
		for (size_t a = 0; a < n_axes; a++)
			fprintf(f, " %s |", axes[a]);
		fputs(" epoch | step | images | same batch as | indices |\n|", f);
		for (size_t a = 0; a < n_axes + 6 + mitigations; a++)
			fputs("---|", f);
		fputc('\n', f);
	}
	for (size_t i = 0; st == VB_OK && i < n; i++) {
		size_t r = fb[i].row, j = batch_same(fb, i);
		fprintf(f, "| %s |", table_get(t, r, "id"));
		if (mitigations)
			fprintf(f, " %s |", table_get(t, r, "mitigation"));
		for (size_t a = 0; a < n_axes; a++)
			fprintf(f, " %s |", table_get(t, r, axes[a]));
		fprintf(f, " %s | %s | %zu | %s | %s |\n",
			table_get(t, r, "first_epoch"),
			table_get(t, r, "first_step"), fb[i].n,
			j == i ? "-" : table_get(t, fb[j].row, "id"),
			table_get(t, r, "first_batch"));
	}
	if (st == VB_OK && n)
		fputc('\n', f);
	for (size_t i = 0; fb && i < n; i++)
		free(fb[i].ix);
	free(fb);
	return st;
}

/* Issue 16's trigger lead: how often an epoch's worst training batch
 * was its last, partial one, against chance (only when some run had a
 * partial batch), over the runs that are not errors and have both columns
 * (as mitigations.csv counts them); then the same per mitigation (mt),
 * when there is more than one. */
static void summary_worst_partial(FILE *f, const struct table *t,
				  const struct stats_mit_table *mt)
{
	double hits = 0, expected = 0, v, e;
	if (table_col(t, "worst_partial_expected") < 0)
		return;
	for (size_t r = 0; r < t->n_rows; r++) {
		if (strcmp(table_get(t, r, "status"), "error") != 0 &&
		    table_parse_num(table_get(t, r, "worst_partial_epochs"),
				    &v) && isfinite(v) &&
		    table_parse_num(table_get(t, r, "worst_partial_expected"),
				    &e) && isfinite(e)) {
			hits += v;
			expected += e;
		}
	}
	if (expected <= 0)
		return;
	fprintf(f, "Worst batch: in %.0f epochs over all runs the epoch's "
		"worst training batch (highest loss) was its last, partial "
		"one; %.3g expected by chance (the sum of 1 / batches over "
		"the epochs with a partial batch; columns "
		"worst_partial_epochs, worst_partial_expected; "
		"data.drop_last removes the partial batch).", hits,
		expected);
	if (mt->n > 1) {
		fputs(" By mitigation (epochs with the partial batch worst / "
		      "expected):", f);
		for (size_t i = 0; i < mt->n; i++) {
			const struct stats_mit *m = &mt->m[i];
			fprintf(f, "%s `%s` ", i ? ";" : "", m->name);
			if (!m->n_wp)
				fputs("-", f);
			else if (m->wp_expected <= 0)
				fputs("no partial batch", f);
			else
				fprintf(f, "%.0f / %.3g", m->wp_hits,
					m->wp_expected);
		}
		fputc('.', f);
	}
	fputs("\n\n", f);
}

/* The whole summary.md text into f. */
static enum vb_status summary_text(FILE *f, const struct table *t,
				   const char *title, const char *note,
				   const char **axes, size_t n_axes,
				   const char **grp, struct vb_error *err)
{
	size_t n_hits = 0, n_err = 0, n_grp = 0;
	struct stats_mit_table mt = {0};
	enum vb_status st;
	for (size_t r = 0; r < t->n_rows; r++) {
		const char *s = table_get(t, r, "status");
		n_hits += stats_is_hit(s);
		n_err += !strcmp(s, "error");
	}
	fprintf(f, "# %s\n\n", title);
	fprintf(f, "%zu runs: %zu finite, %zu hit NaN/Inf, %zu error(s). "
		"Rows: results.csv (one per cell). A run \"hits NaN\" when "
		"its status is nan or inf; the first-NaN epoch is the epoch "
		"of the first non-finite value; final eval losses are "
		"averaged over the finite runs only.\n\n", t->n_rows,
		t->n_rows - n_hits - n_err, n_hits, n_err);
	if (note)
		fprintf(f, "%s\n\n", note);
	if (table_col(t, "nll_last") >= 0)
		stats_learned_rule(f, t);
	st = stats_mit_collect(t, &mt, err);
	if (st == VB_OK)
		summary_worst_partial(f, t, &mt);
	if (st == VB_OK)
		st = summary_settings(f, t, axes, n_axes, grp, &n_grp,
				      err);
	if (st == VB_OK && n_grp) {
		fprintf(f, "\n## By setting%s\n\n",
			n_grp < n_axes ? " (seeds pooled)" : "");
		st = summary_group_table(f, t, grp, n_grp, err);
	}
	for (size_t a = 0; st == VB_OK && n_grp > 1 && a < n_grp; a++) {
		fprintf(f, "## By %s\n\n", grp[a]);
		st = summary_group_table(f, t, &grp[a], 1, err);
	}
	if (st == VB_OK && mt.n)
		summary_mitigations(f, t, &mt);
	if (st == VB_OK && n_hits)
		summary_hits(f, t, axes, n_axes, mt.n > 0);
	if (st == VB_OK && n_hits && table_col(t, "first_batch") >= 0)
		st = summary_batches(f, t, axes, n_axes, mt.n > 0, err);
	stats_mit_free(&mt);
	return st;
}

enum vb_status report_write_summary(const struct table *t, const char *title,
				     const char *note, const char *path,
				     struct vb_error *err)
{
	char *text = NULL;
	size_t len = 0, n_axes;
	const char **axes = NULL, **grp = NULL;
	FILE *f;
	enum vb_status st = stats_find_axes(t, &axes, &n_axes, err);
	if (st)
		return st;
	grp = malloc((n_axes + 1) * sizeof *grp);
	f = open_memstream(&text, &len);
	if (!grp || !f) {
		free(axes);
		free(grp);
		if (f)
			fclose(f);
		free(text);
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	}
	st = summary_text(f, t, title, note, axes, n_axes, grp, err);
	fclose(f);
	if (st == VB_OK)
		st = files_write_atomic(path, text, len, false, err);
	free(text);
	free(axes);
	free(grp);
	return st;
}
