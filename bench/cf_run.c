/* cf_run: running a counterfactual's variants: the start checkpoint
 * (bridged from an earlier one when needed), one variant from it with its
 * per-step record and held-out measures, the parameter distances to the
 * unchanged variant. The variants are cf.c's, the files cf_verdict.c's. */
#include "cf_run.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
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
 * at v->final. The NLL's draws come from a stream of their own, the
 * same for every variant. */
static enum vb_status evaluate(struct cf *cf, struct cf_variant *v,
			       struct vb_error *err)
{
	const struct config *c = &v->c;
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

	v->eval_recon = v->eval_nll = NAN;
	runconfig_model(c, &cf->d.train, &mc);
	st = model_create(&mc, &m, err);
	if (st == VB_OK)
		st = load_params(m, v->final, true, err);
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
		v->eval_recon = sr / (double)n;
		v->eval_nll = sn / (double)n;
	}
	/* a broken model whose evaluation fails numerically (a metric
	 * Cholesky, say) is a result: NaN measures, as for NaN parameters */
	if (st == VB_ERR_NUMERIC) {
		v->eval_recon = v->eval_nll = NAN;
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

enum vb_status cf_run_variant(struct cf *cf, struct cf_variant *v,
			      struct vb_error *err)
{
	struct train_options o;
	double t0 = files_now();
	long snap = cf->orig.orig_step - 1;
	enum vb_status st;
	v->step = calloc(cf->cap, sizeof *v->step);
	v->loss = calloc(cf->cap, sizeof *v->loss);
	v->gnorm = calloc(cf->cap, sizeof *v->gnorm);
	v->zmax = calloc(cf->cap, sizeof *v->zmax);
	v->cap = cf->cap;
	if (!v->step || !v->loss || !v->gnorm || !v->zmax)
		return vb_fail(err, VB_ERR_NOMEM, "counterfactual: no memory");
	v->max_z = v->max_g = -INFINITY;
	snprintf(v->final, sizeof v->final, "%s/.final-%zu.safetensors",
		 cf->dir, (size_t)(v - cf->v));
	if (snap > cf->start_step)
		snprintf(v->snap, sizeof v->snap, "%s/.snap-%zu.safetensors",
			 cf->dir, (size_t)(v - cf->v));
	else
		snprintf(v->snap, sizeof v->snap, "%s", cf->start);
	remove(v->final);
	if (snap > cf->start_step)
		remove(v->snap);
	memset(&o, 0, sizeof o);
	o.resume = cf->start;
	o.stop_step = cf->end_step;
	o.anomaly = true;
	o.replay = true;
	o.final_checkpoint = v->final;
	o.snapshot = snap > cf->start_step ? v->snap : NULL;
	o.snapshot_step = snap;
	o.on_step = on_step;
	o.on_step_ctx = v;
	st = train_run_opts(&v->c, &cf->d, &o, &v->sum, NULL, err);
	if (st == VB_OK)
		st = evaluate(cf, v, err);
	v->seconds = files_now() - t0;
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
	return st;
}

/* ||p - p0|| / ||p0|| over the flat parameters, in double, of the
 * snapshots at step E - 1 (NAN when a snapshot is missing). */
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
