/* nested.c — the Keras guide's NestedCell of nested.h. */
#include "nested.h"

nested_cell nested_cell_new(lg_graph *g, const char *name, int i1, int i2, int i3, int u1, int u2, int u3,
                            lg_dtype dtype, uint64_t seed)
{
    nested_cell c = {.i1 = i1, .i2 = i2, .i3 = i3, .u1 = u1, .u2 = u2, .u3 = u3};
    lg_scope_push(g, name);
    c.kernel_1 = lg_param(g, "kernel_1", dtype, lg_shape_of(2, i1, u1));
    c.kernel_2_3 = lg_param(g, "kernel_2_3", dtype, lg_shape_of(4, i2, i3, u2, u3));
    lg_scope_pop(g);
    lg_init_glorot_uniform(lg_param_tensor(c.kernel_1), seed, 0);
    lg_init_glorot_uniform(lg_param_tensor(c.kernel_2_3), seed, 1);
    return c;
}

void nested_cell_step(lg_loop *l, const nested_cell *cell, lg_value x1_t, lg_value x2_t, lg_value s1, lg_value s2,
                      lg_value out[2], lg_value next[2])
{
    lg_value k1 = lg_loop_invariant(l, cell->kernel_1);
    /* einsum("bij,ijkl->bkl") as [B, i2*i3] x [i2*i3, u2*u3] */
    lg_value k23 = lg_reshape(lg_loop_invariant(l, cell->kernel_2_3),
                              lg_shape_of(2, cell->i2 * cell->i3, cell->u2 * cell->u3));
    lg_value x2_flat = lg_reshape(x2_t, lg_shape_of(2, -1, cell->i2 * cell->i3));
    out[0] = lg_matmul(x1_t, k1, false, false);
    out[1] = lg_reshape(lg_matmul(x2_flat, k23, false, false), lg_shape_of(3, -1, cell->u2, cell->u3));
    next[0] = lg_add(s1, out[0]);
    next[1] = lg_add(s2, out[1]);
}

lg_status nested_cell_sequence(lg_graph *g, const nested_cell *cell, lg_value x1, lg_value x2, lg_value s1_0,
                               lg_value s2_0, lg_value outs[2], lg_value states[2])
{
    lg_loop *l = lg_loop_new(g, NULL, lg_loop_opts_default());
    lg_value x1_t = lg_loop_seq(l, x1), x2_t = lg_loop_seq(l, x2);
    lg_value s1 = lg_loop_state(l, s1_0), s2 = lg_loop_state(l, s2_0);
    lg_value out[2], next[2];
    nested_cell_step(l, cell, x1_t, x2_t, s1, s2, out, next);
    lg_loop_next(l, s1, next[0]);
    lg_loop_next(l, s2, next[1]);
    lg_loop_emit(l, out[0]);
    lg_loop_emit(l, out[1]);
    lg_value last[2], seq[2];
    lg_status s = lg_loop_end(l, last, seq);
    for (int k = 0; k < 2; k++) {
        if (outs) outs[k] = s == LG_OK ? seq[k] : lg_value_invalid();
        if (states) states[k] = s == LG_OK ? last[k] : lg_value_invalid();
    }
    return s;
}
