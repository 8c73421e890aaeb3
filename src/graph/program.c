/*
 * program.c — compile a graph for fetches and feed shapes, and run it: the
 * executor.
 *
 * Compile: lower the nodes the fetches need into a compile-time graph with
 * concrete shapes and run the passes over it (src/graph/passes), then
 * schedule its compute nodes in arena (topological) order and plan
 * intermediate buffers in one arena: a value's buffer is live from the step
 * that makes it to its last reader, and buffers whose lifetimes do not
 * overlap share memory.
 * Feeds, parameters and constants are read in place, never copied, and a
 * reshape of one is a view of it. A reshape of a value nothing reads
 * afterwards is free too: it takes over the value's buffer; an elementwise op writes over a same-shaped input that
 * dies there. Each loop
 * node's body is compiled the same way, for its step shapes, into a program
 * the loop step owns.
 *
 * Run: kernels in schedule order. A loop is run here, not by a backend: per
 * step the body's schedule runs on views of the loop's buffers (sequence
 * step t, the current states, the invariants), with no validation and no
 * copies. The body's fetched values are written by the kernels that make
 * them straight into their places: the next state's buffer (states
 * ping-pong, or go straight into the saved-state stack that the gradient
 * loop reads), and step t of each stacked output and residual. The driver
 * itself touches data only to copy the initial states in and the final ones
 * out and to read a stop condition: with a backend that owns device memory,
 * those few copies are the ones that go through the backend.
 *
 * Memory: every buffer a program owns comes from its backend (backend.h)
 * and every copy of program data goes through it, so on a device the
 * executor only computes addresses. Parameters and optimizer blocks are
 * mirrors (mirror.h): a run places what it reads and writes on its backend
 * first, which copies only what the other side changed. Feeds are copied
 * in, fetches out (an out tensor that lives in a mirror, an optimizer's
 * gradient, is written in place on the device instead).
 *
 * Capture: on a backend that can record its work as a graph (CUDA Graphs,
 * backend.h), the second run of a program records the top level's schedule,
 * its loops' steps included, between the feed copies and the fetch copies,
 * and later runs launch that graph instead (run_top), which saves the host
 * side of every launch. Everything the recorded kernels read and write is
 * at addresses fixed at compile except the feeds that live in mirrors and
 * the parameters; a run where those moved runs kernel by kernel.
 */
#include <string.h>

#include "backends/backend.h"
#include "graph/mirror.h"
#include "graph/passes/passes.h"
#include "ops/fused_elementwise.h"
#include "ops/op.h"
#include "ops/rnn.h"

#define LG_ALIGN 64

typedef enum loc_kind { LOC_ARENA, LOC_FEED, LOC_TENSOR, LOC_OUT } loc_kind;

/* Where one value lives while the program runs. */
typedef struct loc {
    loc_kind kind;
    size_t offset;     /* LOC_ARENA */
    int feed;          /* LOC_FEED: index into prog->feed_data; LOC_OUT: into prog->out_data */
    lg_tensor *tensor; /* LOC_TENSOR: parameter or constant */
    lg_port port;      /* concrete */
    void *data;        /* LOC_TENSOR: where it is for this run (placed by prepare) */
    void *dev_const;   /* LOC_TENSOR, a constant on a device: its copy there (owned) */
} loc;

/* The top level's schedule as one captured graph (backend.h's capture
 * hooks), where the backend has them: see run_top. */
typedef struct capture {
    bool on;            /* the backend captures, and nothing rules it out (yet) */
    bool warmed;        /* the first run, plain, is done */
    void *graph;        /* the backend's (owned); NULL until captured */
    size_t n_nodes;
    const void **key;   /* the addresses the graph has built in (bound_addresses), and this run's */
    const void **now;
    int n_key;
    bool tf32;          /* lg_tf32_allowed() when captured: the matmuls' math is built in too */
    int replays, plain; /* runs since: the graph launched, or the schedule run (other addresses) */
    char why[320];      /* why not, when !on on a backend that captures */
} capture;

typedef struct step {
    int32_t node;
    int first_in, first_out; /* into prog->args: n_in input locs, then n_out output locs */
    bool alias;              /* a reshape whose output took over its dying input's buffer: nothing to run */
    lg_program *body;        /* a loop's body, compiled for its step shapes */
    lg_program *pre;         /* a loop's hoisted work per chunk of steps (lg_loop_spec.pre) */
    lg_program *post;        /* its accumulators' sums per chunk (lg_loop_spec.post) */
    unsigned char *states;   /* a loop's two buffers per state (ping-pong), its stop flag, and
                                pre's [chunk, ...] outputs */
    size_t state_bytes;
} step;

struct lg_program {
    lg_graph *user;  /* the graph compiled (NULL for a loop body) */
    lg_graph *graph; /* owned: the compile-time graph the steps run */
    const lg_backend *backend;
    step *steps;
    int n_steps;
    int *args; /* loc indices */
    loc *locs;
    int n_locs;
    int32_t *feed_user; /* per feed: the user's input node (top level) */
    lg_port *feed_ports;
    int n_feeds;
    int *feed_of_input; /* per compiled input, in the caller's order: its feed, or -1 when unread */
    int n_inputs;
    int *fetch_locs;
    int n_fetches;
    void **out_data;  /* per fetch, where a run writes it */
    bool *out_bound;  /* the fetch's loc is LOC_OUT: its kernel writes it there */
    unsigned char *arena;
    size_t arena_bytes;
    int max_arity;
    lg_buf *scratch; /* 2 * max_arity buffers for one step's kernel call */
    const void **feed_data;
    void **feed_dev;  /* top level on a device: per feed, the buffer it is copied into */
    bool *out_dev;    /* per fetch: out_data is in the backend's memory (else host: copied out) */
    char *notes; /* what the passes did */
    capture cap; /* top level only */
};

/* ---- memory plan --------------------------------------------------------
 * Greedy by size over lifetimes: each buffer lives from the step that makes
 * it to its last reader; the largest are placed first, each at the lowest
 * offset clear of every placed buffer whose lifetime overlaps its own. This
 * keeps a large buffer from finding its hole taken by small ones made in
 * between, which a free list placing buffers in schedule order cannot. */

typedef struct buffer {
    size_t size, offset;
    int first, last; /* steps */
    int32_t node;    /* the node that makes it, for errors */
} buffer;

static size_t align_up(size_t n) { return (n + LG_ALIGN - 1) / LG_ALIGN * LG_ALIGN; }

static int by_size_desc(const void *a, const void *b)
{
    const buffer *x = *(const buffer *const *)a, *y = *(const buffer *const *)b;
    return (x->size < y->size) - (x->size > y->size);
}

static int by_offset(const void *a, const void *b)
{
    const buffer *x = *(const buffer *const *)a, *y = *(const buffer *const *)b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

/* Place bufs[0..n) and set *top to the arena size. Offsets are checked sums
 * capped at LG_MAX_BYTES, so a plan never wraps. */
static lg_status place_buffers(const lg_graph *g, buffer *bufs, int n, size_t *top_out)
{
    buffer **order = malloc((size_t)(n ? n : 1) * sizeof *order), **live = malloc((size_t)(n ? n : 1) * sizeof *live);
    if (!order || !live) {
        free(order), free(live);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "compile: out of memory");
    }
    for (int i = 0; i < n; i++) order[i] = &bufs[i];
    qsort(order, (size_t)n, sizeof *order, by_size_desc);
    size_t top = 0;
    for (int i = 0; i < n; i++) {
        buffer *b = order[i];
        int n_live = 0;
        for (int j = 0; j < i; j++)
            if (order[j]->first <= b->last && b->first <= order[j]->last) live[n_live++] = order[j];
        qsort(live, (size_t)n_live, sizeof *live, by_offset);
        size_t off = 0, end = 0;
        bool fits = true;
        for (int j = 0; fits && j < n_live; j++) {
            fits = !__builtin_add_overflow(off, b->size, &end) && end <= LG_MAX_BYTES;
            if (fits && end <= live[j]->offset) break;
            if (live[j]->offset + live[j]->size > off) off = live[j]->offset + live[j]->size;
        }
        if (!fits || __builtin_add_overflow(off, b->size, &end) || end > LG_MAX_BYTES) {
            free(order), free(live);
            const lg_node *nd = &g->nodes[b->node];
            return lg_fail(LG_ERR_OUT_OF_MEMORY, "compile: %s '%s': the buffers live at once would pass LG_MAX_BYTES "
                           "(%zu bytes)", lg_op_defs[nd->op]->name, nd->name, (size_t)LG_MAX_BYTES);
        }
        b->offset = off;
        if (end > top) top = end;
    }
    free(order), free(live);
    *top_out = top;
    return LG_OK;
}

/* ---- compile ------------------------------------------------------------- */

void lg_program_free(lg_program *p)
{
    if (!p) return;
    const lg_backend *b = p->backend;
    for (int s = 0; p->steps && s < p->n_steps; s++) {
        lg_program_free(p->steps[s].body);
        lg_program_free(p->steps[s].pre);
        lg_program_free(p->steps[s].post);
        if (b) b->free(b, p->steps[s].states);
    }
    for (int l = 0; b && p->locs && l < p->n_locs; l++) b->free(b, p->locs[l].dev_const);
    for (int f = 0; b && p->feed_dev && f < p->n_feeds; f++) b->free(b, p->feed_dev[f]);
    if (b) b->free(b, p->arena);
    if (b && b->graph_free) b->graph_free(b, p->cap.graph);
    free(p->cap.key), free(p->cap.now);
    lg_graph_free(p->graph);
    free(p->steps), free(p->args), free(p->locs), free(p->feed_user), free(p->feed_ports), free(p->feed_of_input);
    free(p->fetch_locs), free(p->out_data), free(p->out_bound), free(p->scratch);
    free((void *)p->feed_data), free(p->feed_dev), free(p->out_dev), free(p->notes);
    free(p);
}

static size_t port_bytes(const lg_port *pt) { return lg_port_bytes(pt); }
static size_t buf_bytes(const lg_buf *b) { return lg_port_bytes(&(lg_port){.dtype = b->dtype, .shape = b->shape}); }

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
                       (size_t)LG_MAX_BYTES);
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

typedef struct compile_state {
    lg_program *p;
    const lg_cgraph *cg;
    int *loc_of_node; /* first loc index of each node's outputs */
    int *last_use;    /* per loc: last step reading it (n_steps for fetched values) */
} compile_state;

static lg_status compile_locs(compile_state *cs)
{
    lg_program *p = cs->p;
    const lg_graph *g = p->graph;
    int n_locs = 0;
    for (int32_t i = 0; i < g->n_nodes; i++) n_locs += g->nodes[i].n_out;
    p->locs = calloc((size_t)(n_locs ? n_locs : 1), sizeof *p->locs);
    p->feed_of_input = malloc((size_t)(cs->cg->n_inputs ? cs->cg->n_inputs : 1) * sizeof *p->feed_of_input);
    p->feed_ports = malloc((size_t)(cs->cg->n_inputs ? cs->cg->n_inputs : 1) * sizeof *p->feed_ports);
    if (!p->locs || !p->feed_of_input || !p->feed_ports) return lg_fail(LG_ERR_OUT_OF_MEMORY, "compile: out of memory");
    p->n_inputs = cs->cg->n_inputs;
    for (int k = 0; k < cs->cg->n_inputs; k++) p->feed_of_input[k] = -1;
    int k = 0;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const lg_node *n = &g->nodes[i];
        cs->loc_of_node[i] = k;
        if (n->op == LG_OP_INPUT) {
            int f = 0;
            while (f < cs->cg->n_inputs && cs->cg->inputs[f] != i) f++;
            LG_ASSERT(f < cs->cg->n_inputs); /* lowering made only fed inputs */
            p->feed_of_input[f] = p->n_feeds;
            p->feed_ports[p->n_feeds] = n->out[0];
            p->locs[k] = (loc){.kind = LOC_FEED, .feed = p->n_feeds, .port = n->out[0]};
            p->n_feeds++;
        } else if (n->op == LG_OP_PARAM || n->op == LG_OP_CONST) {
            p->locs[k] = (loc){.kind = LOC_TENSOR, .tensor = n->attrs.tensor, .port = n->out[0]};
        } else {
            for (int o = 0; o < n->n_out; o++) p->locs[k + o] = (loc){.kind = LOC_ARENA, .port = n->out[o]};
            if (n->n_in > p->max_arity) p->max_arity = n->n_in;
            if (n->n_out > p->max_arity) p->max_arity = n->n_out;
        }
        k += n->n_out;
    }
    p->n_locs = n_locs;
    return LG_OK;
}

/* A body's fetches are written in place (LOC_OUT) by the kernels that make
 * them, when a step makes them; the rest (an input passed through, a
 * constant, a value fetched twice) are copied after the step. */
static void bind_fetches(compile_state *cs)
{
    lg_program *p = cs->p;
    for (int i = 0; i < p->n_fetches; i++) {
        loc *l = &p->locs[p->fetch_locs[i]];
        p->out_bound[i] = l->kind == LOC_ARENA;
        if (p->out_bound[i]) *l = (loc){.kind = LOC_OUT, .feed = i, .port = l->port};
    }
}

static lg_status compile_schedule(compile_state *cs)
{
    lg_program *p = cs->p;
    const lg_graph *g = p->graph;
    int n_args = 0, n_fetches = cs->cg->n_outputs;
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (lg_op_is_compute(g->nodes[i].op)) {
            p->n_steps++;
            n_args += g->nodes[i].n_in + g->nodes[i].n_out;
        }
    p->steps = calloc((size_t)(p->n_steps ? p->n_steps : 1), sizeof *p->steps);
    p->args = calloc((size_t)(n_args ? n_args : 1), sizeof *p->args);
    cs->last_use = calloc((size_t)(p->n_locs ? p->n_locs : 1), sizeof *cs->last_use);
    p->fetch_locs = calloc((size_t)n_fetches, sizeof *p->fetch_locs);
    p->out_data = calloc((size_t)n_fetches, sizeof *p->out_data);
    p->out_bound = calloc((size_t)n_fetches, sizeof *p->out_bound);
    p->out_dev = calloc((size_t)n_fetches, sizeof *p->out_dev);
    if (!p->steps || !p->args || !cs->last_use || !p->fetch_locs || !p->out_data || !p->out_bound || !p->out_dev)
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "compile: out of memory");
    int s = 0, a = 0;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const lg_node *n = &g->nodes[i];
        if (!lg_op_is_compute(n->op)) continue;
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
        lg_ref r = cs->cg->outputs[i];
        int l = cs->loc_of_node[r.node] + r.out;
        for (int j = 0; j < i && l >= 0; j++)
            if (p->fetch_locs[j] == l) l = -1 - j; /* fetched twice: copied from the first */
        p->fetch_locs[i] = l >= 0 ? l : p->fetch_locs[-1 - l];
        cs->last_use[p->fetch_locs[i]] = p->n_steps;
    }
    return LG_OK;
}

/* Ops whose output element i reads only element i of each input of the
 * output's shape (others broadcast): op_list.h keeps them in one run. */
static bool is_elementwise(lg_op op)
{
    return (op >= LG_OP_ADD && op <= LG_OP_STOP_GRADIENT) || op == LG_OP_FUSED_ELEMENTWISE;
}

/* Ops whose kernel only copies: same bytes, a new shape. */
static bool is_reshape(lg_op op)
{
    return op == LG_OP_RESHAPE || op == LG_OP_RESHAPE_LIKE || op == LG_OP_EXPAND_DIMS || op == LG_OP_SQUEEZE;
}

static lg_status compile_memory(compile_state *cs, bool reuse)
{
    lg_program *p = cs->p;
    /* per arena loc: the buffer it lives in (its own, or the input it took over) */
    int *buf_of = malloc((size_t)(p->n_locs ? p->n_locs : 1) * sizeof *buf_of);
    buffer *bufs = calloc((size_t)(p->n_locs ? p->n_locs : 1), sizeof *bufs);
    if (!buf_of || !bufs) {
        free(buf_of), free(bufs);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "compile: out of memory");
    }
    int n_bufs = 0;
    for (int s = 0; s < p->n_steps; s++) {
        step *sp = &p->steps[s];
        const lg_node *n = &p->graph->nodes[sp->node];
        /* a reshape of a value read by nothing after it takes over its
         * buffer: the data is already in place */
        int in0 = n->n_in ? p->args[sp->first_in] : -1, out0 = p->args[sp->first_out];
        sp->alias = reuse && is_reshape(n->op) && p->locs[in0].kind == LOC_ARENA && cs->last_use[in0] == s &&
                    p->locs[out0].kind == LOC_ARENA;
        if (is_reshape(n->op) && (p->locs[in0].kind == LOC_FEED || p->locs[in0].kind == LOC_TENSOR) &&
            p->locs[out0].kind == LOC_ARENA) { /* a view of read-only data: nothing writes over either */
            lg_port port = p->locs[out0].port;
            p->locs[out0] = p->locs[in0];
            p->locs[out0].port = port;
            sp->alias = true;
            continue;
        }
        /* an elementwise op writes over an input of its own shape that
         * dies here (each element is read before it is written; not a
         * fused program that puts, which writes columns that later
         * windows of the input would read) */
        int over = sp->alias ? in0 : -1;
        bool elementwise = is_elementwise(n->op) && !(n->op == LG_OP_FUSED_ELEMENTWISE && lg_few_puts(n));
        for (int j = 0; reuse && over < 0 && elementwise && p->locs[out0].kind == LOC_ARENA && j < n->n_in; j++) {
            int li = p->args[sp->first_in + j];
            const loc *l = &p->locs[li];
            if (l->kind == LOC_ARENA && cs->last_use[li] == s && l->port.dtype == p->locs[out0].port.dtype &&
                lg_shape_equal(l->port.shape, p->locs[out0].port.shape))
                over = li;
        }
        for (int o = 0; o < n->n_out; o++) {
            int li = p->args[sp->first_out + o];
            if (p->locs[li].kind != LOC_ARENA) continue;
            if (o == 0 && over >= 0) {
                buf_of[li] = buf_of[over];
            } else {
                buf_of[li] = n_bufs;
                bufs[n_bufs++] = (buffer){.size = align_up(port_bytes(&p->locs[li].port)), .first = reuse ? s : 0, .node = sp->node};
            }
            buffer *b = &bufs[buf_of[li]];
            int last = reuse ? cs->last_use[li] : p->n_steps;
            if (last > b->last) b->last = last;
        }
    }
    size_t top = 0;
    lg_status placed = place_buffers(p->graph, bufs, n_bufs, &top);
    for (int l = 0; !placed && l < p->n_locs; l++)
        if (p->locs[l].kind == LOC_ARENA) p->locs[l].offset = bufs[buf_of[l]].offset;
    free(buf_of), free(bufs);
    if (placed) return placed;
    p->arena_bytes = top;
    void *arena = NULL;
    lg_status st = p->backend->alloc(p->backend, top, &arena);
    if (st) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", lg_last_error());
        return lg_fail(st, "compile: the buffers' %zu bytes on %s: %s", top, p->backend->name, msg);
    }
    p->arena = arena;
    p->scratch = calloc((size_t)(2 * (p->max_arity ? p->max_arity : 1)), sizeof *p->scratch);
    p->feed_data = calloc((size_t)(p->n_feeds ? p->n_feeds : 1), sizeof *p->feed_data);
    if (!p->scratch || !p->feed_data) return lg_fail(LG_ERR_OUT_OF_MEMORY, "compile: out of memory");
    return LG_OK;
}

static lg_status compile_cgraph(lg_cgraph *cg, bool body, lg_program **out);

/* Step shape: a sequence [T, ...] without its time axis. */
static lg_port step_port(lg_port pt)
{
    for (int d = 0; d + 1 < pt.shape.rank; d++) pt.shape.dims[d] = pt.shape.dims[d + 1];
    pt.shape.rank--;
    return pt;
}

/* Compile loop step st's body for its step shapes; its fetches are the
 * next states, the per-step outputs, the stop condition, then the
 * residuals. Also the buffers its states ping-pong between. */
static lg_status compile_loop(lg_program *p, step *st, uint32_t off)
{
    const lg_node *n = &p->graph->nodes[st->node];
    const lg_loop_spec *s = n->attrs.loop;
    int n_in = s->n_seq + s->n_state + s->n_inv, first_res = s->n_state + s->n_y + s->has_stop;
    int n_fetch = first_res + s->n_res;
    lg_port ports[n_in + s->n_pre > 0 ? n_in + s->n_pre : 1], pre_ports[n_in > 0 ? n_in : 1];
    lg_ref fetches[n_fetch + s->n_emit > 0 ? n_fetch + s->n_emit : 1];
    int32_t pre_in[n_in > 0 ? n_in : 1];
    int n_pre_in = 0;
    for (int k = 0; k < n_in; k++) {
        lg_port pt = p->locs[p->args[st->first_in + k]].port;
        ports[k] = k < s->n_seq ? step_port(pt) : pt;
        if (s->pre && s->pre_inputs[k] >= 0) { /* pre reads a sequence's chunk */
            if (k < s->n_seq) pt.shape.dims[0] = s->chunk;
            pre_in[n_pre_in] = s->pre_inputs[k];
            pre_ports[n_pre_in++] = pt;
        }
    }
    for (int j = 0; j < s->n_pre; j++) ports[n_in + j] = s->body->nodes[s->inputs[n_in + j]].out[0];
    for (int k = 0; k < n_fetch; k++) fetches[k] = k < first_res ? s->outputs[k] : s->res[k - first_res];
    for (int e = 0; e < s->n_emit; e++) fetches[n_fetch + e] = s->emit[e]; /* into chunk buffers */
    lg_cgraph cg = {.off = off, .backend = p->backend};
    lg_status rc = lg_cgraph_lower(s->body, s->inputs, ports, n_in + s->n_pre, fetches, n_fetch + s->n_emit, &cg);
    if (!rc) rc = lg_cgraph_run_passes(&cg);
    if (!rc) rc = compile_cgraph(&cg, true, &st->body);
    else lg_cgraph_free(&cg);
    if (!rc && s->pre) {
        lg_cgraph pc = {.off = off, .backend = p->backend};
        rc = lg_cgraph_lower(s->pre, pre_in, pre_ports, n_pre_in, s->pre_outputs, s->n_pre, &pc);
        if (!rc) rc = lg_cgraph_run_passes(&pc);
        if (!rc) rc = compile_cgraph(&pc, true, &st->pre);
        else lg_cgraph_free(&pc);
    }
    lg_port post_ports[s->n_post_in > 0 ? s->n_post_in : 1];
    for (int i = 0; !rc && i < s->n_post_in; i++) post_ports[i] = s->post->nodes[s->post_inputs[i]].out[0];
    if (!rc && s->post) {
        lg_cgraph pc = {.off = off, .backend = p->backend};
        rc = lg_cgraph_lower(s->post, s->post_inputs, post_ports, s->n_post_in, s->post_outputs, s->n_post, &pc);
        if (!rc) rc = lg_cgraph_run_passes(&pc);
        if (!rc) rc = compile_cgraph(&pc, true, &st->post);
        else lg_cgraph_free(&pc);
    }
    if (rc) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", lg_last_error());
        return lg_fail(rc, "loop '%s': %s", n->name, msg);
    }
    size_t bytes = LG_ALIGN; /* the stop condition */
    for (int k = 0; k < s->n_state; k++) bytes += 2 * (port_bytes(&ports[s->n_seq + k]) + LG_ALIGN);
    for (int j = 0; j < s->n_pre; j++) bytes += (size_t)s->chunk * port_bytes(&ports[n_in + j]) + LG_ALIGN;
    for (int e = 0; !rc && e < s->n_emit; e++)
        bytes += (size_t)s->chunk * port_bytes(&st->body->locs[st->body->fetch_locs[n_fetch + e]].port) + LG_ALIGN;
    st->state_bytes = align_up(bytes);
    void *states = NULL;
    rc = p->backend->alloc(p->backend, st->state_bytes, &states);
    st->states = states;
    if (rc) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", lg_last_error());
        return lg_fail(rc, "loop '%s': its state buffers: %s", n->name, msg);
    }
    return LG_OK;
}

/* On a device: a copy there of each constant (parameters are read from
 * their mirrored blocks), and the buffers feeds are copied into at the top
 * level. A body's fetches are always written in the backend's memory. */
static lg_status compile_device_data(lg_program *p, bool body)
{
    const lg_backend *b = p->backend;
    for (int i = 0; body && i < p->n_fetches; i++) p->out_dev[i] = true;
    if (b->host_memory) return LG_OK;
    lg_status st = LG_OK;
    for (int32_t i = 0, k = 0; !st && i < p->graph->n_nodes; k += p->graph->nodes[i].n_out, i++) {
        const lg_node *n = &p->graph->nodes[i];
        loc *l = &p->locs[k];
        if (l->kind != LOC_TENSOR || lg_tensor_mirror(l->tensor)) continue;
        if (n->op == LG_OP_PARAM)
            return lg_fail(LG_ERR_UNSUPPORTED, "param '%s': in no parameter block, so not on %s", n->name, b->name);
        st = b->alloc(b, lg_tensor_bytes(l->tensor), &l->dev_const);
        if (!st) st = b->copy_h2d(b, l->dev_const, lg_tensor_cdata(l->tensor), lg_tensor_bytes(l->tensor));
    }
    if (st || body) return st;
    p->feed_dev = calloc((size_t)(p->n_feeds ? p->n_feeds : 1), sizeof *p->feed_dev);
    if (!p->feed_dev) return lg_fail(LG_ERR_OUT_OF_MEMORY, "compile: out of memory");
    for (int f = 0; !st && f < p->n_feeds; f++) st = b->alloc(b, port_bytes(&p->feed_ports[f]), &p->feed_dev[f]);
    return st;
}

/* Why p's schedule cannot be captured, into why: a loop with a stop
 * condition reads its flag back after every step, and a fused rnn pair is
 * left to its library (a few calls per sequence: launches are not its
 * cost). A replay would also be wrong for the pair: its backend may read
 * the per-example lengths back to the host and set them in the library's
 * descriptors, and grow its work space, on every run (cuDNN: cuda_rnn.c,
 * cudnn_rnn.c), and a graph would keep the first capture's lengths.
 * Nested programs too. */
static bool uncapturable(const lg_program *p, char *why, size_t len)
{
    for (int s = 0; p && s < p->n_steps; s++) {
        const lg_node *n = &p->graph->nodes[p->steps[s].node];
        if (n->op == LG_OP_LOOP && n->attrs.loop->has_stop) {
            snprintf(why, len, "loop '%s' has a stop condition, read back after every step", n->name);
            return true;
        }
        if (n->op == LG_OP_RNN || n->op == LG_OP_RNN_GRAD) {
            snprintf(why, len, "%s '%s' is a fused RNN, left to its library", lg_op_defs[n->op]->name, n->name);
            return true;
        }
        if (uncapturable(p->steps[s].body, why, len) || uncapturable(p->steps[s].pre, why, len) ||
            uncapturable(p->steps[s].post, why, len))
            return true;
    }
    return false;
}

/* The addresses a captured schedule has built in, into key[n...] (counted
 * only when key is NULL): the top level's feeds, then where each parameter
 * and constant of p and its loops' programs is for this run (prepare).
 * Everything else it reads and writes (the arena, loop states, feed
 * buffers, bodies' views of them) is fixed at compile. */
static int bound_addresses(const lg_program *p, bool top, const void **key, int n)
{
    for (int f = 0; top && f < p->n_feeds; f++, n++)
        if (key) key[n] = p->feed_data[f];
    for (int l = 0; l < p->n_locs; l++)
        if (p->locs[l].kind == LOC_TENSOR) {
            if (key) key[n] = p->locs[l].data;
            n++;
        }
    for (int s = 0; s < p->n_steps; s++) {
        const step *sp = &p->steps[s];
        if (sp->body) n = bound_addresses(sp->body, false, key, n);
        if (sp->pre) n = bound_addresses(sp->pre, false, key, n);
        if (sp->post) n = bound_addresses(sp->post, false, key, n);
    }
    return n;
}

/* Whether the top level's runs may be captured (run_top): on a backend
 * with capture hooks, unless switched off (the pass name graph_capture) or
 * uncapturable. */
static lg_status compile_capture(lg_program *p, bool switched_on)
{
    capture *c = &p->cap;
    if (!p->backend->capture_begin) return LG_OK;
    if (!switched_on)
        snprintf(c->why, sizeof c->why, "switched off (graph_capture in lg_compile_opts.passes_off or LG_PASSES_OFF)");
    else if (!uncapturable(p, c->why, sizeof c->why))
        c->on = true;
    if (!c->on) return LG_OK;
    c->n_key = bound_addresses(p, true, NULL, 0);
    c->key = calloc((size_t)(c->n_key ? c->n_key : 1), sizeof *c->key);
    c->now = calloc((size_t)(c->n_key ? c->n_key : 1), sizeof *c->now);
    return c->key && c->now ? LG_OK : lg_fail(LG_ERR_OUT_OF_MEMORY, "compile: out of memory");
}

/* The program for a lowered graph after its passes; takes cg's graph. */
static lg_status compile_cgraph(lg_cgraph *cg, bool body, lg_program **out)
{
    *out = NULL;
    lg_program *p = calloc(1, sizeof *p);
    compile_state cs = {.p = p, .cg = cg, .loc_of_node = malloc((size_t)(cg->g->n_nodes + 1) * sizeof(int))};
    lg_status st = LG_OK;
    if (!p || !cs.loc_of_node) {
        st = lg_fail(LG_ERR_OUT_OF_MEMORY, "compile: out of memory");
        goto done;
    }
    p->graph = cg->g;
    cg->g = NULL;
    p->backend = cg->backend;
    p->notes = cg->notes;
    cg->notes = NULL;
    st = compile_locs(&cs);
    if (!st) st = compile_schedule(&cs);
    if (!st && body) bind_fetches(&cs);
    if (!st) st = compile_memory(&cs, lg_pass_on(cg, "memory_plan"));
    for (int s = 0; !st && s < p->n_steps; s++) {
        const lg_node *n = &p->graph->nodes[p->steps[s].node];
        if (n->op == LG_OP_LOOP) st = compile_loop(p, &p->steps[s], cg->off);
        else if (!p->backend->supports_op(p->backend, n))
            st = lg_fail(LG_ERR_UNSUPPORTED, "%s '%s': no kernel on the %s backend", lg_op_defs[n->op]->name, n->name,
                         p->backend->name);
    }
    if (!st) st = compile_device_data(p, body);
    if (!st && !body) st = compile_capture(p, lg_pass_on(cg, "graph_capture"));
done:
    free(cs.loc_of_node);
    free(cs.last_use);
    lg_cgraph_free(cg);
    if (st) {
        lg_program_free(p);
        return st;
    }
    *out = p;
    return LG_OK;
}

lg_compile_opts lg_compile_opts_default(void) { return (lg_compile_opts){.passes_off = NULL, .device = NULL}; }

lg_status lg_program_compile_opts(lg_graph *g, const lg_feed *feeds, int n_feeds, const lg_value *fetches,
                                  int n_fetches, lg_compile_opts opts, lg_program **out)
{
    if (!out) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_program_compile: out is NULL");
    *out = NULL;
    if (!g) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_program_compile: graph is NULL");
    if (g->error) return lg_fail(LG_ERR_GRAPH, "the graph has a builder error: %s", g->error);
    lg_status st = check_fetches(g, fetches, n_fetches);
    if (!st) st = check_feeds(g, feeds, n_feeds);
    const lg_backend *backend = NULL;
    if (!st) st = lg_backend_get(opts.device, &backend);
    /* on a device every parameter is read from its block's device copy */
    if (!st && !backend->host_memory) st = lg_param_block_pack_all(g);
    lg_cgraph cg = {.backend = backend};
    if (!st) st = lg_passes_off(opts.passes_off, &cg.off);
    if (st) return st;
    int32_t inputs[n_feeds > 0 ? n_feeds : 1];
    lg_port ports[n_feeds > 0 ? n_feeds : 1];
    lg_ref want[n_fetches];
    for (int i = 0; i < n_feeds; i++) {
        inputs[i] = feeds[i].input.node;
        ports[i] = (lg_port){lg_tensor_dtype(feeds[i].tensor), lg_tensor_shape(feeds[i].tensor)};
    }
    for (int i = 0; i < n_fetches; i++) want[i] = (lg_ref){fetches[i].node, fetches[i].output};
    st = lg_cgraph_lower(g, inputs, ports, n_feeds, want, n_fetches, &cg);
    if (st == LG_ERR_SHAPE && n_feeds > 0) { /* a shape the feeds fixed: say what they were */
        char fed[512], msg[1024];
        snprintf(msg, sizeof msg, "%s", lg_last_error()); /* lg_fail overwrites the message it formats from */
        st = lg_fail(st, "%s%s", msg, feeds_str(feeds, n_feeds, fed, sizeof fed));
    }
    if (!st) st = lg_cgraph_run_passes(&cg);
    if (st) {
        lg_cgraph_free(&cg);
        return st;
    }
    int32_t *user = malloc((size_t)(n_feeds > 0 ? n_feeds : 1) * sizeof *user);
    lg_program *p = NULL;
    st = user ? compile_cgraph(&cg, false, &p) : lg_fail(LG_ERR_OUT_OF_MEMORY, "compile: out of memory");
    if (!user) lg_cgraph_free(&cg);
    if (st) {
        free(user);
        return st;
    }
    for (int i = 0; i < n_feeds; i++)
        if (p->feed_of_input[i] >= 0) user[p->feed_of_input[i]] = inputs[i];
    p->feed_user = user;
    p->user = g;
    *out = p;
    return LG_OK;
}

lg_status lg_program_compile(lg_graph *g, const lg_feed *feeds, int n_feeds, const lg_value *fetches, int n_fetches,
                             lg_program **out)
{
    return lg_program_compile_opts(g, feeds, n_feeds, fetches, n_fetches, lg_compile_opts_default(), out);
}

int lg_program_kernel_count(const lg_program *p) { return p ? p->n_steps : 0; }
/* Each loop's own buffers and its programs' memory, nested loops included. */
static size_t loop_bytes(const lg_program *p)
{
    size_t bytes = 0;
    for (int s = 0; p && s < p->n_steps; s++) {
        const lg_program *b = p->steps[s].body, *pre = p->steps[s].pre;
        bytes += p->steps[s].state_bytes + (b ? b->arena_bytes : 0) + (pre ? pre->arena_bytes : 0);
        bytes += loop_bytes(b) + loop_bytes(pre);
    }
    return bytes;
}

size_t lg_program_peak_bytes(const lg_program *p) { return p ? p->arena_bytes : 0; }

/* The constants' device copies and the feeds' buffers of p and its loops'
 * programs (0 on a host-memory backend). */
static size_t device_copy_bytes(const lg_program *p)
{
    size_t bytes = 0;
    for (int l = 0; p && l < p->n_locs; l++)
        if (p->locs[l].dev_const) bytes += lg_tensor_bytes(p->locs[l].tensor);
    for (int f = 0; p && p->feed_dev && f < p->n_feeds; f++) bytes += port_bytes(&p->feed_ports[f]);
    for (int s = 0; p && s < p->n_steps; s++)
        bytes += device_copy_bytes(p->steps[s].body) + device_copy_bytes(p->steps[s].pre) +
                 device_copy_bytes(p->steps[s].post);
    return bytes;
}

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

lg_status lg_program_loop_report(const lg_program *p, int i, lg_loop_report *out)
{
    const step *st = NULL;
    const lg_node *n = p && out ? loop_step(p, i, &st) : NULL;
    if (!n) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_program_loop_report: %s", !p ? "program is NULL" : !out ? "out is NULL" : "no such loop");
    const lg_loop_spec *s = n->attrs.loop;
    *out = (lg_loop_report){.name = n->name, .gradient = s->gradient, .has_stop = s->has_stop,
                            .memory = (lg_loop_memory)s->memory, .n_residuals = s->n_res, .steps = s->steps,
                            .n_hoisted = s->n_hoisted, .hoisted_bytes = s->hoisted_bytes, .n_sunk = s->n_sunk,
                            .n_wide = s->n_wide, .body_kernels = st->body->n_steps};
    if (s->n_seq) out->steps = p->locs[p->args[st->first_in]].port.shape.dims[0];
    for (int k = 0; k < st->body->n_steps; k++) {
        const lg_node *b = &st->body->graph->nodes[st->body->steps[k].node];
        if (b->op == LG_OP_FUSED_ELEMENTWISE) out->fused_ops += lg_few_op_count(b), out->fused_kernels++;
    }
    for (int k = 0; k < s->n_state; k++) out->state_bytes += port_bytes(&p->locs[p->args[st->first_out + s->n_state + s->n_y + k]].port);
    for (int r = 0; r < s->n_res; r++)
        out->residual_bytes += port_bytes(&p->locs[p->args[st->first_out + 2 * s->n_state + s->n_y + r]].port);
    out->residual_bytes += out->state_bytes;
    return LG_OK;
}

static double mib(size_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

/* The notes of p's passes, and of its loops' bodies, indented by depth. */
static void add_notes(FILE *t, const lg_program *p, int depth)
{
    for (const char *line = p->notes; line && *line;) {
        size_t len = strcspn(line, "\n");
        fprintf(t, "%*s%.*s\n", 2 * depth, "", (int)len, line);
        line += len + (line[len] == '\n');
    }
    for (int s = 0; s < p->n_steps; s++)
        if (p->steps[s].body) add_notes(t, p->steps[s].body, depth + 1);
}

char *lg_program_report(const lg_program *p)
{
    if (!p) return NULL;
    char *s = NULL;
    size_t size = 0;
    FILE *t = open_memstream(&s, &size);
    if (!t) return NULL;
    fprintf(t, "program: %d kernels on %s, %.2f MiB planned, loops' own buffers %.2f MiB\n", p->n_steps,
            p->backend->name, mib(p->arena_bytes), mib(loop_bytes(p)));
    p->backend->report(p->backend, t);
    if (!p->backend->host_memory)
        fprintf(t, "device memory: %.2f MiB held by this program (buffers, loop states, constant and feed copies)\n",
                mib(p->arena_bytes + loop_bytes(p) + device_copy_bytes(p)));
    if (p->cap.graph)
        fprintf(t, "%s: captured on run 2 (%zu nodes); launched on %d runs, kernel by kernel on %d since (other feed "
                "or parameter addresses, or TF32 switched)\n", p->backend->graph_name, p->cap.n_nodes,
                p->cap.replays + 1, p->cap.plain);
    else if (p->cap.on)
        fprintf(t, "%s: not captured yet: the first run warms up, the second is captured\n", p->backend->graph_name);
    else if (p->backend->capture_begin)
        fprintf(t, "%s: not captured: %s\n", p->backend->graph_name, p->cap.why);
    for (int i = 0; i < lg_program_loop_count(p); i++) {
        lg_loop_report r;
        if (lg_program_loop_report(p, i, &r) != LG_OK) {
            fprintf(t, "loop %d: %s\n", i, lg_last_error());
            continue;
        }
        fprintf(t, "loop '%s': %s%lld steps, %d kernels per step, ", r.name, r.has_stop ? "at most " : "",
                 (long long)r.steps, r.body_kernels);
        if (r.gradient)
            fprintf(t, "gradient loop");
        else if (r.memory == LG_LOOP_RECOMPUTE)
            fprintf(t, "recompute: %.2f MiB saved (states only)", mib(r.residual_bytes));
        else
            fprintf(t, "save residuals: %d values, %.2f MiB saved (states %.2f MiB)", r.n_residuals,
                     mib(r.residual_bytes), mib(r.state_bytes));
        fprintf(t, "; hoisted %d values, %.2f MiB", r.n_hoisted, mib(r.hoisted_bytes));
        if (r.n_sunk) fprintf(t, "; %d accumulators summed by batched GEMMs", r.n_sunk);
        if (r.n_wide) fprintf(t, "; %d accumulators kept per example", r.n_wide);
        if (r.fused_kernels) fprintf(t, "; %d elementwise ops fused into %d kernels", r.fused_ops, r.fused_kernels);
        fprintf(t, "\n");
    }
    for (int i = 0; i < p->n_steps; i++) { /* fused loops (fuse_rnn) */
        const lg_node *n = &p->graph->nodes[p->steps[i].node];
        if (n->op != LG_OP_RNN) continue;
        unsigned flags = lg_rnn_node_flags(n);
        lg_rnn_layout L = lg_rnn_layout_of(lg_rnn_node_cell(n), lg_rnn_part_flags(flags, 0));
        size_t ws = 0;
        int parts = lg_rnn_parts(&n->attrs);
        for (int k = 0; k < parts; k++)
            ws += port_bytes(&p->locs[p->args[p->steps[i].first_out + k * L.n_out + L.ws]].port);
        char merged[48] = "";
        if (flags & LG_RNN_BIDIR) snprintf(merged, sizeof merged, " bidirectional");
        if (flags & LG_RNN_STACK)
            snprintf(merged + strlen(merged), sizeof merged - strlen(merged), "%s %d layers",
                     flags & LG_RNN_BIDIR ? "," : "", lg_rnn_layer_count(&n->attrs));
        fprintf(t, "rnn '%s': fused %s%s, %s: workspace %.2f MiB\n", n->name, lg_rnn_cell_name(lg_rnn_node_cell(n)),
                merged,
                (flags & LG_RNN_FORWARD_ONLY) ? "forward only" : "saved for its gradient", mib(ws));
    }
    add_notes(t, p, 0);
    bool ok = !ferror(t);
    if (fclose(t) != 0) ok = false; /* out of memory while the text grew */
    if (!ok) free(s);
    return ok ? s : NULL;
}

/* ---- run ----------------------------------------------------------------- */

static void *loc_data(const lg_program *p, const loc *l)
{
    switch (l->kind) {
    case LOC_ARENA: return p->arena + l->offset;
    case LOC_FEED: return (void *)p->feed_data[l->feed];
    case LOC_TENSOR: return l->data;
    case LOC_OUT: return p->out_data[l->feed];
    }
    return NULL;
}

/* Where each parameter and constant is for this run, in p and its loops'
 * programs: parameters placed on the backend (mirror.h), constants in
 * place or in their device copy. */
static lg_status prepare(lg_program *p)
{
    if (!p) return LG_OK;
    for (int l = 0; l < p->n_locs; l++) {
        loc *lc = &p->locs[l];
        if (lc->kind != LOC_TENSOR) continue;
        if (lc->dev_const) lc->data = lc->dev_const;
        else {
            lg_status st = lg_tensor_place(lc->tensor, p->backend, &lc->data);
            if (st) return st;
        }
    }
    for (int s = 0; s < p->n_steps; s++) {
        lg_status st = prepare(p->steps[s].body);
        if (!st) st = prepare(p->steps[s].pre);
        if (!st) st = prepare(p->steps[s].post);
        if (st) return st;
    }
    return LG_OK;
}

static lg_status bind_feeds(lg_program *p, const lg_feed *feeds, int n_feeds)
{
    lg_status st = check_feeds(p->user, feeds, n_feeds);
    if (st) return st;
    for (int f = 0; f < p->n_feeds; f++) {
        int i = 0;
        while (i < n_feeds && feeds[i].input.node != p->feed_user[f]) i++;
        const lg_node *n = &p->user->nodes[p->feed_user[f]];
        if (i == n_feeds) return lg_fail(LG_ERR_FEED, "missing feed for input '%s'", n->name);
        if (!lg_shape_equal(lg_tensor_shape(feeds[i].tensor), p->feed_ports[f].shape))
            return lg_fail(LG_ERR_FEED, "feed for input '%s': shape %s, the program was compiled for %s", n->name,
                           lg_shape_cstr(lg_tensor_shape(feeds[i].tensor)), lg_shape_cstr(p->feed_ports[f].shape));
        const lg_tensor *t = feeds[i].tensor;
        void *data = NULL;
        if (p->backend->host_memory || lg_tensor_mirror(t)) {
            st = lg_tensor_place(t, p->backend, &data);
        } else { /* copied in */
            data = p->feed_dev[f];
            st = p->backend->copy_h2d(p->backend, data, lg_tensor_cdata(t), lg_tensor_bytes(t));
        }
        if (st) return st;
        p->feed_data[f] = data;
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

static lg_status exec(lg_program *p);

/* Where the body reads its input k (by the loop's input order). */
static void body_feed(lg_program *b, int k, const void *data)
{
    if (b->feed_of_input[k] >= 0) b->feed_data[b->feed_of_input[k]] = data;
}

static bool nonzero(const void *v, lg_dtype dt)
{
    switch (dt) {
    case LG_F32: return *(const float *)v != 0;
    case LG_F64: return *(const double *)v != 0;
    default: return *(const int32_t *)v != 0;
    }
}

/* Run loop node n: per step, its body's schedule on views of in and out.
 * States ping-pong between two buffers, or, when the loop saves them for
 * its gradient loop, live in that stack: step t reads its state from slot
 * t and writes the next into the next step's slot (the last step into the
 * final state). Steps after a stop condition fired leave zeros in every
 * stacked output. */
static lg_status run_loop(const lg_backend *be, const step *sp, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    const lg_loop_spec *s = n->attrs.loop;
    lg_program *b = sp->body;
    int64_t steps = s->n_seq ? in[0].shape.dims[0] : s->steps;
    int first_res = s->n_state + s->n_y + s->has_stop;
    unsigned char *ping[s->n_state > 0 ? s->n_state : 1], *pong[s->n_state > 0 ? s->n_state : 1];
    size_t seq_block[s->n_seq > 0 ? s->n_seq : 1], y_block[s->n_y + s->n_res + 1];
    unsigned char *buf = sp->states;
    bool in_stack = !s->has_stop && steps > 0;
    lg_status st = LG_OK;
    for (int k = 0; k < s->n_state; k++) {
        size_t bytes = buf_bytes(&in[s->n_seq + k]);
        ping[k] = buf, buf += align_up(bytes);
        pong[k] = buf, buf += align_up(bytes);
        in_stack = in_stack && buf_bytes(&out[s->n_state + s->n_y + k]) > 0;
        if (!st) st = be->copy_d2d(be, ping[k], in[s->n_seq + k].data, bytes);
    }
    unsigned char *stop = buf, *chunk[s->n_pre > 0 ? s->n_pre : 1];
    size_t pre_block[s->n_pre > 0 ? s->n_pre : 1]; /* bytes of one step of pre's output j */
    int n_in = s->n_seq + s->n_state + s->n_inv;
    buf += LG_ALIGN;
    for (int j = 0; j < s->n_pre; j++) {
        pre_block[j] = port_bytes(&s->body->nodes[s->inputs[n_in + j]].out[0]);
        chunk[j] = buf, buf += align_up((size_t)s->chunk * pre_block[j]);
        sp->pre->out_data[j] = chunk[j];
    }
    /* the values emitted per step for the accumulators, by chunk; the
     * accumulators live in their final outputs */
    int n_fetch = first_res + s->n_res, first_post = 2 * s->n_state + s->n_y + s->n_res;
    unsigned char *emit[s->n_emit > 0 ? s->n_emit : 1];
    size_t emit_block[s->n_emit > 0 ? s->n_emit : 1];
    for (int e = 0; e < s->n_emit; e++) {
        emit_block[e] = port_bytes(&b->locs[b->fetch_locs[n_fetch + e]].port);
        emit[e] = buf, buf += align_up((size_t)s->chunk * emit_block[e]);
    }
    for (int j = 0; !st && j < s->n_post; j++) {
        st = be->copy_d2d(be, out[first_post + j].data, in[n_in + j].data, buf_bytes(&out[first_post + j]));
        sp->post->out_data[j] = out[first_post + j].data; /* acc + sum, in place */
    }
    for (int i = 0; i < s->n_seq; i++) seq_block[i] = buf_bytes(&in[i]) / (size_t)steps;
    for (int i = 0; i < s->n_inv; i++) body_feed(b, s->n_seq + s->n_state + i, in[s->n_seq + s->n_state + i].data);
    for (int j = 0; j < s->n_y + s->n_res; j++) {
        const lg_buf *stack = &out[j < s->n_y ? s->n_state + j : 2 * s->n_state + s->n_y + j - s->n_y];
        y_block[j] = buf_bytes(stack) / (size_t)(steps ? steps : 1);
    }
    if (s->has_stop) {
        for (int k = s->n_state; !st && k < n->n_out; k++) st = be->zero(be, out[k].data, buf_bytes(&out[k]));
        b->out_data[first_res - 1] = stop;
    }
    int64_t t_lo = 0; /* the first time step of pre's current chunk */
    for (int64_t step = 0; !st && step < steps; step++) {
        int64_t t = s->reverse ? steps - 1 - step : step, t_next = s->reverse ? t - 1 : t + 1;
        if (s->chunk && step % s->chunk == 0) t_lo = s->reverse ? steps - step - s->chunk : step;
        if (s->pre && step % s->chunk == 0) { /* the next chunk's hoisted values, in run order */
            for (int k = 0, f = 0; k < n_in; k++) {
                if (s->pre_inputs[k] < 0) continue;
                const char *data = (const char *)in[k].data + (k < s->n_seq ? (size_t)t_lo * seq_block[k] : 0);
                body_feed(sp->pre, f++, data);
            }
            st = exec(sp->pre);
            if (st) break;
        }
        for (int j = 0; j < s->n_pre; j++) body_feed(b, n_in + j, chunk[j] + (size_t)(t - t_lo) * pre_block[j]);
        for (int i = 0; i < s->n_seq; i++) body_feed(b, i, (const char *)in[i].data + (size_t)t * seq_block[i]);
        for (int k = 0; k < s->n_state; k++) {
            const lg_buf *saved = &out[s->n_state + s->n_y + k]; /* [0, ...] when nothing reads it */
            size_t block = buf_bytes(saved) / (size_t)steps;
            char *slot = (char *)saved->data + (size_t)t * block;
            if (in_stack) {
                if (step == 0 && !st) st = be->copy_d2d(be, slot, ping[k], block);
                body_feed(b, s->n_seq + k, slot);
                b->out_data[k] = step + 1 < steps ? (char *)saved->data + (size_t)t_next * block : out[k].data;
            } else {
                if (block && !st) st = be->copy_d2d(be, slot, ping[k], block);
                body_feed(b, s->n_seq + k, ping[k]);
                b->out_data[k] = pong[k];
            }
        }
        for (int j = 0; j < s->n_y + s->n_res; j++) {
            const lg_buf *stack = &out[j < s->n_y ? s->n_state + j : 2 * s->n_state + s->n_y + j - s->n_y];
            b->out_data[j < s->n_y ? s->n_state + j : first_res + j - s->n_y] = (char *)stack->data + (size_t)t * y_block[j];
        }
        for (int e = 0; e < s->n_emit; e++) b->out_data[n_fetch + e] = emit[e] + (size_t)(t - t_lo) * emit_block[e];
        if (!st) st = exec(b);
        if (!st && s->post && (step + 1) % s->chunk == 0) { /* sum the chunk into the accumulators */
            for (int i = 0; i < s->n_post_in; i++) {
                lg_post_src src = s->post_src[i];
                const void *data = src.kind == LG_POST_EMIT ? emit[src.index]
                                   : src.kind == LG_POST_ACC ? out[first_post + src.index].data
                                                             : (const char *)in[src.index].data +
                                                                   (src.index < s->n_seq ? (size_t)t_lo * seq_block[src.index] : 0);
                body_feed(sp->post, i, data);
            }
            st = exec(sp->post);
        }
        for (int k = 0; !in_stack && k < s->n_state; k++) {
            unsigned char *tmp = ping[k];
            ping[k] = pong[k], pong[k] = tmp;
        }
        if (!st && s->has_stop) { /* the one sync per step a stop condition costs */
            double flag = 0;
            const lg_port *pt = &b->locs[b->fetch_locs[first_res - 1]].port;
            st = be->copy_d2h(be, &flag, stop, port_bytes(pt));
            if (!st && nonzero(&flag, pt->dtype)) break;
        }
    }
    for (int k = 0; !st && !in_stack && k < s->n_state; k++) st = be->copy_d2d(be, out[k].data, ping[k], buf_bytes(&out[k]));
    if (st) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", lg_last_error());
        st = lg_fail(st, "loop '%s': %s", n->name, msg);
    }
    return st;
}

/* Run p's schedule with its feeds and out_data bound. */
static lg_status run_schedule(lg_program *p)
{
    for (int s = 0; s < p->n_steps; s++) {
        const step *sp = &p->steps[s];
        const lg_node *n = &p->graph->nodes[sp->node];
        if (sp->alias) continue;
        lg_buf *in = p->scratch, *o = p->scratch + p->max_arity;
        for (int j = 0; j < n->n_in; j++) {
            const loc *l = &p->locs[p->args[sp->first_in + j]];
            in[j] = (lg_buf){loc_data(p, l), l->port.dtype, l->port.shape};
        }
        for (int j = 0; j < n->n_out; j++) {
            const loc *l = &p->locs[p->args[sp->first_out + j]];
            o[j] = (lg_buf){loc_data(p, l), l->port.dtype, l->port.shape};
        }
        const lg_backend *be = p->backend;
        lg_status st = n->op == LG_OP_LOOP ? run_loop(be, sp, n, in, o) : be->run_op(be, n, in, o);
        if (st) return st;
    }
    return LG_OK;
}

/* Copy p's fetches that its kernels did not write in place to out_data. */
static lg_status copy_fetches(lg_program *p)
{
    for (int i = 0; i < p->n_fetches; i++) {
        if (p->out_bound[i] && p->locs[p->fetch_locs[i]].feed == i) continue;
        const loc *l = &p->locs[p->fetch_locs[i]];
        const lg_backend *be = p->backend;
        lg_status st = (p->out_dev[i] ? be->copy_d2d : be->copy_d2h)(be, p->out_data[i], loc_data(p, l), port_bytes(&l->port));
        if (st) return st;
    }
    return LG_OK;
}

static lg_status exec(lg_program *p)
{
    lg_status st = run_schedule(p);
    return st ? st : copy_fetches(p);
}

/* Run the top level's schedule. On a backend that captures (p->cap.on):
 * the first run plainly, as a warm-up (cuBLAS's workspace and other lazy
 * setup must not happen inside a capture); the second captured as one
 * graph, then launched; later runs launch it while every address it has
 * built in is the same (a feed that lives in a mirror may move) and TF32
 * is as it was, and run plainly otherwise, without capturing again. Feeds
 * are copied in before and fetches out after, outside the graph. A capture
 * that fails (a kernel that syncs, the device refusing) is discarded, its
 * reason kept for lg_program_report, and not tried again: the run goes on
 * plainly. */
static lg_status run_top(lg_program *p)
{
    capture *c = &p->cap;
    const lg_backend *be = p->backend;
    if (!c->on || !c->warmed) {
        c->warmed = true;
        return run_schedule(p);
    }
    if (c->graph) {
        bound_addresses(p, true, c->now, 0);
        if (c->tf32 != lg_tf32_allowed() || memcmp(c->key, c->now, (size_t)c->n_key * sizeof *c->key) != 0) {
            c->plain++;
            return run_schedule(p);
        }
        c->replays++;
        return be->graph_launch(be, c->graph);
    }
    lg_status st = be->capture_begin(be), ran = LG_OK;
    if (!st) {
        ran = run_schedule(p);
        if (ran) snprintf(c->why, sizeof c->why, "capture failed: %s", lg_last_error());
        st = be->capture_end(be, ran == LG_OK, &c->graph, &c->n_nodes);
    }
    if (st) snprintf(c->why, sizeof c->why, "capture failed: %s", lg_last_error());
    if (st || ran) {
        c->on = false;
        return run_schedule(p);
    }
    bound_addresses(p, true, c->key, 0);
    c->tf32 = lg_tf32_allowed();
    return be->graph_launch(be, c->graph);
}

/* After a failed run on a device: wait for the kernels it queued and let
 * the sync consume what they recorded. Their error sites name this
 * program's nodes, which may be freed before anything else syncs the
 * device (lg_program_free), and a later run would otherwise report this
 * one's bad index as its own. The run's error stays the one reported. */
static void settle_failed_run(const lg_backend *be)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", lg_last_error());
    if (be->sync(be) != LG_OK) lg_fail(LG_OK, "%s", msg);
}

lg_status lg_program_run(lg_program *p, const lg_feed *feeds, int n_feeds, lg_tensor **out)
{
    if (!p) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_program_run: program is NULL");
    lg_status st = bind_feeds(p, feeds, n_feeds);
    if (!st) st = check_outs(p, out);
    if (st) return st;
    bool mine[p->n_fetches];
    st = alloc_outs(p, out, mine);
    if (!st) st = prepare(p);
    for (int i = 0; !st && i < p->n_fetches; i++) { /* an out in a mirror is written where the program runs */
        p->out_dev[i] = p->backend->host_memory || lg_tensor_mirror(out[i]);
        p->out_data[i] = lg_tensor_data(out[i]);
        if (lg_tensor_mirror(out[i])) st = lg_tensor_place(out[i], p->backend, &p->out_data[i]);
    }
    if (!st) st = run_top(p);
    if (!st) st = copy_fetches(p);
    if (!st) st = p->backend->sync(p->backend);
    for (int i = 0; !st && i < p->n_fetches; i++) {
        size_t at = 0;
        lg_mirror *m = lg_tensor_mirror_at(out[i], &at);
        if (m) lg_mirror_wrote(m, p->backend, at, lg_tensor_bytes(out[i]));
    }
    if (st && !p->backend->host_memory) settle_failed_run(p->backend);
    if (st) free_outs(p, out, mine);
    return st;
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
        if (!lg_op_is_compute(nd->op)) { /* a source: its own port unless given */
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
