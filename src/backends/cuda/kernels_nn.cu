/*
 * kernels_nn.cu — softmax, log_softmax and the cross-entropy terms, with
 * cpu_nn.c's arithmetic: one thread per distribution (or row of logits),
 * max-shifted. Fine for class counts up to a few thousand; a block per row
 * would pay for larger ones.
 */
#include <math.h>

#include "backends/cuda/kernels_common.cuh"

using namespace lg_cuda;

template <typename T>
__global__ void softmax_kernel(int log_, int64_t outer, int64_t len, int64_t inner, const T *x, T *y)
{
    LG_CUDA_FOR(k, outer * inner)
    {
        int64_t o = k / inner, i = k % inner;
        const T *xv = x + o * len * inner + i;
        T *yv = y + o * len * inner + i;
        T m = xv[0], sum = 0;
        for (int64_t j = 1; j < len; j++) m = xv[j * inner] > m ? xv[j * inner] : m;
        for (int64_t j = 0; j < len; j++) sum += exp(xv[j * inner] - m);
        T lse = m + log(sum);
        for (int64_t j = 0; j < len; j++) yv[j * inner] = log_ ? xv[j * inner] - lse : exp(xv[j * inner] - lse);
    }
}

extern "C" cudaError_t lg_cuda_launch_softmax(cudaStream_t s, lg_dtype dt, int log_, int64_t outer, int64_t len,
                                              int64_t inner, const void *x, void *y)
{
    if (outer * inner * len == 0) return cudaSuccess;
    unsigned g = blocks_for(outer * inner);
    if (dt == LG_F32) softmax_kernel<float><<<g, threads, 0, s>>>(log_, outer, len, inner, (const float *)x, (float *)y);
    else softmax_kernel<double><<<g, threads, 0, s>>>(log_, outer, len, inner, (const double *)x, (double *)y);
    return cudaGetLastError();
}

template <typename T> __global__ void sigmoid_xent_kernel(int64_t n, const T *x, const T *z, T *y)
{
    LG_CUDA_FOR(i, n) y[i] = (x[i] > 0 ? x[i] : T(0)) - x[i] * z[i] + log1p(exp(-fabs(x[i])));
}

extern "C" cudaError_t lg_cuda_launch_sigmoid_xent(cudaStream_t s, lg_dtype dt, int64_t n, const void *x,
                                                   const void *z, void *y)
{
    if (n == 0) return cudaSuccess;
    if (dt == LG_F32) sigmoid_xent_kernel<float><<<blocks_for(n), threads, 0, s>>>(n, (const float *)x, (const float *)z, (float *)y);
    else sigmoid_xent_kernel<double><<<blocks_for(n), threads, 0, s>>>(n, (const double *)x, (const double *)z, (double *)y);
    return cudaGetLastError();
}

template <typename T>
__global__ void softmax_xent_kernel(int64_t rows, int64_t classes, const T *x, const T *z, const int32_t *labels, T *y,
                                    int32_t *err, int32_t site)
{
    LG_CUDA_FOR(r, rows)
    {
        const T *xr = x + r * classes;
        T m = xr[0], sum = 0;
        for (int64_t j = 1; j < classes; j++) m = xr[j] > m ? xr[j] : m;
        for (int64_t j = 0; j < classes; j++) sum += exp(xr[j] - m);
        T lse = m + log(sum);
        if (z) {
            const T *zr = z + r * classes;
            T acc = 0;
            for (int64_t j = 0; j < classes; j++) acc += zr[j] * (lse - xr[j]);
            y[r] = acc;
        } else if (labels[r] < 0 || labels[r] >= classes) {
            record_error(err, site, labels[r], classes);
            y[r] = T(NAN);
        } else {
            y[r] = lse - xr[labels[r]];
        }
    }
}

extern "C" cudaError_t lg_cuda_launch_softmax_xent(cudaStream_t s, lg_dtype dt, int64_t rows, int64_t classes,
                                                   const void *x, const void *z, const int32_t *labels, void *y,
                                                   int32_t *err, int32_t site)
{
    if (rows == 0) return cudaSuccess;
    unsigned g = blocks_for(rows);
    if (dt == LG_F32)
        softmax_xent_kernel<float><<<g, threads, 0, s>>>(rows, classes, (const float *)x, (const float *)z, labels, (float *)y, err, site);
    else
        softmax_xent_kernel<double><<<g, threads, 0, s>>>(rows, classes, (const double *)x, (const double *)z, labels, (double *)y, err, site);
    return cudaGetLastError();
}
