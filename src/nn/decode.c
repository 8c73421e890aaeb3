/*
 * decode.c — the readout decoder (include/graph/decode.h): one loop whose
 * body concatenates [x_t, y_{t-1}, c_t], runs the cell's step and projects
 * the new h through the readout. y_{t-1} is a carried state whose next
 * value is the step's target (teacher forcing) or its prediction.
 */
#include <stdarg.h>
#include <string.h>

#include "graph/decode.h"
#include "graph/ops.h"
#include "graph/init.h"
#include "graph/internal.h"

struct lg_decoder {
    lg_graph *g;
    lg_cell *cell;
    char name[128];
    int output_dim;
    lg_decoder_opts opts;
    lg_value kernel, bias; /* the readout, [u, O] and [O] */
};

lg_decoder_opts lg_decoder_opts_default(void)
{
    return (lg_decoder_opts){.attention = LG_ATTENTION_NONE, .readout_activation = LG_ACT_LINEAR};
}

lg_decode_opts lg_decode_opts_default(void)
{
    lg_value none = lg_value_invalid();
    return (lg_decode_opts){.targets = none, .start = none, .memory = none};
}

lg_decoder *lg_decoder_new(lg_graph *g, const char *name, lg_cell *cell, int output_dim, lg_decoder_opts o)
{
    if (!g) {
        lg_fail(LG_ERR_INVALID_ARGUMENT, "decoder: graph is NULL");
        return NULL;
    }
    if (g->error) return NULL;
    if (!name || !name[0] || strlen(name) >= sizeof ((lg_decoder *)0)->name || strchr(name, '/')) {
        lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "decoder: a name without '/' (under 128 chars) is required");
        return NULL;
    }
    lg_value ck = cell ? lg_cell_kernel(cell) : lg_value_invalid();
    if (!cell || ck.graph != g) {
        lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "decoder '%s': the cell is %s", name,
                 cell ? "of another graph" : "NULL");
        return NULL;
    }
    if (output_dim < 1 || (int)o.attention < 0 || o.attention >= LG_ATTENTION_COUNT ||
        (int)o.readout_activation < 0 || o.readout_activation >= LG_ACT_COUNT) {
        lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "decoder '%s': output_dim %d must be >= 1, attention %d and activation "
                 "%d within their enums", name, output_dim, (int)o.attention, (int)o.readout_activation);
        return NULL;
    }
    lg_decoder *d = calloc(1, sizeof *d);
    if (!d) {
        lg_graph_fail_status(g, LG_ERR_OUT_OF_MEMORY, "decoder '%s': out of memory", name);
        return NULL;
    }
    *d = (lg_decoder){.g = g, .cell = cell, .output_dim = output_dim, .opts = o};
    snprintf(d->name, sizeof d->name, "%s", name);
    lg_dtype dt = lg_cell_get_opts(cell).dtype;
    lg_scope_push(g, name);
    lg_scope_push(g, "readout");
    d->kernel = lg_param(g, "kernel", dt, lg_shape_of(2, lg_cell_units(cell), output_dim));
    d->bias = lg_param(g, "bias", dt, lg_shape_of(1, output_dim)); /* zeros, as Keras's Dense */
    lg_scope_pop(g);
    lg_scope_pop(g);
    if (!g->error && lg_init_glorot_uniform(lg_param_tensor(d->kernel), o.seed, 0) != LG_OK)
        lg_graph_fail(g, "decoder '%s': %s", name, lg_last_error());
    if (g->error) {
        free(d);
        return NULL;
    }
    return d;
}

void lg_decoder_free(lg_decoder *d) { free(d); }

lg_value lg_decoder_readout_kernel(const lg_decoder *d) { return d ? d->kernel : lg_value_invalid(); }
lg_value lg_decoder_readout_bias(const lg_decoder *d) { return d ? d->bias : lg_value_invalid(); }

/* ---- checks ------------------------------------------------------------------ */

typedef struct dims {
    int64_t batch; /* -1 while unknown */
    int64_t steps; /* -1 while unknown */
    int64_t f, h;  /* x's and memory's last dims, 0 when absent */
    lg_value batch_ref; /* a present value whose dim 0 is B */
} dims;

static bool present(lg_value v) { return v.graph != NULL; }

/* v is a value of g of the cell's dtype and the given rank. */
static lg_status check_value(lg_graph *g, const char *dec, const char *what, lg_value v, lg_dtype dt, int rank,
                             const char *layout)
{
    if (!lg_value_ok(v) || v.graph != g)
        return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "%s: %s is %s", dec, what,
                        lg_value_ok(v) ? "a value of another graph" : "an invalid value");
    if (lg_value_dtype(v) != dt)
        return lg_graph_fail_status(g, LG_ERR_DTYPE, "%s: %s '%s' is %s, the cell is %s", dec, what, lg_value_name(v),
                        lg_dtype_name(lg_value_dtype(v)), lg_dtype_name(dt));
    lg_shape s = lg_value_shape(v);
    if (s.rank != rank || s.dims[rank - 1] < 1)
        return lg_graph_fail_status(g, LG_ERR_SHAPE, "%s: %s '%s' must be %s with a known last dim, got %s", dec, what,
                        lg_value_name(v), layout, lg_shape_cstr(s));
    return LG_OK;
}

/* Fold a known dim into *known; a mismatch is a shape error. */
static lg_status agree(lg_graph *g, const char *dec, const char *dim, const char *what, lg_value v, int axis,
                       int64_t *known)
{
    int64_t n = lg_value_shape(v).dims[axis];
    if (n < 0) return LG_OK;
    if (*known >= 0 && *known != n)
        return lg_graph_fail_status(g, LG_ERR_SHAPE, "%s: %s '%s' %s has %s %lld, another input has %lld", dec, what,
                        lg_value_name(v), lg_shape_cstr(lg_value_shape(v)), dim, (long long)n, (long long)*known);
    *known = n;
    return LG_OK;
}

/* A rank-2 value [B, n] with n fixed. */
static lg_status check_row(lg_graph *g, const char *dec, const char *what, lg_value v, lg_dtype dt, int64_t n,
                           dims *dm)
{
    lg_status s = check_value(g, dec, what, v, dt, 2, "[B, n]");
    if (s == LG_OK && lg_value_shape(v).dims[1] != n)
        s = lg_graph_fail_status(g, LG_ERR_SHAPE, "%s: %s '%s' must be [B, %lld], got %s", dec, what, lg_value_name(v),
                     (long long)n, lg_shape_cstr(lg_value_shape(v)));
    if (s == LG_OK) s = agree(g, dec, "batch", what, v, 0, &dm->batch);
    if (s == LG_OK && !present(dm->batch_ref)) dm->batch_ref = v;
    return s;
}

static lg_status check_all(const lg_decoder *d, const char *dec, lg_value x, const lg_decode_opts *o, dims *dm)
{
    lg_graph *g = d->g;
    lg_cell *c = d->cell;
    lg_dtype dt = lg_cell_get_opts(c).dtype;
    int64_t u = lg_cell_units(c), out = d->output_dim;
    *dm = (dims){.batch = -1, .steps = -1, .batch_ref = lg_value_invalid()};
    lg_status s = LG_OK;
    if (present(x)) {
        s = check_value(g, dec, "x", x, dt, 3, "[B, T, F]");
        if (s == LG_OK) s = agree(g, dec, "batch", "x", x, 0, &dm->batch);
        if (s == LG_OK) s = agree(g, dec, "steps", "x", x, 1, &dm->steps);
        if (s == LG_OK) dm->f = lg_value_shape(x).dims[2], dm->batch_ref = x;
    }
    if (s != LG_OK) return s;
    if (o->training) {
        if (!present(o->targets))
            return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "%s: training (teacher forcing) needs targets [B, T, %lld]",
                            dec, (long long)out);
        s = check_value(g, dec, "targets", o->targets, dt, 3, "[B, T, O]");
        if (s == LG_OK && lg_value_shape(o->targets).dims[2] != out)
            s = lg_graph_fail_status(g, LG_ERR_SHAPE, "%s: targets '%s' must be [B, T, %lld] (the readout's O), got %s", dec,
                         lg_value_name(o->targets), (long long)out, lg_shape_cstr(lg_value_shape(o->targets)));
        if (s == LG_OK) s = agree(g, dec, "batch", "targets", o->targets, 0, &dm->batch);
        if (s == LG_OK) s = agree(g, dec, "steps", "targets", o->targets, 1, &dm->steps);
        if (s == LG_OK && !present(dm->batch_ref)) dm->batch_ref = o->targets;
    } else if (present(o->targets)) {
        return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "%s: targets given to an inference decoder (set training)", dec);
    } else if (!present(x) && o->steps < 1) {
        return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT,
                        "%s: an inference decoder without x needs steps >= 1, got %lld", dec, (long long)o->steps);
    }
    if (s != LG_OK) return s;
    if (present(o->start)) s = check_row(g, dec, "start", o->start, dt, out, dm);
    if (s != LG_OK) return s;
    int n_states = lg_cell_state_count(c);
    if (o->initial_state || o->n_initial_state) {
        if (!o->initial_state || o->n_initial_state != n_states)
            return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "%s: %d initial states given (array %s), the cell carries %d",
                            dec, o->n_initial_state, o->initial_state ? "non-NULL" : "NULL", n_states);
        for (int k = 0; k < n_states && s == LG_OK; k++) {
            char what[32];
            snprintf(what, sizeof what, "initial state %d", k);
            s = check_row(g, dec, what, o->initial_state[k], dt, u, dm);
        }
    }
    if (s != LG_OK) return s;
    bool attn = d->opts.attention != LG_ATTENTION_NONE;
    if (attn != present(o->memory))
        return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "%s: memory [B, T_enc, H] %s", dec,
                        attn ? "is required with attention" : "is given but the decoder has no attention");
    if (attn) {
        s = check_value(g, dec, "memory", o->memory, dt, 3, "[B, T_enc, H]");
        if (s == LG_OK) s = agree(g, dec, "batch", "memory", o->memory, 0, &dm->batch);
        if (s != LG_OK) return s;
        dm->h = lg_value_shape(o->memory).dims[2];
        if (!present(dm->batch_ref)) dm->batch_ref = o->memory;
        if (d->opts.attention == LG_ATTENTION_DOT && dm->h != u)
            return lg_graph_fail_status(g, LG_ERR_SHAPE, "%s: dot attention scores memory '%s' %s against h [B, %lld]: H must "
                            "equal the cell's units", dec, lg_value_name(o->memory),
                            lg_shape_cstr(lg_value_shape(o->memory)), (long long)u);
    }
    int64_t in = lg_value_shape(lg_cell_kernel(c)).dims[0];
    if (in != dm->f + out + dm->h)
        return lg_graph_fail_status(g, LG_ERR_SHAPE, "%s: the cell's input dim %lld must be F + O + H = %lld + %lld + %lld "
                        "(x, the readout, the attention context)", dec, (long long)in, (long long)dm->f,
                        (long long)out, (long long)dm->h);
    if (!present(dm->batch_ref))
        return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT,
                        "%s: no x, targets, start, initial state or memory to take the batch size from", dec);
    return LG_OK;
}

/* ---- the loop ------------------------------------------------------------------- */

/* Zeros [B, n] with ref's batch (dim 0), which may be known only at run
 * time: a where over a [B, 1] slice of ref broadcasts the [n] zeros to it
 * without reading ref's values or passing it a gradient. */
static lg_value zeros_like_batch(lg_graph *g, lg_value ref, int64_t n)
{
    lg_value r = ref;
    while (lg_value_rank(r) > 2) r = lg_squeeze(lg_slice(r, 1, 0, 1), 1);
    lg_value col = lg_slice(r, 1, 0, 1); /* [B, 1] */
    lg_value z = lg_broadcast_to(lg_scalar(g, lg_value_dtype(ref), 0), (lg_shape){.rank = 1, .dims = {n}});
    return lg_where(col, z, z);
}

/* The context c_t [B, H] from memory [B, T_enc, H]; *weights gets the dot
 * attention's a_t [B, T_enc]. */
static lg_value context(lg_attention a, lg_value mem, lg_value h_prev, lg_value *weights)
{
    const int time_axis[1] = {1};
    if (a == LG_ATTENTION_MEAN) return lg_mean(mem, time_axis, 1, false);
    lg_value scores = lg_matmul(mem, lg_expand_dims(h_prev, 2), false, false); /* [B, T_enc, 1] */
    lg_value w = lg_softmax(scores, 1);
    *weights = lg_squeeze(w, 2);
    return lg_sum(lg_mul(w, mem), time_axis, 1, false);
}

static lg_status build(lg_decoder *d, const char *dec, lg_value x, const lg_decode_opts *o, const dims *dm,
                       lg_decode_result *r)
{
    lg_graph *g = d->g;
    lg_cell *c = d->cell;
    int n_states = lg_cell_state_count(c);
    lg_value init[LG_DECODER_MAX_STATES + 1];
    LG_ASSERT(n_states <= LG_DECODER_MAX_STATES);
    for (int k = 0; k < n_states; k++)
        init[k] = o->initial_state ? o->initial_state[k] : zeros_like_batch(g, dm->batch_ref, lg_cell_units(c));
    init[n_states] = present(o->start) ? o->start : zeros_like_batch(g, dm->batch_ref, d->output_dim);
    if (g->error) return lg_fail(LG_ERR_GRAPH, "%s: %s", dec, g->error);

    lg_loop_opts lo = lg_loop_opts_default();
    if (!present(x) && !o->training) lo.max_steps = o->steps;
    lg_loop *l = lg_loop_new(g, NULL, lo);
    lg_value parts[3];
    int np = 0;
    if (present(x)) parts[np++] = lg_loop_seq(l, x);
    lg_value target_t = o->training ? lg_loop_seq(l, o->targets) : lg_value_invalid();
    lg_value st[LG_DECODER_MAX_STATES + 1], next[LG_DECODER_MAX_STATES], h = lg_value_invalid();
    for (int k = 0; k <= n_states; k++) st[k] = lg_loop_state(l, init[k]);
    lg_value y_prev = st[n_states];
    parts[np++] = y_prev;
    lg_value weights = lg_value_invalid();
    if (d->opts.attention != LG_ATTENTION_NONE)
        parts[np++] = context(d->opts.attention, lg_loop_invariant(l, o->memory), st[0], &weights);
    lg_value in = np == 1 ? parts[0] : lg_concat(parts, np, -1);
    for (int k = 0; k < n_states; k++) next[k] = lg_value_invalid();
    lg_cell_step(c, l, in, st, lg_value_invalid(), lg_value_invalid(), next, &h);
    lg_value k_b = lg_loop_invariant(l, d->kernel), b_b = lg_loop_invariant(l, d->bias);
    lg_value y = lg_activate(lg_add(lg_matmul(h, k_b, false, false), b_b), d->opts.readout_activation);
    for (int k = 0; k < n_states; k++) lg_loop_next(l, st[k], next[k]);
    lg_loop_next(l, y_prev, o->training ? target_t : y); /* teacher forcing, or the model's own output */
    lg_loop_emit(l, y);
    if (lg_value_ok(weights)) lg_loop_emit(l, weights);
    lg_value finals[LG_DECODER_MAX_STATES + 1], outs[2] = {lg_value_invalid(), lg_value_invalid()};
    if (lg_loop_end(l, finals, outs) != LG_OK) return lg_fail(LG_ERR_GRAPH, "%s: %s", dec, g->error);
    r->output = outs[0];
    r->attention = outs[1];
    for (int k = 0; k < n_states; k++) r->states[k] = finals[k];
    r->n_states = n_states;
    return LG_OK;
}

static void result_clear(lg_decode_result *r)
{
    r->output = r->attention = lg_value_invalid();
    for (int k = 0; k < LG_DECODER_MAX_STATES; k++) r->states[k] = lg_value_invalid();
    r->n_states = 0;
}

lg_status lg_decode(lg_decoder *d, lg_value x, lg_decode_opts o, lg_decode_result *r)
{
    if (r) result_clear(r);
    if (!d) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_decode: decoder is NULL");
    lg_graph *g = d->g;
    char dec[160];
    snprintf(dec, sizeof dec, "decoder '%s'", d->name);
    if (g->error) return lg_fail(LG_ERR_GRAPH, "%s: the graph has an error: %s", dec, g->error);
    if (!r) return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "%s: result is NULL", dec);
    dims dm;
    lg_status s = check_all(d, dec, x, &o, &dm);
    if (s != LG_OK) return s;
    lg_scope_push(g, d->name);
    s = build(d, dec, x, &o, &dm, r);
    lg_scope_pop(g);
    if (s != LG_OK) result_clear(r);
    return s;
}
