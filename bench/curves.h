/* curves: the per-epoch curves of runs from one or more sweep folders on
 * one figure ('vaebench curves'), against epochs or against epochs x
 * learning rate: a run at lr a for e epochs has taken as many Adam steps
 * of the size of a run at lr b's e x a / b epochs, so two rates that
 * follow one path slowed down line up on that axis. */
#ifndef VB_BENCH_CURVES_H
#define VB_BENCH_CURVES_H

#include <stdio.h>

#include "vb.h"

/* vaebench curves OUT.png --col COL[,COL...] [--x epoch|lr-epochs|steps]
 * [--log-y] [--title TEXT] [--csv FILE] DIR[:MITIGATION]...: one panel
 * per column of the runs' curves (table_curve_path), one line per run, a
 * colour per series, the first NaN epoch (or step) marked. --x lr-epochs:
 * x = epoch x optim.lr / the largest optim.lr among the runs, on a log
 * axis; --x steps: x = the optimizer steps at each epoch's end (the
 * curves' steps column; the NaN epoch's is the failing step), on a log
 * axis; --csv: the points drawn. Bad arguments, a
 * folder without results.csv or a curve, a column the curves lack:
 * one line (VB_ERR_USAGE / VB_ERR_DATA), nothing written. */
enum vb_status curves_command(int argc, char **argv, FILE *log,
			      struct vb_error *err);

#endif
