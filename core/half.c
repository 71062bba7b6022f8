/* half: float -> nearest binary16 / bfloat16 value (as float), ties to
 * even, by integer arithmetic on the float's bits (binary16 subnormals by
 * one float addition whose ulp is the subnormal quantum). Used by the
 * tape's rounding mode (graph.c); knows nothing about tensors. */
#include "half.h"

#include <stdint.h>
#include <string.h>

#define HALF_SIGN 0x80000000u
#define HALF_F32_INF 0x7f800000u
/* 65520 = 65504 + half an ulp: from here on binary16 rounds to Inf */
#define HALF_F16_OVERFLOW 0x477ff000u
/* 2^-14, the smallest normal binary16 */
#define HALF_F16_MIN_NORMAL 0x38800000u
/* a float keeps 23 fraction bits, binary16 10, bfloat16 7 */
#define HALF_F16_DROP 13
#define HALF_BF16_DROP 16

static uint32_t bits_of(float x)
{
	uint32_t u;
	memcpy(&u, &x, sizeof u);
	return u;
}

static float float_of(uint32_t u)
{
	float x;
	memcpy(&x, &u, sizeof x);
	return x;
}

/* Rounds the magnitude bits a (finite) to drop fewer fraction bits, ties
 * to even; a carry out of the fraction bumps the exponent, as it should. */
static uint32_t round_bits(uint32_t a, int drop)
{
	uint32_t half = (1u << (drop - 1)) - 1u;
	uint32_t lsb = (a >> drop) & 1u;
	return (a + half + lsb) & ~((1u << drop) - 1u);
}

float half_round_f16(float x)
{
	uint32_t u = bits_of(x), s = u & HALF_SIGN, a = u ^ s;
	if (a > HALF_F32_INF)
		return x; /* NaN */
	if (a >= HALF_F16_OVERFLOW)
		return float_of(s | HALF_F32_INF);
	if (a >= HALF_F16_MIN_NORMAL)
		return float_of(s | round_bits(a, HALF_F16_DROP));
	/* Binary16 subnormal range: 0.5f has ulp 2^-24, the subnormal
	 * quantum, so the addition rounds |x| to a multiple of it (ties to
	 * even, the default mode) and the subtraction is exact. Both
	 * operands and results are normal floats unless |x| is a float
	 * subnormal, where flush-to-zero gives the same 0. */
	return float_of(s | bits_of((float_of(a) + 0.5f) - 0.5f));
}

float half_round_bf16(float x)
{
	uint32_t u = bits_of(x), s = u & HALF_SIGN, a = u ^ s;
	if (a > HALF_F32_INF)
		return x; /* NaN */
	if (a == HALF_F32_INF)
		return x;
	/* the largest floats round up to 0x7f800000, Inf, by themselves */
	return float_of(s | round_bits(a, HALF_BF16_DROP));
}

void half_round_f16_array(vb_real *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (vb_real)half_round_f16((float)x[i]);
}

void half_round_bf16_array(vb_real *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (vb_real)half_round_bf16((float)x[i]);
}
