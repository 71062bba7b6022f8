/* cf_verdict: a counterfactual's files: verdict.csv (one row per variant,
 * written last: its presence says the folder is complete), verdict.md,
 * curves.csv, times.csv and counterfactual.png. What goes into them is
 * computed by cf_run.c. */
#include "cf_verdict.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "counterfactual.h"
#include "files.h"
#include "plot.h"

static const char *outcome(const struct cf_variant *v)
{
	if (v->sum.status != GUARD_STATUS_OK &&
	    v->sum.first.phase == GUARD_PHASE_EVAL)
		return "eval";
	if (v->sum.status != GUARD_STATUS_OK)
		return "fails";
	if (v->sum.first.set)
		return "skips";
	return "clean";
}

/* %.4g for the Markdown table. */
static void put_short(FILE *f, double v)
{
	if (isnan(v))
		fputs("nan", f);
	else if (isinf(v))
		fputs(v > 0 ? "inf" : "-inf", f);
	else
		fprintf(f, "%.4g", v);
}

static void event_where(const struct cf_variant *v, char *buf, size_t cap)
{
	const struct guard_event *e = &v->sum.first;
	if (!e->set) {
		snprintf(buf, cap, "-");
		return;
	}
	snprintf(buf, cap, "step %ld %s %s", e->step,
		 guard_phase_name(e->phase), e->quantity);
}

/* The measured columns of verdict.csv and verdict.md, in their order. */
#define N_VALUES 8

static void variant_values(const struct cf_variant *v, double *vals)
{
	vals[0] = v->max_z;
	vals[1] = v->max_g;
	vals[2] = v->loss_first;
	vals[3] = v->loss_max;
	vals[4] = v->loss_last;
	vals[5] = v->eval_recon;
	vals[6] = v->eval_nll;
	vals[7] = v->dist;
}

static const char VERDICT_CSV_HEADER[] =
	"variant,settings,outcome,event_step,event_phase,"
	"event_quantity,event_value,cause,origin_op,origin_node,"
	"skipped,max_abs_z,max_grad_norm,loss_first,loss_max,"
	"loss_last,eval_recon,eval_nll,param_dist,ref_step,"
	"ref_eval_recon,ref_eval_nll\n";

static void put_verdict_csv(FILE *f, const struct cf *cf)
{
	fputs(VERDICT_CSV_HEADER, f);
	for (size_t i = 0; i < cf->n_v; i++) {
		const struct cf_variant *v = &cf->v[i];
		const struct guard_event *e = &v->sum.first;
		double vals[N_VALUES];
		variant_values(v, vals);
		fprintf(f, "%s,%s,%s,", v->name, v->sets, outcome(v));
		if (e->set) {
			fprintf(f, "%ld,%s,%s,", e->step,
				guard_phase_name(e->phase), e->quantity);
			cf_put_real(f, e->value);
			fprintf(f, ",%s,%s,%s,",
				e->cause != GUARD_CAUSE_NONE
					? guard_cause_name(e->cause) : "",
				e->op, e->node);
		} else {
			fputs(",,,,,,,", f);
		}
		fprintf(f, "%ld", v->sum.skipped);
		for (size_t k = 0; k < N_VALUES; k++) {
			fputc(',', f);
			cf_put_real(f, vals[k]);
		}
		/* the reference: the unchanged variant's last finite state
		 * before the event (its row only) */
		if (i == 0) {
			fprintf(f, ",%ld,", cf->ref_step);
			cf_put_real(f, cf->ref_recon);
			fputc(',', f);
			cf_put_real(f, cf->ref_nll);
		} else {
			fputs(",,,", f);
		}
		fputc('\n', f);
	}
}

static void put_times_csv(FILE *f, const struct cf *cf)
{
	fputs("variant,seconds\n", f);
	for (size_t i = 0; i < cf->n_v; i++)
		fprintf(f, "%s,%.3f\n", cf->v[i].name, cf->v[i].seconds);
}

static void put_curves_csv(FILE *f, const struct cf *cf)
{
	fputs("variant,step,loss,grad_norm,max_abs_z\n", f);
	for (size_t i = 0; i < cf->n_v; i++)
		for (size_t k = 0; k < cf->v[i].n; k++) {
			fprintf(f, "%s,%ld,", cf->v[i].name,
				(long)cf->v[i].step[k]);
			cf_put_real(f, cf->v[i].loss[k]);
			fputc(',', f);
			cf_put_real(f, cf->v[i].gnorm[k]);
			fputc(',', f);
			cf_put_real(f, cf->v[i].zmax[k]);
			fputc('\n', f);
		}
}

static void write_header_md(FILE *f, const struct cf *cf)
{
	const struct replay_report *o = &cf->orig;
	const struct guard_event *e = &cf->v[0].sum.first;
	fprintf(f, "original:   %s at step %ld (%s, %s = %s)", o->orig_status,
		o->orig_step, o->orig_phase, o->orig_quantity, o->orig_value);
	if (e->cause != GUARD_CAUSE_NONE && e->cause != GUARD_CAUSE_UNKNOWN)
		fprintf(f, ", cause %s, op %s, node %s",
			guard_cause_name(e->cause), e->op, e->node);
	fprintf(f, "\nstart:      step %ld", cf->start_step);
	if (cf->bridged)
		fprintf(f, " (bridged unchanged from checkpoint step %ld)",
			cf->ckpt_step);
	fprintf(f, ", window %ld", cf->q->window);
	if (o->orig_lead_step > 0)
		fprintf(f, ", lead step %ld%s", o->orig_lead_step,
			cf->q->no_lead ? " (ignored: --no-lead)" : "");
	fprintf(f, "\nhorizon:    to step %ld (event + %ld%s), anomaly mode; "
		"held-out: %ld images, %ld IS samples\n", cf->end_step,
		cf->end_step - o->orig_step,
		cf->end_step - o->orig_step < cf->horizon
			? ", the run's last planned step" : "",
		cf->q->eval_n, cf->q->nll_samples);
	fprintf(f, "reproduced: yes (same step, phase, quantity, value)\n");
	if (cf->ref_moved)
		fprintf(f, "param ref:  step %ld, the unchanged variant's last "
			"finite parameters (not finite at step %ld = E - 1)",
			cf->ref_step, o->orig_step - 1);
	else
		fprintf(f, "param ref:  step %ld (E - 1), the unchanged "
			"variant's parameters before the event",
			cf->ref_step);
	fputs("; held-out there: recon ", f);
	put_short(f, cf->ref_recon);
	fputs(", IS-NLL ", f);
	put_short(f, cf->ref_nll);
	fputc('\n', f);
}

static void put_md(FILE *f, const struct cf *cf)
{
	fprintf(f, "# Counterfactual replay: %s\n\n```\n", cf->base.run.name);
	write_header_md(f, cf);
	fputs("```\n\n", f);
	fputs("| variant | settings | outcome | first event | cause | op | "
	      "node | max abs z | max grad norm | loss first | loss max | "
	      "loss last | eval recon | eval IS-NLL | param dist | s |\n"
	      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	      "---|\n", f);
	for (size_t i = 0; i < cf->n_v; i++) {
		const struct cf_variant *v = &cf->v[i];
		char where[128];
		event_where(v, where, sizeof where);
		const struct guard_event *e = &v->sum.first;
		double vals[N_VALUES];
		variant_values(v, vals);
		fprintf(f, "| %s | %s | %s", v->name, v->sets[0] ? v->sets : "-",
			outcome(v));
		if (v->sum.skipped > 0)
			fprintf(f, " (%ld)", v->sum.skipped);
		fprintf(f, " | %s | %s | %s | %s |", where,
			e->set && e->cause != GUARD_CAUSE_NONE
				? guard_cause_name(e->cause) : "-",
			e->set && e->op[0] ? e->op : "-",
			e->set && e->node[0] ? e->node : "-");
		for (size_t k = 0; k < N_VALUES; k++) {
			fputc(' ', f);
			put_short(f, vals[k]);
			fputs(" |", f);
		}
		fprintf(f, " %.1f |\n", v->seconds);
	}
	fputs("\noutcome: fails (the run stops at a non-finite value), eval "
	      "(training stayed finite, the held-out loss evaluated where the "
	      "horizon ends was not), skips "
	      "(non-finite batches skipped, count in brackets), clean (none "
	      "within the horizon). max abs z, grad norm (before clipping) "
	      "and loss over the horizon's steps; eval recon (bce or sse as "
	      "model.recon) and IS-NLL on the held-out images at the end; "
	      "param dist = ||p - p0|| / ||p0|| after the param ref step, "
	      "p0 the unchanged variant's parameters.\n", f);
	if (cf->notes[0])
		fprintf(f, "\nNot run:\n\n%s", cf->notes);
}

enum vb_status cf_verdict_write_md(FILE *f, void *ctx, struct vb_error *err)
{
	(void)err;
	put_md(f, ctx);
	return VB_OK;
}

/* One of the files above: its text written by PUT. */
typedef void (*put_fn)(FILE *f, const struct cf *cf);

struct put_ctx {
	const struct cf *cf;
	put_fn put;
};

static enum vb_status put_with(FILE *f, void *ctx, struct vb_error *err)
{
	const struct put_ctx *p = ctx;
	(void)err;
	p->put(f, p->cf);
	return VB_OK;
}

/* Writes cf->dir/NAME atomically with PUT's text. */
static enum vb_status write_file(const struct cf *cf, const char *name,
				 put_fn put, struct vb_error *err)
{
	char path[1300];
	struct put_ctx p = {cf, put};
	snprintf(path, sizeof path, "%s/%s", cf->dir, name);
	return files_write_with(path, put_with, &p, false, err);
}

static enum vb_status write_figure(const struct cf *cf, const char *path,
				   struct vb_error *err)
{
	struct plot_series s[3][CF_MAX_VARIANTS];
	struct plot_panel panels[3] = {
		{"training loss", cf->n_v, s[0]},
		{"gradient norm (before clipping)", cf->n_v, s[1]},
		{"max |z|", cf->n_v, s[2]}};
	const char *labels[CF_MAX_VARIANTS];
	uint32_t colors[CF_MAX_VARIANTS];
	char title[400];
	struct plot_lines pl = {0};
	for (size_t i = 0; i < cf->n_v; i++) {
		const struct cf_variant *v = &cf->v[i];
		colors[i] = plot_palette(i);
		labels[i] = v->name;
		for (int k = 0; k < 3; k++) {
			s[k][i].n = v->n;
			s[k][i].x = v->step;
			s[k][i].y = k == 0 ? v->loss : k == 1 ? v->gnorm : v->zmax;
			s[k][i].color = colors[i];
			s[k][i].mark_x = i == 0 ? (double)cf->orig.orig_step
						: NAN;
		}
	}
	snprintf(title, sizeof title, "%s: counterfactual from step %ld, "
		 "original event at step %ld", cf->base.run.name,
		 cf->start_step, cf->orig.orig_step);
	pl.title = title;
	pl.x_label = "step";
	pl.y_label = "value";
	pl.symlog_y = true; /* the RHVAE's loss is negative */
	pl.x_fit = true;    /* the horizon, not steps from 0 */
	pl.n_panels = 3;
	pl.n_cols = 3;
	pl.panels = panels;
	pl.legend_n = cf->n_v;
	pl.legend_labels = labels;
	pl.legend_colors = colors;
	return plot_lines_png(&pl, path, err);
}

enum vb_status cf_verdict_write_outputs(struct cf *cf, struct vb_error *err)
{
	char path[1300];
	enum vb_status st = write_file(cf, "curves.csv", put_curves_csv, err);
	if (st == VB_OK)
		st = write_file(cf, "times.csv", put_times_csv, err);
	if (st == VB_OK) {
		snprintf(path, sizeof path, "%s/counterfactual.png", cf->dir);
		st = write_figure(cf, path, err);
	}
	if (st == VB_OK)
		st = write_file(cf, "verdict.md", put_md, err);
	/* last: its presence says the folder is complete */
	if (st == VB_OK)
		st = write_file(cf, "verdict.csv", put_verdict_csv, err);
	return st;
}
