/* figures_mit: mitigations.png, the mitigation bars of a sweep folder
 * (figures.h figures_mitigations); plot.c draws it. */
#include "figures.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "plot.h"
#include "stats.h"

/* The mitigation bars: per mitigation its NaN share, then two value
 * panels, the eval loss at the comparison epoch (bar = mean) and the
 * held-out IS-NLL at the last finite epoch minus the learned reference
 * (stats_learned_reference_row; bar = median, dashed: the learned
 * margin). Both are signed: an axis is linear, or symmetric-log
 * (plot_symlog) when the magnitudes span more than a factor 30, always
 * with zero marked; bars run from zero, and every run is a point on its
 * mitigation's bar. */
enum mit_kind { MIT_EVAL, MIT_NLL, MIT_N_PANELS };

struct mit_panel {
	int x;                /* left edge */
	double lo, hi;        /* axis range (transformed), 0 inside */
	bool symlog;
	bool any;             /* some run has a value */
};

struct mit_layout {
	int s, th, row, pw;   /* text scale and height, row height, bar width */
	int lw, top, x1;      /* name width, first row, NaN-share origin */
	long epoch;           /* comparison epoch (0: none) */
	double margin;        /* learned margin in nats (NAN: no reference) */
	struct mit_panel p[MIT_N_PANELS];
};

/* Eval loss of epoch (1-based) from the ';'-separated list. */
static bool eval_of_epoch(const char *list, long epoch, double *v)
{
	long e = 1;
	for (const char *p = list; *p && e <= epoch; e++) {
		const char *q = strchr(p, ';');
		if (e == epoch) {
			char *end;
			if (q == p)
				return false;
			*v = strtod(p, &end);
			return end != p && (end == q || !*end);
		}
		if (!q)
			return false;
		p = q + 1;
	}
	return false;
}

/* Row r's value on panel k (false: none, or not finite). */
static bool mit_value(const struct mit_layout *L, const struct table *t,
		      enum mit_kind k, size_t r, double *v)
{
	if (k == MIT_EVAL)
		return L->epoch > 0 &&
		       eval_of_epoch(table_get(t, r, "eval_losses"), L->epoch,
				     v) &&
		       isfinite(*v);
	double nll;
	if (!isfinite(L->margin) ||
	    !stats_row_nll(t, r, "nll_last", &nll))
		return false;
	*v = nll - stats_learned_reference_row(t, r);
	return isfinite(*v);
}

static double mit_t(const struct mit_panel *P, double v)
{
	return P->symlog ? plot_symlog(v) : v;
}

/* x pixel of value v on panel P */
static int mit_x(const struct mit_layout *L, const struct mit_panel *P,
		 double v)
{
	return P->x + (int)lround((mit_t(P, v) - P->lo) / (P->hi - P->lo) *
				  L->pw);
}

/* Row i's bar on panel k: from zero to the mitigation's mean (eval
 * loss) or median (NLL), one point per run with a value, the figure as
 * text on the right. */
static void mit_panel_row(struct plot_image *img, const struct mit_layout *L,
			  const struct table *t, const struct stats_mit *m,
			  enum mit_kind k, int y)
{
	const struct mit_panel *P = &L->p[k];
	double *v = malloc((t->n_rows + 1) * sizeof *v), c = NAN;
	size_t n = 0;
	char buf[80];
	if (!v)
		return;
	for (size_t r = 0; r < t->n_rows; r++)
		if (!strcmp(table_get(t, r, "mitigation"), m->name) &&
		    mit_value(L, t, k, r, &v[n]))
			n++;
	if (k == MIT_EVAL && m->n_at) {
		c = m->at_sum / (double)m->n_at;
		snprintf(buf, sizeof buf, "mean %.4g (%zu)", c, m->n_at);
	} else if (k == MIT_NLL && n) {
		qsort(v, n, sizeof *v, files_cmp_double);
		c = stats_median_sorted(v, n);
		snprintf(buf, sizeof buf, "median %+.3g (%zu)", c, n);
	} else {
		snprintf(buf, sizeof buf, "- (0 runs)");
	}
	if (isfinite(c)) {
		int x0 = mit_x(L, P, 0), xv = mit_x(L, P, c);
		int a = x0 < xv ? x0 : xv, b = x0 < xv ? xv : x0;
		plot_fill_rect(img, a, y + 6, b - a > 0 ? b - a : 1,
			       L->row - 12, 0xaec7e8);
		for (size_t i = 0; i < n; i++)
			plot_fill_rect(img, mit_x(L, P, v[i]) - 3,
				       y + L->row / 2 - 3, 7, 7,
				       plot_palette(0));
	}
	free(v);
	plot_text(img, P->x + L->pw + 12, y + 8, L->s, false, 0x222222, buf);
}

/* Row i: the mitigation's name, its NaN share bar, its value panels. */
static void mit_row(struct plot_image *img, const struct mit_layout *L,
		    const struct table *t, const struct stats_mit *m,
		    size_t i)
{
	const uint32_t ink = 0x222222;
	int y = L->top + (int)i * L->row, bw, s = L->s;
	double share = m->runs ? (double)m->hits / (double)m->runs : NAN;
	char buf[160];
	snprintf(buf, sizeof buf, "%s", m->name);
	while (plot_text_width(buf, s) > L->lw && strlen(buf) > 3) {
		size_t n = strlen(buf);
		memcpy(buf + n - 3, "..", 3);
	}
	plot_text(img, L->x1 - 16 - plot_text_width(buf, s), y + 8, s, false,
		  ink, buf);
	bw = isfinite(share) ? (int)(share * L->pw + 0.5) : 0;
	plot_fill_rect(img, L->x1 + 1, y + 4, bw > 0 ? bw : 1, L->row - 8,
		       plot_share_color(share));
	if (m->runs) {
		/* the 95 % Wilson interval as a whisker across the bar */
		double lo, hi;
		int xl, xh, yc = y + L->row / 2;
		stats_wilson(m->hits, m->runs, &lo, &hi);
		xl = L->x1 + 1 + (int)(lo * L->pw + 0.5);
		xh = L->x1 + 1 + (int)(hi * L->pw + 0.5);
		const uint32_t wc = 0x4a90d9; /* seen on red and on white */
		plot_fill_rect(img, xl, yc - 1, xh - xl > 0 ? xh - xl : 1, 3,
			       wc);
		plot_fill_rect(img, xl, y + 6, 3, L->row - 12, wc);
		plot_fill_rect(img, xh - 2, y + 6, 3, L->row - 12, wc);
		if (xh - L->x1 > bw)
			bw = xh - L->x1;
		snprintf(buf, sizeof buf, "%.0f%% (%zu/%zu)", 100.0 * share,
			 m->hits, m->runs);
	} else {
		snprintf(buf, sizeof buf, "no runs");
	}
	plot_text(img, L->x1 + bw + 8, y + 8, s, false, ink, buf);
	for (int k = 0; k < MIT_N_PANELS; k++)
		if (L->p[k].any)
			mit_panel_row(img, L, t, m, (enum mit_kind)k, y);
}

/* Panel P's axis below the rows: zero marked, a few ticks. */
static void mit_axis(struct plot_image *img, const struct mit_layout *L,
		     const struct mit_panel *P, int top, int bottom)
{
	const uint32_t ink = 0x222222, grey = 0x888888;
	double ticks[16];
	int nt = 0;
	plot_line(img, P->x, bottom, P->x + L->pw, bottom, 1, 0, grey);
	if (P->symlog) {
		/* every kstep-th decade: at most about 7 labels, so a range
		 * of 30 decades stays readable */
		int k0 = (int)floor(P->lo), k1 = (int)ceil(P->hi);
		int kstep = (k1 - k0 + 5) / 6;
		if (kstep < 1)
			kstep = 1;
		for (int k = k0; k <= k1; k++)
			if (k != 0 && k % kstep == 0 && nt < 16)
				ticks[nt++] = k > 0 ? pow(10, k) : -pow(10, -k);
	} else {
		double step = (P->hi - P->lo) / 4, p10;
		p10 = pow(10, floor(log10(step)));
		step = ceil(step / p10) * p10;
		for (double v = ceil(P->lo / step) * step; v <= P->hi && nt < 16;
		     v += step)
			if (fabs(v) > step * 1e-9)
				ticks[nt++] = v;
	}
	for (int k = 0; k < nt; k++) {
		int xx = mit_x(L, P, ticks[k]);
		char lab[32];
		if (mit_t(P, ticks[k]) < P->lo - 1e-9 ||
		    mit_t(P, ticks[k]) > P->hi + 1e-9)
			continue;
		snprintf(lab, sizeof lab, "%g", ticks[k]);
		plot_line(img, xx, bottom, xx, bottom + 4, 1, 0, grey);
		plot_text(img, xx - plot_text_width(lab, 1) / 2, bottom + 6, 1,
			  false, ink, lab);
	}
	plot_line(img, mit_x(L, P, 0), top - 4, mit_x(L, P, 0), bottom + 4, 2,
		  0, 0x444444);
	plot_text(img, mit_x(L, P, 0) - plot_text_width("0", 1) / 2,
		  bottom + 6, 1, false, ink, "0");
}

/* The subtitle lines (at most 3) into lines[], returning their count. */
static int mit_subtitles(const struct mit_layout *L, const struct table *t,
			 const struct stats_mit_table *mt, double ref,
			 char lines[3][220])
{
	int n = 0;
	if (L->p[MIT_EVAL].any)
		snprintf(lines[n++], 220, "middle: eval loss at epoch %ld, bar "
			 "= mean, points = runs that reached it; dashed: %s",
			 mt->epoch, mt->m[mt->base].name);
	else
		snprintf(lines[n++], 220, "no comparison epoch (a %s run has "
			 "no finite eval loss)", mt->m[mt->base].name);
	if (L->p[MIT_NLL].any) {
		const char *cond[4];
		size_t nc = stats_learned_conditions(t, cond, 4);
		char who[80];
		if (t->reference)
			snprintf(who, sizeof who, "%s's baseline",
				 t->reference_name ? t->reference_name : "?");
		else
			snprintf(who, sizeof who, "%s", mt->m[mt->base].name);
		if (nc)
			snprintf(lines[n++], 220, "right: IS-NLL at the last "
				 "finite epoch minus %s's median best with the "
				 "run's %s%s, bar = median, points = runs;", who,
				 cond[0], nc > 1 ? " etc." : "");
		else
			snprintf(lines[n++], 220, "right: IS-NLL at the last "
				 "finite epoch minus %s's median best (%.1f "
				 "nats), bar = median, points = runs;", who, ref);
		snprintf(lines[n++], 220, "  dashed: the learned margin "
			 "(+%.3g nats; a run right of it did not learn)",
			 L->margin);
	}
	return n;
}

/* The headings and axes above and below the rows. */
static void mit_header(struct plot_image *img, const struct mit_layout *L,
		       const struct stats_mit_table *mt, char lines[3][220],
		       int n_lines)
{
	const uint32_t ink = 0x222222, grey = 0x888888;
	int s = L->s, th = L->th, top = L->top;
	int bottom = top + (int)mt->n * L->row;
	char buf[200];
	plot_text(img, 20, 20, s, false, ink,
		  "Mitigations: share of runs that hit NaN/Inf, eval loss and "
		  "held-out likelihood");
	for (int i = 0; i < n_lines; i++)
		plot_text(img, 20, 20 + (i + 1) * (th + 8), s, false, 0x555555,
			  lines[i]);
	plot_text(img, L->x1, top - th - 8, s, false, ink,
		  "NaN/Inf share, whisker: 95 % Wilson");
	plot_line(img, L->x1, top, L->x1, bottom, 1, 0, grey);
	if (L->p[MIT_EVAL].any) {
		snprintf(buf, sizeof buf, "eval loss, epoch %ld%s", mt->epoch,
			 L->p[MIT_EVAL].symlog ? " (symlog)" : "");
		plot_text(img, L->p[MIT_EVAL].x, top - th - 8, s, false, ink,
			  buf);
		mit_axis(img, L, &L->p[MIT_EVAL], top, bottom);
	}
	if (L->p[MIT_NLL].any) {
		snprintf(buf, sizeof buf, "NLL last - reference%s",
			 L->p[MIT_NLL].symlog ? " (symlog)" : "");
		plot_text(img, L->p[MIT_NLL].x, top - th - 8, s, false, ink,
			  buf);
		mit_axis(img, L, &L->p[MIT_NLL], top, bottom);
	}
}

/* Panel k's axis: the range of every run's value, not only the means
 * (P->any when there is one), symmetric log when it spans decades. */
static void mit_range(struct mit_layout *L, const struct table *t,
		      enum mit_kind k)
{
	struct mit_panel *P = &L->p[k];
	double vmin = INFINITY, vmax = -INFINITY, amin = INFINITY, amax = 0;
	if (k == MIT_NLL && isfinite(L->margin)) {
		vmax = L->margin; /* the margin line stays inside */
		vmin = 0;
	}
	for (size_t r = 0; r < t->n_rows; r++) {
		double v;
		if (!*table_get(t, r, "mitigation") ||
		    !mit_value(L, t, k, r, &v))
			continue;
		P->any = true;
		vmin = fmin(vmin, v);
		vmax = fmax(vmax, v);
		if (v != 0) {
			amin = fmin(amin, fabs(v));
			amax = fmax(amax, fabs(v));
		}
	}
	P->symlog = P->any && amax > 0 && amax / fmax(amin, 1) > 30;
	if (P->any) {
		P->lo = fmin(0, mit_t(P, vmin));
		P->hi = fmax(0, mit_t(P, vmax));
		if (P->symlog) {
			P->lo = floor(P->lo);
			P->hi = ceil(P->hi);
		} else {
			double pad = 0.05 * (P->hi - P->lo);
			P->lo -= P->lo < 0 ? pad : 0;
			P->hi += P->hi > 0 ? pad : 0;
		}
		if (!(P->hi > P->lo))
			P->hi = P->lo + 1;
	}
}

enum vb_status figures_mitigations(const struct table *t, const char *dir,
				   struct vb_error *err)
{
	struct mit_layout L = {.s = 2, .pw = 360};
	struct stats_mit_table mt;
	struct plot_image *img = NULL;
	char path[1200], lines[3][220];
	int w, h, x, n_lines;
	double base_v, ref;
	enum vb_status st = stats_mit_collect(t, &mt, err);
	if (st || !mt.n) {
		stats_mit_free(&mt);
		return st;
	}
	L.th = plot_text_height(L.s);
	L.row = L.th + 16;
	L.epoch = mt.epoch;
	ref = stats_learned_reference(t);
	L.margin = isfinite(ref) ? stats_learned_margin(ref) : NAN;
	for (size_t i = 0; i < mt.n; i++) {
		int tw = plot_text_width(mt.m[i].name, L.s);
		L.lw = tw > L.lw ? tw : L.lw;
	}
	mit_range(&L, t, MIT_EVAL);
	mit_range(&L, t, MIT_NLL);
	n_lines = mit_subtitles(&L, t, &mt, ref, lines);
	L.lw = L.lw > 320 ? 320 : L.lw;
	L.top = 20 + (n_lines + 1) * (L.th + 8) + L.th + 12;
	L.x1 = 20 + L.lw + 16;
	x = L.x1 + L.pw + 40 + plot_text_width("100% (99/99)", L.s);
	L.p[MIT_EVAL].x = x;
	if (L.p[MIT_EVAL].any)
		x += L.pw + 24 + plot_text_width("mean -1.234e+05 (99)", L.s);
	L.p[MIT_NLL].x = x;
	if (L.p[MIT_NLL].any)
		x += L.pw + 24 + plot_text_width("median +1.23e+05 (99)", L.s);
	w = x;
	for (int i = 0; i < n_lines; i++)
		if (plot_text_width(lines[i], L.s) + 40 > w)
			w = plot_text_width(lines[i], L.s) + 40;
	h = L.top + (int)mt.n * L.row + 40;
	st = plot_image_create(w, h, &img, err);
	if (st) {
		stats_mit_free(&mt);
		return st;
	}
	mit_header(img, &L, &mt, lines, n_lines);
	for (size_t i = 0; i < mt.n; i++)
		mit_row(img, &L, t, &mt.m[i], i);
	base_v = mt.m[mt.base].n_at ? mt.m[mt.base].at_sum /
					      (double)mt.m[mt.base].n_at
				    : NAN;
	if (L.p[MIT_EVAL].any && isfinite(base_v)) {
		int bx = mit_x(&L, &L.p[MIT_EVAL], base_v);
		plot_line(img, bx, L.top, bx, L.top + (int)mt.n * L.row, 2, 6,
			  0xd62728);
	}
	if (L.p[MIT_NLL].any) {
		int bx = mit_x(&L, &L.p[MIT_NLL], L.margin);
		plot_line(img, bx, L.top, bx, L.top + (int)mt.n * L.row, 2, 6,
			  0xd62728);
	}
	snprintf(path, sizeof path, "%s/mitigations.png", dir);
	st = plot_write_png(img, path, err);
	plot_image_free(img);
	stats_mit_free(&mt);
	return st;
}
