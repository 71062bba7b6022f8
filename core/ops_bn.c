/* ops_bn: batch normalisation over axis 1 of (B, C) or (B, C, H, W) as
 * PyTorch's BatchNorm1d/2d (batch statistics with the running-statistics
 * update, or running statistics), and op_sqrt. Batch statistics are one
 * fused op ("batch_norm") whose vjp rebuilds the gradient from ops that
 * have their own backward; running-statistics mode is built from such ops
 * directly. Where the running buffers live is the caller's business. */
#include "ops.h"
#include "op_impl.h"

#include <math.h>
#include <string.h>

#ifdef VB_DOUBLE
#define R_SQRT sqrt
#else
#define R_SQRT sqrtf
#endif

/* ---- sqrt ---- */

static void sqrt_backward(struct graph *g, struct graph_node *n)
{
	struct tensor *ga = graph_input_grad(g, n, 0);
	const vb_real *y = n->value.data, *G = n->grad.data;
	if (!ga)
		return;
	/* d sqrt(x) = 1 / (2 sqrt(x)), as PyTorch: infinite at x = 0 */
	for (size_t i = 0; i < n->value.n; i++)
		ga->data[i] += G[i] / (2 * y[i]);
}

static void sqrt_vjp(struct graph *g, struct graph_node *n,
		     struct graph_node *G, struct graph_node **gin)
{
	if (graph_input_active(n, 0))
		gin[0] = op_div(g, "grad.sqrt", op_scale(g, "grad.sqrt.half",
							 G, 0.5),
				n);
}

static const struct graph_op OP_SQRT = {"sqrt", sqrt_backward, sqrt_vjp};

struct graph_node *op_sqrt(struct graph *g, const char *name,
			   struct graph_node *a)
{
	struct graph_node *in[1] = {a}, *n;
	if (!a)
		return NULL;
	n = graph_op_node(g, &OP_SQRT, name, in, 1, a->value.ndim,
			  a->value.shape);
	if (!n)
		return NULL;
	for (size_t i = 0; i < n->value.n; i++)
		n->value.data[i] = R_SQRT(a->value.data[i]);
	return graph_node_done(g, n);
}

/* ---- batch norm ---- */

/* Per-channel statistics kept for the fused backward (arena). */
struct bn_aux {
	double *mean; /* (C) */
	double *rstd; /* (C) 1 / sqrt(var + eps) */
};

static size_t bn_plane(const struct tensor *t)
{
	size_t bc = t->shape[0] * t->shape[1];
	return bc > 0 ? t->n / bc : 0;
}

static void bn_backward(struct graph *g, struct graph_node *n)
{
	const struct bn_aux *aux = n->aux;
	const struct tensor *xt = &n->in[0]->value;
	const vb_real *x = xt->data, *G = n->grad.data;
	const vb_real *gam = n->in[1]->value.data;
	struct tensor *gx = graph_input_grad(g, n, 0);
	struct tensor *gg = graph_input_grad(g, n, 1);
	struct tensor *gb = graph_input_grad(g, n, 2);
	size_t B = xt->shape[0], C = xt->shape[1], P = bn_plane(xt);
	double N = (double)(B * P);
	/* accumulates (+=) into x, gamma and beta:
	 * dx = gamma rstd / N (N G - sum G - xhat sum G xhat) */
	for (size_t c = 0; c < C; c++) {
		double sg = 0, sgx = 0, m = aux->mean[c], r = aux->rstd[c];
		for (size_t b = 0; b < B; b++) {
			size_t o = (b * C + c) * P;
			for (size_t i = 0; i < P; i++) {
				sg += G[o + i];
				sgx += G[o + i] * ((x[o + i] - m) * r);
			}
		}
		if (gb)
			gb->data[c] += (vb_real)sg;
		if (gg)
			gg->data[c] += (vb_real)sgx;
		if (!gx)
			continue;
		double k = (double)gam[c] * r / N;
		for (size_t b = 0; b < B; b++) {
			size_t o = (b * C + c) * P;
			for (size_t i = 0; i < P; i++) {
				double xh = (x[o + i] - m) * r;
				gx->data[o + i] += (vb_real)(
					k * (N * G[o + i] - sg - xh * sgx));
			}
		}
	}
}

/* xhat of x with batch statistics, from differentiable ops; *rstd gets
 * the (C) node 1 / sqrt(var + eps). */
static struct graph_node *bn_xhat(struct graph *g, struct graph_node *x,
				  double eps, struct graph_node **rstd)
{
	const struct tensor *t = &x->value;
	size_t C = t->shape[1], cs[1] = {C};
	double N = (double)(t->shape[0] * bn_plane(t));
	struct graph_node *mean, *xc, *var;
	mean = op_scale(g, "bn.mean", op_sum_channels(g, "bn.sum", x),
			1.0 / N);
	xc = op_sub(g, "bn.center", x,
		    op_expand_channels(g, "bn.mean.e", mean, t->ndim,
				       t->shape));
	var = op_scale(g, "bn.var",
		       op_sum_channels(g, "bn.sumsq",
				       op_square(g, "bn.sq", xc)),
		       1.0 / N);
	*rstd = op_div(g, "bn.rstd", op_full(g, "bn.one", 1, cs, 1.0),
		       op_sqrt(g, "bn.std",
			       op_add_scalar(g, "bn.var_eps", var, eps)));
	return op_mul(g, "bn.xhat", xc,
		      op_expand_channels(g, "bn.rstd.e", *rstd, t->ndim,
					 t->shape));
}

static void bn_vjp(struct graph *g, struct graph_node *n,
		   struct graph_node *G, struct graph_node **gin)
{
	struct graph_node *x = n->in[0], *gam = n->in[1], *rstd, *xhat;
	struct graph_node *sg, *sgx;
	const struct tensor *t = &x->value;
	double N = (double)(t->shape[0] * bn_plane(t));
	int nd = t->ndim;
	const size_t *sh = t->shape;
	xhat = bn_xhat(g, x, n->f[0], &rstd);
	sg = op_sum_channels(g, "grad.bn.beta", G);
	sgx = op_sum_channels(g, "grad.bn.gamma",
			      op_mul(g, "grad.bn.g_xhat", G, xhat));
	if (graph_input_active(n, 2))
		gin[2] = sg;
	if (graph_input_active(n, 1))
		gin[1] = sgx;
	if (!graph_input_active(n, 0))
		return;
	gin[0] = op_mul(
		g, "grad.bn.x",
		op_expand_channels(g, "grad.bn.k.e",
				   op_scale(g, "grad.bn.k",
					    op_mul(g, "grad.bn.gr", gam, rstd),
					    1.0 / N),
				   nd, sh),
		op_sub(g, "grad.bn.inner",
		       op_sub(g, "grad.bn.ng", op_scale(g, "grad.bn.nG", G, N),
			      op_expand_channels(g, "grad.bn.sg.e", sg, nd,
						 sh)),
		       op_mul(g, "grad.bn.xs", xhat,
			      op_expand_channels(g, "grad.bn.sgx.e", sgx, nd,
						 sh))));
}

static const struct graph_op OP_BATCH_NORM = {"batch_norm", bn_backward,
					      bn_vjp};

static struct graph_node *bn_fail(struct graph *g, const char *name,
				  const struct graph_node *x,
				  const struct graph_node *gam,
				  const struct graph_node *bet,
				  const char *what)
{
	char xs[64], gs[64], bs[64];
	return graph_failf(g, VB_ERR_SHAPE,
			   "ops: batch_norm %s: x %s, weight %s, bias %s: %s",
			   name, op_impl_shp(x, xs, sizeof xs),
			   op_impl_shp(gam, gs, sizeof gs),
			   op_impl_shp(bet, bs, sizeof bs), what);
}

/* Training-mode statistics: the fused node, plus the running update. */
static struct graph_node *bn_batch(struct graph *g, const char *name,
				   struct graph_node *x,
				   struct graph_node *gam,
				   struct graph_node *bet,
				   const struct op_bn_settings *s,
				   struct op_bn_running *run)
{
	struct graph_node *in[3] = {x, gam, bet}, *n;
	const struct tensor *t = &x->value;
	size_t B = t->shape[0], C = t->shape[1], P = bn_plane(t);
	double N = (double)(B * P);
	struct bn_aux *aux;
	n = graph_op_node(g, &OP_BATCH_NORM, name, in, 3, t->ndim, t->shape);
	if (!n)
		return NULL;
	aux = graph_alloc(g, sizeof *aux);
	if (aux) {
		aux->mean = graph_alloc(g, C * sizeof *aux->mean);
		aux->rstd = graph_alloc(g, C * sizeof *aux->rstd);
	}
	if (!aux || !aux->mean || !aux->rstd)
		return NULL;
	n->aux = aux;
	n->f[0] = s->eps;
	for (size_t c = 0; c < C; c++) {
		double sum = 0, ss = 0, m, var, r;
		for (size_t b = 0; b < B; b++) {
			const vb_real *p = t->data + (b * C + c) * P;
			for (size_t i = 0; i < P; i++)
				sum += p[i];
		}
		m = sum / N;
		for (size_t b = 0; b < B; b++) {
			const vb_real *p = t->data + (b * C + c) * P;
			for (size_t i = 0; i < P; i++)
				ss += (p[i] - m) * (p[i] - m);
		}
		var = ss / N; /* biased: what the batch is normalised with */
		r = 1.0 / sqrt(var + s->eps);
		aux->mean[c] = m;
		aux->rstd[c] = r;
		for (size_t b = 0; b < B; b++) {
			size_t o = (b * C + c) * P;
			for (size_t i = 0; i < P; i++)
				n->value.data[o + i] = (vb_real)(
					(t->data[o + i] - m) * r *
						gam->value.data[c] +
					bet->value.data[c]);
		}
		if (run && s->update_running) {
			/* PyTorch stores the unbiased variance: ss / (N - 1),
			 * 0 / 0 = NaN for a single value per channel (PyTorch
			 * refuses that input in training mode; here it is
			 * what the NaN study measures). */
			double uv = ss / (N - 1);
			run->mean[c] = (vb_real)((1 - s->momentum) *
							 run->mean[c] +
						 s->momentum * m);
			run->var[c] = (vb_real)((1 - s->momentum) *
							run->var[c] +
						s->momentum * uv);
		}
	}
	if (run && s->update_running && run->n_tracked)
		(*run->n_tracked)++;
	return graph_node_done(g, n);
}

/* Running-statistics mode from differentiable ops:
 * y = (x - rm) * (gamma / sqrt(rv + eps)) + beta. */
static struct graph_node *bn_running(struct graph *g, const char *name,
				     struct graph_node *x,
				     struct graph_node *gam,
				     struct graph_node *bet,
				     const struct op_bn_settings *s,
				     const struct op_bn_running *run)
{
	const struct tensor *t = &x->value;
	size_t C = t->shape[1];
	struct graph_node *rm, *rv, *a;
	graph_push_scope(g, name);
	rm = graph_const(g, "running_mean", tensor_view1(run->mean, C));
	rv = graph_const(g, "running_var", tensor_view1(run->var, C));
	a = op_div(g, "scale", gam,
		   op_sqrt(g, "std", op_add_scalar(g, "var_eps", rv, s->eps)));
	x = op_add(g, "out",
		   op_mul(g, "norm",
			  op_sub(g, "center", x,
				 op_expand_channels(g, "mean.e", rm, t->ndim,
						    t->shape)),
			  op_expand_channels(g, "scale.e", a, t->ndim,
					     t->shape)),
		   op_expand_channels(g, "bias.e", bet, t->ndim, t->shape));
	graph_pop_scope(g);
	return x;
}

struct graph_node *op_batch_norm(struct graph *g, const char *name,
				 struct graph_node *x, struct graph_node *gamma,
				 struct graph_node *beta,
				 const struct op_bn_settings *s,
				 struct op_bn_running *run)
{
	if (!x || !gamma || !beta)
		return NULL;
	if (x->value.ndim < 2 || gamma->value.ndim != 1 ||
	    beta->value.ndim != 1 || gamma->value.n != x->value.shape[1] ||
	    beta->value.n != x->value.shape[1] || x->value.n == 0)
		return bn_fail(g, name, x, gamma, beta,
			       "expected x (B, C, ...), weight and bias (C)");
	if (run && (!run->mean || !run->var))
		return bn_fail(g, name, x, gamma, beta,
			       "running statistics without buffers");
	if (!s->batch_stats && !run)
		return bn_fail(g, name, x, gamma, beta,
			       "running-statistics mode without buffers");
	if (s->batch_stats)
		return bn_batch(g, name, x, gamma, beta, s, run);
	return bn_running(g, name, x, gamma, beta, s, run);
}
