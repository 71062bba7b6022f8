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
#include "figures.h"
#include "files.h"
#include "machine.h"
#include "ops.h"
#include "stats.h"
#include "sweep_plan.h"

#ifndef VB_GIT_COMMIT
#define VB_GIT_COMMIT "unknown"
#endif

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
	have = calloc(p->n_cells ? p->n_cells : 1, sizeof *have);
	if (!have) {
		sweep_plan_free(p);
		free(only);
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	}
	for (size_t r = 0; r < t->n_rows; r++) {
		const char *c = table_get(t, r, "cell");
		char *end;
		unsigned long long i;
		if (!c || !*c)
			continue;
		i = strtoull(c, &end, 10);
		if (*end == '\0' && i < p->n_cells && !have[i] &&
		    sweep_plan_in_only(p, only, i)) {
			have[i] = true;
			n_have++;
		}
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
				   struct vb_error *err)
{
	char path[1200], rows[1200];
	struct stat sb;
	enum vb_status st;
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
	struct table t;
	char path[1200], title[1300], *note = NULL;
	enum vb_status st;

	table_init(&t);
	st = load_results(dir, &t, err);
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
		size_t row;
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
