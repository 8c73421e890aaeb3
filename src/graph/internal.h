/*
 * internal.h — the graph IR as src/ sees it. Private to the library.
 *
 * A node applies one op to input references and owns its outputs' dtypes and
 * shapes, a small attribute blob, and a name. Nodes live in the graph's arena
 * in creation order, which is a topological order. A node may own subgraphs
 * (a loop's body); none does yet.
 */
#ifndef LG_GRAPH_INTERNAL_H
#define LG_GRAPH_INTERNAL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "graph/graph.h"
#include "graph/program.h"
#include "ops/op_list.h"

/* Broken invariants inside loopgrad (never user input). */
#define LG_ASSERT(cond)                                                                             \
    do {                                                                                            \
        if (!(cond)) {                                                                              \
            fprintf(stderr, "loopgrad: %s:%d: internal error: %s\n", __FILE__, __LINE__, #cond);    \
            abort();                                                                                \
        }                                                                                           \
    } while (0)

#define LG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Record the message for lg_last_error() on this thread and return s. */
lg_status lg_fail(lg_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

typedef struct lg_port {
    lg_dtype dtype;
    lg_shape shape;
} lg_port;

typedef struct lg_ref {
    int32_t node;
    int32_t out;
} lg_ref;

/* Attributes; which fields an op reads is documented at its builder. */
typedef struct lg_attrs {
    int64_t *ints; /* owned: shape dims, perm, split sizes */
    int n_ints;
    int axis;
    uint32_t axes; /* bit set of reduced axes */
    bool keepdims;
    bool trans_a, trans_b;
    int cmp;        /* lg_cmp */
    lg_dtype dtype; /* cast and one_hot target */
    double real[2]; /* pow exponent, clip bounds, elu alpha */
    lg_tensor *tensor; /* owned: a constant's value, a parameter's value */
} lg_attrs;

typedef struct lg_node {
    lg_op op;
    int n_in;
    lg_ref *in;
    int n_out;
    lg_port *out;
    lg_attrs attrs;
    char *name;
    bool is_grad;
} lg_node;

struct lg_program_cache;

struct lg_graph {
    lg_node *nodes;
    int32_t n_nodes, cap_nodes;
    char *error;     /* first builder error */
    char *scope;     /* "a/b/" or "" */
    int32_t *params; /* node ids of parameters, creation order */
    int n_params, cap_params;
    bool in_grad; /* nodes made now belong to a gradient */
    struct lg_program_cache *cache;
};

static inline lg_node *lg_node_at(const lg_graph *g, int32_t id) { return &g->nodes[id]; }
static inline const lg_port *lg_value_port(lg_value v) { return &v.graph->nodes[v.node].out[v.output]; }
static inline lg_value lg_value_of(lg_graph *g, int32_t node, int32_t out) { return (lg_value){g, node, out}; }
/* Input i of a node, as a value. */
static inline lg_value lg_node_input(lg_graph *g, int32_t node, int i)
{
    lg_ref r = g->nodes[node].in[i];
    return lg_value_of(g, r.node, r.out);
}

/* Record a builder error on g (the first one wins); returns the invalid value. */
lg_value lg_graph_fail(lg_graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Add a node for op with inputs and attributes (attrs->ints is copied),
 * running the op's shape inference. The graph is the inputs' graph, or g if
 * there are none. Returns the node id, or -1 on error (recorded). */
int32_t lg_node_build(lg_graph *g, lg_op op, const lg_value *in, int n_in, const lg_attrs *attrs, const char *name);
/* lg_node_build for a single-output op, returning output 0. */
lg_value lg_build(lg_op op, const lg_value *in, int n_in, const lg_attrs *attrs);

/* The graph the values belong to, after checking they are valid and share
 * it. Returns NULL on error (recorded on a graph when there is one); propagates
 * an invalid value silently. */
lg_graph *lg_values_graph(const lg_value *v, int n, const char *op);

/* Shapes: "[3, ?]" into a static per-call buffer ring, for messages. */
const char *lg_shape_cstr(lg_shape s);

/* Programs cached on the graph; freed with it (program.c). */
void lg_program_cache_free(struct lg_program_cache *c);

#endif
