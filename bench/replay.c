/* replay: resume a run from its checkpoint, rerun to a step, compare the
 * first event and the end state with the original run folder. */
#include "replay.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "config.h"
#include "files.h"
#include "forensics.h"
#include "table.h"


/* Splits a CSV line (no quoting: vaebench writes none) in place. */
/* A column of summary.csv's one row, "" when absent. */
static const char *col(const struct table *t, const char *key)
{
	const char *v = table_get(t, 0, key);
	return v ? v : "";
}

enum vb_status replay_read_summary(const char *dir, struct replay_report *o,
				   struct vb_error *err)
{
	char path[1200];
	const char *v;
	struct table t;
	enum vb_status st;
	snprintf(path, sizeof path, "%s/summary.csv", dir);
	table_init(&t);
	/* a CSV reader, not a split at commas: pythae's messages hold
	 * commas inside quotes ("Tensor of shape (64, 16)") */
	st = table_read(path, &t, err);
	if (st == VB_OK && (t.n_rows != 1 || table_col(&t, "status") < 0 ||
			    table_col(&t, "first_step") < 0 ||
			    table_col(&t, "steps") < 0))
		st = vb_fail(err, VB_ERR_DATA, "replay: %s: expected the "
			     "columns of vaebench's summary.csv and one row",
			     path);
	if (st != VB_OK) {
		table_free(&t);
		return st;
	}
	snprintf(o->orig_status, sizeof o->orig_status, "%s",
		 col(&t, "status"));
	v = col(&t, "first_step");
	o->orig_step = *v ? strtol(v, NULL, 10) : -1;
	o->orig_steps = strtol(col(&t, "steps"), NULL, 10);
	v = col(&t, "lead_step");
	o->orig_lead_step = *v ? strtol(v, NULL, 10) : -1;
	snprintf(o->orig_phase, sizeof o->orig_phase, "%s",
		 col(&t, "first_phase"));
	snprintf(o->orig_quantity, sizeof o->orig_quantity, "%s",
		 col(&t, "first_quantity"));
	snprintf(o->orig_value, sizeof o->orig_value, "%s",
		 col(&t, "first_value"));
	table_free(&t);
	return VB_OK;
}

/* Compares every tensor of the original end state with the replay's. */
static enum vb_status compare_state(const char *orig, const char *rep,
				    struct replay_report *o,
				    struct vb_error *err)
{
	struct checkpoint *a = NULL, *b = NULL;
	enum vb_status st = checkpoint_open(orig, &a, err);
	if (st == VB_OK)
		st = checkpoint_open(rep, &b, err);
	for (size_t i = 0; st == VB_OK && i < checkpoint_count(a); i++) {
		const char *name = checkpoint_name(a, i);
		enum checkpoint_dtype da, db;
		int na, nb;
		size_t sa[CHECKPOINT_MAX_DIM], sb[CHECKPOINT_MAX_DIM], n = 1;
		bool same = checkpoint_data(b, name) != NULL;
		if (same) {
			checkpoint_info(a, name, &da, &na, sa, NULL);
			checkpoint_info(b, name, &db, &nb, sb, NULL);
			same = da == db && na == nb &&
			       !memcmp(sa, sb, sizeof sa);
			for (int k = 0; same && k < na; k++)
				n *= sa[k];
			same = same &&
			       !memcmp(checkpoint_data(a, name),
				       checkpoint_data(b, name),
				       n * checkpoint_dtype_size(da));
		}
		if (!same && o->n_state_diff++ == 0)
			snprintf(o->first_diff, sizeof o->first_diff, "%s",
				 name);
	}
	checkpoint_close(a);
	checkpoint_close(b);
	o->same_state = st == VB_OK && o->n_state_diff == 0;
	return st;
}

enum vb_status replay_run(const struct replay_request *q,
			  struct replay_report *o, FILE *log,
			  struct vb_error *err)
{
	struct config c;
	struct train_data d;
	struct train_options opt;
	char path[1200], final[1300];
	enum vb_status st;

	memset(o, 0, sizeof *o);
	config_defaults(&c);
	snprintf(path, sizeof path, "%s/config.ini", q->run_dir);
	if (!files_exists(path))
		return vb_fail(err, VB_ERR_USAGE, "replay: %s is not a run "
			       "folder (no config.ini); give the folder a "
			       "train wrote (run.out_dir/run.name)",
			       q->run_dir);
	st = config_load_file(&c, path, err);
	if (st == VB_OK)
		st = config_validate(&c, err);
	if (st == VB_OK)
		st = replay_read_summary(q->run_dir, o, err);
	if (st != VB_OK)
		return st;
	o->target_step = q->step > 0 ? q->step
			 : o->orig_step > 0 ? o->orig_step
					    : o->orig_steps;
	st = forensics_find_checkpoint(q->run_dir, o->target_step, o->checkpoint,
				   sizeof o->checkpoint, &o->from_step, err);
	if (st != VB_OK)
		return st;
	/* the replay's end state goes next to the run, never over it */
	snprintf(path, sizeof path, "%s/replay", q->run_dir);
	st = files_mkdirs(path, err);
	if (st != VB_OK)
		return st;
	snprintf(final, sizeof final, "%s/final.safetensors", path);
	st = train_data_load(&c, &d, err);
	if (st != VB_OK)
		return st;
	memset(&opt, 0, sizeof opt);
	opt.resume = o->checkpoint;
	opt.reset_optimizer = q->reset_optimizer;
	opt.stop_step = o->target_step;
	opt.anomaly = q->anomaly;
	opt.dump = q->dump;
	opt.dump_step = o->target_step;
	opt.replay = true;
	opt.final_checkpoint = final;
	st = train_run_opts(&c, &d, &opt, &o->rep, log, err);
	train_data_free(&d);
	if (st != VB_OK)
		return st;
	if (o->rep.first.set)
		table_fmt_real(o->rep.first.value, o->rep_value,
			     sizeof o->rep_value);
	o->same_event = o->rep.first.set && o->orig_step > 0 &&
			o->rep.first.step == o->orig_step &&
			!strcmp(guard_phase_name(o->rep.first.phase),
				o->orig_phase) &&
			!strcmp(o->rep.first.quantity, o->orig_quantity) &&
			!strcmp(o->rep_value, o->orig_value);
	o->state_compared = o->target_step == o->orig_steps;
	if (o->state_compared) {
		snprintf(path, sizeof path, "%s/checkpoint.safetensors",
			 q->run_dir);
		st = compare_state(path, final, o, err);
	}
	return st;
}

void replay_print(FILE *f, const struct replay_request *q,
		  const struct replay_report *r)
{
	const struct guard_event *e = &r->rep.first;
	fprintf(f, "original:   status %s", r->orig_status);
	if (r->orig_step > 0)
		fprintf(f, ", first event at step %ld (%s, %s = %s)",
			r->orig_step, r->orig_phase, r->orig_quantity,
			r->orig_value);
	fprintf(f, "\nreplayed:   from %s (step %ld) to step %ld, %s%s\n",
		r->checkpoint, r->from_step, r->target_step,
		q->anomaly ? "anomaly mode" : "cheap guard",
		q->reset_optimizer ? ", optimizer state reset" : "");
	if (e->set) {
		fprintf(f, "event:      %s at epoch %ld, step %ld (%s, %s = "
			"%s)\n", guard_status_name(r->rep.status), e->epoch,
			e->step, guard_phase_name(e->phase), e->quantity,
			r->rep_value);
		fprintf(f, "origin:     cause %s (%s)\n",
			guard_cause_name(e->cause), guard_cause_help(e->cause));
		if (e->cause != GUARD_CAUSE_UNKNOWN) {
			fprintf(f, "            op %s, node %s, phase %s, step "
				"%ld", e->op, e->node, e->origin_phase,
				e->origin_step);
			if (e->n_bad_samples >= 0)
				fprintf(f, ", %ld batch sample(s) hit",
					e->n_bad_samples);
			fputc('\n', f);
			if (e->n_sample_rows > 0) {
				fprintf(f, "            samples (row:index)");
				for (int i = 0; i < e->n_sample_rows; i++)
					fprintf(f, " %ld:%ld", e->sample_rows[i],
						e->sample_ids[i]);
				fputc('\n', f);
			}
			for (int i = 0; i < e->n_in; i++)
				fprintf(f, "            input %d: n %zu, min "
					"%.6g, max %.6g, |max| %.6g, nan %zu, "
					"inf %zu, zeros %zu, negative %zu\n",
					i, e->in[i].n, e->in[i].min,
					e->in[i].max, e->in[i].absmax,
					e->in[i].n_nan, e->in[i].n_inf,
					e->in[i].n_zero, e->in[i].n_neg);
			if (e->has_grad_out)
				fprintf(f, "            incoming gradient: "
					"|max| %.6g, nan %zu, inf %zu\n",
					e->grad_out.absmax, e->grad_out.n_nan,
					e->grad_out.n_inf);
			if (e->nan_node[0])
				fprintf(f, "            first NaN from Inf: op "
					"%s, node %s\n", e->nan_op,
					e->nan_node);
		}
	} else {
		fprintf(f, "event:      none up to step %ld\n",
			r->rep.steps);
	}
	if (r->orig_step > 0)
		fprintf(f, "reproduced: %s\n",
			r->same_event ? "yes (same step, phase, quantity, "
					"value)"
				      : "NO");
	if (r->state_compared)
		fprintf(f, "end state:  %s\n",
			r->same_state ? "bit-identical to checkpoint."
					"safetensors (parameters, Adam "
					"moments, RNG, step)"
				      : "DIFFERS from checkpoint.safetensors");
	if (r->state_compared && !r->same_state)
		fprintf(f, "            %ld tensor(s) differ, first %s\n",
			r->n_state_diff, r->first_diff);
	if (q->dump)
		fprintf(f, "dump:       %s\n", q->dump);
}
