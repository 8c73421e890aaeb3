/*
 * cudnn_rnn.h — a fused LSTM/GRU/SimpleRNN stack on cuDNN 9's RNN API
 * (cudnnRNNForward, cudnnRNNBackwardData_v8, cudnnRNNBackwardWeights_v8),
 * with Keras-layout weights. Private to the library; the fused rnn op pair
 * runs on it (cuda_rnn.c), with the weight and reserve spaces in the rnn
 * node's workspace (the _in calls); the calls without _in keep both in
 * the object (the GPU suite and bench/cudnn_lstm.c use them).
 *
 *     lg_rnn_spec s;                                   // from lg_rnn_eligible
 *     lg_cudnn_rnn *r = NULL;
 *     lg_cudnn_rnn_new(ctx, &s, B, T, false, &r);      // x [B, T, F]
 *     lg_rnn_src src[2];                               // where the Keras params lie
 *     lg_rnn_src_dense(&s, src);                       // (or the parameter block's offsets)
 *     lg_cudnn_rnn_bind(r, src);
 *     lg_cudnn_rnn_pack(r, params);                    // after every optimizer step
 *     lg_cudnn_rnn_forward(r, lengths, true, x, h0, c0, y, hT, cT);
 *     lg_cudnn_rnn_backward(r, x, h0, c0, y, dy, dhT, dcT, dx, dh0, dc0, dparams);
 *     lg_cudnn_rnn_free(r);
 *
 * Shapes (device pointers, the spec's dtype): x [B, T, F] (or [T, B, F]
 * with time_major), y [B, T, D*u] (D = 2 when bidirectional: forward then
 * backward units), states h, c [L*D, B, u] (L layers; pseudo-layer order
 * layer * D + direction). c, cx, cy and their gradients are LSTM only (NULL
 * otherwise); hx, cx NULL mean zeros; hy, cy, dhy, dcy, dhx, dcx may be NULL.
 *
 * Lengths (host i32 [B], each in [1, T], or NULL for T): cuDNN's
 * seqLengthArray. Past its length an example's outputs are 0 and its final
 * states are those after its last valid step, which is lg_rnn's masking
 * (layers.h). The reserve space of a training forward is kept for the
 * backward call that follows it; the weight gradient buffer is zeroed before
 * cudnnRNNBackwardWeights_v8 (which accumulates) and unpacked into
 * Keras-layout gradients: dparams gets every Keras element's gradient.
 *
 * f32 runs in FP32 (CUDNN_FMA_MATH) unless the context allows TF32; f64 in
 * FP64. Errors: cuDNN failures name the call (LG_ERR_OUT_OF_MEMORY for
 * allocations, naming the bytes), a layout cuDNN reports unlike the spec's
 * is LG_ERR_RUNTIME naming the matrix, bad lengths LG_ERR_INVALID_ARGUMENT.
 */
#ifndef LG_CUDNN_RNN_H
#define LG_CUDNN_RNN_H

#include "backends/cuda/cuda.h"
#include "backends/cuda/rnn_pack.h"

typedef struct lg_cudnn_rnn lg_cudnn_rnn;

lg_status lg_cudnn_rnn_new(lg_cuda_ctx *c, const lg_rnn_spec *s, int64_t batch, int64_t max_steps, bool time_major,
                           lg_cudnn_rnn **out);
void lg_cudnn_rnn_free(lg_cudnn_rnn *r); /* NULL is fine */

/* The weight space's layout as cuDNN reported it. */
const lg_rnn_wlayout *lg_cudnn_rnn_layout(const lg_cudnn_rnn *r);
/* Device bytes held: weight space, its gradient, the map, workspace and
 * reserve space (for the program report). */
size_t lg_cudnn_rnn_device_bytes(const lg_cudnn_rnn *r);

/* Where the Keras parameters lie in the flat buffers lg_cudnn_rnn_pack and
 * lg_cudnn_rnn_backward get: src[lg_rnn_pseudo_layers(s)]. */
lg_status lg_cudnn_rnn_bind(lg_cudnn_rnn *r, const lg_rnn_src *src);
/* Pack the Keras parameters (device, bound layout) into the weight space. */
lg_status lg_cudnn_rnn_pack(lg_cudnn_rnn *r, const void *params);

lg_status lg_cudnn_rnn_forward(lg_cudnn_rnn *r, const int32_t *lengths, bool training, const void *x, const void *hx,
                               const void *cx, void *y, void *hy, void *cy);
/* The gradients of the last training forward: dy [like y], dhy, dcy (NULL
 * for zeros) in; dx, dhx, dcx (NULL to skip dhx, dcx) and the Keras-layout
 * parameter gradients dparams out. */
lg_status lg_cudnn_rnn_backward(lg_cudnn_rnn *r, const void *x, const void *hx, const void *cx, const void *y,
                                const void *dy, const void *dhy, const void *dcy, void *dx, void *dhx, void *dcx,
                                void *dparams);

/* The same steps with the caller's spaces: weights (weight_bytes, packed
 * through the bound map), reserve (reserve_bytes; NULL: an inference
 * forward, which keeps none), dweights (weight_bytes, packed; zeroed here
 * before cuDNN accumulates into it). Spaces need 256-byte alignment. Both
 * run over the lengths of the last set_lengths (host i32 [batch] or NULL,
 * as above), which for a backward must be those of the forward that
 * filled reserve. */
lg_status lg_cudnn_rnn_set_lengths(lg_cudnn_rnn *r, const int32_t *lengths);
lg_status lg_cudnn_rnn_forward_in(lg_cudnn_rnn *r, const void *weights, void *reserve, const void *x, const void *hx, const void *cx, void *y, void *hy, void *cy);
lg_status lg_cudnn_rnn_backward_in(lg_cudnn_rnn *r, const void *weights, void *reserve, void *dweights, const void *x,
                                   const void *hx, const void *cx, const void *y, const void *dy, const void *dhy,
                                   const void *dcy, void *dx, void *dhx, void *dcx);
/* Its sizes (the reserve space a training forward over every example's
 * max_steps needs), the bound map (device [layout size]; NULL before
 * bind), the lengths of the last call (device i32 [batch]) and its spec. */
size_t lg_cudnn_rnn_weight_bytes(const lg_cudnn_rnn *r);
size_t lg_cudnn_rnn_reserve_bytes(const lg_cudnn_rnn *r);
/* The reserve space the last set_lengths's lengths need (at most the above). */
size_t lg_cudnn_rnn_reserve_needed(const lg_cudnn_rnn *r);
const int64_t *lg_cudnn_rnn_map(const lg_cudnn_rnn *r);
const int32_t *lg_cudnn_rnn_lengths(const lg_cudnn_rnn *r);
const lg_rnn_spec *lg_cudnn_rnn_spec(const lg_cudnn_rnn *r);

#endif
