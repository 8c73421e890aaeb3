/* hand_lstm.c — the LSTM cell of hand_lstm.h, written from ops. */
#include "hand_lstm.h"

hand_lstm hand_lstm_new(lg_graph *g, const char *name, int input_dim, int units, lg_dtype dtype)
{
    hand_lstm cell = {.units = units};
    lg_scope_push(g, name);
    cell.kernel = lg_param(g, "kernel", dtype, lg_shape_of(2, input_dim, 4 * units));
    cell.recurrent_kernel = lg_param(g, "recurrent_kernel", dtype, lg_shape_of(2, units, 4 * units));
    cell.bias = lg_param(g, "bias", dtype, lg_shape_of(1, 4 * units));
    lg_scope_pop(g);
    return cell;
}

void hand_lstm_step(lg_loop *l, const hand_lstm *cell, lg_value x_t, lg_value h, lg_value c, lg_value *h_next,
                    lg_value *c_next)
{
    lg_value z = lg_add(lg_add(lg_matmul(x_t, lg_loop_invariant(l, cell->kernel), false, false),
                               lg_matmul(h, lg_loop_invariant(l, cell->recurrent_kernel), false, false)),
                        lg_loop_invariant(l, cell->bias)); /* [B, 4u] */
    lg_value zs[4];                                        /* i, f, c, o */
    lg_split(z, -1, NULL, 4, zs);
    *c_next = lg_add(lg_mul(lg_sigmoid(zs[1]), c), lg_mul(lg_sigmoid(zs[0]), lg_tanh(zs[2])));
    *h_next = lg_mul(lg_sigmoid(zs[3]), lg_tanh(*c_next));
}

lg_status hand_lstm_sequence(lg_graph *g, const hand_lstm *cell, lg_value x, lg_loop_opts lo, lg_value *ys,
                             lg_value *h_last)
{
    int batch = (int)lg_value_shape(x).dims[lo.time_major ? 1 : 0];
    lg_value zeros = lg_broadcast_to(lg_scalar(g, lg_value_dtype(x), 0), lg_shape_of(2, batch, cell->units));
    lg_loop *l = lg_loop_new(g, NULL, lo);
    lg_value x_t = lg_loop_seq(l, x), h = lg_loop_state(l, zeros), c = lg_loop_state(l, zeros);
    lg_value h_next, c_next;
    hand_lstm_step(l, cell, x_t, h, c, &h_next, &c_next);
    lg_loop_next(l, h, h_next);
    lg_loop_next(l, c, c_next);
    lg_loop_emit(l, h_next);
    lg_value last[2], seq;
    lg_status s = lg_loop_end(l, last, &seq);
    if (ys) *ys = s == LG_OK ? seq : lg_value_invalid();
    if (h_last) *h_last = s == LG_OK ? last[0] : lg_value_invalid();
    return s;
}
