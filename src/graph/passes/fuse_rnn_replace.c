/*
 * fuse_rnn_replace.c — build the fused rnn node for a matched loop
 * (lg_rnn_fuse_loop in fuse_rnn_match.h).
 *
 * The weights come from the loop's invariants as the matcher found them, one
 * H-column block per gate: a block is its invariant sliced to those columns,
 * and the blocks are concatenated in Keras gate order. When the blocks are
 * one invariant in order, the invariant is used as it is. Bias blocks on one
 * gate and side add up (PyTorch-style b_ih + b_hh), missing ones are zeros.
 */
#include "graph/ops.h"
#include "graph/passes/fuse_rnn_match.h"

static lg_value outer_inv(lg_graph *g, int32_t loop, int inv)
{
    const lg_loop_spec *s = lg_node_at(g, loop)->attrs.loop;
    return lg_node_input(g, loop, s->n_seq + s->n_state + inv);
}

/* H columns from `start` of v's last axis (v itself when that is all of v). */
static lg_value block(lg_value v, int64_t start, int64_t h)
{
    lg_shape s = lg_value_shape(v);
    int last = s.rank - 1;
    return start == 0 && s.dims[last] == h ? v : lg_slice(v, last, start, h);
}

/* The [rows, G H] weight from one piece per gate. */
static lg_value weight(lg_graph *g, int32_t loop, const lg_rnn_piece *p, int n, int gates, int64_t h)
{
    lg_value blocks[4];
    bool whole = true;
    for (int k = 0; k < gates; k++) {
        const lg_rnn_piece *q = NULL;
        for (int i = 0; i < n; i++)
            if (p[i].gate == k) q = &p[i];
        LG_ASSERT(q); /* the matcher gives every gate one piece */
        lg_value v = outer_inv(g, loop, q->inv);
        whole = whole && q->inv == p[0].inv && q->start == k * h && lg_value_shape(v).dims[1] == gates * h;
        blocks[k] = block(v, q->start, h);
    }
    return whole ? outer_inv(g, loop, p[0].inv) : lg_concat(blocks, gates, 1);
}

/* One side's bias [G H]: per gate the sum of its pieces, or zeros. */
static lg_value bias_row(lg_graph *g, int32_t loop, const lg_rnn_match *m, int side, int gates, lg_dtype dt)
{
    lg_value blocks[4];
    int64_t h = m->units;
    for (int k = 0; k < gates; k++) {
        lg_value sum = lg_value_invalid();
        for (int i = 0; i < m->n_b; i++) {
            const lg_rnn_piece *q = &m->b[i];
            if (q->gate != k || q->side != side) continue;
            lg_value v = outer_inv(g, loop, q->inv);
            if (q->row >= 0) v = lg_slice(v, 0, q->row, 1);
            v = lg_reshape(block(v, q->start, h), lg_shape_of(1, h));
            sum = lg_value_ok(sum) ? lg_add(sum, v) : v;
        }
        blocks[k] = lg_value_ok(sum) ? sum : lg_broadcast_to(lg_scalar(g, dt, 0), lg_shape_of(1, h));
    }
    return lg_concat(blocks, gates, 0);
}

unsigned lg_rnn_match_flags(const lg_rnn_match *m, int n_grad)
{
    return (m->has_bias ? LG_RNN_BIAS : 0) | (m->reverse ? LG_RNN_REVERSE : 0) | (m->mask_seq >= 0 ? LG_RNN_MASK : 0) |
           (n_grad == 0 ? LG_RNN_FORWARD_ONLY : 0) | (m->h_mask >= 0 ? LG_RNN_HMASK : 0) |
           (m->repeat ? LG_RNN_REPEAT : 0) | (n_grad > 1 ? LG_RNN_SHARED_WS : 0);
}

int32_t lg_rnn_fuse_loop(lg_graph *g, int32_t loop, const lg_rnn_match *m, int n_grad, lg_value *repl)
{
    bool forward_only = n_grad == 0;
    const lg_loop_spec *s = lg_node_at(g, loop)->attrs.loop;
    int n_state = s->n_state, n_y = s->n_y;
    for (int k = 0; k < n_state + n_y; k++) repl[k] = lg_value_invalid();
    int gates = lg_rnn_cell_gates(m->cell);
    lg_value x = lg_node_input(g, loop, m->x_seq);
    lg_dtype dt = lg_value_dtype(x);
    /* the same dropout mask at every step: x [T, B, I] times it before the node */
    if (m->x_mask >= 0) x = lg_mul(x, outer_inv(g, loop, m->x_mask));
    lg_value states[2] = {lg_node_input(g, loop, s->n_seq + m->h_state), lg_value_invalid()};
    if (m->c_state >= 0) states[1] = lg_node_input(g, loop, s->n_seq + m->c_state);
    lg_value w = weight(g, loop, m->w, m->n_w, gates, m->units);
    lg_value u = weight(g, loop, m->u, m->n_u, gates, m->units);
    lg_value b = lg_value_invalid(), mask = lg_value_invalid(), hmask = lg_value_invalid();
    if (m->has_bias) {
        b = bias_row(g, loop, m, 0, gates, dt);
        if (m->cell == LG_RNN_GRU) {
            lg_value rows[2] = {lg_reshape(b, lg_shape_of(2, 1, gates * m->units)),
                                lg_reshape(bias_row(g, loop, m, 1, gates, dt), lg_shape_of(2, 1, gates * m->units))};
            b = lg_concat(rows, 2, 0);
        }
    }
    if (m->mask_seq >= 0) mask = lg_node_input(g, loop, m->mask_seq);
    if (m->mask_seq >= 0 && s->masking == LG_LOOP_BY_LENGTHS)
        mask = lg_loop_valid_of_lengths(g, lg_node_at(g, loop)->name, mask, x);
    if (m->h_mask >= 0) { /* [B, H] as the node reads it */
        hmask = outer_inv(g, loop, m->h_mask);
        if (!lg_shape_equal(lg_value_shape(hmask), lg_value_shape(states[0]))) hmask = lg_broadcast_like(hmask, states[0]);
    }
    unsigned flags = lg_rnn_match_flags(m, n_grad);
    int32_t id = lg_rnn_build_sized(m->cell, flags, forward_only ? &m->forward_sizes : &m->train_sizes, x, states, w,
                                    u, (lg_rnn_extras){b, mask, hmask}, lg_node_at(g, loop)->name);
    if (id < 0) return -1;
    lg_rnn_layout L = lg_rnn_layout_of(m->cell, flags);
    repl[m->h_state] = lg_value_of(g, id, L.h_t);
    if (m->c_state >= 0) repl[m->c_state] = lg_value_of(g, id, L.c_t);
    if (m->y_out >= 0) repl[n_state + m->y_out] = lg_value_of(g, id, L.ys);
    /* Keras's zero_output_for_mask=False: past its length a forward loop's
     * output repeats h (lg_loop_lower fills the loop's the same way) */
    if (m->y_out >= 0 && s->masking == LG_LOOP_BY_LENGTHS && s->repeat_output && !s->reverse)
        repl[n_state + m->y_out] = lg_loop_fill_output(mask, repl[n_state + m->y_out], repl[m->h_state]);
    return id;
}
