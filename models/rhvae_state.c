/* rhvae_state: the RHVAE's non-parameter checkpoint state (model_ops
 * save_state / load_state): pythae's fixed constants, the evaluation metric
 * (M, centroids) and, mid-epoch, the ring of buffered batches. The forward
 * and the ring's filling stay in rhvae.c. */
#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "rhvae.h"
#include "rhvae_impl.h"
#include "vb.h"

/* The epoch's buffered batches (issue 17 item 5): a checkpoint taken
 * mid-epoch resumes with the batches the epoch's metric is built from.
 * Only while some are buffered, so epoch-end checkpoints are unchanged. */
static enum vb_status save_buffers(struct rhvae *rv,
				   struct checkpoint_writer *w,
				   struct vb_error *err)
{
	size_t d = rv->d, ms[4] = {rv->cap, rv->bmax, d, d};
	size_t us[3] = {rv->cap, rv->bmax, d}, rs[1] = {rv->cap}, two[1] = {2};
	enum vb_status st;
	for (size_t i = 0; i < rv->cap; i++)
		rv->ck_rows[i] = (int64_t)rv->rows[i];
	rv->ck_ring[0] = (int64_t)rv->head;
	rv->ck_ring[1] = (int64_t)rv->count;
	st = checkpoint_add(w, "rhvae.buffer_M", CHECKPOINT_REAL, 4, ms,
			    rv->buf_M, err);
	if (st == VB_OK)
		st = checkpoint_add(w, "rhvae.buffer_mu", CHECKPOINT_REAL, 3,
				    us, rv->buf_mu, err);
	if (st == VB_OK)
		st = checkpoint_add(w, "rhvae.buffer_rows", CHECKPOINT_I64, 1,
				    rs, rv->ck_rows, err);
	if (st == VB_OK)
		st = checkpoint_add(w, "rhvae.buffer_ring", CHECKPOINT_I64, 1,
				    two, rv->ck_ring, err);
	return st;
}

/* The buffered batches of a mid-epoch checkpoint (none: an empty ring),
 * every count range-checked against this model's ring. */
static enum vb_status load_buffers(struct rhvae *rv,
				   const struct checkpoint *c,
				   struct vb_error *err)
{
	size_t d = rv->d, ms[4] = {rv->cap, rv->bmax, d, d};
	size_t us[3] = {rv->cap, rv->bmax, d};
	enum vb_status st;
	rv->head = rv->count = 0;
	if (!checkpoint_data(c, "rhvae.buffer_ring"))
		return VB_OK;
	st = checkpoint_read_raw(c, "rhvae.buffer_ring", CHECKPOINT_I64, 2,
				 rv->ck_ring, err);
	if (st == VB_OK)
		st = checkpoint_read_raw(c, "rhvae.buffer_rows", CHECKPOINT_I64,
					 rv->cap, rv->ck_rows, err);
	if (st == VB_OK)
		st = checkpoint_check_i64(c, "rhvae.buffer_ring", rv->ck_ring,
					  1, 0, (int64_t)rv->cap - 1, err);
	if (st == VB_OK)
		st = checkpoint_check_i64(c, "rhvae.buffer_ring",
					  rv->ck_ring + 1, 1, 0,
					  (int64_t)rv->cap, err);
	if (st == VB_OK)
		st = checkpoint_check_i64(c, "rhvae.buffer_rows", rv->ck_rows,
					  rv->cap, 0, (int64_t)rv->bmax, err);
	if (st == VB_OK)
		st = checkpoint_read_real(c, "rhvae.buffer_M", 4, ms, rv->buf_M,
					  err);
	if (st == VB_OK)
		st = checkpoint_read_real(c, "rhvae.buffer_mu", 3, us,
					  rv->buf_mu, err);
	if (st != VB_OK)
		return st;
	for (size_t i = 0; i < rv->cap; i++)
		rv->rows[i] = (size_t)rv->ck_rows[i];
	rv->head = (size_t)rv->ck_ring[0];
	rv->count = (size_t)rv->ck_ring[1];
	return VB_OK;
}

enum vb_status rhvae_impl_save_state(const struct model *m,
				     struct checkpoint_writer *w,
				     struct vb_error *err)
{
	const struct rhvae *rv = m->impl;
	size_t one[1] = {1}, ms[3] = {rv->n_cent, rv->d, rv->d};
	size_t cs[2] = {rv->n_cent, rv->d};
	enum vb_status st;
	/* pythae's non-trained nn.Parameters (rhvae.md 4.1), set at create */
	st = checkpoint_add(w, "temperature", CHECKPOINT_REAL, 1, one,
			    &rv->state_consts[0], err);
	if (st == VB_OK)
		st = checkpoint_add(w, "lbd", CHECKPOINT_REAL, 1, one,
				    &rv->state_consts[1], err);
	if (st == VB_OK)
		st = checkpoint_add(w, "beta_zero_sqrt", CHECKPOINT_REAL, 1, one,
				    &rv->state_consts[2], err);
	/* the evaluation metric, under pythae's model.pt keys */
	if (st == VB_OK && rv->has_metric)
		st = checkpoint_add(w, "M", CHECKPOINT_REAL, 3, ms, rv->M_tens,
				    err);
	if (st == VB_OK && rv->has_metric)
		st = checkpoint_add(w, "centroids", CHECKPOINT_REAL, 2, cs,
				    rv->cent, err);
	if (st == VB_OK && rv->count > 0)
		st = save_buffers(m->impl, w, err);
	return st;
}

enum vb_status rhvae_impl_load_state(struct model *m,
				     const struct checkpoint *c,
				     struct vb_error *err)
{
	struct rhvae *rv = m->impl;
	enum checkpoint_dtype dt;
	int nd;
	size_t shape[CHECKPOINT_MAX_DIM];
	enum vb_status st = load_buffers(rv, c, err);
	if (st)
		return st;
	if (!checkpoint_data(c, "M")) {
		rv->has_metric = false;
		return VB_OK;
	}
	st = checkpoint_info(c, "M", &dt, &nd, shape, err);
	if (st)
		return st;
	if (nd != 3 || shape[1] != rv->d || shape[2] != rv->d ||
	    shape[0] > rv->cap * rv->bmax)
		return vb_fail(err, VB_ERR_DATA,
			       "rhvae: checkpoint M has a shape that does not "
			       "fit latent %zu and %zu buffered rows", rv->d,
			       rv->cap * rv->bmax);
	size_t ms[3] = {shape[0], rv->d, rv->d}, cs[2] = {shape[0], rv->d};
	st = checkpoint_read_real(c, "M", 3, ms, rv->M_tens, err);
	if (st == VB_OK)
		st = checkpoint_read_real(c, "centroids", 2, cs, rv->cent, err);
	if (st == VB_OK) {
		rv->n_cent = shape[0];
		rv->has_metric = true;
	}
	return st;
}
