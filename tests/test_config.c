/* test_config: the key table, defaults, INI loading with every error kind
 * and its message, --set, canonical formatting, validation and the
 * write/load round trip. Fixture INI files are written by the tests. */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "counterfactual.h"
#include "model.h"
#include "optim.h"
#include "rhvae_sampler.h"
#include "testutil.h"

/* Writes text to a fresh x.ini; returns its path (static, until next call). */
static const char *fixture(const char *text)
{
	static char path[4096];
	const char *dir = tu_tmpdir("config");
	snprintf(path, sizeof path, "%s", tu_path(dir, "x.ini"));
	ck_assert_int_eq(tu_write_file(path, text, strlen(text)), 0);
	return path;
}

/* Every key formats the same in a and b (formatting is exact: equal text
 * means equal doubles); doubles also compared directly. */
static void assert_same(const struct config *a, const struct config *b)
{
	char va[CONFIG_VALUE_LEN], vb[CONFIG_VALUE_LEN];
	struct vb_error err = { 0 };
	for (size_t i = 0; i < config_key_count(); i++) {
		ck_assert_int_eq(config_get_at(a, i, va, sizeof va, &err), VB_OK);
		ck_assert_int_eq(config_get_at(b, i, vb, sizeof vb, &err), VB_OK);
		if (strcmp(va, vb) != 0)
			ck_abort_msg("%s: %s vs %s", config_key_name(i), va, vb);
	}
	ck_assert(a->optim.lr == b->optim.lr);
	ck_assert(a->optim.adam_eps == b->optim.adam_eps);
	ck_assert(a->optim.clip_eps == b->optim.clip_eps);
	ck_assert(a->data.scale == b->data.scale);
}

/* Loads text over defaults, expects status and the message
 * "config: PATH:" tail, and an unchanged config. */
static void check_load_error(const char *text, enum vb_status want,
			     const char *tail)
{
	struct config c, d;
	struct vb_error err = { 0 };
	char expected[2 * VB_ERROR_LEN];
	const char *path = fixture(text);
	config_defaults(&c);
	config_defaults(&d);
	ck_assert_int_eq(config_load_file(&c, path, &err), want);
	ck_assert_int_eq(err.status, want);
	snprintf(expected, sizeof expected, "config: %s:%s", path, tail);
	ck_assert_str_eq(err.msg, expected);
	assert_same(&c, &d);
	/* err may be NULL: same status */
	ck_assert_int_eq(config_load_file(&c, path, NULL), want);
}

static void check_set_error(const char *assignment, const char *msg)
{
	struct config c, d;
	struct vb_error err = { 0 };
	config_defaults(&c);
	config_defaults(&d);
	ck_assert_int_eq(config_set(&c, assignment, &err), VB_ERR_CONFIG);
	ck_assert_int_eq(err.status, VB_ERR_CONFIG);
	ck_assert_str_eq(err.msg, msg);
	assert_same(&c, &d);
}

static void get(const struct config *c, const char *name, char *buf)
{
	struct vb_error err = { 0 };
	enum vb_status st = config_get(c, name, buf, CONFIG_VALUE_LEN, &err);
	if (st != VB_OK)
		ck_abort_msg("config_get %s: %s", name, err.msg);
}

/* every section of the table, in order (one line to update when a module
 * adds a section) */
#define MODEL_KEYS \
	"kind|arch|latent|hidden|recon|init_seed|logvar_clamp|logvar_min|" \
	"logvar_max|sigma|bce_eps"
#define SECTIONS \
	"run|data|model|nets|anchor|rhvae|hvae|train|optim|inject|guard|eval"

START_TEST(test_key_table)
{
	size_t n = config_key_count();
	/* the table grows with every model and mitigation; 48 is the
	 * foundation's count */
	ck_assert_uint_ge(n, 48);
	for (size_t i = 0; i < n; i++) {
		const char *name = config_key_name(i);
		ck_assert_ptr_nonnull(name);
		ck_assert_ptr_nonnull(strchr(name, '.'));
		ck_assert_int_eq(config_key_index(name), (int)i);
		ck_assert_ptr_nonnull(config_key_help(i));
		ck_assert_uint_gt(strlen(config_key_help(i)), 0);
		if (config_key_type(i) == CONFIG_TYPE_ENUM) {
			int m = config_enum_count(name);
			ck_assert_int_gt(m, 0);
			for (int v = 0; v < m; v++) {
				const char *e = config_enum_name(name, v);
				ck_assert_ptr_nonnull(e);
				ck_assert_int_eq(config_enum_value(name, e), v);
			}
			ck_assert_ptr_null(config_enum_name(name, m));
			ck_assert_ptr_null(config_enum_name(name, -1));
		} else {
			ck_assert_int_eq(config_enum_count(name), 0);
		}
	}
	ck_assert_ptr_null(config_key_name(n));
	ck_assert_ptr_null(config_key_help(n));
	ck_assert_int_eq(config_key_index("model.nope"), -1);
	ck_assert_int_eq(config_key_index("latent"), -1);
	ck_assert_str_eq(config_key_name(0), "run.name");
	ck_assert_int_eq(config_key_type((size_t)config_key_index("train.seed")),
			 CONFIG_TYPE_U64);
	ck_assert_str_eq(config_enum_name("model.recon", MODEL_RECON_BCE),
			 "bce");
	ck_assert_str_eq(config_enum_name("data.dataset",
					  CONFIG_DATASET_FASHION_MNIST),
			 "fashion-mnist");
	ck_assert_str_eq(config_enum_name("optim.schedule",
					  OPTIM_SCHEDULE_COSINE), "cosine");
	ck_assert_int_eq(config_enum_value("optim.kind", "adamw"),
			 OPTIM_ADAMW);
	ck_assert_int_eq(config_enum_value("optim.kind", "lbfgs"), -1);
	ck_assert_ptr_null(config_enum_name("model.latent", 0));
	ck_assert_int_eq(config_enum_count("inject.nan_phase"),
			 CONFIG_NAN_PHASE_COUNT);
}
END_TEST

START_TEST(test_defaults)
{
	static const char *const want[][2] = {
		{ "run.name", "run" }, { "run.out_dir", "runs" },
		{ "run.progress", "auto" }, { "run.checkpoint_every", "0" },
		{ "data.dataset", "mnist" }, { "data.dir", "" },
		{ "data.train_split", "train" }, { "data.train_begin", "0" },
		{ "data.train_end", "-1" }, { "data.eval_split", "t10k" },
		{ "data.eval_begin", "0" }, { "data.eval_end", "-1" },
		{ "data.scale", "255" }, { "data.synthetic_n", "512" },
		{ "data.synthetic_eval_n", "128" },
		{ "model.kind", "vae" }, { "model.arch", "mlp" },
		{ "model.latent", "16" }, { "model.hidden", "512" },
		{ "model.recon", "mse" }, { "model.init_seed", "-1" },
		{ "train.epochs", "10" }, { "train.batch", "64" },
		{ "train.eval_batch", "64" }, { "train.seed", "8" },
		{ "train.shuffle", "true" }, { "train.blas_threads", "1" },
		{ "train.nan_check", "strict" }, { "train.max_steps", "0" },
		{ "optim.kind", "adam" }, { "optim.lr", "0.001" },
		{ "optim.beta1", "0.9" }, { "optim.beta2", "0.999" },
		{ "optim.adam_eps", "1e-08" }, { "optim.weight_decay", "0" },
		{ "optim.momentum", "0" }, { "optim.dampening", "0" },
		{ "optim.nesterov", "false" }, { "optim.clip", "none" },
		{ "optim.clip_max", "1" }, { "optim.clip_eps", "1e-06" },
		{ "optim.clip_k", "10" }, { "optim.clip_window", "50" },
		{ "optim.clip_warmup", "10" }, { "data.drop_last", "false" },
		{ "eval.nll_samples", "100" }, { "eval.nll_images", "50" },
		{ "eval.nll_chunk", "100" },
		{ "optim.schedule", "constant" }, { "optim.step_size", "1" },
		{ "optim.gamma", "0.1" }, { "optim.warmup_steps", "100" },
		{ "optim.min_lr", "0" },
		{ "inject.nan_step", "-1" }, { "inject.nan_phase", "input" },
	};
	struct config c;
	struct vb_error err = { 0 };
	char buf[CONFIG_VALUE_LEN];
	memset(&c, 0x5a, sizeof c);
	config_defaults(&c);
	ck_assert_uint_le(sizeof want / sizeof want[0], config_key_count());
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		get(&c, want[i][0], buf);
		if (strcmp(buf, want[i][1]) != 0)
			ck_abort_msg("%s = %s, expected %s", want[i][0], buf,
				     want[i][1]);
	}
	/* the fields themselves */
	ck_assert_str_eq(c.run.name, "run");
	ck_assert_str_eq(c.data.dir, "");
	ck_assert_int_eq(c.run.progress, CONFIG_PROGRESS_AUTO);
	ck_assert_int_eq(c.data.dataset, CONFIG_DATASET_MNIST);
	ck_assert_int_eq(c.data.eval_split, CONFIG_SPLIT_T10K);
	ck_assert_int_eq(c.data.train_end, -1);
	ck_assert(c.data.scale == 255.0);
	ck_assert_int_eq(c.model.latent, 16);
	ck_assert_int_eq(c.model.recon, MODEL_RECON_MSE);
	ck_assert_uint_eq(c.train.seed, 8);
	ck_assert(c.train.shuffle);
	ck_assert_int_eq(c.train.nan_check, CONFIG_NAN_CHECK_STRICT);
	ck_assert_int_eq(c.optim.kind, OPTIM_ADAM);
	ck_assert(c.optim.lr == 1e-3);
	ck_assert(c.optim.beta2 == 0.999);
	ck_assert(c.optim.adam_eps == 1e-8);
	ck_assert(!c.optim.nesterov);
	ck_assert(c.optim.clip_max == 1.0);
	ck_assert_int_eq(c.optim.warmup_steps, 100);
	ck_assert_int_eq(c.inject.nan_step, -1);
	ck_assert_int_eq(c.inject.nan_phase, CONFIG_NAN_PHASE_INPUT);
	ck_assert_int_eq(config_validate(&c, &err), VB_OK);
	ck_assert_int_eq(err.status, VB_OK);
}
END_TEST

/* Every defaults function sets the whole struct, whatever the memory held
 * before: filled with 0x00 and with 0xa5 first, the two results are the
 * same bytes. A field a defaults function forgets reads as garbage on one
 * machine and as zero on another (model_config_defaults once left
 * nll_consistent unset: CI's stack held a non-zero byte there). */
#define SAME_DEFAULTS(type, fn)                                              \
	do {                                                                 \
		static type a_, b_;                                          \
		memset(&a_, 0x00, sizeof a_);                                \
		memset(&b_, 0xa5, sizeof b_);                                \
		fn(&a_);                                                     \
		fn(&b_);                                                     \
		ck_assert_msg(!memcmp(&a_, &b_, sizeof a_),                  \
			      #fn " leaves bytes of its struct as they were"); \
	} while (0)

START_TEST(test_defaults_whole_struct)
{
	SAME_DEFAULTS(struct config, config_defaults);
	SAME_DEFAULTS(struct model_config, model_config_defaults);
	SAME_DEFAULTS(struct rhvae_sampler_config, rhvae_sampler_defaults);
	SAME_DEFAULTS(struct optim_clip_settings, optim_clip_settings_defaults);
	SAME_DEFAULTS(struct counterfactual_request, counterfactual_defaults);
}
END_TEST

/* issue 17 item 10: booleans are "true" or "false", nothing else. */
START_TEST(test_bool_strict)
{
	const char *bad[] = {"train.shuffle=yes", "train.shuffle=off",
			     "train.shuffle=1", "train.shuffle=no",
			     "guard.replay=on", "optim.nesterov=0"};
	struct config c;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct vb_error err = {0};
		config_defaults(&c);
		ck_assert_int_eq(config_set(&c, bad[i], &err), VB_ERR_CONFIG);
		ck_assert_ptr_nonnull(strstr(err.msg, "true or false"));
	}
}
END_TEST

START_TEST(test_load_good)
{
	const char *text =
		"; a comment\n"
		"# another comment\n"
		"\n"
		"[model]\n"
		"latent = 32\r\n"
		"recon=bce\n"
		"hidden: 1e3\n"
		"\n"
		"[data]\n"
		"dataset = fashion-mnist ; inline comment\n"
		"dir =   my data/dir   \n"
		"train_end = 2.5e3\n"
		"scale = 127.5\n"
		"[train]\n"
		"shuffle = false\n"
		"seed = 18446744073709551615\n"
		"[optim]\n"
		"lr = 3e-4\n"
		"beta1 = 0\n"
		"nesterov = true\n"
		"clip = norm\n"
		"[run]\n"
		"name = exp-1.a_b\n"
		"[inject]\n"
		"nan_step = 7\n"
		"nan_phase = grad\n";
	struct config c;
	struct vb_error err = { 0 };
	config_defaults(&c);
	c.train.epochs = 3; /* not in the file: kept */
	ck_assert_int_eq(config_load_file(&c, fixture(text), &err), VB_OK);
	ck_assert_int_eq(err.status, VB_OK);
	ck_assert_int_eq(c.model.latent, 32);
	ck_assert_int_eq(c.model.recon, MODEL_RECON_BCE);
	ck_assert_int_eq(c.model.hidden, 1000);
	ck_assert_int_eq(c.data.dataset, CONFIG_DATASET_FASHION_MNIST);
	ck_assert_str_eq(c.data.dir, "my data/dir");
	ck_assert_int_eq(c.data.train_end, 2500);
	ck_assert(c.data.scale == 127.5);
	ck_assert(!c.train.shuffle);
	ck_assert_uint_eq(c.train.seed, UINT64_MAX);
	ck_assert(c.optim.lr == 3e-4);
	ck_assert(c.optim.beta1 == 0.0);
	ck_assert(c.optim.nesterov);
	ck_assert_int_eq(c.optim.clip, CONFIG_CLIP_NORM);
	ck_assert_str_eq(c.run.name, "exp-1.a_b");
	ck_assert_int_eq(c.inject.nan_step, 7);
	ck_assert_int_eq(c.inject.nan_phase, CONFIG_NAN_PHASE_GRAD);
	ck_assert_int_eq(c.train.epochs, 3);
	ck_assert_int_eq(c.model.init_seed, -1);

	/* an empty file changes nothing */
	struct config d = c;
	ck_assert_int_eq(config_load_file(&d, fixture(""), &err), VB_OK);
	assert_same(&c, &d);
}
END_TEST

START_TEST(test_load_bad_values)
{
	/* wrong type, on line 7 after comments and other keys */
	check_load_error("; x\n; y\n\n[model]\nkind = vae\nrecon = mse\n"
			 "latent = abc\n", VB_ERR_CONFIG,
			 "7: model.latent = \"abc\": expected an integer in "
			 "1..4096");
	check_load_error("[optim]\nlr = 1e-3x\n", VB_ERR_CONFIG,
			 "2: optim.lr = \"1e-3x\": expected a number > 0");
	check_load_error("[train]\nshuffle = maybe\n", VB_ERR_CONFIG,
			 "2: train.shuffle = \"maybe\": expected true or false");
	check_load_error("[train]\nbatch = \n", VB_ERR_CONFIG,
			 "2: train.batch = \"\": expected an integer >= 1");
	check_load_error("[train]\nbatch = 1.5\n", VB_ERR_CONFIG,
			 "2: train.batch = \"1.5\": expected an integer >= 1");
	check_load_error("[train]\nbatch = 0x10\n", VB_ERR_CONFIG,
			 "2: train.batch = \"0x10\": expected an integer >= 1");
	check_load_error("[train]\nbatch = 1e30\n", VB_ERR_CONFIG,
			 "2: train.batch = \"1e30\": expected an integer >= 1");
	check_load_error("[train]\nbatch = 99999999999999999999\n",
			 VB_ERR_CONFIG, "2: train.batch = "
			 "\"99999999999999999999\": expected an integer >= 1");
	check_load_error("[train]\nseed = -1\n", VB_ERR_CONFIG,
			 "2: train.seed = \"-1\": expected an integer in "
			 "0..18446744073709551615");
	check_load_error("[optim]\nlr = nan\n", VB_ERR_CONFIG,
			 "2: optim.lr = \"nan\": expected a number > 0");
	check_load_error("[optim]\nlr = inf\n", VB_ERR_CONFIG,
			 "2: optim.lr = \"inf\": expected a number > 0");
	/* out of range */
	check_load_error("[model]\nlatent = 5000\n", VB_ERR_CONFIG,
			 "2: model.latent = \"5000\": expected an integer in "
			 "1..4096");
	check_load_error("[model]\nlatent = 0\n", VB_ERR_CONFIG,
			 "2: model.latent = \"0\": expected an integer in "
			 "1..4096");
	check_load_error("[optim]\nlr = 0\n", VB_ERR_CONFIG,
			 "2: optim.lr = \"0\": expected a number > 0");
	check_load_error("[optim]\nbeta1 = 1\n", VB_ERR_CONFIG,
			 "2: optim.beta1 = \"1\": expected a number in [0, 1)");
	check_load_error("[optim]\nadam_eps = -1e-9\n", VB_ERR_CONFIG,
			 "2: optim.adam_eps = \"-1e-9\": expected a number "
			 ">= 0");
	check_load_error("[data]\ntrain_end = -2\n", VB_ERR_CONFIG,
			 "2: data.train_end = \"-2\": expected an integer >= "
			 "-1");
	/* enum value not in the list */
	check_load_error("[model]\nrecon = l1\n", VB_ERR_CONFIG,
			 "2: model.recon = \"l1\": expected one of mse|bce");
	check_load_error("[data]\ndataset = MNIST\n", VB_ERR_CONFIG,
			 "2: data.dataset = \"MNIST\": expected one of "
			 "mnist|fashion-mnist|synthetic");
	/* strings */
	check_load_error("[run]\nname = a/b\n", VB_ERR_CONFIG,
			 "2: run.name = \"a/b\": expected a name of 1 to 190 "
			 "characters A-Z a-z 0-9 . _ - (not . or ..)");
	check_load_error("[run]\nname = ..\n", VB_ERR_CONFIG,
			 "2: run.name = \"..\": expected a name of 1 to 190 "
			 "characters A-Z a-z 0-9 . _ - (not . or ..)");
	check_load_error("[run]\nout_dir =\n", VB_ERR_CONFIG,
			 "2: run.out_dir = \"\": expected a non-empty path of "
			 "at most 187 characters without ';', control "
			 "characters or surrounding spaces");
	check_load_error("[data]\ndir = a;b\n", VB_ERR_CONFIG,
			 "2: data.dir = \"a;b\": expected a path of at most 191 "
			 "characters without ';', control characters or "
			 "surrounding spaces");
}
END_TEST

START_TEST(test_load_bad_structure)
{
	check_load_error("[modle]\nlatent = 3\n", VB_ERR_CONFIG,
			 "2: unknown section [modle] (key latent), expected "
			 "one of " SECTIONS);
	check_load_error("[model]\nlatnt = 3\n", VB_ERR_CONFIG,
			 "2: unknown key model.latnt, expected one of "
			 MODEL_KEYS);
	check_load_error("latent = 3\n", VB_ERR_CONFIG,
			 "1: key latent outside any section, expected a "
			 "[section] line first");
	check_load_error("[Model]\nlatent = 3\n", VB_ERR_CONFIG,
			 "2: unknown section [Model] (key latent), expected "
			 "one of " SECTIONS);
	/* duplicate key in the same file, also across repeated sections */
	check_load_error("[model]\nlatent = 3\nhidden = 4\nlatent = 5\n",
			 VB_ERR_CONFIG, "4: model.latent given twice (first at "
			 "line 2), expected each key once");
	check_load_error("[model]\nlatent = 3\n[train]\nbatch = 2\n[model]\n"
			 "latent = 3\n", VB_ERR_CONFIG,
			 "6: model.latent given twice (first at line 2), "
			 "expected each key once");
	/* syntax errors: inih does not call the handler */
	check_load_error("[model]\nlatent\n", VB_ERR_CONFIG,
			 "2: expected \"key = value\", \"[section]\" or a "
			 "comment");
	check_load_error("[model\nlatent = 3\n", VB_ERR_CONFIG,
			 "1: expected \"key = value\", \"[section]\" or a "
			 "comment");
	/* the first error is kept: syntax error on 2, bad values on 3, 4 */
	check_load_error("[model]\noops\nlatent = abc\nhidden = x\n",
			 VB_ERR_CONFIG, "2: expected \"key = value\", "
			 "\"[section]\" or a comment");
	check_load_error("[model]\nlatent = abc\nhidden = x\noops\n",
			 VB_ERR_CONFIG, "2: model.latent = \"abc\": expected "
			 "an integer in 1..4096");
	/* indented continuation (inih multi-line) */
	check_load_error("[model]\nlatent = 3\n  hidden = 4\n", VB_ERR_CONFIG,
			 "3: indented line continues model.latent, expected "
			 "\"key = value\" (multi-line values are not "
			 "supported)");
}
END_TEST

START_TEST(test_load_limits)
{
	/* data.dir: 197 - strlen("dir = ") = 191 characters fit a line */
	char text[300], dir[200];
	struct config c;
	struct vb_error err = { 0 };
	memset(dir, 'd', 191);
	dir[191] = '\0';
	snprintf(text, sizeof text, "[data]\ndir = %s\n", dir);
	config_defaults(&c);
	ck_assert_int_eq(config_load_file(&c, fixture(text), &err), VB_OK);
	ck_assert_str_eq(c.data.dir, dir);
	/* 192 do not: line too long */
	snprintf(text, sizeof text, "[data]\ndir = %sd\n", dir);
	char tail[128];
	snprintf(tail, sizeof tail, "2: line of 198 characters, expected at "
		 "most %d", CONFIG_LINE_MAX);
	check_load_error(text, VB_ERR_CONFIG, tail);
	/* nor through --set (the written file could not be read back) */
	char set[300];
	snprintf(set, sizeof set, "data.dir=%sd", dir);
	ck_assert_int_eq(config_set(&c, set, &err), VB_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(err.msg, "expected a path of at most "
					      "191 characters"));
}
END_TEST

START_TEST(test_load_io)
{
	struct config c, d;
	struct vb_error err = { 0 };
	const char *dir = tu_tmpdir("config");
	char path[4096];
	snprintf(path, sizeof path, "%s", tu_path(dir, "missing.ini"));
	config_defaults(&c);
	d = c;
	ck_assert_int_eq(config_load_file(&c, path, &err), VB_ERR_IO);
	ck_assert_int_eq(err.status, VB_ERR_IO);
	ck_assert_ptr_nonnull(strstr(err.msg, "config: cannot open "));
	ck_assert_ptr_nonnull(strstr(err.msg, path));
	assert_same(&c, &d);
	/* a folder opens but cannot be read */
	vb_error_clear(&err);
	ck_assert_int_eq(config_load_file(&c, dir, &err), VB_ERR_IO);
	ck_assert_ptr_nonnull(strstr(err.msg, dir));
	assert_same(&c, &d);
}
END_TEST

START_TEST(test_set_good)
{
	struct config c;
	struct vb_error err = { 0 };
	config_defaults(&c);
	ck_assert_int_eq(config_set(&c, "model.latent=32", &err), VB_OK);
	ck_assert_int_eq(config_set(&c, "  optim.lr =  3e-7 ", &err), VB_OK);
	ck_assert_int_eq(config_set(&c, "data.dir= /tmp/my dir=x ", &err),
			 VB_OK);
	ck_assert_int_eq(config_set(&c, "train.shuffle=false", &err), VB_OK);
	ck_assert_int_eq(config_set(&c, "optim.kind=sgd", &err), VB_OK);
	ck_assert_int_eq(config_set(&c, "train.seed=12345678901234567890",
				    &err), VB_OK);
	ck_assert_int_eq(config_set(&c, "train.max_steps=1e3", &err), VB_OK);
	ck_assert_int_eq(config_set(&c, "data.dir=", &err), VB_OK);
	ck_assert_str_eq(c.data.dir, "");
	ck_assert_int_eq(config_set(&c, "data.train_end=-1", &err), VB_OK);
	ck_assert_int_eq(err.status, VB_OK);
	ck_assert_int_eq(c.model.latent, 32);
	ck_assert(c.optim.lr == 3e-7);
	ck_assert(!c.train.shuffle);
	ck_assert_int_eq(c.optim.kind, OPTIM_SGD);
	ck_assert_uint_eq(c.train.seed, 12345678901234567890u);
	ck_assert_int_eq(c.train.max_steps, 1000);
	ck_assert_int_eq(config_set(&c, "data.dir= /tmp/my dir=x ", &err),
			 VB_OK);
	ck_assert_str_eq(c.data.dir, "/tmp/my dir=x");
	/* the last assignment wins */
	ck_assert_int_eq(config_set(&c, "model.latent=8", &err), VB_OK);
	ck_assert_int_eq(c.model.latent, 8);
	/* config_set_key, for sweeps */
	ck_assert_int_eq(config_set_key(&c, "optim.beta2", "0.99", &err),
			 VB_OK);
	ck_assert(c.optim.beta2 == 0.99);
	ck_assert_int_eq(config_set_key(&c, "optim.beta2", "2", &err),
			 VB_ERR_CONFIG);
	ck_assert_str_eq(err.msg, "config: optim.beta2 = \"2\": expected a "
			 "number in [0, 1)");
	ck_assert(c.optim.beta2 == 0.99);
	vb_error_clear(&err);
	ck_assert_int_eq(config_set_key(&c, "optim.beta3", "0", &err),
			 VB_ERR_CONFIG);
	ck_assert_str_eq(err.msg, "config: unknown key optim.beta3");
}
END_TEST

START_TEST(test_set_bad)
{
	check_set_error("model.latent=abc", "config: --set model.latent=abc: "
			"expected an integer in 1..4096");
	check_set_error("model.latent = 4097", "config: --set model.latent = "
			"4097: expected an integer in 1..4096");
	check_set_error("optim.lr=1e-3x", "config: --set optim.lr=1e-3x: "
			"expected a number > 0");
	check_set_error("train.shuffle=maybe", "config: --set "
			"train.shuffle=maybe: expected true or false");
	check_set_error("optim.clip=l2", "config: --set optim.clip=l2: "
			"expected one of none|norm|value|adaptive");
	check_set_error("model.latnt=3", "config: --set model.latnt=3: "
			"unknown key model.latnt, expected one of "
			MODEL_KEYS);
	check_set_error("modl.latent=3", "config: --set modl.latent=3: "
			"unknown section [modl] (key latent), expected one of "
			SECTIONS);
	check_set_error("model.latent", "config: --set model.latent: "
			"expected section.key=value");
	check_set_error("latent=3", "config: --set latent=3: expected "
			"section.key=value");
	check_set_error("run.name=a b", "config: --set run.name=a b: expected "
			"a name of 1 to 190 characters A-Z a-z 0-9 . _ - (not "
			". or ..)");
	check_set_error("train.seed=-1", "config: --set train.seed=-1: "
			"expected an integer in 0..18446744073709551615");
	check_set_error("train.seed=18446744073709551616", "config: --set "
			"train.seed=18446744073709551616: expected an integer "
			"in 0..18446744073709551615");
	check_set_error("data.dir=a\tb", "config: --set data.dir=a\tb: "
			"expected a path of at most 191 characters without "
			"';', control characters or surrounding spaces");
}
END_TEST

START_TEST(test_get_format)
{
	struct config c;
	struct vb_error err = { 0 };
	char buf[CONFIG_VALUE_LEN];
	config_defaults(&c);
	c.optim.lr = 1e-3;
	get(&c, "optim.lr", buf);
	ck_assert_str_eq(buf, "0.001");
	c.optim.lr = 0.1;
	get(&c, "optim.lr", buf);
	ck_assert_str_eq(buf, "0.1");
	c.optim.lr = 1e-4;
	get(&c, "optim.lr", buf);
	ck_assert_str_eq(buf, "0.0001");
	c.optim.lr = 3e-7;
	get(&c, "optim.lr", buf);
	ck_assert_str_eq(buf, "3e-07");
	c.optim.lr = 0.1 + 0.2; /* needs all 17 digits */
	get(&c, "optim.lr", buf);
	ck_assert_str_eq(buf, "0.30000000000000004");
	c.optim.lr = 1.0 / 3.0;
	get(&c, "optim.lr", buf);
	ck_assert_str_eq(buf, "0.3333333333333333");
	c.optim.lr = 1234567.0; /* 7 digits: %.6g would round it */
	get(&c, "optim.lr", buf);
	ck_assert_str_eq(buf, "1234567");
	c.optim.lr = 1e20;
	get(&c, "optim.lr", buf);
	ck_assert_str_eq(buf, "1e+20");
	c.train.seed = UINT64_MAX;
	get(&c, "train.seed", buf);
	ck_assert_str_eq(buf, "18446744073709551615");
	c.model.init_seed = -1;
	get(&c, "model.init_seed", buf);
	ck_assert_str_eq(buf, "-1");
	c.optim.nesterov = true;
	get(&c, "optim.nesterov", buf);
	ck_assert_str_eq(buf, "true");
	c.data.dataset = CONFIG_DATASET_SYNTHETIC;
	get(&c, "data.dataset", buf);
	ck_assert_str_eq(buf, "synthetic");
	get(&c, "run.out_dir", buf);
	ck_assert_str_eq(buf, "runs");

	/* errors */
	ck_assert_int_eq(config_get(&c, "model.nope", buf, sizeof buf, &err),
			 VB_ERR_CONFIG);
	ck_assert_str_eq(err.msg, "config: unknown key model.nope");
	vb_error_clear(&err);
	ck_assert_int_eq(config_get(&c, "optim.lr", buf, 4, &err),
			 VB_ERR_INTERNAL);
	ck_assert_str_eq(err.msg, "config: value of optim.lr needs 6 bytes, "
			 "buffer holds 4");
	vb_error_clear(&err);
	ck_assert_int_eq(config_get(&c, "optim.lr", buf, 6, &err), VB_OK);
	ck_assert_str_eq(buf, "1e+20");
	c.model.recon = 7;
	ck_assert_int_eq(config_get(&c, "model.recon", buf, sizeof buf, &err),
			 VB_ERR_CONFIG);
	ck_assert_str_eq(err.msg, "config: model.recon holds 7, expected 0..1");
	vb_error_clear(&err);
	ck_assert_int_eq(config_get_at(&c, config_key_count(), buf, sizeof buf,
				       &err), VB_ERR_CONFIG);
}
END_TEST

/* Sets every foundation key away from its default, with awkward doubles
 * (keys added later by other modules are tested in their suites). */
static const char *const unusual_sets[] = {
		"run.name=sweep_a-1.x", "run.out_dir=/tmp/out dir/x=y",
		"run.progress=off", "run.checkpoint_every=250",
		"data.dataset=synthetic", "data.dir=../data/mnist",
		"data.train_split=t10k", "data.train_begin=5",
		"data.train_end=500", "data.eval_split=train",
		"data.eval_begin=1", "data.eval_end=100", "data.scale=0.1",
		"data.synthetic_n=600", "data.synthetic_eval_n=200",
		"model.latent=2", "model.hidden=300", "model.recon=bce",
		"model.init_seed=42", "train.epochs=3", "train.batch=7",
		"train.eval_batch=1000", "train.seed=18446744073709551615",
		"train.shuffle=false", "train.blas_threads=4",
		"train.nan_check=pythae", "train.max_steps=99",
		"optim.kind=adamw", "optim.lr=1e-4", "optim.beta1=0.1",
		"optim.beta2=0.30000000000000004", "optim.adam_eps=3e-7",
		"optim.weight_decay=0.01", "optim.momentum=0.9",
		"optim.dampening=0.5", "optim.nesterov=true",
		"optim.clip=value", "optim.clip_max=2.5",
		"optim.clip_eps=5e-324", "optim.schedule=cosine",
		"optim.step_size=30", "optim.gamma=0.5",
		"optim.warmup_steps=10", "optim.min_lr=1e-10",
		"inject.nan_step=12", "inject.nan_phase=param",
};

static bool in_unusual(const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < sizeof unusual_sets / sizeof unusual_sets[0]; i++)
		if (!strncmp(unusual_sets[i], name, n) &&
		    unusual_sets[i][n] == '=')
			return true;
	return false;
}

static void make_unusual(struct config *c)
{
	struct vb_error err = { 0 };
	config_defaults(c);
	for (size_t i = 0; i < sizeof unusual_sets / sizeof unusual_sets[0]; i++)
		if (config_set(c, unusual_sets[i], &err) != VB_OK)
			ck_abort_msg("%s", err.msg);
}

START_TEST(test_round_trip)
{
	struct config a, b, defaults;
	struct vb_error err = { 0 };
	char buf[CONFIG_VALUE_LEN], da[CONFIG_VALUE_LEN];
	make_unusual(&a);
	config_defaults(&defaults);
	/* every key but the single-valued enums differs from its default */
	for (size_t i = 0; i < config_key_count(); i++) {
		const char *name = config_key_name(i);
		if (config_enum_count(name) == 1 || !in_unusual(name))
			continue;
		get(&a, name, buf);
		get(&defaults, name, da);
		if (strcmp(buf, da) == 0)
			ck_abort_msg("%s left at its default", name);
	}
	ck_assert_int_eq(config_validate(&a, &err), VB_OK);

	const char *dir = tu_tmpdir("config");
	char path[4096], path2[4096];
	snprintf(path, sizeof path, "%s", tu_path(dir, "config.ini"));
	snprintf(path2, sizeof path2, "%s", tu_path(dir, "again.ini"));
	ck_assert_int_eq(config_write_file(&a, path, &err), VB_OK);
	ck_assert_int_eq(err.status, VB_OK);
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	ck_assert_int_ne(access(tmp, F_OK), 0);

	config_defaults(&b);
	ck_assert_int_eq(config_load_file(&b, path, &err), VB_OK);
	assert_same(&a, &b);
	ck_assert(b.optim.lr == 1e-4);
	ck_assert(b.optim.adam_eps == 3e-7);
	ck_assert(b.data.scale == 0.1);
	ck_assert(b.optim.beta2 == 0.1 + 0.2);
	ck_assert(b.optim.clip_eps == 5e-324);
	ck_assert_uint_eq(b.train.seed, UINT64_MAX);
	ck_assert_str_eq(b.run.out_dir, "/tmp/out dir/x=y");

	/* written again, byte for byte the same */
	ck_assert_int_eq(config_write_file(&b, path2, &err), VB_OK);
	size_t n1, n2;
	char *t1 = tu_read_file(path, &n1), *t2 = tu_read_file(path2, &n2);
	ck_assert_ptr_nonnull(t1);
	ck_assert_ptr_nonnull(t2);
	ck_assert_uint_eq(n1, n2);
	ck_assert_int_eq(memcmp(t1, t2, n1), 0);
	ck_assert_ptr_nonnull(strstr(t1, "[optim]\nkind = adamw\nlr = 0.0001\n"));
	ck_assert_ptr_nonnull(strstr(t1, "\nadam_eps = 3e-07\n"));
	ck_assert(strncmp(t1, "[run]\nname = sweep_a-1.x\n", 25) == 0);
	free(t1);
	free(t2);

	/* defaults too (empty data.dir is written as "dir =") */
	ck_assert_int_eq(config_write_file(&defaults, path, &err), VB_OK);
	t1 = tu_read_file(path, &n1);
	ck_assert_ptr_nonnull(t1);
	ck_assert_ptr_nonnull(strstr(t1, "\ndir =\n"));
	ck_assert_ptr_nonnull(strstr(t1, "\n\n[data]\ndataset = mnist\n"));
	free(t1);
	ck_assert_int_eq(config_load_file(&b, path, &err), VB_OK);
	assert_same(&defaults, &b);

	/* config_write to a stream loads back as well */
	FILE *f = fopen(path2, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(config_write(&a, f, &err), VB_OK);
	ck_assert_int_eq(fclose(f), 0);
	config_defaults(&b);
	ck_assert_int_eq(config_load_file(&b, path2, &err), VB_OK);
	assert_same(&a, &b);
}
END_TEST

START_TEST(test_write_errors)
{
	struct config c;
	struct vb_error err = { 0 };
	const char *dir = tu_tmpdir("config");
	char path[4096];
	config_defaults(&c);
	/* no such folder */
	snprintf(path, sizeof path, "%s", tu_path(dir, "no/such/x.ini"));
	ck_assert_int_eq(config_write_file(&c, path, &err), VB_ERR_IO);
	ck_assert_ptr_nonnull(strstr(err.msg, "config: cannot create "));
	ck_assert_ptr_nonnull(strstr(err.msg, path));
	/* a value set directly out of range is refused, nothing is left */
	vb_error_clear(&err);
	snprintf(path, sizeof path, "%s", tu_path(dir, "x.ini"));
	c.model.latent = 0;
	ck_assert_int_eq(config_write_file(&c, path, &err), VB_ERR_CONFIG);
	ck_assert_str_eq(err.msg, "config: model.latent = \"0\": expected an "
			 "integer in 1..4096");
	ck_assert_int_ne(access(path, F_OK), 0);
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	ck_assert_int_ne(access(tmp, F_OK), 0);
	/* a string that would not load back */
	vb_error_clear(&err);
	config_defaults(&c);
	snprintf(c.run.name, sizeof c.run.name, "a\nb");
	ck_assert_int_eq(config_write_file(&c, path, &err), VB_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(err.msg, "config: run.name = \"a\nb\": "
					      "expected a name"));
}
END_TEST

/* The dependency list names real keys and valid values, and answers as
 * the code that reads each key acts (issue 15 item 7). */
START_TEST(test_requires)
{
	struct config c;
	struct vb_error err = {0};
	char why[512];
	int k = config_key_index("nets.init_scale");
	ck_assert_msg(config_key_requires_check(&err) == VB_OK, "%s", err.msg);
	config_defaults(&c);
	ck_assert(!config_key_effective(&c, (size_t)k, why, sizeof why));
	ck_assert_str_eq(why, "nets.init = scaled (here nets.init = pytorch)");
	ck_assert(config_set_key(&c, "nets.init", "scaled", NULL) == VB_OK);
	ck_assert(config_key_effective(&c, (size_t)k, why, sizeof why));
	ck_assert_str_eq(why, "");
	/* keys without a rule always act */
	ck_assert(config_key_effective(&c, (size_t)config_key_index("optim.lr"),
				       NULL, 0));
	/* two rules for one key must both hold */
	k = config_key_index("optim.dampening");
	ck_assert(config_set_key(&c, "optim.kind", "sgd", NULL) == VB_OK);
	ck_assert(!config_key_effective(&c, (size_t)k, why, sizeof why));
	ck_assert_msg(strstr(why, "optim.momentum != 0") != NULL, "%s", why);
	ck_assert(config_set_key(&c, "optim.momentum", "0.9", NULL) == VB_OK);
	ck_assert(config_key_effective(&c, (size_t)k, NULL, 0));
}
END_TEST

START_TEST(test_validate)
{
	struct config c;
	struct vb_error err = { 0 };
	config_defaults(&c);
	c.data.train_begin = 100;
	c.data.train_end = 50;
	ck_assert_int_eq(config_validate(&c, &err), VB_ERR_CONFIG);
	ck_assert_str_eq(err.msg, "config: data.train_end = 50: expected -1 "
			 "or > data.train_begin = 100");
	/* equal is empty: also refused */
	vb_error_clear(&err);
	c.data.train_end = 100;
	ck_assert_int_eq(config_validate(&c, &err), VB_ERR_CONFIG);
	c.data.train_end = -1; /* to the end: any begin */
	vb_error_clear(&err);
	ck_assert_int_eq(config_validate(&c, &err), VB_OK);

	c.data.eval_begin = 10;
	c.data.eval_end = 5;
	ck_assert_int_eq(config_validate(&c, &err), VB_ERR_CONFIG);
	ck_assert_str_eq(err.msg, "config: data.eval_end = 5: expected -1 "
			 "or > data.eval_begin = 10");

	/* synthetic ranges depend on synthetic_n */
	config_defaults(&c);
	vb_error_clear(&err);
	c.data.dataset = CONFIG_DATASET_SYNTHETIC;
	c.data.train_end = 600;
	ck_assert_int_eq(config_validate(&c, &err), VB_ERR_CONFIG);
	ck_assert_str_eq(err.msg, "config: data.train_end = 600: expected -1 "
			 "or <= data.synthetic_n = 512 for the synthetic "
			 "dataset");
	vb_error_clear(&err);
	c.data.train_end = -1;
	c.data.eval_begin = 128;
	ck_assert_int_eq(config_validate(&c, &err), VB_ERR_CONFIG);
	ck_assert_str_eq(err.msg, "config: data.eval_begin = 128: expected < "
			 "data.synthetic_eval_n = 128 for the synthetic "
			 "dataset");
	/* the same ranges are fine for mnist */
	vb_error_clear(&err);
	c.data.dataset = CONFIG_DATASET_MNIST;
	ck_assert_int_eq(config_validate(&c, &err), VB_OK);

	/* nesterov needs momentum and no dampening (sgd) */
	config_defaults(&c);
	c.optim.kind = OPTIM_SGD;
	c.optim.nesterov = true;
	ck_assert_int_eq(config_validate(&c, &err), VB_ERR_CONFIG);
	ck_assert_str_eq(err.msg, "config: optim.nesterov = true: expected "
			 "optim.momentum > 0 and optim.dampening = 0 (have 0 "
			 "and 0)");
	vb_error_clear(&err);
	c.optim.momentum = 0.9;
	ck_assert_int_eq(config_validate(&c, &err), VB_OK);

	/* cosine: min_lr <= lr */
	config_defaults(&c);
	c.optim.schedule = OPTIM_SCHEDULE_COSINE;
	c.optim.min_lr = 0.01;
	ck_assert_int_eq(config_validate(&c, &err), VB_ERR_CONFIG);
	ck_assert_str_eq(err.msg, "config: optim.min_lr = 0.01: expected <= "
			 "optim.lr = 0.001 for the cosine schedule");
	vb_error_clear(&err);
	c.optim.schedule = OPTIM_SCHEDULE_CONSTANT;
	ck_assert_int_eq(config_validate(&c, &err), VB_OK);

	/* adaptive clipping: warm-up within the window */
	config_defaults(&c);
	c.optim.clip = CONFIG_CLIP_ADAPTIVE;
	c.optim.clip_warmup = 51;
	ck_assert_int_eq(config_validate(&c, &err), VB_ERR_CONFIG);
	ck_assert_str_eq(err.msg, "config: optim.clip_warmup = 51: expected "
			 "<= optim.clip_window = 50 for adaptive clipping");
	vb_error_clear(&err);
	c.optim.clip = CONFIG_CLIP_NORM; /* not used: no constraint */
	ck_assert_int_eq(config_validate(&c, &err), VB_OK);

	/* fields set directly out of range */
	config_defaults(&c);
	c.optim.lr = -1;
	ck_assert_int_eq(config_validate(&c, &err), VB_ERR_CONFIG);
	ck_assert_str_eq(err.msg, "config: optim.lr = \"-1\": expected a "
			 "number > 0");
	vb_error_clear(&err);
	config_defaults(&c);
	c.train.nan_check = CONFIG_NAN_CHECK_COUNT;
	ck_assert_int_eq(config_validate(&c, &err), VB_ERR_CONFIG);
	ck_assert_str_eq(err.msg, "config: train.nan_check holds 3, expected "
			 "0..2");
}
END_TEST

TU_MAIN("config", "config", 0, test_key_table, test_defaults,
	 test_defaults_whole_struct, test_load_good,
	test_bool_strict, test_load_bad_values, test_load_bad_structure,
	test_load_limits, test_load_io, test_set_good, test_set_bad,
	test_get_format, test_round_trip, test_write_errors, test_validate,
	test_requires)
