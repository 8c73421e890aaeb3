/*
 * kernels_optim.cu — the optimizer updates (src/optim/sgd.c, adam.c,
 * rmsprop.c), gradient clipping (clip.c) and the RNN weight packing maps,
 * as flat loops over the contiguous blocks.
 */
#include <math.h>

#include "backends/cuda/kernels_common.cuh"

using namespace lg_cuda;

template <typename T> __global__ void sgd_kernel(int64_t n, T *p, const T *g, T *m, T lr, T mu, int mode)
{
    LG_CUDA_FOR(i, n)
    {
        if (mode == 0) {
            p[i] -= lr * g[i];
        } else {
            m[i] = mu * m[i] - lr * g[i];
            p[i] += mode == 2 ? mu * m[i] - lr * g[i] : m[i];
        }
    }
}

extern "C" cudaError_t lg_cuda_launch_sgd(cudaStream_t s, lg_dtype dt, int64_t n, void *p, const void *g, void *m,
                                          double lr, double momentum, int nesterov)
{
    if (n == 0) return cudaSuccess;
    int mode = momentum == 0 ? 0 : nesterov ? 2 : 1;
    if (dt == LG_F32) sgd_kernel<float><<<blocks_for(n), threads, 0, s>>>(n, (float *)p, (const float *)g, (float *)m, (float)lr, (float)momentum, mode);
    else sgd_kernel<double><<<blocks_for(n), threads, 0, s>>>(n, (double *)p, (const double *)g, (double *)m, lr, momentum, mode);
    return cudaGetLastError();
}

template <typename T>
__global__ void adam_kernel(int64_t n, T *p, const T *g, T *m, T *v, T *v_hat, T alpha, T c1, T c2, T eps)
{
    LG_CUDA_FOR(i, n)
    {
        m[i] += (g[i] - m[i]) * c1;
        v[i] += (g[i] * g[i] - v[i]) * c2;
        T d = v[i];
        if (v_hat) {
            v_hat[i] = v_hat[i] > v[i] ? v_hat[i] : v[i];
            d = v_hat[i];
        }
        p[i] -= m[i] * alpha / (sqrt(d) + eps);
    }
}

extern "C" cudaError_t lg_cuda_launch_adam(cudaStream_t s, lg_dtype dt, int64_t n, void *p, const void *g, void *m,
                                           void *v, void *v_hat, double alpha, double c1, double c2, double eps)
{
    if (n == 0) return cudaSuccess;
    if (dt == LG_F32)
        adam_kernel<float><<<blocks_for(n), threads, 0, s>>>(n, (float *)p, (const float *)g, (float *)m, (float *)v, (float *)v_hat,
                                                            (float)alpha, (float)c1, (float)c2, (float)eps);
    else
        adam_kernel<double><<<blocks_for(n), threads, 0, s>>>(n, (double *)p, (const double *)g, (double *)m, (double *)v, (double *)v_hat,
                                                             alpha, c1, c2, eps);
    return cudaGetLastError();
}

template <typename T>
__global__ void rmsprop_kernel(int64_t n, T *p, const T *g, T *v, T *mom, T *avg, T lr, T rho, T c, T mu, T eps)
{
    LG_CUDA_FOR(i, n)
    {
        v[i] = rho * v[i] + c * (g[i] * g[i]);
        T d = v[i] + eps;
        if (avg) {
            avg[i] = rho * avg[i] + c * g[i];
            d = v[i] - avg[i] * avg[i] + eps;
        }
        T inc = lr * g[i] / sqrt(d);
        if (mom) {
            mom[i] = mu * mom[i] + inc;
            p[i] -= mom[i];
        } else {
            p[i] -= inc;
        }
    }
}

extern "C" cudaError_t lg_cuda_launch_rmsprop(cudaStream_t s, lg_dtype dt, int64_t n, void *p, const void *g, void *v,
                                              void *mom, void *avg, double lr, double rho, double momentum, double eps)
{
    if (n == 0) return cudaSuccess;
    if (dt == LG_F32)
        rmsprop_kernel<float><<<blocks_for(n), threads, 0, s>>>(n, (float *)p, (const float *)g, (float *)v, (float *)mom, (float *)avg,
                                                               (float)lr, (float)rho, (float)(1 - rho), (float)momentum, (float)eps);
    else
        rmsprop_kernel<double><<<blocks_for(n), threads, 0, s>>>(n, (double *)p, (const double *)g, (double *)v, (double *)mom,
                                                                (double *)avg, lr, rho, 1 - rho, momentum, eps);
    return cudaGetLastError();
}

/* Per-block partial sums in double, then one atomic add per block. */
template <typename T> __global__ void sum_squares_kernel(int64_t n, const T *g, double *acc)
{
    __shared__ double part[threads];
    double sum = 0;
    LG_CUDA_FOR(i, n) sum += (double)g[i] * (double)g[i];
    part[threadIdx.x] = sum;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
        if ((int)threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) atomicAdd(acc, part[0]);
}

extern "C" cudaError_t lg_cuda_launch_sum_squares(cudaStream_t s, lg_dtype dt, int64_t n, const void *g, double *acc)
{
    if (n == 0) return cudaSuccess;
    unsigned b = blocks_for(n) > 1024 ? 1024 : blocks_for(n);
    if (dt == LG_F32) sum_squares_kernel<float><<<b, threads, 0, s>>>(n, (const float *)g, acc);
    else sum_squares_kernel<double><<<b, threads, 0, s>>>(n, (const double *)g, acc);
    return cudaGetLastError();
}

template <typename T> __global__ void clip_norm_kernel(int64_t n, T *g, const double *sum_sq, double c, int nan_if_inf)
{
    double norm = sqrt(*sum_sq);
    if (nan_if_inf && !isfinite(norm)) {
        LG_CUDA_FOR(i, n) g[i] = T(NAN);
    } else if (norm > c) {
        double by = c / norm;
        LG_CUDA_FOR(i, n) g[i] *= (T)by;
    }
}

extern "C" cudaError_t lg_cuda_launch_clip_norm(cudaStream_t s, lg_dtype dt, int64_t n, void *g, const double *sum_sq,
                                                double c, int nan_if_inf)
{
    if (n == 0) return cudaSuccess;
    if (dt == LG_F32) clip_norm_kernel<float><<<blocks_for(n), threads, 0, s>>>(n, (float *)g, sum_sq, c, nan_if_inf);
    else clip_norm_kernel<double><<<blocks_for(n), threads, 0, s>>>(n, (double *)g, sum_sq, c, nan_if_inf);
    return cudaGetLastError();
}

template <typename T> __global__ void clip_value_kernel(int64_t n, T *g, T c)
{
    LG_CUDA_FOR(i, n) g[i] = g[i] < -c ? -c : g[i] > c ? c : g[i];
}

extern "C" cudaError_t lg_cuda_launch_clip_value(cudaStream_t s, lg_dtype dt, int64_t n, void *g, double c)
{
    if (n == 0) return cudaSuccess;
    if (dt == LG_F32) clip_value_kernel<float><<<blocks_for(n), threads, 0, s>>>(n, (float *)g, (float)c);
    else clip_value_kernel<double><<<blocks_for(n), threads, 0, s>>>(n, (double *)g, c);
    return cudaGetLastError();
}

/* One product in double, one rounding to T: the host's scale in dist.c. */
template <typename T> __global__ void scale_kernel(int64_t n, T *x, double w)
{
    LG_CUDA_FOR(i, n) x[i] = (T)((double)x[i] * w);
}

extern "C" cudaError_t lg_cuda_launch_scale(cudaStream_t s, lg_dtype dt, int64_t n, void *x, double w)
{
    if (n == 0) return cudaSuccess;
    if (dt == LG_F32) scale_kernel<float><<<blocks_for(n), threads, 0, s>>>(n, (float *)x, w);
    else scale_kernel<double><<<blocks_for(n), threads, 0, s>>>(n, (double *)x, w);
    return cudaGetLastError();
}

template <typename T> __global__ void pack_kernel(int64_t n, const int64_t *map, const T *src, T *dst)
{
    LG_CUDA_FOR(i, n) dst[i] = map[i] < 0 ? T(0) : src[map[i]];
}

template <typename T> __global__ void unpack_kernel(int64_t n, const int64_t *map, const T *src, T *dst)
{
    LG_CUDA_FOR(i, n)
    {
        if (map[i] >= 0) dst[map[i]] = src[i];
    }
}

extern "C" cudaError_t lg_cuda_launch_pack(cudaStream_t s, lg_dtype dt, int64_t n, const int64_t *map,
                                           const void *src, void *dst)
{
    if (n == 0) return cudaSuccess;
    if (dt == LG_F32) pack_kernel<float><<<blocks_for(n), threads, 0, s>>>(n, map, (const float *)src, (float *)dst);
    else pack_kernel<double><<<blocks_for(n), threads, 0, s>>>(n, map, (const double *)src, (double *)dst);
    return cudaGetLastError();
}

extern "C" cudaError_t lg_cuda_launch_unpack(cudaStream_t s, lg_dtype dt, int64_t n, const int64_t *map,
                                             const void *src, void *dst)
{
    if (n == 0) return cudaSuccess;
    if (dt == LG_F32) unpack_kernel<float><<<blocks_for(n), threads, 0, s>>>(n, map, (const float *)src, (float *)dst);
    else unpack_kernel<double><<<blocks_for(n), threads, 0, s>>>(n, map, (const double *)src, (double *)dst);
    return cudaGetLastError();
}
