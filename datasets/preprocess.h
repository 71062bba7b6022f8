/* preprocess: what happens to a batch after dataset_batch has scaled its
 * pixels: per-pixel standardisation with statistics of the training split
 * and its own epsilon, and a non-finite check that passes, refuses or
 * scrubs (numpy/torch nan_to_num semantics). Choosing the settings is the
 * caller's business. */
#ifndef VB_DATASETS_PREPROCESS_H
#define VB_DATASETS_PREPROCESS_H

#include <stdbool.h>
#include <stddef.h>

#include "dataset.h"
#include "vb.h"

enum preprocess_nonfinite {
	PREPROCESS_PASS,   /* leave non-finite pixels to the guard */
	PREPROCESS_REFUSE, /* VB_ERR_DATA naming the first one */
	PREPROCESS_SCRUB   /* NaN -> 0, +-Inf -> +-largest finite */
};

struct preprocess {
	size_t d;
	bool standardize;
	enum preprocess_nonfinite nonfinite;
	double *mean;    /* (d) per-pixel mean of the scaled training pixels */
	double *inv_std; /* (d) 1 / sqrt(var + eps): inf where both are 0 */
};

/* Fits the statistics over every image of train (pixels / scale, sums in
 * double; variance biased, as torch.std(unbiased=False)) when
 * standardize; eps >= 0 is added to the variance. VB_ERR_CONFIG for
 * scale <= 0 or eps < 0, VB_ERR_NOMEM. *p is empty on error. */
enum vb_status preprocess_fit(struct preprocess *p,
			      const struct dataset *train, double scale,
			      bool standardize, double eps,
			      enum preprocess_nonfinite nonfinite,
			      struct vb_error *err);

/* x (n_batch, d) in place: (x - mean) * inv_std when standardize (a
 * pixel constant over the training split with eps 0 gives 0 * inf = NaN
 * or +-inf), then the non-finite rule. *n_bad (may be NULL) gets the count
 * of non-finite pixels found. REFUSE: VB_ERR_DATA "data: batch pixel
 * (sample s, pixel i) = nan after preprocessing; data.nonfinite = refuse"
 * and x left as it is. */
enum vb_status preprocess_apply(const struct preprocess *p, vb_real *x,
				size_t n_batch, size_t *n_bad,
				struct vb_error *err);

/* Releases the statistics; p may be NULL, freeing twice is safe. */
void preprocess_free(struct preprocess *p);

#endif
