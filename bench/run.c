/* run: the helpers every file of a training run shares (run.h): the
 * loss-scaler switch, the learning rate at the current step, node means,
 * recording the first non-finite event, CSV numbers. */
#include "run.h"

#include <math.h>

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
	return true;
}

bool run_stopped(const struct train_summary *s)
{
	return s->first.set && s->status != GUARD_STATUS_OK;
}

void run_csv_double(FILE *f, double v)
{
	if (isnan(v))
		fputs("nan", f);
	else if (isinf(v))
		fputs(v > 0 ? "inf" : "-inf", f);
	else
		fprintf(f, "%.9g", v);
}

