/*
 * gemm.c — single-precision GEMM speed of each provider (GF/s), on the
 * recurrent benchmarks' shapes and the README main job's step products.
 *
 *     bench/gemm [--repeats N] [--only openblas|onednn]
 *
 * Prints a Markdown table: one row per shape, columns OpenBLAS (under the
 * core this process loaded: set OPENBLAS_CORETYPE before it starts to force
 * another; bench/gemm.sh does) and oneDNN, each with 1 and 2 threads. Each
 * cell is the median of --repeats timings (default 5) of about 40 ms each,
 * after one warm-up call (oneDNN JIT-compiles at its first call per shape).
 * Row-major; A and B are filled with numbers in [-1, 1).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/cpu/gemm.h"
#include "graph/cpu.h"

typedef struct shape {
    int64_t m, n, k;
    bool ta, tb;
    const char *what;
} shape;

static const shape shapes[] = {
    {64, 1024, 512, false, false, "issue 15"},
    {6400, 1024, 256, false, false, "issue 15"},
    {64, 1024, 256, false, false, "issue 15"},
    {256, 128, 46, false, false, "issue 15"},
    {64, 256, 92, false, false, "issue 15"},
    {30720, 128, 14, false, false, "issue 15"},
    {1024, 1024, 1024, false, false, "issue 15"},
    {64, 256, 64, false, false, "main job h W_hh"},
    {64, 256, 28, false, false, "main job x W"},
    {64, 64, 256, false, true, "main job dG W_hh^T"},
    {64, 256, 64, true, false, "main job h^T dG"},
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median GF/s of `repeats` timings, or a negative number on failure. */
static double measure(lg_gemm_provider p, int threads, const shape *s, const float *a, const float *b, float *c,
                      int repeats)
{
    lg_gemm_args g = {.trans_a = s->ta, .trans_b = s->tb, .m = s->m, .n = s->n, .k = s->k,
                      .lda = s->ta ? s->m : s->k, .ldb = s->tb ? s->k : s->n, .ldc = s->n};
    double flops = 2.0 * (double)s->m * (double)s->n * (double)s->k;
    if (lg_gemm_f32_with(p, threads, &g, 1.0f, a, b, 0.0f, c)) return -1;
    double t0 = now();
    int calls = 0;
    while (now() - t0 < 0.01) lg_gemm_f32_with(p, threads, &g, 1.0f, a, b, 0.0f, c), calls++;
    int per = (int)(calls * 4) + 1; /* about 40 ms */
    double *gfs = malloc(sizeof *gfs * (size_t)repeats);
    if (!gfs) return -1;
    for (int r = 0; r < repeats; r++) {
        t0 = now();
        for (int i = 0; i < per; i++) lg_gemm_f32_with(p, threads, &g, 1.0f, a, b, 0.0f, c);
        gfs[r] = flops * per / (now() - t0) * 1e-9;
    }
    qsort(gfs, (size_t)repeats, sizeof *gfs, cmp_double);
    double med = gfs[repeats / 2];
    free(gfs);
    return med;
}

int main(int argc, char **argv)
{
    int repeats = 5;
    int first = 0, last = LG_GEMM_PROVIDER_COUNT - 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--repeats") && i + 1 < argc) {
            repeats = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            i++;
            if (!strcmp(argv[i], "openblas")) first = last = LG_GEMM_OPENBLAS;
            else if (!strcmp(argv[i], "onednn")) first = last = LG_GEMM_ONEDNN;
            else first = -1;
        } else {
            fprintf(stderr, "usage: gemm [--repeats N] [--only openblas|onednn]\n");
            return 2;
        }
    }
    if (first < 0) {
        fprintf(stderr, "gemm: --only takes openblas or onednn\n");
        return 2;
    }
    if (repeats < 1 || repeats > 1000) {
        fprintf(stderr, "gemm: --repeats takes 1 to 1000\n");
        return 2;
    }
    size_t most = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const shape *s = &shapes[i];
        size_t e[] = {(size_t)(s->m * s->k), (size_t)(s->k * s->n), (size_t)(s->m * s->n)};
        for (int j = 0; j < 3; j++)
            if (e[j] > most) most = e[j];
    }
    float *a = malloc(most * sizeof *a), *b = malloc(most * sizeof *b), *c = malloc(most * sizeof *c);
    if (!a || !b || !c) {
        fprintf(stderr, "gemm: out of memory\n");
        return 1;
    }
    unsigned x = 12345;
    for (size_t i = 0; i < most; i++) {
        x = x * 1664525u + 1013904223u, a[i] = (float)(x >> 8) / 8388608.0f - 1.0f;
        x = x * 1664525u + 1013904223u, b[i] = (float)(x >> 8) / 8388608.0f - 1.0f;
    }
    lg_cpu_gemm_info info;
    const char *blas = lg_cpu_gemm_info_get(&info) ? "?" : info.f64_core;
    printf("%s\n\n", lg_cpu_gemm_summary());
    printf("| M x N x K | op | shape from |");
    for (int p = first; p <= last; p++)
        for (int t = 1; t <= 2; t++) printf(" %s%s, %d t |", p == LG_GEMM_OPENBLAS ? "OpenBLAS " : "oneDNN",
                                           p == LG_GEMM_OPENBLAS ? blas : "", t);
    printf("\n|---|---|---|");
    for (int p = first; p <= last; p++) printf("---:|---:|");
    printf("\n");
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const shape *s = &shapes[i];
        printf("| %lld x %lld x %lld | %c%c | %s |", (long long)s->m, (long long)s->n, (long long)s->k,
               s->ta ? 'T' : 'N', s->tb ? 'T' : 'N', s->what);
        for (int p = first; p <= last; p++)
            for (int t = 1; t <= 2; t++) {
                double g = measure((lg_gemm_provider)p, t, s, a, b, c, repeats);
                if (g < 0) printf(" n/a |");
                else printf(" %.1f |", g);
            }
        printf("\n");
        fflush(stdout);
    }
    free(a), free(b), free(c);
    return 0;
}
