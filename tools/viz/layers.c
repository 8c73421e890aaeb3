/*
 * layers.c — the layer view of a graph (viz.h): one node per name scope,
 * a scope's loops named by cell and steps, the gradient as one node.
 *
 * Every kept node of the top graph gets a key: its first name component
 * ("lstm" of "lstm/kernel"), "grad" for a gradient op, or, under the
 * expanded scope E, the component after E ("E/kernel"). Nodes sharing a
 * key form a group, drawn as one node: a scope when some member's name goes
 * on past the key, else the op itself. Edges join groups, one per pair.
 * Loop bodies are never drawn: the loop is its scope's label.
 */
#include <stdlib.h>
#include <string.h>

#include "dot_util.h"
#include "graph/loop.h"
#include "graph/optim.h"

typedef enum gkind { G_SCOPE, G_SCOPE_LOOP, G_GRAD, G_OPTIMIZER, G_INPUT, G_PARAM, G_CONST, G_OP, G_LOOP, GKIND_COUNT } gkind;

static const struct style {
    const char *cls, *legend, *shape, *style, *fill, *color;
} STYLES[] = {
    [G_SCOPE] = {"lg-scope", "name scope", "box", "rounded,filled", "#cfe2f3", "#0b5394"},
    [G_SCOPE_LOOP] = {"lg-scope-loop", "name scope with a loop", "box3d", "filled", "#b6d7a8", "#274e13"},
    [G_GRAD] = {"lg-gradient", "gradient (every gradient op)", "box3d", "filled", "#f4cccc", "#990000"},
    [G_OPTIMIZER] = {"lg-optimizer", "optimizer", "component", "filled", "#ead1dc", "#741b47"},
    [G_INPUT] = {"lg-input", "input (placeholder)", "invhouse", "filled", "#9fc5e8", "#0b5394"},
    [G_PARAM] = {"lg-param", "parameter", "box", "filled,bold", "#ffd966", "#7f6000"},
    [G_CONST] = {"lg-const", "constant", "box", "filled,dashed", "#eeeeee", "#666666"},
    [G_OP] = {"lg-op", "op", "ellipse", "filled", "#ffffff", "#000000"},
    [G_LOOP] = {"lg-loop", "loop", "box3d", "filled", "#b6d7a8", "#274e13"},
};
_Static_assert(sizeof STYLES / sizeof STYLES[0] == GKIND_COUNT, "a style per group kind");

enum { MAX_SHAPES = 3, MAX_LOOPS_SHOWN = 2 };

typedef struct group {
    const char *key; /* the first len bytes: a prefix of a node's name, or "grad" */
    size_t len;
    bool scope, grad, updated; /* updated: holds a parameter the optimizer updates */
    int n_nodes, n_ops, n_params, n_loops;
    int64_t param_values;
    int32_t first, loop; /* its first node; its first forward loop, -1 */
} group;

typedef struct edge {
    int from, to; /* groups; to == n_groups: the optimizer */
    int n_shapes;
    bool more;
    char shapes[MAX_SHAPES][64];
} edge;

typedef struct view {
    const lg_graph *g;
    lg_dot_opts o;
    const char *expand; /* E, without a trailing '/'; NULL: none */
    size_t elen;
    bool *keep;
    int *of; /* node -> group */
    group *groups;
    int n_groups;
    edge *edges;
    int n_edges, cap_edges;
} view;

/* ---- the graph, through graph.h and loop.h ------------------------------------ */

/* Whether node i's op is `op` ("param", "input", "const", "loop"). */
static bool op_is(const lg_graph *g, int32_t i, const char *op) { return strcmp(lg_graph_node_op(g, i), op) == 0; }

static lg_shape out_shape(const lg_graph *g, int32_t i, int o)
{
    return lg_value_shape(lg_graph_node_output(g, i, o));
}

/* ---- grouping ------------------------------------------------------------------ */

/* The key of node i; *leaf when the name ends at the key. */
static const char *key_of(const view *v, int32_t i, size_t *len, bool *leaf)
{
    const char *name = lg_graph_node_name(v->g, i), *from = name, *slash;
    if (v->expand && strncmp(name, v->expand, v->elen) == 0 && (name[v->elen] == '\0' || name[v->elen] == '/')) {
        from = name[v->elen] ? name + v->elen + 1 : name + v->elen;
    } else if (lg_graph_node_is_grad(v->g, i)) {
        *len = 4, *leaf = false;
        return "grad";
    }
    slash = strchr(from, '/');
    *leaf = slash == NULL;
    *len = slash ? (size_t)(slash - name) : strlen(name);
    return name;
}

static int group_of(view *v, const char *key, size_t len)
{
    for (int k = 0; k < v->n_groups; k++)
        if (v->groups[k].len == len && memcmp(v->groups[k].key, key, len) == 0) return k;
    v->groups[v->n_groups] = (group){.key = key, .len = len, .first = -1, .loop = -1};
    return v->n_groups++;
}

static void make_groups(view *v)
{
    const lg_graph *g = v->g;
    for (int32_t i = 0; i < lg_graph_node_count(g); i++) {
        if (!v->keep[i]) continue;
        bool is_grad = lg_graph_node_is_grad(g, i);
        size_t len;
        bool leaf;
        const char *key = key_of(v, i, &len, &leaf);
        int k = v->of[i] = group_of(v, key, len);
        group *gr = &v->groups[k];
        if (gr->first < 0) gr->first = i;
        gr->n_nodes++;
        gr->scope |= !leaf;
        gr->grad |= is_grad && !(v->expand && viz_in_scope(lg_graph_node_name(g, i), v->expand));
        if (op_is(g, i, "param")) gr->n_params++, gr->param_values += lg_shape_numel(out_shape(g, i, 0));
        else if (!op_is(g, i, "input") && !op_is(g, i, "const")) gr->n_ops++;
        if (op_is(g, i, "loop") && !is_grad && gr->n_loops++ == 0) gr->loop = i;
    }
}

static gkind kind_of(const view *v, const group *gr)
{
    if (gr->grad) return G_GRAD;
    if (gr->scope) return gr->loop >= 0 ? G_SCOPE_LOOP : G_SCOPE;
    if (op_is(v->g, gr->first, "input")) return G_INPUT;
    if (op_is(v->g, gr->first, "param")) return G_PARAM;
    if (op_is(v->g, gr->first, "const")) return G_CONST;
    if (op_is(v->g, gr->first, "loop")) return G_LOOP;
    return G_OP;
}

/* ---- edges ------------------------------------------------------------------------ */

static edge *edge_of(view *v, int from, int to)
{
    for (int k = 0; k < v->n_edges; k++)
        if (v->edges[k].from == from && v->edges[k].to == to) return &v->edges[k];
    if (v->n_edges == v->cap_edges) {
        int cap = v->cap_edges ? 2 * v->cap_edges : 16;
        edge *e = realloc(v->edges, (size_t)cap * sizeof *e);
        if (!e) return NULL;
        v->edges = e, v->cap_edges = cap;
    }
    v->edges[v->n_edges] = (edge){.from = from, .to = to};
    return &v->edges[v->n_edges++];
}

/* Note that a value of shape s crosses e. */
static void add_shape(edge *e, lg_shape s)
{
    char buf[64];
    lg_shape_str(s, buf, sizeof buf);
    for (int k = 0; k < e->n_shapes; k++)
        if (strcmp(e->shapes[k], buf) == 0) return;
    if (e->n_shapes == MAX_SHAPES) e->more = true;
    else memcpy(e->shapes[e->n_shapes++], buf, sizeof buf);
}

/* false when out of memory */
static bool make_edges(view *v)
{
    const lg_graph *g = v->g;
    for (int32_t i = 0; i < lg_graph_node_count(g); i++) {
        if (!v->keep[i]) continue;
        for (int k = 0; k < lg_graph_node_input_count(g, i); k++) {
            lg_value r = lg_graph_node_input(g, i, k);
            if (!v->keep[r.node] || v->of[r.node] == v->of[i]) continue;
            edge *e = edge_of(v, v->of[r.node], v->of[i]);
            if (!e) return false;
            add_shape(e, lg_value_shape(r));
        }
    }
    return true;
}

/* ---- labels ------------------------------------------------------------------------- */

static void put_key(FILE *f, const group *gr)
{
    char *k = strndup(gr->key, gr->len);
    viz_put_text(f, k ? k : "", VIZ_HTML); /* out of memory: an empty name, never a wrong one */
    free(k);
}

/* The type of the layer that made node `name`: the layer whose scope holds
 * it most closely; NULL if none. */
static const char *layer_type(const lg_graph *g, const char *name)
{
    const char *best = NULL;
    size_t best_len = 0;
    for (int k = 0; k < lg_graph_layer_count(g); k++) {
        const char *layer = lg_graph_layer_name(g, k);
        size_t n = strlen(layer);
        if (n >= best_len && strncmp(name, layer, n) == 0 && name[n] == '/') best = lg_graph_layer_type(g, k), best_len = n;
    }
    return best;
}

/* "LSTM cell, loop over T = 28" */
static void put_loop(FILE *f, const lg_graph *g, int32_t i)
{
    lg_loop_info s;
    lg_graph_node_loop(g, i, &s);
    const char *cell = layer_type(g, lg_graph_node_name(g, i));
    if (cell) {
        viz_put_text(f, cell, VIZ_HTML);
        fputs(" cell, ", f);
    }
    if (s.n_seq > 0) {
        int64_t t = lg_value_shape(lg_graph_node_input(g, i, 0)).dims[0];
        if (t < 0) fputs("loop over T = ?", f);
        else fprintf(f, "loop over T = %lld", (long long)t);
    } else {
        fprintf(f, "loop of %lld steps", (long long)s.steps);
    }
    if (s.reverse) fputs(", reverse", f);
    if (s.has_stop) fputs(", until stop", f);
    fputs("<BR/>", f);
    viz_put_fusion(f, g, i);
}

/* The distinct types of the layers in scope gr, as "LSTM, Dense". */
static void put_layer_types(FILE *f, const lg_graph *g, const group *gr)
{
    bool any = false;
    for (int k = 0; k < lg_graph_layer_count(g); k++) {
        const char *name = lg_graph_layer_name(g, k), *type = lg_graph_layer_type(g, k);
        if (strncmp(name, gr->key, gr->len) != 0 || (name[gr->len] != '\0' && name[gr->len] != '/')) continue;
        bool seen = false;
        for (int j = 0; j < k && !seen; j++) {
            const char *nj = lg_graph_layer_name(g, j);
            seen = strcmp(lg_graph_layer_type(g, j), type) == 0 && strncmp(nj, gr->key, gr->len) == 0 &&
                   (nj[gr->len] == '\0' || nj[gr->len] == '/');
        }
        if (seen) continue;
        fputs(any ? ", " : "<BR/>", f);
        viz_put_text(f, type, VIZ_HTML);
        any = true;
    }
}

static void put_scope_label(FILE *f, const view *v, const group *gr)
{
    const lg_graph *g = v->g;
    if (gr->grad) {
        fputs("<B>gradient</B>", f);
        int loops = 0;
        for (int32_t i = 0; i < lg_graph_node_count(g); i++)
            loops += v->keep[i] && v->of[i] == gr - v->groups && op_is(g, i, "loop");
        fprintf(f, "<BR/>%d op%s", gr->n_ops, gr->n_ops == 1 ? "" : "s");
        if (loops) fprintf(f, ", %d gradient loop%s", loops, loops == 1 ? "" : "s");
        return;
    }
    fputs("<B>", f);
    put_key(f, gr);
    fputs("</B>", f);
    if (gr->loop < 0 || !layer_type(g, lg_graph_node_name(g, gr->loop))) put_layer_types(f, g, gr); /* else the cell says it */
    int shown = 0;
    for (int32_t i = gr->loop; i >= 0 && i < lg_graph_node_count(g) && shown < MAX_LOOPS_SHOWN; i++) {
        if (!v->keep[i] || v->of[i] != gr - v->groups || !op_is(g, i, "loop") || lg_graph_node_is_grad(g, i)) continue;
        fputs("<BR/>", f);
        put_loop(f, g, i);
        shown++;
    }
    if (gr->n_loops > shown) fprintf(f, "<BR/>and %d more loops", gr->n_loops - shown);
    fprintf(f, "<BR/>%d op%s", gr->n_ops, gr->n_ops == 1 ? "" : "s");
    if (gr->n_params)
        fprintf(f, ", %d parameter%s (%lld values)", gr->n_params, gr->n_params == 1 ? "" : "s",
                (long long)gr->param_values);
}

static void put_op_label(FILE *f, const lg_graph *g, int32_t i)
{
    fputs("<B>", f);
    viz_put_text(f, lg_graph_node_name(g, i), VIZ_HTML);
    fputs("</B><BR/>", f);
    if (op_is(g, i, "loop")) {
        put_loop(f, g, i);
        return;
    }
    fputs(lg_graph_node_op(g, i), f);
    char buf[160];
    for (int o = 0; o < lg_graph_node_output_count(g, i); o++) {
        lg_value out = lg_graph_node_output(g, i, o);
        fprintf(f, "<BR/>%s %s", lg_dtype_name(lg_value_dtype(out)), lg_shape_str(lg_value_shape(out), buf, sizeof buf));
    }
}

/* ---- the document ------------------------------------------------------------------- */

static void put_attrs(FILE *f, gkind k)
{
    const struct style *st = &STYLES[k];
    fprintf(f, "class=\"%s\" shape=%s style=\"%s\" fillcolor=\"%s\" color=\"%s\"", st->cls, st->shape, st->style,
            st->fill, st->color);
}

static void write_group(FILE *f, const view *v, int k, int depth)
{
    const group *gr = &v->groups[k];
    fprintf(f, "%*ss%d [", 2 * depth, "", k);
    put_attrs(f, kind_of(v, gr));
    if (!gr->grad && gr->loop >= 0 && lg_loop_fused(v->g, gr->loop, NULL, 0))
        fprintf(f, " penwidth=%d", VIZ_FUSED_PENWIDTH);
    fputs(" label=<", f);
    if (gr->scope || gr->grad) put_scope_label(f, v, gr);
    else put_op_label(f, v->g, gr->first);
    if (!gr->scope && !gr->grad && gr->n_nodes > 1) fprintf(f, "<BR/>(%d nodes of this name)", gr->n_nodes);
    fputs("> tooltip=\"", f);
    char *key = strndup(gr->key, gr->len);
    viz_put_text(f, key ? key : "", VIZ_QUOTED);
    free(key);
    fputs("\"];\n", f);
}

static void write_edge(FILE *f, const view *v, const edge *e)
{
    if (e->to == v->n_groups) fprintf(f, "  s%d -> optimizer [", e->from);
    else fprintf(f, "  s%d -> s%d [", e->from, e->to);
    if (v->o.edge_labels) {
        fputs("label=\"", f);
        for (int k = 0; k < e->n_shapes; k++) fprintf(f, "%s%s", k ? "\\n" : "", e->shapes[k]);
        if (e->more) fputs("\\nand more", f);
        fputs("\"", f);
    }
    fputs("];\n", f);
}

/* The optimizer node, the gradient's edge into it, and its updates. */
static void write_optimizer(FILE *f, view *v)
{
    const lg_optimizer *opt = v->o.optimizer;
    int n = lg_optimizer_param_count(opt);
    int64_t values = 0;
    for (int i = 0; i < n; i++) {
        lg_value p = lg_optimizer_param(opt, i);
        if (p.graph != v->g || p.node < 0 || p.node >= lg_graph_node_count(v->g)) continue;
        values += lg_shape_numel(lg_value_shape(p));
        if (v->keep[p.node]) v->groups[v->of[p.node]].updated = true;
    }
    fputs("  optimizer [", f);
    put_attrs(f, G_OPTIMIZER);
    fprintf(f, " label=<<B>optimizer</B><BR/>updates %d parameter%s (%lld values)<BR/>learning rate %g> "
               "tooltip=\"optimizer\"];\n",
            n, n == 1 ? "" : "s", (long long)values, lg_optimizer_learning_rate(opt));
    for (int k = 0; k < v->n_groups; k++) {
        if (v->groups[k].grad)
            fprintf(f, "  s%d -> optimizer [label=\"%d gradients\"];\n", k, n);
        if (v->groups[k].updated)
            fprintf(f, "  optimizer -> s%d [label=\"updates\" style=dashed constraint=false color=\"%s\"];\n", k,
                    STYLES[G_OPTIMIZER].color);
    }
}

static void write_legend(FILE *f)
{
    fputs("  legend [class=\"lg-legend\" shape=plaintext label=<<TABLE BORDER=\"0\" CELLBORDER=\"1\" "
          "CELLSPACING=\"2\" CELLPADDING=\"3\"><TR><TD><B>legend</B></TD></TR>",
          f);
    for (int k = 0; k < GKIND_COUNT; k++)
        fprintf(f, "<TR><TD BGCOLOR=\"%s\" COLOR=\"%s\">%s</TD></TR>", STYLES[k].fill, STYLES[k].color, STYLES[k].legend);
    fprintf(f, "<TR><TD BGCOLOR=\"%s\" COLOR=\"%s\" BORDER=\"%d\">fused loop (one rnn kernel on the CPU)</TD></TR>",
            STYLES[G_SCOPE_LOOP].fill, STYLES[G_SCOPE_LOOP].color, VIZ_FUSED_PENWIDTH);
    fputs("</TABLE>>];\n", f);
}

static void write_view(FILE *f, view *v)
{
    fputs("digraph loopgrad {\n"
          "  graph [fontname=\"Helvetica\" fontsize=11 labeljust=l newrank=true];\n"
          "  node [fontname=\"Helvetica\" fontsize=10];\n"
          "  edge [fontname=\"Helvetica\" fontsize=9];\n",
          f);
    if (v->expand) {
        fputs("  subgraph cluster_expanded {\n    class=\"lg-expanded\" style=\"rounded\" color=\"#0b5394\" label=<<B>", f);
        viz_put_text(f, v->expand, VIZ_HTML);
        fputs("</B> (expanded)>;\n", f);
        for (int k = 0; k < v->n_groups; k++)
            if (!v->groups[k].grad && viz_in_scope(lg_graph_node_name(v->g, v->groups[k].first), v->expand)) write_group(f, v, k, 2);
        fputs("  }\n", f);
    }
    for (int k = 0; k < v->n_groups; k++)
        if (!v->expand || v->groups[k].grad || !viz_in_scope(lg_graph_node_name(v->g, v->groups[k].first), v->expand))
            write_group(f, v, k, 1);
    for (int k = 0; k < v->n_edges; k++) write_edge(f, v, &v->edges[k]);
    if (v->o.optimizer) write_optimizer(f, v);
    if (v->o.legend) write_legend(f);
    fputs("}\n", f);
}

/* The message for an expand that names no scope: the scopes there are. */
static lg_status no_such_scope(const view *v, const char *fn)
{
    char list[512] = "";
    size_t used = 0;
    for (int k = 0; k < v->n_groups && used < sizeof list; k++)
        if (v->groups[k].scope)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s'%.*s'", used ? ", " : "", (int)v->groups[k].len,
                                     v->groups[k].key);
    return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: no scope '%s' to expand (the graph's scopes: %s)", fn, v->o.expand,
                   used ? list : "none");
}

lg_status viz_write_layers(const lg_graph *g, FILE *f, lg_dot_opts o, const char *fn)
{
    view v = {.g = g, .o = o};
    int32_t n_nodes = lg_graph_node_count(g);
    size_t n = (size_t)(n_nodes ? n_nodes : 1);
    v.keep = calloc(n, sizeof *v.keep);
    v.of = calloc(n, sizeof *v.of);
    v.groups = calloc(n, sizeof *v.groups);
    char *expand = o.expand && o.expand[0] ? strdup(o.expand) : NULL;
    lg_status s = LG_OK;
    if (!v.keep || !v.of || !v.groups || (o.expand && o.expand[0] && !expand)) {
        s = lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
        goto done;
    }
    if (expand) {
        size_t len = strlen(expand);
        while (len > 0 && expand[len - 1] == '/') expand[--len] = '\0';
        v.expand = expand, v.elen = len;
    }
    bool found = false;
    for (int32_t i = 0; i < n_nodes; i++) {
        const char *name = lg_graph_node_name(g, i);
        v.keep[i] = viz_in_scope(name, o.scope) && (o.gradients || !lg_graph_node_is_grad(g, i));
        found |= v.keep[i] && v.expand && strncmp(name, v.expand, v.elen) == 0 && name[v.elen] == '/';
    }
    if (v.expand && !found) {
        v.expand = NULL, v.elen = 0; /* group as without it, to list the scopes there are */
        make_groups(&v);
        s = no_such_scope(&v, fn);
        goto done;
    }
    make_groups(&v);
    if (!make_edges(&v)) {
        s = lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
        goto done;
    }
    write_view(f, &v);
    if (fflush(f) != 0 || ferror(f)) s = lg_fail(LG_ERR_IO, "%s: a write failed", fn);
done:
    free(v.keep), free(v.of), free(v.groups), free(v.edges), free(expand);
    return s;
}
