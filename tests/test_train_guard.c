/* test_train_guard: the cheap guard in the training loop (float build):
 * injected NaNs caught at the right step and phase (strict and pythae
 * modes), skipping non-finite batches, a huge learning rate; bad input
 * reported in one line and the CLI's exit codes. */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchutil.h"
#include "checkpoint.h"
#include "config.h"
#include "graph.h"
#include "heldout.h"
#include "model.h"
#include "params.h"
#include "rng.h"
#include "runconfig.h"
#include "testutil.h"
#include "train.h"

/* A run with a NaN injected at step in phase, train.nan_check check and
 * model.recon recon. */
static void inject_recon(const char *phase, const char *check, int step,
			 const char *recon, struct train_summary *s)
{
	struct config c;
	char buf[64];
	bu_train_config(&c, tu_tmpdir("inj"), "run");
	snprintf(buf, sizeof buf, "inject.nan_step=%d", step);
	bu_set(&c, buf);
	bu_set_key(&c, "inject.nan_phase", phase);
	bu_set_key(&c, "train.nan_check", check);
	bu_set_key(&c, "model.recon", recon);
	bu_run(&c, NULL, s);
}

/* inject_recon with bce (test_train's runs). */
static void inject(const char *phase, const char *check, int step,
		   struct train_summary *s)
{
	inject_recon(phase, check, step, "bce", s);
}

/* A strict-mode NaN injected at step in phase stops the run at an event
 * of that step, guard phase and quantity. */
static void expect_stop(const char *phase, int step, enum guard_phase gp,
			const char *quantity, struct train_summary *s)
{
	inject(phase, "strict", step, s);
	ck_assert_int_eq(s->status, GUARD_STATUS_NAN);
	ck_assert(s->first.set);
	ck_assert_int_eq(s->first.step, step);
	ck_assert_int_eq(s->first.phase, gp);
	ck_assert_str_eq(s->first.quantity, quantity);
}

START_TEST(test_guard_input)
{
	struct train_summary s;
	/* epoch 2 (8 steps per epoch) */
	expect_stop("input", 11, GUARD_PHASE_INPUT, "input", &s);
	ck_assert_int_eq(s.first.epoch, 2);
	ck_assert_int_eq(s.steps, 10);
	/* a run that stopped at a NaN draws no pictures */
	char path[1300];
	snprintf(path, sizeof path, "%s/samples.png", s.run_dir);
	ck_assert_ptr_null(tu_read_file(path, NULL));
}
END_TEST

START_TEST(test_guard_param)
{
	struct train_summary s;
	expect_stop("param", 3, GUARD_PHASE_FORWARD, "loss", &s);
}
END_TEST

START_TEST(test_guard_grad)
{
	struct train_summary s;
	expect_stop("grad", 5, GUARD_PHASE_BACKWARD, "grad_norm", &s);
}
END_TEST

START_TEST(test_guard_pythae)
{
	struct train_summary s;
	/* pythae tests the running loss sum after the update: same step,
	 * phase update, its message (mse: no argument validation fires). */
	/* model.recon = mse: pythae's VAE with mse calls no distribution,
	 * so only its loss check can fire */
	inject_recon("input", "pythae", 4, "mse", &s);
	ck_assert_int_eq(s.status, GUARD_STATUS_NAN);
	ck_assert_int_eq(s.first.step, 4);
	ck_assert_int_eq(s.first.phase, GUARD_PHASE_UPDATE);
	ck_assert_str_eq(s.first.quantity, "train_loss_sum");
	ck_assert_str_eq(s.message, "NaN detected in train loss");
	ck_assert_str_eq(s.pythae_error, "nan_loss");
	ck_assert_int_eq(s.steps, 4);
}
END_TEST

START_TEST(test_guard_pythae_bce)
{
	struct train_summary s;
	/* with bce, the NaN pixel makes the decoder output NaN, and
	 * F.binary_cross_entropy raises its RuntimeError inside the forward
	 * of that step, before its backward and update. */
	inject("input", "pythae", 4, &s);
	ck_assert_int_eq(s.status, GUARD_STATUS_NAN);
	ck_assert_int_eq(s.first.step, 4);
	ck_assert_int_eq(s.first.phase, GUARD_PHASE_FORWARD);
	ck_assert_msg(!strncmp(s.first.quantity, "RuntimeError:", 13), "%s",
		      s.first.quantity);
	ck_assert_msg(strstr(s.message, "all elements of input should be "
				"between 0 and 1") != NULL, "%s", s.message);
	ck_assert_str_eq(s.pythae_error, "runtime_error");
	ck_assert_int_eq(s.steps, 4);
}
END_TEST

START_TEST(test_skip_nonfinite)
{
	/* train.skip_nonfinite: the batch with the NaN gradient gets no
	 * update, the run finishes every epoch with finite weights, and the
	 * event is still recorded. */
	struct config c;
	struct train_summary s;
	bu_train_config(&c, tu_tmpdir("skip"), "run");
	BU_SET(&c, "inject.nan_step=5", "inject.nan_phase=grad",
		"train.skip_nonfinite=true");
	bu_run(&c, NULL, &s);
	ck_assert_int_eq(s.status, GUARD_STATUS_OK);
	ck_assert_int_eq(s.skipped, 1);
	ck_assert(s.first.set);
	ck_assert_int_eq(s.first.step, 5);
	ck_assert_int_eq(s.first.phase, GUARD_PHASE_BACKWARD);
	ck_assert_int_eq(s.epochs_done, 3);
	ck_assert_int_eq(s.steps, 24);
	ck_assert(isfinite(s.final_eval_loss));
}
END_TEST

START_TEST(test_guard_huge_lr)
{
	struct config c;
	struct train_summary s;
	bu_train_config(&c, tu_tmpdir("lr"), "run");
	BU_SET(&c, "optim.kind=sgd", "optim.lr=1e12");
	bu_run(&c, NULL, &s);
	ck_assert_msg(s.status == GUARD_STATUS_NAN ||
			      s.status == GUARD_STATUS_INF,
		      "status %d", s.status);
	ck_assert(s.first.set);
	ck_assert(s.first.step >= 1 && s.first.step <= 24);
	char *row = bu_read_run_file(&s, "summary.csv");
	ck_assert_ptr_nonnull(strstr(row, guard_status_name(s.status)));
	free(row);
}
END_TEST

/* Runs the vaebench binary with a shell command line; returns its exit
 * status. */
static int cli(const char *args)
{
	const char *bin = getenv("VB_BIN");
	char cmd[4096];
	ck_assert_msg(bin && *bin, "VB_BIN is not set (run through ctest)");
	snprintf(cmd, sizeof cmd, "%s %s >/dev/null 2>&1", bin, args);
	int st = system(cmd);
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

START_TEST(test_cli_exit_codes)
{
	const char *dir = tu_tmpdir("cli");
	char args[2048];
	ck_assert_int_eq(cli("--help"), 0);
	ck_assert_int_eq(cli("train --help"), 0);
	ck_assert_int_eq(cli(""), 2);
	ck_assert_int_eq(cli("frobnicate"), 2);
	ck_assert_int_eq(cli("train --bogus"), 2);
	ck_assert_int_eq(cli("train --set model.nope=1"), 2);
	ck_assert_int_eq(cli("train --set train.batch=0"), 2);
	ck_assert_int_eq(cli("train --set optim.lr=abc"), 2);
	ck_assert_int_eq(cli("train --config /nonexistent.ini"), 2);
	snprintf(args, sizeof args,
		 "train --set data.dir=%s --out %s -q", dir, dir);
	ck_assert_int_eq(cli(args), 3); /* no MNIST files there */
	/* a truncated IDX file is bad data: exit 3 */
	ck_assert(tu_write_file(tu_path(dir, "train-images-idx3-ubyte"),
				"\0\0\x08\x03\0\0\0\x02", 8) == 0);
	ck_assert(tu_write_file(tu_path(dir, "train-labels-idx1-ubyte"),
				"\0\0\x08\x01\0\0\0\x02\x01\x02", 10) == 0);
	ck_assert_int_eq(cli(args), 3);
	/* a run that hits NaN is a result: exit 0 */
	snprintf(args, sizeof args,
		 "train --set data.dataset=synthetic --set data.synthetic_n=64 "
		 "--set data.synthetic_eval_n=32 --set model.hidden=16 "
		 "--set train.batch=16 --set train.epochs=1 "
		 "--set inject.nan_step=2 --out %s --name nan -q", dir);
	ck_assert_int_eq(cli(args), 0);
	char path[1300];
	snprintf(path, sizeof path, "%s/nan/summary.csv", dir);
	char *row = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(row);
	ck_assert_ptr_nonnull(strstr(row, ",nan,1,2,input,input,"));
	free(row);
}
END_TEST

/* Runs the vaebench binary with args (after a shell prefix such as a
 * ulimit); returns its exit status, its stderr in *errtext (malloc'd). */
static int cli_err(const char *prefix, const char *args, char **errtext)
{
	const char *bin = getenv("VB_BIN");
	const char *dir = tu_tmpdir("clierr");
	char cmd[4096];
	ck_assert_msg(bin && *bin, "VB_BIN is not set (run through ctest)");
	snprintf(cmd, sizeof cmd, "%s %s %s >/dev/null 2>%s/err.txt", prefix,
		 bin, args, dir);
	int st = system(cmd);
	ck_assert(WIFEXITED(st));
	*errtext = tu_read_file(tu_path(dir, "err.txt"), NULL);
	ck_assert_ptr_nonnull(*errtext);
	return WEXITSTATUS(st);
}

static size_t count_lines(const char *t)
{
	size_t n = 0;
	for (; *t; t++)
		n += *t == '\n';
	return n;
}

/* issue 17 item 10: sizes and folders a command cannot use are refused
 * with one line naming what, before anything is written. */
START_TEST(test_bad_input_one_line)
{
	const char *dir = tu_tmpdir("badin");
	char args[2048], path[1300], *e = NULL;
	/* a train.batch larger than the data sizes nothing by it: runs */
	snprintf(args, sizeof args,
		 "train --set data.dataset=synthetic --set data.synthetic_n=64 "
		 "--set data.synthetic_eval_n=32 --set model.hidden=16 "
		 "--set train.batch=100000000 --set train.epochs=1 "
		 "--out %s --name big -q", dir);
	ck_assert_int_eq(cli_err("", args, &e), 0);
	free(e);
#if !defined(__SANITIZE_ADDRESS__)
	/* one that cannot be allocated: a config error naming train.batch,
	 * and no run folder */
	snprintf(args, sizeof args,
		 "train --set data.dataset=synthetic --set data.synthetic_n=20000 "
		 "--set train.batch=100000000 --out %s --name huge -q", dir);
	ck_assert_int_eq(cli_err("ulimit -v 1500000;", args, &e), 2);
	ck_assert_msg(strstr(e, "train.batch") && count_lines(e) == 1, "%s", e);
	free(e);
	snprintf(path, sizeof path, "%s/huge", dir);
	ck_assert_msg(access(path, F_OK) != 0, "%s was created", path);
#endif
	/* train.shuffle takes the strict booleans only */
	ck_assert_int_eq(cli_err("", "config --set train.shuffle=yes", &e), 2);
	free(e);
	ck_assert_int_eq(cli_err("", "config --set train.shuffle=off", &e), 2);
	free(e);
	ck_assert_int_eq(cli_err("", "config --set train.shuffle=false", &e),
			 0);
	free(e);
	/* replay on a non-run folder, report on an empty one: one line */
	snprintf(args, sizeof args, "replay %s", dir);
	ck_assert_int_eq(cli_err("", args, &e), 2);
	ck_assert_msg(strstr(e, "not a run folder") && count_lines(e) == 1,
		      "%s", e);
	free(e);
	snprintf(args, sizeof args, "report %s", tu_tmpdir("emptyrep"));
	ck_assert_int_eq(cli_err("", args, &e), 2);
	ck_assert_msg(strstr(e, "not a sweep folder") && count_lines(e) == 1,
		      "%s", e);
	free(e);
}
END_TEST

TU_MAIN("train_guard", "guard", 120, test_guard_input, test_guard_param,
	test_guard_grad, test_guard_pythae, test_guard_pythae_bce,
	test_skip_nonfinite, test_guard_huge_lr, test_cli_exit_codes,
	test_bad_input_one_line)
