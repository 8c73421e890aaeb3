/*
 * kernels_shape.cu — transpose, and the index ops: gather, scatter_add,
 * one_hot. Slices, concat and split are strided copies (cudaMemcpy2DAsync
 * in cuda_shape.c) and need no kernel.
 */
#include "backends/cuda/kernels_common.cuh"

using namespace lg_cuda;

typedef struct dims_arg {
    int64_t d[LG_MAX_RANK];
} dims_arg;

template <typename T> __global__ void transpose_kernel(int rank, int64_t n, dims_arg out_dims, dims_arg in_strides, const T *x, T *y)
{
    LG_CUDA_FOR(i, n)
    {
        int64_t off = 0, k = i;
        for (int d = rank - 1; d >= 0; d--) {
            off += (k % out_dims.d[d]) * in_strides.d[d];
            k /= out_dims.d[d];
        }
        y[i] = x[off];
    }
}

extern "C" cudaError_t lg_cuda_launch_transpose(cudaStream_t s, size_t es, int rank, const int64_t *out_dims,
                                                const int64_t *in_strides, const void *x, void *y)
{
    dims_arg od = {{0}}, is = {{0}};
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        od.d[i] = out_dims[i];
        is.d[i] = in_strides[i];
        n *= out_dims[i];
    }
    if (n == 0) return cudaSuccess;
    if (es == 8) transpose_kernel<int64_t><<<blocks_for(n), threads, 0, s>>>(rank, n, od, is, (const int64_t *)x, (int64_t *)y);
    else transpose_kernel<int32_t><<<blocks_for(n), threads, 0, s>>>(rank, n, od, is, (const int32_t *)x, (int32_t *)y);
    return cudaGetLastError();
}

template <typename T>
__global__ void gather_kernel(int64_t count, int64_t rows, int64_t row, const int32_t *idx, const T *table, T *out,
                              int32_t *err, int32_t site)
{
    LG_CUDA_FOR(i, count * row)
    {
        int64_t r = i / row, j = i % row;
        int32_t v = idx[r];
        if (v < 0 || v >= rows) {
            if (j == 0) record_error(err, site, v, rows);
            out[i] = T(0);
        } else {
            out[i] = table[(int64_t)v * row + j];
        }
    }
}

extern "C" cudaError_t lg_cuda_launch_gather(cudaStream_t s, size_t es, int64_t count, int64_t rows, int64_t row,
                                             const int32_t *idx, const void *table, void *out, int32_t *err,
                                             int32_t site)
{
    if (count * row == 0) return cudaSuccess;
    unsigned g = blocks_for(count * row);
    if (es == 8) gather_kernel<int64_t><<<g, threads, 0, s>>>(count, rows, row, idx, (const int64_t *)table, (int64_t *)out, err, site);
    else gather_kernel<int32_t><<<g, threads, 0, s>>>(count, rows, row, idx, (const int32_t *)table, (int32_t *)out, err, site);
    return cudaGetLastError();
}

template <typename T>
__global__ void scatter_add_kernel(int64_t count, int64_t rows, int64_t row, const int32_t *idx, const T *u, T *y,
                                   int32_t *err, int32_t site)
{
    LG_CUDA_FOR(i, count * row)
    {
        int64_t r = i / row, j = i % row;
        int32_t v = idx[r];
        if (v < 0 || v >= rows) {
            if (j == 0) record_error(err, site, v, rows);
        } else {
            atomicAdd(&y[(int64_t)v * row + j], u[i]);
        }
    }
}

extern "C" cudaError_t lg_cuda_launch_scatter_add(cudaStream_t s, lg_dtype dt, int64_t count, int64_t rows,
                                                  int64_t row, const int32_t *idx, const void *u, void *y,
                                                  int32_t *err, int32_t site)
{
    if (count * row == 0) return cudaSuccess;
    unsigned g = blocks_for(count * row);
    if (dt == LG_F32) scatter_add_kernel<float><<<g, threads, 0, s>>>(count, rows, row, idx, (const float *)u, (float *)y, err, site);
    else scatter_add_kernel<double><<<g, threads, 0, s>>>(count, rows, row, idx, (const double *)u, (double *)y, err, site);
    return cudaGetLastError();
}

template <typename T> __global__ void one_hot_kernel(int64_t count, int64_t depth, const int32_t *idx, T *y)
{
    LG_CUDA_FOR(i, count * depth) y[i] = idx[i / depth] == i % depth ? T(1) : T(0);
}

extern "C" cudaError_t lg_cuda_launch_one_hot(cudaStream_t s, lg_dtype dt, int64_t count, int64_t depth,
                                              const int32_t *idx, void *y)
{
    if (count * depth == 0) return cudaSuccess;
    unsigned g = blocks_for(count * depth);
    if (dt == LG_F32) one_hot_kernel<float><<<g, threads, 0, s>>>(count, depth, idx, (float *)y);
    else if (dt == LG_F64) one_hot_kernel<double><<<g, threads, 0, s>>>(count, depth, idx, (double *)y);
    else one_hot_kernel<int32_t><<<g, threads, 0, s>>>(count, depth, idx, (int32_t *)y);
    return cudaGetLastError();
}
