/*
 * cpu_linalg.c — matmul through OpenBLAS sgemm/dgemm.
 *
 * A batched a [..., M, K] times a 2-D b folds the batch into M (one GEMM)
 * when a is not transposed; otherwise one GEMM per batch element.
 *
 * Small GEMMs (a recurrent step's [B, u] x [u, 4u]) run on one OpenBLAS
 * thread: waking the pool costs more than it saves there, and its threads
 * spin against ours. Larger ones use the pool's full size.
 */
#include <cblas.h>

#include "backends/cpu/cpu.h"

enum { SMALL_GEMM_FLOPS = 1 << 24 }; /* 2 m n k below this: one thread */

static void gemm_threads(int64_t m, int64_t n, int64_t k)
{
    static int pool = 0, current = 0; /* OpenBLAS's own setting is process-wide too */
    if (!pool) pool = current = openblas_get_num_threads();
    int want = 2 * m * n * k < SMALL_GEMM_FLOPS ? 1 : pool;
    if (want != current) openblas_set_num_threads(current = want);
}

lg_status lg_cpu_matmul(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    lg_shape a = in[0].shape, b = in[1].shape, c = out[0].shape;
    bool ta = n->attrs.trans_a, tb = n->attrs.trans_b;
    int64_t m = c.dims[c.rank - 2], nn = c.dims[c.rank - 1];
    int64_t k = a.dims[a.rank - (ta ? 2 : 1)];
    int64_t batch = lg_shape_numel(c) / (m * nn);
    int64_t lda = ta ? m : k, ldb = tb ? k : nn;
    int64_t a_step = m * k, b_step = b.rank > 2 ? k * nn : 0, c_step = m * nn;
    if (b.rank == 2 && !ta) { /* fold the batch into M */
        m *= batch;
        batch = 1;
    }
    enum CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans, opb = tb ? CblasTrans : CblasNoTrans;
    gemm_threads(m, nn, k);
    for (int64_t i = 0; i < batch; i++) {
        if (out[0].dtype == LG_F32)
            cblas_sgemm(CblasRowMajor, opa, opb, (int)m, (int)nn, (int)k, 1.0f, (const float *)in[0].data + i * a_step,
                        (int)lda, (const float *)in[1].data + i * b_step, (int)ldb, 0.0f,
                        (float *)out[0].data + i * c_step, (int)nn);
        else
            cblas_dgemm(CblasRowMajor, opa, opb, (int)m, (int)nn, (int)k, 1.0, (const double *)in[0].data + i * a_step,
                        (int)lda, (const double *)in[1].data + i * b_step, (int)ldb, 0.0,
                        (double *)out[0].data + i * c_step, (int)nn);
    }
    (void)b;
    return LG_OK;
}

void lg_cpu_gemm(lg_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const void *a,
                 int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc)
{
    if (m == 0 || n == 0) return;
    enum CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans, opb = tb ? CblasTrans : CblasNoTrans;
    gemm_threads(m, n, k);
    if (dt == LG_F32)
        cblas_sgemm(CblasRowMajor, opa, opb, (int)m, (int)n, (int)k, (float)alpha, a, (int)lda, b, (int)ldb,
                    (float)beta, c, (int)ldc);
    else
        cblas_dgemm(CblasRowMajor, opa, opb, (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c,
                    (int)ldc);
}
