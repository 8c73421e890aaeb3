/*
 * test_passes.c — the compile passes (src/graph/passes): every result with
 * passes switched off equals the result with them on (f64, 1e-12 relative)
 * on loops, stacked, bidirectional and masked layers, nested loops and a
 * user-written cell; residuals are chosen for the fetches; the switches;
 * fuse_rnn's fused loops equal the loops they replace, and its refusals.
 */
#define _POSIX_C_SOURCE 200809L /* setenv */

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../examples/cells/nested.h"
#include "../examples/cells/peephole.h"
#include "test_util.h"

LG_TEST_GRAPH_FIXTURE

/* Every switchable pass, and each alone. */
static const char *const off_sets[] = {"verify,fuse_rnn,hoist,fuse_elementwise,dce,merge_rnn,memory_plan",
                                       "fuse_rnn", "merge_rnn", "hoist", "fuse_elementwise", "dce", "memory_plan",
                                       "verify"};
#define N_OFF_SETS (sizeof off_sets / sizeof off_sets[0])

static lg_tensor **run_with(const char *off, const lg_feed *f, int n_f, const lg_value *fetch, int n)
{
    lg_compile_opts o = lg_compile_opts_default();
    o.passes_off = off;
    lg_program *p = NULL;
    lg_status s = lg_program_compile_opts(g, f, n_f, fetch, n, o, &p);
    ck_assert_msg(s == LG_OK, "compile (off: %s): %s", off ? off : "none", lg_last_error());
    lg_tensor **out = calloc((size_t)n, sizeof *out);
    s = lg_program_run(p, f, n_f, out);
    ck_assert_msg(s == LG_OK, "run (off: %s): %s", off ? off : "none", lg_last_error());
    lg_program_free(p);
    return out;
}

static void free_outs(lg_tensor **out, int n)
{
    for (int i = 0; i < n; i++) lg_tensor_free(out[i]);
    free(out);
}

/* The first element where a and b (as many elements) differ by more than
 * 1e-12 relative, or -1. One assertion per tensor, not per element: every
 * passing ck_assert writes a record to Check's log, which cost this suite
 * seconds on its megabyte-sized tensors. */
static int64_t first_difference(const lg_tensor *a, const lg_tensor *b)
{
    for (int64_t e = 0; e < lg_tensor_numel(a); e++) {
        double x = lg_tensor_get(a, e), y = lg_tensor_get(b, e);
        if (!(fabs(x - y) <= 1e-12 * fmax(1.0, fmax(fabs(x), fabs(y))))) return e;
    }
    return -1;
}

/* The fetches with all passes on equal those with each off set. */
static void check_passes_agree(const lg_feed *f, int n_f, const lg_value *fetch, int n)
{
    lg_tensor **on = run_with(NULL, f, n_f, fetch, n);
    for (size_t k = 0; k < N_OFF_SETS; k++) {
        lg_tensor **off = run_with(off_sets[k], f, n_f, fetch, n);
        for (int i = 0; i < n; i++) {
            ck_assert_int_eq(lg_tensor_numel(on[i]), lg_tensor_numel(off[i]));
            int64_t e = first_difference(on[i], off[i]);
            ck_assert_msg(e < 0, "off %s: fetch %d [%lld]: %.17g with passes on, %.17g off", off_sets[k], i, (long long)e,
                          lg_tensor_get(on[i], e), lg_tensor_get(off[i], e));
        }
        free_outs(off, n);
    }
    free_outs(on, n);
}

/* The report line fuse_rnn wrote for each loop, in one string; for each
 * forward loop, lg_loop_fused (which compiles nothing) says the same. */
static char *fuse_notes(const lg_feed *f, int n_f, const lg_value *fetch, int n)
{
    lg_program *p = NULL;
    ck_assert_int_eq(lg_program_compile(g, f, n_f, fetch, n, &p), LG_OK);
    char *rep = lg_program_report(p);
    lg_program_free(p);
    ck_assert_ptr_nonnull(rep);
    lg_loop_info s;
    for (int i = 0; i < lg_graph_node_count(g); i++) {
        if (!lg_graph_node_loop(g, i, &s) || s.gradient) continue;
        char what[256], line[512];
        bool fused = lg_loop_fused(g, i, what, sizeof what);
        snprintf(line, sizeof line, "fuse_rnn: loop '%s': %s%s\n", lg_graph_node_name(g, i),
                 fused ? "fused as " : "not fused: ", what);
        ck_assert_msg(strstr(rep, line), "lg_loop_fused says '%s', the report:\n%s", line, rep);
    }
    return rep;
}

static void expect_note(const lg_feed *f, int n_f, const lg_value *fetch, int n, const char *what)
{
    char *rep = fuse_notes(f, n_f, fetch, n);
    ck_assert_msg(strstr(rep, what), "'%s' not in the report:\n%s", what, rep);
    free(rep);
}

/* sum(y * r) for a fixed random r shaped like y: a loss with a gradient
 * that differs per element. */
static lg_value weighted_sum(lg_value y, uint64_t key)
{
    lg_tensor *r = lg_test_uniform(lg_value_dtype(y), lg_value_shape(y), 7, key, -1, 1);
    lg_value w = lg_constant(g, "loss_weights", r);
    lg_tensor_free(r);
    return lg_sum(lg_mul(y, w), NULL, 0, false);
}

enum { B = 3, T = 5, F = 4, U = 3 };

/* loss and gradients of loss wrt params and x: fetches[0] = loss. */
static int loss_and_grads(lg_value loss, lg_value x, lg_value *fetch)
{
    int n_p = lg_graph_param_count(g);
    lg_value wrt[64];
    ck_assert_int_lt(n_p, 63);
    for (int i = 0; i < n_p; i++) wrt[i] = lg_graph_param(g, i);
    wrt[n_p] = x;
    fetch[0] = loss;
    ck_assert_int_eq(lg_grad(g, loss, wrt, n_p + 1, fetch + 1), LG_OK);
    return n_p + 2;
}

static lg_tensor *lengths_tensor(void)
{
    int32_t len[B] = {T, 2, 4};
    return lg_test_tensor(LG_I32, lg_shape_of(1, B), len);
}

START_TEST(test_lstm_layer_agrees)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F));
    lg_cell_opts co = lg_cell_opts_default(LG_CELL_LSTM, U);
    co.dtype = LG_F64;
    co.seed = 3;
    lg_cell *c = lg_cell_new(g, "lstm", F, co);
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true;
    lg_rnn_result r;
    ck_assert_int_eq(lg_rnn(g, NULL, c, x, o, &r), LG_OK);
    lg_value fetch[64];
    int n = loss_and_grads(lg_add(weighted_sum(r.output, 1), weighted_sum(r.states[1], 2)), x, fetch);
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_shape_of(3, B, T, F), 1, 2, -1, 1);
    lg_feed f[1] = {{x, xt}};
    check_passes_agree(f, 1, fetch, n);
    check_passes_agree(f, 1, fetch, 1); /* forward only */
    lg_tensor_free(xt), lg_cell_free(c);
}
END_TEST

/* Three stacked layers of each cell (batch-major for _i odd, time-major
 * otherwise) fuse into one stacked rnn node (merge_rnn) for training and
 * for inference, with the values of every pass switched off in turn; a
 * stack whose middle output the loss also reads merges below it only. */
START_TEST(test_stacked_agrees)
{
    lg_cell_kind kinds[] = {LG_CELL_LSTM, LG_CELL_GRU, LG_CELL_SIMPLE_RNN};
    bool time_major = _i % 2 == 0;
    lg_value x = lg_input(g, "x", LG_F64, time_major ? lg_shape_of(3, T, B, F) : lg_shape_of(3, B, T, F));
    lg_cell_opts co = lg_cell_opts_default(kinds[_i / 2], U);
    co.dtype = LG_F64;
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = o.return_state = true;
    o.time_major = time_major;
    lg_rnn_result r[3];
    lg_value ys = x;
    for (int l = 0; l < 3; l++) {
        char name[16];
        snprintf(name, sizeof name, "layer%d", l);
        co.seed = (uint64_t)l + 1;
        lg_cell *c = lg_cell_new(g, name, l ? U : F, co);
        ck_assert_int_eq(lg_rnn(g, name, c, ys, o, &r[l]), LG_OK);
        ys = r[l].output;
        lg_cell_free(c);
    }
    /* the lower layers' final states are outputs the merged node keeps */
    lg_value loss = weighted_sum(ys, 3);
    lg_value fetch[64];
    int n = loss_and_grads(loss, x, fetch);
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_value_shape(x), 1, 4, -1, 1);
    lg_feed f[1] = {{x, xt}};
    expect_note(f, 1, fetch, n, "': one stacked node");
    expect_note(f, 1, fetch, 1, "': one stacked node");
    check_passes_agree(f, 1, fetch, n);
    check_passes_agree(f, 1, fetch, 1);
    /* the middle layer's output fetched too (a backend running the stack
     * in one call leaves it unwritten) */
    fetch[n] = r[1].output;
    expect_note(f, 1, fetch, n + 1, "'layer0/loop' and 'layer1/loop': one stacked node");
    check_passes_agree(f, 1, fetch, n + 1);
    /* and read by the loss */
    lg_value loss2 = lg_add(loss, weighted_sum(r[1].output, 5));
    n = loss_and_grads(loss2, x, fetch);
    expect_note(f, 1, fetch, n, "'layer0/loop' and 'layer1/loop': one stacked node");
    check_passes_agree(f, 1, fetch, n);
    lg_tensor_free(xt);
}
END_TEST

/* Two GRU loops written with the loop API, both run backwards (ys[t] stays
 * at t), the second over the first's ys: one reversed stacked node. */
START_TEST(test_reversed_stack_agrees)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, T, B, F)), ys = x;
    lg_cell_opts co = lg_cell_opts_default(LG_CELL_GRU, U);
    co.dtype = LG_F64;
    lg_tensor *z = lg_test_tensor(LG_F64, lg_shape_of(2, B, U), NULL);
    lg_value h0 = lg_constant(g, "h0", z);
    lg_tensor_free(z);
    for (int l = 0; l < 2; l++) {
        char name[16];
        snprintf(name, sizeof name, "gru%d", l);
        co.seed = (uint64_t)l + 7;
        lg_cell *c = lg_cell_new(g, name, l ? U : F, co);
        lg_loop_opts lo = lg_loop_opts_default();
        lo.time_major = lo.reverse = true;
        lg_loop *loop = lg_loop_new(g, NULL, lo);
        lg_value x_t = lg_loop_seq(loop, ys), h = lg_loop_state(loop, h0), next, y, fin;
        lg_cell_step(c, loop, x_t, &h, lg_value_invalid(), lg_value_invalid(), &next, &y);
        lg_loop_next(loop, h, next);
        lg_loop_emit(loop, y);
        ck_assert_int_eq(lg_loop_end(loop, &fin, &ys), LG_OK);
        lg_cell_free(c);
    }
    lg_value fetch[64];
    int n = loss_and_grads(weighted_sum(ys, 8), x, fetch);
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_shape_of(3, T, B, F), 1, 9, -1, 1);
    lg_feed f[1] = {{x, xt}};
    expect_note(f, 1, fetch, n, "': one stacked node");
    check_passes_agree(f, 1, fetch, n);
    lg_tensor_free(xt);
}
END_TEST

/* Two GRUs (reset_after false, then true) stacked, masked by lengths, one
 * run backwards; and the recompute policy's loop below them. */
START_TEST(test_stacked_masked_agree)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F));
    lg_value len = lg_input(g, "len", LG_I32, lg_shape_of(1, B));
    lg_cell_opts co = lg_cell_opts_default(LG_CELL_GRU, U);
    co.dtype = LG_F64;
    co.reset_after = false;
    lg_cell *c1 = lg_cell_new(g, "gru1", F, co);
    co.reset_after = true;
    co.seed = 9;
    lg_cell *c2 = lg_cell_new(g, "gru2", U, co);
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true;
    o.lengths = len;
    lg_rnn_result r1, r2;
    ck_assert_int_eq(lg_rnn(g, "rnn1", c1, x, o, &r1), LG_OK);
    o.go_backwards = true;
    o.return_sequences = false;
    ck_assert_int_eq(lg_rnn(g, "rnn2", c2, r1.output, o, &r2), LG_OK);
    lg_value fetch[64];
    int n = loss_and_grads(weighted_sum(r2.output, 3), x, fetch);
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_shape_of(3, B, T, F), 1, 4, -1, 1), *lt = lengths_tensor();
    lg_feed f[2] = {{x, xt}, {len, lt}};
    check_passes_agree(f, 2, fetch, n);
    lg_tensor_free(xt), lg_tensor_free(lt), lg_cell_free(c1), lg_cell_free(c2);
}
END_TEST

/* A Bidirectional layer of each cell (masked by lengths for _i odd) fuses
 * into one bidirectional rnn node (merge_rnn) for training and for
 * inference, with the values of every pass switched off in turn. */
START_TEST(test_bidirectional_agrees)
{
    lg_cell_kind kinds[] = {LG_CELL_LSTM, LG_CELL_GRU, LG_CELL_SIMPLE_RNN};
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F));
    lg_value len = lg_input(g, "len", LG_I32, lg_shape_of(1, B));
    lg_cell_opts co = lg_cell_opts_default(kinds[_i / 2], U);
    co.dtype = LG_F64;
    lg_cell *fw = lg_cell_new(g, "fw", F, co);
    co.seed = 5;
    lg_cell *bw = lg_cell_new(g, "bw", F, co);
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true;
    if (_i % 2) o.lengths = len;
    lg_bidirectional_result r;
    ck_assert_int_eq(lg_bidirectional(g, NULL, fw, bw, x, LG_MERGE_CONCAT, o, &r), LG_OK);
    lg_value fetch[64];
    int n = loss_and_grads(weighted_sum(r.output, 5), x, fetch);
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_shape_of(3, B, T, F), 1, 6, -1, 1), *lt = lengths_tensor();
    lg_feed f[2] = {{x, xt}, {len, lt}};
    int n_f = _i % 2 ? 2 : 1;
    expect_note(f, n_f, fetch, n, "': one bidirectional node");
    expect_note(f, n_f, fetch, 1, "': one bidirectional node");
    check_passes_agree(f, n_f, fetch, n);
    check_passes_agree(f, n_f, fetch, 1);
    lg_tensor_free(xt), lg_tensor_free(lt), lg_cell_free(fw), lg_cell_free(bw);
}
END_TEST

/* Three Bidirectional layers (concat) of each cell, each reading the one
 * below's output (masked by lengths for _i odd, time-major for _i 0 and
 * 3), fuse into one stacked bidirectional rnn node (merge_rnn) for
 * training and for inference, with the values of every pass switched off
 * in turn: the node's joins (each layer's x, each gradient's dys) equal
 * the concatenation and its gradient it replaces. The middle layer's
 * output fetched, or read by the loss too, stops the stack below it, and
 * the report says why. */
START_TEST(test_bidirectional_stack_agrees)
{
    lg_cell_kind kinds[] = {LG_CELL_LSTM, LG_CELL_GRU, LG_CELL_SIMPLE_RNN};
    bool time_major = _i % 3 == 0;
    lg_value x = lg_input(g, "x", LG_F64, time_major ? lg_shape_of(3, T, B, F) : lg_shape_of(3, B, T, F));
    lg_value len = lg_input(g, "len", LG_I32, lg_shape_of(1, B));
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true;
    o.time_major = time_major;
    if (_i % 2) o.lengths = len;
    lg_bidirectional_result r[3];
    lg_value ys = x, loss = lg_value_invalid();
    for (int l = 0; l < 3; l++) {
        lg_cell_opts co = lg_cell_opts_default(kinds[_i / 2], U);
        co.dtype = LG_F64;
        char name[16];
        snprintf(name, sizeof name, "fw%d", l);
        co.seed = 2 * (uint64_t)l + 1;
        lg_cell *fw = lg_cell_new(g, name, l ? 2 * U : F, co);
        snprintf(name, sizeof name, "bw%d", l);
        co.seed = 2 * (uint64_t)l + 2;
        lg_cell *bw = lg_cell_new(g, name, l ? 2 * U : F, co);
        ck_assert_int_eq(lg_bidirectional(g, NULL, fw, bw, ys, LG_MERGE_CONCAT, o, &r[l]), LG_OK);
        ys = r[l].output;
        /* every layer's final h: each part's h_T comes out of the merged node */
        lg_value h = lg_add(weighted_sum(r[l].forward.states[0], 10 + (uint64_t)l),
                            weighted_sum(r[l].backward.states[0], 20 + (uint64_t)l));
        loss = l ? lg_add(loss, h) : h;
        lg_cell_free(fw), lg_cell_free(bw);
    }
    loss = lg_add(loss, weighted_sum(ys, 5));
    lg_value fetch[64];
    int n = loss_and_grads(loss, x, fetch);
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_value_shape(x), 1, 6, -1, 1), *lt = lengths_tensor();
    lg_feed f[2] = {{x, xt}, {len, lt}};
    int n_f = _i % 2 ? 2 : 1;
    expect_note(f, n_f, fetch, n, "/backward/loop': one stacked bidirectional node (3 layers)");
    expect_note(f, n_f, fetch, 1, "/backward/loop': one stacked bidirectional node (3 layers)");
    check_passes_agree(f, n_f, fetch, n);
    check_passes_agree(f, n_f, fetch, 1);
    /* the links between the layers (the concatenations, the dx sums and
     * their slices) are not computed: merging saves more kernels than the
     * 5 rnn and 5 rnn_grad nodes it folds in */
    int kernels[2];
    for (int k = 0; k < 2; k++) {
        lg_compile_opts co = lg_compile_opts_default();
        co.passes_off = k ? "merge_rnn" : NULL;
        lg_program *p = NULL;
        ck_assert_int_eq(lg_program_compile_opts(g, f, n_f, fetch, n, co, &p), LG_OK);
        kernels[k] = lg_program_kernel_count(p);
        lg_program_free(p);
    }
    ck_assert_msg(kernels[1] - kernels[0] > 10, "%d kernels merged, %d not", kernels[0], kernels[1]);
    /* the middle layer's output fetched, then read by the loss */
    fetch[n] = r[1].output;
    expect_note(f, n_f, fetch, n + 1, "/backward/loop': one stacked bidirectional node (2 layers)");
    expect_note(f, n_f, fetch, n + 1, "or their concatenation is read elsewhere or fetched");
    check_passes_agree(f, n_f, fetch, n + 1);
    n = loss_and_grads(lg_add(loss, weighted_sum(r[1].output, 7)), x, fetch);
    expect_note(f, n_f, fetch, n, "/backward/loop': one stacked bidirectional node (2 layers)");
    expect_note(f, n_f, fetch, n, "or their concatenation is read elsewhere or fetched");
    check_passes_agree(f, n_f, fetch, n);
    lg_tensor_free(xt), lg_tensor_free(lt);
}
END_TEST

/* Two Bidirectional GRU layers, the lower merged by mul (_i 0) or by
 * concat but 2 units wide (_i 1): each a bidirectional node, not a stack,
 * and the report says why; the values are those of every pass off. */
START_TEST(test_bidirectional_not_stacked)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F));
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true;
    lg_value ys = x;
    int in = F;
    for (int l = 0; l < 2; l++) {
        int units = l && _i ? 2 : U;
        lg_cell_opts co = lg_cell_opts_default(LG_CELL_GRU, units);
        co.dtype = LG_F64;
        co.seed = (uint64_t)l + 3;
        lg_cell *fw = lg_cell_new(g, l ? "fw1" : "fw0", in, co), *bw = lg_cell_new(g, l ? "bw1" : "bw0", in, co);
        lg_merge_mode m = l == 0 && _i == 0 ? LG_MERGE_MUL : LG_MERGE_CONCAT;
        lg_bidirectional_result r;
        ck_assert_int_eq(lg_bidirectional(g, NULL, fw, bw, ys, m, o, &r), LG_OK);
        ys = r.output;
        in = m == LG_MERGE_CONCAT ? 2 * units : units;
        lg_cell_free(fw), lg_cell_free(bw);
    }
    lg_value fetch[64];
    int n = loss_and_grads(weighted_sum(ys, 9), x, fetch);
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_value_shape(x), 1, 6, -1, 1);
    lg_feed f[1] = {{x, xt}};
    expect_note(f, 1, fetch, n, _i ? "'bidirectional_fw1/forward/loop' has 2 units, 'bidirectional_fw0/forward/loop' 3"
                                   : "'bidirectional_fw1/forward/loop' reads mul of the ys below");
    expect_note(f, 1, fetch, n, "'bidirectional_fw1/forward/loop' and 'bidirectional_fw1/backward/loop': not stacked on "
                                "'bidirectional_fw0/forward/loop' and 'bidirectional_fw0/backward/loop'");
    expect_note(f, 1, fetch, n, "'bidirectional_fw1/forward/loop' and 'bidirectional_fw1/backward/loop': one "
                                "bidirectional node");
    expect_note(f, 1, fetch, n, "'bidirectional_fw0/forward/loop' and 'bidirectional_fw0/backward/loop': one "
                                "bidirectional node");
    check_passes_agree(f, 1, fetch, n);
    lg_tensor_free(xt);
}
END_TEST

/* x [B, T, F] through the peephole LSTM of examples/cells in a loop made
 * with name and lo; *hs gets the stacked h, *c_last (unless NULL) the final
 * c. Returns x. */
static lg_value peephole_loop(const char *name, lg_loop_opts lo, lg_value *hs, lg_value *c_last)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F));
    lg_tensor *z = lg_test_tensor(LG_F64, lg_shape_of(2, B, U), NULL);
    lg_value h0 = lg_constant(g, "h0", z), c0 = lg_constant(g, "c0", z);
    lg_tensor_free(z);
    peephole cell = peephole_new(g, "peephole", F, U, LG_F64, 11);
    lg_loop *l = lg_loop_new(g, name, lo);
    lg_value x_t = lg_loop_seq(l, x), h = lg_loop_state(l, h0), c = lg_loop_state(l, c0), hn, cn, st[2];
    peephole_step(l, &cell, x_t, h, c, &hn, &cn);
    lg_loop_next(l, h, hn);
    lg_loop_next(l, c, cn);
    lg_loop_emit(l, hn);
    ck_assert_int_eq(lg_loop_end(l, st, hs), LG_OK);
    if (c_last) *c_last = st[1];
    return x;
}

/* Variational dropout: a mask on x_t and on h_{t-1}; both masks are
 * invariants whose gradients accumulate. fuse_rnn reads them as they are:
 * the loop runs fused, x times its mask before the node, the recurrent
 * mask as the node's hmask. */
START_TEST(test_dropout_agrees)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F));
    lg_cell_opts co = lg_cell_opts_default(_i ? LG_CELL_GRU : LG_CELL_LSTM, U);
    co.dtype = LG_F64;
    lg_cell *c = lg_cell_new(g, "cell", F, co);
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true;
    o.training = true;
    o.dropout = 0.25;
    o.recurrent_dropout = 0.5;
    lg_rnn_result r;
    ck_assert_int_eq(lg_rnn(g, NULL, c, x, o, &r), LG_OK);
    lg_value fetch[64];
    int n = loss_and_grads(weighted_sum(r.output, 13), x, fetch);
    lg_value wrt[2] = {r.dropout_mask, r.recurrent_dropout_mask};
    ck_assert_int_eq(lg_grad(g, fetch[0], wrt, 2, fetch + n), LG_OK);
    n += 2;
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_shape_of(3, B, T, F), 1, 14, -1, 1);
    lg_tensor *m1 = lg_test_tensor(LG_F64, lg_shape_of(2, B, F), NULL), *m2 = lg_test_tensor(LG_F64, lg_shape_of(2, B, U), NULL);
    ck_assert_int_eq(lg_dropout_mask_fill(m1, 0.25, 1, 1), LG_OK);
    ck_assert_int_eq(lg_dropout_mask_fill(m2, 0.5, 1, 2), LG_OK);
    lg_feed f[3] = {{x, xt}, {r.dropout_mask, m1}, {r.recurrent_dropout_mask, m2}};
    check_passes_agree(f, 3, fetch, n);
    expect_note(f, 3, fetch, n, _i ? "fused as gru_reset_after (3 units, bias, dropout, recurrent dropout)"
                                   : "fused as lstm (3 units, bias, dropout, recurrent dropout)");
    lg_tensor_free(xt), lg_tensor_free(m1), lg_tensor_free(m2), lg_cell_free(c);
}
END_TEST

/* A layer under a mask with holes (Keras's Masking or mask_zero) that
 * returns its sequence, masked steps repeating the last valid output
 * (Keras 3's default): fused, as the loop computes it. _i: LSTM, GRU. */
START_TEST(test_mask_repeat_agrees)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F));
    lg_value mask = lg_input(g, "mask", LG_F64, lg_shape_of(2, B, T));
    lg_cell_opts co = lg_cell_opts_default(_i ? LG_CELL_GRU : LG_CELL_LSTM, U);
    co.dtype = LG_F64;
    lg_cell *c = lg_cell_new(g, "cell", F, co);
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true;
    o.mask = mask;
    lg_rnn_result r;
    ck_assert_int_eq(lg_rnn(g, NULL, c, x, o, &r), LG_OK);
    lg_value fetch[64];
    int n = loss_and_grads(weighted_sum(r.output, 13), x, fetch);
    double holes[B * T] = {0, 1, 0, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 1, 0};
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_shape_of(3, B, T, F), 1, 14, -1, 1);
    lg_tensor *mt = lg_test_tensor(LG_F64, lg_shape_of(2, B, T), holes);
    lg_feed f[2] = {{x, xt}, {mask, mt}};
    check_passes_agree(f, 2, fetch, n);
    expect_note(f, 2, fetch, n, _i ? "fused as gru_reset_after (3 units, bias, masked)" : "fused as lstm (3 units, bias, masked)");
    lg_tensor_free(xt), lg_tensor_free(mt), lg_cell_free(c);
}
END_TEST

/* Two gradients of one fused loop (two losses, each differentiated on its
 * own): two rnn_grad nodes read one workspace (LG_RNN_SHARED_WS), and both
 * give what the loop gives. */
START_TEST(test_two_gradients_agree)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F));
    lg_cell_opts co = lg_cell_opts_default(LG_CELL_LSTM, U);
    co.dtype = LG_F64;
    lg_cell *c = lg_cell_new(g, "cell", F, co);
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true;
    lg_rnn_result r;
    ck_assert_int_eq(lg_rnn(g, NULL, c, x, o, &r), LG_OK);
    lg_value fetch[128];
    int n = loss_and_grads(weighted_sum(r.output, 13), x, fetch);
    n += loss_and_grads(weighted_sum(r.output, 17), x, fetch + n);
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_shape_of(3, B, T, F), 1, 14, -1, 1);
    lg_feed f[1] = {{x, xt}};
    check_passes_agree(f, 1, fetch, n);
    expect_note(f, 1, fetch, n, "fused as lstm (3 units, bias)");
    lg_tensor_free(xt), lg_cell_free(c);
}
END_TEST

/* A user-written cell (peephole LSTM) under both memory policies. */
START_TEST(test_custom_cell_agrees)
{
    lg_loop_opts lo = lg_loop_opts_default();
    lo.memory = _i ? LG_LOOP_RECOMPUTE : LG_LOOP_SAVE_RESIDUALS;
    lg_value hs, c_last, x = peephole_loop(NULL, lo, &hs, &c_last);
    lg_value fetch[64];
    int n = loss_and_grads(lg_add(weighted_sum(hs, 7), weighted_sum(c_last, 8)), x, fetch);
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_shape_of(3, B, T, F), 1, 8, -1, 1);
    lg_feed f[1] = {{x, xt}};
    check_passes_agree(f, 1, fetch, n);
    lg_tensor_free(xt);
}
END_TEST

/* A loop whose body runs another loop over a second time axis: each outer
 * step runs an LSTM over the inner sequence of its x_t. */
START_TEST(test_nested_loops_agree)
{
    enum { T2 = 3 };
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(4, T, T2, B, F)); /* [T, T2, B, F] */
    lg_tensor *z = lg_test_tensor(LG_F64, lg_shape_of(2, B, U), NULL);
    lg_value h0 = lg_constant(g, "h0", z);
    lg_tensor_free(z);
    lg_cell_opts co = lg_cell_opts_default(LG_CELL_SIMPLE_RNN, U);
    co.dtype = LG_F64;
    lg_cell *cell = lg_cell_new(g, "inner", F, co);
    lg_loop_opts lo = lg_loop_opts_default();
    lo.time_major = true;
    lg_loop *outer = lg_loop_new(g, "outer", lo);
    lg_value x_t = lg_loop_seq(outer, x), h = lg_loop_state(outer, h0);
    lg_graph *body = lg_loop_body(outer);
    lg_loop *inner = lg_loop_new(body, "inner", lo);
    lg_value xi = lg_loop_seq(inner, x_t), hi = lg_loop_state(inner, h), next;
    /* the cell's parameters live in g; the inner loop captures the outer
     * body's invariants */
    lg_value k = lg_loop_invariant(outer, lg_cell_kernel(cell)), rk = lg_loop_invariant(outer, lg_cell_recurrent_kernel(cell));
    lg_value ki = lg_loop_invariant(inner, k), rki = lg_loop_invariant(inner, rk);
    next = lg_tanh(lg_add(lg_matmul(xi, ki, false, false), lg_matmul(hi, rki, false, false)));
    lg_loop_next(inner, hi, next);
    lg_loop_emit(inner, next);
    lg_value hin, ys;
    ck_assert_int_eq(lg_loop_end(inner, &hin, &ys), LG_OK);
    lg_loop_next(outer, h, hin);
    lg_loop_emit(outer, lg_sum(ys, (int[]){0}, 1, false));
    lg_value hout, yout;
    ck_assert_int_eq(lg_loop_end(outer, &hout, &yout), LG_OK);
    lg_value fetch[64];
    int n = loss_and_grads(lg_add(weighted_sum(yout, 9), weighted_sum(hout, 10)), x, fetch);
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_shape_of(4, T, T2, B, F), 1, 10, -1, 1);
    lg_feed f[1] = {{x, xt}};
    /* the outer gradient step reads the inner loop's saved states */
    expect_note(f, 1, fetch, n, "fuse_rnn: loop 'inner': not fused: its saved states are read outside its gradient loop");
    check_passes_agree(f, 1, fetch, n);
    lg_tensor_free(xt), lg_cell_free(cell);
}
END_TEST

/* The NestedCell of examples/cells: states and inputs of different ranks. */
START_TEST(test_nested_cell_agrees)
{
    lg_value x1 = lg_input(g, "x1", LG_F64, lg_shape_of(3, B, T, 2)), x2 = lg_input(g, "x2", LG_F64, lg_shape_of(4, B, T, 2, 3));
    lg_tensor *z1 = lg_test_tensor(LG_F64, lg_shape_of(2, B, 3), NULL), *z2 = lg_test_tensor(LG_F64, lg_shape_of(3, B, 2, 2), NULL);
    lg_value s1 = lg_constant(g, "s1", z1), s2 = lg_constant(g, "s2", z2);
    lg_tensor_free(z1), lg_tensor_free(z2);
    nested_cell cell = nested_cell_new(g, "nested", 2, 2, 3, 3, 2, 2, LG_F64, 4);
    lg_value outs[2], states[2];
    ck_assert_int_eq(nested_cell_sequence(g, &cell, x1, x2, s1, s2, outs, states), LG_OK);
    lg_value fetch[64];
    int n = loss_and_grads(lg_add(weighted_sum(outs[1], 11), weighted_sum(states[0], 12)), x1, fetch);
    lg_tensor *t1 = lg_test_uniform(LG_F64, lg_shape_of(3, B, T, 2), 1, 11, -1, 1);
    lg_tensor *t2 = lg_test_uniform(LG_F64, lg_shape_of(4, B, T, 2, 3), 1, 12, -1, 1);
    lg_feed f[2] = {{x1, t1}, {x2, t2}};
    check_passes_agree(f, 2, fetch, n);
    lg_tensor_free(t1), lg_tensor_free(t2);
}
END_TEST

/* The report of loop i of a program compiled with the given passes off. */
static lg_loop_report loop_report(const lg_feed *f, int n_f, const lg_value *fetch, int n, const char *off, int i)
{
    lg_compile_opts o = lg_compile_opts_default();
    o.passes_off = off;
    lg_program *p = NULL;
    ck_assert_int_eq(lg_program_compile_opts(g, f, n_f, fetch, n, o, &p), LG_OK);
    lg_loop_report r;
    ck_assert_int_eq(lg_program_loop_report(p, i, &r), LG_OK);
    lg_program_free(p);
    return r;
}

/* hoist on a hand-written body: an embedding lookup and the input
 * projection of ids_t run before the loop as one gather and one GEMM; the
 * embedding table's and W's gradients are checked too. */
START_TEST(test_hoist_embedding)
{
    enum { V = 7, E = 4 };
    lg_value ids = lg_input(g, "ids", LG_I32, lg_shape_of(2, T, B)); /* time-major */
    lg_value table = lg_param(g, "table", LG_F64, lg_shape_of(2, V, E));
    lg_value w = lg_param(g, "w", LG_F64, lg_shape_of(2, E, U)), u = lg_param(g, "u", LG_F64, lg_shape_of(2, U, U));
    lg_init_uniform(lg_param_tensor(table), -1, 1, 3, 1);
    lg_init_uniform(lg_param_tensor(w), -1, 1, 3, 2);
    lg_init_uniform(lg_param_tensor(u), -0.5, 0.5, 3, 3);
    lg_tensor *z = lg_test_tensor(LG_F64, lg_shape_of(2, B, U), NULL);
    lg_value h0 = lg_constant(g, "h0", z);
    lg_tensor_free(z);
    lg_loop_opts lo = lg_loop_opts_default();
    lo.time_major = true;
    lg_loop *l = lg_loop_new(g, NULL, lo);
    lg_value id_t = lg_loop_seq(l, ids), h = lg_loop_state(l, h0);
    lg_value tb = lg_loop_invariant(l, table), wb = lg_loop_invariant(l, w), ub = lg_loop_invariant(l, u);
    lg_value x_t = lg_gather(tb, id_t); /* [B, E] */
    lg_value next = lg_tanh(lg_add(lg_matmul(x_t, wb, false, false), lg_matmul(h, ub, false, false)));
    lg_loop_next(l, h, next);
    lg_loop_emit(l, next);
    lg_value hs;
    ck_assert_int_eq(lg_loop_end(l, NULL, &hs), LG_OK);
    lg_value loss = weighted_sum(hs, 15), wrt[3] = {table, w, u}, fetch[4] = {loss};
    ck_assert_int_eq(lg_grad(g, loss, wrt, 3, fetch + 1), LG_OK);
    int32_t idv[T * B];
    for (int i = 0; i < T * B; i++) idv[i] = (i * 5 + 2) % V;
    lg_tensor *it = lg_test_tensor(LG_I32, lg_shape_of(2, T, B), idv);
    lg_feed f[1] = {{ids, it}};
    check_passes_agree(f, 1, fetch, 4);
    lg_loop_report on = loop_report(f, 1, fetch, 4, NULL, 0), off = loop_report(f, 1, fetch, 4, "hoist", 0);
    /* table[ids_t] w, and table[ids_t] itself, which the gradient loop reads
     * (a residual the loop no longer computes) */
    ck_assert_int_eq(on.n_hoisted, 2);
    ck_assert_uint_eq(on.hoisted_bytes, (size_t)T * B * (U + E) * sizeof(double));
    ck_assert_int_eq(on.n_residuals + 1, off.n_residuals);
    ck_assert_int_eq(off.body_kernels - on.body_kernels, 2); /* the gather and a matmul */
    lg_loop_report grad = loop_report(f, 1, fetch, 4, NULL, 1);
    ck_assert(grad.gradient);
    ck_assert_int_eq(grad.n_sunk, 2); /* w's and u's gradients; the table's is a scatter */
    lg_tensor_free(it);
}
END_TEST

/* A cell nobody matches (the peephole LSTM) still gets its input
 * projection hoisted and its weight gradients summed after the loop; under
 * the recompute policy nothing is stacked. */
START_TEST(test_hoist_custom_cell)
{
    lg_loop_opts lo = lg_loop_opts_default();
    bool recompute = _i;
    lo.memory = recompute ? LG_LOOP_RECOMPUTE : LG_LOOP_SAVE_RESIDUALS;
    lg_value hs, x = peephole_loop(NULL, lo, &hs, NULL);
    lg_value fetch[64];
    int n = loss_and_grads(weighted_sum(hs, 16), x, fetch);
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_shape_of(3, B, T, F), 1, 16, -1, 1);
    lg_feed f[1] = {{x, xt}};
    lg_loop_report fwd = loop_report(f, 1, fetch, n, NULL, 0), grad = loop_report(f, 1, fetch, n, NULL, 1);
    /* the peephole weights' gradients, kept per example; so without
     * fuse_elementwise too, their [B, U] being small; under recompute also
     * the bias's, which no GEMM sums after the loop there */
    int wide = recompute ? 4 : 3;
    ck_assert_int_eq(grad.n_wide, wide);
    ck_assert_int_eq(loop_report(f, 1, fetch, n, "fuse_elementwise", 1).n_wide, wide);
    ck_assert_int_eq(loop_report(f, 1, fetch, n, "hoist", 1).n_wide, 0);
    if (recompute) {
        ck_assert_uint_eq(fwd.hoisted_bytes + grad.hoisted_bytes, 0);
        ck_assert_int_eq(grad.n_sunk, 0);
    } else {
        ck_assert_int_ge(fwd.n_hoisted, 1);
        ck_assert_uint_eq(fwd.hoisted_bytes, (size_t)T * B * 4 * U * sizeof(double)); /* x_t W + b */
        ck_assert_int_ge(grad.n_sunk, 3);                                             /* W, U and b */
        /* dx_t = dz_t W^T, after the gradient loop as one GEMM */
        lg_program *p = NULL;
        ck_assert_int_eq(lg_program_compile(g, f, 1, fetch, n, &p), LG_OK);
        char *rep = lg_program_report(p);
        ck_assert_msg(rep && strstr(rep, "accumulators summed after the loop; 1 outputs batched after the loop"), "%s", rep ? rep : "");
        free(rep);
        lg_program_free(p);
    }
    lg_tensor_free(xt);
}
END_TEST

/* h' = tanh(x_t W + h p) over x [T, B, I] (time-major), h0 zeros, W [I, N]
 * and p [N] (broadcast over the batch) new parameters: the stacked h. */
static lg_value broadcast_param_loop(lg_value x, int n, lg_loop_opts lo, lg_value *w, lg_value *p)
{
    lg_shape xs = lg_value_shape(x);
    *w = lg_param(g, "w", LG_F64, lg_shape_of(2, (int)xs.dims[2], n));
    *p = lg_param(g, "p", LG_F64, lg_shape_of(1, n));
    lg_init_uniform(lg_param_tensor(*w), -0.5, 0.5, 5, 1);
    lg_init_uniform(lg_param_tensor(*p), -0.5, 0.5, 5, 2);
    lg_tensor *z = lg_test_tensor(LG_F64, lg_shape_of(2, (int)xs.dims[1], n), NULL);
    lg_value h0 = lg_constant(g, "h0", z);
    lg_tensor_free(z);
    lo.time_major = true;
    lg_loop *l = lg_loop_new(g, "wide", lo);
    lg_value x_t = lg_loop_seq(l, x), h = lg_loop_state(l, h0);
    lg_value next = lg_tanh(lg_add(lg_matmul(x_t, lg_loop_invariant(l, *w), false, false), lg_mul(h, lg_loop_invariant(l, *p))));
    lg_loop_next(l, h, next);
    lg_loop_emit(l, next);
    lg_value hs;
    ck_assert_int_eq(lg_loop_end(l, NULL, &hs), LG_OK);
    return hs;
}

/* A parameter broadcast over the batch (h' = tanh(x_t W + h p), p [U]):
 * its gradient accumulator is kept per example, [B, U], when the add joins
 * the fused kernel that makes its term, or without fusion when [B, U] is
 * at most hoist.c's CALL_BYTES; here [64, 64] f64 is 32 KiB. The gradients
 * are the same with hoist off (to 1e-12: the sum runs over the steps, then
 * the batch). */
START_TEST(test_hoist_wide_accumulator)
{
    enum { WB = 64, WU = 64, WT = 5 };
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, WT, WB, WU)), w, pw; /* time-major */
    lg_value hs = broadcast_param_loop(x, WU, lg_loop_opts_default(), &w, &pw);
    lg_value wrt[2] = {w, pw}, fetch[3] = {weighted_sum(hs, 21)};
    ck_assert_int_eq(lg_grad(g, fetch[0], wrt, 2, fetch + 1), LG_OK);
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_shape_of(3, WT, WB, WU), 1, 21, -1, 1);
    lg_feed f[1] = {{x, xt}};
    check_passes_agree(f, 1, fetch, 3);
    ck_assert_int_eq(loop_report(f, 1, fetch, 3, NULL, 1).n_wide, 1);
    ck_assert_int_eq(loop_report(f, 1, fetch, 3, "fuse_elementwise", 1).n_wide, 0);
    lg_tensor_free(xt);
}
END_TEST

/* A wide accumulator beside chunked sinks (_i 0, 1: reversed), under
 * lengths (_i 2) and under recompute (_i 3): h' = tanh(x_t W + h p), p
 * [N] broadcast; x_t W is hoisted per chunk of steps and W's gradient
 * summed per chunk, p's kept per example. Equal with every pass set off. */
START_TEST(test_hoist_wide_with_chunks)
{
    enum { CT = 16, CB = 2, CN = 8 };
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, CT, CB, 2 * CB)), w, p;
    lg_value len = lg_input(g, "len", LG_I32, lg_shape_of(1, CB));
    lg_loop_opts lo = lg_loop_opts_default();
    lo.reverse = _i == 1;
    if (_i == 2) lo.lengths = len;
    if (_i == 3) lo.memory = LG_LOOP_RECOMPUTE;
    lg_value hs = broadcast_param_loop(x, CN, lo, &w, &p);
    lg_value loss = weighted_sum(hs, 18), fetch[4] = {loss}, wrt[3] = {w, x, p};
    ck_assert_int_eq(lg_grad(g, loss, wrt, 3, fetch + 1), LG_OK);
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_shape_of(3, CT, CB, 2 * CB), 1, 18, -1, 1);
    lg_tensor *lt = lg_test_tensor(LG_I32, lg_shape_of(1, CB), (int32_t[]){16, 9});
    lg_feed f[2] = {{x, xt}, {len, lt}};
    int n_f = _i == 2 ? 2 : 1;
    check_passes_agree(f, n_f, fetch, 4);
    ck_assert_int_eq(loop_report(f, n_f, fetch, 4, NULL, 1).n_wide, 1);
    lg_tensor_free(xt), lg_tensor_free(lt);
}
END_TEST

/* A broadcast parameter whose gradient term has an open dim that is not
 * the batch (attention-like, over memory [B, S, H] with B and S open): the
 * wide accumulator takes g_t's step shape [B, S, H] from the loop's inputs,
 * not the batch for every open dim ([B, B, H] doubled v's gradient at S = 1
 * and failed to compile at S = 5). */
START_TEST(test_hoist_wide_open_dim)
{
    enum { OT = 3, OB = 2, OH = 4 };
    int S = _i ? 5 : 1;
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, OT, -1, OH));
    lg_value mem = lg_input(g, "mem", LG_F64, lg_shape_of(3, -1, -1, OH));
    lg_value h0 = lg_input(g, "h0", LG_F64, lg_shape_of(2, -1, OH));
    lg_value v = lg_param(g, "v", LG_F64, lg_shape_of(1, OH));
    lg_init_uniform(lg_param_tensor(v), -0.5, 0.5, 1, 1);
    lg_loop_opts lo = lg_loop_opts_default();
    lo.time_major = true;
    lg_loop *l = lg_loop_new(g, "att", lo);
    lg_value x_t = lg_loop_seq(l, x), h = lg_loop_state(l, h0);
    lg_value z = lg_tanh(lg_mul(lg_mul(lg_loop_invariant(l, mem), lg_loop_invariant(l, v)), lg_expand_dims(h, 1)));
    lg_value next = lg_tanh(lg_add(x_t, lg_sum(z, (int[]){1}, 1, false)));
    lg_loop_next(l, h, next);
    lg_loop_emit(l, next);
    lg_value hs;
    ck_assert_int_eq(lg_loop_end(l, NULL, &hs), LG_OK);
    lg_value fetch[2] = {lg_sum(lg_mul(hs, hs), NULL, 0, false)};
    ck_assert_int_eq(lg_grad(g, fetch[0], &v, 1, fetch + 1), LG_OK);
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_shape_of(3, OT, OB, OH), 1, 1, -1, 1);
    lg_tensor *mt = lg_test_uniform(LG_F64, lg_shape_of(3, OB, S, OH), 1, 2, -1, 1);
    lg_tensor *ht = lg_test_uniform(LG_F64, lg_shape_of(2, OB, OH), 1, 3, -1, 1);
    lg_feed f[3] = {{x, xt}, {mem, mt}, {h0, ht}};
    check_passes_agree(f, 3, fetch, 2);
    /* v's, and that of mem v (hoisted before the loop: an invariant [B, S, H]) */
    ck_assert_int_eq(loop_report(f, 3, fetch, 2, NULL, 1).n_wide, 2);
    lg_tensor_free(xt), lg_tensor_free(mt), lg_tensor_free(ht);
}
END_TEST

/* hoist.c's cost rule on a hand-written RNN (sigmoid: not fused) over a
 * batch of 256: with 4 input features, moving x_t W out (W [4, 32]) and
 * summing the weight gradients after the loop would stack more than they
 * save, so the loops stay as they are; with 2B = 512 features both pay. */
START_TEST(test_hoist_cost_rule)
{
    enum { RB = 256, RT = 3, RU = 32 };
    int rf = _i ? 2 * RB : 4;
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, RT, RB, rf)); /* time-major */
    lg_value w = lg_param(g, "w", LG_F64, lg_shape_of(2, rf, RU)), u = lg_param(g, "u", LG_F64, lg_shape_of(2, RU, RU));
    lg_init_uniform(lg_param_tensor(w), -0.1, 0.1, 6, 1);
    lg_init_uniform(lg_param_tensor(u), -0.5, 0.5, 6, 2);
    lg_tensor *z = lg_test_tensor(LG_F64, lg_shape_of(2, RB, RU), NULL);
    lg_value h0 = lg_constant(g, "h0", z);
    lg_tensor_free(z);
    lg_loop_opts lo = lg_loop_opts_default();
    lo.time_major = true;
    lg_loop *l = lg_loop_new(g, NULL, lo);
    lg_value x_t = lg_loop_seq(l, x), h = lg_loop_state(l, h0);
    lg_value next = lg_sigmoid(lg_add(lg_matmul(x_t, lg_loop_invariant(l, w), false, false),
                                      lg_matmul(h, lg_loop_invariant(l, u), false, false)));
    lg_loop_next(l, h, next);
    lg_loop_emit(l, next);
    lg_value hs;
    ck_assert_int_eq(lg_loop_end(l, NULL, &hs), LG_OK);
    lg_value loss = weighted_sum(hs, 19), wrt[2] = {w, u}, fetch[3] = {loss};
    ck_assert_int_eq(lg_grad(g, loss, wrt, 2, fetch + 1), LG_OK);
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_shape_of(3, RT, RB, rf), 1, 19, -1, 1);
    lg_feed f[1] = {{x, xt}};
    lg_loop_report fwd = loop_report(f, 1, fetch, 3, NULL, 0), grad = loop_report(f, 1, fetch, 3, NULL, 1);
    ck_assert(grad.gradient);
    ck_assert_int_eq(fwd.n_hoisted, _i ? 1 : 0);
    ck_assert_int_eq(grad.n_sunk, _i ? 2 : 0);
    check_passes_agree(f, 1, fetch, 3);
    lg_tensor_free(xt);
}
END_TEST

/* h_t = tanh(x_t W + h_{t-1}) over x [ct, cb, 2cb] (time-major), W
 * [2cb, cn], h0 zero: x_t W is the value hoist moves out (W has 2B rows, so
 * it pays by hoist.c's cost rule) and the gradient loop never reads; *x and
 * *w are the input and W, the result every h_t [ct, cb, cn]. */
static lg_value chunked_loop(int ct, int cb, int cn, bool reverse, lg_value *x, lg_value *w)
{
    *x = lg_input(g, "x", LG_F64, lg_shape_of(3, ct, cb, 2 * cb));
    *w = lg_param(g, "w", LG_F64, lg_shape_of(2, 2 * cb, cn));
    lg_init_uniform(lg_param_tensor(*w), -1, 1, 5, 1);
    lg_tensor *z0 = lg_test_tensor(LG_F64, lg_shape_of(2, cb, cn), NULL);
    lg_value h0 = lg_constant(g, "h0", z0);
    lg_tensor_free(z0);
    lg_loop_opts lo = lg_loop_opts_default();
    lo.time_major = true;
    lo.reverse = reverse;
    lg_loop *l = lg_loop_new(g, NULL, lo);
    lg_value x_t = lg_loop_seq(l, *x), h = lg_loop_state(l, h0), wb = lg_loop_invariant(l, *w);
    lg_value next = lg_tanh(lg_add(lg_matmul(x_t, wb, false, false), h)); /* [B, N] */
    lg_loop_next(l, h, next);
    lg_loop_emit(l, next);
    lg_value hs;
    ck_assert_int_eq(lg_loop_end(l, NULL, &hs), LG_OK);
    return hs;
}

/* The forward loop's hoisted bytes are one chunk of `chunk` steps of x_t W
 * [cb, cn], and the report says that the hoisted value and the gradient
 * loop's accumulator (x_t^T dz_t) go per chunk. */
static void expect_chunks(const lg_feed *f, const lg_value *fetch, int chunk, int cb, int cn)
{
    lg_loop_report r = loop_report(f, 1, fetch, 3, NULL, 0);
    ck_assert_int_eq(r.n_hoisted, 1);
    ck_assert_uint_eq(r.hoisted_bytes, (size_t)chunk * cb * cn * sizeof(double));
    lg_program *p = NULL;
    ck_assert_int_eq(lg_program_compile(g, f, 1, fetch, 3, &p), LG_OK);
    char *rep = lg_program_report(p), want[64];
    snprintf(want, sizeof want, "1 of them per chunk of %d steps", chunk);
    ck_assert_msg(rep && strstr(rep, want) && strstr(rep, "1 accumulators summed per chunk of steps"), "%s",
                  rep ? rep : "");
    free(rep);
    lg_program_free(p);
}

/* Hoisted values computed per chunk of steps, forwards and backwards, equal
 * the loop's own with every pass set: 16 steps run in chunks of 4 (hoist.c:
 * at least MIN_CHUNK chunks), and W's gradient is summed per chunk the same
 * way. Small, so that the values are checked quickly; the byte budget that
 * bounds a chunk is test_hoist_chunk_budget's. */
START_TEST(test_hoist_chunks)
{
    enum { CT = 16, CB = 2, CN = 8 };
    lg_value x, w, hs = chunked_loop(CT, CB, CN, _i, &x, &w);
    lg_value loss = weighted_sum(hs, 18), fetch[3] = {loss}, wrt[2] = {w, x};
    ck_assert_int_eq(lg_grad(g, loss, wrt, 2, fetch + 1), LG_OK);
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_shape_of(3, CT, CB, 2 * CB), 1, 18, -1, 1);
    lg_feed f[1] = {{x, xt}};
    check_passes_agree(f, 1, fetch, 3);
    expect_chunks(f, fetch, 4, CB, CN);
    lg_tensor_free(xt);
}
END_TEST

/* A hoisted value too large to stack for all steps is computed per chunk
 * within the 4 MiB budget: x_t W is [16, 8192] f64 (1 MiB) per step, so 32
 * steps go in chunks of 4, not of the 8 that the chunk count alone would
 * allow, forwards and in the gradient loop (dz_t is 1 MiB a step too).
 * Compiled only: test_hoist_chunks runs chunked loops. */
START_TEST(test_hoist_chunk_budget)
{
    enum { CT = 32, CB = 16, CN = 8192 };
    lg_value x, w, hs = chunked_loop(CT, CB, CN, false, &x, &w);
    lg_value loss = lg_sum(hs, NULL, 0, false), fetch[3] = {loss}, wrt[2] = {w, x};
    ck_assert_int_eq(lg_grad(g, loss, wrt, 2, fetch + 1), LG_OK);
    lg_tensor *xt = lg_test_tensor(LG_F64, lg_shape_of(3, CT, CB, 2 * CB), NULL);
    lg_feed f[1] = {{x, xt}};
    expect_chunks(f, fetch, 4, CB, CN);
    lg_tensor_free(xt);
}
END_TEST

/* LSTM(64) over 28 rows of 28, batch 64 (the Fashion-MNIST model): its
 * forward-only program saves no residuals and no states; the training
 * program keeps them. */
START_TEST(test_forward_only_saves_nothing)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(3, -1, 28, 28));
    lg_cell *c = lg_cell_new(g, "lstm", 28, lg_cell_opts_default(LG_CELL_LSTM, 64));
    lg_rnn_result r;
    ck_assert_int_eq(lg_rnn(g, NULL, c, x, lg_rnn_opts_default(), &r), LG_OK);
    lg_value loss = lg_sum(r.output, NULL, 0, false), dk;
    lg_value kernel = lg_cell_kernel(c);
    ck_assert_int_eq(lg_grad(g, loss, &kernel, 1, &dk), LG_OK);
    lg_tensor *xt = lg_test_uniform(LG_F32, lg_shape_of(3, 64, 28, 28), 1, 13, 0, 1);
    lg_feed f[1] = {{x, xt}};
    lg_program *fwd = NULL, *fwd_all = NULL, *train = NULL;
    /* the loop's own residuals: fuse_rnn off (the fused forward is below) */
    lg_compile_opts o = lg_compile_opts_default(), unfused = lg_compile_opts_default();
    o.passes_off = "hoist,dce,fuse_rnn"; /* hoist and dce both leave out the residuals nothing reads */
    unfused.passes_off = "fuse_rnn";
    ck_assert_int_eq(lg_program_compile_opts(g, f, 1, &r.output, 1, unfused, &fwd), LG_OK);
    ck_assert_int_eq(lg_program_compile_opts(g, f, 1, &r.output, 1, o, &fwd_all), LG_OK);
    ck_assert_int_eq(lg_program_compile_opts(g, f, 1, &dk, 1, unfused, &train), LG_OK);
    lg_loop_report rf, ra, rt;
    ck_assert_int_eq(lg_program_loop_report(fwd, 0, &rf), LG_OK);
    ck_assert_int_eq(lg_program_loop_report(fwd_all, 0, &ra), LG_OK);
    ck_assert_int_eq(lg_program_loop_report(train, 0, &rt), LG_OK);
    ck_assert_uint_eq(rf.residual_bytes, 0);
    ck_assert_uint_eq(rf.state_bytes, 0);
    ck_assert_int_eq(rf.n_residuals, 0);
    ck_assert_uint_gt(ra.residual_bytes, 4 * ra.state_bytes); /* gates and more, beyond h and c */
    ck_assert_int_gt(rt.n_residuals, 0);
    ck_assert_uint_gt(rt.residual_bytes, rt.state_bytes);
    ck_assert_uint_eq(rt.state_bytes, ra.state_bytes);
    ck_assert_uint_lt(lg_program_peak_bytes(fwd), lg_program_peak_bytes(fwd_all));
    char *rep = lg_program_report(fwd);
    ck_assert_msg(rep && strstr(rep, "dce: loop 'lstm/loop'"), "%s", rep ? rep : "(null)");
    free(rep);
    /* the same output either way */
    lg_tensor *a = NULL, *b = NULL;
    ck_assert_int_eq(lg_program_run(fwd, f, 1, &a), LG_OK);
    ck_assert_int_eq(lg_program_run(fwd_all, f, 1, &b), LG_OK);
    ck_assert_mem_eq(lg_tensor_data(a), lg_tensor_data(b), lg_tensor_bytes(a));
    lg_tensor_free(b);
    b = NULL;
    /* fused: the forward op alone, no loop left, the same values (f32) */
    lg_program *fused = NULL;
    ck_assert_int_eq(lg_program_compile(g, f, 1, &r.output, 1, &fused), LG_OK);
    ck_assert_int_eq(lg_program_loop_count(fused), 0);
    rep = lg_program_report(fused);
    ck_assert_msg(rep && strstr(rep, "fuse_rnn: loop 'lstm/loop': fused as lstm"), "%s", rep ? rep : "(null)");
    free(rep);
    ck_assert_msg(lg_program_run(fused, f, 1, &b) == LG_OK, "%s", lg_last_error());
    for (int64_t e = 0; e < lg_tensor_numel(a); e++)
        ck_assert_double_eq_tol(lg_tensor_get(a, e), lg_tensor_get(b, e), 1e-5);
    lg_tensor_free(a), lg_tensor_free(b);
    lg_program_free(fused);
    lg_program_free(fwd), lg_program_free(fwd_all), lg_program_free(train);
    lg_tensor_free(xt), lg_cell_free(c);
}
END_TEST

/* memory_plan: an elementwise op writes over its dying input and a reshape
 * takes its input's buffer, so a chain needs one buffer; off, each value
 * has its own. */
START_TEST(test_memory_plan_in_place)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(1, 1000));
    lg_value y = lg_sigmoid(lg_reshape(lg_tanh(lg_exp(x)), lg_shape_of(2, 10, 100)));
    lg_tensor *xt = lg_test_uniform(LG_F32, lg_shape_of(1, 1000), 1, 17, -1, 1);
    lg_feed f[1] = {{x, xt}};
    lg_program *on = NULL, *off = NULL;
    lg_compile_opts o = lg_compile_opts_default();
    o.passes_off = "fuse_elementwise"; /* the ops one by one */
    ck_assert_int_eq(lg_program_compile_opts(g, f, 1, &y, 1, o, &on), LG_OK);
    o.passes_off = "memory_plan,fuse_elementwise";
    ck_assert_int_eq(lg_program_compile_opts(g, f, 1, &y, 1, o, &off), LG_OK);
    size_t one = (1000 * sizeof(float) + 63) / 64 * 64;
    ck_assert_uint_eq(lg_program_peak_bytes(on), one);
    ck_assert_uint_eq(lg_program_peak_bytes(off), 4 * one);
    lg_tensor *a = NULL, *b = NULL;
    ck_assert_int_eq(lg_program_run(on, f, 1, &a), LG_OK);
    ck_assert_int_eq(lg_program_run(off, f, 1, &b), LG_OK);
    ck_assert_mem_eq(lg_tensor_data(a), lg_tensor_data(b), lg_tensor_bytes(a));
    ck_assert_float_eq_tol(lg_tensor_get(a, 7), 1 / (1 + exp(-tanh(exp(lg_tensor_get(xt, 7))))), 1e-6);
    lg_tensor_free(a), lg_tensor_free(b), lg_tensor_free(xt);
    lg_program_free(on), lg_program_free(off);
}
END_TEST

/* LG_PASSES_OFF counts like the option; unknown names are errors. */
START_TEST(test_switches)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(3, 2, 3, 4));
    lg_cell *c = lg_cell_new(g, "rnn", 4, lg_cell_opts_default(LG_CELL_SIMPLE_RNN, 5));
    lg_rnn_result r;
    ck_assert_int_eq(lg_rnn(g, NULL, c, x, lg_rnn_opts_default(), &r), LG_OK);
    lg_tensor *xt = lg_test_uniform(LG_F32, lg_shape_of(3, 2, 3, 4), 1, 14, 0, 1);
    lg_feed f[1] = {{x, xt}};
    lg_program *p = NULL;
    lg_compile_opts o = lg_compile_opts_default();
    o.passes_off = "dce,fold";
    ck_assert_int_eq(lg_program_compile_opts(g, f, 1, &r.output, 1, o, &p), LG_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(lg_last_error(), "no pass named 'fold'"), "%s", lg_last_error());
    ck_assert_ptr_null(p);
    setenv("LG_PASSES_OFF", "nonsense", 1);
    ck_assert_int_eq(lg_program_compile(g, f, 1, &r.output, 1, &p), LG_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(lg_last_error(), "LG_PASSES_OFF"), "%s", lg_last_error());
    setenv("LG_PASSES_OFF", "dce,fuse_rnn", 1);
    ck_assert_int_eq(lg_program_compile(g, f, 1, &r.output, 1, &p), LG_OK);
    lg_loop_report rep;
    ck_assert_int_eq(lg_program_loop_report(p, 0, &rep), LG_OK);
    ck_assert_uint_gt(rep.state_bytes, 0); /* dce off: the states are saved */
    lg_program_free(p);
    unsetenv("LG_PASSES_OFF");
    o.passes_off = "fuse_rnn";
    ck_assert_int_eq(lg_program_compile_opts(g, f, 1, &r.output, 1, o, &p), LG_OK);
    ck_assert_int_eq(lg_program_loop_report(p, 0, &rep), LG_OK);
    ck_assert_uint_eq(rep.state_bytes, 0);
    lg_program_free(p);
    ck_assert_int_eq(lg_program_compile(g, f, 1, &r.output, 1, &p), LG_OK);
    ck_assert_int_eq(lg_program_loop_count(p), 0); /* fused */
    lg_program_free(p);
    lg_tensor_free(xt), lg_cell_free(c);
}
END_TEST


/* The layer API's cells, masked, backwards or not, alone, stacked and
 * Bidirectional: fused, and equal to the loops with fuse_rnn off in values
 * and every gradient (f64). */
typedef struct fuse_case {
    lg_cell_kind kind;
    bool reset_after, relu, masked, backwards, stacked, bidir;
    const char *cell;
} fuse_case;

static const fuse_case FUSE_CASES[] = {
    {LG_CELL_LSTM, .cell = "lstm"},
    {LG_CELL_LSTM, .masked = true, .backwards = true, .cell = "lstm"},
    {LG_CELL_GRU, .reset_after = true, .masked = true, .cell = "gru_reset_after"},
    {LG_CELL_GRU, .reset_after = false, .backwards = true, .cell = "gru_reset_before"},
    {LG_CELL_SIMPLE_RNN, .cell = "simple_rnn_tanh"},
    {LG_CELL_SIMPLE_RNN, .relu = true, .masked = true, .cell = "simple_rnn_relu"},
    {LG_CELL_LSTM, .stacked = true, .masked = true, .cell = "lstm"},
    {LG_CELL_GRU, .reset_after = true, .bidir = true, .masked = true, .cell = "gru_reset_after"},
};

START_TEST(test_fused_layers_agree)
{
    const fuse_case *fc = &FUSE_CASES[_i];
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F));
    lg_value len = lg_input(g, "len", LG_I32, lg_shape_of(1, B));
    lg_cell_opts co = lg_cell_opts_default(fc->kind, U);
    co.dtype = LG_F64;
    co.seed = 5 + (uint64_t)_i;
    co.reset_after = fc->reset_after;
    if (fc->relu) co.activation = LG_ACT_RELU;
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true;
    o.go_backwards = fc->backwards;
    if (fc->masked) o.lengths = len;
    lg_cell *c1 = lg_cell_new(g, "c1", F, co), *c2 = NULL;
    lg_rnn_result r;
    if (fc->bidir) {
        c2 = lg_cell_new(g, "c2", F, co);
        lg_bidirectional_result br;
        ck_assert_int_eq(lg_bidirectional(g, NULL, c1, c2, x, LG_MERGE_CONCAT, o, &br), LG_OK);
        r.output = br.output;
    } else {
        ck_assert_int_eq(lg_rnn(g, NULL, c1, x, o, &r), LG_OK);
        if (fc->stacked) {
            c2 = lg_cell_new(g, "c2", U, co);
            ck_assert_int_eq(lg_rnn(g, "second", c2, r.output, o, &r), LG_OK);
        }
    }
    lg_value fetch[64];
    int n = loss_and_grads(weighted_sum(r.output, 3), x, fetch);
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_shape_of(3, B, T, F), 1, 4, -1, 1), *lt = lengths_tensor();
    lg_feed f[2] = {{x, xt}, {len, lt}};
    int n_f = fc->masked ? 2 : 1;
    char fused[64];
    snprintf(fused, sizeof fused, "fused as %s", fc->cell);
    expect_note(f, n_f, fetch, n, fused);
    char *rep = fuse_notes(f, n_f, fetch, n);
    ck_assert_msg(!strstr(rep, "not fused"), "%s", rep);
    free(rep);
    check_passes_agree(f, n_f, fetch, n);
    check_passes_agree(f, n_f, fetch, 1); /* forward only: the fused forward alone */
    lg_tensor_free(xt), lg_tensor_free(lt), lg_cell_free(c1), lg_cell_free(c2);
}
END_TEST

/* An LSTM written from ops in a loop body (one matmul per weight, split
 * into gates, bias first, products commuted): fused, and equal. */
START_TEST(test_fused_hand_lstm_agrees)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, T, B, F));
    lg_loop_opts lo = lg_loop_opts_default();
    lo.time_major = true;
    lg_loop *l = lg_loop_new(g, "hand", lo);
    lg_value xt_ = lg_loop_seq(l, x);
    lg_tensor *zt = NULL;
    lg_tensor_new(LG_F64, lg_shape_of(2, B, U), &zt);
    lg_value h = lg_loop_state(l, lg_constant(g, "h0", zt)), c = lg_loop_state(l, lg_constant(g, "c0", zt));
    lg_tensor_free(zt);
    lg_value W = lg_param(g, "W", LG_F64, lg_shape_of(2, F, 4 * U));
    lg_value Uw = lg_param(g, "U", LG_F64, lg_shape_of(2, U, 4 * U));
    lg_value b = lg_param(g, "b", LG_F64, lg_shape_of(1, 4 * U));
    lg_value ps[3] = {W, Uw, b};
    for (int k = 0; k < 3; k++) lg_init_uniform(lg_param_tensor(ps[k]), -0.5, 0.5, 21, (uint64_t)k);
    W = lg_loop_invariant(l, W), Uw = lg_loop_invariant(l, Uw), b = lg_loop_invariant(l, b);
    lg_value z = lg_add(b, lg_add(lg_matmul(h, Uw, false, false), lg_matmul(xt_, W, false, false))), zs[4];
    lg_split(z, 1, NULL, 4, zs);
    lg_value i = lg_sigmoid(zs[0]), fg = lg_sigmoid(zs[1]), gg = lg_tanh(zs[2]), o = lg_sigmoid(zs[3]);
    lg_value c2 = lg_add(lg_mul(gg, i), lg_mul(c, fg)), h2 = lg_mul(lg_tanh(c2), o);
    lg_loop_next(l, h, h2);
    lg_loop_next(l, c, c2);
    lg_loop_emit(l, h2);
    lg_value st[2], hs;
    ck_assert_msg(lg_loop_end(l, st, &hs) == LG_OK, "%s", lg_last_error());
    lg_value fetch[64];
    int n = loss_and_grads(lg_add(weighted_sum(hs, 8), weighted_sum(st[1], 9)), x, fetch);
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_shape_of(3, T, B, F), 1, 10, -1, 1);
    lg_feed f[1] = {{x, xt}};
    expect_note(f, 1, fetch, n, "fuse_rnn: loop 'hand': fused as lstm");
    check_passes_agree(f, 1, fetch, n);
    lg_tensor_free(xt);
}
END_TEST

/* The peephole cell of examples/cells: refused with the matcher's reason,
 * and still hoisted. */
START_TEST(test_peephole_refused_and_hoisted)
{
    lg_value hs, x = peephole_loop("peep", lg_loop_opts_default(), &hs, NULL);
    lg_value fetch[64];
    int n = loss_and_grads(weighted_sum(hs, 11), x, fetch);
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_shape_of(3, B, T, F), 1, 12, -1, 1);
    lg_feed f[1] = {{x, xt}};
    char *rep = fuse_notes(f, 1, fetch, n);
    ck_assert_msg(strstr(rep, "fuse_rnn: loop 'peep': not fused: peephole term"), "%s", rep);
    ck_assert_msg(strstr(rep, "hoist: loop 'peep'"), "%s", rep);
    free(rep);
    lg_tensor_free(xt);
}
END_TEST

/* A SimpleRNN body that also emits tanh(x_t W) per step: the fused op has
 * one per-step output (h'), so the loop is kept, with the matcher's reason,
 * and still equals itself with the passes off. */
START_TEST(test_extra_output_refused)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, T, B, F));
    lg_loop_opts lo = lg_loop_opts_default();
    lo.time_major = true;
    lg_loop *l = lg_loop_new(g, "two", lo);
    lg_value x_t = lg_loop_seq(l, x);
    lg_tensor *zt = lg_test_tensor(LG_F64, lg_shape_of(2, B, U), NULL);
    lg_value h = lg_loop_state(l, lg_constant(g, "h0", zt));
    lg_tensor_free(zt);
    lg_value W = lg_param(g, "W", LG_F64, lg_shape_of(2, F, U)), Uw = lg_param(g, "U", LG_F64, lg_shape_of(2, U, U));
    lg_init_uniform(lg_param_tensor(W), -0.5, 0.5, 31, 0);
    lg_init_uniform(lg_param_tensor(Uw), -0.5, 0.5, 31, 1);
    lg_value xw = lg_matmul(x_t, lg_loop_invariant(l, W), false, false);
    lg_value h2 = lg_tanh(lg_add(xw, lg_matmul(h, lg_loop_invariant(l, Uw), false, false)));
    lg_loop_next(l, h, h2);
    lg_loop_emit(l, h2);
    lg_loop_emit(l, lg_tanh(xw));
    lg_value ys[2];
    ck_assert_msg(lg_loop_end(l, NULL, ys) == LG_OK, "%s", lg_last_error());
    lg_value fetch[64];
    int n = loss_and_grads(lg_add(weighted_sum(ys[0], 13), weighted_sum(ys[1], 14)), x, fetch);
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_shape_of(3, T, B, F), 1, 15, -1, 1);
    lg_feed f[1] = {{x, xt}};
    expect_note(f, 1, fetch, n, "fuse_rnn: loop 'two': not fused: the loop emits 2 values per step");
    check_passes_agree(f, 1, fetch, n);
    lg_tensor_free(xt);
}
END_TEST

/* ---- loop attributes: masking and truncation until lower_loops ---------- */

typedef struct attr_case {
    bool lengths, mask, repeat, reverse;
    int truncate;
} attr_case;

static const attr_case ATTR_CASES[] = {
    {.lengths = true, .repeat = true},
    {.lengths = true, .repeat = true, .reverse = true},
    {.lengths = true},
    {.mask = true, .repeat = true},
    {.mask = true, .reverse = true},
    {.truncate = 2},
    {.lengths = true, .repeat = true, .truncate = 2, .reverse = true},
};

/* h' = tanh(x_t W + h U), emitting h' (a state's next value) and 2 h'
 * (not one), with the case's options; unrolled, masking and truncation are
 * built at once (nodes of the graph), rolled they are attributes that
 * lower_loops builds. Returns the final h; ys gets both outputs. */
static lg_value attr_loop(const attr_case *ac, bool unroll, const lg_value *in, lg_value *ys)
{
    lg_loop_opts lo = lg_loop_opts_default();
    lo.unroll = unroll;
    lo.reverse = ac->reverse;
    lo.truncate = ac->truncate;
    lo.zero_output_for_mask = !ac->repeat;
    if (ac->lengths) lo.lengths = in[2];
    if (ac->mask) lo.mask = in[3];
    lg_loop *l = lg_loop_new(g, unroll ? "unrolled" : "rolled", lo);
    lg_value xt = lg_loop_seq(l, in[0]), h = lg_loop_state(l, in[1]);
    lg_value w = lg_loop_invariant(l, in[4]), u = lg_loop_invariant(l, in[5]);
    lg_value n = lg_tanh(lg_add(lg_matmul(xt, w, false, false), lg_matmul(h, u, false, false)));
    lg_loop_next(l, h, n);
    lg_loop_emit(l, n);
    lg_loop_emit(l, lg_scale(n, 2));
    lg_value fin;
    ck_assert_msg(lg_loop_end(l, &fin, ys) == LG_OK, "%s", lg_last_error());
    return fin;
}

/* loss, final h, both outputs, and the gradients wrt x, h0, W and U. */
static void attr_fetches(const attr_case *ac, bool unroll, const lg_value *in, lg_value *fetch)
{
    lg_value ys[2], fin = attr_loop(ac, unroll, in, ys);
    lg_value loss = lg_add(lg_add(weighted_sum(ys[0], 1), weighted_sum(ys[1], 2)), weighted_sum(fin, 3));
    lg_value wrt[4] = {in[0], in[1], in[4], in[5]};
    fetch[0] = loss, fetch[1] = fin, fetch[2] = ys[0], fetch[3] = ys[1];
    ck_assert_int_eq(lg_grad(g, loss, wrt, 4, fetch + 4), LG_OK);
}

/* The number of nodes of graph b whose op is `op`. */
static int count_op(const lg_graph *b, const char *op)
{
    int n = 0;
    for (int i = 0; i < lg_graph_node_count(b); i++) n += !strcmp(lg_graph_node_op(b, i), op);
    return n;
}

/* The user's graph keeps masking and truncation as attributes of the loop
 * and its gradient loop (no where node in the body, the lengths or mask an
 * input of the forward loop), and once lowered gives exactly what the
 * build-time form (unroll) gives, in values and gradients, with every pass
 * switch. */
START_TEST(test_loop_attrs_lowered)
{
    const attr_case *ac = &ATTR_CASES[_i];
    lg_value in[6] = {lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F)), lg_input(g, "h0", LG_F64, lg_shape_of(2, B, U)),
                      lg_input(g, "len", LG_I32, lg_shape_of(1, B)), lg_input(g, "mask", LG_F64, lg_shape_of(2, B, T)),
                      lg_param(g, "w", LG_F64, lg_shape_of(2, F, U)), lg_param(g, "u", LG_F64, lg_shape_of(2, U, U))};
    ck_assert_int_eq(lg_init_uniform(lg_param_tensor(in[4]), -0.8, 0.8, 1, 0), LG_OK);
    ck_assert_int_eq(lg_init_uniform(lg_param_tensor(in[5]), -0.8, 0.8, 1, 1), LG_OK);
    int first = lg_graph_node_count(g);
    lg_value rolled[8], unrolled[8];
    attr_fetches(ac, false, in, rolled);
    int n_loops = 0;
    for (int i = first; i < lg_graph_node_count(g); i++) {
        lg_loop_info info;
        if (!lg_graph_node_loop(g, i, &info) || strstr(lg_graph_node_name(g, i), "iota")) continue;
        n_loops++;
        ck_assert_int_eq(info.by_lengths, ac->lengths);
        ck_assert_int_eq(info.by_mask, ac->mask);
        ck_assert_int_eq(info.zero_output_for_mask, !ac->repeat);
        ck_assert_int_eq(info.truncate, ac->truncate);
        ck_assert_int_eq(info.n_state, info.gradient ? 3 : 1); /* h (its cotangent and W's and U's sums) */
        if (!info.gradient) ck_assert_int_eq(info.n_seq, 1); /* x: no validity or boundary sequence */
        ck_assert_int_eq(count_op(info.body, "where"), 0);
        ck_assert_int_eq(count_op(info.body, "stop_gradient"), 0);
        if (!info.gradient)
            ck_assert_int_eq(lg_graph_node_input_count(g, i), 1 + 1 + 2 + (ac->lengths || ac->mask));
    }
    ck_assert_int_eq(n_loops, 2);
    attr_fetches(ac, true, in, unrolled);

    int32_t len[B] = {T, 2, 4};
    double mask[B * T] = {1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 1, 0, 0, 1, 1};
    lg_tensor *t[4] = {lg_test_uniform(LG_F64, lg_shape_of(3, B, T, F), 1, 21, -1, 1),
                       lg_test_uniform(LG_F64, lg_shape_of(2, B, U), 1, 22, -1, 1),
                       lg_test_tensor(LG_I32, lg_shape_of(1, B), len), lg_test_tensor(LG_F64, lg_shape_of(2, B, T), mask)};
    lg_feed f[4] = {{in[0], t[0]}, {in[1], t[1]}, {in[2], t[2]}, {in[3], t[3]}};
    check_passes_agree(f, 4, rolled, 8);
    lg_tensor **a = run_with(NULL, f, 4, rolled, 8), **b = run_with(NULL, f, 4, unrolled, 8);
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(lg_tensor_numel(a[i]), lg_tensor_numel(b[i]));
        int64_t e = first_difference(a[i], b[i]);
        ck_assert_msg(e < 0, "fetch %d [%lld]: rolled %.17g, unrolled %.17g", i, (long long)e,
                      lg_tensor_get(a[i], e), lg_tensor_get(b[i], e));
    }
    free_outs(a, 8), free_outs(b, 8);
    for (int k = 0; k < 4; k++) lg_tensor_free(t[k]);
}
END_TEST

/* lower_loops cannot be switched off (the executor runs lowered loops
 * only), and compiling leaves no line of its own in the report: a masked
 * LSTM layer is reported fused and masked, as before. */
START_TEST(test_lower_loops_stays_on)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F)), len = lg_input(g, "len", LG_I32, lg_shape_of(1, B));
    lg_cell_opts co = lg_cell_opts_default(LG_CELL_LSTM, U);
    co.dtype = LG_F64;
    lg_cell *c = lg_cell_new(g, "lstm", F, co);
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true;
    o.lengths = len;
    lg_rnn_result r;
    ck_assert_int_eq(lg_rnn(g, NULL, c, x, o, &r), LG_OK);
    int n_loops = 0;
    for (int i = 0; i < lg_graph_node_count(g); i++) {
        lg_loop_info info;
        if (!lg_graph_node_loop(g, i, &info) || strstr(lg_graph_node_name(g, i), "iota")) continue;
        n_loops++;
        ck_assert(info.by_lengths && !info.zero_output_for_mask && !info.gradient); /* Keras's default for a layer */
        ck_assert_int_eq(count_op(info.body, "where"), 0);
        ck_assert_int_eq(count_op(info.body, "gather"), 0);
    }
    ck_assert_int_eq(n_loops, 1);
    ck_assert_int_eq(count_op(g, "gather"), 0); /* nor around it: the lengths' range check is built when lowered */
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_shape_of(3, B, T, F), 1, 23, -1, 1), *lt = lengths_tensor();
    lg_feed f[2] = {{x, xt}, {len, lt}};
    lg_program *p = NULL;
    lg_compile_opts co2 = lg_compile_opts_default();
    co2.passes_off = "hoist,lower_loops";
    ck_assert_int_eq(lg_program_compile_opts(g, f, 2, &r.output, 1, co2, &p), LG_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(lg_last_error(), "'lower_loops' cannot be switched off"), "%s", lg_last_error());
    ck_assert_ptr_null(p);
    setenv("LG_PASSES_OFF", "lower_loops", 1);
    ck_assert_int_eq(lg_program_compile(g, f, 2, &r.output, 1, &p), LG_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(lg_last_error(), "LG_PASSES_OFF: the pass 'lower_loops'"), "%s", lg_last_error());
    unsetenv("LG_PASSES_OFF");
    char *rep = fuse_notes(f, 2, &r.output, 1);
    ck_assert_msg(strstr(rep, "fuse_rnn: loop 'lstm/loop': fused as lstm (3 units, bias, masked)") && !strstr(rep, "lower_loops"),
                  "%s", rep);
    free(rep);
    lg_tensor_free(xt), lg_tensor_free(lt), lg_cell_free(c);
}
END_TEST

static Suite *passes_suite(void)
{
    Suite *s = suite_create("passes");
    TCase *tc = tcase_create("passes");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_lstm_layer_agrees);
    tcase_add_test(tc, test_stacked_masked_agree);
    tcase_add_loop_test(tc, test_bidirectional_agrees, 0, 6);
    tcase_add_loop_test(tc, test_bidirectional_stack_agrees, 0, 6);
    tcase_add_loop_test(tc, test_bidirectional_not_stacked, 0, 2);
    tcase_add_loop_test(tc, test_stacked_agrees, 0, 6);
    tcase_add_test(tc, test_reversed_stack_agrees);
    tcase_add_loop_test(tc, test_dropout_agrees, 0, 2);
    tcase_add_loop_test(tc, test_mask_repeat_agrees, 0, 2);
    tcase_add_test(tc, test_two_gradients_agree);
    tcase_add_loop_test(tc, test_custom_cell_agrees, 0, 2);
    tcase_add_test(tc, test_nested_loops_agree);
    tcase_add_test(tc, test_nested_cell_agrees);
    tcase_add_test(tc, test_hoist_embedding);
    tcase_add_loop_test(tc, test_hoist_custom_cell, 0, 2);
    tcase_add_loop_test(tc, test_hoist_chunks, 0, 2);
    tcase_add_test(tc, test_hoist_chunk_budget);
    tcase_add_test(tc, test_hoist_wide_accumulator);
    tcase_add_loop_test(tc, test_hoist_wide_with_chunks, 0, 4);
    tcase_add_loop_test(tc, test_hoist_wide_open_dim, 0, 2);
    tcase_add_loop_test(tc, test_hoist_cost_rule, 0, 2);
    tcase_add_test(tc, test_forward_only_saves_nothing);
    tcase_add_test(tc, test_memory_plan_in_place);
    tcase_add_test(tc, test_switches);
    tcase_add_loop_test(tc, test_fused_layers_agree, 0, (int)(sizeof FUSE_CASES / sizeof FUSE_CASES[0]));
    tcase_add_test(tc, test_fused_hand_lstm_agrees);
    tcase_add_test(tc, test_peephole_refused_and_hoisted);
    tcase_add_test(tc, test_extra_output_refused);
    tcase_add_loop_test(tc, test_loop_attrs_lowered, 0, (int)(sizeof ATTR_CASES / sizeof ATTR_CASES[0]));
    tcase_add_test(tc, test_lower_loops_stays_on);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lg_check_run(passes_suite()); }
