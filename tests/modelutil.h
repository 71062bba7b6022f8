/* modelutil: the model boilerplate the model suites share (a tiny config,
 * create with scaled weights, a seeded grey batch, one loss on the tape).
 * Apart from testutil because it needs vb_models: tests/CMakeLists.txt
 * links it into the suites that link vb_models. Prefix mu_. */
#ifndef VB_TESTS_MODELUTIL_H
#define VB_TESTS_MODELUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graph.h"
#include "model.h"

/* The tiny model of test_vae, test_hvae and test_rhvae: batches of MU_NB
 * images of MU_NR x MU_NC = MU_ND pixels. */
#define MU_NB 4
#define MU_NR 4
#define MU_NC 3
#define MU_ND (MU_NR * MU_NC)

/* model_config_defaults, then kind, an n_rows x n_cols image, n_hidden,
 * n_latent and init_seed: the start of every suite's tiny model. */
struct model_config mu_config(enum model_kind kind, size_t n_rows,
			      size_t n_cols, size_t n_hidden,
			      size_t n_latent, uint64_t init_seed);

/* model_create(mc) (the test fails with its message otherwise), then every
 * parameter multiplied by scale (1: the initialised weights). */
struct model *mu_create(const struct model_config *mc, double scale);

/* A tape of 1 MiB (graph_create; the test fails otherwise): the size
 * every tiny model's loss fits in. The caller frees it. */
struct graph *mu_tape(void);

/* x[i] = lo + width * u for n uniform draws u of the RNG_STREAM_INJECT
 * stream of seed: grey levels inside (0, 1). */
void mu_fill(vb_real *x, size_t n, uint64_t seed, double lo, double width);

/* The loss of batch x (B, m->cfg.n_rows * n_cols) built on g after
 * graph_reset, noise from RNG_STREAM_NOISE of seed 3 (the same eps every
 * call); with backward, the parameter gradients are zeroed and
 * graph_backward run. Build or backward errors fail the test. The tape's
 * nodes stay readable in *out (may be NULL) until g is reset. */
double mu_loss(struct model *m, struct graph *g, vb_real *x, size_t B,
	       bool training, bool backward, struct model_out *out);

/* mu_loss with the noise of RNG_STREAM_NOISE of seed noise_seed. */
double mu_loss_seeded(struct model *m, struct graph *g, vb_real *x, size_t B,
		      bool training, bool backward, uint64_t noise_seed,
		      struct model_out *out);

/* Sigma softplus on g's tape after a loss of a model whose nodes are
 * named name.* ("vae", "rhvae"): name.std is the softplus of the
 * encoder's head encoder.logvar, equal to libm's (gradcheck_softplus) to
 * a few ulps (1e-15 relative), out->logvar is the node name.logvar, and
 * name.half_logvar (sigma exp's node) is not there. Returns name.std. */
struct graph_node *mu_check_softplus_std(struct graph *g, const char *name,
					 const struct model_out *out);

/* After mu_check_softplus_std: the latent z (B, Z) is out->mu + eps *
 * softplus(encoder.logvar) element for element (1e-14 relative to
 * max(1, |mu|): one product and one sum in double). */
void mu_check_reparam(struct graph *g, const struct graph_node *z,
		      const struct graph_node *eps,
		      const struct model_out *out);

/* Puts a model's recorded graph constants in record (true) or replay
 * (false) mode: a wrapper of hvae_set_freeze or rhvae_set_freeze. */
typedef void (*mu_freeze_fn)(struct model *m, bool record);

/* What mu_grad_check found: parameters checked, outside the tolerance,
 * and the largest relative error of those above atol. */
struct mu_grad_result {
	size_t checked;
	size_t bad;
	double worst;
};

/* The whole training loss gradient of m on batch x (B rows, mu_loss)
 * against central differences, h = 1e-5 max(1, |w|), for every parameter
 * params_locate names. With freeze, the analytic pass records the
 * constants and every other pass replays them (the unperturbed replay
 * must give the same loss). The base loss and every analytic gradient
 * must be finite (asserted). Tolerance 1e-8 + 1e-5 max(|a|, |n|): rtol
 * 1e-5 (STYLE.md 6); atol 1e-8 for exact zeros (dead relus); the losses
 * are O(10), so double rounding in the quotient is ~1e-15 * 10 / 1e-5 =
 * 1e-9. The first three mismatches are printed to stderr after tag. */
struct mu_grad_result mu_grad_check(struct model *m, vb_real *x, size_t B,
				    mu_freeze_fn freeze, const char *tag);

#endif
