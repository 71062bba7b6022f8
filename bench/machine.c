/* machine: CPU model, ISA class and the kernels in use, as JSON text for
 * meta.json and machine.json. Reads /proc/cpuinfo and the environment
 * bench/main.c set when it pinned the OpenBLAS kernel. */
#include "machine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

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

static const char *class_core(void)
{
	const char *isa = machine_isa_class();
	return !strcmp(isa, "avx512") ? "SkylakeX"
	       : !strcmp(isa, "avx2") ? "Haswell"
				      : NULL;
}

bool machine_pin_blas(char **argv, char *msg, size_t cap)
{
	const char *mode = getenv("VAEBENCH_BLAS_CORETYPE");
	const char *core = op_blas_core();
	const char *want, *set;
	if (getenv("VAEBENCH_BLAS_REEXEC")) {
		set = getenv("OPENBLAS_CORETYPE");
		if (strcasecmp(core, set ? set : "") == 0)
			return false;
		snprintf(msg, cap, "OpenBLAS uses the %s kernel after "
			 "OPENBLAS_CORETYPE=%s", core, set ? set : "");
		return true;
	}
	if (mode && strcmp(mode, "keep") == 0)
		return false;
	want = mode && *mode ? mode : class_core();
	if (!want || strcasecmp(core, want) == 0)
		return false;
	setenv("OPENBLAS_CORETYPE", want, 1);
	setenv("VAEBENCH_BLAS_REEXEC", core, 1);
	if (!getenv("OPENBLAS_NUM_THREADS"))
		setenv("OPENBLAS_NUM_THREADS", "1", 1);
	execv("/proc/self/exe", argv);
	snprintf(msg, cap, "cannot restart with OPENBLAS_CORETYPE=%s (%s); "
		 "going on with the %s kernel", want, strerror(errno), core);
	return true;
}
