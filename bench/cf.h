/* cf: the state of one counterfactual shared by counterfactual.c,
 * cf_run.c and cf_verdict.c (internal to the counterfactual, as run.h is
 * to the training run), the settings a variant may change, and building
 * the variants of a request. */
#ifndef VB_BENCH_CF_H
#define VB_BENCH_CF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "replay.h"
#include "train.h"
#include "vb.h"

#define CF_MAX_VARIANTS 64
#define CF_SETS_LEN 512
/* A variant's name: COUNTERFACTUAL_NAME_LEN (a static assert in cf.c),
 * spelt out so that this header need not include counterfactual.h. */
#define CF_NAME_LEN 64

struct counterfactual_request;

struct cf_variant {
	char name[CF_NAME_LEN];
	char sets[CF_SETS_LEN]; /* "k=v k=v" ("" unchanged) */
	struct config c;
	/* results */
	struct train_summary sum;
	double max_z, max_g, loss_first, loss_max, loss_last;
	double eval_recon, eval_nll, dist, seconds;
	size_t n, cap;     /* steps recorded, slots */
	double *step, *loss, *gnorm, *zmax; /* (cap) per step */
	double *pmax;      /* (cap) max |parameter| after each step */
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
	/* param_dist compares every variant's parameters after ref_step:
	 * E - 1, or the unchanged variant's last step with finite parameters
	 * when they are not finite at E - 1 (ref_moved) */
	long ref_step;
	bool ref_moved;
	double ref_recon, ref_nll; /* held-out measures of the unchanged
				      variant's state after ref_step */
	struct cf_variant v[CF_MAX_VARIANTS];
	size_t n_v;
	size_t cap;              /* per-step slots of each variant */
	char notes[4096];        /* variants not run, one line each */
};

/* True when key may differ between variants (it acts on the step alone);
 * otherwise false with the reason, one line, in why (cap bytes). */
bool cf_key_switchable(const char *key, char *why, size_t cap);

/* Fills cf->v[0 .. cf->n_v) from cf->q and cf->base: "unchanged" first,
 * then each --try (an inline "k=v ..." variant, "all" built-ins, the
 * bundle's "mitigations", a [mitigations] or built-in name) or, without
 * --try, the bundle's [mitigations] (--mitigations FILE, else the sweep
 * folder's sweep.ini) or else every built-in; each is the base config
 * with its settings applied, then validated. A mitigation added in bulk
 * that does not apply is left out with a line in cf->notes. VB_ERR_USAGE
 * for an unknown --try name, a bad variant or a bundle without
 * [mitigations], VB_ERR_CONFIG for a setting that cannot switch mid-run
 * or fails validation. */
enum vb_status cf_build_variants(struct cf *cf, struct vb_error *err);

/* Applies sets ("k=v k=v ...", space-separated) to v->c and v->sets,
 * each key checked as switchable mid-run (VB_ERR_CONFIG otherwise). */
enum vb_status cf_variant_apply(struct cf_variant *v, const char *sets,
				struct vb_error *err);

/* Writes v to f as table_fmt_real does (the CSV form of a real). */
void cf_put_real(FILE *f, double v);

#endif
