/*
 * emu_rt.cpp — part of the CUDA host emulation (README.md here): runs a
 * rewritten kernel launch on the CPU. Each block's threads are ucontext
 * fibers on their own 256 KiB stacks, run round-robin: a thread runs until
 * it returns or calls __syncthreads, so every thread of a block reaches a
 * barrier before any passes it and shared-memory reductions see what the
 * others wrote. Blocks run one after another. At exit it prints how many
 * launches and threads ran.
 */
#include "emu_prelude.h"
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>

uint3 blockIdx, threadIdx;
dim3 blockDim = {1, 1, 1}, gridDim = {1, 1, 1};

enum { MAX_THREADS = 1024, STACK_BYTES = 256 * 1024 };
static ucontext_t sched, fib[MAX_THREADS];
static char *stacks[MAX_THREADS];
static bool done[MAX_THREADS];
static const std::function<void()> *body;
static long launches, threads_run;

static void trampoline(void)
{
    (*body)();
    done[threadIdx.x] = true;
}

void lg_emu_syncthreads(void) { swapcontext(&fib[threadIdx.x], &sched); }

void lg_emu_launch(unsigned grid, unsigned block, size_t shared_bytes, cudaStream_t stream,
                   const std::function<void()> &f)
{
    (void)stream;
    if (grid == 0 || block == 0 || block > MAX_THREADS) {
        fprintf(stderr, "cuda_emu: invalid launch <<<%u, %u>>> (a GPU refuses it too)\n", grid, block);
        abort();
    }
    if (shared_bytes != 0) {
        fprintf(stderr, "cuda_emu: dynamic shared memory (%zu bytes) is not emulated\n", shared_bytes);
        abort();
    }
    launches++;
    body = &f;
    gridDim.x = grid, gridDim.y = gridDim.z = 1;
    blockDim.x = block, blockDim.y = blockDim.z = 1;
    for (unsigned b = 0; b < grid; b++) {
        blockIdx.x = b;
        for (unsigned i = 0; i < block; i++) {
            if (!stacks[i] && !(stacks[i] = (char *)malloc(STACK_BYTES))) {
                fprintf(stderr, "cuda_emu: out of memory for fiber stacks\n");
                abort();
            }
            getcontext(&fib[i]);
            fib[i].uc_stack.ss_sp = stacks[i];
            fib[i].uc_stack.ss_size = STACK_BYTES;
            fib[i].uc_link = &sched;
            makecontext(&fib[i], trampoline, 0);
            done[i] = false;
        }
        threads_run += block;
        for (bool any = true; any;) {
            any = false;
            for (unsigned i = 0; i < block; i++)
                if (!done[i]) {
                    threadIdx.x = i;
                    swapcontext(&sched, &fib[i]);
                    any = true;
                }
        }
    }
}

__attribute__((destructor)) static void report(void)
{
    fprintf(stderr, "cuda_emu: %ld kernel launches, %ld threads run\n", launches, threads_run);
    for (unsigned i = 0; i < MAX_THREADS; i++) free(stacks[i]);
}
