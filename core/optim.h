/* optim: parameter updates with torch.optim's single-tensor semantics (SGD,
 * Adam, AdamW), gradient norms and clipping (torch.nn.utils), and learning
 * rate schedules, all on flat buffers: parameters in one contiguous buffer,
 * gradients in a second of the same layout, moments likewise. Which tensor
 * lives where, and when to call what, is the training loop's business. */
#ifndef VB_CORE_OPTIM_H
#define VB_CORE_OPTIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vb.h"

enum optim_kind {
	OPTIM_SGD,
	OPTIM_ADAM,
	OPTIM_ADAMW
};

/* Stable lowercase name: "sgd", "adam", "adamw"; "unknown" otherwise. */
const char *optim_kind_name(enum optim_kind kind);

/* Parses a name of optim_kind_name into *out; false (and *out untouched)
 * for any other string. */
bool optim_kind_from_name(const char *name, enum optim_kind *out);

/* Hyper-parameters, named as in torch.optim. Adam/AdamW read beta1, beta2,
 * adam_eps, weight_decay (L2 added to the gradient for ADAM, decoupled
 * shrinking of the parameters for ADAMW); SGD reads momentum, dampening,
 * nesterov, weight_decay. The learning rate is passed to every step. */
struct optim_settings {
	enum optim_kind kind;
	double beta1;        /* Adam: [0, 1) */
	double beta2;        /* Adam: [0, 1) */
	double adam_eps;     /* Adam: >= 0 (0 is allowed, to provoke NaN) */
	double weight_decay; /* >= 0 */
	double momentum;     /* SGD: >= 0 */
	double dampening;    /* SGD: finite */
	bool nesterov;       /* SGD: needs momentum > 0 and dampening 0 */
};

/* Optimiser state. m and v have n elements each, in the layout of the
 * parameter buffer; they are exposed so that checkpoints can save and load
 * them (together with step). */
struct optim {
	struct optim_settings s;
	size_t n;  /* parameter count */
	vb_real *m; /* (n) Adam exp_avg, or SGD momentum_buffer */
	vb_real *v; /* (n) Adam exp_avg_sq; NULL for SGD */
	long step;  /* steps taken; for SGD, 0 means "no momentum buffer yet"
		     * as torch's None (the first step copies the gradient) */
};

/* Checks settings the way torch.optim's constructors do, plus finiteness:
 * VB_ERR_CONFIG naming the field, its value and the expected range. */
enum vb_status optim_settings_check(const struct optim_settings *s,
				    struct vb_error *err);

/* Allocates an optimiser for n >= 1 parameters with zeroed moments and
 * step 0 (*out, owned by the caller, freed with optim_free). Errors:
 * VB_ERR_CONFIG (optim_settings_check), VB_ERR_SHAPE (n == 0),
 * VB_ERR_NOMEM. On failure *out is NULL and nothing is leaked. */
enum vb_status optim_create(const struct optim_settings *s, size_t n,
			    struct optim **out, struct vb_error *err);

/* Releases o and its moments; o may be NULL. */
void optim_free(struct optim *o);

/* Zeroes the moments and sets step to 0, as a freshly created optimiser. */
void optim_reset(struct optim *o);

/* Largest step count optim_load_step accepts: 2^53 (exact in the double
 * that Adam's bias correction takes it as, and far from LONG_MAX, so the
 * step's o->step += 1 cannot overflow). */
#define OPTIM_STEP_MAX ((int64_t)1 << 53)

struct checkpoint;

/* Sets o->step from the one-element I64 tensor name of ck (a count saved
 * with the moments, e.g. "optimizer.step"). VB_ERR_DATA "checkpoint:
 * <path>: tensor 'name' = <value>, expected 0..OPTIM_STEP_MAX" when it is
 * negative or larger, o unchanged; the errors of checkpoint_read_raw
 * otherwise. */
enum vb_status optim_load_step(struct optim *o, const struct checkpoint *ck,
			       const char *name, struct vb_error *err);

/* Zeroes a gradient buffer of n elements (the once-per-step zeroing that
 * backward kernels, which accumulate, rely on). */
void optim_zero_grad(vb_real *grad, size_t n);

/* One update of param (n) from grad (n) with learning rate lr, exactly as
 * torch.optim's _single_tensor_{sgd,adam,adamw} on a float tensor (or a
 * double one in the VB_DOUBLE build). grad is not modified; param, m, v,
 * step are. param and grad must not overlap each other or the moments.
 * Scalars are computed in double as Python floats, then rounded once to
 * vb_real as torch's CPU kernels do; per-element arithmetic is in vb_real
 * in torch's operation order (see optim.c for each line). NaN and Inf
 * propagate as in torch; detecting them is the guard's job. */
void optim_step(struct optim *o, vb_real *param, const vb_real *grad,
		double lr);

/* L2 norm of g (n) accumulated in double; NaN or Inf in g gives NaN or Inf
 * (n == 0 gives 0). */
double optim_grad_norm(const vb_real *g, size_t n);

/* torch.nn.utils.clip_grad_norm_ on one flat gradient: total = L2 norm (in
 * double), coef = max_norm / (total + clip_eps), clamped to at most 1 (a
 * NaN coef stays NaN, as torch.clamp), and every element of g is multiplied
 * by it unconditionally: below the threshold the factor is exactly 1 and g
 * is unchanged bit for bit; a NaN norm makes every element NaN; an Inf norm
 * makes finite elements 0 and infinite ones NaN, as in torch. Returns
 * total, the norm before clipping. torch's eps is 1e-6. */
double optim_clip_norm(vb_real *g, size_t n, double max_norm,
		       double clip_eps);

/* torch.nn.utils.clip_grad_value_: clamps every element of g (n) to
 * [-clip, clip] (clip rounded to vb_real); NaN stays NaN. clip >= 0. */
void optim_clip_value(vb_real *g, size_t n, double clip);

enum optim_schedule_kind {
	OPTIM_SCHEDULE_CONSTANT,
	OPTIM_SCHEDULE_STEP,
	OPTIM_SCHEDULE_WARMUP,
	OPTIM_SCHEDULE_COSINE
};

/* Stable lowercase name: "constant", "step", "warmup", "cosine";
 * "unknown" otherwise. */
const char *optim_schedule_kind_name(enum optim_schedule_kind kind);

/* Parses a name of optim_schedule_kind_name; false (and *out untouched)
 * for any other string. */
bool optim_schedule_kind_from_name(const char *name,
				   enum optim_schedule_kind *out);

/* Learning-rate schedule; each kind reads only its own fields. */
struct optim_schedule {
	enum optim_schedule_kind kind;
	long step_size;     /* STEP: epochs per decay, >= 1 */
	double gamma;       /* STEP: decay factor, > 0 */
	long warmup_steps;  /* WARMUP: optimiser steps of linear ramp, >= 1 */
	long total_epochs;  /* COSINE: T_max, >= 1 */
	double min_lr;      /* COSINE: eta_min, >= 0 */
};

/* Checks the fields the kind reads: VB_ERR_CONFIG naming the field, its
 * value and the expected range. */
enum vb_status optim_schedule_check(const struct optim_schedule *s,
				    struct vb_error *err);

/* Learning rate for a step in 0-based epoch `epoch` after `step` optimiser
 * steps (0-based, so the first step of training has step 0):
 *   CONSTANT base_lr
 *   STEP     base_lr * gamma^(epoch / step_size)        (StepLR closed form)
 *   WARMUP   base_lr * min(1, (step + 1) / warmup_steps), then constant
 *   COSINE   min_lr + (base_lr - min_lr) * (1 + cos(pi epoch / T_max)) / 2
 *            with T_max = total_epochs (CosineAnnealingLR closed form).
 * Expects a schedule that passed optim_schedule_check and epoch, step >= 0;
 * a non-positive step_size / warmup_steps / total_epochs that did not
 * (no error channel here) gives base_lr rather than a division by zero. */
double optim_schedule_lr(const struct optim_schedule *s, double base_lr,
			 long epoch, long step);


/* ---- clipping with state (issue 15 item 3) -----------------------------
 * One object for every clipping mode, so that each run can report the
 * share of steps clipped, and the adaptive mode's window of recent norms
 * is saved and restored with the optimiser for an exact resume. */

enum optim_clip_mode {
	OPTIM_CLIP_NONE,
	OPTIM_CLIP_NORM,     /* optim_clip_norm at threshold */
	OPTIM_CLIP_VALUE,    /* optim_clip_value at threshold */
	OPTIM_CLIP_ADAPTIVE  /* optim_clip_norm at k x running median */
};

/* Stable lowercase name: "none", "norm", "value", "adaptive". */
const char *optim_clip_mode_name(enum optim_clip_mode mode);
bool optim_clip_mode_from_name(const char *name, enum optim_clip_mode *out);

struct optim_clip_settings {
	enum optim_clip_mode mode;
	double threshold; /* NORM: max_norm; VALUE: clip; > 0, finite */
	double clip_eps;  /* NORM, ADAPTIVE: torch's eps (1e-6), >= 0 */
	double k;         /* ADAPTIVE: factor on the median, > 0, finite */
	size_t window;    /* ADAPTIVE: W, norms kept, >= 1 */
	size_t warmup;    /* ADAPTIVE: norms needed in the window before the
			     first clip, 1..W */
};

/* Defaults: mode none, threshold 1, clip_eps 1e-6, k 10, window 50,
 * warmup 10 (10 x the median of the last 50 norms; DESIGN.md's precursor
 * uses the same 10x running-median test). */
void optim_clip_settings_defaults(struct optim_clip_settings *s);

/* VB_ERR_CONFIG naming the field, its value and the expected range. */
enum vb_status optim_clip_settings_check(const struct optim_clip_settings *s,
					 struct vb_error *err);

/* State. window holds the last n_window finite pre-clip norms (a ring:
 * the oldest at (head + W - n_window) % W); n_steps counts calls of
 * optim_clip_apply, n_clipped those that changed the gradient. */
struct optim_clip {
	struct optim_clip_settings s;
	double *window;  /* (W) */
	double *scratch; /* (W) for the median */
	size_t n_window, head;
	long n_steps, n_clipped;
	double last_norm;      /* norm before clipping of the last call */
	double last_threshold; /* the norm threshold used (NORM: threshold;
				  ADAPTIVE: k x median, +inf in warm-up);
				  NAN for NONE and VALUE */
	int64_t saved_counts[3]; /* optim_clip_save's borrowed buffer */
};

/* Allocates the state (window of W doubles for ADAPTIVE). Errors:
 * optim_clip_settings_check's, VB_ERR_NOMEM. *out NULL on failure. */
enum vb_status optim_clip_create(const struct optim_clip_settings *s,
				 struct optim_clip **out,
				 struct vb_error *err);
void optim_clip_free(struct optim_clip *c);

/* Clips g (n) by the mode and updates the counts; returns the L2 norm of
 * g before clipping (double), *clipped (may be NULL) true when g changed.
 *   NONE: g untouched, never clipped (the norm is still returned).
 *   NORM: optim_clip_norm(g, n, threshold, clip_eps); clipped when its
 *     factor, rounded to vb_real, is below 1.
 *   VALUE: optim_clip_value(g, n, threshold); clipped when some |g_i|
 *     exceeded it.
 *   ADAPTIVE: the threshold is k x the median of the window (the mean of
 *     the two middle values for an even count) as it stood before this
 *     step, so a spike never raises its own threshold; while the window
 *     holds fewer than warmup norms nothing is clipped. Then
 *     optim_clip_norm(g, n, threshold, clip_eps), and the pre-clip norm
 *     enters the window (evicting the oldest once W are held) if it is
 *     finite. A non-finite norm leaves g untouched and the window as it
 *     was (the guard reports it); it still counts as a step.
 * optim_clip_share = n_clipped / n_steps (0 when n_steps is 0). */
double optim_clip_apply(struct optim_clip *c, vb_real *g, size_t n,
			bool *clipped);
double optim_clip_share(const struct optim_clip *c);

/* The median the next ADAPTIVE step would use, NAN when the window is
 * empty. */
double optim_clip_median(const struct optim_clip *c);

struct checkpoint_writer;

/* Saves / restores the state under prefix (e.g. "clip"): prefix.window
 * (F64, W values, oldest first, only the n_window held), prefix.counts
 * (I64: n_window, n_steps, n_clipped). Save borrows c's buffers until the
 * writer's last checkpoint_write (it keeps c->scratch as the ordered copy,
 * so do not clip between add and write). Load requires both tensors
 * (VB_ERR_DATA naming what is missing or does not fit W) and leaves
 * settings alone. */
enum vb_status optim_clip_save(struct optim_clip *c,
			       struct checkpoint_writer *w, const char *prefix,
			       struct vb_error *err);
enum vb_status optim_clip_load(struct optim_clip *c,
			       const struct checkpoint *ck,
			       const char *prefix, struct vb_error *err);

#endif
