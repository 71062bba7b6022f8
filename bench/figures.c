/* figures: figure selection for a sweep folder (figures.h); plot.c
 * draws the PNGs. */
#include "figures.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"
#include "plot.h"
#include "stats.h"

/* ---- report: plots ---- */

static const char *short_key(const char *key)
{
	const char *dot = strchr(key, '.');
	return dot ? dot + 1 : key;
}

static bool has_axis(const char *const *axes, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(axes[i], name))
			return true;
	return false;
}

/* Picks the map axes: the requested ones, else optim.lr x train.batch
 * when both vary, else the first varying settings (seed last). NULL for
 * an axis means a single "all" column or row. */
void figures_pick_map(const char *const *axes, size_t n, const char *want_x,
		     const char *want_y, const char **x, const char **y)
{
	const char *cand[64];
	size_t nc = 0;
	*x = want_x;
	*y = want_y;
	if (*x && *y)
		return;
	if (has_axis(axes, n, "optim.lr") && has_axis(axes, n, "train.batch")) {
		*x = "optim.lr";
		*y = "train.batch";
		return;
	}
	for (size_t i = 0; i < n && nc < 64; i++)
		if (strcmp(axes[i], "train.seed"))
			cand[nc++] = axes[i];
	*x = nc > 0 ? cand[0] : NULL;
	*y = nc > 1 ? cand[1] : NULL;
}

/* Whether column key takes more than one value among the rows of one
 * mitigation (a [sweep] axis does; a setting a mitigation sets does not). */
static bool varies_within_mitigation(const struct table *t, const char *key)
{
	for (size_t a = 0; a < t->n_rows; a++)
		for (size_t b = a + 1; b < t->n_rows; b++)
			if (!strcmp(table_get(t, a, "mitigation"),
				    table_get(t, b, "mitigation")) &&
			    strcmp(table_get(t, a, key), table_get(t, b, key)))
				return true;
	return false;
}

bool figures_is_mitigation_sweep(const struct table *t)
{
	const char *first;
	if (table_col(t, "mitigation") < 0 || t->n_rows < 2)
		return false;
	first = table_get(t, 0, "mitigation");
	for (size_t r = 1; r < t->n_rows; r++)
		if (strcmp(table_get(t, r, "mitigation"), first))
			return true;
	return false;
}

void figures_pick_axes(const struct table *t, const char *const *axes,
		       size_t n, const char *want_x, const char *want_y,
		       const char **x, const char **y)
{
	if ((want_x && want_y) || !figures_is_mitigation_sweep(t)) {
		figures_pick_map(axes, n, want_x, want_y, x, y);
		return;
	}
	/* a mitigation sweep: a row (panel) per mitigation, the first
	 * [sweep] axis other than the seed across; the settings the
	 * mitigations set are not axes of their own */
	*y = "mitigation";
	*x = want_x;
	for (size_t i = 0; !*x && i < n; i++)
		if (strcmp(axes[i], "train.seed") &&
		    varies_within_mitigation(t, axes[i]))
			*x = axes[i];
}

/* One cell of the stability map: the runs whose kx (ky) is xv (yv),
 * error rows aside; *val the NaN share, *annot (malloc'd) its text. */
static enum vb_status map_cell(const struct table *t, const char *kx,
			       const char *xv, const char *ky, const char *yv,
			       double *val, char **annot, struct vb_error *err)
{
	size_t runs = 0, hits = 0;
	double ep[4096];
	for (size_t r = 0; r < t->n_rows; r++) {
		const char *s = table_get(t, r, "status");
		double e;
		if ((kx && strcmp(table_get(t, r, kx), xv)) ||
		    (ky && strcmp(table_get(t, r, ky), yv)) ||
		    !strcmp(s, "error"))
			continue;
		runs++;
		if (stats_is_hit(s) && hits < 4096) {
			ep[hits++] = table_parse_num(table_get(t, r,
							       "first_epoch"),
						     &e)
					     ? e
					     : NAN;
		}
	}
	*val = runs ? (double)hits / (double)runs : NAN;
	*annot = malloc(64);
	if (!*annot)
		return vb_fail(err, VB_ERR_NOMEM, "no memory");
	if (!runs) {
		snprintf(*annot, 64, "no runs");
	} else if (hits) {
		double m;
		qsort(ep, hits, sizeof *ep, files_cmp_double);
		m = hits % 2 ? ep[hits / 2]
			     : 0.5 * (ep[hits / 2 - 1] + ep[hits / 2]);
		snprintf(*annot, 64, "%zu/%zu\nep %.3g", hits, runs, m);
	} else {
		snprintf(*annot, 64, "%zu/%zu", hits, runs);
	}
	return VB_OK;
}

enum vb_status figures_map(const struct table *t, const char *dir,
			       const char *kx, const char *ky,
			       struct vb_error *err)
{
	struct stats_values vx = {0}, vy = {0};
	const char *all = "all";
	double *val = NULL;
	char **annot = NULL, path[1200], sub[256], title[256];
	enum vb_status st = VB_OK;
	size_t nx, ny;

	if (kx)
		st = stats_distinct(t, kx, &vx, err);
	if (st == VB_OK && ky)
		st = stats_distinct(t, ky, &vy, err);
	if (st)
		goto out;
	if (!kx) {
		vx.v = &all;
		vx.n = 1;
	}
	if (!ky) {
		vy.v = &all;
		vy.n = 1;
	}
	nx = vx.n;
	ny = vy.n;
	/* row 0 is drawn at the bottom: mitigations read top-down in file
	 * order */
	if (ky && !strcmp(ky, "mitigation"))
		for (size_t i = 0; i < ny / 2; i++) {
			const char *tmp = vy.v[i];
			vy.v[i] = vy.v[ny - 1 - i];
			vy.v[ny - 1 - i] = tmp;
		}
	val = malloc(nx * ny * sizeof *val);
	annot = calloc(nx * ny, sizeof *annot);
	if (!val || !annot) {
		st = vb_fail(err, VB_ERR_NOMEM, "table: no memory");
		goto out;
	}
	for (size_t yi = 0; yi < ny; yi++) {
		for (size_t xi = 0; xi < nx; xi++) {
			size_t k = yi * nx + xi;
			st = map_cell(t, kx, vx.v[xi], ky, vy.v[yi], &val[k],
				      &annot[k], err);
			if (st)
				goto out;
		}
	}
	snprintf(title, sizeof title, "Stability map: share of runs that hit "
		 "NaN/Inf (%zu runs)", t->n_rows);
	snprintf(sub, sizeof sub, "cell text: runs that hit NaN / runs, "
		 "'ep': median epoch of the first NaN");
	{
		struct plot_heatmap h = {
			.title = title, .subtitle = sub,
			.x_label = kx ? kx : "", .y_label = ky ? ky : "",
			.bar_label = "NaN share", .nx = nx, .ny = ny,
			.x_ticks = vx.v, .y_ticks = vy.v, .value = val,
			.annot = (const char *const *)annot};
		snprintf(path, sizeof path, "%s/stability_map.png", dir);
		st = plot_heatmap_png(&h, path, err);
	}
out:
	if (annot)
		for (size_t i = 0; i < vx.n * vy.n; i++)
			free(annot[i]);
	free(annot);
	free(val);
	if (kx)
		free(vx.v);
	if (ky)
		free(vy.v);
	return st;
}

/* One run's curve from its metrics.csv: x = steps, y = column. */
struct curve {
	double *x, *y;
	size_t n;
};

static void read_curve(const char *dir, const char *id, const char *col,
		       struct curve *c)
{
	char path[1300];
	struct table m;
	table_init(&m);
	c->n = 0;
	c->x = c->y = NULL;
	if (table_curve_path(dir, id, path, sizeof path) &&
	    table_read(path, &m, NULL) == VB_OK && m.n_rows) {
		c->x = malloc(m.n_rows * sizeof *c->x);
		c->y = malloc(m.n_rows * sizeof *c->y);
		if (c->x && c->y) {
			for (size_t r = 0; r < m.n_rows; r++) {
				double x, y;
				if (!table_parse_num(table_get(&m, r, "steps"), &x))
					continue;
				if (!table_parse_num(table_get(&m, r, col), &y))
					y = NAN;
				c->x[c->n] = x;
				c->y[c->n] = y;
				c->n++;
			}
		}
	}
	table_free(&m);
}

/* The data of one curves figure: a panel per (x, y) value pair, a
 * series per run, colours by seed. */
struct curves_fig {
	const struct table *t;
	const char *dir, *kx, *ky, *col;
	struct stats_values vx, vy, vs;
	size_t nx, ny, np, used;
	struct plot_panel *panels;   /* (np) */
	struct plot_series *series;  /* (n_rows) */
	struct curve *curves;        /* (n_rows) owned x, y */
	char (*titles)[160];         /* (np) */
	char (*labels)[64];          /* (n seeds) */
	const char **lab;
	uint32_t *colors;
	bool seeds;
	double lo, hi;               /* positive finite range of the y */
	double amin, amax;           /* range of |y| over finite y != 0 */
	bool negative;               /* some finite y <= 0 */
	const char *all;             /* the one value of a missing axis */
	bool from_table;             /* no run has a curve file: eval loss
					per epoch from results.csv */
};

/* Row r's eval loss per epoch from its ';'-separated eval_losses: x =
 * epoch, empty entries (epochs not evaluated) left out, "nan" kept as a
 * break. */
static void table_curve(const struct table *t, size_t r, struct curve *c)
{
	const char *p = table_get(t, r, "eval_losses");
	size_t n = 1;
	c->n = 0;
	for (const char *q = p; *q; q++)
		n += *q == ';';
	c->x = malloc(n * sizeof *c->x);
	c->y = malloc(n * sizeof *c->y);
	if (!c->x || !c->y)
		return;
	for (long e = 1; *p; e++) {
		const char *q = strchr(p, ';');
		size_t l = q ? (size_t)(q - p) : strlen(p);
		if (l) {
			char buf[64], *end;
			double v;
			snprintf(buf, sizeof buf, "%.*s", (int)l, p);
			v = strtod(buf, &end);
			c->x[c->n] = (double)e;
			c->y[c->n] = end != buf ? v : NAN;
			c->n++;
		}
		if (!q)
			break;
		p = q + 1;
	}
}

static enum vb_status curves_alloc(struct curves_fig *f, struct vb_error *err)
{
	enum vb_status st = VB_OK;
	if (f->kx)
		st = stats_distinct(f->t, f->kx, &f->vx, err);
	if (st == VB_OK && f->ky)
		st = stats_distinct(f->t, f->ky, &f->vy, err);
	if (st == VB_OK)
		st = stats_distinct(f->t, "train.seed", &f->vs, err);
	if (st)
		return st;
	if (!f->kx) {
		f->vx.v = &f->all;
		f->vx.n = 1;
	}
	if (!f->ky) {
		f->vy.v = &f->all;
		f->vy.n = 1;
	}
	f->nx = f->vx.n;
	f->ny = f->vy.n;
	f->np = f->nx * f->ny;
	f->seeds = f->vs.n > 1;
	f->panels = calloc(f->np, sizeof *f->panels);
	f->series = calloc(f->t->n_rows + 1, sizeof *f->series);
	f->curves = calloc(f->t->n_rows + 1, sizeof *f->curves);
	f->titles = calloc(f->np, sizeof *f->titles);
	f->labels = calloc(f->vs.n + 1, sizeof *f->labels);
	f->lab = calloc(f->vs.n + 1, sizeof *f->lab);
	f->colors = calloc(f->vs.n + 1, sizeof *f->colors);
	if (!f->panels || !f->series || !f->curves || !f->titles ||
	    !f->labels || !f->lab || !f->colors)
		return vb_fail(err, VB_ERR_NOMEM, "table: no memory");
	return VB_OK;
}

static void curves_free(struct curves_fig *f)
{
	for (size_t i = 0; f->curves && i < f->used; i++) {
		free(f->curves[i].x);
		free(f->curves[i].y);
	}
	free(f->curves);
	free(f->series);
	free(f->panels);
	free(f->titles);
	free(f->labels);
	free(f->lab);
	free(f->colors);
	if (f->kx)
		free(f->vx.v);
	if (f->ky)
		free(f->vy.v);
	free(f->vs.v);
}

/* Row r's curve as the next series (line: its index in the panel). */
static void curves_add_run(struct curves_fig *f, size_t r, size_t line)
{
	const struct table *t = f->t;
	struct plot_series *s = &f->series[f->used];
	double ms;
	if (f->from_table)
		table_curve(t, r, &f->curves[f->used]);
	else
		read_curve(f->dir, table_get(t, r, "id"), f->col,
			   &f->curves[f->used]);
	s->n = f->curves[f->used].n;
	s->x = f->curves[f->used].x;
	s->y = f->curves[f->used].y;
	s->color = plot_palette(
		f->seeds ? stats_value_index(&f->vs,
					     table_get(t, r, "train.seed"))
			 : line);
	s->mark_x = stats_is_hit(table_get(t, r, "status")) &&
			    table_parse_num(table_get(t, r, f->from_table
								? "first_epoch"
								: "first_step"),
					    &ms)
			    ? ms
			    : NAN;
	for (size_t i = 0; i < s->n; i++) {
		if (!isfinite(s->y[i]))
			continue;
		if (s->y[i] > 0) {
			f->lo = fmin(f->lo, s->y[i]);
			f->hi = fmax(f->hi, s->y[i]);
		} else {
			f->negative = true;
		}
		if (s->y[i] != 0) {
			f->amin = fmin(f->amin, fabs(s->y[i]));
			f->amax = fmax(f->amax, fabs(s->y[i]));
		}
	}
	f->used++;
}

/* Panel (xi, yi): its title and the runs of its values. */
static void curves_panel(struct curves_fig *f, size_t xi, size_t yi)
{
	const struct table *t = f->t;
	const char *kx = f->kx, *ky = f->ky;
	size_t p = yi * f->nx + xi, first = f->used, line = 0;
	bool mit = ky && !strcmp(ky, "mitigation");
	if (kx && ky && mit)
		snprintf(f->titles[p], sizeof f->titles[p], "%s, %s=%s",
			 f->vy.v[yi], short_key(kx), f->vx.v[xi]);
	else if (kx && ky)
		snprintf(f->titles[p], sizeof f->titles[p], "%s=%s, %s=%s",
			 short_key(kx), f->vx.v[xi], short_key(ky),
			 f->vy.v[yi]);
	else if (mit)
		snprintf(f->titles[p], sizeof f->titles[p], "%s",
			 f->vy.v[yi]);
	else if (kx)
		snprintf(f->titles[p], sizeof f->titles[p], "%s=%s",
			 short_key(kx), f->vx.v[xi]);
	else
		snprintf(f->titles[p], sizeof f->titles[p], "all");
	for (size_t r = 0; r < t->n_rows; r++) {
		if ((kx && strcmp(table_get(t, r, kx), f->vx.v[xi])) ||
		    (ky && strcmp(table_get(t, r, ky), f->vy.v[yi])))
			continue;
		curves_add_run(f, r, line++);
	}
	f->panels[p].title = f->titles[p];
	f->panels[p].n_series = f->used - first;
	f->panels[p].series = &f->series[first];
}

/* Drops f's curves and fills its panels again from results.csv's eval
 * losses per epoch (f->from_table). */
static void curves_from_table(struct curves_fig *f)
{
	for (size_t i = 0; i < f->used; i++) {
		free(f->curves[i].x);
		free(f->curves[i].y);
		f->curves[i].x = f->curves[i].y = NULL;
	}
	f->used = 0;
	f->from_table = true;
	f->lo = f->amin = INFINITY;
	f->hi = -INFINITY;
	f->amax = 0;
	f->negative = false;
	for (size_t yi = 0; yi < f->ny; yi++)
		for (size_t xi = 0; xi < f->nx; xi++)
			curves_panel(f, xi, yi);
}

/* Empty panels (no run, or no run with a curve) are not drawn: the
 * others close up, each titled with its values. Returns how many are
 * left at the front of f->panels. */
static size_t curves_close_up(struct curves_fig *f)
{
	size_t n_drawn = 0;
	for (size_t i = 0; i < f->np; i++) {
		bool any = false;
		for (size_t k = 0; k < f->panels[i].n_series; k++)
			any |= f->panels[i].series[k].n > 0;
		if (any)
			f->panels[n_drawn++] = f->panels[i];
	}
	return n_drawn;
}

enum vb_status figures_curves(const struct table *t, const char *dir,
			      const char *kx, const char *ky,
			      const char *col, const char *file,
			      const char *title, const char *ylabel,
			      struct vb_error *err)
{
	struct curves_fig f = {.t = t, .dir = dir, .kx = kx, .ky = ky,
			       .col = col, .lo = INFINITY, .hi = -INFINITY,
			       .amin = INFINITY, .amax = 0, .all = "all"};
	char path[1200];
	size_t with_curve = 0, n_drawn = 0, n_cols;
	enum vb_status st = curves_alloc(&f, err);
	for (size_t yi = 0; st == VB_OK && yi < f.ny; yi++)
		for (size_t xi = 0; xi < f.nx; xi++)
			curves_panel(&f, xi, yi);
	snprintf(path, sizeof path, "%s/%s", dir, file);
	/* no run has a curve (a folder committed before curves/ was kept
	 * for every run): the loss figure shows the eval loss per epoch that
	 * results.csv holds, titled so. Without that record the figure drawn
	 * when runs/ was there stays, unless it was drawn as an lr x batch
	 * grid of a mitigation sweep: that one is removed. */
	for (size_t i = 0; st == VB_OK && i < f.used; i++)
		with_curve += f.curves[i].n > 0;
	if (st == VB_OK && !with_curve && f.used) {
		if (strcmp(col, "train_loss") ||
		    table_col(t, "eval_losses") < 0) {
			bool stale = figures_is_mitigation_sweep(t);
			curves_free(&f);
			if (stale && unlink(path) != 0 &&
			    access(path, F_OK) == 0)
				return vb_fail(err, VB_ERR_IO, "report: "
					       "cannot remove %s", path);
			return VB_OK;
		}
		curves_from_table(&f);
		title = "Eval loss per epoch (from results.csv: this folder "
			"keeps no curves/); red dashes: epoch of the first "
			"NaN/Inf";
		ylabel = "eval loss";
	}
	if (st == VB_OK)
		n_drawn = curves_close_up(&f);
	/* an x x y grid keeps its columns while it is whole; otherwise
	 * (one axis, a mitigation per panel, holes) rows of at most 4 */
	n_cols = f.ky && strcmp(f.ky, "mitigation") && n_drawn == f.np
			 ? f.nx
			 : (n_drawn < 4 ? n_drawn : 4);
	for (size_t i = 0; st == VB_OK && f.seeds && i < f.vs.n; i++) {
		snprintf(f.labels[i], sizeof f.labels[i], "seed %s", f.vs.v[i]);
		f.lab[i] = f.labels[i];
		f.colors[i] = plot_palette(i);
	}
	if (st == VB_OK) {
		/* log only for positive data; signed data spanning decades
		 * on a symmetric log axis, else linear (zero marked) */
		struct plot_lines pl = {
			.title = title,
			.x_label = f.from_table ? "epoch" : "optimizer step",
			.mark_label = f.from_table ? "first NaN/Inf epoch"
						   : NULL,
			.y_label = ylabel,
			.log_y = !f.negative && f.hi > 0 && f.lo > 0 &&
				 f.hi / f.lo > 30,
			.symlog_y = f.negative && f.amax > 0 &&
				    f.amax / fmax(f.amin, 1) > 30,
			.n_panels = n_drawn, .n_cols = n_cols ? n_cols : 1,
			.panels = f.panels,
			.legend_n = f.seeds ? f.vs.n : 0,
			.legend_labels = f.lab, .legend_colors = f.colors};
		st = plot_lines_png(&pl, path, err);
	}
	curves_free(&f);
	return st;
}

#define FIGURES_GALLERY_MAX 12 /* finished runs shown in the galleries */

/* reconstructions.png and samples.png of the sweep: the pictures of the
 * first finished (status ok) runs in results order, each under its
 * swept settings. */
enum vb_status figures_galleries(const struct table *t, const char *dir,
				     const char **axes, size_t n_axes,
				     struct vb_error *err)
{
	/* samples_prior.png: an RHVAE run's decodes of its own prior
	 * (rhvae_sampler), beside the N(0, I) ones; absent for other models */
	static const char *const files[3] = {"reconstructions.png",
					     "samples.png",
					     "samples_prior.png"};
	static const char *const titles[3] = {
		"Reconstructions of finished runs (top: images, bottom: "
		"reconstructions)",
		"Samples of finished runs (decoder of z ~ N(0, I))",
		"Samples of finished RHVAE runs from the model's own prior "
		"(pythae's RHVAESampler: HMC on sqrt(det G^-1))"};
	char paths[FIGURES_GALLERY_MAX][1300], labels[FIGURES_GALLERY_MAX][512];
	const char *pp[FIGURES_GALLERY_MAX], *lp[FIGURES_GALLERY_MAX];
	enum vb_status st = VB_OK;
	bool mit = figures_is_mitigation_sweep(t);
	for (int f = 0; f < 3 && st == VB_OK; f++) {
		size_t n = 0;
		for (size_t r = 0; r < t->n_rows && n < FIGURES_GALLERY_MAX; r++) {
			const char *status = table_get(t, r, "status");
			const char *id = table_get(t, r, "id");
			size_t len = 0;
			if (!status || strcmp(status, "ok") != 0 || !id)
				continue;
			snprintf(paths[n], sizeof paths[n], "%s/runs/%s/%s", dir,
				 id, files[f]);
			labels[n][0] = '\0';
			/* a mitigation sweep: the mitigation's name and the
			 * [sweep] axes, not every setting it changes */
			if (mit)
				len = (size_t)snprintf(labels[n],
						       sizeof labels[n],
						       "mitigation=%s",
						       table_get(t, r,
								 "mitigation"));
			for (size_t a = 0; a < n_axes && len < sizeof labels[n];
			     a++) {
				const char *v = table_get(t, r, axes[a]);
				if (mit && strcmp(axes[a], "train.seed") &&
				    !varies_within_mitigation(t, axes[a]))
					continue;
				len += (size_t)snprintf(labels[n] + len,
							sizeof labels[n] - len,
							"%s%s=%s",
							len ? "  " : "",
							axes[a], v ? v : "");
			}
			pp[n] = paths[n];
			lp[n] = labels[n];
			n++;
		}
		char out[1300];
		snprintf(out, sizeof out, "%s/%s", dir, files[f]);
		st = plot_stack_png(pp, lp, n, titles[f], out, err);
	}
	return st;
}
