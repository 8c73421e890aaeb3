/*
 * emu_prelude.h — part of the CUDA host emulation (README.md here): included
 * by launch_rewrite.pl before kernels_common.cuh, so the host C++ compiler
 * takes the kernels_*.cu files. CUDA's qualifiers become nothing (__shared__
 * a static: one block runs at a time), the thread coordinates are globals
 * emu_rt.cpp sets per fiber, __syncthreads yields to the next thread of the
 * block, atomics are plain read-modify-writes (fibers never preempt), and a
 * launch's error is the fake runtime's (cudaGetLastError: a launch into a
 * broken capture).
 */
#ifndef LG_EMU_PRELUDE_H
#define LG_EMU_PRELUDE_H
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <functional>
#include <tuple>
#undef __device__
#undef __global__
#undef __host__
#undef __shared__
#undef __forceinline__
#define __device__
#define __global__
#define __host__
#define __shared__ static
#define __forceinline__ inline
extern uint3 blockIdx, threadIdx;
extern dim3 blockDim, gridDim;
void lg_emu_syncthreads(void);
#define __syncthreads() lg_emu_syncthreads()
/* Runs f as every thread of every block (1-D grids and blocks), one block at
 * a time, each thread a fiber that __syncthreads switches away from; at once,
 * whatever the stream, or, while this thread captures the stream, at each
 * launch of the graph (emu_capture.h). Dynamic shared memory is not
 * emulated: shared_bytes must be 0. */
void lg_emu_launch(unsigned grid, unsigned block, size_t shared_bytes, cudaStream_t stream,
                   const std::function<void()> &f);
/* A kernel call with its arguments converted to the kernel's parameter
 * types now, as a launch copies them: a launch that is captured runs later,
 * when the launching function's locals are gone. */
template <class... P, class... A> std::function<void()> lg_emu_bind(void (*kernel)(P...), A &&...args)
{
    return [kernel, params = std::tuple<P...>(std::forward<A>(args)...)] { std::apply(kernel, params); };
}
static inline int atomicCAS(int *p, int cmp, int v) { int o = *p; if (o == cmp) *p = v; return o; }
static inline float atomicAdd(float *p, float v) { float o = *p; *p = o + v; return o; }
static inline double atomicAdd(double *p, double v) { double o = *p; *p = o + v; return o; }
#endif
