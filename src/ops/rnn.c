/*
 * rnn.c — the fused recurrent op pair (rnn.h): shapes, the builder, and the
 * gradient rule, which is the rnn_grad node reading the forward's workspace.
 */
#include <string.h>

#include "graph/ops.h"
#include "ops/rnn.h"

static const struct cell_def {
    const char *name;
    int gates, states;
    int ws_planes; /* workspace width in H, see cpu_rnn.c for the planes */
    int scratch;   /* rnn_grad scratch per (t, b) row, in H */
} cell_defs[] = {
    [LG_RNN_SIMPLE_TANH] = {"simple_rnn_tanh", 1, 1, 2, 1},
    [LG_RNN_SIMPLE_RELU] = {"simple_rnn_relu", 1, 1, 2, 1},
    [LG_RNN_LSTM] = {"lstm", 4, 2, 7, 4},
    [LG_RNN_GRU] = {"gru_reset_after", 3, 1, 7, 6},
    [LG_RNN_GRU_RESET_BEFORE] = {"gru_reset_before", 3, 1, 5, 3},
};
_Static_assert(LG_ARRAY_LEN(cell_defs) == LG_RNN_CELL_COUNT, "a cell_defs row per lg_rnn_cell");

const char *lg_rnn_cell_name(lg_rnn_cell c) { return (unsigned)c < LG_RNN_CELL_COUNT ? cell_defs[c].name : "?"; }
int lg_rnn_cell_gates(lg_rnn_cell c) { return cell_defs[c].gates; }
int lg_rnn_states(lg_rnn_cell c) { return cell_defs[c].states; }
int lg_rnn_ws_planes(lg_rnn_cell c) { return cell_defs[c].ws_planes; }
int lg_rnn_scratch_width(lg_rnn_cell c) { return cell_defs[c].scratch; }

lg_rnn_layout lg_rnn_layout_of(lg_rnn_cell c, unsigned flags)
{
    bool lstm = c == LG_RNN_LSTM, bias = flags & LG_RNN_BIAS, mask = flags & LG_RNN_MASK, hmask = flags & LG_RNN_HMASK;
    lg_rnn_layout L;
    int k = 0;
    L.x = k++, L.h0 = k++, L.c0 = lstm ? k++ : -1, L.w = k++, L.u = k++;
    int grad_from = k;
    L.b = bias ? k++ : -1, L.mask = mask ? k++ : -1, L.hmask = hmask ? k++ : -1, L.n_in = k;
    k = 0;
    L.h_t = k++, L.c_t = lstm ? k++ : -1, L.ys = k++, L.ws = k++, L.n_out = k;
    k = grad_from; /* rnn_grad: x, h0, c0, W, U as rnn, then mask, hmask, ws, cotangents */
    L.g_mask = mask ? k++ : -1, L.g_hmask = hmask ? k++ : -1;
    L.g_ws = k++, L.g_dh = k++, L.g_dc = lstm ? k++ : -1, L.g_dys = k++, L.g_n_in = k;
    k = 0;
    L.g_dx = k++, L.g_dh0 = k++, L.g_dc0 = lstm ? k++ : -1, L.g_dw = k++, L.g_du = k++;
    L.g_db = bias ? k++ : -1, L.g_dhmask = hmask ? k++ : -1, L.g_scratch = k++, L.g_n_out = k;
    return L;
}

bool lg_rnn_attrs_ok(const lg_attrs *a)
{
    if (!a->ints || a->n_ints < 2 || (uint64_t)a->ints[0] >= LG_RNN_CELL_COUNT ||
        (uint64_t)a->ints[1] > LG_RNN_FLAGS_ALL)
        return false;
    unsigned flags = (unsigned)a->ints[1];
    bool stack = flags & LG_RNN_STACK;
    if (a->n_ints != (stack ? 3 : 2) && a->n_ints != (stack ? 5 : 4)) return false;
    if (a->n_ints >= 4 && (a->ints[2] < 0 || a->ints[3] < 0)) return false; /* the backend's sizes */
    int dirs = flags & LG_RNN_BIDIR ? 2 : 1;
    return !stack || (a->ints[a->n_ints - 1] >= 2 && a->ints[a->n_ints - 1] <= LG_RNN_MAX_LAYERS / dirs);
}

int lg_rnn_layer_count(const lg_attrs *a)
{
    return (unsigned)a->ints[1] & LG_RNN_STACK ? (int)a->ints[a->n_ints - 1] : 1;
}

int lg_rnn_parts(const lg_attrs *a)
{
    return lg_rnn_layer_count(a) * ((unsigned)a->ints[1] & LG_RNN_BIDIR ? 2 : 1);
}

bool lg_rnn_join_port(const lg_rnn_join *j, lg_port a, lg_port b, lg_port *out)
{
    if (a.dtype != b.dtype || a.shape.rank != 3 || b.shape.rank != 3 || a.shape.dims[0] != b.shape.dims[0] ||
        a.shape.dims[1] != b.shape.dims[1])
        return false;
    *out = a;
    if (j->half < 0) {
        out->shape.dims[2] = a.shape.dims[2] + b.shape.dims[2];
        return a.shape.dims[2] == b.shape.dims[2];
    }
    out->shape.dims[2] = a.shape.dims[2] / 2;
    return a.shape.dims[2] == b.shape.dims[2] && a.shape.dims[2] % 2 == 0;
}

int lg_rnn_output_count(const lg_attrs *a, bool grad)
{
    if (!lg_rnn_attrs_ok(a)) return 1; /* infer reports it */
    lg_rnn_layout L = lg_rnn_layout_of((lg_rnn_cell)a->ints[0], lg_rnn_part_flags((unsigned)a->ints[1], 0));
    return (grad ? L.g_n_out : L.n_out) * lg_rnn_parts(a);
}

/* Part q = 2 l + d of a stacked bidirectional node (rnn.h) with single
 * layout L and P parts. */
static void bidir_stack_part(lg_rnn_part *p, const lg_rnn_layout *L, bool grad, int q, int P)
{
    int n_in = grad ? L->g_n_in : L->n_in, n_out = grad ? L->g_n_out : L->n_out, l = q / 2;
    if (!grad) {
        for (int j = 0; j < n_in; j++) p->in[j] = q < 2 ? q * n_in + j : 2 * n_in + (q - 2) * (n_in - 1) + j - 1;
        if (q >= 2) { /* x: layer l - 1's ys joined */
            p->in[L->x] = LG_RNN_JOINED;
            p->join[0] = (lg_rnn_join){L->x, {-1 - ((2 * l - 2) * n_out + L->ys), -1 - ((2 * l - 1) * n_out + L->ys)}, -1};
        }
        return;
    }
    for (int j = 0; j < n_in - 1; j++) p->in[j] = q * (n_in - 1) + j;
    if (q >= 2) { /* x: its layer's two x slots (layer l - 1's ys) joined */
        p->in[L->x] = LG_RNN_JOINED;
        p->join[0] = (lg_rnn_join){L->x, {2 * l * (n_in - 1) + L->x, (2 * l + 1) * (n_in - 1) + L->x}, -1};
    }
    if (q >= P - 2) {
        p->in[L->g_dys] = P * (n_in - 1) + q - (P - 2);
        return;
    }
    /* dys: its direction's half of layer l + 1's dx summed */
    p->in[L->g_dys] = LG_RNN_JOINED;
    p->join[1] = (lg_rnn_join){L->g_dys, {-1 - ((2 * l + 2) * n_out + L->g_dx), -1 - ((2 * l + 3) * n_out + L->g_dx)},
                               q & 1};
}

lg_rnn_part lg_rnn_part_of(const lg_node *n, bool grad, int k, int64_t ints[4])
{
    unsigned flags = lg_rnn_node_flags(n);
    bool stack = flags & LG_RNN_STACK, sized = n->attrs.n_ints >= 4;
    lg_rnn_layout L = lg_rnn_layout_of(lg_rnn_node_cell(n), lg_rnn_part_flags(flags, 0));
    int n_in = grad ? L.g_n_in : L.n_in, n_out = grad ? L.g_n_out : L.n_out, layers = lg_rnn_parts(&n->attrs);
    lg_rnn_part p = {.node = *n, .out = k * n_out, .join = {{.at = -1}, {.at = -1}}};
    ints[0] = n->attrs.ints[0], ints[1] = lg_rnn_part_flags(flags, k);
    ints[2] = sized && k == 0 ? n->attrs.ints[2] : 0; /* part 0 holds the backend's spaces */
    ints[3] = sized && k == 0 ? n->attrs.ints[3] : 0;
    p.node.attrs.ints = ints;
    p.node.attrs.n_ints = sized ? 4 : 2;
    p.node.n_in = n_in, p.node.n_out = n_out;
    if (stack && (flags & LG_RNN_BIDIR)) {
        bidir_stack_part(&p, &L, grad, k, layers);
        return p;
    }
    for (int j = 0; j < n_in; j++) p.in[j] = (stack ? 0 : k * n_in) + j;
    if (stack && !grad && k > 0) { /* x: the layer below's ys */
        p.in[L.x] = -1 - ((k - 1) * n_out + L.ys);
        for (int j = 1; j < n_in; j++) p.in[j] = n_in + (k - 1) * (n_in - 1) + j - 1;
    }
    if (stack && grad) { /* dys (the last input): the layer above's dx, or the node's last input */
        for (int j = 0; j < n_in - 1; j++) p.in[j] = k * (n_in - 1) + j;
        p.in[L.g_dys] = k == layers - 1 ? layers * (n_in - 1) : -1 - ((k + 1) * n_out + L.g_dx);
    }
    return p;
}

/* The inputs of a merged node with these attributes. */
static int merged_inputs(const lg_attrs *a, bool grad)
{
    lg_rnn_layout L = lg_rnn_layout_of((lg_rnn_cell)a->ints[0], lg_rnn_part_flags((unsigned)a->ints[1], 0));
    int n_in = grad ? L.g_n_in : L.n_in, parts = lg_rnn_parts(a), dirs = (unsigned)a->ints[1] & LG_RNN_BIDIR ? 2 : 1;
    if (!((unsigned)a->ints[1] & LG_RNN_STACK)) return parts * n_in;
    return grad ? parts * (n_in - 1) + dirs : dirs * n_in + (parts - dirs) * (n_in - 1);
}

static bool dim_eq(int64_t a, int64_t b) { return a == b || a < 0 || b < 0; }

static bool port_is(lg_port p, lg_dtype dt, int rank) { return p.dtype == dt && p.shape.rank == rank; }

/* Check the inputs rnn and rnn_grad share (x, h0, c0, W, U, mask at
 * mask_at, hmask at hmask_at) and find T, B, I, H. n is a single node
 * (infer_parts checked its attributes). */
static bool infer_common(const lg_node *n, const lg_port *in, int mask_at, int hmask_at, int64_t *T, int64_t *B,
                         int64_t *H, char *err, size_t size)
{
    if ((n->attrs.ints[1] & LG_RNN_REPEAT) && !(n->attrs.ints[1] & LG_RNN_MASK))
        LG_INFER_FAIL("LG_RNN_REPEAT repeats outputs at masked steps: it needs LG_RNN_MASK");
    lg_rnn_cell c = lg_rnn_node_cell(n);
    lg_rnn_layout L = lg_rnn_layout_of(c, lg_rnn_node_flags(n));
    lg_port x = in[L.x];
    lg_dtype dt = x.dtype;
    if (!lg_is_float(dt) || x.shape.rank != 3) LG_INFER_FAIL("x must be f32 or f64 [T, B, I]");
    lg_port u = in[L.u], w = in[L.w], h0 = in[L.h0];
    int64_t h = u.shape.dims[0], gh = (int64_t)lg_rnn_cell_gates(c) * h;
    if (!port_is(u, dt, 2) || !dim_eq(u.shape.dims[1], gh)) LG_INFER_FAIL("U must be [H, G H] of x's dtype");
    if (!port_is(w, dt, 2) || !dim_eq(w.shape.dims[0], x.shape.dims[2]) || !dim_eq(w.shape.dims[1], gh))
        LG_INFER_FAIL("W must be [I, G H] of x's dtype");
    for (int k = 0; k < lg_rnn_states(c); k++) {
        lg_port s = in[k == 0 ? L.h0 : L.c0];
        if (!port_is(s, dt, 2) || !dim_eq(s.shape.dims[0], x.shape.dims[1]) || !dim_eq(s.shape.dims[1], h))
            LG_INFER_FAIL("states must be [B, H] of x's dtype");
    }
    if (mask_at >= 0) {
        lg_port m = in[mask_at];
        if (m.shape.rank != 2 || !dim_eq(m.shape.dims[0], x.shape.dims[0]) || !dim_eq(m.shape.dims[1], x.shape.dims[1]) ||
            (!lg_is_float(m.dtype) && m.dtype != LG_I32))
            LG_INFER_FAIL("mask must be [T, B]");
    }
    if (hmask_at >= 0) {
        lg_port m = in[hmask_at];
        if (!port_is(m, dt, 2) || !dim_eq(m.shape.dims[0], x.shape.dims[1]) || !dim_eq(m.shape.dims[1], h))
            LG_INFER_FAIL("hmask must be [B, H] of x's dtype");
    }
    *T = x.shape.dims[0];
    *B = x.shape.dims[1] >= 0 ? x.shape.dims[1] : h0.shape.dims[0];
    *H = h;
    return true;
}

/* ws's width and rnn_grad's scratch length: the backend's, where its
 * rnn_plan sized the node (4 attributes), else the CPU's implementation
 * choice (lg_rnn_cpu_sizes). */
static lg_status sizes_of(const lg_node *n, lg_dtype dt, int64_t T, int64_t B, int64_t I, int64_t H, int64_t *width,
                          int64_t *scratch)
{
    if (n->attrs.n_ints == 4) {
        *width = n->attrs.ints[2], *scratch = n->attrs.ints[3];
        return LG_OK;
    }
    return lg_rnn_cpu_sizes(lg_rnn_node_cell(n), lg_rnn_node_flags(n), dt, T, B, I, H, width, scratch);
}

/* A merged node as its parts (rnn.h), each checked by `one`; a single
 * node by `one` itself. */
typedef bool (*infer_fn)(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size);

static bool infer_parts(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size, bool grad,
                        infer_fn one)
{
    if (!lg_rnn_attrs_ok(&n->attrs)) LG_INFER_FAIL("bad rnn attributes");
    unsigned flags = lg_rnn_node_flags(n);
    if (!(flags & (LG_RNN_BIDIR | LG_RNN_STACK))) return one(n, in, out, err, size);
    if ((flags & LG_RNN_BIDIR) && (flags & LG_RNN_REVERSE))
        LG_INFER_FAIL("a bidirectional rnn's own flags have no LG_RNN_REVERSE");
    if (n->n_in != merged_inputs(&n->attrs, grad)) LG_INFER_FAIL("a merged rnn takes each part's inputs");
    int parts = lg_rnn_parts(&n->attrs);
    for (int i = 0; i < parts; i++) {
        int64_t ints[4];
        lg_rnn_part p = lg_rnn_part_of(n, grad, lg_rnn_part_order(flags, grad, i, parts), ints);
        lg_port pin[LG_ARRAY_LEN(p.in)];
        for (int j = 0; j < p.node.n_in; j++)
            if (p.in[j] != LG_RNN_JOINED) pin[j] = p.in[j] >= 0 ? in[p.in[j]] : out[-1 - p.in[j]];
        for (int k = 0; k < 2; k++) {
            const lg_rnn_join *jn = &p.join[k];
            if (jn->at < 0) continue;
            lg_port a = jn->from[0] >= 0 ? in[jn->from[0]] : out[-1 - jn->from[0]];
            lg_port b = jn->from[1] >= 0 ? in[jn->from[1]] : out[-1 - jn->from[1]];
            if (!lg_rnn_join_port(jn, a, b, &pin[jn->at]))
                LG_INFER_FAIL(jn->half < 0 ? "a stacked bidirectional layer reads the two [T, B, H] ys below"
                                           : "a stacked bidirectional layer's dys is half of the two [T, B, 2H] dx above");
        }
        if (!one(&p.node, pin, out + p.out, err, size)) return false;
    }
    int64_t ints[4];
    if ((flags & LG_RNN_BIDIR) && !lg_shape_equal(in[0].shape, in[lg_rnn_part_of(n, grad, 1, ints).in[0]].shape))
        LG_INFER_FAIL("a bidirectional rnn's directions read one x");
    return true;
}

static bool infer_rnn_one(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    int64_t T, B, H;
    lg_rnn_cell c = lg_rnn_node_cell(n);
    lg_rnn_layout L = lg_rnn_layout_of(c, lg_rnn_node_flags(n));
    if (!infer_common(n, in, L.mask, L.hmask, &T, &B, &H, err, size)) return false;
    if (L.b >= 0) {
        lg_port b = in[L.b];
        bool two = c == LG_RNN_GRU;
        int64_t gh = (int64_t)lg_rnn_cell_gates(c) * H;
        if (b.dtype != in[L.x].dtype || b.shape.rank != (two ? 2 : 1) || (two && b.shape.dims[0] != 2) ||
            b.shape.dims[b.shape.rank - 1] != gh)
            LG_INFER_FAIL(two ? "b must be [2, 3H]" : "b must be [G H]");
    }
    lg_dtype dt = in[L.x].dtype;
    int64_t width, scratch;
    if (sizes_of(n, dt, T, B, in[L.x].shape.dims[2], H, &width, &scratch)) LG_INFER_FAIL(lg_last_error());
    out[L.h_t] = (lg_port){dt, {2, {B, H}}};
    if (L.c_t >= 0) out[L.c_t] = out[L.h_t];
    out[L.ys] = (lg_port){dt, {3, {T, B, H}}};
    out[L.ws] = (lg_port){dt, {3, {T, B, width}}};
    return true;
}

static bool infer_rnn(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    return infer_parts(n, in, out, err, size, false, infer_rnn_one);
}

static bool infer_rnn_grad_one(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    int64_t T, B, H;
    lg_rnn_cell c = lg_rnn_node_cell(n);
    unsigned flags = lg_rnn_node_flags(n);
    lg_rnn_layout L = lg_rnn_layout_of(c, flags);
    if (!infer_common(n, in, L.g_mask, L.g_hmask, &T, &B, &H, err, size)) return false;
    if (flags & LG_RNN_FORWARD_ONLY) LG_INFER_FAIL("a forward-only rnn keeps no workspace to differentiate");
    lg_dtype dt = in[L.x].dtype;
    int64_t width, n_scratch;
    if (sizes_of(n, dt, T, B, in[L.x].shape.dims[2], H, &width, &n_scratch)) LG_INFER_FAIL(lg_last_error());
    lg_port ws = in[L.g_ws], st = {dt, {2, {B, H}}};
    if (!port_is(ws, dt, 3) || !dim_eq(ws.shape.dims[2], width))
        LG_INFER_FAIL("ws must be the rnn's workspace");
    if (!port_is(in[L.g_dys], dt, 3) || !dim_eq(in[L.g_dys].shape.dims[2], H) || !port_is(in[L.g_dh], dt, 2) ||
        (L.g_dc >= 0 && !port_is(in[L.g_dc], dt, 2)))
        LG_INFER_FAIL("cotangents must match the rnn's outputs");
    out[L.g_dx] = in[L.x];
    out[L.g_dh0] = st;
    if (L.g_dc0 >= 0) out[L.g_dc0] = st;
    out[L.g_dw] = in[L.w];
    out[L.g_du] = in[L.u];
    int64_t gh = (int64_t)lg_rnn_cell_gates(c) * H;
    if (L.g_db >= 0) out[L.g_db] = c == LG_RNN_GRU ? (lg_port){dt, {2, {2, gh}}} : (lg_port){dt, {1, {gh}}};
    if (L.g_dhmask >= 0) out[L.g_dhmask] = st;
    out[L.g_scratch] = (lg_port){dt, {1, {n_scratch}}};
    return true;
}

static bool infer_rnn_grad(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    return infer_parts(n, in, out, err, size, true, infer_rnn_grad_one);
}

int32_t lg_rnn_build(lg_rnn_cell cell, unsigned flags, lg_value x, const lg_value *states, lg_value w, lg_value u,
                     lg_rnn_extras e, const char *name)
{
    return lg_rnn_build_sized(cell, flags, NULL, x, states, w, u, e, name);
}

int32_t lg_rnn_build_sized(lg_rnn_cell cell, unsigned flags, const lg_rnn_sizes *sizes, lg_value x,
                           const lg_value *states, lg_value w, lg_value u, lg_rnn_extras e, const char *name)
{
    if ((unsigned)cell >= LG_RNN_CELL_COUNT || flags > LG_RNN_FLAGS_ALL || (flags & (LG_RNN_BIDIR | LG_RNN_STACK)) ||
        !states) {
        if (lg_value_ok(x)) lg_graph_fail(x.graph, "rnn: bad cell %d or flags %u", (int)cell, flags);
        return -1;
    }
    lg_rnn_layout L = lg_rnn_layout_of(cell, flags);
    lg_value in[9];
    in[L.x] = x, in[L.h0] = states[0], in[L.w] = w, in[L.u] = u;
    if (L.c0 >= 0) in[L.c0] = states[1];
    if (L.b >= 0) in[L.b] = e.b;
    if (L.mask >= 0) in[L.mask] = e.mask;
    if (L.hmask >= 0) in[L.hmask] = e.hmask;
    bool sized = sizes && (sizes->ws_width || sizes->scratch);
    int64_t ints[4] = {cell, flags, sized ? sizes->ws_width : 0, sized ? sizes->scratch : 0};
    return lg_node_build(NULL, LG_OP_RNN, in, L.n_in, &(lg_attrs){.ints = ints, .n_ints = sized ? 4 : 2}, name);
}

/* Zeros shaped like output k of node where no gradient reaches it. */
static lg_value or_zeros(lg_graph *g, int32_t node, int k, lg_value dy)
{
    if (lg_value_ok(dy)) return dy;
    lg_value y = lg_value_of(g, node, k);
    return lg_broadcast_like(lg_scalar_like(y, 0), y);
}

static void grad_rnn(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    const lg_node *n = lg_node_at(g, node);
    lg_rnn_cell c = lg_rnn_node_cell(n);
    unsigned flags = lg_rnn_node_flags(n);
    if (flags & (LG_RNN_BIDIR | LG_RNN_STACK)) {
        lg_graph_fail(g, "rnn '%s': a merged rnn has no gradient rule (the merge_rnn pass makes it after autodiff)",
                      n->name);
        return;
    }
    lg_rnn_layout L = lg_rnn_layout_of(c, flags);
    /* the backend's sizes travel with the cell and flags (copied: building
     * nodes below may move n) */
    int64_t ints[4];
    int n_ints = n->attrs.n_ints;
    memcpy(ints, n->attrs.ints, (size_t)n_ints * sizeof *ints);
    lg_value in[12];
    in[L.x] = lg_node_input(g, node, L.x);
    in[L.h0] = lg_node_input(g, node, L.h0);
    if (L.c0 >= 0) in[L.c0] = lg_node_input(g, node, L.c0);
    in[L.w] = lg_node_input(g, node, L.w);
    in[L.u] = lg_node_input(g, node, L.u);
    if (L.mask >= 0) in[L.g_mask] = lg_node_input(g, node, L.mask);
    if (L.hmask >= 0) in[L.g_hmask] = lg_node_input(g, node, L.hmask);
    in[L.g_ws] = lg_value_of(g, node, L.ws);
    in[L.g_dh] = or_zeros(g, node, L.h_t, dy[L.h_t]);
    if (L.g_dc >= 0) in[L.g_dc] = or_zeros(g, node, L.c_t, dy[L.c_t]);
    in[L.g_dys] = or_zeros(g, node, L.ys, dy[L.ys]);
    int32_t id = lg_node_build(NULL, LG_OP_RNN_GRAD, in, L.g_n_in, &(lg_attrs){.ints = ints, .n_ints = n_ints}, NULL);
    if (id < 0) return;
    dx[L.x] = lg_value_of(g, id, L.g_dx);
    dx[L.h0] = lg_value_of(g, id, L.g_dh0);
    if (L.c0 >= 0) dx[L.c0] = lg_value_of(g, id, L.g_dc0);
    dx[L.w] = lg_value_of(g, id, L.g_dw);
    dx[L.u] = lg_value_of(g, id, L.g_du);
    if (L.b >= 0) dx[L.b] = lg_value_of(g, id, L.g_db);
    if (L.hmask >= 0) dx[L.hmask] = lg_value_of(g, id, L.g_dhmask);
}

const lg_op_def lg_op_def_rnn = {"rnn", -1, infer_rnn, grad_rnn};
const lg_op_def lg_op_def_rnn_grad = {"rnn_grad", -1, infer_rnn_grad, NULL};
