/* fuzz: what every harness in fuzz/ shares. Each fuzz_<reader>.c defines
 * LLVMFuzzerTestOneInput for one reader; under clang with VB_FUZZ it links
 * libFuzzer (scripts/fuzz.sh), otherwise fuzz_main.c drives it over the
 * seed corpus and a few thousand deterministic mutations (ctest -L fuzz).
 * A harness returns 0 and aborts only on a broken property, so that both
 * drivers and the sanitizers report it. */
#ifndef VB_FUZZ_FUZZ_H
#define VB_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* The libFuzzer entry point: one input, 0 always (the fuzzer's contract). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes data[0..size) to this process's scratch file (created once under
 * $TMPDIR, else /tmp, removed at exit) and returns its path, valid for the
 * whole process; the readers under test take paths. suffix ("", ".gz",
 * ".csv") is appended to the name. Aborts when the file cannot be
 * written: a harness that silently tests nothing would pass. */
const char *fuzz_write_tmp(const uint8_t *data, size_t size,
			   const char *suffix);

/* A NUL-terminated malloc'd copy of data[0..size) (the parsers that take
 * text); aborts on allocation failure. */
char *fuzz_strndup(const uint8_t *data, size_t size);

/* Prints "fuzz: <what>" to stderr and aborts: a broken property. */
_Noreturn void fuzz_fail(const char *what, const char *detail);

#endif
