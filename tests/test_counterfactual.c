/* test_counterfactual: the counterfactual replay (bench/counterfactual.h)
 * on tiny synthetic runs: an injected logvar overflow that the unchanged
 * variant reproduces and a logvar clamp turns off, the one-line refusal
 * of a setting that cannot change mid-run, the loud failure when the
 * original event is not reproduced, and byte-identical verdicts of an
 * RHVAE run that dies at a high learning rate. */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "benchutil.h"
#include "cf.h"
#include "cf_run.h"
#include "config.h"
#include "files.h"
#include "counterfactual.h"
#include "replay.h"
#include "testutil.h"
#include "train.h"

static void base_config(struct config *c, const char *dir, const char *name)
{
	bu_small_config(c, dir, name);
	bu_set(c, "run.checkpoint_every=4");
}

/* A VAE whose logvar head is scaled by 1e20 at step 14: exp overflows in
 * vae.std at step 14 (README's worked example, smaller). */
static void inject_config(struct config *c, const char *dir)
{
	base_config(c, dir, "inj");
	BU_SET(c, "inject.nan_step=14", "inject.nan_phase=param",
		"inject.value=scale", "inject.param=encoder.log_var.weight",
		"inject.index=-1");
}

/* An RHVAE MLP that dies at step 9 (lr 0.02: a product overflow inside
 * the leapfrog's gradient of H). */
static void rhvae_config(struct config *c, const char *dir)
{
	base_config(c, dir, "rh");
	BU_SET(c, "model.kind=rhvae", "model.latent=2", "train.epochs=4",
		"optim.lr=0.02");
}

/* A run that must end in an event. */
static void train(const struct config *c, struct train_summary *s)
{
	bu_run(c, NULL, s);
	ck_assert_int_ne(s->status, GUARD_STATUS_OK);
}

static void small_request(struct counterfactual_request *q, const char *dir)
{
	counterfactual_defaults(q);
	q->run_dir = dir;
	q->window = 4;
	q->horizon = 8;
	q->eval_n = 32;
	q->nll_samples = 4;
}

/* The line of verdict.csv whose first field is name (static buffer). */
static const char *verdict_row(const char *text, const char *name)
{
	static char row[2048];
	size_t n = strlen(name);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p += !!p) {
		if (!strncmp(p, name, n) && p[n] == ',') {
			size_t len = strcspn(p, "\n");
			ck_assert(len < sizeof row);
			memcpy(row, p, len);
			row[len] = '\0';
			return row;
		}
	}
	ck_abort_msg("no row %s in verdict.csv:\n%s", name, text);
	return NULL;
}

/* Field k (0-based) of a CSV row (static buffer). */
static const char *field(const char *row, int k)
{
	static char f[512];
	const char *p = row;
	for (int i = 0; i < k; i++) {
		p = strchr(p, ',');
		ck_assert(p);
		p++;
	}
	size_t len = strcspn(p, ",");
	memcpy(f, p, len);
	f[len] = '\0';
	return f;
}

/* verdict.csv columns */
enum { V_SETTINGS = 1, V_OUTCOME, V_STEP, V_PHASE, V_QUANTITY, V_VALUE,
       V_CAUSE, V_OP, V_NODE, V_EVAL_NLL = 17, V_PARAM_DIST, V_REF_STEP,
       V_REF_RECON, V_REF_NLL };

/* A VAE whose gradient turns NaN at step 14 under pythae's checks: the
 * NaN passes into the parameters at step 14 and its running loss sum
 * stops the run at step 15 ("NaN detected in train loss"), so the
 * parameters after step E - 1 are not finite. */
static void grad_nan_config(struct config *c, const char *dir)
{
	base_config(c, dir, "gnan");
	BU_SET(c, "train.nan_check=pythae", "inject.nan_step=14",
		"inject.nan_phase=grad", "inject.value=nan");
}

/* A finite number in CSV form ("nan", "inf" and "" are not). */
static bool finite_field(const char *v)
{
	char *end;
	double x = strtod(v, &end);
	return end != v && *end == '\0' && x == x && x - x == 0;
}

/* Rewrites run/summary.csv with put written at offset at of the first
 * occurrence of find (which must be there): a claimed original event
 * that the replay will not reproduce. */
static void tamper_summary(const char *run, const char *find, size_t at,
			   const char *put)
{
	size_t n;
	char *t = tu_read_file(tu_path(run, "summary.csv"), &n), *p;
	ck_assert(t);
	p = strstr(t, find);
	ck_assert_msg(p != NULL, "%s", t);
	memcpy(p + at, put, strlen(put));
	ck_assert(tu_write_file(tu_path(run, "summary.csv"), t, n) == 0);
	free(t);
}

/* inject_config's run, trained, into dir/inj (its folder in run). */
static void injected_run(const char *dir, char run[1100],
			 struct train_summary *s)
{
	struct config c;
	inject_config(&c, dir);
	train(&c, s);
	snprintf(run, 1100, "%s/inj", dir);
}

/* summary.csv of a run that died with pythae's ValueError: the message
 * holds commas inside quotes ("Tensor of shape (64, 16)"); replay and
 * counterfactual read it with the CSV reader (a split at commas refused
 * it as "not vaebench's summary.csv"). */
START_TEST(test_summary_quoted_message)
{
	const char *dir = tu_tmpdir("cfquoted");
	char path[1200];
	struct replay_report o;
	struct vb_error err = {0};
	snprintf(path, sizeof path, "%s/summary.csv", dir);
	FILE *f = fopen(path, "w");
	ck_assert(f != NULL);
	fputs("name,status,first_step,first_phase,first_quantity,first_value,"
	      "message,steps,lead_step\n"
	      "seed8,nan,2998,forward,ValueError:rhvae.lf1.H.z2,nan,"
	      "\"ValueError: Expected value argument (Tensor of shape (64, "
	      "16)) to be within the support\",2998,1130\n", f);
	fclose(f);
	memset(&o, 0, sizeof o);
	ck_assert_msg(replay_read_summary(dir, &o, &err) == VB_OK, "%s",
		      err.msg);
	ck_assert_str_eq(o.orig_status, "nan");
	ck_assert_int_eq(o.orig_step, 2998);
	ck_assert_int_eq(o.orig_steps, 2998);
	ck_assert_int_eq(o.orig_lead_step, 1130);
	ck_assert_str_eq(o.orig_quantity, "ValueError:rhvae.lf1.H.z2");
}
END_TEST

START_TEST(test_clamp_turns_event_off)
{
	const char *dir = tu_tmpdir("clamp");
	char run[1100];
	struct config c;
	struct train_summary s;
	struct counterfactual_request q;
	struct vb_error err = {0};
	inject_config(&c, dir);
	train(&c, &s);
	ck_assert_int_eq(s.first.step, 14);
	snprintf(run, sizeof run, "%s/inj", dir);
	small_request(&q, run);
	q.tries[q.n_tries++] = "logvar-clamp";
	ck_assert_msg(counterfactual_run(&q, NULL, NULL, &err) == VB_OK, "%s",
		      err.msg);
	ck_assert(counterfactual_done(run));
	char *t = tu_read_file(tu_path(run, "counterfactual/verdict.csv"),
			       NULL);
	ck_assert(t);
	/* unchanged: the original event, step, phase, op, node, cause */
	const char *r = verdict_row(t, "unchanged");
	ck_assert_str_eq(field(r, V_OUTCOME), "fails");
	ck_assert_str_eq(field(r, V_STEP), "14");
	ck_assert_str_eq(field(r, V_PHASE), "forward");
	ck_assert_str_eq(field(r, V_QUANTITY), "loss");
	ck_assert_str_eq(field(r, V_CAUSE), "exp_overflow");
	ck_assert_str_eq(field(r, V_OP), "exp");
	ck_assert_str_eq(field(r, V_NODE), "vae.std");
	/* the clamp keeps exp's input at logvar_max / 2: no event */
	r = verdict_row(t, "logvar-clamp");
	ck_assert_str_eq(field(r, V_OUTCOME), "clean");
	ck_assert_str_eq(field(r, V_STEP), "");
	free(t);
	t = tu_read_file(tu_path(run, "counterfactual/verdict.md"), NULL);
	ck_assert(t && strstr(t, "reproduced: yes"));
	/* parameters finite before the event: the reference is E - 1 */
	ck_assert_msg(strstr(t, "param ref:  step 13 (E - 1), the unchanged "
			     "variant's parameters before the event"), "%s", t);
	free(t);
	t = tu_read_file(tu_path(run, "counterfactual/counterfactual.png"),
			 NULL);
	ck_assert(t);
	free(t);
}
END_TEST

START_TEST(test_immutable_refused)
{
	const char *dir = tu_tmpdir("immut");
	char run[1100];
	struct train_summary s;
	struct counterfactual_request q;
	struct vb_error err = {0};
	injected_run(dir, run, &s);
	small_request(&q, run);
	q.tries[q.n_tries++] = "train.batch=16";
	ck_assert_int_eq(counterfactual_run(&q, NULL, NULL, &err),
			 VB_ERR_CONFIG);
	ck_assert_str_eq(err.msg, "counterfactual: train.batch cannot change "
			 "mid-run: it changes which images each step sees, "
			 "so the variants would not share the original's "
			 "batches");
	ck_assert_ptr_null(strchr(err.msg, '\n'));
	ck_assert(!counterfactual_done(run));
	/* and by the key check alone, for a parameter shape */
	char why[400];
	ck_assert(!counterfactual_key_switchable("model.latent", why,
						 sizeof why));
	ck_assert_ptr_nonnull(strstr(why, "model.latent cannot change "
				     "mid-run"));
	ck_assert(counterfactual_key_switchable("rhvae.grad_clip", why,
						sizeof why));
}
END_TEST

/* An injected run whose summary.csv is made to claim another event
 * (tamper_summary) is not reproduced: counterfactual_run with variant
 * try fails with VB_ERR_NUMERIC and a message holding each of the
 * NULL-terminated want, and nothing is written. */
static void expect_not_reproduced(const char *tag, const char *find,
				  size_t at, const char *put,
				  const char *try, const char *const *want)
{
	char run[1100];
	struct train_summary s;
	struct counterfactual_request q;
	struct vb_error err = {0};
	injected_run(tu_tmpdir(tag), run, &s);
	tamper_summary(run, find, at, put);
	small_request(&q, run);
	q.tries[q.n_tries++] = try;
	ck_assert_int_eq(counterfactual_run(&q, NULL, NULL, &err),
			 VB_ERR_NUMERIC);
	for (size_t i = 0; want[i]; i++)
		ck_assert_msg(strstr(err.msg, want[i]), "%s", err.msg);
	ck_assert(!counterfactual_done(run));
}

START_TEST(test_not_reproduced_fails)
{
	/* claim the event was at step 15: ",nan,2,1[4]" */
	const char *const want[] = {"reproduced: NO", "original step 15",
				    "unchanged variant step 14", NULL};
	expect_not_reproduced("norep", ",nan,2,14,forward,", 8, "5",
			      "clip-norm", want);
}
END_TEST

/* Bit for bit: the same step, phase and quantity with another value
 * (the original's loss claimed inf, the replay's is nan) is not a
 * reproduction either; nothing is written. */
START_TEST(test_not_reproduced_value)
{
	/* ",14,forward,loss,[nan]" */
	const char *const want[] = {"counterfactual: reproduced: NO: "
				    "original step 14 (forward, loss = inf), "
				    "unchanged variant step 14 (forward, "
				    "loss = nan)", NULL};
	expect_not_reproduced("norepv", ",14,forward,loss,nan,", 17, "inf",
			      "logvar-clamp", want);
}
END_TEST

START_TEST(test_rhvae_hclip_stable)
{
	const char *dir = tu_tmpdir("rhvae");
	char run[1100];
	struct config c;
	struct train_summary s;
	struct counterfactual_request q;
	struct vb_error err = {0};
	char *a, *b;
	rhvae_config(&c, dir);
	train(&c, &s);
	snprintf(run, sizeof run, "%s/rh", dir);
	small_request(&q, run);
	q.tries[q.n_tries++] = "h-grad-clip";
	ck_assert_msg(counterfactual_run(&q, NULL, NULL, &err) == VB_OK, "%s",
		      err.msg);
	a = tu_read_file(tu_path(run, "counterfactual/verdict.csv"), NULL);
	ck_assert(a);
	ck_assert_msg(counterfactual_run(&q, NULL, NULL, &err) == VB_OK, "%s",
		      err.msg);
	b = tu_read_file(tu_path(run, "counterfactual/verdict.csv"), NULL);
	ck_assert(b);
	ck_assert_str_eq(a, b);
	ck_assert_str_eq(field(verdict_row(a, "unchanged"), V_OUTCOME),
			 "fails");
	ck_assert_str_eq(field(verdict_row(a, "h-grad-clip"), V_OUTCOME),
			 "clean");
	free(a);
	free(b);
	/* curves too */
	a = tu_read_file(tu_path(run, "counterfactual/curves.csv"), NULL);
	ck_assert(a && strstr(a, "h-grad-clip,"));
	free(a);
}
END_TEST

/* The binary bin (VB_BIN) runs the sweep file text in dir/sw.ini into
 * dir/sw (its path in out) with sweep_jobs workers, then report
 * --counterfactual on it with report_jobs; both must exit 0. */
static void sweep_report(const char *bin, const char *dir, const char *text,
			 int sweep_jobs, int report_jobs, char out[1100])
{
	char ini[1100], cmd[4000];
	ck_assert_msg(bin != NULL, "VB_BIN not set");
	snprintf(ini, sizeof ini, "%s/sw.ini", dir);
	snprintf(out, 1100, "%s/sw", dir);
	ck_assert(tu_write_file(ini, text, strlen(text)) == 0);
	snprintf(cmd, sizeof cmd, "'%s' sweep '%s' --out '%s' --jobs %d "
		 ">/dev/null 2>&1", bin, ini, out, sweep_jobs);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(cmd, sizeof cmd, "'%s' report '%s' --counterfactual "
		 "--jobs %d >/dev/null 2>&1", bin, out, report_jobs);
	ck_assert_int_eq(system(cmd), 0);
}

/* report DIR --counterfactual through the binary on a 3-cell sweep (one
 * cell dies): fixes.md in summary.md, the bundle's clip tried, the
 * immutable mitigation refused (forked workers, --jobs 2), a second
 * report (sequential) resumes (done already). */
START_TEST(test_sweep_fixes)
{
	const char *dir = tu_tmpdir("sweep"), *bin = getenv("VB_BIN");
	char out[1100], cmd[4000], line[512];
	const char *text =
		"[data]\ndataset = synthetic\nsynthetic_n = 256\n"
		"synthetic_eval_n = 64\n[model]\nkind = rhvae\nhidden = 32\n"
		"latent = 2\n[train]\nbatch = 32\nepochs = 4\n[optim]\n"
		"lr = 0.02\n[run]\ncheckpoint_every = 4\nprogress = off\n"
		"[mitigations]\nbaseline =\n"
		"h-grad-clip-100 = rhvae.grad_clip=100\n"
		"batch-16 = train.batch=16\n";
	FILE *p;
	bool resumed = false;
	char *t;
	sweep_report(bin, dir, text, 1, 2, out);
	t = tu_read_file(tu_path(out, "summary.md"), NULL);
	ck_assert(t && strstr(t, "## Fixes at the failure point"));
	ck_assert_msg(strstr(t, "| h-grad-clip-100 | rhvae.grad_clip=100 | 1 "
			     "| 1 | 1 |"), "%s", t);
	free(t);
	t = tu_read_file(tu_path(out, "fixes.md"), NULL);
	ck_assert(t && !strstr(t, "batch-16 |"));
	free(t);
	snprintf(cmd, sizeof cmd, "'%s' report '%s' --counterfactual 2>&1",
		 bin, out);
	p = popen(cmd, "r");
	ck_assert(p);
	while (fgets(line, sizeof line, p))
		resumed = resumed || strstr(line, "done already");
	ck_assert_int_eq(pclose(p), 0);
	ck_assert(resumed);
	t = tu_read_file(tu_path(out, "summary.md"), NULL);
	ck_assert(t);
	/* the section once, not once per report */
	ck_assert_ptr_null(strstr(strstr(t, "## Fixes at") + 1,
				  "## Fixes at"));
	free(t);
}
END_TEST

/* Runs cmd, returns its exit code; its output (stderr joined) in out. */
static int run_cmd(const char *cmd, char *out, size_t cap)
{
	FILE *p = popen(cmd, "r");
	size_t n = 0;
	int rc;
	ck_assert(p);
	while (n + 1 < cap && fgets(out + n, (int)(cap - n), p))
		n += strlen(out + n);
	out[n] = '\0';
	rc = pclose(p);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* The command's exit codes: 2 and one line for an immutable key, 1 and
 * both events when the original is not reproduced, 0 otherwise. */
START_TEST(test_cli_exit_codes)
{
	const char *dir = tu_tmpdir("cli"), *bin = getenv("VB_BIN");
	char run[1100], cmd[3000], out[8192];
	struct config c;
	struct vb_error err = {0};
	ck_assert_msg(bin != NULL, "VB_BIN not set");
	/* trained by the binary too: it pins the BLAS kernel by ISA class,
	 * and the original and its replay must share the kernel */
	inject_config(&c, dir);
	ck_assert(config_write_file(&c, tu_path(dir, "inj.ini"), &err) ==
		  VB_OK);
	snprintf(cmd, sizeof cmd, "'%s' train --config '%s' -q 2>&1", bin,
		 tu_path(dir, "inj.ini"));
	ck_assert_int_eq(run_cmd(cmd, out, sizeof out), 0);
	snprintf(run, sizeof run, "%s/inj", dir);
	snprintf(cmd, sizeof cmd, "'%s' counterfactual '%s' --try "
		 "train.batch=16 -q 2>&1", bin, run);
	ck_assert_int_eq(run_cmd(cmd, out, sizeof out), 2);
	ck_assert_str_eq(out, "vaebench: counterfactual: train.batch cannot "
			 "change mid-run: it changes which images each step "
			 "sees, so the variants would not share the "
			 "original's batches\n");
	snprintf(cmd, sizeof cmd, "'%s' counterfactual '%s' --try clip-norm "
		 "--window 4 --horizon 2 --eval-n 8 --nll-samples 2 -q 2>&1",
		 bin, run);
	ck_assert_int_eq(run_cmd(cmd, out, sizeof out), 0);
	ck_assert_msg(strstr(out, "reproduced: yes"), "%s", out);
	tamper_summary(run, ",nan,2,14,forward,", 8, "5"); /* ",nan,2,1[4]" */
	ck_assert_int_eq(run_cmd(cmd, out, sizeof out), 1);
	ck_assert_msg(strstr(out, "reproduced: NO"), "%s", out);
}
END_TEST

/* The unchanged variant's parameters are NaN after step E - 1 (pythae's
 * NaN-loss check stops the run one step after the NaN update): param_dist
 * and the held-out reference use its last finite parameters (step 13),
 * and verdict.md says so; before, every param_dist was NaN. */
START_TEST(test_param_ref_last_finite)
{
	const char *dir = tu_tmpdir("pref");
	char run[1100], *t, row[2048];
	struct config c;
	struct train_summary s;
	struct counterfactual_request q;
	struct vb_error err = {0};
	grad_nan_config(&c, dir);
	train(&c, &s);
	ck_assert_int_eq(s.first.step, 15);
	ck_assert_str_eq(s.message, "NaN detected in train loss");
	snprintf(run, sizeof run, "%s/gnan", dir);
	small_request(&q, run);
	q.tries[q.n_tries++] = "clip-norm";
	q.tries[q.n_tries++] = "skip-nonfinite";
	ck_assert_msg(counterfactual_run(&q, NULL, NULL, &err) == VB_OK, "%s",
		      err.msg);
	t = tu_read_file(tu_path(run, "counterfactual/verdict.md"), NULL);
	ck_assert(t);
	ck_assert_msg(strstr(t, "param ref:  step 13, the unchanged variant's "
			     "last finite parameters (not finite at step 14 "
			     "= E - 1); held-out there: recon "), "%s", t);
	free(t);
	t = tu_read_file(tu_path(run, "counterfactual/verdict.csv"), NULL);
	ck_assert(t);
	snprintf(row, sizeof row, "%s", verdict_row(t, "unchanged"));
	ck_assert_str_eq(field(row, V_OUTCOME), "fails");
	ck_assert_str_eq(field(row, V_PARAM_DIST), "0");
	ck_assert_str_eq(field(row, V_REF_STEP), "13");
	ck_assert_msg(finite_field(field(row, V_REF_NLL)), "%s", row);
	ck_assert_msg(finite_field(field(row, V_REF_RECON)), "%s", row);
	/* dead at the horizon's end: its own held-out measure is NaN */
	ck_assert_str_eq(field(row, V_EVAL_NLL), "nan");
	/* the others at the same step: finite, and clipping moved them */
	snprintf(row, sizeof row, "%s", verdict_row(t, "clip-norm"));
	ck_assert_msg(finite_field(field(row, V_PARAM_DIST)), "%s", row);
	ck_assert_str_ne(field(row, V_PARAM_DIST), "0");
	ck_assert_str_eq(field(row, V_REF_STEP), "");
	snprintf(row, sizeof row, "%s", verdict_row(t, "skip-nonfinite"));
	ck_assert_str_eq(field(row, V_OUTCOME), "skips");
	ck_assert_str_eq(field(row, V_PARAM_DIST), "0"); /* skip acts at 14 */
	free(t);
}
END_TEST

/* --try all: every built-in that applies, adaptive clipping among them
 * (from a checkpoint of an unclipped run: its window starts empty, warm-up
 * shortened to window - 1), the RHVAE-only ones noted as not applicable,
 * and f64 refused in one line when vaebench-f64 is not beside the binary
 * (this test program has none beside it). */
START_TEST(test_builtin_all)
{
	const char *dir = tu_tmpdir("all");
	char run[1100], *t, *p;
	struct train_summary s;
	struct counterfactual_request q;
	struct vb_error err = {0};
	injected_run(dir, run, &s);
	small_request(&q, run);
	q.tries[q.n_tries++] = "all";
	ck_assert_msg(counterfactual_run(&q, NULL, NULL, &err) == VB_OK, "%s",
		      err.msg);
	t = tu_read_file(tu_path(run, "counterfactual/verdict.csv"), NULL);
	ck_assert(t);
	ck_assert_str_eq(field(verdict_row(t, "clip-adaptive"), V_SETTINGS),
			 "optim.clip=adaptive optim.clip_warmup=3");
	ck_assert_str_eq(field(verdict_row(t, "clip-adaptive"), V_OUTCOME),
			 "fails");
	ck_assert_str_eq(field(verdict_row(t, "logvar-clamp"), V_OUTCOME),
			 "clean");
	ck_assert_ptr_null(strstr(t, "\nf64,"));
	free(t);
	t = tu_read_file(tu_path(run, "counterfactual/verdict.md"), NULL);
	ck_assert(t);
	ck_assert(strstr(t, "- h-grad-clip: not applicable (model.kind vae)"));
	p = strstr(t, "- f64: not run: ");
	ck_assert_msg(p != NULL, "%s", t);
	ck_assert_msg(strstr(p, "vaebench-f64, which is missing or not "
			     "executable (build the target vaebench-f64)\n"),
		      "%s", p);
	free(t);
	/* asked for by name, the refusal is the error */
	small_request(&q, run);
	q.tries[q.n_tries++] = "f64";
	ck_assert_int_eq(counterfactual_run(&q, NULL, NULL, &err),
			 VB_ERR_USAGE);
	ck_assert_msg(strstr(err.msg, "counterfactual: --try f64: ") &&
			      !strchr(err.msg, '\n'), "%s", err.msg);
}
END_TEST

/* f64 through the binary: the variant runs in vaebench-f64 from the
 * float run's start checkpoint (F32 read into double) with the same
 * batches and draws; the 1e20-scaled logvar head overflows exp in double
 * too, at the same step, and the parameters differ from float's only by
 * rounding. */
START_TEST(test_f64_sibling)
{
	const char *dir = tu_tmpdir("f64"), *bin = getenv("VB_BIN");
	char run[1100], cmd[3000], out[16384], row[2048], *t;
	struct config c;
	struct vb_error err = {0};
	double dist;
	ck_assert_msg(bin != NULL, "VB_BIN not set");
	inject_config(&c, dir);
	ck_assert(config_write_file(&c, tu_path(dir, "inj.ini"), &err) ==
		  VB_OK);
	snprintf(cmd, sizeof cmd, "'%s' train --config '%s' -q 2>&1", bin,
		 tu_path(dir, "inj.ini"));
	ck_assert_int_eq(run_cmd(cmd, out, sizeof out), 0);
	snprintf(run, sizeof run, "%s/inj", dir);
	snprintf(cmd, sizeof cmd, "'%s' counterfactual '%s' --try f64 "
		 "--try clip-adaptive --window 4 --horizon 4 --eval-n 16 "
		 "--nll-samples 2 -q 2>&1", bin, run);
	ck_assert_msg(run_cmd(cmd, out, sizeof out) == 0, "%s", out);
	t = tu_read_file(tu_path(run, "counterfactual/verdict.csv"), NULL);
	ck_assert(t);
	snprintf(row, sizeof row, "%s", verdict_row(t, "f64"));
	ck_assert_str_eq(field(row, V_SETTINGS), "train.precision=f64");
	ck_assert_str_eq(field(row, V_OUTCOME), "fails");
	ck_assert_str_eq(field(row, V_STEP), "14");
	ck_assert_str_eq(field(row, V_CAUSE), "exp_overflow");
	ck_assert_str_eq(field(row, V_NODE), "vae.std");
	dist = strtod(field(row, V_PARAM_DIST), NULL);
	/* 3 steps in double from the same state: rounding-sized, not 0 */
	ck_assert_msg(dist > 0 && dist < 1e-5, "%s", row);
	ck_assert_str_eq(field(verdict_row(t, "clip-adaptive"), V_OUTCOME),
			 "fails");
	free(t);
	/* no job or result files left behind */
	ck_assert_ptr_null(tu_read_file(tu_path(run,
						"counterfactual/.job-1"),
					NULL));
}
END_TEST

/* report --counterfactual on a sweep whose failing runs died in different
 * ways (pythae's NaN-loss check: dead parameters at the end; its
 * ValueError: finite ones): fixes.md lists both kinds and its d IS-NLL
 * is against each run's unchanged state at its param ref step; a report
 * after one run's result was removed redoes only that one (the others
 * "done already") and writes the same fixes.csv. */
START_TEST(test_sweep_fixes_mixed_causes)
{
	const char *dir = tu_tmpdir("mixed"), *bin = getenv("VB_BIN");
	char out[1100], cmd[4000], log[16384], rm[1300];
	const char *text =
		"[data]\ndataset = synthetic\nsynthetic_n = 256\n"
		"synthetic_eval_n = 64\n[model]\nhidden = 32\nlatent = 2\n"
		"[train]\nbatch = 32\nepochs = 3\nnan_check = pythae\n"
		"[optim]\nlr = 0.05\n[inject]\nnan_step = 14\n"
		"nan_phase = grad\nvalue = nan\n[run]\ncheckpoint_every = 4\n"
		"progress = off\n[sweep]\nmodel.kind = vae, rhvae\n"
		"[mitigations]\nbaseline =\n"
		"skip = train.skip_nonfinite=true\n"
		"slow = optim.lr=0.001\n";
	char *t, *fixes, *p;
	int done = 0;
	sweep_report(bin, dir, text, 2, 1, out);
	t = tu_read_file(tu_path(out, "fixes.md"), NULL);
	ck_assert(t);
	ck_assert_msg(strstr(t, "First events: 2 pythae nan_loss, 3 pythae "
			     "value_error.\n"), "%s", t);
	ck_assert_msg(strstr(t, "(0 ") == NULL && !strstr(t, "Not done"),
		      "%s", t);
	/* slow prevents the two ValueError runs of the other cells; its
	 * cost against their unchanged state is a number */
	p = strstr(t, "| slow | optim.lr=0.001 | 3 | 2 | 2 | ");
	ck_assert_msg(p != NULL, "%s", t);
	p += strlen("| slow | optim.lr=0.001 | 3 | 2 | 2 | ");
	ck_assert_msg(strncmp(p, "- ", 2) != 0 &&
			      strncmp(strstr(p, " | ") + 3, "- ", 2) != 0,
		      "%s", p);
	free(t);
	fixes = tu_read_file(tu_path(out, "fixes.csv"), NULL);
	ck_assert(fixes);
	/* every NaN-loss run has a finite reference though its unchanged
	 * variant ends dead */
	snprintf(cmd, sizeof cmd, "grep -l 'held-out there: recon [0-9]' "
		 "'%s'/runs/*/counterfactual/verdict.md | wc -l", out);
	ck_assert_int_eq(run_cmd(cmd, log, sizeof log), 0);
	ck_assert_int_eq(atoi(log), 5);
	/* resume: drop one result, report again in workers */
	snprintf(cmd, sizeof cmd, "ls -d '%s'/runs/*/counterfactual | head -1",
		 out);
	ck_assert_int_eq(run_cmd(cmd, rm, sizeof rm), 0);
	rm[strcspn(rm, "\n")] = '\0';
	snprintf(cmd, sizeof cmd, "rm -r '%s'", rm);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(cmd, sizeof cmd, "'%s' report '%s' --counterfactual "
		 "--jobs 2 2>&1", bin, out);
	ck_assert_int_eq(run_cmd(cmd, log, sizeof log), 0);
	for (p = log; (p = strstr(p, "done already")) != NULL; p++)
		done++;
	ck_assert_msg(done == 4, "%s", log);
	ck_assert_msg(strstr(log, "counterfactual: ") != NULL, "%s", log);
	t = tu_read_file(tu_path(out, "fixes.csv"), NULL);
	ck_assert(t);
	ck_assert_str_eq(t, fixes);
	free(t);
	free(fixes);
	t = tu_read_file(tu_path(rm, "verdict.csv"), NULL);
	ck_assert(t != NULL);
	free(t);
}
END_TEST

/* The sibling's result file round trip (f64 variants): a variant with no
 * event (empty quantity, op and node: a clean f64 run, the ResNet case
 * where the parent once read the held-out line as the names and lost
 * every step) and one with an event keep every field and step. */
START_TEST(test_sibling_result_round_trip)
{
	static const char *const names[2][3] = {
		{"", "", ""}, {"train_loss_sum", "mul", "rhvae.lf1.H.rho_A_rho"}};
	const char *tmp = tu_tmpdir("cfresult");
	for (int k = 0; k < 2; k++) {
		struct cf_variant *a = calloc(1, sizeof *a);
		struct cf_variant *b = calloc(1, sizeof *b);
		double slots[2][5][3];
		struct vb_error err = {0};
		char path[1200];
		ck_assert(a && b);
		a->step = slots[0][0], a->loss = slots[0][1];
		a->gnorm = slots[0][2], a->zmax = slots[0][3];
		a->pmax = slots[0][4];
		b->step = slots[1][0], b->loss = slots[1][1];
		b->gnorm = slots[1][2], b->zmax = slots[1][3];
		b->pmax = slots[1][4];
		a->cap = b->cap = 3;
		b->max_z = b->max_g = -INFINITY;
		a->n = 3;
		for (int i = 0; i < 3; i++) {
			a->step[i] = 2416 + i;
			a->loss[i] = 1e30 * (i + 1);
			a->gnorm[i] = 7.5 + i;
			a->zmax[i] = 0.25 * (i + 1);
			a->pmax[i] = 3.0 - i;
		}
		a->sum.status = k ? GUARD_STATUS_NAN : GUARD_STATUS_OK;
		a->sum.first.set = k == 1;
		a->sum.first.step = k ? 2418 : 0;
		a->sum.first.value = k ? NAN : 0;
		snprintf(a->sum.first.quantity, sizeof a->sum.first.quantity,
			 "%s", names[k][0]);
		snprintf(a->sum.first.op, sizeof a->sum.first.op, "%s",
			 names[k][1]);
		snprintf(a->sum.first.node, sizeof a->sum.first.node, "%s",
			 names[k][2]);
		a->eval_recon = 34.6;
		a->eval_nll = 741.25;
		snprintf(path, sizeof path, "%s/r%d.out", tmp, k);
		ck_assert(files_write_with(path, cf_result_write, a, false,
					   &err) == VB_OK);
		ck_assert_msg(cf_result_read(path, b, &err) == VB_OK, "%s",
			      err.msg);
		ck_assert_int_eq(b->sum.status, a->sum.status);
		ck_assert_int_eq(b->sum.first.set, a->sum.first.set);
		ck_assert_int_eq(b->sum.first.step, a->sum.first.step);
		ck_assert_str_eq(b->sum.first.quantity, names[k][0]);
		ck_assert_str_eq(b->sum.first.op, names[k][1]);
		ck_assert_str_eq(b->sum.first.node, names[k][2]);
		ck_assert_double_eq(b->eval_recon, 34.6);
		ck_assert_double_eq(b->eval_nll, 741.25);
		ck_assert_uint_eq(b->n, 3);
		for (int i = 0; i < 3; i++) {
			ck_assert_double_eq(b->step[i], a->step[i]);
			ck_assert_double_eq(b->loss[i], a->loss[i]);
			ck_assert_double_eq(b->gnorm[i], a->gnorm[i]);
			ck_assert_double_eq(b->zmax[i], a->zmax[i]);
			ck_assert_double_eq(b->pmax[i], a->pmax[i]);
		}
		free(a);
		free(b);
	}
}
END_TEST

TU_MAIN("counterfactual", "core", 120, test_summary_quoted_message,
	test_clamp_turns_event_off, test_immutable_refused,
	test_not_reproduced_fails, test_not_reproduced_value,
	test_rhvae_hclip_stable, test_sweep_fixes, test_cli_exit_codes,
	test_param_ref_last_finite, test_builtin_all, test_f64_sibling,
	test_sweep_fixes_mixed_causes, test_sibling_result_round_trip)
