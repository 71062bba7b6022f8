/* test_train: the training loop end to end on synthetic data (float
 * build): determinism of metrics.csv, the loss going down, evaluation
 * every n epochs, the kernel choice, held-out measures and summary.csv,
 * adaptive clipping, batches and RNG streams, the RHVAE's prior samples.
 * The guard is test_train_guard's, checkpoints and resuming
 * test_train_resume's. */
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

/* Two runs of the test config, into dir/a and dir/b; the second with the
 * setting kv as well (NULL: none). */
static void run_pair(const char *dir, const char *kv, struct train_summary *s1,
		     struct train_summary *s2)
{
	char d[1100];
	struct config c;
	snprintf(d, sizeof d, "%s/a", dir);
	bu_train_config(&c, d, "run");
	bu_run(&c, NULL, s1);
	snprintf(d, sizeof d, "%s/b", dir);
	bu_train_config(&c, d, "run");
	if (kv)
		bu_set(&c, kv);
	bu_run(&c, NULL, s2);
}

START_TEST(test_determinism)
{
	const char *dir = tu_tmpdir("det");
	char d2[1100];
	struct config c;
	struct train_summary s1, s2;
	run_pair(dir, NULL, &s1, &s2);
	char *m1 = bu_read_run_file(&s1, "metrics.csv");
	char *m2 = bu_read_run_file(&s2, "metrics.csv");
	ck_assert_str_eq(m1, m2);
	ck_assert_int_eq(s1.status, GUARD_STATUS_OK);
	/* a different seed gives different numbers */
	snprintf(d2, sizeof d2, "%s/c", dir);
	bu_train_config(&c, d2, "run");
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
	bu_train_config(&c, d1, "portable");
	BU_SET(&c, "model.arch=resnet", "train.epochs=1",
		"train.kernels=portable");
	bu_run(&c, NULL, &s1);
	bu_train_config(&c, d1, "fast");
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
	struct train_summary s1, s2;
	run_pair(tu_tmpdir("evalevery"), "train.eval_every=2", &s1, &s2);
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
	bu_train_config(&c, tu_tmpdir("down"), "run");
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
	char v[256];
	struct train_summary s1, s2;
	run_pair(tu_tmpdir("hodet"), NULL, &s1, &s2);
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
	bu_train_config(&c, dir, "run");
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
	bu_train_config(&c, tu_tmpdir("valerr"), "run");
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
	bu_train_config(c, dir, "run");
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
	bu_train_config(c, dir, "run");
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
	bu_train_config(c, dir, "run");
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
	/* the epoch's last step is a full batch of 30 (perm[210..240)), not
	 * the 46 images left (it once read past the batch buffer) */
	snprintf(d1, sizeof d1, "%s/b8", dir);
	no_nll_config(&c, d1);
	BU_SET(&c, "train.batch=30", "data.drop_last=true",
	       "inject.nan_step=8");
	bu_run(&c, NULL, &s);
	ck_assert_int_eq(s.first.step, 8);
	{
		size_t p8[256], u8 = 0;
		struct rng sh8;
		rng_seed(&sh8, c.train.seed, RNG_STREAM_SHUFFLE);
		for (int k = 0; k < 2; k++) /* the sanity check's, epoch 1's */
			rng_permutation(&sh8, p8, 256);
		for (size_t i = 210; i < 240; i++)
			u8 += (size_t)snprintf(want + u8, sizeof want - u8,
					       "%s%zu", i > 210 ? " " : "",
					       p8[i]);
		ck_assert_str_eq(s.first_batch, want);
	}

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
	bu_train_config(&a, tu_tmpdir("seeds"), "run");
	bu_train_config(&b, tu_tmpdir("seeds"), "run");
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

TU_MAIN("train", "core", 120, test_determinism, test_loss_goes_down,
	test_eval_every, test_kernels, test_heldout_deterministic,
	test_heldout_nll_direct, test_pythae_value_error,
	test_adaptive_clip_share, test_adaptive_clip_resume,
	test_drop_last_and_first_batch, test_seeds_separate,
	test_rhvae_prior_samples_png)
