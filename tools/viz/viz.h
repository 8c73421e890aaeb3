/*
 * viz.h — seeing a graph: DOT with loops drawn as clusters, rendering to SVG
 * and PNG through Graphviz, and the --dot / --svg flags of the examples.
 *
 * lg_graph_write_dot() writes a graph as Graphviz DOT. Every node shows its
 * full name, its op and each output's dtype and shape (a dim of -1, not
 * known until compile, shows as "?"); edges carry the shape of the value
 * they pass. Parameters, inputs (placeholders), constants, forward ops,
 * gradient ops (lg_graph_node_is_grad) and loops are drawn distinctly (the
 * table in the legend node, which every dump has unless opts.legend is
 * false):
 *
 *     kind        class (SVG)      shape     fillcolor
 *     parameter   lg-param         box       #ffd966 (bold border)
 *     input       lg-input         invhouse  #9fc5e8
 *     constant    lg-const         box       #eeeeee (dashed border)
 *     forward op  lg-op            ellipse   #ffffff
 *     gradient op lg-grad          ellipse   #f4cccc
 *     loop        lg-loop          box3d     #b6d7a8
 *     grad. loop  lg-grad-loop     box3d     #ea9999
 *     loop port   lg-port          cds       #d9d2e9
 *
 * Each loop is a cluster (a subgraph named "cluster_<node id>") holding the
 * loop node (its results) and the body nodes the loop computes; a loop in a
 * body is a cluster inside its parent's. The body's inputs are the ports at
 * the boundary, labelled with what feeds them from outside: "slice x_t of
 * <sequence>", "state <initial value>", "invariant <value>". Edges inside
 * the cluster run from the body values to the loop node, labelled "next
 * state k", "output j", "stop" or "saved for gradient" (the residuals the
 * forward loop stacks for its gradient loop, dashed). A forward loop and
 * its gradient loop share one body graph; each cluster shows the part its
 * loop computes, so a body node can appear in both, under two ids.
 *
 * Each loop says what lg_program_compile will make of it (lg_loop_fused,
 * loop.h): "fused: lstm (64 units, bias), CPU kernel" for a loop the fuse_rnn
 * pass runs as one fused rnn op (a gradient loop with its forward loop),
 * drawn with a border 3 wide (penwidth=3, the legend's "fused loop" row);
 * otherwise "not fused: " and the matcher's first reason, cut to a line
 * ("gate 2 uses relu where LSTM has tanh"). The cluster's label carries it,
 * or the loop node's when loops are not expanded; in the layer view, the
 * loop's line in its scope's label, and the scope's border.
 *
 * The layer view (opts.layers) draws what a person reads first, like
 * TensorBoard's grouping: one node per top-level name scope ("lstm",
 * "batch_normalization", "dense", a loss's "sparse_categorical_crossentropy"),
 * labelled with its layer types, its ops and its parameters; a scope holding
 * a loop is a box3d labelled with the loop's cell (the layer that made it)
 * and its steps ("LSTM cell, loop over T = 28"); every gradient op is one
 * node ("grad"); with opts.optimizer, one optimizer node. Nodes outside any
 * scope (inputs such as "x") are drawn one by one. Edges join the scopes a
 * value crosses, one per pair, labelled with the distinct shapes crossing
 * (three, then "+N more"). opts.expand draws one scope as a cluster of its
 * ops and inner scopes, grouped the same way.
 *
 *     kind              class (SVG)       shape     fillcolor
 *     scope             lg-scope          box       #cfe2f3 (rounded)
 *     scope with loop   lg-scope-loop     box3d     #b6d7a8
 *     gradient          lg-gradient       box3d     #f4cccc
 *     optimizer         lg-optimizer      component #ead1dc
 *     op, input, ...    as in the full view (lg-op, lg-input, lg-loop, ...)
 *
 * Layer-view node ids are "s<k>" (the k-th scope or op drawn), tooltips the
 * scope's or op's full name ("grad" for the gradient), and "optimizer".
 *
 * Node ids are "n<i>" for node i of the graph and "<loop id>_n<j>" for node j
 * of that loop's body (e.g. "n4_n7_n2" in a nested loop), so they are plain
 * DOT identifiers; names appear only in HTML-like labels, escaped, so any
 * name is valid DOT: quotes, braces, angle brackets, backslashes and
 * newlines (a line break) are kept, valid UTF-8 is kept, and control
 * characters and bytes that are not UTF-8 show as "\xNN".
 *
 *     lg_dot_opts o = lg_dot_opts_default();
 *     o.gradients = false;                       // forward graph only
 *     o.scope = "encoder";                       // encoder and encoder/...
 *     if (lg_graph_write_dot(g, "model.dot", o) != LG_OK ||
 *         lg_viz_render_file("model.dot", "model.svg", NULL) != LG_OK)
 *         fprintf(stderr, "%s\n", lg_last_error());
 *
 * Files: every function that writes a file writes a temporary file beside
 * it (same directory, ".<name>.XXXXXX"), syncs it to disk and renames it
 * over the path when complete, as checkpoints are saved (checkpoint.h), so
 * a failure or a crash never leaves a partial or empty file and an
 * existing file is either replaced whole or untouched.
 *
 * Errors (lg_status, message in lg_last_error()): LG_ERR_INVALID_ARGUMENT
 * (NULL graph, path or DOT text; an unknown output format; DOT that does
 * not parse or that Graphviz finds an error in, such as a bad HTML-like
 * label, with Graphviz's message), LG_ERR_GRAPH (the graph carries a
 * builder error, lg_graph_error), LG_ERR_IO (a path that cannot be read or
 * written, naming it), LG_ERR_UNSUPPORTED (Graphviz has no renderer for a
 * format or fails to lay the graph out), LG_ERR_OUT_OF_MEMORY.
 *
 * Threading: Graphviz keeps global state; render from one thread at a
 * time. The first render makes the process's one Graphviz context, which
 * lives until exit (Graphviz 2.42 cannot free one and make another safely).
 * Writing DOT has no global state.
 */
#ifndef LG_VIZ_H
#define LG_VIZ_H

#include <stdbool.h>
#include <stdio.h>

#include "graph/api.h"
#include "graph/graph.h"
#include "graph/optim.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

typedef struct lg_dot_opts {
    bool gradients;    /* draw gradient nodes and gradient loops; default true */
    bool expand_loops; /* loops as clusters with their bodies; false: each
                          loop is one node; default true */
    /* Keep only the graph's nodes named `scope` or "scope/..." (a name-scope
     * prefix: "enc" keeps "enc/lstm/kernel", not "encoder/..."); edges to
     * nodes left out are dropped. A kept loop shows its whole body (body
     * names are the body's own). NULL or "" keeps every node. Default NULL. */
    const char *scope;
    bool legend;      /* the legend node (id "legend"); default true */
    bool edge_labels; /* shapes on edges; default true */
    /* The layer view (below) instead of every op; default false. */
    bool layers;
    /* Layer view: draw the scope named here (e.g. "lstm", "grad",
     * "enc/lstm") as a cluster of its ops and inner scopes; NULL or "" draws
     * every scope as one node. A name that is no scope of the graph's kept
     * nodes is LG_ERR_INVALID_ARGUMENT, naming it. Default NULL. */
    const char *expand;
    /* Layer view: an optimizer node fed by the gradient, updating the
     * scopes that hold its parameters; NULL draws none. Default NULL. */
    const lg_optimizer *optimizer;
} lg_dot_opts;

lg_dot_opts lg_dot_opts_default(void);

/* Write g as DOT to path (replaced whole, see Files). */
lg_status lg_graph_write_dot(const lg_graph *g, const char *path, lg_dot_opts opts);
/* Write g as DOT to an open stream (LG_ERR_IO when a write fails; what was
 * written stays). */
lg_status lg_graph_dot_file(const lg_graph *g, FILE *f, lg_dot_opts opts);
/* g as DOT in a new NUL-terminated string, the caller's to free(); *out is
 * NULL on error. */
lg_status lg_graph_dot_string(const lg_graph *g, lg_dot_opts opts, char **out);

/* ---- rendering (Graphviz's libgvc, dot layout) ------------------------------ */

/* The formats lg_viz_render* write: "svg", "png" and "pdf" (png and pdf
 * through Graphviz's cairo plugin). format NULL or "" takes the format from
 * out_path's extension (".svg", ".png", ".pdf", any case). */

/* Render DOT text (NUL-terminated) to out_path. */
lg_status lg_viz_render(const char *dot, const char *out_path, const char *format);
/* Render the DOT file dot_path to out_path. */
lg_status lg_viz_render_file(const char *dot_path, const char *out_path, const char *format);
/* lg_graph_dot_string then lg_viz_render. */
lg_status lg_graph_render(const lg_graph *g, const char *out_path, const char *format, lg_dot_opts opts);

/* ---- the examples' flags ---------------------------------------------------- */

/* What the flags asked for: paths into argv, NULL when not given. */
typedef struct lg_viz_args {
    const char *dot_path; /* --dot FILE or --dot=FILE */
    const char *svg_path; /* --svg FILE or --svg=FILE */
} lg_viz_args;

/* Take --dot and --svg (each "--flag FILE" or "--flag=FILE"; the last one
 * given wins) out of argv: the other arguments move down in order, *argc
 * shrinks and argv[*argc] is NULL, so a program's own positional arguments
 * parse as before. LG_ERR_INVALID_ARGUMENT for NULL arguments or a flag
 * without its file (the message names the flag); argv is then unchanged. */
lg_status lg_viz_args_parse(int *argc, char **argv, lg_viz_args *out);

/* Write what was asked: g's DOT to dot_path and its SVG to svg_path, with
 * opts (nothing when neither is set). Errors as lg_graph_write_dot and
 * lg_graph_render; a failure leaves no file for the path that failed. */
lg_status lg_viz_args_write(const lg_graph *g, const lg_viz_args *a, lg_dot_opts opts);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
