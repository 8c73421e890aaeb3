/*
 * test_masks.c — Keras's general masks (loop.h opts.mask, layers.h
 * lg_rnn_opts.mask), zero_output_for_mask, lg_embedding's mask_zero,
 * lg_masking, stateful Bidirectional, and the errors that name what the
 * user wrote.
 *
 * Keras semantics are computed by hand: a step masked out is skipped by
 * the states, so the valid outputs and the final states equal the same
 * layer run on the example's valid steps alone; a masked step's output is
 * the last valid output before it in processing order (zeros before the
 * first), or zeros with zero_output_for_mask; the backward direction of
 * Bidirectional reads x and the mask reversed together.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "test_util.h"
#include "graph/loopgrad.h"

#define B 3
#define T 5
#define F 2
#define U 3

/* Holes anywhere: leading, inner and trailing masked steps. */
static const int MASK[B][T] = {{1, 0, 1, 1, 0}, {0, 0, 1, 0, 1}, {1, 1, 1, 1, 1}};

static lg_tensor *rand_tensor(lg_shape s, uint64_t key) { return lg_test_uniform(LG_F64, s, 78, key, -1, 1); }

static lg_tensor *mask_tensor(void)
{
    lg_tensor *t = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_I32, lg_shape_of(2, B, T), &t), LG_OK);
    for (int i = 0; i < B * T; i++) lg_tensor_set(t, i, MASK[i / T][i % T]);
    return t;
}

static const lg_cell_kind KINDS[3] = {LG_CELL_SIMPLE_RNN, LG_CELL_LSTM, LG_CELL_GRU};

/* The valid steps of example b in processing order; returns their count. */
static int valid_steps(int b, bool backwards, int *steps)
{
    int n = 0;
    for (int p = 0; p < T; p++) {
        int t = backwards ? T - 1 - p : p;
        if (MASK[b][t]) steps[n++] = t;
    }
    return n;
}

/* cell run unmasked from zeros over x's steps `steps` of example b:
 * ys [n, U] and the final h. */
static void reference(lg_graph *g, lg_cell *cell, const lg_tensor *x, int b, const int *steps, int n, double *ys,
                      double *h)
{
    static int count;
    char name[32];
    snprintf(name, sizeof name, "ref%d", count++);
    lg_value xi = lg_input(g, name, LG_F64, lg_shape_of(3, 1, n, F));
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true;
    lg_rnn_result r;
    ck_assert_msg(lg_rnn(g, name, cell, xi, o, &r) == LG_OK, "%s", lg_last_error());
    lg_tensor *p = NULL, *out[2] = {NULL};
    ck_assert_int_eq(lg_tensor_new(LG_F64, lg_shape_of(3, 1, n, F), &p), LG_OK);
    for (int j = 0; j < n; j++)
        for (int k = 0; k < F; k++) lg_tensor_set(p, j * F + k, lg_tensor_get(x, ((int64_t)b * T + steps[j]) * F + k));
    lg_feed feed = {xi, p};
    ck_assert_int_eq(lg_graph_run(g, &feed, 1, (lg_value[2]){r.output, r.states[0]}, 2, out), LG_OK);
    for (int i = 0; i < n * U; i++) ys[i] = lg_tensor_get(out[0], i);
    for (int i = 0; i < U; i++) h[i] = lg_tensor_get(out[1], i);
    lg_tensor_free(p), lg_tensor_free(out[0]), lg_tensor_free(out[1]);
}

/* Keras's output sequence of one direction for example b, [T, U] in
 * processing order, and its final h. */
static void keras_direction(lg_graph *g, lg_cell *cell, const lg_tensor *x, int b, bool backwards, bool zero, double *seq,
                            double *h)
{
    int steps[T];
    int n = valid_steps(b, backwards, steps);
    double ys[T * U];
    reference(g, cell, x, b, steps, n, ys, h);
    int k = -1; /* the last valid step seen */
    for (int p = 0; p < T; p++) {
        int t = backwards ? T - 1 - p : p;
        if (MASK[b][t]) k++;
        for (int u = 0; u < U; u++)
            seq[p * U + u] = MASK[b][t] ? ys[k * U + u] : zero || k < 0 ? 0 : ys[k * U + u];
    }
}

static void assert_near(double got, double want, const char *what, int b, int t, int u)
{
    ck_assert_msg(fabs(got - want) < 1e-12, "%s: b %d t %d u %d: %.12g vs %.12g", what, b, t, u, got, want);
}

/* _i: kind x {forward, forward zero_output, go_backwards} */
START_TEST(rnn_mask_with_holes)
{
    int variant = _i % 3;
    bool zero = variant == 1, back = variant == 2;
    lg_graph *g = lg_graph_new();
    lg_cell *cell = lg_test_cell(g, "cell", KINDS[_i / 3], F, U, 5);
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, -1, -1, F));
    lg_value m = lg_input(g, "m", LG_I32, lg_shape_of(2, -1, -1));
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true, o.mask = m, o.zero_output_for_mask = zero, o.go_backwards = back;
    lg_rnn_result seq, last;
    ck_assert_msg(lg_rnn(g, NULL, cell, x, o, &seq) == LG_OK, "%s", lg_last_error());
    o.return_sequences = false;
    ck_assert_msg(lg_rnn(g, "last", cell, x, o, &last) == LG_OK, "%s", lg_last_error());
    lg_tensor *xt = rand_tensor(lg_shape_of(3, B, T, F), 1), *mt = mask_tensor(), *out[3] = {NULL};
    lg_feed feeds[2] = {{x, xt}, {m, mt}};
    ck_assert_int_eq(lg_graph_run(g, feeds, 2, (lg_value[3]){seq.output, seq.states[0], last.output}, 3, out), LG_OK);
    for (int b = 0; b < B; b++) {
        double want[T * U], h[U];
        keras_direction(g, cell, xt, b, back, zero, want, h);
        for (int i = 0; i < T * U; i++) assert_near(lg_tensor_get(out[0], b * T * U + i), want[i], "seq", b, i / U, i % U);
        for (int u = 0; u < U; u++) assert_near(lg_tensor_get(out[1], b * U + u), h[u], "final h", b, -1, u);
        /* the last output: the last valid one, or with zero_output_for_mask the
         * last step's, zero when it is masked */
        int last_t = back ? 0 : T - 1;
        for (int u = 0; u < U; u++)
            assert_near(lg_tensor_get(out[2], b * U + u), zero && !MASK[b][last_t] ? 0 : h[u], "last", b, -1, u);
    }
    for (int k = 0; k < 3; k++) lg_tensor_free(out[k]);
    lg_tensor_free(xt), lg_tensor_free(mt);
    lg_cell_free(cell);
    lg_graph_free(g);
}
END_TEST

/* Bidirectional with holes: the backward direction reads x and the mask
 * reversed; returning sequences, both directions emit zeros at masked
 * steps (Keras forces zero_output_for_mask); without, each gives its last
 * valid output. */
START_TEST(bidirectional_mask_with_holes)
{
    lg_graph *g = lg_graph_new();
    lg_cell *fw = lg_test_cell(g, "fw", KINDS[_i], F, U, 7), *bw = lg_test_cell(g, "bw", KINDS[_i], F, U, 8);
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, -1, T, F));
    lg_value m = lg_input(g, "m", LG_F32, lg_shape_of(2, -1, T));
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true, o.mask = m;
    lg_bidirectional_result seq, last;
    ck_assert_msg(lg_bidirectional(g, "bi", fw, bw, x, LG_MERGE_CONCAT, o, &seq) == LG_OK, "%s", lg_last_error());
    o.return_sequences = false;
    ck_assert_msg(lg_bidirectional(g, "bi_last", fw, bw, x, LG_MERGE_SUM, o, &last) == LG_OK, "%s", lg_last_error());
    lg_tensor *xt = rand_tensor(lg_shape_of(3, B, T, F), 2), *mt = NULL, *out[2] = {NULL};
    ck_assert_int_eq(lg_tensor_new(LG_F32, lg_shape_of(2, B, T), &mt), LG_OK);
    for (int i = 0; i < B * T; i++) lg_tensor_set(mt, i, MASK[i / T][i % T]);
    lg_feed feeds[2] = {{x, xt}, {m, mt}};
    ck_assert_int_eq(lg_graph_run(g, feeds, 2, (lg_value[2]){seq.output, last.output}, 2, out), LG_OK);
    for (int b = 0; b < B; b++) {
        double fs[T * U], bs[T * U], fh[U], bh[U];
        keras_direction(g, fw, xt, b, false, true, fs, fh);
        keras_direction(g, bw, xt, b, true, true, bs, bh);
        for (int t = 0; t < T; t++)
            for (int u = 0; u < U; u++) {
                assert_near(lg_tensor_get(out[0], (b * T + t) * 2 * U + u), fs[t * U + u], "forward", b, t, u);
                /* Keras flips the backward sequence back to x's time */
                assert_near(lg_tensor_get(out[0], (b * T + t) * 2 * U + U + u), bs[(T - 1 - t) * U + u], "backward", b,
                            t, u);
            }
        for (int u = 0; u < U; u++) assert_near(lg_tensor_get(out[1], b * U + u), fh[u] + bh[u], "sum of last", b, -1, u);
    }
    lg_tensor_free(out[0]), lg_tensor_free(out[1]);
    lg_tensor_free(xt), lg_tensor_free(mt);
    lg_cell_free(fw), lg_cell_free(bw);
    lg_graph_free(g);
}
END_TEST

/* f64 gradients through masked layers: _i: kind x {forward repeating with
 * initial states, go_backwards, Bidirectional}. */
START_TEST(mask_gradcheck)
{
    int variant = _i % 3;
    lg_graph *g = lg_graph_new();
    lg_cell *fw = lg_test_cell(g, "fw", KINDS[_i / 3], F, U, 9), *bw = lg_test_cell(g, "bw", KINDS[_i / 3], F, U, 10);
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F));
    lg_value m = lg_input(g, "m", LG_I32, lg_shape_of(2, B, T));
    lg_value h0[2] = {lg_input(g, "h0", LG_F64, lg_shape_of(2, B, U)), lg_input(g, "c0", LG_F64, lg_shape_of(2, B, U))};
    int n_states = lg_cell_state_count(fw);
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true, o.mask = m;
    lg_value y;
    if (variant == 2) {
        lg_bidirectional_result r;
        ck_assert_msg(lg_bidirectional(g, NULL, fw, bw, x, LG_MERGE_MUL, o, &r) == LG_OK, "%s", lg_last_error());
        y = r.output;
    } else {
        if (variant == 0) o.initial_state = h0, o.n_initial_state = n_states;
        o.go_backwards = variant == 1;
        lg_rnn_result r;
        ck_assert_msg(lg_rnn(g, NULL, fw, x, o, &r) == LG_OK, "%s", lg_last_error());
        y = lg_add(lg_sum(r.output, NULL, 0, false), lg_sum(lg_square(r.states[n_states - 1]), NULL, 0, false));
    }
    lg_tensor *wt = rand_tensor(lg_value_shape(y).rank ? lg_shape_of(1, U) : lg_shape_of(1, 1), 3);
    lg_value loss = lg_value_rank(y) ? lg_sum(lg_square(lg_mul(y, lg_constant(g, "w", wt))), NULL, 0, false) : y;
    lg_tensor *xt = rand_tensor(lg_shape_of(3, B, T, F), 4), *mt = mask_tensor();
    lg_tensor *h0t = rand_tensor(lg_shape_of(2, B, U), 5), *c0t = rand_tensor(lg_shape_of(2, B, U), 6);
    lg_feed feeds[4] = {{x, xt}, {m, mt}, {h0[0], h0t}, {h0[1], c0t}};
    int nf = variant == 0 ? 2 + n_states : 2;
    lg_value wrt[8] = {x, lg_cell_kernel(fw), lg_cell_recurrent_kernel(fw), lg_cell_bias(fw)};
    int nw = 4;
    if (variant == 0)
        for (int k = 0; k < n_states; k++) wrt[nw++] = h0[k];
    if (variant == 2) wrt[nw++] = lg_cell_kernel(bw), wrt[nw++] = lg_cell_recurrent_kernel(bw);
    lg_gradcheck_report rep;
    ck_assert_msg(lg_gradcheck(g, loss, wrt, nw, feeds, nf, lg_gradcheck_opts_default(), &rep) == LG_OK, "%s",
                  lg_last_error());
    ck_assert_msg(rep.passed, "worst %s[%lld] analytic %.10g numeric %.10g", rep.worst_name, rep.worst_index,
                  rep.analytic, rep.numeric);
    ck_assert(rep.checked > 30);
    lg_tensor_free(wt), lg_tensor_free(xt), lg_tensor_free(mt), lg_tensor_free(h0t), lg_tensor_free(c0t);
    lg_cell_free(fw), lg_cell_free(bw);
    lg_graph_free(g);
}
END_TEST

/* ys[0] = 2 h' + 1 and ys[1] = h' with h' = h + x_t, a running sum, over
 * x masked by m. */
static void running_sum(lg_graph *g, lg_value x, lg_value m, lg_value h0, bool reverse, bool unroll, lg_value *hT,
                        lg_value *ys)
{
    lg_loop_opts lo = lg_loop_opts_default();
    lo.mask = m, lo.zero_output_for_mask = false, lo.reverse = reverse, lo.unroll = unroll;
    lg_loop *l = lg_loop_new(g, unroll ? "unrolled" : "loop", lo);
    lg_value xt_ = lg_loop_seq(l, x), h = lg_loop_state(l, h0);
    lg_value next = lg_add(h, xt_);
    lg_loop_next(l, h, next);
    lg_loop_emit(l, lg_add_scalar(lg_scale(next, 2), 1));
    lg_loop_emit(l, next);
    ck_assert_msg(lg_loop_end(l, hT, ys) == LG_OK, "%s", lg_last_error());
}

/* Under a general mask a repeated output carries the last valid output as
 * a state of its own, whether or not it is a next state: with
 * zero_output_for_mask false a masked step repeats it (zeros before the first
 * valid step, not the initial state), unrolled or not, and gradients
 * pass. */
START_TEST(loop_output_not_a_state)
{
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, 1));
    lg_value m = lg_input(g, "m", LG_I32, lg_shape_of(2, B, T));
    lg_value h0 = lg_input(g, "h0", LG_F64, lg_shape_of(2, B, 1));
    lg_value hT, ys[2], uhT, uys[2];
    running_sum(g, x, m, h0, _i, false, &hT, ys);
    running_sum(g, x, m, h0, _i, true, &uhT, uys);
    lg_tensor *xt = rand_tensor(lg_shape_of(3, B, T, 1), 7), *mt = mask_tensor();
    lg_tensor *h0t = rand_tensor(lg_shape_of(2, B, 1), 8), *out[3] = {NULL};
    lg_feed feeds[3] = {{x, xt}, {m, mt}, {h0, h0t}};
    for (int unrolled = 0; unrolled < 2; unrolled++) {
        lg_value fetch[3] = {unrolled ? uhT : hT, unrolled ? uys[0] : ys[0], unrolled ? uys[1] : ys[1]};
        ck_assert_msg(lg_graph_run(g, feeds, 3, fetch, 3, out) == LG_OK, "%s", lg_last_error());
        for (int b = 0; b < B; b++) {
            double s = lg_tensor_get(h0t, b), y = 0, h = 0;
            for (int p = 0; p < T; p++) {
                int t = _i ? T - 1 - p : p;
                if (MASK[b][t]) s += lg_tensor_get(xt, b * T + t), y = 2 * s + 1, h = s;
                assert_near(lg_tensor_get(out[1], b * T + t), y, unrolled ? "unrolled y" : "y", b, t, 0);
                assert_near(lg_tensor_get(out[2], b * T + t), h, unrolled ? "unrolled h'" : "h'", b, t, 0);
            }
            assert_near(lg_tensor_get(out[0], b), s, "final h", b, -1, 0);
        }
        for (int k = 0; k < 3; k++) lg_tensor_free(out[k]), out[k] = NULL;
    }
    lg_value loss = lg_add(lg_sum(lg_square(ys[0]), NULL, 0, false), lg_sum(lg_square(ys[1]), NULL, 0, false));
    lg_gradcheck_report rep;
    ck_assert_int_eq(lg_gradcheck(g, loss, (lg_value[2]){x, h0}, 2, feeds, 3, lg_gradcheck_opts_default(), &rep), LG_OK);
    ck_assert_msg(rep.passed, "worst %s[%lld] %.10g vs %.10g", rep.worst_name, rep.worst_index, rep.analytic, rep.numeric);
    lg_tensor_free(xt), lg_tensor_free(mt), lg_tensor_free(h0t);
    lg_graph_free(g);
}
END_TEST

/* Embedding mask_zero: the mask is ids != 0, and a layer fed by it equals
 * the same layer fed the mask by hand. Masking: a step whose features all
 * equal mask_value is masked and zeroed. */
START_TEST(embedding_and_masking_layers)
{
    lg_graph *g = lg_graph_new();
    lg_value ids = lg_input(g, "ids", LG_I32, lg_shape_of(2, B, T));
    lg_value emask = lg_value_invalid();
    lg_embedding_opts eo = lg_embedding_opts_default();
    eo.dtype = LG_F64, eo.mask_zero = true;
    lg_value e = lg_embedding(g, "emb", ids, 6, F, eo, &emask);
    ck_assert(lg_value_ok(e) && lg_value_ok(emask));
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F)), xmask = lg_value_invalid();
    lg_value xm = lg_masking(g, "masking", x, 0.5, &xmask);
    ck_assert(lg_value_ok(xm) && lg_value_ok(xmask));
    lg_tensor *idt = NULL, *xt = rand_tensor(lg_shape_of(3, B, T, F), 9), *out[3] = {NULL};
    ck_assert_int_eq(lg_tensor_new(LG_I32, lg_shape_of(2, B, T), &idt), LG_OK);
    for (int i = 0; i < B * T; i++) lg_tensor_set(idt, i, MASK[i / T][i % T] ? 1 + i % 5 : 0);
    for (int i = 0; i < B * T; i++)
        for (int k = 0; k < F; k++)
            if (!MASK[i / T][i % T]) lg_tensor_set(xt, i * F + k, 0.5);
    lg_tensor_set(xt, 0, 0.5); /* one feature equal to mask_value does not mask */
    lg_feed feeds[2] = {{ids, idt}, {x, xt}};
    ck_assert_int_eq(lg_graph_run(g, feeds, 2, (lg_value[3]){emask, xmask, xm}, 3, out), LG_OK);
    for (int i = 0; i < B * T; i++) {
        ck_assert_int_eq((int)lg_tensor_get(out[0], i), MASK[i / T][i % T]);
        ck_assert_int_eq((int)lg_tensor_get(out[1], i), MASK[i / T][i % T]);
        for (int k = 0; k < F; k++)
            assert_near(lg_tensor_get(out[2], i * F + k), MASK[i / T][i % T] ? lg_tensor_get(xt, i * F + k) : 0, "masking",
                        i / T, i % T, k);
    }
    for (int k = 0; k < 3; k++) lg_tensor_free(out[k]);
    /* errors */
    ck_assert(!lg_value_ok(lg_embedding(g, "emb2", ids, 6, F, eo, NULL)));
    ck_assert_msg(strstr(lg_graph_error(g), "embedding 'emb2': mask_zero needs a mask to put it in"), "%s",
                  lg_graph_error(g));
    lg_graph *g2 = lg_graph_new();
    lg_value xi = lg_input(g2, "xi", LG_I32, lg_shape_of(3, B, T, F)), mk;
    ck_assert(!lg_value_ok(lg_masking(g2, "masking", xi, 0, &mk)));
    ck_assert_msg(strstr(lg_graph_error(g2), "masking 'masking': x 'xi' must be a float [B, T, F], got i32"), "%s",
                  lg_graph_error(g2));
    lg_graph_free(g2);
    lg_tensor_free(idt), lg_tensor_free(xt);
    lg_graph_free(g);
}
END_TEST

/* Stateful Bidirectional: each direction's final states start the next run
 * (Keras), equal to a stateless layer given them as initial states; reset
 * starts from zeros again. */
START_TEST(stateful_bidirectional)
{
    lg_graph *g = lg_graph_new();
    lg_cell *fw = lg_test_cell(g, "fw", KINDS[_i], F, U, 11), *bw = lg_test_cell(g, "bw", KINDS[_i], F, U, 12);
    int ns = lg_cell_state_count(fw);
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F));
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true, o.stateful = true, o.batch_size = B;
    lg_bidirectional_result sr;
    ck_assert_msg(lg_bidirectional(g, "sbi", fw, bw, x, LG_MERGE_CONCAT, o, &sr) == LG_OK, "%s", lg_last_error());
    ck_assert(sr.forward.state && sr.backward.state);
    lg_value init[4];
    for (int k = 0; k < 2 * ns; k++) init[k] = lg_input(g, k < ns ? "if" : "ib", LG_F64, lg_shape_of(2, B, U));
    lg_rnn_opts p = lg_rnn_opts_default();
    p.return_sequences = true, p.initial_state = init, p.n_initial_state = 2 * ns;
    lg_bidirectional_result pr;
    ck_assert_msg(lg_bidirectional(g, "plain", fw, bw, x, LG_MERGE_CONCAT, p, &pr) == LG_OK, "%s", lg_last_error());
    lg_rnn_state *states[2] = {sr.forward.state, sr.backward.state};
    for (int run = 0; run < 3; run++) {
        if (run == 2) lg_rnn_state_reset(sr.forward.state), lg_rnn_state_reset(sr.backward.state);
        lg_feed feeds[5] = {{x, rand_tensor(lg_shape_of(3, B, T, F), 20 + (uint64_t)run)}};
        double carried = 0; /* the backward direction's h, carried from the last run */
        for (int k = 0; k < 2 * ns; k++) {
            lg_tensor *c = NULL;
            ck_assert_int_eq(lg_tensor_clone(lg_rnn_state_tensor(states[k / ns], k % ns), &c), LG_OK);
            feeds[1 + k] = (lg_feed){init[k], c};
        }
        for (int i = 0; i < B * U; i++) carried += fabs(lg_tensor_get(feeds[1 + ns].tensor, i));
        ck_assert(run == 1 ? carried > 0 : carried == 0);
        lg_tensor *want = NULL, *got = NULL;
        ck_assert_int_eq(lg_graph_run(g, feeds, 1 + 2 * ns, &pr.output, 1, &want), LG_OK);
        ck_assert_msg(lg_rnn_state_run(g, states, 2, feeds, 1, &sr.output, 1, &got) == LG_OK, "%s", lg_last_error());
        for (int64_t i = 0; i < lg_tensor_numel(want); i++)
            assert_near(lg_tensor_get(got, i), lg_tensor_get(want, i), "stateful", run, (int)i, 0);
        for (int k = 0; k < 1 + 2 * ns; k++) lg_tensor_free((lg_tensor *)feeds[k].tensor);
        lg_tensor_free(want), lg_tensor_free(got);
    }
    lg_rnn_state_free(sr.forward.state), lg_rnn_state_free(sr.backward.state);
    lg_cell_free(fw), lg_cell_free(bw);
    lg_graph_free(g);
}
END_TEST

/* Errors name what the user wrote: an initial state of another batch than
 * x (known only at run time), a merge mode. */
START_TEST(errors_name_the_user_values)
{
    lg_graph *g = lg_graph_new();
    lg_cell *cell = lg_test_cell(g, "cell", LG_CELL_GRU, F, U, 13);
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, -1, T, F)), h = lg_input(g, "h", LG_F64, lg_shape_of(2, -1, U));
    lg_rnn_opts o = lg_rnn_opts_default();
    o.initial_state = &h, o.n_initial_state = 1;
    lg_rnn_result r;
    ck_assert_int_eq(lg_rnn(g, "enc", cell, x, o, &r), LG_OK);
    lg_tensor *xt = rand_tensor(lg_shape_of(3, 3, T, F), 1), *ht = rand_tensor(lg_shape_of(2, 2, U), 2), *out = NULL;
    lg_feed feeds[2] = {{x, xt}, {h, ht}};
    ck_assert_int_eq(lg_graph_run(g, feeds, 2, &r.output, 1, &out), LG_ERR_SHAPE);
    ck_assert_msg(strstr(lg_last_error(), "initial state 0 of 'enc/loop': batch 2, x has batch 3"), "%s",
                  lg_last_error());
    ck_assert_str_eq(lg_merge_mode_name(LG_MERGE_AVE), "ave");
    ck_assert_str_eq(lg_merge_mode_name((lg_merge_mode)7), "?");
    lg_tensor_free(xt), lg_tensor_free(ht);
    lg_cell_free(cell);
    lg_graph_free(g);
}
END_TEST

/* Lengths or a mask fed with another batch (or steps) than x, known only
 * at run time: the error names the loop, the lengths or mask as fed, and
 * the feeds, on the fused path (the default) and the generic loop alike. */
START_TEST(lengths_and_mask_checked_against_x_at_run_time)
{
    bool mask = _i & 1, generic = _i & 2, mask_batch = _i == 4; /* 4: a mask of the right steps, the wrong batch */
    mask = mask || mask_batch;
    lg_graph *g = lg_graph_new();
    lg_cell *cell = lg_test_cell(g, "cell", LG_CELL_LSTM, F, U, 14);
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, -1, T, F));
    lg_value m = mask ? lg_input(g, "m", LG_F64, lg_shape_of(2, -1, -1)) : lg_input(g, "len", LG_I32, lg_shape_of(1, -1));
    lg_rnn_opts o = lg_rnn_opts_default();
    if (mask) o.mask = m;
    else o.lengths = m;
    lg_rnn_result r;
    ck_assert_int_eq(lg_rnn(g, "rnn", cell, x, o, &r), LG_OK);
    lg_tensor *xt = rand_tensor(lg_shape_of(3, 2, T, F), 1);
    lg_tensor *mt = mask_batch ? rand_tensor(lg_shape_of(2, 3, T), 2)
                    : mask     ? rand_tensor(lg_shape_of(2, 2, T + 1), 2)
                               : lg_test_tensor(LG_I32, lg_shape_of(1, 3), (int32_t[]){1, 2, 3});
    lg_feed feeds[2] = {{x, xt}, {m, mt}};
    lg_compile_opts co = lg_compile_opts_default();
    co.passes_off = generic ? "fuse_rnn" : NULL;
    lg_program *p = NULL;
    ck_assert_int_eq(lg_program_compile_opts(g, feeds, 2, &r.output, 1, co, &p), LG_ERR_SHAPE);
    const char *want = mask_batch ? "loop 'rnn/loop': the mask, [5, 3] time-major, does not have the sequences' 5 steps and batch 2"
                       : mask     ? "loop 'rnn/loop': the mask, [6, 2] time-major, does not have the sequences' 5 steps and batch 2"
                                  : "loop 'rnn/loop': the lengths, i32 [3], are not one per example of a batch of 2";
    ck_assert_msg(strstr(lg_last_error(), want), "%s", lg_last_error());
    const char *fed = mask_batch ? "(feeds: 'x' [2, 5, 2], 'm' [3, 5])"
                      : mask     ? "(feeds: 'x' [2, 5, 2], 'm' [2, 6])"
                                 : "(feeds: 'x' [2, 5, 2], 'len' [3])";
    ck_assert_msg(strstr(lg_last_error(), fed), "%s", lg_last_error());
    ck_assert_ptr_null(p);
    lg_tensor_free(xt), lg_tensor_free(mt);
    lg_cell_free(cell);
    lg_graph_free(g);
}
END_TEST

static Suite *masks_suite(void)
{
    Suite *s = suite_create("masks");
    TCase *tc = tcase_create("masks");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, rnn_mask_with_holes, 0, 9);
    tcase_add_loop_test(tc, bidirectional_mask_with_holes, 0, 3);
    tcase_add_loop_test(tc, mask_gradcheck, 0, 9);
    tcase_add_loop_test(tc, loop_output_not_a_state, 0, 2);
    tcase_add_test(tc, embedding_and_masking_layers);
    tcase_add_loop_test(tc, stateful_bidirectional, 0, 3);
    tcase_add_test(tc, errors_name_the_user_values);
    tcase_add_loop_test(tc, lengths_and_mask_checked_against_x_at_run_time, 0, 5);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lg_check_run(masks_suite()); }
