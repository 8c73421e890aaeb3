/*
 * cudnn_lstm.c — one LSTM training step on cuDNN, several ways in the same
 * run, so that ratios hold whatever the clocks do:
 *
 *   direct     a direct cuDNN call sequence (this file's own descriptors):
 *              cudnnRNNForward (training), cudnnRNNBackwardData_v8, a memset
 *              of the weight gradient, cudnnRNNBackwardWeights_v8
 *   wrapper    loopgrad's cuDNN wrapper (src/backends/cuda/cudnn_rnn.c) doing
 *              the same, plus packing Keras weights and unpacking gradients
 *   builtin    a loopgrad program compiled for cuda:0: lg_lstm's loop, which
 *              fuse_rnn turns into the rnn op pair on cuDNN, loss sum(ys R),
 *              gradients of kernel, recurrent_kernel and bias left on the
 *              device for an SGD step (lg_optimizer_step) after each run
 *   hand       the same program with the LSTM step written from ops
 *              (matmuls, split, sigmoid, tanh): fuse_rnn must match it
 *   peephole   the same program with examples/cells/peephole.c's step, which
 *              cuDNN cannot compute: the generic CUDA path, per-step kernels
 *
 *     bench/cudnn_lstm [--units 512] [--batch 64] [--steps 100] [--input 512] [--iters 20] [--tf32]
 *                      [--report]   (--report: each program's lg_program_report on stderr)
 *
 * Time-major data (cuDNN's SEQ_MAJOR layout, the rnn op's) on every side.
 * Each is timed by the wall clock over --iters steps after 3 warm-up steps,
 * the stream synchronised before and after (so host overhead counts), f32,
 * FP32 math unless --tf32. x and R live on the device (graph constants for
 * the programs), so nothing crosses the bus per step. Prints Markdown
 * table rows; exits 77 (nothing measured) without a GPU.
 */
#include <cudnn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/cuda/cudnn_rnn.h"
#include "graph/loopgrad.h"
#include "hand_lstm.h"
#include "peephole.h"

#define CUDA(call)                                                                                 \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "cudnn_lstm: %s: %s\n", #call, cudaGetErrorString(e_));                \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)
#define DNN(call)                                                                                  \
    do {                                                                                           \
        cudnnStatus_t s_ = (call);                                                                 \
        if (s_ != CUDNN_STATUS_SUCCESS) {                                                          \
            fprintf(stderr, "cudnn_lstm: %s: %s\n", #call, cudnnGetErrorString(s_));               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)
#define LG(call)                                                                                   \
    do {                                                                                           \
        if ((call) != LG_OK) {                                                                     \
            fprintf(stderr, "cudnn_lstm: %s: %s\n", #call, lg_last_error());                       \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static void *device_random(size_t n, unsigned seed)
{
    float *h = malloc(n * sizeof *h);
    srand(seed);
    for (size_t i = 0; i < n; i++) h[i] = (float)rand() / (float)RAND_MAX * 0.2f - 0.1f;
    void *d = NULL;
    CUDA(cudaMalloc(&d, n * sizeof *h));
    CUDA(cudaMemcpy(d, h, n * sizeof *h, cudaMemcpyHostToDevice));
    /* a copy from pageable memory may return before it lands, and the
     * readers run on a non-blocking stream, which does not wait for it */
    CUDA(cudaDeviceSynchronize());
    free(h);
    return d;
}

typedef struct sizes {
    int units, batch, steps, input, iters;
    bool tf32, report;
} sizes;

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* The direct sequence: ms per step. */
static double direct(const sizes *z, cudaStream_t stream, const void *x, const void *dy, void *y, void *dx)
{
    cudnnHandle_t h;
    DNN(cudnnCreate(&h));
    DNN(cudnnSetStream(h, stream));
    cudnnDropoutDescriptor_t drop;
    DNN(cudnnCreateDropoutDescriptor(&drop));
    DNN(cudnnSetDropoutDescriptor(drop, h, 0.0f, NULL, 0, 0));
    cudnnRNNDescriptor_t rnn;
    DNN(cudnnCreateRNNDescriptor(&rnn));
    DNN(cudnnSetRNNDescriptor_v8(rnn, CUDNN_RNN_ALGO_STANDARD, CUDNN_LSTM, CUDNN_RNN_DOUBLE_BIAS, CUDNN_UNIDIRECTIONAL,
                                 CUDNN_LINEAR_INPUT, CUDNN_DATA_FLOAT, CUDNN_DATA_FLOAT,
                                 z->tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH, z->input, z->units, z->units, 1, drop,
                                 CUDNN_RNN_PADDED_IO_ENABLED));
    int *lengths = malloc((size_t)z->batch * sizeof *lengths);
    for (int b = 0; b < z->batch; b++) lengths[b] = z->steps;
    int32_t *dev_lengths;
    CUDA(cudaMalloc((void **)&dev_lengths, (size_t)z->batch * sizeof *dev_lengths));
    CUDA(cudaMemcpy(dev_lengths, lengths, (size_t)z->batch * sizeof *lengths, cudaMemcpyHostToDevice));
    CUDA(cudaDeviceSynchronize()); /* as in device_random */
    float fill = 0;
    cudnnRNNDataDescriptor_t xd, yd;
    DNN(cudnnCreateRNNDataDescriptor(&xd));
    DNN(cudnnCreateRNNDataDescriptor(&yd));
    DNN(cudnnSetRNNDataDescriptor(xd, CUDNN_DATA_FLOAT, CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED, z->steps, z->batch,
                                  z->input, lengths, &fill));
    DNN(cudnnSetRNNDataDescriptor(yd, CUDNN_DATA_FLOAT, CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED, z->steps, z->batch,
                                  z->units, lengths, &fill));
    cudnnTensorDescriptor_t hd;
    DNN(cudnnCreateTensorDescriptor(&hd));
    int dims[3] = {1, z->batch, z->units}, strides[3] = {z->batch * z->units, z->units, 1};
    DNN(cudnnSetTensorNdDescriptor(hd, CUDNN_DATA_FLOAT, 3, dims, strides));
    size_t wbytes, work, reserve;
    DNN(cudnnGetRNNWeightSpaceSize(h, rnn, &wbytes));
    DNN(cudnnGetRNNTempSpaceSizes(h, rnn, CUDNN_FWD_MODE_TRAINING, xd, &work, &reserve));
    void *w = device_random(wbytes / 4, 3), *dw, *ws, *rs;
    CUDA(cudaMalloc(&dw, wbytes));
    CUDA(cudaMalloc(&ws, work));
    CUDA(cudaMalloc(&rs, reserve));
    double t0 = 0;
    for (int it = -3; it < z->iters; it++) {
        if (it == 0) {
            CUDA(cudaStreamSynchronize(stream));
            t0 = now_ms();
        }
        DNN(cudnnRNNForward(h, rnn, CUDNN_FWD_MODE_TRAINING, dev_lengths, xd, x, yd, y, hd, NULL, NULL, hd, NULL, NULL,
                            wbytes, w, work, ws, reserve, rs));
        DNN(cudnnRNNBackwardData_v8(h, rnn, dev_lengths, yd, y, dy, xd, dx, hd, NULL, NULL, NULL, hd, NULL, NULL, NULL,
                                    wbytes, w, work, ws, reserve, rs));
        CUDA(cudaMemsetAsync(dw, 0, wbytes, stream));
        DNN(cudnnRNNBackwardWeights_v8(h, rnn, CUDNN_WGRAD_MODE_ADD, dev_lengths, xd, x, hd, NULL, yd, y, wbytes, dw,
                                       work, ws, reserve, rs));
    }
    CUDA(cudaStreamSynchronize(stream));
    double ms = now_ms() - t0;
    cudaFree(w), cudaFree(dw), cudaFree(ws), cudaFree(rs), cudaFree(dev_lengths);
    cudnnDestroyRNNDataDescriptor(xd), cudnnDestroyRNNDataDescriptor(yd), cudnnDestroyTensorDescriptor(hd);
    cudnnDestroyRNNDescriptor(rnn), cudnnDestroyDropoutDescriptor(drop), cudnnDestroy(h);
    free(lengths);
    return ms / z->iters;
}

/* loopgrad's wrapper: ms per step. */
static double wrapper(const sizes *z, lg_cuda_ctx *c, const void *x, const void *dy, void *y, void *dx)
{
    lg_cuda_set_tf32(c, z->tf32);
    lg_rnn_spec s = {.kind = LG_CELL_LSTM, .dtype = LG_F32, .input_dim = z->input, .units = z->units, .layers = 1,
                     .use_bias = true};
    lg_cudnn_rnn *r = NULL;
    LG(lg_cudnn_rnn_new(c, &s, z->batch, z->steps, true, &r));
    lg_rnn_src src[1];
    int64_t n = lg_rnn_src_dense(&s, src);
    void *params = device_random((size_t)n, 5), *dparams;
    CUDA(cudaMalloc(&dparams, (size_t)n * 4));
    LG(lg_cudnn_rnn_bind(r, src));
    double t0 = 0;
    for (int it = -3; it < z->iters; it++) {
        if (it == 0) {
            CUDA(cudaStreamSynchronize(c->stream));
            t0 = now_ms();
        }
        LG(lg_cudnn_rnn_pack(r, params));
        LG(lg_cudnn_rnn_forward(r, NULL, true, x, NULL, NULL, y, NULL, NULL));
        LG(lg_cudnn_rnn_backward(r, x, NULL, NULL, y, dy, NULL, NULL, dx, NULL, NULL, dparams));
    }
    LG(lg_cuda_sync(c));
    double ms = now_ms() - t0;
    cudaFree(params), cudaFree(dparams);
    lg_cudnn_rnn_free(r);
    return ms / z->iters;
}

typedef enum variant { V_BUILTIN, V_HAND, V_PEEPHOLE, V_COUNT } variant;
static const char *const variant_names[V_COUNT] = {"builtin lg_lstm", "hand-written LSTM step", "peephole LSTM (examples/cells)"};

static lg_tensor *host_random(lg_shape s, uint64_t key)
{
    lg_tensor *t = NULL;
    LG(lg_tensor_new(LG_F32, s, &t));
    LG(lg_init_uniform(t, -0.1, 0.1, 9, key));
    return t;
}

/* A training step of variant v compiled for cuda:0: ms per step; *fused
 * says whether fuse_rnn put the loop on cuDNN. */
static double program_step(const sizes *z, variant v, bool *fused)
{
    int T = z->steps, B = z->batch, F = z->input, U = z->units;
    lg_graph *g = lg_graph_new();
    lg_tensor *xt = host_random(lg_shape_of(3, T, B, F), 1), *rt = host_random(lg_shape_of(3, T, B, U), 2);
    lg_value x = lg_constant(g, "x", xt), ys = lg_value_invalid();
    lg_value zeros = lg_broadcast_to(lg_scalar(g, LG_F32, 0), lg_shape_of(2, B, U));
    lg_cell *cell = NULL;
    if (v == V_BUILTIN) {
        cell = lg_cell_new(g, "lstm", F, lg_cell_opts_default(LG_CELL_LSTM, U));
        lg_rnn_opts o = lg_rnn_opts_default();
        o.return_sequences = true;
        o.time_major = true;
        lg_rnn_result r;
        LG(lg_rnn(g, NULL, cell, x, o, &r));
        ys = r.output;
    } else if (v == V_HAND) {
        hand_lstm cell = hand_lstm_new(g, "hand", F, U, LG_F32);
        LG(lg_init_uniform(lg_param_tensor(cell.kernel), -0.05, 0.05, 3, 1));
        LG(lg_init_uniform(lg_param_tensor(cell.recurrent_kernel), -0.05, 0.05, 3, 2));
        lg_loop_opts lo = lg_loop_opts_default();
        lo.time_major = true;
        LG(hand_lstm_sequence(g, &cell, x, lo, &ys, NULL));
    } else {
        peephole p = peephole_new(g, "peephole", F, U, LG_F32, 3);
        lg_value xb = lg_transpose(x, (int[]){1, 0, 2}), hs;
        LG(peephole_sequence(g, &p, xb, zeros, zeros, &hs, NULL, NULL));
        ys = lg_transpose(hs, (int[]){1, 0, 2});
    }
    lg_value loss = lg_sum(lg_mul(ys, lg_constant(g, "R", rt)), NULL, 0, false);
    if (lg_graph_error(g)) {
        fprintf(stderr, "cudnn_lstm: %s: %s\n", variant_names[v], lg_graph_error(g));
        exit(1);
    }
    int np = lg_graph_param_count(g);
    lg_value wrt[8], grads[8];
    for (int i = 0; i < np; i++) wrt[i] = lg_graph_param(g, i);
    lg_sgd_opts so = lg_sgd_opts_default();
    so.learning_rate = 1e-6;
    lg_optimizer *opt = NULL;
    LG(lg_optimizer_sgd(g, wrt, np, so, &opt));
    LG(lg_grad(g, loss, wrt, np, grads));
    lg_compile_opts co = lg_compile_opts_default();
    co.device = "cuda:0";
    lg_program *prog = NULL;
    LG(lg_program_compile_opts(g, NULL, 0, grads, np, co, &prog));
    char *report = lg_program_report(prog);
    *fused = report && strstr(report, "fused as lstm") && !strstr(report, "not fused");
    if (z->report) fprintf(stderr, "---- %s on cuda:0\n%s\n", variant_names[v], report ? report : lg_last_error());
    free(report);
    lg_tensor *out[8];
    for (int i = 0; i < np; i++) out[i] = lg_optimizer_grads(opt)[i];
    double t0 = 0;
    for (int it = -3; it < z->iters; it++) {
        if (it == 0) {
            (void)lg_param_tensor(wrt[0]); /* copies back: the queue is empty after it */
            t0 = now_ms();
        }
        LG(lg_program_run(prog, NULL, 0, out));
        LG(lg_optimizer_step(opt));
    }
    (void)lg_param_tensor(wrt[0]);
    double ms = now_ms() - t0;
    lg_program_free(prog);
    lg_optimizer_free(opt);
    lg_cell_free(cell);
    lg_graph_free(g);
    lg_tensor_free(xt), lg_tensor_free(rt);
    return ms / z->iters;
}

int main(int argc, char **argv)
{
    sizes z = {.units = 512, .batch = 64, .steps = 100, .input = 512, .iters = 20};
    for (int i = 1; i < argc; i++) {
        int *field = !strcmp(argv[i], "--units")   ? &z.units
                     : !strcmp(argv[i], "--batch") ? &z.batch
                     : !strcmp(argv[i], "--steps") ? &z.steps
                     : !strcmp(argv[i], "--input") ? &z.input
                     : !strcmp(argv[i], "--iters") ? &z.iters
                                                   : NULL;
        if (!strcmp(argv[i], "--tf32")) {
            z.tf32 = true;
        } else if (!strcmp(argv[i], "--report")) {
            z.report = true;
        } else if (field && i + 1 < argc && atoi(argv[i + 1]) > 0) {
            *field = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: cudnn_lstm [--units N] [--batch N] [--steps N] [--input N] [--iters N] [--tf32] [--report]\n");
            return 2;
        }
    }
    lg_allow_tf32(z.tf32); /* the programs on cuda:0 as the direct calls */
    lg_cuda_ctx *c = NULL;
    if (lg_cuda_ctx_new(0, &c) != LG_OK) {
        printf("cudnn_lstm: nothing measured: %s\n", lg_last_error());
        return 77;
    }
    size_t nx = (size_t)z.batch * z.steps * z.input, ny = (size_t)z.batch * z.steps * z.units;
    void *x = device_random(nx, 1), *dy = device_random(ny, 2), *y, *dx;
    CUDA(cudaMalloc(&y, ny * 4));
    CUDA(cudaMalloc(&dx, nx * 4));
    /* alternate, so that clocks and caches treat every side alike */
    double d = 1e30, w = 1e30, v[V_COUNT] = {1e30, 1e30, 1e30};
    bool fused[V_COUNT] = {false};
    for (int round = 0; round < 2; round++) {
        double t = direct(&z, c->stream, x, dy, y, dx);
        d = t < d ? t : d;
        t = wrapper(&z, c, x, dy, y, dx);
        w = t < w ? t : w;
        sizes zr = z;
        zr.report = z.report && round == 0; /* each program's report once */
        for (int k = 0; k < V_COUNT; k++) {
            t = program_step(&zr, (variant)k, &fused[k]);
            v[k] = t < v[k] ? t : v[k];
        }
    }
    struct cudaDeviceProp prop;
    CUDA(cudaGetDeviceProperties(&prop, 0));
    char shape[96];
    snprintf(shape, sizeof shape, "LSTM(%d) B%d T%d F%d %s", z.units, z.batch, z.steps, z.input, z.tf32 ? "TF32" : "FP32");
    printf("| GPU | step | what | ms/step | / direct cuDNN |\n");
    printf("|---|---|---|---:|---:|\n");
    printf("| %s | %s | direct cuDNN calls | %.3f | 1.000 |\n", prop.name, shape, d);
    printf("| %s | %s | loopgrad's cuDNN wrapper | %.3f | %.3f |\n", prop.name, shape, w, w / d);
    for (int k = 0; k < V_COUNT; k++)
        printf("| %s | %s | program on cuda:0: %s (%s) | %.3f | %.3f |\n", prop.name, shape, variant_names[k],
               fused[k] ? "fused on cuDNN" : "generic CUDA loop", v[k], v[k] / d);
    printf("hand / builtin %.3f; peephole / builtin %.3f\n", v[V_HAND] / v[V_BUILTIN], v[V_PEEPHOLE] / v[V_BUILTIN]);
    cudaFree(x), cudaFree(dy), cudaFree(y), cudaFree(dx);
    lg_cuda_ctx_free(c);
    return 0;
}
