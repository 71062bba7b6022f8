/* convref: the naive convolutions (direct loops in double) and the
 * geometry table the convolution suites check the kernels against. */
#include "convref.h"

#include <check.h>
#include <float.h>
#include <math.h>

const struct cr_combo cr_combos[] = {
	{"conv k4 s2 p1", false, 2, 2, 3, 6, 7, 4, 4, 2, 1, 0, true},
	{"conv k3 s2 p1", false, 2, 3, 2, 5, 6, 3, 3, 2, 1, 0, true},
	{"conv k3 s2 p1 nobias", false, 2, 3, 2, 5, 6, 3, 3, 2, 1, 0, false},
	{"conv k3 s1 p1", false, 2, 3, 2, 4, 5, 3, 3, 1, 1, 0, true},
	{"conv k1 s1 p0", false, 2, 3, 4, 3, 4, 1, 1, 1, 0, 0, true},
	{"conv k2x3 s2 p0", false, 1, 2, 3, 5, 7, 2, 3, 2, 0, 0, true},
	{"conv k2 s3 p1", false, 2, 2, 2, 7, 8, 2, 2, 3, 1, 0, false},
	{"conv k3 s1 p2", false, 1, 2, 3, 3, 4, 3, 3, 1, 2, 0, true},
	{"convT k3 s2 p1 op0", true, 2, 3, 2, 3, 4, 3, 3, 2, 1, 0, true},
	{"convT k3 s2 p1 op1", true, 2, 2, 3, 3, 2, 3, 3, 2, 1, 1, true},
	{"convT k3 s2 p1 op1 nobias", true, 2, 2, 3, 3, 2, 3, 3, 2, 1, 1,
	 false},
	{"convT k4 s2 p1", true, 2, 3, 2, 3, 3, 4, 4, 2, 1, 0, true},
	{"convT k1 s1 p0", true, 2, 3, 4, 3, 4, 1, 1, 1, 0, 0, true},
	{"convT k3 s1 p1", true, 1, 2, 3, 3, 4, 3, 3, 1, 1, 0, true},
	{"convT k2x3 s3 p1 op2", true, 2, 2, 3, 3, 2, 2, 3, 3, 1, 2, false},
};
const size_t cr_n_combos = sizeof cr_combos / sizeof cr_combos[0];

void cr_tutorial_layers(struct cr_combo *L, const size_t *ch, size_t res3,
			size_t res1)
{
	static const struct cr_combo T[CR_N_TUTORIAL] = {
		{"enc conv1", false, 2, 0, 0, 28, 28, 4, 4, 2, 1, 0, true},
		{"enc conv2", false, 2, 0, 0, 14, 14, 4, 4, 2, 1, 0, true},
		{"enc conv3", false, 2, 0, 0, 7, 7, 3, 3, 2, 1, 0, true},
		{"res conv3x3", false, 2, 0, 0, 0, 0, 3, 3, 1, 1, 0, true},
		{"res conv1x1", false, 2, 0, 0, 0, 0, 1, 1, 1, 0, 0, true},
		{"dec convT1", true, 2, 0, 0, 4, 4, 3, 3, 2, 1, 0, true},
		{"dec convT2", true, 2, 0, 0, 7, 7, 3, 3, 2, 1, 1, true},
		{"dec convT3", true, 2, 0, 0, 14, 14, 3, 3, 2, 1, 1, true},
	};
	for (size_t i = 0; i < CR_N_TUTORIAL; i++) {
		L[i] = T[i];
		L[i].Ci = ch[i];
		L[i].Co = ch[i + 1];
	}
	L[3].H = L[3].W = res3;
	L[4].H = L[4].W = res1;
}

size_t cr_out_size(const struct cr_combo *c, size_t n, size_t k)
{
	if (c->transpose)
		return (n - 1) * (size_t)c->s + k + (size_t)c->op -
		       2 * (size_t)c->p;
	return (n + 2 * (size_t)c->p - k) / (size_t)c->s + 1;
}

void cr_wshape(const struct cr_combo *c, size_t *ws)
{
	ws[0] = c->transpose ? c->Ci : c->Co;
	ws[1] = c->transpose ? c->Co : c->Ci;
	ws[2] = c->kh;
	ws[3] = c->kw;
}

/* Row and column oh s - p + i, ow s - p + j: the input pixel kernel tap
 * (i, j) of output (oh, ow) reads (conv), or the output pixel input
 * (oh, ow) reaches (transpose); false when outside n_h x n_w (padding). */
static bool tap(size_t oh, size_t ow, size_t i, size_t j, long s, long p,
		size_t n_h, size_t n_w, size_t *r, size_t *c)
{
	long rr = (long)oh * s - p + (long)i;
	long cc = (long)ow * s - p + (long)j;
	if (rr < 0 || cc < 0 || rr >= (long)n_h || cc >= (long)n_w)
		return false;
	*r = (size_t)rr;
	*c = (size_t)cc;
	return true;
}

void cr_conv2d(const double *x, const double *w, const double *bias, size_t B,
	       size_t Ci, size_t H, size_t W, size_t Co, size_t kh, size_t kw,
	       long s, long p, size_t Ho, size_t Wo, double *y, double *mag)
{
	for (size_t b = 0; b < B; b++)
		for (size_t o = 0; o < Co; o++)
			for (size_t oh = 0; oh < Ho; oh++)
				for (size_t ow = 0; ow < Wo; ow++) {
					double acc = bias ? bias[o] : 0;
					double m = fabs(acc);
					for (size_t c = 0; c < Ci; c++)
						for (size_t i = 0; i < kh; i++)
							for (size_t j = 0; j < kw; j++) {
								size_t ih, iw;
								double t;
								if (!tap(oh, ow, i, j, s, p, H, W, &ih,
									 &iw))
									continue;
								t = x[((b * Ci + c) * H + ih) * W + iw] *
								    w[((o * Ci + c) * kh + i) * kw + j];
								acc += t;
								m += fabs(t);
							}
					size_t k = ((b * Co + o) * Ho + oh) * Wo + ow;
					y[k] = acc;
					mag[k] = m;
				}
}

void cr_conv_transpose2d(const double *x, const double *w,
			 const double *bias, size_t B, size_t Ci, size_t H,
			 size_t W, size_t Co, size_t kh, size_t kw, long s,
			 long p, size_t Ho, size_t Wo, double *y, double *mag)
{
	for (size_t b = 0; b < B; b++)
		for (size_t o = 0; o < Co; o++)
			for (size_t k = 0; k < Ho * Wo; k++) {
				y[(b * Co + o) * Ho * Wo + k] = bias ? bias[o] : 0;
				mag[(b * Co + o) * Ho * Wo + k] =
					bias ? fabs(bias[o]) : 0;
			}
	for (size_t b = 0; b < B; b++)
		for (size_t c = 0; c < Ci; c++)
			for (size_t h = 0; h < H; h++)
				for (size_t ww = 0; ww < W; ww++) {
					double xv = x[((b * Ci + c) * H + h) * W + ww];
					for (size_t o = 0; o < Co; o++)
						for (size_t i = 0; i < kh; i++)
							for (size_t j = 0; j < kw; j++) {
								size_t oh, ow, k;
								double t;
								if (!tap(h, ww, i, j, s, p, Ho, Wo, &oh,
									 &ow))
									continue;
								k = ((b * Co + o) * Ho + oh) * Wo + ow;
								t = xv * w[((c * Co + o) * kh + i) * kw + j];
								y[k] += t;
								mag[k] += fabs(t);
							}
				}
}

void cr_weight_grad(const double *x, const double *gy, size_t B, size_t Ci,
		    size_t H, size_t W, size_t Co, size_t kh, size_t kw,
		    long s, long p, size_t Ho, size_t Wo, double *dw,
		    double *mag)
{
	for (size_t o = 0; o < Co; o++)
		for (size_t c = 0; c < Ci; c++)
			for (size_t i = 0; i < kh; i++)
				for (size_t j = 0; j < kw; j++) {
					double acc = 0, m = 0;
					for (size_t b = 0; b < B; b++)
						for (size_t oh = 0; oh < Ho; oh++)
							for (size_t ow = 0; ow < Wo; ow++) {
								size_t ih, iw;
								double t;
								if (!tap(oh, ow, i, j, s, p, H, W, &ih,
									 &iw))
									continue;
								t = gy[((b * Co + o) * Ho + oh) * Wo + ow] *
								    x[((b * Ci + c) * H + ih) * W + iw];
								acc += t;
								m += fabs(t);
							}
					size_t k = ((o * Ci + c) * kh + i) * kw + j;
					dw[k] = acc;
					mag[k] = m;
				}
}
void cr_assert_matches(const char *what, const vb_real *got, size_t n,
		       const double *ref, const double *mag, size_t n_terms)
{
	for (size_t k = 0; k < n; k++) {
		double tol = (double)(n_terms + 1) * DBL_EPSILON * mag[k];
		ck_assert_msg(fabs((double)got[k] - ref[k]) <= tol,
			      "%s: element %zu: op %.17g, reference %.17g",
			      what, k, (double)got[k], ref[k]);
	}
}
