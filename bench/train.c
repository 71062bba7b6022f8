/* train: the training loop of DESIGN.md / STYLE.md section 7 with the
 * cheap guard or anomaly mode, fault injection, the precursor ring, resume
 * checkpoints and step dumps, per-epoch evaluation and the run folder;
 * the mitigations of issue 6 (half-precision emulation through the tape's
 * rounding mode, loss scaling as GradScaler, gradient accumulation).
 * Everything that allocates happens before the first step; the step loop
 * reuses the tape's arena and preallocated buffers. */
#include "train.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "anomaly.h"
#include "checkpoint.h"
#include "graph.h"
#include "linalg.h"
#include "mnist.h"
#include "model.h"
#include "ops.h"
#include "optim.h"
#include "params.h"
#include "plot.h"
#include "preprocess.h"
#include "rng.h"

#ifndef VB_GIT_COMMIT
#define VB_GIT_COMMIT "unknown"
#endif

/* Eval batches draw their noise from a stream of their own so that the
 * number of eval batches never shifts the training noise. */
#define TRAIN_EVAL_SEED_SALT 0x6576616c6e6f6973ull

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

enum vb_status train_mkdirs(const char *path, struct vb_error *err)
{
	char buf[1100];
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof buf)
		return vb_fail(err, VB_ERR_IO, "train: bad folder name '%s'",
			       path);
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] == '/' || buf[i] == '\0') {
			char c = buf[i];
			buf[i] = '\0';
			if (mkdir(buf, 0777) != 0 && errno != EEXIST)
				return vb_fail(err, VB_ERR_IO,
					       "train: cannot create folder "
					       "%s: %s", buf, strerror(errno));
			buf[i] = c;
		}
	}
	return VB_OK;
}

/* ---- data ---- */

static enum vb_status load_split(const struct config *c, int split,
				 struct dataset *out, struct vb_error *err)
{
	const char *names[] = {"train", "t10k"};
	const char *dir = c->data.dir;
	if (c->data.dataset == CONFIG_DATASET_SYNTHETIC) {
		size_t n = (size_t)(split == CONFIG_SPLIT_TRAIN
					    ? c->data.synthetic_n
					    : c->data.synthetic_eval_n);
		return dataset_synthetic(n, 28, 28,
					 c->train.seed + (uint64_t)split * 7919u,
					 out, err);
	}
	if (!dir[0])
		dir = mnist_default_dir(c->data.dataset ==
						CONFIG_DATASET_FASHION_MNIST
					? "fashion-mnist"
					: "mnist");
	return mnist_load(dir, names[split], out, err);
}

static enum vb_status cut(const struct dataset *full, int64_t begin,
			  int64_t end, const char *what, struct dataset *out,
			  struct vb_error *err)
{
	size_t e = end < 0 ? full->n : (size_t)end;
	if ((size_t)begin >= e || e > full->n)
		return vb_fail(err, VB_ERR_CONFIG,
			       "config: data.%s_begin/%s_end = %lld..%lld: "
			       "expected a non-empty range within the %zu "
			       "images of %s", what, what, (long long)begin,
			       (long long)end, full->n, full->name);
	return dataset_subset(full, (size_t)begin, e, out, err);
}

enum vb_status train_data_load(const struct config *c, struct train_data *d,
			       struct vb_error *err)
{
	enum vb_status st;
	memset(d, 0, sizeof *d);
	st = load_split(c, c->data.train_split, &d->train_full, err);
	if (st == VB_OK)
		st = load_split(c, c->data.eval_split, &d->eval_full, err);
	if (st == VB_OK)
		st = cut(&d->train_full, c->data.train_begin,
			 c->data.train_end, "train", &d->train, err);
	if (st == VB_OK)
		st = cut(&d->eval_full, c->data.eval_begin, c->data.eval_end,
			 "eval", &d->eval, err);
	if (st == VB_OK && d->train.d != d->eval.d)
		st = vb_fail(err, VB_ERR_DATA,
			     "data: train images have %zu pixels, eval %zu",
			     d->train.d, d->eval.d);
	if (st != VB_OK)
		train_data_free(d);
	return st;
}

void train_data_free(struct train_data *d)
{
	dataset_free(&d->train);
	dataset_free(&d->eval);
	dataset_free(&d->train_full);
	dataset_free(&d->eval_full);
}

/* ---- the run ---- */

/* One step of the precursor ring (guard.precursors of them). */
struct precursor {
	long epoch, step;
	double lr, loss, recon, reg;
	double grad_norm, median;  /* median of the previous window */
	double max_param, max_logvar, max_z;
	bool spike;                /* grad_norm > lead_factor x median */
};

#define TRAIN_MAX_WATCH 8
/* The running median needs this many earlier steps before it flags. */
#define TRAIN_LEAD_MIN_STEPS 8

struct run {
	const struct config *c;
	const struct train_data *d;
	const struct train_options *o;
	struct model *model;
	struct optim *opt;
	struct optim_schedule sched;
	struct graph *g;
	struct rng shuffle, noise, eval_noise;
	size_t *perm;       /* (n_train) */
	size_t *eval_perm;  /* (n_eval) */
	vb_real *x;         /* (max batch, D) */
	double *norms;      /* (steps per epoch) grad norms of this epoch */
	double *sorted;     /* scratch for the median */
	long step;          /* optimiser steps done */
	struct train_summary *sum;
	FILE *log;
	bool tty;
	/* forensics */
	struct anomaly an;
	bool anomaly_on;
	long start_epoch;        /* resume: 1-based epoch to start in */
	size_t start_batch;      /* resume: batches of it already done */
	struct precursor *ring;  /* (ring_cap) */
	double *ring_layers;     /* (ring_cap, n_entries) grad norm per tensor */
	double *ring_watch;      /* (ring_cap, n_watch) */
	double *win;             /* (ring_cap) median scratch */
	size_t ring_cap;
	size_t ring_n;           /* records written so far */
	char watch[TRAIN_MAX_WATCH][GRAPH_NAME_LEN];
	size_t n_watch;
	char dir[1100];          /* run folder */
	char last_ckpt[1200];    /* latest resume checkpoint ("" none) */
	long last_ckpt_step;
	bool ckpt_pending;       /* a resume checkpoint is due at epoch end */
	vb_real *p_before;       /* (n) dump: parameters before the update */
	struct preprocess prep;  /* standardisation, non-finite rule */
	/* train.loss_scale: the scale S (a float value, as PyTorch's
	 * GradScaler keeps it; 1 without scaling) and the good steps since
	 * the last growth or backoff */
	double scale;
	long scale_good;
};

static bool scaler_on(const struct run *r)
{
	return r->c->train.loss_scale != CONFIG_LOSS_SCALE_NONE;
}

static double epoch_lr(const struct run *r, long epoch0)
{
	return optim_schedule_lr(&r->sched, r->c->optim.lr, epoch0, r->step);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double mean_of(const struct graph_node *n)
{
	double acc = 0;
	if (!n)
		return NAN;
	for (size_t i = 0; i < n->value.n; i++)
		acc += n->value.data[i];
	return n->value.n ? acc / (double)n->value.n : 0;
}

/* Records the guard's event (the first one wins) and, in anomaly mode,
 * the origin the hook found. Returns true when this call recorded it. */
static bool stop_event(struct run *r, long epoch, enum guard_phase phase,
		       const char *quantity, double value)
{
	if (!guard_record(&r->sum->first, epoch, r->step, phase, quantity,
			  value))
		return false;
	r->sum->status = guard_classify(value);
	if (r->sum->status == GUARD_STATUS_OK)
		r->sum->status = GUARD_STATUS_NAN;
	if (r->anomaly_on && r->an.ev.set)
		guard_copy_origin(&r->sum->first, &r->an.ev);
	return true;
}

/* The run ends at its first event unless train.skip_nonfinite skipped it
 * (status still ok). */
static bool run_stopped(const struct train_summary *s)
{
	return s->first.set && s->status != GUARD_STATUS_OK;
}

struct epoch_stats {
	double loss, recon, reg;   /* means over n_loss micro-batches */
	long batches;              /* optimiser steps applied */
	long n_loss;               /* micro-batches in the loss means */
	long images;               /* images through a training forward */
	double gmin, gmed, gmax;
	bool stop;
};

/* Checks the parameters after an update (one integer pass that also
 * gives max |param|); names the first bad one and its cause. */
static bool params_finite(struct run *r, long epoch, double *max_abs)
{
	size_t bad;
	struct params *p = r->model->params;
	char q[GUARD_QUANTITY_LEN];
	long e;
	*max_abs = guard_max_abs(p->data, p->n);
	if (isfinite(*max_abs))
		return true;
	guard_all_finite(p->data, p->n, &bad);
	e = params_locate(p, bad);
	snprintf(q, sizeof q, "param:%s", e >= 0 ? p->entries[e].name : "?");
	if (stop_event(r, epoch, GUARD_PHASE_UPDATE, q, p->data[bad]) &&
	    !r->sum->first.origin)
		anomaly_describe_update(&r->sum->first, p, r->opt, p->grad,
					bad);
	return false;
}

/* ---- fault injection (inject.*) ---- */

static bool inject_due(const struct run *r, int phase)
{
	const struct config_inject *in = &r->c->inject;
	if (in->nan_step < 0 || in->nan_phase != phase)
		return false;
	if (phase == CONFIG_NAN_PHASE_UNNORMALIZED)
		return r->step + 1 >= in->nan_step;
	return r->step + 1 == in->nan_step;
}

/* Writes inject.value into x[index] (every element for index -1). */
static void inject_apply(const struct config_inject *in, vb_real *x,
			 size_t n)
{
	size_t lo = in->index < 0 ? 0 : (size_t)in->index;
	size_t hi = in->index < 0 ? n : lo + 1;
	for (size_t i = lo; i < hi && i < n; i++)
		x[i] = in->value == CONFIG_INJECT_NAN   ? (vb_real)NAN
		       : in->value == CONFIG_INJECT_INF ? (vb_real)INFINITY
			: (vb_real)((double)x[i] * in->scale);
}

/* The slice inject.param names (the whole buffer when empty). */
static vb_real *inject_target(struct run *r, vb_real *buf, size_t *n)
{
	struct params *p = r->model->params;
	long e = r->c->inject.param[0] ? params_find(p, r->c->inject.param)
				       : -1;
	if (e < 0) {
		*n = p->n;
		return buf;
	}
	*n = p->entries[e].n;
	return buf + p->entries[e].offset;
}

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
	if (k < TRAIN_LEAD_MIN_STEPS)
		return NAN;
	qsort(r->win, k, sizeof *r->win, cmp_double);
	return k % 2 ? r->win[k / 2] : 0.5 * (r->win[k / 2 - 1] + r->win[k / 2]);
}

static void precursor_record(struct run *r, long epoch, double lr,
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
	pr->recon = have_out ? mean_of(mo->recon) : NAN;
	pr->reg = have_out ? mean_of(mo->reg) : NAN;
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

static void csv_double(FILE *f, double v);
static enum vb_status write_atomic(const char *path, const char *text,
				   struct vb_error *err);

static enum vb_status write_precursors(struct run *r, const char *path,
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
			csv_double(f, v[i]);
		}
		fprintf(f, ",%d,", pr->spike ? 1 : 0);
		csv_double(f, pr->max_param);
		fputc(',', f);
		csv_double(f, pr->max_logvar);
		fputc(',', f);
		csv_double(f, pr->max_z);
		for (size_t w = 0; w < r->n_watch; w++) {
			fputc(',', f);
			csv_double(f, r->ring_watch[slot * r->n_watch + w]);
		}
		for (size_t e = 0; e < p->n_entries; e++) {
			fputc(',', f);
			csv_double(f, r->ring_layers[slot * p->n_entries + e]);
		}
		fputc('\n', f);
	}
	fclose(f);
	st = buf ? write_atomic(path, buf, err)
		 : vb_fail(err, VB_ERR_NOMEM, "train: no memory");
	free(buf);
	return st;
}

/* ---- checkpoints for resuming ---- */

static enum vb_status write_checkpoint(struct run *r, const char *path,
				       long epoch, long batch,
				       struct vb_error *err);

/* Writes run_dir/checkpoints/step-S.safetensors (epochs_done epochs and
 * batch batches of the next done) and drops the previous one unless it is
 * the step-0 one. */
static enum vb_status resume_checkpoint(struct run *r, long epochs_done,
					long batch, struct vb_error *err)
{
	char path[1200];
	enum vb_status st;
	snprintf(path, sizeof path, "%s/checkpoints", r->dir);
	st = train_mkdirs(path, err);
	if (st)
		return st;
	snprintf(path, sizeof path, "%s/checkpoints/step-%09ld.safetensors",
		 r->dir, r->step);
	st = write_checkpoint(r, path, epochs_done, batch, err);
	if (st)
		return st;
	if (r->last_ckpt[0] && r->last_ckpt_step > 0 &&
	    strcmp(r->last_ckpt, path) != 0)
		remove(r->last_ckpt);
	snprintf(r->last_ckpt, sizeof r->last_ckpt, "%s", path);
	r->last_ckpt_step = r->step;
	return VB_OK;
}

static bool checkpoints_on(const struct run *r)
{
	return !r->o->replay &&
	       (r->c->run.checkpoint_every > 0 || r->c->guard.replay);
}

static enum vb_status load_resume(struct run *r, const char *path,
				  struct vb_error *err)
{
	struct checkpoint *ck = NULL;
	struct params *p = r->model->params;
	uint64_t rs[3][RNG_STATE_WORDS];
	int64_t step = 0, ep = 0, batch = 0, ostep = -1, sgood = 0;
	double sscale = r->scale;
	enum vb_status st = checkpoint_open(path, &ck, err);
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
	if (st == VB_OK)
		st = checkpoint_read_raw(ck, "trainer.step", CHECKPOINT_I64, 1,
					 &step, err);
	if (st == VB_OK)
		st = checkpoint_read_raw(ck, "trainer.epoch", CHECKPOINT_I64, 1,
					 &ep, err);
	if (st == VB_OK)
		st = checkpoint_read_raw(ck, "trainer.rng_state",
					 CHECKPOINT_U64, 3 * RNG_STATE_WORDS,
					 rs, err);
	if (st == VB_OK && checkpoint_data(ck, "trainer.batch"))
		st = checkpoint_read_raw(ck, "trainer.batch", CHECKPOINT_I64,
					 1, &batch, err);
	if (st == VB_OK && checkpoint_data(ck, "optimizer.step"))
		st = checkpoint_read_raw(ck, "optimizer.step", CHECKPOINT_I64,
					 1, &ostep, err);
	if (st == VB_OK && checkpoint_data(ck, "scaler.scale"))
		st = checkpoint_read_raw(ck, "scaler.scale", CHECKPOINT_F64, 1,
					 &sscale, err);
	if (st == VB_OK && checkpoint_data(ck, "scaler.growth_tracker"))
		st = checkpoint_read_raw(ck, "scaler.growth_tracker",
					 CHECKPOINT_I64, 1, &sgood, err);
	if (st == VB_OK && batch > 0) {
		size_t n = r->d->train.n;
		int64_t *tmp = malloc(n * sizeof *tmp);
		st = tmp ? checkpoint_read_raw(ck, "trainer.perm",
					       CHECKPOINT_I64, n, tmp, err)
			 : vb_fail(err, VB_ERR_NOMEM, "train: no memory");
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
	}
	if (st == VB_OK)
		st = model_load_state(r->model, ck, err);
	checkpoint_close(ck);
	if (st != VB_OK)
		return st;
	if (step < 0 || ep < 0 || batch < 0)
		return vb_fail(err, VB_ERR_DATA, "train: %s: negative step, "
			       "epoch or batch", path);
	if (scaler_on(r) && (!(sscale >= 0) || sgood < 0))
		return vb_fail(err, VB_ERR_DATA, "train: %s: loss scaler state "
			       "%g, %lld: expected a scale >= 0 and a count "
			       ">= 0", path, sscale, (long long)sgood);
	r->step = (long)step;
	r->opt->step = ostep >= 0 ? (long)ostep : (long)step;
	if (scaler_on(r)) {
		r->scale = sscale;
		r->scale_good = (long)sgood;
	}
	r->start_epoch = (long)ep + 1;
	r->start_batch = (size_t)batch;
	rng_state_load(&r->shuffle, rs[0]);
	rng_state_load(&r->noise, rs[1]);
	rng_state_load(&r->eval_noise, rs[2]);
	if (r->o->reset_optimizer)
		optim_reset(r->opt);
	return VB_OK;
}

/* ---- the dump of one step (replay --dump) ---- */

static enum vb_status write_dump(struct run *r, const char *path, long epoch,
				 const size_t *ids, size_t nb, bool updated,
				 struct vb_error *err)
{
	struct checkpoint_writer *w = NULL;
	struct params *p = r->model->params;
	size_t D = r->d->train.d, n_nodes = graph_node_count(r->g);
	size_t xs[2] = {nb, D}, one[1] = {1}, ns[1] = {nb};
	int64_t *idx = malloc((nb ? nb : 1) * sizeof *idx), st64 = r->step,
		ep64 = epoch;
	char *table = NULL;
	size_t tlen = 0;
	FILE *tf = open_memstream(&table, &tlen);
	enum vb_status st = checkpoint_writer_create(&w, err);
	if (st == VB_OK && (!idx || !tf))
		st = vb_fail(err, VB_ERR_NOMEM, "train: no memory for the dump");
	for (size_t i = 0; st == VB_OK && i < nb; i++)
		idx[i] = (int64_t)ids[i];
	if (st == VB_OK)
		st = checkpoint_add(w, "batch.indices", CHECKPOINT_I64, 1, ns,
				    idx, err);
	if (st == VB_OK)
		st = checkpoint_add(w, "batch.x", CHECKPOINT_REAL, 2, xs, r->x,
				    err);
	if (st == VB_OK)
		st = checkpoint_add(w, "trainer.step", CHECKPOINT_I64, 1, one,
				    &st64, err);
	if (st == VB_OK)
		st = checkpoint_add(w, "trainer.epoch", CHECKPOINT_I64, 1, one,
				    &ep64, err);
	if (tf)
		fputs("id,name,op,kind,phase\n", tf);
	for (size_t k = 0; st == VB_OK && k < n_nodes; k++) {
		const struct graph_node *n = graph_node_at(r->g, k);
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
			dup = !strcmp(graph_node_at(r->g, j)->name, n->name);
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
	if (tf) {
		fclose(tf);
		tf = NULL;
	}
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
	free(idx);
	return st;
}

static long dump_step(const struct run *r)
{
	if (!r->o->dump)
		return -1;
	return r->o->dump_step > 0 ? r->o->dump_step : r->o->stop_step;
}

/* train.skip_nonfinite: the batch gets no update and training goes on.
 * The first such event is still recorded (with its forensics), but the
 * run's status stays ok unless something unskippable follows. */
static void skip_batch(struct run *r, long epoch, enum guard_phase phase,
		       const char *quantity, double value)
{
	enum guard_status before = r->sum->status;
	stop_event(r, epoch, phase, quantity, value);
	r->sum->status = before;
	r->sum->skipped++;
}

/* Counts optimiser step r->step + 1 as begun (once per step: the first of
 * its micro-batches that gets this far). */
static void step_begin(struct run *r, bool *counted)
{
	if (!*counted) {
		r->step++;
		*counted = true;
	}
}

/* Loss scaling: the seed of every micro-batch's backward is S / N (the
 * loss divided by train.accumulate, times the scale). */
static double backward_seed(const struct run *r)
{
	return r->scale / (double)r->c->train.accumulate;
}

/* GradScaler.unscale_: multiplies the summed gradients by 1/S (computed
 * in double, applied in vb_real as PyTorch's float inv_scale). Returns
 * true when every unscaled gradient is finite. */
static bool scaler_unscale(struct run *r)
{
	struct params *p = r->model->params;
	vb_real inv = (vb_real)(1.0 / r->scale);
	for (size_t i = 0; i < p->n; i++)
		p->grad[i] *= inv;
	return guard_all_finite(p->grad, p->n, NULL);
}

/* A skipped step's overflow is not the run's origin: anomaly mode starts
 * looking afresh (its check counter stays). */
static void anomaly_forget(struct anomaly *a)
{
	size_t checks = a->n_checks;
	anomaly_reset(a);
	a->n_checks = checks;
}

static enum vb_status train_epoch(struct run *r, long epoch,
				  struct epoch_stats *es,
				  struct vb_error *err)
{
	const struct config *c = r->c;
	const struct dataset *ds = &r->d->train;
	struct params *p = r->model->params;
	size_t B = (size_t)c->train.batch, n = ds->n, D = ds->d;
	size_t n_acc = (size_t)c->train.accumulate;
	size_t n_batches = (n + B - 1) / B, b0 = 0;
	double lr = epoch_lr(r, epoch - 1);
	double run_sum = 0, recon_sum = 0, reg_sum = 0;
	bool strict = c->train.nan_check == CONFIG_NAN_CHECK_STRICT;
	bool pythae = c->train.nan_check == CONFIG_NAN_CHECK_PYTHAE;
	bool scaled = c->train.loss_scale != CONFIG_LOSS_SCALE_NONE;
	bool dynamic = c->train.loss_scale == CONFIG_LOSS_SCALE_DYNAMIC;
	long every = (long)c->run.checkpoint_every;
	double t0 = now_seconds();
	enum vb_status st;

	memset(es, 0, sizeof *es);
	if (epoch == r->start_epoch && r->start_batch > 0) {
		/* resumed mid-epoch: the permutation came with the checkpoint
		 * and the shuffle stream is already past it */
		b0 = r->start_batch;
		r->start_batch = 0;
	} else if (c->train.shuffle) {
		rng_permutation(&r->shuffle, r->perm, n);
	} else {
		for (size_t i = 0; i < n; i++)
			r->perm[i] = i;
	}
	/* One optimiser step per group of n_acc micro-batches [b, b_end);
	 * the last group of the epoch may be shorter. */
	for (size_t b = b0, b_end; b < n_batches; b = b_end) {
		size_t nb = 0;
		const size_t *ids = NULL;
		struct model_out mo;
		double loss = NAN, gnorm = NAN, max_param = NAN;
		double loss_g = 0, recon_g = 0, reg_g = 0; /* micro sums */
		size_t n_micro = 0;
		bool stop = false, have_out = false, have_grad = false;
		bool updated = false, dump_now, counted = false;
		bool inj_input = inject_due(r, CONFIG_NAN_PHASE_INPUT);
		bool inj_param = inject_due(r, CONFIG_NAN_PHASE_PARAM);
		bool inj_grad = inject_due(r, CONFIG_NAN_PHASE_GRAD);
		bool inj_raw = inject_due(r, CONFIG_NAN_PHASE_UNNORMALIZED);
		struct graph_node *xn;
		size_t tn;
		vb_real *tp;

		b_end = n_batches - b > n_acc ? b + n_acc : n_batches;
		if (c->train.max_steps > 0 && r->step >= c->train.max_steps) {
			es->stop = true;
			break;
		}
		if (r->o->stop_step > 0 && r->step >= r->o->stop_step) {
			es->stop = true;
			break;
		}
		dump_now = dump_step(r) == r->step + 1;
		memset(&mo, 0, sizeof mo);
		if (c->optim.schedule == CONFIG_SCHEDULE_WARMUP)
			lr = epoch_lr(r, epoch - 1);
		if (inj_param) {
			tp = inject_target(r, p->data, &tn);
			inject_apply(&c->inject, tp, tn);
		}
		for (size_t m = b; m < b_end; m++) {
			double mloss;
			nb = m + 1 < n_batches ? B : n - m * B;
			ids = r->perm + m * B;
			size_t xs[2] = {nb, D};
			dataset_batch(ds, ids, nb, (vb_real)c->data.scale,
				      r->x);
			st = preprocess_apply(&r->prep, r->x, nb, NULL, err);
			if (st != VB_OK)
				return st;
			if (inj_raw)
				for (size_t i = 0; i < nb * D; i++)
					r->x[i] = (vb_real)((double)r->x[i] *
							    c->data.scale);
			if (inj_input && m == b)
				inject_apply(&c->inject, r->x, nb * D);
			if (c->train.skip_nonfinite) {
				size_t bad;
				if (!guard_all_finite(r->x, nb * D, &bad)) {
					step_begin(r, &counted);
					skip_batch(r, epoch, GUARD_PHASE_INPUT,
						   "input", r->x[bad]);
					graph_reset(r->g);
					params_zero_grad(p);
					goto step_end;
				}
			}
			if (strict) {
				size_t bad;
				if (!guard_all_finite(r->x, nb * D, &bad)) {
					/* steps are 1-based: this is step
					 * r->step+1 unless it began */
					bool began = counted;
					step_begin(r, &counted);
					if (stop_event(r, epoch,
						       GUARD_PHASE_INPUT,
						       "input", r->x[bad]) &&
					    !r->sum->first.origin)
						anomaly_describe_input(
							&r->sum->first, r->x,
							nb, D, ids);
					if (!began)
						r->step--;
					graph_reset(r->g);
					params_zero_grad(p);
					stop = true;
					goto step_end;
				}
			}
			graph_reset(r->g);
			if (r->anomaly_on)
				anomaly_begin(&r->an, GUARD_PHASE_FORWARD,
					      epoch, r->step + !counted, nb,
					      ids);
			xn = graph_input(r->g, "input",
					 tensor_view(r->x, 2, xs), false);
			st = model_build_loss(r->model, r->g, xn, &r->noise,
					      true, &mo, err);
			if (st != VB_OK)
				return st;
			have_out = true;
			mloss = mo.loss->value.data[0];
			step_begin(r, &counted);
			if (c->train.skip_nonfinite && !isfinite(mloss)) {
				loss = mloss;
				skip_batch(r, epoch, GUARD_PHASE_FORWARD,
					   "loss", mloss);
				goto step_end;
			}
			if (strict && !isfinite(mloss)) {
				loss = mloss;
				stop_event(r, epoch, GUARD_PHASE_FORWARD,
					   "loss", mloss);
				stop = true;
				goto step_end;
			}
			if (m == b)
				params_zero_grad(p);
			if (r->anomaly_on)
				anomaly_begin(&r->an, GUARD_PHASE_BACKWARD,
					      epoch, r->step, nb, ids);
			st = graph_backward_scaled(r->g, mo.loss,
						   backward_seed(r), err);
			if (st != VB_OK)
				return st;
			have_grad = true;
			loss_g += mloss;
			recon_g += mean_of(mo.recon);
			reg_g += mean_of(mo.reg);
			n_micro++;
			es->images += (long)nb;
		}
		loss = loss_g / (double)n_micro;
		if (inj_grad) {
			tp = inject_target(r, p->grad, &tn);
			inject_apply(&c->inject, tp, tn);
		}
		if (scaled && !scaler_unscale(r) && dynamic) {
			/* GradScaler: skip the step, back off, go on */
			gnorm = optim_grad_norm(p->grad, p->n);
			r->scale = (double)(float)(r->scale *
						   c->train.scale_backoff);
			r->scale_good = 0;
			r->sum->skipped++;
			r->sum->scaler_skipped++;
			if (r->anomaly_on)
				anomaly_forget(&r->an);
			run_sum += loss_g;
			recon_sum += recon_g;
			reg_sum += reg_g;
			es->n_loss += (long)n_micro;
			goto step_end;
		}
		if (c->optim.clip == CONFIG_CLIP_NORM)
			gnorm = optim_clip_norm(p->grad, p->n,
						c->optim.clip_max,
						c->optim.clip_eps);
		else
			gnorm = optim_grad_norm(p->grad, p->n);
		if (c->optim.clip == CONFIG_CLIP_VALUE)
			optim_clip_value(p->grad, p->n, c->optim.clip_max);
		r->norms[es->batches] = gnorm;
		if (c->train.skip_nonfinite && !isfinite(gnorm)) {
			skip_batch(r, epoch, GUARD_PHASE_BACKWARD, "grad_norm",
				   gnorm);
			params_zero_grad(p);
			goto step_end;
		}
		if (strict && !isfinite(gnorm)) {
			if (stop_event(r, epoch, GUARD_PHASE_BACKWARD,
				       "grad_norm", gnorm) &&
			    !r->sum->first.origin &&
			    r->sum->first.cause == GUARD_CAUSE_UNKNOWN)
				anomaly_describe_grad(&r->sum->first, p);
			stop = true;
			goto step_end;
		}
		if (dump_now)
			memcpy(r->p_before, p->data, p->n * sizeof *p->data);
		optim_step(r->opt, p->data, p->grad, lr);
		updated = true;
		if (dynamic && ++r->scale_good >= c->train.scale_interval) {
			/* as torch's _amp_update_scale_: grow only to a finite
			 * float */
			float grown = (float)(r->scale * c->train.scale_growth);
			if (isfinite(grown))
				r->scale = (double)grown;
			r->scale_good = 0;
		}
		run_sum += loss_g;
		recon_sum += recon_g;
		reg_sum += reg_g;
		es->n_loss += (long)n_micro;
		es->batches++;
		if (strict) {
			if (!params_finite(r, epoch, &max_param)) {
				stop = true;
				goto step_end;
			}
		} else if (r->ring_cap) {
			max_param = guard_max_abs(p->data, p->n);
		}
		if (pythae && run_sum != run_sum) {
			/* pythae tests the running sum after the update and
			 * stops with its message (rhvae.md 5.3). */
			stop_event(r, epoch, GUARD_PHASE_UPDATE,
				   "train_loss_sum", run_sum);
			snprintf(r->sum->message, sizeof r->sum->message,
				 "NaN detected in train loss");
			stop = true;
			goto step_end;
		}
step_end:
		precursor_record(r, epoch, lr, loss, &mo, have_out, gnorm,
				 have_grad, max_param);
		if (dump_now) {
			if (!have_grad && have_out) {
				/* the step stopped before its backward: run
				 * it for the dump (nothing is updated) */
				params_zero_grad(p);
				st = graph_backward_scaled(r->g, mo.loss,
							   backward_seed(r),
							   err);
				if (st != VB_OK)
					return st;
			}
			st = write_dump(r, r->o->dump, epoch, ids, nb, updated,
					err);
			if (st != VB_OK)
				return st;
		}
		if (stop) {
			es->stop = true;
			break;
		}
		if (checkpoints_on(r) && every > 0 && r->step % every == 0 &&
		    !run_stopped(r->sum)) {
			if (b_end < n_batches) {
				st = resume_checkpoint(r, epoch - 1,
						       (long)b_end, err);
				if (st != VB_OK)
					return st;
			} else {
				r->ckpt_pending = true;
			}
		}
		if (r->tty && ((b_end - 1) / n_acc % 8 == 0 ||
			       b_end == n_batches)) {
			double el = now_seconds() - t0;
			int w = 30, fill = (int)((double)b_end * w /
						 (double)n_batches);
			fprintf(r->log, "\repoch %ld/%lld [%.*s%*s] %zu/%zu "
				"loss %.4g  %.0f img/s ", epoch,
				(long long)c->train.epochs, fill,
				"==============================", w - fill, "",
				b_end, n_batches,
				run_sum / (double)(es->n_loss ? es->n_loss : 1),
				el > 0 ? (double)es->images / el : 0.0);
			fflush(r->log);
		}
	}
	if (r->tty)
		fprintf(r->log, "\n");
	if (es->n_loss) {
		es->loss = run_sum / (double)es->n_loss;
		es->recon = recon_sum / (double)es->n_loss;
		es->reg = reg_sum / (double)es->n_loss;
	} else {
		es->loss = es->recon = es->reg = NAN;
	}
	if (es->batches) {
		memcpy(r->sorted, r->norms,
		       (size_t)es->batches * sizeof *r->sorted);
		qsort(r->sorted, (size_t)es->batches, sizeof *r->sorted,
		      cmp_double);
		es->gmin = r->sorted[0];
		es->gmax = r->sorted[es->batches - 1];
		es->gmed = es->batches % 2
				   ? r->sorted[es->batches / 2]
				   : 0.5 * (r->sorted[es->batches / 2 - 1] +
					    r->sorted[es->batches / 2]);
	} else {
		es->gmin = es->gmed = es->gmax = NAN;
	}
	return VB_OK;
}

static enum vb_status eval_epoch(struct run *r, long epoch, double *loss,
				 double *recon, double *reg,
				 struct vb_error *err)
{
	const struct dataset *ds = &r->d->eval;
	size_t B = (size_t)r->c->train.eval_batch, n = ds->n, D = ds->d;
	size_t n_batches = (n + B - 1) / B;
	double sum = 0, rsum = 0, ksum = 0;
	bool old;
	enum vb_status st = VB_OK;

	rng_permutation(&r->eval_noise, r->eval_perm, n);
	for (size_t b = 0; b < n_batches; b++) {
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
		rsum += mean_of(mo.recon);
		ksum += mean_of(mo.reg);
		if (r->c->train.nan_check == CONFIG_NAN_CHECK_PYTHAE &&
		    sum != sum) {
			stop_event(r, epoch, GUARD_PHASE_EVAL, "eval_loss_sum",
				   sum);
			snprintf(r->sum->message, sizeof r->sum->message,
				 "NaN detected in eval loss");
			break;
		}
	}
	*loss = sum / (double)n_batches;
	*recon = rsum / (double)n_batches;
	*reg = ksum / (double)n_batches;
	if (r->c->train.nan_check == CONFIG_NAN_CHECK_STRICT &&
	    !isfinite(*loss))
		stop_event(r, epoch, GUARD_PHASE_EVAL, "eval_loss", *loss);
	return st;
}

static enum vb_status write_checkpoint(struct run *r, const char *path,
				       long epoch, long batch,
				       struct vb_error *err)
{
	int64_t bat = batch, ostep = r->opt->step, sgood = r->scale_good;
	double sscale = r->scale;
	int64_t *perm = NULL;
	size_t pshape[1] = {r->d->train.n};
	struct checkpoint_writer *w = NULL;
	struct params *p = r->model->params;
	char cfgtext[65536], buf[64];
	uint64_t rs[3][RNG_STATE_WORDS];
	size_t rshape[2] = {3, RNG_STATE_WORDS}, one[1] = {1};
	int64_t step = r->step, ep = epoch;
	enum vb_status st = checkpoint_writer_create(&w, err);
	FILE *mf;
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
	rng_state_save(&r->shuffle, rs[0]);
	rng_state_save(&r->noise, rs[1]);
	rng_state_save(&r->eval_noise, rs[2]);
	if (st == VB_OK)
		st = checkpoint_add(w, "trainer.rng_state", CHECKPOINT_U64, 2,
				    rshape, rs, err);
	/* resume point: batches of the next epoch done, its permutation */
	if (st == VB_OK)
		st = checkpoint_add(w, "trainer.batch", CHECKPOINT_I64, 1, one,
				    &bat, err);
	if (st == VB_OK)
		st = checkpoint_add(w, "optimizer.step", CHECKPOINT_I64, 1, one,
				    &ostep, err);
	/* the loss scaler's state, only when there is one (checkpoints of
	 * unscaled runs stay as they were) */
	if (st == VB_OK && scaler_on(r))
		st = checkpoint_add(w, "scaler.scale", CHECKPOINT_F64, 1, one,
				    &sscale, err);
	if (st == VB_OK && scaler_on(r))
		st = checkpoint_add(w, "scaler.growth_tracker", CHECKPOINT_I64,
				    1, one, &sgood, err);
	if (st == VB_OK && batch > 0) {
		perm = malloc(pshape[0] * sizeof *perm);
		if (!perm)
			st = vb_fail(err, VB_ERR_NOMEM, "train: no memory");
		for (size_t i = 0; perm && i < pshape[0]; i++)
			perm[i] = (int64_t)r->perm[i];
		if (st == VB_OK)
			st = checkpoint_add(w, "trainer.perm", CHECKPOINT_I64,
					    1, pshape, perm, err);
	}
	if (st == VB_OK)
		st = checkpoint_add(w, "trainer.step", CHECKPOINT_I64, 1, one,
				    &step, err);
	if (st == VB_OK)
		st = checkpoint_add(w, "trainer.epoch", CHECKPOINT_I64, 1, one,
				    &ep, err);
	if (st == VB_OK)
		st = model_save_state(r->model, w, err);
	mf = fmemopen(cfgtext, sizeof cfgtext, "w");
	if (st == VB_OK && mf) {
		st = config_write(r->c, mf, err);
		fputc('\0', mf);
		fclose(mf);
		cfgtext[sizeof cfgtext - 1] = '\0';
	} else if (mf) {
		fclose(mf);
	}
	if (st == VB_OK)
		st = checkpoint_add_meta(w, "config", cfgtext, err);
	snprintf(buf, sizeof buf, "%s", VB_REAL_NAME);
	if (st == VB_OK)
		st = checkpoint_add_meta(w, "precision", buf, err);
	if (st == VB_OK)
		st = checkpoint_add_meta(w, "format", "vaebench-checkpoint-1",
					 err);
	if (st == VB_OK)
		st = checkpoint_add_meta(w, "rng_streams",
					 "shuffle,noise,eval", err);
	if (st == VB_OK)
		st = checkpoint_write(w, path, err);
	checkpoint_writer_free(w);
	free(perm);
	return st;
}

/* Writes text to path through a temporary name and a rename. */
static enum vb_status write_atomic(const char *path, const char *text,
				   struct vb_error *err)
{
	char tmp[1200];
	FILE *f;
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	f = fopen(tmp, "w");
	if (!f)
		return vb_fail(err, VB_ERR_IO, "train: cannot write %s: %s",
			       tmp, strerror(errno));
	fputs(text, f);
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		remove(tmp);
		return vb_fail(err, VB_ERR_IO, "train: cannot write %s", path);
	}
	return VB_OK;
}

static void csv_double(FILE *f, double v)
{
	if (isnan(v))
		fputs("nan", f);
	else if (isinf(v))
		fputs(v > 0 ? "inf" : "-inf", f);
	else
		fprintf(f, "%.9g", v);
}

void train_summary_header(FILE *f)
{
	fputs("name,model,recon,lr,batch,epochs,seed,status,first_epoch,"
	      "first_step,first_phase,first_quantity,first_value,message,"
	      "epochs_done,steps,final_train_loss,final_eval_loss,"
	      "best_eval_loss,best_epoch,seconds,cause,origin_phase,"
	      "origin_op,origin_node,origin_step,bad_samples,nan_op,nan_node,"
	      "lead_step,lead_time,replayed,skipped\n", f);
}

void train_summary_row(FILE *f, const struct config *c,
		       const struct train_summary *s)
{
	fprintf(f, "%s,%s,%s,", c->run.name,
		config_enum_name("model.kind", c->model.kind),
		config_enum_name("model.recon", c->model.recon));
	csv_double(f, c->optim.lr);
	fprintf(f, ",%lld,%lld,%llu,%s,", (long long)c->train.batch,
		(long long)c->train.epochs,
		(unsigned long long)c->train.seed,
		guard_status_name(s->status));
	if (s->first.set) {
		fprintf(f, "%ld,%ld,%s,%s,", s->first.epoch, s->first.step,
			guard_phase_name(s->first.phase), s->first.quantity);
		csv_double(f, s->first.value);
	} else {
		fputs(",,,,", f);
	}
	fprintf(f, ",%s,%ld,%ld,", s->message, s->epochs_done, s->steps);
	csv_double(f, s->final_train_loss);
	fputc(',', f);
	csv_double(f, s->final_eval_loss);
	fputc(',', f);
	csv_double(f, s->best_eval_loss);
	fprintf(f, ",%ld,%.3f,", s->best_epoch, s->seconds);
	if (s->first.set && s->first.cause != GUARD_CAUSE_NONE) {
		fprintf(f, "%s,%s,%s,%s,", guard_cause_name(s->first.cause),
			s->first.origin_phase, s->first.op, s->first.node);
		if (s->first.origin_step > 0)
			fprintf(f, "%ld", s->first.origin_step);
		fputc(',', f);
		if (s->first.n_bad_samples >= 0)
			fprintf(f, "%ld", s->first.n_bad_samples);
		fprintf(f, ",%s,%s,", s->first.nan_op, s->first.nan_node);
	} else {
		fputs(",,,,,,,,", f);
	}
	if (s->lead_step > 0)
		fprintf(f, "%ld", s->lead_step);
	fputc(',', f);
	if (s->lead_time >= 0)
		fprintf(f, "%ld", s->lead_time);
	fprintf(f, ",%s,%ld\n",
		s->replayed ? (s->replay_match ? "same" : "differ") : "",
		s->skipped);
}

static enum vb_status write_meta(struct run *r, const char *dir,
				 struct vb_error *err)
{
	char path[1200], text[2048];
	snprintf(path, sizeof path, "%s/meta.json", dir);
	snprintf(text, sizeof text,
		 "{\n  \"vaebench_commit\": \"%s\",\n"
		 "  \"precision\": \"%s\",\n"
		 "  \"blas_core\": \"%s\",\n"
		 "  \"blas_threads\": %d,\n"
		 "  \"compiler\": \"%s\",\n"
		 "  \"parameters\": %zu\n}\n",
		 VB_GIT_COMMIT, VB_REAL_NAME, op_blas_core(), op_blas_threads(),
		 __VERSION__, r->model->params->n);
	return write_atomic(path, text, err);
}

_Static_assert((int)CONFIG_ACT_LEAKY_RELU == (int)MODEL_ACT_LEAKY_RELU &&
		       (int)CONFIG_ACT_TANH == (int)MODEL_ACT_TANH &&
		       (int)CONFIG_ACT_COUNT == (int)MODEL_ACT_LEAKY_RELU + 1,
	       "config and model activations in the same order");
_Static_assert((int)CONFIG_INIT_SCALED == (int)MODEL_INIT_SCALED &&
		       (int)CONFIG_INIT_XAVIER_NORMAL ==
			       (int)MODEL_INIT_XAVIER_NORMAL &&
		       (int)CONFIG_INIT_KAIMING_NORMAL ==
			       (int)MODEL_INIT_KAIMING_NORMAL,
	       "config and model inits in the same order");
_Static_assert((int)CONFIG_EPS_SQRT == (int)MODEL_EPS_SQRT &&
		       (int)CONFIG_EPS_LOSS == (int)MODEL_EPS_LOSS,
	       "config and model epsilon placements in the same order");

static void model_config_from(const struct config *c, const struct dataset *ds,
			      struct model_config *mc)
{
	model_config_defaults(mc);
	mc->kind = c->model.kind == CONFIG_MODEL_RHVAE  ? MODEL_KIND_RHVAE
		   : c->model.kind == CONFIG_MODEL_HVAE ? MODEL_KIND_HVAE
							: MODEL_KIND_VAE;
	mc->arch = c->model.arch == CONFIG_ARCH_RESNET ? MODEL_ARCH_RESNET
						       : MODEL_ARCH_MLP;
	mc->recon = c->model.recon == CONFIG_RECON_BCE ? MODEL_RECON_BCE
						       : MODEL_RECON_MSE;
	mc->n_rows = ds->rows;
	mc->n_cols = ds->cols;
	mc->n_latent = (size_t)c->model.latent;
	mc->n_hidden = (size_t)c->model.hidden;
	mc->init_seed = c->model.init_seed >= 0 ? (uint64_t)c->model.init_seed
						: c->train.seed;
	mc->n_batch_max = (size_t)c->train.batch;
	mc->n_lf = (size_t)c->rhvae.n_lf;
	mc->eps_lf = c->rhvae.eps_lf;
	mc->beta_zero = c->rhvae.beta_zero;
	mc->temperature = c->rhvae.temperature;
	mc->regularization = c->rhvae.regularization;
	mc->logdet_mode = c->rhvae.logdet == CONFIG_LOGDET_CHOLESKY
				  ? LINALG_LOGDET_CHOLESKY
				  : LINALG_LOGDET_LU;
	mc->buffer_batches = (size_t)c->rhvae.buffer_batches;
	mc->quirk_beta_sqrt = c->rhvae.beta_zero_as_sqrt;
	mc->quirk_momentum_l = c->rhvae.momentum == CONFIG_MOMENTUM_METRIC;
	mc->quirk_position = c->rhvae.position_step == CONFIG_POSITION_PYTHAE;
	mc->second_order = c->rhvae.second_order;
	mc->quirk_hvae_softplus = c->hvae.softplus_sigma;
	mc->quirk_hvae_position = c->hvae.position_uses_rho;
	mc->logvar_clamp = c->model.logvar_clamp;
	mc->logvar_min = c->model.logvar_min;
	mc->logvar_max = c->model.logvar_max;
	mc->metric_softplus = c->rhvae.diag_activation == CONFIG_DIAG_SOFTPLUS;
	mc->h_grad_clip = c->rhvae.grad_clip;
	mc->logdet_jitter = c->rhvae.logdet_jitter;
	mc->sigma = c->model.sigma == CONFIG_SIGMA_SOFTPLUS ? MODEL_SIGMA_SOFTPLUS
							    : MODEL_SIGMA_EXP;
	mc->bce_eps = c->model.bce_eps;
	if (c->model.kind == CONFIG_MODEL_ANCHOR)
		mc->kind = MODEL_KIND_ANCHOR;
	if (c->model.arch == CONFIG_ARCH_CONVNET)
		mc->arch = MODEL_ARCH_CONVNET;
	/* config enums list the model enums' values in the same order */
	mc->activation = (enum model_activation)c->nets.activation;
	mc->leaky_slope = c->nets.leaky_slope;
	mc->init = (enum model_init)c->nets.init;
	mc->init_scale = c->nets.init_scale;
	mc->bias_fill = c->nets.bias_fill;
	mc->bias_value = c->nets.bias_value;
	mc->mlp_batchnorm = c->nets.batchnorm;
	mc->bn_eps = c->nets.bn_eps;
	mc->bn_momentum = c->nets.bn_momentum;
	mc->bn_track_running_stats = c->nets.bn_track_running_stats;
	mc->bn_eval_batch_stats = c->nets.bn_eval == CONFIG_BN_EVAL_BATCH;
	mc->anchor_eps_placement =
		(enum model_eps_placement)c->anchor.eps_placement;
	mc->anchor_eps = c->anchor.eps;
	mc->anchor_weight = c->anchor.weight;
}

/* train.flush_denormals: set the x86 MXCSR flush-to-zero and
 * denormals-are-zero bits for this thread (the worker of one run). */
static void set_flush_denormals(bool on)
{
#if defined(__x86_64__) || defined(__i386__)
	unsigned csr = __builtin_ia32_stmxcsr();
	const unsigned ftz_daz = 0x8040u;
	__builtin_ia32_ldmxcsr(on ? csr | ftz_daz : csr & ~ftz_daz);
#else
	(void)on;
#endif
}

/* train.precision: f16 / bf16 make the tape round (float build); native,
 * f32 and f64 compute in this binary's vb_real (train_run refuses the
 * one it cannot run). */
static enum graph_rounding rounding_of(const struct config *c)
{
	if (c->train.precision == CONFIG_PRECISION_F16)
		return GRAPH_ROUNDING_F16;
	if (c->train.precision == CONFIG_PRECISION_BF16)
		return GRAPH_ROUNDING_BF16;
	return GRAPH_ROUNDING_NONE;
}

static enum vb_status setup(struct run *r, struct vb_error *err)
{
	const struct config *c = r->c;
	struct model_config mc;
	struct optim_settings os;
	size_t ntr = r->d->train.n, nev = r->d->eval.n, D = r->d->train.d;
	size_t maxb = (size_t)(c->train.batch > c->train.eval_batch
				       ? c->train.batch
				       : c->train.eval_batch);
	size_t steps = (ntr + (size_t)c->train.batch - 1) /
		       (size_t)c->train.batch;
	enum vb_status st;

	set_flush_denormals(c->train.flush_denormals);
	model_config_from(c, &r->d->train, &mc);
	st = model_create(&mc, &r->model, err);
	if (st)
		return st;
	st = preprocess_fit(&r->prep, &r->d->train, c->data.scale,
			    c->data.standardize, c->data.standardize_eps,
			    c->data.nonfinite == CONFIG_NONFINITE_REFUSE
				    ? PREPROCESS_REFUSE
			    : c->data.nonfinite == CONFIG_NONFINITE_SCRUB
				    ? PREPROCESS_SCRUB
				    : PREPROCESS_PASS,
			    err);
	if (st)
		return st;
	memset(&os, 0, sizeof os);
	os.kind = c->optim.kind == CONFIG_OPTIM_SGD    ? OPTIM_SGD
		  : c->optim.kind == CONFIG_OPTIM_ADAMW ? OPTIM_ADAMW
							: OPTIM_ADAM;
	os.beta1 = c->optim.beta1;
	os.beta2 = c->optim.beta2;
	os.adam_eps = c->optim.adam_eps;
	os.weight_decay = c->optim.weight_decay;
	os.momentum = c->optim.momentum;
	os.dampening = c->optim.dampening;
	os.nesterov = c->optim.nesterov;
	st = optim_create(&os, r->model->params->n, &r->opt, err);
	if (st)
		return st;
	memset(&r->sched, 0, sizeof r->sched);
	r->sched.kind = c->optim.schedule == CONFIG_SCHEDULE_STEP
				? OPTIM_SCHEDULE_STEP
			: c->optim.schedule == CONFIG_SCHEDULE_WARMUP
				? OPTIM_SCHEDULE_WARMUP
			: c->optim.schedule == CONFIG_SCHEDULE_COSINE
				? OPTIM_SCHEDULE_COSINE
				: OPTIM_SCHEDULE_CONSTANT;
	r->sched.step_size = (long)c->optim.step_size;
	r->sched.gamma = c->optim.gamma;
	r->sched.warmup_steps = (long)c->optim.warmup_steps;
	r->sched.total_epochs = (long)c->train.epochs;
	r->sched.min_lr = c->optim.min_lr;
	/* The arena starts at a size that fits one step of this batch size
	 * (about 40 activations of (B, max(D, H)) floats); it grows once if
	 * not, and then stays. */
	st = graph_create(maxb * (D > (size_t)c->model.hidden
					  ? D
					  : (size_t)c->model.hidden) *
				  sizeof(vb_real) * 40,
			  &r->g, err);
	if (st)
		return st;
	graph_set_rounding(r->g, rounding_of(c));
	r->scale = c->train.loss_scale == CONFIG_LOSS_SCALE_NONE
			   ? 1.0
			   : (double)(float)c->train.scale_init;
	rng_seed(&r->shuffle, c->train.seed, RNG_STREAM_SHUFFLE);
	rng_seed(&r->noise, c->train.seed, RNG_STREAM_NOISE);
	rng_seed(&r->eval_noise, c->train.seed ^ TRAIN_EVAL_SEED_SALT,
		 RNG_STREAM_NOISE);
	r->perm = malloc(ntr * sizeof *r->perm);
	r->eval_perm = malloc(nev * sizeof *r->eval_perm);
	r->x = malloc(maxb * D * sizeof *r->x);
	r->norms = malloc((steps + 1) * sizeof *r->norms);
	r->sorted = malloc((steps + 1) * sizeof *r->sorted);
	if (!r->perm || !r->eval_perm || !r->x || !r->norms || !r->sorted)
		return vb_fail(err, VB_ERR_NOMEM,
			       "train: cannot allocate batch buffers");
	return VB_OK;
}

static void teardown(struct run *r)
{
	model_free(r->model);
	preprocess_free(&r->prep);
	optim_free(r->opt);
	graph_free(r->g);
	free(r->perm);
	free(r->eval_perm);
	free(r->x);
	free(r->norms);
	free(r->sorted);
}

/* Forensics state beyond setup(): the anomaly hook, the precursor ring,
 * the watch list, the dump buffer, the resume point. */
static enum vb_status setup_forensics(struct run *r, struct vb_error *err)
{
	const struct config *c = r->c;
	struct params *p = r->model->params;
	const char *s = c->guard.watch;
	r->start_epoch = 1;
	r->sum->lead_step = -1;
	r->sum->lead_time = -1;
	r->sum->replay_from = -1;
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
			if (r->n_watch == TRAIN_MAX_WATCH ||
			    len >= GRAPH_NAME_LEN)
				return vb_fail(err, VB_ERR_CONFIG,
					       "config: guard.watch = %s: at "
					       "most %d names of < %d "
					       "characters", c->guard.watch,
					       TRAIN_MAX_WATCH,
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

static void teardown_forensics(struct run *r)
{
	free(r->ring);
	free(r->ring_layers);
	free(r->ring_watch);
	free(r->win);
	free(r->p_before);
}

enum vb_status train_find_checkpoint(const char *run_dir, long before,
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

/* The cheap guard fired: replay from the last resume checkpoint in
 * anomaly mode up to the failing step and take the origin from it. */
static void auto_replay(const struct config *c, const struct train_data *d,
			const char *ckpt, long from, struct train_summary *out,
			FILE *log)
{
	struct train_options o;
	struct train_summary rs;
	struct vb_error err = {0};
	char a[64], b[64];
	memset(&o, 0, sizeof o);
	o.resume = ckpt;
	o.stop_step = out->first.step;
	o.anomaly = true;
	o.replay = true;
	if (train_run_opts(c, d, &o, &rs, NULL, &err) != VB_OK) {
		if (log)
			fprintf(log, "replay in anomaly mode failed: %s\n",
				err.msg);
		return;
	}
	out->replayed = true;
	out->replay_from = from;
	out->anomaly_checks = rs.anomaly_checks;
	snprintf(a, sizeof a, "%.17g", out->first.value);
	snprintf(b, sizeof b, "%.17g", rs.first.value);
	out->replay_match = rs.first.set && rs.first.step == out->first.step &&
			    rs.first.phase == out->first.phase &&
			    !strcmp(rs.first.quantity, out->first.quantity) &&
			    !strcmp(a, b);
	if (rs.first.set && rs.first.cause != GUARD_CAUSE_UNKNOWN)
		guard_copy_origin(&out->first, &rs.first);
}

#define TRAIN_PICTURES 8 /* images per row of the picture grids */

/* reconstructions.png (8 evaluation images over their reconstructions,
 * the decoder applied to the encoder means) and samples.png (16 decodes
 * of z ~ N(0, I), drawn from the inject stream so no training stream
 * moves) in the run folder of a finished run. */
static enum vb_status write_pictures(struct run *r, struct vb_error *err)
{
	const struct dataset *ds = r->d->eval.n ? &r->d->eval : &r->d->train;
	size_t n = ds->n < TRAIN_PICTURES ? ds->n : TRAIN_PICTURES;
	size_t D = ds->d, d = (size_t)r->c->model.latent;
	size_t xs[2] = {n, D}, zs[2] = {2 * TRAIN_PICTURES, d};
	vb_real *tiles = NULL;
	struct graph_node *y = NULL;
	struct rng zr;
	char path[1200], title[400];
	enum vb_status st;

	if (!r->model->ops->networks || n == 0)
		return VB_OK;
	tiles = malloc(2 * TRAIN_PICTURES * D * sizeof *tiles);
	if (!tiles)
		return vb_fail(err, VB_ERR_NOMEM, "train: pictures");
	dataset_batch(ds, NULL, n, (vb_real)r->c->data.scale, r->x);
	st = preprocess_apply(&r->prep, r->x, n, NULL, err);
	graph_reset(r->g);
	graph_set_grad_enabled(r->g, false);
	if (st == VB_OK)
		st = model_reconstruct(r->model, r->g,
				       graph_input(r->g, "input",
						   tensor_view(r->x, 2, xs),
						   false),
				       &y, err);
	if (st == VB_OK) {
		memcpy(tiles, r->x, n * D * sizeof *tiles);
		memcpy(tiles + n * D, y->value.data, n * D * sizeof *tiles);
		snprintf(path, sizeof path, "%s/reconstructions.png", r->dir);
		snprintf(title, sizeof title, "%s: images (top), "
			 "reconstructions (bottom)", r->c->run.name);
		st = plot_tiles_png(tiles, 2 * n, ds->rows, ds->cols, n, 3,
				    title, path, err);
	}
	if (st == VB_OK) {
		struct tensor zt;
		graph_reset(r->g);
		zt = graph_tensor(r->g, 2, zs);
		if (!zt.data) {
			st = vb_fail(err, VB_ERR_NOMEM, "train: pictures");
		} else {
			rng_seed(&zr, r->c->train.seed, RNG_STREAM_INJECT);
			rng_fill_normal(&zr, zt.data, zt.n, 0, 1);
			st = model_decode(r->model, r->g,
					  graph_const(r->g, "z", zt), &y,
					  err);
		}
	}
	if (st == VB_OK) {
		snprintf(path, sizeof path, "%s/samples.png", r->dir);
		snprintf(title, sizeof title, "%s: samples, z ~ N(0, I)",
			 r->c->run.name);
		st = plot_tiles_png(y->value.data, 2 * TRAIN_PICTURES, ds->rows,
				    ds->cols, TRAIN_PICTURES, 3, title, path,
				    err);
	}
	graph_set_grad_enabled(r->g, true);
	free(tiles);
	return st;
}

/* pythae's trainer runs one training-mode forward on the first batch of a
 * fresh shuffled pass before training (rhvae.md 5.2): it draws a shuffle
 * permutation and the model's noise, and the RHVAE appends that batch to
 * its buffers. No backward, no update. */
static enum vb_status sanity_check(struct run *r, struct vb_error *err)
{
	const struct dataset *ds = &r->d->train;
	size_t B = (size_t)r->c->train.batch, n = ds->n, D = ds->d;
	size_t nb = B < n ? B : n, xs[2] = {nb, D};
	struct model_out mo;
	if (r->c->train.shuffle)
		rng_permutation(&r->shuffle, r->perm, n);
	else
		for (size_t i = 0; i < n; i++)
			r->perm[i] = i;
	dataset_batch(ds, r->perm, nb, (vb_real)r->c->data.scale, r->x);
	if (preprocess_apply(&r->prep, r->x, nb, NULL, err) != VB_OK)
		return err ? err->status : VB_ERR_DATA;
	graph_reset(r->g);
	return model_build_loss(r->model, r->g,
				graph_input(r->g, "input",
					    tensor_view(r->x, 2, xs), false),
				&r->noise, true, &mo, err);
}

enum vb_status train_run(const struct config *c, const struct train_data *d,
			 struct train_summary *out, FILE *log,
			 struct vb_error *err)
{
	return train_run_opts(c, d, NULL, out, log, err);
}

enum vb_status train_run_opts(const struct config *c,
			      const struct train_data *d,
			      const struct train_options *opts,
			      struct train_summary *out, FILE *log,
			      struct vb_error *err)
{
	static const struct train_options none;
	struct run r;
	char path[1200];
	FILE *metrics = NULL, *times = NULL;
	char *mbuf = NULL, *tbuf = NULL;
	size_t mlen = 0, tlen = 0;
	double t_start = now_seconds();
	bool write_dir;
	enum vb_status st;

	memset(&r, 0, sizeof r);
	memset(out, 0, sizeof *out);
	out->best_eval_loss = INFINITY;
	out->final_train_loss = out->final_eval_loss = NAN;
	r.c = c;
	r.d = d;
	r.o = opts ? opts : &none;
	r.sum = out;
	r.log = log;
	r.tty = log && isatty(fileno(log)) &&
		c->run.progress != CONFIG_PROGRESS_OFF;
	if (log && c->run.progress == CONFIG_PROGRESS_ON)
		r.tty = true;
	write_dir = !r.o->replay;
	out->loss_scale = 1;

#ifdef VB_DOUBLE
	if (c->train.precision == CONFIG_PRECISION_F16 ||
	    c->train.precision == CONFIG_PRECISION_BF16)
		return vb_fail(err, VB_ERR_CONFIG, "train: train.precision = "
			       "%s: half precision is emulated by the float "
			       "build; run it with vaebench, not vaebench-f64",
			       config_enum_name("train.precision",
						c->train.precision));
#else
	if (c->train.precision == CONFIG_PRECISION_F64)
		return vb_fail(err, VB_ERR_CONFIG, "train: train.precision = "
			       "f64: this is the float build; run it with "
			       "vaebench-f64");
#endif
	if ((size_t)snprintf(r.dir, sizeof r.dir, "%s/%s", c->run.out_dir,
			     c->run.name) >= sizeof r.dir)
		return vb_fail(err, VB_ERR_CONFIG, "config: run folder name "
			       "too long");
	snprintf(out->run_dir, sizeof out->run_dir, "%s", r.dir);
	st = write_dir ? train_mkdirs(r.dir, err) : VB_OK;
	if (st == VB_OK && write_dir) {
		snprintf(path, sizeof path, "%s/config.ini", r.dir);
		st = config_write_file(c, path, err);
	}
	if (st == VB_OK)
		st = setup(&r, err);
	if (st == VB_OK)
		st = setup_forensics(&r, err);
	if (st == VB_OK && r.o->resume)
		st = load_resume(&r, r.o->resume, err);
	if (st == VB_OK && !r.o->resume && c->train.sanity_check)
		st = sanity_check(&r, err);
	if (st == VB_OK && write_dir)
		st = write_meta(&r, r.dir, err);
	if (st == VB_OK && checkpoints_on(&r))
		st = resume_checkpoint(&r, 0, 0, err);
	metrics = open_memstream(&mbuf, &mlen);
	times = open_memstream(&tbuf, &tlen);
	if (st == VB_OK && (!metrics || !times))
		st = vb_fail(err, VB_ERR_NOMEM, "train: no memory for logs");
	if (st == VB_OK) {
		fputs("epoch,steps,lr,train_loss,train_recon,train_kl,"
		      "eval_loss,eval_recon,eval_kl,grad_norm_min,"
		      "grad_norm_median,grad_norm_max\n", metrics);
		fputs("epoch,seconds,images_per_second\n", times);
	}
	for (long epoch = r.start_epoch; st == VB_OK && epoch <= c->train.epochs;
	     epoch++) {
		struct epoch_stats es;
		double el = NAN, er = NAN, ek = NAN, t0 = now_seconds();
		double lr = epoch_lr(&r, epoch - 1);
		bool evaluated = false;
		st = train_epoch(&r, epoch, &es, err);
		if (st != VB_OK)
			break;
		if (es.n_loss > 0 && !run_stopped(out)) {
			st = model_epoch_end(r.model, err);
			if (st == VB_OK && (epoch % c->train.eval_every == 0 ||
					    epoch == c->train.epochs)) {
				evaluated = true;
				st = eval_epoch(&r, epoch, &el, &er, &ek, err);
			}
			if (st != VB_OK)
				break;
		}
		if (!run_stopped(out) && !es.stop && checkpoints_on(&r) &&
		    (r.ckpt_pending || c->run.checkpoint_every == 0)) {
			r.ckpt_pending = false;
			st = resume_checkpoint(&r, epoch, 0, err);
			if (st != VB_OK)
				break;
		}
		double secs = now_seconds() - t0;
		fprintf(metrics, "%ld,%ld,", epoch, r.step);
		csv_double(metrics, lr);
		double vals[9] = {es.loss, es.recon, es.reg, el, er, ek,
				  es.gmin, es.gmed, es.gmax};
		for (int i = 0; i < 9; i++) {
			fputc(',', metrics);
			if (evaluated || i < 3 || i > 5 || run_stopped(out))
				csv_double(metrics, vals[i]); /* else empty */
		}
		fputc('\n', metrics);
		fprintf(times, "%ld,%.3f,%.1f\n", epoch, secs,
			secs > 0 ? (double)es.images / secs : 0.0);
		out->epochs_done = epoch;
		out->final_train_loss = es.loss;
		if (evaluated || run_stopped(out))
			out->final_eval_loss = el;
		if (isfinite(el) && el < out->best_eval_loss) {
			out->best_eval_loss = el;
			out->best_epoch = epoch;
		}
		char evs[32] = "-";
		if (evaluated)
			snprintf(evs, sizeof evs, "%.6g", el);
		if (log && !r.tty)
			fprintf(log, "epoch %ld/%lld train %.6g eval %s "
				"grad-norm median %.4g (%.1f s)\n", epoch,
				(long long)c->train.epochs, es.loss, evs,
				es.gmed, secs);
		else if (log)
			fprintf(log, "  train %.6g  eval %s  (%.1f s)\n",
				es.loss, evs, secs);
		if (run_stopped(out) || es.stop)
			break;
	}
	out->steps = r.step;
	out->anomaly_checks = r.an.n_checks;
	out->loss_scale = r.scale;
	if (out->first.set && out->lead_step > 0 &&
	    out->lead_step <= out->first.step)
		out->lead_time = out->first.step - out->lead_step;
	if (metrics)
		fclose(metrics);
	if (times)
		fclose(times);
	if (st == VB_OK && write_dir) {
		snprintf(path, sizeof path, "%s/metrics.csv", r.dir);
		st = write_atomic(path, mbuf, err);
	}
	if (st == VB_OK && write_dir) {
		snprintf(path, sizeof path, "%s/times.csv", r.dir);
		st = write_atomic(path, tbuf, err);
	}
	if (st == VB_OK && write_dir) {
		snprintf(path, sizeof path, "%s/checkpoint.safetensors", r.dir);
		st = write_checkpoint(&r, path, out->epochs_done, 0, err);
	}
	if (st == VB_OK && r.o->final_checkpoint)
		st = write_checkpoint(&r, r.o->final_checkpoint,
				      out->epochs_done, 0, err);
	if (st == VB_OK && write_dir && !run_stopped(out) &&
	    out->epochs_done > 0)
		st = write_pictures(&r, err);
	if (st == VB_OK && write_dir && out->first.set && r.ring_cap) {
		snprintf(path, sizeof path, "%s/precursors.csv", r.dir);
		st = write_precursors(&r, path, err);
	}
	{
		char ck[1200];
		long from = r.last_ckpt_step;
		snprintf(ck, sizeof ck, "%s", r.last_ckpt);
		if (r.anomaly_on)
			anomaly_detach(r.g);
		teardown_forensics(&r);
		teardown(&r);
		if (st == VB_OK && out->first.set && !r.anomaly_on &&
		    c->guard.replay && !r.o->replay && ck[0]) {
			auto_replay(c, d, ck, from, out, log);
		}
	}
	if (out->first.set && log)
		fprintf(log, "first non-finite value: %s %s at epoch %ld, step "
			"%ld (%s)%s%s\n", guard_status_name(out->status),
			out->first.quantity, out->first.epoch, out->first.step,
			guard_phase_name(out->first.phase),
			out->message[0] ? ": " : "", out->message);
	if (out->first.set && log && out->first.cause != GUARD_CAUSE_UNKNOWN)
		fprintf(log, "origin: %s op %s, node %s, phase %s, step %ld "
			"(%s)%s\n", guard_cause_name(out->first.cause),
			out->first.op, out->first.node, out->first.origin_phase,
			out->first.origin_step,
			guard_cause_help(out->first.cause),
			out->replayed ? (out->replay_match
					     ? "; replayed in anomaly mode, "
					       "same event"
					     : "; replayed in anomaly mode, "
					       "DIFFERENT event")
				      : "");
	out->seconds = now_seconds() - t_start;
	if (st == VB_OK && write_dir) {
		char *sbuf = NULL;
		size_t slen = 0;
		FILE *sf = open_memstream(&sbuf, &slen);
		if (sf) {
			train_summary_header(sf);
			train_summary_row(sf, c, out);
			fclose(sf);
			snprintf(path, sizeof path, "%s/summary.csv", r.dir);
			st = write_atomic(path, sbuf, err);
			free(sbuf);
		} else {
			st = vb_fail(err, VB_ERR_NOMEM, "train: no memory");
		}
	}
	free(mbuf);
	free(tbuf);
	if (st != VB_OK)
		out->status = GUARD_STATUS_ERROR;
	return st;
}
