/* plot: RGB images drawn in memory (rectangles, lines, text in a built-in
 * 5x7 bitmap font) and written as PNG through stb_image_write; two chart
 * kinds on top: a heat map with annotated cells and a colour bar, and a
 * grid of line-chart panels (linear or log y) with marked x positions.
 * What to plot is decided by table. */
#ifndef VB_BENCH_PLOT_H
#define VB_BENCH_PLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vb.h"

struct plot_image {
	int w, h;
	uint8_t *rgb; /* (h, w, 3), owned */
};

/* A w x h image filled with white. VB_ERR_NOMEM, VB_ERR_USAGE for sizes
 * outside 1..8192. */
enum vb_status plot_image_create(int w, int h, struct plot_image **out,
				 struct vb_error *err);
void plot_image_free(struct plot_image *img);

/* Colours are 0xRRGGBB. Drawing clips to the image. */
void plot_fill_rect(struct plot_image *img, int x, int y, int w, int h,
		    uint32_t color);
/* A line of the given width; dash > 0 draws dash-pixel dashes. */
void plot_line(struct plot_image *img, int x0, int y0, int x1, int y1,
	       int width, int dash, uint32_t color);
/* Text with its top-left corner at (x, y), glyphs scaled by scale (1: 5x7
 * in a 6x9 cell). vertical draws it rotated 90 degrees counter-clockwise,
 * reading upwards, with (x, y) its bottom-left. Characters outside
 * printable ASCII are drawn as '?'. */
void plot_text(struct plot_image *img, int x, int y, int scale,
	       bool vertical, uint32_t color, const char *text);
int plot_text_width(const char *text, int scale);
int plot_text_height(int scale);

/* Writes img as PNG to path atomically (path.tmp, rename). VB_ERR_IO. */
enum vb_status plot_write_png(const struct plot_image *img, const char *path,
			      struct vb_error *err);

/* A titled grid of grayscale images (reconstructions, samples): images
 * (n, rows * cols) with values in [0, 1] (clamped; a non-finite pixel is
 * drawn red), per_row tiles a row, each pixel a scale x scale block. */
enum vb_status plot_tiles_png(const vb_real *images, size_t n, size_t rows,
			      size_t cols, size_t per_row, int scale,
			      const char *title, const char *path,
			      struct vb_error *err);

/* Stacks existing PNG files (each run's reconstructions.png, say) into
 * one image, one per row under its label; missing or unreadable files are
 * skipped. Writes nothing (and returns VB_OK) when none could be read. */
enum vb_status plot_stack_png(const char *const *paths,
			      const char *const *labels, size_t n,
			      const char *title, const char *path,
			      struct vb_error *err);

/* The colour of a share in [0, 1] on a white-yellow-red scale; NaN gives
 * light grey (no data). */
uint32_t plot_share_color(double share);

/* A heat map of ny rows by nx columns: value[r * nx + c] in [0, 1] or NaN
 * (no data), annot[r * nx + c] up to two lines separated by '\n' (may be
 * NULL). Row 0 is drawn at the bottom. */
struct plot_heatmap {
	const char *title, *subtitle, *x_label, *y_label, *bar_label;
	size_t nx, ny;
	const char *const *x_ticks; /* (nx) */
	const char *const *y_ticks; /* (ny) */
	const double *value;        /* (ny * nx) */
	const char *const *annot;   /* (ny * nx) or NULL */
};

enum vb_status plot_heatmap_png(const struct plot_heatmap *h,
				const char *path, struct vb_error *err);

/* One line: n points (x[i], y[i]); non-finite y values break the line.
 * mark_x (NaN = none) draws a red dashed vertical line there with a cross
 * at its top: where the run hit NaN. */
struct plot_series {
	size_t n;
	const double *x, *y;
	uint32_t color;
	double mark_x;
};

struct plot_panel {
	const char *title;
	size_t n_series;
	const struct plot_series *series;
};

/* A grid of panels (n_cols per row), each with its own axes and ticks;
 * log_y draws log10 y (values <= 0 are skipped: only for positive data);
 * symlog_y draws plot_symlog(y) with ticks at 0 and +-10^k, for signed
 * data spanning decades; a linear or symmetric-log axis that spans zero
 * has zero marked by a darker line. Panel titles shrink or are cut to
 * their panel's width. The legend shows legend_n colour swatches with
 * labels, plus the NaN mark, wrapped into as many lines as it needs. */
struct plot_lines {
	const char *title, *x_label, *y_label;
	bool log_y, symlog_y;
	bool x_fit; /* the x axis spans the data (default: from 0) */
	bool x_log10; /* x values are log10 of the data: the axis spans
			 whole decades, ticks read 10^k (0.1, 1, 10) */
	size_t n_panels, n_cols;
	const struct plot_panel *panels;
	size_t legend_n;
	const char *const *legend_labels;
	const uint32_t *legend_colors;
	const char *mark_label; /* legend text of the NaN mark; NULL: "first
				   NaN/Inf step" */
};

enum vb_status plot_lines_png(const struct plot_lines *p, const char *path,
			      struct vb_error *err);

/* The symmetric log sign(y) log10(1 + |y|): linear near 0, log10 |y| for
 * |y| >> 1, defined for every finite y. */
double plot_symlog(double y);

/* The i-th colour of a fixed qualitative palette (cycles). */
uint32_t plot_palette(size_t i);

#endif
