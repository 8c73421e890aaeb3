/*
 * gemm.h — the CPU backend's one way to multiply matrices. Private to the
 * library.
 *
 * C [m, n] = alpha op(A) [m, k] op(B) [k, n] + beta C, row-major, op(X) = X
 * or X^T, leading dimensions in elements (as cblas with CblasRowMajor).
 *
 * Several providers sit behind it (gemm_openblas.c, gemm_onednn.c); gemm.c
 * decides once per process, at first use, which one serves f32 and how many
 * threads each call gets. The rule is documented in include/graph/cpu.h.
 * f64 always runs on OpenBLAS (oneDNN has no dgemm).
 *
 * Every function here is safe to call from several threads at once.
 */
#ifndef LG_GEMM_H
#define LG_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "graph/internal.h"

typedef enum lg_gemm_provider {
    LG_GEMM_OPENBLAS,
    LG_GEMM_ONEDNN,
    LG_GEMM_PROVIDER_COUNT
} lg_gemm_provider;

typedef struct lg_gemm_args {
    bool trans_a, trans_b;
    int64_t m, n, k;
    int64_t lda, ldb, ldc;
} lg_gemm_args;

/* One provider's kernels (gemm_<name>.c). dgemm is NULL where the provider
 * has none. threads: how many threads this call uses (>= 1), set for the
 * call only (each provider's file says how). Errors: LG_ERR_SHAPE for dims
 * the provider cannot take, LG_ERR_OUT_OF_MEMORY and LG_ERR_RUNTIME for its
 * own failures. */
typedef struct lg_gemm_ops {
    const char *name;
    /* What the provider runs on: OpenBLAS's core name, oneDNN's JIT ISA. */
    const char *(*core)(void);
    /* Threads the provider would use if left alone: its pool, or OpenMP's
     * limit for the calling thread. */
    int (*default_threads)(void);
    lg_status (*sgemm)(const lg_gemm_args *g, float alpha, const float *a, const float *b, float beta, float *c,
                       int threads);
    lg_status (*dgemm)(const lg_gemm_args *g, double alpha, const double *a, const double *b, double beta,
                       double *c, int threads);
    /* Between pin_one(true) and pin_one(false), calls with threads = 1 from
     * any number of threads at once run without switching or locking
     * anything; NULL where that holds anyway (oneDNN: a per-thread count). */
    void (*pin_one)(bool on);
} lg_gemm_ops;

extern const lg_gemm_ops lg_gemm_openblas;
#ifdef LG_HAVE_ONEDNN
extern const lg_gemm_ops lg_gemm_onednn;
#endif

/* The decided provider and threads. LG_ERR_INVALID_ARGUMENT when LG_GEMM or
 * LG_NUM_THREADS holds something unusable, LG_ERR_UNSUPPORTED when LG_GEMM
 * names a provider this build lacks (the message says which), and the
 * provider's errors. Every CPU kernel that multiplies matrices calls these
 * (beta = 1 accumulates into C). */
lg_status lg_gemm_f32(const lg_gemm_args *g, float alpha, const float *a, const float *b, float beta, float *c);
lg_status lg_gemm_f64(const lg_gemm_args *g, double alpha, const double *a, const double *b, double beta,
                      double *c);

/* A named provider with a given thread count, for tests and bench/gemm.c:
 * LG_ERR_UNSUPPORTED when it is not built or has no kernel for the dtype. */
lg_status lg_gemm_f32_with(lg_gemm_provider p, int threads, const lg_gemm_args *g, float alpha, const float *a,
                           const float *b, float beta, float *c);
lg_status lg_gemm_f64_with(lg_gemm_provider p, int threads, const lg_gemm_args *g, double alpha, const double *a,
                           const double *b, double beta, double *c);

/* The thread budget for dt's GEMMs (LG_NUM_THREADS, or the provider's
 * own setting at the decision); 1 when the decision failed (the next
 * product reports why). */
int lg_gemm_budget(lg_dtype dt);

/* One-thread products for the parts of a parallel region (cpu_pool.h):
 * the decided provider on one thread. Between lg_gemm_one_begin and
 * lg_gemm_one_end, several threads may call these at once without
 * serialising on OpenBLAS's thread-count switch; other lg GEMMs that want
 * more threads wait for lg_gemm_one_end. Errors as lg_gemm_f32/f64.
 * lg_gemm_one_begin takes a process-wide lock, whatever the provider, that
 * lg_gemm_one_end releases: begin/end pairs of different threads never
 * overlap, and cpu_pool.c relies on that to keep regions apart (a second
 * begin on the same thread deadlocks). */
void lg_gemm_one_begin(void);
void lg_gemm_one_end(void);
lg_status lg_gemm_f32_one(const lg_gemm_args *g, float alpha, const float *a, const float *b, float beta, float *c);
lg_status lg_gemm_f64_one(const lg_gemm_args *g, double alpha, const double *a, const double *b, double beta,
                          double *c);

/* Threads for one GEMM of this shape, given the thread budget: one below
 * LG_GEMM_SMALL_FLOPS (waking a pool costs more than it saves there), the
 * budget above. */
enum { LG_GEMM_SMALL_FLOPS = 1 << 24 }; /* 2 m n k */
int lg_gemm_threads_for(int64_t m, int64_t n, int64_t k, int budget);

#endif
