/*
 * kernels_reduce.cu — sum and max of x into y (sum, max, sum_to): one block
 * per output element, each thread striding over the reduced elements, then
 * a tree in shared memory. Few outputs of many elements (a loss summed over
 * [T, B, U]) would leave all but a few SMs idle, one block streaming
 * megabytes: their elements are split into chunks of at least CHUNK, one
 * block each, and a second pass reduces the chunks' results. Outputs of at
 * most SHORT elements each (a bias gradient over a batch, a sum over a
 * 3-wide axis) take one thread each instead: a block of 256 threads for a
 * handful of loads would idle almost all of them through eight barriers.
 * Sums accumulate in the element type as the CPU does (float sums are
 * therefore ordered differently: see the GPU suite's tolerance).
 */
#include <math.h>

#include "backends/cuda/kernels_common.cuh"

using namespace lg_cuda;

/* The offset of index i (< the product of dims) in row-major order: the
 * outermost coordinate is what is left of i, with no division (64-bit
 * divisions cost tens of instructions each). */
__device__ inline int64_t offset_of(int64_t i, int rank, const int64_t *dims, const int64_t *strides)
{
    int64_t off = 0;
    for (int d = rank - 1; d > 0; d--) {
        int64_t q = i / dims[d];
        off += (i - q * dims[d]) * strides[d];
        i = q;
    }
    return rank > 0 ? off + i * strides[0] : off;
}

template <typename T> __device__ inline T init_of(int max) { return max ? T(-INFINITY) : T(0); }
template <> __device__ inline int32_t init_of<int32_t>(int max) { return max ? INT32_MIN : 0; }

template <typename T> __device__ inline T combine(int max, T acc, T v) { return max ? (v > acc ? v : acc) : acc + v; }

/* Reduce part[0..blockDim.x) (blockDim.x a power of two) into part[0]. */
template <typename T> __device__ inline void block_reduce(int max, T *part)
{
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
        if ((int)threadIdx.x < w) part[threadIdx.x] = combine<T>(max, part[threadIdx.x], part[threadIdx.x + w]);
        __syncthreads();
    }
}

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
        block_reduce<T>(max, part);
        if (threadIdx.x == 0) y[o] = part[0];
        __syncthreads();
    }
}

/* One thread per output, its elements in order. */
template <typename T> __global__ void reduce_short_kernel(lg_cuda_reduce r, int max, const T *x, T *y)
{
    LG_CUDA_FOR(o, r.n_out)
    {
        int64_t base = offset_of(o, r.kept_rank, r.kept_dims, r.kept_strides);
        T acc = init_of<T>(max);
        for (int64_t j = 0; j < r.n_red; j++)
            acc = combine<T>(max, acc, x[base + offset_of(j, r.red_rank, r.red_dims, r.red_strides)]);
        y[o] = acc;
    }
}

/* Block b: chunk b % chunks of output b / chunks, the reduced elements
 * [c per, min((c + 1) per, n_red)), into partial[b]. */
template <typename T>
__global__ void reduce_chunks_kernel(lg_cuda_reduce r, int max, int64_t chunks, int64_t per, const T *x, T *partial)
{
    __shared__ T part[threads];
    int64_t b = blockIdx.x, o = b / chunks, c = b % chunks;
    int64_t base = offset_of(o, r.kept_rank, r.kept_dims, r.kept_strides);
    int64_t end = (c + 1) * per < r.n_red ? (c + 1) * per : r.n_red;
    T acc = init_of<T>(max);
    for (int64_t j = c * per + threadIdx.x; j < end; j += blockDim.x)
        acc = combine<T>(max, acc, x[base + offset_of(j, r.red_rank, r.red_dims, r.red_strides)]);
    part[threadIdx.x] = acc;
    __syncthreads();
    block_reduce<T>(max, part);
    if (threadIdx.x == 0) partial[b] = part[0];
}

/* Elements a chunk block reduces at least, and the outputs below which
 * chunks pay (fewer blocks than a few per SM). */
constexpr int64_t CHUNK = threads * 16;
constexpr int64_t FEW_OUTPUTS = 512;
/* Reduced elements per output up to which a thread takes an output. */
constexpr int64_t SHORT = 64;

template <typename T>
static cudaError_t reduce_t(cudaStream_t s, int max, const lg_cuda_reduce *r, const T *x, T *y, T *partial)
{
    if (r->n_red <= SHORT) {
        reduce_short_kernel<T><<<blocks_for(r->n_out), threads, 0, s>>>(*r, max, x, y);
        return cudaGetLastError();
    }
    int64_t chunks = (r->n_red + CHUNK - 1) / CHUNK, cap = LG_CUDA_REDUCE_PARTIALS / r->n_out;
    if (chunks > cap) chunks = cap;
    if (r->n_out >= FEW_OUTPUTS || chunks < 2) {
        unsigned g = r->n_out > 65535 * 8 ? 65535 * 8 : (unsigned)r->n_out;
        reduce_kernel<T><<<g, threads, 0, s>>>(*r, max, x, y);
        return cudaGetLastError();
    }
    int64_t per = (r->n_red + chunks - 1) / chunks;
    reduce_chunks_kernel<T><<<(unsigned)(r->n_out * chunks), threads, 0, s>>>(*r, max, chunks, per, x, partial);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    /* partial [n_out, chunks], each row reduced in a fixed order */
    lg_cuda_reduce p = {};
    p.n_out = r->n_out, p.n_red = chunks, p.kept_rank = p.red_rank = 1;
    p.kept_dims[0] = r->n_out, p.kept_strides[0] = chunks;
    p.red_dims[0] = chunks, p.red_strides[0] = 1;
    reduce_kernel<T><<<(unsigned)r->n_out, threads, 0, s>>>(p, max, partial, y);
    return cudaGetLastError();
}

extern "C" cudaError_t lg_cuda_launch_reduce(cudaStream_t s, int max, lg_dtype dt, const lg_cuda_reduce *r,
                                             const void *x, void *y, void *partial)
{
    if (r->n_out == 0) return cudaSuccess;
    switch (dt) {
    case LG_F32: return reduce_t<float>(s, max, r, (const float *)x, (float *)y, (float *)partial);
    case LG_F64: return reduce_t<double>(s, max, r, (const double *)x, (double *)y, (double *)partial);
    default: return reduce_t<int32_t>(s, max, r, (const int32_t *)x, (int32_t *)y, (int32_t *)partial);
    }
}
