/* runfiles: files of a run folder: meta.json (build, kernels, threads,
 * conv backend, parameter count) and the pictures of a finished run
 * (reconstructions.png, samples.png, and for an RHVAE samples_prior.png),
 * which need the built model, and the lines of summary.csv (train.h's
 * train_summary_header / train_summary_row). The per-epoch logs are
 * train.c's, the checkpoints forensics.c's. */
#include "runfiles.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "guard.h"
#include "machine.h"
#include "ops.h"
#include "params.h"
#include "plot.h"
#include "rhvae_sampler.h"
#include "run.h"
#include "train.h"

#ifndef VB_GIT_COMMIT
#define VB_GIT_COMMIT "unknown"
#endif

enum vb_status runfiles_write_meta(struct run *r, const char *dir,
				   struct vb_error *err)
{
	char path[1200], *text = NULL;
	size_t len = 0;
	enum vb_status st;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return vb_fail(err, VB_ERR_NOMEM, "train: no memory");
	snprintf(path, sizeof path, "%s/meta.json", dir);
	fputs("{\n", f);
	machine_json_str(f, "vaebench_commit", VB_GIT_COMMIT, false);
	machine_json_str(f, "precision", VB_REAL_NAME, false);
	machine_json_kernels(f);
	fprintf(f, "  \"threads\": %d,\n", op_threads());
	machine_json_str(f, "conv_backend",
			 graph_conv_backend_name(graph_conv_backend(r->g)),
			 false);
	machine_json_str(f, "compiler", __VERSION__, false);
	fprintf(f, "  \"parameters\": %zu\n}\n", r->model->params->n);
	fclose(f);
	st = files_write_atomic(path, text, len, false, err);
	free(text);
	return st;
}

#define TRAIN_PICTURES 8 /* images per row of the picture grids */

/* samples_prior.png's RNG: rng_seed(train.seed ^ this, RNG_STREAM_INJECT),
 * a stream of its own (samples.png's and every training stream unmoved) */
#define RUNFILES_PRIOR_SEED_SALT 0x7268766165707269ull

/* samples_prior.png of an RHVAE: n latents drawn with pythae's
 * RHVAESampler at the settings of pythae's tutorial (100 HMC steps, n_lf
 * 10, eps_lf 0.03, beta_zero 1), decoded like samples.png. */
static enum vb_status write_prior_samples(struct run *r, size_t n,
					  size_t rows, size_t cols,
					  struct vb_error *err)
{
	struct rhvae_sampler_metric mt;
	struct rhvae_sampler_config sc;
	struct graph_node *y = NULL;
	struct tensor zt;
	struct rng pr;
	size_t zs[2] = {n, (size_t)r->c->model.latent};
	char path[1200], title[400];
	enum vb_status st = rhvae_sampler_metric_of(r->model, &mt, err);
	if (st != VB_OK)
		return st;
	rhvae_sampler_defaults(&sc);
	sc.mcmc_steps = 100;
	sc.n_lf = 10;
	sc.eps_lf = 0.03;
	graph_reset(r->g);
	zt = graph_tensor(r->g, 2, zs);
	if (!zt.data)
		return vb_fail(err, VB_ERR_NOMEM, "train: pictures");
	rng_seed(&pr, r->c->train.seed ^ RUNFILES_PRIOR_SEED_SALT,
		 RNG_STREAM_INJECT);
	st = rhvae_sampler_run(&mt, &sc, &pr, n, zt.data, err);
	if (st == VB_ERR_NUMERIC) {
		/* a finished run whose metric is not positive definite (a
		 * blow-up that stayed finite): the run's result stands, the
		 * picture is not drawn, and the log says why */
		if (r->log)
			fprintf(r->log, "vaebench: samples_prior.png not "
				"written: %s\n", err ? err->msg : "");
		if (err)
			*err = (struct vb_error){0};
		return VB_OK;
	}
	if (st == VB_OK)
		st = model_decode(r->model, r->g, graph_const(r->g, "z", zt),
				  &y, err);
	if (st != VB_OK)
		return st;
	snprintf(path, sizeof path, "%s/samples_prior.png", r->dir);
	snprintf(title, sizeof title, "%s: samples from the RHVAE's own prior "
		 "(pythae's RHVAESampler), not N(0, I)", r->c->run.name);
	return plot_tiles_png(y->value.data, n, rows, cols, TRAIN_PICTURES, 3,
			      title, path, err);
}

/* reconstructions.png (8 evaluation images over their reconstructions,
 * the decoder applied to the encoder means) and samples.png (16 decodes
 * of z ~ N(0, I), drawn from the inject stream so no training stream
 * moves) in the run folder of a finished run; for an RHVAE also
 * samples_prior.png (write_prior_samples). */
enum vb_status runfiles_write_pictures(struct run *r, struct vb_error *err)
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
	if (st == VB_OK && r->model->cfg.kind == MODEL_KIND_RHVAE)
		st = write_prior_samples(r, 2 * TRAIN_PICTURES, ds->rows,
					 ds->cols, err);
	graph_set_grad_enabled(r->g, true);
	free(tiles);
	return st;
}

/* ---- summary.csv (train.h declares these) ---- */

/* The evaluation loss and its parts (means over batches, as pythae) and
 * the mean per-image SSE and BCE with z = the encoder mean (heldout.c). */
void train_summary_header(FILE *f)
{
	fputs("name,model,recon,lr,batch,epochs,seed,status,first_epoch,"
	      "first_step,first_phase,first_quantity,first_value,message,"
	      "epochs_done,steps,final_train_loss,final_eval_loss,"
	      "best_eval_loss,best_epoch,seconds,cause,origin_phase,"
	      "origin_op,origin_node,origin_step,bad_samples,nan_op,nan_node,"
	      "lead_step,lead_time,replayed,skipped,last_finite_epoch,"
	      "nll_best,nll_last,sse_best,sse_last,sse_max,bce_best,"
	      "bce_last,nll_seconds,worst_partial_epochs,"
	      "worst_partial_expected,clipped_share,h_clamped_share,"
	      "pythae_error,first_batch\n", f);
}

/* A held-out value of summary.csv, then a comma: blank when its epoch
 * does not exist. */
static void held_out_value(FILE *f, bool have, double v)
{
	if (have)
		run_csv_double(f, v);
	fputc(',', f);
}

static void summary_held_out(FILE *f, const struct train_summary *s)
{
	bool best = s->best_epoch > 0, last = s->last_finite_epoch > 0;
	if (last)
		fprintf(f, "%ld", s->last_finite_epoch);
	fputc(',', f);
	held_out_value(f, s->nll_best_set, s->nll_best);
	held_out_value(f, s->nll_last_set, s->nll_last);
	held_out_value(f, best, s->sse_best);
	held_out_value(f, last, s->sse_last);
	held_out_value(f, s->sse_max != -INFINITY, s->sse_max);
	held_out_value(f, best, s->bce_best);
	held_out_value(f, last, s->bce_last);
	fprintf(f, "%.3f,%ld,", s->nll_seconds, s->worst_partial_epochs);
	run_csv_double(f, s->worst_partial_expected);
	fputc(',', f);
}

void train_summary_row(FILE *f, const struct config *c,
		       const struct train_summary *s)
{
	fprintf(f, "%s,%s,%s,", c->run.name,
		config_enum_name("model.kind", c->model.kind),
		config_enum_name("model.recon", c->model.recon));
	run_csv_double(f, c->optim.lr);
	fprintf(f, ",%lld,%lld,%llu,%s,", (long long)c->train.batch,
		(long long)c->train.epochs,
		(unsigned long long)c->train.seed,
		s->interrupted ? "interrupted" : guard_status_name(s->status));
	if (s->first.set) {
		fprintf(f, "%ld,%ld,%s,%s,", s->first.epoch, s->first.step,
			guard_phase_name(s->first.phase), s->first.quantity);
		run_csv_double(f, s->first.value);
	} else {
		fputs(",,,,", f);
	}
	fputc(',', f);
	files_csv_field(f, s->message);
	fprintf(f, ",%ld,%ld,", s->epochs_done, s->steps);
	run_csv_double(f, s->final_train_loss);
	fputc(',', f);
	run_csv_double(f, s->final_eval_loss);
	fputc(',', f);
	run_csv_double(f, s->best_eval_loss);
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
	fprintf(f, ",%s,%ld,",
		s->replayed ? (s->replay_match ? "same" : "differ") : "",
		s->skipped);
	summary_held_out(f, s);
	run_csv_double(f, s->clipped_share);
	fputc(',', f);
	if (s->h_grad_entries > 0)
		run_csv_double(f, (double)s->h_grad_clamped /
					  (double)s->h_grad_entries);
	fprintf(f, ",%s,%s\n", s->pythae_error,
		s->first.set ? s->first_batch : "");
}
