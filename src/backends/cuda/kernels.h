/*
 * kernels.h — the CUDA kernels' launchers, in plain C types, so that the .cu
 * files (nvcc, C++) and the host side (cuda_<family>.c, gcc, C11) share one
 * declaration. Private to loopgrad_cuda.
 *
 * Every launcher queues work on stream s and returns the launch's
 * cudaError_t (cudaSuccess, or why it could not be queued); the host side
 * turns that into an lg_status naming the node. Pointers are device
 * pointers. Element types follow lg_dtype (f32, f64, i32) with the same
 * arithmetic as the CPU kernels in src/backends/cpu (comments there).
 *
 * Data-dependent errors (an index out of range) cannot return from a
 * kernel: the kernel records the first one in err, a device int32 [4]
 * {set, site, value, bound}, and lg_cuda_sync reports it (cuda.h).
 */
#ifndef LG_CUDA_KERNELS_H
#define LG_CUDA_KERNELS_H

#include <cuda_runtime.h>
#include <stdint.h>

#include "graph/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Broadcasting as the CPU's lg_bcast: the output's dims and, per input, its
 * strides along them (0 where it broadcasts). */
typedef struct lg_cuda_bcast {
    int rank, n_in;
    int same; /* every input has the output's shape */
    int64_t numel;
    int64_t dims[LG_MAX_RANK];
    int64_t strides[3][LG_MAX_RANK];
} lg_cuda_bcast;

typedef enum lg_cuda_binary_op {
    LG_CUDA_ADD,
    LG_CUDA_SUB,
    LG_CUDA_MUL,
    LG_CUDA_DIV,
    /* the comparisons, in lg_cmp's order (LG_CUDA_GT + lg_cmp) */
    LG_CUDA_GT,
    LG_CUDA_GE,
    LG_CUDA_LT,
    LG_CUDA_LE,
    LG_CUDA_EQ,
    LG_CUDA_NE,
    LG_CUDA_BINARY_COUNT
} lg_cuda_binary_op;

/* y = a OP b with broadcasting (bc has n_in 2); comparisons give 1 or 0 in
 * the inputs' dtype, as on the CPU. */
cudaError_t lg_cuda_launch_binary(cudaStream_t s, lg_cuda_binary_op op, lg_dtype dt, const lg_cuda_bcast *bc,
                                  const void *a, const void *b, void *y);
/* y = mask != 0 ? b : c (bc has n_in 3); mask of mask_dt, b, c, y of dt. */
cudaError_t lg_cuda_launch_where(cudaStream_t s, lg_dtype mask_dt, lg_dtype dt, const lg_cuda_bcast *bc,
                                 const void *mask, const void *b, const void *c, void *y);
/* Input 0 broadcast into y (bc has n_in 1), elements of es bytes. */
cudaError_t lg_cuda_launch_broadcast(cudaStream_t s, size_t es, const lg_cuda_bcast *bc, const void *x, void *y);

/* The unary ops, in op_list.h's order. */
typedef enum lg_cuda_unary_op {
    LG_CUDA_NEG,
    LG_CUDA_EXP,
    LG_CUDA_LOG,
    LG_CUDA_SQRT,
    LG_CUDA_SQUARE,
    LG_CUDA_POW,
    LG_CUDA_ABS,
    LG_CUDA_SIGMOID,
    LG_CUDA_HARD_SIGMOID,
    LG_CUDA_TANH,
    LG_CUDA_RELU,
    LG_CUDA_ELU,
    LG_CUDA_SOFTPLUS,
    LG_CUDA_SOFTSIGN,
    LG_CUDA_CLIP,
    LG_CUDA_IDENTITY, /* stop_gradient */
    LG_CUDA_UNARY_COUNT
} lg_cuda_unary_op;

/* y[i] = op(x[i]) for n elements; r0, r1: pow's exponent, elu's alpha, clip's
 * bounds. i32 takes neg, abs and identity only (inference refuses others). */
cudaError_t lg_cuda_launch_unary(cudaStream_t s, lg_cuda_unary_op op, lg_dtype dt, int64_t n, const void *x, void *y,
                                 double r0, double r1);
/* The fused elementwise op (ops/fused_elementwise.h) as its kernel runs
 * it: each output element runs the postfix program on a stack of its own,
 * with the expressions of the unary and binary kernels above, so a fused
 * group gives what its ops give one by one. An instruction loads input
 * `arg` (at its broadcast offset; an input of another dtype than the
 * element type, which only a where's mask is, loads as 1 or 0 for != 0),
 * stores the top value to output `arg` (from 1) or loads it again, puts
 * it into output 0's window from column r0 (row i / put_w of put_W
 * columns), or
 * applies unary op `arg` (lg_cuda_unary_op, reals r0 and r1), binary op
 * `arg` (lg_cuda_binary_op) or where (mask, b, c popped). Sizes: the
 * program's bounds (at most 64 ops, each popping at most 3 values, so at
 * most 129 loads, and 7 stores), checked by the host side. */
enum { LG_CUDA_FEW_INPUTS = 24, LG_CUDA_FEW_DEPTH = 8, LG_CUDA_FEW_CODE = 200, LG_CUDA_FEW_OUTPUTS = 8 };
typedef enum lg_cuda_few_kind {
    LG_CUDA_FEW_LOAD,
    LG_CUDA_FEW_UNARY,
    LG_CUDA_FEW_BINARY,
    LG_CUDA_FEW_WHERE,
    LG_CUDA_FEW_STORE,
    LG_CUDA_FEW_RELOAD,
    LG_CUDA_FEW_PUT
} lg_cuda_few_kind;
typedef struct lg_cuda_few_ins {
    int8_t kind, arg;
    double r0, r1;
} lg_cuda_few_ins;
typedef struct lg_cuda_few {
    int rank, n_in, n_code;
    int all_full; /* every input has the output's shape: input k's offset is the element's */
    int64_t numel;                                    /* of the shape the program runs over */
    int64_t dims[LG_MAX_RANK];
    int64_t put_w, put_W; /* a program that puts: the pieces' and output 0's last dims */
    int64_t strides[LG_CUDA_FEW_INPUTS][LG_MAX_RANK]; /* 0 along broadcast dims */
    int8_t in_dt[LG_CUDA_FEW_INPUTS];                 /* lg_dtype */
    const void *in[LG_CUDA_FEW_INPUTS];
    void *out[LG_CUDA_FEW_OUTPUTS]; /* out[0] is the launch's y */
    lg_cuda_few_ins code[LG_CUDA_FEW_CODE];
} lg_cuda_few;
/* y = out[0] (numel elements of dt, f32 or f64) and the outputs stored =
 * program p over its inputs. y may be an input of the output's shape (each
 * element is read before it is written, by the same thread). */
cudaError_t lg_cuda_launch_fused(cudaStream_t s, lg_dtype dt, const lg_cuda_few *p);
/* y = x converted; to i32, floats saturate and NaN gives 0 (lg_i32_saturate). */
cudaError_t lg_cuda_launch_cast(cudaStream_t s, lg_dtype from, lg_dtype to, int64_t n, const void *x, void *y);
/* y[0..n) = v in dt. */
cudaError_t lg_cuda_launch_fill(cudaStream_t s, lg_dtype dt, int64_t n, void *y, double v);

/* A reduction of x into y: y has n_out elements, each the sum (or max) of
 * n_red elements of x. Output element o's kept coordinates (kept_dims,
 * row-major) and a reduced index's coordinates (red_dims) give x's offset
 * through the strides. One thread per output element where each reduces
 * few elements, else one block per output element; where there are few
 * outputs of many elements (a loss summed over a whole batch), each
 * output's elements are split into chunks, one block each, whose results
 * go to partial (device memory for LG_CUDA_REDUCE_PARTIALS elements of
 * dt) and are reduced by a second pass: the order of the sums depends on
 * the sizes only, never on the launch. */
enum { LG_CUDA_REDUCE_PARTIALS = 8192 };
typedef struct lg_cuda_reduce {
    int64_t n_out, n_red;
    int kept_rank, red_rank;
    int64_t kept_dims[LG_MAX_RANK], kept_strides[LG_MAX_RANK];
    int64_t red_dims[LG_MAX_RANK], red_strides[LG_MAX_RANK];
} lg_cuda_reduce;

cudaError_t lg_cuda_launch_reduce(cudaStream_t s, int max, lg_dtype dt, const lg_cuda_reduce *r, const void *x,
                                  void *y, void *partial);

/* y[i] = x[offset of output index i] for a transpose: out_dims of rank, and
 * for each output axis the input's stride along it; elements of es bytes. */
cudaError_t lg_cuda_launch_transpose(cudaStream_t s, size_t es, int rank, const int64_t *out_dims,
                                     const int64_t *in_strides, const void *x, void *y);

/* Rows of row elements (es bytes each) out of a [rows, row] table:
 * out[i] = table[idx[i]]; an index outside [0, rows) gives a zero row and
 * records {1, site, index, rows} in err. */
cudaError_t lg_cuda_launch_gather(cudaStream_t s, size_t es, int64_t count, int64_t rows, int64_t row,
                                  const int32_t *idx, const void *table, void *out, int32_t *err, int32_t site);
/* y (zeroed by the caller) [rows, row] += u[i] at row idx[i], f32 or f64
 * (atomic adds, so the order of sums of repeated rows varies); a bad index
 * is skipped and recorded as for gather. */
cudaError_t lg_cuda_launch_scatter_add(cudaStream_t s, lg_dtype dt, int64_t count, int64_t rows, int64_t row,
                                       const int32_t *idx, const void *u, void *y, int32_t *err, int32_t site);
/* y [count, depth] = one_hot(idx); an index outside [0, depth) is a zero row. */
cudaError_t lg_cuda_launch_one_hot(cudaStream_t s, lg_dtype dt, int64_t count, int64_t depth, const int32_t *idx,
                                   void *y);

/* Softmax (or log-softmax) of x [outer, len, inner] along len. */
cudaError_t lg_cuda_launch_softmax(cudaStream_t s, lg_dtype dt, int log_, int64_t outer, int64_t len, int64_t inner,
                                   const void *x, void *y);
/* y = max(x, 0) - x z + log1p(exp(-|x|)), n elements. */
cudaError_t lg_cuda_launch_sigmoid_xent(cudaStream_t s, lg_dtype dt, int64_t n, const void *x, const void *z,
                                        void *y);
/* Per row of x [rows, classes]: dense z gives sum z (lse - x); labels (z
 * NULL) give lse - x[label], a label outside [0, classes) gives NaN and is
 * recorded in err as for gather. */
cudaError_t lg_cuda_launch_softmax_xent(cudaStream_t s, lg_dtype dt, int64_t rows, int64_t classes, const void *x,
                                        const void *z, const int32_t *labels, void *y, int32_t *err, int32_t site);

/* Optimizer updates over n elements of one dtype, with the CPU's formulas
 * (src/optim/<name>.c); per-step scalars are computed by the caller. */
cudaError_t lg_cuda_launch_sgd(cudaStream_t s, lg_dtype dt, int64_t n, void *p, const void *g, void *m, double lr,
                               double momentum, int nesterov);
cudaError_t lg_cuda_launch_adam(cudaStream_t s, lg_dtype dt, int64_t n, void *p, const void *g, void *m, void *v,
                                void *v_hat, double alpha, double c1, double c2, double eps);
cudaError_t lg_cuda_launch_rmsprop(cudaStream_t s, lg_dtype dt, int64_t n, void *p, const void *g, void *v, void *mom,
                                   void *avg, double lr, double rho, double momentum, double eps);
/* *acc (a device double) += sum of g[i]^2 in double. */
cudaError_t lg_cuda_launch_sum_squares(cudaStream_t s, lg_dtype dt, int64_t n, const void *g, double *acc);
/* g *= c / norm when norm = sqrt(*sum_sq) > c; with nan_if_inf, a
 * non-finite norm makes every element NaN (Keras's global clipnorm). */
cudaError_t lg_cuda_launch_clip_norm(cudaStream_t s, lg_dtype dt, int64_t n, void *g, const double *sum_sq, double c,
                                     int nan_if_inf);
/* g = min(max(g, -c), c). */
cudaError_t lg_cuda_launch_clip_value(cudaStream_t s, lg_dtype dt, int64_t n, void *g, double c);
/* x[i] = x[i] * w, in double and rounded once to dt (a data-parallel share's
 * weight, src/train/dist.c). */
cudaError_t lg_cuda_launch_scale(cudaStream_t s, lg_dtype dt, int64_t n, void *x, double w);

/* dst[i] = map[i] < 0 ? 0 : src[map[i]] (RNN weight packing, rnn_pack.h). */
cudaError_t lg_cuda_launch_pack(cudaStream_t s, lg_dtype dt, int64_t n, const int64_t *map, const void *src,
                                void *dst);
/* dst[map[i]] = src[i] where map[i] >= 0 (unpacking gradients). */
cudaError_t lg_cuda_launch_unpack(cudaStream_t s, lg_dtype dt, int64_t n, const int64_t *map, const void *src,
                                  void *dst);

/* The fused rnn op's weights W, U, b of each pseudo-layer p (parts 3p,
 * 3p + 1, 3p + 2; p = 1 for a bidirectional call's reverse direction, p
 * = l for a stack's layer l) as one virtual buffer [W | U | b | W' | U' |
 * b' | ...]: element k is ptr[j][k - start[j]] for the last j with 0 <=
 * start[j] <= k (start -1 and ptr NULL for a part that is absent: no bias,
 * no such pseudo-layer); rnn_pack's map indexes it. 24 parts: 3 for each
 * of a stack's at most LG_RNN_MAX_LAYERS (ops/rnn.h) layers. */
enum { LG_CUDA_PARTS = 24 };
typedef struct lg_cuda_parts {
    void *ptr[LG_CUDA_PARTS];
    int64_t start[LG_CUDA_PARTS];
} lg_cuda_parts;
/* dst[i] = map[i] < 0 ? 0 : parts[map[i]] (packing W, U, b for cuDNN). */
cudaError_t lg_cuda_launch_pack_parts(cudaStream_t s, lg_dtype dt, int64_t n, const int64_t *map,
                                      const lg_cuda_parts *parts, void *dst);
/* parts[map[i]] = src[i] where map[i] >= 0 (the weight gradients). */
cudaError_t lg_cuda_launch_unpack_parts(cudaStream_t s, lg_dtype dt, int64_t n, const int64_t *map, const void *src,
                                        const lg_cuda_parts *parts);
/* y [T, B, F] from x [T, B, F] (time-major) with lengths (device i32 [B]):
 * y[t, b] = x[t, b] (x[len_b - 1 - t, b] with reverse) for t < len_b, 0
 * past it. Without reverse y may be x (each element is read, then written
 * by one thread). */
cudaError_t lg_cuda_launch_seq_order(cudaStream_t s, lg_dtype dt, int64_t T, int64_t B, int64_t F,
                                     const int32_t *lengths, int reverse, const void *x, void *y);
/* A bidirectional cuDNN call's y [T, B, 2F] (time-major; per step the
 * forward direction's F features, then the reverse one's) and the two
 * directions' [T, B, F], with lengths (device i32 [B]): split writes y0, y1
 * from y, join writes y from y0, y1; both write 0 at steps t >= len_b. */
cudaError_t lg_cuda_launch_bidir_split(cudaStream_t s, lg_dtype dt, int64_t T, int64_t B, int64_t F,
                                       const int32_t *lengths, const void *y, void *y0, void *y1);
cudaError_t lg_cuda_launch_bidir_join(cudaStream_t s, lg_dtype dt, int64_t T, int64_t B, int64_t F,
                                      const int32_t *lengths, const void *y0, const void *y1, void *y);

#ifdef __cplusplus
}
#endif
#endif
