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

static lg_status check_args(lg_graph *g, lg_value loss, const lg_value *wrt, int n)
{
    if (!g) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_grad: graph is NULL");
    if (g->error) return lg_fail(LG_ERR_GRAPH, "lg_grad: the graph has a builder error: %s", g->error);
    if (n < 0 || (n > 0 && !wrt)) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_grad: wrt is NULL or n < 0");
    if (loss.graph != g || loss.node < 0 || loss.node >= g->n_nodes)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_grad: the loss is not a value of this graph");
    lg_shape s = lg_value_shape(loss);
    if (lg_shape_numel(s) != 1)
        return lg_fail(LG_ERR_SHAPE, "lg_grad: the loss '%s' has shape %s; it must be a scalar", lg_value_name(loss),
                       lg_shape_cstr(s));
    if (!lg_is_float(lg_value_dtype(loss)))
        return lg_fail(LG_ERR_DTYPE, "lg_grad: the loss '%s' is %s; it must be f32 or f64", lg_value_name(loss),
                       lg_dtype_name(lg_value_dtype(loss)));
    for (int i = 0; i < n; i++) {
        if (wrt[i].graph != g || wrt[i].node < 0 || wrt[i].node >= g->n_nodes || wrt[i].output < 0 ||
            wrt[i].output >= g->nodes[wrt[i].node].n_out)
            return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_grad: wrt[%d] is not a value of this graph", i);
        if (!lg_is_float(lg_value_dtype(wrt[i])))
            return lg_fail(LG_ERR_DTYPE, "lg_grad: wrt[%d] '%s' is %s; gradients need f32 or f64", i,
                           lg_value_name(wrt[i]), lg_dtype_name(lg_value_dtype(wrt[i])));
    }
    return LG_OK;
}

/* Mark the nodes on a path from some wrt node to the loss node. */
static void mark_relevant(const lg_graph *g, lg_value loss, const lg_value *wrt, int n, bool *relevant)
{
    int32_t end = loss.node + 1;
    bool *from_wrt = calloc((size_t)end, sizeof *from_wrt);
    bool *to_loss = calloc((size_t)end, sizeof *to_loss);
    if (!from_wrt || !to_loss) {
        free(from_wrt), free(to_loss);
        return; /* nothing marked: the caller reports out of memory */
    }
    for (int i = 0; i < n; i++)
        if (wrt[i].node < end) from_wrt[wrt[i].node] = true;
    for (int32_t i = 0; i < end; i++)
        for (int j = 0; j < g->nodes[i].n_in && !from_wrt[i]; j++) from_wrt[i] = from_wrt[g->nodes[i].in[j].node];
    to_loss[loss.node] = true;
    for (int32_t i = end - 1; i >= 0; i--)
        if (to_loss[i])
            for (int j = 0; j < g->nodes[i].n_in; j++) to_loss[g->nodes[i].in[j].node] = true;
    for (int32_t i = 0; i < end; i++) relevant[i] = from_wrt[i] && to_loss[i];
    free(from_wrt), free(to_loss);
}

static lg_value accumulate(lg_value acc, lg_value d) { return lg_value_ok(acc) ? lg_add(acc, d) : d; }

lg_status lg_grad(lg_graph *g, lg_value loss, const lg_value *wrt, int n, lg_value *grads_out)
{
    for (int i = 0; grads_out && i < n; i++) grads_out[i] = lg_value_invalid();
    if (!grads_out && n > 0) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_grad: grads_out is NULL");
    lg_status st = check_args(g, loss, wrt, n);
    if (st) return st;

    int32_t end = loss.node + 1;
    int *base = malloc((size_t)(end + 1) * sizeof *base); /* first accumulator of each node */
    bool *relevant = calloc((size_t)end, sizeof *relevant);
    if (!base || !relevant) {
        free(base), free(relevant);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "lg_grad: out of memory");
    }
    base[0] = 0;
    for (int32_t i = 0; i < end; i++) base[i + 1] = base[i] + g->nodes[i].n_out;
    lg_value *acc = malloc((size_t)base[end] * sizeof *acc);
    if (!acc) {
        free(base), free(relevant);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "lg_grad: out of memory");
    }
    for (int i = 0; i < base[end]; i++) acc[i] = lg_value_invalid();
    mark_relevant(g, loss, wrt, n, relevant);

    g->in_grad = true;
    lg_value one = lg_scalar_like(loss, 1);
    acc[base[loss.node] + loss.output] = lg_value_rank(loss) ? lg_broadcast_like(one, loss) : one;
    for (int32_t i = end - 1; i >= 0 && !g->error; i--) {
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
    g->in_grad = false;
    free(base), free(relevant), free(acc);
    if (g->error) {
        for (int k = 0; k < n; k++) grads_out[k] = lg_value_invalid();
        return lg_fail(LG_ERR_GRAPH, "lg_grad: %s", g->error);
    }
    return LG_OK;
}
