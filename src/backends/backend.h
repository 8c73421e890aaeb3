/*
 * backend.h — what a backend gives the executor. Private to the library.
 *
 * A backend is a table of functions over its own memory: allocation and
 * copies (host to device, device to host, device to device, zeroing, sync),
 * supports_op so the passes can ask "can you run this node?", one kernel per
 * compute op (reached through run_op), the optimizer updates and gradient
 * clipping over the contiguous parameter, gradient and slot blocks, and a
 * report of its memory. The executor (program.c) and the passes know no
 * backend by name: a program is compiled for the backend lg_backend_get
 * opens for the caller's device string ("cpu", "cuda:0").
 *
 * Pointers a backend hands out (alloc) are its device pointers: the
 * executor passes them to the backend's own functions only, offsets them
 * (p + bytes) and never dereferences them. host_memory backends (the CPU)
 * hand out host pointers, so host data can be read in place.
 *
 * Kernels: a kernel gets its node (for attributes and the name in messages)
 * and buffers with concrete shapes, whose data are the backend's pointers;
 * out[] is preallocated by the executor's memory plan and never aliases
 * in[], except that an elementwise op's output (add through stop_gradient
 * in op_list.h) may be the buffer of an input of the output's shape and
 * dtype: such kernels read element i before writing element i.
 *
 * Optimizers: the formulas of optim.h over n elements of blocks laid out
 * alike (p parameters, g gradients, slots as src/optim keeps them: SGD
 * [momentum], Adam [m, v, v_hat], RMSprop [velocity, momentum?,
 * average_gradient?], NULL where absent); t is the 1-based step. Clipping is
 * Keras's over the gradient block laid out by offsets[0..n_params] (at most
 * one of clipvalue, clipnorm per parameter, global_clipnorm is > 0), on the
 * backend, with no value coming back to the host.
 *
 * Errors: every function returns a status whose message names what failed
 * (the device's own error name for a device backend); nothing aborts.
 */
#ifndef LG_BACKEND_H
#define LG_BACKEND_H

#include "graph/internal.h"

typedef struct lg_buf {
    void *data;
    lg_dtype dtype;
    lg_shape shape;
} lg_buf;

/* A CPU-style kernel (the CPU backend's table, cpu.h). */
typedef lg_status (*lg_kernel_fn)(const lg_node *n, const lg_buf *in, lg_buf *out);

struct lg_rnn_desc;  /* ops/rnn.h */
struct lg_rnn_sizes;
typedef struct lg_backend lg_backend;
struct lg_backend {
    const char *name; /* the device string: "cpu", "cuda:0" */
    bool host_memory; /* its pointers are host pointers */
    /* its fused elementwise kernel reads an input in a window (a split's
     * piece) and writes output 0 in windows (a concatenation's pieces) as
     * cheaply as whole ones, so fuse_elementwise reads split pieces in
     * place and puts concatenated ones: a GPU thread computes each
     * element's offset anyway, where the CPU kernel would gather and
     * scatter each window row by row */
    bool window_access;
    void *ctx;        /* the backend's own state */

    /* memory: alloc gives NULL for 0 bytes and LG_ERR_OUT_OF_MEMORY naming
     * the bytes; free accepts NULL. Copies are ordered with the kernels;
     * copy_d2h returns once dst holds the data (and reports an error a
     * kernel recorded before it), sync waits for all queued work. */
    lg_status (*alloc)(const lg_backend *b, size_t bytes, void **out);
    void (*free)(const lg_backend *b, void *p);
    lg_status (*copy_h2d)(const lg_backend *b, void *dst, const void *src, size_t bytes);
    lg_status (*copy_d2h)(const lg_backend *b, void *dst, const void *src, size_t bytes);
    lg_status (*copy_d2d)(const lg_backend *b, void *dst, const void *src, size_t bytes);
    lg_status (*zero)(const lg_backend *b, void *dst, size_t bytes);
    lg_status (*sync)(const lg_backend *b);

    /* Whether run_op can run n (its op, dtypes and attributes). */
    bool (*supports_op)(const lg_backend *b, const lg_node *n);
    /* Whether run_op runs the fused rnn/rnn_grad pair (ops/rnn.h) for the
     * loop d describes; if so, the sizes its workspace and scratch need
     * (train: with a gradient; forward: LG_RNN_FORWARD_ONLY; {0, 0}: the
     * CPU's), if not, why (for lg_program_report, naming the loop). NULL:
     * supports_op decides, at the CPU's sizes. The fuse_rnn pass asks. */
    bool (*rnn_plan)(const lg_backend *b, const struct lg_rnn_desc *d, struct lg_rnn_sizes *train,
                     struct lg_rnn_sizes *forward, char *why, size_t len);
    /* n's kernel on buffers of this backend's memory. */
    lg_status (*run_op)(const lg_backend *b, const lg_node *n, const lg_buf *in, lg_buf *out);

    lg_status (*sgd_update)(const lg_backend *b, lg_dtype dt, int64_t n, void *p, const void *g, void *momentum_slot,
                            double lr, double momentum, bool nesterov);
    lg_status (*adam_update)(const lg_backend *b, lg_dtype dt, int64_t n, void *p, const void *g, void *const *slots,
                             double lr, double beta_1, double beta_2, double epsilon, bool amsgrad, int64_t t);
    lg_status (*rmsprop_update)(const lg_backend *b, lg_dtype dt, int64_t n, void *p, const void *g,
                                void *const *slots, double lr, double rho, double momentum, double epsilon,
                                bool centered);
    lg_status (*clip_grads)(const lg_backend *b, lg_dtype dt, void *g, const int64_t *offsets, int n_params,
                            double clipvalue, double clipnorm, double global_clipnorm);
    /* The L2 norm of g [n], summed in double (a host value). */
    lg_status (*grad_norm)(const lg_backend *b, lg_dtype dt, const void *g, int64_t n, double *norm);

    /* Device backends only (NULL where host_memory, whose blocks the caller
     * reads in place). data[i] *= w over n elements of data (b's pointer),
     * rounded as the host's data-parallel code rounds: once, from double
     * (f32: (float)((double)x * w)), so a block scaled here and one scaled
     * on the host hold the same bits (src/train/dist.c). */
    lg_status (*scale)(const lg_backend *b, lg_dtype dt, void *data, int64_t n, double w);
    /* The native queue b's work is ordered on (a cudaStream_t for CUDA),
     * for a collective library that enqueues on it beside the kernels
     * (NCCL, src/dist/nccl.c); NULL where host_memory. */
    void *(*native_stream)(const lg_backend *b);

    /* Lines for lg_program_report: what the backend computes with and its
     * memory (bytes allocated through it, and the device's free and total). */
    void (*report)(const lg_backend *b, FILE *out);

    /* Graph capture, for a program whose launches cost more host time than
     * its kernels take (CUDA Graphs); all NULL where the backend has none
     * (the CPU). graph_name names it in reports ("CUDA graph").
     * capture_begin: from here the work this thread queues (kernels, d2d
     * copies, zeroing) is recorded, not run; anything that waits for the
     * device (copy_d2h, sync) or allocates fails meanwhile, and so makes
     * capture_end fail. capture_end: ends the capture (always, whether or
     * not the work queued since succeeded); keep: instantiate it into
     * *graph, with its node count (kernels and copies), else discard it
     * (*graph NULL, LG_OK). graph_launch queues one run of the graph's work
     * on the same pointers and values it was captured with (a kernel's bad
     * index still names its node at the next sync). graph_free accepts
     * NULL. */
    const char *graph_name;
    lg_status (*capture_begin)(const lg_backend *b);
    lg_status (*capture_end)(const lg_backend *b, bool keep, void **graph, size_t *n_nodes);
    lg_status (*graph_launch)(const lg_backend *b, void *graph);
    void (*graph_free)(const lg_backend *b, void *graph);
};

/* The CPU backend (always there). */
const lg_backend *lg_backend_cpu(void);

/* ---- registry (registry.c) ----------------------------------------------
 * Device strings are "<kind>" or "<kind>:<index>" ("cpu", "cuda:0"); NULL
 * and "" mean "cpu". A kind's opener makes the backend of one index; an
 * opened backend lives until the process ends and is shared by every
 * program on that device. Errors: LG_ERR_INVALID_ARGUMENT for a string
 * naming no known kind (it names the string and the kinds known), the
 * opener's status otherwise (for "cuda" in a build without CUDA:
 * LG_ERR_UNSUPPORTED, saying so; with CUDA but no usable GPU: the CUDA
 * error). */
typedef lg_status (*lg_backend_open_fn)(int index, const lg_backend **out);
lg_status lg_backend_get(const char *device, const lg_backend **out);
/* Add a kind (tests register backends of their own). LG_ERR_INVALID_ARGUMENT
 * for a kind known already or a full table. */
lg_status lg_backend_register(const char *kind, lg_backend_open_fn open);

/* The CUDA opener: the real one where loopgrad was built with CUDA
 * (backends/cuda/cuda_backend.c), else one that reports LG_ERR_UNSUPPORTED
 * (backends/no_cuda.c). meson picks the file; nothing else knows which. */
lg_status lg_backend_cuda_open(int index, const lg_backend **out);

#endif
