/* inject: the fault injection of the inject.* settings (a NaN, an Inf or
 * a scale written into the input batch, the parameters or the gradients
 * at one step) and the unnormalized-input fault (raw pixels times
 * data.scale). It belongs with the data it corrupts (datasets/, DESIGN.md)
 * and lives in bench/ until datasets/ is open for the move (issue 14);
 * step.c calls it, it calls nothing of the run. */
#ifndef VB_BENCH_INJECT_H
#define VB_BENCH_INJECT_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "params.h"
#include "vb.h"

/* True when in's fault of phase (enum config_nan_phase) is due at the
 * optimiser step next_step (1-based: the step about to run); the
 * unnormalized fault stays on from inject.nan_step. */
bool inject_due(const struct config_inject *in, long next_step, int phase);

/* Writes inject.value into x[index] (every element for index -1): NaN,
 * Inf, or x times inject.scale. */
void inject_apply(const struct config_inject *in, vb_real *x, size_t n);

/* The slice of buf (laid out as p's flat buffer) that inject.param names,
 * its element count in *n; the whole buffer when the name is empty or
 * unknown. */
vb_real *inject_target(const struct config_inject *in,
		       const struct params *p, vb_real *buf, size_t *n);

/* The unnormalized-input fault: x (n values) times scale (data.scale),
 * as if the raw 0..255 pixels reached the model. */
void inject_rescale_raw(vb_real *x, size_t n, double scale);

#endif
