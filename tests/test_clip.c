/* test_clip: the gradient norm in double, clip_grad_norm_ at several
 * thresholds and with NaN / Inf, clip_grad_value_, and the stateful clip
 * (norm, value, adaptive: spike-only clipping at k x the running median,
 * warm-up, counts, checkpoint round trip, settings). Links the float
 * build (vb_real is float here). */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "ckutil.h"
#include "optim.h"
#include "testutil.h"

START_TEST(test_grad_norm_double)
{
	/* One 1e3 followed by 1e6 values of 1e-3: the small squares (1e-6
	 * each, 1 in total) vanish one by one next to 1e6 in a float sum
	 * (ulp of 1e6 is 0.0625), giving exactly 1000 instead of 1000.0005,
	 * a relative error of 5e-7. In double each add rounds by at most
	 * 2^-53 relative, so 1e6 adds stay below 1.2e-10 relative; the
	 * bound 1e-9 is 500x tighter than the float error. */
	const size_t n = 1000001;
	vb_real *g = malloc(n * sizeof *g);
	ck_assert_ptr_nonnull(g);
	const vb_real small = (vb_real)1e-3;
	g[0] = (vb_real)1e3;
	for (size_t i = 1; i < n; i++)
		g[i] = small;
	double s2 = (double)small * (double)small * 1e6 + 1e6;
	double want = sqrt(s2);
	double got = optim_grad_norm(g, n);
	ck_assert_msg(fabs(got - want) <= 1e-9 * want, "norm %.12g vs %.12g",
		      got, want);
	float acc = 0.0f;
	for (size_t i = 0; i < n; i++)
		acc += g[i] * g[i];
	double float_norm = sqrt((double)acc);
	ck_assert_msg(fabs(float_norm - want) > 100.0 * 1e-9 * want,
		      "float accumulation %.12g should be visibly off",
		      float_norm);

	/* NaN and Inf propagate; n = 0 is 0. */
	g[500] = NAN;
	ck_assert(isnan(optim_grad_norm(g, n)));
	g[500] = INFINITY;
	ck_assert(isinf(optim_grad_norm(g, n)));
	g[500] = -INFINITY;
	ck_assert(isinf(optim_grad_norm(g, n)));
	ck_assert(optim_grad_norm(g, 0) == 0.0);
	vb_real e[3] = {3.0f, -4.0f, 12.0f};
	ck_assert(optim_grad_norm(e, 3) == 13.0);
	free(g);
}
END_TEST

static const double clip_eps = 1e-6; /* torch's clip_grad_norm_ eps */

/* Clips a copy of g0 to max_norm and checks torch's semantics. After the
 * clip the norm is total * c with c = max_norm / (total + eps) rounded to
 * float: c's rounding and the per-element products each add at most 6e-8
 * relative, so the norm is within 2.4e-7 * max_norm (2x margin) of
 * max_norm * total / (total + eps), and within that plus eps / total of
 * max_norm. Elements keep their direction: g = g0 * c exactly. */
static void check_clip(const vb_real *g0, size_t n, double max_norm)
{
	vb_real *g = malloc(n * sizeof *g);
	ck_assert_ptr_nonnull(g);
	memcpy(g, g0, n * sizeof *g);
	double total0 = optim_grad_norm(g0, n);
	double ret = optim_clip_norm(g, n, max_norm, clip_eps);
	ck_assert(ret == total0);
	double after = optim_grad_norm(g, n);
	if (total0 + clip_eps <= max_norm) {
		ck_assert_msg(memcmp(g, g0, n * sizeof *g) == 0,
			      "below threshold %g the gradient changed",
			      max_norm);
	} else {
		double scaled = max_norm * total0 / (total0 + clip_eps);
		ck_assert_msg(fabs(after - scaled) <= 2.4e-7 * max_norm,
			      "max %g: norm after %.10g vs %.10g", max_norm,
			      after, scaled);
		ck_assert(fabs(after - max_norm) <=
			  max_norm * (2.4e-7 + clip_eps / total0));
		vb_real c = (vb_real)(max_norm / (total0 + clip_eps));
		for (size_t i = 0; i < n; i++)
			ck_assert(g[i] == g0[i] * c);
	}
	free(g);
}

START_TEST(test_clip_norm_thresholds)
{
	/* norm 13 exactly: 0.5 and 3 clip, 20 leaves it bit for bit. */
	const vb_real e[3] = {3.0f, -4.0f, 12.0f};
	const double thresholds[3] = {0.5, 3.0, 20.0};
	for (int t = 0; t < 3; t++)
		check_clip(e, 3, thresholds[t]);

	/* A 1000-element gradient of norm ~100: all three clip; with
	 * threshold 1000 it is untouched. */
	enum { N = 1000 };
	static vb_real g[N];
	for (size_t i = 0; i < N; i++)
		g[i] = (vb_real)(sin(0.37 * (double)i + 0.1) *
				 (double)(1 + i % 7));
	ck_assert(optim_grad_norm(g, N) > 20.0);
	for (int t = 0; t < 3; t++)
		check_clip(g, N, thresholds[t]);
	check_clip(g, N, 1000.0);

	/* torch clips whenever total + eps > max_norm: at total == max_norm
	 * the factor is 13 / (13 + 1e-6) < 1 and the gradient shrinks. */
	vb_real h[3];
	memcpy(h, e, sizeof h);
	ck_assert(optim_clip_norm(h, 3, 13.0, clip_eps) == 13.0);
	ck_assert(h[2] < e[2] && h[2] > (vb_real)11.9999);
}
END_TEST

START_TEST(test_clip_norm_nonfinite)
{
	/* NaN norm: coef NaN (clamp keeps NaN), every element NaN. */
	vb_real g[3] = {1.0f, NAN, 2.0f};
	double total = optim_clip_norm(g, 3, 1.0, clip_eps);
	ck_assert(isnan(total));
	for (int i = 0; i < 3; i++)
		ck_assert(isnan(g[i]));

	/* Inf norm: coef 0, finite elements become 0, the Inf one 0*Inf =
	 * NaN, as torch's unconditional multiply does. */
	vb_real h[3] = {1.0f, INFINITY, -2.0f};
	total = optim_clip_norm(h, 3, 5.0, clip_eps);
	ck_assert(isinf(total));
	ck_assert(h[0] == 0.0f && isnan(h[1]) && h[2] == 0.0f);

	/* All-zero gradient: coef max/eps > 1 is clamped to 1; unchanged. */
	vb_real z[2] = {0.0f, -0.0f};
	ck_assert(optim_clip_norm(z, 2, 1.0, clip_eps) == 0.0);
	ck_assert(z[0] == 0.0f && !signbit(z[0]) && signbit(z[1]));
}
END_TEST

START_TEST(test_clip_value)
{
	const vb_real in[10] = {-10.0f, -0.2f, -0.05f, 0.0f, 0.05f,
				0.2f, 10.0f, NAN, 4.9f, -5.1f};
	const vb_real c01 = (vb_real)0.1;
	const vb_real want01[10] = {-c01, -c01, -0.05f, 0.0f, 0.05f,
				    c01, c01, NAN, c01, -c01};
	const vb_real want5[10] = {-5.0f, -0.2f, -0.05f, 0.0f, 0.05f,
				   0.2f, 5.0f, NAN, 4.9f, -5.0f};
	const struct {
		double thr;
		const vb_real *want;
	} T[2] = {{0.1, want01}, {5.0, want5}};
	vb_real g[10];
	for (int t = 0; t < 2; t++) {
		memcpy(g, in, sizeof g);
		optim_clip_value(g, 10, T[t].thr);
		for (int i = 0; i < 10; i++) {
			if (isnan(T[t].want[i]))
				ck_assert(isnan(g[i]));
			else
				ck_assert_msg(g[i] == T[t].want[i],
					      "%g [%d]: %g", T[t].thr, i,
					      (double)g[i]);
		}
	}
	/* Infinities clamp too. */
	vb_real inf[2] = {INFINITY, -INFINITY};
	optim_clip_value(inf, 2, 5.0);
	ck_assert(inf[0] == 5.0f && inf[1] == -5.0f);
}
END_TEST

static struct optim_clip *make_clip(enum optim_clip_mode mode, double thr,
				    double k, size_t W, size_t warm)
{
	struct optim_clip_settings s;
	struct optim_clip *c = NULL;
	struct vb_error err;
	vb_error_clear(&err);
	optim_clip_settings_defaults(&s);
	s.mode = mode;
	s.threshold = thr;
	s.k = k;
	s.window = W;
	s.warmup = warm;
	ck_assert_msg(optim_clip_create(&s, &c, &err) == VB_OK, "%s", err.msg);
	return c;
}

/* g = (a, 0, ..., 0) with 4 entries scaled so that |g| = norm. */
static void grad_of_norm(vb_real *g, double norm)
{
	for (int i = 0; i < 4; i++)
		g[i] = (vb_real)(norm / 2);
}

/* Normal steps pass untouched (bit for bit), a spike is clipped to
 * k x the median exactly, at k = 3 and k = 10 (not only 1). */
START_TEST(test_clip_adaptive_spike)
{
	static const double ks[2] = {3, 10};
	for (int t = 0; t < 2; t++) {
		double k = ks[t];
		struct optim_clip *c = make_clip(OPTIM_CLIP_ADAPTIVE, 1, k, 5, 5);
		vb_real g[4], g0[4];
		bool clipped;
		/* norms 100, 110, 90, 105, 95: median 100 */
		static const double norms[5] = {100, 110, 90, 105, 95};
		for (int i = 0; i < 5; i++) {
			grad_of_norm(g, norms[i]);
			memcpy(g0, g, sizeof g);
			double n = optim_clip_apply(c, g, 4, &clipped);
			ck_assert(!clipped); /* warm-up: fewer than 5 seen */
			ck_assert_double_eq_tol(n, norms[i], 1e-4);
			ck_assert(!memcmp(g, g0, sizeof g));
			ck_assert(isinf(c->last_threshold));
		}
		ck_assert_double_eq_tol(optim_clip_median(c), 100, 1e-4);
		/* a normal step just under k x median: untouched */
		grad_of_norm(g, 0.99 * k * 100);
		memcpy(g0, g, sizeof g);
		optim_clip_apply(c, g, 4, &clipped);
		ck_assert(!clipped);
		ck_assert(!memcmp(g, g0, sizeof g));
		ck_assert_double_eq_tol(c->last_threshold, k * 100, 1e-9);
		/* window now 110, 90, 105, 95, 99k: median 105 */
		ck_assert_double_eq_tol(optim_clip_median(c), 105, 1e-4);
		/* a spike of 50 x the median: clipped to k x 105 */
		grad_of_norm(g, 50 * 105);
		double n = optim_clip_apply(c, g, 4, &clipped);
		ck_assert(clipped);
		ck_assert_double_eq_tol(n, 50 * 105, 1e-2);
		/* float build: rtol 1e-6 on the clipped norm (one rounding of
		 * the factor and of each element) */
		ck_assert_double_eq_tol(optim_grad_norm(g, 4), k * 105,
					1e-6 * k * 105);
		/* the spike's raw norm entered the window; the median
		 * (robust) barely moves: 90, 105, 95, 99k, 5250 -> 99k or
		 * 105 */
		double med = optim_clip_median(c);
		ck_assert(med <= fmax(105, 0.99 * k * 100) + 1e-6);
		ck_assert_int_eq(c->n_steps, 7);
		ck_assert_int_eq(c->n_clipped, 1);
		ck_assert_double_eq_tol(optim_clip_share(c), 1.0 / 7, 1e-15);
		optim_clip_free(c);
	}
}
END_TEST

/* The median over a window shorter than W after warm-up, even counts,
 * eviction of the oldest, non-finite norms left out. */
START_TEST(test_clip_adaptive_window)
{
	struct optim_clip *c = make_clip(OPTIM_CLIP_ADAPTIVE, 1, 2, 4, 2);
	vb_real g[4];
	bool clipped;
	ck_assert(isnan(optim_clip_median(c)));
	grad_of_norm(g, 10);
	optim_clip_apply(c, g, 4, &clipped);
	ck_assert(!clipped && isinf(c->last_threshold)); /* 1 < warmup 2 */
	grad_of_norm(g, 20);
	optim_clip_apply(c, g, 4, &clipped);
	ck_assert(!clipped);
	/* two held: median (10 + 20) / 2 = 15, threshold 30 */
	ck_assert_double_eq_tol(optim_clip_median(c), 15, 1e-5);
	grad_of_norm(g, 40);
	optim_clip_apply(c, g, 4, &clipped);
	ck_assert(clipped);
	ck_assert_double_eq_tol(c->last_threshold, 30, 1e-5);
	ck_assert_double_eq_tol(optim_clip_median(c), 20, 1e-5); /* 10 20 40 */
	grad_of_norm(g, 5);
	optim_clip_apply(c, g, 4, NULL);
	grad_of_norm(g, 6);
	optim_clip_apply(c, g, 4, NULL); /* evicts 10: 20 40 5 6 */
	ck_assert_uint_eq(c->n_window, 4);
	ck_assert_double_eq_tol(optim_clip_median(c), 13, 1e-5);
	/* NaN: g untouched, not in the window, still a step */
	g[0] = NAN;
	double n = optim_clip_apply(c, g, 4, &clipped);
	ck_assert(isnan(n) && isnan(g[0]) && !clipped);
	ck_assert_double_eq_tol(optim_clip_median(c), 13, 1e-5);
	ck_assert_int_eq(c->n_steps, 6);
	optim_clip_free(c);
}
END_TEST

/* Counts for the fixed modes, at thresholds other than 1. */
START_TEST(test_clip_counts_fixed)
{
	struct optim_clip *c = make_clip(OPTIM_CLIP_NORM, 5, 10, 50, 10);
	vb_real g[4];
	bool clipped;
	grad_of_norm(g, 4); /* under 5 */
	optim_clip_apply(c, g, 4, &clipped);
	ck_assert(!clipped);
	grad_of_norm(g, 8);
	optim_clip_apply(c, g, 4, &clipped);
	ck_assert(clipped);
	ck_assert_double_eq_tol(optim_grad_norm(g, 4), 5, 1e-5);
	ck_assert_int_eq(c->n_clipped, 1);
	ck_assert(optim_clip_share(c) == 0.5);
	optim_clip_free(c);
	c = make_clip(OPTIM_CLIP_VALUE, 0.25, 10, 50, 10);
	vb_real v[4] = {0.1f, -0.2f, 0.25f, -0.25f};
	optim_clip_apply(c, v, 4, &clipped);
	ck_assert(!clipped); /* at the edge: unchanged */
	v[1] = -0.3f;
	optim_clip_apply(c, v, 4, &clipped);
	ck_assert(clipped);
	ck_assert(v[1] == -0.25f);
	ck_assert_int_eq(c->n_steps, 2);
	ck_assert_int_eq(c->n_clipped, 1);
	optim_clip_free(c);
	c = make_clip(OPTIM_CLIP_NONE, 1, 10, 50, 10);
	grad_of_norm(g, 1e6);
	optim_clip_apply(c, g, 4, &clipped);
	ck_assert(!clipped && c->n_steps == 1 && c->n_clipped == 0);
	optim_clip_free(c);
}
END_TEST

/* Save mid-run, continue; a fresh clip loaded from the file continues
 * identically (same thresholds, same clipped gradients, same counts). */
START_TEST(test_clip_state_round_trip)
{
	struct optim_clip *a = make_clip(OPTIM_CLIP_ADAPTIVE, 1, 3, 4, 3);
	struct optim_clip *b = make_clip(OPTIM_CLIP_ADAPTIVE, 1, 3, 4, 3);
	struct checkpoint_writer *w = NULL;
	struct checkpoint *ck = NULL;
	struct vb_error err;
	vb_error_clear(&err);
	static const double seq[12] = {10, 12, 9, 50, 11, 10, 13, 80,
				       12, 9, 100, 11};
	vb_real g[4], h[4];
	for (int i = 0; i < 6; i++) {
		grad_of_norm(g, seq[i]);
		optim_clip_apply(a, g, 4, NULL);
	}
	const char *path = tu_path(tu_tmpdir("clip"), "clip.safetensors");
	ck_assert(checkpoint_writer_create(&w, &err) == VB_OK);
	ck_assert_msg(optim_clip_save(a, w, "clip", &err) == VB_OK, "%s",
		      err.msg);
	ck_assert(checkpoint_write(w, path, &err) == VB_OK);
	checkpoint_writer_free(w);
	ck_assert(checkpoint_open(path, &ck, &err) == VB_OK);
	ck_assert_msg(optim_clip_load(b, ck, "clip", &err) == VB_OK, "%s",
		      err.msg);
	/* a window of another size refuses the state */
	struct optim_clip *small = make_clip(OPTIM_CLIP_ADAPTIVE, 1, 3, 2, 2);
	ck_assert_int_eq(optim_clip_load(small, ck, "clip", &err),
			 VB_ERR_DATA);
	optim_clip_free(small);
	checkpoint_close(ck);
	ck_assert_int_eq(a->n_clipped, b->n_clipped);
	ck_assert_int_eq(a->n_steps, b->n_steps);
	for (int i = 6; i < 12; i++) {
		bool ca, cb;
		grad_of_norm(g, seq[i]);
		grad_of_norm(h, seq[i]);
		optim_clip_apply(a, g, 4, &ca);
		optim_clip_apply(b, h, 4, &cb);
		ck_assert(ca == cb);
		ck_assert(!memcmp(g, h, sizeof g));
		ck_assert(a->last_threshold == b->last_threshold);
	}
	ck_assert_int_eq(a->n_clipped, b->n_clipped);
	ck_assert_int_gt(a->n_clipped, 1); /* 50, 80 and 100 are spikes */
	optim_clip_free(a);
	optim_clip_free(b);
}
END_TEST

START_TEST(test_clip_settings)
{
	struct optim_clip_settings s;
	struct optim_clip *c = NULL;
	struct vb_error err;
	optim_clip_settings_defaults(&s);
	s.mode = OPTIM_CLIP_ADAPTIVE;
	s.warmup = s.window + 1;
	vb_error_clear(&err);
	ck_assert_int_eq(optim_clip_create(&s, &c, &err), VB_ERR_CONFIG);
	ck_assert_ptr_null(c);
	ck_assert(strstr(err.msg, "warmup") != NULL);
	s.warmup = 1;
	s.k = 0;
	ck_assert_int_eq(optim_clip_settings_check(&s, NULL), VB_ERR_CONFIG);
	s.k = 10;
	ck_assert_int_eq(optim_clip_settings_check(&s, NULL), VB_OK);
	enum optim_clip_mode m;
	for (int i = OPTIM_CLIP_NONE; i <= OPTIM_CLIP_ADAPTIVE; i++) {
		ck_assert(optim_clip_mode_from_name(
			optim_clip_mode_name((enum optim_clip_mode)i), &m));
		ck_assert_int_eq(m, i);
	}
	ck_assert_str_eq(optim_clip_mode_name(OPTIM_CLIP_ADAPTIVE),
			 "adaptive");
	ck_assert(!optim_clip_mode_from_name("median", &m));
}
END_TEST

/* A clip state whose counts exceed 2^53 is refused with the value. */
START_TEST(test_clip_load_counts_range)
{
	const char *path = tu_path(tu_tmpdir("cstep"), "crafted.safetensors");
	const int64_t counts[3] = {0, INT64_MAX, 0};
	const double window[1] = {0};
	size_t s3[1] = {3}, s0[1] = {0};
	const struct cu_tensor t[] = {
		{"clip.counts", CHECKPOINT_I64, 1, s3, counts},
		{"clip.window", CHECKPOINT_F64, 1, s0, window}};
	struct checkpoint *ck = cu_craft(path, t, 2);
	struct vb_error err;
	struct optim_clip *c = make_clip(OPTIM_CLIP_ADAPTIVE, 1, 3, 4, 3);
	vb_error_clear(&err);
	ck_assert_int_eq(optim_clip_load(c, ck, "clip", &err), VB_ERR_DATA);
	ck_assert_msg(strstr(err.msg, "tensor 'clip.counts'[1] = "
				      "9223372036854775807, expected "
				      "0..9007199254740992"), "%s", err.msg);
	ck_assert_int_eq(c->n_steps, 0);
	optim_clip_free(c);
	checkpoint_close(ck);
}
END_TEST

TU_MAIN("clip", "clip", 0, test_grad_norm_double, test_clip_norm_thresholds,
	test_clip_norm_nonfinite, test_clip_value, test_clip_adaptive_spike,
	test_clip_adaptive_window, test_clip_counts_fixed,
	test_clip_state_round_trip, test_clip_settings,
	test_clip_load_counts_range)
