/* train: one training run (train.h): the data, the run's set-up and
 * teardown, the epoch loop, and the run folder (config.ini, metrics.csv,
 * times.csv, summary.csv, checkpoint.safetensors). One optimiser step is
 * step.c's pipeline; an epoch's evaluation pass is heldout.c's; meta.json
 * and the pictures are runfiles.c's; train --resume's preparation is
 * resume.c's; forensics (precursors, resume checkpoints, dumps, replay) are
 * forensics.c's; the config-to-model/optimiser mapping is runconfig.c's;
 * fault injection is inject.c's. Everything that allocates happens before
 * the first step. */
#include "train.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "files.h"
#include "forensics.h"
#include "heldout.h"
#include "mnist.h"
#include "params.h"
#include "run.h"
#include "runconfig.h"
#include "runfiles.h"
#include "runlog.h"

/* Eval batches draw their noise from a stream of their own so that the
 * number of eval batches never shifts the training noise. */
#define TRAIN_EVAL_SEED_SALT 0x6576616c6e6f6973ull

/* train_request_stop's flag: the one process-wide variable, because a
 * signal handler can reach nothing else. */
static volatile sig_atomic_t train_stop_flag;

void train_request_stop(void)
{
	train_stop_flag = 1;
}

bool train_stop_requested(void)
{
	return train_stop_flag != 0;
}

enum vb_status train_claim_dir(const char *dir, bool force,
			       struct vb_error *err)
{
	if (!files_dir_nonempty(dir))
		return VB_OK;
	if (!force)
		return vb_fail(err, VB_ERR_CONFIG, "train: run folder %s is "
			       "not empty (an earlier run?): --force replaces "
			       "it, --resume %s continues an interrupted run, "
			       "or set another run.name", dir, dir);
	return files_clear_dir(dir, err);
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
	bool fashion = c->data.dataset == CONFIG_DATASET_FASHION_MNIST;
	enum vb_status st;
	if (!dir[0])
		dir = mnist_default_dir(fashion ? "fashion-mnist" : "mnist");
	st = mnist_load(dir, names[split], out, err);
	if (st == VB_ERR_IO && err) {
		/* Say where the folder came from and how to point at another
		 * (issue 17 item 14: runs outside the repository). */
		size_t l = strlen(err->msg);
		snprintf(err->msg + l, sizeof err->msg - l,
			 " (the folder is data.dir, else $%s, else %s; e.g. "
			 "--set data.dir=PATH)",
			 fashion ? "VAEBENCH_FASHION_DATA" : "VAEBENCH_DATA",
			 fashion ? "/usr/share/datasets/fashion-mnist"
				 : "./data");
	}
	return st;
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

/* The run's tape (r->g): an arena that fits one step of maxb images of D
 * pixels, with the config's tape settings. VB_ERR_CONFIG when that arena
 * cannot be allocated. */
static enum vb_status setup_tape(struct run *r, size_t maxb, size_t D,
				 struct vb_error *err)
{
	const struct config *c = r->c;
	size_t arena;
	enum vb_status st;

	/* The arena starts at a size that fits one step of this batch size
	 * (about 40 activations of (B, max(D, H)) floats); it grows once if
	 * not, and then stays. */
	arena = maxb * (D > (size_t)c->model.hidden ? D
						    : (size_t)c->model.hidden) *
		sizeof(vb_real) * 40;
	st = graph_create(arena, &r->g, err);
	if (st == VB_ERR_NOMEM) {
		if (err)
			err->status = VB_OK; /* this line replaces graph's */
		return vb_fail(err, VB_ERR_CONFIG, "config: train.batch = "
			       "%lld (train.eval_batch = %lld): one step needs "
			       "about %zu bytes of scratch, more than can be "
			       "allocated; lower train.batch",
			       (long long)c->train.batch,
			       (long long)c->train.eval_batch, arena);
	}
	if (st)
		return st;
	return runconfig_graph(c, r->g, err);
}

static enum vb_status setup(struct run *r, struct vb_error *err)
{
	const struct config *c = r->c;
	struct model_config mc;
	struct optim_settings os;
	struct optim_clip_settings cs;
	size_t ntr = r->d->train.n, nev = r->d->eval.n, D = r->d->train.d;
	/* No step or evaluation batch is larger than its dataset: a
	 * train.batch beyond it sizes nothing (issue 17 item 10). */
	size_t tb = (size_t)c->train.batch < ntr ? (size_t)c->train.batch : ntr;
	size_t eb = (size_t)c->train.eval_batch < nev
			    ? (size_t)c->train.eval_batch
			    : nev;
	size_t maxb = tb > eb ? tb : eb;
	size_t steps = (ntr + (size_t)c->train.batch - 1) /
		       (size_t)c->train.batch;
	enum vb_status st;

	if (c->data.drop_last && ntr < (size_t)c->train.batch)
		return vb_fail(err, VB_ERR_CONFIG, "config: data.drop_last = "
			       "true with %zu training images < train.batch = "
			       "%lld: no batch left", ntr,
			       (long long)c->train.batch);
	set_flush_denormals(c->train.flush_denormals);
	runconfig_model(c, &r->d->train, &mc);
	st = model_create(&mc, &r->model, err);
	if (st)
		return st;
	st = preprocess_fit(&r->prep, &r->d->train, c->data.scale,
			    c->data.standardize, c->data.standardize_eps,
			    runconfig_nonfinite(c), err);
	if (st)
		return st;
	runconfig_optim(c, &os);
	st = optim_create(&os, r->model->params->n, &r->opt, err);
	if (st)
		return st;
	runconfig_clip(c, &cs);
	st = optim_clip_create(&cs, &r->clip, err);
	if (st)
		return st;
	runconfig_schedule(c, &r->sched);
	st = setup_tape(r, maxb, D, err);
	if (st)
		return st;
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
	return heldout_setup(r, err);
}

static void teardown(struct run *r)
{
	model_free(r->model);
	preprocess_free(&r->prep);
	optim_free(r->opt);
	optim_clip_free(r->clip);
	heldout_teardown(r);
	graph_free(r->g);
	free(r->perm);
	free(r->eval_perm);
	free(r->x);
	free(r->norms);
	free(r->sorted);
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

/* The per-epoch logs, built in memory and written at the end. */
struct run_logs {
	FILE *metrics, *times;
	char *mbuf, *tbuf;
	size_t mlen, tlen;
	bool times_cpu; /* times.csv has the cpu_seconds column (a run
			   resumed from an older vaebench's has not) */
};

/* CPU seconds of this process (every thread) so far. */
static double cpu_now(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
		return NAN;
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* r for config c on data d (no allocation): options, log, the run folder
 * name; refuses the precision this build does not compute. */
static enum vb_status run_init(struct run *r, const struct config *c,
			       const struct train_data *d,
			       const struct train_options *opts,
			       struct train_summary *out, FILE *log,
			       struct vb_error *err)
{
	static const struct train_options none;
	memset(r, 0, sizeof *r);
	memset(out, 0, sizeof *out);
	out->best_eval_loss = INFINITY;
	out->final_train_loss = out->final_eval_loss = NAN;
	out->sse_best = out->bce_best = out->sse_last = out->bce_last = NAN;
	out->sse_max = -INFINITY;
	out->nll_best = out->nll_last = out->clipped_share = NAN;
	out->lead_step = out->lead_time = out->replay_from = -1;
	r->c = c;
	r->d = d;
	r->o = opts ? opts : &none;
	r->sum = out;
	r->log = log;
	r->tty = log && isatty(fileno(log)) &&
		 c->run.progress != CONFIG_PROGRESS_OFF;
	if (log && c->run.progress == CONFIG_PROGRESS_ON)
		r->tty = true;
	r->progress_lines = log && !r->tty &&
			    c->run.progress != CONFIG_PROGRESS_OFF;
	r->progress_last = files_now();
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
	if ((size_t)snprintf(r->dir, sizeof r->dir, "%s/%s", c->run.out_dir,
			     c->run.name) >= sizeof r->dir)
		return vb_fail(err, VB_ERR_CONFIG, "config: run folder name "
			       "too long");
	snprintf(out->run_dir, sizeof out->run_dir, "%s", r->dir);
	return VB_OK;
}

/* train --resume: the run's latest step checkpoint becomes the one the
 * next resume checkpoint replaces, as in the uninterrupted run. */
static void continue_checkpoints(struct run *r)
{
	char path[1200];
	long step = 0;
	if (forensics_find_checkpoint(r->dir, 0, path, sizeof path, &step,
				      NULL) == VB_OK && step > 0) {
		snprintf(r->last_ckpt, sizeof r->last_ckpt, "%s", path);
		r->last_ckpt_step = step;
	}
}

/* r's folder's log name, opened to append (cont) or anew. */
/* Opens run log name for writing (cont: appending); *empty says whether
 * it has no header yet (a new log, or a continued run killed before its
 * first epoch ended). */
static enum vb_status open_log(struct run *r, const char *name, bool cont,
			       FILE **f, bool *empty, struct vb_error *err)
{
	char path[1200];
	snprintf(path, sizeof path, "%s/%s", r->dir, name);
	*f = fopen(path, cont ? "a" : "w");
	if (!*f)
		return vb_fail(err, VB_ERR_IO, "train: cannot open %s: %s",
			       path, strerror(errno));
	*empty = fseek(*f, 0, SEEK_END) != 0 || ftell(*f) <= 0;
	return VB_OK;
}

/* Flushes the logs after an epoch; a write error names its cause. */
static enum vb_status flush_logs(struct run *r, struct run_logs *lg,
				 struct vb_error *err)
{
	FILE *fs[2] = {lg->metrics, lg->times};
	const char *names[2] = {"metrics.csv", "times.csv"};
	for (int i = 0; i < 2; i++)
		if (fflush(fs[i]) != 0 || ferror(fs[i]))
			return vb_fail(err, VB_ERR_IO, "train: cannot write "
				       "%s/%s: %s", r->dir, names[i],
				       strerror(errno ? errno : EIO));
	return VB_OK;
}

/* Everything before the first epoch: the folder and its config.ini,
 * model, optimiser, forensics, the resume point or pythae's sanity
 * forward, meta.json, the step-0 checkpoint, the log headers. */
static enum vb_status run_open(struct run *r, struct run_logs *lg,
			       struct vb_error *err)
{
	const struct config *c = r->c;
	bool write_dir = !r->o->replay;
	bool cont = write_dir && r->o->resume && r->o->continue_run;
	bool m_empty = true, t_empty = true;
	char path[1200];
	/* Everything that allocates first: a batch too large to allocate is
	 * refused before the folder is touched. */
	enum vb_status st = setup(r, err);
	if (st == VB_OK && write_dir)
		st = files_mkdirs(r->dir, err);
	if (st == VB_OK && write_dir) {
		/* A killed run's checkpoint temporaries (.tmp.PID) */
		snprintf(path, sizeof path, "%s/checkpoints", r->dir);
		files_remove_stale_temps(path);
		files_remove_stale_temps(r->dir);
	}
	if (st == VB_OK && write_dir && !cont) {
		snprintf(path, sizeof path, "%s/config.ini", r->dir);
		st = config_write_file(c, path, err);
	}
	if (st == VB_OK)
		st = forensics_setup(r, err);
	if (st == VB_OK && r->o->resume)
		st = forensics_load_resume(r, r->o->resume, err);
	if (st == VB_OK && cont)
		st = heldout_resume(r, err);
	if (st == VB_OK && !r->o->resume && c->train.sanity_check)
		st = sanity_check(r, err);
	if (st == VB_OK && write_dir)
		st = runfiles_write_meta(r, r->dir, err);
	if (st == VB_OK && cont)
		continue_checkpoints(r);
	if (st == VB_OK && forensics_checkpoints_on(r) && !cont)
		st = forensics_resume_checkpoint(r, 0, 0, err);
	if (st != VB_OK)
		return st;
	if (write_dir) {
		/* Appended and flushed per epoch: an interrupted run keeps
		 * every finished epoch. */
		st = open_log(r, "metrics.csv", cont, &lg->metrics, &m_empty,
			      err);
		if (st == VB_OK)
			st = open_log(r, "times.csv", cont, &lg->times,
				      &t_empty, err);
	} else {
		lg->metrics = open_memstream(&lg->mbuf, &lg->mlen);
		lg->times = open_memstream(&lg->tbuf, &lg->tlen);
		if (!lg->metrics || !lg->times)
			st = vb_fail(err, VB_ERR_NOMEM,
				     "train: no memory for logs");
	}
	/* headers flushed at once: a run killed in its first epoch leaves
	 * logs that --resume (and a resumed sweep cell) append to */
	if (st == VB_OK && m_empty)
		fputs("epoch,steps,lr,train_loss,train_recon,train_kl,"
		      "eval_loss,eval_recon,eval_kl,grad_norm_min,"
		      "grad_norm_median,grad_norm_max,eval_sse,eval_bce,"
		      "worst_batch,worst_partial,h_clamped_share\n",
		      lg->metrics);
	if (st == VB_OK && t_empty)
		fputs("epoch,seconds,images_per_second,cpu_seconds\n",
		      lg->times);
	if (st == VB_OK) {
		snprintf(path, sizeof path, "%s/times.csv", r->dir);
		lg->times_cpu = t_empty || !write_dir ||
				runlog_has_column(path, "cpu_seconds");
	}
	if (st == VB_OK && write_dir)
		st = flush_logs(r, lg, err);
	return st;
}

/* The epoch's result: what it trained and what evaluation gave. */
struct epoch_result {
	struct epoch_stats es;
	double el, er, ek;   /* eval loss and parts (NAN: not evaluated) */
	double sse, bce;     /* eval reconstruction error per image */
	double lr, secs;
	double cpu; /* process CPU seconds of the epoch */
	bool evaluated;
};

/* One line of metrics.csv and times.csv, the summary's running values
 * and the log line. */
static void epoch_log(struct run *r, long epoch, const struct epoch_result *e,
		      struct run_logs *lg)
{
	struct train_summary *out = r->sum;
	const struct epoch_stats *es = &e->es;
	double vals[9] = {es->loss, es->recon, es->reg, e->el, e->er, e->ek,
			  es->gmin, es->gmed, es->gmax};
	char evs[32] = "-";
	fprintf(lg->metrics, "%ld,%ld,", epoch, r->step);
	run_csv_double(lg->metrics, e->lr);
	for (int i = 0; i < 9; i++) {
		fputc(',', lg->metrics);
		if (e->evaluated || i < 3 || i > 5 || run_stopped(out))
			run_csv_double(lg->metrics, vals[i]); /* else empty */
	}
	fputc(',', lg->metrics);
	if (e->evaluated)
		run_csv_double(lg->metrics, e->sse);
	fputc(',', lg->metrics);
	if (e->evaluated)
		run_csv_double(lg->metrics, e->bce);
	fputc(',', lg->metrics);
	if (es->worst_batch >= 0)
		fprintf(lg->metrics, "%ld,%s", es->worst_batch,
			es->worst_partial ? "true" : "false");
	else
		fputc(',', lg->metrics);
	fputc(',', lg->metrics);
	if (es->h_entries > 0)
		run_csv_double(lg->metrics, (double)es->h_clamped /
						    (double)es->h_entries);
	fputc('\n', lg->metrics);
	if (es->worst_batch >= 0)
		out->trained_epochs++;
	if (es->worst_batch >= 0 && es->has_partial) {
		out->worst_partial_epochs += es->worst_partial;
		out->worst_partial_expected += 1.0 / (double)es->n_batches;
	}
	out->h_grad_entries += es->h_entries;
	out->h_grad_clamped += es->h_clamped;
	fprintf(lg->times, "%ld,%.3f,%.1f", epoch, e->secs,
		e->secs > 0 ? (double)es->images / e->secs : 0.0);
	if (lg->times_cpu)
		fprintf(lg->times, ",%.3f", e->cpu);
	fputc('\n', lg->times);
	out->epochs_done = epoch;
	out->final_train_loss = es->loss;
	if (e->evaluated || run_stopped(out))
		out->final_eval_loss = e->el;
	if (isfinite(e->el) && e->el < out->best_eval_loss) {
		out->best_eval_loss = e->el;
		out->best_epoch = epoch;
		out->sse_best = e->sse;
		out->bce_best = e->bce;
	}
	if (e->evaluated && isfinite(e->el) && !run_stopped(out)) {
		out->last_finite_epoch = epoch;
		out->sse_last = e->sse;
		out->bce_last = e->bce;
	}
	if (e->evaluated && isnan(e->sse))
		out->sse_max = NAN;
	else if (e->evaluated && e->sse > out->sse_max)
		out->sse_max = e->sse;
	if (e->evaluated)
		snprintf(evs, sizeof evs, "%.6g", e->el);
	if (r->log && !r->tty)
		fprintf(r->log, "epoch %ld/%lld train %.6g eval %s "
			"grad-norm median %.4g (%.1f s)\n", epoch,
			(long long)r->c->train.epochs, es->loss, evs, es->gmed,
			e->secs);
	else if (r->log)
		fprintf(r->log, "  train %.6g  eval %s  (%.1f s)\n", es->loss,
			evs, e->secs);
}

/* Trains, ends and evaluates one epoch, checkpoints and logs it; *done
 * when the run ends with it. */
static enum vb_status run_epoch(struct run *r, long epoch,
				struct run_logs *lg, bool *done,
				struct vb_error *err)
{
	const struct config *c = r->c;
	struct epoch_result e = {.el = NAN, .er = NAN, .ek = NAN, .sse = NAN,
				 .bce = NAN};
	double t0 = files_now(), c0 = cpu_now();
	enum vb_status st;
	e.lr = run_epoch_lr(r, epoch - 1);
	st = step_run_epoch(r, epoch, &e.es, err);
	if (st != VB_OK)
		return st;
	if (r->sum->interrupted) {
		/* A partial epoch is not logged: --resume redoes it from the
		 * last epoch boundary. */
		*done = true;
		return VB_OK;
	}
	if (e.es.n_loss > 0 && !run_stopped(r->sum)) {
		st = model_epoch_end(r->model, err);
		if (st == VB_OK && (epoch % c->train.eval_every == 0 ||
				    epoch == c->train.epochs)) {
			e.evaluated = true;
			st = heldout_eval_epoch(r, epoch, &e.el, &e.er, &e.ek,
						&e.sse, &e.bce, err);
		}
		if (st != VB_OK)
			return st;
	}
	if (!run_stopped(r->sum) && !e.es.stop && forensics_checkpoints_on(r) &&
	    (r->ckpt_pending || c->run.checkpoint_every == 0)) {
		r->ckpt_pending = false;
		st = forensics_resume_checkpoint(r, epoch, 0, err);
		if (st != VB_OK)
			return st;
	}
	e.secs = files_now() - t0;
	e.cpu = cpu_now() - c0;
	epoch_log(r, epoch, &e, lg);
	*done = run_stopped(r->sum) || e.es.stop;
	if (r->sum->last_finite_epoch == epoch)
		st = heldout_snapshot(r, r->sum->best_epoch == epoch, err);
	if (st == VB_OK && !r->o->replay)
		st = flush_logs(r, lg, err);
	if (st == VB_OK && !*done && forensics_checkpoints_on(r) &&
	    c->run.checkpoint_every > 0) {
		char path[1200];
		snprintf(path, sizeof path, "%s/" TRAIN_EPOCH_CKPT, r->dir);
		st = forensics_write_checkpoint(r, path, epoch, 0, err);
	}
	return st;
}

/* The run folder's files after the last epoch: metrics.csv, times.csv,
 * checkpoint.safetensors (and a replay's final checkpoint), pictures of a
 * finished run, precursors.csv of a failed one. */
static enum vb_status run_write_outputs(struct run *r, struct run_logs *lg,
					struct vb_error *err)
{
	struct train_summary *out = r->sum;
	bool write_dir = !r->o->replay;
	char path[1200];
	enum vb_status st = VB_OK;
	(void)lg;
	if (out->interrupted) {
		/* Not an end state: no final checkpoint, no pictures. */
		write_dir = false;
	}
	if (st == VB_OK && write_dir) {
		snprintf(path, sizeof path, "%s/checkpoint.safetensors", r->dir);
		st = forensics_write_checkpoint(r, path, out->epochs_done, 0,
						err);
	}
	if (st == VB_OK && r->o->final_checkpoint)
		st = forensics_write_checkpoint(r, r->o->final_checkpoint,
						out->epochs_done, 0, err);
	if (st == VB_OK && write_dir && !run_stopped(out) &&
	    out->epochs_done > 0)
		st = runfiles_write_pictures(r, err);
	if (st == VB_OK && !r->o->replay && out->first.set && r->ring_cap) {
		snprintf(path, sizeof path, "%s/precursors.csv", r->dir);
		st = forensics_write_precursors(r, path, err);
	}
	return st;
}

/* The first event and its origin on the log. */
static void log_event(const struct train_summary *out, FILE *log)
{
	if (!out->first.set || !log)
		return;
	fprintf(log, "first non-finite value: %s %s at epoch %ld, step "
		"%ld (%s)%s%s\n", guard_status_name(out->status),
		out->first.quantity, out->first.epoch, out->first.step,
		guard_phase_name(out->first.phase),
		out->message[0] ? ": " : "", out->message);
	if (out->first.cause == GUARD_CAUSE_UNKNOWN)
		return;
	fprintf(log, "origin: %s op %s, node %s, phase %s, step %ld "
		"(%s)%s\n", guard_cause_name(out->first.cause),
		out->first.op, out->first.node, out->first.origin_phase,
		out->first.origin_step, guard_cause_help(out->first.cause),
		out->replayed ? (out->replay_match
				     ? "; replayed in anomaly mode, "
				       "same event"
				     : "; replayed in anomaly mode, "
				       "DIFFERENT event")
			      : "");
}

static enum vb_status write_summary_row(FILE *f, void *ctx,
					struct vb_error *err)
{
	const struct run *r = ctx;
	(void)err;
	train_summary_header(f);
	train_summary_row(f, r->c, r->sum);
	return VB_OK;
}

/* Ends the run: outputs, teardown, the automatic replay of a cheap-guard
 * event, the log, summary.csv. */
static enum vb_status run_close(struct run *r, struct run_logs *lg,
				enum vb_status st, double t_start,
				struct vb_error *err)
{
	struct train_summary *out = r->sum;
	char ck[1200], path[1200];
	long from = r->last_ckpt_step;
	out->steps = r->step;
	out->anomaly_checks = r->an.n_checks;
	out->loss_scale = r->scale;
	out->clipped_share = r->clip ? optim_clip_share(r->clip) : NAN;
	if (out->first.set && out->lead_step > 0 &&
	    out->lead_step <= out->first.step)
		out->lead_time = out->first.step - out->lead_step;
	if (lg->metrics && fclose(lg->metrics) != 0 && st == VB_OK &&
	    !r->o->replay)
		st = vb_fail(err, VB_ERR_IO, "train: cannot write %s/"
			     "metrics.csv: %s", r->dir, strerror(errno));
	if (lg->times && fclose(lg->times) != 0 && st == VB_OK &&
	    !r->o->replay)
		st = vb_fail(err, VB_ERR_IO, "train: cannot write %s/"
			     "times.csv: %s", r->dir, strerror(errno));
	if (st == VB_OK)
		st = run_write_outputs(r, lg, err);
	if (st == VB_OK)
		st = heldout_nll(r, err);
	snprintf(ck, sizeof ck, "%s", r->last_ckpt);
	if (r->anomaly_on)
		anomaly_detach(r->g);
	forensics_teardown(r);
	teardown(r);
	if (st == VB_OK && out->first.set && !r->anomaly_on &&
	    !out->interrupted &&
	    r->c->guard.replay && !r->o->replay && ck[0])
		auto_replay(r->c, r->d, ck, from, out, r->log);
	log_event(out, r->log);
	out->seconds = r->prior_seconds + (files_now() - t_start);
	if (st == VB_OK && !r->o->replay) {
		snprintf(path, sizeof path, "%s/summary.csv", r->dir);
		st = files_write_with(path, write_summary_row, r, false, err);
	}
	if (st == VB_OK && !r->o->replay && !out->interrupted) {
		/* the run ended: nothing to resume. Kept until its summary is
		 * written, so a run killed in its end-of-run IS-NLL or replay
		 * resumes after its last epoch, not from the start. */
		snprintf(path, sizeof path, "%s/" TRAIN_EPOCH_CKPT, r->dir);
		remove(path);
	}
	free(lg->mbuf);
	free(lg->tbuf);
	if (st != VB_OK)
		out->status = GUARD_STATUS_ERROR;
	return st;
}

enum vb_status train_run_opts(const struct config *c,
			      const struct train_data *d,
			      const struct train_options *opts,
			      struct train_summary *out, FILE *log,
			      struct vb_error *err)
{
	return train_run_continue(c, d, opts, NULL, out, log, err);
}

enum vb_status train_run_continue(const struct config *c,
				  const struct train_data *d,
				  const struct train_options *opts,
				  const struct train_summary *prev,
				  struct train_summary *out, FILE *log,
				  struct vb_error *err)
{
	struct run r;
	struct run_logs lg = {0};
	double t_start = files_now();
	bool done = false;
	enum vb_status st = run_init(&r, c, d, opts, out, log, err);
	if (st != VB_OK)
		return st;
	if (prev)
		run_restore_summary(&r, prev);
	st = run_open(&r, &lg, err);
	for (long epoch = r.start_epoch;
	     st == VB_OK && !done && epoch <= c->train.epochs; epoch++)
		st = run_epoch(&r, epoch, &lg, &done, err);
	return run_close(&r, &lg, st, t_start, err);
}
