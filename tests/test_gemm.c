/*
 * test_gemm.c — the CPU backend's GEMM providers (src/backends/cpu/gemm.h)
 * against a plain triple loop, and the per-process decision
 * (include/graph/cpu.h).
 *
 * Every provider this build has, f32 and f64 where it has a kernel, all four
 * transpose combinations, odd shapes, padded leading dimensions, alpha and
 * beta. The decision tests set LG_GEMM and read the result in a fresh
 * process: Check forks each test, and nothing in the parent multiplies.
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backends/cpu/gemm.h"
#include "backends/cpu/qr.h"
#include "test_util.h"

typedef struct dims {
    int64_t m, n, k;
} dims;

static const dims shapes[] = {{1, 1, 1}, {1, 7, 3}, {5, 1, 9}, {7, 13, 5}, {33, 17, 65}, {64, 256, 28}, {3, 130, 257}};

/* C = alpha op(A) op(B) + beta C in long double, row-major. */
static void reference(const lg_gemm_args *g, double alpha, const double *a, const double *b, double beta, double *c)
{
    for (int64_t i = 0; i < g->m; i++)
        for (int64_t j = 0; j < g->n; j++) {
            long double s = 0;
            for (int64_t p = 0; p < g->k; p++) {
                double x = g->trans_a ? a[p * g->lda + i] : a[i * g->lda + p];
                double y = g->trans_b ? b[j * g->ldb + p] : b[p * g->ldb + j];
                s += (long double)x * y;
            }
            c[i * g->ldc + j] = (double)(alpha * s + (long double)beta * c[i * g->ldc + j]);
        }
}

static double uniform(uint64_t *x)
{
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*x >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* One case for one provider and dtype; pad adds to every leading dimension. */
static void check_case(lg_gemm_provider p, bool f64, dims d, bool ta, bool tb, int64_t pad, double alpha, double beta,
                       int threads)
{
    lg_gemm_args g = {.trans_a = ta, .trans_b = tb, .m = d.m, .n = d.n, .k = d.k};
    int64_t a_rows = ta ? d.k : d.m, b_rows = tb ? d.n : d.k;
    g.lda = (ta ? d.m : d.k) + pad, g.ldb = (tb ? d.k : d.n) + pad, g.ldc = d.n + pad;
    size_t na = (size_t)(a_rows * g.lda), nb = (size_t)(b_rows * g.ldb), nc = (size_t)(d.m * g.ldc);
    double *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b), *c = malloc(nc * sizeof *c);
    double *want = malloc(nc * sizeof *want), *got = malloc(nc * sizeof *got);
    ck_assert(a && b && c && want && got);
    uint64_t x = (uint64_t)(d.m * 1000003 + d.n * 1009 + d.k) + (ta ? 7 : 0) + (tb ? 11 : 0);
    for (size_t i = 0; i < na; i++) a[i] = uniform(&x);
    for (size_t i = 0; i < nb; i++) b[i] = uniform(&x);
    for (size_t i = 0; i < nc; i++) c[i] = uniform(&x);
    if (!f64) { /* the reference sees exactly the floats the provider sees */
        for (size_t i = 0; i < na; i++) a[i] = (float)a[i];
        for (size_t i = 0; i < nb; i++) b[i] = (float)b[i];
        for (size_t i = 0; i < nc; i++) c[i] = (float)c[i];
    }
    memcpy(want, c, nc * sizeof *c);
    reference(&g, alpha, a, b, beta, want);
    lg_status st;
    if (f64) {
        memcpy(got, c, nc * sizeof *c);
        st = lg_gemm_f64_with(p, threads, &g, alpha, a, b, beta, got);
    } else {
        float *fa = malloc(na * sizeof *fa), *fb = malloc(nb * sizeof *fb), *fc = malloc(nc * sizeof *fc);
        ck_assert(fa && fb && fc);
        for (size_t i = 0; i < na; i++) fa[i] = (float)a[i];
        for (size_t i = 0; i < nb; i++) fb[i] = (float)b[i];
        for (size_t i = 0; i < nc; i++) fc[i] = (float)c[i];
        st = lg_gemm_f32_with(p, threads, &g, (float)alpha, fa, fb, (float)beta, fc);
        for (size_t i = 0; i < nc; i++) got[i] = fc[i];
        free(fa), free(fb), free(fc);
    }
    ck_assert_msg(st == LG_OK, "%s", lg_last_error());
    /* Error bound of a k-term dot product: grows with k and the magnitudes
     * (|a|, |b|, |c| < 1), a few units of rounding each. */
    double eps = f64 ? 0x1p-52 : 0x1p-23;
    double tol = 4.0 * eps * ((double)d.k * fabs(alpha) + fabs(beta) + 1.0);
    for (int64_t i = 0; i < d.m; i++)
        for (int64_t j = 0; j < g.ldc; j++) {
            double w = want[i * g.ldc + j], v = got[i * g.ldc + j];
            if (j >= d.n) /* padding is not C's: untouched */
                ck_assert_msg(v == (f64 ? c[i * g.ldc + j] : (float)c[i * g.ldc + j]),
                              "padding at [%lld, %lld] written", (long long)i, (long long)j);
            else
                ck_assert_msg(fabs(v - w) <= tol,
                              "%s %s %lldx%lldx%lld %c%c pad %lld alpha %g beta %g threads %d: C[%lld,%lld] = %.17g, "
                              "reference %.17g (tolerance %.3g)",
                              f64 ? "dgemm" : "sgemm", p == LG_GEMM_OPENBLAS ? "openblas" : "onednn",
                              (long long)d.m, (long long)d.n, (long long)d.k, ta ? 'T' : 'N', tb ? 'T' : 'N',
                              (long long)pad, alpha, beta, threads, (long long)i, (long long)j, v, w, tol);
        }
    free(a), free(b), free(c), free(want), free(got);
}

static bool provider_built(lg_gemm_provider p)
{
    float one = 1.0f, c = 0.0f;
    lg_gemm_args g = {.m = 1, .n = 1, .k = 1, .lda = 1, .ldb = 1, .ldc = 1};
    return lg_gemm_f32_with(p, 1, &g, 1.0f, &one, &one, 0.0f, &c) == LG_OK;
}

/* _i: provider x dtype (2 p + f64). */
START_TEST(test_against_reference)
{
    lg_gemm_provider p = (lg_gemm_provider)(_i / 2);
    bool f64 = _i % 2;
    if (!provider_built(p)) {
#ifdef LG_HAVE_ONEDNN
        ck_abort_msg("provider %d is built but refused: %s", (int)p, lg_last_error());
#endif
        return; /* not built: nothing to compare */
    }
    lg_gemm_args probe = {.m = 1, .n = 1, .k = 1, .lda = 1, .ldb = 1, .ldc = 1};
    double one = 1.0, c = 0.0;
    if (f64 && lg_gemm_f64_with(p, 1, &probe, 1.0, &one, &one, 0.0, &c) != LG_OK) {
        ck_assert_int_eq(p, LG_GEMM_ONEDNN); /* oneDNN has no dgemm; OpenBLAS must */
        ck_assert_ptr_nonnull(strstr(lg_last_error(), "no f64"));
        return;
    }
    for (size_t s = 0; s < LG_ARRAY_LEN(shapes); s++)
        for (int t = 0; t < 4; t++) {
            check_case(p, f64, shapes[s], t & 1, t & 2, 0, 1.0, 0.0, 1);
            check_case(p, f64, shapes[s], t & 1, t & 2, 3, -0.75, 0.5, 1);
            check_case(p, f64, shapes[s], t & 1, t & 2, 0, 1.0, 1.0, 2);
        }
}
END_TEST

/* A product over the small-GEMM threshold, on two threads. */
START_TEST(test_large_two_threads)
{
    lg_gemm_provider p = (lg_gemm_provider)_i;
    if (!provider_built(p)) return;
    dims d = {96, 320, 300}; /* 2 m n k = 18.4 M flops: over LG_GEMM_SMALL_FLOPS */
    ck_assert_int_eq(lg_gemm_threads_for(d.m, d.n, d.k, 2), 2);
    check_case(p, false, d, false, true, 1, 1.0, 0.25, 2);
    check_case(p, false, d, true, false, 0, 1.0, 0.0, 2);
}
END_TEST

/* lg_cpu_qr_q (qr.h) runs LAPACK on one OpenBLAS thread whatever the
 * pool, so the orthogonal initializer's weights do not depend on the
 * thread count (OpenBLAS's threaded QR of this shape gave other bits on 2
 * threads), and leaves the application's count as it was. */
START_TEST(test_qr_one_thread)
{
    enum { M = 4096, N = 1024 };
    double *a = malloc(sizeof(double) * M * N), *b = malloc(sizeof(double) * M * N);
    ck_assert(a && b);
    for (int64_t i = 0; i < (int64_t)M * N; i++) a[i] = b[i] = sin(0.37 * (double)i) + cos(1e-3 * (double)(i % 977));
    bool full_a = false, full_b = false;
    openblas_set_num_threads(2);
    ck_assert_int_eq(lg_cpu_qr_q(a, M, N, &full_a), LG_OK);
    ck_assert_int_eq(openblas_get_num_threads(), 2);
    openblas_set_num_threads(1);
    ck_assert_int_eq(lg_cpu_qr_q(b, M, N, &full_b), LG_OK);
    ck_assert(full_a && full_b);
    ck_assert_msg(!memcmp(a, b, sizeof(double) * M * N), "QR on 2 threads and on 1 differ");
    double d = 0; /* and it is a Q: column 0 of unit norm, columns 0 and 1 orthogonal */
    for (int i = 0; i < M; i++) d += a[i] * a[M + i];
    ck_assert_msg(fabs(d) < 1e-12, "q0 . q1 = %g", d);
    free(a), free(b);
}
END_TEST

START_TEST(test_threads_rule)
{
    ck_assert_int_eq(lg_gemm_threads_for(64, 256, 64, 2), 1);         /* a recurrent step: 2.1 M flops */
    ck_assert_int_eq(lg_gemm_threads_for(1024, 1024, 1024, 8), 8);     /* 2.1 G flops */
    ck_assert_int_eq(lg_gemm_threads_for(128, 256, 256, 4), 4);        /* exactly 2^24 */
    ck_assert_int_eq(lg_gemm_threads_for(1 << 20, 1 << 20, 1 << 20, 0), 1);
}
END_TEST

START_TEST(test_unknown_provider)
{
    float one = 1.0f, c = 0.0f;
    lg_gemm_args g = {.m = 1, .n = 1, .k = 1, .lda = 1, .ldb = 1, .ldc = 1};
    ck_assert_int_eq(lg_gemm_f32_with(LG_GEMM_PROVIDER_COUNT, 1, &g, 1.0f, &one, &one, 0.0f, &c), LG_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "no such provider"));
}
END_TEST

/* ---- the decision, through the public API ------------------------------ */

START_TEST(test_forced_provider)
{
    const char *name = _i ? "onednn" : "OpenBLAS";
    setenv("LG_GEMM", name, 1);
    lg_cpu_gemm_info info;
    lg_status st = lg_cpu_gemm_info_get(&info);
#ifndef LG_HAVE_ONEDNN
    if (_i) {
        ck_assert_int_eq(st, LG_ERR_UNSUPPORTED);
        ck_assert_ptr_nonnull(strstr(lg_last_error(), "LG_GEMM=onednn"));
        return;
    }
#endif
    ck_assert_msg(st == LG_OK, "%s", lg_last_error());
    ck_assert_str_eq(info.provider, _i ? "onednn" : "openblas");
    ck_assert_str_eq(info.f64_provider, "openblas");
    ck_assert_str_eq(info.reason, _i ? "LG_GEMM=onednn" : "LG_GEMM=OpenBLAS");
    ck_assert_ptr_nonnull(strstr(lg_cpu_gemm_summary(), info.provider));
}
END_TEST

START_TEST(test_bad_settings)
{
    /* _i 0: an unknown provider; 1: a bad thread count. Every product then
     * fails, and a graph's matmul says why. */
    if (_i == 0) setenv("LG_GEMM", "mkl", 1);
    else unsetenv("LG_GEMM"), setenv("LG_NUM_THREADS", "two", 1);
    lg_cpu_gemm_info info;
    ck_assert_int_eq(lg_cpu_gemm_info_get(&info), LG_ERR_INVALID_ARGUMENT);
    const char *want = _i == 0 ? "LG_GEMM='mkl'" : "LG_NUM_THREADS='two'";
    ck_assert_ptr_nonnull(strstr(lg_last_error(), want));
    ck_assert_ptr_nonnull(strstr(lg_cpu_gemm_summary(), want));
    lg_graph *g = lg_graph_new();
    lg_value a = lg_input(g, "a", LG_F32, lg_shape_of(2, 2, 3)), w = lg_input(g, "w", LG_F32, lg_shape_of(2, 3, 4));
    lg_value y = lg_matmul(a, w, false, false);
    lg_tensor *ta = lg_test_tensor(LG_F32, lg_shape_of(2, 2, 3), NULL), *tw = lg_test_tensor(LG_F32, lg_shape_of(2, 3, 4), NULL);
    lg_feed feeds[] = {{a, ta}, {w, tw}};
    lg_tensor *out[1] = {NULL};
    ck_assert_int_eq(lg_graph_run(g, feeds, 2, &y, 1, out), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), want));
    ck_assert_ptr_null(out[0]);
    lg_tensor_free(ta), lg_tensor_free(tw);
    lg_graph_free(g);
}
END_TEST

START_TEST(test_threads_setting)
{
    unsetenv("LG_GEMM");
    setenv("LG_NUM_THREADS", "3", 1);
    lg_cpu_gemm_info info;
    ck_assert_msg(lg_cpu_gemm_info_get(&info) == LG_OK, "%s", lg_last_error());
    ck_assert_int_eq(info.threads, 3);
    ck_assert_int_eq(info.f64_threads, 3);
    ck_assert_ptr_nonnull(strstr(lg_cpu_gemm_summary(), "3 threads"));
}
END_TEST

/* Without LG_GEMM: oneDNN exactly when OpenBLAS's core is for an older
 * instruction set than the CPU's (include/graph/cpu.h). */
START_TEST(test_rule)
{
    unsetenv("LG_GEMM"), unsetenv("LG_NUM_THREADS");
    lg_cpu_gemm_info info;
    ck_assert_msg(lg_cpu_gemm_info_get(&info) == LG_OK, "%s", lg_last_error());
    static const struct {
        const char *core;
        int tier; /* 1 AVX, 2 AVX2, 3 AVX-512; unlisted: 0, SSE */
    } known[] = {{"SkylakeX", 3},    {"Cooperlake", 3}, {"SapphireRapids", 3}, {"Haswell", 2},
                 {"Zen", 2},         {"Sandybridge", 1}, {"Bulldozer", 1},     {"Piledriver", 1},
                 {"Steamroller", 1}, {"Excavator", 1}};
    __builtin_cpu_init();
    int have = __builtin_cpu_supports("avx512f")                                        ? 3
               : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 2
               : __builtin_cpu_supports("avx")                                     ? 1
                                                                                   : 0;
    int blas = 0;
    for (size_t i = 0; i < LG_ARRAY_LEN(known); i++)
        if (!strcasecmp(info.f64_core, known[i].core)) blas = known[i].tier;
#ifdef LG_HAVE_ONEDNN
    ck_assert_str_eq(info.provider, blas < have ? "onednn" : "openblas");
#else
    ck_assert_str_eq(info.provider, "openblas");
    if (blas < have) ck_assert_ptr_nonnull(strstr(info.reason, "this build has no onednn"));
#endif
    ck_assert_ptr_nonnull(strstr(info.reason, info.f64_core));
    ck_assert_int_ge(info.threads, 1);
}
END_TEST

static Suite *gemm_suite(void)
{
    Suite *s = suite_create("gemm");
    TCase *tc = tcase_create("providers");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_against_reference, 0, 2 * LG_GEMM_PROVIDER_COUNT);
    tcase_add_loop_test(tc, test_large_two_threads, 0, LG_GEMM_PROVIDER_COUNT);
    tcase_add_test(tc, test_threads_rule);
    tcase_add_test(tc, test_qr_one_thread);
    tcase_add_test(tc, test_unknown_provider);
    suite_add_tcase(s, tc);
    TCase *dec = tcase_create("decision");
    tcase_add_loop_test(dec, test_forced_provider, 0, 2);
    tcase_add_loop_test(dec, test_bad_settings, 0, 2);
    tcase_add_test(dec, test_threads_setting);
    tcase_add_test(dec, test_rule);
    suite_add_tcase(s, dec);
    return s;
}

int main(void) { return lg_check_run(gemm_suite()); }
