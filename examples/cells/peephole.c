/* peephole.c — the peephole LSTM cell of peephole.h. */
#include "peephole.h"

peephole peephole_new(lg_graph *g, const char *name, int input_dim, int units, lg_dtype dtype, uint64_t seed)
{
    peephole p = {.units = units};
    lg_scope_push(g, name);
    p.kernel = lg_param(g, "kernel", dtype, lg_shape_of(2, input_dim, 4 * units));
    p.recurrent_kernel = lg_param(g, "recurrent_kernel", dtype, lg_shape_of(2, units, 4 * units));
    p.bias = lg_param(g, "bias", dtype, lg_shape_of(1, 4 * units));
    p.p_i = lg_param(g, "input_gate_peephole", dtype, lg_shape_of(1, units));
    p.p_f = lg_param(g, "forget_gate_peephole", dtype, lg_shape_of(1, units));
    p.p_o = lg_param(g, "output_gate_peephole", dtype, lg_shape_of(1, units));
    lg_scope_pop(g);
    /* one key per parameter, so each draws its own stream */
    lg_init_glorot_uniform(lg_param_tensor(p.kernel), seed, 0);
    lg_init_glorot_uniform(lg_param_tensor(p.recurrent_kernel), seed, 1);
    lg_init_glorot_uniform(lg_param_tensor(p.p_i), seed, 2);
    lg_init_glorot_uniform(lg_param_tensor(p.p_f), seed, 3);
    lg_init_glorot_uniform(lg_param_tensor(p.p_o), seed, 4);
    lg_tensor *b = lg_param_tensor(p.bias); /* NULL when g has an error */
    for (int j = units; b && j < 2 * units; j++) lg_tensor_set(b, j, 1.0);
    return p;
}

void peephole_step(lg_loop *l, const peephole *cell, lg_value x_t, lg_value h, lg_value c, lg_value *h_next,
                   lg_value *c_next)
{
    lg_value w = lg_loop_invariant(l, cell->kernel), u = lg_loop_invariant(l, cell->recurrent_kernel);
    lg_value b = lg_loop_invariant(l, cell->bias);
    lg_value p_i = lg_loop_invariant(l, cell->p_i), p_f = lg_loop_invariant(l, cell->p_f);
    lg_value p_o = lg_loop_invariant(l, cell->p_o);

    lg_value z = lg_add(lg_add(lg_matmul(x_t, w, false, false), lg_matmul(h, u, false, false)), b); /* [B, 4u] */
    lg_value zs[4];                                                                                  /* i, f, c, o */
    lg_split(z, -1, NULL, 4, zs);
    lg_value i = lg_sigmoid(lg_add(zs[0], lg_mul(p_i, c)));
    lg_value f = lg_sigmoid(lg_add(zs[1], lg_mul(p_f, c)));
    lg_value c_t = lg_add(lg_mul(f, c), lg_mul(i, lg_tanh(zs[2])));
    lg_value o = lg_sigmoid(lg_add(zs[3], lg_mul(p_o, c_t))); /* o peeks at the new state */
    *c_next = c_t;
    *h_next = lg_mul(o, lg_tanh(c_t));
}

lg_status peephole_sequence(lg_graph *g, const peephole *cell, lg_value x, lg_value h0, lg_value c0, lg_value *hs,
                            lg_value *h_last, lg_value *c_last)
{
    lg_loop *l = lg_loop_new(g, NULL, lg_loop_opts_default());
    lg_value x_t = lg_loop_seq(l, x), h = lg_loop_state(l, h0), c = lg_loop_state(l, c0);
    lg_value h_next, c_next;
    peephole_step(l, cell, x_t, h, c, &h_next, &c_next);
    lg_loop_next(l, h, h_next);
    lg_loop_next(l, c, c_next);
    lg_loop_emit(l, h_next);
    lg_value last[2], seq;
    lg_status s = lg_loop_end(l, last, &seq);
    if (hs) *hs = s == LG_OK ? seq : lg_value_invalid();
    if (h_last) *h_last = s == LG_OK ? last[0] : lg_value_invalid();
    if (c_last) *c_last = s == LG_OK ? last[1] : lg_value_invalid();
    return s;
}
