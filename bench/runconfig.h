/* runconfig: the mapping from a resolved config (config.h) to the
 * settings of the modules a run is built from: the model (model.h), the
 * optimiser and its schedule (optim.h), the preprocessing rule
 * (preprocess.h) and the tape's rounding (graph.h). train.c calls it once
 * per run; nothing here allocates or keeps state. */
#ifndef VB_BENCH_RUNCONFIG_H
#define VB_BENCH_RUNCONFIG_H

#include "config.h"
#include "dataset.h"
#include "graph.h"
#include "model.h"
#include "optim.h"
#include "preprocess.h"

/* The model settings of c for images of ds's shape (model.* , nets.*,
 * rhvae.*, hvae.*, anchor.*, train.batch as the largest batch). */
void runconfig_model(const struct config *c, const struct dataset *ds,
		     struct model_config *mc);

/* The optimiser settings of c (optim.kind, betas, eps, decay, momentum). */
void runconfig_optim(const struct config *c, struct optim_settings *os);

/* The learning-rate schedule of c (optim.schedule and its settings,
 * train.epochs). */
void runconfig_schedule(const struct config *c, struct optim_schedule *s);

/* data.nonfinite as the preprocessing rule. */
enum preprocess_nonfinite runconfig_nonfinite(const struct config *c);

/* train.precision as the tape's rounding: f16 / bf16 round (float
 * build); native, f32 and f64 compute in this binary's vb_real (train.c
 * refuses the one it cannot run). */
enum graph_rounding runconfig_rounding(const struct config *c);

/* train.kernels as the tape's convolution backend: fast -> the build's
 * default (oneDNN in float, im2col in double, which has no oneDNN),
 * portable -> im2col. */
enum graph_conv_backend runconfig_conv_backend(const struct config *c);

#endif
