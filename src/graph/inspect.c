/*
 * inspect.c — nodes' outputs and loop nodes as tools see them
 * (lg_graph_node_output in graph.h, lg_loop_info in loop.h), so a tool
 * such as tools/viz reads a graph without the private structs.
 */
#include "graph/internal.h"
#include "graph/loop.h"

static const lg_node *node_or_null(const lg_graph *g, int i)
{
    return g && i >= 0 && i < g->n_nodes ? &g->nodes[i] : NULL;
}

static const lg_loop_spec *loop_or_null(const lg_graph *g, int i)
{
    const lg_node *n = node_or_null(g, i);
    return n && n->op == LG_OP_LOOP ? n->attrs.loop : NULL;
}

lg_value lg_graph_node_output(const lg_graph *g, int i, int o)
{
    const lg_node *n = node_or_null(g, i);
    if (!n || o < 0 || o >= n->n_out) return lg_value_invalid();
    return lg_value_of((lg_graph *)g, i, o);
}

bool lg_graph_node_loop(const lg_graph *g, int i, lg_loop_info *info)
{
    const lg_loop_spec *s = loop_or_null(g, i);
    if (!s) return false;
    if (info)
        *info = (lg_loop_info){.body = s->body, .n_seq = s->n_seq, .n_state = s->n_state, .n_inv = s->n_inv,
                               .n_y = s->n_y, .n_res = s->n_res, .reverse = s->reverse, .has_stop = s->has_stop,
                               .gradient = s->gradient, .steps = s->steps,
                               .by_lengths = s->masking == LG_LOOP_BY_LENGTHS, .by_mask = s->masking == LG_LOOP_BY_MASK,
                               .zero_output_for_mask = !s->repeat_output, .truncate = s->truncate};
    return true;
}

int lg_loop_body_input(const lg_graph *g, int i, int k)
{
    const lg_loop_spec *s = loop_or_null(g, i);
    return s && k >= 0 && k < s->n_seq + s->n_state + s->n_inv ? s->inputs[k] : -1;
}

lg_value lg_loop_body_output(const lg_graph *g, int i, int k)
{
    const lg_loop_spec *s = loop_or_null(g, i);
    if (!s || k < 0 || k >= s->n_state + s->n_y + s->has_stop) return lg_value_invalid();
    return lg_value_of(s->body, s->outputs[k].node, s->outputs[k].out);
}

lg_value lg_loop_body_residual(const lg_graph *g, int i, int k)
{
    const lg_loop_spec *s = loop_or_null(g, i);
    if (!s || k < 0 || k >= s->n_res) return lg_value_invalid();
    return lg_value_of(s->body, s->res[k].node, s->res[k].out);
}
