/*
 * fused_elementwise.c — the fused elementwise op (fused_elementwise.h): its
 * program's encoding, a readable form of it, and shape inference.
 */
#include <stdio.h>
#include <string.h>

#include "graph/ops.h"
#include "ops/fused_elementwise.h"

int lg_few_arity(lg_op op)
{
    if (op == LG_OP_WHERE) return 3;
    return lg_op_defs[op]->n_in;
}

void lg_few_encode(const lg_node *n, int64_t *ins)
{
    ins[0] = n->op;
    ins[1] = n->attrs.cmp;
    memcpy(&ins[2], &n->attrs.real[0], sizeof(double));
    memcpy(&ins[3], &n->attrs.real[1], sizeof(double));
}

lg_node lg_few_decode(const int64_t *ins)
{
    lg_node n = {.op = (lg_op)ins[0]};
    n.attrs.cmp = (int)ins[1];
    memcpy(&n.attrs.real[0], &ins[2], sizeof(double));
    memcpy(&n.attrs.real[1], &ins[3], sizeof(double));
    return n;
}

/* Whether instruction ins runs an op (not a load, store or reload). */
static bool is_op(const int64_t *ins) { return ins[0] >= 0 && ins[0] != LG_OP_INPUT; }

/* Whether instruction ins pushes a value from memory (input or output). */
static bool is_load(const int64_t *ins) { return ins[0] == LG_OP_INPUT || ins[0] == LG_FEW_RELOAD; }

int lg_few_op_count(const lg_node *n)
{
    int ops = 0;
    for (int i = 0; i + LG_FEW_WIDTH <= n->attrs.n_ints; i += LG_FEW_WIDTH) ops += is_op(&n->attrs.ints[i]);
    return ops;
}

bool lg_few_puts(const lg_node *n)
{
    return n->attrs.n_ints >= LG_FEW_WIDTH && n->attrs.ints[n->attrs.n_ints - LG_FEW_WIDTH] == LG_FEW_PUT;
}

int lg_few_output_count(const lg_attrs *a)
{
    int outs = 1;
    for (int i = 0; i + LG_FEW_WIDTH <= a->n_ints; i += LG_FEW_WIDTH) outs += a->ints[i] == LG_FEW_STORE;
    return outs;
}

/* ---- text ------------------------------------------------------------------ */

typedef struct text {
    char *buf;
    size_t size, len;
    bool cut;
} text;

static void put(text *t, const char *s)
{
    size_t n = strlen(s), room = t->size - t->len - 1;
    if (n > room) n = room, t->cut = true;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

/* The instruction where the value that instruction `end` pushes starts (a
 * store belongs to the value under it). */
static int start_of(const int64_t *ints, int end)
{
    const int64_t *ins = &ints[end * LG_FEW_WIDTH];
    if (is_load(ins)) return end;
    if (ins[0] == LG_FEW_STORE) return start_of(ints, end - 1);
    int s = end;
    for (int k = 0; k < lg_few_arity((lg_op)ins[0]); k++) s = start_of(ints, s - 1);
    return s;
}

static void describe(const int64_t *ints, int end, text *t)
{
    const int64_t *ins = &ints[end * LG_FEW_WIDTH];
    char s[32];
    if (is_load(ins) || ins[0] == LG_FEW_STORE) {
        snprintf(s, sizeof s, "%s%lld%s", ins[0] == LG_OP_INPUT ? "in" : "out", (long long)ins[1],
                 ins[0] == LG_FEW_STORE ? "=" : "");
        if (ins[0] == LG_OP_INPUT && ins[2])
            snprintf(s + strlen(s), sizeof s - strlen(s), "[..., %lld:]", (long long)ins[2]);
        put(t, s);
        if (ins[0] == LG_FEW_STORE) describe(ints, end - 1, t);
        return;
    }
    lg_op op = (lg_op)ins[0];
    int a = lg_few_arity(op), ends[3];
    ends[a - 1] = end - 1;
    for (int k = a - 1; k > 0; k--) ends[k - 1] = start_of(ints, ends[k]) - 1;
    put(t, lg_op_defs[op]->name);
    put(t, "(");
    for (int k = 0; k < a; k++) {
        if (k) put(t, ", ");
        describe(ints, ends[k], t);
    }
    put(t, ")");
}

void lg_few_describe(const lg_node *n, char *buf, size_t size)
{
    if (!size) return;
    buf[0] = '\0';
    text t = {buf, size, 0, false};
    int n_ins = n->attrs.n_ints / LG_FEW_WIDTH;
    if (n_ins && !lg_few_puts(n)) describe(n->attrs.ints, n_ins - 1, &t);
    for (int e = 0; e < n_ins && lg_few_puts(n); e++) { /* "out0[..., c0:]=value" per put */
        const int64_t *ins = &n->attrs.ints[e * LG_FEW_WIDTH];
        if (ins[0] != LG_FEW_PUT) continue;
        char s[48];
        snprintf(s, sizeof s, "%sout0[..., %lld:]=", t.len ? ", " : "", (long long)ins[1]);
        put(&t, s);
        describe(n->attrs.ints, e - 1, &t);
    }
    if (t.cut && t.len >= 3) memcpy(buf + t.len - 3, "...", 3);
}

/* ---- inference ------------------------------------------------------------- */

/* The program runs on the stack discipline the header states: every input
 * it loads exists, every op finds its operands of the element type (where's
 * mask excepted), each output from 1 is stored once, in order, right
 * after the op that computes it and before it is read again, and one
 * value remains. Then every output is the broadcast of the inputs (of
 * their windows), as it was of the ops the program replaced. */
static bool infer_fused(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    lg_dtype dt = n->attrs.dtype;
    int n_ins = n->attrs.n_ints / LG_FEW_WIDTH;
    if (!lg_is_float(dt)) LG_INFER_FAIL("element type must be f32 or f64");
    if (n->n_in < 1 || n->n_in > LG_FEW_MAX_INPUTS || n_ins < 2 || n->attrs.n_ints % LG_FEW_WIDTH ||
        n->n_out > LG_FEW_MAX_OUTPUTS)
        LG_INFER_FAIL("bad fused program");
    bool foreign[LG_FEW_MAX_DEPTH]; /* a stack value of another dtype than dt */
    int64_t c0[LG_FEW_MAX_INPUTS];   /* per input: its window's start, or -1 before its first load */
    for (int k = 0; k < n->n_in; k++) c0[k] = -1;
    int depth = 0, stored = 0, puts = 0;
    int64_t width = n->attrs.axis;
    bool put_at[n_ins]; /* put_at[j]: a put at column j width */
    memset(put_at, 0, sizeof put_at);
    for (int i = 0; i < n_ins; i++) {
        const int64_t *ins = &n->attrs.ints[i * LG_FEW_WIDTH];
        if (ins[0] == LG_OP_INPUT || ins[0] == LG_FEW_RELOAD) {
            bool input = ins[0] == LG_OP_INPUT;
            if (ins[1] < (input ? 0 : 1) || ins[1] >= (input ? n->n_in : stored + 1) || depth == LG_FEW_MAX_DEPTH)
                LG_INFER_FAIL("bad fused program: load");
            if (input && (ins[2] < 0 || (c0[ins[1]] >= 0 && c0[ins[1]] != ins[2])))
                LG_INFER_FAIL("bad fused program: an input's loads start at different columns");
            if (input) c0[ins[1]] = ins[2];
            foreign[depth++] = input && in[ins[1]].dtype != dt;
            continue;
        }
        if (ins[0] == LG_FEW_STORE) {
            if (ins[1] != ++stored || i == 0 || !is_op(ins - LG_FEW_WIDTH))
                LG_INFER_FAIL("bad fused program: a store must follow an op");
            continue;
        }
        if (ins[0] == LG_FEW_PUT) {
            int64_t j = width > 0 && ins[1] >= 0 && ins[1] % width == 0 ? ins[1] / width : -1;
            if (j < 0 || j >= n_ins || put_at[j] || depth < 1 || foreign[depth - 1])
                LG_INFER_FAIL("bad fused program: a put");
            put_at[j] = true, puts++, depth--;
            continue;
        }
        if (ins[0] < 0 || ins[0] >= LG_OP_COUNT || !lg_few_fusible((lg_op)ins[0]))
            LG_INFER_FAIL("bad fused program: not an elementwise op");
        lg_op op = (lg_op)ins[0];
        int a = lg_few_arity(op);
        if (depth < a) LG_INFER_FAIL("bad fused program: operands missing");
        if (op == LG_OP_COMPARE && (ins[1] < 0 || ins[1] >= LG_CMP_COUNT))
            LG_INFER_FAIL("bad fused program: comparison");
        for (int k = op == LG_OP_WHERE; k < a; k++)
            if (foreign[depth - a + k]) LG_INFER_FAIL("inputs' dtypes differ from the element type");
        depth -= a;
        foreign[depth++] = false;
    }
    if (lg_few_op_count(n) > LG_FEW_MAX_OPS) LG_INFER_FAIL("bad fused program: too many ops");
    const int64_t *end = &n->attrs.ints[n->attrs.n_ints - LG_FEW_WIDTH];
    if (puts ? depth != 0 || end[0] != LG_FEW_PUT : depth != 1 || !is_op(end))
        LG_INFER_FAIL("bad fused program: it must end with an op and leave one value, or with a put and none");
    for (int j = 0; j < puts; j++)
        if (!put_at[j]) LG_INFER_FAIL("bad fused program: the puts leave columns out");
    /* with windows, each input of last dim W != 1 counts as W = width, its
     * window [c0, c0 + width) within W */
    lg_shape s = {0};
    for (int i = 0; i < n->n_in; i++) {
        lg_shape si = in[i].shape;
        int64_t start = c0[i] > 0 ? c0[i] : 0, *last = si.rank ? &si.dims[si.rank - 1] : NULL;
        if (width < 0 || (!width && start) || (start && (!last || *last == 1)))
            LG_INFER_FAIL("bad fused program: a window");
        if (width && last && *last != 1) {
            if (*last >= 0 && start + width > *last) LG_INFER_FAIL("a window past an input's last dim");
            *last = width;
        }
        if (i == 0) s = si;
        else if (!lg_broadcast_shapes(s, si, &s)) LG_INFER_FAIL("shapes do not broadcast");
    }
    if (width && (!s.rank || s.dims[s.rank - 1] != width)) LG_INFER_FAIL("bad fused program: the window's width");
    for (int o = 0; o < n->n_out; o++) out[o] = (lg_port){dt, s};
    if (puts) out[0].shape.dims[s.rank - 1] = puts * width;
    return true;
}

const lg_op_def lg_op_def_fused_elementwise = {"fused_elementwise", -1, infer_fused, NULL};
