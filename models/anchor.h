/* anchor: the VAE of vae.h plus a regulariser that pulls every latent
 * mean onto the segment between two anchor means, the case where the
 * placement of an epsilon decides between NaN and a finite gradient
 * (issue 7 item 6). Settings: model_config anchor_*. */
#ifndef VB_MODELS_ANCHOR_H
#define VB_MODELS_ANCHOR_H

#include "model.h"

/* Loss per sample: recon + KL + anchor_weight (d1 + d2 - d12), with
 * d1 = |mu_b - a1|, d2 = |mu_b - a2|, d12 = |a1 - a2| (Euclidean, each
 * sqrt of a sum of squares) and the anchors a1, a2 the encoder means of
 * the batch's first two samples (a labelled pair in practice; here the
 * regulariser also runs over the anchors themselves, so d1 of sample 0
 * and d2 of sample 1 are exactly 0). anchor_eps_placement: none (sqrt(s):
 * d sqrt at 0 is infinite, the gradient is NaN), loss (eps added to the
 * regulariser: its gradient is unchanged, still NaN), sqrt (sqrt(s + eps):
 * finite). Nodes: anchor.d1.sq, anchor.d1 (op sqrt), ..., anchor.reg. */
enum vb_status anchor_create(const struct model_config *cfg,
			     struct model **out, struct vb_error *err);

#endif
