/* vb: the project-wide scalar type, status codes and one-line errors.
 * Every fallible function returns enum vb_status and fills a struct
 * vb_error (may be NULL) with one line: "module: what failed, the value,
 * what was expected". Nothing here prints or exits. */
#ifndef VB_CORE_VB_H
#define VB_CORE_VB_H

#include <stddef.h>

/* The whole build computes in one real type: float (training, as PyTorch)
 * or double (gradient checks, precision axis), chosen by VB_DOUBLE at
 * compile time. Both builds are made from the same sources. */
#ifdef VB_DOUBLE
typedef double vb_real;
#define VB_REAL_NAME "f64"
#else
typedef float vb_real;
#define VB_REAL_NAME "f32"
#endif

enum vb_status {
	VB_OK = 0,
	VB_ERR_NOMEM,    /* allocation failed or a size product overflowed */
	VB_ERR_IO,       /* open, read, write or rename failed */
	VB_ERR_DATA,     /* a data file is malformed (bad magic, short, ...) */
	VB_ERR_CONFIG,   /* bad setting: unknown key, wrong type, out of range */
	VB_ERR_USAGE,    /* bad command line */
	VB_ERR_SHAPE,    /* tensor shapes do not fit an op */
	VB_ERR_NUMERIC,  /* a numeric failure reported as such (e.g. Cholesky) */
	VB_ERR_INTERNAL  /* anything else */
};

#define VB_ERROR_LEN 512

struct vb_error {
	enum vb_status status;
	char msg[VB_ERROR_LEN];
};

/* Records status and a printf-style one-line message in err (if err is not
 * NULL and holds no earlier error) and returns status. */
enum vb_status vb_fail(struct vb_error *err, enum vb_status status,
		       const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Clears err (status VB_OK, empty message). err may be NULL. */
void vb_error_clear(struct vb_error *err);

/* Stable lowercase name of a status ("ok", "nomem", ...). */
const char *vb_status_name(enum vb_status status);

/* Multiplies a * b into *out; returns 0 on size_t overflow, 1 otherwise. */
int vb_mul_size(size_t a, size_t b, size_t *out);

#endif
