/* loop.c — building a loop node (include/graph/loop.h). */
#include <stdarg.h>
#include <string.h>

#include "graph/loop.h"
#include "graph/ops.h"
#include "ops/op.h"

typedef enum part { SEQ, STATE, INV, PART_COUNT } part;

/* outer values and the body inputs they feed, per part */
typedef struct binding {
    lg_value *outer;
    int32_t *body_in;
    int n, cap;
} binding;

struct lg_loop {
    lg_graph *g, *body;
    char *name; /* the node's name, a copy */
    lg_loop_opts opts;
    binding parts[PART_COUNT];
    lg_value *next; /* per state */
    lg_value *ys;
    int n_y, cap_y;
    lg_value stop; /* invalid: none */
    /* Repeated outputs filled after the loop (see mask_steps): per output,
     * the state whose final value fills its padded steps, or -1 */
    int *fill_state;
    lg_value valid; /* [B, T] or [T, B] */
    bool failed;
    bool lower_now; /* lg_loop_lower: masking and truncation become where nodes now */
};

lg_loop_opts lg_loop_opts_default(void) { return (lg_loop_opts){.zero_output_for_mask = true}; }

static void loop_free(lg_loop *l)
{
    if (!l) return;
    for (int p = 0; p < PART_COUNT; p++) free(l->parts[p].outer), free(l->parts[p].body_in);
    free(l->next), free(l->ys), free(l->fill_state), free(l->name);
    lg_graph_free(l->body);
    free(l);
}

lg_loop *lg_loop_new(lg_graph *g, const char *name, lg_loop_opts opts)
{
    if (!g || g->error) return NULL;
    lg_loop *l = calloc(1, sizeof *l);
    if (l) l->body = lg_graph_new();
    if (l) l->name = strdup(name && name[0] ? name : "loop");
    if (!l || !l->body || !l->name) {
        if (l) lg_graph_free(l->body), free(l->name);
        free(l);
        lg_graph_fail(g, "loop: out of memory");
        return NULL;
    }
    l->g = g;
    l->stop = lg_value_invalid();
    l->body->is_body = true;
    l->opts = opts;
    return l;
}

lg_graph *lg_loop_body(lg_loop *l) { return l ? l->body : NULL; }

static void fail(lg_loop *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(lg_loop *l, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lg_graph_fail(l->g, "loop '%s': %s", l->name, msg);
    l->failed = true;
}

/* Why a body value is invalid: the body's own error, if it has one. */
static const char *body_error(const lg_loop *l)
{
    return l->body->error ? l->body->error : "an invalid value";
}

static bool binding_grow(binding *b)
{
    if (b->n < b->cap) return true;
    int cap = b->cap ? 2 * b->cap : 8;
    lg_value *outer = realloc(b->outer, (size_t)cap * sizeof *outer);
    if (outer) b->outer = outer;
    int32_t *body_in = realloc(b->body_in, (size_t)cap * sizeof *body_in);
    if (body_in) b->body_in = body_in;
    if (!outer || !body_in) return false;
    b->cap = cap;
    return true;
}

/* Bind an outer value to a new body input of the given port. */
static lg_value bind(lg_loop *l, part p, lg_value v, const char *name)
{
    if (!l || l->failed) return lg_value_invalid();
    if (!lg_value_ok(v) || v.graph != l->g) {
        fail(l, "%s: %s", name, lg_value_ok(v) ? "the value belongs to another graph" : "an invalid value");
        return lg_value_invalid();
    }
    lg_port port = *lg_value_port(v);
    if (p == SEQ) {
        int t_axis = l->opts.time_major ? 0 : 1;
        if (port.shape.rank < 2) {
            fail(l, "sequence '%s' needs [B, T, ...], got %s", lg_value_name(v), lg_shape_cstr(port.shape));
            return lg_value_invalid();
        }
        for (int i = t_axis; i + 1 < port.shape.rank; i++) port.shape.dims[i] = port.shape.dims[i + 1];
        port.shape.rank--;
    }
    binding *b = &l->parts[p];
    if (!binding_grow(b)) {
        fail(l, "%s: out of memory", name);
        return lg_value_invalid();
    }
    lg_value in = lg_input(l->body, name, port.dtype, port.shape);
    if (!lg_value_ok(in)) {
        fail(l, "%s: %s", name, lg_graph_error(l->body));
        return lg_value_invalid();
    }
    b->outer[b->n] = v;
    b->body_in[b->n] = in.node;
    b->n++;
    return in;
}

lg_value lg_loop_seq(lg_loop *l, lg_value seq) { return bind(l, SEQ, seq, "x_t"); }
lg_value lg_loop_invariant(lg_loop *l, lg_value v) { return bind(l, INV, v, "invariant"); }

lg_value lg_loop_state(lg_loop *l, lg_value init)
{
    lg_value in = bind(l, STATE, init, "state");
    if (!lg_value_ok(in)) return in;
    lg_value *next = realloc(l->next, (size_t)l->parts[STATE].n * sizeof *next);
    if (!next) {
        fail(l, "state: out of memory");
        return lg_value_invalid();
    }
    l->next = next;
    l->next[l->parts[STATE].n - 1] = lg_value_invalid();
    return in;
}

void lg_loop_next(lg_loop *l, lg_value state, lg_value next)
{
    if (!l || l->failed) return;
    if (next.graph != l->body || !lg_value_ok(next)) {
        fail(l, "next state: %s", lg_value_ok(next) ? "not a value of the body" : body_error(l));
        return;
    }
    const binding *b = &l->parts[STATE];
    for (int k = 0; k < b->n; k++)
        if (state.graph == l->body && state.node == b->body_in[k]) {
            if (lg_value_ok(l->next[k])) fail(l, "state %d (initial value '%s') has a next value already", k, lg_value_name(b->outer[k]));
            l->next[k] = next;
            return;
        }
    fail(l, "lg_loop_next: '%s' is not a state of this loop", lg_value_name(state));
}

void lg_loop_emit(lg_loop *l, lg_value y)
{
    if (!l || l->failed) return;
    if (y.graph != l->body || !lg_value_ok(y)) {
        fail(l, "output: %s", lg_value_ok(y) ? "not a value of the body" : body_error(l));
        return;
    }
    if (l->n_y == l->cap_y) {
        int cap = l->cap_y ? 2 * l->cap_y : 4;
        lg_value *ys = realloc(l->ys, (size_t)cap * sizeof *ys);
        if (!ys) {
            fail(l, "output: out of memory");
            return;
        }
        l->ys = ys;
        l->cap_y = cap;
    }
    l->ys[l->n_y++] = y;
}

void lg_loop_until(lg_loop *l, lg_value stop)
{
    if (!l || l->failed) return;
    if (stop.graph != l->body || !lg_value_ok(stop)) {
        fail(l, "stop condition: %s", lg_value_ok(stop) ? "not a value of the body" : body_error(l));
        return;
    }
    if (lg_shape_numel(lg_value_shape(stop)) != 1) {
        fail(l, "the stop condition '%s' must be a scalar, got %s", lg_value_name(stop),
             lg_shape_cstr(lg_value_shape(stop)));
        return;
    }
    if (lg_value_ok(l->stop)) fail(l, "a second stop condition");
    l->stop = stop;
}

/* [B, T, ...] <-> [T, B, ...] */
static lg_value swap_batch_time(lg_value v)
{
    int perm[LG_MAX_RANK];
    for (int i = 0; i < lg_value_rank(v); i++) perm[i] = i;
    perm[0] = 1;
    perm[1] = 0;
    return lg_transpose(v, perm);
}

static lg_loop_spec *make_spec(lg_loop *l)
{
    const binding *P = l->parts;
    bool has_stop = lg_value_ok(l->stop);
    int n_in = P[SEQ].n + P[STATE].n + P[INV].n, n_out = P[STATE].n + l->n_y + has_stop;
    lg_loop_spec *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->inputs = malloc((size_t)(n_in ? n_in : 1) * sizeof *s->inputs);
    s->outputs = malloc((size_t)(n_out ? n_out : 1) * sizeof *s->outputs);
    if (!s->inputs || !s->outputs) {
        lg_loop_spec_free(s);
        return NULL;
    }
    int k = 0;
    for (int p = 0; p < PART_COUNT; p++)
        for (int i = 0; i < P[p].n; i++) s->inputs[k++] = P[p].body_in[i];
    for (int i = 0; i < P[STATE].n; i++) s->outputs[i] = (lg_ref){l->next[i].node, l->next[i].output};
    for (int j = 0; j < l->n_y; j++) s->outputs[P[STATE].n + j] = (lg_ref){l->ys[j].node, l->ys[j].output};
    if (has_stop) s->outputs[n_out - 1] = (lg_ref){l->stop.node, l->stop.output};
    s->has_stop = has_stop;
    s->steps = l->opts.max_steps;
    s->n_seq = P[SEQ].n, s->n_state = P[STATE].n, s->n_inv = P[INV].n, s->n_y = l->n_y;
    s->reverse = l->opts.reverse;
    s->batched = l->opts.batched || l->opts.lengths.graph || l->opts.mask.graph;
    s->memory = l->opts.memory;
    s->body = l->body;
    return s;
}

/* Keras unroll: the body inlined once per step into the outer graph, the
 * per-step outputs stacked along time. */
static void unroll(lg_loop *l, int n_states_out, lg_value *states, lg_value *outputs)
{
    const binding *P = l->parts;
    int t_axis = l->opts.time_major ? 0 : 1, n_in = P[SEQ].n + P[STATE].n + P[INV].n;
    int n_out = P[STATE].n + l->n_y;
    int64_t steps = lg_value_shape(P[SEQ].outer[0]).dims[t_axis];
    if (steps < 1) {
        fail(l, "unroll needs a static number of steps; the sequence is %s",
             lg_shape_cstr(lg_value_shape(P[SEQ].outer[0])));
        return;
    }
    lg_loop_spec *s = make_spec(l);
    lg_value *in = malloc((size_t)n_in * sizeof *in), *out = malloc((size_t)(n_out ? n_out : 1) * sizeof *out);
    lg_value *ys = malloc((size_t)(l->n_y * steps + 1) * sizeof *ys); /* [j * steps + t] */
    if (!s || !in || !out || !ys) fail(l, "out of memory");
    for (int p = 0, k = 0; s && in && p < PART_COUNT; p++) /* states and invariants; steps set per step */
        for (int i = 0; i < P[p].n; i++) in[k++] = P[p].outer[i];
    lg_scope_push(l->g, l->name);
    for (int64_t step = 0; !l->failed && step < steps; step++) {
        int64_t t = l->opts.reverse ? steps - 1 - step : step;
        char scope[32];
        snprintf(scope, sizeof scope, "step%lld", (long long)t);
        lg_scope_push(l->g, scope);
        for (int i = 0; i < P[SEQ].n; i++) in[i] = lg_squeeze(lg_slice(P[SEQ].outer[i], t_axis, t, 1), t_axis);
        if (!lg_graph_inline(l->g, l->body, s->inputs, in, n_in, s->outputs, n_out, out)) l->failed = true;
        for (int k = 0; !l->failed && k < P[STATE].n; k++) in[P[SEQ].n + k] = out[k];
        for (int j = 0; !l->failed && j < l->n_y; j++) ys[j * steps + t] = lg_expand_dims(out[P[STATE].n + j], t_axis);
        lg_scope_pop(l->g);
    }
    lg_scope_pop(l->g);
    for (int k = 0; !l->failed && states && k < n_states_out; k++) states[k] = in[P[SEQ].n + k];
    for (int j = 0; !l->failed && outputs && j < l->n_y; j++) outputs[j] = lg_concat(&ys[j * steps], (int)steps, t_axis);
    if (s) s->body = NULL; /* the loop still owns it */
    lg_loop_spec_free(s);
    free(in), free(out), free(ys);
}

/* 0, 1, ..., T-1 as f32 [T] for a sequence: a constant when T is static,
 * else a loop that counts its steps. */
lg_value lg_time_iota(lg_graph *g, lg_value seq, bool time_major)
{
    int64_t steps = lg_value_shape(seq).dims[time_major ? 0 : 1];
    if (steps > 0) {
        lg_tensor *t = NULL;
        if (lg_tensor_new(LG_F32, (lg_shape){.rank = 1, .dims = {steps}}, &t) != LG_OK)
            return lg_graph_fail(g, "iota: %s", lg_last_error());
        for (int64_t i = 0; i < steps; i++) lg_tensor_set(t, i, (double)i);
        lg_value v = lg_constant(g, "iota", t);
        lg_tensor_free(t);
        return v;
    }
    lg_loop_opts lo = lg_loop_opts_default();
    lo.time_major = true; /* the counter's stacked output is [T] */
    lg_loop *l = lg_loop_new(g, "iota", lo);
    /* only sets the number of steps: of a batch-major sequence, example 0's */
    lg_loop_seq(l, time_major ? seq : swap_batch_time(lg_slice(seq, 0, 0, 1)));
    lg_value c = lg_loop_state(l, lg_scalar(g, LG_F32, 0));
    lg_loop_next(l, c, lg_add_scalar(c, 1));
    lg_loop_emit(l, c);
    lg_value out = lg_value_invalid();
    if (lg_loop_end(l, NULL, &out) != LG_OK) return lg_value_invalid();
    return lg_stop_gradient(out);
}

/* v [B, ...] where the body's mask m [B] holds, else `other` (a scalar or
 * v's shape): m gets trailing unit dims to broadcast against v. */
static lg_value where_valid(lg_value m, lg_value v, lg_value other)
{
    for (int r = 1; r < lg_value_rank(v); r++) m = lg_expand_dims(m, -1);
    return lg_where(m, v, other);
}

static bool outer_ok(lg_loop *l, lg_value v, const char *what)
{
    if (lg_value_ok(v) && v.graph == l->g) return true;
    fail(l, "%s: %s", what, lg_value_ok(v) ? "the value belongs to another graph" : "an invalid value");
    return false;
}

/* Push the scopes of a full node name but its last part (returned in
 * *last); returns how many to pop. */
static int push_name(lg_graph *g, const char *full, char *buf, size_t size, const char **last)
{
    snprintf(buf, size, "%s", full);
    int n = 0;
    char *part = buf;
    for (char *slash; (slash = strchr(part, '/')); part = slash + 1, n++) {
        *slash = '\0';
        lg_scope_push(g, part);
    }
    *last = part;
    return n;
}

/* valid [B, T] (or [T, B]) from lengths [B]: valid[b, t] = t < lengths[b].
 * The lengths pass through a gather of iota at lengths - 1 (lengths again,
 * as f32) whose range check makes a length outside [1, T] a run-time error
 * naming it (LG_GATHER_OF_LENGTHS), in the loop's scope. */
static lg_value valid_lengths(lg_graph *g, const char *name, lg_value len, lg_value seq0, bool time_major)
{
    char buf[256];
    const char *last;
    int depth = push_name(g, name, buf, sizeof buf, &last);
    lg_scope_push(g, last);
    lg_value iota = lg_time_iota(g, seq0, time_major); /* [T] */
    lg_scope_push(g, "lengths_in_1_to_T");
    lg_value at = lg_build(LG_OP_GATHER, (lg_value[2]){iota, lg_add_scalar(len, -1)}, 2,
                           &(lg_attrs){.axis = LG_GATHER_OF_LENGTHS});
    lg_value lenf = lg_add_scalar(at, 1); /* [B] */
    lg_scope_pop(g);
    lg_value valid = time_major ? lg_compare(lg_expand_dims(iota, 1), lenf, LG_CMP_LT)  /* [T, B] */
                                : lg_compare(iota, lg_expand_dims(lenf, 1), LG_CMP_LT); /* [B, T] */
    for (int i = 0; i <= depth; i++) lg_scope_pop(g);
    return valid;
}

lg_value lg_loop_valid_of_lengths(lg_graph *g, const char *name, lg_value lengths, lg_value seq)
{
    return valid_lengths(g, name, lengths, seq, true);
}

/* opts.lengths fit the first sequence: i32 [B]. */
static bool lengths_ok(lg_loop *l)
{
    lg_value len = l->opts.lengths, seq0 = l->parts[SEQ].outer[0];
    int t_axis = l->opts.time_major ? 0 : 1;
    lg_shape ls = lg_value_shape(len), xs = lg_value_shape(seq0);
    int64_t batch = xs.dims[1 - t_axis];
    if (lg_value_dtype(len) != LG_I32 || ls.rank != 1 || (ls.dims[0] >= 0 && batch >= 0 && ls.dims[0] != batch)) {
        fail(l, "lengths '%s' must be i32 [B] with the batch of sequence '%s' %s, got %s %s", lg_value_name(len),
             lg_value_name(seq0), lg_shape_cstr(xs), lg_dtype_name(lg_value_dtype(len)), lg_shape_cstr(ls));
        return false;
    }
    return true;
}

/* opts.mask fits the first sequence: [B, T] (or [T, B]). */
static bool mask_ok(lg_loop *l)
{
    lg_value m = l->opts.mask, seq0 = l->parts[SEQ].outer[0];
    lg_shape ms = lg_value_shape(m), xs = lg_value_shape(seq0);
    bool fits = ms.rank == 2;
    for (int i = 0; fits && i < 2; i++) fits = ms.dims[i] < 0 || xs.dims[i] < 0 || ms.dims[i] == xs.dims[i];
    if (!fits) {
        fail(l, "mask '%s' %s must be %s of sequence '%s' %s", lg_value_name(m), lg_shape_cstr(ms),
             l->opts.time_major ? "[T, B]" : "[B, T]", lg_value_name(seq0), lg_shape_cstr(xs));
        return false;
    }
    return true;
}

/* Zeros [B, ...] shaped like the body value y (its dims after the batch
 * static: masking_ok), B taken from valid's step 0 (so it may be known
 * only at run time). */
static lg_value zeros_like_output(lg_loop *l, lg_value valid, lg_value y)
{
    lg_shape ys = lg_value_shape(y), rest = {.rank = ys.rank - 1};
    for (int i = 1; i < ys.rank; i++) rest.dims[i - 1] = ys.dims[i];
    int t_axis = l->opts.time_major ? 0 : 1;
    lg_value v0 = lg_squeeze(lg_slice(valid, t_axis, 0, 1), t_axis); /* [B] */
    for (int i = 1; i < ys.rank; i++) v0 = lg_expand_dims(v0, -1);  /* [B, 1, ...] */
    lg_value z = lg_broadcast_to(lg_scalar(l->g, lg_value_dtype(y), 0), rest);
    return lg_where(v0, z, z);
}

/* The state whose next value (next[0..n), before masking) is y, or -1. */
static int state_of_output(const lg_value *next, int n, lg_value y)
{
    for (int k = 0; k < n; k++)
        if (next[k].node == y.node && next[k].output == y.output) return k;
    return -1;
}

/* How mask_steps treats the per-step outputs: zeros at masked steps, or
 * (output_repeats_by_state, for the output that is the next value of state
 * k, or k < 0) repeated through a state of its own; else repeated from its
 * state's final value, filled in after the loop. */
static bool output_zeros(const lg_loop *l)
{
    return l->opts.zero_output_for_mask || (l->opts.lengths.graph && l->opts.reverse);
}
static bool output_repeats_by_state(const lg_loop *l, int k)
{
    return !output_zeros(l) && !(l->opts.lengths.graph && k >= 0);
}

/* Whether the masking the options ask for can be built (mask_steps): the
 * lengths or mask fit the sequences, states and outputs are [B, ...], and
 * outputs repeated through a state have static dims after the batch. */
static bool masking_ok(lg_loop *l)
{
    if (!(l->opts.lengths.graph ? lengths_ok(l) : mask_ok(l))) return false;
    int n_state = l->parts[STATE].n;
    for (int k = 0; !l->failed && k < n_state; k++)
        if (lg_value_rank(l->next[k]) < 1)
            fail(l, "masking: state %d is %s; states and outputs must be [B, ...]", k,
                 lg_shape_cstr(lg_value_shape(l->next[k])));
    for (int j = 0; !l->failed && j < l->n_y; j++) {
        lg_value y = l->ys[j];
        lg_shape ys = lg_value_shape(y);
        if (ys.rank < 1) {
            fail(l, "masking: output %d is %s; states and outputs must be [B, ...]", j, lg_shape_cstr(ys));
            break;
        }
        if (!output_repeats_by_state(l, state_of_output(l->next, n_state, y))) continue;
        for (int i = 1; i < ys.rank && !l->failed; i++)
            if (ys.dims[i] < 0)
                fail(l, "zero_output_for_mask false: output '%s' %s needs static dims after the batch", lg_value_name(y),
                     lg_shape_cstr(ys));
    }
    return !l->failed;
}

/* Keras masking from opts.lengths or opts.mask (masking_ok holds): the
 * step's valid m [B] is a sequence of the loop, and per step next' =
 * where(m, next, state) and y' = where(m, y, 0), or with
 * zero_output_for_mask false y' = where(m, y, prev), prev a state holding the
 * last valid output (zeros at first). Lengths keep the body as it is
 * without repeating (what fused RNN kernels match): the valid steps come
 * first, so in a forward loop an output that is a next state repeats that
 * state's final value, filled in after the loop, and a reverse loop meets
 * every padded step before a valid one, so its outputs stay zero. */
static void mask_steps(lg_loop *l)
{
    bool by_lengths = l->opts.lengths.graph != NULL;
    lg_value valid = by_lengths ? valid_lengths(l->g, l->name, l->opts.lengths, l->parts[SEQ].outer[0],
                                                l->opts.time_major)
                                : l->opts.mask;
    lg_value m = lg_loop_seq(l, valid); /* [B] */
    if (l->failed) return;
    int n_state = l->parts[STATE].n;
    lg_value unmasked[n_state > 0 ? n_state : 1];
    for (int k = 0; k < n_state; k++) {
        lg_value st = lg_value_of(l->body, l->parts[STATE].body_in[k], 0);
        unmasked[k] = l->next[k];
        l->next[k] = where_valid(m, l->next[k], st);
    }
    for (int j = 0; !l->failed && j < l->n_y; j++) {
        lg_value y = l->ys[j];
        int k = state_of_output(unmasked, n_state, y);
        bool zeros = output_zeros(l);
        if (zeros || (by_lengths && k >= 0)) l->ys[j] = where_valid(m, y, lg_scalar(l->body, lg_value_dtype(y), 0));
        if (!zeros && by_lengths && k >= 0) {
            if (!l->fill_state) {
                l->fill_state = malloc((size_t)l->n_y * sizeof *l->fill_state);
                if (!l->fill_state) {
                    fail(l, "masking: out of memory");
                    return;
                }
                for (int i = 0; i < l->n_y; i++) l->fill_state[i] = -1;
                l->valid = valid;
            }
            l->fill_state[j] = k;
        } else if (output_repeats_by_state(l, k)) {
            lg_value prev = lg_loop_state(l, zeros_like_output(l, valid, y));
            if (l->failed) return;
            l->ys[j] = where_valid(m, y, prev);
            lg_loop_next(l, prev, l->ys[j]);
        }
    }
    if (!l->failed && l->body->error) fail(l, "masking: %s (states and outputs must be [B, ...])", l->body->error);
}

/* ys' = where(valid, ys, fin) with fin [B, ...] broadcast along time
 * (axis t_axis of ys and valid). */
static lg_value fill(lg_value valid, lg_value ys, lg_value fin, int t_axis)
{
    for (int r = 2; r < lg_value_rank(ys); r++) valid = lg_expand_dims(valid, -1);
    return lg_where(valid, ys, lg_expand_dims(fin, t_axis));
}

lg_value lg_loop_fill_output(lg_value valid, lg_value ys, lg_value fin) { return fill(valid, ys, fin, 0); }

/* A forward loop's outputs repeated from a final state (mask_steps). */
static void fill_outputs(lg_loop *l, const lg_value *states, lg_value *outputs)
{
    int t_axis = l->opts.time_major ? 0 : 1;
    lg_scope_push(l->g, l->name);
    for (int j = 0; l->fill_state && outputs && j < l->n_y; j++)
        if (l->fill_state[j] >= 0) outputs[j] = fill(l->valid, outputs[j], states[l->fill_state[j]], t_axis);
    lg_scope_pop(l->g);
}

/* Truncated BPTT can be built: a static number of steps. */
static bool truncate_ok(lg_loop *l)
{
    int t_axis = l->opts.time_major ? 0 : 1;
    if (lg_value_shape(l->parts[SEQ].outer[0]).dims[t_axis] >= 1) return true;
    fail(l, "truncated BPTT needs a static number of steps; the sequence is %s",
         lg_shape_cstr(lg_value_shape(l->parts[SEQ].outer[0])));
    return false;
}

/* Truncated BPTT in chunks of k steps: after every k-th step (in run order)
 * but the last, the next states pass their values on but not their gradients,
 * next' = where(boundary_t, stop_gradient(next), next), with boundary_t
 * from a constant [1, T] (or [T, 1]) sequence added to the loop
 * (truncate_ok holds). */
static void truncate(lg_loop *l)
{
    int t_axis = l->opts.time_major ? 0 : 1;
    int64_t steps = lg_value_shape(l->parts[SEQ].outer[0]).dims[t_axis]; /* static: truncate_ok */
    lg_tensor *mask = NULL;
    lg_shape shape = l->opts.time_major ? lg_shape_of(2, (int)steps, 1) : lg_shape_of(2, 1, (int)steps);
    if (lg_tensor_new(lg_value_dtype(l->next[0]), shape, &mask) != LG_OK) {
        fail(l, "truncate: %s", lg_last_error());
        return;
    }
    for (int64_t t = 0; t < steps; t++) {
        int64_t run = l->opts.reverse ? steps - 1 - t : t; /* position in run order */
        lg_tensor_set(mask, t, (run + 1) % l->opts.truncate == 0 && run + 1 < steps);
    }
    lg_value boundary = lg_loop_seq(l, lg_constant(l->g, "truncate_boundary", mask));
    lg_tensor_free(mask);
    for (int k = 0; k < l->parts[STATE].n; k++)
        l->next[k] = lg_where(boundary, lg_stop_gradient(l->next[k]), l->next[k]);
}

/* lg_loop_end, with the loop node's id in *id_out (-1 when there is
 * none: an error, or an unrolled loop). */
static lg_status end(lg_loop *l, lg_value *states_out, lg_value *outputs_out, int32_t *id_out)
{
    *id_out = -1;
    if (!l) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_loop_end: loop is NULL");
    lg_graph *g = l->g;
    const binding *P = l->parts;
    for (int k = 0; states_out && k < P[STATE].n; k++) states_out[k] = lg_value_invalid();
    for (int j = 0; outputs_out && j < l->n_y; j++) outputs_out[j] = lg_value_invalid();
    if (!l->failed && l->body->error) fail(l, "body: %s", l->body->error);
    if (!l->failed && P[SEQ].n == 0 && l->opts.max_steps < 1)
        fail(l, "needs a sequence or max_steps >= 1 (got %lld)", (long long)l->opts.max_steps);
    if (!l->failed && ((unsigned)l->opts.memory >= LG_LOOP_MEMORY_COUNT))
        fail(l, "memory policy %d is not an lg_loop_memory", (int)l->opts.memory);
    if (!l->failed && l->opts.unroll && (lg_value_ok(l->stop) || P[SEQ].n == 0))
        fail(l, "unroll needs sequences and no stop condition");
    for (int k = 0; !l->failed && k < P[STATE].n; k++)
        if (!lg_value_ok(l->next[k])) fail(l, "state %d has no next value (lg_loop_next)", k);
    if (!l->failed && l->opts.truncate < 0) fail(l, "truncate %d: expected 0 (full BPTT) or a chunk of steps >= 1", l->opts.truncate);
    if (!l->failed && l->opts.truncate > 0 && P[SEQ].n == 0) fail(l, "truncated BPTT needs sequences");
    bool masked = l->opts.lengths.graph || l->opts.mask.graph;
    if (!l->failed && masked && P[SEQ].n == 0) fail(l, "%s need sequences", l->opts.mask.graph ? "masks" : "lengths");
    if (!l->failed && l->opts.lengths.graph && l->opts.mask.graph) fail(l, "lengths and a mask together; give one");
    if (!l->failed && l->opts.lengths.graph) outer_ok(l, l->opts.lengths, "lengths");
    if (!l->failed && l->opts.mask.graph) outer_ok(l, l->opts.mask, "mask");
    if (!l->failed && masked) masking_ok(l);
    if (!l->failed && l->opts.truncate > 0) truncate_ok(l);
    /* Masking and truncation stay attributes of the node (lower_loops builds
     * them at compile time), except when unrolled, in a body (whose
     * gradient may be built in another graph than the body's forward loop)
     * and when lowering */
    bool attrs = !l->lower_now && !l->opts.unroll && !g->is_body && (masked || l->opts.truncate > 0);
    int n_user_states = P[STATE].n; /* masking may add one */
    if (!l->failed && masked && !attrs) mask_steps(l);
    if (!l->failed && l->opts.truncate > 0 && !attrs) truncate(l);
    if (!l->failed && l->opts.unroll) {
        lg_value fin[n_user_states > 0 ? n_user_states : 1];
        unroll(l, n_user_states, fin, outputs_out);
        if (!l->failed) fill_outputs(l, fin, outputs_out);
        for (int k = 0; !l->failed && states_out && k < n_user_states; k++) states_out[k] = fin[k];
        loop_free(l);
        if (g->error) return lg_fail(LG_ERR_GRAPH, "%s", g->error);
        return LG_OK;
    }
    int n_in = P[SEQ].n + P[STATE].n + P[INV].n + (attrs && masked);
    lg_value *in = l->failed ? NULL : malloc((size_t)n_in * sizeof *in);
    lg_loop_spec *spec = in ? make_spec(l) : NULL;
    if (!l->failed && !spec) fail(l, "out of memory");
    int32_t id = -1;
    if (spec) {
        int k = 0;
        for (int i = 0; i < P[SEQ].n; i++)
            in[k++] = l->opts.time_major ? P[SEQ].outer[i] : swap_batch_time(P[SEQ].outer[i]);
        for (int p = STATE; p < PART_COUNT; p++)
            for (int i = 0; i < P[p].n; i++) in[k++] = P[p].outer[i];
        if (attrs) {
            spec->masking = l->opts.lengths.graph ? LG_LOOP_BY_LENGTHS : masked ? LG_LOOP_BY_MASK : LG_LOOP_UNMASKED;
            spec->repeat_output = !l->opts.zero_output_for_mask;
            spec->truncate = l->opts.truncate;
            if (l->opts.lengths.graph) in[k++] = l->opts.lengths;
            else if (masked) in[k++] = l->opts.time_major ? l->opts.mask : swap_batch_time(l->opts.mask);
        }
        l->body = NULL; /* the spec owns it now */
        if (l->opts.memory == LG_LOOP_SAVE_RESIDUALS) lg_loop_save_residuals(spec); /* else lg_grad recomputes */
        id = lg_node_build(g, LG_OP_LOOP, in, n_in, &(lg_attrs){.loop = spec}, l->name);
        if (id < 0) lg_loop_spec_free(spec);
    }
    for (int k = 0; id >= 0 && states_out && k < n_user_states; k++) states_out[k] = lg_value_of(g, id, k);
    for (int j = 0; id >= 0 && outputs_out && j < l->n_y; j++) {
        lg_value ys = lg_value_of(g, id, P[STATE].n + j);
        outputs_out[j] = l->opts.time_major ? ys : swap_batch_time(ys);
    }
    if (id >= 0 && l->fill_state) {
        lg_value fin[n_user_states > 0 ? n_user_states : 1];
        for (int k = 0; k < n_user_states; k++) fin[k] = lg_value_of(g, id, k);
        fill_outputs(l, fin, outputs_out);
    }
    free(in);
    loop_free(l);
    if (id < 0 || g->error) return lg_fail(LG_ERR_GRAPH, "%s", g->error ? g->error : "loop: failed");
    *id_out = id;
    return LG_OK;
}

lg_status lg_loop_end(lg_loop *l, lg_value *states_out, lg_value *outputs_out)
{
    int32_t id;
    return end(l, states_out, outputs_out, &id);
}

int32_t lg_loop_lower(lg_graph *g, const lg_loop_spec *s, const char *name, const lg_value *in, lg_value *out)
{
    char buf[256];
    const char *last;
    int depth = push_name(g, name, buf, sizeof buf, &last);
    lg_loop_opts o = lg_loop_opts_default();
    o.time_major = true; /* as the node's inputs and outputs are */
    o.reverse = s->reverse;
    o.truncate = s->truncate;
    o.max_steps = s->steps;
    o.memory = (lg_loop_memory)s->memory;
    o.batched = s->batched;
    o.zero_output_for_mask = !s->repeat_output;
    int mi = lg_loop_mask_input(s);
    if (s->masking == LG_LOOP_BY_LENGTHS) o.lengths = in[mi];
    if (s->masking == LG_LOOP_BY_MASK) o.mask = in[mi];
    int n_in = s->n_seq + s->n_state + s->n_inv, n_out = s->n_state + s->n_y + s->has_stop;
    lg_value *bin = malloc((size_t)(n_in + n_out + 1) * sizeof *bin), *bout = bin ? bin + n_in : NULL;
    lg_loop *l = bin ? lg_loop_new(g, last, o) : NULL;
    if (!bin) lg_graph_fail(g, "loop '%s': out of memory", name);
    int32_t id = -1;
    if (l) {
        l->lower_now = true;
        for (int k = 0; k < n_in; k++)
            bin[k] = k < s->n_seq                ? lg_loop_seq(l, in[k])
                     : k < s->n_seq + s->n_state ? lg_loop_state(l, in[k])
                                                 : lg_loop_invariant(l, in[k]);
        if (!l->failed && !lg_graph_inline(l->body, s->body, s->inputs, bin, n_in, s->outputs, n_out, bout))
            fail(l, "body: %s", body_error(l));
        for (int k = 0; !l->failed && k < s->n_state; k++) lg_loop_next(l, bin[s->n_seq + k], bout[k]);
        for (int j = 0; !l->failed && j < s->n_y; j++) lg_loop_emit(l, bout[s->n_state + j]);
        if (!l->failed && s->has_stop) lg_loop_until(l, bout[n_out - 1]);
        end(l, out, out + s->n_state, &id);
    }
    for (int k = 0; id >= 0 && k < s->n_state; k++)
        out[s->n_state + s->n_y + k] = lg_value_of(g, id, g->nodes[id].attrs.loop->n_state + s->n_y + k);
    for (int i = 0; i < depth; i++) lg_scope_pop(g);
    free(bin);
    return id;
}
