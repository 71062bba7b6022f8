/* test_checkpoint_reject: the safetensors reader's rejection (with its
 * one-line message) of malformed framing, JSON, schema and offsets, and
 * of every truncation and byte mutation of a sample file. */
#include <check.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "ckutil.h"
#include "testutil.h"

/* A header string with one data section of n bytes is rejected. */
static void expect_hdr_fail(const char *dir, const char *h, size_t n,
			    const char *what)
{
	char path[CU_PATH_CAP];
	cu_join(path, dir, "bad.safetensors");
	cu_write_hdr(path, h, n);
	cu_expect_fail(path, VB_ERR_DATA, what);
}

/* A small valid file with every feature, as bytes; caller frees. */
static char *sample_file(const char *dir, size_t *n)
{
	char path[CU_PATH_CAP];
	struct checkpoint_writer *w = cu_new_writer();
	const float a[3] = {1, 2, 3};
	const int64_t step = 5;
	const uint8_t u[3] = {1, 2, 3};
	const size_t s3[1] = {3};
	char *buf;
	cu_join(path, dir, "sample.safetensors");
	cu_meta_ok(w, "cfg", "lr = 1e-3\n\"q\"");
	cu_add_ok(w, "a", CHECKPOINT_F32, 1, s3, a);
	cu_add_ok(w, "step", CHECKPOINT_I64, 0, NULL, &step);
	cu_add_ok(w, "u", CHECKPOINT_U8, 1, s3, u);
	cu_write_ok(w, path);
	checkpoint_writer_free(w);
	buf = tu_read_file(path, n);
	ck_assert_ptr_nonnull(buf);
	return buf;
}

START_TEST(test_reject_framing)
{
	char dir[CU_PATH_CAP], path[CU_PATH_CAP];
	unsigned char buf[32] = {0};
	cu_new_dir(dir);
	cu_join(path, dir, "f.safetensors");

	ck_assert_int_eq(tu_write_file(path, "", 0), 0);
	cu_expect_fail(path, VB_ERR_DATA, "empty file");

	ck_assert_int_eq(tu_write_file(path, "\x02\0\0\0\0", 5), 0);
	cu_expect_fail(path, VB_ERR_DATA,
		       "truncated: 5 bytes, shorter than the 8-byte header length");

	/* Header length 1000 with 20 bytes after the prefix. */
	buf[0] = 0xe8;
	buf[1] = 0x03;
	memcpy(buf + 8, "{}", 2);
	ck_assert_int_eq(tu_write_file(path, buf, 28), 0);
	cu_expect_fail(path, VB_ERR_DATA,
		       "header length 1000 exceeds the 20 bytes after the length");

	/* Above the 100 MB limit, and u64 max (no overflow in the checks). */
	memset(buf, 0, 8);
	buf[3] = 0x10; /* 0x10000000 = 268435456 */
	ck_assert_int_eq(tu_write_file(path, buf, 28), 0);
	cu_expect_fail(path, VB_ERR_DATA,
		       "header length 268435456 exceeds the limit of 100000000");
	memset(buf, 0xff, 8);
	ck_assert_int_eq(tu_write_file(path, buf, 28), 0);
	cu_expect_fail(path, VB_ERR_DATA, "exceeds the limit");

	/* Header length 0: no JSON at all. */
	memset(buf, 0, 8);
	ck_assert_int_eq(tu_write_file(path, buf, 8), 0);
	cu_expect_fail(path, VB_ERR_DATA, "invalid header JSON at byte 0");

	cu_join(path, dir, "missing.safetensors");
	cu_expect_fail(path, VB_ERR_IO, "cannot open");
	cu_expect_fail(dir, VB_ERR_IO, "read failed");
}
END_TEST

START_TEST(test_reject_json)
{
	static const struct {
		const char *h;
		const char *what;
	} cases[] = {
		{"{\"x\":{\"dtype\":\"F32\",\"shape\":[2],"
		 "\"data_offsets\":[0,8]}",
		 "at byte 53: expected ',' or '}'"},
		{"{\"x\" {}}", "at byte 5: expected ':' after a key"},
		{"{\"x\":{\"dtype\":\"F32\",\"shape\":[2],"
		 "\"data_offsets\":[0,8]},}",
		 "at byte 54: expected a string"},
		{"{'x':1}", "at byte 1: expected a string"},
		{"[]", "at byte 0: expected '{'"},
		{"", "at byte 0: expected '{'"},
		{"{\"x\":{\"dtype\":\"F32\",\"shape\":[2],"
		 "\"data_offsets\":[0,8]}} x",
		 "at byte 55: unexpected characters after the header object"},
		{"{\"a\nb\":{}}", "at byte 3: control character in string"},
		{"{\"a\\qb\":{}}", "at byte 3: invalid escape"},
		{"{\"a\\u12\":{}}", "at byte 3: invalid escape"},
		{"{\"\xff\":{}}", "at byte 2: invalid UTF-8 in string"},
		{"{\"\xc0\x80\":{}}", "invalid UTF-8 in string"},
		{"{\"\xed\xa0\x80\":{}}", "invalid UTF-8 in string"},
		{"{\"\\ud800\":{}}", "unpaired surrogate escape"},
		{"{\"\\udc00x\":{}}", "unpaired surrogate escape"},
		{"{\"a\\u0000\":{}}", "\\u0000 in a string is not supported"},
		{"{\"abc", "unterminated string"},
		{"{\"abc\\", "unterminated string"},
		{"{\"x\":{\"dtype\":\"F32\",\"shape\":[2.0],"
		 "\"data_offsets\":[0,8]}}",
		 "expected an integer, found a fraction or exponent"},
		{"{\"x\":{\"dtype\":\"F32\",\"shape\":[2e0],"
		 "\"data_offsets\":[0,8]}}",
		 "expected an integer, found a fraction or exponent"},
		{"{\"x\":{\"dtype\":\"F32\",\"shape\":[02],"
		 "\"data_offsets\":[0,8]}}",
		 "leading zero in a number"},
		{"{\"x\":{\"dtype\":\"F32\",\"shape\":[-2],"
		 "\"data_offsets\":[0,8]}}",
		 "expected a non-negative integer"},
		{"{\"x\":{\"dtype\":\"F32\",\"shape\":[2,],"
		 "\"data_offsets\":[0,8]}}",
		 "expected a non-negative integer"},
		{"{\"x\":{\"dtype\":\"F32\",\"shape\":[2],"
		 "\"data_offsets\":[0,99999999999999999999999]}}",
		 "integer too large"},
		{"{\"x\":{\"dtype\":\"F32\",\"shape\":[2],"
		 "\"data_offsets\":[0,8]}}\0",
		 "unexpected characters after the header object"},
	};
	char dir[CU_PATH_CAP], path[CU_PATH_CAP];
	cu_new_dir(dir);
	cu_join(path, dir, "j.safetensors");
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		/* The last case carries a NUL inside the header. */
		size_t hlen = strlen(cases[i].h) +
			      (i + 1 == sizeof cases / sizeof cases[0]);
		unsigned char data[8] = {0};
		cu_write_raw(path, cases[i].h, hlen, data, 8);
		cu_expect_fail(path, VB_ERR_DATA,
			       "invalid header JSON at byte");
		cu_expect_fail(path, VB_ERR_DATA, cases[i].what);
	}
}
END_TEST

START_TEST(test_reject_schema)
{
	char dir[CU_PATH_CAP];
	cu_new_dir(dir);
	/* unknown dtype, including safetensors dtypes we do not support */
	expect_hdr_fail(dir, "{\"x\":{\"dtype\":\"F128\",\"shape\":[2],"
			"\"data_offsets\":[0,8]}}", 8,
			"tensor 'x': unknown dtype 'F128'");
	expect_hdr_fail(dir, "{\"x\":{\"dtype\":\"F16\",\"shape\":[4],"
			"\"data_offsets\":[0,8]}}", 8,
			"tensor 'x': unknown dtype 'F16'");
	expect_hdr_fail(dir, "{\"x\":{\"dtype\":\"f32\",\"shape\":[2],"
			"\"data_offsets\":[0,8]}}", 8, "unknown dtype 'f32'");
	expect_hdr_fail(dir, "{\"x\":{\"dtype\":32,\"shape\":[2],"
			"\"data_offsets\":[0,8]}}", 8,
			"tensor 'x': dtype is not a string");
	/* missing, unknown and repeated fields */
	expect_hdr_fail(dir, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8,
			"tensor 'x': missing field 'data_offsets'");
	expect_hdr_fail(dir, "{\"x\":{}}", 0,
			"tensor 'x': missing field 'dtype'");
	expect_hdr_fail(dir, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],"
			"\"data_offsets\":[0,8],\"offsets\":[0,8]}}", 8,
			"tensor 'x': unknown field 'offsets'");
	expect_hdr_fail(dir, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],"
			"\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
			"tensor 'x': duplicate field 'shape'");
	expect_hdr_fail(dir, "{\"x\":[1,2]}", 0,
			"tensor 'x': entry is not an object");
	expect_hdr_fail(dir, "{\"x\":{\"dtype\":\"F32\",\"shape\":2,"
			"\"data_offsets\":[0,8]}}", 8,
			"tensor 'x': shape is not an array");
	expect_hdr_fail(dir,
			"{\"x\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
			"\"data_offsets\":[0,1]}}", 1,
			"tensor 'x': shape has more than 8 entries");
	expect_hdr_fail(dir, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],"
			"\"data_offsets\":[0,4,8]}}", 8,
			"tensor 'x': data_offsets has more than 2 entries");
	expect_hdr_fail(dir, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],"
			"\"data_offsets\":[8]}}", 8,
			"tensor 'x': data_offsets has 1 entries, expected 2");
	/* metadata */
	expect_hdr_fail(dir, "{\"__metadata__\":{\"k\":1}}", 0,
			"__metadata__ value of 'k' is not a string");
	expect_hdr_fail(dir, "{\"__metadata__\":[]}", 0,
			"__metadata__ is not an object");
	expect_hdr_fail(dir, "{\"__metadata__\":null}", 0,
			"__metadata__ is not an object");
	expect_hdr_fail(dir, "{\"__metadata__\":{\"k\":\"a\"},"
			"\"__metadata__\":{}}", 0,
			"duplicate key '__metadata__'");
	expect_hdr_fail(dir, "{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0,
			"duplicate metadata key 'k'");
	/* duplicate tensor names, even with distinct valid offsets */
	expect_hdr_fail(dir, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],"
			"\"data_offsets\":[0,4]},"
			"\"x\":{\"dtype\":\"F32\",\"shape\":[1],"
			"\"data_offsets\":[4,8]}}", 8,
			"duplicate tensor name 'x'");
	/* hostile names are shown escaped and bounded, on one line */
	expect_hdr_fail(dir, "{\"a\\nb\\u0001\":{\"dtype\":\"X\",\"shape\":[],"
			"\"data_offsets\":[0,0]}}", 0,
			"tensor 'a\\x0ab\\x01': unknown dtype 'X'");
}
END_TEST

START_TEST(test_reject_offsets)
{
	char dir[CU_PATH_CAP];
	cu_new_dir(dir);
	/* offsets out of range */
	expect_hdr_fail(dir, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],"
			"\"data_offsets\":[8,16]}}", 8,
			"tensor 'x': data_offsets [8, 16] outside the data "
			"buffer of 8 bytes");
	expect_hdr_fail(dir, "{\"x\":{\"dtype\":\"U8\",\"shape\":[1],"
			"\"data_offsets\":[18446744073709551615,"
			"18446744073709551615]}}", 8,
			"outside the data buffer of 8 bytes");
	expect_hdr_fail(dir, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],"
			"\"data_offsets\":[8,0]}}", 8,
			"tensor 'x': data_offsets [8, 0] are decreasing");
	/* shape / offsets size mismatch, and shapes whose size overflows */
	expect_hdr_fail(dir, "{\"x\":{\"dtype\":\"F32\",\"shape\":[3],"
			"\"data_offsets\":[0,8]}}", 8,
			"tensor 'x': shape (3) of F32 needs 12 bytes, "
			"data_offsets [0, 8] hold 8");
	expect_hdr_fail(dir, "{\"x\":{\"dtype\":\"F64\",\"shape\":[],"
			"\"data_offsets\":[0,4]}}", 4,
			"tensor 'x': shape () of F64 needs 8 bytes, "
			"data_offsets [0, 4] hold 4");
	expect_hdr_fail(dir, "{\"x\":{\"dtype\":\"F64\",\"shape\":[4294967296,"
			"4294967296],\"data_offsets\":[0,0]}}", 0,
			"tensor 'x': shape (4294967296, 4294967296) "
			"overflows");
	expect_hdr_fail(dir,
			"{\"x\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952]"
			",\"data_offsets\":[0,0]}}", 0, "overflows");
	/* overlap, gap, trailing bytes */
	expect_hdr_fail(dir, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
			"\"data_offsets\":[0,8]},"
			"\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
			"\"data_offsets\":[4,12]}}", 12,
			"tensor 'b': data_offsets [4, 12] overlap tensor 'a' "
			"ending at 8");
	expect_hdr_fail(dir, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
			"\"data_offsets\":[0,4]},"
			"\"b\":{\"dtype\":\"F32\",\"shape\":[1],"
			"\"data_offsets\":[0,4]}}", 4,
			"tensor 'b': data_offsets [0, 4] overlap tensor 'a'");
	expect_hdr_fail(dir,
			"{\"b\":{\"dtype\":\"F32\",\"shape\":[1],"
			"\"data_offsets\":[8,12]},"
			"\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
			"\"data_offsets\":[0,4]}}",
			12,
			"gap in the data buffer: bytes [4, 8) belong to no "
			"tensor (next is 'b')");
	expect_hdr_fail(dir,
			"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
			"\"data_offsets\":[4,8]}}",
			8, "gap in the data buffer: bytes [0, 4)");
	expect_hdr_fail(dir, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
			"\"data_offsets\":[0,8]}}", 12,
			"data buffer has 12 bytes, the tensors cover 8");
	expect_hdr_fail(dir, "{}", 3, "data buffer has 3 bytes, the tensors "
			"cover 0");
}
END_TEST

START_TEST(test_truncated_everywhere)
{
	char dir[CU_PATH_CAP], path[CU_PATH_CAP];
	size_t n;
	char *buf;
	cu_new_dir(dir);
	buf = sample_file(dir, &n);
	cu_join(path, dir, "cut.safetensors");
	/* Every proper prefix of a valid file is refused, cleanly. */
	for (size_t len = 0; len < n; len++) {
		ck_assert_int_eq(tu_write_file(path, buf, len), 0);
		cu_expect_fail(path, VB_ERR_DATA, "");
	}
	/* Cut inside the data: the last tensor sticks out of the buffer. */
	ck_assert_int_eq(tu_write_file(path, buf, n - 1), 0);
	cu_expect_fail(path, VB_ERR_DATA,
		       "tensor 'u': data_offsets [20, 23] outside the data buffer "
		       "of 22 bytes");
	ck_assert_int_eq(tu_write_file(path, buf, n), 0);
	checkpoint_close(cu_open_ok(path));
	free(buf);
}
END_TEST

START_TEST(test_mutations)
{
	/* A deterministic mini-fuzz: every byte of a valid file replaced by
	 * several values. Each result opens cleanly or fails with
	 * VB_ERR_DATA and a proper message; opened files stay consistent. */
	static const unsigned char vals[] = {0x00, 0xff, '"', '\\', '{', '}',
					     '[', ',', '9', ' ', 0x80};
	char dir[CU_PATH_CAP], path[CU_PATH_CAP], prefix[CU_PATH_CAP + 32];
	size_t n, n_ok = 0, n_bad = 0;
	char *orig, *buf;
	cu_new_dir(dir);
	orig = sample_file(dir, &n);
	buf = malloc(n);
	ck_assert_ptr_nonnull(buf);
	cu_join(path, dir, "mut.safetensors");
	snprintf(prefix, sizeof prefix, "checkpoint: %s: ", path);
	for (size_t i = 0; i < n; i++) {
		for (size_t v = 0; v <= sizeof vals; v++) {
			struct checkpoint *c = NULL;
			struct vb_error err = {0};
			enum vb_status st;
			memcpy(buf, orig, n);
			buf[i] = v < sizeof vals ? (char)vals[v]
						 : (char)(orig[i] ^ 1);
			if (buf[i] == orig[i])
				continue;
			ck_assert_int_eq(tu_write_file(path, buf, n), 0);
			st = checkpoint_open(path, &c, &err);
			if (st == VB_OK) {
				n_ok++;
				for (size_t k = 0; k < checkpoint_count(c); k++)
					ck_assert_ptr_nonnull(checkpoint_data(
						c, checkpoint_name(c, k)));
				checkpoint_close(c);
			} else {
				n_bad++;
				ck_assert_int_eq(st, VB_ERR_DATA);
				ck_assert_ptr_null(c);
				ck_assert(strncmp(err.msg, prefix,
						  strlen(prefix)) == 0);
				ck_assert(strchr(err.msg, '\n') == NULL);
			}
		}
	}
	/* Data bytes can change freely, most header bytes cannot. */
	ck_assert_uint_gt(n_ok, 0);
	ck_assert_uint_gt(n_bad, n_ok);
	free(buf);
	free(orig);
}
END_TEST

TU_MAIN("checkpoint_reject", "core", 0, test_reject_framing,
	test_reject_json, test_reject_schema, test_reject_offsets,
	test_truncated_everywhere, test_mutations)
