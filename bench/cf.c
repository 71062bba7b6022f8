/* cf: the state of one counterfactual (the original run, the start point,
 * the variants and their results), which settings a variant may change,
 * and the variants built from the request (built-in, [mitigations],
 * inline). Running them is cf_run.c's, the verdict files cf_verdict.c's,
 * the experiment as a whole counterfactual.c's. */
#include "cf.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "counterfactual.h"
#include "files.h"
#include "sweep.h"
#include "sweep_plan.h"
#include "table.h"

/* ---- which settings can change mid-run ---- */

/* Keys a variant may change: they act on the step (gradient treatment,
 * update rule, non-finite policy, the forward's clamps and activations)
 * and leave the parameter shapes, the data and the random draws alone. */
static const char *const switchable[] = {
	"optim.lr", "optim.clip", "optim.clip_max", "optim.clip_eps",
	"optim.clip_k", "optim.clip_window", "optim.clip_warmup",
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

bool cf_key_switchable(const char *key, char *why, size_t cap)
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

/* ---- variants ---- */

_Static_assert(CF_NAME_LEN == COUNTERFACTUAL_NAME_LEN,
	       "cf.h's CF_NAME_LEN must equal COUNTERFACTUAL_NAME_LEN");

/* Applies "k=v" to c after checking the key may switch mid-run. */
static enum vb_status apply_set(struct config *c, const char *key,
				const char *value, struct vb_error *err)
{
	char why[400];
	if (!cf_key_switchable(key, why, sizeof why))
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

enum vb_status cf_variant_apply(struct cf_variant *v, const char *sets,
				struct vb_error *err)
{
	char buf[CF_SETS_LEN];
	char *save = NULL;
	enum vb_status st = VB_OK;
	snprintf(buf, sizeof buf, "%s", sets);
	for (char *t = strtok_r(buf, " ", &save); st == VB_OK && t;
	     t = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(t, '=');
		if (!eq || eq == t)
			return vb_fail(err, VB_ERR_USAGE, "counterfactual: "
				       "'%s': expected section.key=value", t);
		*eq = '\0';
		st = variant_set(v, t, eq + 1, err);
	}
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
	{"clip-adaptive", {"optim.clip", "optim.clip_warmup"},
	 {"adaptive", NULL}, NULL},
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
	if (!strcmp(b->keys[0], "train.precision") &&
	    !sweep_precision_here(CONFIG_PRECISION_F64)) {
		/* run by the sibling binary (cf_run.c), when there is one */
		char bin[PATH_MAX];
		struct vb_error e2 = {0};
		if (sweep_sibling_binary(CONFIG_PRECISION_F64, bin, sizeof bin,
					 &e2) != VB_OK) {
			if (!quiet_skip)
				return vb_fail(err, VB_ERR_USAGE,
					       "counterfactual: --try %s: %s",
					       b->name, e2.msg);
			note(cf, "- %s: not run: %s\n", b->name, e2.msg);
			return VB_OK;
		}
	}
	st = add_variant(cf, b->name, &v, err);
	for (int i = 0; st == VB_OK && i < CF_BUILTIN_SETS && b->keys[i]; i++) {
		const char *value = b->values[i];
		if (!strcmp(b->keys[i], "optim.lr")) {
			snprintf(val, sizeof val, "%.6g", cf->base.optim.lr / 10);
			value = val;
		} else if (!strcmp(b->keys[i], "optim.clip_warmup")) {
			/* the window of norms starts empty at the start step
			 * (at most E - window): it can clip by the event */
			long w = cf->q->window - 1 < 1 ? 1 : cf->q->window - 1;
			if (w > cf->base.optim.clip_warmup)
				w = cf->base.optim.clip_warmup;
			snprintf(val, sizeof val, "%ld", w);
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
	/* the same mode or value as the run: nothing to try */
	if (config_get(&cf->base, b->keys[0], cur, sizeof cur, err) == VB_OK) {
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
		if (!cf_key_switchable(key, why, sizeof why)) {
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

/* One --try item t: an inline "k=v ..." variant, "all" built-ins, the
 * bundle's "mitigations", or one [mitigations] or built-in name. */
static enum vb_status add_try(struct cf *cf, const struct sweep_plan *plan,
			      const char *t, struct vb_error *err)
{
	size_t nb = sizeof builtins / sizeof *builtins;
	bool done = false;
	enum vb_status st = VB_OK;

	if (strchr(t, '='))
		return add_inline(cf, t, err);
	if (!strcmp(t, "all")) {
		for (size_t k = 0; st == VB_OK && k < nb; k++)
			st = add_builtin(cf, &builtins[k], true, err);
		return st;
	}
	if (!strcmp(t, "mitigations")) {
		if (!plan || plan->n_mitigations == 0)
			return vb_fail(err, VB_ERR_USAGE,
				       "counterfactual: --try "
				       "mitigations: no [mitigations] "
				       "(not in a sweep folder; use "
				       "--mitigations FILE)");
		for (size_t k = 0; st == VB_OK && k < plan->n_mitigations; k++)
			st = add_bundle_one(cf, &plan->mitigations[k], true,
					    err);
		return st;
	}
	for (size_t k = 0; plan && !done && k < plan->n_mitigations; k++)
		if (!strcmp(plan->mitigations[k].name, t)) {
			st = add_bundle_one(cf, &plan->mitigations[k], false,
					    err);
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
	return st;
}

enum vb_status cf_build_variants(struct cf *cf, struct vb_error *err)
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
	for (size_t i = 0; st == VB_OK && i < q->n_tries; i++)
		st = add_try(cf, plan, q->tries[i], err);
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

void cf_put_real(FILE *f, double v)
{
	char b[64];
	table_fmt_real(v, b, sizeof b);
	fputs(b, f);
}
