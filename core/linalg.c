/* linalg: forward kernels, fused backward kernels (+=) and vjp builders of
 * the batched small-matrix ops (linalg.h). The graph, the arena and the
 * elementwise ops are elsewhere (graph.c, ops.c); the RHVAE kernel metric,
 * a composition of these ops, is models/metric.c.
 *
 * Precision, per op (float build; the double build is double throughout):
 *   tril, diag, tril_low, transpose: copies, exact.
 *   add_identity: one vb_real addition per diagonal entry.
 *   trace, sqdist (and its gradient ops): sums in double, rounded once.
 *   bmm: cblas ?gemm per matrix, sums in vb_real (as PyTorch's bmm).
 *   inverse, logdet, cholesky, solve_tril: factors stored in vb_real (as
 *     LAPACK's s-routines would), each entry its input minus its products
 *     summed in double (left-looking by columns) and rounded once;
 *     substitutions (inverse, solves, the backward kernels) in double,
 *     rounded once; logdet's sum of logs in double.
 * Backward kernels accumulate (+=) into graph_input_grad. Scratch comes
 * from the graph arena, one allocation per op call. */
#include "linalg.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "op_impl.h"
#include "ops.h"

/* bmm: one cblas ?gemm call per matrix (op_gemm). Measured against
 * register-blocked loops with double sums (GCC vector types, 4 x 8
 * block) in the float build, B = 64, d = 16, one thread, CPU time: gemm
 * 9-10 us (nn) / 26-29 us (nt) per batch, loops 41-60 us; gemm wins. */

/* A batch of square matrices: (B, d, d). */
static bool batch_square(const struct graph_node *a)
{
	return a->value.ndim == 3 && a->value.shape[1] == a->value.shape[2];
}

/* Whether a is a batch of square matrices (B, d, d), then with *B and *d;
 * false for a NULL a or, after recording the shape failure of op on g,
 * another shape. */
static bool square_in(struct graph *g, const char *op, const char *name,
		      struct graph_node *a, size_t *B, size_t *d)
{
	if (!a)
		return false;
	if (!batch_square(a)) {
		op_impl_shape_fail(g, "linalg", op, name, a, NULL);
		return false;
	}
	*B = a->value.shape[0];
	*d = a->value.shape[1];
	return true;
}

static size_t n_low(size_t d)
{
	return d ? d * (d - 1) / 2 : 0;
}

static struct graph_node *zeros(struct graph *g, const char *name, size_t r,
				size_t c)
{
	return op_full(g, name, 2, (const size_t[2]){r, c}, 0);
}

static void fail_init(struct graph_node *n)
{
	n->i[LINALG_I_FAIL_COUNT] = 0;
	n->i[LINALG_I_FAIL_FIRST] = -1;
}

static void fail_note(struct graph_node *n, size_t b)
{
	if (n->i[LINALG_I_FAIL_COUNT]++ == 0)
		n->i[LINALG_I_FAIL_FIRST] = (long)b;
}

/* ------------------------------------------------------------------ */
/* small dense kernels on one matrix (row-major, n x n) */

/* C_b (m, n) = alpha op(A_b) op(B_b) (+ C_b when acc) for nb matrices;
 * A_b stored (m, k) or (k, m) when ta, B_b (k, n) or (n, k) when tb: one
 * op_gemm (cblas) call per matrix. */
static void mm_batch(size_t nb, bool ta, bool tb, size_t m, size_t n,
		     size_t k, double alpha, const vb_real *A, const vb_real *B,
		     vb_real *C, bool acc)
{
	for (size_t b = 0; b < nb; b++)
		op_gemm(ta, tb, m, n, k, (vb_real)alpha, A + b * m * k,
			ta ? m : k, B + b * k * n, tb ? k : n,
			acc ? 1 : 0, C + b * m * n, n);
}

/* In-place LU with partial pivoting of a (n x n), P a = L U, unit L below
 * the diagonal, U on and above, left-looking (column j: its U entries,
 * then the pivot candidates on and below the diagonal). Every entry is
 * a_ij minus its products summed in increasing k in double (column j is
 * held in col, n doubles) and rounded once to vb_real, as the Crout
 * dot-product form; the work runs on t, a column-major copy (n x n), so
 * the updates run along contiguous columns of L. The pivot is the first
 * candidate of largest magnitude (LAPACK's i?amax). piv[j] is the row
 * swapped with row j. Returns the permutation sign (+1 or -1);
 * *zero_pivot tells whether some pivot is exactly 0 (singular: the column
 * below it is left unscaled, as LAPACK's getf2). */
static int lu_factor(vb_real *a, size_t n, int *piv, vb_real *t, double *col,
		     bool *zero_pivot)
{
	int sign = 1;
	*zero_pivot = false;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			t[j * n + i] = a[i * n + j];
	for (size_t j = 0; j < n; j++) {
		vb_real *tj = t + j * n; /* column j */
		size_t p = j;
		double best = -1;
		for (size_t i = 0; i < n; i++)
			col[i] = tj[i];
		for (size_t k = 0; k < j; k++) {
			const vb_real *lk = t + k * n; /* column k of L */
			vb_real u = (vb_real)col[k];
			tj[k] = u;
			for (size_t i = k + 1; i < n; i++)
				col[i] -= (double)lk[i] * u;
		}
		for (size_t i = j; i < n; i++)
			if (fabs(col[i]) > best) {
				best = fabs(col[i]);
				p = i;
			}
		piv[j] = (int)p;
		if (p != j) {
			for (size_t c = 0; c < n; c++) {
				vb_real tmp = t[c * n + j];
				t[c * n + j] = t[c * n + p];
				t[c * n + p] = tmp;
			}
			double tmp = col[j];
			col[j] = col[p];
			col[p] = tmp;
			sign = -sign;
		}
		tj[j] = (vb_real)col[j];
		double u = tj[j];
		if (u == 0)
			*zero_pivot = true;
		for (size_t i = j + 1; i < n; i++)
			tj[i] = (vb_real)(u != 0 ? col[i] / u : col[i]);
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			a[i * n + j] = t[j * n + i];
	return sign;
}

#if defined(__GNUC__)
typedef double v4_double __attribute__((vector_size(4 * sizeof(double))));
#endif

/* wi[c] -= sum_{k0 <= k < k1} t[k ts] w[k m + c] for c < m, every entry
 * updated in increasing k with a separate multiply and subtract
 * (-ffp-contract=off), so the blocking below gives the same bits as the
 * plain loop: columns go in blocks of 16 held in four 4-double vectors
 * (GCC/clang vector types, no intrinsics) while k runs, which keeps the
 * row in registers; the rest column by column. */
static void row_update(double *wi, const double *w, size_t m,
		       const vb_real *t, size_t ts, size_t k0, size_t k1)
{
	size_t c = 0;
#if defined(__GNUC__)
	for (; c + 16 <= m; c += 16) {
		v4_double v0, v1, v2, v3;
		memcpy(&v0, wi + c, sizeof v0);
		memcpy(&v1, wi + c + 4, sizeof v1);
		memcpy(&v2, wi + c + 8, sizeof v2);
		memcpy(&v3, wi + c + 12, sizeof v3);
		for (size_t k = k0; k < k1; k++) {
			double a = t[k * ts];
			v4_double b0, b1, b2, b3;
			memcpy(&b0, w + k * m + c, sizeof b0);
			memcpy(&b1, w + k * m + c + 4, sizeof b1);
			memcpy(&b2, w + k * m + c + 8, sizeof b2);
			memcpy(&b3, w + k * m + c + 12, sizeof b3);
			v0 -= a * b0;
			v1 -= a * b1;
			v2 -= a * b2;
			v3 -= a * b3;
		}
		memcpy(wi + c, &v0, sizeof v0);
		memcpy(wi + c + 4, &v1, sizeof v1);
		memcpy(wi + c + 8, &v2, sizeof v2);
		memcpy(wi + c + 12, &v3, sizeof v3);
	}
#endif
	for (; c < m; c++) {
		double v = wi[c];
		for (size_t k = k0; k < k1; k++)
			v -= (double)t[k * ts] * w[k * m + c];
		wi[c] = v;
	}
}

/* Substitutions on all m columns of w (n x m doubles, row-major) at once:
 * row i becomes (w_i - sum_k t_ik w_k) / t_ii over the rows k already
 * solved (row_update).
 * rows_lower: t = the lower triangle of l (unit: the diagonal taken as
 * 1, the unit L of an LU), forward substitution.
 * rows_upper: t = the upper triangle of u, or l^T when lt (then u is a
 * lower factor), back substitution. A zero diagonal gives inf/NaN. */
static void rows_lower(const vb_real *l, size_t n, double *w, size_t m,
		       bool unit)
{
	for (size_t i = 0; i < n; i++) {
		double *wi = w + i * m;
		row_update(wi, w, m, l + i * n, 1, 0, i);
		if (!unit) {
			double dg = l[i * n + i];
			for (size_t c = 0; c < m; c++)
				wi[c] /= dg;
		}
	}
}

static void rows_upper(const vb_real *u, size_t n, double *w, size_t m,
		       bool lt)
{
	for (size_t i = n; i-- > 0;) {
		double *wi = w + i * m;
		double dg = u[i * n + i];
		if (lt)
			row_update(wi, w, m, u + i, n, i + 1, n);
		else
			row_update(wi, w, m, u + i * n, 1, i + 1, n);
		for (size_t c = 0; c < m; c++)
			wi[c] /= dg;
	}
}

/* Cholesky factor of the lower triangle of a (n x n) into l (lower, zeros
 * above), left-looking by columns: every entry is a_ij minus its products
 * summed in increasing k in double (col, n doubles) and rounded once; the
 * work runs on t, a column-major copy, so the updates run along
 * contiguous columns. Returns false (and fills l with NaN) when a pivot
 * is not > 0 (NaN included), as LAPACK's potrf reports info > 0. */
static bool chol_factor(const vb_real *a, vb_real *l, size_t n, vb_real *t,
			double *col)
{
	for (size_t j = 0; j < n; j++) {
		vb_real *tj = t + j * n; /* column j of the factor */
		for (size_t i = j; i < n; i++)
			col[i] = a[i * n + j];
		for (size_t k = 0; k < j; k++) {
			const vb_real *lk = t + k * n;
			double ljk = lk[j];
			for (size_t i = j; i < n; i++)
				col[i] -= (double)lk[i] * ljk;
		}
		if (!(col[j] > 0)) {
			for (size_t q = 0; q < n * n; q++)
				l[q] = (vb_real)NAN;
			return false;
		}
		tj[j] = (vb_real)sqrt(col[j]);
		double dg = tj[j];
		for (size_t i = j + 1; i < n; i++)
			tj[i] = (vb_real)(col[i] / dg);
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			l[i * n + j] = j <= i ? t[j * n + i] : 0;
	return true;
}

/* x (n x n) = a^{-1}, from LU factors (piv != NULL: x = U^{-1} L^{-1} P)
 * or from a Cholesky factor (piv == NULL: x = l^{-T} l^{-1}), in double
 * (w: n x n doubles), rounded once. */
static void inverse_from(const vb_real *f, const int *piv, size_t n,
			 vb_real *x, double *w)
{
	for (size_t i = 0; i < n * n; i++)
		w[i] = 0;
	for (size_t i = 0; i < n; i++)
		w[i * n + i] = 1;
	if (piv) {
		for (size_t j = 0; j < n; j++) {
			size_t p = (size_t)piv[j];
			if (p != j)
				for (size_t c = 0; c < n; c++) {
					double t = w[j * n + c];
					w[j * n + c] = w[p * n + c];
					w[p * n + c] = t;
				}
		}
		rows_lower(f, n, w, n, true);
		rows_upper(f, n, w, n, false);
	} else {
		rows_lower(f, n, w, n, false);
		rows_upper(f, n, w, n, true);
	}
	for (size_t i = 0; i < n * n; i++)
		x[i] = (vb_real)w[i];
}

/* ------------------------------------------------------------------ */
/* tril, diag, tril_low: pack and unpack the lower triangle */

static void tril_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *gd = graph_input_grad(g, n, 0);
	struct tensor *gl = graph_input_grad(g, n, 1);
	size_t B = n->value.shape[0], d = n->value.shape[1], nl = n_low(d);
	for (size_t b = 0; b < B; b++) {
		const vb_real *G = n->grad.data + b * d * d;
		size_t k = 0;
		for (size_t r = 0; r < d; r++) {
			if (gd)
				gd->data[b * d + r] += G[r * d + r];
			for (size_t c = 0; c < r; c++, k++)
				if (gl)
					gl->data[b * nl + k] += G[r * d + c];
		}
	}
}

static void tril_vjp(struct graph *g, struct graph_node *n,
		     struct graph_node *G, struct graph_node **gin)
{
	if (graph_input_active(n, 0))
		gin[0] = linalg_diag(g, "grad.tril.diag", G);
	if (graph_input_active(n, 1))
		gin[1] = linalg_tril_low(g, "grad.tril.low", G);
}

static const struct graph_op OP_TRIL = {"tril", tril_backward, tril_vjp};

struct graph_node *linalg_tril(struct graph *g, const char *name,
			       struct graph_node *diag, struct graph_node *low)
{
	struct graph_node *in[2] = {diag, low}, *n;
	size_t B, d, nl;
	if (!diag || !low)
		return NULL;
	if (diag->value.ndim != 2 || low->value.ndim != 2)
		return op_impl_shape_fail(g, "linalg", "tril", name, diag, low);
	B = diag->value.shape[0];
	d = diag->value.shape[1];
	nl = n_low(d);
	if (low->value.shape[0] != B || low->value.shape[1] != nl)
		return op_impl_shape_fail(g, "linalg", "tril", name, diag, low);
	n = graph_op_node(g, &OP_TRIL, name, in, 2, 3,
			  (const size_t[3]){B, d, d});
	if (!n)
		return NULL;
	for (size_t b = 0; b < B; b++) {
		vb_real *L = n->value.data + b * d * d;
		const vb_real *dg = diag->value.data + b * d;
		const vb_real *lo = low->value.data + b * nl;
		size_t k = 0;
		for (size_t r = 0; r < d; r++) {
			for (size_t c = 0; c < r; c++)
				L[r * d + c] = lo[k++];
			L[r * d + r] = dg[r];
			for (size_t c = r + 1; c < d; c++)
				L[r * d + c] = 0;
		}
	}
	return graph_node_done(g, n);
}

static void diag_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	size_t B = n->value.shape[0], d = n->value.shape[1];
	if (!ga)
		return;
	for (size_t b = 0; b < B; b++)
		for (size_t r = 0; r < d; r++)
			ga->data[(b * d + r) * d + r] += n->grad.data[b * d + r];
}

static void diag_vjp(struct graph *g, struct graph_node *n,
		     struct graph_node *G, struct graph_node **gin)
{
	size_t B = n->value.shape[0], d = n->value.shape[1];
	if (graph_input_active(n, 0))
		gin[0] = linalg_tril(g, "grad.diag", G,
				     zeros(g, "grad.diag.zero", B, n_low(d)));
}

static const struct graph_op OP_DIAG = {"diag", diag_backward, diag_vjp};

struct graph_node *linalg_diag(struct graph *g, const char *name,
			       struct graph_node *a)
{
	struct graph_node *in[1] = {a}, *n;
	size_t B, d;
	if (!square_in(g, "diag", name, a, &B, &d))
		return NULL;
	n = graph_op_node(g, &OP_DIAG, name, in, 1, 2, (const size_t[2]){B, d});
	if (!n)
		return NULL;
	for (size_t b = 0; b < B; b++)
		for (size_t r = 0; r < d; r++)
			n->value.data[b * d + r] = a->value.data[(b * d + r) * d + r];
	return graph_node_done(g, n);
}

static void tril_low_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	size_t B = n->in[0]->value.shape[0], d = n->in[0]->value.shape[1];
	size_t nl = n_low(d);
	if (!ga)
		return;
	for (size_t b = 0; b < B; b++) {
		size_t k = 0;
		for (size_t r = 0; r < d; r++)
			for (size_t c = 0; c < r; c++, k++)
				ga->data[(b * d + r) * d + c] +=
					n->grad.data[b * nl + k];
	}
}

static void tril_low_vjp(struct graph *g, struct graph_node *n,
			 struct graph_node *G, struct graph_node **gin)
{
	size_t B = n->in[0]->value.shape[0], d = n->in[0]->value.shape[1];
	if (graph_input_active(n, 0))
		gin[0] = linalg_tril(g, "grad.tril_low",
				     zeros(g, "grad.tril_low.zero", B, d), G);
}

static const struct graph_op OP_TRIL_LOW = {"tril_low", tril_low_backward,
					    tril_low_vjp};

struct graph_node *linalg_tril_low(struct graph *g, const char *name,
				   struct graph_node *a)
{
	struct graph_node *in[1] = {a}, *n;
	size_t B, d, nl;
	if (!square_in(g, "tril_low", name, a, &B, &d))
		return NULL;
	nl = n_low(d);
	n = graph_op_node(g, &OP_TRIL_LOW, name, in, 1, 2,
			  (const size_t[2]){B, nl});
	if (!n)
		return NULL;
	for (size_t b = 0; b < B; b++) {
		size_t k = 0;
		for (size_t r = 0; r < d; r++)
			for (size_t c = 0; c < r; c++, k++)
				n->value.data[b * nl + k] =
					a->value.data[(b * d + r) * d + c];
	}
	return graph_node_done(g, n);
}

/* ------------------------------------------------------------------ */
/* transpose, add_identity, trace */

static void transpose_into(const vb_real *src, vb_real *dst, size_t B,
			   size_t m, size_t nn, bool acc)
{
	for (size_t b = 0; b < B; b++)
		for (size_t i = 0; i < m; i++)
			for (size_t j = 0; j < nn; j++) {
				vb_real v = src[(b * m + i) * nn + j];
				vb_real *o = dst + (b * nn + j) * m + i;
				*o = acc ? *o + v : v;
			}
}

static void transpose_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	if (!ga)
		return;
	/* n is (B, nn, m); its gradient transposes back into (B, m, nn) */
	transpose_into(n->grad.data, ga->data, n->value.shape[0],
		       n->value.shape[1], n->value.shape[2], true);
}

static void transpose_vjp(struct graph *g, struct graph_node *n,
			  struct graph_node *G, struct graph_node **gin)
{
	if (graph_input_active(n, 0))
		gin[0] = linalg_transpose(g, "grad.transpose", G);
}

static const struct graph_op OP_TRANSPOSE = {"transpose", transpose_backward,
					     transpose_vjp};

struct graph_node *linalg_transpose(struct graph *g, const char *name,
				    struct graph_node *a)
{
	struct graph_node *in[1] = {a}, *n;
	size_t B, m, nn;
	if (!a)
		return NULL;
	if (a->value.ndim != 3)
		return op_impl_shape_fail(g, "linalg", "transpose", name, a,
					  NULL);
	B = a->value.shape[0];
	m = a->value.shape[1];
	nn = a->value.shape[2];
	n = graph_op_node(g, &OP_TRANSPOSE, name, in, 1, 3,
			  (const size_t[3]){B, nn, m});
	if (!n)
		return NULL;
	transpose_into(a->value.data, n->value.data, B, m, nn, false);
	return graph_node_done(g, n);
}

static const struct graph_op OP_ADD_IDENTITY = {
	"add_identity", op_impl_pass_backward, op_impl_pass_vjp};

struct graph_node *linalg_add_identity(struct graph *g, const char *name,
				       struct graph_node *a, double lambda)
{
	struct graph_node *in[1] = {a}, *n;
	size_t B, d;
	vb_real lr = (vb_real)lambda;
	if (!square_in(g, "add_identity", name, a, &B, &d))
		return NULL;
	n = graph_op_node(g, &OP_ADD_IDENTITY, name, in, 1, 3, a->value.shape);
	if (!n)
		return NULL;
	n->f[0] = lambda;
	memcpy(n->value.data, a->value.data, a->value.n * sizeof(vb_real));
	for (size_t b = 0; b < B; b++)
		for (size_t r = 0; r < d; r++)
			n->value.data[(b * d + r) * d + r] += lr;
	return graph_node_done(g, n);
}

static void trace_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	size_t B = n->in[0]->value.shape[0], d = n->in[0]->value.shape[1];
	if (!ga)
		return;
	for (size_t b = 0; b < B; b++)
		for (size_t r = 0; r < d; r++)
			ga->data[(b * d + r) * d + r] += n->grad.data[b];
}

static void trace_vjp(struct graph *g, struct graph_node *n,
		      struct graph_node *G, struct graph_node **gin)
{
	size_t B = n->in[0]->value.shape[0], d = n->in[0]->value.shape[1];
	if (graph_input_active(n, 0))
		gin[0] = linalg_tril(g, "grad.trace",
				     op_expand_rows(g, "grad.trace.diag", G, d),
				     zeros(g, "grad.trace.zero", B, n_low(d)));
}

static const struct graph_op OP_TRACE = {"trace", trace_backward, trace_vjp};

struct graph_node *linalg_trace(struct graph *g, const char *name,
				struct graph_node *a)
{
	struct graph_node *in[1] = {a}, *n;
	size_t B, d;
	if (!square_in(g, "trace", name, a, &B, &d))
		return NULL;
	n = graph_op_node(g, &OP_TRACE, name, in, 1, 1, (const size_t[1]){B});
	if (!n)
		return NULL;
	for (size_t b = 0; b < B; b++) {
		double acc = 0;
		for (size_t r = 0; r < d; r++)
			acc += a->value.data[(b * d + r) * d + r];
		n->value.data[b] = (vb_real)acc;
	}
	return graph_node_done(g, n);
}

/* ------------------------------------------------------------------ */
/* bmm */

static void bmm_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	struct tensor *gb = graph_input_grad(g, n, 1);
	const vb_real *A = n->in[0]->value.data, *Bm = n->in[1]->value.data;
	const vb_real *G = n->grad.data;
	bool ta = n->i[0], tb = n->i[1];
	size_t nb = n->value.shape[0], m, k, nn;
	op_impl_product_dims(n, 1, &m, &k, &nn);
	/* C = op(A) op(B); as matmul_backward in ops.c, per matrix */
	if (ga) {
		if (!ta) /* dA (m,k) = G (m,n) op(B)^T */
			mm_batch(nb, false, !tb, m, k, nn, 1, G, Bm,
				 ga->data, true);
		else /* dA (k,m) = op(B) (k,n) G^T */
			mm_batch(nb, tb, true, k, m, nn, 1, Bm, G, ga->data,
				 true);
	}
	if (gb) {
		if (!tb) /* dB (k,n) = op(A)^T (k,m) G (m,n) */
			mm_batch(nb, !ta, false, k, nn, m, 1, A, G,
				 gb->data, true);
		else /* dB (n,k) = G^T (n,m) op(A) (m,k) */
			mm_batch(nb, true, ta, nn, k, m, 1, G, A, gb->data,
				 true);
	}
}

static void bmm_vjp(struct graph *g, struct graph_node *n,
		    struct graph_node *G, struct graph_node **gin)
{
	struct graph_node *A = n->in[0], *B = n->in[1];
	bool ta = n->i[0], tb = n->i[1];
	if (graph_input_active(n, 0))
		gin[0] = !ta ? linalg_bmm(g, "grad.bmm", G, B, false, !tb)
			     : linalg_bmm(g, "grad.bmm", B, G, tb, true);
	if (graph_input_active(n, 1))
		gin[1] = !tb ? linalg_bmm(g, "grad.bmm", A, G, !ta, false)
			     : linalg_bmm(g, "grad.bmm", G, A, true, ta);
}

static const struct graph_op OP_BMM = {"bmm", bmm_backward, bmm_vjp};

struct graph_node *linalg_bmm(struct graph *g, const char *name,
			      struct graph_node *a, struct graph_node *b,
			      bool ta, bool tb)
{
	struct graph_node *in[2] = {a, b}, *n;
	size_t nb, m, k, k2, nn;
	if (!a || !b)
		return NULL;
	if (a->value.ndim != 3 || b->value.ndim != 3 ||
	    a->value.shape[0] != b->value.shape[0])
		return op_impl_shape_fail(g, "linalg", "bmm", name, a, b);
	nb = a->value.shape[0];
	m = ta ? a->value.shape[2] : a->value.shape[1];
	k = ta ? a->value.shape[1] : a->value.shape[2];
	k2 = tb ? b->value.shape[2] : b->value.shape[1];
	nn = tb ? b->value.shape[1] : b->value.shape[2];
	if (k != k2)
		return op_impl_shape_fail(g, "linalg", "bmm", name, a, b);
	n = graph_op_node(g, &OP_BMM, name, in, 2, 3,
			  (const size_t[3]){nb, m, nn});
	if (!n)
		return NULL;
	n->i[0] = ta;
	n->i[1] = tb;
	mm_batch(nb, ta, tb, m, nn, k, 1, a->value.data, b->value.data,
		 n->value.data, false);
	return graph_node_done(g, n);
}

/* ------------------------------------------------------------------ */
/* sqdist and its two gradient ops */

/* Node layout of the gradient ops: in = {G (B, N), z (B, d), c (N, d)};
 * sqdist_gz -> (B, d): 2 sum_j G_bj (z_b - c_j);
 * sqdist_gc -> (N, d): -2 sum_b G_bj (z_b - c_j). */
static struct graph_node *sqdist_gz(struct graph *g, struct graph_node *G,
				    struct graph_node *z,
				    struct graph_node *c);
static struct graph_node *sqdist_gc(struct graph *g, struct graph_node *G,
				    struct graph_node *z,
				    struct graph_node *c);

/* acc_z (B, d) += sum_j G_bj (z_b - c_j), acc_c (N, d) += sum_b G_bj
 * (z_b - c_j), either may be NULL; all in double. */
static void pair_sums(const vb_real *G, const vb_real *z, const vb_real *c,
		      size_t B, size_t N, size_t d, double *acc_z,
		      double *acc_c)
{
	for (size_t b = 0; b < B; b++)
		for (size_t j = 0; j < N; j++) {
			double w = G[b * N + j];
			const vb_real *zb = z + b * d, *cj = c + j * d;
			for (size_t k = 0; k < d; k++) {
				double t = w * ((double)zb[k] - (double)cj[k]);
				if (acc_z)
					acc_z[b * d + k] += t;
				if (acc_c)
					acc_c[j * d + k] += t;
			}
		}
}

static void sqdist_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *gz = graph_input_grad(g, n, 0);
	struct tensor *gc = graph_input_grad(g, n, 1);
	size_t B = n->value.shape[0], N = n->value.shape[1];
	size_t d = n->in[0]->value.shape[1];
	double *az, *ac;
	az = op_impl_scratch(g, "linalg", (B + N) * d + 1, 1, sizeof(double));
	if (!az)
		return;
	ac = az + B * d;
	memset(az, 0, (B + N) * d * sizeof(double));
	pair_sums(n->grad.data, n->in[0]->value.data, n->in[1]->value.data, B,
		  N, d, gz ? az : NULL, gc ? ac : NULL);
	if (gz)
		for (size_t i = 0; i < B * d; i++)
			gz->data[i] += (vb_real)(2 * az[i]);
	if (gc)
		for (size_t i = 0; i < N * d; i++)
			gc->data[i] += (vb_real)(-2 * ac[i]);
}

static void sqdist_vjp(struct graph *g, struct graph_node *n,
		       struct graph_node *G, struct graph_node **gin)
{
	if (graph_input_active(n, 0))
		gin[0] = sqdist_gz(g, G, n->in[0], n->in[1]);
	if (graph_input_active(n, 1))
		gin[1] = sqdist_gc(g, G, n->in[0], n->in[1]);
}

static const struct graph_op OP_SQDIST = {"sqdist", sqdist_backward,
					  sqdist_vjp};

struct graph_node *linalg_sqdist(struct graph *g, const char *name,
				 struct graph_node *z, struct graph_node *c)
{
	struct graph_node *in[2] = {z, c}, *n;
	size_t B, N, d;
	if (!z || !c)
		return NULL;
	if (z->value.ndim != 2 || c->value.ndim != 2 ||
	    z->value.shape[1] != c->value.shape[1])
		return op_impl_shape_fail(g, "linalg", "sqdist", name, z, c);
	B = z->value.shape[0];
	N = c->value.shape[0];
	d = z->value.shape[1];
	n = graph_op_node(g, &OP_SQDIST, name, in, 2, 2,
			  (const size_t[2]){B, N});
	if (!n)
		return NULL;
	for (size_t b = 0; b < B; b++)
		for (size_t j = 0; j < N; j++) {
			const vb_real *zb = z->value.data + b * d;
			const vb_real *cj = c->value.data + j * d;
			double acc = 0;
			for (size_t k = 0; k < d; k++) {
				double t = (double)zb[k] - (double)cj[k];
				acc += t * t;
			}
			n->value.data[b * N + j] = (vb_real)acc;
		}
	return graph_node_done(g, n);
}

/* Backward of both gradient ops. With H = n->grad and s = +1 (gz: H is
 * (B, d)) or -1 (gc: H is (N, d)), the op is s 2 sum G_bj (z_bk - c_jk)
 * contracted over j (gz) or b (gc); its partial derivatives:
 *   gz: dG_bj = 2 sum_k H_bk (z_bk - c_jk), dz_bk = 2 H_bk sum_j G_bj,
 *       dc_jk = -2 sum_b G_bj H_bk;
 *   gc: dG_bj = -2 sum_k H_jk (z_bk - c_jk), dz_bk = -2 sum_j G_bj H_jk,
 *       dc_jk = 2 H_jk sum_b G_bj.
 * dG is again a sum of differences (no cancellation); all in double. */
static void sqdist_grad_backward(struct graph *g, struct graph_node *n,
				 bool is_gz)
{
	struct tensor *tG = graph_input_grad(g, n, 0);
	struct tensor *tz = graph_input_grad(g, n, 1);
	struct tensor *tc = graph_input_grad(g, n, 2);
	const vb_real *G = n->in[0]->value.data, *z = n->in[1]->value.data;
	const vb_real *c = n->in[2]->value.data, *H = n->grad.data;
	size_t B = n->in[0]->value.shape[0], N = n->in[0]->value.shape[1];
	size_t d = n->in[1]->value.shape[1];
	double s = is_gz ? 2 : -2;
	/* rs (B), cs (N): row and column sums of G; az (B, d), ac (N, d):
	 * the G H contractions of dz (gc) and dc (gz) */
	double *rs = op_impl_scratch(g, "linalg", (B + N) * (d + 1) + 1, 1,
				     sizeof(double));
	double *cs, *az, *ac;
	if (!rs)
		return;
	cs = rs + B;
	az = cs + N;
	ac = az + B * d;
	memset(rs, 0, (B + N) * (d + 1) * sizeof(double));
	for (size_t b = 0; b < B; b++)
		for (size_t j = 0; j < N; j++) {
			const vb_real *zb = z + b * d, *cj = c + j * d;
			const vb_real *h = is_gz ? H + b * d : H + j * d;
			double w = G[b * N + j], acc = 0;
			rs[b] += w;
			cs[j] += w;
			for (size_t k = 0; k < d; k++)
				acc += (double)h[k] *
				       ((double)zb[k] - (double)cj[k]);
			if (tG)
				tG->data[b * N + j] += (vb_real)(s * acc);
			if (is_gz && tc) /* ac_jk += G_bj H_bk */
				for (size_t k = 0; k < d; k++)
					ac[j * d + k] += w * h[k];
			if (!is_gz && tz) /* az_bk += G_bj H_jk */
				for (size_t k = 0; k < d; k++)
					az[b * d + k] += w * h[k];
		}
	if (tz)
		for (size_t b = 0; b < B; b++)
			for (size_t k = 0; k < d; k++)
				tz->data[b * d + k] += (vb_real)(
					is_gz ? 2 * rs[b] * H[b * d + k]
					      : -2 * az[b * d + k]);
	if (tc)
		for (size_t j = 0; j < N; j++)
			for (size_t k = 0; k < d; k++)
				tc->data[j * d + k] += (vb_real)(
					is_gz ? -2 * ac[j * d + k]
					      : 2 * cs[j] * H[j * d + k]);
}

static void sqdist_gz_backward(struct graph *g, struct graph_node *n)
{
	sqdist_grad_backward(g, n, true);
}

static void sqdist_gc_backward(struct graph *g, struct graph_node *n)
{
	sqdist_grad_backward(g, n, false);
}

/* Third order: the same partial derivatives from matmul and row sums
 * (the dG terms in the expanded form; differences of large values lose
 * relative precision there, acceptable for a third derivative). */
static void sqdist_gz_vjp(struct graph *g, struct graph_node *n,
			  struct graph_node *H, struct graph_node **gin)
{
	struct graph_node *G = n->in[0], *z = n->in[1], *c = n->in[2];
	size_t N = G->value.shape[1];
	if (graph_input_active(n, 0)) {
		struct graph_node *hz = op_expand_rows(
			g, "grad.sqdist_gz.G",
			op_sum_rows(g, "grad.sqdist_gz.G",
				    op_mul(g, "grad.sqdist_gz.G", H, z)),
			N);
		gin[0] = op_scale(g, "grad.sqdist_gz.G",
				  op_sub(g, "grad.sqdist_gz.G", hz,
					 op_matmul(g, "grad.sqdist_gz.G", H, c,
						   false, true)),
				  2);
	}
	if (graph_input_active(n, 1))
		gin[1] = op_scale(g, "grad.sqdist_gz.z",
				  op_mul_rows(g, "grad.sqdist_gz.z", H,
					      op_sum_rows(g, "grad.sqdist_gz.z",
							  G)),
				  2);
	if (graph_input_active(n, 2))
		gin[2] = op_scale(g, "grad.sqdist_gz.c",
				  op_matmul(g, "grad.sqdist_gz.c", G, H, true,
					    false),
				  -2);
}

static void sqdist_gc_vjp(struct graph *g, struct graph_node *n,
			  struct graph_node *H, struct graph_node **gin)
{
	struct graph_node *G = n->in[0], *z = n->in[1], *c = n->in[2];
	size_t B = G->value.shape[0];
	if (graph_input_active(n, 0)) {
		struct graph_node *hc = op_repeat_rows(
			g, "grad.sqdist_gc.G",
			op_sum_rows(g, "grad.sqdist_gc.G",
				    op_mul(g, "grad.sqdist_gc.G", H, c)),
			B);
		gin[0] = op_scale(g, "grad.sqdist_gc.G",
				  op_sub(g, "grad.sqdist_gc.G",
					 op_matmul(g, "grad.sqdist_gc.G", z, H,
						   false, true),
					 hc),
				  -2);
	}
	if (graph_input_active(n, 1))
		gin[1] = op_scale(g, "grad.sqdist_gc.z",
				  op_matmul(g, "grad.sqdist_gc.z", G, H, false,
					    false),
				  -2);
	if (graph_input_active(n, 2))
		gin[2] = op_scale(g, "grad.sqdist_gc.c",
				  op_mul_rows(g, "grad.sqdist_gc.c", H,
					      op_sum_cols(g, "grad.sqdist_gc.c",
							  G)),
				  2);
}

static const struct graph_op OP_SQDIST_GZ = {
	"sqdist_gz", sqdist_gz_backward, sqdist_gz_vjp};
static const struct graph_op OP_SQDIST_GC = {
	"sqdist_gc", sqdist_gc_backward, sqdist_gc_vjp};

static struct graph_node *sqdist_grad_node(struct graph *g, bool is_gz,
					   struct graph_node *G,
					   struct graph_node *z,
					   struct graph_node *c)
{
	struct graph_node *in[3] = {G, z, c}, *n;
	size_t B, N, d, rows;
	double *acc;
	if (!G || !z || !c)
		return NULL;
	B = z->value.shape[0];
	N = c->value.shape[0];
	d = z->value.shape[1];
	if (G->value.n != B * N)
		return op_impl_shape_fail(g, "linalg",
					  is_gz ? "sqdist_gz" : "sqdist_gc",
				  "grad.sqdist", G, z);
	rows = is_gz ? B : N;
	n = graph_op_node(g, is_gz ? &OP_SQDIST_GZ : &OP_SQDIST_GC,
			  is_gz ? "grad.sqdist.z" : "grad.sqdist.c", in, 3, 2,
			  (const size_t[2]){rows, d});
	if (!n)
		return NULL;
	acc = op_impl_scratch(g, "linalg", rows * d + 1, 1, sizeof(double));
	if (!acc)
		return NULL;
	memset(acc, 0, rows * d * sizeof(double));
	pair_sums(G->value.data, z->value.data, c->value.data, B, N, d,
		  is_gz ? acc : NULL, is_gz ? NULL : acc);
	for (size_t i = 0; i < rows * d; i++)
		n->value.data[i] = (vb_real)((is_gz ? 2 : -2) * acc[i]);
	return graph_node_done(g, n);
}

static struct graph_node *sqdist_gz(struct graph *g, struct graph_node *G,
				    struct graph_node *z,
				    struct graph_node *c)
{
	return sqdist_grad_node(g, true, G, z, c);
}

static struct graph_node *sqdist_gc(struct graph *g, struct graph_node *G,
				    struct graph_node *z,
				    struct graph_node *c)
{
	return sqdist_grad_node(g, false, G, z, c);
}

/* ------------------------------------------------------------------ */
/* inverse */

static void inverse_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	size_t B = n->value.shape[0], d = n->value.shape[1];
	vb_real *t;
	if (!ga)
		return;
	/* dA = -X^T G X^T, X = A^{-1} (the node's value) */
	t = op_impl_scratch(g, "linalg", B * d * d + 1, 1, sizeof(vb_real));
	if (!t)
		return;
	mm_batch(B, true, false, d, d, d, 1, n->value.data, n->grad.data, t,
		 false);
	mm_batch(B, false, true, d, d, d, -1, t, n->value.data, ga->data,
		 true);
}

static void inverse_vjp(struct graph *g, struct graph_node *n,
			struct graph_node *G, struct graph_node **gin)
{
	if (graph_input_active(n, 0))
		gin[0] = op_neg(g, "grad.inverse",
				linalg_bmm(g, "grad.inverse",
					   linalg_bmm(g, "grad.inverse", n, G,
						      true, false),
					   n, false, true));
}

static const struct graph_op OP_INVERSE = {"inverse", inverse_backward,
					   inverse_vjp};

struct graph_node *linalg_inverse(struct graph *g, const char *name,
				  struct graph_node *a)
{
	struct graph_node *in[1] = {a}, *n;
	size_t B, d;
	vb_real *f;
	double *w;
	int *piv;
	if (!square_in(g, "inverse", name, a, &B, &d))
		return NULL;
	n = graph_op_node(g, &OP_INVERSE, name, in, 1, 3, a->value.shape);
	if (!n)
		return NULL;
	fail_init(n);
	f = op_impl_scratch(g, "linalg", 2 * d * d + 1, 1, sizeof(vb_real));
	w = op_impl_scratch(g, "linalg", d * d + d + 1, 1, sizeof(double));
	piv = op_impl_scratch(g, "linalg", d + 1, 1, sizeof(int));
	if (!f || !w || !piv)
		return NULL;
	for (size_t b = 0; b < B; b++) {
		bool zero;
		memcpy(f, a->value.data + b * d * d, d * d * sizeof(vb_real));
		lu_factor(f, d, piv, f + d * d, w + d * d, &zero);
		if (zero)
			fail_note(n, b);
		inverse_from(f, piv, d, n->value.data + b * d * d, w);
	}
	return graph_node_done(g, n);
}

/* ------------------------------------------------------------------ */
/* logdet */

const char *linalg_logdet_mode_name(enum linalg_logdet_mode mode)
{
	switch (mode) {
	case LINALG_LOGDET_LU:
		return "lu";
	case LINALG_LOGDET_CHOLESKY:
		return "cholesky";
	}
	return "unknown";
}

/* aux of a logdet node that requires grad: the factors of every matrix
 * (LU in place with pivots, or the Cholesky factor). */
struct logdet_aux {
	vb_real *fac; /* (B, d, d) */
	int *piv;     /* (B, d), LU only */
};

static void logdet_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	const struct logdet_aux *x = n->aux;
	size_t B = n->in[0]->value.shape[0], d = n->in[0]->value.shape[1];
	bool lu = n->i[0] == LINALG_LOGDET_LU;
	vb_real *inv;
	double *w;
	if (!ga || !x)
		return;
	inv = op_impl_scratch(g, "linalg", d * d + 1, 1, sizeof(vb_real));
	w = op_impl_scratch(g, "linalg", d * d + 1, 1, sizeof(double));
	if (!inv || !w)
		return;
	/* dA_b += G_b A_b^{-T} */
	for (size_t b = 0; b < B; b++) {
		vb_real G = n->grad.data[b], *gb = ga->data + b * d * d;
		inverse_from(x->fac + b * d * d, lu ? x->piv + b * d : NULL, d,
			     inv, w);
		for (size_t i = 0; i < d; i++)
			for (size_t j = 0; j < d; j++)
				gb[i * d + j] += G * inv[j * d + i];
	}
}

static void logdet_vjp(struct graph *g, struct graph_node *n,
		       struct graph_node *G, struct graph_node **gin)
{
	if (graph_input_active(n, 0))
		gin[0] = op_mul_rows(
			g, "grad.logdet",
			linalg_transpose(g, "grad.logdet",
					 linalg_inverse(g, "grad.logdet",
							n->in[0])),
			G);
}

static const struct graph_op OP_LOGDET = {"logdet", logdet_backward,
					  logdet_vjp};

struct graph_node *linalg_logdet(struct graph *g, const char *name,
				 struct graph_node *a,
				 enum linalg_logdet_mode mode)
{
	struct graph_node *in[1] = {a}, *n;
	struct logdet_aux *x = NULL;
	size_t B, d;
	vb_real *w;
	double *s;
	int *piv;
	if (!a)
		return NULL;
	if (mode != LINALG_LOGDET_LU && mode != LINALG_LOGDET_CHOLESKY)
		return graph_failf(g, VB_ERR_INTERNAL, "linalg: logdet %s: "
				   "mode %d, expected lu or cholesky",
				   name ? name : "", (int)mode);
	if (!square_in(g, "logdet", name, a, &B, &d))
		return NULL;
	n = graph_op_node(g, &OP_LOGDET, name, in, 1, 1, (const size_t[1]){B});
	if (!n)
		return NULL;
	n->i[0] = mode;
	fail_init(n);
	if (n->requires_grad) {
		x = op_impl_scratch(g, "linalg", 1, 1, sizeof *x);
		if (!x)
			return NULL;
		x->fac = op_impl_scratch(g, "linalg", B * d * d + 1, 1,
					 sizeof(vb_real));
		x->piv = op_impl_scratch(g, "linalg", B * d + 1, 1,
					 sizeof(int));
		if (!x->fac || !x->piv)
			return NULL;
		n->aux = x;
	}
	w = op_impl_scratch(g, "linalg", 2 * d * d + 1, 1, sizeof(vb_real));
	s = op_impl_scratch(g, "linalg", d + 1, 1, sizeof(double));
	piv = op_impl_scratch(g, "linalg", d + 1, 1, sizeof(int));
	if (!w || !s || !piv)
		return NULL;
	for (size_t b = 0; b < B; b++) {
		const vb_real *ab = a->value.data + b * d * d;
		vb_real *f = x ? x->fac + b * d * d : w;
		int *p = x ? x->piv + b * d : piv;
		double acc = 0, val;
		if (mode == LINALG_LOGDET_LU) {
			bool zero;
			int sign;
			memcpy(f, ab, d * d * sizeof(vb_real));
			sign = lu_factor(f, d, p, w + d * d, s, &zero);
			for (size_t i = 0; i < d; i++) {
				double u = f[i * d + i];
				if (u < 0)
					sign = -sign;
				acc += log(fabs(u));
			}
			/* torch.logdet: NaN input -> NaN; det == 0 -> -inf;
			 * det < 0 -> NaN */
			if (isnan(acc)) {
				val = acc;
			} else if (zero) {
				val = -INFINITY;
				fail_note(n, b);
			} else if (sign < 0) {
				val = NAN;
				fail_note(n, b);
			} else {
				val = acc;
			}
		} else {
			if (chol_factor(ab, f, d, w + d * d, s)) {
				for (size_t i = 0; i < d; i++)
					acc += log((double)f[i * d + i]);
				val = 2 * acc;
			} else {
				val = NAN;
				fail_note(n, b);
			}
		}
		n->value.data[b] = (vb_real)val;
	}
	return graph_node_done(g, n);
}

/* ------------------------------------------------------------------ */
/* cholesky */

static void cholesky_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	size_t B = n->value.shape[0], d = n->value.shape[1];
	double *S, *Y;
	if (!ga)
		return;
	S = op_impl_scratch(g, "linalg", 2 * d * d + 1, 1, sizeof(double));
	if (!S)
		return;
	Y = S + d * d;
	/* PyTorch's cholesky_backward: P = tril(L^T gL), S = (P + tril(P,
	 * -1)^T) / 2, gA = L^{-T} S L^{-1} (symmetric); all in double,
	 * rounded once into gA. */
	for (size_t b = 0; b < B; b++) {
		const vb_real *L = n->value.data + b * d * d;
		const vb_real *gL = n->grad.data + b * d * d;
		vb_real *gA = ga->data + b * d * d;
		/* P = tril(L^T gL): P_ij = sum_{k >= i} L_ki gL_kj (j <= i),
		 * by rows: P_i,0..i += L_ki gL_k,0..i in increasing k */
		for (size_t i = 0; i < d * d; i++)
			S[i] = 0;
		for (size_t k = 0; k < d; k++)
			for (size_t i = 0; i <= k; i++) {
				double a = L[k * d + i];
				double *si = S + i * d;
				const vb_real *gk = gL + k * d;
				for (size_t j = 0; j <= i; j++)
					si[j] += a * gk[j];
			}
		for (size_t i = 0; i < d; i++) {
			S[i * d + i] *= 0.5;
			for (size_t j = 0; j < i; j++) {
				S[i * d + j] *= 0.5;
				S[j * d + i] = S[i * d + j];
			}
		}
		/* S <- L^{-T} S; Y = S^T; Y <- L^{-T} Y; gA = Y^T */
		rows_upper(L, d, S, d, true);
		for (size_t i = 0; i < d; i++)
			for (size_t j = 0; j < d; j++)
				Y[i * d + j] = S[j * d + i];
		rows_upper(L, d, Y, d, true);
		for (size_t i = 0; i < d; i++)
			for (size_t j = 0; j < d; j++)
				gA[i * d + j] = (vb_real)((double)gA[i * d + j] +
							  Y[j * d + i]);
	}
}

static void cholesky_vjp(struct graph *g, struct graph_node *n,
			 struct graph_node *G, struct graph_node **gin)
{
	size_t B = n->value.shape[0], d = n->value.shape[1];
	struct graph_node *p, *pl, *s, *y, *z;
	if (!graph_input_active(n, 0))
		return;
	p = linalg_bmm(g, "grad.cholesky.p", n, G, true, false);
	pl = linalg_tril_low(g, "grad.cholesky.p", p);
	s = op_scale(g, "grad.cholesky.s",
		     op_add(g, "grad.cholesky.s",
			    linalg_tril(g, "grad.cholesky.s",
					linalg_diag(g, "grad.cholesky.p", p),
					pl),
			    linalg_transpose(
				    g, "grad.cholesky.s",
				    linalg_tril(g, "grad.cholesky.s",
						zeros(g, "grad.cholesky.zero",
						      B, d),
						pl))),
		     0.5);
	y = linalg_solve_tril(g, "grad.cholesky.y", n, s, true);
	z = linalg_solve_tril(g, "grad.cholesky.z", n,
			      linalg_transpose(g, "grad.cholesky.y", y), true);
	gin[0] = linalg_transpose(g, "grad.cholesky", z);
}

static const struct graph_op OP_CHOLESKY = {"cholesky", cholesky_backward,
					    cholesky_vjp};

struct graph_node *linalg_cholesky(struct graph *g, const char *name,
				   struct graph_node *a)
{
	struct graph_node *in[1] = {a}, *n;
	size_t B, d;
	vb_real *t;
	double *col;
	if (!square_in(g, "cholesky", name, a, &B, &d))
		return NULL;
	n = graph_op_node(g, &OP_CHOLESKY, name, in, 1, 3, a->value.shape);
	if (!n)
		return NULL;
	fail_init(n);
	t = op_impl_scratch(g, "linalg", d * d + 1, 1, sizeof(vb_real));
	col = op_impl_scratch(g, "linalg", d + 1, 1, sizeof(double));
	if (!t || !col)
		return NULL;
	for (size_t b = 0; b < B; b++)
		if (!chol_factor(a->value.data + b * d * d,
				 n->value.data + b * d * d, d, t, col))
			fail_note(n, b);
	return graph_node_done(g, n);
}

/* ------------------------------------------------------------------ */
/* solve_tril */

/* x (B, d, k) = l^{-1} b or l^{-T} b, all k columns at once in double,
 * rounded once. */
static bool solve_batch(struct graph *g, const vb_real *l, const vb_real *b,
			vb_real *x, size_t B, size_t d, size_t k, bool trans)
{
	double *w = op_impl_scratch(g, "linalg", d * k + 1, 1, sizeof(double));
	if (!w)
		return false;
	for (size_t q = 0; q < B; q++) {
		const vb_real *lq = l + q * d * d, *bq = b + q * d * k;
		vb_real *xq = x + q * d * k;
		for (size_t i = 0; i < d * k; i++)
			w[i] = bq[i];
		if (trans)
			rows_upper(lq, d, w, k, true);
		else
			rows_lower(lq, d, w, k, false);
		for (size_t i = 0; i < d * k; i++)
			xq[i] = (vb_real)w[i];
	}
	return true;
}

static void solve_tril_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *gl = graph_input_grad(g, n, 0);
	struct tensor *gb = graph_input_grad(g, n, 1);
	size_t B = n->value.shape[0], d = n->value.shape[1];
	size_t k = n->value.shape[2];
	bool trans = n->i[0];
	const vb_real *X = n->value.data;
	vb_real *gbl;
	/* x = l^{-1} b: db = l^{-T} G, dl = -tril(db x^T);
	 * x = l^{-T} b: db = l^{-1} G, dl = -tril(x db^T). */
	gbl = op_impl_scratch(g, "linalg", B * d * k + 1, 1, sizeof(vb_real));
	if (!gbl || !solve_batch(g, n->in[0]->value.data, n->grad.data, gbl,
				 B, d, k, !trans))
		return;
	if (gb)
		for (size_t i = 0; i < B * d * k; i++)
			gb->data[i] += gbl[i];
	if (!gl)
		return;
	for (size_t q = 0; q < B; q++) {
		const vb_real *u = (trans ? X : gbl) + q * d * k;
		const vb_real *w = (trans ? gbl : X) + q * d * k;
		vb_real *o = gl->data + q * d * d;
		for (size_t i = 0; i < d; i++)
			for (size_t j = 0; j <= i; j++) {
				double acc = 0;
				for (size_t c = 0; c < k; c++)
					acc += (double)u[i * k + c] * w[j * k + c];
				o[i * d + j] = (vb_real)((double)o[i * d + j] - acc);
			}
	}
}

static void solve_tril_vjp(struct graph *g, struct graph_node *n,
			   struct graph_node *G, struct graph_node **gin)
{
	bool trans = n->i[0];
	struct graph_node *gbl, *q;
	if (!graph_input_active(n, 0) && !graph_input_active(n, 1))
		return;
	gbl = linalg_solve_tril(g, "grad.solve_tril.b", n->in[0], G, !trans);
	if (graph_input_active(n, 1))
		gin[1] = gbl;
	if (!graph_input_active(n, 0))
		return;
	q = trans ? linalg_bmm(g, "grad.solve_tril.l", n, gbl, false, true)
		  : linalg_bmm(g, "grad.solve_tril.l", gbl, n, false, true);
	gin[0] = op_neg(g, "grad.solve_tril.l",
			linalg_tril(g, "grad.solve_tril.l",
				    linalg_diag(g, "grad.solve_tril.l", q),
				    linalg_tril_low(g, "grad.solve_tril.l", q)));
}

static const struct graph_op OP_SOLVE_TRIL = {
	"solve_tril", solve_tril_backward, solve_tril_vjp};

struct graph_node *linalg_solve_tril(struct graph *g, const char *name,
				     struct graph_node *l, struct graph_node *b,
				     bool trans)
{
	struct graph_node *in[2] = {l, b}, *n;
	size_t B, d, k;
	if (!l || !b)
		return NULL;
	if (!batch_square(l) || b->value.ndim != 3 ||
	    b->value.shape[0] != l->value.shape[0] ||
	    b->value.shape[1] != l->value.shape[1])
		return op_impl_shape_fail(g, "linalg", "solve_tril", name, l,
					  b);
	B = b->value.shape[0];
	d = b->value.shape[1];
	k = b->value.shape[2];
	n = graph_op_node(g, &OP_SOLVE_TRIL, name, in, 2, 3, b->value.shape);
	if (!n)
		return NULL;
	n->i[0] = trans;
	if (!solve_batch(g, l->value.data, b->value.data, n->value.data, B, d,
			 k, trans))
		return NULL;
	return graph_node_done(g, n);
}

/* ------------------------------------------------------------------ */

static bool records_failures(const struct graph_node *n)
{
	return n && (n->op == &OP_INVERSE || n->op == &OP_LOGDET ||
		     n->op == &OP_CHOLESKY);
}

long linalg_fail_count(const struct graph_node *n)
{
	return records_failures(n) ? n->i[LINALG_I_FAIL_COUNT] : 0;
}

long linalg_fail_first(const struct graph_node *n)
{
	return records_failures(n) ? n->i[LINALG_I_FAIL_FIRST] : -1;
}
