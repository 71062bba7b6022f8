/* vb: status names and the one-line error record. */
#include "vb.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

enum vb_status vb_fail(struct vb_error *err, enum vb_status status,
		       const char *fmt, ...)
{
	if (err && err->status == VB_OK) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
		err->status = status;
	}
	return status;
}

void vb_error_clear(struct vb_error *err)
{
	if (err) {
		err->status = VB_OK;
		err->msg[0] = '\0';
	}
}

const char *vb_status_name(enum vb_status status)
{
	switch (status) {
	case VB_OK: return "ok";
	case VB_ERR_NOMEM: return "nomem";
	case VB_ERR_IO: return "io";
	case VB_ERR_DATA: return "data";
	case VB_ERR_CONFIG: return "config";
	case VB_ERR_USAGE: return "usage";
	case VB_ERR_SHAPE: return "shape";
	case VB_ERR_NUMERIC: return "numeric";
	case VB_ERR_INTERNAL: return "internal";
	}
	return "unknown";
}

int vb_mul_size(size_t a, size_t b, size_t *out)
{
	if (a != 0 && b > SIZE_MAX / a)
		return 0;
	*out = a * b;
	return 1;
}
