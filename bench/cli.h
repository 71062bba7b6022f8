/* cli: the command-line parsing of the commands that take options beyond
 * a config (sweep, report, merge); main.c dispatches to them. One parser
 * for the options they share (--map X,Y, --jobs, --shard, ...), so no
 * command keeps a copy. */
#ifndef VB_BENCH_CLI_H
#define VB_BENCH_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "sweep.h"
#include "vb.h"

/* --map X,Y: splits v into x and y (cap bytes each); VB_ERR_USAGE when v
 * is not two non-empty keys. */
enum vb_status cli_parse_map(const char *v, char *x, char *y, size_t cap,
			     struct vb_error *err);

/* "vaebench report DIR [--map X,Y]" and "vaebench merge OUT DIR...":
 * parse argv (without the command word) and run. VB_ERR_USAGE for bad
 * options. log gets one line naming what was written (may be NULL). */
enum vb_status cli_report_command(int argc, char **argv, FILE *log,
				  struct vb_error *err);
enum vb_status cli_merge_command(int argc, char **argv, FILE *log,
				 struct vb_error *err);

/* Parses the sweep command's options into o and *config (argv without
 * the command word). */
enum vb_status cli_sweep_args(int argc, char **argv, FILE *log,
				struct sweep_options *o, const char **config,
				struct vb_error *err);

/* "vaebench sweep CONFIG --out DIR [--jobs N] [--shard k/n]
 * [--map X,Y] [--cell INDEX] [-q]": parses argv (without the command
 * word), runs, and reports progress to log. VB_ERR_USAGE for bad options
 * (and a --cell INDEX outside the grid). */
enum vb_status cli_sweep_command(int argc, char **argv, FILE *log,
			     struct vb_error *err);

/* cli_sweep_args, then the plan of its config file (*p, owned by the
 * caller: sweep_plan_free); a config file that cannot be read is
 * VB_ERR_USAGE. */
enum vb_status cli_sweep_load(int argc, char **argv, FILE *log,
			      struct sweep_options *o, struct sweep_plan **p,
			      struct vb_error *err);

#endif
