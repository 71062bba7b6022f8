/* ops_conv: 2-D convolution and transposed convolution on the tape (NCHW,
 * PyTorch semantics and weight layouts), the weight gradient of a
 * convolution as its own differentiable op, and the channel sum/broadcast
 * pair that carries the bias. Two kernel paths, chosen per graph
 * (graph_conv_backend): oneDNN primitives through conv_dnnl.c (float
 * build), or products lowered onto op_gemm through im2col / col2im over
 * chunks of the batch, with scratch from the graph arena that is given
 * back (graph_mark / graph_release) before the op or kernel returns; cblas
 * itself stays in ops.c, dnnl.h in conv_dnnl.c. */
#include "ops.h"
#include "op_impl.h"

#include "conv_dnnl.h"
#include "par.h"

#include <limits.h>
#include <string.h>

/* A convolution seen from its input "image" (B, C, H, W): kernel kh x kw,
 * stride s, zero padding p, and the Ho x Wo output positions. For
 * conv_transpose2d the image is the transposed convolution's output and
 * the positions are its input. A column matrix covers a chunk of nb
 * samples: one row per (c, ki, kj), K = C kh kw rows, and one column per
 * (b, oh, ow), nb P columns with P = Ho Wo. */
struct conv_geom {
	size_t B, C, H, W;
	size_t kh, kw;
	size_t s, p;
	size_t Ho, Wo;
};

/* Column scratch per chunk, in elements: the batch is processed in chunks
 * of whole samples whose column matrix stays near this size (2 MB in
 * float), so that im2col writes and OpenBLAS's packing reads hit the L2
 * cache instead of memory, and the arena holds one chunk per op instead of
 * the whole batch's patches. */
#define CONV_CHUNK_ELEMS ((size_t)1 << 19)

static size_t geom_k(const struct conv_geom *q)
{
	return q->C * q->kh * q->kw;
}

static size_t geom_p(const struct conv_geom *q)
{
	return q->Ho * q->Wo;
}

/* Samples per chunk: at least 1, at most B. */
static size_t chunk_samples(const struct conv_geom *q)
{
	size_t per = geom_k(q) * geom_p(q);
	size_t nb = per > 0 ? CONV_CHUNK_ELEMS / per : q->B;
	if (nb < 1)
		nb = 1;
	return nb < q->B ? nb : q->B;
}

/* Output positions o in [lo, hi) of [0, n_out) whose input index
 * o s + k - p falls inside [0, n_in). */
static void valid_range(size_t n_in, size_t n_out, size_t s, size_t p,
			size_t k, size_t *lo, size_t *hi)
{
	size_t a = k >= p ? 0 : (p - k + s - 1) / s;
	size_t b = n_in + p > k ? (n_in + p - k + s - 1) / s : 0;
	if (b > n_out)
		b = n_out;
	if (a > b)
		a = b;
	*lo = a;
	*hi = b;
}

/* tab (kh kw, P): for kernel tap (ki, kj) and output position (oh, ow),
 * the index in an image plane of the pixel it reads, or -1 in the
 * padding. Planes are at most INT_MAX elements (checked by the ops). */
static int *im2col_table(struct graph *g, const struct conv_geom *q)
{
	size_t P = geom_p(q), bytes;
	int *tab;
	if (!vb_mul_size(q->kh * q->kw, P, &bytes) ||
	    !vb_mul_size(bytes, sizeof *tab, &bytes)) {
		graph_failf(g, VB_ERR_NOMEM, "ops: convolution index table "
			    "overflows");
		return NULL;
	}
	tab = graph_alloc(g, bytes);
	if (!tab)
		return NULL;
	for (size_t ki = 0; ki < q->kh; ki++)
		for (size_t kj = 0; kj < q->kw; kj++) {
			int *t = tab + (ki * q->kw + kj) * P;
			size_t h0, h1, w0, w1;
			valid_range(q->H, q->Ho, q->s, q->p, ki, &h0, &h1);
			valid_range(q->W, q->Wo, q->s, q->p, kj, &w0, &w1);
			for (size_t oh = 0; oh < q->Ho; oh++)
				for (size_t ow = 0; ow < q->Wo; ow++)
					t[oh * q->Wo + ow] =
						oh >= h0 && oh < h1 && ow >= w0 &&
								ow < w1
							? (int)((oh * q->s + ki -
								 q->p) * q->W +
								ow * q->s + kj - q->p)
							: -1;
		}
	return tab;
}

/* col (K, nb P) = the patches of samples [b0, b0 + nb) of img
 * (B, C, H, W), zeros in the padding; tab from im2col_table. One gather
 * over whole planes per (c, tap, sample) vectorises where per-row copies
 * of 4- to 14-pixel rows would not. */
static void im2col(const struct conv_geom *q, const int *tab,
		   const vb_real *img, size_t b0, size_t nb, vb_real *col)
{
	size_t P = geom_p(q), N = nb * P, HW = q->H * q->W;
	size_t taps = q->kh * q->kw;
	/* channels write disjoint rows of col */
	PAR_FOR(q->C * taps * N)
	for (size_t c = 0; c < q->C; c++)
		for (size_t k = 0; k < taps; k++) {
			const int *t = tab + k * P;
			vb_real *row = col + (c * taps + k) * N;
			for (size_t b = 0; b < nb; b++) {
				const vb_real *src =
					img + ((b0 + b) * q->C + c) * HW;
				vb_real *dst = row + b * P;
				/* read pixel 0 for padding taps and drop it:
				 * an unconditional gather plus a blend */
				for (size_t i = 0; i < P; i++) {
					int j = t[i] >= 0 ? t[i] : 0;
					vb_real v = src[j];
					dst[i] = t[i] >= 0 ? v : 0;
				}
			}
		}
}

/* One (sample, channel) plane dst += the taps of channel c of col, whose
 * rows (stride N) start at this sample's block. */
static void col2im_plane(const struct conv_geom *q, const vb_real *col,
			 size_t N, size_t c, vb_real *dst)
{
	for (size_t ki = 0; ki < q->kh; ki++) {
		size_t h0, h1;
		valid_range(q->H, q->Ho, q->s, q->p, ki, &h0, &h1);
		for (size_t kj = 0; kj < q->kw; kj++) {
			size_t w0, w1;
			const vb_real *src =
				col + ((c * q->kh + ki) * q->kw + kj) * N;
			valid_range(q->W, q->Wo, q->s, q->p, kj, &w0, &w1);
			for (size_t oh = h0; oh < h1; oh++) {
				vb_real *dr = dst +
					      (oh * q->s + ki - q->p) * q->W +
					      kj - q->p;
				const vb_real *sr = src + oh * q->Wo;
				for (size_t ow = w0; ow < w1; ow++)
					dr[ow * q->s] += sr[ow];
			}
		}
	}
}

/* Samples [b0, b0 + nb) of img (B, C, H, W) += the patches of col
 * (K, nb P) folded back (adjoint of im2col; accumulates). Samples in
 * parallel: each pixel still gets its taps in (ki, kj) order, so the
 * sums are the same at any thread count. */
static void col2im_add(const struct conv_geom *q, const vb_real *col,
		       size_t b0, size_t nb, vb_real *img)
{
	size_t P = geom_p(q), N = nb * P, HW = q->H * q->W;
	PAR_FOR(nb * q->C * HW)
	for (size_t b = 0; b < nb; b++)
		for (size_t c = 0; c < q->C; c++)
			col2im_plane(q, col + b * P, N, c,
				     img + ((b0 + b) * q->C + c) * HW);
}

/* Samples [b0, b0 + nb) of src (B, C, P) -> dst (C, nb P): each sample's
 * channel plane becomes a block of that channel's row. */
static void to_cbp(const vb_real *src, size_t b0, size_t nb, size_t C,
		   size_t P, vb_real *dst)
{
	PAR_FOR(nb * C * P)
	for (size_t b = 0; b < nb; b++)
		for (size_t c = 0; c < C; c++)
			memcpy(dst + (c * nb + b) * P,
			       src + ((b0 + b) * C + c) * P, P * sizeof *dst);
}

/* Samples [b0, b0 + nb) of dst (B, C, P) = src (C, nb P) transposed back,
 * plus bias[c] if bias. */
static void from_cbp_set(const vb_real *src, const vb_real *bias, size_t b0,
			 size_t nb, size_t C, size_t P, vb_real *dst)
{
	PAR_FOR(nb * C * P)
	for (size_t b = 0; b < nb; b++)
		for (size_t c = 0; c < C; c++) {
			const vb_real *s = src + (c * nb + b) * P;
			vb_real *d = dst + ((b0 + b) * C + c) * P;
			if (!bias) {
				memcpy(d, s, P * sizeof *d);
				continue;
			}
			for (size_t i = 0; i < P; i++)
				d[i] = s[i] + bias[c];
		}
}

/* Samples [b0, b0 + nb) of dst (B, C, P) += src (C, nb P) transposed back
 * (accumulates). */
static void from_cbp_add(const vb_real *src, size_t b0, size_t nb, size_t C,
			 size_t P, vb_real *dst)
{
	PAR_FOR(nb * C * P)
	for (size_t b = 0; b < nb; b++)
		for (size_t c = 0; c < C; c++) {
			const vb_real *s = src + (c * nb + b) * P;
			vb_real *d = dst + ((b0 + b) * C + c) * P;
			for (size_t i = 0; i < P; i++)
				d[i] += s[i];
		}
}

/* Elements per (sample, channel) plane of a (B, C, ...) tensor. */
static size_t plane(const struct tensor *t)
{
	size_t bc = t->shape[0] * t->shape[1];
	return bc > 0 ? t->n / bc : 0;
}

/* out[c] += sum over b and p of a (B, C, P), accumulated in double, in
 * the order (b, p) in either layout, so that both give the same bits; one
 * thread per channel (plain) or per block of TENSOR_BLK channels summed
 * side by side (blocked: each read is a whole block's row). */
static void channel_sums_add(const struct tensor *a, vb_real *out)
{
	size_t B = a->shape[0], C = a->shape[1], P = plane(a);
	const vb_real *x = a->data;
	if (a->layout == TENSOR_LAYOUT_BLK16) {
		PAR_FOR(a->n)
		for (size_t cb = 0; cb < C; cb += TENSOR_BLK) {
			double acc[TENSOR_BLK] = {0};
			for (size_t b = 0; b < B; b++) {
				const vb_real *r = x + b * C * P + cb * P;
				for (size_t i = 0; i < P; i++)
					for (size_t j = 0; j < TENSOR_BLK; j++)
						acc[j] += r[i * TENSOR_BLK + j];
			}
			for (size_t j = 0; j < TENSOR_BLK; j++)
				out[cb + j] += (vb_real)acc[j];
		}
		return;
	}
	PAR_FOR(a->n)
	for (size_t c = 0; c < C; c++) {
		double acc = 0;
		for (size_t b = 0; b < B; b++) {
			const vb_real *r = x + (b * C + c) * P;
			for (size_t i = 0; i < P; i++)
				acc += r[i];
		}
		out[c] += (vb_real)acc;
	}
}

static struct graph_node *conv_fail(struct graph *g, const char *op,
				    const char *name,
				    const struct graph_node *a,
				    const struct graph_node *b, long stride,
				    long pad, const char *why)
{
	char sa[64], sb[64];
	return graph_failf(g, VB_ERR_SHAPE, "ops: %s %s: shapes %s and %s "
			   "with stride %ld, pad %ld do not fit: %s", op, name,
			   op_impl_shp(a, sa, sizeof sa),
			   b ? op_impl_shp(b, sb, sizeof sb) : "-",
			   stride, pad, why);
}

static struct graph_node *channels_fail(struct graph *g, const char *op,
					const char *name,
					const struct graph_node *a,
					const char *why)
{
	char sa[64];
	return graph_failf(g, VB_ERR_SHAPE, "ops: %s %s: shape %s does not "
			   "fit: %s", op, name,
			   op_impl_shp(a, sa, sizeof sa), why);
}

/* Output size of a convolution along one axis, 0 when the padded input is
 * shorter than the kernel. */
static size_t conv_out(size_t n, size_t k, size_t s, size_t p)
{
	return n + 2 * p < k ? 0 : (n + 2 * p - k) / s + 1;
}

/* Fits in an int: kernel sizes (the ops' int attributes) and image planes
 * (the int index tables of im2col) must never wrap. */
static bool small(size_t v)
{
	return v <= (size_t)INT_MAX;
}

static bool plane_small(size_t h, size_t w)
{
	size_t hw;
	return vb_mul_size(h, w, &hw) && small(hw);
}

/* ------------------------------------------------------------------ */
/* The oneDNN path. Every op and kernel below maps onto three oneDNN
 * convolution kinds of one geometry q (q's image is the convolution's
 * source, its Ho x Wo the destination, c_dst destination channels):
 * forward, backward-data and backward-weights. A transposed convolution's
 * forward is the backward-data of the convolution whose source is its
 * output, so its weights need no transposing and oneDNN's slow
 * deconvolution forward for 64 -> 1 channels is never used. */
enum dnnl_call { CALL_FWD, CALL_BWD_DATA, CALL_BWD_WEIGHTS };

/* Whether the graph runs call on oneDNN: its backend is DNNL and the
 * shape is not one where the im2col path measured faster. A fixed rule,
 * not a timing at start-up, so that a run's arithmetic never depends on
 * the machine's load. Measured (bench_conv, DNNL_VERBOSE, oneDNN 2.6, one
 * thread, batch 64): backward-data onto one source channel (the decoder's
 * last transposed convolution 64 -> 1, 3x3 stride 2, 14 -> 28) runs
 * jit:avx512_core at 6 GFLOP/s (2.6 ms per call); its im2col form is one
 * sgemm (9 x 12544 x 64) and a col2im. */
static bool dnnl_for(const struct graph *g, enum dnnl_call call,
		     const struct conv_geom *q)
{
	if (graph_conv_backend(g) != GRAPH_CONV_BACKEND_DNNL)
		return false;
	return !(call == CALL_BWD_DATA && q->C == 1);
}

/* Runs call on the graph's oneDNN cache: CALL_FWD out = conv(a, b) + bias,
 * CALL_BWD_DATA out = input gradient at a with weights b, CALL_BWD_WEIGHTS
 * out = weight gradient of source a at output gradient b (and d_bias the
 * bias gradient when not NULL); accumulate adds instead of writing. Each
 * tensor is read or written in its own layout: a blocked one the
 * primitive keeps in aBcd16b is handed over as it is, any other is read
 * through a plain copy in arena scratch (inputs) or made plain in place
 * (out). fresh: out is a new node value whose layout this call sets
 * (blocked when graph_blocked and the primitive writes aBcd16b). False
 * with the sticky error set on failure. */
static bool dnnl_run(struct graph *g, enum dnnl_call call,
		     const struct conv_geom *q, size_t c_dst,
		     const struct tensor *a, const struct tensor *b,
		     const vb_real *bias, struct tensor *out, vb_real *d_bias,
		     bool accumulate, bool fresh)
{
#ifndef VB_DOUBLE
	static const enum conv_dnnl_call CALL[] = {
		CONV_DNNL_FWD, CONV_DNNL_BWD_DATA, CONV_DNNL_BWD_WEIGHTS};
	struct conv_dnnl *c = graph_conv_dnnl(g);
	struct conv_dnnl_shape s = {q->B,  q->C,  q->H,  q->W,
				    c_dst, q->Ho, q->Wo, q->kh,
				    q->kw, q->s,  q->p};
	struct vb_error e = {0};
	vb_real *bv = call == CALL_BWD_WEIGHTS ? d_bias : (vb_real *)bias;
	const vb_real *pa = a->data, *pb = b->data;
	unsigned can = 0, blk = 0;
	struct graph_mark mk;
	enum vb_status st;
	if (!c)
		return false;
	st = conv_dnnl_blocked(c, CALL[call], &s, bv != NULL, accumulate,
			       &can, &e);
	if (st != VB_OK) {
		graph_failf(g, st, "ops: %s", e.msg);
		return false;
	}
	if (fresh && graph_blocked(g) && (can & CONV_DNNL_BLK_OUT))
		out->layout = TENSOR_LAYOUT_BLK16;
	if (out->layout == TENSOR_LAYOUT_BLK16 && !(can & CONV_DNNL_BLK_OUT))
		graph_to_plain(g, out);
	mk = graph_mark(g);
	if (a->layout == TENSOR_LAYOUT_BLK16 && (can & CONV_DNNL_BLK_IN0))
		blk |= CONV_DNNL_BLK_IN0;
	else
		pa = graph_in_layout(g, a, TENSOR_LAYOUT_PLAIN);
	if (b->layout == TENSOR_LAYOUT_BLK16 && (can & CONV_DNNL_BLK_IN1))
		blk |= CONV_DNNL_BLK_IN1;
	else if (pa)
		pb = graph_in_layout(g, b, TENSOR_LAYOUT_PLAIN);
	if (out->layout == TENSOR_LAYOUT_BLK16)
		blk |= CONV_DNNL_BLK_OUT;
	if (!pa || !pb)
		return false;
	st = conv_dnnl_run(c, CALL[call], &s, pa, pb, bv, out->data,
			   accumulate, blk, &e);
	graph_release(g, mk);
	if (st != VB_OK)
		graph_failf(g, st, "ops: %s", e.msg);
	return st == VB_OK;
#else
	(void)call, (void)q, (void)c_dst, (void)a, (void)b, (void)bias;
	(void)out, (void)d_bias, (void)accumulate, (void)fresh;
	graph_failf(g, VB_ERR_INTERNAL, "ops: oneDNN convolution in the "
		    "double build");
	return false;
#endif
}

/* Whether input i of n gets a new gradient buffer at its first
 * graph_input_grad (asked before it): zeros nothing else has added to,
 * which a oneDNN kernel may then write instead of adding into (its
 * reorder back to the plain layout need not read them). A parameter's
 * buffer is its gradient slice, which accumulates; an input read twice
 * by n is not fresh for the second read. */
static bool grad_fresh(const struct graph_node *n, int i)
{
	const struct graph_node *in = n->in[i];
	for (int j = 0; j < n->n_in; j++)
		if (j != i && n->in[j] == in)
			return false;
	return in->active && !in->grad.data && in->kind != GRAPH_NODE_PARAM;
}

/* y (B, C, P) += bias[c] on every element of channel c (either
 * layout). */
static void add_channel_bias(struct tensor *y, const vb_real *bias)
{
	size_t B = y->shape[0], C = y->shape[1], P = plane(y);
	if (y->layout == TENSOR_LAYOUT_BLK16) {
		for (size_t b = 0; b < B; b++)
			for (size_t cb = 0; cb < C; cb += TENSOR_BLK) {
				vb_real *d = y->data + b * C * P + cb * P;
				for (size_t i = 0; i < P; i++)
					for (size_t j = 0; j < TENSOR_BLK; j++)
						d[i * TENSOR_BLK + j] +=
							bias[cb + j];
			}
		return;
	}
	for (size_t b = 0; b < B; b++)
		for (size_t c = 0; c < C; c++) {
			vb_real *d = y->data + (b * C + c) * P;
			for (size_t i = 0; i < P; i++)
				d[i] += bias[c];
		}
}

/* ------------------------------------------------------------------ */
/* conv2d: y (B, Cout, Ho, Wo) = w (Cout, Cin, kh, kw) * x (B, Cin, H, W)
 * + b; i[0] stride, i[1] pad. Per chunk of nb samples, with N = nb P:
 * Y (Cout, N) = w (Cout, K) im2col(x) (K, N). */

static struct graph_node *conv_transpose_node(struct graph *g,
					      const char *name,
					      struct graph_node *x,
					      struct graph_node *w,
					      struct graph_node *b, size_t s,
					      size_t p, size_t op_h,
					      size_t op_w);

static struct conv_geom conv2d_geom(const struct graph_node *n)
{
	const struct tensor *x = &n->in[0]->value, *w = &n->in[1]->value;
	struct conv_geom q = {x->shape[0], x->shape[1], x->shape[2],
			      x->shape[3], w->shape[2], w->shape[3],
			      (size_t)n->i[0], (size_t)n->i[1],
			      n->value.shape[2], n->value.shape[3]};
	return q;
}

/* Fused backward (accumulates), per chunk with dY = n->grad as (Cout, N):
 * dw += dY im2col(x)^T, dx += col2im(w^T dY); db += channel sums of dY. */
static void conv2d_backward(struct graph *g, struct graph_node *n)
{
	bool fresh_x = grad_fresh(n, 0);
	struct tensor *gx = graph_input_grad(g, n, 0);
	struct tensor *gw = graph_input_grad(g, n, 1);
	struct tensor *gb = n->n_in > 2 ? graph_input_grad(g, n, 2) : NULL;
	struct conv_geom q = conv2d_geom(n);
	size_t K = geom_k(&q), P = geom_p(&q), Cout = n->value.shape[1];
	size_t nb = chunk_samples(&q);
	const vb_real *w = n->in[1]->value.data, *gy, *x;
	vb_real *dy, *col;
	int *tab = NULL;
	struct graph_mark mk;
	if (gw && dnnl_for(g, CALL_BWD_WEIGHTS, &q)) {
		if (!dnnl_run(g, CALL_BWD_WEIGHTS, &q, Cout, &n->in[0]->value,
			      &n->grad, NULL, gw, gb ? gb->data : NULL, true,
			      false))
			return;
		gw = NULL;
		gb = NULL; /* oneDNN's diff_bias did it */
	}
	if (gx && dnnl_for(g, CALL_BWD_DATA, &q)) {
		if (!dnnl_run(g, CALL_BWD_DATA, &q, Cout, &n->grad,
			      &n->in[1]->value, NULL, gx, NULL, !fresh_x,
			      false))
			return;
		gx = NULL;
	}
	if (gb)
		channel_sums_add(&n->grad, gb->data);
	if (!gx && !gw)
		return;
	if (gx)
		graph_to_plain(g, gx);
	mk = graph_mark(g); /* after the input gradients were made */
	/* the im2col kernels read plain arrays */
	gy = graph_in_layout(g, &n->grad, TENSOR_LAYOUT_PLAIN);
	x = gy ? graph_in_layout(g, &n->in[0]->value, TENSOR_LAYOUT_PLAIN)
	       : NULL;
	dy = x ? op_impl_scratch(g, "ops", Cout, nb * P, sizeof(vb_real))
	       : NULL;
	col = dy ? op_impl_scratch(g, "ops", K, nb * P, sizeof(vb_real)) : NULL;
	if (col && gw)
		tab = im2col_table(g, &q);
	if (!col || (gw && !tab))
		return;
	for (size_t b0 = 0; b0 < q.B; b0 += nb) {
		size_t m = q.B - b0 < nb ? q.B - b0 : nb, N = m * P;
		to_cbp(gy, b0, m, Cout, P, dy);
		if (gw) { /* dw (Cout, K) += dY (Cout, N) col^T (N, K) */
			im2col(&q, tab, x, b0, m, col);
			op_gemm(false, true, Cout, K, N, 1, dy, N, col, N, 1,
				gw->data, K);
		}
		if (gx) { /* dcol (K, N) = w^T (K, Cout) dY (Cout, N) */
			op_gemm(true, false, K, N, Cout, 1, w, K, dy, N, 0,
				col, N);
			col2im_add(&q, col, b0, m, gx->data);
		}
	}
	graph_release(g, mk);
}

static void conv2d_vjp(struct graph *g, struct graph_node *n,
		       struct graph_node *G, struct graph_node **gin)
{
	struct conv_geom q = conv2d_geom(n);
	if (graph_input_active(n, 0)) /* output padding restores H, W */
		gin[0] = conv_transpose_node(g, "grad.conv2d.x", G, n->in[1],
					     NULL, q.s, q.p,
					     (q.H + 2 * q.p - q.kh) % q.s,
					     (q.W + 2 * q.p - q.kw) % q.s);
	if (graph_input_active(n, 1))
		gin[1] = op_conv2d_weight_grad(g, "grad.conv2d.w", n->in[0], G,
					       (int)q.kh, (int)q.kw,
					       (int)q.s, (int)q.p);
	if (n->n_in > 2 && graph_input_active(n, 2))
		gin[2] = op_sum_channels(g, "grad.conv2d.b", G);
}

static const struct graph_op OP_CONV2D = {"conv2d", conv2d_backward,
					  conv2d_vjp};

struct graph_node *op_conv2d(struct graph *g, const char *name,
			     struct graph_node *x, struct graph_node *w,
			     struct graph_node *b, int stride, int pad)
{
	struct graph_node *in[3] = {x, w, b}, *n;
	struct conv_geom q;
	size_t shape[4], K, P, nb, Cout;
	const vb_real *xp;
	vb_real *col, *tmp;
	int *tab;
	struct graph_mark mk;
	if (!x || !w)
		return NULL;
	if (x->value.ndim != 4 || w->value.ndim != 4)
		return conv_fail(g, "conv2d", name, x, w, stride, pad,
				 "expected x (B, Cin, H, W) and w (Cout, Cin, "
				 "kh, kw)");
	if (stride < 1 || pad < 0)
		return conv_fail(g, "conv2d", name, x, w, stride, pad,
				 "expected stride >= 1 and pad >= 0");
	if (w->value.shape[1] != x->value.shape[1])
		return conv_fail(g, "conv2d", name, x, w, stride, pad,
				 "input channels differ");
	Cout = w->value.shape[0];
	if (b && (b->value.n != Cout || b->value.ndim != 1))
		return conv_fail(g, "conv2d", name, w, b, stride, pad,
				 "bias must be (Cout)");
	q.B = x->value.shape[0];
	q.C = x->value.shape[1];
	q.H = x->value.shape[2];
	q.W = x->value.shape[3];
	q.kh = w->value.shape[2];
	q.kw = w->value.shape[3];
	q.s = (size_t)stride;
	q.p = (size_t)pad;
	q.Ho = conv_out(q.H, q.kh, q.s, q.p);
	q.Wo = conv_out(q.W, q.kw, q.s, q.p);
	if (q.kh == 0 || q.kw == 0 || !small(q.kh) || !small(q.kw))
		return conv_fail(g, "conv2d", name, x, w, stride, pad,
				 "empty or oversized kernel");
	if (q.Ho == 0 || q.Wo == 0)
		return conv_fail(g, "conv2d", name, x, w, stride, pad,
				 "kernel larger than the padded input");
	if (!plane_small(q.H, q.W))
		return conv_fail(g, "conv2d", name, x, w, stride, pad,
				 "image plane over INT_MAX pixels");
	shape[0] = q.B;
	shape[1] = Cout;
	shape[2] = q.Ho;
	shape[3] = q.Wo;
	n = graph_op_node_layout(g, &OP_CONV2D, GRAPH_LAYOUT_OWN, name, in,
				 b ? 3 : 2, 4, shape);
	if (!n)
		return NULL;
	n->i[0] = stride;
	n->i[1] = pad;
	if (dnnl_for(g, CALL_FWD, &q))
		return dnnl_run(g, CALL_FWD, &q, Cout, &x->value, &w->value,
				b ? b->value.data : NULL, &n->value, NULL,
				false, true)
			       ? graph_node_done(g, n)
			       : NULL;
	K = geom_k(&q);
	P = geom_p(&q);
	nb = chunk_samples(&q);
	mk = graph_mark(g);
	xp = graph_in_layout(g, &x->value, TENSOR_LAYOUT_PLAIN);
	col = xp ? op_impl_scratch(g, "ops", K, nb * P, sizeof(vb_real))
		 : NULL;
	tmp = col ? op_impl_scratch(g, "ops", Cout, nb * P,
				    sizeof(vb_real)) : NULL;
	tab = tmp ? im2col_table(g, &q) : NULL;
	if (!tab)
		return NULL;
	for (size_t b0 = 0; b0 < q.B; b0 += nb) {
		size_t m = q.B - b0 < nb ? q.B - b0 : nb, N = m * P;
		im2col(&q, tab, xp, b0, m, col);
		/* Y (Cout, N) = w (Cout, K) col (K, N), to NCHW + bias */
		op_gemm(false, false, Cout, N, K, 1, w->value.data, K, col, N,
			0, tmp, N);
		from_cbp_set(tmp, b ? b->value.data : NULL, b0, m, Cout, P,
			     n->value.data);
	}
	graph_release(g, mk);
	return graph_node_done(g, n);
}

/* ------------------------------------------------------------------ */
/* conv_transpose2d: y (B, Cout, Ho, Wo) from x (B, Cin, H, W) and
 * w (Cin, Cout, kh, kw): the input gradient of a conv2d whose output is x.
 * i[0] stride, i[1] pad, i[2] / i[3] output padding along H / W. Per
 * chunk: col (K, N) = w^T (K, Cin) x (Cin, N), folded by col2im. */

static struct conv_geom convt_geom(const struct graph_node *n)
{
	const struct tensor *x = &n->in[0]->value, *w = &n->in[1]->value;
	struct conv_geom q = {x->shape[0], w->shape[1], n->value.shape[2],
			      n->value.shape[3], w->shape[2], w->shape[3],
			      (size_t)n->i[0], (size_t)n->i[1],
			      x->shape[2], x->shape[3]};
	return q;
}

/* Fused backward (accumulates), per chunk with colG = im2col(dY) (K, N):
 * dw += x (Cin, N) colG^T, dx += w (Cin, K) colG; db += channel sums. */
static void convt_backward(struct graph *g, struct graph_node *n)
{
	bool fresh_x = grad_fresh(n, 0);
	struct tensor *gx = graph_input_grad(g, n, 0);
	struct tensor *gw = graph_input_grad(g, n, 1);
	struct tensor *gb = n->n_in > 2 ? graph_input_grad(g, n, 2) : NULL;
	struct conv_geom q = convt_geom(n);
	size_t K = geom_k(&q), P = geom_p(&q), Cin = n->in[0]->value.shape[1];
	size_t nb = chunk_samples(&q);
	vb_real *colg, *xc;
	int *tab;
	struct graph_mark mk;
	const vb_real *gy, *x;
	if (gb)
		channel_sums_add(&n->grad, gb->data);
	/* the convolution's source is this op's output gradient, its
	 * destination this op's input */
	if (gw && dnnl_for(g, CALL_BWD_WEIGHTS, &q)) {
		if (!dnnl_run(g, CALL_BWD_WEIGHTS, &q, Cin, &n->grad,
			      &n->in[0]->value, NULL, gw, NULL, true, false))
			return;
		gw = NULL;
	}
	if (gx && dnnl_for(g, CALL_FWD, &q)) {
		if (!dnnl_run(g, CALL_FWD, &q, Cin, &n->grad,
			      &n->in[1]->value, NULL, gx, NULL, !fresh_x,
			      false))
			return;
		gx = NULL;
	}
	if (!gx && !gw)
		return;
	if (gx)
		graph_to_plain(g, gx);
	mk = graph_mark(g);
	gy = graph_in_layout(g, &n->grad, TENSOR_LAYOUT_PLAIN);
	x = gy ? graph_in_layout(g, &n->in[0]->value, TENSOR_LAYOUT_PLAIN)
	       : NULL;
	colg = x ? op_impl_scratch(g, "ops", K, nb * P, sizeof(vb_real))
		 : NULL;
	xc = colg ? op_impl_scratch(g, "ops", Cin, nb * P,
				    sizeof(vb_real)) : NULL;
	tab = xc ? im2col_table(g, &q) : NULL;
	if (!tab)
		return;
	for (size_t b0 = 0; b0 < q.B; b0 += nb) {
		size_t m = q.B - b0 < nb ? q.B - b0 : nb, N = m * P;
		im2col(&q, tab, gy, b0, m, colg);
		if (gw) { /* dw (Cin, K) += x (Cin, N) colG^T (N, K) */
			to_cbp(x, b0, m, Cin, P, xc);
			op_gemm(false, true, Cin, K, N, 1, xc, N, colg, N, 1,
				gw->data, K);
		}
		if (gx) { /* dx (Cin, N) = w (Cin, K) colG (K, N) */
			op_gemm(false, false, Cin, N, K, 1,
				n->in[1]->value.data, K, colg, N, 0, xc, N);
			from_cbp_add(xc, b0, m, Cin, P, gx->data);
		}
	}
	graph_release(g, mk);
}

static void convt_vjp(struct graph *g, struct graph_node *n,
		      struct graph_node *G, struct graph_node **gin)
{
	struct conv_geom q = convt_geom(n);
	if (graph_input_active(n, 0))
		gin[0] = op_conv2d(g, "grad.conv_transpose2d.x", G, n->in[1],
				   NULL, (int)q.s, (int)q.p);
	if (graph_input_active(n, 1)) /* roles of image and output swap */
		gin[1] = op_conv2d_weight_grad(g, "grad.conv_transpose2d.w", G,
					       n->in[0], (int)q.kh, (int)q.kw,
					       (int)q.s, (int)q.p);
	if (n->n_in > 2 && graph_input_active(n, 2))
		gin[2] = op_sum_channels(g, "grad.conv_transpose2d.b", G);
}

static const struct graph_op OP_CONVT = {"conv_transpose2d", convt_backward,
					 convt_vjp};

/* Shapes already validated; op_h, op_w < s. */
static struct graph_node *conv_transpose_node(struct graph *g,
					      const char *name,
					      struct graph_node *x,
					      struct graph_node *w,
					      struct graph_node *b, size_t s,
					      size_t p, size_t op_h,
					      size_t op_w)
{
	struct graph_node *in[3] = {x, w, b}, *n;
	struct conv_geom q;
	size_t shape[4], K, P, nb, Cin;
	const vb_real *xp;
	vb_real *xc, *col;
	struct graph_mark mk;
	if (!x || !w)
		return NULL;
	Cin = x->value.shape[1];
	q.B = x->value.shape[0];
	q.C = w->value.shape[1];
	q.kh = w->value.shape[2];
	q.kw = w->value.shape[3];
	q.s = s;
	q.p = p;
	q.Ho = x->value.shape[2];
	q.Wo = x->value.shape[3];
	/* H = (Ho - 1) s - 2 p + kh + op, computed without wrapping */
	if ((q.Ho - 1) * s + q.kh + op_h <= 2 * p ||
	    (q.Wo - 1) * s + q.kw + op_w <= 2 * p)
		return conv_fail(g, "conv_transpose2d", name, x, w, (long)s,
				 (long)p, "output would be empty");
	q.H = (q.Ho - 1) * s + q.kh + op_h - 2 * p;
	q.W = (q.Wo - 1) * s + q.kw + op_w - 2 * p;
	if (!plane_small(q.H, q.W))
		return conv_fail(g, "conv_transpose2d", name, x, w, (long)s,
				 (long)p, "output plane over INT_MAX pixels");
	shape[0] = q.B;
	shape[1] = q.C;
	shape[2] = q.H;
	shape[3] = q.W;
	n = graph_op_node_layout(g, &OP_CONVT, GRAPH_LAYOUT_OWN, name, in,
				 b ? 3 : 2, 4, shape);
	if (!n)
		return NULL;
	n->i[0] = (long)s;
	n->i[1] = (long)p;
	n->i[2] = (long)op_h;
	n->i[3] = (long)op_w;
	if (dnnl_for(g, CALL_BWD_DATA, &q)) {
		if (!dnnl_run(g, CALL_BWD_DATA, &q, Cin, &x->value, &w->value,
			      NULL, &n->value, NULL, false, true))
			return NULL;
		if (b)
			add_channel_bias(&n->value, b->value.data);
		return graph_node_done(g, n);
	}
	K = geom_k(&q);
	P = geom_p(&q);
	nb = chunk_samples(&q);
	mk = graph_mark(g);
	xp = graph_in_layout(g, &x->value, TENSOR_LAYOUT_PLAIN);
	xc = xp ? op_impl_scratch(g, "ops", Cin, nb * P, sizeof(vb_real))
		: NULL;
	col = xc ? op_impl_scratch(g, "ops", K, nb * P, sizeof(vb_real)) : NULL;
	if (!col)
		return NULL;
	if (b) {
		PAR_FOR(n->value.n)
		for (size_t bb = 0; bb < q.B; bb++)
			for (size_t c = 0; c < q.C; c++) {
				vb_real *d = n->value.data +
					     (bb * q.C + c) * q.H * q.W;
				for (size_t i = 0; i < q.H * q.W; i++)
					d[i] = b->value.data[c];
			}
	} else {
		memset(n->value.data, 0, n->value.n * sizeof(vb_real));
	}
	for (size_t b0 = 0; b0 < q.B; b0 += nb) {
		size_t m = q.B - b0 < nb ? q.B - b0 : nb, N = m * P;
		to_cbp(xp, b0, m, Cin, P, xc);
		/* col (K, N) = w^T (K, Cin) x (Cin, N), folded onto y */
		op_gemm(true, false, K, N, Cin, 1, w->value.data, K, xc, N, 0,
			col, N);
		col2im_add(&q, col, b0, m, n->value.data);
	}
	graph_release(g, mk);
	return graph_node_done(g, n);
}

struct graph_node *op_conv_transpose2d(struct graph *g, const char *name,
				       struct graph_node *x,
				       struct graph_node *w,
				       struct graph_node *b, int stride,
				       int pad, int output_padding)
{
	if (!x || !w)
		return NULL;
	if (x->value.ndim != 4 || w->value.ndim != 4)
		return conv_fail(g, "conv_transpose2d", name, x, w, stride,
				 pad, "expected x (B, Cin, H, W) and w (Cin, "
				 "Cout, kh, kw)");
	if (stride < 1 || pad < 0 || output_padding < 0 ||
	    output_padding >= stride)
		return conv_fail(g, "conv_transpose2d", name, x, w, stride,
				 pad, "expected stride >= 1, pad >= 0 and 0 <= "
				 "output_padding < stride");
	if (w->value.shape[0] != x->value.shape[1])
		return conv_fail(g, "conv_transpose2d", name, x, w, stride,
				 pad, "input channels differ");
	if (w->value.shape[2] == 0 || w->value.shape[3] == 0 ||
	    !small(w->value.shape[2]) || !small(w->value.shape[3]) ||
	    x->value.shape[2] == 0 || x->value.shape[3] == 0)
		return conv_fail(g, "conv_transpose2d", name, x, w, stride,
				 pad, "empty input or kernel, or oversized "
				 "kernel");
	if (b && (b->value.n != w->value.shape[1] || b->value.ndim != 1))
		return conv_fail(g, "conv_transpose2d", name, w, b, stride,
				 pad, "bias must be (Cout)");
	return conv_transpose_node(g, name, x, w, b, (size_t)stride,
				   (size_t)pad, (size_t)output_padding,
				   (size_t)output_padding);
}

/* ------------------------------------------------------------------ */
/* conv2d_weight_grad: dw (Cout, Cin, kh, kw) = sum over chunks of
 * gy (Cout, N) im2col(x)^T (N, K), bilinear in x (B, Cin, H, W) and
 * gy (B, Cout, Ho, Wo). i[0] stride, i[1] pad, i[2] kh, i[3] kw. */

static struct conv_geom wgrad_geom(const struct graph_node *n)
{
	const struct tensor *x = &n->in[0]->value, *gy = &n->in[1]->value;
	struct conv_geom q = {x->shape[0], x->shape[1], x->shape[2],
			      x->shape[3], (size_t)n->i[2], (size_t)n->i[3],
			      (size_t)n->i[0], (size_t)n->i[1],
			      gy->shape[2], gy->shape[3]};
	return q;
}

/* Fused backward (accumulates), per chunk with U = n->grad (Cout, K):
 * dx += col2im(U^T gy), dgy += U im2col(x). */
static void wgrad_backward(struct graph *g, struct graph_node *n)
{
	bool fresh_x = grad_fresh(n, 0), fresh_g = grad_fresh(n, 1);
	struct tensor *gx = graph_input_grad(g, n, 0);
	struct tensor *gg = graph_input_grad(g, n, 1);
	struct conv_geom q = wgrad_geom(n);
	size_t K = geom_k(&q), P = geom_p(&q), Cout = n->value.shape[0];
	size_t nb = chunk_samples(&q);
	const vb_real *U = n->grad.data;
	vb_real *col, *gc;
	int *tab = NULL;
	struct graph_mark mk;
	const vb_real *gy, *x;
	if (gx && dnnl_for(g, CALL_BWD_DATA, &q)) {
		if (!dnnl_run(g, CALL_BWD_DATA, &q, Cout, &n->in[1]->value,
			      &n->grad, NULL, gx, NULL, !fresh_x, false))
			return;
		gx = NULL;
	}
	if (gg && dnnl_for(g, CALL_FWD, &q)) {
		if (!dnnl_run(g, CALL_FWD, &q, Cout, &n->in[0]->value,
			      &n->grad, NULL, gg, NULL, !fresh_g, false))
			return;
		gg = NULL;
	}
	if (!gx && !gg)
		return;
	if (gx)
		graph_to_plain(g, gx);
	if (gg)
		graph_to_plain(g, gg);
	mk = graph_mark(g);
	gy = graph_in_layout(g, &n->in[1]->value, TENSOR_LAYOUT_PLAIN);
	x = gy ? graph_in_layout(g, &n->in[0]->value, TENSOR_LAYOUT_PLAIN)
	       : NULL;
	col = x ? op_impl_scratch(g, "ops", K, nb * P, sizeof(vb_real))
		: NULL;
	gc = col ? op_impl_scratch(g, "ops", Cout, nb * P,
				   sizeof(vb_real)) : NULL;
	if (gc && gg)
		tab = im2col_table(g, &q);
	if (!gc || (gg && !tab))
		return;
	for (size_t b0 = 0; b0 < q.B; b0 += nb) {
		size_t m = q.B - b0 < nb ? q.B - b0 : nb, N = m * P;
		if (gx) { /* dcol (K, N) = U^T (K, Cout) gy (Cout, N) */
			to_cbp(gy, b0, m, Cout, P, gc);
			op_gemm(true, false, K, N, Cout, 1, U, K, gc, N, 0, col,
				N);
			col2im_add(&q, col, b0, m, gx->data);
		}
		if (gg) { /* dgy (Cout, N) = U (Cout, K) im2col(x) (K, N) */
			im2col(&q, tab, x, b0, m, col);
			op_gemm(false, false, Cout, N, K, 1, U, K, col, N, 0, gc,
				N);
			from_cbp_add(gc, b0, m, Cout, P, gg->data);
		}
	}
	graph_release(g, mk);
}

static void wgrad_vjp(struct graph *g, struct graph_node *n,
		      struct graph_node *G, struct graph_node **gin)
{
	struct conv_geom q = wgrad_geom(n);
	/* d<G, dw>/dx: the input gradient of conv2d(x, G) seeded by gy;
	 * d<G, dw>/dgy: conv2d(x, G). */
	if (graph_input_active(n, 0))
		gin[0] = conv_transpose_node(g, "grad.conv2d_weight_grad.x",
					     n->in[1], G, NULL, q.s, q.p,
					     (q.H + 2 * q.p - q.kh) % q.s,
					     (q.W + 2 * q.p - q.kw) % q.s);
	if (graph_input_active(n, 1))
		gin[1] = op_conv2d(g, "grad.conv2d_weight_grad.gy", n->in[0],
				   G, NULL, (int)q.s, (int)q.p);
}

static const struct graph_op OP_WGRAD = {"conv2d_weight_grad",
					 wgrad_backward, wgrad_vjp};

struct graph_node *op_conv2d_weight_grad(struct graph *g, const char *name,
					 struct graph_node *x,
					 struct graph_node *gy, int kh, int kw,
					 int stride, int pad)
{
	struct graph_node *in[2] = {x, gy}, *n;
	struct conv_geom q;
	size_t shape[4], K, P, nb, Cout;
	const vb_real *xp, *gyp;
	vb_real *col, *gc;
	int *tab;
	struct graph_mark mk;
	if (!x || !gy)
		return NULL;
	if (x->value.ndim != 4 || gy->value.ndim != 4 || kh < 1 || kw < 1 ||
	    stride < 1 || pad < 0)
		return conv_fail(g, "conv2d_weight_grad", name, x, gy, stride,
				 pad, "expected x (B, Cin, H, W), gy (B, Cout, "
				 "Ho, Wo), kernel >= 1, stride >= 1, pad >= 0");
	q.B = x->value.shape[0];
	q.C = x->value.shape[1];
	q.H = x->value.shape[2];
	q.W = x->value.shape[3];
	q.kh = (size_t)kh;
	q.kw = (size_t)kw;
	q.s = (size_t)stride;
	q.p = (size_t)pad;
	q.Ho = conv_out(q.H, q.kh, q.s, q.p);
	q.Wo = conv_out(q.W, q.kw, q.s, q.p);
	if (gy->value.shape[0] != q.B || q.Ho == 0 || q.Wo == 0 ||
	    gy->value.shape[2] != q.Ho || gy->value.shape[3] != q.Wo)
		return conv_fail(g, "conv2d_weight_grad", name, x, gy, stride,
				 pad, "gy is not the output shape of the "
				 "convolution");
	if (!plane_small(q.H, q.W))
		return conv_fail(g, "conv2d_weight_grad", name, x, gy, stride,
				 pad, "image plane over INT_MAX pixels");
	Cout = gy->value.shape[1];
	shape[0] = Cout;
	shape[1] = q.C;
	shape[2] = q.kh;
	shape[3] = q.kw;
	n = graph_op_node_layout(g, &OP_WGRAD, GRAPH_LAYOUT_OWN, name, in, 2,
				 4, shape);
	if (!n)
		return NULL;
	n->i[0] = stride;
	n->i[1] = pad;
	n->i[2] = kh;
	n->i[3] = kw;
	if (dnnl_for(g, CALL_BWD_WEIGHTS, &q))
		return dnnl_run(g, CALL_BWD_WEIGHTS, &q, Cout, &x->value,
				&gy->value, NULL, &n->value, NULL, false,
				false)
			       ? graph_node_done(g, n)
			       : NULL;
	K = geom_k(&q);
	P = geom_p(&q);
	nb = chunk_samples(&q);
	mk = graph_mark(g);
	xp = graph_in_layout(g, &x->value, TENSOR_LAYOUT_PLAIN);
	gyp = xp ? graph_in_layout(g, &gy->value, TENSOR_LAYOUT_PLAIN) : NULL;
	col = gyp ? op_impl_scratch(g, "ops", K, nb * P, sizeof(vb_real))
		  : NULL;
	gc = col ? op_impl_scratch(g, "ops", Cout, nb * P,
				   sizeof(vb_real)) : NULL;
	tab = gc ? im2col_table(g, &q) : NULL;
	if (!tab)
		return NULL;
	memset(n->value.data, 0, n->value.n * sizeof(vb_real));
	for (size_t b0 = 0; b0 < q.B; b0 += nb) {
		size_t m = q.B - b0 < nb ? q.B - b0 : nb, N = m * P;
		im2col(&q, tab, xp, b0, m, col);
		to_cbp(gyp, b0, m, Cout, P, gc);
		op_gemm(false, true, Cout, K, N, 1, gc, N, col, N, 1,
			n->value.data, K);
	}
	graph_release(g, mk);
	return graph_node_done(g, n);
}

/* ------------------------------------------------------------------ */
/* sum_channels (B, C, ...) -> (C) and expand_channels (C) -> (B, C, ...),
 * each the other's adjoint. */

static void sum_channels_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	/* ga has the layout the input had when it was made */
	if (ga)
		add_channel_bias(ga, n->grad.data);
}

static void sum_channels_vjp(struct graph *g, struct graph_node *n,
			     struct graph_node *G, struct graph_node **gin)
{
	if (graph_input_active(n, 0))
		gin[0] = op_expand_channels(g, "grad.sum_channels", G,
					    n->in[0]->value.ndim,
					    n->in[0]->value.shape);
}

static const struct graph_op OP_SUM_CHANNELS = {
	"sum_channels", sum_channels_backward, sum_channels_vjp};

struct graph_node *op_sum_channels(struct graph *g, const char *name,
				   struct graph_node *a)
{
	struct graph_node *in[1] = {a}, *n;
	size_t shape[1];
	if (!a)
		return NULL;
	if (a->value.ndim < 2)
		return channels_fail(g, "sum_channels", name, a,
				     "expected (B, C, ...)");
	shape[0] = a->value.shape[1];
	n = graph_op_node_layout(g, &OP_SUM_CHANNELS, GRAPH_LAYOUT_OWN, name,
				 in, 1, 1, shape);
	if (!n)
		return NULL;
	memset(n->value.data, 0, shape[0] * sizeof(vb_real));
	channel_sums_add(&a->value, n->value.data);
	return graph_node_done(g, n);
}

static void expand_channels_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *gv = graph_input_grad(g, n, 0);
	if (!gv)
		return;
	channel_sums_add(&n->grad, gv->data);
}

static void expand_channels_vjp(struct graph *g, struct graph_node *n,
				struct graph_node *G, struct graph_node **gin)
{
	if (graph_input_active(n, 0))
		gin[0] = op_sum_channels(g, "grad.expand_channels", G);
}

static const struct graph_op OP_EXPAND_CHANNELS = {
	"expand_channels", expand_channels_backward, expand_channels_vjp};

struct graph_node *op_expand_channels(struct graph *g, const char *name,
				      struct graph_node *v, int ndim,
				      const size_t *shape)
{
	struct graph_node *in[1] = {v}, *n;
	size_t B, C, P;
	if (!v)
		return NULL;
	if (ndim < 2 || ndim > TENSOR_MAX_DIM || v->value.ndim != 1 ||
	    v->value.n != shape[1])
		return channels_fail(g, "expand_channels", name, v,
				     "expected v (C) and a target (B, C, "
				     "...)");
	n = graph_op_node(g, &OP_EXPAND_CHANNELS, name, in, 1, ndim, shape);
	if (!n)
		return NULL;
	B = shape[0];
	C = shape[1];
	P = plane(&n->value);
	for (size_t b = 0; b < B; b++)
		for (size_t c = 0; c < C; c++) {
			vb_real *d = n->value.data + (b * C + c) * P;
			for (size_t i = 0; i < P; i++)
				d[i] = v->value.data[c];
		}
	return graph_node_done(g, n);
}
