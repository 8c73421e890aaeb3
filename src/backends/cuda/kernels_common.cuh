/*
 * kernels_common.cuh — what the .cu files share: grid sizes for
 * grid-stride loops, and the first-error record of kernels.h.
 */
#ifndef LG_CUDA_KERNELS_COMMON_CUH
#define LG_CUDA_KERNELS_COMMON_CUH

#include "backends/cuda/kernels.h"

namespace lg_cuda {

constexpr int threads = 256;

/* Blocks for a grid-stride loop over n elements (capped: each thread loops). */
inline unsigned blocks_for(int64_t n)
{
    int64_t b = (n + threads - 1) / threads;
    if (b > 65535 * 8) b = 65535 * 8;
    return b < 1 ? 1u : (unsigned)b;
}

#define LG_CUDA_FOR(i, n) \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/* Record {1, site, value, bound} unless an error is recorded already. */
__device__ inline void record_error(int32_t *err, int32_t site, int64_t value, int64_t bound)
{
    if (atomicCAS(err, 0, 1) == 0) {
        err[1] = site;
        err[2] = (int32_t)value;
        err[3] = (int32_t)bound;
    }
}

} // namespace lg_cuda

#endif
