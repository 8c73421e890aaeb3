/*
 * emu_rt.cpp — part of the CUDA host emulation (README.md here): runs a
 * rewritten kernel launch on the CPU. Each block's threads are ucontext
 * fibers on their own 256 KiB stacks, run round-robin: a thread runs until
 * it returns or calls __syncthreads, so every thread of a block reaches a
 * barrier before any passes it and shared-memory reductions see what the
 * others wrote. Blocks run one after another. At exit it prints how many
 * launches and threads ran.
 *
 * Also stream capture and CUDA Graphs (emu_capture.h): while a thread
 * captures a stream, the launches, copies, memsets and GEMMs queued on it
 * are recorded (each with its arguments as they were at the call) instead
 * of run, and a launched graph runs them in order. As under
 * cudaStreamCaptureModeThreadLocal, a call that waits or allocates on the
 * capturing thread fails with cudaErrorStreamCaptureUnsupported and
 * invalidates the capture: later work on the stream fails with
 * cudaErrorStreamCaptureInvalidated, and so does cudaStreamEndCapture,
 * with no graph. Stricter than CUDA: work queued on another stream while a
 * capture is under way fails too (a GPU would run it at once, outside the
 * graph, and a launch of the graph would miss it), and so do copies to or
 * from host memory (fake_cuda.c).
 */
#include "emu_capture.h"
#include "emu_prelude.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <vector>

uint3 blockIdx, threadIdx;
dim3 blockDim = {1, 1, 1}, gridDim = {1, 1, 1};

enum { MAX_THREADS = 1024, STACK_BYTES = 256 * 1024 };
static ucontext_t sched, fib[MAX_THREADS];
static char *stacks[MAX_THREADS];
static bool done[MAX_THREADS];
static const std::function<void()> *body;
static long launches, threads_run, graph_launches;

/* ---- capture and graphs ---------------------------------------------------- */

struct CUgraph_st {
    std::vector<std::function<void()>> ops;
};
struct CUgraphExec_st {
    std::vector<std::function<void()>> ops;
};

static thread_local cudaStream_t capturing; /* the stream this thread captures, or NULL */
static thread_local CUgraph_st *recording;
static thread_local bool invalidated;
static thread_local cudaError_t last_error;

static cudaError_t fail(cudaError_t e)
{
    last_error = e;
    return e;
}

/* Whether work queued on s is recorded (or refused: *e) rather than run now. */
static bool recorded(cudaStream_t s, cudaError_t *e, std::function<void()> &&op)
{
    *e = cudaSuccess;
    if (!capturing) return false;
    if (s != capturing || invalidated) {
        if (s != capturing)
            fprintf(stderr, "cuda_emu: work queued on another stream while a capture is under way (a GPU would run it "
                            "outside the graph)\n");
        invalidated = true;
        *e = fail(cudaErrorStreamCaptureInvalidated);
        return true;
    }
    recording->ops.push_back(std::move(op));
    return true;
}

extern "C" cudaError_t lg_emu_enqueue(cudaStream_t s, void (*run)(const void *args), const void *args, size_t bytes)
{
    std::vector<unsigned char> copy((const unsigned char *)args, (const unsigned char *)args + bytes);
    cudaError_t e;
    if (recorded(s, &e, [run, copy] { run(copy.data()); })) return e;
    run(args);
    return cudaSuccess;
}

extern "C" cudaError_t lg_emu_unsafe(void)
{
    if (!capturing) return cudaSuccess;
    invalidated = true;
    return fail(cudaErrorStreamCaptureUnsupported);
}

extern "C" cudaError_t cudaGetLastError(void)
{
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

extern "C" cudaError_t cudaPeekAtLastError(void) { return last_error; }

extern "C" cudaError_t cudaStreamBeginCapture(cudaStream_t s, enum cudaStreamCaptureMode mode)
{
    if (mode != cudaStreamCaptureModeThreadLocal) {
        fprintf(stderr, "cuda_emu: only cudaStreamCaptureModeThreadLocal is emulated\n");
        abort();
    }
    if (!s || s == cudaStreamLegacy || s == cudaStreamPerThread) return fail(cudaErrorStreamCaptureUnsupported);
    if (capturing) return fail(cudaErrorIllegalState);
    capturing = s, recording = new CUgraph_st, invalidated = false;
    return cudaSuccess;
}

extern "C" cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph)
{
    *graph = NULL;
    if (!capturing) return fail(cudaErrorIllegalState);
    if (s != capturing) return fail(cudaErrorStreamCaptureUnmatched);
    CUgraph_st *g = recording;
    bool bad = invalidated;
    capturing = NULL, recording = NULL, invalidated = false;
    if (bad) {
        delete g;
        return fail(cudaErrorStreamCaptureInvalidated);
    }
    *graph = g;
    return cudaSuccess;
}

extern "C" cudaError_t cudaGraphGetNodes(cudaGraph_t g, cudaGraphNode_t *nodes, size_t *n)
{
    if (nodes) return fail(cudaErrorNotSupported); /* only the count is emulated */
    *n = g->ops.size();
    return cudaSuccess;
}

extern "C" cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t g, unsigned long long flags)
{
    (void)flags;
    *exec = new CUgraphExec_st{g->ops};
    return cudaSuccess;
}

extern "C" cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s)
{
    (void)s;
    if (capturing) return fail(cudaErrorStreamCaptureUnsupported); /* a graph inside a capture: not emulated */
    graph_launches++;
    for (auto &op : exec->ops) op();
    return cudaSuccess;
}

extern "C" cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec)
{
    delete exec;
    return cudaSuccess;
}

extern "C" cudaError_t cudaGraphDestroy(cudaGraph_t g)
{
    delete g;
    return cudaSuccess;
}

/* ---- launches ---------------------------------------------------------------- */

static void trampoline(void)
{
    (*body)();
    done[threadIdx.x] = true;
}

void lg_emu_syncthreads(void) { swapcontext(&fib[threadIdx.x], &sched); }

static void run_launch(unsigned grid, unsigned block, size_t shared_bytes, const std::function<void()> &f);

void lg_emu_launch(unsigned grid, unsigned block, size_t shared_bytes, cudaStream_t stream,
                   const std::function<void()> &f)
{
    cudaError_t e;
    if (!recorded(stream, &e, [=] { run_launch(grid, block, shared_bytes, f); })) run_launch(grid, block, shared_bytes, f);
}

/* LG_CUDA_EMU_ORDER=reverse: blocks, and a block's threads between
 * barriers, run last to first. A GPU promises no order, and each order
 * hides different missing barriers: without the __syncthreads after
 * reduce_kernel's partial sums are stored, 2 checks fail in order and none
 * reversed (thread 0 reads part[128] before thread 128 wrote it only in
 * order); a thread reading a lower thread's store is caught the other way
 * round. So the suite runs both ways. */
static bool reversed(void)
{
    static int rev = -1;
    if (rev < 0) {
        const char *o = getenv("LG_CUDA_EMU_ORDER");
        rev = o && strcmp(o, "reverse") == 0;
    }
    return rev;
}

static void run_launch(unsigned grid, unsigned block, size_t shared_bytes, const std::function<void()> &f)
{
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
    bool rev = reversed();
    for (unsigned bb = 0; bb < grid; bb++) {
        unsigned b = rev ? grid - 1 - bb : bb;
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
            for (unsigned ii = 0; ii < block; ii++) {
                unsigned i = rev ? block - 1 - ii : ii;
                if (!done[i]) {
                    threadIdx.x = i;
                    swapcontext(&sched, &fib[i]);
                    any = true;
                }
            }
        }
    }
}

__attribute__((destructor)) static void report(void)
{
    fprintf(stderr, "cuda_emu: %ld kernel launches, %ld threads run, %ld graph launches\n", launches, threads_run,
            graph_launches);
    for (unsigned i = 0; i < MAX_THREADS; i++) free(stacks[i]);
}
