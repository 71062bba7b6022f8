/* fuzz_util: scratch files and failure reporting for the harnesses
 * (fuzz.h). One scratch file per suffix and process, so parallel fuzzers
 * and ctest -j never share one. */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_MAX_SCRATCH 4
#define FUZZ_PATH_LEN 512

struct fuzz_scratch {
	char suffix[16];
	char path[FUZZ_PATH_LEN];
};

/* Harness-process state: the scratch files made so far. */
static struct fuzz_scratch fuzz_files[FUZZ_MAX_SCRATCH];
static int fuzz_n_files;

static void fuzz_cleanup(void)
{
	for (int i = 0; i < fuzz_n_files; i++)
		unlink(fuzz_files[i].path);
}

_Noreturn void fuzz_fail(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz: %s%s%s\n", what, detail ? ": " : "",
		detail ? detail : "");
	abort();
}

static const char *fuzz_scratch_path(const char *suffix)
{
	for (int i = 0; i < fuzz_n_files; i++)
		if (strcmp(fuzz_files[i].suffix, suffix) == 0)
			return fuzz_files[i].path;
	if (fuzz_n_files == FUZZ_MAX_SCRATCH ||
	    strlen(suffix) >= sizeof fuzz_files[0].suffix)
		fuzz_fail("too many scratch suffixes", suffix);
	const char *dir = getenv("TMPDIR");
	struct fuzz_scratch *f = &fuzz_files[fuzz_n_files];
	int n = snprintf(f->path, sizeof f->path, "%s/vb-fuzz-%ld-%d%s",
			 dir && *dir ? dir : "/tmp", (long)getpid(),
			 fuzz_n_files, suffix);
	if (n < 0 || (size_t)n >= sizeof f->path)
		fuzz_fail("scratch path too long", dir);
	snprintf(f->suffix, sizeof f->suffix, "%s", suffix);
	if (fuzz_n_files++ == 0)
		atexit(fuzz_cleanup);
	return f->path;
}

const char *fuzz_write_tmp(const uint8_t *data, size_t size,
			   const char *suffix)
{
	const char *path = fuzz_scratch_path(suffix);
	FILE *f = fopen(path, "wb");
	if (!f)
		fuzz_fail("cannot create scratch file", path);
	if ((size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
		fuzz_fail("cannot write scratch file", path);
	return path;
}

char *fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		fuzz_fail("no memory", NULL);
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}
