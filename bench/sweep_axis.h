/* sweep_axis: one axis of a sweep file's [sweep] section, "section.key =
 * SPEC", expanded into canonical values checked against a base config.
 * Knows nothing of cells, mitigations or files (that is sweep_plan.h). */
#ifndef VB_BENCH_SWEEP_AXIS_H
#define VB_BENCH_SWEEP_AXIS_H

#include <stddef.h>

#include "config.h"
#include "vb.h"

/* Most values one axis may expand to: keeps a typo from expanding into
 * millions of runs. */
#define SWEEP_AXIS_MAX_VALUES 10000

/* Expands one axis SPEC (the syntax in sweep_plan.h: a list of values,
 * A..B, logspace(A, B, N)) for key into canonical values, checking each
 * against base. *values (n entries) is owned by the caller:
 * free each string and the array. VB_ERR_CONFIG on an unknown key, a run.*
 * key, an empty axis or item, a bad range, a value of the wrong type or a
 * duplicate. */
enum vb_status sweep_axis_expand(const struct config *base, const char *key,
				 const char *spec, char ***values, size_t *n,
				 struct vb_error *err);

/* Strips leading and trailing white space from s in place (writes a NUL
 * after the last non-blank); returns the first non-blank character of s. */
char *sweep_axis_trim(char *s);

/* Frees the n strings of v and v itself, as returned by sweep_axis_expand;
 * v may be NULL. */
void sweep_axis_free_values(char **v, size_t n);

#endif
