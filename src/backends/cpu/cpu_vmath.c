/*
 * cpu_vmath.c — vectorised exp, tanh and sigmoid for f32 (cpu_vmath.h).
 *
 * The vector code uses GCC's vector extensions (also in clang): one vector
 * (vf, vi) is sixteen lanes, split by the compiler into what the target has.
 * On x86-64 each array loop also gets AVX-512 and AVX2 clones picked at load
 * time (target_clones), so one build runs well on old and new machines.
 * Contraction into FMA is off under -std=c11, so every clone computes the
 * same bits.
 */
#include <math.h>
#include <string.h>

#include "backends/cpu/cpu_vmath.h"

typedef float vf __attribute__((vector_size(64)));
typedef int32_t vi __attribute__((vector_size(64)));

/* Not under ThreadSanitizer: an ifunc resolver runs before its runtime is
 * up, and an instrumented one crashes the process at load. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
#define LG_VCLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LG_VCLONES
#endif
#define LG_VINLINE static inline __attribute__((always_inline))
enum { VLEN = sizeof(vf) / sizeof(float) };

/* Cephes expf: ln 2 in two parts (C1 has 9 bits, so n C1 is exact) and the
 * polynomial for e^r - 1 - r on |r| <= ln2 / 2. */
static const float LOG2E = 1.44269504088896341f, C1 = 0.693359375f, C2 = -2.12194440e-4f;
static const float EP0 = 1.9875691500e-4f, EP1 = 1.3981999507e-3f, EP2 = 8.3334519073e-3f, EP3 = 4.1665795894e-2f,
                   EP4 = 1.6666665459e-1f, EP5 = 5.0000001201e-1f;
/* Beyond these e^x is inf or rounds to 0; in between 2^n is in [2^-150, 2^128]. */
static const float EXP_HI = 89.0f, EXP_LO = -104.0f;
static const float ROUND = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
/* Cephes tanhf below 0.625 */
static const float TP0 = -5.70498872745e-3f, TP1 = 2.06390887954e-2f, TP2 = -5.37397155531e-2f,
                   TP3 = 1.33314422036e-1f, TP4 = -3.33332819422e-1f, TANH_SMALL = 0.625f;

/* ---- scalar references ---------------------------------------------------- */

static float pow2f(int32_t k) /* 2^k for k in [-126, 127] */
{
    int32_t bits = (k + 127) << 23;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

float lg_expf_ref(float x)
{
    if (isnan(x)) return x + x;
    if (x > EXP_HI) x = EXP_HI;
    if (x < EXP_LO) x = EXP_LO;
    float n = (x * LOG2E + ROUND) - ROUND;
    float r = x - n * C1 - n * C2;
    float p = (((((EP0 * r + EP1) * r + EP2) * r + EP3) * r + EP4) * r + EP5) * (r * r) + r + 1.0f;
    int32_t ni = (int32_t)n, n1 = ni >> 1, n2 = ni - n1;
    return p * pow2f(n1) * pow2f(n2);
}

float lg_tanhf_ref(float x)
{
    if (isnan(x)) return x + x;
    float a = fabsf(x);
    if (a < TANH_SMALL) {
        float z = x * x;
        return ((((TP0 * z + TP1) * z + TP2) * z + TP3) * z + TP4) * z * x + x;
    }
    float y = 1.0f - 2.0f / (lg_expf_ref(a + a) + 1.0f);
    return x < 0 ? -y : y;
}

float lg_sigmoidf_ref(float x)
{
    if (isnan(x)) return x + x;
    float e = lg_expf_ref(-fabsf(x));
    float s = 1.0f / (1.0f + e);
    return x >= 0 ? s : e * s;
}

/* ---- sixteen lanes ------------------------------------------------------------ */

LG_VINLINE vf vsel(vi m, vf a, vf b) { return (vf)(((vi)a & m) | ((vi)b & ~m)); }
LG_VINLINE vf vabs(vf x) { return (vf)((vi)x & 0x7fffffff); }
LG_VINLINE vf vpow2(vi k) { return (vf)((k + 127) << 23); }

/* e^x for lanes that are not NaN (NaN lanes give garbage; callers select). */
LG_VINLINE vf vexp_core(vf x)
{
    x = vsel(x > EXP_HI, (vf){0} + EXP_HI, x);
    x = vsel(x < EXP_LO, (vf){0} + EXP_LO, x);
    vf n = (x * LOG2E + ROUND) - ROUND;
    vf r = x - n * C1 - n * C2;
    vf p = (((((EP0 * r + EP1) * r + EP2) * r + EP3) * r + EP4) * r + EP5) * (r * r) + r + 1.0f;
    vi ni = __builtin_convertvector(n, vi), n1 = ni >> 1, n2 = ni - n1;
    return p * vpow2(n1) * vpow2(n2);
}

LG_VINLINE vf vexp(vf x) { return vsel(x != x, x + x, vexp_core(x)); }

LG_VINLINE vf vtanh(vf x)
{
    vf a = vabs(x), z = x * x;
    vf small = ((((TP0 * z + TP1) * z + TP2) * z + TP3) * z + TP4) * z * x + x;
    vf big = 1.0f - 2.0f / (vexp_core(a + a) + 1.0f);
    big = (vf)((vi)big | ((vi)x & INT32_MIN)); /* the sign of x */
    return vsel(x != x, x + x, vsel(a < TANH_SMALL, small, big));
}

LG_VINLINE vf vsigmoid(vf x)
{
    vf e = vexp_core(-vabs(x));
    vf s = 1.0f / (1.0f + e);
    return vsel(x != x, x + x, vsel(x >= 0, s, e * s));
}

/* y[i] = F(x[i]); the tail goes through a zero-padded block. The clones
 * are static, so their ifunc resolvers stay out of the library's exports;
 * name itself is an ordinary (hidden) function that calls them. */
#define VMAP(name, F)                                                   \
    static LG_VCLONES void name##_clones(const float *x, float *y, int64_t n) \
    {                                                                   \
        int64_t i = 0;                                                  \
        for (; i + VLEN <= n; i += VLEN) {                              \
            vf v;                                                       \
            memcpy(&v, x + i, sizeof v);                                \
            v = F(v);                                                   \
            memcpy(y + i, &v, sizeof v);                                \
        }                                                               \
        if (i < n) { /* element copies: cheaper than a memcpy call */   \
            vf v = {0};                                                 \
            for (int64_t k = 0; k < n - i; k++) v[k] = x[i + k];        \
            v = F(v);                                                   \
            for (int64_t k = 0; k < n - i; k++) y[i + k] = v[k];        \
        }                                                               \
    }                                                                   \
    void name(const float *x, float *y, int64_t n) { name##_clones(x, y, n); }

VMAP(lg_vexpf, vexp)
VMAP(lg_vtanhf, vtanh)
VMAP(lg_vsigmoidf, vsigmoid)
