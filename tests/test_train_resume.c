/* test_train_resume: a run's checkpoint (float build): its contents and
 * config, resume checkpoints validated before use, and an RHVAE resumed
 * mid-epoch ending byte for byte where the uninterrupted run ends. */
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

START_TEST(test_checkpoint_contents)
{
	struct config c, back;
	struct train_summary s;
	struct checkpoint *ck = NULL;
	struct vb_error err = {0};
	int64_t step = -1;
	bu_train_config(&c, tu_tmpdir("ck"), "run");
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
	bu_train_config(&c, dir, "run");
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
	bu_train_config(&c, dir, "run");
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

TU_MAIN("train_resume", "resume", 120, test_checkpoint_contents,
	test_resume_checkpoint_validated, test_rhvae_mid_epoch_resume)
