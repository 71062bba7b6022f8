/* ops: every differentiable operation on the tape. Each op computes its
 * value eagerly, appends a named node, and carries a fused first-order
 * backward kernel (accumulating, +=) and a vjp that rebuilds its backward
 * from other ops so it can be differentiated again. Products go through
 * cblas_?gemm. All ops return NULL (with the graph's sticky error set) on a
 * NULL input or a shape mismatch. Names are local: the graph prefixes the
 * current scope. */
#ifndef VB_CORE_OPS_H
#define VB_CORE_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graph.h"

/* ---- products ---- */

/* op(a) op(b) with op = transpose when ta / tb: a (M, K) or (K, M),
 * b (K, N) or (N, K) -> (M, N). 2-D only. */
struct graph_node *op_matmul(struct graph *g, const char *name,
			     struct graph_node *a, struct graph_node *b,
			     bool ta, bool tb);

/* y = x w^T + b (PyTorch nn.Linear): x (B, in) (any trailing shape that
 * flattens to in), w (out, in), b (out) or NULL -> (B, out). */
struct graph_node *op_linear(struct graph *g, const char *name,
			     struct graph_node *x, struct graph_node *w,
			     struct graph_node *b);

/* ---- elementwise, one input (same shape out) ---- */
struct graph_node *op_relu(struct graph *g, const char *name,
			   struct graph_node *a);
struct graph_node *op_sigmoid(struct graph *g, const char *name,
			      struct graph_node *a);
/* softplus(x) = log1p(exp(x)), as PyTorch with beta 1, threshold 20
 * (x > 20 gives x). */
struct graph_node *op_softplus(struct graph *g, const char *name,
			       struct graph_node *a);
struct graph_node *op_exp(struct graph *g, const char *name,
			  struct graph_node *a);
struct graph_node *op_log(struct graph *g, const char *name,
			  struct graph_node *a);
struct graph_node *op_square(struct graph *g, const char *name,
			     struct graph_node *a);
struct graph_node *op_neg(struct graph *g, const char *name,
			  struct graph_node *a);
/* a * s and a + s for a constant scalar s. */
struct graph_node *op_scale(struct graph *g, const char *name,
			    struct graph_node *a, double s);
struct graph_node *op_add_scalar(struct graph *g, const char *name,
				 struct graph_node *a, double s);
/* torch.clamp(a, lo, hi): NaN passes through; the gradient flows where
 * lo <= a <= hi (inclusive, as PyTorch). */
struct graph_node *op_clamp(struct graph *g, const char *name,
			    struct graph_node *a, double lo, double hi);
/* Constant 0/1 mask of a > 0 (no gradient): relu's derivative. */
struct graph_node *op_relu_mask(struct graph *g, const char *name,
				struct graph_node *a);

/* ---- elementwise, two inputs of the same shape ---- */
struct graph_node *op_add(struct graph *g, const char *name,
			  struct graph_node *a, struct graph_node *b);
struct graph_node *op_sub(struct graph *g, const char *name,
			  struct graph_node *a, struct graph_node *b);
struct graph_node *op_mul(struct graph *g, const char *name,
			  struct graph_node *a, struct graph_node *b);
struct graph_node *op_div(struct graph *g, const char *name,
			  struct graph_node *a, struct graph_node *b);

/* ---- broadcasts ---- */
/* a (B, ...) times s (B): row b scaled by s[b]. */
struct graph_node *op_mul_rows(struct graph *g, const char *name,
			       struct graph_node *a, struct graph_node *s);
/* a (B, N) + b (N): bias added to every row. */
struct graph_node *op_add_bias(struct graph *g, const char *name,
			       struct graph_node *a, struct graph_node *b);
/* s (B) -> (B, N): each s[b] repeated along the row. */
struct graph_node *op_expand_rows(struct graph *g, const char *name,
				  struct graph_node *s, size_t n_cols);
/* v (N) -> (B, N): v repeated as every row. */
struct graph_node *op_repeat_rows(struct graph *g, const char *name,
				  struct graph_node *v, size_t n_rows);
/* scalar s (1 element) -> tensor of the given shape, every element s. */
struct graph_node *op_expand(struct graph *g, const char *name,
			     struct graph_node *s, int ndim,
			     const size_t *shape);
/* Same data, new shape (element count must match). */
struct graph_node *op_reshape(struct graph *g, const char *name,
			      struct graph_node *a, int ndim,
			      const size_t *shape);

/* ---- reductions (accumulated in double) ---- */
struct graph_node *op_sum(struct graph *g, const char *name,
			  struct graph_node *a); /* -> scalar */
struct graph_node *op_mean(struct graph *g, const char *name,
			   struct graph_node *a); /* -> scalar */
/* (B, ...) -> (B): per-sample sum over everything after the batch axis. */
struct graph_node *op_sum_rows(struct graph *g, const char *name,
			       struct graph_node *a);
/* (B, N) -> (N): sum over the batch axis. */
struct graph_node *op_sum_cols(struct graph *g, const char *name,
			       struct graph_node *a);

/* ---- per-sample losses, (B, ...) inputs -> (B) ---- */
/* 0.5 * sum_p (y - x)^2 (pythae "mse", rhvae.md section 3). */
struct graph_node *op_mse(struct graph *g, const char *name,
			  struct graph_node *y, struct graph_node *x);
/* pythae "bce": sum_p -(t max(log y, log_clamp) + (1 - t) max(log(1 - y),
 * log_clamp)), gradient (y - t) / max(y (1 - y), denom_eps) as PyTorch's
 * binary_cross_entropy (log_clamp -100, denom_eps 1e-12 there). */
struct graph_node *op_bce(struct graph *g, const char *name,
			  struct graph_node *y, struct graph_node *t,
			  double log_clamp, double denom_eps);
/* Stable BCE from logits l: sum_p max(l, 0) - l t + log1p(exp(-|l|)). */
struct graph_node *op_bce_logits(struct graph *g, const char *name,
				 struct graph_node *l, struct graph_node *t);

/* Constant node of the given shape filled with v. */
struct graph_node *op_full(struct graph *g, const char *name, int ndim,
			   const size_t *shape, double v);

/* ---- convolutions (ops_conv.c) ---- */
/* NCHW, PyTorch semantics and weight layouts, square stride and padding,
 * no dilation or groups. Lowered onto op_gemm through im2col / col2im over
 * chunks of the batch; scratch comes from the graph arena. Fused backward
 * kernels accumulate (+=) into every input; the vjps are built from these
 * same ops, so gradients taken with create_graph differentiate again. */

/* torch.nn.functional.conv2d: x (B, Cin, H, W), w (Cout, Cin, kh, kw),
 * b (Cout) or NULL -> (B, Cout, Ho, Wo), Ho = (H + 2 pad - kh) / stride + 1
 * (floor), Wo likewise. stride >= 1, pad >= 0. vjp: x <- conv_transpose2d
 * of the output gradient (output padding chosen to give back H, W),
 * w <- op_conv2d_weight_grad, b <- op_sum_channels. */
struct graph_node *op_conv2d(struct graph *g, const char *name,
			     struct graph_node *x, struct graph_node *w,
			     struct graph_node *b, int stride, int pad);

/* torch.nn.functional.conv_transpose2d: x (B, Cin, H, W),
 * w (Cin, Cout, kh, kw), b (Cout) or NULL -> (B, Cout, Ho, Wo),
 * Ho = (H - 1) stride - 2 pad + kh + output_padding, Wo likewise;
 * 0 <= output_padding < stride. It is the input gradient of a conv2d with
 * the same w, stride and pad. vjp: x <- conv2d of the output gradient,
 * w <- op_conv2d_weight_grad(gradient, x), b <- op_sum_channels. */
struct graph_node *op_conv_transpose2d(struct graph *g, const char *name,
				       struct graph_node *x,
				       struct graph_node *w,
				       struct graph_node *b, int stride,
				       int pad, int output_padding);

/* The weight gradient of conv2d as an op of its own: x (B, Cin, H, W),
 * gy (B, Cout, Ho, Wo) with Ho, Wo the conv2d output size for
 * (kh, kw, stride, pad) -> (Cout, Cin, kh, kw),
 * out[o][c][i][j] = sum_{b,h,w} gy[b][o][h][w] x[b][c][h s - p + i][w s - p + j].
 * Bilinear, differentiable in both inputs. conv_transpose2d's weight
 * gradient is op_conv2d_weight_grad(gy, x, ...). */
struct graph_node *op_conv2d_weight_grad(struct graph *g, const char *name,
					 struct graph_node *x,
					 struct graph_node *gy, int kh, int kw,
					 int stride, int pad);

/* (B, C, ...) -> (C): sum over every axis but axis 1 (in double). The
 * gradient of a convolution's bias. */
struct graph_node *op_sum_channels(struct graph *g, const char *name,
				   struct graph_node *a);
/* v (C) -> shape (B, C, ...) (ndim >= 2, shape[1] = C): v[c] in every
 * element of channel c. Adjoint of op_sum_channels. */
struct graph_node *op_expand_channels(struct graph *g, const char *name,
				      struct graph_node *v, int ndim,
				      const size_t *shape);
/* ---- end of convolutions ---- */

/* The gemm the ops use, row-major: C = alpha op(A) op(B) + beta C.
 * cblas_sgemm or cblas_dgemm by build; in the float build with
 * op_threads() > 1, oneDNN's sgemm on OpenMP's threads instead (one
 * thread pool per process; see op_set_threads). Exposed for benchmarks
 * and tests. */
void op_gemm(bool ta, bool tb, size_t m, size_t n, size_t k, vb_real alpha,
	     const vb_real *a, size_t lda, const vb_real *b, size_t ldb,
	     vb_real beta, vb_real *c, size_t ldc);

/* The single-core (per BLAS thread setting) practical peak, measured:
 * the best of reps square products n x n x n through op_gemm, in GFLOP/s
 * (0 if the scratch cannot be allocated). Benchmarks report shares of it;
 * it allocates 3 n^2 reals and takes about reps x 2 n^3 / rate seconds. */
double op_gemm_peak_gflops(size_t n, int reps);

/* ---- batch norm (ops_bn.c) ---- */
/* sqrt, elementwise. Backward G / (2 sqrt(x)) as PyTorch: infinite at
 * x = 0 (the forensics call that cause "sqrt_zero_backward"). */
struct graph_node *op_sqrt(struct graph *g, const char *name,
			   struct graph_node *a);

/* How op_batch_norm normalises. batch_stats: with the batch mean and
 * biased variance over N = B * H * W per channel (training mode, or any
 * mode with track_running_stats off); update_running (with batch_stats
 * and buffers): running = (1 - momentum) running + momentum batch, the
 * variance unbiased (N / (N - 1), NaN when N = 1), n_tracked += 1. Without
 * batch_stats the running buffers normalise (evaluation mode). eps is
 * added to the variance under the square root. */
struct op_bn_settings {
	bool batch_stats;
	bool update_running;
	double momentum;
	double eps;
};
/* PyTorch's buffers running_mean (C), running_var (C) and
 * num_batches_tracked; borrowed, written by the update. */
struct op_bn_running {
	vb_real *mean;
	vb_real *var;
	int64_t *n_tracked; /* may be NULL */
};
/* BatchNorm1d / BatchNorm2d: x (B, C) or (B, C, H, W), weight gamma (C),
 * bias beta (C) -> same shape as x; run NULL when track_running_stats is
 * off (then batch_stats must be set). Batch statistics make one node
 * "batch_norm" (fused backward accumulating into x, gamma, beta; vjp from
 * differentiable ops); running statistics make nodes under the scope
 * name: running_mean, running_var (constants), var_eps, std, scale,
 * center, norm, out. The running update happens in the forward, in double;
 * a zero variance with eps 0 gives NaN from finite inputs. */
struct graph_node *op_batch_norm(struct graph *g, const char *name,
				 struct graph_node *x, struct graph_node *gamma,
				 struct graph_node *beta,
				 const struct op_bn_settings *s,
				 struct op_bn_running *run);
/* ---- end of batch norm ---- */

/* OpenBLAS facts and control (cblas stays in this file): the kernel core
 * OpenBLAS chose ("SkylakeX", "Prescott", ...), its thread count, and
 * setting the thread count. */
const char *op_blas_core(void);
int op_blas_threads(void);
void op_blas_set_threads(int n);

/* Threads of everything a training step runs, set together; the one call
 * a trainer makes (train.blas_threads), before its first step, from the
 * thread that runs the steps. n = 1: OpenBLAS, oneDNN and core's loops
 * on the calling thread alone (the bits of every earlier release). n > 1
 * in the float build: one OpenMP pool of n threads runs oneDNN's
 * convolutions, every product (op_gemm through oneDNN's sgemm) and core's
 * elementwise loops (par.h), while OpenBLAS stays at 1 thread: OpenBLAS's
 * pthreads and OpenMP's workers both spin-wait between calls, and on a
 * machine with n cores the two pools take turns on the cores (measured
 * 3.06 s per ResNet RHVAE step at 2 threads against 0.21 s at 1). For a
 * given n results are deterministic; they differ from n = 1's in the
 * last bits of the products. The double build has no oneDNN: n > 1 gives
 * OpenBLAS n threads and keeps the loops serial. n < 1 is taken as 1. */
void op_set_threads(int n);
/* The count op_set_threads set (1 until it is called). */
int op_threads(void);

#endif
