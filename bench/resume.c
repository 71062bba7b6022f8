/* resume: an interrupted run folder made ready for train --resume (the
 * last epoch-boundary checkpoint, metrics.csv and times.csv cut back to it,
 * the running summary values restored). Running the rest is train.c's. */
#include "resume.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"
#include "forensics.h"

/* Splits line (modified) at commas into at most cap fields; returns the
 * count. Empty fields are kept. */
static int split_csv(char *line, char **f, int cap)
{
	int n = 0;
	char *p = line;
	while (n < cap) {
		f[n++] = p;
		p = strchr(p, ',');
		if (!p)
			break;
		*p++ = '\0';
	}
	return n;
}

static int field_index(char **f, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(f[i], name))
			return i;
	return -1;
}

/* The columns of metrics.csv that the running summary values come from
 * (-1: absent, as in older run folders). */
struct metrics_cols {
	int ep, steps, tl, el, sse, bce, worst, partial;
};

/* The columns of a metrics.csv header (f, n fields). */
static void metrics_cols_find(struct metrics_cols *mc, char **f, int n)
{
	static const char *const names[] = {
		"epoch", "steps", "train_loss", "eval_loss", "eval_sse",
		"eval_bce", "worst_batch", "worst_partial"};
	int *cols[] = {&mc->ep, &mc->steps, &mc->tl, &mc->el, &mc->sse,
		       &mc->bce, &mc->worst, &mc->partial};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		*cols[i] = field_index(f, n, names[i]);
}

static double csv_num(char **f, int n, int i)
{
	return i >= 0 && i < n && f[i][0] ? strtod(f[i], NULL) : NAN;
}

/* The running summary values after one kept line of metrics.csv, as
 * train.c's epoch_log forms them (a line is an epoch that ended without
 * an event: a resumable run has had none). */
static void restore_epoch(struct train_summary *s,
			  const struct metrics_cols *mc, char **f, int n,
			  long ep, long *trained)
{
	double el = csv_num(f, n, mc->el), sse = csv_num(f, n, mc->sse);
	double bce = csv_num(f, n, mc->bce);
	bool evaluated = mc->el >= 0 && mc->el < n && f[mc->el][0];
	s->epochs_done = ep;
	s->final_train_loss = csv_num(f, n, mc->tl);
	if (mc->steps >= 0 && mc->steps < n)
		s->steps = strtol(f[mc->steps], NULL, 10);
	if (evaluated)
		s->final_eval_loss = el;
	if (isfinite(el) && el < s->best_eval_loss) {
		s->best_eval_loss = el;
		s->best_epoch = ep;
		s->sse_best = sse;
		s->bce_best = bce;
	}
	if (evaluated && isfinite(el)) {
		s->last_finite_epoch = ep;
		s->sse_last = sse;
		s->bce_last = bce;
	}
	if (evaluated && mc->sse >= 0 && isnan(sse))
		s->sse_max = NAN;
	else if (evaluated && sse > s->sse_max)
		s->sse_max = sse;
	/* worst_batch is set on every trained epoch; the partial flag is
	 * "true"/"false" only when the epoch had a partial batch (the
	 * expected count is added back by the caller, which knows the
	 * batches per epoch) */
	if (mc->partial >= 0 && mc->partial < n && mc->worst >= 0 &&
	    mc->worst < n && f[mc->worst][0]) {
		s->worst_partial_epochs += !strcmp(f[mc->partial], "true");
		(*trained)++;
	}
}

/* Keeps the header and the lines of epochs <= last of run_dir/name (a
 * per-epoch log whose first column is the epoch); with metrics, restores
 * the running summary values from the kept lines. */
static enum vb_status cut_log(const char *run_dir, const char *name,
			      long last, struct train_summary *s,
			      long *trained, struct vb_error *err)
{
	char path[1200], *text = NULL, *line, *save = NULL;
	char *out;
	size_t len = 0, olen = 0;
	struct metrics_cols mc = {0};
	bool header = true;
	enum vb_status st;
	snprintf(path, sizeof path, "%s/%s", run_dir, name);
	st = files_read(path, &text, &len, err);
	if (st != VB_OK)
		return st;
	out = malloc(len + 1);
	if (!out) {
		free(text);
		return vb_fail(err, VB_ERR_NOMEM, "train: no memory");
	}
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char copy[4096], *f[64];
		size_t ll = strlen(line);
		int n;
		long ep;
		if (ll >= sizeof copy)
			continue;
		memcpy(copy, line, ll + 1);
		n = split_csv(copy, f, 64);
		if (header) {
			header = false;
			metrics_cols_find(&mc, f, n);
			if (mc.ep < 0) {
				free(text);
				free(out);
				return vb_fail(err, VB_ERR_DATA, "train: %s: "
					       "no epoch column", path);
			}
		} else {
			char *end;
			if (mc.ep >= n)
				break;
			ep = strtol(f[mc.ep], &end, 10);
			if (end == f[mc.ep] || *end || ep > last || ep < 1)
				break; /* a later or torn line */
			if (s && mc.tl >= 0 && mc.tl < n)
				restore_epoch(s, &mc, f, n, ep, trained);
		}
		memcpy(out + olen, line, ll);
		olen += ll;
		out[olen++] = '\n';
	}
	out[olen] = '\0';
	st = files_write_text(path, out, err);
	free(text);
	free(out);
	return st;
}

/* The column name of run_dir/summary.csv into value (cap bytes); ""
 * when there is no summary or no such column. */
static void summary_field(const char *run_dir, const char *name,
			  char *value, size_t cap)
{
	char path[1200], *text = NULL, *nl, *f[96];
	int n, i;
	value[0] = '\0';
	snprintf(path, sizeof path, "%s/summary.csv", run_dir);
	if (files_read(path, &text, NULL, NULL) != VB_OK)
		return;
	nl = strchr(text, '\n');
	if (nl) {
		*nl = '\0';
		n = split_csv(text, f, 96);
		i = field_index(f, n, name);
		if (i >= 0) {
			char *row = nl + 1, *g[96];
			int m;
			row[strcspn(row, "\n")] = '\0';
			m = split_csv(row, g, 96);
			if (i < m)
				snprintf(value, cap, "%s", g[i]);
		}
	}
	free(text);
}

/* The first gradient-norm spike (lead_step) when it lies before the
 * resume point, and the IS-NLL values of a run that ended, when
 * summary.csv has them for the best and last finite epochs that
 * metrics.csv gave (a continued run keeps them while those epochs stay
 * its best and last). */
/* summary.csv's IS-NLL column nll_col when its epoch column ep_col says
 * epoch (a snapshot this run still has): into *v and *set; false when
 * the epoch differs (the later values cannot match either). */
static bool restore_one_nll(const char *run_dir, const char *ep_col,
			    long epoch, const char *nll_col, double *v,
			    bool *set)
{
	char f[64];
	summary_field(run_dir, ep_col, f, sizeof f);
	if (!f[0] || strtol(f, NULL, 10) != epoch)
		return false;
	summary_field(run_dir, nll_col, f, sizeof f);
	if (f[0]) {
		*v = strtod(f, NULL);
		*set = true;
	}
	return true;
}

static void restore_nll(const char *run_dir, struct train_summary *s)
{
	char v[64];
	summary_field(run_dir, "lead_step", v, sizeof v);
	if (v[0] && strtol(v, NULL, 10) <= s->steps) /* not in a redone part */
		s->lead_step = strtol(v, NULL, 10);
	if (restore_one_nll(run_dir, "best_epoch", s->best_epoch, "nll_best",
			    &s->nll_best, &s->nll_best_set))
		restore_one_nll(run_dir, "last_finite_epoch",
				s->last_finite_epoch, "nll_last", &s->nll_last,
				&s->nll_last_set);
}

/* The latest step checkpoint of run_dir when it lies on an epoch
 * boundary (trainer.batch 0 or absent: run.checkpoint_every = 0 with
 * guard.replay writes one at every epoch end) into ckpt. */
static bool latest_epoch_checkpoint(const char *run_dir, char *ckpt,
				    size_t cap)
{
	struct checkpoint *ck = NULL;
	int64_t batch = 0;
	long step = 0;
	bool ok;
	if (forensics_find_checkpoint(run_dir, 0, ckpt, cap, &step, NULL) !=
		    VB_OK ||
	    checkpoint_open(ckpt, &ck, NULL) != VB_OK)
		return false;
	ok = !checkpoint_data(ck, "trainer.batch") ||
	     (checkpoint_read_i64(ck, "trainer.batch", 0, 0, &batch, NULL) ==
	      VB_OK);
	checkpoint_close(ck);
	return ok;
}

enum vb_status resume_prepare(const char *run_dir, long extend_to,
			      char *ckpt, size_t cap,
			      struct train_summary *resumed,
			      struct vb_error *err)
{
	char path[1200], status[64];
	struct checkpoint *ck = NULL;
	int64_t ep = 0;
	bool ended, ok_end;
	enum vb_status st;
	memset(resumed, 0, sizeof *resumed);
	resumed->best_eval_loss = INFINITY;
	resumed->final_train_loss = resumed->final_eval_loss = NAN;
	resumed->sse_best = resumed->bce_best = NAN;
	resumed->sse_last = resumed->bce_last = NAN;
	resumed->sse_max = -INFINITY;
	resumed->nll_best = resumed->nll_last = NAN;
	resumed->lead_step = -1;
	snprintf(path, sizeof path, "%s/config.ini", run_dir);
	if (!files_exists(path))
		return vb_fail(err, VB_ERR_DATA, "train: --resume %s: not a "
			       "run folder (no config.ini)", run_dir);
	summary_field(run_dir, "status", status, sizeof status);
	ended = status[0] && strcmp(status, "interrupted") != 0;
	if (ended && extend_to <= 0)
		return vb_fail(err, VB_ERR_CONFIG, "train: --resume %s: the "
			       "run already ended (status %s); --epochs N "
			       "continues it to more epochs, --force starts it "
			       "again", run_dir, status);
	if (ended && !strcmp(status, "error"))
		return vb_fail(err, VB_ERR_CONFIG, "train: --resume %s: the "
			       "run ended with an error (summary.csv's "
			       "message); it cannot go on", run_dir);
	/* ok: from its final checkpoint; stopped at a non-finite value: from
	 * its last epoch-boundary checkpoint, redoing the epochs after it
	 * (the same event again, as a fresh run would meet it) */
	ok_end = ended && !strcmp(status, "ok");
	if (ok_end)
		snprintf(ckpt, cap, "%s/checkpoint.safetensors", run_dir);
	else
		snprintf(ckpt, cap, "%s/" TRAIN_EPOCH_CKPT, run_dir);
	if (!ok_end && !files_exists(ckpt) &&
	    !latest_epoch_checkpoint(run_dir, ckpt, cap))
		snprintf(ckpt, cap, "%s/checkpoints/step-%09d.safetensors",
			 run_dir, 0);
	if (!files_exists(ckpt))
		return vb_fail(err, VB_ERR_DATA, "train: --resume %s: no "
			       "resume checkpoint (%s)", run_dir,
			       ok_end ? "checkpoint.safetensors is missing"
				      : "run.checkpoint_every = 0 when it ran?");
	st = checkpoint_open(ckpt, &ck, err);
	if (st == VB_OK)
		st = checkpoint_read_i64(ck, "trainer.epoch", 0,
					 CHECKPOINT_COUNT_MAX, &ep, err);
	checkpoint_close(ck);
	if (st == VB_OK && ok_end && extend_to <= ep)
		st = vb_fail(err, VB_ERR_USAGE, "train: --resume %s --epochs "
			     "%ld: the run already has %lld epochs; expected "
			     "more", run_dir, extend_to, (long long)ep);
	if (st == VB_OK)
		st = cut_log(run_dir, "metrics.csv", (long)ep, resumed,
			     &resumed->trained_epochs, err);
	if (st == VB_OK)
		st = cut_log(run_dir, "times.csv", (long)ep, NULL, NULL, err);
	if (st == VB_OK && resumed->epochs_done != (long)ep)
		st = vb_fail(err, VB_ERR_DATA, "train: --resume %s: "
			     "metrics.csv ends at epoch %ld, the checkpoint "
			     "at epoch %lld", run_dir, resumed->epochs_done,
			     (long long)ep);
	if (st == VB_OK)
		restore_nll(run_dir, resumed);
	if (st == VB_OK) {
		snprintf(path, sizeof path, "%s/summary.csv", run_dir);
		remove(path);
	}
	return st;
}

enum vb_status resume_check_extend(const struct config *c,
				   struct vb_error *err)
{
	const char *why = NULL;
	if (c->optim.schedule == OPTIM_SCHEDULE_COSINE)
		why = "optim.schedule = cosine decays over train.epochs";
	else if (c->train.max_steps > 0)
		why = "train.max_steps ends it by steps";
	else if (c->train.epochs % c->train.eval_every != 0)
		why = "its last epoch is evaluated only as the last "
		      "(train.eval_every does not divide train.epochs)";
	if (!why)
		return VB_OK;
	return vb_fail(err, VB_ERR_CONFIG, "cannot continue a run of %lld "
		       "epochs to more epochs: %s",
		       (long long)c->train.epochs, why);
}
