/* resume: makes an interrupted run folder ready for train --resume. What
 * happens next (train_run_continue) is train.h's. */
#ifndef VB_BENCH_RESUME_H
#define VB_BENCH_RESUME_H

#include <stddef.h>

#include "config.h"
#include "train.h"
#include "vb.h"

/* Prepares the interrupted run in run_dir for train --resume: finds its
 * last epoch-boundary resume checkpoint (checkpoints/epoch-end.safetensors,
 * else the step-0 one) into ckpt (cap bytes), cuts metrics.csv and
 * times.csv back to the epochs that checkpoint holds, and restores the
 * running summary values (epochs done, final and best losses) from
 * metrics.csv into *resumed. A finished run (summary.csv with another
 * status than "interrupted") is refused (VB_ERR_CONFIG) unless
 * extend_to > 0 (the caller then sets train.epochs = extend_to in its
 * config.ini): a run that ended "ok" continues from its final
 * checkpoint.safetensors (VB_ERR_USAGE when it has extend_to epochs
 * already), one that stopped at a non-finite value from its last
 * epoch-boundary checkpoint (it meets its event again, as a fresh
 * extend_to-epoch run would), one that ended with an error not at all.
 * The IS-NLL at the best and last finite epochs is kept from summary.csv
 * while those stay the best and last. A folder without config.ini or
 * checkpoints is VB_ERR_DATA with one line. */
enum vb_status resume_prepare(const char *run_dir, long extend_to,
			      char *ckpt, size_t cap,
			      struct train_summary *resumed,
			      struct vb_error *err);

/* Whether run config c (as it ran, train.epochs = its length) can go on
 * to more epochs with the rows of a fresh longer run: not when its rows
 * depend on its length (a cosine schedule over train.epochs, a
 * train.max_steps stop, a last epoch evaluated only for being the last).
 * VB_ERR_CONFIG with the reason otherwise. */
enum vb_status resume_check_extend(const struct config *c,
				   struct vb_error *err);

#endif
