/* test_checkpoint: safetensors writer and reader. Round trips of every
 * dtype and of metadata, the exact bytes of a tiny file, atomic writes,
 * files from "another writer", writer errors and integer ranges. The
 * rejection of malformed files is test_checkpoint_reject's. */
#include <check.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "ckutil.h"
#include "testutil.h"

/* Checks dtype and shape of tensor name. */
static void check_info(const struct checkpoint *c, const char *name,
		       enum checkpoint_dtype dtype, int ndim,
		       const size_t *shape)
{
	enum checkpoint_dtype dt;
	size_t sh[CHECKPOINT_MAX_DIM];
	int nd = -1;
	struct vb_error err = {0};
	ck_assert_int_eq(checkpoint_info(c, name, &dt, &nd, sh, &err), VB_OK);
	ck_assert_int_eq(dt, dtype);
	ck_assert_int_eq(nd, ndim);
	for (int d = 0; d < CHECKPOINT_MAX_DIM; d++)
		ck_assert_uint_eq(sh[d], d < ndim ? shape[d] : 1);
}

START_TEST(test_dtype_names)
{
	static const char *names[] = {"F32", "F64", "I64", "I32", "U64", "U8"};
	static const size_t sizes[] = {4, 8, 8, 4, 8, 1};
	enum checkpoint_dtype all[] = {CHECKPOINT_F32, CHECKPOINT_F64,
				       CHECKPOINT_I64, CHECKPOINT_I32,
				       CHECKPOINT_U64, CHECKPOINT_U8};
	for (int i = 0; i < 6; i++) {
		ck_assert_str_eq(checkpoint_dtype_name(all[i]), names[i]);
		ck_assert_uint_eq(checkpoint_dtype_size(all[i]), sizes[i]);
	}
	ck_assert_str_eq(checkpoint_dtype_name((enum checkpoint_dtype)99),
			 "?");
	ck_assert_uint_eq(checkpoint_dtype_size((enum checkpoint_dtype)99), 0);
	ck_assert_uint_eq(checkpoint_dtype_size(CHECKPOINT_REAL),
			  sizeof(vb_real));
}
END_TEST

START_TEST(test_round_trip_all_dtypes)
{
	char dir[CU_PATH_CAP], path[CU_PATH_CAP];
	struct checkpoint_writer *w = cu_new_writer();
	struct checkpoint *c;
	struct vb_error err = {0};
	const float f32[6] = {1.5f, -2.25f, 3e-38f, 1e30f, 0.0f, -0.0f};
	const double f64[3] = {3.141592653589793, -1e-300, 2.5e300};
	const int64_t i64 = INT64_MIN + 7; /* 0-d scalar */
	const int32_t i32[4] = {INT32_MIN, -1, 0, INT32_MAX};
	const uint64_t u64[2] = {UINT64_MAX, 0x0123456789abcdefULL};
	const uint8_t u8[5] = {0, 1, 127, 128, 255};
	const size_t sh_f32[2] = {2, 3}, sh_f64[1] = {3}, sh_i32[3] = {1, 2, 2},
		     sh_u64[1] = {2}, sh_u8[1] = {5}, sh_empty[2] = {3, 0};
	const size_t sh_8d[8] = {1, 1, 1, 1, 1, 1, 1, 2};
	float f32b[6];
	double f64b[3];
	int64_t i64b;
	int32_t i32b[4];
	uint64_t u64b[2];
	uint8_t u8b[5], eight[2] = {9, 8};

	cu_new_dir(dir);
	cu_join(path, dir, "all.safetensors");
	/* U8 first: the writer moves wider types ahead so all stay aligned. */
	cu_add_ok(w, "u8", CHECKPOINT_U8, 1, sh_u8, u8);
	cu_add_ok(w, "f32", CHECKPOINT_F32, 2, sh_f32, f32);
	cu_add_ok(w, "f64", CHECKPOINT_F64, 1, sh_f64, f64);
	cu_add_ok(w, "i64.scalar", CHECKPOINT_I64, 0, NULL, &i64);
	cu_add_ok(w, "i32", CHECKPOINT_I32, 3, sh_i32, i32);
	cu_add_ok(w, "u64", CHECKPOINT_U64, 1, sh_u64, u64);
	cu_add_ok(w, "empty", CHECKPOINT_F32, 2, sh_empty, NULL);
	cu_add_ok(w, "eight.dims", CHECKPOINT_U8, 8, sh_8d, eight);
	cu_write_ok(w, path);
	checkpoint_writer_free(w);

	c = cu_open_ok(path);
	ck_assert_uint_eq(checkpoint_count(c), 8);
	/* Data order: 8-byte types in add order, then 4-byte, then 1-byte. */
	ck_assert_str_eq(checkpoint_name(c, 0), "f64");
	ck_assert_str_eq(checkpoint_name(c, 1), "i64.scalar");
	ck_assert_str_eq(checkpoint_name(c, 2), "u64");
	ck_assert_str_eq(checkpoint_name(c, 3), "f32");
	ck_assert_str_eq(checkpoint_name(c, 4), "i32");
	ck_assert_str_eq(checkpoint_name(c, 5), "empty");
	ck_assert_str_eq(checkpoint_name(c, 6), "u8");
	ck_assert_str_eq(checkpoint_name(c, 7), "eight.dims");
	ck_assert_ptr_null(checkpoint_name(c, 8));

	check_info(c, "f32", CHECKPOINT_F32, 2, sh_f32);
	check_info(c, "f64", CHECKPOINT_F64, 1, sh_f64);
	check_info(c, "i64.scalar", CHECKPOINT_I64, 0, NULL);
	check_info(c, "i32", CHECKPOINT_I32, 3, sh_i32);
	check_info(c, "u64", CHECKPOINT_U64, 1, sh_u64);
	check_info(c, "u8", CHECKPOINT_U8, 1, sh_u8);
	check_info(c, "empty", CHECKPOINT_F32, 2, sh_empty);
	check_info(c, "eight.dims", CHECKPOINT_U8, 8, sh_8d);

	ck_assert_int_eq(checkpoint_read_raw(c, "f32", CHECKPOINT_F32, 6, f32b,
					     &err), VB_OK);
	ck_assert_mem_eq(f32b, f32, sizeof f32);
	ck_assert_int_eq(checkpoint_read_raw(c, "f64", CHECKPOINT_F64, 3, f64b,
					     &err), VB_OK);
	ck_assert_mem_eq(f64b, f64, sizeof f64);
	ck_assert_int_eq(checkpoint_read_raw(c, "i64.scalar", CHECKPOINT_I64,
					     1, &i64b, &err), VB_OK);
	ck_assert(i64b == i64);
	ck_assert_int_eq(checkpoint_read_raw(c, "i32", CHECKPOINT_I32, 4, i32b,
					     &err), VB_OK);
	ck_assert_mem_eq(i32b, i32, sizeof i32);
	ck_assert_int_eq(checkpoint_read_raw(c, "u64", CHECKPOINT_U64, 2, u64b,
					     &err), VB_OK);
	ck_assert(u64b[0] == UINT64_MAX && u64b[1] == 0x0123456789abcdefULL);
	ck_assert_int_eq(checkpoint_read_raw(c, "u8", CHECKPOINT_U8, 5, u8b,
					     &err), VB_OK);
	ck_assert_mem_eq(u8b, u8, sizeof u8);
	ck_assert_int_eq(checkpoint_read_raw(c, "empty", CHECKPOINT_F32, 0,
					     f32b, &err), VB_OK);
	ck_assert_int_eq(err.status, VB_OK);

	/* Borrowed data pointers are aligned and hold the same bytes. */
	for (size_t i = 0; i < checkpoint_count(c); i++) {
		const char *name = checkpoint_name(c, i);
		enum checkpoint_dtype dt;
		const void *p = checkpoint_data(c, name);
		ck_assert_ptr_nonnull(p);
		ck_assert_int_eq(checkpoint_info(c, name, &dt, NULL, NULL,
						 &err), VB_OK);
		ck_assert_uint_eq((uintptr_t)p % checkpoint_dtype_size(dt), 0);
	}
	ck_assert_mem_eq(checkpoint_data(c, "f64"), f64, sizeof f64);
	ck_assert_ptr_null(checkpoint_data(c, "nope"));
	ck_assert_ptr_null(checkpoint_data(c, "f6"));
	ck_assert_ptr_null(checkpoint_meta(c, "anything"));
	ck_assert_int_eq(checkpoint_info(c, "nope", NULL, NULL, NULL, &err),
			 VB_ERR_DATA);
	ck_assert_str_eq(err.msg + strlen(err.msg) - strlen("no tensor 'nope'"),
			 "no tensor 'nope'");
	checkpoint_close(c);
}
END_TEST

START_TEST(test_round_trip_real)
{
	char dir[CU_PATH_CAP], path[CU_PATH_CAP];
	struct checkpoint_writer *w = cu_new_writer();
	struct checkpoint *c;
	struct vb_error err = {0};
	const size_t shape[2] = {3, 4}, sh2[1] = {2};
	vb_real x[12], y[12], z[2];
	const float as_f32[2] = {0.5f, -8.0f};
	const double as_f64[2] = {0.25, 1024.0};

	for (int i = 0; i < 12; i++)
		x[i] = (vb_real)(i * 0.1 - 0.55);
	cu_new_dir(dir);
	cu_join(path, dir, "real.safetensors");
	cu_add_ok(w, "enc.w", CHECKPOINT_REAL, 2, shape, x);
	cu_add_ok(w, "as_f32", CHECKPOINT_F32, 1, sh2, as_f32);
	cu_add_ok(w, "as_f64", CHECKPOINT_F64, 1, sh2, as_f64);
	cu_write_ok(w, path);
	checkpoint_writer_free(w);

	c = cu_open_ok(path);
	ck_assert_int_eq(checkpoint_read_real(c, "enc.w", 2, shape, y, &err),
			 VB_OK);
	ck_assert_mem_eq(x, y, sizeof x); /* bit exact: same type */
	/* Both file precisions convert to vb_real (exactly representable). */
	ck_assert_int_eq(checkpoint_read_real(c, "as_f32", 1, sh2, z, &err),
			 VB_OK);
	ck_assert(z[0] == (vb_real)0.5 && z[1] == (vb_real)-8.0);
	ck_assert_int_eq(checkpoint_read_real(c, "as_f64", 1, sh2, z, &err),
			 VB_OK);
	ck_assert(z[0] == (vb_real)0.25 && z[1] == (vb_real)1024.0);
	checkpoint_close(c);
}
END_TEST

START_TEST(test_read_real_errors)
{
	char dir[CU_PATH_CAP], path[CU_PATH_CAP], want[CU_PATH_CAP + 128];
	struct checkpoint_writer *w = cu_new_writer();
	struct checkpoint *c;
	struct vb_error err = {0};
	const size_t shape[2] = {2, 3}, wrong[2] = {3, 2}, flat[1] = {6};
	const size_t one[1] = {1};
	const float x[6] = {1, 2, 3, 4, 5, 6};
	const int64_t step = 42;
	vb_real y[6];
	int64_t s;
	uint64_t u;

	cu_new_dir(dir);
	cu_join(path, dir, "w.safetensors");
	cu_add_ok(w, "enc.w", CHECKPOINT_F32, 2, shape, x);
	cu_add_ok(w, "step", CHECKPOINT_I64, 1, one, &step);
	cu_write_ok(w, path);
	checkpoint_writer_free(w);
	c = cu_open_ok(path);

	ck_assert_int_eq(checkpoint_read_real(c, "enc.w", 2, wrong, y, &err),
			 VB_ERR_DATA);
	snprintf(want, sizeof want,
		 "checkpoint: %s: tensor 'enc.w': shape (2, 3), expected "
		 "(3, 2)",
		 path);
	ck_assert_str_eq(err.msg, want);

	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_read_real(c, "enc.w", 1, flat, y, &err),
			 VB_ERR_DATA);
	ck_assert_ptr_nonnull(strstr(err.msg, "shape (2, 3), expected (6)"));

	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_read_real(c, "dec.w", 2, shape, y, &err),
			 VB_ERR_DATA);
	ck_assert_ptr_nonnull(strstr(err.msg, "no tensor 'dec.w'"));

	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_read_real(c, "step", 1, one, y, &err),
			 VB_ERR_DATA);
	ck_assert_ptr_nonnull(
		strstr(err.msg, "tensor 'step': dtype I64, expected F32 or F64"));

	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_read_raw(c, "step", CHECKPOINT_U64, 1, &u,
					     &err), VB_ERR_DATA);
	ck_assert_ptr_nonnull(
		strstr(err.msg, "tensor 'step': dtype I64, expected U64"));

	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_read_raw(c, "step", CHECKPOINT_I64, 2, &s,
					     &err), VB_ERR_DATA);
	ck_assert_ptr_nonnull(
		strstr(err.msg, "tensor 'step': 1 elements, expected 2"));

	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_read_raw(c, "step", CHECKPOINT_I64, 1, &s,
					     &err), VB_OK);
	ck_assert(s == 42);
	checkpoint_close(c);
}
END_TEST

START_TEST(test_metadata_escaping)
{
	char dir[CU_PATH_CAP], path[CU_PATH_CAP];
	struct checkpoint_writer *w = cu_new_writer();
	struct checkpoint *c;
	const char *tricky = "q\"b\\s\nn\tt\x01" "c\rr/\x7f end";
	const char *uni = "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80";
	const float one = 1.0f;
	char *ini, *raw;
	size_t n_ini = 0, raw_len;

	/* A whole INI config: many lines with quotes, '=' and '\'. */
	ini = malloc(40000);
	ck_assert_ptr_nonnull(ini);
	ini[0] = '\0';
	for (int i = 0; i < 500; i++)
		n_ini += (size_t)snprintf(ini + n_ini, 40000 - n_ini,
					  "[run%d]\nname = \"vae \\ %d\"\n", i,
					  i);
	cu_new_dir(dir);
	cu_join(path, dir, "meta.safetensors");
	cu_meta_ok(w, "tricky", tricky);
	cu_meta_ok(w, "config", ini);
	cu_meta_ok(w, uni, uni);
	cu_meta_ok(w, "empty", "");
	cu_add_ok(w, "x\"y\\z\n\xc3\xa9", CHECKPOINT_F32, 0, NULL, &one);
	cu_write_ok(w, path);
	checkpoint_writer_free(w);

	/* The escapes in the file are the JSON ones. */
	raw = tu_read_file(path, &raw_len);
	ck_assert_ptr_nonnull(raw);
	ck_assert_ptr_nonnull(strstr(raw + 8, "\"tricky\":\"q\\\"b\\\\s\\nn\\tt"
					      "\\u0001c\\rr/\x7f end\""));
	ck_assert_ptr_nonnull(strstr(raw + 8, "{\"__metadata__\":{"));
	free(raw);

	c = cu_open_ok(path);
	ck_assert_str_eq(checkpoint_meta(c, "tricky"), tricky);
	ck_assert_str_eq(checkpoint_meta(c, "config"), ini);
	ck_assert_str_eq(checkpoint_meta(c, uni), uni);
	ck_assert_str_eq(checkpoint_meta(c, "empty"), "");
	ck_assert_ptr_null(checkpoint_meta(c, "missing"));
	ck_assert_uint_eq(checkpoint_count(c), 1);
	ck_assert_str_eq(checkpoint_name(c, 0), "x\"y\\z\n\xc3\xa9");
	ck_assert(*(const float *)checkpoint_data(c, "x\"y\\z\n\xc3\xa9") ==
		  1.0f);
	checkpoint_close(c);
	free(ini);
}
END_TEST

START_TEST(test_exact_bytes)
{
	/* Header JSON: 134 bytes + 2 spaces = 136 = 0x88, so the data starts at
	 * byte 144 (a multiple of 8). F32 "a" precedes U8 "b" in the data
	 * although added second (wider elements first). */
	static const char expected[] =
		"\x88\0\0\0\0\0\0\0"
		"{\"__metadata__\":{\"k\":\"v\\\"\"},"
		"\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
		"\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[8,11]}}"
		"  "
		"\x00\x00\x80\x3f\x00\x00\x00\xc0"
		"\x01\x02\x03";
	char dir[CU_PATH_CAP], path[CU_PATH_CAP];
	struct checkpoint_writer *w = cu_new_writer();
	const float a[2] = {1.0f, -2.0f};
	const uint8_t b[3] = {1, 2, 3};
	const size_t sa[1] = {2}, sb[1] = {3};
	char *got;
	size_t n;

	ck_assert_uint_eq(sizeof expected - 1, 8 + 136 + 11);
	cu_new_dir(dir);
	cu_join(path, dir, "tiny.safetensors");
	cu_add_ok(w, "b", CHECKPOINT_U8, 1, sb, b);
	cu_add_ok(w, "a", CHECKPOINT_F32, 1, sa, a);
	cu_meta_ok(w, "k", "v\"");
	cu_write_ok(w, path);
	checkpoint_writer_free(w);
	got = tu_read_file(path, &n);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(n, sizeof expected - 1);
	ck_assert_mem_eq(got, expected, n);
	free(got);
}
END_TEST

START_TEST(test_empty_writer)
{
	static const char expected[] = "\x08\0\0\0\0\0\0\0{}      ";
	char dir[CU_PATH_CAP], path[CU_PATH_CAP];
	struct checkpoint_writer *w = cu_new_writer();
	struct checkpoint *c;
	char *got;
	size_t n;
	cu_new_dir(dir);
	cu_join(path, dir, "none.safetensors");
	cu_write_ok(w, path);
	checkpoint_writer_free(w);
	got = tu_read_file(path, &n);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(n, 16);
	ck_assert_mem_eq(got, expected, 16);
	free(got);
	c = cu_open_ok(path);
	ck_assert_uint_eq(checkpoint_count(c), 0);
	ck_assert_ptr_null(checkpoint_name(c, 0));
	checkpoint_close(c);
}
END_TEST

/* Names of the entries of dir other than "." and "..", one per call. */
static int list_dir(const char *dir, char names[][256], int max)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (n < max)
			snprintf(names[n], 256, "%s", e->d_name);
		n++;
	}
	closedir(d);
	return n;
}

START_TEST(test_atomic_write)
{
	char dir[CU_PATH_CAP], path[CU_PATH_CAP], bad[CU_PATH_CAP];
	char names[4][256];
	struct checkpoint_writer *w = cu_new_writer();
	struct checkpoint *c;
	struct vb_error err = {0};
	const size_t one[1] = {1};
	uint64_t v = 1;
	uint64_t got;

	cu_new_dir(dir);
	cu_join(path, dir, "model.safetensors");
	cu_add_ok(w, "v", CHECKPOINT_U64, 1, one, &v);
	cu_write_ok(w, path);
	ck_assert_int_eq(list_dir(dir, names, 4), 1);
	ck_assert_str_eq(names[0], "model.safetensors");

	/* Writing again replaces the file (data is borrowed: re-read now). */
	v = 2;
	cu_write_ok(w, path);
	ck_assert_int_eq(list_dir(dir, names, 4), 1);
	ck_assert_str_eq(names[0], "model.safetensors");
	c = cu_open_ok(path);
	ck_assert_int_eq(checkpoint_read_raw(c, "v", CHECKPOINT_U64, 1, &got,
					     &err), VB_OK);
	ck_assert(got == 2);
	checkpoint_close(c);

	/* A folder that does not exist: an IO error, nothing left behind. */
	cu_join(bad, dir, "no/such/dir/model.safetensors");
	ck_assert_int_eq(checkpoint_write(w, bad, &err), VB_ERR_IO);
	ck_assert_int_eq(err.status, VB_ERR_IO);
	ck_assert_ptr_nonnull(strstr(err.msg, "checkpoint: "));
	ck_assert_ptr_nonnull(strstr(err.msg, "cannot create"));
	ck_assert_ptr_nonnull(strstr(err.msg, bad));
	ck_assert_int_eq(list_dir(dir, names, 4), 1);
	checkpoint_writer_free(w);
}
END_TEST

START_TEST(test_other_writer)
{
	/* As another tool might write it: key order differs from offset
	 * order, whitespace, metadata between tensors, escapes in names, no
	 * padding, and an F64 that is misaligned in the file. */
	static const char h[] =
		"{  \"w2\" : {\"dtype\":\"F64\", \"shape\":[ 2 ],"
		" \"data_offsets\":[1,17]},\r\n"
		"  \"__metadata__\" : {\"format\":\"pt\","
		" \"note\":\"caf\\u00e9 \\ud83d\\ude00 \\/\"},\n"
		"  \"b\\u0041\" : {\"shape\":[1],\"data_offsets\":[0,1],"
		"\"dtype\":\"U8\"},\n"
		"\t\"empty\": {\"dtype\":\"F32\",\"shape\":[0,3],"
		"\"data_offsets\":[17,17]},"
		" \"s\": {\"dtype\":\"I32\",\"shape\":[],"
		"\"data_offsets\":[17,21]}\n}";
	const double w2[2] = {1.5, -0.25};
	const int32_t s = -7;
	unsigned char data[21];
	char dir[CU_PATH_CAP], path[CU_PATH_CAP];
	struct checkpoint *c;
	struct vb_error err = {0};
	const size_t sh_w2[1] = {2}, sh_empty[2] = {0, 3};
	const void *p;
	vb_real y[2];
	int32_t sb;

	/* No padding: the data starts at file byte 8 + N, not a multiple of
	 * 8, and the F64 at 8 + N + 1 is misaligned too. */
	ck_assert_uint_ne(strlen(h) % 8, 0);
	ck_assert_uint_ne((8 + strlen(h) + 1) % 8, 0);
	data[0] = 7;
	memcpy(data + 1, w2, 16);
	memcpy(data + 17, &s, 4);
	cu_new_dir(dir);
	cu_join(path, dir, "other.safetensors");
	cu_write_raw(path, h, strlen(h), data, sizeof data);

	c = cu_open_ok(path);
	ck_assert_uint_eq(checkpoint_count(c), 4);
	ck_assert_str_eq(checkpoint_name(c, 0), "bA");
	ck_assert_str_eq(checkpoint_name(c, 1), "w2");
	ck_assert_str_eq(checkpoint_meta(c, "format"), "pt");
	ck_assert_str_eq(checkpoint_meta(c, "note"),
			 "caf\xc3\xa9 \xf0\x9f\x98\x80 /");
	check_info(c, "w2", CHECKPOINT_F64, 1, sh_w2);
	check_info(c, "empty", CHECKPOINT_F32, 2, sh_empty);
	check_info(c, "s", CHECKPOINT_I32, 0, NULL);
	p = checkpoint_data(c, "w2");
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq((uintptr_t)p % 8, 0);
	ck_assert(((const double *)p)[0] == 1.5);
	ck_assert(((const double *)p)[1] == -0.25);
	ck_assert_int_eq(checkpoint_read_real(c, "w2", 1, sh_w2, y, &err),
			 VB_OK);
	ck_assert(y[0] == (vb_real)1.5 && y[1] == (vb_real)-0.25);
	ck_assert_int_eq(*(const uint8_t *)checkpoint_data(c, "bA"), 7);
	ck_assert_int_eq(checkpoint_read_raw(c, "s", CHECKPOINT_I32, 1, &sb,
					     &err), VB_OK);
	ck_assert_int_eq(sb, -7);
	ck_assert_ptr_nonnull(checkpoint_data(c, "empty"));
	checkpoint_close(c);
}
END_TEST

START_TEST(test_writer_errors)
{
	struct checkpoint_writer *w = cu_new_writer();
	struct vb_error err = {0};
	const size_t shape9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
	const size_t big[2] = {SIZE_MAX / 2, 3};
	const size_t two[1] = {2};
	const float x[2] = {1, 2};

	cu_add_ok(w, "a", CHECKPOINT_F32, 1, two, x);
	ck_assert_int_eq(checkpoint_add(w, "a", CHECKPOINT_F32, 1, two, x,
					&err), VB_ERR_INTERNAL);
	ck_assert_str_eq(err.msg, "checkpoint: duplicate tensor name 'a'");
	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_add(w, "b", CHECKPOINT_U8, 9, shape9, x,
					&err), VB_ERR_SHAPE);
	ck_assert_ptr_nonnull(strstr(err.msg, "ndim 9, expected 0..8"));
	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_add(w, "b", CHECKPOINT_U8, -1, NULL, x,
					&err), VB_ERR_SHAPE);
	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_add(w, "b", CHECKPOINT_F32, 2, big, x,
					&err), VB_ERR_NOMEM);
	ck_assert_ptr_nonnull(strstr(err.msg, "size overflows"));
	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_add(w, "b", CHECKPOINT_F32, 1, two, NULL,
					&err), VB_ERR_INTERNAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "NULL data for 8 bytes"));
	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_add(w, "b", (enum checkpoint_dtype)6, 1,
					two, x, &err), VB_ERR_INTERNAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "bad dtype 6"));
	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_add(w, "__metadata__", CHECKPOINT_F32, 1,
					two, x, &err), VB_ERR_INTERNAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "bad tensor name"));
	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_add(w, "", CHECKPOINT_F32, 1, two, x,
					&err), VB_ERR_INTERNAL);
	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_add(w, "bad\xff", CHECKPOINT_F32, 1, two,
					x, &err), VB_ERR_INTERNAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "'bad\\xff'"));

	cu_meta_ok(w, "k", "v");
	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_add_meta(w, "k", "w", &err),
			 VB_ERR_INTERNAL);
	ck_assert_str_eq(err.msg, "checkpoint: duplicate metadata key 'k'");
	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_add_meta(w, "", "w", &err),
			 VB_ERR_INTERNAL);
	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_add_meta(w, "k2", "\xc0\x80", &err),
			 VB_ERR_INTERNAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "value is not UTF-8"));
	/* err may be NULL */
	ck_assert_int_eq(checkpoint_add_meta(w, "k", "w", NULL),
			 VB_ERR_INTERNAL);
	checkpoint_writer_free(w);
	checkpoint_writer_free(NULL);
	checkpoint_close(NULL);
}
END_TEST

/* Issue 17 item 9: a crafted trainer.epoch or optimizer.step near
 * INT64_MAX made the loader's epoch + 1 overflow. checkpoint_read_raw stays
 * a faithful copy (test_round_trip_all_dtypes keeps INT64_MIN/MAX);
 * checkpoint_read_i64 reads a scalar count inside the caller's range and
 * checkpoint_check_i64 checks an array, each naming tensor (and index) and
 * value in one line; both edges of the range pass. */
START_TEST(test_i64_range)
{
	char dir[CU_PATH_CAP], path[CU_PATH_CAP];
	cu_new_dir(dir);
	cu_join(path, dir, "crafted.safetensors");
	const int64_t big[1] = {INT64_MAX}, seven[1] = {7}, minus[1] = {-1};
	const int64_t edge[1] = {CHECKPOINT_COUNT_MAX};
	const int64_t perm[3] = {2, INT64_MIN, 0};
	size_t s1[1] = {1}, s3[1] = {3};
	struct checkpoint_writer *w = cu_new_writer();
	cu_add_ok(w, "trainer.epoch", CHECKPOINT_I64, 0, s1, big);
	cu_add_ok(w, "s", CHECKPOINT_I64, 0, s1, seven);
	cu_add_ok(w, "m", CHECKPOINT_I64, 0, s1, minus);
	cu_add_ok(w, "edge", CHECKPOINT_I64, 0, s1, edge);
	cu_add_ok(w, "trainer.perm", CHECKPOINT_I64, 1, s3, perm);
	cu_write_ok(w, path);
	checkpoint_writer_free(w);

	struct checkpoint *c = cu_open_ok(path);
	struct vb_error err = {0};
	int64_t x = 42;
	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_read_i64(c, "trainer.epoch", 0,
					     CHECKPOINT_COUNT_MAX, &x, &err),
			 VB_ERR_DATA);
	cu_expect_msg(&err, path, "tensor 'trainer.epoch' = 9223372036854775807, "
		      "expected 0..9007199254740992");
	ck_assert(x == 42); /* unchanged on error */
	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_read_i64(c, "s", 0, 6, &x, &err),
			 VB_ERR_DATA);
	ck_assert_msg(strstr(err.msg, "tensor 's' = 7, expected 0..6"), "%s",
		      err.msg);
	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_read_i64(c, "m", 0, 6, &x, &err),
			 VB_ERR_DATA);
	ck_assert_msg(strstr(err.msg, "tensor 'm' = -1, expected 0..6"), "%s",
		      err.msg);
	ck_assert(x == 42);
	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_read_i64(c, "s", 7, 7, &x, &err), VB_OK);
	ck_assert(x == 7);
	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_read_i64(c, "edge", 0,
					     CHECKPOINT_COUNT_MAX, &x, &err),
			 VB_OK);
	ck_assert(x == CHECKPOINT_COUNT_MAX);
	/* not a scalar, absent: checkpoint_read_raw's errors */
	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_read_i64(c, "trainer.perm", 0, 9, &x,
					     &err), VB_ERR_DATA);
	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_read_i64(c, "none", 0, 9, &x, &err),
			 VB_ERR_DATA);

	int64_t p[3];
	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_read_raw(c, "trainer.perm", CHECKPOINT_I64,
					     3, p, &err), VB_OK);
	ck_assert(p[1] == INT64_MIN);
	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_check_i64(c, "trainer.perm", p, 3, 0, 2,
					      &err), VB_ERR_DATA);
	ck_assert_msg(strstr(err.msg, "tensor 'trainer.perm'[1] = "
				      "-9223372036854775808, expected 0..2"),
		      "%s", err.msg);
	p[1] = 1;
	vb_error_clear(&err);
	ck_assert_int_eq(checkpoint_check_i64(c, "trainer.perm", p, 3, 0, 2,
					      &err), VB_OK);
	checkpoint_close(c);
}
END_TEST

TU_MAIN("checkpoint", "core", 0, test_dtype_names,
	test_round_trip_all_dtypes, test_round_trip_real, test_read_real_errors,
	test_metadata_escaping, test_exact_bytes, test_empty_writer,
	test_atomic_write, test_other_writer, test_writer_errors,
	test_i64_range)
