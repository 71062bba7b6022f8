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

/* Adds to s a test case called name holding the NULL-terminated tests in
 * order (START_TEST names); timeout in seconds when > 0, else Check's
 * default (CK_DEFAULT_TIMEOUT). Returns the case for further settings. */
TCase *tu_tcase(Suite *s, const char *name, double timeout,
		const TTest *const *tests);

/* Runs suite s (CK_NORMAL output) and returns EXIT_SUCCESS when every
 * test passed, else EXIT_FAILURE: the body of each suite's main. */
int tu_run(Suite *s);

/* One test case of a suite (tu_main_cases): name, timeout (as tu_tcase),
 * the NULL-terminated tests, and an optional loop test run for _i in
 * [0, n_loop). */
struct tu_case {
	const char *name;
	double timeout;
	const TTest *const *tests;
	const TTest *loop;
	int n_loop;
};

/* Runs a suite of the cases (up to one whose name is NULL) with tu_run. */
int tu_main_cases(const char *suite, const struct tu_case *cases);

/* The NULL-terminated test list of tu_tcase from START_TEST names:
 * tu_tcase(s, "core", 0, TU_TESTS(test_a, test_b)). */
#define TU_TESTS(...) ((const TTest *const[]){__VA_ARGS__, NULL})

/* The main of a suite of one test case: suite and case names, timeout
 * (as tu_tcase) and the tests in order; returns tu_run's status. */
#define TU_MAIN(suite, tcase, timeout, ...)                                \
	int main(void)                                                     \
	{                                                                  \
		Suite *tu_s_ = suite_create(suite);                        \
		tu_tcase(tu_s_, tcase, timeout, TU_TESTS(__VA_ARGS__));    \
		return tu_run(tu_s_);                                      \
	}

/* TU_MAIN with a loop test too: loop runs for _i in [0, n) in the same
 * case, after the other tests. */
#define TU_MAIN_LOOP(suite, tcase, timeout, loop, n, ...)                  \
	int main(void)                                                     \
	{                                                                  \
		Suite *tu_s_ = suite_create(suite);                        \
		tcase_add_loop_test(tu_tcase(tu_s_, tcase, timeout,        \
					     TU_TESTS(__VA_ARGS__)),       \
				    loop, 0, n);                           \
		return tu_run(tu_s_);                                      \
	}

/* A case of TU_MAIN_CASES: name, timeout and tests; with a loop test
 * (TU_CASE_LOOP) run for _i in [0, n) after them. */
#define TU_CASE(name, timeout, ...)                                        \
	{name, timeout, TU_TESTS(__VA_ARGS__), NULL, 0}
#define TU_CASE_LOOP(name, timeout, loop, n, ...)                          \
	{name, timeout, TU_TESTS(__VA_ARGS__), loop, n}

/* The main of a suite of several cases (TU_CASE, TU_CASE_LOOP). */
#define TU_MAIN_CASES(suite, ...)                                          \
	int main(void)                                                     \
	{                                                                  \
		const struct tu_case tu_c_[] = {__VA_ARGS__,               \
						{NULL, 0, NULL, NULL, 0}}; \
		return tu_main_cases(suite, tu_c_);                        \
	}

#endif
