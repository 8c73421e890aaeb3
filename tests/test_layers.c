/*
 * test_layers.c — the Keras-style layers (layers.h) through their public API.
 *
 * Gradients: a table of rnn configurations (cell kind x options), each
 * gradchecked in f64 with respect to the cell's weights, x and (where given)
 * the initial states. Semantics: masking, go_backwards, Bidirectional and
 * initial_state are compared numerically with the same layer run on
 * truncated, reversed or split inputs, which pins down Keras's meaning of
 * each option independently of how the layer implements it.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "graph/loopgrad.h"

#define B 3
#define T 4
#define F 2
#define U 3

static const int LENGTHS[B] = {4, 2, 1};

/* ---- helpers ------------------------------------------------------------------ */

static lg_tensor *rand_tensor(lg_shape s, uint64_t key) { return lg_test_uniform(LG_F64, s, 77, key, -1, 1); }

static lg_tensor *i32_tensor(int n, const int *v)
{
    lg_tensor *t = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_I32, lg_shape_of(1, n), &t), LG_OK);
    for (int i = 0; i < n; i++) lg_tensor_set(t, i, v[i]);
    return t;
}

static lg_tensor *run1(lg_graph *gr, const lg_feed *feeds, int n, lg_value v) { return lg_test_run1(gr, feeds, n, v); }

/* x [b, t, f] (row-major) sliced to example b, steps [t0, t0 + n), optionally
 * reversed in time, as a new [1, n, F] tensor. */
static lg_tensor *piece(const lg_tensor *x, int b, int t0, int n, bool reversed)
{
    lg_shape s = lg_tensor_shape(x);
    int steps = (int)s.dims[1], f = (int)s.dims[2];
    lg_tensor *p = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_F64, lg_shape_of(3, 1, n, f), &p), LG_OK);
    for (int j = 0; j < n; j++) {
        int t = reversed ? t0 + n - 1 - j : t0 + j;
        for (int k = 0; k < f; k++) lg_tensor_set(p, (int64_t)j * f + k, lg_tensor_get(x, ((int64_t)b * steps + t) * f + k));
    }
    return p;
}

/* sum(y * w) + sum(y^2) / 2 with w [n] along the last axis: a scalar whose
 * gradient differs per element and does not need y's dims. */
static lg_value test_loss(lg_graph *g, lg_value y)
{
    lg_shape s = lg_value_shape(y);
    int n = (int)s.dims[s.rank - 1];
    lg_tensor *w = rand_tensor(lg_shape_of(1, n), 5);
    lg_value wv = lg_constant(g, "w", w);
    lg_tensor_free(w);
    return lg_add(lg_sum(lg_mul(y, wv), NULL, 0, false), lg_scale(lg_sum(lg_square(y), NULL, 0, false), 0.5));
}

static void expect_close(const lg_tensor *a, const lg_tensor *b, double tol, const char *what)
{
    ck_assert_int_eq(lg_tensor_numel(a), lg_tensor_numel(b));
    for (int64_t i = 0; i < lg_tensor_numel(a); i++) {
        double x = lg_tensor_get(a, i), y = lg_tensor_get(b, i);
        ck_assert_msg(fabs(x - y) <= tol * (1 + fabs(y)), "%s[%lld]: %.12g vs %.12g", what, (long long)i, x, y);
    }
}

/* ---- gradcheck table ------------------------------------------------------------- */

typedef struct rnn_case {
    const char *name;
    lg_cell_kind kind;
    bool seq, masked, backwards, init, dropout, time_major, unknown_t;
} rnn_case;

#define ROWS_FOR(kind, K)                                                                         \
    {K " last", kind, .seq = false},                                                                          \
    {K " sequences", kind, .seq = true},                                                          \
    {K " masked sequences", kind, .seq = true, .masked = true},                                   \
    {K " masked last", kind, .masked = true},                                                     \
    {K " go_backwards", kind, .seq = true, .backwards = true},                                    \
    {K " go_backwards masked", kind, .seq = true, .backwards = true, .masked = true},             \
    {K " initial_state masked", kind, .init = true, .masked = true},                              \
    {K " dropout", kind, .seq = true, .dropout = true},                                           \
    {K " time_major masked", kind, .seq = true, .masked = true, .time_major = true},              \
    {K " unknown T masked", kind, .seq = true, .masked = true, .unknown_t = true}

static const rnn_case RNN_CASES[] = {
    ROWS_FOR(LG_CELL_SIMPLE_RNN, "simple_rnn"),
    ROWS_FOR(LG_CELL_LSTM, "lstm"),
    ROWS_FOR(LG_CELL_GRU, "gru"),
};

START_TEST(rnn_gradcheck)
{
    const rnn_case *c = &RNN_CASES[_i];
    lg_graph *g = lg_graph_new();
    lg_cell *cell = lg_test_cell(g, "cell", c->kind, F, U, 3 + (uint64_t)_i);
    lg_shape xs = c->time_major ? lg_shape_of(3, T, B, F) : lg_shape_of(3, B, c->unknown_t ? -1 : T, F);
    lg_value x = lg_input(g, "x", LG_F64, xs);
    lg_value len = lg_input(g, "len", LG_I32, lg_shape_of(1, B));
    lg_value h0[2] = {lg_input(g, "h0", LG_F64, lg_shape_of(2, B, U)), lg_input(g, "c0", LG_F64, lg_shape_of(2, B, U))};
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = c->seq;
    o.go_backwards = c->backwards;
    o.time_major = c->time_major;
    if (c->masked) o.lengths = len;
    if (c->init) o.initial_state = h0, o.n_initial_state = lg_cell_state_count(cell);
    if (c->dropout) o.dropout = 0.25, o.recurrent_dropout = 0.4, o.training = true;
    lg_rnn_result r;
    ck_assert_msg(lg_rnn(g, NULL, cell, x, o, &r) == LG_OK, "%s: %s", c->name, lg_last_error());
    lg_value loss = test_loss(g, r.output);

    lg_tensor *xt = rand_tensor(c->time_major ? lg_shape_of(3, T, B, F) : lg_shape_of(3, B, T, F), 1);
    lg_tensor *lt = i32_tensor(B, LENGTHS);
    lg_tensor *h0t = rand_tensor(lg_shape_of(2, B, U), 2), *c0t = rand_tensor(lg_shape_of(2, B, U), 3);
    lg_tensor *dm = NULL, *rdm = NULL;
    lg_feed feeds[6] = {{x, xt}};
    int nf = 1;
    if (c->masked) feeds[nf++] = (lg_feed){len, lt};
    if (c->init) {
        feeds[nf++] = (lg_feed){h0[0], h0t};
        if (lg_cell_state_count(cell) == 2) feeds[nf++] = (lg_feed){h0[1], c0t};
    }
    if (c->dropout) {
        ck_assert(lg_value_ok(r.dropout_mask) && lg_value_ok(r.recurrent_dropout_mask));
        lg_tensor_new(LG_F64, lg_shape_of(2, B, F), &dm);
        lg_tensor_new(LG_F64, lg_shape_of(2, B, U), &rdm);
        lg_dropout_mask_fill(dm, 0.25, 9, 0);
        lg_dropout_mask_fill(rdm, 0.4, 9, 1);
        feeds[nf++] = (lg_feed){r.dropout_mask, dm};
        feeds[nf++] = (lg_feed){r.recurrent_dropout_mask, rdm};
    }
    lg_value wrt[6] = {lg_cell_kernel(cell), lg_cell_recurrent_kernel(cell), lg_cell_bias(cell), x};
    int nw = 4;
    if (c->init)
        for (int k = 0; k < lg_cell_state_count(cell); k++) wrt[nw++] = h0[k];
    lg_gradcheck_report rep;
    lg_status s = lg_gradcheck(g, loss, wrt, nw, feeds, nf, lg_gradcheck_opts_default(), &rep);
    ck_assert_msg(s == LG_OK, "%s: %s", c->name, lg_last_error());
    ck_assert_msg(rep.passed, "%s: worst %s[%lld] analytic %.10g numeric %.10g", c->name, rep.worst_name,
                  rep.worst_index, rep.analytic, rep.numeric);
    ck_assert(rep.checked > 30);
    lg_tensor_free(xt), lg_tensor_free(lt), lg_tensor_free(h0t), lg_tensor_free(c0t);
    lg_tensor_free(dm), lg_tensor_free(rdm);
    lg_cell_free(cell);
    lg_graph_free(g);
}
END_TEST

/* ---- semantics ------------------------------------------------------------------- */

/* A layer on x [-1, -1, F] (unmasked, return_sequences and states) sharing
 * cell: the reference that masked and reversed runs are compared with. */
typedef struct ref_layer {
    lg_value x, seq, states[2];
    int n_states;
} ref_layer;

static ref_layer ref_new(lg_graph *g, lg_cell *cell, const char *name)
{
    ref_layer r = {.x = lg_input(g, name, LG_F64, lg_shape_of(3, -1, -1, F))};
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true;
    lg_rnn_result res;
    ck_assert_msg(lg_rnn(g, name, cell, r.x, o, &res) == LG_OK, "%s", lg_last_error());
    r.seq = res.output;
    r.n_states = res.n_states;
    for (int k = 0; k < res.n_states; k++) r.states[k] = res.states[k];
    return r;
}

/* Run ref on p [1, n, F]: out[0] the sequence [1, n, U], out[1..] the states. */
static void ref_run(lg_graph *g, const ref_layer *r, const lg_tensor *p, lg_tensor **out)
{
    lg_value f[3] = {r->seq, r->states[0], r->states[1]};
    for (int k = 0; k < 3; k++) out[k] = NULL;
    lg_feed feed = {r->x, p};
    lg_status s = lg_graph_run(g, &feed, 1, f, 1 + r->n_states, out);
    ck_assert_msg(s == LG_OK, "%s", lg_last_error());
}

static void free3(lg_tensor **t) { lg_tensor_free(t[0]), lg_tensor_free(t[1]), lg_tensor_free(t[2]); }

static const lg_cell_kind KINDS[3] = {LG_CELL_SIMPLE_RNN, LG_CELL_LSTM, LG_CELL_GRU};

/* Masked: the valid outputs and the final states equal an unmasked run on
 * the truncated example; past its length an output repeats the last valid
 * one (Keras 3's default) or is zero (zero_output_for_mask), and the last
 * output is the state at the last valid step (with zero_output_for_mask:
 * the last step's output, zero when padded). With go_backwards the padded
 * steps come first: they emit zeros (no valid output before them), then
 * the run on the truncated example reversed. */
START_TEST(masking_matches_truncation)
{
    for (int v = 0; v < 4; v++) {
        bool back = v & 1, zero = v & 2;
        lg_graph *g = lg_graph_new();
        lg_cell *cell = lg_test_cell(g, "cell", KINDS[_i], F, U, 11);
        lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, -1, -1, F));
        lg_value len = lg_input(g, "len", LG_I32, lg_shape_of(1, -1));
        lg_rnn_opts o = lg_rnn_opts_default();
        o.return_sequences = true, o.return_state = true, o.lengths = len, o.go_backwards = back;
        o.zero_output_for_mask = zero;
        lg_rnn_result seq, last;
        ck_assert_int_eq(lg_rnn(g, NULL, cell, x, o, &seq), LG_OK);
        o.return_sequences = false;
        ck_assert_int_eq(lg_rnn(g, "last", cell, x, o, &last), LG_OK);
        ref_layer ref = ref_new(g, cell, "ref");

        lg_tensor *xt = rand_tensor(lg_shape_of(3, B, T, F), 21), *lt = i32_tensor(B, LENGTHS);
        lg_feed feeds[2] = {{x, xt}, {len, lt}};
        lg_value fetch[4] = {seq.output, last.output, seq.states[0], seq.states[1]};
        lg_tensor *out[4] = {NULL};
        ck_assert_int_eq(lg_graph_run(g, feeds, 2, fetch, 2 + seq.n_states, out), LG_OK);
        for (int b = 0; b < B; b++) {
            int n = LENGTHS[b];
            lg_tensor *p = piece(xt, b, 0, n, back), *ro[3];
            ref_run(g, &ref, p, ro);
            for (int t = 0; t < T; t++)
                for (int u = 0; u < U; u++) {
                    double got = lg_tensor_get(out[0], ((int64_t)b * T + t) * U + u);
                    /* forward: valid steps first; go_backwards: padding first */
                    int j = back ? t - (T - n) : t;
                    if (!zero && j >= n) j = n - 1;
                    double want = j >= 0 && j < n ? lg_tensor_get(ro[0], (int64_t)j * U + u) : 0.0;
                    ck_assert_msg(fabs(got - want) < 1e-12, "kind %d back %d b %d t %d u %d: %.12g vs %.12g", _i, back,
                                  b, t, u, got, want);
                }
            for (int k = 0; k < seq.n_states; k++)
                for (int u = 0; u < U; u++)
                    ck_assert(fabs(lg_tensor_get(out[2 + k], b * U + u) - lg_tensor_get(ro[1 + k], u)) < 1e-12);
            for (int u = 0; u < U; u++) { /* the last output: h at the last valid step */
                double want = zero && !back && n < T ? 0 : lg_tensor_get(ro[0], (int64_t)(n - 1) * U + u);
                ck_assert(fabs(lg_tensor_get(out[1], b * U + u) - want) < 1e-12);
            }
            lg_tensor_free(p), free3(ro);
        }
        for (int k = 0; k < 4; k++) lg_tensor_free(out[k]);
        lg_tensor_free(xt), lg_tensor_free(lt);
        lg_cell_free(cell);
        lg_graph_free(g);
    }
}
END_TEST

/* go_backwards equals the forward layer on the reversed input, with the
 * sequence in processing order (Keras). */
START_TEST(go_backwards_matches_reversed_input)
{
    lg_graph *g = lg_graph_new();
    lg_cell *cell = lg_test_cell(g, "cell", KINDS[_i], F, U, 12);
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F));
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true, o.go_backwards = true;
    lg_rnn_result r;
    ck_assert_int_eq(lg_rnn(g, NULL, cell, x, o, &r), LG_OK);
    ref_layer ref = ref_new(g, cell, "ref");
    lg_tensor *xt = rand_tensor(lg_shape_of(3, B, T, F), 22);
    lg_feed feed = {x, xt};
    lg_tensor *got = run1(g, &feed, 1, r.output), *st = run1(g, &feed, 1, r.states[0]);
    for (int b = 0; b < B; b++) {
        lg_tensor *p = piece(xt, b, 0, T, true), *ro[3];
        ref_run(g, &ref, p, ro);
        for (int i = 0; i < T * U; i++)
            ck_assert(fabs(lg_tensor_get(got, (int64_t)b * T * U + i) - lg_tensor_get(ro[0], i)) < 1e-12);
        for (int u = 0; u < U; u++) ck_assert(fabs(lg_tensor_get(st, b * U + u) - lg_tensor_get(ro[1], u)) < 1e-12);
        lg_tensor_free(p), free3(ro);
    }
    lg_tensor_free(got), lg_tensor_free(st), lg_tensor_free(xt);
    lg_cell_free(cell);
    lg_graph_free(g);
}
END_TEST

/* Bidirectional, masked, in every merge mode: the forward half is the
 * forward layer on the truncated example, the backward half at step t < len
 * is the backward cell run on the truncated example reversed, read at
 * len - 1 - t (aligned with forward time), and zero past len; the merge is
 * checked elementwise; without return_sequences the halves are the final
 * h's. The merged output is also gradchecked. */
START_TEST(bidirectional_merge_modes)
{
    static const lg_merge_mode modes[] = {LG_MERGE_CONCAT, LG_MERGE_SUM, LG_MERGE_MUL, LG_MERGE_AVE, LG_MERGE_NONE};
    for (int mi = 0; mi < 5; mi++)
        for (int seqs = 0; seqs < 2; seqs++) {
            lg_merge_mode m = modes[mi];
            lg_graph *g = lg_graph_new();
            lg_cell *fc = lg_test_cell(g, "fwd", KINDS[_i], F, U, 31), *bc = lg_test_cell(g, "bwd", KINDS[_i], F, U, 32);
            lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F));
            lg_value len = lg_input(g, "len", LG_I32, lg_shape_of(1, B));
            lg_rnn_opts o = lg_rnn_opts_default();
            o.return_sequences = seqs, o.lengths = len;
            lg_bidirectional_result r;
            ck_assert_msg(lg_bidirectional(g, NULL, fc, bc, x, m, o, &r) == LG_OK, "%s", lg_last_error());
            ck_assert(lg_value_ok(r.output) == (m != LG_MERGE_NONE));
            ref_layer rf = ref_new(g, fc, "ref_f"), rb = ref_new(g, bc, "ref_b");
            lg_tensor *xt = rand_tensor(lg_shape_of(3, B, T, F), 40 + (uint64_t)mi), *lt = i32_tensor(B, LENGTHS);
            lg_feed feeds[2] = {{x, xt}, {len, lt}};
            lg_value fetch[3] = {r.forward.output, r.backward.output, r.output};
            lg_tensor *out[3] = {NULL};
            ck_assert_int_eq(lg_graph_run(g, feeds, 2, fetch, m == LG_MERGE_NONE ? 2 : 3, out), LG_OK);
            int steps = seqs ? T : 1;
            for (int b = 0; b < B; b++) {
                int n = LENGTHS[b];
                lg_tensor *pf = piece(xt, b, 0, n, false), *pb = piece(xt, b, 0, n, true), *of[3], *ob[3];
                ref_run(g, &rf, pf, of);
                ref_run(g, &rb, pb, ob);
                for (int t = 0; t < steps; t++)
                    for (int u = 0; u < U; u++) {
                        double wf = seqs ? (t < n ? lg_tensor_get(of[0], (int64_t)t * U + u) : 0) : lg_tensor_get(of[1], u);
                        double wb = seqs ? (t < n ? lg_tensor_get(ob[0], (int64_t)(n - 1 - t) * U + u) : 0)
                                         : lg_tensor_get(ob[1], u);
                        int64_t i = ((int64_t)b * steps + t) * U + u;
                        double gf = lg_tensor_get(out[0], i), gb = lg_tensor_get(out[1], i);
                        ck_assert_msg(fabs(gf - wf) < 1e-12 && fabs(gb - wb) < 1e-12,
                                      "mode %d seq %d b %d t %d: fwd %.12g/%.12g bwd %.12g/%.12g", m, seqs, b, t, gf,
                                      wf, gb, wb);
                        double want = 0, got = 0;
                        switch (m) {
                        case LG_MERGE_CONCAT:
                            ck_assert(fabs(lg_tensor_get(out[2], ((int64_t)b * steps + t) * 2 * U + u) - gf) < 1e-15);
                            got = lg_tensor_get(out[2], ((int64_t)b * steps + t) * 2 * U + U + u), want = gb;
                            break;
                        case LG_MERGE_SUM: got = lg_tensor_get(out[2], i), want = gf + gb; break;
                        case LG_MERGE_MUL: got = lg_tensor_get(out[2], i), want = gf * gb; break;
                        case LG_MERGE_AVE: got = lg_tensor_get(out[2], i), want = (gf + gb) / 2; break;
                        default: break;
                        }
                        ck_assert_msg(fabs(got - want) < 1e-12, "mode %d merge %.12g vs %.12g", m, got, want);
                    }
                lg_tensor_free(pf), lg_tensor_free(pb), free3(of), free3(ob);
            }
            for (int k = 0; k < 3; k++) lg_tensor_free(out[k]);

            lg_value loss = m == LG_MERGE_NONE
                                ? lg_add(test_loss(g, r.forward.output), lg_scale(test_loss(g, r.backward.output), 0.7))
                                : test_loss(g, r.output);
            lg_value wrt[5] = {lg_cell_kernel(fc), lg_cell_recurrent_kernel(bc), lg_cell_bias(bc), lg_cell_kernel(bc), x};
            lg_gradcheck_report rep;
            ck_assert_int_eq(lg_gradcheck(g, loss, wrt, 5, feeds, 2, lg_gradcheck_opts_default(), &rep), LG_OK);
            ck_assert_msg(rep.passed, "mode %d seq %d: worst %s[%lld] %.10g vs %.10g", m, seqs, rep.worst_name,
                          rep.worst_index, rep.analytic, rep.numeric);
            lg_tensor_free(xt), lg_tensor_free(lt);
            lg_cell_free(fc), lg_cell_free(bc);
            lg_graph_free(g);
        }
}
END_TEST

/* Bidirectional initial states: forward first, then backward; the backward
 * half without masking is the go_backwards layer re-reversed. */
START_TEST(bidirectional_initial_state)
{
    lg_graph *g = lg_graph_new();
    lg_cell *fc = lg_test_cell(g, "fwd", LG_CELL_LSTM, F, U, 51), *bc = lg_test_cell(g, "bwd", LG_CELL_LSTM, F, U, 52);
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F));
    lg_value s[4];
    for (int k = 0; k < 4; k++) s[k] = lg_input(g, k % 2 ? "c0" : "h0", LG_F64, lg_shape_of(2, B, U));
    lg_rnn_opts o = lg_rnn_opts_default();
    o.initial_state = s, o.n_initial_state = 4;
    lg_bidirectional_result r;
    ck_assert_int_eq(lg_bidirectional(g, NULL, fc, bc, x, LG_MERGE_NONE, o, &r), LG_OK);
    lg_rnn_result rf, rb;
    o.n_initial_state = 2;
    ck_assert_int_eq(lg_rnn(g, "f", fc, x, o, &rf), LG_OK);
    o.initial_state = s + 2, o.go_backwards = true;
    ck_assert_int_eq(lg_rnn(g, "b", bc, x, o, &rb), LG_OK);
    lg_tensor *xt = rand_tensor(lg_shape_of(3, B, T, F), 61), *st[4];
    lg_feed feeds[5] = {{x, xt}};
    for (int k = 0; k < 4; k++) st[k] = rand_tensor(lg_shape_of(2, B, U), 62 + (uint64_t)k), feeds[1 + k] = (lg_feed){s[k], st[k]};
    lg_value fetch[8] = {r.forward.output, rf.output, r.backward.output, rb.output,
                         r.forward.states[1], rf.states[1], r.backward.states[1], rb.states[1]};
    lg_tensor *out[8] = {NULL};
    ck_assert_int_eq(lg_graph_run(g, feeds, 5, fetch, 8, out), LG_OK);
    for (int k = 0; k < 8; k += 2) expect_close(out[k], out[k + 1], 1e-13, "bidirectional vs layers");
    for (int k = 0; k < 8; k++) lg_tensor_free(out[k]);
    for (int k = 0; k < 4; k++) lg_tensor_free(st[k]);
    lg_tensor_free(xt);
    lg_cell_free(fc), lg_cell_free(bc);
    lg_graph_free(g);
}
END_TEST

/* initial_state: the run over steps [0, 2) hands its final states to a run
 * over [2, T) that must end where the run over all steps ends; explicit
 * zeros equal the default. */
START_TEST(initial_state_continues_a_run)
{
    lg_graph *g = lg_graph_new();
    lg_cell *cell = lg_test_cell(g, "cell", KINDS[_i], F, U, 13);
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F));
    lg_rnn_opts o = lg_rnn_opts_default();
    lg_rnn_result full, first, second, zeros;
    ck_assert_int_eq(lg_rnn(g, NULL, cell, x, o, &full), LG_OK);
    ck_assert_int_eq(lg_rnn(g, "first", cell, lg_slice(x, 1, 0, 2), o, &first), LG_OK);
    o.initial_state = first.states, o.n_initial_state = first.n_states;
    ck_assert_int_eq(lg_rnn(g, "second", cell, lg_slice(x, 1, 2, -1), o, &second), LG_OK);
    lg_tensor *zt = NULL;
    lg_tensor_new(LG_F64, lg_shape_of(2, B, U), &zt);
    lg_value z = lg_constant(g, "zeros", zt), zs[2] = {z, z};
    o.initial_state = zs;
    ck_assert_int_eq(lg_rnn(g, "zeros", cell, x, o, &zeros), LG_OK);
    lg_tensor *xt = rand_tensor(lg_shape_of(3, B, T, F), 23);
    lg_feed feed = {x, xt};
    lg_value fetch[3] = {full.output, second.output, zeros.output};
    lg_tensor *out[3] = {NULL};
    ck_assert_int_eq(lg_graph_run(g, &feed, 1, fetch, 3, out), LG_OK);
    expect_close(out[1], out[0], 1e-13, "continued run");
    expect_close(out[2], out[0], 0, "explicit zeros");
    for (int k = 0; k < 3; k++) lg_tensor_free(out[k]);
    lg_tensor_free(xt), lg_tensor_free(zt);
    lg_cell_free(cell);
    lg_graph_free(g);
}
END_TEST

/* Two stacked layers (LSTM with return_sequences into GRU): the result
 * equals the second layer fed with the first's fetched output, and the
 * stack gradchecks through both. */
START_TEST(stacked_layers)
{
    lg_graph *g = lg_graph_new();
    lg_cell *c1 = lg_test_cell(g, "l1", LG_CELL_LSTM, F, U, 14), *c2 = lg_test_cell(g, "l2", LG_CELL_GRU, U, 2, 15);
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F));
    lg_value len = lg_input(g, "len", LG_I32, lg_shape_of(1, B));
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true, o.lengths = len;
    lg_rnn_result r1, r2, r2b;
    ck_assert_int_eq(lg_rnn(g, "l1", c1, x, o, &r1), LG_OK);
    o.return_sequences = false;
    ck_assert_int_eq(lg_rnn(g, "l2", c2, r1.output, o, &r2), LG_OK);
    lg_value mid = lg_input(g, "mid", LG_F64, lg_shape_of(3, B, T, U));
    ck_assert_int_eq(lg_rnn(g, "l2b", c2, mid, o, &r2b), LG_OK);
    lg_tensor *xt = rand_tensor(lg_shape_of(3, B, T, F), 24), *lt = i32_tensor(B, LENGTHS);
    lg_feed feeds[3] = {{x, xt}, {len, lt}};
    lg_tensor *h1 = run1(g, feeds, 2, r1.output), *y = run1(g, feeds, 2, r2.output);
    feeds[2] = (lg_feed){mid, h1};
    lg_tensor *y2 = run1(g, feeds + 1, 2, r2b.output);
    expect_close(y, y2, 1e-14, "stack vs chained feeds");
    lg_value loss = test_loss(g, r2.output);
    lg_value wrt[5] = {lg_cell_kernel(c1), lg_cell_recurrent_kernel(c1), lg_cell_kernel(c2), lg_cell_bias(c2), x};
    lg_gradcheck_report rep;
    ck_assert_int_eq(lg_gradcheck(g, loss, wrt, 5, feeds, 2, lg_gradcheck_opts_default(), &rep), LG_OK);
    ck_assert_msg(rep.passed, "worst %s[%lld] %.10g vs %.10g", rep.worst_name, rep.worst_index, rep.analytic, rep.numeric);
    lg_tensor_free(h1), lg_tensor_free(y), lg_tensor_free(y2), lg_tensor_free(xt), lg_tensor_free(lt);
    lg_cell_free(c1), lg_cell_free(c2);
    lg_graph_free(g);
}
END_TEST

/* Dropout: masks exist only in training; a keep-everything input mask at
 * rate 0.5 is x scaled by 2, a zero recurrent mask cuts h_{t-1} out of the
 * SimpleRNN step (each output is one step from zeros), and the same masks
 * are used at every step. */
START_TEST(dropout_masks)
{
    lg_graph *g = lg_graph_new();
    lg_cell *cell = lg_test_cell(g, "cell", LG_CELL_SIMPLE_RNN, F, U, 16);
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F));
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true, o.dropout = 0.5, o.recurrent_dropout = 0.3;
    lg_rnn_result off, on, plain, one_step;
    ck_assert_int_eq(lg_rnn(g, NULL, cell, x, o, &off), LG_OK);
    ck_assert(!lg_value_ok(off.dropout_mask) && !lg_value_ok(off.recurrent_dropout_mask));
    o.training = true;
    ck_assert_int_eq(lg_rnn(g, "train", cell, x, o, &on), LG_OK);
    ck_assert(lg_value_ok(on.dropout_mask) && lg_value_ok(on.recurrent_dropout_mask));
    lg_rnn_opts p = lg_rnn_opts_default();
    p.return_sequences = true;
    ck_assert_int_eq(lg_rnn(g, "plain", cell, lg_scale(x, 2), p, &plain), LG_OK);
    lg_value xs = lg_input(g, "xs", LG_F64, lg_shape_of(3, B, 1, F));
    ck_assert_int_eq(lg_rnn(g, "one_step", cell, lg_scale(xs, 2), p, &one_step), LG_OK);

    lg_tensor *xt = rand_tensor(lg_shape_of(3, B, T, F), 25), *ones = NULL, *zeros = NULL;
    lg_tensor_new(LG_F64, lg_shape_of(2, B, F), &ones);
    lg_tensor_new(LG_F64, lg_shape_of(2, B, U), &zeros);
    lg_tensor_fill(ones, 1);
    lg_feed feeds[3] = {{x, xt}, {on.dropout_mask, ones}, {on.recurrent_dropout_mask, zeros}};
    lg_tensor *got = run1(g, feeds, 3, on.output), *want = run1(g, feeds, 1, off.output);
    lg_tensor *ref = run1(g, feeds, 1, plain.output);
    for (int t = 0; t < T; t++) {
        lg_tensor *pt = NULL;
        lg_tensor_new(LG_F64, lg_shape_of(3, B, 1, F), &pt);
        for (int b = 0; b < B; b++)
            for (int k = 0; k < F; k++) lg_tensor_set(pt, b * F + k, lg_tensor_get(xt, ((int64_t)b * T + t) * F + k));
        lg_feed f1 = {xs, pt};
        lg_tensor *st = run1(g, &f1, 1, one_step.output);
        for (int b = 0; b < B; b++)
            for (int u = 0; u < U; u++)
                ck_assert(fabs(lg_tensor_get(got, ((int64_t)b * T + t) * U + u) - lg_tensor_get(st, b * U + u)) < 1e-13);
        lg_tensor_free(st), lg_tensor_free(pt);
    }
    /* recurrent mask of ones scaled by 1/(1-0.3) differs from plain (the
     * scaling reaches h) while the input mask of ones equals x * 2 */
    lg_tensor_fill(zeros, 1);
    lg_tensor *scaled = run1(g, feeds, 3, on.output);
    double diff = 0;
    for (int64_t i = 0; i < lg_tensor_numel(ref); i++) diff += fabs(lg_tensor_get(scaled, i) - lg_tensor_get(ref, i));
    for (int i = 0; i < B * U; i++) /* step 0 has h_{-1} = 0: only the x scaling acts */
        ck_assert(fabs(lg_tensor_get(scaled, (i / U) * T * U + i % U) - lg_tensor_get(ref, (i / U) * T * U + i % U)) < 1e-13);
    ck_assert_msg(diff > 1e-3, "recurrent scaling has no effect (%g)", diff);

    lg_tensor *m = NULL;
    lg_tensor_new(LG_F32, lg_shape_of(1, 20000), &m);
    ck_assert_int_eq(lg_dropout_mask_fill(m, 0.3, 1, 2), LG_OK);
    double kept = 0;
    for (int i = 0; i < 20000; i++) {
        double v = lg_tensor_get(m, i);
        ck_assert(v == 0 || v == 1);
        kept += v;
    }
    ck_assert_msg(fabs(kept / 20000 - 0.7) < 0.02, "kept %g", kept / 20000);
    ck_assert_int_eq(lg_dropout_mask_fill(m, 1.0, 1, 2), LG_ERR_INVALID_ARGUMENT);
    lg_tensor_free(m);
    lg_tensor_free(got), lg_tensor_free(want), lg_tensor_free(ref), lg_tensor_free(scaled);
    lg_tensor_free(xt), lg_tensor_free(ones), lg_tensor_free(zeros);
    lg_cell_free(cell);
    lg_graph_free(g);
}
END_TEST

/* ---- unroll ------------------------------------------------------------------------ */

static int count_ops(const lg_graph *g, int from, const char *op)
{
    int n = 0;
    for (int i = from; i < lg_graph_node_count(g); i++) n += strcmp(lg_graph_node_op(g, i), op) == 0;
    return n;
}

/* unroll: an LSTM layer inlined per step (no loop node) gives the rolled
 * layer's outputs, final states and gradients (weights and x), plain,
 * masked, backwards and both, returning sequences or the last output. */
START_TEST(unroll_matches_loop)
{
    bool masked = _i & 1, back = _i & 2, seqs = _i & 4;
    lg_graph *g = lg_graph_new();
    lg_cell *cell = lg_test_cell(g, "cell", LG_CELL_LSTM, F, U, 71);
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, -1, T, F));
    lg_value len = lg_input(g, "len", LG_I32, lg_shape_of(1, -1));
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = seqs, o.go_backwards = back;
    if (masked) o.lengths = len;
    lg_rnn_result rolled, unrolled;
    ck_assert_int_eq(lg_rnn(g, NULL, cell, x, o, &rolled), LG_OK);
    int before = lg_graph_node_count(g);
    o.unroll = true;
    ck_assert_msg(lg_rnn(g, "unrolled", cell, x, o, &unrolled) == LG_OK, "%s", lg_last_error());
    ck_assert_int_eq(count_ops(g, 0, "loop"), 1);
    ck_assert_int_eq(count_ops(g, before, "loop"), 0);
    ck_assert_int_eq(unrolled.n_states, 2);

    lg_value wrt[4] = {lg_cell_kernel(cell), lg_cell_recurrent_kernel(cell), lg_cell_bias(cell), x}, gr[4], gu[4];
    ck_assert_int_eq(lg_grad(g, test_loss(g, rolled.output), wrt, 4, gr), LG_OK);
    ck_assert_int_eq(lg_grad(g, test_loss(g, unrolled.output), wrt, 4, gu), LG_OK);
    lg_tensor *xt = rand_tensor(lg_shape_of(3, B, T, F), 72), *lt = i32_tensor(B, LENGTHS);
    lg_feed feeds[2] = {{x, xt}, {len, lt}};
    lg_value fetch[14] = {rolled.output, unrolled.output, rolled.states[0], unrolled.states[0],
                          rolled.states[1], unrolled.states[1]};
    for (int k = 0; k < 4; k++) fetch[6 + 2 * k] = gr[k], fetch[7 + 2 * k] = gu[k];
    lg_tensor *out[14] = {NULL};
    ck_assert_msg(lg_graph_run(g, feeds, masked ? 2 : 1, fetch, 14, out) == LG_OK, "%s", lg_last_error());
    static const char *what[7] = {"output", "h", "c", "d kernel", "d recurrent_kernel", "d bias", "d x"};
    for (int k = 0; k < 14; k += 2) {
        ck_assert(lg_shape_equal(lg_tensor_shape(out[k]), lg_tensor_shape(out[k + 1])));
        expect_close(out[k + 1], out[k], 1e-12, what[k / 2]);
    }
    for (int k = 0; k < 14; k++) lg_tensor_free(out[k]);
    lg_tensor_free(xt), lg_tensor_free(lt);
    lg_cell_free(cell);
    lg_graph_free(g);
}
END_TEST

/* ---- stateful ---------------------------------------------------------------------- */

/* x [B, T, F] steps [t0, t0 + n) as a new [B, n, F] tensor. */
static lg_tensor *steps_of(const lg_tensor *x, int t0, int n)
{
    lg_tensor *p = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_F64, lg_shape_of(3, B, n, F), &p), LG_OK);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < n * F; j++) lg_tensor_set(p, ((int64_t)b * n) * F + j, lg_tensor_get(x, ((int64_t)b * T + t0) * F + j));
    return p;
}

/* out [B, n, u] equals steps [t0, t0 + n) of full [B, T, u]. */
static void expect_steps(const lg_tensor *out, const lg_tensor *full, int t0, int n, int u, const char *what)
{
    for (int b = 0; b < B; b++)
        for (int j = 0; j < n * u; j++) {
            double got = lg_tensor_get(out, (int64_t)b * n * u + j);
            double want = lg_tensor_get(full, ((int64_t)b * T + t0) * u + j);
            ck_assert_msg(fabs(got - want) <= 1e-12 * (1 + fabs(want)), "%s b %d j %d: %.12g vs %.12g", what, b, j, got,
                          want);
        }
}

/* Two stacked stateful layers (the kind, then an LSTM) run over steps
 * [0, 2) and then [2, T) give the stateless stack's outputs over all T steps
 * and its final states, which the states then hold; reset brings back the
 * first run. With batch_known x is [B, ?, F], else [?, ?, F] (the batch is
 * checked at compile). */
START_TEST(stateful_matches_one_run)
{
    for (int batch_known = 0; batch_known < 2; batch_known++) {
        lg_graph *g = lg_graph_new();
        lg_cell *c1 = lg_test_cell(g, "c1", KINDS[_i], F, U, 81), *c2 = lg_test_cell(g, "c2", LG_CELL_LSTM, U, 2, 82);
        lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, batch_known ? B : -1, -1, F));
        lg_rnn_opts o = lg_rnn_opts_default();
        o.return_sequences = true;
        lg_rnn_result f1, f2, s1, s2;
        ck_assert_int_eq(lg_rnn(g, "full1", c1, x, o, &f1), LG_OK);
        ck_assert_int_eq(lg_rnn(g, "full2", c2, f1.output, o, &f2), LG_OK);
        ck_assert(f1.state == NULL);
        o.stateful = true, o.batch_size = B;
        ck_assert_msg(lg_rnn(g, "s1", c1, x, o, &s1) == LG_OK, "%s", lg_last_error());
        ck_assert_int_eq(lg_rnn(g, "s2", c2, s1.output, o, &s2), LG_OK);
        ck_assert(s1.state && s2.state);
        ck_assert_int_eq(lg_rnn_state_count(s1.state), lg_cell_state_count(c1));
        ck_assert_int_eq(lg_rnn_state_count(s2.state), 2);
        ck_assert_str_eq(lg_value_name(lg_graph_find_param(g, "c1/kernel")), "c1/kernel");

        lg_tensor *xt = rand_tensor(lg_shape_of(3, B, T, F), 83), *xa = steps_of(xt, 0, 2), *xb = steps_of(xt, 2, T - 2);
        lg_feed feed = {x, xt};
        lg_value ff[5] = {f1.output, f2.output, f2.states[0], f2.states[1], f1.states[0]};
        lg_tensor *full[5] = {NULL};
        ck_assert_int_eq(lg_graph_run(g, &feed, 1, ff, 5, full), LG_OK);

        lg_rnn_state *sts[2] = {s1.state, s2.state};
        lg_value sf[4] = {s1.output, s2.output, s2.states[0], s2.states[1]};
        lg_tensor *a[4] = {NULL}, *b[4] = {NULL};
        feed.tensor = xa;
        ck_assert_msg(lg_rnn_state_run(g, sts, 2, &feed, 1, sf, 2, a) == LG_OK, "%s", lg_last_error());
        /* the states now hold the first piece's final states, nonzero */
        double mag = 0;
        for (int i = 0; i < B * U; i++) mag += fabs(lg_tensor_get(lg_rnn_state_tensor(s1.state, 0), i));
        ck_assert(mag > 0.1);
        feed.tensor = xb;
        ck_assert_int_eq(lg_rnn_state_run(g, sts, 2, &feed, 1, sf, 4, b), LG_OK);
        expect_steps(a[0], full[0], 0, 2, U, "layer 1, run 1");
        expect_steps(a[1], full[1], 0, 2, 2, "layer 2, run 1");
        expect_steps(b[0], full[0], 2, T - 2, U, "layer 1, run 2");
        expect_steps(b[1], full[1], 2, T - 2, 2, "layer 2, run 2");
        expect_close(b[2], full[2], 1e-12, "final h");
        expect_close(b[3], full[3], 1e-12, "final c");
        expect_close(lg_rnn_state_tensor(s2.state, 0), full[2], 1e-12, "held h");
        expect_close(lg_rnn_state_tensor(s2.state, 1), full[3], 1e-12, "held c");
        expect_close(lg_rnn_state_tensor(s1.state, 0), full[4], 1e-12, "held h of layer 1");

        /* reset: zeros, and the first piece again gives the first run */
        lg_rnn_state_reset(s1.state), lg_rnn_state_reset(s2.state);
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < B * 2; i++) ck_assert(lg_tensor_get(lg_rnn_state_tensor(s2.state, k), i) == 0);
        feed.tensor = xa;
        lg_tensor *c[2] = {NULL};
        ck_assert_int_eq(lg_rnn_state_run(g, sts, 2, &feed, 1, sf, 2, c), LG_OK);
        expect_close(c[0], a[0], 0, "after reset, layer 1");
        expect_close(c[1], a[1], 0, "after reset, layer 2");

        for (int k = 0; k < 5; k++) lg_tensor_free(full[k]);
        for (int k = 0; k < 4; k++) lg_tensor_free(a[k]), lg_tensor_free(b[k]);
        lg_tensor_free(c[0]), lg_tensor_free(c[1]);
        lg_tensor_free(xt), lg_tensor_free(xa), lg_tensor_free(xb);
        lg_rnn_state_free(s1.state), lg_rnn_state_free(s2.state);
        lg_cell_free(c1), lg_cell_free(c2);
        lg_graph_free(g);
    }
}
END_TEST

/* Without lg_rnn_state_run: lg_rnn_state_feeds and _fetches around a
 * compiled program and lg_rnn_state_update carry the states the same way,
 * here with lengths and go_backwards; update refuses a tensor of another
 * shape and leaves the states alone. */
START_TEST(stateful_by_hand)
{
    lg_graph *g = lg_graph_new();
    lg_cell *cell = lg_test_cell(g, "cell", LG_CELL_GRU, F, U, 84);
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, 2, F));
    lg_value len = lg_input(g, "len", LG_I32, lg_shape_of(1, B));
    lg_rnn_opts o = lg_rnn_opts_default();
    o.stateful = true, o.batch_size = B, o.lengths = len, o.go_backwards = true;
    lg_rnn_result r, h;
    ck_assert_int_eq(lg_rnn(g, NULL, cell, x, o, &r), LG_OK);
    ck_assert_int_eq(lg_rnn(g, "helper", cell, x, o, &h), LG_OK);
    lg_tensor *xt = rand_tensor(lg_shape_of(3, B, T, F), 85), *xa = steps_of(xt, 0, 2), *xb = steps_of(xt, 2, 2);
    const int lv[B] = {2, 1, 2};
    lg_tensor *lt = i32_tensor(B, lv);
    lg_feed feeds[3] = {{x, xa}, {len, lt}};
    int nf = 2, nv = 1;
    ck_assert_int_eq(lg_rnn_state_feeds(r.state, feeds, &nf), LG_OK);
    lg_value fetch[2] = {r.output};
    ck_assert_int_eq(lg_rnn_state_fetches(r.state, fetch, &nv), LG_OK);
    ck_assert_int_eq(nf, 3);
    ck_assert_int_eq(nv, 2);
    lg_program *p = NULL;
    ck_assert_int_eq(lg_program_compile(g, feeds, nf, fetch, nv, &p), LG_OK);
    lg_tensor *mine[2] = {NULL}, *theirs[2] = {NULL};
    for (int run = 0; run < 2; run++) {
        feeds[0].tensor = run ? xb : xa;
        nf = 2;
        lg_rnn_state_feeds(r.state, feeds, &nf);
        lg_tensor *out[2] = {NULL};
        ck_assert_int_eq(lg_program_run(p, feeds, nf, out), LG_OK);
        ck_assert_int_eq(lg_rnn_state_update(r.state, out + 1), LG_OK);
        mine[run] = out[0];
        lg_tensor_free(out[1]);
        ck_assert_int_eq(lg_rnn_state_run(g, &h.state, 1, feeds, 2, &h.output, 1, &theirs[run]), LG_OK);
        expect_close(mine[run], theirs[run], 0, "by hand vs lg_rnn_state_run");
        expect_close(lg_rnn_state_tensor(r.state, 0), lg_rnn_state_tensor(h.state, 0), 0, "held state");
    }
    /* the second run started from the first's states */
    ck_assert(fabs(lg_tensor_get(mine[1], 0) - lg_tensor_get(theirs[0], 0)) > 1e-6);
    lg_tensor *bad = NULL;
    lg_tensor_new(LG_F64, lg_shape_of(2, B + 1, U), &bad);
    lg_tensor *held = NULL;
    lg_tensor_clone(lg_rnn_state_tensor(r.state, 0), &held);
    ck_assert_int_eq(lg_rnn_state_update(r.state, &bad), LG_ERR_SHAPE);
    ck_assert_msg(strstr(lg_last_error(), "final state 0 is [4, 3], the state 'cell/state_h' is [3, 3]"), "%s",
                  lg_last_error());
    lg_tensor *f32 = NULL, *none[1] = {NULL};
    lg_tensor_new(LG_F32, lg_shape_of(2, B, U), &f32);
    ck_assert_int_eq(lg_rnn_state_update(r.state, &f32), LG_ERR_DTYPE);
    ck_assert_msg(strstr(lg_last_error(), "final state 0 is f32, the state 'cell/state_h' is f64"), "%s",
                  lg_last_error());
    ck_assert_int_eq(lg_rnn_state_update(r.state, none), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_rnn_state_update(r.state, NULL), LG_ERR_INVALID_ARGUMENT);
    lg_tensor_free(f32);
    lg_tensor *fetched = NULL;
    ck_assert_int_eq(lg_rnn_state_run(g, &r.state, 1, NULL, 0, &r.output, 0, &fetched), LG_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(lg_last_error(), "NULL array or bad count"), "%s", lg_last_error());
    ck_assert_int_eq(lg_rnn_state_run(NULL, &r.state, 1, NULL, 0, &r.output, 1, &fetched), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(fetched);
    expect_close(lg_rnn_state_tensor(r.state, 0), held, 0, "after a refused update");
    ck_assert(lg_rnn_state_tensor(r.state, 1) == NULL && lg_rnn_state_tensor(NULL, 0) == NULL);
    ck_assert_int_eq(lg_rnn_state_count(NULL), 0);
    lg_rnn_state_reset(NULL), lg_rnn_state_free(NULL);
    lg_tensor_free(bad), lg_tensor_free(held);
    for (int k = 0; k < 2; k++) lg_tensor_free(mine[k]), lg_tensor_free(theirs[k]);
    lg_program_free(p);
    lg_tensor_free(xt), lg_tensor_free(xa), lg_tensor_free(xb), lg_tensor_free(lt);
    lg_rnn_state_free(r.state), lg_rnn_state_free(h.state);
    lg_cell_free(cell);
    lg_graph_free(g);
}
END_TEST

/* A batch other than batch_size fails the run and leaves the states as
 * they were: with x [?, ?, F] at compile, naming the layer and both sizes
 * (a batch of 1, which would broadcast, too); with x [B, ?, F] at the
 * feed, naming x. A run without the state feeds names the state input. */
START_TEST(stateful_batch_change)
{
    lg_graph *g = lg_graph_new();
    lg_cell *cell = lg_test_cell(g, "cell", LG_CELL_LSTM, F, U, 86);
    lg_value xd = lg_input(g, "xd", LG_F64, lg_shape_of(3, -1, -1, F));
    lg_value xs = lg_input(g, "xs", LG_F64, lg_shape_of(3, B, -1, F));
    lg_rnn_opts o = lg_rnn_opts_default();
    o.stateful = true, o.batch_size = B;
    lg_rnn_result rd, rs;
    ck_assert_int_eq(lg_rnn(g, "dyn", cell, xd, o, &rd), LG_OK);
    ck_assert_int_eq(lg_rnn(g, "stat", cell, xs, o, &rs), LG_OK);
    lg_tensor *ok = rand_tensor(lg_shape_of(3, B, T, F), 87);
    lg_feed f = {xd, ok};
    lg_tensor *out = NULL;
    ck_assert_int_eq(lg_rnn_state_run(g, &rd.state, 1, &f, 1, &rd.output, 1, &out), LG_OK);
    lg_tensor *held = NULL;
    lg_tensor_clone(lg_rnn_state_tensor(rd.state, 1), &held);
    const int bad_batch[2] = {B + 1, 1};
    for (int k = 0; k < 2; k++) {
        lg_tensor *xt = rand_tensor(lg_shape_of(3, bad_batch[k], T, F), 88), *o2 = NULL;
        f = (lg_feed){xd, xt};
        ck_assert_int_eq(lg_rnn_state_run(g, &rd.state, 1, &f, 1, &rd.output, 1, &o2), LG_ERR_SHAPE);
        ck_assert(o2 == NULL);
        char want[96];
        snprintf(want, sizeof want, "stateful layer 'dyn': batch %d, its states hold %d rows", bad_batch[k], B);
        ck_assert_msg(strstr(lg_last_error(), want), "%s", lg_last_error());
        expect_close(lg_rnn_state_tensor(rd.state, 1), held, 0, "state after a failed run");
        f = (lg_feed){xs, xt};
        ck_assert_int_eq(lg_rnn_state_run(g, &rs.state, 1, &f, 1, &rs.output, 1, &o2), LG_ERR_FEED);
        ck_assert_msg(strstr(lg_last_error(), "feed for input 'xs'"), "%s", lg_last_error());
        lg_tensor_free(xt);
    }
    /* a bidirectional layer's directions hold states each: the first named */
    lg_bidirectional_result rb;
    ck_assert_int_eq(lg_bidirectional(g, "bi", cell, cell, xd, LG_MERGE_SUM, o, &rb), LG_OK);
    lg_tensor *x1 = rand_tensor(lg_shape_of(3, 1, T, F), 89), *o1 = NULL;
    f = (lg_feed){xd, x1};
    ck_assert_int_eq(lg_rnn_state_run(g, (lg_rnn_state *[2]){rb.forward.state, rb.backward.state}, 2, &f, 1,
                                      &rb.output, 1, &o1), LG_ERR_SHAPE);
    ck_assert_msg(strstr(lg_last_error(), "stateful layer 'bi/forward': batch 1, its states hold 3 rows"), "%s",
                  lg_last_error());
    lg_tensor_free(x1);
    lg_rnn_state_free(rb.forward.state), lg_rnn_state_free(rb.backward.state);
    f = (lg_feed){xd, ok};
    lg_tensor *o3 = NULL;
    ck_assert_int_eq(lg_graph_run(g, &f, 1, &rd.output, 1, &o3), LG_ERR_FEED);
    ck_assert_msg(strstr(lg_last_error(), "missing feed for input 'dyn/state_h'"), "%s", lg_last_error());
    /* states of another graph, given twice, NULL */
    lg_graph *g2 = lg_graph_new();
    lg_rnn_state *two[2] = {rd.state, rd.state};
    ck_assert_int_eq(lg_rnn_state_run(g2, &rd.state, 1, &f, 1, &rd.output, 1, &o3), LG_ERR_INVALID_ARGUMENT);
    ck_assert(strstr(lg_last_error(), "of another graph"));
    ck_assert_int_eq(lg_rnn_state_run(g, two, 2, &f, 1, &rd.output, 1, &o3), LG_ERR_INVALID_ARGUMENT);
    ck_assert(strstr(lg_last_error(), "state 1 ('dyn/state_h') is given twice"));
    two[1] = NULL;
    ck_assert_int_eq(lg_rnn_state_run(g, two, 2, &f, 1, &rd.output, 1, &o3), LG_ERR_INVALID_ARGUMENT);
    ck_assert(o3 == NULL);
    lg_graph_free(g2);
    lg_tensor_free(ok), lg_tensor_free(out), lg_tensor_free(held);
    lg_rnn_state_free(rd.state), lg_rnn_state_free(rs.state);
    lg_cell_free(cell);
    lg_graph_free(g);
}
END_TEST

/* Gradients of a stateful run with respect to the weights and x, the
 * carried state (nonzero, after a first run) fed as a constant input. */
START_TEST(stateful_gradcheck)
{
    lg_graph *g = lg_graph_new();
    lg_cell *cell = lg_test_cell(g, "cell", KINDS[_i], F, U, 89);
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, -1, -1, F));
    lg_rnn_opts o = lg_rnn_opts_default();
    o.stateful = true, o.batch_size = B, o.return_sequences = true;
    lg_rnn_result r;
    ck_assert_int_eq(lg_rnn(g, NULL, cell, x, o, &r), LG_OK);
    lg_value loss = test_loss(g, r.output);
    lg_tensor *xt = rand_tensor(lg_shape_of(3, B, T, F), 90), *l1 = NULL;
    lg_feed feeds[1 + LG_RNN_MAX_STATES] = {{x, xt}};
    ck_assert_int_eq(lg_rnn_state_run(g, &r.state, 1, feeds, 1, &loss, 1, &l1), LG_OK);
    int nf = 1;
    ck_assert_int_eq(lg_rnn_state_feeds(r.state, feeds, &nf), LG_OK);
    ck_assert_int_eq(nf, 1 + lg_cell_state_count(cell));
    lg_value wrt[4] = {lg_cell_kernel(cell), lg_cell_recurrent_kernel(cell), lg_cell_bias(cell), x};
    lg_gradcheck_report rep;
    ck_assert_msg(lg_gradcheck(g, loss, wrt, 4, feeds, nf, lg_gradcheck_opts_default(), &rep) == LG_OK, "%s",
                  lg_last_error());
    ck_assert_msg(rep.passed, "worst %s[%lld] %.10g vs %.10g", rep.worst_name, rep.worst_index, rep.analytic,
                  rep.numeric);
    ck_assert(rep.checked > 30);
    /* the gradient saw the carried state: the loss differs from the first run's */
    lg_tensor *l2 = run1(g, feeds, nf, loss);
    ck_assert(fabs(lg_tensor_get(l2, 0) - lg_tensor_get(l1, 0)) > 1e-6);
    lg_tensor_free(l1), lg_tensor_free(l2), lg_tensor_free(xt);
    lg_rnn_state_free(r.state);
    lg_cell_free(cell);
    lg_graph_free(g);
}
END_TEST

/* ---- Dense and Embedding ------------------------------------------------------------ */

START_TEST(dense_values_and_gradients)
{
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, 2, 3, 4));
    lg_dense_opts o = lg_dense_opts_default();
    o.activation = LG_ACT_TANH;
    o.seed = 4;
    lg_value y = lg_dense(g, "d", x, 5, o);
    ck_assert_msg(lg_value_ok(y), "%s", lg_graph_error(g));
    ck_assert_int_eq(lg_value_rank(y), 3);
    ck_assert_int_eq(lg_value_shape(y).dims[2], 5);
    lg_value k = lg_graph_find_param(g, "d/kernel"), b = lg_graph_find_param(g, "d/bias");
    ck_assert(lg_value_ok(k) && lg_value_ok(b));
    lg_tensor *kt = lg_param_tensor(k), *bt = lg_param_tensor(b);
    double limit = sqrt(6.0 / (4 + 5)), maxabs = 0;
    for (int i = 0; i < 20; i++) maxabs = fmax(maxabs, fabs(lg_tensor_get(kt, i)));
    ck_assert(maxabs <= limit && maxabs > limit / 3);
    for (int i = 0; i < 5; i++) ck_assert(lg_tensor_get(bt, i) == 0);
    lg_init_uniform(bt, -1, 1, 1, 1);
    lg_tensor *xt = rand_tensor(lg_shape_of(3, 2, 3, 4), 26);
    lg_feed feed = {x, xt};
    lg_tensor *yt = run1(g, &feed, 1, y);
    for (int r = 0; r < 6; r++)
        for (int j = 0; j < 5; j++) {
            double acc = lg_tensor_get(bt, j);
            for (int i = 0; i < 4; i++) acc += lg_tensor_get(xt, r * 4 + i) * lg_tensor_get(kt, i * 5 + j);
            ck_assert(fabs(lg_tensor_get(yt, r * 5 + j) - tanh(acc)) < 1e-14);
        }
    lg_value wrt[3] = {k, b, x};
    lg_gradcheck_report rep;
    ck_assert_int_eq(lg_gradcheck(g, test_loss(g, y), wrt, 3, &feed, 1, lg_gradcheck_opts_default(), &rep), LG_OK);
    ck_assert(rep.passed);
    o = lg_dense_opts_default();
    o.use_bias = false;
    lg_value y2 = lg_dense(g, "nobias", x, 2, o);
    ck_assert(lg_value_ok(y2));
    ck_assert(!lg_value_ok(lg_graph_find_param(g, "nobias/bias")));
    lg_tensor_free(yt), lg_tensor_free(xt);
    lg_graph_free(g);
}
END_TEST

START_TEST(embedding_values_and_gradients)
{
    lg_graph *g = lg_graph_new();
    lg_value ids = lg_input(g, "ids", LG_I32, lg_shape_of(2, 2, 3));
    lg_embedding_opts o = lg_embedding_opts_default();
    o.dtype = LG_F64;
    lg_value e = lg_embedding(g, "emb", ids, 7, 4, o, NULL);
    ck_assert_msg(lg_value_ok(e), "%s", lg_graph_error(g));
    lg_value table = lg_graph_find_param(g, "emb/embeddings");
    lg_tensor *tt = lg_param_tensor(table);
    double maxabs = 0;
    for (int i = 0; i < 28; i++) maxabs = fmax(maxabs, fabs(lg_tensor_get(tt, i)));
    ck_assert(maxabs < 0.05 && maxabs > 0.02);
    const int idv[6] = {1, 6, 1, 0, 3, 6};
    lg_tensor *it = NULL;
    lg_tensor_new(LG_I32, lg_shape_of(2, 2, 3), &it);
    for (int i = 0; i < 6; i++) lg_tensor_set(it, i, idv[i]);
    lg_feed feed = {ids, it};
    lg_tensor *et = run1(g, &feed, 1, e);
    for (int i = 0; i < 6; i++)
        for (int d = 0; d < 4; d++) ck_assert(lg_tensor_get(et, i * 4 + d) == lg_tensor_get(tt, idv[i] * 4 + d));
    /* d sum(e * w) / d table: row r gets w summed over the positions that pick r */
    lg_tensor *wt = rand_tensor(lg_shape_of(3, 2, 3, 4), 27);
    lg_value loss = lg_sum(lg_mul(e, lg_constant(g, "w", wt)), NULL, 0, false), grad;
    ck_assert_int_eq(lg_grad(g, loss, &table, 1, &grad), LG_OK);
    lg_tensor *gt = run1(g, &feed, 1, grad);
    for (int r = 0; r < 7; r++)
        for (int d = 0; d < 4; d++) {
            double want = 0;
            for (int i = 0; i < 6; i++) want += idv[i] == r ? lg_tensor_get(wt, i * 4 + d) : 0;
            ck_assert(fabs(lg_tensor_get(gt, r * 4 + d) - want) < 1e-14);
        }
    lg_tensor_set(it, 2, 7);
    lg_tensor *bad = NULL;
    ck_assert_int_eq(lg_graph_run(g, &feed, 1, &e, 1, &bad), LG_ERR_RUNTIME);
    lg_tensor_free(et), lg_tensor_free(gt), lg_tensor_free(wt), lg_tensor_free(it);
    lg_graph_free(g);
}
END_TEST

/* ---- errors ------------------------------------------------------------------------ */

typedef enum bad_case {
    BAD_X_RANK,
    BAD_X_FEATURES,
    BAD_X_DTYPE,
    BAD_INIT_COUNT,
    BAD_INIT_SHAPE,
    BAD_INIT_BATCH,
    BAD_LENGTHS_DTYPE,
    BAD_LENGTHS_BATCH,
    BAD_DROPOUT_ONE,
    BAD_DROPOUT_NEG,
    BAD_RECURRENT_DROPOUT_NAN,
    BAD_MERGE,
    BAD_BIDI_BACKWARDS,
    BAD_BIDI_INIT_COUNT,
    BAD_BIDI_UNITS,
    BAD_NULL_CELL,
    BAD_UNROLL_UNKNOWN_T,
    BAD_STATEFUL_NO_BATCH,
    BAD_STATEFUL_BATCH,
    BAD_STATEFUL_INIT,
    BAD_BIDI_STATEFUL_NO_BATCH,
    BAD_MASK_SHAPE,
    BAD_MASK_AND_LENGTHS,
    BAD_COUNT
} bad_case;

static const struct {
    lg_status status;
    const char *needle;
} BAD[BAD_COUNT] = {
    [BAD_X_RANK] = {LG_ERR_SHAPE, "must be [B, T, F], got [3, 2]"},
    [BAD_X_FEATURES] = {LG_ERR_SHAPE, "has 5 features but the cell takes 2"},
    [BAD_X_DTYPE] = {LG_ERR_DTYPE, "is f32 but the cell is f64"},
    [BAD_INIT_COUNT] = {LG_ERR_INVALID_ARGUMENT, "1 initial states given, the cell carries 2"},
    [BAD_INIT_SHAPE] = {LG_ERR_SHAPE, "must be [B, 3] with B = 3, got [3, 4]"},
    [BAD_INIT_BATCH] = {LG_ERR_SHAPE, "must be [B, 3] with B = 3, got [2, 3]"},
    [BAD_LENGTHS_DTYPE] = {LG_ERR_DTYPE, "lengths 'len' must be i32 [B], got f64"},
    [BAD_LENGTHS_BATCH] = {LG_ERR_SHAPE, "do not match the batch of x"},
    [BAD_DROPOUT_ONE] = {LG_ERR_INVALID_ARGUMENT, "dropout 1 and recurrent_dropout 0 must lie in [0, 1)"},
    [BAD_DROPOUT_NEG] = {LG_ERR_INVALID_ARGUMENT, "dropout -0.1"},
    [BAD_RECURRENT_DROPOUT_NAN] = {LG_ERR_INVALID_ARGUMENT, "recurrent_dropout nan"},
    [BAD_MERGE] = {LG_ERR_INVALID_ARGUMENT, "unknown merge mode 9"},
    [BAD_BIDI_BACKWARDS] = {LG_ERR_INVALID_ARGUMENT, "go_backwards is not an option"},
    [BAD_BIDI_INIT_COUNT] = {LG_ERR_INVALID_ARGUMENT, "2 initial states given, the directions carry 2 + 2"},
    [BAD_BIDI_UNITS] = {LG_ERR_SHAPE, "merge mode 'sum' needs equal units, got 3 and 2"},
    [BAD_NULL_CELL] = {LG_ERR_INVALID_ARGUMENT, "cell is NULL"},
    [BAD_UNROLL_UNKNOWN_T] = {LG_ERR_GRAPH, "unroll needs a static number of steps; the sequence is [?, 3, 2]"},
    [BAD_STATEFUL_NO_BATCH] = {LG_ERR_INVALID_ARGUMENT, "stateful needs batch_size >= 1, got 0"},
    [BAD_STATEFUL_BATCH] = {LG_ERR_SHAPE, "x 'x' [3, 4, 2] has batch 3 but the stateful batch_size is 2"},
    [BAD_STATEFUL_INIT] = {LG_ERR_INVALID_ARGUMENT, "stateful takes its initial states from the previous run"},
    [BAD_BIDI_STATEFUL_NO_BATCH] = {LG_ERR_INVALID_ARGUMENT, "bidirectional 'bidirectional_cell': stateful needs batch_size >= 1"},
    [BAD_MASK_SHAPE] = {LG_ERR_SHAPE, "mask 'm' [3, 5] must be [B, T] of x 'x' [3, 4, 2]"},
    [BAD_MASK_AND_LENGTHS] = {LG_ERR_INVALID_ARGUMENT, "lengths and a mask together"},
};

START_TEST(rnn_bad_input)
{
    bad_case c = (bad_case)_i;
    lg_graph *g = lg_graph_new();
    lg_cell *cell = lg_test_cell(g, "cell", LG_CELL_LSTM, F, U, 17), *other = lg_test_cell(g, "other", LG_CELL_LSTM, F, 2, 18);
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F));
    lg_value h = lg_input(g, "h", LG_F64, lg_shape_of(2, B, U));
    lg_value init[2] = {h, h};
    lg_rnn_opts o = lg_rnn_opts_default();
    lg_merge_mode m = LG_MERGE_CONCAT;
    bool bidi = false;
    lg_cell *use = cell;
    switch (c) {
    case BAD_X_RANK: x = lg_input(g, "x2", LG_F64, lg_shape_of(2, B, F)); break;
    case BAD_X_FEATURES: x = lg_input(g, "x5", LG_F64, lg_shape_of(3, B, T, 5)); break;
    case BAD_X_DTYPE: x = lg_input(g, "x32", LG_F32, lg_shape_of(3, B, T, F)); break;
    case BAD_INIT_COUNT: o.initial_state = init, o.n_initial_state = 1; break;
    case BAD_INIT_SHAPE:
        init[1] = lg_input(g, "c4", LG_F64, lg_shape_of(2, B, 4));
        o.initial_state = init, o.n_initial_state = 2;
        break;
    case BAD_INIT_BATCH:
        init[0] = lg_input(g, "h2", LG_F64, lg_shape_of(2, 2, U));
        o.initial_state = init, o.n_initial_state = 2;
        break;
    case BAD_LENGTHS_DTYPE: o.lengths = lg_input(g, "len", LG_F64, lg_shape_of(1, B)); break;
    case BAD_LENGTHS_BATCH: o.lengths = lg_input(g, "len", LG_I32, lg_shape_of(1, B + 1)); break;
    case BAD_DROPOUT_ONE: o.dropout = 1.0; break;
    case BAD_DROPOUT_NEG: o.dropout = -0.1; break;
    case BAD_RECURRENT_DROPOUT_NAN: o.recurrent_dropout = NAN; break;
    case BAD_MERGE: bidi = true, m = (lg_merge_mode)9; break;
    case BAD_BIDI_BACKWARDS: bidi = true, o.go_backwards = true; break;
    case BAD_BIDI_INIT_COUNT: bidi = true, o.initial_state = init, o.n_initial_state = 2; break;
    case BAD_BIDI_UNITS: bidi = true, m = LG_MERGE_SUM; break;
    case BAD_NULL_CELL: use = NULL; break;
    case BAD_UNROLL_UNKNOWN_T: x = lg_input(g, "xt", LG_F64, lg_shape_of(3, B, -1, F)), o.unroll = true; break;
    case BAD_STATEFUL_NO_BATCH: o.stateful = true; break;
    case BAD_STATEFUL_BATCH: o.stateful = true, o.batch_size = 2; break;
    case BAD_STATEFUL_INIT: o.stateful = true, o.batch_size = B, o.initial_state = init, o.n_initial_state = 2; break;
    case BAD_BIDI_STATEFUL_NO_BATCH: bidi = true, o.stateful = true; break;
    case BAD_MASK_SHAPE: o.mask = lg_input(g, "m", LG_I32, lg_shape_of(2, B, T + 1)); break;
    case BAD_MASK_AND_LENGTHS:
        o.mask = lg_input(g, "m", LG_I32, lg_shape_of(2, B, T));
        o.lengths = lg_input(g, "len", LG_I32, lg_shape_of(1, B));
        break;
    case BAD_COUNT: break;
    }
    lg_status s;
    if (bidi) {
        lg_bidirectional_result r;
        s = lg_bidirectional(g, NULL, cell, c == BAD_BIDI_UNITS ? other : cell, x, m, o, &r);
        ck_assert(!lg_value_ok(r.output) && !lg_value_ok(r.forward.output));
    } else {
        lg_rnn_result r;
        s = lg_rnn(g, NULL, use, x, o, &r);
        ck_assert(!lg_value_ok(r.output) && !lg_value_ok(r.states[0]) && r.state == NULL);
    }
    ck_assert_msg(s == BAD[c].status, "case %d: %s (%s)", c, lg_status_name(s), lg_last_error());
    const char *err = lg_graph_error(g);
    ck_assert_msg(err && strstr(err, BAD[c].needle), "case %d: '%s' lacks '%s'", c, err ? err : "", BAD[c].needle);
    ck_assert(strstr(lg_last_error(), BAD[c].needle));
    lg_cell_free(cell), lg_cell_free(other);
    lg_graph_free(g);
}
END_TEST

/* Lengths outside [1, T] fail the run, naming the check; lg_lengths_check
 * finds them before feeding. */
START_TEST(lengths_out_of_range)
{
    lg_graph *g = lg_graph_new();
    lg_cell *cell = lg_test_cell(g, "cell", LG_CELL_GRU, F, U, 19);
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, -1, -1, F));
    lg_value len = lg_input(g, "len", LG_I32, lg_shape_of(1, -1));
    lg_rnn_opts o = lg_rnn_opts_default();
    o.lengths = len;
    lg_rnn_result r;
    ck_assert_int_eq(lg_rnn(g, NULL, cell, x, o, &r), LG_OK);
    lg_tensor *xt = rand_tensor(lg_shape_of(3, B, T, F), 28);
    const int bad[2][B] = {{4, 5, 1}, {4, 0, 1}};
    for (int k = 0; k < 2; k++) {
        lg_tensor *lt = i32_tensor(B, bad[k]), *out = NULL;
        lg_feed feeds[2] = {{x, xt}, {len, lt}};
        ck_assert_int_eq(lg_graph_run(g, feeds, 2, &r.output, 1, &out), LG_ERR_RUNTIME);
        ck_assert_msg(strstr(lg_last_error(), "cell/loop/lengths_in_1_to_T/"), "%s", lg_last_error());
        ck_assert_msg(strstr(lg_last_error(), k == 0 ? "lengths[1] = 5 outside [1, 4]" : "lengths[1] = 0 outside [1, 4]"),
                      "%s", lg_last_error());
        ck_assert_int_eq(lg_lengths_check(lt, T), LG_ERR_FEED);
        ck_assert_msg(strstr(lg_last_error(), k == 0 ? "lengths[1] = 5 is outside [1, 4]" : "lengths[1] = 0"), "%s",
                      lg_last_error());
        lg_tensor_free(lt);
    }
    lg_tensor *ok = i32_tensor(B, LENGTHS);
    ck_assert_int_eq(lg_lengths_check(ok, T), LG_OK);
    ck_assert_int_eq(lg_lengths_check(xt, T), LG_ERR_DTYPE);
    ck_assert_str_eq(lg_last_error(), "lg_lengths_check: lengths must be i32, got f64");
    lg_tensor *rows = NULL;
    lg_tensor_new(LG_I32, lg_shape_of(2, B, 1), &rows);
    ck_assert_int_eq(lg_lengths_check(rows, T), LG_ERR_SHAPE);
    ck_assert_str_eq(lg_last_error(), "lg_lengths_check: lengths must be [B], got [3, 1]");
    ck_assert_int_eq(lg_lengths_check(NULL, T), LG_ERR_INVALID_ARGUMENT);
    lg_tensor_free(rows);
    lg_tensor_free(ok), lg_tensor_free(xt);
    lg_cell_free(cell);
    lg_graph_free(g);
}
END_TEST

START_TEST(other_bad_input)
{
    lg_rnn_result r;
    ck_assert_int_eq(lg_rnn(NULL, NULL, NULL, lg_value_invalid(), lg_rnn_opts_default(), &r), LG_ERR_INVALID_ARGUMENT);
    lg_graph *g = lg_graph_new();
    lg_value x2 = lg_input(g, "x", LG_F64, lg_shape_of(1, 4));
    ck_assert(!lg_value_ok(lg_dense(g, "d", x2, 3, lg_dense_opts_default())));
    ck_assert(strstr(lg_graph_error(g), "dense 'd': x 'x' must be [..., in] with rank >= 2"));
    lg_graph_free(g);
    g = lg_graph_new();
    lg_value f = lg_input(g, "ids", LG_F32, lg_shape_of(1, 4));
    ck_assert(!lg_value_ok(lg_embedding(g, "e", f, 10, 2, lg_embedding_opts_default(), NULL)));
    ck_assert(strstr(lg_graph_error(g), "ids 'ids' must be i32, got f32"));
    /* a graph with an error refuses further layers with LG_ERR_GRAPH */
    lg_cell *cell = lg_cell_new(g, "cell", 2, lg_cell_opts_default(LG_CELL_GRU, 2));
    ck_assert_int_eq(lg_rnn(g, NULL, cell, f, lg_rnn_opts_default(), &r), LG_ERR_GRAPH);
    lg_cell_free(cell);
    lg_graph_free(g);
}
END_TEST

/* Every layer builder records itself for summaries: its scope name, its
 * Keras type, its output and the parameters it owns (a recurrent layer
 * lists its cell's, made under the cell's scope). */
START_TEST(layer_records)
{
    lg_graph *g = lg_graph_new();
    lg_value ids = lg_input(g, "ids", LG_I32, lg_shape_of(2, -1, T));
    lg_embedding_opts eo = lg_embedding_opts_default();
    eo.dtype = LG_F64;
    lg_value e = lg_embedding(g, "embed", ids, 10, F, eo, NULL);
    lg_cell *c1 = lg_test_cell(g, "cell1", LG_CELL_LSTM, F, U, 1), *c2 = lg_test_cell(g, "cell2", LG_CELL_GRU, U, U, 2),
            *c3 = lg_test_cell(g, "cell3", LG_CELL_SIMPLE_RNN, U, U, 3);
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true;
    lg_rnn_result r;
    ck_assert_int_eq(lg_rnn(g, "encoder", c1, e, o, &r), LG_OK);
    lg_bidirectional_result br;
    o.return_sequences = false;
    ck_assert_int_eq(lg_bidirectional(g, "bi", c2, c3, r.output, LG_MERGE_SUM, o, &br), LG_OK);
    lg_dense_opts d = lg_dense_opts_default();
    d.use_bias = false;
    lg_scope_push(g, "head");
    lg_value y = lg_dense(g, "out", br.output, 4, d);
    lg_scope_pop(g);
    ck_assert_ptr_null(lg_graph_error(g));
    static const struct { const char *name, *type; int params; } want[] = {
        {"embed", "Embedding", 1}, {"encoder", "LSTM", 3}, {"bi", "Bidirectional", 6}, {"head/out", "Dense", 1}};
    ck_assert_int_eq(lg_graph_layer_count(g), 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(lg_graph_layer_name(g, i), want[i].name);
        ck_assert_str_eq(lg_graph_layer_type(g, i), want[i].type);
        ck_assert_int_eq(lg_graph_layer_param_count(g, i), want[i].params);
    }
    ck_assert(lg_value_same(lg_graph_layer_output(g, 0), e) && lg_value_same(lg_graph_layer_output(g, 1), r.output));
    ck_assert(lg_value_same(lg_graph_layer_output(g, 2), br.output) && lg_value_same(lg_graph_layer_output(g, 3), y));
    ck_assert(lg_value_same(lg_graph_layer_param(g, 1, 1), lg_cell_recurrent_kernel(c1)));
    ck_assert(lg_value_same(lg_graph_layer_param(g, 2, 3), lg_cell_kernel(c3)));
    /* out of range reads are empty, not crashes */
    ck_assert_ptr_null(lg_graph_layer_name(g, 4));
    ck_assert_ptr_null(lg_graph_layer_type(g, -1));
    ck_assert(!lg_value_ok(lg_graph_layer_output(g, 9)) && !lg_value_ok(lg_graph_layer_param(g, 0, 1)));
    ck_assert_int_eq(lg_graph_layer_param_count(g, 7), 0);
    /* a layer called again shares its parameters and stays one record */
    lg_value y2 = lg_dense(g, "embed2", e, 4, d);
    lg_scope_push(g, "head");
    lg_value y3 = lg_dense(g, "out", br.output, 4, d);
    lg_scope_pop(g);
    ck_assert(lg_value_ok(y2) && lg_value_ok(y3) && !lg_value_same(y, y3));
    ck_assert_int_eq(lg_graph_layer_count(g), 5);
    ck_assert(lg_value_same(lg_graph_layer_output(g, 3), y));
    ck_assert(lg_value_same(lg_graph_layer_param(g, 3, 0), lg_graph_find_param(g, "head/out/kernel")));
    lg_scope_push(g, "head");
    ck_assert(!lg_value_ok(lg_dense(g, "out", br.output, 5, d))); /* 5 units do not fit the shared [3, 4] */
    lg_scope_pop(g);
    ck_assert_msg(strstr(lg_graph_error(g), "shared parameter 'head/out/kernel'"), "%s", lg_graph_error(g));
    /* a custom layer may list only parameters of its own graph */
    lg_graph *g2 = lg_graph_new();
    lg_value y4 = lg_input(g2, "x", LG_F32, lg_shape_of(1, 2)), ids2 = lg_input(g2, "ids", LG_I32, lg_shape_of(1, 2));
    lg_graph_add_layer(g2, "Custom", y4, &ids2, 1);
    ck_assert_ptr_nonnull(strstr(lg_graph_error(g2), "not a parameter"));
    ck_assert_int_eq(lg_graph_layer_count(g2), 0);
    lg_graph_free(g2);
    lg_cell_free(c1), lg_cell_free(c2), lg_cell_free(c3);
    lg_graph_free(g);
}
END_TEST

/* Without a name a layer is named after its cell (Keras names layers
 * after their weights): two layers over two cells are two records, a cell
 * run again (shared weights) is one, and a bidirectional layer is
 * "bidirectional_" and its forward cell's name. */
START_TEST(default_layer_names)
{
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, -1, T, F));
    lg_cell *c1 = lg_test_cell(g, "lstm", LG_CELL_LSTM, F, U, 1), *c2 = lg_test_cell(g, "lstm_1", LG_CELL_LSTM, U, U, 2),
            *c3 = lg_test_cell(g, "gru", LG_CELL_GRU, F, U, 3), *c4 = lg_test_cell(g, "gru_back", LG_CELL_GRU, F, U, 4);
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true;
    lg_rnn_result r1, r2, again;
    lg_bidirectional_result br;
    ck_assert_int_eq(lg_rnn(g, NULL, c1, x, o, &r1), LG_OK);
    ck_assert_int_eq(lg_rnn(g, NULL, c2, r1.output, o, &r2), LG_OK);
    ck_assert_int_eq(lg_rnn(g, NULL, c1, x, o, &again), LG_OK);
    ck_assert_int_eq(lg_bidirectional(g, NULL, c3, c4, x, LG_MERGE_CONCAT, o, &br), LG_OK);
    ck_assert_ptr_null(lg_graph_error(g));
    static const char *const want[] = {"lstm", "lstm_1", "bidirectional_gru"};
    ck_assert_int_eq(lg_graph_layer_count(g), 3);
    for (int i = 0; i < 3; i++) ck_assert_str_eq(lg_graph_layer_name(g, i), want[i]);
    ck_assert_str_eq(lg_cell_name(c2), "lstm_1");
    ck_assert_ptr_null(lg_cell_name(NULL));
    lg_cell_free(c1), lg_cell_free(c2), lg_cell_free(c3), lg_cell_free(c4);
    lg_graph_free(g);
}
END_TEST

static Suite *layers_suite(void)
{
    Suite *s = suite_create("layers");
    TCase *tc = tcase_create("rnn");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, rnn_gradcheck, 0, (int)(sizeof RNN_CASES / sizeof RNN_CASES[0]));
    tcase_add_loop_test(tc, masking_matches_truncation, 0, 3);
    tcase_add_loop_test(tc, go_backwards_matches_reversed_input, 0, 3);
    tcase_add_loop_test(tc, bidirectional_merge_modes, 0, 3);
    tcase_add_test(tc, bidirectional_initial_state);
    tcase_add_loop_test(tc, initial_state_continues_a_run, 0, 3);
    tcase_add_test(tc, stacked_layers);
    tcase_add_test(tc, dropout_masks);
    tcase_add_loop_test(tc, unroll_matches_loop, 0, 8);
    tcase_add_loop_test(tc, stateful_matches_one_run, 0, 3);
    tcase_add_test(tc, stateful_by_hand);
    tcase_add_test(tc, stateful_batch_change);
    tcase_add_loop_test(tc, stateful_gradcheck, 0, 3);
    suite_add_tcase(s, tc);
    TCase *dense = tcase_create("dense_embedding");
    tcase_add_test(dense, dense_values_and_gradients);
    tcase_add_test(dense, embedding_values_and_gradients);
    tcase_add_test(dense, layer_records);
    tcase_add_test(dense, default_layer_names);
    suite_add_tcase(s, dense);
    TCase *errors = tcase_create("errors");
    tcase_add_loop_test(errors, rnn_bad_input, 0, BAD_COUNT);
    tcase_add_test(errors, lengths_out_of_range);
    tcase_add_test(errors, other_bad_input);
    suite_add_tcase(s, errors);
    return s;
}

int main(void) { return lg_check_run(layers_suite()); }
