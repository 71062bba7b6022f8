/* step: one epoch of training as a loop over optimiser steps, each step a
 * pipeline of named stages (DESIGN.md "How one training step flows"):
 *
 *   input -> forward -> backward   (once per micro-batch, train.accumulate)
 *   -> mitigate -> update -> record
 *
 * Each stage returns an outcome: go on, skip the step (the batch gets no
 * update, training goes on), stop the run, or an error. What happens to a
 * non-finite value at a check point is looked up once per run (policy_of:
 * train.skip_nonfinite skips, train.nan_check = strict stops), and the
 * gradient treatment by optim.clip is optim_clip_apply's (every mode,
 * adaptive included, with its counts and state), so the stages
 * carry no mitigation logic of their own. Forensics (precursor ring,
 * dumps, resume checkpoints) are forensics.c's; fault injection inject.c's.
 * Nothing here allocates: the step reuses the tape's arena and the run's
 * buffers. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "forensics.h"
#include "inject.h"
#include "params.h"
#include "run.h"
#include "train.h"

enum step_outcome {
	STEP_GO,    /* the next stage runs */
	STEP_SKIP,  /* the step ends without an update; training goes on */
	STEP_STOP,  /* the run ends after this step is recorded */
	STEP_ERROR  /* a data or I/O failure (st, err) */
};

/* What a non-finite input, loss or gradient norm does. */
enum step_policy {
	STEP_POLICY_PASS, /* nothing (nan_check pythae or off) */
	STEP_POLICY_SKIP, /* train.skip_nonfinite: skip the batch */
	STEP_POLICY_STOP  /* nan_check strict: record the event and stop */
};

/* One optimiser step: micro-batches [b, b_end) of the epoch's n_batches. */
struct step {
	long epoch;
	size_t b, b_end, n_batches;
	enum step_policy policy;
	double lr;
	size_t m;                /* the current micro-batch's index */
	size_t nb;               /* the current micro-batch's size */
	const size_t *ids;       /* (nb) its image indices */
	struct model_out mo;
	double mloss;            /* the current micro-batch's loss */
	double loss, gnorm, max_param;
	double loss_g, recon_g, reg_g; /* sums over the micro-batches */
	size_t n_micro;
	bool have_out, have_grad, updated, dump_now, counted;
	bool inj_input, inj_param, inj_grad, inj_raw;
	enum vb_status st;       /* of STEP_ERROR */
};

static enum step_policy policy_of(const struct config *c)
{
	if (c->train.skip_nonfinite)
		return STEP_POLICY_SKIP;
	if (c->train.nan_check == CONFIG_NAN_CHECK_STRICT)
		return STEP_POLICY_STOP;
	return STEP_POLICY_PASS;
}

/* ---- helpers of the stages ---- */

/* Counts optimiser step r->step + 1 as begun (once per step: the first of
 * its micro-batches that gets this far). */
static void step_begin(struct run *r, struct step *s)
{
	if (!s->counted) {
		r->step++;
		s->counted = true;
	}
}

/* train.skip_nonfinite: the batch gets no update and training goes on.
 * The first such event is still recorded (with its forensics), but the
 * run's status stays ok unless something unskippable follows. */
static enum step_outcome skip_batch(struct run *r, const struct step *s,
				    enum guard_phase phase,
				    const char *quantity, double value)
{
	enum guard_status before = r->sum->status;
	run_stop_event(r, s->epoch, phase, quantity, value);
	r->sum->status = before;
	r->sum->skipped++;
	return STEP_SKIP;
}

/* Loss scaling: the seed of every micro-batch's backward is S / N (the
 * loss divided by train.accumulate, times the scale). */
static double backward_seed(const struct run *r)
{
	return r->scale / (double)r->c->train.accumulate;
}

/* The step's loss sums join the epoch's. */
static void add_losses(const struct step *s, struct epoch_stats *es)
{
	es->sum_loss += s->loss_g;
	es->sum_recon += s->recon_g;
	es->sum_reg += s->reg_g;
	es->n_loss += (long)s->n_micro;
}

/* ---- input ---- */

/* A non-finite pixel under the policy: skip, or stop naming the samples
 * (the step is not counted as begun by the input alone). */
static enum step_outcome input_nonfinite(struct run *r, struct step *s,
					 size_t bad)
{
	struct params *p = r->model->params;
	enum step_outcome out;
	if (s->policy == STEP_POLICY_SKIP) {
		step_begin(r, s);
		out = skip_batch(r, s, GUARD_PHASE_INPUT, "input", r->x[bad]);
	} else {
		/* steps are 1-based: this is step r->step+1 unless it began */
		bool began = s->counted;
		step_begin(r, s);
		if (run_stop_event(r, s->epoch, GUARD_PHASE_INPUT, "input",
				   r->x[bad]) &&
		    !r->sum->first.origin)
			anomaly_describe_input(&r->sum->first, r->x, s->nb,
					       r->d->train.d, s->ids);
		if (!began)
			r->step--;
		out = STEP_STOP;
	}
	graph_reset(r->g);
	params_zero_grad(p);
	return out;
}

/* Micro-batch m into r->x: gather, preprocess, injected faults, the
 * input check. */
static enum step_outcome stage_input(struct run *r, struct step *s, size_t m,
				     struct vb_error *err)
{
	const struct config *c = r->c;
	const struct dataset *ds = &r->d->train;
	size_t B = (size_t)c->train.batch, D = ds->d, bad;
	s->m = m;
	/* a full batch unless it runs past the data (the last one, partial,
	 * when data.drop_last keeps it) */
	s->nb = (m + 1) * B <= ds->n ? B : ds->n - m * B;
	s->ids = r->perm + m * B;
	/* the step's images so far: a first event names them (first_batch) */
	r->ev_ids = r->perm + s->b * B;
	r->ev_n = (m - s->b) * B + s->nb;
	dataset_batch(ds, s->ids, s->nb, (vb_real)c->data.scale, r->x);
	s->st = preprocess_apply(&r->prep, r->x, s->nb, NULL, err);
	if (s->st != VB_OK)
		return STEP_ERROR;
	if (s->inj_raw)
		inject_rescale_raw(r->x, s->nb * D, c->data.scale);
	if (s->inj_input && m == s->b)
		inject_apply(&c->inject, r->x, s->nb * D);
	if (s->policy == STEP_POLICY_PASS ||
	    guard_all_finite(r->x, s->nb * D, &bad))
		return STEP_GO;
	return input_nonfinite(r, s, bad);
}

/* ---- forward ---- */

/* The epoch's worst micro-batch so far: the highest loss (a NaN is worse
 * than any number), its index in the epoch and whether it is partial
 * (fewer than train.batch images: the epoch's last one). */
static void track_worst(const struct run *r, const struct step *s,
			struct epoch_stats *es)
{
	double w = es->worst_loss;
	if (es->worst_batch >= 0 && !(s->mloss > w) &&
	    !(isnan(s->mloss) && !isnan(w)))
		return;
	es->worst_loss = s->mloss;
	es->worst_batch = (long)s->m;
	es->worst_partial = s->nb < (size_t)r->c->train.batch;
}

static enum step_outcome stage_forward(struct run *r, struct step *s,
				       struct epoch_stats *es,
				       struct vb_error *err)
{
	size_t xs[2] = {s->nb, r->d->train.d};
	struct graph_node *xn;
	graph_reset(r->g);
	if (r->anomaly_on)
		anomaly_begin(&r->an, GUARD_PHASE_FORWARD, s->epoch,
			      r->step + !s->counted, s->nb, s->ids);
	xn = graph_input(r->g, "input", tensor_view(r->x, 2, xs), false);
	s->st = model_build_loss(r->model, r->g, xn, &r->noise, true, &s->mo,
				 err);
	if (s->st != VB_OK)
		return STEP_ERROR;
	s->have_out = true;
	s->mloss = s->mo.loss->value.data[0];
	step_begin(r, s);
	track_worst(r, s, es);
	if (run_pythae_raised(r, s->epoch, GUARD_PHASE_FORWARD, s->mloss)) {
		s->loss = s->mloss;
		return STEP_STOP;
	}
	if (s->policy == STEP_POLICY_PASS || isfinite(s->mloss))
		return STEP_GO;
	s->loss = s->mloss;
	if (s->policy == STEP_POLICY_SKIP)
		return skip_batch(r, s, GUARD_PHASE_FORWARD, "loss", s->mloss);
	run_stop_event(r, s->epoch, GUARD_PHASE_FORWARD, "loss", s->mloss);
	return STEP_STOP;
}

/* ---- backward ---- */

/* The micro-batch's gradient joins the step's (zeroed at its first). */
static enum step_outcome stage_backward(struct run *r, struct step *s,
					size_t m, struct epoch_stats *es,
					struct vb_error *err)
{
	if (m == s->b)
		params_zero_grad(r->model->params);
	if (r->anomaly_on)
		anomaly_begin(&r->an, GUARD_PHASE_BACKWARD, s->epoch, r->step,
			      s->nb, s->ids);
	s->st = graph_backward_scaled(r->g, s->mo.loss, backward_seed(r), err);
	if (s->st != VB_OK)
		return STEP_ERROR;
	s->have_grad = true;
	s->loss_g += s->mloss;
	s->recon_g += run_mean_of(s->mo.recon);
	s->reg_g += run_mean_of(s->mo.reg);
	s->n_micro++;
	es->images += (long)s->nb;
	return STEP_GO;
}

/* input -> forward -> backward for every micro-batch of the step. */
static enum step_outcome step_micro_batches(struct run *r, struct step *s,
					    struct epoch_stats *es,
					    struct vb_error *err)
{
	enum step_outcome out = STEP_GO;
	for (size_t m = s->b; out == STEP_GO && m < s->b_end; m++) {
		out = stage_input(r, s, m, err);
		if (out == STEP_GO)
			out = stage_forward(r, s, es, err);
		if (out == STEP_GO)
			out = stage_backward(r, s, m, es, err);
	}
	if (out == STEP_GO)
		s->loss = s->loss_g / (double)s->n_micro;
	return out;
}

/* ---- mitigate ---- */

/* GradScaler.unscale_: multiplies the summed gradients by 1/S (computed
 * in double, applied in vb_real as PyTorch's float inv_scale). Returns
 * true when every unscaled gradient is finite. */
static bool scaler_unscale(struct run *r)
{
	struct params *p = r->model->params;
	vb_real inv = (vb_real)(1.0 / r->scale);
	for (size_t i = 0; i < p->n; i++)
		p->grad[i] *= inv;
	return guard_all_finite(p->grad, p->n, NULL);
}

/* train.loss_scale = dynamic and the unscaled gradient is not finite:
 * as GradScaler, skip the step, back off and go on. A skipped step's
 * overflow is not the run's origin: anomaly mode looks afresh (its check
 * counter stays). */
static enum step_outcome scaler_skip(struct run *r, struct step *s,
				     struct epoch_stats *es)
{
	struct params *p = r->model->params;
	s->gnorm = optim_grad_norm(p->grad, p->n);
	r->scale = (double)(float)(r->scale * r->c->train.scale_backoff);
	r->scale_good = 0;
	r->sum->skipped++;
	r->sum->scaler_skipped++;
	if (r->anomaly_on) {
		size_t checks = r->an.n_checks;
		anomaly_reset(&r->an);
		r->an.n_checks = checks;
	}
	add_losses(s, es);
	return STEP_SKIP;
}

/* Injected gradient faults, loss-scale unscaling, clipping and the check
 * of the gradient norm. */
static enum step_outcome stage_mitigate(struct run *r, struct step *s,
					struct epoch_stats *es)
{
	const struct config *c = r->c;
	struct params *p = r->model->params;
	if (s->inj_grad) {
		size_t tn;
		vb_real *tp = inject_target(&c->inject, p, p->grad, &tn);
		inject_apply(&c->inject, tp, tn);
	}
	if (run_scaler_on(r) && !scaler_unscale(r) &&
	    c->train.loss_scale == CONFIG_LOSS_SCALE_DYNAMIC)
		return scaler_skip(r, s, es);
	s->gnorm = optim_clip_apply(r->clip, p->grad, p->n, NULL);
	r->norms[es->batches] = s->gnorm;
	if (s->policy == STEP_POLICY_PASS || isfinite(s->gnorm))
		return STEP_GO;
	if (s->policy == STEP_POLICY_SKIP) {
		skip_batch(r, s, GUARD_PHASE_BACKWARD, "grad_norm", s->gnorm);
		params_zero_grad(p);
		return STEP_SKIP;
	}
	if (run_stop_event(r, s->epoch, GUARD_PHASE_BACKWARD, "grad_norm",
			   s->gnorm) &&
	    !r->sum->first.origin && r->sum->first.cause == GUARD_CAUSE_UNKNOWN)
		anomaly_describe_grad(&r->sum->first, p);
	return STEP_STOP;
}

/* ---- update ---- */

/* Checks the parameters after an update (one integer pass that also
 * gives max |param|); names the first bad one and its cause. */
static bool params_finite(struct run *r, long epoch, double *max_abs)
{
	size_t bad;
	struct params *p = r->model->params;
	char q[GUARD_QUANTITY_LEN];
	long e;
	*max_abs = guard_max_abs(p->data, p->n);
	if (isfinite(*max_abs))
		return true;
	guard_all_finite(p->data, p->n, &bad);
	e = params_locate(p, bad);
	snprintf(q, sizeof q, "param:%s", e >= 0 ? p->entries[e].name : "?");
	if (run_stop_event(r, epoch, GUARD_PHASE_UPDATE, q, p->data[bad]) &&
	    !r->sum->first.origin)
		anomaly_describe_update(&r->sum->first, p, r->opt, p->grad,
					bad);
	return false;
}

/* The dynamic loss scale grows after scale_interval good steps, as
 * torch's _amp_update_scale_: only to a finite float. */
static void scaler_grow(struct run *r)
{
	const struct config *c = r->c;
	if (c->train.loss_scale != CONFIG_LOSS_SCALE_DYNAMIC ||
	    ++r->scale_good < c->train.scale_interval)
		return;
	float grown = (float)(r->scale * c->train.scale_growth);
	if (isfinite(grown))
		r->scale = (double)grown;
	r->scale_good = 0;
}

/* The optimiser step, then the checks of the updated state: parameters
 * (strict) and pythae's running loss sum (rhvae.md 5.3). */
static enum step_outcome stage_update(struct run *r, struct step *s,
				      struct epoch_stats *es)
{
	const struct config *c = r->c;
	struct params *p = r->model->params;
	if (s->dump_now)
		memcpy(r->p_before, p->data, p->n * sizeof *p->data);
	optim_step(r->opt, p->data, p->grad, s->lr);
	s->updated = true;
	scaler_grow(r);
	add_losses(s, es);
	es->batches++;
	if (c->train.nan_check == CONFIG_NAN_CHECK_STRICT) {
		if (!params_finite(r, s->epoch, &s->max_param))
			return STEP_STOP;
	} else if (r->ring_cap) {
		s->max_param = guard_max_abs(p->data, p->n);
	}
	if (c->train.nan_check == CONFIG_NAN_CHECK_PYTHAE &&
	    es->sum_loss != es->sum_loss) {
		run_stop_event(r, s->epoch, GUARD_PHASE_UPDATE,
			       "train_loss_sum", es->sum_loss);
		snprintf(r->sum->message, sizeof r->sum->message,
			 "NaN detected in train loss");
		snprintf(r->sum->pythae_error, sizeof r->sum->pythae_error,
			 "nan_loss");
		return STEP_STOP;
	}
	return STEP_GO;
}

/* ---- record ---- */

/* The precursor ring, and the dump when replay --dump asked for this
 * step (a step that stopped before its backward runs it for the dump;
 * nothing is updated). */
static enum vb_status stage_record(struct run *r, struct step *s,
				   struct vb_error *err)
{
	enum vb_status st;
	forensics_record(r, s->epoch, s->lr, s->loss, &s->mo, s->have_out,
			 s->gnorm, s->have_grad, s->max_param);
	if (r->o->on_step) {
		struct train_step_info in = {
			.epoch = s->epoch, .step = r->step, .loss = s->loss,
			.grad_norm = s->gnorm, .max_abs_z = NAN,
			.max_abs_param = guard_max_abs(r->model->params->data,
						       r->model->params->n)};
		if (s->have_out && s->mo.z && s->mo.z->value.data)
			in.max_abs_z = guard_max_abs(s->mo.z->value.data,
						     s->mo.z->value.n);
		r->o->on_step(r->o->on_step_ctx, &in);
	}
	if (!s->dump_now)
		return VB_OK;
	if (!s->have_grad && s->have_out) {
		params_zero_grad(r->model->params);
		st = graph_backward_scaled(r->g, s->mo.loss, backward_seed(r),
					   err);
		if (st != VB_OK)
			return st;
	}
	return forensics_write_dump(r, r->o->dump, s->epoch, s->ids, s->nb,
				    s->updated, err);
}

/* ---- the epoch ---- */

/* A fresh step over [b, b_end): its injected faults are decided, the
 * parameter fault applied, the warm-up learning rate taken. */
static void step_prepare(struct run *r, struct step *s, double *lr)
{
	const struct config *c = r->c;
	const struct config_inject *in = &c->inject;
	long next = r->step + 1;
	s->inj_input = inject_due(in, next, CONFIG_NAN_PHASE_INPUT);
	s->inj_param = inject_due(in, next, CONFIG_NAN_PHASE_PARAM);
	s->inj_grad = inject_due(in, next, CONFIG_NAN_PHASE_GRAD);
	s->inj_raw = inject_due(in, next, CONFIG_NAN_PHASE_UNNORMALIZED);
	s->dump_now = forensics_dump_step(r) == next;
	if (c->optim.schedule == OPTIM_SCHEDULE_WARMUP)
		*lr = run_epoch_lr(r, s->epoch - 1);
	s->lr = *lr;
	if (s->inj_param) {
		struct params *p = r->model->params;
		size_t tn;
		vb_real *tp = inject_target(in, p, p->data, &tn);
		inject_apply(in, tp, tn);
	}
}

/* The step limits (train.max_steps, a replay's stop step) are reached. */
static bool step_limit(const struct run *r)
{
	return (r->c->train.max_steps > 0 &&
		r->step >= r->c->train.max_steps) ||
	       (r->o->stop_step > 0 && r->step >= r->o->stop_step);
}

/* run.checkpoint_every: a resume checkpoint after this step (mid-epoch
 * now, or at the epoch's end once it is evaluated). */
static enum vb_status step_checkpoint(struct run *r, const struct step *s,
				      struct vb_error *err)
{
	long every = (long)r->c->run.checkpoint_every;
	if (r->o->snapshot && r->step == r->o->snapshot_step) {
		enum vb_status st = forensics_write_checkpoint(
			r, r->o->snapshot, s->epoch - 1, (long)s->b_end, err);
		if (st != VB_OK)
			return st;
	}
	if (!forensics_checkpoints_on(r) || every <= 0 ||
	    r->step % every != 0 || run_stopped(r->sum))
		return VB_OK;
	if (s->b_end < s->n_batches)
		return forensics_resume_checkpoint(r, s->epoch - 1,
						   (long)s->b_end, err);
	r->ckpt_pending = true;
	return VB_OK;
}

/* The progress bar on a terminal (every 8 steps and at the end). */
/* Without a terminal: one line every run.progress_every seconds with
 * the step, speed and the epoch's ETA, so a log never stays silent for
 * a whole epoch. */
static void step_progress_line(struct run *r, const struct step *s,
			       const struct epoch_stats *es, double t0)
{
	double now = files_now(), el = now - t0, rate;
	if (now - r->progress_last < r->c->run.progress_every)
		return;
	r->progress_last = now;
	rate = el > 0 ? (double)s->b_end / el : 0;
	fprintf(r->log, "epoch %ld/%lld: batch %zu/%zu, step %ld, loss %.4g, "
		"%.0f img/s, epoch ETA %.0f s\n", s->epoch,
		(long long)r->c->train.epochs, s->b_end, s->n_batches, r->step,
		es->sum_loss / (double)(es->n_loss ? es->n_loss : 1),
		el > 0 ? (double)es->images / el : 0.0,
		rate > 0 ? (double)(s->n_batches - s->b_end) / rate : 0.0);
	fflush(r->log);
}

static void step_progress(struct run *r, const struct step *s,
			  const struct epoch_stats *es, double t0)
{
	size_t n_acc = (size_t)r->c->train.accumulate;
	double el;
	int w = 30, fill;
	if (r->progress_lines)
		step_progress_line(r, s, es, t0);
	if (!r->tty ||
	    ((s->b_end - 1) / n_acc % 8 != 0 && s->b_end != s->n_batches))
		return;
	el = files_now() - t0;
	fill = (int)((double)s->b_end * w / (double)s->n_batches);
	fprintf(r->log, "\repoch %ld/%lld [%.*s%*s] %zu/%zu "
		"loss %.4g  %.0f img/s ", s->epoch,
		(long long)r->c->train.epochs, fill,
		"==============================", w - fill, "", s->b_end,
		s->n_batches,
		es->sum_loss / (double)(es->n_loss ? es->n_loss : 1),
		el > 0 ? (double)es->images / el : 0.0);
	fflush(r->log);
}

/* The epoch's permutation (resumed mid-epoch: the checkpoint's, and the
 * shuffle stream is already past it); returns the first batch. */
static size_t epoch_begin(struct run *r, long epoch)
{
	size_t n = r->d->train.n, b0 = 0;
	if (epoch == r->start_epoch && r->start_batch > 0) {
		b0 = r->start_batch;
		r->start_batch = 0;
	} else if (r->c->train.shuffle) {
		rng_permutation(&r->shuffle, r->perm, n);
	} else {
		for (size_t i = 0; i < n; i++)
			r->perm[i] = i;
	}
	return b0;
}

/* Loss means and the min / median / max of the gradient norms. */
static void epoch_finish(struct run *r, struct epoch_stats *es)
{
	size_t k = (size_t)es->batches;
	if (es->n_loss) {
		es->loss = es->sum_loss / (double)es->n_loss;
		es->recon = es->sum_recon / (double)es->n_loss;
		es->reg = es->sum_reg / (double)es->n_loss;
	} else {
		es->loss = es->recon = es->reg = NAN;
	}
	if (k == 0) {
		es->gmin = es->gmed = es->gmax = NAN;
		return;
	}
	memcpy(r->sorted, r->norms, k * sizeof *r->sorted);
	qsort(r->sorted, k, sizeof *r->sorted, files_cmp_double);
	es->gmin = r->sorted[0];
	es->gmax = r->sorted[k - 1];
	es->gmed = k % 2 ? r->sorted[k / 2]
			 : 0.5 * (r->sorted[k / 2 - 1] + r->sorted[k / 2]);
}

/* One step through the pipeline; VB_OK with *stop when the run ends. */
static enum vb_status step_run(struct run *r, struct step *s,
			       struct epoch_stats *es, bool *stop,
			       struct vb_error *err)
{
	enum step_outcome out = step_micro_batches(r, s, es, err);
	enum vb_status st;
	if (out == STEP_GO)
		out = stage_mitigate(r, s, es);
	if (out == STEP_GO)
		out = stage_update(r, s, es);
	if (out == STEP_ERROR)
		return s->st;
	st = stage_record(r, s, err);
	*stop = out == STEP_STOP;
	return st;
}

enum vb_status step_run_epoch(struct run *r, long epoch,
			      struct epoch_stats *es, struct vb_error *err)
{
	const struct config *c = r->c;
	size_t B = (size_t)c->train.batch, n = r->d->train.n;
	size_t n_acc = (size_t)c->train.accumulate;
	size_t n_batches = run_n_batches(r);
	double lr = run_epoch_lr(r, epoch - 1), t0 = files_now();
	enum step_policy policy = policy_of(c);
	enum vb_status st = VB_OK;

	uint64_t h0 = r->model->h_grad_entries, hc0 = r->model->h_grad_clamped;
	r->h_epoch0[0] = h0;
	r->h_epoch0[1] = hc0;
	r->h_in_epoch = true;

	memset(es, 0, sizeof *es);
	es->worst_batch = -1;
	es->worst_loss = NAN;
	/* One optimiser step per group of n_acc micro-batches [b, b_end);
	 * the last group of the epoch may be shorter. */
	for (size_t b = epoch_begin(r, epoch), b_end; b < n_batches;
	     b = b_end) {
		struct step s = {.epoch = epoch, .b = b, .n_batches = n_batches,
				 .policy = policy, .loss = NAN, .gnorm = NAN,
				 .max_param = NAN};
		bool stop = false;
		b_end = n_batches - b > n_acc ? b + n_acc : n_batches;
		s.b_end = b_end;
		if (step_limit(r)) {
			es->stop = true;
			break;
		}
		if (!r->o->replay && train_stop_requested()) {
			r->sum->interrupted = true; /* SIGINT, SIGTERM */
			es->stop = true;
			break;
		}
		step_prepare(r, &s, &lr);
		st = step_run(r, &s, es, &stop, err);
		if (st != VB_OK)
			return st;
		if (stop) {
			es->stop = true;
			break;
		}
		st = step_checkpoint(r, &s, err);
		if (st != VB_OK)
			return st;
		step_progress(r, &s, es, t0);
	}
	if (r->tty)
		fprintf(r->log, "\n");
	es->n_batches = (long)n_batches;
	es->has_partial = n_batches * B > n;
	es->h_entries = r->model->h_grad_entries - h0;
	es->h_clamped = r->model->h_grad_clamped - hc0;
	r->h_train[0] += es->h_entries;
	r->h_train[1] += es->h_clamped;
	r->h_in_epoch = false;
	epoch_finish(r, es);
	return VB_OK;
}
