/* run: the helpers every file of a training run shares (run.h): the
 * loss-scaler switch, the learning rate at the current step, node means,
 * recording the first non-finite event, CSV numbers. */
#include "run.h"
#include "runlog.h"
#include "table.h"
#include "train.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

bool run_scaler_on(const struct run *r)
{
	return r->c->train.loss_scale != CONFIG_LOSS_SCALE_NONE;
}

double run_epoch_lr(const struct run *r, long epoch0)
{
	return optim_schedule_lr(&r->sched, r->c->optim.lr, epoch0, r->step);
}

double run_mean_of(const struct graph_node *n)
{
	double acc = 0;
	if (!n)
		return NAN;
	for (size_t i = 0; i < n->value.n; i++)
		acc += n->value.data[i];
	return n->value.n ? acc / (double)n->value.n : 0;
}

/* The dataset indices of the first event's images (space-separated;
 * "..." ends a list that does not fit). */
static void run_first_batch(struct run *r)
{
	char *b = r->sum->first_batch;
	size_t cap = sizeof r->sum->first_batch, used = 0;
	b[0] = '\0';
	for (size_t i = 0; i < r->ev_n; i++) {
		char one[32];
		size_t len = (size_t)snprintf(one, sizeof one, "%s%zu",
					      i ? " " : "", r->ev_ids[i]);
		if (used + len + 4 >= cap) {
			memcpy(b + used, " ...", 5);
			return;
		}
		memcpy(b + used, one, len + 1);
		used += len;
	}
}

bool run_stop_event(struct run *r, long epoch, enum guard_phase phase,
		    const char *quantity, double value)
{
	if (!guard_record(&r->sum->first, epoch, r->step, phase, quantity,
			  value))
		return false;
	r->sum->status = guard_classify(value);
	if (r->sum->status == GUARD_STATUS_OK)
		r->sum->status = GUARD_STATUS_NAN;
	if (r->anomaly_on && r->an.ev.set)
		guard_copy_origin(&r->sum->first, &r->an.ev);
	run_first_batch(r);
	return true;
}

bool run_pythae_raised(struct run *r, long epoch, enum guard_phase phase,
		       double value)
{
	struct model_validate v;
	char q[GUARD_QUANTITY_LEN];
	bool value_error;
	if (r->c->train.nan_check != CONFIG_NAN_CHECK_PYTHAE ||
	    !model_validate_args(r->model, r->g, &v) || !v.raised)
		return false;
	value_error = !strcmp(v.error, "ValueError");
	snprintf(q, sizeof q, "%s:%s", v.error, v.node);
	run_stop_event(r, epoch, phase, q, value);
	snprintf(r->sum->message, sizeof r->sum->message, "%s: %s", v.error,
		 v.message);
	snprintf(r->sum->pythae_error, sizeof r->sum->pythae_error, "%s",
		 value_error ? "value_error" : "runtime_error");
	return true;
}

bool run_stopped(const struct train_summary *s)
{
	return s->first.set && s->status != GUARD_STATUS_OK;
}

void run_csv_double(FILE *f, double v)
{
	char b[32];
	table_fmt_real(v, b, sizeof b);
	fputs(b, f);
}

/* The running summary values of the epochs before the resume point (from
 * resume_prepare), as an uninterrupted run has them at that point. The
 * expected count of worst partial batches is re-added epoch by epoch, in
 * the order epoch_log adds it, so the sum has the same bits. */
size_t run_n_batches(const struct run *r)
{
	size_t B = (size_t)r->c->train.batch, n = r->d->train.n;
	return r->c->data.drop_last ? n / B : (n + B - 1) / B;
}

void run_restore_summary(struct run *r, const struct train_summary *prev)
{
	struct train_summary *out = r->sum;
	size_t B = (size_t)r->c->train.batch, n = r->d->train.n;
	size_t nb = run_n_batches(r);
	out->epochs_done = prev->epochs_done;
	out->steps = prev->steps;
	out->final_train_loss = prev->final_train_loss;
	out->final_eval_loss = prev->final_eval_loss;
	out->best_eval_loss = prev->best_eval_loss;
	out->best_epoch = prev->best_epoch;
	out->last_finite_epoch = prev->last_finite_epoch;
	out->sse_best = prev->sse_best;
	out->bce_best = prev->bce_best;
	out->sse_last = prev->sse_last;
	out->bce_last = prev->bce_last;
	out->sse_max = prev->sse_max;
	out->worst_partial_epochs = prev->worst_partial_epochs;
	out->trained_epochs = prev->trained_epochs;
	for (long e = 0; nb * B > n && nb > 0 && e < prev->trained_epochs;
	     e++)
		out->worst_partial_expected += 1.0 / (double)nb;
	/* a finished run continued (--epochs): its IS-NLL at the best epoch
	 * stands while that epoch stays the best (the same snapshot and
	 * draws give the same number; heldout_nll recomputes it otherwise) */
	if (prev->nll_best_set) {
		out->nll_best = prev->nll_best;
		out->nll_best_set = true;
	}
	if (prev->nll_last_set) {
		out->nll_last = prev->nll_last;
		out->nll_last_set = true;
	}
	/* the first gradient-norm spike, when the first part had one (the
	 * running median's window restarts at the resume point, so a spike
	 * found after it may differ from an uninterrupted run's) */
	out->lead_step = prev->lead_step;
	/* the row's seconds cover every part of the run */
	r->prior_seconds = runlog_seconds_upto(r->dir, prev->epochs_done);
}
