/*
 * gemm.c — which provider serves each product, and with how many threads.
 *
 * The decision is made once per process, at the first product, under
 * pthread_once, and is read-only afterwards; the rule is in
 * include/graph/cpu.h. This file is the only one that knows which providers
 * were built.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backends/cpu/gemm.h"
#include "graph/cpu.h"

static const lg_gemm_ops *const providers[LG_GEMM_PROVIDER_COUNT] = {
    [LG_GEMM_OPENBLAS] = &lg_gemm_openblas,
#ifdef LG_HAVE_ONEDNN
    [LG_GEMM_ONEDNN] = &lg_gemm_onednn,
#endif
};
_Static_assert(LG_ARRAY_LEN(providers) == LG_GEMM_PROVIDER_COUNT, "a provider without an entry");

static const char *const provider_names[LG_GEMM_PROVIDER_COUNT] = {
    [LG_GEMM_OPENBLAS] = "openblas",
    [LG_GEMM_ONEDNN] = "onednn",
};
_Static_assert(LG_ARRAY_LEN(provider_names) == LG_GEMM_PROVIDER_COUNT, "a provider without a name");

/* Instruction-set tiers, for comparing OpenBLAS's kernels with the CPU. */
typedef enum isa_tier { TIER_SSE, TIER_AVX, TIER_AVX2, TIER_AVX512, TIER_COUNT } isa_tier;
static const char *const tier_names[TIER_COUNT] = {"SSE", "AVX", "AVX2", "AVX-512"};

static struct {
    pthread_once_t once;
    lg_status status; /* LG_OK, or why every product fails */
    char why[256];    /* the reason for the choice, or the failure */
    char summary[512];
    lg_gemm_provider f32;
    int f32_threads, f64_threads;
} state = {.once = PTHREAD_ONCE_INIT};

static isa_tier cpu_tier(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return TIER_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return TIER_AVX2;
    if (__builtin_cpu_supports("avx")) return TIER_AVX;
    return TIER_SSE;
}

/* The instruction set an OpenBLAS core name's kernels use; names not listed
 * (the SSE-era ones and any unknown) count as SSE. */
static isa_tier openblas_tier(const char *core)
{
    static const struct {
        const char *name;
        isa_tier tier;
    } known[] = {
        {"SkylakeX", TIER_AVX512},  {"Cooperlake", TIER_AVX512}, {"SapphireRapids", TIER_AVX512},
        {"Haswell", TIER_AVX2},     {"Zen", TIER_AVX2},          {"Sandybridge", TIER_AVX},
        {"Bulldozer", TIER_AVX},    {"Piledriver", TIER_AVX},    {"Steamroller", TIER_AVX},
        {"Excavator", TIER_AVX},
    };
    for (size_t i = 0; i < LG_ARRAY_LEN(known); i++)
        if (core && !strcasecmp(core, known[i].name)) return known[i].tier;
    return TIER_SSE;
}

/* A positive thread count from the environment; 0 when unset. */
static lg_status env_threads(const char *var, int *out)
{
    const char *s = getenv(var);
    *out = 0;
    if (!s || !*s) return LG_OK;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 1 || v > 4096)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s='%s': expected a thread count from 1 to 4096", var, s);
    *out = (int)v;
    return LG_OK;
}

static lg_status choose_provider(void)
{
    const char *forced = getenv("LG_GEMM");
    if (forced && *forced) {
        for (int p = 0; p < LG_GEMM_PROVIDER_COUNT; p++) {
            if (strcasecmp(forced, provider_names[p])) continue;
            if (!providers[p])
                return lg_fail(LG_ERR_UNSUPPORTED, "LG_GEMM=%s: this build has no %s (meson option %s)", forced,
                               provider_names[p], provider_names[p]);
            state.f32 = (lg_gemm_provider)p;
            snprintf(state.why, sizeof state.why, "LG_GEMM=%s", forced);
            return LG_OK;
        }
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "LG_GEMM='%s': expected openblas or onednn", forced);
    }
    const char *core = lg_gemm_openblas.core();
    isa_tier have = cpu_tier(), blas = openblas_tier(core);
    state.f32 = LG_GEMM_OPENBLAS;
    if (blas >= have) {
        snprintf(state.why, sizeof state.why, "OpenBLAS's %s kernels use the CPU's best instruction set (%s)", core,
                 tier_names[have]);
    } else if (providers[LG_GEMM_ONEDNN]) {
        state.f32 = LG_GEMM_ONEDNN;
        snprintf(state.why, sizeof state.why, "OpenBLAS fell back to its %s kernels (%s) on a CPU with %s", core,
                 tier_names[blas], tier_names[have]);
    } else {
        snprintf(state.why, sizeof state.why,
                 "OpenBLAS fell back to its %s kernels (%s) on a CPU with %s; this build has no onednn", core,
                 tier_names[blas], tier_names[have]);
    }
    return LG_OK;
}

static lg_status decide_status(void)
{
    lg_status st = choose_provider();
    if (st) return st;
    int lg_threads;
    if ((st = env_threads("LG_NUM_THREADS", &lg_threads))) return st;
    state.f32_threads = lg_threads ? lg_threads : providers[state.f32]->default_threads();
    state.f64_threads = lg_threads ? lg_threads : lg_gemm_openblas.default_threads();
    if (state.f32_threads < 1) state.f32_threads = 1;
    if (state.f64_threads < 1) state.f64_threads = 1;
    const lg_gemm_ops *f = providers[state.f32];
    snprintf(state.summary, sizeof state.summary, "GEMM: %s (%s), %d thread%s; f64: openblas (%s), %d thread%s; %s",
             f->name, f->core(), state.f32_threads, state.f32_threads == 1 ? "" : "s", lg_gemm_openblas.core(),
             state.f64_threads, state.f64_threads == 1 ? "" : "s", state.why);
    return LG_OK;
}

static void decide(void)
{
    state.status = decide_status();
    if (state.status) {
        snprintf(state.why, sizeof state.why, "%s", lg_last_error());
        snprintf(state.summary, sizeof state.summary, "GEMM: %s", state.why);
    }
}

static lg_status decided(void)
{
    pthread_once(&state.once, decide);
    if (state.status) return lg_fail(state.status, "%s", state.why);
    return LG_OK;
}

int lg_gemm_threads_for(int64_t m, int64_t n, int64_t k, int budget)
{
    double flops = 2.0 * (double)m * (double)n * (double)k;
    return flops < LG_GEMM_SMALL_FLOPS || budget < 1 ? 1 : budget;
}

lg_status lg_gemm_f32(const lg_gemm_args *g, float alpha, const float *a, const float *b, float beta, float *c)
{
    lg_status st = decided();
    if (st) return st;
    return providers[state.f32]->sgemm(g, alpha, a, b, beta, c, lg_gemm_threads_for(g->m, g->n, g->k, state.f32_threads));
}

lg_status lg_gemm_f64(const lg_gemm_args *g, double alpha, const double *a, const double *b, double beta,
                      double *c)
{
    lg_status st = decided();
    if (st) return st;
    return lg_gemm_openblas.dgemm(g, alpha, a, b, beta, c, lg_gemm_threads_for(g->m, g->n, g->k, state.f64_threads));
}

int lg_gemm_budget(lg_dtype dt)
{
    if (decided()) return 1;
    return dt == LG_F64 ? state.f64_threads : state.f32_threads;
}

/* Only OpenBLAS has a process-wide count to pin (oneDNN's is per calling
 * thread); f64 always runs on it, so it is pinned whatever serves f32. */
void lg_gemm_one_begin(void) { lg_gemm_openblas.pin_one(true); }

void lg_gemm_one_end(void) { lg_gemm_openblas.pin_one(false); }

lg_status lg_gemm_f32_one(const lg_gemm_args *g, float alpha, const float *a, const float *b, float beta, float *c)
{
    lg_status st = decided();
    return st ? st : providers[state.f32]->sgemm(g, alpha, a, b, beta, c, 1);
}

lg_status lg_gemm_f64_one(const lg_gemm_args *g, double alpha, const double *a, const double *b, double beta,
                          double *c)
{
    lg_status st = decided();
    return st ? st : lg_gemm_openblas.dgemm(g, alpha, a, b, beta, c, 1);
}

static lg_status provider_for(lg_gemm_provider p, bool f64, const lg_gemm_ops **out)
{
    if ((int)p < 0 || p >= LG_GEMM_PROVIDER_COUNT)
        return lg_fail(LG_ERR_UNSUPPORTED, "GEMM provider %d: no such provider", (int)p);
    if (!providers[p]) return lg_fail(LG_ERR_UNSUPPORTED, "this build has no %s", provider_names[p]);
    if (f64 && !providers[p]->dgemm) return lg_fail(LG_ERR_UNSUPPORTED, "%s has no f64 GEMM", provider_names[p]);
    *out = providers[p];
    return LG_OK;
}

lg_status lg_gemm_f32_with(lg_gemm_provider p, int threads, const lg_gemm_args *g, float alpha, const float *a,
                           const float *b, float beta, float *c)
{
    const lg_gemm_ops *ops = NULL;
    lg_status st = provider_for(p, false, &ops);
    return st ? st : ops->sgemm(g, alpha, a, b, beta, c, threads < 1 ? 1 : threads);
}

lg_status lg_gemm_f64_with(lg_gemm_provider p, int threads, const lg_gemm_args *g, double alpha, const double *a,
                           const double *b, double beta, double *c)
{
    const lg_gemm_ops *ops = NULL;
    lg_status st = provider_for(p, true, &ops);
    return st ? st : ops->dgemm(g, alpha, a, b, beta, c, threads < 1 ? 1 : threads);
}

lg_status lg_cpu_gemm_info_get(lg_cpu_gemm_info *out)
{
    if (!out) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_cpu_gemm_info_get: out is NULL");
    lg_status st = decided();
    if (st) return st;
    *out = (lg_cpu_gemm_info){
        .provider = providers[state.f32]->name,
        .core = providers[state.f32]->core(),
        .threads = state.f32_threads,
        .f64_provider = lg_gemm_openblas.name,
        .f64_core = lg_gemm_openblas.core(),
        .f64_threads = state.f64_threads,
        .reason = state.why,
    };
    return LG_OK;
}

const char *lg_cpu_gemm_summary(void)
{
    pthread_once(&state.once, decide);
    return state.summary;
}
