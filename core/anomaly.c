/* anomaly: the per-node hook of anomaly mode and the descriptions of
 * update, gradient and input events in the guard's record. Reads values,
 * never writes them. */
#include "anomaly.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

void anomaly_reset(struct anomaly *a)
{
	memset(a, 0, sizeof *a);
	a->stage = GUARD_PHASE_FORWARD;
	a->ev.node_id = -1;
	a->ev.n_bad_samples = -1;
}

void anomaly_attach(struct anomaly *a, struct graph *g)
{
	graph_set_hook(g, anomaly_hook, a);
}

void anomaly_detach(struct graph *g)
{
	graph_set_hook(g, NULL, NULL);
}

void anomaly_begin(struct anomaly *a, enum guard_phase stage, long epoch,
		   long step, size_t n_batch, const size_t *sample_ids)
{
	a->stage = stage;
	a->epoch = epoch;
	a->step = step;
	a->n_batch = n_batch;
	a->sample_ids = sample_ids;
}

static bool has_nan(const struct tensor *t)
{
	for (size_t i = 0; i < t->n; i++)
		if (isnan(t->data[i]))
			return true;
	return false;
}

/* Counts non-finite values and the batch rows they sit in (when the
 * tensor's first dimension is the batch). */
static void bad_summary(struct guard_event *ev, const struct tensor *t,
			size_t n_batch, const size_t *ids)
{
	bool rows = n_batch > 1 && t->ndim >= 1 && t->shape[0] == n_batch;
	size_t per = rows ? t->n / n_batch : 0;
	long last_row = -1;
	ev->n_bad = 0;
	ev->n_bad_samples = rows ? 0 : -1;
	ev->n_sample_rows = 0;
	/* i is the row-major index whatever the layout (tensor_offset) */
	for (size_t i = 0; i < t->n; i++) {
		vb_real v = t->data[tensor_offset(t, i)];
		if (isfinite(v))
			continue;
		if (ev->n_bad++ == 0) {
			ev->first_bad = i;
			ev->bad_value = v;
		}
		if (rows && (long)(i / per) != last_row) {
			last_row = (long)(i / per);
			if (ev->n_sample_rows < GUARD_MAX_SAMPLES) {
				ev->sample_rows[ev->n_sample_rows] = last_row;
				ev->sample_ids[ev->n_sample_rows] =
					ids ? (long)ids[last_row] : -1;
				ev->n_sample_rows++;
			}
			ev->n_bad_samples++;
		}
	}
}

/* buf = a + sep + b, truncated to cap (snprintf would warn about it). */
static void join3(char *buf, size_t cap, const char *a, const char *sep,
		  const char *b)
{
	size_t len = 0;
	const char *parts[3] = {a, sep, b};
	for (int k = 0; k < 3; k++)
		for (const char *c = parts[k]; *c && len + 1 < cap; c++)
			buf[len++] = *c;
	if (cap)
		buf[len] = '\0';
}

static bool is_second_order(const char *name)
{
	return strncmp(name, "grad.", 5) == 0 || strstr(name, ".grad.");
}

static void phase_of(const struct anomaly *a, const struct graph_node *n,
		     enum graph_event e, char *buf, size_t cap)
{
	char np[GUARD_PHASE_LEN];
	enum guard_phase kind = GUARD_PHASE_KIND(n->phase);
	bool plain = kind == GUARD_PHASE_NONE || kind == GUARD_PHASE_FORWARD;
	if (e == GRAPH_EVENT_FORWARD) {
		if (a->stage == GUARD_PHASE_EVAL && !plain) {
			guard_phase_format(n->phase, GUARD_PHASE_FORWARD, np,
					   sizeof np);
			join3(buf, cap, "eval", ":", np);
		} else {
			guard_phase_format(n->phase,
					   a->stage == GUARD_PHASE_EVAL
						   ? GUARD_PHASE_EVAL
						   : GUARD_PHASE_FORWARD,
					   buf, cap);
		}
		return;
	}
	{
		enum guard_phase p = a->stage != GUARD_PHASE_BACKWARD
					     ? GUARD_PHASE_INNER_GRAD
				     : is_second_order(n->name)
					     ? GUARD_PHASE_BACKWARD2
					     : GUARD_PHASE_BACKWARD;
		if (plain) {
			snprintf(buf, cap, "%s", guard_phase_name(p));
		} else {
			guard_phase_format(n->phase, GUARD_PHASE_FORWARD, np,
					   sizeof np);
			join3(buf, cap, guard_phase_name(p), ":", np);
		}
	}
}

static const char *leaf_op(const struct graph_node *n)
{
	switch (n->kind) {
	case GRAPH_NODE_INPUT: return "input";
	case GRAPH_NODE_PARAM: return "param";
	case GRAPH_NODE_CONST: return "const";
	case GRAPH_NODE_OP: break;
	}
	return n->op ? n->op->name : "?";
}

static void fill_origin(struct anomaly *a, const struct graph_node *n,
			enum graph_event e, const struct tensor *bad,
			enum guard_cause cause)
{
	struct guard_event *ev = &a->ev;
	ev->set = true;
	ev->origin = true;
	ev->epoch = ev->origin_epoch = a->epoch;
	ev->step = ev->origin_step = a->step;
	ev->phase = e == GRAPH_EVENT_FORWARD
			    ? (a->stage == GUARD_PHASE_EVAL ? GUARD_PHASE_EVAL
							     : GUARD_PHASE_FORWARD)
			    : GUARD_PHASE_BACKWARD;
	phase_of(a, n, e, ev->origin_phase, sizeof ev->origin_phase);
	snprintf(ev->op, sizeof ev->op, "%s", leaf_op(n));
	snprintf(ev->node, sizeof ev->node, "%s", n->name);
	join3(ev->quantity, sizeof ev->quantity, n->name, "", "");
	ev->node_id = (long)n->id;
	ev->cause = cause;
	/* a parameter's first dimension is not the batch */
	bad_summary(ev, bad, n->kind == GRAPH_NODE_PARAM ? 0 : a->n_batch,
		    a->sample_ids);
	ev->value = ev->bad_value;
	ev->n_in = n->n_in < GUARD_MAX_IN ? n->n_in : GUARD_MAX_IN;
	for (int i = 0; i < ev->n_in; i++)
		guard_stats_compute(n->in[i]->value.data, n->in[i]->value.n,
				    &ev->in[i]);
	ev->has_grad_out = e == GRAPH_EVENT_BACKWARD && n->grad.data;
	if (ev->has_grad_out)
		guard_stats_compute(n->grad.data, n->grad.n, &ev->grad_out);
	/* An origin that made only Inf leaves the first NaN to be found. */
	a->nan_pending = !has_nan(bad);
}

static bool inputs_finite(const struct graph_node *n, bool *any_nan)
{
	bool ok = true;
	*any_nan = false;
	for (int i = 0; i < n->n_in; i++) {
		const struct tensor *t = &n->in[i]->value;
		if (!guard_all_finite(t->data, t->n, NULL)) {
			ok = false;
			if (has_nan(t))
				*any_nan = true;
		}
	}
	return ok;
}

static void on_forward(struct anomaly *a, struct graph_node *n)
{
	bool in_nan;
	a->n_checks++;
	if (guard_all_finite(n->value.data, n->value.n, NULL))
		return;
	if (!a->ev.set) {
		enum guard_cause cause;
		if (!n->op) {
			cause = n->kind == GRAPH_NODE_INPUT
					? GUARD_CAUSE_INPUT_DATA
				: n->kind == GRAPH_NODE_PARAM
					? GUARD_CAUSE_NONFINITE_PARAM
					: GUARD_CAUSE_NONFINITE_CONST;
		} else if (inputs_finite(n, &in_nan)) {
			struct guard_stats st[GUARD_MAX_IN];
			int k = n->n_in < GUARD_MAX_IN ? n->n_in
						       : GUARD_MAX_IN;
			for (int i = 0; i < k; i++)
				guard_stats_compute(n->in[i]->value.data,
						    n->in[i]->value.n, &st[i]);
			cause = guard_classify_op(n->op->name, false, st, k);
		} else {
			/* a non-finite input this hook never saw (made
			 * before attaching, or written after its event) */
			cause = GUARD_CAUSE_UNKNOWN;
		}
		fill_origin(a, n, GRAPH_EVENT_FORWARD, &n->value, cause);
		return;
	}
	if (a->nan_pending && n->op && has_nan(&n->value)) {
		inputs_finite(n, &in_nan);
		if (!in_nan) {
			snprintf(a->ev.nan_op, sizeof a->ev.nan_op, "%s",
				 n->op->name);
			snprintf(a->ev.nan_node, sizeof a->ev.nan_node, "%s",
				 n->name);
			a->nan_pending = false;
		}
	}
}

static void on_backward(struct anomaly *a, struct graph_node *n)
{
	for (int i = 0; i < n->n_in; i++) {
		struct graph_node *in = n->in[i];
		struct guard_stats st[GUARD_MAX_IN];
		bool in_nan;
		int k;
		if (!in->active || !in->grad.data)
			continue;
		a->n_checks++;
		if (guard_all_finite(in->grad.data, in->grad.n, NULL))
			continue;
		if (a->ev.set) {
			if (a->nan_pending && has_nan(&in->grad)) {
				join3(a->ev.nan_op, sizeof a->ev.nan_op,
				      n->op->name, ":", "grad");
				snprintf(a->ev.nan_node,
					 sizeof a->ev.nan_node, "%s",
					 n->name);
				a->nan_pending = false;
			}
			return;
		}
		k = n->n_in < GUARD_MAX_IN ? n->n_in : GUARD_MAX_IN;
		for (int j = 0; j < k; j++)
			guard_stats_compute(n->in[j]->value.data,
					    n->in[j]->value.n, &st[j]);
		if (!inputs_finite(n, &in_nan) ||
		    !guard_all_finite(n->value.data, n->value.n, NULL) ||
		    !guard_all_finite(n->grad.data, n->grad.n, NULL))
			fill_origin(a, n, GRAPH_EVENT_BACKWARD, &in->grad,
				    GUARD_CAUSE_UNKNOWN);
		else
			fill_origin(a, n, GRAPH_EVENT_BACKWARD, &in->grad,
				    guard_classify_op(n->op->name, true, st,
						      k));
		join3(a->ev.quantity, sizeof a->ev.quantity, "grad", ":",
		      in->name);
		return;
	}
}

void anomaly_hook(void *ctx, struct graph *g, struct graph_node *n,
		  enum graph_event ev)
{
	struct anomaly *a = ctx;
	(void)g;
	/* Once the origin (and the first NaN after it) are known, nothing
	 * more is needed from this step. */
	if (a->ev.set && !a->nan_pending)
		return;
	if (ev == GRAPH_EVENT_FORWARD)
		on_forward(a, n);
	else if (n->op)
		on_backward(a, n);
}

void anomaly_describe_update(struct guard_event *ev, const struct params *p,
			     const struct optim *o, const vb_real *grad,
			     size_t bad)
{
	long e = params_locate(p, bad);
	bool adam = o->s.kind == OPTIM_ADAM || o->s.kind == OPTIM_ADAMW;
	size_t n_bad = 0;
	ev->origin = true;
	ev->origin_epoch = ev->epoch;
	ev->origin_step = ev->step;
	snprintf(ev->origin_phase, sizeof ev->origin_phase, "update");
	snprintf(ev->op, sizeof ev->op, "%s", optim_kind_name(o->s.kind));
	snprintf(ev->node, sizeof ev->node, "%s",
		 e >= 0 ? p->entries[e].name : "?");
	ev->node_id = -1;
	ev->cause = guard_classify_update(
		grad[bad], adam, o->m ? o->m[bad] : 0, o->v ? o->v[bad] : 0,
		o->s.adam_eps);
	for (size_t i = 0; i < p->n; i++)
		n_bad += !isfinite(p->data[i]);
	ev->n_bad = n_bad;
	ev->first_bad = bad;
	ev->bad_value = p->data[bad];
	ev->n_bad_samples = -1;
	ev->n_in = 0;
	if (e >= 0) {
		const struct params_entry *pe = &p->entries[e];
		guard_stats_compute(grad + pe->offset, pe->n, &ev->in[0]);
		guard_stats_compute(p->data + pe->offset, pe->n, &ev->in[1]);
		ev->n_in = 2;
	}
}

void anomaly_describe_grad(struct guard_event *ev, const struct params *p)
{
	size_t bad;
	long e;
	if (guard_all_finite(p->grad, p->n, &bad))
		return;
	e = params_locate(p, bad);
	ev->origin = false; /* the op is not known without anomaly mode */
	ev->origin_epoch = ev->epoch;
	ev->origin_step = ev->step;
	snprintf(ev->origin_phase, sizeof ev->origin_phase, "backward");
	snprintf(ev->op, sizeof ev->op, "backward");
	snprintf(ev->node, sizeof ev->node, "%s",
		 e >= 0 ? p->entries[e].name : "?");
	ev->cause = GUARD_CAUSE_GRAD_FINITE_LOSS;
	ev->first_bad = bad;
	ev->bad_value = p->grad[bad];
	ev->n_bad = 0;
	for (size_t i = 0; i < p->n; i++)
		ev->n_bad += !isfinite(p->grad[i]);
	if (e >= 0) {
		guard_stats_compute(p->grad + p->entries[e].offset,
				    p->entries[e].n, &ev->in[0]);
		ev->n_in = 1;
	}
}

void anomaly_describe_input(struct guard_event *ev, const vb_real *x,
			    size_t n_batch, size_t d,
			    const size_t *sample_ids)
{
	size_t shape[2] = {n_batch, d};
	/* a read-only view: bad_summary never writes */
	struct tensor t = tensor_view((vb_real *)(uintptr_t)x, 2, shape);
	ev->origin = true;
	ev->origin_epoch = ev->epoch;
	ev->origin_step = ev->step;
	snprintf(ev->origin_phase, sizeof ev->origin_phase, "input");
	snprintf(ev->op, sizeof ev->op, "input");
	snprintf(ev->node, sizeof ev->node, "input");
	ev->cause = GUARD_CAUSE_INPUT_DATA;
	bad_summary(ev, &t, n_batch, sample_ids);
	guard_stats_compute(x, n_batch * d, &ev->in[0]);
	ev->n_in = 1;
}
