/*
 * shape.c — ops that move elements without arithmetic (reshape, transpose,
 * slice, concat, split, broadcast) and sum_to, the reverse of broadcasting.
 *
 * attrs: reshape and broadcast_to ints = target dims; transpose ints = perm;
 * slice and unslice axis, ints = {start, size}; concat and split axis, split
 * ints = piece sizes; expand_dims and squeeze axis.
 *
 * Dims and attributes come from users: sums and products of them are
 * checked (__builtin_*_overflow) and fail inference rather than wrap.
 */
#include "graph/ops.h"
#include "ops/op.h"

/* ---- reshape family -------------------------------------------------------- */

static bool infer_reshape(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    lg_shape t = {.rank = n->attrs.n_ints};
    int infer_at = -1;
    int64_t known = 1;
    for (int i = 0; i < t.rank; i++) {
        t.dims[i] = n->attrs.ints[i];
        if (t.dims[i] == -1) infer_at = i;
        else if (__builtin_mul_overflow(known, t.dims[i], &known)) LG_INFER_FAIL("the target's dims multiply past int64");
    }
    int64_t total = lg_shape_numel(in[0].shape);
    if (infer_at >= 0 && total >= 0) {
        if (total % known) LG_INFER_FAIL("the element count is not divisible by the known target dims");
        t.dims[infer_at] = total / known;
    } else if (infer_at < 0 && total >= 0 && total != known) {
        LG_INFER_FAIL("the element count differs from the target's");
    }
    out[0] = (lg_port){in[0].dtype, t};
    return true;
}

lg_value lg_reshape(lg_value x, lg_shape shape)
{
    if (!lg_value_ok(x)) return lg_value_invalid();
    int unknown = 0;
    bool ok = shape.rank >= 0 && shape.rank <= LG_MAX_RANK;
    for (int i = 0; ok && i < shape.rank; i++) {
        unknown += shape.dims[i] == -1;
        ok = shape.dims[i] >= 1 || shape.dims[i] == -1;
    }
    if (!ok || unknown > 1)
        return lg_graph_fail(x.graph, "reshape '%s': bad target %s (dims >= 1, at most one -1)", lg_value_name(x),
                             lg_shape_cstr(shape));
    return lg_build(LG_OP_RESHAPE, &x, 1, &(lg_attrs){.ints = shape.dims, .n_ints = shape.rank});
}

static bool infer_reshape_like(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    int64_t a = lg_shape_numel(in[0].shape), b = lg_shape_numel(in[1].shape);
    if (a >= 0 && b >= 0 && a != b) LG_INFER_FAIL("element counts differ");
    out[0] = (lg_port){in[0].dtype, in[1].shape};
    return true;
}

lg_value lg_reshape_like(lg_value x, lg_value like)
{
    lg_value in[2] = {x, like};
    return lg_build(LG_OP_RESHAPE_LIKE, in, 2, NULL);
}

static bool infer_expand_dims(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    lg_shape s = in[0].shape;
    int axis = n->attrs.axis;
    if (s.rank >= LG_MAX_RANK) LG_INFER_FAIL("the result would exceed the maximum rank");
    if (axis < 0 || axis > s.rank) LG_INFER_FAIL("axis out of range");
    for (int i = s.rank; i > axis; i--) s.dims[i] = s.dims[i - 1];
    s.dims[axis] = 1;
    s.rank++;
    out[0] = (lg_port){in[0].dtype, s};
    return true;
}

static bool infer_squeeze(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    lg_shape s = in[0].shape;
    int axis = n->attrs.axis;
    if (axis < 0 || axis >= s.rank) LG_INFER_FAIL("axis out of range");
    if (s.dims[axis] != 1 && s.dims[axis] != -1) LG_INFER_FAIL("the squeezed dim is not 1");
    for (int i = axis; i < s.rank - 1; i++) s.dims[i] = s.dims[i + 1];
    s.rank--;
    out[0] = (lg_port){in[0].dtype, s};
    return true;
}

lg_value lg_expand_dims(lg_value x, int axis)
{
    if (!lg_value_ok(x)) return lg_value_invalid();
    int rank = lg_value_rank(x);
    int a = axis < 0 ? axis + rank + 1 : axis;
    if (a < 0 || a > rank)
        return lg_graph_fail(x.graph, "expand_dims '%s': axis %d out of range for rank %d", lg_value_name(x), axis, rank);
    return lg_build(LG_OP_EXPAND_DIMS, &x, 1, &(lg_attrs){.axis = a});
}

lg_value lg_squeeze(lg_value x, int axis)
{
    if (!lg_value_ok(x)) return lg_value_invalid();
    int a = lg_axis_norm(axis, lg_value_rank(x));
    if (a < 0)
        return lg_graph_fail(x.graph, "squeeze '%s': axis %d out of range for %s", lg_value_name(x), axis,
                             lg_shape_cstr(lg_value_shape(x)));
    return lg_build(LG_OP_SQUEEZE, &x, 1, &(lg_attrs){.axis = a});
}

#define X(i) lg_node_input(g, node, i)

static void grad_reshape(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    dx[0] = lg_reshape_like(dy[0], X(0));
}

static void grad_expand_dims(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    dx[0] = lg_squeeze(dy[0], g->nodes[node].attrs.axis);
}

static void grad_squeeze(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    dx[0] = lg_expand_dims(dy[0], g->nodes[node].attrs.axis);
}

/* ---- transpose -------------------------------------------------------------- */

static bool infer_transpose(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    lg_shape s = in[0].shape, o = {.rank = s.rank};
    if (n->attrs.n_ints != s.rank) LG_INFER_FAIL("the permutation's length differs from the rank");
    uint32_t seen = 0;
    for (int i = 0; i < s.rank; i++) {
        int64_t p = n->attrs.ints[i];
        if (p < 0 || p >= s.rank || (seen & (1u << p))) LG_INFER_FAIL("not a permutation of the axes");
        seen |= 1u << p;
        o.dims[i] = s.dims[p];
    }
    out[0] = (lg_port){in[0].dtype, o};
    return true;
}

lg_value lg_transpose(lg_value x, const int *perm)
{
    if (!lg_value_ok(x)) return lg_value_invalid();
    int rank = lg_value_rank(x);
    int64_t p[LG_MAX_RANK];
    for (int i = 0; i < rank; i++) p[i] = perm ? perm[i] : rank - 1 - i;
    return lg_build(LG_OP_TRANSPOSE, &x, 1, &(lg_attrs){.ints = p, .n_ints = rank});
}

static void grad_transpose(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    const lg_attrs *a = &g->nodes[node].attrs;
    int inv[LG_MAX_RANK];
    for (int i = 0; i < a->n_ints; i++) inv[a->ints[i]] = i;
    dx[0] = lg_transpose(dy[0], inv);
}

/* ---- slice and its gradient --------------------------------------------------- */

static bool infer_slice(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    /* slice: in = {x}; unslice: in = {dy, like}, output shaped like */
    bool un = n->op == LG_OP_UNSLICE;
    lg_shape full = in[un ? 1 : 0].shape;
    int axis = n->attrs.axis;
    if (axis >= full.rank) LG_INFER_FAIL("axis out of range");
    int64_t start = n->attrs.ints[0], len = n->attrs.ints[1], dim = full.dims[axis], end = 0;
    if (len >= 0 && __builtin_add_overflow(start, len, &end)) LG_INFER_FAIL("start + size overflows int64");
    if (dim >= 0 && (start >= dim || (len >= 0 && end > dim))) LG_INFER_FAIL("the slice runs past the end of the axis");
    lg_shape piece = full;
    piece.dims[axis] = len >= 0 ? len : dim >= 0 ? dim - start : -1;
    if (un) {
        lg_shape d = in[0].shape;
        bool ok = d.rank == full.rank;
        for (int i = 0; ok && i < d.rank; i++)
            ok = d.dims[i] == piece.dims[i] || d.dims[i] == -1 || piece.dims[i] == -1;
        if (!ok) LG_INFER_FAIL("the gradient does not have the slice's shape");
        out[0] = (lg_port){in[0].dtype, full};
    } else {
        out[0] = (lg_port){in[0].dtype, piece};
    }
    return true;
}

lg_value lg_slice(lg_value x, int axis, int64_t start, int64_t len)
{
    if (!lg_value_ok(x)) return lg_value_invalid();
    lg_shape s = lg_value_shape(x);
    int a = lg_axis_norm(axis, s.rank);
    if (a < 0 || start < 0 || len == 0 || len < -1)
        return lg_graph_fail(x.graph, "slice '%s': axis %d, start %lld, size %lld do not fit %s", lg_value_name(x), axis,
                             (long long)start, (long long)len, lg_shape_cstr(s));
    int64_t se[2] = {start, len};
    return lg_build(LG_OP_SLICE, &x, 1, &(lg_attrs){.axis = a, .ints = se, .n_ints = 2});
}

static void grad_slice(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    lg_attrs a = g->nodes[node].attrs;
    lg_value in[2] = {dy[0], X(0)};
    dx[0] = lg_build(LG_OP_UNSLICE, in, 2, &a);
}

static void grad_unslice(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    const lg_attrs *a = &g->nodes[node].attrs;
    dx[0] = lg_slice(dy[0], a->axis, a->ints[0], a->ints[1]);
}

/* ---- concat and split ----------------------------------------------------------- */

static bool infer_concat(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    lg_shape s = in[0].shape;
    int axis = n->attrs.axis;
    if (axis >= s.rank) LG_INFER_FAIL("axis out of range");
    for (int k = 1; k < n->n_in; k++) {
        lg_shape t = in[k].shape;
        if (in[k].dtype != in[0].dtype) LG_INFER_FAIL("dtypes differ");
        if (t.rank != s.rank) LG_INFER_FAIL("ranks differ");
        for (int i = 0; i < s.rank; i++) {
            if (i == axis) {
                if (s.dims[i] < 0 || t.dims[i] < 0) s.dims[i] = -1;
                else if (__builtin_add_overflow(s.dims[i], t.dims[i], &s.dims[i]))
                    LG_INFER_FAIL("the sizes along the axis add past int64");
            } else if (s.dims[i] != t.dims[i]) {
                if (s.dims[i] != -1 && t.dims[i] != -1) LG_INFER_FAIL("dims other than the axis differ");
                if (s.dims[i] == -1) s.dims[i] = t.dims[i];
            }
        }
    }
    out[0] = (lg_port){in[0].dtype, s};
    return true;
}

lg_value lg_concat(const lg_value *xs, int n, int axis)
{
    if (!xs || n < 1) return lg_value_invalid();
    lg_graph *g = lg_values_graph(xs, n, "concat");
    if (!g) return lg_value_invalid();
    int a = lg_axis_norm(axis, lg_value_rank(xs[0]));
    if (a < 0) return lg_graph_fail(g, "concat: axis %d out of range for rank %d", axis, lg_value_rank(xs[0]));
    return lg_build(LG_OP_CONCAT, xs, n, &(lg_attrs){.axis = a});
}

static void grad_concat(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    int axis = g->nodes[node].attrs.axis, n_in = g->nodes[node].n_in;
    int64_t start = 0;
    for (int k = 0; k < n_in; k++) {
        int64_t len = lg_value_shape(X(k)).dims[axis];
        if (len < 0) {
            lg_graph_fail(g, "concat '%s': its gradient needs the sizes along axis %d at build time",
                          g->nodes[node].name, axis);
            return;
        }
        dx[k] = lg_slice(dy[0], axis, start, len);
        start += len;
    }
}

static bool infer_split(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    lg_shape s = in[0].shape;
    int axis = n->attrs.axis;
    if (axis >= s.rank) LG_INFER_FAIL("axis out of range");
    int64_t total = 0;
    for (int k = 0; k < n->attrs.n_ints; k++) {
        out[k] = in[0];
        out[k].shape.dims[axis] = n->attrs.ints[k];
        if (__builtin_add_overflow(total, n->attrs.ints[k], &total)) LG_INFER_FAIL("the piece sizes add past int64");
    }
    if (s.dims[axis] >= 0 && total != s.dims[axis]) LG_INFER_FAIL("the piece sizes do not add up to the axis");
    return true;
}

void lg_split(lg_value x, int axis, const int64_t *sizes, int n, lg_value *outs)
{
    if (!outs || n < 1) {
        if (lg_value_ok(x)) lg_graph_fail(x.graph, "split '%s': needs n >= 1 and outs", lg_value_name(x));
        return;
    }
    for (int k = 0; k < n; k++) outs[k] = lg_value_invalid();
    if (!lg_value_ok(x)) return;
    lg_shape s = lg_value_shape(x);
    int a = lg_axis_norm(axis, s.rank);
    if (a < 0) {
        lg_graph_fail(x.graph, "split '%s': axis %d out of range for %s", lg_value_name(x), axis, lg_shape_cstr(s));
        return;
    }
    int64_t *len = malloc((size_t)n * sizeof *len);
    if (!len) {
        lg_graph_fail(x.graph, "split: out of memory");
        return;
    }
    bool ok = true;
    for (int k = 0; k < n; k++) {
        len[k] = sizes ? sizes[k] : s.dims[a] > 0 && s.dims[a] % n == 0 ? s.dims[a] / n : -1;
        ok = ok && len[k] >= 1;
    }
    if (!ok) {
        lg_graph_fail(x.graph, "split '%s': %s %s along axis %d into %d pieces", lg_value_name(x),
                      sizes ? "a piece size below 1 for" : "cannot evenly split", lg_shape_cstr(s), a, n);
    } else {
        int32_t id = lg_node_build(NULL, LG_OP_SPLIT, &x, 1, &(lg_attrs){.axis = a, .ints = len, .n_ints = n}, NULL);
        for (int k = 0; id >= 0 && k < n; k++) outs[k] = lg_value_of(x.graph, id, k);
    }
    free(len);
}

static void grad_split(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    int n_out = g->nodes[node].n_out, axis = g->nodes[node].attrs.axis;
    lg_value *parts = malloc((size_t)n_out * sizeof *parts);
    if (!parts) {
        lg_graph_fail(g, "split gradient: out of memory");
        return;
    }
    for (int k = 0; k < n_out; k++) {
        lg_value yk = lg_value_of(g, node, k);
        parts[k] = lg_value_ok(dy[k]) ? dy[k] : lg_broadcast_like(lg_scalar_like(yk, 0), yk);
    }
    dx[0] = lg_concat(parts, n_out, axis);
    free(parts);
}

/* ---- broadcasting -------------------------------------------------------------- */

/* Can shape `from` broadcast to `to` (numpy rules, -1 matching anything)? */
static bool broadcasts_to(lg_shape from, lg_shape to)
{
    if (from.rank > to.rank) return false;
    for (int i = 0; i < from.rank; i++) {
        int64_t f = from.dims[from.rank - 1 - i], t = to.dims[to.rank - 1 - i];
        if (f != 1 && f != t && f != -1 && t != -1) return false;
    }
    return true;
}

static bool infer_broadcast_to(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    lg_shape t;
    if (n->op == LG_OP_BROADCAST_TO) {
        t.rank = n->attrs.n_ints;
        for (int i = 0; i < t.rank; i++) t.dims[i] = n->attrs.ints[i];
    } else {
        t = in[1].shape;
    }
    if (!broadcasts_to(in[0].shape, t)) LG_INFER_FAIL("the first shape does not broadcast to the target");
    out[0] = (lg_port){in[0].dtype, t};
    return true;
}

static bool infer_sum_to(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    if (!broadcasts_to(in[1].shape, in[0].shape)) LG_INFER_FAIL("the target does not broadcast to the first shape");
    out[0] = (lg_port){in[0].dtype, in[1].shape};
    return true;
}

lg_value lg_broadcast_to(lg_value x, lg_shape shape)
{
    if (!lg_value_ok(x)) return lg_value_invalid();
    bool ok = shape.rank >= 0 && shape.rank <= LG_MAX_RANK;
    for (int i = 0; ok && i < shape.rank; i++) ok = shape.dims[i] >= 1;
    if (!ok) return lg_graph_fail(x.graph, "broadcast_to '%s': target %s is not concrete", lg_value_name(x), lg_shape_cstr(shape));
    return lg_build(LG_OP_BROADCAST_TO, &x, 1, &(lg_attrs){.ints = shape.dims, .n_ints = shape.rank});
}

lg_value lg_broadcast_like(lg_value x, lg_value like)
{
    lg_value in[2] = {x, like};
    return lg_build(LG_OP_BROADCAST_LIKE, in, 2, NULL);
}

/* Skips the node when x already has like's (fully known) shape. */
lg_value lg_sum_to(lg_value x, lg_value like)
{
    if (lg_value_ok(x) && lg_value_ok(like) && lg_shape_equal(lg_value_shape(x), lg_value_shape(like)) &&
        lg_shape_numel(lg_value_shape(x)) >= 0)
        return x;
    lg_value in[2] = {x, like};
    return lg_build(LG_OP_SUM_TO, in, 2, NULL);
}

static void grad_broadcast(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    dx[0] = lg_sum_to(dy[0], X(0));
}

static void grad_sum_to(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    dx[0] = lg_broadcast_like(dy[0], X(0));
}

#undef X

const lg_op_def lg_op_def_reshape = {"reshape", 1, infer_reshape, grad_reshape};
const lg_op_def lg_op_def_reshape_like = {"reshape_like", 2, infer_reshape_like, grad_reshape};
const lg_op_def lg_op_def_expand_dims = {"expand_dims", 1, infer_expand_dims, grad_expand_dims};
const lg_op_def lg_op_def_squeeze = {"squeeze", 1, infer_squeeze, grad_squeeze};
const lg_op_def lg_op_def_transpose = {"transpose", 1, infer_transpose, grad_transpose};
const lg_op_def lg_op_def_slice = {"slice", 1, infer_slice, grad_slice};
const lg_op_def lg_op_def_unslice = {"unslice", 2, infer_slice, grad_unslice};
const lg_op_def lg_op_def_concat = {"concat", -1, infer_concat, grad_concat};
const lg_op_def lg_op_def_split = {"split", 1, infer_split, grad_split};
const lg_op_def lg_op_def_broadcast_to = {"broadcast_to", 1, infer_broadcast_to, grad_broadcast};
const lg_op_def lg_op_def_broadcast_like = {"broadcast_like", 2, infer_broadcast_to, grad_broadcast};
const lg_op_def lg_op_def_sum_to = {"sum_to", 2, infer_sum_to, grad_sum_to};
