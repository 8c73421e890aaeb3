/*
 * cpu_vmath.h — vectorised exp, tanh and sigmoid for f32. Private to the
 * library.
 *
 * glibc's expf/tanhf are scalar calls; in an LSTM step they cost as much as
 * the GEMMs. These run sixteen lanes at a time (GCC vector extensions;
 * AVX-512 and AVX2 clones chosen at load time on x86-64) and stay within a
 * few ulp of the correctly rounded result over the whole float range,
 * denormal results, infinities and NaN included (tests/test_vmath.c
 * measures it against libm).
 *
 * Each has a scalar reference beside it (lg_*f_ref): the same algorithm one
 * element at a time with plain branches, for tests and for reading.
 *
 *   exp      Cephes: n = round(x log2 e), r = x - n ln 2 (two parts), a
 *            degree-7 polynomial in r, times 2^n applied in two halves so
 *            results down to the smallest denormal round once.
 *   tanh     |x| < 0.625: x + x^3 P(x^2) (Cephes); else 1 - 2 / (e^{2|x|} + 1)
 *            with the sign of x.
 *   sigmoid  e = e^{-|x|}, s = 1 / (1 + e); s for x >= 0, e s below (so
 *            tiny results keep their precision instead of 1 - (1 - tiny)).
 *
 * x and y may be the same array (in place); otherwise they must not overlap.
 */
#ifndef LG_CPU_VMATH_H
#define LG_CPU_VMATH_H

#include <stdint.h>

void lg_vexpf(const float *x, float *y, int64_t n);
void lg_vtanhf(const float *x, float *y, int64_t n);
void lg_vsigmoidf(const float *x, float *y, int64_t n);

float lg_expf_ref(float x);
float lg_tanhf_ref(float x);
float lg_sigmoidf_ref(float x);

#endif
