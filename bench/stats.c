/* stats: grouping and mitigation statistics of a results table
 * (stats.h). */
#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"

/* ---- grouping ---- */

bool stats_is_hit(const char *status)
{
	return !strcmp(status, "nan") || !strcmp(status, "inf");
}


static int cmp_numstr(const void *a, const void *b)
{
	double x = strtod(*(const char *const *)a, NULL);
	double y = strtod(*(const char *const *)b, NULL);
	return (x > y) - (x < y);
}

enum vb_status stats_distinct(const struct table *t, const char *name,
			       struct stats_values *out, struct vb_error *err)
{
	bool numeric = true;
	out->n = 0;
	out->v = malloc((t->n_rows + 1) * sizeof *out->v);
	if (!out->v)
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	for (size_t r = 0; r < t->n_rows; r++) {
		const char *v = table_get(t, r, name);
		size_t i;
		double d;
		for (i = 0; i < out->n; i++)
			if (!strcmp(out->v[i], v))
				break;
		if (i == out->n) {
			out->v[out->n++] = v;
			if (!table_parse_num(v, &d))
				numeric = false;
		}
	}
	if (numeric && out->n > 1)
		qsort(out->v, out->n, sizeof *out->v, cmp_numstr);
	return VB_OK;
}

size_t stats_value_index(const struct stats_values *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->v[i], s))
			return i;
	return v->n;
}

/* The axes: setting columns whose values vary, in column order. */
enum vb_status stats_find_axes(const struct table *t, const char ***axes,
				size_t *n, struct vb_error *err)
{
	*n = 0;
	*axes = malloc((t->n_cols + 1) * sizeof **axes);
	if (!*axes)
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	for (size_t c = 0; c < t->n_cols; c++) {
		if (!table_is_setting(t->cols[c]))
			continue;
		for (size_t r = 1; r < t->n_rows; r++)
			if (strcmp(t->cells[r * t->n_cols + c],
				   t->cells[c])) {
				(*axes)[(*n)++] = t->cols[c];
				break;
			}
	}
	return VB_OK;
}


double stats_median_epoch(struct stats_group *g)
{
	if (!g->hits)
		return NAN;
	qsort(g->epochs, g->hits, sizeof *g->epochs, files_cmp_double);
	return g->hits % 2 ? g->epochs[g->hits / 2]
			   : 0.5 * (g->epochs[g->hits / 2 - 1] +
				    g->epochs[g->hits / 2]);
}

static bool same_group(const struct table *t, size_t a, size_t b,
		       const char *const *keys, size_t nk)
{
	for (size_t k = 0; k < nk; k++)
		if (strcmp(table_get(t, a, keys[k]), table_get(t, b, keys[k])))
			return false;
	return true;
}

/* Groups the rows by the values of keys (first-appearance order). */
enum vb_status stats_group_rows(const struct table *t,
				 const char *const *keys, size_t nk,
				 struct stats_group **out, size_t *n_out,
				 struct vb_error *err)
{
	struct stats_group *g = calloc(t->n_rows + 1, sizeof *g);
	size_t n = 0;
	if (!g)
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	for (size_t r = 0; r < t->n_rows; r++) {
		size_t i;
		const char *st = table_get(t, r, "status");
		double v;
		for (i = 0; i < n; i++)
			if (same_group(t, g[i].first_row, r, keys, nk))
				break;
		if (i == n) {
			g[n].first_row = r;
			g[n].epochs = malloc(t->n_rows * sizeof(double));
			if (!g[n].epochs) {
				for (size_t q = 0; q < n; q++)
					free(g[q].epochs);
				free(g);
				return vb_fail(err, VB_ERR_NOMEM,
					       "table: no memory");
			}
			n++;
		}
		if (!strcmp(st, "error")) {
			g[i].errors++;
			continue;
		}
		g[i].runs++;
		if (stats_is_hit(st)) {
			if (table_parse_num(table_get(t, r, "first_epoch"), &v))
				g[i].epochs[g[i].hits] = v;
			else
				g[i].epochs[g[i].hits] = NAN;
			g[i].hits++;
		} else if (table_parse_num(table_get(t, r, "final_eval_loss"), &v) &&
			   isfinite(v)) {
			g[i].loss_sum += v;
			g[i].n_loss++;
		}
	}
	*out = g;
	*n_out = n;
	return VB_OK;
}

void stats_free_groups(struct stats_group *g, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(g[i].epochs);
	free(g);
}

/* ---- mitigations ---- */

/* The last epoch (1-based) with a finite entry before the first
 * non-finite one in an eval_losses list ("1.5;2;nan"; empty entries are
 * epochs without an evaluation, train.eval_every); 0 if none. */
static long finite_epochs(const char *list)
{
	long last = 0;
	for (long e = 1; *list; e++) {
		char *end;
		double v;
		if (*list == ';') { /* empty entry */
			list++;
			continue;
		}
		v = strtod(list, &end);
		if (end == list || (*end && *end != ';') || !isfinite(v))
			break;
		last = e;
		list = *end ? end + 1 : end;
	}
	return last;
}

/* Entry epoch (1-based) of an eval_losses list into *v; false if absent
 * or empty. */
static bool eval_at(const char *list, long epoch, double *v)
{
	for (long e = 1; *list; e++) {
		char *end;
		double x;
		if (*list == ';') {
			if (e == epoch)
				return false;
			list++;
			continue;
		}
		x = strtod(list, &end);
		if (end == list || (*end && *end != ';'))
			return false;
		if (e == epoch) {
			*v = x;
			return true;
		}
		list = *end ? end + 1 : end;
	}
	return false;
}



double stats_median_sorted(const double *v, size_t n)
{
	if (!n)
		return NAN;
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The table whose baseline rows give the learned reference: t's
 * reference table (a continuation's source) or t. */
static const struct table *ref_table(const struct table *t)
{
	return t->reference ? t->reference : t;
}

/* The baseline mitigation's name in t: "baseline", else the first named
 * one (as the mitigation table); NULL without a mitigation column. */
static const char *table_baseline(const struct table *t)
{
	const char *first = NULL;
	if (table_col(t, "mitigation") < 0)
		return NULL;
	for (size_t r = 0; r < t->n_rows; r++) {
		const char *m = table_get(t, r, "mitigation");
		if (!strcmp(m, "baseline"))
			return m;
		if (*m && !first)
			first = m;
	}
	return first;
}

/* The learned reference's baseline: that of t's reference table. */
static const char *baseline_name(const struct table *t)
{
	return table_baseline(ref_table(t));
}

bool stats_row_nll(const struct table *t, size_t r, const char *col,
		   double *v)
{
	const char *kind = table_get(t, r, "model.kind");
	double b, d;
	if (!table_parse_num(table_get(t, r, col), v))
		return false;
	/* a table without the setting columns: the value as it is */
	if (!strcmp(table_get(t, r, "eval.nll_estimator"), "consistent") ||
	    (strcmp(kind, "rhvae") && strcmp(kind, "hvae")))
		return true;
	if (!strcmp(kind, "hvae"))
		return false; /* pythae's formula: not a likelihood */
	if (!table_parse_num(table_get(t, r, "rhvae.beta_zero"), &b) ||
	    !table_parse_num(table_get(t, r, "model.latent"), &d) || !(b > 0))
		return false;
	if (!strcmp(table_get(t, r, "rhvae.beta_zero_as_sqrt"), "false"))
		b = sqrt(b);
	*v -= d * log(b);
	return true;
}

/* The median nll_best of the baseline's (b's) rows of t's reference
 * table; with row >= 0 only those with t's row's values in the
 * condition columns cond (n_cond names). */
static double baseline_median(const struct table *t, const char *b,
			      const char *const *cond, size_t n_cond, long row)
{
	const struct table *rt = ref_table(t);
	double *v, x, med;
	size_t n = 0;
	v = malloc((rt->n_rows + 1) * sizeof *v);
	if (!v)
		return NAN;
	for (size_t r = 0; r < rt->n_rows; r++) {
		bool same = strcmp(table_get(rt, r, "mitigation"), b) == 0;
		for (size_t k = 0; same && row >= 0 && k < n_cond; k++)
			same = !strcmp(table_get(rt, r, cond[k]),
				       table_get(t, (size_t)row, cond[k]));
		if (same && stats_row_nll(rt, r, "nll_best", &x) &&
		    isfinite(x))
			v[n++] = x;
	}
	qsort(v, n, sizeof *v, files_cmp_double);
	med = stats_median_sorted(v, n);
	free(v);
	return med;
}

double stats_learned_reference(const struct table *t)
{
	const char *b = baseline_name(t);
	if (!b || table_col(ref_table(t), "nll_best") < 0)
		return NAN;
	return baseline_median(t, b, NULL, 0, -1);
}

size_t stats_learned_conditions(const struct table *t, const char **cond,
				size_t cap)
{
	const struct table *rt = ref_table(t);
	const char *b = baseline_name(t);
	size_t n = 0;
	if (!b)
		return 0;
	for (size_t c = 0; c < rt->n_cols && n < cap; c++) {
		const char *first = NULL;
		bool varies = false;
		if (!table_is_setting(rt->cols[c]) ||
		    strstr(rt->cols[c], "seed"))
			continue;
		for (size_t r = 0; r < rt->n_rows && !varies; r++) {
			const char *v = rt->cells[r * rt->n_cols + c];
			if (strcmp(table_get(rt, r, "mitigation"), b))
				continue;
			if (!first)
				first = v;
			else
				varies = strcmp(first, v) != 0;
		}
		if (varies)
			cond[n++] = rt->cols[c];
	}
	return n;
}

/* The number at p, up to the next ';' or the end ("nan" parses as NaN). */
static bool parse_entry(const char *p, double *v)
{
	char *end;
	*v = strtod(p, &end);
	return end != p && (*end == ';' || *end == '\0');
}

/* Rule (b) on a per-epoch SSE list ("a;;b;nan"): from the first evaluated
 * epoch within factor x the best SSE on, every evaluated epoch is finite
 * and within factor x the best (a run is not faulted for its early,
 * unlearnt epochs, only for a rise after it learned). -1: no finite
 * entry (not computable). */
static int sse_rule(const char *list)
{
	double best = INFINITY, v;
	bool started = false;
	const char *p;
	for (p = list; *p; p += strcspn(p, ";") + (p[strcspn(p, ";")] == ';'))
		if (*p != ';' && parse_entry(p, &v) && isfinite(v) &&
		    v < best)
			best = v;
	if (!isfinite(best))
		return -1;
	for (p = list; *p; p += strcspn(p, ";") + (p[strcspn(p, ";")] == ';')) {
		if (*p == ';')
			continue; /* not evaluated */
		if (!parse_entry(p, &v) || !isfinite(v)) {
			if (started)
				return 0;
			continue;
		}
		started = started || v <= STATS_LEARNED_SSE_FACTOR * best;
		if (started && v > STATS_LEARNED_SSE_FACTOR * best)
			return 0;
	}
	return 1;
}

double stats_learned_margin(double ref)
{
	return fmax(STATS_LEARNED_NATS, STATS_LEARNED_REL * fabs(ref));
}

/* Row r's verdict under reference ref (NAN: its own nll_best). */
static const char *learned_of(const struct table *t, size_t r, double ref)
{
	const char *sses = table_get(t, r, "eval_sses");
	double last, best, sse_best, sse_max, margin;
	bool have_last = stats_row_nll(t, r, "nll_last", &last);
	if (!table_parse_num(table_get(t, r, "last_finite_epoch"), &best))
		return stats_is_hit(table_get(t, r, "status")) ? "false" : "";
	if (!have_last)
		return ""; /* NLL off, or not on the consistent scale */
	if (!isfinite(ref) &&
	    !(stats_row_nll(t, r, "nll_best", &ref) && isfinite(ref)))
		return "";
	margin = stats_learned_margin(ref);
	if (sses[0] && sse_rule(sses) >= 0)
		return last <= ref + margin && sse_rule(sses) ? "true"
							      : "false";
	/* rows without the per-epoch list: every epoch against the best */
	if (!table_parse_num(table_get(t, r, "sse_best"), &sse_best) ||
	    !table_parse_num(table_get(t, r, "sse_max"), &sse_max))
		return "";
	return last <= ref + margin &&
			       sse_max <= STATS_LEARNED_SSE_FACTOR * sse_best
		       ? "true"
		       : "false";
}

/* Row r's reference: the baseline under the row's conditions where it
 * ran them, else the overall one (ref). */
static double row_reference(const struct table *t, const char *b, double ref,
			    const char *const *cond, size_t n_cond, size_t r)
{
	if (n_cond && isfinite(ref)) {
		double m = baseline_median(t, b, cond, n_cond, (long)r);
		if (isfinite(m))
			return m;
	}
	return ref;
}

enum vb_status stats_fill_learned(struct table *t, struct vb_error *err)
{
	const char *b = baseline_name(t);
	double ref = stats_learned_reference(t);
	const char *cond[16];
	size_t n_cond = stats_learned_conditions(t, cond, 16);
	enum vb_status st = VB_OK;
	int c = table_col(t, "learned");
	if (table_col(t, "nll_last") < 0)
		return VB_OK; /* rows from before the held-out measures */
	if (c < 0) {
		st = table_add_col(t, "learned", err);
		c = table_col(t, "learned");
	}
	for (size_t r = 0; st == VB_OK && r < t->n_rows; r++)
		st = table_set_cell(t, r, (size_t)c,
				    learned_of(t, r, row_reference(t, b, ref,
								   cond, n_cond,
								   r)),
				    err);
	return st;
}

double stats_learned_reference_row(const struct table *t, size_t r)
{
	const char *cond[16];
	size_t n_cond = stats_learned_conditions(t, cond, 16);
	return row_reference(t, baseline_name(t), stats_learned_reference(t),
			     cond, n_cond, r);
}

void stats_learned_who(const struct table *t, char *buf, size_t n)
{
	const char *b = baseline_name(t);
	if (t->reference)
		snprintf(buf, n, "`%s`'s runs in %s (the sweep this one "
			 "continues)", b ? b : "?",
			 t->reference_name ? t->reference_name : "?");
	/* a table without a `baseline` (e.g. a continuation of the
	 * mitigations only, without its source): its first mitigation
	 * stands in, named */
	else if (b && strcmp(b, "baseline"))
		snprintf(buf, n, "`%s`'s runs (this table has no `baseline`; "
			 "its first mitigation stands in)", b);
	else
		snprintf(buf, n, "the baseline's runs");
}

void stats_learned_rule(FILE *f, const struct table *t)
{
	double ref = stats_learned_reference(t);
	const char *cond[16];
	size_t n_cond = stats_learned_conditions(t, cond, 16);
	char who[400];
	stats_learned_who(t, who, sizeof who);
	fprintf(f, "\"Learned\": a run learned iff (a) its importance-"
		"sampled NLL at its last finite evaluated epoch (nll_last) is "
		"at most ref + max(%g nats, %g %% of |ref|), where ref is ",
		STATS_LEARNED_NATS, 100 * STATS_LEARNED_REL);
	if (isfinite(ref) && n_cond) {
		fprintf(f, "the median best-epoch NLL of %s with "
			"the run's values of ", who);
		for (size_t k = 0; k < n_cond; k++)
			fprintf(f, "%s`%s`", k ? ", " : "", cond[k]);
		fprintf(f, " (over all of them: %.6g nats)", ref);
	} else if (isfinite(ref))
		fprintf(f, "the median best-epoch NLL of %s (%.6g nats)", who,
			ref);
	else
		fputs("the run's own best-epoch NLL (no baseline in this "
		      "table)", f);
	fprintf(f, ", and (b) from its first evaluated epoch within %g x its "
		"best eval SSE on, no evaluated epoch's eval SSE exceeded that "
		"(eval_sses; its early, unlearnt epochs do not count, a rise "
		"after it learned does). A run that hit NaN/Inf before "
		"any finite evaluated epoch did not learn; blank: not "
		"computable (eval.nll_samples = 0). Constants: "
		"bench/stats.h STATS_LEARNED_*.\n\n",
		STATS_LEARNED_SSE_FACTOR);
}

const char *const STATS_HO_COLUMNS[STATS_N_HO] = {
	"nll_best", "nll_last", "sse_best", "sse_last",
	"nll_best_consistent", "nll_last_consistent"};

void stats_mit_free(struct stats_mit_table *mt)
{
	for (size_t i = 0; i < mt->n; i++) {
		free(mt->m[i].epochs);
		for (int k = 0; k < STATS_N_HO; k++)
			free(mt->m[i].ho[k]);
	}
	free(mt->m);
	memset(mt, 0, sizeof *mt);
}

double stats_mean_or_nan(double sum, size_t n)
{
	return n ? sum / (double)n : NAN;
}

void stats_wilson(size_t k, size_t n, double *lo, double *hi)
{
	const double z = STATS_WILSON_Z, z2 = z * z;
	double p, c, h, d;
	if (!n || k > n) {
		*lo = *hi = NAN;
		return;
	}
	p = (double)k / (double)n;
	d = 1 + z2 / (double)n;
	c = (p + z2 / (2.0 * (double)n)) / d;
	h = z * sqrt(p * (1 - p) / (double)n + z2 / (4.0 * (double)n * (double)n)) / d;
	*lo = k == 0 ? 0 : fmax(0, c - h);
	*hi = k == n ? 1 : fmin(1, c + h);
}

/* The held-out columns of row r into m (absent columns: nothing). */
static void mit_add_heldout(struct stats_mit *m, const struct table *t,
			    size_t r)
{
	const char *pe = table_get(t, r, "pythae_error"),
		   *le = table_get(t, r, "learned");
	double v, e;
	for (int k = 0; k < STATS_N_HO; k++) {
		/* NLLC_BEST, NLLC_LAST: NLL_BEST's and NLL_LAST's columns on
		 * the consistent scale */
		bool ok = k >= STATS_HO_NLLC_BEST
				  ? stats_row_nll(t, r,
						  STATS_HO_COLUMNS[k - STATS_HO_NLLC_BEST],
						  &v)
				  : table_parse_num(table_get(
						  t, r, STATS_HO_COLUMNS[k]),
						  &v);
		if (ok && isfinite(v))
			m->ho[k][m->n_ho[k]++] = v;
	}
	m->n_learned += !strcmp(le, "true");
	m->n_learned_known += !strcmp(le, "true") || !strcmp(le, "false");
	m->n_value_error += !strcmp(pe, "value_error");
	m->n_runtime_error += !strcmp(pe, "runtime_error");
	m->n_nan_loss += !strcmp(pe, "nan_loss");
	if (table_parse_num(table_get(t, r, "clipped_share"), &v) &&
	    isfinite(v)) {
		m->clip_sum += v;
		m->n_clip++;
	}
	if (table_parse_num(table_get(t, r, "worst_partial_epochs"), &v) &&
	    isfinite(v) &&
	    table_parse_num(table_get(t, r, "worst_partial_expected"), &e) &&
	    isfinite(e)) {
		m->wp_hits += v;
		m->wp_expected += e;
		m->n_wp++;
	}
}

/* Row r's numbers into m (a row naming m's mitigation). */
static void mit_add_row(const struct stats_mit_table *mt, struct stats_mit *m,
			const struct table *t, size_t r)
{
	const char *st = table_get(t, r, "status");
	double v, ep;
	if (!strcmp(st, "error")) {
		m->errors++;
		return;
	}
	m->runs++;
	if (stats_is_hit(st)) {
		m->hits++;
		if (table_parse_num(table_get(t, r, "first_epoch"), &v))
			m->epochs[m->n_epochs++] = v;
	} else if (table_parse_num(table_get(t, r, "final_eval_loss"), &v) &&
		   isfinite(v)) {
		m->final_sum += v;
		m->n_final++;
	}
	if (table_parse_num(table_get(t, r, "best_eval_loss"), &v) &&
	    isfinite(v)) {
		m->best_sum += v;
		m->n_best++;
	}
	if (mt->epoch > 0 &&
	    eval_at(table_get(t, r, "eval_losses"), mt->epoch, &v) &&
	    isfinite(v)) {
		m->at_sum += v;
		m->n_at++;
	}
	mit_add_heldout(m, t, r);
	if (table_parse_num(table_get(t, r, "cpu_per_epoch"), &v) &&
	    isfinite(v)) {
		m->cpu_sum += v;
		m->n_cpu++;
	}
	if (table_parse_num(table_get(t, r, "seconds"), &v) && isfinite(v)) {
		m->sec_sum += v;
		m->n_sec++;
		if (table_parse_num(table_get(t, r, "epochs_done"), &ep) &&
		    ep > 0) {
			m->ep_sec += v;
			m->ep_sum += ep;
		}
	}
}

/* The mitigations in order of first appearance, with their cell counts. */
static enum vb_status mit_list(const struct table *t,
			       struct stats_mit_table *mt,
			       struct vb_error *err)
{
	for (size_t r = 0; r < t->n_rows; r++) {
		const char *name = table_get(t, r, "mitigation");
		size_t i;
		if (!*name)
			continue;
		for (i = 0; i < mt->n; i++)
			if (!strcmp(mt->m[i].name, name))
				break;
		if (i == mt->n) {
			mt->m[i].name = name;
			mt->m[i].first_row = r;
			bool ok;
			mt->m[i].epochs = malloc(t->n_rows * sizeof(double));
			ok = mt->m[i].epochs != NULL;
			for (int k = 0; k < STATS_N_HO; k++) {
				mt->m[i].ho[k] =
					malloc(t->n_rows * sizeof(double));
				ok = ok && mt->m[i].ho[k];
			}
			if (!ok) {
				mt->n++;
				stats_mit_free(mt);
				return vb_fail(err, VB_ERR_NOMEM,
					       "table: no memory");
			}
			mt->n++;
		}
		mt->m[i].cells++;
	}
	for (size_t i = 0; i < mt->n; i++)
		if (!strcmp(mt->m[i].name, "baseline"))
			mt->base = i;
	return VB_OK;
}

/* E: the shortest finite eval curve among the baseline's runs. */
static void mit_compare_epoch(const struct table *t,
			      struct stats_mit_table *mt)
{
	mt->epoch = -1;
	for (size_t r = 0; mt->n && r < t->n_rows; r++) {
		long e;
		if (strcmp(table_get(t, r, "mitigation"),
			   mt->m[mt->base].name) ||
		    !strcmp(table_get(t, r, "status"), "error"))
			continue;
		e = finite_epochs(table_get(t, r, "eval_losses"));
		if (mt->epoch < 0 || e < mt->epoch)
			mt->epoch = e;
		mt->n_base_runs++;
	}
	if (mt->epoch < 0)
		mt->epoch = 0;
}

enum vb_status stats_mit_collect(const struct table *t,
				 struct stats_mit_table *mt,
				 struct vb_error *err)
{
	enum vb_status st;
	memset(mt, 0, sizeof *mt);
	if (table_col(t, "mitigation") < 0)
		return VB_OK;
	mt->m = calloc(t->n_rows + 1, sizeof *mt->m);
	if (!mt->m)
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	st = mit_list(t, mt, err);
	if (st)
		return st;
	mit_compare_epoch(t, mt);
	for (size_t r = 0; r < t->n_rows; r++) {
		const char *name = table_get(t, r, "mitigation");
		struct stats_mit *m = NULL;
		if (!*name)
			continue;
		for (size_t i = 0; i < mt->n && !m; i++)
			if (!strcmp(mt->m[i].name, name))
				m = &mt->m[i];
		mit_add_row(mt, m, t, r);
	}
	for (size_t i = 0; i < mt->n; i++) {
		struct stats_mit *m = &mt->m[i];
		qsort(m->epochs, m->n_epochs, sizeof(double),
		      files_cmp_double);
		for (int k = 0; k < STATS_N_HO; k++)
			qsort(m->ho[k], m->n_ho[k], sizeof(double),
			      files_cmp_double);
	}
	return VB_OK;
}

double stats_mit_median(const struct stats_mit *m)
{
	return stats_median_sorted(m->epochs, m->n_epochs);
}

double stats_mit_sec_per_epoch(const struct stats_mit *m)
{
	return m->ep_sum > 0 ? m->ep_sec / m->ep_sum : NAN;
}

double stats_mit_cpu_per_epoch(const struct stats_mit *m)
{
	return stats_mean_or_nan(m->cpu_sum, m->n_cpu);
}

double stats_mit_time_ratio(const struct stats_mit_table *mt, const struct stats_mit *m)
{
	const struct stats_mit *base = &mt->m[mt->base];
	double b = stats_mit_cpu_per_epoch(base), v = stats_mit_cpu_per_epoch(m);
	if (isfinite(b) != isfinite(v))
		return NAN; /* CPU against wall time would mislead */
	if (!isfinite(b)) {
		b = stats_mit_sec_per_epoch(base);
		v = stats_mit_sec_per_epoch(m);
	}
	return b > 0 ? v / b : NAN;
}

void stats_mit_costs(const struct stats_mit *m, double *v)
{
	v[0] = stats_mean_or_nan(m->clip_sum, m->n_clip);
	v[1] = stats_mean_or_nan(m->sec_sum, m->n_sec);
	v[2] = stats_mit_sec_per_epoch(m);
	v[3] = stats_mit_cpu_per_epoch(m);
}

/* A value for the CSV: %.9g, "" when undefined. */
static void fmt_csv_num(FILE *f, double v)
{
	fputc(',', f);
	if (isfinite(v))
		fprintf(f, "%.9g", v);
}

/* The median, min and max of the sorted v (n) as three CSV fields. */
static void csv_range(FILE *f, const double *v, size_t n)
{
	fmt_csv_num(f, stats_median_sorted(v, n));
	fmt_csv_num(f, n ? v[0] : NAN);
	fmt_csv_num(f, n ? v[n - 1] : NAN);
}

/* One row of mitigations.csv: mitigation m of mt. */
static void mit_csv_row(FILE *f, const struct stats_mit_table *mt,
			const struct stats_mit *m)
{
	const struct stats_mit *b = &mt->m[mt->base];
	double costs[STATS_N_COSTS], w_lo, w_hi;
	stats_mit_costs(m, costs);
	table_csv_field(f, m->name);
	fprintf(f, ",%zu,%zu,%zu,%zu", m->cells, m->runs, m->errors,
		m->hits);
	stats_wilson(m->hits, m->runs, &w_lo, &w_hi);
	fmt_csv_num(f, w_lo);
	fmt_csv_num(f, w_hi);
	fmt_csv_num(f, stats_mit_median(m));
	fmt_csv_num(f, m->n_epochs ? m->epochs[0] : NAN);
	fmt_csv_num(f, m->n_epochs ? m->epochs[m->n_epochs - 1] : NAN);
	fmt_csv_num(f, stats_mean_or_nan(m->final_sum, m->n_final));
	fprintf(f, ",%zu", m->n_final);
	fmt_csv_num(f, stats_mean_or_nan(m->best_sum, m->n_best));
	fprintf(f, ",%zu", m->n_best);
	if (mt->epoch > 0)
		fprintf(f, ",%ld", mt->epoch);
	else
		fputc(',', f);
	fmt_csv_num(f, stats_mean_or_nan(m->at_sum, m->n_at));
	fprintf(f, ",%zu", m->n_at);
	fmt_csv_num(f, stats_mean_or_nan(b->at_sum, b->n_at));
	csv_range(f, m->ho[STATS_HO_NLL_LAST],
		  m->n_ho[STATS_HO_NLL_LAST]);
	fprintf(f, ",%zu", m->n_ho[STATS_HO_NLL_LAST]);
	csv_range(f, m->ho[STATS_HO_SSE_LAST],
		  m->n_ho[STATS_HO_SSE_LAST]);
	csv_range(f, m->ho[STATS_HO_NLL_BEST],
		  m->n_ho[STATS_HO_NLL_BEST]);
	csv_range(f, m->ho[STATS_HO_SSE_BEST],
		  m->n_ho[STATS_HO_SSE_BEST]);
	csv_range(f, m->ho[STATS_HO_NLLC_LAST],
		  m->n_ho[STATS_HO_NLLC_LAST]);
	fprintf(f, ",%zu", m->n_ho[STATS_HO_NLLC_LAST]);
	csv_range(f, m->ho[STATS_HO_NLLC_BEST],
		  m->n_ho[STATS_HO_NLLC_BEST]);
	fprintf(f, ",%zu,%zu,%zu,%zu,%zu", m->n_learned,
		m->n_learned_known, m->n_value_error,
		m->n_runtime_error, m->n_nan_loss);
	fmt_csv_num(f, m->n_wp ? m->wp_hits : NAN);
	fmt_csv_num(f, m->n_wp ? m->wp_expected : NAN);
	for (size_t k = 0; k < STATS_N_COSTS; k++)
		fmt_csv_num(f, costs[k]);
	fmt_csv_num(f, stats_mit_time_ratio(mt, m));
	fputc('\n', f);
}

enum vb_status stats_write_mitigations(const struct table *t, const char *path,
				       bool *written, struct vb_error *err)
{
	struct stats_mit_table mt;
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	enum vb_status st = stats_mit_collect(t, &mt, err);
	*written = false;
	if (st || !mt.n) {
		stats_mit_free(&mt);
		return st;
	}
	f = open_memstream(&text, &len);
	if (!f) {
		stats_mit_free(&mt);
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	}
	fputs("mitigation,cells,runs,errors,nan_runs,nan_share_low,"
	      "nan_share_high,first_nan_epoch_median,"
	      "first_nan_epoch_min,first_nan_epoch_max,final_eval_loss_mean,"
	      "final_eval_runs,best_eval_loss_mean,best_eval_runs,"
	      "compare_epoch,eval_loss_at_epoch,eval_runs_at_epoch,"
	      "baseline_eval_loss_at_epoch,nll_last_median,nll_last_min,"
	      "nll_last_max,nll_runs,sse_last_median,sse_last_min,"
	      "sse_last_max,nll_best_median,nll_best_min,nll_best_max,"
	      "sse_best_median,sse_best_min,sse_best_max,"
	      "nll_consistent_last_median,nll_consistent_last_min,"
	      "nll_consistent_last_max,nll_consistent_runs,"
	      "nll_consistent_best_median,nll_consistent_best_min,"
	      "nll_consistent_best_max,learned,"
	      "learned_known,value_error,"
	      "runtime_error,nan_loss,worst_partial_epochs,"
	      "worst_partial_expected,clipped_share_mean,seconds_mean,"
	      "seconds_per_epoch,cpu_seconds_per_epoch,time_vs_baseline\n",
	      f);
	for (size_t i = 0; i < mt.n; i++)
		mit_csv_row(f, &mt, &mt.m[i]);
	fclose(f);
	st = files_write_atomic(path, text, len, false, err);
	free(text);
	stats_mit_free(&mt);
	*written = st == VB_OK;
	return st;
}
