/* par: the thread count of core's parallel loops (see par.h); OpenMP's
 * runtime itself is set up by op_set_threads (ops.c) and conv_dnnl. */
#include "par.h"

/* Process-wide like OpenBLAS's and OpenMP's own counts, which it
 * mirrors; 1 until op_set_threads says otherwise. */
static int par_n = 1;

void par_set_threads(int n)
{
	par_n = n < 1 ? 1 : n;
}

int par_threads(void)
{
	return par_n;
}

int par_team(size_t n)
{
	return n >= PAR_MIN_ELEMS ? par_n : 1;
}
