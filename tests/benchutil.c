/* benchutil: config keys, whole training runs and run files for the
 * suites that link vb_bench. */
#include "benchutil.h"

#include <check.h>
#include <stdio.h>

#include "testutil.h"

void bu_set(struct config *c, const char *kv)
{
	struct vb_error err = {0};
	ck_assert_msg(config_set(c, kv, &err) == VB_OK, "%s: %s", kv,
		      err.msg);
}

void bu_set_key(struct config *c, const char *key, const char *value)
{
	struct vb_error err = {0};
	ck_assert_msg(config_set_key(c, key, value, &err) == VB_OK, "%s: %s",
		      key, err.msg);
}

void bu_set_all(struct config *c, const char *const *kvs)
{
	for (size_t i = 0; kvs[i]; i++)
		bu_set(c, kvs[i]);
}

void bu_small_config(struct config *c, const char *dir, const char *name)
{
	config_defaults(c);
	BU_SET(c, "data.dataset=synthetic", "data.synthetic_n=256",
	       "data.synthetic_eval_n=64", "model.hidden=32", "train.batch=32",
	       "train.epochs=3", "run.progress=off");
	bu_set_key(c, "run.out_dir", dir);
	bu_set_key(c, "run.name", name);
}

void bu_train_config(struct config *c, const char *dir, const char *name)
{
	bu_small_config(c, dir, name);
	BU_SET(c, "model.latent=4", "model.recon=bce");
}

void bu_run(const struct config *c, const struct train_options *o,
	    struct train_summary *s)
{
	struct train_data d;
	struct vb_error err = {0};
	ck_assert_msg(config_validate(c, &err) == VB_OK, "%s", err.msg);
	ck_assert_msg(train_data_load(c, &d, &err) == VB_OK, "%s", err.msg);
	ck_assert_msg(train_run_opts(c, &d, o, s, NULL, &err) == VB_OK, "%s",
		      err.msg);
	train_data_free(&d);
}

char *bu_read_run_file(const struct train_summary *s, const char *f)
{
	char path[1300];
	snprintf(path, sizeof path, "%s/%s", s->run_dir, f);
	char *t = tu_read_file(path, NULL);
	ck_assert_msg(t != NULL, "cannot read %s", path);
	return t;
}
