/* heldout: the evaluation pass of an epoch (eval loss and its parts),
 * reconstruction error per evaluation batch, snapshots of the model at the
 * best and the last finite epoch, and the importance-sampled NLL on them
 * at the run's end (heldout.h). The epoch loop is train.c's; the
 * estimators are models/nll.c's. */
#include "heldout.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "files.h"
#include "params.h"
#include "run.h"
#include "runconfig.h"
#include "train.h"


static bool nll_on(const struct run *r)
{
	return r->c->eval.nll_samples > 0 && !r->o->replay &&
	       r->d->eval.n > 0 && r->model->ops->networks;
}

static void snapshot_file(const char *dir, bool best, char *path, size_t cap)
{
	snprintf(path, cap, "%s/.heldout-%s.safetensors", dir,
		 best ? "best" : "last");
}

static void snapshot_path(const struct run *r, bool best, char *path,
			  size_t cap)
{
	snapshot_file(r->dir, best, path, cap);
}

enum vb_status heldout_setup(struct run *r, struct vb_error *err)
{
	const struct config *c = r->c;
	size_t D = r->d->train.d, n = (size_t)c->train.eval_batch;
	size_t np = r->model->params->n;
	enum vb_status st;
	st = graph_create(n * (D > (size_t)c->model.hidden
				       ? D
				       : (size_t)c->model.hidden) *
				  sizeof(vb_real) * 8,
			  &r->gh, err);
	if (st)
		return st;
	st = runconfig_graph(c, r->gh, err);
	if (st)
		return st;
	r->ho_sse = malloc(n * sizeof *r->ho_sse);
	r->ho_bce = malloc(n * sizeof *r->ho_bce);
	if (!r->ho_sse || !r->ho_bce)
		return vb_fail(err, VB_ERR_NOMEM, "train: held-out buffers");
	if (!nll_on(r))
		return VB_OK;
	r->ho_best = malloc(np * sizeof *r->ho_best);
	r->ho_last = malloc(np * sizeof *r->ho_last);
	if (!r->ho_best || !r->ho_last)
		return vb_fail(err, VB_ERR_NOMEM, "train: held-out snapshots");
	return VB_OK;
}

void heldout_teardown(struct run *r)
{
	char path[1200];
	if (r->ho_best) {
		snapshot_path(r, true, path, sizeof path);
		unlink(path);
		snapshot_path(r, false, path, sizeof path);
		unlink(path);
	}
	graph_free(r->gh);
	free(r->ho_sse);
	free(r->ho_bce);
	free(r->ho_best);
	free(r->ho_last);
	r->gh = NULL;
	r->ho_sse = r->ho_bce = NULL;
	r->ho_best = r->ho_last = NULL;
}

enum vb_status heldout_recon(struct run *r, size_t nb, double *sse,
			     double *bce, struct vb_error *err)
{
	enum vb_status st = model_recon_error(r->model, r->gh, r->x, nb,
					      r->ho_sse, r->ho_bce, err);
	if (st == VB_ERR_CONFIG && !r->model->ops->networks) {
		/* a model without networks has no reconstruction */
		*sse = *bce = NAN;
		return VB_OK;
	}
	for (size_t i = 0; st == VB_OK && i < nb; i++) {
		*sse += r->ho_sse[i];
		*bce += r->ho_bce[i];
	}
	return st;
}

/* The model state (buffers, the RHVAE's metric) as a small file. */
static enum vb_status write_state(struct run *r, bool best,
				  struct vb_error *err)
{
	struct checkpoint_writer *w = NULL;
	char path[1200];
	enum vb_status st = checkpoint_writer_create(&w, err);
	snapshot_path(r, best, path, sizeof path);
	if (st == VB_OK)
		st = model_save_state(r->model, w, err);
	if (st == VB_OK) /* for a resumed run (heldout_resume) */
		st = checkpoint_add(w, HELDOUT_PARAMS, CHECKPOINT_REAL, 1,
				    (size_t[1]){r->model->params->n},
				    best ? r->ho_best : r->ho_last, err);
	if (st == VB_OK)
		st = checkpoint_add_meta(w, "format", "vaebench-heldout-1",
					 err);
	if (st == VB_OK)
		st = checkpoint_write(w, path, err);
	checkpoint_writer_free(w);
	return st;
}

enum vb_status heldout_snapshot(struct run *r, bool best,
				struct vb_error *err)
{
	const struct params *p = r->model->params;
	enum vb_status st;
	if (!r->ho_last)
		return VB_OK;
	memcpy(r->ho_last, p->data, p->n * sizeof *p->data);
	st = write_state(r, false, err);
	r->ho_has_last = st == VB_OK;
	if (st != VB_OK || !best)
		return st;
	memcpy(r->ho_best, p->data, p->n * sizeof *p->data);
	st = write_state(r, true, err);
	r->ho_has_best = st == VB_OK;
	return st;
}

/* The snapshot best / last of the interrupted run in dir, of epoch
 * `epoch`, opened into *ck when it can serve a run resumed after epoch
 * `at`: it holds the parameters, or (a file written before they were
 * kept in it) it is of epoch `at`, whose parameters are the resume
 * checkpoint's (the epoch-end checkpoint follows the snapshot with no step
 * in between). False (nothing open) otherwise or when it is missing. */
static bool open_snapshot(const char *dir, bool best, long epoch, long at,
			  struct checkpoint **ck)
{
	char path[1200];
	snapshot_file(dir, best, path, sizeof path);
	*ck = NULL;
	if (!files_exists(path) || checkpoint_open(path, ck, NULL) != VB_OK)
		return false;
	if (checkpoint_data(*ck, HELDOUT_PARAMS) || epoch == at)
		return true;
	checkpoint_close(*ck);
	*ck = NULL;
	return false;
}

/* Snapshot best / last of an interrupted run into r->ho_best / ho_last
 * (open_snapshot's rule; without parameters in the file, the model's,
 * just loaded from the resume checkpoint). */
static bool load_snapshot(struct run *r, bool best, long epoch, long at)
{
	struct checkpoint *ck;
	const struct params *p = r->model->params;
	vb_real *dst = best ? r->ho_best : r->ho_last;
	bool ok = open_snapshot(r->dir, best, epoch, at, &ck);
	if (ok && checkpoint_data(ck, HELDOUT_PARAMS))
		ok = checkpoint_read_real(ck, HELDOUT_PARAMS, 1,
					  (size_t[1]){p->n}, dst,
					  NULL) == VB_OK;
	else if (ok)
		memcpy(dst, p->data, p->n * sizeof *p->data);
	checkpoint_close(ck);
	return ok;
}

bool heldout_resumable(const char *run_dir, long best_epoch,
		       long last_epoch, long at)
{
	long need[2] = {best_epoch, last_epoch};
	for (int i = 0; i < 2; i++) {
		struct checkpoint *ck;
		if (need[i] < 1)
			continue;
		if (!open_snapshot(run_dir, i == 0, need[i], at, &ck))
			return false;
		checkpoint_close(ck);
	}
	return true;
}

enum vb_status heldout_resume(struct run *r, struct vb_error *err)
{
	const struct train_summary *s = r->sum;
	long epoch[2] = {s->nll_best_set ? 0 : s->best_epoch,
			 s->nll_last_set ? 0 : s->last_finite_epoch};
	bool *has[2] = {&r->ho_has_best, &r->ho_has_last};
	const char *what[2] = {"best epoch", "last finite epoch"};
	if (!r->ho_best)
		return VB_OK;
	for (int i = 0; i < 2; i++)
		if (epoch[i] >= 1 &&
		    !(*has[i] = load_snapshot(r, i == 0, epoch[i],
					      s->epochs_done))) {
			char path[1200];
			snapshot_path(r, i == 0, path, sizeof path);
			return vb_fail(err, VB_ERR_DATA, "train: --resume %s: "
				       "the held-out snapshot of its %s (%ld, "
				       "%s) is missing or has no parameters "
				       "(an older vaebench): its IS-NLL cannot "
				       "be computed; --force reruns it", r->dir,
				       what[i], epoch[i],
				       strrchr(path, '/') + 1);
		}
	return VB_OK;
}

/* The mean NLL of x (n images) under snapshot best / last. */
static enum vb_status nll_of(struct run *r, bool best, const vb_real *x,
			     size_t n, double *nll, double *out,
			     struct vb_error *err)
{
	struct params *p = r->model->params;
	struct checkpoint *ck = NULL;
	struct rng rs;
	char path[1200];
	double sum = 0;
	enum vb_status st;
	memcpy(p->data, best ? r->ho_best : r->ho_last,
	       p->n * sizeof *p->data);
	snapshot_path(r, best, path, sizeof path);
	st = checkpoint_open(path, &ck, err);
	if (st == VB_OK)
		st = model_load_state(r->model, ck, err);
	checkpoint_close(ck);
	if (st != VB_OK)
		return st;
	rng_seed(&rs, r->c->train.seed ^ HELDOUT_NLL_SEED_SALT,
		 RNG_STREAM_NOISE);
	st = model_nll(r->model, r->gh, x, n,
		       (size_t)r->c->eval.nll_samples,
		       (size_t)r->c->eval.nll_chunk, &rs, nll, err);
	for (size_t i = 0; st == VB_OK && i < n; i++)
		sum += nll[i];
	*out = sum / (double)n;
	return st;
}

enum vb_status heldout_nll(struct run *r, struct vb_error *err)
{
	const struct dataset *ds = &r->d->eval;
	size_t n = (size_t)r->c->eval.nll_images, D = ds->d;
	double t0 = files_now(), *nll = NULL;
	vb_real *x = NULL;
	enum vb_status st = VB_OK;
	if (!r->ho_has_last && !r->ho_has_best)
		return VB_OK;
	if (n > ds->n)
		n = ds->n;
	if (r->log && r->c->run.progress != CONFIG_PROGRESS_OFF) {
		fprintf(r->log, "held-out IS-NLL: %zu images x %lld samples at "
			"epoch %ld (best) and %ld (last finite)...\n", n,
			(long long)r->c->eval.nll_samples, r->sum->best_epoch,
			r->sum->last_finite_epoch);
		fflush(r->log);
	}
	x = malloc(n * D * sizeof *x);
	nll = malloc(n * sizeof *nll);
	if (!x || !nll)
		st = vb_fail(err, VB_ERR_NOMEM, "train: held-out NLL");
	if (st == VB_OK) {
		dataset_batch(ds, NULL, n, (vb_real)r->c->data.scale, x);
		st = preprocess_apply(&r->prep, x, n, NULL, err);
	}
	if (st == VB_OK && r->ho_has_best) {
		st = nll_of(r, true, x, n, nll, &r->sum->nll_best, err);
		r->sum->nll_best_set = st == VB_OK;
	}
	if (st == VB_OK && r->ho_has_last && r->sum->nll_best_set &&
	    r->sum->best_epoch == r->sum->last_finite_epoch) {
		/* the same state and draws: the same number, computed once */
		r->sum->nll_last = r->sum->nll_best;
		r->sum->nll_last_set = true;
	} else if (st == VB_OK && r->ho_has_last) {
		st = nll_of(r, false, x, n, nll, &r->sum->nll_last, err);
		r->sum->nll_last_set = st == VB_OK;
	}
	free(x);
	free(nll);
	r->sum->nll_seconds = files_now() - t0;
	return st;
}

/* ---- the evaluation loss of one epoch ---- */

/* Evaluation progress: on a terminal a line rewritten every few batches,
 * otherwise a line every run.progress_every seconds (the RHVAE's
 * evaluation against its stored centres can take a minute). */
static void eval_progress(struct run *r, long epoch, size_t b, size_t n,
			  double t0)
{
	double now = files_now();
	if (r->tty && (b % 4 == 0 || b == n)) {
		fprintf(r->log, "\reval epoch %ld: batch %zu/%zu (%.0f s) ",
			epoch, b, n, now - t0);
		if (b == n)
			fputc('\r', r->log);
		fflush(r->log);
	} else if (r->progress_lines &&
		   now - r->progress_last >= r->c->run.progress_every) {
		r->progress_last = now;
		fprintf(r->log, "eval epoch %ld: batch %zu/%zu, %.0f s\n",
			epoch, b, n, now - t0);
		fflush(r->log);
	}
}

enum vb_status heldout_eval_epoch(struct run *r, long epoch, double *loss,
				  double *recon, double *reg, double *sse,
				  double *bce, struct vb_error *err)
{
	const struct dataset *ds = &r->d->eval;
	size_t B = (size_t)r->c->train.eval_batch, n = ds->n, D = ds->d;
	size_t n_batches = (n + B - 1) / B;
	double sum = 0, rsum = 0, ksum = 0, ssum = 0, bsum = 0;
	bool old;
	enum vb_status st = VB_OK;

	double t0 = files_now();
	r->ev_n = 0; /* an evaluation event names no training batch */
	rng_permutation(&r->eval_noise, r->eval_perm, n);
	for (size_t b = 0; b < n_batches; b++) {
		eval_progress(r, epoch, b, n_batches, t0);
		size_t nb = b + 1 < n_batches ? B : n - b * B;
		size_t xs[2] = {nb, D};
		struct model_out mo;
		dataset_batch(ds, r->eval_perm + b * B, nb,
			      (vb_real)r->c->data.scale, r->x);
		st = preprocess_apply(&r->prep, r->x, nb, NULL, err);
		if (st != VB_OK)
			return st;
		graph_reset(r->g);
		if (r->anomaly_on)
			anomaly_begin(&r->an, GUARD_PHASE_EVAL, epoch, r->step,
				      nb, r->eval_perm + b * B);
		old = graph_set_grad_enabled(r->g, false);
		st = model_build_loss(r->model, r->g,
				      graph_input(r->g, "input",
						  tensor_view(r->x, 2, xs),
						  false),
				      &r->eval_noise, false, &mo, err);
		graph_set_grad_enabled(r->g, old);
		if (st != VB_OK)
			return st;
		sum += mo.loss->value.data[0];
		rsum += run_mean_of(mo.recon);
		ksum += run_mean_of(mo.reg);
		st = heldout_recon(r, nb, &ssum, &bsum, err);
		if (st != VB_OK)
			return st;
		/* pythae's evaluation forward validates its arguments too */
		if (run_pythae_raised(r, epoch, GUARD_PHASE_EVAL,
				      mo.loss->value.data[0])) {
			sum = NAN; /* pythae raised: no eval loss */
			break;
		}
		if (r->c->train.nan_check == CONFIG_NAN_CHECK_PYTHAE &&
		    sum != sum) {
			run_stop_event(r, epoch, GUARD_PHASE_EVAL, "eval_loss_sum",
				   sum);
			snprintf(r->sum->message, sizeof r->sum->message,
				 "NaN detected in eval loss");
			snprintf(r->sum->pythae_error,
				 sizeof r->sum->pythae_error, "nan_loss");
			break;
		}
	}
	if (r->tty) { /* clear the evaluation's progress line */
		fprintf(r->log, "\r%48s\r", "");
		fflush(r->log);
	}
	*loss = sum / (double)n_batches;
	*recon = rsum / (double)n_batches;
	*reg = ksum / (double)n_batches;
	*sse = ssum / (double)n;
	*bce = bsum / (double)n;
	if (r->c->train.nan_check == CONFIG_NAN_CHECK_STRICT &&
	    !isfinite(*loss))
		run_stop_event(r, epoch, GUARD_PHASE_EVAL, "eval_loss", *loss);
	return st;
}
