/* test_train: the training loop end to end on synthetic data (float
 * build): determinism of metrics.csv, the loss going down, the cheap guard
 * catching injected NaNs at the right step and phase (strict and pythae
 * modes), the checkpoint's contents, and the CLI's exit codes. */
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

/* benchutil's small run with 4 latents and bce. */
static void small_config(struct config *c, const char *dir, const char *name)
{
	bu_small_config(c, dir, name);
	BU_SET(c, "model.latent=4", "model.recon=bce");
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
	bu_run(&c, NULL, &s1);
	small_config(&c, d2, "run");
	bu_run(&c, NULL, &s2);
	char *m1 = bu_read_run_file(&s1, "metrics.csv");
	char *m2 = bu_read_run_file(&s2, "metrics.csv");
	ck_assert_str_eq(m1, m2);
	ck_assert_int_eq(s1.status, GUARD_STATUS_OK);
	/* a different seed gives different numbers */
	snprintf(d2, sizeof d2, "%s/c", dir);
	small_config(&c, d2, "run");
	bu_set(&c, "train.seed=9");
	bu_run(&c, NULL, &s2);
	char *m3 = bu_read_run_file(&s2, "metrics.csv");
	ck_assert_str_ne(m1, m3);
	free(m1);
	free(m2);
	free(m3);
}
END_TEST

/* train.kernels: portable runs the ResNet's convolutions on im2col,
 * fast on the build's default (oneDNN in float), and meta.json says which
 * and on what machine; the two agree to float rounding, not bit for bit,
 * so only the first epoch's train loss is compared (rtol 1e-4: two
 * summation orders over dot products of up to 1,152 float terms). */
START_TEST(test_kernels)
{
	const char *dir = tu_tmpdir("kernels");
	char d1[1100];
	struct config c;
	struct train_summary s1, s2;
	struct vb_error err = {0};
	snprintf(d1, sizeof d1, "%s/a", dir);
	small_config(&c, d1, "portable");
	BU_SET(&c, "model.arch=resnet", "train.epochs=1",
		"train.kernels=portable");
	bu_run(&c, NULL, &s1);
	small_config(&c, d1, "fast");
	BU_SET(&c, "model.arch=resnet", "train.epochs=1");
	bu_run(&c, NULL, &s2);
	char *m1 = bu_read_run_file(&s1, "meta.json");
	char *m2 = bu_read_run_file(&s2, "meta.json");
	ck_assert_msg(strstr(m1, "\"conv_backend\": \"im2col\"") != NULL,
		      "%s", m1);
	ck_assert_msg(strstr(m2, graph_conv_backend_default() ==
					 GRAPH_CONV_BACKEND_DNNL
				 ? "\"conv_backend\": \"dnnl\""
				 : "\"conv_backend\": \"im2col\"") != NULL,
		      "%s", m2);
	ck_assert(strstr(m1, "\"isa_class\": ") != NULL);
	ck_assert(strstr(m1, "\"cpu\": ") != NULL);
	ck_assert(strstr(m1, "\"onednn\": ") != NULL);
	ck_assert(isfinite(s1.final_train_loss));
	ck_assert_msg(fabs(s1.final_train_loss - s2.final_train_loss) <=
			      1e-4 * fabs(s1.final_train_loss),
		      "portable %.9g fast %.9g", s1.final_train_loss,
		      s2.final_train_loss);
	ck_assert(config_set(&c, "train.kernels=gpu", &err) != VB_OK);
	ck_assert_msg(strstr(err.msg, "train.kernels") != NULL, "%s", err.msg);
	free(m1);
	free(m2);
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
	snprintf(d1, sizeof d1, "%s/a", dir);
	snprintf(d2, sizeof d2, "%s/b", dir);
	small_config(&c, d1, "run");
	bu_run(&c, NULL, &s1);
	small_config(&c, d2, "run");
	bu_set(&c, "train.eval_every=2");
	bu_run(&c, NULL, &s2);
	char *m1 = bu_read_run_file(&s1, "metrics.csv");
	char *m2 = bu_read_run_file(&s2, "metrics.csv");
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
	small_config(&c, tu_tmpdir("down"), "run");
	bu_set(&c, "train.epochs=6");
	bu_run(&c, NULL, &s);
	ck_assert_int_eq(s.status, GUARD_STATUS_OK);
	char *m = bu_read_run_file(&s, "metrics.csv");
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
		char *png = bu_read_run_file(&s, pics[i]);
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
	char buf[64];
	small_config(&c, tu_tmpdir("inj"), "run");
	snprintf(buf, sizeof buf, "inject.nan_step=%d", step);
	bu_set(&c, buf);
	bu_set_key(&c, "inject.nan_phase", phase);
	bu_set_key(&c, "train.nan_check", check);
	bu_run(&c, NULL, s);
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

/* inject(), with model.recon = mse (pythae's VAE with mse calls no
 * distribution, so only its loss check can fire). */
static void inject_mse(const char *phase, const char *check, int step,
		       struct train_summary *s)
{
	struct config c;
	char buf[64];
	small_config(&c, tu_tmpdir("inj"), "run");
	bu_set(&c, "model.recon=mse");
	snprintf(buf, sizeof buf, "inject.nan_step=%d", step);
	bu_set(&c, buf);
	bu_set_key(&c, "inject.nan_phase", phase);
	bu_set_key(&c, "train.nan_check", check);
	bu_run(&c, NULL, s);
}

START_TEST(test_guard_pythae)
{
	struct train_summary s;
	/* pythae tests the running loss sum after the update: same step,
	 * phase update, its message (mse: no argument validation fires). */
	inject_mse("input", "pythae", 4, &s);
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
	small_config(&c, tu_tmpdir("skip"), "run");
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
	small_config(&c, tu_tmpdir("lr"), "run");
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

START_TEST(test_checkpoint_contents)
{
	struct config c, back;
	struct train_summary s;
	struct checkpoint *ck = NULL;
	struct vb_error err = {0};
	int64_t step = -1;
	small_config(&c, tu_tmpdir("ck"), "run");
	bu_run(&c, NULL, &s);
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
	BU_SET(&c, "run.checkpoint_every=3", "train.max_steps=4");
	bu_run(&c, NULL, &s);
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
	BU_SET(&c, "model.kind=rhvae", "model.latent=2", "model.hidden=16",
		"data.synthetic_n=128", "train.batch=16", "train.epochs=1",
		"run.checkpoint_every=3");
	bu_run(&c, NULL, &s);
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

/* ---- issue 15: held-out measures and the new result columns ---- */

/* Column name of a CSV header line (up to '\n'): its index, or -1. */
static int col_of(const char *hdr, const char *name)
{
	size_t len = strlen(name);
	int i = 0;
	for (const char *h = hdr; h && *h && *h != '\n'; i++) {
		if (!strncmp(h, name, len) && (h[len] == ',' || h[len] == '\n'))
			return i;
		h = strpbrk(h, ",\n");
		if (!h || *h == '\n')
			break;
		h++;
	}
	return -1;
}

/* Field i of line into out (a quoted field's commas are skipped; quotes
 * are kept). */
static void field_of(const char *line, int i, char *out, size_t cap)
{
	for (int k = 0; k < i; k++) {
		bool q = false;
		while (*line && (q || *line != ',')) {
			ck_assert_msg(*line != '\n', "field %d missing", i);
			if (*line == '"')
				q = !q;
			line++;
		}
		ck_assert(*line == ',');
		line++;
	}
	size_t len = strcspn(line, ",\n");
	ck_assert_uint_lt(len, cap);
	memcpy(out, line, len);
	out[len] = '\0';
}

/* The value of column name in summary.csv (header + one row). */
static void summary_field(const struct train_summary *s, const char *name,
			  char *out, size_t cap)
{
	char *t = bu_read_run_file(s, "summary.csv");
	int i = col_of(t, name);
	ck_assert_msg(i >= 0, "summary.csv has no column %s", name);
	field_of(strchr(t, '\n') + 1, i, out, cap);
	free(t);
}

/* summary.csv without its wall-clock fields (seconds, nll_seconds). */
static char *summary_no_clock(const struct train_summary *s)
{
	char *t = bu_read_run_file(s, "summary.csv");
	int a = col_of(t, "seconds"), b = col_of(t, "nll_seconds");
	char *out = malloc(strlen(t) + 1), *o = out;
	int i = 0;
	ck_assert(a >= 0 && b >= 0 && out);
	for (const char *p = t; *p; p++) {
		if (*p == '\n')
			i = 0;
		if (i != a && i != b)
			*o++ = *p;
		if (*p == ',')
			i++;
	}
	*o = '\0';
	free(t);
	return out;
}

START_TEST(test_heldout_deterministic)
{
	/* same config twice: metrics.csv and summary.csv (wall clock aside)
	 * byte for byte, new columns filled */
	const char *dir = tu_tmpdir("hodet");
	char d1[1100], d2[1100], v[256];
	struct config c;
	struct train_summary s1, s2;
	snprintf(d1, sizeof d1, "%s/a", dir);
	snprintf(d2, sizeof d2, "%s/b", dir);
	small_config(&c, d1, "run");
	bu_run(&c, NULL, &s1);
	small_config(&c, d2, "run");
	bu_run(&c, NULL, &s2);
	char *a = summary_no_clock(&s1), *b = summary_no_clock(&s2);
	ck_assert_str_eq(a, b);
	free(a);
	free(b);
	a = bu_read_run_file(&s1, "metrics.csv");
	b = bu_read_run_file(&s2, "metrics.csv");
	ck_assert_str_eq(a, b);
	ck_assert(col_of(a, "eval_sse") >= 0 && col_of(a, "eval_bce") >= 0 &&
		  col_of(a, "worst_batch") >= 0 &&
		  col_of(a, "worst_partial") >= 0);
	free(a);
	free(b);
	const char *cols[] = {"last_finite_epoch", "nll_best", "nll_last",
			      "sse_best", "sse_last", "sse_max", "bce_best",
			      "bce_last", "clipped_share"};
	for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
		summary_field(&s1, cols[i], v, sizeof v);
		ck_assert_msg(v[0] && strcmp(v, "nan"), "%s = '%s'", cols[i],
			      v);
	}
	ck_assert_int_eq(s1.last_finite_epoch, 3);
	ck_assert(s1.sse_max >= s1.sse_best);
	summary_field(&s1, "pythae_error", v, sizeof v);
	ck_assert_str_eq(v, "");
	summary_field(&s1, "first_batch", v, sizeof v);
	ck_assert_str_eq(v, "");
	/* no snapshot file is left in the run folder */
	char path[1300];
	snprintf(path, sizeof path, "%s/.heldout-last.safetensors",
		 s1.run_dir);
	ck_assert_ptr_null(tu_read_file(path, NULL));
}
END_TEST

START_TEST(test_heldout_nll_direct)
{
	/* nll_last (= nll_best: the eval loss falls every epoch here) is
	 * model_nll on the saved end state, with the same images and draws */
	const char *dir = tu_tmpdir("honll");
	struct config c;
	struct train_summary s;
	struct train_data d;
	struct model_config mc;
	struct model *m = NULL;
	struct graph *g = NULL;
	struct checkpoint *ck = NULL;
	struct vb_error err = {0};
	struct rng r;
	char path[1300];
	small_config(&c, dir, "run");
	BU_SET(&c, "eval.nll_samples=20", "eval.nll_images=10",
		"eval.nll_chunk=7");
	bu_run(&c, NULL, &s);
	ck_assert_int_eq(s.status, GUARD_STATUS_OK);
	ck_assert_int_eq(s.best_epoch, 3);
	ck_assert_int_eq(s.last_finite_epoch, 3);
	ck_assert(isfinite(s.nll_last));
	ck_assert_double_eq(s.nll_best, s.nll_last);

	ck_assert(train_data_load(&c, &d, &err) == VB_OK);
	runconfig_model(&c, &d.train, &mc);
	ck_assert_msg(model_create(&mc, &m, &err) == VB_OK, "%s", err.msg);
	snprintf(path, sizeof path, "%s/checkpoint.safetensors", s.run_dir);
	ck_assert(checkpoint_open(path, &ck, &err) == VB_OK);
	struct params *p = m->params;
	for (size_t i = 0; i < p->n_entries; i++)
		ck_assert(checkpoint_read_real(ck, p->entries[i].name,
					       p->entries[i].ndim,
					       p->entries[i].shape,
					       p->data + p->entries[i].offset,
					       &err) == VB_OK);
	ck_assert(model_load_state(m, ck, &err) == VB_OK);
	checkpoint_close(ck);
	ck_assert(graph_create(1 << 20, &g, &err) == VB_OK);
	size_t n = 10, D = d.eval.d;
	vb_real *x = malloc(n * D * sizeof *x);
	double nll[10], sum = 0;
	dataset_batch(&d.eval, NULL, n, (vb_real)c.data.scale, x);
	rng_seed(&r, c.train.seed ^ HELDOUT_NLL_SEED_SALT, RNG_STREAM_NOISE);
	ck_assert(model_nll(m, g, x, n, 20, 7, &r, nll, &err) == VB_OK);
	for (size_t i = 0; i < n; i++)
		sum += nll[i];
	ck_assert_double_eq(sum / (double)n, s.nll_last);
	free(x);
	graph_free(g);
	model_free(m);
	train_data_free(&d);
}
END_TEST

START_TEST(test_pythae_value_error)
{
	/* a NaN pixel makes the RHVAE's latent NaN: the prior's log_prob
	 * raises #131's ValueError in the forward of that step */
	struct config c;
	struct train_summary s;
	small_config(&c, tu_tmpdir("valerr"), "run");
	BU_SET(&c, "model.kind=rhvae", "model.recon=mse", "eval.nll_samples=0",
		"inject.nan_step=5", "train.nan_check=pythae");
	bu_run(&c, NULL, &s);
	ck_assert_int_eq(s.first.step, 5);
	ck_assert_int_eq(s.steps, 5);
	ck_assert_int_eq(s.first.phase, GUARD_PHASE_FORWARD);
	ck_assert_msg(!strncmp(s.first.quantity, "ValueError:", 11), "%s",
		      s.first.quantity);
	ck_assert_msg(strstr(s.message, "IndependentConstraint(Real(), 1)"),
		      "%s", s.message);
	ck_assert_str_eq(s.pythae_error, "value_error");
	char v[64];
	summary_field(&s, "pythae_error", v, sizeof v);
	ck_assert_str_eq(v, "value_error");
}
END_TEST

/* A small RHVAE (or VAE) run for the prior-samples picture. */
static void prior_config(struct config *c, const char *dir, const char *kind)
{
	small_config(c, dir, "run");
	bu_set_key(c, "model.kind", kind);
	BU_SET(c, "model.latent=2", "model.hidden=16", "data.synthetic_n=128",
		"train.batch=16", "train.epochs=1", "eval.nll_samples=0");
}

START_TEST(test_rhvae_prior_samples_png)
{
	/* an RHVAE run also draws samples_prior.png (its own prior, pythae's
	 * RHVAESampler), byte-identical for the same seed; a VAE run does
	 * not; samples.png (N(0, I)) is unmoved by it */
	struct config c;
	struct train_summary s1, s2, sv;
	const char *dir = tu_tmpdir("prior");
	char d1[1100], d2[1100], d3[1100], path[1300];
	size_t n1 = 0, n2 = 0;
	snprintf(d1, sizeof d1, "%s/a", dir);
	snprintf(d2, sizeof d2, "%s/b", dir);
	snprintf(d3, sizeof d3, "%s/vae", dir);
	prior_config(&c, d1, "rhvae");
	bu_run(&c, NULL, &s1);
	ck_assert_int_eq(s1.status, GUARD_STATUS_OK);
	prior_config(&c, d2, "rhvae");
	bu_run(&c, NULL, &s2);
	ck_assert_int_eq(s2.status, GUARD_STATUS_OK);
	snprintf(path, sizeof path, "%s/samples_prior.png", s1.run_dir);
	char *p1 = tu_read_file(path, &n1);
	snprintf(path, sizeof path, "%s/samples_prior.png", s2.run_dir);
	char *p2 = tu_read_file(path, &n2);
	ck_assert_ptr_nonnull(p1);
	ck_assert_ptr_nonnull(p2);
	ck_assert(n1 > 8 && !memcmp(p1, "\x89PNG", 4));
	ck_assert_uint_eq(n1, n2);
	ck_assert(!memcmp(p1, p2, n1));
	/* a different picture from the N(0, I) one */
	size_t ns = 0;
	snprintf(path, sizeof path, "%s/samples.png", s1.run_dir);
	char *ps = tu_read_file(path, &ns);
	ck_assert_ptr_nonnull(ps);
	ck_assert(ns != n1 || memcmp(ps, p1, n1) != 0);
	free(ps);
	free(p1);
	free(p2);
	prior_config(&c, d3, "vae");
	bu_run(&c, NULL, &sv);
	ck_assert_int_eq(sv.status, GUARD_STATUS_OK);
	free(bu_read_run_file(&sv, "samples.png"));
	snprintf(path, sizeof path, "%s/samples_prior.png", sv.run_dir);
	ck_assert_ptr_null(tu_read_file(path, NULL));
}
END_TEST

/* small_config with the NLL off and optim.clip = adaptive. */
static void adaptive_config(struct config *c, const char *dir)
{
	small_config(c, dir, "run");
	BU_SET(c, "eval.nll_samples=0", "optim.clip=adaptive");
}

START_TEST(test_adaptive_clip_share)
{
	/* adaptive clipping clips the injected spike (every gradient entry
	 * x 1e3 at step 20) and nothing else in this short run; without the
	 * spike, nothing */
	struct config c;
	struct train_summary s1, s2;
	const char *dir = tu_tmpdir("adaclip");
	char d1[1100], d2[1100];
	snprintf(d1, sizeof d1, "%s/a", dir);
	snprintf(d2, sizeof d2, "%s/b", dir);
	adaptive_config(&c, d1);
	bu_run(&c, NULL, &s1);
	ck_assert_int_eq(s1.status, GUARD_STATUS_OK);
	ck_assert_double_eq(s1.clipped_share, 0);
	adaptive_config(&c, d2);
	BU_SET(&c, "inject.nan_step=20", "inject.nan_phase=grad",
		"inject.value=scale", "inject.scale=1000", "inject.index=-1");
	bu_run(&c, NULL, &s2);
	ck_assert_int_eq(s2.status, GUARD_STATUS_OK);
	ck_assert_double_eq(s2.clipped_share, 1.0 / (double)s2.steps);
}
END_TEST

START_TEST(test_adaptive_clip_resume)
{
	/* the adaptive window is in the resume checkpoint: resuming at
	 * step 20 clips the spike at step 22 as the full run does (an empty
	 * window would still be warming up) */
	struct config c;
	struct train_summary s1, s2;
	struct train_options o;
	struct train_data d;
	struct vb_error err = {0};
	const char *dir = tu_tmpdir("adaresume");
	char d1[1100], ck[1300];
	snprintf(d1, sizeof d1, "%s/a", dir);
	adaptive_config(&c, d1);
	BU_SET(&c, "run.checkpoint_every=5", "inject.nan_step=22",
		"inject.nan_phase=grad", "inject.value=scale",
		"inject.scale=1000", "inject.index=-1");
	bu_run(&c, NULL, &s1);
	ck_assert_int_eq(s1.status, GUARD_STATUS_OK);
	ck_assert_double_eq(s1.clipped_share, 1.0 / 24);
	snprintf(ck, sizeof ck, "%s/checkpoints/step-000000020.safetensors",
		 s1.run_dir);
	snprintf(d1, sizeof d1, "%s/b", dir);
	bu_set_key(&c, "run.out_dir", d1);
	memset(&o, 0, sizeof o);
	o.resume = ck;
	ck_assert(train_data_load(&c, &d, &err) == VB_OK);
	ck_assert_msg(train_run_opts(&c, &d, &o, &s2, NULL, &err) == VB_OK,
		      "%s", err.msg);
	train_data_free(&d);
	ck_assert_int_eq(s2.steps, 24);
	ck_assert_double_eq(s2.clipped_share, s1.clipped_share);
	/* (final_train_loss is the mean of the epoch's batches after the
	 * resume point: not compared) the end state is the same */
	ck_assert_double_eq(s2.final_eval_loss, s1.final_eval_loss);
}
END_TEST

/* small_config with the NLL off. */
static void no_nll_config(struct config *c, const char *dir)
{
	small_config(c, dir, "run");
	bu_set(c, "eval.nll_samples=0");
}

START_TEST(test_drop_last_and_first_batch)
{
	/* 256 images in batches of 30: 9 steps per epoch (the last of 16),
	 * 8 with data.drop_last */
	struct config c;
	struct train_summary s;
	const char *dir = tu_tmpdir("droplast");
	char d1[1100], want[4096], v[4096];
	snprintf(d1, sizeof d1, "%s/a", dir);
	no_nll_config(&c, d1);
	bu_set(&c, "train.batch=30");
	bu_run(&c, NULL, &s);
	ck_assert_int_eq(s.steps, 3 * 9);
	/* chance that the worst of 9 batches is the partial one: 1/9 an
	 * epoch */
	ck_assert_double_eq_tol(s.worst_partial_expected, 3.0 / 9, 1e-15);
	ck_assert(s.worst_partial_epochs >= 0 && s.worst_partial_epochs <= 3);
	snprintf(d1, sizeof d1, "%s/b", dir);
	no_nll_config(&c, d1);
	BU_SET(&c, "train.batch=30", "data.drop_last=true");
	bu_run(&c, NULL, &s);
	ck_assert_int_eq(s.steps, 3 * 8);
	ck_assert_double_eq(s.worst_partial_expected, 0);
	ck_assert_int_eq(s.worst_partial_epochs, 0);
	char *m = bu_read_run_file(&s, "metrics.csv");
	ck_assert_msg(strstr(m, ",false,") && !strstr(m, ",true,"), "%s", m);
	free(m);

	/* first_batch: step 11 is epoch 2's third batch of 32 (8 per
	 * epoch); the shuffle stream drew the sanity check's permutation,
	 * then one per epoch */
	snprintf(d1, sizeof d1, "%s/c", dir);
	no_nll_config(&c, d1);
	bu_set(&c, "inject.nan_step=11");
	bu_run(&c, NULL, &s);
	ck_assert_int_eq(s.first.step, 11);
	size_t perm[256], used = 0;
	struct rng sh;
	rng_seed(&sh, c.train.seed, RNG_STREAM_SHUFFLE);
	for (int k = 0; k < 3; k++)
		rng_permutation(&sh, perm, 256);
	for (size_t i = 64; i < 96; i++)
		used += (size_t)snprintf(want + used, sizeof want - used,
					 "%s%zu", i > 64 ? " " : "", perm[i]);
	ck_assert_str_eq(s.first_batch, want);
	summary_field(&s, "first_batch", v, sizeof v);
	ck_assert_str_eq(v, want);
}
END_TEST

/* The initial weights of config c (model.init_seed, else train.seed). */
static vb_real *initial_params(const struct config *c, size_t *n)
{
	struct train_data d;
	struct model_config mc;
	struct model *m = NULL;
	struct vb_error err = {0};
	ck_assert(train_data_load(c, &d, &err) == VB_OK);
	runconfig_model(c, &d.train, &mc);
	ck_assert_msg(model_create(&mc, &m, &err) == VB_OK, "%s", err.msg);
	*n = m->params->n;
	vb_real *p = malloc(*n * sizeof *p);
	memcpy(p, m->params->data, *n * sizeof *p);
	model_free(m);
	train_data_free(&d);
	return p;
}

START_TEST(test_seeds_separate)
{
	/* model.init_seed seeds only the weights, train.seed only the data
	 * order and noise: sweeping one alone moves only its part */
	struct config a, b;
	size_t na, nb;
	small_config(&a, tu_tmpdir("seeds"), "run");
	small_config(&b, tu_tmpdir("seeds"), "run");
	bu_set(&a, "model.init_seed=5");
	BU_SET(&b, "model.init_seed=5", "train.seed=9");
	vb_real *pa = initial_params(&a, &na), *pb = initial_params(&b, &nb);
	ck_assert_uint_eq(na, nb);
	ck_assert(!memcmp(pa, pb, na * sizeof *pa)); /* same init */
	free(pb);
	BU_SET(&b, "train.seed=8", "model.init_seed=6");
	pb = initial_params(&b, &nb);
	ck_assert(memcmp(pa, pb, na * sizeof *pa)); /* other init */
	free(pb);
	/* init_seed -1 is train.seed */
	BU_SET(&b, "model.init_seed=-1", "train.seed=5");
	pb = initial_params(&b, &nb);
	ck_assert(!memcmp(pa, pb, na * sizeof *pa));
	free(pa);
	free(pb);
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

TU_MAIN("train", "core", 120, test_determinism, test_loss_goes_down,
	test_eval_every, test_kernels, test_guard_input, test_guard_param,
	test_guard_grad, test_guard_pythae, test_guard_pythae_bce,
	test_heldout_deterministic, test_heldout_nll_direct,
	test_pythae_value_error, test_adaptive_clip_share,
	test_adaptive_clip_resume, test_drop_last_and_first_batch,
	test_seeds_separate, test_guard_huge_lr, test_skip_nonfinite,
	test_checkpoint_contents, test_resume_checkpoint_validated,
	test_rhvae_mid_epoch_resume, test_rhvae_prior_samples_png,
	test_cli_exit_codes, test_bad_input_one_line)
