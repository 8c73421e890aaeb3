/*
 * dot.c — a graph as Graphviz DOT (viz.h).
 *
 * The writer walks one level at a time: the graph, then each loop's body
 * inside its cluster. A level draws the nodes `draw` marks; node i is
 * "<prefix>n<i>", where the prefix is "" for the graph and "<loop id>_" for a
 * body. An expanded loop's inputs arrive at its body's input nodes (the
 * ports), and its outputs leave from the loop node, drawn inside the
 * cluster.
 */
#include <assert.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "dot_util.h"
#include "graph/loop.h"
#include "io/atomic_file.h"
#include "viz.h"

typedef enum kind { K_PARAM, K_INPUT, K_CONST, K_OP, K_GRAD, K_LOOP, K_GRAD_LOOP, K_PORT, KIND_COUNT } kind;

static const struct style {
    const char *cls, *legend, *shape, *style, *fill, *color;
} STYLES[] = {
    [K_PARAM] = {"lg-param", "parameter", "box", "filled,bold", "#ffd966", "#7f6000"},
    [K_INPUT] = {"lg-input", "input (placeholder)", "invhouse", "filled", "#9fc5e8", "#0b5394"},
    [K_CONST] = {"lg-const", "constant", "box", "filled,dashed", "#eeeeee", "#666666"},
    [K_OP] = {"lg-op", "forward op", "ellipse", "filled", "#ffffff", "#000000"},
    [K_GRAD] = {"lg-grad", "gradient op", "ellipse", "filled", "#f4cccc", "#990000"},
    [K_LOOP] = {"lg-loop", "loop", "box3d", "filled", "#b6d7a8", "#274e13"},
    [K_GRAD_LOOP] = {"lg-grad-loop", "gradient loop", "box3d", "filled", "#ea9999", "#660000"},
    [K_PORT] = {"lg-port", "loop port (body input)", "cds", "filled", "#d9d2e9", "#20124d"},
};
static_assert(sizeof STYLES / sizeof STYLES[0] == KIND_COUNT, "a style per node kind");

/* cluster fill and border: forward loops, gradient loops */
static const char *const CLUSTER_FILL[2] = {"#f3f9f0", "#fcefef"}, *const CLUSTER_COLOR[2] = {"#6aa84f", "#cc0000"};

typedef struct writer {
    FILE *f;
    lg_dot_opts o;
    bool oom;
} writer;

/* One graph being drawn: the top graph or a loop's body. */
typedef struct level {
    const lg_graph *g;
    const char *prefix;
    const bool *draw;
    /* a body: the loop node `loop` of `outer` and, per body node, its index
     * among the loop's inputs (-1: not an input) */
    const lg_graph *outer;
    int32_t loop;
    const int *port_of;
} level;

/* ---- text ---------------------------------------------------------------------- */

static void put_html(writer *w, const char *s) { viz_put_text(w->f, s, VIZ_HTML); }

/* "f32 [?, 4]" */
static void put_value(writer *w, lg_value v)
{
    char buf[160];
    fprintf(w->f, "%s %s", lg_dtype_name(lg_value_dtype(v)), lg_shape_str(lg_value_shape(v), buf, sizeof buf));
}

/* A string from a format, or NULL (w->oom) when out of memory. */
static char *str_printf(writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *str_printf(writer *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s) {
        w->oom = true;
        return NULL;
    }
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static void indent(writer *w, int depth) { fprintf(w->f, "%*s", 2 * depth, ""); }

/* ---- what a node is ---------------------------------------------------------------- */

static kind node_kind(const level *L, int32_t i)
{
    const char *op = lg_graph_node_op(L->g, i);
    bool grad = lg_graph_node_is_grad(L->g, i);
    if (L->port_of && L->port_of[i] >= 0) return K_PORT;
    if (strcmp(op, "param") == 0) return K_PARAM;
    if (strcmp(op, "input") == 0) return K_INPUT;
    if (strcmp(op, "const") == 0) return K_CONST;
    if (lg_graph_node_loop(L->g, i, NULL)) return grad ? K_GRAD_LOOP : K_LOOP;
    return grad ? K_GRAD : K_OP;
}

/* What output o of node i of g is, for edge labels: a loop's outputs by
 * role, a node with several outputs by index, else nothing. */
static void put_role(writer *w, const lg_graph *g, int32_t i, int o)
{
    lg_loop_info s;
    if (lg_graph_node_loop(g, i, &s)) {
        if (o < s.n_state) fprintf(w->f, "state %d ", o);
        else if (o < s.n_state + s.n_y) fprintf(w->f, "output %d ", o - s.n_state);
        else if (o < 2 * s.n_state + s.n_y) fprintf(w->f, "saved state %d ", o - s.n_state - s.n_y);
        else fprintf(w->f, "residual %d ", o - 2 * s.n_state - s.n_y);
    } else if (lg_graph_node_output_count(g, i) > 1) {
        fprintf(w->f, "#%d ", o);
    }
}

/* ---- nodes ------------------------------------------------------------------------ */

static void put_attrs(writer *w, kind k)
{
    const struct style *st = &STYLES[k];
    fprintf(w->f, "class=\"%s\" shape=%s style=\"%s\" fillcolor=\"%s\" color=\"%s\"", st->cls, st->shape, st->style,
            st->fill, st->color);
}

/* The label lines loop node i of g adds: its kind and its results. */
static void put_loop_label(writer *w, const lg_graph *g, int32_t i, const lg_loop_info *s)
{
    fprintf(w->f, "<BR/>%s%s", lg_graph_node_is_grad(g, i) ? "gradient loop" : "loop", s->reverse ? ", reverse" : "");
    if (s->n_seq == 0) fprintf(w->f, ", %lld steps", (long long)s->steps);
    if (s->has_stop) fputs(", until stop", w->f);
    for (int o = 0; o < s->n_state + s->n_y; o++) {
        fputs("<BR/>", w->f);
        put_role(w, g, i, o);
        put_value(w, lg_graph_node_output(g, i, o));
    }
    fprintf(w->f, "<BR/>saves %d states, %d residuals", s->n_state, s->n_res);
    if (!w->o.expand_loops) { /* else the cluster says it */
        fputs("<BR/>", w->f);
        viz_put_fusion(w->f, g, i);
    }
}

static void write_node(writer *w, const level *L, int32_t i, int depth)
{
    const char *name = lg_graph_node_name(L->g, i);
    lg_loop_info loop;
    bool is_loop = lg_graph_node_loop(L->g, i, &loop);
    kind k = node_kind(L, i);
    indent(w, depth);
    fprintf(w->f, "%sn%d [", L->prefix, (int)i);
    put_attrs(w, k);
    if (is_loop && !w->o.expand_loops && lg_loop_fused(L->g, i, NULL, 0))
        fprintf(w->f, " penwidth=%d", VIZ_FUSED_PENWIDTH);
    fputs(" label=<<B>", w->f);
    if (k == K_PORT) {
        int p = L->port_of[i];
        lg_loop_info s;
        lg_graph_node_loop(L->outer, L->loop, &s);
        const char *role = p < s.n_seq ? "slice x_t of " : p < s.n_seq + s.n_state ? "state " : "invariant ";
        fputs(role, w->f);
        put_html(w, lg_value_name(lg_graph_node_input(L->outer, L->loop, p)));
        fputs("</B><BR/><I>", w->f);
        put_html(w, name);
        fputs("</I>", w->f);
    } else {
        put_html(w, name);
        fputs("</B>", w->f);
        if (!is_loop) fprintf(w->f, "<BR/>%s", lg_graph_node_op(L->g, i));
    }
    if (is_loop) {
        put_loop_label(w, L->g, i, &loop);
    } else {
        int n_out = lg_graph_node_output_count(L->g, i);
        for (int o = 0; o < n_out; o++) {
            fputs("<BR/>", w->f);
            if (n_out > 1) fprintf(w->f, "#%d ", o);
            put_value(w, lg_graph_node_output(L->g, i, o));
        }
    }
    fputs("> tooltip=\"", w->f);
    viz_put_text(w->f, name, VIZ_QUOTED);
    fputs("\"];\n", w->f);
}

/* ---- edges ------------------------------------------------------------------------ */

/* An edge carrying output `out` of node `from` of src, labelled with its
 * shape after `role` (NULL: the output's role, see put_role). */
static void write_edge(writer *w, const char *from_prefix, int32_t from, const char *to_prefix, int32_t to,
                       const lg_graph *src, int out, const char *role, bool dashed, int depth)
{
    indent(w, depth);
    fprintf(w->f, "%sn%d -> %sn%d [", from_prefix, (int)from, to_prefix, (int)to);
    if (w->o.edge_labels) {
        fputs("label=\"", w->f);
        if (role) fprintf(w->f, "%s ", role);
        else put_role(w, src, from, out);
        char buf[160];
        fputs(lg_shape_str(lg_value_shape(lg_graph_node_output(src, from, out)), buf, sizeof buf), w->f);
        fputs("\"", w->f);
    }
    if (dashed) fputs(" style=dashed", w->f);
    fputs("];\n", w->f);
}

/* Edges between the drawn nodes of a level; an expanded loop's inputs go to
 * its ports. */
static void write_edges(writer *w, const level *L, int depth)
{
    for (int32_t i = 0; i < lg_graph_node_count(L->g) && !w->oom; i++) {
        if (!L->draw[i]) continue;
        bool loop = w->o.expand_loops && lg_graph_node_loop(L->g, i, NULL);
        char *body_prefix = loop ? str_printf(w, "%sn%d_", L->prefix, (int)i) : NULL;
        for (int k = 0; k < lg_graph_node_input_count(L->g, i) && (!loop || body_prefix); k++) {
            lg_value r = lg_graph_node_input(L->g, i, k);
            if (!L->draw[r.node]) continue;
            if (loop)
                write_edge(w, L->prefix, r.node, body_prefix, lg_loop_body_input(L->g, i, k), L->g, r.output, NULL,
                           false, depth);
            else
                write_edge(w, L->prefix, r.node, L->prefix, i, L->g, r.output, NULL, false, depth);
        }
        free(body_prefix);
    }
}

/* ---- loops ------------------------------------------------------------------------ */

static void write_level(writer *w, const level *L, int depth);

/* The body nodes loop node i of g computes: those its results (and the
 * residuals it saves) need, and its inputs, less gradient nodes when they
 * are not drawn; NULL when out of memory. */
static bool *body_nodes(writer *w, const lg_graph *g, int32_t i, const lg_loop_info *s)
{
    const lg_graph *body = s->body;
    int32_t n = lg_graph_node_count(body);
    bool *draw = calloc((size_t)(n ? n : 1), sizeof *draw);
    if (!draw) {
        w->oom = true;
        return NULL;
    }
    /* what the results and residuals need: nodes come in a topological
     * order, so one pass from the end marks every node a marked one reads */
    for (int k = 0; k < s->n_state + s->n_y + s->has_stop; k++) draw[lg_loop_body_output(g, i, k).node] = true;
    for (int k = 0; k < s->n_res; k++) draw[lg_loop_body_residual(g, i, k).node] = true;
    for (int32_t j = n - 1; j >= 0; j--)
        for (int k = 0; draw[j] && k < lg_graph_node_input_count(body, j); k++)
            draw[lg_graph_node_input(body, j, k).node] = true;
    for (int k = 0; k < s->n_seq + s->n_state + s->n_inv; k++) draw[lg_loop_body_input(g, i, k)] = true;
    for (int32_t j = 0; j < n; j++) draw[j] = draw[j] && (w->o.gradients || !lg_graph_node_is_grad(body, j));
    return draw;
}

/* Loop node i of level L as a cluster holding the loop node and its body. */
static void write_loop(writer *w, const level *L, int32_t i, int depth)
{
    lg_loop_info s;
    lg_graph_node_loop(L->g, i, &s);
    const lg_graph *body = s.body;
    int32_t n = lg_graph_node_count(body);
    char *prefix = str_printf(w, "%sn%d_", L->prefix, (int)i);
    bool *draw = prefix ? body_nodes(w, L->g, i, &s) : NULL;
    int *port_of = draw ? malloc((size_t)(n ? n : 1) * sizeof *port_of) : NULL;
    if (!port_of) {
        w->oom = true;
        free(prefix), free(draw);
        return;
    }
    for (int32_t j = 0; j < n; j++) port_of[j] = -1;
    for (int k = 0; k < s.n_seq + s.n_state + s.n_inv; k++) port_of[lg_loop_body_input(L->g, i, k)] = k;

    bool grad = lg_graph_node_is_grad(L->g, i);
    indent(w, depth);
    fprintf(w->f, "subgraph cluster_%sn%d {\n", L->prefix, (int)i);
    indent(w, depth + 1);
    fprintf(w->f, "class=\"%s\" style=\"rounded,filled\" fillcolor=\"%s\" color=\"%s\" penwidth=%d label=<<B>",
            grad ? "lg-grad-loop" : "lg-loop", CLUSTER_FILL[grad], CLUSTER_COLOR[grad],
            lg_loop_fused(L->g, i, NULL, 0) ? VIZ_FUSED_PENWIDTH : 1);
    put_html(w, lg_graph_node_name(L->g, i));
    fprintf(w->f, "</B> (%s: %d sequences, %d states, %d invariants)<BR/>", grad ? "gradient loop" : "loop", s.n_seq,
            s.n_state, s.n_inv);
    viz_put_fusion(w->f, L->g, i);
    fputs(">;\n", w->f);
    write_node(w, L, i, depth + 1);
    level B = {.g = body, .prefix = prefix, .draw = draw, .outer = L->g, .loop = i, .port_of = port_of};
    write_level(w, &B, depth + 1);
    for (int k = 0; k < s.n_state + s.n_y + s.has_stop; k++) {
        lg_value r = lg_loop_body_output(L->g, i, k);
        char role[48];
        if (k < s.n_state) snprintf(role, sizeof role, "next state %d", k);
        else if (k < s.n_state + s.n_y) snprintf(role, sizeof role, "output %d", k - s.n_state);
        else snprintf(role, sizeof role, "stop");
        if (draw[r.node]) write_edge(w, prefix, r.node, L->prefix, i, body, r.output, role, false, depth + 1);
    }
    for (int k = 0; k < s.n_res; k++) {
        lg_value r = lg_loop_body_residual(L->g, i, k);
        if (draw[r.node])
            write_edge(w, prefix, r.node, L->prefix, i, body, r.output, "saved for gradient", true, depth + 1);
    }
    indent(w, depth);
    fputs("}\n", w->f);
    free(prefix), free(draw), free(port_of);
}

static void write_level(writer *w, const level *L, int depth)
{
    for (int32_t i = 0; i < lg_graph_node_count(L->g) && !w->oom; i++) {
        if (!L->draw[i]) continue;
        if (w->o.expand_loops && lg_graph_node_loop(L->g, i, NULL)) write_loop(w, L, i, depth);
        else write_node(w, L, i, depth);
    }
    if (!w->oom) write_edges(w, L, depth);
}

/* ---- the document --------------------------------------------------------------------- */

static void write_legend(writer *w)
{
    fputs("  legend [class=\"lg-legend\" shape=plaintext label=<<TABLE BORDER=\"0\" CELLBORDER=\"1\" "
          "CELLSPACING=\"2\" CELLPADDING=\"3\"><TR><TD><B>legend</B></TD></TR>",
          w->f);
    for (int k = 0; k < KIND_COUNT; k++)
        fprintf(w->f, "<TR><TD BGCOLOR=\"%s\" COLOR=\"%s\">%s</TD></TR>", STYLES[k].fill, STYLES[k].color,
                STYLES[k].legend);
    for (int grad = 0; grad < 2; grad++)
        fprintf(w->f, "<TR><TD BGCOLOR=\"%s\" COLOR=\"%s\">%s body (cluster)</TD></TR>",
                CLUSTER_FILL[grad], CLUSTER_COLOR[grad], grad ? "gradient loop" : "loop");
    fprintf(w->f, "<TR><TD BGCOLOR=\"%s\" COLOR=\"%s\" BORDER=\"%d\">fused loop (one rnn kernel on the CPU)</TD></TR>",
            CLUSTER_FILL[0], CLUSTER_COLOR[0], VIZ_FUSED_PENWIDTH);
    fputs("</TABLE>>];\n", w->f);
}

static lg_status check_graph(const lg_graph *g, const char *fn)
{
    if (!g) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: graph is NULL", fn);
    if (lg_graph_error(g)) return lg_fail(LG_ERR_GRAPH, "%s: the graph has an error: %s", fn, lg_graph_error(g));
    return LG_OK;
}

/* g, already checked, to f. */
static lg_status write_graph(const lg_graph *g, FILE *f, lg_dot_opts o, const char *fn)
{
    if (o.layers) return viz_write_layers(g, f, o, fn);
    writer w = {.f = f, .o = o};
    int32_t n = lg_graph_node_count(g);
    bool *draw = calloc((size_t)(n ? n : 1), sizeof *draw);
    if (!draw) return lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    for (int32_t i = 0; i < n; i++)
        draw[i] = viz_in_scope(lg_graph_node_name(g, i), o.scope) && (o.gradients || !lg_graph_node_is_grad(g, i));
    fputs("digraph loopgrad {\n"
          "  graph [fontname=\"Helvetica\" fontsize=11 labeljust=l newrank=true];\n"
          "  node [fontname=\"Helvetica\" fontsize=10];\n"
          "  edge [fontname=\"Helvetica\" fontsize=9];\n",
          f);
    level top = {.g = g, .prefix = "", .draw = draw, .loop = -1};
    write_level(&w, &top, 1);
    if (o.legend) write_legend(&w);
    fputs("}\n", f);
    free(draw);
    if (w.oom) return lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    if (fflush(f) != 0 || ferror(f)) return lg_fail(LG_ERR_IO, "%s: a write failed", fn);
    return LG_OK;
}

lg_dot_opts lg_dot_opts_default(void)
{
    return (lg_dot_opts){.gradients = true, .expand_loops = true, .legend = true, .edge_labels = true};
}

lg_status lg_graph_dot_file(const lg_graph *g, FILE *f, lg_dot_opts opts)
{
    lg_status s = check_graph(g, "lg_graph_dot_file");
    if (s) return s;
    if (!f) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_graph_dot_file: stream is NULL");
    return write_graph(g, f, opts, "lg_graph_dot_file");
}

lg_status lg_graph_dot_string(const lg_graph *g, lg_dot_opts opts, char **out)
{
    if (!out) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_graph_dot_string: out is NULL");
    *out = NULL;
    lg_status s = check_graph(g, "lg_graph_dot_string");
    if (s) return s;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return lg_fail(LG_ERR_OUT_OF_MEMORY, "lg_graph_dot_string: out of memory");
    s = write_graph(g, f, opts, "lg_graph_dot_string");
    if (fclose(f) != 0 && s == LG_OK) s = lg_fail(LG_ERR_OUT_OF_MEMORY, "lg_graph_dot_string: out of memory");
    if (s) free(buf);
    else *out = buf;
    return s;
}

lg_status lg_graph_write_dot(const lg_graph *g, const char *path, lg_dot_opts opts)
{
    lg_status s = check_graph(g, "lg_graph_write_dot");
    if (s) return s;
    if (!path) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_graph_write_dot: path is NULL");
    char what[PATH_MAX + 32];
    snprintf(what, sizeof what, "cannot write '%s'", path);
    lg_atomic_file o;
    s = lg_atomic_file_open(&o, path, what);
    if (s) return s;
    s = write_graph(g, o.f, opts, "lg_graph_write_dot");
    if (s) {
        lg_atomic_file_abort(&o);
        return s;
    }
    return lg_atomic_file_commit(&o);
}
