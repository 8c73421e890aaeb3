/*
 * gradcheck_rows.c — the gradcheck row table (gradcheck_rows.h): the row
 * notation, one builder per op family, the rows, and building a row.
 */
#include "gradcheck_rows.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

enum { GC_MAX_ELEMS = 128 };

static const uint64_t GC_SEED = 20240601;
/* How far every input value is kept from a kink, and the two inputs of a
 * "gap" row from each other (|a - b|; compare and mae have their kink there). */
static const double GC_KINK_GAP = 0.05;
static const double GC_PAIR_GAP = 0.1;

typedef enum gc_kind {
    K_NONE = 0, /* ends a row's input list */
    K_INPUT,    /* f64 placeholder, fed, differentiated */
    K_PARAM,    /* f64 parameter, differentiated */
    K_AUX,      /* placeholder, fed, not differentiated (f64 range or i32 vals) */
    K_FIXED,    /* constant with the given vals */
} gc_kind;

typedef struct gc_input {
    gc_kind kind;
    lg_dtype dtype;
    lg_shape shape;
    double lo, hi;      /* uniform range when vals is NULL */
    const double *vals; /* given values (i32 indices, masks, distributions) */
} gc_input;

typedef struct gc_row gc_row;
/* Build the row's output from its input values (in[i] per row input). */
typedef lg_value (*gc_build_fn)(const gc_row *r, const lg_value *in);

struct gc_row {
    const char *name;
    gc_build_fn build;
    int op; /* which op of the builder's family */
    gc_input in[GC_MAX_IN];
    /* attributes, read by the family's builder as its op needs */
    double a, b; /* pow exponent, elu alpha, clip bounds, scale, dropout rate */
    int axis;
    int axes[LG_MAX_RANK], n_axes;
    bool keepdims, trans_a, trans_b, from_logits;
    lg_cmp cmp;
    int perm[LG_MAX_RANK], n_perm; /* 0: NULL perm (reverse) */
    lg_shape to;                   /* reshape / broadcast_to target */
    int64_t sizes[4];              /* split sizes; all 0: equal pieces */
    int n_split;
    unsigned use; /* split outputs that reach the loss, bit set; 0: all */
    /* input values */
    double kinks[6];
    int n_kinks;
    bool distinct; /* each f64 input's values pairwise distinct (max: no ties) */
    bool gap;      /* in[1] kept GC_PAIR_GAP from in[0] elementwise */
    lg_gradcheck_opts tol; /* eps 0: lg_gradcheck_opts_default() */
};

/* ---- row notation ---------------------------------------------------------- */

#define GC_NARGS_(a, b, c, d, e, f, n, ...) n
#define GC_NARGS(...) GC_NARGS_(__VA_ARGS__, 6, 5, 4, 3, 2, 1, 0)
#define SH(...) {.rank = GC_NARGS(__VA_ARGS__), .dims = {__VA_ARGS__}}
#define SCALAR {.rank = 0}

#define X(sh, l, h) {.kind = K_INPUT, .dtype = LG_F64, .shape = sh, .lo = (l), .hi = (h)}
#define P(sh, l, h) {.kind = K_PARAM, .dtype = LG_F64, .shape = sh, .lo = (l), .hi = (h)}
#define AUX(sh, l, h) {.kind = K_AUX, .dtype = LG_F64, .shape = sh, .lo = (l), .hi = (h)}
#define FIXED(sh, ...) {.kind = K_FIXED, .dtype = LG_F64, .shape = sh, .vals = (const double[]){__VA_ARGS__}}
#define IDX(sh, ...) {.kind = K_FIXED, .dtype = LG_I32, .shape = sh, .vals = (const double[]){__VA_ARGS__}}
#define IDX_FED(sh, ...) {.kind = K_AUX, .dtype = LG_I32, .shape = sh, .vals = (const double[]){__VA_ARGS__}}

#define KINKS(...) .kinks = {__VA_ARGS__}, .n_kinks = GC_NARGS(__VA_ARGS__)
#define AXES(...) .axes = {__VA_ARGS__}, .n_axes = GC_NARGS(__VA_ARGS__)
#define PERM(...) .perm = {__VA_ARGS__}, .n_perm = GC_NARGS(__VA_ARGS__)
#define TOL(e, at, rt) .tol = {.eps = (e), .atol = (at), .rtol = (rt)}

/* ---- helpers for builders ----------------------------------------------------- */

/* sum(y * R) for a fixed random R shaped like y: a scalar every element of y
 * reaches with its own weight. */
static lg_value weigh(lg_value y)
{
    if (!lg_value_ok(y))
        return y;
    lg_graph *g = y.graph;
    lg_tensor *r = NULL;
    if (lg_tensor_new(LG_F64, lg_value_shape(y), &r) != LG_OK)
        return lg_value_invalid();
    uint64_t key = 7919u + (uint64_t)lg_graph_node_count(g);
    for (int64_t i = 0; i < lg_tensor_numel(r); i++)
        lg_tensor_set(r, i, 2.0 * lg_philox_uniform(GC_SEED, key, (uint64_t)i) - 1.0);
    lg_value rv = lg_constant(g, "R", r);
    lg_tensor_free(r);
    return lg_sum(lg_mul(y, rv), NULL, 0, false);
}

static int row_inputs(const gc_row *r)
{
    int n = 0;
    while (n < GC_MAX_IN && r->in[n].kind != K_NONE)
        n++;
    return n;
}

/* ---- builders: one per op family ------------------------------------------- */

enum {
    U_NEG, U_EXP, U_LOG, U_SQRT, U_SQUARE, U_POW, U_ABS, U_SIGMOID, U_HARD_SIGMOID, U_TANH, U_RELU, U_ELU,
    U_SOFTPLUS, U_SOFTSIGN, U_CLIP, U_SCALE, U_ADD_SCALAR,
    U_CAST_F64,     /* cast(x, f64) on f64: identity */
    U_CAST_VIA_F32, /* cast(cast(x, f32), f64) */
    U_CAST_VIA_I32, /* x + cast(cast(x, i32), f64): the i32 path has zero gradient */
};

static lg_value build_unary(const gc_row *r, const lg_value *in)
{
    lg_value x = in[0];
    switch (r->op) {
    case U_NEG: return lg_neg(x);
    case U_EXP: return lg_exp(x);
    case U_LOG: return lg_log(x);
    case U_SQRT: return lg_sqrt(x);
    case U_SQUARE: return lg_square(x);
    case U_POW: return lg_pow(x, r->a);
    case U_ABS: return lg_abs(x);
    case U_SIGMOID: return lg_sigmoid(x);
    case U_HARD_SIGMOID: return lg_hard_sigmoid(x);
    case U_TANH: return lg_tanh(x);
    case U_RELU: return lg_relu(x);
    case U_ELU: return lg_elu(x, r->a);
    case U_SOFTPLUS: return lg_softplus(x);
    case U_SOFTSIGN: return lg_softsign(x);
    case U_CLIP: return lg_clip(x, r->a, r->b);
    case U_SCALE: return lg_scale(x, r->a);
    case U_ADD_SCALAR: return lg_add_scalar(x, r->a);
    case U_CAST_F64: return lg_cast(x, LG_F64);
    case U_CAST_VIA_F32: return lg_cast(lg_cast(x, LG_F32), LG_F64);
    case U_CAST_VIA_I32: return lg_add(x, lg_cast(lg_cast(x, LG_I32), LG_F64));
    }
    return lg_value_invalid();
}

enum {
    B_ADD, B_SUB, B_MUL, B_DIV,
    B_WHERE_CMP,      /* where(compare(a, b, cmp), a, b) */
    B_WHERE,          /* where(mask, a, b) */
    B_MUL_STOP,       /* a * stop_gradient(b) */
    B_MATMUL,
    B_DROPOUT,        /* dropout(x, mask, rate a) */
    B_RESHAPE_LIKE,   /* reshape_like(x, like) */
    B_BROADCAST_LIKE, /* broadcast_like(x, like) */
    B_SUM_TO,         /* sum_to(x, like) */
    B_GATHER,         /* gather(table, idx) */
    B_SCATTER_ADD,    /* scatter_add(updates, idx, like) */
};

static lg_value build_binary(const gc_row *r, const lg_value *in)
{
    lg_value a = in[0], b = in[1];
    switch (r->op) {
    case B_ADD: return lg_add(a, b);
    case B_SUB: return lg_sub(a, b);
    case B_MUL: return lg_mul(a, b);
    case B_DIV: return lg_div(a, b);
    case B_WHERE_CMP: return lg_where(lg_compare(a, b, r->cmp), a, b);
    case B_WHERE: return lg_where(in[0], in[1], in[2]);
    case B_MUL_STOP: return lg_mul(a, lg_stop_gradient(b));
    case B_MATMUL: return lg_matmul(a, b, r->trans_a, r->trans_b);
    case B_DROPOUT: return lg_dropout(a, b, r->a);
    case B_RESHAPE_LIKE: return lg_reshape_like(a, b);
    case B_BROADCAST_LIKE: return lg_broadcast_like(a, b);
    case B_SUM_TO: return lg_sum_to(a, b);
    case B_GATHER: return lg_gather(a, b);
    case B_SCATTER_ADD: return lg_scatter_add(in[0], in[1], in[2]);
    }
    return lg_value_invalid();
}

enum { R_SUM, R_MEAN, R_MAX, R_SUM_OVER_NUMEL /* sum(x, axes) / numel(x, axes) */ };

static lg_value build_reduce(const gc_row *r, const lg_value *in)
{
    lg_value x = in[0];
    switch (r->op) {
    case R_SUM: return lg_sum(x, r->axes, r->n_axes, r->keepdims);
    case R_MEAN: return lg_mean(x, r->axes, r->n_axes, r->keepdims);
    case R_MAX: return lg_max(x, r->axes, r->n_axes, r->keepdims);
    case R_SUM_OVER_NUMEL:
        return lg_div(lg_sum(x, r->axes, r->n_axes, false), lg_numel(x, r->axes, r->n_axes));
    }
    return lg_value_invalid();
}

enum { S_RESHAPE, S_EXPAND_DIMS, S_SQUEEZE, S_TRANSPOSE, S_SLICE, S_CONCAT, S_SPLIT, S_BROADCAST_TO };

static lg_value build_shape(const gc_row *r, const lg_value *in)
{
    lg_value x = in[0];
    switch (r->op) {
    case S_RESHAPE: return lg_reshape(x, r->to);
    case S_EXPAND_DIMS: return lg_expand_dims(x, r->axis);
    case S_SQUEEZE: return lg_squeeze(x, r->axis);
    case S_TRANSPOSE: return lg_transpose(x, r->n_perm ? r->perm : NULL);
    case S_SLICE: return lg_slice(x, r->axis, (int64_t)r->a, (int64_t)r->b);
    case S_CONCAT: return lg_concat(in, row_inputs(r), r->axis);
    case S_SPLIT: {
        /* Every used piece weighed by its own R; the loss is their sum. */
        lg_value outs[4];
        lg_split(x, r->axis, r->sizes[0] ? r->sizes : NULL, r->n_split, outs);
        lg_value loss = lg_value_invalid();
        for (int i = 0; i < r->n_split; i++) {
            if (r->use && !(r->use & (1u << i)))
                continue;
            lg_value part = weigh(outs[i]);
            loss = lg_value_ok(loss) ? lg_add(loss, part) : part;
        }
        return loss;
    }
    case S_BROADCAST_TO: return lg_broadcast_to(x, r->to);
    }
    return lg_value_invalid();
}

enum {
    N_SOFTMAX, N_LOG_SOFTMAX,
    N_SIGMOID_XENT, N_SOFTMAX_XENT, N_SPARSE_SOFTMAX_XENT, /* (logits, targets) */
    N_ONE_HOT,                                            /* one_hot(labels, depth a) * x */
    N_MSE, N_MAE, N_BCE, N_CCE, N_SCCE,                   /* (y_true, y_pred) */
};

static lg_value build_nn(const gc_row *r, const lg_value *in)
{
    lg_value x = in[0], t = in[1];
    switch (r->op) {
    case N_SOFTMAX: return lg_softmax(x, r->axis);
    case N_LOG_SOFTMAX: return lg_log_softmax(x, r->axis);
    case N_SIGMOID_XENT: return lg_sigmoid_xent(t, x);
    case N_SOFTMAX_XENT: return lg_softmax_xent(t, x);
    case N_SPARSE_SOFTMAX_XENT: return lg_sparse_softmax_xent(t, x);
    case N_ONE_HOT: return lg_mul(lg_one_hot(x, (int64_t)r->a, LG_F64), t);
    case N_MSE: return lg_mse(x, t);
    case N_MAE: return lg_mae(x, t);
    case N_BCE: return lg_binary_crossentropy(x, t, r->from_logits);
    case N_CCE: return lg_categorical_crossentropy(x, t, r->from_logits);
    case N_SCCE: return lg_sparse_categorical_crossentropy(x, t, r->from_logits);
    }
    return lg_value_invalid();
}

/* Loop rows: in = {x [B, T, F], h0 [B, U], W [F, U], R [U, U]}; the body is
 * h_t = tanh(x_t W + h_{t-1} R), emitting h_t. L_TWO_STATES also carries a
 * rank-3 state c [B, U, 2], c_t = 0.5 c_{t-1} + h_t (broadcast on the last
 * axis), so states of different shapes step together. */
enum { L_RNN, L_RNN_REVERSE, L_TWO_STATES };

static lg_value build_loop(const gc_row *r, const lg_value *in)
{
    lg_graph *g = in[0].graph;
    lg_loop_opts o = lg_loop_opts_default();
    o.reverse = r->op == L_RNN_REVERSE;
    lg_loop *l = lg_loop_new(g, NULL, o);
    lg_value x = lg_loop_seq(l, in[0]), h = lg_loop_state(l, in[1]);
    lg_value w = lg_loop_invariant(l, in[2]), u = lg_loop_invariant(l, in[3]);
    lg_value hn = lg_tanh(lg_add(lg_matmul(x, w, false, false), lg_matmul(h, u, false, false)));
    lg_loop_next(l, h, hn);
    lg_loop_emit(l, hn);
    lg_value c = lg_value_invalid();
    if (r->op == L_TWO_STATES) {
        lg_value c0 = lg_broadcast_to(lg_expand_dims(in[1], -1), lg_shape_of(3, (int)lg_value_shape(in[1]).dims[0],
                                                                            (int)lg_value_shape(in[1]).dims[1], 2));
        c = lg_loop_state(l, c0);
        lg_loop_next(l, c, lg_add(lg_scale(c, 0.5), lg_expand_dims(hn, -1)));
    }
    lg_value finals[2], ys;
    if (lg_loop_end(l, finals, &ys) != LG_OK) return lg_value_invalid();
    lg_value y = lg_add(weigh(ys), weigh(finals[0]));
    return r->op == L_TWO_STATES ? lg_add(y, weigh(finals[1])) : y;
}

/* ---- the table ------------------------------------------------------------ */

#define UN(n, o, ...) {.name = (n), .build = build_unary, .op = (o), __VA_ARGS__}
#define BIN(n, o, ...) {.name = (n), .build = build_binary, .op = (o), __VA_ARGS__}
#define RED(n, o, ...) {.name = (n), .build = build_reduce, .op = (o), __VA_ARGS__}
#define SHP(n, o, ...) {.name = (n), .build = build_shape, .op = (o), __VA_ARGS__}
#define NN(n, o, ...) {.name = (n), .build = build_nn, .op = (o), __VA_ARGS__}
#define LOOP(n, o, ...) {.name = (n), .build = build_loop, .op = (o), __VA_ARGS__}

/* A distribution per row of a [3, 4] target. */
#define DIST_3x4 0.1, 0.2, 0.3, 0.4, 0.25, 0.25, 0.25, 0.25, 0.7, 0.0, 0.1, 0.2

static const gc_row ROWS[] = {
    /* ---- unary elementwise */
    UN("neg [3,4]", U_NEG, .in = {X(SH(3, 4), -2, 2)}),
    UN("neg scalar param", U_NEG, .in = {P(SCALAR, -2, 2)}),
    UN("exp [3,4]", U_EXP, .in = {X(SH(3, 4), -2, 2)}),
    UN("exp [2,1,3] param", U_EXP, .in = {P(SH(2, 1, 3), -3, 1)}),
    UN("log [3,4]", U_LOG, .in = {X(SH(3, 4), 0.2, 3)}),
    UN("log [5] large", U_LOG, .in = {X(SH(5), 1e2, 1e3)}),
    UN("sqrt [3,4]", U_SQRT, .in = {X(SH(3, 4), 0.2, 4)}),
    UN("sqrt [1,1] param", U_SQRT, .in = {P(SH(1, 1), 0.5, 2)}),
    UN("square [3,4]", U_SQUARE, .in = {X(SH(3, 4), -2, 2)}),
    UN("square [4] large", U_SQUARE, .in = {X(SH(4), -1e3, 1e3)}),
    UN("pow 3 [3,4]", U_POW, .a = 3, .in = {X(SH(3, 4), -2, 2)}),
    UN("pow 2 [2,3] param", U_POW, .a = 2, .in = {P(SH(2, 3), -2, 2)}),
    UN("pow 0.5 [3,4]", U_POW, .a = 0.5, .in = {X(SH(3, 4), 0.2, 3)}),
    UN("pow -1.5 [3,4]", U_POW, .a = -1.5, .in = {X(SH(3, 4), 0.3, 3)}),
    UN("abs [3,4]", U_ABS, .in = {X(SH(3, 4), -2, 2)}, KINKS(0)),
    UN("abs [1,1] param", U_ABS, .in = {P(SH(1, 1), -2, 2)}, KINKS(0)),
    UN("sigmoid [3,4]", U_SIGMOID, .in = {X(SH(3, 4), -4, 4)}),
    UN("sigmoid [2,3] large", U_SIGMOID, .in = {X(SH(2, 3), -40, 40)}),
    UN("hard_sigmoid [3,4]", U_HARD_SIGMOID, .in = {X(SH(3, 4), -5, 5)}, KINKS(-3, 3)),
    UN("hard_sigmoid [2,1,3] param", U_HARD_SIGMOID, .in = {P(SH(2, 1, 3), -4, 4)}, KINKS(-3, 3)),
    UN("tanh [3,4]", U_TANH, .in = {X(SH(3, 4), -3, 3)}),
    UN("tanh [6] param", U_TANH, .in = {P(SH(6), -3, 3)}),
    UN("relu [3,4]", U_RELU, .in = {X(SH(3, 4), -2, 2)}, KINKS(0)),
    UN("relu [2,1,3] param", U_RELU, .in = {P(SH(2, 1, 3), -2, 2)}, KINKS(0)),
    UN("elu 1 [3,4]", U_ELU, .a = 1.0, .in = {X(SH(3, 4), -3, 3)}, KINKS(0)),
    UN("elu 0.5 [2,3]", U_ELU, .a = 0.5, .in = {X(SH(2, 3), -3, 3)}, KINKS(0)),
    UN("softplus [3,4]", U_SOFTPLUS, .in = {X(SH(3, 4), -5, 5)}),
    UN("softplus [2,3] large", U_SOFTPLUS, .in = {X(SH(2, 3), -1e3, 1e3)}),
    UN("softsign [3,4]", U_SOFTSIGN, .in = {X(SH(3, 4), -3, 3)}, KINKS(0)),
    UN("clip [3,4] to [-0.5, 0.7]", U_CLIP, .a = -0.5, .b = 0.7, .in = {X(SH(3, 4), -2, 2)}, KINKS(-0.5, 0.7)),
    UN("clip [5] param to [0, 1]", U_CLIP, .a = 0, .b = 1, .in = {P(SH(5), -1, 2)}, KINKS(0, 1)),
    UN("scale -2.5 [3,4]", U_SCALE, .a = -2.5, .in = {X(SH(3, 4), -2, 2)}),
    UN("add_scalar 1.5 [3,4]", U_ADD_SCALAR, .a = 1.5, .in = {X(SH(3, 4), -2, 2)}),
    UN("cast f64->f64 [3,4]", U_CAST_F64, .in = {X(SH(3, 4), -2, 2)}),
    /* f32 rounds the loss to ~6e-8 relative, so the default step (1e-6)
     * would give differences of pure rounding noise: a 1e-2 step and looser
     * tolerances (the loss is linear in x, so the big step costs nothing). */
    UN("cast f64->f32->f64 [3,4]", U_CAST_VIA_F32, .in = {X(SH(3, 4), -2, 2)}, TOL(1e-2, 1e-4, 1e-3)),
    /* truncation to i32 is flat between integers: keep x off them */
    UN("x + cast f64->i32->f64 [3,4]", U_CAST_VIA_I32, .in = {X(SH(3, 4), -2.9, 2.9)}, KINKS(-2, -1, 0, 1, 2)),

    /* ---- binary elementwise, numpy broadcasting */
    BIN("add [3,4]+[3,4]", B_ADD, .in = {X(SH(3, 4), -2, 2), X(SH(3, 4), -2, 2)}),
    BIN("add [3,4]+[4]", B_ADD, .in = {X(SH(3, 4), -2, 2), X(SH(4), -2, 2)}),
    BIN("add [2,1,3]+[4,1]", B_ADD, .in = {X(SH(2, 1, 3), -2, 2), X(SH(4, 1), -2, 2)}),
    BIN("add scalar+[3,4]", B_ADD, .in = {X(SCALAR, -2, 2), X(SH(3, 4), -2, 2)}),
    BIN("add [1,1]+[3,1] param", B_ADD, .in = {P(SH(1, 1), -2, 2), X(SH(3, 1), -2, 2)}),
    BIN("add [3,4]+[4] large", B_ADD, .in = {X(SH(3, 4), -1e3, 1e3), P(SH(4), 5e2, 1.5e3)}),
    BIN("sub [3,4]-[4]", B_SUB, .in = {X(SH(3, 4), -2, 2), X(SH(4), -2, 2)}),
    BIN("sub [4,1]-[2,1,3]", B_SUB, .in = {X(SH(4, 1), -2, 2), X(SH(2, 1, 3), -2, 2)}),
    BIN("sub [3,4]-scalar param", B_SUB, .in = {X(SH(3, 4), -2, 2), P(SCALAR, -2, 2)}),
    BIN("mul [3,4]*[3,4]", B_MUL, .in = {X(SH(3, 4), -2, 2), X(SH(3, 4), -2, 2)}),
    BIN("mul [3,4]*[4]", B_MUL, .in = {X(SH(3, 4), -2, 2), P(SH(4), -2, 2)}),
    BIN("mul [2,1,3]*[4,1]", B_MUL, .in = {X(SH(2, 1, 3), -2, 2), X(SH(4, 1), -2, 2)}),
    BIN("mul scalar*[3,4]", B_MUL, .in = {X(SCALAR, -2, 2), X(SH(3, 4), -2, 2)}),
    BIN("mul [3,1]*[1,4]", B_MUL, .in = {X(SH(3, 1), -2, 2), X(SH(1, 4), -2, 2)}),
    BIN("mul [3,4]*[3,4] large", B_MUL, .in = {X(SH(3, 4), -1e3, 1e3), X(SH(3, 4), -1e3, 1e3)}),
    BIN("div [3,4]/[3,4]", B_DIV, .in = {X(SH(3, 4), -2, 2), X(SH(3, 4), 0.5, 2)}),
    BIN("div [3,4]/[4] negative", B_DIV, .in = {X(SH(3, 4), -2, 2), X(SH(4), -2, -0.5)}),
    BIN("div [2,1,3]/[4,1]", B_DIV, .in = {X(SH(2, 1, 3), -2, 2), P(SH(4, 1), 0.5, 2)}),
    BIN("div scalar/[3,4]", B_DIV, .in = {X(SCALAR, -2, 2), X(SH(3, 4), 0.5, 2)}),
    BIN("div [3,4]/scalar", B_DIV, .in = {X(SH(3, 4), -2, 2), X(SCALAR, 0.5, 2)}),
    BIN("where(a > b, a, b) [3,4]", B_WHERE_CMP, .cmp = LG_CMP_GT, .gap = true,
        .in = {X(SH(3, 4), -2, 2), X(SH(3, 4), -2, 2)}),
    BIN("where(a <= b, a, b) [2,3] param", B_WHERE_CMP, .cmp = LG_CMP_LE, .gap = true,
        .in = {P(SH(2, 3), -2, 2), X(SH(2, 3), -2, 2)}),
    BIN("where(a != b, a, b) [5]", B_WHERE_CMP, .cmp = LG_CMP_NE, .gap = true,
        .in = {X(SH(5), -2, 2), X(SH(5), -2, 2)}),
    BIN("where(i32 mask [3,4], a [3,4], b [4])", B_WHERE,
        .in = {IDX(SH(3, 4), 1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 0, 0), X(SH(3, 4), -2, 2), X(SH(4), -2, 2)}),
    BIN("where(f64 mask [4], a [3,4], b scalar)", B_WHERE,
        .in = {FIXED(SH(4), 0, 1, 1, 0), P(SH(3, 4), -2, 2), X(SCALAR, -2, 2)}),
    BIN("x * stop_gradient(y) [3,4]", B_MUL_STOP, .in = {X(SH(3, 4), -2, 2), AUX(SH(3, 4), -2, 2)}),
    BIN("x [3,4] * stop_gradient(y [4])", B_MUL_STOP, .in = {X(SH(3, 4), -2, 2), AUX(SH(4), -2, 2)}),

    /* ---- matmul */
    BIN("matmul [3,4]x[4,5]", B_MATMUL, .in = {X(SH(3, 4), -1, 1), X(SH(4, 5), -1, 1)}),
    BIN("matmul [4,3]^T x[4,5]", B_MATMUL, .trans_a = true, .in = {X(SH(4, 3), -1, 1), X(SH(4, 5), -1, 1)}),
    BIN("matmul [3,4]x[5,4]^T", B_MATMUL, .trans_b = true, .in = {X(SH(3, 4), -1, 1), P(SH(5, 4), -1, 1)}),
    BIN("matmul [4,3]^T x[5,4]^T", B_MATMUL, .trans_a = true, .trans_b = true,
        .in = {X(SH(4, 3), -1, 1), X(SH(5, 4), -1, 1)}),
    BIN("matmul [1,4]x[4,1]", B_MATMUL, .in = {X(SH(1, 4), -1, 1), X(SH(4, 1), -1, 1)}),
    BIN("matmul [2,3,4]x[4,5]", B_MATMUL, .in = {X(SH(2, 3, 4), -1, 1), P(SH(4, 5), -1, 1)}),
    BIN("matmul [2,3,4]x[2,4,5]", B_MATMUL, .in = {X(SH(2, 3, 4), -1, 1), X(SH(2, 4, 5), -1, 1)}),
    BIN("matmul [2,4,3]^T x[2,5,4]^T", B_MATMUL, .trans_a = true, .trans_b = true,
        .in = {X(SH(2, 4, 3), -1, 1), X(SH(2, 5, 4), -1, 1)}),
    BIN("matmul [2,3,4]x[5,4]^T", B_MATMUL, .trans_b = true, .in = {X(SH(2, 3, 4), -1, 1), X(SH(5, 4), -1, 1)}),

    /* ---- dropout with a fixed mask */
    BIN("dropout 0.25 [3,4] mask [3,4]", B_DROPOUT, .a = 0.25,
        .in = {X(SH(3, 4), -2, 2), FIXED(SH(3, 4), 1, 0, 1, 1, 0, 1, 1, 1, 1, 0, 0, 1)}),
    BIN("dropout 0.5 [3,4] param mask [4]", B_DROPOUT, .a = 0.5,
        .in = {P(SH(3, 4), -2, 2), FIXED(SH(4), 0, 1, 1, 0)}),

    /* ---- "like" ops: like is fed but gets no gradient */
    BIN("reshape_like [3,4] like [2,6]", B_RESHAPE_LIKE, .in = {X(SH(3, 4), -2, 2), AUX(SH(2, 6), -1, 1)}),
    BIN("broadcast_like [4] like [3,4]", B_BROADCAST_LIKE, .in = {X(SH(4), -2, 2), AUX(SH(3, 4), -1, 1)}),
    BIN("broadcast_like [3,1] like [2,3,4]", B_BROADCAST_LIKE,
        .in = {X(SH(3, 1), -2, 2), AUX(SH(2, 3, 4), -1, 1)}),
    BIN("sum_to [3,4] like [4]", B_SUM_TO, .in = {X(SH(3, 4), -2, 2), AUX(SH(4), -1, 1)}),
    BIN("sum_to [2,3,4] like [3,1]", B_SUM_TO, .in = {X(SH(2, 3, 4), -2, 2), AUX(SH(3, 1), -1, 1)}),

    /* ---- indexing; repeated indices make the gradient a scatter-add */
    BIN("gather [5,3] idx [4] repeated", B_GATHER, .in = {X(SH(5, 3), -2, 2), IDX(SH(4), 0, 2, 2, 4)}),
    BIN("gather [4,2,3] param idx [2,3] fed", B_GATHER,
        .in = {P(SH(4, 2, 3), -2, 2), IDX_FED(SH(2, 3), 1, 1, 0, 3, 1, 3)}),
    BIN("gather [6] idx [2,2]", B_GATHER, .in = {X(SH(6), -2, 2), IDX(SH(2, 2), 5, 0, 5, 2)}),
    BIN("scatter_add [4,3] idx [4] like [5,3]", B_SCATTER_ADD,
        .in = {X(SH(4, 3), -2, 2), IDX(SH(4), 0, 2, 2, 4), AUX(SH(5, 3), -1, 1)}),

    /* ---- reductions */
    RED("sum all [3,4]", R_SUM, .in = {X(SH(3, 4), -2, 2)}),
    RED("sum axis 0 [3,4]", R_SUM, AXES(0), .in = {X(SH(3, 4), -2, 2)}),
    RED("sum axes 0,2 keepdims [2,3,4]", R_SUM, AXES(0, 2), .keepdims = true, .in = {P(SH(2, 3, 4), -2, 2)}),
    RED("sum axis -1 [2,1,3]", R_SUM, AXES(-1), .in = {X(SH(2, 1, 3), -2, 2)}),
    RED("sum of a scalar", R_SUM, .in = {X(SCALAR, -2, 2)}),
    RED("mean all [3,4]", R_MEAN, .in = {X(SH(3, 4), -2, 2)}),
    RED("mean axis 1 keepdims [3,4]", R_MEAN, AXES(1), .keepdims = true, .in = {X(SH(3, 4), -2, 2)}),
    RED("mean axes 0,2 [2,3,4] param", R_MEAN, AXES(0, 2), .in = {P(SH(2, 3, 4), -2, 2)}),
    RED("mean all [4] large", R_MEAN, .in = {X(SH(4), -1e3, 1e3)}),
    RED("max all [3,4]", R_MAX, .distinct = true, .in = {X(SH(3, 4), -2, 2)}),
    RED("max axis -1 [3,4]", R_MAX, AXES(-1), .distinct = true, .in = {X(SH(3, 4), -2, 2)}),
    RED("max axes 0,2 keepdims [2,3,4]", R_MAX, AXES(0, 2), .keepdims = true, .distinct = true,
        .in = {P(SH(2, 3, 4), -2, 2)}),
    RED("max axis 1 of [3,1]", R_MAX, AXES(1), .in = {X(SH(3, 1), -2, 2)}),
    RED("sum / numel axis 1 [3,4]", R_SUM_OVER_NUMEL, AXES(1), .in = {X(SH(3, 4), -2, 2)}),
    RED("sum / numel all [2,3,4]", R_SUM_OVER_NUMEL, .in = {X(SH(2, 3, 4), -2, 2)}),

    /* ---- shape */
    SHP("reshape [3,4]->[2,6]", S_RESHAPE, .to = SH(2, 6), .in = {X(SH(3, 4), -2, 2)}),
    SHP("reshape [2,3,4]->[-1,4]", S_RESHAPE, .to = SH(-1, 4), .in = {P(SH(2, 3, 4), -2, 2)}),
    SHP("reshape [1,1]->[]", S_RESHAPE, .to = SCALAR, .in = {X(SH(1, 1), -2, 2)}),
    SHP("expand_dims [3,4] axis 0", S_EXPAND_DIMS, .axis = 0, .in = {X(SH(3, 4), -2, 2)}),
    SHP("expand_dims [3,4] axis -1", S_EXPAND_DIMS, .axis = -1, .in = {X(SH(3, 4), -2, 2)}),
    SHP("squeeze [3,1,4] axis 1", S_SQUEEZE, .axis = 1, .in = {X(SH(3, 1, 4), -2, 2)}),
    SHP("squeeze [1] axis 0", S_SQUEEZE, .axis = 0, .in = {P(SH(1), -2, 2)}),
    SHP("transpose [3,4]", S_TRANSPOSE, .in = {X(SH(3, 4), -2, 2)}),
    SHP("transpose [2,3,4] perm 1,0,2", S_TRANSPOSE, PERM(1, 0, 2), .in = {X(SH(2, 3, 4), -2, 2)}),
    SHP("transpose [2,3,4] perm 2,0,1", S_TRANSPOSE, PERM(2, 0, 1), .in = {P(SH(2, 3, 4), -2, 2)}),
    SHP("slice [3,5] axis 1 [1,4)", S_SLICE, .axis = 1, .a = 1, .b = 3, .in = {X(SH(3, 5), -2, 2)}),
    SHP("slice [4,3] axis 0 [2,end)", S_SLICE, .axis = 0, .a = 2, .b = -1, .in = {X(SH(4, 3), -2, 2)}),
    SHP("slice [2,3,4] axis -1 [0,1)", S_SLICE, .axis = -1, .a = 0, .b = 1, .in = {P(SH(2, 3, 4), -2, 2)}),
    SHP("concat [2,3],[1,3],[3,3] axis 0", S_CONCAT, .axis = 0,
        .in = {X(SH(2, 3), -2, 2), X(SH(1, 3), -2, 2), X(SH(3, 3), -2, 2)}),
    SHP("concat [2,1],[2,3],[2,2] axis -1", S_CONCAT, .axis = -1,
        .in = {X(SH(2, 1), -2, 2), P(SH(2, 3), -2, 2), X(SH(2, 2), -2, 2)}),
    SHP("concat [2,2,3] x3 axis 1", S_CONCAT, .axis = 1,
        .in = {X(SH(2, 2, 3), -2, 2), X(SH(2, 1, 3), -2, 2), X(SH(2, 2, 3), -2, 2)}),
    SHP("split [3,5] axis 1 into 2,3", S_SPLIT, .axis = 1, .sizes = {2, 3}, .n_split = 2,
        .in = {X(SH(3, 5), -2, 2)}),
    SHP("split [4,6] axis -1 into 3 equal", S_SPLIT, .axis = -1, .n_split = 3, .in = {P(SH(4, 6), -2, 2)}),
    /* the middle piece reaches no loss: its gradient is missing, not zero */
    SHP("split [5,2] axis 0 into 1,3,1, middle unused", S_SPLIT, .axis = 0, .sizes = {1, 3, 1}, .n_split = 3,
        .use = 0x5, .in = {X(SH(5, 2), -2, 2)}),
    SHP("broadcast_to [4]->[3,4]", S_BROADCAST_TO, .to = SH(3, 4), .in = {X(SH(4), -2, 2)}),
    SHP("broadcast_to [3,1]->[2,3,4]", S_BROADCAST_TO, .to = SH(2, 3, 4), .in = {P(SH(3, 1), -2, 2)}),
    SHP("broadcast_to scalar->[2,3]", S_BROADCAST_TO, .to = SH(2, 3), .in = {X(SCALAR, -2, 2)}),

    /* ---- softmax family */
    NN("softmax axis -1 [3,4]", N_SOFTMAX, .axis = -1, .in = {X(SH(3, 4), -2, 2)}),
    NN("softmax axis 0 [3,4]", N_SOFTMAX, .axis = 0, .in = {X(SH(3, 4), -2, 2)}),
    NN("softmax axis 1 [2,3,4] param", N_SOFTMAX, .axis = 1, .in = {P(SH(2, 3, 4), -2, 2)}),
    NN("softmax axis -1 [2,3] large", N_SOFTMAX, .axis = -1, .in = {X(SH(2, 3), 1e3, 1.003e3)}),
    NN("log_softmax axis -1 [3,4]", N_LOG_SOFTMAX, .axis = -1, .in = {X(SH(3, 4), -2, 2)}),
    NN("log_softmax axis 0 [3,4]", N_LOG_SOFTMAX, .axis = 0, .in = {X(SH(3, 4), -2, 2)}),
    NN("log_softmax axis -1 [3,4] large", N_LOG_SOFTMAX, .axis = -1, .in = {X(SH(3, 4), -1e3, 1e3)}),
    NN("log_softmax axis 0 [4,2] large", N_LOG_SOFTMAX, .axis = 0, .in = {X(SH(4, 2), 9e2, 1.1e3)}),
    NN("sigmoid_xent [3,4]", N_SIGMOID_XENT, .in = {X(SH(3, 4), -4, 4), AUX(SH(3, 4), 0, 1)}),
    NN("sigmoid_xent [3,4] large", N_SIGMOID_XENT, .in = {X(SH(3, 4), -1e3, 1e3), AUX(SH(3, 4), 0, 1)}),
    NN("softmax_xent [3,4]", N_SOFTMAX_XENT, .in = {X(SH(3, 4), -2, 2), FIXED(SH(3, 4), DIST_3x4)}),
    NN("softmax_xent [2,3,2] param one-hot", N_SOFTMAX_XENT,
        .in = {P(SH(2, 3, 2), -2, 2), FIXED(SH(2, 3, 2), 1, 0, 0, 1, 0, 1, 1, 0, 1, 0, 0, 1)}),
    NN("softmax_xent [3,4] large", N_SOFTMAX_XENT, .in = {X(SH(3, 4), -1e3, 1e3), FIXED(SH(3, 4), DIST_3x4)}),
    NN("sparse_softmax_xent [3,4]", N_SPARSE_SOFTMAX_XENT, .in = {X(SH(3, 4), -2, 2), IDX(SH(3), 0, 3, 1)}),
    NN("sparse_softmax_xent [2,3,4] fed labels", N_SPARSE_SOFTMAX_XENT,
        .in = {X(SH(2, 3, 4), -2, 2), IDX_FED(SH(2, 3), 3, 0, 0, 2, 1, 3)}),
    NN("one_hot [3] depth 4 * x [3,4]", N_ONE_HOT, .a = 4, .in = {IDX(SH(3), 2, 0, 3), X(SH(3, 4), -2, 2)}),
    NN("one_hot [2,2] fed depth 3 * x [2,2,3]", N_ONE_HOT, .a = 3,
        .in = {IDX_FED(SH(2, 2), 1, 1, 0, 2), P(SH(2, 2, 3), -2, 2)}),

    /* ---- Keras losses (y_true, y_pred) */
    NN("mse [3,4]", N_MSE, .in = {X(SH(3, 4), -2, 2), X(SH(3, 4), -2, 2)}),
    NN("mse [4,1] param pred", N_MSE, .in = {AUX(SH(4, 1), -2, 2), P(SH(4, 1), -2, 2)}),
    NN("mse [3,4] large", N_MSE, .in = {X(SH(3, 4), -1e3, 1e3), X(SH(3, 4), -1e3, 1e3)}),
    NN("mae [3,4]", N_MAE, .gap = true, .in = {X(SH(3, 4), -2, 2), X(SH(3, 4), -2, 2)}),
    NN("mae [2,3] param pred", N_MAE, .gap = true, .in = {AUX(SH(2, 3), -2, 2), P(SH(2, 3), -2, 2)}),
    NN("binary_crossentropy logits [3,4]", N_BCE, .from_logits = true,
        .in = {AUX(SH(3, 4), 0, 1), X(SH(3, 4), -4, 4)}),
    NN("binary_crossentropy logits [3,4] large", N_BCE, .from_logits = true,
        .in = {AUX(SH(3, 4), 0, 1), X(SH(3, 4), -1e3, 1e3)}),
    NN("binary_crossentropy probs [3,4]", N_BCE, .in = {AUX(SH(3, 4), 0, 1), X(SH(3, 4), 0.05, 0.95)}),
    NN("binary_crossentropy probs [2,3] param", N_BCE, .in = {AUX(SH(2, 3), 0, 1), P(SH(2, 3), 0.05, 0.95)}),
    NN("categorical_crossentropy logits [3,4]", N_CCE, .from_logits = true,
        .in = {FIXED(SH(3, 4), DIST_3x4), X(SH(3, 4), -2, 2)}),
    NN("categorical_crossentropy logits [3,4] large", N_CCE, .from_logits = true,
        .in = {FIXED(SH(3, 4), DIST_3x4), X(SH(3, 4), -1e3, 1e3)}),
    NN("categorical_crossentropy probs [3,4]", N_CCE, .in = {FIXED(SH(3, 4), DIST_3x4), X(SH(3, 4), 0.1, 0.9)}),
    NN("sparse_categorical_crossentropy logits [3,4]", N_SCCE, .from_logits = true,
        .in = {IDX(SH(3), 2, 0, 3), X(SH(3, 4), -2, 2)}),
    NN("sparse_categorical_crossentropy logits [2,3,4] fed", N_SCCE, .from_logits = true,
        .in = {IDX_FED(SH(2, 3), 1, 3, 0, 0, 2, 1), P(SH(2, 3, 4), -2, 2)}),
    NN("sparse_categorical_crossentropy probs [3,4]", N_SCCE,
        .in = {IDX(SH(3), 1, 1, 3), X(SH(3, 4), 0.1, 0.9)}),
    /* ---- loops (BPTT) */
    LOOP("loop rnn T=1", L_RNN, .in = {X(SH(2, 1, 3), -1, 1), X(SH(2, 4), -1, 1), P(SH(3, 4), -0.6, 0.6), P(SH(4, 4), -0.6, 0.6)}),
    LOOP("loop rnn T=7", L_RNN, .in = {X(SH(2, 7, 3), -1, 1), X(SH(2, 4), -1, 1), P(SH(3, 4), -0.6, 0.6), P(SH(4, 4), -0.6, 0.6)}),
    LOOP("loop rnn reverse T=5", L_RNN_REVERSE,
         .in = {X(SH(3, 5, 2), -1, 1), P(SH(3, 4), -1, 1), P(SH(2, 4), -0.6, 0.6), P(SH(4, 4), -0.6, 0.6)}),
    LOOP("loop two states T=4", L_TWO_STATES,
         .in = {X(SH(2, 4, 3), -1, 1), X(SH(2, 3), -1, 1), P(SH(3, 3), -0.6, 0.6), P(SH(3, 3), -0.6, 0.6)}),
};

enum { N_ROWS = (int)(sizeof ROWS / sizeof ROWS[0]) };

/* ---- building a row ---------------------------------------------------------- */

/* Input j's values: given, or uniform in [lo, hi) (a shuffled grid when the
 * row wants distinct values), pushed off the row's kinks. */
static void row_values(const gc_row *r, int row, int j, double *v, int64_t n)
{
    const gc_input *in = &r->in[j];
    uint64_t key = (uint64_t)row * 16u + (uint64_t)j;
    if (in->vals) {
        memcpy(v, in->vals, (size_t)n * sizeof *v);
        return;
    }
    if (r->distinct) {
        for (int64_t i = 0; i < n; i++)
            v[i] = in->lo + ((double)i + 0.5) * (in->hi - in->lo) / (double)n;
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t k = (int64_t)(lg_philox_uniform(GC_SEED, key, (uint64_t)i) * (double)(i + 1));
            double t = v[i];
            v[i] = v[k];
            v[k] = t;
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        double x = in->lo + (in->hi - in->lo) * lg_philox_uniform(GC_SEED, key, (uint64_t)i);
        for (int k = 0; k < r->n_kinks; k++) {
            double c = r->kinks[k];
            if (fabs(x - c) < GC_KINK_GAP)
                x = c + (x >= c ? GC_KINK_GAP : -GC_KINK_GAP);
        }
        v[i] = x;
    }
}

int gc_row_count(void)
{
    return N_ROWS;
}

const char *gc_row_name(int row)
{
    return ROWS[row].name;
}

void gc_row_build(int row, gc_built *out)
{
    const gc_row *r = &ROWS[row];
    *out = (gc_built){.graph = lg_graph_new()};
    lg_graph *g = out->graph;
    lg_value in[GC_MAX_IN];
    double vals[GC_MAX_IN][GC_MAX_ELEMS];
    int n_in = row_inputs(r);

    for (int j = 0; j < n_in; j++) {
        int64_t n = lg_shape_numel(r->in[j].shape);
        ck_assert_msg(n >= 1 && n <= GC_MAX_ELEMS, "%s: input %d has %lld elements", r->name, j, (long long)n);
        row_values(r, row, j, vals[j], n);
    }
    if (r->gap) {
        int64_t n = lg_shape_numel(r->in[0].shape);
        ck_assert_msg(n == lg_shape_numel(r->in[1].shape), "%s: gap rows need equal shapes", r->name);
        for (int64_t i = 0; i < n; i++) {
            double d = vals[1][i] - vals[0][i];
            if (fabs(d) < GC_PAIR_GAP)
                vals[1][i] = vals[0][i] + (d >= 0 ? GC_PAIR_GAP : -GC_PAIR_GAP);
        }
    }

    for (int j = 0; j < n_in; j++) {
        const gc_input *spec = &r->in[j];
        char name[16];
        snprintf(name, sizeof name, "in%d", j);
        lg_tensor *t = NULL;
        ck_assert_int_eq(lg_tensor_new(spec->dtype, spec->shape, &t), LG_OK);
        for (int64_t i = 0; i < lg_tensor_numel(t); i++)
            lg_tensor_set(t, i, vals[j][i]);
        switch (spec->kind) {
        case K_INPUT:
        case K_AUX:
            in[j] = lg_input(g, name, spec->dtype, spec->shape);
            out->feeds[out->n_feeds++] = (lg_feed){in[j], t};
            if (spec->kind == K_INPUT)
                out->wrt[out->n_wrt++] = in[j];
            break;
        case K_PARAM:
            in[j] = lg_param(g, name, spec->dtype, spec->shape);
            if (lg_param_tensor(in[j]))
                lg_tensor_copy(lg_param_tensor(in[j]), t);
            out->wrt[out->n_wrt++] = in[j];
            lg_tensor_free(t);
            break;
        case K_FIXED:
        case K_NONE:
            in[j] = lg_constant(g, name, t);
            lg_tensor_free(t);
            break;
        }
        if (spec->kind == K_INPUT || spec->kind == K_PARAM)
            out->wrt_elems += lg_shape_numel(spec->shape);
    }

    lg_value y = r->build(r, in);
    out->loss = lg_value_rank(y) > 0 ? weigh(y) : y;
    out->tol = r->tol.eps > 0 ? r->tol : lg_gradcheck_opts_default();
}

void gc_built_free(gc_built *b)
{
    for (int j = 0; j < b->n_feeds; j++)
        lg_tensor_free((lg_tensor *)b->feeds[j].tensor);
    lg_graph_free(b->graph);
    *b = (gc_built){0};
}

void gc_mark_ops(const lg_graph *g, bool *seen)
{
    for (int i = 0; i < lg_graph_node_count(g); i++) {
        const char *op = lg_graph_node_op(g, i);
        for (int k = 0; op && k < lg_op_count(); k++)
            if (strcmp(op, lg_op_name(k)) == 0)
                seen[k] = true;
    }
}
