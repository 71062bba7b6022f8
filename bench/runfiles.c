/* runfiles: two files of a run folder that need the built model: meta.json
 * (build, kernels, threads, conv backend, parameter count) and the pictures
 * of a finished run (reconstructions.png, samples.png, and for an RHVAE
 * samples_prior.png). The logs, the
 * summary and the checkpoints are train.c's and forensics.c's. */
#include "runfiles.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
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
