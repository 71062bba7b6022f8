/* optim: SGD / Adam / AdamW steps reproducing torch.optim's single-tensor
 * code on flat buffers, gradient norm and clipping as torch.nn.utils, and
 * closed-form learning-rate schedules. Allocation of the parameter and
 * gradient buffers, and the NaN guard, belong to others. */
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "par.h"

#if defined(__AVX__)
#include <immintrin.h>
#endif

/* The per-step loops run on every parameter (~1e6) each step, so they must
 * vectorise under the project's -O2, whose cost model in GCC 12 ("very
 * cheap") refuses loops of unknown length. The option changes no value
 * (-ffp-contract=off still holds: no fused multiply-adds). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic")
#endif

/* pi as the nearest double (Python's math.pi). */
static const double optim_pi = 3.14159265358979323846264338327950288;

#if defined(__GNUC__)
#define OPTIM_INLINE static inline __attribute__((always_inline))
#else
#define OPTIM_INLINE static inline
#endif

/* Elements per block of the Adam loop: its scratch lives on the stack and
 * in L1 (1 KiB in float). */
#define ADAM_BLOCK 256

/* x[k] = sqrt(x[k]) for k < n, correctly rounded (IEEE 754, so the AVX
 * instruction and libm agree bit for bit). Alone in its loop, and spelled
 * with intrinsics where AVX exists, because libm's sqrt may set errno:
 * that is control flow the vectoriser will not cross, and a scalar sqrt
 * loop doubles the cost of an Adam step. */
static void sqrt_block(vb_real *x, size_t n)
{
	size_t k = 0;
#if defined(__AVX__) && defined(VB_DOUBLE)
	for (; k + 4 <= n; k += 4)
		_mm256_storeu_pd(x + k, _mm256_sqrt_pd(_mm256_loadu_pd(x + k)));
#elif defined(__AVX__)
	for (; k + 8 <= n; k += 8)
		_mm256_storeu_ps(x + k, _mm256_sqrt_ps(_mm256_loadu_ps(x + k)));
#endif
	for (; k < n; k++) {
#ifdef VB_DOUBLE
		x[k] = sqrt(x[k]);
#else
		x[k] = sqrtf(x[k]);
#endif
	}
}

const char *optim_kind_name(enum optim_kind kind)
{
	switch (kind) {
	case OPTIM_SGD: return "sgd";
	case OPTIM_ADAM: return "adam";
	case OPTIM_ADAMW: return "adamw";
	}
	return "unknown";
}

bool optim_kind_from_name(const char *name, enum optim_kind *out)
{
	static const enum optim_kind kinds[] = {OPTIM_SGD, OPTIM_ADAM,
						 OPTIM_ADAMW};
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		if (strcmp(name, optim_kind_name(kinds[i])) == 0) {
			*out = kinds[i];
			return true;
		}
	}
	return false;
}

const char *optim_schedule_kind_name(enum optim_schedule_kind kind)
{
	switch (kind) {
	case OPTIM_SCHEDULE_CONSTANT: return "constant";
	case OPTIM_SCHEDULE_STEP: return "step";
	case OPTIM_SCHEDULE_WARMUP: return "warmup";
	case OPTIM_SCHEDULE_COSINE: return "cosine";
	}
	return "unknown";
}

bool optim_schedule_kind_from_name(const char *name,
				   enum optim_schedule_kind *out)
{
	static const enum optim_schedule_kind kinds[] = {
		OPTIM_SCHEDULE_CONSTANT, OPTIM_SCHEDULE_STEP,
		OPTIM_SCHEDULE_WARMUP, OPTIM_SCHEDULE_COSINE};
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		if (strcmp(name, optim_schedule_kind_name(kinds[i])) == 0) {
			*out = kinds[i];
			return true;
		}
	}
	return false;
}

/* ---- settings and lifecycle ------------------------------------------ */

enum vb_status optim_settings_check(const struct optim_settings *s,
				    struct vb_error *err)
{
	/* Written as !(in range) so that NaN fails every check. */
	switch (s->kind) {
	case OPTIM_ADAM:
	case OPTIM_ADAMW:
		if (!(s->beta1 >= 0.0 && s->beta1 < 1.0))
			return vb_fail(err, VB_ERR_CONFIG,
				       "optim: beta1 %g, expected 0 <= beta1 < 1",
				       s->beta1);
		if (!(s->beta2 >= 0.0 && s->beta2 < 1.0))
			return vb_fail(err, VB_ERR_CONFIG,
				       "optim: beta2 %g, expected 0 <= beta2 < 1",
				       s->beta2);
		if (!(s->adam_eps >= 0.0 && isfinite(s->adam_eps)))
			return vb_fail(err, VB_ERR_CONFIG,
				       "optim: adam_eps %g, expected finite >= 0",
				       s->adam_eps);
		break;
	case OPTIM_SGD:
		if (!(s->momentum >= 0.0 && isfinite(s->momentum)))
			return vb_fail(err, VB_ERR_CONFIG,
				       "optim: momentum %g, expected finite >= 0",
				       s->momentum);
		if (!isfinite(s->dampening))
			return vb_fail(err, VB_ERR_CONFIG,
				       "optim: dampening %g, expected finite",
				       s->dampening);
		if (s->nesterov && (s->momentum <= 0.0 || s->dampening != 0.0))
			return vb_fail(err, VB_ERR_CONFIG,
				       "optim: nesterov with momentum %g and "
				       "dampening %g, expected momentum > 0 and "
				       "dampening 0",
				       s->momentum, s->dampening);
		break;
	default:
		return vb_fail(err, VB_ERR_CONFIG,
			       "optim: kind %d, expected sgd, adam or adamw",
			       (int)s->kind);
	}
	if (!(s->weight_decay >= 0.0 && isfinite(s->weight_decay)))
		return vb_fail(err, VB_ERR_CONFIG,
			       "optim: weight_decay %g, expected finite >= 0",
			       s->weight_decay);
	return VB_OK;
}

enum vb_status optim_create(const struct optim_settings *s, size_t n,
			    struct optim **out, struct vb_error *err)
{
	*out = NULL;
	enum vb_status st = optim_settings_check(s, err);
	if (st != VB_OK)
		return st;
	if (n == 0)
		return vb_fail(err, VB_ERR_SHAPE,
			       "optim: parameter count 0, expected >= 1");
	size_t bytes;
	if (!vb_mul_size(n, sizeof(vb_real), &bytes))
		return vb_fail(err, VB_ERR_NOMEM,
			       "optim: %zu parameters overflow size_t", n);
	struct optim *o = calloc(1, sizeof *o);
	if (!o)
		return vb_fail(err, VB_ERR_NOMEM,
			       "optim: cannot allocate the optimiser");
	o->s = *s;
	o->n = n;
	o->step = 0;
	o->m = calloc(n, sizeof(vb_real));
	if (!o->m)
		goto nomem;
	if (s->kind != OPTIM_SGD) {
		o->v = calloc(n, sizeof(vb_real));
		if (!o->v)
			goto nomem;
	}
	*out = o;
	return VB_OK;
nomem:
	optim_free(o);
	return vb_fail(err, VB_ERR_NOMEM,
		       "optim: cannot allocate moments for %zu parameters "
		       "(%zu bytes each)", n, bytes);
}

void optim_free(struct optim *o)
{
	if (!o)
		return;
	free(o->m);
	free(o->v);
	free(o);
}

void optim_reset(struct optim *o)
{
	/* All-zero bits are +0.0 in IEEE 754. */
	memset(o->m, 0, o->n * sizeof(vb_real));
	if (o->v)
		memset(o->v, 0, o->n * sizeof(vb_real));
	o->step = 0;
}

enum vb_status optim_load_step(struct optim *o, const struct checkpoint *ck,
			       const char *name, struct vb_error *err)
{
	int64_t step;
	enum vb_status st = checkpoint_read_i64(ck, name, 0, OPTIM_STEP_MAX,
						&step, err);
	if (st == VB_OK)
		o->step = (long)step;
	return st;
}

void optim_zero_grad(vb_real *grad, size_t n)
{
	memset(grad, 0, n * sizeof(vb_real));
}

/* ---- Adam / AdamW ------------------------------------------------------ */

/* Per-step scalars of _single_tensor_adam(w), each computed in double as
 * the Python float it is in torch, then rounded once to vb_real as the CPU
 * kernels do with a Scalar argument (Scalar.to<float>()). */
struct adam_scalars {
	vb_real wd;        /* grad.add(param, alpha=weight_decay) */
	vb_real w1;        /* exp_avg.lerp_(grad, 1 - beta1): weight */
	vb_real w1c;       /* lerp's opmath_t(1) - weight, in vb_real */
	vb_real b2;        /* exp_avg_sq.mul_(beta2) */
	vb_real c2;        /* .addcmul_(g, g, value=1 - beta2) */
	vb_real bc2_sqrt;  /* exp_avg_sq.sqrt() / bias_correction2_sqrt */
	vb_real eps;       /* .add_(eps) */
	vb_real neg_step;  /* param.addcdiv_(exp_avg, denom, value=-step_size) */
};

/* The element loop of torch's Adam after the (decoupled) weight decay,
 * one element at a time in vb_real, in torch's operation order:
 *   g   = grad + wd * param                 (ADAM with weight_decay only:
 *         ufunc add, self + alpha * other)
 *   m   = m + w1 * (g - m)                  if |w1| < 0.5 (torch lerp)
 *       = g - (g - m) * (1 - w1)            otherwise
 *   v   = v * beta2                         (mul_)
 *   v   = v + (c2 * g) * g                  (addcmul: self + value*t1*t2,
 *         evaluated left to right)
 *   den = sqrt(v) / bc2_sqrt + eps          (sqrt, div, add_: three
 *         roundings, a true division as torch does for float)
 *   p   = p + (neg_step * m) / den          (addcdiv: self + value*t1/t2,
 *         left to right)
 * Sources: torch/optim/adam.py (_single_tensor_adam), ATen's
 * native/Lerp.h, native/cpu/PointwiseOpsKernel.cpp (addcmul and addcdiv
 * group value*t1 first, so the products are not value*(t1*t2)).
 * torch's AVX2 kernels fuse some of these multiply-adds (ufunc add, lerp
 * use vec::fmadd); this build compiles with -ffp-contract=off and follows
 * the scalar reference expressions, so results can differ from a given
 * torch binary in the last bit. l2 and small_w1 are constants at each call
 * so that every variant is a branch-free loop the compiler vectorises. */
OPTIM_INLINE void adam_loop(size_t n, vb_real *restrict p,
			    const vb_real *restrict grad,
			    vb_real *restrict m, vb_real *restrict v,
			    const struct adam_scalars *sc, bool l2,
			    bool small_w1)
{
	const vb_real wd = sc->wd, w1 = sc->w1, w1c = sc->w1c, b2 = sc->b2;
	const vb_real c2 = sc->c2, bc2_sqrt = sc->bc2_sqrt, eps = sc->eps;
	const vb_real neg_step = sc->neg_step;
	const size_t n_blocks = (n + ADAM_BLOCK - 1) / ADAM_BLOCK;
	/* blocks in parallel (par.h): every element's update is its own */
	PAR_FOR(n)
	for (size_t blk = 0; blk < n_blocks; blk++) {
		vb_real root[ADAM_BLOCK];
		const size_t i0 = blk * ADAM_BLOCK;
		const size_t nb = n - i0 < ADAM_BLOCK ? n - i0 : ADAM_BLOCK;
		vb_real *restrict pb = p + i0;
		vb_real *restrict mb = m + i0;
		vb_real *restrict vb = v + i0;
		const vb_real *restrict gb = grad + i0;
		for (size_t k = 0; k < nb; k++) {
			vb_real g = gb[k];
			if (l2)
				g = g + wd * pb[k];
			vb_real mi = mb[k];
			if (small_w1)
				mi = mi + w1 * (g - mi);
			else
				mi = g - (g - mi) * w1c;
			mb[k] = mi;
			vb_real vi = vb[k] * b2;
			vi = vi + c2 * g * g;
			vb[k] = vi;
			root[k] = vi;
		}
		sqrt_block(root, nb);
		for (size_t k = 0; k < nb; k++) {
			vb_real den = root[k] / bc2_sqrt + eps;
			pb[k] = pb[k] + neg_step * mb[k] / den;
		}
	}
}

static void adam_step(struct optim *o, vb_real *restrict p,
		      const vb_real *restrict grad, double lr)
{
	const struct optim_settings *s = &o->s;
	const size_t n = o->n;
	o->step += 1;
	/* Python floats, as in torch: step is read off its step tensor as a
	 * float, beta ** step is C pow, bias_correction2 ** 0.5 is pow too
	 * (not sqrt, to round as Python does). */
	const double step = (double)o->step;
	const double bias_correction1 = 1.0 - pow(s->beta1, step);
	const double bias_correction2 = 1.0 - pow(s->beta2, step);
	const double step_size = lr / bias_correction1;
	const double bias_correction2_sqrt = pow(bias_correction2, 0.5);

	const bool decay = s->weight_decay != 0.0;
	if (decay && s->kind == OPTIM_ADAMW) {
		/* param.mul_(1 - lr * weight_decay): factor in double, one
		 * float multiply per element, before the moments. */
		const vb_real f = (vb_real)(1.0 - lr * s->weight_decay);
		PAR_FOR(n)
		for (size_t i = 0; i < n; i++)
			p[i] = p[i] * f;
	}
	struct adam_scalars sc;
	sc.wd = (vb_real)s->weight_decay;
	sc.w1 = (vb_real)(1.0 - s->beta1);
	sc.w1c = (vb_real)1 - sc.w1;
	sc.b2 = (vb_real)s->beta2;
	sc.c2 = (vb_real)(1.0 - s->beta2);
	sc.bc2_sqrt = (vb_real)bias_correction2_sqrt;
	sc.eps = (vb_real)s->adam_eps;
	sc.neg_step = (vb_real)(-step_size);
	/* torch's is_lerp_weight_small, on the weight as opmath float. */
	const bool small_w1 = fabs((double)sc.w1) < 0.5;
	const bool l2 = decay && s->kind == OPTIM_ADAM;
	if (l2 && small_w1)
		adam_loop(n, p, grad, o->m, o->v, &sc, true, true);
	else if (l2)
		adam_loop(n, p, grad, o->m, o->v, &sc, true, false);
	else if (small_w1)
		adam_loop(n, p, grad, o->m, o->v, &sc, false, true);
	else
		adam_loop(n, p, grad, o->m, o->v, &sc, false, false);
}

/* ---- SGD ----------------------------------------------------------------- */

/* torch's _single_tensor_sgd, per element in vb_real:
 *   g   = grad + wd * param                 (if weight_decay != 0)
 *   buf = g                                 (first step: clone)
 *   buf = buf * momentum + (1 - dampening) * g   (later: mul_, add_ alpha;
 *         two roundings then the add)
 *   g   = g + momentum * buf                (nesterov) or g = buf
 *   p   = p + (-lr) * g                     (add_ with alpha=-lr)
 * Scalars are rounded once from double. Momentum 0 leaves buf untouched,
 * as torch keeps no buffer then. */
OPTIM_INLINE void sgd_loop(size_t n, vb_real *restrict p,
			   const vb_real *restrict grad, vb_real *restrict buf,
			   vb_real wd, vb_real mom, vb_real damp1,
			   vb_real neg_lr, bool l2, bool use_mom, bool first,
			   bool nesterov)
{
	for (size_t i = 0; i < n; i++) {
		vb_real g = grad[i];
		if (l2)
			g = g + wd * p[i];
		if (use_mom) {
			vb_real b;
			if (first)
				b = g;
			else
				b = buf[i] * mom + damp1 * g;
			buf[i] = b;
			if (nesterov)
				g = g + mom * b;
			else
				g = b;
		}
		p[i] = p[i] + neg_lr * g;
	}
}

static void sgd_step(struct optim *o, vb_real *restrict p,
		     const vb_real *restrict grad, double lr)
{
	const struct optim_settings *s = &o->s;
	const size_t n = o->n;
	const bool first = o->step == 0;
	o->step += 1;
	const vb_real wd = (vb_real)s->weight_decay;
	const vb_real mom = (vb_real)s->momentum;
	const vb_real damp1 = (vb_real)(1.0 - s->dampening);
	const vb_real neg_lr = (vb_real)(-lr);
	const bool l2 = s->weight_decay != 0.0;
	vb_real *buf = o->m;
	if (s->momentum == 0.0) {
		if (l2)
			sgd_loop(n, p, grad, buf, wd, mom, damp1, neg_lr, true,
				 false, false, false);
		else
			sgd_loop(n, p, grad, buf, wd, mom, damp1, neg_lr,
				 false, false, false, false);
		return;
	}
	/* The rare variants (first step, nesterov) share one generic loop;
	 * the common one (plain momentum, later steps) gets its own. */
	if (!first && !s->nesterov && !l2)
		sgd_loop(n, p, grad, buf, wd, mom, damp1, neg_lr, false,
			 true, false, false);
	else
		sgd_loop(n, p, grad, buf, wd, mom, damp1, neg_lr, l2,
			 true, first, s->nesterov);
}

void optim_step(struct optim *o, vb_real *param, const vb_real *grad,
		double lr)
{
	if (o->s.kind == OPTIM_SGD)
		sgd_step(o, param, grad, lr);
	else
		adam_step(o, param, grad, lr);
}

/* ---- norms and clipping ---------------------------------------------- */

#define OPTIM_NORM_LANES 16

double optim_grad_norm(const vb_real *g, size_t n)
{
	/* OPTIM_NORM_LANES double accumulators in a fixed order (so the result
	 * is deterministic): the inner loop vectorises and the adds stay
	 * independent; a float accumulator would lose the small terms next to
	 * a large one. Pairwise tree at the end. */
	double acc[OPTIM_NORM_LANES] = {0};
	size_t i = 0;
	for (; i + OPTIM_NORM_LANES <= n; i += OPTIM_NORM_LANES)
		for (size_t j = 0; j < OPTIM_NORM_LANES; j++) {
			double x = (double)g[i + j];
			acc[j] += x * x;
		}
	for (; i < n; i++) {
		double x = (double)g[i];
		acc[0] += x * x;
	}
	for (size_t w = OPTIM_NORM_LANES / 2; w > 0; w /= 2)
		for (size_t j = 0; j < w; j++)
			acc[j] += acc[j + w];
	return sqrt(acc[0]);
}

double optim_clip_norm(vb_real *g, size_t n, double max_norm,
		       double clip_eps)
{
	const double total = optim_grad_norm(g, n);
	const double coef = max_norm / (total + clip_eps);
	/* torch.clamp(coef, max=1.0): a NaN coef stays NaN (fmin would
	 * return 1 and hide it). */
	const double clamped = coef > 1.0 ? 1.0 : coef;
	const vb_real c = (vb_real)clamped;
	for (size_t i = 0; i < n; i++)
		g[i] = g[i] * c;
	return total;
}

void optim_clip_value(vb_real *g, size_t n, double clip)
{
	const vb_real hi = (vb_real)clip;
	const vb_real lo = -hi;
	for (size_t i = 0; i < n; i++) {
		vb_real x = g[i];
		/* Comparisons with NaN are false: NaN passes through. */
		x = x < lo ? lo : x;
		x = x > hi ? hi : x;
		g[i] = x;
	}
}

/* ---- clipping with state ------------------------------------------------ */

const char *optim_clip_mode_name(enum optim_clip_mode mode)
{
	switch (mode) {
	case OPTIM_CLIP_NONE: return "none";
	case OPTIM_CLIP_NORM: return "norm";
	case OPTIM_CLIP_VALUE: return "value";
	case OPTIM_CLIP_ADAPTIVE: return "adaptive";
	}
	return "unknown";
}

bool optim_clip_mode_from_name(const char *name, enum optim_clip_mode *out)
{
	for (int m = OPTIM_CLIP_NONE; m <= OPTIM_CLIP_ADAPTIVE; m++)
		if (!strcmp(name, optim_clip_mode_name((enum optim_clip_mode)m))) {
			*out = (enum optim_clip_mode)m;
			return true;
		}
	return false;
}

void optim_clip_settings_defaults(struct optim_clip_settings *s)
{
	memset(s, 0, sizeof *s);
	s->mode = OPTIM_CLIP_NONE;
	s->threshold = 1;
	s->clip_eps = 1e-6;
	s->k = 10;
	s->window = 50;
	s->warmup = 10;
}

enum vb_status optim_clip_settings_check(const struct optim_clip_settings *s,
					 struct vb_error *err)
{
	if (s->mode < OPTIM_CLIP_NONE || s->mode > OPTIM_CLIP_ADAPTIVE)
		return vb_fail(err, VB_ERR_CONFIG, "optim: clip mode %d, "
			       "expected none, norm, value or adaptive",
			       (int)s->mode);
	if ((s->mode == OPTIM_CLIP_NORM || s->mode == OPTIM_CLIP_VALUE) &&
	    !(s->threshold > 0 && isfinite(s->threshold)))
		return vb_fail(err, VB_ERR_CONFIG, "optim: clip threshold %g, "
			       "expected finite > 0", s->threshold);
	if (s->mode == OPTIM_CLIP_NORM || s->mode == OPTIM_CLIP_ADAPTIVE) {
		if (!(s->clip_eps >= 0 && isfinite(s->clip_eps)))
			return vb_fail(err, VB_ERR_CONFIG, "optim: clip_eps "
				       "%g, expected finite >= 0", s->clip_eps);
	}
	if (s->mode == OPTIM_CLIP_ADAPTIVE) {
		if (!(s->k > 0 && isfinite(s->k)))
			return vb_fail(err, VB_ERR_CONFIG, "optim: clip k %g, "
				       "expected finite > 0", s->k);
		if (s->window < 1)
			return vb_fail(err, VB_ERR_CONFIG, "optim: clip window "
				       "%zu, expected >= 1", s->window);
		if (s->warmup < 1 || s->warmup > s->window)
			return vb_fail(err, VB_ERR_CONFIG, "optim: clip warmup "
				       "%zu, expected 1..%zu (the window)",
				       s->warmup, s->window);
	}
	return VB_OK;
}

enum vb_status optim_clip_create(const struct optim_clip_settings *s,
				 struct optim_clip **out,
				 struct vb_error *err)
{
	struct optim_clip *c;
	enum vb_status st = optim_clip_settings_check(s, err);
	*out = NULL;
	if (st)
		return st;
	c = calloc(1, sizeof *c);
	if (!c)
		return vb_fail(err, VB_ERR_NOMEM, "optim: cannot allocate clip");
	c->s = *s;
	if (s->mode == OPTIM_CLIP_ADAPTIVE) {
		c->window = calloc(s->window, sizeof *c->window);
		c->scratch = calloc(s->window, sizeof *c->scratch);
		if (!c->window || !c->scratch) {
			optim_clip_free(c);
			return vb_fail(err, VB_ERR_NOMEM, "optim: cannot "
				       "allocate a clip window of %zu",
				       s->window);
		}
	}
	c->last_norm = NAN;
	c->last_threshold = NAN;
	*out = c;
	return VB_OK;
}

void optim_clip_free(struct optim_clip *c)
{
	if (!c)
		return;
	free(c->window);
	free(c->scratch);
	free(c);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The window oldest first into c->scratch; returns the count. */
static size_t window_ordered(const struct optim_clip *c, double *dst)
{
	size_t W = c->s.window, start = (c->head + W - c->n_window) % W;
	for (size_t i = 0; i < c->n_window; i++)
		dst[i] = c->window[(start + i) % W];
	return c->n_window;
}

double optim_clip_median(const struct optim_clip *c)
{
	size_t n;
	if (!c->window || c->n_window == 0)
		return NAN;
	n = window_ordered(c, c->scratch);
	qsort(c->scratch, n, sizeof *c->scratch, cmp_double);
	return n % 2 ? c->scratch[n / 2]
		     : 0.5 * (c->scratch[n / 2 - 1] + c->scratch[n / 2]);
}

double optim_clip_apply(struct optim_clip *c, vb_real *g, size_t n,
			bool *clipped)
{
	bool did = false;
	double total;
	c->n_steps++;
	switch (c->s.mode) {
	case OPTIM_CLIP_NORM: {
		total = optim_grad_norm(g, n);
		/* the factor optim_clip_norm will apply, as it rounds it */
		double coef = c->s.threshold / (total + c->s.clip_eps);
		did = !(coef >= 1.0) && (vb_real)coef < (vb_real)1;
		optim_clip_norm(g, n, c->s.threshold, c->s.clip_eps);
		c->last_threshold = c->s.threshold;
		break;
	}
	case OPTIM_CLIP_VALUE: {
		const vb_real hi = (vb_real)c->s.threshold;
		total = optim_grad_norm(g, n);
		for (size_t i = 0; i < n && !did; i++)
			did = g[i] > hi || g[i] < -hi;
		optim_clip_value(g, n, c->s.threshold);
		c->last_threshold = NAN;
		break;
	}
	case OPTIM_CLIP_ADAPTIVE: {
		total = optim_grad_norm(g, n);
		double thr = INFINITY;
		if (c->n_window >= c->s.warmup)
			thr = c->s.k * optim_clip_median(c);
		c->last_threshold = thr;
		if (!isfinite(total))
			break;
		if (total + c->s.clip_eps > thr) {
			double coef = thr / (total + c->s.clip_eps);
			did = (vb_real)coef < (vb_real)1;
			optim_clip_norm(g, n, thr, c->s.clip_eps);
		}
		c->window[c->head] = total;
		c->head = (c->head + 1) % c->s.window;
		if (c->n_window < c->s.window)
			c->n_window++;
		break;
	}
	default:
		total = optim_grad_norm(g, n);
		c->last_threshold = NAN;
		break;
	}
	c->last_norm = total;
	if (did)
		c->n_clipped++;
	if (clipped)
		*clipped = did;
	return total;
}

double optim_clip_share(const struct optim_clip *c)
{
	return c->n_steps ? (double)c->n_clipped / (double)c->n_steps : 0;
}

static bool clip_name(char *buf, size_t cap, const char *prefix,
		      const char *what)
{
	size_t lp = strlen(prefix), lw = strlen(what);
	if (lp + 1 + lw + 1 > cap)
		return false;
	memcpy(buf, prefix, lp);
	buf[lp] = '.';
	memcpy(buf + lp + 1, what, lw + 1);
	return true;
}

enum vb_status optim_clip_save(struct optim_clip *c,
			       struct checkpoint_writer *w, const char *prefix,
			       struct vb_error *err)
{
	char nw[128], nc[128];
	size_t shape[1];
	enum vb_status st;
	if (!clip_name(nw, sizeof nw, prefix, "window") ||
	    !clip_name(nc, sizeof nc, prefix, "counts"))
		return vb_fail(err, VB_ERR_INTERNAL, "optim: clip prefix %s "
			       "too long", prefix);
	c->saved_counts[0] = (int64_t)c->n_window;
	c->saved_counts[1] = (int64_t)c->n_steps;
	c->saved_counts[2] = (int64_t)c->n_clipped;
	shape[0] = c->window ? window_ordered(c, c->scratch) : 0;
	st = checkpoint_add(w, nw, CHECKPOINT_F64, 1, shape,
			    shape[0] ? c->scratch : NULL, err);
	shape[0] = 3;
	if (st == VB_OK)
		st = checkpoint_add(w, nc, CHECKPOINT_I64, 1, shape,
				    c->saved_counts, err);
	return st;
}

enum vb_status optim_clip_load(struct optim_clip *c,
			       const struct checkpoint *ck,
			       const char *prefix, struct vb_error *err)
{
	char nw[128], nc[128];
	int64_t counts[3];
	enum checkpoint_dtype dt;
	int nd;
	size_t shape[CHECKPOINT_MAX_DIM];
	enum vb_status st;
	if (!clip_name(nw, sizeof nw, prefix, "window") ||
	    !clip_name(nc, sizeof nc, prefix, "counts"))
		return vb_fail(err, VB_ERR_INTERNAL, "optim: clip prefix %s "
			       "too long", prefix);
	st = checkpoint_read_raw(ck, nc, CHECKPOINT_I64, 3, counts, err);
	if (st == VB_OK) /* n_steps++ must not overflow */
		st = checkpoint_check_i64(ck, nc, counts, 3, 0,
					  CHECKPOINT_COUNT_MAX, err);
	if (st)
		return st;
	st = checkpoint_info(ck, nw, &dt, &nd, shape, err);
	if (st)
		return st;
	size_t cap = c->window ? c->s.window : 0;
	if (dt != CHECKPOINT_F64 || nd != 1 || counts[0] < 0 ||
	    (size_t)counts[0] != shape[0] || shape[0] > cap ||
	    counts[1] < 0 || counts[2] < 0 || counts[2] > counts[1])
		return vb_fail(err, VB_ERR_DATA, "optim: checkpoint %s / %s "
			       "do not fit a clip window of %zu", nw, nc, cap);
	if (shape[0] > 0) {
		st = checkpoint_read_raw(ck, nw, CHECKPOINT_F64, shape[0],
					 c->window, err);
		if (st)
			return st;
	}
	c->n_window = shape[0];
	c->head = cap ? shape[0] % cap : 0;
	c->n_steps = (long)counts[1];
	c->n_clipped = (long)counts[2];
	return VB_OK;
}

/* ---- schedules ----------------------------------------------------------- */

enum vb_status optim_schedule_check(const struct optim_schedule *s,
				    struct vb_error *err)
{
	switch (s->kind) {
	case OPTIM_SCHEDULE_CONSTANT:
		return VB_OK;
	case OPTIM_SCHEDULE_STEP:
		if (s->step_size < 1)
			return vb_fail(err, VB_ERR_CONFIG,
				       "optim: schedule step_size %ld, expected "
				       ">= 1", s->step_size);
		if (!(s->gamma > 0.0 && isfinite(s->gamma)))
			return vb_fail(err, VB_ERR_CONFIG,
				       "optim: schedule gamma %g, expected "
				       "finite > 0", s->gamma);
		return VB_OK;
	case OPTIM_SCHEDULE_WARMUP:
		if (s->warmup_steps < 1)
			return vb_fail(err, VB_ERR_CONFIG,
				       "optim: schedule warmup_steps %ld, "
				       "expected >= 1", s->warmup_steps);
		return VB_OK;
	case OPTIM_SCHEDULE_COSINE:
		if (s->total_epochs < 1)
			return vb_fail(err, VB_ERR_CONFIG,
				       "optim: schedule total_epochs %ld, "
				       "expected >= 1", s->total_epochs);
		if (!(s->min_lr >= 0.0 && isfinite(s->min_lr)))
			return vb_fail(err, VB_ERR_CONFIG,
				       "optim: schedule min_lr %g, expected "
				       "finite >= 0", s->min_lr);
		return VB_OK;
	}
	return vb_fail(err, VB_ERR_CONFIG,
		       "optim: schedule kind %d, expected constant, step, "
		       "warmup or cosine", (int)s->kind);
}

double optim_schedule_lr(const struct optim_schedule *s, double base_lr,
			 long epoch, long step)
{
	switch (s->kind) {
	case OPTIM_SCHEDULE_CONSTANT:
		return base_lr;
	case OPTIM_SCHEDULE_STEP:
		if (s->step_size < 1)
			return base_lr;
		/* StepLR._get_closed_form_lr:
		 * base_lr * gamma ** (last_epoch // step_size). */
		return base_lr * pow(s->gamma, (double)(epoch / s->step_size));
	case OPTIM_SCHEDULE_WARMUP: {
		if (s->warmup_steps < 1)
			return base_lr;
		double f = (double)(step + 1) / (double)s->warmup_steps;
		return f < 1.0 ? base_lr * f : base_lr;
	}
	case OPTIM_SCHEDULE_COSINE:
		if (s->total_epochs < 1)
			return base_lr;
		/* CosineAnnealingLR._get_closed_form_lr, in Python's order. */
		return s->min_lr + (base_lr - s->min_lr) *
			(1.0 + cos(optim_pi * (double)epoch /
				   (double)s->total_epochs)) / 2.0;
	}
	return base_lr;
}
