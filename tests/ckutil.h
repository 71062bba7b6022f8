/* ckutil: the safetensors boilerplate of test_checkpoint,
 * test_checkpoint_reject, test_optim and test_clip (folders, raw files,
 * asserting writers and readers); tests/CMakeLists.txt links it where a
 * suite names it (EXTRA). Prefix cu_. */
#ifndef VB_TESTS_CKUTIL_H
#define VB_TESTS_CKUTIL_H

#include <stddef.h>

#include "checkpoint.h"

#define CU_PATH_CAP 4096

/* A fresh folder for one test, copied out of tu_tmpdir's static buffer. */
void cu_new_dir(char dir[CU_PATH_CAP]);

/* dir/name into out. */
void cu_join(char out[CU_PATH_CAP], const char *dir, const char *name);

/* Writes prefix(hlen) + header[0..hlen) + data[0..n) to path. */
void cu_write_raw(const char *path, const char *header, size_t hlen,
		  const void *data, size_t n);

/* Writes a file whose header is the string h and whose data is n bytes
 * 0, 1, 2, ... (n <= 256). */
void cu_write_hdr(const char *path, const char *h, size_t n);

/* Opening path fails with status want and a one-line message
 * "checkpoint: <path>: ..." that contains what. */
void cu_expect_fail(const char *path, enum vb_status want, const char *what);

/* checkpoint_open, checkpoint_write, checkpoint_add, checkpoint_add_meta
 * and checkpoint_writer_create that fail the test unless they succeed. */
struct checkpoint *cu_open_ok(const char *path);
void cu_write_ok(struct checkpoint_writer *w, const char *path);
void cu_add_ok(struct checkpoint_writer *w, const char *name,
	       enum checkpoint_dtype dtype, int ndim, const size_t *shape,
	       const void *data);
void cu_meta_ok(struct checkpoint_writer *w, const char *k, const char *v);
struct checkpoint_writer *cu_new_writer(void);

/* err's message is one line naming path and holding what. */
void cu_expect_msg(const struct vb_error *err, const char *path,
		   const char *what);

/* One tensor of a crafted file (cu_craft). */
struct cu_tensor {
	const char *name;
	enum checkpoint_dtype dtype;
	int ndim;
	const size_t *shape;
	const void *data;
};

/* Writes the n tensors to path (cu_add_ok, cu_write_ok) and opens it
 * (cu_open_ok; the caller closes it). */
struct checkpoint *cu_craft(const char *path, const struct cu_tensor *t,
			    size_t n);

#endif
