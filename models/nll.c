/* nll: model.h's held-out measures (issue 15 item 1): reconstruction
 * error at the encoder mean and pythae 0.1.2's importance-sampled
 * get_nll for the vae (and anchor, a VAE with a regulariser), rhvae and
 * hvae. Forwards come from the models; the log-weights, the chunking and
 * the log-sum-exp are here, in double. */
#include "model.h"

#include <math.h>
#include <string.h>

#include "arch.h"
#include "hvae.h"
#include "vae.h"

#define NLL_LOG_2PI 1.8378770664093454836

/* Parameter nodes on a freshly reset g, BatchNorm in evaluation mode. */
static enum vb_status begin(struct model *m, struct graph *g,
			    struct vb_error *err)
{
	graph_reset(g);
	if (m->buffers)
		m->buffers->training = false;
	m->pnodes = graph_alloc(g, m->params->n_entries * sizeof *m->pnodes);
	if (!m->pnodes)
		return vb_fail(err, graph_status(g), "%s", graph_error(g)->msg);
	return params_nodes(m->params, g, m->pnodes);
}

static enum vb_status graph_err(struct graph *g, struct vb_error *err)
{
	if (graph_status(g) != VB_OK)
		return vb_fail(err, graph_status(g), "%s", graph_error(g)->msg);
	return VB_OK;
}

/* PyTorch's binary_cross_entropy of one pixel in double, NaN outside
 * [0, 1] (where PyTorch raises). */
static double bce_pixel(double y, double t, double log_clamp)
{
	if (!(y >= 0 && y <= 1))
		return NAN;
	return -(t * fmax(log(y), log_clamp) +
		 (1 - t) * fmax(log1p(-y), log_clamp));
}

enum vb_status model_recon_error(struct model *m, struct graph *g,
				 const vb_real *x, size_t n_batch,
				 double *sse, double *bce,
				 struct vb_error *err)
{
	size_t D = m->cfg.n_rows * m->cfg.n_cols;
	size_t xs[2] = {n_batch, D};
	struct graph_node *xn, *y = NULL;
	enum vb_status st;
	if (n_batch == 0)
		return vb_fail(err, VB_ERR_CONFIG,
			       "model: recon error of 0 images");
	graph_reset(g);
	xn = graph_input(g, "input", tensor_view((vb_real *)x, 2, xs), false);
	if (!xn)
		return graph_err(g, err);
	bool old = graph_set_grad_enabled(g, false);
	st = model_reconstruct(m, g, xn, &y, err);
	graph_set_grad_enabled(g, old);
	if (st)
		return st;
	for (size_t b = 0; b < n_batch; b++) {
		const vb_real *yb = y->value.data + b * D, *xb = x + b * D;
		double s = 0, c = 0;
		for (size_t p = 0; p < D; p++) {
			double dy = (double)yb[p] - (double)xb[p];
			s += dy * dy;
			c += bce_pixel(yb[p], xb[p], m->cfg.bce_log_clamp);
		}
		if (sse)
			sse[b] = s;
		if (bce)
			bce[b] = c;
	}
	return VB_OK;
}

size_t model_nll_pythae_samples(size_t n_samples, size_t batch_size)
{
	size_t full = n_samples <= batch_size ? 1 : n_samples / batch_size;
	return batch_size * full;
}

/* log q(z0 | x) without its 2 pi term, pythae's form:
 * -0.5 sum_k (logvar + (z0 - mu)^2 / exp(logvar)). */
static double log_q(const struct model_out *o, size_t i, size_t d)
{
	const vb_real *z = o->z0 ? o->z0->value.data : o->z->value.data;
	double acc = 0;
	for (size_t k = 0; k < d; k++) {
		double lv = o->logvar->value.data[i * d + k];
		double dz = (double)z[i * d + k] - o->mu->value.data[i * d + k];
		acc += lv + dz * dz / exp(lv);
	}
	return -0.5 * acc;
}

static double half_sq(const vb_real *v, size_t n)
{
	double acc = 0;
	for (size_t k = 0; k < n; k++)
		acc += (double)v[k] * v[k];
	return 0.5 * acc;
}

/* sum_p (y_p - x_p)^2 in double, in pixel order. */
static double sq_dist(const vb_real *y, const vb_real *x, size_t D)
{
	double acc = 0;
	for (size_t p = 0; p < D; p++) {
		double dy = (double)y[p] - x[p];
		acc += dy * dy;
	}
	return acc;
}

/* log p(x | y) of pythae's get_nll for the vae and rhvae: mse with its
 * -(D/2) log 2 pi, or the clamped BCE. */
static double log_px(const struct model *m, const vb_real *y,
		     const vb_real *x, size_t D)
{
	double acc = 0;
	if (m->cfg.recon == MODEL_RECON_MSE)
		return -0.5 * sq_dist(y, x, D) - 0.5 * (double)D * NLL_LOG_2PI;
	for (size_t p = 0; p < D; p++)
		acc += bce_pixel(y[p], x[p], m->cfg.bce_log_clamp);
	return -acc;
}

/* The HVAE's _log_p_x_given_z: mse without 2 pi, or Bernoulli(logits). */
static double log_px_hvae(const struct model *m, const vb_real *l,
			  const vb_real *x, size_t D)
{
	double acc = 0;
	if (m->cfg.recon == MODEL_RECON_MSE)
		return -0.5 * sq_dist(l, x, D);
	for (size_t p = 0; p < D; p++) {
		double v = l[p];
		acc += fmax(v, 0) - v * x[p] + log1p(exp(-fabs(v)));
	}
	return -acc;
}

/* log w of sample i of one chunk from the forward's values. */
static double log_weight(const struct model *m, const struct model_out *o,
			 const vb_real *x, size_t i)
{
	size_t d = m->cfg.n_latent, D = m->cfg.n_rows * m->cfg.n_cols;
	const vb_real *y = o->y->value.data + i * D;
	const vb_real *z = o->z->value.data + i * d;
	double lq = log_q(o, i, d);
	if (m->cfg.kind == MODEL_KIND_HVAE) {
		const vb_real *rho = o->rho->value.data + i * d;
		double b = (double)hvae_beta_zero_sqrt(m);
		double k = half_sq(rho, d);
		if (m->cfg.nll_consistent) {
			/* gamma = b rho_0 (rho0_noise holds gamma / b) */
			const vb_real *u = o->rho0_noise->value.data + i * d;
			double g2 = 0;
			for (size_t c = 0; c < d; c++) {
				double gc = (double)u[c] * b;
				g2 += gc * gc;
			}
			double px = log_px_hvae(m, y, x, D);
			if (m->cfg.recon == MODEL_RECON_MSE)
				px -= 0.5 * (double)D * NLL_LOG_2PI;
			return px - half_sq(z, d) - k + 0.5 * g2 - lq;
		}
		/* pythae: log_p_rho0 = -0.5 |rho_K|^2 * beta_zero_sqrt */
		return log_px_hvae(m, y, x, D) - half_sq(z, d) - k + b * k - lq;
	}
	double lw = log_px(m, y, x, D) - half_sq(z, d) - lq;
	if (m->cfg.kind != MODEL_KIND_RHVAE)
		return lw;
	/* log p(rho_K) under N(0, G(z_K)), G = A^-1 */
	const vb_real *rho = o->rho->value.data + i * d;
	const vb_real *A = o->metric->value.data + i * d * d;
	double q = 0;
	for (size_t r = 0; r < d; r++)
		for (size_t c = 0; c < d; c++)
			q += (double)rho[r] * A[r * d + c] * rho[c];
	double lp_rho = -0.5 * q + 0.5 * o->logdet_metric->value.data[i] -
			0.5 * (double)d * NLL_LOG_2PI;
	/* log p(rho_0): log N(gamma; 0, I) - log det(F / b), gamma = u b */
	double b = m->cfg.quirk_beta_sqrt ? (double)(vb_real)m->cfg.beta_zero
					  : (double)(vb_real)sqrt(
						    m->cfg.beta_zero);
	const vb_real *u = o->rho0_noise->value.data + i * d;
	const vb_real *F = o->rho0_factor->value.data + i * d * d;
	double g2 = 0, ld = 0;
	for (size_t k = 0; k < d; k++) {
		double gk = (double)u[k] * b;
		g2 += gk * gk;
		ld += log((double)F[k * d + k] / b);
	}
	double lp_rho0 = -0.5 * g2 - 0.5 * (double)d * NLL_LOG_2PI - ld;
	/* consistent: the tempering's Jacobian b^d, which pythae omits */
	double jac = m->cfg.nll_consistent ? (double)d * log(b) : 0;
	return lw + lp_rho - lp_rho0 + jac;
}

/* Running log-sum-exp of log-weights: mx and acc = sum exp(lw - mx). */
struct nll_lse {
	double mx, acc;
	bool nan;
};

static void lse_add(struct nll_lse *l, double lw)
{
	if (isnan(lw)) {
		l->nan = true;
	} else if (lw > l->mx) {
		/* exp(-inf - finite) = 0 rescales an empty sum; +inf stays */
		l->acc = (isinf(lw) ? 0 : l->acc * exp(l->mx - lw)) + 1;
		l->mx = lw;
	} else if (lw > -INFINITY) {
		l->acc += exp(lw - l->mx);
	}
}

/* One chunk: n copies of image x through the forward of get_nll; the
 * first keep log-weights (keep <= n) enter l. */
static enum vb_status nll_chunk(struct model *m, struct graph *g,
				const vb_real *x, size_t n, size_t keep,
				struct rng *r, struct nll_lse *l,
				struct vb_error *err)
{
	size_t D = m->cfg.n_rows * m->cfg.n_cols, xs[2] = {n, D};
	struct model_out o;
	enum vb_status st;
	memset(&o, 0, sizeof o);
	if (m->cfg.kind == MODEL_KIND_HVAE) {
		st = begin(m, g, err);
		struct tensor t = graph_tensor(g, 2, xs);
		if (st == VB_OK && !t.data)
			st = graph_err(g, err);
		for (size_t s = 0; st == VB_OK && s < n; s++)
			memcpy(t.data + s * D, x, D * sizeof *x);
		if (st == VB_OK)
			st = hvae_build_nll_forward(
				m, g, graph_input(g, "input", t, false), r, &o,
				err);
	} else {
		graph_reset(g);
		struct tensor t = graph_tensor(g, 2, xs);
		if (!t.data)
			return graph_err(g, err);
		for (size_t s = 0; s < n; s++)
			memcpy(t.data + s * D, x, D * sizeof *x);
		st = model_build_loss(m, g, graph_input(g, "input", t, false),
				      r, false, &o, err);
	}
	if (st == VB_OK)
		st = graph_err(g, err);
	if (st)
		return st;
	if (!o.y || !o.z || !o.mu || !o.logvar ||
	    (m->cfg.kind == MODEL_KIND_RHVAE &&
	     (!o.z0 || !o.rho || !o.metric || !o.logdet_metric ||
	      !o.rho0_noise || !o.rho0_factor)) ||
	    (m->cfg.kind == MODEL_KIND_HVAE &&
	     (!o.z0 || !o.rho || !o.rho0_noise)))
		return vb_fail(err, VB_ERR_INTERNAL,
			       "model: %s's forward left no terms for the "
			       "likelihood", m->ops->name);
	for (size_t s = 0; s < keep; s++)
		lse_add(l, log_weight(m, &o, x, s));
	return VB_OK;
}

enum vb_status model_nll(struct model *m, struct graph *g, const vb_real *x,
			 size_t n_batch, size_t n_samples, size_t n_chunk,
			 struct rng *r, double *nll, struct vb_error *err)
{
	size_t D = m->cfg.n_rows * m->cfg.n_cols;
	if (n_samples == 0 || n_chunk == 0 || n_batch == 0)
		return vb_fail(err, VB_ERR_CONFIG,
			       "model: nll with %zu images, %zu samples in "
			       "chunks of %zu: expected all >= 1", n_batch,
			       n_samples, n_chunk);
	switch (m->cfg.kind) {
	case MODEL_KIND_VAE:
	case MODEL_KIND_ANCHOR:
	case MODEL_KIND_RHVAE:
	case MODEL_KIND_HVAE:
		break;
	default:
		return vb_fail(err, VB_ERR_CONFIG,
			       "model: no importance-sampled likelihood for "
			       "kind %s", model_kind_name(m->cfg.kind));
	}
	for (size_t b = 0; b < n_batch; b++) {
		struct nll_lse l = {-INFINITY, 0, false};
		for (size_t done = 0; done < n_samples;) {
			size_t keep = n_samples - done;
			if (keep > n_chunk)
				keep = n_chunk;
			/* the anchor's forward takes its anchors from rows 0
			 * and 1: a chunk of one draws two, uses one */
			size_t n = m->cfg.kind == MODEL_KIND_ANCHOR && keep < 2
					   ? 2
					   : keep;
			enum vb_status st = nll_chunk(m, g, x + b * D, n, keep,
						      r, &l, err);
			if (st)
				return st;
			done += keep;
		}
		double lse = l.nan ? NAN : l.mx + log(l.acc);
		nll[b] = -(lse - log((double)n_samples));
	}
	return VB_OK;
}
