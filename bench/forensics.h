/* forensics: precursor ring, resume checkpoints, step dumps and the
 * replay support of a run (see forensics.c). Internal to the training run
 * (run.h); replay.c uses forensics_find_checkpoint. */
#ifndef VB_BENCH_FORENSICS_H
#define VB_BENCH_FORENSICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "run.h"

/* Allocates the forensics state of r once its model exists: anomaly
 * hook, guard.watch list (VB_ERR_CONFIG when malformed), precursor ring,
 * dump buffer; checks inject.param names a tensor. */
enum vb_status forensics_setup(struct run *r, struct vb_error *err);
void forensics_teardown(struct run *r);

/* Appends step r->step to the precursor ring (no-op without a ring):
 * loss, its parts and largest values when have_out, gradient norms when
 * have_grad, max |param|; flags a spike over the running median. */
void forensics_record(struct run *r, long epoch, double lr, double loss,
		      const struct model_out *mo, bool have_out, double gnorm,
		      bool have_grad, double max_param);

/* Writes the ring, oldest first, as CSV to path (atomically). */
enum vb_status forensics_write_precursors(struct run *r, const char *path,
					  struct vb_error *err);

/* Resume checkpoints are written (run.checkpoint_every or guard.replay,
 * never in a replay). */
bool forensics_checkpoints_on(const struct run *r);

/* The full state of r (parameters, optimiser, RNG streams, scaler, step,
 * epoch, the permutation when batch > 0 batches of the next epoch are
 * done, model state, config) as safetensors at path. */
enum vb_status forensics_write_checkpoint(struct run *r, const char *path,
					  long epoch, long batch,
					  struct vb_error *err);

/* Writes run_dir/checkpoints/step-S.safetensors (epochs_done epochs and
 * batch batches of the next done) and drops the previous one unless it
 * is the step-0 one. */
enum vb_status forensics_resume_checkpoint(struct run *r, long epochs_done,
					   long batch, struct vb_error *err);

/* Loads a checkpoint written by forensics_write_checkpoint into r (which
 * then goes on exactly as the original run did); VB_ERR_DATA on values
 * out of range. */
enum vb_status forensics_load_resume(struct run *r, const char *path,
				     struct vb_error *err);

/* The step whose dump replay --dump asked for (-1: none). */
long forensics_dump_step(const struct run *r);

/* The dump of the current step: batch indices ids (nb) and pixels, every
 * node value of the tape, parameters (before the update when updated)
 * and gradients, as safetensors at path. */
enum vb_status forensics_write_dump(struct run *r, const char *path,
				    long epoch, const size_t *ids, size_t nb,
				    bool updated, struct vb_error *err);

/* Finds in run_dir/checkpoints the resume checkpoint with the largest step
 * below before (before <= 0: the largest) into path (cap bytes) and its
 * step. VB_ERR_IO when there is none. */
enum vb_status forensics_find_checkpoint(const char *run_dir, long before,
					 char *path, size_t cap, long *step,
					 struct vb_error *err);

#endif
