/* rng: xoshiro256** generator, splitmix64 seeding per (seed, stream),
 * uniform / bounded / normal draws, Fisher-Yates permutations and state
 * save/load. Which stream feeds which consumer is the callers' business. */
#include "rng.h"

#include <math.h>
#include <string.h>

_Static_assert(sizeof(double) == sizeof(uint64_t),
	       "rng: the spare is saved as the 64 bits of a double");

/* 2*pi as the nearest double (Python's 2 * math.pi). */
static const double rng_two_pi = 6.283185307179586476925286766559;

const char *rng_stream_name(enum rng_stream stream)
{
	switch (stream) {
	case RNG_STREAM_INIT: return "init";
	case RNG_STREAM_SHUFFLE: return "shuffle";
	case RNG_STREAM_NOISE: return "noise";
	case RNG_STREAM_INJECT: return "inject";
	case RNG_N_STREAMS: break;
	}
	return "unknown";
}

/* splitmix64 (Steele, Lea & Flood 2014; Vigna's splitmix64.c): advances *x
 * by the golden gamma and returns the mixed value. */
static uint64_t splitmix64_next(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));
	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

void rng_seed(struct rng *r, uint64_t seed, enum rng_stream stream)
{
	/* Mix seed and stream separately, then start splitmix64 from their
	 * xor: for a fixed stream the map seed -> start is a bijection, and
	 * different streams land at unrelated points of splitmix64's cycle
	 * (a plain seed + stream would make stream k the sequence of stream 0
	 * shifted by k draws). */
	uint64_t a = seed;
	uint64_t b = (uint64_t)stream + 1;
	uint64_t x = splitmix64_next(&a) ^ splitmix64_next(&b);
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64_next(&x);
	/* Four consecutive splitmix64 outputs are a bijection of four distinct
	 * counters, so at most one of them is zero: the state is never all
	 * zero, which xoshiro requires. */
	r->has_spare = 0;
	r->spare = 0.0;
}

static inline uint64_t rotl64(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256** 1.0, as in the reference xoshiro256starstar.c. */
uint64_t rng_next_u64(struct rng *r)
{
	uint64_t *s = r->s;
	const uint64_t result = rotl64(s[1] * 5, 7) * 9;
	const uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl64(s[3], 45);
	return result;
}

double rng_uniform(struct rng *r)
{
	/* Top 53 bits times 2^-53: every value k/2^53, k < 2^53, equally
	 * likely; never 1. */
	return (double)(rng_next_u64(r) >> 11) * 0x1.0p-53;
}

uint64_t rng_below(struct rng *r, uint64_t n)
{
	if (n == 0)
		return 0;
	/* Reject the lowest 2^64 mod n outputs, leaving a multiple of n
	 * equally likely values (as OpenBSD's arc4random_uniform). The
	 * rejected fraction is below n / 2^64. */
	const uint64_t threshold = (0 - n) % n;
	for (;;) {
		uint64_t x = rng_next_u64(r);
		if (x >= threshold)
			return x % n;
	}
}

double rng_normal(struct rng *r)
{
	if (r->has_spare) {
		r->has_spare = 0;
		return r->spare;
	}
	/* Box-Muller (1958). u1 in (0, 1] so log(u1) is finite. */
	double u1 = 1.0 - rng_uniform(r);
	double u2 = rng_uniform(r);
	double rad = sqrt(-2.0 * log(u1));
	double theta = rng_two_pi * u2;
	r->spare = rad * sin(theta);
	r->has_spare = 1;
	return rad * cos(theta);
}

void rng_fill_normal(struct rng *r, vb_real *x, size_t n, double mean,
		     double std)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (vb_real)(mean + std * rng_normal(r));
}

void rng_fill_uniform(struct rng *r, vb_real *x, size_t n, double lo,
		      double hi)
{
	double width = hi - lo;
	for (size_t i = 0; i < n; i++)
		x[i] = (vb_real)(lo + width * rng_uniform(r));
}

void rng_permutation(struct rng *r, size_t *idx, size_t n)
{
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)rng_below(r, (uint64_t)i);
		size_t tmp = idx[i - 1];
		idx[i - 1] = idx[j];
		idx[j] = tmp;
	}
}

void rng_state_save(const struct rng *r, uint64_t out[RNG_STATE_WORDS])
{
	for (int i = 0; i < 4; i++)
		out[i] = r->s[i];
	out[4] = r->has_spare ? 1 : 0;
	uint64_t bits;
	memcpy(&bits, &r->spare, sizeof bits);
	out[5] = bits;
}

void rng_state_load(struct rng *r, const uint64_t in[RNG_STATE_WORDS])
{
	for (int i = 0; i < 4; i++)
		r->s[i] = in[i];
	r->has_spare = in[4] != 0;
	memcpy(&r->spare, &in[5], sizeof r->spare);
}

enum vb_status rng_state_check(const uint64_t in[RNG_STATE_WORDS],
			       const char *what, struct vb_error *err)
{
	double spare;
	if ((in[0] | in[1] | in[2] | in[3]) == 0)
		return vb_fail(err, VB_ERR_DATA, "rng: %s: all-zero "
			       "xoshiro256** state (s[0..3] = 0), expected a "
			       "state rng_state_save wrote", what);
	if (in[4] > 1)
		return vb_fail(err, VB_ERR_DATA, "rng: %s: has_spare = %llu, "
			       "expected 0 or 1", what,
			       (unsigned long long)in[4]);
	memcpy(&spare, &in[5], sizeof spare);
	if (in[4] == 1 && !isfinite(spare))
		return vb_fail(err, VB_ERR_DATA, "rng: %s: spare normal = %g, "
			       "expected a finite value", what, spare);
	return VB_OK;
}

enum vb_status rng_state_restore(struct rng *r,
				 const uint64_t in[RNG_STATE_WORDS],
				 const char *what, struct vb_error *err)
{
	enum vb_status st = rng_state_check(in, what, err);
	if (st == VB_OK)
		rng_state_load(r, in);
	return st;
}
