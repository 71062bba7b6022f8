/* test_train: the training loop end to end on synthetic data (float
 * build): determinism of metrics.csv, the loss going down, the cheap guard
 * catching injected NaNs at the right step and phase (strict and pythae
 * modes), the checkpoint's contents, and the CLI's exit codes. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint.h"
#include "config.h"
#include "rng.h"
#include "testutil.h"
#include "train.h"

static void small_config(struct config *c, const char *dir, const char *name)
{
	struct vb_error err = {0};
	config_defaults(c);
	ck_assert(config_set(c, "data.dataset=synthetic", &err) == VB_OK);
	ck_assert(config_set(c, "data.synthetic_n=256", &err) == VB_OK);
	ck_assert(config_set(c, "data.synthetic_eval_n=64", &err) == VB_OK);
	ck_assert(config_set(c, "model.hidden=32", &err) == VB_OK);
	ck_assert(config_set(c, "model.latent=4", &err) == VB_OK);
	ck_assert(config_set(c, "model.recon=bce", &err) == VB_OK);
	ck_assert(config_set(c, "train.batch=32", &err) == VB_OK);
	ck_assert(config_set(c, "train.epochs=3", &err) == VB_OK);
	ck_assert(config_set(c, "run.progress=off", &err) == VB_OK);
	ck_assert(config_set_key(c, "run.out_dir", dir, &err) == VB_OK);
	ck_assert(config_set_key(c, "run.name", name, &err) == VB_OK);
}

static void run(const struct config *c, struct train_summary *s)
{
	struct train_data d;
	struct vb_error err = {0};
	ck_assert_msg(config_validate(c, &err) == VB_OK, "%s", err.msg);
	ck_assert_msg(train_data_load(c, &d, &err) == VB_OK, "%s", err.msg);
	ck_assert_msg(train_run(c, &d, s, NULL, &err) == VB_OK, "%s", err.msg);
	train_data_free(&d);
}

static char *read_run_file(const struct train_summary *s, const char *f)
{
	char path[1300];
	snprintf(path, sizeof path, "%s/%s", s->run_dir, f);
	char *t = tu_read_file(path, NULL);
	ck_assert_msg(t != NULL, "cannot read %s", path);
	return t;
}

START_TEST(test_determinism)
{
	const char *dir = tu_tmpdir("det");
	char d1[1100], d2[1100];
	struct config c;
	struct train_summary s1, s2;
	snprintf(d1, sizeof d1, "%s/a", dir);
	snprintf(d2, sizeof d2, "%s/b", dir);
	small_config(&c, d1, "run");
	run(&c, &s1);
	small_config(&c, d2, "run");
	run(&c, &s2);
	char *m1 = read_run_file(&s1, "metrics.csv");
	char *m2 = read_run_file(&s2, "metrics.csv");
	ck_assert_str_eq(m1, m2);
	ck_assert_int_eq(s1.status, GUARD_STATUS_OK);
	/* a different seed gives different numbers */
	struct vb_error err = {0};
	snprintf(d2, sizeof d2, "%s/c", dir);
	small_config(&c, d2, "run");
	ck_assert(config_set(&c, "train.seed=9", &err) == VB_OK);
	run(&c, &s2);
	char *m3 = read_run_file(&s2, "metrics.csv");
	ck_assert_str_ne(m1, m3);
	free(m1);
	free(m2);
	free(m3);
}
END_TEST

/* train.eval_every = 2 over 3 epochs: evaluation after epochs 2 and 3
 * only (empty eval columns in epoch 1), training numbers unchanged, and
 * the evaluation noise stream is consumed by fewer evaluations, so only
 * the training columns and which evaluation columns exist are compared. */
START_TEST(test_eval_every)
{
	const char *dir = tu_tmpdir("evalevery");
	char d1[1100], d2[1100];
	struct config c;
	struct train_summary s1, s2;
	struct vb_error err = {0};
	snprintf(d1, sizeof d1, "%s/a", dir);
	snprintf(d2, sizeof d2, "%s/b", dir);
	small_config(&c, d1, "run");
	run(&c, &s1);
	small_config(&c, d2, "run");
	ck_assert(config_set(&c, "train.eval_every=2", &err) == VB_OK);
	run(&c, &s2);
	char *m1 = read_run_file(&s1, "metrics.csv");
	char *m2 = read_run_file(&s2, "metrics.csv");
	char *l1 = m1, *l2 = m2;
	for (int line = 0; line < 4; line++) {
		char *e1 = strchr(l1, '\n'), *e2 = strchr(l2, '\n');
		ck_assert(e1 && e2);
		*e1 = *e2 = 0;
		/* the first six fields (epoch .. train_kl) are training */
		char *p1 = l1, *p2 = l2;
		for (int f = 0; f < 6; f++) {
			p1 = strchr(p1, ',') + 1;
			p2 = strchr(p2, ',') + 1;
		}
		ck_assert_int_eq((int)(p1 - l1), (int)(p2 - l2));
		ck_assert(!strncmp(l1, l2, (size_t)(p1 - l1)));
		if (line == 1)
			ck_assert_msg(!strncmp(p2, ",,,", 3), "epoch 1: %s", l2);
		else if (line > 1)
			ck_assert_msg(p2[0] != ',', "epoch %d: %s", line, l2);
		l1 = e1 + 1;
		l2 = e2 + 1;
	}
	ck_assert_double_eq(s1.final_train_loss, s2.final_train_loss);
	ck_assert(isfinite(s2.final_eval_loss));
	free(m1);
	free(m2);
}
END_TEST

START_TEST(test_loss_goes_down)
{
	struct config c;
	struct train_summary s;
	struct vb_error err = {0};
	small_config(&c, tu_tmpdir("down"), "run");
	ck_assert(config_set(&c, "train.epochs=6", &err) == VB_OK);
	run(&c, &s);
	ck_assert_int_eq(s.status, GUARD_STATUS_OK);
	char *m = read_run_file(&s, "metrics.csv");
	/* first data line: epoch,steps,lr,train_loss,... */
	char *line = strchr(m, '\n') + 1;
	double first = 0;
	ck_assert(sscanf(line, "%*d,%*d,%*[^,],%lf", &first) == 1);
	/* 256 images of 784 pixels: the first epoch starts near 540 nats
	 * (BCE of a sigmoid at 0.5); six epochs must cut the loss by a
	 * clear margin, not by rounding noise. */
	ck_assert_msg(s.final_train_loss < 0.8 * first, "first %g final %g",
		      first, s.final_train_loss);
	ck_assert(isfinite(s.final_eval_loss));
	ck_assert(s.best_eval_loss <= s.final_eval_loss);
	ck_assert_int_eq(s.steps, 6 * 8);
	free(m);
	/* a finished run draws its reconstructions and samples */
	static const char *const pics[2] = {"reconstructions.png",
					    "samples.png"};
	for (int i = 0; i < 2; i++) {
		char *png = read_run_file(&s, pics[i]);
		ck_assert_ptr_nonnull(png);
		ck_assert(!memcmp(png, "\x89PNG", 4));
		free(png);
	}
}
END_TEST

static void inject(const char *phase, const char *check, int step,
		   struct train_summary *s)
{
	struct config c;
	struct vb_error err = {0};
	char buf[64];
	small_config(&c, tu_tmpdir("inj"), "run");
	snprintf(buf, sizeof buf, "inject.nan_step=%d", step);
	ck_assert(config_set(&c, buf, &err) == VB_OK);
	ck_assert(config_set_key(&c, "inject.nan_phase", phase, &err) == VB_OK);
	ck_assert(config_set_key(&c, "train.nan_check", check, &err) == VB_OK);
	run(&c, s);
}

START_TEST(test_guard_input)
{
	struct train_summary s;
	inject("input", "strict", 11, &s); /* epoch 2 (8 steps per epoch) */
	ck_assert_int_eq(s.status, GUARD_STATUS_NAN);
	ck_assert(s.first.set);
	ck_assert_int_eq(s.first.step, 11);
	ck_assert_int_eq(s.first.epoch, 2);
	ck_assert_int_eq(s.first.phase, GUARD_PHASE_INPUT);
	ck_assert_str_eq(s.first.quantity, "input");
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
	inject("param", "strict", 3, &s);
	ck_assert_int_eq(s.status, GUARD_STATUS_NAN);
	ck_assert_int_eq(s.first.step, 3);
	ck_assert_int_eq(s.first.phase, GUARD_PHASE_FORWARD);
	ck_assert_str_eq(s.first.quantity, "loss");
}
END_TEST

START_TEST(test_guard_grad)
{
	struct train_summary s;
	inject("grad", "strict", 5, &s);
	ck_assert_int_eq(s.status, GUARD_STATUS_NAN);
	ck_assert_int_eq(s.first.step, 5);
	ck_assert_int_eq(s.first.phase, GUARD_PHASE_BACKWARD);
	ck_assert_str_eq(s.first.quantity, "grad_norm");
}
END_TEST

START_TEST(test_guard_pythae)
{
	struct train_summary s;
	/* pythae tests the running loss sum after the update: same step,
	 * phase update, its message. */
	inject("input", "pythae", 4, &s);
	ck_assert_int_eq(s.status, GUARD_STATUS_NAN);
	ck_assert_int_eq(s.first.step, 4);
	ck_assert_int_eq(s.first.phase, GUARD_PHASE_UPDATE);
	ck_assert_str_eq(s.first.quantity, "train_loss_sum");
	ck_assert_str_eq(s.message, "NaN detected in train loss");
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
	struct vb_error err = {0};
	small_config(&c, tu_tmpdir("skip"), "run");
	ck_assert(config_set(&c, "inject.nan_step=5", &err) == VB_OK);
	ck_assert(config_set(&c, "inject.nan_phase=grad", &err) == VB_OK);
	ck_assert(config_set(&c, "train.skip_nonfinite=true", &err) == VB_OK);
	run(&c, &s);
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
	struct vb_error err = {0};
	small_config(&c, tu_tmpdir("lr"), "run");
	ck_assert(config_set(&c, "optim.kind=sgd", &err) == VB_OK);
	ck_assert(config_set(&c, "optim.lr=1e12", &err) == VB_OK);
	run(&c, &s);
	ck_assert_msg(s.status == GUARD_STATUS_NAN ||
			      s.status == GUARD_STATUS_INF,
		      "status %d", s.status);
	ck_assert(s.first.set);
	ck_assert(s.first.step >= 1 && s.first.step <= 24);
	char *row = read_run_file(&s, "summary.csv");
	ck_assert_ptr_nonnull(strstr(row, guard_status_name(s.status)));
	free(row);
}
END_TEST

START_TEST(test_checkpoint_contents)
{
	struct config c, back;
	struct train_summary s;
	struct checkpoint *ck = NULL;
	struct vb_error err = {0};
	int64_t step = -1;
	small_config(&c, tu_tmpdir("ck"), "run");
	run(&c, &s);
	char path[1300];
	snprintf(path, sizeof path, "%s/checkpoint.safetensors", s.run_dir);
	ck_assert_msg(checkpoint_open(path, &ck, &err) == VB_OK, "%s", err.msg);
	ck_assert_ptr_nonnull(checkpoint_data(ck, "encoder.layers.0.0.weight"));
	ck_assert_ptr_nonnull(checkpoint_data(ck, "decoder.layers.1.0.bias"));
	ck_assert_ptr_nonnull(
		checkpoint_data(ck, "optimizer.exp_avg.encoder.log_var.weight"));
	ck_assert_ptr_nonnull(checkpoint_data(
		ck, "optimizer.exp_avg_sq.decoder.layers.0.0.weight"));
	ck_assert(checkpoint_read_raw(ck, "trainer.step", CHECKPOINT_I64, 1,
				      &step, &err) == VB_OK);
	ck_assert_int_eq(step, s.steps);
	ck_assert_ptr_nonnull(checkpoint_data(ck, "trainer.rng_state"));
	/* the config in the metadata loads back to the same settings */
	const char *text = checkpoint_meta(ck, "config");
	ck_assert_ptr_nonnull(text);
	const char *dir = tu_tmpdir("ckcfg");
	ck_assert(tu_write_file(tu_path(dir, "c.ini"), text, strlen(text)) == 0);
	config_defaults(&back);
	ck_assert_msg(config_load_file(&back, tu_path(dir, "c.ini"), &err) ==
			      VB_OK,
		      "%s", err.msg);
	for (size_t i = 0; i < config_key_count(); i++) {
		char a[CONFIG_VALUE_LEN], b[CONFIG_VALUE_LEN];
		config_get_at(&c, i, a, sizeof a, NULL);
		config_get_at(&back, i, b, sizeof b, NULL);
		ck_assert_str_eq(a, b);
	}
	checkpoint_close(ck);
}
END_TEST

/* Overwrites the first len bytes of tensor name's data in the
 * safetensors file path (8-byte header length, JSON header with
 * "name":{..."data_offsets":[begin,end]}, data). */
static void patch_tensor(const char *path, const char *name, const void *v,
			 size_t len)
{
	size_t n = 0;
	char *t = tu_read_file(path, &n), key[200];
	uint64_t hlen = 0;
	ck_assert_ptr_nonnull(t);
	for (int i = 0; i < 8; i++)
		hlen |= (uint64_t)(unsigned char)t[i] << (8 * i);
	snprintf(key, sizeof key, "\"%s\"", name);
	char *at = strstr(t + 8, key);
	ck_assert_msg(at && (uint64_t)(at - t) < 8 + hlen, "no %s", name);
	char *off = strstr(at, "\"data_offsets\":[");
	ck_assert_ptr_nonnull(off);
	size_t begin = strtoull(off + strlen("\"data_offsets\":["), NULL, 10);
	ck_assert(8 + hlen + begin + len <= n);
	memcpy(t + 8 + hlen + begin, v, len);
	ck_assert(tu_write_file(path, t, n) == 0);
	free(t);
}

/* Resumes c's run from checkpoint ck; returns the status, err set. */
static enum vb_status resume_from(const struct config *c, const char *ck,
				  struct vb_error *err)
{
	struct train_data d;
	struct train_summary s;
	struct train_options o = {0};
	enum vb_status st;
	o.resume = ck;
	o.replay = true;
	ck_assert(train_data_load(c, &d, err) == VB_OK);
	st = train_run_opts(c, &d, &o, &s, NULL, err);
	train_data_free(&d);
	return st;
}

/* issue 17 item 9: crafted resume checkpoints are refused with one line
 * naming the value, never a hang (all-zero RNG) or an overflow
 * (INT64_MAX epoch or optimiser step). */
START_TEST(test_resume_checkpoint_validated)
{
	struct config c;
	struct train_summary s;
	struct vb_error err = {0};
	const char *dir = tu_tmpdir("ckbad");
	char ck[1300], bad[1300];
	uint64_t zero[RNG_STATE_WORDS * 3] = {0};
	int64_t big = INT64_MAX, neg = -1, huge_batch = 1000;
	struct {
		const char *tensor, *expect;
		const void *v;
		size_t len;
	} cases[] = {
		{"trainer.rng_state", "all-zero", zero, sizeof zero},
		{"trainer.epoch", "trainer.epoch", &big, 8},
		{"trainer.step", "trainer.step", &neg, 8},
		{"optimizer.step", "optimizer.step", &big, 8},
		{"trainer.batch", "trainer.batch", &huge_batch, 8},
	};
	small_config(&c, dir, "run");
	ck_assert(config_set(&c, "run.checkpoint_every=3", &err) == VB_OK);
	ck_assert(config_set(&c, "train.max_steps=4", &err) == VB_OK);
	run(&c, &s);
	/* step 3 of 8 per epoch: a mid-epoch checkpoint with trainer.batch */
	snprintf(ck, sizeof ck, "%s/checkpoints/step-000000003.safetensors",
		 s.run_dir);
	ck_assert_msg(resume_from(&c, ck, &err) == VB_OK, "%s", err.msg);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct vb_error e = {0};
		char *t;
		size_t n = 0;
		snprintf(bad, sizeof bad, "%s/bad%zu.safetensors", dir, i);
		t = tu_read_file(ck, &n);
		ck_assert(tu_write_file(bad, t, n) == 0);
		free(t);
		patch_tensor(bad, cases[i].tensor, cases[i].v, cases[i].len);
		ck_assert_int_eq(resume_from(&c, bad, &e), VB_ERR_DATA);
		ck_assert_msg(strstr(e.msg, cases[i].expect), "%s: %s",
			      cases[i].tensor, e.msg);
	}
}
END_TEST

/* issue 17 item 5: an RHVAE run resumed from a mid-epoch checkpoint keeps
 * the epoch's buffered batches, so the epoch's metric (M, centroids) and
 * the whole end state are the uninterrupted run's, byte for byte. */
START_TEST(test_rhvae_mid_epoch_resume)
{
	struct config c;
	struct train_summary s, rs;
	struct train_data d;
	struct train_options o = {0};
	struct vb_error err = {0};
	const char *dir = tu_tmpdir("rhresume");
	char ck[1300], fin[1300], orig[1300];
	small_config(&c, dir, "run");
	ck_assert(config_set(&c, "model.kind=rhvae", &err) == VB_OK);
	ck_assert(config_set(&c, "model.latent=2", &err) == VB_OK);
	ck_assert(config_set(&c, "model.hidden=16", &err) == VB_OK);
	ck_assert(config_set(&c, "data.synthetic_n=128", &err) == VB_OK);
	ck_assert(config_set(&c, "train.batch=16", &err) == VB_OK);
	ck_assert(config_set(&c, "train.epochs=1", &err) == VB_OK);
	ck_assert(config_set(&c, "run.checkpoint_every=3", &err) == VB_OK);
	run(&c, &s);
	ck_assert_int_eq(s.steps, 8);
	/* step 6 of the epoch's 8: the latest, a mid-epoch one */
	snprintf(ck, sizeof ck, "%s/checkpoints/step-000000006.safetensors",
		 s.run_dir);
	snprintf(fin, sizeof fin, "%s/final.safetensors", dir);
	snprintf(orig, sizeof orig, "%s/checkpoint.safetensors", s.run_dir);
	o.resume = ck;
	o.replay = true;
	o.final_checkpoint = fin;
	ck_assert(train_data_load(&c, &d, &err) == VB_OK);
	ck_assert_msg(train_run_opts(&c, &d, &o, &rs, NULL, &err) == VB_OK,
		      "%s", err.msg);
	train_data_free(&d);
	size_t na = 0, nb = 0;
	char *a = tu_read_file(orig, &na), *b = tu_read_file(fin, &nb);
	ck_assert(a && b);
	ck_assert_msg(na == nb && memcmp(a, b, na) == 0,
		      "resumed end state differs from the run's");
	free(a);
	free(b);
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

int main(void)
{
	Suite *s = suite_create("train");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_determinism);
	tcase_add_test(tc, test_loss_goes_down);
	tcase_add_test(tc, test_eval_every);
	tcase_add_test(tc, test_guard_input);
	tcase_add_test(tc, test_guard_param);
	tcase_add_test(tc, test_guard_grad);
	tcase_add_test(tc, test_guard_pythae);
	tcase_add_test(tc, test_guard_huge_lr);
	tcase_add_test(tc, test_skip_nonfinite);
	tcase_add_test(tc, test_checkpoint_contents);
	tcase_add_test(tc, test_resume_checkpoint_validated);
	tcase_add_test(tc, test_rhvae_mid_epoch_resume);
	tcase_add_test(tc, test_cli_exit_codes);
	tcase_add_test(tc, test_bad_input_one_line);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
