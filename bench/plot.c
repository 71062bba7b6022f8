/* plot: an RGB canvas with rectangles, lines and text in the built-in 5x8
 * bitmap font (its glyphs are font.c's), PNG output through stb_image_write
 * (the only user of that library), and two charts: the annotated heat map
 * and the grid of line panels. Which data goes into a chart is table's
 * business. */
#include "plot.h"

#include <stb_image.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stb_image_write.h>

#include "files.h"
#include "font.h"

/* ---- canvas ---- */

enum vb_status plot_image_create(int w, int h, struct plot_image **out,
				 struct vb_error *err)
{
	struct plot_image *img;
	*out = NULL;
	if (w < 1 || h < 1 || w > 8192 || h > 8192)
		return vb_fail(err, VB_ERR_USAGE, "plot: image size %dx%d, "
			       "expected 1..8192 each", w, h);
	img = malloc(sizeof *img);
	if (!img)
		return vb_fail(err, VB_ERR_NOMEM, "plot: no memory");
	img->w = w;
	img->h = h;
	img->rgb = malloc((size_t)w * (size_t)h * 3);
	if (!img->rgb) {
		free(img);
		return vb_fail(err, VB_ERR_NOMEM, "plot: no memory");
	}
	memset(img->rgb, 255, (size_t)w * (size_t)h * 3);
	*out = img;
	return VB_OK;
}

void plot_image_free(struct plot_image *img)
{
	if (!img)
		return;
	free(img->rgb);
	free(img);
}

static void put(struct plot_image *img, int x, int y, uint32_t c)
{
	uint8_t *p;
	if (x < 0 || y < 0 || x >= img->w || y >= img->h)
		return;
	p = img->rgb + ((size_t)y * (size_t)img->w + (size_t)x) * 3;
	p[0] = (uint8_t)(c >> 16);
	p[1] = (uint8_t)(c >> 8);
	p[2] = (uint8_t)c;
}

void plot_fill_rect(struct plot_image *img, int x, int y, int w, int h,
		    uint32_t color)
{
	for (int j = y; j < y + h; j++)
		for (int i = x; i < x + w; i++)
			put(img, i, j, color);
}

void plot_line(struct plot_image *img, int x0, int y0, int x1, int y1,
	       int width, int dash, uint32_t color)
{
	int dx = abs(x1 - x0), dy = -abs(y1 - y0);
	int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, e = dx + dy;
	int off = (width - 1) / 2;
	long n = 0;
	for (;;) {
		if (dash <= 0 || (n / dash) % 2 == 0)
			plot_fill_rect(img, x0 - off, y0 - off, width, width,
				       color);
		n++;
		if (x0 == x1 && y0 == y1)
			break;
		int e2 = 2 * e;
		if (e2 >= dy) {
			e += dy;
			x0 += sx;
		}
		if (e2 <= dx) {
			e += dx;
			y0 += sy;
		}
	}
}

int plot_text_width(const char *text, int scale)
{
	size_t n = strlen(text);
	return n ? (int)n * (FONT_GLYPH_W + 1) * scale - scale : 0;
}

int plot_text_height(int scale)
{
	return FONT_GLYPH_H * scale;
}

void plot_text(struct plot_image *img, int x, int y, int scale,
	       bool vertical, uint32_t color, const char *text)
{
	int pen = 0;
	for (const char *t = text; *t; t++) {
		unsigned char ch = (unsigned char)*t;
		const char *rows =
			font_glyph_rows(ch >= 32 && ch < 127 ? (char)ch : '?');
		for (int r = 0; r < FONT_GLYPH_H; r++)
			for (int c = 0; c < FONT_GLYPH_W; c++) {
				if (rows[r * FONT_GLYPH_W + c] != '#')
					continue;
				if (!vertical)
					plot_fill_rect(img,
						       x + (pen + c) * scale,
						       y + r * scale, scale,
						       scale, color);
				else /* rotated: x grows upwards */
					plot_fill_rect(img, x + r * scale,
						       y - (pen + c + 1) *
								   scale,
						       scale, scale, color);
			}
		pen += FONT_GLYPH_W + 1;
	}
}

static void text_center(struct plot_image *img, int cx, int y, int scale,
			uint32_t color, const char *text)
{
	plot_text(img, cx - plot_text_width(text, scale) / 2, y, scale, false,
		  color, text);
}

/* stb's writer callback: appends the PNG bytes to a memory stream. */
static void png_to_stream(void *ctx, void *data, int size)
{
	fwrite(data, 1, (size_t)size, ctx);
}

static enum vb_status png_writer(FILE *f, void *ctx, struct vb_error *err)
{
	const struct plot_image *img = ctx;
	if (!stbi_write_png_to_func(png_to_stream, f, img->w, img->h, 3,
				    img->rgb, img->w * 3))
		return vb_fail(err, VB_ERR_IO, "plot: cannot encode a %dx%d PNG",
			       img->w, img->h);
	return VB_OK;
}

enum vb_status plot_write_png(const struct plot_image *img, const char *path,
			      struct vb_error *err)
{
	return files_write_with(path, png_writer, (void *)img, false, err);
}

/* ---- colours ---- */

static uint32_t mix(uint32_t a, uint32_t b, double t)
{
	uint32_t out = 0;
	for (int s = 16; s >= 0; s -= 8) {
		double ca = (double)((a >> s) & 255), cb = (double)((b >> s) & 255);
		out |= (uint32_t)lround(ca + t * (cb - ca)) << s;
	}
	return out;
}

uint32_t plot_share_color(double share)
{
	/* white -> yellow -> orange -> dark red, as a sequential scale */
	static const uint32_t stops[] = {0xf7fbf2, 0xfee391, 0xfe9929,
					 0xd7301f, 0x7f0000};
	double t;
	size_t i;
	if (isnan(share))
		return 0xd9d9d9;
	t = share < 0 ? 0 : share > 1 ? 1 : share;
	t *= 4;
	i = (size_t)t;
	if (i >= 4)
		return stops[4];
	return mix(stops[i], stops[i + 1], t - (double)i);
}

uint32_t plot_palette(size_t i)
{
	/* 16 colours apart from MARK's red: a counterfactual draws 12
	 * variants, a mitigation figure up to 24 (those wrap) */
	static const uint32_t p[] = {0x1f77b4, 0x2ca02c, 0x9467bd, 0xff7f0e,
				     0x17becf, 0x8c564b, 0xe377c2, 0x7f7f7f,
				     0xbcbd22, 0x393b79, 0x000000, 0x637939,
				     0xe7ba52, 0x7b4173, 0x843c39, 0x6baed6};
	return p[i % (sizeof p / sizeof p[0])];
}

#define INK 0x202020
#define GRID 0xe6e6e6
#define MARK 0xd62728

/* The width of a heat-map cell: its x tick and every annotation line fit
 * (at least 110 pixels). */
static int heat_cell_width(const struct plot_heatmap *h, int s)
{
	int cw = 110;
	for (size_t i = 0; i < h->nx; i++) {
		int t = plot_text_width(h->x_ticks[i], s) + 16;
		cw = t > cw ? t : cw;
	}
	for (size_t i = 0; h->annot && i < h->nx * h->ny; i++) {
		char line[128];
		const char *a = h->annot[i];
		while (a && *a) {
			size_t n = strcspn(a, "\n");
			int t;
			snprintf(line, sizeof line, "%.*s", (int)n, a);
			t = plot_text_width(line, s) + 16;
			cw = t > cw ? t : cw;
			a += n + (a[n] == '\n');
		}
	}
	return cw;
}

/* Cell (r, c) at (x0, y0), cw x ch: its colour and one or two lines of
 * annotation. */
static void heat_cell(struct plot_image *img, const struct plot_heatmap *h,
		      size_t r, size_t c, int x0, int y0, int cw, int ch,
		      int s)
{
	const int th = plot_text_height(s);
	double v = h->value[r * h->nx + c];
	uint32_t ink = !isnan(v) && v > 0.55 ? 0xffffff : INK;
	const char *a;
	char l1[128] = "", l2[128] = "";
	size_t n;
	plot_fill_rect(img, x0, y0, cw, ch, plot_share_color(v));
	plot_fill_rect(img, x0, y0, cw, 1, 0xffffff);
	plot_fill_rect(img, x0, y0, 1, ch, 0xffffff);
	if (!h->annot || !h->annot[r * h->nx + c])
		return;
	a = h->annot[r * h->nx + c];
	n = strcspn(a, "\n");
	snprintf(l1, sizeof l1, "%.*s", (int)n, a);
	if (a[n] == '\n')
		snprintf(l2, sizeof l2, "%s", a + n + 1);
	if (l2[0]) {
		text_center(img, x0 + cw / 2, y0 + ch / 2 - th - 3, s, ink, l1);
		text_center(img, x0 + cw / 2, y0 + ch / 2 + 3, s, ink, l2);
	} else {
		text_center(img, x0 + cw / 2, y0 + ch / 2 - th / 2, s, ink, l1);
	}
}

/* The colour bar at (bar_x, top), at least 200 pixels high: 0 at the
 * bottom, 1 at the top, ticks every quarter. */
static void heat_bar(struct plot_image *img, const struct plot_heatmap *h,
		     int bar_x, int top, int gh, int s)
{
	const int th = plot_text_height(s);
	int bh = gh > 200 ? gh : 200, by = top;
	for (int j = 0; j < bh; j++)
		plot_fill_rect(img, bar_x, by + j, 24, 1,
			       plot_share_color(1.0 - (double)j / (bh - 1)));
	plot_line(img, bar_x, by, bar_x + 24, by, 1, 0, INK);
	plot_line(img, bar_x, by + bh, bar_x + 24, by + bh, 1, 0, INK);
	plot_line(img, bar_x, by, bar_x, by + bh, 1, 0, INK);
	plot_line(img, bar_x + 24, by, bar_x + 24, by + bh, 1, 0, INK);
	for (int k = 0; k <= 4; k++) {
		char lab[16];
		int y = by + bh - k * bh / 4;
		snprintf(lab, sizeof lab, "%g", k / 4.0);
		plot_line(img, bar_x + 24, y, bar_x + 29, y, 1, 0, INK);
		plot_text(img, bar_x + 34, y - th / 2, s, false, INK, lab);
	}
	if (h->bar_label)
		plot_text(img, bar_x, by - th - 14, s, false, INK,
			  h->bar_label);
}

/* Draws the vertical y-axis label yl (shortened in place) at x = 20,
 * centred on the avail pixels below top: at scale s, at scale 1 when that
 * is too long, then shortened with "..". */
static void y_label_fit(struct plot_image *img, char *yl, int s, int top,
			int avail)
{
	int ys = s;
	if (plot_text_width(yl, ys) > avail)
		ys = 1;
	while (plot_text_width(yl, ys) > avail && strlen(yl) > 3) {
		size_t n = strlen(yl);
		memcpy(yl + n - 3, "..", 3);
	}
	plot_text(img, 20 + (s - ys) * plot_text_height(1) / 2,
		  top + avail / 2 + plot_text_width(yl, ys) / 2, ys, true, INK,
		  yl);
}

/* The grid frame, x ticks and both axis labels. */
static void heat_axes(struct plot_image *img, const struct plot_heatmap *h,
		      int left, int top, int cw, int gw, int gh, int s)
{
	const int th = plot_text_height(s), gap = 10;
	plot_line(img, left, top, left + gw, top, 1, 0, INK);
	plot_line(img, left, top + gh, left + gw, top + gh, 1, 0, INK);
	plot_line(img, left, top, left, top + gh, 1, 0, INK);
	plot_line(img, left + gw, top, left + gw, top + gh, 1, 0, INK);
	for (size_t c = 0; c < h->nx; c++) {
		int cx = left + (int)c * cw + cw / 2;
		plot_line(img, cx, top + gh, cx, top + gh + 5, 1, 0, INK);
		text_center(img, cx, top + gh + gap, s, INK, h->x_ticks[c]);
	}
	if (h->x_label)
		text_center(img, left + gw / 2, top + gh + gap + th + gap, s,
			    INK, h->x_label);
	if (h->y_label) {
		/* within the grid's height, so it never runs into the title */
		char yl[160];
		snprintf(yl, sizeof yl, "%s", h->y_label);
		y_label_fit(img, yl, s, top, gh);
	}
}

/* ---- heat map ---- */

enum vb_status plot_heatmap_png(const struct plot_heatmap *h,
				const char *path, struct vb_error *err)
{
	const int s = 2, th = plot_text_height(s), gap = 10, ch = 74;
	int cw = heat_cell_width(h, s), ytw = 0, left, top, gw, gh, w, hh;
	int bar_x, tw;
	struct plot_image *img;
	enum vb_status st;

	for (size_t i = 0; i < h->ny; i++) {
		int t = plot_text_width(h->y_ticks[i], s);
		ytw = t > ytw ? t : ytw;
	}
	left = 20 + th + gap + ytw + gap;
	top = 20 + th + 8 + (h->subtitle ? th + 8 : 0) + 36;
	gw = cw * (int)h->nx;
	gh = ch * (int)h->ny;
	bar_x = left + gw + 30;
	w = bar_x + 24 + 10 + plot_text_width("0.75", s) + 20;
	tw = plot_text_width(h->bar_label ? h->bar_label : "", s);
	if (bar_x + tw + 20 > w)
		w = bar_x + tw + 20;
	if (plot_text_width(h->title, s) + 40 > w)
		w = plot_text_width(h->title, s) + 40;
	if (h->subtitle && plot_text_width(h->subtitle, s) + 40 > w)
		w = plot_text_width(h->subtitle, s) + 40;
	hh = top + gh + gap + th + gap + th + 20;
	if (top + 200 + 40 > hh)
		hh = top + 200 + 40;
	st = plot_image_create(w, hh, &img, err);
	if (st)
		return st;
	plot_text(img, 20, 20, s, false, INK, h->title);
	if (h->subtitle)
		plot_text(img, 20, 20 + th + 8, s, false, 0x555555,
			  h->subtitle);
	for (size_t r = 0; r < h->ny; r++) {
		/* row 0 at the bottom */
		int y0 = top + gh - (int)(r + 1) * ch;
		plot_text(img, left - gap - plot_text_width(h->y_ticks[r], s),
			  y0 + ch / 2 - th / 2, s, false, INK, h->y_ticks[r]);
		for (size_t c = 0; c < h->nx; c++)
			heat_cell(img, h, r, c, left + (int)c * cw, y0, cw, ch,
				  s);
	}
	heat_axes(img, h, left, top, cw, gw, gh, s);
	heat_bar(img, h, bar_x, top, gh, s);
	st = plot_write_png(img, path, err);
	plot_image_free(img);
	return st;
}

/* ---- line panels ---- */

/* A "nice" tick step (1, 2 or 5 times a power of ten) for range/n. */
static double nice_step(double range, int n)
{
	double raw = range / n, p = pow(10, floor(log10(raw))), f = raw / p;
	return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static void fmt_tick(double v, bool logy, char *buf, size_t cap)
{
	if (logy) {
		int e = (int)lround(v);
		if (e >= 0 && e <= 4)
			snprintf(buf, cap, "%.0f", pow(10, e));
		else
			snprintf(buf, cap, "1e%d", e);
	} else if (fabs(v) >= 1e5 || (fabs(v) < 1e-3 && v != 0)) {
		snprintf(buf, cap, "%.0e", v);
	} else {
		snprintf(buf, cap, "%g", v);
	}
}

struct frame {
	int x, y, w, h;       /* plot area in pixels */
	double x0, x1, y0, y1; /* data range (y transformed: log10 when
				  logy, plot_symlog when symlog) */
	bool logy, symlog;
	bool xfit; /* x0 is the smallest x, not 0 */
	bool xlog; /* x given as log10: whole decades, ticks 10^k */
};

double plot_symlog(double y)
{
	return y < 0 ? -log10(1 - y) : log10(1 + y);
}

/* y in the frame's transformed space */
static double ty(const struct frame *f, double y)
{
	return f->logy ? log10(y) : f->symlog ? plot_symlog(y) : y;
}

static int px(const struct frame *f, double x)
{
	return f->x + (int)lround((x - f->x0) / (f->x1 - f->x0) * f->w);
}

static int py(const struct frame *f, double y)
{
	y = ty(f, y);
	return f->y + f->h - (int)lround((y - f->y0) / (f->y1 - f->y0) * f->h);
}

static bool y_ok(const struct frame *f, double y)
{
	return isfinite(y) && (!f->logy || y > 0);
}

static void draw_cross(struct plot_image *img, int x, int y, uint32_t c)
{
	plot_line(img, x - 5, y - 5, x + 5, y + 5, 2, 0, c);
	plot_line(img, x - 5, y + 5, x + 5, y - 5, 2, 0, c);
}

/* The panel's data range into f (y in log10 when f->logy), padded. */
static void panel_range(struct frame *f, const struct plot_panel *p)
{
	bool any = false;
	if (f->xfit) {
		f->x0 = INFINITY;
		f->x1 = -INFINITY;
	}
	for (size_t i = 0; i < p->n_series; i++) {
		const struct plot_series *se = &p->series[i];
		for (size_t k = 0; k < se->n; k++) {
			if (se->x[k] > f->x1)
				f->x1 = se->x[k];
			if (f->xfit && se->x[k] < f->x0)
				f->x0 = se->x[k];
			if (!y_ok(f, se->y[k]))
				continue;
			double v = ty(f, se->y[k]);
			f->y0 = fmin(f->y0, v);
			f->y1 = fmax(f->y1, v);
			any = true;
		}
		if (isfinite(se->mark_x) && se->mark_x > f->x1)
			f->x1 = se->mark_x;
	}
	if (!any) {
		f->y0 = 0;
		f->y1 = 1;
	}
	if (f->logy) {
		f->y0 = floor(f->y0);
		f->y1 = ceil(f->y1);
		if (f->y1 <= f->y0)
			f->y1 = f->y0 + 1;
	} else if (f->symlog) {
		/* whole decades, zero always in view */
		f->y0 = fmin(0, floor(f->y0));
		f->y1 = fmax(0, ceil(f->y1));
		if (f->y1 <= f->y0)
			f->y1 = f->y0 + 1;
	} else {
		double pad = (f->y1 - f->y0) * 0.08;
		if (pad <= 0)
			pad = fabs(f->y1) * 0.1 + 1e-12;
		f->y0 -= pad;
		f->y1 += pad;
	}
	if (f->xlog) { /* whole decades around the data */
		f->x0 = isfinite(f->x0) ? floor(f->x0) : 0;
		f->x1 = fmax(isfinite(f->x1) ? ceil(f->x1) : 0, f->x0 + 1);
		return;
	}
	if (f->xfit && !(f->x1 > f->x0)) { /* no data, or one x */
		f->x0 = isfinite(f->x0) ? f->x0 - 1 : 0;
		f->x1 = f->x0 + 2;
	}
	f->x1 = f->x0 + (f->x1 - f->x0) * 1.04;
	if (f->x1 <= 0)
		f->x1 = 1;
}

/* One symmetric-log y tick at v (0 or +-10^k) with its grid line. */
static void symlog_tick(struct plot_image *img, const struct frame *f,
			double v, int s)
{
	char lab[32];
	int yy = py(f, v);
	plot_line(img, f->x, yy, f->x + f->w, yy, 1, 0, GRID);
	if (v == 0)
		snprintf(lab, sizeof lab, "0");
	else
		fmt_tick(log10(fabs(v)), true, lab, sizeof lab);
	if (v < 0) {
		memmove(lab + 1, lab, sizeof lab - 2);
		lab[sizeof lab - 1] = '\0';
		lab[0] = '-';
	}
	plot_text(img, f->x - 8 - plot_text_width(lab, s),
		  yy - plot_text_height(s) / 2, s, false, INK, lab);
}

/* A log10 x axis: grid, tick and label at 10^k, short ticks at m 10^k. */
static void x_log_ticks(struct plot_image *img, const struct frame *f, int s)
{
	char lab[32];
	for (int e = (int)f->x0; e <= (int)f->x1; e++) {
		int xx = px(f, e), yb = f->y + f->h;
		plot_line(img, xx, f->y, xx, yb, 1, 0, GRID);
		fmt_tick(e, true, lab, sizeof lab); /* as the log y axis */
		text_center(img, xx, yb + 8, s, INK, lab);
		for (int m = 1; m <= 9 && (m == 1 || e < (int)f->x1); m++)
			plot_line(img, px(f, e + log10(m)), yb,
				  px(f, e + log10(m)), yb + (m > 1 ? 3 : 6), 1,
				  0, INK);
	}
}

/* y ticks with grid lines, x ticks. */
static void panel_ticks(struct plot_image *img, const struct frame *f, int s)
{
	const int th = plot_text_height(s);
	int x = f->x, y = f->y, w = f->w, h = f->h;
	char lab[32];
	if (f->logy) {
		int nd = (int)(f->y1 - f->y0), every = nd / 5 + 1;
		for (int e = (int)f->y0; e <= (int)f->y1; e += every) {
			int yy = f->y + f->h -
				 (int)lround((e - f->y0) / (f->y1 - f->y0) *
					     f->h);
			plot_line(img, x, yy, x + w, yy, 1, 0, GRID);
			fmt_tick(e, true, lab, sizeof lab);
			plot_text(img, x - 8 - plot_text_width(lab, s),
				  yy - th / 2, s, false, INK, lab);
		}
	} else if (f->symlog) {
		/* 0 and +-10^k, k >= 1 (plot_symlog(10^k) ~ k), thinned to
		 * about six lines */
		int nd = (int)(f->y1 - f->y0), every = nd / 6 + 1;
		symlog_tick(img, f, 0, s);
		for (int k = 1; k <= nd + 1; k++) {
			if (k % every)
				continue;
			if (plot_symlog(pow(10, k)) <= f->y1 + 1e-9)
				symlog_tick(img, f, pow(10, k), s);
			if (plot_symlog(-pow(10, k)) >= f->y0 - 1e-9)
				symlog_tick(img, f, -pow(10, k), s);
		}
	} else {
		double step = nice_step(f->y1 - f->y0, 4);
		for (double v = ceil(f->y0 / step) * step; v <= f->y1;
		     v += step) {
			int yy = py(f, v);
			plot_line(img, x, yy, x + w, yy, 1, 0, GRID);
			fmt_tick(fabs(v) < step * 1e-9 ? 0 : v, false, lab,
				 sizeof lab);
			plot_text(img, x - 8 - plot_text_width(lab, s),
				  yy - th / 2, s, false, INK, lab);
		}
	}
	if (f->xlog) {
		x_log_ticks(img, f, s);
		return;
	}
	double step = nice_step(f->x1 - f->x0, 4);
	if (step < 1)
		step = 1;
	for (double v = ceil(f->x0 / step) * step; v <= f->x1; v += step) {
		int xx = px(f, v);
		plot_line(img, xx, y + h, xx, y + h + 4, 1, 0, INK);
		snprintf(lab, sizeof lab, "%g", v);
		text_center(img, xx, y + h + 8, s, INK, lab);
	}
}

/* The series as lines with points, then the NaN marks on top. */
static void panel_series(struct plot_image *img, const struct frame *f,
			 const struct plot_panel *p)
{
	for (size_t i = 0; i < p->n_series; i++) {
		const struct plot_series *se = &p->series[i];
		bool have = false;
		int lx = 0, ly = 0;
		for (size_t k = 0; k < se->n; k++) {
			int xx, yy;
			if (!y_ok(f, se->y[k])) {
				have = false;
				continue;
			}
			xx = px(f, se->x[k]);
			yy = py(f, se->y[k]);
			if (have)
				plot_line(img, lx, ly, xx, yy, 2, 0,
					  se->color);
			plot_fill_rect(img, xx - 3, yy - 3, 7, 7, se->color);
			lx = xx;
			ly = yy;
			have = true;
		}
	}
	for (size_t i = 0; i < p->n_series; i++) {
		const struct plot_series *se = &p->series[i];
		int xx;
		if (!isfinite(se->mark_x))
			continue;
		xx = px(f, se->mark_x);
		plot_line(img, xx, f->y, xx, f->y + f->h, 2, 6, MARK);
		draw_cross(img, xx, f->y + 6, MARK);
		/* which run: its colour just below the cross */
		plot_fill_rect(img, xx - 3, f->y + 14, 7, 7, se->color);
	}
}

/* title centred over a panel w pixels wide: scale 2, else 1, else cut
 * with ".." (never wider than the panel, so neighbours never overlap) */
static void panel_title(struct plot_image *img, int cx, int y, int w,
			const char *title)
{
	char buf[256];
	int s = 2;
	snprintf(buf, sizeof buf, "%s", title);
	if (plot_text_width(buf, 2) > w)
		s = 1;
	while (plot_text_width(buf, s) > w && strlen(buf) > 3) {
		size_t n = strlen(buf);
		memcpy(buf + n - 3, "..", 3);
	}
	text_center(img, cx, y + plot_text_height(2) - plot_text_height(s), s,
		    INK, buf);
}

static void draw_panel(struct plot_image *img, const struct plot_panel *p,
		       int x, int y, int w, int h, const struct plot_lines *pl)
{
	const int s = 2, th = plot_text_height(s);
	struct frame f = {x, y, w, h, 0, 1, INFINITY, -INFINITY, pl->log_y,
			  pl->symlog_y && !pl->log_y, pl->x_fit || pl->x_log10,
			  pl->x_log10};
	panel_range(&f, p);
	plot_fill_rect(img, x, y, w, h, 0xffffff);
	panel_ticks(img, &f, s);
	/* zero marked on signed axes */
	if (!f.logy && f.y0 < 0 && f.y1 > 0) {
		int yz = py(&f, 0);
		plot_line(img, x, yz, x + w, yz, 1, 0, 0x777777);
	}
	panel_series(img, &f, p);
	{
		bool any = false;
		for (size_t i = 0; i < p->n_series && !any; i++)
			for (size_t k = 0; k < p->series[i].n && !any; k++)
				any = y_ok(&f, p->series[i].y[k]);
		if (!any)
			text_center(img, x + w / 2, y + h / 2 - th / 2, s,
				    0x777777, "no finite values");
	}
	plot_line(img, x, y, x + w, y, 1, 0, INK);
	plot_line(img, x, y + h, x + w, y + h, 1, 0, INK);
	plot_line(img, x, y, x, y + h, 1, 0, INK);
	plot_line(img, x + w, y, x + w, y + h, 1, 0, INK);
	if (p->title)
		panel_title(img, x + w / 2, y - th - 8, w, p->title);
}

/* Width of legend entry i (swatch, label, gap). */
static int legend_entry_w(const struct plot_lines *p, size_t i, int s)
{
	return 30 + plot_text_width(p->legend_labels[i], s) + 24;
}

/* Draws (when img) or measures the legend wrapped into lines of at most
 * w pixels from (x, y): every entry, then the NaN mark. Returns the number
 * of lines. */
static int legend_lines(struct plot_image *img, const struct plot_lines *p,
			int x, int y, int w, int s)
{
	const int th = plot_text_height(s), lh = th + 10;
	int lx = x, ly = y, lines = 1;
	const char *nan_lab = p->mark_label ? p->mark_label
					    : "first NaN/Inf step";
	int nan_w = 26 + plot_text_width(nan_lab, s);
	for (size_t i = 0; i < p->legend_n; i++) {
		int ew = legend_entry_w(p, i, s);
		if (lx > x && lx + ew > x + w) {
			lx = x;
			ly += lh;
			lines++;
		}
		if (img) {
			plot_line(img, lx, ly + th / 2, lx + 24, ly + th / 2,
				  2, 0, p->legend_colors[i]);
			plot_fill_rect(img, lx + 9, ly + th / 2 - 3, 7, 7,
				       p->legend_colors[i]);
			plot_text(img, lx + 30, ly, s, false, INK,
				  p->legend_labels[i]);
		}
		lx += ew;
	}
	if (lx > x && lx + nan_w > x + w) {
		lx = x;
		ly += lh;
		lines++;
	}
	if (img) {
		plot_line(img, lx + 12, ly - 2, lx + 12, ly + th + 2, 2, 4,
			  MARK);
		draw_cross(img, lx + 12, ly + 2, MARK);
		plot_text(img, lx + 26, ly, s, false, INK, nan_lab);
	}
	return lines;
}

enum vb_status plot_lines_png(const struct plot_lines *p, const char *path,
			      struct vb_error *err)
{
	const int s = 2, th = plot_text_height(s);
	const int pw = 300, ph = 190, ml = 84, mt = th + 18, mb = th + 22,
		  mr = 24;
	size_t ncols = p->n_cols ? p->n_cols : 1;
	size_t nrows = (p->n_panels + ncols - 1) / ncols;
	int cell_w = ml + pw + mr, cell_h = mt + ph + mb;
	int left = 20 + th + 10, top, n_leg;
	int w = left + (int)ncols * cell_w + 10;
	int hh;
	struct plot_image *img;
	enum vb_status st;

	if (plot_text_width(p->title, s) + 40 > w)
		w = plot_text_width(p->title, s) + 40;
	/* the legend wraps within the image: never cut */
	n_leg = legend_lines(NULL, p, 20, 0, w - 40, s);
	top = 20 + th + 12 + n_leg * (th + 10) + 6;
	hh = top + (int)(nrows ? nrows : 1) * cell_h + th + 30;
	st = plot_image_create(w, hh, &img, err);
	if (st)
		return st;
	plot_text(img, 20, 20, s, false, INK, p->title);
	legend_lines(img, p, 20, 20 + th + 12, w - 40, s);
	for (size_t i = 0; i < p->n_panels; i++) {
		int cx = left + (int)(i % ncols) * cell_w + ml;
		int cy = top + (int)(i / ncols) * cell_h + mt;
		draw_panel(img, &p->panels[i], cx, cy, pw, ph, p);
	}
	if (p->x_label)
		text_center(img, left + (int)ncols * cell_w / 2, hh - th - 14,
			    s, INK, p->x_label);
	if (p->y_label) {
		char yl[160];
		snprintf(yl, sizeof yl, "%s%s", p->y_label,
			 p->log_y      ? " (log scale)"
			 : p->symlog_y ? " (symmetric log scale)"
				       : "");
		/* within the panels' height */
		y_label_fit(img, yl, s, top, (int)(nrows * (size_t)cell_h));
	}
	st = plot_write_png(img, path, err);
	plot_image_free(img);
	return st;
}

enum vb_status plot_tiles_png(const vb_real *images, size_t n, size_t rows,
			      size_t cols, size_t per_row, int scale,
			      const char *title, const char *path,
			      struct vb_error *err)
{
	const int gap = 2, top = title ? plot_text_height(2) + 8 : gap;
	size_t n_rows_tiles = per_row ? (n + per_row - 1) / per_row : 0;
	int tw = (int)cols * scale, th = (int)rows * scale;
	int w = gap + (int)per_row * (tw + gap);
	int h = top + (int)n_rows_tiles * (th + gap);
	struct plot_image *img = NULL;
	enum vb_status st;
	if (n == 0 || per_row == 0 || scale < 1)
		return vb_fail(err, VB_ERR_INTERNAL, "plot: empty tile grid");
	if (title && plot_text_width(title, 2) + 8 > w)
		w = plot_text_width(title, 2) + 8;
	st = plot_image_create(w, h, &img, err);
	if (st)
		return st;
	plot_fill_rect(img, 0, 0, w, h, 0xffffff);
	if (title)
		plot_text(img, 4, 4, 2, false, 0x000000, title);
	for (size_t k = 0; k < n; k++) {
		int x0 = gap + (int)(k % per_row) * (tw + gap);
		int y0 = top + (int)(k / per_row) * (th + gap);
		for (size_t r = 0; r < rows; r++)
			for (size_t c = 0; c < cols; c++) {
				double v = images[k * rows * cols + r * cols + c];
				uint32_t color;
				if (!isfinite(v)) {
					color = 0xff0000;
				} else {
					int gray = (int)(255 * (v < 0   ? 0
								: v > 1 ? 1
									: v) +
							 0.5);
					color = (uint32_t)gray << 16 |
						(uint32_t)gray << 8 |
						(uint32_t)gray;
				}
				plot_fill_rect(img, x0 + (int)c * scale,
					       y0 + (int)r * scale, scale,
					       scale, color);
			}
	}
	st = plot_write_png(img, path, err);
	plot_image_free(img);
	return st;
}

enum vb_status plot_stack_png(const char *const *paths,
			      const char *const *labels, size_t n,
			      const char *title, const char *path,
			      struct vb_error *err)
{
	unsigned char **pix = calloc(n ? n : 1, sizeof *pix);
	int *ws = calloc(n ? n : 1, sizeof *ws), *hs = calloc(n ? n : 1,
							    sizeof *hs);
	int lh = plot_text_height(1) + 4, th = plot_text_height(2) + 8;
	int w = plot_text_width(title, 2) + 8, h = th;
	size_t got = 0;
	struct plot_image *img = NULL;
	enum vb_status st = VB_OK;
	if (!pix || !ws || !hs) {
		st = vb_fail(err, VB_ERR_NOMEM, "plot: stack");
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		int comp;
		pix[i] = stbi_load(paths[i], &ws[i], &hs[i], &comp, 3);
		if (!pix[i])
			continue;
		got++;
		if (ws[i] + 8 > w)
			w = ws[i] + 8;
		if (plot_text_width(labels[i], 1) + 8 > w)
			w = plot_text_width(labels[i], 1) + 8;
		h += lh + hs[i] + 6;
	}
	if (!got)
		goto done;
	st = plot_image_create(w, h, &img, err);
	if (st)
		goto done;
	plot_fill_rect(img, 0, 0, w, h, 0xffffff);
	plot_text(img, 4, 4, 2, false, 0x000000, title);
	int y = th;
	for (size_t i = 0; i < n; i++) {
		if (!pix[i])
			continue;
		plot_text(img, 4, y + 2, 1, false, 0x303030, labels[i]);
		y += lh;
		for (int r = 0; r < hs[i]; r++)
			memcpy(img->rgb + ((size_t)(y + r) * (size_t)w + 4) * 3,
			       pix[i] + (size_t)r * (size_t)ws[i] * 3,
			       (size_t)ws[i] * 3);
		y += hs[i] + 6;
	}
	st = plot_write_png(img, path, err);
done:
	for (size_t i = 0; pix && i < n; i++)
		stbi_image_free(pix[i]);
	free(pix);
	free(ws);
	free(hs);
	plot_image_free(img);
	return st;
}
