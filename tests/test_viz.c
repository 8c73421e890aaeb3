/*
 * test_viz.c — tools/viz through its public API (viz/viz.h): the DOT of a
 * graph with a nested loop and its gradients is parsed back by Graphviz's
 * own parser (cgraph) and its structure checked (one cluster per loop,
 * nested as the loops are, every node declared once and in one place, the
 * node kinds' styles, the ports' labels, shapes on edges); forward-only,
 * collapsed and scope-filtered dumps; SVG and PNG rendering; names that
 * DOT or HTML would choke on; the examples' --dot/--svg flags; the
 * lg-render tool; and every bad input, each leaving no file behind.
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <graphviz/cgraph.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"
#include "viz/viz.h"

/* ---- a scratch directory per test ------------------------------------------------ */

static char dir[64];

static void dir_setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/lg_viz_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            char sub[512];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            remove_tree(sub);
        }
    closedir(d);
    rmdir(path);
}

static void dir_teardown(void) { remove_tree(dir); }

/* dir/name in a ring of buffers (several may be live at once) */
static const char *in_dir(const char *name)
{
    static char ring[4][512];
    static int k;
    char *p = ring[k++ % 4];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

/* Entries of dir (or a subdirectory), not counting . and .. */
static int entries(const char *path)
{
    DIR *d = opendir(path);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* The whole file, NUL-terminated (the caller frees); NULL if it is missing. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len) *len = (size_t)n;
    return buf;
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

#define ASSERT_STATUS(call, want, needle)                                                                        \
    do {                                                                                                          \
        lg_status s_ = (call);                                                                                    \
        ck_assert_msg(s_ == (want), "%s: got %s (%s)", #call, lg_status_name(s_), lg_last_error());               \
        ck_assert_msg(strstr(lg_last_error(), (needle)), "%s: message '%s' lacks '%s'", #call, lg_last_error(), \
                      (needle));                                                                                  \
    } while (0)

/* ---- graphs ----------------------------------------------------------------------- */

/* Sentences of words: an outer loop over sentences whose body runs an inner
 * loop over the words, gathering embeddings from an invariant table, and
 * the gradients of a loss with respect to the table and h0. */
static lg_graph *nested_graph(void)
{
    lg_graph *g = lg_graph_new();
    lg_value tok = lg_input(g, "tokens", LG_I32, lg_shape_of(3, -1, 3, 4)); /* [B, S, W] */
    lg_value table = lg_param(g, "table", LG_F32, lg_shape_of(2, 5, 3));
    lg_value h0 = lg_input(g, "h0", LG_F32, lg_shape_of(2, -1, 3));
    lg_loop_opts oo = lg_loop_opts_default(), io = lg_loop_opts_default();
    lg_loop *outer = lg_loop_new(g, "sentences", oo);
    lg_value sent = lg_loop_seq(outer, tok); /* [B, W] */
    lg_value h = lg_loop_state(outer, h0);
    lg_value tab = lg_loop_invariant(outer, table);
    lg_loop *inner = lg_loop_new(lg_loop_body(outer), "words", io);
    lg_value word = lg_loop_seq(inner, sent); /* [B] */
    lg_value hi = lg_loop_state(inner, h);
    lg_value tab2 = lg_loop_invariant(inner, tab);
    lg_loop_next(inner, hi, lg_tanh(lg_add(lg_gather(tab2, word), lg_scale(hi, 0.5))));
    lg_value inner_last;
    ck_assert_int_eq(lg_loop_end(inner, &inner_last, NULL), LG_OK);
    lg_loop_next(outer, h, inner_last);
    lg_loop_emit(outer, inner_last);
    lg_value last, seq;
    ck_assert_int_eq(lg_loop_end(outer, &last, &seq), LG_OK);
    lg_value loss = lg_add(lg_sum(seq, NULL, 0, false), lg_sum(last, NULL, 0, false));
    lg_value wrt[2] = {table, h0}, grads[2];
    ck_assert_int_eq(lg_grad(g, loss, wrt, 2, grads), LG_OK);
    return g;
}

/* A graph whose first error is recorded: [2, 3] x [4, 5]. */
static lg_graph *broken_graph(void)
{
    lg_graph *g = lg_graph_new();
    lg_value a = lg_input(g, "a", LG_F32, lg_shape_of(2, 2, 3));
    lg_value b = lg_param(g, "b", LG_F32, lg_shape_of(2, 4, 5));
    lg_matmul(a, b, false, false);
    ck_assert_ptr_nonnull(lg_graph_error(g));
    return g;
}

static int find_node(const lg_graph *g, const char *op, bool grad)
{
    for (int i = 0; i < lg_graph_node_count(g); i++)
        if (strcmp(lg_graph_node_op(g, i), op) == 0 && lg_graph_node_is_grad(g, i) == grad) return i;
    ck_abort_msg("no %s node (grad %d)", op, grad);
    return -1;
}

static int find_named(const lg_graph *g, const char *name)
{
    for (int i = 0; i < lg_graph_node_count(g); i++)
        if (strcmp(lg_graph_node_name(g, i), name) == 0) return i;
    ck_abort_msg("no node '%s'", name);
    return -1;
}

/* ---- reading DOT back ---------------------------------------------------------------- */

static char *dot_of(const lg_graph *g, lg_dot_opts o)
{
    char *dot = NULL;
    lg_status s = lg_graph_dot_string(g, o, &dot);
    ck_assert_msg(s == LG_OK, "dot: %s", lg_last_error());
    ck_assert_ptr_nonnull(dot);
    return dot;
}

static Agraph_t *parse(const char *dot)
{
    agreseterrors();
    Agraph_t *a = agmemread(dot);
    ck_assert_msg(a != NULL, "Graphviz does not parse:\n%s", dot);
    ck_assert_int_eq(agerrors(), 0);
    return a;
}

static bool is_cluster(Agraph_t *sg) { return strncmp(agnameof(sg), "cluster", 7) == 0; }

static int count_clusters(Agraph_t *a)
{
    int n = 0;
    for (Agraph_t *sg = agfstsubg(a); sg; sg = agnxtsubg(sg)) n += is_cluster(sg) + count_clusters(sg);
    return n;
}

static int child_clusters(Agraph_t *a)
{
    int n = 0;
    for (Agraph_t *sg = agfstsubg(a); sg; sg = agnxtsubg(sg)) n += is_cluster(sg);
    return n;
}

/* The places node n sits in under a: a itself when no subgraph holds it,
 * else those of the subgraphs that do. One for a node declared once. */
static int homes(Agraph_t *a, Agnode_t *n)
{
    int k = 0;
    for (Agraph_t *sg = agfstsubg(a); sg; sg = agnxtsubg(sg))
        if (agsubnode(sg, n, 0)) k += homes(sg, n);
    return k ? k : 1;
}

/* Node statements in the DOT text: lines "<id> [" other than the graph,
 * node and edge defaults. */
static int node_statements(const char *dot)
{
    int n = 0;
    for (const char *line = dot; line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        while (*line == ' ') line++;
        size_t id = strspn(line, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
        if (id && strncmp(line + id, " [", 2) == 0 && strncmp(line, "graph ", 6) && strncmp(line, "node ", 5) &&
            strncmp(line, "edge ", 5))
            n++;
    }
    return n;
}

static const char *attr(void *obj, const char *name)
{
    const char *v = agget(obj, (char *)name);
    return v ? v : "";
}

/* The text an HTML-like label shows: tags dropped, <BR/> a newline,
 * entities decoded. */
static void label_text(const char *html, char *out, size_t size)
{
    size_t k = 0;
    for (const char *p = html; *p && k + 1 < size;) {
        if (strncmp(p, "<BR/>", 5) == 0) out[k++] = '\n', p += 5;
        else if (*p == '<') p = strchr(p, '>') + 1;
        else if (strncmp(p, "&amp;", 5) == 0) out[k++] = '&', p += 5;
        else if (strncmp(p, "&lt;", 4) == 0) out[k++] = '<', p += 4;
        else if (strncmp(p, "&gt;", 4) == 0) out[k++] = '>', p += 4;
        else if (strncmp(p, "&quot;", 6) == 0) out[k++] = '"', p += 6;
        else out[k++] = *p++;
    }
    out[k] = '\0';
}

static Agnode_t *node_n(Agraph_t *a, int i)
{
    char id[32];
    snprintf(id, sizeof id, "n%d", i);
    return agnode(a, id, 0);
}

static Agraph_t *cluster_of(Agraph_t *a, int i)
{
    char id[32];
    snprintf(id, sizeof id, "cluster_n%d", i);
    return agsubg(a, id, 0);
}

/* The class each node of g must carry (the legend's table). */
static const char *expected_class(const lg_graph *g, int i)
{
    const char *op = lg_graph_node_op(g, i);
    bool grad = lg_graph_node_is_grad(g, i);
    if (strcmp(op, "param") == 0) return "lg-param";
    if (strcmp(op, "input") == 0) return "lg-input";
    if (strcmp(op, "const") == 0) return "lg-const";
    if (strcmp(op, "loop") == 0) return grad ? "lg-grad-loop" : "lg-loop";
    return grad ? "lg-grad" : "lg-op";
}

/* Whether a cluster holds a port whose label shows `text`. */
static bool has_port(Agraph_t *cluster, const char *text)
{
    char buf[512];
    for (Agnode_t *n = agfstnode(cluster); n; n = agnxtnode(cluster, n)) {
        label_text(attr(n, "label"), buf, sizeof buf);
        if (strcmp(attr(n, "class"), "lg-port") == 0 && strstr(buf, text)) return true;
    }
    return false;
}

/* ---- the structure of a dump ------------------------------------------------------------ */

START_TEST(test_nested_loops_with_gradients)
{
    lg_graph *g = nested_graph();
    char *dot = dot_of(g, lg_dot_opts_default());
    Agraph_t *a = parse(dot);

    /* one cluster per loop: the forward and the gradient outer loops at the
     * top, each holding its body's loop (the inner loop, its gradient) */
    int fwd = find_node(g, "loop", false), bwd = find_node(g, "loop", true), loops = 0;
    for (int i = 0; i < lg_graph_node_count(g); i++) loops += strcmp(lg_graph_node_op(g, i), "loop") == 0;
    ck_assert_int_eq(loops, 2);
    ck_assert_int_eq(count_clusters(a), 2 * loops);
    ck_assert_int_eq(child_clusters(a), 2);
    Agraph_t *cf = cluster_of(a, fwd), *cb = cluster_of(a, bwd);
    ck_assert_ptr_nonnull(cf);
    ck_assert_ptr_nonnull(cb);
    ck_assert_int_eq(child_clusters(cf), 1);
    ck_assert_int_eq(child_clusters(cb), 1);
    ck_assert_int_eq(child_clusters(agfstsubg(cf)), 0);
    ck_assert_str_eq(attr(cf, "class"), "lg-loop");
    ck_assert_str_eq(attr(cb, "class"), "lg-grad-loop");
    char text[1024];
    label_text(attr(cf, "label"), text, sizeof text);
    ck_assert_ptr_nonnull(strstr(text, "sentences"));
    label_text(attr(agfstsubg(cf), "label"), text, sizeof text);
    ck_assert_ptr_nonnull(strstr(text, "words"));

    /* every node declared once, in one place; the legend besides the graph's */
    ck_assert_int_eq(node_statements(dot), agnnodes(a));
    for (Agnode_t *n = agfstnode(a); n; n = agnxtnode(a, n)) ck_assert_int_eq(homes(a, n), 1);
    ck_assert_ptr_nonnull(agnode(a, "legend", 0));
    label_text(attr(agnode(a, "legend", 0), "label"), text, sizeof text);
    ck_assert_ptr_nonnull(strstr(text, "parameter"));
    ck_assert_ptr_nonnull(strstr(text, "gradient op"));

    /* each node of the graph is "n<i>" with its name and kind; a loop's node
     * is inside its own cluster */
    int top_level = 0;
    for (Agnode_t *n = agfstnode(a); n; n = agnxtnode(a, n)) top_level += strchr(agnameof(n), '_') == NULL;
    ck_assert_int_eq(top_level, lg_graph_node_count(g) + 1);
    for (int i = 0; i < lg_graph_node_count(g); i++) {
        Agnode_t *n = node_n(a, i);
        ck_assert_msg(n != NULL, "node %d (%s) is missing", i, lg_graph_node_name(g, i));
        ck_assert_str_eq(attr(n, "tooltip"), lg_graph_node_name(g, i));
        label_text(attr(n, "label"), text, sizeof text);
        ck_assert_msg(strncmp(text, lg_graph_node_name(g, i), strlen(lg_graph_node_name(g, i))) == 0, "%s", text);
        ck_assert_str_eq(attr(n, "class"), expected_class(g, i));
    }
    ck_assert_ptr_nonnull(agsubnode(cf, node_n(a, fwd), 0));
    ck_assert_ptr_nonnull(agsubnode(cb, node_n(a, bwd), 0));
    /* body nodes "<loop id>_n<j>" sit in their loop's cluster */
    for (Agnode_t *n = agfstnode(a); n; n = agnxtnode(a, n)) {
        const char *id = agnameof(n), *cut = strrchr(id, '_');
        if (!cut) continue;
        char cluster[128];
        snprintf(cluster, sizeof cluster, "cluster_%.*s", (int)(cut - id), id);
        Agraph_t *home = agsubg(a, cluster, 0);
        for (Agraph_t *sg = agfstsubg(a); !home && sg; sg = agnxtsubg(sg)) home = agsubg(sg, cluster, 0);
        ck_assert_msg(home && agsubnode(home, n, 0), "%s is not in %s", id, cluster);
    }

    /* the parameter's style */
    Agnode_t *table = node_n(a, find_named(g, "table"));
    ck_assert_str_eq(attr(table, "shape"), "box");
    ck_assert_str_eq(attr(table, "fillcolor"), "#ffd966");
    ck_assert_str_eq(attr(table, "style"), "filled,bold");

    /* ports at the loops' boundaries, named after what feeds them */
    ck_assert(has_port(cf, "slice x_t of transpose"));
    ck_assert(has_port(cf, "state h0"));
    ck_assert(has_port(cf, "invariant table"));
    ck_assert(has_port(agfstsubg(cf), "state state"));
    ck_assert(has_port(agfstsubg(cf), "invariant invariant"));
    ck_assert(has_port(cb, "state grad/"));

    /* edges carry shapes: the table into the forward loop's invariant port */
    int into_ports = 0;
    for (Agedge_t *e = agfstout(a, table); e; e = agnxtout(a, e)) {
        const char *head = agnameof(aghead(e));
        ck_assert_str_eq(attr(e, "label"), "[5, 3]");
        into_ports += strchr(head, '_') != NULL;
    }
    ck_assert_int_eq(into_ports, 2); /* the forward loop's invariant and the gradient loop's */

    agclose(a);
    free(dot);
    lg_graph_free(g);
}
END_TEST

START_TEST(test_forward_only)
{
    lg_graph *g = nested_graph();
    lg_dot_opts o = lg_dot_opts_default();
    o.gradients = false;
    char *dot = dot_of(g, o);
    Agraph_t *a = parse(dot);
    ck_assert_int_eq(count_clusters(a), 2); /* the outer loop and the inner one */
    for (int i = 0; i < lg_graph_node_count(g); i++)
        ck_assert_msg((node_n(a, i) != NULL) == !lg_graph_node_is_grad(g, i), "node %d", i);
    for (Agnode_t *n = agfstnode(a); n; n = agnxtnode(a, n)) ck_assert(strncmp(attr(n, "class"), "lg-grad", 7) != 0);
    agclose(a);
    free(dot);
    lg_graph_free(g);
}
END_TEST

START_TEST(test_collapsed_loops)
{
    lg_graph *g = nested_graph();
    lg_dot_opts o = lg_dot_opts_default();
    o.expand_loops = false;
    char *dot = dot_of(g, o);
    Agraph_t *a = parse(dot);
    ck_assert_int_eq(count_clusters(a), 0);
    ck_assert_int_eq(agnnodes(a), lg_graph_node_count(g) + 1); /* and the legend */
    for (Agnode_t *n = agfstnode(a); n; n = agnxtnode(a, n)) ck_assert(strchr(agnameof(n), '_') == NULL);
    ck_assert_str_eq(attr(node_n(a, find_node(g, "loop", false)), "class"), "lg-loop");
    ck_assert_str_eq(attr(node_n(a, find_node(g, "loop", false)), "shape"), "box3d");
    ck_assert_str_eq(attr(node_n(a, find_node(g, "loop", true)), "class"), "lg-grad-loop");
    agclose(a);
    free(dot);
    lg_graph_free(g);
}
END_TEST

/* enc/x, enc/w, enc/matmul, enc/tanh; encoder/w, encoder/matmul; dec/relu */
static lg_graph *scoped_graph(void)
{
    lg_graph *g = lg_graph_new();
    lg_scope_push(g, "enc");
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, -1, 3));
    lg_value h = lg_tanh(lg_matmul(x, lg_param(g, "w", LG_F32, lg_shape_of(2, 3, 4)), false, false));
    lg_scope_pop(g);
    lg_scope_push(g, "encoder");
    lg_value y = lg_matmul(h, lg_param(g, "w", LG_F32, lg_shape_of(2, 4, 2)), false, false);
    lg_scope_pop(g);
    lg_scope_push(g, "dec");
    lg_relu(y);
    lg_scope_pop(g);
    ck_assert_ptr_null(lg_graph_error(g));
    return g;
}

/* scope, the prefix its kept names have (then '/' or the end), what is kept */
static const struct {
    const char *scope, *prefix;
    int nodes, edges;
} SCOPES[] = {{"enc", "enc", 4, 3},  {"enc/", "enc", 4, 3},  {"encoder", "encoder", 2, 1},
              {"dec", "dec", 1, 0}, {"enc/w", "enc/w", 1, 0}, {"nothing", "nothing", 0, 0}};

START_TEST(test_scope_filter)
{
    lg_graph *g = scoped_graph();
    lg_dot_opts o = lg_dot_opts_default();
    o.scope = SCOPES[_i].scope;
    o.legend = false;
    char *dot = dot_of(g, o);
    Agraph_t *a = parse(dot);
    ck_assert_int_eq(agnnodes(a), SCOPES[_i].nodes);
    ck_assert_int_eq(agnedges(a), SCOPES[_i].edges);
    size_t n = strlen(SCOPES[_i].prefix);
    for (Agnode_t *v = agfstnode(a); v; v = agnxtnode(a, v)) {
        const char *name = attr(v, "tooltip");
        ck_assert_msg(strncmp(name, SCOPES[_i].prefix, n) == 0 && (name[n] == '\0' || name[n] == '/'), "%s kept", name);
    }
    agclose(a);
    free(dot);
    lg_graph_free(g);
}
END_TEST

/* ---- names ------------------------------------------------------------------------------------ */

static const struct {
    const char *name, *shown; /* shown: what the label shows, when not the name */
} ODD_NAMES[] = {
    {"quote\"d", NULL},          {"{braces}", NULL},        {"new\nline", NULL},
    {"back\\slash", NULL},       {"slash before quote\\\"", NULL}, {"trailing backslash\\", NULL},
    {"<angle> & amp;", NULL},    {"caf\xc3\xa9 \xe4\xb8\xad", NULL}, {"html <B>bold</B> &#65;", NULL},
    {"tab\there", "tab\\x09here"}, {"bad\xff" "byte", "bad\\xff" "byte"}, {"over\xc0\xaflong", "over\\xc0\\xaflong"},
};

START_TEST(test_odd_names_survive)
{
    lg_graph *g = lg_graph_new();
    int n = (int)(sizeof ODD_NAMES / sizeof ODD_NAMES[0]);
    lg_value sum = lg_param(g, "p", LG_F32, lg_shape_of(1, 2));
    for (int k = 0; k < n; k++) sum = lg_add(sum, lg_input(g, ODD_NAMES[k].name, LG_F32, lg_shape_of(1, 2)));
    const char *loop_name = "loop \"odd\" {name}\n<2>";
    lg_value xs = lg_input(g, "xs", LG_F32, lg_shape_of(2, 2, 4)); /* x_t [2] */
    lg_loop *l = lg_loop_new(g, loop_name, lg_loop_opts_default());
    lg_value h = lg_loop_state(l, sum);
    lg_loop_next(l, h, lg_add(h, lg_loop_seq(l, xs)));
    ck_assert_int_eq(lg_loop_end(l, NULL, NULL), LG_OK);

    char *dot = dot_of(g, lg_dot_opts_default());
    Agraph_t *a = parse(dot);
    char text[512];
    for (int k = 0; k < n; k++) {
        int i = find_named(g, ODD_NAMES[k].name);
        const char *shown = ODD_NAMES[k].shown ? ODD_NAMES[k].shown : ODD_NAMES[k].name;
        label_text(attr(node_n(a, i), "label"), text, sizeof text);
        ck_assert_msg(strncmp(text, shown, strlen(shown)) == 0, "'%s' shows as '%s'", ODD_NAMES[k].name, text);
    }
    label_text(attr(cluster_of(a, find_node(g, "loop", false)), "label"), text, sizeof text);
    ck_assert_ptr_nonnull(strstr(text, loop_name));
    agclose(a);
    free(dot);
    /* Graphviz lays every label out without an error (it checks HTML-like
     * labels only then), and the names reach the picture */
    lg_status s = lg_graph_render(g, in_dir("odd.svg"), NULL, lg_dot_opts_default());
    ck_assert_msg(s == LG_OK, "%s", lg_last_error());
    char *svg = slurp(in_dir("odd.svg"), NULL);
    ck_assert_ptr_nonnull(strstr(svg, "{braces}"));
    ck_assert_ptr_nonnull(strstr(svg, "caf\xc3\xa9 \xe4\xb8\xad"));
    ck_assert_ptr_nonnull(strstr(svg, "&lt;angle&gt; &amp; amp;"));
    free(svg);
    lg_graph_free(g);
}
END_TEST

/* ---- rendering ------------------------------------------------------------------------------ */

START_TEST(test_svg_has_every_name)
{
    lg_graph *g = nested_graph();
    lg_status s = lg_graph_render(g, in_dir("g.svg"), NULL, lg_dot_opts_default());
    ck_assert_msg(s == LG_OK, "%s", lg_last_error());
    char *svg = slurp(in_dir("g.svg"), NULL);
    ck_assert_ptr_nonnull(svg);
    ck_assert_ptr_nonnull(strstr(svg, "<svg"));
    ck_assert_ptr_nonnull(strstr(svg, "</svg>"));
    for (int i = 0; i < lg_graph_node_count(g); i++)
        ck_assert_msg(strstr(svg, lg_graph_node_name(g, i)), "'%s' is not in the SVG", lg_graph_node_name(g, i));
    ck_assert_int_eq(entries(dir), 1); /* no temporary file left */
    free(svg);
    lg_graph_free(g);
}
END_TEST

START_TEST(test_png_and_file_rendering)
{
    lg_graph *g = scoped_graph();
    /* the format from the extension in any case, or given */
    ck_assert_int_eq(lg_graph_render(g, in_dir("g.PNG"), NULL, lg_dot_opts_default()), LG_OK);
    ck_assert_int_eq(lg_graph_render(g, in_dir("g.img"), "png", lg_dot_opts_default()), LG_OK);
    for (int k = 0; k < 2; k++) {
        size_t len;
        char *png = slurp(in_dir(k ? "g.img" : "g.PNG"), &len);
        ck_assert_uint_gt(len, 100);
        ck_assert_mem_eq(png, "\x89PNG\r\n\x1a\n", 8);
        free(png);
    }
    /* DOT written to a file, rendered from it, replacing an older file whole */
    spit(in_dir("g.svg"), "old");
    ck_assert_int_eq(lg_graph_write_dot(g, in_dir("g.dot"), lg_dot_opts_default()), LG_OK);
    ck_assert_int_eq(lg_viz_render_file(in_dir("g.dot"), in_dir("g.svg"), NULL), LG_OK);
    char *svg = slurp(in_dir("g.svg"), NULL);
    ck_assert_ptr_nonnull(strstr(svg, "enc/matmul"));
    free(svg);
    /* the same DOT through a stream */
    FILE *f = fopen(in_dir("g2.dot"), "w");
    ck_assert_int_eq(lg_graph_dot_file(g, f, lg_dot_opts_default()), LG_OK);
    fclose(f);
    char *d1 = slurp(in_dir("g.dot"), NULL), *d2 = slurp(in_dir("g2.dot"), NULL);
    ck_assert_str_eq(d1, d2);
    ck_assert_int_eq(strncmp(d1, "digraph", 7), 0);
    free(d1), free(d2);
    ck_assert_int_eq(entries(dir), 5);
    lg_graph_free(g);
}
END_TEST

/* ---- bad input ------------------------------------------------------------------------------ */

START_TEST(test_graph_with_error)
{
    lg_graph *g = broken_graph();
    lg_dot_opts o = lg_dot_opts_default();
    ASSERT_STATUS(lg_graph_write_dot(g, in_dir("x.dot"), o), LG_ERR_GRAPH, lg_graph_error(g));
    ASSERT_STATUS(lg_graph_render(g, in_dir("x.svg"), NULL, o), LG_ERR_GRAPH, "has an error");
    ASSERT_STATUS(lg_graph_dot_file(g, stdout, o), LG_ERR_GRAPH, "has an error");
    char *dot = (char *)"unchanged";
    ASSERT_STATUS(lg_graph_dot_string(g, o, &dot), LG_ERR_GRAPH, "has an error");
    ck_assert_ptr_null(dot);
    lg_viz_args args = {in_dir("y.dot"), in_dir("y.svg")};
    ASSERT_STATUS(lg_viz_args_write(g, &args, o), LG_ERR_GRAPH, "has an error");
    ck_assert_int_eq(entries(dir), 0);
    lg_graph_free(g);
}
END_TEST

START_TEST(test_unwritable_paths)
{
    lg_graph *g = scoped_graph();
    lg_dot_opts o = lg_dot_opts_default();
    spit(in_dir("file"), "a file, not a directory");
    ck_assert_int_eq(mkdir(in_dir("sub"), 0777), 0);
    ASSERT_STATUS(lg_graph_write_dot(g, in_dir("file/x.dot"), o), LG_ERR_IO, in_dir("file/x.dot"));
    ASSERT_STATUS(lg_graph_render(g, in_dir("file/x.svg"), NULL, o), LG_ERR_IO, in_dir("file/x.svg"));
    ASSERT_STATUS(lg_graph_write_dot(g, in_dir("no/such/dir.dot"), o), LG_ERR_IO, "No such file");
    /* a directory in the way: the rename fails and the temporary file goes */
    ASSERT_STATUS(lg_graph_write_dot(g, in_dir("sub"), o), LG_ERR_IO, in_dir("sub"));
    ASSERT_STATUS(lg_graph_render(g, in_dir("sub"), "svg", o), LG_ERR_IO, in_dir("sub"));
    ck_assert_int_eq(entries(dir), 2);
    ck_assert_int_eq(entries(in_dir("sub")), 0);
    /* a stream that fails */
    FILE *full = fopen("/dev/full", "w");
    ck_assert_ptr_nonnull(full);
    ASSERT_STATUS(lg_graph_dot_file(g, full, o), LG_ERR_IO, "write failed");
    fclose(full);
    lg_graph_free(g);
}
END_TEST

START_TEST(test_unknown_formats)
{
    lg_graph *g = scoped_graph();
    lg_dot_opts o = lg_dot_opts_default();
    ASSERT_STATUS(lg_graph_render(g, in_dir("x.bmpx"), NULL, o), LG_ERR_INVALID_ARGUMENT, "unknown output format 'bmpx'");
    ASSERT_STATUS(lg_graph_render(g, in_dir("x.svg"), "gif", o), LG_ERR_INVALID_ARGUMENT, "'gif'");
    ASSERT_STATUS(lg_graph_render(g, in_dir("x"), NULL, o), LG_ERR_INVALID_ARGUMENT, "cannot tell the output format");
    ASSERT_STATUS(lg_graph_render(g, in_dir("x."), "", o), LG_ERR_INVALID_ARGUMENT, "cannot tell the output format");
    ASSERT_STATUS(lg_viz_render("digraph { a }", in_dir("x.dir/y"), NULL), LG_ERR_INVALID_ARGUMENT, "cannot tell");
    ck_assert_int_eq(entries(dir), 0);
    lg_graph_free(g);
}
END_TEST

START_TEST(test_bad_dot_text)
{
    /* an existing output survives every failed render untouched */
    spit(in_dir("out.svg"), "old");
    ASSERT_STATUS(lg_viz_render("digraph { a -> }", in_dir("out.svg"), NULL), LG_ERR_INVALID_ARGUMENT, "syntax error");
    ASSERT_STATUS(lg_viz_render("", in_dir("out.svg"), NULL), LG_ERR_INVALID_ARGUMENT, "no graph");
    ASSERT_STATUS(lg_viz_render("digraph { a [label=<<B>x>]; }", in_dir("out.svg"), NULL), LG_ERR_INVALID_ARGUMENT,
                  "mismatched tag");
    spit(in_dir("bad.dot"), "digraph { { }");
    ASSERT_STATUS(lg_viz_render_file(in_dir("bad.dot"), in_dir("out.svg"), NULL), LG_ERR_INVALID_ARGUMENT, "syntax");
    ASSERT_STATUS(lg_viz_render_file(in_dir("missing.dot"), in_dir("out.svg"), NULL), LG_ERR_IO, in_dir("missing.dot"));
    char *old = slurp(in_dir("out.svg"), NULL);
    ck_assert_str_eq(old, "old");
    free(old);
    ck_assert_int_eq(entries(dir), 2);
    /* after all that, a good render still works */
    ck_assert_int_eq(lg_viz_render("digraph { a -> b }", in_dir("out.svg"), NULL), LG_OK);
    char *svg = slurp(in_dir("out.svg"), NULL);
    ck_assert_ptr_nonnull(strstr(svg, "<svg"));
    free(svg);
}
END_TEST

START_TEST(test_null_arguments)
{
    lg_graph *g = scoped_graph();
    lg_dot_opts o = lg_dot_opts_default();
    ASSERT_STATUS(lg_graph_write_dot(NULL, in_dir("x.dot"), o), LG_ERR_INVALID_ARGUMENT, "graph is NULL");
    ASSERT_STATUS(lg_graph_write_dot(g, NULL, o), LG_ERR_INVALID_ARGUMENT, "path is NULL");
    ASSERT_STATUS(lg_graph_dot_file(NULL, stdout, o), LG_ERR_INVALID_ARGUMENT, "graph is NULL");
    ASSERT_STATUS(lg_graph_dot_file(g, NULL, o), LG_ERR_INVALID_ARGUMENT, "stream is NULL");
    ASSERT_STATUS(lg_graph_dot_string(g, o, NULL), LG_ERR_INVALID_ARGUMENT, "out is NULL");
    ASSERT_STATUS(lg_graph_render(NULL, in_dir("x.svg"), NULL, o), LG_ERR_INVALID_ARGUMENT, "graph is NULL");
    ASSERT_STATUS(lg_graph_render(g, NULL, NULL, o), LG_ERR_INVALID_ARGUMENT, "output path is NULL");
    ASSERT_STATUS(lg_viz_render(NULL, in_dir("x.svg"), NULL), LG_ERR_INVALID_ARGUMENT, "DOT text is NULL");
    ASSERT_STATUS(lg_viz_render_file(NULL, in_dir("x.svg"), NULL), LG_ERR_INVALID_ARGUMENT, "DOT path is NULL");
    int argc = 1;
    char *argv[] = {(char *)"prog", NULL};
    lg_viz_args args;
    ASSERT_STATUS(lg_viz_args_parse(NULL, argv, &args), LG_ERR_INVALID_ARGUMENT, "NULL");
    ASSERT_STATUS(lg_viz_args_parse(&argc, argv, NULL), LG_ERR_INVALID_ARGUMENT, "NULL");
    ASSERT_STATUS(lg_viz_args_write(g, NULL, o), LG_ERR_INVALID_ARGUMENT, "args is NULL");
    ck_assert_int_eq(entries(dir), 0);
    lg_graph_free(g);
}
END_TEST

/* ---- the examples' flags ---------------------------------------------------------------------- */

START_TEST(test_args)
{
    char *argv[] = {"prog", "100", "--dot", "a.dot", "--svg=b.svg", "7", "--dot", "c.dot", NULL};
    int argc = 8;
    lg_viz_args a;
    ck_assert_int_eq(lg_viz_args_parse(&argc, argv, &a), LG_OK);
    ck_assert_int_eq(argc, 3);
    ck_assert_str_eq(argv[0], "prog");
    ck_assert_str_eq(argv[1], "100");
    ck_assert_str_eq(argv[2], "7");
    ck_assert_ptr_null(argv[3]);
    ck_assert_str_eq(a.dot_path, "c.dot"); /* the last one wins */
    ck_assert_str_eq(a.svg_path, "b.svg");

    char *none[] = {"prog", "5", NULL};
    argc = 2;
    ck_assert_int_eq(lg_viz_args_parse(&argc, none, &a), LG_OK);
    ck_assert_int_eq(argc, 2);
    ck_assert(a.dot_path == NULL && a.svg_path == NULL);

    /* a flag without its file: an error, argv as it was */
    char *bad[][4] = {{"prog", "1", "--svg", NULL}, {"prog", "--dot", "--svg", "x.svg"}, {"prog", "--dot=", "1", NULL}};
    int bad_argc[] = {3, 4, 3};
    const char *flag[] = {"--svg needs a file", "--dot needs a file", "--dot needs a file"};
    for (int k = 0; k < 3; k++) {
        argc = bad_argc[k];
        ASSERT_STATUS(lg_viz_args_parse(&argc, bad[k], &a), LG_ERR_INVALID_ARGUMENT, flag[k]);
        ck_assert_int_eq(argc, bad_argc[k]);
        ck_assert_str_eq(bad[k][1], k == 1 ? "--dot" : k == 2 ? "--dot=" : "1");
        ck_assert(a.dot_path == NULL && a.svg_path == NULL);
    }

    /* what was asked is written; nothing when nothing was */
    lg_graph *g = scoped_graph();
    lg_viz_args want = {in_dir("m.dot"), in_dir("m.svg")};
    ck_assert_int_eq(lg_viz_args_write(g, &want, lg_dot_opts_default()), LG_OK);
    char *dot = slurp(in_dir("m.dot"), NULL), *svg = slurp(in_dir("m.svg"), NULL);
    ck_assert_int_eq(strncmp(dot, "digraph", 7), 0);
    ck_assert_ptr_nonnull(strstr(svg, "<svg"));
    free(dot), free(svg);
    lg_viz_args nothing = {NULL, NULL};
    ck_assert_int_eq(lg_viz_args_write(g, &nothing, lg_dot_opts_default()), LG_OK);
    ck_assert_int_eq(entries(dir), 2);
    /* an --svg path that cannot be written is an error naming it */
    lg_viz_args unwritable = {NULL, in_dir("m.svg/x.svg")};
    ASSERT_STATUS(lg_viz_args_write(g, &unwritable, lg_dot_opts_default()), LG_ERR_IO, "m.svg/x.svg");
    lg_graph_free(g);
}
END_TEST

/* ---- lg-render ------------------------------------------------------------------------------- */

/* Run lg-render with args (NULL-terminated); its exit status. */
static int run_tool(const char *const *args)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1), dup2(null, 2);
        const char *argv[8] = {LG_RENDER_EXE};
        for (int k = 0; args[k] && k < 6; k++) argv[k + 1] = args[k];
        execv(LG_RENDER_EXE, (char *const *)argv);
        _exit(127);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

START_TEST(test_render_tool)
{
    spit(in_dir("in.dot"), "digraph { hello -> world }");
    ck_assert_int_eq(run_tool((const char *[]){in_dir("in.dot"), in_dir("out.svg"), NULL}), 0);
    char *svg = slurp(in_dir("out.svg"), NULL);
    ck_assert_ptr_nonnull(strstr(svg, "hello"));
    free(svg);
    ck_assert_int_eq(run_tool((const char *[]){"-T", "png", in_dir("in.dot"), in_dir("out.img"), NULL}), 0);
    ck_assert_int_eq(run_tool((const char *[]){"-Tpng", in_dir("in.dot"), in_dir("out2.img"), NULL}), 0);
    char *png = slurp(in_dir("out2.img"), NULL);
    ck_assert_mem_eq(png, "\x89PNG", 4);
    free(png);
    ck_assert_int_eq(entries(dir), 4);
    /* failures: 1 with no file left, 2 for bad usage */
    ck_assert_int_eq(run_tool((const char *[]){in_dir("in.dot"), in_dir("out.bmpx"), NULL}), 1);
    ck_assert_int_eq(run_tool((const char *[]){in_dir("missing.dot"), in_dir("x.svg"), NULL}), 1);
    ck_assert_int_eq(run_tool((const char *[]){in_dir("in.dot"), NULL}), 2);
    ck_assert_int_eq(run_tool((const char *[]){"a", "b", "c", NULL}), 2);
    ck_assert_int_eq(run_tool((const char *[]){in_dir("in.dot"), in_dir("x.svg"), "-T", NULL}), 2);
    ck_assert_int_eq(run_tool((const char *[]){"--help", NULL}), 0);
    ck_assert_int_eq(entries(dir), 4);
}
END_TEST

/* ---- the layer view ------------------------------------------------------------------ */

/* x [B, 5, 3] -> lstm (LSTM(4)) -> dense (Dense(2)) -> the loss with y; the
 * gradients of the loss, and an SGD optimizer over the four parameters. */
typedef struct small_model {
    lg_graph *g;
    lg_cell *cell;
    lg_optimizer *opt;
} small_model;

static small_model small_model_new(void)
{
    small_model m = {.g = lg_graph_new()};
    lg_graph *g = m.g;
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(3, -1, 5, 3));
    lg_value y = lg_input(g, "y", LG_I32, lg_shape_of(1, -1));
    m.cell = lg_cell_new(g, "lstm", 3, lg_cell_opts_default(LG_CELL_LSTM, 4));
    ck_assert_ptr_nonnull(m.cell);
    lg_rnn_opts ro = lg_rnn_opts_default();
    lg_rnn_result r;
    ck_assert_int_eq(lg_rnn(g, "lstm", m.cell, x, ro, &r), LG_OK);
    lg_value logits = lg_dense(g, "dense", r.output, 2, lg_dense_opts_default());
    lg_value loss = lg_sparse_categorical_crossentropy(y, logits, true);
    lg_value params[5], grads[5];
    ck_assert_int_eq(lg_graph_param_count(g), 5); /* kernel, recurrent_kernel, bias; dense's kernel, bias */
    int n = 0;
    for (int i = 0; i < lg_graph_param_count(g); i++) params[n++] = lg_graph_param(g, i);
    ck_assert_int_eq(lg_grad(g, loss, params, n, grads), LG_OK);
    lg_sgd_opts so = lg_sgd_opts_default();
    ck_assert_int_eq(lg_optimizer_sgd(g, params, n, so, &m.opt), LG_OK);
    ck_assert_ptr_null(lg_graph_error(g));
    return m;
}

static void small_model_free(small_model *m)
{
    lg_optimizer_free(m->opt);
    lg_cell_free(m->cell);
    lg_graph_free(m->g);
}

static Agnode_t *by_tooltip(Agraph_t *a, const char *name)
{
    for (Agnode_t *n = agfstnode(a); n; n = agnxtnode(a, n))
        if (strcmp(attr(n, "tooltip"), name) == 0) return n;
    ck_abort_msg("no node with tooltip '%s'", name);
    return NULL;
}

/* The label of the one edge from the node with tooltip `from` to `to`. */
static const char *edge_label(Agraph_t *a, const char *from, const char *to)
{
    Agedge_t *e = agedge(a, by_tooltip(a, from), by_tooltip(a, to), NULL, 0);
    ck_assert_msg(e != NULL, "no edge %s -> %s", from, to);
    return attr(e, "label");
}

START_TEST(test_layer_view_groups)
{
    small_model m = small_model_new();
    lg_dot_opts o = lg_dot_opts_default();
    o.layers = true, o.legend = false, o.optimizer = m.opt;
    char *dot = dot_of(m.g, o);
    Agraph_t *a = parse(dot);

    /* exactly one node per scope, the inputs, the gradient and the optimizer */
    static const char *const want[] = {"x", "y", "lstm", "dense", "sparse_categorical_crossentropy", "grad",
                                       "optimizer"};
    int n_want = (int)(sizeof want / sizeof want[0]);
    ck_assert_int_eq(agnnodes(a), n_want);
    ck_assert_int_eq(node_statements(dot), n_want);
    for (int k = 0; k < n_want; k++) by_tooltip(a, want[k]);
    ck_assert_int_eq(count_clusters(a), 0);

    /* the loop's scope by its cell and T; the gradient, the optimizer */
    char text[1024];
    Agnode_t *lstm = by_tooltip(a, "lstm");
    ck_assert_str_eq(attr(lstm, "class"), "lg-scope-loop");
    ck_assert_str_eq(attr(lstm, "shape"), "box3d");
    label_text(attr(lstm, "label"), text, sizeof text);
    ck_assert_msg(strstr(text, "LSTM cell, loop over T = 5"), "%s", text);
    ck_assert_msg(strstr(text, "3 parameters"), "%s", text);
    ck_assert_str_eq(attr(by_tooltip(a, "dense"), "class"), "lg-scope");
    label_text(attr(by_tooltip(a, "dense"), "label"), text, sizeof text);
    ck_assert_msg(strstr(text, "Dense") && strstr(text, "2 parameters (10 values)"), "%s", text);
    ck_assert_str_eq(attr(by_tooltip(a, "grad"), "class"), "lg-gradient");
    label_text(attr(by_tooltip(a, "grad"), "label"), text, sizeof text);
    ck_assert_msg(strstr(text, "1 gradient loop"), "%s", text);
    ck_assert_str_eq(attr(by_tooltip(a, "x"), "class"), "lg-input");
    label_text(attr(by_tooltip(a, "optimizer"), "label"), text, sizeof text);
    ck_assert_msg(strstr(text, "updates 5 parameters"), "%s", text);

    /* edges between groups carry the shapes crossing them */
    ck_assert_str_eq(edge_label(a, "x", "lstm"), "[?, 5, 3]");
    ck_assert_str_eq(edge_label(a, "lstm", "dense"), "[?, 4]");
    ck_assert_str_eq(edge_label(a, "dense", "sparse_categorical_crossentropy"), "[?, 2]");
    ck_assert_str_eq(edge_label(a, "y", "sparse_categorical_crossentropy"), "[?]");
    ck_assert_str_eq(edge_label(a, "grad", "optimizer"), "5 gradients");
    ck_assert_str_eq(edge_label(a, "optimizer", "lstm"), "updates");
    ck_assert_str_eq(edge_label(a, "optimizer", "dense"), "updates");
    ck_assert_ptr_null(agedge(a, by_tooltip(a, "optimizer"), by_tooltip(a, "x"), NULL, 0));
    ck_assert_ptr_null(agedge(a, by_tooltip(a, "lstm"), by_tooltip(a, "x"), NULL, 0));
    agclose(a);
    free(dot);

    /* forward only: no gradient; the optimizer then has no edge in */
    o.gradients = false, o.optimizer = NULL;
    dot = dot_of(m.g, o);
    a = parse(dot);
    ck_assert_int_eq(agnnodes(a), n_want - 2);
    for (Agnode_t *v = agfstnode(a); v; v = agnxtnode(a, v)) ck_assert_str_ne(attr(v, "tooltip"), "grad");
    agclose(a);
    free(dot);
    small_model_free(&m);
}
END_TEST

START_TEST(test_layer_view_expand)
{
    small_model m = small_model_new();
    lg_dot_opts o = lg_dot_opts_default();
    o.layers = true, o.legend = false, o.expand = "lstm/";
    char *dot = dot_of(m.g, o);
    Agraph_t *a = parse(dot);
    Agraph_t *c = agsubg(a, "cluster_expanded", 0);
    ck_assert_ptr_nonnull(c);
    /* the cluster holds lstm's ops, one node each (its forward nodes are all
     * directly in lstm/), and nothing else */
    int forward_in_lstm = 0;
    for (int i = 0; i < lg_graph_node_count(m.g); i++) {
        const char *name = lg_graph_node_name(m.g, i);
        if (lg_graph_node_is_grad(m.g, i) || strncmp(name, "lstm/", 5) != 0) continue;
        ck_assert_msg(strchr(name + 5, '/') == NULL, "%s", name);
        ck_assert_ptr_nonnull(agsubnode(c, by_tooltip(a, name), 0));
        bool seen = false;
        for (int j = 0; j < i && !seen; j++) seen = strcmp(lg_graph_node_name(m.g, j), name) == 0 && !lg_graph_node_is_grad(m.g, j);
        forward_in_lstm += !seen;
    }
    ck_assert_int_eq(agnnodes(c), forward_in_lstm);
    /* ops sharing a name are one node that says how many */
    int shared = 0;
    for (Agnode_t *v = agfstnode(c); v; v = agnxtnode(c, v)) {
        int same = 0;
        for (int i = 0; i < lg_graph_node_count(m.g); i++)
            same += !lg_graph_node_is_grad(m.g, i) && strcmp(lg_graph_node_name(m.g, i), attr(v, "tooltip")) == 0;
        char want[64], got[512];
        snprintf(want, sizeof want, "(%d nodes of this name)", same);
        label_text(attr(v, "label"), got, sizeof got);
        ck_assert_msg((strstr(got, want) != NULL) == (same > 1), "%s: %s", attr(v, "tooltip"), got);
        shared += same > 1;
    }
    ck_assert_int_gt(shared, 0);
    for (Agnode_t *v = agfstnode(c); v; v = agnxtnode(c, v))
        ck_assert_msg(strncmp(attr(v, "tooltip"), "lstm/", 5) == 0, "%s in lstm", attr(v, "tooltip"));
    char text[512];
    Agnode_t *kernel = by_tooltip(a, "lstm/kernel"), *loop = NULL;
    ck_assert_str_eq(attr(kernel, "class"), "lg-param");
    for (Agnode_t *v = agfstnode(c); v; v = agnxtnode(c, v))
        if (strcmp(attr(v, "class"), "lg-loop") == 0) loop = v;
    ck_assert_ptr_nonnull(loop);
    label_text(attr(loop, "label"), text, sizeof text);
    ck_assert_msg(strstr(text, "LSTM cell, loop over T = 5"), "%s", text);
    /* the rest stays grouped: dense, the loss, the gradient are one node each */
    by_tooltip(a, "dense"), by_tooltip(a, "grad"), by_tooltip(a, "sparse_categorical_crossentropy");
    agclose(a);
    free(dot);

    /* the gradient expands too, into its ops ("grad/matmul", ...) */
    o.expand = "grad";
    dot = dot_of(m.g, o);
    a = parse(dot);
    c = agsubg(a, "cluster_expanded", 0);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(agsubnode(c, by_tooltip(a, "grad/matmul"), 0));
    for (Agnode_t *v = agfstnode(c); v; v = agnxtnode(c, v))
        ck_assert_msg(strncmp(attr(v, "tooltip"), "grad/", 5) == 0, "%s in grad", attr(v, "tooltip"));
    for (Agnode_t *v = agfstnode(a); v; v = agnxtnode(a, v)) ck_assert_str_ne(attr(v, "tooltip"), "grad");
    ck_assert_str_eq(attr(by_tooltip(a, "lstm"), "class"), "lg-scope-loop");
    agclose(a);
    free(dot);
    small_model_free(&m);
}
END_TEST

/* ---- fused loops ------------------------------------------------------------------- */

/* small_model's LSTM (fused) beside a hand-written SimpleRNN with sigmoid
 * (refused: the fused SimpleRNN has tanh or relu), named "sig", both
 * differentiated. */
static lg_graph *fused_and_not(small_model *m)
{
    *m = small_model_new();
    lg_graph *g = m->g;
    lg_value x = lg_input(g, "xs", LG_F32, lg_shape_of(3, 5, -1, 3)); /* [T, B, F] */
    lg_value h0 = lg_input(g, "h0", LG_F32, lg_shape_of(2, -1, 4));
    lg_value w = lg_param(g, "sig_w", LG_F32, lg_shape_of(2, 3, 4)), u = lg_param(g, "sig_u", LG_F32, lg_shape_of(2, 4, 4));
    lg_loop_opts lo = lg_loop_opts_default();
    lo.time_major = true;
    lg_loop *l = lg_loop_new(g, "sig", lo);
    lg_value x_t = lg_loop_seq(l, x), h = lg_loop_state(l, h0);
    lg_value h2 = lg_sigmoid(lg_add(lg_matmul(x_t, lg_loop_invariant(l, w), false, false),
                                    lg_matmul(h, lg_loop_invariant(l, u), false, false)));
    lg_loop_next(l, h, h2);
    lg_value last;
    ck_assert_int_eq(lg_loop_end(l, &last, NULL), LG_OK);
    lg_value wrt[2] = {w, u}, grads[2];
    ck_assert_int_eq(lg_grad(g, lg_sum(last, NULL, 0, false), wrt, 2, grads), LG_OK);
    ck_assert_ptr_null(lg_graph_error(g));
    return g;
}

/* The forward loop node named `name` (by prefix) and its gradient loop
 * (the one reading its stacked states). */
static void loops_named(const lg_graph *g, const char *name, int *fwd, int *bwd)
{
    *fwd = *bwd = -1;
    lg_loop_info s;
    for (int i = 0; i < lg_graph_node_count(g); i++) {
        if (!lg_graph_node_loop(g, i, &s)) continue;
        if (!s.gradient && strncmp(lg_graph_node_name(g, i), name, strlen(name)) == 0) *fwd = i;
        for (int k = 0; s.gradient && *fwd >= 0 && k < lg_graph_node_input_count(g, i); k++)
            if (lg_graph_node_input(g, i, k).node == *fwd) *bwd = i;
    }
    ck_assert_msg(*fwd >= 0 && *bwd >= 0, "loops of '%s': %d, %d", name, *fwd, *bwd);
}

static void expect_text(const char *html, const char *want)
{
    char text[2048];
    label_text(html, text, sizeof text);
    ck_assert_msg(strstr(text, want), "'%s' not in:\n%s", want, text);
}

START_TEST(test_fused_loops_marked)
{
    small_model m;
    lg_graph *g = fused_and_not(&m);
    int lf, lb, sf, sb;
    loops_named(g, "lstm", &lf, &lb);
    loops_named(g, "sig", &sf, &sb);
    char what[256];
    ck_assert(lg_loop_fused(g, lf, what, sizeof what));
    ck_assert_str_eq(what, "lstm (4 units, bias)");
    ck_assert(lg_loop_fused(g, lb, what, sizeof what)); /* with its forward loop */
    ck_assert(!lg_loop_fused(g, sf, what, sizeof what));
    ck_assert_str_eq(what, "activation is sigmoid; the fused SimpleRNN has tanh or relu");
    ck_assert(!lg_loop_fused(g, sb, NULL, 0));
    ck_assert(!lg_loop_fused(g, find_named(g, "xs"), what, sizeof what));
    ck_assert_str_eq(what, "not a loop node");
    ck_assert(!lg_loop_fused(NULL, 0, what, sizeof what));

    /* every op: the clusters' labels and borders */
    lg_dot_opts o = lg_dot_opts_default();
    char *dot = dot_of(g, o);
    Agraph_t *a = parse(dot);
    const char *yes = "fused: lstm (4 units, bias), CPU kernel",
               *no = "not fused: activation is sigmoid; the fused SimpleRNN has tanh or relu";
    for (int k = 0; k < 2; k++) {
        Agraph_t *c = cluster_of(a, k ? lb : lf), *d = cluster_of(a, k ? sb : sf);
        ck_assert_ptr_nonnull(c);
        ck_assert_ptr_nonnull(d);
        expect_text(attr(c, "label"), yes);
        ck_assert_str_eq(attr(c, "penwidth"), "3");
        expect_text(attr(d, "label"), no);
        ck_assert_str_eq(attr(d, "penwidth"), "1");
    }
    expect_text(attr(agnode(a, "legend", 0), "label"), "fused loop");
    agclose(a);
    free(dot);

    /* loops as nodes: the node says it */
    o.expand_loops = false;
    dot = dot_of(g, o);
    a = parse(dot);
    expect_text(attr(node_n(a, lf), "label"), yes);
    ck_assert_str_eq(attr(node_n(a, lf), "penwidth"), "3");
    expect_text(attr(node_n(a, sf), "label"), no);
    ck_assert_str_eq(attr(node_n(a, sf), "penwidth"), "");
    agclose(a);
    free(dot);

    /* the layer view: the scope holding the loop */
    o = lg_dot_opts_default();
    o.layers = true;
    dot = dot_of(g, o);
    a = parse(dot);
    expect_text(attr(by_tooltip(a, "lstm"), "label"), yes);
    ck_assert_str_eq(attr(by_tooltip(a, "lstm"), "penwidth"), "3");
    expect_text(attr(by_tooltip(a, "sig"), "label"), no);
    ck_assert_str_eq(attr(by_tooltip(a, "sig"), "penwidth"), "");
    expect_text(attr(agnode(a, "legend", 0), "label"), "fused loop");
    agclose(a);
    free(dot);
    small_model_free(&m);
}
END_TEST

START_TEST(test_layer_view_unknown_scope)
{
    small_model m = small_model_new();
    lg_dot_opts o = lg_dot_opts_default();
    o.layers = true;
    char *dot = (char *)"untouched";
    o.expand = "lstmm";
    ASSERT_STATUS(lg_graph_dot_string(m.g, o, &dot), LG_ERR_INVALID_ARGUMENT, "no scope 'lstmm' to expand");
    ck_assert_ptr_null(dot);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "'lstm'")); /* the scopes there are */
    o.expand = "x"; /* an input, not a scope */
    ASSERT_STATUS(lg_graph_dot_string(m.g, o, &dot), LG_ERR_INVALID_ARGUMENT, "no scope 'x' to expand");
    o.expand = "grad", o.gradients = false; /* left out */
    ASSERT_STATUS(lg_graph_dot_string(m.g, o, &dot), LG_ERR_INVALID_ARGUMENT, "no scope 'grad' to expand");
    small_model_free(&m);
}
END_TEST

START_TEST(test_layer_view_odd_names)
{
    static const char scope[] = "say \"hi\" <b>&{x}";
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "in \"put\"", LG_F32, lg_shape_of(2, -1, 3));
    lg_scope_push(g, scope);
    lg_value h = lg_tanh(lg_matmul(x, lg_param(g, "w \"q\"", LG_F32, lg_shape_of(2, 3, 2)), false, false));
    lg_scope_pop(g);
    lg_relu(h);
    ck_assert_ptr_null(lg_graph_error(g));
    lg_dot_opts o = lg_dot_opts_default();
    o.layers = true, o.legend = false;
    char *dot = dot_of(g, o);
    Agraph_t *a = parse(dot);
    ck_assert_int_eq(agnnodes(a), 3); /* the input, the scope, relu */
    char text[512];
    label_text(attr(by_tooltip(a, scope), "label"), text, sizeof text);
    ck_assert_msg(strncmp(text, scope, strlen(scope)) == 0, "%s", text);
    label_text(attr(by_tooltip(a, "in \"put\""), "label"), text, sizeof text);
    ck_assert_msg(strncmp(text, "in \"put\"", 8) == 0, "%s", text);
    ck_assert_str_eq(edge_label(a, scope, "relu"), "[?, 2]");
    agclose(a);
    free(dot);
    o.expand = scope;
    dot = dot_of(g, o);
    a = parse(dot);
    by_tooltip(a, "say \"hi\" <b>&{x}/w \"q\"");
    agclose(a);
    free(dot);
    lg_status s = lg_graph_render(g, in_dir("layers.svg"), NULL, o);
    ck_assert_msg(s == LG_OK, "%s", lg_last_error());
    char *svg = slurp(in_dir("layers.svg"), NULL);
    ck_assert_ptr_nonnull(strstr(svg, "say &quot;hi&quot; &lt;b&gt;&amp;{x}"));
    free(svg);
    lg_graph_free(g);
}
END_TEST

static Suite *viz_suite(void)
{
    Suite *s = suite_create("viz");
    TCase *dot = tcase_create("dot");
    tcase_add_test(dot, test_nested_loops_with_gradients);
    tcase_add_test(dot, test_forward_only);
    tcase_add_test(dot, test_collapsed_loops);
    tcase_add_loop_test(dot, test_scope_filter, 0, (int)(sizeof SCOPES / sizeof SCOPES[0]));
    tcase_add_test(dot, test_layer_view_groups);
    tcase_add_test(dot, test_layer_view_expand);
    tcase_add_test(dot, test_layer_view_unknown_scope);
    tcase_add_test(dot, test_fused_loops_marked);
    suite_add_tcase(s, dot);
    TCase *files = tcase_create("files");
    tcase_add_checked_fixture(files, dir_setup, dir_teardown);
    tcase_add_test(files, test_odd_names_survive);
    tcase_add_test(files, test_svg_has_every_name);
    tcase_add_test(files, test_png_and_file_rendering);
    tcase_add_test(files, test_graph_with_error);
    tcase_add_test(files, test_unwritable_paths);
    tcase_add_test(files, test_unknown_formats);
    tcase_add_test(files, test_bad_dot_text);
    tcase_add_test(files, test_null_arguments);
    tcase_add_test(files, test_args);
    tcase_add_test(files, test_render_tool);
    tcase_add_test(files, test_layer_view_odd_names);
    suite_add_tcase(s, files);
    return s;
}

int main(void) { return lg_check_run(viz_suite()); }
