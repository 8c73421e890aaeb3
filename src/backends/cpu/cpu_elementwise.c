/*
 * cpu_elementwise.c — CPU kernels for the elementwise ops.
 *
 * Binary ops walk the output row by row (rows of the last dim): the input
 * offsets are found once per row, then the inner loop steps each input by 1,
 * or by 0 where it broadcasts. <tgmath.h> makes the float kernels call the
 * float functions (expf, ...), the double ones the double functions.
 */
#include <tgmath.h>

#include "backends/cpu/cpu.h"
#include "backends/cpu/cpu_elementwise.h"
#include "backends/cpu/cpu_vmath.h"

/* out[i] = EXPR(a, b[, c]) with broadcasting, for element type T. */
#define BCAST_LOOP(T, TA, N_IN, EXPR)                                                               \
    do {                                                                                            \
        lg_bcast bc;                                                                                \
        lg_bcast_init(&bc, out[0].shape, in, N_IN);                                                  \
        T *y = out[0].data;                                                                         \
        const TA *pa = in[0].data;                                                                  \
        const T *pb = in[1].data;                                                                   \
        const T *pc = N_IN > 2 ? (const T *)in[2].data : NULL;                                      \
        (void)pc;                                                                                   \
        int64_t last = bc.rank ? bc.dims[bc.rank - 1] : 1, rows = last ? bc.numel / last : 0;       \
        int64_t sa = bc.rank ? bc.strides[0][bc.rank - 1] : 0, sb = bc.rank ? bc.strides[1][bc.rank - 1] : 0; \
        int64_t sc = bc.rank && N_IN > 2 ? bc.strides[2][bc.rank - 1] : 0;                          \
        (void)sc;                                                                                   \
        if (bc.same) {                                                                              \
            for (int64_t i = 0; i < bc.numel; i++) {                                                \
                TA a = pa[i];                                                                       \
                T b = pb[i];                                                                        \
                T c = N_IN > 2 ? pc[i] : 0;                                                         \
                (void)c;                                                                            \
                y[i] = (EXPR);                                                                      \
            }                                                                                       \
            break;                                                                                  \
        }                                                                                           \
        lg_bcast_rows rw = {0};                                                                         \
        for (int64_t r = 0; r < rows; r++, lg_bcast_rows_next(&bc, &rw)) {                          \
            const int64_t *off = rw.off;                                                            \
            for (int64_t j = 0; j < last; j++) {                                                    \
                TA a = pa[off[0] + j * sa];                                                         \
                T b = pb[off[1] + j * sb];                                                          \
                T c = N_IN > 2 ? pc[off[2] + j * sc] : 0;                                           \
                (void)c;                                                                            \
                y[r * last + j] = (EXPR);                                                           \
            }                                                                                       \
        }                                                                                           \
    } while (0)

/* A binary kernel for f32, f64 and i32. */
#define BINARY_KERNEL(name, EXPR)                                                  \
    lg_status lg_cpu_##name(const lg_node *n, const lg_buf *in, lg_buf *out)       \
    {                                                                              \
        (void)n;                                                                   \
        switch (out[0].dtype) {                                                    \
        case LG_F32: BCAST_LOOP(float, float, 2, EXPR); break;                     \
        case LG_F64: BCAST_LOOP(double, double, 2, EXPR); break;                   \
        case LG_I32: BCAST_LOOP(int32_t, int32_t, 2, EXPR); break;                 \
        default: break;                                                            \
        }                                                                          \
        return LG_OK;                                                              \
    }

/* i32 div is never built: inference refuses it. */
#define LG_X_BINARY(ID, name, EXPR) BINARY_KERNEL(name, EXPR)
LG_CPU_BINARY_OPS(LG_X_BINARY)
#undef LG_X_BINARY

lg_status lg_cpu_where(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    (void)n;
    /* a is the mask, with its own dtype; b and c are the two branches */
#define WHERE(T)                                                                             \
    do {                                                                                     \
        if (in[0].dtype == LG_I32) BCAST_LOOP(T, int32_t, 3, LG_CPU_WHERE_EXPR(a, b, c));    \
        else if (in[0].dtype == LG_F32) BCAST_LOOP(T, float, 3, LG_CPU_WHERE_EXPR(a, b, c)); \
        else BCAST_LOOP(T, double, 3, LG_CPU_WHERE_EXPR(a, b, c));                           \
    } while (0)
    switch (out[0].dtype) {
    case LG_F32: WHERE(float); break;
    case LG_F64: WHERE(double); break;
    case LG_I32: WHERE(int32_t); break;
    default: break;
    }
#undef WHERE
    return LG_OK;
}

/* ---- unary ----------------------------------------------------------------- */

/* y[i] = EXPR(x) for f32 and f64, IEXPR(x) for i32 (which inference lets
 * only neg, abs and stop_gradient take); r0, r1 are the node's real
 * attributes. */
#define UNARY_LOOP(TYPE, E)                                                                  \
    do {                                                                                     \
        typedef TYPE T;                                                                      \
        const T *xs = in[0].data;                                                            \
        T *ys = out[0].data;                                                                 \
        for (int64_t i = 0; i < len; i++) {                                                  \
            T x = xs[i];                                                                     \
            (void)x;                                                                         \
            ys[i] = (T)(E);                                                                  \
        }                                                                                    \
    } while (0)

#define UNARY_KERNEL(name, EXPR, IEXPR)                                                      \
    lg_status lg_cpu_##name(const lg_node *n, const lg_buf *in, lg_buf *out)                 \
    {                                                                                        \
        int64_t len = lg_buf_numel(&out[0]);                                                 \
        double r0 = n->attrs.real[0], r1 = n->attrs.real[1];                                 \
        (void)r0, (void)r1;                                                                  \
        switch (out[0].dtype) {                                                              \
        case LG_F32: UNARY_LOOP(float, EXPR); break;                                         \
        case LG_F64: UNARY_LOOP(double, EXPR); break;                                        \
        default: UNARY_LOOP(int32_t, IEXPR); break;                                          \
        }                                                                                    \
        return LG_OK;                                                                        \
    }

#define LG_X_UNARY(ID, name, EXPR, IEXPR) UNARY_KERNEL(name, EXPR, IEXPR)
LG_CPU_UNARY_OPS(LG_X_UNARY)
#undef LG_X_UNARY

/* exp, sigmoid and tanh: f32 through the vector kernels (cpu_vmath.h), f64
 * (gradient checks) through libm. */
#define VMATH_KERNEL(name, VEC, EXPR)                                                         \
    lg_status lg_cpu_##name(const lg_node *n, const lg_buf *in, lg_buf *out)                 \
    {                                                                                        \
        (void)n;                                                                             \
        int64_t len = lg_buf_numel(&out[0]);                                                 \
        if (out[0].dtype == LG_F32) VEC(in[0].data, out[0].data, len);                       \
        else UNARY_LOOP(double, EXPR);                                                       \
        return LG_OK;                                                                        \
    }

#define LG_X_VMATH(ID, name, VEC, EXPR) VMATH_KERNEL(name, VEC, EXPR)
LG_CPU_VMATH_OPS(LG_X_VMATH)
#undef LG_X_VMATH

lg_status lg_cpu_cast(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    (void)n;
    int64_t len = lg_buf_numel(&out[0]);
/* To i32, floats saturate and NaN gives 0 (lg_i32_saturate), as ops.h says:
 * a plain C conversion of an out-of-range float is undefined. */
#define CAST(TI, TO, CONV)                                         \
    do {                                                           \
        const TI *x = in[0].data;                                  \
        TO *y = out[0].data;                                       \
        for (int64_t i = 0; i < len; i++) y[i] = CONV(x[i]);       \
    } while (0)
#define CAST_FROM(TI, TO_I32)                                      \
    switch (out[0].dtype) {                                        \
    case LG_F32: CAST(TI, float, (float)); break;                  \
    case LG_F64: CAST(TI, double, (double)); break;                \
    default: CAST(TI, int32_t, TO_I32); break;                     \
    }
    switch (in[0].dtype) {
    case LG_F32: CAST_FROM(float, lg_i32_saturate); break;
    case LG_F64: CAST_FROM(double, lg_i32_saturate); break;
    default: CAST_FROM(int32_t, (int32_t)); break;
    }
#undef CAST
#undef CAST_FROM
    return LG_OK;
}
