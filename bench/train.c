/* train: the training loop of DESIGN.md / STYLE.md section 7 with the
 * cheap guard, per-epoch evaluation and the run folder. Everything that
 * allocates happens before the first step; the step loop reuses the tape's
 * arena and preallocated buffers. */
#include "train.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "graph.h"
#include "linalg.h"
#include "mnist.h"
#include "model.h"
#include "ops.h"
#include "optim.h"
#include "params.h"
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

struct run {
	const struct config *c;
	const struct train_data *d;
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
};

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
	for (size_t i = 0; i < n->value.n; i++)
		acc += n->value.data[i];
	return n->value.n ? acc / (double)n->value.n : 0;
}

static void stop_event(struct run *r, long epoch, enum guard_phase phase,
		       const char *quantity, double value)
{
	if (guard_record(&r->sum->first, epoch, r->step, phase, quantity,
			 value)) {
		r->sum->status = guard_classify(value);
		if (r->sum->status == GUARD_STATUS_OK)
			r->sum->status = GUARD_STATUS_NAN;
	}
}

struct epoch_stats {
	double loss, recon, reg;
	long batches;
	double gmin, gmed, gmax;
	bool stop;
};

/* Checks the parameters after an update; names the first bad one. */
static bool params_finite(struct run *r, long epoch)
{
	size_t bad;
	struct params *p = r->model->params;
	if (guard_all_finite(p->data, p->n, &bad))
		return true;
	long e = params_locate(p, bad);
	char q[GUARD_QUANTITY_LEN];
	snprintf(q, sizeof q, "param:%s", e >= 0 ? p->entries[e].name : "?");
	stop_event(r, epoch, GUARD_PHASE_UPDATE, q, p->data[bad]);
	return false;
}

static enum vb_status train_epoch(struct run *r, long epoch,
				  struct epoch_stats *es,
				  struct vb_error *err)
{
	const struct config *c = r->c;
	const struct dataset *ds = &r->d->train;
	struct params *p = r->model->params;
	size_t B = (size_t)c->train.batch, n = ds->n, D = ds->d;
	size_t n_batches = (n + B - 1) / B;
	double lr = epoch_lr(r, epoch - 1);
	double run_sum = 0, recon_sum = 0, reg_sum = 0;
	bool strict = c->train.nan_check == CONFIG_NAN_CHECK_STRICT;
	bool pythae = c->train.nan_check == CONFIG_NAN_CHECK_PYTHAE;
	double t0 = now_seconds();
	enum vb_status st;

	memset(es, 0, sizeof *es);
	if (c->train.shuffle)
		rng_permutation(&r->shuffle, r->perm, n);
	else
		for (size_t i = 0; i < n; i++)
			r->perm[i] = i;
	for (size_t b = 0; b < n_batches; b++) {
		size_t nb = b + 1 < n_batches ? B : n - b * B;
		size_t xs[2] = {nb, D};
		struct model_out mo;
		bool inject = c->inject.nan_step >= 0 &&
			      r->step + 1 == c->inject.nan_step;
		double loss, gnorm;

		if (c->train.max_steps > 0 && r->step >= c->train.max_steps) {
			es->stop = true;
			break;
		}
		if (c->optim.schedule == CONFIG_SCHEDULE_WARMUP)
			lr = epoch_lr(r, epoch - 1);
		dataset_batch(ds, r->perm + b * B, nb,
			      (vb_real)c->data.scale, r->x);
		if (inject && c->inject.nan_phase == CONFIG_NAN_PHASE_INPUT)
			r->x[0] = (vb_real)NAN;
		if (inject && c->inject.nan_phase == CONFIG_NAN_PHASE_PARAM)
			p->data[0] = (vb_real)NAN;
		if (strict) {
			size_t bad;
			if (!guard_all_finite(r->x, nb * D, &bad)) {
				/* steps are 1-based: this is step r->step+1 */
				r->step++;
				stop_event(r, epoch, GUARD_PHASE_INPUT,
					   "input", r->x[bad]);
				r->step--;
				es->stop = true;
				break;
			}
		}
		graph_reset(r->g);
		struct graph_node *xn = graph_input(
			r->g, "input", tensor_view(r->x, 2, xs), false);
		st = model_build_loss(r->model, r->g, xn, &r->noise, true,
				      &mo, err);
		if (st != VB_OK)
			return st;
		loss = mo.loss->value.data[0];
		r->step++;
		if (strict && !isfinite(loss)) {
			stop_event(r, epoch, GUARD_PHASE_FORWARD, "loss", loss);
			es->stop = true;
			break;
		}
		params_zero_grad(p);
		st = graph_backward(r->g, mo.loss, err);
		if (st != VB_OK)
			return st;
		if (inject && c->inject.nan_phase == CONFIG_NAN_PHASE_GRAD)
			p->grad[0] = (vb_real)NAN;
		if (c->optim.clip == CONFIG_CLIP_NORM)
			gnorm = optim_clip_norm(p->grad, p->n,
						c->optim.clip_max,
						c->optim.clip_eps);
		else
			gnorm = optim_grad_norm(p->grad, p->n);
		if (c->optim.clip == CONFIG_CLIP_VALUE)
			optim_clip_value(p->grad, p->n, c->optim.clip_max);
		r->norms[es->batches] = gnorm;
		if (strict && !isfinite(gnorm)) {
			stop_event(r, epoch, GUARD_PHASE_BACKWARD, "grad_norm",
				   gnorm);
			es->stop = true;
			break;
		}
		optim_step(r->opt, p->data, p->grad, lr);
		run_sum += loss;
		recon_sum += mean_of(mo.recon);
		reg_sum += mean_of(mo.reg);
		es->batches++;
		if (strict && !params_finite(r, epoch)) {
			es->stop = true;
			break;
		}
		if (pythae && run_sum != run_sum) {
			/* pythae tests the running sum after the update and
			 * stops with its message (rhvae.md 5.3). */
			stop_event(r, epoch, GUARD_PHASE_UPDATE, "train_loss_sum",
				   run_sum);
			snprintf(r->sum->message, sizeof r->sum->message,
				 "NaN detected in train loss");
			es->stop = true;
			break;
		}
		if (r->tty && (b % 8 == 0 || b + 1 == n_batches)) {
			double el = now_seconds() - t0;
			int w = 30, fill = (int)((double)(b + 1) * w /
						 (double)n_batches);
			fprintf(r->log, "\repoch %ld/%lld [%.*s%*s] %zu/%zu "
				"loss %.4g  %.0f img/s ", epoch,
				(long long)c->train.epochs, fill,
				"==============================", w - fill, "",
				b + 1, n_batches, run_sum / (double)es->batches,
				el > 0 ? (double)((b + 1) * B) / el : 0.0);
			fflush(r->log);
		}
	}
	if (r->tty)
		fprintf(r->log, "\n");
	if (es->batches) {
		es->loss = run_sum / (double)es->batches;
		es->recon = recon_sum / (double)es->batches;
		es->reg = reg_sum / (double)es->batches;
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
		es->loss = es->recon = es->reg = NAN;
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
		graph_reset(r->g);
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
				       long epoch, struct vb_error *err)
{
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
	      "best_eval_loss,best_epoch,seconds\n", f);
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
	fprintf(f, ",%ld,%.3f\n", s->best_epoch, s->seconds);
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

static void model_config_from(const struct config *c, const struct dataset *ds,
			      struct model_config *mc)
{
	model_config_defaults(mc);
	mc->kind = c->model.kind == CONFIG_MODEL_RHVAE  ? MODEL_KIND_RHVAE
		   : c->model.kind == CONFIG_MODEL_HVAE ? MODEL_KIND_HVAE
							: MODEL_KIND_VAE;
	mc->arch = MODEL_ARCH_MLP;
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

	model_config_from(c, &r->d->train, &mc);
	st = model_create(&mc, &r->model, err);
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
	optim_free(r->opt);
	graph_free(r->g);
	free(r->perm);
	free(r->eval_perm);
	free(r->x);
	free(r->norms);
	free(r->sorted);
}

enum vb_status train_run(const struct config *c, const struct train_data *d,
			 struct train_summary *out, FILE *log,
			 struct vb_error *err)
{
	struct run r;
	char dir[1100], path[1200];
	FILE *metrics = NULL, *times = NULL;
	char *mbuf = NULL, *tbuf = NULL;
	size_t mlen = 0, tlen = 0;
	double t_start = now_seconds();
	enum vb_status st;

	memset(&r, 0, sizeof r);
	memset(out, 0, sizeof *out);
	out->best_eval_loss = INFINITY;
	out->final_train_loss = out->final_eval_loss = NAN;
	r.c = c;
	r.d = d;
	r.sum = out;
	r.log = log;
	r.tty = log && isatty(fileno(log)) &&
		c->run.progress != CONFIG_PROGRESS_OFF;
	if (log && c->run.progress == CONFIG_PROGRESS_ON)
		r.tty = true;

	if ((size_t)snprintf(dir, sizeof dir, "%s/%s", c->run.out_dir,
			     c->run.name) >= sizeof dir)
		return vb_fail(err, VB_ERR_CONFIG, "config: run folder name "
			       "too long");
	snprintf(out->run_dir, sizeof out->run_dir, "%s", dir);
	st = train_mkdirs(dir, err);
	if (st == VB_OK) {
		snprintf(path, sizeof path, "%s/config.ini", dir);
		st = config_write_file(c, path, err);
	}
	if (st == VB_OK)
		st = setup(&r, err);
	if (st == VB_OK)
		st = write_meta(&r, dir, err);
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
	for (long epoch = 1; st == VB_OK && epoch <= c->train.epochs;
	     epoch++) {
		struct epoch_stats es;
		double el = NAN, er = NAN, ek = NAN, t0 = now_seconds();
		double lr = epoch_lr(&r, epoch - 1);
		st = train_epoch(&r, epoch, &es, err);
		if (st != VB_OK)
			break;
		if (es.batches > 0 && !out->first.set) {
			st = model_epoch_end(r.model, err);
			if (st == VB_OK)
				st = eval_epoch(&r, epoch, &el, &er, &ek, err);
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
			csv_double(metrics, vals[i]);
		}
		fputc('\n', metrics);
		fprintf(times, "%ld,%.3f,%.1f\n", epoch, secs,
			secs > 0 ? (double)es.batches *
					   (double)c->train.batch / secs
				 : 0.0);
		out->epochs_done = epoch;
		out->final_train_loss = es.loss;
		out->final_eval_loss = el;
		if (isfinite(el) && el < out->best_eval_loss) {
			out->best_eval_loss = el;
			out->best_epoch = epoch;
		}
		if (log && !r.tty)
			fprintf(log, "epoch %ld/%lld train %.6g eval %.6g "
				"grad-norm median %.4g (%.1f s)\n", epoch,
				(long long)c->train.epochs, es.loss, el,
				es.gmed, secs);
		else if (log)
			fprintf(log, "  train %.6g  eval %.6g  (%.1f s)\n",
				es.loss, el, secs);
		if (out->first.set || es.stop)
			break;
	}
	out->steps = r.step;
	if (out->first.set && log)
		fprintf(log, "first non-finite value: %s %s at epoch %ld, step "
			"%ld (%s)%s%s\n", guard_status_name(out->status),
			out->first.quantity, out->first.epoch, out->first.step,
			guard_phase_name(out->first.phase),
			out->message[0] ? ": " : "", out->message);
	if (metrics)
		fclose(metrics);
	if (times)
		fclose(times);
	if (st == VB_OK) {
		snprintf(path, sizeof path, "%s/metrics.csv", dir);
		st = write_atomic(path, mbuf, err);
	}
	if (st == VB_OK) {
		snprintf(path, sizeof path, "%s/times.csv", dir);
		st = write_atomic(path, tbuf, err);
	}
	if (st == VB_OK) {
		snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
		st = write_checkpoint(&r, path, out->epochs_done, err);
	}
	out->seconds = now_seconds() - t_start;
	if (st == VB_OK) {
		char *sbuf = NULL;
		size_t slen = 0;
		FILE *sf = open_memstream(&sbuf, &slen);
		if (sf) {
			train_summary_header(sf);
			train_summary_row(sf, c, out);
			fclose(sf);
			snprintf(path, sizeof path, "%s/summary.csv", dir);
			st = write_atomic(path, sbuf, err);
			free(sbuf);
		} else {
			st = vb_fail(err, VB_ERR_NOMEM, "train: no memory");
		}
	}
	free(mbuf);
	free(tbuf);
	teardown(&r);
	if (st != VB_OK)
		out->status = GUARD_STATUS_ERROR;
	return st;
}
