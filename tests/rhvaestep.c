/* rhvaestep: one RHVAE step on the ResNets for the backend and thread
 * suites. */
#include "rhvaestep.h"

#include <check.h>
#include <stdlib.h>

#include "dataset.h"
#include "modelutil.h"

struct model *rs_rhvae_step(enum graph_conv_backend be, size_t B,
			    double *loss)
{
	return rs_rhvae_step_blocked(be, true, B, loss);
}

struct model *rs_rhvae_step_blocked(enum graph_conv_backend be, bool blocked,
				    size_t B, double *loss)
{
	struct model_config mc;
	struct model *m;
	struct graph *g = NULL;
	struct dataset ds;
	struct vb_error err = {0};
	vb_real *x = malloc(B * 784 * sizeof *x);
	ck_assert_ptr_nonnull(x);
	model_config_defaults(&mc);
	mc.kind = MODEL_KIND_RHVAE;
	mc.arch = MODEL_ARCH_RESNET;
	mc.n_batch_max = B;
	m = mu_create(&mc, 1);
	ck_assert_int_eq(graph_create((size_t)64 << 20, &g, &err), VB_OK);
	ck_assert_int_eq(graph_set_conv_backend(g, be, &err), VB_OK);
	graph_set_blocked(g, blocked);
	ck_assert_int_eq(dataset_synthetic(B, 28, 28, 1, &ds, &err), VB_OK);
	dataset_batch(&ds, NULL, B, 255, x);
	*loss = mu_loss_seeded(m, g, x, B, true, true, 1, NULL);
	graph_free(g);
	dataset_free(&ds);
	free(x);
	return m;
}
