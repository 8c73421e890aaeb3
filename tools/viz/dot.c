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
#include <stdarg.h>
#include <string.h>

#include "dot_util.h"
#include "graph/internal.h"
#include "outfile.h"
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
static_assert(LG_ARRAY_LEN(STYLES) == KIND_COUNT, "a style per node kind");

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
static void put_port(writer *w, const lg_port *p)
{
    char buf[160];
    fprintf(w->f, "%s %s", lg_dtype_name(p->dtype), lg_shape_str(p->shape, buf, sizeof buf));
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
    const lg_node *nd = &L->g->nodes[i];
    if (L->port_of && L->port_of[i] >= 0) return K_PORT;
    switch (nd->op) {
    case LG_OP_PARAM: return K_PARAM;
    case LG_OP_INPUT: return K_INPUT;
    case LG_OP_CONST: return K_CONST;
    case LG_OP_LOOP: return nd->is_grad ? K_GRAD_LOOP : K_LOOP;
    default: return nd->is_grad ? K_GRAD : K_OP;
    }
}

/* What output o of node i is, for edge labels: a loop's outputs by role, a
 * node with several outputs by index, else nothing. */
static void put_role(writer *w, const lg_node *nd, int o)
{
    if (nd->op == LG_OP_LOOP) {
        const lg_loop_spec *s = nd->attrs.loop;
        if (o < s->n_state) fprintf(w->f, "state %d ", o);
        else if (o < s->n_state + s->n_y) fprintf(w->f, "output %d ", o - s->n_state);
        else if (o < 2 * s->n_state + s->n_y) fprintf(w->f, "saved state %d ", o - s->n_state - s->n_y);
        else fprintf(w->f, "residual %d ", o - 2 * s->n_state - s->n_y);
    } else if (nd->n_out > 1) {
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

/* The label lines a loop node adds: its kind and its results. */
static void put_loop_label(writer *w, const lg_node *nd)
{
    const lg_loop_spec *s = nd->attrs.loop;
    fprintf(w->f, "<BR/>%s%s", nd->is_grad ? "gradient loop" : "loop", s->reverse ? ", reverse" : "");
    if (s->n_seq == 0) fprintf(w->f, ", %lld steps", (long long)s->steps);
    if (s->has_stop) fputs(", until stop", w->f);
    for (int o = 0; o < s->n_state + s->n_y; o++) {
        fputs("<BR/>", w->f);
        put_role(w, nd, o);
        put_port(w, &nd->out[o]);
    }
    fprintf(w->f, "<BR/>saves %d states, %d residuals", s->n_state, s->n_res);
}

static void write_node(writer *w, const level *L, int32_t i, int depth)
{
    const lg_node *nd = &L->g->nodes[i];
    kind k = node_kind(L, i);
    indent(w, depth);
    fprintf(w->f, "%sn%d [", L->prefix, (int)i);
    put_attrs(w, k);
    fputs(" label=<<B>", w->f);
    if (k == K_PORT) {
        int p = L->port_of[i];
        const lg_loop_spec *s = L->outer->nodes[L->loop].attrs.loop;
        const char *role = p < s->n_seq ? "slice x_t of " : p < s->n_seq + s->n_state ? "state " : "invariant ";
        fputs(role, w->f);
        put_html(w, L->outer->nodes[L->outer->nodes[L->loop].in[p].node].name);
        fputs("</B><BR/><I>", w->f);
        put_html(w, nd->name);
        fputs("</I>", w->f);
    } else {
        put_html(w, nd->name);
        fputs("</B>", w->f);
        if (nd->op != LG_OP_LOOP) fprintf(w->f, "<BR/>%s", lg_op_name(nd->op));
    }
    if (nd->op == LG_OP_LOOP) {
        put_loop_label(w, nd);
    } else {
        for (int o = 0; o < nd->n_out; o++) {
            fputs("<BR/>", w->f);
            if (nd->n_out > 1) fprintf(w->f, "#%d ", o);
            put_port(w, &nd->out[o]);
        }
    }
    fputs("> tooltip=\"", w->f);
    viz_put_text(w->f, nd->name, VIZ_QUOTED);
    fputs("\"];\n", w->f);
}

/* ---- edges ------------------------------------------------------------------------ */

/* An edge carrying output `out` of src (node `from`), labelled with its
 * shape after `role` (NULL: the output's role, see put_role). */
static void write_edge(writer *w, const char *from_prefix, int32_t from, const char *to_prefix, int32_t to,
                       const lg_node *src, int out, const char *role, bool dashed, int depth)
{
    indent(w, depth);
    fprintf(w->f, "%sn%d -> %sn%d [", from_prefix, (int)from, to_prefix, (int)to);
    if (w->o.edge_labels) {
        fputs("label=\"", w->f);
        if (role) fprintf(w->f, "%s ", role);
        else put_role(w, src, out);
        char buf[160];
        fputs(lg_shape_str(src->out[out].shape, buf, sizeof buf), w->f);
        fputs("\"", w->f);
    }
    if (dashed) fputs(" style=dashed", w->f);
    fputs("];\n", w->f);
}

/* Edges between the drawn nodes of a level; an expanded loop's inputs go to
 * its ports. */
static void write_edges(writer *w, const level *L, int depth)
{
    for (int32_t i = 0; i < L->g->n_nodes && !w->oom; i++) {
        const lg_node *nd = &L->g->nodes[i];
        if (!L->draw[i]) continue;
        const lg_loop_spec *loop = nd->op == LG_OP_LOOP && w->o.expand_loops ? nd->attrs.loop : NULL;
        char *body_prefix = loop ? str_printf(w, "%sn%d_", L->prefix, (int)i) : NULL;
        for (int k = 0; k < nd->n_in && (!loop || body_prefix); k++) {
            lg_ref r = nd->in[k];
            if (!L->draw[r.node]) continue;
            if (loop)
                write_edge(w, L->prefix, r.node, body_prefix, loop->inputs[k], &L->g->nodes[r.node], r.out, NULL,
                           false, depth);
            else
                write_edge(w, L->prefix, r.node, L->prefix, i, &L->g->nodes[r.node], r.out, NULL, false, depth);
        }
        free(body_prefix);
    }
}

/* ---- loops ------------------------------------------------------------------------ */

static void write_level(writer *w, const level *L, int depth);

/* The body nodes a loop node computes: those its results (and the
 * residuals it saves) need, and its inputs, less gradient nodes when they
 * are not drawn; NULL when out of memory. */
static bool *body_nodes(writer *w, const lg_node *loop)
{
    const lg_loop_spec *s = loop->attrs.loop;
    const lg_graph *body = s->body;
    int n_out = s->n_state + s->n_y + s->has_stop, n_want = n_out + s->n_res;
    lg_ref *want = malloc((size_t)(n_want ? n_want : 1) * sizeof *want);
    bool *draw = calloc((size_t)(body->n_nodes ? body->n_nodes : 1), sizeof *draw);
    lg_walk walk = {0};
    if (want && draw) {
        memcpy(want, s->outputs, (size_t)n_out * sizeof *want);
        if (s->n_res) memcpy(want + n_out, s->res, (size_t)s->n_res * sizeof *want);
    }
    if (!want || !draw || !lg_walk_init(&walk, body, want, n_want)) {
        free(want), free(draw);
        w->oom = true;
        return NULL;
    }
    for (int32_t j = 0; j < walk.end; j++) draw[j] = walk.needed[j];
    for (int k = 0; k < s->n_seq + s->n_state + s->n_inv; k++) draw[s->inputs[k]] = true;
    for (int32_t j = 0; j < body->n_nodes; j++) draw[j] = draw[j] && (w->o.gradients || !body->nodes[j].is_grad);
    lg_walk_free(&walk);
    free(want);
    return draw;
}

/* Loop node i of level L as a cluster holding the loop node and its body. */
static void write_loop(writer *w, const level *L, int32_t i, int depth)
{
    const lg_node *nd = &L->g->nodes[i];
    const lg_loop_spec *s = nd->attrs.loop;
    const lg_graph *body = s->body;
    char *prefix = str_printf(w, "%sn%d_", L->prefix, (int)i);
    bool *draw = prefix ? body_nodes(w, nd) : NULL;
    int *port_of = draw ? malloc((size_t)(body->n_nodes ? body->n_nodes : 1) * sizeof *port_of) : NULL;
    if (!port_of) {
        w->oom = true;
        free(prefix), free(draw);
        return;
    }
    for (int32_t j = 0; j < body->n_nodes; j++) port_of[j] = -1;
    for (int k = 0; k < s->n_seq + s->n_state + s->n_inv; k++) port_of[s->inputs[k]] = k;

    bool grad = nd->is_grad;
    indent(w, depth);
    fprintf(w->f, "subgraph cluster_%sn%d {\n", L->prefix, (int)i);
    indent(w, depth + 1);
    fprintf(w->f, "class=\"%s\" style=\"rounded,filled\" fillcolor=\"%s\" color=\"%s\" label=<<B>",
            grad ? "lg-grad-loop" : "lg-loop", CLUSTER_FILL[grad], CLUSTER_COLOR[grad]);
    put_html(w, nd->name);
    fprintf(w->f, "</B> (%s: %d sequences, %d states, %d invariants)>;\n", grad ? "gradient loop" : "loop", s->n_seq,
            s->n_state, s->n_inv);
    write_node(w, L, i, depth + 1);
    level B = {.g = body, .prefix = prefix, .draw = draw, .outer = L->g, .loop = i, .port_of = port_of};
    write_level(w, &B, depth + 1);
    for (int k = 0; k < s->n_state + s->n_y + s->has_stop; k++) {
        lg_ref r = s->outputs[k];
        char role[48];
        if (k < s->n_state) snprintf(role, sizeof role, "next state %d", k);
        else if (k < s->n_state + s->n_y) snprintf(role, sizeof role, "output %d", k - s->n_state);
        else snprintf(role, sizeof role, "stop");
        if (draw[r.node]) write_edge(w, prefix, r.node, L->prefix, i, &body->nodes[r.node], r.out, role, false, depth + 1);
    }
    for (int k = 0; k < s->n_res; k++) {
        lg_ref r = s->res[k];
        if (draw[r.node])
            write_edge(w, prefix, r.node, L->prefix, i, &body->nodes[r.node], r.out, "saved for gradient", true,
                       depth + 1);
    }
    indent(w, depth);
    fputs("}\n", w->f);
    free(prefix), free(draw), free(port_of);
}

static void write_level(writer *w, const level *L, int depth)
{
    for (int32_t i = 0; i < L->g->n_nodes && !w->oom; i++) {
        if (!L->draw[i]) continue;
        if (L->g->nodes[i].op == LG_OP_LOOP && w->o.expand_loops) write_loop(w, L, i, depth);
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
    fputs("</TABLE>>];\n", w->f);
}

static lg_status check_graph(const lg_graph *g, const char *fn)
{
    if (!g) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: graph is NULL", fn);
    if (g->error) return lg_fail(LG_ERR_GRAPH, "%s: the graph has an error: %s", fn, g->error);
    return LG_OK;
}

/* g, already checked, to f. */
static lg_status write_graph(const lg_graph *g, FILE *f, lg_dot_opts o, const char *fn)
{
    if (o.layers) return viz_write_layers(g, f, o, fn);
    writer w = {.f = f, .o = o};
    bool *draw = calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *draw);
    if (!draw) return lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    for (int32_t i = 0; i < g->n_nodes; i++)
        draw[i] = viz_in_scope(g->nodes[i].name, o.scope) && (o.gradients || !g->nodes[i].is_grad);
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
    outfile o;
    s = outfile_open(&o, path);
    if (s) return s;
    s = write_graph(g, o.f, opts, "lg_graph_write_dot");
    if (s) {
        outfile_abort(&o);
        return s;
    }
    return outfile_commit(&o);
}
