/* rhvae_sampler: samples from an RHVAE's own prior as pythae's
 * RHVAESampler does (rhvae.md 4.10): HMC on the density sqrt(det A(z)),
 * A(z) = sum_j w_j(z) M_j + lambda I = G^-1(z), chains started at random
 * centroids. Works on the metric alone (centroids, M, T, lambda): the
 * model's networks are not touched; decoding the samples is the caller's. */
#ifndef VB_MODELS_RHVAE_SAMPLER_H
#define VB_MODELS_RHVAE_SAMPLER_H

#include <stddef.h>

#include "model.h"
#include "rng.h"
#include "vb.h"

/* The evaluation metric of an RHVAE (borrowed views). */
struct rhvae_sampler_metric {
	size_t n_centroids, n_latent;   /* N, Z */
	const vb_real *centroids;       /* (N, Z) */
	const vb_real *M;               /* (N, Z, Z) symmetric positive */
	double temperature, lambda;     /* T, lambda */
};

/* pythae's RHVAESamplerConfig; rhvae_sampler_defaults gives its defaults
 * (mcmc_steps_nbr 100, n_lf 15, eps_lf 0.03, beta_zero 1). */
struct rhvae_sampler_config {
	size_t mcmc_steps, n_lf;
	double eps_lf, beta_zero;
	double log_eps;   /* pythae's log(sqrt(det A) + 1e-10): 1e-10 */
};

void rhvae_sampler_defaults(struct rhvae_sampler_config *s);

/* The metric of RHVAE m (borrowed until m's next epoch end or free).
 * VB_ERR_USAGE when m has no metric yet (before the first epoch end). */
enum vb_status rhvae_sampler_metric_of(const struct model *m,
				       struct rhvae_sampler_metric *out,
				       struct vb_error *err);

/* n samples z (n, Z) of the prior: for every chain a centroid drawn
 * uniformly, then mcmc_steps HMC steps, each a momentum gamma ~ N(0, I)
 * scaled by 1 / sqrt(beta_zero), n_lf leapfrog steps with pythae's force
 * (1/T^2) G(z) sum_j w_j M_j (c_j - z) (not the exact gradient of the log
 * density; the accept step keeps the target exact), pythae's tempering,
 * and acceptance with probability exp(H0 - H) of
 * H = -log(sqrt(det A(z)) + 1e-10) + |rho|^2 / 2; a rejected chain
 * returns to its previous z. Arithmetic in double; draws from r only, in
 * a fixed order, so equal seeds give equal samples. VB_ERR_USAGE for an
 * empty metric or config, VB_ERR_NUMERIC when A(z) is not positive
 * definite, VB_ERR_NOMEM. */
enum vb_status rhvae_sampler_run(const struct rhvae_sampler_metric *mt,
				 const struct rhvae_sampler_config *s,
				 struct rng *r, size_t n, vb_real *z,
				 struct vb_error *err);

#endif
