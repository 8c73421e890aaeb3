/* graph.c — the node arena, names and scopes, sources, builder errors. */
#include <string.h>

#include "graph/mirror.h"
#include "ops/fused_elementwise.h"
#include "ops/op.h"
#include "ops/rnn.h"

lg_graph *lg_graph_new(void)
{
    lg_graph *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->refs = 1;
    g->scope = calloc(1, 1);
    if (!g->scope) {
        free(g);
        return NULL;
    }
    return g;
}

static void node_free(lg_node *n)
{
    free(n->in), free(n->out), free(n->name);
    free(n->attrs.ints);
    if (!n->borrowed) lg_tensor_free(n->attrs.tensor);
    lg_loop_spec_free(n->attrs.loop);
}

void lg_loop_spec_free(lg_loop_spec *s)
{
    if (!s) return;
    lg_graph_free(s->body);
    lg_graph_free(s->pre);
    lg_graph_free(s->post);
    free(s->inputs), free(s->outputs), free(s->res), free(s->res_inputs), free(s->pre_inputs), free(s->pre_outputs);
    free(s->emit), free(s->post_inputs), free(s->post_src), free(s->post_outputs);
    lg_grad_step_free(s->grad);
    free(s);
}

void lg_grad_step_free(lg_grad_step *b)
{
    if (!b) return;
    free(b->inputs), free(b->outputs), free(b->dx_of_seq), free(b->acc_of_inv);
    free(b);
}

/* malloc + memcpy of n elements of size bytes (at least one element). */
static void *dup_array(const void *src, size_t n, size_t size, bool *ok)
{
    void *d = malloc((n ? n : 1) * size);
    if (!d) *ok = false;
    else if (n) memcpy(d, src, n * size);
    return d;
}

static lg_grad_step *grad_step_dup(const lg_grad_step *b, bool *ok)
{
    if (!b) return NULL;
    lg_grad_step *d = malloc(sizeof *d);
    if (!d) {
        *ok = false;
        return NULL;
    }
    *d = *b;
    d->inputs = dup_array(b->inputs, (size_t)b->n_in, sizeof *b->inputs, ok);
    d->outputs = dup_array(b->outputs, (size_t)b->n_out, sizeof *b->outputs, ok);
    d->dx_of_seq = dup_array(b->dx_of_seq, (size_t)b->n_fwd_seq, sizeof *b->dx_of_seq, ok);
    d->acc_of_inv = dup_array(b->acc_of_inv, (size_t)b->n_fwd_inv, sizeof *b->acc_of_inv, ok);
    return d;
}

void lg_graph_truncate(lg_graph *g, int32_t n)
{
    while (g->n_nodes > n) {
        node_free(&g->nodes[--g->n_nodes]);
    }
    free(g->error);
    g->error = NULL;
}

lg_loop_spec *lg_loop_spec_dup(const lg_loop_spec *s)
{
    int n_in = s->n_seq + s->n_state + s->n_inv, n_out = s->n_state + s->n_y + s->has_stop;
    lg_loop_spec *d = malloc(sizeof *d);
    if (!d) return NULL;
    bool ok = true;
    *d = *s;
    d->inputs = dup_array(s->inputs, (size_t)(n_in + s->n_pre), sizeof *s->inputs, &ok);
    d->pre_inputs = s->pre ? dup_array(s->pre_inputs, (size_t)n_in, sizeof *s->pre_inputs, &ok) : NULL;
    d->pre_outputs = s->pre ? dup_array(s->pre_outputs, (size_t)s->n_pre, sizeof *s->pre_outputs, &ok) : NULL;
    d->pre = s->pre ? lg_graph_ref(s->pre) : NULL;
    d->emit = s->post ? dup_array(s->emit, (size_t)s->n_emit, sizeof *s->emit, &ok) : NULL;
    d->post_inputs = s->post ? dup_array(s->post_inputs, (size_t)s->n_post_in, sizeof *s->post_inputs, &ok) : NULL;
    d->post_src = s->post ? dup_array(s->post_src, (size_t)s->n_post_in, sizeof *s->post_src, &ok) : NULL;
    d->post_outputs = s->post ? dup_array(s->post_outputs, (size_t)s->n_post, sizeof *s->post_outputs, &ok) : NULL;
    d->post = s->post ? lg_graph_ref(s->post) : NULL;
    d->outputs = dup_array(s->outputs, (size_t)n_out, sizeof *s->outputs, &ok);
    d->res = dup_array(s->res, (size_t)s->n_res, sizeof *s->res, &ok);
    d->res_inputs = dup_array(s->res_inputs, (size_t)s->n_res, sizeof *s->res_inputs, &ok);
    d->grad = grad_step_dup(s->grad, &ok);
    d->body = lg_graph_ref(s->body);
    if (!ok) {
        lg_loop_spec_free(d);
        return NULL;
    }
    return d;
}

lg_graph *lg_graph_ref(lg_graph *g)
{
    g->refs++;
    return g;
}

void lg_graph_free(lg_graph *g)
{
    if (!g || --g->refs > 0) return;
    lg_graph_free(g->lender);
    lg_program_cache_free(g->cache);
    lg_param_store_free(g->param_store);
    for (int32_t i = 0; i < g->n_nodes; i++) node_free(&g->nodes[i]);
    free(g->nodes);
    free(g->params);
    for (int i = 0; i < g->n_layers; i++) free(g->layers[i].name), free(g->layers[i].type), free(g->layers[i].params);
    free(g->layers);
    free(g->scope);
    free(g->error);
    free(g);
}

const char *lg_graph_error(const lg_graph *g) { return g ? g->error : "graph is NULL"; }

lg_value lg_value_invalid(void) { return (lg_value){NULL, -1, 0}; }

lg_value lg_graph_fail(lg_graph *g, const char *fmt, ...)
{
    if (g && !g->error) {
        char buf[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        size_t len = strlen(buf) + 1;
        g->error = malloc(len);
        if (g->error) memcpy(g->error, buf, len);
    }
    return lg_value_invalid();
}

lg_status lg_graph_fail_status(lg_graph *g, lg_status s, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lg_graph_fail(g, "%s", msg);
    return lg_fail(s, "%s", msg);
}

/* ---- scopes and names --------------------------------------------------- */

void lg_scope_push(lg_graph *g, const char *name)
{
    if (!g) return;
    if (!name) {
        lg_graph_fail(g, "lg_scope_push: the scope name is NULL");
        return;
    }
    if (!name[0] || strchr(name, '/')) {
        lg_graph_fail(g, "lg_scope_push: scope name '%s' must be non-empty and contain no '/'", name);
        return;
    }
    size_t a = strlen(g->scope), b = strlen(name);
    char *s = realloc(g->scope, a + b + 2);
    if (!s) {
        lg_graph_fail(g, "lg_scope_push: out of memory");
        return;
    }
    memcpy(s + a, name, b);
    s[a + b] = '/';
    s[a + b + 1] = '\0';
    g->scope = s;
}

void lg_scope_pop(lg_graph *g)
{
    if (!g) return;
    size_t len = strlen(g->scope);
    if (len == 0) return;
    len--; /* drop the trailing '/' */
    while (len > 0 && g->scope[len - 1] != '/') len--;
    g->scope[len] = '\0';
}

static char *full_name(const lg_graph *g, const char *name)
{
    const char *prefix = g->in_grad ? "grad/" : "";
    size_t n = strlen(prefix) + strlen(g->scope) + strlen(name) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s%s", prefix, g->scope, name);
    return s;
}

/* ---- nodes --------------------------------------------------------------- */

static bool grow_nodes(lg_graph *g)
{
    if (g->n_nodes < g->cap_nodes) return true;
    int32_t cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
    lg_node *nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
    if (!nodes) return false;
    g->nodes = nodes;
    g->cap_nodes = cap;
    return true;
}

lg_graph *lg_values_graph(const lg_value *v, int n, const char *op)
{
    lg_graph *g = NULL;
    for (int i = 0; i < n; i++)
        if (v[i].graph) {
            g = v[i].graph;
            break;
        }
    if (!g) return NULL;
    for (int i = 0; i < n; i++) {
        if (v[i].graph && v[i].graph != g) {
            lg_graph_fail(g, "%s: input %d belongs to another graph", op, i);
            return NULL;
        }
        if (!v[i].graph) {
            lg_graph_fail(g, "%s: input %d is not a value (NULL graph)", op, i);
            return NULL;
        }
        if (v[i].node < 0) return NULL; /* an earlier error, already recorded */
        if (v[i].node >= g->n_nodes || v[i].output < 0 || v[i].output >= g->nodes[v[i].node].n_out) {
            lg_graph_fail(g, "%s: input %d refers to no node output (node %d, output %d)", op, i, v[i].node,
                          v[i].output);
            return NULL;
        }
    }
    return g;
}

/* split has one output per piece, a loop its states, outputs and saved
 * states, a fused elementwise op its stores and its result; every other
 * op has one. */
static int output_count(lg_op op, const lg_attrs *a)
{
    if (op == LG_OP_SPLIT) return a->n_ints;
    if (op == LG_OP_LOOP) return 2 * a->loop->n_state + a->loop->n_y + a->loop->n_res + a->loop->n_post;
    if (op == LG_OP_RNN || op == LG_OP_RNN_GRAD) return lg_rnn_output_count(a, op == LG_OP_RNN_GRAD);
    if (op == LG_OP_FUSED_ELEMENTWISE) return lg_few_output_count(a);
    return 1;
}

int32_t lg_node_build(lg_graph *g, lg_op op, const lg_value *in, int n_in, const lg_attrs *attrs, const char *name)
{
    const lg_op_def *def = lg_op_defs[op];
    if (n_in > 0) {
        lg_graph *vg = lg_values_graph(in, n_in, def->name);
        if (!vg) return -1;
        g = vg;
    }
    if (!g || g->error) return -1;
    if (def->n_in >= 0 && n_in != def->n_in) {
        lg_graph_fail(g, "%s: takes %d inputs, got %d", def->name, def->n_in, n_in);
        return -1;
    }
    lg_node node = {.op = op, .n_in = n_in};
    if (attrs) node.attrs = *attrs; /* before growing: attrs may point into the arena */
    const int64_t *ints = node.attrs.ints;
    node.attrs.ints = NULL;
    node.attrs.tensor = NULL; /* only sources own a tensor; attrs.loop moves in on success */
    if (!grow_nodes(g)) {
        lg_graph_fail(g, "%s: out of memory", def->name);
        return -1;
    }
    node.name = full_name(g, name ? name : def->name);
    node.in = n_in ? calloc((size_t)n_in, sizeof *node.in) : NULL;
    lg_port ports[n_in > 0 ? n_in : 1];
    for (int i = 0; node.in && i < n_in; i++) {
        node.in[i] = (lg_ref){in[i].node, in[i].output};
        ports[i] = *lg_value_port(in[i]);
    }
    if (node.attrs.n_ints) { /* ints themselves live outside the arena */
        node.attrs.ints = malloc((size_t)node.attrs.n_ints * sizeof(int64_t));
        if (node.attrs.ints) memcpy(node.attrs.ints, ints, (size_t)node.attrs.n_ints * sizeof(int64_t));
    }
    node.n_out = output_count(op, &node.attrs);
    node.out = calloc((size_t)(node.n_out > 0 ? node.n_out : 1), sizeof *node.out);
    if (!node.name || (n_in && !node.in) || !node.out || (node.attrs.n_ints && !node.attrs.ints)) {
        free(node.name), free(node.in), free(node.out), free(node.attrs.ints);
        lg_graph_fail(g, "%s: out of memory", def->name);
        return -1;
    }
    char err[512] = "";
    if (!lg_op_infer(&node, ports, node.out, err, sizeof err)) {
        lg_graph_fail(g, "%s '%s': %s", def->name, node.name, err);
        free(node.name), free(node.in), free(node.out), free(node.attrs.ints);
        return -1;
    }
    node.is_grad = g->in_grad;
    g->nodes[g->n_nodes] = node;
    return g->n_nodes++;
}

lg_value lg_build(lg_op op, const lg_value *in, int n_in, const lg_attrs *attrs)
{
    int32_t id = lg_node_build(NULL, op, in, n_in, attrs, NULL);
    return id < 0 ? lg_value_invalid() : lg_value_of(in[0].graph, id, 0);
}

/* ---- sources ------------------------------------------------------------- */

/* Graph dims are >= 1, or -1 for an input's open dims: a zero-size dim is a
 * user error here (an empty batch says nothing a graph can compute). */
static bool shape_ok(lg_shape s, bool allow_unknown)
{
    if (s.rank < 0 || s.rank > LG_MAX_RANK) return false;
    for (int i = 0; i < s.rank; i++)
        if (s.dims[i] < 1 && !(allow_unknown && s.dims[i] == -1)) return false;
    return true;
}

static bool dtype_ok(lg_dtype t) { return (int)t >= 0 && t < LG_DTYPE_COUNT; }

/* A source node owning its output port (and for params/constants a tensor). */
static lg_value add_source(lg_graph *g, lg_op op, const char *name, lg_dtype dtype, lg_shape shape, lg_tensor *t)
{
    int32_t id = -1;
    if (grow_nodes(g)) {
        lg_node node = {.op = op, .n_out = 1};
        node.out = malloc(sizeof *node.out);
        node.name = full_name(g, name);
        if (node.out && node.name) {
            node.out[0] = (lg_port){dtype, shape};
            node.attrs.tensor = t;
            node.is_grad = g->in_grad;
            g->nodes[g->n_nodes] = node;
            id = g->n_nodes++;
        } else {
            free(node.out), free(node.name);
        }
    }
    if (id < 0) {
        lg_tensor_free(t);
        return lg_graph_fail(g, "%s '%s': out of memory", lg_op_defs[op]->name, name);
    }
    return lg_value_of(g, id, 0);
}

int32_t lg_node_copy_source(lg_graph *g, const lg_node *src, lg_port port)
{
    if (!grow_nodes(g)) return -1;
    lg_node node = {.op = src->op, .n_out = 1, .is_grad = src->is_grad, .frozen = src->frozen, .borrowed = true};
    node.out = malloc(sizeof *node.out);
    size_t len = strlen(src->name) + 1;
    node.name = malloc(len);
    if (!node.out || !node.name) {
        free(node.out), free(node.name);
        return -1;
    }
    memcpy(node.name, src->name, len);
    node.out[0] = port;
    node.attrs.tensor = src->attrs.tensor;
    g->nodes[g->n_nodes] = node;
    return g->n_nodes++;
}

lg_value lg_input(lg_graph *g, const char *name, lg_dtype dtype, lg_shape shape)
{
    if (!g || g->error) return lg_value_invalid();
    if (!name || !name[0]) return lg_graph_fail(g, "input: a name is required");
    if (!dtype_ok(dtype)) return lg_graph_fail(g, "input '%s': invalid dtype %d", name, (int)dtype);
    if (!shape_ok(shape, true))
        return lg_graph_fail(g, "input '%s': bad shape %s (rank 0..%d, dims >= 1 or -1)", name,
                             lg_shape_cstr(shape), LG_MAX_RANK);
    if (!lg_port_fits(&(lg_port){dtype, shape}))
        return lg_graph_fail(g, "input '%s': %s %s: its dims multiply past int64 or it needs more than "
                             "LG_MAX_BYTES (%zu) bytes", name, lg_dtype_name(dtype), lg_shape_cstr(shape), LG_MAX_BYTES);
    return add_source(g, LG_OP_INPUT, name, dtype, shape, NULL);
}

lg_value lg_param(lg_graph *g, const char *name, lg_dtype dtype, lg_shape shape)
{
    if (!g || g->error) return lg_value_invalid();
    if (!name || !name[0]) return lg_graph_fail(g, "param: a name is required");
    if (g->is_body)
        return lg_graph_fail(g, "param '%s': a loop body has no parameters; create it in the outer graph and "
                                "capture it with lg_loop_invariant", name);
    if (!dtype_ok(dtype)) return lg_graph_fail(g, "param '%s': invalid dtype %d", name, (int)dtype);
    if (!shape_ok(shape, false))
        return lg_graph_fail(g, "param '%s': shape %s must be concrete (rank 0..%d, dims >= 1)", name,
                             lg_shape_cstr(shape), LG_MAX_RANK);
    char *full = full_name(g, name);
    if (!full) return lg_graph_fail(g, "param '%s': out of memory", name);
    bool dup = lg_value_ok(lg_graph_find_param(g, full));
    free(full);
    if (dup) return lg_graph_fail(g, "param '%s%s': a parameter with this name exists", g->scope, name);
    if (g->n_params == g->cap_params) {
        int cap = g->cap_params ? 2 * g->cap_params : 16;
        int32_t *p = realloc(g->params, (size_t)cap * sizeof *p);
        if (!p) return lg_graph_fail(g, "param '%s': out of memory", name);
        g->params = p;
        g->cap_params = cap;
    }
    lg_tensor *t = NULL;
    if (lg_tensor_new(dtype, shape, &t) != LG_OK) return lg_graph_fail(g, "param '%s': %s", name, lg_last_error());
    lg_value v = add_source(g, LG_OP_PARAM, name, dtype, shape, t);
    if (lg_value_ok(v)) g->params[g->n_params++] = v.node;
    return v;
}

lg_value lg_constant(lg_graph *g, const char *name, const lg_tensor *t)
{
    if (!g || g->error) return lg_value_invalid();
    if (!t) return lg_graph_fail(g, "constant '%s': tensor is NULL", name ? name : "const");
    lg_tensor *copy = NULL;
    if (lg_tensor_clone(t, &copy) != LG_OK)
        return lg_graph_fail(g, "constant '%s': %s", name ? name : "const", lg_last_error());
    return add_source(g, LG_OP_CONST, name && name[0] ? name : "const", lg_tensor_dtype(t), lg_tensor_shape(t), copy);
}

lg_value lg_scalar(lg_graph *g, lg_dtype dtype, double v)
{
    if (!g || g->error) return lg_value_invalid();
    if (!dtype_ok(dtype)) return lg_graph_fail(g, "scalar: invalid dtype %d", (int)dtype);
    lg_tensor *t = NULL;
    if (lg_tensor_new(dtype, lg_shape_of(0), &t) != LG_OK) return lg_graph_fail(g, "scalar: %s", lg_last_error());
    lg_tensor_set(t, 0, v);
    return add_source(g, LG_OP_CONST, "scalar", dtype, lg_shape_of(0), t);
}

/* ---- walks ---------------------------------------------------------------- */

bool lg_walk_init(lg_walk *w, const lg_graph *g, const lg_ref *want, int n)
{
    w->end = 0;
    for (int k = 0; k < n; k++)
        if (want[k].node + 1 > w->end) w->end = want[k].node + 1;
    w->needed = calloc((size_t)(w->end ? w->end : 1), sizeof *w->needed);
    w->base = malloc((size_t)(w->end + 1) * sizeof *w->base);
    if (!w->needed || !w->base) {
        lg_walk_free(w);
        return false;
    }
    w->base[0] = 0;
    for (int32_t i = 0; i < w->end; i++) w->base[i + 1] = w->base[i] + g->nodes[i].n_out;
    for (int k = 0; k < n; k++) w->needed[want[k].node] = true;
    for (int32_t i = w->end - 1; i >= 0; i--)
        for (int j = 0; w->needed[i] && j < g->nodes[i].n_in; j++) w->needed[g->nodes[i].in[j].node] = true;
    return true;
}

void lg_walk_free(lg_walk *w)
{
    free(w->needed), free(w->base);
    w->needed = NULL, w->base = NULL;
}

/* ---- values -------------------------------------------------------------- */

static bool value_valid(lg_value v)
{
    return v.graph && v.node >= 0 && v.node < v.graph->n_nodes && v.output >= 0 &&
           v.output < v.graph->nodes[v.node].n_out;
}

lg_dtype lg_value_dtype(lg_value v) { return value_valid(v) ? lg_value_port(v)->dtype : LG_DTYPE_COUNT; }
lg_shape lg_value_shape(lg_value v) { return value_valid(v) ? lg_value_port(v)->shape : (lg_shape){.rank = -1}; }
int lg_value_rank(lg_value v) { return lg_value_shape(v).rank; }
const char *lg_value_name(lg_value v) { return value_valid(v) ? v.graph->nodes[v.node].name : ""; }
bool lg_value_same(lg_value a, lg_value b) { return a.graph == b.graph && a.node == b.node && a.output == b.output; }

/* ---- parameters ---------------------------------------------------------- */

int lg_graph_param_count(const lg_graph *g) { return g ? g->n_params : 0; }

lg_value lg_graph_param(const lg_graph *g, int i)
{
    if (!g || i < 0 || i >= g->n_params) return lg_value_invalid();
    return lg_value_of((lg_graph *)g, g->params[i], 0);
}

static lg_tensor *param_of(lg_value p)
{
    if (!value_valid(p) || p.graph->nodes[p.node].op != LG_OP_PARAM) return NULL;
    return p.graph->nodes[p.node].attrs.tensor;
}

/* The host copy, made current and marked as the one to write (a program on
 * a device copies it over before it next reads it). */
lg_tensor *lg_param_tensor(lg_value p)
{
    lg_tensor *t = param_of(p);
    return t && lg_tensor_to_host(t) == LG_OK ? t : NULL;
}

bool lg_param_trainable(lg_value p) { return param_of(p) && !p.graph->nodes[p.node].frozen; }

lg_status lg_param_set_trainable(lg_value p, bool trainable)
{
    if (!param_of(p)) return lg_fail(LG_ERR_INVALID_ARGUMENT, "param_set_trainable: the value is not a parameter");
    p.graph->nodes[p.node].frozen = !trainable;
    return LG_OK;
}

void lg_graph_add_layer(lg_graph *g, const char *type, lg_value output, const lg_value *params, int n_params)
{
    if (!g || g->error || !type || !value_valid(output) || output.graph != g || n_params < 0 || (n_params && !params))
        return;
    for (int k = 0; k < n_params; k++)
        if (!param_of(params[k]) || params[k].graph != g) {
            lg_graph_fail(g, "layer '%s': listed value %d is not a parameter of this graph", g->scope, k);
            return;
        }
    size_t len = strlen(g->scope);
    for (int i = 0; i < g->n_layers; i++) /* a layer called again (shared weights) is one layer */
        if (strlen(g->layers[i].name) + 1 == len && strncmp(g->layers[i].name, g->scope, len - 1) == 0) return;
    if (g->n_layers == g->cap_layers) {
        int cap = g->cap_layers ? 2 * g->cap_layers : 8;
        lg_layer_rec *l = realloc(g->layers, (size_t)cap * sizeof *l);
        if (!l) {
            lg_graph_fail(g, "layer '%s': out of memory", g->scope);
            return;
        }
        g->layers = l;
        g->cap_layers = cap;
    }
    char *name = malloc(len + 1), *t = strdup(type);
    int32_t *ids = malloc((size_t)(n_params ? n_params : 1) * sizeof *ids);
    if (!name || !t || !ids) {
        free(name), free(t), free(ids);
        lg_graph_fail(g, "layer '%s': out of memory", g->scope);
        return;
    }
    memcpy(name, g->scope, len + 1);
    if (len && name[len - 1] == '/') name[len - 1] = '\0';
    for (int k = 0; k < n_params; k++) ids[k] = params[k].node;
    g->layers[g->n_layers++] = (lg_layer_rec){name, t, {output.node, output.output}, ids, n_params};
}

int lg_graph_layer_count(const lg_graph *g) { return g ? g->n_layers : 0; }
const char *lg_graph_layer_name(const lg_graph *g, int i) { return g && i >= 0 && i < g->n_layers ? g->layers[i].name : NULL; }
const char *lg_graph_layer_type(const lg_graph *g, int i) { return g && i >= 0 && i < g->n_layers ? g->layers[i].type : NULL; }

lg_value lg_graph_layer_output(const lg_graph *g, int i)
{
    if (!g || i < 0 || i >= g->n_layers) return lg_value_invalid();
    return lg_value_of((lg_graph *)g, g->layers[i].output.node, g->layers[i].output.out);
}

int lg_graph_layer_param_count(const lg_graph *g, int i)
{
    return g && i >= 0 && i < g->n_layers ? g->layers[i].n_params : 0;
}

lg_value lg_graph_layer_param(const lg_graph *g, int i, int k)
{
    if (!g || i < 0 || i >= g->n_layers || k < 0 || k >= g->layers[i].n_params) return lg_value_invalid();
    return lg_value_of((lg_graph *)g, g->layers[i].params[k], 0);
}

lg_value lg_graph_find_param(const lg_graph *g, const char *full_name_)
{
    if (!g || !full_name_) return lg_value_invalid();
    for (int i = 0; i < g->n_params; i++)
        if (strcmp(g->nodes[g->params[i]].name, full_name_) == 0) return lg_value_of((lg_graph *)g, g->params[i], 0);
    return lg_value_invalid();
}

/* ---- introspection ------------------------------------------------------- */

static const lg_node *node_or_null(const lg_graph *g, int i)
{
    return g && i >= 0 && i < g->n_nodes ? &g->nodes[i] : NULL;
}

int lg_graph_node_count(const lg_graph *g) { return g ? g->n_nodes : 0; }
const char *lg_graph_node_op(const lg_graph *g, int i)
{
    const lg_node *n = node_or_null(g, i);
    return n ? lg_op_defs[n->op]->name : "";
}
const char *lg_graph_node_name(const lg_graph *g, int i)
{
    const lg_node *n = node_or_null(g, i);
    return n ? n->name : "";
}
int lg_graph_node_output_count(const lg_graph *g, int i)
{
    const lg_node *n = node_or_null(g, i);
    return n ? n->n_out : 0;
}
int lg_graph_node_input_count(const lg_graph *g, int i)
{
    const lg_node *n = node_or_null(g, i);
    return n ? n->n_in : 0;
}
lg_value lg_graph_node_input(const lg_graph *g, int i, int k)
{
    const lg_node *n = node_or_null(g, i);
    if (!n || k < 0 || k >= n->n_in) return lg_value_invalid();
    return lg_value_of((lg_graph *)g, n->in[k].node, n->in[k].out);
}
bool lg_graph_node_is_grad(const lg_graph *g, int i)
{
    const lg_node *n = node_or_null(g, i);
    return n && n->is_grad;
}

int lg_op_count(void) { return LG_OP_COUNT; }
const char *lg_op_name(int op) { return op >= 0 && op < LG_OP_COUNT ? lg_op_defs[op]->name : ""; }

/* Sources are made by lg_input/lg_param/lg_constant, which set their port;
 * the executor binds them to feeds and tensors. */
const lg_op_def lg_op_def_input = {"input", 0, NULL, NULL};
const lg_op_def lg_op_def_param = {"param", 0, NULL, NULL};
const lg_op_def lg_op_def_const = {"const", 0, NULL, NULL};
