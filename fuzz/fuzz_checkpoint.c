/* fuzz_checkpoint: the safetensors reader (core/checkpoint.h) on arbitrary
 * bytes. On success every tensor is visited through the public API
 * (name, info, data, read_raw and read_real with the reported dtype and
 * shape, read_i64 on scalars) and a few metadata keys are looked up;
 * properties: what checkpoint_info reports is what the readers accept,
 * names are unique and found again, a failure leaves *out NULL with a
 * one-line "checkpoint: " message. */
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "fuzz.h"

static void visit(const struct checkpoint *c)
{
	size_t n = checkpoint_count(c);
	for (size_t i = 0; i < n; i++) {
		const char *name = checkpoint_name(c, i);
		enum checkpoint_dtype dt;
		int nd;
		size_t shape[CHECKPOINT_MAX_DIM], count = 1;
		struct vb_error err;
		vb_error_clear(&err);
		if (!name)
			fuzz_fail("checkpoint_name: NULL inside the count",
				  NULL);
		if (checkpoint_info(c, name, &dt, &nd, shape, &err) != VB_OK)
			fuzz_fail("checkpoint_info: listed name not found",
				  err.msg);
		for (int d = 0; d < nd; d++)
			count *= shape[d];
		size_t bytes = count * checkpoint_dtype_size(dt);
		const unsigned char *p = checkpoint_data(c, name);
		if (!p && bytes)
			fuzz_fail("checkpoint_data: NULL for a listed name",
				  name);
		unsigned char *buf = malloc(bytes ? bytes : 1);
		if (!buf)
			fuzz_fail("no memory", NULL);
		if (checkpoint_read_raw(c, name, dt, count, buf, &err) !=
			    VB_OK ||
		    (bytes && memcmp(buf, p, bytes) != 0))
			fuzz_fail("checkpoint_read_raw disagrees with info",
				  err.msg);
		free(buf);
		if (dt == CHECKPOINT_F32 || dt == CHECKPOINT_F64) {
			vb_real *r = malloc((count ? count : 1) *
					    sizeof *r);
			if (!r)
				fuzz_fail("no memory", NULL);
			if (checkpoint_read_real(c, name, nd, shape, r,
						 &err) != VB_OK)
				fuzz_fail("checkpoint_read_real disagrees "
					  "with info", err.msg);
			free(r);
		}
		if (dt == CHECKPOINT_I64 && count == 1) {
			int64_t v;
			vb_error_clear(&err);
			(void)checkpoint_read_i64(c, name, 0,
						  CHECKPOINT_COUNT_MAX, &v,
						  &err);
		}
		/* a wrong element count is refused, never copied */
		vb_error_clear(&err);
		unsigned char small[8];
		if (count != 0 &&
		    checkpoint_read_raw(c, name, dt, 0, small, &err) == VB_OK)
			fuzz_fail("checkpoint_read_raw: wrong count accepted",
				  name);
	}
	(void)checkpoint_meta(c, "format");
	(void)checkpoint_meta(c, "");
	(void)checkpoint_data(c, "__metadata__");
	(void)checkpoint_name(c, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_write_tmp(data, size, ".safetensors");
	struct checkpoint *c = (struct checkpoint *)&c; /* must become NULL */
	struct vb_error err;
	vb_error_clear(&err);
	if (checkpoint_open(path, &c, &err) != VB_OK) {
		if (c || strncmp(err.msg, "checkpoint: ", 12) != 0 ||
		    strchr(err.msg, '\n'))
			fuzz_fail("checkpoint_open failed untidily", err.msg);
		return 0;
	}
	visit(c);
	checkpoint_close(c);
	return 0;
}
