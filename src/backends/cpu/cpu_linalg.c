/*
 * cpu_linalg.c — matmul through the backend's GEMM (gemm.h: OpenBLAS or
 * oneDNN, threads decided there).
 *
 * A batched a [..., M, K] times a 2-D b folds the batch into M (one GEMM)
 * when a is not transposed; otherwise one GEMM per batch element.
 */
#include "backends/cpu/cpu.h"
#include "backends/cpu/gemm.h"

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
    lg_gemm_args g = {.trans_a = ta, .trans_b = tb, .m = m, .n = nn, .k = k, .lda = lda, .ldb = ldb, .ldc = nn};
    for (int64_t i = 0; i < batch; i++) {
        lg_status st = out[0].dtype == LG_F32
                           ? lg_gemm_f32(&g, 1.0f, (const float *)in[0].data + i * a_step,
                                         (const float *)in[1].data + i * b_step, 0.0f, (float *)out[0].data + i * c_step)
                           : lg_gemm_f64(&g, 1.0, (const double *)in[0].data + i * a_step,
                                         (const double *)in[1].data + i * b_step, 0.0,
                                         (double *)out[0].data + i * c_step);
        if (st) {
            char why[512];
            snprintf(why, sizeof why, "%s", lg_last_error());
            return lg_fail(st, "%s: %s", n->name, why);
        }
    }
    return LG_OK;
}

lg_status lg_cpu_gemm(lg_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const void *a,
                      int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc)
{
    if (m == 0 || n == 0) return LG_OK;
    lg_gemm_args g = {.trans_a = ta, .trans_b = tb, .m = m, .n = n, .k = k, .lda = lda, .ldb = ldb, .ldc = ldc};
    if (dt == LG_F32) return lg_gemm_f32(&g, (float)alpha, a, b, (float)beta, c);
    return lg_gemm_f64(&g, alpha, a, b, beta, c);
}
