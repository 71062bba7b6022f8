/* checkpoint: named tensors and string metadata in safetensors files
 * (https://github.com/huggingface/safetensors): 8-byte little-endian header
 * length N, N bytes of JSON, then the raw little-endian tensor bytes. Owns
 * the atomic writer and a strict, bounds-checked reader with its own JSON
 * parser; which tensors a model saves is the model's business. */
#ifndef VB_CORE_CHECKPOINT_H
#define VB_CORE_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "vb.h"

/* Most dimensions a tensor may have in a checkpoint. */
#define CHECKPOINT_MAX_DIM 8

/* Header JSON larger than this is refused (the limit of the reference
 * safetensors implementation). */
#define CHECKPOINT_MAX_HEADER 100000000u

/* Largest count (step, epoch, batch, index) a loader should accept from
 * a checkpoint: 2^53, exact in a double, far beyond any real count and far
 * enough below INT64_MAX that counting on from it cannot overflow. */
#define CHECKPOINT_COUNT_MAX ((int64_t)1 << 53)

/* Element types; the file spells them "F32", "F64", ... (safetensors names).
 * Other safetensors dtypes (F16, BF16, ...) are not supported: files holding
 * them are refused as having an unknown dtype. */
enum checkpoint_dtype {
	CHECKPOINT_F32,
	CHECKPOINT_F64,
	CHECKPOINT_I64,
	CHECKPOINT_I32,
	CHECKPOINT_U64,
	CHECKPOINT_U8
};

/* The dtype matching vb_real in this build. */
#ifdef VB_DOUBLE
#define CHECKPOINT_REAL CHECKPOINT_F64
#else
#define CHECKPOINT_REAL CHECKPOINT_F32
#endif

/* The safetensors dtype string ("F32", "F64", "I64", "I32", "U64", "U8");
 * "?" for a value outside the enum. */
const char *checkpoint_dtype_name(enum checkpoint_dtype dtype);

/* Bytes per element (4, 8, 8, 4, 8, 1); 0 for a value outside the enum. */
size_t checkpoint_dtype_size(enum checkpoint_dtype dtype);

/* ---- writer ---------------------------------------------------------- */

struct checkpoint_writer;

/* Creates an empty writer. VB_ERR_NOMEM on allocation failure. */
enum vb_status checkpoint_writer_create(struct checkpoint_writer **out,
					struct vb_error *err);

/* Adds tensor `name` (non-empty UTF-8, not "__metadata__", unique in this
 * writer) of dtype with ndim (0..CHECKPOINT_MAX_DIM) dimensions shape[0..ndim)
 * and row-major data of prod(shape) elements in host (little-endian) order.
 * name and shape are copied; data is borrowed and must stay valid and
 * unchanged until the last checkpoint_write (it may be NULL only when the
 * tensor has zero elements). Errors: VB_ERR_INTERNAL for a duplicate or bad
 * name, bad dtype or NULL data; VB_ERR_SHAPE for ndim out of range;
 * VB_ERR_NOMEM on allocation failure or a size that overflows. */
enum vb_status checkpoint_add(struct checkpoint_writer *w, const char *name,
			      enum checkpoint_dtype dtype, int ndim,
			      const size_t *shape, const void *data,
			      struct vb_error *err);

/* Adds metadata key -> value (both copied; any valid UTF-8, value may be
 * long and hold newlines, quotes, ...; the key is non-empty and unique).
 * Errors: VB_ERR_INTERNAL for a duplicate/empty key or invalid UTF-8,
 * VB_ERR_NOMEM. */
enum vb_status checkpoint_add_meta(struct checkpoint_writer *w,
				   const char *key, const char *value,
				   struct vb_error *err);

/* Writes all tensors and metadata to path: first to "path.tmp.<pid>", then
 * fsync and rename, so path never holds a half-written file (on failure the
 * temporary file is removed and path is untouched). The JSON header puts
 * "__metadata__" first (if any), then the tensors in data order; the data
 * section orders tensors by element size, largest first (stable: same-size
 * tensors keep their add order), so every tensor is aligned to its element
 * size in the file. The header is padded with spaces to a multiple of 8.
 * The writer may be written again. Errors: VB_ERR_IO (create, write, fsync,
 * rename), VB_ERR_NOMEM, VB_ERR_INTERNAL on a big-endian host. */
enum vb_status checkpoint_write(struct checkpoint_writer *w, const char *path,
				struct vb_error *err);

/* Frees the writer (not the borrowed data). w may be NULL. */
void checkpoint_writer_free(struct checkpoint_writer *w);

/* ---- reader ---------------------------------------------------------- */

struct checkpoint;

/* Reads the whole file at path and validates it: header length (<=
 * CHECKPOINT_MAX_HEADER and <= file size - 8), strict JSON (RFC 8259,
 * UTF-8) of the safetensors shape, known dtypes, at most CHECKPOINT_MAX_DIM
 * dimensions, shape size == data_offsets size, offsets inside the data
 * buffer and covering it exactly without gaps or overlaps, unique names,
 * "__metadata__" an object of strings. Errors are one line
 * "checkpoint: <path>: <what>": VB_ERR_IO when the file cannot be read,
 * VB_ERR_DATA when it is malformed, VB_ERR_NOMEM, VB_ERR_INTERNAL on a
 * big-endian host. On error *out is NULL. */
enum vb_status checkpoint_open(const char *path, struct checkpoint **out,
			       struct vb_error *err);

/* Number of tensors. */
size_t checkpoint_count(const struct checkpoint *c);

/* Name of tensor i (0 <= i < count), tensors ordered by data offset; NULL if
 * i is out of range. Borrowed until checkpoint_close. */
const char *checkpoint_name(const struct checkpoint *c, size_t i);

/* dtype, ndim and shape[0..ndim) of tensor name (each output may be NULL;
 * shape entries from ndim on are set to 1). VB_ERR_DATA if absent. */
enum vb_status checkpoint_info(const struct checkpoint *c, const char *name,
			       enum checkpoint_dtype *dtype, int *ndim,
			       size_t shape[CHECKPOINT_MAX_DIM],
			       struct vb_error *err);

/* The tensor's little-endian bytes, aligned for its dtype (tensors that are
 * misaligned in the file were copied at open); NULL if absent. Borrowed
 * until checkpoint_close. */
const void *checkpoint_data(const struct checkpoint *c, const char *name);

/* Copies tensor name, which must be F32 or F64 with exactly the given ndim
 * and shape, into dst (prod(shape) vb_real), converting to vb_real.
 * VB_ERR_DATA if absent, of another dtype or of another shape (the message
 * names the tensor, the found and the expected shape). */
enum vb_status checkpoint_read_real(const struct checkpoint *c,
				    const char *name, int ndim,
				    const size_t *shape, vb_real *dst,
				    struct vb_error *err);

/* Copies tensor name, which must have exactly this dtype and n_elems
 * elements, into dst (n_elems * checkpoint_dtype_size(dtype) bytes).
 * VB_ERR_DATA if absent or of another dtype or size. The values are not
 * looked at: a loader range-checks what it reads (checkpoint_read_i64,
 * checkpoint_check_i64) before its arithmetic uses them. */
enum vb_status checkpoint_read_raw(const struct checkpoint *c,
				   const char *name,
				   enum checkpoint_dtype dtype, size_t n_elems,
				   void *dst, struct vb_error *err);

/* Reads the one-element I64 tensor name into *out when its value lies in
 * lo..hi (inclusive); else VB_ERR_DATA "checkpoint: <path>: tensor 'name'
 * = <value>, expected lo..hi" and *out unchanged. Errors of
 * checkpoint_read_raw otherwise. Counts use 0..CHECKPOINT_COUNT_MAX. */
enum vb_status checkpoint_read_i64(const struct checkpoint *c,
				   const char *name, int64_t lo, int64_t hi,
				   int64_t *out, struct vb_error *err);

/* Checks v[0..n) (values already read from tensor name of c) against
 * lo..hi: VB_ERR_DATA "checkpoint: <path>: tensor 'name'[i] = <value>,
 * expected lo..hi" for the first one outside. */
enum vb_status checkpoint_check_i64(const struct checkpoint *c,
				    const char *name, const int64_t *v,
				    size_t n, int64_t lo, int64_t hi,
				    struct vb_error *err);

/* Metadata value for key (unescaped), NULL if absent. Borrowed until
 * checkpoint_close. */
const char *checkpoint_meta(const struct checkpoint *c, const char *key);

/* Releases everything. c may be NULL. */
void checkpoint_close(struct checkpoint *c);

#endif
