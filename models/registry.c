/* registry: creation by kind, the one file that includes every model. The
 * interface (model.h, model.c) knows none of them, and no model includes
 * this file. A new model adds its case here. */
#include "model.h"

#include <stdlib.h>

#include "anchor.h"
#include "hvae.h"
#include "rhvae.h"
#include "vae.h"

static enum vb_status create_kind(const struct model_config *cfg,
				  struct model **out, struct vb_error *err)
{
	switch (cfg->kind) {
	case MODEL_KIND_VAE:
		return vae_create(cfg, out, err);
	case MODEL_KIND_RHVAE:
		return rhvae_create(cfg, out, err);
	case MODEL_KIND_HVAE:
		return hvae_create(cfg, out, err);
	case MODEL_KIND_ANCHOR:
		return anchor_create(cfg, out, err);
	}
	return vb_fail(err, VB_ERR_CONFIG, "model: unknown kind %d",
		       (int)cfg->kind);
}

enum vb_status model_create(const struct model_config *cfg,
			    struct model **out, struct vb_error *err)
{
	struct model_config c = *cfg;
	struct model_buffers *b = calloc(1, sizeof *b);
	enum vb_status st;
	*out = NULL;
	if (!b)
		return vb_fail(err, VB_ERR_NOMEM, "model: cannot allocate");
	b->training = true;
	c.buffers = b;
	st = create_kind(&c, out, err);
	if (st != VB_OK) {
		model_buffers_free(b);
		return st;
	}
	(*out)->cfg.buffers = b;
	(*out)->buffers = b;
	return VB_OK;
}

