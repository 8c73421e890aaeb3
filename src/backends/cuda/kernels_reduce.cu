/*
 * kernels_reduce.cu — sum and max of x into y (sum, max, sum_to): one block
 * per output element, each thread striding over the reduced elements, then
 * a tree in shared memory. Sums accumulate in the element type as the CPU
 * does (float sums are therefore ordered differently: see the GPU suite's
 * tolerance).
 */
#include <math.h>

#include "backends/cuda/kernels_common.cuh"

using namespace lg_cuda;

__device__ inline int64_t offset_of(int64_t i, int rank, const int64_t *dims, const int64_t *strides)
{
    int64_t off = 0;
    for (int d = rank - 1; d >= 0; d--) {
        off += (i % dims[d]) * strides[d];
        i /= dims[d];
    }
    return off;
}

template <typename T> __device__ inline T init_of(int max) { return max ? T(-INFINITY) : T(0); }
template <> __device__ inline int32_t init_of<int32_t>(int max) { return max ? INT32_MIN : 0; }

template <typename T> __device__ inline T combine(int max, T acc, T v) { return max ? (v > acc ? v : acc) : acc + v; }

template <typename T> __global__ void reduce_kernel(lg_cuda_reduce r, int max, const T *x, T *y)
{
    __shared__ T part[threads];
    for (int64_t o = blockIdx.x; o < r.n_out; o += gridDim.x) {
        int64_t base = offset_of(o, r.kept_rank, r.kept_dims, r.kept_strides);
        T acc = init_of<T>(max);
        for (int64_t j = threadIdx.x; j < r.n_red; j += blockDim.x)
            acc = combine<T>(max, acc, x[base + offset_of(j, r.red_rank, r.red_dims, r.red_strides)]);
        part[threadIdx.x] = acc;
        __syncthreads();
        for (int w = blockDim.x / 2; w > 0; w /= 2) {
            if ((int)threadIdx.x < w) part[threadIdx.x] = combine<T>(max, part[threadIdx.x], part[threadIdx.x + w]);
            __syncthreads();
        }
        if (threadIdx.x == 0) y[o] = part[0];
        __syncthreads();
    }
}

extern "C" cudaError_t lg_cuda_launch_reduce(cudaStream_t s, int max, lg_dtype dt, const lg_cuda_reduce *r,
                                             const void *x, void *y)
{
    if (r->n_out == 0) return cudaSuccess;
    unsigned g = r->n_out > 65535 * 8 ? 65535 * 8 : (unsigned)r->n_out;
    switch (dt) {
    case LG_F32: reduce_kernel<float><<<g, threads, 0, s>>>(*r, max, (const float *)x, (float *)y); break;
    case LG_F64: reduce_kernel<double><<<g, threads, 0, s>>>(*r, max, (const double *)x, (double *)y); break;
    default: reduce_kernel<int32_t><<<g, threads, 0, s>>>(*r, max, (const int32_t *)x, (int32_t *)y); break;
    }
    return cudaGetLastError();
}
