/* fuzz_idx: the IDX reader (datasets/idx.h) on arbitrary bytes, raw and
 * (when the bytes start with gzip's magic) through zlib, for every
 * expected rank 1..3. Properties: a success has ndim == the expected
 * rank, dims in 1..IDX_MAX_DIM-1, n_items == dims[0], item_size the product
 * of the rest, data readable over n_items * item_size bytes; a failure
 * leaves *out empty and a one-line message starting "idx: ". */
#include <string.h>

#include "fuzz.h"
#include "idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_write_tmp(data, size, "");
	for (int nd = 1; nd <= 3; nd++) {
		struct idx_array a;
		struct vb_error err;
		vb_error_clear(&err);
		memset(&a, 0xa5, sizeof a);
		enum vb_status st = idx_read(path, nd, &a, &err);
		if (st != VB_OK) {
			if (a.data || strncmp(err.msg, "idx: ", 5) != 0 ||
			    strchr(err.msg, '\n'))
				fuzz_fail("idx_read failed untidily", err.msg);
			idx_free(&a);
			continue;
		}
		if (a.ndim != nd || a.n_items != a.dims[0])
			fuzz_fail("idx_read: bad ndim or n_items", path);
		size_t item = 1;
		for (int i = 0; i < 3; i++) {
			if (a.dims[i] < 1 || a.dims[i] >= IDX_MAX_DIM)
				fuzz_fail("idx_read: dimension out of range",
					  path);
			if (i > 0)
				item *= a.dims[i];
		}
		if (item != a.item_size)
			fuzz_fail("idx_read: item_size", path);
		unsigned sum = 0; /* touch every byte: ASan checks the size */
		for (size_t i = 0; i < a.n_items * a.item_size; i++)
			sum += a.data[i];
		(void)sum;
		idx_free(&a);
		idx_free(&a);
	}
	return 0;
}
