/*
 * gemm_openblas.c — the OpenBLAS provider (cblas_sgemm/cblas_dgemm).
 *
 * OpenBLAS 0.3.21 has one process-wide thread count, so a call that wants
 * another count than the application's setting changes it for the call and
 * puts it back, under switch_lock: no other lg GEMM runs in between, and the
 * application finds its own setting whenever no lg GEMM is running. With a
 * pool of one thread (OPENBLAS_NUM_THREADS=1, the setting for applications
 * that run graphs on several threads) nothing is switched and nothing is
 * locked.
 *
 * A parallel region of the CPU backend (cpu_pool.h) pins the count to one
 * for its whole length instead (openblas_pin_one): it takes switch_lock
 * once, so its parts' one-thread calls take the unlocked path above at once,
 * and a call that wants more threads waits for the region's end. It always
 * locks, even when the count is already one: regions of different threads
 * must not overlap (gemm.h, lg_gemm_one_begin).
 */
#include <cblas.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>

#include "backends/cpu/gemm.h"
#include "backends/cpu/qr.h"

static pthread_mutex_t switch_lock = PTHREAD_MUTEX_INITIALIZER;

/* fork() waits until no thread holds switch_lock (a region, a switched
 * call), so a child never starts with it held by a thread it does not
 * have: its first region would wait forever. */
static void fork_prepare(void) { pthread_mutex_lock(&switch_lock); }
static void fork_release(void) { pthread_mutex_unlock(&switch_lock); }
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static void register_fork(void) { pthread_atfork(fork_prepare, fork_release, fork_release); }

static void lock_switch(void)
{
    pthread_once(&fork_once, register_fork);
    pthread_mutex_lock(&switch_lock);
}

static const char *openblas_core(void) { return openblas_get_corename(); }

static int openblas_threads(void) { return openblas_get_num_threads(); }

static enum CBLAS_TRANSPOSE op(bool t) { return t ? CblasTrans : CblasNoTrans; }

/* cblas takes int dimensions. */
static lg_status check_dims(const lg_gemm_args *g)
{
    const int64_t d[] = {g->m, g->n, g->k, g->lda, g->ldb, g->ldc};
    for (int i = 0; i < 6; i++)
        if (d[i] > INT_MAX)
            return lg_fail(LG_ERR_SHAPE, "GEMM %lld x %lld x %lld (ld %lld, %lld, %lld): OpenBLAS takes at most %d",
                           (long long)g->m, (long long)g->n, (long long)g->k, (long long)g->lda, (long long)g->ldb,
                           (long long)g->ldc, INT_MAX);
    return LG_OK;
}

/* Runs one call with `threads` OpenBLAS threads (see the overview). */
#define WITH_THREADS(threads, call)                                                                            \
    do {                                                                                                       \
        if ((threads) == 1 && openblas_get_num_threads() == 1) {                                               \
            call;                                                                                              \
            break;                                                                                             \
        }                                                                                                      \
        lock_switch();                                                                                         \
        int app = openblas_get_num_threads();                                                                  \
        if ((threads) != app) openblas_set_num_threads(threads);                                               \
        call;                                                                                                  \
        if ((threads) != app) openblas_set_num_threads(app);                                                   \
        pthread_mutex_unlock(&switch_lock);                                                                    \
    } while (0)

/* The application's count while pinned (under switch_lock). */
static int pinned_app;

static void openblas_pin_one(bool on)
{
    if (on) {
        lock_switch();
        pinned_app = openblas_get_num_threads();
        if (pinned_app != 1) openblas_set_num_threads(1);
    } else {
        if (pinned_app != 1) openblas_set_num_threads(pinned_app);
        pthread_mutex_unlock(&switch_lock);
    }
}

static lg_status openblas_sgemm(const lg_gemm_args *g, float alpha, const float *a, const float *b, float beta,
                                float *c, int threads)
{
    lg_status st = check_dims(g);
    if (st) return st;
    WITH_THREADS(threads, cblas_sgemm(CblasRowMajor, op(g->trans_a), op(g->trans_b), (int)g->m, (int)g->n,
                                      (int)g->k, alpha, a, (int)g->lda, b, (int)g->ldb, beta, c, (int)g->ldc));
    return LG_OK;
}

static lg_status openblas_dgemm(const lg_gemm_args *g, double alpha, const double *a, const double *b,
                                double beta, double *c, int threads)
{
    lg_status st = check_dims(g);
    if (st) return st;
    WITH_THREADS(threads, cblas_dgemm(CblasRowMajor, op(g->trans_a), op(g->trans_b), (int)g->m, (int)g->n,
                                      (int)g->k, alpha, a, (int)g->lda, b, (int)g->ldb, beta, c, (int)g->ldc));
    return LG_OK;
}

const lg_gemm_ops lg_gemm_openblas = {
    .name = "openblas",
    .core = openblas_core,
    .default_threads = openblas_threads,
    .sgemm = openblas_sgemm,
    .dgemm = openblas_dgemm,
    .pin_one = openblas_pin_one,
};

/* ---- the Q of a QR (qr.h) ------------------------------------------------- */

/* LAPACK's Householder QR, in OpenBLAS (meson checks it is there). */
void dgeqrf_(const int *m, const int *n, double *a, const int *lda, double *tau, double *work, const int *lwork,
             int *info);
void dorgqr_(const int *m, const int *n, const int *k, double *a, const int *lda, const double *tau, double *work,
             const int *lwork, int *info);

lg_status lg_cpu_qr_q(double *q, int64_t m, int64_t n, bool *full_rank)
{
    if (m > INT_MAX / 2 || n > INT_MAX / 2)
        return lg_fail(LG_ERR_SHAPE, "QR of %lld x %lld: past LAPACK's int", (long long)m, (long long)n);
    int M = (int)m, N = (int)n, info = 0, lwork = -1;
    double qr_size = 0, q_size = 0;
    dgeqrf_(&M, &N, q, &M, NULL, &qr_size, &lwork, &info); /* workspace queries */
    dorgqr_(&M, &N, &N, q, &M, NULL, &q_size, &lwork, &info);
    lwork = (int)(qr_size > q_size ? qr_size : q_size);
    double *tau = malloc((size_t)n * sizeof *tau), *work = malloc((size_t)(lwork > 1 ? lwork : 1) * sizeof *work);
    signed char *sign = malloc((size_t)n);
    lg_status st = tau && work && sign ? LG_OK : lg_fail(LG_ERR_OUT_OF_MEMORY, "QR of %lld x %lld: out of memory",
                                                         (long long)m, (long long)n);
    if (!st) WITH_THREADS(1, dgeqrf_(&M, &N, q, &M, tau, work, &lwork, &info));
    *full_rank = true;
    for (int64_t j = 0; !st && !info && j < n; j++) {
        double r = q[j * m + j];
        *full_rank = *full_rank && r != 0;
        sign[j] = r < 0 ? -1 : 1;
    }
    if (!st && !info) WITH_THREADS(1, dorgqr_(&M, &N, &N, q, &M, tau, work, &lwork, &info));
    if (!st && info)
        st = lg_fail(LG_ERR_RUNTIME, "QR of %lld x %lld: LAPACK reports error %d", (long long)m, (long long)n, info);
    for (int64_t j = 0; !st && j < n; j++)
        if (sign[j] < 0)
            for (int64_t i = 0; i < m; i++) q[j * m + i] = -q[j * m + i];
    free(tau), free(work), free(sign);
    return st;
}
