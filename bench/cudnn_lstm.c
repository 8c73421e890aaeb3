/*
 * cudnn_lstm.c — one LSTM training step on cuDNN, twice in the same run:
 * a direct cuDNN call sequence (this file's own descriptors) and loopgrad's
 * wrapper (src/backends/cuda/cudnn_rnn.c: Keras weights packed through the
 * map, forward, backward data, zeroed weight gradient, backward weights,
 * gradients unpacked to Keras layout). The ratio is the wrapper's overhead.
 *
 *     bench/cudnn_lstm [--units 512] [--batch 64] [--steps 100] [--input 512] [--iters 20] [--tf32]
 *
 * A step is cudnnRNNForward (training), cudnnRNNBackwardData_v8, a memset
 * of the weight gradient and cudnnRNNBackwardWeights_v8; the wrapper adds
 * packing and unpacking. Timed with CUDA events over --iters steps after 3
 * warm-up steps, f32, FP32 math unless --tf32. Prints one Markdown table
 * row. Exits 77 (nothing measured) without a GPU.
 */
#include <cudnn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cuda/cudnn_rnn.h"

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
    free(h);
    return d;
}

typedef struct sizes {
    int units, batch, steps, input, iters;
    bool tf32;
} sizes;

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
    float fill = 0;
    cudnnRNNDataDescriptor_t xd, yd;
    DNN(cudnnCreateRNNDataDescriptor(&xd));
    DNN(cudnnCreateRNNDataDescriptor(&yd));
    DNN(cudnnSetRNNDataDescriptor(xd, CUDNN_DATA_FLOAT, CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED, z->steps, z->batch,
                                  z->input, lengths, &fill));
    DNN(cudnnSetRNNDataDescriptor(yd, CUDNN_DATA_FLOAT, CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED, z->steps, z->batch,
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
    cudaEvent_t t0, t1;
    CUDA(cudaEventCreate(&t0));
    CUDA(cudaEventCreate(&t1));
    for (int it = -3; it < z->iters; it++) {
        if (it == 0) CUDA(cudaEventRecord(t0, stream));
        DNN(cudnnRNNForward(h, rnn, CUDNN_FWD_MODE_TRAINING, dev_lengths, xd, x, yd, y, hd, NULL, NULL, hd, NULL, NULL,
                            wbytes, w, work, ws, reserve, rs));
        DNN(cudnnRNNBackwardData_v8(h, rnn, dev_lengths, yd, y, dy, xd, dx, hd, NULL, NULL, NULL, hd, NULL, NULL, NULL,
                                    wbytes, w, work, ws, reserve, rs));
        CUDA(cudaMemsetAsync(dw, 0, wbytes, stream));
        DNN(cudnnRNNBackwardWeights_v8(h, rnn, CUDNN_WGRAD_MODE_ADD, dev_lengths, xd, x, hd, NULL, yd, y, wbytes, dw,
                                       work, ws, reserve, rs));
    }
    CUDA(cudaEventRecord(t1, stream));
    CUDA(cudaEventSynchronize(t1));
    float ms = 0;
    CUDA(cudaEventElapsedTime(&ms, t0, t1));
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
    LG(lg_cudnn_rnn_new(c, &s, z->batch, z->steps, false, &r));
    lg_rnn_src src[1];
    int64_t n = lg_rnn_src_dense(&s, src);
    void *params = device_random((size_t)n, 5), *dparams;
    CUDA(cudaMalloc(&dparams, (size_t)n * 4));
    LG(lg_cudnn_rnn_bind(r, src));
    cudaEvent_t t0, t1;
    CUDA(cudaEventCreate(&t0));
    CUDA(cudaEventCreate(&t1));
    for (int it = -3; it < z->iters; it++) {
        if (it == 0) CUDA(cudaEventRecord(t0, c->stream));
        LG(lg_cudnn_rnn_pack(r, params));
        LG(lg_cudnn_rnn_forward(r, NULL, true, x, NULL, NULL, y, NULL, NULL));
        LG(lg_cudnn_rnn_backward(r, x, NULL, NULL, y, dy, NULL, NULL, dx, NULL, NULL, dparams));
    }
    CUDA(cudaEventRecord(t1, c->stream));
    CUDA(cudaEventSynchronize(t1));
    float ms = 0;
    CUDA(cudaEventElapsedTime(&ms, t0, t1));
    LG(lg_cuda_sync(c));
    cudaFree(params), cudaFree(dparams);
    lg_cudnn_rnn_free(r);
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
        } else if (field && i + 1 < argc && atoi(argv[i + 1]) > 0) {
            *field = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: cudnn_lstm [--units N] [--batch N] [--steps N] [--input N] [--iters N] [--tf32]\n");
            return 2;
        }
    }
    lg_cuda_ctx *c = NULL;
    if (lg_cuda_ctx_new(0, &c) != LG_OK) {
        printf("cudnn_lstm: nothing measured: %s\n", lg_last_error());
        return 77;
    }
    size_t nx = (size_t)z.batch * z.steps * z.input, ny = (size_t)z.batch * z.steps * z.units;
    void *x = device_random(nx, 1), *dy = device_random(ny, 2), *y, *dx;
    CUDA(cudaMalloc(&y, ny * 4));
    CUDA(cudaMalloc(&dx, nx * 4));
    /* alternate, so that clocks and caches treat both alike */
    double d1 = direct(&z, c->stream, x, dy, y, dx), w1 = wrapper(&z, c, x, dy, y, dx);
    double d2 = direct(&z, c->stream, x, dy, y, dx), w2 = wrapper(&z, c, x, dy, y, dx);
    double d = d1 < d2 ? d1 : d2, w = w1 < w2 ? w1 : w2;
    struct cudaDeviceProp prop;
    CUDA(cudaGetDeviceProperties(&prop, 0));
    printf("| GPU | LSTM | math | direct cuDNN ms/step | loopgrad wrapper ms/step | wrapper / direct |\n");
    printf("|---|---|---|---|---|---|\n");
    printf("| %s | u %d, B %d, T %d, F %d | %s | %.3f | %.3f | %.3f |\n", prop.name, z.units, z.batch, z.steps,
           z.input, z.tf32 ? "TF32" : "FP32", d, w, w / d);
    cudaFree(x), cudaFree(dy), cudaFree(y), cudaFree(dx);
    lg_cuda_ctx_free(c);
    return 0;
}
