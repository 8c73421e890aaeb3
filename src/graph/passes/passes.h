/*
 * passes.h — the compile stage between the user's graph and the executor.
 * Private to the library.
 *
 * lg_program_compile lowers the part of the user's graph that the fetches
 * need into a compile-time graph (lg_cgraph): a fresh lg_graph with every
 * shape concrete, whose parameters and constants borrow the user's tensors.
 * The passes below rewrite that copy in table order; the user's graph is
 * never changed. The executor (program.c) then schedules the result, plans
 * its memory, and compiles each loop's body the same way (lowered with its
 * step shapes, passes run over it), so nested loops get every pass too.
 *
 * The seam — adding a pass is one file here plus one line in the table in
 * passes.c (and its file in meson.build):
 *
 *     lg_status lg_pass_fuse_rnn(lg_cgraph *cg);   // fuse_rnn.c
 *     {"fuse_rnn", lg_pass_fuse_rnn},              // passes.c, before hoist
 *
 * A pass is a function over the compile-time graph. It may
 *   - read and change attributes of nodes in place (a loop's spec is the
 *     pass's own copy: lowering duplicated it, the body graph is shared);
 *   - rebuild the graph with an lg_rewrite (below): copy nodes into a new
 *     lg_graph, dropping or replacing some, then lg_cgraph_replace; node ids
 *     change, and cg->inputs and cg->outputs follow through the map;
 *   - append notes for lg_program_report with lg_cgraph_note (say what it
 *     did, or why not: "loop 'lstm': not fused: gate 2 uses relu").
 * Nodes stay in topological (arena) order; a new node that must run before
 * an existing one is made while rebuilding, before that node is copied.
 * A pass must keep results equal to those with it switched off: every pass
 * is switched off by name with lg_compile_opts.passes_off or the
 * environment variable LG_PASSES_OFF (comma separated, e.g.
 * LG_PASSES_OFF=hoist,dce), and the tests compare both ways.
 *
 * Passes know no backend by name. A backend-specific pass (fuse_rnn asking
 * "can you run this fused loop?") reads cg->backend, which the executor
 * sets from the program's backend before the passes run.
 *
 * Loop semantics are attributes of the loop node (lg_loop_spec in
 * internal.h: reverse, stop condition, memory policy, saved residuals,
 * masking by lengths or a mask, truncated BPTT), so a matcher sees a loop
 * as the user made it; lower_loops, after fuse_rnn, builds masking and
 * truncation as where nodes for the passes after it and the executor. Which residuals and saved
 * states a forward loop keeps is decided here, by dce, from what the fetched
 * values read: a program that fetches no gradient saves none.
 */
#ifndef LG_PASSES_H
#define LG_PASSES_H

#include "backends/backend.h"
#include "graph/internal.h"

typedef struct lg_cgraph {
    lg_graph *g;       /* owned; every port concrete */
    int32_t *inputs;   /* per fed input, in the caller's order: its node, or -1 when nothing needs it */
    int n_inputs;
    lg_ref *outputs;   /* the fetched values, in the caller's order */
    int n_outputs;
    uint32_t off;      /* bit i: pass i of the table is switched off */
    const lg_backend *backend;
    char *notes;       /* owned: lines for lg_program_report, complete after lg_cgraph_run_passes */
    size_t notes_len;
    FILE *note_f;      /* open_memstream onto notes while the passes write them */
} lg_cgraph;

typedef struct lg_pass {
    const char *name;
    lg_status (*run)(lg_cgraph *cg); /* NULL: the executor's (memory_plan, graph_capture) */
} lg_pass;

/* The table, in the order passes run. */
extern const lg_pass lg_passes[];
extern const int lg_pass_count;

/* The passes of one stage: verify, fuse_rnn, lower_loops, hoist,
 * fuse_elementwise, dce, merge_rnn (memory_plan is the executor's). */
lg_status lg_pass_verify(lg_cgraph *cg);
lg_status lg_pass_fuse_rnn(lg_cgraph *cg);
lg_status lg_pass_lower_loops(lg_cgraph *cg);
lg_status lg_pass_hoist(lg_cgraph *cg);
lg_status lg_pass_fuse_elementwise(lg_cgraph *cg);
lg_status lg_pass_dce(lg_cgraph *cg);
lg_status lg_pass_merge_rnn(lg_cgraph *cg);

/* The switched-off set from a comma-separated list of pass names and the
 * environment's LG_PASSES_OFF (both count). LG_ERR_INVALID_ARGUMENT naming
 * an unknown pass. */
lg_status lg_passes_off(const char *list, uint32_t *off);
bool lg_pass_on(const lg_cgraph *cg, const char *name);
/* Whether cg's elementwise ops will be fused: the backend has the fused
 * kernel and fuse_elementwise is on. */
bool lg_pass_fuses(const lg_cgraph *cg);

/* Lower into cg the nodes of src that outputs need, with src's input nodes
 * inputs[k] given ports ports[k] (the feeds' shapes; a body's step shapes).
 * Errors: LG_ERR_FEED for a needed input not among inputs, LG_ERR_SHAPE when
 * the concrete shapes do not fit an op. */
lg_status lg_cgraph_lower(const lg_graph *src, const int32_t *inputs, const lg_port *ports, int n_inputs,
                          const lg_ref *outputs, int n_outputs, lg_cgraph *cg);
/* where(c, a, a): a, whatever c is (dce drops c; fuse_elementwise leaves
 * such a where to it). */
static inline bool lg_where_of_one(const lg_node *n)
{
    return n->op == LG_OP_WHERE && n->in[1].node == n->in[2].node && n->in[1].out == n->in[2].out;
}

/* Run the passes that are on, in order. */
lg_status lg_cgraph_run_passes(lg_cgraph *cg);
void lg_cgraph_free(lg_cgraph *cg); /* its contents */
/* Append a line to cg->notes (the passes' report lines). */
void lg_cgraph_note(lg_cgraph *cg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- rebuilding a graph ---------------------------------------------------
 * map[base[i] + o] is where output o of src node i went in dst (node -1:
 * nowhere yet). */
typedef struct lg_rewrite {
    const lg_graph *src;
    lg_graph *dst;
    int *base;
    lg_ref *map;
} lg_rewrite;

/* False when out of memory. */
bool lg_rewrite_init(lg_rewrite *r, const lg_graph *src, lg_graph *dst);
void lg_rewrite_free(lg_rewrite *r);
static inline lg_ref *lg_rewrite_at(const lg_rewrite *r, lg_ref src) { return &r->map[r->base[src.node] + src.out]; }
static inline lg_value lg_rewrite_value(const lg_rewrite *r, lg_ref src)
{
    lg_ref d = *lg_rewrite_at(r, src);
    return lg_value_of(r->dst, d.node, d.out);
}
/* Copy src node `node` into dst with its inputs mapped (they must be) and
 * map its outputs. A loop gets `spec` (NULL: a copy of its own); a source
 * keeps its port unless `port` is given (a feed's shape). Returns the new
 * node's id; -1 on error, recorded on dst. */
int32_t lg_rewrite_copy(lg_rewrite *r, int32_t node, lg_loop_spec *spec, const lg_port *port);
/* Make dst cg's graph: its inputs and outputs follow r's map; the old graph
 * is freed. */
void lg_cgraph_replace(lg_cgraph *cg, lg_rewrite *r);
/* A status for an error recorded on a graph a pass built. */
lg_status lg_cgraph_fail(const lg_graph *g, const char *what);

size_t lg_port_bytes(const lg_port *p);

/* The forward loop of gradient loop `node` as autodiff built it (it shares
 * the body and reads the forward node's stacked states right after the
 * forward sequences), or -1. */
int32_t lg_loop_forward_of(const lg_graph *g, int32_t node);

#endif
