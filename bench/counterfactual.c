/* counterfactual: which mitigation, switched on shortly before a run's
 * first non-finite event, would have prevented it, and at what cost
 * (issue 18). Every variant resumes from the same checkpoint (parameters,
 * Adam moments, RNG states, the epoch's permutation), so it sees the
 * original's batches and draws; the unchanged one must reproduce the
 * original event bit for bit. Training is train.c's (train_run_opts with
 * resume, stop, snapshot and per-step options); the held-out measures are
 * models/nll.c's; drawing is plot.c's. */
#include "counterfactual.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint.h"
#include "files.h"
#include "forensics.h"
#include "model.h"
#include "params.h"
#include "plot.h"
#include "preprocess.h"
#include "replay.h"
#include "rng.h"
#include "runconfig.h"
#include "sweep_plan.h"
#include "table.h"
#include "train.h"

#define CF_MAX_VARIANTS 64
#define CF_SETS_LEN 512

/* ---- which settings can change mid-run ---- */

/* Keys a variant may change: they act on the step (gradient treatment,
 * update rule, non-finite policy, the forward's clamps and activations)
 * and leave the parameter shapes, the data and the random draws alone. */
static const char *const switchable[] = {
	"optim.lr", "optim.clip", "optim.clip_max", "optim.clip_eps",
	"optim.adam_eps", "optim.weight_decay", "train.skip_nonfinite",
	"train.loss_scale", "train.scale_init", "train.scale_growth",
	"train.scale_backoff", "train.scale_interval", "train.precision",
	"train.flush_denormals", "model.logvar_clamp", "model.logvar_min",
	"model.logvar_max", "model.sigma", "model.bce_eps", "rhvae.grad_clip",
	"rhvae.diag_activation", "rhvae.logdet_jitter", "rhvae.second_order",
	"rhvae.regularization",
};

/* A refused key's reason, by key or section. */
static const struct {
	const char *prefix;
	const char *why;
} refused[] = {
	{"train.batch", "it changes which images each step sees, so the "
			"variants would not share the original's batches"},
	{"train.accumulate", "it changes which images each step sees, so the "
			     "variants would not share the original's "
			     "batches"},
	{"train.seed", "it changes the random draws the variants must share"},
	{"train.shuffle", "it changes the epoch's permutation the variants must "
			  "share"},
	{"train.epochs", "the horizon is --horizon"},
	{"train.max_steps", "the horizon is --horizon"},
	{"train.nan_check", "it changes what counts as the event being tested"},
	{"train.eval", "evaluation is --eval-n / --nll-samples"},
	{"train.sanity_check", "it happens before step 1 only"},
	{"train.blas_threads", "it changes no result"},
	{"optim.kind", "the checkpoint's optimiser state belongs to the "
		       "original optimiser"},
	{"optim.schedule", "a schedule is a function of the whole run"},
	{"model.", "it changes the network or its parameter shapes, which the "
		   "checkpoint's parameters must fit"},
	{"nets.", "it changes the network or its parameter shapes, which the "
		  "checkpoint's parameters must fit"},
	{"anchor.", "it changes the model the checkpoint was trained as"},
	{"hvae.", "it changes the model the checkpoint was trained as"},
	{"rhvae.n_lf", "it changes the number of momentum draws per step, so "
		       "the variants would not share the random draws"},
	{"rhvae.buffer", "it changes the model state the checkpoint holds"},
	{"rhvae.", "it changes the model the checkpoint was trained as"},
	{"data.", "it changes the data the variants must share"},
	{"inject.", "fault injection is part of the original run"},
	{"run.", "it says where output goes, not what is computed"},
	{"guard.", "the variants run in anomaly mode already"},
};

bool counterfactual_key_switchable(const char *key, char *why, size_t cap)
{
	for (size_t i = 0; i < sizeof switchable / sizeof *switchable; i++)
		if (!strcmp(key, switchable[i]))
			return true;
	for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
		if (!strncmp(key, refused[i].prefix,
			     strlen(refused[i].prefix))) {
			snprintf(why, cap, "%s cannot change mid-run: %s",
				 key, refused[i].why);
			return false;
		}
	snprintf(why, cap, "%s cannot change mid-run: not among the "
		 "settings known to act on a step alone", key);
	return false;
}

void counterfactual_defaults(struct counterfactual_request *q)
{
	memset(q, 0, sizeof *q);
	q->window = COUNTERFACTUAL_WINDOW;
	q->horizon = -1;
	q->eval_n = COUNTERFACTUAL_EVAL_N;
	q->nll_samples = COUNTERFACTUAL_NLL_SAMPLES;
}

/* ---- variants ---- */

struct cf_variant {
	char name[COUNTERFACTUAL_NAME_LEN];
	char sets[CF_SETS_LEN]; /* "k=v k=v" ("" unchanged) */
	struct config c;
	/* results */
	struct train_summary sum;
	double max_z, max_g, loss_first, loss_max, loss_last;
	double eval_recon, eval_nll, dist, seconds;
	size_t n, cap;     /* steps recorded, slots */
	double *step, *loss, *gnorm, *zmax; /* (cap) per step */
	char final[1300], snap[1300];
};

struct cf {
	const struct counterfactual_request *q;
	struct config base;
	struct replay_report orig;
	struct train_data d;
	char dir[1200];          /* RUN_DIR/counterfactual */
	char ckpt[1200];         /* the run's checkpoint the start came from */
	long ckpt_step;
	char start[1300];        /* the start checkpoint */
	long start_step, end_step, spe, horizon;
	bool bridged;
	struct cf_variant v[CF_MAX_VARIANTS];
	size_t n_v;
	size_t cap;              /* per-step slots of each variant */
	char notes[4096];        /* variants not run, one line each */
};

/* Applies "k=v" to c after checking the key may switch mid-run. */
static enum vb_status apply_set(struct config *c, const char *key,
				const char *value, struct vb_error *err)
{
	char why[400];
	if (!counterfactual_key_switchable(key, why, sizeof why))
		return vb_fail(err, VB_ERR_CONFIG, "counterfactual: %s", why);
	return config_set_key(c, key, value, err);
}

static enum vb_status add_variant(struct cf *cf, const char *name,
				  struct cf_variant **out,
				  struct vb_error *err)
{
	struct cf_variant *v;
	for (size_t i = 0; i < cf->n_v; i++)
		if (!strcmp(cf->v[i].name, name))
			return vb_fail(err, VB_ERR_USAGE, "counterfactual: "
				       "variant %s given twice", name);
	if (cf->n_v == CF_MAX_VARIANTS)
		return vb_fail(err, VB_ERR_USAGE, "counterfactual: more than "
			       "%d variants", CF_MAX_VARIANTS);
	v = &cf->v[cf->n_v++];
	memset(v, 0, sizeof *v);
	snprintf(v->name, sizeof v->name, "%s", name);
	v->c = cf->base;
	*out = v;
	return VB_OK;
}

/* Adds "k=v" to v (checked) and to its settings text. */
static enum vb_status variant_set(struct cf_variant *v, const char *key,
				  const char *value, struct vb_error *err)
{
	enum vb_status st = apply_set(&v->c, key, value, err);
	size_t len = strlen(v->sets);
	if (st == VB_OK)
		snprintf(v->sets + len, sizeof v->sets - len, "%s%s=%s",
			 len ? " " : "", key, value);
	return st;
}

/* An inline "k=v[,k=v ...]" (also separated by spaces). */
static enum vb_status add_inline(struct cf *cf, const char *text,
				 struct vb_error *err)
{
	char buf[CF_SETS_LEN], name[COUNTERFACTUAL_NAME_LEN];
	struct cf_variant *v;
	enum vb_status st;
	char *save = NULL;
	snprintf(buf, sizeof buf, "%s", text);
	snprintf(name, sizeof name, "%s", text);
	for (char *p = name; *p; p++)
		if (*p == ' ')
			*p = ',';
	st = add_variant(cf, name, &v, err);
	for (char *t = strtok_r(buf, ", ", &save); st == VB_OK && t;
	     t = strtok_r(NULL, ", ", &save)) {
		char *eq = strchr(t, '=');
		if (!eq || eq == t)
			return vb_fail(err, VB_ERR_USAGE, "counterfactual: "
				       "--try %s: expected NAME or "
				       "section.key=value", text);
		*eq = '\0';
		st = variant_set(v, t, eq + 1, err);
	}
	return st;
}

/* The built-in mitigations: every knob that can switch mid-run, with
 * the value the sweeps use. A value that the run already has, or a knob
 * its model lacks, is not tried (noted). */
#define CF_BUILTIN_SETS 2
struct cf_builtin {
	const char *name;
	const char *keys[CF_BUILTIN_SETS];
	const char *values[CF_BUILTIN_SETS]; /* NULL: computed */
	const char *needs_kind;              /* model.kind or NULL */
};

static const struct cf_builtin builtins[] = {
	{"h-grad-clip", {"rhvae.grad_clip"}, {"100"}, "rhvae"},
	{"clip-norm", {"optim.clip", "optim.clip_max"}, {"norm", "5"}, NULL},
	{"clip-value", {"optim.clip", "optim.clip_max"}, {"value", "1"},
	 NULL},
	{"lr-div10", {"optim.lr"}, {NULL}, NULL},
	{"adam-eps", {"optim.adam_eps"}, {NULL}, NULL},
	{"skip-nonfinite", {"train.skip_nonfinite"}, {"true"}, NULL},
	{"logvar-clamp", {"model.logvar_clamp"}, {"true"}, NULL},
	{"diag-softplus", {"rhvae.diag_activation"}, {"softplus"}, "rhvae"},
	{"loss-scale", {"train.loss_scale"}, {"dynamic"}, NULL},
	{"f64", {"train.precision"}, {"f64"}, NULL},
};

static void note(struct cf *cf, const char *fmt, const char *a,
		 const char *b)
{
	size_t len = strlen(cf->notes);
	snprintf(cf->notes + len, sizeof cf->notes - len, fmt, a, b);
}

static enum vb_status add_builtin(struct cf *cf, const struct cf_builtin *b,
				  bool quiet_skip, struct vb_error *err)
{
	const char *kind = config_enum_name("model.kind", cf->base.model.kind);
	char val[64], cur[64];
	struct cf_variant *v;
	enum vb_status st;
	if (b->needs_kind && strcmp(kind, b->needs_kind) != 0) {
		if (!quiet_skip)
			return vb_fail(err, VB_ERR_USAGE, "counterfactual: "
				       "--try %s: model.kind %s has no such "
				       "setting", b->name, kind);
		note(cf, "- %s: not applicable (model.kind %s)\n", b->name,
		     kind);
		return VB_OK;
	}
#ifndef VB_DOUBLE
	if (!strcmp(b->name, "f64")) {
		/* run_init refuses f64 in the float build; running it needs
		 * the sibling binary on a float checkpoint, not done yet */
		if (!quiet_skip)
			return vb_fail(err, VB_ERR_USAGE, "counterfactual: "
				       "--try f64: train.precision = f64 "
				       "needs vaebench-f64, and this is the "
				       "float build%s", "");
		note(cf, "- %s: not run: train.precision = f64 needs "
		     "vaebench-f64 (this is the float build)%s\n", b->name,
		     "");
		return VB_OK;
	}
#endif
	st = add_variant(cf, b->name, &v, err);
	for (int i = 0; st == VB_OK && i < CF_BUILTIN_SETS && b->keys[i]; i++) {
		const char *value = b->values[i];
		if (!strcmp(b->keys[i], "optim.lr")) {
			snprintf(val, sizeof val, "%.6g", cf->base.optim.lr / 10);
			value = val;
		} else if (!strcmp(b->keys[i], "optim.adam_eps")) {
			double e = cf->base.optim.adam_eps;
			snprintf(val, sizeof val, "%.6g",
				 e < 1e-4 ? 1e-4 : e * 100);
			value = val;
		}
		st = variant_set(v, b->keys[i], value, err);
	}
	if (st != VB_OK)
		return st;
	/* the same settings as the run: nothing to try */
	if (b->keys[1] == NULL &&
	    config_get(&cf->base, b->keys[0], cur, sizeof cur, err) == VB_OK) {
		char now[64];
		config_get(&v->c, b->keys[0], now, sizeof now, err);
		if (!strcmp(cur, now)) {
			cf->n_v--;
			if (!quiet_skip)
				return vb_fail(err, VB_ERR_USAGE,
					       "counterfactual: --try %s: the "
					       "run has %s already", b->name,
					       v->sets);
			note(cf, "- %s: not run: the run has %s already\n",
			     b->name, v->sets);
		}
	}
	return VB_OK;
}

/* a and b resolve to the same settings (canonical text). */
static bool same_settings(const struct config *a, const struct config *b)
{
	char ta[1200], tb[1200];
	for (size_t i = 0; i < config_key_count(); i++) {
		if (config_get_at(a, i, ta, sizeof ta, NULL) != VB_OK ||
		    config_get_at(b, i, tb, sizeof tb, NULL) != VB_OK ||
		    strcmp(ta, tb) != 0)
			return false;
	}
	return true;
}

static enum vb_status add_bundle_one(struct cf *cf,
				     const struct sweep_plan_mitigation *m,
				     bool quiet_skip, struct vb_error *err)
{
	struct cf_variant *v;
	enum vb_status st;
	char why[400];
	if (m->n_sets == 0)
		return VB_OK; /* the baseline is the unchanged variant */
	for (size_t k = 0; k < m->n_sets; k++) {
		const char *key = config_key_name((size_t)m->keys[k]);
		if (!counterfactual_key_switchable(key, why, sizeof why)) {
			if (!quiet_skip)
				return vb_fail(err, VB_ERR_CONFIG,
					       "counterfactual: %s", why);
			note(cf, "- %s: refused: %s\n", m->name, why);
			return VB_OK;
		}
	}
	st = add_variant(cf, m->name, &v, err);
	for (size_t k = 0; st == VB_OK && k < m->n_sets; k++)
		st = variant_set(v, config_key_name((size_t)m->keys[k]),
				 m->values[k], err);
	if (st == VB_OK && same_settings(&cf->base, &v->c)) {
		/* a sweep cell of this very mitigation: nothing to try */
		note(cf, "- %s: not run: the run has %s already\n", m->name,
		     v->sets);
		cf->n_v--;
	}
	return st;
}

/* The bundle's file: --mitigations, else the sweep folder's sweep.ini
 * when RUN_DIR is DIR/runs/ID; NULL when none. */
static const char *bundle_path(const struct counterfactual_request *q,
			       char *buf, size_t cap)
{
	if (q->mitigations)
		return q->mitigations;
	snprintf(buf, cap, "%s/../../sweep.ini", q->run_dir);
	return files_exists(buf) ? buf : NULL;
}

static enum vb_status build_variants(struct cf *cf, struct vb_error *err)
{
	const struct counterfactual_request *q = cf->q;
	struct sweep_plan *plan = NULL;
	char pbuf[1300];
	const char *bp = bundle_path(q, pbuf, sizeof pbuf);
	struct cf_variant *v;
	enum vb_status st;
	size_t nb = sizeof builtins / sizeof *builtins;

	if (bp) {
		st = sweep_plan_load(bp, &plan, err);
		if (st != VB_OK)
			return st;
		if (plan->n_mitigations == 0 && q->mitigations) {
			sweep_plan_free(plan);
			return vb_fail(err, VB_ERR_USAGE, "counterfactual: %s "
				       "has no [mitigations] section", bp);
		}
	}
	st = add_variant(cf, "unchanged", &v, err);
	for (size_t i = 0; st == VB_OK && i < q->n_tries; i++) {
		const char *t = q->tries[i];
		bool done = false;
		if (strchr(t, '=')) {
			st = add_inline(cf, t, err);
			continue;
		}
		if (!strcmp(t, "all")) {
			for (size_t k = 0; st == VB_OK && k < nb; k++)
				st = add_builtin(cf, &builtins[k], true, err);
			continue;
		}
		if (!strcmp(t, "mitigations")) {
			if (!plan || plan->n_mitigations == 0) {
				st = vb_fail(err, VB_ERR_USAGE,
					     "counterfactual: --try "
					     "mitigations: no [mitigations] "
					     "(not in a sweep folder; use "
					     "--mitigations FILE)");
				break;
			}
			for (size_t k = 0; st == VB_OK &&
					   k < plan->n_mitigations; k++)
				st = add_bundle_one(cf, &plan->mitigations[k],
						    true, err);
			continue;
		}
		for (size_t k = 0; plan && !done && k < plan->n_mitigations;
		     k++)
			if (!strcmp(plan->mitigations[k].name, t)) {
				st = add_bundle_one(cf, &plan->mitigations[k],
						    false, err);
				done = true;
			}
		for (size_t k = 0; !done && k < nb; k++)
			if (!strcmp(builtins[k].name, t)) {
				st = add_builtin(cf, &builtins[k], false, err);
				done = true;
			}
		if (!done)
			st = vb_fail(err, VB_ERR_USAGE, "counterfactual: --try "
				     "%s: not a built-in mitigation, a "
				     "[mitigations] name, 'all', "
				     "'mitigations' or section.key=value", t);
	}
	if (st == VB_OK && q->n_tries == 0) {
		if (plan && plan->n_mitigations > 0)
			for (size_t k = 0; st == VB_OK &&
					   k < plan->n_mitigations; k++)
				st = add_bundle_one(cf, &plan->mitigations[k],
						    true, err);
		else
			for (size_t k = 0; st == VB_OK && k < nb; k++)
				st = add_builtin(cf, &builtins[k], true, err);
	}
	sweep_plan_free(plan);
	for (size_t i = 0; st == VB_OK && i < cf->n_v; i++)
		st = config_validate(&cf->v[i].c, err);
	return st;
}

/* ---- the start point ---- */

/* The start: the last resume checkpoint at or before min(E - W, lead -
 * 1). The run keeps only step 0 and its latest checkpoint, so when the
 * one found is earlier, an unchanged bridge run from it writes the full
 * state at the start step (never an epoch's last step, whose resume point
 * lies after the epoch's end and evaluation). */
static enum vb_status find_start(struct cf *cf, FILE *log,
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
		st = preprocess_fit(&prep, &cf->d.train, c->data.scale,
				    c->data.standardize,
				    c->data.standardize_eps,
				    runconfig_nonfinite(c), err);
	if (st == VB_OK)
		st = graph_create(B * (D > (size_t)c->model.hidden
					       ? D
					       : (size_t)c->model.hidden) *
					  sizeof(vb_real) * 40,
				  &g, err);
	if (st == VB_OK)
		st = runconfig_graph(c, g, err);
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

static enum vb_status run_variant(struct cf *cf, struct cf_variant *v,
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
static enum vb_status distances(struct cf *cf, struct vb_error *err)
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

/* ---- output ---- */

static const char *outcome(const struct cf_variant *v)
{
	if (v->sum.status != GUARD_STATUS_OK &&
	    v->sum.first.phase == GUARD_PHASE_EVAL)
		return "eval";
	if (v->sum.status != GUARD_STATUS_OK)
		return "fails";
	if (v->sum.first.set)
		return "skips";
	return "clean";
}

static void put_real(FILE *f, double v)
{
	char b[64];
	table_fmt_real(v, b, sizeof b);
	fputs(b, f);
}

/* %.4g for the Markdown table. */
static void put_short(FILE *f, double v)
{
	if (isnan(v))
		fputs("nan", f);
	else if (isinf(v))
		fputs(v > 0 ? "inf" : "-inf", f);
	else
		fprintf(f, "%.4g", v);
}

static void event_where(const struct cf_variant *v, char *buf, size_t cap)
{
	const struct guard_event *e = &v->sum.first;
	if (!e->set) {
		snprintf(buf, cap, "-");
		return;
	}
	snprintf(buf, cap, "step %ld %s %s", e->step,
		 guard_phase_name(e->phase), e->quantity);
}

static enum vb_status write_verdict_csv(FILE *f, void *ctx,
					struct vb_error *err)
{
	const struct cf *cf = ctx;
	(void)err;
	fputs("variant,settings,outcome,event_step,event_phase,"
	      "event_quantity,event_value,cause,origin_op,origin_node,"
	      "skipped,max_abs_z,max_grad_norm,loss_first,loss_max,"
	      "loss_last,eval_recon,eval_nll,param_dist\n", f);
	for (size_t i = 0; i < cf->n_v; i++) {
		const struct cf_variant *v = &cf->v[i];
		const struct guard_event *e = &v->sum.first;
		double vals[] = {v->max_z, v->max_g, v->loss_first, v->loss_max,
				 v->loss_last, v->eval_recon, v->eval_nll,
				 v->dist};
		fprintf(f, "%s,%s,%s,", v->name, v->sets, outcome(v));
		if (e->set) {
			fprintf(f, "%ld,%s,%s,", e->step,
				guard_phase_name(e->phase), e->quantity);
			put_real(f, e->value);
			fprintf(f, ",%s,%s,%s,",
				e->cause != GUARD_CAUSE_NONE
					? guard_cause_name(e->cause) : "",
				e->op, e->node);
		} else {
			fputs(",,,,,,,", f);
		}
		fprintf(f, "%ld", v->sum.skipped);
		for (size_t k = 0; k < sizeof vals / sizeof *vals; k++) {
			fputc(',', f);
			put_real(f, vals[k]);
		}
		fputc('\n', f);
	}
	return VB_OK;
}

static enum vb_status write_times_csv(FILE *f, void *ctx,
				      struct vb_error *err)
{
	const struct cf *cf = ctx;
	(void)err;
	fputs("variant,seconds\n", f);
	for (size_t i = 0; i < cf->n_v; i++)
		fprintf(f, "%s,%.3f\n", cf->v[i].name, cf->v[i].seconds);
	return VB_OK;
}

static enum vb_status write_curves_csv(FILE *f, void *ctx,
				       struct vb_error *err)
{
	const struct cf *cf = ctx;
	(void)err;
	fputs("variant,step,loss,grad_norm,max_abs_z\n", f);
	for (size_t i = 0; i < cf->n_v; i++)
		for (size_t k = 0; k < cf->v[i].n; k++) {
			fprintf(f, "%s,%ld,", cf->v[i].name,
				(long)cf->v[i].step[k]);
			put_real(f, cf->v[i].loss[k]);
			fputc(',', f);
			put_real(f, cf->v[i].gnorm[k]);
			fputc(',', f);
			put_real(f, cf->v[i].zmax[k]);
			fputc('\n', f);
		}
	return VB_OK;
}

static void write_header_md(FILE *f, const struct cf *cf)
{
	const struct replay_report *o = &cf->orig;
	const struct guard_event *e = &cf->v[0].sum.first;
	fprintf(f, "original:   %s at step %ld (%s, %s = %s)", o->orig_status,
		o->orig_step, o->orig_phase, o->orig_quantity, o->orig_value);
	if (e->cause != GUARD_CAUSE_NONE && e->cause != GUARD_CAUSE_UNKNOWN)
		fprintf(f, ", cause %s, op %s, node %s",
			guard_cause_name(e->cause), e->op, e->node);
	fprintf(f, "\nstart:      step %ld", cf->start_step);
	if (cf->bridged)
		fprintf(f, " (bridged unchanged from checkpoint step %ld)",
			cf->ckpt_step);
	fprintf(f, ", window %ld", cf->q->window);
	if (o->orig_lead_step > 0)
		fprintf(f, ", lead step %ld%s", o->orig_lead_step,
			cf->q->no_lead ? " (ignored: --no-lead)" : "");
	fprintf(f, "\nhorizon:    to step %ld (event + %ld%s), anomaly mode; "
		"held-out: %ld images, %ld IS samples\n", cf->end_step,
		cf->end_step - o->orig_step,
		cf->end_step - o->orig_step < cf->horizon
			? ", the run's last planned step" : "",
		cf->q->eval_n, cf->q->nll_samples);
	fprintf(f, "reproduced: yes (same step, phase, quantity, value)\n");
}

static enum vb_status write_md(FILE *f, void *ctx, struct vb_error *err)
{
	const struct cf *cf = ctx;
	(void)err;
	fprintf(f, "# Counterfactual replay: %s\n\n```\n", cf->base.run.name);
	write_header_md(f, cf);
	fputs("```\n\n", f);
	fputs("| variant | settings | outcome | first event | cause | op | "
	      "node | max abs z | max grad norm | loss first | loss max | "
	      "loss last | eval recon | eval IS-NLL | param dist | s |\n"
	      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	      "---|\n", f);
	for (size_t i = 0; i < cf->n_v; i++) {
		const struct cf_variant *v = &cf->v[i];
		const struct guard_event *e = &v->sum.first;
		double vals[] = {v->max_z, v->max_g, v->loss_first, v->loss_max,
				 v->loss_last, v->eval_recon, v->eval_nll,
				 v->dist};
		char where[128];
		event_where(v, where, sizeof where);
		fprintf(f, "| %s | %s | %s", v->name, v->sets[0] ? v->sets : "-",
			outcome(v));
		if (v->sum.skipped > 0)
			fprintf(f, " (%ld)", v->sum.skipped);
		fprintf(f, " | %s | %s | %s | %s |", where,
			e->set && e->cause != GUARD_CAUSE_NONE
				? guard_cause_name(e->cause) : "-",
			e->set && e->op[0] ? e->op : "-",
			e->set && e->node[0] ? e->node : "-");
		for (size_t k = 0; k < sizeof vals / sizeof *vals; k++) {
			fputc(' ', f);
			put_short(f, vals[k]);
			fputs(" |", f);
		}
		fprintf(f, " %.1f |\n", v->seconds);
	}
	fputs("\noutcome: fails (the run stops at a non-finite value), eval "
	      "(training stayed finite, the held-out loss evaluated where the "
	      "horizon ends was not), skips "
	      "(non-finite batches skipped, count in brackets), clean (none "
	      "within the horizon). max abs z, grad norm (before clipping) "
	      "and loss over the horizon's steps; eval recon (bce or sse as "
	      "model.recon) and IS-NLL on the held-out images at the end; "
	      "param dist = ||p - p0|| / ||p0|| at step E - 1, p0 the "
	      "unchanged variant's parameters.\n", f);
	if (cf->notes[0])
		fprintf(f, "\nNot run:\n\n%s", cf->notes);
	return VB_OK;
}

static enum vb_status write_figure(const struct cf *cf, const char *path,
				   struct vb_error *err)
{
	struct plot_series s[3][CF_MAX_VARIANTS];
	struct plot_panel panels[3] = {
		{"training loss", cf->n_v, s[0]},
		{"gradient norm (before clipping)", cf->n_v, s[1]},
		{"max |z|", cf->n_v, s[2]}};
	const char *labels[CF_MAX_VARIANTS];
	uint32_t colors[CF_MAX_VARIANTS];
	char title[400];
	struct plot_lines pl = {0};
	for (size_t i = 0; i < cf->n_v; i++) {
		const struct cf_variant *v = &cf->v[i];
		colors[i] = plot_palette(i);
		labels[i] = v->name;
		for (int k = 0; k < 3; k++) {
			s[k][i].n = v->n;
			s[k][i].x = v->step;
			s[k][i].y = k == 0 ? v->loss : k == 1 ? v->gnorm : v->zmax;
			s[k][i].color = colors[i];
			s[k][i].mark_x = i == 0 ? (double)cf->orig.orig_step
						: NAN;
		}
	}
	snprintf(title, sizeof title, "%s: counterfactual from step %ld, "
		 "original event at step %ld", cf->base.run.name,
		 cf->start_step, cf->orig.orig_step);
	pl.title = title;
	pl.x_label = "step";
	pl.y_label = "value";
	pl.log_y = true;
	pl.n_panels = 3;
	pl.n_cols = 3;
	pl.panels = panels;
	pl.legend_n = cf->n_v;
	pl.legend_labels = labels;
	pl.legend_colors = colors;
	return plot_lines_png(&pl, path, err);
}

static enum vb_status write_outputs(struct cf *cf, struct vb_error *err)
{
	char path[1300];
	enum vb_status st;
	snprintf(path, sizeof path, "%s/curves.csv", cf->dir);
	st = files_write_with(path, write_curves_csv, cf, false, err);
	if (st == VB_OK) {
		snprintf(path, sizeof path, "%s/times.csv", cf->dir);
		st = files_write_with(path, write_times_csv, cf, false, err);
	}
	if (st == VB_OK) {
		snprintf(path, sizeof path, "%s/counterfactual.png", cf->dir);
		st = write_figure(cf, path, err);
	}
	if (st == VB_OK) {
		snprintf(path, sizeof path, "%s/verdict.md", cf->dir);
		st = files_write_with(path, write_md, cf, false, err);
	}
	/* last: its presence says the folder is complete */
	if (st == VB_OK) {
		snprintf(path, sizeof path, "%s/verdict.csv", cf->dir);
		st = files_write_with(path, write_verdict_csv, cf, false, err);
	}
	return st;
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
	if (cf->orig.orig_step <= 0)
		return vb_fail(err, VB_ERR_USAGE, "counterfactual: %s: status "
			       "%s, no first non-finite event to test "
			       "mitigations against", q->run_dir,
			       cf->orig.orig_status);
	st = build_variants(cf, err);
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
	st = find_start(cf, log, err);
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
		st = run_variant(cf, &cf->v[i], err);
		if (st == VB_OK && i == 0)
			st = check_reproduced(cf, err);
	}
	if (st == VB_OK)
		st = distances(cf, err);
	if (st == VB_OK)
		st = write_outputs(cf, err);
	if (st == VB_OK && out) {
		write_md(out, cf, err);
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
	for (size_t r = 0; st == VB_OK && r < t.n_rows; r++)
		if (!strcmp(table_get(&t, r, "variant"), "unchanged") &&
		    table_parse_num(table_get(&t, r, "eval_nll"), &x))
			base_nll = x;
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

struct cf_fixes {
	const struct cf_agg *a;
	size_t n;
	long n_fail, n_done;
	const char *failed; /* lines "- ID: message\n" */
};

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
	(void)err;
	fprintf(f, "\n## Fixes at the failure point\n\n"
		"Counterfactual replay (`vaebench counterfactual`) of %ld of "
		"the %ld runs that hit NaN/Inf: each mitigation switched on "
		"shortly before the run's first event, same batches and "
		"draws, to one epoch past it. prevented: no non-finite value "
		"within the horizon; survived: prevented or skipped. Held-out "
		"measures are means over the runs it prevented; d IS-NLL is "
		"against the unchanged variant's last finite state (runs "
		"where that is finite). Per-run tables: "
		"runs/ID/counterfactual/verdict.md.\n\n", x->n_done,
		x->n_fail);
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
			put_real(f, v[k]);
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

/* The failing rows' runs without a complete result, jobs at a time, each
 * in a forked worker (BLAS single-threaded as the sweep's); a worker that
 * fails leaves its one-line error in RUN_DIR/counterfactual/error.txt. */
static void run_parallel(const char *dir, const struct table *t,
			 const struct counterfactual_request *q, int jobs,
			 FILE *log)
{
	int running = 0;
	for (size_t r = 0; r <= t->n_rows; r++) {
		const char *status = r < t->n_rows ? table_get(t, r, "status")
						   : "";
		char run[1250], ep[1300];
		pid_t pid;
		if (r < t->n_rows && strcmp(status, "nan") != 0 &&
		    strcmp(status, "inf") != 0)
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
		const char *status = table_get(&t, r, "status");
		const char *id = table_get(&t, r, "id");
		struct counterfactual_request one = *q;
		struct vb_error e1 = {0};
		if (strcmp(status, "nan") != 0 && strcmp(status, "inf") != 0)
			continue;
		x.n_fail++;
		snprintf(run, sizeof run, "%s/runs/%s", dir, id);
		one.run_dir = run;
		if (!counterfactual_done(run) && jobs > 1) {
			/* the worker's error, or that it left none */
			char ep[1300], *msg = NULL;
			snprintf(ep, sizeof ep, "%s/counterfactual/error.txt",
				 run);
			if (files_read(ep, &msg, NULL, NULL) != VB_OK)
				msg = NULL;
			fprintf(ff, "- %s: %s\n", id,
				msg ? msg : "the worker left no result");
			free(msg);
			(*n_failed)++;
			continue;
		}
		if (!counterfactual_done(run)) {
			if (log)
				fprintf(log, "counterfactual: %s\n", run);
			if (counterfactual_run(&one, NULL, NULL, &e1) !=
			    VB_OK) {
				fprintf(ff, "- %s: %s\n", id, e1.msg);
				if (log)
					fprintf(log, "counterfactual: %s: "
						"%s\n", id, e1.msg);
				(*n_failed)++;
				continue;
			}
		} else if (log && jobs <= 1) {
			fprintf(log, "counterfactual: %s: done already\n",
				run);
		}
		x.n_done++;
		st = agg_run(run, a, &na, CF_MAX_AGG, err);
	}
	if (ff)
		fclose(ff);
	x.a = a;
	x.n = na;
	x.failed = failed;
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

enum vb_status counterfactual_command(int argc, char **argv, FILE *log,
				      struct vb_error *err)
{
	struct counterfactual_request q;
	bool quiet = false;
	enum vb_status st = VB_OK;
	counterfactual_defaults(&q);
	for (int i = 0; st == VB_OK && i < argc; i++) {
		const char *a = argv[i];
		bool has = i + 1 < argc;
		if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			quiet = true;
		} else if (!strcmp(a, "--no-lead")) {
			q.no_lead = true;
		} else if (!strcmp(a, "--try") || !strcmp(a, "--set")) {
			if (!has)
				return vb_fail(err, VB_ERR_USAGE, "%s needs a "
					       "value", a);
			if (q.n_tries == COUNTERFACTUAL_MAX_TRIES)
				return vb_fail(err, VB_ERR_USAGE, "too many "
					       "--try");
			if (!strcmp(a, "--set") && !strchr(argv[i + 1], '='))
				return vb_fail(err, VB_ERR_USAGE, "--set %s: "
					       "expected section.key=value",
					       argv[i + 1]);
			q.tries[q.n_tries++] = argv[++i];
		} else if (!strcmp(a, "--mitigations")) {
			if (!has)
				return vb_fail(err, VB_ERR_USAGE, "%s needs a "
					       "value", a);
			q.mitigations = argv[++i];
		} else if (!strcmp(a, "--window") || !strcmp(a, "--horizon") ||
			   !strcmp(a, "--eval-n") ||
			   !strcmp(a, "--nll-samples")) {
			long *dst = !strcmp(a, "--window")    ? &q.window
				    : !strcmp(a, "--horizon") ? &q.horizon
				    : !strcmp(a, "--eval-n")  ? &q.eval_n
							      : &q.nll_samples;
			if (!has)
				return vb_fail(err, VB_ERR_USAGE, "%s needs a "
					       "value", a);
			st = parse_long(a, argv[++i],
					dst == &q.horizon ? 0 : 1, dst, err);
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
