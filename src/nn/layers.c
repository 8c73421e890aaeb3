/*
 * layers.c — Keras-style layers (include/graph/layers.h): a recurrent layer
 * as one loop node over a cell, its bidirectional wrapper, Dense, Embedding.
 *
 * The recurrent layer works time-major inside: x [B, T, F] is transposed to
 * [T, B, F] once, lengths become the loop's own masking (loop.h), and
 * returned sequences are transposed back.
 *
 * A stateful layer reads its initial states from inputs it creates and
 * keeps their values in an lg_rnn_state outside the graph; each state
 * holds two tensors per state, the current one fed to the run and the next
 * one the run's final state is fetched into, swapped after a successful
 * run, so a run never reads and writes the same tensor.
 */
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "graph/layers.h"
#include "graph/ops.h"
#include "graph/init.h"
#include "graph/internal.h"

lg_rnn_opts lg_rnn_opts_default(void) { return (lg_rnn_opts){0}; }

lg_dense_opts lg_dense_opts_default(void) { return (lg_dense_opts){.activation = LG_ACT_LINEAR, .use_bias = true}; }

lg_embedding_opts lg_embedding_opts_default(void) { return (lg_embedding_opts){.dtype = LG_F32}; }

/* The graph's error (or a generic one) as this call's status. */
static lg_status graph_status(lg_graph *g, const char *layer)
{
    if (!g->error) return LG_OK;
    return lg_fail(LG_ERR_GRAPH, "%s: %s", layer, g->error);
}

static bool rate_ok(double r) { return r >= 0 && r < 1; } /* false for NaN */

static int64_t cell_input_dim(const lg_cell *c) { return lg_value_shape(lg_cell_kernel(c)).dims[0]; }

/* ---- preparation shared by both directions ------------------------------- */

typedef struct prep {
    lg_value x_tm;  /* [T, B, F] */
    lg_value iota;  /* [T] f32: 0, 1, ..., T-1, when flipping */
    lg_value mask_tm; /* [T, B] opts.mask, or invalid */
    int64_t batch;  /* -1 if unknown */
} prep;

/* Checks of x and the options that do not depend on the cell. */
static lg_status prepare(lg_graph *g, const char *layer, lg_value x, const lg_rnn_opts *o, prep *p)
{
    if (!lg_value_ok(x) || x.graph != g)
        return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "%s: x is %s", layer,
                          lg_value_ok(x) ? "a value of another graph" : "an invalid value");
    lg_shape xs = lg_value_shape(x);
    if (xs.rank != 3)
        return lg_graph_fail_status(g, LG_ERR_SHAPE, "%s: x '%s' must be %s, got %s", layer, lg_value_name(x),
                          o->time_major ? "[T, B, F]" : "[B, T, F]", lg_shape_cstr(xs));
    if (!rate_ok(o->dropout) || !rate_ok(o->recurrent_dropout))
        return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "%s: dropout %g and recurrent_dropout %g must lie in [0, 1)",
                          layer, o->dropout, o->recurrent_dropout);
    if (o->n_initial_state < 0 || (o->n_initial_state > 0 && !o->initial_state))
        return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "%s: %d initial states given with a %s array", layer,
                          o->n_initial_state, o->initial_state ? "non-NULL" : "NULL");
    p->batch = xs.dims[o->time_major ? 1 : 0];
    bool masked = o->lengths.graph != NULL;
    if (masked) {
        lg_value len = o->lengths;
        if (!lg_value_ok(len) || len.graph != g)
            return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "%s: lengths is %s", layer,
                              lg_value_ok(len) ? "a value of another graph" : "an invalid value");
        lg_shape ls = lg_value_shape(len);
        if (lg_value_dtype(len) != LG_I32 || ls.rank != 1)
            return lg_graph_fail_status(g, lg_value_dtype(len) != LG_I32 ? LG_ERR_DTYPE : LG_ERR_SHAPE,
                              "%s: lengths '%s' must be i32 [B], got %s %s", layer, lg_value_name(len),
                              lg_dtype_name(lg_value_dtype(len)), lg_shape_cstr(ls));
        if (ls.dims[0] >= 0 && p->batch >= 0 && ls.dims[0] != p->batch)
            return lg_graph_fail_status(g, LG_ERR_SHAPE, "%s: lengths %s do not match the batch of x %s", layer,
                              lg_shape_cstr(ls), lg_shape_cstr(xs));
    }
    p->mask_tm = lg_value_invalid();
    if (o->mask.graph) {
        lg_value m = o->mask;
        if (!lg_value_ok(m) || m.graph != g)
            return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "%s: mask is %s", layer,
                                        lg_value_ok(m) ? "a value of another graph" : "an invalid value");
        if (masked)
            return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "%s: lengths and a mask together; give one", layer);
        lg_shape ms = lg_value_shape(m);
        bool fits = ms.rank == 2;
        for (int i = 0; fits && i < 2; i++) fits = ms.dims[i] < 0 || xs.dims[i] < 0 || ms.dims[i] == xs.dims[i];
        if (!fits)
            return lg_graph_fail_status(g, LG_ERR_SHAPE, "%s: mask '%s' %s must be %s of x '%s' %s", layer,
                                        lg_value_name(m), lg_shape_cstr(ms), o->time_major ? "[T, B]" : "[B, T]",
                                        lg_value_name(x), lg_shape_cstr(xs));
        p->mask_tm = o->time_major ? m : lg_transpose(m, (int[2]){1, 0});
    }
    int tm[3] = {1, 0, 2};
    p->x_tm = o->time_major ? x : lg_transpose(x, tm);
    /* only a go_backwards layer returning sequences flips them back */
    p->iota = o->go_backwards && o->return_sequences ? lg_time_iota(g, p->x_tm, true) : lg_value_invalid();
    return graph_status(g, layer);
}

/* Checks that depend on the cell. */
static lg_status check_cell(lg_graph *g, const char *layer, const lg_cell *c, lg_value x)
{
    if (!c) return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "%s: cell is NULL", layer);
    lg_dtype dt = lg_cell_get_opts(c).dtype;
    if (lg_value_dtype(x) != dt)
        return lg_graph_fail_status(g, LG_ERR_DTYPE, "%s: x '%s' is %s but the cell is %s", layer, lg_value_name(x),
                          lg_dtype_name(lg_value_dtype(x)), lg_dtype_name(dt));
    lg_shape xs = lg_value_shape(x);
    if (xs.dims[2] != cell_input_dim(c))
        return lg_graph_fail_status(g, LG_ERR_SHAPE, "%s: x '%s' %s has %lld features but the cell takes %lld", layer,
                          lg_value_name(x), lg_shape_cstr(xs), (long long)xs.dims[2], (long long)cell_input_dim(c));
    return LG_OK;
}

static lg_status check_initial(lg_graph *g, const char *layer, const lg_cell *c, const lg_value *init, int64_t batch)
{
    int u = lg_cell_units(c);
    lg_dtype dt = lg_cell_get_opts(c).dtype;
    for (int k = 0; k < lg_cell_state_count(c); k++) {
        lg_value v = init[k];
        if (!lg_value_ok(v) || v.graph != g)
            return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "%s: initial state %d is %s", layer, k,
                              lg_value_ok(v) ? "a value of another graph" : "an invalid value");
        lg_shape s = lg_value_shape(v);
        if (lg_value_dtype(v) != dt)
            return lg_graph_fail_status(g, LG_ERR_DTYPE, "%s: initial state %d '%s' is %s, the cell is %s", layer, k,
                              lg_value_name(v), lg_dtype_name(lg_value_dtype(v)), lg_dtype_name(dt));
        bool batch_ok = s.rank == 2 && (s.dims[0] < 0 || batch < 0 || s.dims[0] == batch);
        if (s.rank != 2 || s.dims[1] != u || !batch_ok)
            return lg_graph_fail_status(g, LG_ERR_SHAPE, "%s: initial state %d '%s' must be [B, %d] with B = %lld, got %s", layer,
                              k, lg_value_name(v), u, (long long)batch, lg_shape_cstr(s));
    }
    return LG_OK;
}

/* Zeros [B, u] with x's batch, which may be known only at run time: a where
 * over a [B, 1] slice of x broadcasts the [u] zeros to it without reading
 * x's values (so NaNs in x do not leak in) or passing it a gradient. */
static lg_value zero_state(lg_graph *g, lg_value x_tm, int units)
{
    lg_value x0 = lg_slice(lg_squeeze(lg_slice(x_tm, 0, 0, 1), 0), 1, 0, 1); /* [B, 1] */
    lg_value z = lg_broadcast_to(lg_scalar(g, lg_value_dtype(x_tm), 0), lg_shape_of(1, units));
    return lg_where(x0, z, z);
}

/* A 0/1 mask input [B, n] the caller feeds, scaled by 1 / (1 - rate). */
static lg_value mask_input(lg_graph *g, const char *name, lg_dtype dt, int64_t batch, int64_t n, double rate,
                           lg_value *placeholder)
{
    *placeholder = lg_input(g, name, dt, (lg_shape){.rank = 2, .dims = {batch, n}});
    return lg_scale(*placeholder, 1.0 / (1.0 - rate));
}

/* Reverse the time axis of a time-major sequence [T, ...]. */
static lg_value reverse_time(lg_value seq_tm, lg_value iota)
{
    lg_value last = lg_add_scalar(lg_numel(iota, NULL, 0), -1);
    return lg_gather(seq_tm, lg_cast(lg_sub(last, iota), LG_I32));
}

/* Keras's last output with zero_output_for_mask is the output of the last
 * step run, zero when that step is masked: whether it is valid, [B]. */
static lg_value last_step_valid(lg_graph *g, const prep *p, const lg_rnn_opts *o, bool reverse)
{
    lg_value iota = lg_time_iota(g, p->x_tm, true); /* [T] */
    lg_value last = lg_cast(reverse ? lg_scale(lg_numel(iota, NULL, 0), 0) : lg_add_scalar(lg_numel(iota, NULL, 0), -1),
                            LG_I32);
    if (o->mask.graph) return lg_gather(p->mask_tm, last); /* [B] */
    lg_value len = lg_cast(o->lengths, lg_value_dtype(iota));
    return lg_compare(lg_gather(iota, last), len, LG_CMP_LT);
}

/* One direction: the loop over p->x_tm, run backwards when reverse. With
 * flip, a returned sequence is put in processing order (go_backwards);
 * without, it stays aligned with x's time. */
static lg_status run_direction(lg_graph *g, const char *layer, lg_cell *cell, const prep *p, const lg_rnn_opts *o,
                               const lg_value *init, bool reverse, bool flip, bool zero_output, lg_rnn_result *r)
{
    lg_dtype dt = lg_cell_get_opts(cell).dtype;
    int n_states = lg_cell_state_count(cell), u = lg_cell_units(cell);
    lg_value init_v[LG_RNN_MAX_STATES];
    LG_ASSERT(n_states <= LG_RNN_MAX_STATES);
    for (int k = 0; k < n_states; k++) init_v[k] = init ? init[k] : zero_state(g, p->x_tm, u);

    lg_value xm = lg_value_invalid(), hm = lg_value_invalid();
    if (o->training && o->dropout > 0)
        xm = mask_input(g, "dropout_mask", dt, p->batch, cell_input_dim(cell), o->dropout, &r->dropout_mask);
    if (o->training && o->recurrent_dropout > 0)
        hm = mask_input(g, "recurrent_dropout_mask", dt, p->batch, u, o->recurrent_dropout,
                        &r->recurrent_dropout_mask);
    lg_status s = graph_status(g, layer);
    if (s != LG_OK) return s;

    lg_loop_opts lo = lg_loop_opts_default();
    lo.reverse = reverse;
    lo.time_major = true;
    lo.unroll = o->unroll;
    lo.lengths = o->lengths; /* Keras masking: masked steps keep the states */
    lo.mask = p->mask_tm;
    lo.zero_output_for_mask = zero_output;
    lo.batched = true;
    lg_loop *l = lg_loop_new(g, NULL, lo);
    lg_value x_t = lg_loop_seq(l, p->x_tm);
    lg_value st[LG_RNN_MAX_STATES], next[LG_RNN_MAX_STATES], y = lg_value_invalid();
    for (int k = 0; k < n_states; k++) st[k] = lg_loop_state(l, init_v[k]);
    lg_value xm_b = lg_value_ok(xm) ? lg_loop_invariant(l, xm) : lg_value_invalid();
    lg_value hm_b = lg_value_ok(hm) ? lg_loop_invariant(l, hm) : lg_value_invalid();
    for (int k = 0; k < n_states; k++) next[k] = lg_value_invalid();
    lg_cell_step(cell, l, x_t, st, xm_b, hm_b, next, &y);
    for (int k = 0; k < n_states; k++) lg_loop_next(l, st[k], next[k]);
    if (o->return_sequences) lg_loop_emit(l, y);
    lg_value ys = lg_value_invalid();
    s = lg_loop_end(l, r->states, o->return_sequences ? &ys : NULL);
    if (s != LG_OK) return graph_status(g, layer);
    r->n_states = n_states;

    if (o->return_sequences) {
        if (flip) ys = reverse_time(ys, p->iota);
        int tm[3] = {1, 0, 2};
        r->output = o->time_major ? ys : lg_transpose(ys, tm);
    } else {
        /* the cells' output is their new h, and a masked example's h stays
         * at its last valid step: the last output is the final h */
        r->output = r->states[0];
        if (zero_output && (o->lengths.graph || o->mask.graph) && !(reverse && o->lengths.graph))
            r->output = lg_where(lg_expand_dims(last_step_valid(g, p, o, reverse), -1), r->states[0],
                                 lg_scalar(g, dt, 0));
    }
    return graph_status(g, layer);
}

static void result_clear(lg_rnn_result *r)
{
    r->output = r->dropout_mask = r->recurrent_dropout_mask = lg_value_invalid();
    for (int k = 0; k < LG_RNN_MAX_STATES; k++) r->states[k] = lg_value_invalid();
    r->n_states = 0;
    r->state = NULL;
}

/* ---- stateful layers ---------------------------------------------------------- */

struct lg_rnn_state {
    lg_graph *g;
    int n;
    lg_value input[LG_RNN_MAX_STATES]; /* [batch_size, u], the layer's initial states */
    lg_value final[LG_RNN_MAX_STATES]; /* the layer's final states */
    lg_value x; /* [B, T, F], the layer's input: B must be batch_size */
    lg_tensor *cur[LG_RNN_MAX_STATES], *next[LG_RNN_MAX_STATES];
};

void lg_rnn_state_free(lg_rnn_state *st)
{
    if (!st) return;
    for (int k = 0; k < LG_RNN_MAX_STATES; k++) lg_tensor_free(st->cur[k]), lg_tensor_free(st->next[k]);
    free(st);
}

static const char *const STATE_NAMES[LG_RNN_MAX_STATES] = {"state_h", "state_c"};

/* The state inputs of a stateful layer, and in init the initial states it
 * runs from. When x's batch is known only at run time, each input goes
 * through a concat with zeros of x's batch along the units, which the
 * compiler rejects, naming the scope, when the batches differ (a where or
 * add would broadcast a batch of 1 instead). */
static lg_status stateful_begin(lg_graph *g, const char *layer, const lg_cell *cell, lg_value x, const prep *p,
                                const lg_rnn_opts *o, lg_rnn_state **out, lg_value *init)
{
    *out = NULL;
    if (o->batch_size < 1)
        return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "%s: stateful needs batch_size >= 1, got %lld", layer,
                          (long long)o->batch_size);
    if (o->initial_state)
        return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT,
                          "%s: stateful takes its initial states from the previous run, not initial_state", layer);
    if (p->batch >= 0 && p->batch != o->batch_size)
        return lg_graph_fail_status(g, LG_ERR_SHAPE, "%s: x '%s' %s has batch %lld but the stateful batch_size is %lld", layer,
                          lg_value_name(x), lg_shape_cstr(lg_value_shape(x)), (long long)p->batch,
                          (long long)o->batch_size);
    lg_dtype dt = lg_cell_get_opts(cell).dtype;
    int u = lg_cell_units(cell);
    lg_shape shape = {.rank = 2, .dims = {o->batch_size, u}};
    lg_rnn_state *st = calloc(1, sizeof *st);
    if (!st) return lg_graph_fail_status(g, LG_ERR_OUT_OF_MEMORY, "%s: out of memory", layer);
    st->g = g;
    st->x = x;
    st->n = lg_cell_state_count(cell);
    for (int k = 0; k < st->n; k++) {
        lg_status s = lg_tensor_new(dt, shape, &st->cur[k]);
        if (s == LG_OK) s = lg_tensor_new(dt, shape, &st->next[k]);
        if (s != LG_OK) {
            lg_rnn_state_free(st);
            return lg_graph_fail_status(g, s, "%s: state %d: %s", layer, k, lg_last_error());
        }
        st->input[k] = init[k] = lg_input(g, STATE_NAMES[k], dt, shape);
    }
    if (p->batch < 0) {
        lg_scope_push(g, "x_batch_is_stateful_batch_size");
        lg_value zx = zero_state(g, p->x_tm, u); /* [B, u] */
        for (int k = 0; k < st->n; k++) init[k] = lg_slice(lg_concat((lg_value[2]){init[k], zx}, 2, 1), 1, 0, u);
        lg_scope_pop(g);
    }
    lg_status s = graph_status(g, layer);
    if (s != LG_OK) {
        lg_rnn_state_free(st);
        return s;
    }
    *out = st;
    return LG_OK;
}

int lg_rnn_state_count(const lg_rnn_state *st) { return st ? st->n : 0; }

lg_tensor *lg_rnn_state_tensor(lg_rnn_state *st, int k) { return st && k >= 0 && k < st->n ? st->cur[k] : NULL; }

lg_status lg_rnn_state_feeds(const lg_rnn_state *st, lg_feed *feeds, int *n)
{
    if (!st || !feeds || !n) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_rnn_state_feeds: NULL argument");
    for (int k = 0; k < st->n; k++) feeds[(*n)++] = (lg_feed){st->input[k], st->cur[k]};
    return LG_OK;
}

lg_status lg_rnn_state_fetches(const lg_rnn_state *st, lg_value *fetches, int *n)
{
    if (!st || !fetches || !n) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_rnn_state_fetches: NULL argument");
    for (int k = 0; k < st->n; k++) fetches[(*n)++] = st->final[k];
    return LG_OK;
}

lg_status lg_rnn_state_update(lg_rnn_state *st, lg_tensor *const *final_states)
{
    if (!st || !final_states) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_rnn_state_update: NULL argument");
    for (int k = 0; k < st->n; k++) {
        const lg_tensor *t = final_states[k];
        if (!t) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_rnn_state_update: final state %d is NULL", k);
        if (lg_tensor_dtype(t) != lg_tensor_dtype(st->cur[k]))
            return lg_fail(LG_ERR_DTYPE, "lg_rnn_state_update: final state %d is %s, the state '%s' is %s", k,
                           lg_dtype_name(lg_tensor_dtype(t)), lg_value_name(st->input[k]),
                           lg_dtype_name(lg_tensor_dtype(st->cur[k])));
        if (!lg_shape_equal(lg_tensor_shape(t), lg_tensor_shape(st->cur[k])))
            return lg_fail(LG_ERR_SHAPE, "lg_rnn_state_update: final state %d is %s, the state '%s' is %s", k,
                           lg_shape_cstr(lg_tensor_shape(t)), lg_value_name(st->input[k]),
                           lg_shape_cstr(lg_tensor_shape(st->cur[k])));
    }
    for (int k = 0; k < st->n; k++) {
        lg_status s = lg_tensor_copy(st->cur[k], final_states[k]);
        LG_ASSERT(s == LG_OK); /* dtype and shape checked above */
    }
    return LG_OK;
}

void lg_rnn_state_reset(lg_rnn_state *st)
{
    for (int k = 0; st && k < st->n; k++) lg_tensor_fill(st->cur[k], 0);
}

lg_status lg_rnn_state_explain(lg_rnn_state *const *states, int n, const lg_feed *feeds, int n_feeds, lg_status s)
{
    if (s != LG_ERR_SHAPE) return s;
    char was[1024];
    snprintf(was, sizeof was, "%s", lg_last_error()); /* the inference below may overwrite it */
    int32_t inputs[n_feeds > 0 ? n_feeds : 1];
    lg_port ports[n_feeds > 0 ? n_feeds : 1];
    for (int i = 0; i < n_feeds; i++) {
        inputs[i] = feeds[i].input.node;
        ports[i] = (lg_port){lg_tensor_dtype(feeds[i].tensor), lg_tensor_shape(feeds[i].tensor)};
    }
    for (int i = 0; i < n; i++) {
        const lg_rnn_state *st = states[i];
        lg_ref want = {st->x.node, st->x.output};
        lg_port x;
        if (lg_body_ports(st->g, inputs, ports, n_feeds, &want, 1, &x) != LG_OK) continue; /* x's own error */
        int64_t rows = lg_value_shape(st->input[0]).dims[0];
        if (x.shape.dims[0] == rows) continue;
        /* the layer's scope: its state input's name without "/state_h" */
        const char *name = lg_value_name(st->input[0]), *slash = strrchr(name, '/');
        return lg_fail(LG_ERR_SHAPE,
                       "stateful layer '%.*s': batch %lld, its states hold %lld rows (a stateful layer's batch is "
                       "fixed: feed batches of %lld, or build the layer again with another batch_size)",
                       slash ? (int)(slash - name) : (int)strlen(name), name, (long long)x.shape.dims[0],
                       (long long)rows, (long long)rows);
    }
    return lg_fail(s, "%s", was);
}

lg_status lg_rnn_state_run(lg_graph *g, lg_rnn_state *const *states, int n, const lg_feed *feeds, int n_feeds,
                           const lg_value *fetches, int n_fetches, lg_tensor **out)
{
    if (!g) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_rnn_state_run: graph is NULL");
    if (n < 0 || (n > 0 && !states) || n_feeds < 0 || (n_feeds > 0 && !feeds) || n_fetches < 1 || !fetches || !out)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_rnn_state_run: NULL array or bad count");
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (!states[i]) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_rnn_state_run: state %d is NULL", i);
        if (states[i]->g != g)
            return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_rnn_state_run: state %d ('%s') is of another graph", i,
                           lg_value_name(states[i]->input[0]));
        for (int j = 0; j < i; j++)
            if (states[j] == states[i])
                return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_rnn_state_run: state %d ('%s') is given twice", i,
                               lg_value_name(states[i]->input[0]));
        m += states[i]->n;
    }
    lg_feed *f = malloc((size_t)(n_feeds + m) * sizeof *f);
    lg_value *v = malloc((size_t)(n_fetches + m) * sizeof *v);
    lg_tensor **o = malloc((size_t)(n_fetches + m) * sizeof *o);
    lg_status s = f && v && o ? LG_OK : lg_fail(LG_ERR_OUT_OF_MEMORY, "lg_rnn_state_run: out of memory");
    if (s == LG_OK) {
        int nf = n_feeds, nv = n_fetches;
        for (int i = 0; i < n_feeds; i++) f[i] = feeds[i];
        for (int i = 0; i < n_fetches; i++) v[i] = fetches[i], o[i] = out[i];
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < states[i]->n; k++) o[nv + k] = states[i]->next[k];
            lg_rnn_state_feeds(states[i], f, &nf);
            lg_rnn_state_fetches(states[i], v, &nv);
        }
        s = lg_rnn_state_explain(states, n, f, nf, lg_graph_run(g, f, nf, v, nv, o));
    }
    if (s == LG_OK) {
        for (int i = 0; i < n_fetches; i++) out[i] = o[i];
        for (int i = 0; i < n; i++)
            for (int k = 0; k < states[i]->n; k++) {
                lg_tensor *t = states[i]->cur[k];
                states[i]->cur[k] = states[i]->next[k], states[i]->next[k] = t;
            }
    }
    free(f), free(v), free(o);
    return s;
}

static lg_status start(lg_graph *g, const char *what, const void *r)
{
    if (!g) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: graph is NULL", what);
    if (g->error) return lg_fail(LG_ERR_GRAPH, "%s: the graph has an error: %s", what, g->error);
    if (!r) return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "%s: result is NULL", what);
    return LG_OK;
}

/* The Keras class name of a layer over this cell, and the cell's parameters. */
static const char *cell_layer_type(const lg_cell *c)
{
    static const char *const names[] = {[LG_CELL_SIMPLE_RNN] = "SimpleRNN", [LG_CELL_LSTM] = "LSTM", [LG_CELL_GRU] = "GRU"};
    static_assert(LG_ARRAY_LEN(names) == LG_CELL_KIND_COUNT, "a layer type per cell kind");
    return names[lg_cell_get_opts(c).kind];
}

static int cell_params(const lg_cell *c, lg_value *out)
{
    lg_value all[3] = {lg_cell_kernel(c), lg_cell_recurrent_kernel(c), lg_cell_bias(c)};
    int n = 0;
    for (int i = 0; i < 3; i++)
        if (lg_value_ok(all[i])) out[n++] = all[i];
    return n;
}

lg_status lg_rnn(lg_graph *g, const char *name, lg_cell *cell, lg_value x, lg_rnn_opts o, lg_rnn_result *r)
{
    if (r) result_clear(r);
    char layer[160];
    if (!name || !name[0]) name = cell ? lg_cell_name(cell) : "rnn";
    snprintf(layer, sizeof layer, "rnn '%s'", name);
    lg_status s = start(g, layer, r);
    if (s != LG_OK) return s;
    lg_scope_push(g, name);
    prep p;
    s = prepare(g, layer, x, &o, &p);
    if (s == LG_OK) s = check_cell(g, layer, cell, x);
    if (s == LG_OK && o.initial_state && o.n_initial_state != lg_cell_state_count(cell))
        s = lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "%s: %d initial states given, the cell carries %d", layer,
                       o.n_initial_state, lg_cell_state_count(cell));
    if (s == LG_OK && o.initial_state) s = check_initial(g, layer, cell, o.initial_state, p.batch);
    lg_rnn_state *st = NULL;
    lg_value st_init[LG_RNN_MAX_STATES];
    if (s == LG_OK && o.stateful) {
        s = stateful_begin(g, layer, cell, x, &p, &o, &st, st_init);
        if (p.batch < 0) p.batch = o.batch_size;
    }
    const lg_value *init = st ? st_init : o.initial_state;
    if (s == LG_OK)
        s = run_direction(g, layer, cell, &p, &o, init, o.go_backwards, o.go_backwards, o.zero_output_for_mask, r);
    if (s == LG_OK) {
        lg_value params[3];
        lg_graph_add_layer(g, cell_layer_type(cell), r->output, params, cell_params(cell, params));
    }
    lg_scope_pop(g);
    if (s != LG_OK) {
        lg_rnn_state_free(st);
        result_clear(r);
        return s;
    }
    if (st)
        for (int k = 0; k < st->n; k++) st->final[k] = r->states[k];
    r->state = st;
    return s;
}

const char *lg_merge_mode_name(lg_merge_mode m)
{
    static const char *const names[] = {[LG_MERGE_CONCAT] = "concat", [LG_MERGE_SUM] = "sum", [LG_MERGE_MUL] = "mul",
                                        [LG_MERGE_AVE] = "ave", [LG_MERGE_NONE] = "none"};
    static_assert(LG_ARRAY_LEN(names) == LG_MERGE_COUNT, "a name per merge mode");
    return (int)m >= 0 && m < LG_MERGE_COUNT ? names[m] : "?";
}

static lg_value merge(lg_value a, lg_value b, lg_merge_mode m)
{
    switch (m) {
    case LG_MERGE_CONCAT: return lg_concat((lg_value[2]){a, b}, 2, -1);
    case LG_MERGE_SUM: return lg_add(a, b);
    case LG_MERGE_MUL: return lg_mul(a, b);
    case LG_MERGE_AVE: return lg_scale(lg_add(a, b), 0.5);
    case LG_MERGE_NONE:
    case LG_MERGE_COUNT: break;
    }
    return lg_value_invalid();
}

lg_status lg_bidirectional(lg_graph *g, const char *name, lg_cell *fwd, lg_cell *bwd, lg_value x, lg_merge_mode m,
                           lg_rnn_opts o, lg_bidirectional_result *r)
{
    if (r) {
        result_clear(&r->forward), result_clear(&r->backward);
        r->output = lg_value_invalid();
    }
    char layer[160], own[128];
    snprintf(own, sizeof own, "bidirectional_%s", fwd ? lg_cell_name(fwd) : "rnn");
    if (!name || !name[0]) name = own;
    snprintf(layer, sizeof layer, "bidirectional '%s'", name);
    lg_status s = start(g, layer, r);
    if (s != LG_OK) return s;
    if ((int)m < 0 || m >= LG_MERGE_COUNT)
        return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "%s: unknown merge mode %d (not an lg_merge_mode)",
                                    layer, (int)m);
    if (o.go_backwards)
        return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT,
                          "%s: go_backwards is not an option of a bidirectional layer (its backward direction is)",
                          layer);
    lg_scope_push(g, name);
    prep p;
    s = prepare(g, layer, x, &o, &p);
    if (s == LG_OK) s = check_cell(g, layer, fwd, x);
    if (s == LG_OK) s = check_cell(g, layer, bwd, x);
    int nf = s == LG_OK ? lg_cell_state_count(fwd) : 0, nb = s == LG_OK ? lg_cell_state_count(bwd) : 0;
    if (s == LG_OK && o.initial_state && o.n_initial_state != nf + nb)
        s = lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT,
                       "%s: %d initial states given, the directions carry %d + %d (forward first)", layer,
                       o.n_initial_state, nf, nb);
    if (s == LG_OK && m != LG_MERGE_CONCAT && m != LG_MERGE_NONE && lg_cell_units(fwd) != lg_cell_units(bwd))
        s = lg_graph_fail_status(g, LG_ERR_SHAPE, "%s: merge mode '%s' needs equal units, got %d and %d", layer,
                                 lg_merge_mode_name(m), lg_cell_units(fwd), lg_cell_units(bwd));
    if (s == LG_OK && o.initial_state) s = check_initial(g, layer, fwd, o.initial_state, p.batch);
    if (s == LG_OK && o.initial_state) s = check_initial(g, layer, bwd, o.initial_state + nf, p.batch);
    /* Keras forces zero_output_for_mask to return_sequences: the backward
     * outputs are reversed back to forward time, where repeating "the last
     * valid output" would mean the wrong neighbour */
    bool zero = o.return_sequences;
    lg_value st_init[2][LG_RNN_MAX_STATES];
    if (s == LG_OK) {
        lg_scope_push(g, "forward");
        if (o.stateful) s = stateful_begin(g, layer, fwd, x, &p, &o, &r->forward.state, st_init[0]);
        if (s == LG_OK)
            s = run_direction(g, layer, fwd, &p, &o, o.stateful ? st_init[0] : o.initial_state, false, false, zero,
                              &r->forward);
        lg_scope_pop(g);
    }
    if (s == LG_OK) {
        /* reversed, not flipped: outputs stay aligned with forward time and
         * a masked example's padded steps (met first) keep the initial state */
        lg_scope_push(g, "backward");
        if (o.stateful) s = stateful_begin(g, layer, bwd, x, &p, &o, &r->backward.state, st_init[1]);
        if (s == LG_OK)
            s = run_direction(g, layer, bwd, &p, &o,
                              o.stateful ? st_init[1] : o.initial_state ? o.initial_state + nf : NULL, true, false,
                              zero, &r->backward);
        lg_scope_pop(g);
    }
    for (int d = 0; s == LG_OK && d < 2; d++) {
        lg_rnn_result *dr = d ? &r->backward : &r->forward;
        for (int k = 0; dr->state && k < dr->state->n; k++) dr->state->final[k] = dr->states[k];
    }
    if (s == LG_OK && m != LG_MERGE_NONE) {
        r->output = merge(r->forward.output, r->backward.output, m);
        s = graph_status(g, layer);
    }
    if (s == LG_OK) {
        lg_value params[6];
        int n = cell_params(fwd, params);
        n += cell_params(bwd, params + n);
        lg_graph_add_layer(g, "Bidirectional", m == LG_MERGE_NONE ? r->forward.output : r->output, params, n);
    }
    lg_scope_pop(g);
    if (s != LG_OK) {
        lg_rnn_state_free(r->forward.state), lg_rnn_state_free(r->backward.state);
        result_clear(&r->forward), result_clear(&r->backward);
        r->output = lg_value_invalid();
    }
    return s;
}

/* ---- helpers for feeding ---------------------------------------------------- */

lg_status lg_dropout_mask_fill(lg_tensor *t, double rate, uint64_t seed, uint64_t key)
{
    if (!t) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_dropout_mask_fill: tensor is NULL");
    if (!rate_ok(rate)) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_dropout_mask_fill: rate %g outside [0, 1)", rate);
    if (lg_tensor_dtype(t) == LG_I32) return lg_fail(LG_ERR_DTYPE, "lg_dropout_mask_fill: the mask must be float");
    for (int64_t i = 0; i < lg_tensor_numel(t); i++)
        lg_tensor_set(t, i, lg_philox_uniform(seed, key, (uint64_t)i) >= rate ? 1.0 : 0.0);
    return LG_OK;
}

lg_status lg_lengths_check(const lg_tensor *lengths, int64_t steps)
{
    if (!lengths) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_lengths_check: lengths is NULL");
    if (lg_tensor_dtype(lengths) != LG_I32)
        return lg_fail(LG_ERR_DTYPE, "lg_lengths_check: lengths must be i32, got %s",
                       lg_dtype_name(lg_tensor_dtype(lengths)));
    if (lg_tensor_shape(lengths).rank != 1)
        return lg_fail(LG_ERR_SHAPE, "lg_lengths_check: lengths must be [B], got %s",
                       lg_shape_cstr(lg_tensor_shape(lengths)));
    const int32_t *v = lg_tensor_cdata(lengths);
    for (int64_t i = 0; i < lg_tensor_numel(lengths); i++)
        if (v[i] < 1 || v[i] > steps)
            return lg_fail(LG_ERR_FEED, "lengths[%lld] = %d is outside [1, %lld] (T = %lld)", (long long)i, (int)v[i],
                           (long long)steps, (long long)steps);
    return LG_OK;
}

/* ---- Dense and Embedding ----------------------------------------------------- */

static bool name_ok(const char *name) { return name && name[0] && !strchr(name, '/'); }

/* The layer parameter pname in the current scope: the existing one when a
 * layer of this name was built before (Keras: calling a layer again shares
 * its weights; its shape must fit), else a new one; *fresh says which. */
static lg_value layer_param(lg_graph *g, const char *pname, lg_dtype dt, lg_shape want, bool *fresh)
{
    size_t n = strlen(g->scope) + strlen(pname) + 1;
    char *full = malloc(n);
    if (!full) return lg_graph_fail(g, "%s%s: out of memory", g->scope, pname);
    snprintf(full, n, "%s%s", g->scope, pname);
    lg_value p = lg_graph_find_param(g, full);
    free(full);
    *fresh = !lg_value_ok(p);
    if (*fresh) return lg_param(g, pname, dt, want);
    if (lg_value_dtype(p) != dt || !lg_shape_equal(lg_value_shape(p), want))
        return lg_graph_fail(g, "shared parameter '%s' is %s %s, this call needs %s %s", lg_value_name(p),
                             lg_dtype_name(lg_value_dtype(p)), lg_shape_cstr(lg_value_shape(p)), lg_dtype_name(dt),
                             lg_shape_cstr(want));
    return p;
}

lg_value lg_dense(lg_graph *g, const char *name, lg_value x, int units, lg_dense_opts o)
{
    if (!g || g->error) return lg_value_invalid();
    if (!name_ok(name)) return lg_graph_fail(g, "dense: a name without '/' is required");
    if (!lg_value_ok(x) || x.graph != g)
        return lg_graph_fail(g, "dense '%s': x is %s", name, lg_value_ok(x) ? "a value of another graph" : "invalid");
    lg_shape xs = lg_value_shape(x);
    lg_dtype dt = lg_value_dtype(x);
    if (dt == LG_I32) return lg_graph_fail(g, "dense '%s': x '%s' must be float, got i32", name, lg_value_name(x));
    if (xs.rank < 2 || xs.dims[xs.rank - 1] < 1)
        return lg_graph_fail(g, "dense '%s': x '%s' must be [..., in] with rank >= 2 and a known in, got %s", name,
                             lg_value_name(x), lg_shape_cstr(xs));
    if (units < 1) return lg_graph_fail(g, "dense '%s': units %d must be >= 1", name, units);
    if ((int)o.activation < 0 || o.activation >= LG_ACT_COUNT)
        return lg_graph_fail(g, "dense '%s': unknown activation %d", name, (int)o.activation);
    lg_scope_push(g, name);
    bool fresh = false, fresh_bias = false;
    lg_value kernel = layer_param(g, "kernel", dt, (lg_shape){.rank = 2, .dims = {xs.dims[xs.rank - 1], units}}, &fresh);
    lg_value bias = o.use_bias ? layer_param(g, "bias", dt, lg_shape_of(1, units), &fresh_bias) : lg_value_invalid();
    if (!g->error && fresh && lg_init_glorot_uniform(lg_param_tensor(kernel), o.seed, 0) != LG_OK)
        lg_graph_fail(g, "dense '%s': %s", name, lg_last_error());
    lg_value y = lg_matmul(x, kernel, false, false);
    if (o.use_bias) y = lg_add(y, bias); /* bias stays zero-filled: Keras's zeros */
    y = lg_activate(y, o.activation);
    lg_graph_add_layer(g, "Dense", y, (lg_value[2]){kernel, bias}, o.use_bias ? 2 : 1);
    lg_scope_pop(g);
    return y;
}

lg_value lg_embedding(lg_graph *g, const char *name, lg_value ids, int vocab, int dim, lg_embedding_opts o,
                      lg_value *mask)
{
    if (!g || g->error) return lg_value_invalid();
    if (!name_ok(name)) return lg_graph_fail(g, "embedding: a name without '/' is required");
    if (!lg_value_ok(ids) || ids.graph != g)
        return lg_graph_fail(g, "embedding '%s': ids are %s", name,
                             lg_value_ok(ids) ? "a value of another graph" : "invalid");
    if (lg_value_dtype(ids) != LG_I32)
        return lg_graph_fail(g, "embedding '%s': ids '%s' must be i32, got %s", name, lg_value_name(ids),
                             lg_dtype_name(lg_value_dtype(ids)));
    if (vocab < 1 || dim < 1)
        return lg_graph_fail(g, "embedding '%s': vocab %d and dim %d must be >= 1", name, vocab, dim);
    if (o.dtype != LG_F32 && o.dtype != LG_F64)
        return lg_graph_fail(g, "embedding '%s': dtype must be f32 or f64", name);
    if (o.mask_zero && !mask) return lg_graph_fail(g, "embedding '%s': mask_zero needs a mask to put it in", name);
    lg_scope_push(g, name);
    bool fresh = false;
    lg_value table = layer_param(g, "embeddings", o.dtype, lg_shape_of(2, vocab, dim), &fresh);
    if (!g->error && fresh && lg_init_uniform(lg_param_tensor(table), -0.05, 0.05, o.seed, 0) != LG_OK)
        lg_graph_fail(g, "embedding '%s': %s", name, lg_last_error());
    lg_value y = lg_gather(table, ids);
    if (o.mask_zero) *mask = lg_compare(ids, lg_scalar(g, LG_I32, 0), LG_CMP_NE);
    lg_graph_add_layer(g, "Embedding", y, &table, 1);
    lg_scope_pop(g);
    return y;
}

lg_value lg_masking(lg_graph *g, const char *name, lg_value x, double mask_value, lg_value *mask)
{
    if (!g || g->error) return lg_value_invalid();
    if (!name_ok(name)) return lg_graph_fail(g, "masking: a name without '/' is required");
    if (!mask) return lg_graph_fail(g, "masking '%s': mask is NULL", name);
    if (!lg_value_ok(x) || x.graph != g)
        return lg_graph_fail(g, "masking '%s': x is %s", name, lg_value_ok(x) ? "a value of another graph" : "invalid");
    if (lg_value_dtype(x) == LG_I32 || lg_value_rank(x) != 3)
        return lg_graph_fail(g, "masking '%s': x '%s' must be a float [B, T, F], got %s %s", name, lg_value_name(x),
                             lg_dtype_name(lg_value_dtype(x)), lg_shape_cstr(lg_value_shape(x)));
    lg_scope_push(g, name);
    /* a step is valid when any feature differs from mask_value */
    lg_value differs = lg_compare(x, lg_scalar(g, lg_value_dtype(x), mask_value), LG_CMP_NE); /* [B, T, F] */
    lg_value keep = lg_max(differs, (int[1]){2}, 1, true);                                   /* [B, T, 1] */
    lg_value y = lg_mul(x, keep);
    *mask = lg_squeeze(keep, 2);
    lg_graph_add_layer(g, "Masking", y, NULL, 0);
    lg_scope_pop(g);
    return y;
}
