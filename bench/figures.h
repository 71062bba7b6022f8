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

/* Whether t's rows come from a [mitigations] sweep (the column
 * "mitigation" takes more than one value). */
bool figures_is_mitigation_sweep(const struct table *t);

/* As figures_pick_map, but a mitigation sweep is never forced into an lr
 * x batch grid: y is "mitigation" (one map row, one curves panel per
 * mitigation, seeds as colours) and x the first [sweep] axis other than
 * the seed that varies within a mitigation (NULL: none). Explicit want_x
 * and want_y win. */
void figures_pick_axes(const struct table *t, const char *const *axes,
		       size_t n, const char *want_x, const char *want_y,
		       const char **x, const char **y);

enum vb_status figures_map(const struct table *t, const char *dir,
			       const char *kx, const char *ky,
			       struct vb_error *err);

/* loss_curves.png / grad_norm.png (file): column col of every run's
 * curve (runs/ID/metrics.csv, else curves/ID.csv) against optimizer
 * steps, a panel per (kx, ky) value pair that has runs, a colour per seed
 * with a wrapped legend; log y only for positive data, symmetric log for
 * signed data spanning decades. When no run has a curve, the train_loss
 * figure shows each run's eval loss per epoch from results.csv (column
 * eval_losses) instead, titled so; other figures stay as drawn before,
 * or are removed for a mitigation sweep (they were drawn as an lr x
 * batch grid). */
enum vb_status figures_curves(const struct table *t, const char *dir,
				  const char *kx, const char *ky,
				  const char *col, const char *file,
				  const char *title, const char *ylabel,
				  struct vb_error *err);

/* reconstructions.png, samples.png and (RHVAE runs that wrote one)
 * samples_prior.png of the sweep: the pictures of the first finished
 * (status ok) runs in results order, each under its swept settings. */
enum vb_status figures_galleries(const struct table *t, const char *dir,
				     const char **axes, size_t n_axes,
				     struct vb_error *err);

/* mitigations.png: per mitigation (file order, top to bottom) a bar of
 * its NaN/Inf share and one of its mean eval loss at the comparison epoch
 * from zero (signed: linear, or symmetric-log when the magnitudes span
 * more than a factor 30; zero marked), every run that reached the epoch a
 * point on it, the baseline's mean dashed. Drawn from plot's primitives. */
enum vb_status figures_mitigations(const struct table *t, const char *dir,
				       struct vb_error *err);

#endif
