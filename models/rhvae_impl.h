/* rhvae_impl: the RHVAE's private state shared by rhvae.c (forward, loss,
 * ring buffers, freeze store) and rhvae_state.c (checkpoint state); private
 * to models/, not installed. */
#ifndef VB_MODELS_RHVAE_IMPL_H
#define VB_MODELS_RHVAE_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch.h"
#include "checkpoint.h"
#include "freeze.h"
#include "model.h"
#include "nets.h"
#include "rhvae.h"
#include "vb.h"

struct rhvae {
	struct arch_encoder enc;
	struct arch_decoder dec;
	struct nets_linear met_fc1, met_diag, met_low; /* rhvae.md 2.3 */
	size_t d, D;
	/* ring buffers of detached M (cap, bmax, d, d) and mu (cap, bmax, d) */
	size_t cap, bmax, head, count;
	vb_real *buf_M, *buf_mu;
	size_t *rows;
	/* the ring's rows (cap) and head, count as a checkpoint holds them
	 * (borrowed by the writer until it is written) */
	int64_t *ck_rows;
	int64_t ck_ring[2];
	/* the evaluation metric: M_tens (N, d, d), centroids_tens (N, d) */
	vb_real *M_tens, *cent;
	size_t n_cent;
	bool has_metric;
	vb_real b;       /* what gamma is divided by: b, or sqrt(b) */
	enum rhvae_freeze freeze;
	struct freeze_store frozen; /* stored constants, in order made */
	vb_real *temper; /* (K) tempering factors */
	bool lf_full;    /* rhvae_set_leapfrog_reuse(false): the full H at
			    every step-6.1 iteration (the reference path) */
	/* temperature, lbd, beta_zero_sqrt as the checkpoint holds them
	 * (set at create; the writer borrows them until it writes) */
	vb_real state_consts[3];
};

/* model_ops save_state: temperature, lbd, beta_zero_sqrt, the evaluation
 * metric when there is one (M (N, d, d), centroids (N, d)) and the ring of
 * buffered batches when it holds any. The writer borrows rv's buffers until
 * it writes. */
enum vb_status rhvae_impl_save_state(const struct model *m,
				     struct checkpoint_writer *w,
				     struct vb_error *err);

/* model_ops load_state: the buffered batches (none: an empty ring) and the
 * evaluation metric (none: no metric), every shape and count checked
 * against this model; VB_ERR_DATA when they do not fit. */
enum vb_status rhvae_impl_load_state(struct model *m,
				     const struct checkpoint *c,
				     struct vb_error *err);

#endif
