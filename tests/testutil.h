/* testutil: small helpers shared by the Check suites (temporary folders,
 * writing files). Each suite links this file; none includes a .c. */
#ifndef VB_TESTS_TESTUTIL_H
#define VB_TESTS_TESTUTIL_H

#include <stddef.h>

#include <check.h>

/* A fresh empty folder for this suite (under $VB_TEST_TMP, else /tmp),
 * unique per call; the returned string is static storage of this call
 * until the next call. Aborts the test on failure. */
const char *tu_tmpdir(const char *tag);

/* Joins dir and name into a static buffer (valid until the next call). */
const char *tu_path(const char *dir, const char *name);

/* Writes n bytes to path; returns 0 on success. */
int tu_write_file(const char *path, const void *data, size_t n);

/* Reads a whole file into a malloc'd buffer (NUL-terminated, *n bytes);
 * NULL on failure. */
char *tu_read_file(const char *path, size_t *n);

/* Runs suite s (CK_NORMAL output) and returns EXIT_SUCCESS when every
 * test passed, else EXIT_FAILURE: the body of each suite's main. */
int tu_run(Suite *s);

#endif
