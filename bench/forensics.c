/* forensics: what a run keeps so that its first NaN can be explained and
 * replayed: the precursor ring (the last guard.precursors steps, written
 * to precursors.csv when a run fails), resume checkpoints
 * (checkpoints/step-*.safetensors, checkpoint.safetensors) and loading
 * them, and the dump of one step (replay --dump). The automatic replay
 * in anomaly mode (which reruns the training) is train.c's. The step
 * pipeline (step.c) and the run (train.c) call it; it never decides when
 * a run stops. */
#include "forensics.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "files.h"
#include "params.h"
#include "train.h"

/* ---- the precursor ring ---- */

/* ---- precursors ---- */

static const struct graph_node *find_node(const struct graph *g,
					  const char *name)
{
	for (size_t k = graph_node_count(g); k-- > 0;) {
		const struct graph_node *n = graph_node_at(g, k);
		if (!strcmp(n->name, name))
			return n;
	}
	return NULL;
}

static double node_max(const struct graph_node *n, bool absolute)
{
	double m = -INFINITY;
	if (!n || !n->value.data)
		return NAN;
	if (absolute)
		return guard_max_abs(n->value.data, n->value.n);
	for (size_t i = 0; i < n->value.n; i++) {
		double v = n->value.data[i];
		if (v != v)
			return NAN;
		m = v > m ? v : m;
	}
	return m;
}

/* Median of the finite grad norms of the last ring_cap records. */
static double running_median(struct run *r)
{
	size_t k = 0, have = r->ring_n < r->ring_cap ? r->ring_n : r->ring_cap;
	for (size_t i = 0; i < have; i++) {
		double v = r->ring[i].grad_norm;
		if (isfinite(v))
			r->win[k++] = v;
	}
	if (k < RUN_LEAD_MIN_STEPS)
		return NAN;
	qsort(r->win, k, sizeof *r->win, files_cmp_double);
	return k % 2 ? r->win[k / 2] : 0.5 * (r->win[k / 2 - 1] + r->win[k / 2]);
}

void forensics_record(struct run *r, long epoch, double lr,
			     double loss, const struct model_out *mo,
			     bool have_out, double gnorm, bool have_grad,
			     double max_param)
{
	struct params *p = r->model->params;
	struct precursor *pr;
	size_t slot;
	if (r->ring_cap == 0)
		return;
	slot = r->ring_n % r->ring_cap;
	pr = &r->ring[slot];
	pr->median = running_median(r); /* before this step joins */
	pr->epoch = epoch;
	pr->step = r->step;
	pr->lr = lr;
	pr->loss = loss;
	pr->recon = have_out ? run_mean_of(mo->recon) : NAN;
	pr->reg = have_out ? run_mean_of(mo->reg) : NAN;
	pr->grad_norm = have_grad ? gnorm : NAN;
	pr->max_param = max_param;
	pr->max_logvar = have_out ? node_max(mo->logvar, false) : NAN;
	pr->max_z = have_out ? node_max(mo->z, true) : NAN;
	pr->spike = have_grad && isfinite(gnorm) && isfinite(pr->median) &&
		    gnorm > r->c->guard.lead_factor * pr->median;
	if (pr->spike && r->sum->lead_step < 0)
		r->sum->lead_step = r->step;
	for (size_t e = 0; e < p->n_entries; e++) {
		r->ring_layers[slot * p->n_entries + e] =
			have_grad ? sqrt(guard_sum_squares(
					    p->grad + p->entries[e].offset,
					    p->entries[e].n))
				  : NAN;
	}
	for (size_t w = 0; w < r->n_watch; w++)
		r->ring_watch[slot * r->n_watch + w] =
			have_out ? node_max(find_node(r->g, r->watch[w]), true)
				 : NAN;
	r->ring_n++;
}

enum vb_status forensics_write_precursors(struct run *r, const char *path,
				       struct vb_error *err)
{
	struct params *p = r->model->params;
	char *buf = NULL;
	size_t len = 0, have = r->ring_n < r->ring_cap ? r->ring_n
						       : r->ring_cap;
	FILE *f = open_memstream(&buf, &len);
	enum vb_status st;
	if (!f)
		return vb_fail(err, VB_ERR_NOMEM, "train: no memory");
	fputs("epoch,step,lr,loss,recon,reg,grad_norm,grad_norm_median,"
	      "spike,max_abs_param,max_logvar,max_abs_z", f);
	for (size_t w = 0; w < r->n_watch; w++)
		fprintf(f, ",max_abs:%s", r->watch[w]);
	for (size_t e = 0; e < p->n_entries; e++)
		fprintf(f, ",grad_norm:%s", p->entries[e].name);
	fputc('\n', f);
	for (size_t k = 0; k < have; k++) {
		size_t slot = (r->ring_n - have + k) % r->ring_cap;
		const struct precursor *pr = &r->ring[slot];
		double v[] = {pr->lr, pr->loss, pr->recon, pr->reg,
			      pr->grad_norm, pr->median};
		fprintf(f, "%ld,%ld", pr->epoch, pr->step);
		for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
			fputc(',', f);
			run_csv_double(f, v[i]);
		}
		fprintf(f, ",%d,", pr->spike ? 1 : 0);
		run_csv_double(f, pr->max_param);
		fputc(',', f);
		run_csv_double(f, pr->max_logvar);
		fputc(',', f);
		run_csv_double(f, pr->max_z);
		for (size_t w = 0; w < r->n_watch; w++) {
			fputc(',', f);
			run_csv_double(f, r->ring_watch[slot * r->n_watch + w]);
		}
		for (size_t e = 0; e < p->n_entries; e++) {
			fputc(',', f);
			run_csv_double(f, r->ring_layers[slot * p->n_entries + e]);
		}
		fputc('\n', f);
	}
	fclose(f);
	st = buf ? files_write_text(path, buf, err)
		 : vb_fail(err, VB_ERR_NOMEM, "train: no memory");
	free(buf);
	return st;
}

/* ---- checkpoints for resuming ---- */

/* Writes run_dir/checkpoints/step-S.safetensors (epochs_done epochs and
 * batch batches of the next done) and drops the previous one unless it is
 * the step-0 one. */
enum vb_status forensics_resume_checkpoint(struct run *r, long epochs_done,
					long batch, struct vb_error *err)
{
	char path[1200];
	enum vb_status st;
	snprintf(path, sizeof path, "%s/checkpoints", r->dir);
	st = files_mkdirs(path, err);
	if (st)
		return st;
	snprintf(path, sizeof path, "%s/checkpoints/step-%09ld.safetensors",
		 r->dir, r->step);
	st = forensics_write_checkpoint(r, path, epochs_done, batch, err);
	if (st)
		return st;
	if (r->last_ckpt[0] && r->last_ckpt_step > 0 &&
	    strcmp(r->last_ckpt, path) != 0)
		remove(r->last_ckpt);
	snprintf(r->last_ckpt, sizeof r->last_ckpt, "%s", path);
	r->last_ckpt_step = r->step;
	return VB_OK;
}

bool forensics_checkpoints_on(const struct run *r)
{
	return !r->o->replay &&
	       (r->c->run.checkpoint_every > 0 || r->c->guard.replay);
}

/* Parameters and optimiser moments (r's layout) from ck. */
static enum vb_status read_params(struct run *r, struct checkpoint *ck,
				  struct vb_error *err)
{
	struct params *p = r->model->params;
	enum vb_status st = VB_OK;
	for (size_t i = 0; st == VB_OK && i < p->n_entries; i++) {
		const struct params_entry *pe = &p->entries[i];
		char name[160];
		st = checkpoint_read_real(ck, pe->name, pe->ndim, pe->shape,
					  p->data + pe->offset, err);
		snprintf(name, sizeof name, "optimizer.exp_avg.%s", pe->name);
		if (st == VB_OK)
			st = checkpoint_read_real(ck, name, pe->ndim, pe->shape,
						  r->opt->m + pe->offset, err);
		snprintf(name, sizeof name, "optimizer.exp_avg_sq.%s",
			 pe->name);
		if (st == VB_OK && r->opt->v)
			st = checkpoint_read_real(ck, name, pe->ndim, pe->shape,
						  r->opt->v + pe->offset, err);
	}
	return st;
}

/* A scalar that older checkpoints lack: *v stays as it is then. */
static enum vb_status read_optional(struct checkpoint *ck, const char *name,
				    enum checkpoint_dtype dtype, void *v,
				    struct vb_error *err)
{
	if (!checkpoint_data(ck, name))
		return VB_OK;
	return checkpoint_read_raw(ck, name, dtype, 1, v, err);
}

/* trainer.perm (the permutation of the epoch being resumed) into
 * r->perm, each index checked. */
static enum vb_status read_perm(struct run *r, struct checkpoint *ck,
				const char *path, struct vb_error *err)
{
	size_t n = r->d->train.n;
	int64_t *tmp = malloc(n * sizeof *tmp);
	enum vb_status st = tmp ? checkpoint_read_raw(ck, "trainer.perm",
						      CHECKPOINT_I64, n, tmp,
						      err)
				: vb_fail(err, VB_ERR_NOMEM,
					  "train: no memory");
	for (size_t i = 0; st == VB_OK && i < n; i++) {
		if (tmp[i] < 0 || (size_t)tmp[i] >= n)
			st = vb_fail(err, VB_ERR_DATA,
				     "train: %s: trainer.perm[%zu] = "
				     "%lld, expected 0..%zu", path, i,
				     (long long)tmp[i], n - 1);
		else
			r->perm[i] = (size_t)tmp[i];
	}
	free(tmp);
	return st;
}

/* optim.clip's state (window, step and clip counts) is in the resume
 * checkpoints of clipped runs (checkpoints of unclipped runs stay as they
 * were); adaptive clipping needs it to resume exactly, norm and value
 * only for clipped_share (older checkpoints without it load). */
static bool clip_saved(const struct run *r)
{
	return r->c->optim.clip != CONFIG_CLIP_NONE;
}

/* The trainer's counters and the scaler state of a checkpoint. */
struct resume_state {
	uint64_t rs[3][RNG_STATE_WORDS];
	uint64_t hg[2]; /* trainer.h_grad (0, 0 when absent) */
	int64_t step, ep, batch, sgood;
	double sscale;
};

/* An optional I64 count in lo..hi (older checkpoints lack some: *v
 * stays as it is then). */
static enum vb_status read_optional_i64(struct checkpoint *ck,
					const char *name, int64_t lo,
					int64_t hi, int64_t *v,
					struct vb_error *err)
{
	if (!checkpoint_data(ck, name))
		return VB_OK;
	return checkpoint_read_i64(ck, name, lo, hi, v, err);
}

/* Every value range-checked before it is used (issue 17, item 9):
 * counts in 0..CHECKPOINT_COUNT_MAX, trainer.batch within the epoch's
 * batches, optimizer.step through optim_load_step; the RNG states go
 * through rng_state_restore (no all-zero xoshiro state) when loaded. */
static enum vb_status read_state(struct run *r, struct checkpoint *ck,
				 const char *path, struct resume_state *s,
				 struct vb_error *err)
{
	size_t B = (size_t)r->c->train.batch, n = r->d->train.n;
	int64_t n_batches = (int64_t)((n + B - 1) / B);
	enum vb_status st = read_params(r, ck, err);
	if (st == VB_OK)
		st = checkpoint_read_i64(ck, "trainer.step", 0,
					 CHECKPOINT_COUNT_MAX, &s->step, err);
	if (st == VB_OK)
		st = checkpoint_read_i64(ck, "trainer.epoch", 0,
					 CHECKPOINT_COUNT_MAX, &s->ep, err);
	if (st == VB_OK)
		st = checkpoint_read_raw(ck, "trainer.rng_state",
					 CHECKPOINT_U64, 3 * RNG_STATE_WORDS,
					 s->rs, err);
	if (st == VB_OK)
		st = read_optional_i64(ck, "trainer.batch", 0, n_batches - 1,
				       &s->batch, err);
	if (st == VB_OK) {
		if (checkpoint_data(ck, "optimizer.step"))
			st = optim_load_step(r->opt, ck, "optimizer.step",
					     err);
		else
			r->opt->step = (long)s->step;
	}
	if (st == VB_OK)
		st = read_optional(ck, "scaler.scale", CHECKPOINT_F64,
				   &s->sscale, err);
	if (st == VB_OK)
		st = read_optional_i64(ck, "scaler.growth_tracker", 0,
				       CHECKPOINT_COUNT_MAX, &s->sgood, err);
	if (st == VB_OK && s->batch > 0)
		st = read_perm(r, ck, path, err);
	if (st == VB_OK && checkpoint_data(ck, "trainer.h_grad"))
		st = checkpoint_read_raw(ck, "trainer.h_grad", CHECKPOINT_U64,
					 2, s->hg, err);
	if (st == VB_OK && s->hg[1] > s->hg[0])
		st = vb_fail(err, VB_ERR_DATA, "train: %s: trainer.h_grad = "
			     "%llu clamped of %llu entries, expected clamped "
			     "<= entries", path, (unsigned long long)s->hg[1],
			     (unsigned long long)s->hg[0]);
	if (st == VB_OK)
		st = model_load_state(r->model, ck, err);
	if (st == VB_OK && clip_saved(r) && !r->o->clip_fresh &&
	    (r->c->optim.clip == CONFIG_CLIP_ADAPTIVE ||
	     checkpoint_data(ck, "clip.counts")))
		st = optim_clip_load(r->clip, ck, "clip", err);
	return st;
}

enum vb_status forensics_load_resume(struct run *r, const char *path,
				     struct vb_error *err)
{
	struct checkpoint *ck = NULL;
	struct resume_state s = {.sscale = r->scale};
	enum vb_status st = checkpoint_open(path, &ck, err);
	if (st == VB_OK)
		st = read_state(r, ck, path, &s, err);
	checkpoint_close(ck);
	if (st != VB_OK)
		return st;
	if (run_scaler_on(r) && !(s.sscale >= 0 && isfinite(s.sscale)))
		return vb_fail(err, VB_ERR_DATA, "train: %s: scaler.scale = "
			       "%g, expected a finite scale >= 0", path,
			       s.sscale);
	r->step = (long)s.step;
	if (run_scaler_on(r)) {
		r->scale = s.sscale;
		r->scale_good = (long)s.sgood;
	}
	st = rng_state_restore(&r->shuffle, s.rs[0],
			       "trainer.rng_state[0] (shuffle)", err);
	if (st == VB_OK)
		st = rng_state_restore(&r->noise, s.rs[1],
				       "trainer.rng_state[1] (noise)", err);
	if (st == VB_OK)
		st = rng_state_restore(&r->eval_noise, s.rs[2],
				       "trainer.rng_state[2] (eval)", err);
	if (st != VB_OK)
		return st;
	r->start_epoch = (long)s.ep + 1;
	r->start_batch = (size_t)s.batch;
	/* older checkpoints lack trainer.h_grad: the counts then start at
	 * the resume point (h_clamped_share covers the rest of the run) */
	r->h_train[0] = r->sum->h_grad_entries = s.hg[0];
	r->h_train[1] = r->sum->h_grad_clamped = s.hg[1];
	if (r->o->reset_optimizer)
		optim_reset(r->opt);
	return VB_OK;
}

/* ---- the dump of one step (replay --dump) ---- */

/* trainer.step and trainer.epoch (one int64 each), borrowed by the
 * writer until the write. */
static enum vb_status add_step_epoch(struct checkpoint_writer *w,
				     const int64_t *step, const int64_t *epoch,
				     struct vb_error *err)
{
	size_t one[1] = {1};
	enum vb_status st = checkpoint_add(w, "trainer.step", CHECKPOINT_I64,
					   1, one, step, err);
	if (st == VB_OK)
		st = checkpoint_add(w, "trainer.epoch", CHECKPOINT_I64, 1, one,
				    epoch, err);
	return st;
}

/* Every node's value but the parameters (saved by add_dump_params) as
 * node:NAME or draw:NAME (@ID when a name repeats), with its line of the
 * node table in tf (id,name,op,kind,phase). */
static enum vb_status add_dump_nodes(struct checkpoint_writer *w,
				     const struct graph *g, FILE *tf,
				     struct vb_error *err)
{
	size_t n_nodes = graph_node_count(g);
	enum vb_status st = VB_OK;
	for (size_t k = 0; st == VB_OK && k < n_nodes; k++) {
		const struct graph_node *n = graph_node_at(g, k);
		char name[GRAPH_NAME_LEN + 32], ph[GUARD_PHASE_LEN];
		bool dup = false;
		const char *kind = n->kind == GRAPH_NODE_INPUT   ? "input"
				   : n->kind == GRAPH_NODE_PARAM ? "param"
				   : n->kind == GRAPH_NODE_CONST ? "const"
								 : "op";
		if (n->kind == GRAPH_NODE_PARAM || !n->value.data ||
		    n->value.n == 0)
			continue; /* parameters are saved below */
		for (size_t j = 0; j < k && !dup; j++)
			dup = !strcmp(graph_node_at(g, j)->name, n->name);
		if (dup)
			snprintf(name, sizeof name, "%s:%s@%zu",
				 n->kind == GRAPH_NODE_CONST ? "draw" : "node",
				 n->name, k);
		else
			snprintf(name, sizeof name, "%s:%s",
				 n->kind == GRAPH_NODE_CONST ? "draw" : "node",
				 n->name);
		guard_phase_format(n->phase, GUARD_PHASE_FORWARD, ph,
				   sizeof ph);
		fprintf(tf, "%zu,%s,%s,%s,%s\n", k, name,
			n->op ? n->op->name : kind, kind, ph);
		st = checkpoint_add(w, name, CHECKPOINT_REAL, n->value.ndim,
				    n->value.shape, n->value.data, err);
	}
	return st;
}

/* param:NAME (before the update when updated) and grad:NAME. */
static enum vb_status add_dump_params(struct checkpoint_writer *w,
				      const struct run *r, bool updated,
				      struct vb_error *err)
{
	const struct params *p = r->model->params;
	enum vb_status st = VB_OK;
	for (size_t i = 0; st == VB_OK && i < p->n_entries; i++) {
		const struct params_entry *pe = &p->entries[i];
		char name[160];
		snprintf(name, sizeof name, "param:%s", pe->name);
		st = checkpoint_add(w, name, CHECKPOINT_REAL, pe->ndim,
				    pe->shape,
				    (updated ? r->p_before : p->data) +
					    pe->offset,
				    err);
		snprintf(name, sizeof name, "grad:%s", pe->name);
		if (st == VB_OK)
			st = checkpoint_add(w, name, CHECKPOINT_REAL, pe->ndim,
					    pe->shape, p->grad + pe->offset,
					    err);
	}
	return st;
}

/* The dump's batch values, borrowed by the writer until the write. */
struct dump_batch {
	int64_t *idx; /* (nb) owned */
	int64_t step, epoch;
};

/* The batch (indices, pixels) and the trainer's step and epoch. */
static enum vb_status add_dump_batch(struct checkpoint_writer *w,
				     const struct run *r, long epoch,
				     const size_t *ids, size_t nb,
				     struct dump_batch *t,
				     struct vb_error *err)
{
	size_t xs[2] = {nb, r->d->train.d}, ns[1] = {nb};
	enum vb_status st;
	t->idx = malloc((nb ? nb : 1) * sizeof *t->idx);
	t->step = r->step;
	t->epoch = epoch;
	if (!t->idx)
		return vb_fail(err, VB_ERR_NOMEM, "train: no memory for the dump");
	for (size_t i = 0; i < nb; i++)
		t->idx[i] = (int64_t)ids[i];
	st = checkpoint_add(w, "batch.indices", CHECKPOINT_I64, 1, ns, t->idx,
			    err);
	if (st == VB_OK)
		st = checkpoint_add(w, "batch.x", CHECKPOINT_REAL, 2, xs, r->x,
				    err);
	if (st == VB_OK)
		st = add_step_epoch(w, &t->step, &t->epoch, err);
	return st;
}

enum vb_status forensics_write_dump(struct run *r, const char *path,
				    long epoch, const size_t *ids, size_t nb,
				    bool updated, struct vb_error *err)
{
	struct checkpoint_writer *w = NULL;
	struct dump_batch t = {0};
	char *table = NULL;
	size_t tlen = 0;
	FILE *tf = open_memstream(&table, &tlen);
	enum vb_status st = checkpoint_writer_create(&w, err);
	if (st == VB_OK && !tf)
		st = vb_fail(err, VB_ERR_NOMEM, "train: no memory for the dump");
	if (st == VB_OK)
		st = add_dump_batch(w, r, epoch, ids, nb, &t, err);
	if (tf)
		fputs("id,name,op,kind,phase\n", tf);
	/* blocked activations (the oneDNN path) are dumped row-major: the
	 * step is over, so its node values may change layout in place */
	for (size_t k = 0; k < graph_node_count(r->g); k++)
		graph_to_plain(r->g, &graph_node_at(r->g, k)->value);
	if (st == VB_OK)
		st = add_dump_nodes(w, r->g, tf, err);
	if (st == VB_OK)
		st = add_dump_params(w, r, updated, err);
	if (tf)
		fclose(tf);
	if (st == VB_OK)
		st = checkpoint_add_meta(w, "nodes", table ? table : "", err);
	if (st == VB_OK)
		st = checkpoint_add_meta(w, "format", "vaebench-dump-1", err);
	if (st == VB_OK)
		st = checkpoint_add_meta(w, "precision", VB_REAL_NAME, err);
	if (st == VB_OK)
		st = checkpoint_write(w, path, err);
	checkpoint_writer_free(w);
	free(table);
	free(t.idx);
	return st;
}

long forensics_dump_step(const struct run *r)
{
	if (!r->o->dump)
		return -1;
	return r->o->dump_step > 0 ? r->o->dump_step : r->o->stop_step;
}

/* Parameters, then the optimiser moments (exp_avg, exp_avg_sq). */
static enum vb_status add_ckpt_params(struct checkpoint_writer *w,
				      const struct run *r,
				      struct vb_error *err)
{
	const struct params *p = r->model->params;
	enum vb_status st = VB_OK;
	for (size_t i = 0; st == VB_OK && i < p->n_entries; i++)
		st = checkpoint_add(w, p->entries[i].name, CHECKPOINT_REAL,
				    p->entries[i].ndim, p->entries[i].shape,
				    p->data + p->entries[i].offset, err);
	for (size_t i = 0; st == VB_OK && i < p->n_entries; i++) {
		char name[160];
		snprintf(name, sizeof name, "optimizer.exp_avg.%s",
			 p->entries[i].name);
		st = checkpoint_add(w, name, CHECKPOINT_REAL,
				    p->entries[i].ndim, p->entries[i].shape,
				    r->opt->m + p->entries[i].offset, err);
		if (st == VB_OK && r->opt->v) {
			snprintf(name, sizeof name, "optimizer.exp_avg_sq.%s",
				 p->entries[i].name);
			st = checkpoint_add(w, name, CHECKPOINT_REAL,
					    p->entries[i].ndim,
					    p->entries[i].shape,
					    r->opt->v + p->entries[i].offset,
					    err);
		}
	}
	return st;
}

/* The trainer's values a checkpoint borrows (checkpoint_add keeps
 * pointers) until it is written. */
struct ckpt_trainer {
	int64_t bat, ostep, sgood, step, ep;
	double sscale;
	uint64_t hg[2]; /* rhvae.grad_clip: entries, clamped so far */
	uint64_t rs[3][RNG_STATE_WORDS];
	int64_t *perm; /* (n_train) owned; NULL when batch is 0 */
};

/* RNG states, resume point (batches of the next epoch done and, when
 * some are, its permutation), optimiser step, scaler state (only when
 * there is one: checkpoints of unscaled runs stay as they were), trainer
 * step and epoch; t holds the values until the write. */
static enum vb_status add_ckpt_trainer(struct checkpoint_writer *w,
				       const struct run *r, long epoch,
				       long batch, struct ckpt_trainer *t,
				       struct vb_error *err)
{
	size_t rshape[2] = {3, RNG_STATE_WORDS}, one[1] = {1};
	size_t pshape[1] = {r->d->train.n};
	enum vb_status st;
	t->bat = batch;
	t->ostep = r->opt->step;
	t->sgood = r->scale_good;
	t->step = r->step;
	t->ep = epoch;
	t->sscale = r->scale;
	rng_state_save(&r->shuffle, t->rs[0]);
	rng_state_save(&r->noise, t->rs[1]);
	rng_state_save(&r->eval_noise, t->rs[2]);
	st = checkpoint_add(w, "trainer.rng_state", CHECKPOINT_U64, 2, rshape,
			    t->rs, err);
	if (st == VB_OK)
		st = checkpoint_add(w, "trainer.batch", CHECKPOINT_I64, 1, one,
				    &t->bat, err);
	if (st == VB_OK)
		st = checkpoint_add(w, "optimizer.step", CHECKPOINT_I64, 1, one,
				    &t->ostep, err);
	if (st == VB_OK && run_scaler_on(r))
		st = checkpoint_add(w, "scaler.scale", CHECKPOINT_F64, 1, one,
				    &t->sscale, err);
	if (st == VB_OK && run_scaler_on(r))
		st = checkpoint_add(w, "scaler.growth_tracker", CHECKPOINT_I64,
				    1, one, &t->sgood, err);
	t->hg[0] = r->h_train[0];
	t->hg[1] = r->h_train[1];
	if (r->h_in_epoch) {
		t->hg[0] += r->model->h_grad_entries - r->h_epoch0[0];
		t->hg[1] += r->model->h_grad_clamped - r->h_epoch0[1];
	}
	if (st == VB_OK && t->hg[0] > 0) /* unclipped runs: as they were */
		st = checkpoint_add(w, "trainer.h_grad", CHECKPOINT_U64, 1,
				    (size_t[1]){2}, t->hg, err);
	if (st == VB_OK && batch > 0) {
		t->perm = malloc(pshape[0] * sizeof *t->perm);
		if (!t->perm)
			st = vb_fail(err, VB_ERR_NOMEM, "train: no memory");
		for (size_t i = 0; t->perm && i < pshape[0]; i++)
			t->perm[i] = (int64_t)r->perm[i];
		if (st == VB_OK)
			st = checkpoint_add(w, "trainer.perm", CHECKPOINT_I64,
					    1, pshape, t->perm, err);
	}
	if (st == VB_OK)
		st = add_step_epoch(w, &t->step, &t->ep, err);
	return st;
}

/* The metadata: the resolved config, precision, format, RNG streams. */
static enum vb_status add_ckpt_meta(struct checkpoint_writer *w,
				    const struct config *c,
				    struct vb_error *err)
{
	char cfgtext[65536] = "";
	enum vb_status st = VB_OK;
	FILE *mf = fmemopen(cfgtext, sizeof cfgtext, "w");
	if (mf) {
		st = config_write(c, mf, err);
		fputc('\0', mf);
		fclose(mf);
		cfgtext[sizeof cfgtext - 1] = '\0';
	}
	if (st == VB_OK)
		st = checkpoint_add_meta(w, "config", cfgtext, err);
	if (st == VB_OK)
		st = checkpoint_add_meta(w, "precision", VB_REAL_NAME, err);
	if (st == VB_OK)
		st = checkpoint_add_meta(w, "format", "vaebench-checkpoint-1",
					 err);
	if (st == VB_OK)
		st = checkpoint_add_meta(w, "rng_streams",
					 "shuffle,noise,eval", err);
	return st;
}

enum vb_status forensics_write_checkpoint(struct run *r, const char *path,
					  long epoch, long batch,
					  struct vb_error *err)
{
	struct checkpoint_writer *w = NULL;
	struct ckpt_trainer t = {0};
	enum vb_status st = checkpoint_writer_create(&w, err);
	if (st == VB_OK)
		st = add_ckpt_params(w, r, err);
	if (st == VB_OK)
		st = add_ckpt_trainer(w, r, epoch, batch, &t, err);
	if (st == VB_OK)
		st = model_save_state(r->model, w, err);
	if (st == VB_OK && clip_saved(r))
		st = optim_clip_save(r->clip, w, "clip", err);
	if (st == VB_OK)
		st = add_ckpt_meta(w, r->c, err);
	if (st == VB_OK)
		st = checkpoint_write(w, path, err);
	checkpoint_writer_free(w);
	free(t.perm);
	return st;
}

enum vb_status forensics_setup(struct run *r, struct vb_error *err)
{
	const struct config *c = r->c;
	struct params *p = r->model->params;
	const char *s = c->guard.watch;
	r->start_epoch = 1;
	r->anomaly_on = c->guard.mode == CONFIG_GUARD_ANOMALY || r->o->anomaly;
	anomaly_reset(&r->an);
	if (r->anomaly_on)
		anomaly_attach(&r->an, r->g);
	if (c->inject.param[0] && params_find(p, c->inject.param) < 0)
		return vb_fail(err, VB_ERR_CONFIG,
			       "config: inject.param = %s: no such parameter "
			       "tensor in model %s", c->inject.param,
			       config_enum_name("model.kind", c->model.kind));
	while (*s) {
		size_t len = strcspn(s, ",");
		if (len > 0) {
			if (r->n_watch == RUN_MAX_WATCH ||
			    len >= GRAPH_NAME_LEN)
				return vb_fail(err, VB_ERR_CONFIG,
					       "config: guard.watch = %s: at "
					       "most %d names of < %d "
					       "characters", c->guard.watch,
					       RUN_MAX_WATCH,
					       GRAPH_NAME_LEN);
			memcpy(r->watch[r->n_watch], s, len);
			r->watch[r->n_watch++][len] = '\0';
		}
		s += len + (s[len] == ',');
	}
	r->ring_cap = (size_t)c->guard.precursors;
	if (r->ring_cap) {
		r->ring = calloc(r->ring_cap, sizeof *r->ring);
		r->ring_layers = calloc(r->ring_cap * p->n_entries,
					sizeof *r->ring_layers);
		r->ring_watch = calloc(r->ring_cap * (r->n_watch + 1),
				       sizeof *r->ring_watch);
		r->win = calloc(r->ring_cap, sizeof *r->win);
		if (!r->ring || !r->ring_layers || !r->ring_watch || !r->win)
			return vb_fail(err, VB_ERR_NOMEM,
				       "train: cannot allocate the precursor "
				       "ring");
	}
	if (r->o->dump) {
		r->p_before = malloc(p->n * sizeof *r->p_before);
		if (!r->p_before)
			return vb_fail(err, VB_ERR_NOMEM, "train: no memory");
	}
	return VB_OK;
}

void forensics_teardown(struct run *r)
{
	free(r->ring);
	free(r->ring_layers);
	free(r->ring_watch);
	free(r->win);
	free(r->p_before);
}

enum vb_status forensics_find_checkpoint(const char *run_dir, long before,
				     char *path, size_t cap, long *step,
				     struct vb_error *err)
{
	char dir[1200];
	long best = -1;
	DIR *dp;
	struct dirent *de;
	snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
	dp = opendir(dir);
	if (!dp)
		return vb_fail(err, VB_ERR_IO, "train: %s: %s", dir,
			       strerror(errno));
	while ((de = readdir(dp)) != NULL) {
		long s;
		char tail[32];
		if (sscanf(de->d_name, "step-%ld.%31s", &s, tail) != 2 ||
		    strcmp(tail, "safetensors") != 0)
			continue;
		if ((before <= 0 || s < before) && s > best)
			best = s;
	}
	closedir(dp);
	if (best < 0)
		return vb_fail(err, VB_ERR_IO, "train: %s holds no checkpoint "
			       "before step %ld", dir, before);
	snprintf(path, cap, "%s/step-%09ld.safetensors", dir, best);
	*step = best;
	return VB_OK;
}
