/*
 * cuda_device.c — the CUDA context: device choice, stream, cuBLAS handle,
 * memory and copies, the kernel table, and CUDA errors as lg_status.
 */
#include <string.h>

#include "backends/cpu/cpu.h"
#include "backends/cuda/cuda.h"
#include "backends/cuda/kernels.h"
#include "ops/op.h"

static const lg_cuda_kernel_fn cuda_kernels[] = {
#define LG_X_NONE(ID, name) [LG_OP_##ID] = NULL,
#define LG_X_KERNEL(ID, name) [LG_OP_##ID] = lg_cuda_##name,
    LG_SOURCE_OPS(LG_X_NONE) LG_COMPUTE_OPS(LG_X_KERNEL) LG_FUSED_OPS(LG_X_KERNEL) LG_CONTROL_OPS(LG_X_NONE)
#undef LG_X_NONE
#undef LG_X_KERNEL
};
_Static_assert(LG_ARRAY_LEN(cuda_kernels) == LG_OP_COUNT, "the CUDA kernel table is out of step with op_list.h");

lg_cuda_kernel_fn lg_cuda_kernel(lg_op op)
{
    return op >= 0 && op < LG_OP_COUNT ? cuda_kernels[op] : NULL;
}

lg_status lg_cuda_status(cudaError_t e, const char *call, const char *what)
{
    if (e == cudaSuccess) return LG_OK;
    /* A failed runtime call also leaves e as the thread's last error, which
     * the next launcher's cudaGetLastError (kernels.h) would then report as
     * its kernel's launch failure: e is reported here, once. (A sticky
     * error, a faulted context, fails every later call anyway.) */
    cudaGetLastError();
    const char *name = cudaGetErrorName(e), *msg = cudaGetErrorString(e);
    switch (e) {
    case cudaErrorNoDevice:
        return lg_fail(LG_ERR_UNSUPPORTED, "%s (%s): no CUDA-capable GPU is present (%s)", call, what, name);
    case cudaErrorInsufficientDriver:
        return lg_fail(LG_ERR_UNSUPPORTED,
                       "%s (%s): the NVIDIA driver is missing or older than this CUDA runtime (%d.%d) needs (%s)",
                       call, what, CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10, name);
    case cudaErrorMemoryAllocation:
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "%s (%s): out of device memory (%s)", call, what, name);
    default: return lg_fail(LG_ERR_RUNTIME, "%s (%s): %s: %s", call, what, name, msg);
    }
}

lg_status lg_cuda_launched(cudaError_t e, const lg_node *n)
{
    if (e == cudaSuccess) return LG_OK;
    return lg_fail(LG_ERR_RUNTIME, "CUDA kernel for '%s' could not be launched: %s: %s", n->name,
                   cudaGetErrorName(e), cudaGetErrorString(e));
}

lg_status lg_cuda_ctx_new(int device, lg_cuda_ctx **out)
{
    *out = NULL;
    int count = 0;
    lg_status st = lg_cuda_status(cudaGetDeviceCount(&count), "cudaGetDeviceCount", "looking for GPUs");
    if (st) return st;
    if (device < 0 || device >= count)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "cuda:%d: no such device (this machine has %d CUDA device%s)", device,
                       count, count == 1 ? "" : "s");
    lg_cuda_ctx *c = calloc(1, sizeof *c);
    if (!c) return lg_fail(LG_ERR_OUT_OF_MEMORY, "cuda:%d: out of host memory for the context", device);
    c->device = device;
    char what[32];
    snprintf(what, sizeof what, "cuda:%d", device);
    st = lg_cuda_status(cudaSetDevice(device), "cudaSetDevice", what);
    if (!st) st = lg_cuda_status(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking), "cudaStreamCreate", what);
    if (!st) st = lg_cublas_open(&c->cublas, NULL);
    if (!st) {
        cublasStatus_t b = c->cublas.create(&c->blas);
        if (b != CUBLAS_STATUS_SUCCESS) c->blas = NULL;
        else b = c->cublas.set_stream(c->blas, c->stream); /* on failure lg_cuda_ctx_free destroys the handle */
        if (b != CUBLAS_STATUS_SUCCESS) {
            st = lg_fail(b == CUBLAS_STATUS_ALLOC_FAILED ? LG_ERR_OUT_OF_MEMORY : LG_ERR_RUNTIME,
                         "cublasCreate (%s): %s: %s", what, c->cublas.status_name(b), c->cublas.status_string(b));
        }
    }
    if (!st) st = lg_cuda_alloc(c, 4 * sizeof(int32_t), (void **)&c->err);
    if (!st) st = lg_cuda_alloc(c, sizeof(double), (void **)&c->scratch);
    if (!st) st = lg_cuda_alloc(c, LG_CUDA_REDUCE_PARTIALS * sizeof(double), &c->partials);
    if (!st) st = lg_cuda_memset0(c, c->err, 4 * sizeof(int32_t));
    if (st) {
        lg_cuda_ctx_free(c);
        return st;
    }
    *out = c;
    return LG_OK;
}

/* cudnn_rnn.c owns the cuDNN handle; it destroys it through this hook so
 * that this file needs no cudnn.h. */
void lg_cudnn_handle_free(lg_cudnn_handle h);

void lg_cuda_ctx_free(lg_cuda_ctx *c)
{
    if (!c) return;
    if (c->stream) cudaStreamSynchronize(c->stream);
    lg_cuda_rnn_cache_free(c);
    lg_cudnn_handle_free(c->dnn);
    if (c->blas) c->cublas.destroy(c->blas);
    cudaFree(c->err);
    cudaFree(c->scratch);
    cudaFree(c->partials);
    if (c->stream) cudaStreamDestroy(c->stream);
    free(c->sites);
    free(c);
}

void lg_cuda_set_tf32(lg_cuda_ctx *c, bool allow) { c->allow_tf32 = allow; }

lg_status lg_cuda_alloc(lg_cuda_ctx *c, size_t bytes, void **out)
{
    *out = NULL;
    if (bytes == 0) return LG_OK;
    cudaError_t e = cudaMalloc(out, bytes);
    if (e == cudaSuccess) return LG_OK;
    *out = NULL;
    if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError(); /* clear it: an allocation failure does not poison the context */
        size_t free_b = 0, total = 0;
        cudaMemGetInfo(&free_b, &total);
        return lg_fail(LG_ERR_OUT_OF_MEMORY,
                       "cudaMalloc: out of memory on cuda:%d allocating %zu bytes (%zu of %zu bytes free)", c->device,
                       bytes, free_b, total);
    }
    char what[64];
    snprintf(what, sizeof what, "%zu bytes on cuda:%d", bytes, c->device);
    return lg_cuda_status(e, "cudaMalloc", what);
}

void lg_cuda_free(lg_cuda_ctx *c, void *p)
{
    (void)c;
    if (p) cudaFree(p);
}

static lg_status copy(lg_cuda_ctx *c, void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind,
                      const char *what)
{
    if (bytes == 0) return LG_OK;
    char buf[64];
    snprintf(buf, sizeof buf, "%s of %zu bytes", what, bytes);
    return lg_cuda_status(cudaMemcpyAsync(dst, src, bytes, kind, c->stream), "cudaMemcpyAsync", buf);
}

lg_status lg_cuda_copy_h2d(lg_cuda_ctx *c, void *dst, const void *src, size_t bytes)
{
    return copy(c, dst, src, bytes, cudaMemcpyHostToDevice, "host to device");
}

lg_status lg_cuda_copy_d2h(lg_cuda_ctx *c, void *dst, const void *src, size_t bytes)
{
    lg_status st = copy(c, dst, src, bytes, cudaMemcpyDeviceToHost, "device to host");
    return st ? st : lg_cuda_sync(c);
}

lg_status lg_cuda_copy_d2d(lg_cuda_ctx *c, void *dst, const void *src, size_t bytes)
{
    return copy(c, dst, src, bytes, cudaMemcpyDeviceToDevice, "device to device");
}

lg_status lg_cuda_memset0(lg_cuda_ctx *c, void *dst, size_t bytes)
{
    if (bytes == 0) return LG_OK;
    char buf[48];
    snprintf(buf, sizeof buf, "zeroing %zu bytes", bytes);
    return lg_cuda_status(cudaMemsetAsync(dst, 0, bytes, c->stream), "cudaMemsetAsync", buf);
}

int32_t lg_cuda_site(lg_cuda_ctx *c, const lg_node *n)
{
    if (c->n_sites == c->cap_sites) {
        int cap = c->cap_sites ? 2 * c->cap_sites : 64;
        const lg_node **s = realloc(c->sites, (size_t)cap * sizeof *s);
        if (!s) return -1;
        c->sites = s;
        c->cap_sites = cap;
    }
    c->sites[c->n_sites] = n;
    return c->n_sites++;
}

/* The CPU kernels' message for a recorded bad index (cpu_index.c, cpu_nn.c). */
static lg_status recorded_error(lg_cuda_ctx *c, const int32_t *rec)
{
    const lg_node *n = rec[1] >= 0 && rec[1] < c->n_sites ? c->sites[rec[1]] : NULL;
    if (!n) return lg_fail(LG_ERR_RUNTIME, "a CUDA kernel found index %d outside [0, %d)", (int)rec[2], (int)rec[3]);
    if (n->op == LG_OP_SPARSE_SOFTMAX_XENT)
        return lg_fail(LG_ERR_RUNTIME, "sparse_softmax_xent '%s': label %d outside [0, %d)", n->name, (int)rec[2],
                       (int)rec[3]);
    if (n->op == LG_OP_GATHER && n->attrs.axis == LG_GATHER_OF_LENGTHS) /* the record keeps no position */
        return lg_fail(LG_ERR_RUNTIME, "'%s': a length = %d outside [1, %d]", n->name, (int)rec[2] + 1, (int)rec[3]);
    return lg_fail(LG_ERR_RUNTIME, "%s '%s': index %d outside [0, %d)",
                   n->op == LG_OP_GATHER ? "gather" : "scatter_add", n->name, (int)rec[2], (int)rec[3]);
}

lg_status lg_cuda_sync(lg_cuda_ctx *c)
{
    char what[32];
    snprintf(what, sizeof what, "cuda:%d", c->device);
    lg_status st = lg_cuda_status(cudaStreamSynchronize(c->stream), "cudaStreamSynchronize", what);
    if (st) return st;
    int32_t rec[4];
    st = lg_cuda_status(cudaMemcpy(rec, c->err, sizeof rec, cudaMemcpyDeviceToHost), "cudaMemcpy",
                        "reading the kernels' error record");
    if (st) return st;
    if (rec[0]) {
        st = recorded_error(c, rec);
        /* on the context's stream: it is non-blocking, so a cudaMemset on the
         * legacy stream would not be ordered before the next kernels */
        cudaMemsetAsync(c->err, 0, sizeof rec, c->stream);
    }
    c->n_sites = 0;
    return st;
}

lg_status lg_cuda_mem_info(lg_cuda_ctx *c, size_t *free_bytes, size_t *total_bytes)
{
    char what[32];
    snprintf(what, sizeof what, "cuda:%d", c->device);
    return lg_cuda_status(cudaMemGetInfo(free_bytes, total_bytes), "cudaMemGetInfo", what);
}

void lg_cuda_bcast_init(struct lg_cuda_bcast *b, lg_shape out, const lg_buf *in, int n_in)
{
    lg_bcast bc;
    lg_bcast_init(&bc, out, in, n_in);
    memset(b, 0, sizeof *b);
    b->rank = bc.rank;
    b->n_in = bc.n_in;
    b->same = bc.same;
    b->numel = bc.numel;
    memcpy(b->dims, bc.dims, sizeof b->dims);
    memcpy(b->strides, bc.strides, sizeof b->strides);
}
