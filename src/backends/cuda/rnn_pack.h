/*
 * rnn_pack.h — what cuDNN's RNN API can take, and how Keras-layout weights
 * map into its weight space. Plain C with no CUDA header, so it builds and
 * is tested on every machine (tests/test_rnn_pack.c); cudnn_rnn.c uses it.
 * Private to the library.
 *
 * Eligibility: a stack of recurrent layers (what a fuse pass matched) is
 * described layer by layer (lg_rnn_layer_desc); lg_rnn_eligible says
 * whether one cuDNN RNN computes exactly what the layers compute and, if
 * so, fills the lg_rnn_spec of that call. Refusals have a reason code and a
 * message naming the layer, for lg_program_report.
 *
 * Packing: cuDNN keeps one weight space per RNN; cudnnGetRNNWeightParams
 * gives, per pseudo-layer (layer * directions + direction) and linear layer
 * id, a matrix [rows = units, cols] (row-major) and a bias [units]. Linear
 * ids: 0..G-1 apply to x_t, G..2G-1 to h_{t-1}, for G gates in cuDNN's
 * order: LSTM i, f, g, o (Keras i, f, c, o: the same order); GRU r, z, n
 * (Keras z, r, h: ids 0 and 1 swap); SimpleRNN one. Keras keeps per
 * pseudo-layer kernel [in, G*u], recurrent_kernel [u, G*u] (gate k in
 * columns [k*u, (k+1)*u)) and bias [G*u] (LSTM, SimpleRNN: cuDNN's x-side
 * bias, the h-side bias 0) or [2, G*u] (GRU reset_after: row 0 the x-side
 * b_W, row 1 the h-side b_R). So cuDNN's W_k[j, c] = kernel[c, k'*u + j]
 * with k' Keras's gate for cuDNN's k.
 *
 * The map: for each element of the weight space, the index of its Keras
 * source element in a flat source buffer (where each pseudo-layer's three
 * Keras parameters start: lg_rnn_src), or -1 for a zero (LSTM's and
 * SimpleRNN's h-side bias). Packing is dst[i] = src[map[i]]; unpacking a
 * weight gradient is src_grad[map[i]] = dst_grad[i], which writes every
 * Keras element exactly once. The device runs the same map
 * (lg_cuda_launch_pack/unpack); lg_rnn_pack/unpack are the host reference.
 *
 * Spaces: where a fused rnn node on cuDNN keeps cuDNN's weight and reserve
 * spaces and its staging in its workspace and scratch (lg_rnn_spaces_of),
 * and what is copied between them and a merged node's parts
 * (lg_rnn_stages_of).
 */
#ifndef LG_RNN_PACK_H
#define LG_RNN_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graph/cells.h"
#include "graph/layers.h"

/* One recurrent layer as the fuse pass found it. */
typedef struct lg_rnn_layer_desc {
    const char *name;           /* for messages: the layer's scope */
    lg_cell_kind kind;          /* LG_CELL_KIND_COUNT: a cell no pattern matched */
    lg_dtype dtype;
    int64_t input_dim, units;
    lg_activation activation;           /* SimpleRNN: tanh or relu; LSTM/GRU: tanh */
    lg_activation recurrent_activation; /* LSTM/GRU: sigmoid */
    bool use_bias;
    bool reset_after;       /* GRU */
    bool peephole;          /* an LSTM whose gates read c */
    bool recurrent_dropout; /* a mask on h_{t-1} */
    bool input_dropout;     /* a mask on x_t (constant over time) */
    bool go_backwards;      /* steps run T-1..0 (each example from its last valid step) */
    bool hole_mask;         /* a mask [T, B] that may switch steps off mid-sequence */
    bool repeat_output;     /* masked steps output the kept h, not 0 (Keras 3's zero_output_for_mask
                               false; LG_RNN_REPEAT) */
    bool has_stop;          /* the loop has a stop condition */
    bool bidirectional;
    lg_merge_mode merge;    /* bidirectional */
} lg_rnn_layer_desc;

/* What cudnn_rnn.c builds a cuDNN RNN from. */
typedef struct lg_rnn_spec {
    lg_cell_kind kind;
    lg_dtype dtype;
    int64_t input_dim, units;
    int layers;
    bool bidirectional;
    bool use_bias;
    bool relu; /* SimpleRNN with relu (CUDNN_RNN_RELU) instead of tanh */
    /* A unidirectional stack read backwards: cuDNN reads forwards, so the
     * caller reverses each example's valid steps of x before the call and
     * of y after it (the whole stack reversed is the stack on reversed
     * input, reversed). */
    bool reverse;
} lg_rnn_spec;

typedef enum lg_rnn_refusal {
    LG_RNN_ELIGIBLE,
    LG_RNN_NO_LAYERS,              /* an empty stack */
    LG_RNN_CUSTOM_CELL,            /* not an LSTM, GRU or SimpleRNN */
    LG_RNN_DTYPE,                  /* not f32 or f64 */
    LG_RNN_ACTIVATION,             /* LSTM/GRU not tanh; SimpleRNN not tanh or relu */
    LG_RNN_RECURRENT_ACTIVATION,   /* LSTM/GRU gates not sigmoid */
    LG_RNN_RESET_BEFORE,       /* GRU reset_after false: cuDNN resets after */
    LG_RNN_PEEPHOLE,               /* cuDNN's LSTM has no peepholes */
    LG_RNN_RECURRENT_DROPOUT,      /* cuDNN has no mask on h_{t-1} */
    LG_RNN_GO_BACKWARDS,           /* stacked layers read in different directions */
    LG_RNN_HOLE_MASK,              /* a mask cuDNN's per-example lengths cannot express */
    LG_RNN_STOP_CONDITION,         /* cuDNN runs every step */
    LG_RNN_SIZE,                   /* dims beyond cuDNN's int range */
    LG_RNN_STACK_MISMATCH,         /* a stacked layer unlike the first, or not fed its output */
    LG_RNN_STACK_DROPOUT,          /* an input mask between stacked layers */
    LG_RNN_STACK_MERGE,            /* a bidirectional layer feeding the next, merged other than concat */
    LG_RNN_REPEAT_OUTPUT,          /* masked steps after a valid one output h; cuDNN's padding is 0 */
    LG_RNN_REFUSAL_COUNT
} lg_rnn_refusal;

/* A short name for a refusal code, e.g. "recurrent_dropout". */
const char *lg_rnn_refusal_name(lg_rnn_refusal r);

/* Whether one cuDNN RNN computes layers[0..n) (a stack: each layer reads the
 * previous one's output sequence). On LG_RNN_ELIGIBLE *spec is filled; a
 * refusal writes why (naming the layer) into why[why_len]. An input mask on
 * the first layer is eligible: the caller applies it to x before the call
 * (the mask is constant over time). cuDNN returns a bidirectional layer's
 * directions concatenated; the last layer's other merge modes are the
 * caller's to apply to that. */
lg_rnn_refusal lg_rnn_eligible(const lg_rnn_layer_desc *layers, int n, lg_rnn_spec *spec, char *why, size_t why_len);

/* Gates: 4 (LSTM), 3 (GRU), 1 (SimpleRNN); linear layer ids are 2 * gates. */
int lg_rnn_gates(lg_cell_kind kind);
int lg_rnn_directions(const lg_rnn_spec *s);
int lg_rnn_pseudo_layers(const lg_rnn_spec *s);
/* Keras's gate (column block) for cuDNN's gate k. */
int lg_rnn_keras_gate(lg_cell_kind kind, int k);
/* Input dim of pseudo-layer p (the first layer's x, or the layer below's
 * output: units times directions). */
int64_t lg_rnn_layer_input(const lg_rnn_spec *s, int p);

/* One matrix and its bias in a weight space, in elements; b_len 0 without
 * bias. */
typedef struct lg_rnn_mat {
    int64_t w_off, rows, cols;
    int64_t b_off, b_len;
} lg_rnn_mat;

/* A weight space's layout: mats[p * n_lin + id] for pseudo-layer p and
 * linear layer id; size in elements. */
typedef struct lg_rnn_wlayout {
    int n_pseudo, n_lin;
    int64_t size;
    lg_rnn_mat *mats;
} lg_rnn_wlayout;

/* A dense layout of the shapes cuDNN reports (each pseudo-layer's
 * matrices in id order, then its biases): the tests' stand-in for what
 * cudnnGetRNNWeightParams returns. False when out of memory. */
bool lg_rnn_layout_dense(const lg_rnn_spec *s, lg_rnn_wlayout *out);
/* Whether a layout (from cuDNN) has the shapes s implies: rows = units,
 * cols = the layer's input dim (x side) or units (h side), b_len = units
 * (0 without bias), inside size, no two matrices overlapping. A mismatch
 * writes what differs into why. */
bool lg_rnn_layout_check(const lg_rnn_spec *s, const lg_rnn_wlayout *l, char *why, size_t why_len);
void lg_rnn_layout_free(lg_rnn_wlayout *l);

/* Where a pseudo-layer's Keras parameters start in the flat source buffer,
 * in elements; bias -1 without bias. */
typedef struct lg_rnn_src {
    int64_t kernel, recurrent_kernel, bias;
} lg_rnn_src;

/* Keras parameter sizes of pseudo-layer p, in elements. */
int64_t lg_rnn_kernel_size(const lg_rnn_spec *s, int p);
int64_t lg_rnn_recurrent_size(const lg_rnn_spec *s, int p);
int64_t lg_rnn_bias_size(const lg_rnn_spec *s);
/* The sources back to back, pseudo-layer by pseudo-layer (kernel,
 * recurrent_kernel, bias): src[lg_rnn_pseudo_layers(s)]; returns the total
 * size in elements. */
int64_t lg_rnn_src_dense(const lg_rnn_spec *s, lg_rnn_src *src);

/* map[l->size] (see the overview). */
void lg_rnn_pack_map(const lg_rnn_spec *s, const lg_rnn_wlayout *l, const lg_rnn_src *src, int64_t *map);

/* The host reference of the device kernels: dst[i] = map[i] < 0 ? 0 :
 * src[map[i]], and src[map[i]] = dst[i], for n elements of dtype f32/f64. */
void lg_rnn_pack(lg_dtype dt, const int64_t *map, int64_t n, const void *src, void *dst);
void lg_rnn_unpack(lg_dtype dt, const int64_t *map, int64_t n, const void *packed, void *src);

/* Byte offsets of the spaces a fused rnn node (src/ops/rnn.h) on cuDNN
 * keeps in its workspace and its rnn_grad's scratch (cuda_rnn.c's overview
 * says what each holds), each LG_RNN_SPACE_ALIGN-aligned from a base of
 * that alignment; an absent space has the next one's offset and no bytes.
 * Workspace: weights, reserve (train), y (train, reverse or
 * bidirectional: [T, B, D u], the top layer's), x (reverse: [T, B,
 * input_dim]), then with several pseudo-layers (L D > 1: bidirectional or
 * stacked) the state staging hx, hy and, for LSTM, cx, cy ([L D, B, u]
 * each). Scratch: dweights, dy (reverse or bidirectional), dx (reverse),
 * with L D > 1 the staging hx, dhy, dhx and, for LSTM, cx, dcy, dcx, and
 * reserve_copy (train, where several gradients read one workspace:
 * LG_RNN_SHARED_WS). weight_bytes and reserve_bytes: cuDNN's. */
enum { LG_RNN_SPACE_ALIGN = 256 };
typedef struct lg_rnn_spaces {
    size_t weights, reserve, y, x, hx, cx, hy, cy, ws_bytes;
    size_t dweights, dy, dx, g_hx, g_cx, dhy, dcy, dhx, dcx, reserve_copy, scratch_bytes;
} lg_rnn_spaces;
lg_rnn_spaces lg_rnn_spaces_of(const lg_rnn_spec *s, int64_t T, int64_t B, size_t weight_bytes, size_t reserve_bytes,
                               bool train, bool shared_ws);

/* Staging. A call over P > 1 pseudo-layers (a merged bidirectional or
 * stacked rnn node, ops/rnn.h, whose part q is pseudo-layer q: a
 * direction, a stack's layer, or a bidirectional stack's layer q / 2,
 * direction q % 2; y and dy are the top layer's) reads and writes each
 * state as one [P, B, u] in the spaces above, pseudo-layer layer * D +
 * direction at element q B u, where each part has its own [B, u]; a
 * bidirectional call's y and dy are [T, B, 2u], each row direction 0's u
 * features then direction 1's, where each direction has its own [T, B,
 * u].
 * lg_rnn_stages_of lists the copies between the two for an rnn (grad
 * false) or rnn_grad node: each moves `rows` rows of `width` bytes
 * between value v of part q (contiguous) and the space at byte `off` of
 * the workspace (rnn) or scratch (rnn_grad), rows `pitch` bytes apart
 * there; into the space from one of the node's inputs before the call
 * (in), or out of it into an output after. Stages come in the order they
 * run; a bidirectional y or dy is two stages in a row, direction 0 then 1
 * (cuda_rnn.c moves both with one kernel). A single node (P = 1) has
 * none: cuDNN reads and writes its tensors. */
typedef enum lg_rnn_value {
    LG_RNN_V_H0, LG_RNN_V_C0, LG_RNN_V_H_T, LG_RNN_V_C_T, LG_RNN_V_YS, /* rnn (h0, c0: also rnn_grad) */
    LG_RNN_V_DH, LG_RNN_V_DC, LG_RNN_V_DYS, LG_RNN_V_DH0, LG_RNN_V_DC0, /* rnn_grad */
    LG_RNN_VALUE_COUNT
} lg_rnn_value;
typedef struct lg_rnn_stage {
    lg_rnn_value v;
    int q;
    bool in;
    size_t off, pitch, width, rows;
} lg_rnn_stage;
/* The most stages per pseudo-layer: out needs room for that times P. */
enum { LG_RNN_STAGES_PER_LAYER = 7 };
int lg_rnn_stages_of(const lg_rnn_spec *s, const lg_rnn_spaces *p, int64_t T, int64_t B, bool grad,
                     lg_rnn_stage *out);

#endif
