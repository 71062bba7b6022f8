/* fuzz_config: the config INI parser (bench/config.h) on arbitrary bytes:
 * config_load_file over the defaults, then each input line as a --set
 * override (config_set). Properties: a failure leaves the config
 * unchanged and gives one line starting "config: "; a loaded config that
 * validates writes (config_write) an INI that loads back to the same value
 * of every key, as config.h promises. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

static void check_error(const struct vb_error *err, const struct config *c,
			const struct config *before)
{
	if (strncmp(err->msg, "config: ", 8) != 0 || strchr(err->msg, '\n'))
		fuzz_fail("config: error message not one 'config: ' line",
			  err->msg);
	for (size_t i = 0; i < config_key_count(); i++) {
		char a[CONFIG_VALUE_LEN], b[CONFIG_VALUE_LEN];
		struct vb_error e2;
		vb_error_clear(&e2);
		if (config_get_at(c, i, a, sizeof a, &e2) != VB_OK ||
		    config_get_at(before, i, b, sizeof b, &e2) != VB_OK ||
		    strcmp(a, b) != 0)
			fuzz_fail("config: a failed load changed a value",
				  config_key_name(i));
	}
}

/* config_write -> config_load_file round trip: same canonical values. */
static void round_trip(const struct config *c)
{
	const char *path = fuzz_write_tmp((const uint8_t *)"", 0, ".out.ini");
	struct vb_error err;
	vb_error_clear(&err);
	FILE *f = fopen(path, "w");
	if (!f)
		fuzz_fail("cannot open scratch file", path);
	enum vb_status st = config_write(c, f, &err);
	if (fclose(f) != 0 || st != VB_OK)
		fuzz_fail("config_write of a valid config failed", err.msg);
	struct config *back = malloc(sizeof *back);
	if (!back)
		fuzz_fail("no memory", NULL);
	config_defaults(back);
	if (config_load_file(back, path, &err) != VB_OK)
		fuzz_fail("config_write output does not load back", err.msg);
	for (size_t i = 0; i < config_key_count(); i++) {
		char a[CONFIG_VALUE_LEN], b[CONFIG_VALUE_LEN];
		if (config_get_at(c, i, a, sizeof a, &err) != VB_OK ||
		    config_get_at(back, i, b, sizeof b, &err) != VB_OK)
			fuzz_fail("config_get_at failed", err.msg);
		if (strcmp(a, b) != 0)
			fuzz_fail("config round trip changed a value",
				  config_key_name(i));
	}
	free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_write_tmp(data, size, ".ini");
	struct config *c = malloc(sizeof *c), *before = malloc(sizeof *c);
	struct vb_error err;
	if (!c || !before)
		fuzz_fail("no memory", NULL);
	config_defaults(c);
	memcpy(before, c, sizeof *c);
	vb_error_clear(&err);
	if (config_load_file(c, path, &err) != VB_OK)
		check_error(&err, c, before);
	else if (config_validate(c, &err) == VB_OK)
		round_trip(c);

	/* every line as a --set assignment on the defaults */
	char *text = fuzz_strndup(data, size), *save = NULL;
	config_defaults(c);
	for (char *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		memcpy(before, c, sizeof *c);
		vb_error_clear(&err);
		if (config_set(c, line, &err) != VB_OK)
			check_error(&err, c, before);
	}
	vb_error_clear(&err);
	if (config_validate(c, &err) == VB_OK)
		round_trip(c);
	free(text);
	free(c);
	free(before);
	return 0;
}
