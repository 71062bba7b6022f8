/* rng: the only random source of the project, xoshiro256** (Blackman &
 * Vigna) with explicit streams (init, shuffle, noise, inject) so that one
 * use of randomness never shifts another (batch size must not change the
 * initial weights). The whole state, Box-Muller spare included, saves to
 * RNG_STATE_WORDS words; callers own every struct rng (no global state). */
#ifndef VB_CORE_RNG_H
#define VB_CORE_RNG_H

#include <stddef.h>
#include <stdint.h>

#include "vb.h"

/* Words in a saved state: s[0..3], has_spare, spare (bits of the double). */
#define RNG_STATE_WORDS 6

struct rng {
	uint64_t s[4];  /* xoshiro256** state, never all zero */
	int has_spare;  /* 1: spare holds the second normal of a Box-Muller pair */
	double spare;
};

/* Independent streams derived from one seed. The integer values are never
 * stored in results; use rng_stream_name. */
enum rng_stream {
	RNG_STREAM_INIT,    /* weight initialisation */
	RNG_STREAM_SHUFFLE, /* epoch permutations of the training set */
	RNG_STREAM_NOISE,   /* reparameterisation noise, momenta */
	RNG_STREAM_INJECT,  /* fault injection in datasets */
	RNG_N_STREAMS
};

/* Stable lowercase name: "init", "shuffle", "noise", "inject"; "unknown"
 * for values outside the enum. */
const char *rng_stream_name(enum rng_stream stream);

/* Seeds r for (seed, stream): the four state words are consecutive
 * splitmix64 outputs started from a bijective mix of seed and stream, so
 * distinct (seed, stream) pairs give distinct, unrelated states. Clears the
 * Box-Muller spare. */
void rng_seed(struct rng *r, uint64_t seed, enum rng_stream stream);

/* Next raw 64-bit output of xoshiro256** (reference algorithm, 2018). */
uint64_t rng_next_u64(struct rng *r);

/* Uniform double in [0, 1) from the top 53 bits of one output. */
double rng_uniform(struct rng *r);

/* Uniform integer in [0, n), unbiased (rejection of the low 2^64 mod n
 * values). n == 0 returns 0 without drawing. */
uint64_t rng_below(struct rng *r, uint64_t n);

/* Standard normal draw (Box-Muller in double). Draws come in pairs: the
 * second of a pair is kept in r (has_spare, spare) and returned by the next
 * call, so a saved state resumes mid-pair exactly. */
double rng_normal(struct rng *r);

/* x[i] = (vb_real)(mean + std * rng_normal(r)) for i < n, in order. */
void rng_fill_normal(struct rng *r, vb_real *x, size_t n, double mean,
		     double std);

/* x[i] = (vb_real)(lo + (hi - lo) * rng_uniform(r)) for i < n, in order.
 * In float the rounding may give exactly hi. */
void rng_fill_uniform(struct rng *r, vb_real *x, size_t n, double lo,
		      double hi);

/* Fills idx with 0..n-1 and shuffles it (Fisher-Yates, from the top: swap
 * i with rng_below(i + 1) for i = n-1 .. 1). idx has n entries. */
void rng_permutation(struct rng *r, size_t *idx, size_t n);

/* Copies the whole state into out: s[0..3], has_spare (0 or 1), the bits of
 * spare (memcpy of the double, so it restores bit for bit). */
void rng_state_save(const struct rng *r, uint64_t out[RNG_STATE_WORDS]);

/* Restores a state written by rng_state_save; the continuation is then
 * identical to the saved generator's. in must be a valid state (one that
 * rng_state_save wrote in this process, or one that passed
 * rng_state_check): an all-zero xoshiro state never leaves zero, and
 * rng_below would loop forever on it. States read from files go through
 * rng_state_restore. */
void rng_state_load(struct rng *r, const uint64_t in[RNG_STATE_WORDS]);

/* Checks that in could have been written by rng_state_save: s[0..3] not
 * all zero (xoshiro's one forbidden state), has_spare 0 or 1, and a
 * finite spare when has_spare is 1. VB_ERR_DATA with one line naming what
 * (the caller's name for the state, e.g. "trainer.rng_state[1]") and the
 * value, e.g. "rng: trainer.rng_state[1]: all-zero xoshiro256** state
 * (s[0..3] = 0), expected a state rng_state_save wrote". */
enum vb_status rng_state_check(const uint64_t in[RNG_STATE_WORDS],
			       const char *what, struct vb_error *err);

/* rng_state_check, then rng_state_load; r is unchanged on error. */
enum vb_status rng_state_restore(struct rng *r,
				 const uint64_t in[RNG_STATE_WORDS],
				 const char *what, struct vb_error *err);

#endif
