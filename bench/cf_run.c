/* cf_run: running a counterfactual's variants: the start checkpoint
 * (bridged from an earlier one when needed), one variant from it with its
 * per-step record and held-out measures, the parameter distances to the
 * unchanged variant. The variants are cf.c's, the files cf_verdict.c's. */
#include "cf_run.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint.h"
#include "counterfactual.h"
#include "files.h"
#include "forensics.h"
#include "model.h"
#include "params.h"
#include "preprocess.h"
#include "rng.h"
#include "runconfig.h"
#include "sweep.h"

/* ---- the start point ---- */

/* The start: the last resume checkpoint at or before min(E - W, lead -
 * 1). The run keeps only step 0 and its latest checkpoint, so when the
 * one found is earlier, an unchanged bridge run from it writes the full
 * state at the start step (never an epoch's last step, whose resume point
 * lies after the epoch's end and evaluation). */
enum vb_status cf_run_find_start(struct cf *cf, FILE *log,
				 struct vb_error *err)
{
	long e = cf->orig.orig_step, target = e - cf->q->window;
	struct train_options o;
	struct train_summary s;
	enum vb_status st;
	if (!cf->q->no_lead && cf->orig.orig_lead_step > 0 &&
	    cf->orig.orig_lead_step - 1 < target)
		target = cf->orig.orig_lead_step - 1;
	if (target < 0)
		target = 0;
	st = forensics_find_checkpoint(cf->q->run_dir, target + 1, cf->ckpt,
				       sizeof cf->ckpt, &cf->ckpt_step, err);
	if (st != VB_OK)
		return st;
	if (cf->ckpt_step < target && target % cf->spe == 0)
		target--;
	cf->start_step = target;
	if (cf->ckpt_step == target) {
		snprintf(cf->start, sizeof cf->start, "%s", cf->ckpt);
		return VB_OK;
	}
	snprintf(cf->start, sizeof cf->start, "%s/start.safetensors", cf->dir);
	memset(&o, 0, sizeof o);
	o.resume = cf->ckpt;
	o.stop_step = target;
	o.replay = true;
	o.snapshot = cf->start;
	o.snapshot_step = target;
	if (log)
		fprintf(log, "counterfactual: bridge from step %ld to step "
			"%ld (unchanged)\n", cf->ckpt_step, target);
	st = train_run_opts(&cf->base, &cf->d, &o, &s, NULL, err);
	/* an event after the snapshot (the evaluation that ends the
	 * stopped epoch) is not the bridge's business */
	if (st == VB_OK && !files_exists(cf->start))
		st = vb_fail(err, VB_ERR_NUMERIC, "counterfactual: the bridge "
			     "run from step %ld did not reach step %ld "
			     "cleanly (%s at step %ld, %ld steps)",
			     cf->ckpt_step, target,
			     s.first.set ? s.first.quantity : "no event",
			     s.first.step, s.steps);
	cf->bridged = true;
	return st;
}

/* ---- one variant ---- */

static void on_step(void *ctx, const struct train_step_info *s)
{
	struct cf_variant *v = ctx;
	size_t i = v->n;
	if (i >= v->cap)
		return; /* cannot happen: cap covers start..end steps */
	v->step[i] = (double)s->step;
	v->loss[i] = s->loss;
	v->gnorm[i] = s->grad_norm;
	v->zmax[i] = s->max_abs_z;
	v->pmax[i] = s->max_abs_param;
	v->n = i + 1;
	if (isfinite(s->max_abs_z) && !(s->max_abs_z <= v->max_z))
		v->max_z = s->max_abs_z;
	else if (!isfinite(s->max_abs_z) && s->max_abs_z == s->max_abs_z)
		v->max_z = s->max_abs_z;
	if (isfinite(s->grad_norm) && !(s->grad_norm <= v->max_g))
		v->max_g = s->grad_norm;
	else if (isinf(s->grad_norm))
		v->max_g = s->grad_norm;
}

/* Parameters of checkpoint path into m. */
static enum vb_status load_params(struct model *m, const char *path,
				  bool with_state, struct vb_error *err)
{
	struct checkpoint *ck = NULL;
	struct params *p = m->params;
	enum vb_status st = checkpoint_open(path, &ck, err);
	for (size_t i = 0; st == VB_OK && i < p->n_entries; i++) {
		const struct params_entry *pe = &p->entries[i];
		st = checkpoint_read_real(ck, pe->name, pe->ndim, pe->shape,
					  p->data + pe->offset, err);
	}
	if (st == VB_OK && with_state)
		st = model_load_state(m, ck, err);
	checkpoint_close(ck);
	return st;
}

/* The preprocessing (fitted on the training range, as the run's) and a
 * tape for evaluation batches of B images of D pixels under config c. */
static enum vb_status eval_setup(const struct cf *cf, const struct config *c,
				 size_t B, size_t D, struct preprocess *prep,
				 struct graph **g, struct vb_error *err)
{
	enum vb_status st;
	st = preprocess_fit(prep, &cf->d.train, c->data.scale,
			    c->data.standardize, c->data.standardize_eps,
			    runconfig_nonfinite(c), err);
	if (st == VB_OK)
		st = graph_create(B * (D > (size_t)c->model.hidden
					       ? D
					       : (size_t)c->model.hidden) *
					  sizeof(vb_real) * 40,
				  g, err);
	if (st == VB_OK)
		st = runconfig_graph(c, *g, err);
	return st;
}

/* Held-out reconstruction error (bce or sse as model.recon) and IS-NLL,
 * means over the first eval_n images of the eval range, of the model
 * under c with the parameters of checkpoint path, into *recon, *nll. The
 * NLL's draws come from a stream of their own, the same for every
 * variant. */
static enum vb_status evaluate(struct cf *cf, const struct config *c,
			       const char *path, double *recon, double *nll_out,
			       struct vb_error *err)
{
	const struct dataset *ds = &cf->d.eval;
	size_t n = ds->n < (size_t)cf->q->eval_n ? ds->n
						   : (size_t)cf->q->eval_n;
	size_t B = (size_t)c->train.eval_batch, D = ds->d;
	struct model_config mc;
	struct model *m = NULL;
	struct graph *g = NULL;
	struct preprocess prep = {0};
	vb_real *x = NULL;
	size_t *idx = NULL;
	double *sse = NULL, *bce = NULL, *nll = NULL, sr = 0, sn = 0;
	struct rng r;
	enum vb_status st;

	*recon = *nll_out = NAN;
	runconfig_model(c, &cf->d.train, &mc);
	st = model_create(&mc, &m, err);
	if (st == VB_OK)
		st = load_params(m, path, true, err);
	if (st == VB_OK && !isfinite(guard_max_abs(m->params->data,
						    m->params->n)))
		goto done; /* a dead model: NaN by definition */
	if (st == VB_OK)
		st = eval_setup(cf, c, B, D, &prep, &g, err);
	x = malloc(B * D * sizeof *x);
	idx = malloc(B * sizeof *idx);
	sse = malloc(B * sizeof *sse);
	bce = malloc(B * sizeof *bce);
	nll = malloc(B * sizeof *nll);
	if (st == VB_OK && (!x || !idx || !sse || !bce || !nll))
		st = vb_fail(err, VB_ERR_NOMEM, "counterfactual: no memory");
	rng_seed(&r, c->train.seed, RNG_STREAM_INJECT);
	for (size_t b0 = 0; st == VB_OK && b0 < n; b0 += B) {
		size_t nb = n - b0 < B ? n - b0 : B;
		for (size_t i = 0; i < nb; i++)
			idx[i] = b0 + i;
		dataset_batch(ds, idx, nb, (vb_real)c->data.scale, x);
		st = preprocess_apply(&prep, x, nb, NULL, err);
		if (st == VB_OK)
			st = model_recon_error(m, g, x, nb, sse, bce, err);
		if (st == VB_OK)
			st = model_nll(m, g, x, nb,
				       (size_t)cf->q->nll_samples, B, &r, nll,
				       err);
		for (size_t i = 0; st == VB_OK && i < nb; i++) {
			sr += c->model.recon == MODEL_RECON_BCE ? bce[i]
								 : sse[i];
			sn += nll[i];
		}
	}
	if (st == VB_OK && n > 0) {
		*recon = sr / (double)n;
		*nll_out = sn / (double)n;
	}
	/* a broken model whose evaluation fails numerically (a metric
	 * Cholesky, say) is a result: NaN measures, as for NaN parameters */
	if (st == VB_ERR_NUMERIC) {
		*recon = *nll_out = NAN;
		st = VB_OK;
	}
done:
	free(x);
	free(idx);
	free(sse);
	free(bce);
	free(nll);
	graph_free(g);
	preprocess_free(&prep);
	model_free(m);
	return st;
}

/* The per-step slots of v, its extremes reset. */
static enum vb_status variant_alloc(struct cf *cf, struct cf_variant *v,
				    struct vb_error *err)
{
	v->step = calloc(cf->cap, sizeof *v->step);
	v->loss = calloc(cf->cap, sizeof *v->loss);
	v->gnorm = calloc(cf->cap, sizeof *v->gnorm);
	v->zmax = calloc(cf->cap, sizeof *v->zmax);
	v->pmax = calloc(cf->cap, sizeof *v->pmax);
	v->cap = cf->cap;
	v->n = 0;
	v->max_z = v->max_g = -INFINITY;
	if (!v->step || !v->loss || !v->gnorm || !v->zmax || !v->pmax)
		return vb_fail(err, VB_ERR_NOMEM, "counterfactual: no memory");
	return VB_OK;
}

/* v's end-state and snapshot files (unless preset: a sibling's job). */
static void variant_paths(const struct cf *cf, struct cf_variant *v)
{
	size_t k = (size_t)(v - cf->v);
	if (!v->final[0])
		snprintf(v->final, sizeof v->final,
			 "%s/.final-%zu.safetensors", cf->dir, k);
	if (v->snap[0])
		return;
	if (cf->ref_step > cf->start_step)
		snprintf(v->snap, sizeof v->snap, "%s/.snap-%zu.safetensors",
			 cf->dir, k);
	else
		snprintf(v->snap, sizeof v->snap, "%s", cf->start);
}

/* The loss summary and the extremes' "none" as NaN. */
static void variant_finish(struct cf_variant *v)
{
	if (v->n > 0) {
		v->loss_first = v->loss[0];
		v->loss_last = v->loss[v->n - 1];
		v->loss_max = -INFINITY;
		for (size_t i = 0; i < v->n; i++) /* over finite losses */
			if (isfinite(v->loss[i]) && v->loss[i] > v->loss_max)
				v->loss_max = v->loss[i];
		if (v->loss_max == -INFINITY)
			v->loss_max = NAN;
	} else {
		v->loss_first = v->loss_last = v->loss_max = NAN;
	}
	if (v->max_z == -INFINITY)
		v->max_z = NAN;
	if (v->max_g == -INFINITY)
		v->max_g = NAN;
}

static enum vb_status run_sibling(struct cf *cf, struct cf_variant *v,
				  struct vb_error *err);

enum vb_status cf_run_variant(struct cf *cf, struct cf_variant *v,
			      struct vb_error *err)
{
	struct train_options o;
	double t0 = files_now();
	bool own_snap;
	enum vb_status st = variant_alloc(cf, v, err);
	if (st != VB_OK)
		return st;
	variant_paths(cf, v);
	own_snap = strcmp(v->snap, cf->start) != 0;
	remove(v->final);
	if (own_snap)
		remove(v->snap);
	if (!sweep_precision_here(v->c.train.precision)) {
		st = run_sibling(cf, v, err);
		v->seconds = files_now() - t0;
		variant_finish(v);
		return st;
	}
	memset(&o, 0, sizeof o);
	o.resume = cf->start;
	o.stop_step = cf->end_step;
	o.anomaly = true;
	o.replay = true;
	o.final_checkpoint = v->final;
	o.clip_fresh = v->c.optim.clip != cf->base.optim.clip;
	o.snapshot = own_snap ? v->snap : NULL;
	o.snapshot_step = cf->ref_step;
	o.on_step = on_step;
	o.on_step_ctx = v;
	st = train_run_opts(&v->c, &cf->d, &o, &v->sum, NULL, err);
	if (st == VB_OK)
		st = evaluate(cf, &v->c, v->final, &v->eval_recon,
			      &v->eval_nll, err);
	v->seconds = files_now() - t0;
	variant_finish(v);
	return st;
}

enum vb_status cf_run_reference(struct cf *cf, struct vb_error *err)
{
	struct cf_variant *v = &cf->v[0];
	struct train_options o;
	struct train_summary s;
	long last = cf->start_step;
	enum vb_status st;
	for (size_t i = 0; i < v->n && (long)v->step[i] <= cf->ref_step &&
			   isfinite(v->pmax[i]); i++)
		last = (long)v->step[i];
	if (last == cf->ref_step)
		return evaluate(cf, &v->c, v->snap, &cf->ref_recon,
				&cf->ref_nll, err);
	cf->ref_step = last;
	cf->ref_moved = true;
	if (strcmp(v->snap, cf->start) != 0)
		remove(v->snap);
	if (last == cf->start_step) {
		snprintf(v->snap, sizeof v->snap, "%s", cf->start);
		return evaluate(cf, &v->c, v->snap, &cf->ref_recon,
				&cf->ref_nll, err);
	}
	/* the same run as the variant's, stopped at the reference step */
	memset(&o, 0, sizeof o);
	o.resume = cf->start;
	o.stop_step = last;
	o.anomaly = true;
	o.replay = true;
	o.snapshot = v->snap;
	o.snapshot_step = last;
	st = train_run_opts(&v->c, &cf->d, &o, &s, NULL, err);
	if (st == VB_OK && !files_exists(v->snap))
		st = vb_fail(err, VB_ERR_NUMERIC, "counterfactual: the "
			     "unchanged variant's rerun to step %ld (its last "
			     "finite parameters) wrote no snapshot", last);
	if (st == VB_OK)
		st = evaluate(cf, &v->c, v->snap, &cf->ref_recon,
			      &cf->ref_nll, err);
	return st;
}

/* ||p - p0|| / ||p0|| over the flat parameters, in double, of the
 * snapshots after step cf->ref_step (NAN when a snapshot is missing). */
enum vb_status cf_run_distances(struct cf *cf, struct vb_error *err)
{
	struct model_config mc;
	struct model *m = NULL;
	vb_real *p0 = NULL;
	size_t n;
	enum vb_status st;
	runconfig_model(&cf->base, &cf->d.train, &mc);
	st = model_create(&mc, &m, err);
	if (st != VB_OK)
		return st;
	n = m->params->n;
	p0 = malloc(n * sizeof *p0);
	if (!p0) {
		model_free(m);
		return vb_fail(err, VB_ERR_NOMEM, "counterfactual: no memory");
	}
	st = load_params(m, cf->v[0].snap, false, err);
	if (st == VB_OK)
		memcpy(p0, m->params->data, n * sizeof *p0);
	for (size_t i = 0; st == VB_OK && i < cf->n_v; i++) {
		double dd = 0, d0 = 0;
		struct cf_variant *v = &cf->v[i];
		if (!files_exists(v->snap)) {
			v->dist = NAN;
			continue;
		}
		st = load_params(m, v->snap, false, err);
		for (size_t k = 0; st == VB_OK && k < n; k++) {
			double a = (double)m->params->data[k] - (double)p0[k];
			dd += a * a;
			d0 += (double)p0[k] * (double)p0[k];
		}
		v->dist = sqrt(dd) / sqrt(d0);
	}
	free(p0);
	model_free(m);
	return st;
}

/* ---- a variant in the sibling binary (train.precision = f64 from the
 * float build) ----
 * The parent writes a job file (one "key value" a line), starts
 * "SIBLING counterfactual --variant-job JOB" and reads JOB.out back. The
 * sibling loads the same start checkpoint (checkpoint_read_real converts
 * F32 to its F64; RNG states, permutation and counters are integers), so
 * the variant sees the same batches and draws, computed in double. Both
 * binaries come from one build: enums travel as integers, reals as %a. */

struct cf_job {
	char run_dir[1100], name[CF_NAME_LEN], sets[CF_SETS_LEN];
	char start[1300], final[1300], snap[1300], out[1300];
	long start_step, end_step, ref_step, eval_n, nll_samples;
};

static enum vb_status write_job(FILE *f, void *ctx, struct vb_error *err)
{
	const struct cf_job *j = ctx;
	(void)err;
	fprintf(f, "run_dir %s\nname %s\nsets %s\nstart %s\nfinal %s\n"
		"snap %s\nout %s\nstart_step %ld\nend_step %ld\nref_step %ld\n"
		"eval_n %ld\nnll_samples %ld\n", j->run_dir, j->name, j->sets,
		j->start, j->final, j->snap, j->out, j->start_step,
		j->end_step, j->ref_step, j->eval_n, j->nll_samples);
	return VB_OK;
}

static enum vb_status read_job(const char *path, struct cf_job *j,
			       struct vb_error *err)
{
	struct {
		const char *key;
		char *s;
		size_t cap;
		long *l;
	} k[] = {
		{"run_dir", j->run_dir, sizeof j->run_dir, NULL},
		{"name", j->name, sizeof j->name, NULL},
		{"sets", j->sets, sizeof j->sets, NULL},
		{"start", j->start, sizeof j->start, NULL},
		{"final", j->final, sizeof j->final, NULL},
		{"snap", j->snap, sizeof j->snap, NULL},
		{"out", j->out, sizeof j->out, NULL},
		{"start_step", NULL, 0, &j->start_step},
		{"end_step", NULL, 0, &j->end_step},
		{"ref_step", NULL, 0, &j->ref_step},
		{"eval_n", NULL, 0, &j->eval_n},
		{"nll_samples", NULL, 0, &j->nll_samples}};
	size_t nk = sizeof k / sizeof *k, found = 0;
	char *text = NULL, *save = NULL;
	enum vb_status st = files_read(path, &text, NULL, err);
	memset(j, 0, sizeof *j);
	for (char *ln = st == VB_OK ? strtok_r(text, "\n", &save) : NULL; ln;
	     ln = strtok_r(NULL, "\n", &save))
		for (size_t i = 0; i < nk; i++) {
			size_t n = strlen(k[i].key);
			if (strncmp(ln, k[i].key, n) != 0 || ln[n] != ' ')
				continue;
			if (k[i].s)
				snprintf(k[i].s, k[i].cap, "%s", ln + n + 1);
			else
				*k[i].l = strtol(ln + n + 1, NULL, 10);
			found++;
		}
	free(text);
	if (st == VB_OK && found != nk)
		st = vb_fail(err, VB_ERR_USAGE, "counterfactual: %s: not a "
			     "variant job (%zu of %zu keys)", path, found, nk);
	return st;
}

/* JOB.out: the summary's event, the held-out measures, the steps. */
enum vb_status cf_result_write(FILE *f, void *ctx, struct vb_error *err)
{
	const struct cf_variant *v = ctx;
	const struct guard_event *e = &v->sum.first;
	(void)err;
	/* the three names after '>': an empty one is still a line */
	fprintf(f, "%d %ld %d %ld %ld %d %d %a\n>%s\n>%s\n>%s\n%a %a\n%zu\n",
		(int)v->sum.status, v->sum.skipped, e->set ? 1 : 0, e->step,
		e->epoch, (int)e->phase, (int)e->cause, e->value, e->quantity,
		e->op, e->node, v->eval_recon, v->eval_nll, v->n);
	for (size_t i = 0; i < v->n; i++)
		fprintf(f, "%ld %a %a %a %a\n", (long)v->step[i], v->loss[i],
			v->gnorm[i], v->zmax[i], v->pmax[i]);
	return VB_OK;
}

/* One line ">TEXT" of cf_result_write into buf (cap bytes), TEXT only. */
static bool read_line(FILE *f, char *buf, size_t cap)
{
	char line[512];
	if (!fgets(line, (int)sizeof line, f) || line[0] != '>')
		return false;
	size_t len = strcspn(line + 1, "\n");
	if (len >= cap)
		len = cap - 1;
	memcpy(buf, line + 1, len);
	buf[len] = '\0';
	return true;
}

enum vb_status cf_result_read(const char *path, struct cf_variant *v,
				  struct vb_error *err)
{
	struct guard_event *e = &v->sum.first;
	FILE *f = fopen(path, "r");
	int status, set, phase, cause;
	size_t n = 0;
	bool ok = f != NULL;
	memset(&v->sum, 0, sizeof v->sum);
	ok = ok && fscanf(f, "%d %ld %d %ld %ld %d %d %la%*[^\n]", &status,
			  &v->sum.skipped, &set, &e->step, &e->epoch, &phase,
			  &cause, &e->value) == 8 && fgetc(f) == '\n';
	ok = ok && read_line(f, e->quantity, sizeof e->quantity) &&
	     read_line(f, e->op, sizeof e->op) &&
	     read_line(f, e->node, sizeof e->node);
	ok = ok && fscanf(f, "%la %la %zu", &v->eval_recon, &v->eval_nll,
			  &n) == 3 && n <= v->cap;
	for (size_t i = 0; ok && i < n; i++) {
		struct train_step_info in;
		long step;
		ok = fscanf(f, "%ld %la %la %la %la", &step, &in.loss,
			    &in.grad_norm, &in.max_abs_z,
			    &in.max_abs_param) == 5;
		in.step = step;
		if (ok)
			on_step(v, &in);
	}
	if (f)
		fclose(f);
	if (!ok)
		return vb_fail(err, VB_ERR_DATA, "counterfactual: %s: not a "
			       "variant result", path);
	v->sum.status = (enum guard_status)status;
	e->set = set != 0;
	e->phase = (enum guard_phase)phase;
	e->cause = (enum guard_cause)cause;
	return VB_OK;
}

/* Runs argv[0] with argv, waits; its exit code, or -1. */
static int spawn_wait(char **argv)
{
	int rc;
	pid_t pid;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &rc, 0) != pid)
		return -1;
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static enum vb_status run_sibling(struct cf *cf, struct cf_variant *v,
				  struct vb_error *err)
{
	struct cf_job j;
	char bin[PATH_MAX], path[1400];
	char *argv[5];
	size_t k = (size_t)(v - cf->v);
	int rc;
	enum vb_status st = sweep_sibling_binary(v->c.train.precision, bin,
						 sizeof bin, err);
	if (st != VB_OK)
		return st;
	memset(&j, 0, sizeof j);
	snprintf(j.run_dir, sizeof j.run_dir, "%s", cf->q->run_dir);
	snprintf(j.name, sizeof j.name, "%s", v->name);
	snprintf(j.sets, sizeof j.sets, "%s", v->sets);
	snprintf(j.start, sizeof j.start, "%s", cf->start);
	snprintf(j.final, sizeof j.final, "%s", v->final);
	snprintf(j.snap, sizeof j.snap, "%s", v->snap);
	snprintf(j.out, sizeof j.out, "%s/.job-%zu.out", cf->dir, k);
	j.start_step = cf->start_step;
	j.end_step = cf->end_step;
	j.ref_step = cf->ref_step;
	j.eval_n = cf->q->eval_n;
	j.nll_samples = cf->q->nll_samples;
	snprintf(path, sizeof path, "%s/.job-%zu", cf->dir, k);
	remove(j.out);
	st = files_write_with(path, write_job, &j, false, err);
	argv[0] = bin;
	argv[1] = (char *)"counterfactual";
	argv[2] = (char *)"--variant-job";
	argv[3] = path;
	argv[4] = NULL;
	rc = st == VB_OK ? spawn_wait(argv) : 0;
	if (st == VB_OK && rc != 0)
		st = vb_fail(err, VB_ERR_IO, "counterfactual: variant %s in "
			     "%s: exit code %d (its message above)", v->name,
			     bin, rc);
	if (st == VB_OK)
		st = cf_result_read(j.out, v, err);
	remove(path);
	remove(j.out);
	return st;
}

/* The sibling's side: cf holds the run (base config, data) and v the
 * variant of job j. */
static enum vb_status job_open(struct cf *cf, const struct cf_job *j,
			       struct vb_error *err)
{
	struct cf_variant *v = &cf->v[0];
	char path[1300];
	enum vb_status st;
	config_defaults(&cf->base);
	snprintf(path, sizeof path, "%s/config.ini", j->run_dir);
	st = config_load_file(&cf->base, path, err);
	if (st == VB_OK)
		st = config_validate(&cf->base, err);
	snprintf(cf->dir, sizeof cf->dir, "%s/counterfactual", j->run_dir);
	snprintf(cf->start, sizeof cf->start, "%s", j->start);
	cf->start_step = j->start_step;
	cf->end_step = j->end_step;
	cf->ref_step = j->ref_step;
	cf->cap = (size_t)(j->end_step - j->start_step) + 2;
	cf->n_v = 1;
	snprintf(v->name, sizeof v->name, "%s", j->name);
	snprintf(v->final, sizeof v->final, "%s", j->final);
	snprintf(v->snap, sizeof v->snap, "%s", j->snap);
	v->c = cf->base;
	if (st == VB_OK)
		st = cf_variant_apply(v, j->sets, err);
	if (st == VB_OK)
		st = config_validate(&v->c, err);
	if (st == VB_OK && !sweep_precision_here(v->c.train.precision))
		st = vb_fail(err, VB_ERR_CONFIG, "counterfactual: variant %s: "
			     "this binary (%s) does not compute its "
			     "train.precision either", v->name, VB_REAL_NAME);
	if (st == VB_OK)
		st = train_data_load(&cf->base, &cf->d, err);
	return st;
}

enum vb_status cf_run_job(const char *job, struct vb_error *err)
{
	struct counterfactual_request q;
	struct cf *cf = calloc(1, sizeof *cf);
	struct cf_variant *v;
	struct cf_job j;
	enum vb_status st = cf ? read_job(job, &j, err)
			       : vb_fail(err, VB_ERR_NOMEM,
					 "counterfactual: no memory");
	if (st != VB_OK) {
		free(cf);
		return st;
	}
	counterfactual_defaults(&q);
	q.run_dir = j.run_dir;
	q.eval_n = j.eval_n;
	q.nll_samples = j.nll_samples;
	cf->q = &q;
	v = &cf->v[0];
	st = job_open(cf, &j, err);
	if (st == VB_OK)
		st = cf_run_variant(cf, v, err);
	if (st == VB_OK)
		st = files_write_with(j.out, cf_result_write, v, false, err);
	free(v->step);
	free(v->loss);
	free(v->gnorm);
	free(v->zmax);
	free(v->pmax);
	train_data_free(&cf->d);
	free(cf);
	return st;
}
