/* extend: a sweep cell that continues a shorter sweep's run (sweep
 * --continue-from SRC, issue 16 item 3): the cell's run is the source
 * cell's run folder, copied, continued to the cell's train.epochs with
 * train --resume RUN_DIR --epochs N's rules (resume.h). */
#ifndef VB_BENCH_EXTEND_H
#define VB_BENCH_EXTEND_H

#include <stdio.h>

#include "config.h"
#include "table.h"
#include "train.h"
#include "vb.h"

/* The train.epochs of the sweep in src_dir (its sweep.ini's base) into
 * *epochs; VB_ERR_USAGE with one line when src_dir holds no sweep. */
enum vb_status extend_source_epochs(const char *src_dir, long *epochs,
				    struct vb_error *err);

/* Runs cell c (run.out_dir/run.name set, train.epochs > src_epochs) as
 * the continuation of src_dir's run of the same settings with train.epochs
 * = src_epochs (its cell id): copies that run folder into c's (which it
 * claims), writes c's config.ini and continues it; a source that ended ok
 * goes on from its final checkpoint, one that died meets its event again
 * from its last epoch checkpoint. *continued is false (and the cell runs
 * from scratch, a line on log saying why) when src_dir has no finished
 * run of those settings. */
enum vb_status extend_cell(const char *src_dir, long src_epochs,
			   const struct config *c, const struct train_data *d,
			   struct train_summary *sum, bool *continued,
			   FILE *log, struct vb_error *err);

/* The file of a --continue-from sweep's folder that names its source. */
#define EXTEND_SOURCE_FILE "continued_from.txt"

/* Writes out_dir/EXTEND_SOURCE_FILE: src_dir's path relative to out_dir
 * (both existing), one line, so that the pair moves with a clone. */
enum vb_status extend_record_source(const char *out_dir, const char *src_dir,
				    struct vb_error *err);

/* When dir has an EXTEND_SOURCE_FILE: the source folder's results.csv
 * into src (initialised, empty), its path as written into name (n
 * bytes), *found true. *found false and VB_OK without the file;
 * VB_ERR_DATA with one line when it is malformed or names a folder
 * without results.csv. */
enum vb_status extend_load_source(const char *dir, struct table *src,
				  char *name, size_t n, bool *found,
				  struct vb_error *err);

/* Whether src_dir holds a finished run of c's settings with train.epochs
 * = src_epochs (the run extend_cell would continue rather than run from
 * the start). */
bool extend_source_ready(const char *src_dir, long src_epochs,
			 const struct config *c);

/* Cell c's run folder (run.out_dir/run.name) as an earlier sweep left it
 * when it was stopped while the cell ran (no row): when the folder's
 * config.ini is c's byte for byte and it holds a resume checkpoint
 * (run.checkpoint_every > 0 or guard.replay), the run goes on from its
 * last epoch boundary with train --resume's rules (resume.h: the row is
 * a fresh run's, apart from seconds and the lead-time window) and
 * *resumed is true. Otherwise (no folder, another config, no checkpoint,
 * a run that ended) *resumed is false, a line on log says why when there
 * was a folder, and the caller runs the cell from the start. */
enum vb_status extend_resume_cell(const struct config *c,
				  const struct train_data *d,
				  struct train_summary *sum, bool *resumed,
				  FILE *log, struct vb_error *err);

/* With --continue-from: reorders cells[0..n) of p so that those whose
 * source run is in src_dir's runs/ (extend_source_ready) come first, the
 * rest after them, each group in its order: the first continue from the
 * source's final checkpoint, the others train from the start, and the
 * sources (runs/ is not committed) may not outlive this machine. Left as
 * it is when there is no memory for the copy. */
struct sweep_plan;
void extend_order_sources(const struct sweep_plan *p, const char *src_dir,
			  long src_epochs, size_t *cells, size_t n);

#endif
