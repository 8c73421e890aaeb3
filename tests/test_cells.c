/*
 * test_cells.c — the recurrent cells of cells.h through the public API.
 *
 *   reference  forward values of every cell configuration against a plain C
 *              transcription of Keras's equations (this file, ref_run);
 *   gradcheck  f64 finite differences through loops of 1, 2 and 7 steps,
 *              w.r.t. kernel, recurrent_kernel, bias, the input sequence and
 *              the initial states;
 *   torch      nn.RNN / nn.LSTM / nn.GRU golden values (fixtures/rnn.txt, made
 *              by fixtures/make_rnn_fixtures.py) through the PyTorch -> Keras
 *              weight mapping documented in cells.h, grads mapped back;
 *   init       glorot bounds, orthogonality, unit_forget_bias, seeds;
 *   errors     bad options and bad step inputs, each a graph error.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "fixture_reader.h"
#include "graph/loopgrad.h"

#ifndef LG_TEST_DATA_DIR
#error "LG_TEST_DATA_DIR must be the directory holding rnn.txt, as a string literal"
#endif

#define RNN_PATH LG_TEST_DATA_DIR "/rnn.txt"
#define B 2
#define IN 3
#define U 4
#define MAX_T 7
#define MAX_G 4

/* ---- helpers ------------------------------------------------------------- */

static lg_tensor *new_tensor(lg_dtype dt, lg_shape s) { return lg_test_tensor(dt, s, NULL); }

/* Normal(0, scale) values, reproducible from key. */
static lg_tensor *rand_tensor(lg_shape s, double scale, uint64_t key)
{
    lg_tensor *t = new_tensor(LG_F64, s);
    ck_assert_int_eq(lg_init_normal(t, 0, scale, 1234, key), LG_OK);
    return t;
}

static void fill_normal(lg_value p, double scale, uint64_t key)
{
    ck_assert_int_eq(lg_init_normal(lg_param_tensor(p), 0, scale, 99, key), LG_OK);
}

/* A cell run over a whole sequence: inputs x [B, T, IN], s0[k] [B, U]. */
typedef struct net {
    lg_graph *g;
    lg_cell *cell;
    int n_states;
    lg_value x, s0[2];
    lg_value ys, sT[2]; /* [B, T, U], [B, U] */
} net;

static void net_build(net *n, lg_cell_opts o, int t)
{
    n->g = lg_graph_new();
    ck_assert_ptr_nonnull(n->g);
    n->cell = lg_cell_new(n->g, NULL, IN, o);
    ck_assert_msg(n->cell != NULL, "lg_cell_new: %s", lg_graph_error(n->g));
    n->n_states = lg_cell_state_count(n->cell);
    n->x = lg_input(n->g, "x", o.dtype, lg_shape_of(3, B, t, IN));
    n->s0[0] = lg_input(n->g, "h0", o.dtype, lg_shape_of(2, B, U));
    n->s0[1] = n->n_states == 2 ? lg_input(n->g, "c0", o.dtype, lg_shape_of(2, B, U)) : lg_value_invalid();
}

/* The loop over n's inputs; masks are outer values (or invalid). */
static void net_loop(net *n, lg_value x_mask, lg_value h_mask)
{
    lg_loop *l = lg_loop_new(n->g, NULL, lg_loop_opts_default());
    ck_assert_ptr_nonnull(l);
    lg_value x_t = lg_loop_seq(l, n->x), s[2], next[2], y;
    for (int k = 0; k < n->n_states; k++) s[k] = lg_loop_state(l, n->s0[k]);
    lg_value xm = lg_value_ok(x_mask) ? lg_loop_invariant(l, x_mask) : lg_value_invalid();
    lg_value hm = lg_value_ok(h_mask) ? lg_loop_invariant(l, h_mask) : lg_value_invalid();
    lg_cell_step(n->cell, l, x_t, s, xm, hm, next, &y);
    for (int k = 0; k < n->n_states; k++) lg_loop_next(l, s[k], next[k]);
    lg_loop_emit(l, y);
    lg_status st = lg_loop_end(l, n->sT, &n->ys);
    ck_assert_msg(st == LG_OK, "lg_loop_end: %s", lg_graph_error(n->g));
}

static void net_free(net *n)
{
    lg_cell_free(n->cell);
    lg_graph_free(n->g);
}

/* ---- configurations ------------------------------------------------------- */

static const struct row {
    const char *name;
    lg_cell_kind kind;
    lg_activation act, rec_act;
    bool reset_after, use_bias, masks;
} rows[] = {
    {"simple_rnn", LG_CELL_SIMPLE_RNN, LG_ACT_TANH, LG_ACT_SIGMOID, true, true, false},
    {"simple_rnn_relu", LG_CELL_SIMPLE_RNN, LG_ACT_RELU, LG_ACT_SIGMOID, true, true, false},
    {"simple_rnn_nobias_masks", LG_CELL_SIMPLE_RNN, LG_ACT_TANH, LG_ACT_SIGMOID, true, false, true},
    {"lstm", LG_CELL_LSTM, LG_ACT_TANH, LG_ACT_SIGMOID, true, true, false},
    {"lstm_hard_sigmoid", LG_CELL_LSTM, LG_ACT_TANH, LG_ACT_HARD_SIGMOID, true, true, false},
    {"lstm_masks", LG_CELL_LSTM, LG_ACT_TANH, LG_ACT_SIGMOID, true, true, true},
    {"lstm_nobias_linear", LG_CELL_LSTM, LG_ACT_LINEAR, LG_ACT_SIGMOID, true, false, false},
    {"gru_reset_after", LG_CELL_GRU, LG_ACT_TANH, LG_ACT_SIGMOID, true, true, false},
    {"gru_reset_before", LG_CELL_GRU, LG_ACT_TANH, LG_ACT_SIGMOID, false, true, false},
    {"gru_reset_after_masks", LG_CELL_GRU, LG_ACT_TANH, LG_ACT_HARD_SIGMOID, true, true, true},
    {"gru_reset_before_masks", LG_CELL_GRU, LG_ACT_RELU, LG_ACT_SIGMOID, false, true, true},
    {"gru_reset_after_nobias", LG_CELL_GRU, LG_ACT_TANH, LG_ACT_SIGMOID, true, false, false},
};
#define N_ROWS ((int)(sizeof rows / sizeof rows[0]))
static const int lengths[] = {1, 2, 7};
#define N_LENGTHS ((int)(sizeof lengths / sizeof lengths[0]))

static lg_cell_opts row_opts(const struct row *r, lg_dtype dt)
{
    lg_cell_opts o = lg_cell_opts_default(r->kind, U);
    o.activation = r->act;
    o.recurrent_activation = r->rec_act;
    o.reset_after = r->reset_after;
    o.use_bias = r->use_bias;
    o.dtype = dt;
    o.seed = 7;
    return o;
}

/* ---- a plain C transcription of Keras's cells (the reference) ------------- */

static double act_ref(lg_activation a, double v)
{
    switch (a) {
    case LG_ACT_TANH: return tanh(v);
    case LG_ACT_SIGMOID: return 1 / (1 + exp(-v));
    case LG_ACT_HARD_SIGMOID: return fmin(1.0, fmax(0.0, v / 6 + 0.5));
    case LG_ACT_RELU: return v > 0 ? v : 0;
    default: return v;
    }
}

/* x [B, T, IN], s0 [2][B, U], masks [B, IN] and [B, U] or NULL. Writes
 * ys [B, T, U] and sT [2][B, U]. */
static void ref_run(const struct row *r, const lg_tensor *W, const lg_tensor *R, const lg_tensor *bias,
                    const double *x, int T, const double *s0, const double *xmask, const double *hmask, double *ys,
                    double *sT)
{
    int G = r->kind == LG_CELL_LSTM ? 4 : r->kind == LG_CELL_GRU ? 3 : 1;
    bool two_rows = r->kind == LG_CELL_GRU && r->reset_after;
    for (int b = 0; b < B; b++) {
        double h[U], c[U];
        for (int j = 0; j < U; j++) h[j] = s0[b * U + j], c[j] = s0[B * U + b * U + j];
        for (int t = 0; t < T; t++) {
            double xm[IN], hm[U], zx[MAX_G * U], zh[MAX_G * U];
            for (int i = 0; i < IN; i++) xm[i] = x[(b * T + t) * IN + i] * (xmask ? xmask[b * IN + i] : 1);
            for (int j = 0; j < U; j++) hm[j] = h[j] * (hmask ? hmask[b * U + j] : 1);
            for (int k = 0; k < G * U; k++) {
                zx[k] = r->use_bias ? lg_tensor_get(bias, k) : 0;
                zh[k] = r->use_bias && two_rows ? lg_tensor_get(bias, G * U + k) : 0;
                for (int i = 0; i < IN; i++) zx[k] += xm[i] * lg_tensor_get(W, i * G * U + k);
                for (int i = 0; i < U; i++) zh[k] += hm[i] * lg_tensor_get(R, i * G * U + k);
            }
            double hn[U];
            for (int j = 0; j < U; j++) {
                if (r->kind == LG_CELL_SIMPLE_RNN) {
                    hn[j] = act_ref(r->act, zx[j] + zh[j]);
                } else if (r->kind == LG_CELL_LSTM) {
                    double ig = act_ref(r->rec_act, zx[j] + zh[j]);
                    double fg = act_ref(r->rec_act, zx[U + j] + zh[U + j]);
                    double og = act_ref(r->rec_act, zx[3 * U + j] + zh[3 * U + j]);
                    c[j] = fg * c[j] + ig * act_ref(r->act, zx[2 * U + j] + zh[2 * U + j]);
                    hn[j] = og * act_ref(r->act, c[j]);
                } else {
                    double z = act_ref(r->rec_act, zx[j] + zh[j]);
                    double rr = act_ref(r->rec_act, zx[U + j] + zh[U + j]);
                    double rec_h = 0;
                    if (r->reset_after) {
                        rec_h = rr * zh[2 * U + j];
                    } else { /* (r * h) R_h */
                        for (int i = 0; i < U; i++) {
                            double ri = act_ref(r->rec_act, zx[U + i] + zh[U + i]);
                            rec_h += ri * hm[i] * lg_tensor_get(R, i * G * U + 2 * U + j);
                        }
                    }
                    double hh = act_ref(r->act, zx[2 * U + j] + rec_h);
                    hn[j] = z * h[j] + (1 - z) * hh; /* Keras 3 mixes the unmasked h */
                }
            }
            for (int j = 0; j < U; j++) h[j] = hn[j], ys[(b * T + t) * U + j] = hn[j];
        }
        for (int j = 0; j < U; j++) sT[b * U + j] = h[j], sT[B * U + b * U + j] = c[j];
    }
}

/* Everything one row at one length needs: the net, its random feeds and
 * parameters, its masks. */
typedef struct fixture {
    net n;
    lg_tensor *x, *s0[2], *xmask, *hmask;
    lg_value xm, hm;
    lg_feed feeds[3];
    int n_feeds;
} fixture;

static void fixture_make(fixture *f, const struct row *r, int T)
{
    memset(f, 0, sizeof *f);
    net_build(&f->n, row_opts(r, LG_F64), T);
    f->xm = f->hm = lg_value_invalid();
    if (r->masks) { /* Keras-style dropout masks: 0 or 1 / (1 - 0.25), fixed over time */
        f->xmask = new_tensor(LG_F64, lg_shape_of(2, B, IN));
        f->hmask = new_tensor(LG_F64, lg_shape_of(2, B, U));
        for (int i = 0; i < B * IN; i++) lg_tensor_set(f->xmask, i, i % 4 == 1 ? 0 : 4.0 / 3);
        for (int i = 0; i < B * U; i++) lg_tensor_set(f->hmask, i, i % 3 == 2 ? 0 : 4.0 / 3);
        f->xm = lg_constant(f->n.g, "x_mask", f->xmask);
        f->hm = lg_constant(f->n.g, "h_mask", f->hmask);
    }
    net_loop(&f->n, f->xm, f->hm);
    fill_normal(lg_cell_kernel(f->n.cell), 0.5, 1);
    fill_normal(lg_cell_recurrent_kernel(f->n.cell), 0.5, 2);
    if (r->use_bias) fill_normal(lg_cell_bias(f->n.cell), 0.5, 3);
    f->x = rand_tensor(lg_shape_of(3, B, T, IN), 1.0, 10);
    f->feeds[0] = (lg_feed){f->n.x, f->x};
    for (int k = 0; k < f->n.n_states; k++) {
        f->s0[k] = rand_tensor(lg_shape_of(2, B, U), 0.5, 11 + (uint64_t)k);
        f->feeds[1 + k] = (lg_feed){f->n.s0[k], f->s0[k]};
    }
    f->n_feeds = 1 + f->n.n_states;
}

static void fixture_free(fixture *f)
{
    lg_tensor_free(f->x);
    lg_tensor_free(f->s0[0]);
    lg_tensor_free(f->s0[1]);
    lg_tensor_free(f->xmask);
    lg_tensor_free(f->hmask);
    net_free(&f->n);
}

/* ---- reference ------------------------------------------------------------- */

START_TEST(test_reference)
{
    const struct row *r = &rows[_i / N_LENGTHS];
    int T = lengths[_i % N_LENGTHS];
    fixture f;
    fixture_make(&f, r, T);
    lg_value fetches[3] = {f.n.ys, f.n.sT[0], f.n.sT[1]};
    lg_tensor *out[3] = {NULL};
    lg_status st = lg_graph_run(f.n.g, f.feeds, f.n_feeds, fetches, 1 + f.n.n_states, out);
    ck_assert_msg(st == LG_OK, "%s T=%d: %s", r->name, T, lg_last_error());

    double x[B * MAX_T * IN], s0[2 * B * U] = {0}, ys[B * MAX_T * U], sT[2 * B * U];
    for (int i = 0; i < B * T * IN; i++) x[i] = lg_tensor_get(f.x, i);
    for (int k = 0; k < f.n.n_states; k++)
        for (int i = 0; i < B * U; i++) s0[k * B * U + i] = lg_tensor_get(f.s0[k], i);
    double xmask[B * IN], hmask[B * U];
    for (int i = 0; r->masks && i < B * IN; i++) xmask[i] = lg_tensor_get(f.xmask, i);
    for (int i = 0; r->masks && i < B * U; i++) hmask[i] = lg_tensor_get(f.hmask, i);
    lg_tensor *bias = r->use_bias ? lg_param_tensor(lg_cell_bias(f.n.cell)) : NULL;
    ref_run(r, lg_param_tensor(lg_cell_kernel(f.n.cell)), lg_param_tensor(lg_cell_recurrent_kernel(f.n.cell)), bias,
            x, T, s0, r->masks ? xmask : NULL, r->masks ? hmask : NULL, ys, sT);

    double worst = 0;
    for (int i = 0; i < B * T * U; i++) worst = fmax(worst, fabs(lg_tensor_get(out[0], i) - ys[i]));
    for (int k = 0; k < f.n.n_states; k++)
        for (int i = 0; i < B * U; i++) worst = fmax(worst, fabs(lg_tensor_get(out[1 + k], i) - sT[k * B * U + i]));
    ck_assert_msg(worst <= 1e-12, "%s T=%d: max |loopgrad - reference| = %g", r->name, T, worst);
    /* the values are not trivially zero (a test that could not fail) */
    ck_assert_double_gt(fabs(lg_tensor_get(out[1], 0)) + fabs(lg_tensor_get(out[1], 1)), 1e-3);
    for (int j = 0; j < 3; j++) lg_tensor_free(out[j]);
    fixture_free(&f);
}
END_TEST

/* f32 cells build and run too, and agree with the f64 reference to f32 precision. */
START_TEST(test_f32_runs)
{
    const struct row *r = &rows[_i];
    net n;
    net_build(&n, row_opts(r, LG_F32), 3);
    net_loop(&n, lg_value_invalid(), lg_value_invalid());
    ck_assert_int_eq(lg_value_dtype(n.ys), LG_F32);
    lg_tensor *x = new_tensor(LG_F32, lg_shape_of(3, B, 3, IN)), *s[2];
    ck_assert_int_eq(lg_init_normal(x, 0, 1, 5, 5), LG_OK);
    lg_feed feeds[3] = {{n.x, x}};
    for (int k = 0; k < n.n_states; k++) {
        s[k] = new_tensor(LG_F32, lg_shape_of(2, B, U));
        feeds[1 + k] = (lg_feed){n.s0[k], s[k]};
    }
    lg_tensor *out = NULL;
    ck_assert_msg(lg_graph_run(n.g, feeds, 1 + n.n_states, &n.ys, 1, &out) == LG_OK, "%s", lg_last_error());
    double xd[B * 3 * IN], s0[2 * B * U] = {0}, ys[B * 3 * U], sT[2 * B * U];
    for (int i = 0; i < B * 3 * IN; i++) xd[i] = lg_tensor_get(x, i);
    lg_tensor *bias = r->use_bias ? lg_param_tensor(lg_cell_bias(n.cell)) : NULL;
    ref_run(r, lg_param_tensor(lg_cell_kernel(n.cell)), lg_param_tensor(lg_cell_recurrent_kernel(n.cell)), bias, xd,
            3, s0, NULL, NULL, ys, sT);
    for (int i = 0; i < B * 3 * U; i++)
        ck_assert_msg(fabs(lg_tensor_get(out, i) - ys[i]) <= 1e-5, "%s: element %d: %g vs %g", r->name, i,
                      lg_tensor_get(out, i), ys[i]);
    lg_tensor_free(out);
    lg_tensor_free(x);
    for (int k = 0; k < n.n_states; k++) lg_tensor_free(s[k]);
    net_free(&n);
}
END_TEST

/* ---- gradcheck ------------------------------------------------------------- */

START_TEST(test_gradcheck)
{
    const struct row *r = &rows[_i / N_LENGTHS];
    int T = lengths[_i % N_LENGTHS];
    fixture f;
    fixture_make(&f, r, T);
    lg_graph *g = f.n.g;
    /* loss = sum(ys * R) + sum_k sum(s_T[k] * R2_k), fixed random R's */
    lg_tensor *rt[3] = {rand_tensor(lg_shape_of(3, B, T, U), 1.0, 20), rand_tensor(lg_shape_of(2, B, U), 1.0, 21),
                        rand_tensor(lg_shape_of(2, B, U), 1.0, 22)};
    lg_value loss = lg_sum(lg_mul(f.n.ys, lg_constant(g, "R", rt[0])), NULL, 0, false);
    for (int k = 0; k < f.n.n_states; k++)
        loss = lg_add(loss, lg_sum(lg_mul(f.n.sT[k], lg_constant(g, "R2", rt[1 + k])), NULL, 0, false));
    ck_assert_msg(lg_value_ok(loss), "%s", lg_graph_error(g));

    lg_value wrt[6];
    int n_wrt = 0;
    wrt[n_wrt++] = lg_cell_kernel(f.n.cell);
    wrt[n_wrt++] = lg_cell_recurrent_kernel(f.n.cell);
    if (r->use_bias) wrt[n_wrt++] = lg_cell_bias(f.n.cell);
    wrt[n_wrt++] = f.n.x;
    for (int k = 0; k < f.n.n_states; k++) wrt[n_wrt++] = f.n.s0[k];

    lg_gradcheck_report rep;
    lg_status st = lg_gradcheck(g, loss, wrt, n_wrt, f.feeds, f.n_feeds, lg_gradcheck_opts_default(), &rep);
    ck_assert_msg(st == LG_OK, "%s T=%d: %s: %s", r->name, T, lg_status_name(st), lg_last_error());
    ck_assert_msg(rep.passed, "%s T=%d: worst %s[%lld]: analytic %.12g, numeric %.12g", r->name, T, rep.worst_name,
                  rep.worst_index, rep.analytic, rep.numeric);
    ck_assert(rep.all_finite);
    ck_assert_int_gt(rep.checked, 3 * IN * U);
    for (int k = 0; k < 3; k++) lg_tensor_free(rt[k]);
    fixture_free(&f);
}
END_TEST

/* ---- PyTorch fixtures --------------------------------------------------------- */

static fx_file fx; /* rnn.txt, read once in main() before the runner forks */

START_TEST(test_torch)
{
    const fx_case *c = &fx.cases[_i];
    lg_cell_kind kind = strncmp(c->name, "lstm_", 5) == 0  ? LG_CELL_LSTM
                        : strncmp(c->name, "gru_", 4) == 0 ? LG_CELL_GRU
                                                           : LG_CELL_SIMPLE_RNN;
    lg_cell_opts o = lg_cell_opts_default(kind, U);
    o.dtype = LG_F64;
    if (strncmp(c->name, "rnn_relu", 8) == 0) o.activation = LG_ACT_RELU;
    int G = kind == LG_CELL_LSTM ? 4 : kind == LG_CELL_GRU ? 3 : 1;
    /* Keras gate block k is PyTorch block perm[k]: GRU z, r, h <- r, z, n */
    const int perm[4] = {kind == LG_CELL_GRU ? 1 : 0, kind == LG_CELL_GRU ? 0 : 1, 2, 3};

    const fx_array *g_x, *g_h0, *g_c0 = NULL, *g_wih, *g_whh, *g_bih, *g_bhh;
    const fx_array *x = fx_need(c, "x", &g_x), *h0 = fx_need(c, "h0", &g_h0);
    const fx_array *c0 = kind == LG_CELL_LSTM ? fx_need(c, "c0", &g_c0) : NULL;
    const fx_array *wih = fx_need(c, "weight_ih", &g_wih), *whh = fx_need(c, "weight_hh", &g_whh);
    const fx_array *bih = fx_need(c, "bias_ih", &g_bih), *bhh = fx_need(c, "bias_hh", &g_bhh);
    int T = (int)x->shape.dims[1];
    ck_assert_int_eq((int)x->shape.dims[0], B);
    ck_assert_int_eq((int)x->shape.dims[2], IN);
    ck_assert_int_eq((int)wih->shape.dims[0], G * U);

    net n;
    net_build(&n, o, T);
    net_loop(&n, lg_value_invalid(), lg_value_invalid());
    lg_tensor *K = lg_param_tensor(lg_cell_kernel(n.cell)), *R = lg_param_tensor(lg_cell_recurrent_kernel(n.cell));
    lg_tensor *Bt = lg_param_tensor(lg_cell_bias(n.cell));
    for (int k = 0; k < G; k++)
        for (int j = 0; j < U; j++) {
            int kc = k * U + j, pr = perm[k] * U + j; /* Keras column, PyTorch row */
            for (int i = 0; i < IN; i++) lg_tensor_set(K, i * G * U + kc, wih->v[pr * IN + i]);
            for (int i = 0; i < U; i++) lg_tensor_set(R, i * G * U + kc, whh->v[pr * U + i]);
            if (kind == LG_CELL_GRU) {
                lg_tensor_set(Bt, kc, bih->v[pr]);
                lg_tensor_set(Bt, G * U + kc, bhh->v[pr]);
            } else {
                lg_tensor_set(Bt, kc, bih->v[pr] + bhh->v[pr]);
            }
        }

    lg_value y = strstr(c->name, "_output") ? n.ys : strstr(c->name, "_c_n") ? n.sT[1] : n.sT[0];
    lg_tensor *ct = fx_to_tensor(&c->cotangent);
    lg_value loss = lg_sum(lg_mul(y, lg_constant(n.g, "ct", ct)), NULL, 0, false);
    lg_value wrt[6] = {lg_cell_kernel(n.cell), lg_cell_recurrent_kernel(n.cell), lg_cell_bias(n.cell), n.x, n.s0[0],
                       n.s0[1]};
    int n_wrt = 5 + (kind == LG_CELL_LSTM);
    lg_value fetches[7] = {y};
    ck_assert_msg(lg_grad(n.g, loss, wrt, n_wrt, fetches + 1) == LG_OK, "%s", lg_last_error());
    lg_tensor *feed_t[3] = {fx_to_tensor(x), fx_to_tensor(h0), c0 ? fx_to_tensor(c0) : NULL};
    lg_feed feeds[3] = {{n.x, feed_t[0]}, {n.s0[0], feed_t[1]}, {n.s0[1], feed_t[2]}};
    lg_tensor *out[7] = {NULL};
    lg_status st = lg_graph_run(n.g, feeds, c0 ? 3 : 2, fetches, 1 + n_wrt, out);
    ck_assert_msg(st == LG_OK, "%s: %s", c->name, lg_last_error());

    /* grads mapped back to PyTorch's layout */
    lg_tensor *gw_ih = new_tensor(LG_F64, wih->shape), *gw_hh = new_tensor(LG_F64, whh->shape);
    lg_tensor *gb_ih = new_tensor(LG_F64, bih->shape), *gb_hh = new_tensor(LG_F64, bhh->shape);
    for (int k = 0; k < G; k++)
        for (int j = 0; j < U; j++) {
            int kc = k * U + j, pr = perm[k] * U + j;
            for (int i = 0; i < IN; i++) lg_tensor_set(gw_ih, pr * IN + i, lg_tensor_get(out[1], i * G * U + kc));
            for (int i = 0; i < U; i++) lg_tensor_set(gw_hh, pr * U + i, lg_tensor_get(out[2], i * G * U + kc));
            lg_tensor_set(gb_ih, pr, lg_tensor_get(out[3], kc));
            lg_tensor_set(gb_hh, pr, lg_tensor_get(out[3], kind == LG_CELL_GRU ? G * U + kc : kc));
        }

    char msg[2048] = "";
    bool ok = fx_compare(c->name, "output", out[0], &c->output, msg, sizeof msg);
    ok &= fx_compare(c->name, "grad x", out[4], g_x, msg, sizeof msg);
    ok &= fx_compare(c->name, "grad h0", out[5], g_h0, msg, sizeof msg);
    if (c0) ok &= fx_compare(c->name, "grad c0", out[6], g_c0, msg, sizeof msg);
    ok &= fx_compare(c->name, "grad weight_ih", gw_ih, g_wih, msg, sizeof msg);
    ok &= fx_compare(c->name, "grad weight_hh", gw_hh, g_whh, msg, sizeof msg);
    ok &= fx_compare(c->name, "grad bias_ih", gb_ih, g_bih, msg, sizeof msg);
    ok &= fx_compare(c->name, "grad bias_hh", gb_hh, g_bhh, msg, sizeof msg);
    ck_assert_msg(ok, "case %s (rnn.txt:%d) differs from PyTorch:%s", c->name, c->line, msg);

    lg_tensor_free(gw_ih), lg_tensor_free(gw_hh), lg_tensor_free(gb_ih), lg_tensor_free(gb_hh);
    for (int j = 0; j < 7; j++) lg_tensor_free(out[j]);
    for (int j = 0; j < 3; j++) lg_tensor_free(feed_t[j]);
    lg_tensor_free(ct);
    net_free(&n);
}
END_TEST

START_TEST(test_torch_file)
{
    ck_assert_msg(fx.error[0] == '\0', "%s", fx.error);
    const char *want[] = {"rnn_tanh_output", "rnn_relu_h_n", "lstm_output", "lstm_h_n",
                          "lstm_c_n",        "gru_output",   "gru_h_n"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(fx_find_case(&fx, want[i]) != NULL, "rnn.txt lacks case %s", want[i]);
    ck_assert_int_eq(fx.n, (int)(sizeof want / sizeof want[0]));
}
END_TEST

/* ---- initializers ---------------------------------------------------------- */

/* max |A^T A - I| for t viewed as [rows, cols] (rows >= cols), or of A A^T. */
static double orthogonality_error(const lg_tensor *t, bool columns)
{
    lg_shape s = lg_tensor_shape(t);
    int64_t cols = s.dims[s.rank - 1], rows = lg_tensor_numel(t) / cols;
    int64_t n = columns ? cols : rows, m = columns ? rows : cols;
    double worst = 0;
    for (int64_t a = 0; a < n; a++)
        for (int64_t b = 0; b < n; b++) {
            double dot = 0;
            for (int64_t k = 0; k < m; k++)
                dot += columns ? lg_tensor_get(t, k * cols + a) * lg_tensor_get(t, k * cols + b)
                               : lg_tensor_get(t, a * cols + k) * lg_tensor_get(t, b * cols + k);
            worst = fmax(worst, fabs(dot - (a == b)));
        }
    return worst;
}

START_TEST(test_orthogonal)
{
    static const struct {
        lg_shape s;
        bool columns; /* tall: Q^T Q = I; wide: Q Q^T = I */
    } cases[] = {
        {{2, {6, 6}}, true}, {{2, {6, 6}}, false}, {{2, {8, 3}}, true},
        {{2, {3, 8}}, false}, {{3, {2, 3, 4}}, true}, {{2, {1, 5}}, false},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int dt = LG_F32; dt <= LG_F64; dt++) {
            lg_tensor *t = new_tensor((lg_dtype)dt, cases[c].s);
            ck_assert_int_eq(lg_init_apply(t, LG_INIT_ORTHOGONAL, 3, 4), LG_OK);
            double err = orthogonality_error(t, cases[c].columns);
            ck_assert_msg(err < (dt == LG_F64 ? 1e-13 : 1e-6), "case %zu %s: error %g", c,
                          lg_dtype_name((lg_dtype)dt), err);
            lg_tensor_free(t);
        }
    }
    /* Keras's sign convention: for tall A = Q R (A the same normal draw),
     * R = Q^T A is upper triangular with a positive diagonal. */
    lg_tensor *q = new_tensor(LG_F64, lg_shape_of(2, 7, 4)), *a = new_tensor(LG_F64, lg_shape_of(2, 7, 4));
    ck_assert_int_eq(lg_init_apply(q, LG_INIT_ORTHOGONAL, 11, 12), LG_OK);
    ck_assert_int_eq(lg_init_normal(a, 0, 1, 11, 12), LG_OK);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            double r = 0;
            for (int k = 0; k < 7; k++) r += lg_tensor_get(q, k * 4 + i) * lg_tensor_get(a, k * 4 + j);
            if (i == j) ck_assert_msg(r > 1e-3, "R[%d][%d] = %g, want > 0", i, j, r);
            if (i > j) ck_assert_msg(fabs(r) < 1e-12, "R[%d][%d] = %g, want 0", i, j, r);
        }
    /* wide: the transpose of the tall Q of the [cols, rows] draw */
    lg_tensor *w = new_tensor(LG_F64, lg_shape_of(2, 4, 7));
    ck_assert_int_eq(lg_init_apply(w, LG_INIT_ORTHOGONAL, 11, 12), LG_OK);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 7; j++) ck_assert(lg_tensor_get(w, i * 7 + j) == lg_tensor_get(q, j * 4 + i));
    lg_tensor_free(q), lg_tensor_free(a), lg_tensor_free(w);
}
END_TEST

/* From 512 columns on, the Q comes from LAPACK's Householder QR (cells.c):
 * the same Q as Gram-Schmidt's to rounding. Q's first K columns depend only
 * on A's first K, so Gram-Schmidt here over those K gives them (to 1e-12);
 * and Q is orthonormal with R = Q^T A upper triangular, its diagonal
 * positive (sampled rows and columns). */
START_TEST(test_orthogonal_householder)
{
    enum { M = 600, N = 512, K = 48 };
    lg_tensor *q = new_tensor(LG_F64, lg_shape_of(2, M, N)), *a = new_tensor(LG_F64, lg_shape_of(2, M, N));
    ck_assert_int_eq(lg_init_apply(q, LG_INIT_ORTHOGONAL, 5, 6), LG_OK);
    ck_assert_int_eq(lg_init_normal(a, 0, 1, 5, 6), LG_OK);
    double err = orthogonality_error(q, true);
    ck_assert_msg(err < 1e-13, "Q^T Q - I: %g", err);
    const double *qd = lg_tensor_cdata(q), *ad = lg_tensor_cdata(a);
    static double g[K][M]; /* A's first K columns, Gram-Schmidt twice */
    double worst = 0;
    for (int j = 0; j < K; j++) {
        for (int i = 0; i < M; i++) g[j][i] = ad[i * N + j];
        for (int pass = 0; pass < 2; pass++)
            for (int k = 0; k < j; k++) {
                double dot = 0;
                for (int i = 0; i < M; i++) dot += g[k][i] * g[j][i];
                for (int i = 0; i < M; i++) g[j][i] -= dot * g[k][i];
            }
        double norm = 0;
        for (int i = 0; i < M; i++) norm += g[j][i] * g[j][i];
        for (int i = 0; i < M; i++) {
            g[j][i] /= sqrt(norm);
            worst = fmax(worst, fabs(qd[i * N + j] - g[j][i]));
        }
    }
    ck_assert_msg(worst < 1e-12, "Q's first %d columns against Gram-Schmidt's: %g apart", K, worst);
    for (int i = 0; i < N; i += 7)
        for (int j = 0; j < N; j += 5) {
            double r = 0;
            for (int k = 0; k < M; k++) r += qd[k * N + i] * ad[k * N + j];
            if (i == j) ck_assert_msg(r > 1e-3, "R[%d][%d] = %g, want > 0", i, j, r);
            if (i > j) ck_assert_msg(fabs(r) < 1e-11, "R[%d][%d] = %g, want 0", i, j, r);
        }
    lg_tensor_free(q), lg_tensor_free(a);
}
END_TEST

START_TEST(test_init_apply_errors)
{
    lg_tensor *t = new_tensor(LG_F64, lg_shape_of(1, 5)), *i32 = new_tensor(LG_I32, lg_shape_of(2, 2, 2));
    ck_assert_int_eq(lg_init_apply(NULL, LG_INIT_ZEROS, 0, 0), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_init_apply(t, LG_INIT_COUNT, 0, 0), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_init_apply(t, (lg_initializer)-1, 0, 0), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_init_apply(i32, LG_INIT_ONES, 0, 0), LG_ERR_DTYPE);
    ck_assert_int_eq(lg_init_apply(t, LG_INIT_ORTHOGONAL, 0, 0), LG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "rank >= 2"));
    ck_assert_int_eq(lg_init_apply(t, LG_INIT_ONES, 0, 0), LG_OK);
    for (int i = 0; i < 5; i++) ck_assert(lg_tensor_get(t, i) == 1.0);
    ck_assert_int_eq(lg_init_apply(t, LG_INIT_ZEROS, 0, 0), LG_OK);
    for (int i = 0; i < 5; i++) ck_assert(lg_tensor_get(t, i) == 0.0);
    /* ranges and spreads that describe no distribution; the tensor is left as it was */
    ck_assert_int_eq(lg_init_uniform(t, 1, 0, 0, 0), LG_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(lg_last_error(), "lg_init_uniform: range [1, 0]: needs finite lo <= hi"), "%s", lg_last_error());
    ck_assert_int_eq(lg_init_uniform(t, 0, INFINITY, 0, 0), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_init_normal(t, 0, -1, 0, 0), LG_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(lg_last_error(), "lg_init_normal: mean 0, stddev -1"), "%s", lg_last_error());
    ck_assert_int_eq(lg_init_normal(t, NAN, 1, 0, 0), LG_ERR_INVALID_ARGUMENT);
    for (int i = 0; i < 5; i++) ck_assert(lg_tensor_get(t, i) == 0.0);
    ck_assert_int_eq(lg_init_uniform(t, 2, 2, 0, 0), LG_OK); /* a point is a range */
    ck_assert_int_eq(lg_init_normal(t, 1, 0, 0, 0), LG_OK);
    for (int i = 0; i < 5; i++) ck_assert(lg_tensor_get(t, i) == 1.0);
    lg_tensor_free(t), lg_tensor_free(i32);
}
END_TEST

START_TEST(test_cell_init)
{
    lg_graph *g = lg_graph_new();
    lg_cell_opts o = lg_cell_opts_default(LG_CELL_LSTM, 7);
    lg_cell *c = lg_cell_new(g, "lstm", 5, o);
    ck_assert_msg(c != NULL, "%s", lg_graph_error(g));
    /* names, shapes, dtype */
    ck_assert(lg_value_same(lg_graph_find_param(g, "lstm/kernel"), lg_cell_kernel(c)));
    ck_assert(lg_value_same(lg_graph_find_param(g, "lstm/recurrent_kernel"), lg_cell_recurrent_kernel(c)));
    ck_assert(lg_value_same(lg_graph_find_param(g, "lstm/bias"), lg_cell_bias(c)));
    ck_assert(lg_shape_equal(lg_value_shape(lg_cell_kernel(c)), lg_shape_of(2, 5, 28)));
    ck_assert(lg_shape_equal(lg_value_shape(lg_cell_recurrent_kernel(c)), lg_shape_of(2, 7, 28)));
    ck_assert(lg_shape_equal(lg_value_shape(lg_cell_bias(c)), lg_shape_of(1, 28)));
    ck_assert_int_eq(lg_value_dtype(lg_cell_kernel(c)), LG_F32);
    ck_assert_int_eq(lg_cell_state_count(c), 2);
    ck_assert_int_eq(lg_cell_units(c), 7);
    ck_assert_int_eq(lg_cell_get_opts(c).recurrent_initializer, LG_INIT_ORTHOGONAL);

    /* glorot_uniform kernel: within +-sqrt(6 / (5 + 28)), and using the range */
    const lg_tensor *k = lg_param_tensor(lg_cell_kernel(c));
    double limit = sqrt(6.0 / 33), big = 0;
    for (int i = 0; i < 5 * 28; i++) {
        double v = lg_tensor_get(k, i);
        ck_assert_msg(fabs(v) <= limit, "kernel[%d] = %g beyond %g", i, v, limit);
        big = fmax(big, fabs(v));
    }
    ck_assert_double_gt(big, 0.8 * limit);
    /* orthogonal recurrent kernel [7, 28]: orthonormal rows */
    ck_assert_double_lt(orthogonality_error(lg_param_tensor(lg_cell_recurrent_kernel(c)), false), 1e-5);
    /* unit_forget_bias: [zeros(u), ones(u), zeros(2u)] */
    for (int i = 0; i < 28; i++)
        ck_assert(lg_tensor_get(lg_param_tensor(lg_cell_bias(c)), i) == (i >= 7 && i < 14 ? 1.0 : 0.0));

    /* without unit_forget_bias: all zeros; with ones: all ones */
    o.unit_forget_bias = false;
    lg_cell *c2 = lg_cell_new(g, "lstm2", 5, o);
    for (int i = 0; i < 28; i++) ck_assert(lg_tensor_get(lg_param_tensor(lg_cell_bias(c2)), i) == 0.0);
    o.unit_forget_bias = true;
    o.bias_initializer = LG_INIT_ONES;
    lg_cell *c3 = lg_cell_new(g, "lstm3", 5, o);
    for (int i = 0; i < 28; i++) ck_assert(lg_tensor_get(lg_param_tensor(lg_cell_bias(c3)), i) == 1.0);
    /* same seed, other name: other weights */
    ck_assert(lg_tensor_get(lg_param_tensor(lg_cell_kernel(c2)), 0) != lg_tensor_get(k, 0));

    /* GRU biases; no bias; SimpleRNN */
    lg_cell *gr = lg_cell_new(g, "gru", 5, lg_cell_opts_default(LG_CELL_GRU, 3));
    ck_assert(lg_shape_equal(lg_value_shape(lg_cell_bias(gr)), lg_shape_of(2, 2, 9)));
    lg_cell_opts og = lg_cell_opts_default(LG_CELL_GRU, 3);
    og.reset_after = false;
    og.use_bias = false;
    lg_cell *gr2 = lg_cell_new(g, "gru2", 5, og);
    ck_assert(!lg_value_ok(lg_cell_bias(gr2)));
    ck_assert(!lg_value_ok(lg_graph_find_param(g, "gru2/bias")));
    og.use_bias = true;
    lg_cell *gr3 = lg_cell_new(g, "gru3", 5, og);
    ck_assert(lg_shape_equal(lg_value_shape(lg_cell_bias(gr3)), lg_shape_of(1, 9)));
    lg_cell *rn = lg_cell_new(g, NULL, 5, lg_cell_opts_default(LG_CELL_SIMPLE_RNN, 3));
    ck_assert(lg_value_ok(lg_graph_find_param(g, "simple_rnn/recurrent_kernel")));
    ck_assert_int_eq(lg_cell_state_count(rn), 1);
    ck_assert_ptr_null(lg_graph_error(g));

    lg_cell_free(c), lg_cell_free(c2), lg_cell_free(c3), lg_cell_free(gr), lg_cell_free(gr2), lg_cell_free(gr3);
    lg_cell_free(rn);
    lg_graph_free(g);
}
END_TEST

/* Same seed: same weights, in a new graph; another seed: other weights. */
START_TEST(test_seed_determinism)
{
    lg_graph *g[3] = {lg_graph_new(), lg_graph_new(), lg_graph_new()};
    lg_cell *c[3];
    for (int i = 0; i < 3; i++) {
        lg_cell_opts o = lg_cell_opts_default(LG_CELL_GRU, 6);
        o.seed = i == 2 ? 43 : 42;
        o.dtype = LG_F64;
        o.bias_initializer = LG_INIT_GLOROT_UNIFORM;
        c[i] = lg_cell_new(g[i], "gru", 4, o);
        ck_assert_ptr_nonnull(c[i]);
    }
    lg_value (*get[3])(const lg_cell *) = {lg_cell_kernel, lg_cell_recurrent_kernel, lg_cell_bias};
    for (int p = 0; p < 3; p++) {
        const lg_tensor *a = lg_param_tensor(get[p](c[0])), *b = lg_param_tensor(get[p](c[1]));
        const lg_tensor *d = lg_param_tensor(get[p](c[2]));
        ck_assert_int_eq(memcmp(lg_tensor_cdata(a), lg_tensor_cdata(b), lg_tensor_bytes(a)), 0);
        ck_assert_int_ne(memcmp(lg_tensor_cdata(a), lg_tensor_cdata(d), lg_tensor_bytes(a)), 0);
    }
    for (int i = 0; i < 3; i++) lg_cell_free(c[i]), lg_graph_free(g[i]);
}
END_TEST

/* ---- errors ------------------------------------------------------------------ */

struct bad_opts_row {
    const char *error; /* a substring of the graph's error */
    lg_cell_opts (*make)(void);
};

#define BAD(name, body)                                                                                     \
    static lg_cell_opts bad_##name(void)                                                                    \
    {                                                                                                       \
        lg_cell_opts o = lg_cell_opts_default(LG_CELL_LSTM, 4);                                             \
        body;                                                                                               \
        return o;                                                                                           \
    }
BAD(units, o.units = 0)
BAD(kind, o.kind = (lg_cell_kind)7)
BAD(kind_neg, o.kind = (lg_cell_kind)-1)
BAD(act, o.activation = LG_ACT_COUNT)
BAD(rec_act, o.recurrent_activation = (lg_activation)-3)
BAD(kinit, o.kernel_initializer = LG_INIT_COUNT)
BAD(rinit, o.recurrent_initializer = (lg_initializer)40)
BAD(binit, o.bias_initializer = (lg_initializer)9)
BAD(dtype, o.dtype = LG_I32)
BAD(bias_orthogonal, o.bias_initializer = LG_INIT_ORTHOGONAL)
#undef BAD

static const struct bad_opts_row bad_opts[] = {
    {"units 0", bad_units},
    {"kind 7 is not an lg_cell_kind", bad_kind},
    {"kind -1 is not", bad_kind_neg},
    {"activation 5 is not an lg_activation", bad_act},
    {"recurrent_activation -3", bad_rec_act},
    {"kernel_initializer 4", bad_kinit},
    {"recurrent_initializer 40", bad_rinit},
    {"bias_initializer 9", bad_binit},
    {"dtype i32", bad_dtype},
    {"orthogonal initializer on lstm/bias", bad_bias_orthogonal},
};

START_TEST(test_bad_opts)
{
    lg_graph *g = lg_graph_new();
    ck_assert_ptr_null(lg_cell_new(g, "lstm", 3, bad_opts[_i].make()));
    const char *e = lg_graph_error(g);
    ck_assert_msg(e && strstr(e, bad_opts[_i].error) && strstr(e, "cell 'lstm'"), "row %d: error \"%s\" lacks \"%s\"",
                  _i, e ? e : "(none)", bad_opts[_i].error);
    lg_graph_free(g);
}
END_TEST

START_TEST(test_bad_new)
{
    lg_cell_opts o = lg_cell_opts_default(LG_CELL_GRU, 4);
    ck_assert_ptr_null(lg_cell_new(NULL, "gru", 3, o));
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "graph is NULL"));

    lg_graph *g = lg_graph_new();
    ck_assert_ptr_null(lg_cell_new(g, "gru", 0, o));
    ck_assert_ptr_nonnull(strstr(lg_graph_error(g), "input_dim 0"));
    ck_assert_ptr_null(lg_cell_new(g, "gru", 3, o)); /* a graph with an error builds nothing more */
    lg_graph_free(g);

    g = lg_graph_new();
    ck_assert_ptr_null(lg_cell_new(g, "a/gru", 3, o));
    ck_assert_ptr_nonnull(strstr(lg_graph_error(g), "no '/'"));
    lg_graph_free(g);

    g = lg_graph_new(); /* two cells of one name: duplicate parameters */
    lg_cell *c = lg_cell_new(g, "gru", 3, o);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_null(lg_cell_new(g, "gru", 3, o));
    ck_assert_ptr_nonnull(strstr(lg_graph_error(g), "gru/kernel"));
    lg_cell_free(c);
    lg_graph_free(g);

    /* NULL cells are fine for the accessors and for free */
    lg_cell_free(NULL);
    ck_assert_int_eq(lg_cell_state_count(NULL), 0);
    ck_assert_int_eq(lg_cell_units(NULL), 0);
    ck_assert(!lg_value_ok(lg_cell_kernel(NULL)) && !lg_value_ok(lg_cell_bias(NULL)));
}
END_TEST

/* Step errors surface on the outer graph when the loop ends. */
enum step_fault {
    WRONG_X_DIM,
    WRONG_STATE_SHAPE,
    WRONG_DTYPE,
    OUTER_VALUE,
    NULL_STATES,
    NULL_CELL,
    OUTER_MASK,
    N_FAULTS
};
static const char *const step_errors[N_FAULTS] = {
    [WRONG_X_DIM] = "cell 'lstm': x_t is f64 [2, 5], the cell needs f64 [B, 3]",
    [WRONG_STATE_SHAPE] = "cell 'lstm': state c is f64 [2, 6], the cell needs f64 [B, 4]",
    [WRONG_DTYPE] = "cell 'lstm': x_t is f32 [2, 3], the cell needs f64 [B, 3]",
    [OUTER_VALUE] = "cell 'lstm': x_t is not a value of the loop's body",
    [NULL_STATES] = "lg_cell_step: states is NULL",
    [NULL_CELL] = "lg_cell_step: the cell is NULL",
    [OUTER_MASK] = "cell 'lstm': h_mask is not a value of the loop's body",
};

START_TEST(test_bad_step)
{
    lg_graph *g = lg_graph_new();
    lg_cell_opts o = lg_cell_opts_default(LG_CELL_LSTM, U);
    o.dtype = LG_F64;
    lg_cell *c = lg_cell_new(g, "lstm", IN, o);
    lg_dtype x_dt = _i == WRONG_DTYPE ? LG_F32 : LG_F64;
    lg_value x = lg_input(g, "x", x_dt, lg_shape_of(3, B, 5, _i == WRONG_X_DIM ? 5 : IN));
    lg_value h0 = lg_input(g, "h0", LG_F64, lg_shape_of(2, B, U));
    lg_value c0 = lg_input(g, "c0", LG_F64, lg_shape_of(2, B, _i == WRONG_STATE_SHAPE ? 6 : U));
    lg_loop *l = lg_loop_new(g, NULL, lg_loop_opts_default());
    lg_value x_t = lg_loop_seq(l, x), s[2] = {lg_loop_state(l, h0), lg_loop_state(l, c0)}, next[2], y;
    lg_value hm = _i == OUTER_MASK ? h0 : lg_value_invalid();
    lg_cell_step(_i == NULL_CELL ? NULL : c, l, _i == OUTER_VALUE ? h0 : x_t, _i == NULL_STATES ? NULL : s,
                 lg_value_invalid(), hm, next, &y);
    ck_assert(!lg_value_ok(y));
    if (_i != NULL_CELL) ck_assert(!lg_value_ok(next[0]) && !lg_value_ok(next[1]));
    ck_assert_int_eq(lg_loop_end(l, NULL, NULL), LG_ERR_GRAPH);
    const char *e = lg_graph_error(g);
    ck_assert_msg(e && strstr(e, step_errors[_i]), "fault %d: error \"%s\" lacks \"%s\"", _i, e ? e : "(none)",
                  step_errors[_i]);
    /* the prefix cells.h documents: the loop, then where the invalid step was
     * used (here neither lg_loop_next nor lg_loop_emit was called: "body") */
    if (_i == WRONG_X_DIM) ck_assert_ptr_nonnull(strstr(e, "loop 'loop': body: cell 'lstm': x_t"));
    lg_cell_free(c);
    lg_graph_free(g);
}
END_TEST

int main(void)
{
    fx_load(RNN_PATH, &fx);

    Suite *s = suite_create("cells");
    TCase *tc = tcase_create("reference");
    tcase_add_loop_test(tc, test_reference, 0, N_ROWS * N_LENGTHS);
    tcase_add_loop_test(tc, test_f32_runs, 0, N_ROWS);
    suite_add_tcase(s, tc);

    tc = tcase_create("gradcheck");
    tcase_add_loop_test(tc, test_gradcheck, 0, N_ROWS * N_LENGTHS);
    suite_add_tcase(s, tc);

    tc = tcase_create("torch");
    tcase_add_test(tc, test_torch_file);
    tcase_add_loop_test(tc, test_torch, 0, fx.n);
    suite_add_tcase(s, tc);

    tc = tcase_create("init");
    tcase_add_test(tc, test_orthogonal);
    tcase_add_test(tc, test_orthogonal_householder);
    tcase_add_test(tc, test_init_apply_errors);
    tcase_add_test(tc, test_cell_init);
    tcase_add_test(tc, test_seed_determinism);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_loop_test(tc, test_bad_opts, 0, (int)(sizeof bad_opts / sizeof bad_opts[0]));
    tcase_add_test(tc, test_bad_new);
    tcase_add_loop_test(tc, test_bad_step, 0, N_FAULTS);
    suite_add_tcase(s, tc);

    int status = lg_check_run(s);
    fx_file_free(&fx);
    return status;
}
