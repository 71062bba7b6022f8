/* counterfactual: which mitigation, switched on shortly before a run's
 * first non-finite event, would have prevented it, and at what cost
 * (issue 18). Every variant resumes from the same checkpoint (parameters,
 * Adam moments, RNG states, the epoch's permutation), so it sees the
 * original's batches and draws; the unchanged one must reproduce the
 * original event bit for bit. Training is train.c's (train_run_opts with
 * resume, stop, snapshot and per-step options); the held-out measures are
 * models/nll.c's; drawing is plot.c's. The variants are cf.c's, running
 * them cf_run.c's, the verdict files cf_verdict.c's. */
#include "counterfactual.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cf.h"
#include "cf_run.h"
#include "cf_verdict.h"
#include "files.h"
#include "replay.h"
#include "sweep.h"
#include "table.h"
#include "train.h"

void counterfactual_defaults(struct counterfactual_request *q)
{
	memset(q, 0, sizeof *q);
	q->window = COUNTERFACTUAL_WINDOW;
	q->horizon = -1;
	q->eval_n = COUNTERFACTUAL_EVAL_N;
	q->nll_samples = COUNTERFACTUAL_NLL_SAMPLES;
}

bool counterfactual_key_switchable(const char *key, char *why, size_t cap)
{
	return cf_key_switchable(key, why, cap);
}

bool counterfactual_done(const char *run_dir)
{
	char path[1400];
	snprintf(path, sizeof path, "%s/counterfactual/verdict.csv", run_dir);
	return files_exists(path);
}

/* ---- the experiment ---- */

/* The unchanged variant must hit the original event bit for bit. */
static enum vb_status check_reproduced(const struct cf *cf,
				       struct vb_error *err)
{
	const struct replay_report *o = &cf->orig;
	const struct guard_event *e = &cf->v[0].sum.first;
	char val[64] = "";
	if (e->set)
		table_fmt_real(e->value, val, sizeof val);
	if (e->set && e->step == o->orig_step &&
	    !strcmp(guard_phase_name(e->phase), o->orig_phase) &&
	    !strcmp(e->quantity, o->orig_quantity) &&
	    !strcmp(val, o->orig_value))
		return VB_OK;
	if (!e->set)
		return vb_fail(err, VB_ERR_NUMERIC, "counterfactual: "
			       "reproduced: NO: the original has %s = %s at "
			       "step %ld (%s); the unchanged variant from "
			       "step %ld had no event up to step %ld",
			       o->orig_quantity, o->orig_value, o->orig_step,
			       o->orig_phase, cf->start_step, cf->end_step);
	return vb_fail(err, VB_ERR_NUMERIC, "counterfactual: reproduced: NO: "
		       "original step %ld (%s, %s = %s), unchanged variant "
		       "step %ld (%s, %s = %s)", o->orig_step, o->orig_phase,
		       o->orig_quantity, o->orig_value, e->step,
		       guard_phase_name(e->phase), e->quantity, val);
}

static void cf_free(struct cf *cf)
{
	for (size_t i = 0; i < cf->n_v; i++) {
		struct cf_variant *v = &cf->v[i];
		free(v->step);
		free(v->loss);
		free(v->gnorm);
		free(v->zmax);
		free(v->pmax);
		if (v->final[0])
			remove(v->final);
		if (v->snap[0] && strcmp(v->snap, cf->start) != 0)
			remove(v->snap);
	}
	train_data_free(&cf->d);
}

/* Loads the run and its event, the data, the variants and the start. */
static enum vb_status cf_open(struct cf *cf, FILE *log, struct vb_error *err)
{
	const struct counterfactual_request *q = cf->q;
	char path[1300];
	size_t nbat;
	enum vb_status st;
	if (q->window < 1 || q->eval_n < 1 || q->nll_samples < 1)
		return vb_fail(err, VB_ERR_USAGE, "counterfactual: --window, "
			       "--eval-n and --nll-samples must be >= 1");
	config_defaults(&cf->base);
	snprintf(path, sizeof path, "%s/config.ini", q->run_dir);
	st = config_load_file(&cf->base, path, err);
	if (st == VB_OK)
		st = config_validate(&cf->base, err);
	if (st == VB_OK)
		st = replay_read_summary(q->run_dir, &cf->orig, err);
	if (st != VB_OK)
		return st;
	/* the bridge, the unchanged variant and the reference run here */
	if (!sweep_precision_here(cf->base.train.precision))
		return vb_fail(err, VB_ERR_CONFIG, "counterfactual: %s was "
			       "trained with train.precision = %s, which this "
			       "binary (%s) does not compute: run the "
			       "command with its sibling (%s)", q->run_dir,
			       config_enum_name("train.precision",
						cf->base.train.precision),
			       VB_REAL_NAME,
			       cf->base.train.precision ==
					       CONFIG_PRECISION_F64
				       ? "vaebench-f64"
				       : "vaebench");
	if (cf->orig.orig_step <= 0)
		return vb_fail(err, VB_ERR_USAGE, "counterfactual: %s: status "
			       "%s, no first non-finite event to test "
			       "mitigations against", q->run_dir,
			       cf->orig.orig_status);
	st = cf_build_variants(cf, err);
	if (st != VB_OK)
		return st;
	snprintf(cf->dir, sizeof cf->dir, "%s/counterfactual", q->run_dir);
	st = files_mkdirs(cf->dir, err);
	if (st == VB_OK)
		st = train_data_load(&cf->base, &cf->d, err);
	if (st != VB_OK)
		return st;
	nbat = (cf->d.train.n + (size_t)cf->base.train.batch - 1) /
	       (size_t)cf->base.train.batch;
	cf->spe = (long)((nbat + (size_t)cf->base.train.accumulate - 1) /
			 (size_t)cf->base.train.accumulate);
	cf->horizon = q->horizon >= 0 ? q->horizon : cf->spe;
	cf->end_step = cf->orig.orig_step + cf->horizon;
	/* the run's planned length bounds the horizon (its schedule is a
	 * function of train.epochs, which the variants keep) */
	if (cf->end_step > cf->spe * cf->base.train.epochs)
		cf->end_step = cf->spe * cf->base.train.epochs;
	if (cf->base.train.max_steps > 0 &&
	    cf->end_step > cf->base.train.max_steps)
		cf->end_step = cf->base.train.max_steps;
	st = cf_run_find_start(cf, log, err);
	cf->ref_step = cf->orig.orig_step - 1;
	cf->cap = (size_t)(cf->end_step - cf->start_step) + 2;
	return st;
}

enum vb_status counterfactual_run(const struct counterfactual_request *q,
				  FILE *out, FILE *log, struct vb_error *err)
{
	struct cf *cf = calloc(1, sizeof *cf);
	enum vb_status st;
	if (!cf)
		return vb_fail(err, VB_ERR_NOMEM, "counterfactual: no memory");
	cf->q = q;
	st = cf_open(cf, log, err);
	for (size_t i = 0; st == VB_OK && i < cf->n_v; i++) {
		if (log)
			fprintf(log, "counterfactual: %s %s\n", cf->v[i].name,
				cf->v[i].sets);
		st = cf_run_variant(cf, &cf->v[i], err);
		if (st == VB_OK && i == 0)
			st = check_reproduced(cf, err);
		if (st == VB_OK && i == 0)
			st = cf_run_reference(cf, err);
	}
	if (st == VB_OK)
		st = cf_run_distances(cf, err);
	if (st == VB_OK)
		st = cf_verdict_write_outputs(cf, err);
	if (st == VB_OK && out) {
		cf_verdict_write_md(out, cf, err);
		fprintf(out, "\nwritten: %s/verdict.csv, verdict.md, "
			"curves.csv, times.csv, counterfactual.png\n", cf->dir);
	}
	cf_free(cf);
	free(cf);
	return st;
}

/* ---- sweeps: report DIR --counterfactual ---- */

/* Per mitigation over the failing runs of a sweep. */
struct cf_agg {
	char name[COUNTERFACTUAL_NAME_LEN];
	char sets[CF_SETS_LEN];
	long runs, prevented, survived;
	long n_nll, n_recon;       /* finite values summed */
	double sum_nll, sum_recon; /* of the runs where it prevented */
	double sum_dnll;           /* eval_nll - the unchanged one's, same */
	long n_dnll;
};

static struct cf_agg *agg_find(struct cf_agg *a, size_t *n, size_t cap,
			       const char *name, const char *sets)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp(a[i].name, name))
			return &a[i];
	if (*n == cap)
		return NULL;
	memset(&a[*n], 0, sizeof a[*n]);
	snprintf(a[*n].name, sizeof a[*n].name, "%s", name);
	snprintf(a[*n].sets, sizeof a[*n].sets, "%s", sets);
	return &a[(*n)++];
}

/* One run's verdict.csv joins the aggregates. */
static enum vb_status agg_run(const char *run_dir, struct cf_agg *a,
			      size_t *n, size_t cap, struct vb_error *err)
{
	struct table t;
	char path[1400];
	double base_nll = NAN, x;
	enum vb_status st;
	table_init(&t);
	snprintf(path, sizeof path, "%s/counterfactual/verdict.csv", run_dir);
	st = table_read(path, &t, err);
	/* the unchanged variant's last finite state before the event
	 * (ref_eval_nll; eval_nll, at the horizon's end, in older tables):
	 * the same reference whichever way the run died */
	for (size_t r = 0; st == VB_OK && r < t.n_rows; r++) {
		const char *ref = table_get(&t, r, "ref_eval_nll");
		if (strcmp(table_get(&t, r, "variant"), "unchanged") != 0)
			continue;
		if (ref && table_parse_num(ref, &x))
			base_nll = x;
		else if (table_parse_num(table_get(&t, r, "eval_nll"), &x))
			base_nll = x;
	}
	for (size_t r = 0; st == VB_OK && r < t.n_rows; r++) {
		const char *out = table_get(&t, r, "outcome");
		struct cf_agg *g = agg_find(a, n, cap,
					    table_get(&t, r, "variant"),
					    table_get(&t, r, "settings"));
		if (!g)
			continue;
		g->runs++;
		g->prevented += !strcmp(out, "clean");
		g->survived += strcmp(out, "fails") != 0;
		if (strcmp(out, "clean") != 0)
			continue;
		if (table_parse_num(table_get(&t, r, "eval_nll"), &x) &&
		    isfinite(x)) {
			g->sum_nll += x;
			g->n_nll++;
			if (isfinite(base_nll)) {
				g->sum_dnll += x - base_nll;
				g->n_dnll++;
			}
		}
		if (table_parse_num(table_get(&t, r, "eval_recon"), &x) &&
		    isfinite(x)) {
			g->sum_recon += x;
			g->n_recon++;
		}
	}
	table_free(&t);
	return st;
}

#define CF_MAX_KINDS 16

struct cf_fixes {
	const struct cf_agg *a;
	size_t n;
	long n_fail, n_done;
	const char *failed; /* lines "- ID: message\n" */
	const struct counterfactual_request *q; /* the options it ran with */
	/* the failing runs by how they died (pythae's error kind, else the
	 * first event's phase and quantity) */
	char kind[CF_MAX_KINDS][96];
	long n_kind[CF_MAX_KINDS];
	size_t n_kinds;
};

/* Counts the failing row r of t under its kind of first event. */
static void count_kind(struct cf_fixes *x, const struct table *t, size_t r)
{
	const char *pe = table_get(t, r, "pythae_error");
	char k[96];
	size_t i;
	if (pe[0])
		snprintf(k, sizeof k, "pythae %s", pe);
	else
		snprintf(k, sizeof k, "%s %.60s", table_get(t, r, "first_phase"),
			 table_get(t, r, "first_quantity"));
	for (i = 0; i < x->n_kinds && strcmp(x->kind[i], k) != 0; i++)
		;
	if (i == x->n_kinds && x->n_kinds == CF_MAX_KINDS)
		return;
	if (i == x->n_kinds)
		snprintf(x->kind[x->n_kinds++], sizeof x->kind[0], "%s", k);
	x->n_kind[i]++;
}

static void put_mean(FILE *f, double sum, long n)
{
	if (n > 0)
		fprintf(f, "%.4g", sum / (double)n);
	else
		fputs("-", f);
}

static enum vb_status write_fixes_md(FILE *f, void *ctx,
				     struct vb_error *err)
{
	const struct cf_fixes *x = ctx;
	const struct counterfactual_request *q = x->q;
	char horizon[64];
	(void)err;
	if (q->horizon < 0)
		snprintf(horizon, sizeof horizon, "one epoch");
	else
		snprintf(horizon, sizeof horizon, "%ld steps", q->horizon);
	fprintf(f, "\n## Fixes at the failure point\n\n"
		"Counterfactual replay (`vaebench counterfactual`) of %ld of "
		"the %ld runs that hit NaN/Inf%s%s%s: each mitigation "
		"switched on at least %ld steps before the run's first event%s,"
		" same batches and draws, to %s past it (held-out measures on "
		"%ld images, %ld IS samples). prevented: no non-finite value "
		"within the horizon; survived: prevented or skipped. Held-out "
		"measures are means over the runs it prevented; d IS-NLL is "
		"against the unchanged variant's last finite state (runs "
		"where that is finite). Per-run tables: "
		"runs/ID/counterfactual/verdict.md.\n\nFirst events:", x->n_done,
		x->n_fail, q->only ? " (mitigations " : "",
		q->only ? q->only : "", q->only ? ")" : "", q->window,
		q->no_lead ? "" : " (and before its lead step)", horizon,
		q->eval_n, q->nll_samples);
	for (size_t i = 0; i < x->n_kinds; i++)
		fprintf(f, "%s %ld %s", i ? "," : "", x->n_kind[i], x->kind[i]);
	fputs(".\n\n", f);
	fputs("| mitigation | settings | runs | prevented | survived | "
	      "eval IS-NLL | d IS-NLL | eval recon |\n"
	      "|---|---|---|---|---|---|---|---|\n", f);
	for (size_t i = 0; i < x->n; i++) {
		const struct cf_agg *g = &x->a[i];
		fprintf(f, "| %s | %s | %ld | %ld | %ld | ", g->name,
			g->sets[0] ? g->sets : "-", g->runs, g->prevented,
			g->survived);
		put_mean(f, g->sum_nll, g->n_nll);
		fputs(" | ", f);
		put_mean(f, g->sum_dnll, g->n_dnll);
		fputs(" | ", f);
		put_mean(f, g->sum_recon, g->n_recon);
		fputs(" |\n", f);
	}
	if (x->failed && x->failed[0])
		fprintf(f, "\nNot done:\n\n%s", x->failed);
	return VB_OK;
}

static enum vb_status write_fixes_csv(FILE *f, void *ctx,
				      struct vb_error *err)
{
	const struct cf_fixes *x = ctx;
	(void)err;
	fputs("mitigation,settings,runs,prevented,survived,eval_nll,"
	      "d_eval_nll,eval_recon\n", f);
	for (size_t i = 0; i < x->n; i++) {
		const struct cf_agg *g = &x->a[i];
		double v[3] = {g->n_nll ? g->sum_nll / (double)g->n_nll : NAN,
			       g->n_dnll ? g->sum_dnll / (double)g->n_dnll
					 : NAN,
			       g->n_recon ? g->sum_recon / (double)g->n_recon
					  : NAN};
		table_csv_field(f, g->name);
		fputc(',', f);
		table_csv_field(f, g->sets);
		fprintf(f, ",%ld,%ld,%ld", g->runs, g->prevented, g->survived);
		for (int k = 0; k < 3; k++) {
			fputc(',', f);
			cf_put_real(f, v[k]);
		}
		fputc('\n', f);
	}
	return VB_OK;
}

enum vb_status counterfactual_append_summary(const char *dir,
					     struct vb_error *err)
{
	char path[1300], *sum = NULL, *fix = NULL, *all;
	size_t ls, lf;
	enum vb_status st;
	snprintf(path, sizeof path, "%s/fixes.md", dir);
	if (!files_exists(path))
		return VB_OK;
	st = files_read(path, &fix, &lf, err);
	snprintf(path, sizeof path, "%s/summary.md", dir);
	if (st == VB_OK)
		st = files_read(path, &sum, &ls, err);
	all = st == VB_OK ? malloc(ls + lf + 1) : NULL;
	if (st == VB_OK && !all)
		st = vb_fail(err, VB_ERR_NOMEM, "counterfactual: no memory");
	if (st == VB_OK) {
		memcpy(all, sum, ls);
		memcpy(all + ls, fix, lf);
		all[ls + lf] = '\0';
		st = files_write_text(path, all, err);
	}
	free(all);
	free(sum);
	free(fix);
	return st;
}

#define CF_MAX_AGG 128

/* Whether row r is a failed run that q selects (--only's mitigations). */
static bool row_failed_selected(const struct table *t, size_t r,
				const struct counterfactual_request *q)
{
	const char *status = table_get(t, r, "status");
	return (!strcmp(status, "nan") || !strcmp(status, "inf")) &&
	       files_name_in_list(q->only, table_get(t, r, "mitigation"));
}

/* The failing rows' runs without a complete result, jobs at a time, each
 * in a forked worker (BLAS single-threaded as the sweep's); a worker that
 * fails leaves its one-line error in RUN_DIR/counterfactual/error.txt. */
static void run_parallel(const char *dir, const struct table *t,
			 const struct counterfactual_request *q, int jobs,
			 FILE *log)
{
	int running = 0;
	for (size_t r = 0; r <= t->n_rows; r++) {
		char run[1250], ep[1300];
		pid_t pid;
		if (r < t->n_rows && !row_failed_selected(t, r, q))
			continue;
		while (running > 0 && (running >= jobs || r == t->n_rows)) {
			if (wait(NULL) > 0)
				running--;
			else
				running = 0;
		}
		if (r == t->n_rows)
			break;
		snprintf(run, sizeof run, "%s/runs/%s", dir,
			 table_get(t, r, "id"));
		if (counterfactual_done(run)) {
			if (log)
				fprintf(log, "counterfactual: %s: done "
					"already\n", run);
			continue;
		}
		snprintf(ep, sizeof ep, "%s/counterfactual/error.txt", run);
		remove(ep);
		if (log)
			fprintf(log, "counterfactual: %s\n", run);
		fflush(NULL);
		pid = fork();
		if (pid == 0) {
			struct counterfactual_request one = *q;
			struct vb_error e1 = {0};
			one.run_dir = run;
			if (counterfactual_run(&one, NULL, NULL, &e1) == VB_OK)
				_exit(0);
			char cd[1300];
			snprintf(cd, sizeof cd, "%s/counterfactual", run);
			files_mkdirs(cd, NULL);
			files_write_text(ep, e1.msg, NULL);
			_exit(1);
		}
		if (pid > 0)
			running++;
	}
}

/* Makes sure the failed run one->run_dir (sweep row id) has its verdict:
 * with jobs > 1 a worker ran it already, else it runs here. False, with a
 * line "- ID: why" on ff, when it has none. */
static bool sweep_one(const struct counterfactual_request *one,
		      const char *id, int jobs, FILE *ff, FILE *log)
{
	const char *run = one->run_dir;
	struct vb_error e1 = {0};
	if (!counterfactual_done(run) && jobs > 1) {
		/* the worker's error, or that it left none */
		char ep[1300], *msg = NULL;
		snprintf(ep, sizeof ep, "%s/counterfactual/error.txt", run);
		if (files_read(ep, &msg, NULL, NULL) != VB_OK)
			msg = NULL;
		fprintf(ff, "- %s: %s\n", id,
			msg ? msg : "the worker left no result");
		free(msg);
		return false;
	}
	if (!counterfactual_done(run)) {
		if (log)
			fprintf(log, "counterfactual: %s\n", run);
		if (counterfactual_run(one, NULL, NULL, &e1) != VB_OK) {
			fprintf(ff, "- %s: %s\n", id, e1.msg);
			if (log)
				fprintf(log, "counterfactual: %s: %s\n", id,
					e1.msg);
			return false;
		}
	} else if (log && jobs <= 1) {
		fprintf(log, "counterfactual: %s: done already\n", run);
	}
	return true;
}

enum vb_status counterfactual_sweep(const char *dir,
				    const struct counterfactual_request *q,
				    int jobs, size_t *n_failed, FILE *log,
				    struct vb_error *err)
{
	struct table t;
	struct cf_agg *a = calloc(CF_MAX_AGG, sizeof *a);
	struct cf_fixes x = {0};
	char path[1300], run[1250];
	char *failed = NULL;
	size_t flen = 0, na = 0;
	FILE *ff = open_memstream(&failed, &flen);
	enum vb_status st = a && ff ? VB_OK
				    : vb_fail(err, VB_ERR_NOMEM,
					      "counterfactual: no memory");
	*n_failed = 0;
	table_init(&t);
	snprintf(path, sizeof path, "%s/results.csv", dir);
	if (st == VB_OK)
		st = table_read(path, &t, err);
	if (st == VB_OK && jobs > 1)
		run_parallel(dir, &t, q, jobs, log);
	for (size_t r = 0; st == VB_OK && r < t.n_rows; r++) {
		const char *id = table_get(&t, r, "id");
		struct counterfactual_request one = *q;
		if (!row_failed_selected(&t, r, q))
			continue;
		x.n_fail++;
		count_kind(&x, &t, r);
		snprintf(run, sizeof run, "%s/runs/%s", dir, id);
		one.run_dir = run;
		if (!sweep_one(&one, id, jobs, ff, log)) {
			(*n_failed)++;
			continue;
		}
		x.n_done++;
		st = agg_run(run, a, &na, CF_MAX_AGG, err);
	}
	if (ff)
		fclose(ff);
	x.a = a;
	x.n = na;
	x.failed = failed;
	x.q = q;
	if (st == VB_OK) {
		snprintf(path, sizeof path, "%s/fixes.csv", dir);
		st = files_write_with(path, write_fixes_csv, &x, false, err);
	}
	if (st == VB_OK) {
		snprintf(path, sizeof path, "%s/fixes.md", dir);
		st = files_write_with(path, write_fixes_md, &x, false, err);
	}
	table_free(&t);
	free(failed);
	free(a);
	return st;
}

/* ---- command line ---- */

static enum vb_status parse_long(const char *opt, const char *s, long lo,
				 long *v, struct vb_error *err)
{
	char *end;
	errno = 0;
	*v = strtol(s, &end, 10);
	if (errno || end == s || *end || *v < lo)
		return vb_fail(err, VB_ERR_USAGE, "%s %s: expected an integer "
			       ">= %ld", opt, s, lo);
	return VB_OK;
}

enum vb_status counterfactual_option(int argc, char **argv, int *i,
				     struct counterfactual_request *q,
				     bool *used, struct vb_error *err)
{
	const char *a = argv[*i];
	bool has = *i + 1 < argc;
	*used = true;
	if (!strcmp(a, "--no-lead")) {
		q->no_lead = true;
		return VB_OK;
	}
	if (strcmp(a, "--try") && strcmp(a, "--set") &&
	    strcmp(a, "--mitigations") && strcmp(a, "--window") &&
	    strcmp(a, "--horizon") && strcmp(a, "--eval-n") &&
	    strcmp(a, "--nll-samples")) {
		*used = false;
		return VB_OK;
	}
	if (!has)
		return vb_fail(err, VB_ERR_USAGE, "%s needs a value", a);
	(*i)++;
	if (!strcmp(a, "--try") || !strcmp(a, "--set")) {
		if (q->n_tries == COUNTERFACTUAL_MAX_TRIES)
			return vb_fail(err, VB_ERR_USAGE, "too many --try");
		if (!strcmp(a, "--set") && !strchr(argv[*i], '='))
			return vb_fail(err, VB_ERR_USAGE, "--set %s: expected "
				       "section.key=value", argv[*i]);
		q->tries[q->n_tries++] = argv[*i];
		return VB_OK;
	}
	if (!strcmp(a, "--mitigations")) {
		q->mitigations = argv[*i];
		return VB_OK;
	}
	long *dst = !strcmp(a, "--window")    ? &q->window
		    : !strcmp(a, "--horizon") ? &q->horizon
		    : !strcmp(a, "--eval-n")  ? &q->eval_n
					      : &q->nll_samples;
	return parse_long(a, argv[*i], dst == &q->horizon ? 0 : 1, dst, err);
}

enum vb_status counterfactual_command(int argc, char **argv, FILE *log,
				      struct vb_error *err)
{
	struct counterfactual_request q;
	bool quiet = false;
	enum vb_status st = VB_OK;
	counterfactual_defaults(&q);
	for (int i = 0; st == VB_OK && i < argc; i++) {
		const char *a = argv[i];
		bool used = false;
		if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			quiet = true;
		} else if (!strcmp(a, "--variant-job") && i + 1 < argc) {
			/* internal: one variant for the other build's binary */
			return cf_run_job(argv[i + 1], err);
		} else if ((st = counterfactual_option(argc, argv, &i, &q,
							&used, err)) != VB_OK ||
			   used) {
			continue;
		} else if (a[0] == '-') {
			return vb_fail(err, VB_ERR_USAGE, "unknown option "
				       "'%s'", a);
		} else if (!q.run_dir) {
			q.run_dir = a;
		} else {
			return vb_fail(err, VB_ERR_USAGE, "unexpected argument "
				       "'%s'", a);
		}
	}
	if (st != VB_OK)
		return st;
	if (!q.run_dir)
		return vb_fail(err, VB_ERR_USAGE, "counterfactual needs "
			       "RUN_DIR");
	return counterfactual_run(&q, stdout, quiet ? NULL : log, err);
}
