/* runfiles: meta.json and the pictures of a run folder, written from the
 * run's built model; internal to the training run (train.c). */
#ifndef VB_BENCH_RUNFILES_H
#define VB_BENCH_RUNFILES_H

#include "vb.h"

struct run;

/* Writes dir/meta.json atomically: the build's commit, precision and
 * kernels, the thread count, r's conv backend, the compiler and r's
 * parameter count. VB_ERR_NOMEM, VB_ERR_IO. */
enum vb_status runfiles_write_meta(struct run *r, const char *dir,
				   struct vb_error *err);

/* Writes reconstructions.png (up to 8 evaluation images, else training
 * images, over their reconstructions: the decoder applied to the encoder
 * means) and samples.png (16 decodes of z ~ N(0, I) drawn from the inject
 * stream, so no training stream moves) into r's run folder; for an RHVAE
 * also samples_prior.png (16 decodes of latents drawn from the model's own
 * prior by pythae's RHVAESampler: 100 HMC steps, n_lf 10, eps_lf 0.03,
 * from its own seeded stream). Nothing for a
 * model without networks or without images. Uses r's tape and x buffer;
 * leaves gradients enabled. VB_ERR_NOMEM, VB_ERR_IO; the sampler's
 * VB_ERR_USAGE, VB_ERR_NUMERIC. */
enum vb_status runfiles_write_pictures(struct run *r, struct vb_error *err);

#endif
