/* ckutil: folders, raw files, writers and readers for the checkpoint
 * suites. */
#include "ckutil.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

void cu_new_dir(char dir[CU_PATH_CAP])
{
	snprintf(dir, CU_PATH_CAP, "%s", tu_tmpdir("ckpt"));
}

void cu_join(char out[CU_PATH_CAP], const char *dir, const char *name)
{
	snprintf(out, CU_PATH_CAP, "%s", tu_path(dir, name));
}

void cu_write_raw(const char *path, const char *header, size_t hlen,
		  const void *data, size_t n)
{
	unsigned char *buf = malloc(8 + hlen + n + 1);
	ck_assert_ptr_nonnull(buf);
	for (int i = 0; i < 8; i++)
		buf[i] = (unsigned char)(((uint64_t)hlen >> (8 * i)) & 0xff);
	memcpy(buf + 8, header, hlen);
	if (n)
		memcpy(buf + 8 + hlen, data, n);
	ck_assert_int_eq(tu_write_file(path, buf, 8 + hlen + n), 0);
	free(buf);
}

void cu_write_hdr(const char *path, const char *h, size_t n)
{
	unsigned char data[256];
	ck_assert_uint_le(n, sizeof data);
	for (size_t i = 0; i < n; i++)
		data[i] = (unsigned char)i;
	cu_write_raw(path, h, strlen(h), data, n);
}

void cu_expect_fail(const char *path, enum vb_status want, const char *what)
{
	struct checkpoint *c = NULL;
	struct vb_error err = {0};
	char prefix[CU_PATH_CAP + 32];
	enum vb_status st = checkpoint_open(path, &c, &err);
	ck_assert_msg(st == want, "status %s, expected %s (%s)",
		      vb_status_name(st), vb_status_name(want), err.msg);
	ck_assert_int_eq(err.status, want);
	ck_assert_ptr_null(c);
	snprintf(prefix, sizeof prefix, "checkpoint: %s: ", path);
	ck_assert_msg(strncmp(err.msg, prefix, strlen(prefix)) == 0,
		      "message '%s' does not start with '%s'", err.msg, prefix);
	ck_assert_msg(strstr(err.msg, what) != NULL,
		      "message '%s' lacks '%s'", err.msg, what);
	ck_assert_msg(strchr(err.msg, '\n') == NULL, "multi-line message");
}

struct checkpoint *cu_open_ok(const char *path)
{
	struct checkpoint *c = NULL;
	struct vb_error err = {0};
	enum vb_status st = checkpoint_open(path, &c, &err);
	ck_assert_msg(st == VB_OK, "open %s: %s", path, err.msg);
	ck_assert_ptr_nonnull(c);
	return c;
}

void cu_write_ok(struct checkpoint_writer *w, const char *path)
{
	struct vb_error err = {0};
	enum vb_status st = checkpoint_write(w, path, &err);
	ck_assert_msg(st == VB_OK, "write %s: %s", path, err.msg);
}

void cu_add_ok(struct checkpoint_writer *w, const char *name,
	       enum checkpoint_dtype dtype, int ndim, const size_t *shape,
	       const void *data)
{
	struct vb_error err = {0};
	enum vb_status st = checkpoint_add(w, name, dtype, ndim, shape, data,
					   &err);
	ck_assert_msg(st == VB_OK, "add %s: %s", name, err.msg);
}

void cu_meta_ok(struct checkpoint_writer *w, const char *k, const char *v)
{
	struct vb_error err = {0};
	ck_assert_int_eq(checkpoint_add_meta(w, k, v, &err), VB_OK);
}

struct checkpoint_writer *cu_new_writer(void)
{
	struct checkpoint_writer *w = NULL;
	struct vb_error err = {0};
	ck_assert_int_eq(checkpoint_writer_create(&w, &err), VB_OK);
	ck_assert_ptr_nonnull(w);
	return w;
}

struct checkpoint *cu_craft(const char *path, const struct cu_tensor *t,
			    size_t n)
{
	struct checkpoint_writer *w = cu_new_writer();
	for (size_t i = 0; i < n; i++)
		cu_add_ok(w, t[i].name, t[i].dtype, t[i].ndim, t[i].shape,
			  t[i].data);
	cu_write_ok(w, path);
	checkpoint_writer_free(w);
	return cu_open_ok(path);
}

void cu_expect_msg(const struct vb_error *err, const char *path,
		   const char *what)
{
	ck_assert_msg(strstr(err->msg, what) && strstr(err->msg, path) &&
			      !strchr(err->msg, '\n'),
		      "'%s' lacks '%s' or '%s'", err->msg, what, path);
}
