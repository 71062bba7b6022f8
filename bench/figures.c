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
	val = malloc(nx * ny * sizeof *val);
	annot = calloc(nx * ny, sizeof *annot);
	if (!val || !annot) {
		st = vb_fail(err, VB_ERR_NOMEM, "table: no memory");
		goto out;
	}
	for (size_t yi = 0; yi < ny; yi++) {
		for (size_t xi = 0; xi < nx; xi++) {
			size_t runs = 0, hits = 0, k = yi * nx + xi;
			double ep[4096];
			for (size_t r = 0; r < t->n_rows; r++) {
				const char *s = table_get(t, r, "status");
				double e;
				if ((kx && strcmp(table_get(t, r, kx),
						  vx.v[xi])) ||
				    (ky && strcmp(table_get(t, r, ky),
						  vy.v[yi])) ||
				    !strcmp(s, "error"))
					continue;
				runs++;
				if (stats_is_hit(s) && hits < 4096) {
					ep[hits++] = table_parse_num(
						table_get(t, r, "first_epoch"),
						&e) ? e : NAN;
				}
			}
			val[k] = runs ? (double)hits / (double)runs : NAN;
			annot[k] = malloc(64);
			if (!annot[k]) {
				st = vb_fail(err, VB_ERR_NOMEM, "no memory");
				goto out;
			}
			if (!runs) {
				snprintf(annot[k], 64, "no runs");
			} else if (hits) {
				double m;
				qsort(ep, hits, sizeof *ep, files_cmp_double);
				m = hits % 2 ? ep[hits / 2]
					     : 0.5 * (ep[hits / 2 - 1] +
						      ep[hits / 2]);
				snprintf(annot[k], 64, "%zu/%zu\nep %.3g",
					 hits, runs, m);
			} else {
				snprintf(annot[k], 64, "%zu/%zu", hits, runs);
			}
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
	/* runs/ID/metrics.csv, else the copy the report keeps in curves/
	 * (a committed folder has no runs/). */
	snprintf(path, sizeof path, "%s/runs/%s/metrics.csv", dir, id);
	if (access(path, F_OK) != 0)
		snprintf(path, sizeof path, "%s/curves/%s.csv", dir, id);
	if (table_read(path, &m, NULL) == VB_OK && m.n_rows) {
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

enum vb_status figures_curves(const struct table *t, const char *dir,
				  const char *kx, const char *ky,
				  const char *col, const char *file,
				  const char *title, const char *ylabel,
				  struct vb_error *err)
{
	struct stats_values vx = {0}, vy = {0}, vs = {0};
	const char *all = "all";
	size_t np, nx, ny;
	struct plot_panel *panels = NULL;
	struct plot_series *series = NULL;
	struct curve *curves = NULL;
	char (*titles)[160] = NULL, (*labels)[64] = NULL, path[1200];
	const char **lab = NULL;
	uint32_t *colors = NULL;
	bool seeds;
	double lo = INFINITY, hi = -INFINITY;
	enum vb_status st = VB_OK;
	size_t used = 0;

	if (kx)
		st = stats_distinct(t, kx, &vx, err);
	if (st == VB_OK && ky)
		st = stats_distinct(t, ky, &vy, err);
	if (st == VB_OK)
		st = stats_distinct(t, "train.seed", &vs, err);
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
	np = nx * ny;
	seeds = vs.n > 1;
	panels = calloc(np, sizeof *panels);
	series = calloc(t->n_rows + 1, sizeof *series);
	curves = calloc(t->n_rows + 1, sizeof *curves);
	titles = calloc(np, sizeof *titles);
	labels = calloc(vs.n + 1, sizeof *labels);
	lab = calloc(vs.n + 1, sizeof *lab);
	colors = calloc(vs.n + 1, sizeof *colors);
	if (!panels || !series || !curves || !titles || !labels || !lab ||
	    !colors) {
		st = vb_fail(err, VB_ERR_NOMEM, "table: no memory");
		goto out;
	}
	for (size_t yi = 0; yi < ny; yi++) {
		for (size_t xi = 0; xi < nx; xi++) {
			size_t p = yi * nx + xi, first = used, line = 0;
			if (kx && ky)
				snprintf(titles[p], sizeof titles[p],
					 "%s=%s, %s=%s", short_key(kx),
					 vx.v[xi], short_key(ky), vy.v[yi]);
			else if (kx)
				snprintf(titles[p], sizeof titles[p], "%s=%s",
					 short_key(kx), vx.v[xi]);
			else
				snprintf(titles[p], sizeof titles[p], "all");
			for (size_t r = 0; r < t->n_rows; r++) {
				struct plot_series *s = &series[used];
				double ms;
				if ((kx && strcmp(table_get(t, r, kx),
						  vx.v[xi])) ||
				    (ky && strcmp(table_get(t, r, ky),
						  vy.v[yi])))
					continue;
				read_curve(dir, table_get(t, r, "id"), col,
					   &curves[used]);
				s->n = curves[used].n;
				s->x = curves[used].x;
				s->y = curves[used].y;
				s->color = plot_palette(
					seeds ? stats_value_index(
							&vs,
							table_get(t, r,
								  "train.seed"))
					      : line);
				s->mark_x = stats_is_hit(table_get(t, r, "status")) &&
						    table_parse_num(table_get(
								t, r,
								"first_step"),
							&ms)
						    ? ms
						    : NAN;
				for (size_t i = 0; i < s->n; i++)
					if (isfinite(s->y[i]) && s->y[i] > 0) {
						lo = fmin(lo, s->y[i]);
						hi = fmax(hi, s->y[i]);
					}
				used++;
				line++;
			}
			panels[p].title = titles[p];
			panels[p].n_series = used - first;
			panels[p].series = &series[first];
		}
	}
	snprintf(path, sizeof path, "%s/%s", dir, file);
	{
		/* no run has a curve (a clone of a folder that predates
		 * curves/): keep the plot drawn when runs/ was there */
		size_t with_curve = 0;
		for (size_t i = 0; i < used; i++)
			with_curve += curves[i].n > 0;
		if (!with_curve && access(path, F_OK) == 0)
			goto out;
	}
	for (size_t i = 0; seeds && i < vs.n; i++) {
		snprintf(labels[i], sizeof labels[i], "seed %s", vs.v[i]);
		lab[i] = labels[i];
		colors[i] = plot_palette(i);
	}
	{
		struct plot_lines pl = {
			.title = title, .x_label = "optimizer step",
			.y_label = ylabel,
			.log_y = hi > 0 && lo > 0 && hi / lo > 30,
			.n_panels = np, .n_cols = nx, .panels = panels,
			.legend_n = seeds ? vs.n : 0, .legend_labels = lab,
			.legend_colors = colors};
		st = plot_lines_png(&pl, path, err);
	}
out:
	for (size_t i = 0; curves && i < used; i++) {
		free(curves[i].x);
		free(curves[i].y);
	}
	free(curves);
	free(series);
	free(panels);
	free(titles);
	free(labels);
	free(lab);
	free(colors);
	if (kx)
		free(vx.v);
	if (ky)
		free(vy.v);
	free(vs.v);
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
	static const char *const files[2] = {"reconstructions.png",
					     "samples.png"};
	static const char *const titles[2] = {
		"Reconstructions of finished runs (top: images, bottom: "
		"reconstructions)",
		"Samples of finished runs (decoder of z ~ N(0, I))"};
	char paths[FIGURES_GALLERY_MAX][1300], labels[FIGURES_GALLERY_MAX][512];
	const char *pp[FIGURES_GALLERY_MAX], *lp[FIGURES_GALLERY_MAX];
	enum vb_status st = VB_OK;
	for (int f = 0; f < 2 && st == VB_OK; f++) {
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
			for (size_t a = 0; a < n_axes && len < sizeof labels[n];
			     a++) {
				const char *v = table_get(t, r, axes[a]);
				len += (size_t)snprintf(labels[n] + len,
							sizeof labels[n] - len,
							"%s%s=%s", a ? "  " : "",
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

/* Length in pixels (of full) of a bar for v > 0 on [0, vmax], or on a
 * log axis from vmin / 3 to vmax. */
static int bar_len(double v, double vmin, double vmax, bool log_x, int full)
{
	double f;
	if (!(v > 0) || !(vmax > 0))
		return 0;
	if (log_x)
		f = (log10(v) - log10(vmin / 3)) /
		    (log10(vmax) - log10(vmin / 3));
	else
		f = v / vmax;
	return (int)(f * full + 0.5);
}

/* mitigations.png: per mitigation (file order, top to bottom) a bar of
 * its NaN/Inf share and one of its mean eval loss at the comparison epoch
 * with the baseline's value dashed. Drawn from plot's primitives. */
enum vb_status figures_mitigations(const struct table *t, const char *dir,
				       struct vb_error *err)
{
	const int s = 2, th = plot_text_height(s), row = th + 16, pw = 360;
	const uint32_t ink = 0x222222, grey = 0x888888;
	struct stats_mit_table mt;
	struct plot_image *img = NULL;
	char path[1200], buf[160];
	int lw = 0, top, x1, x2, w, h;
	double vmax = 0, vmin = INFINITY, base_v;
	bool log_x;
	enum vb_status st = stats_mit_collect(t, &mt, err);
	if (st || !mt.n) {
		stats_mit_free(&mt);
		return st;
	}
	for (size_t i = 0; i < mt.n; i++) {
		int tw = plot_text_width(mt.m[i].name, s);
		const struct stats_mit *m = &mt.m[i];
		double v = m->n_at ? m->at_sum / (double)m->n_at : NAN;
		lw = tw > lw ? tw : lw;
		if (v > 0 && v > vmax)
			vmax = v;
		if (v > 0 && v < vmin)
			vmin = v;
	}
	/* a log axis when the losses span more than a factor 30, starting
	 * a factor 3 below the smallest so that it shows as a bar */
	log_x = vmax > 0 && vmax / vmin > 30;
	lw = lw > 320 ? 320 : lw;
	top = 20 + 2 * (th + 8) + th + 12;
	x1 = 20 + lw + 16;
	x2 = x1 + pw + 40 + plot_text_width("100% (99/99)", s);
	w = x2 + pw + 40 + plot_text_width("-1.234e+05 (99)", s);
	h = top + (int)mt.n * row + 20;
	st = plot_image_create(w, h, &img, err);
	if (st) {
		stats_mit_free(&mt);
		return st;
	}
	plot_text(img, 20, 20, s, false, ink,
		  "Mitigations: share of runs that hit NaN/Inf, and eval loss");
	if (mt.epoch > 0)
		snprintf(buf, sizeof buf, "right: mean eval loss at epoch %ld "
			 "(runs that reached it); dashed: %s", mt.epoch,
			 mt.m[mt.base].name);
	else
		snprintf(buf, sizeof buf, "right: no comparison epoch (a %s "
			 "run has no finite eval loss)", mt.m[mt.base].name);
	plot_text(img, 20, 20 + th + 8, s, false, 0x555555, buf);
	plot_text(img, x1, top - th - 8, s, false, ink, "NaN/Inf share");
	if (mt.epoch > 0) {
		snprintf(buf, sizeof buf, "eval loss at epoch %ld%s", mt.epoch,
			 log_x ? " (log scale)" : "");
		plot_text(img, x2, top - th - 8, s, false, ink, buf);
		plot_line(img, x2, top, x2, top + (int)mt.n * row, 1, 0,
			  grey);
	}
	plot_line(img, x1, top, x1, top + (int)mt.n * row, 1, 0, grey);
	for (size_t i = 0; i < mt.n; i++) {
		const struct stats_mit *m = &mt.m[i];
		int y = top + (int)i * row, bw;
		double share = m->runs ? (double)m->hits / (double)m->runs
				       : NAN;
		snprintf(buf, sizeof buf, "%s", m->name);
		while (plot_text_width(buf, s) > lw && strlen(buf) > 3) {
			size_t n = strlen(buf);
			memcpy(buf + n - 3, "..", 3);
		}
		plot_text(img, x1 - 16 - plot_text_width(buf, s), y + 8, s,
			  false, ink, buf);
		bw = isfinite(share) ? (int)(share * pw + 0.5) : 0;
		plot_fill_rect(img, x1 + 1, y + 4, bw > 0 ? bw : 1, row - 8,
			       plot_share_color(share));
		if (m->runs)
			snprintf(buf, sizeof buf, "%.0f%% (%zu/%zu)",
				 100.0 * share, m->hits, m->runs);
		else
			snprintf(buf, sizeof buf, "no runs");
		plot_text(img, x1 + bw + 8, y + 8, s, false, ink, buf);
		if (mt.epoch <= 0 || vmax <= 0)
			continue;
		if (m->n_at) {
			double v = m->at_sum / (double)m->n_at;
			bw = bar_len(v, vmin, vmax, log_x, pw);
			plot_fill_rect(img, x2 + 1, y + 4, bw > 0 ? bw : 1,
				       row - 8, plot_palette(0));
			snprintf(buf, sizeof buf, "%.4g (%zu)", v, m->n_at);
		} else {
			bw = 0;
			snprintf(buf, sizeof buf, "- (0)");
		}
		plot_text(img, x2 + bw + 8, y + 8, s, false, ink, buf);
	}
	base_v = mt.m[mt.base].n_at ? mt.m[mt.base].at_sum /
					      (double)mt.m[mt.base].n_at
				    : NAN;
	if (mt.epoch > 0 && vmax > 0 && isfinite(base_v) && base_v > 0) {
		int bx = x2 + 1 + bar_len(base_v, vmin, vmax, log_x, pw);
		plot_line(img, bx, top, bx, top + (int)mt.n * row, 2, 6,
			  0xd62728);
	}
	snprintf(path, sizeof path, "%s/mitigations.png", dir);
	st = plot_write_png(img, path, err);
	plot_image_free(img);
	stats_mit_free(&mt);
	return st;
}
