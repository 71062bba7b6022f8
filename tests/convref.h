/* convref: naive convolutions in double (direct loops, PyTorch's
 * definitions) and the kernel/stride/padding geometries the convolution
 * suites (test_conv, test_conv_grad, test_resnet) check the kernels
 * against. Plain double arrays, so the float and the double builds share
 * it; tests/CMakeLists.txt links it where a suite names it (EXTRA).
 * Prefix cr_. */
#ifndef VB_TESTS_CONVREF_H
#define VB_TESTS_CONVREF_H

#include <stdbool.h>
#include <stddef.h>

#include "tensor.h"

/* One convolution geometry: conv2d, or conv_transpose2d when transpose;
 * B, channels in and out, image H x W, kernel kh x kw. */
struct cr_combo {
	const char *name;
	bool transpose;
	size_t B, Ci, Co, H, W, kh, kw;
	int s, p, op; /* stride, pad, output padding (transpose only) */
	bool bias;
};

/* The tutorial's (rhvae.md 2.4) and awkward ones: non-square images and
 * kernels, Cin != Cout, stride larger than the kernel, padding as large as
 * the kernel, a remainder (H + 2p - k) % s that differs between H and W
 * (so conv2d's vjp needs different output paddings per axis). */
extern const struct cr_combo cr_combos[];
extern const size_t cr_n_combos;

/* The tutorial's eight layers (rhvae.md 2.4), batch 2, in order: enc
 * conv1..3, res conv3x3, res conv1x1, dec convT1..3; layer i takes ch[i]
 * channels to ch[i + 1] (ch has CR_N_TUTORIAL + 1 entries); the residual
 * convolutions run on res3 x res3 and res1 x res1 images. */
#define CR_N_TUTORIAL 8
void cr_tutorial_layers(struct cr_combo *L, const size_t *ch, size_t res3,
			size_t res1);

/* The output length of c along an axis of input length n, kernel k. */
size_t cr_out_size(const struct cr_combo *c, size_t n, size_t k);

/* c's weight shape: (Co, Ci, kh, kw), transposed (Ci, Co, kh, kw). */
void cr_wshape(const struct cr_combo *c, size_t *ws);

/* y[b][o][h][w] = bias[o] + sum_{c,i,j} x[b][c][h s - p + i][w s - p + j]
 * w[o][c][i][j] (bias may be NULL); mag gets the sum of |terms| per output
 * (for tolerances). x (B, Ci, H, W), w (Co, Ci, kh, kw), y and mag
 * (B, Co, Ho, Wo). */
void cr_conv2d(const double *x, const double *w, const double *bias, size_t B,
	       size_t Ci, size_t H, size_t W, size_t Co, size_t kh, size_t kw,
	       long s, long p, size_t Ho, size_t Wo, double *y, double *mag);

/* Scatter form of the transposed convolution (PyTorch's definition):
 * every input pixel x[b][c][h][w] adds x w[c][o][i][j] to
 * y[b][o][h s - p + i][w s - p + j]; w (Ci, Co, kh, kw); mag as
 * cr_conv2d. */
void cr_conv_transpose2d(const double *x, const double *w,
			 const double *bias, size_t B, size_t Ci, size_t H,
			 size_t W, size_t Co, size_t kh, size_t kw, long s,
			 long p, size_t Ho, size_t Wo, double *y, double *mag);

/* dw[o][c][i][j] = sum_{b,h,w} gy[b][o][h][w] x[b][c][h s - p + i][...]
 * for gy (B, Co, Ho, Wo); mag as cr_conv2d. */
void cr_weight_grad(const double *x, const double *gy, size_t B, size_t Ci,
		    size_t H, size_t W, size_t Co, size_t kh, size_t kw,
		    long s, long p, size_t Ho, size_t Wo, double *dw,
		    double *mag);

/* The op's n values got against the reference (Check asserts): a sum of
 * n_terms products differs from the same sum in another order by at most
 * n_terms * DBL_EPSILON * sum |terms| (standard dot-product bound); a
 * wrong index is off by O(|term|). */
void cr_assert_matches(const char *what, const vb_real *got, size_t n,
		       const double *ref, const double *mag, size_t n_terms);

#endif
