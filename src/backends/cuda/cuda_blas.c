/*
 * cuda_blas.c — matmul through cuBLAS, with cpu_linalg.c's shapes and
 * row-major convention.
 *
 * cuBLAS is column-major: a row-major C [m, n] = op(A) op(B) is the
 * column-major C^T [n, m] = op(B)^T op(A)^T, so the call swaps the operands
 * and passes n, m for m, n; the leading dimensions stay the row-major ones.
 * A batched a [..., M, K] with a 2-D b folds the batch into M (one GEMM)
 * when a is not transposed, as on the CPU; otherwise one strided-batched
 * GEMM (b's stride 0 when it is 2-D). f32 computes in FP32 unless the
 * context allows TF32; f64 in FP64.
 */
#include "backends/cuda/cuda.h"

static lg_status blas_status(const lg_cuda_ctx *c, cublasStatus_t s, const lg_node *n, int64_t m, int64_t nn, int64_t k)
{
    if (s == CUBLAS_STATUS_SUCCESS) return LG_OK;
    return lg_fail(s == CUBLAS_STATUS_ALLOC_FAILED ? LG_ERR_OUT_OF_MEMORY : LG_ERR_RUNTIME,
                   "matmul '%s': cublasGemmStridedBatchedEx (m %lld, n %lld, k %lld): %s: %s", n->name, (long long)m,
                   (long long)nn, (long long)k, c->cublas.status_name(s), c->cublas.status_string(s));
}

lg_status lg_cuda_matmul(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    lg_shape a = in[0].shape, b = in[1].shape, cs = out[0].shape;
    bool ta = n->attrs.trans_a, tb = n->attrs.trans_b;
    int64_t m = cs.dims[cs.rank - 2], nn = cs.dims[cs.rank - 1];
    int64_t k = a.dims[a.rank - (ta ? 2 : 1)];
    int64_t batch = lg_shape_numel(cs) / (m * nn);
    int64_t lda = ta ? m : k, ldb = tb ? k : nn;
    int64_t a_step = m * k, b_step = b.rank > 2 ? k * nn : 0, c_step = m * nn;
    if (b.rank == 2 && !ta) { /* fold the batch into M */
        m *= batch;
        batch = 1;
    }
    if (m > INT32_MAX || nn > INT32_MAX || k > INT32_MAX || batch > INT32_MAX)
        return lg_fail(LG_ERR_UNSUPPORTED, "matmul '%s': m %lld, n %lld, k %lld exceed cuBLAS's int range", n->name,
                       (long long)m, (long long)nn, (long long)k);
    if (m == 0 || nn == 0) return LG_OK;
    if (k == 0) return lg_cuda_memset0(c, out[0].data, (size_t)lg_shape_numel(cs) * lg_dtype_size(out[0].dtype));
    cublasOperation_t op_a = ta ? CUBLAS_OP_T : CUBLAS_OP_N, op_b = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    bool f32 = out[0].dtype == LG_F32;
    float alpha_f = 1, beta_f = 0;
    double alpha_d = 1, beta_d = 0;
    cudaDataType_t t = f32 ? CUDA_R_32F : CUDA_R_64F;
    cublasComputeType_t ct = !f32 ? CUBLAS_COMPUTE_64F : c->allow_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    cublasStatus_t s = c->cublas.gemm_strided_batched(
        c->blas, op_b, op_a, (int)nn, (int)m, (int)k, f32 ? (const void *)&alpha_f : (const void *)&alpha_d,
        in[1].data, t, (int)ldb, b_step, in[0].data, t, (int)lda, a_step, f32 ? (const void *)&beta_f : (const void *)&beta_d,
        out[0].data, t, (int)nn, c_step, (int)batch, ct, CUBLAS_GEMM_DEFAULT);
    return blas_status(c, s, n, m, nn, k);
}
