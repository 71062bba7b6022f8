/* test_guard: NaN forensics. The cause rules and statistics of guard.c,
 * the anomaly hook on hand-built tapes (forward and backward origins,
 * phases), and fault injection through the training loop: each fault's
 * recorded epoch, step, phase, origin op, node and cause, the same in
 * anomaly mode and in a cheap run with its automatic replay; resume and
 * replay reproducing the first event and the end state bit for bit, the
 * dump's contents, and the lead time of a gradient spike. Float build. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly.h"
#include "benchutil.h"
#include "checkpoint.h"
#include "config.h"
#include "graph.h"
#include "guard.h"
#include "ops.h"
#include "replay.h"
#include "testutil.h"
#include "train.h"

/* ---- rules ---- */

START_TEST(test_cause_rules)
{
	struct guard_stats st[2];
	memset(st, 0, sizeof st);
	ck_assert_int_eq(guard_classify_op("exp", false, st, 1),
			 GUARD_CAUSE_EXP_OVERFLOW);
	ck_assert_int_eq(guard_classify_op("log", false, st, 1),
			 GUARD_CAUSE_LOG_DOMAIN);
	ck_assert_int_eq(guard_classify_op("linear", false, st, 2),
			 GUARD_CAUSE_PRODUCT_OVERFLOW);
	ck_assert_int_eq(guard_classify_op("conv2d", false, st, 2),
			 GUARD_CAUSE_PRODUCT_OVERFLOW);
	ck_assert_int_eq(guard_classify_op("add", false, st, 2),
			 GUARD_CAUSE_SUM_OVERFLOW);
	ck_assert_int_eq(guard_classify_op("linalg_cholesky", false, st, 1),
			 GUARD_CAUSE_MATRIX);
	ck_assert_int_eq(guard_classify_op("linalg_logdet", true, st, 1),
			 GUARD_CAUSE_MATRIX);
	ck_assert_int_eq(guard_classify_op("relu", true, st, 1),
			 GUARD_CAUSE_GRAD_FINITE_LOSS);
	ck_assert_int_eq(guard_classify_op("div", false, st, 2),
			 GUARD_CAUSE_PRODUCT_OVERFLOW);
	st[1].n_zero = 1; /* a zero divisor */
	ck_assert_int_eq(guard_classify_op("div", false, st, 2),
			 GUARD_CAUSE_DIV_ZERO);
	st[0].n_zero = 1;
	ck_assert_int_eq(guard_classify_op("sqrt", true, st, 1),
			 GUARD_CAUSE_SQRT_ZERO_BACKWARD);
	ck_assert_int_eq(guard_classify_op("log", true, st, 1),
			 GUARD_CAUSE_DIV_ZERO);
	st[0].n_zero = 0;
	st[0].n_neg = 1;
	ck_assert_int_eq(guard_classify_op("sqrt", false, st, 1),
			 GUARD_CAUSE_SQRT_NEGATIVE);
	ck_assert_int_eq(guard_classify_update(NAN, true, 0, 0, 1e-8),
			 GUARD_CAUSE_UPDATE_NONFINITE_GRAD);
	ck_assert_int_eq(guard_classify_update(0, true, 0, 0, 0),
			 GUARD_CAUSE_DIV_ZERO);
	ck_assert_int_eq(guard_classify_update(0, true, 0, 0, 1e-8),
			 GUARD_CAUSE_PARAM_OVERFLOW);
	ck_assert_int_eq(guard_classify_update(1e30, false, 0, 0, 0),
			 GUARD_CAUSE_PARAM_OVERFLOW);
	/* every cause has a distinct, non-empty name except NONE */
	for (int i = 1; i < GUARD_CAUSE_COUNT; i++) {
		ck_assert(guard_cause_name((enum guard_cause)i)[0]);
		for (int j = 1; j < i; j++)
			ck_assert_str_ne(guard_cause_name((enum guard_cause)i),
					 guard_cause_name((enum guard_cause)j));
	}
}
END_TEST

START_TEST(test_stats_and_max)
{
	vb_real x[6] = {1, -3, 0, 2, 0, 5};
	struct guard_stats s;
	char buf[GUARD_PHASE_LEN];
	guard_stats_compute(x, 6, &s);
	ck_assert_uint_eq(s.n_zero, 2);
	ck_assert_uint_eq(s.n_neg, 1);
	ck_assert(s.min == -3 && s.max == 5 && s.absmax == 5);
	ck_assert(guard_max_abs(x, 6) == 5);
	x[1] = (vb_real)-INFINITY;
	ck_assert(isinf(guard_max_abs(x, 6)));
	x[3] = (vb_real)NAN;
	ck_assert(isnan(guard_max_abs(x, 6)));
	guard_stats_compute(x, 6, &s);
	ck_assert_uint_eq(s.n_nan, 1);
	ck_assert_uint_eq(s.n_inf, 1);
	ck_assert(s.absmax == 5);
	guard_phase_format(GUARD_PHASE_CODE(GUARD_PHASE_LEAPFROG, 2, 3),
			   GUARD_PHASE_FORWARD, buf, sizeof buf);
	ck_assert_str_eq(buf, "leapfrog2.3");
	guard_phase_format(0, GUARD_PHASE_EVAL, buf, sizeof buf);
	ck_assert_str_eq(buf, "eval");
}
END_TEST

/* ---- the hook on hand-built tapes ---- */

START_TEST(test_hook_forward_origin)
{
	struct graph *g = NULL;
	struct anomaly a;
	vb_real xv[4] = {1, 2, 100, 3}; /* exp(100) overflows in float */
	size_t shape[2] = {4, 1};
	struct graph_node *x, *e;
	ck_assert(graph_create(1 << 16, &g, NULL) == VB_OK);
	anomaly_reset(&a);
	anomaly_attach(&a, g);
	anomaly_begin(&a, GUARD_PHASE_FORWARD, 3, 17, 4, NULL);
	graph_set_phase(g, GUARD_PHASE_CODE(GUARD_PHASE_LEAPFROG, 1, 2));
	graph_push_scope(g, "t");
	x = graph_input(g, "x", tensor_view(xv, 2, shape), false);
	e = op_exp(g, "big", op_scale(g, "half", x, 1.0));
	op_add(g, "sum", e, op_neg(g, "neg", e)); /* inf - inf: first NaN */
	graph_pop_scope(g);
	ck_assert(a.ev.set);
	ck_assert_int_eq(a.ev.step, 17);
	ck_assert_int_eq(a.ev.epoch, 3);
	ck_assert_str_eq(a.ev.op, "exp");
	ck_assert_str_eq(a.ev.node, "t.big");
	ck_assert_str_eq(a.ev.origin_phase, "leapfrog1.2");
	ck_assert_int_eq(a.ev.cause, GUARD_CAUSE_EXP_OVERFLOW);
	ck_assert_int_eq(a.ev.n_bad_samples, 1);
	ck_assert_int_eq(a.ev.sample_rows[0], 2);
	ck_assert(a.ev.in[0].max == 100);
	ck_assert_str_eq(a.ev.nan_node, "t.sum");
	anomaly_detach(g);
	graph_free(g);
}
END_TEST

START_TEST(test_hook_backward_origin)
{
	/* log(1e-38) is finite; its backward 1000 / 1e-38 is not */
	struct graph *g = NULL;
	struct anomaly a;
	vb_real xv[2] = {(vb_real)1e-38, 1};
	size_t shape[1] = {2};
	struct graph_node *x, *loss;
	ck_assert(graph_create(1 << 16, &g, NULL) == VB_OK);
	anomaly_reset(&a);
	anomaly_attach(&a, g);
	anomaly_begin(&a, GUARD_PHASE_FORWARD, 1, 1, 0, NULL);
	x = graph_input(g, "x", tensor_view(xv, 1, shape), true);
	loss = op_scale(g, "loss", op_sum(g, "s", op_log(g, "lx", x)), 1000);
	ck_assert(!a.ev.set);
	ck_assert(isfinite(loss->value.data[0]));
	anomaly_begin(&a, GUARD_PHASE_BACKWARD, 1, 1, 0, NULL);
	ck_assert(graph_backward(g, loss, NULL) == VB_OK);
	ck_assert(a.ev.set);
	ck_assert_str_eq(a.ev.op, "log");
	ck_assert_str_eq(a.ev.node, "lx");
	ck_assert_str_eq(a.ev.origin_phase, "backward");
	ck_assert_int_eq(a.ev.phase, GUARD_PHASE_BACKWARD);
	ck_assert_int_eq(a.ev.cause, GUARD_CAUSE_PRODUCT_OVERFLOW);
	ck_assert(a.ev.has_grad_out && a.ev.grad_out.max == 1000);
	anomaly_detach(g);
	graph_free(g);
}
END_TEST

/* ---- fault injection through the training loop ---- */

/* benchutil's small run with 4 latents, in a fresh folder. */
static void small_config(struct config *c, const char *name)
{
	bu_small_config(c, tu_tmpdir("guard"), name);
	bu_set(c, "model.latent=4");
}

struct want {
	long epoch, step;
	enum guard_phase phase;
	const char *origin_phase, *op, *node;
	enum guard_cause cause;
};

static void check_event(const struct train_summary *s, const struct want *w,
			const char *what)
{
	const struct guard_event *e = &s->first;
	ck_assert_msg(e->set, "%s: no event", what);
	ck_assert_msg(e->epoch == w->epoch && e->step == w->step,
		      "%s: epoch %ld step %ld, expected %ld %ld", what,
		      e->epoch, e->step, w->epoch, w->step);
	ck_assert_msg(e->phase == w->phase, "%s: phase %s, expected %s", what,
		      guard_phase_name(e->phase), guard_phase_name(w->phase));
	ck_assert_msg(e->cause == w->cause, "%s: cause %s, expected %s", what,
		      guard_cause_name(e->cause), guard_cause_name(w->cause));
	ck_assert_msg(!strcmp(e->op, w->op) && !strcmp(e->node, w->node) &&
			      !strcmp(e->origin_phase, w->origin_phase),
		      "%s: op %s node %s phase %s, expected %s %s %s", what,
		      e->op, e->node, e->origin_phase, w->op, w->node,
		      w->origin_phase);
}

/* Runs the fault twice: cheap guard (with its automatic replay) and
 * anomaly mode; both must record the same event and origin. */
static void fault(const char *name, const char *const *sets,
		  const struct want *w, struct train_summary *out)
{
	struct config c;
	struct train_summary s;
	char nm[64];
	for (int mode = 0; mode < 2; mode++) {
		snprintf(nm, sizeof nm, "%s-%s", name, mode ? "anomaly" : "cheap");
		small_config(&c, nm);
		for (int i = 0; sets[i]; i++)
			bu_set(&c, sets[i]);
		if (mode)
			bu_set(&c, "guard.mode=anomaly");
		bu_run(&c, NULL, &s);
		check_event(&s, w, nm);
		ck_assert_int_ne(s.status, GUARD_STATUS_OK);
		if (!mode && s.first.cause != GUARD_CAUSE_INPUT_DATA &&
		    s.first.cause != GUARD_CAUSE_GRAD_FINITE_LOSS &&
		    s.first.cause != GUARD_CAUSE_DIV_ZERO)
			ck_assert_msg(s.replayed && s.replay_match,
				      "%s: the automatic replay did not "
				      "reproduce", nm);
		if (mode)
			ck_assert(s.anomaly_checks > 0);
		if (out && mode)
			*out = s;
	}
}

START_TEST(test_fault_nan_pixel)
{
	const char *sets[] = {"inject.nan_step=11", "inject.nan_phase=input",
			      NULL};
	struct want w = {2, 11, GUARD_PHASE_INPUT, "input", "input", "input",
			 GUARD_CAUSE_INPUT_DATA};
	struct train_summary s;
	fault("nanpix", sets, &w, &s);
	ck_assert_int_eq(s.first.n_bad_samples, 1);
	ck_assert_int_eq(s.first.sample_rows[0], 0);
	ck_assert(s.first.sample_ids[0] >= 0 && s.first.sample_ids[0] < 256);
}
END_TEST

START_TEST(test_fault_inf_pixel)
{
	/* pixel 5 of row 2 (784 pixels a row) */
	const char *sets[] = {"inject.nan_step=3", "inject.nan_phase=input",
			      "inject.value=inf", "inject.index=1573", NULL};
	struct want w = {1, 3, GUARD_PHASE_INPUT, "input", "input", "input",
			 GUARD_CAUSE_INPUT_DATA};
	struct train_summary s;
	fault("infpix", sets, &w, &s);
	ck_assert_int_eq(s.status, GUARD_STATUS_INF);
	ck_assert_int_eq(s.first.sample_rows[0], 2);
}
END_TEST

START_TEST(test_fault_param_inf)
{
	const char *sets[] = {"inject.nan_step=5", "inject.nan_phase=param",
			      "inject.value=inf",
			      "inject.param=encoder.log_var.bias",
			      "inject.index=-1", NULL};
	struct want w = {1, 5, GUARD_PHASE_FORWARD, "forward", "param",
			 "encoder.log_var.bias", GUARD_CAUSE_NONFINITE_PARAM};
	fault("paraminf", sets, &w, NULL);
}
END_TEST

START_TEST(test_fault_param_scale)
{
	/* logvar weights x 1e20: exp(logvar / 2) overflows first */
	const char *sets[] = {"inject.nan_step=10", "inject.nan_phase=param",
			      "inject.value=scale",
			      "inject.param=encoder.log_var.weight",
			      "inject.index=-1", NULL};
	struct want w = {2, 10, GUARD_PHASE_FORWARD, "forward", "exp",
			 "vae.std", GUARD_CAUSE_EXP_OVERFLOW};
	struct train_summary s;
	fault("paramscale", sets, &w, &s);
	ck_assert_int_gt(s.first.n_bad_samples, 0);
	ck_assert(s.first.in[0].absmax > 88.7);
	ck_assert_uint_eq(s.first.in[0].n_nan + s.first.in[0].n_inf, 0);
}
END_TEST

START_TEST(test_fault_grad_nan)
{
	const char *sets[] = {"inject.nan_step=5", "inject.nan_phase=grad",
			      NULL};
	struct want w = {1, 5, GUARD_PHASE_BACKWARD, "backward", "backward",
			 "encoder.layers.0.0.weight",
			 GUARD_CAUSE_GRAD_FINITE_LOSS};
	fault("gradnan", sets, &w, NULL);
}
END_TEST

START_TEST(test_fault_zero_eps)
{
	/* synthetic images have zero pixels: their weights get exactly zero
	 * gradients, and Adam computes 0 / (0 + 0) */
	const char *sets[] = {"optim.adam_eps=0", NULL};
	struct want w = {1, 1, GUARD_PHASE_UPDATE, "update", "adam",
			 "encoder.layers.0.0.weight", GUARD_CAUSE_DIV_ZERO};
	fault("eps0", sets, &w, NULL);
}
END_TEST

START_TEST(test_fault_grad_spike_lead)
{
	/* SGD: a 1e20 gradient spike at step 12 blows the weights up; the
	 * next forward's first linear layer after the huge (finite) z
	 * overflows. The spike is the precursor: lead time 1. */
	const char *sets[] = {"optim.kind=sgd", "inject.nan_step=12",
			      "inject.nan_phase=grad", "inject.value=scale",
			      "inject.index=-1", NULL};
	struct want w = {2, 13, GUARD_PHASE_FORWARD, "forward", "linear",
			 "decoder.fc1", GUARD_CAUSE_PRODUCT_OVERFLOW};
	struct train_summary s;
	char *csv;
	char path[1300];
	fault("spike", sets, &w, &s);
	ck_assert_int_eq(s.lead_step, 12);
	ck_assert_int_eq(s.lead_time, 1);
	snprintf(path, sizeof path, "%s/precursors.csv", s.run_dir);
	csv = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(csv);
	ck_assert_ptr_nonnull(strstr(csv, "grad_norm:encoder.log_var.weight"));
	ck_assert_ptr_nonnull(strstr(csv, "\n2,12,"));
	free(csv);
}
END_TEST

/* ---- replay ---- */

START_TEST(test_replay_bit_for_bit)
{
	struct config c;
	struct train_summary s;
	struct replay_request q;
	struct replay_report r;
	struct vb_error err = {0};
	struct checkpoint *ck = NULL;
	char dump[1300];
	small_config(&c, "replay");
	BU_SET(&c, "run.checkpoint_every=3", "guard.replay=false",
		"inject.nan_step=14", "inject.nan_phase=param",
		"inject.value=scale", "inject.param=encoder.log_var.weight",
		"inject.index=-1");
	bu_run(&c, NULL, &s);
	ck_assert_int_eq(s.first.step, 14);
	ck_assert_int_eq(s.first.cause, GUARD_CAUSE_UNKNOWN);

	/* cheap replay from the mid-epoch checkpoint of step 12 */
	memset(&q, 0, sizeof q);
	q.run_dir = s.run_dir;
	ck_assert_msg(replay_run(&q, &r, NULL, &err) == VB_OK, "%s", err.msg);
	ck_assert_int_eq(r.from_step, 12);
	ck_assert_int_eq(r.target_step, 14);
	ck_assert(r.same_event);
	ck_assert(r.state_compared && r.same_state);

	/* anomaly mode names the origin, still bit for bit; dump the step */
	snprintf(dump, sizeof dump, "%s/dump.safetensors", s.run_dir);
	q.anomaly = true;
	q.dump = dump;
	ck_assert_msg(replay_run(&q, &r, NULL, &err) == VB_OK, "%s", err.msg);
	ck_assert(r.same_event && r.same_state);
	ck_assert_str_eq(r.rep.first.node, "vae.std");
	ck_assert_int_eq(r.rep.first.cause, GUARD_CAUSE_EXP_OVERFLOW);
	ck_assert_msg(checkpoint_open(dump, &ck, &err) == VB_OK, "%s", err.msg);
	ck_assert_ptr_nonnull(checkpoint_data(ck, "batch.indices"));
	ck_assert_ptr_nonnull(checkpoint_data(ck, "draw:vae.eps"));
	ck_assert_ptr_nonnull(checkpoint_data(ck, "node:vae.std"));
	ck_assert_ptr_nonnull(checkpoint_data(ck, "node:loss.total"));
	ck_assert_ptr_nonnull(checkpoint_data(ck, "param:encoder.log_var.weight"));
	ck_assert_ptr_nonnull(checkpoint_data(ck, "grad:decoder.layers.1.0.bias"));
	ck_assert_ptr_nonnull(checkpoint_meta(ck, "nodes"));
	checkpoint_close(ck);

	/* without the optimiser state the end state differs */
	q.anomaly = false;
	q.dump = NULL;
	q.reset_optimizer = true;
	ck_assert_msg(replay_run(&q, &r, NULL, &err) == VB_OK, "%s", err.msg);
	ck_assert(r.state_compared && !r.same_state);
}
END_TEST

START_TEST(test_replay_missing)
{
	struct replay_request q;
	struct replay_report r;
	struct vb_error err = {0};
	memset(&q, 0, sizeof q);
	q.run_dir = tu_tmpdir("nothing-here");
	ck_assert_int_ne(replay_run(&q, &r, NULL, &err), VB_OK);
	ck_assert(strstr(err.msg, "replay:") || strstr(err.msg, "config"));
}
END_TEST

TU_MAIN("guard", "core", 240, test_cause_rules, test_stats_and_max,
	test_hook_forward_origin, test_hook_backward_origin,
	test_fault_nan_pixel, test_fault_inf_pixel, test_fault_param_inf,
	test_fault_param_scale, test_fault_grad_nan, test_fault_zero_eps,
	test_fault_grad_spike_lead, test_replay_bit_for_bit,
	test_replay_missing)
