/*
 * graph.h — the static computation graph and its values.
 *
 * A graph is an append-only arena of nodes. Each node applies one op to
 * values and produces one or more outputs, each with a dtype and a shape that
 * the builder infers when the node is added. A value names one output of one
 * node; it is a small struct passed by value.
 *
 *     lg_graph *g = lg_graph_new();
 *     lg_scope_push(g, "dense");
 *     lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, -1, 3)); // [B, 3]
 *     lg_value w = lg_param(g, "kernel", LG_F32, lg_shape_of(2, 3, 4));
 *     lg_value y = lg_tanh(lg_matmul(x, w, false, false));           // [B, 4]
 *     lg_scope_pop(g);
 *     if (lg_graph_error(g)) fprintf(stderr, "%s\n", lg_graph_error(g));
 *
 * Names are hierarchical: every node created between lg_scope_push(g, "a")
 * and the matching pop is named "a/<name>". Unnamed nodes get their op's name.
 *
 * Sources:
 *   - inputs (placeholders) are fed at run time; their dims may be -1 (batch,
 *     time) until a program is compiled for concrete feed shapes;
 *   - parameters live in the graph's parameter store: their tensors are
 *     created zero-filled with the graph, outlive every compiled program (so
 *     recompiling for a new batch size keeps the weights) and are freed with
 *     the graph;
 *   - constants copy a tensor into the graph.
 *
 * Errors: a builder given bad input (NULL or invalid value, a value from
 * another graph, shapes or dtypes that do not fit) records the first such
 * error on the graph, naming the node, op and shapes, and returns an invalid
 * value. From then on every builder on that graph returns an invalid value
 * without a new message, so the first error is the one reported. A graph
 * with an error can still be inspected and freed, but not differentiated,
 * compiled or run (LG_ERR_GRAPH).
 *
 * Threading: a graph is not thread-safe; use one per thread.
 */
#ifndef LG_GRAPH_H
#define LG_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "api.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

typedef struct lg_graph lg_graph;

/* One output of one node. node < 0 marks an invalid value. */
typedef struct lg_value {
    lg_graph *graph;
    int32_t node;
    int32_t output;
} lg_value;

/* A new empty graph (NULL only when out of memory). Free with lg_graph_free(),
 * which also frees its parameters, constants and cached programs. */
lg_graph *lg_graph_new(void);
void lg_graph_free(lg_graph *g); /* NULL is fine */

/* The first builder error recorded on g, or NULL if there is none. A NULL
 * graph (lg_graph_new() out of memory) reads as "graph is NULL". */
const char *lg_graph_error(const lg_graph *g);

/* Name scopes. lg_scope_pop() without a push is ignored. A scope name must be
 * non-empty and must not contain '/'; a bad one is recorded as an error. */
void lg_scope_push(lg_graph *g, const char *name);
void lg_scope_pop(lg_graph *g);

/* ---- sources ------------------------------------------------------------ */

/* A placeholder fed at run time. Dims are >= 1, or -1 (known at compile);
 * a zero-size dim is an error, here and in a feed. */
lg_value lg_input(lg_graph *g, const char *name, lg_dtype dtype, lg_shape shape);

/* A trainable parameter with a concrete shape (dims >= 1), zero-filled. Its full name
 * (scope + name) must be unique among the graph's parameters. Fill it through
 * lg_param_tensor() or an initializer (init.h). */
lg_value lg_param(lg_graph *g, const char *name, lg_dtype dtype, lg_shape shape);

/* A constant holding a copy of t. */
lg_value lg_constant(lg_graph *g, const char *name, const lg_tensor *t);
/* A rank-0 constant of the given dtype. */
lg_value lg_scalar(lg_graph *g, lg_dtype dtype, double v);

/* ---- values ------------------------------------------------------------- */

static inline bool lg_value_ok(lg_value v) { return v.graph != NULL && v.node >= 0; }
/* The invalid value builders return on error. */
lg_value lg_value_invalid(void);
/* dtype and shape of a value (dims may be -1). An invalid value has rank -1. */
lg_dtype lg_value_dtype(lg_value v);
lg_shape lg_value_shape(lg_value v);
int lg_value_rank(lg_value v);
/* The node's full hierarchical name ("" for an invalid value). */
const char *lg_value_name(lg_value v);
bool lg_value_same(lg_value a, lg_value b);

/* ---- parameters ---------------------------------------------------------- */

int lg_graph_param_count(const lg_graph *g);
/* The i-th parameter in creation order (invalid if i is out of range). */
lg_value lg_graph_param(const lg_graph *g, int i);
/* The tensor holding a parameter's value, owned by the graph (NULL if p is not
 * a parameter, or, after training on a device, if copying it back failed:
 * lg_last_error says why). Writing into it changes what every program
 * computes. It is the host copy: where a program on a device (lg_compile_opts
 * .device) updated the parameter, this call copies it back first, and the
 * device copy is refreshed from it before a program there next reads it, so
 * call it again after such a run rather than keeping the pointer. */
lg_tensor *lg_param_tensor(lg_value p);
/* Find a parameter by full name (invalid if none). */
lg_value lg_graph_find_param(const lg_graph *g, const char *full_name);
/* Whether optimizers train p (default true; false if p is not a parameter).
 * Non-trainable parameters (a batch norm's moving statistics) are updated
 * by their owner, not by gradient steps. LG_ERR_INVALID_ARGUMENT if p is not
 * a parameter. */
bool lg_param_trainable(lg_value p);
lg_status lg_param_set_trainable(lg_value p, bool trainable);

/* ---- layers -------------------------------------------------------------- */

/* Layers record themselves so that summaries can list them: a layer is named
 * by the current scope path (the layer builder has pushed its scope, so
 * "encoder/lstm"), has a type ("LSTM"), an output value and the parameters
 * it owns (a recurrent layer lists its cell's, which live in the cell's
 * scope). Custom layers may call this too; params is read during the call.
 * Records nothing on a graph with an error or an invalid output, or when a
 * layer of this name exists (a layer called again, sharing its weights, is
 * listed once with its first output). */
void lg_graph_add_layer(lg_graph *g, const char *type, lg_value output, const lg_value *params, int n_params);
int lg_graph_layer_count(const lg_graph *g);
/* Layer i's name, type, output and parameters (NULL / invalid / 0 if i or k
 * is out of range). */
const char *lg_graph_layer_name(const lg_graph *g, int i);
const char *lg_graph_layer_type(const lg_graph *g, int i);
lg_value lg_graph_layer_output(const lg_graph *g, int i);
int lg_graph_layer_param_count(const lg_graph *g, int i);
lg_value lg_graph_layer_param(const lg_graph *g, int i, int k);

/* ---- introspection ------------------------------------------------------- */

/* Nodes in creation order; node i's op name ("matmul", "input", ...), full
 * name, number of outputs, and whether autodiff created it. */
int lg_graph_node_count(const lg_graph *g);
const char *lg_graph_node_op(const lg_graph *g, int node);
const char *lg_graph_node_name(const lg_graph *g, int node);
int lg_graph_node_output_count(const lg_graph *g, int node);
int lg_graph_node_input_count(const lg_graph *g, int node);
lg_value lg_graph_node_input(const lg_graph *g, int node, int i);
bool lg_graph_node_is_grad(const lg_graph *g, int node);
/* Output o of node i as a value, for its dtype and shape (invalid if i or
 * o is out of range). */
lg_value lg_graph_node_output(const lg_graph *g, int node, int o);

/* Every op the library knows: LG_OP_COUNT names, for coverage checks and
 * tools. lg_op_count() is that count; lg_op_name(i) is "" out of range. */
int lg_op_count(void);
const char *lg_op_name(int op);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
