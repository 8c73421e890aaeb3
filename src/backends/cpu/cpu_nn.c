/*
 * cpu_nn.c — softmax, log_softmax and the fused cross-entropy terms.
 *
 * Softmax runs over one axis: the buffer is [outer, len, inner] around it,
 * and every (outer, inner) pair is one distribution, max-shifted for
 * stability. <tgmath.h> picks float or double math per kernel.
 */
#include <tgmath.h>

#include "backends/cpu/cpu.h"

static void around_axis(lg_shape s, int axis, int64_t *outer, int64_t *len, int64_t *inner)
{
    *outer = *inner = 1;
    for (int i = 0; i < axis; i++) *outer *= s.dims[i];
    for (int i = axis + 1; i < s.rank; i++) *inner *= s.dims[i];
    *len = s.dims[axis];
}

#define SOFTMAX(T, LOG)                                                        \
    do {                                                                       \
        const T *x = in[0].data;                                               \
        T *y = out[0].data;                                                    \
        for (int64_t o = 0; o < outer; o++)                                    \
            for (int64_t i = 0; i < inner; i++) {                              \
                const T *xv = x + o * len * inner + i;                         \
                T *yv = y + o * len * inner + i;                               \
                T m = xv[0], sum = 0;                                          \
                for (int64_t j = 1; j < len; j++) m = xv[j * inner] > m ? xv[j * inner] : m; \
                for (int64_t j = 0; j < len; j++) sum += exp(xv[j * inner] - m); \
                T lse = m + log(sum);                                          \
                for (int64_t j = 0; j < len; j++)                              \
                    yv[j * inner] = LOG ? xv[j * inner] - lse : exp(xv[j * inner] - lse); \
            }                                                                  \
    } while (0)

static lg_status softmax_kernel(const lg_node *n, const lg_buf *in, lg_buf *out, bool log_)
{
    int64_t outer, len, inner;
    around_axis(in[0].shape, n->attrs.axis, &outer, &len, &inner);
    if (out[0].dtype == LG_F32) SOFTMAX(float, log_);
    else SOFTMAX(double, log_);
    return LG_OK;
}

lg_status lg_cpu_softmax(const lg_node *n, const lg_buf *in, lg_buf *out) { return softmax_kernel(n, in, out, false); }
lg_status lg_cpu_log_softmax(const lg_node *n, const lg_buf *in, lg_buf *out) { return softmax_kernel(n, in, out, true); }

/* max(x, 0) - x z + log(1 + e^-|x|) */
#define SIGMOID_XENT(T)                                                         \
    do {                                                                        \
        const T *x = in[0].data, *z = in[1].data;                               \
        T *y = out[0].data;                                                     \
        for (int64_t i = 0; i < count; i++)                                     \
            y[i] = (x[i] > 0 ? x[i] : 0) - x[i] * z[i] + log1p(exp(-fabs(x[i]))); \
    } while (0)

lg_status lg_cpu_sigmoid_xent(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    (void)n;
    int64_t count = lg_buf_numel(&out[0]);
    if (out[0].dtype == LG_F32) SIGMOID_XENT(float);
    else SIGMOID_XENT(double);
    return LG_OK;
}

/* Per row of C logits: lse = logsumexp(x); dense targets give
 * sum z (lse - x), sparse labels give lse - x[label]. */
#define XENT_ROWS(T, ROW_LOSS)                                                   \
    do {                                                                         \
        const T *x = in[0].data;                                                 \
        T *y = out[0].data;                                                      \
        for (int64_t r = 0; r < rows; r++) {                                     \
            const T *xr = x + r * classes;                                       \
            T m = xr[0], sum = 0;                                                \
            for (int64_t j = 1; j < classes; j++) m = xr[j] > m ? xr[j] : m;     \
            for (int64_t j = 0; j < classes; j++) sum += exp(xr[j] - m);         \
            T lse = m + log(sum);                                                \
            ROW_LOSS;                                                            \
        }                                                                        \
    } while (0)

#define DENSE_LOSS(T)                                                             \
    do {                                                                          \
        const T *zr = (const T *)in[1].data + r * classes;                        \
        T acc = 0;                                                                \
        for (int64_t j = 0; j < classes; j++) acc += zr[j] * (lse - xr[j]);       \
        y[r] = acc;                                                               \
    } while (0)

lg_status lg_cpu_softmax_xent(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    (void)n;
    int64_t classes = in[0].shape.dims[in[0].shape.rank - 1], rows = lg_buf_numel(&out[0]);
    if (out[0].dtype == LG_F32) XENT_ROWS(float, DENSE_LOSS(float));
    else XENT_ROWS(double, DENSE_LOSS(double));
    return LG_OK;
}

lg_status lg_cpu_sparse_softmax_xent(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    int64_t classes = in[0].shape.dims[in[0].shape.rank - 1], rows = lg_buf_numel(&out[0]);
    const int32_t *labels = in[1].data;
    for (int64_t r = 0; r < rows; r++)
        if (labels[r] < 0 || labels[r] >= classes)
            return lg_fail(LG_ERR_RUNTIME, "sparse_softmax_xent '%s': label %d at row %lld outside [0, %lld)", n->name,
                           (int)labels[r], (long long)r, (long long)classes);
    if (out[0].dtype == LG_F32) XENT_ROWS(float, y[r] = lse - xr[labels[r]]);
    else XENT_ROWS(double, y[r] = lse - xr[labels[r]]);
    return LG_OK;
}
