/* cf_verdict: the verdict files of a counterfactual (cf.h) in cf->dir. */
#ifndef VB_BENCH_CF_VERDICT_H
#define VB_BENCH_CF_VERDICT_H

#include <stdio.h>

#include "cf.h"
#include "vb.h"

/* verdict.md's text for ctx (a struct cf *) on f: the set-up, one table
 * row per variant (outcome, event, costs), the notes. A files_write_with
 * writer; also printed by the command. */
enum vb_status cf_verdict_write_md(FILE *f, void *ctx, struct vb_error *err);

/* Writes curves.csv, times.csv, counterfactual.png, verdict.md and, last,
 * verdict.csv into cf->dir, each atomically. VB_ERR_IO, VB_ERR_NOMEM. */
enum vb_status cf_verdict_write_outputs(struct cf *cf, struct vb_error *err);

#endif
