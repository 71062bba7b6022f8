/* curves: per-epoch curves of runs from several sweep folders on one
 * figure (curves.h), against epochs, epochs x learning rate or optimizer
 * steps. */
#include "curves.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "plot.h"
#include "stats.h"
#include "table.h"

#define CURVES_MAX_SERIES 8
#define CURVES_MAX_COLS 4

/* One SERIES argument: the runs of a folder, of one mitigation or all. */
struct series {
	char dir[1024], mitigation[128], label[160];
	struct table rows;
	size_t n_runs;
	size_t *run_rows;     /* (n_runs) row indices into rows */
	struct table *curves; /* (n_runs) each run's curves/ID.csv */
};

struct curves_opts {
	const char *out, *title, *csv;
	const char *cols[CURVES_MAX_COLS];
	size_t n_cols;
	enum curves_x { X_EPOCH, X_LR_EPOCHS, X_STEPS } x;
	bool log_y;
	struct series s[CURVES_MAX_SERIES];
	size_t n_series;
};

static void series_free(struct series *s)
{
	for (size_t i = 0; s->curves && i < s->n_runs; i++)
		table_free(&s->curves[i]);
	free(s->curves);
	free(s->run_rows);
	table_free(&s->rows);
}

/* "DIR[:MITIGATION]" into s (its folder, not yet loaded). */
static enum vb_status parse_series(const char *arg, struct series *s,
				   struct vb_error *err)
{
	const char *colon = strrchr(arg, ':');
	size_t n = colon ? (size_t)(colon - arg) : strlen(arg);
	if (!n || n >= sizeof s->dir ||
	    (colon && (!colon[1] || strlen(colon + 1) >= sizeof s->mitigation)))
		return vb_fail(err, VB_ERR_USAGE, "curves: series '%s': "
			       "expected DIR or DIR:MITIGATION", arg);
	memcpy(s->dir, arg, n);
	s->dir[n] = '\0';
	snprintf(s->mitigation, sizeof s->mitigation, "%s",
		 colon ? colon + 1 : "");
	return VB_OK;
}

/* "a,b,c" into o->cols (pointers into list, which it cuts). */
static enum vb_status parse_cols(char *list, struct curves_opts *o,
				 struct vb_error *err)
{
	for (char *t = strtok(list, ","); t; t = strtok(NULL, ",")) {
		if (o->n_cols == CURVES_MAX_COLS)
			return vb_fail(err, VB_ERR_USAGE, "curves: --col: at "
				       "most %d columns", CURVES_MAX_COLS);
		o->cols[o->n_cols++] = t;
	}
	if (!o->n_cols)
		return vb_fail(err, VB_ERR_USAGE, "curves: --col needs a "
			       "column of the curves (e.g. eval_sse)");
	return VB_OK;
}

static enum vb_status parse_args(int argc, char **argv, struct curves_opts *o,
				 struct vb_error *err)
{
	enum vb_status st = VB_OK;
	for (int i = 0; st == VB_OK && i < argc; i++) {
		const char *a = argv[i];
		bool has_v = i + 1 < argc;
		if (!strcmp(a, "--col") && has_v)
			st = parse_cols(argv[++i], o, err);
		else if (!strcmp(a, "--x") && has_v) {
			const char *v = argv[++i];
			o->x = !strcmp(v, "lr-epochs") ? X_LR_EPOCHS
			       : !strcmp(v, "steps")   ? X_STEPS
						       : X_EPOCH;
			if (strcmp(v, "epoch") && o->x == X_EPOCH)
				st = vb_fail(err, VB_ERR_USAGE, "curves: --x "
					     "'%s': expected epoch, lr-epochs "
					     "or steps", v);
		} else if (!strcmp(a, "--title") && has_v)
			o->title = argv[++i];
		else if (!strcmp(a, "--csv") && has_v)
			o->csv = argv[++i];
		else if (!strcmp(a, "--log-y"))
			o->log_y = true;
		else if (a[0] == '-' && a[1])
			st = vb_fail(err, VB_ERR_USAGE, "curves: unknown "
				     "option '%s'%s", a,
				     has_v ? "" : " (or its value missing)");
		else if (!o->out)
			o->out = a;
		else if (o->n_series == CURVES_MAX_SERIES)
			st = vb_fail(err, VB_ERR_USAGE, "curves: at most %d "
				     "series", CURVES_MAX_SERIES);
		else
			st = parse_series(a, &o->s[o->n_series++], err);
	}
	if (st == VB_OK && (!o->out || !o->n_series || !o->n_cols))
		st = vb_fail(err, VB_ERR_USAGE, "curves needs OUT.png, --col "
			     "COL and at least one DIR[:MITIGATION]");
	if (st == VB_OK && (strlen(o->out) < 5 ||
			    strcmp(o->out + strlen(o->out) - 4, ".png")))
		st = vb_fail(err, VB_ERR_USAGE, "curves: output '%s': "
			     "expected a .png file name", o->out);
	return st;
}

/* Loads s's results.csv and the curves of its runs (of its mitigation);
 * every column of cols, and x_col, must be in them. */
static enum vb_status load_series(struct series *s, const char *const *cols,
				  size_t n_cols, bool need_lr,
				  const char *x_col, struct vb_error *err)
{
	char path[1200];
	enum vb_status st;
	snprintf(path, sizeof path, "%s/results.csv", s->dir);
	if (!files_exists(path))
		return vb_fail(err, VB_ERR_USAGE, "curves: %s has no "
			       "results.csv: expected a sweep folder", s->dir);
	st = table_read(path, &s->rows, err);
	if (st != VB_OK)
		return st;
	if (table_col(&s->rows, "id") < 0 ||
	    (need_lr && table_col(&s->rows, "optim.lr") < 0))
		return vb_fail(err, VB_ERR_DATA, "curves: %s: no id%s column",
			       path, need_lr ? " or optim.lr" : "");
	s->run_rows = malloc((s->rows.n_rows + 1) * sizeof *s->run_rows);
	s->curves = calloc(s->rows.n_rows + 1, sizeof *s->curves);
	if (!s->run_rows || !s->curves)
		return vb_fail(err, VB_ERR_NOMEM, "curves: no memory");
	for (size_t r = 0; r < s->rows.n_rows; r++)
		if (!s->mitigation[0] ||
		    !strcmp(table_get(&s->rows, r, "mitigation"),
			    s->mitigation))
			s->run_rows[s->n_runs++] = r;
	if (!s->n_runs)
		return vb_fail(err, VB_ERR_USAGE, "curves: %s has no run%s%s",
			       path, s->mitigation[0] ? " of mitigation " : "",
			       s->mitigation);
	for (size_t i = 0; st == VB_OK && i < s->n_runs; i++) {
		const char *id = table_get(&s->rows, s->run_rows[i], "id");
		table_init(&s->curves[i]);
		if (!table_curve_path(s->dir, id, path, sizeof path))
			return vb_fail(err, VB_ERR_DATA, "curves: %s is "
				       "missing (run 'vaebench report %s')",
				       path, s->dir);
		st = table_read(path, &s->curves[i], err);
		for (size_t c = 0; st == VB_OK && c < n_cols + 1; c++) {
			const char *col = c < n_cols ? cols[c] : x_col;
			if (table_col(&s->curves[i], col) < 0)
				st = vb_fail(err, VB_ERR_USAGE, "curves: %s "
					     "has no column '%s'", path, col);
		}
	}
	snprintf(s->label, sizeof s->label, "%s",
		 s->mitigation[0] ? s->mitigation : s->dir);
	return st;
}

/* The largest optim.lr over every run (the x axis's reference rate). */
static double reference_lr(const struct curves_opts *o)
{
	double ref = 0, v;
	for (size_t k = 0; k < o->n_series; k++)
		for (size_t i = 0; i < o->s[k].n_runs; i++)
			if (table_parse_num(table_get(&o->s[k].rows,
						      o->s[k].run_rows[i],
						      "optim.lr"),
					    &v) &&
			    v > ref)
				ref = v;
	return ref;
}

/* The curves' column that gives x. */
static const char *x_column(enum curves_x x)
{
	return x == X_STEPS ? "steps" : "epoch";
}

/* Run i of s as one line of panel column col: x (epoch; log10 of epoch x
 * lr / ref; log10 of the optimizer steps at the epoch's end) and y into
 * xs, ys (each the curve's length); its first NaN (epoch or step) as
 * mark. */
static struct plot_series run_line(const struct series *s, size_t i,
				   const char *col, double scale,
				   enum curves_x x, double *xs, double *ys,
				   uint32_t color)
{
	const struct table *c = &s->curves[i];
	struct plot_series ps = {c->n_rows, xs, ys, color, NAN};
	bool logx = x != X_EPOCH;
	double first;
	for (size_t k = 0; k < c->n_rows; k++) {
		double e = NAN, y = NAN;
		table_parse_num(table_get(c, k, x_column(x)), &e);
		table_parse_num(table_get(c, k, col), &y);
		xs[k] = logx ? log10(e * scale) : e;
		ys[k] = y;
	}
	if (stats_is_hit(table_get(&s->rows, s->run_rows[i], "status")) &&
	    table_parse_num(table_get(&s->rows, s->run_rows[i],
				      x == X_STEPS ? "first_step"
						   : "first_epoch"),
			    &first))
		ps.mark_x = logx ? log10(first * scale) : first;
	return ps;
}

/* The plotted points as CSV (--csv): series, run id, mitigation,
 * optim.lr, epoch, x, column, value; a NaN epoch's value as "nan". */
struct csv_ctx {
	const struct curves_opts *o;
	const struct plot_panel *panels;
};

static enum vb_status write_points(FILE *f, void *arg, struct vb_error *err)
{
	const struct csv_ctx *c = arg;
	const struct curves_opts *o = c->o;
	fputs("series,id,mitigation,optim.lr,epoch,x,column,value\n", f);
	for (size_t p = 0; p < o->n_cols; p++)
		for (size_t k = 0, l = 0; k < o->n_series; k++)
			for (size_t i = 0; i < o->s[k].n_runs; i++, l++) {
				const struct series *s = &o->s[k];
				const struct plot_series *ps =
					&c->panels[p].series[l];
				size_t r = s->run_rows[i];
				for (size_t e = 0; e < ps->n; e++)
					fprintf(f, "%s,%s,%s,%s,%s,%.9g,%s,"
						"%.9g\n", s->label,
						table_get(&s->rows, r, "id"),
						table_get(&s->rows, r,
							  "mitigation"),
						table_get(&s->rows, r,
							  "optim.lr"),
						table_get(&s->curves[i], e,
							  "epoch"),
						o->x != X_EPOCH
							? pow(10, ps->x[e])
							: ps->x[e],
						o->cols[p], ps->y[e]);
			}
	(void)err; /* files_write_with checks the stream */
	return VB_OK;
}

/* The figure of panels (one per column) into o->out. */
static enum vb_status draw_png(const struct curves_opts *o,
			       const struct plot_panel *panels, double ref,
			       struct vb_error *err)
{
	const char *labels[CURVES_MAX_SERIES];
	uint32_t colors[CURVES_MAX_SERIES];
	char title[400], xlab[200];
	for (size_t k = 0; k < o->n_series; k++) {
		labels[k] = o->s[k].label;
		colors[k] = plot_palette(k);
	}
	if (o->x == X_LR_EPOCHS)
		snprintf(xlab, sizeof xlab, "epoch x lr / %g (log scale)",
			 ref);
	else
		snprintf(xlab, sizeof xlab, "%s",
			 o->x == X_STEPS ? "optimizer steps (log scale)"
					 : "epoch");
	snprintf(title, sizeof title, "%s%s",
		 o->title ? o->title : "Per-epoch curves, one line a run; "
				       "red dashes: first NaN/Inf ",
		 o->title ? "" : o->x == X_STEPS ? "step" : "epoch");
	struct plot_lines pl = {
		.title = title,
		.x_label = xlab,
		.y_label = o->n_cols == 1 ? o->cols[0] : "value",
		.log_y = o->log_y,
		.x_fit = true,
		.x_log10 = o->x != X_EPOCH,
		.n_panels = o->n_cols,
		.n_cols = o->n_cols < 2 ? 1 : 2,
		.panels = panels,
		.legend_n = o->n_series,
		.legend_labels = labels,
		.legend_colors = colors,
		.mark_label = o->x == X_STEPS ? "first NaN/Inf step"
					      : "first NaN/Inf epoch",
	};
	return plot_lines_png(&pl, o->out, err);
}

static enum vb_status draw(const struct curves_opts *o, struct vb_error *err)
{
	size_t n_lines = 0, n_points = 0, at = 0;
	double ref = o->x == X_LR_EPOCHS ? reference_lr(o) : 1;
	struct plot_panel panels[CURVES_MAX_COLS];
	struct plot_series *lines;
	double *buf;
	enum vb_status st;
	if (o->x == X_LR_EPOCHS && !(ref > 0))
		return vb_fail(err, VB_ERR_DATA, "curves: --x lr-epochs: no "
			       "run has a positive optim.lr");
	for (size_t k = 0; k < o->n_series; k++)
		for (size_t i = 0; i < o->s[k].n_runs; i++) {
			n_lines++;
			n_points += o->s[k].curves[i].n_rows;
		}
	lines = malloc((n_lines * o->n_cols + 1) * sizeof *lines);
	buf = malloc((2 * n_points * o->n_cols + 1) * sizeof *buf);
	if (!lines || !buf) {
		free(lines);
		free(buf);
		return vb_fail(err, VB_ERR_NOMEM, "curves: no memory");
	}
	for (size_t c = 0; c < o->n_cols; c++) {
		panels[c].title = o->cols[c];
		panels[c].series = lines + c * n_lines;
		panels[c].n_series = n_lines;
		for (size_t k = 0, l = 0; k < o->n_series; k++)
			for (size_t i = 0; i < o->s[k].n_runs; i++, l++) {
				const struct series *s = &o->s[k];
				double lr = 1, *xs = buf + at;
				if (o->x == X_LR_EPOCHS)
					table_parse_num(
						table_get(&s->rows,
							  s->run_rows[i],
							  "optim.lr"),
						&lr);
				at += 2 * s->curves[i].n_rows;
				lines[c * n_lines + l] = run_line(
					s, i, o->cols[c], lr / ref, o->x, xs,
					xs + s->curves[i].n_rows,
					plot_palette(k));
			}
	}
	st = draw_png(o, panels, ref, err);
	if (st == VB_OK && o->csv) {
		struct csv_ctx ctx = {o, panels};
		st = files_write_with(o->csv, write_points, &ctx, false, err);
	}
	free(lines);
	free(buf);
	return st;
}

enum vb_status curves_command(int argc, char **argv, FILE *log,
			      struct vb_error *err)
{
	struct curves_opts o;
	enum vb_status st;
	memset(&o, 0, sizeof o);
	for (size_t k = 0; k < CURVES_MAX_SERIES; k++)
		table_init(&o.s[k].rows);
	st = parse_args(argc, argv, &o, err);
	for (size_t k = 0; st == VB_OK && k < o.n_series; k++)
		st = load_series(&o.s[k], o.cols, o.n_cols,
				 o.x == X_LR_EPOCHS, x_column(o.x), err);
	/* two series of one name (the same mitigation from two folders)
	 * are told apart by their folder */
	for (size_t k = 0; st == VB_OK && k < o.n_series; k++)
		for (size_t j = 0; j < o.n_series; j++)
			if (j != k && o.s[k].mitigation[0] &&
			    !strcmp(o.s[k].mitigation, o.s[j].mitigation)) {
				snprintf(o.s[k].label, sizeof o.s[k].label,
					 "%s (%s)", o.s[k].mitigation,
					 o.s[k].dir);
				break;
			}
	if (st == VB_OK)
		st = draw(&o, err);
	if (st == VB_OK && log)
		fprintf(log, "curves: wrote %s\n", o.out);
	for (size_t k = 0; k < CURVES_MAX_SERIES; k++)
		series_free(&o.s[k]);
	return st;
}
