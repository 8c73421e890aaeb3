/*
 * cpu_elementwise.h — the scalar expressions of the CPU elementwise kernels,
 * one list, so the per-op kernels (cpu_elementwise.c) and the fused kernel
 * (cpu_fused_elementwise.c) compute the same bits. Private to the library.
 *
 * Include after <tgmath.h>: with x, a, b of element type T (float or
 * double) the math calls are T's (expf for float). In the unary
 * expressions r0, r1 are the node's attrs.real; compare reads n->attrs.cmp.
 */
#ifndef LG_CPU_ELEMENTWISE_H
#define LG_CPU_ELEMENTWISE_H

#include "graph/ops.h"

static inline bool lg_cpu_cmp(double a, double b, int op)
{
    switch (op) {
    case LG_CMP_GT: return a > b;
    case LG_CMP_GE: return a >= b;
    case LG_CMP_LT: return a < b;
    case LG_CMP_LE: return a <= b;
    case LG_CMP_EQ: return a == b;
    default: return a != b;
    }
}

/* X(ID, name, EXPR over a and b); i32 too. */
#define LG_CPU_BINARY_OPS(X)  \
    X(ADD, add, a + b)        \
    X(SUB, sub, a - b)        \
    X(MUL, mul, a * b)        \
    X(DIV, div, a / b)        \
    X(COMPARE, compare, lg_cpu_cmp(a, b, n->attrs.cmp))

/* where: a is the mask (any dtype), b and c the branches. */
#define LG_CPU_WHERE_EXPR(a, b, c) ((a) != 0 ? (b) : (c))

/* X(ID, name, EXPR over x for f32 and f64, IEXPR for i32, which inference
 * lets only neg, abs and stop_gradient take). */
#define LG_CPU_UNARY_OPS(X)                                                     \
    X(NEG, neg, -x, -x)                                                         \
    X(LOG, log, log(x), 0)                                                      \
    X(SQRT, sqrt, sqrt(x), 0)                                                   \
    X(SQUARE, square, x *x, 0)                                                  \
    X(POW, pow, pow(x, (T)r0), 0)                                               \
    X(ABS, abs, fabs(x), x < 0 ? -x : x)                                        \
    X(HARD_SIGMOID, hard_sigmoid, x <= -3 ? 0 : x >= 3 ? 1 : x / 6 + (T)0.5, 0) \
    X(RELU, relu, x > 0 ? x : 0, 0)                                             \
    X(ELU, elu, x > 0 ? x : (T)r0 * expm1(x), 0)                                \
    X(SOFTPLUS, softplus, (x > 0 ? x : 0) + log1p(exp(-fabs(x))), 0)            \
    X(SOFTSIGN, softsign, x / (1 + fabs(x)), 0)                                 \
    X(CLIP, clip, x < (T)r0 ? (T)r0 : x > (T)r1 ? (T)r1 : x, 0)                 \
    X(STOP_GRADIENT, stop_gradient, x, x)

/* X(ID, name, the f32 vector kernel (cpu_vmath.h), EXPR for f64). */
#define LG_CPU_VMATH_OPS(X)                                                                  \
    X(EXP, exp, lg_vexpf, exp(x))                                                            \
    X(SIGMOID, sigmoid, lg_vsigmoidf, x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x))) \
    X(TANH, tanh, lg_vtanhf, tanh(x))

#endif
