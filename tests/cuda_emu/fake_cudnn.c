/*
 * fake_cudnn.c — part of the CUDA host emulation (README.md here): a host
 * model of the cuDNN 9 RNN API calls the backend makes, on the fake
 * runtime's host "device" memory. Written from NVIDIA's cuDNN 9 API
 * reference (cudnn_adv: cudnnSetRNNDescriptor_v8, cudnnSetRNNDataDescriptor,
 * cudnnGetRNNWeightParams, cudnnRNNForward, cudnnRNNBackwardData_v8,
 * cudnnRNNBackwardWeights_v8) and the cudnn_adv.h/cudnn_ops.h headers, not
 * from loopgrad's rnn_pack.c: it is an independent reading of cuDNN that
 * loopgrad's packing, staging and call order are checked against.
 *
 * The cells, as the reference's cudnnRNNMode_t gives them (W on x_t, R on
 * h_{t-1}, b_W and b_R their biases; linLayerID k applies W_k, G + k R_k
 * for G gates):
 *   RNN_RELU/TANH  h = act(W x + R h' + b_W + b_R)                 (G = 1)
 *   LSTM  ids 0..3 = i, f, c~ (new memory), o; i, f, o sigmoid, c~ tanh;
 *         c = f c' + i c~, h = o tanh(c)                            (G = 4)
 *   GRU   ids 0..2 = r (reset), i (update), h~ (new memory);
 *         h~ = tanh(W_h x + b_Wh + r (R_h h' + b_Rh)),
 *         h = (1 - i) h~ + i h'                                     (G = 3)
 * Bias modes: DOUBLE (b_W and b_R), SINGLE_INP (b_W), SINGLE_REC (b_R),
 * NO_BIAS. Bidirectional: pseudo-layer l * 2 + d, direction 1 reads each
 * sequence from its last valid step back to step 0, and a layer's output
 * is both directions concatenated per step, which is the next layer's
 * input. Data: SEQ_MAJOR_UNPACKED [T, B, V] and BATCH_MAJOR_UNPACKED [B, T,
 * V], padded, each example running its seqLengthArray steps; hy/cy are the
 * state after each example's last step. NULL hx/cx/dhy/dcy read as zeros,
 * NULL hy/cy/dhx/dcx are not written (the reference's words).
 *
 * Where the reference leaves things open, the model picks the reading that
 * makes misuse show:
 *   - the weight space layout is opaque ("use cudnnGetRNNWeightParams"):
 *     here every pseudo-layer's matrices first (pseudo-layer, then id
 *     order), then all biases, each start rounded up to 8 elements, so
 *     there are gaps and no order a caller could guess;
 *   - padded positions of an output (y forward, dx backward) get the
 *     descriptor's paddingFill, or NaN when it is NULL ("undefined");
 *   - the reserve space's content is cuDNN's own: here, per pseudo-layer,
 *     step and example, the gate activations, h, c (LSTM) and R_h h' + b_Rh
 *     (GRU); cudnnRNNBackwardData_v8, whose reserveSpace is in/out,
 *     overwrites the activations with the gate gradients that
 *     cudnnRNNBackwardWeights_v8 reads (so a second BackwardData on the
 *     same reserve computes garbage, and BackwardWeights must follow it);
 *   - the workspace is scratch: the forward and BackwardData overwrite
 *     it (the layer outputs and their gradients, doubles);
 *   - cudnnRNNBackwardWeights_v8 with CUDNN_WGRAD_MODE_ADD adds to
 *     dweightSpace ("add partial gradients to wgrad output buffers").
 * Computes in double. Refused with BAD_PARAM (and a message for
 * cudnnGetLastErrorString) where cuDNN refuses arguments: sizes below what
 * the size queries return, NULL where data is required, descriptors that
 * disagree with the RNN or each other, devSeqLengths unlike the
 * descriptors' seqLengthArray. What the model does not cover (PACKED
 * layout, half, projection, SKIP_INPUT, persistent algorithms, dropout > 0,
 * zero-length sequences) is NOT_SUPPORTED.
 *
 * LG_CUDA_EMU_CUDNN=refuse in the environment makes cudnnCreate fail with
 * NOT_SUPPORTED: the suite's run that covers the backend's fallback to its
 * own kernels (meson test cuda_emu_no_cudnn).
 */
#include <cudnn.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cudnnContext {
    cudaStream_t stream; /* cudnnSetStream's; the fake runtime is synchronous, so nothing waits on it */
};
struct cudnnTensorStruct {
    cudnnDataType_t type;
    int nb; /* 0: not set, or an absent matrix/bias */
    int dims[CUDNN_DIM_MAX], strides[CUDNN_DIM_MAX];
};
struct cudnnDropoutStruct {
    bool set;
};
struct cudnnRNNStruct {
    bool set;
    cudnnRNNMode_t mode;
    cudnnRNNBiasMode_t bias;
    int dirs, in, hid, layers;
    cudnnDataType_t type;
    uint32_t aux;
};
struct cudnnRNNDataStruct {
    bool set;
    cudnnDataType_t type;
    cudnnRNNDataLayout_t layout;
    int T, B, V;
    int *len;     /* [B] */
    double fill;  /* NaN: no paddingFill */
};

static char last_error[512];

static cudnnStatus_t fail(cudnnStatus_t s, const char *call, const char *fmt, ...)
{
    int n = snprintf(last_error, sizeof last_error, "%s (cuDNN emulation): ", call);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error + n, sizeof last_error - (size_t)n, fmt, ap);
    va_end(ap);
    return s;
}

const char *cudnnGetErrorString(cudnnStatus_t s)
{
    switch (s) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_ALLOC_FAILED: return "CUDNN_STATUS_ALLOC_FAILED";
    default: return "CUDNN_STATUS_?";
    }
}

void cudnnGetLastErrorString(char *m, size_t n)
{
    if (!n) return;
    snprintf(m, n, "%s", last_error);
    last_error[0] = 0;
}

/* ---- handle and descriptors ---------------------------------------------- */

cudnnStatus_t cudnnCreate(cudnnHandle_t *h)
{
    const char *e = getenv("LG_CUDA_EMU_CUDNN");
    if (e && strcmp(e, "refuse") == 0)
        return fail(CUDNN_STATUS_NOT_SUPPORTED, "cudnnCreate", "refused (LG_CUDA_EMU_CUDNN=refuse)");
    if (!h) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnCreate", "handle is NULL");
    *h = calloc(1, sizeof **h);
    return *h ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_ALLOC_FAILED;
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t h)
{
    free(h);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s)
{
    if (!h) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetStream", "handle is NULL");
    h->stream = s;
    return CUDNN_STATUS_SUCCESS;
}

#define CREATE_DESTROY(T, create, destroy, free_inner)                                                                \
    cudnnStatus_t create(T *d)                                                                                       \
    {                                                                                                                \
        if (!d) return fail(CUDNN_STATUS_BAD_PARAM, #create, "descriptor pointer is NULL");                         \
        *d = calloc(1, sizeof **d);                                                                                  \
        return *d ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_ALLOC_FAILED;                                                \
    }                                                                                                                \
    cudnnStatus_t destroy(T d)                                                                                       \
    {                                                                                                                \
        if (d) free_inner;                                                                                           \
        free(d);                                                                                                     \
        return CUDNN_STATUS_SUCCESS;                                                                                 \
    }
CREATE_DESTROY(cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor, (void)0)
CREATE_DESTROY(cudnnDropoutDescriptor_t, cudnnCreateDropoutDescriptor, cudnnDestroyDropoutDescriptor, (void)0)
CREATE_DESTROY(cudnnRNNDescriptor_t, cudnnCreateRNNDescriptor, cudnnDestroyRNNDescriptor, (void)0)
CREATE_DESTROY(cudnnRNNDataDescriptor_t, cudnnCreateRNNDataDescriptor, cudnnDestroyRNNDataDescriptor, free(d->len))

static bool real_type(cudnnDataType_t t) { return t == CUDNN_DATA_FLOAT || t == CUDNN_DATA_DOUBLE; }
static size_t type_size(cudnnDataType_t t) { return t == CUDNN_DATA_FLOAT ? 4 : 8; }

cudnnStatus_t cudnnSetTensorNdDescriptor(cudnnTensorDescriptor_t d, cudnnDataType_t t, int nb, const int dims[],
                                         const int strides[])
{
    static const char *fn = "cudnnSetTensorNdDescriptor";
    if (!d || !dims || !strides) return fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL descriptor, dims or strides");
    /* "the minimum number of dimensions ... is three" (historical), at most CUDNN_DIM_MAX */
    if (nb < 3 || nb > CUDNN_DIM_MAX) return fail(CUDNN_STATUS_BAD_PARAM, fn, "nbDims %d outside [3, %d]", nb, CUDNN_DIM_MAX);
    if (!real_type(t)) return fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "data type %d not modeled", (int)t);
    for (int i = 0; i < nb; i++)
        if (dims[i] < 1 || strides[i] < 1)
            return fail(CUDNN_STATUS_BAD_PARAM, fn, "dimension %d: size %d stride %d", i, dims[i], strides[i]);
    d->type = t, d->nb = nb;
    memcpy(d->dims, dims, (size_t)nb * sizeof *dims);
    memcpy(d->strides, strides, (size_t)nb * sizeof *strides);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetTensorNdDescriptor(const cudnnTensorDescriptor_t d, int requested, cudnnDataType_t *t, int *nb,
                                         int dims[], int strides[])
{
    if (!d || !t || !nb || requested < 0 || (requested > 0 && (!dims || !strides)))
        return fail(CUDNN_STATUS_BAD_PARAM, "cudnnGetTensorNdDescriptor", "NULL argument or nbDimsRequested %d",
                    requested);
    *t = d->type, *nb = d->nb;
    for (int i = 0; i < d->nb && i < requested; i++) dims[i] = d->dims[i], strides[i] = d->strides[i];
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetDropoutDescriptor(cudnnDropoutDescriptor_t d, cudnnHandle_t h, float p, void *states,
                                        size_t state_bytes, unsigned long long seed)
{
    static const char *fn = "cudnnSetDropoutDescriptor";
    (void)seed;
    if (!d || !h) return fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL descriptor or handle");
    if (!(p >= 0 && p < 1)) return fail(CUDNN_STATUS_BAD_PARAM, fn, "dropout %g outside [0, 1)", (double)p);
    /* dropout 0 needs no RNG states; masks between layers are not modeled */
    if (p > 0) return fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "dropout %g > 0 not modeled", (double)p);
    (void)states, (void)state_bytes;
    d->set = true;
    return CUDNN_STATUS_SUCCESS;
}

static int gates_of(cudnnRNNMode_t m) { return m == CUDNN_LSTM ? 4 : m == CUDNN_GRU ? 3 : 1; }

cudnnStatus_t cudnnSetRNNDescriptor_v8(cudnnRNNDescriptor_t r, cudnnRNNAlgo_t algo, cudnnRNNMode_t mode,
                                       cudnnRNNBiasMode_t bias, cudnnDirectionMode_t dir, cudnnRNNInputMode_t input,
                                       cudnnDataType_t type, cudnnDataType_t math_prec, cudnnMathType_t math,
                                       int32_t in, int32_t hid, int32_t proj, int32_t layers,
                                       cudnnDropoutDescriptor_t dropout, uint32_t aux)
{
    static const char *fn = "cudnnSetRNNDescriptor_v8";
    if (!r) return fail(CUDNN_STATUS_BAD_PARAM, fn, "rnnDesc is NULL");
    r->set = false;
    if (mode < CUDNN_RNN_RELU || mode > CUDNN_GRU || bias < CUDNN_RNN_NO_BIAS || bias > CUDNN_RNN_SINGLE_REC_BIAS ||
        (dir != CUDNN_UNIDIRECTIONAL && dir != CUDNN_BIDIRECTIONAL) || (input != CUDNN_LINEAR_INPUT && input != CUDNN_SKIP_INPUT) ||
        math < CUDNN_DEFAULT_MATH || math > CUDNN_FMA_MATH)
        return fail(CUDNN_STATUS_BAD_PARAM, fn, "cell %d, bias %d, direction %d, input %d or math type %d invalid",
                    (int)mode, (int)bias, (int)dir, (int)input, (int)math);
    if (in < 1 || hid < 1 || layers < 1 || proj < 1 || proj > hid)
        return fail(CUDNN_STATUS_BAD_PARAM, fn, "inputSize %d, hiddenSize %d, projSize %d, numLayers %d", in, hid, proj,
                    layers);
    if (dropout && !dropout->set) return fail(CUDNN_STATUS_BAD_PARAM, fn, "dropout descriptor not set");
    if (!real_type(type)) return fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "data type %d not modeled", (int)type);
    /* FLOAT and DOUBLE data compute in their own precision */
    if (math_prec != type) return fail(CUDNN_STATUS_BAD_PARAM, fn, "mathPrec %d for data type %d", (int)math_prec, (int)type);
    if (type == CUDNN_DATA_DOUBLE && (math == CUDNN_TENSOR_OP_MATH || math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION))
        return fail(CUDNN_STATUS_BAD_PARAM, fn, "tensor-op math for double data");
    if (algo != CUDNN_RNN_ALGO_STANDARD || input != CUDNN_LINEAR_INPUT || proj != hid)
        return fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "algo %d, SKIP_INPUT or a projection not modeled", (int)algo);
    *r = (struct cudnnRNNStruct){.set = true, .mode = mode, .bias = bias, .dirs = dir == CUDNN_BIDIRECTIONAL ? 2 : 1,
                                 .in = in, .hid = hid, .layers = layers, .type = type, .aux = aux};
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetRNNDataDescriptor(cudnnRNNDataDescriptor_t d, cudnnDataType_t type, cudnnRNNDataLayout_t layout,
                                        int T, int B, int V, const int len[], void *fill)
{
    static const char *fn = "cudnnSetRNNDataDescriptor";
    if (!d || !len) return fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL descriptor or seqLengthArray");
    d->set = false;
    if (T < 1 || B < 1 || V < 1)
        return fail(CUDNN_STATUS_BAD_PARAM, fn, "maxSeqLength %d, batchSize %d, vectorSize %d", T, B, V);
    if (layout != CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED && layout != CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED)
        return fail(layout == CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED ? CUDNN_STATUS_NOT_SUPPORTED : CUDNN_STATUS_BAD_PARAM,
                    fn, "layout %d (the packed layout is not modeled)", (int)layout);
    if (!real_type(type)) return fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "data type %d not modeled", (int)type);
    /* "each element ... greater than or equal to 0 but less than or equal to maxSeqLength" */
    for (int b = 0; b < B; b++)
        if (len[b] < 0 || len[b] > T)
            return fail(CUDNN_STATUS_BAD_PARAM, fn, "seqLengthArray[%d] = %d outside [0, %d]", b, len[b], T);
    int *copy = realloc(d->len, (size_t)B * sizeof *copy);
    if (!copy) return CUDNN_STATUS_ALLOC_FAILED;
    memcpy(copy, len, (size_t)B * sizeof *copy);
    d->len = copy;
    /* paddingFill: a host symbol of the data type */
    d->fill = !fill ? NAN : type == CUDNN_DATA_FLOAT ? *(const float *)fill : *(const double *)fill;
    d->type = type, d->layout = layout, d->T = T, d->B = B, d->V = V, d->set = true;
    return CUDNN_STATUS_SUCCESS;
}

/* ---- the weight space ------------------------------------------------------ */

static int64_t round8(int64_t n) { return (n + 7) / 8 * 8; }
static int64_t layer_in(const struct cudnnRNNStruct *r, int p) { return p < r->dirs ? r->in : (int64_t)r->hid * r->dirs; }
static bool has_bias(const struct cudnnRNNStruct *r, int id)
{
    int g = gates_of(r->mode);
    return r->bias == CUDNN_RNN_DOUBLE_BIAS || (r->bias == CUDNN_RNN_SINGLE_INP_BIAS && id < g) ||
           (r->bias == CUDNN_RNN_SINGLE_REC_BIAS && id >= g);
}

/* Element offsets of matrix (pseudo-layer p, id) and its bias (-1: none);
 * returns the space's size in elements. */
typedef struct wpos {
    int64_t w, b, rows, cols;
} wpos;
static int64_t weight_layout(const struct cudnnRNNStruct *r, int p, int id, wpos *out)
{
    int n_lin = 2 * gates_of(r->mode), n_pseudo = r->layers * r->dirs;
    int64_t at = 0;
    for (int q = 0; q < n_pseudo; q++)
        for (int k = 0; k < n_lin; k++) {
            at = round8(at);
            int64_t cols = k < n_lin / 2 ? layer_in(r, q) : r->hid;
            if (q == p && k == id) *out = (wpos){.w = at, .b = -1, .rows = r->hid, .cols = cols};
            at += r->hid * cols;
        }
    for (int q = 0; q < n_pseudo; q++)
        for (int k = 0; k < n_lin; k++) {
            if (!has_bias(r, k)) continue;
            at = round8(at);
            if (q == p && k == id) out->b = at;
            at += r->hid;
        }
    return round8(at);
}

static size_t weight_bytes(const struct cudnnRNNStruct *r)
{
    wpos unused;
    return (size_t)weight_layout(r, 0, 0, &unused) * type_size(r->type);
}

cudnnStatus_t cudnnGetRNNWeightSpaceSize(cudnnHandle_t h, cudnnRNNDescriptor_t r, size_t *bytes)
{
    if (!h || !r || !r->set || !bytes)
        return fail(CUDNN_STATUS_BAD_PARAM, "cudnnGetRNNWeightSpaceSize", "NULL handle or size, or rnnDesc not set");
    *bytes = weight_bytes(r);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetRNNWeightParams(cudnnHandle_t h, cudnnRNNDescriptor_t r, int32_t p, size_t ws_bytes,
                                      const void *ws, int32_t id, cudnnTensorDescriptor_t m_desc, void **m_addr,
                                      cudnnTensorDescriptor_t b_desc, void **b_addr)
{
    static const char *fn = "cudnnGetRNNWeightParams";
    if (!h || !r || !r->set || !ws) return fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL handle or weightSpace, or rnnDesc not set");
    if (p < 0 || p >= r->layers * r->dirs || id < 0 || id >= 2 * gates_of(r->mode))
        return fail(CUDNN_STATUS_BAD_PARAM, fn, "pseudoLayer %d or linLayerID %d out of range", p, id);
    if (ws_bytes < weight_bytes(r))
        return fail(CUDNN_STATUS_BAD_PARAM, fn, "weightSpaceSize %zu < %zu", ws_bytes, weight_bytes(r));
    wpos w;
    weight_layout(r, p, id, &w);
    size_t es = type_size(r->type);
    /* the matrix as {1, rows, cols}, the bias as {1, rows, 1}; an absent
     * bias: 0 dimensions and a NULL address */
    if (m_desc) {
        *m_desc = (struct cudnnTensorStruct){.type = r->type, .nb = 3};
        int dims[3] = {1, (int)w.rows, (int)w.cols}, strides[3] = {(int)(w.rows * w.cols), (int)w.cols, 1};
        memcpy(m_desc->dims, dims, sizeof dims), memcpy(m_desc->strides, strides, sizeof strides);
    }
    if (m_addr) *m_addr = (char *)ws + w.w * (int64_t)es;
    if (b_desc) {
        *b_desc = (struct cudnnTensorStruct){.type = r->type, .nb = w.b < 0 ? 0 : 3};
        int dims[3] = {1, (int)w.rows, 1}, strides[3] = {(int)w.rows, 1, 1};
        memcpy(b_desc->dims, dims, sizeof dims), memcpy(b_desc->strides, strides, sizeof strides);
    }
    if (b_addr) *b_addr = w.b < 0 ? NULL : (char *)ws + w.b * (int64_t)es;
    return CUDNN_STATUS_SUCCESS;
}

/* ---- reserve and workspace ------------------------------------------------- */

/* Doubles per (pseudo-layer, step, example) in the reserve: the G gate
 * activations (after BackwardData: their pre-activation gradients), h, then
 * c (LSTM) or R_h h' + b_Rh (GRU; after BackwardData: its gradient). */
static int64_t slot_of(const struct cudnnRNNStruct *r)
{
    int64_t H = r->hid;
    return (gates_of(r->mode) + 1) * H + (r->mode == CUDNN_LSTM || r->mode == CUDNN_GRU ? H : 0);
}
static size_t reserve_bytes(const struct cudnnRNNStruct *r, const struct cudnnRNNDataStruct *x)
{
    return (size_t)(r->layers * r->dirs) * (size_t)x->T * (size_t)x->B * (size_t)slot_of(r) * sizeof(double);
}
/* Two [T, B, D H] doubles: a layer's input and output (or their gradients). */
static size_t work_bytes(const struct cudnnRNNStruct *r, const struct cudnnRNNDataStruct *x)
{
    int64_t width = (int64_t)r->hid * r->dirs;
    if (width < r->in) width = r->in;
    return 2 * (size_t)x->T * (size_t)x->B * (size_t)width * sizeof(double);
}

cudnnStatus_t cudnnGetRNNTempSpaceSizes(cudnnHandle_t h, cudnnRNNDescriptor_t r, cudnnForwardMode_t mode,
                                        cudnnRNNDataDescriptor_t x, size_t *work, size_t *reserve)
{
    static const char *fn = "cudnnGetRNNTempSpaceSizes";
    if (!h || !r || !r->set || !x || !x->set || !work || !reserve)
        return fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL argument, or a descriptor not set");
    if (mode != CUDNN_FWD_MODE_INFERENCE && mode != CUDNN_FWD_MODE_TRAINING)
        return fail(CUDNN_STATUS_BAD_PARAM, fn, "fwdMode %d", (int)mode);
    if (x->V != r->in || x->type != r->type)
        return fail(CUDNN_STATUS_BAD_PARAM, fn, "xDesc vectorSize %d or type %d unlike the RNN's inputSize %d, type %d",
                    x->V, (int)x->type, r->in, (int)r->type);
    *work = work_bytes(r, x);
    *reserve = mode == CUDNN_FWD_MODE_TRAINING ? reserve_bytes(r, x) : 0;
    return CUDNN_STATUS_SUCCESS;
}

/* ---- the calls' common checks ------------------------------------------------ */

typedef struct call {
    const char *fn;
    const struct cudnnRNNStruct *r;
    const struct cudnnRNNDataStruct *x, *y;
    int G, H, D, P, T, B;
    bool f32;
    size_t es;
    double *work, *reserve;
} call;

static cudnnStatus_t check_state(const call *k, cudnnTensorDescriptor_t d, const char *what, bool used)
{
    if (!used) return CUDNN_STATUS_SUCCESS;
    if (!d || d->nb != 3 || d->type != k->r->type || d->dims[0] != k->P || d->dims[1] != k->B || d->dims[2] != k->H ||
        d->strides[0] != k->B * k->H || d->strides[1] != k->H || d->strides[2] != 1)
        return fail(CUDNN_STATUS_BAD_PARAM, k->fn, "%s is not a packed [%d, %d, %d] tensor of the RNN's type", what, k->P,
                    k->B, k->H);
    return CUDNN_STATUS_SUCCESS;
}

/* Checks what every RNN call takes: descriptors that agree, devSeqLengths
 * a copy of their seqLengthArray, the weight space and workspace at least
 * the queried sizes, and (need_reserve) a reserve space. */
static cudnnStatus_t begin(call *k, const char *fn, cudnnHandle_t h, cudnnRNNDescriptor_t r, const int32_t *dev_len,
                           cudnnRNNDataDescriptor_t x, cudnnRNNDataDescriptor_t y, cudnnTensorDescriptor_t hd,
                           cudnnTensorDescriptor_t cd, size_t w_bytes, const void *w, size_t work_size, void *work,
                           size_t res_size, void *reserve, bool need_reserve)
{
    *k = (call){.fn = fn, .r = r, .x = x, .y = y};
    if (!h || !r || !r->set || !x || !x->set || !y || !y->set)
        return fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL handle, or rnnDesc, xDesc or yDesc not set");
    k->G = gates_of(r->mode), k->H = r->hid, k->D = r->dirs, k->P = r->layers * r->dirs, k->T = x->T, k->B = x->B;
    k->f32 = r->type == CUDNN_DATA_FLOAT, k->es = type_size(r->type);
    if (x->type != r->type || y->type != r->type || x->V != r->in || y->V != k->D * k->H)
        return fail(CUDNN_STATUS_BAD_PARAM, fn, "xDesc (vectorSize %d) or yDesc (%d) unlike the RNN's (%d, %d) or its type",
                    x->V, y->V, r->in, k->D * k->H);
    if (x->layout != y->layout || x->T != y->T || x->B != y->B || memcmp(x->len, y->len, (size_t)x->B * sizeof(int)))
        return fail(CUDNN_STATUS_BAD_PARAM, fn, "xDesc and yDesc differ in layout, maxSeqLength, batch or lengths");
    /* the unpacked layouts need CUDNN_RNN_PADDED_IO_ENABLED */
    if (!(r->aux & CUDNN_RNN_PADDED_IO_ENABLED))
        return fail(CUDNN_STATUS_BAD_PARAM, fn, "an unpacked layout without CUDNN_RNN_PADDED_IO_ENABLED");
    if (!dev_len) return fail(CUDNN_STATUS_BAD_PARAM, fn, "devSeqLengths is NULL");
    for (int b = 0; b < k->B; b++) {
        if (dev_len[b] != x->len[b])
            return fail(CUDNN_STATUS_BAD_PARAM, fn, "devSeqLengths[%d] = %d, the descriptors' seqLengthArray %d", b,
                        dev_len[b], x->len[b]);
        if (x->len[b] == 0) return fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "example %d has length 0 (not modeled)", b);
    }
    cudnnStatus_t s = check_state(k, hd, "hDesc", true);
    if (!s) s = check_state(k, cd, "cDesc", r->mode == CUDNN_LSTM);
    if (s) return s;
    if (!w || w_bytes < weight_bytes(r))
        return fail(CUDNN_STATUS_BAD_PARAM, fn, "weight space %p of %zu bytes, %zu needed", w, w_bytes, weight_bytes(r));
    if (!work || work_size < work_bytes(r, x))
        return fail(CUDNN_STATUS_BAD_PARAM, fn, "workspace %p of %zu bytes, %zu needed", work, work_size, work_bytes(r, x));
    if (need_reserve && (!reserve || res_size < reserve_bytes(r, x)))
        return fail(CUDNN_STATUS_BAD_PARAM, fn, "reserve space %p of %zu bytes, %zu needed", reserve, res_size,
                    reserve_bytes(r, x));
    k->work = work, k->reserve = reserve;
    return CUDNN_STATUS_SUCCESS;
}

static double ld(const call *k, const void *p, int64_t i)
{
    return k->f32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}
static void st(const call *k, void *p, int64_t i, double v)
{
    if (k->f32) ((float *)p)[i] = (float)v;
    else ((double *)p)[i] = v;
}
/* Element (t, b, v) of data in descriptor d's layout. */
static int64_t at_tb(const struct cudnnRNNDataStruct *d, int t, int b, int v)
{
    return d->layout == CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED ? ((int64_t)t * d->B + b) * d->V + v
                                                                 : ((int64_t)b * d->T + t) * d->V + v;
}
/* Direction d's k-th step of a sequence of n steps. */
static int step_t(int d, int k, int n) { return d ? n - 1 - k : k; }
/* The reserve's record of pseudo-layer p at (t, b). */
static double *rec(const call *k, int p, int t, int b)
{
    return k->reserve + (((int64_t)p * k->T + t) * k->B + b) * slot_of(k->r);
}
static double sigm(double v) { return 1 / (1 + exp(-v)); }

/* Matrix (p, id) of the space w times v [cols], added to out [rows];
 * transposed: its transpose times v [rows], added to out [cols]. Returns
 * where the matrix and its bias lie. */
static wpos matvec(const call *k, const void *w, int p, int id, const double *v, double *out, bool transposed)
{
    wpos m;
    weight_layout(k->r, p, id, &m);
    for (int64_t j = 0; j < m.rows; j++)
        for (int64_t c = 0; c < m.cols; c++) {
            double a = ld(k, w, m.w + j * m.cols + c);
            if (transposed) out[c] += a * v[j];
            else out[j] += a * v[c];
        }
    return m;
}

/* ---- forward ----------------------------------------------------------------- */

cudnnStatus_t cudnnRNNForward(cudnnHandle_t h, cudnnRNNDescriptor_t r, cudnnForwardMode_t mode, const int32_t dev_len[],
                              cudnnRNNDataDescriptor_t xd, const void *x, cudnnRNNDataDescriptor_t yd, void *y,
                              cudnnTensorDescriptor_t hd, const void *hx, void *hy, cudnnTensorDescriptor_t cd,
                              const void *cx, void *cy, size_t w_bytes, const void *w, size_t work_size, void *work,
                              size_t res_size, void *reserve)
{
    static const char *fn = "cudnnRNNForward";
    if (mode != CUDNN_FWD_MODE_INFERENCE && mode != CUDNN_FWD_MODE_TRAINING)
        return fail(CUDNN_STATUS_BAD_PARAM, fn, "fwdMode %d", (int)mode);
    bool train = mode == CUDNN_FWD_MODE_TRAINING;
    call k;
    cudnnStatus_t s = begin(&k, fn, h, r, dev_len, xd, yd, hd, cd, w_bytes, w, work_size, work, res_size, reserve, train);
    if (s) return s;
    if (!x || !y) return fail(CUDNN_STATUS_BAD_PARAM, fn, "x or y is NULL");
    bool lstm = r->mode == CUDNN_LSTM, gru = r->mode == CUDNN_GRU;
    int G = k.G, H = k.H, D = k.D, T = k.T, B = k.B, DH = D * H;
    int64_t width = DH > r->in ? DH : r->in;
    double *in_buf = k.work, *out_buf = k.work + (int64_t)T * B * width;
    double *pre = calloc((size_t)((G + 3) * H + width), sizeof *pre), *hcur = pre + G * H, *ccur = hcur + H,
           *rh = ccur + H, *xt = rh + H;
    if (!pre) return CUDNN_STATUS_ALLOC_FAILED;
    for (int l = 0; l < r->layers; l++) {
        int64_t in_dim = l ? DH : r->in;
        for (int d = 0; d < D; d++) {
            int p = l * D + d;
            for (int b = 0; b < B; b++) {
                int n = xd->len[b];
                for (int j = 0; j < H; j++) {
                    int64_t si = ((int64_t)p * B + b) * H + j;
                    hcur[j] = hx ? ld(&k, hx, si) : 0;
                    ccur[j] = lstm && cx ? ld(&k, cx, si) : 0;
                }
                for (int q = 0; q < n; q++) {
                    int t = step_t(d, q, n);
                    for (int64_t c = 0; c < in_dim; c++)
                        xt[c] = l ? in_buf[((int64_t)t * B + b) * width + c] : ld(&k, x, at_tb(xd, t, b, (int)c));
                    /* pre-activations: W x + b_W + R h' + b_R; GRU's new memory keeps R_h h' + b_Rh apart */
                    memset(pre, 0, (size_t)(G * H) * sizeof *pre);
                    memset(rh, 0, (size_t)H * sizeof *rh);
                    for (int g = 0; g < G; g++) {
                        double *to_r = gru && g == 2 ? rh : pre + g * H;
                        wpos mw = matvec(&k, w, p, g, xt, pre + g * H, false);
                        wpos mr = matvec(&k, w, p, G + g, hcur, to_r, false);
                        for (int j = 0; j < H; j++) {
                            if (mw.b >= 0) pre[g * H + j] += ld(&k, w, mw.b + j);
                            if (mr.b >= 0) to_r[j] += ld(&k, w, mr.b + j);
                        }
                    }
                    double *rc = train ? rec(&k, p, t, b) : NULL;
                    for (int j = 0; j < H; j++) {
                        double hn;
                        if (lstm) {
                            double i = sigm(pre[j]), f = sigm(pre[H + j]), gg = tanh(pre[2 * H + j]),
                                   o = sigm(pre[3 * H + j]);
                            ccur[j] = f * ccur[j] + i * gg;
                            hn = o * tanh(ccur[j]);
                            pre[j] = i, pre[H + j] = f, pre[2 * H + j] = gg, pre[3 * H + j] = o;
                            if (rc) rc[(G + 1) * H + j] = ccur[j];
                        } else if (gru) {
                            double rr = sigm(pre[j]), z = sigm(pre[H + j]), nn = tanh(pre[2 * H + j] + rr * rh[j]);
                            hn = (1 - z) * nn + z * hcur[j];
                            pre[j] = rr, pre[H + j] = z, pre[2 * H + j] = nn;
                            if (rc) rc[(G + 1) * H + j] = rh[j];
                        } else {
                            hn = r->mode == CUDNN_RNN_RELU ? fmax(pre[j], 0) : tanh(pre[j]);
                            pre[j] = hn;
                        }
                        hcur[j] = hn;
                        out_buf[((int64_t)t * B + b) * width + d * H + j] = hn;
                        if (rc) rc[G * H + j] = hn;
                    }
                    if (rc) memcpy(rc, pre, (size_t)(G * H) * sizeof *rc);
                }
                for (int j = 0; j < H; j++) {
                    int64_t si = ((int64_t)p * B + b) * H + j;
                    if (hy) st(&k, hy, si, hcur[j]);
                    if (lstm && cy) st(&k, cy, si, ccur[j]);
                }
            }
        }
        double *tmp = in_buf;
        in_buf = out_buf, out_buf = tmp;
    }
    /* the top layer's output (now in in_buf); padded steps get the fill */
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++)
            for (int v = 0; v < DH; v++)
                st(&k, y, at_tb(yd, t, b, v), t < yd->len[b] ? in_buf[((int64_t)t * B + b) * width + v] : yd->fill);
    free(pre);
    return CUDNN_STATUS_SUCCESS;
}

/* ---- backward ---------------------------------------------------------------- */

/* The state before step q of direction d's run over example b (n steps):
 * the previous step's h (or c, LSTM; slot G H or (G + 1) H of its record),
 * else the initial state (NULL: zeros). */
static double prev_state(const call *k, int p, int d, int q, int n, int b, int j, int slot, const void *init)
{
    if (q > 0) return rec(k, p, step_t(d, q - 1, n), b)[slot + j];
    return init ? ld(k, init, ((int64_t)p * k->B + b) * k->H + j) : 0;
}

cudnnStatus_t cudnnRNNBackwardData_v8(cudnnHandle_t h, cudnnRNNDescriptor_t r, const int32_t dev_len[],
                                      cudnnRNNDataDescriptor_t yd, const void *y, const void *dy,
                                      cudnnRNNDataDescriptor_t xd, void *dx, cudnnTensorDescriptor_t hd, const void *hx,
                                      const void *dhy, void *dhx, cudnnTensorDescriptor_t cd, const void *cx,
                                      const void *dcy, void *dcx, size_t w_bytes, const void *w, size_t work_size,
                                      void *work, size_t res_size, void *reserve)
{
    static const char *fn = "cudnnRNNBackwardData_v8";
    call k;
    cudnnStatus_t s = begin(&k, fn, h, r, dev_len, xd, yd, hd, cd, w_bytes, w, work_size, work, res_size, reserve, true);
    if (s) return s;
    if (!y || !dy || !dx) return fail(CUDNN_STATUS_BAD_PARAM, fn, "y, dy or dx is NULL");
    bool lstm = r->mode == CUDNN_LSTM, gru = r->mode == CUDNN_GRU;
    int G = k.G, H = k.H, D = k.D, T = k.T, B = k.B, DH = D * H, L = r->layers;
    int64_t width = DH > r->in ? DH : r->in;
    /* dout: the gradient of the layer's output (below the top), din: of its input */
    double *dout = k.work, *din = k.work + (int64_t)T * B * width;
    double *da = calloc((size_t)((G + 5) * H), sizeof *da), *drh = da + G * H, *dh = drh + H, *dc = dh + H,
           *dh_prev = dc + H, *dc_prev = dh_prev + H;
    if (!da) return CUDNN_STATUS_ALLOC_FAILED;
    for (int l = L - 1; l >= 0; l--) {
        memset(din, 0, (size_t)(T * B * width) * sizeof *din);
        for (int d = 0; d < D; d++) {
            int p = l * D + d;
            for (int b = 0; b < B; b++) {
                int n = xd->len[b];
                for (int j = 0; j < H; j++) {
                    int64_t si = ((int64_t)p * B + b) * H + j;
                    dh[j] = dhy ? ld(&k, dhy, si) : 0;
                    dc[j] = lstm && dcy ? ld(&k, dcy, si) : 0;
                }
                for (int q = n - 1; q >= 0; q--) {
                    int t = step_t(d, q, n);
                    double *rc = rec(&k, p, t, b), *gate = rc;
                    for (int j = 0; j < H; j++) {
                        dh[j] += l == L - 1 ? ld(&k, dy, at_tb(yd, t, b, d * H + j))
                                            : dout[((int64_t)t * B + b) * width + d * H + j];
                        double hp = prev_state(&k, p, d, q, n, b, j, G * H, hx);
                        if (lstm) {
                            double i = gate[j], f = gate[H + j], gg = gate[2 * H + j], o = gate[3 * H + j];
                            double c = rc[(G + 1) * H + j], tc = tanh(c);
                            double cp = prev_state(&k, p, d, q, n, b, j, (G + 1) * H, cx);
                            double dct = dc[j] + dh[j] * o * (1 - tc * tc);
                            da[j] = dct * gg * i * (1 - i);
                            da[H + j] = dct * cp * f * (1 - f);
                            da[2 * H + j] = dct * i * (1 - gg * gg);
                            da[3 * H + j] = dh[j] * tc * o * (1 - o);
                            dc_prev[j] = dct * f;
                            dh_prev[j] = 0;
                        } else if (gru) {
                            double rr = gate[j], z = gate[H + j], nn = gate[2 * H + j], rh = rc[(G + 1) * H + j];
                            double dan = dh[j] * (1 - z) * (1 - nn * nn);
                            da[j] = dan * rh * rr * (1 - rr);
                            da[H + j] = dh[j] * (hp - nn) * z * (1 - z);
                            da[2 * H + j] = dan;
                            drh[j] = dan * rr;
                            dh_prev[j] = dh[j] * z;
                        } else {
                            double hn = gate[j];
                            da[j] = dh[j] * (r->mode == CUDNN_RNN_RELU ? (hn > 0 ? 1 : 0) : 1 - hn * hn);
                            dh_prev[j] = 0;
                        }
                    }
                    double *din_t = din + ((int64_t)t * B + b) * width;
                    for (int g = 0; g < G; g++) {
                        matvec(&k, w, p, g, da + g * H, din_t, true);
                        matvec(&k, w, p, G + g, gru && g == 2 ? drh : da + g * H, dh_prev, true);
                    }
                    /* what BackwardWeights reads, over the activations */
                    memcpy(rc, da, (size_t)(G * H) * sizeof *rc);
                    if (gru) memcpy(rc + (G + 1) * H, drh, (size_t)H * sizeof *rc);
                    memcpy(dh, dh_prev, (size_t)H * sizeof *dh);
                    if (lstm) memcpy(dc, dc_prev, (size_t)H * sizeof *dc);
                }
                for (int j = 0; j < H; j++) {
                    int64_t si = ((int64_t)p * B + b) * H + j;
                    if (dhx) st(&k, dhx, si, dh[j]);
                    if (lstm && dcx) st(&k, dcx, si, dc[j]);
                }
            }
        }
        double *tmp = dout;
        dout = din, din = tmp;
    }
    /* layer 0's input gradient (now in dout); padded steps get x's fill */
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++)
            for (int v = 0; v < r->in; v++)
                st(&k, dx, at_tb(xd, t, b, v), t < xd->len[b] ? dout[((int64_t)t * B + b) * width + v] : xd->fill);
    free(da);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnRNNBackwardWeights_v8(cudnnHandle_t h, cudnnRNNDescriptor_t r, cudnnWgradMode_t add,
                                         const int32_t dev_len[], cudnnRNNDataDescriptor_t xd, const void *x,
                                         cudnnTensorDescriptor_t hd, const void *hx, cudnnRNNDataDescriptor_t yd,
                                         const void *y, size_t w_bytes, void *dw, size_t work_size, void *work,
                                         size_t res_size, void *reserve)
{
    static const char *fn = "cudnnRNNBackwardWeights_v8";
    if (add != CUDNN_WGRAD_MODE_ADD && add != CUDNN_WGRAD_MODE_SET)
        return fail(CUDNN_STATUS_BAD_PARAM, fn, "addGrad %d", (int)add);
    call k;
    /* cDesc is not an argument: check hDesc for both */
    cudnnStatus_t s = begin(&k, fn, h, r, dev_len, xd, yd, hd, r && r->mode == CUDNN_LSTM ? hd : NULL, w_bytes, dw,
                            work_size, work, res_size, reserve, true);
    if (s) return s;
    if (!x || !y) return fail(CUDNN_STATUS_BAD_PARAM, fn, "x or y is NULL");
    bool gru = r->mode == CUDNN_GRU;
    int G = k.G, H = k.H, D = k.D, B = k.B;
    int64_t n_elems = (int64_t)(weight_bytes(r) / k.es), width = (int64_t)D * H > r->in ? (int64_t)D * H : r->in;
    double *acc = calloc((size_t)(n_elems + width + H), sizeof *acc), *in = acc + n_elems, *hp = in + width;
    if (!acc) return CUDNN_STATUS_ALLOC_FAILED;
    for (int l = 0; l < r->layers; l++)
        for (int d = 0; d < D; d++) {
            int p = l * D + d;
            int64_t in_dim = l ? (int64_t)D * H : r->in;
            for (int b = 0; b < B; b++) {
                int n = xd->len[b];
                for (int q = 0; q < n; q++) {
                    int t = step_t(d, q, n);
                    const double *rc = rec(&k, p, t, b);
                    for (int64_t c = 0; c < in_dim; c++)
                        in[c] = l ? rec(&k, (l - 1) * D + (int)(c / H), t, b)[G * H + c % H]
                                  : ld(&k, x, at_tb(xd, t, b, (int)c));
                    for (int j = 0; j < H; j++) hp[j] = prev_state(&k, p, d, q, n, b, j, G * H, hx);
                    for (int id = 0; id < 2 * G; id++) {
                        int g = id % G;
                        const double *g_da = gru && id == G + 2 ? rc + (G + 1) * H : rc + g * H, *v = id < G ? in : hp;
                        wpos m;
                        weight_layout(r, p, id, &m);
                        for (int64_t j = 0; j < m.rows; j++) {
                            for (int64_t c = 0; c < m.cols; c++) acc[m.w + j * m.cols + c] += g_da[j] * v[c];
                            if (m.b >= 0) acc[m.b + j] += g_da[j];
                        }
                    }
                }
            }
        }
    /* ADD: "add partial gradients to wgrad output buffers"; SET: write them */
    for (int64_t i = 0; i < n_elems; i++) st(&k, dw, i, (add == CUDNN_WGRAD_MODE_ADD ? ld(&k, dw, i) : 0) + acc[i]);
    free(acc);
    return CUDNN_STATUS_SUCCESS;
}
