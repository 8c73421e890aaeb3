/*
 * autodiff.c — reverse mode as a graph-to-graph pass.
 *
 * 1. forward sweep: nodes that depend on some wrt value;
 * 2. backward sweep: nodes the loss depends on;
 * 3. in reverse arena order, for each node in both sets with a gradient
 *    reaching an output, the op's rule builds the input gradients, summed
 *    into each input's accumulator (fan-out).
 * Nodes outside both sets get no gradient nodes, so branches that do not
 * reach the loss cost nothing.
 */
#include <string.h>

#include "graph/autodiff.h"
#include "graph/ops.h"
#include "ops/op.h"

static lg_status check_value(lg_graph *g, lg_value v, const char *what, int i)
{
    if (v.graph != g || v.node < 0 || v.node >= g->n_nodes || v.output < 0 || v.output >= g->nodes[v.node].n_out)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_grad: %s[%d] is not a value of this graph", what, i);
    if (!lg_is_float(lg_value_dtype(v)))
        return lg_fail(LG_ERR_DTYPE, "lg_grad: %s[%d] '%s' is %s; gradients need f32 or f64", what, i, lg_value_name(v),
                       lg_dtype_name(lg_value_dtype(v)));
    return LG_OK;
}

static lg_status check_args(lg_graph *g, const lg_value *ys, int n_y, const lg_value *wrt, int n)
{
    if (!g) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_grad: graph is NULL");
    if (g->error) return lg_fail(LG_ERR_GRAPH, "lg_grad: the graph has a builder error: %s", g->error);
    if (n < 0 || (n > 0 && !wrt)) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_grad: wrt is NULL or n < 0");
    lg_status st = LG_OK;
    for (int i = 0; !st && i < n_y; i++) st = check_value(g, ys[i], "output", i);
    for (int i = 0; !st && i < n; i++) st = check_value(g, wrt[i], "wrt", i);
    return st;
}

/* Mark the nodes on a path from some wrt node to some output node: those
 * that depend on a wrt value among those the outputs need (w.needed). */
static bool mark_relevant(const lg_graph *g, const lg_walk *w, const lg_value *wrt, int n, bool *relevant)
{
    bool *from_wrt = calloc((size_t)(w->end ? w->end : 1), sizeof *from_wrt);
    if (!from_wrt) return false;
    for (int i = 0; i < n; i++)
        if (wrt[i].node < w->end) from_wrt[wrt[i].node] = true;
    for (int32_t i = 0; i < w->end; i++)
        for (int j = 0; j < g->nodes[i].n_in && !from_wrt[i]; j++) from_wrt[i] = from_wrt[g->nodes[i].in[j].node];
    for (int32_t i = 0; i < w->end; i++) relevant[i] = from_wrt[i] && w->needed[i];
    free(from_wrt);
    return true;
}

static lg_value accumulate(lg_value acc, lg_value d) { return lg_value_ok(acc) ? lg_add(acc, d) : d; }

/* lg_vjp with the nodes before `first` as leaves: no rule of theirs runs. */
static lg_status vjp(lg_graph *g, int32_t first, const lg_value *ys, const lg_value *dys, int n_y, const lg_value *wrt,
                     int n, lg_value *grads_out)
{
    for (int i = 0; grads_out && i < n; i++) grads_out[i] = lg_value_invalid();
    if (!grads_out && n > 0) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_grad: grads_out is NULL");
    lg_status st = check_args(g, ys, n_y, wrt, n);
    if (st) return st;

    lg_ref *roots = malloc((size_t)(n_y > 0 ? n_y : 1) * sizeof *roots);
    for (int k = 0; roots && k < n_y; k++) roots[k] = (lg_ref){ys[k].node, ys[k].output};
    lg_walk w = {0};
    bool walked = roots && lg_walk_init(&w, g, roots, n_y);
    free(roots);
    int32_t end = w.end;
    const int *base = w.base; /* the accumulator of each node output */
    bool *relevant = walked ? calloc((size_t)(end ? end : 1), sizeof *relevant) : NULL;
    lg_value *acc = relevant ? malloc((size_t)(base[end] ? base[end] : 1) * sizeof *acc) : NULL;
    if (!acc || !mark_relevant(g, &w, wrt, n, relevant)) {
        free(relevant), free(acc), lg_walk_free(&w);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "lg_grad: out of memory");
    }
    for (int i = 0; i < base[end]; i++) acc[i] = lg_value_invalid();

    bool was_in_grad = g->in_grad;
    g->in_grad = true;
    for (int k = 0; k < n_y; k++)
        if (lg_value_ok(dys[k])) acc[base[ys[k].node] + ys[k].output] = accumulate(acc[base[ys[k].node] + ys[k].output], dys[k]);
    for (int32_t i = end - 1; i >= first && !g->error; i--) {
        const lg_op_def *def = lg_op_defs[g->nodes[i].op];
        if (!relevant[i] || !def->grad) continue;
        int n_in = g->nodes[i].n_in, n_out = g->nodes[i].n_out;
        bool any = false;
        for (int o = 0; o < n_out; o++) any = any || lg_value_ok(acc[base[i] + o]);
        if (!any) continue;
        lg_value *dx = malloc((size_t)n_in * sizeof *dx);
        if (!dx) {
            lg_graph_fail(g, "lg_grad: out of memory");
            break;
        }
        for (int j = 0; j < n_in; j++) dx[j] = lg_value_invalid();
        def->grad(g, i, &acc[base[i]], dx);
        for (int j = 0; j < n_in; j++) {
            lg_ref in = g->nodes[i].in[j];
            if (lg_value_ok(dx[j]) && relevant[in.node]) acc[base[in.node] + in.out] = accumulate(acc[base[in.node] + in.out], dx[j]);
        }
        free(dx);
    }
    for (int k = 0; k < n && !g->error; k++) {
        lg_value d = wrt[k].node < end ? acc[base[wrt[k].node] + wrt[k].output] : lg_value_invalid();
        if (!lg_value_ok(d)) { /* does not reach the loss: zeros of its shape */
            lg_value zero = lg_scalar_like(wrt[k], 0);
            d = lg_value_rank(wrt[k]) ? lg_broadcast_like(zero, wrt[k]) : zero;
        }
        grads_out[k] = d;
    }
    g->in_grad = was_in_grad;
    free(relevant), free(acc);
    lg_walk_free(&w);
    if (g->error) {
        for (int k = 0; k < n; k++) grads_out[k] = lg_value_invalid();
        return lg_fail(LG_ERR_GRAPH, "lg_grad: %s", g->error);
    }
    return LG_OK;
}

lg_status lg_vjp(lg_graph *g, const lg_value *ys, const lg_value *dys, int n_y, const lg_value *wrt, int n,
                 lg_value *grads_out)
{
    return vjp(g, 0, ys, dys, n_y, wrt, n, grads_out);
}

lg_status lg_vjp_after(lg_graph *g, int32_t first, const lg_value *ys, const lg_value *dys, int n_y, const lg_value *wrt,
                       int n, lg_value *grads_out)
{
    return vjp(g, first, ys, dys, n_y, wrt, n, grads_out);
}

lg_status lg_grad(lg_graph *g, lg_value loss, const lg_value *wrt, int n, lg_value *grads_out)
{
    for (int i = 0; grads_out && i < n; i++) grads_out[i] = lg_value_invalid();
    if (!g) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_grad: graph is NULL");
    if (g->error) return lg_fail(LG_ERR_GRAPH, "lg_grad: the graph has a builder error: %s", g->error);
    if (loss.graph != g || loss.node < 0 || loss.node >= g->n_nodes)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_grad: the loss is not a value of this graph");
    lg_shape s = lg_value_shape(loss);
    if (lg_shape_numel(s) != 1)
        return lg_fail(LG_ERR_SHAPE, "lg_grad: the loss '%s' has shape %s; it must be a scalar", lg_value_name(loss),
                       lg_shape_cstr(s));
    if (!lg_is_float(lg_value_dtype(loss)))
        return lg_fail(LG_ERR_DTYPE, "lg_grad: the loss '%s' is %s; it must be f32 or f64", lg_value_name(loss),
                       lg_dtype_name(lg_value_dtype(loss)));
    bool was_in_grad = g->in_grad;
    g->in_grad = true;
    lg_value one = lg_scalar_like(loss, 1);
    lg_value seed = lg_value_rank(loss) ? lg_broadcast_like(one, loss) : one;
    g->in_grad = was_in_grad;
    return lg_vjp(g, &loss, &seed, 1, wrt, n, grads_out);
}
