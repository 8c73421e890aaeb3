/* cudnn_rnn.c — the cuDNN RNN wrapper (cudnn_rnn.h). */
#include <cudnn.h>
#include <string.h>

#include "backends/cuda/cudnn_rnn.h"
#include "backends/cuda/kernels.h"

struct lg_cudnn_rnn {
    lg_cuda_ctx *ctx;
    lg_rnn_spec spec;
    int64_t batch, max_steps;
    bool time_major;
    cudnnRNNDescriptor_t rnn;
    cudnnDropoutDescriptor_t dropout;
    cudnnRNNDataDescriptor_t x_desc, y_desc;
    cudnnTensorDescriptor_t h_desc;
    lg_rnn_wlayout layout;
    size_t weight_bytes, work_bytes;
    size_t reserve_bytes; /* what the current lengths need */
    size_t reserve_max;   /* what max_steps for every example needs */
    size_t reserve_cap;   /* the object's own reserve (calls without _in) */
    void *weights, *dweights, *work, *reserve;
    int64_t *map; /* device [layout.size] */
    int32_t *lengths_dev; /* device [batch] */
    int32_t *lengths; /* host [batch]: those of the descriptors */
    bool described;      /* the data descriptors, lengths_dev and the spaces are set for `lengths` */
    bool bound, trained; /* a map is bound; a training forward filled the reserve */
};

void lg_cudnn_handle_free(lg_cudnn_handle h);
void lg_cudnn_handle_free(lg_cudnn_handle h)
{
    if (h) cudnnDestroy((cudnnHandle_t)h);
}

static lg_status dnn_status(cudnnStatus_t s, const char *call, const char *what)
{
    if (s == CUDNN_STATUS_SUCCESS) return LG_OK;
    char detail[256] = "";
    cudnnGetLastErrorString(detail, sizeof detail);
    return lg_fail(s == CUDNN_STATUS_ALLOC_FAILED ? LG_ERR_OUT_OF_MEMORY : LG_ERR_RUNTIME, "%s (%s): %s%s%s", call,
                   what, cudnnGetErrorString(s), detail[0] ? ": " : "", detail);
}

static lg_status handle(lg_cuda_ctx *c, cudnnHandle_t *out)
{
    if (!c->dnn) {
        cudnnHandle_t h = NULL;
        lg_status st = dnn_status(cudnnCreate(&h), "cudnnCreate", "the context's cuDNN handle");
        if (!st) st = dnn_status(cudnnSetStream(h, c->stream), "cudnnSetStream", "the context's stream");
        if (st) {
            if (h) cudnnDestroy(h);
            return st;
        }
        c->dnn = (lg_cudnn_handle)h;
    }
    *out = (cudnnHandle_t)c->dnn;
    return LG_OK;
}

static const char *kind_name(lg_cell_kind k) { return k == LG_CELL_LSTM ? "LSTM" : k == LG_CELL_GRU ? "GRU" : "SimpleRNN"; }

/* x and y descriptors for lengths (host [batch]); *same: they were set
 * for these lengths already, and nothing was done. Every training step
 * calls this, and most pass the lengths of the step before: resetting the
 * descriptors and copying the lengths to the device each time is work the
 * direct cuDNN sequence does not do (cudnnGetRNNTempSpaceSizes, and a copy
 * from pageable memory that may wait for the stream). */
static lg_status set_data(lg_cudnn_rnn *r, const int32_t *lengths, bool *same)
{
    cudnnDataType_t t = r->spec.dtype == LG_F32 ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
    cudnnRNNDataLayout_t lay =
        r->time_major ? CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED : CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED;
    int dirs = lg_rnn_directions(&r->spec);
    *same = r->described;
    for (int64_t b = 0; b < r->batch; b++) {
        int32_t len = lengths ? lengths[b] : (int32_t)r->max_steps;
        if (len < 1 || len > r->max_steps)
            return lg_fail(LG_ERR_INVALID_ARGUMENT, "cuDNN %s: length %d of example %lld outside [1, %lld]",
                           kind_name(r->spec.kind), (int)len, (long long)b, (long long)r->max_steps);
        *same = *same && r->lengths[b] == len;
    }
    if (*same) return LG_OK;
    r->described = false;
    for (int64_t b = 0; b < r->batch; b++) r->lengths[b] = lengths ? lengths[b] : (int32_t)r->max_steps;
    /* static: no lifetime question, whether cuDNN copies the value or not */
    static float fill_f = 0;
    static double fill_d = 0;
    void *fill = r->spec.dtype == LG_F32 ? (void *)&fill_f : (void *)&fill_d;
    lg_status st = dnn_status(cudnnSetRNNDataDescriptor(r->x_desc, t, lay, (int)r->max_steps, (int)r->batch,
                                                        (int)r->spec.input_dim, r->lengths, fill),
                              "cudnnSetRNNDataDescriptor", "x");
    if (!st)
        st = dnn_status(cudnnSetRNNDataDescriptor(r->y_desc, t, lay, (int)r->max_steps, (int)r->batch,
                                                  (int)(r->spec.units * dirs), r->lengths, fill),
                        "cudnnSetRNNDataDescriptor", "y");
    if (!st) st = lg_cuda_copy_h2d(r->ctx, r->lengths_dev, r->lengths, (size_t)r->batch * sizeof(int32_t));
    return st;
}

/* The workspace (grown to fit) and the reserve space a training forward
 * needs (reserve_bytes) for the current descriptors. */
static lg_status size_spaces(lg_cudnn_rnn *r, cudnnHandle_t h)
{
    size_t work = 0, reserve = 0;
    lg_status st = dnn_status(cudnnGetRNNTempSpaceSizes(h, r->rnn, CUDNN_FWD_MODE_TRAINING, r->x_desc, &work, &reserve),
                              "cudnnGetRNNTempSpaceSizes", "training");
    if (st) return st;
    if (work > r->work_bytes) {
        lg_cuda_free(r->ctx, r->work);
        r->work = NULL;
        r->work_bytes = 0;
        st = lg_cuda_alloc(r->ctx, work, &r->work);
        if (st) return st;
        r->work_bytes = work;
    }
    r->reserve_bytes = reserve;
    return LG_OK;
}

/* The object's own reserve space, for the calls without _in. */
static lg_status own_reserve(lg_cudnn_rnn *r)
{
    if (r->reserve_bytes <= r->reserve_cap) return LG_OK;
    lg_cuda_free(r->ctx, r->reserve);
    r->reserve = NULL;
    r->reserve_cap = 0;
    lg_status st = lg_cuda_alloc(r->ctx, r->reserve_bytes, &r->reserve);
    if (!st) r->reserve_cap = r->reserve_bytes;
    return st;
}

/* The layout from cudnnGetRNNWeightParams, checked against the spec. */
static lg_status read_layout(lg_cudnn_rnn *r, cudnnHandle_t h)
{
    lg_rnn_wlayout *l = &r->layout;
    l->n_pseudo = lg_rnn_pseudo_layers(&r->spec);
    l->n_lin = 2 * lg_rnn_gates(r->spec.kind);
    size_t es = lg_dtype_size(r->spec.dtype);
    l->size = (int64_t)(r->weight_bytes / es);
    l->mats = calloc((size_t)(l->n_pseudo * l->n_lin), sizeof *l->mats);
    if (!l->mats) return lg_fail(LG_ERR_OUT_OF_MEMORY, "cuDNN %s: out of host memory for its layout", kind_name(r->spec.kind));
    cudnnTensorDescriptor_t m_desc = NULL, b_desc = NULL;
    lg_status st = dnn_status(cudnnCreateTensorDescriptor(&m_desc), "cudnnCreateTensorDescriptor", "weight matrix");
    if (!st) st = dnn_status(cudnnCreateTensorDescriptor(&b_desc), "cudnnCreateTensorDescriptor", "bias");
    for (int p = 0; p < l->n_pseudo && !st; p++)
        for (int id = 0; id < l->n_lin && !st; id++) {
            void *m_addr = NULL, *b_addr = NULL;
            char what[64];
            snprintf(what, sizeof what, "pseudo-layer %d, linear id %d", p, id);
            st = dnn_status(cudnnGetRNNWeightParams(h, r->rnn, p, r->weight_bytes, r->weights, id, m_desc, &m_addr,
                                                    b_desc, &b_addr),
                            "cudnnGetRNNWeightParams", what);
            if (st) break;
            lg_rnn_mat *m = &l->mats[p * l->n_lin + id];
            int dims[8], strides[8], nb = 0;
            cudnnDataType_t t;
            st = dnn_status(cudnnGetTensorNdDescriptor(m_desc, 8, &t, &nb, dims, strides), "cudnnGetTensorNdDescriptor",
                            what);
            if (st) break;
            if (nb < 2 || !m_addr) {
                st = lg_fail(LG_ERR_RUNTIME, "cuDNN %s: %s: a weight matrix of %d dimensions at %p", kind_name(r->spec.kind),
                             what, nb, m_addr);
                break;
            }
            m->w_off = (int64_t)(((char *)m_addr - (char *)r->weights) / (ptrdiff_t)es);
            m->rows = dims[nb - 2];
            m->cols = dims[nb - 1];
            if (b_addr) {
                st = dnn_status(cudnnGetTensorNdDescriptor(b_desc, 8, &t, &nb, dims, strides),
                                "cudnnGetTensorNdDescriptor", what);
                if (st) break;
                if (nb < 1) continue; /* an empty descriptor: no bias */
                m->b_off = (int64_t)(((char *)b_addr - (char *)r->weights) / (ptrdiff_t)es);
                m->b_len = 1;
                for (int i = 0; i < nb; i++) m->b_len *= dims[i];
            }
        }
    if (m_desc) cudnnDestroyTensorDescriptor(m_desc);
    if (b_desc) cudnnDestroyTensorDescriptor(b_desc);
    if (st) return st;
    char why[256];
    if (!lg_rnn_layout_check(&r->spec, l, why, sizeof why))
        return lg_fail(LG_ERR_RUNTIME, "cuDNN %s: its weight layout is not the one expected: %s", kind_name(r->spec.kind),
                       why);
    return LG_OK;
}

lg_status lg_cudnn_rnn_new(lg_cuda_ctx *c, const lg_rnn_spec *s, int64_t batch, int64_t max_steps, bool time_major,
                           lg_cudnn_rnn **out)
{
    *out = NULL;
    if (batch < 1 || max_steps < 1 || batch > INT32_MAX || max_steps > INT32_MAX || s->layers < 1 ||
        (s->dtype != LG_F32 && s->dtype != LG_F64))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "cuDNN %s: batch %lld, steps %lld, %d layers or dtype %d not usable",
                       kind_name(s->kind), (long long)batch, (long long)max_steps, s->layers, (int)s->dtype);
    /* cuDNN's tensor descriptors take int dimensions and strides: the
     * states' [L*D, B, u] stride B u, and a step's rows of features */
    int64_t widest = s->units * lg_rnn_directions(s) > s->input_dim ? s->units * lg_rnn_directions(s) : s->input_dim;
    if (widest > INT32_MAX / batch)
        return lg_fail(LG_ERR_UNSUPPORTED, "cuDNN %s: batch %lld times %lld features is past cuDNN's int sizes",
                       kind_name(s->kind), (long long)batch, (long long)widest);
    cudnnHandle_t h;
    lg_status st = handle(c, &h);
    if (st) return st;
    lg_cudnn_rnn *r = calloc(1, sizeof *r);
    int32_t *lengths = calloc((size_t)batch, sizeof *lengths);
    if (!r || !lengths) {
        free(r);
        free(lengths);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "cuDNN %s: out of host memory", kind_name(s->kind));
    }
    *r = (lg_cudnn_rnn){.ctx = c, .spec = *s, .batch = batch, .max_steps = max_steps, .time_major = time_major,
                        .lengths = lengths};
    bool f32 = s->dtype == LG_F32;
    cudnnDataType_t t = f32 ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
    cudnnRNNMode_t mode = s->kind == LG_CELL_LSTM ? CUDNN_LSTM
                          : s->kind == LG_CELL_GRU ? CUDNN_GRU
                          : s->relu                ? CUDNN_RNN_RELU
                                                   : CUDNN_RNN_TANH;
    cudnnMathType_t math = f32 && !c->allow_tf32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
    int dirs = lg_rnn_directions(s);
    st = dnn_status(cudnnCreateRNNDescriptor(&r->rnn), "cudnnCreateRNNDescriptor", kind_name(s->kind));
    if (!st) st = dnn_status(cudnnCreateDropoutDescriptor(&r->dropout), "cudnnCreateDropoutDescriptor", "no dropout");
    /* Dropout 0 needs no RNG states (as PyTorch's set_no_dropout). */
    if (!st) st = dnn_status(cudnnSetDropoutDescriptor(r->dropout, h, 0.0f, NULL, 0, 0), "cudnnSetDropoutDescriptor", "no dropout");
    if (!st)
        st = dnn_status(cudnnSetRNNDescriptor_v8(r->rnn, CUDNN_RNN_ALGO_STANDARD, mode,
                                                 s->use_bias ? CUDNN_RNN_DOUBLE_BIAS : CUDNN_RNN_NO_BIAS,
                                                 s->bidirectional ? CUDNN_BIDIRECTIONAL : CUDNN_UNIDIRECTIONAL,
                                                 CUDNN_LINEAR_INPUT, t, t, math, (int32_t)s->input_dim,
                                                 (int32_t)s->units, (int32_t)s->units, s->layers, r->dropout,
                                                 CUDNN_RNN_PADDED_IO_ENABLED),
                        "cudnnSetRNNDescriptor_v8", kind_name(s->kind));
    if (!st) st = dnn_status(cudnnCreateRNNDataDescriptor(&r->x_desc), "cudnnCreateRNNDataDescriptor", "x");
    if (!st) st = dnn_status(cudnnCreateRNNDataDescriptor(&r->y_desc), "cudnnCreateRNNDataDescriptor", "y");
    if (!st) st = dnn_status(cudnnCreateTensorDescriptor(&r->h_desc), "cudnnCreateTensorDescriptor", "states");
    if (!st) {
        int dims[3] = {s->layers * dirs, (int)batch, (int)s->units};
        int strides[3] = {(int)(batch * s->units), (int)s->units, 1};
        st = dnn_status(cudnnSetTensorNdDescriptor(r->h_desc, t, 3, dims, strides), "cudnnSetTensorNdDescriptor",
                        "states [L*D, B, u]");
    }
    bool same;
    if (!st) st = lg_cuda_alloc(c, (size_t)batch * sizeof(int32_t), (void **)&r->lengths_dev);
    if (!st) st = set_data(r, NULL, &same);
    if (!st) st = dnn_status(cudnnGetRNNWeightSpaceSize(h, r->rnn, &r->weight_bytes), "cudnnGetRNNWeightSpaceSize", kind_name(s->kind));
    if (!st) st = lg_cuda_alloc(c, r->weight_bytes, &r->weights);
    if (!st) st = lg_cuda_alloc(c, r->weight_bytes, &r->dweights);
    if (!st) st = lg_cuda_memset0(c, r->weights, r->weight_bytes);
    if (!st) st = read_layout(r, h);
    if (!st) st = size_spaces(r, h);
    r->described = !st;
    r->reserve_max = r->reserve_bytes;
    if (st) {
        lg_cudnn_rnn_free(r);
        return st;
    }
    *out = r;
    return LG_OK;
}

void lg_cudnn_rnn_free(lg_cudnn_rnn *r)
{
    if (!r) return;
    if (r->ctx->stream) cudaStreamSynchronize(r->ctx->stream);
    if (r->rnn) cudnnDestroyRNNDescriptor(r->rnn);
    if (r->dropout) cudnnDestroyDropoutDescriptor(r->dropout);
    if (r->x_desc) cudnnDestroyRNNDataDescriptor(r->x_desc);
    if (r->y_desc) cudnnDestroyRNNDataDescriptor(r->y_desc);
    if (r->h_desc) cudnnDestroyTensorDescriptor(r->h_desc);
    lg_cuda_free(r->ctx, r->weights);
    lg_cuda_free(r->ctx, r->dweights);
    lg_cuda_free(r->ctx, r->work);
    lg_cuda_free(r->ctx, r->reserve);
    lg_cuda_free(r->ctx, r->map);
    lg_cuda_free(r->ctx, r->lengths_dev);
    lg_rnn_layout_free(&r->layout);
    free(r->lengths);
    free(r);
}

const lg_rnn_wlayout *lg_cudnn_rnn_layout(const lg_cudnn_rnn *r) { return &r->layout; }

size_t lg_cudnn_rnn_device_bytes(const lg_cudnn_rnn *r)
{
    return 2 * r->weight_bytes + r->work_bytes + r->reserve_cap + (r->map ? (size_t)r->layout.size * sizeof(int64_t) : 0) +
           (size_t)r->batch * sizeof(int32_t);
}

lg_status lg_cudnn_rnn_bind(lg_cudnn_rnn *r, const lg_rnn_src *src)
{
    size_t bytes = (size_t)r->layout.size * sizeof(int64_t);
    int64_t *map = malloc(bytes ? bytes : 1);
    if (!map) return lg_fail(LG_ERR_OUT_OF_MEMORY, "cuDNN %s: out of host memory for a %zu-byte packing map", kind_name(r->spec.kind), bytes);
    lg_rnn_pack_map(&r->spec, &r->layout, src, map);
    lg_status st = LG_OK;
    if (!r->map) st = lg_cuda_alloc(r->ctx, bytes, (void **)&r->map);
    if (!st) st = lg_cuda_copy_h2d(r->ctx, r->map, map, bytes);
    /* h2d from pageable memory returns once the source is staged, but wait
     * anyway: map is freed next. */
    if (!st) st = lg_cuda_sync(r->ctx);
    free(map);
    r->bound = !st;
    return st;
}

static lg_status need_bound(const lg_cudnn_rnn *r, const char *fn)
{
    if (r->bound) return LG_OK;
    return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: cuDNN %s has no parameter layout bound (lg_cudnn_rnn_bind)", fn,
                   kind_name(r->spec.kind));
}

lg_status lg_cudnn_rnn_pack(lg_cudnn_rnn *r, const void *params)
{
    lg_status st = need_bound(r, "lg_cudnn_rnn_pack");
    if (st) return st;
    cudaError_t e = lg_cuda_launch_pack(r->ctx->stream, r->spec.dtype, r->layout.size, r->map, params, r->weights);
    return lg_cuda_status(e, "lg_cuda_launch_pack", "packing RNN weights");
}

lg_status lg_cudnn_rnn_forward(lg_cudnn_rnn *r, const int32_t *lengths, bool training, const void *x, const void *hx,
                               const void *cx, void *y, void *hy, void *cy)
{
    lg_status st = lg_cudnn_rnn_set_lengths(r, lengths);
    if (!st && training) st = own_reserve(r);
    if (!st) st = lg_cudnn_rnn_forward_in(r, r->weights, training ? r->reserve : NULL, x, hx, cx, y, hy, cy);
    r->trained = !st && training;
    return st;
}

lg_status lg_cudnn_rnn_set_lengths(lg_cudnn_rnn *r, const int32_t *lengths)
{
    cudnnHandle_t h;
    bool same = false;
    lg_status st = handle(r->ctx, &h);
    if (!st) st = set_data(r, lengths, &same);
    if (!st && !same) st = size_spaces(r, h);
    if (!st) r->described = true;
    return st;
}

lg_status lg_cudnn_rnn_forward_in(lg_cudnn_rnn *r, const void *weights, void *reserve, const void *x, const void *hx, const void *cx, void *y, void *hy, void *cy)
{
    cudnnHandle_t h;
    lg_status st = handle(r->ctx, &h);
    if (st) return st;
    bool lstm = r->spec.kind == LG_CELL_LSTM, training = reserve != NULL;
    return dnn_status(cudnnRNNForward(h, r->rnn,
                                      training ? CUDNN_FWD_MODE_TRAINING : CUDNN_FWD_MODE_INFERENCE, r->lengths_dev,
                                      r->x_desc, x, r->y_desc, y, r->h_desc, hx, hy, r->h_desc, lstm ? cx : NULL,
                                      lstm ? cy : NULL, r->weight_bytes, weights, r->work_bytes, r->work,
                                      training ? r->reserve_bytes : 0, reserve),
                      "cudnnRNNForward", kind_name(r->spec.kind));
}

lg_status lg_cudnn_rnn_backward(lg_cudnn_rnn *r, const void *x, const void *hx, const void *cx, const void *y,
                                const void *dy, const void *dhy, const void *dcy, void *dx, void *dhx, void *dcx,
                                void *dparams)
{
    lg_status st = need_bound(r, "lg_cudnn_rnn_backward");
    if (st) return st;
    if (!r->trained)
        return lg_fail(LG_ERR_INVALID_ARGUMENT,
                       "lg_cudnn_rnn_backward: cuDNN %s has no training forward to differentiate (its reserve space "
                       "is empty)",
                       kind_name(r->spec.kind));
    st = lg_cudnn_rnn_backward_in(r, r->weights, r->reserve, r->dweights, x, hx, cx, y, dy, dhy, dcy, dx, dhx, dcx);
    if (!st)
        st = lg_cuda_status(lg_cuda_launch_unpack(r->ctx->stream, r->spec.dtype, r->layout.size, r->map, r->dweights,
                                                  dparams),
                            "lg_cuda_launch_unpack", "unpacking RNN weight gradients");
    return st;
}

lg_status lg_cudnn_rnn_backward_in(lg_cudnn_rnn *r, const void *weights, void *reserve, void *dweights, const void *x,
                                   const void *hx, const void *cx, const void *y, const void *dy, const void *dhy,
                                   const void *dcy, void *dx, void *dhx, void *dcx)
{
    cudnnHandle_t h;
    lg_status st = handle(r->ctx, &h);
    if (st) return st;
    bool lstm = r->spec.kind == LG_CELL_LSTM;
    st = dnn_status(cudnnRNNBackwardData_v8(h, r->rnn, r->lengths_dev, r->y_desc, y, dy, r->x_desc, dx, r->h_desc, hx,
                                            dhy, dhx, r->h_desc, lstm ? cx : NULL, lstm ? dcy : NULL,
                                            lstm ? dcx : NULL, r->weight_bytes, weights, r->work_bytes, r->work,
                                            r->reserve_bytes, reserve),
                    "cudnnRNNBackwardData_v8", kind_name(r->spec.kind));
    /* cudnnRNNBackwardWeights_v8 adds into dweights (CUDNN_WGRAD_MODE_ADD) */
    if (!st) st = lg_cuda_memset0(r->ctx, dweights, r->weight_bytes);
    if (!st)
        st = dnn_status(cudnnRNNBackwardWeights_v8(h, r->rnn, CUDNN_WGRAD_MODE_ADD, r->lengths_dev, r->x_desc, x,
                                                   r->h_desc, hx, r->y_desc, y, r->weight_bytes, dweights,
                                                   r->work_bytes, r->work, r->reserve_bytes, reserve),
                        "cudnnRNNBackwardWeights_v8", kind_name(r->spec.kind));
    return st;
}

size_t lg_cudnn_rnn_weight_bytes(const lg_cudnn_rnn *r) { return r->weight_bytes; }
size_t lg_cudnn_rnn_reserve_bytes(const lg_cudnn_rnn *r) { return r->reserve_max; }
size_t lg_cudnn_rnn_reserve_needed(const lg_cudnn_rnn *r) { return r->reserve_bytes; }
const int64_t *lg_cudnn_rnn_map(const lg_cudnn_rnn *r) { return r->bound ? r->map : NULL; }
const int32_t *lg_cudnn_rnn_lengths(const lg_cudnn_rnn *r) { return r->lengths_dev; }
const lg_rnn_spec *lg_cudnn_rnn_spec(const lg_cudnn_rnn *r) { return &r->spec; }
