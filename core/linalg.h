/* linalg: batched small-matrix ops on the tape for the RHVAE metric
 * (rhvae.md 2.3, 4.2): tril packing, batched products and transposes,
 * pairwise squared distances, the kernel metric A(z), LU inverse and
 * log-determinant, Cholesky and triangular solves. Matrices come in
 * batches, (B, d, d) tensors (d = 16 in practice, any d works). Each op
 * follows ops.h: eager value, named node, fused backward (+=) and, unless
 * said otherwise, a vjp built from differentiable ops so that gradients
 * taken with create_graph can be differentiated again. NULL in, NULL out;
 * shape errors go to the graph's sticky error. */
#ifndef VB_CORE_LINALG_H
#define VB_CORE_LINALG_H

#include <stdbool.h>
#include <stddef.h>

#include "graph.h"

/* Factorization failures. A NaN from a failed factorization is a result,
 * not an error (STYLE.md 5): the ops that factor (inverse, logdet,
 * cholesky) never fail the graph for it; they record on their node
 * n->i[LINALG_I_FAIL_COUNT] = number of failed matrices of the batch and
 * n->i[LINALG_I_FAIL_FIRST] = batch index of the first one (-1 if none).
 * What counts as a failure is stated at each op. */
#define LINALG_I_FAIL_COUNT 2
#define LINALG_I_FAIL_FIRST 3

/* Failure count / first failed batch index of a node made by
 * linalg_inverse, linalg_logdet or linalg_cholesky; 0 / -1 for any other
 * node (and for NULL). */
long linalg_fail_count(const struct graph_node *n);
long linalg_fail_first(const struct graph_node *n);

/* ---- structure ---- */

/* L (B, d, d): diag (B, d) on the diagonal, low (B, d(d-1)/2) in the
 * strictly lower part filled row by row, (1,0), (2,0), (2,1), (3,0), ...
 * (torch.tril_indices(d, d, -1) order, pythae's metric network), zeros
 * above. Exact (copies). */
struct graph_node *linalg_tril(struct graph *g, const char *name,
			       struct graph_node *diag, struct graph_node *low);

/* The inverse pair of linalg_tril: a (B, d, d) -> its diagonal (B, d), and
 * its strictly lower part packed in the same order (B, d(d-1)/2). The
 * upper triangle is ignored. Exact. */
struct graph_node *linalg_diag(struct graph *g, const char *name,
			       struct graph_node *a);
struct graph_node *linalg_tril_low(struct graph *g, const char *name,
				   struct graph_node *a);

/* a (B, m, n) -> a^T per matrix (B, n, m). Exact. */
struct graph_node *linalg_transpose(struct graph *g, const char *name,
				    struct graph_node *a);

/* a (B, d, d) -> a + lambda I per matrix (one rounding per diagonal
 * entry, in vb_real). */
struct graph_node *linalg_add_identity(struct graph *g, const char *name,
				       struct graph_node *a, double lambda);

/* a (B, d, d) -> trace per matrix (B), summed in double. */
struct graph_node *linalg_trace(struct graph *g, const char *name,
				struct graph_node *a);

/* ---- products ---- */

/* op(a_b) op(b_b) for every batch item b, op = transpose when ta / tb:
 * a (B, m, k) or (B, k, m) when ta, b (B, k, n) or (B, n, k) when tb
 * -> (B, m, n). A mat-vec is n = 1 (reshape the vector to (B, k, 1)).
 * a and b may be the same node (L L^T: linalg_bmm(g, "m", l, l, false,
 * true)). One cblas ?gemm call per matrix, sums in vb_real (faster at
 * d = 16 than double-accumulating loops; timings in linalg.c). */
struct graph_node *linalg_bmm(struct graph *g, const char *name,
			      struct graph_node *a, struct graph_node *b,
			      bool ta, bool tb);

/* ---- distances (the kernel metric built on them is models/metric.h) ---- */

/* z (B, d), c (N, d) -> (B, N): ||z_b - c_j||^2 as a direct sum of squared
 * differences in double (never |z|^2 - 2 z.c + |c|^2, which cancels for
 * nearby points; rhvae.md 4.2). Gradients with respect to z and c; the
 * vjp uses two dedicated ops (sum_j G_bj (z_b - c_j) and its transpose,
 * also computed from differences), whose own vjp is built from matmul and
 * row sums (third order only). */
struct graph_node *linalg_sqdist(struct graph *g, const char *name,
				 struct graph_node *z, struct graph_node *c);

/* ---- inverse, determinant, Cholesky ---- */

/* a (B, d, d) -> a^{-1} per matrix (B, d, d) by LU with partial pivoting
 * (factors in vb_real, each entry's sum in double rounded once; the
 * substitutions in double, every entry of the inverse rounded once). A
 * singular matrix (an exactly zero pivot; PyTorch raises there) gives
 * inf/NaN entries and counts as a failure. Backward: -A^{-T} G A^{-T};
 * the vjp uses bmm and the inverse node itself. */
struct graph_node *linalg_inverse(struct graph *g, const char *name,
				  struct graph_node *a);

enum linalg_logdet_mode {
	/* torch.logdet: LU with partial pivoting; the sign of the
	 * determinant comes from the pivots and the diagonal; det < 0 gives
	 * NaN, det == 0 gives -inf (both count as failures; a matrix with
	 * NaN entries gives NaN and does not count). */
	LINALG_LOGDET_LU,
	/* 2 sum log diag(L), L the Cholesky factor of the lower triangle; a
	 * matrix that is not numerically positive definite (a pivot <= 0 or
	 * NaN, LAPACK potrf's info > 0) gives NaN and counts as a failure. */
	LINALG_LOGDET_CHOLESKY
};

/* Stable lowercase name: "lu", "cholesky" ("unknown" otherwise). */
const char *linalg_logdet_mode_name(enum linalg_logdet_mode mode);

/* a (B, d, d) -> log det a_b (B). Factors in vb_real with dot products in
 * double; the log sum in double. Backward: G_b A_b^{-T} (from the stored
 * factors; in Cholesky mode the symmetric gradient A^{-1}, as PyTorch,
 * meant for symmetric a). vjp: mul_rows(transpose(inverse(a)), G), built
 * from linalg_inverse, so second order works in both modes. */
struct graph_node *linalg_logdet(struct graph *g, const char *name,
				 struct graph_node *a,
				 enum linalg_logdet_mode mode);

/* a (B, d, d) -> lower Cholesky factor L (B, d, d), a = L L^T, zeros
 * above the diagonal; reads only the lower triangle of a (LAPACK potrf
 * 'L'). A matrix that is not numerically positive definite (pivot <= 0 or
 * NaN) gives an all-NaN factor and counts as a failure. Entries are dot
 * products summed in double, rounded once. Backward: PyTorch's
 * cholesky_backward (Murray 2016), the symmetric gradient
 * L^{-T} Phi(L^T G) L^{-1} symmetrised, meant for symmetric a; the vjp
 * rebuilds it from bmm, tril, transpose and linalg_solve_tril, so it is
 * differentiable. */
struct graph_node *linalg_cholesky(struct graph *g, const char *name,
				   struct graph_node *a);

/* Triangular solve with the lower triangle of l (B, d, d) (diagonal
 * included, upper part ignored): x = l^{-1} b by forward substitution, or
 * x = l^{-T} b by back substitution when trans; b (B, d, k) -> (B, d, k).
 * Sums in double. A zero diagonal entry gives inf/NaN. The gradient with
 * respect to l is lower-triangular (only that part is read). Has a vjp. */
struct graph_node *linalg_solve_tril(struct graph *g, const char *name,
				     struct graph_node *l, struct graph_node *b,
				     bool trans);

#endif
