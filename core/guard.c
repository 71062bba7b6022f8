/* guard: finite checks by bit pattern, names, the first-event record. */
#include "guard.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

const char *guard_phase_name(enum guard_phase phase)
{
	switch (phase) {
	case GUARD_PHASE_NONE: return "";
	case GUARD_PHASE_INPUT: return "input";
	case GUARD_PHASE_FORWARD: return "forward";
	case GUARD_PHASE_BACKWARD: return "backward";
	case GUARD_PHASE_UPDATE: return "update";
	case GUARD_PHASE_EVAL: return "eval";
	}
	return "unknown";
}

const char *guard_status_name(enum guard_status status)
{
	switch (status) {
	case GUARD_STATUS_OK: return "ok";
	case GUARD_STATUS_NAN: return "nan";
	case GUARD_STATUS_INF: return "inf";
	case GUARD_STATUS_ERROR: return "error";
	}
	return "unknown";
}

#ifdef VB_DOUBLE
#define GUARD_BITS uint64_t
#define GUARD_EXP 0x7ff0000000000000ull
#else
#define GUARD_BITS uint32_t
#define GUARD_EXP 0x7f800000u
#endif

bool guard_all_finite(const vb_real *x, size_t n, size_t *first_bad)
{
	const size_t block = 4096;
	for (size_t s = 0; s < n; s += block) {
		size_t e = s + block < n ? s + block : n;
		GUARD_BITS bad = 0;
		for (size_t i = s; i < e; i++) {
			GUARD_BITS b;
			memcpy(&b, &x[i], sizeof b);
			bad |= (GUARD_BITS)((b & GUARD_EXP) == GUARD_EXP);
		}
		if (bad) {
			for (size_t i = s; i < e; i++)
				if (!isfinite(x[i])) {
					if (first_bad)
						*first_bad = i;
					return false;
				}
		}
	}
	return true;
}

enum guard_status guard_classify(double value)
{
	if (isnan(value))
		return GUARD_STATUS_NAN;
	if (isinf(value))
		return GUARD_STATUS_INF;
	return GUARD_STATUS_OK;
}

bool guard_record(struct guard_event *ev, long epoch, long step,
		  enum guard_phase phase, const char *quantity, double value)
{
	if (ev->set)
		return false;
	ev->set = true;
	ev->epoch = epoch;
	ev->step = step;
	ev->phase = phase;
	snprintf(ev->quantity, sizeof ev->quantity, "%s", quantity);
	ev->value = value;
	return true;
}
