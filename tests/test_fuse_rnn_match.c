/*
 * test_fuse_rnn_match.c — the fuse_rnn matcher (src/graph/passes/
 * fuse_rnn_match.h) on loops built every way: the cell API and layers
 * (lengths, reverse, Bidirectional, f32 and f64), and hand-written bodies
 * (one matmul per gate or per weight with slices, commuted operands, bias
 * before or after the sum, the textbook GRU mix). Each refusal reason is
 * asserted on a body that differs in exactly that way.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "../examples/cells/peephole.h"
#include "graph/loopgrad.h"
#include "graph/passes/fuse_rnn_match.h"
#include "test_util.h"

LG_TEST_GRAPH_FIXTURE

enum { T = 4, B = 2, I = 3, H = 5 };

/* The spec of the last forward loop node in g. */
static const lg_loop_spec *last_loop(lg_graph *gr)
{
    for (int32_t i = gr->n_nodes - 1; i >= 0; i--)
        if (gr->nodes[i].op == LG_OP_LOOP && !gr->nodes[i].attrs.loop->gradient) return gr->nodes[i].attrs.loop;
    ck_abort_msg("no loop in the graph");
    return NULL;
}

static lg_value input(lg_dtype dt, int rank, int64_t d0, int64_t d1, int64_t d2)
{
    return lg_input(g, "in", dt, rank == 3 ? lg_shape_of(3, d0, d1, d2) : lg_shape_of(2, d0, d1));
}

/* A loop of the cell API over x [T, B, I] time-major. */
static const lg_loop_spec *cell_loop(lg_cell_opts co, bool reverse, bool lengths, lg_value x_mask, lg_value h_mask)
{
    lg_cell *cell = lg_cell_new(g, "cell", I, co);
    ck_assert_ptr_nonnull(cell);
    lg_loop_opts lo = lg_loop_opts_default();
    lo.time_major = true;
    lo.reverse = reverse;
    if (lengths) lo.lengths = lg_input(g, "len", LG_I32, lg_shape_of(1, B));
    lg_loop *l = lg_loop_new(g, NULL, lo);
    lg_value x_t = lg_loop_seq(l, input(co.dtype, 3, T, B, I)), s[2], next[2], y;
    for (int k = 0; k < lg_cell_state_count(cell); k++) s[k] = lg_loop_state(l, input(co.dtype, 2, B, H, 0));
    lg_value xm = lg_value_ok(x_mask) ? lg_loop_invariant(l, x_mask) : x_mask;
    lg_value hm = lg_value_ok(h_mask) ? lg_loop_invariant(l, h_mask) : h_mask;
    lg_cell_step(cell, l, x_t, s, xm, hm, next, &y);
    for (int k = 0; k < lg_cell_state_count(cell); k++) lg_loop_next(l, s[k], next[k]);
    lg_loop_emit(l, y);
    ck_assert_msg(lg_loop_end(l, NULL, NULL) == LG_OK, "%s", lg_last_error());
    lg_cell_free(cell);
    return last_loop(g);
}

static void assert_match(const lg_loop_spec *s, lg_rnn_cell want, bool bias, lg_rnn_match *m)
{
    ck_assert_msg(lg_rnn_match_loop(s, m), "refused: %s", m->reason);
    ck_assert_int_eq(m->cell, want);
    ck_assert_int_eq(m->has_bias, bias);
    ck_assert_int_eq(m->units, H);
    int G = lg_rnn_cell_gates(want);
    ck_assert_int_eq(m->n_w, G);
    ck_assert_int_eq(m->n_u, G);
    for (int k = 0; k < G; k++) { /* each gate gets exactly one W and one U block */
        int nw = 0, nu = 0;
        for (int i = 0; i < m->n_w; i++) nw += m->w[i].gate == k;
        for (int i = 0; i < m->n_u; i++) nu += m->u[i].gate == k;
        ck_assert_int_eq(nw, 1);
        ck_assert_int_eq(nu, 1);
    }
}

static void assert_refused(const lg_loop_spec *s, const char *reason)
{
    lg_rnn_match m;
    ck_assert_msg(!lg_rnn_match_loop(s, &m), "matched, expected \"%s\"", reason);
    ck_assert_msg(strstr(m.reason, reason), "reason \"%s\", expected \"%s\"", m.reason, reason);
}

static const struct {
    lg_cell_kind kind;
    lg_activation act;
    bool reset_after;
    lg_rnn_cell want;
} cells[] = {
    {LG_CELL_SIMPLE_RNN, LG_ACT_TANH, false, LG_RNN_SIMPLE_TANH},
    {LG_CELL_SIMPLE_RNN, LG_ACT_RELU, false, LG_RNN_SIMPLE_RELU},
    {LG_CELL_LSTM, LG_ACT_TANH, false, LG_RNN_LSTM},
    {LG_CELL_GRU, LG_ACT_TANH, true, LG_RNN_GRU},
    {LG_CELL_GRU, LG_ACT_TANH, false, LG_RNN_GRU_RESET_BEFORE},
};

/* _i: cell x {bias} x {reverse} x {lengths} x {f32, f64} */
START_TEST(test_cell_api)
{
    int c = _i / 16, o = _i % 16;
    bool bias = o & 1, reverse = o & 2, lengths = o & 4;
    lg_cell_opts co = lg_cell_opts_default(cells[c].kind, H);
    co.activation = cells[c].act;
    co.reset_after = cells[c].reset_after;
    co.use_bias = bias;
    co.dtype = o & 8 ? LG_F64 : LG_F32;
    lg_rnn_match m;
    assert_match(cell_loop(co, reverse, lengths, lg_value_invalid(), lg_value_invalid()), cells[c].want, bias, &m);
    ck_assert_int_eq(m.reverse, reverse);
    ck_assert_int_eq(m.mask_seq >= 0, lengths);
    ck_assert_int_eq(m.x_seq, 0);
    ck_assert_int_eq(m.y_out, 0);
    ck_assert_int_eq(m.h_state, 0);
    ck_assert_int_eq(m.c_state, cells[c].kind == LG_CELL_LSTM ? 1 : -1);
    if (cells[c].kind == LG_CELL_LSTM) /* one kernel invariant, gate k at columns k H */
        for (int i = 0; i < m.n_w; i++) {
            ck_assert_int_eq(m.w[i].inv, m.w[0].inv);
            ck_assert_int_eq(m.w[i].start, (int64_t)m.w[i].gate * H);
        }
    if (cells[c].want == LG_RNN_GRU && bias) { /* biases on both sides of the h gate */
        int sides = 0;
        for (int i = 0; i < m.n_b; i++)
            if (m.b[i].gate == 2) sides |= 1 << m.b[i].side;
        ck_assert_int_eq(sides, 3);
    }
}
END_TEST

/* Layers: LSTM with lengths and go_backwards, and both loops of a
 * Bidirectional GRU. */
START_TEST(test_layers)
{
    lg_cell *cell = lg_cell_new(g, "lstm", I, lg_cell_opts_default(LG_CELL_LSTM, H));
    lg_rnn_opts ro = lg_rnn_opts_default();
    ro.return_sequences = true;
    ro.go_backwards = true;
    ro.lengths = lg_input(g, "len", LG_I32, lg_shape_of(1, B));
    lg_rnn_result r;
    ck_assert_int_eq(lg_rnn(g, NULL, cell, input(LG_F32, 3, B, T, I), ro, &r), LG_OK);
    lg_rnn_match m;
    assert_match(last_loop(g), LG_RNN_LSTM, true, &m);
    ck_assert_int_ge(m.mask_seq, 0);
    lg_cell_free(cell);

    lg_cell *f = lg_cell_new(g, "f", I, lg_cell_opts_default(LG_CELL_GRU, H));
    lg_cell *b = lg_cell_new(g, "b", I, lg_cell_opts_default(LG_CELL_GRU, H));
    lg_bidirectional_result br;
    int32_t before = g->n_nodes;
    lg_rnn_opts bo = lg_rnn_opts_default();
    bo.lengths = ro.lengths;
    ck_assert_int_eq(lg_bidirectional(g, NULL, f, b, input(LG_F32, 3, B, T, I), LG_MERGE_CONCAT, bo, &br), LG_OK);
    int n_loops = 0;
    for (int32_t i = before; i < g->n_nodes; i++)
        if (g->nodes[i].op == LG_OP_LOOP) {
            assert_match(g->nodes[i].attrs.loop, LG_RNN_GRU, true, &m);
            ck_assert_int_ge(m.mask_seq, 0);
            n_loops++;
        }
    ck_assert_int_eq(n_loops, 2);
    lg_cell_free(f);
    lg_cell_free(b);
}
END_TEST

/* The loop's parts for hand-written bodies. */
typedef struct hand {
    lg_loop *l;
    lg_value x, h, c;
} hand;

static hand hand_begin(lg_dtype dt, int n_states)
{
    lg_loop_opts lo = lg_loop_opts_default();
    lo.time_major = true;
    hand hd = {.l = lg_loop_new(g, NULL, lo)};
    hd.x = lg_loop_seq(hd.l, input(dt, 3, T, B, I));
    hd.h = lg_loop_state(hd.l, input(dt, 2, B, H, 0));
    if (n_states == 2) hd.c = lg_loop_state(hd.l, input(dt, 2, B, H, 0));
    return hd;
}

static lg_value inv(hand *hd, lg_dtype dt, int64_t r, int64_t c)
{
    char name[16];
    snprintf(name, sizeof name, "w%d", g->n_params);
    lg_value v = lg_param(g, name, dt, c ? lg_shape_of(2, r, c) : lg_shape_of(1, r));
    return lg_loop_invariant(hd->l, v);
}

static const lg_loop_spec *hand_end(hand *hd, lg_value h_next, lg_value c_next)
{
    lg_loop_next(hd->l, hd->h, h_next);
    if (lg_value_ok(hd->c)) lg_loop_next(hd->l, hd->c, c_next);
    lg_loop_emit(hd->l, h_next);
    ck_assert_msg(lg_loop_end(hd->l, NULL, NULL) == LG_OK, "%s", lg_last_error());
    return last_loop(g);
}

static lg_value mm(lg_value a, lg_value b) { return lg_matmul(a, b, false, false); }

/* One matmul per weight, bias first in the sum, every add and mul commuted. */
START_TEST(test_hand_lstm_split)
{
    hand hd = hand_begin(LG_F64, 2);
    lg_value W = inv(&hd, LG_F64, I, 4 * H), U = inv(&hd, LG_F64, H, 4 * H), b = inv(&hd, LG_F64, 4 * H, 0);
    lg_value z = lg_add(b, lg_add(mm(hd.h, U), mm(hd.x, W))), zs[4];
    lg_split(z, 1, NULL, 4, zs);
    lg_value i = lg_sigmoid(zs[0]), f = lg_sigmoid(zs[1]), gg = lg_tanh(zs[2]), o = lg_sigmoid(zs[3]);
    lg_value c2 = lg_add(lg_mul(gg, i), lg_mul(hd.c, f));
    lg_rnn_match m;
    assert_match(hand_end(&hd, lg_mul(lg_tanh(c2), o), c2), LG_RNN_LSTM, true, &m);
}
END_TEST

/* One matmul per gate on separate weights, bias between the products. */
START_TEST(test_hand_lstm_per_gate)
{
    hand hd = hand_begin(LG_F32, 2);
    lg_value gate[4];
    for (int k = 0; k < 4; k++) {
        lg_value W = inv(&hd, LG_F32, I, H), U = inv(&hd, LG_F32, H, H), b = inv(&hd, LG_F32, H, 0);
        lg_value pre = lg_add(lg_add(mm(hd.x, W), b), mm(hd.h, U));
        gate[k] = k == 2 ? lg_tanh(pre) : lg_sigmoid(pre);
    }
    lg_value c2 = lg_add(lg_mul(gate[1], hd.c), lg_mul(gate[0], gate[2]));
    lg_rnn_match m;
    assert_match(hand_end(&hd, lg_mul(gate[3], lg_tanh(c2)), c2), LG_RNN_LSTM, true, &m);
    for (int i = 0; i < m.n_w; i++) ck_assert_int_eq(m.w[i].start, 0);
}
END_TEST

/* Weights sliced per gate inside the body; no bias. */
START_TEST(test_hand_lstm_sliced_weights)
{
    hand hd = hand_begin(LG_F32, 2);
    lg_value W = inv(&hd, LG_F32, I, 4 * H), U = inv(&hd, LG_F32, H, 4 * H), gate[4];
    for (int k = 0; k < 4; k++) {
        lg_value pre = lg_add(mm(hd.h, lg_slice(U, 1, k * H, H)), mm(hd.x, lg_slice(W, 1, k * H, H)));
        gate[k] = k == 2 ? lg_tanh(pre) : lg_sigmoid(pre);
    }
    lg_value c2 = lg_add(lg_mul(gate[0], gate[2]), lg_mul(gate[1], hd.c));
    lg_rnn_match m;
    assert_match(hand_end(&hd, lg_mul(gate[3], lg_tanh(c2)), c2), LG_RNN_LSTM, false, &m);
    for (int i = 0; i < m.n_u; i++) ck_assert_int_eq(m.u[i].start, (int64_t)m.u[i].gate * H);
}
END_TEST

/* The textbook GRU: h' = z h + (1 - z) hh, reset after the projection. */
START_TEST(test_hand_gru_textbook)
{
    hand hd = hand_begin(LG_F32, 1);
    lg_value W = inv(&hd, LG_F32, I, 3 * H), U = inv(&hd, LG_F32, H, 3 * H), xs[3], hs[3];
    lg_split(mm(hd.x, W), 1, NULL, 3, xs);
    lg_split(mm(hd.h, U), 1, NULL, 3, hs);
    lg_value z = lg_sigmoid(lg_add(hs[0], xs[0])), r = lg_sigmoid(lg_add(xs[1], hs[1]));
    lg_value hh = lg_tanh(lg_add(lg_mul(hs[2], r), xs[2]));
    lg_value one = lg_scalar(lg_loop_body(hd.l), LG_F32, 1);
    lg_value h2 = lg_add(lg_mul(hd.h, z), lg_mul(lg_sub(one, z), hh));
    lg_rnn_match m;
    assert_match(hand_end(&hd, h2, lg_value_invalid()), LG_RNN_GRU, false, &m);
}
END_TEST

START_TEST(test_hand_simple_relu)
{
    hand hd = hand_begin(LG_F64, 1);
    lg_value W = inv(&hd, LG_F64, I, H), U = inv(&hd, LG_F64, H, H);
    lg_rnn_match m;
    assert_match(hand_end(&hd, lg_relu(lg_add(mm(hd.h, U), mm(hd.x, W))), lg_value_invalid()), LG_RNN_SIMPLE_RELU,
                 false, &m);
}
END_TEST

/* ---- refusals ------------------------------------------------------------------ */

static lg_cell_opts opts_of(lg_cell_kind k) { return lg_cell_opts_default(k, H); }

START_TEST(test_refuse_activation)
{
    lg_cell_opts co = opts_of(LG_CELL_LSTM);
    co.activation = LG_ACT_RELU;
    assert_refused(cell_loop(co, false, false, lg_value_invalid(), lg_value_invalid()),
                   "gate 2 uses relu where LSTM has tanh");
}
END_TEST

START_TEST(test_refuse_recurrent_activation)
{
    lg_cell_opts co = opts_of(LG_CELL_GRU);
    co.recurrent_activation = LG_ACT_HARD_SIGMOID;
    assert_refused(cell_loop(co, false, false, lg_value_invalid(), lg_value_invalid()),
                   "gate 1 uses hard_sigmoid where GRU has sigmoid");
}
END_TEST

START_TEST(test_refuse_simple_sigmoid)
{
    lg_cell_opts co = opts_of(LG_CELL_SIMPLE_RNN);
    co.activation = LG_ACT_SIGMOID;
    assert_refused(cell_loop(co, false, false, lg_value_invalid(), lg_value_invalid()),
                   "activation is sigmoid; the fused SimpleRNN has tanh or relu");
}
END_TEST

/* A body whose gates read x_t and h through the masks given per gate
 * (invalid: none), one matmul per gate. */
static const lg_loop_spec *hand_simple_masked(lg_value xm, lg_value hm)
{
    hand hd = hand_begin(LG_F32, 1);
    lg_value W = inv(&hd, LG_F32, I, H), U = inv(&hd, LG_F32, H, H);
    lg_value x = lg_value_ok(xm) ? lg_mul(lg_loop_invariant(hd.l, xm), hd.x) : hd.x;
    lg_value h = lg_value_ok(hm) ? lg_mul(hd.h, lg_loop_invariant(hd.l, hm)) : hd.h;
    return hand_end(&hd, lg_tanh(lg_add(mm(h, U), mm(x, W))), lg_value_invalid());
}

/* A hand-written LSTM whose gate k reads h times hm[k] (invalid: plain h;
 * each mask captured once). */
static const lg_loop_spec *hand_lstm_h_masks(const lg_value *hm)
{
    hand hd = hand_begin(LG_F32, 2);
    lg_value gate[4], m[4];
    for (int k = 0; k < 4; k++) {
        m[k] = hm[k];
        for (int j = 0; j < k && lg_value_ok(hm[k]); j++)
            if (hm[j].node == hm[k].node && hm[j].graph == hm[k].graph) m[k] = m[j];
        if (lg_value_ok(hm[k]) && m[k].graph == g) m[k] = lg_loop_invariant(hd.l, hm[k]);
    }
    for (int k = 0; k < 4; k++) {
        lg_value W = inv(&hd, LG_F32, I, H), U = inv(&hd, LG_F32, H, H);
        lg_value h = lg_value_ok(m[k]) ? lg_mul(hd.h, m[k]) : hd.h;
        lg_value pre = lg_add(mm(hd.x, W), mm(h, U));
        gate[k] = k == 2 ? lg_tanh(pre) : lg_sigmoid(pre);
    }
    lg_value c2 = lg_add(lg_mul(gate[1], hd.c), lg_mul(gate[0], gate[2]));
    return hand_end(&hd, lg_mul(gate[3], lg_tanh(c2)), c2);
}

/* Keras's dropout and recurrent dropout masks as the cell API applies them:
 * every cell matches, with the masks' invariants found. _i: cell x {f32,
 * f64}. */
START_TEST(test_cell_api_dropout)
{
    int c = _i / 2;
    lg_cell_opts co = lg_cell_opts_default(cells[c].kind, H);
    co.activation = cells[c].act;
    co.reset_after = cells[c].reset_after;
    co.dtype = _i % 2 ? LG_F64 : LG_F32;
    lg_value xm = lg_input(g, "xm", co.dtype, lg_shape_of(2, B, I)), hm = lg_input(g, "hm", co.dtype, lg_shape_of(2, B, H));
    const lg_loop_spec *s = cell_loop(co, false, true, xm, hm);
    lg_rnn_match m;
    assert_match(s, cells[c].want, true, &m);
    ck_assert_int_ge(m.x_mask, 0);
    ck_assert_int_ge(m.h_mask, 0);
    ck_assert_int_ne(m.x_mask, m.h_mask);
    /* the invariants standing for xm and hm in the body are mul operands */
    ck_assert_int_eq(s->body->nodes[s->inputs[s->n_seq + s->n_state + m.x_mask]].out[0].shape.dims[1], I);
    ck_assert_int_eq(s->body->nodes[s->inputs[s->n_seq + s->n_state + m.h_mask]].out[0].shape.dims[1], H);
}
END_TEST

/* One mask per gate, the same invariant: matched; a mask broadcast from
 * [1, H] matches too (fuse_rnn broadcasts it to [B, H]). */
START_TEST(test_hand_masks_shared)
{
    lg_value hm = lg_input(g, "hm", LG_F32, lg_shape_of(2, 1, H));
    lg_value per_gate[4] = {hm, hm, hm, hm};
    lg_rnn_match m;
    assert_match(hand_lstm_h_masks(per_gate), LG_RNN_LSTM, false, &m);
    ck_assert_int_ge(m.h_mask, 0);
    ck_assert_int_eq(m.x_mask, -1);
    assert_match(hand_simple_masked(lg_input(g, "xm", LG_F32, lg_shape_of(2, B, I)), lg_value_invalid()),
                 LG_RNN_SIMPLE_TANH, false, &m);
    ck_assert_int_ge(m.x_mask, 0);
    ck_assert_int_eq(m.h_mask, -1);
}
END_TEST

START_TEST(test_refuse_mask_on_some_gates)
{
    lg_value hm = lg_input(g, "hm", LG_F32, lg_shape_of(2, B, H));
    lg_value per_gate[4] = {hm, hm, lg_value_invalid(), hm};
    assert_refused(hand_lstm_h_masks(per_gate), "gate 2 reads h unmasked where another product reads it times a "
                                                "dropout mask");
}
END_TEST

START_TEST(test_refuse_two_masks)
{
    lg_value per_gate[4];
    for (int k = 0; k < 4; k++) per_gate[k] = lg_input(g, "hm", LG_F32, lg_shape_of(2, B, H));
    assert_refused(hand_lstm_h_masks(per_gate), "gate 1 reads h times another dropout mask than another product");
}
END_TEST

/* x_t times something computed in the body, or a mask that broadcasts it
 * to another shape, is no dropout mask. */
START_TEST(test_refuse_x_times_computed)
{
    hand hd = hand_begin(LG_F32, 1);
    lg_value W = inv(&hd, LG_F32, I, H), U = inv(&hd, LG_F32, H, H);
    lg_value x = lg_mul(hd.x, lg_sigmoid(hd.x));
    assert_refused(hand_end(&hd, lg_tanh(lg_add(mm(hd.h, U), mm(x, W))), lg_value_invalid()),
                   "gate 0 multiplies x_t by sigmoid, not by an invariant mask");
    hand h2 = hand_begin(LG_F32, 1);
    W = inv(&h2, LG_F32, I, H), U = inv(&h2, LG_F32, H, H);
    lg_value wide = lg_loop_invariant(h2.l, lg_input(g, "m", LG_F32, lg_shape_of(3, 2, B, I)));
    lg_value xw = lg_reshape(lg_mul(h2.x, wide), lg_shape_of(2, 2 * B, I));
    assert_refused(hand_end(&h2, lg_tanh(lg_add(mm(h2.h, U), lg_slice(mm(xw, W), 0, 0, B))), lg_value_invalid()),
                   "slices a value along axis 0");
}
END_TEST

START_TEST(test_refuse_h_times_computed)
{
    hand hd = hand_begin(LG_F32, 1);
    lg_value W = inv(&hd, LG_F32, I, H), U = inv(&hd, LG_F32, H, H);
    lg_value h = lg_mul(hd.h, lg_add(hd.h, hd.h));
    assert_refused(hand_end(&hd, lg_tanh(lg_add(mm(h, U), mm(hd.x, W))), lg_value_invalid()),
                   "gate 0 multiplies h by add (not an invariant dropout mask or the reset gate) before U");
}
END_TEST

START_TEST(test_refuse_peephole)
{
    peephole p = peephole_new(g, "peephole", I, H, LG_F32, 1);
    lg_value hs, hl, cl;
    ck_assert_int_eq(peephole_sequence(g, &p, input(LG_F32, 3, B, T, I), input(LG_F32, 2, B, H, 0),
                                       input(LG_F32, 2, B, H, 0), &hs, &hl, &cl),
                     LG_OK);
    assert_refused(last_loop(g), "peephole term c*w_c in gate 0");
}
END_TEST

START_TEST(test_refuse_no_recurrence)
{
    hand hd = hand_begin(LG_F32, 1);
    lg_value W = inv(&hd, LG_F32, I, H);
    assert_refused(hand_end(&hd, lg_tanh(mm(hd.x, W)), lg_value_invalid()), "gate 0 has no recurrent term h U");
}
END_TEST

START_TEST(test_refuse_truncated)
{
    lg_cell *cell = lg_cell_new(g, "gru", I, opts_of(LG_CELL_GRU));
    lg_loop_opts lo = lg_loop_opts_default();
    lo.time_major = true;
    lo.truncate = 2;
    lg_loop *l = lg_loop_new(g, NULL, lo);
    lg_value x_t = lg_loop_seq(l, input(LG_F32, 3, T, B, I)), s = lg_loop_state(l, input(LG_F32, 2, B, H, 0)), n, y;
    lg_cell_step(cell, l, x_t, &s, lg_value_invalid(), lg_value_invalid(), &n, &y);
    lg_loop_next(l, s, n);
    lg_loop_emit(l, y);
    ck_assert_int_eq(lg_loop_end(l, NULL, NULL), LG_OK);
    assert_refused(last_loop(g), "truncated BPTT (gradients stop every 2 steps)");
    lg_cell_free(cell);
}
END_TEST

/* A mask (opts.mask: any step may be masked) is matched as the mask, but
 * not with outputs repeated past masked steps (the fused op gives zeros). */
/* A mask (not lengths), its masked steps' outputs zeros or repeated: both
 * match, the repeat read as the loop's attribute. */
START_TEST(test_mask_repeating)
{
    lg_cell *cell = lg_cell_new(g, "lstm", I, opts_of(LG_CELL_LSTM));
    lg_loop_opts lo = lg_loop_opts_default();
    lo.time_major = true;
    lo.mask = input(LG_F32, 2, T, B, 0);
    lo.zero_output_for_mask = !_i;
    lg_loop *l = lg_loop_new(g, NULL, lo);
    lg_value x_t = lg_loop_seq(l, input(LG_F32, 3, T, B, I)), s[2], n[2], y;
    for (int k = 0; k < 2; k++) s[k] = lg_loop_state(l, input(LG_F32, 2, B, H, 0));
    lg_cell_step(cell, l, x_t, s, lg_value_invalid(), lg_value_invalid(), n, &y);
    for (int k = 0; k < 2; k++) lg_loop_next(l, s[k], n[k]);
    lg_loop_emit(l, y);
    ck_assert_int_eq(lg_loop_end(l, NULL, NULL), LG_OK);
    lg_rnn_match m;
    assert_match(last_loop(g), LG_RNN_LSTM, true, &m);
    ck_assert_int_eq(m.mask_seq, 1 + 2 + 3); /* after x, h, c and W, U, b */
    ck_assert_int_eq(m.repeat, _i);
    lg_cell_free(cell);
}
END_TEST

/* A next state chosen by where in the body (written by hand here; also
 * masking built into a loop inside another loop's body). */
START_TEST(test_refuse_where_in_body)
{
    hand hd = hand_begin(LG_F32, 1);
    lg_value W = inv(&hd, LG_F32, I, H), U = inv(&hd, LG_F32, H, H), keep = inv(&hd, LG_F32, B, 1);
    lg_value h2 = lg_tanh(lg_add(mm(hd.x, W), mm(hd.h, U)));
    assert_refused(hand_end(&hd, lg_where(keep, h2, hd.h), lg_value_invalid()), "state 0's next value is chosen by where");
}
END_TEST

START_TEST(test_refuse_gradient_loop)
{
    lg_cell *cell = lg_cell_new(g, "lstm", I, opts_of(LG_CELL_LSTM));
    lg_rnn_result r;
    lg_value x = input(LG_F32, 3, B, T, I);
    ck_assert_int_eq(lg_rnn(g, NULL, cell, x, lg_rnn_opts_default(), &r), LG_OK);
    lg_value loss = lg_sum(r.output, NULL, 0, false), dw;
    lg_value w = lg_cell_kernel(cell);
    ck_assert_int_eq(lg_grad(g, loss, &w, 1, &dw), LG_OK);
    const lg_loop_spec *grad = NULL;
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == LG_OP_LOOP && g->nodes[i].attrs.loop->gradient) grad = g->nodes[i].attrs.loop;
    ck_assert_ptr_nonnull(grad);
    assert_refused(grad, "a gradient loop");
    lg_cell_free(cell);
}
END_TEST

static Suite *match_suite(void)
{
    Suite *s = suite_create("fuse_rnn_match");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_cell_api, 0, 5 * 16);
    tcase_add_test(tc, test_layers);
    tcase_add_test(tc, test_hand_lstm_split);
    tcase_add_test(tc, test_hand_lstm_per_gate);
    tcase_add_test(tc, test_hand_lstm_sliced_weights);
    tcase_add_test(tc, test_hand_gru_textbook);
    tcase_add_test(tc, test_hand_simple_relu);
    tcase_add_test(tc, test_refuse_activation);
    tcase_add_test(tc, test_refuse_recurrent_activation);
    tcase_add_test(tc, test_refuse_simple_sigmoid);
    tcase_add_loop_test(tc, test_cell_api_dropout, 0, 5 * 2);
    tcase_add_test(tc, test_hand_masks_shared);
    tcase_add_test(tc, test_refuse_mask_on_some_gates);
    tcase_add_test(tc, test_refuse_two_masks);
    tcase_add_test(tc, test_refuse_x_times_computed);
    tcase_add_test(tc, test_refuse_h_times_computed);
    tcase_add_test(tc, test_refuse_peephole);
    tcase_add_test(tc, test_refuse_no_recurrence);
    tcase_add_test(tc, test_refuse_truncated);
    tcase_add_loop_test(tc, test_mask_repeating, 0, 2);
    tcase_add_test(tc, test_refuse_where_in_body);
    tcase_add_test(tc, test_refuse_gradient_loop);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lg_check_run(match_suite()); }
