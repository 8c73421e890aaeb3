/*
 * autodiff.h — reverse-mode differentiation as a graph-to-graph pass.
 *
 * lg_grad() appends to the graph the nodes that compute d loss / d wrt[i] and
 * returns them as ordinary values: fetch them, compile them with the forward
 * values, inspect them like any other node (their names start with "grad/"
 * and lg_graph_node_is_grad() is true).
 *
 *     lg_value loss = lg_mse(y, pred);
 *     lg_value params[2] = {w, b}, grads[2];
 *     if (lg_grad(g, loss, params, 2, grads) != LG_OK) ...;
 *     lg_graph_run(g, feeds, 2, grads, 2, out);
 *
 * Fan-out is summed, broadcasting is summed back to each input's shape, and
 * only nodes on a path between wrt and loss get gradient nodes. A wrt value
 * that does not reach the loss gets zeros of its shape. wrt may be
 * parameters, inputs or any float value. Calling lg_grad() again on the same
 * graph (for another loss, or again) works and adds new nodes.
 *
 * Errors: LG_ERR_GRAPH (graph has an error), LG_ERR_INVALID_ARGUMENT (NULL,
 * invalid value, value of another graph, n < 0), LG_ERR_SHAPE (loss not a
 * scalar: rank 0 or all dims 1), LG_ERR_DTYPE (loss or a wrt not float).
 * grads_out is filled with invalid values on error.
 */
#ifndef LG_AUTODIFF_H
#define LG_AUTODIFF_H

#include "api.h"
#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

lg_status lg_grad(lg_graph *g, lg_value loss, const lg_value *wrt, int n, lg_value *grads_out);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
