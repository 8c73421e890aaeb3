/*
 * fuse_rnn_match.c — match a loop body against SimpleRNN, LSTM and GRU
 * (fuse_rnn_match.h).
 *
 * Two levels. The gate level reads a pre-activation as a linear form: a
 * list of terms, each "source times columns [start, start + width) of an
 * invariant", where the source is x_t, h_{t-1}, r * h_{t-1} (the reset
 * before GRU's U_h input) or 1 (a bias); adds concatenate term lists, slices
 * and splits along the last axis shift the columns. The cell level walks the
 * few ops around the gates (the state update), trying each operand order of
 * every add and mul, and hands each gate to the gate level with the
 * activation it must have. The first mismatch is the reason.
 */
#include <stdarg.h>
#include <string.h>

#include "graph/passes/fuse_rnn_match.h"

typedef enum src_kind { SRC_X, SRC_H, SRC_RH, SRC_ONE, SRC_NONE } src_kind;

static const char *const src_names[] = {"x_t W", "h U", "(r h) U", "a bias", "nothing"};

typedef struct term {
    src_kind src;
    int inv;
    int64_t start, row;
} term;

enum { MAX_TERMS = 8, MAX_DEPTH = 64 };

/* A [B, width] value as sum of terms, each width columns wide. */
typedef struct lform {
    term t[MAX_TERMS];
    int n;
    int64_t width;
} lform;

typedef struct mctx {
    const lg_loop_spec *s;
    const lg_graph *body;
    lg_rnn_match *m;
    const char *cell; /* "LSTM", "GRU", "SimpleRNN", for reasons */
    int gate;         /* the gate being read */
    int32_t r_node;   /* GRU: the reset gate's activation, once seen; -1 */
    int x_mask, h_mask; /* the dropout masks read so far: MASK_UNSEEN, -1 (unmasked) or the invariant */
    bool failed;
} mctx;

enum { MASK_UNSEEN = -2 };

static bool fail(mctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(mctx *c, const char *fmt, ...)
{
    if (!c->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->m->reason, sizeof c->m->reason, fmt, ap);
        va_end(ap);
        c->failed = true;
    }
    return false;
}

static const lg_node *node_of(const mctx *c, lg_ref r) { return &c->body->nodes[r.node]; }
static bool ref_eq(lg_ref a, lg_ref b) { return a.node == b.node && a.out == b.out; }
static const char *op_name(lg_op op) { return lg_op_defs[op]->name; }

typedef enum role { ROLE_NONE, ROLE_SEQ, ROLE_STATE, ROLE_INV } role;

/* What body value r is: a sequence's step, a state or an invariant (index
 * among its kind in *k), or none of them. */
static role role_of(const mctx *c, lg_ref r, int *k)
{
    const lg_loop_spec *s = c->s;
    if (r.out != 0 || c->body->nodes[r.node].op != LG_OP_INPUT) return ROLE_NONE;
    for (int i = 0; i < s->n_seq + s->n_state + s->n_inv; i++) {
        if (s->inputs[i] != r.node) continue;
        if (i < s->n_seq) return *k = i, ROLE_SEQ;
        if (i < s->n_seq + s->n_state) return *k = i - s->n_seq, ROLE_STATE;
        return *k = i - s->n_seq - s->n_state, ROLE_INV;
    }
    return ROLE_NONE;
}

static bool is_state(const mctx *c, lg_ref r, int state)
{
    int k;
    return role_of(c, r, &k) == ROLE_STATE && k == state;
}

/* Is r a body input of role `want` (index in *k), alone (*mask -1) or
 * times an invariant of its shape (*mask: that invariant): Keras's dropout
 * mask on x_t and recurrent dropout mask on h_{t-1}? */
static bool masked_read(const mctx *c, lg_ref r, role want, int *k, int *mask)
{
    *mask = -1;
    if (role_of(c, r, k) == want) return true;
    const lg_node *n = node_of(c, r);
    if (n->op != LG_OP_MUL) return false;
    for (int i = 0; i < 2; i++) {
        const lg_node *in = node_of(c, n->in[i]);
        if (role_of(c, n->in[i], k) == want && role_of(c, n->in[1 - i], mask) == ROLE_INV &&
            lg_shape_equal(n->out[0].shape, in->out[n->in[i].out].shape))
            return true;
    }
    *mask = -1;
    return false;
}

static bool is_h_read(const mctx *c, lg_ref r)
{
    int k, mask;
    return masked_read(c, r, ROLE_STATE, &k, &mask) && k == c->m->h_state;
}

/* Every product reads `what` with the same mask (or none): *seen keeps the
 * first. */
static bool same_mask(mctx *c, int *seen, int mask, const char *what)
{
    if (*seen == MASK_UNSEEN) *seen = mask;
    if (*seen == mask) return true;
    if (*seen < 0 || mask < 0)
        return fail(c, "gate %d reads %s %s where another product reads it %s", c->gate, what,
                    mask < 0 ? "unmasked" : "times a dropout mask", mask < 0 ? "times a dropout mask" : "unmasked");
    return fail(c, "gate %d reads %s times another dropout mask than another product", c->gate, what);
}

static bool is_act(lg_op op)
{
    switch (op) {
    case LG_OP_SIGMOID:
    case LG_OP_HARD_SIGMOID:
    case LG_OP_TANH:
    case LG_OP_RELU:
    case LG_OP_ELU:
    case LG_OP_SOFTPLUS:
    case LG_OP_SOFTSIGN: return true;
    default: return false;
    }
}

static int64_t last_dim(const lg_node *n, int out)
{
    lg_shape s = n->out[out].shape;
    return s.rank ? s.dims[s.rank - 1] : 1;
}

/* ---- the gate level ------------------------------------------------------- */

static bool lform_of(mctx *c, lg_ref r, lform *f, int depth);

/* The source of a matmul's left operand a. */
static bool matmul_source(mctx *c, lg_ref a, src_kind *src)
{
    int k, mask;
    if (masked_read(c, a, ROLE_SEQ, &k, &mask)) {
        if (c->m->x_seq >= 0 && c->m->x_seq != k) return fail(c, "gate %d reads a second sequence", c->gate);
        c->m->x_seq = k;
        if (!same_mask(c, &c->x_mask, mask, "x_t")) return false;
        return *src = SRC_X, true;
    }
    if (masked_read(c, a, ROLE_STATE, &k, &mask)) {
        if (k != c->m->h_state) return fail(c, "gate %d projects the state c through a matmul", c->gate);
        if (!same_mask(c, &c->h_mask, mask, "h")) return false;
        return *src = SRC_H, true;
    }
    const lg_node *n = node_of(c, a);
    if (n->op == LG_OP_MUL) {
        for (int i = 0; i < 2; i++) {
            lg_ref p = n->in[i], q = n->in[1 - i];
            if (role_of(c, p, &k) == ROLE_SEQ)
                return fail(c, "gate %d multiplies x_t by %s, not by an invariant mask", c->gate,
                            op_name(node_of(c, q)->op));
            if (!masked_read(c, p, ROLE_STATE, &k, &mask) || k != c->m->h_state) continue;
            const lg_node *qn = node_of(c, q);
            if (!is_act(qn->op))
                return fail(c, "gate %d multiplies h by %s (not an invariant dropout mask or the reset gate) before U",
                            c->gate, op_name(qn->op));
            if (c->r_node >= 0 && c->r_node != q.node)
                return fail(c, "h is multiplied by two different gates before U");
            c->r_node = q.node;
            if (!same_mask(c, &c->h_mask, mask, "h")) return false;
            return *src = SRC_RH, true;
        }
    }
    return fail(c, "gate %d multiplies %s (not x_t or h) by a weight", c->gate, op_name(n->op));
}

static bool matmul_term(mctx *c, const lg_node *n, lform *f, int64_t width)
{
    if (n->attrs.trans_a || n->attrs.trans_b) return fail(c, "gate %d has a transposed matmul", c->gate);
    src_kind src;
    if (!matmul_source(c, n->in[0], &src)) return false;
    lg_ref w = n->in[1];
    int64_t start = 0;
    const lg_node *wn = node_of(c, w);
    if (wn->op == LG_OP_SLICE) {
        if (wn->attrs.axis != 1) return fail(c, "gate %d's weight is sliced along its rows", c->gate);
        start = wn->attrs.ints[0];
        w = wn->in[0];
    }
    int k;
    if (role_of(c, w, &k) != ROLE_INV)
        return fail(c, "gate %d's weight is computed in the body (%s), not a loop invariant", c->gate,
                    op_name(node_of(c, w)->op));
    if (node_of(c, w)->out[0].shape.rank != 2) return fail(c, "gate %d's weight is not a matrix", c->gate);
    f->n = 1;
    f->width = width;
    f->t[0] = (term){src, k, start, -1};
    return true;
}

/* Columns [start, start + size) of f. */
static void restrict_cols(lform *f, int64_t start, int64_t size)
{
    for (int i = 0; i < f->n; i++) f->t[i].start += start;
    f->width = size;
}

static bool lform_of(mctx *c, lg_ref r, lform *f, int depth)
{
    if (depth > MAX_DEPTH) return fail(c, "gate %d's pre-activation is too deep to read", c->gate);
    const lg_node *n = node_of(c, r);
    int64_t width = last_dim(n, r.out);
    int k;
    switch (n->op) {
    case LG_OP_ADD: {
        lform b;
        if (!lform_of(c, n->in[0], f, depth + 1) || !lform_of(c, n->in[1], &b, depth + 1)) return false;
        if (f->n + b.n > MAX_TERMS) return fail(c, "gate %d sums more than %d terms", c->gate, MAX_TERMS);
        for (int i = 0; i < b.n; i++) f->t[f->n++] = b.t[i];
        f->width = width;
        return true;
    }
    case LG_OP_SLICE:
    case LG_OP_SPLIT: {
        int rank = n->out[r.out].shape.rank, axis = n->attrs.axis;
        int64_t size = n->out[r.out].shape.dims[axis], start = 0;
        if (n->op == LG_OP_SLICE) start = n->attrs.ints[0];
        else
            for (int i = 0; i < r.out; i++) start += n->attrs.ints[i];
        if (axis == rank - 1) {
            if (!lform_of(c, n->in[0], f, depth + 1)) return false;
            restrict_cols(f, start, size);
            return true;
        }
        if (axis == 0 && rank == 2 && size == 1 && role_of(c, n->in[0], &k) == ROLE_INV) { /* a bias row */
            f->n = 1;
            f->width = width;
            f->t[0] = (term){SRC_ONE, k, 0, start};
            return true;
        }
        return fail(c, "gate %d slices a value along axis %d", c->gate, axis);
    }
    case LG_OP_MATMUL: return matmul_term(c, n, f, width);
    case LG_OP_INPUT: {
        role ro = role_of(c, r, &k);
        lg_shape s = n->out[0].shape;
        if (ro == ROLE_INV && (s.rank == 1 || (s.rank == 2 && s.dims[0] == 1))) {
            f->n = 1;
            f->width = width;
            f->t[0] = (term){SRC_ONE, k, 0, -1};
            return true;
        }
        if (ro == ROLE_INV) return fail(c, "gate %d adds an invariant of shape %s (not a bias)", c->gate, lg_shape_cstr(s));
        return fail(c, "gate %d adds %s itself, not through a matmul", c->gate,
                    ro == ROLE_SEQ ? "x_t" : k == c->m->c_state ? "c" : "h");
    }
    case LG_OP_MUL:
        for (int i = 0; i < 2; i++) {
            if (c->m->c_state >= 0 && is_state(c, n->in[i], c->m->c_state))
                return fail(c, "peephole term c*w_c in gate %d", c->gate);
            if (is_state(c, n->in[i], c->m->h_state))
                return fail(c, "gate %d multiplies h elementwise (not through U)", c->gate);
        }
        return fail(c, "gate %d has an elementwise product in its pre-activation", c->gate);
    default:
        return fail(c, "gate %d's pre-activation has %s where %s has matmuls and adds", c->gate, op_name(n->op), c->cell);
    }
}

static bool add_piece(mctx *c, lg_rnn_piece *arr, int *n, lg_rnn_piece p)
{
    if (*n >= LG_RNN_MATCH_MAX_PIECES) return fail(c, "gate %d: too many weight pieces", c->gate);
    arr[(*n)++] = p;
    return true;
}

/* Gate `gate`'s pieces from its pre-activation f: exactly one x_t W term
 * (none when want_x is false), exactly one recurrent term of source rec
 * (none for SRC_NONE), any biases: the first on side bias_side, the second on
 * second_side (-1: more than one is an error unless they share the side). */
static bool take_gate(mctx *c, const lform *f, bool want_x, src_kind rec, int bias_side, int second_side)
{
    lg_rnn_match *m = c->m;
    if (f->width != m->units)
        return fail(c, "gate %d is %lld wide, not the %lld units", c->gate, (long long)f->width, (long long)m->units);
    int nx = 0, nh = 0, nb = 0;
    for (int i = 0; i < f->n; i++) {
        const term *t = &f->t[i];
        lg_rnn_piece p = {t->inv, t->start, t->row, c->gate, 0};
        if (t->src == SRC_X) {
            if (!want_x) return fail(c, "gate %d's recurrent part reads x_t", c->gate);
            if (++nx > 1) return fail(c, "gate %d has two input projections x_t W", c->gate);
            if (!add_piece(c, m->w, &m->n_w, p)) return false;
        } else if (t->src == SRC_ONE) {
            p.side = nb++ == 0 ? bias_side : second_side >= 0 ? second_side : bias_side;
            if (nb > 2) return fail(c, "gate %d adds %d biases", c->gate, nb);
            if (!add_piece(c, m->b, &m->n_b, p)) return false;
        } else {
            if (t->src != rec)
                return fail(c, "gate %d has %s where %s has %s", c->gate, src_names[t->src], c->cell, src_names[rec]);
            if (++nh > 1) return fail(c, "gate %d has two recurrent projections", c->gate);
            if (!add_piece(c, m->u, &m->n_u, p)) return false;
        }
    }
    if (want_x && nx == 0) return fail(c, "gate %d has no input projection x_t W", c->gate);
    if (rec != SRC_NONE && nh == 0) return fail(c, "gate %d has no recurrent term %s", c->gate, src_names[rec]);
    m->has_bias |= nb > 0;
    return true;
}

/* Gate k is act(pre-activation) with act `want`. */
static bool check_gate(mctx *c, int k, lg_ref r, lg_op want, src_kind rec, int bias_side, int second_side)
{
    const lg_node *n = node_of(c, r);
    c->gate = k;
    if (!is_act(n->op))
        return fail(c, "gate %d is %s where %s has %s(...)", k, op_name(n->op), c->cell, op_name(want));
    if (n->op != want) return fail(c, "gate %d uses %s where %s has %s", k, op_name(n->op), c->cell, op_name(want));
    lform f;
    return lform_of(c, n->in[0], &f, 0) && take_gate(c, &f, true, rec, bias_side, second_side);
}

/* ---- the cell level ------------------------------------------------------- */

/* Operand i of a binary node n that satisfies pred, and the other one. */
static bool pick(const lg_node *n, lg_op op, bool (*pred)(const mctx *, lg_ref, const void *), const mctx *c,
                 const void *arg, lg_ref *hit, lg_ref *other)
{
    if (n->op != op) return false;
    for (int i = 0; i < 2; i++)
        if (pred(c, n->in[i], arg)) {
            *hit = n->in[i];
            *other = n->in[1 - i];
            return true;
        }
    return false;
}

static bool pred_state(const mctx *c, lg_ref r, const void *state) { return is_state(c, r, *(const int *)state); }
static bool match_simple(mctx *c, lg_ref nh)
{
    c->cell = "SimpleRNN";
    const lg_node *n = node_of(c, nh);
    if (n->op != LG_OP_TANH && n->op != LG_OP_RELU)
        return fail(c, "activation is %s; the fused SimpleRNN has tanh or relu", op_name(n->op));
    c->m->cell = n->op == LG_OP_TANH ? LG_RNN_SIMPLE_TANH : LG_RNN_SIMPLE_RELU;
    return check_gate(c, 0, nh, n->op, SRC_H, 0, -1);
}

static bool match_lstm(mctx *c, const lg_ref *next)
{
    c->cell = "LSTM";
    c->m->cell = LG_RNN_LSTM;
    int cs = node_of(c, next[1])->op == LG_OP_ADD ? 1 : node_of(c, next[0])->op == LG_OP_ADD ? 0 : -1;
    if (cs < 0) return fail(c, "LSTM: neither state's next value is f*c + i*g");
    int hs = 1 - cs;
    c->m->c_state = cs, c->m->h_state = hs;
    lg_ref nc = next[cs], nh = next[hs], fc, ig, o = {-1, 0}, act_c = {-1, 0};
    /* c' = f*c + i*g, in any operand order */
    const lg_node *cn = node_of(c, nc);
    const lg_node *a0 = node_of(c, cn->in[0]), *a1 = node_of(c, cn->in[1]);
    if (a0->op == LG_OP_MUL && (is_state(c, a0->in[0], cs) || is_state(c, a0->in[1], cs))) fc = cn->in[0], ig = cn->in[1];
    else if (a1->op == LG_OP_MUL && (is_state(c, a1->in[0], cs) || is_state(c, a1->in[1], cs)))
        fc = cn->in[1], ig = cn->in[0];
    else return fail(c, "c' has no f*c term");
    const lg_node *fcn = node_of(c, fc), *ign = node_of(c, ig);
    lg_ref f = is_state(c, fcn->in[0], cs) ? fcn->in[1] : fcn->in[0];
    if (ign->op != LG_OP_MUL) return fail(c, "c' = f*c + %s where LSTM has i*g", op_name(ign->op));
    /* i is the sigmoid and g the other; with two sigmoids or none, g is the tanh or the second */
    lg_op op0 = node_of(c, ign->in[0])->op, op1 = node_of(c, ign->in[1])->op;
    bool swap = op0 != LG_OP_SIGMOID && (op1 == LG_OP_SIGMOID || op0 == LG_OP_TANH);
    lg_ref i = ign->in[swap ? 1 : 0], g = ign->in[swap ? 0 : 1];
    /* h' = o * tanh(c') */
    const lg_node *hn = node_of(c, nh);
    bool found = false;
    for (int k = 0; hn->op == LG_OP_MUL && !found && k < 2; k++) {
        const lg_node *an = node_of(c, hn->in[k]);
        if (is_act(an->op) && ref_eq(an->in[0], nc)) found = true, act_c = hn->in[k], o = hn->in[1 - k];
    }
    if (!found) return fail(c, "h' is %s where LSTM has o * tanh(c')", op_name(hn->op));
    if (!check_gate(c, 0, i, LG_OP_SIGMOID, SRC_H, 0, 0) || !check_gate(c, 1, f, LG_OP_SIGMOID, SRC_H, 0, 0) ||
        !check_gate(c, 2, g, LG_OP_TANH, SRC_H, 0, 0) || !check_gate(c, 3, o, LG_OP_SIGMOID, SRC_H, 0, 0))
        return false;
    lg_op ac = node_of(c, act_c)->op;
    if (ac != LG_OP_TANH) return fail(c, "h' uses %s(c') where LSTM has tanh(c')", op_name(ac));
    return true;
}

/* Is r the constant 1 (any shape of one element)? */
static bool is_one(const mctx *c, lg_ref r)
{
    const lg_node *n = node_of(c, r);
    return n->op == LG_OP_CONST && lg_tensor_numel(n->attrs.tensor) == 1 && lg_tensor_get(n->attrs.tensor, 0) == 1;
}

/* h' = hh + z (h - hh), or z h + (1 - z) hh: find z and hh. */
static bool gru_mix(mctx *c, lg_ref nh, lg_ref *z, lg_ref *hh)
{
    const lg_node *n = node_of(c, nh);
    if (n->op != LG_OP_ADD) return false;
    int hs = c->m->h_state;
    for (int k = 0; k < 2; k++) {
        lg_ref p = n->in[k], q = n->in[1 - k], zz, h_;
        const lg_node *qn = node_of(c, q);
        /* q = z * (h - p) */
        for (int i = 0; qn->op == LG_OP_MUL && i < 2; i++) {
            const lg_node *dn = node_of(c, qn->in[i]);
            if (dn->op == LG_OP_SUB && is_state(c, dn->in[0], hs) && ref_eq(dn->in[1], p)) {
                *z = qn->in[1 - i], *hh = p;
                return true;
            }
        }
        /* p = z * h, q = (1 - z) * hh */
        if (pick(node_of(c, p), LG_OP_MUL, pred_state, c, &hs, &h_, &zz) && qn->op == LG_OP_MUL)
            for (int i = 0; i < 2; i++) {
                const lg_node *sn = node_of(c, qn->in[i]);
                if (sn->op == LG_OP_SUB && is_one(c, sn->in[0]) && ref_eq(sn->in[1], zz)) {
                    *z = zz, *hh = qn->in[1 - i];
                    return true;
                }
            }
    }
    return false;
}

/* The leaves of an add tree rooted at r (at most max). */
static int add_leaves(const mctx *c, lg_ref r, lg_ref *out, int n, int max)
{
    const lg_node *nd = node_of(c, r);
    if (nd->op != LG_OP_ADD || n + 2 > max) {
        if (n < max) out[n++] = r;
        return n;
    }
    n = add_leaves(c, nd->in[0], out, n, max);
    return add_leaves(c, nd->in[1], out, n, max);
}

static bool match_gru(mctx *c, lg_ref nh)
{
    c->cell = "GRU";
    lg_ref z, hh;
    if (!gru_mix(c, nh, &z, &hh)) return fail(c, "h' is not hh + z (h - hh) or z h + (1 - z) hh");
    const lg_node *hn = node_of(c, hh);
    c->gate = 2;
    if (!is_act(hn->op)) return fail(c, "gate 2 is %s where GRU has tanh(...)", op_name(hn->op));
    if (hn->op != LG_OP_TANH) return fail(c, "gate 2 uses %s where GRU has tanh", op_name(hn->op));
    /* hh's pre-activation: x W_h (+ b) plus r * (h U_h + b_h), or plus (r h) U_h */
    lg_ref leaves[MAX_TERMS];
    int n_leaves = add_leaves(c, hn->in[0], leaves, 0, MAX_TERMS);
    lform xh = {.n = 0, .width = c->m->units}, rh = {.n = 0};
    bool after = false;
    for (int i = 0; i < n_leaves; i++) {
        const lg_node *ln = node_of(c, leaves[i]);
        bool product = false;
        for (int k = 0; ln->op == LG_OP_MUL && !product && k < 2; k++) {
            lg_ref a = ln->in[k], b = ln->in[1 - k];
            if (!is_act(node_of(c, a)->op) || is_h_read(c, b)) continue;
            if (after) return fail(c, "gate 2 has two reset products");
            after = product = true;
            c->r_node = a.node;
            if (!lform_of(c, b, &rh, 0)) return false;
        }
        if (product) continue;
        lform part;
        if (!lform_of(c, leaves[i], &part, 0)) return false;
        if (xh.n + part.n > MAX_TERMS) return fail(c, "gate 2 sums more than %d terms", MAX_TERMS);
        for (int k = 0; k < part.n; k++) xh.t[xh.n++] = part.t[k];
    }
    if (c->r_node < 0) return fail(c, "the candidate h~ (gate 2) has no reset gate r");
    c->gate = 2;
    c->m->cell = after ? LG_RNN_GRU : LG_RNN_GRU_RESET_BEFORE;
    if (after) {
        if (!take_gate(c, &xh, true, SRC_NONE, 0, -1)) return false;
        c->gate = 2;
        rh.width = c->m->units;
        if (!take_gate(c, &rh, false, SRC_H, 1, -1)) return false;
    } else if (!take_gate(c, &xh, true, SRC_RH, 0, -1)) {
        return false;
    }
    int second = after ? 1 : -1;
    lg_ref r = {c->r_node, 0};
    return check_gate(c, 1, r, LG_OP_SIGMOID, SRC_H, 0, second) && check_gate(c, 0, z, LG_OP_SIGMOID, SRC_H, 0, second);
}

bool lg_rnn_match_loop(const lg_loop_spec *s, lg_rnn_match *m)
{
    memset(m, 0, sizeof *m);
    m->x_seq = m->mask_seq = m->c_state = m->y_out = m->x_mask = m->h_mask = -1;
    m->reverse = s->reverse;
    mctx c = {.s = s, .body = s->body, .m = m, .cell = "the cell", .r_node = -1, .x_mask = MASK_UNSEEN,
              .h_mask = MASK_UNSEEN};
    if (s->gradient) return fail(&c, "a gradient loop (the fused pair replaces it with its forward loop)");
    if (s->has_stop) return fail(&c, "the loop has a stop condition");
    if (s->n_seq < 1) return fail(&c, "the loop has no sequence");
    if (s->n_state < 1 || s->n_state > 2) return fail(&c, "the loop carries %d states; the cells carry 1 or 2", s->n_state);
    if (s->n_y > 1) return fail(&c, "the loop emits %d values per step; the fused op emits h only", s->n_y);
    lg_ref next[2], y = {-1, 0};
    for (int k = 0; k < s->n_state; k++) {
        next[k] = s->outputs[k];
        lg_port p = c.body->nodes[s->inputs[s->n_seq + k]].out[0];
        if (p.shape.rank != 2 || !lg_is_float(p.dtype)) return fail(&c, "state %d is not a float [B, H]", k);
    }
    m->units = c.body->nodes[s->inputs[s->n_seq]].out[0].shape.dims[1];
    /* masking is the loop's attribute (the body is the user's step) */
    if (s->truncate > 0) return fail(&c, "truncated BPTT (gradients stop every %d steps)", s->truncate);
    if (s->masking) m->mask_seq = lg_loop_mask_input(s);
    /* a mask's repeated outputs are the kernel's (lengths': fuse_rnn_replace) */
    m->repeat = s->masking == LG_LOOP_BY_MASK && s->repeat_output && s->n_y == 1;
    if (s->n_y == 1) y = s->outputs[s->n_state];
    for (int k = 0; k < s->n_state; k++)
        if (c.body->nodes[next[k].node].op == LG_OP_WHERE)
            return fail(&c, "state %d's next value is chosen by where (masking or truncated BPTT built in a loop "
                            "body, or by hand)", k);
    bool ok;
    if (s->n_state == 2) {
        ok = match_lstm(&c, next);
    } else {
        m->h_state = 0;
        lg_op top = c.body->nodes[next[0].node].op;
        ok = top == LG_OP_ADD ? match_gru(&c, next[0]) : is_act(top) ? match_simple(&c, next[0])
                                                              : fail(&c, "h' is %s, not an activation (SimpleRNN) or "
                                                                         "a gate mix (GRU)",
                                                                     op_name(top));
    }
    if (!ok) return false;
    if (m->x_seq < 0) return fail(&c, "no gate reads a sequence");
    m->x_mask = c.x_mask >= 0 ? c.x_mask : -1;
    m->h_mask = c.h_mask >= 0 ? c.h_mask : -1;
    if (s->n_y == 1) {
        if (!ref_eq(y, next[m->h_state])) return fail(&c, "the per-step output is not h'");
        m->y_out = 0;
    }
    return true;
}
