/* sweep_plan: a sweep file read into a plan: the base config, the
 * [sweep] axes and the [mitigations], expanded into cells with stable ids
 * (sweep_plan_cell_id); shard strings. No scheduling, no files beyond the
 * one it reads (the scheduler is sweep.h, the tables report.h). */
#ifndef VB_BENCH_SWEEP_PLAN_H
#define VB_BENCH_SWEEP_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "sweep_axis.h"
#include "vb.h"

/* A cell id: 16 lowercase hex digits and the NUL. */
#define SWEEP_PLAN_ID_LEN 17

/* Limits that keep a typo from expanding into millions of runs. */
#define SWEEP_PLAN_MAX_VALUES SWEEP_AXIS_MAX_VALUES /* values of one axis */
#define SWEEP_PLAN_MAX_CELLS 1000000

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
 * NAME is [A-Za-z0-9._-]+ (at most SWEEP_PLAN_NAME_LEN - 1 characters) and
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
 * stay the hash of the non-default settings (sweep_plan_cell_id), not of the
 * mitigation's name: the baseline x train.seed cells of such a file have
 * the ids of the plain seeds sweep over the same base, and renaming a
 * mitigation keeps its ids. Each row records its mitigation's name in the
 * column "mitigation" ("" without [mitigations]).
 *
 * Inert cells are refused: when an axis value or a setting of a
 * mitigation cannot take effect in a cell given its other settings
 * (config_key_effective: nets.init_scale without nets.init = scaled,
 * data.standardize_eps without data.standardize, ...), the grid is refused
 * with one line naming the axis or mitigation, the value and the
 * requirement that fails; such a cell would only copy another.
 */
#define SWEEP_PLAN_NAME_LEN 64

struct sweep_plan_mitigation {
	char name[SWEEP_PLAN_NAME_LEN];
	int line;         /* its line in the file */
	size_t n_sets;
	int *keys;        /* (n_sets) config key indices, owned */
	char **values;    /* (n_sets) canonical strings, owned */
};

struct sweep_plan_axis {
	int key;          /* config key index */
	size_t n_values;
	char **values;    /* (n_values) canonical strings, owned */
};

struct sweep_plan {
	struct config base;
	struct sweep_plan_axis *axes; /* (n_axes), owned */
	size_t n_axes;
	struct sweep_plan_mitigation *mitigations; /* (n_mitigations), owned */
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

/* As sweep_plan_load without the inert-cell check: the grid of a folder
 * that has run already (report's grid note), whose sweep.ini may predate
 * the check. Every other check stays. */
enum vb_status sweep_plan_load_existing(const char *path,
					struct sweep_plan **out,
					struct vb_error *err);

/* As sweep_plan_load from text in memory; name is used in messages. */
enum vb_status sweep_plan_parse(const char *name, const char *text,
				struct sweep_plan **out, struct vb_error *err);

void sweep_plan_free(struct sweep_plan *p);

/* Two sweep files' texts describe the same sweep: equal once comment
 * lines (first non-blank ';' or '#'), blank lines and trailing blanks are
 * dropped. sweep.ini identity (sweep resume, merge) uses it, so that
 * editing a comment does not make a folder "another sweep". */
bool sweep_plan_same_text(const char *a, size_t a_len, const char *b,
			  size_t b_len);

/* The resolved config of cell index (< p->n_cells) and its id: the base,
 * then the cell's mitigation, then its axis values. */
enum vb_status sweep_plan_cell(const struct sweep_plan *p, size_t index,
			       struct config *c, char id[SWEEP_PLAN_ID_LEN],
			       struct vb_error *err);

/* Name of the mitigation of cell index (static storage of p); "" without
 * a [mitigations] section or for an index out of range. */
const char *sweep_plan_mitigation(const struct sweep_plan *p, size_t index);

/* Stable id of a resolved config: FNV-1a 64 of the "key=value\n" lines, in
 * table order, of every key whose canonical value differs from its default,
 * run.* keys left out (they say where output goes, not what is computed).
 * Adding a key with a default therefore keeps existing ids. */
void sweep_plan_cell_id(const struct config *c, char id[SWEEP_PLAN_ID_LEN]);

/* Parses "k/n" (1 <= k <= n). VB_ERR_USAGE otherwise. Shard k runs the
 * cells whose index i has i % n == k - 1. */
enum vb_status sweep_plan_parse_shard(const char *s, int *k, int *n,
				 struct vb_error *err);

/* Whether cell i's mitigation is one of only's comma-separated names
 * (sweep --only); true for every cell when only is NULL. */
bool sweep_plan_in_only(const struct sweep_plan *p, const char *only,
			size_t i);

/* VB_ERR_USAGE naming the first of only's names that is not one of the
 * plan's mitigations; VB_OK for NULL. */
enum vb_status sweep_plan_check_only(const struct sweep_plan *p,
				     const char *only, struct vb_error *err);

/* A sweep folder's selection: DIR/only.txt, one line of the mitigations
 * that sweeps run into DIR with --only named (their union, in the plan's
 * order); no file: the whole grid (a sweep without --only removes it).
 * Report counts the selected cells as the folder's plan. */
#define SWEEP_PLAN_ONLY_FILE "only.txt"

/* DIR's selection into *only (malloc'd "a,b"; NULL without the file).
 * VB_ERR_DATA naming the file when a name is not one of p's mitigations
 * or the file is empty. */
enum vb_status sweep_plan_read_only(const struct sweep_plan *p,
				    const char *dir, char **only,
				    struct vb_error *err);

/* Records a sweep's --only (NULL: every cell) in DIR's selection as above:
 * only's names added to those DIR/only.txt has, or the file removed (also
 * when that union is every mitigation). */
enum vb_status sweep_plan_record_only(const struct sweep_plan *p,
				      const char *dir, const char *only,
				      struct vb_error *err);

/* How many of p's cells are in only (sweep_plan_in_only). */
size_t sweep_plan_count_only(const struct sweep_plan *p, const char *only);

/* Reorders cells (n ascending grid indices) axis point by axis point
 * (sweep --order seeds-first): every mitigation at the first point of the
 * axes, then at the second, ... */
void sweep_plan_order_axes_first(const struct sweep_plan *p, size_t *cells,
				 size_t n);

#endif
