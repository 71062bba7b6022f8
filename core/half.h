/* half: rounding of float values to the nearest IEEE binary16 (fp16) or
 * bfloat16 value, returned as float, for the float build's emulation of
 * half-precision training (train.precision = f16 / bf16). Storage stays
 * float; only the values are restricted. The tape applies it through
 * graph_set_rounding (graph.h); nothing here allocates, prints or fails. */
#ifndef VB_CORE_HALF_H
#define VB_CORE_HALF_H

#include <stddef.h>

#include "vb.h"

/* x rounded to the nearest IEEE 754 binary16 value, round to nearest, ties
 * to even: 11 significant bits, largest finite 65504; |x| >= 65520 (half
 * way to 2^16) becomes +-Inf; below 2^-14 (6.1e-5) the result is a
 * binary16 subnormal, a multiple of 2^-24 (5.96e-8), and |x| <= 2^-25
 * becomes a zero of x's sign. Inf stays Inf, NaN stays NaN (payload kept).
 * Independent of the floating-point environment's flush-to-zero bits. */
float half_round_f16(float x);

/* x rounded to the nearest bfloat16 value (the top 16 bits of a float:
 * 8 significant bits, float's exponent range, subnormals kept), ties to
 * even; values beyond the largest bfloat16 (3.3895e38) by half an ulp or
 * more become +-Inf. Inf and NaN stay. */
float half_round_bf16(float x);

/* In place over x[0..n): every element rounded as above. In the double
 * build (VB_DOUBLE) the value goes through float first, so an element
 * exactly half way between two float values may round differently than a
 * direct double-to-half rounding (the f64 build refuses f16/bf16 runs). */
void half_round_f16_array(vb_real *x, size_t n);
void half_round_bf16_array(vb_real *x, size_t n);

#endif
