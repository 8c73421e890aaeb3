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
#include <string.h>

#include "dot_util.h"
#include "graph/internal.h"

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

/* ---- grouping ------------------------------------------------------------------ */

/* The key of node nd; *leaf when the name ends at the key. */
static const char *key_of(const view *v, const lg_node *nd, size_t *len, bool *leaf)
{
    const char *name = nd->name, *from = name, *slash;
    if (v->expand && strncmp(name, v->expand, v->elen) == 0 && (name[v->elen] == '\0' || name[v->elen] == '/')) {
        from = name[v->elen] ? name + v->elen + 1 : name + v->elen;
    } else if (nd->is_grad) {
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
    for (int32_t i = 0; i < g->n_nodes; i++) {
        if (!v->keep[i]) continue;
        const lg_node *nd = &g->nodes[i];
        size_t len;
        bool leaf;
        const char *key = key_of(v, nd, &len, &leaf);
        int k = v->of[i] = group_of(v, key, len);
        group *gr = &v->groups[k];
        if (gr->first < 0) gr->first = i;
        gr->n_nodes++;
        gr->scope |= !leaf;
        gr->grad |= nd->is_grad && !(v->expand && viz_in_scope(nd->name, v->expand));
        if (nd->op == LG_OP_PARAM) gr->n_params++, gr->param_values += lg_shape_numel(nd->out[0].shape);
        else if (nd->op != LG_OP_INPUT && nd->op != LG_OP_CONST) gr->n_ops++;
        if (nd->op == LG_OP_LOOP && !nd->is_grad && gr->n_loops++ == 0) gr->loop = i;
    }
}

static gkind kind_of(const view *v, const group *gr)
{
    if (gr->grad) return G_GRAD;
    if (gr->scope) return gr->loop >= 0 ? G_SCOPE_LOOP : G_SCOPE;
    switch (v->g->nodes[gr->first].op) {
    case LG_OP_INPUT: return G_INPUT;
    case LG_OP_PARAM: return G_PARAM;
    case LG_OP_CONST: return G_CONST;
    case LG_OP_LOOP: return G_LOOP;
    default: return G_OP;
    }
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
    for (int32_t i = 0; i < g->n_nodes; i++) {
        if (!v->keep[i]) continue;
        for (int k = 0; k < g->nodes[i].n_in; k++) {
            lg_ref r = g->nodes[i].in[k];
            if (!v->keep[r.node] || v->of[r.node] == v->of[i]) continue;
            edge *e = edge_of(v, v->of[r.node], v->of[i]);
            if (!e) return false;
            add_shape(e, g->nodes[r.node].out[r.out].shape);
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
    for (int k = 0; k < g->n_layers; k++) {
        size_t n = strlen(g->layers[k].name);
        if (n >= best_len && strncmp(name, g->layers[k].name, n) == 0 && name[n] == '/')
            best = g->layers[k].type, best_len = n;
    }
    return best;
}

/* "LSTM cell, loop over T = 28" */
static void put_loop(FILE *f, const lg_graph *g, int32_t i)
{
    const lg_node *nd = &g->nodes[i];
    const lg_loop_spec *s = nd->attrs.loop;
    const char *cell = layer_type(g, nd->name);
    if (cell) {
        viz_put_text(f, cell, VIZ_HTML);
        fputs(" cell, ", f);
    }
    if (s->n_seq > 0) {
        lg_ref x = nd->in[0];
        int64_t t = g->nodes[x.node].out[x.out].shape.dims[0];
        if (t < 0) fputs("loop over T = ?", f);
        else fprintf(f, "loop over T = %lld", (long long)t);
    } else {
        fprintf(f, "loop of %lld steps", (long long)s->steps);
    }
    if (s->reverse) fputs(", reverse", f);
    if (s->has_stop) fputs(", until stop", f);
}

/* The distinct types of the layers in scope gr, as "LSTM, Dense". */
static void put_layer_types(FILE *f, const lg_graph *g, const group *gr)
{
    bool any = false;
    for (int k = 0; k < g->n_layers; k++) {
        const char *name = g->layers[k].name, *type = g->layers[k].type;
        if (strncmp(name, gr->key, gr->len) != 0 || (name[gr->len] != '\0' && name[gr->len] != '/')) continue;
        bool seen = false;
        for (int j = 0; j < k && !seen; j++) {
            const char *nj = g->layers[j].name;
            seen = strcmp(g->layers[j].type, type) == 0 && strncmp(nj, gr->key, gr->len) == 0 &&
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
        for (int32_t i = 0; i < g->n_nodes; i++) loops += v->keep[i] && v->of[i] == gr - v->groups && g->nodes[i].op == LG_OP_LOOP;
        fprintf(f, "<BR/>%d op%s", gr->n_ops, gr->n_ops == 1 ? "" : "s");
        if (loops) fprintf(f, ", %d gradient loop%s", loops, loops == 1 ? "" : "s");
        return;
    }
    fputs("<B>", f);
    put_key(f, gr);
    fputs("</B>", f);
    if (gr->loop < 0 || !layer_type(g, g->nodes[gr->loop].name)) put_layer_types(f, g, gr); /* else the cell says it */
    int shown = 0;
    for (int32_t i = gr->loop; i >= 0 && i < g->n_nodes && shown < MAX_LOOPS_SHOWN; i++) {
        if (!v->keep[i] || v->of[i] != gr - v->groups || g->nodes[i].op != LG_OP_LOOP || g->nodes[i].is_grad) continue;
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
    const lg_node *nd = &g->nodes[i];
    fputs("<B>", f);
    viz_put_text(f, nd->name, VIZ_HTML);
    fputs("</B><BR/>", f);
    if (nd->op == LG_OP_LOOP) {
        put_loop(f, g, i);
        return;
    }
    fputs(lg_op_name(nd->op), f);
    char buf[160];
    for (int o = 0; o < nd->n_out; o++)
        fprintf(f, "<BR/>%s %s", lg_dtype_name(nd->out[o].dtype), lg_shape_str(nd->out[o].shape, buf, sizeof buf));
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
        if (p.graph != v->g || p.node < 0 || p.node >= v->g->n_nodes) continue;
        values += lg_shape_numel(v->g->nodes[p.node].out[0].shape);
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
            if (!v->groups[k].grad && viz_in_scope(v->g->nodes[v->groups[k].first].name, v->expand)) write_group(f, v, k, 2);
        fputs("  }\n", f);
    }
    for (int k = 0; k < v->n_groups; k++)
        if (!v->expand || v->groups[k].grad || !viz_in_scope(v->g->nodes[v->groups[k].first].name, v->expand))
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
    size_t n = (size_t)(g->n_nodes ? g->n_nodes : 1);
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
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const lg_node *nd = &g->nodes[i];
        v.keep[i] = viz_in_scope(nd->name, o.scope) && (o.gradients || !nd->is_grad);
        found |= v.keep[i] && v.expand && strncmp(nd->name, v.expand, v.elen) == 0 && nd->name[v.elen] == '/';
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
