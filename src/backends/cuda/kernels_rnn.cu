/* kernels_rnn.cu — the fused rnn op's helpers around cuDNN (kernels.h). */
#include "backends/cuda/kernels_common.cuh"

using namespace lg_cuda;

/* The part of the virtual [W | U | b | ...] buffer index k falls in, and
 * its offset there (part 0 starts at 0). */
__device__ inline int part_of(int64_t k, const lg_cuda_parts &p, int64_t *off)
{
    int j = LG_CUDA_PARTS - 1;
    while (j > 0 && (p.start[j] < 0 || k < p.start[j])) j--;
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

/* One element i of y [T, B, 2F] and its place in y0 or y1 [T, B, F]. */
template <typename T, bool JOIN>
__global__ void bidir_kernel(int64_t T_, int64_t B, int64_t F, const int32_t *lengths, T *y, T *y0, T *y1)
{
    int64_t n = T_ * B * 2 * F;
    LG_CUDA_FOR(i, n)
    {
        int64_t f2 = i % (2 * F), row = i / (2 * F), b = row % B, t = row / B;
        T *half = f2 < F ? y0 : y1;
        int64_t at = row * F + f2 % F;
        bool on = t < lengths[b];
        if (JOIN) y[i] = on ? half[at] : T(0);
        else half[at] = on ? y[i] : T(0);
    }
}

template <bool JOIN>
static cudaError_t bidir(cudaStream_t s, lg_dtype dt, int64_t T, int64_t B, int64_t F, const int32_t *lengths, void *y,
                         void *y0, void *y1)
{
    int64_t n = T * B * 2 * F;
    if (n == 0) return cudaSuccess;
    if (dt == LG_F32)
        bidir_kernel<float, JOIN>
            <<<blocks_for(n), threads, 0, s>>>(T, B, F, lengths, (float *)y, (float *)y0, (float *)y1);
    else
        bidir_kernel<double, JOIN>
            <<<blocks_for(n), threads, 0, s>>>(T, B, F, lengths, (double *)y, (double *)y0, (double *)y1);
    return cudaGetLastError();
}

extern "C" cudaError_t lg_cuda_launch_bidir_split(cudaStream_t s, lg_dtype dt, int64_t T, int64_t B, int64_t F,
                                                  const int32_t *lengths, const void *y, void *y0, void *y1)
{
    return bidir<false>(s, dt, T, B, F, lengths, (void *)y, y0, y1);
}

extern "C" cudaError_t lg_cuda_launch_bidir_join(cudaStream_t s, lg_dtype dt, int64_t T, int64_t B, int64_t F,
                                                 const int32_t *lengths, const void *y0, const void *y1, void *y)
{
    return bidir<true>(s, dt, T, B, F, lengths, y, (void *)y0, (void *)y1);
}
