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
#include "vb.h"

/* A cell id: 16 lowercase hex digits and the NUL. */
#define SWEEP_ID_LEN 17

/* Limits that keep a typo from expanding into millions of runs. */
#define SWEEP_MAX_VALUES 10000 /* values of one axis */
#define SWEEP_MAX_CELLS 1000000

/*
 * The [sweep] section: one line per axis, "section.key = SPEC", where SPEC
 * is a comma-separated list of items and each item is
 *   a value                 1e-3, adam, true, 64
 *   A..B or A..B:S          integers A, A+S, ... up to B (S >= 1, default 1)
 *   logspace(A, B, N)       N values from A to B evenly spaced in log10
 *                           (A, B > 0), rounded to 6 significant digits
 *   linspace(A, B, N)       N values from A to B evenly spaced, 6 digits
 * e.g. "optim.lr = 1e-4, 1e-3, 1e-2", "train.seed = 1..5",
 * "optim.lr = logspace(1e-4, 1e1, 6)". Every value must be valid for the
 * key (config_set_key); values are kept in canonical form and must be
 * distinct. run.* keys cannot be swept (the sweep sets them). Every other
 * section of the file is the base config. The grid is the product of the
 * axes in file order, the first axis outermost (slowest) and the last
 * fastest; cell i is the i-th point of that order.
 *
 * The [mitigations] section (optional): one line per mitigation,
 *   NAME = section.key=value section.key=value ...
 * whitespace-separated assignments applied to the base config; an empty
 * right side is the base config itself, conventionally named baseline.
 * NAME is [A-Za-z0-9._-]+ (at most SWEEP_NAME_LEN - 1 characters) and
 * unique; every key must be known, not run.*, not a [sweep] axis and given
 * once per line, with a valid value (config_set_key); values hold no
 * whitespace; " ;" or " #" starts a comment. Two mitigations that resolve
 * to the same settings are refused. e.g.
 *   [mitigations]
 *   baseline =
 *   clip = optim.clip=norm optim.clip_max=5
 *   low_lr = optim.lr=1e-4
 * The grid is then the mitigations (outermost, in file order) times the
 * [sweep] axes (a file may have [mitigations] without [sweep]). Cell ids
 * stay the hash of the non-default settings (sweep_cell_id), not of the
 * mitigation's name: the baseline x train.seed cells of such a file have
 * the ids of the plain seeds sweep over the same base, and renaming a
 * mitigation keeps its ids. Each row records its mitigation's name in the
 * column "mitigation" ("" without [mitigations]).
 */
#define SWEEP_NAME_LEN 64

struct sweep_mitigation {
	char name[SWEEP_NAME_LEN];
	int line;         /* its line in the file */
	size_t n_sets;
	int *keys;        /* (n_sets) config key indices, owned */
	char **values;    /* (n_sets) canonical strings, owned */
};

struct sweep_axis {
	int key;          /* config key index */
	size_t n_values;
	char **values;    /* (n_values) canonical strings, owned */
};

struct sweep_plan {
	struct config base;
	struct sweep_axis *axes; /* (n_axes), owned */
	size_t n_axes;
	struct sweep_mitigation *mitigations; /* (n_mitigations), owned */
	size_t n_mitigations;    /* 0 without a [mitigations] section */
	size_t n_cells;          /* n_mitigations (1 without) times the
				    product of the axis lengths */
	char *text;              /* the file's bytes, owned (kept in DIR) */
	size_t text_len;
};

/* Reads the sweep file at path: the base config through config_load_file
 * (all sections but [sweep] and [mitigations]), the axes and the
 * mitigations; then resolves and validates
 * every cell (config_validate), so that a bad grid is refused before any
 * run starts. Errors are VB_ERR_CONFIG with one line naming FILE:LINE, the
 * key and the value ("sweep: q.ini:12: optim.lr = "abc": expected ..."),
 * VB_ERR_IO when the file cannot be read. *out is owned by the caller
 * (sweep_plan_free). */
enum vb_status sweep_plan_load(const char *path, struct sweep_plan **out,
			       struct vb_error *err);

/* As sweep_plan_load from text in memory; name is used in messages. */
enum vb_status sweep_plan_parse(const char *name, const char *text,
				struct sweep_plan **out, struct vb_error *err);

void sweep_plan_free(struct sweep_plan *p);

/* Expands one axis SPEC (the syntax above) for key into canonical values,
 * checking each against base. *values (n entries) is owned by the caller:
 * free each string and the array. VB_ERR_CONFIG on an unknown key, a run.*
 * key, an empty axis or item, a bad range, a value of the wrong type or a
 * duplicate. */
enum vb_status sweep_axis_expand(const struct config *base, const char *key,
				 const char *spec, char ***values, size_t *n,
				 struct vb_error *err);

/* The resolved config of cell index (< p->n_cells) and its id: the base,
 * then the cell's mitigation, then its axis values. */
enum vb_status sweep_plan_cell(const struct sweep_plan *p, size_t index,
			       struct config *c, char id[SWEEP_ID_LEN],
			       struct vb_error *err);

/* Name of the mitigation of cell index (static storage of p); "" without
 * a [mitigations] section or for an index out of range. */
const char *sweep_plan_mitigation(const struct sweep_plan *p, size_t index);

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

/* Stable id of a resolved config: FNV-1a 64 of the "key=value\n" lines, in
 * table order, of every key whose canonical value differs from its default,
 * run.* keys left out (they say where output goes, not what is computed).
 * Adding a key with a default therefore keeps existing ids. */
void sweep_cell_id(const struct config *c, char id[SWEEP_ID_LEN]);

/* Parses "k/n" (1 <= k <= n). VB_ERR_USAGE otherwise. Shard k runs the
 * cells whose index i has i % n == k - 1. */
enum vb_status sweep_parse_shard(const char *s, int *k, int *n,
				 struct vb_error *err);

struct sweep_options {
	const char *out_dir;  /* DIR: runs/<id>/, rows/<id>.csv, tables */
	int jobs;             /* worker processes, >= 1 */
	int shard_k, shard_n; /* 1/1 = every cell */
	FILE *log;            /* progress and the final line; NULL = quiet */
	int progress;         /* enum config_progress: live line on a TTY */
	const char *map_x, *map_y; /* stability map axes; NULL = default */
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
};

/* Parses the sweep command's options into o and *config (argv without
 * the command word). */
enum vb_status sweep_parse_args(int argc, char **argv, FILE *log,
				struct sweep_options *o, const char **config,
				struct vb_error *err);

/* The cells of o's shard that have no row in o->out_dir yet, in grid
 * order, into *cells (malloc'd, *n of them); creates the output folders
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

/* "vaebench sweep CONFIG --out DIR [--jobs N] [--shard k/n]
 * [--map X,Y] [--cell INDEX] [-q]": parses argv (without the command
 * word), runs, and reports progress to log. VB_ERR_USAGE for bad options
 * (and a --cell INDEX outside the grid). */
enum vb_status sweep_command(int argc, char **argv, FILE *log,
			     struct vb_error *err);

#endif
