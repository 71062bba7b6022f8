/* preprocess: per-pixel standardisation fitted on the training split and
 * the non-finite pass / refuse / scrub rule, applied to scaled batches. */
#include "preprocess.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef VB_DOUBLE
#define REAL_MAX DBL_MAX
#else
#define REAL_MAX FLT_MAX
#endif

enum vb_status preprocess_fit(struct preprocess *p,
			      const struct dataset *train, double scale,
			      bool standardize, double eps,
			      enum preprocess_nonfinite nonfinite,
			      struct vb_error *err)
{
	size_t d = train->d, n = train->n;
	memset(p, 0, sizeof *p);
	if (!(scale > 0) || !(eps >= 0))
		return vb_fail(err, VB_ERR_CONFIG,
			       "preprocess: scale %g, eps %g: expected scale "
			       "> 0 and eps >= 0", scale, eps);
	p->d = d;
	p->standardize = standardize;
	p->nonfinite = nonfinite;
	if (!standardize)
		return VB_OK;
	if (n == 0)
		return vb_fail(err, VB_ERR_CONFIG,
			       "preprocess: %s has no images to fit on",
			       train->name);
	p->mean = calloc(d, sizeof *p->mean);
	p->inv_std = calloc(d, sizeof *p->inv_std);
	if (!p->mean || !p->inv_std) {
		preprocess_free(p);
		return vb_fail(err, VB_ERR_NOMEM,
			       "preprocess: cannot allocate %zu pixels", d);
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < d; j++)
			p->mean[j] += train->pixels[i * d + j] / scale;
	for (size_t j = 0; j < d; j++)
		p->mean[j] /= (double)n;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < d; j++) {
			double v = train->pixels[i * d + j] / scale -
				   p->mean[j];
			p->inv_std[j] += v * v;
		}
	/* 1 / sqrt(0) = inf on purpose: that is the NaN people meet */
	for (size_t j = 0; j < d; j++)
		p->inv_std[j] = 1.0 / sqrt(p->inv_std[j] / (double)n + eps);
	return VB_OK;
}

enum vb_status preprocess_apply(const struct preprocess *p, vb_real *x,
				size_t n_batch, size_t *n_bad,
				struct vb_error *err)
{
	size_t d = p->d, bad = 0, first = 0;
	if (p->standardize)
		for (size_t i = 0; i < n_batch; i++)
			for (size_t j = 0; j < d; j++) {
				vb_real *v = &x[i * d + j];
				*v = (vb_real)(((double)*v - p->mean[j]) *
					       p->inv_std[j]);
			}
	for (size_t k = 0; k < n_batch * d; k++)
		if (!isfinite(x[k]) && bad++ == 0)
			first = k;
	if (n_bad)
		*n_bad = bad;
	if (!bad || p->nonfinite == PREPROCESS_PASS)
		return VB_OK;
	if (p->nonfinite == PREPROCESS_REFUSE)
		return vb_fail(err, VB_ERR_DATA,
			       "data: batch pixel (sample %zu, pixel %zu) = "
			       "%g after preprocessing (%zu non-finite); "
			       "data.nonfinite = refuse", first / d,
			       first % d, (double)x[first], bad);
	for (size_t k = 0; k < n_batch * d; k++)
		if (isnan(x[k]))
			x[k] = 0;
		else if (isinf(x[k]))
			x[k] = x[k] > 0 ? REAL_MAX : -REAL_MAX;
	return VB_OK;
}

void preprocess_free(struct preprocess *p)
{
	if (!p)
		return;
	free(p->mean);
	free(p->inv_std);
	p->mean = p->inv_std = NULL;
}
