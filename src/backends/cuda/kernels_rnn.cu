/* kernels_rnn.cu — the fused rnn op's helpers around cuDNN (kernels.h). */
#include "backends/cuda/kernels_common.cuh"

using namespace lg_cuda;

/* The part of the virtual [W | U | b] buffer index k falls in, and its
 * offset there. */
__device__ inline int part_of(int64_t k, const lg_cuda_parts &p, int64_t *off)
{
    int j = k >= p.start[2] && p.start[2] >= 0 ? 2 : k >= p.start[1] ? 1 : 0;
    *off = k - p.start[j];
    return j;
}

template <typename T> __global__ void pack_parts_kernel(int64_t n, const int64_t *map, lg_cuda_parts p, T *dst)
{
    LG_CUDA_FOR(i, n)
    {
        int64_t k = map[i], off;
        if (k < 0) {
            dst[i] = T(0);
            continue;
        }
        int j = part_of(k, p, &off);
        dst[i] = ((const T *)p.ptr[j])[off];
    }
}

template <typename T> __global__ void unpack_parts_kernel(int64_t n, const int64_t *map, const T *src, lg_cuda_parts p)
{
    LG_CUDA_FOR(i, n)
    {
        int64_t k = map[i], off;
        if (k < 0) continue;
        int j = part_of(k, p, &off);
        ((T *)p.ptr[j])[off] = src[i];
    }
}

extern "C" cudaError_t lg_cuda_launch_pack_parts(cudaStream_t s, lg_dtype dt, int64_t n, const int64_t *map,
                                                 const lg_cuda_parts *parts, void *dst)
{
    if (n == 0) return cudaSuccess;
    if (dt == LG_F32) pack_parts_kernel<float><<<blocks_for(n), threads, 0, s>>>(n, map, *parts, (float *)dst);
    else pack_parts_kernel<double><<<blocks_for(n), threads, 0, s>>>(n, map, *parts, (double *)dst);
    return cudaGetLastError();
}

extern "C" cudaError_t lg_cuda_launch_unpack_parts(cudaStream_t s, lg_dtype dt, int64_t n, const int64_t *map,
                                                   const void *src, const lg_cuda_parts *parts)
{
    if (n == 0) return cudaSuccess;
    if (dt == LG_F32) unpack_parts_kernel<float><<<blocks_for(n), threads, 0, s>>>(n, map, (const float *)src, *parts);
    else unpack_parts_kernel<double><<<blocks_for(n), threads, 0, s>>>(n, map, (const double *)src, *parts);
    return cudaGetLastError();
}

template <typename T>
__global__ void seq_order_kernel(int64_t T_, int64_t B, int64_t F, const int32_t *lengths, int reverse, const T *x,
                                 T *y)
{
    int64_t n = T_ * B * F;
    LG_CUDA_FOR(i, n)
    {
        int64_t f = i % F, b = i / F % B, t = i / (F * B), len = lengths[b];
        if (t >= len) y[i] = T(0);
        else y[i] = x[((reverse ? len - 1 - t : t) * B + b) * F + f];
    }
}

extern "C" cudaError_t lg_cuda_launch_seq_order(cudaStream_t s, lg_dtype dt, int64_t T, int64_t B, int64_t F,
                                                const int32_t *lengths, int reverse, const void *x, void *y)
{
    int64_t n = T * B * F;
    if (n == 0) return cudaSuccess;
    if (dt == LG_F32)
        seq_order_kernel<float><<<blocks_for(n), threads, 0, s>>>(T, B, F, lengths, reverse, (const float *)x, (float *)y);
    else
        seq_order_kernel<double><<<blocks_for(n), threads, 0, s>>>(T, B, F, lengths, reverse, (const double *)x,
                                                                   (double *)y);
    return cudaGetLastError();
}
