/* testutil: temporary folders and whole-file reads and writes for tests. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "testutil.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *tu_tmpdir(const char *tag)
{
	static char buf[4096];
	static unsigned counter;
	const char *base = getenv("VB_TEST_TMP");
	if (!base || !*base)
		base = "/tmp";
	mkdir(base, 0777);
	snprintf(buf, sizeof buf, "%s/%s-%ld-%u-XXXXXX", base, tag,
		 (long)getpid(), counter++);
	if (!mkdtemp(buf)) {
		perror("tu_tmpdir");
		abort();
	}
	return buf;
}

const char *tu_path(const char *dir, const char *name)
{
	static char buf[4096];
	snprintf(buf, sizeof buf, "%s/%s", dir, name);
	return buf;
}

int tu_write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	if (n && fwrite(data, 1, n, f) != n) {
		fclose(f);
		return -1;
	}
	return fclose(f) == 0 ? 0 : -1;
}

char *tu_read_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, len = 0;
	if (!f)
		return NULL;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			size_t ncap = cap ? cap * 2 : 8192;
			char *nb = realloc(buf, ncap);
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap = ncap;
		}
		size_t got = fread(buf + len, 1, 4096, f);
		len += got;
		if (got < 4096)
			break;
	}
	fclose(f);
	buf[len] = '\0';
	if (n)
		*n = len;
	return buf;
}

TCase *tu_tcase(Suite *s, const char *name, double timeout,
		const TTest *const *tests)
{
	TCase *tc = tcase_create(name);
	if (timeout > 0)
		tcase_set_timeout(tc, timeout);
	for (size_t i = 0; tests[i]; i++)
		tcase_add_test(tc, tests[i]);
	suite_add_tcase(s, tc);
	return tc;
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	if (ftw->level > 0)
		remove(path);
	return 0;
}

int tu_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	const char *tmp = getenv("VB_TEST_TMP");
	int failed;
	/* the suite's own scratch folder (ctest sets one per suite) keeps
	 * only the last run's folders: every run used to add its own
	 * (gigabytes over a day of runs) */
	if (tmp && *tmp && strcmp(tmp, "/tmp") != 0)
		nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

int tu_main_cases(const char *suite, const struct tu_case *cases)
{
	Suite *s = suite_create(suite);
	for (size_t i = 0; cases[i].name; i++) {
		TCase *tc = tu_tcase(s, cases[i].name, cases[i].timeout,
				     cases[i].tests);
		if (cases[i].loop)
			tcase_add_loop_test(tc, cases[i].loop, 0,
					    cases[i].n_loop);
	}
	return tu_run(s);
}
