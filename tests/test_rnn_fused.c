/*
 * test_rnn_fused.c — the fused recurrent op pair (src/ops/rnn.h, CPU kernels
 * in src/backends/cpu/cpu_rnn.c) against its plain reference: the generic
 * loop the cell API builds (src/nn/cells.c) with the same weights. Every
 * cell variant, with and without bias, forward and reverse, with and without
 * per-example lengths: equal values and equal gradients for x, the initial
 * states and every weight (f64, 1e-11 relative), f32 close; and central
 * finite differences on the fused op itself (gradcheck rows).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "graph/loopgrad.h"
#include "graph/gradcheck.h"
#include "graph/passes/fuse_rnn_match.h"
#include "backends/cpu/cpu.h"
#include "backends/cpu/cpu_pool.h"
#include "backends/cpu/cpu_rnn_kernels.h"
#include "backends/cpu/gemm.h"
#include "backends/cpu/cpu_rnn_select.h"
#include "ops/rnn.h"
#include "test_util.h"

typedef struct variant {
    const char *name;
    lg_rnn_cell fused;
    lg_cell_kind kind;
    lg_activation act;
    bool reset_after;
} variant;

static const variant variants[] = {
    {"simple_tanh", LG_RNN_SIMPLE_TANH, LG_CELL_SIMPLE_RNN, LG_ACT_TANH, false},
    {"simple_relu", LG_RNN_SIMPLE_RELU, LG_CELL_SIMPLE_RNN, LG_ACT_RELU, false},
    {"lstm", LG_RNN_LSTM, LG_CELL_LSTM, LG_ACT_TANH, false},
    {"gru_reset_after", LG_RNN_GRU, LG_CELL_GRU, LG_ACT_TANH, true},
    {"gru_reset_before", LG_RNN_GRU_RESET_BEFORE, LG_CELL_GRU, LG_ACT_TANH, false},
};
enum { N_VARIANTS = sizeof variants / sizeof *variants };
enum { T = 5, B = 3, I = 4, H = 3 };
static const int32_t lengths[B] = {5, 2, 4};

/* The model twice in one graph: the cell API's loop and the fused op, on the
 * same inputs and parameters, each reduced to a loss that weighs every output
 * (states and per-step outputs) with fixed random weights. */
typedef struct model {
    lg_graph *g;
    lg_value x, h0, c0, len, mask, xm, hm; /* xm, hm: dropout masks [B, I] and [B, H] */
    lg_value wrt[8];
    int n_wrt;
    lg_value loss_loop, loss_fused;
    lg_feed feeds[7];
    lg_tensor *feed_t[7];
    int n_feeds;
} model;

/* A dropout mask's values: uniform in [0, 2) with every third one 0. */
static lg_tensor *test_mask(lg_dtype dt, lg_shape s, uint64_t key)
{
    lg_tensor *t = lg_test_uniform(dt, s, 17, key, 0, 2);
    for (int64_t i = 0; i < lg_shape_numel(s); i += 3) lg_tensor_set(t, i, 0);
    return t;
}

static lg_value weigh(lg_graph *g, lg_value v, uint64_t key)
{
    lg_tensor *w = lg_test_uniform(lg_value_dtype(v), lg_value_shape(v), 7, key, -1, 1);
    lg_value c = lg_constant(g, "weights", w);
    lg_tensor_free(w);
    return lg_sum(lg_mul(v, c), NULL, 0, false);
}

static lg_value total(lg_graph *g, const lg_value *states, int n_states, lg_value ys)
{
    lg_value l = weigh(g, ys, 100);
    for (int k = 0; k < n_states; k++) l = lg_add(l, weigh(g, states[k], 101 + (uint64_t)k));
    return l;
}

/* Match the last loop of gr and build its fused replacement into repl. */
static int32_t fuse_last_loop(lg_graph *gr, lg_value *repl)
{
    int32_t loop = -1;
    for (int32_t i = 0; i < gr->n_nodes; i++)
        if (gr->nodes[i].op == LG_OP_LOOP && !gr->nodes[i].attrs.loop->gradient) loop = i;
    ck_assert_int_ge(loop, 0);
    lg_rnn_match mt;
    ck_assert_msg(lg_rnn_match_loop(gr->nodes[loop].attrs.loop, &mt), "refused: %s", mt.reason);
    int32_t id = lg_rnn_fuse_loop(gr, loop, &mt, 1, repl);
    ck_assert_msg(id >= 0, "%s", lg_graph_error(gr));
    return id;
}

/* The fused side: lg_rnn_build with the cell's weights, or (via_match) the
 * matcher's reading of the loop and lg_rnn_fuse_loop. With dropout, the
 * cell reads Keras's dropout and recurrent dropout masks. */
/* A mask [T, B] with holes: example i's step t is valid where (t + i) % 3
 * != 1, and example 0's first step is masked (so a repeat has nothing to
 * repeat there). */
static lg_tensor *holes_mask(lg_dtype dt)
{
    lg_tensor *t = lg_test_tensor(dt, lg_shape_of(2, T, B), NULL);
    for (int s = 0; s < T; s++)
        for (int i = 0; i < B; i++) lg_tensor_set(t, s * B + i, (s + i) % 3 != 1 && !(s == 0 && i == 0));
    return t;
}

/* How model_build builds a model: masked by lengths, or by a mask with
 * holes (holes, which needs via_match); dropout masks on x_t and h. */
typedef struct model_opts {
    bool bias, reverse, masked, via_match, dropout, holes;
} model_opts;

static void model_build(model *m, const variant *v, lg_dtype dt, model_opts o)
{
    bool bias = o.bias, reverse = o.reverse, masked = o.masked, via_match = o.via_match, dropout = o.dropout,
         holes = o.holes;
    memset(m, 0, sizeof *m);
    lg_graph *g = m->g = lg_graph_new();
    m->x = lg_input(g, "x", dt, lg_shape_of(3, T, B, I));
    m->h0 = lg_input(g, "h0", dt, lg_shape_of(2, B, H));
    m->c0 = lg_input(g, "c0", dt, lg_shape_of(2, B, H));
    lg_cell_opts co = lg_cell_opts_default(v->kind, H);
    co.dtype = dt;
    co.activation = v->act;
    co.reset_after = v->reset_after;
    co.use_bias = bias;
    co.seed = 3;
    lg_cell *cell = lg_cell_new(g, "cell", I, co);
    ck_assert_ptr_nonnull(cell);
    lg_value W = lg_cell_kernel(cell), U = lg_cell_recurrent_kernel(cell), b = lg_cell_bias(cell);
    if (bias) ck_assert_int_eq(lg_init_uniform(lg_param_tensor(b), -0.5, 0.5, 5, 9), LG_OK);
    int n_states = lg_cell_state_count(cell);

    lg_loop_opts lo = lg_loop_opts_default();
    lo.time_major = true;
    lo.reverse = reverse;
    if (masked && holes) { /* Keras's zero_output_for_mask=False: masked steps repeat the last output */
        m->mask = lg_input(g, "mask", dt, lg_shape_of(2, T, B));
        lo.mask = m->mask;
        lo.zero_output_for_mask = false;
    } else if (masked) {
        m->len = lg_input(g, "len", LG_I32, lg_shape_of(1, B));
        lo.lengths = m->len;
    }
    lg_loop *l = lg_loop_new(g, NULL, lo);
    lg_value x_t = lg_loop_seq(l, m->x), s[2], next[2], y;
    s[0] = lg_loop_state(l, m->h0);
    if (n_states == 2) s[1] = lg_loop_state(l, m->c0);
    lg_value xm_b = lg_value_invalid(), hm_b = lg_value_invalid();
    if (dropout) {
        m->xm = lg_input(g, "xm", dt, lg_shape_of(2, B, I));
        m->hm = lg_input(g, "hm", dt, lg_shape_of(2, B, H));
        xm_b = lg_loop_invariant(l, m->xm);
        hm_b = lg_loop_invariant(l, m->hm);
    }
    lg_cell_step(cell, l, x_t, s, xm_b, hm_b, next, &y);
    for (int k = 0; k < n_states; k++) lg_loop_next(l, s[k], next[k]);
    lg_loop_emit(l, y);
    lg_value fin[2], ys;
    ck_assert_msg(lg_loop_end(l, fin, &ys) == LG_OK, "%s", lg_last_error());
    m->loss_loop = total(g, fin, n_states, ys);

    if (via_match) {
        lg_value repl[3];
        fuse_last_loop(g, repl);
        m->loss_fused = total(g, repl, n_states, repl[n_states]);
    } else {
        if (masked) m->mask = lg_input(g, "mask", dt, lg_shape_of(2, T, B));
        unsigned flags = (bias ? LG_RNN_BIAS : 0) | (reverse ? LG_RNN_REVERSE : 0) | (masked ? LG_RNN_MASK : 0) |
                         (dropout ? LG_RNN_HMASK : 0);
        lg_value st[2] = {m->h0, m->c0};
        lg_value x = dropout ? lg_mul(m->x, m->xm) : m->x;
        int32_t id = lg_rnn_build(v->fused, flags, x, st, W, U, (lg_rnn_extras){b, m->mask, m->hm}, "fused");
        ck_assert_msg(id >= 0, "%s", lg_graph_error(g));
        lg_rnn_layout L = lg_rnn_layout_of(v->fused, flags);
        lg_value ffin[2] = {lg_value_of(g, id, L.h_t), L.c_t >= 0 ? lg_value_of(g, id, L.c_t) : lg_value_invalid()};
        m->loss_fused = total(g, ffin, n_states, lg_value_of(g, id, L.ys));
    }

    m->n_wrt = 0;
    m->wrt[m->n_wrt++] = m->x;
    m->wrt[m->n_wrt++] = m->h0;
    if (n_states == 2) m->wrt[m->n_wrt++] = m->c0;
    m->wrt[m->n_wrt++] = W;
    m->wrt[m->n_wrt++] = U;
    if (bias) m->wrt[m->n_wrt++] = b;
    if (dropout) m->wrt[m->n_wrt++] = m->xm, m->wrt[m->n_wrt++] = m->hm;
    lg_cell_free(cell);

    lg_value ins[3] = {m->x, m->h0, m->c0};
    for (int k = 0; k < 3; k++) {
        m->feed_t[k] = lg_test_uniform(dt, lg_value_shape(ins[k]), 11, (uint64_t)k, -1, 1);
        m->feeds[m->n_feeds++] = (lg_feed){ins[k], m->feed_t[k]};
    }
    if (masked && holes) {
        m->feed_t[4] = holes_mask(dt);
        m->feeds[m->n_feeds++] = (lg_feed){m->mask, m->feed_t[4]};
    } else if (masked) {
        m->feed_t[3] = lg_test_tensor(LG_I32, lg_shape_of(1, B), lengths);
        m->feeds[m->n_feeds++] = (lg_feed){m->len, m->feed_t[3]};
    }
    if (masked && !holes && !via_match) {
        m->feed_t[4] = lg_test_tensor(dt, lg_shape_of(2, T, B), NULL);
        for (int t = 0; t < T; t++)
            for (int i = 0; i < B; i++) lg_tensor_set(m->feed_t[4], t * B + i, t < lengths[i]);
        m->feeds[m->n_feeds++] = (lg_feed){m->mask, m->feed_t[4]};
    }
    if (dropout) {
        m->feed_t[5] = test_mask(dt, lg_shape_of(2, B, I), 1);
        m->feed_t[6] = test_mask(dt, lg_shape_of(2, B, H), 2);
        m->feeds[m->n_feeds++] = (lg_feed){m->xm, m->feed_t[5]};
        m->feeds[m->n_feeds++] = (lg_feed){m->hm, m->feed_t[6]};
    }
}

static void model_free(model *m)
{
    for (int k = 0; k < 7; k++) lg_tensor_free(m->feed_t[k]);
    lg_graph_free(m->g);
}

/* |a - b| <= tol (1 + max |b|) elementwise over two tensors. */
static void assert_close(const lg_tensor *a, const lg_tensor *b, double tol, const char *what)
{
    int64_t n = lg_shape_numel(lg_tensor_shape(b));
    double scale = 1;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(lg_tensor_get(b, i)));
    for (int64_t i = 0; i < n; i++) {
        double x = lg_tensor_get(a, i), y = lg_tensor_get(b, i);
        ck_assert_msg(fabs(x - y) <= tol * scale, "%s [%lld]: fused %.17g, loop %.17g", what, (long long)i, x, y);
    }
}

/* Values and gradients of two losses over the same wrt, equal within tol,
 * the loop run as a loop. */
static void compare(lg_graph *gr, lg_value loss_loop, lg_value loss_fused, const lg_value *wrt, int n_wrt,
                    const lg_feed *feeds, int n_feeds, double tol, const char *label)
{
    lg_value gl[16], gf[16];
    ck_assert_int_le(n_wrt, 16);
    ck_assert_msg(lg_grad(gr, loss_loop, wrt, n_wrt, gl) == LG_OK, "%s", lg_last_error());
    ck_assert_msg(lg_grad(gr, loss_fused, wrt, n_wrt, gf) == LG_OK, "%s", lg_last_error());
    lg_value fetch[34];
    int nf = 0;
    fetch[nf++] = loss_loop;
    fetch[nf++] = loss_fused;
    for (int k = 0; k < n_wrt; k++) fetch[nf++] = gl[k], fetch[nf++] = gf[k];
    /* the loop side as a loop: fuse_rnn would make it the fused op too */
    lg_compile_opts co = lg_compile_opts_default();
    co.passes_off = "fuse_rnn";
    lg_program *p = NULL;
    ck_assert_msg(lg_program_compile_opts(gr, feeds, n_feeds, fetch, nf, co, &p) == LG_OK, "%s", lg_last_error());
    lg_tensor *out[34] = {0};
    ck_assert_msg(lg_program_run(p, feeds, n_feeds, out) == LG_OK, "%s", lg_last_error());
    lg_program_free(p);
    char what[200];
    snprintf(what, sizeof what, "%s loss", label);
    assert_close(out[1], out[0], tol, what);
    for (int k = 0; k < n_wrt; k++) {
        snprintf(what, sizeof what, "%s d/d %s", label, lg_value_name(wrt[k]));
        assert_close(out[3 + 2 * k], out[2 + 2 * k], tol, what);
    }
    for (int k = 0; k < nf; k++) lg_tensor_free(out[k]);
}

static void check_variant(const variant *v, lg_dtype dt, model_opts o)
{
    model m;
    model_build(&m, v, dt, o);
    char label[160];
    snprintf(label, sizeof label, "%s%s%s%s%s%s", v->name, o.bias ? "" : " no-bias", o.reverse ? " reverse" : "",
             o.masked ? (o.holes ? " holes repeat" : " masked") : "", o.dropout ? " dropout" : "",
             o.via_match ? " (matched)" : "");
    compare(m.g, m.loss_loop, m.loss_fused, m.wrt, m.n_wrt, m.feeds, m.n_feeds, dt == LG_F64 ? 1e-11 : 1e-4, label);
    model_free(&m);
}

/* _i enumerates variant x {bias, reverse, masked}. */
START_TEST(test_equal_to_loop_f64)
{
    int opts = _i % 8;
    check_variant(&variants[_i / 8], LG_F64, (model_opts){.bias = !(opts & 1), .reverse = opts & 2, .masked = opts & 4});
}
END_TEST

/* The same through the matcher and lg_rnn_fuse_loop: the roles it found
 * assemble into weights that give the loop's values and gradients. */
START_TEST(test_matched_equal_to_loop)
{
    int opts = _i % 8;
    check_variant(&variants[_i / 8], LG_F64,
                  (model_opts){.bias = !(opts & 1), .reverse = opts & 2, .masked = opts & 4, .via_match = true});
}
END_TEST

START_TEST(test_equal_to_loop_f32)
{
    check_variant(&variants[_i], LG_F32, (model_opts){.bias = true, .reverse = _i % 2, .masked = true});
}
END_TEST

/* A mask with holes, masked steps repeating the last valid output (Keras
 * 3's default for a layer): the matched loop as the fused op (LG_RNN_REPEAT)
 * equals the loop. _i enumerates variant x {forward, reverse} x {plain,
 * dropout}. */
START_TEST(test_repeat_equal_to_loop)
{
    check_variant(&variants[_i / 4], LG_F64,
                  (model_opts){.bias = true, .reverse = _i % 2, .masked = true, .via_match = true,
                               .dropout = (_i / 2) % 2, .holes = true});
}
END_TEST

/* Keras's dropout and recurrent dropout masks (every product with U reads
 * h_{t-1} times the mask; the GRU's mix the plain h_{t-1}): equal values
 * and gradients, the masks' own included. _i enumerates variant x {masked
 * + reverse} x {built, matched}. */
START_TEST(test_dropout_equal_to_loop)
{
    bool odd = _i % 2;
    check_variant(&variants[_i / 4], LG_F64,
                  (model_opts){.bias = true, .reverse = odd, .masked = odd, .via_match = (_i / 2) % 2, .dropout = true});
}
END_TEST

/* Central differences through the fused op alone (the gradcheck table's rule
 * for a new op, here as rows per cell). */
START_TEST(test_gradcheck)
{
    model m;
    model_build(&m, &variants[_i], LG_F64, (model_opts){.bias = true, .reverse = _i % 2, .masked = true});
    lg_gradcheck_report r;
    ck_assert_msg(lg_gradcheck(m.g, m.loss_fused, m.wrt, m.n_wrt, m.feeds, m.n_feeds, lg_gradcheck_opts_default(),
                               &r) == LG_OK,
                  "%s", lg_last_error());
    ck_assert_msg(r.passed && r.checked > 0, "%s: %s[%lld] analytic %g numeric %g", variants[_i].name,
                  r.worst_name, r.worst_index, r.analytic, r.numeric);
    model_free(&m);
}
END_TEST

/* A hand-written LSTM with one weight per gate and a PyTorch-style pair of
 * biases, commuted: the matcher's pieces are concatenated and summed. */
START_TEST(test_matched_hand_lstm)
{
    lg_graph *gr = lg_graph_new();
    lg_value x = lg_input(gr, "x", LG_F64, lg_shape_of(3, T, B, I));
    lg_value h0 = lg_input(gr, "h0", LG_F64, lg_shape_of(2, B, H)), c0 = lg_input(gr, "c0", LG_F64, lg_shape_of(2, B, H));
    lg_value wrt[3 + 16];
    int n_wrt = 0;
    wrt[n_wrt++] = x, wrt[n_wrt++] = h0, wrt[n_wrt++] = c0;
    lg_loop_opts lo = lg_loop_opts_default();
    lo.time_major = true;
    lg_loop *l = lg_loop_new(gr, NULL, lo);
    lg_value x_t = lg_loop_seq(l, x), h = lg_loop_state(l, h0), c = lg_loop_state(l, c0), gate[4];
    for (int k = 0; k < 4; k++) {
        lg_value p[4];
        const int64_t dims[4][2] = {{I, H}, {H, H}, {H, 0}, {H, 0}};
        for (int j = 0; j < 4; j++) {
            char name[16];
            snprintf(name, sizeof name, "p%d_%d", k, j);
            p[j] = lg_param(gr, name, LG_F64, dims[j][1] ? lg_shape_of(2, dims[j][0], dims[j][1]) : lg_shape_of(1, H));
            ck_assert_int_eq(lg_init_uniform(lg_param_tensor(p[j]), -0.6, 0.6, 21, (uint64_t)(4 * k + j)), LG_OK);
            if (j != 2) wrt[n_wrt++] = p[j]; /* b_ih gets b_hh's gradient */
        }
        lg_value w = lg_loop_invariant(l, p[0]), u = lg_loop_invariant(l, p[1]);
        lg_value b_ih = lg_loop_invariant(l, p[2]), b_hh = lg_loop_invariant(l, p[3]);
        lg_value pre = lg_add(lg_add(b_hh, lg_matmul(h, u, false, false)), lg_add(lg_matmul(x_t, w, false, false), b_ih));
        gate[k] = k == 2 ? lg_tanh(pre) : lg_sigmoid(pre);
    }
    lg_value c2 = lg_add(lg_mul(c, gate[1]), lg_mul(gate[2], gate[0]));
    lg_value h2 = lg_mul(lg_tanh(c2), gate[3]);
    lg_loop_next(l, h, h2);
    lg_loop_next(l, c, c2);
    lg_loop_emit(l, h2);
    lg_value fin[2], ys, repl[3];
    ck_assert_msg(lg_loop_end(l, fin, &ys) == LG_OK, "%s", lg_last_error());
    fuse_last_loop(gr, repl);
    lg_value loss_loop = total(gr, fin, 2, ys), loss_fused = total(gr, repl, 2, repl[2]);
    lg_tensor *ft[3];
    lg_feed feeds[3];
    lg_value ins[3] = {x, h0, c0};
    for (int k = 0; k < 3; k++) {
        ft[k] = lg_test_uniform(LG_F64, lg_value_shape(ins[k]), 11, (uint64_t)k, -1, 1);
        feeds[k] = (lg_feed){ins[k], ft[k]};
    }
    compare(gr, loss_loop, loss_fused, wrt, n_wrt, feeds, 3, 1e-11, "hand-written lstm (matched)");
    for (int k = 0; k < 3; k++) lg_tensor_free(ft[k]);
    lg_graph_free(gr);
}
END_TEST

/* lg_rnn_fuse_loop's flags from the gradients the program takes: none
 * makes the node forward only, two mark its workspace shared. */
START_TEST(test_fuse_flags_from_gradients)
{
    const int n_grads[3] = {0, 1, 2};
    const unsigned want[3] = {LG_RNN_FORWARD_ONLY, 0, LG_RNN_SHARED_WS};
    for (int k = 0; k < 3; k++) {
        model m;
        model_build(&m, &variants[2], LG_F64, (model_opts){.bias = true});
        int32_t loop = -1;
        for (int32_t i = 0; i < m.g->n_nodes; i++)
            if (m.g->nodes[i].op == LG_OP_LOOP && !m.g->nodes[i].attrs.loop->gradient) loop = i;
        lg_rnn_match mt;
        ck_assert(lg_rnn_match_loop(m.g->nodes[loop].attrs.loop, &mt));
        lg_value repl[3];
        int32_t id = lg_rnn_fuse_loop(m.g, loop, &mt, n_grads[k], repl);
        ck_assert_msg(id >= 0, "%s", lg_graph_error(m.g));
        ck_assert_uint_eq(lg_rnn_node_flags(&m.g->nodes[id]) & (LG_RNN_FORWARD_ONLY | LG_RNN_SHARED_WS), want[k]);
        model_free(&m);
    }
}
END_TEST

/* Bad shapes are graph errors naming the op, not crashes. */
START_TEST(test_bad_shapes)
{
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(3, T, B, I));
    lg_value h = lg_input(g, "h", LG_F32, lg_shape_of(2, B, H));
    lg_value W = lg_input(g, "W", LG_F32, lg_shape_of(2, I, 4 * H));
    lg_value U = lg_input(g, "U", LG_F32, lg_shape_of(2, H, 3 * H)); /* LSTM needs [H, 4H] */
    lg_value st[2] = {h, h};
    lg_rnn_extras none = {lg_value_invalid(), lg_value_invalid(), lg_value_invalid()};
    ck_assert_int_lt(lg_rnn_build(LG_RNN_LSTM, 0, x, st, W, U, none, "r"), 0);
    ck_assert_ptr_nonnull(strstr(lg_graph_error(g), "U must be [H, G H]"));
    lg_graph_free(g);
    /* a recurrent dropout mask of another shape than h */
    g = lg_graph_new();
    x = lg_input(g, "x", LG_F32, lg_shape_of(3, T, B, I));
    h = lg_input(g, "h", LG_F32, lg_shape_of(2, B, H));
    W = lg_input(g, "W", LG_F32, lg_shape_of(2, I, H));
    U = lg_input(g, "U", LG_F32, lg_shape_of(2, H, H));
    lg_value hm = lg_input(g, "hm", LG_F32, lg_shape_of(2, B, H + 1));
    lg_value st1[1] = {h};
    ck_assert_int_lt(lg_rnn_build(LG_RNN_SIMPLE_TANH, LG_RNN_HMASK, x, st1, W, U,
                                  (lg_rnn_extras){lg_value_invalid(), lg_value_invalid(), hm}, "r"),
                     0);
    ck_assert_ptr_nonnull(strstr(lg_graph_error(g), "hmask must be [B, H]"));
    lg_graph_free(g);
    /* repeated outputs without a mask */
    g = lg_graph_new();
    x = lg_input(g, "x", LG_F32, lg_shape_of(3, T, B, I));
    st1[0] = lg_input(g, "h", LG_F32, lg_shape_of(2, B, H));
    W = lg_input(g, "W", LG_F32, lg_shape_of(2, I, H));
    U = lg_input(g, "U", LG_F32, lg_shape_of(2, H, H));
    ck_assert_int_lt(lg_rnn_build(LG_RNN_SIMPLE_TANH, LG_RNN_REPEAT, x, st1, W, U,
                                  (lg_rnn_extras){lg_value_invalid(), lg_value_invalid(), lg_value_invalid()}, "r"),
                     0);
    ck_assert_ptr_nonnull(strstr(lg_graph_error(g), "LG_RNN_REPEAT repeats outputs at masked steps: it needs LG_RNN_MASK"));
    lg_graph_free(g);
}
END_TEST

/* A merged node (rnn.h's parts) built wrong is a graph error naming what is
 * wrong; single-node builders refuse merged flags; merged nodes have no
 * gradient rule (merge_rnn makes them after autodiff). */
START_TEST(test_merged_errors)
{
    struct {
        unsigned flags;
        int n_ints, layers; /* STACK: ints[2] */
        int n_in;           /* inputs given (a SimpleRNN part takes x, h0, W, U) */
        bool other_t;       /* direction 1's x of another length */
        const char *error;
    } cases[] = {
        {LG_RNN_BIDIR, 2, 0, 4, false, "a merged rnn takes each part's inputs"},
        {LG_RNN_BIDIR | LG_RNN_REVERSE, 2, 0, 8, false, "a bidirectional rnn's own flags have no LG_RNN_REVERSE"},
        {LG_RNN_BIDIR, 2, 0, 8, true, "a bidirectional rnn's directions read one x"},
        {LG_RNN_STACK, 3, 1, 4, false, "bad rnn attributes"},         /* one layer is no stack */
        {LG_RNN_STACK | LG_RNN_BIDIR, 3, 2, 7, false, "a merged rnn takes each part's inputs"}, /* 14 */
        {LG_RNN_STACK | LG_RNN_BIDIR, 3, 5, 7, false, "bad rnn attributes"}, /* 10 parts */
        {LG_RNN_STACK, 2, 2, 7, false, "bad rnn attributes"},         /* the layers missing */
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        lg_graph *g = lg_graph_new();
        lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(3, T, B, I));
        lg_value x2 = lg_input(g, "x2", LG_F32, lg_shape_of(3, T + 1, B, I));
        lg_value h = lg_input(g, "h", LG_F32, lg_shape_of(2, B, H));
        lg_value W = lg_input(g, "W", LG_F32, lg_shape_of(2, I, H));
        lg_value Wh = lg_input(g, "Wh", LG_F32, lg_shape_of(2, H, H));
        lg_value U = lg_input(g, "U", LG_F32, lg_shape_of(2, H, H));
        /* two SimpleRNN parts: direction after direction, or layer 1 without x */
        bool stack = cases[k].flags & LG_RNN_STACK;
        lg_value in[8] = {x, h, W, U, cases[k].other_t ? x2 : x, h, W, U};
        if (stack) in[4] = h, in[5] = Wh, in[6] = U;
        int64_t ints[3] = {LG_RNN_SIMPLE_TANH, cases[k].flags, cases[k].layers};
        lg_attrs a = {.ints = ints, .n_ints = cases[k].n_ints};
        int32_t id = lg_node_build(g, LG_OP_RNN, in, cases[k].n_in, &a, "merged");
        ck_assert_msg(id < 0, "case %zu built", k);
        ck_assert_msg(lg_graph_error(g) && strstr(lg_graph_error(g), cases[k].error), "case %zu: %s", k,
                      lg_graph_error(g) ? lg_graph_error(g) : "(no error)");
        lg_graph_free(g);
    }
    /* a single node's attributes: an unknown cell, negative backend sizes */
    const int64_t bad[2][4] = {{LG_RNN_CELL_COUNT, 0, 0, 0}, {LG_RNN_SIMPLE_TANH, 0, -1, 0}};
    for (int k = 0; k < 2; k++) {
        lg_graph *g = lg_graph_new();
        lg_value in[4] = {lg_input(g, "x", LG_F32, lg_shape_of(3, T, B, I)),
                          lg_input(g, "h", LG_F32, lg_shape_of(2, B, H)),
                          lg_input(g, "W", LG_F32, lg_shape_of(2, I, H)),
                          lg_input(g, "U", LG_F32, lg_shape_of(2, H, H))};
        int64_t ints[4];
        memcpy(ints, bad[k], sizeof ints);
        lg_attrs a = {.ints = ints, .n_ints = 4};
        ck_assert_int_lt(lg_node_build(g, LG_OP_RNN, in, 4, &a, "single"), 0);
        ck_assert_ptr_nonnull(strstr(lg_graph_error(g), "bad rnn attributes"));
        lg_graph_free(g);
    }
    /* single-node builders take no merged flags */
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(3, T, B, I));
    lg_value st[1] = {lg_input(g, "h", LG_F32, lg_shape_of(2, B, H))};
    lg_value W = lg_input(g, "W", LG_F32, lg_shape_of(2, I, H)), U = lg_input(g, "U", LG_F32, lg_shape_of(2, H, H));
    lg_rnn_extras none = {lg_value_invalid(), lg_value_invalid(), lg_value_invalid()};
    ck_assert_int_lt(lg_rnn_build(LG_RNN_SIMPLE_TANH, LG_RNN_BIDIR, x, st, W, U, none, "r"), 0);
    ck_assert_ptr_nonnull(strstr(lg_graph_error(g), "bad cell 0 or flags 128"));
    lg_graph_free(g);
    /* a well-formed bidirectional node, differentiated */
    g = lg_graph_new();
    x = lg_input(g, "x", LG_F32, lg_shape_of(3, T, B, I)), st[0] = lg_input(g, "h", LG_F32, lg_shape_of(2, B, H));
    W = lg_input(g, "W", LG_F32, lg_shape_of(2, I, H)), U = lg_input(g, "U", LG_F32, lg_shape_of(2, H, H));
    lg_value in[8] = {x, st[0], W, U, x, st[0], W, U};
    int64_t ints[2] = {LG_RNN_SIMPLE_TANH, LG_RNN_BIDIR};
    int32_t id = lg_node_build(g, LG_OP_RNN, in, 8, &(lg_attrs){.ints = ints, .n_ints = 2}, "merged");
    ck_assert_msg(id >= 0, "%s", lg_graph_error(g) ? lg_graph_error(g) : "?");
    lg_value loss = lg_sum(lg_value_of(g, id, 1), NULL, 0, false), dW;
    ck_assert_int_ne(lg_grad(g, loss, &W, 1, &dW), LG_OK);
    ck_assert_ptr_nonnull(strstr(lg_graph_error(g), "a merged rnn has no gradient rule"));
    lg_graph_free(g);
    /* two stacked bidirectional layers: layer 1's directions read layer
     * 0's ys joined, [T, B, 2H], so their W is [2H, H] (an [H, H] is
     * refused); every part's h_T, ys, ws come out */
    for (int k = 0; k < 2; k++) {
        g = lg_graph_new();
        x = lg_input(g, "x", LG_F32, lg_shape_of(3, T, B, I)), st[0] = lg_input(g, "h", LG_F32, lg_shape_of(2, B, H));
        W = lg_input(g, "W", LG_F32, lg_shape_of(2, I, H)), U = lg_input(g, "U", LG_F32, lg_shape_of(2, H, H));
        lg_value W1 = lg_input(g, "W1", LG_F32, lg_shape_of(2, k ? H : 2 * H, H));
        lg_value bs[14] = {x, st[0], W, U, x, st[0], W, U, st[0], W1, U, st[0], W1, U};
        int64_t bints[3] = {LG_RNN_SIMPLE_TANH, LG_RNN_BIDIR | LG_RNN_STACK, 2};
        id = lg_node_build(g, LG_OP_RNN, bs, 14, &(lg_attrs){.ints = bints, .n_ints = 3}, "stacked");
        if (k) {
            ck_assert_int_lt(id, 0);
            ck_assert_msg(strstr(lg_graph_error(g), "W must be [I, G H]"), "%s", lg_graph_error(g));
        } else {
            ck_assert_msg(id >= 0, "%s", lg_graph_error(g) ? lg_graph_error(g) : "?");
            ck_assert_int_eq(lg_graph_node_output_count(g, id), 4 * 3);
            for (int q = 0; q < 4; q++) {
                lg_shape ys = lg_value_shape(lg_value_of(g, id, 3 * q + 1));
                ck_assert(lg_shape_equal(ys, lg_shape_of(3, T, B, H)));
            }
        }
        lg_graph_free(g);
    }
}
END_TEST

/* The fused op alone on inputs of these sizes: its outputs and the
 * gradients of a weighted sum of them with respect to every input, with
 * the batch rows split in `parts` (lg_cpu_threads_force). out gets up to 11
 * tensors; returns how many. */
typedef struct sizes {
    int64_t T, B, I, H;
} sizes;

/* run_parts_as's mask: holes, a masked step before and after valid ones in
 * either run order for most rows. */
static bool parts_mask(int64_t t, int64_t b) { return (t + 2 * b) % 3 != 0; }

static int run_parts_as(const variant *v, lg_dtype dt, unsigned flags, sizes z, int parts, bool train,
                        lg_tensor **out)
{
    lg_graph *g = lg_graph_new();
    int gates = lg_rnn_cell_gates(v->fused);
    lg_value in[8];
    lg_shape shp[8] = {lg_shape_of(3, z.T, z.B, z.I), lg_shape_of(2, z.B, z.H), lg_shape_of(2, z.B, z.H),
                       lg_shape_of(2, z.I, gates * z.H), lg_shape_of(2, z.H, gates * z.H),
                       v->fused == LG_RNN_GRU ? lg_shape_of(2, 2, gates * z.H) : lg_shape_of(1, gates * z.H),
                       lg_shape_of(2, z.T, z.B), lg_shape_of(2, z.B, z.H)};
    const char *names[8] = {"x", "h0", "c0", "W", "U", "b", "mask", "hmask"};
    lg_tensor *ft[8] = {0};
    lg_feed feeds[8];
    int nf = 0;
    for (int k = 0; k < 8; k++) {
        in[k] = lg_input(g, names[k], dt, shp[k]);
        ft[k] = k == 7 ? test_mask(dt, shp[k], 3)
                       : lg_test_uniform(dt, shp[k], 31, (uint64_t)k, k == 3 || k == 4 ? -0.4 : -1,
                                         k == 3 || k == 4 ? 0.4 : 1);
        if (k == 6)
            for (int64_t i = 0; i < z.T * z.B; i++) lg_tensor_set(ft[k], i, parts_mask(i / z.B, i % z.B));
        feeds[nf++] = (lg_feed){in[k], ft[k]};
    }
    int32_t id = lg_rnn_build(v->fused, flags, in[0], &in[1], in[3], in[4], (lg_rnn_extras){in[5], in[6], in[7]},
                              "fused");
    ck_assert_msg(id >= 0, "%s", lg_graph_error(g));
    lg_rnn_layout L = lg_rnn_layout_of(v->fused, flags);
    lg_value fetch[12], wrt[7];
    int n = 0, nw = 0;
    fetch[n++] = lg_value_of(g, id, L.ys);
    fetch[n++] = lg_value_of(g, id, L.h_t);
    if (L.c_t >= 0) fetch[n++] = lg_value_of(g, id, L.c_t);
    if (train) {
        lg_value loss = weigh(g, fetch[0], 100);
        for (int k = 1; k < n; k++) loss = lg_add(loss, weigh(g, fetch[k], 100 + (uint64_t)k));
        for (int k = 0; k < 6; k++)
            if ((k != 2 || L.c0 >= 0) && (k != 5 || L.b >= 0)) wrt[nw++] = in[k];
        if (L.hmask >= 0) wrt[nw++] = in[7];
        ck_assert_msg(lg_grad(g, loss, wrt, nw, fetch + n) == LG_OK, "%s", lg_last_error());
        n += nw;
    }
    lg_cpu_threads_force(parts);
    lg_status st = lg_graph_run(g, feeds, nf, fetch, n, out);
    lg_cpu_threads_force(0);
    ck_assert_msg(st == LG_OK, "%s", lg_last_error());
    for (int k = 0; k < 8; k++) lg_tensor_free(ft[k]);
    lg_graph_free(g);
    return n;
}

static int run_parts(const variant *v, lg_dtype dt, unsigned flags, sizes z, int parts, lg_tensor **out)
{
    return run_parts_as(v, dt, flags, z, parts, true, out);
}

/* Whether this machine's GEMM gives a row of a [rows, k] x [k, n] product
 * (lg_cpu_gemm) the same bits when the rows are split in `parts` pieces,
 * each on one thread: at rnn_split's points (as the steps' parts split
 * them), or of `piece` rows each (the last takes the rest). The fused kernels' own sums have a fixed
 * order; their steps' products split rows, so where the provider's bits
 * for a row depend on the product's row count (OpenBLAS's Haswell sgemm,
 * oneDNN on AVX2) no kernel built on it can keep its bits across splits. */
static bool gemm_pieces_exact(lg_dtype dt, int64_t rows, int64_t k, int64_t n, int parts, int64_t piece)
{
    lg_tensor *a = lg_test_uniform(dt, lg_shape_of(2, rows, k), 7, 1, -1, 1);
    lg_tensor *b = lg_test_uniform(dt, lg_shape_of(2, k, n), 7, 2, -1, 1);
    lg_tensor *whole = NULL, *split = NULL;
    lg_tensor_new(dt, lg_shape_of(2, rows, n), &whole);
    lg_tensor_new(dt, lg_shape_of(2, rows, n), &split);
    size_t es = lg_dtype_size(dt);
    ck_assert_int_eq(lg_cpu_gemm(dt, false, false, rows, n, k, 1, lg_tensor_cdata(a), k, lg_tensor_cdata(b), n, 0,
                                 lg_tensor_data(whole), n),
                     LG_OK);
    for (int p = 0; p < parts; p++) {
        int64_t r0 = piece ? p * piece : rnn_split(rows, p, parts);
        int64_t r1 = piece ? (p + 1 == parts ? rows : (p + 1) * piece) : rnn_split(rows, p + 1, parts);
        lg_gemm_args g = {.m = r1 - r0, .n = n, .k = k, .lda = k, .ldb = n, .ldc = n};
        const char *ap = (const char *)lg_tensor_cdata(a) + (size_t)(r0 * k) * es;
        char *cp = (char *)lg_tensor_data(split) + (size_t)(r0 * n) * es;
        if (r1 > r0)
            ck_assert_int_eq(dt == LG_F32 ? lg_gemm_f32_one(&g, 1, (const float *)ap, lg_tensor_cdata(b), 0, (float *)cp)
                                          : lg_gemm_f64_one(&g, 1, (const double *)ap, lg_tensor_cdata(b), 0,
                                                            (double *)cp),
                             LG_OK);
    }
    bool same = !memcmp(lg_tensor_cdata(whole), lg_tensor_cdata(split), lg_tensor_bytes(whole));
    lg_tensor_free(a), lg_tensor_free(b), lg_tensor_free(whole), lg_tensor_free(split);
    return same;
}

static bool gemm_splits_exactly(lg_dtype dt, int64_t rows, int64_t k, int64_t n, int parts)
{
    return gemm_pieces_exact(dt, rows, k, n, parts, 0);
}

/* max |a - b| / max(1, max |a|): how far apart two fetches are. */
static double rel_apart(const lg_tensor *a, const lg_tensor *b)
{
    double worst = 0, scale = 1;
    for (int64_t i = 0; i < lg_tensor_numel(a); i++) {
        worst = fmax(worst, fabs(lg_tensor_get(a, i) - lg_tensor_get(b, i)));
        scale = fmax(scale, fabs(lg_tensor_get(a, i)));
    }
    return worst / scale;
}

/* Splitting the batch rows across threads changes no bit of any output or
 * gradient where the GEMM provider's products split exactly
 * (gemm_splits_exactly: the kernels split at multiples of 16 rows, and do
 * the products over all steps in blocks whose shapes come from the layer's
 * shape, cpu_rnn_kernels.h);
 * elsewhere they agree to rounding (1e-4 relative in f32). _i enumerates
 * variant x {f32, f64} x {plain, bias + reverse + mask}, each on a tiny
 * size and GEMM-sized ones. */
START_TEST(test_parts_equal_bits)
{
    const variant *v = &variants[_i / 4];
    lg_dtype dt = _i % 2 ? LG_F64 : LG_F32;
    unsigned flags = (_i / 2) % 2 ? LG_RNN_BIAS | LG_RNN_REVERSE | LG_RNN_MASK | LG_RNN_HMASK | LG_RNN_REPEAT : 0;
    /* the last two for LSTMs and GRUs (reset_after) only: they split units (cpu_rnn_kernels.h, RNN_COL_UNITS), in
     * tiles of 128 */
    const sizes all[] = {{T, B, I, H}, {4, 23, 7, 33}, {3, 64, 32, 64}, {6, 37, 20, 48}, {2, 50, 1, 10},
                         {3, 21, 8, 264}, {2, 3, 5, 384}};
    size_t n_sizes = sizeof all / sizeof *all - (v->fused == LG_RNN_LSTM || v->fused == LG_RNN_GRU ? 0 : 2);
    for (size_t zi = 0; zi < n_sizes; zi++) {
        lg_tensor *one[12] = {0}, *split[12] = {0};
        int n = run_parts(v, dt, flags, all[zi], 1, one);
        for (int parts = 2; parts <= 3; parts++) {
            sizes z = all[zi];
            int64_t gh = lg_rnn_cell_gates(v->fused) * z.H;
            bool exact = gemm_splits_exactly(dt, z.B, z.H, gh, parts) && gemm_splits_exactly(dt, z.B, z.I, gh, parts);
            ck_assert_int_eq(run_parts(v, dt, flags, z, parts, split), n);
            for (int k = 0; k < n; k++) {
                size_t bytes = lg_tensor_bytes(one[k]);
                ck_assert(bytes == lg_tensor_bytes(split[k]) && bytes > 0);
                bool same = !memcmp(lg_tensor_cdata(one[k]), lg_tensor_cdata(split[k]), bytes);
                ck_assert_msg(same || (!exact && rel_apart(one[k], split[k]) <= (dt == LG_F32 ? 1e-4 : 1e-12)),
                              "%s %s flags %u, B %lld H %lld, %d parts: fetch %d differs from 1 part (%s; %.3g apart)",
                              v->name, lg_dtype_name(dt), flags, (long long)z.B, (long long)z.H, parts, k,
                              exact ? "the GEMM splits exactly" : "the GEMM does not split exactly",
                              rel_apart(one[k], split[k]));
                lg_tensor_free(split[k]);
                split[k] = NULL;
            }
        }
        for (int k = 0; k < n; k++) lg_tensor_free(one[k]);
    }
}
END_TEST

/* An LSTM or a GRU (reset_after) that splits its units (cpu_rnn_kernels.h,
 * RNN_COL_UNITS) and fetches no gradient (its forward-only kernel: hprev in
 * two alternating blocks) gives the same bits with 1, 2 and 3 parts, and
 * the training kernel's values: _i enumerates {LSTM, GRU} x {f32, f64} x
 * {plain, bias + reverse + mask + recurrent dropout + repeat}. */
START_TEST(test_unit_parts_forward_only)
{
    const variant *v = &variants[_i / 4 ? 3 : 2];
    ck_assert_int_eq(v->fused, _i / 4 ? LG_RNN_GRU : LG_RNN_LSTM);
    lg_dtype dt = _i % 2 ? LG_F64 : LG_F32;
    unsigned flags = (_i / 2) % 2 ? LG_RNN_BIAS | LG_RNN_REVERSE | LG_RNN_MASK | LG_RNN_HMASK | LG_RNN_REPEAT : 0;
    const sizes all[] = {{3, 21, 8, 264}, {4, 5, 3, 512}};
    for (size_t zi = 0; zi < sizeof all / sizeof *all; zi++) {
        lg_tensor *train[12] = {0}, *one[3] = {0}, *split[3] = {0};
        int nt = run_parts_as(v, dt, flags, all[zi], 1, true, train);
        int n = run_parts_as(v, dt, flags, all[zi], 1, false, one);
        ck_assert_int_eq(n, v->fused == LG_RNN_LSTM ? 3 : 2);
        for (int k = 0; k < n; k++)
            for (int64_t i = 0; i < lg_tensor_numel(one[k]); i++) {
                double a = lg_tensor_get(one[k], i), b = lg_tensor_get(train[k], i);
                ck_assert_msg(fabs(a - b) <= (dt == LG_F32 ? 1e-5 : 1e-12) * (1 + fabs(b)),
                              "%s H %lld: forward-only fetch %d [%lld] %.17g, training %.17g", lg_dtype_name(dt),
                              (long long)all[zi].H, k, (long long)i, a, b);
            }
        for (int parts = 2; parts <= 3; parts++) {
            ck_assert_int_eq(run_parts_as(v, dt, flags, all[zi], parts, false, split), n);
            for (int k = 0; k < n; k++) {
                size_t bytes = lg_tensor_bytes(one[k]);
                ck_assert_msg(bytes == lg_tensor_bytes(split[k]) &&
                                  !memcmp(lg_tensor_cdata(one[k]), lg_tensor_cdata(split[k]), bytes),
                              "%s flags %u, H %lld, %d parts: forward-only fetch %d differs from 1 part",
                              lg_dtype_name(dt), flags, (long long)all[zi].H, parts, k);
                lg_tensor_free(split[k]);
                split[k] = NULL;
            }
        }
        for (int k = 0; k < n; k++) lg_tensor_free(one[k]);
        for (int k = 0; k < nt; k++) lg_tensor_free(train[k]);
    }
}
END_TEST

/* The weighted loss of run_parts_as on an LSTM or a GRU (reset_after:
 * h~ = tanh(x W_h + b_h + r (h U_h + b_rh)), h' = z h + (1 - z) h~),
 * computed here in f64 from the inputs in[0..7] (x, h0, c0, W, U, b, -,
 * hmask as run_parts_as makes them; c0 NULL for the GRU, b and hmask NULL
 * without their flags; the mask is the flags'). The products with U read
 * h hmask, the GRU's mix reads h. */
static double reference_loss(lg_rnn_cell cell, lg_tensor *const *in, unsigned flags, sizes z)
{
    bool gru = cell == LG_RNN_GRU;
    int64_t Tn = z.T, Bn = z.B, In = z.I, Hn = z.H, G = (gru ? 3 : 4) * Hn;
    lg_tensor *w[3] = {lg_test_uniform(LG_F64, lg_shape_of(3, Tn, Bn, Hn), 7, 100, -1, 1),
                       lg_test_uniform(LG_F64, lg_shape_of(2, Bn, Hn), 7, 101, -1, 1),
                       lg_test_uniform(LG_F64, lg_shape_of(2, Bn, Hn), 7, 102, -1, 1)};
    double *h = malloc((size_t)(Bn * Hn) * sizeof(double)), *c = malloc((size_t)(Bn * Hn) * sizeof(double));
    double *hn = malloc((size_t)(Bn * Hn) * sizeof(double)), *xa = malloc((size_t)G * sizeof(double));
    double *ha = malloc((size_t)G * sizeof(double)), loss = 0;
    bool *seen = calloc((size_t)Bn, sizeof *seen); /* a valid step has run (LG_RNN_REPEAT) */
    for (int64_t i = 0; i < Bn * Hn; i++) h[i] = lg_tensor_get(in[1], i), c[i] = gru ? 0 : lg_tensor_get(in[2], i);
    for (int64_t s = 0; s < Tn; s++) {
        int64_t t = flags & LG_RNN_REVERSE ? Tn - 1 - s : s;
        for (int64_t b = 0; b < Bn; b++) {
            bool valid = !(flags & LG_RNN_MASK) || parts_mask(t, b);
            /* the gates' pre-activations from x (with b, or b's input row) and from h (the GRU's recurrent row) */
            for (int64_t j = 0; j < G; j++) {
                xa[j] = in[5] ? lg_tensor_get(in[5], j) : 0;
                ha[j] = in[5] && gru ? lg_tensor_get(in[5], G + j) : 0;
                for (int64_t k = 0; k < In; k++)
                    xa[j] += lg_tensor_get(in[0], (t * Bn + b) * In + k) * lg_tensor_get(in[3], k * G + j);
                for (int64_t k = 0; k < Hn; k++) {
                    double hm = h[b * Hn + k] * (in[7] ? lg_tensor_get(in[7], b * Hn + k) : 1);
                    ha[j] += hm * lg_tensor_get(in[4], k * G + j);
                }
            }
            for (int64_t u = 0; u < Hn; u++) {
                double y;
                if (gru) {
                    double zg = 1 / (1 + exp(-(xa[u] + ha[u]))), rg = 1 / (1 + exp(-(xa[Hn + u] + ha[Hn + u])));
                    double hh = tanh(xa[2 * Hn + u] + rg * ha[2 * Hn + u]);
                    y = zg * h[b * Hn + u] + (1 - zg) * hh;
                } else {
                    double gt[4];
                    for (int q = 0; q < 4; q++) {
                        double a = xa[q * Hn + u] + ha[q * Hn + u];
                        gt[q] = q == 2 ? tanh(a) : 1 / (1 + exp(-a));
                    }
                    double cn = gt[1] * c[b * Hn + u] + gt[0] * gt[2];
                    y = gt[3] * tanh(cn);
                    if (valid) c[b * Hn + u] = cn;
                }
                hn[b * Hn + u] = valid ? y : h[b * Hn + u];
                double out = valid ? y : (flags & LG_RNN_REPEAT) && seen[b] ? h[b * Hn + u] : 0;
                loss += out * lg_tensor_get(w[0], (t * Bn + b) * Hn + u);
            }
            seen[b] = seen[b] || valid;
        }
        memcpy(h, hn, (size_t)(Bn * Hn) * sizeof(double));
    }
    for (int64_t i = 0; i < Bn * Hn; i++)
        loss += h[i] * lg_tensor_get(w[1], i) + (gru ? 0 : c[i] * lg_tensor_get(w[2], i));
    for (int k = 0; k < 3; k++) lg_tensor_free(w[k]);
    free(h), free(c), free(hn), free(xa), free(ha), free(seen);
    return loss;
}

/* The unit split (f64, 2 parts) of an LSTM and a GRU (reset_after) against
 * reference_loss: every output within 1e-12 of it, and every gradient's
 * product with a random direction within 1e-6 of the loss's central
 * difference along it. _i: {LSTM, GRU} x {plain, bias + reverse + mask +
 * recurrent dropout + repeat}. */
START_TEST(test_unit_parts_reference)
{
    const variant *v = &variants[_i / 2 ? 3 : 2];
    bool gru = v->fused == LG_RNN_GRU, full = _i % 2;
    unsigned flags = full ? LG_RNN_BIAS | LG_RNN_REVERSE | LG_RNN_MASK | LG_RNN_HMASK | LG_RNN_REPEAT : 0;
    sizes z = {3, 21, 8, 264};
    int64_t G = (gru ? 3 : 4) * z.H;
    lg_tensor *out[12] = {0};
    int n = run_parts_as(v, LG_F64, flags, z, 2, true, out), n_out = gru ? 2 : 3;
    lg_shape shp[8] = {lg_shape_of(3, z.T, z.B, z.I), lg_shape_of(2, z.B, z.H), lg_shape_of(2, z.B, z.H),
                       lg_shape_of(2, z.I, G), lg_shape_of(2, z.H, G),
                       gru ? lg_shape_of(2, 2, G) : lg_shape_of(1, G), lg_shape_of(2, z.T, z.B),
                       lg_shape_of(2, z.B, z.H)};
    lg_tensor *in[8] = {0};
    for (int k = 0; k < 6; k++)
        in[k] = (k == 5 && !full) || (k == 2 && gru)
                    ? NULL
                    : lg_test_uniform(LG_F64, shp[k], 31, (uint64_t)k, k == 3 || k == 4 ? -0.4 : -1,
                                      k == 3 || k == 4 ? 0.4 : 1);
    if (full) in[7] = test_mask(LG_F64, shp[7], 3);
    /* the outputs: their weighted sum */
    lg_tensor *w[3] = {lg_test_uniform(LG_F64, lg_tensor_shape(out[0]), 7, 100, -1, 1),
                       lg_test_uniform(LG_F64, lg_tensor_shape(out[1]), 7, 101, -1, 1),
                       lg_test_uniform(LG_F64, lg_shape_of(2, z.B, z.H), 7, 102, -1, 1)};
    double sum = 0;
    for (int k = 0; k < n_out; k++)
        for (int64_t i = 0; i < lg_tensor_numel(out[k]); i++) sum += lg_tensor_get(out[k], i) * lg_tensor_get(w[k], i);
    double ref = reference_loss(v->fused, in, flags, z);
    ck_assert_msg(fabs(sum - ref) <= 1e-12 * (1 + fabs(ref)), "%s flags %u: loss %.17g, reference %.17g", v->name,
                  flags, sum, ref);
    for (int k = 0, g = n_out; k < 8; k++) {
        if (!in[k]) continue;
        lg_tensor *d = lg_test_uniform(LG_F64, shp[k], 13, (uint64_t)k, -1, 1);
        double dot = 0, eps = 1e-6, up, down;
        for (int64_t i = 0; i < lg_tensor_numel(d); i++) dot += lg_tensor_get(out[g], i) * lg_tensor_get(d, i);
        for (int64_t i = 0; i < lg_tensor_numel(d); i++)
            lg_tensor_set(in[k], i, lg_tensor_get(in[k], i) + eps * lg_tensor_get(d, i));
        up = reference_loss(v->fused, in, flags, z);
        for (int64_t i = 0; i < lg_tensor_numel(d); i++)
            lg_tensor_set(in[k], i, lg_tensor_get(in[k], i) - 2 * eps * lg_tensor_get(d, i));
        down = reference_loss(v->fused, in, flags, z);
        for (int64_t i = 0; i < lg_tensor_numel(d); i++)
            lg_tensor_set(in[k], i, lg_tensor_get(in[k], i) + eps * lg_tensor_get(d, i));
        double fd = (up - down) / (2 * eps);
        ck_assert_msg(fabs(fd - dot) <= 1e-6 * (1 + fabs(fd)), "%s flags %u: input %d: gradient . d %.12g, central "
                      "difference %.12g", v->name, flags, k, dot, fd);
        lg_tensor_free(d);
        g++;
    }
    for (int k = 0; k < 8; k++) lg_tensor_free(in[k]);
    for (int k = 0; k < 3; k++) lg_tensor_free(w[k]);
    for (int k = 0; k < n; k++) lg_tensor_free(out[k]);
}
END_TEST

/* A program that fetches no gradient of a fused loop keeps no workspace for
 * it (the rnn node is forward-only), plans less memory, and computes the
 * same values as the training program (to the bit where the GEMM splits
 * exactly, gemm_pieces_exact): _i enumerates variant x {f32, f64} x
 * {plain, masked and reversed}, with 1 and 2 parts. */
START_TEST(test_forward_only)
{
    const variant *v = &variants[_i / 4];
    lg_dtype dt = _i % 2 ? LG_F64 : LG_F32;
    bool odd = (_i / 2) % 2;
    model m;
    model_build(&m, v, dt, (model_opts){.bias = true, .reverse = odd, .masked = odd});
    lg_value fetch[1 + 6];
    fetch[0] = m.loss_loop;
    ck_assert_msg(lg_grad(m.g, m.loss_loop, m.wrt, m.n_wrt, fetch + 1) == LG_OK, "%s", lg_last_error());
    lg_program *fwd = NULL, *train = NULL;
    ck_assert_msg(lg_program_compile(m.g, m.feeds, m.n_feeds, fetch, 1, &fwd) == LG_OK, "%s", lg_last_error());
    ck_assert_msg(lg_program_compile(m.g, m.feeds, m.n_feeds, fetch, 1 + m.n_wrt, &train) == LG_OK, "%s",
                  lg_last_error());
    char *rf = lg_program_report(fwd), *rt = lg_program_report(train);
    ck_assert_msg(strstr(rf, "forward only: workspace 0.00 MiB") && !strstr(rf, "saved for its gradient"), "%s", rf);
    ck_assert_msg(strstr(rt, "saved for its gradient") && !strstr(rt, "forward only"), "%s", rt);
    free(rf), free(rt);
    ck_assert_uint_lt(lg_program_peak_bytes(fwd), lg_program_peak_bytes(train));
    /* the training program projects every step's input at once, the
     * forward-only one step by step: the same bits where the GEMM gives a
     * row the same bits in a product of B rows as of T B */
    int gh = lg_rnn_cell_gates(v->fused) * H;
    bool exact = gemm_pieces_exact(dt, T * B, I, gh, T, B) && gemm_splits_exactly(dt, B, H, gh, 2);
    for (int parts = 1; parts <= 2; parts++) {
        lg_tensor *of[1] = {0}, *ot[7] = {0};
        lg_cpu_threads_force(parts);
        lg_status sf = lg_program_run(fwd, m.feeds, m.n_feeds, of);
        lg_status sr = lg_program_run(train, m.feeds, m.n_feeds, ot);
        lg_cpu_threads_force(0);
        ck_assert_msg(sf == LG_OK && sr == LG_OK, "%s", lg_last_error());
        double f = lg_tensor_get(of[0], 0), t = lg_tensor_get(ot[0], 0);
        ck_assert_msg(f == t || (!exact && fabs(f - t) <= 1e-5 * fmax(1, fabs(t))),
                      "%s %s, %d parts: forward-only %.17g, training %.17g (%s)", v->name, lg_dtype_name(dt), parts,
                      f, t, exact ? "the GEMM splits exactly" : "the GEMM does not split exactly");
        lg_tensor_free(of[0]);
        for (int k = 0; k < 1 + m.n_wrt; k++) lg_tensor_free(ot[k]);
    }
    lg_program_free(fwd);
    lg_program_free(train);
    model_free(&m);
}
END_TEST

static Suite *rnn_fused_suite(void)
{
    Suite *s = suite_create("rnn_fused");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_equal_to_loop_f64, 0, N_VARIANTS * 8);
    tcase_add_loop_test(tc, test_matched_equal_to_loop, 0, N_VARIANTS * 8);
    tcase_add_loop_test(tc, test_equal_to_loop_f32, 0, N_VARIANTS);
    tcase_add_loop_test(tc, test_dropout_equal_to_loop, 0, N_VARIANTS * 4);
    tcase_add_loop_test(tc, test_repeat_equal_to_loop, 0, N_VARIANTS * 4);
    tcase_add_test(tc, test_matched_hand_lstm);
    tcase_add_loop_test(tc, test_gradcheck, 0, N_VARIANTS);
    tcase_add_test(tc, test_bad_shapes);
    tcase_add_test(tc, test_merged_errors);
    tcase_add_test(tc, test_fuse_flags_from_gradients);
    tcase_add_loop_test(tc, test_parts_equal_bits, 0, N_VARIANTS * 4);
    tcase_add_loop_test(tc, test_forward_only, 0, N_VARIANTS * 4);
    tcase_add_loop_test(tc, test_unit_parts_forward_only, 0, 8);
    tcase_add_loop_test(tc, test_unit_parts_reference, 0, 4);
    suite_add_tcase(s, tc);
    return s;
}

/* The suite tests the hand-fused kernels: oneDNN's primitives, which the
 * table picks for some f32 layers on one thread (as under CI's
 * OPENBLAS_NUM_THREADS=1), have their own suites (rnn_impl, dnnl_rnn). */
int main(void)
{
    if (lg_cpu_rnn_impl_force(LG_RNN_IMPL_FUSED)) return 1;
    return lg_check_run(rnn_fused_suite());
}
