/* rhvae_sampler: pythae's RHVAESampler on the RHVAE's metric
 * (rhvae_sampler.h; pythae src/pythae/samplers/manifold_sampler/
 * rhvae_sampler.py, rhvae.md 4.10). The metric A(z) and its Cholesky
 * factor are formed here in double; the model's graph is not used. */
#include "rhvae_sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rhvae.h"

void rhvae_sampler_defaults(struct rhvae_sampler_config *s)
{
	memset(s, 0, sizeof *s);
	s->mcmc_steps = 100;
	s->n_lf = 15;
	s->eps_lf = 0.03;
	s->beta_zero = 1.0;
	s->log_eps = 1e-10;
}

/* Scratch of one chain: A (Z, Z) and its Cholesky factor in place, the
 * weighted sum s (Z), the solve buffer (Z). */
struct chain {
	size_t d;
	double *A, *s, *y;
};

/* A(z) = sum_j w_j M_j + lambda I with w_j = exp(-|c_j - z|^2 / T^2), and
 * s = sum_j w_j M_j (c_j - z); A is then overwritten by its lower
 * Cholesky factor. *logdet = log det A. false when A is not positive
 * definite. */
static bool metric_at(const struct rhvae_sampler_metric *mt, const double *z,
		      struct chain *c, double *logdet)
{
	size_t d = c->d;
	double t2 = mt->temperature * mt->temperature;
	memset(c->A, 0, d * d * sizeof *c->A);
	memset(c->s, 0, d * sizeof *c->s);
	for (size_t j = 0; j < mt->n_centroids; j++) {
		const vb_real *cj = mt->centroids + j * d;
		const vb_real *Mj = mt->M + j * d * d;
		double r2 = 0, w;
		for (size_t a = 0; a < d; a++) {
			double df = (double)cj[a] - z[a];
			r2 += df * df;
		}
		w = exp(-r2 / t2);
		if (w == 0)
			continue;
		for (size_t a = 0; a < d; a++) {
			double acc = 0;
			for (size_t b = 0; b < d; b++) {
				double m = (double)Mj[a * d + b];
				c->A[a * d + b] += w * m;
				acc += m * ((double)cj[b] - z[b]);
			}
			c->s[a] += w * acc;
		}
	}
	for (size_t a = 0; a < d; a++)
		c->A[a * d + a] += mt->lambda;
	*logdet = 0;
	for (size_t j = 0; j < d; j++) {
		double v = c->A[j * d + j];
		for (size_t k = 0; k < j; k++)
			v -= c->A[j * d + k] * c->A[j * d + k];
		if (!(v > 0))
			return false;
		v = sqrt(v);
		c->A[j * d + j] = v;
		*logdet += 2 * log(v);
		for (size_t i = j + 1; i < d; i++) {
			double u = c->A[i * d + j];
			for (size_t k = 0; k < j; k++)
				u -= c->A[i * d + k] * c->A[j * d + k];
			c->A[i * d + j] = u / v;
		}
	}
	return true;
}

/* log(sqrt(det A) + eps) from log det A without overflow */
static double log_pi(double logdet, double eps)
{
	double h = 0.5 * logdet, le = log(eps);
	return h > le ? h + log1p(exp(le - h)) : le + log1p(exp(h - le));
}

/* pythae's force -g = (1/T^2) G s at the last metric_at (A factored):
 * out = A^-1 s / T^2 by two triangular solves. */
static void force(const struct rhvae_sampler_metric *mt,
		  const struct chain *c, double *out)
{
	size_t d = c->d;
	double t2 = mt->temperature * mt->temperature;
	for (size_t i = 0; i < d; i++) {
		double v = c->s[i];
		for (size_t k = 0; k < i; k++)
			v -= c->A[i * d + k] * c->y[k];
		c->y[i] = v / c->A[i * d + i];
	}
	for (size_t i = d; i-- > 0;) {
		double v = c->y[i];
		for (size_t k = i + 1; k < d; k++)
			v -= c->A[k * d + i] * out[k];
		out[i] = v / c->A[i * d + i];
	}
	for (size_t i = 0; i < d; i++)
		out[i] /= t2;
}

/* pythae's tempering(k, K, b): 1 / ((1 - 1/b) (k/K)^2 + 1/b) */
static double tempering(size_t k, size_t K, double b)
{
	double f = (double)k / (double)K;
	return 1.0 / ((1 - 1 / b) * f * f + 1 / b);
}

enum vb_status rhvae_sampler_run(const struct rhvae_sampler_metric *mt,
				 const struct rhvae_sampler_config *s,
				 struct rng *r, size_t n, vb_real *z_out,
				 struct vb_error *err)
{
	size_t d = mt->n_latent;
	double b = sqrt(s->beta_zero), b_old;
	double *buf, *z, *z0, *rho, *g;
	struct chain c = {.d = d};
	enum vb_status st = VB_OK;
	if (!mt->n_centroids || !d || !s->n_lf || !(s->eps_lf > 0) ||
	    !(s->beta_zero > 0) || !(mt->temperature > 0) ||
	    !(s->log_eps > 0))
		return vb_fail(err, VB_ERR_USAGE, "rhvae_sampler: %zu "
			       "centroids, latent %zu, n_lf %zu, eps_lf %g, "
			       "beta_zero %g, T %g, log_eps %g: expected "
			       "positive", mt->n_centroids, d, s->n_lf,
			       s->eps_lf, s->beta_zero, mt->temperature,
			       s->log_eps);
	if (d > 4096)
		return vb_fail(err, VB_ERR_USAGE, "rhvae_sampler: latent %zu",
			       d);
	buf = malloc((d * d + 6 * d) * sizeof *buf);
	if (!buf)
		return vb_fail(err, VB_ERR_NOMEM, "rhvae_sampler: no memory");
	c.A = buf;
	c.s = buf + d * d;
	c.y = c.s + d;
	z = c.y + d;
	z0 = z + d;
	rho = z0 + d;
	g = rho + d;
	for (size_t i = 0; i < n && st == VB_OK; i++) {
		size_t j = (size_t)rng_below(r, mt->n_centroids);
		b_old = b; /* pythae starts every call at beta_zero_sqrt */
		for (size_t a = 0; a < d; a++)
			z0[a] = (double)mt->centroids[j * d + a];
		memcpy(z, z0, d * sizeof *z);
		for (size_t step = 0; step < s->mcmc_steps && st == VB_OK;
		     step++) {
			double ld, h0, h, kin = 0, alpha;
			bool ok = metric_at(mt, z, &c, &ld);
			for (size_t a = 0; a < d; a++) {
				rho[a] = rng_normal(r) / b;
				kin += rho[a] * rho[a];
			}
			h0 = -log_pi(ld, s->log_eps) + 0.5 * kin;
			for (size_t k = 0; ok && k < s->n_lf; k++) {
				double bk;
				force(mt, &c, g);
				for (size_t a = 0; a < d; a++) {
					rho[a] += 0.5 * s->eps_lf * g[a];
					z[a] += s->eps_lf * rho[a];
				}
				ok = metric_at(mt, z, &c, &ld);
				if (!ok)
					break;
				force(mt, &c, g);
				/* pythae's beta_sqrt of step k + 1 */
				bk = tempering(k + 1, s->n_lf, b);
				for (size_t a = 0; a < d; a++)
					rho[a] = (b_old / bk) *
						 (rho[a] + 0.5 * s->eps_lf *
								   g[a]);
				b_old = bk;
			}
			if (!ok) {
				st = vb_fail(err, VB_ERR_NUMERIC,
					     "rhvae_sampler: chain %zu step "
					     "%zu: A(z) not positive definite",
					     i, step);
				break;
			}
			kin = 0;
			for (size_t a = 0; a < d; a++)
				kin += rho[a] * rho[a];
			h = -log_pi(ld, s->log_eps) + 0.5 * kin;
			alpha = exp(h0 - h);
			if (rng_uniform(r) < alpha)
				memcpy(z0, z, d * sizeof *z);
			else
				memcpy(z, z0, d * sizeof *z);
		}
		for (size_t a = 0; a < d; a++)
			z_out[i * d + a] = (vb_real)z0[a];
	}
	free(buf);
	return st;
}

enum vb_status rhvae_sampler_metric_of(const struct model *m,
				       struct rhvae_sampler_metric *out,
				       struct vb_error *err)
{
	memset(out, 0, sizeof *out);
	if (m->cfg.kind != MODEL_KIND_RHVAE ||
	    !rhvae_metric(m, &out->centroids, &out->M, &out->n_centroids))
		return vb_fail(err, VB_ERR_USAGE, "rhvae_sampler: the model "
			       "has no RHVAE metric yet (it is made at the "
			       "first epoch end)");
	out->n_latent = m->cfg.n_latent;
	out->temperature = m->cfg.temperature;
	out->lambda = m->cfg.regularization;
	return VB_OK;
}
