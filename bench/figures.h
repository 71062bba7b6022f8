/* figures: which figures a sweep folder gets and what each shows: the
 * stability map (share of seeds that hit NaN over two axes), loss curves
 * and gradient norms with the NaN step marked, picture galleries and the
 * mitigation bars. It selects and prepares the data; plot.h draws. */
#ifndef VB_BENCH_FIGURES_H
#define VB_BENCH_FIGURES_H

#include <stdbool.h>
#include <stddef.h>

#include "table.h"
#include "vb.h"

/* Picks the map axes: the requested ones, else optim.lr x train.batch
 * when both vary, else the first varying settings (seed last). NULL for
 * an axis means a single "all" column or row. */
void figures_pick_map(const char *const *axes, size_t n, const char *want_x,
		     const char *want_y, const char **x, const char **y);

enum vb_status figures_map(const struct table *t, const char *dir,
			       const char *kx, const char *ky,
			       struct vb_error *err);

enum vb_status figures_curves(const struct table *t, const char *dir,
				  const char *kx, const char *ky,
				  const char *col, const char *file,
				  const char *title, const char *ylabel,
				  struct vb_error *err);

/* reconstructions.png and samples.png of the sweep: the pictures of the
 * first finished (status ok) runs in results order, each under its
 * swept settings. */
enum vb_status figures_galleries(const struct table *t, const char *dir,
				     const char **axes, size_t n_axes,
				     struct vb_error *err);

/* mitigations.png: per mitigation (file order, top to bottom) a bar of
 * its NaN/Inf share and one of its mean eval loss at the comparison epoch
 * with the baseline's value dashed. Drawn from plot's primitives. */
enum vb_status figures_mitigations(const struct table *t, const char *dir,
				       struct vb_error *err);

#endif
