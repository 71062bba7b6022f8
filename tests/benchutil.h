/* benchutil: the training-run boilerplate of the suites that link vb_bench
 * (set a key, validate + load + train, read a run file), for test_guard,
 * test_precision and, later, test_train, test_sweep, test_config. Apart
 * from testutil because it needs vb_bench: tests/CMakeLists.txt links it
 * into the suites that link vb_bench. Prefix bu_. */
#ifndef VB_TESTS_BENCHUTIL_H
#define VB_TESTS_BENCHUTIL_H

#include "config.h"
#include "train.h"

/* config_set(c, kv) ("section.key=value"); the test fails otherwise, with
 * kv and the message. */
void bu_set(struct config *c, const char *kv);

/* config_set_key(c, key, value); the test fails otherwise. */
void bu_set_key(struct config *c, const char *key, const char *value);

/* bu_set of each of the NULL-terminated settings, in order. */
void bu_set_all(struct config *c, const char *const *kvs);
#define BU_SET(c, ...) bu_set_all(c, (const char *const[]){__VA_ARGS__, NULL})

/* config_defaults, then the small synthetic run of the training suites:
 * 256 training and 64 evaluation images, model.hidden 32, train.batch 32
 * (8 steps per epoch), 3 epochs, no progress line, the run folder name
 * in dir. */
void bu_small_config(struct config *c, const char *dir, const char *name);

/* bu_small_config with model.latent 4 and model.recon bce: the runs of
 * the test_train suites. */
void bu_train_config(struct config *c, const char *dir, const char *name);

/* config_validate, train_data_load, train_run_opts(c, data, o, s) (o may
 * be NULL: the defaults, as train_run), train_data_free; any error fails
 * the test with its message. */
void bu_run(const struct config *c, const struct train_options *o,
	    struct train_summary *s);

/* The whole file f of run s (s->run_dir/f), malloc'd and NUL-terminated,
 * the caller's to free; the test fails when it cannot be read. */
char *bu_read_run_file(const struct train_summary *s, const char *f);

#endif
