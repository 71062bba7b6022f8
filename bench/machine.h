/* machine: what a run's numbers depend on besides its config, as text for
 * meta.json (per run) and machine.json (per sweep): the CPU model, its ISA
 * class, the OpenBLAS kernel (and the one the library chose before
 * vaebench pinned it, bench/main.c), oneDNN's version and ISA. */
#ifndef VB_BENCH_MACHINE_H
#define VB_BENCH_MACHINE_H

#include <stdbool.h>
#include <stdio.h>

/* The CPU's model name from /proc/cpuinfo into buf ("unknown" if none). */
void machine_cpu_model(char *buf, size_t cap);

/* The ISA class the kernels are pinned by: "avx512", "avx2" or "other". */
const char *machine_isa_class(void);

/* Writes "  \"key\": \"v\"," (no comma when last) with JSON escapes. */
void machine_json_str(FILE *f, const char *key, const char *v, bool last);

/* Writes the JSON members every record of the machine shares, each
 * followed by a comma: cpu, isa_class, blas, blas_core, blas_core_chosen
 * (the library's own choice when vaebench pinned another), onednn. */
void machine_json_kernels(FILE *f);

/* OpenBLAS picks its kernel from the CPU when the library loads, and the
 * kernels of one ISA class round differently: Debian's 0.3.21 takes some
 * AVX-512 Xeons for a "Prescott" (5x slower), and AMD Zen 4 gets
 * "Cooperlake", whose sgemm results differ in the last bits from
 * SkylakeX's (1 of the 42 quick-sweep verdicts flips). So the kernel is
 * pinned by ISA class, AVX-512 -> SkylakeX, AVX2 -> Haswell, by
 * re-executing the program (argv, through /proc/self/exe) with
 * OPENBLAS_CORETYPE set; call it first thing in main, before any BLAS
 * call. VAEBENCH_BLAS_CORETYPE=keep keeps the library's choice, =NAME
 * forces a kernel; VAEBENCH_BLAS_REEXEC (set here) holds the library's own
 * choice for the re-executed process. Returns only when no restart was
 * needed or it failed: true with a one-line message in msg when something
 * is wrong (the restart failed, or the kernel is still not the wanted
 * one), false otherwise. */
bool machine_pin_blas(char **argv, char *msg, size_t cap);

#endif
