/* vaebench: the command line. Parses the command and its options, fixes a
 * mis-detected OpenBLAS kernel before any BLAS call, runs the command and
 * maps status to exit codes (0 ok, also when a run hits NaN; 2 usage or
 * config; 3 missing or bad data; 1 otherwise). The only file that prints
 * errors or exits. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "curves.h"
#include "config.h"
#include "files.h"
#include "machine.h"
#ifdef VB_HAVE_MPI
#include "mpi_sweep.h"
#endif
#include "ops.h"
#include "counterfactual.h"
#include "replay.h"
#include "resume.h"
#include "sweep.h"
#include "sweep_plan.h"
#include "table.h"
#include "train.h"

#define MAX_SETS 256

static int exit_code(enum vb_status st)
{
	switch (st) {
	case VB_OK: return 0;
	case VB_ERR_USAGE:
	case VB_ERR_CONFIG: return 2;
	case VB_ERR_DATA: return 3;
	default: return 1;
	}
}

static int fail(const struct vb_error *err)
{
	fprintf(stderr, "vaebench: %s\n", err->msg);
	return exit_code(err->status);
}

static int fail_code(const struct vb_error *err, int code)
{
	fprintf(stderr, "vaebench: %s\n", err->msg);
	return code;
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "vaebench: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see 'vaebench --help')\n");
	return 2;
}

/* The OpenBLAS kernel pinned by ISA class (machine_pin_blas), before any
 * BLAS call; a failure to pin is a warning, not an error. */
static void fix_blas_core(char **argv)
{
	char msg[256];
	if (machine_pin_blas(argv, msg, sizeof msg))
		fprintf(stderr, "vaebench: warning: %s\n", msg);
}

static const char *MAIN_HELP =
	"vaebench: train VAE and RHVAE models and record where the first "
	"NaN or Inf appears\n"
	"\n"
	"usage: vaebench <command> [options]\n"
	"\n"
	"commands:\n"
	"  train     train one run from a config file\n"
	"  config    list every setting with its default and meaning\n"
	"  sweep     run a grid of trainings from a config with a [sweep] section\n"
	"  merge     join sweep folders (shards) into one table\n"
	"  report    rebuild a sweep folder's tables and plots\n"
	"  curves    plot per-epoch curves of runs from sweep folders "
	"(against epochs or epochs x lr)\n"
	"  replay    rerun a run from its last checkpoint to its first NaN "
	"(--anomaly names the origin)\n"
	"  counterfactual  rerun a failed run from before its first NaN "
	"with each mitigation\n"
	"  version   print the build and the BLAS kernel in use\n"
	"\n"
	"'vaebench <command> --help' shows a command's options.\n"
	"Exit codes: 0 done (also when a run hit NaN: that is a result), 2 "
	"usage or config error, 3 missing or bad data, 1 other errors.\n";

static const char *TRAIN_HELP =
	"usage: vaebench train [[--config] FILE] [--set section.key=value ...]\n"
	"                      [--force]\n"
	"       vaebench train --resume RUN_DIR [--epochs N]\n"
	"\n"
	"Trains one run. Settings come from the defaults ('vaebench config'),\n"
	"then FILE, then each --set in order. The run folder is\n"
	"run.out_dir/run.name and receives config.ini (resolved), metrics.csv\n"
	"and times.csv (a line per epoch, written as it ends), summary.csv\n"
	"(one row), meta.json, checkpoint.safetensors, reconstructions.png,\n"
	"samples.png and checkpoints/ (resume checkpoints). A run owns its\n"
	"folder: a non-empty one is refused unless --force (clears it first).\n"
	"Ctrl-C (SIGINT) or SIGTERM ends the run after its current step with\n"
	"status 'interrupted'; --resume RUN_DIR continues it from its last\n"
	"epoch-end checkpoint (run.checkpoint_every > 0) to the same results\n"
	"as an uninterrupted run. train.precision = f64 in vaebench (or f32,\n"
	"f16, bf16 in vaebench-f64) runs the same command in the sibling\n"
	"binary next to this one.\n"
	"\n"
	"options:\n"
	"  --config FILE          INI file (unknown keys are errors)\n"
	"  --set section.key=V    override one setting (repeatable)\n"
	"  --out DIR              same as --set run.out_dir=DIR\n"
	"  --name NAME            same as --set run.name=NAME\n"
	"  --force                replace a non-empty run folder\n"
	"  --resume RUN_DIR       continue an interrupted run (its config.ini)\n"
	"  --epochs N             with --resume: continue a run that ended ok\n"
	"                         to N epochs (its rows as a fresh N-epoch run\n"
	"                         gives them; train.epochs = N in config.ini)\n"
	"  -q, --quiet            no progress output\n"
	"  -h, --help             this text\n";

static const char *CONFIG_HELP =
	"usage: vaebench config [--config FILE] [--set k=v ...] [--keys]\n"
	"\n"
	"Prints the resolved settings as INI (defaults, then FILE, then --set),\n"
	"or with --keys every key with its meaning.\n";

struct main_options {
	const char *config;
	const char *sets[MAX_SETS];
	int n_sets;
	bool quiet;
	bool keys;
	bool force;          /* train --force */
	const char *resume;  /* train --resume RUN_DIR */
	long epochs;         /* train --resume RUN_DIR --epochs N (0: none) */
	char out_set[1200];  /* --out as "run.out_dir=DIR" */
	char name_set[400];  /* --name as "run.name=NAME" */
	char resume_config[1200]; /* RUN_DIR/config.ini of --resume */
};

/* Parses the options train and config share. Returns -1 when the caller
 * should print help, 0 on success, else an exit code. */
static int parse_common(int argc, char **argv, struct main_options *o,
			const char *help, bool allow_keys, bool is_train)
{
	memset(o, 0, sizeof *o);
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(help, stdout);
			return -1;
		} else if (!strcmp(a, "--config") || !strcmp(a, "--set") ||
			   !strcmp(a, "--out") || !strcmp(a, "--name")) {
			if (i + 1 >= argc)
				return usage_error("%s needs a value", a);
			const char *v = argv[++i];
			if (o->n_sets >= MAX_SETS)
				return usage_error("too many %s options", a);
			if (!strcmp(a, "--config")) {
				o->config = v;
			} else if (!strcmp(a, "--set")) {
				o->sets[o->n_sets++] = v;
			} else if (!strcmp(a, "--out")) {
				snprintf(o->out_set, sizeof o->out_set,
					 "run.out_dir=%s", v);
				o->sets[o->n_sets++] = o->out_set;
			} else {
				snprintf(o->name_set, sizeof o->name_set,
					 "run.name=%s", v);
				o->sets[o->n_sets++] = o->name_set;
			}
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			o->quiet = true;
		} else if (allow_keys && !strcmp(a, "--keys")) {
			o->keys = true;
		} else if (is_train && !strcmp(a, "--force")) {
			o->force = true;
		} else if (is_train && !strcmp(a, "--resume")) {
			if (i + 1 >= argc)
				return usage_error("%s needs a run folder", a);
			o->resume = argv[++i];
		} else if (is_train && !strcmp(a, "--epochs")) {
			char *end;
			long v;
			if (i + 1 >= argc)
				return usage_error("%s needs a number", a);
			errno = 0;
			v = strtol(argv[++i], &end, 10);
			if (end == argv[i] || *end || errno || v < 1 ||
			    v > 1000000)
				return usage_error("--epochs '%s': expected "
						   "1..1000000", argv[i]);
			o->epochs = v;
		} else if (is_train && a[0] != '-' && !o->config) {
			o->config = a; /* train CONFIG, as sweep CONFIG */
		} else {
			return usage_error("unknown option '%s'", a);
		}
	}
	return 0;
}

static enum vb_status resolve(const struct main_options *o, struct config *c,
			      struct vb_error *err)
{
	enum vb_status st = VB_OK;
	config_defaults(c);
	if (o->config)
		st = config_load_file(c, o->config, err);
	for (int i = 0; st == VB_OK && i < o->n_sets; i++)
		st = config_set(c, o->sets[i], err);
	if (st == VB_OK)
		st = config_validate(c, err);
	return st;
}

/* train.precision that this binary does not compute: run the same
 * command line in the sibling binary (vaebench-f64 for f64 from the float
 * build, vaebench for f32/f16/bf16 from the double build). Returns only
 * on failure, with the exit code. VAEBENCH_PRECISION_REEXEC guards
 * against two binaries handing the run to each other. */
static int reexec_precision(const struct config *c, char **full_argv)
{
	char bin[4096];
	struct vb_error err = {0};
	if (getenv("VAEBENCH_PRECISION_REEXEC")) {
		fprintf(stderr, "vaebench: train.precision = %s: this binary "
			"(%s) was started by its sibling for it and does not "
			"compute it either (binaries renamed?)\n",
			config_enum_name("train.precision",
					 c->train.precision),
			VB_REAL_NAME);
		return 2;
	}
	if (sweep_sibling_binary(c->train.precision, bin, sizeof bin, &err))
		return fail_code(&err, 2);
	setenv("VAEBENCH_PRECISION_REEXEC", "1", 1);
	full_argv[0] = bin;
	fflush(NULL);
	execv(bin, full_argv);
	fprintf(stderr, "vaebench: cannot run %s: %s\n", bin, strerror(errno));
	return 1;
}

static void on_stop_signal(int sig)
{
	(void)sig;
	train_request_stop();
}

/* SIGINT and SIGTERM end the run cleanly after its current step (a second
 * one kills as usual: SA_RESETHAND). */
static void catch_stop_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop_signal;
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* train --resume DIR: DIR is the run folder its config.ini names (the
 * run writes to run.out_dir/run.name). 0 or an exit code. */
static int check_resume_dir(const struct main_options *o,
			    const struct config *c)
{
	struct stat a, b;
	char dir[2200];
	snprintf(dir, sizeof dir, "%s/%s", c->run.out_dir, c->run.name);
	if (!files_exists(o->resume_config)) {
		fprintf(stderr, "vaebench: train --resume %s: not a run folder "
			"(no config.ini)\n", o->resume);
		return 3;
	}
	if (stat(o->resume, &a) != 0 || stat(dir, &b) != 0 ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		fprintf(stderr, "vaebench: train --resume %s: its config.ini "
			"writes to %s (run.out_dir/run.name); run it from the "
			"folder it was started in\n", o->resume, dir);
		return 2;
	}
	return 0;
}

/* train --resume DIR --epochs N: a run goes on to more epochs only when
 * nothing in it depends on its length. 0 or an exit code. */
static int check_extend(const struct main_options *o, const struct config *c)
{
	struct vb_error err = {0};
	if (resume_check_extend(c, &err) == VB_OK)
		return 0;
	fprintf(stderr, "vaebench: train --resume %s --epochs %ld: %s\n",
		o->resume, o->epochs, err.msg);
	return 2;
}

/* The run folder before training: --resume's made ready (with --epochs,
 * its config.ini says the new length), a new run's claimed. */
static enum vb_status prepare_folder(const struct main_options *o,
				     struct config *c,
				     struct train_summary *prev, char *ckpt,
				     size_t cap, struct train_options *to,
				     struct vb_error *err)
{
	char dir[2200];
	enum vb_status st;
	if (!o->resume) {
		snprintf(dir, sizeof dir, "%s/%s", c->run.out_dir,
			 c->run.name);
		return train_claim_dir(dir, o->force, err);
	}
	st = resume_prepare(o->resume, o->epochs, ckpt, cap, prev, err);
	if (st == VB_OK && o->epochs) {
		c->train.epochs = o->epochs;
		st = config_write_file(c, o->resume_config, err);
	}
	to->resume = ckpt;
	to->continue_run = true;
	return st;
}

static int cmd_train(int argc, char **argv, char **full_argv)
{
	struct main_options o;
	struct config c;
	struct train_data d;
	struct train_summary s;
	struct vb_error err = {0};
	enum vb_status st;
	struct train_summary prev;
	struct train_options to = {0};
	char ckpt[1200];
	int rc = parse_common(argc, argv, &o, TRAIN_HELP, false, true);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (o.epochs && !o.resume)
		return usage_error("%s: --epochs N goes with --resume RUN_DIR "
				   "(a new run sets train.epochs)", "train");
	if (o.resume && (o.config || o.n_sets || o.force))
		return usage_error("%s: --resume continues the run with its "
				   "own config.ini; no --config, --set, --out, "
				   "--name or --force with it", "train");
	if (o.resume)
		snprintf(o.resume_config, sizeof o.resume_config,
			 "%s/config.ini", o.resume);
	if (o.resume && files_exists(o.resume_config))
		o.config = o.resume_config;
	st = resolve(&o, &c, &err);
	if (st) /* a missing config file is a usage error too */
		return fail_code(&err, 2);
	if (o.resume && (rc = check_resume_dir(&o, &c)) != 0)
		return rc;
	if (o.epochs && (rc = check_extend(&o, &c)) != 0)
		return rc;
	if (!sweep_precision_here(c.train.precision))
		return reexec_precision(&c, full_argv);
	op_set_threads((int)c.train.blas_threads);
	st = train_data_load(&c, &d, &err);
	if (st) /* a missing data file is a data error */
		return fail_code(&err, st == VB_ERR_IO ? 3 : exit_code(st));
	st = prepare_folder(&o, &c, &prev, ckpt, sizeof ckpt, &to, &err);
	if (st) {
		train_data_free(&d);
		return fail(&err);
	}
	catch_stop_signals();
	if (!o.quiet)
		fprintf(stderr, "vaebench: %s, %zu train / %zu eval images, "
			"BLAS %s, %d thread(s), run folder %s/%s\n",
			config_enum_name("model.kind", c.model.kind), d.train.n,
			d.eval.n, op_blas_core(), op_threads(),
			c.run.out_dir, c.run.name);
	st = train_run_continue(&c, &d, &to, o.resume ? &prev : NULL, &s,
				o.quiet ? NULL : stderr, &err);
	train_data_free(&d);
	if (st)
		return fail(&err);
	train_summary_header(stdout);
	train_summary_row(stdout, &c, &s);
	if (s.interrupted)
		fprintf(stderr, "vaebench: interrupted after epoch %ld; %s "
			"%s\n", s.epochs_done,
			c.run.checkpoint_every > 0 || c.guard.replay
				? "'vaebench train --resume' continues"
				: "no resume checkpoints (run.checkpoint_every "
				  "= 0, guard.replay = false): --force reruns",
			s.run_dir);
	return 0;
}

/* path has a [sweep] or [mitigations] section line. */
static bool has_sweep_sections(const char *path)
{
	char line[512];
	bool found = false;
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof line, f)) {
		const char *t = line + strspn(line, " \t");
		found = !strncmp(t, "[sweep]", 7) ||
			!strncmp(t, "[mitigations]", 13);
	}
	fclose(f);
	return found;
}

static int cmd_config(int argc, char **argv)
{
	struct main_options o;
	struct config c;
	struct vb_error err = {0};
	int rc = parse_common(argc, argv, &o, CONFIG_HELP, true, false);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (o.keys) {
		for (size_t i = 0; i < config_key_count(); i++) {
			char buf[CONFIG_VALUE_LEN];
			config_defaults(&c);
			config_get_at(&c, i, buf, sizeof buf, NULL);
			printf("%-24s %-12s %s", config_key_name(i), buf,
			       config_key_help(i));
			for (int v = 0; config_key_value(i, v); v++)
				printf("%s%s", v ? "|" : " (values: ",
				       config_key_value(i, v));
			puts(config_key_value(i, 0) ? ")" : "");
		}
		return 0;
	}
	if (o.config && has_sweep_sections(o.config)) {
		/* A sweep file: its base config (every section but [sweep]
		 * and [mitigations], which the sweep command expands). */
		struct sweep_plan *p = NULL;
		if (sweep_plan_load(o.config, &p, &err))
			return fail_code(&err, 2);
		c = p->base;
		sweep_plan_free(p);
		fprintf(stderr, "vaebench: config: %s is a sweep file; its "
			"[sweep] / [mitigations] sections are skipped here "
			"(the base config follows; 'vaebench sweep %s' runs "
			"the grid)\n", o.config, o.config);
		for (int i = 0; i < o.n_sets; i++)
			if (config_set(&c, o.sets[i], &err))
				return fail_code(&err, 2);
		if (config_validate(&c, &err))
			return fail_code(&err, 2);
	} else if (resolve(&o, &c, &err)) {
		return fail_code(&err, 2);
	}
	if (config_write(&c, stdout, &err))
		return fail(&err);
	return 0;
}

static const char *SWEEP_HELP =
	"usage: vaebench sweep CONFIG --out DIR [--jobs N] [--shard K/N]\n"
	"                      [--map KEY_X,KEY_Y] [-q]\n"
	"\n"
	"Runs every cell of the grid that CONFIG's [sweep] and [mitigations]\n"
	"sections span over the base config (its other sections), each in a\n"
	"worker process with single-threaded BLAS, the dataset loaded once and\n"
	"shared. Axes, one a line: 'optim.lr = 1e-4, 1e-3, 1e-2',\n"
	"'train.seed = 1..5' (or A..B:S), 'optim.lr = logspace(1e-4, 1e1, 6)',\n"
	"'x = linspace(A, B, N)'. Mitigations, one a line, each a bundle of\n"
	"settings over the base: 'NAME = section.key=value section.key=value'\n"
	"(whitespace-separated; 'baseline =' is the base config itself), e.g.\n"
	"  [mitigations]\n"
	"  baseline =\n"
	"  clip = optim.clip=norm optim.clip_max=5\n"
	"  low_lr = optim.lr=1e-4\n"
	"Names are [A-Za-z0-9._-]+ and unique; a key may not be an axis too, and\n"
	"two mitigations may not give the same settings. The grid is the\n"
	"mitigations (outermost, file order) times the axes. Bad axes or\n"
	"mitigations are refused (FILE:LINE) before anything runs. Cell i of\n"
	"the grid gets an id hashed from its non-default settings (not the\n"
	"mitigation's name: a baseline x seeds grid has the ids of the plain\n"
	"seeds sweep); its run folder is DIR/runs/ID and its row\n"
	"DIR/rows/ID.csv (written atomically), with the columns mitigation and\n"
	"eval_losses (per epoch, ';'-separated). A cell whose train.precision\n"
	"this binary does not compute (f64 here in vaebench, f32/f16/bf16 in\n"
	"vaebench-f64) runs in the sibling binary next to this one, so one\n"
	"sweep mixes f32 and f64 cells. Running again into DIR runs only the\n"
	"missing cells; a cell a stopped sweep left part way (its run folder\n"
	"with the cell's config.ini and a resume checkpoint:\n"
	"run.checkpoint_every > 0 or guard.replay) goes on from its last\n"
	"epoch, as train --resume would (--fresh: from the start). At the end: DIR/results.csv, summary.md (with a\n"
	"Mitigations table: NaN share, first-NaN epoch, final/best eval loss,\n"
	"eval loss at the last evaluated epoch every baseline run completed, time per\n"
	"epoch vs the baseline), mitigations.csv and mitigations.png (with\n"
	"[mitigations]), machine.json, stability_map.png, loss_curves.png,\n"
	"grad_norm.png.\n"
	"\n"
	"options:\n"
	"  --out DIR          sweep folder (required)\n"
	"  -j, --jobs N       worker processes (default: the online CPUs)\n"
	"  --shard K/N        run only cells with index % N == K-1 (clusters)\n"
	"  --map X,Y          stability map axes (default optim.lr,train.batch)\n"
	"  --order ORDER      grid (default: mitigation by mitigation) or\n"
	"                     seeds-first (every mitigation at each axis point\n"
	"                     in turn); only the run order changes\n"
	"  --continue-from SRC  each cell continues SRC's run of the same\n"
	"                     settings but fewer train.epochs (a sweep folder\n"
	"                     whose runs/ holds them): the cell's run is that\n"
	"                     folder copied and trained on (train --resume\n"
	"                     --epochs), its row that of a fresh longer run\n"
	"  --only NAME,...    run only the cells of these mitigations\n"
	"  --fresh            rerun cells a stopped sweep left part way from\n"
	"                     the start instead of resuming them\n"
	"  --cell INDEX       run only cell INDEX (if it has no row), no tables\n"
	"                     (how the sibling binary is started)\n"
	"  -q, --quiet        no progress output\n";

static const char *MERGE_HELP =
	"usage: vaebench merge OUT DIR1 DIR2 ...\n"
	"\n"
	"Joins sweep folders (e.g. the shards of one sweep) into OUT: one row\n"
	"per cell id in OUT/rows and OUT/results.csv, run folders linked into\n"
	"OUT/runs, then summary.md and the plots as 'vaebench report OUT'.\n";

static const char *REPORT_HELP =
	"usage: vaebench report DIR [--map KEY_X,KEY_Y] [--counterfactual "
	"[--jobs N]\n"
	"                  [--only MITIGATION,...] [counterfactual options]]\n"
	"\n"
	"Rebuilds DIR/results.csv (from DIR/rows when present), summary.md,\n"
	"stability_map.png, loss_curves.png and grad_norm.png from the rows and\n"
	"the run folders' metrics.csv. A folder of 'sweep --continue-from SRC'\n"
	"names SRC in DIR/continued_from.txt (a path relative to DIR); its runs\n"
	"are then judged \"learned\" against SRC's baseline.\n"
	"--counterfactual runs 'vaebench counterfactual' (its options --try,\n"
	"--set, --window, --horizon, --eval-n, --nll-samples, --no-lead pass\n"
	"through; default options otherwise) on every NaN/Inf run (of the\n"
	"mitigations --only names), --jobs N at a time (forked; default 1),\n"
	"skipping runs already done, and adds \"Fixes at the failure point\"\n"
	"(fixes.md, fixes.csv) to summary.md.\n";

/* Runs a command implemented outside this file: help, then status to an
 * exit code (a missing data file is a data error). */
static int cmd_ext(enum vb_status (*fn)(int, char **, FILE *,
					struct vb_error *),
		   int argc, char **argv, const char *help)
{
	struct vb_error err = {0};
	for (int i = 0; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(help, stdout);
			return 0;
		}
	if (fn(argc, argv, stderr, &err) == VB_OK)
		return 0;
	if (err.status == VB_ERR_USAGE) {
		fprintf(stderr, "vaebench: %s (see --help)\n", err.msg);
		return 2;
	}
	return fail(&err);
}

static const char *CURVES_HELP =
	"usage: vaebench curves OUT.png --col COL[,COL...]\n"
	"                [--x epoch|lr-epochs|steps] [--log-y] [--title TEXT]\n"
	"                [--csv FILE] DIR[:MITIGATION]...\n"
	"\n"
	"Draws one panel per column COL of the per-epoch curves (DIR/runs/ID/\n"
	"metrics.csv, else DIR/curves/ID.csv: eval_sse, grad_norm_median,\n"
	"train_loss, ...) with one line per\n"
	"run of each sweep folder DIR (of MITIGATION only, when given), a\n"
	"colour per DIR[:MITIGATION], the first NaN epoch marked; at most 8\n"
	"series and 4 columns. --x lr-epochs puts the runs on epoch x optim.lr\n"
	"/ the largest optim.lr among them (log scale): a run at a tenth of the\n"
	"rate that follows the same path ten times slower lines up with the\n"
	"faster one. --x steps puts them on the optimizer steps at each\n"
	"epoch's end (log scale; the first NaN marked at its step): runs of\n"
	"different batch sizes or data sizes line up by updates taken. --csv\n"
	"FILE writes the points drawn.\n";

static const char *REPLAY_HELP =
	"usage: vaebench replay RUN_DIR [--step S] [--anomaly] [--dump FILE]\n"
	"                       [--reset-optimizer] [-q]\n"
	"\n"
	"Resumes RUN_DIR from its last checkpoint before step S (default: the\n"
	"run's first non-finite event, else its last step) and reruns to S.\n"
	"Reports whether the same first event appears at the same step and\n"
	"whether the end state equals RUN_DIR/checkpoint.safetensors bit for\n"
	"bit. The replay's end state goes to RUN_DIR/replay/.\n"
	"\n"
	"options:\n"
	"  --step S           replay up to optimizer step S\n"
	"  --anomaly          anomaly mode: name the origin op, node, phase, cause\n"
	"  --dump FILE        safetensors of step S: batch indices and pixels,\n"
	"                     every random draw (draw:*), every node (node:*),\n"
	"                     parameters before the update and their gradients\n"
	"  --reset-optimizer  zero the Adam moments and step after loading\n"
	"                     (shows what a resume without them changes)\n"
	"  -q, --quiet        no progress output\n";

static const char *COUNTERFACTUAL_HELP =
	"usage: vaebench counterfactual RUN_DIR [--try NAME ...] "
	"[--set k=v ...]\n"
	"       [--mitigations FILE] [--window W] [--horizon H] "
	"[--eval-n N]\n"
	"       [--nll-samples K] [--no-lead] [-q]\n"
	"\n"
	"Reruns a failed run from its state shortly before its first "
	"non-finite\n"
	"event (the last resume checkpoint at or before min(event - W, lead "
	"step - 1),\n"
	"bridged to that step unchanged when the checkpoint is earlier) to "
	"the\n"
	"event's step + H, once unchanged (it must reproduce the event bit "
	"for bit,\n"
	"else exit code 1) and once per mitigation, every variant with the "
	"same\n"
	"batches and random draws, in anomaly mode. Writes "
	"RUN_DIR/counterfactual/:\n"
	"verdict.csv, verdict.md, curves.csv, times.csv, "
	"counterfactual.png.\n"
	"\n"
	"  --try NAME         a built-in mitigation (h-grad-clip, clip-norm, "
	"clip-value,\n"
	"                     clip-adaptive, lr-div10, adam-eps, "
	"skip-nonfinite,\n"
	"                     logvar-clamp, diag-softplus, loss-scale, f64), "
	"'all', a\n"
	"                     [mitigations] name, 'mitigations' (the whole "
	"bundle) or\n"
	"                     k=v[,k=v]; f64 runs in vaebench-f64 beside this "
	"binary\n"
	"                     from the same checkpoint (refused when it is "
	"missing)\n"
	"  --set k=v          one variant with that setting (as --try k=v)\n"
	"  --mitigations FILE the [mitigations] bundle (default: the sweep "
	"folder's\n"
	"                     sweep.ini when RUN_DIR is DIR/runs/ID)\n"
	"  --window W         start at least W steps before the event "
	"(16)\n"
	"  --no-lead          ignore the run's lead step (default: start "
	"before it)\n"
	"  --horizon H        run to the event's step + H (default: one "
	"epoch)\n"
	"  --eval-n N         held-out images for recon error and IS-NLL "
	"(256)\n"
	"  --nll-samples K    importance samples per image (16)\n"
	"  -q, --quiet        no progress on stderr\n"
	"\n"
	"Without --try: the bundle when there is one, else all. Settings "
	"that cannot\n"
	"change mid-run (train.batch, model.*, data.*, ...) are refused with "
	"the reason.\n";

static int cmd_replay(int argc, char **argv)
{
	struct replay_request q;
	struct replay_report rep;
	struct vb_error err = {0};
	bool quiet = false;
	memset(&q, 0, sizeof q);
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(REPLAY_HELP, stdout);
			return 0;
		} else if (!strcmp(a, "--step") || !strcmp(a, "--dump")) {
			char *end;
			if (i + 1 >= argc)
				return usage_error("%s needs a value", a);
			if (!strcmp(a, "--dump")) {
				q.dump = argv[++i];
				continue;
			}
			errno = 0;
			q.step = strtol(argv[++i], &end, 10);
			if (errno || *end || q.step < 1)
				return usage_error("--step %s: expected a step "
						   ">= 1", argv[i]);
		} else if (!strcmp(a, "--anomaly")) {
			q.anomaly = true;
		} else if (!strcmp(a, "--reset-optimizer")) {
			q.reset_optimizer = true;
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			quiet = true;
		} else if (a[0] == '-' || q.run_dir) {
			return usage_error("unexpected argument '%s'", a);
		} else {
			q.run_dir = a;
		}
	}
	if (!q.run_dir)
		return usage_error("%s", "replay needs RUN_DIR");
	if (replay_run(&q, &rep, quiet ? NULL : stderr, &err))
		return fail_code(&err, err.status == VB_ERR_IO ? 3
							       : exit_code(err.status));
	replay_print(stdout, &q, &rep);
	return 0;
}

static int cmd_version(void)
{
	const char *chose = getenv("VAEBENCH_BLAS_REEXEC");
	printf("vaebench (%s build)\nBLAS: OpenBLAS, kernel %s, %d thread(s)",
	       VB_REAL_NAME, op_blas_core(), op_blas_threads());
	if (chose && strcasecmp(chose, op_blas_core()) != 0)
		printf(" (pinned by ISA class; the library chose %s)", chose);
	putchar('\n');
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd;
	fix_blas_core(argv);
	if (!getenv("OPENBLAS_NUM_THREADS"))
		op_set_threads(1); /* OpenBLAS, oneDNN's OpenMP, core's loops */
	if (argc < 2) {
		fputs(MAIN_HELP, stderr);
		return 2;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") ||
	    !strcmp(cmd, "help")) {
		fputs(MAIN_HELP, stdout);
		return 0;
	}
	if (!strcmp(cmd, "train"))
		return cmd_train(argc - 2, argv + 2, argv);
	if (!strcmp(cmd, "config"))
		return cmd_config(argc - 2, argv + 2);
	if (!strcmp(cmd, "sweep"))
#ifdef VB_HAVE_MPI
		return cmd_ext(mpi_sweep_command, argc - 2, argv + 2,
			       SWEEP_HELP);
#else
		return cmd_ext(cli_sweep_command, argc - 2, argv + 2, SWEEP_HELP);
#endif
	if (!strcmp(cmd, "merge"))
		return cmd_ext(cli_merge_command, argc - 2, argv + 2,
			       MERGE_HELP);
	if (!strcmp(cmd, "report"))
		return cmd_ext(cli_report_command, argc - 2, argv + 2,
			       REPORT_HELP);
	if (!strcmp(cmd, "curves"))
		return cmd_ext(curves_command, argc - 2, argv + 2,
			       CURVES_HELP);
	if (!strcmp(cmd, "replay"))
		return cmd_replay(argc - 2, argv + 2);
	if (!strcmp(cmd, "counterfactual"))
		return cmd_ext(counterfactual_command, argc - 2, argv + 2,
			       COUNTERFACTUAL_HELP);
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version"))
		return cmd_version();
	return usage_error("unknown command '%s'", cmd);
}
