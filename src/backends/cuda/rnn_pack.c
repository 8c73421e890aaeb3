/* rnn_pack.c — cuDNN RNN eligibility and weight packing (rnn_pack.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cuda/rnn_pack.h"

static const char *const refusal_names[] = {
    "eligible",          "no_layers",     "custom_cell",      "dtype",         "activation",
    "recurrent_activation", "gru_reset_before", "peephole",   "recurrent_dropout", "go_backwards",
    "hole_mask",         "stop_condition",    "size",          "stack_mismatch",   "stack_dropout", "stack_merge",
    "repeat_output",
};
_Static_assert(sizeof refusal_names / sizeof refusal_names[0] == LG_RNN_REFUSAL_COUNT,
               "refusal_names is out of step with lg_rnn_refusal");

const char *lg_rnn_refusal_name(lg_rnn_refusal r)
{
    return r >= 0 && r < LG_RNN_REFUSAL_COUNT ? refusal_names[r] : "unknown";
}

static const char *const kind_names[] = {"SimpleRNN", "LSTM", "GRU"};
_Static_assert(sizeof kind_names / sizeof kind_names[0] == LG_CELL_KIND_COUNT, "kind_names is out of step");

static lg_rnn_refusal refuse(lg_rnn_refusal r, char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static lg_rnn_refusal refuse(lg_rnn_refusal r, char *why, size_t why_len, const char *fmt, ...)
{
    if (why && why_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return r;
}

static const char *layer_name(const lg_rnn_layer_desc *d) { return d->name ? d->name : "(unnamed)"; }

/* The checks one layer passes on its own. */
static lg_rnn_refusal layer_eligible(const lg_rnn_layer_desc *d, char *why, size_t why_len)
{
    const char *nm = layer_name(d);
    if (d->kind < 0 || d->kind >= LG_CELL_KIND_COUNT)
        return refuse(LG_RNN_CUSTOM_CELL, why, why_len,
                      "layer '%s': its cell matches no LSTM, GRU or SimpleRNN pattern cuDNN computes", nm);
    const char *kind = kind_names[d->kind];
    if (d->dtype != LG_F32 && d->dtype != LG_F64)
        return refuse(LG_RNN_DTYPE, why, why_len, "layer '%s': %s of dtype %d; cuDNN takes f32 and f64", nm, kind,
                      (int)d->dtype);
    bool act_ok = d->activation == LG_ACT_TANH || (d->kind == LG_CELL_SIMPLE_RNN && d->activation == LG_ACT_RELU);
    if (!act_ok)
        return refuse(LG_RNN_ACTIVATION, why, why_len, "layer '%s': %s activation %d; cuDNN's %s uses %s", nm, kind,
                      (int)d->activation, kind, d->kind == LG_CELL_SIMPLE_RNN ? "tanh or relu" : "tanh");
    if (d->kind != LG_CELL_SIMPLE_RNN && d->recurrent_activation != LG_ACT_SIGMOID)
        return refuse(LG_RNN_RECURRENT_ACTIVATION, why, why_len,
                      "layer '%s': %s recurrent_activation %d; cuDNN's gates use sigmoid", nm, kind,
                      (int)d->recurrent_activation);
    if (d->kind == LG_CELL_GRU && !d->reset_after)
        return refuse(LG_RNN_RESET_BEFORE, why, why_len,
                      "layer '%s': GRU with reset_after false; cuDNN applies the reset gate after the recurrent "
                      "matmul (reset_after true)",
                      nm);
    if (d->peephole)
        return refuse(LG_RNN_PEEPHOLE, why, why_len, "layer '%s': peephole connections; cuDNN's LSTM has none", nm);
    if (d->recurrent_dropout)
        return refuse(LG_RNN_RECURRENT_DROPOUT, why, why_len,
                      "layer '%s': recurrent dropout masks h_{t-1}, which cuDNN cannot", nm);
    if (d->hole_mask)
        return refuse(LG_RNN_HOLE_MASK, why, why_len,
                      "layer '%s': a mask [T, B] that may skip steps mid-sequence; cuDNN takes per-example lengths "
                      "(mask by lengths instead)",
                      nm);
    /* Past an example's length a forward layer's steps come after its
     * valid ones, so they would output the kept h where cuDNN writes its
     * padding (0); a go_backwards layer runs them before any valid step,
     * where the repeated output is 0 too. */
    if (d->repeat_output && (!d->go_backwards || d->bidirectional))
        return refuse(LG_RNN_REPEAT_OUTPUT, why, why_len,
                      "layer '%s': masked steps repeat the last valid output (zero_output_for_mask false); cuDNN "
                      "outputs 0 past each example's length",
                      nm);
    if (d->has_stop)
        return refuse(LG_RNN_STOP_CONDITION, why, why_len,
                      "layer '%s': the loop has a stop condition; cuDNN runs every step", nm);
    if (d->input_dim < 1 || d->units < 1 || d->input_dim > INT32_MAX || d->units > INT32_MAX / 8)
        return refuse(LG_RNN_SIZE, why, why_len, "layer '%s': input dim %lld and units %lld outside cuDNN's range", nm,
                      (long long)d->input_dim, (long long)d->units);
    return LG_RNN_ELIGIBLE;
}

lg_rnn_refusal lg_rnn_eligible(const lg_rnn_layer_desc *layers, int n, lg_rnn_spec *spec, char *why, size_t why_len)
{
    if (n < 1) return refuse(LG_RNN_NO_LAYERS, why, why_len, "no recurrent layers to run");
    for (int i = 0; i < n; i++) {
        lg_rnn_refusal r = layer_eligible(&layers[i], why, why_len);
        if (r) return r;
    }
    const lg_rnn_layer_desc *a = &layers[0];
    int dirs = a->bidirectional ? 2 : 1;
    for (int i = 1; i < n; i++) {
        const lg_rnn_layer_desc *b = &layers[i];
        if (b->kind != a->kind || b->dtype != a->dtype || b->units != a->units || b->activation != a->activation ||
            b->use_bias != a->use_bias || b->bidirectional != a->bidirectional || b->input_dim != a->units * dirs)
            return refuse(LG_RNN_STACK_MISMATCH, why, why_len,
                          "layer '%s' (stacked %d): cuDNN stacks layers of one kind, dtype, units, activation, bias "
                          "and direction, each reading the previous output [.., %lld]; it has input dim %lld, "
                          "units %lld",
                          layer_name(b), i, (long long)(a->units * dirs), (long long)b->input_dim,
                          (long long)b->units);
        if (!a->bidirectional && b->go_backwards != a->go_backwards)
            return refuse(LG_RNN_GO_BACKWARDS, why, why_len,
                          "layer '%s' (stacked %d): go_backwards %s where layer '%s' has %s; one cuDNN stack reads "
                          "in one direction",
                          layer_name(b), i, b->go_backwards ? "true" : "false", layer_name(a),
                          a->go_backwards ? "true" : "false");
        if (b->input_dropout)
            return refuse(LG_RNN_STACK_DROPOUT, why, why_len,
                          "layer '%s' (stacked %d): a dropout mask on its input; cuDNN's stack has no masks between "
                          "layers",
                          layer_name(b), i);
        if (layers[i - 1].bidirectional && layers[i - 1].merge != LG_MERGE_CONCAT)
            return refuse(LG_RNN_STACK_MERGE, why, why_len,
                          "layer '%s' (stacked %d): merges its directions with mode %d; a stacked cuDNN layer feeds "
                          "the next the concatenation",
                          layer_name(&layers[i - 1]), i - 1, (int)layers[i - 1].merge);
    }
    *spec = (lg_rnn_spec){.kind = a->kind,
                          .dtype = a->dtype,
                          .input_dim = a->input_dim,
                          .units = a->units,
                          .layers = n,
                          .bidirectional = a->bidirectional,
                          .use_bias = a->use_bias,
                          .relu = a->kind == LG_CELL_SIMPLE_RNN && a->activation == LG_ACT_RELU,
                          .reverse = a->go_backwards && !a->bidirectional};
    if (why && why_len) why[0] = '\0';
    return LG_RNN_ELIGIBLE;
}

int lg_rnn_gates(lg_cell_kind kind) { return kind == LG_CELL_LSTM ? 4 : kind == LG_CELL_GRU ? 3 : 1; }
int lg_rnn_directions(const lg_rnn_spec *s) { return s->bidirectional ? 2 : 1; }
int lg_rnn_pseudo_layers(const lg_rnn_spec *s) { return s->layers * lg_rnn_directions(s); }

int lg_rnn_keras_gate(lg_cell_kind kind, int k)
{
    /* GRU: cuDNN r, z, n; Keras z, r, h */
    static const int gru[3] = {1, 0, 2};
    return kind == LG_CELL_GRU ? gru[k] : k;
}

int64_t lg_rnn_layer_input(const lg_rnn_spec *s, int p)
{
    return p < lg_rnn_directions(s) ? s->input_dim : s->units * lg_rnn_directions(s);
}

bool lg_rnn_layout_dense(const lg_rnn_spec *s, lg_rnn_wlayout *out)
{
    int n_pseudo = lg_rnn_pseudo_layers(s), g = lg_rnn_gates(s->kind), n_lin = 2 * g;
    lg_rnn_mat *m = calloc((size_t)(n_pseudo * n_lin), sizeof *m);
    if (!m) return false;
    int64_t at = 0;
    for (int p = 0; p < n_pseudo; p++) {
        for (int id = 0; id < n_lin; id++) {
            lg_rnn_mat *x = &m[p * n_lin + id];
            x->rows = s->units;
            x->cols = id < g ? lg_rnn_layer_input(s, p) : s->units;
            x->w_off = at;
            at += x->rows * x->cols;
        }
        for (int id = 0; id < n_lin && s->use_bias; id++) {
            m[p * n_lin + id].b_off = at;
            m[p * n_lin + id].b_len = s->units;
            at += s->units;
        }
    }
    *out = (lg_rnn_wlayout){.n_pseudo = n_pseudo, .n_lin = n_lin, .size = at, .mats = m};
    return true;
}

/* Whether [a, a + an) and [b, b + bn) overlap (empty ranges never do). */
static bool overlap(int64_t a, int64_t an, int64_t b, int64_t bn) { return an && bn && a < b + bn && b < a + an; }

bool lg_rnn_layout_check(const lg_rnn_spec *s, const lg_rnn_wlayout *l, char *why, size_t why_len)
{
    int g = lg_rnn_gates(s->kind);
    if (l->n_pseudo != lg_rnn_pseudo_layers(s) || l->n_lin != 2 * g) {
        snprintf(why, why_len, "%d pseudo-layers of %d matrices, expected %d of %d", l->n_pseudo, l->n_lin,
                 lg_rnn_pseudo_layers(s), 2 * g);
        return false;
    }
    int n = l->n_pseudo * l->n_lin;
    for (int i = 0; i < n; i++) {
        const lg_rnn_mat *m = &l->mats[i];
        int p = i / l->n_lin, id = i % l->n_lin;
        int64_t cols = id < g ? lg_rnn_layer_input(s, p) : s->units, b_len = s->use_bias ? s->units : 0;
        if (m->rows != s->units || m->cols != cols || m->b_len != b_len) {
            snprintf(why, why_len,
                     "pseudo-layer %d, linear id %d: matrix [%lld, %lld] with bias [%lld], expected [%lld, %lld] "
                     "with bias [%lld]",
                     p, id, (long long)m->rows, (long long)m->cols, (long long)m->b_len, (long long)s->units,
                     (long long)cols, (long long)b_len);
            return false;
        }
        if (m->w_off < 0 || m->w_off + m->rows * m->cols > l->size || m->b_off < 0 || m->b_off + m->b_len > l->size) {
            snprintf(why, why_len, "pseudo-layer %d, linear id %d: outside the weight space of %lld elements", p, id,
                     (long long)l->size);
            return false;
        }
        for (int j = 0; j < i; j++) {
            const lg_rnn_mat *o = &l->mats[j];
            int64_t mw = m->rows * m->cols, ow = o->rows * o->cols;
            if (overlap(m->w_off, mw, o->w_off, ow) || overlap(m->b_off, m->b_len, o->b_off, o->b_len) ||
                overlap(m->w_off, mw, o->b_off, o->b_len) || overlap(m->b_off, m->b_len, o->w_off, ow)) {
                snprintf(why, why_len, "pseudo-layer %d, linear id %d overlaps pseudo-layer %d, linear id %d", p, id,
                         j / l->n_lin, j % l->n_lin);
                return false;
            }
        }
    }
    return true;
}

void lg_rnn_layout_free(lg_rnn_wlayout *l)
{
    if (!l) return;
    free(l->mats);
    l->mats = NULL;
}

int64_t lg_rnn_kernel_size(const lg_rnn_spec *s, int p)
{
    return lg_rnn_layer_input(s, p) * lg_rnn_gates(s->kind) * s->units;
}

int64_t lg_rnn_recurrent_size(const lg_rnn_spec *s, int p)
{
    (void)p;
    return s->units * lg_rnn_gates(s->kind) * s->units;
}

int64_t lg_rnn_bias_size(const lg_rnn_spec *s)
{
    if (!s->use_bias) return 0;
    return (s->kind == LG_CELL_GRU ? 2 : 1) * lg_rnn_gates(s->kind) * s->units;
}

int64_t lg_rnn_src_dense(const lg_rnn_spec *s, lg_rnn_src *src)
{
    int64_t at = 0;
    for (int p = 0; p < lg_rnn_pseudo_layers(s); p++) {
        src[p].kernel = at;
        at += lg_rnn_kernel_size(s, p);
        src[p].recurrent_kernel = at;
        at += lg_rnn_recurrent_size(s, p);
        src[p].bias = s->use_bias ? at : -1;
        at += lg_rnn_bias_size(s);
    }
    return at;
}

void lg_rnn_pack_map(const lg_rnn_spec *s, const lg_rnn_wlayout *l, const lg_rnn_src *src, int64_t *map)
{
    int g = lg_rnn_gates(s->kind);
    int64_t u = s->units, gu = g * u;
    for (int64_t i = 0; i < l->size; i++) map[i] = -1;
    for (int p = 0; p < l->n_pseudo; p++)
        for (int id = 0; id < l->n_lin; id++) {
            const lg_rnn_mat *m = &l->mats[p * l->n_lin + id];
            bool h_side = id >= g;
            int64_t kg = lg_rnn_keras_gate(s->kind, id % g);
            int64_t base = h_side ? src[p].recurrent_kernel : src[p].kernel;
            /* W_k[j, c] = kernel[c, kg * u + j] */
            for (int64_t j = 0; j < m->rows; j++)
                for (int64_t c = 0; c < m->cols; c++) map[m->w_off + j * m->cols + c] = base + c * gu + kg * u + j;
            if (!m->b_len) continue;
            /* x side: Keras's bias (GRU: row 0); h side: GRU's row 1, else zero */
            if (!h_side || s->kind == LG_CELL_GRU)
                for (int64_t j = 0; j < m->b_len; j++)
                    map[m->b_off + j] = src[p].bias + (h_side ? gu : 0) + kg * u + j;
        }
}

void lg_rnn_pack(lg_dtype dt, const int64_t *map, int64_t n, const void *src, void *dst)
{
    if (dt == LG_F32)
        for (int64_t i = 0; i < n; i++) ((float *)dst)[i] = map[i] < 0 ? 0.0f : ((const float *)src)[map[i]];
    else
        for (int64_t i = 0; i < n; i++) ((double *)dst)[i] = map[i] < 0 ? 0.0 : ((const double *)src)[map[i]];
}

void lg_rnn_unpack(lg_dtype dt, const int64_t *map, int64_t n, const void *packed, void *src)
{
    for (int64_t i = 0; i < n; i++) {
        if (map[i] < 0) continue;
        if (dt == LG_F32) ((float *)src)[map[i]] = ((const float *)packed)[i];
        else ((double *)src)[map[i]] = ((const double *)packed)[i];
    }
}

static size_t space_align(size_t n) { return (n + LG_RNN_SPACE_ALIGN - 1) / LG_RNN_SPACE_ALIGN * LG_RNN_SPACE_ALIGN; }

/* Place a space of bytes at *at (0 bytes: at *at, taking nothing). */
static size_t place(size_t *at, size_t bytes)
{
    size_t off = *at;
    *at += space_align(bytes);
    return off;
}

lg_rnn_spaces lg_rnn_spaces_of(const lg_rnn_spec *s, int64_t T, int64_t B, size_t weight_bytes, size_t reserve_bytes,
                               bool train, bool shared_ws)
{
    size_t es = lg_dtype_size(s->dtype), dirs = (size_t)lg_rnn_directions(s), pseudo = (size_t)lg_rnn_pseudo_layers(s);
    size_t xb = (size_t)(T * B * s->input_dim) * es, yb = (size_t)(T * B * s->units) * dirs * es;
    bool bidir = s->bidirectional, lstm = s->kind == LG_CELL_LSTM;
    /* states are staged where the call has several pseudo-layers, whose
     * [L D, B, u] gather several nodes' [B, u] */
    size_t hb = pseudo > 1 ? pseudo * (size_t)(B * s->units) * es : 0, cb = lstm ? hb : 0;
    lg_rnn_spaces p = {0};
    size_t at = 0;
    p.weights = place(&at, weight_bytes);
    p.reserve = place(&at, train ? reserve_bytes : 0);
    p.y = place(&at, train || s->reverse || bidir ? yb : 0);
    p.x = place(&at, s->reverse ? xb : 0);
    p.hx = place(&at, hb);
    p.cx = place(&at, cb);
    p.hy = place(&at, hb);
    p.cy = place(&at, cb);
    p.ws_bytes = at;
    at = 0;
    p.dweights = place(&at, weight_bytes);
    p.dy = place(&at, s->reverse || bidir ? yb : 0);
    p.dx = place(&at, s->reverse ? xb : 0);
    p.g_hx = place(&at, hb);
    p.g_cx = place(&at, cb);
    p.dhy = place(&at, hb);
    p.dcy = place(&at, cb);
    p.dhx = place(&at, hb);
    p.dcx = place(&at, cb);
    p.reserve_copy = place(&at, train && shared_ws ? reserve_bytes : 0);
    p.scratch_bytes = at;
    return p;
}

/* Value v of each pseudo-layer, [B, u] of `bytes`, and its block of [P,
 * B, u] at off. */
static int states(lg_rnn_stage *out, int n, lg_rnn_value v, bool in, size_t off, int P, size_t bytes)
{
    for (int q = 0; q < P; q++)
        out[n++] = (lg_rnn_stage){
            .v = v, .q = q, .in = in, .off = off + (size_t)q * bytes, .pitch = bytes, .width = bytes, .rows = 1};
    return n;
}

/* Value v of the top layer's two directions (pseudo-layers P - 2, P -
 * 1), [T, B, u] each (rows of `row` bytes), and its columns of [T, B, 2u]
 * at off. */
static int directions(lg_rnn_stage *out, int n, lg_rnn_value v, bool in, size_t off, int P, size_t row, size_t rows)
{
    for (int d = 0; d < 2; d++)
        out[n++] = (lg_rnn_stage){
            .v = v, .q = P - 2 + d, .in = in, .off = off + d * row, .pitch = 2 * row, .width = row, .rows = rows};
    return n;
}

int lg_rnn_stages_of(const lg_rnn_spec *s, const lg_rnn_spaces *p, int64_t T, int64_t B, bool grad,
                     lg_rnn_stage *out)
{
    int P = lg_rnn_pseudo_layers(s), n = 0;
    if (P == 1) return 0;
    bool lstm = s->kind == LG_CELL_LSTM, bidir = s->bidirectional;
    size_t row = (size_t)s->units * lg_dtype_size(s->dtype), state = (size_t)B * row, rows = (size_t)(T * B);
    if (!grad) {
        n = states(out, n, LG_RNN_V_H0, true, p->hx, P, state);
        if (lstm) n = states(out, n, LG_RNN_V_C0, true, p->cx, P, state);
        if (bidir) n = directions(out, n, LG_RNN_V_YS, false, p->y, P, row, rows);
        n = states(out, n, LG_RNN_V_H_T, false, p->hy, P, state);
        if (lstm) n = states(out, n, LG_RNN_V_C_T, false, p->cy, P, state);
        return n;
    }
    if (bidir) n = directions(out, n, LG_RNN_V_DYS, true, p->dy, P, row, rows);
    n = states(out, n, LG_RNN_V_H0, true, p->g_hx, P, state);
    if (lstm) n = states(out, n, LG_RNN_V_C0, true, p->g_cx, P, state);
    n = states(out, n, LG_RNN_V_DH, true, p->dhy, P, state);
    if (lstm) n = states(out, n, LG_RNN_V_DC, true, p->dcy, P, state);
    n = states(out, n, LG_RNN_V_DH0, false, p->dhx, P, state);
    if (lstm) n = states(out, n, LG_RNN_V_DC0, false, p->dcx, P, state);
    return n;
}
