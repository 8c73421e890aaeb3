/*
 * test_vmath.c — the CPU backend's vector exp/tanh/sigmoid (src/backends/cpu/
 * cpu_vmath.h) against libm: maximum ulp error over a dense sample of every
 * float (each bit pattern in steps of a prime, so every exponent and the
 * denormals are covered), plus the extremes, infinities and NaN. The vector
 * loops must agree with their scalar references to the ulp bound too, tails
 * included.
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu_vmath.h"
#include "test_util.h"

typedef struct fn {
    const char *name;
    void (*vec)(const float *, float *, int64_t);
    float (*ref)(float);
    double (*libm)(double); /* the exact value, rounded once to float */
    int64_t max_ulp;
} fn;

static double sigmoid_d(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }

/* Bounds measured with this test (see the report it prints), rounded up. */
static const fn fns[] = {
    {"exp", lg_vexpf, lg_expf_ref, exp, 1},
    {"tanh", lg_vtanhf, lg_tanhf_ref, tanh, 1},
    {"sigmoid", lg_vsigmoidf, lg_sigmoidf_ref, sigmoid_d, 3},
};

/* Distance in representable floats; both NaN is 0, one NaN is "infinite". */
static int64_t ulp_diff(float a, float b)
{
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b) ? 0 : INT64_MAX;
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    int64_t oa = ia < 0 ? (int64_t)INT32_MIN - ia : ia, ob = ib < 0 ? (int64_t)INT32_MIN - ib : ib;
    return oa > ob ? oa - ob : ob - oa;
}

enum { BLOCK = 4096 + 5 }; /* not a multiple of 8: every call has a tail */

static void check_fn(const fn *f)
{
    static float xs[BLOCK], ys[BLOCK];
    int64_t worst = 0;
    float worst_x = 0;
    static const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, FLT_MAX, -FLT_MAX, FLT_MIN,
                                     -FLT_MIN, 1e-45f, -1e-45f, 88.72283f, 88.72284f, -87.33654f, -103.97f,
                                     -103.28f, 0.625f, -0.625f, 0.62499994f, 9.01f, 1.0f, -1.0f};
    int n = 0;
    for (size_t k = 0; k < sizeof specials / sizeof *specials; k++) xs[n++] = specials[k];
    uint64_t pattern = 0;
    for (;;) {
        bool last = pattern > UINT32_MAX;
        if (!last) {
            uint32_t bits = (uint32_t)pattern;
            memcpy(&xs[n++], &bits, 4);
            pattern += 131;
        }
        if (n == BLOCK || (last && n)) {
            f->vec(xs, ys, n);
            for (int i = 0; i < n; i++) {
                float want = (float)f->libm((double)xs[i]);
                int64_t d = ulp_diff(ys[i], want);
                int64_t dr = ulp_diff(f->ref(xs[i]), want);
                if (dr > d) d = dr;
                if (d > worst) worst = d, worst_x = xs[i];
            }
            n = 0;
        }
        if (last) break;
    }
    printf("vmath: %s max %lld ulp (at %a)\n", f->name, (long long)worst, worst_x);
    ck_assert_msg(worst <= f->max_ulp, "%s: %lld ulp at %a (%.9g), bound %lld", f->name, (long long)worst, worst_x,
                  worst_x, (long long)f->max_ulp);
}

START_TEST(test_ulp) { check_fn(&fns[_i]); }
END_TEST

/* In place, and every length 0..40 (tails), agree with the scalar reference
 * bit for bit. */
START_TEST(test_tails_in_place)
{
    for (size_t k = 0; k < sizeof fns / sizeof *fns; k++)
        for (int64_t len = 0; len <= 40; len++) {
            float x[40], y[40];
            for (int i = 0; i < len; i++) x[i] = y[i] = (float)(i - 20) * 0.37f;
            fns[k].vec(y, y, len);
            for (int i = 0; i < len; i++)
                ck_assert_msg(ulp_diff(y[i], fns[k].ref(x[i])) == 0, "%s len %lld at %d", fns[k].name,
                              (long long)len, i);
        }
}
END_TEST

static Suite *vmath_suite(void)
{
    Suite *s = suite_create("vmath");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_ulp, 0, (int)(sizeof fns / sizeof *fns));
    tcase_add_test(tc, test_tails_in_place);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lg_check_run(vmath_suite()); }
