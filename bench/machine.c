/* machine: CPU model, ISA class and the kernels in use, as JSON text for
 * meta.json and machine.json. Reads /proc/cpuinfo and the environment
 * bench/main.c set when it pinned the OpenBLAS kernel. */
#include "machine.h"

#include <stdlib.h>
#include <string.h>

#include "conv_dnnl.h"
#include "ops.h"

void machine_cpu_model(char *buf, size_t cap)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];
	snprintf(buf, cap, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		char *colon = strchr(line, ':');
		if (!strncmp(line, "model name", 10) && colon) {
			char *v = colon + 1, *e;
			while (*v == ' ')
				v++;
			e = v + strlen(v);
			while (e > v && (e[-1] == '\n' || e[-1] == ' '))
				*--e = '\0';
			snprintf(buf, cap, "%s", v);
			break;
		}
	}
	fclose(f);
}

const char *machine_isa_class(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") &&
	    __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512vl"))
		return "avx512";
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		return "avx2";
#endif
	return "other";
}

void machine_json_str(FILE *f, const char *key, const char *v, bool last)
{
	fprintf(f, "  \"%s\": \"", key);
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			fprintf(f, "\\%c", *v);
		else if ((unsigned char)*v < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*v);
		else
			fputc(*v, f);
	}
	fprintf(f, "\"%s\n", last ? "" : ",");
}

void machine_json_kernels(FILE *f)
{
	char cpu[256], dnnl[128];
	const char *chose = getenv("VAEBENCH_BLAS_REEXEC");
	machine_cpu_model(cpu, sizeof cpu);
	machine_json_str(f, "cpu", cpu, false);
	machine_json_str(f, "isa_class", machine_isa_class(), false);
	machine_json_str(f, "blas", "OpenBLAS", false);
	machine_json_str(f, "blas_core", op_blas_core(), false);
	machine_json_str(f, "blas_core_chosen",
			 chose && *chose ? chose : op_blas_core(), false);
	machine_json_str(f, "onednn", conv_dnnl_describe(dnnl, sizeof dnnl),
			 false);
}
