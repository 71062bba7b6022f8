/* rhvae: pythae's Riemannian Hamiltonian VAE (rhvae.md section 4):
 * encoder, decoder and metric networks, the kernel metric
 * A(z) = sum_j w_j(z) M_j + lambda I, K generalised leapfrog steps with
 * tempering, the loss of 4.7 differentiated through the graph-keeping
 * gradient of step 6.4 (second order), the two ring buffers and the
 * end-of-epoch metric of 4.9. Every [quirk] of the reference is the
 * default and has a switch in struct model_config. */
#ifndef VB_MODELS_RHVAE_H
#define VB_MODELS_RHVAE_H

#include "model.h"

enum vb_status rhvae_create(const struct model_config *cfg,
			    struct model **out, struct vb_error *err);

/* The K tempering factors s_{k-1} / s_k (k = 1..K) in the order applied,
 * computed in vb_real as pythae does with its float32 beta_zero_sqrt
 * (rhvae.md 4.4). factors must hold n_lf values. */
void rhvae_tempering_factors(const struct model_config *cfg,
			     vb_real *factors);

/* Number of centres in the evaluation metric (0 before the first
 * end-of-epoch update) and the number of batches in the ring buffer. */
size_t rhvae_n_centroids(const struct model *m);
size_t rhvae_n_buffered(const struct model *m);

/* For gradient checks "with the step-6.1 and 6.2 constants held fixed":
 * RHVAE_FREEZE_RECORD stores every constant gradient of steps 6.1 and 6.2
 * as the next forward computes it; RHVAE_FREEZE_REPLAY makes later
 * forwards use the stored values instead; RHVAE_FREEZE_OFF is normal. */
enum rhvae_freeze { RHVAE_FREEZE_OFF, RHVAE_FREEZE_RECORD,
		    RHVAE_FREEZE_REPLAY };
void rhvae_set_freeze(struct model *m, enum rhvae_freeze mode);

/* The constants recorded by RHVAE_FREEZE_RECORD, in the order they were
 * made (per leapfrog step: the three step-6.1 gradients dH/dz, before any
 * rhvae.grad_clip, then the step-6.2 increment(s)); *n is their count.
 * Borrowed: valid until the next recording or rhvae's free. */
const vb_real *rhvae_frozen_values(const struct model *m, size_t *n);

/* Step 6.1 takes dH/dz three times at an unchanged z. With reuse (the
 * default) the rho-independent part of that gradient (the decoder's
 * reconstruction term and the prior, as a gradient in z; the
 * log-determinant, as a gradient in A) is computed once per leapfrog step
 * and each iteration adds only the kinetic term's gradient; step 6.2
 * differentiates the kinetic term alone. A leapfrog step whose rho
 * depends on the decoder output (steps 2..K when g3 keeps its graph: the
 * kinetic gradient's Hessian term walks the decoder anyway), or on z other
 * than through A, keeps the whole H in 6.1. reuse = false takes the
 * gradient of the whole H every time (the straightforward form), for
 * benchmarks and tests that compare the two in one process. The sums are
 * formed in the full H's association, so the results are the same bits,
 * except at steps 2..K with rhvae.second_order = false (there z feeds
 * the decoder before A, and z's gradient is summed in another order). */
void rhvae_set_leapfrog_reuse(struct model *m, bool reuse);

#endif
