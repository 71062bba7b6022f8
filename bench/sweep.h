/* sweep: a config file with [sweep] axes and/or [mitigations] becomes a
 * grid of cells, each a resolved config with a stable id; the scheduler
 * runs the cells in forked worker processes (dataset loaded once in the
 * parent, shared copy-on-write; cells of the other precision in the
 * sibling binary), writes each cell's row atomically, resumes by skipping
 * cells whose row exists, and runs one deterministic shard on request.
 * Tables and plots are left to table and plot. */
#ifndef VB_BENCH_SWEEP_H
#define VB_BENCH_SWEEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "sweep_plan.h"
#include "vb.h"
/* True when this binary computes train.precision value precision itself:
 * native always, f64 in the double build (vaebench-f64), f32, f16 and
 * bf16 in the float build (vaebench). */
bool sweep_precision_here(int precision);

/* The sibling binary that computes precision when this one does not:
 * "vaebench-f64" (asked by the float build) or "vaebench" (asked by the
 * double build) in the folder of /proc/self/exe, into path (cap bytes).
 * VB_ERR_CONFIG "sweep: train.precision = f64 needs DIR/vaebench-f64,
 * which is missing or not executable" when it is not there. */
enum vb_status sweep_sibling_binary(int precision, char *path, size_t cap,
				    struct vb_error *err);

struct sweep_options {
	const char *out_dir;  /* DIR: runs/<id>/, rows/<id>.csv, tables */
	int jobs;             /* worker processes, >= 1 */
	int shard_k, shard_n; /* 1/1 = every cell */
	FILE *log;            /* progress and the final line; NULL = quiet */
	int progress;         /* enum config_progress: live line on a TTY */
	char map_x[128], map_y[128]; /* stability map axes; "" = default */
	/* Dynamic hand-out (the MPI build): when next_cell is set, cells come
	 * from it (true and *cell, or false when there are no more) instead
	 * of this process's own list of missing cells, and no_report skips
	 * the tables (the coordinator writes them). */
	bool (*next_cell)(void *ctx, size_t *cell);
	void *next_ctx;
	bool no_report;
	/* --cell INDEX: run only that cell (when it has no row yet), write no
	 * tables. The sibling binary is started this way for the cells whose
	 * train.precision this binary does not compute. */
	bool one_cell;
	size_t cell;
	/* --order seeds-first: run the pending cells axis point by axis point
	 * (every mitigation at the first seed, then every mitigation at the
	 * second, ...) instead of mitigation by mitigation, so a sweep stopped
	 * part way compares all its mitigations on the same seeds. Only the
	 * order changes: cell indices, ids and rows are the same. */
	bool axes_first;
	/* --continue-from SRC: each cell continues SRC's run of the same
	 * settings but its (shorter) train.epochs (extend.h); a cell a
	 * stopped sweep left part way goes on from its own last resume
	 * checkpoint first, as without it; NULL: none */
	const char *continue_from;
	/* --only NAME,NAME: run only the cells of these mitigations (comma-
	 * separated names of the plan's [mitigations]); NULL: every cell */
	const char *only;
	/* --fresh: a cell whose run a stopped sweep left part way runs from
	 * the start; default: it goes on from its last resume checkpoint
	 * (extend_resume_cell) */
	bool fresh;
};


/* The cells of o's shard that have no row in o->out_dir yet, in grid
 * order (axis point by axis point with o->axes_first), into *cells (malloc'd, *n of them); creates the output folders
 * and checks or writes DIR/sweep.ini. */
enum vb_status sweep_pending(const struct sweep_plan *p,
			     const struct sweep_options *o, size_t **cells,
			     size_t *n, struct vb_error *err);

/* The tables and plots of a sweep folder (results.csv, summary.md,
 * machine.json, PNGs). */
enum vb_status sweep_report(const struct sweep_options *o,
			    struct vb_error *err);

struct sweep_stats {
	size_t n_cells;     /* in the grid */
	size_t n_shard;     /* in this shard */
	size_t n_done;      /* rows already there when the sweep started */
	size_t n_run;       /* cells run now that wrote a row */
	size_t n_nonfinite; /* of the shard's rows: status nan or inf */
	size_t n_error;     /* of the shard's rows: status error */
	size_t n_lost;      /* workers that ended without writing a row */
	double seconds;     /* wall time of the runs */
	long max_rss_kb;    /* largest worker peak RSS */
	double mean_rss_kb; /* mean worker peak RSS */
};

/* Runs the plan's missing cells of the shard into o->out_dir, then writes
 * results.csv, summary.md, machine.json and the plots (table_report).
 * A cell whose train.precision this binary does not compute
 * (sweep_precision_here) runs in the sibling binary
 * (sweep_sibling_binary): the worker executes "SIBLING sweep
 * DIR/sweep.ini --out DIR --cell INDEX --jobs 1 -q", which writes the
 * cell's row into the same folder; a missing sibling is refused before
 * any cell runs (VB_ERR_CONFIG). In one_cell mode such a cell is an
 * error instead (no ping-pong between the binaries).
 * The file's text is kept as DIR/sweep.ini; a DIR holding a different
 * sweep.ini is refused (VB_ERR_USAGE). Cells run in o->jobs forked
 * workers, each with its config's BLAS threads (1 by default); a worker
 * that dies without a row (signal, I/O failure) leaves its cell missing
 * and the call returns VB_ERR_INTERNAL after the others finished, so that
 * running the sweep again retries it. A NaN is a result (status nan).
 * Data load errors are VB_ERR_DATA. stats may be NULL. */
enum vb_status sweep_run(const struct sweep_plan *p,
			 const struct sweep_options *o,
			 struct sweep_stats *stats, struct vb_error *err);


#endif
