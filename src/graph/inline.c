/*
 * inline.c — copy the part of one graph that some values need into another,
 * with the source graph's inputs standing for given values. The unroll pass
 * (loop.c) inlines a loop body once per step.
 */
#include <string.h>

#include "ops/op.h"

static lg_value copy_node(lg_graph *g, const lg_node *n, const lg_value *in, int32_t *id)
{
    *id = -1;
    if (n->op == LG_OP_CONST) return lg_constant(g, strrchr(n->name, '/') ? strrchr(n->name, '/') + 1 : n->name, n->attrs.tensor);
    if (!lg_op_is_compute(n->op)) /* an input without a value, or a parameter (bodies have none) */
        return lg_graph_fail(g, "inline: '%s' is a %s with no value to stand for it", n->name, lg_op_defs[n->op]->name);
    lg_attrs a = n->attrs;
    if (n->op == LG_OP_LOOP) {
        a.loop = lg_loop_spec_dup(n->attrs.loop);
        if (!a.loop) return lg_graph_fail(g, "inline: out of memory");
    }
    const char *short_name = strrchr(n->name, '/') ? strrchr(n->name, '/') + 1 : n->name;
    *id = lg_node_build(g, n->op, in, n->n_in, &a, short_name);
    if (*id < 0 && a.loop) lg_loop_spec_free(a.loop);
    return *id < 0 ? lg_value_invalid() : lg_value_of(g, *id, 0);
}

bool lg_graph_inline(lg_graph *g, lg_graph *body, const int32_t *inputs, const lg_value *in, int n_in,
                     const lg_ref *want, int n, lg_value *out)
{
    lg_walk w;
    lg_value *map = NULL;
    if (lg_walk_init(&w, body, want, n)) {
        map = malloc((size_t)(w.base[w.end] ? w.base[w.end] : 1) * sizeof *map);
        if (!map) lg_walk_free(&w);
    }
    if (!map) {
        lg_graph_fail(g, "inline: out of memory");
        return false;
    }
    bool ok = true;
    for (int32_t i = 0; ok && i < w.end; i++) {
        if (!w.needed[i]) continue;
        const lg_node *nd = &body->nodes[i];
        if (nd->op == LG_OP_INPUT) {
            int k = 0;
            while (k < n_in && inputs[k] != i) k++;
            map[w.base[i]] = k < n_in ? in[k] : lg_graph_fail(g, "inline: input '%s' has no value", nd->name);
            ok = k < n_in;
            continue;
        }
        lg_value *args = malloc((size_t)(nd->n_in ? nd->n_in : 1) * sizeof *args);
        if (!args) {
            lg_graph_fail(g, "inline: out of memory");
            ok = false;
            break;
        }
        for (int j = 0; j < nd->n_in; j++) args[j] = map[w.base[nd->in[j].node] + nd->in[j].out];
        int32_t id;
        lg_value v = copy_node(g, nd, args, &id);
        free(args);
        ok = lg_value_ok(v);
        for (int o = 0; ok && o < nd->n_out; o++) map[w.base[i] + o] = id >= 0 ? lg_value_of(g, id, o) : v;
    }
    for (int k = 0; ok && k < n; k++) out[k] = map[w.base[want[k].node] + want[k].out];
    free(map);
    lg_walk_free(&w);
    return ok && !g->error;
}
