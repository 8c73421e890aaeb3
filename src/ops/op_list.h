/*
 * op_list.h — the one list of ops. Every table indexed by lg_op is generated
 * from these macros, so an op added here does not link until it has a
 * descriptor (lg_op_def_<name>) and, if it computes, a CPU kernel
 * (lg_cpu_<name>).
 *
 * Sources are bound to buffers by the executor and have no kernel.
 */
#ifndef LG_OP_LIST_H
#define LG_OP_LIST_H

#define LG_SOURCE_OPS(X) \
    X(INPUT, input)      \
    X(PARAM, param)      \
    X(CONST, const)

#define LG_COMPUTE_OPS(X)                                  \
    /* linalg.c */                                         \
    X(MATMUL, matmul)                                      \
    /* elementwise.c */                                    \
    X(ADD, add)                                            \
    X(SUB, sub)                                            \
    X(MUL, mul)                                            \
    X(DIV, div)                                            \
    X(COMPARE, compare)                                    \
    X(WHERE, where)                                        \
    X(NEG, neg)                                            \
    X(EXP, exp)                                            \
    X(LOG, log)                                            \
    X(SQRT, sqrt)                                          \
    X(SQUARE, square)                                      \
    X(POW, pow)                                            \
    X(ABS, abs)                                            \
    X(SIGMOID, sigmoid)                                    \
    X(HARD_SIGMOID, hard_sigmoid)                          \
    X(TANH, tanh)                                          \
    X(RELU, relu)                                          \
    X(ELU, elu)                                            \
    X(SOFTPLUS, softplus)                                  \
    X(SOFTSIGN, softsign)                                  \
    X(CLIP, clip)                                          \
    X(CAST, cast)                                          \
    X(STOP_GRADIENT, stop_gradient)                        \
    /* reduce.c */                                         \
    X(SUM, sum)                                            \
    X(MAX, max)                                            \
    X(NUMEL, numel)                                        \
    /* shape.c */                                          \
    X(RESHAPE, reshape)                                    \
    X(RESHAPE_LIKE, reshape_like)                          \
    X(EXPAND_DIMS, expand_dims)                            \
    X(SQUEEZE, squeeze)                                    \
    X(TRANSPOSE, transpose)                                \
    X(SLICE, slice)                                        \
    X(UNSLICE, unslice) /* gradient of slice: pad with 0 */ \
    X(CONCAT, concat)                                      \
    X(SPLIT, split)                                        \
    X(BROADCAST_TO, broadcast_to)                          \
    X(BROADCAST_LIKE, broadcast_like)                      \
    X(SUM_TO, sum_to)                                      \
    /* index.c */                                          \
    X(GATHER, gather)                                      \
    X(SCATTER_ADD, scatter_add)                            \
    X(ONE_HOT, one_hot)                                    \
    /* nn.c */                                             \
    X(SOFTMAX, softmax)                                    \
    X(LOG_SOFTMAX, log_softmax)                            \
    X(SIGMOID_XENT, sigmoid_xent)                          \
    X(SOFTMAX_XENT, softmax_xent)                          \
    X(SPARSE_SOFTMAX_XENT, sparse_softmax_xent)

/* Fused compute ops: only compile passes make them (rnn.c: the fuse_rnn
 * pass's loops; fused_elementwise.c: the fuse_elementwise pass's chains of
 * elementwise ops). The CPU backend has kernels for them; the CUDA backend
 * runs rnn and rnn_grad on cuDNN where its rnn_plan agrees, and leaves
 * fused_elementwise out, so a pass fuses only where the backend has the
 * kernel. */
#define LG_FUSED_OPS(X)   \
    X(RNN, rnn)           \
    X(RNN_GRAD, rnn_grad) \
    X(FUSED_ELEMENTWISE, fused_elementwise)

/* Control ops: the executor runs them (a loop steps its body's schedule);
 * backends run only the kernels inside. */
#define LG_CONTROL_OPS(X) \
    /* loop.c */          \
    X(LOOP, loop)

#define LG_OPS(X) LG_SOURCE_OPS(X) LG_COMPUTE_OPS(X) LG_FUSED_OPS(X) LG_CONTROL_OPS(X)

typedef enum lg_op {
#define LG_X_ENUM(ID, name) LG_OP_##ID,
    LG_OPS(LG_X_ENUM)
#undef LG_X_ENUM
        LG_OP_COUNT
} lg_op;

#endif
