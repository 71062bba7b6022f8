/* test_train: the training loop end to end on synthetic data (float
 * build): determinism of metrics.csv, the loss going down, the cheap guard
 * catching injected NaNs at the right step and phase (strict and pythae
 * modes), the checkpoint's contents, and the CLI's exit codes. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "checkpoint.h"
#include "config.h"
#include "graph.h"
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
	ck_assert(config_set(&c, "model.arch=resnet", &err) == VB_OK);
	ck_assert(config_set(&c, "train.epochs=1", &err) == VB_OK);
	ck_assert(config_set(&c, "train.kernels=portable", &err) == VB_OK);
	run(&c, &s1);
	small_config(&c, d1, "fast");
	ck_assert(config_set(&c, "model.arch=resnet", &err) == VB_OK);
	ck_assert(config_set(&c, "train.epochs=1", &err) == VB_OK);
	run(&c, &s2);
	char *m1 = read_run_file(&s1, "meta.json");
	char *m2 = read_run_file(&s2, "meta.json");
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

int main(void)
{
	Suite *s = suite_create("train");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_determinism);
	tcase_add_test(tc, test_loss_goes_down);
	tcase_add_test(tc, test_eval_every);
	tcase_add_test(tc, test_kernels);
	tcase_add_test(tc, test_guard_input);
	tcase_add_test(tc, test_guard_param);
	tcase_add_test(tc, test_guard_grad);
	tcase_add_test(tc, test_guard_pythae);
	tcase_add_test(tc, test_guard_huge_lr);
	tcase_add_test(tc, test_skip_nonfinite);
	tcase_add_test(tc, test_checkpoint_contents);
	tcase_add_test(tc, test_cli_exit_codes);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
