/*
 * test_decode.c — the readout decoder (decode.h) through its public API:
 * values against a hand-written recurrence (readout fed back, dot attention
 * over the memory), the teacher-forcing shift, inference against
 * teacher forcing on the model's own predictions, f64 gradchecks of every
 * parameter and input, and the builder errors.
 */
#include <check.h>
#include <math.h>
#include <string.h>

#include "test_util.h"
#include "graph/loopgrad.h"
#include "graph/decode.h"

#define B 2
#define F 2
#define O 2
#define U 3
#define TE 4

static lg_tensor *rand_tensor(lg_shape s, uint64_t key) { return lg_test_uniform(LG_F64, s, 13, key, -1, 1); }

static lg_cell *make_cell(lg_graph *g, lg_cell_kind kind, int in, uint64_t seed)
{
    lg_cell_opts o = lg_cell_opts_default(kind, U);
    o.dtype = LG_F64;
    o.seed = seed;
    lg_cell *c = lg_cell_new(g, "cell", in, o);
    ck_assert_msg(c != NULL, "cell: %s", lg_graph_error(g));
    lg_init_uniform(lg_param_tensor(lg_cell_bias(c)), -0.3, 0.3, seed, 99); /* exercise the bias */
    return c;
}

static lg_decoder *make_decoder(lg_graph *g, lg_cell *c, lg_attention a, uint64_t seed)
{
    lg_decoder_opts o = lg_decoder_opts_default();
    o.attention = a;
    o.seed = seed;
    lg_decoder *d = lg_decoder_new(g, "dec", c, O, o);
    ck_assert_msg(d != NULL, "decoder: %s", lg_graph_error(g));
    lg_init_uniform(lg_param_tensor(lg_decoder_readout_bias(d)), -0.3, 0.3, seed, 98);
    return d;
}

static void expect_close(const lg_tensor *a, const lg_tensor *b, double tol, const char *what)
{
    ck_assert_int_eq(lg_tensor_numel(a), lg_tensor_numel(b));
    for (int64_t i = 0; i < lg_tensor_numel(a); i++) {
        double x = lg_tensor_get(a, i), y = lg_tensor_get(b, i);
        ck_assert_msg(fabs(x - y) <= tol * (1 + fabs(y)), "%s[%lld]: %.12g vs %.12g", what, (long long)i, x, y);
    }
}

static int input_dim(bool has_x, lg_attention a) { return (has_x ? F : 0) + O + (a != LG_ATTENTION_NONE ? U : 0); }

/* ---- values ----------------------------------------------------------------------- */

/* Inference with a SimpleRNN cell and dot attention, against plain C:
 *   a = softmax_s(mem_s . h), c = sum_s a_s mem_s,
 *   h' = tanh([x_t, y_{t-1}, c] K + h R + b), y_t = h' W + v. */
START_TEST(test_values_match_hand_recurrence)
{
    enum { T = 3 };
    lg_graph *g = lg_graph_new();
    lg_cell *c = make_cell(g, LG_CELL_SIMPLE_RNN, input_dim(true, LG_ATTENTION_DOT), 1);
    lg_decoder *d = make_decoder(g, c, LG_ATTENTION_DOT, 2);
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, -1, F));
    lg_value mem = lg_input(g, "mem", LG_F64, lg_shape_of(3, B, TE, U));
    lg_value start = lg_input(g, "start", LG_F64, lg_shape_of(2, -1, O));
    lg_value h0 = lg_input(g, "h0", LG_F64, lg_shape_of(2, B, U));
    lg_decode_opts o = lg_decode_opts_default();
    o.memory = mem, o.start = start, o.initial_state = &h0, o.n_initial_state = 1;
    lg_decode_result r;
    ck_assert_msg(lg_decode(d, x, o, &r) == LG_OK, "%s", lg_last_error());
    ck_assert_int_eq(r.n_states, 1);

    lg_tensor *xt = rand_tensor(lg_shape_of(3, B, T, F), 1), *mt = rand_tensor(lg_shape_of(3, B, TE, U), 2);
    lg_tensor *st = rand_tensor(lg_shape_of(2, B, O), 3), *ht = rand_tensor(lg_shape_of(2, B, U), 4);
    lg_feed feeds[4] = {{x, xt}, {mem, mt}, {start, st}, {h0, ht}};
    lg_value fetch[3] = {r.output, r.attention, r.states[0]};
    lg_tensor *out[3] = {NULL};
    ck_assert_int_eq(lg_graph_run(g, feeds, 4, fetch, 3, out), LG_OK);
    ck_assert(lg_shape_equal(lg_tensor_shape(out[0]), lg_shape_of(3, B, T, O)));
    ck_assert(lg_shape_equal(lg_tensor_shape(out[1]), lg_shape_of(3, B, T, TE)));

    const lg_tensor *K = lg_param_tensor(lg_cell_kernel(c)), *R = lg_param_tensor(lg_cell_recurrent_kernel(c));
    const lg_tensor *bb = lg_param_tensor(lg_cell_bias(c));
    const lg_tensor *W = lg_param_tensor(lg_decoder_readout_kernel(d));
    const lg_tensor *v = lg_param_tensor(lg_decoder_readout_bias(d));
    enum { IN = F + O + U };
    for (int b = 0; b < B; b++) {
        double h[U], y[O];
        for (int j = 0; j < U; j++) h[j] = lg_tensor_get(ht, b * U + j);
        for (int j = 0; j < O; j++) y[j] = lg_tensor_get(st, b * O + j);
        for (int t = 0; t < T; t++) {
            double sc[TE], mx = -1e300, z = 0, ctx[U] = {0}, in[IN];
            for (int s = 0; s < TE; s++) {
                sc[s] = 0;
                for (int j = 0; j < U; j++) sc[s] += lg_tensor_get(mt, (b * TE + s) * U + j) * h[j];
                mx = fmax(mx, sc[s]);
            }
            for (int s = 0; s < TE; s++) z += (sc[s] = exp(sc[s] - mx));
            for (int s = 0; s < TE; s++) {
                ck_assert_double_eq_tol(lg_tensor_get(out[1], (b * T + t) * TE + s), sc[s] / z, 1e-12);
                for (int j = 0; j < U; j++) ctx[j] += sc[s] / z * lg_tensor_get(mt, (b * TE + s) * U + j);
            }
            for (int k = 0; k < F; k++) in[k] = lg_tensor_get(xt, (b * T + t) * F + k);
            for (int k = 0; k < O; k++) in[F + k] = y[k];
            for (int k = 0; k < U; k++) in[F + O + k] = ctx[k];
            double hn[U];
            for (int j = 0; j < U; j++) {
                double a = lg_tensor_get(bb, j);
                for (int k = 0; k < IN; k++) a += in[k] * lg_tensor_get(K, k * U + j);
                for (int k = 0; k < U; k++) a += h[k] * lg_tensor_get(R, k * U + j);
                hn[j] = tanh(a);
            }
            memcpy(h, hn, sizeof h);
            for (int j = 0; j < O; j++) {
                y[j] = lg_tensor_get(v, j);
                for (int k = 0; k < U; k++) y[j] += h[k] * lg_tensor_get(W, k * O + j);
                ck_assert_double_eq_tol(lg_tensor_get(out[0], (b * T + t) * O + j), y[j], 1e-12);
            }
        }
        for (int j = 0; j < U; j++) ck_assert_double_eq_tol(lg_tensor_get(out[2], b * U + j), h[j], 1e-12);
    }
    for (int k = 0; k < 3; k++) lg_tensor_free(out[k]);
    lg_tensor_free(xt), lg_tensor_free(mt), lg_tensor_free(st), lg_tensor_free(ht);
    lg_decoder_free(d), lg_cell_free(c);
    lg_graph_free(g);
}
END_TEST

/* Teacher forcing feeds targets shifted by one: output step 0 does not see
 * the targets at all, step t sees targets[t - 1] and nothing later. */
START_TEST(test_teacher_forcing_shift)
{
    enum { T = 4 };
    lg_graph *g = lg_graph_new();
    lg_cell *c = make_cell(g, LG_CELL_GRU, input_dim(true, LG_ATTENTION_NONE), 3);
    lg_decoder *d = make_decoder(g, c, LG_ATTENTION_NONE, 4);
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F));
    lg_value y = lg_input(g, "y", LG_F64, lg_shape_of(3, B, T, O));
    lg_decode_opts o = lg_decode_opts_default();
    o.training = true, o.targets = y;
    lg_decode_result r;
    ck_assert_msg(lg_decode(d, x, o, &r) == LG_OK, "%s", lg_last_error());
    lg_tensor *xt = rand_tensor(lg_shape_of(3, B, T, F), 5), *yt = rand_tensor(lg_shape_of(3, B, T, O), 6);
    lg_tensor *out[3] = {NULL};
    for (int run = 0; run < 3; run++) {
        /* run 1 changes targets at the last step, run 2 at step 1 */
        if (run == 1)
            for (int b = 0; b < B; b++) lg_tensor_set(yt, (b * T + T - 1) * O, 7);
        if (run == 2)
            for (int b = 0; b < B; b++) lg_tensor_set(yt, (b * T + 1) * O + 1, -7);
        lg_feed feeds[2] = {{x, xt}, {y, yt}};
        ck_assert_int_eq(lg_graph_run(g, feeds, 2, &r.output, 1, &out[run]), LG_OK);
    }
    expect_close(out[1], out[0], 1e-14, "the last target is never fed");
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            double diff = 0;
            for (int j = 0; j < O; j++)
                diff += fabs(lg_tensor_get(out[2], (b * T + t) * O + j) - lg_tensor_get(out[1], (b * T + t) * O + j));
            if (t <= 1) ck_assert_msg(diff == 0, "step %d sees targets[1]", t);
            else ck_assert_msg(diff > 1e-6, "step %d does not see targets[1]", t);
        }
    for (int k = 0; k < 3; k++) lg_tensor_free(out[k]);
    lg_tensor_free(xt), lg_tensor_free(yt);
    lg_decoder_free(d), lg_cell_free(c);
    lg_graph_free(g);
}
END_TEST

/* One decoder, two loops sharing its weights: inference, then teacher
 * forcing fed the inference predictions as targets, must give the same
 * outputs and final states at every step. */
typedef struct consistency_case {
    const char *name;
    lg_cell_kind kind;
    lg_attention attention;
    bool has_x;
} consistency_case;

static const consistency_case CONSISTENCY_CASES[] = {
    {"lstm dot attention with x", LG_CELL_LSTM, LG_ATTENTION_DOT, true},
    {"gru mean attention with x", LG_CELL_GRU, LG_ATTENTION_MEAN, true},
    {"simple_rnn without x (steps)", LG_CELL_SIMPLE_RNN, LG_ATTENTION_NONE, false},
};

START_TEST(test_inference_matches_teacher_forcing_on_own_predictions)
{
    enum { T = 5 };
    const consistency_case *cc = &CONSISTENCY_CASES[_i];
    lg_graph *g = lg_graph_new();
    lg_cell *c = make_cell(g, cc->kind, input_dim(cc->has_x, cc->attention), 5 + (uint64_t)_i);
    lg_decoder *d = make_decoder(g, c, cc->attention, 6);
    lg_value x = cc->has_x ? lg_input(g, "x", LG_F64, lg_shape_of(3, -1, -1, F)) : lg_value_invalid();
    lg_value mem = lg_input(g, "mem", LG_F64, lg_shape_of(3, -1, TE, U));
    lg_value start = lg_input(g, "start", LG_F64, lg_shape_of(2, B, O));
    lg_value y = lg_input(g, "y", LG_F64, lg_shape_of(3, B, -1, O));
    lg_decode_opts o = lg_decode_opts_default();
    o.start = start;
    o.steps = T;
    if (cc->attention != LG_ATTENTION_NONE) o.memory = mem;
    lg_decode_result inf, tf;
    ck_assert_msg(lg_decode(d, x, o, &inf) == LG_OK, "%s", lg_last_error());
    o.training = true, o.targets = y;
    ck_assert_msg(lg_decode(d, x, o, &tf) == LG_OK, "%s", lg_last_error());

    lg_tensor *xt = rand_tensor(lg_shape_of(3, B, T, F), 7), *mt = rand_tensor(lg_shape_of(3, B, TE, U), 8);
    lg_tensor *st = rand_tensor(lg_shape_of(2, B, O), 9);
    lg_feed feeds[4] = {{mem, mt}, {start, st}};
    int nf = 2;
    if (cc->has_x) feeds[nf++] = (lg_feed){x, xt};
    lg_value fi[2] = {inf.output, inf.states[0]};
    lg_tensor *oi[2] = {NULL}, *ot[2] = {NULL};
    ck_assert_int_eq(lg_graph_run(g, feeds, nf, fi, 2, oi), LG_OK);
    ck_assert(lg_shape_equal(lg_tensor_shape(oi[0]), lg_shape_of(3, B, T, O)));
    feeds[nf++] = (lg_feed){y, oi[0]};
    lg_value ft[2] = {tf.output, tf.states[0]};
    ck_assert_int_eq(lg_graph_run(g, feeds, nf, ft, 2, ot), LG_OK);
    expect_close(ot[0], oi[0], 1e-12, cc->name);
    expect_close(ot[1], oi[1], 1e-12, cc->name);
    /* and it is not trivially so: other targets give other outputs */
    lg_tensor *other = rand_tensor(lg_shape_of(3, B, T, O), 10), *o2 = NULL;
    feeds[nf - 1].tensor = other;
    ck_assert_int_eq(lg_graph_run(g, feeds, nf, &tf.output, 1, &o2), LG_OK);
    ck_assert(fabs(lg_tensor_get(o2, (B * T - 1) * O) - lg_tensor_get(oi[0], (B * T - 1) * O)) > 1e-6);
    lg_tensor_free(o2), lg_tensor_free(other);
    for (int k = 0; k < 2; k++) lg_tensor_free(oi[k]), lg_tensor_free(ot[k]);
    lg_tensor_free(xt), lg_tensor_free(mt), lg_tensor_free(st);
    lg_decoder_free(d), lg_cell_free(c);
    lg_graph_free(g);
}
END_TEST

/* ---- gradcheck table ----------------------------------------------------------------- */

typedef struct grad_case {
    const char *name;
    lg_cell_kind kind;
    int steps;
    lg_attention attention;
    bool has_x, start, init, training;
} grad_case;

static const grad_case GRAD_CASES[] = {
    {"lstm T=1", LG_CELL_LSTM, 1, LG_ATTENTION_NONE, true, true, true, true},
    {"gru T=2", LG_CELL_GRU, 2, LG_ATTENTION_NONE, true, true, false, true},
    {"simple_rnn T=5", LG_CELL_SIMPLE_RNN, 5, LG_ATTENTION_NONE, true, false, true, true},
    {"lstm T=1 dot", LG_CELL_LSTM, 1, LG_ATTENTION_DOT, true, true, true, true},
    {"gru T=2 dot", LG_CELL_GRU, 2, LG_ATTENTION_DOT, true, true, true, true},
    {"lstm T=5 dot", LG_CELL_LSTM, 5, LG_ATTENTION_DOT, true, true, true, true},
    {"gru T=5 mean", LG_CELL_GRU, 5, LG_ATTENTION_MEAN, true, true, false, true},
    {"lstm T=2 no x", LG_CELL_LSTM, 2, LG_ATTENTION_NONE, false, true, true, true},
    {"simple_rnn T=5 no x dot", LG_CELL_SIMPLE_RNN, 5, LG_ATTENTION_DOT, false, true, true, true},
    {"gru T=5 dot inference", LG_CELL_GRU, 5, LG_ATTENTION_DOT, true, true, true, false},
};

START_TEST(test_gradcheck)
{
    const grad_case *gc = &GRAD_CASES[_i];
    int T = gc->steps;
    lg_graph *g = lg_graph_new();
    lg_cell *c = make_cell(g, gc->kind, input_dim(gc->has_x, gc->attention), 20 + (uint64_t)_i);
    lg_decoder *d = make_decoder(g, c, gc->attention, 40 + (uint64_t)_i);
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F));
    lg_value y = lg_input(g, "y", LG_F64, lg_shape_of(3, B, T, O));
    lg_value mem = lg_input(g, "mem", LG_F64, lg_shape_of(3, B, TE, U));
    lg_value start = lg_input(g, "start", LG_F64, lg_shape_of(2, B, O));
    lg_value s0[2] = {lg_input(g, "h0", LG_F64, lg_shape_of(2, B, U)), lg_input(g, "c0", LG_F64, lg_shape_of(2, B, U))};
    int ns = lg_cell_state_count(c);
    lg_decode_opts o = lg_decode_opts_default();
    o.training = gc->training;
    if (gc->training) o.targets = y;
    if (gc->start) o.start = start;
    if (gc->init) o.initial_state = s0, o.n_initial_state = ns;
    if (gc->attention != LG_ATTENTION_NONE) o.memory = mem;
    lg_decode_result r;
    ck_assert_msg(lg_decode(d, gc->has_x ? x : lg_value_invalid(), o, &r) == LG_OK, "%s: %s", gc->name,
                  lg_last_error());
    /* sum(y * w) + sum(y^2) / 2 + the final h: every output and state counts */
    lg_tensor *w = rand_tensor(lg_shape_of(1, O), 11);
    lg_value out = r.output;
    lg_value loss = lg_add(lg_sum(lg_mul(out, lg_constant(g, "w", w)), NULL, 0, false),
                           lg_scale(lg_sum(lg_square(out), NULL, 0, false), 0.5));
    loss = lg_add(loss, lg_sum(lg_square(r.states[0]), NULL, 0, false));
    lg_tensor_free(w);

    lg_tensor *xt = rand_tensor(lg_shape_of(3, B, T, F), 1), *yt = rand_tensor(lg_shape_of(3, B, T, O), 2);
    lg_tensor *mt = rand_tensor(lg_shape_of(3, B, TE, U), 3), *st = rand_tensor(lg_shape_of(2, B, O), 4);
    lg_tensor *ht = rand_tensor(lg_shape_of(2, B, U), 5), *ct = rand_tensor(lg_shape_of(2, B, U), 6);
    lg_feed feeds[6];
    lg_value wrt[12] = {lg_cell_kernel(c), lg_cell_recurrent_kernel(c), lg_cell_bias(c),
                        lg_decoder_readout_kernel(d), lg_decoder_readout_bias(d)};
    int nf = 0, nw = 5;
    if (gc->has_x) feeds[nf++] = (lg_feed){x, xt}, wrt[nw++] = x;
    if (gc->training) feeds[nf++] = (lg_feed){y, yt}, wrt[nw++] = y;
    if (gc->attention != LG_ATTENTION_NONE) feeds[nf++] = (lg_feed){mem, mt}, wrt[nw++] = mem;
    if (gc->start) feeds[nf++] = (lg_feed){start, st}, wrt[nw++] = start;
    if (gc->init) {
        feeds[nf++] = (lg_feed){s0[0], ht}, wrt[nw++] = s0[0];
        if (ns == 2) feeds[nf++] = (lg_feed){s0[1], ct}, wrt[nw++] = s0[1];
    }
    lg_gradcheck_report rep;
    lg_status s = lg_gradcheck(g, loss, wrt, nw, feeds, nf, lg_gradcheck_opts_default(), &rep);
    ck_assert_msg(s == LG_OK, "%s: %s", gc->name, lg_last_error());
    ck_assert_msg(rep.passed, "%s: worst %s[%lld] analytic %.10g numeric %.10g", gc->name, rep.worst_name,
                  rep.worst_index, rep.analytic, rep.numeric);
    ck_assert(rep.checked > 40);
    lg_tensor_free(xt), lg_tensor_free(yt), lg_tensor_free(mt), lg_tensor_free(st), lg_tensor_free(ht),
        lg_tensor_free(ct);
    lg_decoder_free(d), lg_cell_free(c);
    lg_graph_free(g);
}
END_TEST

/* ---- errors ----------------------------------------------------------------------------- */

typedef enum bad_what {
    BAD_NO_TARGETS,
    BAD_TARGETS_O,
    BAD_TARGETS_T,
    BAD_TARGETS_B,
    BAD_TARGETS_DTYPE,
    BAD_X_RANK,
    BAD_CELL_INPUT,
    BAD_NO_MEMORY,
    BAD_MEMORY_WITHOUT_ATTENTION,
    BAD_DOT_H,
    BAD_MEMORY_RANK,
    BAD_START,
    BAD_STATE_COUNT,
    BAD_STATE_SHAPE,
    BAD_NO_STEPS,
    BAD_TARGETS_IN_INFERENCE,
    BAD_FOREIGN_X,
    BAD_COUNT
} bad_what;

typedef struct error_case {
    bad_what what;
    lg_status want;
    const char *message; /* a fragment the message must hold */
} error_case;

static const error_case ERROR_CASES[] = {
    {BAD_NO_TARGETS, LG_ERR_INVALID_ARGUMENT, "needs targets [B, T, 2]"},
    {BAD_TARGETS_O, LG_ERR_SHAPE, "targets 'y3' must be [B, T, 2] (the readout's O), got [2, 4, 3]"},
    {BAD_TARGETS_T, LG_ERR_SHAPE, "steps 5, another input has 4"},
    {BAD_TARGETS_B, LG_ERR_SHAPE, "batch 3, another input has 2"},
    {BAD_TARGETS_DTYPE, LG_ERR_DTYPE, "targets 'y32' is f32, the cell is f64"},
    {BAD_X_RANK, LG_ERR_SHAPE, "x 'x2' must be [B, T, F] with a known last dim, got [2, 2]"},
    {BAD_CELL_INPUT, LG_ERR_SHAPE, "input dim 4 must be F + O + H = 2 + 2 + 3"},
    {BAD_NO_MEMORY, LG_ERR_INVALID_ARGUMENT, "memory [B, T_enc, H] is required with attention"},
    {BAD_MEMORY_WITHOUT_ATTENTION, LG_ERR_INVALID_ARGUMENT, "no attention"},
    {BAD_DOT_H, LG_ERR_SHAPE, "H must equal the cell's units"},
    {BAD_MEMORY_RANK, LG_ERR_SHAPE, "memory 'mem2' must be [B, T_enc, H]"},
    {BAD_START, LG_ERR_SHAPE, "start 'h0' must be [B, 2], got [2, 3]"},
    {BAD_STATE_COUNT, LG_ERR_INVALID_ARGUMENT, "2 initial states given (array non-NULL), the cell carries 1"},
    {BAD_STATE_SHAPE, LG_ERR_SHAPE, "initial state 0 'start' must be [B, 3], got [2, 2]"},
    {BAD_NO_STEPS, LG_ERR_INVALID_ARGUMENT, "needs steps >= 1, got 0"},
    {BAD_TARGETS_IN_INFERENCE, LG_ERR_INVALID_ARGUMENT, "targets given to an inference decoder"},
    {BAD_FOREIGN_X, LG_ERR_INVALID_ARGUMENT, "x is a value of another graph"},
};

START_TEST(test_errors)
{
    const error_case *ec = &ERROR_CASES[_i];
    lg_graph *g = lg_graph_new(), *other = lg_graph_new();
    bool dot = ec->what == BAD_DOT_H || ec->what == BAD_NO_MEMORY || ec->what == BAD_MEMORY_RANK;
    lg_attention att = dot ? LG_ATTENTION_DOT : ec->what == BAD_CELL_INPUT ? LG_ATTENTION_MEAN : LG_ATTENTION_NONE;
    int in = ec->what == BAD_CELL_INPUT ? 4 : input_dim(ec->what != BAD_NO_STEPS, att);
    lg_cell *c = make_cell(g, LG_CELL_GRU, in, 1);
    lg_decoder *d = make_decoder(g, c, att, 2);
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, 4, F));
    lg_value y = lg_input(g, "y", LG_F64, lg_shape_of(3, B, 4, O));
    lg_value mem = lg_input(g, "mem", LG_F64, lg_shape_of(3, B, TE, U));
    lg_value start = lg_input(g, "start", LG_F64, lg_shape_of(2, B, O));
    lg_value h0 = lg_input(g, "h0", LG_F64, lg_shape_of(2, B, U));
    lg_decode_opts o = lg_decode_opts_default();
    o.training = true, o.targets = y;
    lg_value states[2] = {h0, h0};
    switch (ec->what) {
    case BAD_NO_TARGETS: o.targets = lg_value_invalid(); break;
    case BAD_TARGETS_O: o.targets = lg_input(g, "y3", LG_F64, lg_shape_of(3, B, 4, 3)); break;
    case BAD_TARGETS_T: o.targets = lg_input(g, "y5", LG_F64, lg_shape_of(3, B, 5, O)); break;
    case BAD_TARGETS_B: o.targets = lg_input(g, "yb", LG_F64, lg_shape_of(3, 3, 4, O)); break;
    case BAD_TARGETS_DTYPE: o.targets = lg_input(g, "y32", LG_F32, lg_shape_of(3, B, 4, O)); break;
    case BAD_X_RANK: x = lg_input(g, "x2", LG_F64, lg_shape_of(2, B, F)); break;
    case BAD_CELL_INPUT: o.memory = mem; break;
    case BAD_NO_MEMORY: break;
    case BAD_MEMORY_WITHOUT_ATTENTION: o.memory = mem; break;
    case BAD_DOT_H: o.memory = lg_input(g, "mem5", LG_F64, lg_shape_of(3, B, TE, 5)); break;
    case BAD_MEMORY_RANK: o.memory = lg_input(g, "mem2", LG_F64, lg_shape_of(2, B, U)); break;
    case BAD_START: o.start = h0; break;
    case BAD_STATE_COUNT: o.initial_state = states, o.n_initial_state = 2; break;
    case BAD_STATE_SHAPE: o.initial_state = &start, o.n_initial_state = 1; break;
    case BAD_NO_STEPS: x = lg_value_invalid(), o.training = false, o.targets = lg_value_invalid(); break;
    case BAD_TARGETS_IN_INFERENCE: o.training = false; break;
    case BAD_FOREIGN_X: x = lg_input(other, "x", LG_F64, lg_shape_of(3, B, 4, F)); break;
    case BAD_COUNT: break;
    }
    ck_assert_ptr_null(lg_graph_error(g));
    lg_decode_result r;
    lg_status s = lg_decode(d, x, o, &r);
    ck_assert_msg(s == ec->want, "case %d: got %s: %s", (int)ec->what, lg_status_name(s), lg_last_error());
    const char *err = lg_graph_error(g);
    ck_assert_msg(err && strstr(err, ec->message) && strstr(err, "decoder 'dec'"), "case %d: message '%s'",
                  (int)ec->what, err);
    ck_assert_str_eq(lg_last_error(), err);
    ck_assert(!lg_value_ok(r.output) && !lg_value_ok(r.states[0]) && r.n_states == 0);
    /* the graph refuses further decoders but stays inspectable */
    ck_assert_int_eq(lg_decode(d, x, o, &r), LG_ERR_GRAPH);
    lg_decoder_free(d), lg_cell_free(c);
    lg_graph_free(g), lg_graph_free(other);
}
END_TEST

START_TEST(test_decoder_new_errors)
{
    ck_assert_ptr_null(lg_decoder_new(NULL, "dec", NULL, O, lg_decoder_opts_default()));
    ck_assert(strstr(lg_last_error(), "graph is NULL"));
    lg_decoder_free(NULL);
    ck_assert(!lg_value_ok(lg_decoder_readout_kernel(NULL)));
    ck_assert_int_eq(lg_decode(NULL, lg_value_invalid(), lg_decode_opts_default(), NULL),
                     LG_ERR_INVALID_ARGUMENT);

    struct {
        const char *name;
        int out;
        int attention, activation;
        bool foreign;
        const char *message;
    } cases[] = {
        {"a/b", O, 0, 0, false, "without '/'"},
        {"dec", 0, 0, 0, false, "output_dim 0 must be >= 1"},
        {"dec", O, LG_ATTENTION_COUNT, 0, false, "attention 3"},
        {"dec", O, 0, -1, false, "activation -1"},
        {"dec", O, 0, 0, true, "the cell is of another graph"},
        {"cell", O, 0, 0, false, NULL}, /* works: see below */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lg_graph *g = lg_graph_new(), *h = lg_graph_new();
        lg_cell *c = make_cell(cases[i].foreign ? h : g, LG_CELL_GRU, F + O, 1);
        lg_decoder_opts o = lg_decoder_opts_default();
        o.attention = (lg_attention)cases[i].attention;
        o.readout_activation = (lg_activation)cases[i].activation;
        lg_decoder *d = lg_decoder_new(g, cases[i].name, c, cases[i].out, o);
        if (i + 1 == sizeof cases / sizeof cases[0]) {
            ck_assert_ptr_nonnull(d); /* "cell/readout/..." does not clash with "cell/kernel" */
            ck_assert_str_eq(lg_value_name(lg_decoder_readout_kernel(d)), "cell/readout/kernel");
            /* a second decoder of the same name clashes */
            ck_assert_ptr_null(lg_decoder_new(g, "cell", c, O, o));
            ck_assert(strstr(lg_graph_error(g), "cell/readout/kernel") && strstr(lg_graph_error(g), "exists"));
        } else {
            ck_assert_ptr_null(d);
            ck_assert_msg(lg_graph_error(g) && strstr(lg_graph_error(g), cases[i].message), "case %zu: '%s'", i,
                          lg_graph_error(g));
        }
        lg_decoder_free(d), lg_cell_free(c);
        lg_graph_free(g), lg_graph_free(h);
    }
}
END_TEST

static Suite *decode_suite(void)
{
    Suite *s = suite_create("decode");
    TCase *tv = tcase_create("values");
    tcase_add_test(tv, test_values_match_hand_recurrence);
    tcase_add_test(tv, test_teacher_forcing_shift);
    tcase_add_loop_test(tv, test_inference_matches_teacher_forcing_on_own_predictions, 0,
                        (int)(sizeof CONSISTENCY_CASES / sizeof CONSISTENCY_CASES[0]));
    suite_add_tcase(s, tv);
    TCase *tg = tcase_create("gradients");
    tcase_set_timeout(tg, 120);
    tcase_add_loop_test(tg, test_gradcheck, 0, (int)(sizeof GRAD_CASES / sizeof GRAD_CASES[0]));
    suite_add_tcase(s, tg);
    TCase *te = tcase_create("errors");
    tcase_add_loop_test(te, test_errors, 0, (int)(sizeof ERROR_CASES / sizeof ERROR_CASES[0]));
    tcase_add_test(te, test_decoder_new_errors);
    suite_add_tcase(s, te);
    return s;
}

int main(void) { return lg_check_run(decode_suite()); }
