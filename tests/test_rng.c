/* test_rng: xoshiro256** against the published reference outputs and an
 * independent transcription, seeding and stream independence, exact state
 * save/load (also mid Box-Muller pair), and the distributions of the draws.
 * Statistical checks use fixed seeds (deterministic) and bounds several
 * standard deviations wide, each justified where it is asserted. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "rng.h"
#include "testutil.h"

/* ---- reference algorithm ---------------------------------------------- */

/* xoshiro256** written out again from the paper (Blackman & Vigna,
 * "Scrambled linear pseudorandom number generators", 2018, fig. 1), in a
 * different shape from core/rng.c: named state words, rotations spelled
 * as shifts inline. */
struct ref_xoshiro {
	uint64_t a, b, c, d;
};

static uint64_t ref_next(struct ref_xoshiro *x)
{
	uint64_t b5 = x->b * 5u;
	uint64_t out = ((b5 << 7) | (b5 >> 57)) * 9u;
	uint64_t t = x->b << 17;
	x->c ^= x->a;
	x->d ^= x->b;
	x->b ^= x->c;
	x->a ^= x->d;
	x->c ^= t;
	x->d = (x->d << 45) | (x->d >> 19);
	return out;
}

START_TEST(test_reference_outputs)
{
	/* First ten outputs from the raw state {1, 2, 3, 4}, hard-coded as
	 * produced by the reference C code xoshiro256starstar.c (the same
	 * vector is the reference test of the rand_xoshiro Rust crate).
	 * The first is checkable by hand: rotl(2 * 5, 7) * 9 = 1280 * 9. */
	static const uint64_t expected[10] = {
		UINT64_C(11520),
		UINT64_C(0),
		UINT64_C(1509978240),
		UINT64_C(1215971899390074240),
		UINT64_C(1216172134540287360),
		UINT64_C(607988272756665600),
		UINT64_C(16172922978634559625),
		UINT64_C(8476171486693032832),
		UINT64_C(10595114339597558777),
		UINT64_C(2904607092377533576),
	};
	struct rng r = {.s = {1, 2, 3, 4}, .has_spare = 0, .spare = 0.0};
	for (int i = 0; i < 10; i++)
		ck_assert_msg(rng_next_u64(&r) == expected[i],
			      "output %d differs from the reference", i);

	/* A dense state, 10000 outputs, against the transcription above. */
	struct rng q = {.s = {UINT64_C(0x0123456789abcdef),
			      UINT64_C(0xfedcba9876543210),
			      UINT64_C(0xdeadbeefcafef00d),
			      UINT64_C(0x8badf00d5eed1234)}};
	struct ref_xoshiro x = {q.s[0], q.s[1], q.s[2], q.s[3]};
	for (int i = 0; i < 10000; i++) {
		uint64_t want = ref_next(&x);
		uint64_t got = rng_next_u64(&q);
		ck_assert_msg(got == want, "output %d: %llx, expected %llx", i,
			      (unsigned long long)got,
			      (unsigned long long)want);
	}
}
END_TEST

START_TEST(test_uniform_bits)
{
	/* rng_uniform is (u64 >> 11) * 2^-53 exactly. */
	struct rng a, b;
	rng_seed(&a, 7, RNG_STREAM_NOISE);
	b = a;
	for (int i = 0; i < 1000; i++) {
		uint64_t u = rng_next_u64(&b);
		double want = (double)(u >> 11) / 9007199254740992.0;
		double got = rng_uniform(&a);
		ck_assert(got == want);
		ck_assert(got >= 0.0 && got < 1.0);
	}
	/* The largest output maps below 1. */
	ck_assert((double)(UINT64_MAX >> 11) * 0x1.0p-53 < 1.0);
}
END_TEST

/* ---- seeding and streams ---------------------------------------------- */

START_TEST(test_seed_deterministic)
{
	struct rng a, b, c;
	rng_seed(&a, 42, RNG_STREAM_INIT);
	rng_seed(&b, 42, RNG_STREAM_INIT);
	rng_seed(&c, 43, RNG_STREAM_INIT);
	ck_assert(memcmp(a.s, b.s, sizeof a.s) == 0);
	ck_assert_int_eq(a.has_spare, 0);
	int same_c = 0;
	for (int i = 0; i < 100; i++) {
		uint64_t x = rng_next_u64(&a);
		ck_assert(x == rng_next_u64(&b));
		same_c += x == rng_next_u64(&c);
	}
	ck_assert_int_eq(same_c, 0);

	/* Seeding clears a pending spare. */
	rng_seed(&a, 42, RNG_STREAM_INIT);
	(void)rng_normal(&a);
	ck_assert_int_eq(a.has_spare, 1);
	rng_seed(&a, 42, RNG_STREAM_INIT);
	ck_assert_int_eq(a.has_spare, 0);

	/* Seed 0 gives a usable (not all-zero) state. */
	rng_seed(&a, 0, RNG_STREAM_INIT);
	ck_assert(a.s[0] | a.s[1] | a.s[2] | a.s[3]);
}
END_TEST

START_TEST(test_streams_differ)
{
	/* For two seeds, the four streams must not share their first outputs,
	 * nor appear shifted: no stream's first 8 outputs occur among the
	 * first 2000 outputs of another (a seed + stream scheme where stream k
	 * is stream 0 advanced by k would fail this). A chance collision of
	 * 64-bit values has probability ~1e-13. */
	enum { N_HEAD = 8, N_SCAN = 2000 };
	static uint64_t out[RNG_N_STREAMS][N_SCAN];
	const uint64_t seeds[2] = {1, 12345};
	for (int si = 0; si < 2; si++) {
		for (int k = 0; k < RNG_N_STREAMS; k++) {
			struct rng r;
			rng_seed(&r, seeds[si], (enum rng_stream)k);
			for (int i = 0; i < N_SCAN; i++)
				out[k][i] = rng_next_u64(&r);
		}
		for (int k = 0; k < RNG_N_STREAMS; k++)
			for (int l = 0; l < RNG_N_STREAMS; l++) {
				if (k == l)
					continue;
				for (int h = 0; h < N_HEAD; h++)
					for (int i = 0; i < N_SCAN; i++)
						ck_assert_msg(out[k][h] != out[l][i],
							      "seed %llu: stream %s output %d "
							      "is stream %s output %d",
							      (unsigned long long)seeds[si],
							      rng_stream_name((enum rng_stream)k), h,
							      rng_stream_name((enum rng_stream)l), i);
			}
	}
	/* Stream s of seed a is not stream t of seed a + 1 either. */
	struct rng a, b;
	rng_seed(&a, 5, RNG_STREAM_SHUFFLE);
	rng_seed(&b, 6, RNG_STREAM_INIT);
	ck_assert(rng_next_u64(&a) != rng_next_u64(&b));
}
END_TEST

START_TEST(test_stream_names)
{
	ck_assert_str_eq(rng_stream_name(RNG_STREAM_INIT), "init");
	ck_assert_str_eq(rng_stream_name(RNG_STREAM_SHUFFLE), "shuffle");
	ck_assert_str_eq(rng_stream_name(RNG_STREAM_NOISE), "noise");
	ck_assert_str_eq(rng_stream_name(RNG_STREAM_INJECT), "inject");
	ck_assert_str_eq(rng_stream_name(RNG_N_STREAMS), "unknown");
}
END_TEST

/* ---- save / load -------------------------------------------------------- */

/* A mixed sequence of draws recorded as raw bits. */
static void draw_mixed(struct rng *r, uint64_t *rec, int n_rec)
{
	for (int i = 0; i < n_rec; i++) {
		double d;
		switch (i % 4) {
		case 0:
		case 1:
			d = rng_normal(r);
			memcpy(&rec[i], &d, sizeof d);
			break;
		case 2:
			d = rng_uniform(r);
			memcpy(&rec[i], &d, sizeof d);
			break;
		default:
			rec[i] = rng_below(r, 1000003);
			break;
		}
	}
}

START_TEST(test_save_load_mid_stream)
{
	enum { N_REC = 101 };
	struct rng r;
	rng_seed(&r, 2024, RNG_STREAM_NOISE);
	for (int i = 0; i < 17; i++)
		(void)rng_next_u64(&r);
	/* An odd number of normals leaves the second of a pair pending. */
	for (int i = 0; i < 3; i++)
		(void)rng_normal(&r);
	ck_assert_int_eq(r.has_spare, 1);

	uint64_t saved[RNG_STATE_WORDS];
	rng_state_save(&r, saved);
	ck_assert(saved[4] == 1);
	double spare;
	memcpy(&spare, &saved[5], sizeof spare);
	ck_assert(memcmp(&spare, &r.spare, sizeof spare) == 0);

	uint64_t want[N_REC], got[N_REC];
	draw_mixed(&r, want, N_REC);

	/* Load into a generator in an unrelated state with no spare... */
	struct rng q;
	rng_seed(&q, 99, RNG_STREAM_INIT);
	rng_state_load(&q, saved);
	draw_mixed(&q, got, N_REC);
	ck_assert(memcmp(want, got, sizeof want) == 0);

	/* ...and into one holding a different spare. */
	rng_seed(&q, 98, RNG_STREAM_SHUFFLE);
	(void)rng_normal(&q);
	ck_assert_int_eq(q.has_spare, 1);
	rng_state_load(&q, saved);
	draw_mixed(&q, got, N_REC);
	ck_assert(memcmp(want, got, sizeof want) == 0);

	/* With no spare pending, the saved flag is 0 and load clears one. */
	struct rng e;
	rng_seed(&e, 3, RNG_STREAM_INJECT);
	uint64_t saved0[RNG_STATE_WORDS];
	rng_state_save(&e, saved0);
	ck_assert(saved0[4] == 0);
	draw_mixed(&e, want, N_REC);
	rng_seed(&q, 4, RNG_STREAM_INJECT);
	(void)rng_normal(&q);
	rng_state_load(&q, saved0);
	ck_assert_int_eq(q.has_spare, 0);
	draw_mixed(&q, got, N_REC);
	ck_assert(memcmp(want, got, sizeof want) == 0);
}
END_TEST

/* ---- distributions ------------------------------------------------------ */

/* Pearson chi-square of counts against equal expectation. */
static double chi_square(const long *count, int k, long n)
{
	double e = (double)n / k, x2 = 0.0;
	for (int i = 0; i < k; i++) {
		double d = (double)count[i] - e;
		x2 += d * d / e;
	}
	return x2;
}

START_TEST(test_below_range_and_uniform)
{
	struct rng r;
	rng_seed(&r, 11, RNG_STREAM_SHUFFLE);
	ck_assert(rng_below(&r, 0) == 0);
	ck_assert(rng_below(&r, 1) == 0);

	/* n = 10 and n = 7, 1e5 draws each. Chi-square with k - 1 degrees
	 * of freedom has mean k - 1 and sd sqrt(2(k - 1)): 9 and 4.2 for
	 * k = 10, 6 and 3.5 for k = 7. The bounds 45 and 36 are over 8 sd
	 * above the mean (upper tail probability below 1e-5), while a
	 * generator off by 1% in one cell adds ~1e5 * 0.01^2 * 10 = 100. */
	const int ks[2] = {10, 7};
	const double bound[2] = {45.0, 36.0};
	for (int t = 0; t < 2; t++) {
		long count[10] = {0};
		const long n = 100000;
		for (long i = 0; i < n; i++) {
			uint64_t x = rng_below(&r, (uint64_t)ks[t]);
			ck_assert(x < (uint64_t)ks[t]);
			count[x]++;
		}
		double x2 = chi_square(count, ks[t], n);
		ck_assert_msg(x2 < bound[t], "k %d: chi-square %g >= %g", ks[t],
			      x2, bound[t]);
	}

	/* A bound where x % n of a raw output would be visibly biased:
	 * n = 3 * 2^62. Unbiased, P(x < 2^62) = 1/3; plain modulo gives 1/2.
	 * 30000 draws: sd of the fraction sqrt(2/9/30000) = 0.0027, the
	 * bound 0.02 is 7 sd away from 1/3 and far from 1/2. */
	const uint64_t big = UINT64_C(3) << 62;
	long below = 0;
	const long n_big = 30000;
	for (long i = 0; i < n_big; i++) {
		uint64_t x = rng_below(&r, big);
		ck_assert(x < big);
		below += x < (UINT64_C(1) << 62);
	}
	double frac = (double)below / (double)n_big;
	ck_assert_msg(fabs(frac - 1.0 / 3.0) < 0.02, "fraction %g", frac);
}
END_TEST

START_TEST(test_uniform_moments)
{
	/* 1e5 draws of U[0, 1): mean 1/2 with sd sqrt(1/12/1e5) = 9.1e-4,
	 * bound 5e-3 (5.5 sd); variance 1/12 with sd of the sample variance
	 * sqrt(1/180/1e5) = 2.4e-4, bound 1.5e-3 (6 sd). */
	struct rng r;
	rng_seed(&r, 5, RNG_STREAM_NOISE);
	const long n = 100000;
	double s = 0.0, s2 = 0.0;
	for (long i = 0; i < n; i++) {
		double u = rng_uniform(&r);
		ck_assert(u >= 0.0 && u < 1.0);
		s += u;
		s2 += u * u;
	}
	double mean = s / n, var = s2 / n - mean * mean;
	ck_assert_msg(fabs(mean - 0.5) < 5e-3, "mean %g", mean);
	ck_assert_msg(fabs(var - 1.0 / 12.0) < 1.5e-3, "var %g", var);

	/* fill_uniform maps into [lo, hi] in the draw order of rng_uniform. */
	struct rng a, b;
	rng_seed(&a, 6, RNG_STREAM_INIT);
	b = a;
	vb_real x[257];
	rng_fill_uniform(&a, x, 257, -0.25, 0.75);
	for (int i = 0; i < 257; i++) {
		vb_real want = (vb_real)(-0.25 + 1.0 * rng_uniform(&b));
		ck_assert(x[i] == want);
		ck_assert(x[i] >= (vb_real)-0.25 && x[i] <= (vb_real)0.75);
	}
}
END_TEST

START_TEST(test_normal_moments)
{
	/* 1e5 standard normal draws: the sample mean has sd 1/sqrt(1e5) =
	 * 3.2e-3, bound 0.016 (5 sd); the sample variance has sd sqrt(2/1e5)
	 * = 4.5e-3, bound 0.025 (5.6 sd); the fraction within one sd is
	 * 0.6827 with sd sqrt(0.68 * 0.32 / 1e5) = 1.5e-3, bound 0.008. The
	 * fourth moment (3, sd sqrt(96/1e5) = 0.031) is bounded by 0.2 to
	 * catch a uniform or triangular impostor (1.8, 2.4). */
	struct rng r;
	rng_seed(&r, 77, RNG_STREAM_NOISE);
	const long n = 100000;
	double s = 0.0, s2 = 0.0, s4 = 0.0;
	long within = 0;
	for (long i = 0; i < n; i++) {
		double z = rng_normal(&r);
		ck_assert(isfinite(z));
		s += z;
		s2 += z * z;
		s4 += z * z * z * z;
		within += fabs(z) < 1.0;
	}
	double mean = s / n, var = s2 / n - mean * mean;
	ck_assert_msg(fabs(mean) < 0.016, "mean %g", mean);
	/* The two normals of a Box-Muller pair (cos and sin of one angle)
	 * are independent: their sample correlation over 5e4 pairs has sd
	 * 1/sqrt(5e4) = 4.5e-3, bound 0.025 (5.6 sd). Returning cos twice,
	 * or one value twice, gives 1. */
	{
		double sxy = 0.0;
		const long n_pair = n / 2;
		for (long i = 0; i < n_pair; i++) {
			double z0 = rng_normal(&r), z1 = rng_normal(&r);
			sxy += z0 * z1;
		}
		ck_assert_msg(fabs(sxy / n_pair) < 0.025, "pair correlation %g",
			      sxy / n_pair);
	}
	ck_assert_msg(fabs(var - 1.0) < 0.025, "var %g", var);
	ck_assert_msg(fabs(s4 / n - 3.0) < 0.2, "fourth moment %g", s4 / n);
	ck_assert_msg(fabs((double)within / n - 0.682689) < 0.008,
		      "within one sd %g", (double)within / n);

	/* fill_normal is mean + std * rng_normal in order (odd length, so the
	 * pair straddles calls). */
	struct rng a, b;
	rng_seed(&a, 8, RNG_STREAM_INIT);
	b = a;
	vb_real x[33];
	rng_fill_normal(&a, x, 33, 2.0, 0.5);
	for (int i = 0; i < 33; i++)
		ck_assert(x[i] == (vb_real)(2.0 + 0.5 * rng_normal(&b)));
	ck_assert_int_eq(a.has_spare, b.has_spare);
	ck_assert(rng_normal(&a) == rng_normal(&b));
}
END_TEST

START_TEST(test_permutation)
{
	struct rng r;
	rng_seed(&r, 31, RNG_STREAM_SHUFFLE);
	enum { N = 1000 };
	static size_t idx[N];
	static int seen[N];
	rng_permutation(&r, idx, N);
	size_t fixed = 0;
	for (size_t i = 0; i < N; i++) {
		ck_assert(idx[i] < N);
		ck_assert_int_eq(seen[idx[i]], 0);
		seen[idx[i]] = 1;
		fixed += idx[i] == i;
	}
	/* Expected fixed points of a random permutation: 1 (Poisson). */
	ck_assert_msg(fixed < 10, "%zu fixed points", fixed);

	/* n = 0 writes nothing; n = 1 is {0}. */
	size_t one[2] = {7, 7};
	rng_permutation(&r, one, 0);
	ck_assert(one[0] == 7);
	rng_permutation(&r, one, 1);
	ck_assert(one[0] == 0 && one[1] == 7);

	/* All 6 orders of 3 equally likely (an off-by-one Fisher-Yates is
	 * not): 60000 draws, chi-square with 5 dof (mean 5, sd 3.2), bound 30
	 * (7.8 sd). The naive "swap with any" shuffle gives cells 4/27 and
	 * 5/27 instead of 1/6, a chi-square near 740. */
	long count[6] = {0};
	const long n = 60000;
	for (long t = 0; t < n; t++) {
		size_t p[3];
		rng_permutation(&r, p, 3);
		ck_assert(p[0] + p[1] + p[2] == 3 && p[0] != p[1] &&
			  p[1] != p[2] && p[0] != p[2]);
		/* Lehmer code: 0..5. */
		int code = (int)p[0] * 2 + (p[1] > p[2] ? 1 : 0);
		count[code]++;
	}
	double x2 = chi_square(count, 6, n);
	ck_assert_msg(x2 < 30.0, "chi-square %g", x2);
}
END_TEST

/* Issue 17 item 9: a checkpoint with an all-zero trainer.rng_state made
 * replay hang (xoshiro never leaves the zero state; rng_below rejects 0
 * forever). The state read from a crafted safetensors file is refused by
 * rng_state_restore with one line naming it; r is left unchanged. So are
 * has_spare outside 0/1 and a non-finite pending spare; a saved state
 * passes and continues identically. */
START_TEST(test_state_check)
{
	const char *path = tu_path(tu_tmpdir("rngck"), "zero.safetensors");
	uint64_t zero[3][RNG_STATE_WORDS], back[3][RNG_STATE_WORDS];
	size_t shape[2] = {3, RNG_STATE_WORDS};
	struct checkpoint_writer *w = NULL;
	struct checkpoint *ck = NULL;
	struct vb_error err;
	vb_error_clear(&err);
	memset(zero, 0, sizeof zero);
	struct rng good;
	rng_seed(&good, 5, RNG_STREAM_SHUFFLE);
	rng_state_save(&good, zero[0]); /* only [1] and [2] are zero */
	ck_assert(checkpoint_writer_create(&w, &err) == VB_OK);
	ck_assert(checkpoint_add(w, "trainer.rng_state", CHECKPOINT_U64, 2,
				 shape, zero, &err) == VB_OK);
	ck_assert_msg(checkpoint_write(w, path, &err) == VB_OK, "%s", err.msg);
	checkpoint_writer_free(w);
	ck_assert(checkpoint_open(path, &ck, &err) == VB_OK);
	ck_assert(checkpoint_read_raw(ck, "trainer.rng_state", CHECKPOINT_U64,
				      3 * RNG_STATE_WORDS, back, &err) == VB_OK);
	checkpoint_close(ck);

	struct rng r, before;
	rng_seed(&r, 11, RNG_STREAM_NOISE);
	before = r;
	ck_assert_msg(rng_state_restore(&r, back[0], "trainer.rng_state[0]",
					&err) == VB_OK, "%s", err.msg);
	ck_assert(memcmp(r.s, good.s, sizeof r.s) == 0);
	r = before;
	vb_error_clear(&err);
	ck_assert_int_eq(rng_state_restore(&r, back[1], "trainer.rng_state[1]",
					   &err), VB_ERR_DATA);
	ck_assert_str_eq(err.msg, "rng: trainer.rng_state[1]: all-zero "
				  "xoshiro256** state (s[0..3] = 0), expected "
				  "a state rng_state_save wrote");
	ck_assert(memcmp(r.s, before.s, sizeof r.s) == 0 &&
		  r.has_spare == before.has_spare);

	/* One non-zero word is a valid xoshiro state. */
	uint64_t st[RNG_STATE_WORDS] = {0, 0, 0, 1, 0, 0};
	vb_error_clear(&err);
	ck_assert_int_eq(rng_state_check(st, "x", &err), VB_OK);
	st[4] = 2;
	vb_error_clear(&err);
	ck_assert_int_eq(rng_state_check(st, "x", &err), VB_ERR_DATA);
	ck_assert_msg(strstr(err.msg, "rng: x: has_spare = 2"), "%s", err.msg);
	double nan_spare = NAN;
	st[4] = 1;
	memcpy(&st[5], &nan_spare, sizeof nan_spare);
	vb_error_clear(&err);
	ck_assert_int_eq(rng_state_check(st, "x", &err), VB_ERR_DATA);
	ck_assert_msg(strstr(err.msg, "spare normal"), "%s", err.msg);
	st[4] = 0; /* no pending spare: its bits are not looked at */
	vb_error_clear(&err);
	ck_assert_int_eq(rng_state_check(st, "x", &err), VB_OK);

	/* A restored saved state continues as the original. */
	uint64_t saved[RNG_STATE_WORDS];
	(void)rng_normal(&good);
	rng_state_save(&good, saved);
	vb_error_clear(&err);
	ck_assert_int_eq(rng_state_restore(&r, saved, "s", &err), VB_OK);
	for (int i = 0; i < 10; i++)
		ck_assert(rng_below(&r, 1000003) == rng_below(&good, 1000003));
	ck_assert(rng_normal(&r) == rng_normal(&good));
}
END_TEST

TU_MAIN("rng", "rng", 0, test_reference_outputs, test_uniform_bits,
	test_seed_deterministic, test_streams_differ, test_stream_names,
	test_save_load_mid_stream, test_below_range_and_uniform,
	test_uniform_moments, test_normal_moments, test_permutation,
	test_state_check)
