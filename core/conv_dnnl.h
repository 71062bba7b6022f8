/* conv_dnnl: the float build's convolution kernels through oneDNN (the only
 * file that includes dnnl.h). A cache owns a CPU engine, a stream and one
 * set of primitives per (kind, shape, bias, accumulate, OpenMP thread
 * count) key (a primitive keeps the work split of the count it was
 * created for, so a new count gets its own primitives), created the
 * first time a key is used and reused on every later call; the tape
 * semantics (what each op computes, its vjp) stay in ops_conv.c. In the
 * double build (VB_DOUBLE) only conv_dnnl_free, conv_dnnl_create and the
 * forget calls exist, and create fails: double keeps the im2col + dgemm
 * reference path. */
#ifndef VB_CORE_CONV_DNNL_H
#define VB_CORE_CONV_DNNL_H

#include <stdbool.h>
#include <stddef.h>

#include "vb.h"

struct conv_dnnl;

/* One convolution in its forward sense: src (B, c_src, h_src, w_src) with
 * weights (c_dst, c_src, kh, kw) (PyTorch's Conv2d layout, OIHW) gives
 * dst (B, c_dst, h_dst, w_dst), zero padding pad on every side, square
 * stride; h_dst = (h_src + 2 pad - kh) / stride + 1 (floor), so trailing
 * source rows a stride skips are allowed (output padding of the transposed
 * convolution). A transposed convolution is the backward-data of the
 * convolution whose src is its output. */
struct conv_dnnl_shape {
	size_t B;
	size_t c_src, h_src, w_src;
	size_t c_dst, h_dst, w_dst;
	size_t kh, kw, stride, pad;
};

/* Creates an empty cache (engine, stream; no primitives yet). Errors:
 * VB_ERR_NOMEM, VB_ERR_INTERNAL (oneDNN failed, or the double build). */
enum vb_status conv_dnnl_create(struct conv_dnnl **out, struct vb_error *err);
/* Frees every primitive, buffer, the stream and the engine. NULL: no-op. */
void conv_dnnl_free(struct conv_dnnl *c);

/* Blocked copies. A plain input the primitives read in another layout is
 * reordered once and the copy kept (in a pool of the cache's own, up to a
 * fixed size) for every later call that reads the same array in the same
 * layout: the forward's source again in the weight gradient, an output
 * gradient in both the backward-data and the backward-weights, a weight
 * in every call of the step. The copy stands for the array's contents,
 * so the owner of the arrays says when they may change: forget drops
 * every copy (the graph calls it at graph_reset, before the next step's
 * parameters and inputs are read), forget_range those of arrays starting
 * or ending inside [lo, hi) (memory the arena gives back). An output a
 * kernel writes drops its own copies itself. NULL c: no-op; the double
 * build has no copies. */
void conv_dnnl_forget(struct conv_dnnl *c);
void conv_dnnl_forget_range(struct conv_dnnl *c, const void *lo,
			    const void *hi);

/* Counters since the last reset, for benchmarks: primitive calls and the
 * seconds inside them, reorders run and their seconds, blocked copies
 * reused (reorders saved), the pool's high-water mark in bytes. */
struct conv_dnnl_stats {
	size_t calls, reorders, hits, pool_high;
	double prim_s, reorder_s;
};

#ifndef VB_DOUBLE
/* Each kernel writes (accumulate false) or adds into (accumulate true) its
 * output, all arrays plain row-major (NCHW, OIHW, (C)); inputs are read
 * only. The primitives choose their own (blocked) layouts; plain arrays
 * are reordered into them and results reordered back, through buffers the
 * cache owns (grown only when a new key needs more). On a oneDNN failure
 * the output is unspecified and VB_ERR_INTERNAL names the call. */

/* dst (B, c_dst, h_dst, w_dst) = conv(src, w) + bias; bias (c_dst) or
 * NULL. */
enum vb_status conv_dnnl_forward(struct conv_dnnl *c,
				 const struct conv_dnnl_shape *s,
				 const float *src, const float *w,
				 const float *bias, float *dst,
				 bool accumulate, struct vb_error *err);
/* d_src (B, c_src, h_src, w_src) = the input gradient of conv(., w) at
 * output gradient d_dst (B, c_dst, h_dst, w_dst); zeros at source pixels
 * no output reads. */
enum vb_status conv_dnnl_backward_data(struct conv_dnnl *c,
				       const struct conv_dnnl_shape *s,
				       const float *d_dst, const float *w,
				       float *d_src, bool accumulate,
				       struct vb_error *err);
/* d_w (c_dst, c_src, kh, kw) = the weight gradient of conv(src, .) at
 * d_dst; with d_bias (c_dst) not NULL also the bias gradient (the channel
 * sums of d_dst), written or added like d_w. */
enum vb_status conv_dnnl_backward_weights(struct conv_dnnl *c,
					  const struct conv_dnnl_shape *s,
					  const float *src, const float *d_dst,
					  float *d_w, float *d_bias,
					  bool accumulate,
					  struct vb_error *err);

/* The three calls above as one entry, for callers that hand over
 * activations in oneDNN's blocked layout aBcd16b (tensor.h
 * TENSOR_LAYOUT_BLK16) instead of plain NCHW. in0 / in1 / out are
 * (src, w, dst) for FWD, (d_dst, w, d_src) for BWD_DATA, (src, d_dst,
 * d_w) for BWD_WEIGHTS; bias is the forward's bias or the weight
 * gradient's d_bias. */
enum conv_dnnl_call {
	CONV_DNNL_FWD,
	CONV_DNNL_BWD_DATA,
	CONV_DNNL_BWD_WEIGHTS
};
#define CONV_DNNL_BLK_IN0 1u /* in0: src (FWD, BWD_WEIGHTS), d_dst */
#define CONV_DNNL_BLK_IN1 2u /* in1: d_dst of BWD_WEIGHTS */
#define CONV_DNNL_BLK_OUT 4u /* out: dst (FWD), d_src (BWD_DATA) */
/* *blk = the CONV_DNNL_BLK_* bits of the activation arguments the
 * primitive of this key (made on first use) keeps in aBcd16b with no
 * padding: only those may be handed over blocked. */
enum vb_status conv_dnnl_blocked(struct conv_dnnl *c, enum conv_dnnl_call call,
				 const struct conv_dnnl_shape *s, bool bias,
				 bool accumulate, unsigned *blk,
				 struct vb_error *err);
/* Runs call; blk: which of in0, in1, out are aBcd16b (a subset of
 * conv_dnnl_blocked's bits, else VB_ERR_INTERNAL); those skip their
 * reorder (a blocked out that accumulates is added elementwise). */
enum vb_status conv_dnnl_run(struct conv_dnnl *c, enum conv_dnnl_call call,
			     const struct conv_dnnl_shape *s, const float *in0,
			     const float *in1, float *bias, float *out,
			     bool accumulate, unsigned blk,
			     struct vb_error *err);

/* C (m, n) = alpha op(A) op(B) + beta C, row-major, op(X) = X or X^T,
 * through oneDNN's sgemm on OpenMP's threads (conv_dnnl_set_threads):
 * the products of a multi-threaded run, so that it has one thread pool
 * (OpenBLAS's own threads would spin against OpenMP's for the cores; see
 * op_set_threads). For a given thread count the result is deterministic;
 * it differs from OpenBLAS's in the last bits. m, n, k >= 1. Errors:
 * VB_ERR_INTERNAL. */
enum vb_status conv_dnnl_sgemm(bool ta, bool tb, size_t m, size_t n, size_t k,
			       float alpha, const float *a, size_t lda,
			       const float *b, size_t ldb, float beta, float *c,
			       size_t ldc, struct vb_error *err);

/* Number of cached keys, and the bytes of buffers the cache holds (the
 * shared reorder buffers and scratchpad, and the blocked copies' pool's
 * high-water mark), for memory figures. */
size_t conv_dnnl_entries(const struct conv_dnnl *c);
size_t conv_dnnl_buffer_bytes(const struct conv_dnnl *c);
/* Blocked copies on (the default) or off (every input reordered at
 * every call, as before they existed; turning off drops the copies):
 * for benchmarks that compare both in one process. */
void conv_dnnl_set_copies(struct conv_dnnl *c, bool on);
struct conv_dnnl_stats conv_dnnl_stats(const struct conv_dnnl *c);
void conv_dnnl_stats_reset(struct conv_dnnl *c);
/* Name of the implementation oneDNN chose for cached key i
 * (i < conv_dnnl_entries), e.g. "jit:avx512_core", and a one-line
 * description of the key ("bwd_data 64x1x28x28 <- 64x64x14x14 k3 s2 p1");
 * borrowed until conv_dnnl_free. */
const char *conv_dnnl_entry_impl(const struct conv_dnnl *c, size_t i);
const char *conv_dnnl_entry_desc(const struct conv_dnnl *c, size_t i);
#endif

/* oneDNN's threads (OpenMP: omp_set_num_threads of the calling thread)
 * and how many it will use; the double build ignores the setting and
 * reports 1. */
void conv_dnnl_set_threads(int n);
int conv_dnnl_threads(void);
/* Benchmarks only (bench_conv --winograd): primitives built after
 * conv_dnnl_set_winograd(true) use oneDNN's Winograd algorithm
 * (dnnl_convolution_winograd) for 3x3 stride-1 shapes where oneDNN
 * offers it, direct convolution elsewhere. Winograd changes the
 * arithmetic (transforms of the tiles), so training never uses it. The
 * double build ignores it. */
void conv_dnnl_set_winograd(bool on);
/* Writes oneDNN's version and the CPU ISA it dispatches to, e.g.
 * "onednn 2.6.0 isa avx512_core", into buf (size cap); "none" in the
 * double build. Returns buf. */
char *conv_dnnl_describe(char *buf, size_t cap);

#endif
