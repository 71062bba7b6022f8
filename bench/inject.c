/* inject: fault injection (inject.h). Moved out of the training loop
 * unchanged; the values written are those of the original loop. */
#include "inject.h"

#include <math.h>

bool inject_due(const struct config_inject *in, long next_step, int phase)
{
	if (in->nan_step < 0 || in->nan_phase != phase)
		return false;
	if (phase == CONFIG_NAN_PHASE_UNNORMALIZED)
		return next_step >= in->nan_step;
	return next_step == in->nan_step;
}

void inject_apply(const struct config_inject *in, vb_real *x, size_t n)
{
	size_t lo = in->index < 0 ? 0 : (size_t)in->index;
	size_t hi = in->index < 0 ? n : lo + 1;
	for (size_t i = lo; i < hi && i < n; i++)
		x[i] = in->value == CONFIG_INJECT_NAN   ? (vb_real)NAN
		       : in->value == CONFIG_INJECT_INF ? (vb_real)INFINITY
			: (vb_real)((double)x[i] * in->scale);
}

vb_real *inject_target(const struct config_inject *in,
		       const struct params *p, vb_real *buf, size_t *n)
{
	long e = in->param[0] ? params_find(p, in->param) : -1;
	if (e < 0) {
		*n = p->n;
		return buf;
	}
	*n = p->entries[e].n;
	return buf + p->entries[e].offset;
}

void inject_rescale_raw(vb_real *x, size_t n, double scale)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (vb_real)((double)x[i] * scale);
}
