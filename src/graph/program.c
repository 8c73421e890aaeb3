/*
 * program.c — compile a graph for fetches and feed shapes, and run it.
 *
 * Compile: mark the nodes the fetches need, fix every shape from the feeds by
 * re-running shape inference, schedule the needed compute nodes in arena
 * (topological) order, then plan intermediate buffers: each value takes a
 * block of one arena when its node runs and returns it after its last reader,
 * so later values reuse it. Feeds, parameters and constants are read in
 * place, never copied.
 */
#include <string.h>

#include "backends/backend.h"
#include "ops/op.h"
#include "graph/cpu.h"

#define LG_ALIGN 64

typedef enum loc_kind { LOC_ARENA, LOC_FEED, LOC_TENSOR } loc_kind;

/* Where one value lives while the program runs. */
typedef struct loc {
    loc_kind kind;
    size_t offset;    /* LOC_ARENA */
    int feed;         /* LOC_FEED: index into prog->feed_nodes */
    lg_tensor *tensor; /* LOC_TENSOR: parameter or constant */
    lg_port port;     /* concrete */
} loc;

typedef struct step {
    int32_t node;
    int first_in, first_out; /* into prog->args: n_in input locs, then n_out output locs */
} step;

struct lg_program {
    lg_graph *graph;
    const lg_backend *backend;
    step *steps;
    int n_steps;
    int *args; /* loc indices */
    loc *locs;
    int n_locs;
    int32_t *feed_nodes; /* input nodes this program reads, and their shapes */
    lg_port *feed_ports;
    int n_feeds;
    int *fetch_locs;
    int n_fetches;
    unsigned char *arena;
    size_t arena_bytes;
    int max_arity;
    lg_buf *scratch; /* 2 * max_arity buffers for one step's kernel call */
    const void **feed_data;
};

/* ---- memory plan: first-fit over a sorted free list with coalescing ------ */

typedef struct block {
    size_t offset, size;
} block;

typedef struct planner {
    block *free;
    int n_free, cap_free;
    size_t top; /* arena size so far */
} planner;

/* Sizes here are ports' bytes, at most LG_MAX_BYTES, so this cannot wrap. */
static size_t align_up(size_t n) { return (n + LG_ALIGN - 1) / LG_ALIGN * LG_ALIGN; }

/* False when the arena would pass LG_MAX_BYTES (checked, so it never wraps). */
static bool plan_alloc(planner *p, size_t size, size_t *offset)
{
    size = align_up(size ? size : 1);
    int best = -1;
    for (int i = 0; i < p->n_free; i++)
        if (p->free[i].size >= size && (best < 0 || p->free[i].size < p->free[best].size)) best = i;
    if (best >= 0) {
        *offset = p->free[best].offset;
        p->free[best].offset += size;
        p->free[best].size -= size;
        if (p->free[best].size == 0) {
            memmove(&p->free[best], &p->free[best + 1], (size_t)(p->n_free - best - 1) * sizeof(block));
            p->n_free--;
        }
        return true;
    }
    /* grow the arena, absorbing a free block that ends at the top */
    bool absorb = p->n_free > 0 && p->free[p->n_free - 1].offset + p->free[p->n_free - 1].size == p->top;
    size_t at = absorb ? p->free[p->n_free - 1].offset : p->top, top;
    if (__builtin_add_overflow(at, size, &top) || top > LG_MAX_BYTES) return false;
    p->n_free -= absorb;
    *offset = at;
    p->top = top;
    return true;
}

static bool plan_release(planner *p, size_t offset, size_t size)
{
    size = align_up(size ? size : 1);
    int i = 0;
    while (i < p->n_free && p->free[i].offset < offset) i++;
    if (p->n_free == p->cap_free) {
        int cap = p->cap_free ? 2 * p->cap_free : 16;
        block *b = realloc(p->free, (size_t)cap * sizeof *b);
        if (!b) return false;
        p->free = b;
        p->cap_free = cap;
    }
    memmove(&p->free[i + 1], &p->free[i], (size_t)(p->n_free - i) * sizeof(block));
    p->free[i] = (block){offset, size};
    p->n_free++;
    if (i + 1 < p->n_free && p->free[i].offset + p->free[i].size == p->free[i + 1].offset) {
        p->free[i].size += p->free[i + 1].size;
        memmove(&p->free[i + 1], &p->free[i + 2], (size_t)(p->n_free - i - 2) * sizeof(block));
        p->n_free--;
    }
    if (i > 0 && p->free[i - 1].offset + p->free[i - 1].size == p->free[i].offset) {
        p->free[i - 1].size += p->free[i].size;
        memmove(&p->free[i], &p->free[i + 1], (size_t)(p->n_free - i - 1) * sizeof(block));
        p->n_free--;
    }
    return true;
}

/* ---- compile ------------------------------------------------------------- */

void lg_program_free(lg_program *p)
{
    if (!p) return;
    free(p->steps), free(p->args), free(p->locs), free(p->feed_nodes), free(p->feed_ports);
    free(p->fetch_locs), free(p->arena), free(p->scratch), free((void *)p->feed_data);
    free(p);
}

/* Every port of a program kept the size rule when it was inferred
 * (lg_op_infer) or fed (check_feed). */
static size_t port_bytes(const lg_port *pt)
{
    size_t bytes = 0;
    LG_ASSERT(lg_shape_bytes(pt->shape, pt->dtype, &bytes));
    return bytes;
}

/* Check that a feed tensor fits an input's declared dtype and shape. */
static lg_status check_feed(const lg_graph *g, int32_t node, const lg_tensor *t)
{
    const lg_node *n = &g->nodes[node];
    const lg_port *decl = &n->out[0];
    lg_shape s = lg_tensor_shape(t);
    if (lg_tensor_dtype(t) != decl->dtype)
        return lg_fail(LG_ERR_FEED, "feed for input '%s': dtype %s, the input is %s", n->name,
                       lg_dtype_name(lg_tensor_dtype(t)), lg_dtype_name(decl->dtype));
    bool fits = s.rank == decl->shape.rank;
    for (int i = 0; fits && i < s.rank; i++)
        fits = s.dims[i] >= 1 && (decl->shape.dims[i] == -1 || decl->shape.dims[i] == s.dims[i]);
    if (!fits)
        return lg_fail(LG_ERR_FEED, "feed for input '%s': shape %s does not fit the input's %s%s", n->name,
                       lg_shape_cstr(s), lg_shape_cstr(decl->shape),
                       lg_shape_numel(s) == 0 ? " (zero-size dim)" : "");
    if (!lg_shape_bytes(s, decl->dtype, NULL)) /* a view's shape, not checked when made */
        return lg_fail(LG_ERR_FEED, "feed for input '%s': %s %s: its dims multiply past int64 or it needs more "
                       "than LG_MAX_BYTES (%zu) bytes", n->name, lg_dtype_name(decl->dtype), lg_shape_cstr(s),
                       LG_MAX_BYTES);
    return LG_OK;
}

static lg_status check_feeds(const lg_graph *g, const lg_feed *feeds, int n_feeds)
{
    if (n_feeds < 0 || (n_feeds > 0 && !feeds)) return lg_fail(LG_ERR_INVALID_ARGUMENT, "feeds: NULL or negative count");
    for (int i = 0; i < n_feeds; i++) {
        lg_value v = feeds[i].input;
        if (v.graph != g || v.node < 0 || v.node >= g->n_nodes)
            return lg_fail(LG_ERR_FEED, "feed %d: not a value of this graph", i);
        if (g->nodes[v.node].op != LG_OP_INPUT)
            return lg_fail(LG_ERR_FEED, "feed %d: '%s' is a %s, not an input", i, g->nodes[v.node].name,
                           lg_op_defs[g->nodes[v.node].op]->name);
        if (!feeds[i].tensor) return lg_fail(LG_ERR_FEED, "feed for input '%s': tensor is NULL", g->nodes[v.node].name);
        for (int j = 0; j < i; j++)
            if (feeds[j].input.node == v.node)
                return lg_fail(LG_ERR_FEED, "input '%s' is fed twice", g->nodes[v.node].name);
        lg_status s = check_feed(g, v.node, feeds[i].tensor);
        if (s) return s;
    }
    return LG_OK;
}

static lg_status check_fetches(const lg_graph *g, const lg_value *fetches, int n_fetches)
{
    if (n_fetches < 1 || !fetches) return lg_fail(LG_ERR_INVALID_ARGUMENT, "fetches: at least one value is needed");
    for (int i = 0; i < n_fetches; i++) {
        lg_value v = fetches[i];
        if (!v.graph || v.node < 0) return lg_fail(LG_ERR_INVALID_ARGUMENT, "fetch %d: an invalid value", i);
        if (v.graph != g) return lg_fail(LG_ERR_INVALID_ARGUMENT, "fetch %d: a value of another graph", i);
        if (v.node >= g->n_nodes || v.output < 0 || v.output >= g->nodes[v.node].n_out)
            return lg_fail(LG_ERR_INVALID_ARGUMENT, "fetch %d: no such node output", i);
    }
    return LG_OK;
}

/* " (feeds: 'x' [4, 1], ...)" into buf, for errors in shapes the feeds fixed. */
static const char *feeds_str(const lg_feed *feeds, int n_feeds, char *buf, size_t size)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < n_feeds && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, "%s'%s' %s", i ? ", " : " (feeds: ",
                              feeds[i].input.graph->nodes[feeds[i].input.node].name,
                              lg_shape_cstr(lg_tensor_shape(feeds[i].tensor)));
    if (k > 0 && k < size) snprintf(buf + k, size - k, ")");
    return buf;
}

typedef struct compile_state {
    lg_program *p;
    int *loc_of_node; /* first loc index of each node's outputs, -1 if not needed */
    int *last_use;    /* per loc: last step reading it (n_steps for fetched values) */
} compile_state;

static lg_status compile_locs(compile_state *cs, const bool *needed, const lg_feed *feeds, int n_feeds)
{
    lg_program *p = cs->p;
    lg_graph *g = p->graph;
    int n_locs = 0;
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (needed[i]) n_locs += g->nodes[i].n_out;
    p->locs = calloc((size_t)(n_locs ? n_locs : 1), sizeof *p->locs);
    if (!p->locs) return lg_fail(LG_ERR_OUT_OF_MEMORY, "compile: out of memory");
    lg_port in_ports[16], *ports = in_ports;
    int k = 0;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        if (!needed[i]) continue;
        const lg_node *n = &g->nodes[i];
        cs->loc_of_node[i] = k;
        if (n->op == LG_OP_INPUT) {
            int f = 0;
            while (f < n_feeds && feeds[f].input.node != i) f++;
            if (f == n_feeds)
                return lg_fail(LG_ERR_FEED, "missing feed for input '%s' (%s %s)", n->name, lg_dtype_name(n->out[0].dtype),
                               lg_shape_cstr(n->out[0].shape));
            p->feed_nodes[p->n_feeds] = i;
            p->feed_ports[p->n_feeds] = (lg_port){n->out[0].dtype, lg_tensor_shape(feeds[f].tensor)};
            p->locs[k] = (loc){.kind = LOC_FEED, .feed = p->n_feeds, .port = p->feed_ports[p->n_feeds]};
            p->n_feeds++;
        } else if (n->op == LG_OP_PARAM || n->op == LG_OP_CONST) {
            p->locs[k] = (loc){.kind = LOC_TENSOR, .tensor = n->attrs.tensor, .port = n->out[0]};
        } else {
            if (n->n_in > (int)LG_ARRAY_LEN(in_ports)) {
                ports = malloc((size_t)n->n_in * sizeof *ports);
                if (!ports) return lg_fail(LG_ERR_OUT_OF_MEMORY, "compile: out of memory");
            }
            for (int j = 0; j < n->n_in; j++) ports[j] = p->locs[cs->loc_of_node[n->in[j].node] + n->in[j].out].port;
            lg_port out_ports[n->n_out];
            char err[512] = "";
            bool ok = lg_op_infer(n, ports, out_ports, err, sizeof err);
            if (ports != in_ports) free(ports), ports = in_ports;
            if (!ok) {
                char fed[512];
                return lg_fail(LG_ERR_SHAPE, "%s '%s': %s%s", lg_op_defs[n->op]->name, n->name, err,
                               feeds_str(feeds, n_feeds, fed, sizeof fed));
            }
            for (int o = 0; o < n->n_out; o++) p->locs[k + o] = (loc){.kind = LOC_ARENA, .port = out_ports[o]};
            if (n->n_in > p->max_arity) p->max_arity = n->n_in;
            if (n->n_out > p->max_arity) p->max_arity = n->n_out;
        }
        k += n->n_out;
    }
    p->n_locs = n_locs;
    return LG_OK;
}

static lg_status compile_schedule(compile_state *cs, const bool *needed, const lg_value *fetches, int n_fetches)
{
    lg_program *p = cs->p;
    lg_graph *g = p->graph;
    int n_args = 0;
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (needed[i] && g->nodes[i].op >= LG_OP_MATMUL) {
            p->n_steps++;
            n_args += g->nodes[i].n_in + g->nodes[i].n_out;
        }
    p->steps = calloc((size_t)(p->n_steps ? p->n_steps : 1), sizeof *p->steps);
    p->args = calloc((size_t)(n_args ? n_args : 1), sizeof *p->args);
    cs->last_use = calloc((size_t)(p->n_locs ? p->n_locs : 1), sizeof *cs->last_use);
    p->fetch_locs = calloc((size_t)n_fetches, sizeof *p->fetch_locs);
    if (!p->steps || !p->args || !cs->last_use || !p->fetch_locs) return lg_fail(LG_ERR_OUT_OF_MEMORY, "compile: out of memory");
    int s = 0, a = 0;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const lg_node *n = &g->nodes[i];
        if (!needed[i] || n->op < LG_OP_MATMUL) continue;
        p->steps[s] = (step){.node = i, .first_in = a, .first_out = a + n->n_in};
        for (int j = 0; j < n->n_in; j++) {
            int l = cs->loc_of_node[n->in[j].node] + n->in[j].out;
            p->args[a++] = l;
            cs->last_use[l] = s;
        }
        for (int o = 0; o < n->n_out; o++) {
            int l = cs->loc_of_node[i] + o;
            p->args[a++] = l;
            cs->last_use[l] = s; /* an output nobody reads is freed right away */
        }
        s++;
    }
    p->n_fetches = n_fetches;
    for (int i = 0; i < n_fetches; i++) {
        int l = cs->loc_of_node[fetches[i].node] + fetches[i].output;
        p->fetch_locs[i] = l;
        cs->last_use[l] = p->n_steps;
    }
    return LG_OK;
}

static lg_status compile_memory(compile_state *cs)
{
    lg_program *p = cs->p;
    planner pl = {0};
    lg_status st = LG_OK;
    for (int s = 0; s < p->n_steps && st == LG_OK; s++) {
        const lg_node *n = &p->graph->nodes[p->steps[s].node];
        for (int o = 0; o < n->n_out && st == LG_OK; o++) {
            loc *l = &p->locs[p->args[p->steps[s].first_out + o]];
            if (!plan_alloc(&pl, port_bytes(&l->port), &l->offset))
                st = lg_fail(LG_ERR_OUT_OF_MEMORY, "compile: %s '%s': the buffers live at once would pass "
                             "LG_MAX_BYTES (%zu bytes)", lg_op_defs[n->op]->name, n->name, LG_MAX_BYTES);
        }
        if (st) break;
        /* release after the step's outputs are placed, so outputs never
         * alias inputs */
        for (int j = 0; j < n->n_in + n->n_out; j++) {
            int li = p->args[p->steps[s].first_in + j];
            loc *l = &p->locs[li];
            bool dup = false;
            for (int q = 0; q < j; q++) dup = dup || p->args[p->steps[s].first_in + q] == li;
            if (l->kind == LOC_ARENA && cs->last_use[li] == s && !dup && !plan_release(&pl, l->offset, port_bytes(&l->port)))
                st = lg_fail(LG_ERR_OUT_OF_MEMORY, "compile: out of memory");
        }
    }
    free(pl.free);
    if (st) return st;
    p->arena_bytes = pl.top;
    if (pl.top) {
        p->arena = aligned_alloc(LG_ALIGN, pl.top);
        if (!p->arena) return lg_fail(LG_ERR_OUT_OF_MEMORY, "compile: cannot allocate %zu bytes of buffers", pl.top);
    }
    p->scratch = calloc((size_t)(2 * (p->max_arity ? p->max_arity : 1)), sizeof *p->scratch);
    p->feed_data = calloc((size_t)(p->n_feeds ? p->n_feeds : 1), sizeof *p->feed_data);
    if (!p->scratch || !p->feed_data) return lg_fail(LG_ERR_OUT_OF_MEMORY, "compile: out of memory");
    return LG_OK;
}

lg_status lg_program_compile(lg_graph *g, const lg_feed *feeds, int n_feeds, const lg_value *fetches, int n_fetches,
                             lg_program **out)
{
    if (!out) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_program_compile: out is NULL");
    *out = NULL;
    if (!g) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_program_compile: graph is NULL");
    if (g->error) return lg_fail(LG_ERR_GRAPH, "the graph has a builder error: %s", g->error);
    lg_status st = check_fetches(g, fetches, n_fetches);
    if (!st) st = check_feeds(g, feeds, n_feeds);
    if (st) return st;

    lg_program *p = calloc(1, sizeof *p);
    bool *needed = calloc((size_t)g->n_nodes, sizeof *needed);
    compile_state cs = {.p = p, .loc_of_node = malloc((size_t)g->n_nodes * sizeof(int))};
    if (p) {
        p->feed_nodes = malloc((size_t)(n_feeds ? n_feeds : 1) * sizeof *p->feed_nodes);
        p->feed_ports = malloc((size_t)(n_feeds ? n_feeds : 1) * sizeof *p->feed_ports);
    }
    if (!p || !needed || !cs.loc_of_node || !p->feed_nodes || !p->feed_ports) {
        st = lg_fail(LG_ERR_OUT_OF_MEMORY, "compile: out of memory");
        goto done;
    }
    p->graph = g;
    p->backend = lg_backend_cpu();
    for (int i = 0; i < n_fetches; i++) needed[fetches[i].node] = true;
    for (int32_t i = g->n_nodes - 1; i >= 0; i--) {
        cs.loc_of_node[i] = -1;
        if (!needed[i]) continue;
        for (int j = 0; j < g->nodes[i].n_in; j++) needed[g->nodes[i].in[j].node] = true;
    }
    st = compile_locs(&cs, needed, feeds, n_feeds);
    if (!st) st = compile_schedule(&cs, needed, fetches, n_fetches);
    if (!st) st = compile_memory(&cs);
    for (int s = 0; !st && s < p->n_steps; s++) {
        const lg_node *n = &g->nodes[p->steps[s].node];
        if (!p->backend->kernels[n->op])
            st = lg_fail(LG_ERR_UNSUPPORTED, "%s '%s': no kernel on the %s backend", lg_op_defs[n->op]->name, n->name,
                         p->backend->name);
    }
done:
    free(needed);
    free(cs.loc_of_node);
    free(cs.last_use);
    if (st) {
        lg_program_free(p);
        return st;
    }
    *out = p;
    return LG_OK;
}

int lg_program_kernel_count(const lg_program *p) { return p ? p->n_steps : 0; }
size_t lg_program_peak_bytes(const lg_program *p) { return p ? p->arena_bytes : 0; }

/* ---- report -------------------------------------------------------------- */

static const lg_node *loop_step(const lg_program *p, int i, const step **st)
{
    for (int s = 0; s < p->n_steps; s++) {
        const lg_node *n = &p->graph->nodes[p->steps[s].node];
        if (n->op == LG_OP_LOOP && i-- == 0) {
            *st = &p->steps[s];
            return n;
        }
    }
    return NULL;
}

int lg_program_loop_count(const lg_program *p)
{
    int n = 0;
    for (int s = 0; p && s < p->n_steps; s++) n += p->graph->nodes[p->steps[s].node].op == LG_OP_LOOP;
    return n;
}

/* Kernels in one step of a loop's body, compiled (and cached on the body,
 * where the loop kernel finds it) for the step shapes of the node's inputs. */
static lg_status body_kernels(const lg_program *p, const lg_node *n, const step *st, int *count)
{
    const lg_loop_spec *s = n->attrs.loop;
    int n_in = s->n_seq + s->n_state + s->n_inv, n_fetch = s->n_state + s->n_y + s->has_stop + s->n_res;
    lg_feed feeds[n_in > 0 ? n_in : 1];
    lg_value fetches[n_fetch > 0 ? n_fetch : 1];
    lg_status rc = LG_OK;
    int made = 0;
    for (; made < n_in && !rc; made++) {
        lg_port pt = p->locs[p->args[st->first_in + made]].port;
        if (made < s->n_seq) { /* the step of a [T, ...] sequence */
            for (int d = 0; d + 1 < pt.shape.rank; d++) pt.shape.dims[d] = pt.shape.dims[d + 1];
            pt.shape.rank--;
        }
        lg_tensor *t = lg_tensor_view(pt.dtype, pt.shape, NULL);
        if (!t) rc = lg_fail(LG_ERR_OUT_OF_MEMORY, "report: out of memory");
        feeds[made] = (lg_feed){lg_value_of(s->body, s->inputs[made], 0), t};
    }
    int first_res = s->n_state + s->n_y + s->has_stop;
    for (int k = 0; k < n_fetch; k++) {
        lg_ref ref = k < first_res ? s->outputs[k] : s->res[k - first_res];
        fetches[k] = lg_value_of(s->body, ref.node, ref.out);
    }
    lg_program *bp = NULL;
    if (!rc) rc = lg_graph_program(s->body, feeds, n_in, fetches, n_fetch, &bp);
    if (!rc) *count = lg_program_kernel_count(bp);
    for (int i = 0; i < made; i++) lg_tensor_free((lg_tensor *)feeds[i].tensor);
    return rc;
}

lg_status lg_program_loop_report(const lg_program *p, int i, lg_loop_report *out)
{
    const step *st = NULL;
    const lg_node *n = p && out ? loop_step(p, i, &st) : NULL;
    if (!n) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_program_loop_report: %s", !p ? "program is NULL" : !out ? "out is NULL" : "no such loop");
    const lg_loop_spec *s = n->attrs.loop;
    *out = (lg_loop_report){.name = n->name, .gradient = s->gradient, .has_stop = s->has_stop,
                            .memory = (lg_loop_memory)s->memory, .n_residuals = s->n_res, .steps = s->steps};
    if (s->n_seq) out->steps = p->locs[p->args[st->first_in]].port.shape.dims[0];
    for (int k = 0; k < s->n_state; k++) out->state_bytes += port_bytes(&p->locs[p->args[st->first_out + s->n_state + s->n_y + k]].port);
    for (int r = 0; r < s->n_res; r++)
        out->residual_bytes += port_bytes(&p->locs[p->args[st->first_out + 2 * s->n_state + s->n_y + r]].port);
    out->residual_bytes += out->state_bytes;
    return body_kernels(p, n, st, &out->body_kernels);
}

/* Appends to a growing string; ok turns false when memory runs out. */
typedef struct text {
    char *s;
    size_t len, cap;
    bool ok;
} text;

static void text_add(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_add(text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (!t->ok || n < 0) return;
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t cap = (t->len + (size_t)n + 1) * 2;
        char *s = realloc(t->s, cap);
        if (!s) {
            t->ok = false;
            return;
        }
        t->s = s, t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

static double mib(size_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

char *lg_program_report(const lg_program *p)
{
    if (!p) return NULL;
    text t = {.ok = true};
    text_add(&t, "program: %d kernels, %.2f MiB planned\n", p->n_steps, mib(p->arena_bytes));
    text_add(&t, "%s\n", lg_cpu_gemm_summary());
    for (int i = 0; i < lg_program_loop_count(p); i++) {
        lg_loop_report r;
        if (lg_program_loop_report(p, i, &r) != LG_OK) {
            text_add(&t, "loop %d: %s\n", i, lg_last_error());
            continue;
        }
        text_add(&t, "loop '%s': %s%lld steps, %d kernels per step, ", r.name, r.has_stop ? "at most " : "",
                 (long long)r.steps, r.body_kernels);
        if (r.gradient)
            text_add(&t, "gradient loop\n");
        else if (r.memory == LG_LOOP_RECOMPUTE)
            text_add(&t, "recompute: %.2f MiB saved (states only)\n", mib(r.residual_bytes));
        else
            text_add(&t, "save residuals: %d values, %.2f MiB saved (states %.2f MiB)\n", r.n_residuals,
                     mib(r.residual_bytes), mib(r.state_bytes));
    }
    if (!t.ok) free(t.s);
    return t.ok ? t.s : NULL;
}

/* ---- run ----------------------------------------------------------------- */

static void *loc_data(const lg_program *p, const loc *l)
{
    switch (l->kind) {
    case LOC_ARENA: return p->arena + l->offset;
    case LOC_FEED: return (void *)p->feed_data[l->feed];
    case LOC_TENSOR: return lg_tensor_data(l->tensor);
    }
    return NULL;
}

static lg_status bind_feeds(lg_program *p, const lg_feed *feeds, int n_feeds)
{
    lg_status st = check_feeds(p->graph, feeds, n_feeds);
    if (st) return st;
    for (int f = 0; f < p->n_feeds; f++) {
        int i = 0;
        while (i < n_feeds && feeds[i].input.node != p->feed_nodes[f]) i++;
        const lg_node *n = &p->graph->nodes[p->feed_nodes[f]];
        if (i == n_feeds) return lg_fail(LG_ERR_FEED, "missing feed for input '%s'", n->name);
        if (!lg_shape_equal(lg_tensor_shape(feeds[i].tensor), p->feed_ports[f].shape))
            return lg_fail(LG_ERR_FEED, "feed for input '%s': shape %s, the program was compiled for %s", n->name,
                           lg_shape_cstr(lg_tensor_shape(feeds[i].tensor)), lg_shape_cstr(p->feed_ports[f].shape));
        p->feed_data[f] = lg_tensor_cdata(feeds[i].tensor);
    }
    return LG_OK;
}

static lg_status check_outs(const lg_program *p, lg_tensor **out)
{
    if (!out) return lg_fail(LG_ERR_INVALID_ARGUMENT, "run: out is NULL");
    for (int i = 0; i < p->n_fetches; i++) {
        const lg_port *pt = &p->locs[p->fetch_locs[i]].port;
        if (out[i] && (lg_tensor_dtype(out[i]) != pt->dtype || !lg_shape_equal(lg_tensor_shape(out[i]), pt->shape)))
            return lg_fail(LG_ERR_INVALID_ARGUMENT, "out[%d]: %s %s given for a fetch of %s %s", i,
                           lg_dtype_name(lg_tensor_dtype(out[i])), lg_shape_cstr(lg_tensor_shape(out[i])),
                           lg_dtype_name(pt->dtype), lg_shape_cstr(pt->shape));
    }
    return LG_OK;
}

/* Tensors for the NULL entries of out, marked in mine[]. */
static lg_status alloc_outs(const lg_program *p, lg_tensor **out, bool *mine)
{
    for (int i = 0; i < p->n_fetches; i++) {
        mine[i] = !out[i];
        if (!mine[i]) continue;
        const lg_port *pt = &p->locs[p->fetch_locs[i]].port;
        lg_status st = lg_tensor_new(pt->dtype, pt->shape, &out[i]);
        if (st) return st;
    }
    return LG_OK;
}

/* Undo alloc_outs when the run fails, so the caller gets back what it gave. */
static void free_outs(const lg_program *p, lg_tensor **out, const bool *mine)
{
    for (int i = 0; i < p->n_fetches; i++)
        if (mine[i]) lg_tensor_free(out[i]), out[i] = NULL;
}

lg_status lg_program_run(lg_program *p, const lg_feed *feeds, int n_feeds, lg_tensor **out)
{
    if (!p) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_program_run: program is NULL");
    lg_status st = bind_feeds(p, feeds, n_feeds);
    if (!st) st = check_outs(p, out);
    if (st) return st;
    bool mine[p->n_fetches];
    st = alloc_outs(p, out, mine);
    if (st) {
        free_outs(p, out, mine);
        return st;
    }
    for (int s = 0; s < p->n_steps; s++) {
        const step *sp = &p->steps[s];
        const lg_node *n = &p->graph->nodes[sp->node];
        lg_buf *in = p->scratch, *o = p->scratch + p->max_arity;
        for (int j = 0; j < n->n_in; j++) {
            const loc *l = &p->locs[p->args[sp->first_in + j]];
            in[j] = (lg_buf){loc_data(p, l), l->port.dtype, l->port.shape};
        }
        for (int j = 0; j < n->n_out; j++) {
            const loc *l = &p->locs[p->args[sp->first_out + j]];
            o[j] = (lg_buf){loc_data(p, l), l->port.dtype, l->port.shape};
        }
        st = p->backend->kernels[n->op](n, in, o);
        if (st) {
            free_outs(p, out, mine);
            return st;
        }
    }
    for (int i = 0; i < p->n_fetches; i++) {
        const loc *l = &p->locs[p->fetch_locs[i]];
        memcpy(lg_tensor_data(out[i]), loc_data(p, l), port_bytes(&l->port));
    }
    return LG_OK;
}

/* ---- shape inference over a body ------------------------------------------ */

lg_status lg_body_ports(lg_graph *body, const int32_t *inputs, const lg_port *in, int n_in, const lg_ref *want, int n,
                        lg_port *out)
{
    lg_walk w;
    if (!lg_walk_init(&w, body, want, n)) return lg_fail(LG_ERR_OUT_OF_MEMORY, "loop body: out of memory");
    lg_port *ports = malloc((size_t)(w.base[w.end] ? w.base[w.end] : 1) * sizeof *ports);
    lg_status st = ports ? LG_OK : lg_fail(LG_ERR_OUT_OF_MEMORY, "loop body: out of memory");
    for (int32_t i = 0; !st && i < w.end; i++) {
        const lg_node *nd = &body->nodes[i];
        if (!w.needed[i]) continue;
        if (nd->op < LG_OP_MATMUL) { /* a source: its own port unless given */
            ports[w.base[i]] = nd->out[0];
            for (int k = 0; k < n_in; k++)
                if (inputs[k] == i) ports[w.base[i]] = in[k];
            continue;
        }
        lg_port *ip = malloc((size_t)(nd->n_in ? nd->n_in : 1) * sizeof *ip);
        if (!ip) {
            st = lg_fail(LG_ERR_OUT_OF_MEMORY, "loop body: out of memory");
            break;
        }
        for (int j = 0; j < nd->n_in; j++) ip[j] = ports[w.base[nd->in[j].node] + nd->in[j].out];
        char err[512] = "";
        if (!lg_op_infer(nd, ip, &ports[w.base[i]], err, sizeof err))
            st = lg_fail(LG_ERR_SHAPE, "%s '%s' (in a loop body): %s", lg_op_defs[nd->op]->name, nd->name, err);
        free(ip);
    }
    for (int k = 0; !st && k < n; k++) out[k] = ports[w.base[want[k].node] + want[k].out];
    free(ports);
    lg_walk_free(&w);
    return st;
}
