/*
 * cells.c — SimpleRNN, LSTM and GRU cells (include/graph/cells.h) and the
 * initializers they name, Keras's orthogonal among them.
 *
 * A cell is its options and three parameter values in the outer graph. A
 * step slices the parameters into the blocks it needs in the outer graph
 * (once per step built, not per timestep), captures them as invariants of
 * the loop and writes Keras's equations with ops.h builders, so autodiff
 * through the loop needs nothing cell-specific.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/qr.h"
#include "graph/cells.h"
#include "graph/init.h"
#include "graph/ops.h"
#include "graph/internal.h"

struct lg_cell {
    lg_graph *g;
    char *name; /* the scope the parameters were made under */
    int input_dim;
    lg_cell_opts opts;
    lg_value kernel, recurrent_kernel, bias;
};

static const struct kind_def {
    const char *name; /* default scope */
    int gates;        /* blocks of u along the kernels' last axis */
    int states;
} kind_defs[] = {
    [LG_CELL_SIMPLE_RNN] = {"simple_rnn", 1, 1},
    [LG_CELL_LSTM] = {"lstm", 4, 2},
    [LG_CELL_GRU] = {"gru", 3, 1},
};
static_assert(LG_ARRAY_LEN(kind_defs) == LG_CELL_KIND_COUNT, "a kind_defs row per lg_cell_kind");

static lg_value linear(lg_value x) { return x; }

static lg_value (*const act_fns[])(lg_value) = {
    [LG_ACT_TANH] = lg_tanh,
    [LG_ACT_SIGMOID] = lg_sigmoid,
    [LG_ACT_HARD_SIGMOID] = lg_hard_sigmoid,
    [LG_ACT_RELU] = lg_relu,
    [LG_ACT_LINEAR] = linear,
};
static_assert(LG_ARRAY_LEN(act_fns) == LG_ACT_COUNT, "an act_fns entry per lg_activation");

lg_value lg_activate(lg_value x, lg_activation a)
{
    if ((unsigned)a >= LG_ACT_COUNT) {
        if (lg_value_ok(x)) lg_graph_fail(x.graph, "activation %d is not an lg_activation", (int)a);
        return lg_value_invalid();
    }
    return act_fns[a](x);
}

static const char *const init_names[] = {
    [LG_INIT_GLOROT_UNIFORM] = "glorot_uniform",
    [LG_INIT_ORTHOGONAL] = "orthogonal",
    [LG_INIT_ZEROS] = "zeros",
    [LG_INIT_ONES] = "ones",
};
static_assert(LG_ARRAY_LEN(init_names) == LG_INIT_COUNT, "an init_names entry per lg_initializer");

lg_cell_opts lg_cell_opts_default(lg_cell_kind kind, int units)
{
    return (lg_cell_opts){
        .kind = kind,
        .units = units,
        .activation = LG_ACT_TANH,
        .recurrent_activation = LG_ACT_SIGMOID,
        .use_bias = true,
        .kernel_initializer = LG_INIT_GLOROT_UNIFORM,
        .recurrent_initializer = LG_INIT_ORTHOGONAL,
        .bias_initializer = LG_INIT_ZEROS,
        .unit_forget_bias = true,
        .reset_after = true,
        .dtype = LG_F32,
        .seed = 0,
    };
}

/* ---- initializers -------------------------------------------------------- */

/* From this many columns on, the Q comes from Householder QR (LAPACK on
 * one thread, qr.h: an LSTM(1024)'s recurrent kernel in 0.6 s, an
 * LSTM(4096)'s in 30 s); below, from Gram-Schmidt, whose 8 m n^2 flops in
 * dependent sums grow faster (LSTM(1024): 4.8 s; LSTM(4096): minutes).
 * Both give the Q of A's QR whose R has a positive diagonal, to rounding;
 * the switch keeps the bits of every model below it. Gram-Schmidt's bits
 * are the same on every OpenBLAS core, LAPACK's only on the same core. */
enum { ORTHO_QR_COLS = 512 };

/* The m x n column-major q (column j at q + j m) orthonormalised in place
 * by modified Gram-Schmidt, run twice per column ("twice is enough"); its
 * R has a positive diagonal by construction. False for a rank-deficient
 * draw (probability zero). */
static bool gram_schmidt(double *q, int64_t m, int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        double *qj = q + j * m;
        for (int pass = 0; pass < 2; pass++)
            for (int64_t k = 0; k < j; k++) {
                const double *qk = q + k * m;
                double dot = 0;
                for (int64_t i = 0; i < m; i++) dot += qk[i] * qj[i];
                for (int64_t i = 0; i < m; i++) qj[i] -= dot * qk[i];
            }
        double norm = 0;
        for (int64_t i = 0; i < m; i++) norm += qj[i] * qj[i];
        norm = sqrt(norm);
        if (!(norm > 0)) return false;
        for (int64_t i = 0; i < m; i++) qj[i] /= norm;
    }
    return true;
}

/* Keras Orthogonal (gain 1): a normal [max(r, c), min(r, c)] matrix A, its
 * thin QR with R's diagonal made positive (Keras multiplies Q by sign(diag
 * R)), Q transposed when r < c. */
static lg_status init_orthogonal(lg_tensor *t, uint64_t seed, uint64_t key)
{
    lg_shape s = lg_tensor_shape(t);
    if (s.rank < 2)
        return lg_fail(LG_ERR_SHAPE, "orthogonal initializer: needs rank >= 2, got %s", lg_shape_cstr(s));
    int64_t rows = lg_shape_numel(s) / s.dims[s.rank - 1], cols = s.dims[s.rank - 1];
    int64_t m = rows > cols ? rows : cols, n = rows > cols ? cols : rows;
    lg_tensor *a = NULL;
    lg_status st = lg_tensor_new(LG_F64, (lg_shape){2, {m, n}}, &a);
    if (st) return st;
    st = lg_init_normal(a, 0, 1, seed, key);
    /* A's columns, each contiguous (qc[j m + i] = A[i, j]): both ways walk
     * columns, which in A's row-major order missed the cache at every
     * element */
    double *qc = st ? NULL : malloc((size_t)(m * n) * sizeof *qc);
    if (!st && !qc) st = lg_fail(LG_ERR_OUT_OF_MEMORY, "orthogonal initializer: out of memory for %s", lg_shape_cstr(s));
    const double *ar = lg_tensor_data(a);
    for (int64_t i = 0; !st && i < m; i++)
        for (int64_t j = 0; j < n; j++) qc[j * m + i] = ar[i * n + j];
    bool full_rank = true;
    if (!st && n >= ORTHO_QR_COLS) st = lg_cpu_qr_q(qc, m, n, &full_rank);
    else if (!st) full_rank = gram_schmidt(qc, m, n);
    if (!st && !full_rank) /* a normal draw in the span of the others: probability zero */
        st = lg_fail(LG_ERR_RUNTIME, "orthogonal initializer: a rank-deficient draw for %s", lg_shape_cstr(s));
    for (int64_t i = 0; !st && i < rows; i++) /* t[i, j] = rows >= cols ? Q[i, j] : Q[j, i] */
        for (int64_t j = 0; j < cols; j++) lg_tensor_set(t, i * cols + j, rows >= cols ? qc[j * m + i] : qc[i * m + j]);
    free(qc);
    lg_tensor_free(a);
    return st;
}

lg_status lg_init_apply(lg_tensor *t, lg_initializer init, uint64_t seed, uint64_t key)
{
    if (!t) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_init_apply: tensor is NULL");
    if ((unsigned)init >= LG_INIT_COUNT)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_init_apply: initializer %d is not an lg_initializer", (int)init);
    lg_dtype dt = lg_tensor_dtype(t);
    if (dt != LG_F32 && dt != LG_F64)
        return lg_fail(LG_ERR_DTYPE, "lg_init_apply: %s on an %s tensor, needs f32 or f64", init_names[init],
                       lg_dtype_name(dt));
    switch (init) {
    case LG_INIT_GLOROT_UNIFORM: return lg_init_glorot_uniform(t, seed, key);
    case LG_INIT_ORTHOGONAL: return init_orthogonal(t, seed, key);
    case LG_INIT_ZEROS: return lg_tensor_fill(t, 0);
    case LG_INIT_ONES: return lg_tensor_fill(t, 1);
    case LG_INIT_COUNT: break;
    }
    return LG_ERR_INVALID_ARGUMENT; /* unreachable: checked above */
}

/* ---- the cell ------------------------------------------------------------ */

/* FNV-1a of the parameter's full name: its initializer stream's key, so cells
 * sharing a seed still start from different weights, reproducibly. */
static uint64_t name_key(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* A parameter of shape s under the cell's scope, filled by init; invalid
 * (error recorded on g) on failure. */
static lg_value make_param(lg_graph *g, const char *cell, const char *name, lg_dtype dt, lg_shape s,
                           lg_initializer init, uint64_t seed)
{
    lg_value p = lg_param(g, name, dt, s);
    if (!lg_value_ok(p)) return p;
    lg_status st = lg_init_apply(lg_param_tensor(p), init, seed, name_key(lg_value_name(p)));
    if (st)
        return lg_graph_fail(g, "cell '%s': %s initializer on %s %s: %s", cell, init_names[init], lg_value_name(p),
                             lg_shape_cstr(s), lg_last_error());
    return p;
}

static const char *check_opts(const lg_cell_opts *o, int input_dim, char *buf, size_t size)
{
    if ((unsigned)o->kind >= LG_CELL_KIND_COUNT) snprintf(buf, size, "kind %d is not an lg_cell_kind", (int)o->kind);
    else if (o->units < 1) snprintf(buf, size, "units %d, needs >= 1", o->units);
    else if (input_dim < 1) snprintf(buf, size, "input_dim %d, needs >= 1", input_dim);
    else if ((unsigned)o->activation >= LG_ACT_COUNT)
        snprintf(buf, size, "activation %d is not an lg_activation", (int)o->activation);
    else if ((unsigned)o->recurrent_activation >= LG_ACT_COUNT)
        snprintf(buf, size, "recurrent_activation %d is not an lg_activation", (int)o->recurrent_activation);
    else if ((unsigned)o->kernel_initializer >= LG_INIT_COUNT)
        snprintf(buf, size, "kernel_initializer %d is not an lg_initializer", (int)o->kernel_initializer);
    else if ((unsigned)o->recurrent_initializer >= LG_INIT_COUNT)
        snprintf(buf, size, "recurrent_initializer %d is not an lg_initializer", (int)o->recurrent_initializer);
    else if (o->use_bias && (unsigned)o->bias_initializer >= LG_INIT_COUNT)
        snprintf(buf, size, "bias_initializer %d is not an lg_initializer", (int)o->bias_initializer);
    else if (o->dtype != LG_F32 && o->dtype != LG_F64)
        snprintf(buf, size, "dtype %s, needs f32 or f64", lg_dtype_name(o->dtype));
    else return NULL;
    return buf;
}

lg_cell *lg_cell_new(lg_graph *g, const char *name, int input_dim, lg_cell_opts opts)
{
    if (!g) {
        lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_cell_new: graph is NULL");
        return NULL;
    }
    if (lg_graph_error(g)) return NULL;
    char why[128];
    bool kind_ok = (unsigned)opts.kind < LG_CELL_KIND_COUNT;
    if (!name || !name[0]) name = kind_ok ? kind_defs[opts.kind].name : "cell";
    if (strchr(name, '/')) {
        lg_graph_fail(g, "cell '%s': the name is a scope and must contain no '/'", name);
        return NULL;
    }
    if (check_opts(&opts, input_dim, why, sizeof why)) {
        lg_graph_fail(g, "cell '%s': %s", name, why);
        return NULL;
    }
    lg_cell *c = calloc(1, sizeof *c);
    if (c) c->name = malloc(strlen(name) + 1);
    if (!c || !c->name) {
        free(c);
        lg_graph_fail(g, "cell '%s': out of memory", name);
        return NULL;
    }
    strcpy(c->name, name);
    c->g = g;
    c->input_dim = input_dim;
    c->opts = opts;

    int64_t u = opts.units, gu = (int64_t)kind_defs[opts.kind].gates * u;
    lg_scope_push(g, name);
    c->kernel = make_param(g, name, "kernel", opts.dtype, (lg_shape){2, {input_dim, gu}}, opts.kernel_initializer,
                           opts.seed);
    c->recurrent_kernel = make_param(g, name, "recurrent_kernel", opts.dtype, (lg_shape){2, {u, gu}},
                                     opts.recurrent_initializer, opts.seed);
    c->bias = lg_value_invalid();
    if (opts.use_bias) {
        bool two_rows = opts.kind == LG_CELL_GRU && opts.reset_after;
        lg_shape bs = two_rows ? (lg_shape){2, {2, gu}} : (lg_shape){1, {gu}};
        c->bias = make_param(g, name, "bias", opts.dtype, bs, opts.bias_initializer, opts.seed);
        if (lg_value_ok(c->bias) && opts.kind == LG_CELL_LSTM && opts.unit_forget_bias) {
            lg_tensor *b = lg_param_tensor(c->bias);
            for (int64_t i = u; i < 2 * u; i++) lg_tensor_set(b, i, 1.0); /* Keras: [zeros, ones, zeros, zeros] */
        }
    }
    lg_scope_pop(g);
    if (lg_graph_error(g)) {
        lg_cell_free(c);
        return NULL;
    }
    return c;
}

void lg_cell_free(lg_cell *c)
{
    if (!c) return;
    free(c->name);
    free(c);
}

int lg_cell_state_count(const lg_cell *c) { return c ? kind_defs[c->opts.kind].states : 0; }
int lg_cell_units(const lg_cell *c) { return c ? c->opts.units : 0; }
const char *lg_cell_name(const lg_cell *c) { return c ? c->name : NULL; }
lg_cell_opts lg_cell_get_opts(const lg_cell *c) { return c ? c->opts : (lg_cell_opts){0}; }
lg_value lg_cell_kernel(const lg_cell *c) { return c ? c->kernel : lg_value_invalid(); }
lg_value lg_cell_recurrent_kernel(const lg_cell *c) { return c ? c->recurrent_kernel : lg_value_invalid(); }
lg_value lg_cell_bias(const lg_cell *c) { return c ? c->bias : lg_value_invalid(); }

/* ---- the step ------------------------------------------------------------ */

/* A body value of [B, want_last] in the cell's dtype (B may be -1). NULL if
 * it fits, else why not, in buf. An invalid value fits: it propagates. */
static const char *check_body_value(const lg_cell *c, lg_graph *body, lg_value v, int64_t want_last, char *buf,
                                    size_t size)
{
    if (!lg_value_ok(v)) return NULL;
    if (v.graph != body) {
        snprintf(buf, size, "is not a value of the loop's body (make it with lg_loop_seq/state/invariant)");
        return buf;
    }
    lg_shape s = lg_value_shape(v);
    int64_t last = s.rank == 2 ? s.dims[1] : 0;
    if (s.rank != 2 || (last != want_last && last != -1) || lg_value_dtype(v) != c->opts.dtype) {
        snprintf(buf, size, "is %s %s, the cell needs %s [B, %lld]", lg_dtype_name(lg_value_dtype(v)),
                 lg_shape_cstr(s), lg_dtype_name(c->opts.dtype), (long long)want_last);
        return buf;
    }
    return NULL;
}

/* x @ w (+ b), b broadcast over the batch; b may be invalid (no bias). */
static lg_value affine(lg_value x, lg_value w, lg_value b, bool has_b)
{
    lg_value y = lg_matmul(x, w, false, false);
    return has_b ? lg_add(y, b) : y;
}

void lg_cell_step(lg_cell *c, lg_loop *l, lg_value x_t, const lg_value *states, lg_value x_mask, lg_value h_mask,
                  lg_value *next, lg_value *output)
{
    int n_states = c ? kind_defs[c->opts.kind].states : 0;
    for (int k = 0; next && k < n_states; k++) next[k] = lg_value_invalid();
    if (output) *output = lg_value_invalid();
    lg_graph *body = lg_loop_body(l);
    if (!c || !l || !states || !next) {
        lg_graph *g = body ? body : c ? c->g : NULL;
        lg_graph_fail(g, "lg_cell_step: %s is NULL", !c ? "the cell" : !l ? "the loop" : !states ? "states" : "next");
        return;
    }
    if (lg_graph_error(body) || lg_graph_error(c->g)) return;

    const lg_cell_opts *o = &c->opts;
    int64_t u = o->units;
    char why[256];
    const char *bad = check_body_value(c, body, x_t, c->input_dim, why, sizeof why);
    const char *what = "x_t";
    for (int k = 0; !bad && k < n_states; k++) {
        bad = check_body_value(c, body, states[k], u, why, sizeof why);
        what = k == 0 ? "state h" : "state c";
    }
    if (!bad && lg_value_ok(x_mask) && x_mask.graph != body) bad = "is not a value of the loop's body", what = "x_mask";
    if (!bad && lg_value_ok(h_mask) && h_mask.graph != body) bad = "is not a value of the loop's body", what = "h_mask";
    if (bad) {
        lg_graph_fail(body, "cell '%s': %s %s", c->name, what, bad);
        return;
    }

    lg_value x = lg_value_ok(x_mask) ? lg_mul(x_t, x_mask) : x_t;
    lg_value h = lg_value_ok(h_mask) ? lg_mul(states[0], h_mask) : states[0];
    lg_value (*act)(lg_value) = act_fns[o->activation];
    lg_value (*rec_act)(lg_value) = act_fns[o->recurrent_activation];
    lg_value W = lg_loop_invariant(l, c->kernel);
    bool has_b = o->use_bias;

    switch (o->kind) {
    case LG_CELL_SIMPLE_RNN: {
        lg_value R = lg_loop_invariant(l, c->recurrent_kernel);
        lg_value b = has_b ? lg_loop_invariant(l, c->bias) : lg_value_invalid();
        next[0] = act(lg_add(affine(x, W, b, has_b), lg_matmul(h, R, false, false)));
        break;
    }
    case LG_CELL_LSTM: {
        lg_value R = lg_loop_invariant(l, c->recurrent_kernel);
        lg_value b = has_b ? lg_loop_invariant(l, c->bias) : lg_value_invalid();
        lg_value z = lg_add(affine(x, W, b, has_b), lg_matmul(h, R, false, false)); /* [B, 4u] */
        lg_value zs[4];                                                             /* i, f, c, o */
        lg_split(z, -1, NULL, 4, zs);
        lg_value i = rec_act(zs[0]), f = rec_act(zs[1]), og = rec_act(zs[3]);
        lg_value cn = lg_add(lg_mul(f, states[1]), lg_mul(i, act(zs[2])));
        next[0] = lg_mul(og, act(cn));
        next[1] = cn;
        break;
    }
    case LG_CELL_GRU: {
        lg_value xs[3], rs[3]; /* z, r, h blocks of the input and recurrent projections */
        if (o->reset_after) {
            /* bias row 0 joins the input projection, row 1 the recurrent one
             * (cuDNN's b_W and b_R); r multiplies h R_h + b'_h */
            lg_value b_in = lg_value_invalid(), b_rec = lg_value_invalid();
            if (has_b) {
                b_in = lg_loop_invariant(l, lg_slice(c->bias, 0, 0, 1));  /* [1, 3u] */
                b_rec = lg_loop_invariant(l, lg_slice(c->bias, 0, 1, 1)); /* [1, 3u] */
            }
            lg_value R = lg_loop_invariant(l, c->recurrent_kernel);
            lg_split(affine(x, W, b_in, has_b), -1, NULL, 3, xs);
            lg_split(affine(h, R, b_rec, has_b), -1, NULL, 3, rs);
            lg_value zg = rec_act(lg_add(xs[0], rs[0])), r = rec_act(lg_add(xs[1], rs[1]));
            lg_value hh = act(lg_add(xs[2], lg_mul(r, rs[2])));
            /* Keras's z h + (1 - z) hh with the unmasked h, as hh + z (h - hh) */
            next[0] = lg_add(hh, lg_mul(zg, lg_sub(states[0], hh)));
        } else {
            /* r multiplies h before R_h, so R splits into [z r] and h blocks */
            lg_value b = has_b ? lg_loop_invariant(l, c->bias) : lg_value_invalid();
            lg_value R_zr = lg_loop_invariant(l, lg_slice(c->recurrent_kernel, 1, 0, 2 * u)); /* [u, 2u] */
            lg_value R_h = lg_loop_invariant(l, lg_slice(c->recurrent_kernel, 1, 2 * u, u));  /* [u, u] */
            lg_split(affine(x, W, b, has_b), -1, NULL, 3, xs);
            lg_split(lg_matmul(h, R_zr, false, false), -1, NULL, 2, rs);
            lg_value zg = rec_act(lg_add(xs[0], rs[0])), r = rec_act(lg_add(xs[1], rs[1]));
            lg_value hh = act(lg_add(xs[2], lg_matmul(lg_mul(r, h), R_h, false, false)));
            next[0] = lg_add(hh, lg_mul(zg, lg_sub(states[0], hh)));
        }
        break;
    }
    case LG_CELL_KIND_COUNT: LG_ASSERT(!"a cell of no kind"); break;
    }
    if (output) *output = next[0];
}
