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

#endif
