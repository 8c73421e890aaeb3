/*
 * cuda.h — the CUDA backend's pieces: a device context (memory, copies,
 * sync), one kernel per compute op, the optimizer updates and gradient
 * clipping on device blocks. Private to the library; built into
 * loopgrad_cuda only when meson finds the toolkit and cuDNN.
 *
 * Programs reach these through backends/backend.h: cuda_backend.c wraps a
 * context as the backend "cuda:N". The GPU suite (tests/test_cuda.c) also
 * calls them directly.
 *
 *     lg_cuda_ctx *c = NULL;
 *     if (lg_cuda_ctx_new(0, &c) != LG_OK) ...;   // "cuda:0"
 *     void *d = NULL;
 *     lg_cuda_alloc(c, bytes, &d);
 *     lg_cuda_copy_h2d(c, d, host, bytes);
 *     lg_cuda_add(c, node, in, out);               // lg_buf data are device pointers
 *     lg_cuda_copy_d2h(c, host, d, bytes);         // waits for the stream
 *     lg_cuda_free(c, d);
 *     lg_cuda_ctx_free(c);
 *
 * Work is queued on the context's one stream in call order, so kernels
 * need no synchronisation between them; lg_cuda_copy_d2h and lg_cuda_sync
 * wait for it. A context is used by one thread at a time, with its device
 * current on that thread (lg_cuda_ctx_new makes it current on the calling
 * thread; the backend, cuda_backend.c, makes it current before each call,
 * so backends of several devices can share a thread).
 *
 * Errors: every CUDA, cuBLAS and cuDNN failure becomes an lg_status whose
 * message names the call and what it was for: no device or a driver older
 * than the runtime (LG_ERR_UNSUPPORTED, saying so plainly), out of device
 * memory (LG_ERR_OUT_OF_MEMORY, naming the bytes asked for and those free),
 * anything else LG_ERR_RUNTIME. Kernels whose data can be out of range
 * (gather, scatter_add, sparse_softmax_xent) cannot stop the stream: they
 * record the first bad index, and the next lg_cuda_sync (or d2h copy)
 * fails with the same message the CPU kernel gives, naming the node.
 */
#ifndef LG_CUDA_H
#define LG_CUDA_H

#include <cuda_runtime.h>

#include "backends/backend.h"
#include "backends/cuda/cuda_cublas.h"

typedef struct cudnnContext *lg_cudnn_handle; /* cudnnHandle_t, without cudnn.h here */

typedef struct lg_cuda_ctx {
    int device;
    cudaStream_t stream;
    lg_cublas_api cublas; /* opened with the context (cuda_cublas.h) */
    cublasHandle_t blas;
    lg_cudnn_handle dnn; /* made on first use (cudnn_rnn.c) */
    bool allow_tf32;     /* cuBLAS and cuDNN f32 may use TF32 tensor cores */
    int32_t *err;        /* device int32 [4]: kernels.h's first-error record */
    double *scratch;     /* device double [1]: the gradient-norm accumulator */
    void *partials;      /* device, LG_CUDA_REDUCE_PARTIALS doubles: split reductions' chunks (kernels.h) */
    /* The nodes whose kernels may record an error since the last sync; a
     * kernel's site is its index here. */
    const lg_node **sites;
    int n_sites, cap_sites;
    struct lg_cuda_rnn_entry *rnns; /* cuda_rnn.c's cuDNN RNNs per shape */
    int capture_sites;              /* n_sites when the capture under way began (cuda_graph.c) */
} lg_cuda_ctx;

/* A context on device `device` (0 for "cuda:0"): its stream, cuBLAS handle
 * and error record. LG_ERR_UNSUPPORTED when there is no device or the
 * driver is too old, LG_ERR_INVALID_ARGUMENT for a device number not
 * present, with the count in the message. */
lg_status lg_cuda_ctx_new(int device, lg_cuda_ctx **out);
void lg_cuda_ctx_free(lg_cuda_ctx *c); /* NULL is fine */

/* TF32 for f32 matmuls and cuDNN RNNs: off by default (exact FP32). */
void lg_cuda_set_tf32(lg_cuda_ctx *c, bool allow);

/* Device memory: *out NULL for 0 bytes; LG_ERR_OUT_OF_MEMORY names the
 * bytes. Free accepts NULL. */
lg_status lg_cuda_alloc(lg_cuda_ctx *c, size_t bytes, void **out);
void lg_cuda_free(lg_cuda_ctx *c, void *p);
/* Copies queued on the stream; h2d reads src before it returns (pageable
 * memory is staged), d2h waits until dst holds the data and reports any
 * error recorded by earlier kernels (as lg_cuda_sync). */
lg_status lg_cuda_copy_h2d(lg_cuda_ctx *c, void *dst, const void *src, size_t bytes);
lg_status lg_cuda_copy_d2h(lg_cuda_ctx *c, void *dst, const void *src, size_t bytes);
lg_status lg_cuda_copy_d2d(lg_cuda_ctx *c, void *dst, const void *src, size_t bytes);
lg_status lg_cuda_memset0(lg_cuda_ctx *c, void *dst, size_t bytes);
/* Wait for the stream, then report the first error a kernel recorded. */
lg_status lg_cuda_sync(lg_cuda_ctx *c);
/* Free and total device memory, for reports. */
lg_status lg_cuda_mem_info(lg_cuda_ctx *c, size_t *free_bytes, size_t *total_bytes);

/* A CUDA runtime result as a status: LG_OK, or a failure naming `call` and
 * `what` (e.g. "cudaMalloc", "1048576 bytes for ..."). */
lg_status lg_cuda_status(cudaError_t e, const char *call, const char *what);
/* A launch's result for node n's kernel. */
lg_status lg_cuda_launched(cudaError_t e, const lg_node *n);
/* The site number kernels record n's errors under (-1 when out of memory:
 * the kernel then records under site -1 and the sync names no node). */
int32_t lg_cuda_site(lg_cuda_ctx *c, const lg_node *n);

/* ---- kernels --------------------------------------------------------------
 * One per compute op (op_list.h; control ops are the executor's), with
 * the CPU kernels' contract (src/backends/cpu/cpu.h): in and out hold device
 * pointers with concrete shapes, out is preallocated and never aliases in
 * but where backend.h allows it (elementwise ops, which read element i
 * before they write it). */
typedef lg_status (*lg_cuda_kernel_fn)(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out);

#define LG_X_DECL(ID, name) lg_status lg_cuda_##name(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out);
LG_COMPUTE_OPS(LG_X_DECL)
#undef LG_X_DECL
/* The fused elementwise op (cuda_elementwise.c); the rnn pair is below. */
lg_status lg_cuda_fused_elementwise(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out);

/* The kernel for op, NULL for sources and control ops (cuda_device.c). */
lg_cuda_kernel_fn lg_cuda_kernel(lg_op op);

/* ---- fused RNNs on cuDNN (cuda_rnn.c) ---------------------------------------
 * The rnn and rnn_grad ops (ops/rnn.h) of nodes rnn_plan sized; the plan
 * (backend.h's rnn_plan); the context's cuDNN RNNs, freed with it. */
struct lg_rnn_desc;
struct lg_rnn_sizes;
lg_status lg_cuda_rnn(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out);
lg_status lg_cuda_rnn_grad(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out);
bool lg_cuda_rnn_plan(lg_cuda_ctx *c, const struct lg_rnn_desc *d, struct lg_rnn_sizes *train,
                      struct lg_rnn_sizes *forward, char *why, size_t len);
void lg_cuda_rnn_cache_free(lg_cuda_ctx *c);

/* ---- CUDA Graphs (cuda_graph.c) ---------------------------------------------
 * backend.h's capture hooks: the work queued on the context's stream
 * between begin and end (kernels, cuBLAS GEMMs, d2d copies, memsets) is
 * recorded, not run, and instantiated as one executable graph that
 * lg_cuda_graph_launch queues with a single call. Capture uses
 * cudaStreamCaptureModeThreadLocal on the context's own stream (the legacy
 * default stream cannot be captured): a call on this thread that waits
 * for the device or allocates (cudaStreamSynchronize, cudaMemcpy,
 * cudaMalloc: lg_cuda_sync, lg_cuda_copy_d2h, lg_cuda_alloc) fails with
 * cudaErrorStreamCaptureUnsupported and invalidates the capture, and
 * lg_cuda_capture_end then reports it. A graph keeps the error sites
 * (lg_cuda_site) its kernels were captured with and puts them back into
 * the context before each launch, so a bad index in a replayed gather
 * still names its node at the next sync. */
typedef struct lg_cuda_graph lg_cuda_graph;
lg_status lg_cuda_capture_begin(lg_cuda_ctx *c);
/* Ends the capture (always). keep: instantiate it into *out with its node
 * count; else discard it (*out NULL). A failed capture clears the runtime's
 * last error, so the next launch does not report it. */
lg_status lg_cuda_capture_end(lg_cuda_ctx *c, bool keep, lg_cuda_graph **out, size_t *n_nodes);
lg_status lg_cuda_graph_launch(lg_cuda_ctx *c, lg_cuda_graph *g);
void lg_cuda_graph_free(lg_cuda_graph *g); /* NULL is fine */

/* Broadcasting parameters for kernels.h from the CPU's lg_bcast. */
struct lg_cuda_bcast;
void lg_cuda_bcast_init(struct lg_cuda_bcast *b, lg_shape out, const lg_buf *in, int n_in);

/* ---- optimizers on device blocks (cuda_optim.c) ----------------------------
 * The formulas of optim.h over n elements of the contiguous parameter,
 * gradient and slot blocks (device pointers, the optimizer's dtype); t is
 * the 1-based step. Slots as src/optim: SGD [momentum], Adam [m, v, v_hat],
 * RMSprop [velocity, momentum?, average_gradient?] (NULL where absent). */
lg_status lg_cuda_sgd_update(lg_cuda_ctx *c, lg_dtype dt, int64_t n, void *p, const void *g, void *momentum_slot,
                             double lr, double momentum, bool nesterov);
lg_status lg_cuda_adam_update(lg_cuda_ctx *c, lg_dtype dt, int64_t n, void *p, const void *g, void *const *slots,
                              double lr, double beta_1, double beta_2, double epsilon, bool amsgrad, int64_t t);
lg_status lg_cuda_rmsprop_update(lg_cuda_ctx *c, lg_dtype dt, int64_t n, void *p, const void *g, void *const *slots,
                                 double lr, double rho, double momentum, double epsilon, bool centered);
/* Keras clipping over the gradient block g, laid out by offsets[0..n_params]
 * (element offsets, as lg_optimizer's): at most one of clipvalue, clipnorm
 * (per parameter) and global_clipnorm is > 0. Runs on the device: no value
 * comes back to the host. */
lg_status lg_cuda_clip_grads(lg_cuda_ctx *c, lg_dtype dt, void *g, const int64_t *offsets, int n_params, double clipvalue,
                       double clipnorm, double global_clipnorm);
/* The L2 norm of g [n] (a host value: this one syncs). */
lg_status lg_cuda_global_norm(lg_cuda_ctx *c, lg_dtype dt, const void *g, int64_t n, double *norm);
/* x[i] *= w over n elements (backend.h's scale). */
lg_status lg_cuda_scale(lg_cuda_ctx *c, lg_dtype dt, void *x, int64_t n, double w);

#endif
