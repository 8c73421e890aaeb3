/*
 * cuda_backend.c — the CUDA pieces behind backend.h: "cuda:N" opens a
 * context on device N (cuda_device.c) and wraps its memory, copies, kernel
 * table and optimizer functions. Loops cuDNN computes exactly become the
 * fused rnn op pair on cuDNN (cuda_rnn.c, asked through rnn_plan); others
 * stay loops whose bodies the executor runs per step on the device, and
 * lg_program_report says why. A program's schedule can be captured and
 * replayed as a CUDA Graph (cuda_graph.c, the executor decides when).
 */
#include <string.h>

#include "backends/cuda/cuda.h"
#include "graph/program.h"
#include "ops/rnn.h"

/* The backend's context with its device current on this thread: CUDA's
 * current device is per thread, and a process may hold the backends of
 * several devices (a cheap check when it is current already). */
static lg_cuda_ctx *ctx(const lg_backend *b)
{
    lg_cuda_ctx *c = b->ctx;
    int current = -1;
    if (cudaGetDevice(&current) != cudaSuccess || current != c->device) cudaSetDevice(c->device);
    return c;
}

static lg_status cu_alloc(const lg_backend *b, size_t bytes, void **out) { return lg_cuda_alloc(ctx(b), bytes, out); }
static void cu_free(const lg_backend *b, void *p) { lg_cuda_free(ctx(b), p); }
static lg_status cu_h2d(const lg_backend *b, void *dst, const void *src, size_t bytes)
{
    return lg_cuda_copy_h2d(ctx(b), dst, src, bytes);
}
static lg_status cu_d2h(const lg_backend *b, void *dst, const void *src, size_t bytes)
{
    return lg_cuda_copy_d2h(ctx(b), dst, src, bytes);
}
static lg_status cu_d2d(const lg_backend *b, void *dst, const void *src, size_t bytes)
{
    return lg_cuda_copy_d2d(ctx(b), dst, src, bytes);
}
static lg_status cu_zero(const lg_backend *b, void *dst, size_t bytes) { return lg_cuda_memset0(ctx(b), dst, bytes); }
static lg_status cu_sync(const lg_backend *b) { return lg_cuda_sync(ctx(b)); }

static bool cu_supports(const lg_backend *b, const lg_node *n)
{
    (void)b;
    /* an rnn pair runs on cuDNN only as rnn_plan sized it */
    if (n->op == LG_OP_RNN || n->op == LG_OP_RNN_GRAD)
        return n->attrs.n_ints >= 2 && n->attrs.n_ints == (lg_rnn_node_flags(n) & LG_RNN_STACK ? 5 : 4);
    return lg_cuda_kernel(n->op) != NULL;
}

static bool cu_rnn_plan(const lg_backend *b, const lg_rnn_desc *d, lg_rnn_sizes *train, lg_rnn_sizes *forward,
                        char *why, size_t len)
{
    ctx(b)->allow_tf32 = lg_tf32_allowed(); /* cuDNN's spaces depend on its math type */
    return lg_cuda_rnn_plan(ctx(b), d, train, forward, why, len);
}

static lg_status cu_run(const lg_backend *b, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    ctx(b)->allow_tf32 = lg_tf32_allowed(); /* lg_allow_tf32 (program.h), read by the matmuls and cuDNN */
    return lg_cuda_kernel(n->op)(ctx(b), n, in, out);
}

static lg_status cu_sgd(const lg_backend *b, lg_dtype dt, int64_t n, void *p, const void *g, void *m, double lr,
                        double mu, bool nesterov)
{
    return lg_cuda_sgd_update(ctx(b), dt, n, p, g, m, lr, mu, nesterov);
}

static lg_status cu_adam(const lg_backend *b, lg_dtype dt, int64_t n, void *p, const void *g, void *const *slots,
                         double lr, double b1, double b2, double eps, bool amsgrad, int64_t t)
{
    return lg_cuda_adam_update(ctx(b), dt, n, p, g, slots, lr, b1, b2, eps, amsgrad, t);
}

static lg_status cu_rmsprop(const lg_backend *b, lg_dtype dt, int64_t n, void *p, const void *g, void *const *slots,
                            double lr, double rho, double mu, double eps, bool centered)
{
    return lg_cuda_rmsprop_update(ctx(b), dt, n, p, g, slots, lr, rho, mu, eps, centered);
}

static lg_status cu_clip(const lg_backend *b, lg_dtype dt, void *g, const int64_t *offsets, int n, double cv, double cn,
                         double gcn)
{
    return lg_cuda_clip_grads(ctx(b), dt, g, offsets, n, cv, cn, gcn);
}

static lg_status cu_norm(const lg_backend *b, lg_dtype dt, const void *g, int64_t n, double *norm)
{
    return lg_cuda_global_norm(ctx(b), dt, g, n, norm);
}

static lg_status cu_scale(const lg_backend *b, lg_dtype dt, void *x, int64_t n, double w)
{
    return lg_cuda_scale(ctx(b), dt, x, n, w);
}

static void *cu_stream(const lg_backend *b) { return ctx(b)->stream; }

static lg_status cu_capture_begin(const lg_backend *b) { return lg_cuda_capture_begin(ctx(b)); }
static lg_status cu_capture_end(const lg_backend *b, bool keep, void **graph, size_t *n_nodes)
{
    lg_cuda_graph *g = NULL;
    lg_status st = lg_cuda_capture_end(ctx(b), keep, &g, n_nodes);
    *graph = g;
    return st;
}
static lg_status cu_graph_launch(const lg_backend *b, void *graph) { return lg_cuda_graph_launch(ctx(b), graph); }
static void cu_graph_free(const lg_backend *b, void *graph)
{
    ctx(b); /* its device current */
    lg_cuda_graph_free(graph);
}

static void cu_report(const lg_backend *b, FILE *out)
{
    struct cudaDeviceProp prop;
    size_t free_b = 0, total = 0;
    bool named = cudaGetDeviceProperties(&prop, ctx(b)->device) == cudaSuccess;
    if (lg_cuda_mem_info(ctx(b), &free_b, &total) != LG_OK) {
        fprintf(out, "device %s%s%s: memory figures unavailable (%s)\n", b->name, named ? ", " : "",
                named ? prop.name : "", lg_last_error());
        return;
    }
    fprintf(out, "device %s%s%s: %.1f of %.1f MiB free; f32 matmuls %s\n", b->name, named ? ", " : "",
            named ? prop.name : "", (double)free_b / (1024.0 * 1024.0), (double)total / (1024.0 * 1024.0),
            lg_tf32_allowed() ? "may use TF32" : "in FP32");
}

lg_status lg_backend_cuda_open(int index, const lg_backend **out)
{
    *out = NULL;
    lg_cuda_ctx *c = NULL;
    lg_status st = lg_cuda_ctx_new(index, &c);
    if (st) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", lg_last_error());
        return lg_fail(st, "device 'cuda:%d': %s", index, msg);
    }
    lg_backend *b = calloc(1, sizeof *b);
    char *name = malloc(32);
    if (!b || !name) {
        free(b), free(name);
        lg_cuda_ctx_free(c);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "device 'cuda:%d': out of host memory", index);
    }
    snprintf(name, 32, "cuda:%d", index);
    *b = (lg_backend){
        .name = name, .host_memory = false, .window_access = true, .ctx = c, .alloc = cu_alloc, .free = cu_free,
        .copy_h2d = cu_h2d, .copy_d2h = cu_d2h, .copy_d2d = cu_d2d, .zero = cu_zero, .sync = cu_sync, .supports_op = cu_supports,
        .rnn_plan = cu_rnn_plan, .run_op = cu_run, .sgd_update = cu_sgd, .adam_update = cu_adam, .rmsprop_update = cu_rmsprop,
        .clip_grads = cu_clip, .grad_norm = cu_norm, .report = cu_report,
        .scale = cu_scale, .native_stream = cu_stream,
        .graph_name = "CUDA graph", .capture_begin = cu_capture_begin, .capture_end = cu_capture_end,
        .graph_launch = cu_graph_launch, .graph_free = cu_graph_free,
    };
    *out = b; /* kept for the life of the process (registry.c) */
    return LG_OK;
}
